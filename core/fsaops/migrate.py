"""Direct page migration: ``migrate_pages`` and the helpers it exports (V4, ``mm/vmscan.c``).

This is the 2.6.15-rc1-mm2 code of the V4 series ("Direct Migration V4"),
branch by branch as KERNEL-SPEC §3-§7 describes it:

* :func:`migrate_pages` walks a list of isolated pages for up to 11 passes.
  Passes 0-2 only try the page lock, later passes sleep on it; pass 0
  skips pages under writeback, later passes wait; anonymous pages get a
  swap entry first; then the mapping's ``migratepage`` is called, or the
  generic fallback (``pageout``, ``try_to_release_page``,
  :func:`migrate_page`, and from pass 5 :func:`swap_page`) is taken.
* :func:`migrate_page_remove_references` moves the page-cache slot,
  :func:`migrate_page_copy` the contents and flags, :func:`migrate_page`
  does both for pages without buffers, :func:`fail_migrate_page` refuses.

Helpers return 0 or a negative errno, as in the kernel.
"""

from __future__ import annotations

import logging
from errno import EAGAIN, EIO, ENOMEM, ENOSYS, errorcode
from typing import TYPE_CHECKING, Any

from fsaops.buffer import try_to_release_page
from fsaops.errors import KernelBug, PluginFault, RunTimeout, describe_exception
from fsaops.lists import PageList, list_move
from fsaops.lru import move_to_lru
from fsaops.mapping import remove_mapping
from fsaops.page import (
    PG,
    Page,
    PG_dirty,
    PG_locked,
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
from fsaops.rmap import SWAP_SUCCESS, remove_from_swap, try_to_unmap
from fsaops.sched import PF_SWAPWRITE
from fsaops.swap import add_to_swap
from fsaops.writeback import PageOut, pageout, set_page_dirty

if TYPE_CHECKING:
    from collections.abc import Callable

    from fsaops.kernel import Kernel

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
]

MAX_PASSES = 11
"""``migrate_pages`` makes at most 11 passes (``pass`` 0 to 10)."""

UNMAP_TRIES = 10
"""V4 calls ``try_to_unmap`` up to 10 times while the page stays mapped."""

PG_copied = PG.COPIED
#: What ``migrate_page_copy`` clears on the old page.
PG_cleared_on_old = PG.swapcache | PG.active | PG.private


def errno_name(rc: object) -> str:
    """``-EAGAIN`` → ``"EAGAIN"``; other values are written out."""
    if isinstance(rc, int) and rc < 0 and -rc in errorcode:
        return errorcode[-rc]
    return repr(rc)


# -- the exported helpers --------------------------------------------------


def migrate_page_remove_references(newpage: Page, page: Page, nr_refs: int) -> int:
    """Unmap a locked page and move its page-cache slot to ``newpage`` (V4).

    ``nr_refs`` is the number of references the page holds besides its
    ptes: 2 (cache and isolation) or 3 (plus buffers).  The page is
    unmapped with up to ten ``try_to_unmap`` calls, rescheduling between
    them.  Then, under ``tree_lock``, the count must be exactly ``nr_refs``
    and the slot must still point at the page; ``newpage`` takes the
    slot, a reference for it, the page's index and mapping (and its swap
    entry and ``PG.swapcache``), and the page drops its cache reference.

    Returns 0 on success, 1 when something did not match (V4-2.6.16;
    callers turn that into ``-EAGAIN``).  Buffers, contents and the other
    flags are not moved here.
    """
    if page.flags & PG_swapcache:  # page_mapping(page)
        mapping = page.node.kernel.swapper_space
    else:
        owner = page.mapping
        mapping = None if owner is None or owner.anon else owner  # type: ignore[assignment]
    if mapping is None or page.count != page.mapcount + nr_refs:
        page.node.kernel.current.why = "reference count does not match (extra reference held)"
        return 1
    if page.mapcount:
        tick = page.node.kernel.sched.tick
        for _ in range(UNMAP_TRIES):
            if not page.mapcount or try_to_unmap(page) == SWAP_SUCCESS:
                break
            tick()
        if page.mapcount:
            page.node.kernel.current.why = (
                "still mapped (try_to_unmap refused: VM_LOCKED or referenced)"
            )
            return 1
    # write_lock_irq(&mapping->tree_lock).  Taken and released by hand (in
    # the hot paths only): a with statement costs twice as much here.
    tree_lock = mapping.tree_lock
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
            page.node.kernel.current.why = "reference count or page-tree slot changed under us"
            return 1
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
    finds the references do not match.

    Raises:
        KernelBug: the page is under writeback (``BUG_ON(PageWriteback)``).
    """
    if page.flags & PG_writeback:
        raise KernelBug(f"migrate_page() of a page under writeback: {page!r}")
    if migrate_page_remove_references(newpage, page, 2):
        return -EAGAIN
    migrate_page_copy(newpage, page)
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
    if page.mapcount and mapping is not None and try_to_unmap(page) != SWAP_SUCCESS:
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
        not try_to_release_page(page, 0) or (mapping is None and page.count == 1)
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
    """What happened to the pages of one operations table."""

    __slots__ = ("errors", "failed", "moved", "not_migrated", "reasons", "via")

    def __init__(self) -> None:
        self.moved = 0
        self.failed = 0
        self.not_migrated = 0
        self.errors: dict[str, int] = {}
        self.via: dict[str, int] = {}
        self.reasons: dict[str, int] = {}

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
        }


class MigrateStats:
    """Outcome counts of one or more ``migrate_pages`` calls, by table name.

    ``via`` says how each moved page went: ``migratepage`` (the table's
    op), ``migrate_page`` (the generic fallback on a clean page),
    ``writeback`` (the fallback after writing the page out), ``swap``
    (``swap_page``: dropped to disk or swap) or ``freed`` (the page was
    freed under us).
    """

    __slots__ = ("calls", "passes", "pending", "tables", "written")

    def __init__(self) -> None:
        self.tables: dict[str, TableStats] = {}
        self.written: set[int] = set()
        #: Pages a call left on ``from`` (counted as not migrated), by pfn:
        #: (table, reason, errno name).  A later call on the same list (the next chunk)
        #: may still move or fail them; each page is counted once, as it ends.
        self.pending: dict[int, tuple[str, str, str]] = {}
        self.passes = 0
        self.calls = 0

    def table(self, name: str) -> TableStats:
        """The counts of one table, created on first use."""
        stats = self.tables.get(name)
        if stats is None:
            stats = self.tables[name] = TableStats()
        return stats

    def pend(self, pfn: int, name: str, why: str, error: str = "EAGAIN") -> None:
        """Count a page left on ``from`` as not migrated (replacing an earlier count)."""
        self.unpend(pfn)
        self.pending[pfn] = (name, why, error)
        ts = self.table(name)
        ts.not_migrated += 1
        ts.errors[error] = ts.errors.get(error, 0) + 1
        ts.reasons[why] = ts.reasons.get(why, 0) + 1

    def unpend(self, pfn: int) -> None:
        """Take back the not-migrated count of a page that a later call finished."""
        entry = self.pending.pop(pfn, None)
        if entry is None:
            return
        name, why, error = entry
        ts = self.tables[name]
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
) -> int:
    """Migrate the isolated pages on ``from_`` to the new pages on ``to`` (V4).

    Each page ends on ``moved`` (migrated, or freed under us), on ``failed``
    (a permanent error), or still on ``from_`` (``-EAGAIN`` in the last
    pass, or never reached because ``to`` ran out).  New pages are taken
    from the tail of ``to`` and leave it only when used.  With ``to`` set to
    ``None`` every page is dropped with :func:`swap_page` instead.

    Returns the number of failed pages plus those still ``-EAGAIN`` after
    the last pass, or ``-ENOSYS`` on a kernel built without migration.
    ``stats``, when given, collects per-table outcomes.
    """
    if from_.lru_next is from_:
        return 0
    kernel: Kernel = from_.lru_next.node.kernel  # type: ignore[attr-defined]
    if not kernel.migration:
        return -ENOSYS
    if stats is None:
        stats = MigrateStats()
    stats.calls += 1
    sched = kernel.sched
    tick = sched.tick
    vmstat = kernel.vmstat
    trace = _tracer(kernel)
    debug = _debug_checker(kernel, from_, to, moved, failed) if kernel.debug_vm else None
    tables = stats.tables
    written = stats.written
    pending = stats.pending
    last_why: dict[Page, str] = {}
    current = kernel.current
    swapwrite = current.flags & PF_SWAPWRITE
    current.flags |= PF_SWAPWRITE
    nr_failed = 0
    nr_moved = 0
    retry = 0
    pass_ = 0
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
                newpage: Any = None
                name: str | None = None
                rc = -EAGAIN
                path = ""
                current.why = ""
                if page.count == 1:
                    # The page was freed from under us: nobody but us holds it.
                    rc = 0
                    path = "freed"
                elif to is not None and to.lru_next is to:
                    break  # no new page left: the rest of the list is not reached
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
                            # its ptes say.  V4: no slot, straight to failed
                            # (2.6.16: -ENOMEM).
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
                                    try:
                                        rc = migratepage(newpage, page)
                                    except KernelBug:
                                        raise
                                    except Exception as exc:
                                        rc = _migratepage_raised(kernel, exc)
                                    except BaseException as exc:
                                        _migratepage_escaped(exc, name, page)
                                        raise
                                    if type(rc) is not int or rc > 0:
                                        rc = _migratepage_returned(kernel, rc)
                                    # unlock_both: (inline unlock_page(newpage), unlock_page(page))
                                    flags = newpage.flags
                                    newpage.flags = flags & ~PG_unlock
                                    if flags & PG_waiters:
                                        sched.wake_page(newpage)
                                    flags = page.flags
                                    page.flags = flags & ~PG_unlock
                                    if flags & PG_waiters:
                                        sched.wake_page(page)
                                else:
                                    rc, path, newpage = _fallback(
                                        page, newpage, mapping, pass_, written
                                    )
                # next:
                if name is None:
                    name = table_name(page)
                if trace is not None:
                    trace(
                        "mm_migrate_page",
                        pfn=page.pfn,
                        table=name,
                        pass_=pass_,
                        path=path,
                        rc=rc,
                        why=current.why,
                    )
                if rc == -EAGAIN:
                    retry += 1
                    last_why[page] = current.why or path
                elif rc:
                    # Permanent failure.
                    if path != "add_to_swap":
                        remove_from_swap(page)
                    list_move(page, failed)
                    nr_failed += 1
                    if pending:
                        stats.unpend(page.pfn)
                    ts = stats.table(name)
                    ts.failed += 1
                    ename = errno_name(rc)
                    ts.errors[ename] = ts.errors.get(ename, 0) + 1
                    why = current.why or f"{path} returned {ename}"
                    ts.reasons[why] = ts.reasons.get(why, 0) + 1
                    if last_why:
                        last_why.pop(page, None)
                else:
                    # Success: the new page goes to the LRU, the old one to moved.
                    if newpage is not None:
                        if newpage.flags & PG_swapcache:
                            remove_from_swap(newpage)
                        move_to_lru(newpage)
                        via = path
                        if written and path == "migrate_page" and page.pfn in written:
                            via = "writeback"
                    else:
                        via = "freed" if path == "freed" else "swap"
                    list_move(page, moved)
                    nr_moved += 1
                    if written:
                        written.discard(page.pfn)
                    if pending:
                        stats.unpend(page.pfn)
                    if last_why:
                        last_why.pop(page, None)
                    done = tables.get(name)
                    if done is None:
                        done = stats.table(name)
                    done.moved += 1
                    counts = done.via
                    counts[via] = counts.get(via, 0) + 1
                if debug is not None:
                    debug(page, newpage if rc == 0 else None, name, pass_, path)
                page = nxt
            if retry and pass_ < MAX_PASSES - 1:  # if (retry && pass++ < 10) goto redo;
                pass_ += 1
                continue
            break
    finally:
        if not swapwrite:
            current.flags &= ~PF_SWAPWRITE
    passes = pass_ + 1
    stats.passes += passes
    vmstat.migrate_passes += passes
    # The pages this call tried and left (-EAGAIN in their last attempt) are
    # counted with their reason; pages it never reached are the caller's to
    # count (migrate_pages_to does, once, when it is done with its list).
    for page, why in last_why.items():
        stats.pend(page.pfn, table_name(page), why)
    vmstat.pgmigrate_success += nr_moved
    vmstat.pgmigrate_fail += nr_failed + len(last_why)
    return nr_failed + retry


NOT_REACHED = "not reached (no new page left)"
"""Why a page is left when the engine never got to it."""


def _debug_checker(
    kernel: Kernel,
    from_: PageList,
    to: PageList | None,
    moved: PageList,
    failed: PageList,
) -> Callable[[Page, Page | None, str, int, str], None]:
    """``CONFIG_DEBUG_VM``: check every invariant after each page, naming the culprit.

    After a page moved to a new page, the old page (not yet freed) must
    also hold the same bytes as the new one.
    """
    from fsaops.debug import InvariantError, check_kernel
    from fsaops.page import page_address

    lists = [from_, moved, failed] + ([to] if to is not None else [])

    def check(page: Page, newpage: Page | None, table: str, pass_: int, path: str) -> None:
        problems = check_kernel(kernel, isolated=lists, quiet=False)
        if newpage is not None and page_address(newpage) != page_address(page):
            problems.insert(0, f"the contents of pfn {page.pfn} did not reach pfn {newpage.pfn}")
        if problems:
            where = f"after pfn {page.pfn} ({table}, pass {pass_}, path {path})"
            raise InvariantError([f"{where}: {problems[0]}", *problems[1:]])

    return check


def _migratepage_raised(kernel: Kernel, exc: Exception) -> int:
    """A table's ``migratepage`` raised: record why, and fail the page with ``-EIO``."""
    kernel.current.why = f"migratepage raised {type(exc).__name__}: {exc}"
    return -EIO


def _migratepage_escaped(exc: BaseException, table: str, page: Page) -> None:
    """A table's ``migratepage`` raised ``SystemExit`` or another non-:class:`Exception`.

    Plugin code never decides how fsaops ends: that fails the run, naming
    the table and the page (:class:`~fsaops.errors.PluginFault`).  A
    ``KeyboardInterrupt``, a ``GeneratorExit`` and the run's own time limit
    (:class:`~fsaops.errors.RunTimeout`) go on as they are.
    """
    if isinstance(exc, KeyboardInterrupt | GeneratorExit | RunTimeout):
        return
    raise PluginFault(
        f"migratepage of table {table} raised {describe_exception(exc)} on pfn {page.pfn}: "
        "plugin code may not end fsaops"
    ) from exc


def _migratepage_returned(kernel: Kernel, rc: object) -> int:
    """A table's ``migratepage`` returned neither 0 nor a negative errno: ``-EIO``."""
    kernel.current.why = f"migratepage returned {rc!r}, not 0 or a negative errno"
    return -EIO


def _fallback(
    page: Page, newpage: Page, mapping: Any, pass_: int, written: set[int]
) -> tuple[int, str, Page | None]:
    """The generic path for a table without ``migratepage`` (V4 §3 step 10)."""
    kernel = page.node.kernel
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
    if not page.flags & PG_private or try_to_release_page(page, 0):
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
