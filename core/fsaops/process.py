"""The process fsaops runs in, kept from plugin code that would end, replace or fork it.

Run as the program, fsaops stands in for the functions of ``os`` (and
``posix``) that end the process (``_exit``), replace it (``execv``,
``execve``: the rest of the ``exec`` family calls these two) or make a
second copy of it (``fork``, ``forkpty``).  Plugin code that calls one
while fsaops works gets :class:`~fsaops.errors.ProcessEnded` instead, and
the call is remembered (:func:`calls`), so that the run fails even when
plugin code catches the exception or makes the call from a thread of its
own.  Without the guard, ``os._exit(0)`` in a ``migratepage`` ended the
command with status 0 and no report, and ``os.fork()`` made two runs that
each printed a report.

fsaops's own forks and ends (the plugin probe's child, a schedule of
``fsaops explore``, the end of the program) go through :data:`REAL_FORK`
and :data:`REAL_EXIT`.  In a child fsaops forked, the functions do what
they always do, unless the child takes the guard over (:func:`adopt`), as
a schedule of ``fsaops explore`` does: it runs plugin code, and must say
who ended it.

Ctrl-C and ``SIGTERM`` are fsaops's too while it watches them
(:func:`~fsaops.errors.watch_sigint`).  Plugin code that sets what one of
them does (``signal.signal(SIGTERM, SIG_IGN)``, at import or in a
``migratepage``) is told the change was made, but fsaops keeps its
handler: had it been ignored, Ctrl-C or ``kill`` would do nothing; set to
its default action, it would end the process at once with no word and no
report.  Plugin code that raises one of them at fsaops itself
(``signal.raise_signal``, ``_thread.interrupt_main``), or sends one to
fsaops's process, its process group or one of its threads (``os.kill``,
``os.killpg``, ``signal.pthread_kill``), gets
:class:`~fsaops.errors.ProcessEnded`, remembered as the calls above: the
run fails naming it, rather than being reported as the user's
interruption.  fsaops's own code, and the program's ``__main__``, send
them as they always do.  What code is fsaops's is told by where its code
was read from, not by the name its module gives itself.

The run's time limit and stall watchdog use an :class:`Alarm` of their
own: a timer whose signal, ``SIGURG`` (where the system has POSIX timers),
is ignored by default, so that no change plugin code makes to a signal's
disposition, ``SIGALRM``'s included, can have fsaops's timer end the
process.
"""

from __future__ import annotations

import _thread
import contextlib
import ctypes
import gc
import importlib
import os
import signal
import sys
import threading
import weakref
from types import FrameType  # at run time: the API reference links it
from typing import TYPE_CHECKING, Any, Final, NoReturn

from fsaops.errors import ProcessEnded, owns_signal, shown

_signal: Any = importlib.import_module("_signal")  # what signal.signal calls; no type stubs

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping

__all__ = [
    "GUARDED",
    "KEPT_REPLACE",
    "PLUGIN_THREADS",
    "REAL_EXIT",
    "REAL_FORK",
    "Alarm",
    "adopt",
    "calls",
    "dispatch_ends",
    "ends_refused",
    "fsaops_code",
    "guard_process",
    "keep",
    "keep_handler",
    "plugin_code",
    "plugin_of_module",
    "refuse_forks",
    "refused_in",
    "shed_memory",
]

REAL_EXIT: Final = os._exit
"""``os._exit`` itself, for fsaops's own ends while the guard stands in for it."""

REAL_FORK: Final = os.fork
"""``os.fork`` itself, for fsaops's own children while the guard stands in for it."""

PLUGIN_THREADS: Final[weakref.WeakSet[threading.Thread]] = weakref.WeakSet()
"""Threads started while plugin code ran in this process (:func:`plugin_code`).

``fsaops explore`` forks a process for each schedule, which keeps only
the thread that forks: a lock one of these held then stays held there.
Kept as the threads themselves, not their idents, which the system reuses.
"""


@contextlib.contextmanager
def plugin_code() -> Iterator[None]:
    """Note the threads that start while plugin code runs (a plugin's import, its hook, a mount).

    Each thread alive after the block and not before it joins
    :data:`PLUGIN_THREADS`: a plugin's own thread, a pool's worker or a
    timer it started, but not a test runner's, which starts its threads
    between the blocks.
    """
    before = set(threading.enumerate())
    try:
        yield
    finally:
        PLUGIN_THREADS.update(set(threading.enumerate()) - before)


GUARDED: Final = ("_exit", "execv", "execve", "fork", "forkpty")
"""The functions of ``os`` (and ``posix``) plugin code may not call while fsaops runs."""


class _ProcessGuard:
    """Stands in for the functions in :data:`GUARDED` in the process that put it in place."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        #: Each call: what was called, the thread, and the calling functions
        #: (``module.function``), innermost first.
        self.calls: list[tuple[str, str, list[str]]] = []

    def stand_in(
        self, name: str, real: Callable[..., Any], module: str = "os"
    ) -> Callable[..., NoReturn]:
        """What ``os.<name>`` is while the guard is up, ``real`` being the function itself."""

        def refused(*args: object) -> NoReturn:
            if os.getpid() != self.pid:
                real(*args)
            call = f"{module}.{name}({', '.join(shown(arg) for arg in args)})"
            raise self.refused(call)

        refused.__name__ = refused.__qualname__ = name
        return refused

    def raiser(self, name: str, real: Callable[..., Any], module: str) -> Callable[..., Any]:
        """What ``signal.raise_signal`` or ``_thread.interrupt_main`` is while the guard is up.

        Raising ``SIGINT`` or ``SIGTERM`` while fsaops handles it is refused,
        as ``os._exit`` is; any other signal, or one fsaops does not
        handle, is raised.
        """

        def raise_signal(signum: object = signal.SIGINT) -> Any:
            if os.getpid() != self.pid or not owns_signal(signum):
                return real(signum)
            assert isinstance(signum, int)  # owns_signal says so
            raise self.refused(f"{module}.{name}({signal.Signals(int.__int__(signum)).name})")

        raise_signal.__name__ = raise_signal.__qualname__ = name
        return raise_signal

    def keeper(self, real: Callable[..., Any]) -> Callable[..., Any]:
        """What ``_signal.signal`` (which ``signal.signal`` calls) is while the guard is up.

        For ``SIGINT`` or ``SIGTERM`` while fsaops handles it, and a call
        that is not fsaops's own: the handler stays fsaops's, and what it
        is is returned, as if it had been replaced.
        """

        def signal_(signum: object, handler: object) -> Any:
            if (
                os.getpid() == self.pid
                and threading.current_thread() is threading.main_thread()
                and owns_signal(signum)
                and not _fsaops_calls(sys._getframe(1))
            ):
                assert isinstance(signum, int)  # owns_signal says so
                return signal.getsignal(int.__int__(signum))
            return real(signum, handler)

        signal_.__name__ = signal_.__qualname__ = "signal"
        return signal_

    def sender(self, name: str, real: Callable[..., Any], module: str) -> Callable[..., Any]:
        """What ``os.kill``, ``os.killpg`` or ``signal.pthread_kill`` is while the guard is up.

        Sending ``SIGINT`` or ``SIGTERM``, while fsaops handles it, to this
        process (``os.kill`` of its pid, of its process group, 0 or -1;
        ``os.killpg`` of its group or 0; ``signal.pthread_kill`` of any of
        its threads) is refused, as ``os._exit`` is, unless fsaops's own
        code or the program's ``__main__`` sends it.  Any other signal,
        or process, is sent.
        """

        def send(target: object, signum: object) -> Any:
            if (
                os.getpid() != self.pid
                or not owns_signal(signum)
                or not isinstance(target, int)
                or not _reaches_this_process(name, int.__int__(target))
                or _program_or_fsaops(sys._getframe(1))
            ):
                return real(target, signum)
            assert isinstance(signum, int)  # owns_signal says so
            sent = signal.Signals(int.__int__(signum)).name
            raise self.refused(f"{module}.{name}({_WHOM[name]}, {sent})")

        send.__name__ = send.__qualname__ = name
        return send

    def refused(self, call: str) -> ProcessEnded:
        """Remember ``call`` (made by the stand-in's caller); the :class:`ProcessEnded` to raise."""
        callers: list[str] = []
        frame: FrameType | None = sys._getframe(2)
        while frame is not None and len(callers) < 100:
            callers.append(f"{frame.f_globals.get('__name__')}.{frame.f_code.co_name}")
            frame = frame.f_back
        self.calls.append((call, threading.current_thread().name, callers))
        return ProcessEnded(call)


_HOME: Final = os.path.dirname(os.path.abspath(__file__)) + os.sep
"""The folder fsaops's own modules were read from."""

_WHOM: Final = {
    "kill": "pid of fsaops",
    "killpg": "process group of fsaops",
    "pthread_kill": "thread of fsaops",
}
"""How a refused call names what it sent the signal to (a pid differs from run to run)."""


def _reaches_this_process(name: str, target: int) -> bool:
    """Whether ``os.<name>(target, ...)`` (or ``signal.pthread_kill``) signals this process."""
    if name == "pthread_kill":  # a thread of this process, or none
        return True
    group = os.getpgrp()
    if name == "killpg":
        return target in (0, group)
    return target in (os.getpid(), 0, -1, -group)


def _code_of(frame: FrameType, home: str) -> bool:
    """Whether ``frame`` runs code of a module read from a file under ``home``.

    The frame's globals must be that module's own, and its code read from
    the module's file: code that only calls itself ``fsaops.something``
    (``exec`` with a ``__name__`` of its choosing) is not.
    """
    name = frame.f_globals.get("__name__")
    module = sys.modules.get(name) if isinstance(name, str) else None
    path = getattr(module, "__file__", None)
    return (
        module is not None
        and getattr(module, "__dict__", None) is frame.f_globals
        and isinstance(path, str)
        and frame.f_code.co_filename == path
        and os.path.abspath(path).startswith(home)
    )


def _fsaops_calls(frame: FrameType | None) -> bool:
    """Whether the code calling ``signal.signal`` is fsaops's: ``frame``, or under ``signal``'s."""
    while frame is not None and frame.f_globals.get("__name__") == "signal":
        frame = frame.f_back
    return frame is not None and _code_of(frame, _HOME)


def _program_or_fsaops(frame: FrameType) -> bool:
    """Whether ``frame`` runs fsaops's own code or the program's (its ``__main__``)."""
    main = sys.modules.get("__main__")
    return _code_of(frame, _HOME) or (
        main is not None and getattr(main, "__dict__", None) is frame.f_globals
    )


def _library_paths() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The folders of the standard library, and those of installed packages, inside them or not."""
    import sysconfig

    paths = sysconfig.get_paths()
    stdlib = {paths.get(key) for key in ("stdlib", "platstdlib")}
    installed = {paths.get(key) for key in ("purelib", "platlib")}
    return (
        tuple(os.path.abspath(p) + os.sep for p in stdlib if p),
        tuple(os.path.abspath(p) + os.sep for p in installed if p),
    )


_STDLIB, _INSTALLED = _library_paths()


def _standard_library(frame: FrameType) -> bool:
    """Whether ``frame`` runs code of the standard library.

    A frozen module's, or one read from the standard library's folder (not
    from installed packages within it).
    """
    if frame.f_code.co_filename.startswith("<frozen "):
        name = frame.f_globals.get("__name__")
        module = sys.modules.get(name) if isinstance(name, str) else None
        spec = getattr(module, "__spec__", None)
        return (
            getattr(module, "__dict__", None) is frame.f_globals
            and getattr(spec, "origin", None) == "frozen"
        )
    folders = os.path.abspath(frame.f_code.co_filename).split(os.sep)
    if "site-packages" in folders or "dist-packages" in folders:
        return False  # installed packages, wherever they are
    return any(_code_of(frame, home) for home in _STDLIB) and not any(
        _code_of(frame, home) for home in _INSTALLED
    )


def fsaops_code(
    frame: FrameType | None, *, callers: bool = False, until: FrameType | None = None
) -> bool:
    """Whether ``frame`` runs fsaops's own code, or the program's (its ``__main__``).

    With ``callers``, every frame that led to it must run fsaops's code, the
    program's or the standard library's as well: no plugin code (nor any
    other) is on the way, up to ``until``: the frame that started the
    command, recorded before any plugin was loaded (what called it started
    the program: ``runpy``, or a profiler or debugger).  What only
    calls itself ``fsaops.something`` (``exec`` with globals of its
    choosing, code compiled under another file's name) is not fsaops's.
    """
    if frame is None or not _program_or_fsaops(frame):
        return False
    if not callers:
        return True
    caller = frame.f_back
    while caller is not None:
        if caller is until:
            return True
        if not (_program_or_fsaops(caller) or _standard_library(caller)):
            return False
        caller = caller.f_back
    return True


_GUARDS: list[_ProcessGuard] = []
"""The guard in place (none unless :func:`guard_process` was called)."""


def guard_process() -> None:
    """Stand in for the functions in :data:`GUARDED` for the rest of this process's life.

    And for the functions that set what ``SIGINT`` and ``SIGTERM`` do, or
    raise or send them (``signal.signal``, ``signal.raise_signal``,
    ``_thread.interrupt_main``, ``os.kill``, ``os.killpg``,
    ``signal.pthread_kill``): see the module's description.

    The command line calls this when it runs as the program, which then
    always ends with :data:`REAL_EXIT` and the command's status: plugin
    code that calls ``os._exit`` later (from an exit function it
    registered, or a thread) cannot change that status either.
    """
    guard = _ProcessGuard()
    modules = [os, *(m for m in (sys.modules.get(os.name),) if m is not None)]
    for module in modules:
        for name in GUARDED:
            real = getattr(module, name, None)
            if real is not None:
                setattr(module, name, guard.stand_in(name, real))
    raiser = guard.raiser("raise_signal", _signal.raise_signal, "signal")
    signal.raise_signal = _signal.raise_signal = raiser  # signal's is _signal's
    _thread.interrupt_main = guard.raiser("interrupt_main", _thread.interrupt_main, "_thread")
    for module in modules:
        for name in ("kill", "killpg"):
            real = getattr(module, name, None)
            if real is not None:
                setattr(module, name, guard.sender(name, real, "os"))
    if hasattr(_signal, "pthread_kill"):
        sender = guard.sender("pthread_kill", _signal.pthread_kill, "signal")
        signal.pthread_kill = _signal.pthread_kill = sender  # signal's is _signal's
    _signal.signal = guard.keeper(_signal.signal)  # which signal.signal calls
    _GUARDS.append(guard)


_KEPT: list[int] = [0]
"""The status a failed test session keeps (:func:`keep`); 0: none."""

KEPT_REPLACE: Final = (
    "os.{name}() was called after a test session that failed: plugin code may not replace "
    "the process, whose status says the session failed"
)
"""What a refused ``exec`` says after a failed session (:func:`keep`)."""


def keep(status: int) -> None:
    """Keep a failed session's ``status`` through the functions :func:`dispatch_ends` put in place.

    From now on ``os._exit(0)`` ends the process with ``status``, and
    ``os.execv`` and ``os.execve`` are refused.
    """
    _KEPT[0] = status


def dispatch_ends() -> None:
    """Put a dispatcher in place of each function in :data:`GUARDED`, for the process's life.

    For plugin code that binds one when it is imported (``from os import
    _exit``), before a guard stands in for it: the name it keeps is the
    dispatcher, which does what the guard up at the time of the call says
    (:func:`ends_refused`, :func:`guard_process`) and what a failed
    session's kept status says (:func:`keep`), and otherwise calls the
    function itself.  The testing kit puts it in place when it is imported,
    before the tests import the plugins they test.  Done once.
    """
    modules = [os, *(m for m in (sys.modules.get(os.name),) if m is not None)]
    for module in modules:
        for name in GUARDED:
            real = getattr(module, name, None)
            if real is not None and not getattr(real, "fsaops_dispatch", False):
                setattr(module, name, _dispatcher(name, real))


def _dispatcher(name: str, real: Callable[..., Any]) -> Callable[..., Any]:
    """What ``os.<name>`` is once :func:`dispatch_ends` put it in place."""

    def dispatch(*args: Any, **kwargs: Any) -> Any:
        for guard in reversed(_GUARDS):
            if guard.pid == os.getpid():
                return guard.stand_in(name, real)(*args)
        status = _KEPT[0]
        if status and name == "_exit":
            return real(*args) if args and args[0] else real(status)
        if status and name in ("execv", "execve"):
            raise ProcessEnded(KEPT_REPLACE.format(name=name))
        return real(*args, **kwargs)

    dispatch.__name__ = dispatch.__qualname__ = name
    dispatch.fsaops_dispatch = True  # type: ignore[attr-defined]
    return dispatch


@contextlib.contextmanager
def ends_refused() -> Iterator[list[tuple[str, str, list[str]]]]:
    """Stand in for the functions in :data:`GUARDED` while the block runs, as for a program.

    For plugin code run in a process that is not fsaops's program: a test
    session of the testing kit, where a ``migratepage`` that calls
    ``os._exit(0)`` ended pytest with status 0, every test not yet run
    unreported.  The call raises :class:`~fsaops.errors.ProcessEnded`
    instead; the block gets the list of the calls refused (as
    :func:`calls` says them), which it fails on, since plugin code may
    catch the exception.  A child forked in the block that takes the guard
    over (:func:`adopt`) keeps it, as a child of the program does.
    """
    guard = _ProcessGuard()
    modules = [os, *(m for m in (sys.modules.get(os.name),) if m is not None)]
    saved: list[tuple[Any, str, Any]] = []
    for module in modules:
        for name in GUARDED:
            current = getattr(module, name, None)
            if current is not None:
                saved.append((module, name, current))
                setattr(module, name, guard.stand_in(name, current))
    _GUARDS.append(guard)
    try:
        yield guard.calls
    finally:
        _GUARDS.remove(guard)
        for module, name, current in saved:
            setattr(module, name, current)


def calls() -> list[tuple[str, str, list[str]]]:
    """Each refused call so far: the call as text, its thread, its callers (innermost first)."""
    return [call for guard in _GUARDS for call in guard.calls]


def shed_memory() -> None:
    """Collect garbage and give freed memory back to the system, before forking many times.

    ``fsaops explore`` forks a process for each schedule.  A fork copies
    the page tables of every page this process has resident, and the
    child's end tears its copies down: both cost time in proportion to
    the resident memory, which a process that ran other work first (a
    test session) has plenty of, mostly freed but kept by the allocator.
    Measured on a test session's process of about 200 MB, a schedule cost
    two and a half times what it did in a fresh ``fsaops explore``.  A full
    collection frees what only it can, and ``malloc_trim`` (the C
    library's, where it has one: glibc) hands the freed pages back.
    """
    gc.collect()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


def _malloc_trim() -> Callable[[int], int] | None:
    """The C library's ``malloc_trim``, or ``None`` where it has none."""
    try:
        trim: Callable[[int], int] = ctypes.CDLL(None).malloc_trim
    except (AttributeError, OSError, TypeError):  # not glibc, or no C library to load
        return None
    return trim


def adopt() -> None:
    """Keep the guard up in this forked child of the process that put it in place.

    The child forgets the calls its parent made: :func:`calls` says only
    its own.  It must end with :data:`REAL_EXIT`.
    """
    for guard in _GUARDS:
        guard.pid = os.getpid()
        guard.calls.clear()


def refuse_forks() -> None:
    """Refuse ``os.fork`` and ``os.forkpty`` in this process, whoever forked or started it.

    For the plugin probe's child, forked from fsaops or started as a new
    interpreter: a plugin that forks at import would otherwise leave a copy
    of the child that loads the rest of the plugins a second time, writes
    to the same channel, and outlives the probe, and the two kinds of
    child would say different things of the same plugin.  The call raises
    :class:`~fsaops.errors.ProcessEnded`, as it does in fsaops itself.
    """
    modules = [os, *(m for m in (sys.modules.get(os.name),) if m is not None)]
    for module in modules:
        for name in ("fork", "forkpty"):
            if getattr(module, name, None) is not None:
                setattr(module, name, _refuse(name))


def _refuse(name: str) -> Callable[..., NoReturn]:
    """A stand-in for ``os.<name>`` that never makes the call."""

    def refused(*args: object) -> NoReturn:
        raise ProcessEnded(f"os.{name}({', '.join(shown(arg) for arg in args)})")

    refused.__name__ = refused.__qualname__ = name
    return refused


def plugin_of_module(plugins: Mapping[str, str], module: str) -> str | None:
    """The plugin whose code ``module`` is, from each plugin's entry-point module.

    ``plugins`` maps each plugin's entry-point module (``pkg.beta``) to its
    ``distribution[entry]``.  The longest entry-point module that is
    ``module`` or a package holding it wins; otherwise a plugin whose
    entry point lies in the same top-level package, if only one does
    (several plugins of one package, and code in a module none of them
    names: ``None``, rather than a guess).
    """
    best = None
    for key, label in plugins.items():
        if (module == key or module.startswith(key + ".")) and (
            best is None or len(key) > len(best[0])
        ):
            best = key, label
    if best is not None:
        return best[1]
    top = module.split(".", maxsplit=1)[0]
    labels = {label for key, label in plugins.items() if key.split(".")[0] == top}
    return labels.pop() if len(labels) == 1 else None


def refused_in(what: str, plugins: Mapping[str, str] | None = None) -> str | None:
    """The first refused call, as a sentence saying who made it ``what`` (``during the run``).

    ``None`` when there was none.  With ``plugins`` (each plugin's top-level
    module and its ``distribution[entry]``), who is the innermost plugin
    among the callers; without, the innermost caller outside fsaops and the
    standard library's threading.  When there is none, it is the thread.
    """
    made = calls()
    if not made:
        return None
    call, thread, callers = made[0]
    for caller in callers:
        top = caller.split(".")[0]
        if plugins is not None:
            owner = plugin_of_module(plugins, caller.rpartition(".")[0] or caller)
            if owner is not None:
                who = f"plugin {owner} ({caller})"
                break
        elif top not in ("fsaops", "threading", "multiprocessing"):
            who = f"code in {caller}"
            break
    else:
        who = f"code in thread {shown(thread)} ({callers[0] if callers else '?'})"
    return f"{who} called {call} {what}: {ProcessEnded(call).rule}"


class Alarm:
    """A timer of fsaops's own that never ends the process, whatever its signal's disposition.

    It sends :attr:`signum` once, :meth:`arm`'s seconds after it is armed:
    ``SIGURG``, through a POSIX timer of its own, where the system has them
    (Linux).  ``SIGURG``'s default action is to ignore it, so plugin code
    that sets it to its default action, or ignores it, at any moment and by
    any route (``signal.signal``, a C library, ``ctypes``), only loses
    fsaops's look at that moment; ``SIGALRM``, whose default action ends
    the process ("Alarm clock"), is left to plugin code, and so is the
    process's one ``ITIMER_REAL``.  Elsewhere it is ``SIGALRM`` and
    ``setitimer``, as before.  The owner puts its handler in place for
    :attr:`signum`, from the main thread; :meth:`arm` may be called from
    any thread.  A forked child gets a timer of its own when it arms one.
    """

    def __init__(self) -> None:
        #: The signal the timer sends.
        self.signum: int = signal.SIGALRM
        self._pid = -1
        self._timer: Any = None
        self._api: Any = None
        urgent = getattr(signal, "SIGURG", None)
        if sys.platform.startswith("linux") and urgent is not None:
            with contextlib.suppress(OSError, AttributeError, ValueError):
                self._api = _posix_timers()
                self._create(int(urgent))
                self.signum = int(urgent)

    @property
    def own(self) -> bool:
        """Whether the timer is fsaops's alone (not the process's ``ITIMER_REAL``)."""
        return self._api is not None and self.signum != signal.SIGALRM

    def _create(self, signum: int) -> None:
        import ctypes

        api = self._api
        event = api.Sigevent(signo=signum, notify=0)  # SIGEV_SIGNAL: send it to the process
        timer = ctypes.c_void_p()
        if api.timer_create(1, ctypes.byref(event), ctypes.byref(timer)) != 0:  # CLOCK_MONOTONIC
            raise OSError(ctypes.get_errno(), "timer_create")
        self._timer, self._pid = timer, os.getpid()

    def arm(self, seconds: float) -> None:
        """Send the signal once, ``seconds`` from now (0: not at all, cancelling what was armed)."""
        if not self.own:
            signal.setitimer(signal.ITIMER_REAL, seconds)
            return
        import ctypes

        if self._pid != os.getpid():  # a forked child: its parent's timer is not its own
            self._create(self.signum)
        api = self._api
        whole = int(seconds)
        due = api.Itimerspec()
        due.value.sec, due.value.nsec = whole, int((seconds - whole) * 1e9)
        if seconds > 0 and not (whole or due.value.nsec):
            due.value.nsec = 1  # armed with a zero would cancel it
        if api.timer_settime(self._timer, 0, ctypes.byref(due), None) != 0:
            raise OSError(ctypes.get_errno(), "timer_settime")

    def close(self) -> None:
        """Cancel the timer and give it back to the system."""
        if not self.own:
            signal.setitimer(signal.ITIMER_REAL, 0)
            return
        if self._pid == os.getpid():
            self.arm(0)
            self._api.timer_delete(self._timer)
        self._pid = -1


def _posix_timers() -> Any:
    """``timer_create``, ``timer_settime`` and ``timer_delete``, with their structures (Linux)."""
    import ctypes
    import ctypes.util

    class Timespec(ctypes.Structure):
        _fields_ = (("sec", ctypes.c_long), ("nsec", ctypes.c_long))

    class Itimerspec(ctypes.Structure):
        _fields_ = (("interval", Timespec), ("value", Timespec))

    class Sigevent(ctypes.Structure):  # Linux's struct sigevent: 64 bytes
        _fields_ = (
            ("value", ctypes.c_void_p),
            ("signo", ctypes.c_int),
            ("notify", ctypes.c_int),
            ("rest", ctypes.c_int * ((64 - ctypes.sizeof(ctypes.c_void_p) - 8) // 4)),
        )

    library: Any = ctypes.CDLL(None, use_errno=True)
    if not hasattr(library, "timer_create"):  # C libraries before glibc 2.34: in librt
        library = ctypes.CDLL(ctypes.util.find_library("rt"), use_errno=True)
    api: Any = type("PosixTimers", (), {})()
    api.Sigevent, api.Itimerspec = Sigevent, Itimerspec
    api.timer_create = library.timer_create
    api.timer_create.argtypes = (ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)
    api.timer_settime = library.timer_settime
    api.timer_settime.argtypes = (ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)
    api.timer_delete = library.timer_delete
    api.timer_delete.argtypes = (ctypes.c_void_p,)
    return api


def keep_handler(signum: int, *others: int) -> Callable[[], None]:
    """A function that puts back, with the system, the handler Python has for ``signum`` now.

    And for each of ``others``: Python's handler is the same function for
    every signal, whatever Python function it then calls.  Called in the
    main thread right after ``signal.signal`` put fsaops's handler in place
    for ``signum``; the function it returns may be called from any thread,
    and does its work for a signal only while Python records a handler of
    its own for it (``signal.getsignal`` is not ``SIG_DFL``, ``SIG_IGN`` or
    ``None``).  Code below Python (a C library, a call through ``ctypes``)
    can change what a signal does without Python seeing it; then a signal
    fsaops sends itself, its timer's, or the user's Ctrl-C and ``kill``
    would do what that code chose.  A ``sigaction`` call each, where the
    handler is kept; where Python's C API cannot be reached, it does
    nothing.
    """
    try:
        import ctypes

        getsig = ctypes.PYFUNCTYPE(ctypes.c_void_p, ctypes.c_int)(("PyOS_getsig", ctypes.pythonapi))
        setsig = ctypes.PYFUNCTYPE(ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p)(
            ("PyOS_setsig", ctypes.pythonapi)
        )
        handler = getsig(signum)
    except (AttributeError, OSError, ValueError):
        return lambda: None
    if handler is None or handler == 1:  # SIG_DFL, SIG_IGN: no handler of Python's to keep
        return lambda: None
    signums = (signum, *others)

    def put_back() -> None:
        for number in signums:
            if signal.getsignal(number) not in (signal.SIG_DFL, signal.SIG_IGN, None):
                setsig(number, handler)

    return put_back
