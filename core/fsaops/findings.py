"""Findings: what a table's ``migratepage`` did that loses nothing but is wrong.

A finding is not data loss and not a broken invariant: the run can still
say nothing was lost.  It is behaviour a kernel developer would want to
know about before the code goes anywhere:

``writepage``
    ``migratepage`` wrote the page back (``writepage`` calls) instead of
    moving it: the pre-V4 habit V4 5/6 exists to remove.  The engine's
    generic fallback, for tables without ``migratepage``, and ``swap_page``
    write by design and are never findings.
``refused``
    ``migratepage`` refused a page that could move: ``-EAGAIN`` (the
    engine tries it again), or any other negative errno (the page fails for
    good, as ``-EBUSY`` or ``fail_migrate_page``'s ``-EIO`` makes it).  It
    held exactly the references the kernel expects, nobody else held it,
    no ``VM_LOCKED`` area maps it, and the engine's helpers did not refuse
    it themselves (ptes young on all ten ``try_to_unmap`` tries, a race
    under ``tree_lock``): those are the kernel's own refusals.  Also a page
    that was only busy (another task's reference, or one of those
    refusals) failed for good with an errno other than ``-EAGAIN``: the
    engine would have tried it again (only for a table that moves pages, or
    says ``-EAGAIN``, in the run: one that never moves a page, as
    ``fail_migrate_page`` does, fails every page alike).
``held``
    ``migratepage`` moved a page another task held a reference on (the
    count check of ``migrate_page_remove_references`` skipped or fooled):
    that task, direct I/O say, goes on using the old frame.
``flags``
    a flag ``migrate_page_copy`` carries (``PG.COPIED``) was on the old
    page and is not on the new one, or is on the new one and was never on
    the old (a stray ``PG_error`` makes the next ``fsync`` say ``EIO``;
    ``PG_referenced`` may come from the ptes on the way, and ``PG_checked``
    from the table's own ``set_page_dirty`` for a dirty page); or
    a clean page (nor any pte mapping it dirty) moved to a dirty one, to be
    written back for nothing; or the old page is still ``PG_dirty`` beside
    the new one (``clear_page_dirty_for_io`` not done); or the call cleared
    ``PG_uptodate`` of another page of the file within 16 pages of it, one
    it was not handed (the next read fetches that page from disk again,
    over its data if dirty).
``buffers``
    a buffer head was moved to the new page (``b_page`` set to it, as
    ``set_bh_page`` does) while its lock was not held, a buffer head was
    left locked, its ``b_count`` changed, it lost or
    gained ``BH_Uptodate``, ``BH_Mapped``, ``BH_New`` or ``BH_Delay``, its
    device, block, size or ``b_private`` changed, or a buffer its journal
    holds as journalled (``BH_JBDDirty``) turned ``BH_dirty``, by the time
    ``migratepage`` returned (a buffer that is no longer uptodate is read
    from disk over what it holds); or the call cleared ``BH_Uptodate`` of a
    mapped buffer of such a page.
``return``
    ``migratepage`` raised, or returned something other than 0 or a
    negative errno (the engine counts the page as failed with ``-EIO``);
    or returned 0 for a page it did not move (its page-tree slot still
    holds it), where the page needed ``-EAGAIN``.

A bad return (raised, or not 0 or a negative errno) costs nothing to see
and is always collected.  The others
need a look at each page before and after its ``migratepage`` call, so
they are collected only when asked for (``fsaops migrate --strict``, or
``--debug-vm``): the default run keeps the engine's speed.  With
``--strict`` any finding fails the run (exit 1, status ``findings``).
"""

from __future__ import annotations

from errno import EAGAIN
from typing import TYPE_CHECKING, Any, Final

import attrs

from fsaops.buffer import BH, BufferHead
from fsaops.mapping import AddressSpace
from fsaops.oracle import (
    BufferState,
    Oracle,
    UnlockedMoves,
    buffer_changes,
    journalled_dirty_problem,
    journalled_made_dirty,
    may_gain,
    unlocked_move_problem,
)
from fsaops.page import PG, Page
from fsaops.rmap import VM_LOCKED

if TYPE_CHECKING:
    from fsaops.kernel import Kernel

__all__ = ["KINDS", "PAGES_LISTED", "Finding", "Findings", "MigratepageWatch"]

KERNEL_REFUSALS: Final = (
    "still mapped",
    "page-tree slot changed",
    "reference count changed",
    "mapping changed",
)
"""How the engine's own helpers begin a reason when the kernel itself refused
(``try_to_unmap`` kept a young pte every try; another task raced the
re-check under ``tree_lock``): a ``-EAGAIN`` for these is no finding."""

KINDS: Final = ("writepage", "refused", "held", "flags", "buffers", "return")
"""Every kind of finding, in the order reports list them."""

PAGES_LISTED: Final = 10
"""Pages a finding lists by pfn (all are counted)."""


@attrs.frozen
class Finding:
    """One kind of wrong behaviour of one table, and the pages it was seen on.

    Attributes:
        table: the operations table whose ``migratepage`` did it.
        kind: one of :data:`KINDS`.
        count: pages it was seen on.
        pages: the first :data:`PAGES_LISTED` of them, by pfn.
        example: what happened to the first, in the kernel's words.
    """

    table: str
    kind: str
    count: int
    pages: tuple[int, ...]
    example: str

    def to_json(self) -> dict[str, Any]:
        """Plain data for JSON."""
        return {
            "table": self.table,
            "kind": self.kind,
            "count": self.count,
            "pages": list(self.pages),
            "example": self.example,
        }


class Findings:
    """The findings of one run, collected as pages are tried.

    Attributes:
        watched: the ``migratepage`` calls a :class:`MigratepageWatch` looked
            at (0 without ``--strict`` or ``--debug-vm``, or when no page
            reached a ``migratepage``).
    """

    __slots__ = ("_able", "_busy", "_seen", "watched")

    def __init__(self) -> None:
        self._seen: dict[tuple[str, str], tuple[list[int], str]] = {}
        self._busy: dict[str, list[tuple[int, str]]] = {}
        self._able: set[str] = set()
        self.watched = 0

    def add(self, table: str, kind: str, pfn: int, example: str) -> None:
        """Record that ``table``'s ``migratepage`` did ``kind`` to page ``pfn``."""
        entry = self._seen.get((table, kind))
        if entry is None:
            self._seen[(table, kind)] = ([pfn], example)
        elif pfn not in entry[0]:
            entry[0].append(pfn)

    def busy(self, table: str, pfn: int, example: str) -> None:
        """``table`` failed for good a page that was only busy: ``refused``, if it ever moves one.

        A table that moves pages (or says ``-EAGAIN``) and fails a busy one
        for good turned a passing obstacle into a permanent one.  A table
        that never moves a page (``fail_migrate_page``, or a wrapper of it)
        fails every page alike, busy or not: that is no finding.
        """
        self._busy.setdefault(table, []).append((pfn, example))

    def able(self, table: str) -> None:
        """``table``'s ``migratepage`` moved a page, or said ``-EAGAIN``, in this run."""
        self._able.add(table)

    def _settle(self) -> None:
        for table in sorted(self._able & self._busy.keys()):
            for pfn, example in self._busy.pop(table):
                self.add(table, "refused", pfn, example)

    def __bool__(self) -> bool:
        self._settle()
        return bool(self._seen)

    def result(self) -> tuple[Finding, ...]:
        """Every finding, by table and then in the order of :data:`KINDS`."""
        self._settle()
        order = {kind: i for i, kind in enumerate(KINDS)}
        return tuple(
            Finding(table, kind, len(pfns), tuple(pfns[:PAGES_LISTED]), example)
            for (table, kind), (pfns, example) in sorted(
                self._seen.items(), key=lambda item: (item[0][0], order[item[0][1]])
            )
        )


@attrs.frozen
class _Before:
    count: int
    mapcount: int
    flags: int
    expected: int
    held: int
    writes: int
    ring: tuple[tuple[BufferHead, int, bool, BufferState], ...]
    dirty: bool
    gainable: int
    tree: Any
    key: int


class MigratepageWatch:
    """Looks at a page before and after its ``migratepage`` call, for findings.

    The engine calls :meth:`before` and :meth:`after` around each
    ``migratepage`` call when findings are asked for; both read the machine
    the oracle's way, never through the code under test.
    """

    __slots__ = ("_before", "_kernel", "_moves", "_neighbours", "findings")

    def __init__(self, kernel: Kernel, findings: Findings) -> None:
        self._kernel = kernel
        self.findings = findings
        self._before: _Before | None = None
        self._moves: UnlockedMoves | None = None
        self._neighbours: tuple[_Neighbour, ...] = ()

    def before(self, newpage: Page, page: Page) -> None:
        """Note what the page is like as the engine hands it to ``migratepage``."""
        kernel = self._kernel
        ring: tuple[tuple[BufferHead, int, bool, BufferState], ...] = ()
        if page.flags & PG.private and isinstance(page.private, BufferHead):
            bhs, _problem = Oracle.ring(page.private)
            ring = tuple(
                (
                    bh,
                    _own_count(bh),
                    bool(bh.b_state & BH.lock),
                    BufferState.of(bh),
                )
                for bh in bhs
            )
            if self._moves is not None:  # the last call raised: its watch never ended
                self._moves.stop()
            self._moves = UnlockedMoves(bhs, newpage)
        held, _locked = Oracle.holds(kernel, page)
        # Whatever may make the new page dirty: the page, a pte (unmapping
        # moves its dirty bit to the page), or an anonymous page's way into
        # the swap cache (add_to_swap dirties it).
        mapping = page.mapping
        dirty = bool(
            page.flags & (PG.dirty | PG.writeback | PG.swapcache)
            or mapping is None
            or mapping.anon
            or Oracle.mapped_dirty(page)
        )
        self._neighbours = _neighbours(page)
        self._before = _Before(
            count=page.count,
            mapcount=page.mapcount,
            flags=page.flags,
            expected=2 + (1 if page.flags & PG.private else 0),
            held=held,
            writes=kernel.vmstat.nr_writepage,
            ring=ring,
            dirty=dirty,
            gainable=PG.referenced | may_gain(getattr(mapping, "a_ops", None), dirty),
            tree=Oracle.tree_of(page),
            key=Oracle.key_of(page),
        )

    def after(self, newpage: Page, page: Page, rc: int, table: str) -> None:
        """Record what ``migratepage`` did wrong, now that it returned ``rc``."""
        b = self._before
        if b is None:
            return
        self.findings.watched += 1
        self._before = None
        add = self.findings.add
        pfn = page.pfn
        neighbour = _neighbour_spoiled(self._neighbours, pfn)
        self._neighbours = ()
        if neighbour is not None:
            add(table, *neighbour)
        if self._moves is not None:
            moved = self._moves.stop()
            self._moves = None
            for i, (bh, *_rest) in enumerate(b.ring):
                if bh in moved:
                    add(table, "buffers", pfn, unlocked_move_problem(i, pfn, newpage.pfn))
                    break
        writes = self._kernel.vmstat.nr_writepage - b.writes
        if writes:
            add(
                table,
                "writepage",
                pfn,
                f"migratepage wrote pfn {pfn} back ({writes} writepage call(s)) instead of "
                "moving it dirty, as V4 5/6 does",
            )
        if (
            rc < 0
            and b.count == b.mapcount + b.expected
            and not b.held
            and not b.flags & PG.writeback
            and not _mlocked(page)
            and not (self._kernel.current.why or "").startswith(KERNEL_REFUSALS)
        ):
            from fsaops.migrate import errno_name  # fsaops.migrate imports this module

            name = errno_name(rc).lstrip("-")
            add(
                table,
                "refused",
                pfn,
                f"migratepage returned -{name} for pfn {pfn}, which could move: page_count "
                f"{b.count} = page_mapcount {b.mapcount} + {b.expected} expected references, "
                "and no other task held it",
            )
        if rc == 0 and b.tree is not None and Oracle.slot(b.tree, b.key) is page:
            # Nothing moved: what the page lost or kept on the way is not the point.
            add(
                table,
                "return",
                pfn,
                f"migratepage returned 0 for pfn {pfn}, but its page-tree slot still holds it: "
                "the page did not move, and a page that cannot move now must get -EAGAIN",
            )
            self.findings.able(table)
            return
        if rc in (0, -EAGAIN):
            self.findings.able(table)
        elif rc < 0 and not _mlocked(page):
            # Busy for now, failed for good: the engine would have tried it again.
            why = self._kernel.current.why or ""
            busy = ""
            if b.held and b.count - b.held == b.mapcount + b.expected:
                busy = f"another task held {b.held} reference(s) on it"
            elif why.startswith(KERNEL_REFUSALS):
                busy = f"the engine's helper refused it for now ({why})"
            if busy:
                from fsaops.migrate import errno_name  # fsaops.migrate imports this module

                name = errno_name(rc).lstrip("-")
                self.findings.busy(
                    table,
                    pfn,
                    f"migratepage failed pfn {pfn} for good (-{name}) where it was only busy: "
                    f"{busy}; -EAGAIN lets the engine try it again on a later pass",
                )
        if rc == 0:
            held, _locked = Oracle.holds(self._kernel, page)
            if held:
                add(
                    table,
                    "held",
                    pfn,
                    f"migratepage moved pfn {pfn} while another task held {held} reference(s) "
                    f"on it (page_count {b.count} before, {b.mapcount + b.expected} expected): "
                    "that task goes on using the old frame",
                )
            if page.flags & PG.dirty:
                add(
                    table,
                    "flags",
                    pfn,
                    f"pfn {pfn} moved to pfn {newpage.pfn} but is still PG_dirty "
                    "(clear_page_dirty_for_io not done): its dirty page is counted twice",
                )
            lost = b.flags & PG.COPIED & ~newpage.flags
            # PG_referenced may come from the ptes on the way (try_to_unmap), and
            # PG_checked from the table's set_page_dirty (may_gain); the others
            # only from the old page as migratepage found it.
            gained = newpage.flags & PG.COPIED & ~b.gainable & ~b.flags
            if lost:
                add(
                    table,
                    "flags",
                    pfn,
                    f"pfn {pfn} moved to pfn {newpage.pfn} without {Oracle.flag_names(lost)}, "
                    "which migrate_page_copy carries",
                )
            elif gained:
                add(
                    table,
                    "flags",
                    pfn,
                    f"pfn {pfn} moved to pfn {newpage.pfn}, which gained "
                    f"{Oracle.flag_names(gained)} that the old page never had",
                )
            elif newpage.flags & PG.dirty and not b.dirty:
                add(
                    table,
                    "flags",
                    pfn,
                    f"clean pfn {pfn} moved to pfn {newpage.pfn} dirty (neither the page nor a "
                    "pte mapping it was): it would be written back for nothing",
                )
        head = b.ring[0][0] if b.ring else None
        others = head is not None and newpage.flags & PG.private and newpage.private is not head
        if rc == 0 and others:
            # As the oracle judges it: a table may drop the buffers (try_to_release_page)
            # and move the page without any, but not give it others.
            add(
                table,
                "buffers",
                pfn,
                f"the buffers of pfn {pfn} did not follow it to pfn {newpage.pfn}: the new page "
                f"has buffer heads of its own, and pfn {pfn}'s are left behind",
            )
        elif (
            rc == 0
            and b.ring
            and newpage.flags & PG.private
            and isinstance(newpage.private, BufferHead)
        ):
            devices = {id(was.bdev) for *_, was in b.ring if was.bdev is not None}
            fresh, _problem = Oracle.ring(newpage.private)
            for i, bh in enumerate(fresh):
                if bh.b_state & BH.mapped and id(bh.b_bdev) not in devices:
                    add(
                        table,
                        "buffers",
                        pfn,
                        f"buffer head {i} of pfn {newpage.pfn} (pfn {pfn} moved) is mapped to no "
                        "device of the old page's buffers: its next write goes nowhere, or astray",
                    )
                    break
        held_locks = _held_buffer_locks(self._kernel)
        for i, (bh, count, locked, was) in enumerate(b.ring):
            if bh.b_bdev is not was.bdev and was.state & BH.mapped:
                add(
                    table,
                    "buffers",
                    pfn,
                    f"buffer head {i} of pfn {pfn} lost its b_bdev in migratepage: its next "
                    "write has no device to go to",
                )
                break
            if bh.b_state & BH.lock and not locked and id(bh) not in held_locks:
                add(
                    table,
                    "buffers",
                    pfn,
                    f"buffer head {i} of pfn {pfn} was left locked when migratepage returned",
                )
                break
            changes = buffer_changes(was, bh, keeps=_KEPT)
            if was.state & BH.mapped and bh.b_blocknr != was.blocknr:
                changes.append(
                    f"was mapped to block {was.blocknr} and is mapped to block {bh.b_blocknr}"
                )
            if changes:
                add(
                    table,
                    "buffers",
                    pfn,
                    f"buffer head {i} of pfn {pfn} {changes[0]} in migratepage: moving a page "
                    "changes no buffer's state",
                )
                break
            if journalled_made_dirty(was.state, bh.b_state):
                add(table, "buffers", pfn, journalled_dirty_problem(i, pfn, newpage.pfn))
                break
            delta = _own_count(bh) - count
            if delta:
                add(
                    table,
                    "buffers",
                    pfn,
                    f"buffer head {i} of pfn {pfn} has b_count {bh.b_count} after migratepage, "
                    f"{delta:+d} on before (a reference taken and not dropped, or dropped twice)",
                )
                break


_KEPT: Final = BH.uptodate | BH.mapped | BH.new | BH.delay
"""The buffer bits of :data:`~fsaops.oracle.MIGRATION_KEEPS` that no other
task changes while the page is locked for ``migratepage``: a journal commit
or an I/O completion may run while it sleeps on a buffer lock, and change
``BH_dirty``, ``BH_JBD``, ``BH_JBDDirty``, ``BH_Req``, ``BH_Async_*`` and
``BH_Write_EIO`` (and detach ``b_private``)."""


_Neighbour = tuple[Page, int, bool, tuple[tuple[int, BufferHead], ...]]
"""Another page of a file as a ``migratepage`` call found it: the page, its slot, whether it
was ``PG_uptodate``, and its mapped buffers that were ``BH_Uptodate`` (by place in the ring).
Nothing but truncation (which unmaps the buffers and empties the slot) takes either away from
a page in the page cache while the call runs: a reader only sets them, an I/O completion or a
commit leaves them."""

_UP_AND_MAPPED: Final = BH.uptodate | BH.mapped


_NEIGHBOURS: Final = 16
"""How far either side of a page (in pages of its file) a watched call's neighbours are looked
at: half of 2.6's largest read-ahead window (``VM_MAX_READAHEAD``, 128 KiB), the pages a table
reaching past its page is likeliest to touch.  A bound keeps the watch's cost per call
constant, whatever the size of the file."""


def _neighbours(page: Page) -> tuple[_Neighbour, ...]:
    """The pages of ``page``'s file within ``_NEIGHBOURS`` of it, with what they hold up to date.

    Only for a page of a page-cache mapping (not anonymous memory).
    """
    mapping = page.mapping
    index = page.index
    if not isinstance(mapping, AddressSpace) or mapping.anon or type(index) is not int:
        return ()
    found: list[_Neighbour] = []
    private = PG.private
    uptodate = PG.uptodate
    both = _UP_AND_MAPPED
    tree = mapping.page_tree
    for key in range(max(0, index - _NEIGHBOURS), min(len(tree), index + _NEIGHBOURS + 1)):
        other = tree[key]
        if other is None or other is page:
            continue
        flags = other.flags
        ring: tuple[tuple[int, BufferHead], ...] = ()
        head = other.private
        if flags & private and isinstance(head, BufferHead):
            kept = []
            bh = head
            for i in range(other.node.page_size // 512):  # a ring is at most this long
                if bh.b_state & both == both:
                    kept.append((i, bh))
                bh = bh.b_this_page
                if bh is head:
                    break
            ring = tuple(kept)
        if ring or flags & uptodate:
            found.append((other, key, bool(flags & uptodate), ring))
    return tuple(found)


def _neighbour_spoiled(neighbours: tuple[_Neighbour, ...], pfn: int) -> tuple[str, int, str] | None:
    """``(kind, pfn, example)`` for the first page of the file the call made stale, or ``None``.

    ``migratepage`` is handed the old page and the new one, both locked;
    another page of the file is its owners', and a table that clears its
    ``PG_uptodate``, or ``BH_Uptodate`` on one of its mapped buffers, has
    the next read fetch it from disk again: over newer data, when it is
    dirty.
    """
    for other, key, was_uptodate, ring in neighbours:
        stale = was_uptodate and not other.flags & PG.uptodate
        bad = next((i for i, bh in ring if bh.b_state & _UP_AND_MAPPED == BH.mapped), -1)
        if not stale and bad < 0:
            continue
        mapping = other.mapping
        if not isinstance(mapping, AddressSpace) or Oracle.slot(mapping, key) is not other:
            continue  # truncated meanwhile
        where = f"pfn {other.pfn} ({mapping.name} page {key})"
        if stale:
            return (
                "flags",
                pfn,
                f"migratepage of pfn {pfn} cleared PG_uptodate of {where}, a page it was not "
                "handed: the next read fetches that page from disk again, over its data if it "
                "is dirty",
            )
        return (
            "buffers",
            pfn,
            f"migratepage of pfn {pfn} cleared BH_Uptodate of buffer head {bad} of {where}, "
            "a page it was not handed: the next read or partial write fetches the block "
            "from disk again, over its data if it is dirty",
        )
    return None


def _own_count(bh: BufferHead) -> int:
    """``b_count`` without the journal's reference, which commits may drop at any time."""
    return bh.b_count - (1 if bh.b_state & BH.jbd else 0)


def _held_buffer_locks(kernel: Kernel) -> set[int]:
    return {
        id(held.obj) for task in kernel.tasks for held in task.holds if held.kind == "buffer_lock"
    }


def _mlocked(page: Page) -> bool:
    """Whether an area that maps (or mapped) the page is ``VM_LOCKED``."""
    mapping = page.mapping
    if mapping is None:
        return False
    vmas = mapping.vmas if mapping.anon else mapping.i_mmap  # type: ignore[union-attr]
    return any(vma.vm_flags & VM_LOCKED and vma.address(page) >= 0 for vma in vmas)
