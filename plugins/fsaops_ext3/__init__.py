"""The ext3 filesystem: ``ext3_ordered_aops``, ``ext3_writeback_aops``, ``ext3_journalled_aops``.

Modes (the ``data=`` mount option):

``ordered`` (default)
    File data is written before the metadata that points at it commits:
    written buffers are filed in the journal as ordered data.
    ``migratepage`` is :func:`~fsaops.buffer_migrate_page`.
``writeback``
    Data is not journalled at all.  ``migratepage`` is
    ``buffer_migrate_page``.
``journal``
    Data goes through the journal: ``writepage`` files every buffer of the
    page in the running transaction, and the buffers cannot be released
    until it commits.  This table has **no** ``migratepage`` in V4, so its
    pages take the engine's fallback: ``pageout``, then
    ``try_to_release_page`` (which fails until the commit), then
    :func:`~fsaops.migrate_page`, and from pass 5 ``swap_page``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import fsaops
from fsaops import AddressSpaceOperations, FileSystemType, buffer_migrate_page
from fsaops.buffer import (
    BH,
    block_invalidatepage,
    block_prepare_write,
    block_read_full_page,
    block_sync_page,
    block_write_full_page,
    buffers,
    generic_commit_write,
    generic_get_block,
    page_inode,
)
from fsaops.page import PG, Page, unlock_page
from fsaops.writeback import WritebackControl, set_page_dirty_nobuffers
from fsaops_ext3.journal import Journal, journal_of

if TYPE_CHECKING:
    from fsaops.fs import SuperBlock

__all__ = [
    "Journal",
    "ext3_journalled_aops",
    "ext3_ordered_aops",
    "ext3_writeback_aops",
    "fsaops_filesystem_types",
]

ext3_get_block = generic_get_block


def _in_range(page: Page, start: int, end: int) -> list[object]:
    bs = page.private.b_size
    return [
        bh for i, bh in enumerate(buffers(page.private)) if i * bs < end and (i + 1) * bs > start
    ]


def ext3_readpage(page: Page) -> int:
    """Read a page through its buffers."""
    return block_read_full_page(page, ext3_get_block)


def ext3_prepare_write(page: Page, start: int, end: int) -> int:
    """Map (allocating) and read the blocks a write will touch."""
    return block_prepare_write(page, start, end, ext3_get_block)


def ext3_ordered_commit_write(page: Page, start: int, end: int) -> int:
    """Commit a write and file the written buffers as ordered data."""
    journal = journal_of(page)
    for bh in _in_range(page, start, end):
        journal.dirty_data(bh)  # type: ignore[arg-type]
    return generic_commit_write(page, start, end)


def ext3_writeback_commit_write(page: Page, start: int, end: int) -> int:
    """Commit a write; data is not journalled."""
    return generic_commit_write(page, start, end)


def ext3_journalled_commit_write(page: Page, start: int, end: int) -> int:
    """File the written buffers in the journal; the page is not dirtied."""
    journal = journal_of(page)
    partial = False
    bs = page.private.b_size
    for i, bh in enumerate(buffers(page.private)):
        if i * bs < end and (i + 1) * bs > start:
            bh.b_state |= BH.uptodate
            journal.dirty_metadata(bh)
        elif not bh.b_state & BH.uptodate:
            partial = True
    if not partial:
        page.flags |= PG.uptodate
    inode = page_inode(page)
    inode.i_size = max(inode.i_size, (page.index << page.node.page_shift) + end)
    return 0


def ext3_ordered_writepage(page: Page, wbc: WritebackControl) -> int:
    """Write the page's dirty buffers and file them as ordered data."""
    head = page.private if page.flags & PG.private else None
    ret = block_write_full_page(page, ext3_get_block, wbc)
    if ret == 0 and head is not None:
        journal = journal_of_head(head)
        for bh in buffers(head):
            journal.dirty_data(bh)
    return ret


def journal_of_head(head: object) -> Journal:
    """The journal of the page a buffer ring belongs to."""
    return journal_of(head.b_page)  # type: ignore[attr-defined]


def ext3_writeback_writepage(page: Page, wbc: WritebackControl) -> int:
    """Write the page's dirty buffers."""
    return block_write_full_page(page, ext3_get_block, wbc)


def ext3_journalled_writepage(page: Page, wbc: WritebackControl) -> int:
    """Journal a page dirtied through a mapping (``ext3_journalled_writepage``).

    A page with ``PG.checked`` (or no buffers) gets buffers and has every one
    filed in the running transaction; it is left clean and unlocked, with
    no writeback: the data reaches the disk when the journal commits.
    Other pages hold checkpoint-mode buffers and are written normally.
    """
    if page.flags & PG.checked or not page.flags & PG.private:
        page.flags &= ~PG.checked
        err = block_prepare_write(page, 0, page.node.page_size, ext3_get_block)
        if err:
            set_page_dirty_nobuffers(page)
            unlock_page(page)
            return err
        journal = journal_of(page)
        for bh in buffers(page.private):
            bh.b_state |= BH.uptodate
            journal.dirty_metadata(bh)
        page.node.kernel.vmstat.nr_writepage += 1
        unlock_page(page)
        return 0
    return block_write_full_page(page, ext3_get_block, wbc)


def ext3_journalled_set_page_dirty(page: Page) -> int:
    """Mark a journalled page for journalling at ``writepage`` (``PG.checked``)."""
    page.flags |= PG.checked
    return set_page_dirty_nobuffers(page)


def ext3_releasepage(page: Page, gfp: int) -> int:
    """Free the buffers unless the journal still holds some."""
    if not page.flags & PG.private:
        return 0
    return journal_of(page).try_to_free_buffers(page)


def ext3_invalidatepage(page: Page, offset: int) -> int:
    """Take a truncated page's buffers out of the journal, then forget them."""
    if page.flags & PG.private:
        journal = journal_of(page)
        bs = page.private.b_size
        for i, bh in enumerate(buffers(page.private)):
            if i * bs >= offset:
                journal.forget(bh)
    return block_invalidatepage(page, offset)


def ext3_fill_super(sb: SuperBlock) -> None:
    """Set up the mount's journal and start kjournald (the kernel's ``commit=``, if it has one)."""
    interval = sb.kernel.commit_interval
    sb.s_fs_info = Journal(sb) if interval is None else Journal(sb, interval)


def ext3_sync_fs(sb: SuperBlock) -> None:
    """Commit the running transaction now (``ext3_sync_fs``: ``sync(2)`` waits for it)."""
    journal = sb.s_fs_info
    if isinstance(journal, Journal):
        journal.commit()


_common = {
    "readpage": ext3_readpage,
    "sync_page": block_sync_page,
    "prepare_write": ext3_prepare_write,
    "releasepage": ext3_releasepage,
    "invalidatepage": ext3_invalidatepage,
}

ext3_ordered_aops = AddressSpaceOperations(
    name="ext3_ordered_aops",
    writepage=ext3_ordered_writepage,
    commit_write=ext3_ordered_commit_write,
    migratepage=buffer_migrate_page,
    **_common,  # type: ignore[arg-type]
)

ext3_writeback_aops = AddressSpaceOperations(
    name="ext3_writeback_aops",
    writepage=ext3_writeback_writepage,
    commit_write=ext3_writeback_commit_write,
    migratepage=buffer_migrate_page,
    **_common,  # type: ignore[arg-type]
)

ext3_journalled_aops = AddressSpaceOperations(
    name="ext3_journalled_aops",
    writepage=ext3_journalled_writepage,
    commit_write=ext3_journalled_commit_write,
    set_page_dirty=ext3_journalled_set_page_dirty,
    **_common,  # type: ignore[arg-type]
)

EXT3 = FileSystemType(
    name="ext3",
    modes={
        "ordered": ext3_ordered_aops,
        "writeback": ext3_writeback_aops,
        "journal": ext3_journalled_aops,
    },
    default_mode="ordered",
    block_sizes=(1024, 2048, 4096),
    default_block_size=1024,
    fill_super=ext3_fill_super,
    sync_fs=ext3_sync_fs,
    description="the third extended filesystem (journalled ext2)",
)


@fsaops.hookimpl
def fsaops_filesystem_types() -> list[FileSystemType]:
    """Provide ext3."""
    return [EXT3]
