"""Edges of a scenario's input: its name, seeds, numbers, the working folder, what the docs say."""

from __future__ import annotations

import html
import json
import os
import re
import shlex
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest

from fsaops.config import (
    BUILTIN_SOURCE,
    DEFAULT_SCENARIO,
    check_config,
    default_config,
    parse_config,
)
from fsaops.config.checks import FRAME_BYTES
from fsaops.config.schema import MAX_SEED
from fsaops.errors import ConfigError
from fsaops.explore.api import MAX_SEED as EXPLORE_MAX_SEED
from fsaops.memory import MAKE_FRAMES
from fsaops.plugins import Registry, load_plugins
from fsaops.scenario import plan_scenario, run_scenario
from inproc import SCENARIOS, fsaops

DOCS = Path(__file__).resolve().parent.parent / "docs"
SMALL = str(SCENARIOS / "small.toml")

# Two mounts, one of a filesystem a selection of ext2 alone does not serve.
TWO_MOUNTS = '[[mount]]\nfs = "xfs"\npages = 8\n[[mount]]\nfs = "ext2"\npages = 8\n'
# Pages that can be neither dirty nor pinned: executed in place, and no anonymous memory.
NO_STATE = (
    '[plugins]\nload = ["ext2"]\n[[mount]]\nfs = "ext2"\nmode = "xip"\npages = 8\n'
    "[workload]\ndirty = 0.5\npinned = 0.5\n"
)
ONE_MOUNT = '[plugins]\nload = ["ext2"]\n[[mount]]\nfs = "ext2"\npages = 8\n'


@pytest.fixture
def folder(tmp_path: Path) -> Iterator[Path]:
    """A working folder of the test's own."""
    old = os.getcwd()
    os.chdir(tmp_path)
    try:
        yield tmp_path
    finally:
        os.chdir(old)


def ext2_only() -> Registry:
    return load_plugins(cli=["ext2"], env={})


# -- F1: the built-in scenario is a flag, not a name ------------------------------------


def errors_of(err: str, name: str) -> str:
    return err.replace(name, "FILE")


def test_a_file_named_as_the_builtin_scenario_gets_the_verdict_of_any_file(folder: Path) -> None:
    for text in (TWO_MOUNTS, NO_STATE):
        (folder / BUILTIN_SOURCE).write_text(text)
        (folder / "mine.toml").write_text(text)
        args = ("--plugins", "ext2") if text is TWO_MOUNTS else ()
        named = fsaops("config", "check", "mine.toml", *args)
        builtin = fsaops("config", "check", BUILTIN_SOURCE, *args)
        assert named[0] == builtin[0] == 2
        assert errors_of(builtin[2], f"./{BUILTIN_SOURCE}") == errors_of(named[2], "mine.toml")
        run = fsaops("migrate", BUILTIN_SOURCE, *args)
        assert run[0] == 2
        assert errors_of(run[2], f"./{BUILTIN_SOURCE}") == errors_of(named[2], "mine.toml")


def test_a_file_named_as_the_builtin_scenario_is_run_again_as_that_file(folder: Path) -> None:
    (folder / BUILTIN_SOURCE).write_text(ONE_MOUNT)
    status, out, err = fsaops("migrate", BUILTIN_SOURCE, "--json", "--html", "page.html")
    assert status == 0, err
    report = json.loads(out)
    assert report["source"] == f"./{BUILTIN_SOURCE}"
    assert report["left_out"] == [] if "left_out" in report else True
    page = (folder / "page.html").read_text()
    rerun = re.search(r"To run it again: <code>([^<]*)</code>", page)
    assert rerun is not None
    assert rerun.group(1).startswith("fsaops migrate &#x27;./&lt;built-in scenario&gt;&#x27; ")


def test_the_builtin_scenario_is_run_again_without_a_file(folder: Path) -> None:
    status, _out, err = fsaops("migrate", "--plugins", "ext2", "--html", "page.html")
    assert status == 0, err
    page = (folder / "page.html").read_text()
    assert (
        "To run it again: <code>fsaops migrate --seed 42 --semantics v4 --plugins ext2</code>"
        in page
    )


def test_only_the_builtin_scenario_is_cut_to_fit_the_selection() -> None:
    registry = ext2_only()
    builtin = default_config()
    assert builtin.builtin
    assert attrs.evolve(builtin, workload=attrs.evolve(builtin.workload, seed=3)).builtin
    plan = plan_scenario(builtin, registry, BUILTIN_SOURCE)
    assert {m.fs for m in plan.config.mount} == {"ext2"}
    assert plan.left_out
    # The same text, given rather than built in, is a scenario like any other,
    # whatever it is called.
    same = parse_config(DEFAULT_SCENARIO, BUILTIN_SOURCE)
    assert same == builtin and hash(same) == hash(builtin)
    assert not same.builtin
    with pytest.raises(ConfigError, match=r"mount\[\d\]\.fs: filesystem 'ext3'"):
        plan_scenario(same, registry, BUILTIN_SOURCE)
    with pytest.raises(ConfigError, match=r"mount\[0\]\.fs: filesystem 'xfs'"):
        run_scenario(parse_config(TWO_MOUNTS), registry)


def test_workload_states_are_checked_for_every_scenario_but_the_builtin_one() -> None:
    registry = load_plugins(cli=["ext2"], env={})
    config = parse_config(NO_STATE)
    with pytest.raises(ConfigError, match=r"workload\.dirty: no page of this scenario"):
        plan_scenario(config, registry, BUILTIN_SOURCE)  # named so, but given
    plan = plan_scenario(config, registry, "given.toml", builtin=True)  # said to be built in
    with pytest.raises(ConfigError, match=r"workload\.dirty: no page of this scenario"):
        check_config(plan.config, registry, BUILTIN_SOURCE)
    check_config(plan.config, registry, "given.toml", builtin=True)


# -- F2: one bound for seeds -----------------------------------------------------------


def test_one_bound_for_seeds_everywhere(folder: Path) -> None:
    assert MAX_SEED == EXPLORE_MAX_SEED == 2**64 - 1
    (folder / "big.toml").write_text(f"{ONE_MOUNT}[workload]\nseed = {MAX_SEED + 1}\n")
    want = f"workload.seed: expected an integer from 0 to {MAX_SEED}, got {MAX_SEED + 1}"
    for command in ("config", "check"), ("migrate",):
        status, _out, err = fsaops(*command, "big.toml")
        assert status == 2
        assert want in err
    status, _out, err = fsaops("migrate", "--seed", str(MAX_SEED + 1), SMALL)
    assert status == 2
    bound = f"--seed: expected a non-negative integer of at most {MAX_SEED}, got"
    assert f"{bound} {MAX_SEED + 1}" in err
    status, _out, err = fsaops("migrate", "--seed", "9" * 5000, SMALL)
    assert status == 2
    assert f"{bound} a number of 5,000 digits (see" in err  # it is one, but too large


def test_diff_reads_every_seed_a_report_can_have_and_no_other(folder: Path) -> None:
    status, out, err = fsaops("migrate", "--json", "--seed", str(MAX_SEED), SMALL)
    assert status == 0, err
    (folder / "top.json").write_text(out)
    status, _out, err = fsaops("diff", "top.json", "top.json")
    assert status == 0, err
    report = json.loads(out)
    report["seed"] = MAX_SEED + 1
    (folder / "over.json").write_text(json.dumps(report))
    status, _out, err = fsaops("diff", "top.json", "over.json")
    assert status == 2
    assert f"over.json: not a report: 'seed' is {MAX_SEED + 1}, not one of 0 to {MAX_SEED}" in err


# -- F3: the swap table's facts without a swap device ------------------------------------


def test_without_swap_slots_the_swap_row_names_the_swap_plugins_table(folder: Path) -> None:
    scenario = '[plugins]\nload = ["swap"]\n[swap]\nslots = 0\n[processes]\nanon_pages = 10\n'
    (folder / "noslots.toml").write_text(scenario)
    status, out, err = fsaops("migrate", "--json", "noslots.toml")
    assert status == 0, err
    row = json.loads(out)["by_aops"]["swap_aops"]
    assert (row["filesystem"], row["mode"]) == ("swap", "default")
    assert row["migratepage"] == "fsaops.migrate.migrate_page"
    assert row["errors"] == {"ENOMEM": 10}
    # No anonymous page tried: no row, as before.
    (folder / "none.toml").write_text(scenario.replace("10", "0"))
    status, out, err = fsaops("migrate", "--json", "none.toml")
    assert status == 0, err
    assert "swap_aops" not in json.loads(out)["by_aops"]


# -- F4: a relative path in a working folder that was deleted -------------------------------


def test_a_relative_output_file_in_a_deleted_working_folder_is_bad_input(folder: Path) -> None:
    status, out, err = fsaops("migrate", "--json", SMALL)
    assert status == 0, err
    (folder / "a.json").write_text(out)
    gone = folder / "gone"
    gone.mkdir()
    os.chdir(gone)
    gone.rmdir()
    for args in (
        ("migrate", SMALL, "--html", "out.html", "--json"),
        ("diff", str(folder / "a.json"), str(folder / "a.json"), "--html", "out.html"),
    ):
        status, out, err = fsaops(*args)
        assert status == 2, err
        assert "fsaops: error: --html out.html: the working folder no longer exists\n" in err
    status, out, _err = fsaops("migrate", SMALL, "--html", "out.html", "--json")
    assert json.loads(out)["status"] == "bad input"
    status, _out, err = fsaops("config", "check", "small.toml")
    assert status == 2
    assert "small.toml: the working folder no longer exists" in err


# -- F5: numbers of seconds, and numbers too small to tell from 0 ------------------------------


@pytest.mark.parametrize("text", ["٣", "1_0", "1e-400", "0x10", "inf", " "])
def test_timeout_takes_the_digits_0_to_9_and_no_number_that_would_be_0(text: str) -> None:
    status, _out, err = fsaops("migrate", SMALL, "--timeout", text)
    assert status == 2
    assert "argument --timeout" in err
    if text == "1e-400":
        assert "'1e-400' is not 0, but too small to tell from 0 (no limit)" in err


@pytest.mark.parametrize("limit", ["0.000001", "1e-9"])
def test_a_run_past_a_tiny_time_limit_is_a_timeout_every_time(tmp_path: Path, limit: str) -> None:
    """A limit shorter than the watchdog's first look: the end of the run is checked too."""
    path = tmp_path / "tiny.toml"
    path.write_text(
        '[plugins]\nload = ["ext2"]\n[kernel]\nnode_memory = "1MiB"\n'
        '[[mount]]\nfs = "ext2"\npages = 4\n[processes]\nanon_pages = 0\n',
        encoding="utf-8",
    )
    for _ in range(3):
        status, out, _err = fsaops("migrate", str(path), "--timeout", limit, "--json")
        report = json.loads(out)
        assert (status, report["status"]) == (1, "timeout"), report
        assert f"went past its time limit of {float(limit):g} s" in report["error"]


@pytest.mark.parametrize(("text", "seconds"), [("2.5", 2.5), ("1e3", 1000.0), (" 7 ", 7.0)])
def test_timeout_takes_decimal_numbers(text: str, seconds: float) -> None:
    status, _out, err = fsaops("config", "check", SMALL)  # warm the plugins
    assert status == 0, err
    from fsaops.cli import _seconds

    assert _seconds(text) == seconds


@pytest.mark.parametrize("text", ["٣", "1_0", "1e-400"])
def test_plugin_timeout_takes_the_digits_0_to_9(text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FSAOPS_PLUGIN_TIMEOUT", text)
    status, _out, err = fsaops("config", "check", SMALL)
    assert status == 2
    assert (
        f"FSAOPS_PLUGIN_TIMEOUT must be a positive number of seconds, at most 3600, not {text!r}"
        in err
    )


@pytest.mark.parametrize(
    "key", ["kernel.timeout", "workload.dirty", "workload.swapout", "faults.alloc_fail"]
)
def test_a_number_too_small_to_tell_from_0_is_refused_in_the_file(key: str) -> None:
    table, name = key.split(".")
    with pytest.raises(ConfigError) as caught:
        parse_config(f"[{table}]\n{name} = 1e-400\n", "tiny.toml")
    assert str(caught.value) == (
        f"tiny.toml: {key}: 1e-400 is not 0, but too small to tell from 0; "
        "write 0 or a larger number"
    )
    assert parse_config(f"[{table}]\n{name} = 0e-400\n").fraction("dirty") == 0.0  # 0 as written


@pytest.mark.parametrize(
    ("written", "shown"),
    [("1000000.5", "1000000.5"), ("1000000.0001", "1000000.0001"), ("2000000", "2000000")],
)
def test_a_time_limit_out_of_range_is_named_as_written(
    tmp_path: Path, written: str, shown: str
) -> None:
    """Before, ``kernel.timeout = 1000000.5`` was refused as ``got 1e+06``: the limit itself."""
    path = tmp_path / "t.toml"
    path.write_text(f"[kernel]\ntimeout = {written}\n", encoding="utf-8")
    for command in (["config", "check"], ["migrate", "--json"]):
        status, _out, err = fsaops(*command, str(path))
        assert status == 2
        assert err == (
            f"fsaops: error: {path}: kernel.timeout: expected a number of seconds from 0 "
            f"(no limit) to 1000000, got {shown}\n"
        )


def test_a_number_too_small_for_an_integer_key_is_named_as_written() -> None:
    with pytest.raises(
        ConfigError, match=r"kernel\.nodes: expected an integer, got the number 1e-400"
    ):
        parse_config("[kernel]\nnodes = 1e-400\n")


# -- F6, F7: what configuration.md says -----------------------------------------------------


def configuration_md() -> str:
    return " ".join((DOCS / "configuration.md").read_text(encoding="utf-8").split())


def test_the_docs_say_what_a_large_empty_node_costs() -> None:
    """A frame is an object once the allocator reaches it, in batches, as the code has it."""
    text = configuration_md()
    assert "costs a few pages of memory" not in text
    assert "every frame of every node is a Python object from the start" not in text
    assert FRAME_BYTES == 200
    assert MAKE_FRAMES == 1024
    assert (
        "a node makes a frame's object (about 200 bytes) only when its allocator first "
        "reaches the frame, 1,024 frames at a time" in text
    )


def test_config_check_and_migrate_differ_only_where_the_docs_say(folder: Path) -> None:
    (folder / "nomig.toml").write_text(f"{ONE_MOUNT}[kernel]\nmigration = false\n")
    status, out, _err = fsaops("config", "check", "nomig.toml")
    assert status == 0
    assert "note: kernel.migration = false" in out
    status, _out, err = fsaops("migrate", "nomig.toml")
    assert status == 2
    assert "kernel.migration = false: this kernel is built without CONFIG_MIGRATION" in err
    text = configuration_md()
    assert "first rejects exactly what the second would, but for one scenario" in text
    assert "{confval}`kernel.migration` `= false` passes `config check` with a note" in text


# -- allocation failures under [faults] alloc_fail ---------------------------------------------


def alloc_fail_run(semantics: str) -> dict[str, object]:
    registry = load_plugins(cli=["ext2"], env={})
    config = parse_config(
        f'[kernel]\nsemantics = "{semantics}"\n[plugins]\nload = ["ext2"]\n'
        '[[mount]]\nfs = "ext2"\nfiles = 2\npages = 600\n[faults]\nalloc_fail = 0.05\n'
    )
    report = run_scenario(config, registry)
    return {
        "enomem": report.totals.not_migrated,
        "moved": report.totals.moved,
        "alloc_fail": report.faults.get("alloc_fail", 0),
    }


def test_an_allocation_failure_ends_the_chunk_as_the_docs_say() -> None:
    # From 2.6.16 every new page of a chunk (257) is allocated before any
    # page of it is tried: at 0.05 a chunk is allocated whole once in about
    # 500,000, so no page moves and every one is not migrated (ENOMEM).
    newer = alloc_fail_run("2.6.17")
    assert newer == {"enomem": 600, "moved": 0, "alloc_fail": 3}
    # V4 allocates one new page per migrate_pages call: the pages tried
    # before the failure moved; the rest of the chunk was not tried.
    v4 = alloc_fail_run("v4")
    assert v4["alloc_fail"] == 3
    assert 0 < int(str(v4["moved"])) < 600
    text = configuration_md()
    assert "about 500,000" in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["migrate", ""], "expected a scenario file name, got an empty string"),
        (["config", "check", ""], "expected a scenario file name, got an empty string"),
        (["explore", "", "--fs", "ext2"], "expected a scenario file name, got an empty string"),
        (["diff", "", SMALL], "expected a report file name, got an empty string"),
    ],
)
def test_an_empty_file_name_is_named_as_such(args: list[str], message: str) -> None:
    """An unset shell variable as the file: the message was ``: no such file``, naming nothing."""
    status, _out, err = fsaops(*args)
    assert status == 2
    assert err == f"fsaops: error: {message}\n"


@pytest.mark.parametrize("name", ["--html=precious.toml", "-s.toml"])
def test_a_file_named_like_an_option_is_run_again_as_that_file(folder: Path, name: str) -> None:
    """The line the page gives runs the same file: not an option, not the built-in scenario."""
    (folder / name).write_text(ONE_MOUNT)
    status, _out, err = fsaops("migrate", "--html", "page.html", "--", name)
    assert status == 0, err
    page = (folder / "page.html").read_text()
    rerun = re.search(r"To run it again: <code>([^<]*)</code>", page)
    assert rerun is not None
    words = shlex.split(html.unescape(rerun.group(1)))
    assert words[:3] == ["fsaops", "migrate", f"./{name}"]
    (folder / "page.html").unlink()
    status, out, err = fsaops(*words[1:], "--json")
    assert status == 0, err
    assert json.loads(out)["source"] == f"./{name}"
    assert (folder / name).read_text() == ONE_MOUNT
