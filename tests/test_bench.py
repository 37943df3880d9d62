"""The benchmark runs and reports every figure beside its target.

Speed is measured by the benchmark itself, never here: these tests only
check that a quick run completes and that its report is complete.  No
test looks at what a ratio or a rate came out as.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

import guarded
from fsaops import bench
from fsaops.config import parse_config
from fsaops.config.schema import MAX_NODE_PAGES
from fsaops.errors import CannotStart
from fsaops.plugins import Registry
from fsaops.scenario import plan_scenario

FIGURES = {
    "engine_vs_bare[ext2_nobh_aops]",
    "engine_vs_bare[ext2_aops]",
    "registry_vs_direct",
    "scaling",
    "log_filtered_vs_off",
    "metadata_bytes",
    "end_to_end[ext2_nobh_aops]",
}


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    """One quick run of the whole benchmark, as JSON."""
    out = guarded.run([sys.executable, "-m", "fsaops.bench", "--quick", "--json"], timeout=300)
    assert out.returncode == 0, out.stderr
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
    # The envelope every command's JSON starts with.
    assert list(report)[:2] == ["schema", "status"]
    assert (report["schema"], report["status"]) == (1, "ok")


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


def test_the_end_to_end_figure_times_whole_commands_against_the_engine(
    report: dict[str, Any],
) -> None:
    figure = next(f for f in report["figures"] if f["key"] == "end_to_end[ext2_nobh_aops]")
    assert figure["target"] == bench.END_TO_END_TARGET == 5.0
    detail = figure["detail"]
    pages = report["method"]["pages"]
    runs = list(detail["runs"].values())
    assert [r["pages"] for r in runs] == [pages, 10 * pages], "the base count and ten times it"
    engine = detail["engine_pages_per_second"]
    rate = next(
        r["pages_per_second"]
        for r in report["throughput"]
        if r["table"] == "ext2_nobh_aops" and r.get("state") == "dirty"
    )
    assert engine == rate, "the engine's rate is the rates' row for the same table, dirty"
    assert detail["block_size"] == 1024 and detail["dirty"] == 0.3
    for run in runs:
        assert len(run["times_s"]) == detail["repetitions"] >= 1
        assert run["seconds"] == sorted(run["times_s"])[len(run["times_s"]) // 2]
        assert run["pages_per_second"] == pytest.approx(run["pages"] / run["seconds"])
        assert run["ratio_to_engine"] == pytest.approx(engine / run["pages_per_second"])
        assert run["peak_rss_bytes"] > 0
    assert figure["value"] == pytest.approx(runs[-1]["ratio_to_engine"], rel=0.5)
    spread = figure["noise"]["ratio_of_each_repetition"]
    assert spread["min"] - 1e-3 <= figure["value"] <= spread["max"] + 1e-3  # rounded to 4 places
    phases = detail["phases_s"]
    assert list(phases) == ["start-up", "build", "migrate", "prove", "read back", "report", "exit"]
    assert all(seconds > 0 for seconds in phases.values())
    assert sum(phases.values()) < 3 * max(runs[-1]["times_s"]), "one run, not several"


def test_the_end_to_end_scenario_is_the_one_the_figure_describes(registry: Registry) -> None:
    config = parse_config(bench.end_to_end_scenario(5000))
    plan = plan_scenario(config, registry, "bench", builtin=False)
    (mount,) = plan.config.mount
    assert (mount.fs, mount.mode, mount.pages, mount.files) == ("ext2", "nobh", 5000, 100)
    assert plan.config.swap_slots == 0 and plan.config.anon_pages == 0
    assert plan.config.processes.count == 0
    assert plan.config.workload.dirty == 0.3
    fractions = {s: plan.config.fraction(s) for s in plan.config.workload.STATES}
    assert {s for s, f in fractions.items() if f} == {"dirty"}
    assert plan.config.node_pages >= 5000


@pytest.mark.parametrize("pages", [bench.MILLION, 1_048_576 - 1024])
def test_the_end_to_end_scenario_of_a_million_pages_is_accepted(
    registry: Registry, pages: int
) -> None:
    # A node holds at most MAX_NODE_PAGES: the scenario must stay within it
    # and still hold every page, with some room to spare.
    config = parse_config(bench.end_to_end_scenario(pages))
    plan = plan_scenario(config, registry, "bench", builtin=False)
    assert pages < plan.config.node_pages <= MAX_NODE_PAGES
    assert plan.config.node_pages == min(pages + pages // 8 + 1024, MAX_NODE_PAGES)


def test_the_report_describes_its_method(report: dict[str, Any]) -> None:
    method = report["method"]
    assert method["repeat"] >= 1
    assert method["pages"] >= 1
    assert "clock" in method
    assert report["million"] is None, "the million-page run is opt-in"


def test_the_report_names_the_processor_that_made_it(
    report: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The figures move with the processor: the report says which one made them."""
    named = report["environment"]["processor"]
    assert named == bench.processor_name()
    if Path("/proc/cpuinfo").exists():
        assert named and named in Path("/proc/cpuinfo").read_text(errors="replace")
    # Without /proc/cpuinfo, what the platform says.
    real_open = open

    def no_cpuinfo(path: Any, *args: Any, **kwargs: Any) -> Any:
        if str(path) == "/proc/cpuinfo":
            raise FileNotFoundError(path)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr("builtins.open", no_cpuinfo)
    monkeypatch.setattr("platform.processor", lambda: "Zen 1, say")
    assert bench.processor_name() == "Zen 1, say"


def test_text_output_prints_each_figure_beside_its_target(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert bench.main(["--quick", "--repeat", "1", "--pages", "100"]) == 0
    out = capsys.readouterr().out
    for line in (ln for ln in out.splitlines() if "target ≤" in ln):
        assert "met" in line.lower()
    assert out.count("target ≤") == len(FIGURES)
    assert "pages per second" in out
    assert "docs/performance.md" in out.splitlines()[0], "it cites the page that explains it"
    processor = bench.processor_name()
    assert not processor or f"({processor})" in out, "it names the processor"


def test_the_million_page_run_is_opt_in_and_reports_time_and_memory() -> None:
    out = guarded.run(
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
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    big = json.loads(out.stdout)["million"]
    assert big["pages"] == 3000
    assert big["completed"] is True
    for key in ("migrate_seconds", "peak_rss_bytes", "page_data_bytes_touched"):
        assert big[key] > 0
    whole = big["end_to_end"]
    assert whole["pages"] == 3000
    assert (whole["exit_status"], whole["status"]) == (0, "ok")
    assert whole["model_bytes"] == 3 * 3000 * 4096, "both nodes' frames and the device's data"
    assert whole["peak_over_model"] == pytest.approx(whole["peak_rss_bytes"] / whole["model_bytes"])
    assert whole["seconds"] > 0
    assert (whole["target_seconds"], whole["target_peak_over_model"]) == (60.0, 1.5)


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(SystemExit) as exc:
        bench.main(["--pages", "3"])
    assert exc.value.code == 2


@pytest.mark.parametrize(
    "args",
    [
        ["--pages", "0"],
        ["--pages", "19"],
        ["--pages", "50001"],
        ["--pages", str(10**20)],
        ["--pages", "9" * 5000],
        ["--pages", "many"],
        ["--pages", "\u0663\u0660"],  # 30 in Arabic-Indic digits: digits are 0 to 9
        ["--pages", "1_000"],
        ["--pages", "+100"],  # int() takes a sign and spaces: digits are 0 to 9 alone
        ["--pages", " 100"],
        ["--pages", "100 "],
        ["--repeat", "+1"],
        ["--repeat", " 1"],
        ["--repeat", "0"],
        ["--repeat", "101"],
        ["--repeat", "-1"],
    ],
)
def test_sizes_out_of_range_are_one_line_and_exit_2(
    args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    for json_mode in (False, True):
        with pytest.raises(SystemExit) as exc:
            bench.main([*args, *(["--json"] if json_mode else [])])
        assert exc.value.code == 2
        out, err = capsys.readouterr()
        lines = err.splitlines()
        assert len(lines) == 1, err
        assert lines[0].startswith(f"fsaops: error: argument {args[0]}: expected an integer from")
        assert len(lines[0]) < 300
        if json_mode:
            assert json.loads(out)["status"] == "bad input"
        else:
            assert out == ""
    assert guarded.fsaops("bench", *args).returncode == 2, "the command says so too"


def test_bench_imports_no_unselected_plugin_and_skips_what_it_cannot_measure(
    tmp_path: Path,
) -> None:
    """A broken plugin that is not selected is never imported; figures without ext2 are skipped."""
    marker = tmp_path / "imported"
    env = guarded.install(
        tmp_path, "brokenfs", f"open({str(marker)!r}, 'w').close()\nraise ImportError('broken')\n"
    )
    proc = guarded.fsaops(
        "bench",
        "--quick",
        "--repeat",
        "1",
        "--pages",
        "20",
        "--json",
        env={**env, "FSAOPS_PLUGINS": "swap"},
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert not marker.exists(), "the unselected plugin was imported"
    assert report["figures"] == []
    assert {s["key"] for s in report["skipped"]} == FIGURES
    assert all("needs filesystem ext2" in s["reason"] for s in report["skipped"])
    assert report["plugins"] == {"selection": ["swap"], "selected_by": "FSAOPS_PLUGINS"}
    assert {row["table"] for row in report["throughput"]} == {"swap_aops"}
    text = guarded.fsaops(
        "bench",
        "--quick",
        "--repeat",
        "1",
        "--pages",
        "20",
        "--plugins",
        "swap",
        env=env,
        timeout=300,
    )
    assert text.returncode == 0, text.stderr
    assert "engine_vs_bare[ext2_aops]: skipped: needs filesystem ext2" in text.stdout
    assert not marker.exists()


def test_a_bench_that_measured_no_figure_says_none_met_or_missed(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """ext3 alone: every figure needs ext2, and is skipped.  Before, ``all_met`` was false, as if
    a figure had missed its target."""
    args = ["--quick", "--repeat", "1", "--pages", "20", "--plugins", "ext3"]
    assert bench.main([*args, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["status"] == "ok"
    assert report["figures"] == []
    assert {s["key"] for s in report["skipped"]} == FIGURES
    assert report["all_met"] is None
    assert {row["fs"] for row in report["throughput"]} == {"ext3"}
    assert bench.main(args) == 0
    text = capsys.readouterr().out
    assert "no figure measured: every one was skipped (below); no target met or missed" in text
    assert "NOT MET" not in text


def test_bench_with_a_broken_selected_plugin_names_it(tmp_path: Path) -> None:
    env = guarded.install(tmp_path, "brokenfs", "raise ImportError('broken')\n")
    proc = guarded.fsaops("bench", "--quick", "--plugins", "brokenfs,ext2", "--json", env=env)
    guarded.one_error_line(proc, 2, "brokenfs-dist[brokenfs]", "ImportError: broken")
    guarded.one_json_object(proc, "bad input")


def test_bench_with_nothing_to_measure_says_so() -> None:
    proc = guarded.fsaops("bench", "--quick", env={"FSAOPS_PLUGINS": ""})
    guarded.one_error_line(proc, 2, "nothing to measure", "need filesystem ext2", "none")


def test_a_child_that_did_not_complete_keeps_its_own_message(tmp_path: Path) -> None:
    run = bench.migrate_command("[kernel]\nnodse = 2\n")
    assert not run.completed
    assert (run.returncode, run.status) == (2, "bad input")
    assert "kernel.nodse: unknown key; did you mean 'nodes'?" in run.error
    line = run.failure("fsaops migrate of 5 pages")
    assert line.startswith("fsaops migrate of 5 pages ended with exit status 2 (bad input): ")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the peaks are Linux's VmHWM")
def test_a_timed_child_is_not_charged_the_bench_s_own_memory() -> None:
    # Linux carries a process's peak resident size over fork and exec: a child
    # started straight from a bench that has grown would report the bench's.
    ballast = bytearray(512 << 20)
    ballast[::4096] = b"\1" * len(range(0, len(ballast), 4096))  # resident, every page
    grown = bench._rss_bytes()
    assert grown > 512 << 20
    run = bench.migrate_command(bench.end_to_end_scenario(200))
    assert run.completed, run.error
    assert 0 < run.peak_rss_bytes < 256 << 20, f"{run.peak_rss_bytes:,} bytes, the bench {grown:,}"
    assert run.seconds > 0
    del ballast


def test_a_timed_child_that_cannot_start_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "executable", "/nonexistent/python3")
    with pytest.raises(CannotStart, match="cannot start the fsaops migrate"):
        bench.migrate_command(bench.end_to_end_scenario(50))


def test_a_timed_child_the_launcher_cannot_start_is_one_line(tmp_path: Path) -> None:
    with (
        open(tmp_path / "out", "wb") as out,
        open(tmp_path / "err", "wb") as err,
        pytest.raises(CannotStart, match=r"No such file or directory \(ENOENT\)"),
    ):
        bench._launched([str(tmp_path / "no-such-program")], out, err)


#: What the child says when the scenario asks for more memory than the machine can give.
REFUSAL = (
    "scenario.toml: kernel.node_memory, mount[].pages, processes.anon_pages: the run needs "
    "about 17 GiB of memory"
)


def refused() -> bench.CommandRun:
    """A ``fsaops migrate`` child refused at once: exit status 2, its envelope's message."""
    return bench.CommandRun(0.74, 76816384, "bad input", 2, REFUSAL)


def test_a_million_run_end_to_end_that_did_not_complete_gives_no_figures(
    registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bench, "migrate_command", lambda scenario, plugin="ext2": refused())
    whole = bench.million_end_to_end(registry, 1_000_000)
    assert whole == {
        "pages": 1_000_000,
        "completed": False,
        "status": "bad input",
        "exit_status": 2,
        "error": "fsaops migrate of 1,000,000 ext2 nobh pages ended with exit status 2 "
        f"(bad input): {REFUSAL}",
    }, "no seconds, rate, peak or verdict for a run that never happened"


def test_the_bench_is_not_ok_when_a_run_it_asked_for_was_not_measured(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    real = bench.migrate_command

    def refuse_the_million(scenario: str, *, plugin: str = "ext2") -> bench.CommandRun:
        return refused() if "pages = 3000\n" in scenario else real(scenario, plugin=plugin)

    monkeypatch.setattr(bench, "migrate_command", refuse_the_million)
    args = ["--quick", "--repeat", "1", "--pages", "100", "--million", "--million-pages", "3000"]
    assert bench.main([*args, "--json"]) == 2, "the child's status, as fsaops migrate gives it"
    out, err = capsys.readouterr()
    report = json.loads(out)
    why = (
        "the 3,000-page run end to end was not measured: fsaops migrate of 3,000 ext2 nobh "
        f"pages ended with exit status 2 (bad input): {REFUSAL}"
    )
    assert list(report)[:3] == ["schema", "status", "error"]
    assert (report["status"], report["error"]) == ("bad input", why)
    assert err == f"fsaops: error: {why}\n"
    assert report["million"]["completed"] is True, "the in-process run was measured"
    whole = report["million"]["end_to_end"]
    assert whole["completed"] is False
    assert not {"seconds", "pages_per_second", "peak_rss_bytes", "met"} & set(whole)
    text = bench.render(report)
    assert (
        "3,000 pages end to end (fsaops migrate): NOT MEASURED: fsaops migrate of 3,000 ext2 "
        f"nobh pages ended with exit status 2 (bad input): {REFUSAL}"
    ) in text.splitlines()
    whole_lines = [ln for ln in text.splitlines() if "end to end (fsaops migrate)" in ln]
    assert len(whole_lines) == 1 and "peak RSS" not in whole_lines[0], "no figures"


def test_the_bench_is_not_ok_when_the_million_child_failed() -> None:
    report: dict[str, Any] = {"million": {"pages": 5, "completed": False, "error": "killed"}}
    assert bench.not_measured(report) == (
        "kernel bug",
        "the 5-page run was not measured: killed",
    ), "as any command that failed"
    assert bench.not_measured({"million": None}) is None


RAISER = """\
import attrs
import fsaops
from fsaops import buffer_migrate_page
from fsaops_ext2 import EXT2, ext2_aops

def mp(newpage, page):
    raise RuntimeError("boom")

TABLE = attrs.evolve(ext2_aops, name="raiser_aops", migratepage=mp)

@fsaops.hookimpl
def fsaops_filesystem_types():
    return [attrs.evolve(EXT2, name="raiser", modes={"default": TABLE}, page_cache={})]
"""


def test_a_table_whose_migratepage_raises_has_no_rate(tmp_path: Path) -> None:
    """Its pages failed with ``-EIO``: the rate was that of a table that moves nothing.

    Before, the row gave a rate (of one page a run, the one left behind)
    and said ``moved 0, failed 0``.
    """
    env = guarded.install(tmp_path, "raiser", RAISER)
    args = ["bench", "--quick", "--repeat", "1", "--pages", "20", "--plugins", "ext2,raiser"]
    proc = guarded.fsaops(*args, "--json", env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    rows = [r for r in json.loads(proc.stdout)["throughput"] if r["table"] == "raiser_aops"]
    assert rows == [
        {
            "fs": "raiser",
            "mode": "default",
            "table": "raiser_aops",
            "note": "not measured: migratepage raised RuntimeError: boom (pfn 0)",
        }
    ]
    text = guarded.fsaops(*args, env=env, timeout=300)
    assert text.returncode == 0, text.stderr
    line = next(x for x in text.stdout.splitlines() if "raiser_aops" in x)
    assert "not measured: migratepage raised RuntimeError: boom" in line


def test_a_table_that_stalls_has_no_rate_and_the_bench_goes_on(
    registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A ``migratepage`` that sleeps: the stall watch a run has stops it, and the row says so.

    Before, ``fsaops bench`` waited on it for good.
    """
    import time

    import attrs

    from fsaops import scenario
    from fsaops.buffer import buffer_migrate_page
    from fsaops_ext2 import EXT2, ext2_aops

    def mp(newpage: Any, page: Any) -> int:
        time.sleep(60)
        return buffer_migrate_page(newpage, page)

    table = attrs.evolve(ext2_aops, name="sleepy_aops", migratepage=mp)
    sleepy = attrs.evolve(EXT2, name="sleepy", modes={"default": table}, page_cache={})
    mine = attrs.evolve(
        registry,
        filesystems={**registry.filesystems, "sleepy": sleepy},
        owners={**registry.owners, "sleepy": "ext2"},
    )
    monkeypatch.setattr(scenario, "STALL_SECONDS", 0.5)
    monkeypatch.setattr(scenario, "_WATCH_EVERY", 0.1)
    started = time.monotonic()
    rows = bench.throughput(mine, 20, 1, only=("sleepy", "default"))
    assert time.monotonic() - started < 30
    assert len(rows) == 1
    assert rows[0]["table"] == "sleepy_aops"
    assert rows[0]["note"].startswith("not measured: stuck: the run made no progress"), rows[0]
    assert "sleepy_aops" in rows[0]["note"].split("stuck", 1)[1]
    assert bench.throughput(mine, 20, 1, only=("ext2", "nobh"))[0]["pages_per_second"] > 0
