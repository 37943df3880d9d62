"""Building and checking in bulk: the same states, and every wrong page still caught.

The world builds large files a run of pages at a time (their data put on
the device, each page read in through the table's ``readpage``) and the
read-back and the proofs compare a run of pages in one comparison.  These
tests hold the bulk paths to what page-by-page work gives: the same bytes,
the same page states, and every lost, corrupted or misplaced page named,
exactly once, even in the middle of a run that is otherwise right.
"""

from __future__ import annotations

import errno
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs
import pytest

from fsaops.aops import ReadPages
from fsaops.buffer import BH, bh_offset, buffers, mpage_readpage, nobh_writepage
from fsaops.config import parse_config
from fsaops.content import Contents
from fsaops.errors import Deadlock
from fsaops.mapping import AS_EIO, AddressSpace
from fsaops.migrate import MigrateStats
from fsaops.oracle import RUN_PAGES, Oracle
from fsaops.page import PG, Page, get_page, lock_page, put_page, unlock_page
from fsaops.plugins import Registry
from fsaops.proofs import (
    Outcome,
    Placed,
    Places,
    prove_durability,
    prove_placement,
    snapshot_places,
)
from fsaops.proofs import ledger as proof_ledger
from fsaops.rmap import Pte
from fsaops.scenario import Scenario, Slot, Slots, plan_scenario, run_plan
from fsaops.world import File, SetupError, World
from fsaops.writeback import (
    WritebackControl,
    clear_page_dirty_for_io,
    filemap_write_and_wait,
    redirty_page_for_writepage,
)

PAGES = 3 * RUN_PAGES + 17
"""Pages of the file the tests build: several runs and a short last one."""


def _world(registry: Registry, mode: str = "nobh", block_size: int = 1024) -> tuple[World, File]:
    world = World(registry=registry, node_pages=PAGES + 64)
    sb = world.mount("ext2", mode, block_size=block_size)
    record = world.create_file(sb)
    world.load_file(record, PAGES)
    return world, record


# -- the content generator -------------------------------------------------------------


def test_fill_writes_the_pages_page_makes_at_any_offset() -> None:
    contents = Contents(11, 1024)
    gens = [0, 3, 3, 1, 0]
    buf = bytearray(7 * 1024)
    assert contents.fill(buf, 4, 9, gens, at=1024) == 5 * 1024
    want = b"".join(contents.page(4, 9 + i, gen) for i, gen in enumerate(gens))
    assert buf[1024 : 6 * 1024] == want
    assert buf[:1024] == bytes(1024) and buf[6 * 1024 :] == bytes(1024), "nothing else written"
    one = bytearray(3 * 1024)
    contents.fill(memoryview(one), 4, 9, 2, count=3)
    assert one == b"".join(contents.page(4, i, 2) for i in (9, 10, 11))


def test_fill_refuses_what_does_not_fit() -> None:
    contents = Contents(1, 1024)
    with pytest.raises(ValueError, match="do not fit"):
        contents.fill(bytearray(2047), 1, 0, 0, count=2)
    with pytest.raises(ValueError, match="count"):
        contents.fill(bytearray(2048), 1, 0, 0)


# -- building ------------------------------------------------------------------------------


def test_a_loaded_file_is_on_its_device_and_read_in_clean(registry: Registry) -> None:
    world, record = _world(registry)
    inode = record.inode
    assert (record.npages, inode.i_size) == (PAGES, PAGES * world.page_size)
    assert Oracle.on_disk_range(inode, 0, PAGES) == world.expected_range(record, 0, PAGES)
    node = world.kernel.nodes[0]
    for index in range(PAGES):
        page = inode.i_mapping.lookup(index)
        assert page is not None and page.node is node
        assert page.flags & (PG.uptodate | PG.lru | PG.referenced) == (
            PG.uptodate | PG.lru | PG.referenced
        ), "read in, as read(2) would: up to date, on the LRU, referenced"
        assert not page.flags & (PG.dirty | PG.locked | PG.writeback | PG.active)
        assert page.count == 1, "only the page cache holds it"
        assert Oracle.frame(page) == world.expected(record, index)
    assert node.nr_inactive == PAGES
    assert world.read_range(record, 0, PAGES) == world.expected_range(record, 0, PAGES)


def test_loading_with_buffers_attaches_them_through_readpage(registry: Registry) -> None:
    world, record = _world(registry, mode="default")
    for index in (0, PAGES - 1):
        page = record.inode.i_mapping.lookup(index)
        assert page is not None and page.flags & PG.private
        assert page.count == 2, "the page cache and the buffers"
        assert Oracle.frame(page) == world.expected(record, index)


def test_loading_an_execute_in_place_file_only_writes_its_blocks(registry: Registry) -> None:
    world = World(registry=registry, node_pages=64)
    record = world.create_file(world.mount("ext2", "xip"))
    world.load_file(record, 40)
    assert record.inode.i_mapping.nrpages == 0
    assert world.kernel.nodes[0].nr_free == 64
    assert world.read_range(record, 0, 40) == world.expected_range(record, 0, 40)


def test_loading_needs_a_readpage(registry: Registry) -> None:
    world = World(registry=registry, node_pages=64)
    sb = world.mount("ext2", "nobh")
    sb.a_ops = attrs.evolve(sb.a_ops, readpage=None)
    record = world.create_file(sb)
    with pytest.raises(SetupError, match="no readpage"):
        world.load_file(record, 4)


def test_loading_more_than_the_node_holds_is_a_setup_error(registry: Registry) -> None:
    world = World(registry=registry, node_pages=16)
    record = world.create_file(world.mount("ext2", "nobh"))
    with pytest.raises(SetupError, match="out of memory on node 0"):
        world.load_file(record, 17)


def test_pages_whose_blocks_are_scattered_are_read_and_written_through_buffers(
    registry: Registry,
) -> None:
    """Two files grown a block at a time in turn: no page's blocks are consecutive."""
    world = World(registry=registry, node_pages=64)
    sb = world.mount("ext2", "nobh", block_size=1024)
    a, b = world.create_file(sb), world.create_file(sb)
    for iblock in range(8 * 4):
        a.inode.get_block(iblock, True)
        b.inode.get_block(iblock, True)
    assert a.inode.blocks[:2] == [a.inode.blocks[0], a.inode.blocks[0] + 2]
    world.load_file(a, 8)
    assert world.read_range(a, 0, 8) == world.expected_range(a, 0, 8)
    assert Oracle.on_disk_range(a.inode, 0, 8) == world.expected_range(a, 0, 8)
    # do_mpage_readpage's "confused" path: block_read_full_page, which attaches buffers.
    for cached in a.inode.i_mapping.pages():
        assert cached.flags & PG.private
        ring = list(buffers(cached.private))
        blocks = a.inode.blocks[cached.index * 4 : cached.index * 4 + 4]
        assert [bh.b_blocknr for bh in ring] == blocks
        assert all(bh.b_state & BH.uptodate and bh.b_state & BH.mapped for bh in ring)
    # Written back through its buffers.
    page = a.inode.i_mapping.lookup(5)
    assert page is not None
    world.dirty_range(a, [5])
    lock_page(page)
    page.flags &= ~PG.dirty
    get_page(page)
    assert nobh_writepage(page, WritebackControl()) == 0
    world.kernel.run_until_idle()
    put_page(page)
    assert Oracle.on_disk(a.inode, 5) == world.expected(a, 5) == Oracle.frame(page)


def test_a_nobh_page_out_of_line_on_disk_gets_buffers_when_written_back(
    registry: Registry,
) -> None:
    """mpage_writepage says -EAGAIN for it; nobh_writepage then writes it through buffers."""
    world = World(registry=registry, node_pages=64)
    sb = world.mount("ext2", "nobh", block_size=1024)
    a, b = world.create_file(sb), world.create_file(sb)
    world.write_file(a, 2)  # written with write(2): no buffers, blocks in line
    pages = a.inode.i_mapping.pages()
    assert not any(p.flags & PG.private for p in pages)
    for iblock in range(8, 16):  # the next two pages' blocks, interleaved with b's
        a.inode.get_block(iblock, True)
        b.inode.get_block(iblock, True)
    world.write_file(a, 2)
    third, fourth = a.inode.i_mapping.lookup(2), a.inode.i_mapping.lookup(3)
    assert third is not None and fourth is not None
    assert third.flags & PG.dirty and not third.flags & PG.private
    lock_page(third)
    assert clear_page_dirty_for_io(third)
    assert nobh_writepage(third, WritebackControl()) == 0
    world.kernel.run_until_idle()
    assert third.flags & PG.private, "written through buffers"
    assert Oracle.on_disk(a.inode, 2) == world.expected(a, 2)
    # A page whose blocks follow on is written without buffers.
    first = pages[0]
    world.dirty_range(a, [0])
    lock_page(first)
    assert clear_page_dirty_for_io(first)
    assert nobh_writepage(first, WritebackControl()) == 0
    world.kernel.run_until_idle()
    assert not first.flags & PG.private
    assert Oracle.on_disk(a.inode, 0) == world.expected(a, 0)


def test_a_nobh_page_with_holes_after_its_blocks_is_read_without_buffers(
    registry: Registry,
) -> None:
    """Mapped blocks in line, then holes: read and zeroed; a hole before a block is confused."""
    world = World(registry=registry, node_pages=64)
    sb = world.mount("ext2", "nobh", block_size=1024)
    record = world.create_file(sb)
    inode = record.inode
    world.write_file(record, 2)
    filemap_write_and_wait(inode.i_mapping)
    world.kernel.run_until_idle()
    tail, head = inode.blocks[4:8], inode.blocks[0:4]
    inode.blocks[6:8] = [0, 0]  # page 1: two blocks, then holes
    inode.blocks[0:2] = [0, 0]  # page 0: holes, then two blocks
    for index in (0, 1):
        page = inode.i_mapping.lookup(index)
        assert page is not None
        lock_page(page)
        page.flags &= ~PG.uptodate
        page.data[:] = b"\xff" * world.page_size
        assert mpage_readpage(page) == 0
    one = inode.i_mapping.lookup(1)
    zero = inode.i_mapping.lookup(0)
    assert one is not None and zero is not None
    assert not one.flags & (PG.private | PG.mappedtodisk) and one.flags & PG.uptodate
    assert bytes(one.data[2048:]) == bytes(2048)
    assert bytes(one.data[:2048]) == world.expected(record, 1)[:2048]
    assert zero.flags & PG.private, "a hole before a mapped block: block_read_full_page"
    assert bytes(zero.data[:2048]) == bytes(2048)
    assert bytes(zero.data[2048:]) == world.expected(record, 0)[2048:]
    assert tail[0] and head[0]


def test_dirty_range_stores_the_next_generation_and_dirties_through_the_table(
    registry: Registry,
) -> None:
    world = World(registry=registry, node_pages=64)
    sb = world.mount("ext3", "journal", block_size=1024)
    record = world.create_file(sb)
    world.load_file(record, 6)
    world.dirty_range(record, [1, 4])
    world.dirty_range(record, [4], gen=7)
    assert record.gens == [0, 1, 0, 0, 7, 0]
    for index, page in enumerate(record.inode.i_mapping.pages()):
        assert Oracle.frame(page) == world.expected(record, index)
        dirty = index in (1, 4)
        assert bool(page.flags & PG.dirty) == dirty
        # ext3 data=journal's own set_page_dirty marks the page for journalling.
        assert bool(page.flags & PG.checked) == dirty
    record.inode.i_mapping.page_tree[2] = None
    with pytest.raises(SetupError, match="not in memory"):
        world.dirty_range(record, [2])


def _name(mapping: object) -> str | None:
    return None if mapping is None else str(getattr(mapping, "name", mapping))


def _private(page: Page) -> object:
    """A page's private data as two machines can compare it: its buffer ring, field by field."""
    if not page.flags & PG.private:
        return page.private
    return tuple(
        (bh_offset(bh), bh.b_blocknr, bh.b_state, bh.b_count, bh.b_size)
        for bh in buffers(page.private)
    )


def _machine_state(world: World) -> dict[str, object]:
    """Everything reading pages in can change: pages, LRU and free lists, counters, frames."""
    kernel = world.kernel
    nodes = []
    for node in kernel.nodes:
        used = [p for p in node.pages if p.count]
        nodes.append(
            {
                "pages": [
                    (p.pfn, p.flags, p.count, p.mapcount, p.index, _private(p), _name(p.mapping))
                    for p in used
                ],
                "inactive": [p.pfn for p in node.inactive],
                "active": [p.pfn for p in node.active],
                "free": [p.pfn for p in node.free_list],
                "counts": (node.nr_inactive, node.nr_active, node.nr_free),
                "frames": bytes(node.mem),
            }
        )
    trees = [
        [None if p is None else p.pfn for p in record.inode.i_mapping.page_tree]
        for record in world.files
    ]
    return {"nodes": nodes, "trees": trees, "vmstat": kernel.vmstat.as_dict()}


def _interleave_blocks(world: World, record: File, npages: int) -> None:
    """Blocks interleaved with another file's and out of line inside pages (1 KiB blocks)."""
    other = world.create_file(record.inode.i_sb)
    for iblock in range(npages * 4):
        if iblock % 9:
            record.inode.get_block(iblock, True)
        if iblock % 3 == 0:
            other.inode.get_block(iblock, True)


def _nobh_file(
    registry: Registry,
    npages: int,
    prepare: Callable[[World, File], None],
    member: str,
    *,
    keep: bool,
) -> tuple[World, File]:
    """A file of ``npages`` loaded on an ext2 nobh mount whose table has ``member`` or not."""
    world = World(registry=registry, node_pages=npages + 64)
    sb = world.mount("ext2", "nobh", block_size=1024)
    assert getattr(sb.a_ops, member) is not None
    if not keep:
        missing: dict[str, Any] = {member: None}
        sb.a_ops = attrs.evolve(sb.a_ops, **missing)
    record = world.create_file(sb)
    prepare(world, record)
    world.load_file(record, npages)
    return world, record


def _load_both_ways(
    registry: Registry, prepare: Callable[[World, File], None], npages: int
) -> tuple[dict[str, object], dict[str, object]]:
    """The machine after ``load_file`` through ``readpages``, and through ``readpage`` alone."""
    states = []
    for batch in (True, False):
        world, record = _nobh_file(registry, npages, prepare, "readpages", keep=batch)
        assert world.read_range(record, 0, npages) == world.expected_range(record, 0, npages)
        states.append(_machine_state(world))
    return states[0], states[1]


def test_readpages_leaves_every_page_as_readpage_would(registry: Registry) -> None:
    batch, single = _load_both_ways(registry, lambda world, record: None, PAGES)
    assert batch == single


def test_readpages_reads_scattered_blocks_and_frames_as_readpage_would(
    registry: Registry,
) -> None:
    """Blocks interleaved with another file's, a hole, and free frames out of order."""

    def prepare(world: World, record: File) -> None:
        _interleave_blocks(world, record, 40)
        node = world.kernel.nodes[0]
        taken = [node.alloc_page() for _ in range(12)]
        for page in taken[::3] + taken[1::3] + taken[2::3]:
            assert page is not None
            put_page(page)  # back on the free list in another order

    batch, single = _load_both_ways(registry, prepare, 40)
    assert batch == single


def _sync_both_ways(
    registry: Registry,
    prepare: Callable[[World, File], None],
    npages: int,
    *,
    size: int | None = None,
) -> tuple[dict[str, object], dict[str, object]]:
    """The machine after a sync through ``writepages``, and through ``writepage`` alone.

    Two pages in three are dirtied (runs of two with gaps) after the file
    is read in; ``size`` cuts the file so that its last page is partial.
    """
    states = []
    for batch in (True, False):
        world, record = _nobh_file(registry, npages, prepare, "writepages", keep=batch)
        sb = record.inode.i_sb
        world.dirty_range(record, [i for i in range(npages) if i % 3 != 1])
        mapping = record.inode.i_mapping
        if size is not None:
            record.inode.i_size = size
        before = world.kernel.vmstat.nr_writepage
        assert filemap_write_and_wait(mapping) == 0
        world.kernel.run_until_idle()
        assert world.kernel.vmstat.nr_writepage - before == len(range(0, npages, 3)) + npages // 3
        assert not any(p.flags & (PG.dirty | PG.writeback | PG.locked) for p in mapping.pages())
        state = _machine_state(world)
        state["disk"] = bytes(sb.s_bdev.mem)
        state["now"] = world.kernel.sched.now
        state["mapping_flags"] = mapping.flags
        states.append(state)
    return states[0], states[1]


def test_writepages_leaves_every_page_and_block_as_writepage_would(registry: Registry) -> None:
    batch, single = _sync_both_ways(registry, lambda world, record: None, PAGES)
    assert batch == single


def test_writepages_writes_scattered_blocks_as_writepage_would(registry: Registry) -> None:
    """Pages whose blocks are out of line, interleaved with another file's."""
    npages = 40

    def prepare(world: World, record: File) -> None:
        _interleave_blocks(world, record, npages)

    batch, single = _sync_both_ways(registry, prepare, npages)
    assert batch == single


def test_writepages_writes_a_partial_last_page_as_writepage_would(registry: Registry) -> None:
    """A file that ends inside its last page, which is dirty: its blocks past the end stay."""
    npages = 40
    assert (npages - 1) % 3 != 1  # the last page is one of those dirtied
    batch, single = _sync_both_ways(
        registry, lambda world, record: None, npages, size=(npages - 1) * 4096 + 1500
    )
    assert batch == single


def test_writepages_stops_at_a_failed_writepage_and_records_it(registry: Registry) -> None:
    """A page ``writepages`` cannot map goes to ``writepage``; its error ends the sweep."""
    world = World(registry=registry, node_pages=64)
    sb = world.mount("ext2", "nobh", block_size=1024)
    failed: list[int] = []

    def failing_writepage(page: Page, wbc: WritebackControl) -> int:
        failed.append(page.index)
        redirty_page_for_writepage(wbc, page)
        unlock_page(page)
        return -errno.EIO

    sb.a_ops = attrs.evolve(sb.a_ops, writepage=failing_writepage)
    record = world.create_file(sb)
    _interleave_blocks(world, record, 12)
    world.load_file(record, 12)
    mapping = record.inode.i_mapping
    out_of_line = [
        i
        for i in range(12)
        if record.inode.blocks[4 * i : 4 * i + 4]
        != list(range(record.inode.blocks[4 * i], record.inode.blocks[4 * i] + 4))
    ]
    assert out_of_line and out_of_line[0] > 0
    world.dirty_range(record, range(12))
    assert filemap_write_and_wait(mapping) == -errno.EIO
    first = out_of_line[0]
    assert failed == [first]
    assert mapping.flags & AS_EIO
    assert [bool(p.flags & PG.dirty) for p in mapping.pages()] == [i >= first for i in range(12)]
    assert world.read_range(record, 0, 12) == world.expected_range(record, 0, 12)
    disk = Oracle.on_disk_range(record.inode, 0, first)
    assert world.matches(record, 0, first, disk)


def _writes_nothing(mapping: AddressSpace, wbc: WritebackControl) -> int:
    return 0


def _cleans_without_writing(mapping: AddressSpace, wbc: WritebackControl) -> int:
    for page in mapping.pages():
        page.flags &= ~PG.dirty
    return 0


def _writes_the_neighbour(mapping: AddressSpace, wbc: WritebackControl) -> int:
    """Writes each dirty page's data onto the next page's blocks."""
    host = mapping.host
    assert host is not None
    bdev = host.i_sb.s_bdev
    per_page = 4096 // bdev.block_size
    for page in mapping.pages():
        if page.flags & PG.dirty:
            page.flags &= ~PG.dirty
            bdev.write(host.blocks[(page.index + 1) * per_page], bytes(page.data))
    return 0


@pytest.mark.parametrize(
    ("writepages", "said"),
    [
        (_writes_nothing, "still dirty after sync"),
        (_cleans_without_writing, "the disk does not hold the data written last"),
        (_writes_the_neighbour, "the disk does not hold the data written last"),
    ],
)
def test_the_durability_proof_catches_a_writepages_that_does_not_write(
    registry: Registry, writepages: Callable[[AddressSpace, WritebackControl], int], said: str
) -> None:
    world = World(registry=registry, node_pages=64)
    sb = world.mount("ext2", "nobh", block_size=1024)
    sb.a_ops = attrs.evolve(sb.a_ops, writepages=writepages)
    record = world.create_file(sb)
    world.load_file(record, 12)
    world.dirty_range(record, [3, 4, 9])
    proof = prove_durability(world)
    assert proof.failures >= 3
    assert all(said in problem or "does not hold" in problem for problem in proof.problems)
    assert said in proof.problems[0] and record.describe(3) in proof.problems[0]


@pytest.mark.parametrize("member", ["writepages", "writepage"])
def test_a_sync_whose_writeback_never_ends_is_a_deadlock_naming_the_member(
    registry: Registry, member: str
) -> None:
    def never_done(mapping: AddressSpace, wbc: WritebackControl) -> int:
        for page in mapping.pages():
            if page.flags & PG.dirty:
                page.flags = (page.flags & ~PG.dirty) | PG.writeback
        return 0

    def never_done_one(page: Page, wbc: WritebackControl) -> int:
        page.flags |= PG.writeback
        unlock_page(page)
        return 0

    world = World(registry=registry, node_pages=64)
    sb = world.mount("ext2", "nobh", block_size=1024)
    if member == "writepages":
        sb.a_ops = attrs.evolve(sb.a_ops, writepages=never_done)
    else:
        sb.a_ops = attrs.evolve(sb.a_ops, writepages=None, writepage=never_done_one)
    record = world.create_file(sb)
    world.load_file(record, 4)
    world.dirty_range(record, [2])
    said = rf"page writeback of pfn \d+ after ext2_nobh_aops\.{member} of {record.label}, and"
    with pytest.raises(Deadlock, match=said):
        prove_durability(world)


def test_mpage_readpages_releases_a_page_whose_slot_is_taken(registry: Registry) -> None:
    from fsaops.buffer import mpage_readpages

    world = World(registry=registry, node_pages=64)
    record = world.create_file(world.mount("ext2", "nobh"))
    world.load_file(record, 4)
    mapping = record.inode.i_mapping
    cached = mapping.lookup(2)
    node = world.kernel.nodes[0]
    free = node.nr_free
    pages = [node.alloc_page() for _ in range(2)]
    assert pages[0] is not None and pages[1] is not None
    pages[0].index, pages[1].index = 2, 4
    record.inode.reserve(5 * world.page_size)
    assert mpage_readpages(mapping, [pages[0], pages[1]]) == 0
    assert mapping.lookup(2) is cached, "the page already cached stays"
    assert pages[0].count == 0 and not pages[0].flags, "the duplicate went back free"
    assert mapping.lookup(4) is pages[1] and pages[1].count == 1
    assert pages[1].flags & PG.uptodate and not pages[1].flags & PG.locked
    assert node.nr_free == free - 1


def _reads_then_unsets_uptodate(mapping: AddressSpace, pages: Sequence[Page]) -> int:
    from fsaops.buffer import mpage_readpages

    mpage_readpages(mapping, pages)
    pages[1].flags &= ~PG.uptodate
    return 0


def _reads_then_dirties(mapping: AddressSpace, pages: Sequence[Page]) -> int:
    from fsaops.buffer import mpage_readpages

    mpage_readpages(mapping, pages)
    pages[2].flags |= PG.dirty
    return 0


def _reads_then_takes_off_the_lru(mapping: AddressSpace, pages: Sequence[Page]) -> int:
    from fsaops.buffer import mpage_readpages
    from fsaops.lru import isolate_lru_page

    mpage_readpages(mapping, pages)
    isolate_lru_page(pages[3])
    return 0


@pytest.mark.parametrize(
    ("readpages", "said"),
    [
        (_reads_then_dirties, "page2 in failed: ext2_nobh_aops.readpages left it dirty"),
        (_reads_then_takes_off_the_lru, "page3 in failed: ext2_nobh_aops.readpages left it off"),
        (lambda mapping, pages: 0, "page0 in failed: ext2_nobh_aops.readpages left it out of the"),
        (_reads_then_unsets_uptodate, "page1 in failed: ext2_nobh_aops.readpages left it not up"),
        (lambda mapping, pages: -5, "page0 in failed (-5): ext2_nobh_aops.readpages returned EIO"),
        (lambda mapping, pages: "ok", "readpages returned 'ok', not 0 or a negative errno"),
        (lambda mapping, pages: 1, "readpages returned 1, not 0 or a negative errno"),
    ],
)
def test_a_readpages_that_does_not_read_is_a_setup_error_naming_it(
    registry: Registry, readpages: ReadPages, said: str
) -> None:
    world = World(registry=registry, node_pages=64)
    sb = world.mount("ext2", "nobh")
    sb.a_ops = attrs.evolve(sb.a_ops, readpages=readpages)
    record = world.create_file(sb)
    with pytest.raises(SetupError) as raised:
        world.load_file(record, 4)
    assert said in str(raised.value)


def test_a_readpage_that_leaves_a_page_dirty_is_a_setup_error(registry: Registry) -> None:
    world = World(registry=registry, node_pages=64)
    sb = world.mount("ext2", "nobh")

    def dirtying_readpage(page: Page) -> int:
        rc = mpage_readpage(page)
        page.flags |= PG.dirty
        return rc

    sb.a_ops = attrs.evolve(sb.a_ops, readpage=dirtying_readpage, readpages=None)
    record = world.create_file(sb)
    with pytest.raises(SetupError, match=r"page0 in failed: ext2_nobh_aops.readpage left it dirty"):
        world.load_file(record, 4)


def test_loading_over_a_cached_page_with_readpages_is_a_setup_error(registry: Registry) -> None:
    world = World(registry=registry, node_pages=64)
    record = world.create_file(world.mount("ext2", "nobh"))
    world.load_file(record, 4)
    record.npages = 2  # pretend pages 2 and 3 were never loaded
    del record.gens[2:]
    free = world.kernel.nodes[0].nr_free
    with pytest.raises(SetupError, match="already in the page cache"):
        world.load_file(record, 4)
    assert world.kernel.nodes[0].nr_free == free, "no page allocated for the refused run"


def test_matches_is_one_comparison_of_a_whole_run(registry: Registry) -> None:
    world, record = _world(registry)
    data = world.read_range(record, RUN_PAGES, RUN_PAGES)
    assert world.matches(record, RUN_PAGES, RUN_PAGES, data)
    assert not world.matches(record, RUN_PAGES, RUN_PAGES, data[:-1])
    wrong = bytearray(data)
    wrong[7 * world.page_size + 100] ^= 1
    assert not world.matches(record, RUN_PAGES, RUN_PAGES, bytes(wrong))
    assert not world.matches(record, RUN_PAGES + 1, RUN_PAGES, data), "shifted by a page"
    with pytest.raises(IndexError):
        world.matches(record, PAGES - 1, 2, bytes(2 * world.page_size))


def test_file_read_is_generic_file_read_in_the_buffer_it_read_into(registry: Registry) -> None:
    from fsaops.fs import file_read, generic_file_read

    world, record = _world(registry)
    ps = world.page_size
    size = record.inode.i_size
    for pos, count in ((0, 3 * ps), (ps + 5, 2 * ps), (size - 100, ps), (size + ps, ps)):
        data = file_read(record.inode, pos, count)
        assert type(data) is bytearray
        assert data == generic_file_read(record.inode, pos, count)
        assert len(data) == max(0, min(count, size - pos)), "short at the end of the file"
    assert world.read_range(record, 2, 3) == world.expected_range(record, 2, 3)


def test_prefault_changes_no_frame(registry: Registry) -> None:
    world = World(registry=registry, node_pages=300)
    node = world.kernel.nodes[1]
    order = [page.pfn for page in node.free_pages()]
    world.prefault(1, 200)
    world.prefault(1, 10_000)
    assert [page.pfn for page in node.free_pages()] == order
    assert bytes(node.mem) == bytes(len(node.mem))


def test_give_back_returns_only_the_frames_last_freed(registry: Registry) -> None:
    world, record = _world(registry)
    node = world.kernel.nodes[0]
    mapping = record.inode.i_mapping
    held = [p for p in node.pages if p.count]
    freed: list[Page] = []
    for _ in range(5):
        page = node.alloc_page()
        assert page is not None
        page.data[:] = b"\x5a" * world.page_size  # a stale frame
        freed.append(page)
    for page in freed:
        put_page(page)
    order = [page.pfn for page in node.free_pages()]
    world.give_back(0, 3)  # the last three freed: freed[4], freed[3], freed[2]
    assert [page.pfn for page in node.free_pages()] == order, "the free list is as it was"
    for page in freed[2:]:
        assert bytes(page.data) == bytes(world.page_size), "handed back: reads as zeroes"
    for page in freed[:2]:
        assert bytes(page.data) == b"\x5a" * world.page_size, "not among the last three"
    for page in held:
        assert Oracle.frame(page) == world.expected(record, page.index)
        assert mapping.lookup(page.index) is page


def test_a_scenario_hands_back_the_frames_its_migration_freed(registry: Registry) -> None:
    """The source node's freed frames are given back as migration goes, not under debug_vm."""
    for debug_vm, want in ((False, 0x00), (True, 0x6B)):
        config = parse_config(
            f'[kernel]\nnode_memory = "4MiB"\ndebug_vm = {str(debug_vm).lower()}\n'
            '[[mount]]\nfs = "ext2"\nmode = "nobh"\npages = 700\n'
            "[swap]\nslots = 0\n[processes]\ncount = 0\nanon_pages = 0\n[workload]\ndirty = 0.3\n"
        )
        plan = plan_scenario(config, registry, "test", builtin=False)
        world = Scenario(plan.config, registry, seed=3)
        source = world.kernel.nodes[world.source_node]
        used = [page for page in source.pages if page.count]
        assert len(used) == 700
        stats = world.migrate()
        assert stats.tables["ext2_nobh_aops"].moved == 700
        for page in used:
            assert page.count == 0
            assert bytes(page.data) == bytes([want]) * world.page_size
        assert world.check_integrity().lost == 0


# -- the scenario's pages ----------------------------------------------------------------


def test_slots_are_made_once_and_found_by_position(registry: Registry) -> None:
    _w, record = _world(registry)
    slots = Slots()
    assert slots.add("file", record, 5) == range(5)
    assert slots.add("meta", record, 0) == range(5, 5)
    assert slots.add("meta", record, 3) == range(5, 8)
    assert len(slots) == 8
    assert slots.positions(lambda kind, owner: True) == range(8)
    assert slots[6] is slots[6] is slots[-2]
    assert slots[6] == Slot("meta", record, 1)
    assert list(slots)[6] is slots[6]
    assert slots[1:3] == [Slot("file", record, 1), Slot("file", record, 2)]
    assert slots.position(Slot("meta", record, 2)) == 7
    assert slots.positions(lambda kind, owner: kind == "meta") == range(5, 8)
    assert slots.add("file", record, 2) == range(8, 10)
    assert list(slots.positions(lambda kind, owner: kind == "file")) == [0, 1, 2, 3, 4, 8, 9]
    with pytest.raises(IndexError):
        slots[10]
    with pytest.raises(ValueError, match="not a page"):
        slots.position(Slot("file", record, 5))


def test_a_large_scenario_makes_slots_only_for_pages_with_a_state(registry: Registry) -> None:
    config = parse_config(
        '[kernel]\nnode_memory = "8MiB"\n[[mount]]\nfs = "ext2"\nmode = "nobh"\npages = 1500\n'
        "[swap]\nslots = 0\n[processes]\ncount = 0\nanon_pages = 0\n[workload]\ndirty = 0.2\n"
    )
    plan = plan_scenario(config, registry, "test", builtin=False)
    world = Scenario(plan.config, registry, seed=4)
    assert len(world.slots) == 1500
    assert len(world.states["dirty"]) == 300
    assert len(world.slots._made) == 300
    assert all(world.page_of(s).flags & PG.dirty for s in world.states["dirty"])


def test_run_plan_says_where_its_time_went(registry: Registry) -> None:
    config = parse_config('[kernel]\nnode_memory = "2MiB"\n[[mount]]\nfs = "ext2"\npages = 64\n')
    phases: dict[str, float] = {}
    report = run_plan(plan_scenario(config, registry, "test", builtin=False), phases=phases)
    assert report.exit_status == 0
    assert list(phases) == ["build", "migrate", "prove", "read back", "report"]
    assert all(seconds > 0 for seconds in phases.values())


# -- the read-back and the proofs find every wrong page in a run -------------------------


def _migrated(registry: Registry) -> tuple[Scenario, Places, MigrateStats]:
    """Two files of ext2 nobh pages, 30% dirty, migrated; and where they were before."""
    config = parse_config(
        f'[kernel]\nnode_memory = "{(PAGES + 256) // 256}MiB"\n'
        f'[[mount]]\nfs = "ext2"\nmode = "nobh"\nfiles = 2\npages = {PAGES}\n'
        "[swap]\nslots = 0\n[processes]\ncount = 0\nanon_pages = 0\n[workload]\ndirty = 0.3\n"
    )
    plan = plan_scenario(config, registry, "test", builtin=False)
    world = Scenario(plan.config, registry, seed=8)
    places = snapshot_places(world.world, world.source_node)
    return world, places, world.migrate()


def _placement(
    world: Scenario, places: Places, ledger: Callable[[int], str], *, bulk: bool
) -> tuple[int, int, tuple[str, ...]]:
    """The placement proof of ``places``, or (not ``bulk``) of a plain mapping of them.

    The plain mapping is in reverse order: :meth:`Places.of` must put its
    pages back a file at a time, in order of index, for the data of a run of
    them to be compared in one piece.  The problems come sorted (a plain
    mapping names its files in its own order).
    """
    before: Mapping[int, Placed] = places if bulk else dict(reversed(list(places.items())))
    proof = prove_placement(world.world, before, ledger, target_nid=world.target_node)
    return proof.checked, proof.failures, tuple(sorted(proof.problems))


def test_placement_proof_of_a_plain_mapping_finds_what_it_finds_of_places(
    registry: Registry,
) -> None:
    world, places, stats = _migrated(registry)
    ledger = proof_ledger(stats)
    assert len(places) == PAGES
    assert _placement(world, places, ledger, bulk=True) == (PAGES, 0, ())
    record = world.files[1]
    mapping: AddressSpace = record.inode.i_mapping
    # A byte of one page in the middle of a run, two pages swapped, one old frame kept.
    bad = mapping.lookup(RUN_PAGES + 5)
    assert bad is not None
    bad.data[3000] ^= 0xFF
    a, b = mapping.lookup(9), mapping.lookup(10)
    assert a is not None and b is not None
    mapping.page_tree[9], mapping.page_tree[10] = b, a
    kept = places[next(iter(places))]
    kept.page.count += 1
    bulk = _placement(world, places, ledger, bulk=True)
    assert bulk == _placement(world, places, ledger, bulk=False)
    checked, failures, problems = bulk
    assert (checked, failures) == (PAGES, 4)
    text = "\n".join(problems)
    assert (
        f"{record.describe(RUN_PAGES + 5)}, ext2_nobh_aops): moved to pfn {bad.pfn}, whose " in text
    )
    assert f"{record.describe(9)}, ext2_nobh_aops): moved to pfn {b.pfn}, whose data is not" in text
    assert f"{record.describe(10)}, ext2_nobh_aops): moved to pfn {a.pfn}, whose data" in text
    assert "the old frame was not freed (page_count 1" in text


def test_places_select_keeps_the_chosen_pages_and_their_mlock_marks(registry: Registry) -> None:
    config = parse_config(
        '[kernel]\nnode_memory = "2MiB"\n[[mount]]\nfs = "ext2"\nfiles = 4\npages = 24\n'
        "[swap]\nslots = 0\n[processes]\ncount = 1\nanon_pages = 0\n"
        "[workload]\nseed = 3\nmapped = 0.6\nmlocked = 0.3\n"
    )
    plan = plan_scenario(config, registry, "test", builtin=False)
    world = Scenario(plan.config, registry, seed=4)
    places = snapshot_places(world.world, world.source_node)
    assert places.mlocked, "the scenario mlocks some pages"
    dropped = world.files[1]
    odd = places.select(lambda record, page: record is not dropped and page.pfn % 2 == 1)
    kept = [pfn for pfn in places if places[pfn].record is not dropped and pfn % 2 == 1]
    assert list(odd) == kept and len(odd) == len(kept)
    assert all(odd[pfn] == places[pfn] for pfn in kept)
    assert odd.mlocked == places.mlocked & set(kept) != set()
    assert places.select(lambda _record, _page: True).mlocked == places.mlocked
    assert not places.select(lambda _record, _page: False)


def test_placement_proof_in_runs_catches_a_stale_pte_and_a_wrong_ledger(
    registry: Registry,
) -> None:
    world, places, stats = _migrated(registry)
    first = places[next(iter(places))]
    mm = world.world.process("stale")
    mm.ptes[7] = Pte(first.page)  # a pte left pointing at the old frame
    record = world.files[0]
    (_rec, indexes, pages, _tables) = next(r for r in places.runs() if r[0] is record)
    old = pages[indexes.index(3)]
    now = record.inode.i_mapping.lookup(3)
    assert now is not None and now is not old
    moved = proof_ledger(stats)

    def ledger(pfn: int) -> str:
        return Outcome.LEFT if pfn == old.pfn else moved(pfn)

    for bulk in (True, False):
        _checked, failures, problems = _placement(world, places, ledger, bulk=bulk)
        assert failures == 2
        text = "\n".join(problems)
        assert f"ptes [({mm.pid}, 7)] still map the old frame" in text
        assert (
            f"left, so it should still be in its frame, but its place holds pfn {now.pfn}" in text
        )


def test_read_back_in_runs_names_each_wrong_page_once(registry: Registry) -> None:
    world, _places, _stats = _migrated(registry)
    record = world.files[1]
    mapping = record.inode.i_mapping
    contents = world.world.contents
    middle = mapping.lookup(RUN_PAGES + 100)
    last = mapping.lookup(record.npages - 1)
    assert middle is not None and last is not None
    middle.data[:] = contents.page(record.owner, RUN_PAGES + 100, record.gens[RUN_PAGES + 100] + 1)
    last.data[-1] ^= 1
    integrity = world.check_integrity()
    assert integrity.checked == PAGES
    assert (integrity.lost, integrity.corrupted) == (0, 2)
    assert len(integrity.problems) == 2
    assert integrity.problems[0].startswith(record.describe(RUN_PAGES + 100))
    assert (
        integrity.problems[1]
        == f"{record.describe(record.npages - 1)}: corrupted: reads back other bytes"
    )


def test_read_back_of_a_short_file_says_which_pages_are_gone(registry: Registry) -> None:
    world, _places, _stats = _migrated(registry)
    record = world.files[0]
    record.inode.i_size -= 2 * world.page_size + 10
    integrity = world.check_integrity()
    assert (integrity.lost, integrity.corrupted) == (2, 1)
    assert [p.split(": ", 1)[0] for p in integrity.problems] == [
        record.describe(record.npages - n) for n in (3, 2, 1)
    ]


@pytest.mark.parametrize("how", ["the raw bytes", "a write"])
def test_durability_in_runs_finds_a_lost_dirty_state_and_a_bad_block(
    registry: Registry, how: str
) -> None:
    """A bad block made through ``mem`` (every known block written out) or through a write.

    Through a write the other blocks still hold the data the world put
    there, so the proof tells most runs from what it knows of them.
    """
    world, places, _stats = _migrated(registry)
    dirty = world.states["dirty"][len(world.states["dirty"]) // 2]
    page = world.page_of(dirty)
    assert page.flags & PG.dirty
    page.flags &= ~PG.dirty  # the dirty state is lost: nothing will write it
    record = world.files[0]
    # A clean page in another run than the lost one: its run is told from what is known.
    dirty_run = (dirty.owner, dirty.index // RUN_PAGES)
    clean = next(
        i
        for i in range(record.npages)
        if not record.gens[i] and (record, i // RUN_PAGES) != dirty_run
    )
    inode = record.inode
    bdev = inode.i_sb.s_bdev
    block = inode.blocks[clean * (world.page_size // bdev.block_size) + 2]
    if how == "a write":
        data = bytearray(bdev.block_size)
        bdev.read(block, memoryview(data))
        data[5] ^= 0x40
        bdev.write(block, bytes(data))
        assert bdev.known(block, 1) is not None, "the block is still in its run"
    else:
        bdev.mem[block * bdev.block_size + 5] ^= 0x40
        assert bdev.known(block, 1) is None, "reading mem wrote every known block out"
    world.kernel.run_until_idle()
    proof = prove_durability(world.world, moved_by=places)
    assert (proof.checked, proof.failures) == (PAGES, 2)
    text = "\n".join(proof.problems)
    assert f"{dirty.owner.describe(dirty.index)} (ext2_nobh_aops): the disk does not hold" in text
    assert "(moved by ext2_nobh_aops): a dirty state was lost (it reads back generation 0, " in text
    assert (
        f"{record.describe(clean)} (ext2_nobh_aops): the disk does not hold the data written "
        "last (moved by ext2_nobh_aops): it reads back other bytes: neither the page's data "
        "nor an older version of it"
    ) in text


def test_data_damaged_before_it_was_written_back_is_not_called_a_lost_dirty_state(
    registry: Registry,
) -> None:
    """A dirty page written back with another page's bytes: that is what the proof says."""
    world, places, _stats = _migrated(registry)
    first, second = world.states["dirty"][:2]
    page = world.page_of(first)
    assert page.flags & PG.dirty
    page.data[:] = world.world.expected(second.owner, second.index)
    world.kernel.run_until_idle()
    proof = prove_durability(world.world, moved_by=places)
    assert proof.failures == 1
    (problem,) = proof.problems
    assert problem.startswith(f"{first.owner.describe(first.index)} (ext2_nobh_aops): the disk")
    assert f"it holds the data of {second.owner.page_key(second.index)}" in problem
    assert "a dirty state was lost" not in problem


def test_blocks_known_to_hold_another_files_data_are_read_and_compared(
    registry: Registry,
) -> None:
    world, record = _world(registry)
    other = world.create_file(record.inode.i_sb)
    world.load_file(other, 8)
    assert world.disk_holds(other, 0, 8)
    bdev = record.inode.i_sb.s_bdev
    per_page = world.page_size // bdev.block_size
    start = other.inode.blocks[0]
    # The other file's blocks now hold the first file's pages 0 to 7, tagged as such.
    known = bdev.known(record.inode.blocks[0], 8 * per_page)
    assert known is not None
    data = world.expected_range(record, 0, 8)

    def fill(dst: memoryview, offset: int) -> None:
        dst[:] = data[offset : offset + len(dst)]

    bdev.put_known(start, 8 * per_page, fill, known[0])
    assert not world.disk_holds(other, 0, 8), "a run of the first file's is not the other's"
    proof = prove_durability(world)
    assert proof.failures == 8
    assert f"{other.describe(0)} (ext2_nobh_aops): the disk does not hold" in proof.problems[0]


def test_durability_finds_a_rewritten_page_written_back_in_part(registry: Registry) -> None:
    """One block of a rewritten page reached the disk; the rest still hold the old data."""
    world, record = _world(registry)
    assert world.disk_holds(record, 0, RUN_PAGES)
    index = RUN_PAGES + 3
    world.dirty_range(record, [index])
    page = record.inode.i_mapping.lookup(index)
    assert page is not None
    assert not world.disk_holds(record, RUN_PAGES, RUN_PAGES), "the page is in a new generation"
    bdev = record.inode.i_sb.s_bdev
    per_page = world.page_size // bdev.block_size
    bs = bdev.block_size
    first_block = record.inode.blocks[index * per_page]
    bdev.write(first_block, bytes(page.data[:bs]))  # only its first block is written
    page.flags &= ~PG.dirty
    assert not world.disk_holds(record, RUN_PAGES, RUN_PAGES)
    proof = prove_durability(world)
    assert proof.failures == 1
    assert f"{record.describe(index)} (ext2_nobh_aops): the disk does not hold" in proof.problems[0]
    # Written back whole, the run is known to be right again.
    for i in range(1, per_page):
        bdev.write(first_block + i, bytes(page.data[i * bs : (i + 1) * bs]))
    assert world.disk_holds(record, RUN_PAGES, RUN_PAGES)
    assert prove_durability(world).failures == 0
