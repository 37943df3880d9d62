"""XFS file data: ``linvfs_aops`` (``fs/xfs/linux-2.6/xfs_aops.c``).

XFS allocates lazily: a buffered write reserves space but maps no block
(the buffer is *delalloc*, ``BH.delay``); ``writepage`` converts delalloc
buffers to real blocks before writing them, and ``releasepage`` will not
free buffers that are still delalloc.  ``migratepage`` is
:func:`~fsaops.buffer_migrate_page` (V4 5/6), so none of that is needed to
move a dirty page.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import fsaops
from fsaops import AddressSpaceOperations, FileSystemType, buffer_migrate_page
from fsaops.buffer import (
    BH,
    BufferHead,
    block_invalidatepage,
    block_prepare_write,
    block_read_full_page,
    block_sync_page,
    block_write_full_page,
    buffers,
    generic_commit_write,
    generic_get_block,
    page_inode,
    try_to_free_buffers,
)
from fsaops.gfp import GFP_FS
from fsaops.page import PG, Page

if TYPE_CHECKING:
    from fsaops.fs import Inode
    from fsaops.writeback import WritebackControl

__all__ = ["fsaops_filesystem_types", "linvfs_aops"]


def xfs_get_block_delay(inode: Inode, iblock: int, bh: BufferHead, create: bool) -> int:
    """Map a block for a buffered write: an allocated block, or a delalloc reservation."""
    if (iblock < len(inode.blocks) and inode.blocks[iblock]) or not create:
        return generic_get_block(inode, iblock, bh, False)
    bh.b_state |= BH.delay | BH.new
    return 0


def _convert_delalloc(page: Page) -> None:
    # xfs_page_state_convert: turn delalloc reservations into real blocks.
    if not page.flags & PG.private:
        return
    inode = page_inode(page)
    per_page = page.node.page_size // inode.i_sb.s_blocksize
    for i, bh in enumerate(buffers(page.private)):
        if bh.b_state & BH.delay:
            generic_get_block(inode, page.index * per_page + i, bh, True)
            bh.b_state &= ~(BH.delay | BH.new)


def linvfs_readpage(page: Page) -> int:
    """Read a page through its buffers."""
    return block_read_full_page(page, generic_get_block)


def linvfs_prepare_write(page: Page, start: int, end: int) -> int:
    """Reserve (delalloc) or map the blocks a write will touch."""
    return block_prepare_write(page, start, end, xfs_get_block_delay)


def linvfs_writepage(page: Page, wbc: WritebackControl) -> int:
    """Convert delalloc buffers to real blocks, then write the dirty buffers."""
    _convert_delalloc(page)
    return block_write_full_page(page, generic_get_block, wbc)


def linvfs_release_page(page: Page, gfp: int) -> int:
    """Free the buffers unless some are still delalloc (converting them on the way).

    The conversion calls into XFS, so it is done only for a caller that
    allows it (``__GFP_FS``: :data:`~fsaops.gfp.GFP_FS`); for any other the
    page keeps its buffers.
    """
    if page.flags & PG.private and any(b.b_state & BH.delay for b in buffers(page.private)):
        if gfp & GFP_FS:
            _convert_delalloc(page)
        return 0
    return try_to_free_buffers(page)


def linvfs_invalidatepage(page: Page, offset: int) -> int:
    """Forget the buffers of a truncated page."""
    return block_invalidatepage(page, offset)


linvfs_aops = AddressSpaceOperations(
    name="linvfs_aops",
    readpage=linvfs_readpage,
    writepage=linvfs_writepage,
    sync_page=block_sync_page,
    prepare_write=linvfs_prepare_write,
    commit_write=generic_commit_write,
    releasepage=linvfs_release_page,
    invalidatepage=linvfs_invalidatepage,
    migratepage=buffer_migrate_page,
)

XFS = FileSystemType(
    name="xfs",
    modes={"default": linvfs_aops},
    block_sizes=(512, 1024, 2048, 4096),
    default_block_size=4096,
    description="XFS file data (delayed allocation)",
)


@fsaops.hookimpl
def fsaops_filesystem_types() -> list[FileSystemType]:
    """Provide XFS."""
    return [XFS]
