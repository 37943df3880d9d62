"""Buffer heads and the generic block I/O helpers (``fs/buffer.c``).

A page of a block-based filesystem carries one :class:`BufferHead` per
filesystem block in it, linked in a circular ring through
``b_this_page``; the page holds the head in ``private`` with ``PG.private``
set and one extra reference.  ``b_data`` is the buffer's address:
``pfn * page_size + offset``, so ``bh_offset`` is what is left modulo the
page size, as in the kernel.

This module also holds :func:`buffer_migrate_page`, the V4 series' helper
that moves a page with buffers without writing it back.  It calls the
migration helpers the kernel exports (through the kernel's semantics), so
this module does not import the migration engine.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from errno import EAGAIN, EIO, ENOSPC
from typing import TYPE_CHECKING, Any, Final

import attrs

from fsaops.aops import returned
from fsaops.errors import KernelBug
from fsaops.lru import already_on_the_lru

# try_to_release_page lives in mm/filemap.c (fsaops.mapping); the name stays
# importable from here too, where fsaops 0.1 had it.
from fsaops.mapping import AS_EIO, AS_ENOSPC, try_to_release_page
from fsaops.memory import POISON_BYTE
from fsaops.page import (
    PG,
    Page,
    PG_dirty,
    PG_locked,
    PG_lru,
    PG_private,
    PG_waiters,
    PG_writeback,
    end_page_writeback,
    lock_page,
    page_address,
    put_page,
    unlock_page,
    wait_on_page_writeback,
)
from fsaops.spinlock import spin_lock, spin_lock_contended, tag_dirty

if TYPE_CHECKING:
    from collections.abc import Sequence

    from fsaops.fs import BlockDevice, Inode
    from fsaops.kernel import Kernel
    from fsaops.mapping import AddressSpace
    from fsaops.writeback import WritebackControl

__all__ = [
    "BH",
    "BufferHead",
    "GetBlock",
    "WriteInFlight",
    "bh_offset",
    "block_invalidatepage",
    "block_prepare_write",
    "block_read_full_page",
    "block_sync_page",
    "block_write_full_page",
    "buffer_migrate_page",
    "buffers",
    "create_empty_buffers",
    "end_buffer_write",
    "generic_commit_write",
    "generic_get_block",
    "get_bh",
    "journal_head_problem",
    "lock_buffer",
    "mark_buffer_dirty",
    "mpage_readpage",
    "mpage_readpages",
    "mpage_writepages",
    "no_device",
    "nobh_commit_write",
    "nobh_prepare_write",
    "nobh_writepage",
    "page_inode",
    "put_bh",
    "set_bh_page",
    "set_page_dirty_buffers",
    "start_buffer_write",
    "sync_dirty_buffer",
    "try_to_free_buffers",
    "trylock_buffer",
    "unlock_buffer",
]


class BH:
    """Buffer state bits (``enum bh_state_bits``), named without the ``BH_`` prefix.

    Test a bit with ``bh.b_state & BH.dirty``.
    """

    #: The buffer holds valid data (``BH_Uptodate``).
    uptodate = 1 << 0
    #: The buffer is newer than its block on disk (``BH_Dirty``).
    dirty = 1 << 1
    #: The buffer lock: ``lock_buffer`` sleeps for it, ``unlock_buffer`` wakes (``BH_Lock``).
    lock = 1 << 2
    #: I/O was submitted for the buffer at least once (``BH_Req``).
    req = 1 << 3
    #: The buffer has a disk block (``b_blocknr``) (``BH_Mapped``).
    mapped = 1 << 4
    #: The block was just allocated by ``get_block`` and not yet written (``BH_New``).
    new = 1 << 5
    #: A read of the page through its buffers is in flight (``BH_Async_Read``).
    async_read = 1 << 6
    #: A write of the page through its buffers is in flight (``BH_Async_Write``).
    async_write = 1 << 7
    #: Delayed allocation: no block yet, one will be allocated at writeback (``BH_Delay``).
    delay = 1 << 8
    #: The last write of the buffer failed (``BH_Write_EIO``).
    write_io_error = 1 << 9
    #: Owned by the journal (a journal head is attached: ``b_private``).
    jbd = 1 << 10
    #: Dirty as far as the journal is concerned, not yet committed.
    jbddirty = 1 << 11
    #: Somebody sleeps on this buffer's lock (a real thread; the kernel asks its wait queue).
    waiters = 1 << 12

    NAMES: tuple[tuple[int, str], ...] = (
        (uptodate, "uptodate"),
        (dirty, "dirty"),
        (lock, "lock"),
        (req, "req"),
        (mapped, "mapped"),
        (new, "new"),
        (async_read, "async_read"),
        (async_write, "async_write"),
        (delay, "delay"),
        (write_io_error, "write_io_error"),
        (jbd, "jbd"),
        (jbddirty, "jbddirty"),
        (waiters, "waiters"),
    )


BH_lock = BH.lock
BH_waiters = BH.waiters
BH_unlock = BH.lock | BH.waiters  # the bits unlock_buffer() clears


class BufferHead:
    """One filesystem block's worth of a page (``struct buffer_head``).

    Attributes:
        b_state: the ``BH`` bits.
        b_this_page: the next buffer of the same page (a circular ring).
        b_page: the page the buffer's data lives in.
        b_data: the data's address, ``pfn * page_size + offset``.
        b_size: the block size.
        b_blocknr: the device block, when mapped.
        b_bdev: the device.
        b_count: users of the buffer head (``get_bh``/``put_bh``).
        b_private: the filesystem's private data (ext3: the journal's record).
    """

    __slots__ = (
        "b_bdev",
        "b_blocknr",
        "b_count",
        "b_data",
        "b_page",
        "b_private",
        "b_size",
        "b_state",
        "b_this_page",
    )

    b_this_page: BufferHead

    def __init__(self, page: Page, offset: int, size: int, bdev: BlockDevice | None) -> None:
        self.b_state = 0
        self.b_page = page
        self.b_data = (page.pfn << page.node.page_shift) + offset
        self.b_size = size
        self.b_blocknr = 0
        self.b_bdev = bdev
        self.b_count = 0
        self.b_private: Any = None
        self.b_this_page = self

    def __repr__(self) -> str:
        names = [n for bit, n in BH.NAMES if self.b_state & bit]
        return (
            f"<BufferHead pfn={self.b_page.pfn} off={bh_offset(self)} "
            f"block={self.b_blocknr} count={self.b_count} state={'|'.join(names) or '0'}>"
        )

    @property
    def data(self) -> memoryview:
        """The buffer's bytes, a view into its page."""
        off = bh_offset(self)
        return page_address(self.b_page)[off : off + self.b_size]


GetBlock = Callable[["Inode", int, BufferHead, bool], int]
"""``get_block_t``: map file block ``iblock`` into ``bh``; 0 or a negative errno."""


def bh_offset(bh: BufferHead) -> int:
    """The buffer's offset within its page."""
    return bh.b_data & (bh.b_page.node.page_size - 1)


def no_device(bh: BufferHead, op: str) -> KernelBug:
    """The oops of I/O on a mapped buffer without ``b_bdev``, as an error to raise.

    ``submit_bh`` hands ``b_bdev`` to ``generic_make_request``, which
    dereferences it: the kernel oopses there.  The code that submits the
    buffer is not to blame (it found a buffer someone else emptied, a
    ``migratepage`` that moved the page, say), so the error names the
    table whose page it is, and the command line the plugin that provides it.
    """
    mapping = bh.b_page.mapping
    table = getattr(getattr(mapping, "a_ops", None), "name", None)
    table = table if isinstance(table, str) else None
    place = f"buffer head at offset {bh_offset(bh)} of pfn {bh.b_page.pfn}"
    whose = f" ({table})" if table is not None else ""
    return KernelBug(
        f"submit_bh({op}): the {place}{whose} is mapped to block {bh.b_blocknr} "
        "but has no b_bdev (a NULL dereference in generic_make_request)",
        table=table,
    )


_RING_MOST: Final = 4096
"""More buffer heads than any page has (a 4 KiB page has at most 8, of 512 bytes): a walk
of a ring that has not come back to its head by then never will."""


def buffers(head: BufferHead) -> Iterator[BufferHead]:
    """Every buffer of the ring, starting at ``head``.

    Raises:
        KernelBug: the ring does not come back to ``head`` (a ``b_this_page``
            points back into it, not at the head): the kernel's own walk
            would never end.  It names the page's table.
    """
    bh = head
    for _ in range(_RING_MOST):
        yield bh
        bh = bh.b_this_page
        if bh is head:
            return
    raise _not_a_ring(head)


def _not_a_ring(head: BufferHead) -> KernelBug:
    """The ``BUG()`` for a ring of buffer heads that does not come back to ``head``."""
    page: Any = head.b_page
    mapping = getattr(page, "mapping", None)
    a_ops = getattr(mapping, "a_ops", None)
    table = getattr(a_ops, "name", None)
    where = f"pfn {page.pfn}" if isinstance(page, Page) else "a page"
    if isinstance(table, str):
        where += f" ({table})"
    return KernelBug(
        f"the buffer heads of {where} do not come back to the first in {_RING_MOST} steps: "
        "a b_this_page points back into the ring, not at its head, and a walk of it never ends",
        table=table if isinstance(table, str) else None,
    )


def journal_head_problem(bh: BufferHead) -> str | None:
    """What is wrong with the journal's hold on ``bh``, or ``None`` when nothing is.

    A buffer the journal owns (``BH_JBD``) has its journal head in
    ``b_private`` (the kernel's ``bh2jh``), and that journal holds the
    buffer in a transaction until the commit that writes it takes it out
    (and clears the bit): a journal that lost the buffer, or a head that
    is gone, leaves journalled data nothing will write, and the kernel
    dereferences the head when it frees the buffer.  A journal object that
    has a ``holds(bh)`` method (ext3's :class:`Journal`) is asked whether it
    holds ``bh``; one without is taken at its word.  ``BH_JBDDirty`` (data
    only the journal's commit writes) without ``BH_JBD`` is a problem too.
    """
    state = bh.b_state
    if not state & BH.jbd:
        if state & BH.jbddirty:
            return "is BH_JBDDirty but not the journal's (no BH_JBD): no commit will write it"
        return None
    head = bh.b_private
    if head is None:
        return "has BH_JBD but no journal head (b_private is None)"
    holds = getattr(type(head), "holds", None)
    if not callable(holds):
        return None
    try:
        held = holds(head, bh)
    except Exception as exc:  # a journal of a plugin's: name what it did
        return f"has BH_JBD, and asking its journal whether it holds it raised {exc!r:.200}"
    if held is not True:
        return "has BH_JBD, but its journal holds it in no transaction: no commit will write it"
    return None


def sync_dirty_buffer(bh: BufferHead) -> int:
    """Write one dirty buffer to its block now and wait (``sync_dirty_buffer``).

    Its page stays as it is: a dirty page keeps ``PG_dirty`` with this
    buffer clean, as a page whose write(2) covered only some of its blocks
    has.  Returns 0, or ``-EIO`` for a buffer with no block to write to.
    """
    lock_buffer(bh)
    try:
        if not bh.b_state & BH.dirty:
            return 0
        if not bh.b_state & BH.mapped:
            return -EIO
        bdev = bh.b_bdev
        if bdev is None:
            raise no_device(bh, "WRITE")
        bh.b_state &= ~BH.dirty
        bdev.write(bh.b_blocknr, bh.data)
        bh.b_state |= BH.uptodate | BH.req
        return 0
    finally:
        unlock_buffer(bh)


@attrs.frozen
class WriteInFlight:
    """A write of one buffer's block, submitted and not yet ended (``submit_bh(WRITE, bh)``).

    The request names the frame the buffer was on when it was submitted
    (``bh->b_page`` and the offset in it), not the buffer head: the device
    reads those bytes while the request is in flight, whatever the buffer
    head says by then.  That is why ``buffer_migrate_page`` takes every
    buffer's lock before it moves the buffers: one it moves while its write
    is in flight leaves the write reading a frame the migration frees.

    Attributes:
        page: the frame the bytes are read from.
        offset: where in it.
        bdev: the device written.
        blocknr: the block written.
        size: bytes written (the buffer's size).
    """

    page: Page
    offset: int
    bdev: BlockDevice
    blocknr: int
    size: int


def start_buffer_write(bh: BufferHead) -> WriteInFlight | None:
    """Start writing a locked buffer's block (``ll_rw_block(WRITE)``): the request in flight.

    The buffer's dirty bit goes with the request (``test_clear_buffer_dirty``):
    its page keeps ``PG_dirty`` if it had it.  A buffer that maps no block
    has nothing to write: ``None``, and the buffer is only locked.
    """
    state = bh.b_state
    if not state & BH.mapped or bh.b_bdev is None:
        return None
    bh.b_state = state & ~BH.dirty
    page = bh.b_page
    return WriteInFlight(page, bh_offset(bh), bh.b_bdev, bh.b_blocknr, bh.b_size)


def end_buffer_write(bh: BufferHead, write: WriteInFlight) -> None:
    """The write in flight ends (``end_buffer_write_sync``): the block gets its frame's bytes.

    The device took the bytes the frame it was submitted from holds as the
    request ends; a frame freed since holds nothing anyone may read, so the
    block gets poison (``POISON_BYTE``), as a reused frame would give it
    another page's bytes.  The buffer is then up to date; its caller
    unlocks it.
    """
    page = write.page
    if page.count > 0:
        data = bytes(page_address(page)[write.offset : write.offset + write.size])
    else:
        data = bytes([POISON_BYTE]) * write.size
    write.bdev.write(write.blocknr, data, counted=False)  # another task's I/O, not the code's
    bh.b_state |= BH.uptodate


def get_bh(bh: BufferHead) -> None:
    """Take a reference on a buffer head."""
    bh.b_count += 1


def put_bh(bh: BufferHead) -> None:
    """Drop a reference on a buffer head."""
    count = bh.b_count - 1
    bh.b_count = count
    if count < 0:
        raise KernelBug(f"put_bh() below zero: {bh!r}")


def trylock_buffer(bh: BufferHead) -> bool:
    """Take the buffer lock if it is free; True on success."""
    state = bh.b_state
    if state & BH_lock:
        page = bh.b_page
        if page is not None:
            sched = page.node.kernel.sched
            sched.buffer_tried(bh)  # another task's I/O: it ends soon
            sched.tried(bh, "buffer lock")  # a spin on it lets time pass
        return False
    bh.b_state = state | BH_lock
    return True


def lock_buffer(bh: BufferHead) -> None:
    """Take the buffer lock, sleeping until it is free (``lock_buffer``)."""
    state = bh.b_state
    if not state & BH_lock:
        bh.b_state = state | BH_lock
        return
    sched = bh.b_page.node.kernel.sched
    while not trylock_buffer(bh):
        sched.wait_on_buffer_bit(bh, BH_lock, "buffer lock")


def unlock_buffer(bh: BufferHead) -> None:
    """Release the buffer lock and wake its waiters."""
    state = bh.b_state
    bh.b_state = state & ~(BH_lock | BH_waiters)
    if state & BH_waiters:
        bh.b_page.node.kernel.sched.wake_buffer(bh)


def set_bh_page(bh: BufferHead, page: Page, offset: int) -> None:
    """Point a buffer at ``offset`` within ``page`` (``set_bh_page``)."""
    bh.b_page = page
    bh.b_data = (page.pfn << page.node.page_shift) + offset


def attach_page_buffers(page: Page, head: BufferHead) -> None:
    """Hang a ring of buffers on a page: a reference, ``PG.private`` and ``private``."""
    page.count += 1
    page.flags |= PG.private
    page.private = head


def create_empty_buffers(page: Page, blocksize: int, b_state: int = 0) -> BufferHead:
    """Give a page a ring of unmapped buffers (``create_empty_buffers``)."""
    mapping = page.mapping
    bdev = getattr(mapping, "bdev", None)
    ps = page.node.page_size
    bhs = [BufferHead(page, off, blocksize, bdev) for off in range(0, ps, blocksize)]
    for i, bh in enumerate(bhs):
        bh.b_state = b_state
        bh.b_this_page = bhs[(i + 1) % len(bhs)]
    head = bhs[0]
    lock = getattr(mapping, "private_lock", None)
    if lock is not None:
        lock.acquire()
    try:
        if page.flags & (PG.dirty | PG.uptodate):
            for bh in bhs:
                if page.flags & PG.dirty:
                    bh.b_state |= BH.dirty
                if page.flags & PG.uptodate:
                    bh.b_state |= BH.uptodate
        attach_page_buffers(page, head)
    finally:
        if lock is not None:
            lock.release()
    return head


def _buffer_busy(bh: BufferHead) -> bool:
    return bool(bh.b_count or bh.b_state & (BH.dirty | BH.lock))


def _drop_buffers(page: Page) -> bool:
    head: BufferHead = page.private
    for bh in buffers(head):
        mapping = page.mapping
        if bh.b_state & BH.write_io_error and mapping is not None and not mapping.anon:
            mapping.flags |= 1  # type: ignore[union-attr]  # AS_EIO
        if _buffer_busy(bh):
            return False
    for bh in list(buffers(head)):  # unlinked once walked: each is freed on its own
        bh.b_this_page = bh
    page.flags &= ~PG.private
    page.private = 0
    put_page(page)
    return True


def try_to_free_buffers(page: Page) -> int:
    """Free a locked page's buffers if none is busy (``try_to_free_buffers``).

    A buffer is busy when it is referenced, dirty or locked.  Returns 1 on
    success; the page then no longer has ``PG.private`` and its reference.
    """
    if not page.flags & PG.locked:
        raise KernelBug(f"try_to_free_buffers() of an unlocked page: {page!r}")
    if page.flags & PG.writeback:
        return 0
    mapping = page.mapping
    if mapping is None or mapping.anon:
        return int(_drop_buffers(page))
    private_lock = mapping.private_lock  # type: ignore[union-attr]
    spin_lock(private_lock, "private_lock", mapping)
    try:
        ok = _drop_buffers(page)
        if ok:
            # Clean buffers against a dirty page (ext3 writes its buffers by
            # hand): the page must not stay dirty without buffers to say where.
            page.flags &= ~PG.dirty
    finally:
        private_lock.release()
    return int(ok)


def mark_buffer_dirty(bh: BufferHead) -> None:
    """Dirty a buffer and its page (``mark_buffer_dirty``)."""
    state = bh.b_state
    bh.b_state = state | BH.dirty
    if not state & BH.dirty:
        from fsaops.writeback import set_page_dirty_nobuffers

        set_page_dirty_nobuffers(bh.b_page)


def set_page_dirty_buffers(page: Page) -> int:
    """Dirty a page and every buffer on it (``__set_page_dirty_buffers``).

    The buffers are dirtied under the mapping's ``private_lock``; a page
    that was clean is then tagged dirty in its mapping's page tree, under
    its ``tree_lock`` (the model keeps no tags, but takes the lock as the
    kernel does: a caller that holds either lock already locks up).
    Returns 1 if the page was clean before.
    """
    mapping = page.mapping
    if mapping is not None and not mapping.anon:
        private_lock = mapping.private_lock  # type: ignore[union-attr]
        spin_lock(private_lock, "private_lock", mapping)
        try:
            if page.flags & PG.private:
                for bh in buffers(page.private):
                    bh.b_state |= BH.dirty
        finally:
            private_lock.release()
    elif page.flags & PG.private:
        for bh in buffers(page.private):
            bh.b_state |= BH.dirty
    flags = page.flags
    page.flags = flags | PG.dirty
    if flags & PG.dirty:
        return 0
    if mapping is not None and not mapping.anon:
        tag_dirty(mapping)  # type: ignore[arg-type]
    return 1


def generic_get_block(inode: Inode, iblock: int, bh: BufferHead, create: bool) -> int:
    """Map a file block into ``bh``, allocating when ``create`` (the model's ``get_block``)."""
    had = iblock < len(inode.blocks) and inode.blocks[iblock] != 0
    blocknr = inode.get_block(iblock, create)
    if blocknr:
        bh.b_blocknr = blocknr
        bh.b_bdev = inode.i_sb.s_bdev
        bh.b_state |= BH.mapped
        if not had:
            bh.b_state |= BH.new
    return 0


def page_inode(page: Page) -> Inode:
    """The inode of a page-cache page of a file."""
    mapping = page.mapping
    assert mapping is not None and not mapping.anon, f"not a file page: {page!r}"
    host = mapping.host  # type: ignore[union-attr]
    assert host is not None
    return host


def _page_ring(page: Page, inode: Inode, b_state: int) -> tuple[int, int, BufferHead]:
    """The block size, the page's first file block, and its buffer ring (made if missing)."""
    bs, per_page = _blocks_per_page(page, inode)
    if not page.flags & PG.private:
        create_empty_buffers(page, bs, b_state)
    return bs, page.index * per_page, page.private


def _blocks_per_page(page: Page, inode: Inode) -> tuple[int, int]:
    bs = inode.i_sb.s_blocksize
    return bs, page.node.page_size // bs


def _schedule_io(page: Page) -> int:
    return page.node.kernel.io_latency


def _end_buffer_async_write(bh: BufferHead) -> None:
    page = bh.b_page
    bh.b_state &= ~BH.async_write
    unlock_buffer(bh)
    for other in buffers(bh):
        if other.b_state & BH.async_write:
            return
    # bit_spin_unlock(BH_Uptodate_Lock): a task that slept on the buffer's
    # lock may run on another CPU before writeback of the page ends.
    page.node.kernel.sched.unlocked(page, "BH_Uptodate_Lock")
    if not page.flags & PG_writeback:
        raise KernelBug(_stray_write(bh))
    end_page_writeback(page)


def _stray_write(bh: BufferHead) -> str:
    """The ``BUG`` of a buffer's write that ends on a page not under writeback, with whose it is.

    The page the buffer head points at (``b_page``) is not the one whose
    writeback started the write when a table left the head pointing at
    another page (the old one of a move, freed since): the ring the head
    is in belongs to the page whose ``private`` is one of its heads (found
    through the heads that do point at it).
    """
    page = bh.b_page
    ring = list(buffers(bh))
    ids = {id(b) for b in ring}
    owner = next(
        (b.b_page for b in ring if b.b_page.flags & PG_private and id(b.b_page.private) in ids),
        None,
    )
    said = f"end_page_writeback() on a page not under writeback: {page!r}"
    if owner is None or owner is page:
        return said
    from fsaops.page import page_mapping

    mapping = page_mapping(owner)
    table = "" if mapping is None else f", a page of {mapping.a_ops.name}"
    head = owner.private
    index = next((i for i, b in enumerate(buffers(head)) if b is bh), ring.index(bh))
    return (
        f"{said}: the write of buffer head {index} of pfn {owner.pfn}{table} ended, and that "
        f"buffer head's b_page points at pfn {page.pfn}, not at the page it belongs to"
    )


def block_write_full_page(page: Page, get_block: GetBlock | None, wbc: WritebackControl) -> int:
    """Write a locked page's dirty buffers (``block_write_full_page``).

    Maps unmapped dirty buffers, starts writeback, unlocks the page and
    submits one write per dirty buffer; the writes complete
    ``io_latency`` ticks later, and writeback of the page ends with the
    last.  A buffer past the end of the file is cleaned, not written.
    """
    from fsaops.writeback import redirty_page_for_writepage, set_page_writeback

    get_block = get_block or generic_get_block
    inode = page_inode(page)
    kernel = page.node.kernel
    bs, first_block, head = _page_ring(page, inode, BH.dirty | BH.uptodate)
    last_block = (inode.i_size - 1) // bs if inode.i_size else -1
    to_write: list[BufferHead] = []
    for i, bh in enumerate(buffers(head)):
        block = first_block + i
        if block > last_block:
            bh.b_state = (bh.b_state & ~BH.dirty) | BH.uptodate
            continue
        if bh.b_state & BH.dirty and not bh.b_state & BH.mapped:
            err = get_block(inode, block, bh, True)
            if err:
                redirty_page_for_writepage(wbc, page)
                unlock_page(page)
                return err
            bh.b_state &= ~BH.new
        if bh.b_state & BH.dirty and bh.b_state & BH.mapped:
            lock_buffer(bh)
            if bh.b_state & BH.dirty:
                bh.b_state = (bh.b_state & ~BH.dirty) | BH.async_write
                to_write.append(bh)
            else:
                unlock_buffer(bh)
    set_page_writeback(page)
    unlock_page(page)
    kernel.vmstat.nr_writepage += 1
    if not to_write:
        end_page_writeback(page)
        return 0
    delay = _schedule_io(page)
    for bh in to_write:
        bdev = bh.b_bdev
        if bdev is None:
            raise no_device(bh, "WRITE")
        bdev.write(bh.b_blocknr, bh.data)
        kernel.sched.call_later(delay, _end_buffer_async_write, bh)
    return 0


def block_read_full_page(page: Page, get_block: GetBlock | None = None) -> int:
    """Read a locked page through its buffers (``block_read_full_page``); unlocks it."""
    get_block = get_block or generic_get_block
    inode = page_inode(page)
    bs, first_block, head = _page_ring(page, inode, 0)
    lblock = -(-inode.i_size // bs)  # blocks inside the file: past them, no get_block
    # As the kernel's: PG_mappedtodisk only when every buffer read was mapped
    # already (a ring just made, none mapped, never sets it on a first read).
    fully_mapped = True
    for i, bh in enumerate(buffers(head)):
        if bh.b_state & BH.uptodate:
            continue
        if not bh.b_state & BH.mapped:
            fully_mapped = False
            if first_block + i < lblock:
                get_block(inode, first_block + i, bh, False)
        if bh.b_state & BH.mapped and not bh.b_state & BH.delay:
            bdev = bh.b_bdev
            if bdev is None:
                raise no_device(bh, "READ")
            bdev.read(bh.b_blocknr, bh.data)
        else:
            bh.data[:] = bytes(bs)  # a hole, or past the end of the file: zeroes
        bh.b_state |= BH.uptodate
    page.flags |= PG.uptodate | (PG.mappedtodisk if fully_mapped else 0)
    unlock_page(page)
    return 0


_READ_IN = PG.uptodate | PG.mappedtodisk


def mpage_readpage(page: Page, get_block: GetBlock | None = None) -> int:
    """Read a locked page straight into memory, attaching no buffers (``mpage_readpage``).

    As the kernel's ``do_mpage_readpage``, a page whose blocks are
    consecutive on the device is read with one request, and one whose
    mapped blocks are consecutive and followed only by holes reads them
    and zeroes the rest (a page of holes only is zeroes).  Any other page
    is "confused" (blocks out of line, or a hole before a mapped block):
    it goes to :func:`block_read_full_page`, which attaches buffers and
    reads it block by block.  So does a page that has buffers already (a
    write of part of it left the others unread): what its up-to-date
    buffers hold is newer than the disk.
    """
    if page.flags & PG.private:
        return block_read_full_page(page, get_block)
    inode = page_inode(page)
    sb = inode.i_sb
    bs = sb.s_blocksize
    node = page.node
    ps = node.page_size
    per_page = ps // bs
    first_block = page.index * per_page
    off = (page.pfn - node.start_pfn) << node.page_shift
    data = node.mem[off : off + ps]  # page_address(page)
    run = inode.blocks[first_block : first_block + per_page]
    start = run[0] if len(run) == per_page else 0
    if start and (per_page == 1 or run == list(range(start, start + per_page))):
        sb.s_bdev.read(start, data)
        page.flags |= _READ_IN
        unlock_page(page)
        return 0
    mapped = [inode.get_block(first_block + i, False) for i in range(per_page)]
    first_hole = next((i for i, blocknr in enumerate(mapped) if not blocknr), per_page)
    if any(mapped[first_hole:]) or any(mapped[i] != mapped[0] + i for i in range(1, first_hole)):
        return block_read_full_page(page, get_block)  # confused
    if first_hole:
        sb.s_bdev.read(mapped[0], data[: first_hole * bs])
    data[first_hole * bs :] = bytes(ps - first_hole * bs)  # the holes: zeroes
    page.flags |= PG.uptodate | (PG.mappedtodisk if first_hole == per_page else 0)
    unlock_page(page)
    return 0


def mpage_readpages(
    mapping: AddressSpace, pages: Sequence[Page], get_block: GetBlock | None = None
) -> int:
    """Add new pages to the page cache and read them, no buffers attached (``mpage_readpages``).

    ``pages`` are new pages as readahead hands them over: each has its
    ``index`` set and the caller's one reference.  Each is added to the
    page cache and to its node's inactive list (``add_to_page_cache_lru``),
    read as :func:`mpage_readpage` reads it, and the caller's reference is
    dropped (``page_cache_release``); a page whose slot is already taken
    is only released, as the kernel's is.  The pages end up to date,
    unlocked and clean, exactly as a :func:`mpage_readpage` of each would
    leave them.  As the kernel merges the reads of consecutive blocks into
    one request, pages whose indexes, frames and blocks all follow on are
    read with one copy.  Returns 0.
    """
    if not pages:
        return 0
    inode: Inode = mapping.host  # type: ignore[assignment]
    kernel = mapping.kernel
    intern = kernel.intern
    tree_lock = mapping.tree_lock
    added: list[Page] = []
    for page in pages:
        # add_to_page_cache(page, mapping, page->index), written out: a new
        # page, so the page lock is free.
        flags = page.flags
        if flags & PG_locked:
            raise AssertionError(f"add_to_page_cache() of a locked page: {page!r}")
        index = page.index
        if tree_lock.locked():  # by hand, not with: once for every page read in
            spin_lock_contended(tree_lock, "tree_lock", mapping)
        else:
            tree_lock.acquire()
        try:
            inserted = mapping._insert(index, page)
            if inserted:
                page.flags = flags | PG_locked
                page.count += 1
                page.mapping = mapping
                page.index = intern(index)
        finally:
            tree_lock.release()
        if inserted:
            added.append(page)
        else:
            put_page(page)  # page_cache_release(): the slot was taken
    # lru_cache_add() of every page added, as the kernel's page vector does.
    node = None
    for page in added:
        if page.node is not node:
            if node is not None:
                node.lru_lock.release()
            node = page.node
            node.lru_lock.acquire()
            inactive = node.inactive
        flags = page.flags
        if flags & PG_lru:
            node.lru_lock.release()
            raise already_on_the_lru("lru_cache_add()", page)
        page.flags = flags | PG_lru
        # list_add(page, inactive), written out
        nxt = inactive.lru_next
        page.lru_next = nxt
        page.lru_prev = inactive
        nxt.lru_prev = page
        inactive.lru_next = page
        node.nr_inactive += 1
    if node is not None:
        node.lru_lock.release()
    # do_mpage_readpage() of each, a run of following pages at a time.
    bs = inode.i_sb.s_blocksize
    bdev = inode.i_sb.s_bdev
    blocks = inode.blocks
    i = 0
    n = len(added)
    while i < n:
        first = added[i]
        fnode = first.node
        ps = fnode.page_size
        per_page = ps // bs
        j = i + 1
        while (
            j < n
            and added[j].node is fnode
            and added[j].pfn == first.pfn + (j - i)
            and added[j].index == first.index + (j - i)
        ):
            j += 1
        lo = first.index * per_page
        hi = lo + (j - i) * per_page
        start = blocks[lo] if hi <= len(blocks) else 0
        if start and blocks[lo:hi] == list(range(start, start + hi - lo)):
            off = (first.pfn - fnode.start_pfn) << fnode.page_shift
            bdev.read(start, fnode.mem[off : off + (j - i) * ps])
            for page in added[i:j]:
                flags = page.flags  # the read is in: up to date, then unlock_page()
                page.flags = (flags | _READ_IN) & ~(PG_locked | PG_waiters)
                if flags & PG_waiters:
                    kernel.sched.wake_page(page)
        else:
            for page in added[i:j]:
                mpage_readpage(page, get_block)
        i = j
    for page in added:
        put_page(page)  # page_cache_release(): the page cache keeps its own
    return 0


def block_prepare_write(page: Page, start: int, end: int, get_block: GetBlock | None = None) -> int:
    """Map and, where partly overwritten, read the blocks ``[start, end)`` will touch."""
    get_block = get_block or generic_get_block
    inode = page_inode(page)
    bs, first_block, head = _page_ring(page, inode, 0)
    for i, bh in enumerate(buffers(head)):
        b_start, b_end = i * bs, (i + 1) * bs
        if b_end <= start or b_start >= end:
            if page.flags & PG.uptodate:
                bh.b_state |= BH.uptodate
            continue
        if not bh.b_state & BH.mapped and not bh.b_state & BH.delay:
            err = get_block(inode, first_block + i, bh, True)
            if err:
                return err
            if bh.b_state & BH.new:
                bh.b_state &= ~BH.new
                bh.b_state |= BH.uptodate
                data = bh.data
                if b_start < start:
                    data[: start - b_start] = bytes(start - b_start)
                if b_end > end:
                    data[end - b_start :] = bytes(b_end - end)
                continue
        if page.flags & PG.uptodate:
            bh.b_state |= BH.uptodate
        if not bh.b_state & BH.uptodate and (b_start < start or b_end > end):
            if bh.b_state & BH.mapped and not bh.b_state & BH.delay:
                bdev = bh.b_bdev
                if bdev is None:
                    raise no_device(bh, "READ")
                bdev.read(bh.b_blocknr, bh.data)
            else:
                bh.data[:] = bytes(bs)
            bh.b_state |= BH.uptodate
    return 0


def generic_commit_write(page: Page, start: int, end: int) -> int:
    """Mark the written buffers up to date and dirty; grow the file (``generic_commit_write``)."""
    inode = page_inode(page)
    bs = inode.i_sb.s_blocksize
    partial = False
    for i, bh in enumerate(buffers(page.private)):
        b_start, b_end = i * bs, (i + 1) * bs
        if b_end <= start or b_start >= end:
            if not bh.b_state & BH.uptodate:
                partial = True
            continue
        bh.b_state |= BH.uptodate
        mark_buffer_dirty(bh)
    if not partial:
        page.flags |= PG.uptodate
    pos = (page.index << page.node.page_shift) + end
    inode.i_size = max(inode.i_size, pos)
    return 0


def nobh_prepare_write(page: Page, start: int, end: int, get_block: GetBlock | None = None) -> int:
    """``prepare_write`` that attaches no buffers (``nobh_prepare_write``)."""
    inode = page_inode(page)
    bs, per_page = _blocks_per_page(page, inode)
    first_block = page.index * per_page
    data = page_address(page)
    for i in range(per_page):
        b_start, b_end = i * bs, (i + 1) * bs
        if b_end <= start or b_start >= end:
            if not page.flags & PG.uptodate:
                blocknr = inode.get_block(first_block + i, False)
                if blocknr:
                    inode.i_sb.s_bdev.read(blocknr, data[b_start:b_end])
                else:
                    data[b_start:b_end] = bytes(bs)
            continue
        had = inode.get_block(first_block + i, False) != 0
        blocknr = inode.get_block(first_block + i, True)
        if not page.flags & PG.uptodate and (b_start < start or b_end > end):
            if had:
                inode.i_sb.s_bdev.read(blocknr, data[b_start:b_end])
            else:
                data[b_start:b_end] = bytes(bs)
    return 0


def nobh_commit_write(page: Page, start: int, end: int) -> int:
    """``commit_write`` without buffers: the page is up to date and dirty."""
    from fsaops.writeback import set_page_dirty

    inode = page_inode(page)
    page.flags |= PG.uptodate
    set_page_dirty(page)
    pos = (page.index << page.node.page_shift) + end
    inode.i_size = max(inode.i_size, pos)
    return 0


def nobh_writepage(page: Page, wbc: WritebackControl) -> int:
    """Write a page that has no buffers straight to its blocks (``mpage_writepage``).

    As the kernel's, a page whose blocks (allocated here if missing, up to
    the end of the file) are consecutive on the device is written with one
    request.  A page whose blocks are out of line is "confused":
    ``mpage_writepage`` says ``-EAGAIN`` and ``nobh_writepage`` writes it
    with ``__block_write_full_page``, which attaches buffers.  So does a
    page that has buffers already.
    """
    from fsaops.writeback import set_page_writeback

    if page.flags & PG.private:
        return block_write_full_page(page, None, wbc)
    node = page.node
    kernel = node.kernel
    inode = page_inode(page)
    sb = inode.i_sb
    bs = sb.s_blocksize
    ps = node.page_size
    per_page = ps // bs
    first_block = page.index * per_page
    last_block = (inode.i_size - 1) // bs if inode.i_size else -1
    off = (page.pfn - node.start_pfn) << node.page_shift
    data = node.mem[off : off + ps]  # page_address(page)
    run = inode.blocks[first_block : first_block + per_page]
    start = run[0] if len(run) == per_page else 0
    if (
        first_block + per_page - 1 <= last_block
        and start
        and (per_page == 1 or run == list(range(start, start + per_page)))
    ):
        set_page_writeback(page)
        unlock_page(page)
        kernel.vmstat.nr_writepage += 1
        sb.s_bdev.write(start, data)
        kernel.sched.call_later(kernel.io_latency, end_page_writeback, page)  # _schedule_io
        return 0
    # __mpage_writepage: map (allocating) the blocks inside the file, then
    # write them with one request if they follow on.
    count = max(0, min(per_page, last_block - first_block + 1))
    mapped = [inode.get_block(first_block + i, True) for i in range(count)]
    if any(mapped[i] != mapped[0] + i for i in range(1, count)):
        return block_write_full_page(page, None, wbc)  # confused: -EAGAIN, then buffers
    set_page_writeback(page)
    unlock_page(page)
    kernel.vmstat.nr_writepage += 1
    if count:
        sb.s_bdev.write(mapped[0], data[: count * bs])
    kernel.sched.call_later(_schedule_io(page), end_page_writeback, page)
    return 0


def mpage_writepages(
    mapping: AddressSpace, wbc: WritebackControl, get_block: GetBlock | None = None
) -> int:
    """Write a mapping's dirty pages, consecutive blocks in one request (``mpage_writepages``).

    The sweep goes through the dirty pages in index order, as a sync's
    does.  Each page is locked (sleeping if it must), skipped if it left
    the mapping, waited on if under writeback, and has its dirty bit
    cleared.  A page without buffers, inside the file, whose blocks are
    allocated and consecutive joins the request being built when its
    first block follows that request's last one; otherwise that request is
    submitted first.  The page is then set under writeback and unlocked.
    A submitted request copies its pages to the device and, ``io_latency``
    ticks later, one completion ends writeback on every page in it.

    Other pages (with buffers, with a block not yet allocated or out of
    line, or the file's partial last page) go to the table's
    ``writepage`` after the request so far is submitted: the kernel's
    ``confused`` path.  An error from ``writepage`` is recorded on the
    mapping and, as in the kernel, ends the sweep.  Every page written
    either way ends as :func:`nobh_writepage` leaves it.  Returns 0 or
    the error.
    """
    from fsaops.writeback import WRITEPAGE_ACTIVATE, clear_page_dirty_for_io, set_page_writeback

    inode: Inode = mapping.host  # type: ignore[assignment]
    kernel = mapping.kernel
    sb = inode.i_sb
    bs = sb.s_blocksize
    bdev = sb.s_bdev
    blocks = inode.blocks
    writepage = mapping.a_ops.writepage
    ret = 0
    bio: list[Page] = []
    bio_first = 0  # the first block of the request being built
    bio_next = 0  # the block that would follow it
    for page in mapping.pages():  # pagevec_lookup_tag(PAGECACHE_TAG_DIRTY), a whole-file sweep
        if not page.flags & PG_dirty:
            continue
        flags = page.flags  # lock_page(page)
        if flags & PG_locked:
            lock_page(page)
        else:
            page.flags = flags | PG_locked
        if page.mapping is not mapping:  # truncated while we slept
            unlock_page(page)
            continue
        if page.flags & PG_writeback:
            wait_on_page_writeback(page)
        if not clear_page_dirty_for_io(page):
            unlock_page(page)
            continue
        node = page.node
        per_page = node.page_size // bs
        lo = page.index * per_page
        start = blocks[lo] if lo + per_page <= len(blocks) else 0
        if (
            start
            and not page.flags & PG_private
            and (page.index + 1) * node.page_size <= inode.i_size
            and (per_page == 1 or blocks[lo : lo + per_page] == [*range(start, start + per_page)])
        ):
            if bio and start != bio_next:
                _submit_write(kernel, bdev, bio, bio_first)
                bio = []
            if not bio:
                bio_first = start
            bio.append(page)
            bio_next = start + per_page
            set_page_writeback(page)
            unlock_page(page)
            rc = 0
        else:
            # confused: what is built so far goes first, then writepage.
            if bio:
                _submit_write(kernel, bdev, bio, bio_first)
                bio = []
            if writepage is None:
                raise KernelBug(f"{mapping.a_ops.name}: writepages without writepage: {page!r}")
            rc = returned(mapping.a_ops, "writepage", writepage(page, wbc))
            if rc == WRITEPAGE_ACTIVATE:
                unlock_page(page)
            elif rc < 0:
                mapping.flags |= AS_ENOSPC if rc == -ENOSPC else AS_EIO
                ret = rc
        wbc.nr_to_write -= 1
        if rc or wbc.nr_to_write <= 0:
            break
    if bio:
        _submit_write(kernel, bdev, bio, bio_first)
    return ret


def _submit_write(kernel: Kernel, bdev: BlockDevice, pages: list[Page], first_block: int) -> None:
    """Submit a write request of ``pages``, whose blocks follow on from ``first_block``.

    Their data goes to the device (one copy for each run of frames that
    follow on), and one completion ends writeback on all of them.
    """
    kernel.vmstat.nr_writepage += len(pages)
    node = pages[0].node
    ps = node.page_size
    per_page = ps // bdev.block_size
    i = 0
    n = len(pages)
    while i < n:
        first = pages[i]
        fnode = first.node
        j = i + 1
        while j < n and pages[j].node is fnode and pages[j].pfn == first.pfn + (j - i):
            j += 1
        off = (first.pfn - fnode.start_pfn) << fnode.page_shift
        bdev.write(first_block + i * per_page, fnode.mem[off : off + (j - i) * ps])
        i = j
    kernel.sched.call_later(kernel.io_latency, _end_bio_write, pages)


def _end_bio_write(pages: list[Page]) -> None:
    """The request is done: end writeback on every page in it (``mpage_end_io_write``)."""
    for page in pages:
        end_page_writeback(page)


def block_sync_page(page: Page) -> int:
    """Unplug the device queue (``block_sync_page``); I/O in the model is never plugged."""
    return 0


def block_invalidatepage(page: Page, offset: int) -> int:
    """Forget the buffers of a page being truncated from ``offset`` on.

    From offset 0 the buffers are also released (``try_to_release_page``).
    """
    if not page.flags & PG.private:
        return 1
    bs = page.private.b_size
    for i, bh in enumerate(buffers(page.private)):
        if i * bs >= offset:
            lock_buffer(bh)
            bh.b_state &= ~(BH.dirty | BH.mapped | BH.req | BH.new | BH.delay | BH.uptodate)
            unlock_buffer(bh)
    if offset == 0:
        return try_to_release_page(page, 0)
    return 1


def buffer_migrate_page(newpage: Page, page: Page) -> int:
    """Migrate a page with buffers without writing it back (V4 5/6).

    Moves the page's state with :func:`~fsaops.migrate.migrate_page_remove_references`
    (which expects three references: cache, isolation, buffers), then takes
    and locks every buffer, moves ``PG.private``, ``private`` and the
    buffers' reference to the new page, points every buffer at the same
    offset in the new page, copies the contents and flags with
    :func:`~fsaops.migrate.migrate_page_copy`, and unlocks and releases the
    buffers.  A page without buffers goes to :func:`~fsaops.migrate.migrate_page`.

    Returns 0, or ``-EAGAIN`` when the page has no mapping or its references
    do not match (from 2.6.16 what ``migrate_page_remove_references``
    returned: ``-EAGAIN`` or ``-EPERM``).  As in V4, the buffer locks are
    taken and dropped with ``private_lock`` held; the 2.6.16 code does not
    take it (:attr:`~fsaops.semantics.Semantics.buffer_private_lock`).

    The helpers are the ones the kernel exports (its semantics'), as a
    filesystem calls them.
    """
    mapping = page.mapping
    if mapping is None:
        return -EAGAIN
    helpers = mapping.kernel.semantics  # type: ignore[union-attr]
    if not page.flags & PG_private:
        return helpers.migrate_page(newpage, page)
    head: BufferHead = page.private
    rc = helpers.migrate_page_remove_references(newpage, page, 3)
    if rc:
        # V4 to 2.6.16-rc6: 1 means -EAGAIN; 2.6.16 passes the errno through.
        return rc if rc < 0 else -EAGAIN
    # spin_lock(&mapping->private_lock) (V4 to V8), by hand rather than
    # with a with statement, which costs twice as much on this per-page path.
    private_lock = None
    if helpers.buffer_private_lock:
        private_lock = mapping.private_lock  # type: ignore[union-attr]
        if private_lock.locked():
            spin_lock_contended(private_lock, "private_lock", mapping)
        else:
            private_lock.acquire()
    locked = BH_lock
    try:
        # get_bh() and lock_buffer() every buffer of the ring.
        bh = head
        while True:
            bh.b_count += 1
            state = bh.b_state
            if state & locked:
                lock_buffer(bh)
            else:
                bh.b_state = state | locked
            bh = bh.b_this_page
            if bh is head:
                break
        page.flags &= ~PG_private  # ClearPagePrivate(page)
        newpage.private = page.private
        page.private = 0
        page.count -= 1  # put_page(page): the buffers' reference moves to newpage
        newpage.count += 1
        # set_bh_page(bh, newpage, bh_offset(bh)) for every buffer.
        node = newpage.node
        base = newpage.pfn << node.page_shift
        mask = node.page_size - 1
        bh = head
        while True:
            bh.b_page = newpage
            bh.b_data = base + (bh.b_data & mask)
            bh = bh.b_this_page
            if bh is head:
                break
        newpage.flags |= PG_private  # SetPagePrivate(newpage)
    finally:
        if private_lock is not None:
            private_lock.release()
    helpers.migrate_page_copy(newpage, page)
    if private_lock is not None:
        if private_lock.locked():
            spin_lock_contended(private_lock, "private_lock", mapping)
        else:
            private_lock.acquire()
    try:
        # unlock_buffer() and put_bh() every buffer.
        keep = ~BH_unlock
        waiters = BH_waiters
        bh = head
        while True:
            state = bh.b_state
            bh.b_state = state & keep
            if state & waiters:
                newpage.node.kernel.sched.wake_buffer(bh)
            bh.b_count -= 1
            bh = bh.b_this_page
            if bh is head:
                break
    finally:
        if private_lock is not None:
            private_lock.release()
    return 0
