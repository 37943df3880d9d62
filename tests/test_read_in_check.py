"""The build checks that the pages it read in hold the data on their blocks.

A file whose data is on its device is read in through the table's
``readpage`` (or ``readpages``).  A table whose read path does not read its
blocks (ramfs's ``simple_readpage`` zeroes the page) would start the run
with pages that never held their data, and the run would blame whatever
moved them next: the build refuses it, naming the member and the page.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import attrs
import pytest

from fsaops.config import parse_config
from fsaops.mapping import AddressSpace
from fsaops.page import Page, page_address
from fsaops.plugins import Registry
from fsaops.scenario import run_scenario
from fsaops.world import SetupError, World
from fsaops.writeback import WritebackControl

EXAMPLE_PLUGIN = Path(__file__).parents[1] / "docs" / "examples" / "fsaops-example-plugin" / "src"
sys.path.insert(0, str(EXAMPLE_PLUGIN))

from fsaops_ramfs import RAMFS, ramfs_aops  # noqa: E402


def _unused_writepage(page: Page, wbc: WritebackControl) -> int:
    raise AssertionError("never called: the build stops before writing anything back")


ZEROES = attrs.evolve(
    RAMFS,
    name="zeroes",
    modes={"default": attrs.evolve(ramfs_aops, name="zeroes_aops", writepage=_unused_writepage)},
)
"""ramfs's ``readpage`` (zeroes) with a ``writepage``: its files are put on disk and read in."""


def test_a_readpage_that_does_not_read_its_blocks_is_refused() -> None:
    world = World(nodes=2, node_pages=64)
    record = world.create_file(world.mount(ZEROES))
    with pytest.raises(SetupError) as caught:
        world.load_file(record, 4)
    assert str(caught.value) == (
        f"reading {record.page_key(0)} in failed: zeroes_aops.readpage left it without the "
        "data on its blocks (it reads back zeroes)"
    )


def test_readpages_that_damage_a_page_are_refused_naming_the_first(registry: Registry) -> None:
    """The first wrong page of the run is named, with what it holds instead."""
    world = World(registry=registry, node_pages=600)
    sb = world.mount("ext2", "nobh", block_size=1024)
    readpages = sb.a_ops.readpages
    assert readpages is not None

    def damaging_readpages(mapping: AddressSpace, pages: Sequence[Page], /) -> int:
        rc = readpages(mapping, pages)
        by_index = {page.index: page for page in pages}
        for index in (261, 300):  # in the second run of 256 pages
            if index in by_index:
                page_address(by_index[index])[:] = page_address(by_index[index + 1])
        return rc

    sb.a_ops = attrs.evolve(sb.a_ops, readpages=damaging_readpages)
    record = world.create_file(sb)
    with pytest.raises(SetupError) as caught:
        world.load_file(record, 320)
    assert str(caught.value) == (
        f"reading {record.page_key(261)} in failed: ext2_nobh_aops.readpages left it without "
        f"the data on its blocks (it holds the data of {record.key}/page262 (generation 0))"
    )


def test_a_table_that_reads_its_blocks_is_read_in(registry: Registry) -> None:
    for with_readpages in (True, False):
        world = World(registry=registry, node_pages=600)
        sb = world.mount("ext2", "nobh", block_size=1024)
        if not with_readpages:
            sb.a_ops = attrs.evolve(sb.a_ops, readpages=None)
        record = world.create_file(sb)
        world.load_file(record, 300)
        assert world.read_range(record, 0, 300) == world.expected_range(record, 0, 300)


def test_a_scenario_whose_readpage_does_not_read_is_a_setup_error(registry: Registry) -> None:
    """The run stops at the build, sending the user to readpage, not to migratepage."""
    with_zeroes = attrs.evolve(registry, filesystems={**registry.filesystems, "zeroes": ZEROES})
    text = '[kernel]\nnode_memory = "4MiB"\n[[mount]]\nfs = "zeroes"\npages = 32\nfiles = 2\n'
    with pytest.raises(SetupError) as caught:
        run_scenario(parse_config(text, "s.toml"), with_zeroes, source="s.toml")
    assert "mount0/file0/page0 in failed: zeroes_aops.readpage left it without" in str(caught.value)
