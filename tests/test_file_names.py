"""Every message of a run names a file as its report does.

A scenario's report names its files ``mount0/file0``, ``mount0/file1``, ...
(:attr:`~fsaops.world.File.key`, from 0), while the filesystem numbers its
inodes from 1, and a mount with blocks out of line creates a file of its own
for the blocks between: the invariants and every other message about a page
tree or a page's mapping must still name the report's file.
"""

from __future__ import annotations

from pathlib import Path

import attrs

from fsaops.config import load_config
from fsaops.debug import check_kernel
from fsaops.plugins import Registry
from fsaops.scenario import Scenario
from fsaops.world import World

CONFIGS = Path(__file__).parent / "configs"


def _scenario(registry: Registry, *, out_of_line: bool) -> Scenario:
    config = load_config(CONFIGS / "small.toml")
    config = attrs.evolve(config, workload=attrs.evolve(config.workload, out_of_line=out_of_line))
    return Scenario(config, registry, seed=1)


def test_every_scenario_file_is_named_by_its_key(registry: Registry) -> None:
    for out_of_line in (False, True):
        world = _scenario(registry, out_of_line=out_of_line).world
        for record in world.files:
            assert record.inode.name == record.key
            assert record.inode.i_mapping.name == record.key
        names = [inode.name for sb in world.kernel.super_blocks for inode in sb.inodes]
        assert len(names) == len(set(names)), names


def test_an_invariant_names_the_file_the_report_names(registry: Registry) -> None:
    """``slot N of mount0/file0``, not ``mount0/file1``, for the report's first file."""
    scenario = _scenario(registry, out_of_line=True)
    world = scenario.world
    for record in world.files[:2]:
        page = record.inode.i_mapping.lookup(0)
        assert page is not None
        page.index = 7
        problems = check_kernel(world.kernel, quiet=False)
        assert f"slot 0 of {record.key} holds pfn {page.pfn}, whose index is 7" in problems
        assert f"<AddressSpace {record.key} " in repr(page.mapping)
        page.index = 0


def test_a_world_built_without_a_scenario_keeps_the_filesystem_s_names(registry: Registry) -> None:
    """A file created without a name keeps the filesystem's, by inode number, as before."""
    world = World(registry=registry, node_pages=64)
    sb = world.mount("ext2", name="racefs0")
    first = world.create_file(sb)
    keyed = world.create_file(sb, key="subject/file9")
    assert (first.key, first.inode.name) == ("racefs0/file1", "racefs0/file1")
    assert keyed.inode.name == "racefs0/file2"
