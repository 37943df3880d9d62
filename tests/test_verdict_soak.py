"""Correct tables get a clean verdict from ``--strict --debug-vm``, seed after seed.

The built-in scenario, and a scenario that mounts the example third-party
plugin (ramfs), run with every check fsaops has: each must exit 0 with no
finding, nothing lost and every invariant whole.  ``FSAOPS_VERDICT_SEEDS``
seeds of each run (default 2); ``tox -e soak`` runs 50.

Scenarios drawn at random from the whole configuration (one to three
mounts of any built-in table at any block size, page sizes from 1 to
16 KiB, two to four nodes and any pair of them, any mix of page states,
every release's semantics, the I/O latency, the journal's commit interval,
faults) must each end one of two ways: ``ok`` with no finding, or bad input
in one line that names the file and a key, never a traceback.  A false
alarm of the verdict on correct tables is as much a failure as a miss.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import io
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from fsaops.cli import main
from fsaops.testing.dist import write_dist_info

SEEDS = range(int(os.environ.get("FSAOPS_VERDICT_SEEDS", "2")))
EXAMPLE = Path(__file__).parent.parent / "docs" / "examples" / "fsaops-example-plugin" / "src"

RAMFS_SCENARIO = """\
[kernel]
node_memory = "4MiB"
[plugins]
load = ["ramfs", "swap"]
[[mount]]
fs = "ramfs"
pages = 96
files = 4
[processes]
count = 3
anon_pages = 32
[workload]
dirty = 0.4
mapped = 0.3
pinned = 0.05
"""


def verdict(*args: str) -> tuple[int, dict[str, Any]]:
    """``fsaops migrate ARGS --strict --debug-vm --json`` in this process."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(["migrate", *args, "--strict", "--debug-vm", "--json", "--no-progress"])
    report: dict[str, Any] = json.loads(out.getvalue())
    return rc, report


def assert_clean(rc: int, report: dict[str, Any]) -> None:
    assert (rc, report["status"]) == (0, "ok"), report.get("error")
    assert report["findings"] == []
    assert report["findings_checked"] == "all"
    assert report["integrity"]["lost"] == 0
    assert report["invariants"] == []


@pytest.fixture(scope="module")
def ramfs_scenario(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The scenario file; the example plugin installed, or made to look installed."""
    folder = tmp_path_factory.mktemp("ramfs")
    scenario = folder / "ramfs.toml"
    scenario.write_text(RAMFS_SCENARIO, encoding="utf-8")
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("FSAOPS_PLUGINS", raising=False)
        if not importlib.metadata.entry_points(group="fsaops", name="ramfs"):
            write_dist_info(folder, "fsaops-ramfs", {"fsaops": {"ramfs": "fsaops_ramfs"}})
            patch.syspath_prepend(str(folder))
            patch.syspath_prepend(str(EXAMPLE))
        yield scenario


@pytest.mark.exhaustive
@pytest.mark.parametrize("seed", SEEDS)
def test_the_builtin_tables_get_a_clean_verdict(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FSAOPS_PLUGINS", raising=False)
    rc, report = verdict("--seed", str(seed))
    assert_clean(rc, report)
    assert report["totals"]["moved"] > 0


@pytest.mark.parametrize("seed", SEEDS)
def test_the_example_plugin_gets_a_clean_verdict(ramfs_scenario: Path, seed: int) -> None:
    rc, report = verdict(str(ramfs_scenario), "--seed", str(seed))
    assert_clean(rc, report)
    assert report["by_aops"]["ramfs_aops"]["moved"] > 0


#: The built-in tables a random scenario mounts, with the block sizes each
#: filesystem takes (KERNEL-SPEC §7; configuration.md's table of them).
MOUNTS = (
    ("ext2", "default", (1024, 2048, 4096)),
    ("ext2", "nobh", (1024, 2048, 4096)),
    ("ext2", "xip", (1024, 4096)),
    ("ext3", "ordered", (1024, 2048, 4096)),
    ("ext3", "writeback", (1024, 2048, 4096)),
    ("ext3", "journal", (1024, 2048, 4096)),
    ("xfs", "default", (512, 1024, 2048, 4096)),
    ("xfs_buftarg", "default", (512, 4096)),
)

STATES = (
    "dirty",
    "writeback",
    "locked",
    "buffer_locked",
    "released",
    "partial",
    "holes",
    "pinned",
    "pinned_dirty",
    "swapout_dirty",
    "released_dirty",
    "dirty_written",
    "mapped",
    "mapped_shared",
    "tail",
    "mlocked",
    "swapout",
)

#: A key of the configuration, as a bad-input message names it.
CONFIG_KEY = re.compile(r"\b(kernel|mount\[\d*\]|swap|processes|workload|faults|migrate)\.\w+")


@st.composite
def scenarios(draw: st.DrawFn) -> str:
    """A scenario of the built-in tables, any shape the configuration allows, mostly valid."""
    page_size = draw(st.sampled_from((1024, 2048, 4096, 4096, 8192, 16384)))
    nodes = draw(st.integers(2, 4))
    source = draw(st.integers(0, nodes - 1))
    target = draw(st.sampled_from([n for n in range(nodes) if n != source]))
    lines = [
        f"[migrate]\nfrom_node = {source}\nto_node = {target}",
        f"[kernel]\nnodes = {nodes}\npage_size = {page_size}",
        f"node_memory = {draw(st.sampled_from((128, 256, 1024))) * page_size}",
        f'semantics = "{draw(st.sampled_from(("v4", "2.6.16", "2.6.17")))}"',
        f"io_latency = {draw(st.integers(1, 12))}",
        f"commit_interval = {draw(st.sampled_from((3, 40, 1000000)))}",
    ]
    for _ in range(draw(st.integers(1, 3))):
        fs, mode, sizes = draw(st.sampled_from(MOUNTS))
        pages = draw(st.integers(1, 40))
        files = 1 if fs == "xfs_buftarg" else draw(st.integers(1, min(4, pages)))
        block = draw(st.sampled_from([b for b in sizes if b <= page_size] or [sizes[0]]))
        lines.append(
            f'[[mount]]\nfs = "{fs}"\nmode = "{mode}"\npages = {pages}\nfiles = {files}\n'
            f"block_size = {block}"
        )
    lines.append(f"[swap]\nslots = {draw(st.sampled_from((0, 64, 512)))}")
    lines.append(
        f"[processes]\ncount = {draw(st.integers(2, 3))}\nanon_pages = {draw(st.integers(0, 20))}"
    )
    lines.append(f"[workload]\nseed = {draw(st.integers(0, 2**16))}")
    for state in draw(st.lists(st.sampled_from(STATES), max_size=5, unique=True)):
        lines.append(f"{state} = {draw(st.sampled_from((0.1, 0.3, 0.5, 1.0)))}")
    if draw(st.booleans()):
        lines.append("out_of_line = true")
    if draw(st.integers(0, 5)) == 0:
        fault = draw(st.sampled_from(("alloc_fail", "writepage_error", "swap_full")))
        lines.append(f"[faults]\n{fault} = {draw(st.sampled_from((0.05, 0.5)))}")
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def scenario_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where each drawn scenario is written."""
    return tmp_path_factory.mktemp("random") / "scenario.toml"


@settings(
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(text=scenarios())
def test_random_scenarios_of_the_builtin_tables_end_ok_or_refused_by_name(
    text: str, scenario_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FSAOPS_PLUGINS", raising=False)
    scenario_file.write_text(text, encoding="utf-8")
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(
            ["migrate", str(scenario_file), "--strict", "--debug-vm", "--json", "--no-progress"]
        )
    assert "Traceback" not in err.getvalue()
    report: dict[str, Any] = json.loads(out.getvalue())
    event(report["status"])
    if rc == 2:
        assert report["status"] == "bad input"
        error = report["error"]
        assert error.startswith(f"{scenario_file}: "), error
        assert "\n" not in error
        assert CONFIG_KEY.search(error), error
        return
    assert_clean(rc, report)
