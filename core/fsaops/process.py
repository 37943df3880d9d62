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
(``signal.raise_signal``, ``_thread.interrupt_main``) gets
:class:`~fsaops.errors.ProcessEnded`, remembered as the calls above: the
run fails naming it, rather than being reported as the user's
interruption.
"""

from __future__ import annotations

import _thread
import contextlib
import importlib
import os
import signal
import sys
import threading
import weakref
from typing import TYPE_CHECKING, Any, Final, NoReturn

from fsaops.errors import ProcessEnded, owns_signal, shown

_signal: Any = importlib.import_module("_signal")  # what signal.signal calls; no type stubs

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping
    from types import FrameType

__all__ = [
    "GUARDED",
    "PLUGIN_THREADS",
    "REAL_EXIT",
    "REAL_FORK",
    "adopt",
    "calls",
    "guard_process",
    "plugin_code",
    "plugin_of_module",
    "refused_in",
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

    def refused(self, call: str) -> ProcessEnded:
        """Remember ``call`` (made by the stand-in's caller); the :class:`ProcessEnded` to raise."""
        callers: list[str] = []
        frame: FrameType | None = sys._getframe(2)
        while frame is not None and len(callers) < 100:
            callers.append(f"{frame.f_globals.get('__name__')}.{frame.f_code.co_name}")
            frame = frame.f_back
        self.calls.append((call, threading.current_thread().name, callers))
        return ProcessEnded(call)


def _fsaops_calls(frame: FrameType | None) -> bool:
    """Whether the code calling ``signal.signal`` is fsaops's: ``frame``, or under ``signal``'s."""
    while frame is not None and frame.f_globals.get("__name__") == "signal":
        frame = frame.f_back
    name = frame.f_globals.get("__name__") if frame is not None else None
    return isinstance(name, str) and (name == "fsaops" or name.startswith("fsaops."))


_GUARDS: list[_ProcessGuard] = []
"""The guard in place (none unless :func:`guard_process` was called)."""


def guard_process() -> None:
    """Stand in for the functions in :data:`GUARDED` for the rest of this process's life.

    And for the functions that set what ``SIGINT`` and ``SIGTERM`` do, or
    raise them (``signal.signal``, ``signal.raise_signal``,
    ``_thread.interrupt_main``): see the module's description.

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
    _signal.signal = guard.keeper(_signal.signal)  # which signal.signal calls
    _GUARDS.append(guard)


def calls() -> list[tuple[str, str, list[str]]]:
    """Each refused call so far: the call as text, its thread, its callers (innermost first)."""
    return [call for guard in _GUARDS for call in guard.calls]


def adopt() -> None:
    """Keep the guard up in this forked child of the process that put it in place.

    The child forgets the calls its parent made: :func:`calls` says only
    its own.  It must end with :data:`REAL_EXIT`.
    """
    for guard in _GUARDS:
        guard.pid = os.getpid()
        guard.calls.clear()


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
