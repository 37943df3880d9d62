"""A file keeps the table its mount gave it, and the size it was written to.

A ``migratepage`` is given two pages, not the file: one that swaps the
file's table (``mapping->a_ops``) for one without ``writepage``, in its own
file or another mount's, leaves dirty pages nothing can write back; one
that grows ``i_size`` has every ``read(2)`` return bytes nobody wrote past
the file's end.  The invariants name the swapped table, the durability
proof judges a file's backing store by its mount's table (not "in memory
only"), and the read-back names the size.
"""

from __future__ import annotations

import re

import pytest

from ext2_once import SCENARIO, Act, once
from fsaops.aops import AddressSpaceOperations
from fsaops.config import parse_config
from fsaops.debug import check_kernel
from fsaops.fs import Inode
from fsaops.plugins import Registry
from fsaops.proofs import prove_durability
from fsaops.report import Report
from fsaops.scenario import run_scenario
from fsaops.world import World


def _no_writepage(table: AddressSpaceOperations, name: str) -> AddressSpaceOperations:
    """``table`` without ``writepage`` (nor ``writepages``, ``sync_page``...), named ``name``."""
    return AddressSpaceOperations(
        name=name,
        readpage=table.readpage,
        prepare_write=table.prepare_write,
        commit_write=table.commit_write,
        migratepage=table.migratepage,
    )


def _swap_own(name: str) -> Act:
    def act(inode: Inode) -> None:
        inode.i_mapping.a_ops = _no_writepage(inode.i_mapping.a_ops, name)

    return act


def _swap_other_mounts(inode: Inode) -> None:
    for sb in inode.i_sb.kernel.super_blocks:
        if sb is not inode.i_sb:
            for other in sb.inodes:
                other.i_mapping.a_ops = _no_writepage(sb.a_ops, sb.a_ops.name)


def _grow(inode: Inode) -> None:
    inode.i_size += 3 * 4096


def _run(registry: Registry, act: Act) -> Report:
    return run_scenario(parse_config(SCENARIO, "s.toml"), once(registry, act), source="s.toml")


# -- the table ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "said"),
    [
        ("nowrite_aops", "nowrite_aops, not its mount's alt_aops"),
        ("alt_aops", "another table named alt_aops, not its mount's"),
    ],
    ids=["another-name", "the-same-name"],
)
def test_a_table_migratepage_swapped_in_breaks_an_invariant(
    registry: Registry, name: str, said: str
) -> None:
    report = _run(registry, _swap_own(name))
    assert not report.ok
    (line,) = report.invariants
    assert re.fullmatch(
        rf"mount0/file[01]'s a_ops is {said} \(it lacks writepage, sync_page\): a file keeps "
        "the table its mount gave it, and plugin code swapped it",
        line,
    ), line


def test_the_durability_proof_does_not_put_a_swapped_files_pages_in_memory_only(
    registry: Registry,
) -> None:
    report = _run(registry, _swap_own("alt_aops"))
    assert report.proofs is not None
    durability = report.proofs.durability
    assert durability.memory_only == {}
    assert not durability.holds
    assert durability.problems
    for line in durability.problems:
        assert re.fullmatch(
            r"mount\[0\] \(alt default\) file [01] page \d+ \(mount0/file[01]/page\d+\) "
            r"\(alt_aops\): still dirty after sync, so its data never reached the disk: its "
            r"file's table is not its mount's and has no writepage, so the page can never be "
            r"written back",
            line,
        ), line


def test_a_table_swapped_in_another_mounts_file_is_named_there(registry: Registry) -> None:
    report = _run(registry, _swap_other_mounts)
    assert report.invariants == (
        "mount1/file0's a_ops is another table named ext2_aops, not its mount's (it lacks "
        "writepage, sync_page): a file keeps the table its mount gave it, and plugin code "
        "swapped it",
    )
    assert report.proofs is not None
    durability = report.proofs.durability
    assert durability.memory_only == {}
    assert not durability.holds


def test_the_proof_judges_a_file_by_its_mounts_table(registry: Registry) -> None:
    """A file on disk whose table lost ``writepage`` is not a memory-only file."""
    world = World(registry=registry, node_pages=64)
    sb = world.mount("ext2")
    record = world.create_file(sb)
    world.load_file(record, 4)
    world.dirty_range(record, [1, 2])
    inode = record.inode
    inode.i_mapping.a_ops = _no_writepage(sb.a_ops, "nowrite_aops")
    assert check_kernel(world.kernel) == [
        f"{inode.name}'s a_ops is nowrite_aops, not its mount's ext2_aops (it lacks writepage, "
        "sync_page): a file keeps the table its mount gave it, and plugin code swapped it"
    ]
    proof = prove_durability(world)
    assert proof.memory_only == {}
    assert proof.problems == tuple(
        f"{record.describe(i)} (nowrite_aops): still dirty after sync, so its data never "
        "reached the disk: its file's table is not its mount's ext2_aops and has no "
        "writepage, so the page can never be written back"
        for i in (1, 2)
    )


def test_every_built_in_mount_keeps_its_table(registry: Registry) -> None:
    """No false alarm: every mode of every built-in filesystem, files written and loaded."""
    world = World(registry=registry, node_pages=512)
    for fs in ("ext2", "ext3", "xfs", "xfs_buftarg"):
        for mode in registry.filesystems[fs].modes:
            sb = world.mount(fs, mode)
            record = world.create_file(sb)
            if record.meta:
                world.fill_buffer_cache(record, 2)
            else:
                world.load_file(record, 2)
    assert check_kernel(world.kernel) == []


# -- the size -------------------------------------------------------------------------


def test_a_size_migratepage_grew_is_named_by_the_read_back(registry: Registry) -> None:
    report = _run(registry, _grow)
    integrity = report.integrity
    assert integrity.corrupted == 3
    assert integrity.lost == 0
    (line,) = integrity.problems
    assert re.fullmatch(
        r"mount\[0\] \(alt default\) file ([01]) \(mount0/file\1\): corrupted: the file's "
        r"size \(i_size\) is 45056 bytes where 32768 were written, so a read returns 12288 "
        r"bytes of zeroes past its end",
        line,
    ), line
    assert not report.ok


def test_a_size_grown_inside_the_last_page_counts_that_page(registry: Registry) -> None:
    world = World(registry=registry, node_pages=64)
    record = world.create_file(world.mount("ext2"))
    world.load_file(record, 2)
    assert world.oracle.read_back(world).problems == ()
    record.inode.i_size += 100
    found = world.oracle.read_back(world)
    assert (found.lost, found.corrupted) == (0, 1)
    assert found.problems == (
        f"{record.key}: corrupted: the file's size (i_size) is 8292 bytes "
        "where 8192 were written, so a read returns 100 bytes of zeroes past its end",
    )


def test_bytes_past_the_written_end_that_are_not_zeroes_are_said_so(registry: Registry) -> None:
    world = World(registry=registry, node_pages=64)
    sb = world.mount("ext2")
    record = world.create_file(sb)
    world.write_file(record, 3)
    record.npages = 2  # the world wrote 2 pages; the file holds a third
    record.gens.pop()
    found = world.oracle.read_back(world)
    assert found.problems == (
        f"{record.key}: corrupted: the file's size (i_size) is 12288 bytes "
        "where 8192 were written, so a read returns 4096 bytes past its end that were never "
        "written",
    )
