"""ramfs with a plausible mistake: its ``migratepage`` copies the page by hand.

It moves the page-cache slot with the exported helper, then copies the
bytes and the two flags its author thought mattered, ``PG_uptodate`` and
``PG_dirty``, instead of calling ``migrate_page_copy``.  Nothing is lost:
every page reads back, dirty pages stay dirty.  But ``PG_referenced``,
``PG_active``, ``PG_checked``, ``PG_mappedtodisk`` and ``PG_error`` are
dropped, so a page the workload was using looks cold to reclaim once it
moved.  The plugin tutorial shows what fsaops says about it.
"""

from __future__ import annotations

from errno import EAGAIN

import attrs
from fsaops_ramfs import NR_REFS, RAMFS, ramfs_aops

import fsaops
from fsaops import FileSystemType, migrate_page_remove_references
from fsaops.page import PG, Page, page_address
from fsaops.writeback import set_page_dirty

__all__ = ["RAMFS_MISTAKE", "fsaops_filesystem_types", "hand_copying_migratepage"]


def hand_copying_migratepage(newpage: Page, page: Page) -> int:
    """Move the slot, then copy the bytes and two flags by hand."""
    if migrate_page_remove_references(newpage, page, NR_REFS):
        return -EAGAIN
    page_address(newpage)[:] = page_address(page)
    newpage.flags |= page.flags & PG.uptodate
    if page.flags & PG.dirty:
        page.flags &= ~PG.dirty
        set_page_dirty(newpage)
    page.flags &= ~PG.active
    page.mapping = None
    return 0


RAMFS_MISTAKE = attrs.evolve(
    RAMFS,
    name="ramfs_mistake",
    modes={
        "default": attrs.evolve(
            ramfs_aops, name="ramfs_mistake_aops", migratepage=hand_copying_migratepage
        )
    },
    description="ramfs whose migratepage copies two flags by hand",
)


@fsaops.hookimpl
def fsaops_filesystem_types() -> list[FileSystemType]:
    """Provide ramfs_mistake."""
    return [RAMFS_MISTAKE]
