"""The helpers the V4 series exports to filesystems, called directly (KERNEL-SPEC §4-§7).

Where a helper behaves differently in a later release (:mod:`fsaops.semantics`),
the test runs under each release and asserts the difference.
"""

from __future__ import annotations

from errno import EAGAIN, EIO, EPERM

import pytest

from fsaops import (
    buffer_migrate_page,
    fail_migrate_page,
    migrate_page,
    migrate_page_copy,
    migrate_page_remove_references,
    swap_page,
)
from fsaops.buffer import BH, bh_offset, buffers
from fsaops.errors import KernelBug
from fsaops.fs import Inode
from fsaops.lru import isolate_lru_page
from fsaops.page import PG, Page, lock_page
from fsaops.plugins import Registry
from fsaops.rmap import SWAP_SUCCESS, remove_from_swap, try_to_unmap
from fsaops.sched import hold
from fsaops.semantics import SEMANTICS
from fsaops.world import World
from fsaops.writeback import write_one_page


def isolated_pair(world: World, page: Page) -> Page:
    """Isolate ``page``, lock it, and return a locked new page on node 1."""
    assert isolate_lru_page(page) == 1
    newpage = world.kernel.nodes[1].alloc_page()
    assert newpage is not None
    lock_page(page)
    lock_page(newpage)
    return newpage


def one_page(world: World, fs: str = "ext2", mode: str | None = None, **kw: bool) -> Inode:
    return world.file(world.mount(fs, mode), 1, **kw)


# -- migrate_page_remove_references ------------------------------------------


def test_remove_references_moves_the_slot_and_one_reference(world: World) -> None:
    inode = one_page(world, "ext2", "nobh", clean=True)
    (page,) = inode.i_mapping.pages()
    newpage = isolated_pair(world, page)
    assert page.count == 2
    assert migrate_page_remove_references(newpage, page, 2) == 0
    assert inode.i_mapping.page_tree[0] is newpage
    assert page.count == 1, "the cache reference went"
    assert newpage.count == 2, "allocation plus the cache's"
    assert (newpage.mapping, newpage.index) == (inode.i_mapping, 0)


@pytest.mark.parametrize("semantics", SEMANTICS)
@pytest.mark.parametrize("extra", [1, -1])
def test_remove_references_refuses_a_wrong_count_and_changes_nothing(
    registry: Registry, extra: int, semantics: str
) -> None:
    world = World(registry=registry, node_pages=256, swap_slots=64, semantics=semantics)
    inode = one_page(world, "ext2", "nobh", clean=True)
    (page,) = inode.i_mapping.pages()
    newpage = isolated_pair(world, page)
    # V3 to 2.6.16-rc6 return 1; the February 2006 patch (in 2.6.16) returns -EAGAIN.
    want = 1 if semantics == "v4" else -EAGAIN
    assert migrate_page_remove_references(newpage, page, 2 + extra) == want
    assert inode.i_mapping.page_tree[0] is page
    assert page.count == 2
    assert newpage.count == 1
    assert newpage.mapping is None


def test_remove_references_unmaps_file_ptes(world: World) -> None:
    inode = one_page(world, "ext2", "nobh", clean=True)
    mm = world.kernel.new_mm()
    vma = mm.mmap_file(inode, 0, 1)
    mm.read(vma.vm_start * 4096, 1)
    (page,) = inode.i_mapping.pages()
    newpage = isolated_pair(world, page)
    assert page.count == 3
    assert migrate_page_remove_references(newpage, page, 2) == 0
    assert page.mapcount == 0
    assert vma.vm_start not in mm.ptes


def test_remove_references_leaves_swap_ptes_and_carries_the_swap_entry(world: World) -> None:
    from fsaops.swap import add_to_swap

    area = world.anon(1)
    mm, vma = area.mm, area.vma
    page = mm.ptes[vma.vm_start].page
    assert page is not None
    newpage = isolated_pair(world, page)
    assert add_to_swap(page) == 1
    entry = page.private
    assert migrate_page_remove_references(newpage, page, 2) == 0
    pte = mm.ptes[vma.vm_start]
    assert pte.page is None
    assert pte.swp == entry
    assert newpage.flags & PG.swapcache
    assert newpage.private == entry
    assert world.kernel.swapper_space is not None
    assert world.kernel.swapper_space.page_tree[entry] is newpage


@pytest.mark.parametrize("semantics", SEMANTICS)
def test_remove_references_refuses_a_vm_locked_page(registry: Registry, semantics: str) -> None:
    from fsaops.swap import add_to_swap

    world = World(registry=registry, node_pages=256, swap_slots=64, semantics=semantics)
    area = world.anon(1, locked=True)
    mm, vma = area.mm, area.vma
    page = mm.ptes[vma.vm_start].page
    assert page is not None
    newpage = isolated_pair(world, page)
    assert add_to_swap(page) == 1
    want = 1 if semantics == "v4" else -EPERM
    assert migrate_page_remove_references(newpage, page, 2) == want
    assert mm.ptes[vma.vm_start].page is page
    # migrate_page turns 1 into -EAGAIN; 2.6.16 passes -EPERM through.
    assert migrate_page(newpage, page) == (-EAGAIN if semantics == "v4" else -EPERM)


@pytest.mark.parametrize("semantics", SEMANTICS)
def test_buffer_migrate_page_of_a_vm_locked_file_page(registry: Registry, semantics: str) -> None:
    world = World(registry=registry, node_pages=256, swap_slots=64, semantics=semantics)
    inode = world.file(world.mount("ext2", block_size=1024), 1, clean=True)
    mm = world.process("mlocker")
    vma = mm.mmap_file(inode, 0, 1, locked=True)
    mm.read(vma.vm_start * 4096, 1)
    (page,) = inode.i_mapping.pages()
    ring = list(buffers(page.private))
    newpage = isolated_pair(world, page)
    assert buffer_migrate_page(newpage, page) == (-EAGAIN if semantics == "v4" else -EPERM)
    assert mm.ptes[vma.vm_start].page is page
    assert all(bh.b_page is page for bh in ring)


@pytest.mark.parametrize("semantics", SEMANTICS)
def test_migrate_page_of_an_anonymous_page_leaves_the_swap_cache_from_2_6_16(
    registry: Registry, semantics: str
) -> None:
    from fsaops.swap import add_to_swap

    world = World(registry=registry, node_pages=256, swap_slots=64, semantics=semantics)
    area = world.anon(1)
    mm, vma = area.mm, area.vma
    page = mm.ptes[vma.vm_start].page
    assert page is not None
    newpage = isolated_pair(world, page)
    assert add_to_swap(page) == 1
    entry = page.private
    swap = world.kernel.swap_info()
    assert migrate_page(newpage, page) == 0
    pte = mm.ptes[vma.vm_start]
    if semantics == "v4":
        # V4 calls remove_from_swap() from migrate_pages, and it does nothing here.
        assert pte.page is None and pte.swp == entry
        assert newpage.flags & PG.swapcache and newpage.private == entry
        assert swap.swap_map[entry] == 2
    else:
        # remove_from_swap(newpage) after the copy: a real pte, out of the swap cache.
        assert pte.page is newpage and pte.swp == 0
        assert newpage.mapcount == 1
        assert not newpage.flags & PG.swapcache and newpage.private == 0
        assert swap.swap_map[entry] == 0
        assert newpage.mapping is area.vma.anon_vma


@pytest.mark.parametrize("semantics", SEMANTICS)
def test_remove_from_swap_is_the_release_s(registry: Registry, semantics: str) -> None:
    from fsaops.swap import add_to_swap

    world = World(registry=registry, node_pages=256, swap_slots=64, semantics=semantics)
    area = world.anon(1)
    mm, vma = area.mm, area.vma
    page = mm.ptes[vma.vm_start].page
    assert page is not None
    isolated_pair(world, page)
    assert add_to_swap(page) == 1
    assert try_to_unmap(page, True) == SWAP_SUCCESS
    assert mm.ptes[vma.vm_start].page is None
    remove_from_swap(page)
    pte = mm.ptes[vma.vm_start]
    if semantics == "v4":
        assert pte.page is None, "page_lock_anon_vma() finds no anon_vma for an unmapped page"
        assert page.flags & PG.swapcache
    else:
        assert pte.page is page
        assert not page.flags & PG.swapcache


# -- migrate_page_copy ----------------------------------------------------------


def test_migrate_page_copy_copies_data_and_flags_and_clears_the_old_page(world: World) -> None:
    inode = one_page(world, "ext2", "nobh")
    (page,) = inode.i_mapping.pages()
    newpage = isolated_pair(world, page)
    page.flags |= PG.referenced | PG.checked | PG.active | PG.error
    data = bytes(page.data)
    assert migrate_page_remove_references(newpage, page, 2) == 0
    migrate_page_copy(newpage, page)
    assert bytes(newpage.data) == data
    copied = PG.referenced | PG.checked | PG.active | PG.error | PG.uptodate
    assert newpage.flags & copied == copied
    assert newpage.flags & PG.dirty, "dirty moves through set_page_dirty"
    assert not page.flags & (PG.dirty | PG.active | PG.swapcache | PG.private)
    assert page.mapping is None
    assert page.private == 0


def test_migrate_page_copy_ends_writeback_on_the_new_page(world: World) -> None:
    inode = one_page(world, "ext2", "nobh", clean=True)
    (page,) = inode.i_mapping.pages()
    newpage = isolated_pair(world, page)
    newpage.flags |= PG.writeback
    assert migrate_page_remove_references(newpage, page, 2) == 0
    migrate_page_copy(newpage, page)
    assert not newpage.flags & PG.writeback


# -- migrate_page, buffer_migrate_page, fail_migrate_page -----------------------


def test_migrate_page_refuses_a_page_under_writeback(world: World) -> None:
    inode = one_page(world, "ext2", "nobh")
    (page,) = inode.i_mapping.pages()
    newpage = isolated_pair(world, page)
    page.flags |= PG.writeback
    with pytest.raises(KernelBug, match="writeback"):
        migrate_page(newpage, page)
    page.flags &= ~PG.writeback


def test_migrate_page_returns_eagain_on_an_extra_reference(world: World) -> None:
    inode = one_page(world, "ext2", "nobh")
    (page,) = inode.i_mapping.pages()
    hold(world.kernel.new_task("t"), world.kernel.sched, "page_ref", page, None)
    newpage = isolated_pair(world, page)
    assert migrate_page(newpage, page) == -EAGAIN
    assert inode.i_mapping.page_tree[0] is page


def test_buffer_migrate_page_moves_buffers(world: World) -> None:
    inode = world.file(world.mount("ext2", block_size=1024), 1)
    (page,) = inode.i_mapping.pages()
    ring = list(buffers(page.private))
    newpage = isolated_pair(world, page)
    assert page.count == 3
    assert buffer_migrate_page(newpage, page) == 0
    assert newpage.private is ring[0]
    assert newpage.flags & PG.private
    assert not page.flags & PG.private
    assert page.count == 1
    assert newpage.count == 3
    for i, bh in enumerate(ring):
        assert bh.b_page is newpage
        assert bh_offset(bh) == i * 1024
        assert bh.b_count == 0
        assert not bh.b_state & BH.lock


def test_buffer_migrate_page_without_buffers_is_migrate_page(world: World) -> None:
    inode = one_page(world, "ext2", "nobh")
    (page,) = inode.i_mapping.pages()
    assert not page.flags & PG.private
    newpage = isolated_pair(world, page)
    assert buffer_migrate_page(newpage, page) == 0
    assert inode.i_mapping.page_tree[0] is newpage


def test_buffer_migrate_page_without_mapping_is_eagain(world: World) -> None:
    inode = one_page(world)
    (page,) = inode.i_mapping.pages()
    newpage = isolated_pair(world, page)
    mapping, page.mapping = page.mapping, None
    try:
        assert buffer_migrate_page(newpage, page) == -EAGAIN
    finally:
        page.mapping = mapping


def test_buffer_migrate_page_sleeps_on_a_locked_buffer(world: World) -> None:
    inode = world.file(world.mount("ext2", block_size=1024), 1)
    (page,) = inode.i_mapping.pages()
    bh = list(buffers(page.private))[2]
    hold(world.kernel.new_task("io"), world.kernel.sched, "buffer_lock", bh, 50)
    newpage = isolated_pair(world, page)
    start = world.kernel.sched.now
    assert buffer_migrate_page(newpage, page) == 0
    assert world.kernel.sched.now - start >= 50
    assert bh.b_page is newpage


def test_buffer_migrate_page_with_wrong_count_changes_nothing(world: World) -> None:
    inode = one_page(world)
    (page,) = inode.i_mapping.pages()
    hold(world.kernel.new_task("t"), world.kernel.sched, "page_ref", page, None)
    newpage = isolated_pair(world, page)
    ring = list(buffers(page.private))
    assert buffer_migrate_page(newpage, page) == -EAGAIN
    assert all(bh.b_page is page for bh in ring)
    assert page.private is ring[0]


def test_fail_migrate_page_always_fails_and_touches_nothing(world: World) -> None:
    inode = one_page(world)
    (page,) = inode.i_mapping.pages()
    newpage = isolated_pair(world, page)
    flags, count = page.flags, page.count
    assert fail_migrate_page(newpage, page) == -EIO
    assert (page.flags, page.count) == (flags, count)
    assert newpage.count == 1


# -- swap_page ----------------------------------------------------------------------


def test_swap_page_drops_a_clean_page(world: World) -> None:
    inode = one_page(world, clean=True)
    (page,) = inode.i_mapping.pages()
    assert isolate_lru_page(page) == 1
    lock_page(page)
    assert swap_page(page) == 0
    assert not page.flags & PG.locked
    assert inode.i_mapping.nrpages == 0
    assert page.count == 1


def test_swap_page_writes_a_dirty_page_and_asks_again(world: World) -> None:
    inode = one_page(world)
    (page,) = inode.i_mapping.pages()
    assert isolate_lru_page(page) == 1
    lock_page(page)
    assert swap_page(page) == -EAGAIN
    assert page.flags & PG.writeback
    world.kernel.run_until_idle()
    lock_page(page)
    assert swap_page(page) == 0


@pytest.mark.parametrize("semantics", SEMANTICS)
def test_swap_page_sends_an_anonymous_page_to_swap(registry: Registry, semantics: str) -> None:
    from fsaops.swap import add_to_swap

    world = World(registry=registry, node_pages=256, swap_slots=64, semantics=semantics)
    area = world.anon(1)
    mm, vma = area.mm, area.vma
    data = mm.read(vma.vm_start * 4096, 4096)
    page = mm.ptes[vma.vm_start].page
    assert page is not None
    assert isolate_lru_page(page) == 1
    lock_page(page)
    assert add_to_swap(page) == 1
    assert mm.ptes[vma.vm_start].young
    if semantics == "v4":
        # try_to_unmap(page): the young pte refuses once (and is cleared).
        assert swap_page(page) == -EAGAIN
        assert mm.ptes[vma.vm_start].page is page
        assert world.kernel.current.why == "swap_page: still mapped"
        lock_page(page)
    # From 9 Feb 2006 swap_page() unmaps with try_to_unmap(page, 1).
    assert swap_page(page) == -EAGAIN, "unmapped and written; the write is in flight"
    assert mm.ptes[vma.vm_start].page is None
    assert page.flags & PG.writeback
    world.kernel.run_until_idle()
    lock_page(page)
    assert swap_page(page) == 0
    assert mm.ptes[vma.vm_start].page is None
    from fsaops.lists import PageList, list_add
    from fsaops.lru import putback_lru_pages

    pl = PageList()
    list_add(page, pl)
    putback_lru_pages(pl)
    assert mm.read(vma.vm_start * 4096, 4096) == data, "read back from swap"


def test_swap_page_keeps_a_locked_mapping(world: World) -> None:
    area = world.anon(1, locked=True)
    mm, vma = area.mm, area.vma
    page = mm.ptes[vma.vm_start].page
    assert page is not None
    from fsaops.swap import add_to_swap

    assert isolate_lru_page(page) == 1
    lock_page(page)
    assert add_to_swap(page) == 1
    assert swap_page(page) == -EAGAIN
    assert mm.ptes[vma.vm_start].page is page
    assert not page.flags & PG.locked, "swap_page unlocks the page on every return"


def test_write_one_page_reaches_the_disk(world: World) -> None:
    inode = one_page(world)
    (page,) = inode.i_mapping.pages()
    assert write_one_page(page) == 0
    assert not page.flags & (PG.dirty | PG.writeback)


# -- swap_writepage ---------------------------------------------------------------------


def test_swap_writepage_does_not_write_a_page_only_the_swap_cache_uses(world: World) -> None:
    from fsaops.swap import add_to_swap, swap_writepage
    from fsaops.writeback import WritebackControl, clear_page_dirty_for_io

    area = world.anon(1)
    mm, vma = area.mm, area.vma
    page = mm.ptes[vma.vm_start].page
    assert page is not None
    data = bytes(page.data)
    assert isolate_lru_page(page) == 1  # our reference
    lock_page(page)
    assert add_to_swap(page) == 1
    entry = page.private
    swap = world.kernel.swap_info()
    free = swap.nr_swap_pages
    writes = world.kernel.vmstat.pswpout
    mm.munmap(vma)  # nobody maps it any more: only we and the swap cache hold it
    assert page.count == 2 and swap.swap_map[entry] == 1
    assert clear_page_dirty_for_io(page)
    assert swap_writepage(page, WritebackControl()) == 0
    # remove_exclusive_swap_page(): out of the swap cache, dirty again, slot freed.
    assert not page.flags & (PG.swapcache | PG.writeback | PG.locked)
    assert page.flags & PG.dirty
    assert world.kernel.swapper_space is not None
    assert world.kernel.swapper_space.lookup(entry) is None
    assert swap.nr_swap_pages == free + 1
    assert world.kernel.vmstat.pswpout == writes, "nothing was written"
    assert bytes(page.data) == data
    assert page.count == 1


def test_swap_writepage_writes_a_page_a_swap_pte_holds(world: World) -> None:
    from fsaops.swap import add_to_swap, swap_writepage
    from fsaops.writeback import WritebackControl, clear_page_dirty_for_io

    area = world.anon(1)
    mm, vma = area.mm, area.vma
    page = mm.ptes[vma.vm_start].page
    assert page is not None
    assert isolate_lru_page(page) == 1
    lock_page(page)
    assert add_to_swap(page) == 1
    assert try_to_unmap(page, True) == SWAP_SUCCESS
    entry = page.private
    assert world.kernel.swap_info().swap_map[entry] == 2, "the swap pte and the cache"
    writes = world.kernel.vmstat.pswpout
    assert clear_page_dirty_for_io(page)
    assert swap_writepage(page, WritebackControl()) == 0
    assert page.flags & PG.swapcache and page.flags & PG.writeback
    assert world.kernel.vmstat.pswpout == writes + 1
    world.kernel.run_until_idle()
    assert bytes(world.kernel.swap_info().slot(entry)) == bytes(page.data)
