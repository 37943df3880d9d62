"""What ``fsync`` says about write errors, as 2.6.16 reports them, and the durability proof with it.

``wait_on_page_writeback_range`` reports ``-EIO`` for a page it waits on
that has ``PG_error`` (2.6.16 tests the bit and leaves it), then takes the
mapping's ``AS_ENOSPC`` and ``AS_EIO`` (each cleared as it is reported, so
one ``fsync`` says it).  A ``migratepage`` that plants either on a page or
mapping it was not asked about makes the next ``fsync`` fail, and the
durability proof says so, naming the file; a write error the fault
injector made, which the engine's retry wrote again, does not.
"""

from __future__ import annotations

from collections.abc import Callable
from errno import EIO, ENOSPC

import attrs
import pytest

from fsaops import buffer_migrate_page
from fsaops.config import parse_config
from fsaops.fault_inject import FaultInjector
from fsaops.mapping import AS_EIO, AS_ENOSPC, AddressSpace
from fsaops.memory_hotplug import migrate_node
from fsaops.page import PG, Page
from fsaops.plugins import Registry
from fsaops.proofs import prove_durability, snapshot_places
from fsaops.scenario import run_scenario
from fsaops.world import File, World
from fsaops.writeback import (
    filemap_fdatawait,
    filemap_write_and_wait,
    set_page_dirty,
    wait_on_page_writeback_range,
)
from fsaops_ext2 import EXT2, ext2_aops

Plant = Callable[[Page, Page], None]


def _ext2_file(registry: Registry, npages: int = 4) -> tuple[World, File]:
    """A world with one ext2 file of ``npages`` dirty pages."""
    world = World(registry=registry, node_pages=64)
    record = world.create_file(world.mount("ext2", block_size=1024))
    world.write_file(record, npages)
    return world, record


def _page(mapping: AddressSpace, index: int) -> Page:
    page = mapping.lookup(index)
    assert page is not None
    return page


# -- the writeback functions ------------------------------------------------------------


def test_a_page_with_pg_error_makes_the_wait_on_its_write_say_eio(registry: Registry) -> None:
    """The page is written, waited on, and reported; 2.6.16 leaves ``PG_error`` set."""
    world, record = _ext2_file(registry)
    mapping = record.inode.i_mapping
    _page(mapping, 2).flags |= PG.error
    assert filemap_write_and_wait(mapping) == -EIO
    assert _page(mapping, 2).flags & PG.error
    world.kernel.run_until_idle()
    # Nothing is under writeback now: the wait looks at no page, and says nothing.
    assert filemap_write_and_wait(mapping) == 0
    # Written again, the page is waited on again, and reported again.
    set_page_dirty(_page(mapping, 2))
    assert filemap_write_and_wait(mapping) == -EIO


def test_pg_error_on_a_page_the_wait_does_not_look_at_is_not_reported(
    registry: Registry,
) -> None:
    """Only pages under writeback in the range are looked at: a clean page's bit stays unsaid."""
    world, record = _ext2_file(registry)
    mapping = record.inode.i_mapping
    assert filemap_write_and_wait(mapping) == 0
    world.kernel.run_until_idle()
    _page(mapping, 1).flags |= PG.error
    assert filemap_write_and_wait(mapping) == 0
    set_page_dirty(_page(mapping, 1))
    set_page_dirty(_page(mapping, 3))
    from fsaops.writeback import filemap_fdatawrite

    assert filemap_fdatawrite(mapping) == 0
    assert wait_on_page_writeback_range(mapping, 2, 3) == 0  # page 1 is outside the range
    world.kernel.run_until_idle()


@pytest.mark.parametrize(
    ("bits", "said"),
    [(AS_EIO, -EIO), (AS_ENOSPC, -ENOSPC), (AS_EIO | AS_ENOSPC, -EIO)],
    ids=["AS_EIO", "AS_ENOSPC", "both-EIO-wins"],
)
def test_the_mappings_error_is_reported_once_then_cleared(
    registry: Registry, bits: int, said: int
) -> None:
    world, record = _ext2_file(registry)
    mapping = record.inode.i_mapping
    mapping.flags |= bits
    assert filemap_write_and_wait(mapping) == said
    assert not mapping.flags & (AS_EIO | AS_ENOSPC)
    world.kernel.run_until_idle()
    assert filemap_write_and_wait(mapping) == 0


def test_an_empty_file_keeps_its_error_for_a_later_fsync(registry: Registry) -> None:
    """No pages: ``filemap_write_and_wait`` does nothing; size 0: ``filemap_fdatawait`` neither."""
    world = World(registry=registry, node_pages=64)
    record = world.create_file(world.mount("ext2", block_size=1024))
    mapping = record.inode.i_mapping
    mapping.flags |= AS_EIO
    assert filemap_write_and_wait(mapping) == 0
    assert filemap_fdatawait(mapping) == 0
    assert mapping.flags & AS_EIO


# -- the durability proof ---------------------------------------------------------------


def _planting(plant: Plant) -> Callable[[Page, Page], int]:
    """``buffer_migrate_page``, then ``plant`` once, after the first page moved."""
    done: list[bool] = []

    def migratepage(newpage: Page, page: Page) -> int:
        rc = buffer_migrate_page(newpage, page)
        if rc == 0 and not done:
            done.append(True)
            plant(newpage, page)
        return rc

    return migratepage


PLANTED: list[int] = []


def _neighbour_error(newpage: Page, page: Page) -> None:
    """``PG_error`` on the page next to the one moved (index 1 of 0, 2 of 3)."""
    mapping = newpage.mapping
    assert isinstance(mapping, AddressSpace)
    PLANTED[:] = [newpage.index ^ 1]
    _page(mapping, newpage.index ^ 1).flags |= PG.error


def _mapping_flag(bit: int) -> Plant:
    def plant(newpage: Page, page: Page) -> None:
        mapping = newpage.mapping
        assert isinstance(mapping, AddressSpace)
        mapping.flags |= bit

    return plant


def _migrated(registry: Registry, plant: Plant) -> tuple[World, File, str]:
    world, record = _ext2_file(registry)
    table = attrs.evolve(ext2_aops, name="plant_aops", migratepage=_planting(plant))
    record.inode.i_mapping.a_ops = table
    places = snapshot_places(world, 0)
    migrate_node(world.kernel, 0, 1)
    proof = prove_durability(world, moved_by=places)
    assert proof.failures == 1, proof.problems
    return world, record, proof.problems[0]


def test_pg_error_planted_on_a_dirty_neighbour_fails_the_proof(registry: Registry) -> None:
    _, record, problem = _migrated(registry, _neighbour_error)
    assert problem == (
        f"fsync of {record.label} ({record.key}, plant_aops) said -EIO: page {PLANTED[0]} has "
        "PG_error (moved by plant_aops), which the wait for its write reports"
    )


@pytest.mark.parametrize(
    ("bit", "name", "said"), [(AS_EIO, "AS_EIO", "-EIO"), (AS_ENOSPC, "AS_ENOSPC", "-ENOSPC")]
)
def test_an_error_planted_on_the_mapping_fails_the_proof(
    registry: Registry, bit: int, name: str, said: str
) -> None:
    _, record, problem = _migrated(registry, _mapping_flag(bit))
    assert problem == (
        f"fsync of {record.label} ({record.key}, plant_aops) said {said}: its mapping had "
        f"{name} set, a write error recorded since the last fsync that no injected fault made"
    )


def _scenario(registry: Registry, plant: Plant, faults: str = "") -> int:
    table = attrs.evolve(ext2_aops, name="plant_aops", migratepage=_planting(plant))
    fs = attrs.evolve(EXT2, name="plantfs", modes={"default": table})
    with_fs = attrs.evolve(registry, filesystems={**registry.filesystems, "plantfs": fs})
    text = (
        '[kernel]\nnode_memory = "4MiB"\n[[mount]]\nfs = "plantfs"\npages = 16\nfiles = 1\n'
        "[swap]\nslots = 0\n[processes]\ncount = 0\n[workload]\ndirty = 1.0\n" + faults
    )
    report = run_scenario(parse_config(text, "s.toml"), with_fs, source="s.toml")
    assert report.proofs is not None
    durability = report.proofs.durability
    if durability.holds:
        return report.exit_status
    assert durability.failures == 1
    assert durability.problems[0].startswith("fsync of mount[0] (plantfs default) file 0 (")
    assert "(mount0/file0, plant_aops) said -EIO: " in durability.problems[0]
    assert report.exit_status != 0
    return report.exit_status


@pytest.mark.parametrize(
    "plant", [_neighbour_error, _mapping_flag(AS_EIO)], ids=["PG_error", "AS_EIO"]
)
def test_a_plain_run_whose_table_plants_an_error_fails(registry: Registry, plant: Plant) -> None:
    assert _scenario(registry, plant) != 0


def _nothing(newpage: Page, page: Page) -> None:
    pass


def test_a_plain_run_of_the_same_table_without_the_plant_is_ok(registry: Registry) -> None:
    assert _scenario(registry, _nothing) == 0


# -- injected write errors ---------------------------------------------------------------


def _journalled_dirty(registry: Registry) -> tuple[World, File]:
    """An ext3 ``data=journal`` file (no ``migratepage``: ``pageout`` writes it), all dirty."""
    world = World(registry=registry, node_pages=256, swap_slots=64)
    sb = world.mount("ext3", "journal")
    inode = world.file(sb, 2, clean=True)
    world.kernel.run_until_idle()
    world.kernel.sched.run_for(200)
    for page in inode.i_mapping.pages():
        set_page_dirty(page)
    record = next(r for r in world.files if r.inode is inode)
    return world, record


def test_an_injected_write_error_the_retry_wrote_again_does_not_fail_the_proof(
    registry: Registry,
) -> None:
    """The injected ``writepage`` failure sets ``AS_EIO``, as the kernel's would; the next
    fsync reports it once, and the proof knows it is the injector's, not the table's."""
    world, record = _journalled_dirty(registry)
    faults = FaultInjector(writepage_error=0.5, seed=1, armed=True)
    world.kernel.faults = faults
    migrate_node(world.kernel, 0, 1)
    faults.armed = False
    assert faults.injected.get("writepage_error", 0) >= 1
    mapping = record.inode.i_mapping
    assert mapping.flags & AS_EIO
    proof = prove_durability(world)
    assert proof.holds, proof.problems
    assert not mapping.flags & AS_EIO
    assert not mapping.injected_flags


def test_a_planted_error_is_still_seen_in_a_run_with_injected_write_errors(
    registry: Registry,
) -> None:
    """``AS_ENOSPC`` no injected fault made fails the proof even after injected ``AS_EIO``."""
    world, record = _journalled_dirty(registry)
    faults = FaultInjector(writepage_error=0.5, seed=1, armed=True)
    world.kernel.faults = faults
    migrate_node(world.kernel, 0, 1)
    faults.armed = False
    mapping = record.inode.i_mapping
    assert mapping.flags & AS_EIO
    mapping.flags |= AS_ENOSPC
    proof = prove_durability(world)
    assert proof.failures == 1
    assert proof.problems[0].endswith(
        "said -EIO: its mapping had AS_ENOSPC set, a write error recorded since the last "
        "fsync that no injected fault made"
    )
