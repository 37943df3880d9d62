"""Direct page migration: ``migrate_pages`` and the helpers it exports (V4, ``mm/vmscan.c``).

This is the 2.6.15-rc1-mm2 code of the V4 series ("Direct Migration V4"),
branch by branch as KERNEL-SPEC §3-§7 describes it, with the changes of
2.6.16 and 2.6.17 where the kernel's semantics
(:class:`~fsaops.semantics.Semantics`) say so:

* :func:`migrate_pages` walks a list of isolated pages for up to 11 passes.
  Passes 0-2 only try the page lock, later passes sleep on it; pass 0
  skips pages under writeback, later passes wait; anonymous pages get a
  swap entry first; then the mapping's ``migratepage`` is called, or the
  generic fallback (``pageout``, ``try_to_release_page``,
  :func:`migrate_page`, and from pass 5 :func:`swap_page`) is taken.
* :func:`migrate_page_remove_references` moves the page-cache slot,
  :func:`migrate_page_copy` the contents and flags, :func:`migrate_page`
  does both for pages without buffers, :func:`fail_migrate_page` refuses.

Helpers return 0 or a negative errno, as in the kernel (and
:func:`migrate_page_remove_references` 1 for a mismatch, before 2.6.16).

Where the releases differ, the code calls the function the kernel's
semantics name for that step (:func:`unmap_v4`, :func:`unmap_ignore_refs`
or :func:`unmap_eperm` to unmap, the ``remove_from_swap`` of the release),
looked up in the branch that needs it, so the common path of a page never
asks which release it runs.
"""

from __future__ import annotations

import logging
from errno import EAGAIN, EIO, ENOMEM, ENOSYS, EPERM, errorcode
from typing import TYPE_CHECKING, Any, Final

from fsaops.aops import MAX_ERRNO
from fsaops.buffer import BH
from fsaops.errors import (
    InvariantError,
    KernelBug,
    PluginFault,
    ProcessEnded,
    RunTimeout,
    describe_exception,
    printable,
    raised_by_code,
    shown,
)
from fsaops.findings import Findings, MigratepageWatch
from fsaops.gfp import GFP_KERNEL
from fsaops.lists import LIST_POISON, PageList, list_move
from fsaops.lru import move_to_lru
from fsaops.mapping import remove_mapping, try_to_release_page
from fsaops.mutex import running_on
from fsaops.page import (
    PG,
    Page,
    PG_dirty,
    PG_locked,
    PG_lru,
    PG_private,
    PG_swapcache,
    PG_unlock,
    PG_waiters,
    PG_writeback,
    lock_page,
    page_mapping,
    unlock_page,
    wait_on_page_writeback,
)
from fsaops.rmap import SWAP_FAIL, SWAP_SUCCESS, try_to_unmap
from fsaops.sched import PF_SWAPWRITE
from fsaops.spinlock import spin_lock_contended
from fsaops.swap import add_to_swap
from fsaops.writeback import PageOut, pageout, set_page_dirty

if TYPE_CHECKING:
    from collections.abc import Callable

    from fsaops.kernel import Kernel
    from fsaops.oracle import PageState
    from fsaops.sched import Scheduler

__all__ = [
    "MAX_PASSES",
    "MigrateStats",
    "TableStats",
    "errno_name",
    "fail_migrate_page",
    "migrate_page",
    "migrate_page_copy",
    "migrate_page_remove_references",
    "migrate_pages",
    "swap_page",
    "unmap_eperm",
    "unmap_ignore_refs",
    "unmap_v4",
    "untold_why",
]

MAX_PASSES = 11
"""``migrate_pages`` makes at most 11 passes (``pass`` 0 to 10)."""

UNMAP_TRIES = 10
"""V3 to V8 call ``try_to_unmap`` up to 10 times while the page stays mapped."""


BH_lock = BH.lock
BH_jbd = BH.jbd
PG_copied = PG.COPIED
#: What ``migrate_page_copy`` clears on the old page.
PG_cleared_on_old = PG.swapcache | PG.active | PG.private


_MIN_ERRNO: Final = -MAX_ERRNO
"""The most negative return a ``migratepage`` may make (``-MAX_ERRNO``)."""


def errno_name(rc: object) -> str:
    """``-EAGAIN`` → ``"EAGAIN"``; other values are written out."""
    if isinstance(rc, int) and rc < 0 and -rc in errorcode:
        return errorcode[-rc]
    return repr(rc)


def untold_why(path: str, rc: int) -> str:
    """The reason the report gives a page whose attempt said nothing (``current.why`` empty).

    ``rc`` is the attempt's non-zero return: ``-EAGAIN`` leaves the page
    for another pass, and the reason is the path; anything else fails it,
    and the reason is that return, in words.  The ``mm_migrate_page``
    event carries the same reason.
    """
    return path if rc == -EAGAIN else f"{path} returned {errno_name(rc)}"


# -- the exported helpers --------------------------------------------------


def unmap_v4(page: Page) -> int:
    """Unmap a locked page for migration as V3 to V8 do: up to ten ``try_to_unmap`` calls.

    Between calls the task reschedules (a young pte refuses a first call,
    which clears it, so a second call can succeed; ``VM_LOCKED`` refuses
    every call).  Returns 0 when the page is no longer mapped, else 1.
    """
    tick = page.node.kernel.sched.tick
    for _ in range(UNMAP_TRIES):
        if not page.mapcount or try_to_unmap(page) == SWAP_SUCCESS:
            break
        tick()
    if page.mapcount:
        page.node.kernel.current.why = _still_mapped(page)
        return 1
    return 0


def unmap_ignore_refs(page: Page) -> int:
    """Unmap a locked page as January 2006 to 2.6.16-rc6 do: one ``try_to_unmap(page, 1)``.

    With ``ignore_refs`` a young pte no longer refuses; ``VM_LOCKED`` still
    does, and the page then stays mapped.  Returns 0 when the page is no
    longer mapped, else 1.
    """
    try_to_unmap(page, True)
    if page.mapcount:
        page.node.kernel.current.why = _still_mapped(page)
        return 1
    return 0


VM_LOCKED_REFUSED: Final = "VM_LOCKED: try_to_unmap refused (permanent)"
"""Why 2.6.16's unmap step gave ``-EPERM`` (what :func:`unmap_eperm` leaves in ``current.why``)."""


def unmap_eperm(page: Page) -> int:
    """Unmap a locked page as 2.6.16 does: ``SWAP_FAIL`` (``VM_LOCKED``) is ``-EPERM``.

    Returns 0 when the page is no longer mapped, ``-EPERM`` when an area
    with ``VM_LOCKED`` refused (a permanent failure), ``-EAGAIN`` when it
    is still mapped otherwise.
    """
    if try_to_unmap(page, True) == SWAP_FAIL:
        page.node.kernel.current.why = VM_LOCKED_REFUSED
        return -EPERM
    if page.mapcount:
        page.node.kernel.current.why = _still_mapped(page)
        return -EAGAIN
    return 0


def migrate_page_remove_references(newpage: Page, page: Page, nr_refs: int) -> int:
    """Unmap a locked page and move its page-cache slot to ``newpage`` (V4).

    ``nr_refs`` is the number of references the page holds besides its
    ptes: 2 (cache and isolation) or 3 (plus buffers).  The page is
    unmapped as the kernel's release does it (V4: up to ten
    ``try_to_unmap`` calls, rescheduling between them; see
    :attr:`~fsaops.semantics.Semantics.unmap`).  Then, under ``tree_lock``,
    the count must be exactly ``nr_refs`` and the slot must still point at
    the page; ``newpage`` takes the slot, a reference for it, the page's
    index and mapping (and its swap entry and ``PG.swapcache``), and the
    page drops its cache reference.

    Returns 0 on success; when something did not match, 1 (V4 to
    2.6.16-rc6; callers turn that into ``-EAGAIN``) or ``-EAGAIN`` (2.6.16);
    from 2.6.16 also ``-EPERM`` for a page in a ``VM_LOCKED`` area.  Buffers,
    contents and the other flags are not moved here.
    """
    if page.flags & PG_swapcache:  # page_mapping(page)
        mapping = page.node.kernel.swapper_space
    else:
        owner = page.mapping
        mapping = None if owner is None or owner.anon else owner  # type: ignore[assignment]
    if mapping is None:
        kernel = page.node.kernel
        kernel.current.why = "no mapping (truncated)"
        return kernel.semantics.refs_mismatch
    if page.count != page.mapcount + nr_refs:
        kernel = page.node.kernel
        kernel.current.why = _count_mismatch(page, nr_refs)
        return kernel.semantics.refs_mismatch
    if page.mapcount:
        rc = page.node.kernel.semantics.unmap(page)
        if rc:
            return rc
    # write_lock_irq(&mapping->tree_lock).  Taken and released by hand (in
    # the hot paths only): a with statement costs twice as much here.
    tree_lock = mapping.tree_lock
    if tree_lock.locked():
        spin_lock_contended(tree_lock, "tree_lock", mapping)
    else:
        tree_lock.acquire()
    try:
        flags = page.flags
        index = page.private if flags & PG_swapcache else page.index  # page_index(page)
        tree = mapping.page_tree
        if (
            # page_mapping(page), again now that the ptes are gone:
            (not flags & PG_swapcache and (page.mapping is None or page.mapping.anon))
            or page.count != nr_refs
            or index >= len(tree)
            or tree[index] is not page
        ):
            kernel = page.node.kernel
            kernel.current.why = _changed_under_us(page, nr_refs, tree, index)
            return kernel.semantics.refs_mismatch
        newpage.count += 1
        newpage.index = page.index
        newpage.mapping = page.mapping
        if flags & PG_swapcache:
            newpage.flags |= PG_swapcache
            newpage.private = page.private
        tree[index] = newpage
        page.count -= 1
    finally:
        tree_lock.release()
    return 0


def _count_mismatch(page: Page, nr_refs: int) -> str:
    """Why the counts did not match, as what was expected and what was found.

    A page with buffers (``PG_private``) whose expected count has no term
    for them is told so: its buffers hold that reference, which
    ``buffer_migrate_page`` counts (3) and ``migrate_page`` does not (2).
    """
    from fsaops.buffer import BufferHead

    want = page.mapcount + nr_refs
    parts = "cache + isolation" + (" + buffers" if nr_refs > 2 else "")
    extra = "an extra reference is held" if page.count > want else "a reference is missing"
    buffers = page.flags & PG_private and isinstance(page.private, BufferHead)
    if page.count > want and buffers and nr_refs <= 2:
        held = (
            "the extra reference is the page's buffers' (PG_private)"
            if page.count == want + 1
            else "an extra reference is held, besides the page's buffers' (PG_private)"
        )
        extra = f"{held}, which this count has no term for (buffer_migrate_page counts it)"
    return (
        f"reference count {page.count}, expected {want} ({parts} + {page.mapcount} pte(s)): {extra}"
    )


def _still_mapped(page: Page) -> str:
    """Why ``try_to_unmap`` left ptes: a ``VM_LOCKED`` area, or ptes young on every try."""
    from fsaops.rmap import VM_LOCKED

    mapping = page.mapping
    vmas = () if mapping is None else (mapping.vmas if mapping.anon else mapping.i_mmap)  # type: ignore[union-attr]
    if any(vma.vm_flags & VM_LOCKED and vma.address(page) >= 0 for vma in vmas):
        return "still mapped: try_to_unmap refused, a VM_LOCKED area maps it"
    return "still mapped: try_to_unmap refused, a pte was young (recently referenced) every try"


def _changed_under_us(page: Page, nr_refs: int, tree: list[Page | None], index: int) -> str:
    """Why the re-check under ``tree_lock`` failed."""
    held = tree[index] if 0 <= index < len(tree) else None
    if held is not page:
        return "page-tree slot changed under us (it no longer points at the page)"
    if page.count != nr_refs:
        return f"reference count changed under us: {page.count}, expected {nr_refs}"
    return "mapping changed under us (truncated)"


def migrate_page_copy(newpage: Page, page: Page) -> None:
    """Copy a page's contents and flags to ``newpage`` and clear the old page (V4).

    Copies the bytes and ``PG.error``, ``referenced``, ``uptodate``,
    ``active``, ``checked`` and ``mappedtodisk``.  A dirty page is cleaned
    with ``clear_page_dirty_for_io`` and ``newpage`` dirtied through its
    mapping's ``set_page_dirty``.  The old page loses ``PG.swapcache``,
    ``active`` and ``private``, its ``private`` and its mapping.  Writeback
    on ``newpage``, if any, is ended.
    """
    src_node = page.node
    dst_node = newpage.node
    shift = src_node.page_shift
    size = src_node.page_size
    soff = (page.pfn - src_node.start_pfn) << shift
    doff = (newpage.pfn - dst_node.start_pfn) << shift
    dst_node.mem[doff : doff + size] = src_node.mem[soff : soff + size]
    flags = page.flags
    newpage.flags |= flags & PG_copied
    if flags & PG_dirty:
        page.flags &= ~PG_dirty
        set_page_dirty(newpage)
    page.flags &= ~PG_cleared_on_old
    page.private = 0
    page.mapping = None
    if newpage.flags & PG_writeback:
        from fsaops.page import end_page_writeback

        end_page_writeback(newpage)


def migrate_page(newpage: Page, page: Page) -> int:
    """Migrate a locked page that has no buffers (V4).

    Returns 0, or ``-EAGAIN`` when :func:`migrate_page_remove_references`
    finds the references do not match (from 2.6.17 its own ``-EAGAIN`` or
    ``-EPERM``).  From 2.6.16 an anonymous page then gets its ptes back and
    leaves the swap cache here (``remove_from_swap(newpage)``, V8 and
    later); V4 calls ``remove_from_swap`` in ``migrate_pages`` instead.

    Raises:
        KernelBug: the page is under writeback (``BUG_ON(PageWriteback)``).
    """
    if page.flags & PG_writeback:
        raise KernelBug(f"migrate_page() of a page under writeback: {page!r}")
    rc = migrate_page_remove_references(newpage, page, 2)
    if rc:
        # V4 to 2.6.16: 1 means -EAGAIN; 2.6.17 passes the errno through.
        return rc if rc < 0 else -EAGAIN
    migrate_page_copy(newpage, page)
    if newpage.flags & PG_swapcache:
        semantics = newpage.node.kernel.semantics
        if semantics.remove_from_swap_caller == "migrate_page":
            semantics.remove_from_swap(newpage)
    return 0


def fail_migrate_page(newpage: Page, page: Page) -> int:
    """Refuse migration: always ``-EIO``, a permanent failure (V4 5/6)."""
    return -EIO


def swap_page(page: Page) -> int:
    """Drop a locked page from memory, writing it out first (2.6.15 ``swap_page``).

    The page is unmapped, written out if dirty, stripped of its buffers and
    removed from its cache; its data then lives on disk or in swap.  The
    page is unlocked on return.  Returns 0, or ``-EAGAIN`` when any step
    could not be done now.
    """
    mapping = page_mapping(page)
    kernel = page.node.kernel
    kernel.note_own_io(mapping)
    if (
        page.mapcount
        and mapping is not None
        # V4: try_to_unmap(page); from February 2006 (2.6.16) try_to_unmap(page, 1).
        and try_to_unmap(page, kernel.semantics.swap_page_ignore_refs) != SWAP_SUCCESS
    ):
        kernel.current.why = "swap_page: still mapped"
        unlock_page(page)
        return -EAGAIN
    if page.flags & PG_dirty:
        result = pageout(page, mapping)
        kernel.vmstat.migrate_pageout += 1
        if result is PageOut.SUCCESS:
            kernel.current.why = "swap_page: written out, not yet clean"
            return -EAGAIN
        if result is not PageOut.CLEAN:
            kernel.current.why = f"swap_page: pageout {result.value}"
            unlock_page(page)
            return -EAGAIN
    if page.flags & PG_private and (
        not try_to_release_page(page, GFP_KERNEL) or (mapping is None and page.count == 1)
    ):
        kernel.current.why = "swap_page: buffers could not be released"
        unlock_page(page)
        return -EAGAIN
    if remove_mapping(mapping, page):
        unlock_page(page)
        return 0
    kernel.current.why = "swap_page: the page is still in use"
    unlock_page(page)
    return -EAGAIN


# -- accounting --------------------------------------------------------------


class TableStats:
    """What happened to the pages of one operations table.

    ``retry_by_pass[p]`` counts the pages of this table that pass ``p`` of
    a ``migrate_pages`` call left to retry (``-EAGAIN``: the kernel's
    ``retry``), summed over the calls.
    """

    __slots__ = ("errors", "failed", "moved", "not_migrated", "reasons", "retry_by_pass", "via")

    def __init__(self) -> None:
        self.moved = 0
        self.failed = 0
        self.not_migrated = 0
        self.errors: dict[str, int] = {}
        self.via: dict[str, int] = {}
        self.reasons: dict[str, int] = {}
        self.retry_by_pass = [0] * MAX_PASSES

    @property
    def pages(self) -> int:
        """Pages of this table that ``migrate_pages`` finished with."""
        return self.moved + self.failed + self.not_migrated

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of the counts."""
        return {
            "pages": self.pages,
            "moved": self.moved,
            "failed": self.failed,
            "not_migrated": self.not_migrated,
            "errors": dict(sorted(self.errors.items())),
            "via": dict(sorted(self.via.items())),
            "reasons": dict(sorted(self.reasons.items())),
            "retry_by_pass": list(self.retry_by_pass),
        }


_REASON_CHARS: Final = 500
"""Characters of a reason a report keeps (a reason is the engine's, or plugin code's, words)."""


def _reason(why: str) -> str:
    """``why`` as a report may show it: escaped (plugin code may set it), and not too long."""
    if len(why) > _REASON_CHARS:
        why = why[:_REASON_CHARS] + f"... ({len(why) - _REASON_CHARS} more characters)"
    return printable(why)


class MigrateStats:
    """Outcome counts of one or more ``migrate_pages`` calls, by table name.

    ``via`` says how each moved page went: ``migratepage`` (the table's
    op), ``migrate_page`` (the generic fallback on a clean page),
    ``writeback`` (the fallback after writing the page out), ``swap``
    (``swap_page``: dropped to disk or swap) or ``freed`` (the page was
    freed under us).

    ``retry_by_pass[p]`` is the kernel's ``retry`` at the end of pass ``p``
    (the pages that pass left to retry), summed over the calls; each
    table's :class:`TableStats` has its share.  They are counted once per
    pass, not per page.
    """

    __slots__ = (
        "_run",
        "_tables",
        "calls",
        "failures",
        "findings",
        "frameless",
        "passes",
        "pending",
        "retry_by_pass",
        "written",
    )

    def __init__(self) -> None:
        self._tables: dict[str, TableStats] = {}
        #: The moved pages not yet in ``_tables``: a run of ``[table, via,
        #: count]``, kept from one ``migrate_pages`` call to the next (under V4
        #: a call moves one page, and most runs go on into the next call).
        self._run: list[Any] = [None, None, 0]
        self.written: set[int] = set()
        #: Pages a call left on ``from`` (counted as not migrated), by pfn:
        #: (table, reason, errno name, the pass of its last attempt or -1 when
        #: never tried).  A later call on the same list (the next chunk) may
        #: still move or fail them; each page is counted once, as it ends.
        self.pending: dict[int, tuple[str, str, str, int]] = {}
        #: Pages that failed for good, by pfn: (table, reason, errno name, pass).
        self.failures: dict[int, tuple[str, str, str, int]] = {}
        #: Pages that moved to no new frame, by pfn: ``freed`` (freed while
        #: waiting), ``swap`` or ``dropped`` (``swap_page`` dropped them).
        self.frameless: dict[int, str] = {}
        #: Wrong but lossless behaviour of tables' migratepage (fsaops.findings).
        self.findings = Findings()
        self.passes = 0
        self.calls = 0
        self.retry_by_pass = [0] * MAX_PASSES

    @property
    def tables(self) -> dict[str, TableStats]:
        """The counts by table name, every moved page counted."""
        self._count_run()
        return self._tables

    def table(self, name: str) -> TableStats:
        """The counts of one table, created on first use."""
        self._count_run()
        return self._table(name)

    def _count_run(self) -> None:
        """Count the run of moved pages the calls so far left uncounted under its table."""
        run = self._run
        if run[2]:
            name, via, count = run
            run[2] = 0
            _count_moved(self, name, via, count)

    def _table(self, name: str) -> TableStats:
        """:meth:`table`, leaving the run of moved pages as it is (a call may be running on it)."""
        stats = self._tables.get(name)
        if stats is None:
            stats = self._tables[name] = TableStats()
        return stats

    def fail(self, pfn: int, name: str, why: str, error: str, pass_: int) -> None:
        """Count a page that failed for good (it went to ``failed``)."""
        why = _reason(why)
        self.failures[pfn] = (name, why, error, pass_)
        ts = self._table(name)
        ts.failed += 1
        ts.errors[error] = ts.errors.get(error, 0) + 1
        ts.reasons[why] = ts.reasons.get(why, 0) + 1

    def pend(
        self, pfn: int, name: str, why: str, error: str = "EAGAIN", *, pass_: int = -1
    ) -> None:
        """Count a page left on ``from`` as not migrated (replacing an earlier count)."""
        why = _reason(why)
        self.unpend(pfn)
        self.pending[pfn] = (name, why, error, pass_)
        ts = self._table(name)
        ts.not_migrated += 1
        ts.errors[error] = ts.errors.get(error, 0) + 1
        ts.reasons[why] = ts.reasons.get(why, 0) + 1

    def count_retries(self, pass_: int, retry: int, by_table: dict[str, int]) -> None:
        """Add the pages pass ``pass_`` of one call left to retry, in all and by table.

        ``by_table`` is emptied, ready for the next pass.
        """
        self.retry_by_pass[pass_] += retry
        for name, count in by_table.items():
            self._table(name).retry_by_pass[pass_] += count
        by_table.clear()

    def unpend(self, pfn: int) -> None:
        """Take back the not-migrated count of a page that a later call finished."""
        entry = self.pending.pop(pfn, None)
        if entry is None:
            return
        name, why, error, _pass = entry
        ts = self._tables[name]
        ts.not_migrated -= 1
        _decrement(ts.errors, error)
        _decrement(ts.reasons, why)


def _decrement(counts: dict[str, int], key: str) -> None:
    left = counts[key] - 1
    if left:
        counts[key] = left
    else:
        del counts[key]


def table_name(page: Page) -> str:
    """The operations table a page migrates with (``swap_aops`` for anonymous pages)."""
    mapping = page_mapping(page)
    if mapping is not None:
        return mapping.a_ops.name
    kernel = page.node.kernel
    if page.mapping is not None and page.mapping.anon:
        return kernel.swap_aops_name
    return "(no mapping)"


def _tracer(kernel: Kernel) -> Callable[..., Any] | None:
    """The engine's per-page event, or ``None`` when nobody listens at debug level.

    Decided once per call, so that below its level an event costs nothing.
    """
    log = kernel.log
    if log is None or not log.is_enabled_for(logging.DEBUG):
        return None
    return log.debug


# -- the engine ----------------------------------------------------------------
#
# The per-page path below is the hot loop of the model.  It stays free of
# pluggy (table members are called directly), of logging work when no
# tracer is enabled, and of O(n) list operations; the page lock is taken
# and dropped inline, as straight-line code (indivisible under the GIL,
# like lock_page() and unlock_page() themselves).  Kernel labels of the V4
# code are named in the comments: ``unlock_both``, ``unlock_page``, ``next``.


def migrate_pages(
    from_: PageList,
    to: PageList | None,
    moved: PageList,
    failed: PageList,
    *,
    stats: MigrateStats | None = None,
    kernel: Kernel | None = None,
) -> int:
    """Migrate the isolated pages on ``from_`` to the new pages on ``to`` (V4).

    Each page ends on ``moved`` (migrated, or freed under us), on ``failed``
    (a permanent error), or still on ``from_`` (``-EAGAIN`` in the last
    pass, or never reached because ``to`` ran out).  New pages are taken
    from the tail of ``to`` and leave it only when used.  With ``to`` set to
    ``None`` every page is dropped with :func:`swap_page` instead.

    Returns the number of failed pages plus those still ``-EAGAIN`` after
    the last pass; on a kernel built without migration, ``-ENOSYS`` for
    every call, an empty list included (the kernel's stub).  ``stats``,
    when given, collects per-table outcomes.  The machine is the one the
    pages belong to; ``kernel`` names it for a call whose lists hold no
    page at all (without it such a call returns 0).

    What the kernel's semantics change here is chosen once per call: V4
    calls ``remove_from_swap`` on a page that failed and on a new page that
    was used (where it does nothing for an unmapped page); later releases
    call it from :func:`migrate_page` (see
    :attr:`~fsaops.semantics.Semantics.remove_from_swap_caller`).
    """
    first: Any = from_.lru_next
    if first is not from_:
        kernel = first.node.kernel
    elif kernel is None:
        kernel = _kernel_of(to, moved, failed)
        if kernel is None:
            return 0  # no page says which machine this is: nothing to do
    if not kernel.migration:
        return -ENOSYS
    if first is from_:
        return 0
    semantics = kernel.semantics
    # V4 calls remove_from_swap() here; later releases from migrate_page().
    engine_remove_from_swap = (
        semantics.remove_from_swap if semantics.remove_from_swap_caller == "migrate_pages" else None
    )
    if stats is None:
        stats = MigrateStats()
    stats.calls += 1
    sched = kernel.sched
    raised = sched.raised  # what the last event to fail raised, before this call
    running_on(kernel)  # a mutex a table's member takes asks it (might_sleep)
    tick = sched.tick
    vmstat = kernel.vmstat
    log = kernel.log  # _tracer(kernel), inline: under V4 this runs once per page
    trace = None if log is None or not log.is_enabled_for(logging.DEBUG) else log.debug
    debug = _DebugVm(kernel, from_, to, moved, failed, stats.findings) if kernel.debug_vm else None
    watch = MigratepageWatch(kernel, stats.findings) if kernel.strict or kernel.debug_vm else None
    replay = kernel.replay  # a replay's watch (fsaops.replay), else None
    written = stats.written
    pending = stats.pending
    last_why: dict[Page, str] = {}
    retry_by_table: dict[str, int] = {}  # this pass's -EAGAIN pages, by table
    current = kernel.current
    swapwrite = current.flags & PF_SWAPWRITE
    current.flags |= PF_SWAPWRITE
    nr_failed = 0
    nr_moved = 0
    retry = 0
    pass_ = 0
    # Moved pages are counted by (table, via) a run of equal ones at a time,
    # the run going on from the last call (MigrateStats.tables adds it up).
    # The run is the call's until it ends: taken out, and put back in ``finally``.
    run = stats._run
    run_name, run_via, run_count = run
    run[2] = 0
    try:
        while True:  # redo:
            retry = 0
            page: Any = from_.lru_next
            # list_for_each_entry_safe(page, page2, from, lru).  The test is
            # inside the loop so that it ends in an unconditional backward
            # jump: CPython 3.11 counts only those (and calls) towards
            # specializing a function, and this one is called rarely.
            while True:
                if page is from_:
                    break
                nxt = page.lru_next
                tick()  # cond_resched()
                if debug is not None:
                    debug.before(page, pass_)
                count = page.count
                if count != 1 and to is not None and to.lru_next is to:
                    # No new page left: the rest of the list is not reached (a
                    # page freed under us needs none).  Under V4 a call with
                    # pages left after its one page ends here, at the second.
                    current.why = ""
                    break
                newpage: Any = None
                name: str | None = None
                rc = -EAGAIN
                path = ""
                current.why = ""
                if count == 1:
                    # The page was freed from under us: nobody but us holds it.
                    rc = 0
                    path = "freed"
                else:
                    # Skip locked pages in the first passes (the code tests
                    # pass > 2; its comment says "the first two passes"),
                    # then sleep on the lock.
                    if pass_ > 2:
                        lock_page(page)
                        locked = True
                    else:
                        flags = page.flags  # TestSetPageLocked()
                        locked = not flags & PG_locked
                        if locked:
                            page.flags = flags | PG_locked
                        else:
                            path = "locked"
                            current.why = "page locked by another task"
                    # Wait on writeback only after a pass that may have started some.
                    if locked and page.flags & PG_writeback:
                        if pass_ > 0:
                            wait_on_page_writeback(page)
                        else:
                            unlock_page(page)  # goto unlock_page
                            locked = False
                            path = "writeback"
                            current.why = "under writeback"
                    if locked:
                        mapping: Any = page.mapping
                        if (
                            mapping is not None
                            and mapping.anon
                            and not page.flags & PG_swapcache
                            and not add_to_swap(page)
                        ):
                            # An anonymous page needs a swap entry to keep what
                            # its ptes say.  No slot: V4 moves it straight to
                            # failed, with no errno and no remove_from_swap;
                            # 2.6.16 gives -ENOMEM.  Reported as ENOMEM in both.
                            unlock_page(page)
                            rc = -ENOMEM
                            path = "add_to_swap"
                            current.why = "no swap space (add_to_swap failed)"
                        elif to is None:
                            name = table_name(page)
                            path = "swap_page"
                            rc = swap_page(page)  # goto next
                        else:
                            newpage = to.lru_prev  # lru_to_page(to)
                            flags = newpage.flags  # lock_page(newpage)
                            if flags & PG_locked:
                                lock_page(newpage)
                            else:
                                newpage.flags = flags | PG_locked
                            # page_mapping(page)
                            if page.flags & PG_swapcache:
                                mapping = kernel.swapper_space
                            elif mapping is not None and mapping.anon:
                                mapping = None
                            if mapping is None:
                                # Truncated under us.  goto unlock_both
                                path = "no_mapping"
                                current.why = "no mapping (truncated)"
                                unlock_page(newpage)
                                unlock_page(page)
                            else:
                                a_ops = mapping.a_ops
                                name = a_ops.name
                                migratepage = a_ops.migratepage
                                if migratepage is not None:
                                    # The V4 hook: the filesystem moves the page.  A
                                    # plugin's bug must not take the run down.
                                    path = "migratepage"
                                    if watch is not None:
                                        watch.before(newpage, page)
                                    if replay is not None:
                                        replay.before(page)
                                    sched.migrating = mapping  # might_sleep looks at its locks
                                    try:
                                        rc = migratepage(newpage, page)
                                    except KernelBug as exc:
                                        if watch is not None:
                                            watch.disarm()
                                        raise _in_migratepage(exc, name, page, pass_) from exc
                                    except Exception as exc:
                                        event_exc = _of_an_event(sched, exc)
                                        if event_exc is not None:
                                            # Another task's failure, met while the
                                            # table slept: not the table's to answer for.
                                            if watch is not None:
                                                watch.disarm()
                                            raise event_exc from None
                                        rc = _migratepage_raised(stats, name, page, exc)
                                    except BaseException as exc:
                                        if watch is not None:
                                            watch.disarm()
                                        if exc is not sched.raised:
                                            _migratepage_escaped(exc, name, page)
                                        raise
                                    finally:
                                        sched.migrating = None
                                    if page.lru_next is not nxt or newpage.lru_next is not to:
                                        # The engine's lists are its own: the kernel
                                        # would follow the broken links and oops.
                                        raise _links_broken(name, page, newpage, nxt, pass_)
                                    if type(rc) is not int or (rc and not _MIN_ERRNO <= rc < 0):
                                        rc = _migratepage_returned(stats, name, page, rc)
                                    if rc and type(current.why) is not str:
                                        _why_not_str(current)
                                    if watch is not None:
                                        watch.after(newpage, page, rc, name)
                                    if replay is not None:
                                        replay.after(name)
                                    # unlock_both: (inline unlock_page(newpage), unlock_page(page)),
                                    # with unlock_page's BUG() for a page nobody locked.
                                    # Both are off every LRU list: PG_lru set on either is
                                    # the BUG() of the lru_cache_add() that puts it back,
                                    # found here, where the table can be named (one test).
                                    flags = newpage.flags
                                    if flags & _LOCKED_LRU != PG_locked:
                                        raise _not_held(name, newpage, page, pass_, "migratepage")
                                    newpage.flags = flags & ~PG_unlock
                                    if flags & PG_waiters:
                                        sched.wake_page(newpage)
                                    flags = page.flags
                                    if flags & _LOCKED_LRU != PG_locked:
                                        raise _not_held(name, page, page, pass_, "migratepage")
                                    page.flags = flags & ~PG_unlock
                                    if flags & PG_waiters:
                                        sched.wake_page(page)
                                else:
                                    rc, path, newpage = _fallback(
                                        page, newpage, mapping, pass_, written
                                    )
                                    for which in (page, newpage):
                                        if which is not None and which.flags & PG_lru:
                                            raise _lru_set(name, which, page, pass_, "fallback")
                # next:
                if name is None:
                    name = table_name(page)
                if rc and type(current.why) is not str:  # set by a table's writepage, say
                    _why_not_str(current)
                if trace is not None:
                    why = current.why
                    if rc and not why:
                        why = untold_why(path, rc)
                    trace(
                        "mm_migrate_page",
                        pfn=page.pfn,
                        table=name,
                        call=stats.calls,
                        pass_=pass_,
                        path=path,
                        rc=rc,
                        why=why,
                    )
                if rc == -EAGAIN:
                    retry += 1
                    last_why[page] = current.why or path
                    retry_by_table[name] = retry_by_table.get(name, 0) + 1
                elif rc:
                    # Permanent failure.
                    if engine_remove_from_swap is not None and path != "add_to_swap":
                        engine_remove_from_swap(page)
                    list_move(page, failed)
                    nr_failed += 1
                    if pending:
                        stats.unpend(page.pfn)
                    ename = errno_name(rc)
                    stats.fail(page.pfn, name, current.why or untold_why(path, rc), ename, pass_)
                    if last_why:
                        last_why.pop(page, None)
                else:
                    # Success: the new page goes to the LRU, the old one to moved.
                    if newpage is not None:
                        if engine_remove_from_swap is not None and newpage.flags & PG_swapcache:
                            engine_remove_from_swap(newpage)
                        move_to_lru(newpage)
                        via = path
                        if written and path == "migrate_page" and page.pfn in written:
                            via = "writeback"
                    else:
                        # Freed while waiting, or dropped by swap_page: an anonymous
                        # page to swap, a file page to its file's blocks.  Rare paths:
                        # each page is recorded for the placement proof.
                        if path == "freed":
                            via = "freed"
                        else:
                            via = "swap" if name == kernel.swap_aops_name else "dropped"
                        stats.frameless[page.pfn] = via
                    list_move(page, moved)
                    nr_moved += 1
                    if written:
                        written.discard(page.pfn)
                    if pending:
                        stats.unpend(page.pfn)
                    if last_why:
                        last_why.pop(page, None)
                    if name is run_name and via is run_via:
                        run_count += 1
                    else:
                        if run_count:
                            _count_moved(stats, run_name, run_via, run_count)
                        run_name = name
                        run_via = via
                        run_count = 1
                if debug is not None:
                    debug.after(page, newpage if rc == 0 else None, name, pass_, path)
                page = nxt
            if retry:
                stats.count_retries(pass_, retry, retry_by_table)
            if retry and pass_ < MAX_PASSES - 1:  # if (retry && pass++ < 10) goto redo;
                pass_ += 1
                continue
            break
    finally:
        if run[2]:  # another call on these stats ran meanwhile and left a run of its own
            stats._count_run()
        run[0] = run_name
        run[1] = run_via
        run[2] = run_count
        if not swapwrite:
            current.flags &= ~PF_SWAPWRITE
        if watch is not None:
            watch.close()  # a kernel BUG after a call (its links broken) left it on
    passes = pass_ + 1
    stats.passes += passes
    vmstat.migrate_passes += passes
    # The pages this call tried and left (-EAGAIN in their last attempt) are
    # counted with their reason; pages it never reached are the caller's to
    # count (migrate_pages_to does, once, when it is done with its list).
    for page, why in last_why.items():
        stats.pend(page.pfn, table_name(page), why, pass_=pass_)
    vmstat.pgmigrate_success += nr_moved
    vmstat.pgmigrate_fail += nr_failed + len(last_why)
    if sched.raised is not raised and sched.raised is not None:
        raise _event_swallowed(sched.raised)
    return nr_failed + retry


def _count_moved(stats: MigrateStats, name: str, via: str, count: int) -> None:
    """Count ``count`` pages of table ``name`` moved ``via`` a path."""
    done = stats._table(name)
    done.moved += count
    done.via[via] = done.via.get(via, 0) + count


def _kernel_of(*lists: PageList | None) -> Kernel | None:
    """The machine of the first page found on ``lists``, or ``None`` if they are all empty."""
    for pl in lists:
        if pl is not None and pl.lru_next is not pl:
            kernel: Kernel = pl.lru_next.node.kernel  # type: ignore[attr-defined]
            return kernel
    return None


NOT_REACHED = "not reached (no new page left)"
"""Why a page is left when the engine never got to it."""


class _DebugVm:
    """``CONFIG_DEBUG_VM``: judge every page the moment the engine is done with it.

    Before each try the oracle snapshots the page; after it, a page that
    moved must have left everything on its new page (contents, slot, copied
    flags, dirty state, buffers unlocked at their offsets, counts), a page
    that did not must be as it was, a ``migratepage`` must have left its
    buffers' locks and counts as it found them, and every invariant of the
    machine must hold.  The first problem stops the run, naming the page,
    its table, the pass, the path and the broken promise, and what the
    watch saw a table's call change in a page it was not handed, if it saw
    any (``findings``): the page may be broken by another page's table.
    """

    __slots__ = ("_before", "_findings", "_kernel", "_lists", "_oracle")

    def __init__(
        self,
        kernel: Kernel,
        from_: PageList,
        to: PageList | None,
        moved: PageList,
        failed: PageList,
        findings: Findings,
    ) -> None:
        from fsaops.oracle import Oracle

        self._kernel = kernel
        self._findings = findings
        self._oracle = Oracle()
        self._lists = [from_, moved, failed] + ([to] if to is not None else [])
        self._before: PageState | None = None

    def before(self, page: Page, pass_: int) -> None:
        """Check the page about to be tried, and snapshot it.

        A page that is already wrong was broken by something before: the
        run stops here, before its own table is blamed for it.
        """
        from fsaops.debug import check_pages

        problems = check_pages(self._kernel, [page], quiet=False)
        if problems:
            where = (
                f"before pfn {page.pfn} was tried (pass {pass_}; it was broken earlier, "
                f"since the whole machine was checked after {self._kernel.debug_vm_last})"
            )
            raise self._broken(where, problems, [page.pfn])
        self._before = self._oracle.snapshot(page)

    def _broken(self, where: str, problems: list[str], pfns: list[int]) -> InvariantError:
        """The error of ``problems`` found at ``where``, the first one adding what the watch saw."""
        seen = self._findings.damage_said(pfns)
        first = f"{where}: {problems[0]}" + ("" if seen is None else f"; {seen[1]}")
        return InvariantError([first, *problems[1:]])

    def after(self, page: Page, newpage: Page | None, table: str, pass_: int, path: str) -> None:
        """Judge the page just tried; raise :class:`~fsaops.debug.InvariantError` at a problem."""
        from fsaops.debug import FULL_CHECK_EVERY, check_kernel, check_pages

        before = self._before
        self._before = None
        problems: list[str] = []
        if before is not None:
            if newpage is not None:
                problems += self._oracle.moved_problems(before, page)
            elif path not in ("freed", "swap_page"):
                written = path.startswith("pageout")
                problems += self._oracle.unmoved_problems(before, page, written=written)
        kernel = self._kernel
        touched = [page] if newpage is None else [page, newpage]
        problems += check_pages(kernel, touched, quiet=False)
        problems += self._buffer_problems(before, page, newpage)
        where = f"after pfn {page.pfn} ({table}, pass {pass_}, path {path})"
        kernel.debug_vm_tried += 1
        if not problems and kernel.debug_vm_tried % FULL_CHECK_EVERY == 0:
            problems = check_kernel(kernel, isolated=self._lists, quiet=False)
            if problems:
                where += (
                    f", in the last {FULL_CHECK_EVERY} pages tried: the whole machine was "
                    f"checked after {kernel.debug_vm_last}"
                )
        if problems:
            raise self._broken(where, problems, [p.pfn for p in touched])
        if kernel.debug_vm_tried % FULL_CHECK_EVERY == 0:
            kernel.debug_vm_last = f"pfn {page.pfn}"

    def _buffer_problems(
        self, before: PageState | None, page: Page, newpage: Page | None
    ) -> list[str]:
        """Buffers left locked, or with a count changed, by whoever handled the page.

        A buffer lock may be held by a task (``buffer_lock``) or by I/O in
        flight: ``block_write_full_page`` locks each buffer it submits, marks
        it ``BH_Async_Write`` and leaves it locked until
        ``end_buffer_async_write`` (``BH_Async_Read`` likewise until
        ``end_buffer_async_read``).  Neither is a buffer left locked.
        """
        if before is None or before.ring is None:
            return []
        held = {
            id(h.obj)
            for task in self._kernel.tasks
            for h in task.holds
            if h.kind in ("buffer_lock", "buffer_ref")
        }
        problems = []
        for i, state in enumerate(before.ring):
            bh = state.bh
            if id(bh) in held:
                continue
            if (
                bh.b_state & BH_lock
                and not state.state & BH_lock
                and not bh.b_state & (BH.async_write | BH.async_read)
            ):
                problems.append(f"buffer head {i} of pfn {page.pfn} was left locked")
            jbd_before = 1 if state.state & BH_jbd else 0
            jbd_now = 1 if bh.b_state & BH_jbd else 0
            if bh.b_count - jbd_now != state.count - jbd_before:
                problems.append(
                    f"buffer head {i} of pfn {page.pfn}: b_count went from {state.count} to "
                    f"{bh.b_count} (a reference taken and not dropped, or dropped twice)"
                )
        return problems


def _of_an_event(sched: Scheduler, exc: BaseException) -> BaseException | None:
    """What an event (another task's work) raised, if ``exc`` is that or was raised because of it.

    An event runs whenever the task that was running sleeps: a table's
    ``migratepage`` asleep on a buffer lock lets an I/O completion, a
    plugin's timer or a test's own event run, and what that raises passes
    up through the table's call.  A table that caught it and raised
    something else in its place is followed back to it through the
    exception's context.  ``None`` when ``exc`` is not an event's.
    """
    raised = sched.raised
    if raised is None:
        return None
    seen: set[int] = set()
    at: BaseException | None = exc
    while at is not None and id(at) not in seen:
        if at is raised:
            return raised
        seen.add(id(at))
        at = at.__cause__ or at.__context__
    return None


def _event_swallowed(raised: BaseException) -> BaseException:
    """An event failed during the call, and the code it interrupted caught what it raised.

    Another task's failure cannot be taken back by the code that happened
    to be asleep when it ran (in the kernel, another CPU's oops); a table
    member that catches everything it meets (``except Exception: return
    -EAGAIN``) must not make it vanish.  It goes on up, once every page of
    the call is counted, with a note saying so.
    """
    raised.add_note("(the code this event ran under caught it and went on; fsaops raised it again)")
    return raised


def _migratepage_raised(stats: MigrateStats, name: str, page: Page, exc: Exception) -> int:
    """A table's ``migratepage`` raised: record why and a finding; fail the page with ``-EIO``."""
    why = f"migratepage raised {describe_exception(exc)}"
    page.node.kernel.current.why = why
    stats.findings.add(name, "return", page.pfn, f"{why} (pfn {page.pfn})")
    return -EIO


def _migratepage_escaped(exc: BaseException, table: str, page: Page) -> None:
    """A table's ``migratepage`` raised ``SystemExit`` or another non-:class:`Exception`.

    Plugin code never decides how fsaops ends: that fails the run, naming
    the table and the page (:class:`~fsaops.errors.PluginFault`).  A
    ``KeyboardInterrupt``, a ``GeneratorExit`` and the run's own time limit
    (:class:`~fsaops.errors.RunTimeout`) go on as they are.
    """
    if isinstance(exc, KeyboardInterrupt | GeneratorExit | RunTimeout) and not raised_by_code(exc):
        return
    rule = exc.rule if isinstance(exc, ProcessEnded) else "plugin code may not end fsaops"
    raise PluginFault(
        f"migratepage of table {table} raised {describe_exception(exc)} on pfn {page.pfn}: {rule}"
    ) from exc


def _why_not_str(current: Any) -> None:
    """Plugin code set ``current.why`` (the reason a page stays) to something not a ``str``.

    The page's reason says so, in place of the object, which the report
    could neither measure nor escape.
    """
    current.why = f"current.why was set to {shown(current.why)}, not a str"


def _migratepage_returned(stats: MigrateStats, name: str, page: Page, rc: object) -> int:
    """A table's ``migratepage`` returned neither 0 nor a negative errno: ``-EIO``.

    An int subclass (a bool, an ``IntEnum``) is taken at the value C would
    see: ``False`` or a member worth 0 is 0.
    """
    if isinstance(rc, int):
        value = int.__index__(rc)
        if value == 0 or _MIN_ERRNO <= value < 0:
            return value
    why = f"migratepage returned {shown(rc)}, not 0 or a negative errno"
    page.node.kernel.current.why = why
    stats.findings.add(name, "return", page.pfn, f"{why} (pfn {page.pfn})")
    return -EIO


def _in_migratepage(exc: KernelBug, name: str, page: Page, pass_: int) -> KernelBug:
    """A ``BUG()`` reached inside a table's ``migratepage``, with where it ran."""
    if isinstance(exc, InvariantError):
        return exc
    if _of_an_event(page.node.kernel.sched, exc) is not None:
        return KernelBug(
            f"{exc} (in an event that ran while {name}'s migratepage slept, migrating pfn "
            f"{page.pfn}, pass {pass_})",
            table=exc.table,
        )
    return KernelBug(f"{exc} (in {name}'s migratepage, migrating pfn {page.pfn}, pass {pass_})")


_LOCKED_LRU: Final = PG_locked | PG_lru
"""What the engine tests on each page after ``migratepage``: locked, and off the LRU."""


def _not_held(name: str, which: Page, page: Page, pass_: int, how: str) -> KernelBug:
    """The page ``migratepage`` returned is not locked, or is marked on the LRU."""
    if which.flags & PG_locked:
        return _lru_set(name, which, page, pass_, how)
    return _unlocked(name, which, page, pass_)


def _lru_set(name: str, which: Page, page: Page, pass_: int, how: str) -> KernelBug:
    """``lru_cache_add``'s ``BUG()`` ahead: table code set ``PG_lru`` on a page off the LRU."""
    role = "the new page" if which is not page else "the old page"
    code = "migratepage" if how == "migratepage" else "writepage or releasepage (generic path)"
    return KernelBug(
        f"pfn {which.pfn} ({role}) is marked on the LRU (PG_lru) though it is off every LRU "
        f"list: {name}'s {code} set it, and putting the page back would hit "
        f"__pagevec_lru_add's BUG() (pfn {page.pfn}, pass {pass_})",
        table=name,
    )


def _unlocked(name: str, which: Page, page: Page, pass_: int) -> KernelBug:
    """``unlock_page``'s ``BUG()``: the engine unlocks a page ``migratepage`` already unlocked."""
    role = "the new page" if which is not page else "the old page"
    return KernelBug(
        f"unlock_page() of pfn {which.pfn} ({role}), which is not locked: {name}'s migratepage "
        f"unlocked it, but the engine unlocks both pages after the call (pfn {page.pfn}, "
        f"pass {pass_})"
    )


def _links_broken(name: str, page: Page, newpage: Page, nxt: object, pass_: int) -> KernelBug:
    """A ``migratepage`` moved a page the engine holds on its lists: list corruption."""
    which = page if page.lru_next is not nxt else newpage
    role = "the old page" if which is page else "the new page"
    own = "pages to migrate" if which is page else "new pages"
    if which.flags & PG_lru:
        what = f"put pfn {which.pfn} ({role}) on the LRU"
    elif which.lru_next is LIST_POISON:
        what = f"took pfn {which.pfn} ({role}) off the engine's list of {own}"
    else:
        what = f"changed the engine's list of {own} around pfn {which.pfn} ({role})"
    return KernelBug(
        f"list corruption: {name}'s migratepage {what}; the engine keeps both pages on its "
        f"own lists and moves them itself after the call (pfn {page.pfn}, pass {pass_})"
    )


def _fallback(
    page: Page, newpage: Page, mapping: Any, pass_: int, written: set[int]
) -> tuple[int, str, Page | None]:
    """The generic path for a table without ``migratepage`` (V4 §3 step 10)."""
    kernel = page.node.kernel
    kernel.note_own_io(mapping)
    if kernel.semantics.fallback_unmaps:
        # 2.6.17: "Make sure the dirty bit is up to date" before PageDirty.
        rc = unmap_eperm(page)
        if rc:
            unlock_page(newpage)
            unlock_page(page)
            return rc, "unmap", newpage
    if page.flags & PG_dirty:
        result = pageout(page, mapping)
        kernel.vmstat.migrate_pageout += 1
        if result is PageOut.KEEP or result is PageOut.ACTIVATE:
            kernel.current.why = f"pageout: {result.value} (dirty page could not be written)"
            unlock_page(newpage)
            unlock_page(page)
            return -EAGAIN, f"pageout_{result.value}", newpage
        if result is PageOut.SUCCESS:
            if not page.flags & PG_dirty:  # a write really started (not redirtied on error)
                written.add(page.pfn)
            kernel.current.why = kernel.current.why or "written out; waiting for writeback"
            unlock_page(newpage)
            return -EAGAIN, "pageout_success", newpage
    if not page.flags & PG_private or try_to_release_page(page, GFP_KERNEL):
        rc = migrate_page(newpage, page)
        unlock_page(newpage)
        unlock_page(page)
        return rc, "migrate_page", newpage
    if pass_ > 4:
        unlock_page(newpage)
        rc = swap_page(page)
        return rc, "swap_page", None
    kernel.current.why = "buffers could not be released"
    unlock_page(newpage)
    unlock_page(page)
    return -EAGAIN, "release_failed", newpage
