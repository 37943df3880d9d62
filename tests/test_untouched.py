"""What migration must leave alone outside the pages it moves (:mod:`fsaops.untouched`).

Each table below moves every page right, so every page reads back right
and both page proofs hold, and changes one thing no migration changes: a
process's area, a file's ``i_mmap``, a device's allocator or a block no
file owns.  Before, each such run was ok, under ``--strict`` and
``--debug-vm`` too.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from fsaops.plugins import load_plugins
from fsaops.untouched import Untouched
from fsaops.world import World
from guarded import fsaops, install, one_error_line, one_json_object
from suite_runs import failed_by_table

pytest_plugins = ["pytester"]

PLUGIN = """\
import attrs, fsaops
from fsaops import FileSystemType, buffer_migrate_page
from fsaops.buffer import buffers
from fsaops.page import PG
from fsaops.rmap import VM_LOCKED
from fsaops_ext2 import ext2_aops

def _bdev(page):
    return page.mapping.host.i_sb.s_bdev

def writes_the_superblock(newpage, page):
    rc = buffer_migrate_page(newpage, page)
    if rc == 0 and not newpage.flags & PG.dirty:
        _bdev(newpage).write(0, bytes(newpage.data[:1024]))
    return rc

def writes_past_the_last_block(newpage, page):
    rc = buffer_migrate_page(newpage, page)
    if rc == 0:
        bdev = _bdev(newpage)
        bdev.write(bdev.next_free + 2, bytes(newpage.data[:1024]))
    return rc

def winds_the_allocator_back(newpage, page):
    rc = buffer_migrate_page(newpage, page)
    if rc == 0 and newpage.flags & PG.private:
        bdev = _bdev(newpage)
        bdev.next_free = min(bdev.next_free, newpage.private.b_blocknr)
    return rc

def munlocks_the_areas(newpage, page):
    for vma in page.mapping.i_mmap:
        vma.vm_flags &= ~VM_LOCKED
    return buffer_migrate_page(newpage, page)

def mlocks_the_areas(newpage, page):
    mapping = page.mapping
    rc = buffer_migrate_page(newpage, page)
    if rc == 0:
        for vma in mapping.i_mmap:
            vma.vm_flags |= VM_LOCKED
    return rc

STOLEN = []

def steals_a_block(newpage, page):
    # Once: moves the page's blocks past the allocator's next free one, data and all.
    rc = buffer_migrate_page(newpage, page)
    if rc == 0 and newpage.flags & PG.private and not STOLEN:
        inode = newpage.mapping.host
        bdev = inode.i_sb.s_bdev
        bs = bdev.block_size
        per_page = newpage.node.page_size // bs
        mem = bdev.mem
        for i, bh in enumerate(buffers(newpage.private)):
            k = newpage.index * per_page + i
            old, new = inode.blocks[k], bdev.next_free + 3 + i
            mem[new * bs : (new + 1) * bs] = mem[old * bs : (old + 1) * bs]
            inode.blocks[k] = new
            bh.b_blocknr = new
        STOLEN.append(newpage.index)
    return rc

def binds_the_areas_to_the_node(newpage, page):
    for vma in page.mapping.i_mmap:
        vma.nid = page.node.nid
    return buffer_migrate_page(newpage, page)

def drops_the_areas_from_i_mmap(newpage, page):
    page.mapping.i_mmap.clear()
    return buffer_migrate_page(newpage, page)

def logging_writepage(page, wbc):
    # A filesystem's own I/O: a log record in a block no file owns, allocated here.
    bdev = page.mapping.host.i_sb.s_bdev
    bdev.write(bdev.alloc_blocks(1), page.index.to_bytes(8, "little") * 128)
    return ext2_aops.writepage(page, wbc)

NAMES = [
    "writes_the_superblock", "writes_past_the_last_block", "winds_the_allocator_back",
    "munlocks_the_areas", "mlocks_the_areas", "drops_the_areas_from_i_mmap", "correct",
    "steals_a_block", "binds_the_areas_to_the_node", "logs_in_writepage",
]

@fsaops.hookimpl
def fsaops_filesystem_types():
    found = []
    for name in NAMES:
        if name == "logs_in_writepage":  # no migratepage: the generic path writes pages out
            table = attrs.evolve(
                ext2_aops, name=f"{name}_aops", migratepage=None, writepages=None,
                writepage=logging_writepage,
            )
        else:
            mp = buffer_migrate_page if name == "correct" else globals()[name]
            table = attrs.evolve(ext2_aops, name=f"{name}_aops", migratepage=mp)
        sizes = (1024, 4096)
        found.append(FileSystemType(name=f"u_{name}", modes={"default": table}, block_sizes=sizes))
    return found
"""

CONFIG = """\
[kernel]
node_memory = "2MiB"
semantics = "{semantics}"
[plugins]
load = ["untouchedfs"]
[[mount]]
fs = "u_{name}"
pages = 48
files = 2
block_size = 1024
[processes]
count = 2
[workload]
seed = {seed}
dirty = 0.3
mapped = 0.5
mlocked = {mlocked}
"""

SAID = {
    "writes_the_superblock": r"block 0 \(the superblock\), which no file owns, was written",
    "writes_past_the_last_block": r"write\(s\) during migration past its last allocated block",
    "winds_the_allocator_back": r"its allocator moved during migration \(the next free block was",
    "munlocks_the_areas": r"vm_flags VM_READ\|VM_WRITE\|VM_SHARED\|VM_LOCKED became VM_READ\|",
    "mlocks_the_areas": r"vm_flags VM_READ\|VM_WRITE\|VM_SHARED became VM_READ\|VM_WRITE\|"
    r"VM_SHARED\|VM_LOCKED",
    "binds_the_areas_to_the_node": r"the node its pages are allocated on \(none\) became node 0",
}


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return install(tmp_path_factory.mktemp("site"), "untouchedfs", PLUGIN)


def _migrate(
    tmp_path: Path, env: dict[str, str], name: str, semantics: str, *options: str
) -> tuple[int, dict[str, Any], str]:
    """``fsaops migrate --json`` of table ``name``'s scenario: exit status, report, stderr."""
    path = tmp_path / f"{name}-{semantics}.toml"
    mlocked = 0.3 if name == "munlocks_the_areas" else 0
    path.write_text(CONFIG.format(name=name, semantics=semantics, seed=1, mlocked=mlocked))
    proc = fsaops("migrate", path, "--json", "--no-progress", *options, env=env)
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    report = json.loads(proc.stdout)
    assert isinstance(report, dict) and report["schema"] == 1
    return proc.returncode, report, proc.stderr


@pytest.mark.parametrize("semantics", ["v4", "2.6.16", "2.6.17"])
@pytest.mark.parametrize("name", sorted(SAID))
@pytest.mark.parametrize("options", [(), ("--strict",), ("--debug-vm",)], ids=["", "strict", "dvm"])
def test_a_table_that_changes_what_migration_leaves_alone_breaks_an_invariant(
    tmp_path: Path, env: dict[str, str], name: str, semantics: str, options: tuple[str, ...]
) -> None:
    rc, report, _err = _migrate(tmp_path, env, name, semantics, *options)
    assert (rc, report["status"]) == (1, "invariant broken"), report.get("error")
    invariants = report["invariants"]
    assert any(re.search(SAID[name], line) for line in invariants), invariants
    integrity = report["integrity"]
    assert (integrity["lost"], integrity["corrupted"]) == (0, 0)  # every page read back right


@pytest.mark.parametrize("semantics", ["v4", "2.6.16", "2.6.17"])
@pytest.mark.parametrize("options", [(), ("--strict",)], ids=["", "strict"])
def test_a_table_that_moves_a_file_s_blocks_past_the_allocator_breaks_an_invariant(
    tmp_path: Path, env: dict[str, str], semantics: str, options: tuple[str, ...]
) -> None:
    """The data moves with the blocks, so the file reads back right; but the allocator would
    hand the blocks out again.  (``--debug-vm`` stops at the page: its buffers' blocks moved.)"""
    rc, report, _err = _migrate(tmp_path, env, "steals_a_block", semantics, *options)
    assert (rc, report["status"]) == (1, "invariant broken"), report.get("error")
    pattern = r"file mount0/file\d owns block \d+, past the allocator's next free block \(\d+\)"
    assert any(re.search(pattern, line) for line in report["invariants"]), report["invariants"]


def test_a_table_that_drops_the_areas_from_i_mmap_is_the_oops_of_munmap_saying_why(
    tmp_path: Path, env: dict[str, str]
) -> None:
    """Before, the run failed blaming fsaops's own code (``list.remove(x): x not in list``)."""
    path = tmp_path / "drops.toml"
    path.write_text(
        CONFIG.format(name="drops_the_areas_from_i_mmap", semantics="v4", seed=1, mlocked=0)
    )
    proc = fsaops("migrate", path, "--json", "--no-progress", env=env)
    one_error_line(
        proc,
        1,
        "kernel BUG: munmap of process",
        "which its file's i_mmap does not hold: list corruption",
        "migration had changed what it must leave alone: file ",
        "the areas mapping it (i_mmap) changed during migration",
    )
    assert "fsaops's own code" not in proc.stderr
    one_json_object(proc, "kernel bug")


@pytest.mark.parametrize("semantics", ["v4", "2.6.16", "2.6.17"])
def test_the_correct_table_on_the_same_scenario_is_ok(
    tmp_path: Path, env: dict[str, str], semantics: str
) -> None:
    rc, report, err = _migrate(tmp_path, env, "correct", semantics)
    assert (rc, report["status"], report["invariants"]) == (0, "ok", []), err


@pytest.mark.parametrize("semantics", ["v4", "2.6.16", "2.6.17"])
def test_a_writepage_that_logs_and_allocates_on_the_generic_path_is_no_false_alarm(
    tmp_path: Path, env: dict[str, str], semantics: str
) -> None:
    """A table without ``migratepage`` has its dirty pages written out by its ``writepage``,
    which may write a block no file owns and allocate, as a filesystem's I/O does."""
    rc, report, err = _migrate(tmp_path, env, "logs_in_writepage", semantics)
    assert (rc, report["status"], report["invariants"]) == (0, "ok", []), err
    assert report["vmstat"]["writepage"] > 0  # the generic path did write pages out


@pytest.mark.parametrize("semantics", ["v4", "2.6.16", "2.6.17"])
def test_another_mounts_generic_path_leaves_this_device_compared(
    tmp_path: Path, env: dict[str, str], semantics: str
) -> None:
    """Before, any page on the generic path stopped every device's comparison: a table that
    wrote the superblock got ``ok`` beside an ext3 ``data=journal`` mount (no ``migratepage``
    in V4, whose dirty pages its own ``writepage`` writes out)."""
    path = tmp_path / f"two-{semantics}.toml"
    text = CONFIG.format(name="writes_the_superblock", semantics=semantics, seed=1, mlocked=0)
    text = text.replace('load = ["untouchedfs"]', 'load = ["untouchedfs", "ext3"]')
    text = text.replace(
        "[processes]",
        '[[mount]]\nfs = "ext3"\nmode = "journal"\npages = 16\nfiles = 1\n'
        "block_size = 1024\n[processes]",
    )
    path.write_text(text)
    proc = fsaops("migrate", path, "--json", "--no-progress", env=env)
    report = json.loads(proc.stdout)
    assert (proc.returncode, report["status"]) == (1, "invariant broken"), report.get("error")
    assert report["vmstat"]["writepage"] > 0 or semantics != "v4"  # ext3's own I/O ran
    said = [line for line in report["invariants"] if re.search(SAID["writes_the_superblock"], line)]
    assert len(said) == 1, report["invariants"]
    assert said[0].startswith("device mount0"), said


def test_a_world_left_alone_shows_no_change_and_each_kind_of_change_shows() -> None:
    world = World(registry=load_plugins(cli=["ext2"]), nodes=2, node_pages=64)
    sb = world.mount("ext2", "default", block_size=1024, nr_blocks=200)
    record = world.create_file(sb)
    world.write_file(record, 4)
    kernel = world.kernel
    snapshot = Untouched.snapshot(kernel)
    assert snapshot.changes() == []
    bdev = sb.s_bdev
    bdev.write(0, b"\xff" * 1024)
    assert snapshot.changes() == [
        f"device {bdev.name}: block 0 (the superblock), which no file owns, was written "
        "during migration"
    ]
    bdev.write(0, bytes(1024))  # as it was: no change again
    assert snapshot.changes() == []
    bdev.write(bdev.next_free, b"\x01" * 1024)
    bdev.next_free -= 1
    said = snapshot.changes()
    assert len(said) == 3, said
    assert said[0].startswith(f"device {bdev.name}: its allocator moved during migration")
    # The file's last block is now past the allocator's next free one.
    assert said[1].startswith(f"device {bdev.name}: file {record.inode.name} owns block ")
    assert said[2].startswith(f"device {bdev.name}: 1 write(s) during migration past its last")
    other = world.mount("ext2", "default", block_size=1024, nr_blocks=50)
    kernel.note_own_io(world.create_file(other).inode.i_mapping)
    assert len(snapshot.changes()) == 3  # another device's own I/O ran: this one is compared
    kernel.note_own_io(record.inode.i_mapping)  # its own writepage ran: it may write or allocate
    assert snapshot.changes() == []
    kernel.note_own_io(object())  # a page of no known device: none is compared
    assert snapshot.changes() == []


SUITE = """
from untouchedfs import NAMES, fsaops_filesystem_types
from fsaops.testing import MigratepageConformance

for fstype in fsaops_filesystem_types():
    name = fstype.name.removeprefix("u_")
    globals()[f"Test_{name}"] = type(
        f"Test_{name}", (MigratepageConformance,), {"filesystem": fstype}
    )
"""


def test_the_conformance_suite_fails_a_promise_for_each_such_table(
    pytester: pytest.Pytester,
) -> None:
    """Before, the suite passed the tables that write over the superblock or past the last
    block, wind the allocator back or set ``VM_LOCKED``: it compared only pages."""
    plugins = pytester.mkdir("plugins")
    (plugins / "untouchedfs.py").write_text(PLUGIN)
    reprec, failed = failed_by_table(pytester, plugins, SUITE)
    assert failed.pop("correct", []) == []
    failed.pop("steals_a_block", None)
    failed.pop(
        "logs_in_writepage", None
    )  # not a migratepage  # its buffers' blocks moved: the suite's own promises
    assert sorted(failed) == sorted(["drops_the_areas_from_i_mmap", *SAID]), failed
    said: dict[str, str] = {}
    for report in reprec.getreports("pytest_runtest_logreport"):
        if report.failed:
            cls = report.nodeid.split("::")[1]
            said[cls] = said.get(cls, "") + report.longreprtext
    for name in ["drops_the_areas_from_i_mmap", *SAID]:
        if name != "munlocks_the_areas":  # refused pages in locked areas: its own promises
            assert "changed what migration leaves alone: " in said[f"Test_{name}"], name
