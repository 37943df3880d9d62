"""Address spaces, the page tree and page-cache lookups (``include/linux/fs.h``, ``mm/filemap.c``).

An :class:`AddressSpace` holds the cached pages of one file (or of the swap
device: ``swapper_space``) in its page tree, keyed by page index, and the
operations table of the filesystem that owns it.  The kernel's radix tree
is a flat growable array here: a slot per index, ``None`` for a hole.
``tree_lock`` guards the tree (an rwlock in the kernel, a mutex here) and
``private_lock`` guards the buffers attached to the pages.
:func:`try_to_release_page` asks a page's filesystem to let go of its
buffers, as mm/filemap.c does.
"""

from __future__ import annotations

import sys
import threading
from typing import TYPE_CHECKING, NoReturn

from fsaops.aops import member_name, returned
from fsaops.errors import KernelBug, PluginFault, shown
from fsaops.lru import lru_cache_add
from fsaops.page import (
    PG,
    Page,
    get_page,
    lock_page,
    page_has_buffers,
    put_page,
    trylock_page,
    unlock_page,
    wait_on_page_writeback,
)
from fsaops.spinlock import Spinlock, spin_lock_contended

if TYPE_CHECKING:
    from fsaops.aops import AddressSpaceOperations
    from fsaops.fs import BlockDevice, Inode
    from fsaops.kernel import Kernel
    from fsaops.rmap import Vma

__all__ = [
    "AS_EIO",
    "AS_ENOSPC",
    "MAX_PAGE_INDEX",
    "AddressSpace",
    "add_to_page_cache",
    "add_to_page_cache_lru",
    "find_get_page",
    "find_lock_page",
    "grab_cache_page",
    "remove_from_page_cache",
    "remove_mapping",
    "slot_holds_another_page",
    "truncate_inode_pages",
    "try_to_release_page",
]

AS_EIO = 1 << 0
"""Mapping flag: a write-back I/O error happened (``handle_write_error``)."""
AS_ENOSPC = 1 << 1
"""Mapping flag: a write-back ran out of space."""

MAX_PAGE_INDEX = 1 << 26
"""The largest page index the flat page tree accepts (256 GiB of 4 KiB pages)."""


class AddressSpace:
    """A page cache: the page tree of one file or of swap (``struct address_space``).

    Attributes:
        host: the :class:`~fsaops.fs.Inode` that owns it (``None`` for
            ``swapper_space``).
        a_ops: the operations table.
        page_tree: the slots; ``page_tree[index]`` is the page or ``None``.
        nrpages: pages in the tree.
        i_mmap: the areas mapping this file (for reverse mapping).
        bdev: the block device behind the file's blocks.
        anon: always False (an :class:`~fsaops.rmap.AnonVma` says True), so
            that ``page.mapping.anon`` tells ``PageAnon`` pages apart.  A
            field rather than a class attribute: CPython 3.11 specializes
            reading a field, not a class attribute through an instance.
    """

    anon: bool

    __slots__ = (
        "_flags",
        "a_ops",
        "anon",
        "bdev",
        "host",
        "i_mmap",
        "i_mmap_lock",
        "kernel",
        "name",
        "nrpages",
        "page_tree",
        "private_lock",
        "tree_lock",
    )

    def __init__(
        self,
        kernel: Kernel,
        a_ops: AddressSpaceOperations,
        *,
        host: Inode | None = None,
        bdev: BlockDevice | None = None,
        name: str = "",
    ) -> None:
        self.kernel = kernel
        self.anon = False
        self.a_ops = a_ops
        self.host = host
        self.bdev = bdev
        self.name = name
        self.page_tree: list[Page | None] = []
        self.nrpages = 0
        self.tree_lock = threading.Lock()
        self.private_lock = threading.Lock()
        self.i_mmap: list[Vma] = []
        self.i_mmap_lock = Spinlock("i_mmap_lock", self)
        self._flags = 0

    @property
    def flags(self) -> int:
        """``AS_*`` bits.

        A bit cleared is told to the fault injector, whose ledger follows
        the errors it made until an ``fsync`` reports them.
        """
        return self._flags

    @flags.setter
    def flags(self, value: int) -> None:
        cleared = self._flags & ~value
        self._flags = value
        if cleared:
            faults = self.kernel.faults
            if faults is not None:
                faults.cleared(self, cleared, sys._getframe(1))

    @property
    def injected_flags(self) -> int:
        """The ``AS_*`` bits an injected write error set that no ``fsync`` has reported yet.

        Not the kernel's: the model's note that the next ``fsync``'s report
        of them is the injector's doing, not the table's.  Read-only: a
        view of the injector's ledger, which plugin code is not handed.
        """
        faults = self.kernel.faults
        return 0 if faults is None else faults.write_errors(self)

    @injected_flags.setter
    def injected_flags(self, value: int) -> None:
        raise AttributeError(
            f"injected_flags of {self.name} cannot be set: which AS_* bits a write error the "
            "fault injector made set is its own ledger's to say, and plugin code may not mark "
            "an error as injected"
        )

    def __repr__(self) -> str:
        return f"<AddressSpace {self.name} {self.a_ops.name} nrpages={self.nrpages}>"

    def lookup(self, index: int) -> Page | None:
        """The page at ``index``, or ``None`` (``radix_tree_lookup``; no reference taken)."""
        tree = self.page_tree
        return tree[index] if 0 <= index < len(tree) else None

    def pages(self) -> list[Page]:
        """Every page in the tree, in index order (a snapshot)."""
        with self.tree_lock:
            return [p for p in self.page_tree if p is not None]

    def _insert(self, index: int, page: Page) -> bool:
        # tree_lock held.  Returns False if the slot is taken (-EEXIST).
        tree = self.page_tree
        if index >= len(tree):
            if index >= MAX_PAGE_INDEX:
                raise ValueError(f"page index {index} is beyond the page tree's limit")
            tree.extend([None] * (index + 1 - len(tree)))
        elif tree[index] is not None:
            return False
        tree[index] = page
        self.nrpages += 1
        return True

    def _delete(self, index: int) -> None:
        # tree_lock held.
        self.page_tree[index] = None
        self.nrpages -= 1


def find_get_page(mapping: AddressSpace, index: int) -> Page | None:
    """Look a page up and take a reference on it (``find_get_page``)."""
    tree_lock = mapping.tree_lock
    if tree_lock.locked():  # by hand, not with: once for every page read
        spin_lock_contended(tree_lock, "tree_lock", mapping)
    else:
        tree_lock.acquire()
    try:
        tree = mapping.page_tree
        page = tree[index] if 0 <= index < len(tree) else None
        if page is not None:
            page.count += 1
    finally:
        tree_lock.release()
    return page


def find_lock_page(mapping: AddressSpace, index: int) -> Page | None:
    """Look a page up, take a reference and lock it (``find_lock_page``).

    A page that left the mapping while we slept on its lock (truncated, or
    migrated: the tree now points at the new page) is released and the
    lookup repeated.

    Raises:
        KernelBug: the page is still in the slot but says it is another
            page (:func:`slot_holds_another_page`).
    """
    while True:
        page = find_get_page(mapping, index)
        if page is None:
            return None
        lock_page(page)
        if page.mapping is mapping and page.index == index:
            return page
        unlock_page(page)
        put_page(page)
        if mapping.lookup(index) is page:
            raise slot_holds_another_page(mapping, index, page)
        mapping.kernel.vmstat.find_lock_page_retry += 1


def slot_holds_another_page(mapping: AddressSpace, index: int, page: Page) -> KernelBug:
    """The soft lockup of a lookup whose slot keeps a page that says it is another page.

    ``find_lock_page`` and ``read_cache_page`` take the page in slot
    ``index``, lock it, and look again when its ``mapping`` or ``index``
    is not that slot's: the page left the mapping while they slept (it was
    truncated, or migrated and the slot now holds the new page).  The
    kernel keeps a page's ``mapping`` and ``index`` with its slot under
    ``tree_lock``, so a page still in the slot that says otherwise can
    only be one whose fields code changed in place, or one put in a slot
    not its own: every look finds it again, and the kernel's lookup spins
    until the soft-lockup watchdog says so.  Said here at once, naming the
    slot, the page and what it claims.
    """
    owner = page.mapping
    said = (
        "no mapping"
        if owner is None
        else f"page {page.index} of {getattr(owner, 'name', repr(owner))}"
    )
    return KernelBug(
        f"soft lockup: page-cache slot {index} of {mapping.name} ({mapping.a_ops.name}) "
        f"holds pfn {page.pfn}, which says it is {said}: a lookup finds it there again and "
        "again and retries for ever (a page put in a slot not its own, or whose mapping or "
        "index was changed while it stayed in the cache)",
        table=mapping.a_ops.name,
    )


def add_to_page_cache(page: Page, mapping: AddressSpace, index: int) -> bool:
    """Insert a new, unshared page into the tree, locked (``add_to_page_cache``).

    Returns False if the slot is taken.  On success the page is locked and
    the tree holds a reference.
    """
    if not trylock_page(page):
        raise AssertionError(f"add_to_page_cache() of a locked page: {page!r}")
    tree_lock = mapping.tree_lock
    if tree_lock.locked():  # by hand, not with: once for every page read in
        spin_lock_contended(tree_lock, "tree_lock", mapping)
    else:
        tree_lock.acquire()
    try:
        if not mapping._insert(index, page):
            unlock_page(page)
            return False
        page.count += 1
        page.mapping = mapping
        page.index = mapping.kernel.intern(index)
    finally:
        tree_lock.release()
    return True


def add_to_page_cache_lru(page: Page, mapping: AddressSpace, index: int) -> bool:
    """:func:`add_to_page_cache`, then put the page on the inactive LRU."""
    if not add_to_page_cache(page, mapping, index):
        return False
    lru_cache_add(page)
    return True


def grab_cache_page(mapping: AddressSpace, index: int, nid: int | None = None) -> Page | None:
    """Find or create the page at ``index``, locked, with a reference.

    A new page is allocated on node ``nid`` (default: the kernel's current
    allocation node).  Returns ``None`` when no memory is left.
    """
    kernel = mapping.kernel
    while True:
        page = find_lock_page(mapping, index)
        if page is not None:
            return page
        page = kernel.nodes[kernel.alloc_nid if nid is None else nid].alloc_page()
        if page is None:
            return None
        if add_to_page_cache_lru(page, mapping, index):
            return page
        put_page(page)


def _remove_from_page_cache_locked(page: Page) -> None:
    mapping = page.mapping
    assert mapping is not None and not mapping.anon
    mapping._delete(page.index)  # type: ignore[union-attr]
    page.mapping = None


def remove_from_page_cache(page: Page) -> None:
    """Take a locked page out of its mapping's tree (the caller drops the cache reference)."""
    mapping = page.mapping
    assert mapping is not None and not mapping.anon
    assert page.flags & PG.locked, "remove_from_page_cache() of an unlocked page"
    with mapping.tree_lock:  # type: ignore[union-attr]
        _remove_from_page_cache_locked(page)


def remove_mapping(mapping: AddressSpace | None, page: Page) -> bool:
    """Drop a locked, clean, otherwise unused page from its cache (``remove_mapping``).

    The page must hold exactly two references, the cache's and the
    caller's isolation reference.  On success the cache reference is
    dropped: a swap-cache page also leaves the swap cache and its slot
    reference is released.
    """
    if mapping is None:
        return False
    from fsaops.swap import delete_from_swap_cache_locked

    with mapping.tree_lock:
        if page.count != 2 or page.flags & PG.dirty:
            return False
        if page.flags & PG.swapcache:
            entry = page.private
            delete_from_swap_cache_locked(page)
        else:
            entry = 0
            _remove_from_page_cache_locked(page)
    if entry:
        mapping.kernel.swap_info().swap_free(entry)
    put_page(page)
    return True


def try_to_release_page(page: Page, gfp: int = 0) -> int:
    """Ask the filesystem to free a locked page's buffers (``try_to_release_page``, mm/filemap.c).

    ``gfp`` is what the caller allows (:mod:`fsaops.gfp`): the migration
    code passes :data:`~fsaops.gfp.GFP_KERNEL`, truncation 0.  Calls the
    table's ``releasepage`` if it has one, else
    :func:`~fsaops.buffer.try_to_free_buffers`.  A page under writeback
    keeps its buffers.  Returns non-zero on success.

    Raises:
        KernelBug: the page is not locked.
    """
    if not page.flags & PG.locked:
        raise KernelBug(f"try_to_release_page() of an unlocked page: {page!r}")
    if page.flags & PG.writeback:
        return 0
    mapping = page.mapping
    if mapping is not None and not mapping.anon:
        a_ops = mapping.a_ops  # type: ignore[union-attr]
        release = a_ops.releasepage
        if release is not None:
            rc = returned(a_ops, "releasepage", release(page, gfp))
            if rc and page.flags & PG.private:
                _kept_buffers(a_ops, page, rc)
            return rc
    # fs/buffer.c builds on the page cache, so it is imported when first needed.
    from fsaops.buffer import try_to_free_buffers

    return try_to_free_buffers(page)


def _kept_buffers(a_ops: AddressSpaceOperations, page: Page, rc: int) -> NoReturn:
    """A ``releasepage`` said it freed the buffers but left ``PG.private``: a broken promise.

    ``try_to_release_page`` returns non-zero only when the buffers are gone,
    and its callers go on as if they were: the kernel would never move a
    page whose buffers still hold their reference, or would leak them (and
    leave them pointing at a freed page) when the table dropped that
    reference too.  Either way the run fails here, naming the table.

    Raises:
        PluginFault: always.
    """
    from fsaops.buffer import BufferHead

    head = page.private
    left = (
        "still has its buffers (PG_private)"
        if isinstance(head, BufferHead)
        else f"has PG_private set but private {shown(head)}, not a buffer head"
    )
    raise PluginFault(
        f"releasepage of table {a_ops.name} ({member_name(a_ops.releasepage)}) returned "
        f"{rc}, which says the buffers were freed, but pfn {page.pfn} {left}: free them and "
        "clear PG_private before saying so (try_to_free_buffers does)"
    )


def truncate_inode_pages(mapping: AddressSpace, lstart: int) -> int:
    """Drop every cached page from byte ``lstart`` on (``truncate_inode_pages``).

    Each page is locked, waited on for writeback, has its buffers
    invalidated and leaves the tree; ptes mapping it are left alone, as in
    2.6.15 (the caller unmaps first).  Returns how many pages went.
    """
    from fsaops.buffer import block_invalidatepage

    kernel = mapping.kernel
    first = (lstart + kernel.page_size - 1) >> kernel.page_shift
    dropped = 0
    for index in range(first, len(mapping.page_tree)):
        page = find_lock_page(mapping, index)
        if page is None:
            continue
        wait_on_page_writeback(page)
        if page_has_buffers(page):
            invalidate = mapping.a_ops.invalidatepage or block_invalidatepage
            invalidate(page, 0)
        page.flags &= ~(PG.dirty | PG.checked | PG.uptodate)
        remove_from_page_cache(page)
        put_page(page)  # the cache's reference
        unlock_page(page)
        put_page(page)  # ours
        dropped += 1
    return dropped


def page_cache_get(page: Page) -> None:
    """Alias of :func:`~fsaops.page.get_page` (``page_cache_get``)."""
    get_page(page)
