"""What a new user meets: the verdict on tables with no backing store, and the messages.

A table with nowhere to write a page back (ramfs) must keep its pages
dirty: the durability proof and ``--debug-vm`` catch one that moves a dirty
page to a clean one, and neither speaks of a disk the table does not have.
"""

from __future__ import annotations

import json
import sys
from errno import EAGAIN
from pathlib import Path

import attrs
import pytest

from fsaops import (
    AddressSpaceOperations,
    FileSystemType,
    migrate_page,
    migrate_page_remove_references,
)
from fsaops.config import parse_config
from fsaops.debug import InvariantError
from fsaops.errors import ConfigError
from fsaops.memory_hotplug import migrate_node
from fsaops.oracle import Oracle
from fsaops.page import PG, Page, page_address
from fsaops.plugins import Registry
from fsaops.proofs import prove_durability, snapshot_places
from fsaops.scenario import plan_scenario
from fsaops.world import World
from fsaops.writeback import clear_page_dirty_for_io

EXAMPLE_PLUGIN = Path(__file__).parents[1] / "docs" / "examples" / "fsaops-example-plugin" / "src"
sys.path.insert(0, str(EXAMPLE_PLUGIN))

from fsaops_ramfs import RAMFS, ramfs_aops  # noqa: E402

import guarded  # noqa: E402

SMALL = Path(__file__).parents[1] / "docs" / "scenarios" / "small.toml"


def _migratepage_dropping_dirty(newpage: Page, page: Page) -> int:
    """The tutorial's ramfs ``migratepage``, but the new page is left clean."""
    if migrate_page_remove_references(newpage, page, 2):
        return -EAGAIN
    page_address(newpage)[:] = page_address(page)
    newpage.flags |= page.flags & (PG.uptodate | PG.referenced | PG.active)
    clear_page_dirty_for_io(page)
    page.mapping = None
    return 0


NODIRTY = attrs.evolve(
    RAMFS,
    name="nodirty",
    modes={
        "default": attrs.evolve(
            ramfs_aops, name="nodirty_aops", migratepage=_migratepage_dropping_dirty
        )
    },
)


def _ramfs_world(fstype: object, *, debug_vm: bool = False) -> World:
    world = World(nodes=2, node_pages=64, debug_vm=debug_vm)
    sb = world.mount(fstype)  # type: ignore[arg-type]
    record = world.create_file(sb)
    world.write_file(record, 6)
    return world


@pytest.mark.parametrize("fstype", [RAMFS, NODIRTY], ids=["ramfs", "nodirty"])
def test_a_memory_only_page_moved_clean_fails_the_durability_proof(fstype: object) -> None:
    """ramfs's pages move dirty and hold; a table that moves them clean loses them to reclaim."""
    world = _ramfs_world(fstype)
    places = snapshot_places(world, 0)
    migrate_node(world.kernel, 0, 1)
    proof = prove_durability(world, moved_by=places)
    table = f"{fstype.name}_aops"  # type: ignore[attr-defined]
    assert proof.memory_only == {table: 6}
    if fstype is RAMFS:
        assert proof.holds, proof.problems
        return
    assert proof.failures == 6
    record = world.files[0]
    assert proof.problems[0] == (
        f"{record.describe(0)} (nodirty_aops): clean, with no backing store to write it to "
        "(moved by nodirty_aops): reclaim would drop it, and its data with it"
    )
    assert not any("disk" in problem for problem in proof.problems)


def test_a_buffer_cache_page_its_device_holds_may_be_clean(registry: Registry) -> None:
    """xfs_buftarg's pages are clean and checked in memory only: the device holds their data."""
    world = World(registry=registry, nodes=2, node_pages=64)
    record = world.create_file(world.mount("xfs_buftarg"))
    assert record.meta
    world.fill_buffer_cache(record, 8, 0)
    places = snapshot_places(world, 0)
    migrate_node(world.kernel, 0, 1)
    proof = prove_durability(world, moved_by=places)
    assert proof.memory_only == {"xfs_mapping_buftarg.mapping_aops": 8}
    assert proof.holds, proof.problems


def test_debug_vm_names_reclaim_not_a_disk_for_a_table_with_no_backing_store() -> None:
    """``--debug-vm``'s message for a dirty page moved clean says what the table has not."""
    world = _ramfs_world(NODIRTY, debug_vm=True)
    with pytest.raises(InvariantError) as caught:
        migrate_node(world.kernel, 0, 1)
    text = "\n".join(caught.value.problems)
    assert "clean, with no backing store to write it to: reclaim would drop it" in text
    assert "disk" not in text


def test_a_cleared_mapping_is_named_not_a_slot_holding_the_page_itself(world: World) -> None:
    """The slot still holds the page: the message names the cleared mapping, never "it holds
    pfn N" for the page's own pfn."""
    record = world.create_file(world.mount("ext2"))
    world.write_file(record, 2)
    page = record.inode.i_mapping.lookup(1)
    assert page is not None
    oracle = Oracle()
    before = oracle.snapshot(page)
    page.mapping = None
    changes = oracle.changes(before, oracle.snapshot(page))
    tree = f"{before.tree.name if before.tree is not None else ''}'s page tree"
    assert (
        f"pfn {page.pfn}: slot 1 of {tree} still holds it, but its mapping was cleared (NULL), "
        "so the page no longer leads to its slot"
    ) in changes
    assert not any(f"holds pfn {page.pfn})" in change for change in changes)
    unmoved = oracle.unmoved_problems(before, page)
    assert f"pfn {page.pfn} did not move but slot 1 of {tree} still holds it" in "\n".join(unmoved)
    page.mapping = record.inode.i_mapping
    record.inode.i_mapping.page_tree[1] = None
    changes = oracle.changes(before, oracle.snapshot(page))
    assert f"pfn {page.pfn}: slot 1 of {tree} no longer points at it (it is empty)" in changes


def test_the_event_of_a_failed_page_gives_the_reason_the_report_gives() -> None:
    """``why`` is empty only for a page that moved; a failed one's is the report's reason."""
    command = [sys.executable, "-m", "fsaops", "migrate", str(SMALL), "--json"]
    proc = guarded.run([*command, "--log-format", "json", "--log-level", "debug"])
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    events = [json.loads(line) for line in proc.stderr.splitlines()]
    attempts = [e for e in events if e["event"] == "mm_migrate_page"]
    assert report["pages_failed"], "the scenario has a page that fails"
    for failed in report["pages_failed"]:
        last = [e for e in attempts if e["pfn"] == failed["pfn"]][-1]
        assert last["why"] == failed["reason"] == "migratepage returned EIO"
    assert all(bool(e["why"]) == bool(e["rc"]) for e in attempts), attempts
    # The trace shows the path and the errno already: its try step does not repeat them.
    traced = guarded.run([*command[:-1], "--no-progress", "--trace", "mount2/meta:0"])
    (step,) = [line for line in traced.stdout.splitlines() if "rc -5 (EIO)" in line]
    assert "returned EIO" not in step


def test_a_type_is_a_buffer_cache_only_if_it_fills_its_mapping_itself(registry: Registry) -> None:
    """hooks.md's ``myfs`` (a table with only ``migratepage``) is no buffer cache: mounting it
    is refused for what it lacks, not for holding more than one buffer-cache file."""
    myfs = FileSystemType(
        name="myfs",
        modes={"default": AddressSpaceOperations(name="myfs_aops", migratepage=migrate_page)},
    )
    assert not myfs.is_buffer_cache("default")
    assert attrs.evolve(myfs, read_metadata=lambda inode, index: None).is_buffer_cache("default")
    assert registry.filesystems["xfs_buftarg"].is_buffer_cache("default")
    with_myfs = attrs.evolve(registry, filesystems={**registry.filesystems, "myfs": myfs})
    for files in (1, 2):
        text = f'[[mount]]\nfs = "myfs"\nfiles = {files}'
        with pytest.raises(ConfigError) as info:
            plan_scenario(parse_config(text, "s.toml"), with_myfs, "s.toml")
        message = str(info.value)
        assert "buffer-cache mapping" not in message
        assert "myfs has no read_metadata to fill it as a buffer cache" in message
        assert "no file of it can be given data" in message


def test_a_page_written_and_dirtied_again_is_not_said_to_have_never_reached_the_disk() -> None:
    """Before, a ``writepage`` that wrote the page and set ``PG_dirty`` again was said to have
    left the page's data off the disk, which held it."""
    from fsaops.buffer import nobh_writepage
    from fsaops.plugins import load_plugins
    from fsaops_ext2 import EXT2, ext2_nobh_aops

    def writepage(page: Page, wbc: object) -> int:
        rc = nobh_writepage(page, wbc)  # type: ignore[arg-type]
        page.flags |= PG.dirty
        return rc

    table = attrs.evolve(ext2_nobh_aops, name="redirty_aops", writepage=writepage, writepages=None)
    fstype = attrs.evolve(EXT2, name="redirty", modes={"default": table})
    world = World(registry=load_plugins(cli=["ext2"]), nodes=2, node_pages=64)
    record = world.create_file(world.mount(fstype, "default", block_size=4096))
    world.load_file(record, 3)  # on disk, as a scenario's files are
    world.dirty_range(record, range(3))
    proof = prove_durability(world)
    assert not proof.holds
    assert len(proof.problems) == 3, proof.problems
    for problem in proof.problems:
        assert problem.endswith(
            "(redirty_aops): still dirty after sync, though the disk holds its data: it was "
            "written and dirtied again, so no sync leaves it clean"
        ), problem
