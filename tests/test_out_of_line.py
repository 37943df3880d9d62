"""Pages whose blocks are out of line on the disk: built, probed and migrated by the kit.

ext2 ``nobh`` attaches no buffer heads to a page whose blocks follow on,
but reads a page whose blocks do not ("confused") through
``block_read_full_page``, which attaches them.  A nobh ``migratepage``
must handle those; the kit builds such a page (``PageSpec(out_of_line=True)``),
its buffer probe meets buffers on it, and one promise moves it.
"""

from __future__ import annotations

import itertools
import textwrap

import pytest

from fsaops.buffer import buffers
from fsaops.page import PG
from fsaops.plugins import Registry
from fsaops.testing.harness import Subject, World, buffer_heads_seen, infer_capabilities
from fsaops.world import PageSpec, SetupError
from fsaops.world import World as CoreWorld
from suite_runs import call_reports, inline_reports

pytest_plugins = ["pytester"]


def _nobh(registry: Registry, block_size: int = 1024) -> Subject:
    return Subject(registry.filesystem("ext2"), "nobh", block_size=block_size)


def test_a_page_out_of_line_has_no_two_blocks_that_follow_on(registry: Registry) -> None:
    world = CoreWorld(registry=registry)
    sb = world.mount("ext2", "nobh", block_size=1024)
    prepared = world.make_page(PageSpec(out_of_line=True, index=1), on=sb)
    assert prepared.inode is not None
    blocks = prepared.inode.blocks[4:8]
    assert all(b - a > 1 for a, b in itertools.pairwise(blocks))
    # Read through block_read_full_page: the "confused" page carries its buffers.
    page = prepared.page
    assert page.flags & PG.private
    assert [bh.b_blocknr for bh in buffers(page.private)] == blocks
    assert prepared.read_back() == prepared.data == world.expected(world.files[0], 1)


def test_the_spec_names_the_state(registry: Registry) -> None:
    spec = PageSpec.parse("dirty+out_of_line")
    assert spec == PageSpec(dirty=True, out_of_line=True)
    assert str(spec) == "dirty+blocks out of line"
    with pytest.raises(ValueError, match="no blocks to put out of line"):
        PageSpec(sparse=True, out_of_line=True)


def test_a_page_of_one_block_cannot_be_out_of_line(registry: Registry) -> None:
    world = CoreWorld(registry=registry)
    sb = world.mount("ext2", "nobh", block_size=4096)
    with pytest.raises(SetupError, match="a page of one block"):
        world.make_page(PageSpec(out_of_line=True), on=sb)


def test_the_buffer_probe_meets_the_buffers_of_a_nobh_page(registry: Registry) -> None:
    """A clean, a dirty and a part-written nobh page have none; one out of line has them."""
    subject = _nobh(registry)
    world = World(subject)
    assert buffer_heads_seen(world, world.make_page(PageSpec())) == (
        "a page whose blocks are out of line"
    )
    assert "buffers" in infer_capabilities(subject)


NOBH_TABLES = textwrap.dedent(
    '''
    from errno import EAGAIN

    import attrs

    from fsaops import FileSystemType, migrate_page_copy, migrate_page_remove_references
    from fsaops.page import PG
    from fsaops.testing import MigratepageConformance
    from fsaops_ext2 import EXT2, ext2_nobh_aops


    def assumes_no_buffers(newpage, page):
        """A nobh migratepage that takes its pages for bufferless: buffers stay behind."""
        extra = 1 if page.flags & PG.private else 0
        if migrate_page_remove_references(newpage, page, 2 + extra):
            return -EAGAIN
        migrate_page_copy(newpage, page)
        return 0


    BAD = attrs.evolve(ext2_nobh_aops, name="assumes_no_buffers_aops",
                       migratepage=assumes_no_buffers)
    BAD_NOBH = FileSystemType(name="badnobh", modes={"nobh": BAD}, default_mode="nobh",
                              block_sizes=(1024, 2048, 4096))


    class TestAssumesNoBuffers(MigratepageConformance):
        filesystem = BAD_NOBH


    class TestNobh(MigratepageConformance):
        filesystem = "ext2"
        mode = "nobh"
    '''
)


def test_the_suite_fails_a_nobh_table_that_assumes_no_buffers(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_nobh_tables=NOBH_TABLES)
    reprec = inline_reports(pytester, "-k", "not property")
    outcomes = call_reports(reprec)
    moved = "test_engine_moves_a_page_whose_blocks_are_out_of_line"
    broken = outcomes[f"TestAssumesNoBuffers::{moved}"]
    assert broken.failed
    assert "moved pfn 0 has page_count 2" in broken.longreprtext
    assert outcomes["TestAssumesNoBuffers::test_hook_moves_buffer_heads_with_the_page"].failed
    assert outcomes[f"TestNobh::{moved}"].passed
    assert not [name for name, report in outcomes.items() if "TestNobh" in name and report.failed]


@pytest.mark.parametrize("block_size", [1024, 2048])
def test_the_built_in_nobh_table_moves_pages_out_of_line(
    registry: Registry, block_size: int
) -> None:
    world = World(_nobh(registry, block_size))
    prepared = [world.make_page(PageSpec(out_of_line=True, dirty=dirty)) for dirty in (False, True)]
    assert all(p.page.flags & PG.private for p in prepared)
    run = world.migrate()
    assert run.problems == [] and len(run.moved) == 2
    world.settle(run)
    for p in prepared:
        assert p.read_back() == p.data
