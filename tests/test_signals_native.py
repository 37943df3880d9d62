"""Signals changed below Python, and signals plugin code sends fsaops: fsaops's own stay fsaops's.

``signal.getsignal`` says what Python last set, not what the system does:
a C library, or a call through ``ctypes``, that had ``SIGTERM`` ignored or
at its default action left ``kill`` doing nothing, or ending fsaops at once
with no word and no JSON report, and fsaops never put its handler back.
``SIGALRM`` at its default action, then the interpreter lock held in C,
had the watchdog's own timer end the process ("Alarm clock").  A plugin's
``os.kill`` of fsaops's own process was reported as the user's
interruption.  Each case runs the program in a subprocess, with real
signals, and the hostile plugin installed as a distribution would be.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import pytest

import fsaops.errors
from fsaops.errors import _on_sigint, _Signals, reclaim_signals, watch_sigint
from fsaops.process import _fsaops_calls
from guarded import (
    install,
    interrupted_said,
    interrupted_while_migrating,
    one_error_line,
    one_json_object,
    run,
    signal_when,
    start,
)

HEADER = """\
import ctypes, os, re, signal, sys, threading, time
import fsaops
from fsaops import AddressSpaceOperations, FileSystemType, migrate_page
from fsaops.buffer import mpage_readpage, nobh_commit_write, nobh_prepare_write, nobh_writepage
LIBC = ctypes.CDLL(None)
LIBC.signal.argtypes = (ctypes.c_int, ctypes.c_void_p)
"""

TABLE = """\
TABLE = AddressSpaceOperations(
    name='{name}_aops', readpage=mpage_readpage, writepage=nobh_writepage,
    prepare_write=nobh_prepare_write, commit_write=nobh_commit_write, migratepage=mp,
)
@fsaops.hookimpl
def fsaops_filesystem_types():
    return [FileSystemType(name='{name}', modes={{'default': TABLE}})]
"""

LOOKING = (  # the program as it is, with the watchdog looking often (a stall is still 30 s)
    "import sys, fsaops.scenario as s\ns._WATCH_EVERY = 0.05\n"
    "from fsaops.cli import main\nsys.argv[0] = 'fsaops'\nmain()\n"
)

DISPOSITION = {"SIG_DFL": 0, "SIG_IGN": 1}


def _plugin(tmp_path: Path, name: str, body: str, pages: int = 8) -> tuple[Path, dict[str, str]]:
    """Install plugin ``name`` whose ``migratepage`` runs ``body`` first; its scenario and env."""
    code = (
        HEADER
        + "def mp(newpage, page):\n"
        + "".join(f"    {line}\n" for line in body.splitlines())
        + "    return migrate_page(newpage, page)\n"
        + TABLE.format(name=name)
    )
    env = install(tmp_path, name, code)
    scenario = tmp_path / f"{name}.toml"
    scenario.write_text(
        f'[plugins]\nload = ["{name}", "swap"]\n[[mount]]\nfs = "{name}"\npages = {pages}\n'
        "[processes]\ncount = 0\nanon_pages = 0\n"
    )
    return scenario, env


def _once(started: Path, code: str) -> str:
    """``code`` run at the first call only, then ``started`` made."""
    return (
        f"if not os.path.exists({str(started)!r}):\n"
        + "".join(f"    {line}\n" for line in code.splitlines())
        + f"    open({str(started)!r}, 'a').close()\n"
    )


def _interrupted_after(
    tmp_path: Path, name: str, take: str, signum: int, *, after: float = 0.5
) -> tuple[int | None, str, str]:
    """Run ``fsaops migrate`` whose first ``migratepage`` runs ``take``; ``signum`` ``after`` s.

    The program as it is: the watchdog looks every 5 s, so a handler put
    back only at its looks is not back yet.  Its exit status and output.
    """
    started = tmp_path / "started"
    body = _once(started, take) + "time.sleep(0.3)"
    scenario, env = _plugin(tmp_path, name, body, pages=64)
    proc = start([sys.executable, "-m", "fsaops", "migrate", scenario, "--json"], env=env)
    seen: list[float] = []

    def ready() -> bool:
        if not seen and started.exists():
            seen.append(time.monotonic())
        return bool(seen) and time.monotonic() - seen[0] > after

    out, err = signal_when(proc, ready, signum, "the run reached migratepage")
    return proc.returncode, out, err


# -- SIGINT and SIGTERM changed below Python -----------------------------------------------------


@pytest.mark.parametrize("signame", ["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("disposition", ["SIG_IGN", "SIG_DFL"])
def test_ctrl_c_or_sigterm_changed_through_ctypes_still_interrupts(
    tmp_path: Path, signame: str, disposition: str
) -> None:
    """``signal.getsignal`` still named fsaops's handler, so it was never put back: ignored,
    ``kill`` did nothing and the run ended ok (exit 0); at its default action, exit 143 (or
    death by ``SIGINT``), no word, no JSON."""
    signum = getattr(signal, signame)
    take = f"LIBC.signal({int(signum)}, {DISPOSITION[disposition]})"
    status, out, err = _interrupted_after(tmp_path, "native", take, signum)
    assert status == 130, err[-3000:]
    interrupted_while_migrating(err, signame)
    assert json.loads(out)["status"] == "interrupted"


def test_code_that_calls_itself_fsaops_cannot_take_sigterm(tmp_path: Path) -> None:
    """``exec`` with ``__name__ = 'fsaops.evil'`` passed for fsaops's own code: its
    ``signal.signal(SIGTERM, SIG_IGN)`` was applied, and a ``kill`` before the next look was
    lost (the run ended ok, exit 0)."""
    take = (
        "exec('import signal; signal.signal(signal.SIGTERM, signal.SIG_IGN)', "
        "{'__name__': 'fsaops.evil'})"
    )
    status, out, err = _interrupted_after(tmp_path, "disguised", take, signal.SIGTERM)
    assert status == 130, err[-3000:]
    interrupted_while_migrating(err, "SIGTERM")
    assert json.loads(out)["status"] == "interrupted"


@pytest.fixture
def watched() -> Iterator[None]:
    """Signals watched as the program watches them; everything put back after."""
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    state = {k: v for k, v in vars(_Signals).items() if not k.startswith("__")}
    try:
        yield
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
        for name, value in state.items():
            setattr(_Signals, name, value)


def test_reclaim_puts_the_handler_back_with_the_system(watched: None) -> None:
    """Python's view unchanged, the system's ignored: reclaim did nothing."""
    watch_sigint()
    getsig = ctypes.PYFUNCTYPE(ctypes.c_void_p, ctypes.c_int)(("PyOS_getsig", ctypes.pythonapi))
    setsig = ctypes.PYFUNCTYPE(ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p)(
        ("PyOS_setsig", ctypes.pythonapi)
    )
    python_s = getsig(signal.SIGTERM)
    setsig(signal.SIGTERM, 1)  # SIG_IGN, as a C library would
    assert signal.getsignal(signal.SIGTERM) is _on_sigint  # Python does not see it
    assert reclaim_signals() == ()  # nothing Python saw was taken
    assert getsig(signal.SIGTERM) == python_s


def test_only_fsaops_s_own_code_passes_for_fsaops_s(watched: None) -> None:
    """Code whose globals only said ``__name__ = 'fsaops.evil'`` passed for fsaops's own."""
    frames: list[FrameType] = []
    grab = "import sys; frames.append(sys._getframe())"
    exec(grab, {"__name__": "fsaops.evil", "frames": frames})
    exec(compile(grab, fsaops.errors.__file__, "exec"), vars(fsaops.errors) | {"frames": frames})
    watch_sigint(lambda name: frames.append(sys._getframe(1)))  # called from fsaops's handler
    with pytest.raises(KeyboardInterrupt):
        os.kill(os.getpid(), signal.SIGTERM)
    disguised, copied, own = frames
    assert not _fsaops_calls(disguised)
    assert not _fsaops_calls(copied)  # fsaops's file name, in a copy of its globals
    assert not _fsaops_calls(sys._getframe())  # a test's own
    assert own.f_code is _on_sigint.__code__
    assert _fsaops_calls(own)


# -- SIGALRM: the watchdog's backstop --------------------------------------------------------------

TAKE_ALARM = {
    "signal.signal": "signal.signal(signal.SIGALRM, signal.SIG_DFL)",
    "ctypes": f"LIBC.signal({int(signal.SIGALRM)}, 0)",
}


@pytest.mark.parametrize("how", sorted(TAKE_ALARM))
def test_sigalrm_at_its_default_then_the_lock_held_in_c_does_not_end_the_run(
    tmp_path: Path, how: str
) -> None:
    """The backstop timer, armed for the watchdog's next look, fired with ``SIGALRM`` at its
    default action while the thread that would have cancelled it could not run: ``Alarm
    clock``, exit 142, no word and no JSON.  Through ``ctypes``, the watchdog's own
    ``pthread_kill`` ended it the same way."""
    started = tmp_path / "started"
    # about 2 s in C with the interpreter lock held, past the backstop's 0.55 s
    body = _once(started, TAKE_ALARM[how] + "\nre.match(r'(a+)+$', 'a' * 24 + 'b')")
    scenario, env = _plugin(tmp_path, "alarmc", body)
    proc = run([sys.executable, "-c", LOOKING, "migrate", scenario, "--json"], env=env, timeout=90)
    assert proc.returncode == 0, (proc.returncode, proc.stderr[-3000:])
    assert one_json_object(proc, "ok")["totals"]["moved"] == 8


# -- a signal plugin code sends fsaops ---------------------------------------------------------

SEND = {
    "os.kill": ("os.kill(os.getpid(), signal.SIGTERM)", "os.kill(pid of fsaops, SIGTERM)"),
    "os.kill group": ("os.kill(0, signal.SIGINT)", "os.kill(pid of fsaops, SIGINT)"),
    "os.killpg": (
        "os.killpg(os.getpgrp(), signal.SIGTERM)",
        "os.killpg(process group of fsaops, SIGTERM)",
    ),
    "pthread_kill": (
        "signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)",
        "signal.pthread_kill(thread of fsaops, SIGINT)",
    ),
    "os.kill caught": (
        "try:\n    os.kill(os.getpid(), signal.SIGTERM)\nexcept BaseException:\n    pass",
        "os.kill(pid of fsaops, SIGTERM)",
    ),
}


@pytest.mark.parametrize("how", sorted(SEND))
def test_a_signal_plugin_code_sends_fsaops_fails_the_run_naming_it(
    tmp_path: Path, how: str
) -> None:
    """It was taken for the user's: ``terminated (SIGTERM)`` or ``interrupted``, exit 130,
    no plugin named."""
    code, call = SEND[how]
    scenario, env = _plugin(tmp_path, "sender", code)
    # A session of its own: os.kill(0) and killpg, when sent, reach its process group only.
    program = (
        "import os, sys\nos.setsid()\nfrom fsaops.cli import main\nsys.argv[0] = 'fsaops'\nmain()\n"
    )
    proc = run([sys.executable, "-c", program, "migrate", scenario, "--json"], env=env)
    line = one_error_line(proc, 1, "plugin code may not interrupt fsaops", "sender-dist[sender]")
    assert call in line, line
    one_json_object(proc, "kernel bug")


def test_a_signal_plugin_code_sends_elsewhere_is_sent(tmp_path: Path) -> None:
    """Only SIGINT and SIGTERM sent to fsaops are refused: another signal, or another process."""
    body = (
        "GOT = globals().setdefault('GOT', [])\n"
        "signal.signal(signal.SIGUSR1, lambda *_: GOT.append(1))\n"
        "os.kill(os.getpid(), signal.SIGUSR1)\n"
        "assert GOT, 'no SIGUSR1'\n"
        "import subprocess\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        "os.kill(child.pid, signal.SIGTERM)\n"
        "assert child.wait() == -signal.SIGTERM"
    )
    scenario, env = _plugin(tmp_path, "elsewhere", body, pages=1)
    proc = run([sys.executable, "-m", "fsaops", "migrate", scenario, "--json"], env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    one_json_object(proc, "ok")


def test_the_program_s_own_kill_still_interrupts(tmp_path: Path) -> None:
    """A program that runs fsaops (its ``__main__``) and sends it ``SIGTERM`` is the user."""
    scenario, env = _plugin(tmp_path, "plain", "time.sleep(0.3)")
    program = (
        "import os, signal, sys, threading\n"
        "from fsaops.cli import main\n"
        "def later():\n    os.kill(os.getpid(), signal.SIGTERM)\n"
        "threading.Timer(0.5, later).start()\n"
        "sys.argv[0] = 'fsaops'\nmain()\n"
    )
    proc = run([sys.executable, "-c", program, "migrate", scenario, "--json"], env=env)
    assert proc.returncode == 130, proc.stderr[-3000:]
    interrupted_said(proc.stderr, "SIGTERM")  # the timer may fire while plugins load
    assert json.loads(proc.stdout)["status"] == "interrupted"
