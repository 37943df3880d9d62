"""A node makes its frames' pages as the allocator first reaches them, and nothing else changes.

A frame never handed out is free and untouched, so its :class:`~fsaops.page.Page`
is made only when the allocator gets to it, in frame order, after the free
pages made so far: the order frames are handed out in, every count and every
check is the one of a node whose frames were all made at once.
``Node.pages`` (``mem_map``) and ``Node.free_list`` make the rest when asked for.
"""

from __future__ import annotations

from typing import Any

import hypothesis.strategies as st
from hypothesis import given, settings

from fsaops import memory
from fsaops.debug import check_kernel
from fsaops.kernel import Kernel
from fsaops.page import Page, put_page
from fsaops.plugins import Registry
from fsaops.world import World

NODE_PAGES = 3 * memory.MAKE_FRAMES + 5


def _kernel(registry: Registry, *, all_made: bool) -> Kernel:
    world = World(registry=registry, nodes=2, node_pages=NODE_PAGES)
    if all_made:
        for node in world.kernel.nodes:
            assert len(node.pages) == NODE_PAGES  # every frame made now
    return world.kernel


def test_a_new_node_makes_no_frame_until_one_is_handed_out(registry: Registry) -> None:
    world = World(registry=registry, nodes=2, node_pages=NODE_PAGES)
    node = world.kernel.nodes[1]
    assert node.frames_made == [] and node.unmade == NODE_PAGES == node.nr_free
    page = node.alloc_page()
    assert page is not None and page.pfn == node.start_pfn
    assert len(node.frames_made) == memory.MAKE_FRAMES
    assert node.nr_free == NODE_PAGES - 1
    put_page(page)
    assert check_kernel(world.kernel) == []
    assert node.free_area.lru_next is page  # the frame freed is the first handed out again


def test_mem_map_and_the_free_list_make_every_frame_in_order(registry: Registry) -> None:
    node = World(registry=registry, nodes=2, node_pages=NODE_PAGES).kernel.nodes[0]
    taken = [node.alloc_page() for _ in range(3)]
    assert all(p is not None for p in taken)
    pages = node.pages
    assert len(pages) == NODE_PAGES and node.unmade == 0
    assert [p.pfn for p in pages] == list(range(node.start_pfn, node.start_pfn + NODE_PAGES))
    free = [p.pfn for p in node.free_list]
    assert free == [p.pfn for p in pages[3:]]
    assert node.free_pages() == pages[3:]


def test_a_frame_looked_up_by_number_is_made_with_those_before_it(registry: Registry) -> None:
    kernel = World(registry=registry, nodes=2, node_pages=NODE_PAGES).kernel
    node = kernel.nodes[1]
    pfn = node.start_pfn + 2 * memory.MAKE_FRAMES + 3
    page = kernel.pfn_to_page(pfn)
    assert page.pfn == pfn and page.count == 0 and page.node is node
    assert len(node.frames_made) == pfn - node.start_pfn + 1
    assert kernel.pfn_to_page(pfn) is page
    # It is handed out where it would have been: after every frame before it.
    handed = [node.alloc_page() for _ in range(pfn - node.start_pfn + 2)]
    assert [p.pfn for p in handed if p is not None] == list(range(node.start_pfn, pfn + 2))
    for p in handed:
        assert p is not None
        put_page(p)
    assert check_kernel(kernel) == []


def test_an_index_whose_frame_is_not_made_is_kept_as_it_is(registry: Registry) -> None:
    kernel = World(registry=registry, nodes=2, node_pages=NODE_PAGES).kernel
    value = NODE_PAGES - 1
    assert kernel.intern(value) == value
    made = kernel.nodes[0].pages[value].pfn
    assert kernel.intern(value) is made


def test_a_large_node_makes_only_the_frames_a_run_reaches(registry: Registry) -> None:
    world = World(registry=registry, nodes=2, node_pages=200_000)
    record = world.create_file(world.mount("ext2", "nobh"))
    world.write_file(record, 50)
    for node in world.kernel.nodes:
        assert len(node.frames_made) <= 2 * memory.MAKE_FRAMES, node
    assert check_kernel(world.kernel) == []


# -- the same machine either way ---------------------------------------------------------

Op = tuple[str, int]

ops = st.lists(
    st.one_of(
        st.tuples(st.just("alloc"), st.integers(0, 1)),
        st.tuples(st.just("batch"), st.integers(1, 2 * memory.MAKE_FRAMES + 7)),
        st.tuples(st.just("free"), st.integers(0, 10_000)),
        st.tuples(st.just("lookup"), st.integers(0, 2 * NODE_PAGES - 1)),
        st.tuples(st.just("mem_map"), st.integers(0, 1)),
    ),
    max_size=40,
)


def _run(kernel: Kernel, script: list[Op]) -> list[Any]:
    """What each step gives, and the machine's state after each."""
    held: list[Page] = []
    seen: list[Any] = []
    for op, arg in script:
        if op == "alloc":
            page = kernel.nodes[arg].alloc_page()
            if page is not None:
                held.append(page)
            seen.append(None if page is None else page.pfn)
        elif op == "batch":
            pages = kernel.nodes[0].alloc_pages(arg)
            held.extend(pages)
            seen.append([p.pfn for p in pages])
        elif op == "free" and held:
            page = held.pop(arg % len(held))
            put_page(page)
            seen.append(page.pfn)
        elif op == "lookup":
            page = kernel.pfn_to_page(arg)
            seen.append((page.pfn, page.count))
        elif op == "mem_map":
            seen.append(len(kernel.nodes[arg].pages))
        seen.append([node.nr_free for node in kernel.nodes])
    for page in held:
        put_page(page)
    seen.append(check_kernel(kernel))
    seen.append([[p.pfn for p in node.free_list] for node in kernel.nodes])
    return seen


@settings(max_examples=60, deadline=None)
@given(script=ops)
def test_frames_made_as_reached_give_the_machine_of_frames_made_at_once(
    registry: Registry, script: list[Op]
) -> None:
    lazy = _run(_kernel(registry, all_made=False), script)
    eager = _run(_kernel(registry, all_made=True), script)
    assert lazy == eager
