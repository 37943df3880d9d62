"""A table's ``fsaops.Mutex`` taken with a spinlock held, under ``fsaops migrate``.

``mutex_lock`` calls ``might_sleep()`` first, held or free: taking one with
a spinlock held is a ``BUG`` on a kernel.  ``fsaops explore`` said so of a
mapping's locks, but under ``fsaops migrate`` a ``Mutex`` was a plain lock,
so a ``migratepage`` that took its own mutex under the mapping's
``tree_lock`` or a ``Spinlock`` of its own passed every mode.
"""

from __future__ import annotations

import json
from pathlib import Path

import attrs
import pytest

from fsaops.errors import KernelBug
from fsaops.plugins import Registry
from fsaops.world import World
from guarded import fsaops, install
from test_main_path import mutex_under_tree_lock

PLUGIN = """\
import attrs, fsaops
from fsaops import FileSystemType, Mutex, buffer_migrate_page
from fsaops.spinlock import Spinlock, spin_lock
from fsaops_ext2 import ext2_aops

STATE = Mutex("mutexy_state")
OWN = Spinlock("mutexy_spin", None)

def mp(newpage, page):
    {body}
    return buffer_migrate_page(newpage, page)

TABLE = attrs.evolve(ext2_aops, name="mutexy_aops", migratepage=mp)

@fsaops.hookimpl
def fsaops_filesystem_types():
    return [FileSystemType(name="mutexy", modes={{"default": TABLE}})]
"""

SCENARIO = """\
[kernel]
node_memory = "2MiB"
semantics = "{semantics}"
[plugins]
load = ["mutexy"]
[[mount]]
fs = "mutexy"
pages = 8
block_size = 1024
[processes]
count = 0
anon_pages = 0
[workload]
dirty = 0.5
"""

UNDER = {
    "its own spinlock": ("with OWN:\n        with STATE:\n            pass", "the mutexy_spin"),
    "tree_lock": (
        "lock = page.mapping.tree_lock\n    spin_lock(lock, 'tree_lock', page.mapping)\n"
        "    try:\n        with STATE:\n            pass\n    finally:\n        lock.release()",
        "the tree_lock of a mapping of mutexy_aops",
    ),
}


def _migrate(
    tmp_path: Path, body: str, *options: str, semantics: str = "v4"
) -> tuple[int, dict[str, object], str]:
    env = install(tmp_path, "mutexy", PLUGIN.format(body=body))
    path = tmp_path / "mutexy.toml"
    path.write_text(SCENARIO.format(semantics=semantics))
    proc = fsaops("migrate", path, "--json", "--no-progress", *options, env=env, timeout=120)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode, json.loads(proc.stdout), proc.stderr


@pytest.mark.parametrize("options", [(), ("--strict",), ("--debug-vm",)])
@pytest.mark.parametrize("under", sorted(UNDER))
def test_a_mutex_taken_under_a_spinlock_in_migratepage_is_a_kernel_bug(
    tmp_path: Path, under: str, options: tuple[str, ...]
) -> None:
    body, held = UNDER[under]
    rc, report, err = _migrate(tmp_path, body, *options)
    assert (rc, report["status"]) == (1, "kernel bug"), err
    error = str(report["error"])
    assert error.startswith(
        "kernel BUG: sleeping function called from invalid context: a task sleeps on the mutex "
        f"mutexy_state (mutex_lock may sleep) holding {held}, a spinlock"
    ), error
    assert "in mutexy_aops's migratepage" in error and "mutexy-dist[mutexy]" in error, error


def test_under_private_lock_it_is_v4s_own_sleep_and_a_bug_from_2_6_16(tmp_path: Path) -> None:
    """V4's ``buffer_migrate_page`` sleeps under ``private_lock`` itself; 2.6.16 does not."""
    body = (
        "lock = page.mapping.private_lock\n    spin_lock(lock, 'private_lock', page.mapping)\n"
        "    try:\n        with STATE:\n            pass\n    finally:\n        lock.release()"
    )
    rc, report, err = _migrate(tmp_path / "v4", body)
    assert (rc, report["status"]) == (0, "ok"), err
    rc, report, err = _migrate(tmp_path / "2616", body, semantics="2.6.16")
    assert (rc, report["status"]) == (1, "kernel bug"), err
    assert "holding the private_lock of a mapping of mutexy_aops" in str(report["error"])


@pytest.mark.parametrize(
    "body",
    [
        "with STATE:\n        pass",
        # held across the migration, which takes and lets go of the mapping's locks inside it
        "with STATE:\n        return buffer_migrate_page(newpage, page)",
        # taken after the spinlock is let go of
        "with OWN:\n        pass\n    with STATE:\n        pass",
    ],
    ids=["alone", "around the move", "after the spinlock"],
)
def test_a_mutex_taken_with_no_spinlock_held_passes(tmp_path: Path, body: str) -> None:
    rc, report, err = _migrate(tmp_path, body, "--strict", "--debug-vm")
    assert (rc, report["status"], report["findings"]) == (0, "ok", []), err


# -- in the table's other members ------------------------------------------------------------

MEMBERS = """\
import attrs, fsaops
from fsaops import FileSystemType, Mutex, buffer_migrate_page
from fsaops.buffer import try_to_free_buffers
from fsaops.spinlock import Spinlock
from fsaops_ext2 import ext2_aops

STATE = Mutex("mutexy_state")
OWN = Spinlock("mutexy_spin", None)

def taken():
    {body}

def wp(page, wbc):
    taken()
    return ext2_aops.writepage(page, wbc)

def rp(page, gfp):
    taken()
    return try_to_free_buffers(page)

def pw(page, start, end):
    taken()
    return ext2_aops.prepare_write(page, start, end)

def rdp(page):
    taken()
    return ext2_aops.readpage(page)

TABLE = attrs.evolve(ext2_aops, name="mutexy_aops", {member}, migratepage={migratepage})

@fsaops.hookimpl
def fsaops_filesystem_types():
    return [FileSystemType(name="mutexy", modes={{"default": TABLE}})]
"""

UNDER_ITS_OWN = "with OWN:\n        with STATE:\n            pass"

WHEN = {
    # the engine's fallback writes a dirty page out before it moves it
    "writepage, in the migration": ("writepage=wp", "None", "dirty = 0.5"),
    # moved with buffer_migrate_page; the durability proof's sync writes it back
    "writepage, in the proof after it": ("writepage=wp", "buffer_migrate_page", "dirty = 0.5"),
    # the fallback frees a clean page's buffers before it moves it
    "releasepage, in the migration": ("releasepage=rp", "None", "dirty = 0"),
    # only as the world is built: pages written in part with write(2), files read in
    "prepare_write, as the world is built": (
        "prepare_write=pw",
        "buffer_migrate_page",
        "dirty = 0\npartial = 0.5",
    ),
    "readpage, as the world is built": ("readpage=rdp", "buffer_migrate_page", "dirty = 0"),
}


def _migrate_member(
    tmp_path: Path, when: str, body: str, *options: str
) -> tuple[int, dict[str, object], str]:
    member, migratepage, workload = WHEN[when]
    code = MEMBERS.format(body=body, member=member, migratepage=migratepage)
    env = install(tmp_path, "mutexy", code)
    path = tmp_path / "mutexy.toml"
    path.write_text(SCENARIO.format(semantics="v4").replace("dirty = 0.5", workload))
    proc = fsaops("migrate", path, "--json", "--no-progress", *options, env=env, timeout=120)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode, json.loads(proc.stdout), proc.stderr


@pytest.mark.parametrize("when", sorted(WHEN))
def test_a_mutex_taken_under_a_spinlock_in_another_member_is_a_kernel_bug(
    tmp_path: Path, when: str
) -> None:
    rc, report, err = _migrate_member(tmp_path, when, UNDER_ITS_OWN)
    assert (rc, report["status"]) == (1, "kernel bug"), err
    error = str(report["error"])
    assert (
        "sleeping function called from invalid context: a task sleeps on the mutex "
        "mutexy_state (mutex_lock may sleep) holding the mutexy_spin, a spinlock"
    ) in error, error
    assert error.endswith("(plugin mutexy-dist[mutexy], in mutexy.taken)"), error


@pytest.mark.parametrize("when", sorted(WHEN))
def test_a_mutex_taken_alone_in_another_member_passes(tmp_path: Path, when: str) -> None:
    rc, report, err = _migrate_member(
        tmp_path, when, "with OWN:\n        pass\n    with STATE:\n        pass", "--strict"
    )
    assert (rc, report["status"], report["findings"]) == (0, "ok", []), err


def test_a_machine_made_before_another_is_the_one_its_migration_asks(registry: Registry) -> None:
    """A mutex asks the machine whose ``migrate_pages`` runs, not the machine made last.

    A test (or a kit fixture) may make a second machine and then migrate on
    the first: a mutex its table takes under the first machine's
    ``tree_lock`` is that machine's ``BUG``; asking the second, which holds
    no lock, would let it pass.
    """
    first = World(registry=registry, node_pages=256, swap_slots=64)
    inode = first.file(first.mount("ext2"), 2, clean=True)
    mapping = inode.i_mapping
    real = mapping.a_ops.migratepage
    assert real is not None
    mp = mutex_under_tree_lock("two_machines_state")(real)
    mapping.a_ops = attrs.evolve(mapping.a_ops, migratepage=mp)
    later = World(registry=registry, node_pages=256, swap_slots=64)  # made after, kept, idle
    with pytest.raises(KernelBug, match="a task sleeps on the mutex two_machines_state"):
        first.migrate(mapping.pages())
    assert later.kernel.vmstat.pgmigrate_success == 0
