"""The proofs behind the verdict: where every page went, and that nothing was lost.

``fsaops migrate`` says OK only when two proofs hold, both asked of the
oracle (:class:`~fsaops.oracle.Oracle`), which reads the machine raw:

**Placement** (:func:`prove_placement`): for every page the world wrote, the
engine's account of it (moved, dropped by ``swap_page``, freed while
waiting, left, failed) matches where it is.  A page counted as moved is in a
frame on the target node, holding its data; its page-cache (or swap-cache)
slot, or its process's pte, points at that frame (under V4 an anonymous
page's pte may be the swap entry whose swap-cache page is that frame; from
the release whose ``migrate_page`` calls ``remove_from_swap``, it may not:
that call gives the page its ptes back); no pte
anywhere still maps the old frame, and the old frame is free.  A process
whose write fault found its anonymous page held by the migration has a copy
of its own (``do_wp_page``): that copy may be on any node, and may be the
old frame, freed and handed out again; its data is checked all the same.
So may a page a swap fault reads in (``read_swap_cache_async``): from
2.6.16 a fault that looked its swap entry up just after the migration
took the page out of the swap cache, and before it freed the entry, reads
the entry into a new page, finds its pte present and leaves that page in
the swap cache, where reclaim finds it.  A page dropped
is in no frame and its data is on its backing store.  A page left or failed
is where it was, intact, in its slot, unless its process wrote to it while
the migration held it: then its process's pte maps that process's copy,
whose data is checked.

**Durability** (:func:`prove_durability`): after the in-memory read-back,
every mapping of a file is torn down (a dirty pte dirties its page), every
mount is synced (every dirty page written back, the journal committed) and
every page of anonymous memory is written to swap and dropped; then every
page is read from its backing store, its file's blocks or its swap slot, and
compared with what was written.  A dirty state lost in migration shows here:
the page read back clean in memory, but the disk never got it.  A table with
no backing store is checked in memory only, and the proof says which: one
with no ``writepage``; there a page must still hold its data and stay dirty
(unless its device holds that data), since a clean one is what reclaim
drops.  A page sync left dirty is one sync skipped, and its data never
reached the disk, if its file's data was put on a disk; in a file written
only through the page cache it may be one its table has nowhere to write:
``writepage`` is asked, and a page it keeps dirty (shmem with no swap, a
ramdisk) is checked in memory.

Both name each problem's page (its frame, its file and index or its process
and address), its table, and what is wrong.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from errno import EIO, ENOSPC, errorcode
from typing import TYPE_CHECKING, Final

import attrs

from fsaops.aops import returned
from fsaops.buffer import BH, BufferHead, buffers
from fsaops.errors import Deadlock
from fsaops.mapping import AS_EIO, AS_ENOSPC, remove_mapping
from fsaops.oracle import RUN_PAGES, MachineIndex, Oracle
from fsaops.page import PG, lock_page, put_page, unlock_page
from fsaops.rmap import SWAP_SUCCESS, VM_LOCKED, try_to_unmap
from fsaops.sched import whose
from fsaops.swap import add_to_swap
from fsaops.world import Area, File
from fsaops.writeback import (
    WRITEPAGE_ACTIVATE,
    WritebackControl,
    clear_page_dirty_for_io,
    filemap_fdatawait,
    filemap_fdatawrite,
    writeback_pages,
)

if TYPE_CHECKING:
    import fsaops.world
    from fsaops.aops import AddressSpaceOperations
    from fsaops.kernel import MountTable
    from fsaops.migrate import MigrateStats
    from fsaops.page import Page
    from fsaops.rmap import Mm, Vma

__all__ = [
    "MAX_PROBLEMS",
    "Outcome",
    "Placed",
    "Places",
    "Proof",
    "account_problems",
    "ledger",
    "prove_durability",
    "prove_placement",
    "snapshot_places",
]

MAX_PROBLEMS: Final = 20
"""Problems a proof lists (all are counted)."""

SYNC_TICKS: Final = 256
"""Ticks the clock runs after writing back, so periodic flushers (a journal) commit."""


@attrs.frozen
class Proof:
    """What one proof found.

    Attributes:
        name: ``placement`` or ``durability``.
        checked: pages it looked at.
        failures: pages it found wrong (all counted).
        problems: the first :data:`MAX_PROBLEMS` of them, one sentence each.
        memory_only: pages checked in memory only, by table, because the
            table has no backing store: no ``writepage``, or one that keeps
            them dirty when asked to write them (durability).
    """

    name: str
    checked: int
    failures: int
    problems: tuple[str, ...] = ()
    memory_only: Mapping[str, int] = attrs.field(factory=dict)

    @property
    def holds(self) -> bool:
        """Whether the proof found nothing wrong."""
        return self.failures == 0

    def to_json(self) -> dict[str, object]:
        """Plain data for JSON."""
        return {
            "checked": self.checked,
            "failures": self.failures,
            "problems": list(self.problems),
            "memory_only": dict(sorted(self.memory_only.items())),
        }


class Outcome:
    """How the engine says it finished with a page (the ledger the placement proof checks)."""

    MOVED: Final = "moved"
    DROPPED: Final = "dropped"
    FREED: Final = "freed"
    LEFT: Final = "left"
    FAILED: Final = "failed"


@attrs.frozen
class Placed:
    """A page the world wrote, as it was just before migration.

    Attributes:
        record: its file or area.
        index: its index there.
        page: the page that held it.
        table: the operations table of its mapping then.
    """

    record: File | Area
    index: int
    page: Page
    table: str


class Places(Mapping[int, Placed]):
    """Every page the world wrote that was in memory on one node, before migration, by pfn.

    What :func:`snapshot_places` returns: a mapping of each pfn to its
    :class:`Placed`, kept a file or area at a time (its indexes, the pages
    that held them and their tables, in order), so that taking it and
    proving placement cost little per page.  A :class:`Placed` is made when
    asked for.
    """

    __slots__ = ("_by_pfn", "_runs", "mlocked")

    def __init__(self) -> None:
        self._runs: list[tuple[File | Area, list[int], list[Page], list[str]]] = []
        self._by_pfn: dict[int, tuple[int, int]] | None = None
        #: The pfns a pte of a ``VM_LOCKED`` area mapped (``mlock``): no release moves them.
        self.mlocked: set[int] = set()

    def add(
        self, record: File | Area, indexes: list[int], pages: list[Page], tables: list[str]
    ) -> None:
        """Add pages ``indexes`` of ``record``, held by ``pages``, of ``tables``."""
        if not indexes:
            return
        self._runs.append((record, indexes, pages, tables))
        self._by_pfn = None

    @classmethod
    def of(cls, placed: Mapping[int, Placed]) -> Places:
        """The :class:`Places` of a plain mapping of pfns to :class:`Placed`.

        A file or area at a time, in order of index.  It knows no ``VM_LOCKED``
        area (:attr:`mlocked` is empty): only :func:`snapshot_places` looks at
        the ptes before migration.
        """
        by_record: dict[int, tuple[File | Area, list[Placed]]] = {}
        for b in placed.values():
            by_record.setdefault(id(b.record), (b.record, []))[1].append(b)
        places = cls()
        for record, run in by_record.values():
            run.sort(key=lambda b: b.index)
            places.add(
                record, [b.index for b in run], [b.page for b in run], [b.table for b in run]
            )
        return places

    def select(self, keep: Callable[[File | Area, Page], bool]) -> Places:
        """The places of the pages ``keep(record, page)`` is true of, and their ``mlock`` marks."""
        places = Places()
        for record, indexes, pages, tables in self._runs:
            kept = [pos for pos, page in enumerate(pages) if keep(record, page)]
            places.add(
                record,
                [indexes[pos] for pos in kept],
                [pages[pos] for pos in kept],
                [tables[pos] for pos in kept],
            )
            places.mlocked.update(pages[pos].pfn for pos in kept if pages[pos].pfn in self.mlocked)
        return places

    def runs(self) -> Iterator[tuple[File | Area, list[int], list[Page], list[str]]]:
        """Each file or area with its indexes, the pages that held them and their tables."""
        return iter(self._runs)

    def _index(self) -> dict[int, tuple[int, int]]:
        if self._by_pfn is None:
            self._by_pfn = {
                page.pfn: (n, pos)
                for n, (_record, _indexes, pages, _tables) in enumerate(self._runs)
                for pos, page in enumerate(pages)
            }
        return self._by_pfn

    def __getitem__(self, pfn: int) -> Placed:
        n, pos = self._index()[pfn]
        record, indexes, pages, tables = self._runs[n]
        return Placed(record, indexes[pos], pages[pos], tables[pos])

    def __iter__(self) -> Iterator[int]:
        for _record, _indexes, pages, _tables in self._runs:
            for page in pages:
                yield page.pfn

    def __len__(self) -> int:
        return sum(len(indexes) for _record, indexes, _pages, _tables in self._runs)

    def _find(self, record: File | Area, index: int) -> tuple[Page, str] | None:
        for rec, indexes, pages, tables in self._runs:
            if rec is record:
                # The indexes are in order: find the page by bisection.
                lo, hi = 0, len(indexes)
                while lo < hi:
                    mid = (lo + hi) // 2
                    if indexes[mid] < index:
                        lo = mid + 1
                    else:
                        hi = mid
                if lo < len(indexes) and indexes[lo] == index:
                    return pages[lo], tables[lo]
        return None

    def table(self, record: File | Area, index: int) -> str | None:
        """The table of page ``index`` of ``record`` before migration, or ``None``."""
        found = self._find(record, index)
        return None if found is None else found[1]

    def page(self, record: File | Area, index: int) -> Page | None:
        """The page that held page ``index`` of ``record`` before migration, or ``None``."""
        found = self._find(record, index)
        return None if found is None else found[0]


def snapshot_places(world: fsaops.world.World, nid: int) -> Places:
    """Every page the world wrote that is in memory on node ``nid``, by pfn, before migration.

    From here on the kernel notes afresh the frames a swap fault reads a page
    into and the copies write faults make (``Kernel.swap_reads``,
    ``Kernel.cow_copies``): the proof takes such a frame as freed and handed
    out again only if that happened after this snapshot.  A page of the
    snapshot whose frame a fault filled before it is the page itself, and
    its frame must be freed if it moves.
    """
    kernel = world.kernel
    kernel.swap_reads.clear()
    kernel.cow_copies.clear()
    places = Places()
    records: list[File | Area] = [*world.files, *world.areas]
    swap_name = world.kernel.swap_aops_name
    swapcache = PG.swapcache
    # Only a VM_LOCKED area can make a page mlocked: with none, no page is.
    locked = any(vma.vm_flags & VM_LOCKED for mm in kernel.mms for vma in mm.vmas)
    for record in records:
        npages = record.npages
        held: list[Page | None]
        if isinstance(record, File):
            tree = record.inode.i_mapping.page_tree
            held = tree[:npages]
            held += [None] * (npages - len(held))
        else:
            held = [world.page_of(record, index) for index in range(npages)]
        indexes: list[int] = []
        pages: list[Page] = []
        tables: list[str] = []
        for index, page in enumerate(held):
            if page is None or page.node.nid != nid:
                continue
            indexes.append(index)
            pages.append(page)
            # _table_of, written out.
            mapping = page.mapping
            if page.flags & swapcache or (mapping is not None and mapping.anon):
                tables.append(swap_name)
            else:
                tables.append(
                    mapping.a_ops.name if mapping is not None else "(no mapping)"  # type: ignore[union-attr]
                )
        places.add(record, indexes, pages, tables)
        if locked:
            places.mlocked.update(p.pfn for p in pages if p.mapcount and Oracle.mlocked(p))
    return places


def _table_of(world: fsaops.world.World, page: Page) -> str:
    kernel = world.kernel
    if page.flags & PG.swapcache or (page.mapping is not None and page.mapping.anon):
        return kernel.swap_aops_name
    mapping = page.mapping
    return mapping.a_ops.name if mapping is not None else "(no mapping)"  # type: ignore[union-attr]


def _name(before: Placed) -> str:
    return f"pfn {before.page.pfn} ({before.record.describe(before.index)}, {before.table})"


def ledger(stats: MigrateStats) -> Callable[[int], str]:
    """The engine's account of each old page, as :func:`prove_placement` takes it.

    An :class:`Outcome` for a pfn, from what ``migrate_pages`` recorded in
    ``stats``: left (still ``-EAGAIN``, or never reached), failed, freed
    under us or dropped without a new page, else moved.
    """

    def outcome(pfn: int) -> str:
        if pfn in stats.pending:
            return Outcome.LEFT
        if pfn in stats.failures:
            return Outcome.FAILED
        via = stats.frameless.get(pfn)
        if via is None:
            return Outcome.MOVED
        return Outcome.FREED if via == "freed" else Outcome.DROPPED

    return outcome


def account_problems(
    stats: MigrateStats,
    given: int,
    before: Places | None = None,
    *,
    migrated: int | None = None,
) -> list[tuple[int, str]]:
    """Where the engine's counts do not add up: (pages off, problem) for each.

    Each page ``migrate_pages`` is given ends moved, failed or not migrated,
    once: the counts by table must add up to ``given`` (the pages the run
    isolated, and its swapout pages), and a table's failed and not-migrated
    counts must be the pages its ledger names (``stats.failures``,
    ``stats.pending``), which the placement proof checks page by page.  The
    report's counts are what a user reads first; none of the proofs looks
    at them otherwise.

    ``before``: the places of the pages the engine was given
    (:func:`snapshot_places`), when it was given every one of them.  Each
    is counted under its own table, so a table counts no fewer pages than
    it had there (it may count more: pages the snapshot does not hold,
    such as a truncated file's).  ``migrated``: what the run added to
    ``vmstat``'s ``pgmigrate_success``, which counts the moved pages too.
    """
    problems: list[tuple[int, str]] = []
    tables = stats.tables
    counted = sum(t.pages for t in tables.values())
    moved = sum(t.moved for t in tables.values())
    if counted != given:
        problems.append(
            (
                abs(counted - given),
                f"the report accounts for {counted} pages (moved {moved}, failed "
                f"{sum(t.failed for t in tables.values())}, not migrated "
                f"{sum(t.not_migrated for t in tables.values())}), but migrate_pages was "
                f"given {given}: each page it is given ends moved, failed or not migrated, "
                "once",
            )
        )
    if migrated is not None and migrated != moved:
        problems.append(
            (
                abs(migrated - moved),
                f"vmstat's pgmigrate_success counts {migrated} pages migrated, but the "
                f"report counts {moved} moved",
            )
        )
    failed = Counter(name for name, *_rest in stats.failures.values())
    left = Counter(name for name, *_rest in stats.pending.values())
    for name in sorted(tables.keys() | failed.keys() | left.keys()):
        counts = tables.get(name)
        for what, counted, listed in (
            ("failed", counts.failed if counts else 0, failed[name]),
            ("not migrated", counts.not_migrated if counts else 0, left[name]),
        ):
            if counted != listed:
                problems.append(
                    (
                        abs(counted - listed),
                        f"the report counts {counted} pages of {name} as {what}, but the "
                        f"engine's ledger names {listed}",
                    )
                )
    if before is not None:
        had: Counter[str] = Counter()
        for _record, _indexes, _pages, names in before.runs():
            had.update(names)
        for name, count in sorted(had.items()):
            counts = tables.get(name)
            counted = counts.pages if counts else 0
            if counted < count:
                problems.append(
                    (
                        count - counted,
                        f"the report counts {counted} pages of {name}, but {count} of its pages "
                        "were given to migrate_pages: each page is counted under its own table",
                    )
                )
    return problems


def prove_placement(
    world: fsaops.world.World,
    before: Places | Mapping[int, Placed],
    outcome: Callable[[int], str],
    *,
    target_nid: int,
    found: list[tuple[File | Area, int]] | None = None,
) -> Proof:
    """Check that every page the engine finished with is where its account says.

    ``before`` is :func:`snapshot_places` taken before migration (a plain
    mapping of pfns to :class:`Placed` is judged the same way, as
    :meth:`Places.of` makes it, with no ``VM_LOCKED`` area known);
    ``outcome(pfn)`` is the engine's account of the old page: an
    :class:`Outcome` value.  Call it once the migration is over: other tasks
    let go, pages put back, I/O settled.  ``found``, when given, gets the
    file or area and index of every page found wrong (all of them, not only
    those the problems name).
    """
    index = Oracle().index(world.kernel)
    if not isinstance(before, Places):
        before = Places.of(before)
    problems: list[str] = []
    failures = 0
    for record, indexes, pages, tables in before.runs():
        for start in range(0, len(indexes), RUN_PAGES):
            stop = min(start + RUN_PAGES, len(indexes))
            for pos, wrong in _placement_run(
                world,
                index,
                record,
                indexes,
                pages,
                start,
                stop,
                outcome,
                target_nid,
                before.mlocked,
            ):
                failures += 1
                if found is not None:
                    found.append((record, indexes[pos]))
                if len(problems) < MAX_PROBLEMS:
                    b = Placed(record, indexes[pos], pages[pos], tables[pos])
                    problems.append(f"{_name(b)}: {wrong}")
    return Proof("placement", len(before), failures, tuple(problems))


def _placement_run(
    world: fsaops.world.World,
    index: MachineIndex,
    record: File | Area,
    indexes: list[int],
    pages: list[Page],
    start: int,
    stop: int,
    outcome: Callable[[int], str],
    target_nid: int,
    mlocked: Collection[int],
) -> list[tuple[int, str]]:
    """The placement judgement of positions ``start`` to ``stop`` of a record's pages.

    Page by page, except the data: the frames whose data must be what was
    written are compared with it in one comparison, and one by one only if
    that fails.  ``mlocked``: the pfns a ``VM_LOCKED`` area mapped
    (:attr:`Places.mlocked`), which must not have moved unless their
    process's write fault gave it a copy of its own.  Returns (position,
    problem) in order.
    """
    tree = record.inode.i_mapping.page_tree if isinstance(record, File) else None
    ptes = index.ptes
    left = (Outcome.LEFT, Outcome.FAILED)
    moved = Outcome.MOVED
    found: dict[int, str] = {}
    # (position, the frame whose data to compare, how the engine counted it)
    frames: list[tuple[int, Page, str]] = []
    cow_copies = world.kernel.cow_copies
    swap_reads = world.kernel.swap_reads
    # From the release whose migrate_page calls remove_from_swap, that call
    # gives a moved anonymous page real ptes back; V4's does nothing, and the
    # process faults them back through the swap cache.
    ptes_restored = world.kernel.semantics.remove_from_swap_caller == "migrate_page"
    for pos in range(start, stop):
        old = pages[pos]
        i = indexes[pos]
        how = outcome(old.pfn)
        # A frame freed and handed out since, to a process's copy or to a
        # page a swap fault read in: none of its references or ptes are the
        # old page's.
        reused = (
            how not in left
            and (bool(cow_copies) or bool(swap_reads))
            and (old.pfn in cow_copies or old.pfn in swap_reads)
        )
        through_swap = False
        if tree is not None:
            now = tree[i] if i < len(tree) else None
        else:
            assert isinstance(record, Area)
            now = world.page_of(record, i)
            if now is None:
                now = _swap_cache_page(world, record, i)
            pte = record.mm.ptes.get(record.start + i)
            through_swap = now is not None and pte is not None and pte.page is None
        if through_swap and how == moved and ptes_restored:
            assert now is not None
            found[pos] = (
                f"counted as moved, but its process still reaches it through a swap entry, "
                f"pfn {now.pfn} in the swap cache: this release's migrate_page gives a moved "
                "page its ptes back (remove_from_swap), so its swap slot stays taken and "
                "migrate_pages(2) cannot see the page"
            )
            continue
        if (
            how == moved
            and now is not None
            and (now is not old or reused)
            and (old.count == 0 or reused)
        ):
            # The usual case, first: moved to a frame that holds its place.
            if ptes and old.pfn in ptes and not reused:
                found[pos] = (
                    f"counted as {how}, but ptes {list(ptes[old.pfn])} still map the old "
                    "frame (a stale mapping)"
                )
            elif now.node.nid != target_nid and not _copied_by_its_process(world, record, now):
                found[pos] = (
                    f"counted as moved, but pfn {now.pfn} holding it is on node {now.node.nid}"
                )
            elif (
                ptes_restored
                and tree is None
                and now.flags & PG.swapcache
                and now.pfn not in swap_reads
                and not _copied_by_its_process(world, record, now)
            ):
                found[pos] = (
                    f"counted as moved, but pfn {now.pfn} holding it is still in the swap "
                    "cache: this release's migrate_page takes a moved page out of it "
                    "(remove_from_swap), so its swap slot stays taken"
                )
            elif mlocked and old.pfn in mlocked and not _copied_by_its_process(world, record, now):
                found[pos] = (
                    "counted as moved, but a VM_LOCKED area mapped it (mlock): try_to_unmap "
                    "refuses such a page in every release, so it cannot move; the process's "
                    f"locked page went to pfn {now.pfn} under it"
                )
            else:
                frames.append((pos, now, how))
            continue
        if how in left:
            if now is old:
                frames.append((pos, old, how))
            elif now is not None and _copied_by_its_process(world, record, now):
                # The process wrote to the page while the migration held it:
                # its place is its own copy, the old page stays in the swap
                # cache, unmapped.
                frames.append((pos, now, how))
            else:
                where = "no page" if now is None else f"pfn {now.pfn}"
                found[pos] = (
                    f"{how}, so it should still be in its frame, but its place holds {where}"
                )
            continue
        stale = ptes.get(old.pfn, ()) if ptes and not reused else ()
        if stale:
            found[pos] = (
                f"counted as {how}, but ptes {list(stale)} still map the old frame "
                "(a stale mapping)"
            )
        elif old.count != 0 and not reused:
            found[pos] = (
                f"counted as {how}, but the old frame was not freed (page_count {old.count}, "
                f"flags {Oracle.flag_names(old.flags)})"
            )
        elif how == Outcome.FREED:
            pass
        elif how == Outcome.DROPPED:
            if now is not None and now.node.nid != target_nid:
                found[pos] = (
                    f"dropped by swap_page, but pfn {now.pfn} on node {now.node.nid} holds it"
                )
            elif now is None:
                b = Placed(record, i, old, "")
                if not _on_backing_store(world, b, world.expected(record, i)):
                    found[pos] = (
                        "dropped by swap_page, but its backing store does not hold its data"
                    )
        elif now is None:
            found[pos] = "counted as moved, but no frame holds it and nothing was dropped"
        else:  # now is old
            found[pos] = (
                "counted as moved, but its slot still points at the old frame: nothing moved"
            )
    if frames:
        _compare_frames(world, record, indexes, frames, found)
    return sorted(found.items())


def _copied_by_its_process(world: fsaops.world.World, record: File | Area, now: Page) -> bool:
    """Whether ``now`` is a copy its process's write fault made of a page others held.

    A process that writes through a swap pte while the page has other
    users (a migration's reference among them) gets a copy of its own
    (``do_wp_page``), allocated where its faults allocate: the page moved
    (or the migration gave it up), and the process no longer maps it.  Where
    that copy is, is the fault's doing, not the migration's; its data is
    still checked.
    """
    return isinstance(record, Area) and now.pfn in world.kernel.cow_copies


def _compare_frames(
    world: fsaops.world.World,
    record: File | Area,
    indexes: list[int],
    frames: list[tuple[int, Page, str]],
    found: dict[int, str],
) -> None:
    """Compare the frames with what was written, a run of consecutive indexes at a time."""
    ps = world.page_size
    run_start = 0
    while run_start < len(frames):
        run_end = run_start + 1
        while (
            run_end < len(frames)
            and indexes[frames[run_end][0]] == indexes[frames[run_end - 1][0]] + 1
        ):
            run_end += 1
        first = indexes[frames[run_start][0]]
        parts = []
        for _pos, page, _how in frames[run_start:run_end]:
            node = page.node
            off = (page.pfn - node.start_pfn) << node.page_shift
            parts.append(node.mem[off : off + ps])
        if not world.matches(record, first, run_end - run_start, b"".join(parts)):
            for k, (pos, page, how) in enumerate(frames[run_start:run_end]):
                if not _holds(page, bytes(parts[k]), world.expected(record, first + k)):
                    found[pos] = (
                        f"moved to pfn {page.pfn}, whose data is not what was written"
                        if how == Outcome.MOVED
                        else f"{how}, and the data in its frame is no longer what was written"
                    )
        run_start = run_end


def _holds(page: Page, frame: bytes | memoryview, expected: bytes) -> bool:
    """Whether ``frame``, the bytes of ``page``'s frame, hold what was written.

    All of them; or, for a page that is not up to date (written in part),
    those of its up-to-date buffers: the others were never read, and a read
    of the page reads them from disk.  A clean page that is not up to date
    and has no buffers (they were freed: the disk has its data) holds
    nothing a read would use.
    """
    if frame == expected:
        return True
    flags = page.flags
    if flags & PG.uptodate:
        return False
    head = page.private
    if not flags & PG.private:
        return not flags & PG.dirty
    if not isinstance(head, BufferHead):
        return False
    size = head.b_size
    return all(
        frame[i * size : (i + 1) * size] == expected[i * size : (i + 1) * size]
        for i, bh in enumerate(buffers(head))
        if bh.b_state & BH.uptodate
    )


def _swap_cache_page(world: fsaops.world.World, area: Area, index: int) -> Page | None:
    """For anonymous memory whose pte is a swap entry: the swap-cache page of that entry."""
    pte = area.mm.ptes.get(area.start + index)
    swapper = world.kernel.swapper_space
    if pte is None or pte.page is not None or swapper is None:
        return None
    return Oracle.slot(swapper, pte.swp)


def _on_backing_store(world: fsaops.world.World, b: Placed, expected: bytes) -> bool:
    record = b.record
    if isinstance(record, File):
        return Oracle.on_disk(record.inode, b.index) == expected
    pte = record.mm.ptes.get(record.start + b.index)
    swap = world.kernel.swap
    if pte is None or pte.page is not None or swap is None:
        return False
    return bytes(swap.slot(pte.swp)) == expected


# -- durability -----------------------------------------------------------------------


def prove_durability(
    world: fsaops.world.World,
    *,
    views: Sequence[tuple[File, int, Mm, Vma]] = (),
    moved_by: Places | Mapping[tuple[int, int], str] | None = None,
    found: list[tuple[File | Area, int]] | None = None,
) -> Proof:
    """Sync everything, drop what memory holds, and read every page from its backing store.

    ``views`` are the processes' mappings of files, torn down first (a dirty
    pte dirties its page, as ``munmap`` does).  ``moved_by`` names the table
    that moved each page, for the messages: the :class:`Places` taken before
    migration, or a mapping by ``(id(record), index)``.  ``found``, when
    given, gets the file or area and index of every page found wrong (not
    a file whose ``fsync`` failed: that names no page).
    """
    kernel = world.kernel
    oracle = Oracle()
    unmapped: set[int] = set()
    for _record, _index, mm, vma in views:
        if id(vma) in unmapped or vma not in mm.vmas:
            continue
        unmapped.add(id(vma))
        mm.munmap(vma)
    memory_only: dict[str, int] = {}
    # Sync: write back every dirty page of every file, and have the journals
    # commit.  What an fsync says, the first time it says anything, fails the proof.
    said: dict[int, str] = {}
    for record in world.files:
        if (text := _sync(record, moved_by)) is not None:
            said.setdefault(id(record), text)
    kernel.run_until_idle()
    kernel.sync_filesystems()
    kernel.sched.run_for(SYNC_TICKS)
    kernel.run_until_idle()
    for record in world.files:
        if (text := _sync(record, moved_by)) is not None:
            said.setdefault(id(record), text)
    kernel.run_until_idle()
    # Anonymous memory: written to swap and dropped, so it reads back from there.
    swapped_out = {id(area): _swap_out(world, area) for area in world.areas}
    kernel.run_until_idle()
    problems: list[str] = []
    failures = checked = 0

    def wrong(text: str, page: tuple[File | Area, int] | None = None) -> None:
        nonlocal failures
        failures += 1
        if found is not None and page is not None:
            found.append(page)
        if len(problems) < MAX_PROBLEMS:
            problems.append(text)

    for text in said.values():
        wrong(text)
    ps = world.page_size
    for record in world.files:
        mapping = record.inode.i_mapping
        table = mapping.a_ops.name
        # Whether the file has a backing store is its mount's to say, as it
        # was mounted (the kernel's record, not sb.a_ops, which plugin code
        # can rewrite): a table swapped in since, or the mount's own with
        # its writepage taken away in place, has its pages kept dirty, not
        # put in memory only.
        given = kernel.mount_table(record.inode.i_sb)
        backed = record.page_cache is False or given.member("writepage") is not None
        # Pages still dirty after sync.  A file whose data the world put on
        # its blocks has a disk: there such a page is one sync skipped (a
        # dirty tag lost, a writepages that passed it over).  Any other file
        # may have nowhere to write: its table's writepage is asked about
        # each such page, and the pages it keeps dirty (shmem with no swap,
        # a ramdisk) are checked in memory.
        skipped: set[int] = set()
        kept: set[int] = set()
        if record.page_cache and backed:
            skipped = {
                index
                for index, page in enumerate(mapping.page_tree[: record.npages])
                if page is not None and page.flags & PG.dirty
            }
            if skipped and not record.on_disk and mapping.a_ops.writepage is not None:
                kept = _kept_dirty(world, record, skipped)
                skipped -= kept
        if record.page_cache and not backed:
            memory_only[given.name] = memory_only.get(given.name, 0) + record.npages
        elif kept:
            memory_only[table] = memory_only.get(table, 0) + len(kept)
        for first in range(0, record.npages, RUN_PAGES):
            count = min(RUN_PAGES, record.npages - first)
            checked += count
            # A run at a time: one comparison with what was written; page by
            # page only where that fails.
            if not backed:
                frames = [world.page_of(record, index) for index in range(first, first + count)]
                if None not in frames and world.matches(
                    record,
                    first,
                    count,
                    b"".join([Oracle.frame(page) for page in frames if page is not None]),
                ):
                    _memory_only_clean(world, record, first, frames, moved_by, wrong)
                    continue
                for k, page in enumerate(frames):
                    if page is None or oracle.frame(page) != world.expected(record, first + k):
                        wrong(
                            f"{record.describe(first + k)} ({table}): lost from memory",
                            (record, first + k),
                        )
                continue
            run = range(first, first + count)
            dirty = skipped.intersection(run) if skipped else skipped
            in_memory = kept.intersection(run) if kept else kept
            if not dirty and not in_memory and world.disk_holds(record, first, count):
                continue
            disk = oracle.on_disk_range(record.inode, first, count)
            if not dirty and not in_memory and world.matches(record, first, count, disk):
                continue
            for k in range(count):
                index = first + k
                if index in dirty and disk[k * ps : (k + 1) * ps] == world.expected(record, index):
                    wrong(
                        f"{record.describe(index)} ({table}): still dirty after sync, though the "
                        "disk holds its data: it was written and dirtied again, so no sync "
                        "leaves it clean",
                        (record, index),
                    )
                elif index in dirty:
                    wrong(
                        f"{record.describe(index)} ({table}): still dirty after sync, so its "
                        f"data never reached the disk{_no_writepage(mapping.a_ops, given)}",
                        (record, index),
                    )
                elif index in in_memory:
                    page = world.page_of(record, index)
                    if page is None or oracle.frame(page) != world.expected(record, index):
                        wrong(
                            f"{record.describe(index)} ({table}): lost from memory", (record, index)
                        )
                elif disk[k * ps : (k + 1) * ps] != world.expected(record, index):
                    why = _not_stored(world, record, index, disk[k * ps : (k + 1) * ps])
                    wrong(
                        f"{record.describe(index)} ({table}): the disk does not hold the data "
                        f"written last{_who(moved_by, record, index, world)}: {why}",
                        (record, index),
                    )
    swap = kernel.swap
    for area in world.areas:
        table = kernel.swap_aops_name
        out = swapped_out[id(area)]
        for index in range(area.npages):
            checked += 1
            expected = world.expected(area, index)
            pte = area.mm.ptes.get(area.start + index)
            if index not in out or pte is None or pte.page is not None or swap is None:
                memory_only[table] = memory_only.get(table, 0) + 1
                page = None if pte is None else pte.page
                if page is None or oracle.frame(page) != expected:
                    wrong(f"{area.describe(index)} ({table}): lost from memory", (area, index))
                continue
            stored = bytes(swap.slot(pte.swp))
            if stored != expected:
                why = _not_stored(world, area, index, stored)
                wrong(
                    f"{area.describe(index)} ({table}): its swap slot does not hold the data "
                    f"written last{_who(moved_by, area, index)}: {why}",
                    (area, index),
                )
    return Proof("durability", checked, failures, tuple(problems), memory_only)


def _no_writepage(a_ops: AddressSpaceOperations, given: MountTable) -> str:
    """Why sync could not write a file's pages, if its table lost its mount's ``writepage``."""
    if a_ops.writepage is not None:
        return ""
    if a_ops is given.table:
        return (
            f": its mount's {given.name} no longer has the writepage it was mounted with, so "
            "the page can never be written back"
        )
    mount = f"its mount's {given.name}" if given.name != a_ops.name else "its mount's"
    return (
        f": its file's table is not {mount} and has no writepage, so the page can never be "
        "written back"
    )


def _kept_dirty(world: fsaops.world.World, record: File, dirty: set[int]) -> set[int]:
    """Ask the table's ``writepage`` to write each page of ``dirty`` (still dirty after sync).

    As ``write_one_page`` does: the page is locked, its dirty bit cleared
    and handed to ``writepage``.  A table with nowhere to write it keeps it
    dirty: 2.6.14's ``shmem_writepage`` with no swap redirties it and
    returns ``WRITEPAGE_ACTIVATE``, a ramdisk's redirties it and returns 0
    outside reclaim.  Returns the pages still dirty, and not under
    writeback, once ``writepage`` returned: their data lives in memory only.
    A page it wrote now is one sync should have written.
    """
    mapping = record.inode.i_mapping
    table = mapping.a_ops
    writepage = table.writepage
    assert writepage is not None
    tree = mapping.page_tree
    kept: set[int] = set()
    for index in sorted(dirty):
        page = tree[index]
        assert page is not None
        lock_page(page)
        if not clear_page_dirty_for_io(page):
            unlock_page(page)
            continue
        wbc = WritebackControl(sync_mode="all", for_reclaim=False)
        rc = returned(table, "writepage", writepage(page, wbc))
        if rc == WRITEPAGE_ACTIVATE:
            unlock_page(page)  # writepage leaves the page locked with this
        world.kernel.run_until_idle()
        if page.flags & PG.dirty and not page.flags & PG.writeback:
            kept.add(index)
    return kept


def _memory_only_clean(
    world: fsaops.world.World,
    record: File,
    first: int,
    frames: Sequence[Page | None],
    moved_by: Places | Mapping[tuple[int, int], str] | None,
    wrong: Callable[[str, tuple[File | Area, int]], None],
) -> None:
    """Name each page of a run of a table with no backing store that reclaim could lose.

    The pages hold their data, in memory; but a page with nowhere to be
    written back must stay dirty (ramfs's are, from ``commit_write`` on),
    unless its device holds its data (a buffer cache the filesystem reads
    in) or it is a hole's zeros: a clean one is taken by the next reclaim
    (``shrink_list``, ``remove_mapping``), and its data with it.
    """
    held = PG.dirty | PG.writeback
    clean = [k for k, page in enumerate(frames) if page is not None and not page.flags & held]
    if not clean or world.disk_holds(record, first, len(frames)):
        return
    inode = record.inode
    table = inode.i_mapping.a_ops.name
    for k in clean:
        index = first + k
        if Oracle.on_disk(inode, index) != world.expected(record, index):
            wrong(
                f"{record.describe(index)} ({table}): clean, with no backing store to write it "
                f"to{_who(moved_by, record, index)}: reclaim would drop it, and its data with it",
                (record, index),
            )


def _not_stored(world: fsaops.world.World, record: File | Area, index: int, stored: bytes) -> str:
    """What went wrong with a page whose backing store holds ``stored``, not its newest data.

    An older generation of the page, or nothing, is a dirty state lost (the
    newest data was never written), and so is a page whose blocks hold,
    block by block, its newest data and an older generation of it (a dirty
    buffer never written); anything else is neither the page's data nor an
    older version of it: damaged, or another page's data written in its
    place.
    """
    said = world.diagnose(stored, record, index)
    if said is None or said.startswith("lost: "):
        detail = "" if said is None else f" (it {said.removeprefix('lost: ')})"
        return f"a dirty state was lost{detail}"
    detail = said.removeprefix("corrupted: ")
    if detail.startswith("reads back poison"):
        return f"it {detail}"
    return (
        f"it {detail}: neither the page's data nor an older version of it (damaged, or "
        "another page's data written in its place)"
    )


def _sync(
    record: File, moved_by: Places | Mapping[tuple[int, int], str] | None = None
) -> str | None:
    """Write back every dirty page of a file and wait for it (``fsync``): None, or what it said.

    As 2.6.16's ``do_fsync`` does with the data: :func:`filemap_fdatawrite`
    (a table with no ``writepage`` has nothing to write), then
    :func:`filemap_fdatawait` whatever the write returned.  An error from
    either is what the sentence returned names: the file, the error and
    its cause (the table's write failed, a page the wait looked at has
    ``PG_error``, the mapping had ``AS_EIO`` or ``AS_ENOSPC``).  Bits only
    an injected write error set are no error of the table's: the kernel
    reports them once, and the page was written again.

    A wait that can never end (a page left under writeback or locked) is
    a deadlock that names the table member and the file.

    An injected write error the fault injector's ledger says was cleared
    before an ``fsync`` reported it (plugin code cleared the mapping's
    ``AS_EIO``) is an error report lost: the sentence names the file, the
    bits and the table member whose code cleared them.
    """
    mapping = record.inode.i_mapping
    table = mapping.a_ops
    if not record.page_cache:
        return None
    member = "writepages" if table.writepages is not None else "writepage"
    size = record.inode.i_size
    written = 0
    # The injector's errors still to report: the wait reports them (its
    # ledger learns so as the wait clears them), so they are read first.
    injected = mapping.injected_flags
    try:
        if table.writepage is not None:
            written = filemap_fdatawrite(mapping)
        outstanding = mapping.flags & (AS_EIO | AS_ENOSPC)
        looked = writeback_pages(mapping, 0, (size - 1) // mapping.kernel.page_size) if size else []
        waited = filemap_fdatawait(mapping)
    except Deadlock as exc:
        what = exc.what.removesuffix(whose(table.name))  # the member's name says it
        raise Deadlock(f"{what} after {table.name}.{member} of {record.label}", exc.now) from exc
    faults = mapping.kernel.faults
    lost = [] if faults is None else faults.lost_reports(mapping)
    said = written or waited
    if not said and not lost:
        return None
    errored = [page.index for page in looked if page.flags & PG.error]
    if not size:
        outstanding = 0  # an empty file's wait does not look
    if not written and not errored and not lost and outstanding and not outstanding & ~injected:
        return None
    why: list[str] = []
    if written:
        why.append(f"{table.name}.{member} returned {_errno(written)}")
    for index in errored[:4]:
        why.append(
            f"page {index} has PG_error{_who(moved_by, record, index)}, which the wait for "
            "its write reports"
        )
    if len(errored) > 4:
        why.append(f"{len(errored) - 4} more pages have PG_error")
    for bit, name in ((AS_EIO, "AS_EIO"), (AS_ENOSPC, "AS_ENOSPC")):
        if outstanding & bit and not injected & bit:
            why.append(
                f"its mapping had {name} set, a write error recorded since the last fsync "
                "that no injected fault made"
            )
    for bits, by in lost:
        why.append(
            f"its mapping had {_as_names(bits)} set by a write error the fault injector made, "
            f"and {by or 'plugin code'} cleared it before an fsync reported it: the kernel "
            "reports such an error once, to the next fsync, and that report was lost"
        )
    if not why:
        why.append("a write failed while it waited")
    if said:
        head = f"said {_errno(said)}"
    else:
        lost_bits = 0
        for bits, _by in lost:
            lost_bits |= bits
        head = f"said 0, not {_errno(-EIO if lost_bits & AS_EIO else -ENOSPC)}"
    return f"fsync of {record.label} ({record.key}, {table.name}) {head}: " + "; ".join(why)


def _as_names(bits: int) -> str:
    """``AS_EIO``, ``AS_ENOSPC``, or ``AS_EIO and AS_ENOSPC``."""
    names = [name for bit, name in ((AS_EIO, "AS_EIO"), (AS_ENOSPC, "AS_ENOSPC")) if bits & bit]
    return " and ".join(names)


def _errno(rc: int) -> str:
    """``-EIO`` for -5."""
    return f"-{errorcode[-rc]}" if -rc in errorcode else str(rc)


def _who(
    moved_by: Places | Mapping[tuple[int, int], str] | None,
    record: File | Area,
    index: int,
    world: fsaops.world.World | None = None,
) -> str:
    """Who had the page last: `` (moved by TABLE)``, the table it had before migration.

    Given ``world``, a page still in the frame it had then is `` (left in
    place by TABLE)``; ``""`` when no table is known.
    """
    if moved_by is None:
        return ""
    if isinstance(moved_by, Places):
        table = moved_by.table(record, index)
        before = moved_by.page(record, index) if world is not None and table else None
        if before is not None and world is not None and world.page_of(record, index) is before:
            return f" (left in place by {table})"
    else:
        table = moved_by.get((id(record), index))
    return f" (moved by {table})" if table else ""


def _swap_out(world: fsaops.world.World, area: Area) -> set[int]:
    """Write every page of an area to swap and drop it, as reclaim would; the indexes done.

    A ``VM_LOCKED`` area is unlocked first (``munlock``): the proof needs
    every page on its backing store.  Without a swap device (or a free
    slot) a page stays in memory, and is checked there.
    """
    kernel = world.kernel
    if kernel.swap is None or kernel.swapper_space is None:
        return set()
    area.vma.vm_flags &= ~VM_LOCKED
    table = kernel.swapper_space.a_ops
    done: set[int] = set()
    for index in range(area.npages):
        pte = area.mm.ptes.get(area.start + index)
        page = None if pte is None else pte.page
        if page is None:
            if pte is not None:
                done.add(index)  # already a swap pte
            continue
        page.count += 1  # our reference while we work on it
        lock_page(page)
        try:
            if not page.flags & PG.swapcache and not add_to_swap(page):
                continue
            for _ in range(3):
                if try_to_unmap(page, ignore_refs=True) == SWAP_SUCCESS:
                    break
            if page.mapcount:
                continue
            if page.flags & PG.dirty and table.writepage is not None:
                clear_page_dirty_for_io(page)
                rc = returned(
                    table, "writepage", table.writepage(page, WritebackControl(sync_mode="all"))
                )
                if rc == WRITEPAGE_ACTIVATE:
                    unlock_page(page)
                kernel.run_until_idle()
                lock_page(page)
            if page.flags & PG.dirty:
                continue  # the write did not happen: the page stays, checked in memory
            # Drop it from the swap cache: the process's pte is a swap entry now.
            remove_mapping(kernel.swapper_space, page)
            done.add(index)
        finally:
            if page.flags & PG.locked:
                unlock_page(page)
            put_page(page)
    return done
