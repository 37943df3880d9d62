"""ramfs: a filesystem whose pages live only in memory (``fs/ramfs``, ``fs/libfs.c``).

There is no backing store: a page is zeroed when first read, written by
``commit_write`` and dirtied without ever being written back, because
there is nowhere to write it.  So ramfs pages carry no buffer heads and its
table has no ``writepage``; a dirty page must move without writeback, which
``migratepage`` does.

``ramfs_migratepage`` is built from the two helpers the V4 series exports
(KERNEL-SPEC §5, §6), the way a kernel module would build it: move the
page-cache slot with :func:`fsaops.migrate_page_remove_references`, then the
contents and flags with :func:`fsaops.migrate_page_copy`.  (For a table like
this one, ``migratepage = fsaops.migrate_page`` would do the same.)
"""

from __future__ import annotations

from errno import EAGAIN

import fsaops
from fsaops import (
    AddressSpaceOperations,
    FileSystemType,
    migrate_page_copy,
    migrate_page_remove_references,
)
from fsaops.buffer import page_inode
from fsaops.page import PG, Page, page_address, unlock_page
from fsaops.writeback import set_page_dirty_nobuffers

__all__ = ["RAMFS", "fsaops_filesystem_types", "ramfs_aops", "ramfs_migratepage"]

#: References a ramfs page holds besides its ptes when it is migrated: the
#: page-cache slot and the migration caller's isolation reference.
NR_REFS = 2


def ramfs_readpage(page: Page) -> int:
    """``simple_readpage``: a page never written holds zeros."""
    page_address(page)[:] = bytes(page.node.page_size)
    page.flags |= PG.uptodate
    unlock_page(page)
    return 0


def ramfs_prepare_write(page: Page, start: int, end: int) -> int:
    """``simple_prepare_write``: zero what the write will not cover in a new page."""
    if not page.flags & PG.uptodate:
        data = page_address(page)
        data[:start] = bytes(start)
        data[end:] = bytes(len(data) - end)
    return 0


def ramfs_commit_write(page: Page, start: int, end: int) -> int:
    """``simple_commit_write``: the page is up to date and dirty; the file grows."""
    page.flags |= PG.uptodate
    set_page_dirty_nobuffers(page)
    inode = page_inode(page)
    inode.i_size = max(inode.i_size, (page.index << page.node.page_shift) + end)
    return 0


def ramfs_set_page_dirty(page: Page) -> int:
    """``__set_page_dirty_no_writeback``: mark the page dirty; nothing will write it."""
    return set_page_dirty_nobuffers(page)


def ramfs_migratepage(newpage: Page, page: Page) -> int:
    """Move a ramfs page: the slot first, then contents and flags.

    Both pages are locked (the engine locks them).  A page with a reference
    nobody accounts for, no mapping, or a pte that will not go (a
    ``VM_LOCKED`` area) cannot move now, and nothing has changed: the
    helper says why, as the release it comes from does.  V4's returns 1,
    which is ``-EAGAIN`` here; from 2.6.16 it returns the errno itself
    (``-EPERM`` for a ``VM_LOCKED`` area, a failure for good), passed on.
    """
    rc = migrate_page_remove_references(newpage, page, NR_REFS)
    if rc:
        return -EAGAIN if rc > 0 else rc
    migrate_page_copy(newpage, page)
    return 0


ramfs_aops = AddressSpaceOperations(
    name="ramfs_aops",
    readpage=ramfs_readpage,
    prepare_write=ramfs_prepare_write,
    commit_write=ramfs_commit_write,
    set_page_dirty=ramfs_set_page_dirty,
    migratepage=ramfs_migratepage,
)

RAMFS = FileSystemType(
    name="ramfs",
    modes={"default": ramfs_aops},
    block_sizes=(4096,),
    default_block_size=4096,
    description="pages in memory only, with no backing store",
)


@fsaops.hookimpl
def fsaops_filesystem_types() -> list[FileSystemType]:
    """Provide ramfs."""
    return [RAMFS]
