"""The accessor tasks: what other tasks do to the pages while the migration runs.

Each accessor is a real task of the explored kernel: it runs the model's
own kernel paths (``handle_mm_fault``, ``generic_file_write``,
``truncate_inode_pages``, the table's ``writepage``, ...), so it stops at
every scheduling point those paths reach, blocks on the locks they take,
and resumes.  Each works on one of the explorer's pages (its *page*), and
on nothing else; ``kjournald`` on the whole mount.

===============  =====================================================================
name             what it does (kernel terms)
===============  =====================================================================
``read-fault``   a process maps the page's file shared and reads it: a fault that
                 finds the page in the page cache (``find_get_page``), reads it in if
                 it is not up to date, and installs a pte; what it read must be a
                 version of the page
``mmap-write``   the process that maps the page stores through its mapping: the pte
                 becomes dirty (a fault first if migration removed the pte)
``write``        ``write(2)`` of the whole page: ``find_lock_page``, the table's
                 ``prepare_write`` and ``commit_write``
``truncate``     ``vmtruncate`` of the page's file to 0: its ptes are zapped (a dirty
                 one dirties the page), then ``truncate_inode_pages``
``writeback``    the flusher writes the page if it is dirty: ``lock_page``,
                 ``clear_page_dirty_for_io``, ``writepage``; the I/O completes in a
                 task of its own.  For anonymous memory: the page's write to swap is
                 in flight when migration starts, and its completion is a task
``kjournald``    ext3's journal commits once (ordered data and journalled buffers
                 are written home and leave the transaction)
``swapin``       the process whose page it is touches it through its swap pte:
                 ``lookup_swap_cache``, ``lock_page``, the V4 1/6 re-check, a new pte;
                 what it read must be a version of the page
``bh-lock``      a reader of one of the page's buffers (:func:`bh_lock_buffer`: page 0
                 the first, page 1 the last): the buffer looked up under
                 ``private_lock`` as ``__find_get_block`` does, a scheduling point
                 with only the buffer's reference held, then ``lock_buffer`` held
                 across an I/O (a write if the buffer is dirty), ``put_bh``;
                 what an up-to-date buffer holds under its lock must be the page's
``pin``          direct I/O: an extra page reference (``find_get_page``, or the
                 process's pte) held across an I/O, then dropped.  A file page is
                 read by the I/O (a write from it), which must read data the page
                 really held; a process's anonymous page is the buffer of a read
                 into it: the I/O writes a new version of its data into the frame
                 it was given and the page is dirtied (``set_page_dirty_lock``),
                 so a page moved while pinned loses that data
===============  =====================================================================
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Final

import attrs

from fsaops.aops import returned
from fsaops.buffer import BH, BufferHead, get_bh, put_bh, unlock_buffer
from fsaops.errors import FsaopsError, KernelBug
from fsaops.mapping import find_get_page
from fsaops.page import PG, Page, get_page, lock_page, put_page, unlock_page
from fsaops.rmap import handle_mm_fault, page_remove_rmap
from fsaops.writeback import WritebackControl, clear_page_dirty_for_io, set_page_dirty

if TYPE_CHECKING:
    from fsaops.aops import AddressSpaceOperations
    from fsaops.explore.runtime import Controller
    from fsaops.explore.setup import ExploredWorld, Target
    from fsaops.mapping import AddressSpace
    from fsaops.rmap import Vma

__all__ = ["ACCESSORS", "Accessor", "accessor", "bh_lock_buffer"]

Body = Callable[[], object]


@attrs.frozen
class Accessor:
    """One kind of accessor task.

    Attributes:
        name: its name in ``--tasks`` (``read-fault``, ``write``, ...).
        summary: what it does, in kernel terms.
        kinds: the pages it applies to: ``buffered`` (file pages with
            buffer heads), ``unbuffered`` (file pages without) and
            ``anonymous`` (anonymous memory, through the swap cache).
        member: a table member it needs (``readpage``, ``writepage``, ...),
            or ``""``.
        needs: what its page must be when migration starts: ``mapped`` (a
            present pte), ``swapped`` (a swap pte: an unmapped swap-cache
            page), ``dirty``, ``writeback`` (a write in flight), or
            ``alone`` (no other accessor on the page).
        journal: it needs a filesystem with a journal (``kjournald``).
        whole_mount: it touches every page of the mount, not one.
    """

    name: str
    summary: str
    kinds: frozenset[str]
    member: str = ""
    needs: frozenset[str] = frozenset()
    journal: bool = False
    whole_mount: bool = False


_FILE: Final = frozenset({"buffered", "unbuffered"})

ACCESSORS: Final[tuple[Accessor, ...]] = (
    Accessor(
        "read-fault",
        "a process reads the page through a shared mapping: a fault installs a pte",
        _FILE,
        member="readpage",
    ),
    Accessor(
        "mmap-write",
        "the process mapping the page stores through its pte, which becomes dirty",
        _FILE | {"anonymous"},
        needs=frozenset({"mapped"}),
    ),
    Accessor(
        "write",
        "write(2) of the page: find_lock_page, prepare_write, commit_write",
        _FILE,
        member="prepare_write",
    ),
    Accessor(
        "truncate",
        "vmtruncate of the page's file to 0: zap its ptes, truncate_inode_pages",
        _FILE,
        member="readpage",
        needs=frozenset({"alone"}),
    ),
    Accessor(
        "writeback",
        "the flusher writes the dirty page: lock_page, clear_page_dirty_for_io, writepage; "
        "the I/O completes in a task of its own (anonymous memory: a swap write in flight)",
        _FILE | {"anonymous"},
        member="writepage",
        needs=frozenset({"dirty"}),
    ),
    Accessor(
        "kjournald",
        "the journal commits once: its buffers are written home and leave the transaction",
        _FILE,
        journal=True,
        whole_mount=True,
    ),
    Accessor(
        "swapin",
        "the process touches its page through its swap pte: lookup_swap_cache, lock_page, "
        "the V4 1/6 re-check, a new pte",
        frozenset({"anonymous"}),
        needs=frozenset({"swapped"}),
    ),
    Accessor(
        "bh-lock",
        "a reader looks a buffer of the page up under private_lock, holds its lock across "
        "an I/O, and drops it",
        frozenset({"buffered"}),
    ),
    Accessor(
        "pin",
        "direct I/O: an extra page reference held across an I/O that reads a file page, "
        "or writes into an anonymous one",
        _FILE | {"anonymous"},
    ),
)
"""Every accessor, in the order the default task list takes them."""


def accessor(name: str) -> Accessor:
    """The accessor called ``name``.

    Raises:
        KeyError: no accessor has that name.
    """
    for found in ACCESSORS:
        if found.name == name:
            return found
    raise KeyError(name)


# -- the bodies ---------------------------------------------------------------------------


class Runtime:
    """What a task body needs at run time and cannot know when it is built: the controller."""

    __slots__ = ("ctl",)

    def __init__(self) -> None:
        self.ctl: Controller | None = None

    def load(self, what: str, page: Page | None) -> None:
        """A scheduling point between two loads of shared state another CPU may change."""
        ctl = self.ctl
        if ctl is not None and ctl.live:
            index, pfn, mask = ctl.page_label(page)
            ctl.point("load", index, pfn, what, mask)

    def io(self, name: str, mask: int, body: Body) -> list[bool]:
        """Submit an I/O whose completion is a task of its own; returns its done flag.

        Outside a schedule the I/O completes at once.
        """
        done = [False]

        def complete() -> None:
            body()
            done[0] = True

        ctl = self.ctl
        if ctl is None or not ctl.live:
            complete()
            return done
        current = ctl.current
        assert current is not None
        ctl.add_io(f"{name}:{len(ctl.tasks)}", current.task, mask, complete, current)
        ctl.point("io_submit", _single_page(mask), -1, name, mask)
        return done

    def wait(self, done: list[bool], what: str, mask: int) -> None:
        """Sleep until an I/O submitted with :meth:`io` completed."""
        ctl = self.ctl
        if done[0] or ctl is None or not ctl.live:
            return
        ctl.block(lambda: done[0], "sleep", _single_page(mask), -1, what, mask)


def _single_page(mask: int) -> int:
    return mask.bit_length() - 1 if mask > 0 and mask & (mask - 1) == 0 else -1


def make_body(name: str, world: ExploredWorld, target: Target, rt: Runtime) -> Body:
    """The body of accessor ``name`` working on ``target`` (objects it needs are made now)."""
    builders: dict[str, Callable[[ExploredWorld, Target, Runtime], Body]] = {
        "read-fault": _read_fault,
        "mmap-write": _mmap_write,
        "write": _write,
        "truncate": _truncate,
        "writeback": _writeback,
        "kjournald": _kjournald,
        "swapin": _swapin,
        "bh-lock": _bh_lock,
        "pin": _pin,
    }
    return builders[name](world, target, rt)


def _read_fault(world: ExploredWorld, target: Target, rt: Runtime) -> Body:
    file = target.file()
    mm = world.world.process(f"reader{target.index}")
    vma = mm.mmap_file(file.inode, target.rindex, 1)
    world.register_process(mm, target.index)
    world.views.append((file, target.rindex, mm, vma))

    record = target.record
    rindex = target.rindex
    name = f"read-fault@{target.index}"
    ps = world.world.page_size
    addr = (vma.vm_start + rindex - vma.vm_pgoff) * ps

    def body() -> None:
        # What the process read must be a version of the page, whatever the
        # page looks like once the schedule is over.
        problem = world.stale_data(record, rindex, mm.read(addr, ps))
        if problem is not None:
            raise FsaopsError(f"{name}: the process read {problem}")

    return body


def _mmap_write(world: ExploredWorld, target: Target, rt: Runtime) -> Body:
    prepared = target.prepared
    mm, vma = prepared.mm, prepared.vma
    if mm is None or vma is None:
        raise KernelBug(f"page {target.index} is not mapped for mmap-write")
    record = target.record
    rindex = target.rindex
    if target.anonymous:

        def store_anon() -> None:
            # The store is numbered as it lands: a direct I/O into the page
            # that completes between the fault and the store is older.
            def landing() -> bytes:
                record.gens[rindex] += 1
                return world.world.expected(record, rindex)

            mm.store(prepared.addr, landing)

        return store_anon
    file = target.file()
    world.views.append((file, rindex, mm, vma))

    def store() -> None:
        world.world.store(file, rindex, mm, vma)

    return store


def _write(world: ExploredWorld, target: Target, rt: Runtime) -> Body:
    file = target.file()

    def body() -> None:
        world.world.rewrite(file, target.rindex)

    return body


def _truncate(world: ExploredWorld, target: Target, rt: Runtime) -> Body:
    from fsaops.mapping import truncate_inode_pages

    file = target.file()
    inode = file.inode
    mapping = inode.i_mapping

    def body() -> None:
        # vmtruncate(inode, 0): the size first, then the mappings, then the cache.
        inode.i_size = 0
        _unmap_mapping_range(mapping)
        truncate_inode_pages(mapping, 0)
        world.truncated.add(id(file))
        file.npages = 0
        file.gens.clear()

    return body


def _unmap_mapping_range(mapping: AddressSpace) -> None:
    """``unmap_mapping_range(mapping, 0, 0, 1)``: zap every pte of the file (``zap_pte_range``)."""
    with mapping.i_mmap_lock:
        vmas = list(mapping.i_mmap)
        for vma in vmas:
            _zap(vma)


def _zap(vma: Vma) -> None:
    mm = vma.mm
    for vpn in range(vma.vm_start, vma.vm_end):
        with mm.page_table_lock:
            pte = mm.ptes.get(vpn)
            if pte is None or pte.page is None:
                continue
            del mm.ptes[vpn]
            page = pte.page
            if pte.dirty:
                set_page_dirty(page)
            page_remove_rmap(page)
            put_page(page)


def _writeback(world: ExploredWorld, target: Target, rt: Runtime) -> Body:
    if target.anonymous:
        # The swap write was started when the world was built; its completion
        # is the task (made from the event in flight).
        def nothing() -> None:
            return None

        return nothing
    mapping = target.file().inode.i_mapping
    table: AddressSpaceOperations = mapping.a_ops
    rindex = target.rindex

    def flusher_writepage() -> None:
        page = find_get_page(mapping, rindex)
        if page is None:
            return
        lock_page(page)
        writepage = table.writepage
        if (
            page.mapping is mapping
            and page.flags & PG.dirty
            and not page.flags & PG.writeback
            and writepage is not None
            and clear_page_dirty_for_io(page)
        ):
            rc = writepage(page, WritebackControl(sync_mode="none", for_reclaim=False))
            returned(table, "writepage", rc)
        else:
            unlock_page(page)
        put_page(page)

    return flusher_writepage


def _kjournald(world: ExploredWorld, target: Target, rt: Runtime) -> Body:
    journal = world.journal()
    if journal is None:
        raise KernelBug("kjournald on a filesystem without a journal")
    commit: Callable[[], object] = getattr(journal, "commit")  # noqa: B009

    def body() -> None:
        commit()

    return body


def _swapin(world: ExploredWorld, target: Target, rt: Runtime) -> Body:
    prepared = target.prepared
    mm = prepared.mm
    if mm is None:
        raise KernelBug(f"anonymous page {target.index} has no process")

    record = target.record
    rindex = target.rindex
    name = f"swapin@{target.index}"
    ps = world.world.page_size

    def body() -> None:
        # What the process read must be a version of the page.
        problem = world.stale_data(record, rindex, mm.read(prepared.addr, ps))
        if problem is not None:
            raise FsaopsError(f"{name}: the process read {problem}")

    return body


def bh_lock_buffer(index: int, per_page: int) -> int:
    """Which buffer of page ``index`` ``bh-lock`` takes: the ring's two ends first.

    Even pages count from the head, odd pages from the tail, so pages 0
    and 1 (where the default runs it) take the first and the last buffer
    (a lock loop one short at either end shows), and pages 0 to
    ``per_page`` - 1 take every buffer once.
    """
    per_page = max(per_page, 1)
    step = (index // 2) % per_page
    return step if index % 2 == 0 else per_page - 1 - step


def _bh_lock(world: ExploredWorld, target: Target, rt: Runtime) -> Body:
    mapping = target.file().inode.i_mapping
    record = target.record
    rindex = target.rindex
    mask = 1 << target.index
    which = bh_lock_buffer(target.index, world.buffers_per_page)

    def find_get_block_lock_buffer() -> None:
        # __find_get_block_slow: a page reference while private_lock is held,
        # a buffer reference kept once both are dropped.
        page = find_get_page(mapping, rindex)
        if page is None:
            return
        bh: BufferHead | None = None
        with mapping.private_lock:
            if page.flags & PG.private:
                rt.load("page_buffers", page)
                head = page.private
                if not isinstance(head, BufferHead):
                    raise KernelBug(
                        f"page_buffers() of pfn {page.pfn} under private_lock: PG_private is "
                        f"set but private is {head!r}, not a buffer head"
                    )
                bh = head
                for _ in range(which):
                    bh = bh.b_this_page
                get_bh(bh)
        put_page(page)
        if bh is None:
            return
        held = bh
        # Only the buffer's reference is held now: on another CPU the
        # migration may lock, move and unlock the buffer before this task
        # locks it (as a holder of a buffer reference, kjournald or a bh
        # LRU's user, may find it at any time).
        rt.load("get_bh", page)
        # lock_buffer(), then an I/O while the lock is held (ll_rw_block /
        # sync_dirty_buffer), which unlocks the buffer when it completes.
        from fsaops.buffer import lock_buffer

        lock_buffer(held)
        # Whoever holds a buffer's lock may read its data: it must be the page's.
        if held.b_state & BH.uptodate:
            offset = held.b_data & (held.b_page.node.page_size - 1)
            problem = world.stale_block(record, rindex, offset, bytes(_buffer_view(held)))
            if problem is not None:
                raise FsaopsError(
                    f"bh-lock@{target.index}: the locked buffer at offset {offset} of pfn "
                    f"{held.b_page.pfn} holds {problem}"
                )
        write = bool(held.b_state & BH.dirty)
        if write:
            held.b_state &= ~BH.dirty
        frame = _buffer_view(held)
        page, data = held.b_page, held.b_data
        bdev = held.b_bdev
        blocknr = held.b_blocknr
        moved: list[str] = []

        def complete() -> None:
            if held.b_page is not page or held.b_data != data:
                # The I/O was given the old frame: in a real machine a freed
                # frame is reused at once, and the DMA moves whatever is there.
                moved.append(_moved_under_lock(held, page, data, blocknr, write))
            if write and bdev is not None and held.b_state & BH.mapped:
                bdev.write(blocknr, frame)  # the DMA reads the frame it was given
            unlock_buffer(held)

        done = rt.io("end_buffer_io", mask, complete)
        rt.wait(done, f"buffer I/O of block {blocknr}", mask)
        put_bh(held)
        if moved:
            raise FsaopsError(f"bh-lock@{target.index}: {moved[0]}")

    return find_get_block_lock_buffer


def _moved_under_lock(bh: BufferHead, page: Page, data: int, blocknr: int, write: bool) -> str:
    """Why a buffer that moved while its lock was held for I/O is wrong, for the message."""
    size = bh.b_size or 1
    was = (data & (page.node.page_size - 1)) // size
    what = "write of" if write else "I/O on"
    return (
        f"buffer head {was} of pfn {page.pfn} moved to pfn {bh.b_page.pfn} while this task held "
        f"its lock for the {what} block {blocknr} (the DMA uses pfn {page.pfn}'s frame, which "
        "the migration frees): the table moved a locked buffer; migratepage must lock_buffer "
        "each buffer before it moves it"
    )


def _buffer_view(bh: BufferHead) -> memoryview:
    """The bytes of a buffer in the frame it is in now (a DMA's address, fixed at submission)."""
    page = bh.b_page
    node = page.node
    off = ((page.pfn - node.start_pfn) << node.page_shift) + (bh.b_data & (node.page_size - 1))
    return node.mem[off : off + bh.b_size]


def _pin(world: ExploredWorld, target: Target, rt: Runtime) -> Body:
    mask = 1 << target.index
    record = target.record
    rindex = target.rindex
    prepared = target.prepared
    mapping = None if target.anonymous else target.file().inode.i_mapping
    mm = prepared.mm
    name = f"pin@{target.index}"

    def grab() -> Page | None:
        while mapping is not None:
            # As a page-cache reader does (do_generic_mapping_read): a page
            # that is not up to date is being read in, or migrated (the new
            # page is locked until the copy is done): wait on its lock.
            page = find_get_page(mapping, rindex)
            if page is None or page.flags & PG.uptodate:
                return page
            lock_page(page)
            ready = page.mapping is mapping and page.flags & PG.uptodate
            unlock_page(page)
            if ready:
                return page
            put_page(page)
            if page.mapping is mapping:
                return None  # a read error: nothing to read
        assert mm is not None
        vpn = prepared.addr // world.world.page_size
        while True:
            # get_user_pages(write=1) for a read into the process's memory:
            # follow the pte if it is present and writable, else fault it in
            # for writing (a read-only pte takes do_wp_page, which may give
            # the process a copy: the I/O then goes to the copy).
            with mm.page_table_lock:
                pte = mm.ptes.get(vpn)
                if pte is not None and pte.page is not None and vpn not in mm.wrprotect:
                    page = pte.page
                    get_page(page)
                    return page
            handle_mm_fault(mm, vpn, True)

    if mapping is None:
        # The process's own memory is the buffer of a read(2) with O_DIRECT.
        def get_user_pages_dio_read() -> None:
            page = grab()
            assert page is not None
            node = page.node
            off = (page.pfn - node.start_pfn) << node.page_shift
            frame = node.mem[off : off + node.page_size]

            def complete() -> None:
                # The DMA writes the frame it was given: what the process now holds.
                record.gens[rindex] += 1
                frame[:] = world.world.expected(record, rindex)

            done = rt.io("end_dio", mask, complete)
            rt.wait(done, f"direct I/O into pfn {page.pfn}", mask)
            # dio_bio_complete: set_page_dirty_lock() on every page read into.
            lock_page(page)
            set_page_dirty(page)
            unlock_page(page)
            put_page(page)

        return get_user_pages_dio_read

    def get_user_pages_dio() -> None:
        page = grab()
        if page is None:
            return
        node = page.node
        off = (page.pfn - node.start_pfn) << node.page_shift
        frame = node.mem[off : off + node.page_size]
        seen: list[bytes] = []

        def complete() -> None:
            seen.append(bytes(frame))  # the DMA reads the frame it was given

        done = rt.io("end_dio", mask, complete)
        rt.wait(done, f"direct I/O of pfn {page.pfn}", mask)
        problem = world.stale_data(record, rindex, seen[0])
        put_page(page)
        if problem is not None:
            raise FsaopsError(f"{name}: the direct I/O read pfn {page.pfn} and got {problem}")

    return get_user_pages_dio
