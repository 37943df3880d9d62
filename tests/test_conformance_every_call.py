"""The conformance suite holds every call it makes to every promise, and builds far pages.

Each table below is ext2's with a ``migratepage`` that is wrong in only
some calls: one call in the run, or only for pages far into a file.  A
generated test module subclasses the suite for each, as a plugin author
would; pytester runs it in-process, and these tests check that some test
of the suite fails naming the broken promise, while ext2's own
``buffer_migrate_page`` passes the same tests.
"""

from __future__ import annotations

import textwrap

import pytest

import fsaops.world
from fsaops.testing import harness
from fsaops.testing.harness import PageSpec, World, resolve_subject
from fsaops.testing.promises import PROMISES
from suite_runs import call_reports, inline_reports

pytest_plugins = ["pytester"]

TABLES = textwrap.dedent(
    '''
    import attrs

    from fsaops import buffer_migrate_page
    from fsaops.page import PG, page_address
    from fsaops.testing import MigratepageConformance
    from fsaops_ext2 import EXT2, ext2_aops

    moved = [0]


    def flip(newpage):
        page_address(newpage)[100] ^= 1


    def wrong_on_one_call(newpage, page):
        """Copies every page right but the seventh it moves."""
        rc = buffer_migrate_page(newpage, page)
        if rc == 0:
            moved[0] += 1
            if moved[0] == 7:
                flip(newpage)
        return rc


    def wrong_past_index_40(newpage, page):
        rc = buffer_migrate_page(newpage, page)
        if rc == 0 and page.index > 40:
            flip(newpage)
        return rc


    def wrong_past_the_single_indirect_blocks(newpage, page):
        rc = buffer_migrate_page(newpage, page)
        if rc == 0 and page.index >= 67:
            flip(newpage)
        return rc


    def wrong_past_4_gib(newpage, page):
        rc = buffer_migrate_page(newpage, page)
        if rc == 0 and page.index << 12 >= 1 << 32:
            flip(newpage)
        return rc


    def wrong_on_dirty_mapped_pages_at_odd_indexes(newpage, page):
        mapped = page.mapcount > 0
        rc = buffer_migrate_page(newpage, page)
        if rc == 0 and mapped and page.index % 2 and newpage.flags & PG.dirty:
            flip(newpage)
        return rc


    def ext2_with(fn):
        table = attrs.evolve(ext2_aops, name=f"{fn.__name__}_aops", migratepage=fn)
        return attrs.evolve(EXT2, name=fn.__name__, modes={"default": table})


    class TestWrongOnOneCall(MigratepageConformance):
        filesystem = ext2_with(wrong_on_one_call)
        capabilities = {"buffers", "writeback"}


    class TestWrongPastIndex40(MigratepageConformance):
        filesystem = ext2_with(wrong_past_index_40)
        capabilities = {"buffers", "writeback"}


    class TestWrongPastTheSingleIndirectBlocks(MigratepageConformance):
        filesystem = ext2_with(wrong_past_the_single_indirect_blocks)
        capabilities = {"buffers", "writeback"}


    class TestWrongPast4Gib(MigratepageConformance):
        filesystem = ext2_with(wrong_past_4_gib)
        capabilities = {"buffers", "writeback"}


    class TestWrongOnDirtyMappedPagesAtOddIndexes(MigratepageConformance):
        filesystem = ext2_with(wrong_on_dirty_mapped_pages_at_odd_indexes)
        capabilities = {"buffers", "writeback"}


    class TestRight(MigratepageConformance):
        filesystem = ext2_with(buffer_migrate_page)
        capabilities = {"buffers", "writeback"}
    '''
)

CONTENTS = f"broken promise: {PROMISES['contents']}"


def _failed(pytester: pytest.Pytester, keyword: str) -> dict[str, str]:
    """Run the tables' suites for ``keyword`` (no property tests); each failed test's report."""
    pytester.makepyfile(test_tables=TABLES)
    reprec = inline_reports(pytester, "-k", f"({keyword}) and not property")
    return {
        test: report.longreprtext for test, report in call_reports(reprec).items() if report.failed
    }


def test_a_table_wrong_in_one_call_fails_whichever_test_made_that_call(
    pytester: pytest.Pytester,
) -> None:
    """Before, the seventh move landed in a test of another promise, and the suite passed."""
    failed = _failed(pytester, "TestWrongOnOneCall")
    assert len(failed) == 1, sorted(failed)
    (message,) = failed.values()
    assert CONTENTS in message
    assert "first difference at byte 100" in message


@pytest.mark.parametrize(
    ("cls", "tests"),
    [
        ("TestWrongPastIndex40", {"test_hook_points_the_page_tree_slot_at_the_new_page"}),
        (
            "TestWrongPastTheSingleIndirectBlocks",
            {"test_hook_moves_pages_far_into_a_file", "test_engine_moves_pages_far_into_a_file"},
        ),
        ("TestWrongPast4Gib", {"test_hook_moves_pages_far_into_a_file"}),
        (
            "TestWrongOnDirtyMappedPagesAtOddIndexes",
            {"test_hook_moves_pages_far_into_a_file", "test_engine_moves_pages_far_into_a_file"},
        ),
    ],
)
def test_a_table_wrong_only_far_into_a_file_is_caught(
    pytester: pytest.Pytester, cls: str, tests: set[str]
) -> None:
    """Before, the suite built no page past index 40, nor a dirty mapped one at an odd index."""
    failed = _failed(pytester, cls)
    for test in tests:
        message = failed.get(f"{cls}::{test}")
        assert message is not None, f"{test} did not catch {cls}; failures: {sorted(failed)}"
        # The hook level names the contents; the engine level, the page that moved wrong.
        assert CONTENTS in message or "but the contents differ (first at byte 100)" in message


def test_the_right_table_passes_the_far_pages_and_every_call_held(
    pytester: pytest.Pytester,
) -> None:
    failed = _failed(pytester, "TestRight")
    assert not failed, sorted(failed)


@pytest.mark.parametrize("block_size", [1024, 4096])
def test_a_page_past_4_gib_is_built_in_a_sparse_file(block_size: int) -> None:
    """Before, the blocks of every page before it were reserved: more than the device holds."""
    subject = resolve_subject("ext2", None, {"buffers", "writeback"}, block_size=block_size)
    world = World(subject)
    index = harness.far_indices()[-1]
    assert index << 12 == 1 << 32
    prepared = world.make_page(PageSpec(index=index, dirty=True, mapped=True))
    assert prepared.page.index == index
    assert prepared.read_back() == prepared.data
    assert prepared.inode is not None
    blocks = prepared.inode.blocks
    per_page = 4096 // block_size
    assert not any(blocks[: index * per_page]), "a block before the page is on disk"
    assert all(blocks[index * per_page : (index + 1) * per_page])
    assert index >= fsaops.world.SPARSE_FROM
