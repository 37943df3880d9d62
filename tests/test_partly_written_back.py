"""A page whose blocks hold its newest data only in part: a dirty state was lost.

A ``migratepage`` that drops ``BH_dirty`` from some buffers of a dirty
page (but not ``PG_dirty``) has writeback write only the others: the disk
then holds, block by block, the page's newest data and its older
generation.  That is a dirty state lost, not damage or another page's data.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs
import pytest

from fsaops import FileSystemType, buffer_migrate_page
from fsaops.buffer import BH, buffers
from fsaops.mapping import truncate_inode_pages
from fsaops.oracle import Oracle
from fsaops.page import PG, Page
from fsaops.plugins import Registry
from fsaops.proofs import prove_durability
from fsaops.world import File, World
from fsaops.writeback import filemap_write_and_wait


def _dropping(which: tuple[int, ...]) -> Callable[[Page, Page], int]:
    """``buffer_migrate_page``, then buffers ``which`` of the new page lose ``BH_dirty``."""

    def migratepage(newpage: Page, page: Page) -> int:
        rc = buffer_migrate_page(newpage, page)
        if rc == 0 and newpage.flags & PG.private:
            for k, bh in enumerate(buffers(newpage.private)):
                if k in which:
                    bh.b_state &= ~BH.dirty
        return rc

    return migratepage


def _moved_dirty(
    registry: Registry, which: tuple[int, ...], block_size: int, *, rewrites: int = 1
) -> tuple[World, File]:
    """A file page rewritten and written back ``rewrites`` times, then dirtied, moved and synced.

    The table that moves it drops ``BH_dirty`` from buffers ``which``.
    """
    ext2 = registry.filesystem("ext2")
    table = attrs.evolve(
        ext2.modes["default"], name="drops_buffer_dirty_aops", migratepage=_dropping(which)
    )
    fstype = FileSystemType(name="dropsdirty", modes={"default": table}, block_sizes=(block_size,))
    world = World(registry=registry, node_pages=64)
    sb = world.mount(fstype, block_size=block_size)
    record = world.create_file(sb)
    world.load_file(record, 2)
    for _ in range(rewrites):
        world.dirty_range(record, [0])
        filemap_write_and_wait(record.inode.i_mapping)
        world.kernel.run_until_idle()
    world.dirty_range(record, [0])
    run = world.migrate(list(record.inode.i_mapping.pages()))
    assert len(run.moved) == 2
    world.settle(run)
    filemap_write_and_wait(record.inode.i_mapping)  # writes the buffers still dirty
    world.kernel.run_until_idle()
    return world, record


@pytest.mark.parametrize(
    ("which", "block_size", "blocks"),
    [
        ((3,), 1024, "generation 1 in block 3 and generation 2 in blocks 0-2"),
        ((0,), 1024, "generation 1 in block 0 and generation 2 in blocks 1-3"),
        ((1, 3), 1024, "generation 1 in blocks 1, 3 and generation 2 in blocks 0, 2"),
        ((1,), 2048, "generation 1 in block 1 and generation 2 in block 0"),
    ],
)
def test_the_proof_says_a_dirty_state_was_lost_and_names_the_older_blocks(
    registry: Registry, which: tuple[int, ...], block_size: int, blocks: str
) -> None:
    world, record = _moved_dirty(registry, which, block_size)
    proof = prove_durability(world)
    assert proof.failures == 1
    assert proof.problems == (
        f"{record.describe(0)} (drops_buffer_dirty_aops): the disk does not hold the data "
        f"written last: a dirty state was lost (it reads back {blocks}, expected 2)",
    )


def test_blocks_of_several_older_generations_are_each_named(registry: Registry) -> None:
    """Each block holds the generation last written to it: 0, 1 or the newest."""
    world, record = _moved_dirty(registry, (3,), 1024, rewrites=2)
    # Block 2 as the first write left it: an older generation still.
    bdev = record.inode.i_sb.s_bdev
    first = world.contents.page(record.owner, 0, 0)
    bdev.write(record.inode.blocks[2], first[2048:3072])
    disk = Oracle.on_disk(record.inode, 0)
    assert world.diagnose(disk, record, 0) == (
        "lost: reads back generation 0 in block 2, generation 2 in block 3 and "
        "generation 3 in blocks 0-1, expected 3"
    )


def test_a_block_never_written_reads_back_zeroes_and_is_a_lost_dirty_state(
    registry: Registry,
) -> None:
    world, record = _moved_dirty(registry, (3,), 1024)
    disk = bytearray(Oracle.on_disk(record.inode, 0))
    disk[3072:] = bytes(1024)
    assert world.diagnose(bytes(disk), record, 0) == (
        "lost: reads back zeroes in block 3 and generation 2 in blocks 0-2, expected 2"
    )


def test_another_pages_block_or_damage_is_still_named_as_such(registry: Registry) -> None:
    """Only the page's own generations (or zeroes) make a lost dirty state."""
    world, record = _moved_dirty(registry, (3,), 1024)
    disk = Oracle.on_disk(record.inode, 0)
    damaged = bytearray(disk)
    damaged[1030] ^= 0x40  # block 1, which holds the newest data
    assert world.diagnose(bytes(damaged), record, 0) == "corrupted: reads back other bytes"
    other = world.contents.page(record.owner, 1, 0)
    assert (
        world.diagnose(disk[:2048] + other[2048:3072] + disk[3072:], record, 0)
        == "corrupted: reads back other bytes"
    )
    elsewhere = world.create_file(record.inode.i_sb)
    foreign = world.contents.page(elsewhere.owner, 0, 0)
    assert world.diagnose(foreign[:1024] + disk[1024:], record, 0) == (
        f"corrupted: holds the data of {elsewhere.key}/page0 (generation 0)"
    )


def test_reading_the_page_back_counts_it_lost(registry: Registry) -> None:
    """The integrity check (read everything back) calls it lost, not corrupted."""
    world, record = _moved_dirty(registry, (3,), 1024)
    mapping = record.inode.i_mapping
    for page in mapping.pages():
        assert not page.flags & PG.dirty
    truncate_inode_pages(mapping, 0)
    found = world.oracle.read_back(world)
    assert (found.lost, found.corrupted) == (1, 0)
    assert found.problems == (
        f"{record.describe(0)}: lost: reads back generation 1 in block 3 and "
        "generation 2 in blocks 0-2, expected 2",
    )
