"""The testing kit's suite reaches the pages and block sizes a table can be wrong on alone.

Three kinds of broken ``migratepage`` passed every promise of the suite:

* one that finds the page-tree slot as if the tree had one level
  (``index & 63``): the suite built pages at indices 0 to 40 only, all in
  the kernel's first radix-tree node, so no page it moved sat one level
  down, where the new page gets the wrong index;
* one that treats a ring of one buffer apart (its ``BH_dirty`` taken for
  the page's, so the new page is left clean): the suite mounts the
  smallest block size a type takes, and checked rings at the smaller
  sizes only, never a page of one buffer;
* one that reaches past its two pages and changes a neighbour's buffers
  (``BH_Uptodate`` cleared on dirty buffers, so the next read or partial
  write fetches the block from disk over newer data; ``BH_New`` set):
  nothing compared any page but the two handed to the call.

Each is ``buffer_migrate_page`` with one mistake, in a third-party plugin
installed through the ``fsaops`` entry-point group, and run through the
suite as its author would (the class names the plugin's filesystem), in
pytester.  ext2's own table, from the same plugin, keeps every promise.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from fsaops.testing.dist import write_dist_info
from fsaops.testing.promises import PROMISES
from suite_runs import call_reports, inline_reports

pytest_plugins = ["pytester"]

PLUGIN = '''
import attrs

import fsaops
from fsaops import buffer_migrate_page
from fsaops.buffer import BH, buffers
from fsaops.page import PG
from fsaops_ext2 import EXT2, ext2_aops


def first_node_slot(newpage, page):
    """Moves the page, then keys the new one by its slot in the tree's first node."""
    rc = buffer_migrate_page(newpage, page)
    if rc == 0:
        newpage.index &= 63
    return rc


def one_buffer_clean(newpage, page):
    """A page of one buffer: its buffer's BH_dirty is taken for PG_dirty, and the page cleaned."""
    head = page.private if page.flags & PG.private else None
    rc = buffer_migrate_page(newpage, page)
    if rc == 0 and head is not None and head.b_this_page is head:
        newpage.flags &= ~PG.dirty
    return rc


def _neighbour(page):
    """The page before this one in its file, if cached."""
    mapping = page.mapping
    if mapping is None or page.index == 0:
        return None
    return mapping.lookup(page.index - 1)


def stales_a_neighbour(newpage, page):
    """Clears BH_Uptodate on the dirty buffers of the page before it in its file."""
    other = _neighbour(page)
    rc = buffer_migrate_page(newpage, page)
    if other is not None and other.flags & PG.private:
        for bh in buffers(other.private):
            if bh.b_state & BH.dirty:
                bh.b_state &= ~BH.uptodate
    return rc


def marks_a_neighbour_new(newpage, page):
    """Sets BH_New on the buffers of the page before it in its file."""
    other = _neighbour(page)
    rc = buffer_migrate_page(newpage, page)
    if other is not None and other.flags & PG.private:
        for bh in buffers(other.private):
            bh.b_state |= BH.new
    return rc


def writes_a_free_frame(newpage, page):
    """Flips a byte of the first free frame of its page's node."""
    node = page.node
    for i, other in enumerate(node.pages):
        if not other.count:
            node.mem[(i << node.page_shift) + 7] ^= 0x5A
            break
    return buffer_migrate_page(newpage, page)


def _type(name, migratepage):
    table = attrs.evolve(ext2_aops, name=f"{name}_aops", migratepage=migratepage)
    return attrs.evolve(EXT2, name=name, modes={"default": table}, page_cache={})


@fsaops.hookimpl
def fsaops_filesystem_types():
    return [
        _type("first_node_slot", first_node_slot),
        _type("one_buffer_clean", one_buffer_clean),
        _type("stales_a_neighbour", stales_a_neighbour),
        _type("marks_a_neighbour_new", marks_a_neighbour_new),
        _type("writes_a_free_frame", writes_a_free_frame),
        _type("control", buffer_migrate_page),
    ]
'''

SUITE = textwrap.dedent(
    """
    from fsaops.testing import MigratepageConformance

    for name in (
        "first_node_slot",
        "one_buffer_clean",
        "stales_a_neighbour",
        "marks_a_neighbour_new",
        "writes_a_free_frame",
        "control",
    ):
        globals()[f"Test_{name}"] = type(
            f"Test_{name}",
            (MigratepageConformance,),
            {"filesystem": name, "plugin": "reachfs", "max_examples": 5},
        )
    """
)

SLOT = "test_hook_points_the_page_tree_slot_at_the_new_page"
DIRTY = "test_hook_carries_the_dirty_state_without_writeback"
OTHERS = "test_hook_changes_no_other_page"

BUGS = {
    "first_node_slot": (SLOT, "slot", "new pfn 65 has index 0, not 64 (page clean, index 64)"),
    "one_buffer_clean": (
        DIRTY,
        "dirty",
        "at block size 4096 (1 buffer head a page): dirty pfn 0 (PG_dirty said so) moved to "
        "pfn 64 clean (PG_dirty clear) without being written back",
    ),
    "stales_a_neighbour": (
        OTHERS,
        "others",
        "migratepage of pfn 2 changed another page: buffer head 0 of pfn 3: b_state went from "
        "0x13 to 0x12 (lost BH_Uptodate) (page dirty)",
    ),
    "marks_a_neighbour_new": (
        OTHERS,
        "others",
        "migratepage of pfn 2 changed another page: buffer head 0 of pfn 3: b_state went from "
        "0x13 to 0x33 (gained BH_New) (page dirty)",
    ),
    "writes_a_free_frame": (
        OTHERS,
        "others",
        "migratepage of pfn 2 wrote into pfn 4, a free frame: whoever is given that frame next "
        "finds it changed (page dirty)",
    ),
}


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The plugin ``reachfs`` installed in a folder of its own (a dist-info and its module)."""
    folder = tmp_path / "site"
    write_dist_info(
        folder, "fsaops-reachfs", {"fsaops": {"reachfs": "reachfs"}}, modules={"reachfs": PLUGIN}
    )
    monkeypatch.delenv("FSAOPS_PLUGINS", raising=False)
    return folder


def _run(pytester: pytest.Pytester, site: Path, keyword: str) -> dict[str, pytest.TestReport]:
    pytester.syspathinsert(site)
    pytester.makepyfile(test_reach=SUITE)
    reprec = inline_reports(pytester, "--tb=short", "-k", keyword)
    return call_reports(reprec)


@pytest.mark.parametrize("name", sorted(BUGS))
def test_the_suite_fails_a_table_wrong_only_where_it_did_not_look(
    pytester: pytest.Pytester, site: Path, name: str
) -> None:
    test, promise, said = BUGS[name]
    reports = _run(pytester, site, f"Test_{name} and {test}")
    report = reports[f"Test_{name}::{test}"]
    assert report.failed, f"{test} passed {name}"
    assert f"broken promise: {PROMISES[promise]}" in report.longreprtext
    assert said in report.longreprtext


def test_ext2s_own_table_keeps_the_promises(pytester: pytest.Pytester, site: Path) -> None:
    reports = _run(pytester, site, f"Test_control and ({SLOT} or {DIRTY} or {OTHERS} or last_page)")
    assert len(reports) == 4
    failed = {test: r.longreprtext for test, r in reports.items() if not r.passed}
    assert not failed, failed
