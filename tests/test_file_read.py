"""``read(2)`` and ``write(2)`` through the page cache: any offset and length, and the LRU.

The checks that read every page of a run back read whole pages from a
page's start, so a read that began inside a page, or ended inside one,
was never tried: a frame address worked out with the offset taken off,
not added, passed everything.  And ``do_generic_mapping_read`` calls
``mark_page_accessed`` on each page it reads (the first use sets
``PG_referenced``, a second one moves a page of the inactive list to the
active list), which nothing looked at either.  Writes were the same: the
build writes a page at a time from its start, so a write that crossed a
page, began inside one or grew the file was never made.
"""

from __future__ import annotations

import pytest

from fsaops.fs import generic_file_read, generic_file_write
from fsaops.lists import PageList, list_add
from fsaops.lru import isolate_lru_page
from fsaops.mapping import truncate_inode_pages
from fsaops.page import PG, Page
from fsaops.plugins import load_plugins
from fsaops.world import File, World
from test_lru_flag import lru_lists

PAGES = 6
PAGE = 4096


def _file(*, cached: bool, mode: str = "nobh") -> tuple[World, File, bytes]:
    """A file of :data:`PAGES` pages on an ext2 ``mode`` mount, in the page cache or not,
    and what it holds."""
    world = World(registry=load_plugins(cli=["ext2"]), nodes=2, node_pages=64)
    record = world.create_file(world.mount("ext2", mode, block_size=1024))
    world.load_file(record, PAGES)
    if not cached:
        truncate_inode_pages(record.inode.i_mapping, 0)
        assert record.inode.i_mapping.nrpages == 0
    return world, record, bytes(world.expected_range(record, 0, PAGES))


@pytest.mark.parametrize("cached", [True, False], ids=["cached", "read ahead"])
@pytest.mark.parametrize(
    ("pos", "count"),
    [
        (1, 10),  # inside the first page
        (PAGE - 3, 7),  # across the first two pages
        (PAGE + 100, 3 * PAGE),  # from inside page 1 to inside page 4
        (5 * PAGE + 4000, 500),  # past the end: short
        (PAGES * PAGE, 10),  # at the end: nothing
        (123, 0),  # nothing asked
    ],
)
def test_a_read_from_anywhere_gets_the_files_bytes_from_there(
    cached: bool, pos: int, count: int
) -> None:
    _world, record, data = _file(cached=cached)
    assert generic_file_read(record.inode, pos, count) == data[pos : pos + count]


def _page(record: File, index: int) -> Page:
    page = record.inode.i_mapping.page_tree[index]
    assert page is not None
    return page


def test_a_read_marks_each_page_accessed_and_a_second_read_activates_it() -> None:
    """``mark_page_accessed`` once a page read: referenced, then active, then referenced again.

    ``do_generic_mapping_read`` skips a page it read last through the same
    open file (``ra.prev_page``); the model's reads have no open file, and
    each is as from a file just opened (``prev_page`` -1), so each marks it.
    """
    _world, record, data = _file(cached=True)
    page = _page(record, 2)
    node = page.node
    page.flags &= ~PG.referenced  # as the page is after the build, whatever it did
    assert page.flags & PG.lru and not page.flags & PG.active
    assert page in node.inactive
    before = (node.nr_inactive, node.nr_active)

    assert generic_file_read(record.inode, 2 * PAGE + 10, 20) == data[2 * PAGE + 10 : 2 * PAGE + 30]
    assert page.flags & PG.referenced and not page.flags & PG.active
    assert (node.nr_inactive, node.nr_active) == before

    generic_file_read(record.inode, 2 * PAGE, PAGE)
    assert page.flags & PG.active and not page.flags & PG.referenced
    assert page in node.active and page not in node.inactive
    assert (node.nr_inactive, node.nr_active) == (before[0] - 1, before[1] + 1)

    generic_file_read(record.inode, 2 * PAGE, 1)
    assert page.flags & PG.active and page.flags & PG.referenced  # stays active
    assert (node.nr_inactive, node.nr_active) == (before[0] - 1, before[1] + 1)
    # Only the page read was touched: its neighbours' flags are as they were.
    assert not _page(record, 3).flags & PG.active


def test_a_read_of_a_page_off_the_lru_only_marks_it_referenced() -> None:
    """A page isolated for migration is read twice: ``mark_page_accessed`` activates only a
    page on the LRU, so it stays inactive and referenced, and off every list."""
    _world, record, data = _file(cached=True)
    page = _page(record, 1)
    node = page.node
    assert isolate_lru_page(page) == 1
    private = PageList("private")
    list_add(page, private)
    page.flags &= ~PG.referenced
    lists = lru_lists(node)
    for _ in range(2):
        assert generic_file_read(record.inode, PAGE, PAGE) == data[PAGE : 2 * PAGE]
        assert page.flags & PG.referenced and not page.flags & (PG.active | PG.lru)
    assert lru_lists(node) == lists
    assert list(private) == [page]


def test_a_read_leaves_each_page_with_the_references_it_had() -> None:
    """The read's own reference (``find_get_page``) is dropped again: the cache's is left."""
    _world, record, _data = _file(cached=True)
    counts = [_page(record, i).count for i in range(PAGES)]
    generic_file_read(record.inode, 100, PAGES * PAGE)
    assert [_page(record, i).count for i in range(PAGES)] == counts


@pytest.mark.parametrize("mode", ["nobh", "default"])
@pytest.mark.parametrize("cached", [True, False], ids=["cached", "not cached"])
@pytest.mark.parametrize(
    ("pos", "count"),
    [
        (PAGE + 100, 3 * PAGE),  # from inside page 1 to inside page 4
        (10, 5),  # inside the first page
        (5 * PAGE + 4000, 2 * PAGE),  # over the end: the file grows
        (PAGES * PAGE + 2 * PAGE, 100),  # past the end: a hole before it
    ],
)
def test_a_write_from_anywhere_lands_there_and_reads_back(
    mode: str, cached: bool, pos: int, count: int
) -> None:
    _world, record, before = _file(cached=cached, mode=mode)
    inode = record.inode
    payload = bytes((i * 7 + 3) % 251 for i in range(count))
    assert generic_file_write(inode, pos, payload) == count
    size = max(len(before), pos + count)
    assert inode.i_size == size
    after = bytearray(before) + bytes(size - len(before))
    after[pos : pos + count] = payload
    for index in range(pos // PAGE, (pos + count - 1) // PAGE + 1):
        page = _page(record, index)
        assert page.flags & PG.dirty and not page.flags & PG.locked, index
        assert page.flags & (PG.referenced | PG.active), index  # mark_page_accessed()
    assert generic_file_read(inode, 0, size + PAGE) == after
