"""What unmapping and write faults do with an anonymous page's ptes (``mm/memory.c``, 2.6.15).

``zap_pte_range`` passes a pte's dirty and young bits on to the page only
for a file page: an anonymous page's data dies with its last mapping, so
``munmap`` neither dirties it nor marks it accessed.  ``do_swap_page`` maps
a page back writable and dirty only when the faulting process is its only
user (``can_share_swap_page``, which from 2.6.13 counts the ptes and swap
ptes that reach the page, not its references); otherwise the write fault
copies it (``do_wp_page``), and the process's pte points at its own new
page.
"""

from __future__ import annotations

import pytest

import fsaops.rmap
from fsaops.debug import check_kernel
from fsaops.explore import TaskSpec, explore
from fsaops.explore.api import render_text
from fsaops.lists import PageList, list_add_tail
from fsaops.lru import isolate_lru_page, putback_lru_pages
from fsaops.memory import Node
from fsaops.migrate import migrate_pages
from fsaops.page import PG, Page, get_page, lock_page, page_address, put_page, unlock_page
from fsaops.plugins import Registry
from fsaops.rmap import SWAP_SUCCESS, Vma, try_to_unmap
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


def test_a_write_fault_writes_in_place_to_a_page_a_migration_and_a_pin_hold(world: World) -> None:
    """``can_share_swap_page`` counts who can reach the page, not its references.

    A migration holds the page (isolated) and a direct I/O has pinned it
    (``get_user_pages``): five references, but no other pte maps it and no
    other swap pte holds its slot, so the write fault maps it back writable
    and the write lands in the page itself.  The 2.6.12 rule, which counted
    references, copied it from under the pin.
    """
    page, entry, vpn = _swapped_out_and_held(world)
    get_page(page)  # the pin
    mm = world.areas[0].mm
    mm.write(vpn * world.page_size, b"\x5a")
    pte = mm.ptes[vpn]
    assert pte.page is page and pte.dirty, "written in place"
    assert bytes(page.data)[:1] == b"\x5a"
    assert vpn not in mm.wrprotect and page.mapcount == 1
    assert page.flags & PG.swapcache and page.private == entry
    assert world.kernel.swap_info().swap_map[entry] == 1, "the fault freed the pte's use"
    put_page(page)
    held = PageList("held")
    list_add_tail(page, held)
    putback_lru_pages(held)
    assert check_kernel(world.kernel) == []


def test_a_write_fault_copies_a_page_whose_slot_another_swap_pte_holds(world: World) -> None:
    """Another swap pte holding the page's slot (a forked process's) makes two users.

    The write fault copies the page (``do_wp_page``): the pte points at a
    new anonymous page, dirty, outside the swap cache, and the old page is
    left in the swap cache, unmapped, its slot still held by the other pte.
    """
    page, entry, vpn = _swapped_out_and_held(world)
    swap = world.kernel.swap_info()
    swap.swap_duplicate(entry)  # the other process's swap pte
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
    assert swap.swap_map[entry] == 2, "the swap cache's and the other pte's"
    swap.swap_free(entry)
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


def test_a_write_after_a_read_swap_fault_copies_a_page_someone_has_locked(world: World) -> None:
    """A read through a swap pte maps the page read-only (``mk_pte(page, vm_page_prot)``).

    The process's next write is a write-protect fault (``do_wp_page``): it
    writes in place only if it can lock the page and ``can_share_swap_page``.
    With a migration holding the page locked (in a pass), the process gets
    a copy of its own and the page stays in the swap cache, unmapped.
    """
    page, entry, vpn = _swapped_out_and_held(world)
    mm = world.areas[0].mm
    data = bytes(page.data)
    mm.read(vpn * world.page_size, 1)
    assert mm.ptes[vpn].page is page and page.mapcount == 1
    lock_page(page)
    mm.write(vpn * world.page_size, b"\x5a")
    unlock_page(page)
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


def test_a_write_after_a_read_swap_fault_writes_in_place_to_a_page_a_migration_holds(
    world: World,
) -> None:
    """Held by a migration but unlocked and mapped by this pte alone, the page is the process's."""
    page, _, vpn = _swapped_out_and_held(world)
    mm = world.areas[0].mm
    mm.read(vpn * world.page_size, 1)
    faults = world.kernel.vmstat.pgfault
    mm.write(vpn * world.page_size, b"\x5a")
    pte = mm.ptes[vpn]
    assert pte.page is page and pte.dirty and bytes(page.data)[:1] == b"\x5a"
    assert world.kernel.vmstat.pgfault == faults + 1, "a write-protect fault"
    held = PageList("held")
    list_add_tail(page, held)
    putback_lru_pages(held)
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


def test_a_copy_is_dropped_when_another_fault_made_the_pte_writable_meanwhile(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``do_wp_page`` maps its copy only if the pte is the one it began from (``pte_same``).

    The copy is taken with the page-table lock dropped. If another fault of
    the process made the same pte writable meanwhile and wrote to the page
    (a direct I/O's ``get_user_pages(write=1)`` that found the page its
    own), the copy does not hold that write: it is dropped, and the pte
    keeps the page. Looking only at which page the pte maps, the copy
    replaced it and the write was lost.
    """
    page, _, vpn = _swapped_out_and_held(world)
    mm = world.areas[0].mm
    mm.read(vpn * world.page_size, 1)  # mapped back read-only
    assert vpn in mm.wrprotect and mm.ptes[vpn].page is page
    alloc_page = Node.alloc_page

    def meanwhile(node: Node) -> Page | None:
        # The other fault, while this one allocates its copy: the pte made
        # writable, and a write to the page itself.
        mm.wrprotect.discard(vpn)
        page_address(page)[:1] = b"\x77"
        return alloc_page(node)

    monkeypatch.setattr(Node, "alloc_page", meanwhile)
    lock_page(page)  # someone holds it: do_wp_page goes to copy
    mm.write(vpn * world.page_size + 1, b"\x5a")
    unlock_page(page)
    monkeypatch.undo()
    assert mm.ptes[vpn].page is page, "the copy was dropped"
    assert bytes(page.data)[:2] == b"\x77\x5a", "both writes are in the page"
    assert page.mapcount == 1 and not world.kernel.cow_copies
    held = PageList("held")
    list_add_tail(page, held)
    putback_lru_pages(held)
    assert check_kernel(world.kernel) == []


def test_a_write_swap_fault_sets_the_pte_writable_at_once(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``do_swap_page`` asks ``can_share_swap_page`` before it sets the pte, under the same lock.

    The pte it sets is writable and dirty from the start: no other fault of
    the process (a direct I/O's ``get_user_pages``) can find it read-only
    with the page locked, and copy the page from under this write.
    """
    page, _, vpn = _swapped_out_and_held(world)
    held = PageList("held")
    list_add_tail(page, held)
    putback_lru_pages(held)
    mm = world.areas[0].mm
    add_rmap = fsaops.rmap.page_add_anon_rmap
    seen: list[tuple[bool, bool]] = []

    def counted(page: Page, vma: Vma, at: int) -> None:
        seen.append((at in mm.wrprotect, mm.ptes[at].dirty))
        add_rmap(page, vma, at)

    monkeypatch.setattr(fsaops.rmap, "page_add_anon_rmap", counted)
    mm.write(vpn * world.page_size, b"\x5a")
    assert seen == [(False, True)], "set writable and dirty as it was mapped"
    assert mm.ptes[vpn].page is page
