"""Ctrl-C and ``SIGTERM`` at the edges of a command: bursts, the ``--html`` page, after the end.

Each command runs as the program, in a subprocess, with hooks that send
real signals to it at the moment it reaches a given function: the first
signal somewhere in the command, and a burst of three more where the
command handles it (its error line, its JSON envelope, its failure page)
or where it ends.  A burst from outside (a process group killed together
with ``timeout``, a key held down) lands there now and then; here it lands
there every time.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from fsaops.errors import _Signals, signals_deferred, watch_sigint
from guarded import one_error_line, one_json_object, run

HOOKED = r"""
import os, signal, sys
import fsaops.cli as cli, fsaops.diff as diff, fsaops.html_report as html_report

signum = getattr(signal, sys.argv.pop(1))
plan = dict(spec.split("=") for spec in sys.argv.pop(1).split(","))  # hook point=signals
places = {
    "start": (cli, "guard_process"),  # before the command
    "read": (cli, "_read_config"),  # in the command
    "render": (html_report, "render_report"),  # the report's page drawn
    "render_diff": (diff, "render_html"),  # the comparison's page drawn
    "replace": (os, "replace"),  # a page renamed over the old one
    "error": (cli, "_error"),  # the failure's line
    "envelope": (cli, "_write"),  # the failure's JSON envelope
    "page": (html_report, "render_failure"),  # the failure's page
    "settle": (cli, "_settle_stderr"),  # after the command
}

def hook(where, count):
    owner, name = places[where]
    real = getattr(owner, name)
    def hooked(*args, **kwargs):  # at each call
        for _ in range(count):
            os.kill(os.getpid(), signum)
        return real(*args, **kwargs)
    setattr(owner, name, hooked)

for where, count in plan.items():
    hook(where, int(count))
sys.argv[0] = "fsaops"
cli.main()
"""

SMALL = '[plugins]\nload = ["ext2", "swap"]\n[[mount]]\nfs = "ext2"\npages = 8\n'
OLD = "PAGE OF AN EARLIER RUN\n"
SAID = {"SIGINT": "interrupted", "SIGTERM": "terminated (SIGTERM)"}


def _hooked(
    tmp_path: Path, signame: str, plan: str, *args: str | Path
) -> tuple[str, str, int, str]:
    """Run ``fsaops ARGS`` with signals sent as ``plan`` says; stdout, stderr, status, page."""
    page = tmp_path / "page.html"
    page.write_text(OLD)
    proc = run([sys.executable, "-c", HOOKED, signame, plan, *args, "--html", page], timeout=120)
    left = [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert left == [], left
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    return proc.stdout, proc.stderr, proc.returncode, page.read_text(encoding="utf-8")


@pytest.fixture
def small(tmp_path: Path) -> Path:
    scenario = tmp_path / "small.toml"
    scenario.write_text(SMALL)
    return scenario


def _interrupted(out: str, err: str, status: int, page: str, signame: str) -> None:
    """What an interrupted command leaves: one line, exit 130, one JSON object, its own page."""
    assert (status, err) == (130, f"fsaops: error: {SAID[signame]}\n"), (status, err[-3000:])
    assert json.loads(out)["status"] == "interrupted"
    assert OLD not in page and "interrupted" in page


@pytest.mark.parametrize("signame", ["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("burst", ["error", "envelope", "page"])
def test_a_burst_of_signals_while_an_interrupt_is_handled_is_counted(
    tmp_path: Path, small: Path, signame: str, burst: str
) -> None:
    """The 2nd and 3rd signal of a burst were raised inside ``_fail``: a traceback, death by
    ``SIGINT``, no JSON, the error line twice, or "the command failed: RuntimeError"."""
    out, err, status, page = _hooked(
        tmp_path, signame, f"read=1,{burst}=3", "migrate", small, "--json", "--no-progress"
    )
    _interrupted(out, err, status, page, signame)


def test_a_burst_before_the_command_runs_interrupts_it(tmp_path: Path, small: Path) -> None:
    """A signal before the command's own handling was in place escaped as a traceback."""
    out, err, status, page = _hooked(
        tmp_path, "SIGINT", "start=3", "migrate", small, "--json", "--no-progress"
    )
    assert (status, err) == (130, "fsaops: error: interrupted\n"), (status, err[-3000:])
    assert json.loads(out)["status"] == "interrupted"
    assert page == OLD  # the page is named only once the command line is read


def test_a_burst_while_a_failure_is_said_leaves_its_word(tmp_path: Path) -> None:
    """A signal inside the line of a failed command escaped from ``_fail`` as a traceback."""
    page = tmp_path / "page.html"
    args: list[str | Path] = ["migrate", tmp_path / "none.toml", "--json", "--html", page]
    proc = run([sys.executable, "-c", HOOKED, "SIGINT", "error=3", *args])
    one_error_line(proc, 2, "none.toml")
    one_json_object(proc, "bad input")
    assert "bad input" in page.read_text(encoding="utf-8")


def test_a_burst_while_a_usage_error_is_said_leaves_its_word(tmp_path: Path) -> None:
    """The signal escaped the usage error's ``_fail`` and was said again: a second line."""
    proc = run([sys.executable, "-c", HOOKED, "SIGTERM", "error=3", "migrate", "--bad", "--json"])
    one_error_line(proc, 2, "unrecognized arguments: --bad")
    one_json_object(proc, "bad input")


@pytest.mark.parametrize("signame", ["SIGINT", "SIGTERM"])
def test_a_burst_after_the_command_ended_changes_nothing(
    tmp_path: Path, small: Path, signame: str
) -> None:
    """Once the report and its page are written the command is done: its own exit status
    stands (a signal there escaped ``main`` as a traceback, or the process died of it)."""
    out, err, status, page = _hooked(
        tmp_path, signame, "settle=3", "migrate", small, "--json", "--no-progress"
    )
    assert (status, err) == (0, ""), (status, err[-3000:])
    assert json.loads(out)["status"] == "ok"
    assert OLD not in page and "interrupted" not in page


@pytest.mark.parametrize("where", ["render", "replace"])
def test_a_signal_while_the_page_is_drawn_or_written_leaves_no_earlier_page(
    tmp_path: Path, small: Path, where: str
) -> None:
    """The pending page was dropped before the report's page was drawn and written: a signal
    there left an earlier run's page standing."""
    out, err, status, page = _hooked(
        tmp_path, "SIGINT", f"{where}=1", "migrate", small, "--json", "--no-progress"
    )
    assert (status, err) == (130, "fsaops: error: interrupted\n"), (status, err[-3000:])
    assert json.loads(out)["status"] == "ok"  # the report came first, whole
    assert OLD not in page and "interrupted" in page


@pytest.mark.parametrize("where", ["render_diff", "replace"])
def test_a_signal_while_the_comparison_page_is_drawn_or_written_leaves_no_earlier_page(
    tmp_path: Path, small: Path, where: str
) -> None:
    report = tmp_path / "a.json"
    proc = run([sys.executable, "-m", "fsaops", "migrate", small, "--json", "--no-progress"])
    assert proc.returncode == 0, proc.stderr
    report.write_text(proc.stdout)
    _, err, status, page = _hooked(tmp_path, "SIGTERM", f"{where}=1", "diff", report, report)
    assert (status, err) == (130, "fsaops: error: terminated (SIGTERM)\n"), (status, err[-3000:])
    assert OLD not in page and "interrupted" in page


# -- the signal handling itself, in this process ---------------------------------------------


@pytest.fixture
def watched() -> Iterator[None]:
    """Signals watched as the program watches them; everything put back after."""
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    state = {k: v for k, v in vars(_Signals).items() if not k.startswith("__")}
    _Signals.seen = 0
    try:
        yield
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
        for name, value in state.items():
            setattr(_Signals, name, value)


def _kill(count: int = 1, signum: int = signal.SIGTERM) -> None:
    for _ in range(count):
        os.kill(os.getpid(), signum)


def test_only_the_first_signal_of_the_command_is_raised(watched: None) -> None:
    from fsaops.errors import signals_live

    seen: list[str] = []
    watch_sigint(seen.append, hold=True)
    _kill(2)  # before the command: held
    with pytest.raises(KeyboardInterrupt), signals_live():  # raised as the command begins
        pytest.fail("the held signal was not raised")
    assert seen == ["SIGTERM"]  # told once, when raised
    _kill(3)  # after: counted only
    assert _Signals.seen == 5


def test_a_signal_in_the_command_is_raised_once_then_counted(watched: None) -> None:
    from fsaops.errors import signals_live

    def burst() -> None:
        try:
            _kill()
        finally:
            _kill(3)  # while the first is handled: not raised

    watch_sigint(hold=True)
    with pytest.raises(KeyboardInterrupt), signals_live():
        burst()
    with signals_deferred():  # nothing waits to be raised either
        _kill()
    assert _Signals.seen == 5


def test_a_signal_deferred_in_the_command_is_raised_once(watched: None) -> None:
    from fsaops.errors import signals_live

    def burst() -> None:
        try:
            with signals_deferred():
                _kill(2)
        finally:
            _kill()

    watch_sigint(hold=True)
    with pytest.raises(KeyboardInterrupt), signals_live():
        burst()
    assert _Signals.seen == 3


def test_watching_without_holding_raises_every_signal(watched: None) -> None:
    """A program of its own that watches signals (not the command line) gets each one."""
    from fsaops.errors import signals_live

    watch_sigint()
    for _ in range(2):
        with pytest.raises(KeyboardInterrupt):
            _kill()
    with pytest.raises(KeyboardInterrupt), signals_live():  # no command: nothing changes
        _kill()
    with pytest.raises(KeyboardInterrupt):
        _kill()
