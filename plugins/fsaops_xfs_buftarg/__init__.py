"""The XFS metadata buffer cache of a block device (``xfs_mapping_buftarg``).

XFS keeps its metadata buffers in the page cache of a private mapping per
block device.  The pages belong to XFS's own buffers (``xfs_buf``), which
hold a reference on each page and pointers into it, so they cannot move.
The mapping's table has ``sync_page`` and, since V4 5/6,
``migratepage = fail_migrate_page``: every attempt is a permanent ``-EIO``
failure.

A mount of this type holds the device's buffer-cache mapping.  Its pages
are read in by :func:`xfs_buf_read`, as XFS's metadata code reads them:
straight from the device into the page cache, with the buffer's reference
held by the mount's ``xfsbufd`` task until unmount.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import fsaops
from fsaops import AddressSpaceOperations, FileSystemType, fail_migrate_page
from fsaops.buffer import block_sync_page
from fsaops.errors import FsaopsError
from fsaops.mapping import grab_cache_page
from fsaops.page import PG, page_address, put_page, unlock_page
from fsaops.sched import hold

if TYPE_CHECKING:
    from fsaops.fs import Inode, SuperBlock

__all__ = ["fsaops_filesystem_types", "mapping_aops", "xfs_buf_read"]

mapping_aops = AddressSpaceOperations(
    name="xfs_mapping_buftarg.mapping_aops",
    sync_page=block_sync_page,
    migratepage=fail_migrate_page,
)


def xfs_fill_super(sb: SuperBlock) -> None:
    """Start the task whose buffers hold the mount's metadata pages."""
    sb.s_fs_info = sb.kernel.new_task(f"xfsbufd/{sb.name}")


def xfs_buf_read(inode: Inode, index: int) -> None:
    """Read page ``index`` of the buffer-cache mapping from the device, and keep it.

    As ``xfs_buf_read`` does: find or create the page, read the blocks into
    it if it is not up to date, and keep a reference for the buffer.

    Raises:
        FsaopsError: no memory for the page.
    """
    sb = inode.i_sb
    page = grab_cache_page(inode.i_mapping, index)
    if page is None:
        raise FsaopsError(f"{sb.name}: out of memory reading metadata page {index}")
    if not page.flags & PG.uptodate:
        bs = sb.s_blocksize
        data = page_address(page)
        per_page = len(data) // bs
        for b in range(per_page):
            blocknr = inode.get_block(index * per_page + b, False)
            if blocknr:
                sb.s_bdev.read(blocknr, data[b * bs : (b + 1) * bs])
            else:
                data[b * bs : (b + 1) * bs] = bytes(bs)
        page.flags |= PG.uptodate
    unlock_page(page)
    hold(sb.s_fs_info, sb.kernel.sched, "page_ref", page, None)  # the xfs_buf's reference
    put_page(page)


XFS_BUFTARG = FileSystemType(
    name="xfs_buftarg",
    modes={"default": mapping_aops},
    block_sizes=(512, 1024, 2048, 4096),
    default_block_size=4096,
    fill_super=xfs_fill_super,
    read_metadata=xfs_buf_read,
    description="the XFS metadata buffer cache of a block device",
)


@fsaops.hookimpl
def fsaops_filesystem_types() -> list[FileSystemType]:
    """Provide the buffer-cache mapping."""
    return [XFS_BUFTARG]
