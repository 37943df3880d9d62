"""Racy ``migratepage`` implementations: right when nothing else runs, wrong under some schedule.

Each function below is ext2's ``buffer_migrate_page`` (V4 5/6) with one
mistake that only another task running at the wrong moment exposes: a
fault, a store through a mapping, a buffer lookup, writeback.  The module is
an fsaops plugin: :func:`fsaops_filesystem_types` provides one filesystem
type per function, ``race_<name>``, whose only table, ``<name>_aops``, is
ext2's (``ext2_nobh_aops`` where :data:`BASE` says so) with the racy
``migratepage``.  ``tests/test_explore_races.py`` shows that ``fsaops
explore`` finds each one within its default bounds, and records whether the
serial conformance suite does too.
"""

from __future__ import annotations

from collections.abc import Callable
from errno import EAGAIN

import attrs

# The same mistake is one of buggyfs's: serially it already loses a dirty
# bit held only in a pte; a store through a mapping makes it lose more.
from buggyfs_plugin import samples_dirty_before_unmapping

import fsaops
from fsaops import FileSystemType, buffer_migrate_page, migrate_page_copy
from fsaops.buffer import BH, BufferHead, buffers, lock_buffer, unlock_buffer
from fsaops.mapping import AddressSpace
from fsaops.page import PG, Page, lock_page, page_address, unlock_page
from fsaops.writeback import WritebackControl, clear_page_dirty_for_io
from fsaops_ext2 import EXT2, ext2_aops, ext2_nobh_aops

Migratepage = Callable[[Page, Page], int]


def _lock_buffers(head: BufferHead) -> None:
    for bh in buffers(head):
        bh.b_count += 1
        lock_buffer(bh)


def _retarget(newpage: Page, page: Page, head: BufferHead) -> None:
    mask = newpage.node.page_size - 1
    base = newpage.pfn << newpage.node.page_shift
    for bh in buffers(head):
        bh.b_page = newpage
        bh.b_data = base + (bh.b_data & mask)


def _hand_over(newpage: Page, page: Page, head: BufferHead) -> None:
    """Move the buffer ring and its page reference to ``newpage`` (under ``private_lock``)."""
    page.flags &= ~PG.private
    newpage.private = head
    page.private = 0
    page.count -= 1
    newpage.count += 1
    _retarget(newpage, page, head)
    newpage.flags |= PG.private


def _release_buffers(head: BufferHead) -> None:
    for bh in buffers(head):
        unlock_buffer(bh)
        bh.b_count -= 1


def checks_refs_without_tree_lock(newpage: Page, page: Page) -> int:
    """Checks the reference count, unmaps, then moves the slot without checking again."""
    mapping = page.mapping
    if not isinstance(mapping, AddressSpace) or not page.flags & PG.private:
        return buffer_migrate_page(newpage, page)
    if page.count != page.mapcount + 3:
        return -EAGAIN
    if page.mapcount and mapping.kernel.semantics.unmap(page):
        return -EAGAIN
    with mapping.tree_lock:
        # No re-check: a reference taken since the count was read is not seen.
        mapping.page_tree[page.index] = newpage
        newpage.count += 1
        newpage.index = page.index
        newpage.mapping = page.mapping
        page.count -= 1
    head: BufferHead = page.private
    with mapping.private_lock:
        _lock_buffers(head)
        _hand_over(newpage, page, head)
    migrate_page_copy(newpage, page)
    _release_buffers(head)
    return 0


def drops_private_lock_before_retargeting(newpage: Page, page: Page) -> int:
    """Locks the buffers under ``private_lock``, drops it, moves ``PG_private`` without it."""
    mapping = page.mapping
    if not isinstance(mapping, AddressSpace) or not page.flags & PG.private:
        return buffer_migrate_page(newpage, page)
    if mapping.kernel.semantics.migrate_page_remove_references(newpage, page, 3):
        return -EAGAIN
    head: BufferHead = page.private
    with mapping.private_lock:
        _lock_buffers(head)
    # private_lock dropped: a lookup of the new page that holds it sees
    # PG_private before the buffers are there.
    page.flags &= ~PG.private
    newpage.flags |= PG.private
    with mapping.private_lock:
        newpage.private = head
        page.private = 0
        page.count -= 1
        newpage.count += 1
        _retarget(newpage, page, head)
    migrate_page_copy(newpage, page)
    _release_buffers(head)
    return 0


def copies_before_unmapping(newpage: Page, page: Page) -> int:
    """Copies the contents first, while the ptes still let processes store into the page."""
    early = bytes(page_address(page))
    rc = buffer_migrate_page(newpage, page)
    if rc == 0:
        page_address(newpage)[:] = early  # the copy it made before unmapping
    return rc


def drops_the_page_lock(newpage: Page, page: Page) -> int:
    """Drops the page lock to let others on (``cond_resched``), and forgets writeback."""
    unlock_page(page)
    page.node.kernel.sched.tick()  # cond_resched()
    lock_page(page)
    # Missing: if (PageWriteback(page)) return -EAGAIN;
    return buffer_migrate_page(newpage, page)


def locks_clean_buffers_only(newpage: Page, page: Page) -> int:
    """Leaves dirty buffers unlocked ("written from whichever page holds them") while it moves.

    Right for a clean page, and for a dirty one nobody holds a buffer of; a
    reader that locks a dirty buffer while the buffers point at the new page
    and the copy is not done sees (and writes out) a page of zeroes.
    """
    mapping = page.mapping
    if not isinstance(mapping, AddressSpace) or not page.flags & PG.private:
        return buffer_migrate_page(newpage, page)
    if mapping.kernel.semantics.migrate_page_remove_references(newpage, page, 3):
        return -EAGAIN
    head: BufferHead = page.private
    locked = []
    with mapping.private_lock:
        for bh in buffers(head):
            bh.b_count += 1
            if not bh.b_state & BH.dirty:
                lock_buffer(bh)
                locked.append(bh)
        _hand_over(newpage, page, head)
    migrate_page_copy(newpage, page)
    for bh in buffers(head):
        if bh in locked:
            unlock_buffer(bh)
        bh.b_count -= 1
    return 0


def skips_the_last_buffer_lock(newpage: Page, page: Page) -> int:
    """Locks every buffer but the last (a loop one short) while it moves them.

    Right when nobody looks: a reader that locks the last buffer while the
    buffers point at the new page and the copy is not done sees a block of
    left-over bytes.
    """
    mapping = page.mapping
    if not isinstance(mapping, AddressSpace) or not page.flags & PG.private:
        return buffer_migrate_page(newpage, page)
    if mapping.kernel.semantics.migrate_page_remove_references(newpage, page, 3):
        return -EAGAIN
    head: BufferHead = page.private
    ring = list(buffers(head))
    with mapping.private_lock:
        for bh in ring:
            bh.b_count += 1
        for bh in ring[:-1]:
            lock_buffer(bh)
        _hand_over(newpage, page, head)
    migrate_page_copy(newpage, page)
    for bh in ring[:-1]:
        unlock_buffer(bh)
    for bh in ring:
        bh.b_count -= 1
    return 0


def unlocks_buffers_before_moving_them(newpage: Page, page: Page) -> int:
    """Locks the buffers for the copy only, and points them at the new page once unlocked.

    Right when nobody holds a buffer: a task that already had a reference
    to one (kjournald's ordered data, a user of the buffer LRU) locks it
    between the unlock and the move, starts I/O on the old frame, and the
    buffer moves under its lock.
    """
    mapping = page.mapping
    if not isinstance(mapping, AddressSpace) or not page.flags & PG.private:
        return buffer_migrate_page(newpage, page)
    if mapping.kernel.semantics.migrate_page_remove_references(newpage, page, 3):
        return -EAGAIN
    head: BufferHead = page.private
    with mapping.private_lock:
        _lock_buffers(head)
    migrate_page_copy(newpage, page)
    for bh in buffers(head):
        unlock_buffer(bh)
    with mapping.private_lock:
        _hand_over(newpage, page, head)
    for bh in buffers(head):
        bh.b_count -= 1
    return 0


def writes_out_without_waiting(newpage: Page, page: Page) -> int:
    """Writes a dirty page out itself, locks it again, and forgets ``wait_on_page_writeback``.

    Right when the write ends in one go: ``lock_buffer`` waits for each
    buffer's write.  But the last write unlocks its buffer before it ends
    the page's writeback, and the migration, woken on another CPU, moves
    the page and frees it still under writeback.
    """
    mapping = page.mapping
    if isinstance(mapping, AddressSpace) and page.flags & PG.dirty:
        writepage = mapping.a_ops.writepage
        if writepage is not None and clear_page_dirty_for_io(page):
            writepage(page, WritebackControl(sync_mode="none", for_reclaim=False))
            lock_page(page)
            # Missing: wait_on_page_writeback(page);
    return buffer_migrate_page(newpage, page)


RACY: dict[str, Migratepage] = {
    fn.__name__: fn
    for fn in (
        checks_refs_without_tree_lock,
        drops_private_lock_before_retargeting,
        copies_before_unmapping,
        samples_dirty_before_unmapping,
        drops_the_page_lock,
        locks_clean_buffers_only,
        skips_the_last_buffer_lock,
        unlocks_buffers_before_moving_them,
        writes_out_without_waiting,
    )
}
"""Every racy ``migratepage``, by name."""

BASE = {"drops_the_page_lock": ext2_nobh_aops}
"""The table a racy function replaces the ``migratepage`` of, when not ``ext2_aops``."""


def filesystem(name: str) -> FileSystemType:
    """ext2, with ``RACY[name]`` as the migratepage of its only table."""
    base = BASE.get(name, ext2_aops)
    table = attrs.evolve(base, name=f"{name}_aops", migratepage=RACY[name])
    return attrs.evolve(EXT2, name=f"race_{name}", modes={"default": table}, page_cache={})


@fsaops.hookimpl
def fsaops_filesystem_types() -> list[FileSystemType]:
    """One filesystem per racy function."""
    return [filesystem(name) for name in RACY]
