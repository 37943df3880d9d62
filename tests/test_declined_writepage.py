"""A table whose ``writepage`` has nowhere to write (shmem with no swap) keeps its data in memory.

2.6.14's ``shmem_writepage`` with no swap redirties the page and returns
``WRITEPAGE_ACTIVATE``: such a table has a ``writepage`` yet no backing
store.  The durability proof checks its pages in memory only (still dirty,
the frame holding the data) and never speaks of a disk for them, while a
page of a disk-backed table that sync simply skipped still fails.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import attrs
import pytest

from fsaops.config import parse_config
from fsaops.memory_hotplug import migrate_node
from fsaops.page import Page, page_address, unlock_page
from fsaops.plugins import Registry
from fsaops.proofs import prove_durability, snapshot_places
from fsaops.scenario import run_scenario
from fsaops.world import World
from fsaops.writeback import (
    WRITEPAGE_ACTIVATE,
    WritebackControl,
    redirty_page_for_writepage,
)

EXAMPLE_PLUGIN = Path(__file__).parents[1] / "docs" / "examples" / "fsaops-example-plugin" / "src"
sys.path.insert(0, str(EXAMPLE_PLUGIN))

from fsaops_ramfs import RAMFS, ramfs_aops  # noqa: E402


def _shmem_writepage(page: Page, wbc: WritebackControl) -> int:
    """2.6.14 ``shmem_writepage`` with no swap: redirty, and keep the page (locked)."""
    redirty_page_for_writepage(wbc, page)
    return WRITEPAGE_ACTIVATE


SHMEMISH = attrs.evolve(
    RAMFS,
    name="shmemish",
    modes={
        "default": attrs.evolve(
            ramfs_aops, name="shmemish_aops", readpage=None, writepage=_shmem_writepage
        )
    },
)


def _shmem_world(npages: int = 6) -> World:
    world = World(nodes=2, node_pages=64)
    record = world.create_file(world.mount(SHMEMISH))
    world.write_file(record, npages)
    return world


def test_a_page_writepage_declines_is_checked_in_memory_and_holds() -> None:
    """Its pages stay dirty and hold their data: no "still dirty after sync", no disk."""
    world = _shmem_world()
    places = snapshot_places(world, 0)
    migrate_node(world.kernel, 0, 1)
    proof = prove_durability(world, moved_by=places)
    assert proof.holds, proof.problems
    assert proof.memory_only == {"shmemish_aops": 6}


def test_a_declined_page_whose_frame_lost_its_data_is_lost_from_memory() -> None:
    """The message of a declined page that no longer holds its data names memory, not a disk."""
    world = _shmem_world()
    places = snapshot_places(world, 0)
    migrate_node(world.kernel, 0, 1)
    record = world.files[0]
    page = world.page_of(record, 2)
    assert page is not None
    page_address(page)[:] = bytes(len(page_address(page)))
    proof = prove_durability(world, moved_by=places)
    assert proof.failures == 1
    assert proof.problems == (f"{record.describe(2)} (shmemish_aops): lost from memory",)
    assert proof.memory_only == {"shmemish_aops": 6}


@pytest.mark.parametrize(
    "writepage", [None, _shmem_writepage], ids=["its-own-writepage", "a-declining-writepage"]
)
def test_a_disk_backed_page_sync_skipped_still_fails(registry: Registry, writepage: Any) -> None:
    """A file whose data the world put on its disk has a disk: a page sync left dirty fails,
    whatever its ``writepage`` does when asked (ext2's writes it; one that declines keeps it)."""
    world = World(registry=registry, node_pages=64)
    sb = world.mount("ext2", "nobh", block_size=1024)
    changes: dict[str, Any] = {"writepages": lambda mapping, wbc: 0}
    if writepage is not None:
        changes["writepage"] = writepage
    sb.a_ops = attrs.evolve(sb.a_ops, **changes)
    record = world.create_file(sb)
    world.load_file(record, 8)
    world.dirty_range(record, [1, 5])
    proof = prove_durability(world)
    assert proof.memory_only == {}
    assert proof.problems == tuple(
        f"{record.describe(i)} (ext2_nobh_aops): still dirty after sync, so its data never "
        "reached the disk"
        for i in (1, 5)
    )


def test_a_scenario_of_a_table_whose_writepage_declines_is_ok(registry: Registry) -> None:
    """``fsaops migrate`` agrees with the testing kit: such a table passes."""
    with_shmem = attrs.evolve(registry, filesystems={**registry.filesystems, "shmemish": SHMEMISH})
    text = (
        '[kernel]\nnode_memory = "4MiB"\n[[mount]]\nfs = "shmemish"\npages = 32\nfiles = 2\n'
        "[swap]\nslots = 0\n[processes]\ncount = 1\nanon_pages = 0\n[workload]\nmapped = 0.3\n"
    )
    report = run_scenario(parse_config(text, "s.toml"), with_shmem, source="s.toml")
    assert report.proofs is not None
    durability = report.proofs.durability
    assert durability.holds, durability.problems
    assert durability.memory_only == {"shmemish_aops": 32}
    assert report.exit_status == 0


def _rd_writepage(page: Page, wbc: WritebackControl) -> int:
    """2.6.14 ``ramdisk_writepage``: redirty; ``WRITEPAGE_ACTIVATE`` only for reclaim, else 0."""
    redirty_page_for_writepage(wbc, page)
    if wbc.for_reclaim:
        return WRITEPAGE_ACTIVATE
    unlock_page(page)
    return 0


def test_a_page_a_ramdisk_like_writepage_keeps_dirty_is_checked_in_memory() -> None:
    """A ``writepage`` that keeps the page dirty and returns 0 has nowhere to write it either."""
    rdish = attrs.evolve(
        SHMEMISH,
        name="rdish",
        modes={"default": attrs.evolve(SHMEMISH.modes["default"], writepage=_rd_writepage)},
    )
    world = World(nodes=2, node_pages=64)
    record = world.create_file(world.mount(rdish))
    world.write_file(record, 6)
    places = snapshot_places(world, 0)
    migrate_node(world.kernel, 0, 1)
    proof = prove_durability(world, moved_by=places)
    assert proof.holds, proof.problems
    assert proof.memory_only == {"shmemish_aops": 6}


def _declines_moved_pages(real: Any) -> Any:
    """A ``writepage`` that writes pages on node 0 and keeps every other one dirty in memory."""

    def writepage(page: Page, wbc: WritebackControl) -> int:
        if page.node.nid == 0:
            return int(real(page, wbc))
        return _shmem_writepage(page, wbc)

    return writepage


def _run_ext2_variant(
    registry: Registry, name: str, mode: str, block_size: str = "", **table: Any
) -> Any:
    """Run 16 pages in 2 files, half dirty, on ext2 ``mode`` changed by ``table``, as ``name``.

    The mode's table is named ``{name}_aops``; sync goes through its
    ``writepage`` (no ``writepages``).  Returns the report, whose durability
    proof must have found every problem a page left dirty after sync.
    """
    ext2 = registry.filesystem("ext2")
    aops = attrs.evolve(ext2.modes[mode], name=f"{name}_aops", writepages=None, **table)
    fstype = attrs.evolve(ext2, name=name, modes={mode: aops}, default_mode=mode)
    with_it = attrs.evolve(registry, filesystems={**registry.filesystems, name: fstype})
    text = (
        f'[kernel]\nnode_memory = "4MiB"\n[[mount]]\nfs = "{name}"\npages = 16\nfiles = 2\n'
        f"{block_size}[swap]\nslots = 0\n[processes]\ncount = 0\nanon_pages = 0\n"
        "[workload]\ndirty = 0.5\n"
    )
    report = run_scenario(parse_config(text, "s.toml"), with_it, source="s.toml")
    assert report.proofs is not None
    durability = report.proofs.durability
    assert not durability.holds
    assert durability.memory_only == {}
    assert all("still dirty after sync" in problem for problem in durability.problems)
    assert report.exit_status == 1
    return report


def test_a_disk_backed_table_that_keeps_moved_pages_dirty_loses_their_data(
    registry: Registry,
) -> None:
    """Moved dirty pages that never reach the disk their file has fail the run."""
    real = registry.filesystem("ext2").modes["nobh"].writepage
    assert real is not None
    report = _run_ext2_variant(registry, "hider", "nobh", writepage=_declines_moved_pages(real))
    assert report.proofs.durability.failures == 8


def test_a_table_that_wrote_pages_at_build_has_a_disk_for_its_moved_pages(
    registry: Registry,
) -> None:
    """No ``readpage`` (the files are written with write(2)), a ``writepage`` that writes pages
    on node 0 and keeps moved ones dirty: it wrote the files when the world was built, so the
    moved pages it keeps dirty never reached a disk the file has (it said OK, "in memory only")."""
    real = registry.filesystem("ext2").modes["default"].writepage
    assert real is not None
    _run_ext2_variant(
        registry,
        "sneaky",
        "default",
        "block_size = 1024\n",
        readpage=None,
        readpages=None,
        writepage=_declines_moved_pages(real),
    )


def test_a_mount_whose_table_wrote_one_file_at_build_has_a_disk_for_every_file(
    registry: Registry,
) -> None:
    """A table that writes the first file back and keeps every page of the second dirty:
    the mount has a disk, so the second file's pages left dirty fail (it said OK, "in memory
    only", the disk decided file by file)."""
    real = registry.filesystem("ext2").modes["default"].writepage
    assert real is not None

    def writepage(page: Page, wbc: WritebackControl) -> int:
        if getattr(page.mapping, "name", "").endswith("/file0"):
            return int(real(page, wbc))
        return _rd_writepage(page, wbc)

    report = _run_ext2_variant(
        registry,
        "perfile",
        "default",
        "block_size = 1024\n",
        readpage=None,
        readpages=None,
        writepage=writepage,
    )
    durability = report.proofs.durability
    assert durability.failures == 8  # every page of the second file
    assert all("file1" in p for p in durability.problems)
