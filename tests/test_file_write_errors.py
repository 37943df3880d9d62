"""``write(2)`` that fails part way: what is written stays, nothing is left locked or held.

``generic_file_write`` locks and references each page it writes
(``grab_cache_page``) and must give both back whatever the table's
``prepare_write`` or ``commit_write`` does: an errno, a value no caller can
take, an exception.  The pages written before the failure keep their new
bytes and are dirty; the page it failed on, and every page after it, are
as they were.  Until now only the hostile-plugin runs (whole commands in
a child process) went through these paths.
"""

from __future__ import annotations

from collections.abc import Callable
from errno import EIO, ENOSPC
from typing import Any

import attrs
import pytest

from fsaops.aops import AddressSpaceOperations
from fsaops.errors import FsaopsError, PluginFault
from fsaops.fs import generic_file_read, generic_file_write
from fsaops.page import PG, Page
from fsaops.plugins import load_plugins
from fsaops.world import File, World

PAGES = 4
PAGE = 4096
FAILS_ON = 2  # the page of the write the table fails


def _file(mode: str) -> tuple[World, File, bytes]:
    """A file of :data:`PAGES` pages in the page cache on an ext2 ``mode`` mount, and its bytes."""
    world = World(registry=load_plugins(cli=["ext2"]), nodes=2, node_pages=64)
    record = world.create_file(world.mount("ext2", mode, block_size=1024))
    world.load_file(record, PAGES)
    world.kernel.run_until_idle()
    return world, record, bytes(world.expected_range(record, 0, PAGES))


def _page(record: File, index: int) -> Page:
    page = record.inode.i_mapping.page_tree[index]
    assert page is not None
    return page


def _failing(
    table: AddressSpaceOperations, member: str, answer: Callable[[], object]
) -> AddressSpaceOperations:
    """``table`` whose ``member`` does its work but gives ``answer()`` on page :data:`FAILS_ON`."""
    real = getattr(table, member)

    def member_fn(page: Page, start: int, end: int) -> Any:
        rc = real(page, start, end)
        return answer() if page.index == FAILS_ON else rc

    if member == "prepare_write":
        return attrs.evolve(table, prepare_write=member_fn)
    return attrs.evolve(table, commit_write=member_fn)


def _raise() -> object:
    raise OSError(EIO, "the table's own exception")


@pytest.mark.parametrize("mode", ["nobh", "default"])
@pytest.mark.parametrize("member", ["prepare_write", "commit_write"])
@pytest.mark.parametrize(
    ("answer", "error", "said"),
    [
        (lambda: -ENOSPC, FsaopsError, "failed (-28)"),
        (lambda: None, PluginFault, "a missing return?"),
        (_raise, OSError, "the table's own exception"),
    ],
    ids=["errno", "no return", "raises"],
)
def test_a_write_that_fails_on_a_page_leaves_no_page_locked_or_held(
    mode: str,
    member: str,
    answer: Callable[[], object],
    error: type[Exception],
    said: str,
) -> None:
    world, record, before = _file(mode)
    inode = record.inode
    mapping = inode.i_mapping
    mapping.a_ops = _failing(mapping.a_ops, member, answer)
    counts = [_page(record, i).count for i in range(PAGES)]
    pos = PAGE + 100
    payload = bytes((i * 11 + 5) % 251 for i in range(3 * PAGE))

    with pytest.raises(error) as raised:
        generic_file_write(inode, pos, payload)

    assert said in str(raised.value)
    if error is FsaopsError:
        assert f"{member} of {inode.name}" in str(raised.value)
    for index in range(PAGES):
        page = _page(record, index)
        assert not page.flags & PG.locked, index
        assert page.count == counts[index], index
    # Page 1 was written whole (from byte 100 on) before the failure, and is dirty.
    assert _page(record, 1).flags & PG.dirty
    written = bytearray(before)
    written[pos : FAILS_ON * PAGE] = payload[: FAILS_ON * PAGE - pos]
    got = generic_file_read(inode, 0, PAGES * PAGE)
    assert got[: FAILS_ON * PAGE] == written[: FAILS_ON * PAGE]
    if member == "prepare_write":
        # A page its table could not prepare gets none of the write's bytes.
        failing = slice(FAILS_ON * PAGE, (FAILS_ON + 1) * PAGE)
        assert got[failing] == before[failing]
    # Past the failing page nothing was written; the size did not grow.
    assert got[(FAILS_ON + 1) * PAGE :] == before[(FAILS_ON + 1) * PAGE :]
    assert inode.i_size == len(before)
    assert not world.kernel.sched.raised


@pytest.mark.parametrize("member", ["prepare_write", "commit_write"])
def test_a_table_that_cannot_write_files_is_said_before_any_page_is_touched(
    member: str,
) -> None:
    _world, record, before = _file("nobh")
    inode = record.inode
    mapping = inode.i_mapping
    table = mapping.a_ops
    if member == "prepare_write":
        mapping.a_ops = attrs.evolve(table, prepare_write=None)
    else:
        mapping.a_ops = attrs.evolve(table, commit_write=None)
    nrpages = mapping.nrpages
    counts = [_page(record, i).count for i in range(PAGES)]

    with pytest.raises(FsaopsError, match="cannot write files"):
        generic_file_write(inode, PAGES * PAGE, b"new page")

    assert mapping.nrpages == nrpages
    assert [_page(record, i).count for i in range(PAGES)] == counts
    assert inode.i_size == len(before)


def test_a_write_with_no_frame_left_is_out_of_memory_and_writes_nothing() -> None:
    world, record, before = _file("nobh")
    inode = record.inode
    node = _page(record, 0).node
    taken = []
    while (frame := node.alloc_page()) is not None:
        taken.append(frame)
    assert taken, "the node had no frame to take"
    nrpages = inode.i_mapping.nrpages

    with pytest.raises(FsaopsError, match=r"out of memory writing a page \(ENOMEM\)"):
        generic_file_write(inode, PAGES * PAGE, b"a page that cannot be had")

    assert inode.i_mapping.nrpages == nrpages
    assert inode.i_size == len(before)
    assert generic_file_read(inode, 0, PAGES * PAGE + 1) == before
    assert world.kernel.sched.raised is None
