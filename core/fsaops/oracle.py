"""An oracle that reads the machine's state directly, bypassing the code under test.

The conformance suite must not ask a ``migratepage`` implementation (or
the helpers it is built from) whether it did its job.  The :class:`Oracle`
reads the raw state instead: a frame's bytes straight out of its node's
memory, the page-tree slot straight out of ``page_tree``, the buffer ring
by walking ``b_this_page``, the page tables by scanning every process's
ptes, other tasks' holds from their task structures, and file blocks
straight off the block device.  It never calls ``page_address``,
``page_mapping``, ``find_get_page``, ``buffers()`` or any other helper a
filesystem might use or replace.

Its descriptions are sentences in the kernel's terms, so a failing
promise reads like a ``BUG()`` report: "buffer head 2 of pfn 17 still
points at the old page".
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any, Final

import attrs

from fsaops.buffer import BH, BufferHead, journal_head_problem
from fsaops.errors import FsaopsError
from fsaops.fs import generic_file_read
from fsaops.mapping import AddressSpace
from fsaops.page import PG, Page, page_anon

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Iterable, Iterator, Sequence

    import fsaops.world
    from fsaops.fs import BlockDevice, Inode
    from fsaops.kernel import Kernel
    from fsaops.lists import PageList
    from fsaops.rmap import Mm, Pte, Vma
    from fsaops.world import Area, File

__all__ = [
    "RUN_PAGES",
    "BufferState",
    "IoCounters",
    "MachineIndex",
    "MigrationRecord",
    "Oracle",
    "PageState",
    "ReadBack",
    "UnlockedMoves",
    "bdev_change",
    "buffer_changes",
    "dirtied_buffer_problem",
    "first_difference",
    "journalled_dirty_problem",
    "journalled_made_dirty",
    "may_gain",
    "not_its_own_problem",
    "unfreed_buffers",
    "unfreed_buffers_problem",
    "unlocked_move_problem",
]

_NEVER_GAINED: Final = PG.COPIED & ~PG.referenced
"""Flags a moved page has only if the old page had them (``migrate_page_copy``
carries them; nothing else sets them on a locked, isolated page), but for
what :func:`may_gain` allows."""


_WRITTEN_BY: Final = (
    (BH.dirty, "BH_dirty", "writeback"),
    (BH.jbddirty, "BH_JBDDirty", "the journal's commit"),
)
"""The buffer bits that say a buffer's data is still to be written, and who writes it."""

BH_BIT_NAMES: Final = (
    (BH.uptodate, "BH_Uptodate"),
    (BH.dirty, "BH_dirty"),
    (BH.lock, "BH_Lock"),
    (BH.req, "BH_Req"),
    (BH.mapped, "BH_Mapped"),
    (BH.new, "BH_New"),
    (BH.async_read, "BH_Async_Read"),
    (BH.async_write, "BH_Async_Write"),
    (BH.delay, "BH_Delay"),
    (BH.write_io_error, "BH_Write_EIO"),
    (BH.jbd, "BH_JBD"),
    (BH.jbddirty, "BH_JBDDirty"),
    (BH.waiters, "BH_waiters"),
)
"""Every buffer bit, by its kernel name."""

MIGRATION_KEEPS: Final = sum(bit for bit, _ in BH_BIT_NAMES) & ~(BH.lock | BH.waiters | BH.dirty)
"""The buffer bits moving a page leaves as they were (KERNEL-SPEC §7).

``buffer_migrate_page`` takes and drops each buffer's lock (``BH_Lock``,
and the model's ``BH_waiters`` with it) and nothing else; its
``migrate_page_copy`` dirties the new page through ``set_page_dirty``, which
may set ``BH_dirty`` on every buffer of a dirty page, so ``BH_dirty`` is
judged apart (the dirty and data checks)."""


def buffer_changes(was: BufferState, bh: BufferHead, *, keeps: int = MIGRATION_KEEPS) -> list[str]:
    """What moving a page changed in one of its buffer heads, in the kernel's words.

    ``was`` is the buffer head as :meth:`Oracle.snapshot` saw it before the
    move; ``keeps`` the bits to compare (default ``MIGRATION_KEEPS``; a
    judge whose window lets other tasks touch the buffer passes fewer).
    Besides those bits, ``b_size``, ``b_bdev`` and ``b_private`` must be
    what they were (``b_private`` only while ``BH_JBD`` is as it was, when
    ``keeps`` leaves the journal's bits out: a commit detaches its journal
    head).  A mapped buffer's ``b_blocknr`` and ``b_bdev`` are each judge's own
    check.  Each phrase reads
    after "buffer head N of pfn P", as "gained BH_New".
    """
    out = []
    lost = was.state & keeps & ~bh.b_state
    gained = bh.b_state & keeps & ~was.state
    for bits, verb in ((lost, "lost"), (gained, "gained")):
        if bits:
            out.append(f"{verb} {' and '.join(n for b, n in BH_BIT_NAMES if bits & b)}")
    if bh.b_size != was.size:
        out.append(f"has b_size {bh.b_size}, not {was.size}")
    if bh.b_bdev is not was.bdev and not was.state & BH.mapped:
        out.append("has another b_bdev" if bh.b_bdev is not None else "lost its b_bdev")
    same_journal = keeps & BH.jbd or not (was.state ^ bh.b_state) & BH.jbd
    if bh.b_private is not was.private and same_journal:
        out.append(f"has b_private {bh.b_private!r}, not {was.private!r}")
    return out


def _bit_changes(was: int, now: int) -> str:
    """``lost BH_Uptodate; gained BH_New``: the named buffer bits between two ``b_state``."""
    said = []
    for bits, verb in ((was & ~now, "lost"), (now & ~was, "gained")):
        names = [name for bit, name in BH_BIT_NAMES if bits & bit]
        if names:
            said.append(f"{verb} {' and '.join(names)}")
    return "; ".join(said)


def journalled_dirty_problem(i: int, pfn: int, new_pfn: int) -> str:
    """The rule broken by buffer head ``i`` of ``pfn`` (moved to ``new_pfn``).

    For a buffer :func:`journalled_made_dirty` caught.
    """
    return (
        f"buffer head {i} of pfn {pfn} traded BH_JBDDirty for BH_dirty on the move to pfn "
        f"{new_pfn} while its transaction still holds it (BH_JBD): a journalled buffer must "
        "not be BH_dirty, or writeback puts it in place before its transaction commits"
    )


def dirtied_buffer_problem(i: int, pfn: int, new_pfn: int, *, page_dirty: bool) -> str:
    """The rule broken by buffer head ``i`` of ``pfn``, which gained ``BH_dirty`` on the move.

    For a buffer clean before the move (nor ``BH_JBDDirty``) whose page,
    and every pte mapping it, was clean: nothing the move does dirties it.
    ``page_dirty`` is whether the new page is ``PG_dirty``: then the buffer
    is written back for nothing; if not, page writeback never visits it,
    and ``try_to_free_buffers`` finds the page busy for as long as it lives.
    """
    said = (
        f"buffer head {i} of pfn {pfn} gained BH_dirty on the move to pfn {new_pfn}, and "
        "neither the page nor a pte mapping it was dirty: "
    )
    if page_dirty:
        return said + "it would be written back for nothing"
    return said + (
        "a dirty buffer on a clean page, which page writeback never visits and "
        "try_to_free_buffers finds busy: the page can never be freed"
    )


def journalled_made_dirty(was: int, now: int) -> bool:
    """Whether a buffer the journal held as journalled (``BH_JBDDirty``) turned ``BH_dirty``.

    ``was`` and ``now`` are its ``b_state`` before and after.  Still filed
    in its transaction (``BH_JBD``), it must not be ``BH_dirty``: anything
    that writes dirty buffers would put it in place before its transaction
    commits (jbd's ``journal_dirty_metadata`` clears ``BH_dirty``).
    """
    return bool(
        was & BH.jbddirty
        and not was & BH.dirty
        and now & BH.jbd
        and now & BH.dirty
        and not now & BH.jbddirty
    )


def may_gain(a_ops: object, dirtied: bool) -> int:
    """The copied flags a page may gain on its way to its new page, beyond ``PG.referenced``.

    A page that is dirty, or mapped by a dirty pte, goes through
    ``set_page_dirty`` on the way: ``try_to_unmap`` moves a dirty pte's bit
    to the page, and ``migrate_page_copy`` dirties the new page.  When the
    table has a ``set_page_dirty`` of its own, that call may set
    ``PG.checked``, a flag the filesystem owns (ext3 ``data=journal``
    marks a page to journal at ``writepage`` that way).  ``a_ops`` is the
    page's table (anything with a ``set_page_dirty`` attribute, or
    ``None``); ``dirtied`` whether the page or a pte mapping it was dirty.
    """
    if dirtied and getattr(a_ops, "set_page_dirty", None) is not None:
        return PG.checked
    return 0


@attrs.frozen
class IoCounters:
    """Counters of writes the machine made (to tell whether migration wrote a page).

    Attributes:
        writepage: pages whose write ``writepage`` or ``writepages`` started
            (``nr_writepage``).
        pageout: ``writepage`` calls made by ``pageout``.
        pswpout: pages written to swap.
        disk_writes: writes that reached any mounted block device.
    """

    writepage: int
    pageout: int
    pswpout: int
    disk_writes: int

    def since(self, before: IoCounters) -> IoCounters:
        """The writes made after ``before``."""
        return IoCounters(
            self.writepage - before.writepage,
            self.pageout - before.pageout,
            self.pswpout - before.pswpout,
            self.disk_writes - before.disk_writes,
        )

    def any(self) -> bool:
        """Whether any write happened."""
        return bool(self.writepage or self.pageout or self.pswpout or self.disk_writes)

    def describe(self) -> str:
        """``2 writepage call(s), 8 disk write(s)``."""
        parts = [
            f"{self.writepage} writepage call(s)",
            f"{self.pageout} pageout write(s)",
            f"{self.pswpout} swap write(s)",
            f"{self.disk_writes} disk block write(s)",
        ]
        return ", ".join(p for p in parts if not p.startswith("0 "))


class UnlockedMoves:
    """Watches the buffer heads of a page in one ``migratepage`` call for moves made unlocked.

    The kernel moves a buffer to the new page (``set_bh_page``) only with
    the buffer locked: the lock holds off I/O that uses the buffer's frame
    until it ends (KERNEL-SPEC §7 step 4).  A serial run has no such I/O in
    flight, so no end state shows a table that skips ``lock_buffer``.  While
    a watch is on, ``BufferHead.b_page`` is a property over its slot that
    notes a watched buffer head being moved to the new page (its ``b_page``
    changed to it) while ``BH_Lock`` is clear, or is held by another task
    (:attr:`fsaops.sched.Scheduler.buffer_lockers`: a table that moves a
    buffer ``trylock_buffer`` could not lock); :meth:`stop` puts the slot
    back when the last watch ends and says which moved so.  No buffer head
    changes class: what plugin code sees of ``type(bh)`` is as ever.
    """

    __slots__ = ("_bhs", "moved", "newpage")

    def __init__(self, bhs: Iterable[BufferHead], newpage: Page) -> None:
        self.newpage = newpage
        self.moved: list[BufferHead] = []
        self._bhs = list(bhs)
        if not _WATCHES:
            type.__setattr__(BufferHead, "b_page", _WATCHED_B_PAGE)
        for bh in self._bhs:
            _WATCHES.setdefault(id(bh), []).append(self)

    def stop(self) -> list[BufferHead]:
        """End the watch; the buffer heads moved to the new page without their lock held."""
        for bh in self._bhs:
            watches = _WATCHES.get(id(bh), [])
            if self in watches:
                watches.remove(self)
            if not watches:
                _WATCHES.pop(id(bh), None)
        self._bhs = []
        if not _WATCHES and BufferHead.__dict__["b_page"] is _WATCHED_B_PAGE:
            type.__setattr__(BufferHead, "b_page", _B_PAGE)
        return self.moved


def not_its_own_problem(i: int, pfn: int, new_pfn: int) -> str:
    """What the judges say of a new page whose buffer head ``i`` is not the old page's."""
    return (
        f"buffer head {i} of pfn {new_pfn} (pfn {pfn} moved) is not the one pfn {pfn} had: "
        "migratepage must move the page's own buffer heads (set_bh_page), not copies of "
        "them: the original, and whoever holds it or its I/O, stays with the frame the "
        "migration frees"
    )


def unfreed_buffers(ring: Iterable[BufferState]) -> list[int]:
    """Which buffer heads of a page that moved without buffers were neither freed nor let go.

    ``try_to_free_buffers`` frees a ring only when no buffer is busy
    (referenced, dirty or locked) and unlinks each one (``b_this_page``
    points at itself); a table that drops ``page.private`` instead leaves
    the ring whole, on the old frame or pointed at the new page without
    being attached to it (a ring of one buffer links to itself either way:
    it was not freed if it is busy).
    """
    kept = []
    for i, state in enumerate(ring):
        bh = state.bh
        busy = bh.b_count or bh.b_state & (BH.dirty | BH.lock)
        if bh.b_this_page is not bh or busy:
            kept.append(i)
    return kept


def unfreed_buffers_problem(kept: Sequence[int], pfn: int, new_pfn: int) -> str:
    """What the judges say of the buffers a page left behind when it moved without them."""
    which = ", ".join(str(i) for i in kept[:4]) + (", ..." if len(kept) > 4 else "")
    return (
        f"pfn {pfn} moved to pfn {new_pfn} without its buffers, which were never freed "
        f"(buffer head(s) {which} still in their ring): migratepage must move "
        "them with the page, or free them with try_to_release_page first, which refuses "
        "busy ones (dirty, locked or referenced)"
    )


def unlocked_move_problem(i: int, pfn: int, new_pfn: int) -> str:
    """What the judges say of buffer head ``i`` of ``pfn`` moved to ``new_pfn`` unlocked."""
    return (
        f"buffer head {i} of pfn {pfn} was moved to pfn {new_pfn} without its lock held: "
        "migratepage must lock_buffer each buffer before it moves it (I/O in flight on the "
        "buffer goes on using the frame the migration frees)"
    )


_WATCHES: dict[int, list[UnlockedMoves]] = {}
"""The watches of each watched buffer head, by ``id`` (the kit's and ``--strict``'s may nest)."""

_B_PAGE: Final[Any] = BufferHead.__dict__["b_page"]
"""The slot ``BufferHead.b_page``, which the watch's property reads and writes through."""


def _get_b_page(bh: BufferHead) -> Page:
    page: Page = _B_PAGE.__get__(bh, BufferHead)
    return page


def _set_b_page(bh: BufferHead, page: Page) -> None:
    watches = _WATCHES.get(id(bh))
    if watches is not None:
        old = _B_PAGE.__get__(bh)
        if old is not page and (
            not bh.b_state & BH.lock or id(bh) in old.node.kernel.sched.buffer_lockers
        ):
            for watch in watches:
                if page is watch.newpage:
                    watch.moved.append(bh)
    _B_PAGE.__set__(bh, page)


_WATCHED_B_PAGE: Final = property(
    _get_b_page, _set_b_page, doc="The page the buffer's data lives in."
)
"""``BufferHead.b_page`` while a watch is on."""


@attrs.frozen(eq=False)
class BufferState:
    """One buffer head as the oracle saw it."""

    bh: BufferHead
    page: Page
    offset: int
    data_pfn: int
    count: int
    state: int
    blocknr: int = 0
    bdev: BlockDevice | None = None
    size: int = 0
    private: Any = None

    @classmethod
    def of(cls, bh: BufferHead, *, shift: int | None = None) -> BufferState:
        """Read ``bh`` now; its offset and frame too when given its page's ``shift``."""
        offset = data_pfn = 0
        if shift is not None:
            offset = bh.b_data & ((1 << shift) - 1)
            data_pfn = bh.b_data >> shift
        return cls(
            bh,
            bh.b_page,
            offset,
            data_pfn,
            bh.b_count,
            bh.b_state,
            bh.b_blocknr,
            bh.b_bdev,
            bh.b_size,
            bh.b_private,
        )


@attrs.frozen(eq=False)
class PageState:
    """Everything about one page that migration may change, read raw.

    Attributes:
        page: the page itself.
        pfn, flags, count, mapcount, mapping, index, private: its fields.
        data: its frame's bytes.
        ring: its buffer ring (``None`` without ``PG_private`` or a head).
        ring_problem: why the ring could not be walked, if it could not.
        tree: the address space whose page tree it is keyed in (the file's
            mapping, or ``swapper_space`` for a swap-cache page).
        key: its key there (index, or swap entry).
        in_slot: whether that slot holds it.
        slot_pfn: the pfn that slot holds (-1: none).
        ptes: the (pid, page number) of every present pte mapping it.
        holds: references other tasks hold on it.
        locked_by_task: whether another task holds its lock.
        pte_dirty: whether one of those ptes is dirty: the page was written
            through a mapping, and only the pte knows yet.
    """

    page: Page
    pfn: int
    flags: int
    count: int
    mapcount: int
    mapping: object
    index: int
    private: object
    data: bytes
    ring: tuple[BufferState, ...] | None
    ring_problem: str | None
    tree: AddressSpace | None
    key: int
    in_slot: bool
    slot_pfn: int
    ptes: tuple[tuple[int, int], ...]
    holds: int
    locked_by_task: bool
    pte_dirty: bool = False


@attrs.frozen
class MachineIndex:
    """Present ptes and other tasks' holds by page frame, for many snapshots at once.

    Attributes:
        ptes: (pid, page number) of every present pte, by the pfn it maps.
        refs: references other tasks hold, by pfn.
        locks: the pfns whose lock another task holds.
    """

    ptes: dict[int, tuple[tuple[int, int], ...]]
    refs: dict[int, int]
    locks: frozenset[int]


RUN_PAGES = 256
"""Pages the oracle reads back, and compares with what was written, in one go.

A run that reads back as written costs one ``read(2)`` and one comparison;
only a run that differs is looked at page by page.  256 pages of 4 KiB are
1 MiB, which the same memory holds run after run.
"""


def first_difference(a: bytes, b: bytes) -> int:
    """The offset of the first byte where ``a`` and ``b`` differ (the shorter length if none)."""
    return next(
        (i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b))
    )


def _describe_mapping(mapping: object) -> str:
    if mapping is None:
        return "NULL"
    name = getattr(mapping, "name", None)
    if isinstance(name, str) and name:
        return name
    return type(mapping).__name__


def bdev_change(was: object, now: object) -> tuple[str, str]:
    """What a buffer whose ``b_bdev`` went from ``was`` to ``now`` did, and what follows.

    ``("lost its b_bdev", "its next write has no device to go to")``, or, for
    another device, ``("has b_bdev ram1, not ram0,", "its next write goes to
    another device")``.
    """
    if now is None:
        return "lost its b_bdev", "its next write has no device to go to"
    return (
        f"has b_bdev {getattr(now, 'name', now)}, not {getattr(was, 'name', was)},",
        "its next write goes to another device",
    )


class Oracle:
    """Reads page, buffer, page-tree and page-table state without the code under test."""

    # -- formatting ----------------------------------------------------------

    @staticmethod
    def flag_names(flags: int) -> str:
        """``uptodate|dirty|lru``, or ``0``."""
        names = [name for bit, name in PG.NAMES if flags & bit]
        return "|".join(names) or "0"

    # -- raw reads -----------------------------------------------------------

    @staticmethod
    def frame(page: Page) -> bytes:
        """The bytes of the page's frame, read from its node's memory."""
        node = page.node
        off = (page.pfn - node.start_pfn) << node.page_shift
        return bytes(node.mem[off : off + node.page_size])

    @staticmethod
    def write_frame(page: Page, data: bytes) -> None:
        """Overwrite the page's frame (to build states, never to check them)."""
        node = page.node
        off = (page.pfn - node.start_pfn) << node.page_shift
        node.mem[off : off + node.page_size] = data

    @staticmethod
    def tree_of(page: Page) -> AddressSpace | None:
        """The address space whose page tree the page is keyed in, or ``None``."""
        if page.flags & PG.swapcache:
            return page.node.kernel.swapper_space
        mapping = page.mapping
        return mapping if isinstance(mapping, AddressSpace) else None

    @staticmethod
    def key_of(page: Page) -> int:
        """The page's key in its tree: the swap entry of a swap-cache page, else its index."""
        if page.flags & PG.swapcache:
            private = page.private
            return private if isinstance(private, int) else -1
        return page.index

    @staticmethod
    def slot(tree: AddressSpace, key: int) -> Page | None:
        """What slot ``key`` of the tree holds, read from ``page_tree``."""
        slots = tree.page_tree
        return slots[key] if 0 <= key < len(slots) else None

    @staticmethod
    def ring(head: BufferHead) -> tuple[list[BufferHead], str | None]:
        """The buffer ring from ``head``, walked by ``b_this_page``; and a problem, if any."""
        limit = head.b_page.node.page_size // 512 + 1
        found = [head]
        link: object = head.b_this_page
        while link is not head:
            if not isinstance(link, BufferHead):
                return found, f"b_this_page of buffer head {len(found) - 1} is {link!r}"
            bh = link
            if any(bh is seen for seen in found):
                return found, f"the ring loops back to buffer head {found.index(bh)}, not the head"
            found.append(bh)
            if len(found) > limit:
                return found, "the ring is not closed"
            link = bh.b_this_page
        return found, None

    @staticmethod
    def ptes(kernel: Kernel, page: Page) -> tuple[tuple[int, int], ...]:
        """Every present pte mapping the page, by scanning every process's page table."""
        found = []
        for mm in kernel.mms:
            for vpn, pte in mm.ptes.items():
                if pte.page is page:
                    found.append((mm.pid, vpn))
        return tuple(sorted(found))

    @staticmethod
    def pte_dirty(kernel: Kernel, page: Page, ptes: Iterable[tuple[int, int]]) -> bool:
        """Whether a present pte of ``ptes`` (pid, page number) mapping ``page`` is dirty."""
        for pid, vpn in ptes:
            mm = next((m for m in kernel.mms if m.pid == pid), None)
            pte = None if mm is None else mm.ptes.get(vpn)
            if pte is not None and pte.page is page and pte.dirty:
                return True
        return False

    @staticmethod
    def mapped_dirty(page: Page) -> bool:
        """Whether a pte that maps ``page`` is dirty, found through reverse mapping."""
        return any(pte.dirty for _vma, pte in Oracle.ptes_of(page))

    @staticmethod
    def young_ptes(page: Page) -> int:
        """How many ptes that map ``page`` are young, found through reverse mapping."""
        return sum(1 for _vma, pte in Oracle.ptes_of(page) if pte.young)

    @staticmethod
    def mlocked(page: Page) -> bool:
        """Whether a pte of a ``VM_LOCKED`` area maps ``page`` (``mlock``), through reverse mapping.

        ``try_to_unmap`` refuses such a page in every release fsaops models,
        so migration cannot move it while the pte is there.
        """
        from fsaops.rmap import VM_LOCKED

        return any(vma.vm_flags & VM_LOCKED for vma, _pte in Oracle.ptes_of(page))

    @staticmethod
    def ptes_of(page: Page) -> Iterator[tuple[Vma, Pte]]:
        """Each pte that maps ``page``, with its area, found through reverse mapping."""
        mapping = page.mapping
        if not page.mapcount or mapping is None:
            return
        vmas = mapping.vmas if mapping.anon else mapping.i_mmap  # type: ignore[union-attr]
        for vma in vmas:
            vpn = vma.address(page)
            if vpn >= 0:
                pte = vma.mm.ptes.get(vpn)
                if pte is not None and pte.page is page:
                    yield vma, pte

    @staticmethod
    def index(kernel: Kernel) -> MachineIndex:
        """Every present pte and every hold of the machine by page, from one scan of each."""
        ptes: dict[int, list[tuple[int, int]]] = {}
        for mm in kernel.mms:
            pid = mm.pid
            for vpn, pte in mm.ptes.items():
                if pte.page is not None:
                    ptes.setdefault(pte.page.pfn, []).append((pid, vpn))
        refs: dict[int, int] = {}
        locks: set[int] = set()
        for task in kernel.tasks:
            for held in task.holds:
                if held.kind == "page_ref":
                    refs[held.obj.pfn] = refs.get(held.obj.pfn, 0) + 1
                elif held.kind == "page_lock":
                    locks.add(held.obj.pfn)
        return MachineIndex(
            ptes={pfn: tuple(sorted(found)) for pfn, found in ptes.items()},
            refs=refs,
            locks=frozenset(locks),
        )

    @staticmethod
    def holds(kernel: Kernel, page: Page) -> tuple[int, bool]:
        """References other tasks hold on the page, and whether one holds its lock."""
        refs = 0
        locked = False
        for task in kernel.tasks:
            for held in task.holds:
                if held.obj is page:
                    if held.kind == "page_ref":
                        refs += 1
                    elif held.kind == "page_lock":
                        locked = True
        return refs, locked

    @staticmethod
    def io(kernel: Kernel) -> IoCounters:
        """The machine's write counters now."""
        vm = kernel.vmstat
        disk = sum(sb.s_bdev.writes for sb in kernel.super_blocks)
        return IoCounters(vm.nr_writepage, vm.pageout_writepage, vm.pswpout, disk)

    @staticmethod
    def on_disk(inode: Inode, index: int) -> bytes:
        """Page ``index`` of a file as its blocks hold it on the device (zeros for holes)."""
        return Oracle.on_disk_range(inode, index, 1)

    @staticmethod
    def on_disk_range(inode: Inode, first: int, count: int) -> bytes:
        """Pages ``first`` to ``first + count - 1`` of a file as its blocks hold them on the device.

        Read a run of consecutive blocks at a time (zeros for holes).
        """
        sb = inode.i_sb
        bs = sb.s_blocksize
        bdev = sb.s_bdev
        lo = first * (sb.kernel.page_size // bs)
        hi = lo + count * (sb.kernel.page_size // bs)
        out = bytearray((hi - lo) * bs)
        view = memoryview(out)
        blocks = inode.blocks
        iblock = lo
        while iblock < hi:
            blocknr = blocks[iblock] if iblock < len(blocks) else 0
            end = iblock + 1
            if not blocknr:  # a hole: its zeros are already there
                while end < hi and (end >= len(blocks) or not blocks[end]):
                    end += 1
            else:
                while end < hi and end < len(blocks) and blocks[end] == blocknr + end - iblock:
                    end += 1
                bdev.read(blocknr, view[(iblock - lo) * bs : (end - lo) * bs])
            iblock = end
        return bytes(out)

    def snapshot(self, page: Page, *, index: MachineIndex | None = None) -> PageState:
        """Everything about ``page`` that migration may change.

        ``index`` is an :meth:`index` taken for many snapshots at once (the
        page tables and holds are scanned for this page alone otherwise).
        """
        kernel = page.node.kernel
        ring: tuple[BufferState, ...] | None = None
        problem = None
        private = page.private
        if page.flags & PG.private:
            if isinstance(private, BufferHead):
                bhs, problem = self.ring(private)
                shift = page.node.page_shift
                ring = tuple(BufferState.of(bh, shift=shift) for bh in bhs)
            else:
                problem = f"PG_private is set but private is {private!r}, not a buffer head"
        tree = self.tree_of(page)
        key = self.key_of(page)
        held = self.slot(tree, key) if tree is not None else None
        if index is None:
            refs, locked = self.holds(kernel, page)
            ptes = self.ptes(kernel, page)
        else:
            refs = index.refs.get(page.pfn, 0)
            locked = page.pfn in index.locks
            ptes = index.ptes.get(page.pfn, ())
        return PageState(
            page=page,
            pfn=page.pfn,
            flags=page.flags,
            count=page.count,
            mapcount=page.mapcount,
            mapping=page.mapping,
            index=page.index,
            private=private,
            data=self.frame(page),
            ring=ring,
            ring_problem=problem,
            tree=tree,
            key=key,
            in_slot=held is page,
            slot_pfn=held.pfn if held is not None else -1,
            ptes=ptes,
            holds=refs,
            locked_by_task=locked,
            pte_dirty=self.pte_dirty(kernel, page, ptes),
        )

    # -- judgements ----------------------------------------------------------------

    def accounted_references(self, page: Page) -> tuple[int, str]:
        """References on ``page`` the oracle can account for, besides its caller's.

        One for its page-tree slot, one for buffers (``PG_private``), one
        per present pte, one per reference another task holds.  Returns the
        sum and a breakdown such as ``cache 1 + buffers 1 + ptes 0``.
        """
        state = self.snapshot(page)
        cache = 1 if state.in_slot else 0
        buffers = 1 if page.flags & PG.private else 0
        ptes = len(state.ptes)
        total = cache + buffers + ptes + state.holds
        parts = [f"page-tree slot {cache}", f"buffers {buffers}", f"ptes {ptes}"]
        if state.holds:
            parts.append(f"other tasks {state.holds}")
        return total, " + ".join(parts)

    def changes(self, before: PageState, after: PageState) -> list[str]:
        """How the page changed between two snapshots, one sentence per change."""
        pfn = before.pfn
        out: list[str] = []
        if before.flags != after.flags:
            out.append(
                f"pfn {pfn}: flags went from {self.flag_names(before.flags)} "
                f"to {self.flag_names(after.flags)}"
            )
        # References other tasks took or let go of meanwhile are theirs.
        if before.count - before.holds != after.count - after.holds:
            out.append(
                f"pfn {pfn}: page_count went from {before.count} to {after.count}"
                + (
                    f" (other tasks held {before.holds}, then {after.holds})"
                    if before.holds != after.holds
                    else ""
                )
            )
        if before.mapcount != after.mapcount:
            out.append(f"pfn {pfn}: page_mapcount went from {before.mapcount} to {after.mapcount}")
        if before.mapping is not after.mapping:
            out.append(
                f"pfn {pfn}: mapping went from {_describe_mapping(before.mapping)} "
                f"to {_describe_mapping(after.mapping)}"
            )
        if before.index != after.index:
            out.append(f"pfn {pfn}: index went from {before.index} to {after.index}")
        if before.private is not after.private and before.private != after.private:
            out.append(f"pfn {pfn}: private went from {before.private!r} to {after.private!r}")
        if before.data != after.data:
            first = next(
                i for i, (a, b) in enumerate(zip(before.data, after.data, strict=False)) if a != b
            )
            out.append(f"pfn {pfn}: its contents changed (first at byte {first})")
        if before.in_slot and not after.in_slot:
            out.append(f"pfn {pfn}: {self._slot_change(before, after)}")
        if before.ptes != after.ptes:
            out.append(
                f"pfn {pfn}: it was mapped by ptes {list(before.ptes)}, now by {list(after.ptes)}"
            )
        out.extend(self._ring_changes(pfn, before.ring, after.ring))
        return out

    def _slot_change(self, before: PageState, after: PageState) -> str:
        """What broke between a page and the page-tree slot that held it.

        Either the slot holds another page (or none), or it still holds this
        one and the page no longer leads to it: its mapping was cleared or
        changed, its index changed, or it left the swap cache.
        """
        # Look in the tree the page was in: after a move its own mapping is gone.
        tree = before.tree
        name = tree.name if tree is not None else "?"
        now = self.slot(tree, before.key) if tree is not None else None
        if now is not after.page:
            where = "is empty" if now is None else f"holds pfn {now.pfn}"
            return f"slot {before.key} of {name}'s page tree no longer points at it (it {where})"
        if before.flags & PG.swapcache and not after.flags & PG.swapcache:
            how = "PG_swapcache was cleared"
        elif after.tree is None and after.mapping is None:
            how = "its mapping was cleared (NULL)"
        elif after.tree is not tree:
            how = f"its mapping is now {_describe_mapping(after.mapping)}"
        else:
            how = f"its key went from {before.key} to {after.key}"
        return (
            f"slot {before.key} of {name}'s page tree still holds it, but {how}, so the page no "
            "longer leads to its slot"
        )

    @staticmethod
    def _ring_changes(
        pfn: int, before: tuple[BufferState, ...] | None, after: tuple[BufferState, ...] | None
    ) -> list[str]:
        if before is None and after is None:
            return []
        if before is None:
            return [f"pfn {pfn}: it gained buffer heads"]
        if after is None:
            return [f"pfn {pfn}: it lost its buffer heads"]
        if len(before) != len(after) or any(
            a.bh is not b.bh for a, b in zip(before, after, strict=False)
        ):
            return [f"pfn {pfn}: its buffer ring is not the same ring of buffer heads"]
        out = []
        for i, (a, b) in enumerate(zip(before, after, strict=True)):
            if a.page is not b.page or a.data_pfn != b.data_pfn:
                out.append(f"buffer head {i} of pfn {pfn} now points at pfn {b.page.pfn}")
            if a.offset != b.offset:
                out.append(
                    f"buffer head {i} of pfn {pfn}: offset went from {a.offset} to {b.offset}"
                )
            if a.count != b.count:
                out.append(
                    f"buffer head {i} of pfn {pfn}: b_count went from {a.count} to {b.count}"
                )
            if a.state != b.state:
                bits = _bit_changes(a.state, b.state)
                out.append(
                    f"buffer head {i} of pfn {pfn}: b_state went from {a.state:#x} to "
                    f"{b.state:#x}" + (f" ({bits})" if bits else "")
                )
            if a.blocknr != b.blocknr:
                out.append(
                    f"buffer head {i} of pfn {pfn}: b_blocknr went from {a.blocknr} to {b.blocknr}"
                )
            if a.bdev is not b.bdev:
                out.append(f"buffer head {i} of pfn {pfn}: b_bdev changed")
        return out

    # -- what a migration did ------------------------------------------------------

    def new_page_of(self, kernel: Kernel, before: PageState) -> Page | None:
        """The page that holds the place a page had before it migrated, or ``None``.

        The slot of the page tree it was keyed in; for anonymous memory that
        was not in the swap cache yet (or left it as it moved, as from
        2.6.16), the pte of its process, or the swap-cache page of the swap
        entry that pte holds now.
        """
        if before.tree is not None:
            held = self.slot(before.tree, before.key)
            if (
                held is not None
                and before.flags & PG.swapcache
                and (held.mapping is not before.mapping or held.index != before.index)
            ):
                # From 2.6.16 a moved page leaves the swap cache, which frees its
                # entry, and a page the same call adds to the swap cache later may
                # be given that entry: another page's place now, not this one's.
                held = None
            if held is not None or not before.flags & PG.swapcache:
                return held
            if not before.ptes:
                # Only swap ptes mapped it: from 2.6.16 remove_from_swap gives them
                # real ptes to the new page and takes it out of the swap cache.
                return self._unswapped(kernel, before)
        for pid, vpn in before.ptes:
            mm = next((m for m in kernel.mms if m.pid == pid), None)
            pte = None if mm is None else mm.ptes.get(vpn)
            if pte is None:
                continue
            if pte.page is not None:
                return pte.page
            swapper = kernel.swapper_space
            if swapper is not None:
                return self.slot(swapper, pte.swp)
        return None

    @staticmethod
    def _unswapped(kernel: Kernel, before: PageState) -> Page | None:
        """The page a swap-cache page that only swap ptes mapped became, once out of the cache.

        A present pte of the same anonymous memory (``anon_vma``) and index
        maps it; ``None`` when none does (the release keeps swap ptes, or
        the page is gone).
        """
        if before.mapping is None or kernel.semantics.remove_from_swap_caller != "migrate_page":
            return None
        for mm in kernel.mms:
            for pte in mm.ptes.values():
                page = pte.page
                if (
                    page is not None
                    and page is not before.page
                    and page.mapping is before.mapping
                    and page.index == before.index
                ):
                    return page
        return None

    def data_is_safe(self, new: Page, expected: bytes, before: PageState) -> bool:
        """Whether data newer than the backing store survives on ``new``.

        It does if ``new`` is dirty or under writeback, if the journal holds
        its buffers (:func:`~fsaops.buffer.journal_head_problem` finds
        nothing wrong with the hold), or if the backing store (the file's blocks or the swap
        slot) already holds ``expected``.

        Of a file page that was not ``PG_uptodate``, only its uptodate buffers
        hold file data: the others (holes, blocks never read) hold whatever
        the frame held before, and a read would return zeros or the block
        for them, not those bytes.  Only the uptodate buffers are compared.
        """
        if new.flags & (PG.dirty | PG.writeback):
            return True
        if new.mapcount and page_anon(new) and not new.flags & PG.swapcache:
            # Anonymous memory out of the swap cache, mapped by its process (2.6.16's
            # remove_from_swap): like any such page, it has no backing store to reach.
            return True
        head = new.private if new.flags & PG.private else None
        if isinstance(head, BufferHead):
            ring, _problem = self.ring(head)
            if any(
                bh.b_state & (BH.jbd | BH.jbddirty) and journal_head_problem(bh) is None
                for bh in ring
            ):
                return True
        kernel = new.node.kernel
        if new.flags & PG.swapcache:
            swap = kernel.swap
            return swap is not None and bytes(swap.slot(new.private)) == expected
        tree = before.tree
        host = tree.host if tree is not None else None
        if host is None:
            return False
        disk = self.on_disk(host, before.key)
        if disk == expected:
            return True
        if before.flags & PG.uptodate or before.ring is None or before.ring_problem is not None:
            return False
        return all(
            disk[state.offset : state.offset + state.size]
            == expected[state.offset : state.offset + state.size]
            for state in before.ring
            if state.state & BH.uptodate
        )

    def moved_problems(
        self,
        before: PageState,
        page: Page,
        *,
        expected: bytes | None = None,
        new_pfns: Collection[int] | None = None,
        dropped_ok: bool = False,
    ) -> list[str]:
        """What is wrong with a page that migration says moved (KERNEL-SPEC §5, §6, §9.2-3).

        ``before`` is the page as :meth:`snapshot` saw it before migration,
        ``expected`` the data it must hold (default: what it held then),
        ``new_pfns`` the new pages it may have moved to, and ``dropped_ok``
        whether it may instead have been dropped to disk or swap
        (``swap_page``).  The old page keeps only its isolation reference
        and nothing else; the new page holds the slot, the data, the copied
        flags, the dirty state and the buffers, is unlocked, on the LRU, and
        holds exactly the references the oracle accounts for.
        """
        problems: list[str] = []
        pfn = before.pfn
        data = before.data if expected is None else expected
        kernel = page.node.kernel
        held_by_nothing = before.tree is None and not before.ptes
        new = None if held_by_nothing else self.new_page_of(kernel, before)
        if new is page:
            problems.append(
                f"pfn {pfn} is on moved, but its page-tree slot still points at the old page: "
                "nothing moved"
            )
        # What the old page kept comes last: it is usually a consequence.
        leftovers: list[str] = []
        if page.count != 1:
            leftovers.append(
                f"moved pfn {pfn} has page_count {page.count}; only the isolation reference "
                "should be left (1)"
            )
        if page.mapping is not None or page.private or page.mapcount:
            leftovers.append(
                f"moved pfn {pfn} still has mapping {_describe_mapping(page.mapping)}, private "
                f"{page.private!r} or page_mapcount {page.mapcount}"
            )
        kept = page.flags & (PG.swapcache | PG.private | PG.active | PG.locked | PG.dirty)
        if kept:
            leftovers.append(f"moved pfn {pfn} still has flags {self.flag_names(kept)}")
        if held_by_nothing or new is page:
            return problems + leftovers  # freed under us, or nothing moved
        if new is None:
            if not dropped_ok:
                problems.append(f"pfn {pfn} moved, but no page holds its place any more")
            return problems + leftovers  # dropped to disk or swap: the read-back checks it
        if new_pfns is not None and new.pfn not in new_pfns:
            problems.append(f"pfn {pfn} moved to pfn {new.pfn}, which was not on the to list")
        got = self.frame(new)
        if got != data:
            problems.append(
                f"pfn {pfn} moved to pfn {new.pfn} but the contents differ "
                f"(first at byte {first_difference(data, got)})"
            )
        fallback = before.tree is not None and before.tree.a_ops.migratepage is None
        lost = before.flags & PG.COPIED & ~new.flags
        if fallback and before.flags & (PG.dirty | PG.writeback):
            lost = 0  # written out first: writepage owns PG_checked and PG_error on the way
        if lost:
            problems.append(
                f"pfn {pfn} moved to pfn {new.pfn} without flags {self.flag_names(lost)}"
            )
        # PG_referenced and PG_dirty may come from the ptes on the way (try_to_unmap),
        # and PG_checked from the table's set_page_dirty (may_gain).
        dirtied = bool(before.flags & PG.dirty) or before.pte_dirty
        allowed = may_gain(before.tree.a_ops if before.tree is not None else None, dirtied)
        gained = new.flags & _NEVER_GAINED & ~before.flags & ~allowed
        if gained and not fallback:
            problems.append(
                f"pfn {pfn} moved to pfn {new.pfn}, which has flags {self.flag_names(gained)} "
                "the old page never had"
            )
        _refs, locked_by_task = self.holds(kernel, new)
        if new.flags & PG.locked and not locked_by_task:
            problems.append(f"new pfn {new.pfn} was left locked")
        if not new.flags & PG.lru:
            problems.append(f"new pfn {new.pfn} is not on the LRU (move_to_lru was not done)")
        want, parts = self.accounted_references(new)
        if new.count != want:
            problems.append(
                f"new pfn {new.pfn} has page_count {new.count}, expected {want} = {parts}"
            )
        anonymous = before.tree is None or before.flags & PG.swapcache
        newer = before.flags & (PG.dirty | PG.writeback) or before.pte_dirty
        if (newer or anonymous) and not self.data_is_safe(new, data, before):
            nowhere = (
                not anonymous and before.tree is not None and before.tree.a_ops.writepage is None
            )
            problems.append(
                f"dirty pfn {pfn} moved to pfn {new.pfn} clean, with no backing store to write "
                "it to: reclaim would drop it, and its data with it"
                if nowhere
                else f"dirty pfn {pfn} moved to pfn {new.pfn} clean, and its data never reached "
                "the disk"
            )
        elif not newer and not anonymous and not fallback and new.flags & PG.dirty:
            problems.append(
                f"clean pfn {pfn} moved to pfn {new.pfn} dirty (neither the page nor a pte "
                "mapping it was): it would be written back for nothing"
            )
        # A table may release the buffers (try_to_release_page) and move the page
        # without them, as migrate_page does: the data checks judge that.
        if not fallback and before.ring is not None and not new.flags & PG.private:
            unfreed = unfreed_buffers(before.ring)
            if unfreed:
                problems.append(unfreed_buffers_problem(unfreed, pfn, new.pfn))
        if not fallback and before.ring is not None and new.flags & PG.private:
            head = before.ring[0].bh
            ring, trouble = self.ring(head)
            if new.private is not head or not new.flags & PG.private or trouble:
                problems.append(f"the buffers of pfn {pfn} did not follow it to pfn {new.pfn}")
            mask = new.node.page_size - 1
            # b_count is not compared: the journal may drop its references while
            # the engine sleeps (the hook-level promises compare it exactly).
            for i, (state, bh) in enumerate(zip(before.ring, ring, strict=False)):
                if bh is not state.bh:
                    problems.append(not_its_own_problem(i, pfn, new.pfn))
                    continue
                if bh.b_page is page:
                    problems.append(f"buffer head {i} of pfn {pfn} still points at the old page")
                elif bh.b_page is not new or bh.b_data & mask != state.offset:
                    problems.append(
                        f"buffer head {i} of pfn {pfn} is not at offset {state.offset} of "
                        f"pfn {new.pfn}"
                    )
                locker = kernel.sched.buffer_lockers.get(id(bh))
                if locker is not None:
                    problems.append(
                        f"buffer head {i} of pfn {pfn} was moved to pfn {new.pfn} while "
                        f"{locker[0].name} held its lock: migratepage must lock_buffer each "
                        "buffer (sleeping until it is free) before it moves it"
                    )
                elif bh.b_state & BH.lock:
                    problems.append(f"buffer head {i} of pfn {pfn} was left locked")
                if state.state & BH.mapped and bh.b_bdev is not state.bdev:
                    what, then = bdev_change(state.bdev, bh.b_bdev)
                    problems.append(
                        f"buffer head {i} of pfn {pfn} {what} on the move to pfn {new.pfn}: {then}"
                    )
                if state.state & BH.mapped and bh.b_blocknr != state.blocknr:
                    problems.append(
                        f"buffer head {i} of pfn {pfn} was mapped to block {state.blocknr} and "
                        f"is mapped to block {bh.b_blocknr} on pfn {new.pfn}: its writes would "
                        "go over another block"
                    )
                if state.state & BH.uptodate and not bh.b_state & BH.uptodate:
                    problems.append(
                        f"buffer head {i} of pfn {pfn} lost BH_Uptodate on the move to pfn "
                        f"{new.pfn}: the next read would fetch it from disk over its data"
                    )
                # Other tasks may write, write back and commit the buffer in this
                # window: only what none of them changes is compared here.
                problems.extend(
                    f"buffer head {i} of pfn {pfn} {change} on the move to pfn {new.pfn}: "
                    "moving a page changes no buffer's state"
                    for change in buffer_changes(state, bh, keeps=0)
                )
                if state.state & BH.delay and not bh.b_state & (BH.delay | BH.mapped):
                    # Writeback turns BH_Delay into BH_Mapped; nothing else clears it.
                    problems.append(
                        f"buffer head {i} of pfn {pfn} lost BH_Delay on the move to pfn "
                        f"{new.pfn} and has no block: its delayed allocation is forgotten "
                        "(its reservation leaks, and writeback must allocate again)"
                    )
                if journalled_made_dirty(state.state, bh.b_state):
                    problems.append(journalled_dirty_problem(i, pfn, new.pfn))
                    continue
                # A dirty buffer is written by writeback (BH_dirty) or, filed in a
                # journal, by its commit (BH_JBDDirty): one that lost the bit on the
                # way must already be on disk.
                for bit, name, writer in _WRITTEN_BY:
                    if not state.state & bit or bh.b_state & bit:
                        continue
                    lost_at = self._unwritten_buffer(bh, data, state.offset)
                    if lost_at >= 0:
                        problems.append(
                            f"buffer head {i} of pfn {pfn} lost {name} on the move to pfn "
                            f"{new.pfn}, and block {bh.b_blocknr} on disk does not hold its "
                            f"data (first difference at byte {lost_at}): {writer} would "
                            "never write it"
                        )
        return problems + leftovers

    @staticmethod
    def _unwritten_buffer(bh: BufferHead, data: bytes, offset: int) -> int:
        """Where ``bh``'s block on disk first differs from its bytes of ``data``; -1 if it does not.

        A buffer cleaned while its page moved (a journal commit writing it
        out) is safe when its block holds the data.
        """
        size = bh.b_size
        want = data[offset : offset + size]
        bdev = bh.b_bdev
        if bdev is None or not bh.b_state & BH.mapped:
            return first_difference(want, bytes(size))
        got = bytearray(size)
        bdev.read(bh.b_blocknr, memoryview(got))
        return -1 if got == want else first_difference(want, bytes(got))

    def unmoved_problems(
        self,
        before: PageState,
        page: Page,
        *,
        expected: bytes | None = None,
        exact: bool = False,
        written: bool = False,
    ) -> list[str]:
        """What is wrong with a page that migration left where it was (KERNEL-SPEC §3, §5.1-4).

        It holds its data, its slot, its copied flags and its buffers, and
        is not left locked.  Its ptes are as they were, or some of them are
        gone (``try_to_unmap`` took them before it failed) with a dirty
        pte's bit carried to ``PG_dirty``.  With ``exact`` nothing else about
        it may have changed either, apart from what waiting legitimately
        changes (I/O completions, journal commits, other tasks' locks).
        ``written``: the engine's fallback handed the page to ``writepage``,
        which owns ``PG_checked`` and ``PG_error`` on the way.
        """
        after = self.snapshot(page)
        pfn = before.pfn
        problems: list[str] = []
        if page.flags & PG.locked and not after.locked_by_task:
            problems.append(f"pfn {pfn} did not move and was left locked")
        if exact:
            problems.extend(self.changes(_steady(before), _steady(after)))
            return problems
        data = before.data if expected is None else expected
        if after.data != data:
            problems.append(f"pfn {pfn} did not move but its contents changed")
        if before.in_slot and not after.in_slot:
            problems.append(f"pfn {pfn} did not move but {self._slot_change(before, after)}")
        if after.ptes != before.ptes:
            if not set(after.ptes) < set(before.ptes):
                problems.append(f"pfn {pfn} did not move but its ptes changed")
            elif (
                before.pte_dirty
                and not after.pte_dirty
                and not page.flags & PG.dirty
                and not written
                and not self._on_disk_as_in_frame(page, after.data)
            ):
                # try_to_unmap takes some ptes and then fails (a VM_LOCKED area
                # further down i_mmap, a busy page after 2.6.17's fallback
                # unmap): lawful, as long as a dirty pte's bit reached the page.
                problems.append(
                    f"pfn {pfn} did not move and lost its dirty ptes without "
                    "PG_dirty: the data written through them would never be written back"
                )
        lost = before.flags & PG.COPIED & ~page.flags
        if written:
            lost &= ~(PG.checked | PG.error)
        if lost:
            problems.append(f"pfn {pfn} did not move but lost flags {self.flag_names(lost)}")
        for i, state in enumerate(after.ring or ()):
            if state.page is not page:
                problems.append(
                    f"buffer head {i} of pfn {pfn} points at pfn {state.page.pfn}, "
                    "though the page did not move"
                )
        return problems

    @classmethod
    def _on_disk_as_in_frame(cls, page: Page, data: bytes) -> bool:
        """Whether a file page's blocks hold what its frame holds (a table wrote it back itself)."""
        mapping = page.mapping
        inode = getattr(mapping, "host", None)
        if inode is None or getattr(mapping, "anon", False):
            return False
        return cls.on_disk(inode, page.index) == data

    def record(self, pages: Iterable[Page], to: PageList | None = None) -> MigrationRecord:
        """Record pages about to migrate, to judge the outcome by (a :class:`MigrationRecord`)."""
        pages = list(pages)
        index = self.index(pages[0].node.kernel) if pages else None
        return MigrationRecord(
            oracle=self,
            before={page.pfn: self.snapshot(page, index=index) for page in pages},
            pages={page.pfn: page for page in pages},
            new_pfns=frozenset(p.pfn for p in to) if to is not None else frozenset(),
            to_given=to is not None,
        )

    # -- reading everything back ----------------------------------------------------

    def read_back(
        self,
        world: fsaops.world.World,
        *,
        views: Sequence[tuple[File, int, Mm, Vma]] = (),
        progress: Callable[[str, int, int], object] | None = None,
        blame: Callable[[File | Area, int, Page], str] | None = None,
        wrong: list[tuple[File | Area, int, bytes] | None] | None = None,
    ) -> ReadBack:
        """Read every page the world wrote back through the model, and compare.

        Every file is read with ``read(2)`` (execute-in-place files too) and
        every area of anonymous memory through its process's page tables;
        a page that is not in memory is read in from disk or swap, as its
        user would.  ``views`` are file pages that processes map: they are
        read through those processes too, since a pte left pointing at a
        stale page would not show in a file read.  Each page counts once.
        ``blame``, for a wrong page that was in the page cache when it was
        read (not read in by the read-back), returns what to add to its line.
        ``wrong``, when given, gets the file or area and index of the page
        of each problem, and a digest of what it read back (empty when it
        could not be read), in order (``None`` for a problem of no one page).
        """
        through_views: dict[tuple[int, int], str] = {}
        ps = world.page_size
        for record, index, mm, vma in views:
            vpn = vma.vm_start + index - vma.vm_pgoff
            verdict = world.diagnose(mm.read(vpn * ps, ps), record, index)
            if verdict is not None:
                through_views[(id(record), index)] = f"{verdict}, as {mm.name} maps it"
        records: list[File | Area] = [*world.files, *world.areas]
        total = sum(r.npages for r in records)
        checked = lost = corrupted = 0
        problems: list[str] = []
        for owner in records:
            npages = owner.npages
            tree = self._read_in_by_readpage(owner)
            for first in range(0, npages, RUN_PAGES):
                count = min(RUN_PAGES, npages - first)
                # A run is read with one read(2) (or one read of the process's
                # memory) and compared in one comparison; only a run that
                # differs, or that could not be read, is looked at page by page.
                # The run's page-cache slots are noted first (one slice): a page
                # that was not there is read in by the read-back itself.
                cached = None if tree is None else tree[first : first + count]
                try:
                    data: bytes | bytearray | None = world.read_range(owner, first, count)
                except FsaopsError:
                    data = None
                checked += count
                if data is None or not world.matches(owner, first, count, data):
                    verdicts = self._read_back_pages(world, owner, first, count, data, cached)
                elif through_views:
                    verdicts = [(index, None) for index in range(first, first + count)]
                else:
                    verdicts = []  # every page of the run is as written
                for index, verdict in verdicts:
                    found = verdict
                    if found is None and through_views:
                        found = through_views.get((id(owner), index))
                    if found is not None:
                        if found.startswith("lost"):
                            lost += 1
                        else:
                            corrupted += 1
                        if blame is not None and cached is not None:
                            k = index - first
                            held = cached[k] if k < len(cached) else None
                            if held is not None:
                                found += blame(owner, index, held)
                        problems.append(f"{owner.describe(index)}: {found}")
                        if wrong is not None:
                            at = (index - first) * ps
                            got = b"" if data is None else data[at : at + ps]
                            digest = hashlib.blake2b(got, digest_size=16).digest() if got else b""
                            wrong.append((owner, index, digest))
                if progress is not None:
                    progress("check", checked, total)
            grown = self._grown(world, owner)
            if grown is not None:
                pages, said = grown
                corrupted += pages
                problems.append(said)
                if wrong is not None:
                    wrong.append(None)
        return ReadBack(checked, lost, corrupted, tuple(problems))

    @staticmethod
    def _grown(world: fsaops.world.World, owner: File | Area) -> tuple[int, str] | None:
        """A file whose size (``i_size``) is larger than what was written: pages, and why.

        ``read(2)`` and ``stat`` go by ``i_size``: past what was written, a
        read returns bytes nobody wrote (zeroes from holes, or whatever the
        blocks hold), so the file reads back longer than it is.  The pages
        counted are those the extra bytes reach past the last page written
        (one at least).  ``None`` for anonymous memory and a file of the
        right size; a smaller size is the page-by-page read-back's to name.
        """
        from fsaops.world import File  # at run time: fsaops.world imports this module

        if not isinstance(owner, File):
            return None
        inode = owner.inode
        ps = world.page_size
        written = owner.size if owner.size is not None else owner.npages * ps
        size = inode.i_size
        if size <= written:
            return None
        extra = size - written
        try:
            tail = generic_file_read(inode, written, extra)
        except FsaopsError as exc:
            returns = f"a read past byte {written} fails ({exc})"
        else:
            if not any(tail):
                returns = f"a read returns {len(tail)} bytes of zeroes past its end"
            else:
                returns = f"a read returns {len(tail)} bytes past its end that were never written"
        pages = max(1, -(-size // ps) - -(-written // ps))
        name = owner.label if owner.label == owner.key else f"{owner.label} ({owner.key})"
        return pages, (
            f"{name}: corrupted: the file's size (i_size) is {size} bytes "
            f"where {written} were written, so {returns}"
        )

    @staticmethod
    def _read_in_by_readpage(owner: File | Area) -> list[Page | None] | None:
        """The page-cache slots of a file whose pages ``read(2)`` reads in from its blocks.

        Through ``readpages`` (readahead) or ``readpage``.  ``None`` for
        anonymous memory, and for a file that has neither or is read in
        place (execute-in-place).
        """
        inode = getattr(owner, "inode", None)
        if inode is None:
            return None
        a_ops = inode.i_mapping.a_ops
        if (a_ops.readpage is None and a_ops.readpages is None) or a_ops.get_xip_page is not None:
            return None
        tree: list[Page | None] = inode.i_mapping.page_tree
        return tree

    @classmethod
    def _read_back_pages(
        cls,
        world: fsaops.world.World,
        owner: File | Area,
        first: int,
        count: int,
        data: bytes | bytearray | None,
        cached: Sequence[Page | None] | None = None,
    ) -> list[tuple[int, str | None]]:
        """What is wrong with each page of a run that did not read back as written.

        ``data`` is the run as it was read; ``None`` when reading it failed,
        and then each page is read again on its own, to say which cannot be.
        ``cached`` is the run's page-cache slots before it was read, for a
        file read in with ``readpage``: a wrong page that was not in the
        page cache was read in by the read-back, and if its blocks hold its
        data, the table's read member is named (``readpages``, which
        readahead reads with, else ``readpage``), not migration.
        """
        ps = world.page_size
        found: list[tuple[int, str | None]] = []
        for index in range(first, first + count):
            if data is None:
                try:
                    page = world.read(owner, index)
                except FsaopsError as exc:
                    found.append((index, f"lost: cannot be read ({exc})"))
                    continue
            else:
                page = bytes(data[(index - first) * ps : (index - first + 1) * ps])
            verdict = world.diagnose(page, owner, index)
            if verdict is not None and cached is not None:
                k = index - first
                if k >= len(cached) or cached[k] is None:
                    verdict += cls._read_in_without_blocks(world, owner, index)
            found.append((index, verdict))
        return found

    @classmethod
    def _read_in_without_blocks(
        cls, world: fsaops.world.World, owner: File | Area, index: int
    ) -> str:
        """What to add to a wrong page the read-back read in, if its blocks hold its data.

        The table's read member read the page in without them, unless the
        file's size (``i_size``) no longer reaches the page's data, which a
        ``readpage`` rightly reads as zeroes: then the size is named.  Empty
        when the blocks do not hold the page's data (then the data never
        reached the disk, and the read path is not to blame).
        """
        from fsaops.world import File  # at run time: fsaops.world imports this module

        if not isinstance(owner, File) or not owner.inode.blocks:
            return ""
        inode = owner.inode
        if cls.on_disk(inode, index) != world.expected(owner, index):
            return ""
        ps = world.page_size
        written = owner.size if owner.size is not None else owner.npages * ps
        if inode.i_size < min(written, (index + 1) * ps):
            return (
                f", though its blocks hold its data: the file's size (i_size) is "
                f"{inode.i_size} bytes where {written} were written, so a read stops short of it"
            )
        a_ops = inode.i_mapping.a_ops
        # read(2) reads a missing page ahead through readpages, where the table has it.
        member = "readpages" if a_ops.readpages is not None else "readpage"
        return f", though its blocks hold its data: {a_ops.name}.{member} read it in without them"


@attrs.frozen
class ReadBack:
    """What reading every page back found.

    Attributes:
        checked: pages read back and compared.
        lost: pages whose newest data is gone (unreadable, zeroes, an older generation).
        corrupted: pages that read back anything else that is wrong.
        problems: one sentence per lost or corrupted page.
    """

    checked: int
    lost: int
    corrupted: int
    problems: tuple[str, ...]


# The engine legitimately waits these out (writeback, another task's page lock).
_NOT_COMPARED = PG.writeback | PG.reclaim | PG.waiters | PG.locked


def _steady(state: PageState) -> PageState:
    """The part of a page's state that no waiting may change.

    I/O completions and journal commits legitimately change flags and
    buffer states while the engine sleeps.
    """
    ring = state.ring
    if ring is not None:
        ring = tuple(attrs.evolve(b, count=0, state=0) for b in ring)
    return attrs.evolve(state, flags=state.flags & ~_NOT_COMPARED, ring=ring)


@attrs.frozen(eq=False)
class MigrationRecord:
    """Pages recorded by :meth:`Oracle.record` before ``migrate_pages``; :meth:`check` judges after.

    Attributes:
        oracle: the oracle that recorded them.
        before: each page's state before migration, by pfn.
        pages: the pages, by pfn.
        new_pfns: the new pages offered on ``to``.
        to_given: whether there was a ``to`` list (without one, every moved
            page was dropped by ``swap_page``).
    """

    oracle: Oracle
    before: dict[int, PageState]
    pages: dict[int, Page]
    new_pfns: frozenset[int]
    to_given: bool

    def check(
        self, from_: PageList, moved: PageList, failed: PageList, to: PageList | None = None
    ) -> list[str]:
        """Every page on exactly one of from/moved/failed, and each where it is, intact.

        Call it after ``migrate_pages`` returns, before the moved pages are
        put back.
        """
        problems: list[str] = []
        where: dict[int, str] = {}
        for name, pl in (("from", from_), ("moved", moved), ("failed", failed)):
            for page in pl:
                if page.pfn in where:
                    problems.append(f"pfn {page.pfn} is on both {where[page.pfn]} and {name}")
                where[page.pfn] = name
        for pfn in self.before:
            if pfn not in where:
                problems.append(f"pfn {pfn} was on from and is now on none of from/moved/failed")
        for pfn, name in where.items():
            if pfn not in self.before:
                problems.append(f"pfn {pfn} turned up on {name} but was never on from")
        oracle = self.oracle
        for pfn, before in self.before.items():
            page = self.pages[pfn]
            if where.get(pfn) == "moved":
                fallback = before.tree is not None and before.tree.a_ops.migratepage is None
                problems.extend(
                    oracle.moved_problems(
                        before,
                        page,
                        new_pfns=self.new_pfns if self.to_given else None,
                        dropped_ok=fallback or not self.to_given,
                    )
                )
            elif pfn in where:
                problems.extend(oracle.unmoved_problems(before, page))
        if to is not None:
            for page in to:
                if page.mapping is not None or page.flags or page.count != 1 or page.private:
                    problems.append(f"unused new page pfn {page.pfn} was changed: {page!r}")
        return problems
