"""Exceptions raised by fsaops.

Every error a user can cause is an :class:`FsaopsError`; its message is
written to be shown as it is, without a traceback.  Bugs in the model or in
a plugin that break the kernel's rules are :class:`KernelBug` subclasses,
the model's ``BUG()``.
"""

from __future__ import annotations

import difflib
import errno
import importlib
import os
import re
import signal
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Final

__all__ = [
    "INTERRUPTS",
    "MAX_REASON",
    "MAX_SHOWN",
    "BadPage",
    "CannotStart",
    "ConfigError",
    "Deadlock",
    "FsaopsError",
    "InvariantError",
    "KernelBug",
    "MigrationDisabled",
    "PluginConflictError",
    "PluginError",
    "PluginFault",
    "PluginLoadError",
    "PluginSelectionError",
    "PluginValidationError",
    "ProcessEnded",
    "RunTimeout",
    "cannot_start",
    "describe_exception",
    "did_you_mean",
    "forget_deferred_signals",
    "interrupted_by",
    "owns_signal",
    "printable",
    "raised_by_code",
    "reclaim_signals",
    "shown",
    "shown_path",
    "signals_deferred",
    "signals_done",
    "signals_live",
    "watch_sigint",
    "without_addresses",
]

MAX_SHOWN: Final = 80
"""Characters of a value (a name, a key) that a message echoes; the rest is cut."""

MAX_REASON: Final = 300
"""Characters of an exception's own message that a message echoes."""


def shown(value: object, limit: int = MAX_SHOWN) -> str:
    """``value`` as a message quotes it: its ``repr``, cut to ``limit`` characters.

    A string longer than ``limit`` is cut with ``...`` and its length is
    given, so that a hostile value (a plugin name of 100,000 characters)
    never makes a message that long.  An object whose ``repr`` fails is
    shown by its type.
    """
    if isinstance(value, str):
        if len(value) <= limit:
            return repr(value)
        return f"{value[:limit]!r}... ({len(value):,} characters)"
    if isinstance(value, int) and value.bit_length() > 4 * limit:  # too long to write out
        return f"<{_type_name(value)} of {value.bit_length():,} bits>"
    try:
        text = repr(value)
    except Exception:
        text = f"<{_type_name(value)}>"
    text = printable(without_addresses(text))
    if len(text) > limit:
        text = text[:limit] + "..."
    return text


_ADDRESS = re.compile(r" (?:object )?at 0x[0-9A-Fa-f]+")


def without_addresses(text: str) -> str:
    """``text`` without the memory addresses a default ``repr`` holds (`` at 0x7f...``).

    They differ from run to run: a report that held one would not be the
    same for the same seed.
    """
    return _ADDRESS.sub("", text) if " at 0x" in text else text


def _type_name(value: object) -> str:
    name = getattr(type(value), "__name__", "?")
    if not isinstance(name, str):
        return "?"
    name = printable(name)
    return name if len(name) <= MAX_SHOWN else name[:MAX_SHOWN] + "..."


def printable(text: str) -> str:
    r"""``text`` with each character that is not printable escaped (``\x1b``, ``\n``).

    For text fsaops does not control (an exception's message, a name read
    from a file) on its way to a terminal, where an escape sequence would
    be obeyed: it could clear the screen or draw over a verdict.
    """
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def shown_path(path: str | os.PathLike[str]) -> str:
    r"""A user's file name as a message names it: as it is, unless it holds a control character.

    A message is one line, its whitespace collapsed: a newline or a tab in
    a name would become a space there, and the name another file's.  A
    name with a character that is not printable (``\n``, ``\t``, ``\x1b``,
    a byte that is not UTF-8, ``\udcff``) is shown with each escaped as
    Python writes it, and each backslash doubled, so that it reads back
    as the one name it is: ``a\nb.toml``.  A printable name, spaces and
    backslashes included, is shown unchanged.  The result is printable:
    showing it again changes nothing.
    """
    name = os.fspath(path)
    if name.isprintable():
        return name
    return printable(name.replace("\\", "\\\\"))


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """``; did you mean 'ext2'?`` naming the known name closest to ``name``, or ``""``.

    A name that differs only in case (``EXT2``) is the closest; otherwise
    the nearest by :func:`difflib.get_close_matches`, if one is near enough.
    """
    names = list(known)
    folded = name.casefold()
    close = [k for k in names if k.casefold() == folded] or difflib.get_close_matches(
        name[:200], names, n=1
    )
    return f"; did you mean {close[0]!r}?" if close else ""


def describe_exception(exc: BaseException) -> str:
    r"""``TypeName: message`` for an exception raised by code fsaops does not control.

    Safe against hostile exceptions: a message of any length is cut to
    :data:`MAX_REASON` characters, one that is not printable (a terminal
    escape sequence) is shown escaped (``\x1b``), and an exception whose
    ``str()`` raises is described by its type alone.
    """
    name = _type_name(exc)
    try:
        text = str(exc)
    except Exception:  # a __str__ that raises, or returns something else
        text = ""
    text = printable(" ".join(text.split()))
    if len(text) > MAX_REASON:
        text = f"{text[:MAX_REASON]}... ({len(text) - MAX_REASON:,} more characters)"
    return f"{name}: {text}" if text else name


class FsaopsError(Exception):
    """Base class of every error fsaops reports to a user."""


class ConfigError(FsaopsError):
    """A configuration file or value is not acceptable."""


class PluginError(FsaopsError):
    """A plugin could not be selected, loaded or validated."""


class PluginSelectionError(PluginError):
    """The plugin selection names a plugin that is not installed, or twice."""


class PluginLoadError(PluginError):
    """A plugin's module failed to import or register.

    The message names the plugin as ``distribution[entry]``.  ``cause`` is
    the exception the plugin raised, or what happened in words (an import
    that did not finish in time, or ended the process).
    """

    def __init__(self, plugin: str, cause: BaseException | str) -> None:
        self.plugin = plugin
        self.cause = cause
        self.reason = cause if isinstance(cause, str) else describe_exception(cause)
        if isinstance(cause, ProcessEnded):
            self.reason += f": {cause.rule}"
        super().__init__(f"plugin {plugin} failed to load: {self.reason}")


class PluginValidationError(PluginError):
    """A plugin returned something that is not a valid filesystem type or table."""

    def __init__(self, plugin: str, problem: str) -> None:
        self.plugin = plugin
        self.problem = problem
        super().__init__(f"plugin {plugin}: {problem}")


class PluginConflictError(PluginValidationError):
    """Two selected plugins provide a filesystem (or two different tables) of the same name.

    The message names both plugins and says which was loaded first (plugins
    load in the order of the selection); the one loaded second is the one
    left out, whichever sorts first.  ``kind`` is ``filesystem`` or
    ``table``: reports count tables by name, so two different tables of
    one name would be counted as one.
    """

    def __init__(
        self, filesystem: str, first: str, second: str, *, kind: str = "filesystem"
    ) -> None:
        self.filesystem = filesystem
        self.first = first
        self.second = second
        why = " (reports count tables by name)" if kind == "table" else ""
        problem = (
            f"{kind} {shown(filesystem)} is provided by two plugins: {first}, loaded first, "
            f"and {second}, left out; select only one of them{why}"
        )
        PluginError.__init__(self, problem)
        self.plugin = second
        self.problem = problem


class MigrationDisabled(FsaopsError):
    """Migration was asked for on a kernel built without it (``-ENOSYS``)."""


class CannotStart(FsaopsError):
    """The system refused a process, a pipe or a thread fsaops starts to do its work.

    The run's supervised child, the plugin probe's child, a schedule's
    process under ``fsaops explore``, the bench's runs: a limit of the
    environment (``ulimit -u``, ``ulimit -n``, memory) is reached.  Bad
    input, as running out of memory is: neither the model nor a plugin is
    wrong.  Built by :func:`cannot_start`.
    """


#: What an errno of a refused process, pipe or thread says of the environment.
_LIMITS: Final = {
    errno.EAGAIN: "the limit on processes (ulimit -u) is reached, or memory is short",
    errno.ENOMEM: "the system is out of memory",
    errno.EMFILE: "the limit on open files (ulimit -n) is reached",
    errno.ENFILE: "the system's table of open files is full",
}


def cannot_start(what: str, exc: BaseException) -> CannotStart:
    """The error of ``what`` (``the process that runs a schedule``) refused with ``exc``.

    One line naming what could not be started, the system's reason
    (``strerror``, and the errno's name) and the limit it points at, if
    known: ``cannot start the process that runs a schedule: Resource
    temporarily unavailable (EAGAIN); the limit on processes (ulimit -u) is
    reached, or memory is short: the environment refused it, no bug of the
    model or a plugin``.
    """
    limit = None
    if isinstance(exc, OSError):
        reason = exc.strerror or describe_exception(exc)
        if exc.errno is not None:
            limit = _LIMITS.get(exc.errno)
            name = errno.errorcode.get(exc.errno)
            reason += f" ({name})" if name else ""
    else:  # threading's RuntimeError("can't start new thread"): no errno
        reason, limit = describe_exception(exc), _LIMITS[errno.EAGAIN]
    said = f"; {limit}:" if limit else ";"
    return CannotStart(
        f"cannot start {what}: {reason}{said} the environment refused it, no bug of the model "
        "or a plugin"
    )


class KernelBug(Exception):
    """The model's ``BUG()``: a rule of the kernel was broken.

    Raised when code (the engine or a plugin) leaves the model in a state the
    kernel forbids, for example freeing a page that is still mapped.

    Args:
        table: the operations table whose page broke the rule, when the
            code that found it is not to blame (kjournald finding a buffer
            a ``migratepage`` took out of its journal): the command line
            then names the plugin that provides the table.
    """

    def __init__(self, *args: object, table: str | None = None) -> None:
        super().__init__(*args)
        self.table = table


class PluginFault(KernelBug):
    """Plugin code broke a run in a way it cannot go on from.

    Plugin code never decides how fsaops exits: a ``migratepage`` (or any
    other plugin code) that raises ``SystemExit`` or another exception that
    is not an :class:`Exception`, or calls ``os._exit`` or ``os.fork``,
    fails the run (exit status 1), and the message names what raised it,
    and where.  So does an error the engine's own code meets because plugin
    code left a page's fields of the wrong kind
    (:func:`fsaops.debug.broken_fields`), and a table member that returns
    what no kernel caller could take (:func:`fsaops.aops.returned`).
    """


class ProcessEnded(SystemExit):
    """Plugin code called ``os._exit()``, ``os.exec*()`` or ``os.fork()`` while the program ran.

    Or it raised fsaops's own ``SIGINT`` or ``SIGTERM`` at it
    (``signal.raise_signal``, ``_thread.interrupt_main``, ``os.kill``,
    ``os.killpg``, ``signal.pthread_kill``): that is plugin
    code ending the run, not the user's interruption.

    Run as the program, fsaops stands in for those functions while it works
    (:mod:`fsaops.process`): the call raises this instead of ending the
    process (or replacing it) without a word and with a status plugin code
    chose, or making a second copy of the run, and the run fails
    like one whose plugin code raised ``SystemExit`` (:class:`PluginFault`).
    Its ``code`` is the call, as text (``os._exit(0)``).
    """

    def __str__(self) -> str:
        return f"{self.code} was called"

    @property
    def rule(self) -> str:
        """The rule the call broke, as a message says it (``plugin code may not fork fsaops``)."""
        name = str(self.code).split("(")[0].rpartition(".")[2]
        does = {
            "_exit": "end",
            "execv": "replace",
            "execve": "replace",
            "raise_signal": "interrupt",
            "interrupt_main": "interrupt",
            "kill": "interrupt",
            "killpg": "interrupt",
            "pthread_kill": "interrupt",
        }.get(name, "fork")
        return f"plugin code may not {does} fsaops"


class RunTimeout(BaseException):
    """A run went past its wall-clock limit (``--timeout``, ``[kernel] timeout``).

    A :class:`BaseException`, like :class:`KeyboardInterrupt`, so that
    ``except Exception`` in plugin code does not swallow it.  The message
    says where the run was: the page being migrated and its table, or the
    phase.
    """


class BadPage(KernelBug):
    """A page was freed while still in use (the kernel's ``bad_page()``)."""


class InvariantError(KernelBug):
    """The invariant checker found problems; ``problems`` lists them."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        shown = "\n  ".join(problems[:20])
        more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        super().__init__(f"{len(problems)} invariant(s) broken:\n  {shown}{more}")


class Deadlock(KernelBug):
    """A task waited for something that can never happen.

    The kernel would hang; the model reports the wait instead.  It is a
    failure of the run (exit 1), never a user's error.
    """

    def __init__(self, what: str, now: int) -> None:
        self.what = what
        self.now = now
        super().__init__(f"deadlock at tick {now}: waiting for {what}, and nothing can wake it")


class _Signals:
    """What :func:`watch_sigint` has seen: whether it watches, how many signals, the last.

    ``mode`` says what a signal does: ``raise`` (each raises
    ``KeyboardInterrupt``), ``hold`` (counted, and raised when
    :func:`signals_live` begins), ``live`` (the first raises, then ``done``)
    or ``done`` (counted only).
    """

    watching = False
    seen = 0
    last = "SIGINT"
    on_signal: Callable[[str], object] | None = None
    deferring = False
    deferred = 0
    mode = "raise"
    held = 0
    where: str | None = None  # where the signal that interrupted found the run, if it was told
    tell: Callable[[FrameType | None], str | None] | None = None  # the running scenario's teller


def _on_sigint(signum: int, frame: FrameType | None) -> None:
    _Signals.seen += 1
    if _Signals.mode == "done":  # the interrupt is being handled, or the command is done
        return
    _Signals.last = signal.Signals(signum).name
    if _Signals.mode == "hold":  # raised when the command begins
        _Signals.held += 1
        return
    _Signals.where = _where_now(frame)
    if _Signals.seen == 1 and _Signals.on_signal is not None:
        _Signals.on_signal(_Signals.last)
    if _Signals.deferring:
        _Signals.deferred += 1
        return
    _raise()


def _where_now(frame: FrameType | None) -> str | None:
    """What the running scenario says it was doing at ``frame`` (``None`` outside one)."""
    tell = _Signals.tell
    return None if tell is None else _asked(tell, frame)


@contextmanager
def interrupt_told(tell: Callable[[FrameType | None], str | None]) -> Iterator[None]:
    """While the body runs, a Ctrl-C or ``SIGTERM`` asks ``tell`` where it found the run.

    ``tell`` gets the frame the signal interrupted and returns words such as
    `` while reading pages back`` (or ``None``); :func:`interrupted_where`
    gives them to the command that says the run was interrupted.  Called
    in the signal handler, so it must be quick; an exception it raises is
    taken for ``None``.

    Inside another such block (a ``bench`` figure that runs a scenario in
    this process), the outer ``tell``'s words come first, then this one's,
    after a comma: `` while measuring X, while building the world``.
    """
    previous = _Signals.tell
    _Signals.tell = tell if previous is None else _told_both(previous, tell)
    try:
        yield
    finally:
        _Signals.tell = previous


def _told_both(
    outer: Callable[[FrameType | None], str | None], inner: Callable[[FrameType | None], str | None]
) -> Callable[[FrameType | None], str | None]:
    """A teller that says ``outer``'s words, then ``inner``'s after a comma (either may be none).

    Each is asked on its own: one that raises leaves the other's words.
    """

    def tell(frame: FrameType | None) -> str | None:
        said = [words for words in (_asked(outer, frame), _asked(inner, frame)) if words]
        return ",".join(said) or None

    return tell


def _asked(tell: Callable[[FrameType | None], str | None], frame: FrameType | None) -> str | None:
    """What ``tell`` says at ``frame``; ``None`` if it raises."""
    try:
        return tell(frame)
    except Exception:  # what a broken model makes of it: the plain word, never a traceback
        return None


def _raise() -> None:
    """Raise a signal's ``KeyboardInterrupt``; in a command, the only one it raises."""
    if _Signals.mode == "live":
        _Signals.mode = "done"
    raise KeyboardInterrupt


@contextmanager
def signals_deferred() -> Iterator[None]:
    """While the body runs, a Ctrl-C or ``SIGTERM`` :func:`watch_sigint` counts waits for its end.

    Then ``KeyboardInterrupt`` is raised, as it would have been at once: a
    write of the command's output is never cut in the middle.  Without
    :func:`watch_sigint`, outside the main thread or inside another such
    block, the body runs as it would without it.
    """
    if (
        not _Signals.watching
        or _Signals.deferring
        or threading.current_thread() is not threading.main_thread()
    ):
        yield
        return
    _Signals.deferring = True
    _Signals.deferred = 0
    try:
        yield
    finally:
        _Signals.deferring = False
        if _Signals.deferred:
            _Signals.deferred = 0
            if _Signals.mode != "done":  # not once the interrupt is being handled
                _raise()


def forget_deferred_signals() -> None:
    """In a child process forked inside :func:`signals_deferred`: its parent's signals are not its.

    The block's end then raises nothing in the child.
    """
    _Signals.deferred = 0


@contextmanager
def signals_live() -> Iterator[None]:
    """The command's body: the one place a Ctrl-C or ``SIGTERM`` raises ``KeyboardInterrupt``.

    For a program that watches signals with ``watch_sigint(hold=True)``.
    A signal that came before the body is raised as it begins.  In the
    body, the first signal raises ``KeyboardInterrupt`` and later ones are
    only counted, and so is every signal once the body has ended: the code
    that handles the interruption (the command's error line, its JSON, its
    page) or says the command's last word is never cut short by a second
    signal of a burst.  Nested, the first body to end ends it.  Otherwise
    (no :func:`watch_sigint`, without ``hold``, outside the main thread),
    the body runs as it would without it.
    """
    if (
        not _Signals.watching
        or _Signals.mode == "raise"
        or threading.current_thread() is not threading.main_thread()
    ):
        yield
        return
    if _Signals.mode == "hold":
        _Signals.mode = "live"
        if _Signals.held:  # a signal that came before the command: it interrupts it now
            _Signals.held = 0
            if _Signals.on_signal is not None:
                _Signals.on_signal(_Signals.last)
            _raise()
    try:
        yield
    finally:
        signals_done()


def signals_done() -> None:
    """From now on a Ctrl-C or ``SIGTERM`` is only counted: the command is saying its last word.

    For a program that watches signals with ``watch_sigint(hold=True)``;
    otherwise nothing changes.
    """
    if _Signals.watching and _Signals.mode != "raise":
        _Signals.mode = "done"


def watch_sigint(on_signal: Callable[[str], object] | None = None, *, hold: bool = False) -> None:
    """Count Ctrl-C (``SIGINT``) and ``SIGTERM`` from now on, and raise ``KeyboardInterrupt``.

    For ``SIGINT`` that is what Python does; ``SIGTERM`` (``kill``, a
    ``timeout`` command, a stopped container or CI job) would otherwise end
    the process at once, without a word or the JSON report.  A program
    calls this once, from its main thread (the command line does; the
    library never installs a signal handler of its own).  Then
    :func:`raised_by_code` can tell the ``KeyboardInterrupt`` of a signal
    from one that plugin code raised, and :func:`interrupted_by` names the
    signal.  ``on_signal``, when given, is called with the signal's name
    on the first one, in the thread it interrupts, before the
    ``KeyboardInterrupt`` is raised (the command line arms a timer there,
    for plugin code that swallows it).

    With ``hold``, the program runs one command: a signal raises
    ``KeyboardInterrupt`` only in its body (:func:`signals_live`), once;
    before it, it is held, and after the first, only counted.  Without it,
    each signal raises ``KeyboardInterrupt``.
    """
    _Signals.mode = "hold" if hold else "raise"  # before a signal can come
    _Signals.held = 0
    _Signals.where = None
    _Signals.on_signal = on_signal
    for signum in _WATCHED:
        _set_handler(signum, _on_sigint)
    _Signals.watching = True


INTERRUPTS: Final[tuple[int, ...]] = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)
"""The signals that interrupt a command: Ctrl-C, ``kill`` (``SIGTERM``) and a hang-up
(``SIGHUP``: the terminal closed, an ``ssh`` connection dropped).  Each ends it
as interrupted, with its last word said (the JSON, the page); without a
handler ``SIGTERM`` and ``SIGHUP`` would end the process at once, silent."""

_WATCHED: Final = INTERRUPTS

_set_handler: Final[Callable[[int, object], object]] = importlib.import_module("_signal").signal
"""``_signal.signal`` itself, bound before :mod:`fsaops.process` stands in for it.

Each call asks the system to put the handler in place (``sigaction``),
whatever Python last recorded for the signal."""


def owns_signal(signum: object) -> bool:
    """Whether ``signum`` is one of :data:`INTERRUPTS`, handled by :func:`watch_sigint`'s handler.

    Then what the signal does is fsaops's to say: plugin code may not take
    it (:mod:`fsaops.process`).
    """
    if not isinstance(signum, int):
        return False
    number = int.__int__(signum)  # its value, whatever an int subclass says
    return number in _WATCHED and _Signals.watching and signal.getsignal(number) is _on_sigint


def reclaim_signals() -> tuple[str, ...]:
    """Put :func:`watch_sigint`'s handler back for ``SIGINT`` and ``SIGTERM`` where it was taken.

    Returns the names of the signals whose handler Python knew was taken.  Code that
    has one of them ignored makes Ctrl-C or ``kill`` do nothing, and code
    that sets it to its default action makes it end the process at once,
    with no word and no JSON report.  The handler is put in place with the
    system each time, taken or not: code below Python (a C library, a call
    through ``ctypes``) changes what the signal does without Python seeing
    it, and ``signal.getsignal`` still names fsaops's handler.  Cheap (two
    ``sigaction`` calls): called from the main thread after plugins are
    imported, between chunks of migration and at each look of the stall
    watchdog; elsewhere, or without :func:`watch_sigint`, nothing is done.
    """
    if not _Signals.watching or threading.current_thread() is not threading.main_thread():
        return ()
    taken = []
    for signum in _WATCHED:
        if signal.getsignal(signum) is not _on_sigint:
            taken.append(signal.Signals(signum).name)
        _set_handler(signum, _on_sigint)  # with the system, whatever Python recorded
    return tuple(taken)


def interrupted_where() -> str:
    """Where the signal that interrupted the run found it (`` while ...``), or ``""``.

    Set by the signal that raised ``KeyboardInterrupt`` while a scenario ran
    (:func:`interrupt_told`); a later signal of a burst, only counted, does
    not change it.
    """
    return _Signals.where or ""


def interrupted_by() -> str:
    """The signal that interrupted the run last (``SIGINT`` unless ``SIGTERM`` came)."""
    return _Signals.last


def raised_by_code(exc: BaseException) -> bool:
    """Whether ``exc`` is a ``KeyboardInterrupt`` that no Ctrl-C caused.

    Known only while :func:`watch_sigint` counts ``SIGINT`` and ``SIGTERM``;
    otherwise every ``KeyboardInterrupt`` is taken for a Ctrl-C.
    """
    return isinstance(exc, KeyboardInterrupt) and _Signals.watching and not _Signals.seen
