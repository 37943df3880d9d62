"""The swap device, the swap cache and ``add_to_swap``.

Kernel counterparts: ``mm/swapfile.c``, ``mm/swap_state.c``, ``mm/page_io.c``.

The swap device has slots of one page each with real bytes behind them;
slot 0 is the header and is never handed out, so a swap entry is the slot
number and 0 means "none".  ``swap_map[slot]`` counts the users of a slot:
one for the swap cache and one per swap pte.

The swap cache is ``swapper_space``, an address space keyed by swap entry,
whose operations table comes from the ``swap`` plugin (``swap_aops``).  An
anonymous page in the swap cache has ``PG.swapcache`` and its entry in
``private``.
"""

from __future__ import annotations

import threading
from array import array
from typing import TYPE_CHECKING

from fsaops.errors import KernelBug
from fsaops.lru import lru_cache_add_active
from fsaops.memory import anonymous_memory
from fsaops.page import (
    PG,
    Page,
    end_page_writeback,
    page_address,
    put_page,
    trylock_page,
    unlock_page,
)

if TYPE_CHECKING:
    from fsaops.kernel import Kernel
    from fsaops.mapping import AddressSpace
    from fsaops.writeback import WritebackControl

__all__ = [
    "SwapInfo",
    "add_to_swap",
    "add_to_swap_cache",
    "can_share_swap_page",
    "delete_from_swap_cache",
    "delete_from_swap_cache_locked",
    "free_page_and_swap_cache",
    "free_swap_and_cache",
    "lookup_swap_cache",
    "read_swap_cache_async",
    "remove_exclusive_swap_page",
    "swap_readpage",
    "swap_writepage",
    "vm_swap_full",
]


class SwapInfo:
    """One swap device (``struct swap_info_struct``) with real bytes."""

    __slots__ = ("_free", "_lock", "kernel", "mem", "nr_slots", "swap_map")

    def __init__(self, kernel: Kernel, nr_slots: int) -> None:
        self.kernel = kernel
        self.nr_slots = nr_slots
        size = (nr_slots + 1) * kernel.page_size
        self.mem = memoryview(anonymous_memory(size, "the swap device"))
        self.swap_map = array("l", bytes(8 * (nr_slots + 1)))
        self._free = list(range(nr_slots, 0, -1))
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<SwapInfo {self.nr_slots} slots, {self.nr_swap_pages} free>"

    @property
    def nr_swap_pages(self) -> int:
        """Free slots (``nr_swap_pages``)."""
        return len(self._free)

    def get_swap_page(self) -> int:
        """Allocate a slot with one user; 0 when the device is full."""
        faults = self.kernel.faults
        if faults is not None and faults.fail_swap():
            return 0
        with self._lock:
            if not self._free:
                return 0
            entry = self._free.pop()
            self.swap_map[entry] = 1
        return entry

    def swap_duplicate(self, entry: int) -> None:
        """Add a user to a slot (a new swap pte)."""
        with self._lock:
            if self.swap_map[entry] <= 0:
                raise KernelBug(f"swap_duplicate() of free swap entry {entry}")
            self.swap_map[entry] += 1

    def swap_duplicate_used(self, entry: int) -> bool:
        """Add a user to a slot that still has one; ``False`` if it was freed meanwhile.

        ``swap_duplicate`` as ``add_to_swap_cache`` calls it: a fault that saw
        a swap pte may find its slot freed by the time it reads it in (the
        pte was given its page back); that is ``-ENOENT``, not a bug.
        """
        with self._lock:
            if self.swap_map[entry] <= 0:
                return False
            self.swap_map[entry] += 1
        return True

    def swap_free(self, entry: int) -> None:
        """Drop a user of a slot; the last one frees it."""
        with self._lock:
            count = self.swap_map[entry] - 1
            if count < 0:
                raise KernelBug(f"swap_free() of free swap entry {entry}")
            self.swap_map[entry] = count
            if count == 0:
                self._free.append(entry)

    def slot(self, entry: int) -> memoryview:
        """The bytes of a slot."""
        ps = self.kernel.page_size
        return self.mem[entry * ps : (entry + 1) * ps]


def _swapper(kernel: Kernel) -> AddressSpace:
    mapping = kernel.swapper_space
    if mapping is None:
        raise KernelBug("swap cache used with no swap device")
    return mapping


def add_to_swap_cache(page: Page, entry: int) -> bool:
    """Insert a locked page into the swap cache at ``entry`` (``__add_to_swap_cache``)."""
    mapping = _swapper(page.node.kernel)
    with mapping.tree_lock:
        if not mapping._insert(entry, page):
            return False
        page.count += 1
        page.flags |= PG.swapcache
        page.private = entry
    return True


def delete_from_swap_cache_locked(page: Page) -> None:
    """Take a page out of the swap cache; ``tree_lock`` held (``__delete_from_swap_cache``).

    The caller releases the slot and drops the cache's page reference.
    """
    mapping = _swapper(page.node.kernel)
    mapping._delete(page.private)
    page.private = 0
    page.flags &= ~PG.swapcache


def delete_from_swap_cache(page: Page) -> None:
    """Take a locked page out of the swap cache, release its slot and the cache reference."""
    kernel = page.node.kernel
    mapping = _swapper(kernel)
    entry = page.private
    with mapping.tree_lock:
        delete_from_swap_cache_locked(page)
    kernel.swap_info().swap_free(entry)
    put_page(page)


def add_to_swap(page: Page) -> int:
    """Give a locked anonymous page a swap slot and put it in the swap cache.

    The page is marked up to date and dirty: the slot holds no copy of it
    yet.  Returns 1 on success, 0 when there is no swap or no free slot.
    """
    if not page.flags & PG.locked:
        raise KernelBug(f"add_to_swap() of an unlocked page: {page!r}")
    kernel = page.node.kernel
    swap = kernel.swap
    if swap is None:
        return 0
    while True:
        entry = swap.get_swap_page()
        if not entry:
            return 0
        if add_to_swap_cache(page, entry):
            page.flags |= PG.uptodate | PG.dirty
            kernel.vmstat.swap_cache_add += 1
            return 1
        swap.swap_free(entry)


def lookup_swap_cache(kernel: Kernel, entry: int) -> Page | None:
    """Find the swap-cache page for ``entry`` and take a reference."""
    mapping = kernel.swapper_space
    if mapping is None:
        return None
    with mapping.tree_lock:
        page = mapping.lookup(entry)
        if page is not None:
            page.count += 1
    return page


def swap_readpage(page: Page) -> int:
    """Read a locked swap-cache page from its slot; unlocks it."""
    kernel = page.node.kernel
    page_address(page)[:] = kernel.swap_info().slot(page.private)
    page.flags |= PG.uptodate
    kernel.vmstat.pswpin += 1
    unlock_page(page)
    return 0


def read_swap_cache_async(kernel: Kernel, entry: int, nid: int) -> Page | None:
    """Find or read the page of ``entry`` into the swap cache, with a reference.

    Returns ``None`` when memory is short, or when the slot was freed since
    the caller saw the swap pte (``add_to_swap_cache`` fails with
    ``-ENOENT``): the caller looks at its pte again.
    """
    swap = kernel.swap_info()
    while True:
        page = lookup_swap_cache(kernel, entry)
        if page is not None:
            return page
        new = kernel.nodes[nid].alloc_page()
        if new is None:
            return None
        if not trylock_page(new):
            raise KernelBug("a newly allocated page is locked")
        # add_to_swap_cache(): swap_duplicate() first, -ENOENT for a freed slot.
        if not swap.swap_duplicate_used(entry):
            unlock_page(new)
            put_page(new)
            return None
        if add_to_swap_cache(new, entry):
            kernel.vmstat.swap_cache_add += 1  # add_to_swap_cache's INC_CACHE_INFO(add_total)
            lru_cache_add_active(new)
            kernel.swap_reads.add(new.pfn)
            swap_readpage(new)
            return new
        swap.swap_free(entry)
        unlock_page(new)
        put_page(new)


def _end_swap_write(page: Page) -> None:
    end_page_writeback(page)


def vm_swap_full(kernel: Kernel) -> bool:
    """More than half the swap device is in use (``vm_swap_full()``, include/linux/swap.h).

    ``nr_swap_pages * 2 < total_swap_pages``: a swap fault then gives the
    slot of a page it maps back up (:func:`remove_exclusive_swap_page`).
    False without a swap device.
    """
    swap = kernel.swap
    return swap is not None and swap.nr_swap_pages * 2 < swap.nr_slots


def remove_exclusive_swap_page(page: Page) -> int:
    """Take a locked page out of the swap cache if nothing else uses it or its slot.

    ``remove_exclusive_swap_page`` (mm/swapfile.c): a swap-cache page that
    is not under writeback, whose only references are the caller's and the
    cache's (``page_count == 2``), and whose slot only the cache uses (no
    swap pte holds it), leaves the swap cache: the slot is freed, the
    cache's reference dropped, and the page dirtied (its data now lives
    only in memory).  Returns 1 if it did, else 0.
    """
    if not page.flags & PG.locked:
        raise KernelBug(f"remove_exclusive_swap_page() of an unlocked page: {page!r}")
    if not page.flags & PG.swapcache or page.flags & PG.writeback or page.count != 2:
        return 0
    kernel = page.node.kernel
    swap = kernel.swap_info()
    entry = page.private
    if swap.swap_map[entry] != 1:
        return 0
    mapping = _swapper(kernel)
    with mapping.tree_lock:
        # Recheck with the swap cache's lock held.
        if page.count != 2 or page.flags & PG.writeback:
            return 0
        delete_from_swap_cache_locked(page)
        page.flags |= PG.dirty
    swap.swap_free(entry)
    put_page(page)
    return 1


def can_share_swap_page(page: Page) -> bool:
    """Whether the process faulting on a locked anonymous page is its only user.

    ``can_share_swap_page`` (mm/swapfile.c, 2.6.13 to 2.6.17), which a
    write fault asks before it writes to the page in place rather than to
    a copy.  It counts the page's users by where they can reach it, not
    by references: the ptes that map it (``page_mapcount``) and, for a
    swap-cache page mapped at most once, the swap ptes that still hold its
    slot (``page_swapcount``: the slot's count less the swap cache's own).
    The page may be shared only when that sum is one.  A reference taken
    by someone who maps nothing (``get_user_pages``, a migration, the
    swap cache itself) does not make the fault copy the page, so a direct
    I/O a process has pinned its page for lands in the page it maps (the
    2.6.12 rule counted references, and copied such a page from under the
    I/O).
    """
    if not page.flags & PG.locked:
        raise KernelBug(f"can_share_swap_page() of an unlocked page: {page!r}")
    count = page.mapcount
    if count <= 1 and page.flags & PG.swapcache:
        count += page.node.kernel.swap_info().swap_map[page.private] - 1
    return count == 1


def swap_writepage(page: Page, wbc: WritebackControl) -> int:
    """Write a locked swap-cache page to its slot (``swap_writepage``).

    As in 2.6.15, a page that nothing but the swap cache uses is not
    written at all: :func:`remove_exclusive_swap_page` takes it out of the
    swap cache (dirty again), and it is unlocked.  Otherwise writeback
    starts, the page is unlocked, its bytes are copied into the slot, and
    writeback ends ``io_latency`` ticks later.  Returns 0.
    """
    from fsaops.writeback import set_page_writeback

    if remove_exclusive_swap_page(page):
        unlock_page(page)
        return 0
    kernel = page.node.kernel
    set_page_writeback(page)
    unlock_page(page)
    kernel.swap_info().slot(page.private)[:] = page_address(page)
    kernel.vmstat.pswpout += 1
    kernel.vmstat.nr_writepage += 1
    kernel.sched.call_later(kernel.io_latency, _end_swap_write, page)
    return 0


def free_page_and_swap_cache(page: Page) -> None:
    """Drop a pte's reference to a page, and the swap cache's if only they held it.

    ``free_page_and_swap_cache`` (mm/swap_state.c, 2.6.15), what unmapping
    a present pte does with its page: a swap-cache page that is not locked
    goes through :func:`remove_exclusive_swap_page`, which takes it out of
    the swap cache and frees its slot when nobody else holds the page or the
    slot; then the reference is dropped.
    """
    if page.flags & PG.swapcache and trylock_page(page):
        remove_exclusive_swap_page(page)
        unlock_page(page)
    put_page(page)


def free_swap_and_cache(kernel: Kernel, entry: int) -> None:
    """Drop a swap pte's use of ``entry``, and the cached page's if nothing else needs it.

    ``free_swap_and_cache`` (mm/swapfile.c, 2.6.15): when only the swap
    cache still uses the slot, its page leaves the swap cache, dirty (its
    data now lives only in memory), if nobody else holds the page or if the
    device is more than half full (:func:`vm_swap_full`), and it is not
    under writeback; a page someone has locked is left alone.
    """
    swap = kernel.swap_info()
    swap.swap_free(entry)
    if swap.swap_map[entry] != 1:
        return
    page = lookup_swap_cache(kernel, entry)
    if page is None:
        return
    if trylock_page(page):
        one_user = page.count == 2  # the swap cache's reference and ours
        if (
            page.flags & PG.swapcache
            and page.private == entry
            and not page.flags & PG.writeback
            and (one_user or vm_swap_full(kernel))
        ):
            delete_from_swap_cache(page)
            page.flags |= PG.dirty  # SetPageDirty
        unlock_page(page)
    put_page(page)
