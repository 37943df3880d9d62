"""``workload.buffer_locked``: a buffer another task holds locked while its page migrates.

No workload state held a buffer lock, only page locks and references, so
two wrong ``buffer_migrate_page``\\ s passed ``fsaops migrate`` in every
mode: one that ``trylock_buffer``\\ s after the page-tree slot has moved
and backs out with ``-EAGAIN`` when a buffer is busy (the slot then holds
a new page that never got the data), and one that moves a buffer whose
lock it could not take (another task's I/O goes on with the old frame).
``buffer_locked`` has another task hold one buffer of that fraction of
the pages that carry buffer heads, for up to twice as many ticks as there
are pages, as a write of the block in flight does.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from inproc import installed, migrate_json

PLUGIN = '''
from errno import EAGAIN

import attrs

import fsaops
from fsaops import buffer_migrate_page, migrate_page, migrate_page_copy
from fsaops import migrate_page_remove_references
from fsaops.buffer import BH, buffers, get_bh, put_bh, set_bh_page, trylock_buffer, unlock_buffer
from fsaops.page import PG
from fsaops.spinlock import Spinlock
from fsaops_ext2 import EXT2, ext2_aops


def _move(newpage, page, ring, locked):
    page.flags &= ~PG.private
    newpage.private, page.private = page.private, 0
    page.count -= 1
    newpage.count += 1
    for bh in ring:
        set_bh_page(bh, newpage, bh.b_data & (page.node.page_size - 1))
    newpage.flags |= PG.private
    migrate_page_copy(newpage, page)
    for bh in locked:
        unlock_buffer(bh)
    for bh in ring:
        put_bh(bh)
    return 0


def trylocks_after_moving(newpage, page):
    """Never sleeps on a buffer: tries each lock once the slot moved, and backs out."""
    if not page.flags & PG.private:
        return migrate_page(newpage, page)
    if migrate_page_remove_references(newpage, page, 3):
        return -EAGAIN
    ring = list(buffers(page.private))
    locked = []
    for bh in ring:
        if not trylock_buffer(bh):
            for other in locked:
                unlock_buffer(other)
                put_bh(other)
            return -EAGAIN
        get_bh(bh)
        locked.append(bh)
    return _move(newpage, page, ring, locked)


def moves_busy_buffers(newpage, page):
    """Tries each buffer's lock once, and moves the buffers it could not lock all the same."""
    if not page.flags & PG.private:
        return migrate_page(newpage, page)
    if migrate_page_remove_references(newpage, page, 3):
        return -EAGAIN
    ring = list(buffers(page.private))
    locked = []
    for bh in ring:
        get_bh(bh)
        if trylock_buffer(bh):
            locked.append(bh)
    return _move(newpage, page, ring, locked)


def spins_on_buffers(newpage, page):
    """buffer_migrate_page's steps, spinning on each buffer's trylock with no cond_resched."""
    if not page.flags & PG.private:
        return migrate_page(newpage, page)
    if migrate_page_remove_references(newpage, page, 3):
        return -EAGAIN
    ring = list(buffers(page.private))
    for bh in ring:
        get_bh(bh)
        while not trylock_buffer(bh):
            pass
    return _move(newpage, page, ring, ring)


def spins_on_its_own_buffer(newpage, page):
    """Locks a buffer, then spins on its trylock: nobody else can ever let it go."""
    from fsaops.buffer import lock_buffer

    if not page.flags & PG.private:
        return migrate_page(newpage, page)
    if migrate_page_remove_references(newpage, page, 3):
        return -EAGAIN
    ring = list(buffers(page.private))
    lock_buffer(ring[0])
    while not trylock_buffer(ring[0]):
        pass
    return _move(newpage, page, ring, [ring[0]])


def copies_busy_buffers(newpage, page):
    """Waits for the first buffer; gives the new page a copy of any other another task holds."""
    from fsaops.buffer import BufferHead, bh_offset, lock_buffer

    if not page.flags & PG.private:
        return migrate_page(newpage, page)
    if migrate_page_remove_references(newpage, page, 3):
        return -EAGAIN
    ring, locked = [], []
    for i, bh in enumerate(list(buffers(page.private))):
        if i == 0 or trylock_buffer(bh):
            if i == 0:
                lock_buffer(bh)
            get_bh(bh)
            locked.append(bh)
            ring.append(bh)
        else:
            copy = BufferHead(newpage, bh_offset(bh), bh.b_size, bh.b_bdev)
            copy.b_state = bh.b_state & ~BH.lock
            copy.b_blocknr = bh.b_blocknr
            get_bh(copy)
            ring.append(copy)
            bh.b_this_page = bh  # left to its I/O, on the old page
    for bh, after in zip(ring, ring[1:] + ring[:1]):
        bh.b_this_page = after
    return _move(newpage, page, ring, locked)


def drops_the_ring(newpage, page):
    """Moves the page without its buffers, never freeing them: the new page reads its own."""
    if page.flags & PG.private:
        page.flags &= ~PG.private
        page.private = 0
        page.count -= 1
    if migrate_page_remove_references(newpage, page, 2):
        return -EAGAIN
    migrate_page_copy(newpage, page)
    return 0


def tries_every_lock_first(newpage, page):
    """Tries every buffer lock before it touches the page; -EAGAIN, page untouched, if busy."""
    if not page.flags & PG.private:
        return migrate_page(newpage, page)
    ring = list(buffers(page.private))
    locked = []
    for bh in ring:
        if not trylock_buffer(bh):
            for other in locked:
                unlock_buffer(other)
            return -EAGAIN
        locked.append(bh)
    if migrate_page_remove_references(newpage, page, 3):
        for bh in locked:
            unlock_buffer(bh)
        return -EAGAIN
    for bh in ring:
        get_bh(bh)
    return _move(newpage, page, ring, locked)


_OWN_LOCKS = {}


def _locks_buffers_under(lock_name, copy_first=False):
    def locks_buffers_under(newpage, page):
        """buffer_migrate_page, sleeping on the buffer locks under a spinlock."""
        from fsaops.buffer import lock_buffer

        if not page.flags & PG.private:
            return migrate_page(newpage, page)
        mapping = page.mapping
        if migrate_page_remove_references(newpage, page, 3):
            return -EAGAIN
        ring = list(buffers(page.private))
        if copy_first:
            migrate_page_copy(newpage, page)  # the old page leaves its mapping here
        if lock_name == "s_table_lock":  # a lock the table keeps of its own, per mount
            sb = mapping.host.i_sb
            lock = _OWN_LOCKS.setdefault(id(sb), Spinlock("s_table_lock", sb))
        elif lock_name == "lru_lock":
            lock = page.node.lru_lock
        elif lock_name == "page_table_lock":
            lock = page.node.kernel.mms[0].page_table_lock
        elif lock_name == "swap_tree_lock":  # the swap cache's
            lock = page.node.kernel.swapper_space.tree_lock
        elif lock_name.startswith("another_"):  # the lock of the mount's other file
            others = [i.i_mapping for i in mapping.host.i_sb.inodes if i.i_mapping is not mapping]
            lock = getattr(others[0], lock_name.removeprefix("another_"))
        else:
            lock = getattr(mapping, lock_name)
        with lock:
            for bh in ring:
                get_bh(bh)
                lock_buffer(bh)
        return _move(newpage, page, ring, ring)

    return locks_buffers_under


def points_buffers_at_the_new_page(newpage, page):
    """Moves the page, points its buffers at the new page, and attaches them to neither."""
    if not page.flags & PG.private:
        return migrate_page(newpage, page)
    ring = list(buffers(page.private))
    page.flags &= ~PG.private
    page.private = 0
    page.count -= 1
    if migrate_page_remove_references(newpage, page, 2):
        return -EAGAIN
    for bh in ring:
        set_bh_page(bh, newpage, bh.b_data & (page.node.page_size - 1))
    migrate_page_copy(newpage, page)
    return 0


def _type(name, migratepage):
    table = attrs.evolve(ext2_aops, name=f"{name}_aops", migratepage=migratepage)
    return attrs.evolve(EXT2, name=name, modes={"default": table}, page_cache={})


@fsaops.hookimpl
def fsaops_filesystem_types():
    return [
        _type("trylocks_after_moving", trylocks_after_moving),
        _type("moves_busy_buffers", moves_busy_buffers),
        _type("waits_for_buffers", buffer_migrate_page),
        _type("spins_on_buffers", spins_on_buffers),
        _type("spins_on_its_own_buffer", spins_on_its_own_buffer),
        _type("copies_busy_buffers", copies_busy_buffers),
        _type("drops_the_ring", drops_the_ring),
        _type("tries_every_lock_first", tries_every_lock_first),
        _type("sleeps_under_tree_lock", _locks_buffers_under("tree_lock")),
        _type("sleeps_under_private_lock", _locks_buffers_under("private_lock")),
        _type("sleeps_under_tree_lock_after_copy", _locks_buffers_under("tree_lock", True)),
        _type("sleeps_under_i_mmap_lock", _locks_buffers_under("i_mmap_lock")),
        _type("sleeps_under_lru_lock", _locks_buffers_under("lru_lock")),
        _type("sleeps_under_page_table_lock", _locks_buffers_under("page_table_lock")),
        _type("sleeps_under_s_table_lock", _locks_buffers_under("s_table_lock")),
        _type("sleeps_under_another_tree_lock", _locks_buffers_under("another_tree_lock")),
        _type("sleeps_under_another_private_lock", _locks_buffers_under("another_private_lock")),
        _type("sleeps_under_swap_tree_lock", _locks_buffers_under("swap_tree_lock")),
        _type("points_buffers_at_the_new_page", points_buffers_at_the_new_page),
    ]
'''

CONFIG = """\
[kernel]
node_memory = "2MiB"
semantics = "{semantics}"
[plugins]
load = ["bhlocks", "ext2", "swap"]
[[mount]]
fs = "{fs}"
pages = 48
files = 2
block_size = 1024
[processes]
count = 2
anon_pages = 16
[workload]
seed = 5
dirty = 0.2
locked = 0.05
buffer_locked = {fraction}
"""

SEMANTICS = ["v4", "2.6.16", "2.6.17"]
MODES = [(), ("--strict",), ("--debug-vm",)]


@pytest.fixture(scope="module")
def configs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """``bhlocks`` installed; a folder for configs."""
    yield from installed(tmp_path_factory, "bhlocks", PLUGIN)


def run(
    configs: Path, fs: str, *options: str, semantics: str = "v4", fraction: float = 0.25
) -> tuple[int, dict[str, object]]:
    """``fsaops migrate --json OPTIONS`` of the scenario on ``fs``: exit status, report."""
    text = CONFIG.format(fs=fs, semantics=semantics, fraction=fraction)
    path = configs / f"{fs}-{semantics}-{'-'.join(options)}-{fraction}.toml"
    return migrate_json(path, text, *options)


@pytest.mark.parametrize("semantics", SEMANTICS)
@pytest.mark.parametrize("options", MODES)
def test_backing_out_after_the_slot_moved_loses_data(
    configs: Path, semantics: str, options: tuple[str, ...]
) -> None:
    rc, report = run(configs, "trylocks_after_moving", *options, semantics=semantics)
    assert rc == 1
    assert report["status"] in {"data lost", "invariant broken"}, report.get("error")


def test_with_no_buffer_held_the_same_table_loses_nothing(configs: Path) -> None:
    """What catches the table above is the state: without it, every trylock succeeds."""
    rc, report = run(configs, "trylocks_after_moving", fraction=0.0)
    assert (rc, report["status"]) == (0, "ok"), report.get("error")


def _poisoned_on_disk(report: dict[str, object], table: str) -> list[str]:
    """The durability proof's lines of pages whose blocks got a freed frame's poison."""
    proofs = report["proofs"]
    assert isinstance(proofs, dict)
    problems = [str(p) for p in proofs["durability"]["problems"]]
    poisoned = [p for p in problems if "reads back poison, what a freed frame holds, in block" in p]
    for line in poisoned:
        assert f"moved by {table}" in line, line
        assert "I/O in flight on a buffer moved or left behind without its lock" in line, line
    return poisoned


def test_a_buffer_moved_while_its_write_was_in_flight_loses_the_block(configs: Path) -> None:
    """The write reads the frame it was submitted from as it ends: by then a freed one.

    Under V4 every old page is freed as soon as its one-page call returns,
    before the write it left in flight ends.  Before, the held lock ended
    with no I/O: the table that moved the buffer all the same got ``ok``
    from a plain run (``findings`` under ``--strict``).
    """
    rc, report = run(configs, "moves_busy_buffers")
    assert (rc, report["status"]) == (1, "data lost"), report.get("error")
    assert _poisoned_on_disk(report, "moves_busy_buffers_aops")
    integrity = report["integrity"]
    assert isinstance(integrity, dict)
    assert integrity["lost"] == 0  # the page cache is right: only the disk lost the block


@pytest.mark.parametrize("semantics", ["2.6.16", "2.6.17"])
def test_from_2_6_16_the_write_ends_before_the_old_frame_is_freed(
    configs: Path, semantics: str
) -> None:
    """A chunk's old pages are freed only once the whole chunk is done, after the writes end.

    The write then reads the old frame while it still holds the page's data:
    the disk loses nothing, and only ``--strict`` says the buffer was moved
    without its lock.
    """
    rc, report = run(configs, "moves_busy_buffers", semantics=semantics)
    assert (rc, report["status"]) == (0, "ok"), report.get("error")
    assert not _poisoned_on_disk(report, "moves_busy_buffers_aops")
    rc, report = run(configs, "moves_busy_buffers", "--strict", semantics=semantics)
    assert (rc, report["status"]) == (1, "findings"), report.get("error")
    assert "without its lock held" in str(report["findings"])


def test_strict_finds_a_buffer_moved_while_another_task_held_it(configs: Path) -> None:
    rc, report = run(configs, "moves_busy_buffers", "--strict")
    assert (rc, report["status"]) == (1, "data lost"), report.get("error")
    said = str(report["findings"])
    assert "moves_busy_buffers_aops" in said
    assert "without its lock held" in said


def test_debug_vm_names_the_task_that_held_the_moved_buffer(configs: Path) -> None:
    rc, report = run(configs, "moves_busy_buffers", "--debug-vm")
    assert rc == 1
    assert report["status"] == "invariant broken"
    assert "while buffer_writer held its lock" in str(report["error"])


@pytest.mark.parametrize("semantics", SEMANTICS)
@pytest.mark.parametrize("options", MODES)
def test_a_table_that_sleeps_on_each_buffer_lock_passes(
    configs: Path, semantics: str, options: tuple[str, ...]
) -> None:
    rc, report = run(configs, "waits_for_buffers", *options, semantics=semantics)
    assert (rc, report["status"], report["findings"]) == (0, "ok", []), report.get("error")
    workload = report["workload"]
    assert isinstance(workload, dict)
    # A quarter of the file pages (every one carries buffers once read in), rounded half up.
    assert workload["buffer_locked"] == 12
    totals = report["totals"]
    assert isinstance(totals, dict)
    assert totals["moved"] == totals["pages"]


@pytest.mark.parametrize("semantics", SEMANTICS)
def test_a_table_that_spins_on_each_buffer_lock_passes(configs: Path, semantics: str) -> None:
    """Before: "stuck: the run made no progress for 30 s", half a minute in.

    The spin gave the clock no tick, so the task holding the buffer never
    let it go; on a kernel its I/O ends while the CPU spins.
    """
    rc, report = run(configs, "spins_on_buffers", semantics=semantics)
    assert (rc, report["status"], report["findings"]) == (0, "ok", []), report.get("error")
    workload = report["workload"]
    assert isinstance(workload, dict)
    assert workload["buffer_locked"] == 12
    totals = report["totals"]
    assert isinstance(totals, dict)
    assert totals["moved"] == totals["pages"]


def test_a_table_that_spins_on_a_buffer_lock_it_holds_fails_at_once(configs: Path) -> None:
    """Before: "stuck: the run made no progress for 30 s"; now the spin is named, at once."""
    rc, report = run(configs, "spins_on_its_own_buffer", fraction=0.0)
    assert (rc, report["status"]) == (1, "kernel bug")
    message = report["error"]
    assert isinstance(message, str)
    assert "waiting for the buffer lock of" in message, message
    assert "tried 10,000 times in a row, and nothing can wake it" in message, message
    assert "spins_on_its_own_buffer_aops" in message, message


@pytest.mark.parametrize("fs", ["copies_busy_buffers", "drops_the_ring"])
@pytest.mark.parametrize("semantics", SEMANTICS)
def test_a_held_buffer_left_on_the_freed_frame_is_an_invariant_broken(
    configs: Path, fs: str, semantics: str
) -> None:
    """And, where its write ended on the freed frame, the block on disk is lost."""
    rc, report = run(configs, fs, semantics=semantics)
    assert rc == 1
    said = str(report["invariants"])
    assert "that buffer_writer held locked is on pfn" in said
    assert "a free frame: migration left it behind" in said
    if _poisoned_on_disk(report, f"{fs}_aops"):
        assert report["status"] == "data lost", report.get("error")
    else:
        assert report["status"] == "invariant broken", report.get("error")


def test_buffers_pointed_at_the_new_page_but_not_attached_are_caught(configs: Path) -> None:
    rc, strict = run(configs, "points_buffers_at_the_new_page", "--strict", fraction=0.0)
    assert (rc, strict["status"]) == (1, "findings")
    findings = strict["findings"]
    assert isinstance(findings, list)
    assert {f["kind"] for f in findings} == {"buffers"}
    rc, debug = run(configs, "points_buffers_at_the_new_page", "--debug-vm", fraction=0.0)
    assert (rc, debug["status"]) == (1, "invariant broken")
    assert "without its buffers, which were never freed" in str(debug["error"])


@pytest.mark.parametrize(
    ("fs", "said"),
    [
        ("copies_busy_buffers", "is not the one pfn"),
        ("drops_the_ring", "without its buffers, which were never freed"),
    ],
)
def test_strict_and_debug_vm_name_the_call(configs: Path, fs: str, said: str) -> None:
    rc, strict = run(configs, fs, "--strict")
    assert rc == 1
    findings = strict["findings"]
    assert isinstance(findings, list)
    assert any(f["kind"] == "buffers" and said in f["example"] for f in findings), findings
    rc, debug = run(configs, fs, "--debug-vm")
    assert (rc, debug["status"]) == (1, "invariant broken")
    assert said in str(debug["error"])


@pytest.mark.parametrize("semantics", SEMANTICS)
@pytest.mark.parametrize("options", MODES)
def test_a_table_that_gives_up_on_a_busy_buffer_before_touching_the_page_passes(
    configs: Path, semantics: str, options: tuple[str, ...]
) -> None:
    """-EAGAIN with the page as it was; the write ends soon after it is met, the next pass moves."""
    rc, report = run(configs, "tries_every_lock_first", *options, semantics=semantics)
    assert (rc, report["status"], report["findings"]) == (0, "ok", []), report.get("error")
    totals = report["totals"]
    assert isinstance(totals, dict)
    assert (totals["not_migrated"], totals["moved"]) == (0, totals["pages"])
    retries = totals["retry_by_pass"]
    assert isinstance(retries, list)
    assert retries[0] >= 12  # each held buffer was met once in pass 0, the page tried again


@pytest.mark.parametrize(
    ("fs", "semantics", "kernel_bug"),
    [
        ("sleeps_under_tree_lock", "v4", True),
        ("sleeps_under_tree_lock", "2.6.17", True),
        # The old page has left its mapping by the time the call sleeps.
        ("sleeps_under_tree_lock_after_copy", "v4", True),
        ("sleeps_under_tree_lock_after_copy", "2.6.17", True),
        ("sleeps_under_private_lock", "2.6.16", True),
        ("sleeps_under_private_lock", "2.6.17", True),
        # V4's buffer_migrate_page sleeps on buffer locks under private_lock itself.
        ("sleeps_under_private_lock", "v4", False),
        ("sleeps_under_i_mmap_lock", "v4", True),
        ("sleeps_under_i_mmap_lock", "2.6.16", True),
        ("sleeps_under_lru_lock", "v4", True),
        ("sleeps_under_lru_lock", "2.6.17", True),
        ("sleeps_under_page_table_lock", "v4", True),
        ("sleeps_under_page_table_lock", "2.6.16", True),
        # A spinlock of the table's own (fsaops.spinlock.Spinlock).
        ("sleeps_under_s_table_lock", "v4", True),
        ("sleeps_under_s_table_lock", "2.6.17", True),
    ],
)
def test_sleeping_on_a_held_buffer_under_a_spinlock_is_a_kernel_bug(
    configs: Path, fs: str, semantics: str, kernel_bug: bool
) -> None:
    rc, report = run(configs, fs, semantics=semantics)
    if not kernel_bug:
        assert (rc, report["status"]) == (0, "ok"), report.get("error")
        return
    assert (rc, report["status"]) == (1, "kernel bug"), report.get("error")
    lock = fs.removeprefix("sleeps_under_").removesuffix("_after_copy")
    assert (
        f"sleeping function called from invalid context: a task sleeps on buffer lock holding "
        f"the {lock}" in str(report["error"])
    )


@pytest.mark.parametrize(
    ("fs", "lock"),
    [
        ("sleeps_under_another_tree_lock", "tree_lock of mount0/file"),
        # V4's own sleep under private_lock is under the page's mapping's alone.
        ("sleeps_under_another_private_lock", "private_lock of mount0/file"),
        ("sleeps_under_swap_tree_lock", "tree_lock of swapper_space (swap_aops)"),
    ],
)
@pytest.mark.parametrize("semantics", SEMANTICS)
def test_sleeping_under_another_mappings_lock_is_a_kernel_bug(
    configs: Path, fs: str, lock: str, semantics: str
) -> None:
    """Another file's or the swap cache's plain spinlock, found by looking at every mapping."""
    rc, report = run(configs, fs, semantics=semantics)
    assert (rc, report["status"]) == (1, "kernel bug"), report.get("error")
    said = str(report["error"])
    assert "sleeping function called from invalid context: a task sleeps on buffer lock" in said
    assert f"holding the {lock}" in said


def test_every_buffer_locked_page_is_met_with_its_buffer_locked() -> None:
    """Each hold lasts until a task sleeps on it: the migration waits on every one."""
    from fsaops.config import parse_config
    from fsaops.plugins import load_plugins
    from fsaops.scenario import Scenario

    text = CONFIG.format(fs="ext2", semantics="v4", fraction=0.5).replace('"bhlocks", ', "")
    registry = load_plugins(cli=["ext2", "swap"])
    world = Scenario(parse_config(text, "s.toml"), registry, seed=5)
    assert len(world.held_buffers) == 24
    assert all(held.waited is not None for _slot, held in world.held_buffers)
    world.migrate()
    assert all(held.waited is None for _slot, held in world.held_buffers)
    assert world.buffers_left == []


def test_the_held_buffers_make_the_migration_wait(configs: Path) -> None:
    _rc, held = run(configs, "waits_for_buffers", fraction=0.5)
    _rc, free = run(configs, "waits_for_buffers", fraction=0.0)
    ticks_held, ticks_free = held["ticks"], free["ticks"]
    assert isinstance(ticks_held, dict) and isinstance(ticks_free, dict)
    assert ticks_held["migration"] > ticks_free["migration"]


def test_the_same_seed_gives_the_same_report(configs: Path) -> None:
    first = run(configs, "waits_for_buffers", fraction=0.3)
    assert run(configs, "waits_for_buffers", fraction=0.3) == first


NOBH = """\
[kernel]
node_memory = "2MiB"
[[mount]]
fs = "ext2"
mode = "nobh"
pages = 32
files = 2
[processes]
anon_pages = 0
[workload]
buffer_locked = 0.5
out_of_line = {out_of_line}
"""


def test_pages_read_without_buffers_are_bad_input(tmp_path: Path) -> None:
    path = tmp_path / "nobh.toml"
    rc, report = migrate_json(path, NOBH.format(out_of_line="false"))
    assert rc == 2
    error = str(report["error"])
    assert error.startswith(
        f"{path}: workload.buffer_locked: no file page of this scenario carries buffer heads"
    )
    assert "ext2_nobh_aops" in error
    assert "workload.out_of_line = true" in error


def test_out_of_line_is_not_offered_where_a_block_is_a_page(tmp_path: Path) -> None:
    text = NOBH.format(out_of_line="false").replace(
        'mode = "nobh"', 'mode = "nobh"\nblock_size = 4096'
    )
    rc, report = migrate_json(tmp_path / "nobh4k.toml", text)
    assert rc == 2
    said = str(report["error"]).split(": ", 1)[1]  # past the file's name
    assert said.endswith("carries buffer heads once read in (its tables: ext2_nobh_aops)")


def test_pages_read_through_buffers_out_of_line_can_be_buffer_locked(tmp_path: Path) -> None:
    rc, report = migrate_json(tmp_path / "nobh.toml", NOBH.format(out_of_line="true"))
    assert (rc, report["status"]) == (0, "ok"), report.get("error")
    workload = report["workload"]
    assert isinstance(workload, dict)
    assert workload["buffer_locked"] == 16


ANON_ONLY = """\
[kernel]
node_memory = "1MiB"
[processes]
anon_pages = 32
[workload]
buffer_locked = 0.1
"""


def test_a_scenario_with_no_page_cache_is_refused_before_it_is_built(tmp_path: Path) -> None:
    rc, report = migrate_json(tmp_path / "anon.toml", ANON_ONLY)
    assert rc == 2
    assert "workload.buffer_locked: no page of this scenario can be buffer-locked" in str(
        report["error"]
    )
