"""What a ``migratepage`` does to the machine beyond its two pages: frames, free counts, lists.

A table may allocate a frame and keep it on a list of its own, take a page
of the file off the LRU and never put it back, change a node's free count,
or write to a frame while it is free.  None of that touches the pages the
engine hands it, so the proofs, which follow those pages, never see it;
the machine's invariants and the page allocator do, as the kernel's
``bad_page`` does.
"""

from __future__ import annotations

from typing import Any

import attrs
import pytest

from fsaops.config import parse_config
from fsaops.debug import check_kernel
from fsaops.errors import BadPage
from fsaops.lists import PageList, list_add, list_del
from fsaops.page import PG, Page
from fsaops.plugins import Registry
from fsaops.scenario import run_scenario
from fsaops.world import World

SCENARIO = (
    '[kernel]\nnode_memory = "4MiB"\n[[mount]]\nfs = "bad"\npages = 24\nfiles = 2\n'
    "[workload]\nseed = 3\ndirty = 0.5\n"
)
AT_REST = "is off the LRU on a list nobody owns, with the machine at rest"


def _with(registry: Registry, act: object) -> Registry:
    """ext2, whose ``migratepage`` does ``act(newpage, page)`` after each page it moves."""
    ext2 = registry.filesystems["ext2"]
    a_ops = ext2.modes["default"]
    migratepage = a_ops.migratepage
    assert migratepage is not None and callable(act)

    def bad_migratepage(newpage: Page, page: Page, /) -> int:
        rc = migratepage(newpage, page)
        if rc == 0:
            act(newpage, page)
        return rc

    table = attrs.evolve(a_ops, name="bad_aops", migratepage=bad_migratepage)
    bad = attrs.evolve(ext2, name="bad", modes={"default": table})
    return attrs.evolve(registry, filesystems={**registry.filesystems, "bad": bad})


def test_a_frame_allocated_and_kept_on_a_list_of_its_own_is_an_invariant_broken(
    registry: Registry,
) -> None:
    kept = PageList("kept")

    def keep_a_frame(newpage: Page, page: Page) -> None:
        if not kept:
            frame = newpage.node.alloc_page()
            assert frame is not None
            list_add(frame, kept)

    report = run_scenario(parse_config(SCENARIO, "s.toml"), _with(registry, keep_a_frame))
    assert report.status == "invariant broken"
    (frame,) = list(kept)
    (line,) = [p for p in report.invariants if AT_REST in p]
    assert line.startswith(f"pfn {frame.pfn} {AT_REST}: a page isolated, or a frame allocated")


def test_the_same_list_named_as_a_migration_s_own_is_no_problem(registry: Registry) -> None:
    world = World(registry=registry, node_pages=64, swap_slots=8)
    kept = PageList("mine")
    frame = world.kernel.nodes[1].alloc_page()
    assert frame is not None
    list_add(frame, kept)
    assert check_kernel(world.kernel, isolated=[kept], quiet=False) == []
    assert any(AT_REST in p for p in check_kernel(world.kernel))
    list_del(frame)
    world.kernel.nodes[1].free_page(_dropped(frame))
    assert check_kernel(world.kernel) == []


def _dropped(page: Page) -> Page:
    page.count = 0
    return page


def test_a_node_s_free_count_that_disagrees_with_its_free_list_is_found(
    registry: Registry,
) -> None:
    world = World(registry=registry, node_pages=64, swap_slots=8)
    node = world.kernel.nodes[1]
    node._nr_free -= 1
    problems = check_kernel(world.kernel)
    assert (
        f"node 1 counts {node.nr_free} free pages but its free list holds {node.nr_free + 1}"
        in (problems)
    )


@pytest.mark.parametrize("flag", [PG.dirty, PG.locked, PG.lru, PG.private, PG.writeback])
def test_a_free_frame_written_to_is_a_bad_page_state_when_it_is_handed_out(
    registry: Registry, flag: int
) -> None:
    world = World(registry=registry, node_pages=64, swap_slots=8)
    node = world.kernel.nodes[1]
    (first, *_rest) = node.free_pages()
    first.flags |= flag
    with pytest.raises(BadPage, match=rf"^Bad page state in prep_new_page: free pfn {first.pfn} "):
        node.alloc_page()


@pytest.mark.parametrize("private", [False, 0.0, [], 7])
def test_private_data_left_on_a_free_frame_is_a_bad_page_state(
    registry: Registry, private: object
) -> None:
    world = World(registry=registry, node_pages=64, swap_slots=8)
    node = world.kernel.nodes[1]
    (first, *_rest) = node.free_pages()
    first.private = private
    with pytest.raises(BadPage, match=r"^Bad page state in prep_new_page: "):
        node.alloc_page()


def test_what_prep_new_page_clears_is_cleared_not_refused(registry: Registry) -> None:
    world = World(registry=registry, node_pages=64, swap_slots=8)
    node = world.kernel.nodes[1]
    (first, *_rest) = node.free_pages()
    first.flags |= PG.error | PG.uptodate | PG.referenced
    page = node.alloc_page()
    assert page is first and page.flags == 0 and page.count == 1


def test_a_migratepage_that_dirties_a_free_frame_fails_the_run(registry: Registry) -> None:
    def dirty_a_free_frame(newpage: Page, page: Page) -> None:
        free = newpage.node.free_pages()
        if free:
            free[0].flags |= PG.dirty

    with pytest.raises(BadPage, match=r"^Bad page state in prep_new_page: free pfn "):
        run_scenario(parse_config(SCENARIO, "s.toml"), _with(registry, dirty_a_free_frame))


def test_a_page_taken_off_the_lru_and_put_on_no_list_is_an_invariant_broken(
    registry: Registry,
) -> None:
    """``list_del`` poisons its links: no list holds it, and the LRU holds no reference."""
    taken: list[Page] = []

    def take_the_new_page_off_the_lru(newpage: Page, page: Page) -> None:
        if taken:
            return
        node = newpage.node
        victim: Any = node.inactive.lru_next
        if victim is node.inactive:
            return
        list_del(victim)
        victim.flags &= ~(PG.lru | PG.active)
        node.nr_inactive -= 1
        taken.append(victim)

    report = run_scenario(
        parse_config(SCENARIO, "s.toml"), _with(registry, take_the_new_page_off_the_lru)
    )
    (victim,) = taken
    assert report.status == "invariant broken"
    assert any(
        line.startswith(f"pfn {victim.pfn} ")
        and "is a page in use on no list, with the machine at rest" in line
        for line in report.invariants
    ), report.invariants
