"""What plugin code does to the process's signals: fsaops's own stay fsaops's.

A signal's disposition is the whole process's.  Plugin code that has
``SIGINT`` or ``SIGTERM`` ignored made Ctrl-C and ``kill`` do nothing; set
to its default action, either ended fsaops at once, with no word and no
JSON report; ``SIGALRM`` set to its default action had the stall watchdog's
own timer end it ("Alarm clock").  A signal plugin code raised at fsaops
itself was reported as the user's interruption.  Each case runs the
program in a subprocess, with real signals, and the hostile plugin
installed as a distribution would be.
"""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path

import pytest

from guarded import (
    command_pid,
    install,
    interrupted_said,
    one_error_line,
    one_json_object,
    run,
    signal_when,
    start,
)

HEADER = """\
import os, signal, sys, time
import fsaops
from fsaops import AddressSpaceOperations, FileSystemType, migrate_page
from fsaops.buffer import mpage_readpage, nobh_commit_write, nobh_prepare_write, nobh_writepage
import _signal

def around(signum, disposition):
    # _signal.signal itself, found in the closure of whatever stands in for it
    real = _signal.signal
    for cell in getattr(real, "__closure__", None) or ():
        if type(cell.cell_contents).__name__ == "builtin_function_or_method":
            real = cell.cell_contents
    real(int(signum), int(disposition))
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

QUICK = (  # the program as it is, with the watchdog looking often and a stall found in 1 s
    "import sys, fsaops.scenario as s\ns.STALL_SECONDS = 1.0\ns._WATCH_EVERY = 0.05\n"
    "from fsaops.cli import main\nsys.argv[0] = 'fsaops'\nmain()\n"
)


def _plugin(
    tmp_path: Path, name: str, body: str, at_import: str = ""
) -> tuple[Path, dict[str, str]]:
    """Install plugin ``name`` whose ``migratepage`` runs ``body`` first; its scenario and env."""
    code = (
        HEADER
        + at_import
        + "def mp(newpage, page):\n"
        + "".join(f"    {line}\n" for line in body.splitlines())
        + "    return migrate_page(newpage, page)\n"
        + TABLE.format(name=name)
    )
    env = install(tmp_path, name, code)
    scenario = tmp_path / f"{name}.toml"
    scenario.write_text(
        f'[plugins]\nload = ["{name}", "swap"]\n[[mount]]\nfs = "{name}"\npages = 8\n'
        "[processes]\ncount = 0\nanon_pages = 0\n"
    )
    return scenario, env


def _caught(pid: int, signum: int) -> bool:
    """Whether process ``pid`` has a handler for ``signum`` now, as the system sees it.

    Waited for rather than a time: plugin code took the signal away, and the
    watchdog's next look puts fsaops's handler back, later on a busy machine.
    """
    with open(f"/proc/{command_pid(pid)}/status", encoding="ascii") as fp:
        mask = next(line.split()[1] for line in fp if line.startswith("SigCgt:"))
    return bool(int(mask, 16) >> (signum - 1) & 1)


# -- SIGALRM: the watchdog's own signal --------------------------------------------------------


def test_a_migratepage_that_sets_sigalrm_to_its_default_runs_to_its_end(tmp_path: Path) -> None:
    """The watchdog left its timer armed: the next look ended the process, "Alarm clock",
    exit 142, no word and no JSON, even without ``--timeout``."""
    body = "signal.signal(signal.SIGALRM, signal.SIG_DFL)\ntime.sleep(0.1)"
    scenario, env = _plugin(tmp_path, "dflalarm", body)
    proc = run([sys.executable, "-c", QUICK, "migrate", scenario, "--json"], env=env, timeout=60)
    assert proc.returncode == 0, (proc.returncode, proc.stderr[-3000:])
    assert one_json_object(proc, "ok")["totals"]["moved"] == 8


def test_a_migratepage_that_sets_sigalrm_to_its_default_and_sleeps_is_ended_as_stuck(
    tmp_path: Path,
) -> None:
    """The watchdog looks in the handler's place, as for an ignored ``SIGALRM``."""
    body = "signal.signal(signal.SIGALRM, signal.SIG_DFL)\ntime.sleep(3600)"
    scenario, env = _plugin(tmp_path, "dflsleep", body)
    proc = run([sys.executable, "-c", QUICK, "migrate", scenario, "--json"], env=env, timeout=60)
    line = one_error_line(proc, 1, "stuck: the run made no progress", "did not stop within 2 s")
    assert "(table dflsleep_aops of plugin dflsleep-dist[dflsleep]" in line
    one_json_object(proc, "timeout")


# -- SIGINT and SIGTERM: the user's interruption -----------------------------------------------

SET = {  # how plugin code sets what the signal does
    "signal.signal": "signal.signal(signal.{sig}, signal.{disposition})",
    # around fsaops's stand-in for signal.signal: the handler is put back later
    "around": "around(signal.{sig}, signal.{disposition})",
}


@pytest.mark.parametrize("signame", ["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("disposition", ["SIG_IGN", "SIG_DFL"])
@pytest.mark.parametrize("where", ["import", "migratepage"])
@pytest.mark.parametrize("how", sorted(SET))
def test_plugin_code_cannot_take_ctrl_c_or_sigterm_away(
    tmp_path: Path, signame: str, disposition: str, where: str, how: str
) -> None:
    """Ignored, the signal did nothing and the run ended ok, exit 0; at its default action,
    the process died of it (exit 143, or -2), with no word and no JSON report."""
    started = tmp_path / "started"
    take = SET[how].format(sig=signame, disposition=disposition)
    at_import = take + "\n" if where == "import" else ""
    once = "" if where == "import" else f"if not os.path.exists({str(started)!r}):\n    {take}\n"
    body = f"{once}open({str(started)!r}, 'a').close()\ntime.sleep(0.5)"
    scenario, env = _plugin(tmp_path, "taker", body, at_import)
    proc = start([sys.executable, "-c", QUICK, "migrate", scenario, "--json"], env=env)

    signum = getattr(signal, signame)

    def ready() -> bool:  # the handler taken (before `started`), then fsaops's put back
        return started.exists() and _caught(proc.pid, signum)

    out, err = signal_when(proc, ready, signum, "the run reached migratepage")
    assert proc.returncode == 130, err
    interrupted_said(err, signame)  # in migration, or after it on a busy machine
    assert json.loads(out)["status"] == "interrupted"


# -- a signal plugin code raises at fsaops ------------------------------------------------------

RAISE = {
    "raise_signal": "signal.raise_signal(signal.SIGTERM)",
    "raise_signal caught": "try:\n    signal.raise_signal(signal.SIGINT)\n"
    "except BaseException:\n    pass",
    "interrupt_main": "import _thread\n_thread.interrupt_main()",
}


@pytest.mark.parametrize("how", sorted(RAISE))
def test_a_signal_plugin_code_raises_at_fsaops_fails_the_run_naming_it(
    tmp_path: Path, how: str
) -> None:
    """It was taken for the user's: ``terminated (SIGTERM)`` or ``interrupted``, exit 130,
    no plugin named."""
    scenario, env = _plugin(tmp_path, "raiser", RAISE[how])
    proc = run([sys.executable, "-m", "fsaops", "migrate", scenario, "--json"], env=env)
    line = one_error_line(proc, 1, "plugin code may not interrupt fsaops", "raiser-dist[raiser]")
    call = "_thread.interrupt_main(SIGINT)" if how == "interrupt_main" else "signal.raise_signal"
    assert call in line
    one_json_object(proc, "kernel bug")


def test_a_signal_fsaops_does_not_handle_is_raised_as_plugin_code_asks(tmp_path: Path) -> None:
    """Only SIGINT and SIGTERM are fsaops's: a plugin's own handler of another one runs."""
    at_import = "GOT = []\nsignal.signal(signal.SIGUSR1, lambda *_: GOT.append(1))\n"
    body = "signal.raise_signal(signal.SIGUSR1)\nassert GOT, 'no SIGUSR1'"
    scenario, env = _plugin(tmp_path, "usr1", body, at_import)
    proc = run([sys.executable, "-m", "fsaops", "migrate", scenario, "--json"], env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert one_json_object(proc, "ok")["totals"]["moved"] == 8
