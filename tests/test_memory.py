"""Node and device memory: reserved lazily, whatever the Python version's ``mmap`` names."""

from __future__ import annotations

import mmap
import platform
import sys
from pathlib import Path

import pytest

from fsaops import memory
from fsaops.errors import BadPage
from fsaops.fault_inject import FaultInjector
from fsaops.lists import LIST_POISON
from fsaops.plugins import Registry
from fsaops.world import World


def _total_memory() -> int:
    for line in Path("/proc/meminfo").read_text(encoding="ascii").splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no MemTotal in /proc/meminfo")


@pytest.mark.skipif(sys.platform != "linux", reason="MAP_NORESERVE is Linux's")
def test_a_node_larger_than_the_machine_is_reserved_lazily() -> None:
    """Python 3.11 and 3.12's ``mmap`` have no ``MAP_NORESERVE``: Linux's value is used.

    Without it the system charged every node and device whole, and one
    larger than memory and swap was refused (``cannot reserve``), though a
    run touches only its pages.
    """
    known = memory._LINUX_MAP_NORESERVE.get(platform.machine())
    assert getattr(mmap, "MAP_NORESERVE", known) == memory._MAP_NORESERVE
    mode = Path("/proc/sys/vm/overcommit_memory").read_text(encoding="ascii").strip()
    if mode == "2" or not memory._MAP_NORESERVE:
        pytest.skip(f"strict overcommit (mode {mode}) or an unknown architecture")
    size = 2 * _total_memory()
    mem = memory.anonymous_memory(size, "a node larger than the machine")
    try:
        assert len(mem) == size
        mem[size // 2] = 7  # a page of it is committed when touched
        assert mem[size // 2] == 7 and mem[0] == 0
    finally:
        mem.close()


def _node_state(node: memory.Node) -> tuple[list[int], int, int]:
    return [p.pfn for p in node.free_pages()], node.nr_free, node.kernel.vmstat.pgalloc


def _two_worlds(registry: Registry, **kernel: object) -> tuple[World, World]:
    worlds = World(registry=registry, node_pages=64), World(registry=registry, node_pages=64)
    for world in worlds:
        for name, value in kernel.items():
            setattr(world.kernel, name, value)
        node = world.kernel.nodes[0]
        # A free list out of order: frames freed back in another order than made.
        taken = [node.alloc_page() for _ in range(20)]
        for page in taken[::3] + taken[1::3] + taken[2::3]:
            assert page is not None
            page.count = 0
            node.free_page(page)
    return worlds


def test_a_batch_of_frames_is_what_as_many_single_allocations_give(registry: Registry) -> None:
    one, batch = _two_worlds(registry)
    node1, node2 = one.kernel.nodes[0], batch.kernel.nodes[0]
    singles = [node1.alloc_page() for _ in range(30)]
    pages = node2.alloc_pages(30)
    assert [p.pfn for p in pages] == [p.pfn for p in singles if p is not None]
    assert [(p.count, p.flags, p.lru_next is LIST_POISON) for p in pages] == [(1, 0, True)] * 30
    assert _node_state(node2) == _node_state(node1)
    rest = node2.alloc_pages(100)  # more than is left: what is left
    assert len(rest) == 34 and node2.nr_free == 0 and node2.free_pages() == []
    assert node2.alloc_pages(1) == []


def test_a_batch_takes_an_injected_failure_where_single_allocations_do(
    registry: Registry,
) -> None:
    faults = [FaultInjector(alloc_fail=0.1, seed=1, armed=True) for _ in range(2)]
    one, batch = _two_worlds(registry)
    one.kernel.faults, batch.kernel.faults = faults
    singles = []
    while (page := one.kernel.nodes[0].alloc_page()) is not None:
        singles.append(page.pfn)
    pages = batch.kernel.nodes[0].alloc_pages(64)
    assert 0 < len(pages) < 64
    assert [p.pfn for p in pages] == singles


def test_a_batch_under_debug_vm_hands_out_poisoned_frames(registry: Registry) -> None:
    (world, _) = _two_worlds(registry, debug_vm=True)
    node = world.kernel.nodes[0]
    pages = node.alloc_pages(3)
    assert all(bytes(p.data) == bytes([memory.POISON_BYTE]) * world.page_size for p in pages)


def test_a_frame_left_in_a_bad_state_stops_a_batch_as_it_stops_one_allocation(
    registry: Registry,
) -> None:
    (world, _) = _two_worlds(registry)
    node = world.kernel.nodes[0]
    frame = node.free_pages()[2]
    frame.mapcount = 1  # someone wrote to a free frame
    bad = frame.pfn
    with pytest.raises(BadPage, match=f"Bad page state in prep_new_page: free pfn {bad} "):
        node.alloc_pages(5)
