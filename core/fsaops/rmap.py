"""Processes, memory areas, page tables, faults and reverse mapping.

Kernel counterparts: ``mm/rmap.c``, ``mm/memory.c``.

A process's memory is an :class:`Mm` (``struct mm_struct``) with areas
(:class:`Vma`) and a page table from virtual page number to :class:`Pte`.
A pte is present (it points at a page, with young and dirty bits) or holds
a swap entry.  A present pte is writable unless its page number is in the
process's ``wrprotect`` set: an anonymous page mapped back from swap by a
read, whose first write takes a write-protect fault (``do_wp_page``).
Every present pte holds a reference on its page and counts in its
``mapcount``; every swap pte counts in its slot's ``swap_map``.

Reverse mapping finds the ptes of a page: through its ``anon_vma`` for
anonymous pages, through the file's ``i_mmap`` list for file pages.
:func:`try_to_unmap` uses it to take a page out of every page table, as
migration and ``swap_page`` must before moving or dropping it, and
:func:`remove_from_swap` to give a migrated anonymous page its ptes back
(when the kernel's semantics can: not before 2.6.16).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from fsaops.errors import FsaopsError, KernelBug
from fsaops.fs import read_cache_page
from fsaops.lru import lru_cache_add_active, mark_page_accessed
from fsaops.page import (
    PG,
    Page,
    get_page,
    lock_page,
    page_address,
    page_anon,
    put_page,
    trylock_page,
    unlock_page,
)
from fsaops.spinlock import Spinlock
from fsaops.swap import (
    can_share_swap_page,
    delete_from_swap_cache,
    free_page_and_swap_cache,
    free_swap_and_cache,
    lookup_swap_cache,
    read_swap_cache_async,
    remove_exclusive_swap_page,
    vm_swap_full,
)
from fsaops.writeback import set_page_dirty

if TYPE_CHECKING:
    from collections.abc import Callable

    from fsaops.fs import Inode
    from fsaops.kernel import Kernel
    from fsaops.mapping import AddressSpace

__all__ = [
    "SWAP_AGAIN",
    "SWAP_FAIL",
    "SWAP_SUCCESS",
    "VM_LOCKED",
    "VM_READ",
    "VM_SHARED",
    "VM_WRITE",
    "AnonVma",
    "Mm",
    "Pte",
    "Vma",
    "handle_mm_fault",
    "page_lock_anon_vma",
    "page_referenced_ptes",
    "page_unlock_anon_vma",
    "remove_from_swap",
    "remove_from_swap_2616",
    "remove_from_swap_v4",
    "try_to_unmap",
]

VM_READ = 0x1
VM_WRITE = 0x2
VM_SHARED = 0x8
VM_LOCKED = 0x2000

_SWAP_FAULT_RECHECK = True
"""Testing only: ``False`` removes V4 1/6's re-check in :func:`handle_mm_fault`.

That is the re-check after ``lock_page`` that the page is still the swap
cache's page of the entry and that the pte is still that swap pte
(``pte_same``).  With it gone, a swap fault that slept in ``lock_page``
while the page was migrated maps a page anyway: the race the re-check
closes.  The
explorer's tests turn it off to show that they find that race; nothing
else may.
"""

SWAP_SUCCESS = 0
SWAP_AGAIN = 1
SWAP_FAIL = 2


class AnonVma:
    """The areas an anonymous page may be mapped in (``struct anon_vma``).

    ``anon`` is always True: a page whose ``mapping`` is an anon_vma is
    ``PageAnon`` (the kernel tags the pointer's low bit instead).
    """

    anon: bool

    __slots__ = ("anon", "lock", "vmas")

    def __init__(self) -> None:
        self.anon = True
        self.vmas: list[Vma] = []
        self.lock = Spinlock("anon_vma lock", self)

    def __repr__(self) -> str:
        return f"<AnonVma {len(self.vmas)} vma(s)>"


class Vma:
    """A memory area of a process (``struct vm_area_struct``), in page numbers.

    Attributes:
        vm_start, vm_end: the first and one-past-last virtual page numbers.
        vm_flags: ``VM_*`` bits.
        vm_file: the mapped file's address space, or ``None`` for anonymous memory.
        vm_pgoff: the file page mapped at ``vm_start`` (for anonymous areas,
            ``vm_start``, so an anonymous page's index is its page number).
        anon_vma: the area's anon_vma (anonymous areas).
        nid: the node new pages of the area are allocated on (a
            ``MPOL_BIND``-like policy), or ``None`` for the kernel's default.
    """

    __slots__ = ("anon_vma", "mm", "nid", "vm_end", "vm_file", "vm_flags", "vm_pgoff", "vm_start")

    def __init__(
        self,
        mm: Mm,
        start: int,
        end: int,
        flags: int,
        *,
        vm_file: AddressSpace | None = None,
        pgoff: int | None = None,
        nid: int | None = None,
    ) -> None:
        self.mm = mm
        self.vm_start = start
        self.vm_end = end
        self.vm_flags = flags
        self.vm_file = vm_file
        self.vm_pgoff = start if pgoff is None else pgoff
        self.anon_vma = None if vm_file is not None else AnonVma()
        if self.anon_vma is not None:
            self.anon_vma.vmas.append(self)
        self.nid = nid

    def __repr__(self) -> str:
        kind = self.vm_file.name if self.vm_file is not None else "anon"
        locked = " locked" if self.vm_flags & VM_LOCKED else ""
        return f"<Vma {self.mm.pid} {self.vm_start:#x}-{self.vm_end:#x} {kind}{locked}>"

    def address(self, page: Page) -> int:
        """The virtual page number mapping ``page`` here, or -1 (``vma_address``)."""
        vpn = self.vm_start + (page.index - self.vm_pgoff)
        return vpn if self.vm_start <= vpn < self.vm_end else -1


class Pte:
    """A page-table entry: present (``page``) or swapped (``swp``)."""

    __slots__ = ("dirty", "page", "swp", "young")

    def __init__(self, page: Page | None, swp: int = 0) -> None:
        self.page = page
        self.swp = swp
        self.young = page is not None
        self.dirty = False

    def __repr__(self) -> str:
        if self.page is not None:
            bits = ("y" if self.young else "") + ("d" if self.dirty else "")
            return f"<Pte pfn={self.page.pfn} {bits}>"
        return f"<Pte swap={self.swp}>"


class Mm:
    """A process's address space (``struct mm_struct``)."""

    __slots__ = (
        "_next_vpn",
        "kernel",
        "mmap_sem",
        "name",
        "page_table_lock",
        "pid",
        "ptes",
        "uid",
        "vmas",
        "wrprotect",
    )

    def __init__(self, kernel: Kernel, pid: int, *, uid: int = 0, name: str = "") -> None:
        self.kernel = kernel
        self.pid = pid
        self.uid = uid
        self.name = name or f"task{pid}"
        self.vmas: list[Vma] = []
        self.ptes: dict[int, Pte] = {}
        #: The page numbers whose present pte is read-only (a private
        #: anonymous page mapped back by a read): a write there takes a
        #: write-protect fault.  Whoever installs a present pte says whether
        #: it is writable; nothing else needs to look after the set.
        self.wrprotect: set[int] = set()
        self.page_table_lock = Spinlock("page_table_lock", self)
        self.mmap_sem = threading.RLock()
        self._next_vpn = 0x10

    def __repr__(self) -> str:
        return f"<Mm pid={self.pid} {len(self.vmas)} vma(s) {len(self.ptes)} pte(s)>"

    def find_vma(self, vpn: int) -> Vma | None:
        """The area containing page number ``vpn``."""
        for vma in self.vmas:
            if vma.vm_start <= vpn < vma.vm_end:
                return vma
        return None

    def _place(self, npages: int) -> int:
        start = self._next_vpn
        self._next_vpn = start + npages + 1  # a guard page between areas
        return start

    def mmap_anon(self, npages: int, *, locked: bool = False, nid: int | None = None) -> Vma:
        """Map ``npages`` of anonymous memory (``mmap(MAP_PRIVATE|MAP_ANONYMOUS)``)."""
        if npages <= 0:
            raise FsaopsError("mmap of zero pages")
        start = self._place(npages)
        flags = VM_READ | VM_WRITE | (VM_LOCKED if locked else 0)
        vma = Vma(self, start, start + npages, flags, nid=nid)
        self.vmas.append(vma)
        return vma

    def mmap_file(self, inode: Inode, pgoff: int, npages: int, *, locked: bool = False) -> Vma:
        """Map ``npages`` of a file from page ``pgoff`` (``mmap(MAP_SHARED)``)."""
        if npages <= 0:
            raise FsaopsError("mmap of zero pages")
        start = self._place(npages)
        flags = VM_READ | VM_WRITE | VM_SHARED | (VM_LOCKED if locked else 0)
        mapping = inode.i_mapping
        vma = Vma(self, start, start + npages, flags, vm_file=mapping, pgoff=pgoff)
        with mapping.i_mmap_lock:
            mapping.i_mmap.append(vma)
        self.vmas.append(vma)
        return vma

    def munmap(self, vma: Vma) -> None:
        """Unmap an area: drop its ptes and references (``do_munmap``).

        As ``zap_pte_range`` does, a dirty pte of a file page dirties it and
        a young one marks it accessed (an anonymous page's data dies with
        its mapping: its bits are dropped), a present pte's page is released
        through :func:`~fsaops.swap.free_page_and_swap_cache` (leaving the
        swap cache if nothing else needs it there), and a swap pte's slot
        through :func:`~fsaops.swap.free_swap_and_cache`.
        """
        with self.mmap_sem:
            for vpn in range(vma.vm_start, vma.vm_end):
                with self.page_table_lock:
                    pte = self.ptes.pop(vpn, None)
                    self.wrprotect.discard(vpn)
                if pte is None:
                    continue
                if pte.page is not None:
                    page = pte.page
                    if not page_anon(page):
                        # zap_pte_range passes the bits on for a file page
                        # only: an anonymous page's data dies with its ptes.
                        if pte.dirty:
                            set_page_dirty(page)
                        if pte.young:
                            mark_page_accessed(page)
                    page_remove_rmap(page)
                    free_page_and_swap_cache(page)  # tlb_remove_page
                else:
                    free_swap_and_cache(self.kernel, pte.swp)
            if vma not in self.vmas or (vma.vm_file is not None and vma not in vma.vm_file.i_mmap):
                held = "its process's area list" if vma not in self.vmas else "its file's i_mmap"
                raise KernelBug(
                    f"munmap of process {self.pid}'s area [{vma.vm_start}, {vma.vm_end}), which "
                    f"{held} does not hold: list corruption (the kernel would oops unlinking it)"
                )
            self.vmas.remove(vma)
            if vma.vm_file is not None:
                with vma.vm_file.i_mmap_lock:
                    vma.vm_file.i_mmap.remove(vma)
            elif vma.anon_vma is not None:
                with vma.anon_vma.lock:
                    vma.anon_vma.vmas.remove(vma)

    def read(self, addr: int, length: int) -> bytes:
        """Read process memory at byte address ``addr``, faulting pages in."""
        out = bytearray(length)
        self._access(addr, memoryview(out), write=False)
        return bytes(out)

    def write(self, addr: int, data: bytes | bytearray | memoryview) -> None:
        """Write process memory at byte address ``addr``, faulting pages in."""
        self._access(addr, memoryview(data).cast("B"), write=True)

    def store(self, addr: int, make: Callable[[], bytes]) -> None:
        """Store ``make()`` at byte address ``addr``, the bytes made as the store lands.

        The page is faulted in for writing until its pte is present and
        writable; then, under the page table lock, with nothing between,
        ``make`` is called and what it returns is written.  A checker that
        numbers each write thus learns the order the writes reach memory
        in, not the order they were begun.

        Raises:
            ValueError: ``make()`` runs past the end of the page.
        """
        vpn, off = divmod(addr, self.kernel.page_size)
        while True:
            with self.page_table_lock:
                pte = self.ptes.get(vpn)
                if pte is not None and pte.page is not None and vpn not in self.wrprotect:
                    data = make()
                    if off + len(data) > self.kernel.page_size:
                        raise ValueError(
                            f"a store of {len(data)} bytes at {addr:#x} crosses a page"
                        )
                    page_address(pte.page)[off : off + len(data)] = data
                    pte.dirty = True
                    pte.young = True
                    return
            handle_mm_fault(self, vpn, True)

    def _access(self, addr: int, buf: memoryview, write: bool) -> None:
        shift = self.kernel.page_shift
        ps = self.kernel.page_size
        done = 0
        while done < len(buf):
            vpn, off = divmod(addr + done, ps)
            chunk = min(ps - off, len(buf) - done)
            with self.page_table_lock:
                pte = self.ptes.get(vpn)
                if (
                    pte is not None
                    and pte.page is not None
                    and not (write and self.wrprotect and vpn in self.wrprotect)
                ):
                    data = page_address(pte.page)
                    if write:
                        data[off : off + chunk] = buf[done : done + chunk]
                        pte.dirty = True
                    else:
                        buf[done : done + chunk] = data[off : off + chunk]
                    pte.young = True
                    done += chunk
                    continue
            handle_mm_fault(self, vpn, write)
        del shift


def page_add_anon_rmap(page: Page, vma: Vma, vpn: int) -> None:
    """Count a new pte of an anonymous page; the first one sets its anon_vma and index."""
    if page.mapcount == 0:
        page.mapping = vma.anon_vma
        page.index = vma.mm.kernel.intern(vma.vm_pgoff + (vpn - vma.vm_start))
    page.mapcount += 1


def page_add_file_rmap(page: Page) -> None:
    """Count a new pte of a file page."""
    page.mapcount += 1


def page_remove_rmap(page: Page) -> None:
    """Uncount a pte that no longer maps the page."""
    count = page.mapcount - 1
    page.mapcount = count
    if count < 0:
        raise KernelBug(f"mapcount of pfn {page.pfn} went negative")


def _alloc_nid(vma: Vma) -> int:
    return vma.mm.kernel.alloc_nid if vma.nid is None else vma.nid


def handle_mm_fault(mm: Mm, vpn: int, write: bool) -> None:
    """Make page ``vpn`` present (``handle_mm_fault``).

    Anonymous pages are allocated zeroed; file pages come from the page
    cache (read from disk if needed); swap ptes are read back through the
    swap cache.  A swap-cache page found unlocked but no longer in the swap
    cache was migrated under us: it is released and the lookup repeated
    (V4 1/6).  A file page or a page found through a swap pte is marked
    accessed (``mark_page_accessed``, as ``filemap_nopage`` and
    ``do_swap_page`` do).  When the swap device is more than half full
    (:func:`~fsaops.swap.vm_swap_full`), a page mapped back from swap that
    nothing else uses leaves the swap cache and frees its slot.  A write
    through a swap pte maps the page writable and dirty only if this
    process is its only user (:func:`~fsaops.swap.can_share_swap_page`);
    otherwise, as ``do_swap_page`` hands a write to ``do_wp_page``, the
    process gets a copy of its own and the page stays in the swap cache.
    A read through a swap pte maps the page read-only (as
    ``remove_from_swap`` does), so the process's first write to it takes a
    write-protect fault that asks the same question.

    Raises:
        FsaopsError: no area maps ``vpn`` (a segmentation fault) or memory ran out.
    """
    kernel = mm.kernel
    vma = mm.find_vma(vpn)
    if vma is None:
        raise FsaopsError(f"segmentation fault: pid {mm.pid} page {vpn:#x} is not mapped")
    while True:
        with mm.page_table_lock:
            pte = mm.ptes.get(vpn)
            present = pte is not None and pte.page is not None
            if present and not (write and vpn in mm.wrprotect):
                return
        kernel.vmstat.pgfault += 1
        if present:
            assert pte is not None and pte.page is not None
            _do_wp_page(mm, vma, vpn, pte.page)
            return
        if pte is None:
            if vma.vm_file is None:
                page = kernel.nodes[_alloc_nid(vma)].alloc_page()
                if page is None:
                    raise FsaopsError("out of memory in a page fault (ENOMEM)")
                page_address(page)[:] = bytes(kernel.page_size)
                page.flags |= PG.uptodate
                with mm.page_table_lock:
                    if vpn in mm.ptes:
                        put_page(page)
                        continue
                    page_add_anon_rmap(page, vma, vpn)
                    mm.ptes[vpn] = Pte(page)
                    mm.wrprotect.discard(vpn)
                lru_cache_add_active(page)
                return
            index = vma.vm_pgoff + (vpn - vma.vm_start)
            page = read_cache_page(vma.vm_file, index, _alloc_nid(vma))
            mark_page_accessed(page)  # filemap_nopage: "Found the page"
            with mm.page_table_lock:
                if vpn in mm.ptes:
                    put_page(page)
                    continue
                page_add_file_rmap(page)
                mm.ptes[vpn] = Pte(page)
                mm.wrprotect.discard(vpn)
            return
        entry = pte.swp
        page = lookup_swap_cache(kernel, entry)
        if page is None:
            page = read_swap_cache_async(kernel, entry, _alloc_nid(vma))
            if page is None:
                with mm.page_table_lock:
                    cur = mm.ptes.get(vpn)
                    changed = cur is not pte or cur.page is not None or cur.swp != entry
                if changed:  # somebody else faulted the pte in (or freed its slot)
                    continue
                raise FsaopsError("out of memory in a swap fault (ENOMEM)")
            kernel.vmstat.pgmajfault += 1
        mark_page_accessed(page)
        lock_page(page)
        if _SWAP_FAULT_RECHECK and (not page.flags & PG.swapcache or page.private != entry):
            # Migrated (or dropped) while we slept on the lock: look again.
            kernel.vmstat.swap_fault_retry += 1
            unlock_page(page)
            put_page(page)
            continue
        with mm.page_table_lock:
            cur = mm.ptes.get(vpn)
            if _SWAP_FAULT_RECHECK and (cur is not pte or cur.page is not None or cur.swp != entry):
                unlock_page(page)
                put_page(page)
                continue
            # A write may go to the page itself only if this process is its
            # only user, asked before the pte is set, under the same lock: no
            # other fault of the process sees the pte read-only meanwhile.
            # Otherwise the pte is read-only and do_wp_page gives a copy.
            reuse = write and can_share_swap_page(page)
            pte.page = page
            pte.swp = 0
            pte.young = True
            pte.dirty = reuse
            if reuse:
                mm.wrprotect.discard(vpn)  # maybe_mkwrite(pte_mkdirty(pte))
            else:
                mm.wrprotect.add(vpn)  # mk_pte(page, vm_page_prot): read-only
            page_add_anon_rmap(page, vma, vpn)
        kernel.swap_info().swap_free(entry)
        if vm_swap_full(kernel):
            # A swap device over half full keeps no copy it can do without:
            # a page only the swap cache and this pte use leaves the cache,
            # dirty, and its slot is freed (do_swap_page, 2.6.15).
            remove_exclusive_swap_page(page)
        unlock_page(page)
        if write and not reuse:
            _do_wp_page(mm, vma, vpn, page)
        return


def _do_wp_page(mm: Mm, vma: Vma, vpn: int, page: Page) -> None:
    """A write to a read-only pte of an anonymous page (``do_wp_page``, 2.6.15).

    If the page is not locked and this process is its only user
    (:func:`~fsaops.swap.can_share_swap_page`), the pte becomes writable
    and dirty; otherwise the process gets a copy of its own.
    """
    with mm.page_table_lock:
        pte = mm.ptes.get(vpn)
        if pte is None or pte.page is not page:
            return  # changed meanwhile: the access looks again
        if page_anon(page) and trylock_page(page):
            reuse = can_share_swap_page(page)
            unlock_page(page)
            if reuse:
                pte.young = True
                pte.dirty = True
                mm.wrprotect.discard(vpn)
                return
    _copy_on_write(mm, vma, vpn, page)


def _copy_on_write(mm: Mm, vma: Vma, vpn: int, old: Page) -> None:
    """Give page ``vpn`` of ``mm`` its own copy of the anonymous page ``old`` (``do_wp_page``).

    A new page on the area's node gets ``old``'s data; if the pte is still
    the one the fault began from (``pte_same``: it maps ``old``, read-only),
    it points at the new page, dirty, and ``old`` loses the pte's mapcount
    and reference.  Otherwise the copy is dropped: the pte changed
    meanwhile, for one by another fault that made it writable, whose
    writes to ``old`` the copy would not hold.

    Raises:
        FsaopsError: memory ran out.
    """
    kernel = mm.kernel
    with mm.page_table_lock:
        pte = mm.ptes.get(vpn)
        if pte is None or pte.page is not old or vpn not in mm.wrprotect:
            return  # changed meanwhile: the access looks again
        get_page(old)  # page_cache_get(old_page)
    new = kernel.nodes[_alloc_nid(vma)].alloc_page()
    if new is None:
        put_page(old)
        raise FsaopsError("out of memory in a write fault (ENOMEM)")
    page_address(new)[:] = page_address(old)
    new.flags |= PG.uptodate
    with mm.page_table_lock:
        pte = mm.ptes.get(vpn)
        replaced = pte is not None and pte.page is old and vpn in mm.wrprotect  # pte_same
        if replaced:
            assert pte is not None
            page_remove_rmap(old)
            pte.page = new
            pte.young = True
            pte.dirty = True
            mm.wrprotect.discard(vpn)
            page_add_anon_rmap(new, vma, vpn)
    put_page(old)  # ours
    if not replaced:
        put_page(new)
        return
    lru_cache_add_active(new)
    kernel.cow_copies.add(new.pfn)
    put_page(old)  # the pte's reference


def _try_to_unmap_one(page: Page, vma: Vma, ignore_refs: bool) -> int:
    vpn = vma.address(page)
    if vpn < 0:
        return SWAP_AGAIN
    mm = vma.mm
    kernel = mm.kernel
    with mm.page_table_lock:
        pte = mm.ptes.get(vpn)
        if pte is None or pte.page is not page:
            return SWAP_AGAIN
        if vma.vm_flags & VM_LOCKED:
            return SWAP_FAIL
        young = pte.young
        pte.young = False
        if young and not ignore_refs:
            return SWAP_FAIL
        if pte.dirty:
            set_page_dirty(page)
        if page_anon(page):
            if not page.flags & PG.swapcache:
                raise KernelBug(f"unmapping an anonymous page that has no swap entry: {page!r}")
            entry = page.private
            kernel.swap_info().swap_duplicate(entry)
            pte.page = None
            pte.swp = entry
            pte.dirty = False
        else:
            del mm.ptes[vpn]
        page_remove_rmap(page)
    put_page(page)
    return SWAP_AGAIN


def try_to_unmap(page: Page, ignore_refs: bool = False) -> int:
    """Remove every pte mapping a locked page (``try_to_unmap``).

    Anonymous ptes become swap ptes of the page's swap entry; file ptes are
    cleared.  An area with ``VM_LOCKED`` refuses; so does a young pte
    (recently referenced) unless ``ignore_refs`` (the January 2006 change:
    V4 has no such argument and behaves as ``ignore_refs=False``).  The
    young bit is cleared on the way, so a second try can succeed.

    Returns ``SWAP_SUCCESS`` when the page is no longer mapped,
    ``SWAP_FAIL`` on a refusal, ``SWAP_AGAIN`` otherwise.
    """
    if not page.flags & PG.locked:
        raise KernelBug(f"try_to_unmap() of an unlocked page: {page!r}")
    mapping = page.mapping
    ret = SWAP_AGAIN
    if mapping is None:
        return SWAP_SUCCESS if page.mapcount == 0 else SWAP_AGAIN
    if mapping.anon:
        with mapping.lock:  # type: ignore[union-attr]
            vmas = list(mapping.vmas)  # type: ignore[union-attr]
    else:
        with mapping.i_mmap_lock:  # type: ignore[union-attr]
            vmas = list(mapping.i_mmap)  # type: ignore[union-attr]
    for vma in vmas:
        ret = _try_to_unmap_one(page, vma, ignore_refs)
        if ret == SWAP_FAIL or page.mapcount == 0:
            break
    if page.mapcount == 0:
        ret = SWAP_SUCCESS
    return ret


def page_lock_anon_vma(page: Page) -> AnonVma | None:
    """The anon_vma of a mapped anonymous page, locked; else ``None`` (``page_lock_anon_vma``).

    As in 2.6.15 (``if (!page_mapped(page)) goto out;``, there since 2004),
    a page with no present pte has no anon_vma to lock: after
    ``try_to_unmap``, that is every anonymous page under migration.  The
    caller unlocks it with :func:`page_unlock_anon_vma`.
    """
    mapping = page.mapping
    if mapping is None or not mapping.anon or not page.mapcount:
        return None
    anon_vma: AnonVma = mapping  # type: ignore[assignment]
    anon_vma.lock.acquire()
    return anon_vma


def page_unlock_anon_vma(anon_vma: AnonVma) -> None:
    """Unlock what :func:`page_lock_anon_vma` locked."""
    anon_vma.lock.release()


def _remove_vma_swap(page: Page, vmas: list[Vma]) -> None:
    """Every swap pte of these areas that holds the page's entry points at the page again.

    ``remove_vma_swap``: each such pte gets the page back, with a reference
    and a mapcount, and gives up its use of the swap slot.
    """
    entry = page.private
    for vma in vmas:
        vpn = vma.address(page)
        if vpn < 0:
            continue
        mm = vma.mm
        with mm.page_table_lock:
            pte = mm.ptes.get(vpn)
            if pte is None or pte.page is not None or pte.swp != entry:
                continue
            pte.page = page
            pte.swp = 0
            pte.young = False
            mm.wrprotect.add(vpn)  # mk_pte(page, vm_page_prot): read-only
            get_page(page)
            page_add_anon_rmap(page, vma, vpn)
        mm.kernel.swap_info().swap_free(entry)


def remove_from_swap_v4(page: Page) -> None:
    """``remove_from_swap`` as V4 3/6 has it (and every release up to 2.6.16-rc5).

    It finds the page's areas through :func:`page_lock_anon_vma`, which
    finds nothing for a page with no present ptes, so for a migrated
    anonymous page (its ptes are swap ptes now) it does nothing: the
    process's next access takes a minor fault through the swap cache.  When
    it does find the areas (a page still mapped), the swap ptes holding the
    page's entry get the page back; the page stays in the swap cache.
    """
    if not page.flags & PG.swapcache:
        return
    anon_vma = page_lock_anon_vma(page)
    if anon_vma is None:
        return
    try:
        vmas = list(anon_vma.vmas)
    finally:
        page_unlock_anon_vma(anon_vma)
    _remove_vma_swap(page, vmas)


def remove_from_swap_2616(page: Page) -> None:
    """``remove_from_swap`` as fixed in 2.6.16-rc6 ("remove_from_swap: fix locking", Feb 2006).

    It takes the anon_vma straight from ``page->mapping`` (the caller holds
    ``mmap_sem``), so it works on a page with no present ptes: every swap
    pte holding the page's entry points at the page again, and the page
    leaves the swap cache (``delete_from_swap_cache``, V8 and later).
    """
    mapping = page.mapping
    if not page.flags & PG.swapcache or mapping is None or not mapping.anon:
        return
    anon_vma: AnonVma = mapping  # type: ignore[assignment]
    with anon_vma.lock:
        vmas = list(anon_vma.vmas)
    _remove_vma_swap(page, vmas)
    delete_from_swap_cache(page)


def remove_from_swap(page: Page) -> None:
    """Turn the swap ptes of a locked swap-cache page back into present ptes, if the kernel can.

    What it does depends on the kernel's semantics
    (:attr:`~fsaops.semantics.Semantics.remove_from_swap`): nothing for a
    page with no present ptes up to 2.6.16-rc5 (:func:`remove_from_swap_v4`),
    real ptes and the page out of the swap cache from 2.6.16
    (:func:`remove_from_swap_2616`).
    """
    page.node.kernel.semantics.remove_from_swap(page)


def page_referenced_ptes(page: Page) -> list[tuple[Mm, int]]:
    """Every (process, page number) whose present pte points at ``page``."""
    mapping = page.mapping
    if mapping is None:
        return []
    if mapping.anon:
        vmas = list(mapping.vmas)  # type: ignore[union-attr]
    else:
        vmas = list(mapping.i_mmap)  # type: ignore[union-attr]
    found = []
    for vma in vmas:
        vpn = vma.address(page)
        if vpn < 0:
            continue
        pte = vma.mm.ptes.get(vpn)
        if pte is not None and pte.page is page:
            found.append((vma.mm, vpn))
    return found
