"""The callers: migrate_pages_to, migrate_to_node, do_migrate_pages, sys_migrate_pages (§8)."""

from __future__ import annotations

from errno import EINVAL, ENODEV, ENOSYS, EPERM, ESRCH

from fsaops.debug import check_kernel
from fsaops.lists import PageList
from fsaops.mempolicy import (
    MIGRATE_CHUNK_SIZE,
    MPOL_MF_MOVE,
    check_range,
    do_migrate_pages,
    migrate_pages_to,
    node_remap,
    sys_migrate_pages,
)
from fsaops.migrate import MigrateStats
from fsaops.plugins import Registry
from fsaops.world import World


def test_new_pages_come_in_chunks_of_257(registry: Registry) -> None:
    world = World(registry=registry, node_pages=1024, swap_slots=0)
    inode = world.file(world.mount("ext2", "nobh"), 300, clean=True)
    pagelist = world.isolate(inode.i_mapping.pages())
    stats = MigrateStats()
    left = migrate_pages_to(pagelist, None, 1, stats=stats)
    assert left == 0
    assert MIGRATE_CHUNK_SIZE == 256
    assert stats.calls == 2, "257 pages, then the other 43"
    assert world.kernel.nodes[1].nr_free == 1024 - 300
    assert check_kernel(world.kernel) == []


def test_allocation_failure_is_enomem(registry: Registry) -> None:
    world = World(registry=registry, node_pages=16, swap_slots=0)
    inode = world.file(world.mount("ext2", "nobh"), 12, clean=True)
    for _ in range(10):
        assert world.kernel.nodes[1].alloc_page() is not None
    pagelist = world.isolate(inode.i_mapping.pages())
    assert migrate_pages_to(pagelist, None, 1) == -12
    assert len(pagelist) == 12, "nothing was migrated; the pages stay listed"


def test_migrate_to_node_moves_a_process(world: World) -> None:
    area = world.anon(4)
    mm, vma = area.mm, area.vma
    data = mm.read(vma.vm_start * 4096, 4 * 4096)
    assert do_migrate_pages(mm, {0}, {1}, MPOL_MF_MOVE) == 0
    assert all(pte.page is not None and pte.page.node.nid == 1 for pte in mm.ptes.values())
    assert mm.read(vma.vm_start * 4096, 4 * 4096) == data
    assert do_migrate_pages(mm, {1}, {0}, MPOL_MF_MOVE) == 0
    assert all(pte.page is not None and pte.page.node.nid == 0 for pte in mm.ptes.values())
    assert check_kernel(world.kernel) == []


def test_moving_needs_a_swap_device(registry: Registry) -> None:
    world = World(registry=registry, swap_slots=0, node_pages=256)
    area = world.anon(2)
    mm, _ = area.mm, area.vma
    assert check_range(mm, {0}, MPOL_MF_MOVE, PageList()) == -ENODEV
    assert do_migrate_pages(mm, {0}, {1}, MPOL_MF_MOVE) == 0
    assert all(pte.page is not None and pte.page.node.nid == 0 for pte in mm.ptes.values())


def test_node_remap_keeps_the_rank() -> None:
    assert node_remap(2, {0, 2}, {1, 3}) == 3
    assert node_remap(0, {0, 2}, {1, 3}) == 1
    assert node_remap(0, {0, 1, 2}, {5}) == 5
    assert node_remap(4, {0, 2}, {1, 3}) == 4


def test_sys_migrate_pages_checks(registry: Registry) -> None:
    world = World(registry=registry, nodes=3, node_pages=256, swap_slots=64)
    area = world.anon(2)
    mm, _ = area.mm, area.vma
    mm.uid = 1000
    k = world.kernel
    assert sys_migrate_pages(k, 999, {0}, {1}) == -ESRCH
    assert sys_migrate_pages(k, mm.pid, {0}, {7}) == -EINVAL
    assert sys_migrate_pages(k, mm.pid, {0}, {1}, uid=1001, capable=False) == -EPERM
    assert sys_migrate_pages(k, mm.pid, {0}, {2}, uid=1000, capable=False) == 0
    assert all(pte.page is not None and pte.page.node.nid == 2 for pte in mm.ptes.values())
    off = World(registry=registry, migration=False, node_pages=256, swap_slots=64)
    area_mm2 = off.anon(1)
    mm2, _ = area_mm2.mm, area_mm2.vma
    assert sys_migrate_pages(off.kernel, mm2.pid, {0}, {1}) == -ENOSYS


def test_chunked_runs_count_every_page_once(registry: Registry) -> None:
    from fsaops.sched import hold

    world = World(registry=registry, node_pages=1024, swap_slots=0)
    inode = world.file(world.mount("ext2", "nobh"), 600, clean=True)
    pages = inode.i_mapping.pages()
    hold(world.kernel.new_task("pin"), world.kernel.sched, "page_ref", pages[-1], None)
    pagelist = world.isolate(pages)
    stats = MigrateStats()
    left = migrate_pages_to(pagelist, None, 1, stats=stats)
    assert left == 1
    assert stats.calls == 3
    table = stats.tables["ext2_nobh_aops"]
    assert (table.moved, table.failed, table.not_migrated) == (599, 0, 1)
    assert table.pages == 600
    assert table.errors == {"EAGAIN": 1}
    assert list(stats.pending) == [pages[-1].pfn]


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
