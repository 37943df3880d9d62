"""migrate_pages, branch by branch (KERNEL-SPEC §3).

Where the releases differ (:mod:`fsaops.semantics`), the test runs under
each and asserts the difference.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from errno import EAGAIN, EIO, ENOMEM, ENOSYS, EPERM

import attrs
import pytest

from fsaops import buffer_migrate_page
from fsaops.debug import check_kernel
from fsaops.errors import KernelBug, MigrationDisabled
from fsaops.lists import PageList, list_add_tail
from fsaops.lru import isolate_lru_page, putback_lru_pages
from fsaops.memory_hotplug import migrate_node
from fsaops.migrate import MAX_PASSES, MigrateStats, migrate_pages
from fsaops.page import PG, Page, lock_page, put_page, trylock_page, unlock_page
from fsaops.plugins import Registry
from fsaops.rmap import Pte, page_remove_rmap, try_to_unmap
from fsaops.sched import PF_SWAPWRITE, hold
from fsaops.semantics import SEMANTICS
from fsaops.swap import add_to_swap
from fsaops.testing import Recorder
from fsaops.world import File, World
from fsaops.writeback import set_page_dirty


def pages_of(world: World, inode_pages: list[Page | None]) -> list[Page]:
    return [p for p in inode_pages if p is not None]


def test_clean_pages_move_in_one_pass(world: World) -> None:
    sb = world.mount("ext2")
    inode = world.file(sb, 8, clean=True)
    pages = inode.i_mapping.pages()
    out = world.migrate(pages)
    assert out.problems == []
    assert out.rc == 0
    assert len(out.moved) == 8
    assert out.stats.passes == 1
    assert all(p.node.nid == 1 for p in inode.i_mapping.pages())


def test_locked_page_is_skipped_in_passes_0_to_2_and_waited_for_from_pass_3(
    world: World, recorder: Recorder
) -> None:
    sb = world.mount("ext2")
    inode = world.file(sb, 2, clean=True)
    busy, other = inode.i_mapping.pages()
    task = world.kernel.new_task("locker")
    hold(task, world.kernel.sched, "page_lock", busy, 10_000)
    out = world.migrate([busy, other])
    assert out.problems == []
    attempts = recorder.paths(busy.pfn)
    assert [(p, path) for p, path, _ in attempts[:3]] == [
        (0, "locked"),
        (1, "locked"),
        (2, "locked"),
    ]
    assert attempts[3][0] == 3
    assert attempts[3][2] == 0, "from pass 3 the engine sleeps on the lock and migrates"
    assert world.kernel.sched.now >= 10_000, "sleeping advanced the clock to the unlock"
    assert len(out.moved) == 2


def test_every_sleep_on_a_page_kicks_its_io_through_the_tables_sync_page(world: World) -> None:
    """``lock_page`` and ``wait_on_page_writeback`` call ``sync_page`` before each sleep."""
    sb = world.mount("ext2")
    inode = world.file(sb, 2, clean=True)
    busy, other = inode.i_mapping.pages()
    kicked: list[int] = []

    def sync_page(page: Page) -> int:
        kicked.append(page.pfn)
        return 0

    mapping = inode.i_mapping
    mapping.a_ops = attrs.evolve(mapping.a_ops, sync_page=sync_page)
    hold(world.kernel.new_task("locker"), world.kernel.sched, "page_lock", busy, 10_000)
    out = world.migrate([busy, other])
    assert out.problems == []
    assert kicked == [busy.pfn], "one sleep, in pass 3, on the lock the locker held"
    lock_page(other_page := mapping.pages()[1])  # free: no sleep, no kick
    unlock_page(other_page)
    assert kicked == [busy.pfn]


def test_writeback_is_skipped_in_pass_0_and_waited_for_after(
    registry: Registry, recorder: Recorder
) -> None:
    world = World(
        registry=registry, log=recorder.log, io_latency=500, node_pages=256, swap_slots=64
    )
    sb = world.mount("ext2")
    inode = world.file(sb, 2)
    page, other = inode.i_mapping.pages()
    from fsaops.writeback import write_one_page

    assert write_one_page(page, wait=False) == 0
    assert page.flags & PG.writeback
    out = world.migrate([page, other])
    assert out.problems == []
    attempts = recorder.paths(page.pfn)
    assert attempts[0][:2] == (0, "writeback")
    (skipped, *_) = (
        e for e in recorder.events if e.get("event") == "mm_migrate_page" and e["pfn"] == page.pfn
    )
    assert skipped["why"] == "under writeback", "the reason the skip is told with"
    assert attempts[1][0] == 1
    assert attempts[1][2] == 0
    assert recorder.paths(other.pfn)[0] == (0, "migratepage", 0)


@pytest.mark.parametrize("semantics", SEMANTICS)
def test_anonymous_pages_get_swap_entries_and_keep_swap_ptes_until_2_6_16(
    registry: Registry, semantics: str
) -> None:
    world = World(registry=registry, node_pages=256, swap_slots=64, semantics=semantics)
    swap = world.kernel.swap_info()
    area = world.anon(3)
    mm, vma = area.mm, area.vma
    before = mm.read(vma.vm_start * 4096, 3 * 4096)
    pages = [pte.page for pte in mm.ptes.values() if pte.page is not None]
    assert not any(p.flags & PG.swapcache for p in pages)
    out = world.migrate(pages)
    assert out.problems == []
    assert out.rc == 0
    assert set(out.stats.tables) == {"swap_aops"}
    vmstat = world.kernel.vmstat
    faults = vmstat.pgfault
    if semantics == "v4":
        # remove_from_swap() finds no anon_vma for a page without present ptes
        # (page_lock_anon_vma): the ptes stay swap ptes, the new pages stay in the
        # swap cache, and the process's next access is a minor fault.
        for i, pte in enumerate(mm.ptes.values()):
            assert pte.page is None, "V4 leaves anonymous pages with swap ptes"
            new = world.page_of(area, i)
            assert new is not None and new.node.nid == 1
            assert new.flags & PG.swapcache and new.private == pte.swp
            assert swap.swap_map[pte.swp] == 2, "the swap pte and the swap cache"
        assert swap.nr_swap_pages == 64 - 3
    else:
        # From 2.6.16 remove_from_swap() gives the new page its ptes back and takes
        # it out of the swap cache, freeing the slot.
        for pte in mm.ptes.values():
            assert pte.page is not None and pte.page.node.nid == 1
            assert not pte.page.flags & PG.swapcache
        assert swap.nr_swap_pages == 64
    assert mm.read(vma.vm_start * 4096, 3 * 4096) == before
    assert vmstat.pgfault - faults == (3 if semantics == "v4" else 0)
    assert vmstat.pgmajfault == 0 and vmstat.pswpin == 0, "nothing was read from the device"
    for pte in mm.ptes.values():
        assert pte.page is not None and pte.page.node.nid == 1
    world.settle(out)
    assert check_kernel(world.kernel) == []


@pytest.mark.parametrize(("slots", "freed"), [(4, True), (64, False)])
def test_a_swap_fault_frees_the_slot_of_a_migrated_page_when_swap_is_over_half_full(
    registry: Registry, slots: int, freed: bool
) -> None:
    """``do_swap_page``: ``if (vm_swap_full()) remove_exclusive_swap_page(page)``.

    Under V4 three migrated anonymous pages keep their swap ptes and their
    slots.  With four slots, three in use is more than half the device
    (``nr_swap_pages * 2 < total_swap_pages``): the fault that maps a page
    back takes it out of the swap cache, dirty, and frees its slot.  With 64
    slots the device is not that full, and the page stays in the swap cache.
    """
    world = World(registry=registry, node_pages=256, swap_slots=slots, semantics="v4")
    swap = world.kernel.swap_info()
    area = world.anon(3)
    mm, vma = area.mm, area.vma
    before = mm.read(vma.vm_start * 4096, 4096)
    pages = [pte.page for pte in mm.ptes.values() if pte.page is not None]
    out = world.migrate(pages)
    assert out.problems == [] and out.rc == 0
    assert swap.nr_swap_pages == slots - 3
    assert mm.read(vma.vm_start * 4096, 4096) == before
    page = mm.ptes[vma.vm_start].page
    assert page is not None and page.node.nid == 1
    if freed:
        assert not page.flags & PG.swapcache, "the fault took the page out of the swap cache"
        assert page.flags & PG.dirty, "its data now lives only in memory"
        assert page.count == 1, "the pte's reference only"
        assert swap.nr_swap_pages == slots - 2
    else:
        assert page.flags & PG.swapcache
        assert swap.nr_swap_pages == slots - 3
    world.settle(out)
    assert check_kernel(world.kernel) == []


@pytest.mark.parametrize(("slots", "freed"), [(4, True), (64, False)])
def test_unmapping_a_swap_pte_frees_a_busy_swap_cache_page_when_swap_is_over_half_full(
    registry: Registry, slots: int, freed: bool
) -> None:
    """``free_swap_and_cache``: ``if (!PageWriteback(page) && (one_user || vm_swap_full()))``.

    Under V4 a migrated anonymous page keeps its swap pte and its place in the
    swap cache.  Isolated again (as a migration would), it has a user besides
    the swap cache.  When its process unmaps the area, the swap pte goes; with
    the device more than half full the page leaves the swap cache anyway,
    dirty (its data now lives only in memory), and its slot is freed.  With a
    roomier device a page someone else holds stays in the swap cache.
    """
    world = World(registry=registry, node_pages=256, swap_slots=slots, semantics="v4")
    swap = world.kernel.swap_info()
    area = world.anon(3)
    mm, vma = area.mm, area.vma
    pages = [pte.page for pte in mm.ptes.values() if pte.page is not None]
    out = world.migrate(pages)
    assert out.problems == [] and out.rc == 0
    world.settle(out)
    entry = mm.ptes[vma.vm_start].swp
    swapper = world.kernel.swapper_space
    assert swapper is not None
    new = swapper.lookup(entry)
    assert new is not None and new.flags & PG.swapcache
    assert isolate_lru_page(new) == 1
    new.flags &= ~PG.dirty
    mm.munmap(vma)
    if freed:
        assert not new.flags & PG.swapcache, "it left the swap cache"
        assert new.flags & PG.dirty, "and only memory holds its data now"
        assert new.count == 1, "the isolation reference only"
        assert swap.nr_swap_pages == slots
    else:
        assert new.flags & PG.swapcache and new.private == entry
        assert new.count == 2, "the swap cache's and the isolation reference"
        assert swap.swap_map[entry] == 1, "the swap cache still uses the slot"
    pl = PageList("isolated")
    list_add_tail(new, pl)
    putback_lru_pages(pl)
    assert check_kernel(world.kernel) == []


def test_unmapping_a_page_read_back_from_the_swap_cache_frees_it_and_its_slot(
    registry: Registry,
) -> None:
    """``zap_pte_range`` releases a page through ``free_page_and_swap_cache`` (mm/, 2.6.15).

    Under V4 migrated anonymous pages stay in the swap cache; read back, each
    is mapped by a present pte, and the swap cache is the only user of its
    slot.  When the process unmaps the area, ``free_swap_cache`` takes each
    page out of the swap cache (``remove_exclusive_swap_page``): the slots
    are freed, and the pages with them.
    """
    world = World(registry=registry, node_pages=256, swap_slots=64, semantics="v4")
    swap = world.kernel.swap_info()
    area = world.anon(3)
    mm, vma = area.mm, area.vma
    pages = [pte.page for pte in mm.ptes.values() if pte.page is not None]
    out = world.migrate(pages)
    assert out.problems == [] and out.rc == 0
    world.settle(out)
    mm.read(vma.vm_start * 4096, 3 * 4096)
    back = [pte.page for pte in mm.ptes.values()]
    assert all(p is not None and p.flags & PG.swapcache for p in back)
    assert swap.nr_swap_pages == 64 - 3
    free = world.kernel.nodes[1].nr_free
    mm.munmap(vma)
    assert swap.nr_swap_pages == 64, "every slot was freed with its page"
    swapper = world.kernel.swapper_space
    assert swapper is not None and swapper.nrpages == 0
    assert world.kernel.nodes[1].nr_free == free + 3, "the pages were freed"
    assert check_kernel(world.kernel) == []


def test_faults_mark_the_page_accessed_and_the_new_page_goes_where_the_lru_says(
    world: World,
) -> None:
    """``filemap_nopage`` and ``do_swap_page`` call ``mark_page_accessed`` (mm/, 2.6.15).

    A file page just written is on the inactive list with ``PG_referenced``:
    a fault through a mapping is its second use, which moves it to the active
    list.  ``migrate_page_copy`` copies ``PG_active``, so its new page goes to
    the active list too.  A V4-migrated anonymous page read back through its
    swap pte is marked referenced by the minor fault.
    """
    kernel = world.kernel
    inode = world.file(world.mount("ext2"), 1, clean=True)
    (page,) = inode.i_mapping.pages()
    assert page.flags & PG.referenced and not page.flags & PG.active
    mm = kernel.new_mm(name="reader")
    vma = mm.mmap_file(inode, 0, 1)
    mm.read(vma.vm_start * kernel.page_size, 16)
    assert page.flags & PG.active, "the fault is a second use: activate_page"
    assert not page.flags & PG.referenced
    out = world.migrate([page])
    assert out.problems == [] and out.rc == 0
    new = inode.i_mapping.lookup(0)
    assert new is not None and new.node.nid == 1
    assert new.flags & PG.active and new.flags & PG.lru, "the new page is on the active list"
    world.settle(out)

    area = world.anon(1)
    anon = world.page_of(area, 0)
    assert anon is not None
    anon.flags &= ~PG.referenced
    out = world.migrate([anon])
    assert out.problems == [] and out.rc == 0
    area.mm.read(area.vma.vm_start * kernel.page_size, 16)
    back = area.mm.ptes[area.vma.vm_start].page
    assert back is not None and back.node.nid == 1
    assert back.flags & PG.referenced, "the swap fault marked it accessed"
    world.settle(out)
    assert check_kernel(kernel) == []


@pytest.mark.parametrize("semantics", SEMANTICS)
def test_v4_remove_from_swap_restores_ptes_only_of_a_page_still_mapped(
    registry: Registry, semantics: str
) -> None:
    """V4's engine calls remove_from_swap() on a page that failed; it works if the page is mapped.

    The page is mapped by two processes sharing its anon_vma; the second maps
    it VM_LOCKED.  A table that unmaps what it can (the first pte becomes a
    swap pte) and then fails leaves the page on ``failed``, still mapped once.
    """
    world = World(registry=registry, node_pages=256, swap_slots=64, semantics=semantics)
    area = world.anon(1)
    page = world.page_of(area, 0)
    assert page is not None
    other = world.process("child")
    shared = other.mmap_anon(1, locked=True)
    assert area.vma.anon_vma is not None and shared.anon_vma is not None
    shared.anon_vma.vmas.remove(shared)
    shared.anon_vma = area.vma.anon_vma
    shared.anon_vma.vmas.append(shared)
    shared.vm_pgoff = area.vma.vm_pgoff  # the same page at the same index, as after fork()
    other.ptes[shared.vm_start] = Pte(page)
    page.mapcount += 1
    page.count += 1
    table = world.kernel.swapper_space.a_ops  # type: ignore[union-attr]

    def unmap_then_fail(newpage: Page, old: Page) -> int:
        try_to_unmap(old, True)  # the first area's pte becomes a swap pte; VM_LOCKED refuses
        return -EIO

    world.kernel.swapper_space.a_ops = attrs.evolve(table, migratepage=unmap_then_fail)  # type: ignore[union-attr]
    out = world.migrate([page])
    assert list(out.failed) == [page]
    first = area.mm.ptes[area.vma.vm_start]
    if semantics == "v4":
        assert first.page is page, "remove_from_swap() found the anon_vma: the pte is back"
        assert page.flags & PG.swapcache, "and the page stays in the swap cache"
    else:
        assert first.page is None, "2.6.16 calls remove_from_swap() only after a move"
    assert other.ptes[shared.vm_start].page is page
    world.kernel.swapper_space.a_ops = table  # type: ignore[union-attr]
    world.settle(out)
    assert area.mm.read(area.vma.vm_start * 4096, 4096) == world.expected(area, 0)
    assert check_kernel(world.kernel) == []


@pytest.mark.parametrize("semantics", SEMANTICS)
def test_a_full_swap_device_fails_anonymous_pages_with_enomem(
    registry: Registry, recorder: Recorder, semantics: str
) -> None:
    # V4 sends the page straight to failed with no errno; 2.6.16 gives -ENOMEM.
    # Both end the same way, reported as ENOMEM.
    world = World(
        registry=registry, log=recorder.log, swap_slots=2, node_pages=256, semantics=semantics
    )
    holder = world.page_of(world.anon(1), 0)  # another page takes one slot of two
    assert holder is not None and trylock_page(holder) and add_to_swap(holder)
    unlock_page(holder)
    area = world.anon(2)
    mm, vma = area.mm, area.vma
    before = mm.read(vma.vm_start * 4096, 2 * 4096)
    pages = [pte.page for pte in mm.ptes.values() if pte.page is not None]
    out = world.migrate(pages)
    assert out.problems == []
    table = out.stats.tables["swap_aops"]
    if semantics == "v4":
        # The first page keeps its slot (swap pte and swap cache): none for the second.
        assert out.rc == 1
        assert len(out.failed) == 1
        assert len(out.moved) == 1
        assert table.errors == {"ENOMEM": 1}
        failed = out.failed.first()
        assert recorder.paths(failed.pfn) == [(0, "add_to_swap", -ENOMEM)]
        assert failed.node.nid == 0
    else:
        # The first page leaves the swap cache once moved: its slot serves the second.
        assert out.rc == 0
        assert len(out.moved) == 2
        assert table.errors == {}
    assert mm.read(vma.vm_start * 4096, 2 * 4096) == before


def test_no_swap_device_fails_every_anonymous_page(registry: Registry) -> None:
    world = World(registry=registry, swap_slots=0, node_pages=256)
    area = world.anon(2)
    mm, _vma = area.mm, area.vma
    pages = [pte.page for pte in mm.ptes.values() if pte.page is not None]
    out = world.migrate(pages)
    assert out.problems == []
    assert out.rc == 2
    assert len(out.failed) == 2


def test_an_extra_reference_gives_eagain_on_every_pass_and_counts_in_the_result(
    world: World, recorder: Recorder
) -> None:
    sb = world.mount("ext2")
    inode = world.file(sb, 2, clean=True)
    pinned, free = inode.i_mapping.pages()
    hold(world.kernel.new_task("pinner"), world.kernel.sched, "page_ref", pinned, None)
    out = world.migrate([pinned, free])
    assert out.problems == []
    attempts = recorder.paths(pinned.pfn)
    assert len(attempts) == MAX_PASSES == 11
    assert [p for p, _, _ in attempts] == list(range(11))
    assert all(rc == -EAGAIN for _, _, rc in attempts)
    assert out.rc == 1, "the last pass's -EAGAIN pages are counted in the return value"
    assert list(out.from_) == [pinned]
    assert len(out.to) == 1, "the unused new page stays on to"
    assert out.stats.tables["ext2_aops"].not_migrated == 1


def test_an_empty_to_list_ends_the_pass(world: World, recorder: Recorder) -> None:
    sb = world.mount("ext2")
    inode = world.file(sb, 3, clean=True)
    pages = inode.i_mapping.pages()
    out = world.migrate(pages, to_count=1)
    assert out.problems == []
    assert len(out.moved) == 1
    assert len(out.from_) == 2, "pages after the break stay on from"
    assert out.rc == 0, "pages never reached are not counted"
    assert out.to.empty()
    assert recorder.paths(pages[1].pfn) == []


def test_a_truncated_page_with_no_mapping_is_retried(world: World, recorder: Recorder) -> None:
    from fsaops.mapping import truncate_inode_pages

    sb = world.mount("ext2")
    inode = world.file(sb, 1, clean=True)
    (page,) = inode.i_mapping.pages()
    hold(world.kernel.new_task("reader"), world.kernel.sched, "page_ref", page, None)
    from_ = world.isolate([page])
    truncate_inode_pages(inode.i_mapping, 0)
    assert page.mapping is None
    to = world.new_pages(1)
    moved, failed = PageList("moved"), PageList("failed")
    stats = MigrateStats()
    rc = migrate_pages(from_, to, moved, failed, stats=stats)
    assert rc == 1
    assert {path for _, path, _ in recorder.paths(page.pfn)} == {"no_mapping"}
    assert list(from_) == [page]
    assert stats.table("(no mapping)").reasons == {"no mapping (truncated)": 1}


def test_a_page_freed_under_us_counts_as_moved(world: World, recorder: Recorder) -> None:
    from fsaops.mapping import truncate_inode_pages

    sb = world.mount("ext2")
    inode = world.file(sb, 1, clean=True)
    (page,) = inode.i_mapping.pages()
    from_ = world.isolate([page])
    truncate_inode_pages(inode.i_mapping, 0)
    assert page.count == 1
    to = world.new_pages(1)
    moved, failed = PageList("moved"), PageList("failed")
    assert migrate_pages(from_, to, moved, failed) == 0
    assert list(moved) == [page]
    assert len(to) == 1, "no new page is used for a freed page"
    assert recorder.paths(page.pfn) == [(0, "freed", 0)]


def test_a_page_freed_under_us_is_done_even_with_no_new_page_left(
    world: World, recorder: Recorder
) -> None:
    """The kernel tests ``page_count == 1`` before ``list_empty(to)``: a freed page needs none."""
    from fsaops.mapping import truncate_inode_pages

    sb = world.mount("ext2")
    freed = world.file(sb, 1, clean=True)
    kept = world.file(sb, 1, clean=True)
    (page,) = freed.i_mapping.pages()
    (other,) = kept.i_mapping.pages()
    from_ = world.isolate([page, other])
    truncate_inode_pages(freed.i_mapping, 0)
    assert page.count == 1
    moved, failed = PageList("moved"), PageList("failed")
    assert migrate_pages(from_, PageList("to"), moved, failed) == 0
    assert list(moved) == [page]
    assert list(from_) == [other], "the page after it needs a new page: the pass ends there"
    assert recorder.paths(page.pfn) == [(0, "freed", 0)]
    assert recorder.paths(other.pfn) == []


@pytest.mark.parametrize("semantics", SEMANTICS)
def test_vm_locked_pages_get_eagain_until_the_passes_run_out_and_eperm_from_2_6_16(
    registry: Registry, recorder: Recorder, semantics: str
) -> None:
    world = World(
        registry=registry, log=recorder.log, node_pages=256, swap_slots=64, semantics=semantics
    )
    area = world.anon(1, locked=True)
    mm, _vma = area.mm, area.vma
    (page,) = [pte.page for pte in mm.ptes.values() if pte.page is not None]
    start = world.kernel.sched.now
    out = world.migrate([page])
    assert out.problems == []
    assert out.rc == 1
    attempts = recorder.paths(page.pfn)
    reasons = out.stats.tables["swap_aops"].reasons
    if semantics != "v4":
        # SWAP_FAIL from try_to_unmap(page, 1) is -EPERM: failed at once.
        assert attempts == [(0, "migratepage", -EPERM)]
        assert list(out.failed) == [page]
        assert out.stats.tables["swap_aops"].errors == {"EPERM": 1}
        assert any("VM_LOCKED" in r for r in reasons)
    else:
        assert len(attempts) == 11
        assert {rc for _, _, rc in attempts} == {-EAGAIN}
        assert list(out.from_) == [page]
        assert any("VM_LOCKED" in r for r in reasons)
    # V4 tries try_to_unmap ten times an attempt, rescheduling between tries;
    # from January 2006 one try_to_unmap(page, 1).
    per_attempt = 10 if semantics == "v4" else 0
    assert world.kernel.sched.now - start == len(attempts) * (1 + per_attempt)
    assert mm.ptes[area.vma.vm_start].page is page, "the page is still mapped"


def test_xfs_buftarg_pages_fail_with_eio(world: World, recorder: Recorder) -> None:
    from fsaops.mapping import grab_cache_page
    from fsaops.page import put_page, unlock_page

    sb = world.mount("xfs_buftarg")
    inode = sb.new_inode()
    for i in range(2):
        page = grab_cache_page(inode.i_mapping, i)
        assert page is not None
        page.data[:] = bytes([i + 1]) * 4096
        page.flags |= PG.uptodate
        unlock_page(page)
        put_page(page)
    pages = inode.i_mapping.pages()
    out = world.migrate(pages)
    assert out.problems == []
    assert out.rc == 2
    assert len(out.failed) == 2
    assert out.stats.tables["xfs_mapping_buftarg.mapping_aops"].errors == {"EIO": 2}
    assert all(recorder.paths(p.pfn) == [(0, "migratepage", -EIO)] for p in pages)
    assert all(p.node.nid == 0 for p in inode.i_mapping.pages())


def test_ext3_journal_goes_through_pageout_releasepage_and_migrate_page(
    world: World, recorder: Recorder
) -> None:
    sb = world.mount("ext3", "journal")
    sb.s_fs_info.set_commit_interval(40)
    inode = world.file(sb, 4, clean=True)
    world.kernel.sched.run_for(100)  # the journal commits the file's data
    pages = inode.i_mapping.pages()
    for page in pages:
        set_page_dirty(page)  # as a write through a mapping does
    writes = world.kernel.vmstat.pageout_writepage
    out = world.migrate(pages)
    assert out.problems == []
    assert out.rc == 0
    assert world.kernel.vmstat.pageout_writepage - writes == 4, "dirty pages need writeback"
    table = out.stats.tables["ext3_journalled_aops"]
    assert table.via == {"writeback": 4}
    paths = [path for _, path, _ in recorder.paths(pages[0].pfn)]
    assert paths[0] == "pageout_success"
    assert "release_failed" in paths, "buffers stay in the journal until it commits"
    assert paths[-1] == "migrate_page"


def test_swap_page_is_the_last_resort_only_from_pass_5(world: World, recorder: Recorder) -> None:
    sb = world.mount("ext3", "journal")
    sb.s_fs_info.set_commit_interval(1_000_000)  # the journal never commits in time
    inode = world.file(sb, 1)
    (page,) = inode.i_mapping.pages()
    out = world.migrate([page])
    assert out.problems == []
    attempts = recorder.paths(page.pfn)
    by_pass = {p: path for p, path, _ in attempts}
    assert all(by_pass[p] == "release_failed" for p in range(5))
    assert all(by_pass[p] == "swap_page" for p in range(5, 11))
    assert out.rc == 1


def test_swap_page_drops_pages_when_there_is_no_to_list(world: World) -> None:
    from fsaops.fs import generic_file_read

    sb = world.mount("ext2")
    inode = world.file(sb, 2)
    data = generic_file_read(inode, 0, 2 * 4096)
    pages = inode.i_mapping.pages()
    from_ = world.isolate(pages)
    moved, failed = PageList("moved"), PageList("failed")
    rc = -1
    for _ in range(3):
        rc = migrate_pages(from_, None, moved, failed)
        if from_.empty():
            break
    assert rc == 0
    assert len(moved) == 2
    assert inode.i_mapping.nrpages == 0, "swap_page dropped the pages from the cache"
    from fsaops.lru import putback_lru_pages

    putback_lru_pages(moved)
    world.kernel.run_until_idle()
    assert generic_file_read(inode, 0, 2 * 4096) == data, "the data came back from disk"


def test_pf_swapwrite_is_set_during_migration_and_restored(world: World) -> None:
    sb = world.mount("ext2")
    inode = world.file(sb, 1)
    seen: list[int] = []
    (page,) = inode.i_mapping.pages()
    a_ops = inode.i_mapping.a_ops
    real = a_ops.migratepage
    assert real is not None

    def spy(newpage: Page, old: Page) -> int:
        seen.append(world.kernel.current.flags & PF_SWAPWRITE)
        return real(newpage, old)

    import attrs

    inode.i_mapping.a_ops = attrs.evolve(a_ops, migratepage=spy)
    out = world.migrate([page])
    assert out.rc == 0
    assert seen == [PF_SWAPWRITE]
    assert not world.kernel.current.flags & PF_SWAPWRITE


@pytest.mark.parametrize("semantics", SEMANTICS)
def test_a_young_pte_takes_two_unmap_tries_in_v4_and_one_from_2_6_16(
    registry: Registry, semantics: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import fsaops.migrate

    world = World(registry=registry, node_pages=256, swap_slots=64, semantics=semantics)
    sb = world.mount("ext2")
    inode = world.file(sb, 1, clean=True)
    mm = world.kernel.new_mm()
    vma = mm.mmap_file(inode, 0, 1)
    mm.read(vma.vm_start * 4096, 16)
    (page,) = inode.i_mapping.pages()
    assert page.mapcount == 1
    assert mm.ptes[vma.vm_start].young
    tries: list[bool] = []
    real = try_to_unmap

    def counted(page: Page, ignore_refs: bool = False) -> int:
        tries.append(ignore_refs)
        return real(page, ignore_refs)

    monkeypatch.setattr(fsaops.migrate, "try_to_unmap", counted)
    out = world.migrate([page])
    assert out.problems == []
    assert out.rc == 0
    assert page.mapcount == 0
    # V4: the first try clears the young bit and fails, the second succeeds;
    # from January 2006 ignore_refs unmaps a young pte at once.
    assert tries == ([False, False] if semantics == "v4" else [True])
    assert mm.read(vma.vm_start * 4096, 16) == inode.i_mapping.pages()[0].data[:16].tobytes()


def test_permanent_failures_of_a_plugin_are_reported_not_raised(world: World) -> None:
    import attrs

    sb = world.mount("ext2")
    inode = world.file(sb, 3, clean=True)
    pages = inode.i_mapping.pages()
    calls = iter([ValueError("boom"), 7, None])

    def broken(newpage: Page, page: Page) -> int:
        outcome = next(calls)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome  # type: ignore[return-value]

    inode.i_mapping.a_ops = attrs.evolve(inode.i_mapping.a_ops, migratepage=broken)
    out = world.migrate(pages)
    assert out.rc == 3
    assert len(out.failed) == 3
    reasons = out.stats.tables["ext2_aops"].reasons
    assert any("raised ValueError: boom" in r for r in reasons)
    assert any("returned 7" in r for r in reasons)
    assert any("returned None" in r for r in reasons)


def test_counts_read_between_calls_hold_every_page_moved_so_far(world: World) -> None:
    # Under V4 each call moves one page, and a run of moved pages is counted
    # under its table as the counts are read, not at the end of each call.
    sb = world.mount("ext2")
    inode = world.file(sb, 5, clean=True)
    from_ = world.isolate(inode.i_mapping.pages())
    stats = MigrateStats()
    for done in range(1, 6):
        moved, failed = PageList("moved"), PageList("failed")
        assert migrate_pages(from_, world.new_pages(1), moved, failed, stats=stats) == 0
        putback_lru_pages(moved)
        if done in (2, 3):
            continue  # calls 2 to 4 go on with one run, unread
        # Read one way or the other first: each must count the run.
        table = stats.table("ext2_aops") if done % 2 else stats.tables["ext2_aops"]
        assert (table.moved, table.via, table.pages) == (done, {"migratepage": done}, done)
    assert stats.calls == 5
    assert world.kernel.vmstat.pgmigrate_success == 5


def test_a_call_made_during_another_on_the_same_counts_loses_no_page(world: World) -> None:
    # A table's migratepage that migrates other pages itself, on the same
    # counts: each call's run of moved pages is counted, the inner one's too.
    outer = world.file(world.mount("ext2"), 3, clean=True)
    inner = world.file(world.mount("ext2", "nobh"), 4, clean=True)
    outer_pages = outer.i_mapping.pages()
    inner_from = PageList("inner")
    for page in inner.i_mapping.pages():
        assert isolate_lru_page(page) == 1
        list_add_tail(page, inner_from)
    stats = MigrateStats()
    real = outer.i_mapping.a_ops.migratepage
    assert real is not None
    inner_calls: list[int] = []

    def migrates_others_first(newpage: Page, page: Page) -> int:
        if not inner_calls:
            moved, failed = PageList("moved"), PageList("failed")
            inner_calls.append(
                migrate_pages(inner_from, world.new_pages(4), moved, failed, stats=stats)
            )
            putback_lru_pages(moved)
        return real(newpage, page)

    outer.i_mapping.a_ops = attrs.evolve(outer.i_mapping.a_ops, migratepage=migrates_others_first)
    from_ = world.isolate(outer_pages)
    moved, failed = PageList("moved"), PageList("failed")
    assert migrate_pages(from_, world.new_pages(3), moved, failed, stats=stats) == 0
    putback_lru_pages(moved)
    assert inner_calls == [0]
    assert {name: (t.moved, t.via) for name, t in stats.tables.items()} == {
        "ext2_aops": (3, {"migratepage": 3}),
        "ext2_nobh_aops": (4, {"migratepage": 4}),
    }
    assert world.kernel.vmstat.pgmigrate_success == 7


def test_migration_compiled_out(registry: Registry) -> None:
    world = World(registry=registry, migration=False, node_pages=256, swap_slots=64)
    sb = world.mount("ext2")
    assert sb.a_ops.migratepage is None
    assert world.kernel.swapper_space is not None
    assert world.kernel.swapper_space.a_ops.migratepage is None
    inode = world.file(sb, 1)
    (page,) = inode.i_mapping.pages()
    assert isolate_lru_page(page) == -ENOSYS
    from_ = PageList("from")
    from fsaops.lists import list_add_tail

    list_add_tail(page, from_)  # as if isolated by other means
    assert migrate_pages(from_, None, PageList(), PageList()) == -ENOSYS
    with pytest.raises(MigrationDisabled, match="ENOSYS"):
        migrate_node(world.kernel, 0, 1)


def test_migration_compiled_out_is_enosys_even_for_an_empty_list(registry: Registry) -> None:
    world = World(registry=registry, migration=False, node_pages=256, swap_slots=64)
    empty = PageList("from")
    # The kernel's stub returns -ENOSYS whatever the list holds.
    assert migrate_pages(empty, None, PageList(), PageList(), kernel=world.kernel) == -ENOSYS
    to = world.new_pages(1)
    assert migrate_pages(empty, to, PageList(), PageList()) == -ENOSYS, "the machine of to"
    assert world.migrate([]).rcs == [-ENOSYS]
    built = World(registry=registry, node_pages=256, swap_slots=64)
    assert migrate_pages(empty, None, PageList(), PageList(), kernel=built.kernel) == 0
    assert built.migrate([]).rcs == [0]


@pytest.mark.parametrize("to", [None, "empty"])
def test_a_call_with_no_page_and_no_machine_named_does_nothing(to: str | None) -> None:
    """No page on any list and no ``kernel``: nothing says which machine this is, and the call
    returns 0 (as its docstring promises), not an AttributeError on the missing machine."""
    stats = MigrateStats()
    target = None if to is None else PageList("to")
    assert migrate_pages(PageList("from"), target, PageList(), PageList(), stats=stats) == 0
    assert stats.calls == 0, "a call that cannot know its machine is not counted"


@pytest.mark.parametrize("semantics", sorted(SEMANTICS))
def test_a_call_with_no_page_on_a_named_machine_counts_nothing(
    registry: Registry, semantics: str
) -> None:
    """An empty call on a machine with migration returns 0 and counts no call and no pass.

    The kernel's loop runs over nothing and returns; the stats and the vm
    counters a report shows count the calls and passes that tried a page.
    """
    world = World(registry=registry, semantics=semantics, node_pages=256, swap_slots=64)
    to = world.new_pages(1)
    vmstat = world.kernel.vmstat
    before = vmstat.as_dict()
    stats = MigrateStats()
    for target in (None, PageList("to"), to):
        rc = migrate_pages(
            PageList("from"), target, PageList(), PageList(), stats=stats, kernel=world.kernel
        )
        assert rc == 0
    assert (stats.calls, stats.passes) == (0, 0)
    assert vmstat.as_dict() == before
    assert len(to) == 1, "the new page was not used"


def test_a_page_whose_table_says_nothing_is_not_given_the_reason_of_the_page_before(
    world: World,
) -> None:
    """Each attempt starts with no reason: a failure nobody explained is told by its return.

    Pinned pages around it are refused with a reason (an extra reference);
    the page between them fails with a bare ``-EIO`` from its table, and
    its reason is that return, whichever page was tried just before it.
    """
    sb = world.mount("ext2")
    inode = world.file(sb, 3, clean=True)
    first, silent, last = inode.i_mapping.pages()
    pinner = world.kernel.new_task("pinner")
    for page in (first, last):
        hold(pinner, world.kernel.sched, "page_ref", page, None)
    real = inode.i_mapping.a_ops.migratepage
    assert real is not None

    def mp(newpage: Page, page: Page) -> int:
        return -EIO if page is silent else real(newpage, page)

    inode.i_mapping.a_ops = attrs.evolve(inode.i_mapping.a_ops, migratepage=mp)
    out = world.migrate([first, silent, last])
    assert out.stats.failures[silent.pfn][1:3] == ("migratepage returned EIO", "EIO")
    for page in (first, last):
        assert "an extra reference is held" in out.stats.pending[page.pfn][1]


def _odd_table(world: World, mp: Callable[[Page, Page], int]) -> Page:
    """One page of a file whose table's ``migratepage`` is ``mp``; the page."""
    sb = world.mount("ext2")
    inode = world.file(sb, 1, clean=True)
    (page,) = inode.i_mapping.pages()
    inode.i_mapping.a_ops = attrs.evolve(inode.i_mapping.a_ops, migratepage=mp)
    return page


def _raising_table(world: World, raised: BaseException) -> Page:
    """One page of a file whose table's ``migratepage`` raises ``raised``; the page."""

    def mp(newpage: Page, old: Page) -> int:
        raise raised

    return _odd_table(world, mp)


@pytest.mark.parametrize("which", ["new", "old"])
def test_a_migratepage_that_unlocks_a_page_the_engine_unlocks_is_a_kernel_bug(
    world: World, which: str
) -> None:
    """The engine unlocks both pages after the call: ``unlock_page``'s ``BUG()`` if one is not.

    A table that unlocks either page itself must not pass with the engine
    quietly clearing a bit that is already clear.
    """

    def mp(newpage: Page, old: Page) -> int:
        rc = buffer_migrate_page(newpage, old)
        unlock_page(newpage if which == "new" else old)
        return rc

    page = _odd_table(world, mp)
    said = rf"unlock_page\(\) of pfn (\d+) \(the {which} page\), which is not locked: ext2_aops's"
    with pytest.raises(KernelBug, match=said + " migratepage unlocked it") as info:
        world.migrate([page])
    unlocked = re.match(said, str(info.value))
    assert unlocked is not None
    assert (int(unlocked[1]) == page.pfn) == (which == "old")


@pytest.mark.parametrize(
    ("rc", "failure"),
    [
        (7, ("migratepage returned 7, not 0 or a negative errno", "EIO")),
        (-4096, ("migratepage returned -4096, not 0 or a negative errno", "EIO")),
        (-EPERM, ("migratepage returned EPERM", "EPERM")),  # the errno nearest 0
        (-4095, ("migratepage returned -4095", "-4095")),  # and the farthest, unnamed
    ],
)
def test_what_a_migratepage_returns_fails_the_page_it_was_migrating(
    world: World, rc: int, failure: tuple[str, str]
) -> None:
    """A negative errno fails the page with it; anything else is ``EIO`` and a finding."""
    page = _odd_table(world, lambda newpage, old: rc)
    out = world.migrate([page])
    assert out.stats.failures == {page.pfn: ("ext2_aops", *failure, 0)}
    findings = out.stats.findings.result()
    if failure[1] != "EIO":
        assert findings == ()
        return
    (finding,) = findings
    assert (finding.kind, finding.pages) == ("return", (page.pfn,))
    assert finding.example == f"{failure[0]} (pfn {page.pfn})"


def test_a_migratepage_that_raises_fails_the_page_it_was_migrating(world: World) -> None:
    """The failure, its reason and the table's finding are the old page's, not the new one's."""
    page = _raising_table(world, RuntimeError("the table broke"))
    out = world.migrate([page])
    why = "migratepage raised RuntimeError: the table broke"
    assert out.stats.failures == {page.pfn: ("ext2_aops", why, "EIO", 0)}
    (finding,) = out.stats.findings.result()
    assert (finding.kind, finding.pages) == ("return", (page.pfn,))
    assert finding.example == f"{why} (pfn {page.pfn})"


def test_a_bug_inside_migratepage_says_which_page_it_was_migrating(world: World) -> None:
    page = _raising_table(world, KernelBug("kernel BUG at the table"))
    with pytest.raises(KernelBug) as info:
        world.migrate([page])
    assert str(info.value) == (
        f"kernel BUG at the table (in ext2_aops's migratepage, migrating pfn {page.pfn}, pass 0)"
    )


@pytest.mark.parametrize("raises", [False, True])
def test_the_mapping_being_migrated_is_known_only_while_its_migratepage_runs(
    world: World, raises: bool
) -> None:
    """``Scheduler.migrating``, which ``might_sleep`` blames, is cleared when the call returns.

    Left set, a sleep after it (a later page's ``writepage`` on the generic
    path, the proofs' reads) would be said to be in this mapping's table.
    """
    sched = world.kernel.sched
    seen: list[object] = []

    def mp(newpage: Page, old: Page) -> int:
        seen.append(sched.migrating)
        if raises:
            raise RuntimeError("the table broke")
        return buffer_migrate_page(newpage, old)

    page = _odd_table(world, mp)
    mapping = page.mapping
    assert mapping is not None and sched.migrating is None
    out = world.migrate([page])
    assert seen == [mapping]
    assert (page.pfn in out.stats.failures) == raises
    assert sched.migrating is None


def test_at_most_eleven_passes(world: World) -> None:
    sb = world.mount("ext2")
    inode = world.file(sb, 1, clean=True)
    (page,) = inode.i_mapping.pages()
    hold(world.kernel.new_task("pinner"), world.kernel.sched, "page_ref", page, None)
    out = world.migrate([page])
    assert out.stats.passes == 11


def test_debug_vm_names_the_first_page_and_table_that_broke_something(
    registry: Registry,
) -> None:
    import attrs

    from fsaops.debug import InvariantError

    world = World(registry=registry, debug_vm=True, node_pages=256, swap_slots=64)
    sb = world.mount("ext2")
    inode = world.file(sb, 3, clean=True)
    pages = inode.i_mapping.pages()
    real = inode.i_mapping.a_ops.migratepage
    assert real is not None

    def leaky(newpage: Page, page: Page) -> int:
        rc = real(newpage, page)
        if page is pages[1]:
            newpage.count += 1  # a reference nobody will ever drop
        return rc

    inode.i_mapping.a_ops = attrs.evolve(inode.i_mapping.a_ops, migratepage=leaky)
    with pytest.raises(InvariantError) as info:
        world.migrate(pages)
    first = info.value.problems[0]
    assert first.startswith(f"after pfn {pages[1].pfn} (ext2_aops, pass 0, path migratepage):")
    assert "page_count" in first


def _shared_one_locked(world: World, record: File) -> None:
    """The file's page 0 mapped by two processes, the second one's area ``VM_LOCKED``."""
    a = world.process("plain")
    va = world.map_file(record, a)
    b = world.process("locked")
    vb = world.map_file(record, b, locked=True)
    world.store(record, 0, a, va)  # the first pte dirty: its bit must reach the page
    world.touch(b, vb, 0)


def _dirty_through_mapping(world: World, record: File) -> None:
    """The file's page 0 written through a shared mapping: only its pte is dirty."""
    mm = world.process("writer")
    world.store(record, 0, mm, world.map_file(record, mm))


@pytest.mark.parametrize("semantics", ["v4", "2.6.16", "2.6.17"])
@pytest.mark.parametrize(
    ("fs", "mode", "setup"),
    [
        ("ext2", None, _shared_one_locked),
        ("ext3", "journal", _shared_one_locked),
        ("ext3", "journal", _dirty_through_mapping),
    ],
)
def test_debug_vm_takes_a_page_that_lost_some_ptes_and_stayed(
    registry: Registry,
    semantics: str,
    fs: str,
    mode: str | None,
    setup: Callable[[World, File], None],
) -> None:
    """``try_to_unmap`` may take some ptes and then fail, and 2.6.17's fallback unmaps first.

    A page left behind with fewer ptes (and a dirty pte's bit on the page)
    is lawful: debug mode passes it, and every byte reads back.
    """
    world = World(
        registry=registry,
        nodes=2,
        node_pages=128,
        swap_slots=32,
        semantics=semantics,
        debug_vm=True,
    )
    sb = world.mount(fs, mode) if mode else world.mount(fs)
    record = world.record_of(world.file(sb, 2, clean=True))
    setup(world, record)
    page = world.page_of(record, 0)
    assert page is not None and page.mapcount > 0
    mapped = page.mapcount
    result = migrate_node(world.kernel, 0, 1)  # no InvariantError
    world.kernel.run_until_idle()
    assert result.left  # the page stayed behind ...
    assert world.page_of(record, 0) is page and page.mapcount < mapped  # ... with fewer ptes
    assert check_kernel(world.kernel) == []
    views = [(record, 0, mm, vma) for mm in world.kernel.mms for vma in mm.vmas]
    back = world.oracle.read_back(world, views=views)
    assert (back.lost, back.corrupted, back.problems) == (0, 0, ())


def test_debug_vm_names_a_dirty_pte_dropped_without_pg_dirty(registry: Registry) -> None:
    """A ``migratepage`` that zaps a dirty pte and fails loses the data written through it."""
    import attrs

    from fsaops.debug import InvariantError

    world = World(registry=registry, debug_vm=True, node_pages=128)
    sb = world.mount("ext2")
    record = world.record_of(world.file(sb, 2, clean=True))
    _dirty_through_mapping(world, record)
    page = world.page_of(record, 0)
    assert page is not None

    def zaps(newpage: Page, old: Page) -> int:
        if old is page:
            for mm in world.kernel.mms:
                for vpn, pte in list(mm.ptes.items()):
                    if pte.page is old:
                        del mm.ptes[vpn]  # the dirty bit goes with it
                        page_remove_rmap(old)
                        put_page(old)
        return -EAGAIN

    sb.a_ops = record.inode.i_mapping.a_ops = attrs.evolve(sb.a_ops, migratepage=zaps)
    with pytest.raises(InvariantError) as info:
        world.migrate([page])
    assert "lost its dirty ptes without PG_dirty" in info.value.problems[0]


# -- branches of swap_page and of the fallback, each reached by a fixed test -----------------


def _drop_list(world: World, pages: list[Page]) -> tuple[PageList, MigrateStats, int]:
    """Run migrate_pages with no to list (every page goes through swap_page)."""
    from_ = world.isolate(pages)
    stats = MigrateStats()
    rc = migrate_pages(from_, None, PageList("moved"), PageList("failed"), stats=stats)
    return from_, stats, rc


def test_a_page_read_in_from_swap_is_counted_as_added_to_the_swap_cache(world: World) -> None:
    """``swap_cache_add`` is the kernel's ``add_total``: ``add_to_swap`` and swap-ins alike."""
    area = world.anon(2)
    mm, vma = area.mm, area.vma
    before = mm.read(vma.vm_start * 4096, 2 * 4096)
    pages = [pte.page for pte in mm.ptes.values() if pte.page is not None]
    vmstat = world.kernel.vmstat
    added = vmstat.swap_cache_add
    _, stats, rc = _drop_list(world, pages)  # add_to_swap, written out, dropped
    world.kernel.run_until_idle()
    assert rc == 0 and stats.tables["swap_aops"].moved == 2
    assert vmstat.swap_cache_add == added + 2
    swapins = vmstat.pswpin
    assert mm.read(vma.vm_start * 4096, 2 * 4096) == before  # two major faults
    assert vmstat.pswpin == swapins + 2
    assert vmstat.swap_cache_add == added + 4


def test_swap_page_keeps_a_pinned_dirty_page_pageout_keep(world: World, recorder: Recorder) -> None:
    sb = world.mount("ext2", "nobh")
    inode = world.file(sb, 1)  # dirty
    (page,) = inode.i_mapping.pages()
    assert page.flags & PG.dirty
    world.pin(page)
    writes = world.kernel.vmstat.pageout_writepage
    from_, stats, rc = _drop_list(world, [page])
    assert rc == 1
    assert list(from_) == [page]
    assert stats.tables["ext2_nobh_aops"].reasons == {"swap_page: pageout keep": 1}
    attempts = recorder.paths(page.pfn)
    assert len(attempts) == MAX_PASSES
    assert {(path, rc) for _, path, rc in attempts} == {("swap_page", -EAGAIN)}
    # pageout() sees a page someone else holds (page_count - private != 2): KEEP.
    assert world.kernel.vmstat.pageout_writepage == writes, "nothing was written"
    assert page.flags & PG.dirty and not page.flags & PG.locked
    assert inode.i_mapping.page_tree[0] is page


def test_swap_page_keeps_a_dirty_page_its_table_cannot_write_pageout_activate(
    world: World, recorder: Recorder
) -> None:
    sb = world.mount("ext2", "nobh")
    inode = world.file(sb, 1)
    (page,) = inode.i_mapping.pages()
    inode.i_mapping.a_ops = attrs.evolve(inode.i_mapping.a_ops, writepage=None)
    from_, stats, rc = _drop_list(world, [page])
    assert rc == 1
    assert list(from_) == [page]
    assert {path for _, path, _ in recorder.paths(page.pfn)} == {"swap_page"}
    assert stats.tables["ext2_nobh_aops"].reasons == {"swap_page: pageout activate": 1}
    assert page.flags & PG.dirty and not page.flags & PG.locked
    assert world.kernel.vmstat.migrate_pageout == MAX_PASSES, "pageout asked on every pass"


def test_swap_page_keeps_a_pinned_clean_page_remove_mapping_fails(
    world: World, recorder: Recorder
) -> None:
    sb = world.mount("ext2", "nobh")
    inode = world.file(sb, 1, clean=True)
    (page,) = inode.i_mapping.pages()
    world.pin(page)
    from_, stats, rc = _drop_list(world, [page])
    assert rc == 1
    assert list(from_) == [page]
    assert stats.tables["ext2_nobh_aops"].reasons == {"swap_page: the page is still in use": 1}
    assert world.kernel.vmstat.migrate_pageout == 0, "clean: nothing to write"
    assert inode.i_mapping.page_tree[0] is page
    assert not page.flags & PG.locked


@pytest.mark.parametrize("keep", [True, False])
def test_the_fallback_retries_a_dirty_page_pageout_cannot_write(
    world: World, recorder: Recorder, keep: bool
) -> None:
    sb = world.mount("ext2", "nobh")
    inode = world.file(sb, 1)
    (page,) = inode.i_mapping.pages()
    table = inode.i_mapping.a_ops
    if keep:
        world.pin(page)  # pageout: KEEP (somebody else holds the page)
        inode.i_mapping.a_ops = attrs.evolve(table, migratepage=None)
    else:
        inode.i_mapping.a_ops = attrs.evolve(table, migratepage=None, writepage=None)  # ACTIVATE
    out = world.migrate([page])
    assert out.problems == []
    assert out.rc == 1
    assert list(out.from_) == [page]
    attempts = recorder.paths(page.pfn)
    want = "keep" if keep else "activate"
    assert {path for _, path, _ in attempts} == {f"pageout_{want}"}
    assert out.stats.tables["ext2_nobh_aops"].reasons == {
        f"pageout: {want} (dirty page could not be written)": 1
    }
    assert len(attempts) == MAX_PASSES
    assert len(out.to) == 1, "the new page was unlocked and left on to"
    assert not out.to.first().flags & PG.locked
    assert page.flags & PG.dirty and not page.flags & PG.locked


@pytest.mark.parametrize("swap", [False, True], ids=["fallback", "swap_page"])
def test_the_migration_code_asks_releasepage_with_gfp_kernel(world: World, swap: bool) -> None:
    """The fallback and ``swap_page`` call ``try_to_release_page(page, GFP_KERNEL)``.

    A ``releasepage`` that lets buffers go only when it may call into its
    filesystem (``__GFP_FS``, as XFS's does) must let them go here.
    """
    from fsaops.buffer import try_to_free_buffers
    from fsaops.gfp import GFP_FS, GFP_KERNEL

    asked: list[int] = []

    def releasepage(page: Page, gfp: int) -> int:
        asked.append(gfp)
        return try_to_free_buffers(page) if gfp & GFP_FS else 0

    inode = world.file(world.mount("ext2", block_size=1024), 1, clean=True)
    (page,) = inode.i_mapping.pages()
    inode.i_mapping.a_ops = attrs.evolve(
        inode.i_mapping.a_ops, migratepage=None, releasepage=releasepage
    )
    if swap:  # no new pages: migrate_pages swaps the page out (swap_page)
        world.isolate([page])
        moved, failed = PageList("moved"), PageList("failed")
        rc = migrate_pages(world.from_, None, moved, failed, kernel=world.kernel)
        assert list(moved) == [page]
    else:
        out = world.migrate([page])
        assert out.problems == []
        rc = out.rc
    assert asked == [GFP_KERNEL]
    assert rc == 0


@pytest.mark.parametrize("semantics", SEMANTICS)
def test_a_swapped_out_anonymous_page_moves_cleanly_in_every_release(
    registry: Registry, semantics: str
) -> None:
    """A swap-cache page only swap ptes map: from 2.6.16 it comes back mapped, out of the cache.

    The oracle finds it through its process's pte, not the empty swap-cache
    slot, and an anonymous page its process maps has no backing store to reach.
    """
    world = World(registry=registry, node_pages=64, swap_slots=16, semantics=semantics)
    prepared = world.make_page("clean")
    page = prepared.page
    assert page.flags & PG.swapcache and page.mapcount == 0
    out = world.migrate()
    assert out.problems == []
    assert out.where(page) == "moved"
    assert prepared.mm is not None
    (pte,) = prepared.mm.ptes.values()
    assert (pte.page is None) == (semantics == "v4"), "2.6.16 gives the process a real pte"
    assert prepared.read_back() == prepared.data


# -- buffer_migrate_page's private_lock ------------------------------------------------------


@pytest.mark.parametrize("semantics", SEMANTICS)
def test_v4_sleeps_on_a_buffer_lock_holding_private_lock_and_2_6_16_does_not(
    registry: Registry, semantics: str
) -> None:
    from fsaops.buffer import buffers

    world = World(registry=registry, node_pages=256, swap_slots=64, semantics=semantics)
    inode = world.file(world.mount("ext2", block_size=1024), 1, clean=True)
    (page,) = inode.i_mapping.pages()
    mapping = inode.i_mapping
    bh = list(buffers(page.private))[2]
    sched = world.kernel.sched
    hold(world.kernel.new_task("io"), sched, "buffer_lock", bh, 50)
    seen: list[bool] = []
    sched.call_later(20, lambda: seen.append(mapping.private_lock.locked()))
    out = world.migrate([page])
    assert out.problems == []
    assert out.rc == 0
    assert seen == [semantics == "v4"], "whether private_lock was held while the engine slept"
    assert not mapping.private_lock.locked()
