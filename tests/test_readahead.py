"""``read(2)`` of pages not in the page cache reads them ahead through the table's ``readpages``.

Before, the model's ``read(2)`` read each missing page with ``readpage``:
a table's ``readpages`` ran only while the world was built, on the source
node, so one wrong only elsewhere (a frame address worked out on node 0
whatever the page's node) passed every run, though a user's read goes
through readahead and would get the wrong data.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import attrs
import pytest

from fsaops.fs import generic_file_read
from fsaops.mapping import AddressSpace, truncate_inode_pages
from fsaops.memory import Node
from fsaops.page import PG, Page, page_address
from fsaops.plugins import load_plugins
from fsaops.world import File, World
from fsaops_ext2 import EXT2, ext2_nobh_aops
from guarded import fsaops, install, one_json_object

calls: list[tuple[str, int]] = []


def _readpages(mapping: AddressSpace, pages: Sequence[Page]) -> int:
    calls.append(("readpages", len(pages)))
    assert ext2_nobh_aops.readpages is not None
    return ext2_nobh_aops.readpages(mapping, pages)


def _readpage(page: Page) -> int:
    calls.append(("readpage", page.index))
    assert ext2_nobh_aops.readpage is not None
    return ext2_nobh_aops.readpage(page)


def _world(readpages: bool) -> tuple[World, File]:
    table = attrs.evolve(
        ext2_nobh_aops,
        name="counted_aops",
        readpage=_readpage,
        readpages=_readpages if readpages else None,
    )
    fstype = attrs.evolve(EXT2, name="counted", modes={"default": table})
    world = World(registry=load_plugins(cli=["ext2"]), nodes=2, node_pages=128)
    record = world.create_file(world.mount(fstype, "default", block_size=4096))
    world.load_file(record, 40)
    calls.clear()
    truncate_inode_pages(record.inode.i_mapping, 0)  # the page cache drops every page
    assert record.inode.i_mapping.nrpages == 0
    return world, record


def test_a_read_of_dropped_pages_reads_them_ahead_with_one_readpages_call_a_window() -> None:
    world, record = _world(readpages=True)
    assert world.read_range(record, 0, 40) == world.expected_range(record, 0, 40)
    # 128 KiB windows: 32 pages, then the 8 left; never readpage.
    assert calls == [("readpages", 32), ("readpages", 8)]


def test_readahead_stops_at_the_read_and_skips_cached_pages() -> None:
    world, record = _world(readpages=True)
    assert world.read_range(record, 3, 2) == world.expected_range(record, 3, 2)
    assert world.read_range(record, 0, 8) == world.expected_range(record, 0, 8)
    # The window's missing pages in one call, around the two already cached.
    assert calls == [("readpages", 2), ("readpages", 6)]


@pytest.mark.parametrize(
    ("pos", "count", "window"),
    [
        (10, 1, 1),  # one byte: the one page
        (4096 - 1, 2, 2),  # the last byte of page 0 and the first of page 1
        (0, 4096 + 1, 2),  # one byte into the second page
        (0, 4096, 1),  # exactly one page
        (4096 + 5, 3 * 4096, 4),  # from inside page 1 to inside page 4
    ],
)
def test_readahead_reads_the_pages_a_read_touches_no_more(
    pos: int, count: int, window: int
) -> None:
    """The window runs from the first page the read touches to the last, by byte."""
    world, record = _world(readpages=True)
    data = bytes(world.expected_range(record, 0, 40))
    assert generic_file_read(record.inode, pos, count) == data[pos : pos + count]
    assert calls == [("readpages", window)]


def _frame(node: Node) -> Page:
    """A free frame of ``node``."""
    page = node.alloc_page()
    assert page is not None
    return page


def test_mpage_readpages_of_pages_from_two_nodes_and_frames_apart() -> None:
    """Pages handed over in one batch may come from either node, and frames that do not follow
    on: each reads its own blocks, goes on its own node's inactive list, and every node's
    ``lru_lock`` is free after (the batch takes each node's in turn)."""
    world, record = _world(readpages=True)
    mapping = record.inode.i_mapping
    node0, node1 = world.kernel.nodes
    frames = [_frame(node0) for _ in range(4)] + [_frame(node1) for _ in range(2)]
    pages = sorted(frames, key=lambda p: (p.node.nid, p.pfn))
    gap = pages.pop(1)  # node 0's frames n, n + 2, n + 3: a gap after the first
    gap.count = 0
    node0.free_page(gap)
    for index, page in enumerate(pages):
        page.index = index
        page_address(page)[:] = b"\xaa" * len(page_address(page))  # not what a freed page held
    assert [p.pfn - pages[0].pfn for p in pages[:3]] == [0, 2, 3]
    assert pages[4].pfn == pages[3].pfn + 1
    inactive = {0: len(node0.inactive), 1: len(node1.inactive)}
    assert ext2_nobh_aops.readpages is not None
    assert ext2_nobh_aops.readpages(mapping, pages) == 0
    for index, page in enumerate(pages):
        assert mapping.lookup(index) is page
        assert bytes(page_address(page)) == world.expected_range(record, index, 1), index
        assert page.flags & PG.uptodate and page.flags & PG.lru and not page.flags & PG.locked
        assert page.count == 1  # the page cache's; the caller's was dropped
    assert [node.lru_lock.locked() for node in (node0, node1)] == [False, False]
    assert (len(node0.inactive), len(node1.inactive)) == (inactive[0] + 3, inactive[1] + 2)
    assert {p.node.nid for p in pages} == {0, 1}


def test_a_table_without_readpages_reads_ahead_a_readpage_a_page() -> None:
    world, record = _world(readpages=False)
    assert world.read_range(record, 0, 5) == world.expected_range(record, 0, 5)
    assert calls == [("readpage", i) for i in range(5)]


PLUGIN = """\
import attrs, fsaops
from fsaops import FileSystemType
from fsaops.buffer import mpage_readpage
from fsaops.mapping import add_to_page_cache_lru
from fsaops.page import PG, put_page, unlock_page
from fsaops_ext2 import ext2_nobh_aops

def _read_at_node0(page):
    # The bug: the frame's address worked out on node 0, whatever node the page is on.
    inode = page.mapping.host
    node0 = page.node.kernel.nodes[0]
    off = (page.pfn - page.node.start_pfn) << node0.page_shift
    ps = node0.page_size
    blocks = inode.blocks[page.index * (ps // inode.i_sb.s_blocksize)]
    inode.i_sb.s_bdev.read(blocks, node0.mem[off : off + ps])
    page.flags |= PG.uptodate | PG.mappedtodisk
    unlock_page(page)

def readpages(mapping, pages):
    for page in pages:
        if add_to_page_cache_lru(page, mapping, page.index):
            _read_at_node0(page)
        put_page(page)
    return 0

TABLE = attrs.evolve(
    ext2_nobh_aops, name="node0_aops", readpages=readpages, readpage=mpage_readpage
)

@fsaops.hookimpl
def fsaops_filesystem_types():
    return [FileSystemType(name="node0", modes={"default": TABLE})]
"""


@pytest.mark.parametrize("semantics", ["v4", "2.6.16", "2.6.17"])
def test_a_readpages_wrong_only_off_the_source_node_loses_the_pages_read_back(
    tmp_path: Path, semantics: str
) -> None:
    env = install(tmp_path / "site", "node0", PLUGIN)
    scenario = tmp_path / "s.toml"
    scenario.write_text(
        f'[kernel]\nsemantics = "{semantics}"\n[plugins]\nload = ["node0", "swap"]\n'
        '[[mount]]\nfs = "node0"\npages = 8\n[processes]\ncount = 0\nanon_pages = 0\n'
        "[workload]\nswapout = 1.0\n"
    )
    proc = fsaops("migrate", scenario, "--json", "--no-progress", env=env)
    assert proc.returncode == 1, proc.stderr[-2000:]
    report = one_json_object(proc, "data lost")
    assert report["integrity"]["lost"] + report["integrity"]["corrupted"] == 8
