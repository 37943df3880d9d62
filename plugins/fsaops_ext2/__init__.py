"""The ext2 filesystem: ``ext2_aops``, ``ext2_nobh_aops`` and ``ext2_aops_xip``.

Modes:

``default``
    Pages carry buffer heads; ``migratepage`` is
    :func:`~fsaops.buffer_migrate_page` (V4 5/6), so a dirty page moves
    without being written.
``nobh``
    Pages carry no buffer heads (``nobh_prepare_write``), except one whose
    blocks are out of line on the disk, which reading or writing it back
    gives buffers, as in the kernel; ``migratepage`` is still
    ``buffer_migrate_page``, which hands a page without buffers to
    :func:`~fsaops.migrate_page`.
``xip``
    Execute in place: file data is read and written on the device
    directly, so there are no page-cache pages and no ``migratepage``.

The kernel's ext2 reads with ``mpage_readpage`` and, for readahead,
``mpage_readpages`` (``ext2_readpages``), which attach buffers only to
pages whose blocks are not contiguous; the model's ``default`` mode always
reads through buffers, so every cached page has them (until reclaim frees
them: a scenario's ``workload.released``), and so only the ``nobh`` table,
which never attaches any, has ``readpages``.  In the same
way only the ``nobh`` table has ``writepages`` (``ext2_writepages``,
``mpage_writepages``): a sync writes its pages whose blocks follow on in
one request, where the ``default`` table's pages are written through their
buffers, one ``writepage`` at a time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import fsaops
from fsaops import AddressSpaceOperations, FileSystemType, buffer_migrate_page
from fsaops.buffer import (
    block_prepare_write,
    block_read_full_page,
    block_sync_page,
    block_write_full_page,
    generic_commit_write,
    generic_get_block,
    mpage_readpage,
    mpage_readpages,
    mpage_writepages,
    nobh_commit_write,
    nobh_prepare_write,
    nobh_writepage,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from fsaops.mapping import AddressSpace
    from fsaops.page import Page
    from fsaops.writeback import WritebackControl

__all__ = ["ext2_aops", "ext2_aops_xip", "ext2_nobh_aops", "fsaops_filesystem_types"]

ext2_get_block = generic_get_block


def ext2_readpage(page: Page) -> int:
    """Read a page through its buffers."""
    return block_read_full_page(page, ext2_get_block)


def ext2_writepage(page: Page, wbc: WritebackControl) -> int:
    """Write a page's dirty buffers."""
    return block_write_full_page(page, ext2_get_block, wbc)


def ext2_prepare_write(page: Page, start: int, end: int) -> int:
    """Map (allocating) and read the blocks a write will touch."""
    return block_prepare_write(page, start, end, ext2_get_block)


def ext2_nobh_readpage(page: Page) -> int:
    """Read a page without attaching buffers."""
    return mpage_readpage(page, ext2_get_block)


def ext2_readpages(mapping: AddressSpace, pages: Sequence[Page]) -> int:
    """Read a batch of new pages for readahead, attaching no buffers."""
    return mpage_readpages(mapping, pages, ext2_get_block)


def ext2_writepages(mapping: AddressSpace, wbc: WritebackControl) -> int:
    """Write a mapping's dirty pages, consecutive blocks in one request."""
    return mpage_writepages(mapping, wbc, ext2_get_block)


def ext2_nobh_prepare_write(page: Page, start: int, end: int) -> int:
    """Prepare a write without attaching buffers."""
    return nobh_prepare_write(page, start, end, ext2_get_block)


def ext2_nobh_writepage(page: Page, wbc: WritebackControl) -> int:
    """Write a page without buffers."""
    return nobh_writepage(page, wbc)


def ext2_get_xip_page(page: Page) -> object:
    """Execute in place: the data is on the device; there is no page to return."""
    return None


ext2_aops = AddressSpaceOperations(
    name="ext2_aops",
    readpage=ext2_readpage,
    writepage=ext2_writepage,
    sync_page=block_sync_page,
    prepare_write=ext2_prepare_write,
    commit_write=generic_commit_write,
    migratepage=buffer_migrate_page,
)

ext2_nobh_aops = AddressSpaceOperations(
    name="ext2_nobh_aops",
    readpage=ext2_nobh_readpage,
    readpages=ext2_readpages,
    writepage=ext2_nobh_writepage,
    sync_page=block_sync_page,
    prepare_write=ext2_nobh_prepare_write,
    commit_write=nobh_commit_write,
    writepages=ext2_writepages,
    migratepage=buffer_migrate_page,
)

ext2_aops_xip = AddressSpaceOperations(
    name="ext2_aops_xip",
    get_xip_page=ext2_get_xip_page,
)

EXT2 = FileSystemType(
    name="ext2",
    modes={"default": ext2_aops, "nobh": ext2_nobh_aops, "xip": ext2_aops_xip},
    default_mode="default",
    block_sizes=(1024, 2048, 4096),
    default_block_size=1024,
    page_cache={"xip": False},
    description="the second extended filesystem",
)


@fsaops.hookimpl
def fsaops_filesystem_types() -> list[FileSystemType]:
    """Provide ext2."""
    return [EXT2]
