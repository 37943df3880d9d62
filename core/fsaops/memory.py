"""NUMA nodes, their frames with real bytes, and the page allocator (``mm/page_alloc.c``).

Each node owns one contiguous run of page frames.  Their bytes live in one
anonymous memory map per node (the operating system commits it lazily, so a
large node costs only what is touched) and every :class:`~fsaops.page.Page`
is a view into it.  Allocation is order-0 only, from a per-node free list
that, as the buddy allocator's ``free_area`` lists, links the free pages
through their own ``lru`` links: it costs no memory of its own.

The frames' :class:`~fsaops.page.Page` objects are made as the allocator
first reaches them, in frame order (:attr:`Node.frames_made`): a frame never
handed out is free, untouched and the same as every other such frame, so a
large node whose run uses a tenth of it makes a tenth of its pages.  Asking
for :attr:`Node.pages` (``mem_map``) or :attr:`Node.free_list` makes the rest.
"""

from __future__ import annotations

import mmap
import platform
import sys
import threading
from typing import TYPE_CHECKING, Any, Final

from fsaops.errors import BadPage, FsaopsError
from fsaops.lists import LIST_POISON, ListEntry, PageList, list_del
from fsaops.page import PG, Page, page_class

if TYPE_CHECKING:
    from fsaops.kernel import Kernel

__all__ = ["Node", "alloc_pages_node", "anonymous_memory"]

# Flags a page may not carry when it is freed (the kernel's bad_page checks).
_PG_lru = PG.lru
_PG_active = PG.active
_BAD_ON_FREE = PG.locked | PG.private | PG.writeback | PG.swapcache | PG.active | PG.reclaim
_CLEARED_ON_ALLOC = PG.uptodate | PG.error | PG.referenced | PG.checked | PG.mappedtodisk
"""What ``prep_new_page`` clears on the way out, as state a frame may keep while free."""
MAKE_FRAMES: Final = 1024
"""Frames the allocator makes at a time when the free pages made so far run out."""
POISON_BYTE: Final = 0x6B
"""What poisoning writes into a freed frame (under ``debug_vm``, and in an explored kernel)."""

# Linux's MAP_NORESERVE, which the mmap module names only from Python 3.13:
# its value differs between architectures (asm/mman.h), so it is given only
# where it is known.
_LINUX_MAP_NORESERVE: Final = {
    "x86_64": 0x4000,
    "i686": 0x4000,
    "i386": 0x4000,
    "aarch64": 0x4000,
    "armv7l": 0x4000,
    "riscv64": 0x4000,
    "s390x": 0x4000,
    "ppc64le": 0x40,
    "ppc64": 0x40,
}
_MAP_NORESERVE: Final[int] = getattr(
    mmap,
    "MAP_NORESERVE",
    _LINUX_MAP_NORESERVE.get(platform.machine(), 0) if sys.platform == "linux" else 0,
)


def anonymous_memory(size: int, what: str = "memory") -> mmap.mmap:
    """``size`` bytes of zeroed memory that the operating system commits as it is touched.

    Private and unreserved where the platform allows it (``MAP_PRIVATE |
    MAP_NORESERVE``), rather than the default shared mapping: the first
    write to a page then costs an ordinary anonymous page fault, and a
    large node or device that is mostly never touched costs only address
    space, so any scenario whose touched pages fit in the machine runs.

    Raises:
        FsaopsError: the operating system refused the mapping (``what`` names it).
    """
    flags = getattr(mmap, "MAP_PRIVATE", 0) | _MAP_NORESERVE
    try:
        if flags:
            return mmap.mmap(-1, max(size, 1), flags=flags)
        return mmap.mmap(-1, max(size, 1))  # pragma: no cover - platforms without the flags
    except (OSError, OverflowError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or exc
        raise FsaopsError(
            f"out of memory: cannot reserve {size:,} bytes for {what} ({reason}); "
            "make the scenario smaller"
        ) from None


class Node:
    """One NUMA node: its frames, free list, LRU lists and locks (``pg_data_t``)."""

    __slots__ = (
        "_nr_free",
        "active",
        "frame_class",
        "frames_made",
        "free_area",
        "inactive",
        "kernel",
        "lock",
        "lru_lock",
        "mem",
        "nid",
        "nr_active",
        "nr_inactive",
        "nr_pages",
        "page_shift",
        "page_size",
        "start_pfn",
    )

    def __init__(self, kernel: Kernel, nid: int, start_pfn: int, nr_pages: int) -> None:
        self.kernel = kernel
        self.nid = nid
        self.start_pfn = start_pfn
        self.nr_pages = nr_pages
        self.page_size = kernel.page_size
        self.page_shift = kernel.page_shift
        backing = anonymous_memory(nr_pages * self.page_size, f"node {nid}")
        self.mem = memoryview(backing)
        #: The class of this node's pages (:func:`~fsaops.page.page_class`).
        self.frame_class = page_class(self)
        #: The pages of the frames made so far, by ``pfn - start_pfn``: the
        #: first ``len(frames_made)`` of :attr:`pages`.  Every frame after
        #: them is free and has never been handed out.
        self.frames_made: list[Page] = []
        #: The free pages made so far, linked through their ``lru`` links: a
        #: stack, so the most recently freed (cache-hot) frame is reused
        #: first.  The frames not made yet come after them, in frame order,
        #: as they would on a list of every free frame.
        self.free_area = PageList(f"node{nid}.free")
        self._nr_free = nr_pages
        #: ``zone->lock``: guards the free list.
        self.lock = threading.Lock()
        self.active = PageList(f"node{nid}.active")
        self.inactive = PageList(f"node{nid}.inactive")
        self.nr_active = 0
        self.nr_inactive = 0
        self.lru_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<Node {self.nid} pfn {self.start_pfn}+{self.nr_pages} free={self.nr_free}>"

    @property
    def nr_free(self) -> int:
        """Free frames on this node."""
        return self._nr_free

    @property
    def pages(self) -> list[Page]:
        """``mem_map``: the page of every frame, by ``pfn - start_pfn`` (made now if not yet)."""
        self._make_all()
        return self.frames_made

    @property
    def free_list(self) -> PageList:
        """Every free page, linked through their ``lru`` links (each frame made now if not yet)."""
        self._make_all()
        return self.free_area

    def _make_all(self) -> None:
        if len(self.frames_made) < self.nr_pages:
            with self.lock:
                self._make(self.nr_pages - len(self.frames_made))

    @property
    def unmade(self) -> int:
        """How many frames have not been made yet (free, and never handed out)."""
        return self.nr_pages - len(self.frames_made)

    def frame(self, index: int) -> Page:
        """The page of frame ``start_pfn + index``, made (with every frame before it) if not yet.

        Raises:
            IndexError: there is no such frame on this node.
        """
        made = self.frames_made
        if index >= len(made) and 0 <= index < self.nr_pages:
            with self.lock:
                self._make(index + 1 - len(made))
        return made[index]

    def _make(self, count: int) -> None:
        """Make the next ``count`` frames, free, at the tail of the free list (lock held)."""
        made = self.frames_made
        count = min(count, self.nr_pages - len(made))
        if count <= 0:
            return
        first = self.start_pfn + len(made)
        new = list(map(self.frame_class, range(first, first + count)))
        free = self.free_area
        prev: ListEntry = free.lru_prev
        for page in new:
            prev.lru_next = page
            page.lru_prev = prev
            prev = page
        prev.lru_next = free
        free.lru_prev = prev
        made.extend(new)

    def free_pages(self) -> list[Page]:
        """The free frames (a copy of the free list)."""
        free_list = self.free_list
        with self.lock:
            return list(free_list)

    def alloc_page(self) -> Page | None:
        """Take a free frame with one reference, or ``None`` when the node is full."""
        faults = self.kernel.faults
        if faults is not None and faults.fail_alloc():
            return None
        free_list = self.free_area
        lock = self.lock
        lock.acquire()  # by hand, not with: once a page on the migration path
        try:
            entry = free_list.lru_next
            if entry is free_list:
                if len(self.frames_made) == self.nr_pages:
                    return None
                self._make(MAKE_FRAMES)
                entry = free_list.lru_next
            list_del(entry)
            self._nr_free -= 1
        finally:
            lock.release()
        page: Page = entry  # type: ignore[assignment]
        if self.kernel.debug_vm:
            # Page poisoning: a free frame holds the poison, one never used
            # before too, so that a copy that leaves bytes out shows them.
            off = (page.pfn - self.start_pfn) << self.page_shift
            self.mem[off : off + self.page_size] = bytes([POISON_BYTE]) * self.page_size
        private = page.private
        if (
            page.flags
            or page.count
            or page.mapcount
            or page.mapping is not None
            or private
            or type(private) is not int
        ):
            _prep_new_page(page)  # a free frame is handed out as it was freed
        page.count = 1
        self.kernel.vmstat.pgalloc += 1
        return page

    def alloc_pages(self, count: int) -> list[Page]:
        """Take ``count`` free frames, each as :meth:`alloc_page` would, in the order it would.

        Readahead's batch (``__do_page_cache_readahead``): the same frames
        ``count`` calls of :meth:`alloc_page` hand out, taken under one
        hold of the free list's lock.  Fewer than ``count`` when the node
        runs out, or when an injected allocation failure comes (the pages
        before it are given).
        """
        if self.kernel.faults is not None or self.kernel.debug_vm:
            pages = []
            for _ in range(count):  # each its own allocation: a failure, the poison
                page = self.alloc_page()
                if page is None:
                    break
                pages.append(page)
            return pages
        free_list = self.free_area
        taken: list[Any] = []
        lock = self.lock
        lock.acquire()
        try:
            entry: Any = free_list.lru_next
            while len(taken) < count:
                if entry is free_list:
                    if len(self.frames_made) == self.nr_pages:
                        break
                    tail = free_list.lru_prev  # the last frame taken, or the list itself
                    self._make(max(count - len(taken), MAKE_FRAMES))
                    entry = tail.lru_next
                    continue
                taken.append(entry)
                entry = entry.lru_next
            # list_del() of each, the run of them at once: they follow on in the list.
            if taken:
                free_list.lru_next = entry
                entry.lru_prev = free_list
                self._nr_free -= len(taken)
        finally:
            lock.release()
        for page in taken:
            page.lru_next = page.lru_prev = LIST_POISON
            private = page.private
            if (
                page.flags
                or page.count
                or page.mapcount
                or page.mapping is not None
                or private
                or type(private) is not int
            ):
                _prep_new_page(page)  # a free frame is handed out as it was freed
            page.count = 1
        self.kernel.vmstat.pgalloc += len(taken)
        return taken

    def release_page(self, page: Page) -> None:
        """Called by ``put_page`` when the last reference goes (``__page_cache_release``)."""
        if page.count < 0:
            raise BadPage(f"reference count of pfn {page.pfn} went negative: {page!r}")
        if page.flags & _PG_lru:
            # By hand, not with: every page a migration moves is freed here.
            lru_lock = self.lru_lock
            lru_lock.acquire()
            try:
                flags = page.flags
                if flags & _PG_lru:
                    flags &= ~_PG_lru
                    list_del(page)
                    if flags & _PG_active:
                        self.nr_active -= 1
                        flags &= ~_PG_active
                    else:
                        self.nr_inactive -= 1
                    page.flags = flags
            finally:
                lru_lock.release()
        self.free_page(page)

    def free_page(self, page: Page) -> None:
        """Return a frame with no references to the free list (``free_hot_page``).

        Raises:
            BadPage: the frame is still in use (``free_pages_check``): it has
                a mapping, a reference or a pte left, a flag only a page in
                use has, or it is still on a list.
        """
        mapping = page.mapping
        if mapping is not None and mapping.anon:
            page.mapping = None  # an anonymous page forgets its anon_vma when freed
            mapping = None
        if (
            mapping is not None
            or page.count != 0
            or page.mapcount != 0
            or page.flags & _BAD_ON_FREE
            or page.lru_next is not LIST_POISON
        ):
            raise BadPage(f"freeing pfn {page.pfn} while it is still in use: {page!r}")
        page.flags = 0
        page.private = 0
        page.index = 0
        kernel = self.kernel
        if kernel.cow_copies:
            kernel.cow_copies.discard(page.pfn)
        if kernel.swap_reads:
            kernel.swap_reads.discard(page.pfn)
        if kernel.debug_vm:
            off = (page.pfn - self.start_pfn) << self.page_shift
            self.mem[off : off + self.page_size] = bytes([POISON_BYTE]) * self.page_size
        kernel.vmstat.pgfree += 1
        lock = self.lock
        lock.acquire()  # by hand, not with, as in alloc_page
        try:
            # list_add(page, free_list), written out
            free_list = self.free_area
            nxt = free_list.lru_next
            page.lru_next = nxt
            page.lru_prev = free_list
            nxt.lru_prev = page
            free_list.lru_next = page
            self._nr_free += 1
        finally:
            lock.release()


def alloc_pages_node(kernel: Kernel, nid: int) -> Page | None:
    """Allocate one page on node ``nid`` (``alloc_pages_node(nid, gfp, 0)``)."""
    return kernel.nodes[nid].alloc_page()


def _prep_new_page(page: Page) -> None:
    """``prep_new_page`` for a frame the free list gave with something set.

    A frame is emptied when it is freed, so only code that wrote to a free
    frame gets here.  Like the kernel (``bad_page``) it is a bad page state
    for a reference, a mapping, a mapcount, private data or any flag but
    those of :data:`_CLEARED_ON_ALLOC` (the kernel's list: ``PG_lru``,
    ``PG_private``, ``PG_locked``, ``PG_active``, ``PG_dirty``, ``PG_reclaim``,
    ``PG_swapcache``, ``PG_writeback``, ...), which are cleared.

    Raises:
        BadPage: the frame is in a bad state.
    """
    flags = page.flags
    if (
        page.count
        or page.mapcount
        or page.mapping is not None
        or page.private
        or type(page.private) is not int
        or flags & ~_CLEARED_ON_ALLOC
    ):
        raise BadPage(
            f"Bad page state in prep_new_page: free pfn {page.pfn} was changed while it was "
            f"free: {page!r}"
        )
    page.flags = 0
