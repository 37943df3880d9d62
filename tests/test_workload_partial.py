"""``workload.partial``: pages written in part while not up to date.

Every page ``fsaops migrate`` built was up to date: read in whole, or
written whole.  A ``write(2)`` of one block of a page that is not in the
page cache leaves it dirty and not up to date, one buffer written, the
others never read, and the rest of the frame holding whatever the frame
held.  Three tables wrong only there passed every mode (the conformance
suite alone caught them): one that takes a page that is not up to date for
empty and clears the new one, one that marks every buffer it moves up to
date, and one that takes a buffer mapping no block for a hole of zeroes.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import hypothesis.strategies as st
import pytest
from hypothesis import given, settings

from fsaops.buffer import BH, BufferHead, buffers
from fsaops.config import parse_config
from fsaops.config.schema import WorkloadConfig
from fsaops.memory import POISON_BYTE
from fsaops.oracle import Oracle
from fsaops.page import PG, page_address
from fsaops.plugins import Registry
from fsaops.proofs import _holds
from fsaops.scenario import Scenario, plan_scenario
from fsaops.world import World
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

WITH_BUFFERS = [
    ("ext2", "default", 1024),
    ("ext3", "ordered", 2048),
    ("ext3", "writeback", 1024),
    ("ext3", "journal", 1024),
    ("xfs", "default", 1024),
]
MODES = [(), ("--strict",), ("--debug-vm",)]


def _text(fs: str, mode: str, block_size: int, partial: float, *, tail: float = 0.5) -> str:
    return (
        f'[kernel]\nnode_memory = "2MiB"\n[plugins]\nload = ["ext2", "ext3", "xfs"]\n'
        f'[[mount]]\nfs = "{fs}"\nmode = "{mode}"\nblock_size = {block_size}\npages = 40\n'
        f"files = 4\n[processes]\ncount = 2\nanon_pages = 0\n[workload]\nseed = 5\n"
        f"dirty = 0.2\nmapped = 0.2\npinned = 0.05\nreleased = 0.1\ntail = {tail}\n"
        f"partial = {partial}\n"
    )


def _scenario(registry: Registry, text: str) -> Scenario:
    plan = plan_scenario(parse_config(text), registry, "test", builtin=False)
    return Scenario(plan.config, registry, seed=5)


@pytest.mark.parametrize(
    ("fs", "mode", "block_size"), WITH_BUFFERS, ids=[f"{m[0]}-{m[1]}" for m in WITH_BUFFERS]
)
def test_a_page_written_in_part_is_not_up_to_date_with_one_buffer_written(
    registry: Registry, fs: str, mode: str, block_size: int
) -> None:
    world = _scenario(registry, _text(fs, mode, block_size, 0.5))
    partial = world.states["partial"]
    assert partial, "no page was written in part"
    for slot in partial:
        page = world.page_of(slot)
        assert page.node.nid == world.source_node
        assert not page.flags & PG.uptodate and page.flags & PG.private, page
        head = page.private
        assert isinstance(head, BufferHead)
        ring = list(buffers(head))
        written = [bh for bh in ring if bh.b_state & BH.uptodate]
        assert len(written) == 1 and len(ring) == world.page_size // block_size
        (bh,) = written
        assert bh.b_state & BH.mapped
        assert all(not b.b_state & (BH.mapped | BH.uptodate) for b in ring if b is not bh)
        # The block written holds the file's newest data; its place in the page says which.
        at = ring.index(bh) * block_size
        expected = world.world.expected(slot.owner, slot.index)
        assert bytes(page_address(page)[at : at + block_size]) == expected[at : at + block_size]
        if mode != "journal":  # data=journal files the buffer in the journal, the page clean
            assert page.flags & PG.dirty and bh.b_state & BH.dirty


def test_the_other_states_are_the_same_with_and_without_it(registry: Registry) -> None:
    text = _text("ext2", "default", 1024, 0.5)
    with_it = _scenario(registry, text)
    without = _scenario(registry, text.replace("partial = 0.5", "partial = 0"))
    keys = {s.key for s in with_it.states["partial"]}
    for state in WorkloadConfig.STATES:
        if state != "partial":
            picked = [s.key for s in with_it.states[state]]
            assert picked == [s.key for s in without.states[state]], state
            assert not keys & set(picked), state
    summary = with_it.workload_summary()
    assert summary["partial"] == len(keys) and without.workload_summary()["partial"] == 0
    assert summary == _scenario(registry, text).workload_summary()  # the seed decides


def test_the_block_written_is_only_in_memory_and_the_rest_of_the_frame_is_left_over(
    registry: Registry,
) -> None:
    """The page's data is a generation on: the block written is only in the page, its other
    blocks only on disk; under debug_vm a freed frame is poisoned, so the blocks never read
    are poison."""
    world = World(registry=registry, node_pages=64, debug_vm=True)
    sb = world.mount("ext2", "default", block_size=1024, nr_blocks=64, name="m")
    record = world.create_file(sb, key="f", label="f", name="f")
    world.load_file(record, 4, nid=0)
    before = world.expected(record, 2)
    page = world.write_in_part(record, 2, 1)
    after = world.expected(record, 2)
    assert record.gens[2] == 1 and after != before
    data = bytes(page_address(page))
    assert not page.flags & PG.uptodate and page.flags & PG.dirty
    assert data[1024:2048] == after[1024:2048] != before[1024:2048]
    assert data[:1024] + data[2048:] == bytes([POISON_BYTE]) * 3072
    disk = Oracle.on_disk(record.inode, 2)
    assert disk[1024:2048] == before[1024:2048]  # not written back yet
    assert disk[:1024] + disk[2048:] == after[:1024] + after[2048:]
    assert all(world.expected(record, i) == Oracle.on_disk(record.inode, i) for i in (0, 1, 3))


@pytest.mark.parametrize("options", MODES)
def test_every_built_in_table_moves_pages_written_in_part(
    tmp_path: Path, options: tuple[str, ...]
) -> None:
    text = every_table_scenario(
        WITH_BUFFERS, "tail = 0.5\nbuffer_locked = 0.05\nreleased = 0.1\npartial = 0.4\n"
    )
    for semantics in ("v4", "2.6.16", "2.6.17"):
        path = tmp_path / f"all-{semantics}.toml"
        rc, report = migrate_json(path, text, *options, "--semantics", semantics)
        assert (rc, report["status"], report["findings"]) == (0, "ok", []), report.get("error")
        assert report["workload"]["partial"] > 0


# -- the placement proof -----------------------------------------------------------------------


def test_the_placement_proof_compares_only_what_a_page_not_up_to_date_holds(
    registry: Registry,
) -> None:
    world = World(registry=registry, node_pages=64)
    sb = world.mount("ext2", "default", block_size=1024, nr_blocks=64, name="m")
    record = world.create_file(sb, key="f", label="f", name="f")
    world.load_file(record, 2, nid=0)
    page = world.write_in_part(record, 0, 3)
    expected = world.expected(record, 0)
    frame = bytearray(expected)
    frame[:1024] = bytes(1024)  # a block never read: not the page's data
    assert _holds(page, bytes(frame), expected)
    frame[3072:] = bytes(1024)  # the block written
    assert not _holds(page, bytes(frame), expected)
    whole = world.page_of(record, 1)
    assert whole is not None and whole.flags & PG.uptodate
    assert not _holds(whole, bytes(1024) + expected[1024:], expected)
    # No buffers to say which bytes are the page's: clean, it holds nothing; dirty, it must.
    page.flags &= ~PG.private
    head, page.private = page.private, 0
    page.flags &= ~PG.dirty
    assert _holds(page, bytes(4096), expected)
    page.flags |= PG.dirty
    assert not _holds(page, bytes(4096), expected)
    page.flags |= PG.private
    page.private = head


# -- the tables wrong only there ---------------------------------------------------------------


@pytest.fixture(scope="module")
def buggy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """``buggyfs`` (``tests/configs/plugins``) installed; a folder for configs."""
    yield from buggyfs_installed(tmp_path_factory)


CAUGHT = {
    "clears_pages_not_uptodate": ("data lost", "data lost", "invariant broken"),
    "marks_every_buffer_uptodate": ("data lost", "data lost", "data lost"),
    "zeroes_holes": ("ok", "ok", "invariant broken"),
    # caught with tails already; a page written in part has unmapped buffers too
    "moves_only_mapped_buffers": ("kernel bug", "kernel bug", "invariant broken"),
}


@pytest.mark.parametrize("name", sorted(CAUGHT))
def test_the_tables_wrong_on_a_page_written_in_part_are_caught(buggy: Path, name: str) -> None:
    said = [buggy_migrate(buggy, name, "partial = 0.3\n", *o)[1]["status"] for o in MODES]
    assert tuple(said) == CAUGHT[name]
    # Without such pages, every mode passes them.
    assert [buggy_migrate(buggy, name, "", *o)[1]["status"] for o in MODES] == ["ok"] * 3


@pytest.mark.parametrize("options", MODES)
def test_buffer_migrate_page_passes_with_pages_written_in_part(
    buggy: Path, options: tuple[str, ...]
) -> None:
    rc, report = buggy_migrate(buggy, "correct", "partial = 1.0\n", *options)
    assert (rc, report["status"], report["findings"]) == (0, "ok", []), report.get("error")
    assert report["workload"]["partial"] > 0


# -- bad input ---------------------------------------------------------------------------------


def test_a_scenario_of_blocks_as_large_as_a_page_is_bad_input(tmp_path: Path) -> None:
    path = tmp_path / "big.toml"
    path.write_text(
        '[plugins]\nload = ["ext2"]\n[[mount]]\nfs = "ext2"\nblock_size = 4096\npages = 8\n'
        "[workload]\npartial = 0.5\n"
    )
    proc = fsaops("config", "check", path, timeout=120)
    one_error_line(
        proc,
        2,
        "workload.partial: no page of this scenario can be written in part: only a file page "
        "of a table with prepare_write whose blocks are smaller than a page can, and it has 8 "
        "file pages (mount[0], ext2 default)",
    )


def test_a_scenario_whose_tables_read_whole_pages_is_refused_as_it_is_built(
    tmp_path: Path,
) -> None:
    """ext2 nobh reads the rest of a page in to write part of it: none stays written in part."""
    path = tmp_path / "nobh.toml"
    path.write_text(
        '[plugins]\nload = ["ext2"]\n[[mount]]\nfs = "ext2"\nmode = "nobh"\nblock_size = 1024\n'
        "pages = 8\n[workload]\npartial = 0.5\n"
    )
    proc = fsaops("migrate", path, "--no-progress", timeout=120)
    one_error_line(
        proc,
        2,
        "workload.partial: no file page of this scenario stays written in part: its tables "
        "(ext2_nobh_aops) read the rest of a page in",
    )


# -- any mix of states, with pages written in part ---------------------------------------------

MIX_STATES = (
    "dirty",
    "writeback",
    "locked",
    "pinned",
    "mapped",
    "buffer_locked",
    "released",
    "dirty_written",
)


@settings(max_examples=20, deadline=None)
@given(
    mix=state_mixes(
        WITH_BUFFERS,
        MIX_STATES,
        {"partial": 1.0, "tail": st.sampled_from([0.0, 1.0])},
        least_pages=2,
    )
)
def test_any_mix_of_states_with_pages_written_in_part_is_ok_for_the_built_in_tables(
    tmp_path_factory: pytest.TempPathFactory, mix: Mix
) -> None:
    """Every promise holds and no call is wrong, whatever else the other pages are."""
    migrate_mix(tmp_path_factory.mktemp("mix"), mix, ("--strict", "--debug-vm"))
