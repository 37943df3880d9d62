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
from fsaops.explore import TaskSpec, explore
from fsaops.explore.api import render_text
from fsaops.lists import PageList, list_add_tail
from fsaops.lru import isolate_lru_page, putback_lru_pages
from fsaops.migrate import migrate_pages
from fsaops.page import PG, Page, lock_page, unlock_page
from fsaops.plugins import Registry
from fsaops.rmap import SWAP_SUCCESS, try_to_unmap
from fsaops.status import Status
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


def _swapped_out_and_held(world: World) -> tuple[Page, int, int]:
    """An anonymous page unmapped to a swap pte while a migration holds it (isolated).

    Returns the page, its swap entry and its process's page number.
    """
    area = world.anon(1)
    page = world.page_of(area, 0)
    assert page is not None
    assert isolate_lru_page(page) == 1
    lock_page(page)
    assert add_to_swap(page) == 1
    assert try_to_unmap(page, True) == SWAP_SUCCESS
    unlock_page(page)
    return page, page.private, area.vma.vm_start


def test_a_write_fault_copies_a_swap_cache_page_someone_else_holds(world: World) -> None:
    """``do_swap_page`` reuses the page for a write only if ``can_share_swap_page``.

    The migration's reference makes three (it, the swap cache, the fault):
    the page is not the process's alone, so the write fault copies it
    (``do_wp_page``): the pte points at a new anonymous page, dirty, on the
    process's node and outside the swap cache, and the old page is left in
    the swap cache, unmapped, its slot used by the swap cache only.
    """
    page, entry, vpn = _swapped_out_and_held(world)
    mm = world.areas[0].mm
    data = bytes(page.data)
    mm.write(vpn * world.page_size, b"\x5a")
    pte = mm.ptes[vpn]
    new = pte.page
    assert new is not None and new is not page, "do_wp_page copied the page"
    assert pte.dirty and pte.swp == 0
    assert bytes(new.data) == b"\x5a" + data[1:]
    assert bytes(page.data) == data, "the write went to the copy"
    assert new.mapcount == 1 and new.count == 1 and not new.flags & PG.swapcache
    assert new.mapping is world.areas[0].vma.anon_vma and new.flags & PG.lru
    assert page.mapcount == 0 and page.count == 2, "the migration's and the swap cache's"
    assert page.flags & PG.swapcache and page.private == entry
    assert world.kernel.swap_info().swap_map[entry] == 1
    held = PageList("held")
    list_add_tail(page, held)
    putback_lru_pages(held)
    assert check_kernel(world.kernel) == []


def test_a_write_fault_reuses_a_swap_cache_page_only_it_uses(world: World) -> None:
    """With nobody else holding the page or its slot, the write maps it back writable and dirty."""
    page, entry, vpn = _swapped_out_and_held(world)
    mm = world.areas[0].mm
    held = PageList("held")
    list_add_tail(page, held)
    putback_lru_pages(held)
    mm.write(vpn * world.page_size, b"\x5a")
    pte = mm.ptes[vpn]
    assert pte.page is page and pte.dirty
    assert page.mapcount == 1 and page.count == 2 and page.private == entry
    assert check_kernel(world.kernel) == []


def test_the_explorer_passes_the_swap_table_when_a_write_fault_copies_a_page_in_migration(
    registry: Registry,
) -> None:
    """A write through the swap pte of a page a migration holds gives the process a copy.

    Some schedules of ``mmap-write`` against the migration of an anonymous
    page run the fault while the migration holds the page, between two
    passes: the process writes to a copy of its own, on the node its faults
    allocate on, and the migration then moves the page nobody maps.  The
    frame of the copy may be the old page's, freed.  Neither is the table's
    doing: the built-in swap table passes every schedule.
    """
    result = explore(
        "swap", tasks=[TaskSpec("mmap-write", 1)], pages=2, preemptions=2, registry=registry
    )
    assert result.status is Status.OK and result.exhausted, render_text(result)


def test_a_write_after_a_read_swap_fault_copies_a_page_someone_else_holds(world: World) -> None:
    """A read through a swap pte maps the page read-only (``mk_pte(page, vm_page_prot)``).

    The process's next write is a write-protect fault (``do_wp_page``): it
    writes in place only if ``can_share_swap_page``.  With a migration
    holding the page, the process gets a copy of its own and the page stays
    in the swap cache, unmapped.
    """
    page, entry, vpn = _swapped_out_and_held(world)
    mm = world.areas[0].mm
    data = bytes(page.data)
    mm.read(vpn * world.page_size, 1)
    assert mm.ptes[vpn].page is page and page.mapcount == 1
    mm.write(vpn * world.page_size, b"\x5a")
    new = mm.ptes[vpn].page
    assert new is not None and new is not page, "do_wp_page copied the page"
    assert bytes(new.data) == b"\x5a" + data[1:] and bytes(page.data) == data
    assert page.mapcount == 0 and page.count == 2 and page.private == entry
    held = PageList("held")
    list_add_tail(page, held)
    putback_lru_pages(held)
    # Its own now: the next write goes straight to it.
    mm.write(vpn * world.page_size + 1, b"\x5b")
    assert mm.ptes[vpn].page is new and bytes(new.data)[:2] == b"\x5a\x5b"
    assert check_kernel(world.kernel) == []


def test_a_write_after_a_read_swap_fault_reuses_a_page_only_it_uses(world: World) -> None:
    page, entry, vpn = _swapped_out_and_held(world)
    mm = world.areas[0].mm
    held = PageList("held")
    list_add_tail(page, held)
    putback_lru_pages(held)
    mm.read(vpn * world.page_size, 1)
    faults = world.kernel.vmstat.pgfault
    mm.write(vpn * world.page_size, b"\x5a")
    pte = mm.ptes[vpn]
    assert pte.page is page and pte.dirty and page.private == entry
    assert world.kernel.vmstat.pgfault == faults + 1, "a write-protect fault"
    assert check_kernel(world.kernel) == []


def test_a_copy_in_the_old_frame_is_the_process_s_page_under_2_6_16(registry: Registry) -> None:
    """2.6.16 gives a migrated page its pte back, read-only (``remove_from_swap``).

    A write while the migration still holds the new page locked copies it
    (``do_wp_page``), and the copy may land in the old frame, freed by then:
    the process's page sits in the frame the page moved out of, and the
    migration moved it all the same.
    """
    result = explore(
        "swap",
        tasks=[TaskSpec("mmap-write", 0)],
        preemptions=2,
        semantics="2.6.16",
        registry=registry,
    )
    assert result.status is Status.OK and result.exhausted, render_text(result)
