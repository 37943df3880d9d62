"""``workload.holes``: pages whose holes a process stored into through its mapping.

Every file ``fsaops migrate`` built had a block under each of its pages'
buffers inside the file.  A file written with blocks skipped has holes; a
page read in over them has buffers that are up to date and map no block,
and a process that maps the page and stores into it leaves its data there
only in memory, until ``writepage`` gives those buffers blocks.  A table
that takes a buffer mapping no block for a hole of zeroes passed every mode
but ``--debug-vm``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import hypothesis.strategies as st
import pytest
from hypothesis import given, settings

from fsaops.buffer import BH, BufferHead, buffers, generic_get_block
from fsaops.config import parse_config
from fsaops.config.checks import memory_needed
from fsaops.config.schema import WorkloadConfig
from fsaops.fs import SuperBlock, generic_file_read, generic_file_write
from fsaops.oracle import Oracle
from fsaops.page import PG, page_address
from fsaops.plugins import Registry
from fsaops.scenario import Scenario, plan_scenario
from fsaops.world import SetupError, World
from fsaops.writeback import filemap_fdatawrite
from guarded import fsaops, one_error_line
from inproc import (
    Mix,
    buggy_migrate,
    buggyfs_installed,
    every_table_scenario,
    migrate_json,
    migrate_mix,
    state_mixes,
)

TABLES = [
    ("ext2", "default", 1024),
    ("ext2", "nobh", 1024),
    ("ext3", "ordered", 2048),
    ("ext3", "writeback", 1024),
    ("ext3", "journal", 1024),
    ("xfs", "default", 1024),
]
IDS = [f"{fs}-{mode}" for fs, mode, _ in TABLES]
MODES = [(), ("--strict",), ("--debug-vm",)]


def _text(fs: str, mode: str, block_size: int, holes: float) -> str:
    return (
        f'[kernel]\nnode_memory = "2MiB"\n[plugins]\nload = ["ext2", "ext3", "xfs"]\n'
        f'[[mount]]\nfs = "{fs}"\nmode = "{mode}"\nblock_size = {block_size}\npages = 40\n'
        f"files = 4\n[processes]\ncount = 2\nanon_pages = 0\n[workload]\nseed = 5\n"
        f"dirty = 0.2\nmapped = 0.2\npinned = 0.05\ntail = 0.5\nholes = {holes}\n"
    )


def _scenario(registry: Registry, text: str) -> Scenario:
    plan = plan_scenario(parse_config(text), registry, "test", builtin=False)
    return Scenario(plan.config, registry, seed=5)


def _unattached(world: World, sb: SuperBlock) -> BufferHead:
    """A buffer head of a page of no file, for ``get_block`` to map."""
    return BufferHead(world.new_page(), 0, sb.s_blocksize, sb.s_bdev)


# -- the model: a hole inside a file ---------------------------------------------------------


def test_a_hole_inside_a_file_gets_a_block_of_its_own_when_written(registry: Registry) -> None:
    """``get_block`` with ``create`` allocates a hole inside the file, and says it is new."""
    world = World(registry=registry, node_pages=64)
    sb = world.mount("ext2", "default", block_size=1024, nr_blocks=64, name="m")
    record = world.create_file(sb, key="f", label="f", name="f")
    world.load_file(record, 3, nid=0)
    inode = record.inode
    assert world.make_holes(record, 1) == 3
    assert inode.blocks[4:8] == [inode.blocks[4], 0, 0, 0] and inode.blocks[4]
    bh = _unattached(world, sb)
    assert generic_get_block(inode, 5, bh, False) == 0 and not bh.b_state & BH.mapped
    used = set(inode.blocks)
    generic_get_block(inode, 5, bh, True)
    assert bh.b_state & BH.mapped and bh.b_state & BH.new
    assert bh.b_blocknr == inode.blocks[5] and bh.b_blocknr not in used
    again = _unattached(world, sb)
    generic_get_block(inode, 5, again, True)  # mapped now: the same block, not new
    assert again.b_blocknr == bh.b_blocknr and not again.b_state & BH.new


@pytest.mark.parametrize(("fs", "mode", "block_size"), TABLES, ids=IDS)
def test_write_into_a_hole_reaches_the_disk_and_the_rest_of_it_reads_zeroes(
    registry: Registry, fs: str, mode: str, block_size: int
) -> None:
    """``write(2)`` into a hole inside a file: the bytes reach the disk on sync, the rest of
    the hole reads zeroes, whatever the block the table is given held before."""
    world = World(registry=registry, node_pages=64)
    sb = world.mount(fs, mode, block_size=block_size, nr_blocks=64, name="m")
    record = world.create_file(sb, key="f", label="f", name="f")
    world.load_file(record, 3, nid=0)
    inode = record.inode
    bdev = sb.s_bdev
    bdev.write(bdev.next_free, b"\xa5" * block_size)  # what the hole's new block held before
    world.make_holes(record, 1)
    ps = world.page_size
    at = ps + block_size + 7  # inside the page's first hole
    generic_file_write(inode, at, b"written")
    assert filemap_fdatawrite(inode.i_mapping) == 0  # sync(2): the pages, then the journal
    world.kernel.run_until_idle()
    world.kernel.sync_filesystems()
    world.kernel.run_until_idle()
    expected = world.expected(record, 1)
    want = expected[:block_size] + bytes(ps - block_size)
    want = want[: at - ps] + b"written" + want[at - ps + 7 :]
    assert Oracle.on_disk(inode, 1) == want
    assert generic_file_read(inode, ps, ps) == want


def test_xfs_reserves_a_hole_written_with_write_as_delayed_allocation(registry: Registry) -> None:
    """As past the end of a file: the buffer is reserved (delalloc), its block given at
    writeback."""
    world = World(registry=registry, node_pages=64)
    sb = world.mount("xfs", "default", block_size=1024, nr_blocks=64, name="m")
    record = world.create_file(sb, key="f", label="f", name="f")
    world.load_file(record, 3, nid=0)
    world.make_holes(record, 1)
    generic_file_write(record.inode, 4096 + 2048, b"x")
    page = world.page_of(record, 1)
    assert page is not None and isinstance(page.private, BufferHead)
    ring = list(buffers(page.private))
    assert ring[2].b_state & BH.delay and not ring[2].b_state & BH.mapped
    assert record.inode.blocks[4 + 2] == 0


@pytest.mark.parametrize(("fs", "mode", "block_size"), TABLES, ids=IDS)
def test_a_page_given_holes_is_mapped_with_its_data_only_in_memory(
    registry: Registry, fs: str, mode: str, block_size: int
) -> None:
    world = _scenario(registry, _text(fs, mode, block_size, 0.5))
    holes = world.states["holes"]
    assert holes, "no page was given holes"
    ps = world.page_size
    for slot in holes:
        page = world.page_of(slot)
        inode = slot.owner.inode  # type: ignore[union-attr]
        assert page.node.nid == world.source_node and page.mapcount >= 1
        assert page.flags & PG.uptodate, page
        expected = world.world.expected(slot.owner, slot.index)
        assert bytes(page_address(page)) == expected  # stored whole, inside the file
        per_page = ps // block_size
        inside = min(per_page, -(-inode.i_size // block_size) - slot.index * per_page)
        first = slot.index * per_page
        assert inode.blocks[first] and inode.blocks[first + 1 : first + inside] == [0] * (
            inside - 1
        )
        disk = Oracle.on_disk(inode, slot.index)
        assert disk[block_size : inside * block_size] == bytes((inside - 1) * block_size)
        if page.flags & PG.private:
            head = page.private
            assert isinstance(head, BufferHead)
            ring = list(buffers(head))
            assert ring[0].b_state & BH.mapped
            assert all(
                bh.b_state & BH.uptodate and not bh.b_state & BH.mapped for bh in ring[1:inside]
            )
        else:  # read without buffer heads: the holes zeroed in the frame
            assert mode == "nobh"


def test_the_other_states_are_the_same_with_and_without_it(registry: Registry) -> None:
    text = _text("ext2", "default", 1024, 0.5)
    with_it = _scenario(registry, text)
    without = _scenario(registry, text.replace("holes = 0.5", "holes = 0"))
    keys = {s.key for s in with_it.states["holes"]}
    for state in WorkloadConfig.STATES:
        if state != "holes":
            picked = [s.key for s in with_it.states[state]]
            assert picked == [s.key for s in without.states[state]], state
            assert not keys & set(picked), state
    summary = with_it.workload_summary()
    assert summary["holes"] == len(keys) > 0 and without.workload_summary()["holes"] == 0
    assert summary == _scenario(registry, text).workload_summary()  # the seed decides


def test_make_holes_refuses_a_page_with_no_block_after_its_first_inside_the_file(
    registry: Registry,
) -> None:
    world = World(registry=registry, node_pages=64)
    sb = world.mount("ext2", "default", block_size=1024, nr_blocks=64, name="m")
    record = world.create_file(sb, key="f", label="f", name="f")
    world.load_file(record, 2, nid=0)
    record.inode.i_size = 4096 + 1000  # the second page has one block inside the file
    with pytest.raises(SetupError, match="no block inside the file after its first"):
        world.make_holes(record, 1)


# -- what it catches -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def buggy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """``buggyfs`` (``tests/configs/plugins``) installed; a folder for configs."""
    yield from buggyfs_installed(tmp_path_factory)


def test_a_table_that_zeroes_unmapped_buffers_loses_data(buggy: Path) -> None:
    said = [buggy_migrate(buggy, "zeroes_holes", "holes = 0.3\n", *o)[1] for o in MODES]
    assert [r["status"] for r in said] == ["data lost", "data lost", "invariant broken"]
    # Every page given holes, and no other, lost the data stored into them.
    integrity = said[0]["integrity"]
    assert integrity["lost"] == said[0]["workload"]["holes"] > 0
    assert all(
        "reads back zeroes in blocks 1-3" in problem and "zeroes_holes_aops" in problem
        for problem in integrity["problems"]
    )
    # Without such pages, a plain run passes it.
    assert buggy_migrate(buggy, "zeroes_holes", "", "--strict")[1]["status"] == "ok"


def test_a_table_that_leaves_unmapped_buffers_on_the_old_page_is_named(buggy: Path) -> None:
    """The write of a buffer that still points at the freed old page ends there: the ``BUG``
    names the page whose ring it is in, and that page's table."""
    rc, report = buggy_migrate(buggy, "moves_only_mapped_buffers", "holes = 0.3\n")
    assert (rc, report["status"]) == (1, "kernel bug")
    error = report["error"]
    assert error.startswith(
        "kernel BUG: end_page_writeback() on a page not under writeback: <Page pfn="
    ), error
    said = ", a page of moves_only_mapped_buffers_aops ended, and that buffer head's b_page points"
    assert said in error, error


@pytest.mark.parametrize("options", MODES)
def test_buffer_migrate_page_passes_with_pages_given_holes(
    buggy: Path, options: tuple[str, ...]
) -> None:
    rc, report = buggy_migrate(buggy, "correct", "holes = 1.0\n", *options)
    assert (rc, report["status"], report["findings"]) == (0, "ok", []), report.get("error")
    assert report["workload"]["holes"] > 0


@pytest.mark.parametrize("options", MODES)
def test_every_built_in_table_moves_pages_given_holes(
    tmp_path: Path, options: tuple[str, ...]
) -> None:
    text = every_table_scenario(TABLES, "tail = 0.5\nreleased = 0.1\npartial = 0.1\nholes = 0.4\n")
    for semantics in ("v4", "2.6.16", "2.6.17"):
        path = tmp_path / f"all-{semantics}.toml"
        rc, report = migrate_json(path, text, *options, "--semantics", semantics)
        assert (rc, report["status"], report["findings"]) == (0, "ok", []), report.get("error")
        assert report["workload"]["holes"] > 0
        assert migrate_json(path, text, *options, "--semantics", semantics) == (rc, report)


# -- bad input and the memory estimate --------------------------------------------------------


def test_a_scenario_of_blocks_as_large_as_a_page_is_bad_input(tmp_path: Path) -> None:
    path = tmp_path / "big.toml"
    path.write_text(
        '[plugins]\nload = ["ext2"]\n[[mount]]\nfs = "ext2"\nblock_size = 4096\npages = 8\n'
        "[workload]\nholes = 0.5\n"
    )
    proc = fsaops("config", "check", path, timeout=120)
    one_error_line(
        proc,
        2,
        "workload.holes: no page of this scenario can be given holes: only a file page of a "
        "table with readpage and writepage whose blocks are smaller than a page can, and it "
        "has 8 file pages (mount[0], ext2 default)",
    )


def test_a_scenario_whose_files_end_inside_their_first_block_is_refused_as_it_is_built(
    tmp_path: Path,
) -> None:
    """Each file is one page long and ends inside its first block: no page has a hole."""
    path = tmp_path / "short.toml"
    path.write_text(
        '[plugins]\nload = ["ext2"]\n[[mount]]\nfs = "ext2"\nblock_size = 2048\npages = 3\n'
        "files = 3\n[workload]\nholes = 0.5\ntail = 1.0\n"
    )
    proc = fsaops("migrate", path, "--no-progress", timeout=120)
    one_error_line(
        proc,
        2,
        "workload.holes: no page of this scenario can be given holes: every file page of a "
        "table with readpage and writepage whose blocks are smaller than a page ends its file "
        "inside its first block",
    )


def test_its_pages_count_among_those_a_run_writes(registry: Registry) -> None:
    def needed(holes: float) -> int:
        text = (
            '[[mount]]\nfs = "ext2"\nblock_size = 1024\npages = 100000\n'
            f"[workload]\nholes = {holes}\n"
        )
        return memory_needed(parse_config(text), registry)

    assert needed(0.5) - needed(0.0) >= 50_000 * 4096


# -- any mix of states, with pages given holes -----------------------------------------------

MIX_STATES = (
    "dirty",
    "writeback",
    "locked",
    "pinned",
    "mapped",
    "buffer_locked",
    "released",
    "partial",
    "dirty_written",
)
# Blocks of 1 KiB: a file's last page has two blocks inside it even when it ends there.
# Tables that read pages through buffer heads: buffer_locked and released need them.
MIX_MOUNTS = [t for t in TABLES if t[2] == 1024 and t[1] != "nobh"]


@settings(max_examples=20, deadline=None)
@given(
    mix=state_mixes(
        MIX_MOUNTS, MIX_STATES, {"holes": 1.0, "tail": st.sampled_from([0.0, 1.0])}, least_pages=2
    )
)
def test_any_mix_of_states_with_pages_given_holes_is_ok_for_the_built_in_tables(
    tmp_path_factory: pytest.TempPathFactory, mix: Mix
) -> None:
    """Every promise holds and no call is wrong, whatever else the other pages are."""
    migrate_mix(tmp_path_factory.mktemp("mix"), mix, ("--strict", "--debug-vm"))
