"""Running fsaops in a subprocess that cannot hang CI or exhaust the machine.

Every subprocess the tests start goes through :func:`run`: it has a time
limit (``subprocess``'s ``timeout``: a regression that hangs fails the
test instead of the run) and a memory limit (``RLIMIT_AS``, set in the
child before it starts Python).  The address-space limit is 4 GiB, not
the 2 GiB a Python process with a model would seem to need: the model
maps its block devices and node memory lazily, so the built-in scenario
reserves 2.3 GB of address space while only 70 MB of it is ever touched.

Hostile plugins are installed with :func:`install`, as a distribution's
metadata and module in a temporary folder put on ``PYTHONPATH``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from fsaops.testing.dist import write_dist_info

TIME_LIMIT = 120.0
"""Seconds a subprocess may run before the test fails."""

MEMORY_LIMIT = 4 << 30
"""Bytes of address space a subprocess may have (``RLIMIT_AS``)."""

CLEAN_ENV = ("FSAOPS_PLUGINS", "FSAOPS_PLUGIN_TIMEOUT", "FSAOPS_NO_SUPERVISOR", "PYTHONUNBUFFERED")
"""Variables of the test run's own environment that subprocesses never inherit.

``PYTHONUNBUFFERED`` too: a user's fsaops runs with buffered standard
streams, and what it does when they cannot be flushed must be tested so.
"""


def _limits(memory: int, close_stdout: bool) -> Callable[[], None] | None:
    try:
        import resource
    except ImportError:  # pragma: no cover - no resource limits on this platform
        return None

    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # a crashing plugin leaves no core
        if close_stdout:
            os.close(1)

    return apply


def run(
    args: Sequence[str | Path],
    *,
    env: dict[str, str] | None = None,
    timeout: float = TIME_LIMIT,
    memory: int = MEMORY_LIMIT,
    stdout: Any = subprocess.PIPE,
    stderr: Any = subprocess.PIPE,
    close_stdout: bool = False,
    cwd: Path | None = None,
    process_group: int | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``args`` with the limits; ``env`` is added to a clean copy of this environment.

    ``process_group`` as for :class:`subprocess.Popen` (``0``: a group of its own).
    """
    environment = {k: v for k, v in os.environ.items() if k not in CLEAN_ENV}
    environment.update(env or {})
    return subprocess.run(
        [str(a) for a in args],
        stdout=stdout,
        stderr=stderr,
        stdin=subprocess.DEVNULL,
        text=True,
        env=environment,
        timeout=timeout,
        preexec_fn=_limits(memory, close_stdout),
        cwd=cwd,
        process_group=process_group,
        check=False,
    )


def run_group(
    args: Sequence[str | Path], *, timeout: float = TIME_LIMIT, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a program that starts processes of its own (a browser), with the time limit only.

    It gets a session of its own, and when the time passes every process of
    that session is killed, not only the first.  No address-space limit: a
    browser reserves far more address space than it uses (Chromium's
    JavaScript heap cage alone is several GiB) and fails to start under
    one.
    """
    import signal

    environment = {k: v for k, v in os.environ.items() if k not in CLEAN_ENV}
    proc = subprocess.Popen(
        [str(a) for a in args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=environment,
        cwd=cwd,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        # Whatever the session left behind (or all of it, when time ran out).
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        if proc.poll() is None:
            proc.communicate()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def start(
    args: Sequence[str | Path], *, env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    """Start ``args`` with the memory limit, for a test that signals it (it keeps the time limit).

    The caller waits with ``communicate(timeout=...)`` and kills it in a
    ``finally``.
    """
    environment = {k: v for k, v in os.environ.items() if k not in CLEAN_ENV}
    environment.update(env or {})
    return subprocess.Popen(
        [str(a) for a in args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=environment,
        preexec_fn=_limits(MEMORY_LIMIT, False),  # noqa: PLW1509 - limits, nothing else
    )


def command_pid(pid: int) -> int:
    """The process running the command of the ``fsaops`` program ``pid``: its child, once forked.

    The program runs its command in a child it waits for (``fsaops.supervisor``);
    what a test reads of the command's process (its signal handlers) is that child's.
    """
    try:
        with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as fp:
            children = fp.read().split()
    except OSError:
        return pid
    return int(children[0]) if children else pid


def alive(pid: int) -> bool:
    """Whether process ``pid`` is running: not gone, and not a zombie (a zombie is dead)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fp:
            # The state follows the name, which is in parentheses and may hold any of them.
            state = fp.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def signal_when(
    proc: subprocess.Popen[str], ready: Callable[[], bool], signum: int, what: str
) -> tuple[str, str]:
    """Send ``signum`` to ``proc`` once ``ready()`` is true; its output, once it ended.

    ``proc`` (from :func:`start`) is killed in the end whatever happens.
    ``what`` says what ``ready`` waits for, should it never come.
    """
    try:
        deadline = time.monotonic() + 60
        while not ready():
            assert time.monotonic() < deadline, f"never: {what}"
            time.sleep(0.05)
        proc.send_signal(signum)
        return proc.communicate(timeout=60)
    finally:
        proc.kill()
        proc.wait()


def fsaops(*args: str | Path, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """``python -m fsaops ARGS`` with the limits (keyword arguments as for :func:`run`)."""
    return run([sys.executable, "-m", "fsaops", *args], **kwargs)


def install(site: Path, name: str, code: str, *, dist: str | None = None) -> dict[str, str]:
    """Install plugin ``name`` (its module, ``code``) into ``site``; returns the env to use it."""
    write_dist_info(site, dist or f"{name}-dist", {"fsaops": {name: name}}, modules={name: code})
    return {"PYTHONPATH": str(site)}


def one_error_line(proc: subprocess.CompletedProcess[str], status: int, *words: str) -> str:
    """Exit ``status``, one ``fsaops: error:`` line on stderr naming ``words``, no traceback."""
    output = (proc.stdout or "") + (proc.stderr or "")
    assert proc.returncode == status, (proc.returncode, output[-3000:])
    assert "Traceback" not in output, output[-3000:]
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr[-3000:]
    assert lines[0].startswith("fsaops: error: "), lines[0]
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


def one_json_object(proc: subprocess.CompletedProcess[str], status: str) -> dict[str, Any]:
    """Standard output is exactly one JSON object, whose ``status`` is ``status``."""
    data = json.loads(proc.stdout)
    assert isinstance(data, dict)
    assert data["status"] == status, data
    assert data["schema"] == 1
    return data


SIGNAL_SAID = {
    "SIGINT": "interrupted",
    "SIGTERM": "terminated (SIGTERM)",
    "SIGHUP": "terminated (SIGHUP)",
}
"""The word a command says when ``SIGINT``, ``SIGTERM`` or ``SIGHUP`` interrupted it."""


RUN_PHASES = (
    "building the world",
    "migrating",
    "proving where every page went",
    "reading pages back",
    r"proving durability \(writeback, dropped cache, read-back\)",
    "checking invariants",
)
"""The phases a run names when a signal found it outside a page being migrated."""


def interrupted_said(err: str, signame: str) -> None:
    """``err`` is the one line of a command ``signame`` interrupted, anywhere.

    The word alone (before the scenario is read, while the report is
    written), or the word and where the signal found the run: the page being
    migrated, or the phase.
    """
    page = (
        r"migrating the page at pfn \d+ \(table \S+ of plugin \S+, pass \d+[^)]*\)"
        r"(; in plugin code of \S+ \(\S+, \S+:\d+\))?"
    )
    where = "|".join((page, *RUN_PHASES))
    said = re.escape(SIGNAL_SAID[signame])
    assert re.fullmatch(f"fsaops: error: {said}( while ({where}))?\n", err), err


def interrupted_while_migrating(err: str, signame: str) -> None:
    """``err`` is the one line of a run ``signame`` interrupted while it migrated pages.

    The word, then where the signal found the run: the page being migrated
    (its pfn, table, plugin and pass, and plugin code's ``file:line`` when
    that code was running), or migration between two pages.
    """
    page = (
        r"migrating the page at pfn \d+ \(table \S+ of plugin \S+, pass \d+[^)]*\)"
        r"(; in plugin code of \S+ \(\S+, \S+:\d+\))?"
    )
    said = re.escape(SIGNAL_SAID[signame])
    assert re.fullmatch(f"fsaops: error: {said} while ({page}|migrating)\n", err), err
