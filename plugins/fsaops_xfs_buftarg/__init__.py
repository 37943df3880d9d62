"""The XFS metadata buffer cache of a block device (``xfs_mapping_buftarg``).

XFS keeps its metadata buffers in the page cache of a private mapping per
block device; the pages belong to XFS's own buffers, which hold pointers
into them, so they cannot move.  Its table has ``sync_page`` and, since
V4 5/6, ``migratepage = fail_migrate_page``: every attempt is a permanent
``-EIO`` failure.

A mount of this type holds one file, the device's buffer-cache mapping;
its pages are filled straight from the device, as ``xfs_buf`` does.
"""

from __future__ import annotations

import fsaops
from fsaops import AddressSpaceOperations, FileSystemType, fail_migrate_page
from fsaops.buffer import block_sync_page

__all__ = ["fsaops_filesystem_types", "mapping_aops"]

mapping_aops = AddressSpaceOperations(
    name="xfs_mapping_buftarg.mapping_aops",
    sync_page=block_sync_page,
    migratepage=fail_migrate_page,
)

XFS_BUFTARG = FileSystemType(
    name="xfs_buftarg",
    modes={"default": mapping_aops},
    block_sizes=(512, 1024, 2048, 4096),
    default_block_size=4096,
    description="the XFS metadata buffer cache of a block device",
)


@fsaops.hookimpl
def fsaops_filesystem_types() -> list[FileSystemType]:
    """Provide the buffer-cache mapping."""
    return [XFS_BUFTARG]
