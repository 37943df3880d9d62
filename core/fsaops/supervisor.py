"""A parent process that outlives the run, so that no end of the run goes unsaid.

:mod:`fsaops.process` refuses the ends of the process that go through
Python (``os._exit``, ``exec``, a fork), but plugin code can end a process
where no Python function stands in between: libc's ``_exit`` or a system
call through ``ctypes``, a crash in a C extension, ``SIGKILL`` sent to
itself, a thread that holds the interpreter until the last-resort timer
ends the process.  Before, such a run ended with whatever status it ended
with, ``0`` included, and no word: a script that read the exit status took
a run that never finished for a run that passed.

Run as the program, fsaops therefore forks once, before it loads any
plugin (:func:`supervise`).  The child runs the command as before; the
parent only waits for it.  The child tells the parent the exit status its
command ended with (:func:`answer`), once its output is flushed, and a few
facts the parent needs to speak for it (:func:`tell`).  They go through a
small shared memory mapping rather than a pipe, written without ``json``:
plugin code that closes every descriptor it did not open, or rebinds
``json``'s encoder, cannot cut the child off from its parent.  When the
child ends without having given its status, the parent says so (a line
on standard error, the JSON envelope, the ``--html`` failure page:
whatever the command line gives it) and exits with a failure status; when
it gave one, the parent exits with it, whatever the child's own end was.

A Ctrl-C from the terminal reaches both processes; the parent leaves it to
the child (unless plugin code moved the child out of the parent's process
group, where the terminal's signals no longer reach it).  A signal sent to
the parent alone (``kill``, a ``timeout`` command, a CI job being stopped)
is passed on to the child.  The child is killed if the parent dies.
Setting ``FSAOPS_NO_SUPERVISOR`` to a non-empty value runs the command in
the process itself (for a debugger or a profiler that follows one process).
"""

from __future__ import annotations

import contextlib
import math
import mmap
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, NoReturn

import attrs

from fsaops.errors import INTERRUPTS
from fsaops.process import fsaops_code

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import FrameType

__all__ = [
    "ENDING_GRACE",
    "ENV_VAR",
    "HELD_SECONDS",
    "STOP_GRACE",
    "Copies",
    "Unanswered",
    "answer",
    "beat",
    "continue_parent",
    "is_copy",
    "leave_if_copy",
    "ready",
    "run_started",
    "supervise",
    "tell",
]

ENV_VAR: Final = "FSAOPS_NO_SUPERVISOR"
"""Set to a non-empty value, fsaops runs the command without a supervising parent."""

_SIGNALS: Final = frozenset({*INTERRUPTS, signal.SIGCHLD})


STOP_GRACE: Final = 2.0
"""Seconds the child may stay stopped while the parent is not (then the parent ends it).

A terminal's Ctrl-Z stops the program and the child alike, and ``fg``
continues both.  A child stopped alone (``SIGSTOP`` plugin code sent to its
own process, a signal sent to that process only) is never continued: the
user's shell sees the program, which still runs, and would wait for good.
"""

ENDING_GRACE: Final = 6.0
"""Seconds the child has to end once the program was interrupted (then the parent ends it).

Ctrl-C or ``SIGTERM`` reaches the child (the terminal sends it to both, and
the parent passes on what was sent to it alone); the command line ends its
process two seconds later at the latest if plugin code swallows it.  Only
code that holds the interpreter in C (a loop in a C function that never
checks for signals) keeps it from even being told: the parent ends it.
"""

_SHARED_BYTES: Final = 65536
"""The size of the mapping the child writes its records to (a record that would not fit is lost)."""

_COPIES_AT: Final = _SHARED_BYTES - 256
"""Where a copy of the child (a fork below Python) says it ran the command to its end: apart
from the child's own records, which the copy would write over, being a copy of the child."""

_PHASE_AT: Final = _COPIES_AT - 256
"""Where the child keeps the phase of its run (:func:`tell_phase`): one record, written over
each time, after every other record (so it is the one read); records end before it."""

_BEAT_AT: Final = _PHASE_AT - 16
"""Where the child's run watchdog counts its beats (:func:`beat`): eight bytes, ``0`` while
no run is watched; records end before it."""

HELD_SECONDS: Final = 30.0
"""Seconds a watched run may go without a beat before the parent ends it as held.

The run's watchdog thread beats ten times a second; it needs the
interpreter, and only code that holds the interpreter in C (a loop in a C
function that never checks for signals), where the run's own stall watch
and time limit cannot reach, keeps it from beating that long.  As long as
the run's own stall watch gives a run that stays on one tick of the
kernel's clock (``fsaops.scenario.STALL_SECONDS``).
"""

_LOOK_EVERY: Final = 1.0
"""Seconds between two looks of the parent at the child's beats."""


_EXIT: Final = os._exit
"""``os._exit`` itself, bound before plugin code can replace it (a copy leaves through it)."""


class _Run:
    """The process that started the command under way (``0``: none is under way)."""

    pid: int = 0


class _Child:
    """The supervised child's side (in the child only)."""

    shared: mmap.mmap | None = None
    used: int = 0
    pid: int = 0
    answered: bool = False
    mask: frozenset[int] | None = None
    sigchld: object = None
    entry: FrameType | None = None
    """The frame that called the command line: frames below it started the program."""
    beats: int = 0


@attrs.frozen
class Unanswered:
    """How the supervised child ended without giving its command's status.

    ``exit_status`` is the status it ended with, or ``None`` when a signal
    ended it (``signal_name``, such as ``SIGSEGV``); ``facts`` is what it
    told the parent before (:func:`tell`); ``seconds``, how long it ran;
    ``received``, the names of the signals the parent itself was sent while
    it waited (``SIGINT``, ``SIGTERM``), in order; ``stopped_by``, the
    signal that stopped it alone for longer than :data:`STOP_GRACE`, after
    which the parent killed it (else ``None``); ``not_ending``, whether the
    parent killed it because it had not ended :data:`ENDING_GRACE` seconds
    after the first of ``received``; ``held``, whether the parent killed it
    because its run's watchdog had not beaten for :data:`HELD_SECONDS`.
    """

    exit_status: int | None
    signal_name: str | None
    facts: dict[str, str]
    seconds: float
    received: tuple[str, ...] = ()
    stopped_by: str | None = None
    not_ending: bool = False
    held: bool = False

    def describe(self) -> str:
        """One sentence: how the run's process ended."""
        if self.held:
            return (
                f"the run made no progress for {HELD_SECONDS:g} s, and code held the interpreter "
                "so that nothing in its process could stop it; fsaops ended it"
            )
        if self.not_ending:
            return (
                f"the process running the command did not end within {ENDING_GRACE:g} s of the "
                f"{self.received[0]} (code held the interpreter, so that nothing could tell "
                "it); fsaops ended it"
            )
        if self.stopped_by is not None:
            return (
                f"the process running the command was stopped by {self.stopped_by} before the "
                "command finished, alone (the program was not), where nothing would continue it; "
                "fsaops ended it"
            )
        if self.signal_name is not None:
            how = f"was killed by {self.signal_name}"
        else:
            how = f"ended with exit status {self.exit_status}"
        return f"the process running the command {how} before the command finished"


@attrs.frozen
class Copies:
    """Copies of the process running the command, made below Python (a fork through ``ctypes``).

    ``pids``: the copies found (those still running were killed); ``given``,
    the exit status the command itself gave; ``facts``, what it told
    (:func:`tell`).
    """

    pids: tuple[int, ...]
    given: int
    facts: dict[str, str]

    def describe(self) -> str:
        """One sentence: what was found."""
        which = ", ".join(str(p) for p in self.pids)
        return (
            "plugin code made a copy of the process running the command below Python (a fork "
            f"fsaops cannot refuse, such as the C library's fork through ctypes): the copy "
            f"(pid {which}) went on with the run; fsaops ended it, and wrote none of the "
            "copy's output"
        )


def supervise(
    on_unanswered: Callable[[Unanswered], int],
    on_copies: Callable[[Copies], int],
) -> None:
    """Fork: return in the child, which runs the command; in the parent, wait and exit.

    ``on_unanswered`` is called in the parent when the child ends without
    its status; it says what happened and returns the exit status to end
    with.  ``on_copies`` is called when the child gave its status but plugin
    code had made copies of it below Python (:class:`Copies`).  Nothing
    happens (the command runs in this process) when :data:`ENV_VAR` is set,
    outside the main thread, or when the system cannot fork.  In the child,
    Ctrl-C and ``SIGTERM`` stay blocked until :func:`ready`: the command line
    sets up its own handling of them first.
    """
    if os.environ.get(ENV_VAR) or threading.current_thread() is not threading.main_thread():
        return
    if not hasattr(os, "fork") or not hasattr(signal, "sigwaitinfo"):  # pragma: no cover
        return
    try:
        shared = mmap.mmap(-1, _SHARED_BYTES)  # shared with the child, anonymous
    except (OSError, ValueError):
        return
    old_chld = signal.getsignal(signal.SIGCHLD)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # inherited SIG_IGN would reap the child for us
    old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
    parent = os.getpid()
    try:
        pid = os.fork()
    except OSError:
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
        signal.signal(signal.SIGCHLD, old_chld)
        shared.close()
        return
    if pid == 0:
        _Child.shared = shared
        _Child.pid = os.getpid()
        # main()'s caller: the program's own code (fsaops/__main__.py, the console
        # script), called by what started it (runpy, or cProfile, pdb, trace).
        if _Child.entry is None:
            _Child.entry = sys._getframe(1).f_back
        _Child.mask = frozenset(old_mask)
        _Child.sigchld = old_chld
        _die_with(parent)
        # A fork through os.fork runs this in the new process; one below
        # Python (libc's, through ctypes) does not.
        os.register_at_fork(after_in_child=_own_fork)
        return
    _prctl(_PR_SET_CHILD_SUBREAPER, 1)  # what the child leaves behind comes back here
    _wait(pid, shared, on_unanswered, on_copies)


def run_started(pid: int | None = None) -> int:
    """Record the process that runs the command: this one, or ``pid``; returns the one before.

    Called where the command starts (after :func:`supervise`, in the
    process that then runs it), and with the value it returned once the
    command is done (``main()`` called as a library).  From there on, only
    that process writes the command's output (:func:`leave_if_copy`).
    """
    before = _Run.pid
    _Run.pid = os.getpid() if pid is None else pid
    return before


def is_copy() -> bool:
    """Whether this process is a copy of the one running the command, not that process.

    A fork below Python (the C library's ``fork`` through ``ctypes``) runs
    no Python at-fork handler: the copy goes on with the command as if it
    were the run.  ``os.getpid()`` asks the system (no process id is
    cached across a fork), so the copy's differs from the pid recorded by
    :func:`run_started`.
    """
    return _Run.pid != 0 and os.getpid() != _Run.pid


def leave_if_copy() -> None:
    """In a copy of the run (:func:`is_copy`): say so to the program, write nothing, end now.

    Called wherever the command's output is written, its answer given or
    an output file replaced: the report, the ``--html`` page and the exit
    status are the run's, and a copy that got as far as writing its own
    would have doubled them.  The supervising program names the copy and
    fails the run.
    """
    if not is_copy():
        return
    _mark_copy()
    _EXIT(1)


def _mark_copy() -> None:
    """Where a copy of the run says that it went on with the command (nowhere, unsupervised)."""
    shared = _Child.shared
    if shared is not None and os.getpid() != _Child.pid:
        with contextlib.suppress(Exception):
            shared[_COPIES_AT : _COPIES_AT + 32] = b"%-31d\n" % os.getpid()


def ready() -> None:
    """In the supervised child: let Ctrl-C, ``SIGTERM`` and ``SIGCHLD`` through, as before."""
    if _Child.mask is None or os.getpid() != _Child.pid:
        return
    signal.signal(signal.SIGCHLD, _Child.sigchld)  # type: ignore[arg-type]
    signal.pthread_sigmask(signal.SIG_SETMASK, _Child.mask)
    _Child.mask = None


def tell(key: str, value: str) -> None:
    """In the supervised child: a fact the parent may need to speak for it (else nothing).

    Only fsaops's own code tells: a call from plugin code is ignored.
    """
    if _Child.shared is None or not fsaops_code(sys._getframe(1)):
        return
    _send(_record(key, value))


def tell_phase(phase: str) -> None:
    """In the supervised child: what the run is doing now, for the parent to say (else nothing).

    The fact ``phase``, kept in a place of its own and written over each
    time, so that a command that runs many scenarios (``bench``) takes no
    room from the other facts.  ``""``: no run is going on.  Only fsaops's
    own code tells.
    """
    shared = _Child.shared
    if shared is None or os.getpid() != _Child.pid or not fsaops_code(sys._getframe(1)):
        return
    record = _record("phase", phase[:100])
    with contextlib.suppress(Exception):  # closed by plugin code: nothing more can be said
        shared[_PHASE_AT:_COPIES_AT] = record.ljust(_COPIES_AT - _PHASE_AT, b"\0")


def beat(watched: bool = True) -> None:
    """In the supervised child: the run's watchdog is alive (``watched=False``: no run is watched).

    Called by the run's watchdog thread (:func:`fsaops.scenario.run_plan`)
    ten times a second while a run is under way: a run that goes
    :data:`HELD_SECONDS` without a beat is held in C where nothing in its
    process can stop it, and the parent ends it.  Only fsaops's own code
    beats.
    """
    shared = _Child.shared
    if shared is None or os.getpid() != _Child.pid or not fsaops_code(sys._getframe(1)):
        return
    _Child.beats = _Child.beats + 1 if watched else 0
    with contextlib.suppress(Exception):  # closed by plugin code: nothing more can be said
        shared[_BEAT_AT : _BEAT_AT + 8] = _Child.beats.to_bytes(8, "little")


def answer(status: int) -> None:
    """In the supervised child: the command's exit status, given once its output is out.

    Called by fsaops's own ends of the program; the first status given is
    the one the parent exits with.  Only the command line gives it (its
    end once the command is done, or its last word for a run that cannot
    stop), with no plugin code on the way: a call from plugin code, or
    from a function plugin code handed to fsaops to call, is ignored, and
    cannot have a run that failed, or never finished, exit 0.
    """
    if _Child.shared is None or _Child.answered:
        return
    caller = sys._getframe(1)
    if caller.f_globals.get("__name__") not in ("fsaops.cli", "__main__") or not fsaops_code(
        caller, callers=True, until=_Child.entry
    ):
        return
    if caller.f_code.co_name == "_exit_now" and (
        threading.current_thread() is not threading.main_thread()
    ):
        return  # the command line ends the program from its main thread (else its last word)
    _Child.answered = True
    if os.getpid() != _Child.pid:
        # A copy of the child, made below Python (fsaops's own forks never
        # end here): it ran the command to its end too.
        _mark_copy()
        return
    _send(_record("=", str(status)))
    continue_parent()


def continue_parent() -> None:
    """In the supervised child that has given its status: continue the program (``SIGCONT``).

    Plugin code that stopped the program (``SIGSTOP`` to its parent) would
    leave it stopped for good, the run done.  Sent whatever the parent's
    state reads: a stop signal is acted on only once the parent runs again,
    which on a busy machine can be after this, and ``SIGCONT`` continues a
    stopped process and discards a stop still pending.  :func:`answer` sends
    it, and the command line again as the child's last act, after the exit
    functions (plugin code's among them) have run.
    """
    if _Child.shared is None or not _Child.answered or os.getpid() != _Child.pid:
        return
    with contextlib.suppress(OSError):
        os.kill(os.getppid(), signal.SIGCONT)


def _record(key: str, value: str) -> bytes:
    """One record: its key and value in hex (no module plugin code can rebind writes it).

    On a line of its own even after bytes written over the mapping before it.
    """
    return b"\n%s %s\n" % (
        key.encode("utf-8", "surrogateescape").hex().encode(),
        value.encode("utf-8", "surrogateescape").hex().encode(),
    )


def _send(data: bytes) -> None:
    shared = _Child.shared
    if shared is None or os.getpid() != _Child.pid:  # a child of the child: not the command
        return
    end = _Child.used + len(data)
    if end > _BEAT_AT:
        return
    with contextlib.suppress(Exception):  # closed by plugin code: nothing more can be said
        shared[_Child.used : end] = data
        _Child.used = end


_PR_SET_PDEATHSIG: Final = 1
_PR_SET_NAME: Final = 15
_PR_SET_CHILD_SUBREAPER: Final = 36

OWN_FORK_NAME: Final = "fsaops-fork"
"""The name (``/proc/PID/comm``) of a process fsaops's own code forked from the supervised child
(the plugin probe's child, a schedule of ``fsaops explore``): not a copy of the run."""

_LIBC: list[Any] = []


def _prctl(option: int, value: int | bytes) -> None:
    """``prctl(option, value)`` (Linux); nothing where it cannot be called."""
    with contextlib.suppress(Exception):
        if not _LIBC:
            import ctypes

            _LIBC.append(ctypes.CDLL(None, use_errno=True))
        _LIBC[0].prctl(option, value, 0, 0, 0)


def _own_fork() -> None:
    """In a child of ``os.fork`` (fsaops's own forks: plugin code's are refused): say so."""
    if _Child.shared is not None:
        _prctl(_PR_SET_NAME, OWN_FORK_NAME.encode())


def _die_with(parent: int) -> None:
    """Have the system kill this process when its parent ends (Linux), and check it has not."""
    _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the parent ended before the request was made
        os._exit(1)


class _Beats:
    """The parent's watch over the beats of the child's run watchdog (:func:`beat`).

    Looked at every :data:`_LOOK_EVERY` seconds; a run that has not beaten
    for :data:`HELD_SECONDS` of the parent's own time is killed
    (``killed``).  Time the parent itself did not run (stopped with the
    child by the terminal's Ctrl-Z, or not scheduled) is not counted
    against the run, nor is time the child spent stopped.
    """

    __slots__ = ("_looked", "_pid", "_seen", "_shared", "_since", "killed")

    def __init__(self, pid: int, shared: mmap.mmap) -> None:
        self._pid = pid
        self._shared = shared
        self._looked = time.monotonic()
        self._seen = 0
        self._since = self._looked
        self.killed = False

    def next_look(self) -> float:
        """When to look next (never, once the child is killed)."""
        return math.inf if self.killed else self._looked + _LOOK_EVERY

    def look(self, now: float, stopped: bool) -> None:
        """Look at the beats if it is time; kill the child if its run is held."""
        if self.killed or now < self._looked + _LOOK_EVERY:
            return
        if now - self._looked > 3 * _LOOK_EVERY or stopped:
            self._since = now  # this process did not run meanwhile, or the child is stopped
        self._looked = now
        try:
            seen = int.from_bytes(self._shared[_BEAT_AT : _BEAT_AT + 8], "little")
        except (ValueError, OSError):  # pragma: no cover - the mapping is the parent's own
            return
        if seen != self._seen or seen == 0:
            self._seen, self._since = seen, now
            return
        if now - self._since >= HELD_SECONDS and _state(self._pid) not in ("T", "t", "Z", ""):
            self.killed = True
            with contextlib.suppress(OSError):
                os.kill(self._pid, signal.SIGKILL)


def _wait(
    pid: int,
    shared: mmap.mmap,
    on_unanswered: Callable[[Unanswered], int],
    on_copies: Callable[[Copies], int],
) -> NoReturn:
    """The parent: pass signals sent to it alone on to the child, reap it, exit for it."""
    start = time.monotonic()
    status = 0
    received: list[str] = []
    stopped: tuple[str, float] | None = None  # the signal that stopped the child, and when
    stopped_by: str | None = None
    ending: float | None = None  # when the child must have ended, once interrupted
    not_ending = False
    beats = _Beats(pid, shared)
    while True:
        beats.look(time.monotonic(), stopped is not None)
        try:
            due = min(
                stopped[1] + STOP_GRACE if stopped is not None else math.inf,
                ending if ending is not None and not not_ending else math.inf,
                beats.next_look(),
            )
            if due == math.inf:
                info = signal.sigwaitinfo(_SIGNALS)
            else:
                waited = signal.sigtimedwait(_SIGNALS, max(due - time.monotonic(), 0.0))
                if waited is not None and waited.si_signo not in _SIGNALS:
                    # CPython returns a siginfo never filled in when the wait was
                    # interrupted (this process stopped and continued) past its
                    # timeout: no signal came.
                    waited = None
                if waited is None:
                    now = time.monotonic()
                    if stopped is not None and now >= stopped[1] + STOP_GRACE:
                        # Stopped all along, unless continued meanwhile.
                        if stopped_by is None and _state(pid) == "T":
                            stopped_by = stopped[0]
                            with contextlib.suppress(OSError):
                                os.kill(pid, signal.SIGKILL)
                        stopped = None
                    if ending is not None and not not_ending and now >= ending:
                        not_ending = True
                        with contextlib.suppress(OSError):
                            os.kill(pid, signal.SIGKILL)
                    continue
                info = waited
        except OSError:  # pragma: no cover - nothing to wait for
            break
        if info.si_signo == signal.SIGCHLD:
            try:
                done, status = os.waitpid(pid, os.WNOHANG | os.WUNTRACED)
            except ChildProcessError:  # pragma: no cover - reaped by someone else
                break
            if done == pid and os.WIFSTOPPED(status):
                # Stopped: by the terminal (Ctrl-Z), this process is stopped too
                # and waits here only once both are continued; alone, it waits
                # for good, and is ended once STOP_GRACE has passed.
                if stopped is None:
                    stopped = (_signal_name(os.WSTOPSIG(status)), time.monotonic())
                continue
            if done == pid:
                break
            continue
        received.append(signal.Signals(info.si_signo).name)
        if ending is None:
            ending = time.monotonic() + ENDING_GRACE
        # From the terminal, a signal reaches the child as well, unless plugin
        # code moved it to a process group of its own; from a process (kill,
        # timeout), only the process it was sent to.
        if info.si_code <= 0 or not _in_my_group(pid):
            with contextlib.suppress(OSError):
                os.kill(pid, info.si_signo)
    facts, given = _read_facts(shared)
    copies = _end_copies()
    finished = bytes(shared[_COPIES_AT : _COPIES_AT + 32]).strip(b"\0 \n")
    if finished.isdigit():  # else bytes plugin code wrote there: no copy said anything
        copies = (*copies, int(finished))
    if given is not None:
        if copies:
            pids = tuple(sorted(set(copies)))
            try:
                given = on_copies(Copies(pids, given, facts))
            except BaseException:  # the parent's last word must not be a traceback
                given = max(given, 1)
            with contextlib.suppress(Exception):
                sys.stdout.flush()
                sys.stderr.flush()
        os._exit(given)
    if os.WIFSIGNALED(status):
        name: str | None = _signal_name(os.WTERMSIG(status))
        code: int | None = None
    else:
        name = None
        code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else 1
    ended = Unanswered(
        code,
        name,
        facts,
        time.monotonic() - start,
        tuple(received),
        stopped_by=stopped_by,
        not_ending=not_ending and name == "SIGKILL",
        held=beats.killed and name == "SIGKILL",
    )
    try:
        exit_status = on_unanswered(ended)
    except BaseException:  # the parent's last word must not be a traceback
        exit_status = 1
    with contextlib.suppress(Exception):
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(exit_status)


def _end_copies() -> tuple[int, ...]:
    """Kill the copies of the child still running (forks below Python, left to this process).

    This process is a subreaper: what the child left running comes back to
    it when the child ends.  fsaops's own children (the plugin probe's, the
    explorer's) are forked through ``os.fork``, which names them
    :data:`OWN_FORK_NAME`, and a program plugin code started runs another
    command line: a process left that runs this very command line under
    another name, and is not a zombie, is a copy of the child.  One left
    under that name is ended too, but not counted (a copy that took the
    name is ended all the same: none holds standard output open).  The
    rest is left as it is; zombies are reaped.
    """
    found: list[int] = []
    ended: list[int] = []
    me = os.getpid()
    try:
        ours = Path(f"/proc/{me}/cmdline").read_bytes()
        children = Path(f"/proc/{me}/task/{me}/children").read_text().split()
    except OSError:
        children = []
        ours = b""
    for word in children:
        child = int(word)
        try:
            state = Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()[0]
            line = Path(f"/proc/{child}/cmdline").read_bytes()
            name = Path(f"/proc/{child}/comm").read_text().strip()
        except (OSError, IndexError):
            continue
        if state != "Z" and line == ours:
            # Ended whatever its name: one of fsaops's own forks left running
            # (the run ended while a schedule ran) holds standard output open
            # too, and a copy may have taken that name.
            with contextlib.suppress(OSError):
                os.kill(child, signal.SIGKILL)
                ended.append(child)
                if name != OWN_FORK_NAME:
                    found.append(child)
    for child in ended:
        with contextlib.suppress(OSError):
            os.waitpid(child, 0)
    with contextlib.suppress(OSError):
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass
    return tuple(found)


def _signal_name(signum: int) -> str:
    """``SIGSTOP``, or ``signal 99`` for a number Python has no name for."""
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def _state(pid: int) -> str:
    """The state of process ``pid`` (``T``: stopped; ``t``: stopped by a debugger), or ``""``."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return ""


def _in_my_group(pid: int) -> bool:
    """Whether process ``pid`` is in this process's group (a signal to the group reaches it)."""
    try:
        return os.getpgid(pid) == os.getpgrp()
    except OSError:
        return True  # gone: nothing to pass on


def _read_facts(shared: mmap.mmap) -> tuple[dict[str, str], int | None]:
    """What the child told (its facts, and its status if it gave one).

    Every record is read, wherever it is: plugin code may have written over
    the mapping, and what the child told after that still counts.  The
    child gives its status once; should there be more than one (plugin code
    wrote one), the highest stands: a run that failed is never passed.
    """
    data = bytes(shared[:_BEAT_AT]) + b"\n" + bytes(shared[_PHASE_AT:_COPIES_AT])
    facts: dict[str, str] = {}
    given: int | None = None
    for line in data.split(b"\n"):
        try:
            key_hex, value_hex = line.split(b" ")
            key = bytes.fromhex(key_hex.decode()).decode("utf-8", "surrogateescape")
            value = bytes.fromhex(value_hex.decode()).decode("utf-8", "surrogateescape")
        except ValueError:  # a record cut short: the child died writing it
            continue
        if key == "=":
            if value.isdigit() and int(value) <= 255:
                given = int(value) if given is None else max(given, int(value))
        else:
            facts[key] = value
    return facts, given
