"""A process, a pipe or a thread the system refuses is the environment's limit, not a kernel bug.

fsaops starts helpers to do its work: the plugin probe's child and the
thread that follows it, a process for each schedule of ``fsaops explore``
and a thread for each of its tasks, the bench's runs.  When the system
refuses one (``EAGAIN`` from ``fork`` at ``ulimit -u``, ``EMFILE`` from
``pipe`` at ``ulimit -n``, ``ENOMEM``), the command says what could not be
started and the system's reason in one line: bad input, exit 2, as running
out of memory is.  Before, each was ``kernel bug``, exit 1, as if the model
or a plugin were wrong (or a schedule failed, with a replay string).
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import types
from collections.abc import Callable
from typing import Any, NoReturn

import pytest

from fsaops.cli import main
from fsaops.errors import FsaopsError
from fsaops.explore import runtime, search
from fsaops.explore.search import fork_run
from fsaops.explore.setup import ExploredWorld, Setup, assign_pages
from fsaops.plugins import Registry


def _refuse(code: int) -> Callable[..., NoReturn]:
    def refused(*args: object, **kwargs: object) -> NoReturn:
        raise OSError(code, os.strerror(code))

    return refused


def _command(
    args: list[str], capsys: pytest.CaptureFixture[str]
) -> tuple[int, dict[str, Any], str]:
    status = main([*args, "--json"])
    out, err = capsys.readouterr()
    return status, json.loads(out), err


def _said_once(status: int, data: dict[str, Any], err: str, words: str) -> None:
    """Bad input, exit 2: one line on standard error and the JSON envelope, saying ``words``."""
    assert status == 2, err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("fsaops: error: cannot start "), err
    assert words in lines[0]
    assert "no bug of the model or a plugin" in lines[0]
    assert data["schema"] == 1 and data["status"] == "bad input"
    assert words in data["error"]


def _xworld(registry: Registry) -> ExploredWorld:
    fstype = registry.filesystem("ext2")
    specs = assign_pages(["read-fault"], 4, anonymous=False)
    return ExploredWorld(Setup("ext2", fstype.default_mode, pages=4, tasks=specs), fstype, registry)


def _open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_a_fork_refused_under_explore_is_the_environment(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FSAOPS_PLUGINS", "ext2")
    monkeypatch.setattr(search, "REAL_FORK", _refuse(errno.EAGAIN))
    status, data, err = _command(["explore", "--fs", "ext2", "--schedules", "3"], capsys)
    _said_once(
        status,
        data,
        err,
        "cannot start the process that runs a schedule: Resource temporarily unavailable "
        "(EAGAIN); the limit on processes (ulimit -u) is reached",
    )


def test_a_pipe_or_fork_refused_to_a_schedule_leaves_no_descriptor_open(
    registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    xworld = _xworld(registry)
    before = _open_descriptors()
    with monkeypatch.context() as patch:
        patch.setattr(search, "REAL_FORK", _refuse(errno.ENOMEM))
        with pytest.raises(FsaopsError, match=r"Cannot allocate memory \(ENOMEM\)"):
            fork_run(xworld)
    assert _open_descriptors() == before
    with monkeypatch.context() as patch:
        patch.setattr(os, "pipe", _refuse(errno.EMFILE))
        with pytest.raises(FsaopsError) as refused:
            fork_run(xworld)
    assert str(refused.value).startswith(
        "cannot start a pipe to the process that runs a schedule: Too many open files "
        "(EMFILE); the limit on open files (ulimit -n) is reached"
    )
    assert fork_run(xworld)["outcome"] == "done"  # nothing of it stays


def test_a_task_thread_refused_is_not_a_failing_schedule(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The schedule's process cannot start a task's thread: no schedule failed, no replay string."""

    def no_thread(function: object, args: object) -> NoReturn:
        raise RuntimeError("can't start new thread")

    monkeypatch.setenv("FSAOPS_PLUGINS", "ext2")
    monkeypatch.setattr(runtime, "_thread", types.SimpleNamespace(start_new_thread=no_thread))
    status, data, err = _command(["explore", "--fs", "ext2", "--schedules", "3"], capsys)
    _said_once(status, data, err, "cannot start the thread of task migrate: RuntimeError")
    assert "replay" not in err and "failures" not in data


def _fsaops_with(patch: str, *args: str) -> tuple[int, dict[str, Any], str]:
    """``fsaops ARGS --json`` in a new process (no plugin imported yet), ``patch`` run first."""
    script = f"import sys\n{patch}\nfrom fsaops.console import main\nsys.exit(main())\n"
    env = {k: v for k, v in os.environ.items() if k != "FSAOPS_PLUGINS"}
    env["FSAOPS_PLUGINS"] = "ext2"
    proc = subprocess.run(
        [sys.executable, "-c", script, *args, "--json"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=120,
    )
    return proc.returncode, json.loads(proc.stdout), proc.stderr


def test_a_pipe_refused_to_the_plugin_probe_is_the_environment() -> None:
    """Neither the forked probe nor a new interpreter can have its pipe (``ulimit -n``)."""
    patch = (
        "import errno, os\n"
        "def pipe():\n"
        "    raise OSError(errno.EMFILE, os.strerror(errno.EMFILE))\n"
        "os.pipe = pipe\n"
    )
    status, data, err = _fsaops_with(patch, "migrate")
    _said_once(
        status,
        data,
        err,
        "cannot start the plugin probe's process: Too many open files (EMFILE); the limit on "
        "open files (ulimit -n) is reached",
    )


def test_a_thread_refused_to_the_plugin_probe_is_the_environment() -> None:
    """The probe's child started, the thread reading it did not: no second error over the first."""
    patch = (
        "import threading\n"
        "start = threading.Thread.start\n"
        "def refused(thread):\n"
        "    if thread.name == 'fsaops plugin probe':\n"
        '        raise RuntimeError("can\'t start new thread")\n'
        "    start(thread)\n"
        "threading.Thread.start = refused\n"
    )
    status, data, err = _fsaops_with(patch, "migrate")
    _said_once(status, data, err, "cannot start the thread that follows the plugin probe")


def test_a_run_the_bench_cannot_start_is_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from fsaops import bench

    monkeypatch.setattr(subprocess, "Popen", _refuse(errno.EAGAIN))
    with pytest.raises(FsaopsError, match=r"^cannot start the fsaops migrate the bench times: "):
        bench.migrate_command("")
