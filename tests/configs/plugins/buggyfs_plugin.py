"""Broken ``migratepage`` implementations, each a bug a kernel developer could write.

Every function below is ext2's ``buffer_migrate_page`` (V4 5/6) with one
mistake, grouped by the class of bug it belongs to.  The module is an fsaops
plugin: :func:`fsaops_filesystem_types` provides one filesystem type per
function, ``bug_<name>``, whose only table, ``<name>_aops``, is ext2's with
the broken ``migratepage`` (ext3 ``data=journal``'s for the functions in
:data:`JOURNALLED`, and ``bug_journalled_correct`` has that table with the
real one).  ``tests/test_verdict.py`` runs each through the
conformance suite and through ``fsaops migrate`` with and without
``--strict`` and ``--debug-vm``.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from errno import EAGAIN, EBUSY

import attrs

import fsaops
from fsaops import (
    FileSystemType,
    buffer_migrate_page,
    migrate_page,
    migrate_page_copy,
    migrate_page_remove_references,
)
from fsaops.buffer import BH, BufferHead, buffers, lock_buffer, unlock_buffer
from fsaops.lists import list_del
from fsaops.lru import lru_cache_add
from fsaops.mapping import AddressSpace, remove_from_page_cache, try_to_release_page
from fsaops.page import PG, Page, lock_page, page_address, put_page, unlock_page
from fsaops.writeback import (
    WritebackControl,
    clear_page_dirty_for_io,
    set_page_dirty,
)
from fsaops_ext2 import EXT2, ext2_aops
from fsaops_ext3 import EXT3, ext3_journalled_aops

Migratepage = Callable[[Page, Page], int]


def _take_buffers(
    newpage: Page,
    page: Page,
    *,
    offset: int | None = None,
    mapped_only: bool = False,
    lock: bool = True,
) -> BufferHead:
    """``buffer_migrate_page``'s middle: lock and reference the buffers, move them."""
    head: BufferHead = page.private
    for bh in buffers(head):
        bh.b_count += 1
        if lock:
            lock_buffer(bh)
    page.flags &= ~PG.private
    newpage.private = head
    page.private = 0
    page.count -= 1
    newpage.count += 1
    mask = newpage.node.page_size - 1
    base = newpage.pfn << newpage.node.page_shift
    for bh in buffers(head):
        if mapped_only and not bh.b_state & BH.mapped:
            continue
        bh.b_page = newpage
        bh.b_data = base + (bh.b_data & mask if offset is None else offset)
    newpage.flags |= PG.private
    return head


def _move_with_buffers(newpage: Page, page: Page) -> tuple[int, list[BufferHead]]:
    """``buffer_migrate_page``, and the buffers it moved (none if it moved none)."""
    rc = buffer_migrate_page(newpage, page)
    moved = rc == 0 and bool(newpage.flags & PG.private)
    return rc, list(buffers(newpage.private)) if moved else []


def _release_buffers(head: BufferHead) -> None:
    for bh in buffers(head):
        unlock_buffer(bh)
        bh.b_count -= 1


def _move(newpage: Page, page: Page, *, copy: bool = True) -> int:
    """A correct move, in the pieces the broken variants take apart."""
    if page.mapping is None:
        return -EAGAIN
    if not page.flags & PG.private:
        return migrate_page(newpage, page)
    if migrate_page_remove_references(newpage, page, 3):
        return -EAGAIN
    head = _take_buffers(newpage, page)
    if copy:
        migrate_page_copy(newpage, page)
    _release_buffers(head)
    return 0


# -- 1. claims success, moves nothing --------------------------------------------------


def returns_zero_doing_nothing(newpage: Page, page: Page) -> int:
    """Returns 0 without doing anything."""
    return 0


def moves_the_slot_only(newpage: Page, page: Page) -> int:
    """Moves the page-cache slot and the buffers, and forgets the copy."""
    rc = _move(newpage, page, copy=False)
    if rc == 0:
        page.mapping = None
    return rc


def drops_the_page_from_the_cache(newpage: Page, page: Page) -> int:
    """Drops a clean page from the cache instead of moving it, and says it moved."""
    if page.flags & PG.dirty or page.mapcount or page.mapping is None:
        return -EAGAIN
    if page.flags & PG.private and not try_to_release_page(page, 0):
        return -EAGAIN
    if page.count != 2:
        return -EAGAIN
    remove_from_page_cache(page)
    put_page(page)  # the cache's reference
    return 0


def copies_into_the_old_page(newpage: Page, page: Page) -> int:
    """Moves everything, but copies the contents the wrong way round."""
    if page.mapping is None or migrate_page_remove_references(newpage, page, 3):
        return -EAGAIN
    head = _take_buffers(newpage, page)
    old = bytes(page.data)
    page.data[:] = newpage.data
    migrate_page_copy(newpage, page)
    newpage.data[:] = bytes(len(old))  # what the new frame held: nothing
    _release_buffers(head)
    return 0


# -- 2. unlocks pages it does not own ---------------------------------------------------


def unlocks_both_pages(newpage: Page, page: Page) -> int:
    """Unlocks the old and the new page itself; the engine then unlocks them again."""
    rc = buffer_migrate_page(newpage, page)
    unlock_page(newpage)
    unlock_page(page)
    return rc


def unlocks_the_new_page(newpage: Page, page: Page) -> int:
    """Unlocks the new page once it is filled."""
    rc = buffer_migrate_page(newpage, page)
    if rc == 0:
        unlock_page(newpage)
    return rc


def unlocks_the_old_page_on_eagain(newpage: Page, page: Page) -> int:
    """Gives up, and unlocks the old page on the way out."""
    rc = buffer_migrate_page(newpage, page)
    if rc == -EAGAIN:
        unlock_page(page)
    return rc


# -- 3. loses the dirty state ----------------------------------------------------------------


def clears_the_dirty_bit(newpage: Page, page: Page) -> int:
    """Cleans the new page after the move, as if the data were on disk."""
    rc = buffer_migrate_page(newpage, page)
    newpage.flags &= ~PG.dirty
    return rc


def clears_the_buffers_dirty_bits(newpage: Page, page: Page) -> int:
    """Cleans the buffers while moving them: writeback writes only dirty buffers."""
    rc, moved = _move_with_buffers(newpage, page)
    for bh in moved:
        bh.b_state &= ~BH.dirty
    return rc


def samples_dirty_before_unmapping(newpage: Page, page: Page) -> int:
    """Decides whether the new page is dirty before the ptes are gone."""
    was_dirty = bool(page.flags & PG.dirty)
    rc = buffer_migrate_page(newpage, page)
    if rc == 0 and not was_dirty and newpage.flags & PG.dirty:
        newpage.flags &= ~PG.dirty  # "it was clean when we looked"
        if newpage.flags & PG.private:
            for bh in buffers(newpage.private):
                bh.b_state &= ~BH.dirty
    return rc


def cleans_the_old_page_first(newpage: Page, page: Page) -> int:
    """Clears the old page's dirty bit first, so the copy carries a clean page."""
    clear_page_dirty_for_io(page)
    return buffer_migrate_page(newpage, page)


# -- 4. copies only some flags ---------------------------------------------------------------


def keeps_only_uptodate_and_dirty(newpage: Page, page: Page) -> int:
    """Copies the flags by hand, and only the two it thinks matter."""
    if page.mapping is None or migrate_page_remove_references(newpage, page, 3):
        return -EAGAIN
    head = _take_buffers(newpage, page)
    newpage.data[:] = page.data
    newpage.flags |= page.flags & PG.uptodate
    if page.flags & PG.dirty:
        page.flags &= ~PG.dirty
        set_page_dirty(newpage)
    page.flags &= ~(PG.swapcache | PG.active | PG.private)
    page.private = 0
    page.mapping = None
    _release_buffers(head)
    return 0


def forgets_referenced(newpage: Page, page: Page) -> int:
    """Moves the page and then clears PG_referenced on the new one."""
    rc = buffer_migrate_page(newpage, page)
    if rc == 0:
        newpage.flags &= ~PG.referenced
    return rc


# -- 5. writes a dirty page back instead of moving it --------------------------------------


def sets_the_error_flag(newpage: Page, page: Page) -> int:
    """Sets ``PG_error`` on the new page (and the old): the next ``fsync`` reports ``EIO``."""
    rc = buffer_migrate_page(newpage, page)
    if rc == 0:
        newpage.flags |= PG.error
        page.flags |= PG.error  # on both, as if the old page had had it all along
    return rc


def clears_the_buffers_uptodate_bits(newpage: Page, page: Page) -> int:
    """Moves the buffers but clears ``BH_Uptodate``: the next read goes to disk over them."""
    rc, moved = _move_with_buffers(newpage, page)
    for bh in moved:
        bh.b_state &= ~BH.uptodate
    return rc


def writes_dirty_pages_back(newpage: Page, page: Page) -> int:
    """The pre-V4 habit: writes a dirty page back and asks to be called again."""
    mapping = page.mapping
    writepage = None if mapping is None or mapping.anon else mapping.a_ops.writepage  # type: ignore[union-attr]
    if page.flags & PG.dirty and writepage is not None and clear_page_dirty_for_io(page):
        writepage(page, WritebackControl(sync_mode="all", for_reclaim=False))  # unlocks it
        lock_page(page)  # the engine unlocks it after the call
        return -EAGAIN
    return buffer_migrate_page(newpage, page)


def writes_then_moves(newpage: Page, page: Page) -> int:
    """Writes a dirty page's buffers to disk by hand, then moves the page clean."""
    if page.flags & PG.dirty and page.flags & PG.private:
        for bh in buffers(page.private):
            if bh.b_state & BH.dirty and bh.b_bdev is not None:
                bh.b_bdev.write(bh.b_blocknr, bh.data)
                bh.b_state &= ~BH.dirty
        page.flags &= ~PG.dirty
        page.node.kernel.vmstat.nr_writepage += 1  # it counts its writes as writepage does
    return buffer_migrate_page(newpage, page)


# -- 6. refuses pages that could move ----------------------------------------------------------


def refuses_dirty_pages(newpage: Page, page: Page) -> int:
    """Returns -EAGAIN for every dirty page."""
    if page.flags & PG.dirty:
        return -EAGAIN
    return buffer_migrate_page(newpage, page)


def expects_two_references(newpage: Page, page: Page) -> int:
    """Counts references as if there were no buffers: no page with buffers ever moves."""
    if page.mapping is None or migrate_page_remove_references(newpage, page, 2):
        return -EAGAIN
    head = _take_buffers(newpage, page)
    migrate_page_copy(newpage, page)
    _release_buffers(head)
    return 0


def refuses_mapped_pages(newpage: Page, page: Page) -> int:
    """Gives up on any page a process maps, instead of unmapping it."""
    if page.mapcount:
        return -EAGAIN
    return buffer_migrate_page(newpage, page)


def fails_busy_pages_for_good(newpage: Page, page: Page) -> int:
    """Returns -EBUSY where it means -EAGAIN: a page that was only busy fails for good."""
    rc = buffer_migrate_page(newpage, page)
    return -EBUSY if rc == -EAGAIN else rc


def moves_pages_others_hold(newpage: Page, page: Page) -> int:
    """Expects whatever references it finds: a page another task holds moves too."""
    if page.mapping is None or not page.flags & PG.private:
        return buffer_migrate_page(newpage, page)
    if migrate_page_remove_references(newpage, page, page.count - page.mapcount):
        return -EAGAIN
    head = _take_buffers(newpage, page)
    migrate_page_copy(newpage, page)
    _release_buffers(head)
    return 0


def leaves_the_old_page_dirty(newpage: Page, page: Page) -> int:
    """Moves a dirty page and marks the old one dirty again (clear_page_dirty_for_io undone)."""
    rc = buffer_migrate_page(newpage, page)
    if rc == 0 and newpage.flags & PG.dirty:
        page.flags |= PG.dirty
    return rc


# -- 7. leaves buffers locked or referenced --------------------------------------------------


def leaves_buffers_locked(newpage: Page, page: Page) -> int:
    """Moves the page and forgets to unlock its buffers."""
    if page.mapping is None or not page.flags & PG.private:
        return buffer_migrate_page(newpage, page)
    if migrate_page_remove_references(newpage, page, 3):
        return -EAGAIN
    head = _take_buffers(newpage, page)
    migrate_page_copy(newpage, page)
    for bh in buffers(head):
        bh.b_count -= 1
    return 0


def moves_buffers_without_locking(newpage: Page, page: Page) -> int:
    """Moves the page's buffers without ``lock_buffer``: I/O in flight would use the freed frame."""
    if page.mapping is None or not page.flags & PG.private:
        return buffer_migrate_page(newpage, page)
    if migrate_page_remove_references(newpage, page, 3):
        return -EAGAIN
    head = _take_buffers(newpage, page, lock=False)
    migrate_page_copy(newpage, page)
    for bh in buffers(head):
        bh.b_count -= 1
    return 0


def leaks_buffer_references(newpage: Page, page: Page) -> int:
    """Moves the page and forgets to drop its references on the buffers."""
    if page.mapping is None or not page.flags & PG.private:
        return buffer_migrate_page(newpage, page)
    if migrate_page_remove_references(newpage, page, 3):
        return -EAGAIN
    head = _take_buffers(newpage, page)
    migrate_page_copy(newpage, page)
    for bh in buffers(head):
        unlock_buffer(bh)
    return 0


def forgets_the_device(newpage: Page, page: Page) -> int:
    """Moves the buffers and clears the clean ones' ``b_bdev``: no device for their next write."""
    rc, bhs = _move_with_buffers(newpage, page)
    for bh in bhs:
        if not bh.b_state & BH.dirty:
            bh.b_bdev = None
    return rc


def forgets_every_buffers_device(newpage: Page, page: Page) -> int:
    """Moves the buffers and clears every one's ``b_bdev``: a dirty one's write-out oopses."""
    rc, bhs = _move_with_buffers(newpage, page)
    for bh in bhs:
        bh.b_bdev = None
    return rc


def moves_buffers_to_offset_zero(newpage: Page, page: Page) -> int:
    """Points every buffer head at the start of the new page."""
    if page.mapping is None or not page.flags & PG.private:
        return buffer_migrate_page(newpage, page)
    if migrate_page_remove_references(newpage, page, 3):
        return -EAGAIN
    head = _take_buffers(newpage, page, offset=0)
    migrate_page_copy(newpage, page)
    _release_buffers(head)
    return 0


# -- other mistakes ------------------------------------------------------------------------------


def returns_one_for_eagain(newpage: Page, page: Page) -> int:
    """Passes on V4-2.6.16's ``1`` (``migrate_page_remove_references``) instead of -EAGAIN."""
    if page.mapping is None:
        return -EAGAIN
    if not page.flags & PG.private:
        return migrate_page(newpage, page)
    if migrate_page_remove_references(newpage, page, 3):
        return 1
    head = _take_buffers(newpage, page)
    migrate_page_copy(newpage, page)
    _release_buffers(head)
    return 0


def raises_on_dirty_pages(newpage: Page, page: Page) -> int:
    """Raises where it should have returned an error."""
    if page.flags & PG.dirty:
        raise RuntimeError("dirty pages are not supported yet")
    return buffer_migrate_page(newpage, page)


def keeps_the_old_page_reference(newpage: Page, page: Page) -> int:
    """Moves the slot but keeps the old page's cache reference: the old frame leaks."""
    rc = buffer_migrate_page(newpage, page)
    if rc == 0:
        page.count += 1
    return rc


def leaks_a_reference_on_a_neighbour(newpage: Page, page: Page) -> int:
    """Takes a reference on the next page of the file (a read-ahead idea) and keeps it."""
    rc = buffer_migrate_page(newpage, page)
    mapping = newpage.mapping if rc == 0 else None
    if mapping is not None and not mapping.anon:
        neighbour = mapping.lookup(newpage.index + 1)  # type: ignore[union-attr]
        if neighbour is not None:
            neighbour.count += 1
    return rc


def puts_the_old_page_twice(newpage: Page, page: Page) -> int:
    """Drops a reference on the old page it never took."""
    rc = buffer_migrate_page(newpage, page)
    if rc == 0:
        put_page(page)
    return rc


def takes_the_old_page_off_the_list(newpage: Page, page: Page) -> int:
    """Moves the page, then unlinks the old one from the list it is on: the engine's."""
    rc = buffer_migrate_page(newpage, page)
    if rc == 0:
        list_del(page)
    return rc


def puts_the_new_page_on_the_lru(newpage: Page, page: Page) -> int:
    """Moves the page and adds the new one to the LRU itself; the engine adds it again."""
    rc = buffer_migrate_page(newpage, page)
    if rc == 0:
        lru_cache_add(newpage)
    return rc


def marks_the_new_page_on_the_lru(newpage: Page, page: Page) -> int:
    """Moves the page and sets ``PG_lru`` on the new one, which it never adds to a list.

    The engine's ``lru_cache_add`` finds the bit set: the kernel's ``BUG()``.
    """
    rc = buffer_migrate_page(newpage, page)
    if rc == 0:
        newpage.flags |= PG.lru
    return rc


def marks_the_old_page_on_the_lru(newpage: Page, page: Page) -> int:
    """Moves the page and sets ``PG_lru`` on the old one, as if it were back on its list."""
    rc = buffer_migrate_page(newpage, page)
    if rc == 0:
        page.flags |= PG.lru
    return rc


def dirties_clean_pages(newpage: Page, page: Page) -> int:
    """Marks every page it moves dirty, clean ones too: each is written back for nothing."""
    rc = buffer_migrate_page(newpage, page)
    if rc == 0:
        newpage.flags |= PG.dirty
    return rc


def dirties_the_buffers_of_clean_pages(newpage: Page, page: Page) -> int:
    """Moves a clean page and marks its buffers dirty, but not the page.

    Page writeback goes by ``PG_dirty``: it never writes them, and
    ``try_to_free_buffers`` finds the page busy for as long as it lives.
    """
    rc = buffer_migrate_page(newpage, page)
    if rc == 0 and newpage.flags & PG.private and not newpage.flags & PG.dirty:
        for bh in buffers(newpage.private):
            bh.b_state |= BH.dirty
    return rc


def checks_clean_pages(newpage: Page, page: Page) -> int:
    """Sets ``PG_checked`` on every page it moves, clean ones too.

    Under ext3 ``data=journal`` the flag says "journal me at ``writepage``";
    only ``set_page_dirty`` may set it on the way, for a dirty page.
    """
    rc = buffer_migrate_page(newpage, page)
    if rc == 0:
        newpage.flags |= PG.checked
    return rc


def _swap_two_block_numbers(page: Page) -> None:
    if page.flags & PG.private:
        ring = list(buffers(page.private))
        if len(ring) > 1:
            ring[0].b_blocknr, ring[1].b_blocknr = ring[1].b_blocknr, ring[0].b_blocknr


def swaps_block_numbers(newpage: Page, page: Page) -> int:
    """Moves the page, then swaps the disk blocks of its first two buffers."""
    rc = buffer_migrate_page(newpage, page)
    if rc == 0:
        _swap_two_block_numbers(newpage)
    return rc


_GIVEN_UP: weakref.WeakKeyDictionary[object, set[int]] = weakref.WeakKeyDictionary()
"""The frames (by pfn, by machine) whose block numbers
:func:`swaps_block_numbers_when_it_gives_up` swapped: only the first time, since a second swap on
the page's next try would undo it. Keyed by the machine, which it does not keep alive: not by
``id(page)``, which a later run's page may get once this one is freed."""


def swaps_block_numbers_when_it_gives_up(newpage: Page, page: Page) -> int:
    """Gives up on a page it cannot move, but swaps two of its buffers' disk blocks first.

    Once a page: a page left busy is tried in pass after pass, and an even
    number of swaps would leave nothing wrong to find.
    """
    rc = buffer_migrate_page(newpage, page)
    if rc != 0:
        swapped = _GIVEN_UP.setdefault(page.node.kernel, set())
        if page.pfn not in swapped:
            swapped.add(page.pfn)
            _swap_two_block_numbers(page)
    return rc


def decides_dirty_from_the_first_buffer(newpage: Page, page: Page) -> int:
    """Moves a dirty page whose first buffer is clean as a clean page, buffers cleaned.

    A write(2) of part of a page dirties only the buffers it covers: the
    first one says nothing about the others.
    """
    head = page.private if page.flags & PG.private else None
    head_clean = isinstance(head, BufferHead) and not head.b_state & BH.dirty
    rc = buffer_migrate_page(newpage, page)
    if rc == 0 and head_clean:
        newpage.flags &= ~PG.dirty
        for bh in buffers(newpage.private):
            bh.b_state &= ~BH.dirty
    return rc


def sets_reclaim_on_the_old_page(newpage: Page, page: Page) -> int:
    """Marks the old page ``PG_reclaim`` once it has moved: freeing it is a bad page state."""
    rc = buffer_migrate_page(newpage, page)
    if rc == 0:
        page.flags |= PG.reclaim
    return rc


def sets_reclaim_on_the_new_page(newpage: Page, page: Page) -> int:
    """Marks the new page ``PG_reclaim``: when it is freed, a bad page state."""
    rc = buffer_migrate_page(newpage, page)
    if rc == 0:
        newpage.flags |= PG.reclaim
    return rc


# -- ext3 data=journal: buffers the journal holds (a page written back into the
# running transaction reaches migratepage with them) --------------------------------


def _journalled(page: Page) -> list[BufferHead]:
    """The buffers of ``page`` the journal holds (``BH_JBD``)."""
    if not page.flags & PG.private:
        return []
    return [bh for bh in buffers(page.private) if bh.b_state & BH.jbd]


def clears_the_journal_dirty_bits(newpage: Page, page: Page) -> int:
    """Moves the buffers and clears their ``BH_JBDDirty``: the commit never writes them."""
    rc = buffer_migrate_page(newpage, page)
    if rc == 0:
        for bh in _journalled(newpage):
            bh.b_state &= ~BH.jbddirty
    return rc


def takes_buffers_out_of_the_journal(newpage: Page, page: Page) -> int:
    """Unfiles the buffers from the running transaction to refile them, and never does."""
    journal = page.mapping.host.i_sb.s_fs_info  # type: ignore[union-attr]
    rc = buffer_migrate_page(newpage, page)
    if rc == 0:
        for bh in _journalled(newpage):
            journal.running.pop(id(bh), None)
    return rc


def clears_the_journal_bit(newpage: Page, page: Page) -> int:
    """Moves the buffers and clears ``BH_JBD``, leaving the journal's hold and reference."""
    rc = buffer_migrate_page(newpage, page)
    if rc == 0:
        for bh in _journalled(newpage):
            bh.b_state &= ~BH.jbd
    return rc


def drops_the_journal_head(newpage: Page, page: Page) -> int:
    """Moves the buffers and clears ``b_private``: ``bh2jh`` finds no journal head."""
    rc = buffer_migrate_page(newpage, page)
    if rc == 0:
        for bh in _journalled(newpage):
            bh.b_private = None
    return rc


BROKEN: dict[str, Migratepage] = {
    fn.__name__: fn
    for fn in (
        returns_zero_doing_nothing,
        moves_the_slot_only,
        drops_the_page_from_the_cache,
        copies_into_the_old_page,
        unlocks_both_pages,
        unlocks_the_new_page,
        unlocks_the_old_page_on_eagain,
        clears_the_dirty_bit,
        clears_the_buffers_dirty_bits,
        samples_dirty_before_unmapping,
        cleans_the_old_page_first,
        keeps_only_uptodate_and_dirty,
        forgets_referenced,
        sets_the_error_flag,
        clears_the_buffers_uptodate_bits,
        writes_dirty_pages_back,
        writes_then_moves,
        refuses_dirty_pages,
        expects_two_references,
        refuses_mapped_pages,
        fails_busy_pages_for_good,
        moves_pages_others_hold,
        leaves_the_old_page_dirty,
        forgets_the_device,
        forgets_every_buffers_device,
        leaves_buffers_locked,
        moves_buffers_without_locking,
        leaks_buffer_references,
        moves_buffers_to_offset_zero,
        returns_one_for_eagain,
        raises_on_dirty_pages,
        keeps_the_old_page_reference,
        leaks_a_reference_on_a_neighbour,
        puts_the_old_page_twice,
        takes_the_old_page_off_the_list,
        puts_the_new_page_on_the_lru,
        marks_the_new_page_on_the_lru,
        marks_the_old_page_on_the_lru,
        dirties_clean_pages,
        dirties_the_buffers_of_clean_pages,
        checks_clean_pages,
        sets_reclaim_on_the_old_page,
        sets_reclaim_on_the_new_page,
        swaps_block_numbers,
        swaps_block_numbers_when_it_gives_up,
        decides_dirty_from_the_first_buffer,
        clears_the_journal_dirty_bits,
        takes_buffers_out_of_the_journal,
        clears_the_journal_bit,
        drops_the_journal_head,
    )
}
"""Every broken ``migratepage``, by name."""

LOSSLESS: dict[str, str] = {
    "keeps_only_uptodate_and_dirty": "flags",
    "forgets_referenced": "flags",
    "dirties_clean_pages": "flags",
    "dirties_the_buffers_of_clean_pages": "buffers",
    "checks_clean_pages": "flags",
    "clears_the_buffers_uptodate_bits": "buffers",
    "writes_dirty_pages_back": "writepage",
    "writes_then_moves": "writepage",
    "refuses_dirty_pages": "refused",
    "expects_two_references": "refused",
    "refuses_mapped_pages": "refused",
    "fails_busy_pages_for_good": "refused",
    "moves_pages_others_hold": "held",
    "leaves_the_old_page_dirty": "flags",
    "forgets_the_device": "buffers",
    "moves_buffers_without_locking": "buffers",
    "returns_one_for_eagain": "return",
    "raises_on_dirty_pages": "return",
}
"""The bugs that lose nothing, with the kind of finding each must get.

Every other bug in :data:`BROKEN` loses data, breaks an invariant or hits a
kernel ``BUG()``: a plain ``fsaops migrate`` must fail on it.
"""


def leaves_tree_lock_held(newpage: Page, page: Page) -> int:
    """Moves a page and returns with the mapping's ``tree_lock`` still held: the next one hangs."""
    mapping = page.mapping
    rc = buffer_migrate_page(newpage, page)
    if rc == 0 and isinstance(mapping, AddressSpace):
        mapping.tree_lock.acquire()
    return rc


def spins_forever(newpage: Page, page: Page) -> int:
    """Waits for a condition that never comes true, without sleeping or yielding."""
    while page.count >= 0:
        pass
    return 0


def disarms_the_timer_and_spins(newpage: Page, page: Page) -> int:
    """Cancels the process's SIGALRM timer (as a time-limit library does), then never returns."""
    import signal

    signal.setitimer(signal.ITIMER_REAL, 0)
    return spins_forever(newpage, page)


def ignores_the_alarm_and_spins(newpage: Page, page: Page) -> int:
    """Has ``SIGALRM`` ignored, so that no timer can interrupt it, then never returns."""
    import signal

    signal.signal(signal.SIGALRM, signal.SIG_IGN)
    return spins_forever(newpage, page)


def takes_the_alarm_and_spins(newpage: Page, page: Page) -> int:
    """Puts a ``SIGALRM`` handler of its own in place (a no-op), then never returns."""
    import signal

    signal.signal(signal.SIGALRM, lambda signum, frame: None)
    return spins_forever(newpage, page)


STUCK: dict[str, Migratepage] = {
    fn.__name__: fn
    for fn in (
        spins_forever,
        disarms_the_timer_and_spins,
        ignores_the_alarm_and_spins,
        takes_the_alarm_and_spins,
    )
}
"""Broken ``migratepage`` functions that never let the run go on: a plain run must end anyway."""

LOCKS_UP: dict[str, Migratepage] = {fn.__name__: fn for fn in (leaves_tree_lock_held,)}
"""Broken ``migratepage`` functions whose next ``spin_lock`` is a ``spinlock recursion``."""


def forgets_the_copy_without_buffers(newpage: Page, page: Page) -> int:
    """Moves a page that has buffers right; one without them, it moves and never copies."""
    if page.mapping is not None and not page.flags & PG.private:
        if migrate_page_remove_references(newpage, page, 2):
            return -EAGAIN
        return 0  # migrate_page_copy forgotten
    return buffer_migrate_page(newpage, page)


def moves_only_mapped_buffers(newpage: Page, page: Page) -> int:
    """Moves only the buffers mapped to disk ("a hole holds nothing to move")."""
    if page.mapping is None:
        return -EAGAIN
    if not page.flags & PG.private:
        return migrate_page(newpage, page)
    if migrate_page_remove_references(newpage, page, 3):
        return -EAGAIN
    head = _take_buffers(newpage, page, mapped_only=True)
    migrate_page_copy(newpage, page)
    _release_buffers(head)
    return 0


def clears_pages_not_uptodate(newpage: Page, page: Page) -> int:
    """Takes a page that is not up to date for empty: clears the new one instead of the copy."""
    uptodate = page.flags & PG.uptodate
    rc = buffer_migrate_page(newpage, page)
    if rc == 0 and not uptodate:
        page_address(newpage)[:] = bytes(newpage.node.page_size)
    return rc


def copies_up_to_the_end_of_the_file(newpage: Page, page: Page) -> int:
    """Copies only the bytes inside the file: past its end the new page keeps what it held."""
    mapping = page.mapping
    ps = page.node.page_size
    left = bytes(page_address(newpage))
    rc = buffer_migrate_page(newpage, page)
    if rc == 0 and isinstance(mapping, AddressSpace) and mapping.host is not None:
        inside = mapping.host.i_size - page.index * ps
        if 0 <= inside < ps:
            page_address(newpage)[inside:] = left[inside:]
    return rc


def marks_every_buffer_uptodate(newpage: Page, page: Page) -> int:
    """Moves the buffers, and marks them all up to date ("the copy is complete")."""
    rc, moved = _move_with_buffers(newpage, page)
    for bh in moved:
        bh.b_state |= BH.uptodate
    return rc


def zeroes_holes(newpage: Page, page: Page) -> int:
    """Takes a buffer that maps no block for a hole, and a hole for zeroes."""
    rc, moved = _move_with_buffers(newpage, page)
    for bh in moved:
        if not bh.b_state & BH.mapped:
            bh.data[:] = bytes(bh.b_size)
    return rc


SUITE_ONLY: dict[str, Migratepage] = {
    fn.__name__: fn
    for fn in (
        forgets_the_copy_without_buffers,
        moves_only_mapped_buffers,
        clears_pages_not_uptodate,
        copies_up_to_the_end_of_the_file,
        marks_every_buffer_uptodate,
        zeroes_holes,
    )
}
"""Broken only on pages the verdict's scenario does not build, and the
conformance suite does: a page of a buffered table without buffer heads (read
by ``mpage_readpage``, or stripped by reclaim; ``fsaops migrate`` builds it
with ``workload.released``), the page a file ends inside
(its buffers past the end not mapped; ``fsaops migrate`` builds it with
``workload.tail``), a page written in part while not up to date (``fsaops
migrate`` builds it with ``workload.partial``), a page whose holes a process
stored into through its mapping (``fsaops migrate`` builds it with
``workload.holes``)."""


JOURNALLED = frozenset(
    {
        "checks_clean_pages",
        "journalled_correct",
        "clears_the_journal_dirty_bits",
        "takes_buffers_out_of_the_journal",
        "clears_the_journal_bit",
        "drops_the_journal_head",
    }
)
"""The filesystems that are ext3 ``data=journal`` (its own ``set_page_dirty``), not ext2."""


def filesystem(name: str) -> FileSystemType:
    """ext2, with ``BROKEN[name]`` as the migratepage of its only table (or the real one).

    The names in :data:`JOURNALLED` are ext3 with its ``data=journal`` table instead.
    """
    fn = (
        BROKEN.get(name)
        or SUITE_ONLY.get(name)
        or STUCK.get(name)
        or LOCKS_UP.get(name)
        or buffer_migrate_page
    )
    if name in JOURNALLED:
        table = attrs.evolve(ext3_journalled_aops, name=f"{name}_aops", migratepage=fn)
        return attrs.evolve(
            EXT3, name=f"bug_{name}", modes={"journal": table}, default_mode="journal"
        )
    table = attrs.evolve(ext2_aops, name=f"{name}_aops", migratepage=fn)
    return attrs.evolve(EXT2, name=f"bug_{name}", modes={"default": table}, page_cache={})


@fsaops.hookimpl
def fsaops_filesystem_types() -> list[FileSystemType]:
    """One filesystem per broken or stuck function, and the two with the real one."""
    names = (*BROKEN, *SUITE_ONLY, *STUCK, *LOCKS_UP, "correct", "journalled_correct")
    return [filesystem(name) for name in names]
