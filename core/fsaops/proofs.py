"""The proofs behind the verdict: where every page went, and that nothing was lost.

``fsaops migrate`` says OK only when two proofs hold, both asked of the
oracle (:class:`~fsaops.oracle.Oracle`), which reads the machine raw:

**Placement** (:func:`prove_placement`): for every page the world wrote, the
engine's account of it (moved, dropped by ``swap_page``, freed while
waiting, left, failed) matches where it is.  A page counted as moved is in a
frame on the target node, holding its data; its page-cache (or swap-cache)
slot, or its process's pte, points at that frame (under V4 an anonymous
page's pte may be the swap entry whose swap-cache page is that frame); no pte
anywhere still maps the old frame, and the old frame is free.  A page dropped
is in no frame and its data is on its backing store.  A page left or failed
is where it was, intact, in its slot.

**Durability** (:func:`prove_durability`): after the in-memory read-back,
every mapping of a file is torn down (a dirty pte dirties its page), every
mount is synced (every dirty page written back, the journal committed) and
every page of anonymous memory is written to swap and dropped; then every
page is read from its backing store, its file's blocks or its swap slot, and
compared with what was written.  A dirty state lost in migration shows here:
the page read back clean in memory, but the disk never got it.  A table with
no backing store (no ``writepage``, or execute in place) is checked in memory
only, and the proof says which.

Both name each problem's page (its frame, its file and index or its process
and address), its table, and what is wrong.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Final

import attrs

from fsaops.mapping import remove_mapping
from fsaops.oracle import MachineIndex, Oracle
from fsaops.page import PG, lock_page, put_page, unlock_page
from fsaops.rmap import SWAP_SUCCESS, VM_LOCKED, try_to_unmap
from fsaops.swap import add_to_swap
from fsaops.world import Area, File
from fsaops.writeback import (
    WRITEPAGE_ACTIVATE,
    WritebackControl,
    clear_page_dirty_for_io,
    filemap_write_and_wait,
)

if TYPE_CHECKING:
    import fsaops.world
    from fsaops.page import Page
    from fsaops.rmap import Mm, Vma

__all__ = [
    "MAX_PROBLEMS",
    "Outcome",
    "Placed",
    "Proof",
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
            table has no backing store (durability).
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


def snapshot_places(world: fsaops.world.World, nid: int) -> dict[int, Placed]:
    """Every page the world wrote that is in memory on node ``nid``, by pfn, before migration."""
    places: dict[int, Placed] = {}
    records: list[File | Area] = [*world.files, *world.areas]
    for record in records:
        for index in range(record.npages):
            page = world.page_of(record, index)
            if page is None or page.node.nid != nid:
                continue
            places[page.pfn] = Placed(record, index, page, _table_of(world, page))
    return places


def _table_of(world: fsaops.world.World, page: Page) -> str:
    kernel = world.kernel
    if page.flags & PG.swapcache or (page.mapping is not None and page.mapping.anon):
        return kernel.swap_aops_name
    mapping = page.mapping
    return mapping.a_ops.name if mapping is not None else "(no mapping)"  # type: ignore[union-attr]


def _name(before: Placed) -> str:
    return f"pfn {before.page.pfn} ({before.record.describe(before.index)}, {before.table})"


def prove_placement(
    world: fsaops.world.World,
    before: Mapping[int, Placed],
    outcome: Callable[[int], str],
    *,
    target_nid: int,
) -> Proof:
    """Check that every page the engine finished with is where its account says.

    ``before`` is :func:`snapshot_places` taken before migration;
    ``outcome(pfn)`` is the engine's account of the old page: an
    :class:`Outcome` value.  Call it once the migration is over: other tasks
    let go, pages put back, I/O settled.
    """
    oracle = Oracle()
    kernel = world.kernel
    index = oracle.index(kernel)
    problems: list[str] = []
    failures = 0
    for pfn, b in before.items():
        found = _placement_problem(world, oracle, index, b, outcome(pfn), target_nid)
        if found is not None:
            failures += 1
            if len(problems) < MAX_PROBLEMS:
                problems.append(f"{_name(b)}: {found}")
    return Proof("placement", len(before), failures, tuple(problems))


def _placement_problem(
    world: fsaops.world.World,
    oracle: Oracle,
    index: MachineIndex,
    b: Placed,
    how: str,
    target_nid: int,
) -> str | None:
    old = b.page
    now = world.page_of(b.record, b.index)
    if now is None and isinstance(b.record, Area):
        now = _swap_cache_page(world, b.record, b.index)
    expected = world.expected(b.record, b.index)
    ptes = index.ptes
    if how in (Outcome.LEFT, Outcome.FAILED):
        if now is not old:
            where = "no page" if now is None else f"pfn {now.pfn}"
            return f"{how}, so it should still be in its frame, but its place holds {where}"
        if oracle.frame(old) != expected:
            return f"{how}, and the data in its frame is no longer what was written"
        return None
    stale = ptes.get(old.pfn, ())
    if stale:
        return f"counted as {how}, but ptes {list(stale)} still map the old frame (a stale mapping)"
    if old.count != 0:
        return (
            f"counted as {how}, but the old frame was not freed (page_count {old.count}, "
            f"flags {oracle.flag_names(old.flags)})"
        )
    if how == Outcome.FREED:
        return None
    if how == Outcome.DROPPED:
        if now is not None and now.node.nid != target_nid:
            return f"dropped by swap_page, but pfn {now.pfn} on node {now.node.nid} holds it"
        if now is None and not _on_backing_store(world, b, expected):
            return "dropped by swap_page, but its backing store does not hold its data"
        return None
    # Moved to a new frame.
    if now is None:
        return "counted as moved, but no frame holds it and nothing was dropped"
    if now is old:
        return "counted as moved, but its slot still points at the old frame: nothing moved"
    if now.node.nid != target_nid:
        return f"counted as moved, but pfn {now.pfn} holding it is on node {now.node.nid}"
    if oracle.frame(now) != expected:
        return f"moved to pfn {now.pfn}, whose data is not what was written"
    return None


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
    moved_by: Mapping[tuple[int, int], str] | None = None,
) -> Proof:
    """Sync everything, drop what memory holds, and read every page from its backing store.

    ``views`` are the processes' mappings of files, torn down first (a dirty
    pte dirties its page, as ``munmap`` does).  ``moved_by`` names the table
    that moved each page, by ``(id(record), index)``, for the messages.
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
    # Sync: write back every dirty page of every file, and let the journals commit.
    for record in world.files:
        mapping = record.inode.i_mapping
        if record.page_cache and mapping.a_ops.writepage is not None:
            filemap_write_and_wait(mapping)
    kernel.run_until_idle()
    kernel.sched.run_for(SYNC_TICKS)
    kernel.run_until_idle()
    for record in world.files:
        if record.page_cache and record.inode.i_mapping.a_ops.writepage is not None:
            filemap_write_and_wait(record.inode.i_mapping)
    kernel.run_until_idle()
    # Anonymous memory: written to swap and dropped, so it reads back from there.
    swapped_out = {id(area): _swap_out(world, area) for area in world.areas}
    kernel.run_until_idle()
    problems: list[str] = []
    failures = checked = 0

    def wrong(text: str) -> None:
        nonlocal failures
        failures += 1
        if len(problems) < MAX_PROBLEMS:
            problems.append(text)

    for record in world.files:
        table = record.inode.i_mapping.a_ops.name
        backed = record.page_cache is False or record.inode.i_mapping.a_ops.writepage is not None
        if record.page_cache and not backed:
            memory_only[table] = memory_only.get(table, 0) + record.npages
        for index in range(record.npages):
            checked += 1
            expected = world.expected(record, index)
            if not backed:
                page = world.page_of(record, index)
                if page is None or oracle.frame(page) != expected:
                    wrong(f"{record.describe(index)} ({table}): lost from memory")
                continue
            page = world.page_of(record, index)
            if page is not None and page.flags & PG.dirty:
                wrong(
                    f"{record.describe(index)} ({table}): still dirty after sync, so its "
                    "data never reached the disk"
                )
                continue
            if oracle.on_disk(record.inode, index) != expected:
                who = _who(moved_by, record, index)
                wrong(
                    f"{record.describe(index)} ({table}): the disk does not hold the data "
                    f"written last{who}: a dirty state was lost"
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
                    wrong(f"{area.describe(index)} ({table}): lost from memory")
                continue
            if bytes(swap.slot(pte.swp)) != expected:
                who = _who(moved_by, area, index)
                wrong(
                    f"{area.describe(index)} ({table}): its swap slot does not hold the data "
                    f"written last{who}: a dirty state was lost"
                )
    return Proof("durability", checked, failures, tuple(problems), memory_only)


def _who(moved_by: Mapping[tuple[int, int], str] | None, record: object, index: int) -> str:
    if moved_by is None:
        return ""
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
                rc = table.writepage(page, WritebackControl(sync_mode="all"))
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
