"""The judges keep their own records of what plugin code could rewrite.

A mount is given its table when it is mounted; the kernel records that
table and its members then, in a ledger of its own, not on the super block
plugin code is handed.  A ``migratepage`` that swaps the mount's own
``sb.a_ops`` (and every file's with it) for a table without ``writepage``,
or nulls ``writepage`` in place on the one frozen table the mount and its
files share, breaks an invariant naming the mount and the member, and the
durability proof judges the files' backing store by the recorded table:
their dirty pages are never written, not "in memory only".

The fault injector keeps the ledger of the write errors it made: which
``AS_*`` bits of which mapping, until an ``fsync`` reports them.
``mapping.injected_flags`` is a read-only view of it, so a table cannot
mark its own ``AS_EIO`` as injected; and an injected error that plugin code
clears before the next ``fsync`` reports it is a lost error report, which
the proof names with the file and the table member whose code cleared it.
"""

from __future__ import annotations

import contextlib
import re

import attrs
import pytest

from ext2_once import SCENARIO, Act, once
from fsaops.aops import AddressSpaceOperations, member_name
from fsaops.config import parse_config
from fsaops.debug import check_kernel
from fsaops.fault_inject import FaultInjector
from fsaops.fs import Inode
from fsaops.mapping import AS_EIO, AS_ENOSPC, AddressSpace
from fsaops.memory_hotplug import migrate_node
from fsaops.page import Page
from fsaops.plugins import Registry
from fsaops.proofs import prove_durability
from fsaops.report import Report
from fsaops.scenario import run_scenario
from fsaops.world import File, World
from fsaops.writeback import WritebackControl, set_page_dirty, write_one_page


def _run(registry: Registry, act: Act) -> Report:
    return run_scenario(parse_config(SCENARIO, "s.toml"), once(registry, act), source="s.toml")


def _swap_the_mounts_table(inode: Inode) -> None:
    """``sb->a_ops`` and every file's swapped for a copy without ``writepage`` nor ``sync_page``."""
    sb = inode.i_sb
    new = attrs.evolve(sb.a_ops, writepage=None, sync_page=None, writepages=None)
    sb.a_ops = new
    for each in sb.inodes:
        each.i_mapping.a_ops = new


def _null_in_place(inode: Inode) -> None:
    """``writepage`` and ``sync_page`` nulled on the one table the mount and its files share."""
    table = inode.i_mapping.a_ops
    object.__setattr__(table, "writepage", None)
    object.__setattr__(table, "sync_page", None)


_MEMBER = r"[\w.<>]+"


# -- the mount's table ------------------------------------------------------------------


def test_a_mounts_own_table_swapped_breaks_an_invariant_naming_the_mount(
    registry: Registry,
) -> None:
    report = _run(registry, _swap_the_mounts_table)
    assert not report.ok
    mount, *files = report.invariants
    assert mount == (
        "mount0's a_ops is another table named alt_aops, not the one it was mounted with (it "
        "lacks writepage, sync_page): a mount keeps the table its type gave it, and plugin "
        "code swapped it"
    )
    assert files == [
        f"mount0/file{n}'s a_ops is another table named alt_aops, not its mount's (it lacks "
        "writepage, sync_page): a file keeps the table its mount gave it, and plugin code "
        "swapped it"
        for n in (0, 1)
    ]


def test_the_proof_judges_a_mount_whose_table_was_swapped_by_the_table_it_was_given(
    registry: Registry,
) -> None:
    report = _run(registry, _swap_the_mounts_table)
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


def test_a_member_of_the_mounts_table_nulled_in_place_breaks_an_invariant(
    registry: Registry,
) -> None:
    report = _run(registry, _null_in_place)
    assert not report.ok
    (line,) = report.invariants
    assert re.fullmatch(
        rf"mount0's table alt_aops is not as it was when it was mounted \(writepage was "
        rf"{_MEMBER}, is None; sync_page was {_MEMBER}, is None\): a mount keeps the table its "
        r"type gave it, and plugin code changed it in place",
        line,
    ), line
    assert "writepage was fsaops_ext2." in line or "writepage was fsaops.buffer." in line


def test_the_proof_does_not_put_the_pages_of_a_table_nulled_in_place_in_memory_only(
    registry: Registry,
) -> None:
    report = _run(registry, _null_in_place)
    assert report.proofs is not None
    durability = report.proofs.durability
    assert durability.memory_only == {}
    assert not durability.holds
    assert durability.problems
    for line in durability.problems:
        assert re.fullmatch(
            r"mount\[0\] \(alt default\) file [01] page \d+ \(mount0/file[01]/page\d+\) "
            r"\(alt_aops\): still dirty after sync, so its data never reached the disk: its "
            r"mount's alt_aops no longer has the writepage it was mounted with, so the page "
            r"can never be written back",
            line,
        ), line
    assert report.exit_status != 0


def _private_ext2(registry: Registry, name: str) -> tuple[World, File]:
    """A world with one file of 4 loaded pages, 1 and 2 dirty, on a mount of its own table.

    The table is a copy of ext2's, named ``name``, so that a test may change it in place.
    """
    ext2 = registry.filesystems["ext2"]
    table = attrs.evolve(ext2.modes["default"], name=name)
    world = World(registry=registry, node_pages=64)
    sb = world.mount(attrs.evolve(ext2, name="own", modes={"default": table}))
    record = world.create_file(sb)
    world.load_file(record, 4)
    world.dirty_range(record, [1, 2])
    return world, record


def test_a_member_changed_in_place_to_another_function_is_named_with_both(
    registry: Registry,
) -> None:
    world, record = _private_ext2(registry, "own_aops")
    sb = record.inode.i_sb
    table = sb.a_ops

    def other_writepage(page: Page, wbc: WritebackControl, /) -> int:
        raise AssertionError("not called")

    was = member_name(table.writepage)
    assert was is not None
    object.__setattr__(table, "writepage", other_writepage)
    (line,) = check_kernel(world.kernel)
    assert line == (
        f"{sb.name}'s table own_aops is not as it was when it was mounted (writepage was "
        f"{was}, is {__name__}.{other_writepage.__qualname__}): "
        "a mount keeps the table its type gave it, and plugin code changed it in place"
    )


def test_a_mounts_table_renamed_in_place_is_named(registry: Registry) -> None:
    world, record = _private_ext2(registry, "own_aops")
    sb = record.inode.i_sb
    object.__setattr__(sb.a_ops, "name", "other_aops")
    assert check_kernel(world.kernel) == [
        f"{sb.name}'s table own_aops is not as it was when it was mounted (name was own_aops, "
        "is other_aops): a mount keeps the table its type gave it, and plugin code changed it "
        "in place"
    ]


def test_the_proof_judges_by_the_record_not_by_sb_a_ops(registry: Registry) -> None:
    """The mount's table and its file's swapped after the files were written: not memory only."""
    world, record = _private_ext2(registry, "own_aops")
    sb = record.inode.i_sb
    nowrite = AddressSpaceOperations(
        name="own_aops",
        readpage=sb.a_ops.readpage,
        prepare_write=sb.a_ops.prepare_write,
        commit_write=sb.a_ops.commit_write,
        migratepage=sb.a_ops.migratepage,
    )
    sb.a_ops = nowrite
    record.inode.i_mapping.a_ops = nowrite
    assert check_kernel(world.kernel) == [
        f"{sb.name}'s a_ops is another table named own_aops, not the one it was mounted with "
        "(it lacks writepage, sync_page): a mount keeps the table its type gave it, and "
        "plugin code swapped it",
        f"{record.inode.name}'s a_ops is another table named own_aops, not its mount's (it "
        "lacks writepage, sync_page): a file keeps the table its mount gave it, and plugin "
        "code swapped it",
    ]
    proof = prove_durability(world)
    assert proof.memory_only == {}
    assert proof.problems == tuple(
        f"{record.describe(i)} (own_aops): still dirty after sync, so its data never reached "
        "the disk: its file's table is not its mount's and has no writepage, so the page can "
        "never be written back"
        for i in (1, 2)
    )
    assert world.kernel.mount_table(sb).name == "own_aops"
    assert world.kernel.mount_table(sb).member("writepage") is not None


def test_every_built_in_mount_keeps_its_record_through_a_migration(registry: Registry) -> None:
    """No false alarm: every mode of every built-in filesystem, and swap, migrated and synced."""
    world = World(registry=registry, node_pages=1024, swap_slots=64)
    for fs in ("ext2", "ext3", "xfs", "xfs_buftarg"):
        for mode in registry.filesystems[fs].modes:
            sb = world.mount(fs, mode)
            record = world.create_file(sb)
            if record.meta:
                world.fill_buffer_cache(record, 2)
            else:
                world.load_file(record, 2)
                if record.page_cache:
                    world.dirty_range(record, [1])
    migrate_node(world.kernel, 0, 1)
    world.kernel.run_until_idle()
    for sb in world.kernel.super_blocks:
        assert world.kernel.mount_table(sb).table is sb.a_ops
        assert world.kernel.mount_table(sb).changed() == []
    assert check_kernel(world.kernel) == []
    assert prove_durability(world).holds


# -- injected write errors ----------------------------------------------------------------


def _journalled_with_injected_errors(registry: Registry) -> tuple[World, File]:
    """An ext3 ``data=journal`` file, all dirty, migrated with injected ``writepage`` errors."""
    world = World(registry=registry, node_pages=256, swap_slots=64)
    sb = world.mount("ext3", "journal")
    inode = world.file(sb, 2, clean=True)
    world.kernel.run_until_idle()
    world.kernel.sched.run_for(200)
    for page in inode.i_mapping.pages():
        set_page_dirty(page)
    record = next(r for r in world.files if r.inode is inode)
    faults = FaultInjector(writepage_error=0.5, seed=1, armed=True)
    world.kernel.faults = faults
    migrate_node(world.kernel, 0, 1)
    faults.armed = False
    assert faults.injected.get("writepage_error", 0) >= 1
    assert record.inode.i_mapping.flags & AS_EIO
    assert record.inode.i_mapping.injected_flags == AS_EIO
    return world, record


def test_injected_flags_cannot_be_set(registry: Registry) -> None:
    """A table cannot mark its own error as injected: the attribute is the ledger's view."""
    _world, record = _journalled_with_injected_errors(registry)
    mapping = record.inode.i_mapping
    with pytest.raises(AttributeError, match="plugin code may not mark an error as injected"):
        mapping.injected_flags |= AS_ENOSPC
    assert mapping.injected_flags == AS_EIO


def _plants_injected_eio(newpage: Page, page: Page) -> None:
    mapping = newpage.mapping
    assert isinstance(mapping, AddressSpace)
    mapping.flags |= AS_EIO
    with contextlib.suppress(AttributeError):
        mapping.injected_flags |= AS_EIO


def test_a_stray_eio_a_table_tried_to_mark_injected_fails_the_run(registry: Registry) -> None:
    """A table sets ``AS_EIO`` and tries to mark it injected: the proof says it is its own."""
    ext2 = registry.filesystems["ext2"]
    a_ops = ext2.modes["default"]
    migratepage = a_ops.migratepage
    assert migratepage is not None

    def plant_migratepage(newpage: Page, page: Page, /) -> int:
        rc = migratepage(newpage, page)
        if rc == 0:
            _plants_injected_eio(newpage, page)
        return rc

    table = attrs.evolve(a_ops, name="plant_aops", migratepage=plant_migratepage)
    plant = attrs.evolve(ext2, name="plantfs", modes={"default": table})
    with_plant = attrs.evolve(registry, filesystems={**registry.filesystems, "plantfs": plant})
    text = (
        '[kernel]\nnode_memory = "4MiB"\n[[mount]]\nfs = "plantfs"\npages = 8\nfiles = 1\n'
        "[workload]\nseed = 3\ndirty = 0.5\n[faults]\nwritepage_error = 0.5\n"
    )
    report = run_scenario(parse_config(text, "s.toml"), with_plant, source="s.toml")
    assert report.proofs is not None
    durability = report.proofs.durability
    assert not durability.holds
    assert durability.problems[0] == (
        "fsync of mount[0] (plantfs default) file 0 (mount0/file0, plant_aops) said -EIO: its "
        "mapping had AS_EIO set, a write error recorded since the last fsync that no "
        "injected fault made"
    )
    assert report.exit_status != 0


def _clearing_table(registry: Registry) -> tuple[AddressSpaceOperations, list[bool]]:
    """ext2's table as ``clear_aops``, whose ``writepage``, once armed, clears every ``AS_*``."""
    a_ops = registry.filesystems["ext2"].modes["default"]
    writepage = a_ops.writepage
    assert writepage is not None
    armed: list[bool] = []

    def clearing_writepage(page: Page, wbc: WritebackControl, /) -> int:
        if armed:
            mapping = page.mapping
            assert isinstance(mapping, AddressSpace)
            for sb in mapping.kernel.super_blocks:
                for inode in sb.inodes:
                    inode.i_mapping.flags &= ~(AS_EIO | AS_ENOSPC)
        return writepage(page, wbc)

    return attrs.evolve(a_ops, name="clear_aops", writepage=clearing_writepage), armed


def test_an_injected_error_another_tables_writepage_cleared_is_a_lost_report(
    registry: Registry,
) -> None:
    world, record = _journalled_with_injected_errors(registry)
    table, armed = _clearing_table(registry)
    ext2 = registry.filesystems["ext2"]
    sb = world.mount(attrs.evolve(ext2, name="clearfs", modes={"default": table}))
    other = world.create_file(sb)
    world.load_file(other, 1)
    world.dirty_range(other, [0])
    armed.append(True)
    page = other.inode.i_mapping.lookup(0)
    assert page is not None
    assert write_one_page(page) == 0
    world.kernel.run_until_idle()
    mapping = record.inode.i_mapping
    assert not mapping.flags & AS_EIO
    proof = prove_durability(world)
    assert proof.failures == 1
    (line,) = proof.problems
    assert re.fullmatch(
        rf"fsync of {re.escape(record.label)} \({re.escape(record.key)}, "
        r"ext3_journalled_aops\) said 0, not -EIO: its mapping had AS_EIO set by a write "
        r"error the fault injector made, and clear_aops\.writepage \([\w.]*_clearing_table"
        r"\.<locals>\.clearing_writepage\) cleared it before an fsync reported it: the kernel "
        r"reports such an error once, to the next fsync, and that report was lost",
        line,
    ), line


def test_an_injected_error_cleared_behind_the_flags_back_is_a_lost_report(
    registry: Registry,
) -> None:
    """Cleared where no setter sees it: the proof still finds the ledger's bit gone."""
    world, record = _journalled_with_injected_errors(registry)
    mapping = record.inode.i_mapping
    object.__setattr__(mapping, "_flags", 0)
    proof = prove_durability(world)
    assert proof.problems == (
        f"fsync of {record.label} ({record.key}, ext3_journalled_aops) said 0, not -EIO: its "
        "mapping had AS_EIO set by a write error the fault injector made, and plugin code "
        "cleared it before an fsync reported it: the kernel reports such an error once, to "
        "the next fsync, and that report was lost",
    )


def test_an_injected_error_the_fsync_reports_is_reported_once(registry: Registry) -> None:
    """No false alarm: the proof's fsync reports it; the ledger forgets it; nothing is lost."""
    world, record = _journalled_with_injected_errors(registry)
    mapping = record.inode.i_mapping
    faults = world.kernel.faults
    assert faults is not None
    proof = prove_durability(world)
    assert proof.holds, proof.problems
    assert mapping.injected_flags == 0
    assert faults.lost_reports(mapping) == []
