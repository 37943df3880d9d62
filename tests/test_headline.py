"""V4 5/6's headline: "migrate a page with buffers without requiring writeback"."""

from __future__ import annotations

import pytest

from fsaops.buffer import bh_offset, buffers
from fsaops.page import PG
from fsaops.plugins import Registry
from fsaops.world import World


@pytest.mark.parametrize(
    ("fs", "mode"),
    [("ext2", "default"), ("ext3", "ordered"), ("ext3", "writeback"), ("xfs", None)],
)
def test_dirty_pages_with_buffers_move_without_one_writepage(
    registry: Registry, fs: str, mode: str | None
) -> None:
    world = World(registry=registry, node_pages=256, swap_slots=64)
    sb = world.mount(fs, mode, block_size=1024)
    inode = world.file(sb, 6)
    pages = inode.i_mapping.pages()
    assert all(p.flags & PG.dirty and p.flags & PG.private for p in pages)
    rings = {p.index: [(bh, bh_offset(bh)) for bh in buffers(p.private)] for p in pages}
    assert all(len(r) == 4 for r in rings.values()), "1 KiB blocks: four buffer heads a page"
    data = {p.index: bytes(p.data) for p in pages}
    vm = world.kernel.vmstat
    writes_before = (vm.nr_writepage, vm.pageout_writepage)
    out = world.migrate(pages)
    assert out.problems == []
    assert out.rc == 0
    assert (vm.nr_writepage, vm.pageout_writepage) == writes_before, "no writepage call"
    for new in inode.i_mapping.pages():
        assert new.node.nid == 1
        assert new.flags & PG.dirty, "the page arrives dirty on the new node"
        assert bytes(new.data) == data[new.index]
        ring = list(buffers(new.private))
        assert [bh for bh, _ in rings[new.index]] == ring, "the same buffer heads, in order"
        for bh, offset in rings[new.index]:
            assert bh.b_page is new
            assert bh_offset(bh) == offset
            assert bh.b_data >> world.kernel.page_shift == new.pfn
    assert {v for t in out.stats.tables.values() for v in t.via} == {"migratepage"}


def test_the_same_dirty_pages_under_ext3_journal_mode_need_writeback(
    registry: Registry,
) -> None:
    world = World(registry=registry, node_pages=256, swap_slots=64)
    sb = world.mount("ext3", "journal", block_size=1024)
    sb.s_fs_info.set_commit_interval(16)
    inode = world.file(sb, 6)
    world.kernel.sched.run_for(64)
    from fsaops.writeback import set_page_dirty

    pages = inode.i_mapping.pages()
    for page in pages:
        set_page_dirty(page)
    vm = world.kernel.vmstat
    before = vm.pageout_writepage
    out = world.migrate(pages)
    assert out.problems == []
    assert out.rc == 0
    assert vm.pageout_writepage - before == 6
    assert out.stats.tables["ext3_journalled_aops"].via == {"writeback": 6}
