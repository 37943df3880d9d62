"""``PG_lru`` set by table code on a page that is off every LRU list is the kernel's ``BUG()``.

Migration isolates each page (``isolate_lru_page`` clears ``PG_lru``) and
puts it back with ``move_to_lru``, which adds it through ``lru_cache_add``:
there ``__pagevec_lru_add`` tests and sets the bit, and ``BUG()``s when it
was set already.  Before, the model set the bit over itself and a table
whose ``writepage`` (reached through the engine's generic path) set it on
the page it was writing got an ok run; only ``--debug-vm`` saw anything.

With it, the LRU's other rules: a page put back with its last reference
is freed, a page whose references are gone is a bad page, and
``activate_page`` moves only a page of the inactive list.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from fsaops.errors import BadPage, KernelBug
from fsaops.lists import PageList, list_add
from fsaops.lru import (
    activate_page,
    isolate_lru_page,
    lru_cache_add,
    lru_cache_add_active,
    move_to_lru,
    putback_lru_pages,
)
from fsaops.mapping import remove_from_page_cache
from fsaops.memory import Node
from fsaops.page import PG, Page, put_page
from fsaops.plugins import load_plugins
from fsaops.world import World
from guarded import fsaops, install, one_error_line, one_json_object

PLUGIN = """\
import attrs, fsaops
from fsaops import FileSystemType
from fsaops.buffer import nobh_writepage
from fsaops.page import PG
from fsaops_ext2 import ext2_nobh_aops

def writepage(page, wbc):
    rc = nobh_writepage(page, wbc)
    page.flags |= PG.lru
    return rc

TABLE = attrs.evolve(
    ext2_nobh_aops, name="lruflag_aops", writepage=writepage, migratepage=None
)

@fsaops.hookimpl
def fsaops_filesystem_types():
    return [FileSystemType(name="lruflag", modes={"default": TABLE})]
"""


def _kernel_bug(tmp_path: Path, name: str, plugin: str, kernel: str, *words: str) -> None:
    """A run of 8 dirty pages of plugin ``name``'s table, with the ``kernel`` section given, ends
    with one line, a kernel BUG that says ``words`` (the first its start); exit 1, status
    ``kernel bug``."""
    env = install(tmp_path / "site", name, plugin)
    scenario = tmp_path / "s.toml"
    scenario.write_text(
        f'{kernel}[plugins]\nload = ["{name}", "swap"]\n[[mount]]\nfs = "{name}"\npages = 8\n'
        "[processes]\ncount = 0\nanon_pages = 0\n[workload]\ndirty = 1.0\n"
    )
    proc = fsaops("migrate", scenario, "--json", "--no-progress", env=env)
    line = one_error_line(proc, 1, *words)
    assert line.startswith(f"fsaops: error: {words[0]}"), line
    assert one_json_object(proc, "kernel bug")["error"] in line


@pytest.mark.parametrize("semantics", ["v4", "2.6.16", "2.6.17"])
def test_a_writepage_that_marks_the_page_it_writes_on_the_lru_is_a_kernel_bug(
    tmp_path: Path, semantics: str
) -> None:
    _kernel_bug(
        tmp_path,
        "lruflag",
        PLUGIN,
        f'[kernel]\nsemantics = "{semantics}"\n',
        "kernel BUG: pfn",
        "(the old page) is marked on the LRU (PG_lru)",
        "lruflag_aops's writepage or releasepage (generic path) set it",
        "(plugin lruflag-dist[lruflag], whose table lruflag_aops it is)",
    )


READPAGES_PLUGIN = """\
import attrs, fsaops
from fsaops import FileSystemType
from fsaops.buffer import mpage_readpages
from fsaops.page import PG
from fsaops_ext2 import ext2_get_block, ext2_nobh_aops

def readpages(mapping, pages):
    for page in pages:
        page.flags |= PG.lru
    return mpage_readpages(mapping, pages, ext2_get_block)

TABLE = attrs.evolve(ext2_nobh_aops, name="lrurd_aops", readpages=readpages)

@fsaops.hookimpl
def fsaops_filesystem_types():
    return [FileSystemType(name="lrurd", modes={"default": TABLE})]
"""


def test_a_readpages_that_marks_the_pages_it_reads_on_the_lru_is_a_kernel_bug(
    tmp_path: Path,
) -> None:
    """``mpage_readpages`` adds the pages to the LRU as ``lru_cache_add`` does, ``BUG()`` too.

    It was an ``AssertionError`` of its own, said as the plugin raising one,
    where ``lru_cache_add`` says the kernel's bug and names the table.
    """
    _kernel_bug(
        tmp_path,
        "lrurd",
        READPAGES_PLUGIN,
        "",
        "kernel BUG: lru_cache_add() of pfn",
        "which is already marked on the LRU",
        "(plugin lrurd-dist[lrurd], whose table lrurd_aops it is)",
    )


def _page_on_the_lru() -> tuple[World, Page]:
    world = World(registry=load_plugins(cli=["ext2"]), nodes=2, node_pages=32)
    record = world.create_file(world.mount("ext2", "nobh", block_size=4096))
    world.write_file(record, 1)
    page = record.inode.i_mapping.page_tree[0]
    assert page is not None and page.flags & PG.lru
    return world, page


def test_move_to_lru_of_a_page_marked_on_the_lru_is_the_bug_and_changes_nothing() -> None:
    _world, page = _page_on_the_lru()
    assert isolate_lru_page(page) == 1
    private = PageList("private")
    list_add(page, private)
    page.flags |= PG.lru
    node = page.node
    before = (node.nr_inactive, node.nr_active, page.count)
    with pytest.raises(KernelBug, match=r"move_to_lru\(\) of pfn \d+, which is already marked"):
        move_to_lru(page)
    assert (node.nr_inactive, node.nr_active, page.count) == before
    assert private.lru_next is page  # still on the caller's list


@pytest.mark.parametrize("add", [lru_cache_add, lru_cache_add_active], ids=lambda f: f.__name__)
def test_lru_cache_add_of_a_page_on_the_lru_is_the_bug_even_under_python_o(
    add: Callable[[Page], None],
) -> None:
    """It was an ``assert``, which ``python -O`` takes out; the lists are left as they were."""
    _world, page = _page_on_the_lru()
    node = page.node
    before = (node.nr_inactive, node.nr_active, page.flags, node.inactive.lru_next)
    with pytest.raises(KernelBug, match=rf"{add.__name__}\(\) of pfn \d+, which is already marked"):
        add(page)
    assert (node.nr_inactive, node.nr_active, page.flags, node.inactive.lru_next) == before
    assert node.active.lru_next is node.active  # nothing went on the active list


def lru_lists(node: Node) -> tuple[list[Page], list[Page], int, int]:
    """A node's inactive and active lists, head to tail, and their counts."""
    return (list(node.inactive), list(node.active), node.nr_inactive, node.nr_active)


def test_activate_page_moves_a_page_of_the_inactive_list_to_the_head_of_the_active_list() -> None:
    _world, page = _page_on_the_lru()
    node = page.node
    inactive, active, nr_inactive, nr_active = lru_lists(node)
    assert page in inactive and not page.flags & PG.active
    activate_page(page)
    assert page.flags & PG.active and page.flags & PG.lru
    inactive.remove(page)
    assert lru_lists(node) == (inactive, [page, *active], nr_inactive - 1, nr_active + 1)


@pytest.mark.parametrize("where", ["active list", "isolated", "isolated, marked active"])
def test_activate_page_leaves_a_page_not_on_the_inactive_list_alone(where: str) -> None:
    """The kernel's ``activate_page`` tests ``PageLRU && !PageActive`` again under ``lru_lock``:
    a page isolated meanwhile, or activated, is not moved (nor the lists' counts changed)."""
    _world, page = _page_on_the_lru()
    node = page.node
    private = PageList("private")
    if where == "active list":
        activate_page(page)
    else:
        assert isolate_lru_page(page) == 1
        list_add(page, private)
        if where == "isolated, marked active":
            page.flags |= PG.active
    before = (lru_lists(node), page.flags, list(private))
    activate_page(page)
    assert (lru_lists(node), page.flags, list(private)) == before


def _isolable(active: bool) -> Page:
    """A page on the active or the inactive list, whose counts say so."""
    _world, page = _page_on_the_lru()
    node = page.node
    if active != bool(page.flags & PG.active):  # the lists are only counted: it is taken off
        page.flags ^= PG.active
        step = 1 if active else -1
        node.nr_active, node.nr_inactive = node.nr_active + step, node.nr_inactive - step
    return page


@pytest.mark.parametrize("active", [False, True], ids=["inactive", "active"])
def test_putting_back_the_last_reference_frees_the_page_and_leaves_the_lru_as_it_was(
    active: bool,
) -> None:
    """The old page of a migration: lru_cache_add() then put_page() frees it at once."""
    page = _isolable(active)
    node = page.node
    assert isolate_lru_page(page) == 1
    private = PageList("moved")
    list_add(page, private)
    page.flags = (page.flags | PG.locked) & ~PG.dirty  # as a migration leaves the old page:
    remove_from_page_cache(page)  # out of the cache, clean and unlocked, and the cache's
    page.flags &= ~PG.locked
    put_page(page)  # reference gone; the isolation's is the last
    lru = (node.nr_inactive, node.nr_active, node.nr_free, node.inactive.lru_next)
    assert putback_lru_pages(private) == 1
    assert private.lru_next is private
    assert (page.count, page.flags, page.mapping) == (0, 0, None)
    assert page in node.free_pages()
    assert (node.nr_inactive, node.nr_active, node.nr_free - 1, node.inactive.lru_next) == lru


@pytest.mark.parametrize("active", [False, True], ids=["inactive", "active"])
def test_putting_back_a_page_someone_else_holds_puts_it_on_its_lru_list(active: bool) -> None:
    page = _isolable(active)
    node = page.node
    assert isolate_lru_page(page) == 1
    count = page.count
    private = PageList("failed")
    list_add(page, private)
    before = (node.nr_inactive, node.nr_active)
    move_to_lru(page)
    head = node.active if active else node.inactive
    assert head.lru_next is page and page.flags & PG.lru
    assert page.count == count - 1
    assert (node.nr_inactive, node.nr_active) == (before[0] + (not active), before[1] + active)


def test_putting_back_the_last_reference_of_a_page_still_in_its_mapping_is_a_bad_page() -> None:
    page = _isolable(False)
    assert isolate_lru_page(page) == 1
    private = PageList("moved")
    list_add(page, private)
    put_page(page)  # the cache's reference dropped, the page left in the cache
    with pytest.raises(BadPage, match=r"freeing pfn \d+ while it is still in use"):
        putback_lru_pages(private)


def test_putting_back_a_page_whose_references_are_gone_is_a_bad_page() -> None:
    """A table that dropped references it did not hold: ``put_page`` takes the count below 0."""
    page = _isolable(False)
    node = page.node
    assert isolate_lru_page(page) == 1
    private = PageList("failed")
    list_add(page, private)
    page.count = 0  # by hand, as such a table would: no put_page() freed it on the way
    with pytest.raises(BadPage, match=rf"reference count of pfn {page.pfn} went negative"):
        putback_lru_pages(private)
    assert page not in node.free_pages()


@pytest.mark.parametrize("count", [1, -1])
def test_freeing_a_frame_whose_count_is_not_0_is_a_bad_page(count: int) -> None:
    """``free_pages_check``: a frame goes back to the allocator with no reference at all."""
    world = World(registry=load_plugins(cli=["ext2"]), nodes=2, node_pages=32)
    node = world.kernel.nodes[1]
    frame = node.alloc_page()
    assert frame is not None
    free = node.nr_free
    frame.count = count
    with pytest.raises(BadPage, match=rf"freeing pfn {frame.pfn} while it is still in use"):
        node.free_page(frame)
    assert (node.nr_free, frame in node.free_pages()) == (free, False)
    frame.count = 0
    node.free_page(frame)
    assert (node.nr_free, frame in node.free_pages()) == (free + 1, True)
