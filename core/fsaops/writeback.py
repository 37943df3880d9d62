"""Dirty pages, writeback, and ``pageout`` (``mm/page-writeback.c``, ``mm/vmscan.c``).

``pageout`` is the reclaim path's "write this page out" step, which the
2.6.15 migration engine uses as its fallback for dirty pages whose table
has no ``migratepage``.  Writes are asynchronous as in the kernel: the
table's ``writepage`` starts writeback and unlocks the page, and the I/O
completes some ticks later.
"""

from __future__ import annotations

import enum
from errno import EIO, ENOSPC, errorcode
from typing import TYPE_CHECKING

import attrs

from fsaops.aops import returned
from fsaops.buffer import set_page_dirty_buffers, try_to_free_buffers
from fsaops.errors import KernelBug
from fsaops.mapping import AS_EIO, AS_ENOSPC
from fsaops.page import (
    PG,
    Page,
    PG_dirty,
    PG_writeback,
    lock_page,
    page_mapping,
    unlock_page,
    wait_on_page_writeback,
)
from fsaops.spinlock import tag_dirty

if TYPE_CHECKING:
    from fsaops.mapping import AddressSpace

__all__ = [
    "WRITEPAGE_ACTIVATE",
    "PageOut",
    "WritebackControl",
    "clear_page_dirty_for_io",
    "do_writepages",
    "filemap_fdatawait",
    "filemap_fdatawrite",
    "filemap_write_and_wait",
    "generic_writepages",
    "handle_write_error",
    "is_page_cache_freeable",
    "pageout",
    "redirty_page_for_writepage",
    "set_page_dirty",
    "set_page_dirty_nobuffers",
    "set_page_writeback",
    "test_clear_page_dirty",
    "wait_on_page_writeback_range",
    "write_one_page",
    "writeback_pages",
]

WRITEPAGE_ACTIVATE = 0x80000
"""What ``writepage`` returns to keep the page locked and ask for activation."""


@attrs.define
class WritebackControl:
    """``struct writeback_control``, reduced to what the model's writers read."""

    sync_mode: str = "none"
    nr_to_write: int = 32
    nonblocking: bool = True
    for_reclaim: bool = True
    pages_skipped: int = 0


class PageOut(enum.Enum):
    """What ``pageout`` did (``pageout_t``)."""

    #: The write failed; the page is still locked.
    KEEP = "keep"
    #: Move the page to the active list; it is still locked.
    ACTIVATE = "activate"
    #: The write was started; the page is unlocked.
    SUCCESS = "success"
    #: The page was clean; it is still locked.
    CLEAN = "clean"


def set_page_dirty_nobuffers(page: Page) -> int:
    """Dirty a page without touching buffers (``__set_page_dirty_nobuffers``).

    A page that was clean is tagged dirty in its mapping's tree, under the
    mapping's ``tree_lock`` (:func:`~fsaops.spinlock.tag_dirty`).
    Returns 1 if the page was clean before.
    """
    flags = page.flags
    if flags & PG_dirty:
        return 0
    page.flags = flags | PG_dirty
    mapping = page.mapping
    if mapping is not None and not mapping.anon:
        tag_dirty(mapping)  # type: ignore[arg-type]
    return 1


def set_page_dirty(page: Page) -> int:
    """Dirty a page through its mapping's ``set_page_dirty`` (``set_page_dirty``).

    Without that member the buffer default, :func:`~fsaops.buffer.set_page_dirty_buffers`,
    is used; a page with no mapping just gets ``PG.dirty``.
    """
    mapping = page_mapping(page)
    if mapping is not None:
        spd = mapping.a_ops.set_page_dirty
        if spd is not None:
            return returned(mapping.a_ops, "set_page_dirty", spd(page))
        return set_page_dirty_buffers(page)
    flags = page.flags
    page.flags = flags | PG_dirty
    return 0 if flags & PG_dirty else 1


def test_clear_page_dirty(page: Page) -> int:
    """Clear ``PG.dirty``; 1 if it was set."""
    flags = page.flags
    page.flags = flags & ~PG_dirty
    return 1 if flags & PG_dirty else 0


def clear_page_dirty_for_io(page: Page) -> int:
    """Clear the dirty bit of a locked page about to be written; 1 if it was dirty.

    The kernel clears ``PG_dirty`` here on its own, and ``writepage`` sets
    ``PG_writeback`` later, under the mapping's ``tree_lock``
    (``test_set_page_writeback``), once it has prepared the page's buffers:
    in between another CPU finds the page neither dirty nor under
    writeback.  In an explored kernel the gap is a scheduling point, shown
    as a release of ``tree_lock``.
    """
    was = test_clear_page_dirty(page)
    if was and page.mapping is not None:
        page.node.kernel.sched.unlocked(page, "tree_lock")
    return was


def redirty_page_for_writepage(wbc: WritebackControl, page: Page) -> int:
    """A ``writepage`` that did not write puts the dirty bit back."""
    wbc.pages_skipped += 1
    return set_page_dirty_nobuffers(page)


def set_page_writeback(page: Page) -> None:
    """Start writeback of a locked page (``set_page_writeback``)."""
    flags = page.flags
    if flags & PG.writeback:
        raise KernelBug(f"set_page_writeback() of a page already under writeback: {page!r}")
    page.flags = flags | PG.writeback


def is_page_cache_freeable(page: Page) -> bool:
    """Only the cache and the caller hold the page (buffers aside): count - private == 2."""
    return page.count - (1 if page.flags & PG.private else 0) == 2


def handle_write_error(mapping: AddressSpace, page: Page, error: int) -> None:
    """Record a failed ``writepage`` on the mapping (``AS_EIO`` / ``AS_ENOSPC``)."""
    lock_page(page)
    if page_mapping(page) is mapping:
        mapping.flags |= AS_ENOSPC if error == -ENOSPC else AS_EIO
    unlock_page(page)


def pageout(page: Page, mapping: AddressSpace | None) -> PageOut:
    """Write a locked dirty page out (2.6.15 ``pageout``).

    KEEP when somebody else holds the page (mapped, pinned) or there is no
    mapping to write through; ACTIVATE when the table has no
    ``writepage``; CLEAN when the page was not dirty after all; otherwise
    the dirty bit is cleared, ``writepage`` is called, and SUCCESS comes
    back with the page unlocked (a failed write is recorded on the mapping).
    """
    if not is_page_cache_freeable(page):
        return PageOut.KEEP
    if mapping is None:
        if page.flags & PG.private and try_to_free_buffers(page):
            page.flags &= ~PG_dirty
            return PageOut.CLEAN
        return PageOut.KEEP
    writepage = mapping.a_ops.writepage
    if writepage is None:
        return PageOut.ACTIVATE
    if not clear_page_dirty_for_io(page):
        return PageOut.CLEAN
    kernel = page.node.kernel
    page.flags |= PG.reclaim
    wbc = WritebackControl()
    kernel.vmstat.pageout_writepage += 1
    faults = kernel.faults
    injected = faults is not None and faults.fail_writepage()
    if injected:
        # Injected: the filesystem's writepage failed before any I/O.  As a
        # writepage must, leave the page dirty and unlocked.
        redirty_page_for_writepage(wbc, page)
        unlock_page(page)
        res = -EIO
    else:
        res = returned(mapping.a_ops, "writepage", writepage(page, wbc))
    if res < 0:
        kernel.vmstat.writepage_error += 1
        kernel.current.why = f"writepage failed ({errorcode.get(-res, res)})"
        handle_write_error(mapping, page, res)
        if injected:
            # The next fsync reports it, as the kernel's would; the error is
            # the fault injector's, not the table's: its ledger says so.
            assert faults is not None
            faults.made_write_error(mapping, mapping.flags & AS_EIO)
    if res == WRITEPAGE_ACTIVATE:
        page.flags &= ~PG.reclaim
        return PageOut.ACTIVATE
    if not page.flags & PG.writeback:
        page.flags &= ~PG.reclaim
    return PageOut.SUCCESS


def write_one_page(page: Page, *, wait: bool = True) -> int:
    """Write one dirty page out through its table's ``writepage`` (``write_one_page``).

    The page is locked here; with ``wait`` the call sleeps until the write
    completes.  Returns what ``writepage`` returned, or 0 if the page was clean.
    """
    mapping = page_mapping(page)
    if mapping is None or mapping.a_ops.writepage is None:
        return 0
    lock_page(page)
    wait_on_page_writeback(page)
    if not clear_page_dirty_for_io(page):
        unlock_page(page)
        return 0
    ret = mapping.a_ops.writepage(page, WritebackControl(sync_mode="all", for_reclaim=False))
    ret = returned(mapping.a_ops, "writepage", ret)
    if ret == WRITEPAGE_ACTIVATE:
        unlock_page(page)
        ret = 0
    if wait:
        wait_on_page_writeback(page)
    return ret


def generic_writepages(mapping: AddressSpace, wbc: WritebackControl) -> int:
    """Write every dirty page of a mapping through its table's ``writepage``, one at a time.

    What ``do_writepages`` does for a table without ``writepages``: each
    dirty page is locked, waited on if under writeback, has its dirty bit
    cleared and goes to ``writepage`` (:func:`write_one_page` without the
    wait).  The sweep goes on past a failed page and returns the first
    error, or 0.
    """
    first_error = 0
    for page in mapping.pages():
        if page.flags & PG_dirty:
            ret = write_one_page(page, wait=False)
            if ret < 0 and not first_error:
                first_error = ret
    return first_error


def do_writepages(mapping: AddressSpace, wbc: WritebackControl) -> int:
    """Write the dirty pages of a mapping with its ``writepages``, or :func:`generic_writepages`."""
    writepages = mapping.a_ops.writepages
    if writepages is not None:
        return returned(mapping.a_ops, "writepages", writepages(mapping, wbc))
    return generic_writepages(mapping, wbc)


def filemap_fdatawrite(mapping: AddressSpace) -> int:
    """Start writing every dirty page of a mapping, a whole-file sweep (``filemap_fdatawrite``).

    Returns 0, or the error :func:`do_writepages` returned.
    """
    wbc = WritebackControl(
        sync_mode="all", nr_to_write=2 * mapping.nrpages, nonblocking=False, for_reclaim=False
    )
    return do_writepages(mapping, wbc)


def writeback_pages(mapping: AddressSpace, start: int, end: int) -> list[Page]:
    """The pages of ``start``..``end`` (inclusive) under writeback, in index order.

    The pages ``wait_on_page_writeback_range`` looks at (its lookup of the
    tree's writeback tag); no other page's ``PG_error`` is reported.
    """
    tree = mapping.page_tree
    end = min(end, len(tree) - 1)
    return [
        page
        for page in tree[max(start, 0) : end + 1]
        if page is not None and page.flags & PG_writeback
    ]


def wait_on_page_writeback_range(mapping: AddressSpace, start: int, end: int) -> int:
    """Wait for writeback of the pages of ``start``..``end`` and report write errors (2.6.16).

    Each page under writeback in the range is waited on; one with
    ``PG_error`` makes the result ``-EIO``, and keeps the bit (2.6.16 tests
    it, later kernels clear it).  Then the mapping's outstanding errors are
    taken: ``AS_ENOSPC`` gives ``-ENOSPC`` and ``AS_EIO`` ``-EIO`` (which
    wins), each bit cleared as it is read, so one ``fsync`` reports them.
    Returns 0 or that error.
    """
    ret = 0
    if end < start:
        return 0
    for page in writeback_pages(mapping, start, end):
        wait_on_page_writeback(page)
        if page.flags & PG.error:
            ret = -EIO
    flags = mapping.flags
    if flags & AS_ENOSPC:
        ret = -ENOSPC
    if flags & AS_EIO:
        ret = -EIO
    mapping.flags = flags & ~(AS_ENOSPC | AS_EIO)
    return ret


def filemap_fdatawait(mapping: AddressSpace) -> int:
    """Wait for every page of a file under writeback, up to its size (``filemap_fdatawait``).

    An empty file is not looked at (0, and its ``AS_*`` errors stay for a
    later ``fsync``).  Otherwise :func:`wait_on_page_writeback_range` over
    the pages ``i_size`` covers; ``swapper_space``, which has no host, over
    its whole tree.
    """
    host = mapping.host
    if host is None:
        return wait_on_page_writeback_range(mapping, 0, len(mapping.page_tree) - 1)
    if host.i_size == 0:
        return 0
    shift = mapping.kernel.page_size.bit_length() - 1
    return wait_on_page_writeback_range(mapping, 0, (host.i_size - 1) >> shift)


def filemap_write_and_wait(mapping: AddressSpace) -> int:
    """Write every dirty page of a mapping and wait for the writes (``filemap_write_and_wait``).

    As 2.6.16 has it: nothing for a mapping with no pages; otherwise
    :func:`filemap_fdatawrite`, and, only if it returned 0,
    :func:`filemap_fdatawait`.  Returns 0 or the first error: a write that
    failed to start, a page under writeback with ``PG_error``, or the
    mapping's ``AS_EIO`` / ``AS_ENOSPC`` (cleared as they are reported).
    """
    if not mapping.nrpages:
        return 0
    ret = filemap_fdatawrite(mapping)
    if ret == 0:
        ret = filemap_fdatawait(mapping)
    return ret
