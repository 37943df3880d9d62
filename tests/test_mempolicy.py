"""The callers: migrate_pages_to, migrate_to_node, do_migrate_pages, sys_migrate_pages (§8).

Where the releases differ (the chunk of new pages, the order of the lists,
which pages are queued, what a migrated process's ptes are), each semantics
is run and the difference asserted.
"""

from __future__ import annotations

from errno import EINVAL, ENODEV, ENOMEM, ENOSYS, EPERM, ESRCH

import pytest

from fsaops.debug import check_kernel
from fsaops.lists import PageList
from fsaops.lru import isolate_lru_page, putback_lru_pages
from fsaops.mempolicy import (
    MAX_NUMNODES,
    MIGRATE_CHUNK_SIZE,
    MPOL_MF_MOVE,
    MPOL_MF_MOVE_ALL,
    check_range,
    do_migrate_pages,
    migrate_page_add,
    migrate_pages_to,
    node_remap,
    sys_migrate_pages,
)
from fsaops.migrate import MigrateStats, migrate_pages
from fsaops.page import Page, get_page, put_page
from fsaops.plugins import Registry
from fsaops.rmap import VM_SHARED, VM_WRITE, Mm
from fsaops.semantics import SEMANTICS
from fsaops.world import Area, World


@pytest.mark.parametrize(
    ("semantics", "pages", "calls"),
    [("v4", 300, 300), ("2.6.16", 300, 2), ("2.6.16", 514, 2), ("2.6.17", 514, 2)],
)
def test_new_pages_come_in_chunks_of_257_from_2_6_16_and_one_at_a_time_in_v4(
    registry: Registry, semantics: str, pages: int, calls: int
) -> None:
    world = World(registry=registry, node_pages=1024, swap_slots=0, semantics=semantics)
    inode = world.file(world.mount("ext2", "nobh"), pages, clean=True)
    pagelist = world.isolate(inode.i_mapping.pages())
    stats = MigrateStats()
    left = migrate_pages_to(pagelist, None, 1, stats=stats)
    assert left == 0
    assert MIGRATE_CHUNK_SIZE == 256
    # 2.6.16: 257 pages, then the other 43 (or 257 more: two calls, where
    # chunks of 256 would take three).  V4: `if (nr_pages > MIGRATE_CHUNK_SIZE);`
    # breaks after every page, so every call gets one new page.
    assert stats.calls == calls
    assert world.kernel.nodes[1].nr_free == 1024 - pages
    assert check_kernel(world.kernel) == []


@pytest.mark.parametrize(("semantics", "moved"), [("v4", 6), ("2.6.16", 0), ("2.6.17", 0)])
def test_allocation_failure_is_enomem(registry: Registry, semantics: str, moved: int) -> None:
    world = World(registry=registry, node_pages=16, swap_slots=0, semantics=semantics)
    inode = world.file(world.mount("ext2", "nobh"), 12, clean=True)
    for _ in range(10):
        assert world.kernel.nodes[1].alloc_page() is not None
    pagelist = world.isolate(inode.i_mapping.pages())
    stats = MigrateStats()
    assert migrate_pages_to(pagelist, None, 1, stats=stats) == -ENOMEM
    # 2.6.16 asks for the whole chunk of 12 first and gets 6; V4 asks for one
    # page at a time and moves 6 pages before the seventh cannot be had.
    assert len(pagelist) == 12 - moved, "the pages not migrated stay listed"
    assert sum(p.node.nid == 1 for p in inode.i_mapping.pages()) == moved
    # Each page left is counted once, as one no new page could be had for.
    why = "no new page could be allocated on the target node (ENOMEM)"
    assert stats.pending == {page.pfn: ("ext2_nobh_aops", why, "ENOMEM", -1) for page in pagelist}


@pytest.mark.parametrize("semantics", SEMANTICS)
def test_an_empty_list_is_nothing_to_do(registry: Registry, semantics: str) -> None:
    """No page, no machine to ask: 0, with nothing allocated and nothing counted."""
    world = World(registry=registry, node_pages=16, swap_slots=0, semantics=semantics)
    stats = MigrateStats()
    assert migrate_pages_to(PageList("empty"), None, 1, stats=stats) == 0
    assert world.kernel.nodes[1].nr_free == 16
    assert (stats.calls, stats.pending) == (0, {})


@pytest.mark.parametrize("semantics", SEMANTICS)
def test_new_pages_come_from_the_areas_node_when_it_has_one(
    registry: Registry, semantics: str
) -> None:
    """``alloc_page_vma``: an area bound to a node gets its new pages there, whatever ``dest``.

    An area with no node of its own (``nid`` None) gets them on ``dest``.
    """
    world = World(registry=registry, nodes=3, node_pages=64, swap_slots=64, semantics=semantics)
    bound, unbound = world.anon(4), world.anon(4)
    bound.vma.nid = 2
    for area, dest, node in ((bound, 1, 2), (unbound, 1, 1)):
        pages = [world.page_of(area, i) for i in range(4)]
        pagelist = world.isolate([page for page in pages if page is not None])
        assert migrate_pages_to(pagelist, area.vma, dest) == 0
        where = [world.page_of(area, i) for i in range(4)]
        assert [None if page is None else page.node.nid for page in where] == [node] * 4


@pytest.mark.parametrize("semantics", ["2.6.16", "2.6.17"])
def test_the_last_allocated_new_page_is_used_first_from_2_6_16(
    registry: Registry, semantics: str
) -> None:
    world = World(registry=registry, node_pages=64, swap_slots=0, semantics=semantics)
    inode = world.file(world.mount("ext2", "nobh"), 3, clean=True)
    free = [p.pfn for p in world.kernel.nodes[1].free_pages()]
    pages = inode.i_mapping.pages()
    assert migrate_pages_to(world.isolate(pages), None, 1) == 0
    # list_add_tail() of the new pages, and migrate_pages() takes the tail:
    # the first old page gets the last page allocated.
    allocated = free[:3]
    assert [p.pfn for p in inode.i_mapping.pages()] == allocated[::-1]


def test_v4_migrate_page_add_queues_at_the_head_and_2_6_16_at_the_tail(
    registry: Registry,
) -> None:
    order = {}
    for semantics in ("v4", "2.6.16"):
        world = World(registry=registry, node_pages=64, swap_slots=16, semantics=semantics)
        area = world.anon(4)
        pagelist = PageList()
        assert check_range(area.mm, {0}, MPOL_MF_MOVE, pagelist) == 0
        order[semantics] = [p.index for p in pagelist]
    walk = list(range(order["2.6.16"][0], order["2.6.16"][0] + 4))
    assert order["2.6.16"] == walk, "2.6.16: list_add_tail, in address order"
    assert order["v4"] == walk[::-1], "V4: list_add, in reverse"


def _read_by_two(world: World, cleared: int) -> tuple[Page, list[Mm]]:
    """A clean ext2 nobh page that two processes map and read (``cleared``: off their areas)."""
    inode = world.file(world.mount("ext2", "nobh"), 1, clean=True)
    (page,) = inode.i_mapping.pages()
    readers = [world.process(f"reader{i}") for i in range(2)]
    for mm in readers:
        vma = mm.mmap_file(inode, 0, 1)
        vma.vm_flags &= ~cleared
        mm.read(vma.vm_start * world.page_size, 1)
    return page, readers


@pytest.mark.parametrize("semantics", ["v4", "2.6.16", "2.6.17"])
def test_which_pages_migrate_page_add_takes_without_move_all(
    registry: Registry, semantics: str
) -> None:
    world = World(registry=registry, node_pages=64, swap_slots=16, semantics=semantics)
    page, readers = _read_by_two(world, VM_WRITE | VM_SHARED)  # private, read-only: a library
    assert page.mapcount == 2
    pagelist = PageList()
    migrate_page_add(readers[0], page, pagelist, MPOL_MF_MOVE)
    # V4 takes a file page mapped by another process only if it is writably
    # mapped; 2.6.16 takes no shared page (page_mapcount == 1).  Both refuse it.
    assert pagelist.empty()
    readers[1].munmap(readers[1].vmas[0])
    assert page.mapcount == 1
    migrate_page_add(readers[0], page, pagelist, MPOL_MF_MOVE)
    assert list(pagelist) == [page], f"{semantics}: a page only this process maps moves"
    world.kernel.run_until_idle()


@pytest.mark.parametrize("semantics", ["v4", "2.6.16", "2.6.17"])
def test_a_page_the_walk_meets_twice_is_isolated_and_queued_once(
    registry: Registry, semantics: str
) -> None:
    """``check_range`` calls ``migrate_page_add`` at every pte; the second finds the page isolated.

    ``isolate_lru_page`` then returns 0 and leaves the page, its count and
    the LRU's counts as they were: it is queued and moved once.
    """
    world = World(registry=registry, node_pages=64, swap_slots=16, semantics=semantics)
    inode = world.file(world.mount("ext2", "nobh"), 1, clean=True)
    (page,) = inode.i_mapping.pages()
    mm = world.process("twice")
    vmas = [mm.mmap_file(inode, 0, 1) for _ in range(2)]
    data = [mm.read(vma.vm_start * world.page_size, world.page_size) for vma in vmas]
    assert page.mapcount == 2 and data[0] == data[1]
    node = page.node
    count, on_lru = page.count, node.nr_active + node.nr_inactive
    pagelist = PageList()
    assert check_range(mm, {0}, MPOL_MF_MOVE_ALL, pagelist) == 0
    assert list(pagelist) == [page]
    state = (page.count, page.flags, node.nr_active, node.nr_inactive)
    assert state[0] == count + 1, "one isolation reference"
    assert node.nr_active + node.nr_inactive == on_lru - 1
    assert isolate_lru_page(page) == 0
    assert (page.count, page.flags, node.nr_active, node.nr_inactive) == state
    assert list(pagelist) == [page]
    assert putback_lru_pages(pagelist) == 1
    assert (page.count, node.nr_active + node.nr_inactive) == (count, on_lru)
    assert do_migrate_pages(mm, {0}, {1}, MPOL_MF_MOVE_ALL) == 0
    moved = world.page_of(world.files[0], 0)
    assert moved is not None and moved is not page and moved.node.nid == 1
    assert [mm.read(vma.vm_start * world.page_size, world.page_size) for vma in vmas] == data
    assert moved.mapcount == 2, "both ptes fault the moved page back in"
    world.kernel.run_until_idle()
    assert check_kernel(world.kernel) == []


@pytest.mark.parametrize("semantics", ["v4", "2.6.16", "2.6.17"])
@pytest.mark.parametrize("slots", [1, 2], ids=["swap full", "one slot free"])
def test_check_range_queues_only_present_pages_and_needs_a_free_swap_slot(
    registry: Registry, semantics: str, slots: int
) -> None:
    """A pte never made (a hole) and a swap pte (a page swapped out) have no page to queue.

    From 2.6.16 moving needs a free swap slot (``nr_swap_pages <= 0`` is
    ``-ENODEV``): one is enough, and a walk that does not move needs none.
    V4 queues the pages whatever the swap.
    """
    world = World(registry=registry, node_pages=64, swap_slots=slots, semantics=semantics)
    area = world.anon(2)
    mm = area.mm
    out, kept = world.page_of(area, 0), world.page_of(area, 1)
    assert out is not None and kept is not None
    swapping = world.isolate([out])
    moved, failed = PageList("moved"), PageList("failed")
    migrate_pages(swapping, None, moved, failed)  # no new pages: swapped out
    putback_lru_pages(moved)
    putback_lru_pages(failed)
    assert world.page_of(area, 0) is None, "page 0 of the area is out, a swap pte"
    assert world.kernel.swap is not None and world.kernel.swap.nr_swap_pages == slots - 1
    inode = world.file(world.mount("ext2", "nobh"), 2, clean=True)
    vma = mm.mmap_file(inode, 0, 2)
    mm.read(vma.vm_start * world.page_size, 1)  # the file's second page is never mapped: a hole
    read = inode.i_mapping.page_tree[0]
    pagelist = PageList()
    # Without MPOL_MF_MOVE or MOVE_ALL the walk only looks: no swap needed, nothing queued.
    assert (check_range(mm, {0}, 0, pagelist), list(pagelist)) == (0, [])
    rc = check_range(mm, {0}, MPOL_MF_MOVE_ALL, pagelist)
    if semantics != "v4" and slots == 1:
        assert (rc, list(pagelist)) == (-ENODEV, [])
    else:
        assert rc == 0
        assert sorted(p.pfn for p in pagelist) == sorted([kept.pfn, read.pfn])  # type: ignore[union-attr]
    putback_lru_pages(pagelist)
    world.kernel.run_until_idle()
    assert check_kernel(world.kernel) == []


@pytest.mark.parametrize("semantics", ["v4", "2.6.16"])
def test_a_read_only_shared_mapping_makes_a_file_writably_mapped_for_v4(
    registry: Registry, semantics: str
) -> None:
    """``mapping_writably_mapped`` reads ``i_mmap_writable``: every ``VM_SHARED`` area counts."""
    world = World(registry=registry, node_pages=64, swap_slots=16, semantics=semantics)
    page, readers = _read_by_two(world, VM_WRITE)  # shared, but read-only
    pagelist = PageList()
    migrate_page_add(readers[0], page, pagelist, MPOL_MF_MOVE)
    # V4 takes it (the file is "writably mapped"); 2.6.16 takes no shared page.
    assert (list(pagelist) == [page]) == (semantics == "v4")
    world.kernel.run_until_idle()


def test_v4_queues_an_unmapped_page_of_the_file_and_2_6_16_does_not(
    registry: Registry,
) -> None:
    taken = {}
    for semantics in ("v4", "2.6.16"):
        world = World(registry=registry, node_pages=64, swap_slots=16, semantics=semantics)
        inode = world.file(world.mount("ext2", "nobh"), 1, clean=True)
        (page,) = inode.i_mapping.pages()
        mm = world.process("owner")
        pagelist = PageList()
        migrate_page_add(mm, page, pagelist, MPOL_MF_MOVE)
        taken[semantics] = not pagelist.empty()
    # V4: a file mapped by this process only (here: by nobody) moves;
    # 2.6.16: page_mapcount must be 1.
    assert taken == {"v4": True, "2.6.16": False}


@pytest.mark.parametrize("semantics", ["v4", "2.6.16", "2.6.17"])
def test_migrate_to_node_moves_a_process(registry: Registry, semantics: str) -> None:
    world = World(registry=registry, node_pages=256, swap_slots=64, semantics=semantics)
    area = world.anon(4)
    mm, vma = area.mm, area.vma
    data = mm.read(vma.vm_start * 4096, 4 * 4096)
    vmstat = world.kernel.vmstat
    assert do_migrate_pages(mm, {0}, {1}, MPOL_MF_MOVE) == 0
    if semantics == "v4":
        # remove_from_swap() did nothing: swap ptes, the pages in the swap cache on node 1.
        assert all(pte.page is None for pte in mm.ptes.values())
        assert all(world.page_of(area, i).node.nid == 1 for i in range(4))  # type: ignore[union-attr]
    else:
        assert all(pte.page is not None and pte.page.node.nid == 1 for pte in mm.ptes.values())
    faults = vmstat.pgfault
    assert mm.read(vma.vm_start * 4096, 4 * 4096) == data
    assert vmstat.pgfault - faults == (4 if semantics == "v4" else 0)
    assert vmstat.pgmajfault == 0, "read back from the swap cache, not the swap device"
    assert all(pte.page is not None and pte.page.node.nid == 1 for pte in mm.ptes.values())
    assert do_migrate_pages(mm, {1}, {0}, MPOL_MF_MOVE) == 0
    mm.read(vma.vm_start * 4096, 4 * 4096)
    assert all(pte.page is not None and pte.page.node.nid == 0 for pte in mm.ptes.values())
    assert check_kernel(world.kernel) == []


@pytest.mark.parametrize("semantics", SEMANTICS)
def test_moving_needs_a_swap_device_from_2_6_16(registry: Registry, semantics: str) -> None:
    """2.6.16 moves nothing without swap (-ENODEV); V4 tries, and anonymous pages fail."""
    world = World(registry=registry, swap_slots=0, node_pages=256, semantics=semantics)
    area = world.anon(2)
    mm, _ = area.mm, area.vma
    pagelist = PageList()
    if semantics == "v4":
        assert check_range(mm, {0}, MPOL_MF_MOVE, pagelist) == 0
        assert len(pagelist) == 2
        putback_lru_pages(pagelist)
        # Each anonymous page fails add_to_swap: not moved.
        assert do_migrate_pages(mm, {0}, {1}, MPOL_MF_MOVE) == 2
    else:
        assert check_range(mm, {0}, MPOL_MF_MOVE, pagelist) == -ENODEV
        assert pagelist.empty()
        assert do_migrate_pages(mm, {0}, {1}, MPOL_MF_MOVE) == 0
    assert all(pte.page is not None and pte.page.node.nid == 0 for pte in mm.ptes.values())
    assert check_kernel(world.kernel) == []


def test_node_remap_keeps_the_rank() -> None:
    assert node_remap(2, {0, 2}, {1, 3}) == 3
    assert node_remap(0, {0, 2}, {1, 3}) == 1
    assert node_remap(0, {0, 1, 2}, {5}) == 5
    assert node_remap(4, {0, 2}, {1, 3}) == 4


@pytest.mark.parametrize("semantics", ["v4", "2.6.17"])
def test_sys_migrate_pages_checks(registry: Registry, semantics: str) -> None:
    world = World(registry=registry, nodes=3, node_pages=256, swap_slots=64, semantics=semantics)
    area = world.anon(2)
    mm, _ = area.mm, area.vma
    mm.uid = 1000
    k = world.kernel
    assert sys_migrate_pages(k, 999, {0}, {1}) == -ESRCH
    assert sys_migrate_pages(k, 999, {0}, {MAX_NUMNODES}) == -EINVAL  # get_nodes first
    assert sys_migrate_pages(k, mm.pid, {-1}, {1}) == -EINVAL
    assert sys_migrate_pages(k, 0, {0}, {1}) == -EINVAL  # the caller: no mm in the model
    assert sys_migrate_pages(k, mm.pid, {0}, {7}) == -EINVAL  # capable: a node that is not there
    assert sys_migrate_pages(k, mm.pid, {0}, {7}, uid=1000, capable=False) == -EPERM  # cpuset
    assert sys_migrate_pages(k, mm.pid, {0}, {7}, uid=1001, capable=False) == -EPERM
    assert sys_migrate_pages(k, mm.pid, {0}, {1}, uid=1001, capable=False) == -EPERM
    assert sys_migrate_pages(k, mm.pid, {5}, {1}, uid=1000, capable=False) == 0  # nothing on 5
    assert sys_migrate_pages(k, mm.pid, {0}, {2}, uid=1000, capable=False) == 0
    assert all(world.page_of(area, i).node.nid == 2 for i in range(2))  # type: ignore[union-attr]
    swap_ptes = sum(pte.page is None for pte in mm.ptes.values())
    assert swap_ptes == (2 if semantics == "v4" else 0)
    off = World(registry=registry, migration=False, node_pages=256, swap_slots=64)
    area_mm2 = off.anon(1)
    mm2, _ = area_mm2.mm, area_mm2.vma
    assert sys_migrate_pages(off.kernel, mm2.pid, {0}, {1}) == -ENOSYS
    # ESRCH and EPERM come first; do_migrate_pages says ENOSYS.
    assert sys_migrate_pages(off.kernel, 4242, {0}, {1}) == -ESRCH
    assert sys_migrate_pages(off.kernel, mm2.pid, {0}, {1}, uid=5, capable=False) == -EPERM
    # ENOSYS before a capable caller's node that is not there: the stub is all there is.
    assert sys_migrate_pages(off.kernel, mm2.pid, {0}, {7}) == -ENOSYS
    # The caller is uid 0 unless said, and mm2's process is uid 0's: its own, so no EPERM.
    assert mm2.uid == 0
    assert sys_migrate_pages(off.kernel, mm2.pid, {0}, {1}, capable=False) == -ENOSYS


@pytest.mark.parametrize("semantics", SEMANTICS)
@pytest.mark.parametrize("swap_slots", [0, 64])
def test_do_migrate_pages_without_migration_is_the_enosys_stub(
    registry: Registry, semantics: str, swap_slots: int
) -> None:
    """Called directly too (not through the syscall), and whether or not the list would be empty."""
    off = World(
        registry=registry,
        migration=False,
        node_pages=256,
        swap_slots=swap_slots,
        semantics=semantics,
    )
    area = off.anon(2)
    assert do_migrate_pages(area.mm, {0}, {1}, MPOL_MF_MOVE) == -ENOSYS
    assert all(pte.page is not None and pte.page.node.nid == 0 for pte in area.mm.ptes.values())
    assert check_kernel(off.kernel) == []


@pytest.mark.parametrize("semantics", ["v4", "2.6.16"])
def test_a_capable_caller_of_migrate_pages_moves_shared_pages_from_2_6_16(
    registry: Registry, semantics: str
) -> None:
    """V4's syscall passes ``MPOL_MF_MOVE`` for everyone; 2.6.16 ``MPOL_MF_MOVE_ALL`` for root."""
    world = World(registry=registry, node_pages=256, swap_slots=64, semantics=semantics)
    page, readers = _read_by_two(world, VM_WRITE | VM_SHARED)  # private, read-only: shared by two
    assert sys_migrate_pages(world.kernel, readers[0].pid, {0}, {1}) == 0
    now = world.page_of(world.files[0], 0)
    assert now is not None
    assert (now is page, now.node.nid) == ((True, 0) if semantics == "v4" else (False, 1))
    world.kernel.run_until_idle()
    assert check_kernel(world.kernel) == []


@pytest.mark.parametrize(("semantics", "calls"), [("v4", 600), ("2.6.16", 3)])
def test_chunked_runs_count_every_page_once(registry: Registry, semantics: str, calls: int) -> None:
    from fsaops.sched import hold

    world = World(registry=registry, node_pages=1024, swap_slots=0, semantics=semantics)
    inode = world.file(world.mount("ext2", "nobh"), 600, clean=True)
    pages = inode.i_mapping.pages()
    hold(world.kernel.new_task("pin"), world.kernel.sched, "page_ref", pages[-1], None)
    pagelist = world.isolate(pages)
    stats = MigrateStats()
    left = migrate_pages_to(pagelist, None, 1, stats=stats)
    assert left == 1
    assert stats.calls == calls
    table = stats.tables["ext2_nobh_aops"]
    assert (table.moved, table.failed, table.not_migrated) == (599, 0, 1)
    assert table.pages == 600
    assert table.errors == {"EAGAIN": 1}
    assert list(stats.pending) == [pages[-1].pfn]


def test_a_call_that_returns_failures_does_not_stop_the_chunks(registry: Registry) -> None:
    world = World(registry=registry, node_pages=1024, swap_slots=0, semantics="2.6.16")
    sb = world.mount("xfs_buftarg")
    from fsaops.mapping import grab_cache_page
    from fsaops.page import put_page, unlock_page

    inode = sb.new_inode()
    for i in range(2):
        page = grab_cache_page(inode.i_mapping, i, 0)
        assert page is not None
        unlock_page(page)
        put_page(page)
    files = world.file(world.mount("ext2", "nobh"), 300, clean=True)
    pagelist = world.isolate([*inode.i_mapping.pages(), *files.i_mapping.pages()])
    stats = MigrateStats()
    # The first call fails the two buftarg pages (-EIO), uses its 257 new pages
    # and returns 2; the list is not empty, so the next chunk comes.
    assert migrate_pages_to(pagelist, None, 1, stats=stats) == 2
    assert stats.calls == 2
    assert stats.tables["ext2_nobh_aops"].moved == 300


def test_migrate_node_in_chunks_reports_progress(registry: Registry) -> None:
    from fsaops.memory_hotplug import migrate_node

    world = World(registry=registry, node_pages=1024, swap_slots=0)
    inode = world.file(world.mount("ext2", "nobh"), 300, clean=True)
    seen: list[tuple[int, int]] = []
    result = migrate_node(
        world.kernel, 0, 1, chunk=128, progress=lambda done, total: seen.append((done, total))
    )
    assert seen == [(0, 300), (128, 300), (256, 300), (300, 300)]
    assert (result.isolated, result.left, result.rc) == (300, 0, 0)
    assert result.stats.tables["ext2_nobh_aops"].moved == 300
    assert all(p.node.nid == 1 for p in inode.i_mapping.pages())
    assert check_kernel(world.kernel) == []


def test_migrate_node_of_a_node_with_nothing_on_its_lru_is_nothing_done(registry: Registry) -> None:
    from fsaops.memory_hotplug import migrate_node

    world = World(registry=registry, node_pages=64, swap_slots=0)
    world.file(world.mount("ext2", "nobh"), 4, clean=True)
    seen: list[tuple[int, int]] = []
    result = migrate_node(
        world.kernel, 1, 0, progress=lambda done, total: seen.append((done, total))
    )
    assert (result.isolated, result.left, result.rc, result.stats.calls) == (0, 0, 0, 0)
    assert seen == [(0, 0)]
    assert check_kernel(world.kernel) == []


def test_migrate_node_cut_short_puts_every_page_it_did_not_reach_back(registry: Registry) -> None:
    """What stops it between chunks (the progress callback here, a Ctrl-C say) loses no page."""
    from fsaops.memory_hotplug import migrate_node

    world = World(registry=registry, node_pages=64, swap_slots=0)
    inode = world.file(world.mount("ext2", "nobh"), 10, clean=True)

    def stop(done: int, total: int) -> None:
        if done == 4:
            raise RuntimeError("stopped")

    with pytest.raises(RuntimeError, match="stopped"):
        migrate_node(world.kernel, 0, 1, chunk=4, progress=stop)
    nodes = [p.node.nid for p in inode.i_mapping.pages()]
    assert sorted(nodes) == [0] * 6 + [1] * 4
    assert check_kernel(world.kernel) == [], "every page is back on its LRU list"


def _moved_to(world: World, mm: Mm, to: int, npages: int) -> Area:
    """An area of ``mm`` whose pages were written on node 0 and moved to node ``to``.

    Read after the move, so that under V4 (which leaves swap ptes) the
    pages are mapped again and the next walk finds them.
    """
    area = world.anon(npages, mm=mm)
    assert do_migrate_pages(mm, {0}, {to}, MPOL_MF_MOVE) == 0
    mm.read(area.vma.vm_start * world.page_size, npages * world.page_size)
    return area


def _on_one_and_zero(registry: Registry, semantics: str) -> tuple[World, Mm, Area, Area]:
    """Three nodes, and a process with two pages on node 1 and two on node 0."""
    world = World(registry=registry, nodes=3, node_pages=64, swap_slots=64, semantics=semantics)
    mm = world.process("mover")
    on_one = _moved_to(world, mm, 1, 2)
    return world, mm, on_one, world.anon(2, mm=mm)


def _nodes(world: World, area: Area) -> list[int]:
    pages = [world.page_of(area, i) for i in range(area.vma.vm_end - area.vma.vm_start)]
    return [p.node.nid for p in pages if p is not None]


@pytest.mark.parametrize("semantics", SEMANTICS)
def test_do_migrate_pages_first_moves_a_node_whose_target_is_not_still_a_source(
    registry: Registry, semantics: str
) -> None:
    """From {1, 2} to {0, 1}: 1 goes to 0 before 2 goes to 1, or node 2's pages would reach 0."""
    world = World(registry=registry, nodes=3, node_pages=64, swap_slots=64, semantics=semantics)
    mm = world.process("mover")
    on_two = _moved_to(world, mm, 2, 2)
    on_one = _moved_to(world, mm, 1, 2)
    assert (_nodes(world, on_two), _nodes(world, on_one)) == ([2, 2], [1, 1])
    assert do_migrate_pages(mm, {1, 2}, {0, 1}, MPOL_MF_MOVE) == 0
    assert (_nodes(world, on_two), _nodes(world, on_one)) == ([1, 1], [0, 0])
    world.kernel.run_until_idle()
    assert check_kernel(world.kernel) == []


@pytest.mark.parametrize("semantics", SEMANTICS)
def test_do_migrate_pages_stops_at_the_first_error(registry: Registry, semantics: str) -> None:
    """From {0, 1} to {1, 2}, node 2 full: 1 to 2 is -ENOMEM, at once; 0 to 1 is not done."""
    world, mm, on_one, on_zero = _on_one_and_zero(registry, semantics)
    node = world.kernel.nodes[2]
    filler = [node.alloc_page() for _ in range(node.nr_free)]
    assert node.nr_free == 0
    assert do_migrate_pages(mm, {0, 1}, {1, 2}, MPOL_MF_MOVE) == -ENOMEM
    assert (_nodes(world, on_zero), _nodes(world, on_one)) == ([0, 0], [1, 1])
    for frame in filler:
        put_page(frame)  # type: ignore[arg-type]
    world.kernel.run_until_idle()
    assert check_kernel(world.kernel) == []


@pytest.mark.parametrize("semantics", SEMANTICS)
def test_do_migrate_pages_returns_how_many_pages_stayed(registry: Registry, semantics: str) -> None:
    """One page another task holds stays where it is: the call returns 1."""
    world = World(registry=registry, nodes=2, node_pages=64, swap_slots=64, semantics=semantics)
    area = world.anon(3)
    held = world.page_of(area, 1)
    assert held is not None
    get_page(held)
    assert do_migrate_pages(area.mm, {0}, {1}, MPOL_MF_MOVE) == 1
    assert sorted(_nodes(world, area)) == [0, 1, 1]
    assert held.node.nid == 0
    put_page(held)
    world.kernel.run_until_idle()
    assert check_kernel(world.kernel) == []


@pytest.mark.parametrize("semantics", SEMANTICS)
def test_do_migrate_pages_adds_up_the_pages_each_pair_left(
    registry: Registry, semantics: str
) -> None:
    """From {0, 1} to {1, 2}: 1 to 2 leaves the held page, 0 to 1 leaves none; the call says 1."""
    world, mm, on_one, on_zero = _on_one_and_zero(registry, semantics)
    held = world.page_of(on_one, 0)
    assert held is not None
    get_page(held)
    assert do_migrate_pages(mm, {0, 1}, {1, 2}, MPOL_MF_MOVE) == 1
    assert (_nodes(world, on_zero), sorted(_nodes(world, on_one))) == ([1, 1], [1, 2])
    put_page(held)
    world.kernel.run_until_idle()
    assert check_kernel(world.kernel) == []


@pytest.mark.parametrize("semantics", SEMANTICS)
@pytest.mark.parametrize(("source", "to"), [({0}, {0}), (set(), {1}), ({1}, {1})])
def test_do_migrate_pages_with_no_node_to_move_moves_nothing(
    registry: Registry, semantics: str, source: set[int], to: set[int]
) -> None:
    world = World(registry=registry, nodes=2, node_pages=64, swap_slots=64, semantics=semantics)
    area = world.anon(2)
    pages = [world.page_of(area, i) for i in range(2)]
    assert do_migrate_pages(area.mm, source, to, MPOL_MF_MOVE) == 0
    assert [world.page_of(area, i) for i in range(2)] == pages, "the same frames, not moved"
    assert world.kernel.vmstat.pgmigrate_success == 0
    assert check_kernel(world.kernel) == []


def test_migrate_node_keeps_the_first_error_and_else_the_last_call_s_count(
    registry: Registry,
) -> None:
    from fsaops.memory_hotplug import migrate_node

    world = World(registry=registry, node_pages=64, swap_slots=0)
    inode = world.file(world.mount("ext2", "nobh"), 8, clean=True)
    node = world.kernel.nodes[1]
    filler = [node.alloc_page() for _ in range(node.nr_free)]

    def room(done: int, total: int) -> None:
        if done == 4:  # after the first chunk, which found no new page
            for frame in filler:
                put_page(frame)  # type: ignore[arg-type]

    result = migrate_node(world.kernel, 0, 1, chunk=4, progress=room)
    assert (result.isolated, result.left, result.rc) == (8, 4, -ENOMEM)
    assert sorted(p.node.nid for p in inode.i_mapping.pages()) == [0] * 4 + [1] * 4
    held = inode.i_mapping.page_tree[0]
    assert held is not None
    get_page(held)
    result = migrate_node(world.kernel, held.node.nid, 1 - held.node.nid)
    assert (result.left, result.rc) == (1, 1), "one call: its count of pages left"
    put_page(held)
    assert check_kernel(world.kernel) == []
