"""Block devices, mounted filesystems, inodes and file I/O.

Kernel counterparts: ``fs/super.c``, ``fs/inode.c``, ``mm/filemap.c``.

A :class:`BlockDevice` holds real bytes (an anonymous memory map, committed
lazily), so ``writepage`` really writes and a page dropped from the cache
reads back what was written.  A :class:`SuperBlock` is one mounted
filesystem in one mode; its files are :class:`Inode` objects whose blocks
are allocated as the file grows, and whose pages live in the inode's
:class:`~fsaops.mapping.AddressSpace` with the mode's operations table.

:func:`generic_file_read` and :func:`generic_file_write` are ``read(2)``
and ``write(2)``: they go through the page cache and the table's
``readpage``, ``prepare_write`` and ``commit_write``, as the kernel does.
"""

from __future__ import annotations

import bisect
import mmap
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from fsaops.aops import returned
from fsaops.errors import FsaopsError, KernelBug
from fsaops.lru import activate_page, mark_page_accessed
from fsaops.mapping import (
    AddressSpace,
    find_get_page,
    grab_cache_page,
    slot_holds_another_page,
)
from fsaops.memory import anonymous_memory
from fsaops.page import PG, Page, lock_page, page_address, put_page, unlock_page
from fsaops.readahead import VM_MAX_READAHEAD, do_page_cache_readahead
from fsaops.spinlock import spin_lock_contended

_PG_uptodate = PG.uptodate
_PG_referenced = PG.referenced
_PG_active = PG.active
_PG_lru = PG.lru

if TYPE_CHECKING:
    from fsaops.aops import AddressSpaceOperations, FileSystemType
    from fsaops.backing import Committer
    from fsaops.kernel import Kernel

__all__ = [
    "BlockDevice",
    "FillKnown",
    "Inode",
    "SuperBlock",
    "file_read",
    "generic_file_read",
    "generic_file_write",
    "mapping_bdev",
    "read_cache_page",
]


#: What makes the bytes of a run of known contents: ``fill(dst, offset)``
#: writes the run's bytes from byte ``offset`` on into ``dst``.
FillKnown = Callable[[memoryview, int], None]


class _Known:
    """A run of blocks whose contents a function makes when they are read."""

    __slots__ = ("fill", "nblocks", "start", "tag")

    def __init__(self, start: int, nblocks: int, fill: FillKnown, tag: object) -> None:
        self.start = start
        self.nblocks = nblocks
        self.fill = fill
        self.tag = tag


class BlockDevice:
    """A block device with real bytes (``struct block_device``).

    Its bytes are an anonymous memory map that the operating system
    commits as it is first written.  Runs of blocks may instead be given
    *known contents* (:meth:`put_known`): bytes a function makes whenever
    they are read, which is how a world puts the data of files that were
    written long ago on the disk without writing (and committing) it all.
    Reading and writing go through :meth:`read` and :meth:`write`, which
    treat a block of known contents exactly as if those bytes had been
    written to it; a write to such a block replaces its known contents.
    :attr:`mem`, the raw bytes, writes every known block out first, so
    code that reads or writes the bytes directly sees the same device; a
    view of :attr:`mem` kept from before known contents were put does not
    see them, so take :attr:`mem` when it is needed, or use the methods.
    """

    __slots__ = (
        "_known",
        "_lock",
        "_mem",
        "_starts",
        "_virtual",
        "block_size",
        "name",
        "next_free",
        "nr_blocks",
        "past_end",
        "writes",
    )

    def __init__(self, name: str, nr_blocks: int, block_size: int) -> None:
        self.name = name
        self.nr_blocks = nr_blocks
        self.block_size = block_size
        self._mem = memoryview(anonymous_memory(nr_blocks * block_size, f"block device {name}"))
        self.next_free = 1  # block 0 is the superblock
        self.writes = 0
        #: Writes that reached past the last allocated block, where no file has blocks.
        self.past_end = 0
        self._lock = threading.Lock()
        #: One byte per block, 1 where the block still holds known contents
        #: (``None`` until some are put).
        self._virtual: bytearray | None = None
        #: The runs of known contents, by first block (``_starts`` is sorted).
        self._known: list[_Known] = []
        self._starts: list[int] = []

    def __repr__(self) -> str:
        return f"<BlockDevice {self.name} {self.nr_blocks}x{self.block_size}>"

    @property
    def size(self) -> int:
        """The device's size in bytes."""
        return self.nr_blocks * self.block_size

    @property
    def mem(self) -> memoryview:
        """The device's bytes, a writable view (every block of known contents written out first)."""
        if self._virtual is not None:
            with self._lock:
                self._materialize()
        return self._mem

    def alloc_blocks(self, count: int) -> int:
        """Allocate ``count`` consecutive blocks; returns the first block number.

        Raises:
            FsaopsError: the device is full (``-ENOSPC``).
        """
        with self._lock:
            first = self.next_free
            if first + count > self.nr_blocks:
                raise FsaopsError(f"{self.name}: no space left on device (ENOSPC)")
            self.next_free = first + count
        return first

    def read(self, blocknr: int, dst: memoryview) -> None:
        """Read ``len(dst)`` bytes starting at block ``blocknr`` into ``dst``.

        Raises:
            KernelBug: the blocks are not all on the device.
        """
        off = blocknr * self.block_size
        if blocknr < 0 or off + len(dst) > len(self._mem):
            raise self._beyond_end("read", blocknr, len(dst))
        virtual = self._virtual
        if virtual is not None and virtual.find(1, blocknr, self._end(blocknr, len(dst))) >= 0:
            with self._lock:  # the known runs stay as they are while they are read
                self._read_known(blocknr, dst)
            return
        dst[:] = self._mem[off : off + len(dst)]

    def write(self, blocknr: int, src: memoryview | bytes, *, counted: bool = True) -> None:
        """Write ``src`` starting at block ``blocknr``.

        ``counted=False`` leaves the write out of ``writes``: another
        task's I/O ending (a buffer's write in flight), which no code a
        check judges made.

        Raises:
            KernelBug: the blocks are not all on the device.
        """
        off = blocknr * self.block_size
        if blocknr < 0 or off + len(src) > len(self._mem):
            raise self._beyond_end("write", blocknr, len(src))
        if self._virtual is None:
            self._mem[off : off + len(src)] = src
        else:
            with self._lock:  # a read or write-out of known runs sees it all or none of it
                virtual: bytearray | None = self._virtual
                end = self._end(blocknr, len(src))
                if virtual is not None and virtual.find(1, blocknr, end) >= 0:
                    bs = self.block_size
                    if len(src) % bs and virtual[end - 1]:
                        # A block written in part keeps the rest of its known bytes.
                        self._read_known(end - 1, self._mem[(end - 1) * bs : end * bs])
                    virtual[blocknr:end] = bytes(end - blocknr)
                self._mem[off : off + len(src)] = src
        if counted:
            self.writes += 1
        if off + len(src) > self.next_free * self.block_size:
            self.past_end += 1

    def commit_ahead(self, committer: Committer, firsts: Sequence[int], nbytes: int) -> bool:
        """Have ``committer`` commit the memory of ``nbytes`` from each block in ``firsts``.

        For blocks about to be written: the operating system commits their
        memory from ``committer``'s thread instead of a page fault on each
        first write (:mod:`fsaops.backing`).  A hint only: what the blocks
        hold does not change, and anything but a block number on the
        device is left out.
        Returns whether the request was queued.
        """
        owner = self._mem.obj
        if not isinstance(owner, mmap.mmap):
            return False
        bs = self.block_size
        last = self.nr_blocks * bs - nbytes
        starts = [first * bs for first in firsts if type(first) is int and 0 < first * bs <= last]
        return committer.commit_runs(owner, starts, nbytes)

    def put_known(self, blocknr: int, nblocks: int, fill: FillKnown, tag: object = None) -> None:
        """Give blocks ``blocknr`` to ``blocknr + nblocks - 1`` the contents ``fill`` makes.

        From now on they read as if ``fill``'s bytes had been written to
        them, until a write replaces a block's.  ``fill(dst, offset)`` must
        write the same bytes whenever it is asked for the same ones.
        ``tag`` is for :meth:`known` to give back.  Does not count as a
        write.

        Raises:
            ValueError: the blocks are not on the device.
        """
        if blocknr < 0 or nblocks < 0 or blocknr + nblocks > self.nr_blocks:
            raise ValueError(f"{self.name}: blocks {blocknr}+{nblocks} are not on the device")
        if not nblocks:
            return
        end = blocknr + nblocks
        with self._lock:
            # Runs never overlap: one every block of which was written since is
            # dropped; if any other overlaps, the old runs are written out.
            at = bisect.bisect_left(self._starts, end)
            while self._virtual is not None and at > 0:
                run = self._known[at - 1]
                if run.start + run.nblocks <= blocknr:
                    break
                if self._virtual.find(1, run.start, run.start + run.nblocks) >= 0:
                    self._materialize()
                    break
                del self._known[at - 1]
                del self._starts[at - 1]
                at -= 1
            if self._virtual is None:
                self._virtual = bytearray(self.nr_blocks)
            at = bisect.bisect_left(self._starts, blocknr)
            self._starts.insert(at, blocknr)
            self._known.insert(at, _Known(blocknr, nblocks, fill, tag))
            self._virtual[blocknr : blocknr + nblocks] = b"\x01" * nblocks

    def known(self, blocknr: int, nblocks: int) -> tuple[object, int, bytes] | None:
        """The run of known contents that blocks ``blocknr`` to ``blocknr + nblocks - 1`` lie in.

        Returns that run's tag, ``blocknr``'s place in it (in blocks) and,
        for each of the blocks, 1 if it still holds the known contents and
        0 if it was written since; ``None`` when the blocks are not all in
        one run.
        """
        end = blocknr + nblocks
        with self._lock:
            virtual = self._virtual
            if virtual is None or nblocks <= 0:
                return None
            run = self._run_of(blocknr)
            if run is None or end > run.start + run.nblocks:
                return None
            return run.tag, blocknr - run.start, bytes(virtual[blocknr:end])

    def written_match(self, blocknr: int, data: bytes | bytearray) -> bool:
        """Whether the blocks from ``blocknr`` on that do not hold known contents hold ``data``.

        ``data`` covers whole blocks; the blocks that still hold known
        contents are skipped (the caller knows what those hold).
        """
        bs = self.block_size
        end = self._end(blocknr, len(data))
        mem = self._mem
        with self._lock:
            virtual = self._virtual
            if virtual is None:
                return bytes(mem[blocknr * bs : end * bs]) == data
            block = blocknr
            while block < end:
                start = virtual.find(0, block, end)
                if start < 0:
                    return True
                stop = virtual.find(1, start, end)
                stop = end if stop < 0 else stop
                # Compared in place: data, from the blocks' place in it, begins with their bytes.
                if not data.startswith(mem[start * bs : stop * bs], (start - blocknr) * bs):
                    return False
                block = stop
            return True

    def _beyond_end(self, rw: str, blocknr: int, nbytes: int) -> KernelBug:
        """The kernel's "attempt to access beyond end of device", as an error to raise.

        The kernel fails such a request with ``-EIO``; in the model no
        filesystem code asks for one unless its block numbers are wrong (a
        block map a plugin damaged, a number it worked out wrong), which a
        run reports rather than carries on past.  A negative block number
        would otherwise reach the end of the device through Python's
        negative indexes.
        """
        return KernelBug(
            f"attempt to access beyond end of device: {self.name}: {rw} of {nbytes} bytes at "
            f"block {blocknr}, and the device has blocks 0 to {self.nr_blocks - 1}"
        )

    def _end(self, blocknr: int, nbytes: int) -> int:
        """The block after the last one ``nbytes`` from block ``blocknr`` touch."""
        return blocknr + -(-nbytes // self.block_size)

    def _run_of(self, blocknr: int) -> _Known | None:
        at = bisect.bisect_right(self._starts, blocknr) - 1
        if at < 0:
            return None
        run = self._known[at]
        return run if blocknr < run.start + run.nblocks else None

    def _read_known(self, blocknr: int, dst: memoryview) -> None:
        """Read a range some of whose blocks may hold known contents, a run of one kind at a time.

        The caller holds the device's lock.
        """
        virtual = self._virtual
        bs = self.block_size
        if virtual is None:  # written out since the caller looked
            dst[:] = self._mem[blocknr * bs : blocknr * bs + len(dst)]
            return
        n = len(dst)
        last = self._end(blocknr, n)
        block = blocknr
        pos = 0
        while pos < n:
            if virtual[block]:
                run = self._run_of(block)
                assert run is not None
                end = min(last, run.start + run.nblocks)
                real = virtual.find(0, block, end)
                end = end if real < 0 else real
                take = min((end - block) * bs, n - pos)
                run.fill(dst[pos : pos + take], (block - run.start) * bs)
            else:
                known = virtual.find(1, block, last)
                end = last if known < 0 else known
                take = min((end - block) * bs, n - pos)
                dst[pos : pos + take] = self._mem[block * bs : block * bs + take]
            pos += take
            block = end

    def _materialize(self) -> None:
        """Write every block that still holds known contents out as bytes (lock held)."""
        virtual = self._virtual
        if virtual is None:
            return
        bs = self.block_size
        for run in self._known:
            block, end = run.start, run.start + run.nblocks
            while block < end:
                start = virtual.find(1, block, end)
                if start < 0:
                    break
                stop = virtual.find(0, start, end)
                stop = end if stop < 0 else stop
                run.fill(self._mem[start * bs : stop * bs], (start - run.start) * bs)
                block = stop
        self._virtual = None
        self._known.clear()
        self._starts.clear()


def mapping_bdev(mapping: object) -> BlockDevice | None:
    """The block device of a file mapping's filesystem (``mapping->host->i_sb->s_bdev``).

    ``None`` for anything else: anonymous memory, the swap cache, a mapping
    whose host is no inode.
    """
    sb = getattr(getattr(mapping, "host", None), "i_sb", None)
    bdev = getattr(sb, "s_bdev", None)
    return bdev if isinstance(bdev, BlockDevice) else None


class SuperBlock:
    """One mounted filesystem (``struct super_block``).

    Attributes:
        s_type: the filesystem type.
        mode: the mount mode (``journal``, ``nobh``, ...).
        a_ops: the operations table every regular file of the mount uses.
        s_blocksize: the filesystem block size in bytes.
        s_bdev: the block device.
        s_fs_info: private data of the filesystem plugin (ext3's journal).
        inodes: the files created on it.
    """

    __slots__ = (
        "_ino",
        "a_ops",
        "inodes",
        "kernel",
        "mode",
        "name",
        "s_bdev",
        "s_blocksize",
        "s_fs_info",
        "s_type",
    )

    def __init__(
        self,
        kernel: Kernel,
        s_type: FileSystemType,
        mode: str,
        a_ops: AddressSpaceOperations,
        bdev: BlockDevice,
        name: str,
    ) -> None:
        self.kernel = kernel
        self.s_type = s_type
        self.mode = mode
        self.a_ops = a_ops
        self.s_bdev = bdev
        self.s_blocksize = bdev.block_size
        self.s_fs_info: Any = None
        self.inodes: list[Inode] = []
        self.name = name
        self._ino = 0

    def __repr__(self) -> str:
        return f"<SuperBlock {self.name} {self.s_type.name}:{self.mode} bs={self.s_blocksize}>"

    def new_inode(self, name: str = "") -> Inode:
        """Create an empty regular file on this filesystem."""
        self._ino += 1
        inode = Inode(self, self._ino, name or f"{self.name}/file{self._ino}")
        self.inodes.append(inode)
        return inode


class Inode:
    """A file (``struct inode``): its size, its blocks and its page cache."""

    __slots__ = ("_lock", "blocks", "i_ino", "i_mapping", "i_sb", "i_size", "name")

    def __init__(self, sb: SuperBlock, ino: int, name: str) -> None:
        self.i_sb = sb
        self.i_ino = ino
        self.name = name
        self.i_size = 0
        self.blocks: list[int] = []  # file block -> device block
        self.i_mapping = AddressSpace(sb.kernel, sb.a_ops, host=self, bdev=sb.s_bdev, name=name)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<Inode {self.name} size={self.i_size}>"

    def get_block(self, iblock: int, create: bool) -> int:
        """Map file block ``iblock`` to a device block, allocating if ``create``.

        Returns 0 for a hole that is not created (``get_block`` without
        ``create``).  Blocks are allocated in runs as the file grows; a hole
        inside the file (0 in ``blocks``) gets a block of its own.
        """
        blocks = self.blocks
        if iblock < len(blocks):
            blocknr = blocks[iblock]
            if blocknr or not create:
                return blocknr
            with self._lock:
                if not blocks[iblock]:
                    blocks[iblock] = self.i_sb.s_bdev.alloc_blocks(1)
            return blocks[iblock]
        if not create:
            return 0
        with self._lock:
            need = iblock + 1 - len(blocks)
            if need > 0:
                first = self.i_sb.s_bdev.alloc_blocks(need)
                blocks.extend(range(first, first + need))
        return blocks[iblock]

    def reserve(self, size: int) -> None:
        """Allocate the blocks for ``size`` bytes in one run and set ``i_size``."""
        bs = self.i_sb.s_blocksize
        if size > 0:
            self.get_block((size - 1) // bs, True)
        self.i_size = max(self.i_size, size)


def read_cache_page(mapping: AddressSpace, index: int, nid: int | None = None) -> Page:
    """Return an up-to-date page of the file, read from disk if needed.

    The caller holds a reference on the returned page and must ``put_page``
    it.  A new page is allocated on ``nid`` (default: the kernel's current
    allocation node).

    Raises:
        FsaopsError: out of memory, or the table cannot read (no ``readpage``).
    """
    while True:
        page = find_get_page(mapping, index)
        if page is not None and page.flags & PG.uptodate:
            return page
        if page is None:
            page = grab_cache_page(mapping, index, nid)
            if page is None:
                raise FsaopsError("out of memory reading a page (ENOMEM)")
        else:
            lock_page(page)
            if page.mapping is not mapping:
                unlock_page(page)
                put_page(page)
                if mapping.lookup(index) is page:
                    raise slot_holds_another_page(mapping, index, page)
                continue
            if page.flags & PG.uptodate:
                unlock_page(page)
                return page
        readpage = mapping.a_ops.readpage
        if readpage is None:
            unlock_page(page)
            put_page(page)
            raise FsaopsError(f"{mapping.a_ops.name} has no readpage")
        err = returned(mapping.a_ops, "readpage", readpage(page))  # unlocks the page
        if err:
            put_page(page)
            raise FsaopsError(f"readpage of {mapping.name} index {index} failed ({err})")
        lock_page(page)  # wait for the read
        unlock_page(page)
        return page


def _xip_io(inode: Inode, pos: int, data: memoryview, write: bool) -> None:
    bs = inode.i_sb.s_blocksize
    done = 0
    while done < len(data):
        iblock, off = divmod(pos + done, bs)
        chunk = min(bs - off, len(data) - done)
        blocknr = inode.get_block(iblock, write)
        devoff = blocknr * bs + off
        bdev = inode.i_sb.s_bdev
        if write:
            bdev.mem[devoff : devoff + chunk] = data[done : done + chunk]
        elif blocknr:
            data[done : done + chunk] = bdev.mem[devoff : devoff + chunk]
        else:
            data[done : done + chunk] = bytes(chunk)
        done += chunk


def generic_file_read(inode: Inode, pos: int, count: int) -> bytes:
    """``read(2)``: read through the page cache (or straight from disk for xip)."""
    return bytes(file_read(inode, pos, count))


def file_read(inode: Inode, pos: int, count: int) -> bytearray:
    """:func:`generic_file_read`, returning the buffer the bytes were read into.

    The same read, without a second copy of what it read: the checks that
    read every page of a run back compare the buffer and drop it.
    """
    count = max(0, min(count, inode.i_size - pos))
    out = bytearray(count)
    view = memoryview(out)
    mapping = inode.i_mapping
    if mapping.a_ops.get_xip_page is not None:
        _xip_io(inode, pos, view, write=False)
        return out
    kernel = inode.i_sb.kernel
    ps = kernel.page_size
    tree = mapping.page_tree
    tree_lock = mapping.tree_lock
    done = 0
    while done < count:
        index, off = divmod(pos + done, ps)
        chunk = min(ps - off, count - done)
        # find_get_page(), written out: a read of a cached file runs it for every page.
        if tree_lock.locked():
            spin_lock_contended(tree_lock, "tree_lock", mapping)
        else:
            tree_lock.acquire()
        try:
            page = tree[index] if index < len(tree) else None
            if page is not None:
                page.count += 1
        finally:
            tree_lock.release()
        if page is None:
            # page_cache_readahead(): the read's missing pages from here, in one
            # readpages call; a page it did not bring in is read on its own below.
            window = min((pos + count - 1) // ps - index + 1, VM_MAX_READAHEAD * 1024 // ps)
            do_page_cache_readahead(mapping, index, max(1, window))
            page = read_cache_page(mapping, index)
        elif not page.flags & _PG_uptodate:
            put_page(page)
            page = read_cache_page(mapping, index)
        node = page.node  # page_address(page), read in place
        at = ((page.pfn - node.start_pfn) << node.page_shift) + off
        view[done : done + chunk] = node.mem[at : at + chunk]
        # mark_page_accessed(), written out: a second use of a page on the
        # inactive list activates it, a first one notes it.
        flags = page.flags
        if not flags & _PG_referenced:
            page.flags = flags | _PG_referenced
        elif not flags & _PG_active and flags & _PG_lru:
            activate_page(page)
            page.flags &= ~_PG_referenced
        count_ = page.count - 1  # put_page()
        page.count = count_
        if count_ <= 0:
            node.release_page(page)
        done += chunk
    return out


def generic_file_write(
    inode: Inode,
    pos: int,
    data: bytes | bytearray | memoryview,
    *,
    landing: Callable[[int], bytes] | None = None,
) -> int:
    """``write(2)``: write through the page cache, as ``generic_file_buffered_write``.

    Each page is found or created, locked, prepared with the table's
    ``prepare_write``, filled, and committed with ``commit_write`` (which
    dirties it).  Returns the number of bytes written.

    ``landing`` is for a checker that numbers writes in the order they
    reach a page: called with a page's index as its bytes are copied in
    (the page locked and prepared), it returns the whole page's bytes,
    which are written in place of ``data``'s (``data`` then gives only
    the length).

    Raises:
        FsaopsError: out of memory, or the table has no ``prepare_write``.
    """
    src = memoryview(data).cast("B")
    mapping = inode.i_mapping
    a_ops = mapping.a_ops
    if a_ops.get_xip_page is not None:
        _xip_io(inode, pos, src, write=True)
        inode.i_size = max(inode.i_size, pos + len(src))
        return len(src)
    if a_ops.prepare_write is None or a_ops.commit_write is None:
        raise FsaopsError(f"{a_ops.name} cannot write files (no prepare_write/commit_write)")
    ps = inode.i_sb.kernel.page_size
    done = 0
    while done < len(src):
        index, off = divmod(pos + done, ps)
        chunk = min(ps - off, len(src) - done)
        page = grab_cache_page(mapping, index)
        if page is None:
            raise FsaopsError("out of memory writing a page (ENOMEM)")
        try:
            err = returned(a_ops, "prepare_write", a_ops.prepare_write(page, off, off + chunk))
            if err:
                raise FsaopsError(f"prepare_write of {inode.name} failed ({err})")
            if landing is None:
                page_address(page)[off : off + chunk] = src[done : done + chunk]
            else:
                page_address(page)[off : off + chunk] = landing(index)[off : off + chunk]
            err = returned(a_ops, "commit_write", a_ops.commit_write(page, off, off + chunk))
            if err:
                raise FsaopsError(f"commit_write of {inode.name} failed ({err})")
            mark_page_accessed(page)
        finally:
            unlock_page(page)
            put_page(page)
        done += chunk
    return done


GetBlock = Callable[[Inode, int, bool], int]
