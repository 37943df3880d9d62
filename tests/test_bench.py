"""The benchmark runs and reports every figure beside its target.

Speed is measured by the benchmark itself, never here: these tests only
check that a quick run completes and that its report is complete.  No
test looks at what a ratio or a rate came out as.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from fsaops import bench

FIGURES = {
    "engine_vs_bare[ext2_nobh_aops]",
    "engine_vs_bare[ext2_aops]",
    "registry_vs_direct",
    "scaling",
    "log_filtered_vs_off",
    "metadata_bytes",
}


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    """One quick run of the whole benchmark, as JSON."""
    out = subprocess.run(
        [sys.executable, "-m", "fsaops.bench", "--quick", "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def test_every_figure_is_reported_with_its_target(report: dict[str, Any]) -> None:
    figures = {f["key"]: f for f in report["figures"]}
    assert set(figures) == FIGURES
    for fig in figures.values():
        assert isinstance(fig["value"], float | int)
        assert isinstance(fig["target"], float | int)
        assert fig["met"] in (True, False)
        assert fig["unit"] in ("x", "bytes")
        assert fig["title"]
    assert figures["engine_vs_bare[ext2_nobh_aops]"]["stretch"] == 3.0
    assert isinstance(report["all_met"], bool)


def test_ratios_say_how_noisy_they_were(report: dict[str, Any]) -> None:
    for fig in report["figures"]:
        if fig["unit"] != "x":
            continue
        spread = fig["noise"]["ratio_of_each_repetition"]
        assert set(spread) == {"min", "max"}
        sides = [v for v in fig["noise"].values() if "spread_pct" in v]
        assert len(sides) == 2
        assert all({"min_s", "median_s", "max_s"} <= set(side) for side in sides)


def test_memory_figure_reports_buffer_heads_apart(report: dict[str, Any]) -> None:
    meta = next(f for f in report["figures"] if f["key"] == "metadata_bytes")
    detail = meta["detail"]
    for key in (
        "frame_bytes",
        "page_cache_and_lru_bytes",
        "page_object_bytes",
        "buffer_heads_bytes_per_page_1k_blocks",
        "kernel_struct_page_bytes",
    ):
        assert key in detail


def test_every_builtin_table_has_a_rate_for_clean_and_dirty_pages(
    report: dict[str, Any],
) -> None:
    rows = report["throughput"]
    tables = {row["table"] for row in rows}
    assert {
        "ext2_aops",
        "ext2_nobh_aops",
        "ext2_aops_xip",
        "ext3_ordered_aops",
        "ext3_writeback_aops",
        "ext3_journalled_aops",
        "linvfs_aops",
        "swap_aops",
        "xfs_mapping_buftarg.mapping_aops",
    } <= tables
    for row in rows:
        if "note" in row:
            continue  # no page-cache pages (execute in place)
        assert row["state"] in ("clean", "dirty")
        assert row["pages_per_second"] > 0
        assert row["moved"] + row["failed"] == row["pages"]
    measured = {(r["table"], r["state"]) for r in rows if "note" not in r}
    for table in tables - {"ext2_aops_xip"}:
        assert {(table, "clean"), (table, "dirty")} <= measured


def test_the_report_describes_its_method(report: dict[str, Any]) -> None:
    method = report["method"]
    assert method["repeat"] >= 1
    assert method["pages"] >= 1
    assert "clock" in method
    assert report["million"] is None, "the million-page run is opt-in"


def test_text_output_prints_each_figure_beside_its_target(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert bench.main(["--quick", "--repeat", "1", "--pages", "100"]) == 0
    out = capsys.readouterr().out
    for line in (ln for ln in out.splitlines() if "target ≤" in ln):
        assert "met" in line.lower()
    assert out.count("target ≤") == len(FIGURES)
    assert "pages per second" in out


def test_the_million_page_run_is_opt_in_and_reports_time_and_memory() -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "fsaops.bench",
            "--quick",
            "--json",
            "--million",
            "--million-pages",
            "3000",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    big = json.loads(out.stdout)["million"]
    assert big["pages"] == 3000
    assert big["completed"] is True
    for key in ("migrate_seconds", "peak_rss_bytes", "page_data_bytes_touched"):
        assert big[key] > 0


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(SystemExit) as exc:
        bench.main(["--pages", "3"])
    assert exc.value.code == 2
