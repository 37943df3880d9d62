"""Correct tables get a clean verdict from ``--strict --debug-vm``, seed after seed.

The built-in scenario, and a scenario that mounts the example third-party
plugin (ramfs), run with every check fsaops has: each must exit 0 with no
finding, nothing lost and every invariant whole.  ``FSAOPS_VERDICT_SEEDS``
seeds of each run (default 2); ``tox -e soak`` runs 50.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import io
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

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
