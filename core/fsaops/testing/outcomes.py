"""Table code does not decide a test's outcome: its ``pytest.skip`` or ``pytest.xfail`` fails it.

pytest's outcome exceptions (``pytest.skip.Exception``,
``pytest.xfail.Exception``, and ``unittest.SkipTest``, which pytest takes for
a skip) are not :class:`Exception`: they pass through every ``except
Exception`` of the model and of the kit.  Raised from a table's
``migratepage`` (or any member the model calls), they turned a lossy
table's whole conformance suite into skips or xfails, and pytest exited 0.

:class:`OutcomeGuard` is a pytest plugin that fails such a test instead,
naming the table, the member fsaops called and what its code called.  An
outcome counts as the table's when it was raised in code that fsaops called
(an fsaops frame is above it), and that code is neither fsaops's own (the
kit's skips: a capability, a table without ``write(2)``, ...) nor the test
module's (a user's own ``pytest.skip`` in an overriding test).  Every other
outcome is left as it is.  The kit's pytest plugin registers the guard,
and so do the suite classes (which need no pytest plugin), once per run.

The guard also keeps a failed session's exit status.  Plugin code that
calls ``os._exit(0)`` after the last test (from an exit function it
registered, or from a thread it left running) ended a failed test session
with status 0.  Once a test of a suite class has run in a session that
failed, and the session is the process's own (not a pytest run inside a
test, not an ``xdist`` worker), ``os._exit`` is replaced for the rest of the
process's life by one that ends it with the session's status when asked
for 0, and ``os.execv`` and ``os.execve`` refuse to replace it
(:func:`keep_status`).  Plugin code that bound ``os._exit`` when it was
imported (``from os import _exit``) bound the dispatcher the kit put in
place first (:func:`~fsaops.process.dispatch_ends`), which does the same.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
from collections.abc import Callable, Generator
from types import FrameType, TracebackType
from typing import Final

import pytest

from fsaops.errors import ProcessEnded
from fsaops.process import KEPT_REPLACE, REAL_EXIT, dispatch_ends, ends_refused, keep

__all__ = ["KIT_CLASSES", "OutcomeGuard", "ensure", "keep_status", "table_outcome"]

dispatch_ends()  # for suite classes run without the kit's pytest plugin

NAME: Final = "fsaops-outcome-guard"
"""The name the guard is registered under (once per pytest run)."""

_RUNNERS: Final = ("_pytest", "pytest", "pluggy", "_hypothesis_pytestplugin", "hypothesis")
"""Top-level packages of the test runners, never anyone's table."""


def _package(frame: FrameType) -> str:
    """The top-level package of a frame's code (the guard's own frames count as a runner's)."""
    name = frame.f_globals.get("__name__")
    if name == __name__:
        return "pluggy"
    return name.partition(".")[0] if isinstance(name, str) else ""


def _outcome_kinds() -> tuple[type[BaseException], ...]:
    kinds: list[type[BaseException]] = [pytest.skip.Exception, pytest.xfail.Exception]
    unittest = sys.modules.get("unittest")
    if unittest is not None:
        kinds.append(unittest.SkipTest)
    return tuple(kinds)


def _called(exc: BaseException) -> str:
    """What table code called, as it would have written it: ``pytest.skip('reason')``."""
    if isinstance(exc, pytest.xfail.Exception):
        return f"pytest.xfail({exc.msg!r})"
    if isinstance(exc, pytest.skip.Exception):
        return f"pytest.skip({exc.msg!r})"
    return f"raise {type(exc).__name__}({str(exc)!r})"


def _frames(tb: TracebackType | None) -> list[FrameType]:
    frames = []
    while tb is not None:
        frames.append(tb.tb_frame)
        tb = tb.tb_next
    return frames


def table_outcome(exc: BaseException, test_module: str | None) -> str | None:
    """Why ``exc`` is table code's outcome, not the test's; ``None`` when it is the test's own.

    ``test_module`` is the name of the test's module, whose own outcomes stand.
    """
    if not isinstance(exc, _outcome_kinds()):
        return None
    frames = _frames(exc.__traceback__)
    # Where it was raised: the innermost frame outside the test runners
    # (``pytest.skip()`` itself is _pytest's).
    raised_at = next(
        (i for i in range(len(frames) - 1, -1, -1) if _package(frames[i]) not in _RUNNERS), None
    )
    if raised_at is None:
        return None
    site = frames[raised_at]
    module = site.f_globals.get("__name__")
    if _package(site) == "fsaops" or (test_module is not None and module == test_module):
        return None
    called_by_fsaops = [i for i in range(raised_at) if _package(frames[i]) == "fsaops"]
    if not called_by_fsaops:
        return None  # the test's own helpers (a conftest's), called by no fsaops code
    # What fsaops called: the outermost frame of other code below fsaops's
    # first frame (the member, e.g. ``migratepage``).
    entry = next(
        frames[i]
        for i in range(called_by_fsaops[0] + 1, raised_at + 1)
        if _package(frames[i]) not in ("fsaops", *_RUNNERS)
    )
    member, table = _member(entry, [frames[i] for i in called_by_fsaops])
    where = f"{site.f_code.co_name}, {site.f_code.co_filename.rsplit('/', 1)[-1]}:{site.f_lineno}"
    who = f"{member} of table {table}" if table else f"table code ({_qualname(entry)})"
    return (
        f"{who} called {_called(exc)} (in {where}): plugin code may not skip or xfail a "
        "test of the testing kit; the kit's own skips name a capability"
    )


def _qualname(frame: FrameType) -> str:
    module = frame.f_globals.get("__name__", "?")
    return f"{module}.{frame.f_code.co_name}"


def _code(fn: object) -> object:
    """The code object a member runs when called (function, method, partial, callable object)."""
    for _ in range(4):
        code = getattr(fn, "__code__", None)
        if code is not None:
            return code
        inner = getattr(fn, "__func__", None) or getattr(fn, "func", None)
        if inner is None:
            call = vars(type(fn)).get("__call__")
            return getattr(call, "__code__", None)
        fn = inner
    return None


def _member(entry: FrameType, callers: list[FrameType]) -> tuple[str, str]:
    """(member, table) whose code ``entry`` runs, from the tables fsaops's frames hold.

    ``("", "")`` when no table of theirs has it.
    """
    from fsaops.aops import MEMBERS, AddressSpaceOperations

    code = entry.f_code
    for frame in reversed(callers):
        for value in list(frame.f_locals.values()):
            for table in (value, getattr(value, "table", None), getattr(value, "a_ops", None)):
                if not isinstance(table, AddressSpaceOperations):
                    continue
                for member in MEMBERS:
                    if _code(getattr(table, member, None)) is code:
                        return member, table.name
    return "", ""


_SESSIONS: list[pytest.Config] = []
"""The pytest runs of this process under way, outermost first (a ``pytester`` run nests)."""


class OutcomeGuard:
    """A pytest plugin: a skip or xfail that table code raised fails the test (see the module).

    Attributes:
        kit_ran: a test of a suite class has run in this session.
        status: the session's exit status, once it is over.
    """

    def __init__(self, config: pytest.Config) -> None:
        self._own = not _SESSIONS and not hasattr(config, "workerinput")
        _SESSIONS.append(config)
        self.kit_ran = False
        self.status = 0

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> Generator[None, None, None]:
        """Setup (the kit's fixtures call table code: the capabilities' probe)."""
        return (yield from _guarded(self, item))

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, None, None]:
        """The test itself."""
        return (yield from _guarded(self, item))

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_teardown(
        self, item: pytest.Item, nextitem: pytest.Item | None
    ) -> Generator[None, None, None]:
        """Teardown."""
        return (yield from _guarded(self, item))

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        """Note the session's status."""
        self.status = int(session.exitstatus)

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        """A failed session of the process's own, in which a suite class ran, keeps its status."""
        if config in _SESSIONS:
            _SESSIONS.remove(config)
        if self._own and self.kit_ran and self.status:
            keep_status(self.status)


def keep_status(status: int) -> None:
    """Make ``os._exit(0)`` end the process with ``status`` from now on (``status`` 0: no change).

    ``os.execv`` and ``os.execve`` (which the rest of the ``exec`` family
    calls) raise :class:`~fsaops.errors.ProcessEnded` instead of replacing
    the process.  Installed now, for a thread left running, and again by an exit function
    registered now, which runs before those registered earlier (at a
    plugin's import), in case one of those put ``os._exit`` back.
    """
    if not status:
        return
    keep(status)  # what the functions bound before now (dispatch_ends) do

    def _exit(code: int) -> None:
        REAL_EXIT(code or status)

    def refuse(name: str) -> Callable[..., None]:
        def replace(*args: object) -> None:
            raise ProcessEnded(KEPT_REPLACE.format(name=name))

        return replace

    def install() -> None:
        modules = [os, *(m for m in (sys.modules.get(os.name),) if m is not None)]
        for module in modules:
            module._exit = _exit  # type: ignore[attr-defined]
            for name in ("execv", "execve"):  # which the rest of the exec family calls
                if hasattr(module, name):
                    setattr(module, name, refuse(name))

    install()
    atexit.register(install)


def _guarded(guard: OutcomeGuard, item: pytest.Item) -> Generator[None, None, None]:
    owner = getattr(item, "cls", None)
    head = f"{owner.__name__}: " if owner is not None else ""
    kit = isinstance(owner, type) and issubclass(owner, tuple(KIT_CLASSES))
    if kit:
        guard.kit_ran = True
    kept: contextlib.AbstractContextManager[list[tuple[str, str, list[str]]]] = (
        ends_refused() if kit else contextlib.nullcontext([])
    )
    with kept as ended:
        try:
            yield
        except BaseException as exc:
            if ended:
                raise pytest.fail.Exception(f"{head}{_ended(ended)}", pytrace=False) from None
            module = getattr(getattr(item, "module", None), "__name__", None)
            why = table_outcome(exc, module)
            if why is None:
                raise
            raise pytest.fail.Exception(f"{head}{why}", pytrace=False) from None
        if ended:
            raise pytest.fail.Exception(f"{head}{_ended(ended)}", pytrace=False)


KIT_CLASSES: Final[list[type]] = []
"""The suite classes of the kit (their subclasses' tests run plugin code).

Their setup, call and teardown run with the process's ends refused
(:func:`~fsaops.process.ends_refused`): a table's ``os._exit(0)`` would end
the test session with status 0.
"""


def _ended(calls: list[tuple[str, str, list[str]]]) -> str:
    """A refused end of the process, as a failure says it."""
    call, thread, callers = calls[0]
    entry = next((c for c in callers if not c.startswith(("fsaops.", "_pytest.", "pluggy."))), "")
    by = f" (in {entry})" if entry else ""
    return (
        f"plugin code called {call}{by} in thread {thread}: plugin code may not end, replace "
        "or fork the process the tests run in (a test session it ended would report nothing, "
        "and could exit 0)"
    )


def ensure(config: pytest.Config) -> None:
    """Register the guard in this pytest run, unless it is already."""
    manager = config.pluginmanager
    if manager.get_plugin(NAME) is None:
        manager.register(OutcomeGuard(config), NAME)
