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
    held exactly the references the kernel expects, nobody else held it or
    the lock of one of its buffers,
    no ``VM_LOCKED`` area maps it, and the engine's helpers did not refuse
    it themselves (ptes young on all ten ``try_to_unmap`` tries, a race
    under ``tree_lock``): those are the kernel's own refusals, but a page
    refused as changed under the migration (the re-check under
    ``tree_lock``), or as young on every ``try_to_unmap`` try with fewer
    young ptes than tries (each try clears one), while no other task's
    work ran during the call is a finding too, for nothing could change
    it.  Also a page
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
    over its data if dirty); or, with no other task run during the call,
    it changed the bytes of a frame next to its page's, or of a page of
    its file within 16 pages of it.
``buffers``
    a buffer head was moved to the new page (``b_page`` set to it, as
    ``set_bh_page`` does) while its lock was not held, a buffer head was
    left locked, its ``b_count`` changed, it lost or
    gained ``BH_Uptodate``, ``BH_Mapped``, ``BH_New`` or ``BH_Delay``, its
    device, block, size or ``b_private`` changed, or a buffer its journal
    holds as journalled (``BH_JBDDirty``) turned ``BH_dirty``, or a buffer
    of a clean page (nor any pte mapping it dirty) turned ``BH_dirty`` (on
    a page left clean, page writeback never writes it and the page can
    never be freed), by the time ``migratepage`` returned (a buffer that is
    no longer uptodate is read from disk over what it holds); or the call
    cleared ``BH_Uptodate`` of a mapped buffer of such a page.
``return``
    ``migratepage`` raised, or returned something other than 0 or a
    negative errno (the engine counts the page as failed with ``-EIO``);
    or returned 0 for a page it did not move (its page-tree slot still
    holds it), where the page needed ``-EAGAIN``; or returned ``-EAGAIN``
    where ``migrate_page_remove_references`` had just returned ``-EPERM``
    (2.6.16 on: a ``VM_LOCKED`` area, a failure for good, which
    ``migratepage`` passes on), or ``-EAGAIN`` as still mapped for a page a
    ``VM_LOCKED`` area maps, so the engine tries the page in every pass.

A bad return (raised, or not 0 or a negative errno) costs nothing to see
and is always collected.  The others
need a look at each page before and after its ``migratepage`` call, so
they are collected only when asked for (``fsaops migrate --strict``, or
``--debug-vm``): the default run keeps the engine's speed.  With
``--strict`` any finding fails the run (exit 1, status ``findings``).
"""

from __future__ import annotations

from errno import EAGAIN
from threading import Lock, get_ident
from typing import TYPE_CHECKING, Any, Final

import attrs

from fsaops.buffer import BH, BufferHead, buffers
from fsaops.fs import BlockDevice, mapping_bdev
from fsaops.mapping import AddressSpace
from fsaops.oracle import (
    BH_BIT_NAMES,
    BufferState,
    Oracle,
    UnlockedMoves,
    bdev_change,
    buffer_changes,
    dirtied_buffer_problem,
    journalled_dirty_problem,
    journalled_made_dirty,
    may_gain,
    not_its_own_problem,
    unfreed_buffers,
    unfreed_buffers_problem,
    unlocked_move_problem,
)
from fsaops.page import PG, Page
from fsaops.rmap import VM_LOCKED

if TYPE_CHECKING:
    from collections.abc import Collection, Sequence

    from fsaops.kernel import Kernel

__all__ = ["KINDS", "PAGES_LISTED", "Finding", "Findings", "MigratepageWatch"]

STILL_MAPPED: Final = "still mapped"
"""How the unmap step begins its reason for a page ``try_to_unmap`` left mapped."""

KERNEL_REFUSALS: Final = (
    STILL_MAPPED,
    "page-tree slot changed",
    "reference count changed",
    "mapping changed",
)
"""How the engine's own helpers begin a reason when the kernel itself refused
(``try_to_unmap`` kept a young pte every try; another task raced the
re-check under ``tree_lock``): a ``-EAGAIN`` for these is no finding."""

RACES: Final = KERNEL_REFUSALS[1:]
"""The kernel's refusals that say another task changed the page between the
engine's first check and its re-check under ``tree_lock``: true only if some
other task's work ran during the call."""

YOUNG_EVERY_TRY: Final = "still mapped: try_to_unmap refused, a pte was young"
"""How the unmap step says a young pte refused every ``try_to_unmap`` try.  Each
try clears the first young pte it meets, so with fewer young ptes than tries
that is true only if another task's access made one young again meanwhile."""

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
        damage: each change a watched call made to a page it was not
            handed, in the order seen: the table, the pfn of the page it
            changed, and the finding's example.  An error fsaops's own code
            meets later on such a page names the table by it.
    """

    __slots__ = ("_able", "_busy", "_seen", "damage", "watched")

    def __init__(self) -> None:
        self._seen: dict[tuple[str, str], tuple[list[int], str]] = {}
        self._busy: dict[str, list[tuple[int, str]]] = {}
        self._able: set[str] = set()
        self.damage: list[tuple[str, int, str]] = []
        self.watched = 0

    def add(self, table: str, kind: str, pfn: int, example: str) -> None:
        """Record that ``table``'s ``migratepage`` did ``kind`` to page ``pfn``."""
        entry = self._seen.get((table, kind))
        if entry is None:
            self._seen[(table, kind)] = ([pfn], example)
        elif pfn not in entry[0]:
            entry[0].append(pfn)

    def damage_said(self, pfns: Collection[int]) -> tuple[str, str] | None:
        """What a watched call was seen to change, for an error met on the pages ``pfns``.

        Returns the table and the words ``--strict saw that table T's
        migratepage of pfn N changed pfn M ...``: the last change to one of
        ``pfns``, else the last change seen; ``None`` when none was seen.
        """
        if not self.damage:
            return None
        table, _pfn, example = next(
            (d for d in reversed(self.damage) if d[1] in pfns), self.damage[-1]
        )
        return table, f"--strict saw that table {table}'s {example}"

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
    #: Whether another task held the lock of one of the page's buffers.
    buffer_held: bool
    dirty: bool
    gainable: int
    #: How many ptes mapping the page were young (``try_to_unmap`` clears one a try).
    young: int
    tree: Any
    key: int
    #: The page's device's count of block writes, ``(device, writes)``, when a file's.
    disk: tuple[BlockDevice, int] | None


class MigratepageWatch:
    """Looks at a page before and after its ``migratepage`` call, for findings.

    The engine calls :meth:`before` and :meth:`after` around each
    ``migratepage`` call when findings are asked for; both read the machine
    the oracle's way, never through the code under test.
    """

    __slots__ = ("_before", "_file", "_frames", "_kernel", "_moves", "_writes", "findings")

    def __init__(self, kernel: Kernel, findings: Findings) -> None:
        self._kernel = kernel
        self.findings = findings
        self._before: _Before | None = None
        self._moves: UnlockedMoves | None = None
        self._frames: tuple[_Frames, ...] | None = None
        self._writes: _Writes | None = None
        self._file: _FilePages = ()

    def before(self, newpage: Page, page: Page) -> None:
        """Note what the page is like as the engine hands it to ``migratepage``."""
        self.close()  # the last call raised (the engine went on): its watches never ended
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
        # Both pages' neighbours: a copy that runs past either frame spoils one.
        self._frames = (_frames(page), _frames(newpage))
        self._file = _file_pages(page)
        self._writes = _Writes(page, newpage)
        self._writes.arm()
        self._before = _Before(
            count=page.count,
            mapcount=page.mapcount,
            flags=page.flags,
            expected=2 + (1 if page.flags & PG.private else 0),
            held=held,
            writes=kernel.vmstat.nr_writepage,
            ring=ring,
            buffer_held=any(id(bh) in kernel.sched.buffer_lockers for bh, *_rest in ring),
            dirty=dirty,
            gainable=PG.referenced | may_gain(getattr(mapping, "a_ops", None), dirty),
            young=Oracle.young_ptes(page),
            tree=Oracle.tree_of(page),
            key=Oracle.key_of(page),
            disk=_device_writes(mapping),
        )

    def disarm(self) -> None:
        """Stop noting the call's writes to other pages (it raised: :meth:`after` never comes)."""
        if self._writes is not None:
            self._writes.disarm()
            self._writes = None

    def close(self) -> None:
        """End what a call left watched: the run ended inside it, and :meth:`after` never came.

        The watches put attributes on classes and keep the call's pages in
        module tables: left on, they would keep the machine alive for as
        long as the process runs, and slow every later write to a page.
        """
        self.disarm()
        self._before = None
        self._frames = None
        self._file = ()
        if self._moves is not None:
            self._moves.stop()
            self._moves = None

    def after(self, newpage: Page, page: Page, rc: int, table: str) -> None:
        """Record what ``migratepage`` did wrong, now that it returned ``rc``."""
        b = self._before
        if b is None:
            return
        self.findings.watched += 1
        self._before = None
        add = self.findings.add
        pfn = page.pfn
        noted = self._writes
        frames = self._frames
        neighbour = None
        if noted is not None and frames is not None:
            noted.disarm()
            self._writes = None
            self._frames = None
            neighbour = _spoiled(noted, frames, pfn)
            if neighbour is None:
                neighbour = _file_spoiled(noted, self._file, pfn)
        self._file = ()
        if neighbour is not None:
            kind, other, example = neighbour
            add(table, kind, pfn, example)
            self.findings.damage.append((table, other, example))
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
        elif b.disk is not None and noted is not None and noted.sched.ran == noted.ran:
            # No event ran during the call (no other task's I/O completed): the
            # device's writes are the call's own, around writepage (its buffers
            # written with ll_rw_block or sync_dirty_buffer).
            bdev, before = b.disk
            blocks = bdev.writes - before
            if blocks:
                writes = blocks  # as a writepage's: what it may set on a page given up
                add(
                    table,
                    "writepage",
                    pfn,
                    f"migratepage wrote {blocks} block(s) to the device of pfn {pfn} itself "
                    "(not through writepage) instead of moving the page dirty, as V4 5/6 does",
                )
        why = self._kernel.current.why or ""
        if (
            rc < 0
            and type(why) is str
            and noted is not None
            and noted.sched.ran == noted.ran
            and why.startswith((*RACES, YOUNG_EVERY_TRY))
        ):
            # A refusal that says another task's work got in the way, and none
            # ran: the check that refused the page disagrees with the page.
            if why.startswith(RACES):
                add(
                    table,
                    "refused",
                    pfn,
                    f"pfn {pfn} was refused as changed under the migration ({why}), but no "
                    "other task's work ran during the call: nothing could change it between "
                    "the checks, so the check that refused it is wrong",
                )
            else:
                from fsaops.migrate import UNMAP_TRIES  # fsaops.migrate imports this module

                if b.young < UNMAP_TRIES:
                    add(
                        table,
                        "refused",
                        pfn,
                        f"pfn {pfn} was refused ({why}), but {b.young} of the ptes mapping it "
                        "were young and no other task's work ran during the call: each of the "
                        f"{UNMAP_TRIES} tries clears one, so the unmap that refused it is wrong",
                    )
        if (
            rc < 0
            and b.count == b.mapcount + b.expected
            and not b.held
            and not b.buffer_held
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
                "and no other task held it or one of its buffers' locks",
            )
        if rc == -EAGAIN and self._kernel.current.why == _vm_locked_refused():
            release = self._kernel.semantics.name
            add(
                table,
                "return",
                pfn,
                f"migratepage returned -EAGAIN for pfn {pfn}, though "
                "migrate_page_remove_references had returned -EPERM for it (a VM_LOCKED area): "
                f"under {release} that is a failure for good, which migratepage passes on; "
                "-EAGAIN has the engine try the page in every pass",
            )
        elif (
            rc == -EAGAIN
            and type(why) is str
            and why.startswith(STILL_MAPPED)
            and _vm_locked_is_eperm(self._kernel)
            and _mlocked(page)
        ):
            # The unmap step itself gave -EAGAIN where its release gives -EPERM.
            release = self._kernel.semantics.name
            add(
                table,
                "return",
                pfn,
                f"pfn {pfn} got -EAGAIN as still mapped ({why}), but under {release} the "
                "unmap step gives -EPERM for a page a VM_LOCKED area maps, a failure for "
                "good; -EAGAIN has the engine try the page in every pass",
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
        if rc < 0 and b.tree is not None and Oracle.slot(b.tree, b.key) is page:
            # Given up, and still in its slot: it must keep what it had, as the
            # oracle's "did not move" check does (a writepage may end PG_checked
            # or PG_error on the way).
            lost = b.flags & PG.COPIED & ~page.flags
            # What it may gain on the way: PG_referenced from the ptes, PG_checked from
            # its set_page_dirty; with a write, what writepage sets (mapped to disk, an error).
            gained = page.flags & PG.COPIED & ~b.flags & ~b.gainable
            if writes:
                lost &= ~(PG.checked | PG.error)
                gained &= ~(PG.checked | PG.error | PG.mappedtodisk)
            if lost:
                add(
                    table,
                    "flags",
                    pfn,
                    f"pfn {pfn} did not move but lost flags {Oracle.flag_names(lost)}: migratepage "
                    "must leave a page it gives up as it found it",
                )
            elif gained:
                add(
                    table,
                    "flags",
                    pfn,
                    f"pfn {pfn} did not move but gained flags {Oracle.flag_names(gained)}: "
                    "migratepage must leave a page it gives up as it found it",
                )
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
            for i, (bh, (own, *_rest)) in enumerate(zip(fresh, b.ring, strict=False)):
                if bh is not own:
                    add(table, "buffers", pfn, not_its_own_problem(i, pfn, newpage.pfn))
                    break
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
        elif rc == 0 and b.ring and not newpage.flags & PG.private:
            kept = unfreed_buffers(was for *_, was in b.ring)
            if kept:
                add(table, "buffers", pfn, unfreed_buffers_problem(kept, pfn, newpage.pfn))
        held_locks = self._kernel.sched.buffer_lockers
        for i, (bh, count, locked, was) in enumerate(b.ring):
            if bh.b_bdev is not was.bdev and was.state & BH.mapped:
                what, then = bdev_change(was.bdev, bh.b_bdev)
                add(
                    table,
                    "buffers",
                    pfn,
                    f"buffer head {i} of pfn {pfn} {what} in migratepage: {then}",
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
            # A commit the call slept through may refile a BH_JBDDirty buffer as
            # BH_dirty; nothing else dirties a buffer of a clean page on the way.
            if (
                bh.b_state & BH.dirty
                and not was.state & (BH.dirty | BH.jbddirty)
                and not b.dirty
                and bh.b_page is not None
            ):
                page_dirty = bool(bh.b_page.flags & PG.dirty)
                add(
                    table,
                    "buffers",
                    pfn,
                    dirtied_buffer_problem(i, pfn, newpage.pfn, page_dirty=page_dirty),
                )
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


_ANYONES: Final = PG.referenced | PG.waiters
"""Page flags anyone may change on a page without its lock: ``mark_page_accessed`` sets
``PG_referenced``, and a sleeper on the page announces itself with ``PG_waiters``."""

_UP_AND_MAPPED: Final = BH.uptodate | BH.mapped

_PAGE_FIELDS: Final = frozenset(("flags", "count", "mapcount", "mapping", "index", "private"))
"""The fields of a page a call's writes to are noted (not its LRU links: the engine's lists
are checked on their own)."""

_BH_FIELDS: Final = frozenset(
    (
        "b_state",
        "b_blocknr",
        "b_size",
        "b_count",
        "b_data",
        "b_bdev",
        "b_page",
        "b_this_page",
        "b_private",
    )
)
"""The fields of a buffer head a call's writes to are noted: every field it has (its
``b_private`` is its owner's, the journal's for a journalled buffer)."""

_SPAN: Final = 4
"""How many frames either side of a page a watched call looks at the bytes of: one copy of
those frames before the call and one after, cheap for a few frames.  The pages of a file
written in order lie in frames next to each other, so these are mostly its neighbours in
its file, the pages a table reaching past its page is likeliest to touch."""

_UNSET: Final[Any] = object()


class _Writes:
    """What a ``migratepage`` call wrote on pages other than the two it was handed.

    While one is armed, its machine's pages and ``BufferHead`` have a ``__setattr__``
    that notes, the first time the calling thread writes a field of a page (or
    of a buffer head of a page) other than the two the call was handed,
    what that field held (:attr:`first`), and, for every write the call
    makes itself (not one made by an event the scheduler runs while the
    call sleeps or lets others run: an I/O completing, a commit), what it
    changed: the value written (:attr:`own`), the bits of a flags word it
    turned over (:attr:`turned`), and what it added to a count
    (:attr:`added`).  Writes cost a function call while armed, reads
    nothing; no page or buffer head changes class, and nothing is noted for
    a page the call never writes, so every page of the machine is watched
    for the price of the writes the call makes.  The ``__setattr__`` is put
    on the frame classes of the call's machine (one per node:
    :func:`~fsaops.page.page_class`), never on ``Page`` itself: changing a
    class's slot costs a walk of all its subclasses, and a process that has
    run many scenarios may still hold the frame classes of every machine it
    built, which would make each call's watch dearer than the last.
    """

    __slots__ = (
        "added",
        "classes",
        "first",
        "newpage",
        "own",
        "page",
        "ran",
        "sched",
        "thread",
        "turned",
    )

    def __init__(self, page: Page, newpage: Page) -> None:
        self.page = page
        self.newpage = newpage
        self.thread = get_ident()
        self.sched = page.node.kernel.sched
        self.ran = self.sched.ran
        kernel = page.node.kernel
        frames = {type(page), type(newpage)}
        frames.update(node.frame_class for node in kernel.nodes if node.nr_pages)
        self.classes: tuple[type[Any], ...] = (*frames, BufferHead)
        self.first: dict[tuple[Any, str], Any] = {}
        self.own: dict[tuple[Any, str], Any] = {}
        self.turned: dict[tuple[Any, str], int] = {}
        self.added: dict[tuple[Any, str], int] = {}

    def arm(self) -> None:
        """Start noting the calling thread's writes (until :meth:`disarm`)."""
        with _ARMING:
            if self.thread in _ARMED:
                _ARMED[self.thread].disarm_locked()
            for cls in self.classes:
                armed = _PATCHED.get(cls, 0)
                if not armed:
                    written = _bh_written if cls is BufferHead else _page_written
                    type.__setattr__(cls, "__setattr__", written)
                _PATCHED[cls] = armed + 1
            _ARMED[self.thread] = self

    def disarm(self) -> None:
        """Stop noting writes; the last watch of any thread puts the classes back."""
        with _ARMING:
            self.disarm_locked()

    def disarm_locked(self) -> None:
        """:meth:`disarm`, with ``_ARMING`` held."""
        if _ARMED.get(self.thread) is not self:
            return
        del _ARMED[self.thread]
        for cls in self.classes:
            armed = _PATCHED[cls] - 1
            if armed:
                _PATCHED[cls] = armed
            else:
                del _PATCHED[cls]
                type.__delattr__(cls, "__setattr__")

    def note(self, obj: Any, name: str, value: Any) -> None:
        """``obj.name`` is about to be set to ``value`` by the calling thread."""
        key = (obj, name)
        now = getattr(obj, name, _UNSET)
        if key not in self.first:
            self.first[key] = now
        if self.sched.in_event:
            return  # another task's work, run while the call slept
        self.own[key] = value
        if type(now) is int and type(value) is int:
            if name in _WORDS:
                self.turned[key] = self.turned.get(key, 0) ^ (now ^ value)
            elif name in _COUNTS:
                self.added[key] = self.added.get(key, 0) + value - now


_WORDS: Final = frozenset(("flags", "b_state"))
"""Fields that are words of flags: a call's change is the bits it turned over."""

_COUNTS: Final = frozenset(("count", "mapcount", "b_count"))
"""Fields that are counts: a call's change is what it added (a reference taken, or dropped)."""


_ARMED: Final[dict[int, _Writes]] = {}
"""The armed watch of each thread that has one, by thread."""

_ARMING: Final = Lock()

_PATCHED: Final[dict[type[Any], int]] = {}
"""The classes that have the watch's ``__setattr__``, with how many armed watches need it."""

_SET: Final = object.__setattr__


def _page_written(page: Page, name: str, value: Any) -> None:
    writes = _ARMED.get(get_ident())
    if (
        writes is not None
        and name in _PAGE_FIELDS
        and page is not writes.page
        and page is not writes.newpage
    ):
        writes.note(page, name, value)
    _SET(page, name, value)


def _bh_written(bh: BufferHead, name: str, value: Any) -> None:
    writes = _ARMED.get(get_ident())
    if writes is not None and name in _BH_FIELDS:
        owner = getattr(bh, "b_page", None)
        if owner is not None and owner is not writes.page and owner is not writes.newpage:
            writes.note(bh, name, value)
    _SET(bh, name, value)


_Frames = tuple[Any, int, int, bytes]
"""The bytes of a run of frames of one node as a call found them: the node, the first and
the last pfn, and the bytes."""


def _device_writes(mapping: Any) -> tuple[BlockDevice, int] | None:
    """``(device, its block writes so far)`` of a file page's mapping, else ``None``."""
    bdev = mapping_bdev(mapping)
    return None if bdev is None else (bdev, bdev.writes)


def _frames(page: Page) -> _Frames:
    """The bytes of the frames within :data:`_SPAN` of ``page``'s, on its node."""
    node = page.node
    pfn = page.pfn
    start = node.start_pfn
    first = max(pfn - _SPAN, start)
    last = min(pfn + _SPAN, start + node.nr_pages - 1)
    shift = node.page_shift
    return (
        node,
        first,
        last,
        bytes(node.mem[(first - start) << shift : (last + 1 - start) << shift]),
    )


def _where(page: Page, mapping: Any, index: Any) -> str:
    """``pfn 523 (mount0/file1 page 19)``: a page, and where it was."""
    if page.flags & PG.swapcache:
        return f"pfn {page.pfn} (swap cache)"
    if isinstance(mapping, AddressSpace):
        if mapping.anon:
            return f"pfn {page.pfn} (anonymous memory)"
        return f"pfn {page.pfn} ({mapping.name} page {index})"
    return f"pfn {page.pfn}"


def _was(writes: _Writes, obj: Any, name: str) -> Any:
    """What ``obj.name`` held when the call began."""
    was = writes.first.get((obj, name), _UNSET)
    return getattr(obj, name) if was is _UNSET else was


def _spoiled(writes: _Writes, runs: Sequence[_Frames], pfn: int) -> tuple[str, int, str] | None:
    """``(kind, pfn, example)`` for the first other page the call changed, or ``None``.

    ``pfn`` is the page the call was handed; the returned pfn is the page it changed.

    ``migratepage`` is handed the old page and the new one, both locked;
    every other page is its owners'.  A table that clears a page-cache
    page's ``PG_uptodate``, or ``BH_Uptodate`` on one of its mapped buffers,
    has the next read fetch it from disk again: over newer data, when it is
    dirty.  Nothing but truncation (which unmaps the buffers and empties the
    slot) takes either away while the call runs: a reader only sets them,
    an I/O completion or a commit leaves them.  Whatever else the call
    wrote itself on another page, outside the events the scheduler ran
    while it slept, before them or after, is its own doing too and still
    so: a flag it turned over (but :data:`_ANYONES`), a reference it took
    or dropped, the page's ``mapping`` or ``index``, a buffer's state,
    block or size; and when no other task ran at all, the bytes of a frame
    next to the page's or the new page's (:data:`_SPAN`, each run of
    ``runs``): a page's, or a frame's free all
    through the call (one it freed, or took from the allocator, used and gave
    back, has its ``page_count`` written).  What an event changes is another
    task's: a commit, an I/O completing, a hold let go of.
    """
    for (obj, name), was in writes.first.items():
        now = getattr(obj, name, _UNSET)
        if was is _UNSET:
            continue  # a buffer head the call made
        page: Any = obj.b_page if isinstance(obj, BufferHead) else obj
        if not isinstance(page, Page):
            continue  # a buffer head let go of
        mapping = _was(writes, page, "mapping")
        index = _was(writes, page, "index")
        where = _where(page, mapping, index)
        in_cache = (
            isinstance(mapping, AddressSpace)
            and not mapping.anon
            and Oracle.slot(mapping, index) is page
        )
        if name == "flags" and in_cache and was & PG.uptodate and not now & PG.uptodate:
            return (
                "flags",
                page.pfn,
                f"migratepage of pfn {pfn} cleared PG_uptodate of {where}, a page it was not "
                "handed: the next read fetches that page from disk again, over its data if it "
                "is dirty",
            )
        if (
            name == "b_state"
            and in_cache
            and was & _UP_AND_MAPPED == _UP_AND_MAPPED
            and now & _UP_AND_MAPPED == BH.mapped
        ):
            return (
                "buffers",
                page.pfn,
                f"migratepage of pfn {pfn} cleared BH_Uptodate of buffer head "
                f"{_ring_index(obj)} of {where}, a page it was not handed: the next read or "
                "partial write fetches the block from disk again, over its data if it is dirty",
            )
        key = (obj, name)
        own = writes.own.get(key, _UNSET)
        if own is _UNSET:
            continue  # only events wrote it: another task's work
        before, after = was, own
        if key in writes.turned and type(was) is int and type(now) is int:
            # The bits the call itself turned over and that are still so: another task
            # may have changed others, or the call itself undone a passing change (a lock).
            mask = ~_ANYONES if name == "flags" else -1
            turned = writes.turned[key]
            kept = turned & ~(was ^ turned ^ now) & mask
            if not kept:
                continue
            before, after = was & mask, (was ^ kept) & mask
        elif key in writes.added and type(was) is int:
            added = writes.added[key]
            if not added:
                continue  # every reference it took, it dropped
            after = was + added
        elif own is was or own == was or not (now is own or now == own):
            continue  # no change, or changed again by another task: the call's did not stay
        said = f"migratepage of pfn {pfn} changed {where}, a page it was not handed"
        if isinstance(obj, BufferHead):
            return ("buffers", page.pfn, f"{said}: {_bh_change(obj, name, before, after)}")
        if name == "flags":
            change = "its flags " + _bits_changed(before, after, _PG_NAMES)
        elif name == "mapping":
            change = f"its mapping is now {getattr(after, 'name', None) if after else 'NULL'}"
        elif name in ("count", "mapcount"):
            change = f"page_{name} went from {before} to {after}"
        else:
            change = f"its {name} went from {before!r} to {after!r}"
        return ("flags", page.pfn, f"{said}: {change}")
    for frames in runs if writes.sched.ran == writes.ran else ():
        node, first, last, data = frames
        shift = node.page_shift
        start = node.start_pfn
        now_data = bytes(node.mem[(first - start) << shift : (last + 1 - start) << shift])
        if now_data != data:
            size = node.page_size
            for at in range(0, len(data), size):
                was_frame = data[at : at + size]
                now_frame = now_data[at : at + size]
                if was_frame == now_frame:
                    continue
                other = node.frame(first - start + at // size)
                if other is writes.page or other is writes.newpage:
                    continue
                if not other.count:
                    if (other, "count") in writes.first:
                        continue  # in use during the call: freed, or taken and given back
                    byte = _first_difference(was_frame, now_frame)
                    return (
                        "flags",
                        other.pfn,
                        f"migratepage of pfn {pfn} wrote into pfn {other.pfn}, a free frame "
                        f"(first at byte {byte}): whoever is given that frame next finds it "
                        "changed",
                    )
                return _contents_changed(pfn, other, was_frame, now_frame)
    return None


_FILE_SPAN: Final = 16
"""How many pages of its file either side of a page a watched call looks at the bytes of."""

_FilePages = tuple[tuple[Any, int, tuple[Page, ...], bytes], ...]
"""The other pages of the file a call's page belongs to, as runs of frames next to each
other on one node: the node, the first pfn, the pages, and the bytes of their frames as
the call found them."""


def _file_pages(page: Page) -> _FilePages:
    """The other pages of ``page``'s file in the page cache, with the bytes of their frames.

    A table that reaches into its own file (``mapping->page_tree``) can reach
    any page of it, far from its page's frame: its pages are the ones a call
    is likeliest to spoil beyond :data:`_SPAN`.  A file written in order
    lies mostly in frames next to each other, so its pages are copied a run
    of such frames at a time: a file's worth of bytes, not the machine's,
    in a few copies.
    """
    mapping = page.mapping
    if not isinstance(mapping, AddressSpace) or mapping.anon or page.flags & PG.swapcache:
        return ()
    runs: list[tuple[Any, int, tuple[Page, ...], bytes]] = []
    node: Any = None
    first = last = 0
    pages: list[Page] = []
    index = page.index
    for other in mapping.page_tree[max(index - _FILE_SPAN, 0) : index + _FILE_SPAN + 1]:
        if other is None or other is page:
            continue
        pfn = other.pfn
        if other.node is node and pfn == last + 1:
            pages.append(other)
            last = pfn
            continue
        if pages:
            runs.append(_run(node, first, last, pages))
        node = other.node
        first = last = pfn
        pages = [other]
    if pages:
        runs.append(_run(node, first, last, pages))
    return tuple(runs)


def _run(
    node: Any, first: int, last: int, pages: list[Page]
) -> tuple[Any, int, tuple[Page, ...], bytes]:
    start = node.start_pfn
    shift = node.page_shift
    data = memoryview(node.mem)[(first - start) << shift : (last + 1 - start) << shift]
    return (node, first, tuple(pages), data.tobytes())


def _file_spoiled(writes: _Writes, runs: _FilePages, pfn: int) -> tuple[str, int, str] | None:
    """``(kind, pfn, example)`` for a page of its file whose bytes the call changed, or ``None``.

    As for the frames next to the page (:func:`_spoiled`): only when no other
    task ran during the call, and not for a page whose count, mapping or
    index the call wrote (it took the page out of the file, or freed it).
    """
    if writes.sched.ran != writes.ran:
        return None
    first_writes = writes.first
    for node, first, pages, was in runs:
        start = node.start_pfn
        shift = node.page_shift
        at = (first - start) << shift
        # bytes against bytes: a bytearray slice compares many times slower.
        now = memoryview(node.mem)[at : at + len(was)].tobytes()
        if now == was:
            continue
        size = node.page_size
        for k, other in enumerate(pages):
            old = was[k * size : (k + 1) * size]
            new = now[k * size : (k + 1) * size]
            if old == new or other is writes.newpage:
                continue
            if any((other, name) in first_writes for name in ("count", "mapping", "index")):
                continue
            return _contents_changed(pfn, other, old, new)
    return None


def _first_difference(was: bytes, now: bytes) -> int:
    """The offset of the first byte that differs between two frames' bytes of one size."""
    return next(i for i, (a, b) in enumerate(zip(was, now, strict=True)) if a != b)


def _contents_changed(pfn: int, other: Page, was: bytes, now: bytes) -> tuple[str, int, str]:
    """The finding for a call on ``pfn`` that changed the bytes of ``other``, a page in use."""
    where = _where(other, other.mapping, other.index)
    return (
        "flags",
        other.pfn,
        f"migratepage of pfn {pfn} changed {where}, a page it was not handed: its "
        f"contents changed (first at byte {_first_difference(was, now)})",
    )


_PG_NAMES: Final = tuple((bit, f"PG_{name}") for bit, name in PG.NAMES)


def _bits_changed(was: int, now: int, names: tuple[tuple[int, str], ...]) -> str:
    """``lost BH_Uptodate; gained BH_New``: the named bits between two values."""
    said = [
        f"{verb} {' and '.join(name for bit, name in names if bits & bit)}"
        for bits, verb in ((was & ~now, "lost"), (now & ~was, "gained"))
        if any(bits & bit for bit, _name in names)
    ]
    return "; ".join(said) or f"went from {was:#x} to {now:#x}"


def _ring_index(bh: BufferHead) -> int:
    """Where ``bh`` is in its page's ring of buffer heads (``-1``: not in it)."""
    page: Any = bh.b_page
    head = page.private if isinstance(page, Page) else None
    if isinstance(head, BufferHead):
        for i, other in enumerate(buffers(head)):
            if other is bh:
                return i
            if i > 64:
                break
    return -1


def _bh_change(bh: BufferHead, name: str, was: Any, now: Any) -> str:
    """What changed in one field of a buffer head, for a finding."""
    which = f"buffer head {_ring_index(bh)}"
    if name == "b_state":
        return f"{which} {_bits_changed(was, now, BH_BIT_NAMES)}"
    if name in ("b_bdev", "b_page", "b_this_page", "b_private"):
        return f"{name} of {which} changed"
    return f"{name} of {which} went from {was} to {now}"


def _own_count(bh: BufferHead) -> int:
    """``b_count`` without the journal's reference, which commits may drop at any time."""
    return bh.b_count - (1 if bh.b_state & BH.jbd else 0)


def _vm_locked_refused() -> str:
    """Why 2.6.16's unmap step gave ``-EPERM`` (``fsaops.migrate`` imports this module)."""
    from fsaops.migrate import VM_LOCKED_REFUSED

    return VM_LOCKED_REFUSED


def _vm_locked_is_eperm(kernel: Kernel) -> bool:
    """Whether the release gives ``-EPERM`` for a page a ``VM_LOCKED`` area maps (2.6.16 on)."""
    from fsaops.migrate import unmap_eperm

    return kernel.semantics.unmap is unmap_eperm


def _mlocked(page: Page) -> bool:
    """Whether an area that maps (or mapped) the page is ``VM_LOCKED``."""
    mapping = page.mapping
    if mapping is None:
        return False
    vmas = mapping.vmas if mapping.anon else mapping.i_mmap  # type: ignore[union-attr]
    return any(vma.vm_flags & VM_LOCKED and vma.address(page) >= 0 for vma in vmas)
