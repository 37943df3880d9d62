"""The invariant checker notices what breaks (KERNEL-SPEC §9)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

import pytest

from fsaops.buffer import buffers
from fsaops.debug import (
    InvariantError,
    broken_fields,
    broken_pages,
    check_kernel,
    check_pages,
    raise_if,
)
from fsaops.lists import PageList, list_del
from fsaops.mapping import AddressSpace
from fsaops.migrate import migrate_page_remove_references
from fsaops.page import PG, Page, get_page, lock_page, put_page
from fsaops.sched import hold
from fsaops.world import World


def test_a_healthy_machine_has_no_problems(world: World) -> None:
    world.file(world.mount("ext2"), 3)
    world.file(world.mount("ext3", "journal"), 2)
    world.anon(2)
    assert check_kernel(world.kernel, quiet=False) == []


def test_a_leaked_reference_is_found(world: World) -> None:
    inode = world.file(world.mount("ext2"), 1)
    (page,) = inode.i_mapping.pages()
    get_page(page)
    problems = check_kernel(world.kernel)
    name = f"{inode.i_mapping.name}/page{page.index}, {inode.i_mapping.a_ops.name}"
    assert any(f"pfn {page.pfn} ({name}) has page_count" in p for p in problems), problems
    put_page(page)
    assert check_kernel(world.kernel) == []


def test_a_buffer_pointing_at_another_page_is_found(world: World) -> None:
    inode = world.file(world.mount("ext2", block_size=1024), 1)
    (page,) = inode.i_mapping.pages()
    bh = list(buffers(page.private))[2]
    other = world.kernel.nodes[1].pages[5]
    bh.b_page = other
    problems = check_kernel(world.kernel)
    name = f"{inode.i_mapping.name}/page{page.index}, {inode.i_mapping.a_ops.name}"
    assert (
        f"buffer head 2 of pfn {page.pfn} ({name}) points at pfn {other.pfn}, not its page"
        in problems
    )


def test_a_page_tree_slot_with_the_wrong_page_is_found(world: World) -> None:
    inode = world.file(world.mount("ext2"), 2)
    a, b = inode.i_mapping.pages()
    tree = inode.i_mapping.page_tree
    tree[0], tree[1] = b, a
    problems = check_kernel(world.kernel)
    assert any("whose index is" in p for p in problems)


def test_a_locked_page_nobody_holds_is_found(world: World) -> None:
    inode = world.file(world.mount("ext2"), 1)
    (page,) = inode.i_mapping.pages()
    lock_page(page)
    name = f"{inode.i_mapping.name}/page{page.index}, {inode.i_mapping.a_ops.name}"
    said = f"pfn {page.pfn} ({name}) is locked, but no task holds its lock"
    assert said in check_kernel(world.kernel)
    with pytest.raises(InvariantError, match="no task holds its lock"):
        raise_if(check_kernel(world.kernel))


def test_an_lru_flag_without_a_list_is_found(world: World) -> None:
    inode = world.file(world.mount("ext2"), 1)
    (page,) = inode.i_mapping.pages()
    page.flags &= ~PG.lru
    problems = check_kernel(world.kernel)
    assert any("on an LRU list without PG_lru" in p for p in problems)


def _off_its_lru_list(page: Page) -> None:
    list_del(page)  # PG_lru stays set
    page.node.nr_inactive -= 1


def _out_of_its_page_tree(page: Page) -> None:
    # Every reference still accounted for: another task holds the one the
    # slot had.  Only the page pointing at a mapping whose tree lacks it is wrong.
    kernel = page.node.kernel
    hold(kernel.new_task("holder"), kernel.sched, "page_ref", page, None)
    mapping = page.mapping
    assert isinstance(mapping, AddressSpace)
    mapping.page_tree[page.index] = None
    mapping.nrpages -= 1
    page.count -= 1


PLAIN_PAGE_BROKEN: Final = {
    "an extra reference": (lambda page: setattr(page, "count", page.count + 1), "has page_count"),
    "a mapcount no pte makes": (lambda page: setattr(page, "mapcount", 1), "has mapcount 1"),
    "under writeback": (
        lambda page: setattr(page, "flags", page.flags | PG.writeback),
        "writeback",
    ),
    "PG_reclaim": (lambda page: setattr(page, "flags", page.flags | PG.reclaim), "PG_reclaim"),
    "locked": (lambda page: setattr(page, "flags", page.flags | PG.locked), "is locked"),
    "private data without PG_private": (lambda page: setattr(page, "private", 7), "private 7"),
    "PG_lru off its list": (_off_its_lru_list, "not on an LRU list"),
    "out of its page tree": (_out_of_its_page_tree, "is not in its page tree"),
}


@pytest.mark.parametrize(
    ("broken", "said"), PLAIN_PAGE_BROKEN.values(), ids=PLAIN_PAGE_BROKEN.keys()
)
def test_each_break_of_a_plain_page_in_use_is_found(
    world: World, broken: Callable[[Page], None], said: str
) -> None:
    # The usual page in use (on an LRU list, every reference accounted for,
    # in its page tree) passes the checker in one test; with any one thing
    # broken it must go through every check, and be named.
    inode = world.file(world.mount("ext2", "nobh"), 3, clean=True)
    page = inode.i_mapping.pages()[1]
    assert check_kernel(world.kernel) == []
    broken(page)
    problems = check_kernel(world.kernel)
    assert any(f"pfn {page.pfn} " in p and said in p for p in problems), problems


def test_a_swap_count_out_of_step_is_found(world: World) -> None:
    world.anon(1)
    swap = world.kernel.swap_info()
    entry = swap.get_swap_page()
    problems = check_kernel(world.kernel)
    assert any(f"swap entry {entry} has 1 users but 0" in p for p in problems)


def test_the_oracle_catches_a_slot_left_on_the_old_page(world: World) -> None:
    inode = world.file(world.mount("ext2", "nobh"), 1, clean=True)
    (page,) = inode.i_mapping.pages()
    from_ = world.isolate([page])
    to = world.new_pages(1)
    record = world.oracle.record(from_, to)
    moved = PageList("moved")
    from fsaops.lists import list_move

    # A broken "migration": claims success but moved nothing.
    list_move(page, moved)
    problems = record.check(from_, moved, PageList("failed"), to)
    name = inode.i_mapping.name
    assert (
        f"moved pfn {page.pfn} still has mapping {name}, private 0 or page_mapcount 0" in problems
    )
    assert (
        f"pfn {page.pfn} is on moved, but its page-tree slot still points at the old page: "
        "nothing moved" in problems
    )


def test_the_oracle_catches_contents_that_did_not_follow(world: World) -> None:
    inode = world.file(world.mount("ext2", "nobh"), 1, clean=True)
    (page,) = inode.i_mapping.pages()
    from_ = world.isolate([page])
    to = world.new_pages(1)
    newpage = to.last()
    record = world.oracle.record(from_, to)
    lock_page(page)
    lock_page(newpage)
    assert migrate_page_remove_references(newpage, page, 2) == 0  # slot moved, no copy
    page.mapping = None
    from fsaops.lists import list_del, list_move
    from fsaops.page import unlock_page

    unlock_page(page)
    unlock_page(newpage)
    list_del(newpage)
    moved = PageList("moved")
    list_move(page, moved)
    problems = record.check(from_, moved, PageList("failed"), to)
    assert (
        f"pfn {page.pfn} moved to pfn {newpage.pfn} but the contents differ (first at byte 0)"
        in problems
    )


def test_a_machine_in_use_has_no_broken_fields(world: World) -> None:
    world.file(world.mount("ext2", block_size=1024), 3)
    world.file(world.mount("ext3", "journal"), 2)
    world.anon(2)
    assert broken_pages(world.kernel) == []


@pytest.mark.parametrize(
    ("field", "value", "said"),
    [
        ("flags", None, "flags is None, not an int"),
        ("count", 1.5, "count is a float, not an int"),
        ("index", "3", "index is a str, not an int"),
        ("mapcount", True, "mapcount is a bool, not an int"),
        ("mapping", 42, "mapping is an int, not an address space"),
        ("lru_next", None, "lru_next is None, not a list entry"),
        ("lru_prev", object(), "lru_prev is an object, not a list entry"),
    ],
)
def test_a_field_of_the_wrong_kind_is_named(
    world: World, field: str, value: object, said: str
) -> None:
    inode = world.file(world.mount("ext2"), 2)
    page = inode.i_mapping.pages()[1]
    saved = getattr(page, field)
    setattr(page, field, value)
    assert broken_fields(page) == [said]
    # A file page says whose table it is: its mapping's, unless that is what is broken.
    table = "" if field == "mapping" else " (ext2_aops)"
    assert broken_pages(world.kernel) == [f"pfn {page.pfn}{table}: {said}"]
    setattr(page, field, saved)
    assert broken_pages(world.kernel) == []


@pytest.mark.parametrize(
    ("value", "said"),
    [
        (0, "private is an int under PG_private, not a buffer head"),
        (None, "private is None under PG_private, not a buffer head"),
    ],
)
def test_pg_private_without_a_buffer_head_is_named(world: World, value: object, said: str) -> None:
    inode = world.file(world.mount("ext2", block_size=1024), 2)
    page = inode.i_mapping.pages()[0]
    assert page.flags & PG.private
    saved = page.private
    page.private = value
    assert broken_fields(page) == [said]
    assert broken_pages(world.kernel) == [f"pfn {page.pfn} (ext2_aops): {said}"]
    page.private = saved
    assert broken_fields(page) == []


def test_a_missing_field_is_named_and_the_list_is_cut(world: World) -> None:
    pages = world.kernel.nodes[0].pages[:5]
    for page in pages:
        del page.flags
    assert broken_pages(world.kernel, limit=2) == [
        f"pfn {pages[0].pfn}: flags is missing",
        f"pfn {pages[1].pfn}: flags is missing",
    ]
    for page in pages:
        page.flags = 0


def _truncated_but_mapped(world: World, mode: str) -> Page:
    """Page 1 of a file mapped by a process, taken out of its file without unmapping it.

    Every reference is accounted for (the slot's dropped with the slot), so
    only the stale mapping is wrong: truncate unmaps a file's pages before it
    takes them out of the page cache (``unmap_mapping_range``).
    """
    record = world.create_file(world.mount("ext2", mode))
    world.write_file(record, 3)
    mm = world.process("mapper")
    world.touch(mm, world.map_file(record, mm), 1)
    page = record.inode.i_mapping.pages()[1]
    assert page.mapcount == 1
    assert check_kernel(world.kernel) == []
    mapping = page.mapping
    assert isinstance(mapping, AddressSpace)
    mapping.page_tree[page.index] = None
    mapping.nrpages -= 1
    page.mapping = None
    page.count -= 1
    return page


@pytest.mark.parametrize("mode", ["nobh", "default"])
def test_a_page_out_of_its_file_that_ptes_still_map_is_found(world: World, mode: str) -> None:
    """A stale mapping: the process reads and writes a page its file no longer has, and its
    stores are lost.  Before, a page on its LRU list with its references and ptes accounted
    for passed the checker's quick path (no mapping: nothing to look up), and one with buffers
    passed every check."""
    page = _truncated_but_mapped(world, mode)
    said = f"pfn {page.pfn} is mapped by 1 pte(s) but is in no page cache: a stale mapping"
    assert any(said in p for p in check_kernel(world.kernel)), check_kernel(world.kernel)
    assert any(said in p for p in check_pages(world.kernel, [page])), check_pages(
        world.kernel, [page]
    )
