"""The ``fsaops`` command line, run as a user runs it: in a subprocess."""

from __future__ import annotations

import gc
import html
import io
import itertools
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import fsaops
import guarded
from fsaops.cli import main
from fsaops.testing.dist import write_dist_info
from inproc import fsaops as _inproc

CONFIGS = Path(__file__).parent / "configs"
BAD = sorted((CONFIGS / "bad").glob("*.toml"))
BUILTIN = {"ext2", "ext3", "xfs", "swap", "xfs_buftarg"}


def run(
    *args: str | Path, env: dict[str, str] | None = None, code: str | None = None, **kw: Any
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m fsaops ARGS`` (or ``python -c CODE``) with FSAOPS_PLUGINS unset.

    With a time and a memory limit (``guarded.run``); ``kw`` goes to it.
    """
    command = [sys.executable, "-c", code] if code else [sys.executable, "-m", "fsaops"]
    return guarded.run([*command, *map(str, args)], env=env, **kw)


def assert_bad_input(proc: subprocess.CompletedProcess[str], *words: str) -> str:
    """Exit 2, one line ``fsaops: error: ...`` on stderr, no traceback; returns the line."""
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stdout + proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("fsaops: error: ")
    for word in words:
        assert word in lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def default_json() -> dict[str, Any]:
    proc = run("migrate", "--json")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    data: dict[str, Any] = json.loads(proc.stdout)
    return data


@pytest.fixture
def third_party(tmp_path: Path) -> dict[str, str]:
    """An environment where two more plugins are installed: badfs and a broken one."""
    for name, module in (("badfs", "badfs_plugin"), ("brokenfs", "no_such_module_for_fsaops")):
        write_dist_info(tmp_path, name, {"fsaops": {name: module}})
    path = os.pathsep.join([str(tmp_path), str(CONFIGS / "plugins")])
    return {"PYTHONPATH": path}


# -- the program ------------------------------------------------------------------------------


def test_version() -> None:
    proc = run("--version")
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"fsaops {fsaops.__version__}"


def test_help_lists_the_commands() -> None:
    proc = run("--help")
    assert proc.returncode == 0
    for command in ("migrate", "plugins", "config"):
        assert command in proc.stdout


def test_no_command_is_bad_input() -> None:
    assert_bad_input(run(), "COMMAND")


@pytest.mark.parametrize(
    ("args", "word"),
    [
        (["frobnicate"], "frobnicate"),
        (["migrate", "--seed", "-4"], "--seed"),
        (["migrate", "--seed", "many"], "--seed"),
        (["migrate", "--log-level", "loud"], "--log-level"),
        (["migrate", "--log-format", "xml"], "--log-format"),
        (["config"], "ACTION"),
        (["config", "check"], "FILE"),
    ],
)
def test_bad_arguments(args: list[str], word: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("fsaops: error: ") and word in err
    assert len(err.splitlines()) == 1


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["migrate", "--trace", "5", "--trace", "8"], "--trace"),
        (["migrate", "--html", "{a}", "--html", "{b}"], "--html"),
        (["migrate", "--plugins", "ext2", "--plugins", "swap"], "--plugins"),
        (["migrate", "--seed", "1", "--seed", "2"], "--seed"),
        (["diff", "x.json", "y.json", "--html", "{a}", "--html", "{b}"], "--html"),
        (["config", "check", "x.toml", "--plugins", "ext2", "--plugins", "swap"], "--plugins"),
        (["plugins", "--config", "x.toml", "--config", "y.toml"], "--config"),
        (["explore", "--fs", "ext2", "--fs", "ext3"], "--fs"),
        (["bench", "--pages", "20", "--pages", "30"], "--pages"),
    ],
)
def test_an_option_given_twice_is_bad_input(
    args: list[str], option: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before, the last of an option given twice was taken and the others dropped without a
    word: ``--html a.html --html b.html`` wrote no ``a.html``, exit 0; ``--trace`` traced one
    page, ``--plugins`` loaded one selection."""
    pages = {"a": str(tmp_path / "a.html"), "b": str(tmp_path / "b.html")}
    argv = [arg.format(**pages) for arg in args]
    assert main([*argv, "--json"] if args[0] in ("migrate", "bench") else argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith(f"fsaops: error: argument {option}: given more than once")
    if args[0] in ("migrate", "bench"):
        data = json.loads(captured.out)
        assert data["status"] == "bad input"
        assert "given more than once" in data["error"]
    assert list(tmp_path.iterdir()) == []


# -- migrate ----------------------------------------------------------------------------------


def test_migrate_json_has_the_documented_fields(default_json: dict[str, Any]) -> None:
    assert set(default_json["totals"]) >= {"pages", "moved", "failed", "not_migrated", "passes"}
    assert set(default_json["by_aops"]) >= {
        "ext2_aops",
        "ext2_nobh_aops",
        "ext3_ordered_aops",
        "ext3_writeback_aops",
        "ext3_journalled_aops",
        "linvfs_aops",
        "swap_aops",
        "xfs_mapping_buftarg.mapping_aops",
    }
    for entry in default_json["by_aops"].values():
        assert set(entry) >= {
            "pages",
            "moved",
            "failed",
            "not_migrated",
            "errors",
            "via",
            "reasons",
        }
        assert entry["pages"] == entry["moved"] + entry["failed"] + entry["not_migrated"]
    assert set(default_json["vmstat"]) >= {"pgmigrate_success", "pgmigrate_fail", "writepage"}
    assert set(default_json["integrity"]) >= {"checked", "lost", "corrupted"}
    assert default_json["seed"] == 42
    assert default_json["source"] == "<built-in scenario>"
    assert default_json["invariants"] == []
    assert default_json["status"] == "ok"
    assert default_json["ticks"]["total"] >= default_json["ticks"]["migration"] > 0


def test_default_scenario_shows_every_engine_path(default_json: dict[str, Any]) -> None:
    tables = default_json["by_aops"]
    via: dict[str, int] = {}
    errors: dict[str, int] = {}
    for entry in tables.values():
        for k, v in entry["via"].items():
            via[k] = via.get(k, 0) + v
        for k, v in entry["errors"].items():
            errors[k] = errors.get(k, 0) + v
    assert tables["ext2_aops"]["migratepage"] == "fsaops.buffer.buffer_migrate_page"
    assert tables["ext2_aops"]["via"]["migratepage"] > 0
    assert tables["swap_aops"]["migratepage"] == "fsaops.migrate.migrate_page"
    assert tables["swap_aops"]["via"]["migratepage"] > 0
    journal = tables["ext3_journalled_aops"]
    assert journal["migratepage"] is None
    assert journal["via"]["writeback"] > 0 and journal["via"]["migrate_page"] > 0
    assert via["swap"] > 0
    buftarg = tables["xfs_mapping_buftarg.mapping_aops"]
    assert buftarg["errors"]["EIO"] == buftarg["failed"] == buftarg["pages"] > 0
    assert errors["EAGAIN"] > 0
    integrity = default_json["integrity"]
    assert integrity["lost"] == 0 and integrity["corrupted"] == 0
    assert integrity["checked"] >= default_json["totals"]["pages"]


def test_migrate_text_report(tmp_path: Path) -> None:
    proc = run("migrate", CONFIGS / "small.toml")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "", "no progress bar when standard error is not a terminal"
    out = proc.stdout
    assert "Pages by operations table" in out
    for name in ("ext2_aops", "ext3_journalled_aops", "linvfs_aops", "swap_aops"):
        assert name in out
    assert "buffer_migrate_page" in out
    assert "OK: every page is where the engine says, nothing was lost" in out
    assert "placement" in out and "durability" in out
    assert "\x1b[" not in out, "no colour codes when output is not a terminal"


def test_the_text_report_draws_its_tables_alike_and_says_what_vmstat_covers() -> None:
    """The tables are as wide as each other, the legend ends in a blank line, and the vmstat
    row names what its counters cover: the migration and the read-back."""
    proc = run("migrate")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    rules = [line.rstrip() for line in lines if line.strip().startswith("───")]
    assert len(rules) == 3, rules
    assert len({len(rule) for rule in rules}) == 1, [len(rule) for rule in rules]
    legend_end = next(i for i, line in enumerate(lines) if line.startswith("left: ")) + 1
    while lines[legend_end].strip() and not lines[legend_end].startswith("Why"):
        legend_end += 1  # the legend's own wrapped lines
    assert lines[legend_end].strip() == "", lines[legend_end - 1 : legend_end + 1]
    assert lines[legend_end + 1].startswith("Why pages failed or were left")
    at = next(i for i, line in enumerate(lines) if line.startswith("vmstat"))
    assert "(migration and read-back)" in " ".join(" ".join(lines[at : at + 2]).split())
    assert "during migration" not in proc.stdout


def test_the_failed_caption_names_every_errno_the_failed_pages_have() -> None:
    """From 2.6.16 a VM_LOCKED page fails with EPERM: the caption must not say only EIO/ENOMEM."""
    scenario = Path(__file__).parent.parent / "docs" / "scenarios" / "annotated.toml"
    proc = run("migrate", scenario, "--semantics", "2.6.16", "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    failed = {p["errno"] for p in report["pages_failed"]}
    assert "EPERM" in failed
    proc = run("migrate", scenario, "--semantics", "2.6.16")
    caption = next(line for line in proc.stdout.splitlines() if line.startswith("failed: "))
    for name in failed:
        assert name in caption, (name, caption)


def test_same_seed_same_json_and_another_seed_another_workload() -> None:
    small = CONFIGS / "small.toml"
    first = run("migrate", small, "--json", "--seed", "5")
    second = run("migrate", small, "--json", "--seed", "5")
    other = run("migrate", small, "--json", "--seed", "6")
    assert first.returncode == second.returncode == other.returncode == 0
    assert first.stdout == second.stdout
    a, b = json.loads(first.stdout), json.loads(other.stdout)
    assert (a["seed"], b["seed"]) == (5, 6)
    assert a["workload"]["digest"] != b["workload"]["digest"]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_builtin_scenario_gives_a_byte_identical_report_run_after_run(seed: int) -> None:
    # Whole programs (which end with os._exit once the command is done): the
    # report must be complete and the same, byte for byte, every time.
    first = run("migrate", "--json", "--seed", str(seed))
    second = run("migrate", "--json", "--seed", str(seed))
    assert first.returncode == second.returncode == 0, first.stderr + second.stderr
    assert first.stdout == second.stdout
    report = json.loads(first.stdout)
    assert report["seed"] == seed and report["status"] == "ok"


def test_the_program_runs_exit_functions_before_it_ends(tmp_path: Path) -> None:
    # The program ends with os._exit, but what was registered with atexit
    # (logging's shutdown, plugin code's handlers) still runs first.
    marker = tmp_path / "atexit-ran"
    code = (
        "import atexit, pathlib, sys\n"
        f"atexit.register(pathlib.Path({str(marker)!r}).write_text, 'yes')\n"
        "from fsaops.cli import main\n"
        "sys.argv = ['fsaops', 'plugins', '--json']\n"
        "sys.exit(main())\n"
    )
    proc = run(code=code)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["status"] == "ok"
    assert marker.read_text() == "yes"


def test_migration_compiled_out_exits_2_with_enosys() -> None:
    proc = run("migrate", CONFIGS / "no_migration.toml")
    assert_bad_input(proc, "ENOSYS", "no_migration.toml", "kernel.migration")
    assert proc.stdout == ""


def test_debug_log_stream_is_json_on_stderr() -> None:
    proc = run(
        "migrate", CONFIGS / "small.toml", "--json", "--log-format", "json", "--log-level", "debug"
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    events = [json.loads(line) for line in proc.stderr.splitlines()]
    attempts = [e for e in events if e["event"] == "mm_migrate_page"]
    assert len(attempts) >= report["totals"]["pages"]
    assert all(e["level"] == "debug" for e in attempts)
    assert {"pfn", "table", "path", "rc", "pass_"} <= set(attempts[0])


def test_info_log_stream_in_console_format() -> None:
    proc = run("migrate", CONFIGS / "small.toml", "--json", "--log-level", "info")
    assert proc.returncode == 0
    assert "scenario_built" in proc.stderr and "scenario_done" in proc.stderr
    assert "mm_migrate_page" not in proc.stderr


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_on_a_terminal_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FSAOPS_PLUGINS", raising=False)
    small = str(CONFIGS / "small.toml")
    for args, shown in (
        ([], True),
        (["--no-progress"], False),
        (["--json"], False),
        (["--log-level", "info"], False),
    ):
        err = _Terminal()
        monkeypatch.setattr(sys, "stderr", err)
        monkeypatch.setattr(sys, "stdout", io.StringIO())
        assert main(["migrate", small, *args]) == 0
        assert ("migrating pages" in err.getvalue()) is shown, args


def test_migrate_called_as_a_library_leaves_the_collector_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Run as the program, migrate keeps Python's collector off to the end (the
    # process ends with the run); called from a caller's process, it must not.
    monkeypatch.delenv("FSAOPS_PLUGINS", raising=False)
    assert gc.isenabled()
    status, out, _err = _inproc("migrate", str(CONFIGS / "small.toml"), "--json")
    assert status == 0
    assert json.loads(out)["status"] == "ok"
    assert gc.isenabled()


# -- bad scenario files -------------------------------------------------------------------------


@pytest.mark.parametrize("path", BAD, ids=lambda p: p.stem)
def test_bad_config_exits_2_naming_the_key(
    path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FSAOPS_PLUGINS", raising=False)
    expect = path.read_text().splitlines()[0].removeprefix("# expect: ")
    assert main(["config", "check", str(path)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1
    assert err.startswith(f"fsaops: error: {path}: ")
    assert expect in err


def test_there_are_at_least_twenty_bad_configs() -> None:
    assert len(BAD) >= 20


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("unknown_key", ["kernel.node_count", "unknown key"]),
        ("unknown_plugin", ["plugins.load[1]", "'zfs' is not installed"]),
        ("unselected_plugin_mount", ["mount[1].fs", "fsaops[xfs]", "not loaded"]),
        ("negative_pages", ["mount[0].pages"]),
        ("not_toml", ["not valid TOML"]),
    ],
)
def test_bad_config_through_migrate_in_a_subprocess(name: str, words: list[str]) -> None:
    path = CONFIGS / "bad" / f"{name}.toml"
    assert_bad_input(run("migrate", path), str(path), *words)


def test_missing_binary_and_directory_files(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.toml"
    assert_bad_input(run("migrate", missing), f"{missing}: no such file")
    binary = tmp_path / "image.toml"
    binary.write_bytes(bytes(range(256)) * 4)
    assert_bad_input(run("config", "check", binary), f"{binary}: not a TOML file")
    assert_bad_input(run("plugins", "--config", tmp_path), "is a directory")


def test_unknown_plugin_on_the_command_line() -> None:
    assert_bad_input(run("migrate", "--plugins", "ext2,zfs"), "--plugins", "'zfs'")
    assert_bad_input(run("plugins", "--plugins", "ext2,ext2"), "twice")


def test_builtin_scenario_with_a_plugin_left_out() -> None:
    proc = run("migrate", "--json", "--plugins", "ext2,ext3,swap,xfs")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["left_out"] == [
        {
            "key": "mount[7]",
            "what": "xfs_buftarg default: 1 file(s), 96 pages",
            "needs": "xfs_buftarg",
        }
    ]
    assert "xfs_mapping_buftarg.mapping_aops" not in report["by_aops"]
    text = run("migrate", "--plugins", "ext2,ext3,swap,xfs")
    assert text.returncode == 0
    assert "left out: mount[7] (xfs_buftarg default: 1 file(s), 96 pages)" in text.stdout


BUILTIN_MOUNTS = {  # the built-in scenario's page-cache tables, by the plugin that provides them
    "ext2": {"ext2_aops", "ext2_nobh_aops"},
    "ext3": {"ext3_ordered_aops", "ext3_writeback_aops", "ext3_journalled_aops"},
    "xfs": {"linvfs_aops"},
    "xfs_buftarg": {"xfs_mapping_buftarg.mapping_aops"},
    "swap": {"swap_aops"},
}


@pytest.mark.parametrize(
    "subset",
    [
        combo
        for size in range(1, len(BUILTIN) + 1)
        for combo in itertools.combinations(sorted(BUILTIN), size)
    ],
    ids=",".join,
)
def test_builtin_scenario_runs_with_any_subset_of_the_builtin_plugins(
    subset: tuple[str, ...], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FSAOPS_PLUGINS", raising=False)
    status = main(["migrate", "--json", "--plugins", ",".join(subset)])
    out, err = capsys.readouterr()
    assert status == 0, err
    report = json.loads(out)
    assert report["status"] == "ok"
    assert set(report["by_aops"]) == set().union(*(BUILTIN_MOUNTS[name] for name in subset))
    needs = {part["needs"] for part in report["left_out"]}
    assert needs == {
        fs for fs in ("ext2", "ext3", "xfs", "xfs_buftarg", "swap") if fs not in subset
    }
    if "swap" not in subset:
        assert report["config"]["swap"]["slots"] == 0
        assert report["config"]["processes"]["anon_pages"] == 0
    assert report["totals"]["pages"] == sum(t["pages"] for t in report["by_aops"].values())


# -- config check --------------------------------------------------------------------------------


def test_config_check_accepts_a_good_file() -> None:
    proc = run("config", "check", CONFIGS / "small.toml")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"{CONFIGS / 'small.toml'}: OK: 4 mount(s), 160 pages on node 0")


def test_config_check_notes_migration_compiled_out() -> None:
    proc = run("config", "check", CONFIGS / "no_migration.toml")
    assert proc.returncode == 0
    assert "ENOSYS" in proc.stdout


# -- plugins --------------------------------------------------------------------------------------


def test_plugins_lists_every_builtin_with_its_migratepage() -> None:
    proc = run("plugins")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    for name in BUILTIN:
        assert re.search(rf"fsaops\[{name}\] {re.escape(fsaops.__version__)} +loaded", out), name
    assert "fsaops.buffer.buffer_migrate_page" in out
    assert "fsaops.migrate.fail_migrate_page" in out
    assert "ext3_journalled_aops" in out


def plugins_json(*args: str | Path, env: dict[str, str] | None = None) -> dict[str, Any]:
    proc = run("plugins", "--json", *args, env=env)
    assert proc.returncode == 0, proc.stderr
    data: dict[str, Any] = json.loads(proc.stdout)
    return data


def migratepage_of(data: dict[str, Any]) -> dict[str, str | None]:
    return {
        entry["table"]: entry["migratepage"]
        for plugin in data["plugins"]
        for fs in plugin["filesystems"]
        for entry in fs["modes"].values()
    }


def test_plugins_json() -> None:
    # Other distributions may be installed beside fsaops (tox installs the
    # example plugin); the built-ins are the ones fsaops itself registers.
    data = plugins_json()
    assert data["migration"] is True
    builtins = [p for p in data["plugins"] if p["distribution"] == "fsaops"]
    assert {p["name"] for p in builtins} == BUILTIN
    for plugin in data["plugins"]:
        assert plugin["label"] == f"{plugin['distribution']}[{plugin['name']}]"
        assert plugin["status"] == "loaded"
    for plugin in builtins:
        assert plugin["version"] == fsaops.__version__
    builtin_tables = {
        k: v for k, v in migratepage_of(data).items() if k in migratepage_of({"plugins": builtins})
    }
    assert builtin_tables == {
        "ext2_aops": "fsaops.buffer.buffer_migrate_page",
        "ext2_nobh_aops": "fsaops.buffer.buffer_migrate_page",
        "ext2_aops_xip": None,
        "ext3_ordered_aops": "fsaops.buffer.buffer_migrate_page",
        "ext3_writeback_aops": "fsaops.buffer.buffer_migrate_page",
        "ext3_journalled_aops": None,
        "linvfs_aops": "fsaops.buffer.buffer_migrate_page",
        "swap_aops": "fsaops.migrate.migrate_page",
        "xfs_mapping_buftarg.mapping_aops": "fsaops.migrate.fail_migrate_page",
    }


def test_plugins_selected_on_the_command_line_and_in_the_environment() -> None:
    for data in (plugins_json("--plugins", "ext3"), plugins_json(env={"FSAOPS_PLUGINS": "ext3"})):
        status = {p["name"]: p["status"] for p in data["plugins"]}
        assert {n: status[n] for n in BUILTIN} == {
            n: "loaded" if n == "ext3" else "not loaded" for n in BUILTIN
        }
        assert {n for n, st in status.items() if st == "loaded"} == {"ext3"}
        assert set(migratepage_of(data)) == {
            "ext3_ordered_aops",
            "ext3_writeback_aops",
            "ext3_journalled_aops",
        }


def test_plugins_with_migration_compiled_out_show_no_migratepage() -> None:
    data = plugins_json("--config", CONFIGS / "no_migration.toml")
    assert data["migration"] is False
    tables = migratepage_of(data)
    builtins = migratepage_of({"plugins": [p for p in data["plugins"] if p["name"] in BUILTIN]})
    assert len(builtins) == 9
    assert set(tables.values()) == {None}
    text = run("plugins", "--config", CONFIGS / "no_migration.toml").stdout
    assert "compiled out" in text
    assert "fsaops.buffer" not in text


def test_plugins_config_selection() -> None:
    data = plugins_json("--config", CONFIGS / "ext3_only.toml")
    assert data["selection"] == ["ext3"]
    assert "[plugins] load" in data["selected_by"]


# -- plugin selection imports nothing else --------------------------------------------------------

PROBE = """
import sys
from fsaops.cli import main
rc = main(sys.argv[1:])
loaded = sorted(m for m in sys.modules if m.startswith("fsaops_"))
print("MODULES", ",".join(loaded), file=sys.stderr)
sys.exit(rc)
"""


@pytest.mark.parametrize("how", ["--plugins", "FSAOPS_PLUGINS"])
def test_an_ext3_only_run_imports_no_other_plugin(how: str) -> None:
    args: list[str | Path] = ["migrate", CONFIGS / "ext3_only.toml", "--json"]
    env = {}
    if how == "--plugins":
        args += ["--plugins", "ext3"]
    else:
        env["FSAOPS_PLUGINS"] = "ext3"
    proc = run(*args, code=PROBE, env=env)
    assert proc.returncode == 0, proc.stderr
    modules = proc.stderr.split("MODULES ", 1)[1].split()[0].split(",")
    assert {m.split(".")[0] for m in modules} == {"fsaops_ext3"}
    report = json.loads(proc.stdout)
    assert {e["filesystem"] for e in report["by_aops"].values()} == {"ext3"}


# -- third-party plugins -------------------------------------------------------------------------


def test_a_migratepage_that_corrupts_data_exits_1(third_party: dict[str, str]) -> None:
    proc = run("migrate", CONFIGS / "badfs.toml", "--json", env=third_party)
    assert proc.returncode == 1, proc.stderr
    report = json.loads(proc.stdout)
    assert report["status"] == "data lost"
    badfs = report["by_aops"]["badfs_aops"]
    assert badfs["migratepage"] == "badfs_plugin.badfs_migratepage"
    assert badfs["moved"] == 16
    assert report["integrity"]["corrupted"] == 16
    text = run("migrate", CONFIGS / "badfs.toml", env=third_party)
    assert text.returncode == 1
    assert "FAILED: data was lost" in text.stdout


@pytest.mark.parametrize("json_mode", [False, True], ids=["text", "json"])
def test_a_failed_run_whose_reader_goes_away_still_fails_and_writes_its_page(
    third_party: dict[str, str], tmp_path: Path, json_mode: bool
) -> None:
    """``fsaops migrate ... | head`` of a run that lost data: exit 1, and the ``--html`` page.

    The closed pipe used to end the command with exit 0 (so ``set -o
    pipefail`` passed a run that lost data) and before the page was written.
    """
    page = tmp_path / "run.html"
    args: list[str | Path] = ["migrate", CONFIGS / "badfs.toml", "--html", page]
    read, write = os.pipe()
    os.close(read)
    try:
        proc = run(*args, *(["--json"] if json_mode else []), env=third_party, stdout=write)
    finally:
        os.close(write)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert 'data-status="data lost"' in page.read_text(encoding="utf-8")


def test_a_run_that_cannot_finish_says_so_on_its_page(
    third_party: dict[str, str], tmp_path: Path
) -> None:
    """A page left by an earlier, good run must not stand for one that ended in a failure."""
    page = tmp_path / "run.html"
    page.write_text('<p id="status" data-status="ok">OK</p>', encoding="utf-8")
    proc = run("migrate", CONFIGS / "badfs.toml", "--debug-vm", "--html", page, env=third_party)
    assert proc.returncode == 1, proc.stderr
    text = page.read_text(encoding="utf-8")
    assert 'data-status="invariant broken"' in text
    assert 'data-status="ok"' not in text
    error = proc.stderr.strip().removeprefix("fsaops: error: ")
    assert html.escape(error) in text


def test_debug_vm_names_the_page_and_table_that_broke_something(
    third_party: dict[str, str],
) -> None:
    proc = run("migrate", CONFIGS / "badfs.toml", "--debug-vm", env=third_party)
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stdout + proc.stderr
    assert "(badfs_aops, pass 0, path migratepage)" in proc.stderr
    assert "fsaops: error: CONFIG_DEBUG_VM: " in proc.stderr
    assert "but the contents differ" in proc.stderr


def test_a_plugin_that_fails_to_import_is_reported(third_party: dict[str, str]) -> None:
    listing = run("plugins", env=third_party)
    line = assert_bad_input(listing, "brokenfs[brokenfs]", "failed to load")
    assert "ModuleNotFoundError" in line
    assert "failed" in listing.stdout and "badfs[badfs] 0.1" in listing.stdout
    data = json.loads(run("plugins", "--json", env=third_party).stdout)
    status = {p["name"]: p["status"] for p in data["plugins"]}
    assert status["brokenfs"] == "failed" and status["badfs"] == "loaded"
    migrate = run("migrate", "--plugins", "brokenfs,swap", env=third_party)
    assert_bad_input(migrate, "brokenfs[brokenfs]", "failed to load")


# -- output that cannot be written ----------------------------------------------------------------

WRITERS = [
    ["migrate", CONFIGS / "small.toml"],
    ["migrate", CONFIGS / "small.toml", "--json"],
    ["plugins"],
    ["plugins", "--json"],
    ["config", "check", CONFIGS / "small.toml"],
    ["config", "check", CONFIGS / "small.toml", "--json"],
    ["--version"],
    ["--help"],
    ["bench", "--help"],
    ["bench", "--quick", "--pages", "20", "--repeat", "1", "--plugins", "ext2"],
]


@pytest.mark.parametrize("args", WRITERS, ids=lambda a: " ".join(map(str, a)))
@pytest.mark.parametrize("stdout", ["closed", "/dev/full"])
def test_output_that_cannot_be_written_is_one_line_and_exit_1(
    args: list[str | Path], stdout: str
) -> None:
    if stdout == "closed":
        proc = run(*args, stdout=subprocess.DEVNULL, close_stdout=True)
        why = "it is closed"
    else:
        if not Path("/dev/full").exists():
            pytest.skip("no /dev/full on this system")
        with open("/dev/full", "w") as full:
            proc = run(*args, stdout=full)
        why = "No space left on device"
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if not line.startswith("... ")]
    assert len(errors) == 1, proc.stderr  # bench's progress lines aside
    assert errors[0].startswith("fsaops: error: cannot write to standard output: ")
    assert why in errors[0]


@pytest.mark.parametrize("command", ["migrate", "migrate --json", "diff"])
@pytest.mark.parametrize("stdout", ["closed", "/dev/full"])
def test_output_that_cannot_be_written_still_leaves_the_commands_page(
    command: str, stdout: str, tmp_path: Path
) -> None:
    """The run is done: its page says what it came to, not an earlier command's page."""
    if stdout == "/dev/full" and not Path("/dev/full").exists():
        pytest.skip("no /dev/full on this system")
    report = tmp_path / "report.json"
    report.write_text(run("migrate", CONFIGS / "small.toml", "--json").stdout, encoding="utf-8")
    page = tmp_path / "page.html"
    page.write_text("an earlier command's page", encoding="utf-8")
    words: list[str | Path] = [*command.split(), "--html", page]
    words += [report, report] if command == "diff" else [CONFIGS / "small.toml"]
    if stdout == "closed":
        proc = run(*words, stdout=subprocess.DEVNULL, close_stdout=True)
    else:
        with open("/dev/full", "w") as full:
            proc = run(*words, stdout=full)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.startswith("fsaops: error: cannot write to standard output: ")
    html = page.read_text(encoding="utf-8")
    assert "an earlier command's page" not in html
    said = "The runs are the same" if command == "diff" else 'data-status="ok"'
    assert said in html and "did not finish" not in html


def test_a_closed_standard_error_changes_nothing_on_standard_output() -> None:
    """The event stream has nowhere to go: it is dropped, never moved to standard output."""
    proc = guarded.run(
        [
            "sh",
            "-c",
            'exec "$@" 2>&-',
            "sh",
            sys.executable,
            "-m",
            "fsaops",
            "migrate",
            CONFIGS / "small.toml",
            "--json",
            "--log-level",
            "debug",
        ]
    )
    assert proc.returncode == 0
    assert json.loads(proc.stdout)["status"] == "ok"


def test_a_full_standard_error_changes_nothing_on_standard_output() -> None:
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full on this system")
    args: list[str | Path] = ["migrate", CONFIGS / "small.toml", "--json", "--log-level", "debug"]
    with open("/dev/full", "w") as full:
        proc = guarded.run([sys.executable, "-m", "fsaops", *args], stderr=full)
    assert proc.returncode == 0
    assert json.loads(proc.stdout)["status"] == "ok"


@pytest.mark.parametrize("args", [["migrate", CONFIGS / "small.toml"], ["plugins", "--json"]])
def test_a_reader_that_goes_away_ends_the_command_quietly(args: list[str | Path]) -> None:
    """``fsaops ... | head``: the pipe is closed before anything is written; exit 0, no noise."""
    read, write = os.pipe()
    os.close(read)
    try:
        proc = run(*args, stdout=write)
    finally:
        os.close(write)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""


@pytest.mark.parametrize(
    ("signame", "said"),
    [
        ("SIGINT", "interrupted"),
        ("SIGTERM", "terminated (SIGTERM)"),
        ("SIGHUP", "terminated (SIGHUP)"),
    ],
)
def test_ctrl_c_or_sigterm_during_a_run_is_exit_130(
    tmp_path: Path, signame: str, said: str
) -> None:
    """``SIGTERM`` (``kill``, ``timeout``, a stopped CI job) ended the run at once, with no JSON.

    So did ``SIGHUP`` (the terminal closed, an ``ssh`` connection dropped).
    """
    import signal
    import time

    started = tmp_path / "started"
    code = (
        "import time, fsaops\nfrom fsaops import AddressSpaceOperations, FileSystemType\n"
        "from fsaops.buffer import mpage_readpage, nobh_commit_write, nobh_prepare_write\n"
        "from fsaops.buffer import nobh_writepage\n"
        f"def mp(newpage, page):\n    open({str(started)!r}, 'w').close()\n    time.sleep(60)\n"
        "T = AddressSpaceOperations(name='slow_aops', readpage=mpage_readpage, "
        "writepage=nobh_writepage, prepare_write=nobh_prepare_write, "
        "commit_write=nobh_commit_write, migratepage=mp)\n"
        "@fsaops.hookimpl\ndef fsaops_filesystem_types():\n"
        "    return [FileSystemType(name='slow', modes={'default': T})]\n"
    )
    env = guarded.install(tmp_path, "slow", code)
    scenario = tmp_path / "slow.toml"
    scenario.write_text('[plugins]\nload = ["slow", "swap"]\n[[mount]]\nfs = "slow"\npages = 4\n')
    proc = guarded.start([sys.executable, "-m", "fsaops", "migrate", scenario, "--json"], env=env)
    try:
        deadline = time.monotonic() + 60
        while not started.exists():
            assert time.monotonic() < deadline, "migratepage was never called"
            time.sleep(0.05)
        proc.send_signal(getattr(signal, signame))
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 130
    assert err.startswith(f"fsaops: error: {said} while migrating the page at pfn "), err
    guarded.interrupted_while_migrating(err, signame)
    assert "(table slow_aops of plugin slow-dist[slow], pass " in err
    assert json.loads(out)["status"] == "interrupted"


THIRDFS = """\
import attrs, fsaops
from fsaops_ext2 import EXT2, ext2_nobh_aops
@fsaops.hookimpl
def fsaops_filesystem_types():
    table = attrs.evolve(ext2_nobh_aops, name="thirdfs_aops")
    return [attrs.evolve(EXT2, name="thirdfs", modes={"default": table}, page_cache={})]
"""


def test_the_built_in_scenario_says_which_selected_filesystem_it_did_not_try(
    tmp_path: Path,
) -> None:
    """Its mounts are fixed: a third-party filesystem is loaded but never mounted."""
    env = guarded.install(tmp_path, "thirdfs", THIRDFS)
    proc = guarded.fsaops("migrate", "--plugins", "thirdfs,ext2,swap", env=env)
    assert proc.returncode == 0, proc.stderr
    assert "not mounted: filesystem 'thirdfs', which a selected plugin provides" in proc.stdout
    assert "not tried: filesystem 'thirdfs' (not mounted)" in " ".join(proc.stdout.split())
    proc = guarded.fsaops("migrate", "--plugins", "thirdfs,ext2,swap", "--json", env=env)
    assert json.loads(proc.stdout)["not_mounted"] == ["thirdfs"]
    # The default selection of the built-in scenario is its own plugins; a scenario file
    # mounts what it names, and the plugins it loads but does not mount are its choice.
    proc = guarded.fsaops("migrate", "--json", env=env)
    assert json.loads(proc.stdout)["not_mounted"] == []
    scenario = tmp_path / "s.toml"
    scenario.write_text('[[mount]]\nfs = "ext2"\npages = 8\n[processes]\ncount = 0\n')
    proc = guarded.fsaops("migrate", scenario, "--plugins", "thirdfs,ext2,swap", "--json", env=env)
    assert json.loads(proc.stdout)["not_mounted"] == []


@pytest.mark.parametrize("columns", ["0", "-3", "abc", "100"])
def test_a_terminal_of_no_width_still_gets_the_report(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], columns: str
) -> None:
    """``COLUMNS=0`` on a terminal drew nothing, even for a failed run's report."""
    import fsaops.cli

    monkeypatch.setattr(fsaops.cli, "_isatty", lambda stream: True)
    monkeypatch.setenv("COLUMNS", columns)
    monkeypatch.delenv("FSAOPS_PLUGINS", raising=False)
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    assert "ext2" in out and "xfs_buftarg" in out


@pytest.mark.parametrize("columns", ["1", "3", "10", "39"])
def test_a_narrow_terminal_still_gets_the_numbers_and_the_verdict(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], columns: str
) -> None:
    """Under about ten columns rich drew the tables without their numbers and no result line."""
    import fsaops.cli

    monkeypatch.setattr(fsaops.cli, "_isatty", lambda stream: True)
    monkeypatch.setenv("COLUMNS", columns)
    monkeypatch.delenv("FSAOPS_PLUGINS", raising=False)
    small = str(Path(__file__).parent / "configs" / "small.toml")
    assert main(["migrate", small, "--no-progress"]) == 0
    out = re.sub(r"\x1b\[[0-9;]*m", "", capsys.readouterr().out)
    assert "\nresult      OK:" in out
    assert max(len(line) for line in out.splitlines()) == fsaops.cli.MIN_WIDTH


@pytest.mark.parametrize(
    ("command", "helped"),
    [
        (["migrate", "--jso"], "fsaops migrate"),
        (["migrate", "s.toml", "--jso"], "fsaops migrate"),
        (["config", "check", "a.toml", "b.toml"], "fsaops config check"),
        (["plugins", "extra"], "fsaops plugins"),
        (["diff", "a", "b", "c"], "fsaops diff"),
        (["explore", "--fs", "ext2", "zz", "yy"], "fsaops explore"),
        (["bench", "--jso"], "fsaops bench"),
    ],
)
def test_a_word_left_over_sends_the_user_to_the_command_s_own_help(
    capsys: pytest.CaptureFixture[str], command: list[str], helped: str
) -> None:
    """It said ``(see fsaops --help)``, whose page lists no command's options."""
    assert main(command) == 2
    assert capsys.readouterr().err.rstrip().endswith(f"(see {helped} --help)")


@pytest.mark.parametrize("command", [["migrate", "--jso"], ["plugins", "--js"], ["bench", "--jso"]])
def test_an_abbreviated_option_is_not_taken_for_the_option(
    capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    """``--jso`` was taken for ``--json``, but the JSON envelope is promised only for ``--json``."""
    assert main(command) == 2
    assert f"unrecognized arguments: {command[1]}" in capsys.readouterr().err


def test_html_over_the_scenario_or_standard_output_is_bad_input(tmp_path: Path) -> None:
    scenario = tmp_path / "s.toml"
    text = (Path(__file__).parent / "configs" / "small.toml").read_text(encoding="utf-8")
    scenario.write_text(text, encoding="utf-8")
    proc = run("migrate", str(scenario), "--html", str(scenario))
    assert_bad_input(proc, "is the scenario this command reads; name another file")
    assert scenario.read_text(encoding="utf-8") == text
    out = tmp_path / "out.json"
    for page in ("/dev/stdout", str(out)):  # > out.json --html out.json too
        with out.open("w", encoding="utf-8") as stream:
            proc = run("migrate", scenario, "--json", "--html", page, stdout=stream)
        assert proc.returncode == 2
        assert "is the command's standard output" in json.loads(out.read_text())["error"]
    err = tmp_path / "err.txt"
    for page in ("/dev/stderr", str(err)):  # 2> err.txt --html err.txt: standard error, said so
        with err.open("w", encoding="utf-8") as stream:
            proc = run("migrate", scenario, "--html", page, stderr=stream)
        assert proc.returncode == 2
        said = err.read_text(encoding="utf-8")
        assert f"--html {page}: is the command's standard error; name a file" in said, said


def _input_is_output(proc: subprocess.CompletedProcess[str], words: str) -> None:
    """Exit 2 and one line naming ``words`` on stderr (standard output went to a file)."""
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("fsaops: error: ") and words in proc.stderr, proc.stderr


@pytest.mark.parametrize(
    "command",
    [
        ["migrate", "{scenario}", "--json"],
        ["migrate", "{scenario}"],
        ["config", "check", "{scenario}"],
        ["explore", "{scenario}", "--fs", "ext2", "--json"],
        ["plugins", "--config", "{scenario}"],
    ],
)
def test_output_appended_to_the_scenario_is_bad_input(tmp_path: Path, command: list[str]) -> None:
    """``fsaops migrate s.toml >> s.toml`` added the report to the scenario, exit 0."""
    scenario = tmp_path / "s.toml"
    text = (Path(__file__).parent / "configs" / "small.toml").read_text(encoding="utf-8")
    scenario.write_text(text, encoding="utf-8")
    args = [word.format(scenario=scenario) for word in command]
    with scenario.open("a", encoding="utf-8") as stream:
        proc = run(*args, stdout=stream)
    _input_is_output(
        proc,
        f"{scenario}: is the scenario this command reads, and its output goes to it too",
    )
    assert scenario.read_text(encoding="utf-8") == text, "nothing written over the scenario"


def test_output_sent_over_the_scenario_runs_no_other_scenario(tmp_path: Path) -> None:
    """``> s.toml`` empties it before fsaops starts: the empty scenario, the default machine, ran in
    its place, and the report said it was s.toml's, exit 0."""
    scenario = tmp_path / "s.toml"
    with scenario.open("w", encoding="utf-8") as stream:
        proc = run("migrate", scenario, "--json", stdout=stream)
    _input_is_output(proc, "is the scenario this command reads, and its output goes to it too")
    assert scenario.read_text(encoding="utf-8") == ""


@pytest.mark.parametrize(
    ("command", "mode"),
    [
        (["config", "check", "{scenario}"], "a"),
        (["migrate", "{scenario}", "--log-level", "info", "--no-progress"], "a"),
        (["migrate", "{scenario}", "--log-level", "info", "--json"], "r+"),
    ],
)
def test_standard_error_sent_to_the_scenario_is_bad_input(
    tmp_path: Path, command: list[str], mode: str
) -> None:
    """``2>> s.toml`` (or ``2<> s.toml``) wrote log lines, warnings and errors into the scenario.

    The command said nothing was wrong (exit 0), and the scenario was no longer TOML.
    """
    scenario = tmp_path / "s.toml"
    text = (Path(__file__).parent / "configs" / "small.toml").read_text(encoding="utf-8")
    scenario.write_text(text, encoding="utf-8")
    args = [word.format(scenario=scenario) for word in command]
    with scenario.open(mode, encoding="utf-8") as stream:
        proc = run(*args, stderr=stream)
    assert proc.returncode == 2
    assert scenario.read_text(encoding="utf-8") == text, "nothing written into the scenario"
    said = "is the scenario this command reads, and its standard error goes to it too"
    if "--json" in command:
        assert said in json.loads(proc.stdout)["error"]
    else:
        assert proc.stdout.startswith(f"fsaops: error: {scenario}: {said}")


def test_diff_output_appended_to_a_report_is_bad_input(tmp_path: Path) -> None:
    """``fsaops diff a.json b.json >> a.json`` added the comparison to report A, exit 0."""
    proc = run("migrate", Path(__file__).parent / "configs" / "small.toml", "--json")
    assert proc.returncode == 0, proc.stderr
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(proc.stdout, encoding="utf-8")
    b.write_text(proc.stdout, encoding="utf-8")
    for which, args in (("report A", [a, b]), ("report B", [b, a])):
        with a.open("a", encoding="utf-8") as stream:
            proc = run("diff", *args, stdout=stream)
        _input_is_output(proc, f"{a}: is {which} this command reads, and its output goes to it")
        assert a.read_text(encoding="utf-8") == b.read_text(encoding="utf-8")


def test_a_page_that_cannot_be_written_keeps_the_json_report(tmp_path: Path) -> None:
    """A file size limit: the page fails (exit 1, one line), the report is still printed."""
    import resource

    def small_files() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (8192, 8192))

    page = tmp_path / "page.html"
    scenario = Path(__file__).parent / "configs" / "small.toml"
    proc = subprocess.run(
        [sys.executable, "-m", "fsaops", "migrate", str(scenario), "--json", "--html", str(page)],
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=small_files,
        env={k: v for k, v in os.environ.items() if k != "FSAOPS_PLUGINS"},
        check=False,
    )
    assert proc.returncode == 1
    assert json.loads(proc.stdout)["status"] == "ok"
    assert proc.stderr.startswith(f"fsaops: error: --html {page}: cannot write it: File too large")
    assert not page.exists()


@pytest.mark.parametrize("seed", ["\u0663", "\uff13", "1_000", "1e3", " "])
def test_a_seed_is_digits_0_to_9(capsys: pytest.CaptureFixture[str], seed: str) -> None:
    """int() takes other scripts' digits and underscores: '\u0663' ran as seed 3."""
    assert main(["migrate", "--seed", seed, "--json"]) == 2
    assert "expected a non-negative integer" in json.loads(capsys.readouterr().out)["error"]


@pytest.mark.parametrize("seed", ["+5", " 5", "5 ", "\t5", "-0", "5\n"])
def test_a_seed_has_no_sign_nor_spaces(capsys: pytest.CaptureFixture[str], seed: str) -> None:
    """int() takes '+5' and ' 5': they ran as seed 5, though a seed is the digits 0 to 9."""
    assert main(["migrate", "--seed", seed, "--json"]) == 2
    error = json.loads(capsys.readouterr().out)["error"]
    assert "argument --seed: expected a non-negative integer of at most" in error
    assert error.endswith(f"got {seed if seed == '-0' else repr(seed)} (see fsaops migrate --help)")


@pytest.mark.parametrize(
    ("option", "text", "kind"),
    [
        ("--pages", "+4", "a positive integer"),
        ("--pages", " 4", "a positive integer"),
        ("--preemptions", "+1", "a non-negative integer"),
        ("--preemptions", "1 ", "a non-negative integer"),
        ("--mount", "+0", "a non-negative integer"),
        ("--pct", " 2", "a positive integer"),
        ("--schedules", "+10", "a positive integer"),
        ("--seed", "+1", "a non-negative integer of at most"),
    ],
)
def test_explore_numbers_have_no_sign_nor_spaces(
    capsys: pytest.CaptureFixture[str], option: str, text: str, kind: str
) -> None:
    assert main(["explore", "--fs", "ext2", option, text, "--json"]) == 2
    error = json.loads(capsys.readouterr().out)["error"]
    assert error.startswith(f"argument {option}: expected {kind}")
    assert f"got {text!r}" in error


def test_the_reports_config_says_the_seed_the_run_had(capsys: pytest.CaptureFixture[str]) -> None:
    """--seed overrode [workload] seed, but the report's config still gave the file's."""
    assert main(["migrate", "--seed", "5", "--json", "--no-progress"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["seed"] == report["config"]["workload"]["seed"] == 5


@pytest.mark.parametrize("command", ["migrate", "diff"])
def test_a_page_the_disk_refuses_leaves_no_earlier_page_standing(
    tmp_path: Path, command: str
) -> None:
    """A file size limit (or a full disk) once the work is done: the old page went on standing."""
    page = tmp_path / "page.html"
    page.write_text("<p>the page of an earlier run: ok</p>\n", encoding="utf-8")
    if command == "migrate":
        args = ["migrate", "--no-progress", "--json", "--html", str(page)]
    else:
        report = tmp_path / "a.json"
        status, out, err = _inproc("migrate", "--json", "--no-progress")
        assert status == 0, err
        report.write_text(out, encoding="utf-8")
        args = ["diff", str(report), str(report), "--html", str(page)]
    code = (
        "import resource, sys\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (8192, 8192))\n"
        "from fsaops.cli import main\n"
        f"sys.exit(main({args!r}))\n"
    )
    proc = run(code=code)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert f"--html {page}: cannot write it: File too large; the page an earlier command left " in (
        proc.stderr
    )
    assert not page.exists()
    assert list(tmp_path.iterdir()) == ([] if command == "migrate" else [tmp_path / "a.json"])
