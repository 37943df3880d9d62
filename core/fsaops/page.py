"""Pages, their flags and reference counts (``include/linux/mm.h``, ``page-flags.h``).

A :class:`Page` is the model's ``struct page``: one per physical frame,
created when its node is brought up and never destroyed.  Its fields follow
the kernel's: ``flags``, ``count`` (``page_count``), ``mapcount``
(``page_mapcount``, 0-based where the kernel biases it by -1), ``mapping``,
``index``, ``private`` and the ``lru`` links.

Flag, count and lock operations are written as straight-line code with no
calls between the read and the write, so under CPython's global interpreter
lock each is indivisible, as the kernel's atomic bit operations are.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from fsaops.lists import LIST_POISON, ListEntry

if TYPE_CHECKING:
    from fsaops.buffer import BufferHead
    from fsaops.mapping import AddressSpace
    from fsaops.memory import Node
    from fsaops.rmap import AnonVma

__all__ = [
    "PG",
    "Page",
    "end_page_writeback",
    "get_page",
    "lock_page",
    "page_address",
    "page_anon",
    "page_buffers",
    "page_class",
    "page_count",
    "page_flags_str",
    "page_has_buffers",
    "page_index",
    "page_mapcount",
    "page_mapped",
    "page_mapping",
    "page_to_nid",
    "put_page",
    "set_page_private",
    "sync_page",
    "trylock_page",
    "unlock_page",
    "wait_on_page_locked",
    "wait_on_page_writeback",
]


class PG:
    """Page flag bits, named as the kernel's ``PG_*`` without the prefix.

    Test a flag with ``page.flags & PG.dirty``.  The bits most pages carry
    are the low eight, so the usual combinations are small integers.
    """

    locked = 1 << 0
    uptodate = 1 << 1
    dirty = 1 << 2
    lru = 1 << 3
    active = 1 << 4
    private = 1 << 5
    referenced = 1 << 6
    mappedtodisk = 1 << 7
    writeback = 1 << 8
    swapcache = 1 << 9
    error = 1 << 10
    checked = 1 << 11
    reclaim = 1 << 12
    #: Somebody sleeps on this page's lock or writeback (a real thread).  The
    #: 2005 kernel asked the hashed wait queue instead; the effect is the same.
    waiters = 1 << 13

    #: Flags ``migrate_page_copy`` carries to the new page (KERNEL-SPEC §6).
    COPIED = error | referenced | uptodate | active | checked | mappedtodisk

    NAMES: tuple[tuple[int, str], ...] = (
        (locked, "locked"),
        (uptodate, "uptodate"),
        (dirty, "dirty"),
        (lru, "lru"),
        (active, "active"),
        (private, "private"),
        (referenced, "referenced"),
        (mappedtodisk, "mappedtodisk"),
        (writeback, "writeback"),
        (swapcache, "swapcache"),
        (error, "error"),
        (checked, "checked"),
        (reclaim, "reclaim"),
        (waiters, "waiters"),
    )


# Module constants for the hot paths (a global load is cheaper than an attribute
# load); the other modules import these rather than define their own.
PG_locked = PG.locked
PG_uptodate = PG.uptodate
PG_dirty = PG.dirty
PG_lru = PG.lru
PG_active = PG.active
PG_private = PG.private
PG_referenced = PG.referenced
PG_writeback = PG.writeback
PG_swapcache = PG.swapcache
PG_reclaim = PG.reclaim
PG_waiters = PG.waiters
#: The bits ``unlock_page`` clears.
PG_unlock = PG.locked | PG.waiters


def page_flags_str(flags: int) -> str:
    """Format a flags word as ``dirty|lru|private``."""
    names = [name for bit, name in PG.NAMES if flags & bit]
    return "|".join(names) if names else "0"


class Page(ListEntry):
    """One physical page frame (``struct page``).

    Attributes:
        flags: the ``PG`` bits.
        count: references held (``page_count``); 0 means free.
        mapcount: page-table entries mapping the page (0-based).
        mapping: the :class:`~fsaops.mapping.AddressSpace` of a page-cache
            page, the :class:`~fsaops.rmap.AnonVma` of an anonymous page, or
            ``None``.
        index: offset in the mapping, in pages (the linear index of an
            anonymous page).
        private: the head buffer head when ``PG.private`` is set, the swap
            entry when ``PG.swapcache`` is set, otherwise 0.
        pfn: the page frame number.
        node: the NUMA node the frame belongs to.  It costs the page no
            memory: each node's frames are instances of the node's own
            subclass of ``Page`` (:func:`~fsaops.page.page_class`), which
            holds it as a class attribute, much as the kernel keeps the
            node number in spare bits of ``page->flags`` rather than in a
            field.

    A page is a slotted object of nine fields (no ``__dict__``), created
    once per frame by its node; its ``index`` shares the int object of an
    equal frame number (:meth:`~fsaops.Kernel.intern`).
    """

    __slots__ = ("count", "flags", "index", "mapcount", "mapping", "pfn", "private")

    flags: int
    count: int
    mapcount: int
    mapping: AddressSpace | AnonVma | None
    index: int
    private: Any
    pfn: int
    node: ClassVar[Node]

    def __init__(self, pfn: int) -> None:
        self.flags = 0
        self.count = 0
        self.mapcount = 0
        self.mapping = None
        self.index = 0
        self.private = 0
        self.pfn = pfn
        self.lru_next = LIST_POISON
        self.lru_prev = LIST_POISON

    def __repr__(self) -> str:
        return (
            f"<Page pfn={self.pfn} node={self.node.nid} count={self.count} "
            f"mapcount={self.mapcount} flags={page_flags_str(self.flags)}>"
        )

    @property
    def data(self) -> memoryview:
        """The frame's bytes (``page_address``), a writable view."""
        return page_address(self)


def page_class(node: Node) -> type[Page]:
    """The subclass of :class:`Page` whose instances are the frames of ``node``.

    It adds no field, only the class attribute ``node``; ``isinstance(p,
    Page)`` holds for every frame of every node.
    """
    return type("Page", (Page,), {"__slots__": (), "__module__": __name__, "node": node})


def page_address(page: Page) -> memoryview:
    """A writable view of the page's bytes in its node's memory."""
    node = page.node
    off = (page.pfn - node.start_pfn) << node.page_shift
    return node.mem[off : off + node.page_size]


def page_to_nid(page: Page) -> int:
    """The node id of the page's frame."""
    return page.node.nid


def page_count(page: Page) -> int:
    """``page_count()``: the number of references held."""
    return page.count


def get_page(page: Page) -> None:
    """Take a reference (``get_page``)."""
    page.count += 1


def put_page(page: Page) -> None:
    """Drop a reference; the last one frees the page (``put_page``)."""
    count = page.count - 1
    page.count = count
    if count <= 0:
        page.node.release_page(page)


def page_mapcount(page: Page) -> int:
    """The number of page-table entries mapping the page."""
    return page.mapcount


def page_mapped(page: Page) -> bool:
    """Whether any page-table entry maps the page."""
    return page.mapcount > 0


def page_anon(page: Page) -> bool:
    """``PageAnon()``: the page's mapping is an anon_vma."""
    mapping = page.mapping
    return mapping is not None and mapping.anon


def page_mapping(page: Page) -> AddressSpace | None:
    """``page_mapping()``: swapper_space for swap-cache pages, else the file mapping."""
    if page.flags & PG_swapcache:
        return page.node.kernel.swapper_space
    mapping = page.mapping
    if mapping is None or mapping.anon:
        return None
    return mapping  # type: ignore[return-value]


def page_index(page: Page) -> int:
    """``page_index()``: the swap entry of a swap-cache page, else ``index``."""
    if page.flags & PG_swapcache:
        return page.private  # type: ignore[no-any-return]
    return page.index


def page_has_buffers(page: Page) -> bool:
    """``page_has_buffers()`` (``PagePrivate``)."""
    return bool(page.flags & PG_private)


def page_buffers(page: Page) -> BufferHead:
    """The head buffer head of a page with buffers.

    Raises:
        KernelBug: the page has no buffers (``PG_private`` clear): the
            kernel's ``BUG_ON(!PagePrivate(page))``, whatever ``python -O``
            says.
    """
    if not page.flags & PG_private:
        from fsaops.errors import KernelBug

        raise KernelBug(f"page_buffers() of a page without buffers: {page!r}")
    return page.private  # type: ignore[no-any-return]


def set_page_private(page: Page, value: object) -> None:
    """``set_page_private()``."""
    page.private = value


def trylock_page(page: Page) -> bool:
    """Take the page lock if it is free (``!TestSetPageLocked``); True on success.

    A spin on it (:data:`~fsaops.sched.SPIN_TRIES` failed tries in a row)
    lets time pass (:meth:`~fsaops.sched.Scheduler.tried`).
    """
    flags = page.flags
    if flags & PG_locked:
        page.node.kernel.sched.tried(page, "page lock")
        return False
    page.flags = flags | PG_locked
    return True


def lock_page(page: Page) -> None:
    """Take the page lock, sleeping until it is free (``lock_page``)."""
    flags = page.flags
    if not flags & PG_locked:
        page.flags = flags | PG_locked
        return
    _lock_page_slow(page)


def _lock_page_slow(page: Page) -> None:
    kernel = page.node.kernel
    while not trylock_page(page):
        sync_page(page)
        kernel.sched.wait_on_page_bit(page, PG_locked, "page lock")


def sync_page(page: Page) -> None:
    """Kick the I/O a task about to sleep on ``page`` waits for (``sync_page``, mm/filemap.c).

    Every sleep on a page's lock or writeback calls the table's own
    ``sync_page`` first, if it has one (``block_sync_page`` unplugs the
    device's queue); what it returns is ignored, as the kernel ignores it.
    """
    mapping = page_mapping(page)
    if mapping is not None:
        kick = mapping.a_ops.sync_page
        if kick is not None:
            kick(page)


def unlock_page(page: Page) -> None:
    """Release the page lock and wake its waiters (``unlock_page``).

    Raises:
        KernelBug: the page is not locked: 2.6.15's ``unlock_page`` is
            ``if (!TestClearPageLocked(page)) BUG();``.
    """
    flags = page.flags
    if not flags & PG_locked:
        _unlock_bug(page)
    page.flags = flags & ~(PG_locked | PG_waiters)
    sched = page.node.kernel.sched
    if flags & PG_waiters:
        sched.wake_page(page)
    sched.page_unlocked(page)


def _unlock_bug(page: Page) -> None:
    from fsaops.errors import KernelBug

    raise KernelBug(f"unlock_page() of pfn {page.pfn}, which is not locked: {page!r}")


def wait_on_page_locked(page: Page) -> None:
    """Sleep until the page is unlocked, without taking the lock."""
    if page.flags & PG_locked:
        sync_page(page)
        page.node.kernel.sched.wait_on_page_bit(page, PG_locked, "page lock")


def wait_on_page_writeback(page: Page) -> None:
    """Sleep until writeback of the page ends (``wait_on_page_writeback``)."""
    if page.flags & PG_writeback:
        sync_page(page)
        page.node.kernel.sched.wait_on_page_bit(page, PG_writeback, "page writeback")


def end_page_writeback(page: Page) -> None:
    """End writeback of the page and wake its waiters (``end_page_writeback``)."""
    flags = page.flags
    if not flags & PG_writeback:
        from fsaops.errors import KernelBug

        raise KernelBug(f"end_page_writeback() on a page not under writeback: {page!r}")
    page.flags = flags & ~(PG_writeback | PG_waiters | PG_reclaim)
    if flags & PG_waiters:
        page.node.kernel.sched.wake_page(page)
