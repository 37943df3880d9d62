"""``workload.tail``: files that end inside their last page.

Every file a scenario built was whole pages long, so no page that reached
a ``migratepage`` under ``fsaops migrate`` had blocks past the end of its
file: buffers that map no block, and bytes that must read as zeroes. Two
tables wrong only there passed every mode (the conformance suite alone
caught them): one that moves only the buffers mapped to disk, and one that
copies only the bytes inside the file, leaving the new frame's own bytes
past the end.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import hypothesis.strategies as st
import pytest
from hypothesis import given, settings

from fsaops.config import parse_config
from fsaops.memory import POISON_BYTE
from fsaops.page import page_address
from fsaops.plugins import Registry
from fsaops.scenario import Scenario, plan_scenario
from fsaops.world import SetupError, World, tail_bytes
from inproc import (
    Mix,
    buggy_migrate,
    buggyfs_installed,
    fsaops,
    migrate_json,
    migrate_mix,
    state_mixes,
)

MOUNTS = """\
[kernel]
node_memory = "4MiB"
[plugins]
load = ["ext2"]
[[mount]]
fs = "ext2"
block_size = 1024
pages = 36
files = 6
[[mount]]
fs = "ext2"
mode = "nobh"
block_size = 1024
pages = 36
files = 6
[[mount]]
fs = "ext2"
mode = "nobh"
block_size = 4096
pages = 24
files = 4
[processes]
count = 2
anon_pages = 0
[workload]
seed = {seed}
out_of_line = {out_of_line}
dirty = 0.3
mapped = 0.3
mapped_shared = 0.5
dirty_written = 0.5
pinned = 0.05
writeback = 0.05
buffer_locked = 0.05
tail = {tail}
"""

MODES = [(), ("--strict",), ("--debug-vm",)]


def _scenario(
    registry: Registry, tail: float, *, seed: int = 7, out_of_line: bool = False
) -> Scenario:
    text = MOUNTS.format(tail=tail, seed=seed, out_of_line=str(out_of_line).lower())
    plan = plan_scenario(parse_config(text), registry, "test", builtin=False)
    return Scenario(plan.config, registry, seed=seed)


def test_the_files_picked_end_inside_their_last_page(registry: Registry) -> None:
    world = _scenario(registry, 1.0)
    ps = world.world.page_size
    assert len(world.files) == 16
    for record in world.files:
        inode = record.inode
        assert record.size == inode.i_size == (record.npages - 1) * ps + tail_bytes(ps)
        bs = inode.i_sb.s_blocksize
        inside = -(-inode.i_size // bs)
        # The blocks past the end of the file are holes: none is allocated.
        assert sum(1 for block in inode.blocks if block) == inside
        if bs < ps:
            assert inside < record.npages * (ps // bs)
        last = inode.i_mapping.page_tree[record.npages - 1]
        assert last is not None
        data = bytes(page_address(last))
        assert data == world.world.expected(record, record.npages - 1)
        assert data[tail_bytes(ps) :] == bytes(ps - tail_bytes(ps))  # zeroes past the end
        assert any(data[: tail_bytes(ps)])


def test_a_fraction_picks_that_share_of_each_mounts_files_and_changes_no_other_choice(
    registry: Registry,
) -> None:
    half = _scenario(registry, 0.5)
    none = _scenario(registry, 0.0)
    by_mount: dict[str, int] = {}
    for record in half.files:
        if record.size is not None:
            mount = record.key.split("/")[0]
            by_mount[mount] = by_mount.get(mount, 0) + 1
    assert by_mount == {"mount0": 3, "mount1": 3, "mount2": 2}
    assert all(record.size is None for record in none.files)
    # Which page gets which state is drawn as it was without tails.
    for state, slots in none.states.items():
        assert [s.key for s in slots] == [s.key for s in half.states[state]], state
    assert half.workload_summary()["digest"] != none.workload_summary()["digest"]


@pytest.mark.parametrize("options", MODES)
@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("out_of_line", [False, True])
def test_a_run_of_files_with_tails_proves_every_page(
    tmp_path: Path, options: tuple[str, ...], seed: int, out_of_line: bool
) -> None:
    text = MOUNTS.format(tail=1.0, seed=seed, out_of_line=str(out_of_line).lower())
    rc, report = migrate_json(tmp_path / "tails.toml", text, *options)
    assert (rc, report["status"], report["findings"]) == (0, "ok", []), report.get("error")
    assert report["totals"]["moved"] > 0
    assert report["config"]["workload"]["tail"] == 1.0
    again = migrate_json(tmp_path / "again.toml", text, *options)[1]
    assert json.dumps(again["workload"]) == json.dumps(report["workload"])


def test_the_built_in_scenario_with_a_tail_on_every_file_is_ok(tmp_path: Path) -> None:
    from fsaops.config.schema import DEFAULT_SCENARIO

    assert "\ntail = 0.25\n" in DEFAULT_SCENARIO  # a quarter of its files, by default
    text = DEFAULT_SCENARIO.replace("\ntail = 0.25\n", "\ntail = 1.0\n")
    rc, report = migrate_json(tmp_path / "builtin.toml", text, "--strict", "--debug-vm")
    assert (rc, report["status"], report["findings"]) == (0, "ok", []), report.get("error")


def test_a_file_with_a_tail_takes_no_more_pages(registry: Registry) -> None:
    world = World(registry=registry, node_pages=64)
    sb = world.mount("ext2", "default", block_size=1024)
    record = world.create_file(sb)
    world.load_file(record, 3, tail=True)
    with pytest.raises(SetupError, match="ends inside its last page: it takes no more"):
        world.load_file(record, 1)


def test_out_of_range_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[[mount]]\nfs = "ext2"\npages = 4\n[workload]\ntail = 1.5\n', encoding="utf-8")
    status, out, err = fsaops("migrate", str(path))
    assert status == 2 and out == ""
    assert "workload.tail: expected a fraction from 0 to 1, got 1.5" in err
    assert "Traceback" not in err


def test_debug_vm_hands_out_a_frame_never_used_before_poisoned(registry: Registry) -> None:
    """The kernel's page poisoning fills every free frame, so a copy that leaves bytes out shows."""
    world = World(registry=registry, node_pages=32, debug_vm=True)
    node = world.kernel.nodes[1]
    page = node.alloc_page()
    assert page is not None
    assert bytes(page_address(page)) == bytes([POISON_BYTE]) * world.page_size
    plain = World(registry=registry, node_pages=32)
    fresh = plain.kernel.nodes[1].alloc_page()
    assert fresh is not None
    assert not any(page_address(fresh))  # the frames of a plain run are left as they are


# -- the tables wrong only on a file's last page ------------------------------------------------


@pytest.fixture(scope="module")
def buggy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """``buggyfs`` (``tests/configs/plugins``) installed; a folder for configs."""
    yield from buggyfs_installed(tmp_path_factory)


def _buggy(folder: Path, name: str, tail: float, *options: str) -> tuple[int, dict[str, object]]:
    return buggy_migrate(folder, name, f"tail = {tail}\n", *options)


@pytest.mark.parametrize("options", MODES)
def test_moving_only_the_mapped_buffers_fails_once_a_file_ends_inside_a_page(
    buggy: Path, options: tuple[str, ...]
) -> None:
    rc, report = _buggy(buggy, "moves_only_mapped_buffers", 0.5, *options)
    assert (rc, report["status"]) == (1, "invariant broken"), report.get("error")


def test_copying_only_up_to_the_end_of_the_file_fails_under_debug_vm(buggy: Path) -> None:
    rc, report = _buggy(buggy, "copies_up_to_the_end_of_the_file", 0.5, "--debug-vm")
    assert (rc, report["status"]) == (1, "invariant broken"), report.get("error")
    assert "copies_up_to_the_end_of_the_file_aops" in str(report["error"])


@pytest.mark.parametrize("name", ["moves_only_mapped_buffers", "copies_up_to_the_end_of_the_file"])
def test_without_tails_those_tables_pass(buggy: Path, name: str) -> None:
    """What catches them is the files that end inside a page: whole-page files do not."""
    rc, report = _buggy(buggy, name, 0.0, "--debug-vm")
    assert (rc, report["status"]) == (0, "ok"), report.get("error")


@pytest.mark.parametrize("options", MODES)
def test_buffer_migrate_page_passes_with_tails(buggy: Path, options: tuple[str, ...]) -> None:
    rc, report = _buggy(buggy, "correct", 1.0, *options)
    assert (rc, report["status"], report["findings"]) == (0, "ok", []), report.get("error")


def test_the_tails_are_drawn_from_the_seed(registry: Registry) -> None:
    first = _scenario(registry, 0.5, seed=11)
    second = _scenario(registry, 0.5, seed=11)
    other = _scenario(registry, 0.5, seed=12)
    picked = [[r.key for r in w.files if r.size is not None] for w in (first, second, other)]
    assert picked[0] == picked[1]
    assert picked[0] != picked[2]


# -- any mix of states, with tails ---------------------------------------------------------------

MIX_MOUNTS = [
    ("ext2", "default", 1024),
    ("ext2", "nobh", 1024),
    ("ext2", "nobh", 4096),
    ("ext3", "ordered", 1024),
    ("ext3", "writeback", 2048),
    ("ext3", "journal", 1024),
    ("xfs", "default", 1024),
]
MIX_STATES = ("dirty", "writeback", "locked", "pinned", "mapped", "mlocked", "dirty_written")


@settings(max_examples=25, deadline=None)
@given(
    mix=state_mixes(
        MIX_MOUNTS,
        MIX_STATES,
        {"tail": st.sampled_from([0.5, 1.0]), "out_of_line": st.booleans()},
        values=(0.0, 0.1, 0.3, 0.5),
    )
)
def test_any_mix_of_states_on_files_with_tails_is_ok_for_the_built_in_tables(
    tmp_path_factory: pytest.TempPathFactory, mix: Mix
) -> None:
    """Every promise holds and no call is wrong, whatever state a file's last page is in."""
    migrate_mix(tmp_path_factory.mktemp("mix"), mix)
