"""A third-party plugin for the command-line tests: its migratepage corrupts the new page.

The tests register it under the ``fsaops`` entry-point group through a
throw-away ``dist-info`` directory, exactly as an installed distribution
would, so a run that mounts ``badfs`` must end with data corrupted and
exit status 1.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import fsaops
from fsaops import AddressSpaceOperations, FileSystemType, buffer_migrate_page
from fsaops.buffer import (
    block_prepare_write,
    block_read_full_page,
    block_write_full_page,
    generic_commit_write,
    generic_get_block,
)

if TYPE_CHECKING:
    from fsaops.page import Page
    from fsaops.writeback import WritebackControl


def badfs_readpage(page: Page) -> int:
    """Read through buffers."""
    return block_read_full_page(page, generic_get_block)


def badfs_writepage(page: Page, wbc: WritebackControl) -> int:
    """Write the dirty buffers."""
    return block_write_full_page(page, generic_get_block, wbc)


def badfs_prepare_write(page: Page, start: int, end: int) -> int:
    """Map the blocks a write touches."""
    return block_prepare_write(page, start, end, generic_get_block)


def badfs_migratepage(newpage: Page, page: Page) -> int:
    """Migrate like ext2, then scribble over the start of the new page."""
    rc = buffer_migrate_page(newpage, page)
    if rc == 0:
        newpage.data[:8] = b"SCRIBBLE"
    return rc


badfs_aops = AddressSpaceOperations(
    name="badfs_aops",
    readpage=badfs_readpage,
    writepage=badfs_writepage,
    prepare_write=badfs_prepare_write,
    commit_write=generic_commit_write,
    migratepage=badfs_migratepage,
)


@fsaops.hookimpl
def fsaops_filesystem_types() -> list[FileSystemType]:
    """Provide badfs."""
    return [FileSystemType(name="badfs", modes={"default": badfs_aops})]
