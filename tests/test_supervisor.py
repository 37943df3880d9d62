"""The supervising parent: a run whose process ends where fsaops cannot guard it is never exit 0.

Plugin code can end fsaops's process without going through Python: the C
library's ``_exit`` or ``fork`` through ``ctypes``, a crash, ``SIGKILL`` sent
to itself, a thread that holds the interpreter past the time limit.  The
command runs in a child of the process the user started; the parent says
what the child could not.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from fsaops import supervisor
from guarded import (
    CLEAN_ENV,
    alive,
    command_pid,
    fsaops,
    install,
    one_error_line,
    one_json_object,
    run,
    signal_when,
    start,
)
from test_hostile import _migratepage_plugin, _scenario

LIBC = "import ctypes\nLIBC = ctypes.CDLL(None)\n"

ENDS = {
    "libc _exit(0) through ctypes": (
        LIBC + "def mp(newpage, page):\n    LIBC._exit(0)\n",
        "ended with exit status 0",
    ),
    "libc _exit(1) through ctypes": (
        LIBC + "def mp(newpage, page):\n    LIBC._exit(1)\n",
        "ended with exit status 1",
    ),
    "a crash (SIGSEGV)": (
        "import ctypes\ndef mp(newpage, page):\n    ctypes.string_at(0)\n",
        "was killed by SIGSEGV",
    ),
    "SIGKILL sent to itself through libc": (
        LIBC + "def mp(newpage, page):\n    LIBC.kill(LIBC.getpid(), 9)\n",
        "was killed by SIGKILL",
    ),
    "libc _exit(0) on the third page only": (
        LIBC + "import itertools\nCALLS = itertools.count()\n"
        "def mp(newpage, page):\n    if next(CALLS) == 2:\n        LIBC._exit(0)\n"
        "    return migrate_page(newpage, page)\n",
        "ended with exit status 0",
    ),
}


def _run(tmp_path: Path, body: str, *extra: str) -> subprocess.CompletedProcess[str]:
    env = install(tmp_path, "ender", _migratepage_plugin("ender", body))
    return fsaops("migrate", _scenario(tmp_path, "ender"), "--json", *extra, env=env)


@pytest.mark.parametrize("case", sorted(ENDS))
def test_a_process_ended_where_fsaops_cannot_guard_it_is_a_failure(
    tmp_path: Path, case: str
) -> None:
    """Before, ``_exit(0)`` through ``ctypes`` ended the command with exit 0 and no output."""
    body, words = ENDS[case]
    proc = _run(tmp_path, body)
    one_error_line(proc, 1, "the process running the command", words, "before the command finished")
    data = one_json_object(proc, "kernel bug")
    assert words in data["error"]


def test_the_failure_page_replaces_an_earlier_page(tmp_path: Path) -> None:
    """The ``--html`` page says the run did not finish: an earlier run's page never stands."""
    page = tmp_path / "run.html"
    page.write_text("<p>an earlier run: OK</p>")
    body, _words = ENDS["libc _exit(0) through ctypes"]
    proc = _run(tmp_path, body, "--html", str(page))
    one_error_line(proc, 1, "ended with exit status 0")
    text = page.read_text()
    assert "an earlier run" not in text
    assert "kernel bug" in text
    assert "ended with exit status 0" in text


def test_an_exit_after_the_report_keeps_the_commands_status(tmp_path: Path) -> None:
    """An exit function of plugin code that ends the process through libc changes nothing."""
    body = (
        LIBC + "import atexit\natexit.register(lambda: LIBC._exit(0))\n"
        "def mp(newpage, page):\n    page.mapping = None\n    return 0\n"
    )
    proc = _run(tmp_path, body)
    assert proc.returncode == 1, proc.stderr
    assert json.loads(proc.stdout)["status"] != "ok"


def test_a_run_that_holds_the_interpreter_past_its_time_limit_is_a_timeout(
    tmp_path: Path,
) -> None:
    """The last resort ends such a process silently with status 1; the parent says why."""
    body = (
        "import ctypes, signal\n"
        "def mp(newpage, page):\n"
        "    signal.pthread_sigmask(signal.SIG_BLOCK, set(signal.Signals))\n"
        "    ctypes.PyDLL(None).sleep(120)  # the interpreter held all along\n"
    )
    proc = _run(tmp_path, body, "--timeout", "0.5")
    line = one_error_line(proc, 1, "timeout", "time limit of 0.5 s")
    assert "held the interpreter" in line
    one_json_object(proc, "timeout")


def test_a_successful_run_is_unchanged(tmp_path: Path) -> None:
    proc = _run(tmp_path, "def mp(newpage, page):\n    return migrate_page(newpage, page)\n")
    assert proc.returncode == 0, proc.stderr
    assert one_json_object(proc, "ok")["by_aops"]["ender_aops"]["moved"] == 8


def test_closing_descriptors_does_not_cut_the_run_off_from_the_program(tmp_path: Path) -> None:
    """The run tells the program through shared memory, which no ``close`` takes away."""
    body = "def mp(newpage, page):\n    os.closerange(3, 500)\n"
    body += "    return migrate_page(newpage, page)\n"
    proc = _run(tmp_path, body)
    assert proc.returncode == 0, proc.stderr
    assert one_json_object(proc, "ok")["by_aops"]["ender_aops"]["moved"] == 8


SLOW = "def mp(newpage, page):\n    time.sleep(0.05)\n    return migrate_page(newpage, page)\n"


def _start_slow(tmp_path: Path, *extra: str) -> subprocess.Popen[str]:
    """``fsaops migrate`` of 2,000 pages at 50 ms each: a run that is still going when signalled."""
    env = install(tmp_path, "slow", _migratepage_plugin("slow", SLOW))
    scenario = tmp_path / "slow.toml"
    scenario.write_text(
        '[plugins]\nload = ["slow"]\n[[mount]]\nfs = "slow"\npages = 2000\n'
        "[processes]\ncount = 0\nanon_pages = 0\n"
    )
    args = [sys.executable, "-m", "fsaops", "migrate", str(scenario), "--no-progress", *extra]
    return start(args, env=env)


@pytest.mark.parametrize("signame", ["SIGTERM", "SIGHUP"])
def test_sigterm_sent_to_the_program_reaches_the_run(tmp_path: Path, signame: str) -> None:
    """``kill`` (or a ``timeout`` command) reaches the process the user started: the program."""
    proc = _start_slow(tmp_path, "--json")
    out, err = signal_when(
        proc,
        lambda: command_pid(proc.pid) != proc.pid,
        getattr(signal, signame),
        "the run in a child",
    )
    assert proc.returncode == 130, err
    assert f"terminated ({signame})" in err
    assert json.loads(out)["status"] == "interrupted"


def test_a_kill_that_ends_the_run_after_native_code_took_its_handler_is_an_interruption(
    tmp_path: Path,
) -> None:
    """``SIGTERM`` set to its default action below Python: the run dies of the user's ``kill``."""
    started = tmp_path / "started"
    body = (
        LIBC + "def mp(newpage, page):\n"
        f"    open({str(started)!r}, 'w').close()\n"
        "    while True:\n        LIBC.signal(15, 0)\n        time.sleep(0.002)\n"
    )
    env = install(tmp_path, "dfl", _migratepage_plugin("dfl", body))
    args = [sys.executable, "-m", "fsaops", "migrate", str(_scenario(tmp_path, "dfl")), "--json"]
    proc = start(args, env=env)
    out, err = signal_when(proc, started.exists, signal.SIGTERM, "the run reached migratepage")
    assert proc.returncode == 130, err
    assert err.startswith("fsaops: error: terminated (SIGTERM) while migrating"), err
    assert json.loads(out)["status"] == "interrupted"


def _on_a_terminal(args: list[str], env: dict[str, str]) -> tuple[subprocess.Popen[str], int]:
    """Start ``args`` as a job in the foreground of a terminal of its own; the terminal's master."""
    import fcntl
    import termios

    master, slave = os.openpty()

    def controlling() -> None:  # in the new session: the terminal becomes its terminal
        fcntl.ioctl(slave, termios.TIOCSCTTY, 0)

    environment = {**{k: v for k, v in os.environ.items() if k not in CLEAN_ENV}, **env}
    proc = subprocess.Popen(
        args,
        stdin=slave,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment,
        start_new_session=True,
        preexec_fn=controlling,  # noqa: PLW1509 - the terminal, nothing else
    )
    os.close(slave)
    return proc, master


def _type_ctrl_c(
    args: list[str], env: dict[str, str], ready: Callable[[], bool]
) -> tuple[int, str, str]:
    """Start ``args`` on a terminal of its own and type Ctrl-C once ``ready()``: its end."""
    proc, master = _on_a_terminal(args, env)
    try:
        deadline = time.monotonic() + 60
        while not ready():
            assert time.monotonic() < deadline, "never: the run reached migratepage"
            time.sleep(0.05)
        os.write(master, b"\x03")  # Ctrl-C, typed
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
        proc.wait()
        os.close(master)
    return proc.returncode, out, err


@pytest.mark.parametrize("own_group", [False, True], ids=["in its group", "in a group of its own"])
def test_ctrl_c_at_the_terminal_interrupts_the_run_once(tmp_path: Path, own_group: bool) -> None:
    """The terminal sends Ctrl-C to both processes: the program leaves it to the run; a run that
    plugin code moved out of the program's process group gets it from the program."""
    started = tmp_path / "started"
    move = "    os.setpgid(0, 0)\n" if own_group else ""
    body = (
        "def mp(newpage, page):\n"
        + move
        + f"    open({str(started)!r}, 'w').close()\n"
        + "    time.sleep(60)\n    return migrate_page(newpage, page)\n"
    )
    env = install(tmp_path, "ctrlc", _migratepage_plugin("ctrlc", body))
    scenario = str(_scenario(tmp_path, "ctrlc"))
    args = [sys.executable, "-m", "fsaops", "migrate", scenario, "--json"]
    status, out, err = _type_ctrl_c(args, env, started.exists)
    assert status == 130, err
    assert re.fullmatch(
        r"fsaops: error: interrupted while migrating the page at pfn \d+ \(table ctrlc_aops of "
        r"plugin ctrlc-dist\[ctrlc\], pass \d+[^)]*\); in plugin code of ctrlc-dist\[ctrlc\] "
        r"\(ctrlc\.mp, \S+ctrlc\.py:\d+\)\n",
        err,
    ), err
    assert json.loads(out)["status"] == "interrupted"


@pytest.mark.parametrize("how", ["Ctrl-C at the terminal", "kill of the program"])
def test_an_interrupted_run_that_holds_the_interpreter_is_ended(tmp_path: Path, how: str) -> None:
    """Code that holds the interpreter in C never hears Ctrl-C: the program ends its process.

    Before, with no time limit, neither Ctrl-C nor ``kill`` ended the
    command: the run's own handlers need the interpreter, and the program
    waited for the run for good.
    """
    started = tmp_path / "started"
    body = (
        "import ctypes, signal\n"
        "def mp(newpage, page):\n"
        "    signal.pthread_sigmask(signal.SIG_BLOCK, set(signal.Signals))\n"
        f"    open({str(started)!r}, 'w').close()\n"
        "    while True:\n"
        "        ctypes.PyDLL(None).sleep(120)  # the interpreter held all along\n"
    )
    env = install(tmp_path, "holder", _migratepage_plugin("holder", body))
    args = [sys.executable, "-m", "fsaops", "migrate", str(_scenario(tmp_path, "holder")), "--json"]

    def in_c() -> bool:  # a moment after the run said so: no Python code runs there any more
        if not started.exists():
            return False
        time.sleep(0.5)
        return True

    if how == "kill of the program":
        proc = start(args, env=env)
        out, err = signal_when(proc, in_c, signal.SIGTERM, "the run reached migratepage")
        status, first = proc.returncode, "terminated (SIGTERM)"
    else:
        status, out, err = _type_ctrl_c(args, env, in_c)
        first = "interrupted"
    assert status == 130, err
    assert err.startswith(f"fsaops: error: {first} while migrating: "), err
    assert f"did not end within {supervisor.ENDING_GRACE:g} s" in err
    assert len(err.splitlines()) == 1, err
    assert json.loads(out)["status"] == "interrupted"


def test_a_run_held_in_c_with_no_time_limit_is_ended_as_stuck(tmp_path: Path) -> None:
    """The run's stall watch needs the interpreter; the program watches the watchdog's beats.

    Before, a ``migratepage`` that held the interpreter in C for good, with
    no time limit, was never ended: the command ran until killed.
    """
    body = (
        "import ctypes, signal\n"
        "def mp(newpage, page):\n"
        "    signal.pthread_sigmask(signal.SIG_BLOCK, set(signal.Signals))\n"
        "    while True:\n"
        "        ctypes.PyDLL(None).sleep(120)  # the interpreter held all along\n"
    )
    started = time.monotonic()
    proc = _run(tmp_path, body)
    took = time.monotonic() - started
    line = one_error_line(proc, 1, "stuck while migrating", "code held the interpreter")
    assert f"no progress for {supervisor.HELD_SECONDS:g} s" in line
    one_json_object(proc, "timeout")
    assert took >= supervisor.HELD_SECONDS


def test_the_run_ends_with_the_program(tmp_path: Path) -> None:
    """``SIGKILL`` of the program leaves no run behind."""
    proc = _start_slow(tmp_path)
    try:
        deadline = time.monotonic() + 60
        child = proc.pid
        while child == proc.pid and time.monotonic() < deadline:
            child = command_pid(proc.pid)
            time.sleep(0.02)
        assert child != proc.pid, "the program runs its command in a child"
        assert alive(child)
        proc.kill()
        proc.communicate(timeout=60)
        deadline = time.monotonic() + 30
        while alive(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not alive(child)
    finally:
        proc.kill()
        proc.wait()


def test_a_copy_of_the_run_made_below_python_is_ended_and_named(tmp_path: Path) -> None:
    """Before, a fork through ``ctypes`` left a copy of the run behind, for good, and the
    command exited 0: the copy waited for a thread that forks do not copy."""
    body = (
        LIBC + "import itertools\nCALLS = itertools.count()\n"
        "def mp(newpage, page):\n    if next(CALLS) == 2:\n        LIBC.fork()\n"
        "    return migrate_page(newpage, page)\n"
    )
    env = install(tmp_path, "forker", _migratepage_plugin("forker", body))
    scenario = _scenario(tmp_path, "forker")
    proc = start([sys.executable, "-m", "fsaops", "migrate", str(scenario), "--json"], env=env)
    try:
        _out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 1, err
    assert "Traceback" not in err
    assert "plugin code made a copy of the process running the command below Python" in err
    assert "fsaops ended it" in err
    assert not [pid for pid in _processes() if str(scenario).encode() in _cmdline(pid)]


def _copy_that_reports(tmp_path: Path) -> str:
    """A ``migratepage`` that copies the run below Python on the last page and lets the copy
    run the command to its end (its report included) before the run goes on.

    The copy puts ``threading`` in order as ``os.fork`` would have, so that it does not wait
    for the threads a fork does not copy; the run records the copy's pid in ``copy.pid`` and,
    once the copy has ended, what the ``--html`` page held then in ``seen``.
    """
    return (
        LIBC + "CALLS = itertools.count()\n"
        "def mp(newpage, page):\n"
        "    if next(CALLS) == 7:\n"
        "        time.sleep(0.3)  # the run's own threads idle: none holds a lock at the fork\n"
        "        copy = LIBC.fork()\n"
        "        if copy == 0:\n"
        "            threading._after_fork()\n"
        "        else:\n"
        f"            open({str(tmp_path / 'copy.pid')!r}, 'w').write(str(copy))\n"
        "            deadline = time.monotonic() + 20\n"
        "            while not os.waitpid(copy, os.WNOHANG)[0] and time.monotonic() < deadline:\n"
        "                time.sleep(0.02)\n"
        f"            html = {str(tmp_path / 'run.html')!r}\n"
        f"            with open({str(tmp_path / 'seen')!r}, 'w') as seen:\n"
        "                seen.write(open(html).read() if os.path.exists(html) else '')\n"
        "    return migrate_page(newpage, page)\n"
    )


def _run_with_a_copy(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    env = install(tmp_path, "copier", _migratepage_plugin("copier", _copy_that_reports(tmp_path)))
    return fsaops("migrate", _scenario(tmp_path, "copier"), *extra, env=env)


def _names_the_copy(tmp_path: Path, proc: subprocess.CompletedProcess[str]) -> None:
    copy = (tmp_path / "copy.pid").read_text()
    one_error_line(proc, 1, "plugin code made a copy", f"(pid {copy})", "fsaops ended it")


def test_a_copy_that_reports_leaves_one_json_document(tmp_path: Path) -> None:
    """Before, a copy that got to its report wrote it too: two JSON documents, exit 1."""
    proc = _run_with_a_copy(tmp_path, "--json")
    _names_the_copy(tmp_path, proc)
    assert one_json_object(proc, "ok")["by_aops"]["copier_aops"]["moved"] == 8


def test_a_copy_that_reports_leaves_one_plain_report(tmp_path: Path) -> None:
    proc = _run_with_a_copy(tmp_path)
    _names_the_copy(tmp_path, proc)
    assert proc.stdout.count("fsaops migrate ") == 1, proc.stdout
    assert proc.stdout.startswith("fsaops migrate "), proc.stdout


def test_a_copy_that_reports_does_not_replace_the_page(tmp_path: Path) -> None:
    """The ``--html`` page is the run's: while the run goes on, the copy has not written it."""
    page = tmp_path / "run.html"
    page.write_text("<p>an earlier run</p>")
    proc = _run_with_a_copy(tmp_path, "--json", "--html", str(page))
    _names_the_copy(tmp_path, proc)
    assert (tmp_path / "seen").read_text() == "<p>an earlier run</p>"
    one_json_object(proc, "ok")
    assert "an earlier run" not in page.read_text()


GETPID_AFTER_A_RAW_FORK = """
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
for fork in (libc.fork, lambda: libc.syscall(57)):  # the C library's fork; the system call
    read, write = os.pipe()
    child = fork()
    if child == 0:
        os.write(write, b"%d" % os.getpid())
        os._exit(0)
    os.close(write)
    os.waitpid(child, 0)
    print(child, os.read(read, 32).decode(), os.getpid())
"""


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="the fork system call's number")
def test_a_copy_made_below_python_knows_its_own_pid() -> None:
    """What tells a copy from the run: ``os.getpid()`` is the copy's, even after a fork that no
    C library code saw (no pid is cached anywhere across it)."""
    proc = run([sys.executable, "-c", GETPID_AFTER_A_RAW_FORK])
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.split("\n")[:-1]
    assert len(lines) == 2, proc.stdout
    for line in lines:
        child, seen, parent = line.split()
        assert child == seen != parent


FORGED_ANSWERS = {
    "the supervisor's answer(0), then a run that fails": (
        "from fsaops import supervisor\n"
        "def mp(newpage, page):\n    supervisor.answer(0)\n    page.mapping = None\n    return 0\n",
        "invariant broken",
        None,
    ),
    "the supervisor's answer(0), then libc _exit(0)": (
        LIBC + "from fsaops import supervisor\n"
        "def mp(newpage, page):\n    supervisor.answer(0)\n    LIBC._exit(0)\n",
        "kernel bug",
        "ended with exit status 0",
    ),
    "the command line's own end, with status 0, in a thread": (
        "from fsaops import cli\ndef mp(newpage, page):\n"
        "    threading.Thread(target=cli._exit_now, args=(0,)).start()\n    time.sleep(10)\n",
        "kernel bug",
        None,
    ),
    "the command line's own end, with status 0": (
        "from fsaops import cli\ndef mp(newpage, page):\n    cli._exit_now(0)\n",
        "kernel bug",
        "ended with exit status 0",
    ),
}


@pytest.mark.parametrize("case", sorted(FORGED_ANSWERS))
def test_plugin_code_cannot_give_the_runs_exit_status(tmp_path: Path, case: str) -> None:
    """Before, a ``migratepage`` that called ``supervisor.answer(0)`` made the program exit 0:
    after a run that failed, or after ending the run's process with no report at all."""
    body, status, words = FORGED_ANSWERS[case]
    proc = _run(tmp_path, body)
    assert proc.returncode == 1, (proc.stdout[-2000:], proc.stderr[-2000:])
    assert one_json_object(proc, status)
    if words is not None:
        one_error_line(proc, 1, words, "it has no report")


STOPS = {
    "SIGSTOP through os.kill": (
        "import signal\ndef mp(newpage, page):\n"
        "    os.kill(os.getpid(), signal.SIGSTOP)\n    return migrate_page(newpage, page)\n",
        "SIGSTOP",
    ),
    "SIGTSTP through libc": (
        LIBC + "def mp(newpage, page):\n"
        "    LIBC.kill(LIBC.getpid(), 20)\n    return migrate_page(newpage, page)\n",
        "SIGTSTP",
    ),
}


@pytest.mark.parametrize("case", sorted(STOPS))
def test_a_run_that_stops_itself_is_ended_and_reported(tmp_path: Path, case: str) -> None:
    """Before, the program waited for good (past ``--timeout``): nothing continues a run stopped
    while the program goes on, which the user's shell sees running."""
    body, name = STOPS[case]
    env = install(tmp_path, "stopper", _migratepage_plugin("stopper", body))
    scenario = _scenario(tmp_path, "stopper")
    # A process group of its own, in this test's session: the kernel discards SIGTSTP sent
    # to a process of an orphaned group (one where no process has a parent in another group
    # of the session), as this test's own group may be, and the run would not stop at all.
    proc = fsaops(
        "migrate", scenario, "--json", "--timeout", "5", env=env, timeout=60, process_group=0
    )
    one_error_line(proc, 1, f"was stopped by {name}", "fsaops ended it", "it has no report")
    assert f"stopped by {name}" in one_json_object(proc, "kernel bug")["error"]
    assert not [pid for pid in _processes() if str(scenario).encode() in _cmdline(pid)]


def test_a_stop_of_the_whole_job_leaves_the_run_to_be_continued(tmp_path: Path) -> None:
    """Ctrl-Z (``SIGTSTP`` to the job's process group) stops the program and the run alike;
    continued (``fg``), the run goes on and finishes: it was not ended while stopped.

    The program's wait for the beats is cut short by the stop past its
    timeout: CPython's ``sigtimedwait`` then hands back a record never
    filled in, which the program ended on with a traceback before it took
    a signal it does not wait for as no signal.
    """
    seconds = supervisor.STOP_GRACE + 1  # longer than a run stopped alone is left
    started = tmp_path / "started"
    body = (
        "def mp(newpage, page):\n"
        f"    if not os.path.exists({str(started)!r}):\n"
        f"        open({str(started)!r}, 'w').close()\n"
        "        time.sleep(1)\n"
        "    return migrate_page(newpage, page)\n"
    )
    env = install(tmp_path, "paused", _migratepage_plugin("paused", body))
    scenario = str(_scenario(tmp_path, "paused"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "fsaops", "migrate", scenario, "--json"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**{k: v for k, v in os.environ.items() if k not in CLEAN_ENV}, **env},
        process_group=0,  # a job of its own, as a shell starts it
    )
    try:
        deadline = time.monotonic() + 60
        while not started.exists():
            assert time.monotonic() < deadline, "never: the run reached migratepage"
            time.sleep(0.05)
        run = command_pid(proc.pid)
        assert run != proc.pid
        os.killpg(proc.pid, signal.SIGTSTP)  # what the terminal sends for Ctrl-Z
        while not (_state(proc.pid) == _state(run) == "T"):
            assert time.monotonic() < deadline, "never: both stopped"
            time.sleep(0.05)
        time.sleep(seconds)
        assert _state(run) == "T"
        os.killpg(proc.pid, signal.SIGCONT)  # fg
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 0, err
    assert json.loads(out)["status"] == "ok"


def test_a_copy_that_takes_the_name_of_fsaopss_own_forks_is_ended(tmp_path: Path) -> None:
    """Before, a copy named ``fsaops-fork`` (as fsaops's own forks are) was left running, holding
    standard output open: a reader of the output (``| jq``) waited for good."""
    body = (
        LIBC + "CALLS = itertools.count()\n"
        "def mp(newpage, page):\n    if next(CALLS) == 2 and LIBC.fork() == 0:\n"
        "        LIBC.prctl(15, b'fsaops-fork', 0, 0, 0)\n        LIBC.sleep(3600)\n"
        "    return migrate_page(newpage, page)\n"
    )
    env = install(tmp_path, "namer", _migratepage_plugin("namer", body))
    scenario = _scenario(tmp_path, "namer")
    proc = fsaops("migrate", scenario, "--json", env=env, timeout=60)
    assert one_json_object(proc, "ok")["by_aops"]["namer_aops"]["moved"] == 8
    assert not [pid for pid in _processes() if str(scenario).encode() in _cmdline(pid)]


_STOPS = {
    "SIGSTOP": "        os.kill(os.getppid(), signal.SIGSTOP)\n",
    "SIGTSTP": "        os.kill(os.getppid(), signal.SIGTSTP)\n",
    # The parent's state read as running: a stop it has not acted on yet when
    # the run answers (not yet scheduled, on a busy machine), or no /proc to
    # read it from.  Before, the answer continued only a parent that read
    # stopped: this run, like a CI run on a loaded machine, never exited.
    "SIGSTOP, not yet seen": (
        "        os.kill(os.getppid(), signal.SIGSTOP)\n"
        "        from fsaops import supervisor\n"
        "        supervisor._state = lambda pid: 'S'\n"
    ),
    # After the run's answer: an exit function of plugin code stops the program.
    "SIGSTOP from an exit function": (
        "        import atexit\n        atexit.register(os.kill, os.getppid(), signal.SIGSTOP)\n"
    ),
}


@pytest.mark.parametrize("stop", _STOPS.values(), ids=_STOPS.keys())
def test_a_run_that_stops_the_program_continues_it_when_done(tmp_path: Path, stop: str) -> None:
    """Before, ``SIGSTOP`` sent to the program by plugin code left it stopped for good: the run
    finished, and the program never exited."""
    body = (
        "import signal\nCALLS = itertools.count()\n"
        f"def mp(newpage, page):\n    if next(CALLS) == 2:\n{stop}"
        "    return migrate_page(newpage, page)\n"
    )
    env = install(tmp_path, "pauser", _migratepage_plugin("pauser", body))
    proc = fsaops("migrate", _scenario(tmp_path, "pauser"), "--json", env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert one_json_object(proc, "ok")["by_aops"]["pauser_aops"]["moved"] == 8


def test_garbage_written_over_what_the_run_tells_does_not_double_the_report(
    tmp_path: Path,
) -> None:
    """Before, random bytes written over the mapping the run tells the program through were
    taken for a copy of the run (``the copy (pid )``): exit 1, and the JSON envelope after the
    run's own report, two JSON documents.  What the run tells after them is read."""
    body = (
        "from fsaops import supervisor\nCALLS = itertools.count()\n"
        "def mp(newpage, page):\n    if next(CALLS) == 0:\n"
        "        supervisor._Child.shared[:] = bytes(range(256)) * 256\n"
        "    return migrate_page(newpage, page)\n"
    )
    proc = _run(tmp_path, body)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert one_json_object(proc, "ok")["by_aops"]["ender_aops"]["moved"] == 8


def test_a_status_written_over_what_the_run_tells_cannot_pass_a_failed_run(
    tmp_path: Path,
) -> None:
    """Before, a record of status 0 written at the start of the mapping stood for a run that
    then failed: exit 0 after a report that said ``invariant broken``."""
    body = (
        "from fsaops import supervisor\n"
        "def mp(newpage, page):\n    supervisor._Child.shared[0:6] = b'3d 30\\n'\n"
        "    page.mapping = None\n    return 0\n"
    )
    proc = _run(tmp_path, body, "--timeout", "60")  # a fact told first: the record follows it
    assert proc.returncode == 1, proc.stderr
    one_json_object(proc, "invariant broken")


COPY_THAT_FINISHES = """
import os, sys
from fsaops import supervisor

def unanswered(ended):
    print("unanswered", ended.describe(), flush=True)
    return 9

def copies(found):
    print("copies", found.given, len(found.pids), flush=True)
    return 7

supervisor.supervise(unanswered, copies)
supervisor.ready()
copy = os.fork()  # as a fork below Python would: no at-fork work of fsaops's runs
if copy == 0:
    supervisor.answer(0)  # the copy ran the command to its end
    os._exit(0)
os.waitpid(copy, 0)
supervisor.answer(0)
os._exit(0)
"""


def test_a_copy_that_ran_the_command_to_its_end_is_named() -> None:
    """A copy that finished before the child leaves no process: it said so where the child
    does not write."""
    proc = subprocess.run(
        [sys.executable, "-c", COPY_THAT_FINISHES],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        env={k: v for k, v in os.environ.items() if k not in CLEAN_ENV},
    )
    assert (proc.returncode, proc.stdout) == (7, "copies 0 1\n"), proc.stderr


def test_without_a_supervisor_the_command_runs_in_the_program(tmp_path: Path) -> None:
    """``FSAOPS_NO_SUPERVISOR``: one process, for a debugger or profiler that follows one."""
    body, _words = ENDS["libc _exit(0) through ctypes"]
    env = install(tmp_path, "ender", _migratepage_plugin("ender", body))
    env["FSAOPS_NO_SUPERVISOR"] = "1"
    proc = fsaops("migrate", _scenario(tmp_path, "ender"), "--json", env=env)
    assert proc.returncode == 0  # what the supervisor is there to catch
    assert proc.stdout == ""


PROFILED = {
    "a run that passes": (
        "def mp(newpage, page):\n    return migrate_page(newpage, page)\n",
        0,
        "ok",
    ),
    "a run that fails": (
        "def mp(newpage, page):\n    page.mapping = None\n    return 0\n",
        1,
        "invariant broken",
    ),
}


@pytest.mark.parametrize("case", sorted(PROFILED))
def test_a_run_started_by_a_profiler_gives_its_own_status(tmp_path: Path, case: str) -> None:
    """``python -m cProfile -m fsaops``: the profiler's frames are below the program's own.

    Before, the child's status was refused (frames not fsaops's on the way),
    and every run, passing or not, ended "before the command finished",
    exit 1, blaming code fsaops cannot guard.
    """
    body, status, said = PROFILED[case]
    env = install(tmp_path, "profiled", _migratepage_plugin("profiled", body))
    args: list[str | Path] = [sys.executable, "-m", "cProfile", "-o", tmp_path / "run.prof"]
    args += ["-m", "fsaops"]
    proc = run([*args, "migrate", _scenario(tmp_path, "profiled"), "--json"], env=env)
    assert proc.returncode == status, proc.stderr[-2000:]
    assert one_json_object(proc, said)
    assert "before the command finished" not in proc.stderr


def _processes() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _state(pid: int) -> str:
    """The state of process ``pid`` (``T``: stopped), or an empty string once it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return ""


class _Victim:
    """A process for the beats' watch to end, and the mapping its beats are read from."""

    def __init__(self) -> None:
        import mmap

        self.proc = subprocess.Popen(["sleep", "300"])
        self.shared = mmap.mmap(-1, supervisor._SHARED_BYTES)
        self.beats = supervisor._Beats(self.proc.pid, self.shared)

    def beat(self, count: int) -> None:
        self.shared[supervisor._BEAT_AT : supervisor._BEAT_AT + 8] = count.to_bytes(8, "little")

    def ended(self) -> bool:
        return self.proc.poll() is not None or self.proc.wait(timeout=10) is not None

    def killed(self) -> bool:
        """Whether the watch ended the process, by its own word."""
        return self.beats.killed


@pytest.fixture
def victim() -> Iterator[_Victim]:
    v = _Victim()
    try:
        yield v
    finally:
        v.proc.kill()
        v.proc.wait()


def _look_every_second(v: _Victim, start: float, seconds: float, beats: bool = False) -> float:
    """Look once a second of made-up time from ``start`` for ``seconds``; the time reached."""
    now = start
    count = 1
    while now < start + seconds:
        now += 1.0
        if beats:
            count += 1
            v.beat(count)
        v.beats.look(now, stopped=False)
    return now


def test_a_watched_run_that_does_not_beat_is_ended(victim: _Victim) -> None:
    victim.beat(1)
    t0 = time.monotonic()
    victim.beats.look(t0 + 1.0, stopped=False)
    _look_every_second(victim, t0 + 1.0, supervisor.HELD_SECONDS - 2)
    assert not victim.killed() and victim.proc.poll() is None
    _look_every_second(victim, t0 + supervisor.HELD_SECONDS - 1, 3)
    assert victim.killed()
    assert victim.ended()


def test_a_run_that_beats_or_is_not_watched_is_left_alone(victim: _Victim) -> None:
    t0 = time.monotonic()
    victim.beat(1)
    end = _look_every_second(victim, t0, 3 * supervisor.HELD_SECONDS, beats=True)
    victim.beat(0)  # no run watched: the command is writing its report, say
    _look_every_second(victim, end, 3 * supervisor.HELD_SECONDS)
    assert not victim.killed() and victim.proc.poll() is None


def test_time_the_program_did_not_run_is_not_counted_against_the_run(victim: _Victim) -> None:
    """Ctrl-Z stops the program too: its looks stop, and the run's beats with them."""
    victim.beat(1)
    t0 = time.monotonic()
    now = _look_every_second(victim, t0, supervisor.HELD_SECONDS - 5)
    now += supervisor.HELD_SECONDS + 60  # stopped, then continued (fg)
    victim.beats.look(now, stopped=False)
    now = _look_every_second(victim, now, supervisor.HELD_SECONDS - 2)
    assert not victim.killed() and victim.proc.poll() is None
    _look_every_second(victim, now, 3)
    assert victim.killed()
