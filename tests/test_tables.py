"""Every built-in table, its members called directly (as the kernel calls its function pointers)."""

from __future__ import annotations

from errno import EIO

import pytest

from fsaops.aops import AddressSpaceOperations
from fsaops.buffer import BH, buffers, journal_head_problem, page_inode
from fsaops.debug import check_kernel
from fsaops.errors import ConfigError, KernelBug
from fsaops.fs import generic_file_read
from fsaops.gfp import GFP_KERNEL
from fsaops.lru import isolate_lru_page
from fsaops.page import PG, Page, lock_page, unlock_page
from fsaops.plugins import Registry
from fsaops.world import World, write_head_buffer
from fsaops.writeback import (
    WritebackControl,
    clear_page_dirty_for_io,
    set_page_dirty,
    write_one_page,
)

EXPECTED = {
    ("ext2", "default"): ("ext2_aops", "buffer_migrate_page"),
    ("ext2", "nobh"): ("ext2_nobh_aops", "buffer_migrate_page"),
    ("ext2", "xip"): ("ext2_aops_xip", None),
    ("ext3", "ordered"): ("ext3_ordered_aops", "buffer_migrate_page"),
    ("ext3", "writeback"): ("ext3_writeback_aops", "buffer_migrate_page"),
    ("ext3", "journal"): ("ext3_journalled_aops", None),
    ("xfs", "default"): ("linvfs_aops", "buffer_migrate_page"),
    ("swap", "default"): ("swap_aops", "migrate_page"),
    ("xfs_buftarg", "default"): ("xfs_mapping_buftarg.mapping_aops", "fail_migrate_page"),
}


def test_the_tables_and_their_migratepage_are_those_of_v4(registry: Registry) -> None:
    found = {}
    for fstype, mode, table in registry.tables():
        op = table.migratepage
        found[(fstype.name, mode)] = (table.name, getattr(op, "__name__", None))
    assert found == EXPECTED


def writepage(page: Page, table: AddressSpaceOperations) -> int:
    lock_page(page)
    assert clear_page_dirty_for_io(page)
    assert table.writepage is not None
    return table.writepage(page, WritebackControl())


def device_bytes(inode_page: Page) -> bytes:
    host = page_inode(inode_page)
    bs = host.i_sb.s_blocksize
    per = 4096 // bs
    out = b""
    for i in range(per):
        blk = host.get_block(inode_page.index * per + i, False)
        out += bytes(host.i_sb.s_bdev.mem[blk * bs : (blk + 1) * bs])
    return out


@pytest.mark.parametrize(
    ("fs", "mode"),
    [("ext2", None), ("ext2", "nobh"), ("ext3", "writeback"), ("xfs", None), ("ext3", "ordered")],
)
def test_writepage_writes_the_page_to_its_blocks_asynchronously(
    registry: Registry, fs: str, mode: str | None
) -> None:
    world = World(registry=registry, io_latency=7, node_pages=256, swap_slots=64)
    sb = world.mount(fs, mode)
    inode = world.file(sb, 1)
    (page,) = inode.i_mapping.pages()
    assert writepage(page, sb.a_ops) == 0
    assert not page.flags & PG.locked, "writepage unlocks the page"
    assert page.flags & PG.writeback
    assert device_bytes(page) == bytes(page.data)
    world.kernel.sched.run_for(7)
    assert not page.flags & PG.writeback, "the write completes io_latency ticks later"


@pytest.mark.parametrize(("fs", "mode"), [("ext2", None), ("ext2", "nobh"), ("xfs", None)])
def test_readpage_reads_back_what_was_written(
    registry: Registry, fs: str, mode: str | None
) -> None:
    from fsaops.mapping import truncate_inode_pages

    world = World(registry=registry, node_pages=256, swap_slots=64)
    sb = world.mount(fs, mode)
    inode = world.file(sb, 3, clean=True)
    data = generic_file_read(inode, 0, 3 * 4096)
    size = inode.i_size
    truncate_inode_pages(inode.i_mapping, 0)
    inode.i_size = size
    assert inode.i_mapping.nrpages == 0
    assert generic_file_read(inode, 0, 3 * 4096) == data
    assert inode.i_mapping.nrpages == 3


def test_ext2_pages_carry_buffers_and_nobh_pages_do_not(registry: Registry) -> None:
    world = World(registry=registry, node_pages=256, swap_slots=64)
    with_bh = world.file(world.mount("ext2", block_size=1024), 1)
    without = world.file(world.mount("ext2", "nobh", block_size=1024), 1)
    (a,) = with_bh.i_mapping.pages()
    (b,) = without.i_mapping.pages()
    assert a.flags & PG.private
    assert len(list(buffers(a.private))) == 4
    assert all(bh.b_state & BH.dirty for bh in buffers(a.private))
    assert not b.flags & PG.private
    assert a.flags & PG.dirty
    assert b.flags & PG.dirty


def test_ext2_xip_has_no_page_cache(registry: Registry) -> None:
    world = World(registry=registry, node_pages=256, swap_slots=64)
    sb = world.mount("ext2", "xip")
    record = world.create_file(sb)
    world.write_file(record, 2)
    inode = record.inode
    data = world.contents.pages(record.owner, 0, 2)
    assert generic_file_read(inode, 0, len(data)) == data
    assert inode.i_mapping.nrpages == 0
    assert sb.a_ops.migratepage is None


def test_ext3_ordered_files_written_buffers_in_the_journal_until_commit(
    registry: Registry,
) -> None:
    world = World(registry=registry, node_pages=256, swap_slots=64)
    sb = world.mount("ext3", "ordered")
    sb.s_fs_info.set_commit_interval(10)
    inode = world.file(sb, 1)
    (page,) = inode.i_mapping.pages()
    ring = list(buffers(page.private))
    assert all(bh.b_state & BH.jbd and bh.b_count == 1 for bh in ring)
    assert isolate_lru_page(page) == 1
    lock_page(page)
    assert sb.a_ops.releasepage is not None
    assert sb.a_ops.releasepage(page, 0) == 0, "the journal holds the buffers"
    unlock_page(page)
    world.kernel.sched.run_for(10)
    assert all(not bh.b_state & (BH.jbd | BH.dirty) and bh.b_count == 0 for bh in ring)
    assert device_bytes(page) == bytes(page.data), "the commit wrote the ordered data"
    lock_page(page)
    page.flags &= ~PG.dirty
    assert sb.a_ops.releasepage(page, 0) == 1
    assert not page.flags & PG.private
    unlock_page(page)


def test_ext3_ordered_lets_written_back_ordered_data_go_before_the_commit(
    registry: Registry,
) -> None:
    """jbd's "written-back ordered data buffer": releasepage frees it without a commit."""
    world = World(registry=registry, node_pages=256, swap_slots=64, commit_interval=1_000_000)
    sb = world.mount("ext3", "ordered")
    journal = sb.s_fs_info
    inode = world.file(sb, 2)
    first, second = inode.i_mapping.pages()
    assert write_one_page(first, wait=True) == 0
    world.kernel.run_until_idle()
    ring = list(buffers(first.private))
    assert all(bh.b_state & BH.jbd and not bh.b_state & BH.dirty for bh in ring)
    lock_page(first)
    assert sb.a_ops.releasepage is not None
    assert sb.a_ops.releasepage(first, GFP_KERNEL) == 1
    assert not first.flags & PG.private
    unlock_page(first)
    assert all(not journal.holds(bh) and bh.b_count == 0 for bh in ring)
    assert journal.commits == 0
    # Still dirty: the journal keeps it, and the buffers stay.
    lock_page(second)
    assert sb.a_ops.releasepage(second, GFP_KERNEL) == 0
    assert second.flags & PG.private
    unlock_page(second)
    assert check_kernel(world.kernel) == []


def test_ext3_ordered_release_stops_at_the_first_buffer_still_in_the_journal(
    registry: Registry,
) -> None:
    """Buffers before a busy one have left the transaction, as jbd's loop leaves them."""
    world = World(registry=registry, node_pages=256, swap_slots=64, commit_interval=1_000_000)
    sb = world.mount("ext3", "ordered", block_size=1024)
    journal = sb.s_fs_info
    inode = world.file(sb, 1)
    (page,) = inode.i_mapping.pages()
    assert write_one_page(page, wait=True) == 0
    world.kernel.run_until_idle()
    ring = list(buffers(page.private))
    assert len(ring) == 4
    ring[2].b_state |= BH.dirty  # written again since: ordered data still to go out
    lock_page(page)
    assert sb.a_ops.releasepage is not None
    assert sb.a_ops.releasepage(page, GFP_KERNEL) == 0
    unlock_page(page)
    assert [journal.holds(bh) for bh in ring] == [False, False, True, True]
    assert [bool(bh.b_state & BH.jbd) for bh in ring] == [False, False, True, True]


def test_ext3_journal_mode_keeps_written_journalled_buffers_until_the_commit(
    registry: Registry,
) -> None:
    world = World(registry=registry, node_pages=256, swap_slots=64, commit_interval=1_000_000)
    sb = world.mount("ext3", "journal")
    inode = world.file(sb, 1)
    (page,) = inode.i_mapping.pages()
    assert all(bh.b_state & BH.jbd for bh in buffers(page.private))
    lock_page(page)
    assert sb.a_ops.releasepage is not None
    assert sb.a_ops.releasepage(page, GFP_KERNEL) == 0
    unlock_page(page)
    assert all(sb.s_fs_info.holds(bh) for bh in buffers(page.private))


def test_ext3_journal_mode_journals_at_writepage_without_writeback(
    registry: Registry,
) -> None:
    world = World(registry=registry, node_pages=256, swap_slots=64)
    sb = world.mount("ext3", "journal")
    sb.s_fs_info.set_commit_interval(20)
    inode = world.file(sb, 1)
    world.kernel.sched.run_for(20)
    (page,) = inode.i_mapping.pages()
    assert not page.flags & PG.dirty, "a journalled write does not dirty the page"
    page.data[:5] = b"hello"
    assert set_page_dirty(page) == 1
    assert page.flags & PG.checked
    assert writepage(page, sb.a_ops) == 0
    assert not page.flags & (PG.writeback | PG.dirty | PG.checked | PG.locked)
    assert all(bh.b_state & BH.jbddirty for bh in buffers(page.private))
    assert device_bytes(page)[:5] != b"hello"
    world.kernel.sched.run_for(20)
    assert device_bytes(page)[:5] == b"hello", "the commit put the data on disk"


def test_xfs_allocates_lazily_and_will_not_release_delalloc_buffers(
    registry: Registry,
) -> None:
    world = World(registry=registry, node_pages=256, swap_slots=64)
    sb = world.mount("xfs", block_size=1024)
    inode = world.file(sb, 1)
    (page,) = inode.i_mapping.pages()
    ring = list(buffers(page.private))
    assert all(bh.b_state & BH.delay and not bh.b_state & BH.mapped for bh in ring)
    assert inode.blocks == [], "no block is allocated before writeback"
    assert isolate_lru_page(page) == 1
    lock_page(page)
    assert sb.a_ops.releasepage is not None
    # Without __GFP_FS (truncation's 0) XFS may not call into itself: nothing converted.
    assert sb.a_ops.releasepage(page, 0) == 0
    assert all(bh.b_state & BH.delay and not bh.b_state & BH.mapped for bh in ring)
    assert sb.a_ops.releasepage(page, GFP_KERNEL) == 0
    assert all(bh.b_state & BH.mapped for bh in ring), "release converted delalloc"
    unlock_page(page)
    assert writepage(page, sb.a_ops) == 0
    assert len(inode.blocks) == 4
    world.kernel.run_until_idle()
    assert device_bytes(page) == bytes(page.data)


def test_swap_aops_has_the_members_of_2_6_15_and_no_readpage(registry: Registry) -> None:
    table = registry.aops("swap")
    present = {name for name, fn in table.members().items() if fn is not None}
    # mm/swap_state.c: writepage, sync_page, set_page_dirty, and V4's migratepage.
    assert present == {"writepage", "sync_page", "set_page_dirty", "migratepage"}
    assert table.readpage is None


def test_swap_aops_writes_the_slot_and_dirties_without_buffers(world: World) -> None:
    from fsaops.swap import add_to_swap

    area = world.anon(1)
    mm, vma = area.mm, area.vma
    page = mm.ptes[vma.vm_start].page
    assert page is not None
    swapper = world.kernel.swapper_space
    assert swapper is not None
    table = swapper.a_ops
    assert isolate_lru_page(page) == 1
    lock_page(page)
    assert add_to_swap(page) == 1
    assert page.flags & PG.dirty, "add_to_swap dirties: the slot holds nothing yet"
    assert clear_page_dirty_for_io(page)
    assert table.writepage is not None
    assert table.writepage(page, WritebackControl()) == 0
    assert bytes(world.kernel.swap_info().slot(page.private)) == bytes(page.data)
    assert table.set_page_dirty is not None
    assert table.set_page_dirty(page) == 1
    assert not page.flags & PG.private
    world.kernel.run_until_idle()


def test_xfs_buftarg_table_refuses(registry: Registry) -> None:
    table = registry.aops("xfs_buftarg")
    assert table.writepage is None
    assert table.readpage is None
    assert table.sync_page is not None
    assert table.migratepage is not None
    world = World(registry=registry, node_pages=256, swap_slots=64)
    a = world.kernel.nodes[0].alloc_page()
    b = world.kernel.nodes[1].alloc_page()
    assert a is not None
    assert b is not None
    assert table.migratepage(b, a) == -EIO


def test_xfs_buftarg_pages_are_held_by_their_buffers(registry: Registry) -> None:
    from fsaops.debug import check_kernel

    world = World(registry=registry, node_pages=256, swap_slots=64)
    sb = world.mount("xfs_buftarg")
    inode = sb.new_inode()
    inode.reserve(2 * 4096)
    blocknr = inode.get_block(1, False)
    sb.s_bdev.write(blocknr, b"superblock" + bytes(4086))
    fstype = registry.filesystem("xfs_buftarg")
    assert fstype.read_metadata is not None
    fstype.read_metadata(inode, 1)
    page = inode.i_mapping.lookup(1)
    assert page is not None
    assert bytes(page.data[:10]) == b"superblock"
    assert page.count == 2, "the page cache's reference and the xfs_buf's"
    assert check_kernel(world.kernel) == [], "the buffer's reference is accounted for"
    out = world.migrate([page])
    assert out.rc == 1
    assert out.stats.tables["xfs_mapping_buftarg.mapping_aops"].errors == {"EIO": 1}


# -- the journal's hold on its buffers ---------------------------------------------------------


def _journalled_page(registry: Registry, commit_interval: int | None = None) -> tuple[World, Page]:
    """An ext3 data=ordered page written with write(2): its buffers in the running transaction."""
    world = World(registry=registry, node_pages=256, commit_interval=commit_interval)
    sb = world.mount("ext3", "ordered")
    inode = world.file(sb, 1)
    (page,) = inode.i_mapping.pages()
    return world, page


def test_a_buffer_the_running_transaction_holds_is_healthy(registry: Registry) -> None:
    world, page = _journalled_page(registry)
    ring = list(buffers(page.private))
    assert all(bh.b_state & BH.jbd for bh in ring)
    assert [journal_head_problem(bh) for bh in ring] == [None] * len(ring)
    assert check_kernel(world.kernel) == []


@pytest.mark.parametrize(
    ("damage", "said"),
    [
        ("unfile", "has BH_JBD, but its journal holds it in no transaction"),
        ("no_head", "has BH_JBD but no journal head (b_private is None)"),
        ("jbddirty_only", "is BH_JBDDirty but not the journal's (no BH_JBD)"),
    ],
)
def test_a_journal_hold_taken_away_is_a_broken_invariant(
    registry: Registry, damage: str, said: str
) -> None:
    world, page = _journalled_page(registry)
    bh = page.private
    journal = bh.b_private
    if damage == "unfile":
        del journal.running[id(bh)]
    elif damage == "no_head":
        bh.b_private = None
    else:
        journal.forget(bh)
        bh.b_state |= BH.jbddirty
    problem = journal_head_problem(bh)
    assert problem is not None and problem.startswith(said)
    mapping = page_inode(page).i_mapping
    name = f"{mapping.name}/page{page.index}, {mapping.a_ops.name}"
    assert f"buffer head 0 of pfn {page.pfn} ({name}) {problem}" in check_kernel(world.kernel)


def test_a_journal_that_raises_when_asked_is_named_not_a_crash(registry: Registry) -> None:
    class Broken:
        def holds(self, bh: object) -> bool:
            raise RuntimeError("journal boom")

    _world, page = _journalled_page(registry)
    page.private.b_private = Broken()
    problem = journal_head_problem(page.private)
    assert problem is not None
    assert "asking its journal whether it holds it raised RuntimeError('journal boom')" in problem


def test_a_journal_without_holds_is_taken_at_its_word(registry: Registry) -> None:
    _world, page = _journalled_page(registry)
    page.private.b_private = object()
    assert journal_head_problem(page.private) is None


@pytest.mark.parametrize(("bit", "what"), [("jbd", "no BH_JBD"), ("head", "no journal head")])
def test_the_commit_of_a_buffer_that_lost_its_journal_head_is_a_kernel_bug(
    registry: Registry, bit: str, what: str
) -> None:
    world, page = _journalled_page(registry)
    bh = page.private
    if bit == "jbd":
        bh.b_state &= ~BH.jbd
    else:
        bh.b_private = None
    with pytest.raises(KernelBug, match=f"has {what}.*of pfn {page.pfn} \\(ext3_ordered_aops\\)"):
        world.kernel.sync_filesystems()


def test_a_commit_interval_holds_buffers_in_the_journal_until_a_sync(registry: Registry) -> None:
    world, page = _journalled_page(registry, commit_interval=100_000)
    world.kernel.sched.run_for(1_000)
    assert all(bh.b_state & BH.jbd for bh in buffers(page.private)), "no commit yet"
    world.kernel.sync_filesystems()
    assert not any(bh.b_state & BH.jbd for bh in buffers(page.private))
    assert device_bytes(page) == bytes(page.data), "the sync's commit wrote the data"
    journal = page_inode(page).i_sb.s_fs_info
    commits = journal.commits
    world.kernel.sched.run_for(99_000)
    assert journal.commits == commits, "the sync restarted the commit timer"
    world.kernel.sched.run_for(1_000)
    assert journal.commits == commits + 1


def test_a_kernel_commit_interval_below_one_is_refused() -> None:
    with pytest.raises(ConfigError, match="commit interval of 0 ticks"):
        World(commit_interval=0)


def test_a_page_written_in_part_is_dirty_with_a_clean_first_buffer(registry: Registry) -> None:
    world = World(registry=registry, node_pages=256)
    inode = world.file(world.mount("ext2"), 1)  # 1 KiB blocks: four buffers a page
    (page,) = inode.i_mapping.pages()
    assert page.flags & PG.dirty
    ring = list(buffers(page.private))
    assert write_head_buffer(page)
    assert page.flags & PG.dirty, "the page stays dirty"
    assert not ring[0].b_state & BH.dirty and all(bh.b_state & BH.dirty for bh in ring[1:])
    assert device_bytes(page)[:1024] == bytes(page.data)[:1024], "the first block was written"
    assert not write_head_buffer(page), "only a page whose buffers are all dirty"
    single = World(registry=registry, node_pages=256)
    inode = single.file(single.mount("ext2", block_size=4096), 1)
    (page,) = inode.i_mapping.pages()
    assert not write_head_buffer(page), "a page of one buffer stays as it is"
    assert page.private.b_state & BH.dirty
