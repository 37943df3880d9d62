"""What unmapping and write faults do with an anonymous page's ptes (``mm/memory.c``, 2.6.15).

``zap_pte_range`` passes a pte's dirty and young bits on to the page only
for a file page: an anonymous page's data dies with its last mapping, so
``munmap`` neither dirties it nor marks it accessed.  ``do_swap_page`` maps
a page back writable and dirty only when the faulting process is its only
user (``can_share_swap_page``); otherwise the write fault copies it
(``do_wp_page``), and the process's pte points at its own new page.
"""

from __future__ import annotations

from fsaops.debug import check_kernel
from fsaops.lists import PageList, list_add_tail
from fsaops.lru import isolate_lru_page, putback_lru_pages
from fsaops.migrate import migrate_pages
from fsaops.page import PG, Page, lock_page
from fsaops.rmap import SWAP_SUCCESS, try_to_unmap
from fsaops.swap import add_to_swap, swap_writepage
from fsaops.world import World
from fsaops.writeback import WritebackControl, clear_page_dirty_for_io


def _written_to_swap_and_read_back(world: World) -> tuple[World, Page, int]:
    """An anonymous page written to swap, read back by a read fault, then written by its process.

    As reclaim leaves it: in the swap cache with a copy in its slot, clean,
    mapped by a pte that the process's write made dirty.
    """
    area = world.anon(1)
    mm, vma = area.mm, area.vma
    page = world.page_of(area, 0)
    assert page is not None
    assert isolate_lru_page(page) == 1
    lock_page(page)
    assert add_to_swap(page) == 1
    assert try_to_unmap(page, True) == SWAP_SUCCESS
    assert clear_page_dirty_for_io(page)
    assert swap_writepage(page, WritebackControl()) == 0
    world.kernel.run_until_idle()
    assert not page.flags & (PG.dirty | PG.writeback)
    isolated = PageList("isolated")
    list_add_tail(page, isolated)
    putback_lru_pages(isolated)
    addr = vma.vm_start * world.page_size
    mm.read(addr, 1)
    assert mm.ptes[vma.vm_start].page is page and not page.flags & PG.dirty
    mm.write(addr, b"\xa5")
    pte = mm.ptes[vma.vm_start]
    assert pte.page is page and pte.dirty
    return world, page, page.private


def test_munmap_does_not_dirty_an_anonymous_page(world: World) -> None:
    """A clean swap-cache page whose process wrote it and then unmapped it stays clean.

    Held by a migration (isolated), the page outlives the unmapping in the
    swap cache.  Clean, ``swap_page`` drops it from the swap cache in the
    first pass and frees its slot; had ``munmap`` dirtied it, ``swap_page``
    would send it to ``pageout`` first and take a second pass.
    """
    world, page, entry = _written_to_swap_and_read_back(world)
    mm = world.areas[0].mm
    assert isolate_lru_page(page) == 1
    from_ = PageList("from")
    list_add_tail(page, from_)
    mm.munmap(world.areas[0].vma)
    assert page.flags & PG.swapcache and page.private == entry
    assert not page.flags & PG.dirty, "zap_pte_range dirties only file pages"
    vmstat = world.kernel.vmstat
    pageouts, passes = vmstat.migrate_pageout, vmstat.migrate_passes
    moved, failed = PageList("moved"), PageList("failed")
    rc = migrate_pages(from_, None, moved, failed, kernel=world.kernel)
    assert rc == 0 and list(moved) == [page]
    assert vmstat.migrate_pageout == pageouts, "nothing to write"
    assert vmstat.migrate_passes == passes + 1
    assert world.kernel.swap_info().nr_swap_pages == 64, "its slot was freed"
    putback_lru_pages(moved)
    assert check_kernel(world.kernel) == []
