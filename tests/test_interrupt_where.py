"""Ctrl-C and ``SIGTERM`` say where they found the run, as a time limit does.

Each command runs as the program, in a subprocess, and gets real signals:
from outside, once plugin code is running (a ``migratepage`` that sleeps),
or from itself, at the moment the run reaches a phase (a hook on the
function that begins it).  The error line, the JSON envelope and the
``--html`` page name the page being migrated, its table, its plugin and
plugin code's ``file:line``, or the phase.  Before, they said only
``interrupted`` or ``terminated (SIGTERM)``.
"""

from __future__ import annotations

import json
import re
import signal
import sys
from pathlib import Path

import pytest

from guarded import install, one_error_line, one_json_object, run, signal_when, start

SLEEPER = """\
import time
import fsaops
from fsaops import AddressSpaceOperations, FileSystemType
from fsaops.buffer import mpage_readpage, nobh_commit_write, nobh_prepare_write, nobh_writepage
STARTED = {started!r}

def mp(newpage, page):
    {body}
    return 0

TABLE = AddressSpaceOperations(
    name="sleeper_aops", readpage=mpage_readpage, writepage=nobh_writepage,
    prepare_write=nobh_prepare_write, commit_write=nobh_commit_write, migratepage=mp,
)

@fsaops.hookimpl
def fsaops_filesystem_types():
    return [FileSystemType(name="sleeper", modes={{"default": TABLE}})]
"""

# The file that says the sleeper runs is made on the line that sleeps: a signal sent once it
# exists finds the plugin on that one line, whether it is still closing the file or asleep.
SLEEPS = 'open(STARTED, "w").close(); time.sleep(3600)'
SWALLOWS = (
    'while True:\n        try:\n            open(STARTED, "w").close(); time.sleep(3600)\n'
    "        except BaseException:\n            pass"
)

SAID = {"SIGINT": "interrupted", "SIGTERM": "terminated (SIGTERM)"}

ON_A_PAGE = (
    r"while migrating the page at pfn \d+ \(table sleeper_aops of plugin "
    r"sleeper-dist\[sleeper\], pass \d+(, in [^)]+)?\); in plugin code of sleeper-dist\[sleeper\] "
    r"\(sleeper\.mp, \S+sleeper\.py:8\)"
)
"""Where a signal finds the run while the sleeper's ``migratepage`` sleeps (line 8 of it)."""


def _sleeper(tmp_path: Path, body: str) -> tuple[Path, Path, dict[str, str]]:
    """The sleeper plugin installed, its scenario, the file it makes once it runs, its env."""
    started = tmp_path / "started"
    env = install(tmp_path, "sleeper", SLEEPER.format(started=str(started), body=body))
    scenario = tmp_path / "sleeper.toml"
    scenario.write_text(
        '[plugins]\nload = ["sleeper", "swap"]\n[[mount]]\nfs = "sleeper"\npages = 8\n'
        "[processes]\ncount = 0\nanon_pages = 0\n"
    )
    return scenario, started, env


@pytest.mark.parametrize("supervised", [True, False], ids=["supervised", "one-process"])
@pytest.mark.parametrize("signame", ["SIGINT", "SIGTERM"])
def test_a_signal_inside_migratepage_names_the_page_table_and_plugin_code(
    tmp_path: Path, signame: str, supervised: bool
) -> None:
    scenario, started, env = _sleeper(tmp_path, SLEEPS)
    if not supervised:
        env["FSAOPS_NO_SUPERVISOR"] = "1"
    page = tmp_path / "page.html"
    proc = start(
        [sys.executable, "-m", "fsaops", "migrate", scenario, "--json", "--html", page], env=env
    )
    out, err = signal_when(proc, started.exists, getattr(signal, signame), "migratepage ran")
    assert proc.returncode == 130, err
    assert "Traceback" not in err, err
    said = f"{re.escape(SAID[signame])} {ON_A_PAGE}"
    assert re.fullmatch(f"fsaops: error: {said}\n", err), err
    data = json.loads(out)
    assert data["status"] == "interrupted"
    assert re.fullmatch(said, data["error"]), data["error"]
    html = page.read_text(encoding="utf-8")
    assert "while migrating the page at pfn" in html and "sleeper_aops" in html


def test_a_second_ctrl_c_changes_nothing_of_what_the_first_said(tmp_path: Path) -> None:
    scenario, started, env = _sleeper(tmp_path, SLEEPS)
    proc = start([sys.executable, "-m", "fsaops", "migrate", scenario, "--json"], env=env)

    def ready() -> bool:
        if started.exists():
            proc.send_signal(signal.SIGINT)  # the first; signal_when sends the second at once
            return True
        return False

    out, err = signal_when(proc, ready, signal.SIGINT, "migratepage ran")
    assert proc.returncode == 130, err
    assert re.fullmatch(f"fsaops: error: interrupted {ON_A_PAGE}\n", err), err
    assert json.loads(out)["status"] == "interrupted"


@pytest.mark.parametrize("signame", ["SIGINT", "SIGTERM"])
def test_a_signal_plugin_code_swallows_still_names_where_it_found_the_run(
    tmp_path: Path, signame: str
) -> None:
    scenario, started, env = _sleeper(tmp_path, SWALLOWS)
    proc = start([sys.executable, "-m", "fsaops", "migrate", scenario, "--json"], env=env)
    out, err = signal_when(proc, started.exists, getattr(signal, signame), "migratepage ran")
    assert proc.returncode == 130, err
    said = f"{re.escape(SAID[signame])} {ON_A_PAGE.replace('py:8', 'py:10')}"
    assert re.fullmatch(f"fsaops: error: {said}; plugin code kept the run going; ended\n", err), err
    assert json.loads(out)["status"] == "interrupted"


HOOKED = r"""
import os, signal, sys
import fsaops.cli as cli, fsaops.scenario as scenario, fsaops.html_report as html_report

signum = getattr(signal, sys.argv.pop(1))
owner, name = {
    "start": (cli, "_read_config"),
    "build": (scenario.Scenario, "_build"),
    "prove": (scenario, "prove_placement"),
    "read back": (scenario.Scenario, "check_integrity"),
    "durability": (scenario, "prove_durability"),
    "invariants": (scenario, "check_kernel"),
    "report": (html_report, "render_report"),
}[sys.argv.pop(1)]
real = getattr(owner, name)

def hooked(*args, **kwargs):
    os.kill(os.getpid(), signum)
    os.kill(os.getpid(), signum)  # a second Ctrl-C, at once
    return real(*args, **kwargs)

setattr(owner, name, hooked)
sys.argv[0] = "fsaops"
cli.main()
"""

PHASES = {
    "start": "",
    "build": " while building the world",
    "prove": " while proving where every page went",
    "read back": " while reading pages back",
    "durability": " while proving durability (writeback, dropped cache, read-back)",
    "invariants": " while checking invariants",
}


@pytest.mark.parametrize("supervised", [True, False], ids=["supervised", "one-process"])
@pytest.mark.parametrize("phase", sorted(PHASES))
def test_a_signal_in_fsaops_own_code_names_the_phase(
    tmp_path: Path, phase: str, supervised: bool
) -> None:
    """A signal in fsaops's own code names the phase and no plugin code; before the scenario
    is read, the plain word."""
    scenario = tmp_path / "small.toml"
    scenario.write_text('[plugins]\nload = ["ext2", "swap"]\n[[mount]]\nfs = "ext2"\npages = 8\n')
    env = {} if supervised else {"FSAOPS_NO_SUPERVISOR": "1"}
    page = tmp_path / "page.html"
    args: list[str | Path] = ["migrate", scenario, "--json", "--no-progress", "--html", page]
    proc = run([sys.executable, "-c", HOOKED, "SIGINT", phase, *args], env=env, timeout=120)
    line = one_error_line(proc, 130)
    assert line == f"fsaops: error: interrupted{PHASES[phase]}"
    data = one_json_object(proc, "interrupted")
    assert data["error"] == f"interrupted{PHASES[phase]}"
    assert f"interrupted{PHASES[phase]}" in page.read_text(encoding="utf-8")


def test_a_signal_while_the_report_is_written_keeps_the_report_and_the_plain_word(
    tmp_path: Path,
) -> None:
    scenario = tmp_path / "small.toml"
    scenario.write_text('[plugins]\nload = ["ext2", "swap"]\n[[mount]]\nfs = "ext2"\npages = 8\n')
    page = tmp_path / "page.html"
    args: list[str | Path] = ["migrate", scenario, "--json", "--no-progress", "--html", page]
    proc = run([sys.executable, "-c", HOOKED, "SIGTERM", "report", *args], timeout=120)
    assert (proc.returncode, proc.stderr) == (130, "fsaops: error: terminated (SIGTERM)\n")
    assert json.loads(proc.stdout)["status"] == "ok"  # the report came first, whole


EXPLORE_HOOKED = r"""
import os, signal, sys
import fsaops.cli as cli, fsaops.explore.search as search

signum = getattr(signal, sys.argv.pop(1))
real = search.fork_run
calls = [0]

def hooked(*args, **kwargs):  # each schedule's process: the third one is interrupted
    calls[0] += 1
    if calls[0] == 3:
        os.kill(os.getpid(), signum)
    return real(*args, **kwargs)

search.fork_run = hooked
sys.argv[0] = "fsaops"
cli.main()
"""


@pytest.mark.parametrize("signame", ["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("pct", [False, True], ids=["systematic", "pct"])
def test_a_signal_during_explore_names_the_table_the_accessors_and_the_schedule(
    signame: str, pct: bool
) -> None:
    search = ["--pct", "2", "--schedules", "50"] if pct else []
    args = ["explore", "--fs", "ext2", "--tasks", "read-fault", "--json", *search]
    proc = run([sys.executable, "-c", EXPLORE_HOOKED, signame, *args], timeout=120)
    said = f"{SAID[signame]} while exploring ext2 (mode default; read-fault@0) at schedule 3"
    assert one_error_line(proc, 130) == f"fsaops: error: {said}"
    assert one_json_object(proc, "interrupted")["error"] == said


BENCH_HOOKED = r"""
import os, signal, sys
import fsaops.bench as bench, fsaops.cli as cli

real = bench.engine_vs_bare

def hooked(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGTERM)
    return real(*args, **kwargs)

bench.engine_vs_bare = hooked
sys.argv[0] = "fsaops"
cli.main()
"""


def test_a_signal_during_bench_names_the_figure_being_measured() -> None:
    args = ["bench", "--quick", "--json"]
    proc = run([sys.executable, "-c", BENCH_HOOKED, *args], timeout=120)
    said = "terminated (SIGTERM) while measuring engine_vs_bare[ext2_nobh_aops]"
    assert one_error_line(proc, 130) == f"fsaops: error: {said}"
    assert one_json_object(proc, "interrupted")["error"] == said


BENCH_HOOKED_THROUGHPUT = BENCH_HOOKED.replace("engine_vs_bare", "throughput")

LOST_IN_A_FINALIZER = r"""
import os, signal, sys, time
import fsaops.cli as cli, fsaops.scenario as scenario

class Finalized:
    def __del__(self):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.2)  # the handler runs here, inside __del__: nobody can catch it

real = scenario.Scenario.migrate

def hooked(self, *args, **kwargs):
    Finalized()  # collected at once
    return real(self, *args, **kwargs)

scenario.Scenario.migrate = hooked
sys.argv[0] = "fsaops"
cli.main()
"""


def test_an_interruption_raised_inside_a_finalizer_ends_the_command_at_once() -> None:
    """It was lost there: the run went on, and two seconds later the command blamed plugin code
    ("plugin code kept the run going") after a warning about an ignored KeyboardInterrupt."""
    small = str(Path(__file__).parent / "configs" / "small.toml")
    proc = run([sys.executable, "-c", LOST_IN_A_FINALIZER, "migrate", small, "--json"], timeout=120)
    line = one_error_line(proc, 130)
    assert line.startswith("fsaops: error: terminated (SIGTERM)")
    assert "plugin code kept the run going" not in line
    assert "ignored" not in proc.stderr


LOST_IN_PLUGIN_CODE = (
    "class Lost:\n"
    "        def __del__(self):\n"
    '            open(STARTED, "w").close(); time.sleep(3600)\n'
    "    Lost()  # collected at once: a Ctrl-C now is raised inside its __del__"
)


@pytest.mark.parametrize("supervised", [True, False], ids=["supervised", "one-process"])
def test_a_ctrl_c_lost_in_a_finalizer_of_plugin_code_ends_the_command_as_interrupted(
    tmp_path: Path, supervised: bool
) -> None:
    """Supervised, it ended with exit status 1 and a second line: the command's word for the
    interruption, said with plugin code under it, was not taken for the command's answer, so the
    parent said that code fsaops cannot guard had ended the process."""
    scenario, started, env = _sleeper(tmp_path, LOST_IN_PLUGIN_CODE)
    if not supervised:
        env["FSAOPS_NO_SUPERVISOR"] = "1"
    proc = start([sys.executable, "-m", "fsaops", "migrate", scenario, "--json"], env=env)
    out, err = signal_when(proc, started.exists, signal.SIGINT, "the finalizer ran")
    assert proc.returncode == 130, err
    assert len(err.splitlines()) == 1, err
    assert err.startswith("fsaops: error: interrupted while migrating the page at pfn "), err
    assert json.loads(out)["status"] == "interrupted"


def test_a_signal_while_bench_measures_pages_per_second_names_it() -> None:
    """It said ``terminated (SIGTERM)`` alone, the only stretch of a bench left unnamed."""
    args = ["bench", "--quick", "--json", "--pages", "20", "--repeat", "1"]
    proc = run([sys.executable, "-c", BENCH_HOOKED_THROUGHPUT, *args], timeout=300)
    said = "terminated (SIGTERM) while measuring throughput (pages per second)"
    assert one_error_line(proc, 130) == f"fsaops: error: {said}"
    assert one_json_object(proc, "interrupted")["error"] == said


@pytest.mark.parametrize("supervised", [True, False], ids=["supervised", "one-process"])
def test_a_time_limit_inside_migratepage_names_plugin_code_as_a_signal_does(
    tmp_path: Path, supervised: bool
) -> None:
    """``--timeout`` names the plugin code that was running, in the words a Ctrl-C uses.

    Before, the time limit named the page, its table and its plugin, but not the function and
    ``file:line`` of the plugin code that held the run.
    """
    scenario, _started, env = _sleeper(tmp_path, SLEEPS)
    if not supervised:
        env["FSAOPS_NO_SUPERVISOR"] = "1"
    args: list[str | Path] = ["migrate", scenario, "--timeout", "1", "--json"]
    proc = run([sys.executable, "-m", "fsaops", *args], env=env, timeout=120)
    said = f"timeout: the run went past its time limit of 1 s {ON_A_PAGE}"
    line = one_error_line(proc, 1)
    assert re.fullmatch(f"fsaops: error: {said}", line), line
    error = one_json_object(proc, "timeout")["error"]
    assert re.fullmatch(said, error), error


BENCH_RUNS_A_SCENARIO = r"""
import os, signal, sys
import fsaops.bench as bench, fsaops.cli as cli, fsaops.scenario as scenario
from fsaops.config import parse_config

real_build = scenario.Scenario._build

def build(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGTERM)
    return real_build(*args, **kwargs)

def figure(registry, *args, **kwargs):  # a figure that runs a scenario in this process
    scenario.Scenario._build = build
    config = parse_config('[[mount]]\nfs = "ext2"\npages = 8\n')
    scenario.run_scenario(config, registry)
    raise AssertionError("the signal did not interrupt the figure")

bench.engine_vs_bare = figure
sys.argv[0] = "fsaops"
cli.main()
"""


def test_a_signal_during_a_figure_that_runs_a_scenario_names_the_figure_and_the_phase() -> None:
    """The scenario's words come after the figure's; before, the figure was not named."""
    args = ["bench", "--quick", "--json"]
    proc = run([sys.executable, "-c", BENCH_RUNS_A_SCENARIO, *args], timeout=120)
    said = (
        "terminated (SIGTERM) while measuring engine_vs_bare[ext2_nobh_aops], "
        "while building the world"
    )
    assert one_error_line(proc, 130) == f"fsaops: error: {said}"
    assert one_json_object(proc, "interrupted")["error"] == said
