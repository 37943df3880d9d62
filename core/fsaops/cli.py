"""The ``fsaops`` command line.

``fsaops migrate [SCENARIO.toml]``
    Build the scenario's machine, migrate every page of its source node,
    check that nothing was lost, and report (``--json`` for JSON).  Without
    a file, the built-in scenario runs.
``fsaops plugins``
    List the installed plugins, what they provide, and which function each
    operations table uses for ``migratepage``.
``fsaops config check FILE``
    Check a scenario file against the selected plugins.
``fsaops bench``
    Measure the engine's performance figures (:mod:`fsaops.bench`).
``fsaops explore``
    Run a table's migration against concurrent accessor tasks under every
    schedule up to K preemptions (:mod:`fsaops.explore`).

Exit status: 0 when the command did its work (for ``migrate``: nothing was
lost and every invariant holds; pages that could not move are a normal
outcome), 1 when data was lost or an invariant broke, the run went past its
time limit, plugin code failed the run, or the output could not be
written, 2 for bad input (a bad file, key or value, an unknown or broken
plugin, migration compiled out), 130 when interrupted.  Errors are one
line on standard error, ``fsaops: error: ...``, never a traceback; with
``--json`` standard output gets one JSON object whatever happens.

Standard output carries only what fsaops writes: while a command runs,
``sys.stdout`` is standard error, so that whatever plugin code prints
cannot mix with a report.

This is the only place fsaops configures logging: the per-page event
stream goes to standard error, filtered by ``--log-level``, as
``--log-format`` says.
"""

from __future__ import annotations

import argparse
import atexit
import base64
import contextlib
import contextvars
import errno
import faulthandler
import gc
import itertools
import logging
import math
import os
import re
import shlex
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any, Final, NoReturn, TextIO, cast

import attrs

from fsaops import __version__, supervisor
from fsaops.enginelog import LOG_LEVELS, engine_logger
from fsaops.errors import (
    INTERRUPTS,
    Deadlock,
    FsaopsError,
    InvariantError,
    KernelBug,
    PluginFault,
    ProcessEnded,
    RunTimeout,
    describe_exception,
    interrupted_by,
    interrupted_where,
    printable,
    raised_by_code,
    shown_path,
    signals_deferred,
    signals_done,
    signals_live,
    watch_sigint,
)
from fsaops.jsonbound import json_text
from fsaops.process import REAL_EXIT, guard_process, plugin_of_module, refused_in
from fsaops.process import calls as refused_calls
from fsaops.status import Status, envelope

if TYPE_CHECKING:
    from rich.console import Console

    from fsaops.config import Config, MountConfig
    from fsaops.plugins import Registry
    from fsaops.scenario import Progress

__all__ = ["main"]

_RECURSION_LIMIT: Final = sys.getrecursionlimit()
"""The interpreter's recursion limit as fsaops found it: plugin code may lower it."""


class UsageError(Exception):
    """A command line that argparse rejected; ``prog`` is the command whose help to see."""

    def __init__(self, message: str, prog: str) -> None:
        super().__init__(message)
        self.prog = prog


class _StoreOnce(argparse.Action):
    """Store an option's value, refusing a second one.

    argparse keeps the last of an option given twice and drops the others
    without a word: ``--html a.html --html b.html`` would write no
    ``a.html``, ``--trace 5 --trace 8`` trace one page, ``--plugins ext2
    --plugins swap`` load one plugin.  A positional argument is stored as
    argparse stores it.
    """

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        given: set[str] = vars(namespace).setdefault("_options_given", set())
        if option_string is not None:
            if self.dest in given:
                raise argparse.ArgumentError(
                    self, "given more than once; give it once (it takes one value)"
                )
            given.add(self.dest)
        setattr(namespace, self.dest, values)


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # No abbreviations: "--jso" is not "--json" (whose envelope the
        # command promises only when asked for by name).
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)
        # An option that takes a value takes one: a second is refused, not kept in its place.
        self.register("action", None, _StoreOnce)
        self.register("action", "store", _StoreOnce)

    def error(self, message: str) -> NoReturn:
        raise UsageError(message, self.prog)

    def _print_message(self, message: str, file: Any = None) -> None:
        # --help and --version: standard output, through the one checked writer.
        if message:
            _write(message)


EXIT_STATUS = """\
exit status:
  0    the run completed and nothing was lost (pages that could not move are a
       normal outcome; the report says which and why)
  1    data was lost, an invariant broke, the model hit a kernel BUG() or a
       deadlock, a plugin crashed the run, the run timed out, or (with
       --strict) a table did something wrong that lost nothing
  2    bad input: the command line, the scenario, a value, or a plugin; or a
       limit of the system (memory, processes, open files) it cannot work within
  130  interrupted (Ctrl-C, SIGTERM or SIGHUP)
with --json, every exit prints one JSON object on standard output: the report,
or {"schema", "status", "error"}"""


EXPLORE_STATUS = """\
exit status:
  0    no schedule failed (the summary says whether the bounded space was exhausted)
  1    a schedule failed: data lost, an invariant broken, a kernel BUG() or a deadlock
       (the shortest failing schedule is printed, with its replay string)
  2    bad input: the command line, an unknown filesystem, mode or task, a task that
       does not apply to the table, a damaged replay string, a plugin; or a limit of
       the system (memory, processes, open files) it cannot work within
  130  interrupted (Ctrl-C, SIGTERM or SIGHUP)
with --json, every exit prints one JSON object on standard output: the result,
or {"schema", "status", "error"}"""


def _decimal(text: str) -> int:
    """An integer written with the digits 0 to 9 alone, or ``-`` and them.

    ``int()`` also takes ``'1_000'``, other scripts' digits (``'٣'`` is 3),
    a ``+`` and spaces around the number (``' 5'``, ``'+5'``): none of them
    is a number as the docs and the report write it. A ``-`` is read, so
    that a range's message can say the number is negative.

    Raises:
        ValueError: anything else.
    """
    if _DECIMAL.fullmatch(text) is None:
        raise ValueError(text)
    return int(text)


_DECIMAL: Final = re.compile(r"-?[0-9]+", re.ASCII)
_DIGITS: Final = re.compile(r"[0-9]+", re.ASCII)


def _shown(text: str) -> str:
    """An argument as a message quotes it: its first 40 characters."""
    return repr(text if len(text) <= 40 else text[:40] + "...")


def _non_negative(text: str, high: int | None = None, low: int = 0) -> int:
    """A non-negative integer written with the digits 0 to 9, at most ``high`` if given.

    With ``low`` 1, a positive one (and the message says so).

    A number of more digits than Python converts (``int()`` stops at 4,300)
    is out of range, not malformed: with ``high``, the message says how
    many digits it has, not what it is not.
    """
    kind = "a positive integer" if low == 1 else "a non-negative integer"
    want = kind if high is None else f"{kind} of at most {high}"
    try:
        value = _decimal(text)
    except ValueError:
        if high is not None and _DIGITS.fullmatch(text):  # too many digits for int()
            raise argparse.ArgumentTypeError(
                f"expected {want}, got a number of {len(text):,} digits"
            ) from None
        raise argparse.ArgumentTypeError(f"expected {want}, got {_shown(text)}") from None
    if text.startswith("-") or value < low or (high is not None and value > high):
        count = len(text.lstrip("-"))
        shown = text if len(text) <= 40 else f"a number of {count:,} digits"
        raise argparse.ArgumentTypeError(f"expected {want}, got {shown}")
    return value


def _seed(text: str) -> int:
    """A seed: 0 to :data:`~fsaops.config.schema.MAX_SEED`, as ``workload.seed`` is."""
    from fsaops.config.schema import MAX_SEED

    return _non_negative(text, MAX_SEED)


def _count(text: str) -> int:
    return _non_negative(text, low=1)


def _count0(text: str) -> int:
    return _non_negative(text)


def _reduction(text: str) -> str:
    from fsaops.explore.api import REDUCTIONS

    if text not in REDUCTIONS:
        shown = text if len(text) <= 40 else text[:40] + "..."
        raise argparse.ArgumentTypeError(f"expected one of {', '.join(REDUCTIONS)}, got {shown!r}")
    return text


def _semantics(text: str) -> str:
    from fsaops.semantics import SEMANTICS, semantics_names

    if text not in SEMANTICS:
        raise argparse.ArgumentTypeError(
            f"unknown semantics {text!r}: expected one of {semantics_names()}"
        )
    return text


MAX_RUN_SECONDS: Final = 1_000_000
"""The longest ``--timeout``, in seconds (as ``kernel.timeout``)."""


def _seconds(text: str) -> float:
    """A number of seconds written with the digits 0 to 9, from 0 (no limit) to the longest."""
    from fsaops.config.sizes import TooSmall, parse_number

    try:
        value = parse_number(text)
    except TooSmall:
        raise argparse.ArgumentTypeError(
            f"{_shown(text)} is not 0, but too small to tell from 0 (no limit); "
            "write 0 or a larger number"
        ) from None
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and 0 <= value <= MAX_RUN_SECONDS):
        raise argparse.ArgumentTypeError(
            f"expected a number of seconds from 0 (no limit) to {MAX_RUN_SECONDS}, "
            f"got {_shown(text)}"
        )
    return value


def _trace_page(text: str) -> Any:
    from fsaops.trace import parse_page

    try:
        return parse_page(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _level(text: str) -> str:
    level = text.lower()
    if level not in LOG_LEVELS:
        raise argparse.ArgumentTypeError(f"expected one of {', '.join(LOG_LEVELS)}, got {text!r}")
    return level


def _parser() -> _Parser:
    parser = _Parser(
        prog="fsaops",
        description="An executable model of Linux page migration (the migratepage operation).",
    )
    parser.add_argument("--version", action="version", version=f"fsaops {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    plugins_help = "plugins to load, comma-separated (overrides FSAOPS_PLUGINS and [plugins] load)"

    migrate = sub.add_parser(
        "migrate",
        help="migrate every page of a node and report",
        description="Build a scenario's machine, migrate every page of its source node to "
        "its target node, read every page back, and report.",
        epilog=EXIT_STATUS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    migrate.add_argument(
        "scenario", nargs="?", metavar="SCENARIO.toml", help="the scenario (default: built-in)"
    )
    migrate.add_argument("--json", action="store_true", help="print the report as JSON")
    migrate.add_argument("--seed", type=_seed, help="override [workload] seed")
    migrate.add_argument("--plugins", metavar="NAME,...", help=plugins_help)
    migrate.add_argument(
        "--log-format",
        choices=("console", "json"),
        default="console",
        help="format of the event stream on standard error (default: console)",
    )
    migrate.add_argument(
        "--log-level",
        type=_level,
        default="warning",
        metavar="LEVEL",
        help="debug shows one mm_migrate_page event per page attempt (default: warning)",
    )
    migrate.add_argument(
        "--no-progress", action="store_true", help="no progress bar, even on a terminal"
    )
    migrate.add_argument(
        "--strict",
        action="store_true",
        help="findings (wrong but lossless behaviour of a table's migratepage) fail the run "
        "with exit 1; turns on the per-page checks that find them ([kernel] strict)",
    )
    migrate.add_argument(
        "--semantics",
        type=_semantics,
        metavar="NAME",
        help="the release of the migration code the kernel runs: v4 (the V4 series, "
        "the default), 2.6.16 or 2.6.17 (overrides [kernel] semantics)",
    )
    migrate.add_argument(
        "--timeout",
        type=_seconds,
        metavar="SECONDS",
        help="wall-clock limit of the whole run; 0 for none (overrides [kernel] timeout)",
    )
    migrate.add_argument(
        "--debug-vm",
        action="store_true",
        help="check every invariant after every page (CONFIG_DEBUG_VM; slow): the first "
        "broken one names the page, its table and the path taken, and exits 1",
    )
    migrate.add_argument(
        "--html",
        metavar="FILE",
        help="also write the report as one self-contained HTML page (frame maps, retry "
        "curve, verdict) to FILE",
    )
    migrate.add_argument(
        "--trace",
        type=_trace_page,
        metavar="PAGE",
        help="follow one page through the run: a pfn (56), a file page (mount0/file1:3) or "
        "a process page (PID:ADDRESS in hex with 0x, 5:0x10000)",
    )

    plugins = sub.add_parser(
        "plugins",
        help="list the installed plugins",
        description="List every installed plugin: loaded, not loaded, imported or failed, its "
        "filesystem types, their tables, and each table's migratepage.",
    )
    plugins.add_argument("--json", action="store_true", help="print the listing as JSON")
    plugins.add_argument(
        "--config", metavar="FILE", help="take [plugins] load and [kernel] migration from FILE"
    )
    plugins.add_argument("--plugins", metavar="NAME,...", help=plugins_help)

    config = sub.add_parser(
        "config",
        help="work with scenario files (fsaops config check FILE)",
        description="Work with scenario files. The one action is check: fsaops config check FILE.",
    )
    config_sub = config.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    check = config_sub.add_parser(
        "check",
        help="check a scenario file",
        description="Check a scenario file: syntax, keys, values, and the filesystems "
        "against the selected plugins.",
    )
    check.add_argument("file", metavar="FILE")
    check.add_argument("--plugins", metavar="NAME,...", help=plugins_help)
    check.add_argument(
        "--json", action="store_true", help="print the result (or the error) as a JSON object"
    )

    diff = sub.add_parser(
        "diff",
        help="compare two reports of fsaops migrate --json",
        description="Compare two runs from the reports fsaops migrate --json wrote: where the "
        "scenarios differ, then every operations table, the totals, vmstat and the verdict, "
        "side by side, with what differs marked.",
        epilog="exit status: 0 whether or not the runs differ (it is a report); 2 when a file "
        "is not a report of this schema",
    )
    diff.add_argument("a", metavar="A.json", help="the first report")
    diff.add_argument("b", metavar="B.json", help="the second report")
    diff.add_argument(
        "--html", metavar="FILE", help="also write the comparison as a self-contained HTML page"
    )

    explore = sub.add_parser(
        "explore",
        help="run a table's migration against concurrent tasks under every schedule",
        description="Migrate a few pages of one table while accessor tasks (faults, write(), "
        "truncate, writeback, journal commits, swap-ins, buffer locks, direct I/O) run on them, "
        "under every schedule with at most K preemptions (or PCT's random schedules), and check "
        "every schedule's end state: invariants, placement, every page read back, durability.",
        epilog=EXPLORE_STATUS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    explore.add_argument(
        "scenario",
        nargs="?",
        metavar="SCENARIO.toml",
        help="take the plugins, the kernel's semantics, page size, I/O latency and commit "
        "interval, the mounts and [workload] out_of_line from a scenario (--fs and --mode, "
        "or --mount, pick one of its mounts); every other key it sets is named as not used",
    )
    explore.add_argument(
        "--fs", metavar="NAME", help="the filesystem type whose table to explore (swap: anonymous)"
    )
    explore.add_argument("--mode", metavar="MODE", help="its mount mode (default: its default)")
    explore.add_argument(
        "--mount",
        type=_count0,
        metavar="N",
        help="the scenario's mount to explore, mount[N] (from 0), where --fs and --mode "
        "leave several that differ in block size",
    )
    explore.add_argument(
        "--pages",
        type=_count,
        metavar="N",
        help="pages the migration task moves (default: 4)",
    )
    explore.add_argument(
        "--tasks",
        metavar="LIST",
        help="accessor tasks, comma-separated, each NAME or NAME@PAGE, run together (default: "
        "every accessor that applies to the table's pages, one at a time, each on a clean "
        "and on a dirty page, as one NAME alone runs)",
    )
    explore.add_argument(
        "--together",
        action="store_true",
        help="without --tasks: run every default accessor in each schedule at once, "
        "instead of one at a time (a space most tables cannot exhaust at K = 2)",
    )
    explore.add_argument(
        "--preemptions",
        type=_count0,
        metavar="K",
        help="run every schedule with at most K preemptions (default: 2), up to --reduce "
        "(not with --pct)",
    )
    explore.add_argument(
        "--pct",
        type=_count,
        metavar="DEPTH",
        help="run PCT's random schedules of bug depth DEPTH instead",
    )
    explore.add_argument(
        "--schedules",
        type=_count,
        metavar="N",
        help="with --pct: how many schedules (default 1000); else: stop after N schedules "
        "(the space is then not exhausted, as the summary and the JSON's exhausted say)",
    )
    explore.add_argument(
        "--seed", type=_seed, metavar="N", help="with --pct: PCT's seed (default: 0)"
    )
    explore.add_argument(
        "--reduce",
        type=_reduction,
        metavar="pages|none",
        help="the systematic search's reduction: pages (the default) takes steps on different "
        "pages to commute, and does not cover state a table keeps across pages (a buffer "
        "every page shares); none runs every schedule within the bound",
    )
    explore.add_argument(
        "--semantics",
        type=_semantics,
        metavar="NAME",
        help="the release of the migration code: v4 (the default), 2.6.16 or 2.6.17",
    )
    explore.add_argument(
        "--replay",
        metavar="STRING",
        help="run exactly the schedule a replay string records, and print its interleaving",
    )
    explore.add_argument("--json", action="store_true", help="print the result as JSON")
    explore.add_argument("--plugins", metavar="NAME,...", help=plugins_help)

    sub.add_parser(
        "bench",
        help="measure the engine's performance figures (fsaops bench --help)",
        add_help=False,
    )
    return parser


# -- shared steps ------------------------------------------------------------------


def _read_config(path: str | None) -> tuple[Config, str]:
    """The scenario (the built-in one when no file is given), and what names it."""
    from fsaops.config import BUILTIN_SOURCE, default_config, load_config

    if path is None:
        return default_config(), BUILTIN_SOURCE
    source = _source_name(path)
    _not_the_output(source, "the scenario")
    return load_config(source), source


def _not_the_output(path: str, what: str) -> None:
    """Refuse an input file that is also the command's output (``> FILE`` or ``>> FILE``).

    ``> FILE`` empties it before the command starts: read, it is another
    input (an empty scenario is the default machine); ``>> FILE`` adds
    the output to it.  Either way the input is lost.
    """
    from fsaops.errors import FsaopsError

    if path and _output_is(path):
        _GONE.set(True)  # not even the JSON envelope: nothing is written over an input
        raise FsaopsError(
            f"{shown_path(path)}: is {what} this command reads, and its output goes to it too; "
            "send the output to another file"
        )
    if path and _error_output_is(path):
        message = (
            f"{shown_path(path)}: is {what} this command reads, and its standard error goes to it "
            "too "
            "(log lines, warnings and this message would be written into it); send standard "
            "error to another file"
        )
        # From here nothing reaches the file: standard error goes nowhere, and the
        # message goes to standard output (in the JSON envelope, with --json).
        with contextlib.suppress(OSError):
            nowhere = os.open(os.devnull, os.O_WRONLY)
            for fd in (1, 2):
                with contextlib.suppress(OSError):
                    if _is_file_of(fd, path):
                        os.dup2(nowhere, fd)
            os.close(nowhere)
        if not _JSON.get():
            with contextlib.suppress(OutputError):
                _write(f"fsaops: error: {_one_line(message)}\n")
        raise FsaopsError(message)


def _error_output_is(path: str) -> bool:
    """Whether ``path`` is the file standard error goes to (``2> FILE``, ``2>> FILE``)."""
    return _is_file_of(2, path) or _is_file_of(1, path)


def _is_file_of(fd: int, path: str) -> bool:
    """Whether descriptor ``fd`` is open on the file ``path`` names."""
    try:
        return os.path.samestat(os.stat(path), os.fstat(fd))
    except (OSError, ValueError):
        return False


def _source_name(path: str | None) -> str:
    """How messages, reports and pages name the scenario ``path`` (``None``: the built-in one).

    A file named as the built-in scenario is (``<built-in scenario>``) is
    named ``./<built-in scenario>``: the same file, never taken for the
    built-in scenario by whoever reads the report or runs it again.
    """
    from fsaops.config import BUILTIN_SOURCE

    if path is None:
        return BUILTIN_SOURCE
    return os.path.join(os.curdir, path) if path == BUILTIN_SOURCE else path


def _load(
    config: Config | None,
    source: str | None,
    cli: str | None,
    *,
    strict: bool = True,
    next_modules: Sequence[str] = (),
) -> Registry:
    """Load the plugins; while the loader's probe runs, import ``next_modules`` (needed next)."""
    from fsaops.plugins import load_plugins

    load = None
    migration = True
    if config is not None:
        load = list(config.plugins.load) if config.plugins.load is not None else None
        migration = config.kernel.migration

    def meanwhile() -> None:
        import importlib

        # A Ctrl-C comes after the imports: raised inside the import system,
        # it can be lost in a callback the import runs (so the command never
        # hears it), or turned into another error by the interpreter.
        with signals_deferred():
            for module in next_modules:
                importlib.import_module(module)

    registry = load_plugins(
        cli=cli,
        config=load,
        config_source=source,
        migration=migration,
        strict=strict,
        meanwhile=meanwhile,
    )
    _REGISTRY.set(registry)
    return registry


def _stdout_console() -> Console:
    from rich.console import Console

    out = _stdout()
    if out is None:
        raise OutputError("cannot write to standard output: it is closed")
    width = _terminal_width(out) if _isatty(out) else 120
    # No markup and no emoji codes: what plugin code names or says ("[/dev/sdb1]",
    # "[link=...]", ":smile:") is shown as written, whichever renderer it reaches.
    return Console(
        file=cast("IO[str]", _Checked(out)),
        width=width,
        highlight=False,
        markup=False,
        emoji=False,
    )


MIN_WIDTH: Final = 40
"""The narrowest a terminal's output is drawn: narrower, tables lose numbers and the verdict."""


def _terminal_width(out: TextIO) -> int | None:
    """The width to draw a terminal's output at: ``None`` lets rich ask (``COLUMNS`` first).

    ``COLUMNS=0`` would have rich draw nothing at all, a failed run's
    report included: a width below one is taken as no width, and the
    output drawn 80 columns wide.  A terminal (or ``COLUMNS``) narrower
    than :data:`MIN_WIDTH` gets the output drawn that wide, lines wrapped
    by the terminal: narrower, rich drops the tables' numbers and the
    ``result`` line.
    """
    try:
        columns = int(os.environ.get("COLUMNS", ""))
    except ValueError:
        try:
            columns = os.get_terminal_size(out.fileno()).columns
        except (OSError, ValueError, AttributeError):
            return None
        if columns < 1:
            return None
    if columns < 1:
        return 80
    return MIN_WIDTH if columns < MIN_WIDTH else None


class _Checked:
    """Standard output for rich: every write goes through :func:`_write`."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        _write(text)
        return len(text)

    def flush(self) -> None:
        """Flushed with every write."""

    def isatty(self) -> bool:
        return _isatty(self._stream)

    def fileno(self) -> int:
        return self._stream.fileno()

    @property
    def encoding(self) -> str:
        """The stream's encoding (rich draws with ASCII where it cannot do better)."""
        encoding = getattr(self._stream, "encoding", None)
        return encoding if isinstance(encoding, str) and encoding else "utf-8"


class _Diagnostics:
    """Standard error for the progress bar and the event stream.

    A write that fails (standard error closed, or full) turns them off and
    changes nothing else: the run's outcome and its report on standard
    output stand, and there is nowhere left to say more.
    """

    def __init__(self, stream: TextIO | None) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        stream = self._stream
        if stream is not None:
            try:
                stream.write(text)
            except (OSError, ValueError):
                self._stream = None
        return len(text)

    def flush(self) -> None:
        """Flush standard error, if it still works."""
        stream = self._stream
        if stream is not None:
            try:
                stream.flush()
            except (OSError, ValueError):
                self._stream = None

    def isatty(self) -> bool:
        return _isatty(self._stream)

    def fileno(self) -> int:
        if self._stream is None:
            raise OSError("closed")
        return self._stream.fileno()


@contextmanager
def _progress_bar(enabled: bool) -> Iterator[Progress | None]:
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TaskID,
        TextColumn,
        TimeElapsedColumn,
    )

    names = {
        "build": "building the world",
        "migrate": "migrating pages",
        "check": "reading pages back",
    }
    bar = Progress(
        TextColumn("{task.description:<20}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(file=cast("IO[str]", _Diagnostics(sys.stderr))),  # only on a terminal
        transient=True,
    )
    tasks: dict[str, TaskID] = {}

    def update(phase: str, done: int, total: int) -> None:
        task = tasks.get(phase)
        if task is None:
            task = tasks[phase] = bar.add_task(names.get(phase, phase), total=total)
        bar.update(task, completed=done, total=total)

    with bar:
        yield update


# -- commands ------------------------------------------------------------------------


def _cmd_migrate(args: argparse.Namespace) -> int:
    from fsaops.scenario import RunObserver, plan_scenario, run_plan

    if _PROGRAM.get():
        # The process ends with this one run, freeing nothing (_exit_now): the
        # collections after it would walk its millions of objects for nothing.
        # run_plan pauses the collector during the run in any case.
        gc.disable()
    # Checked and made absolute before any plugin code runs: plugin code that
    # changes the working folder must not send the page somewhere else.
    html = (
        None
        if args.html is None
        else _output_file(args.html, "--html", reads={"the scenario": args.scenario})
    )
    if html is not None:  # from here on, a run that fails says so on its page too
        _set_page(html, _source_name(args.scenario), "migrate")
    config, source = _read_config(args.scenario)
    if args.debug_vm:
        config = attrs.evolve(config, kernel=attrs.evolve(config.kernel, debug_vm=True))
    if args.strict:
        config = attrs.evolve(config, kernel=attrs.evolve(config.kernel, strict=True))
    if args.semantics is not None:
        config = attrs.evolve(config, kernel=attrs.evolve(config.kernel, semantics=args.semantics))
    if args.timeout is not None:
        config = attrs.evolve(config, kernel=attrs.evolve(config.kernel, timeout=args.timeout))
    if args.seed is not None:  # the report's config says the seed the run had
        config = attrs.evolve(config, workload=attrs.evolve(config.workload, seed=args.seed))
    registry = _load(
        config,
        source,
        args.plugins,
        # What the run needs next and has not imported yet: imported while the
        # probe's child loads the plugins (the rest is imported by now already).
        # A run that prints JSON draws no table.
        next_modules=(
            "resource",
            "ctypes.util",
            "fsaops.world",
            "fsaops.report",
            *(() if args.json else ("fsaops.terminal_report",)),
        ),
    )
    plan = plan_scenario(config, registry, source)
    _migration_built_in(config, source)
    observers: list[RunObserver] = []
    tracer = None
    if args.trace is not None:
        from fsaops.trace import PageTrace

        tracer = PageTrace(args.trace)
        observers.append(tracer)
    frames = None
    if html is not None:
        from fsaops.frames import FrameMaps

        frames = FrameMaps()
        observers.append(frames)
    log = engine_logger(
        args.log_format,
        args.log_level,
        cast("TextIO", _Diagnostics(sys.stderr)),
        tap=None if tracer is None else tracer.processor,
        colors=_isatty(sys.stderr),
    )
    show_progress = (
        _isatty(sys.stderr)
        and not args.json
        and not args.no_progress
        and LOG_LEVELS[args.log_level] >= logging.WARNING
    )
    with _last_resort(config.kernel.timeout), _progress_bar(show_progress) as progress:
        report = run_plan(
            plan,
            seed=args.seed,
            log=log,
            progress=progress,
            observers=observers,
            on_stuck=_stuck_ender(),
        )
    _no_exit_called()
    if tracer is not None:
        report = attrs.evolve(report, trace=tuple(tracer.steps))

    def page() -> None:
        if html is not None:
            from fsaops.html_report import render_report

            assert frames is not None
            # The failure's page stays pending until the command returns: a signal while
            # the report's page is drawn or written leaves the interrupted page, not an
            # earlier run's.
            _write_page(html, render_report(report, frames))

    # The report first: a page that cannot be written (a full disk, a file
    # size limit) must not take the run's own report with it.
    with _page_all_the_same(page):
        if args.json:
            _write(_json_text(report.to_json()))  # as report.dumps(), with our encoder
        else:
            from fsaops.terminal_report import render

            console = _stdout_console()
            render(report, console)
            if report.trace is not None:
                from fsaops.trace import render as render_trace

                render_trace(report.trace, console, title=f"The journey of {args.trace.text}")
    page()
    return report.exit_status


@contextlib.contextmanager
def _page_all_the_same(page: Callable[[], None]) -> Iterator[None]:
    """Write the command's page even when its standard output cannot take the report.

    A reader gone, a full disk: the run is done, and its page says what it
    came to, rather than an earlier run's page standing for this one.  The
    error of the output is the command's; a page that cannot be written
    either is said too.
    """
    try:
        yield
    except OutputError:
        try:
            page()
        except OutputError as exc:
            with contextlib.suppress(BaseException):
                _error(str(exc))
        raise


def _output_file(path: str, option: str, reads: Mapping[str, str | None] | None = None) -> str:
    """Check, before a run, that a report can be written to ``path`` (bad input if not).

    ``reads`` names the files the command reads (by what they are): the
    report may not be written over one of them, nor over the command's
    own standard output.  Returns the path made absolute, so that it names
    the same file whatever the working folder is when the report is written.
    """
    from fsaops.errors import FsaopsError

    if not path:
        raise FsaopsError(f"{option}: expected a file name, got an empty string")
    named = f"{option} {shown_path(path)}"
    if not os.path.isabs(path) and not _working_folder_exists():
        raise FsaopsError(f"{named}: the working folder no longer exists")
    if os.path.isdir(path):
        raise FsaopsError(f"{named}: is a directory; name a file to write")
    for what, other in (reads or {}).items():
        if other is not None and _same_file(path, other):
            raise FsaopsError(f"{named}: is {what} this command reads; name another file")
    stream = _stream_of(path)
    if stream is not None:
        raise FsaopsError(f"{named}: is the command's {stream}; name a file")
    if os.path.lexists(path) and not os.path.isfile(path):
        raise FsaopsError(f"{named}: is not a regular file; name a file to write")
    folder = os.path.dirname(path) or "."
    shown_folder = shown_path(folder)
    if not os.path.isdir(folder):
        if os.path.exists(folder):
            raise FsaopsError(f"{named}: {shown_folder} is a file, not a directory")
        raise FsaopsError(f"{named}: no such directory: {shown_folder}")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise FsaopsError(f"{named}: cannot write in {shown_folder}")
    too_long = _name_too_long(path)
    if too_long is not None:
        raise FsaopsError(f"{named}: the file name is too long ({too_long})")
    refused = _cannot_create_in(os.path.dirname(os.path.realpath(path)))
    if refused is not None:
        raise FsaopsError(f"{named}: cannot write in {refused}")
    return os.path.abspath(path)


def _cannot_create_in(folder: str) -> str | None:
    """Why no file can be created in ``folder``, where a page is written, if so.

    The page is written where a symbolic link ``FILE`` points, and
    ``os.access`` says yes to a folder of ``/proc`` or ``/sys``, or to
    any folder for root, where creating a file fails: a file is created
    there and removed, as the page's temporary file will be.
    """
    try:
        where = _OS_OPEN(folder, getattr(os, "O_PATH", os.O_RDONLY) | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        return f"{shown_path(folder)} ({exc.strerror or exc})"
    try:
        name, fd = _create_temporary(where)
        _OS_CLOSE(fd)
        os.unlink(name, dir_fd=where)
    except OSError as exc:
        return f"{shown_path(folder)} ({exc.strerror or exc})"
    finally:
        _OS_CLOSE(where)
    return None


def _working_folder_exists() -> bool:
    """Whether the working folder still exists (a relative path names nothing in a deleted one)."""
    try:
        os.getcwd()
    except FileNotFoundError:
        return False
    return True


def _name_too_long(path: str) -> str | None:
    """Why the file ``path`` names (through symbolic links) can never be created, if so.

    Its name is longer than its folder's filesystem takes (``NAME_MAX``,
    255 bytes on most).
    """
    folder, name = os.path.split(os.path.realpath(path))
    try:
        longest = os.pathconf(folder, "PC_NAME_MAX")
        length = len(os.fsencode(name))
    except (OSError, ValueError):  # a filesystem that does not say: the write will tell
        return None
    if longest <= 0 or length <= longest:
        return None
    return f"{length} bytes; {shown_path(folder)} takes names of at most {longest}"


_STDOUT_NAMES: Final = frozenset({"/dev/stdout", "/dev/fd/1", "/proc/self/fd/1"})


def _stream_of(path: str) -> str | None:
    """Which of the command's streams ``path`` is (``> FILE``, ``2> FILE``, ``/dev/stdout``).

    ``"standard output"``, ``"standard error"``, or ``None`` for neither.
    While a command runs, descriptor 1 points at standard error and the
    output has a descriptor of its own: each is compared for what it is.
    """
    try:
        if not os.path.exists(path):
            return None
        target = os.stat(path)
    except (OSError, ValueError):
        return None
    if os.path.normpath(path) in _STDOUT_NAMES:  # descriptor 1 by name: the output, as meant
        return "standard output"
    out_fd: int | None = None
    out = _stdout()
    with contextlib.suppress(OSError, ValueError, AttributeError):
        if out is not None:
            out_fd = out.fileno()
    # Descriptor 1 is the output unless the output has one of its own.
    streams = [(out_fd, "standard output"), (2, "standard error")]
    streams.append((1, "standard output" if out_fd in (None, 1) else "standard error"))
    for fd, name in streams:
        if fd is None:
            continue
        with contextlib.suppress(OSError):
            if os.path.samestat(target, os.fstat(fd)):
                return name
    return None


def _output_is(path: str) -> bool:
    """Whether ``path`` is the file the command's output goes to, and not only its stderr.

    Unlike :func:`_is_stdout`, descriptor 1 (standard error while a command
    runs) is left out: ``2>> FILE`` sends no output to ``FILE``.
    """
    out = _stdout()
    try:
        return out is not None and os.path.samestat(os.stat(path), os.fstat(out.fileno()))
    except (OSError, ValueError, AttributeError):  # io.UnsupportedOperation is both
        return False


def _same_file(a: str, b: str) -> bool:
    """Whether two paths name one existing file."""
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):
        return False


TEMPORARY_NAME_BYTES: Final = 14
"""The length of the name a page is written under before it is renamed over the page.

POSIX's ``_POSIX_NAME_MAX``, the shortest longest name a filesystem may
have: the temporary name fits wherever the page's own name fits.
"""


def _write_file(path: str, text: str, option: str) -> None:
    """Write ``text`` to ``path`` whole, or not at all (a new file renamed over it).

    The new file is created in the same folder under a random name of its
    own, :data:`TEMPORARY_NAME_BYTES` long, and never opened if it is there
    already: a symbolic link or a file planted under that name is not
    written through, nor renamed over the page.  Its mode is a new file's
    (0666 less the umask the command started with: plugin code that changed
    the umask changes no page's mode), as the page's was before.  A page that cannot be
    written leaves nothing behind.  A copy of the run made below Python
    replaces no page: the run's page is the run's.
    """
    supervisor.leave_if_copy()
    path = os.path.realpath(path)  # through a symbolic link, not over it
    folder, name = os.path.split(path)
    try:
        # Every name below is taken in this folder: where the page goes cannot change midway.
        where = _OS_OPEN(folder, getattr(os, "O_PATH", os.O_RDONLY) | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            temporary, fd = _create_temporary(where)
            try:
                # A file name that is no UTF-8 (any bytes are, on Linux) reaches the
                # text as surrogate escapes: written as \udcff, not a crash.
                with open(fd, "w", encoding="utf-8", errors="backslashreplace") as out:
                    mask = _UMASK.get()
                    _OS_FCHMOD(fd, 0o666 & ~(_umask() if mask is None else mask))
                    out.write(text)
                os.replace(temporary, name, src_dir_fd=where, dst_dir_fd=where)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(temporary, dir_fd=where)
                raise
        finally:
            _OS_CLOSE(where)
    except OSError as exc:
        shown = shown_path(path)
        raise OutputError(f"{option} {shown}: cannot write it: {exc.strerror or exc}") from None


def _write_page(path: str, text: str) -> None:
    """Write the command's ``--html`` page; one that cannot be written leaves no earlier page.

    A full disk or a file size limit can refuse the page once the command
    has done its work.  The page an earlier command left at ``path`` would
    then stand for this one: it is removed, and the error says so.
    """
    try:
        _write_file(path, text, "--html")
    except OutputError as exc:
        real = os.path.realpath(path)
        try:
            removed = os.path.isfile(real)
            if removed:
                os.unlink(real)
        except OSError:
            removed = False
        if not removed:
            raise
        raise OutputError(
            f"{exc}; the page an earlier command left there is removed, so that it does not "
            "stand for this one"
        ) from None


def _create_temporary(folder: int) -> tuple[str, int]:
    """A new file of a random name in ``folder`` (a descriptor), open for writing: its name, fd.

    Created exclusively (``O_EXCL``, ``O_NOFOLLOW``): a name that is taken,
    by whatever, is passed over for another.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    for _ in range(100):
        token = base64.b32encode(_URANDOM(10)).decode("ascii").lower()
        name = f".{token[: TEMPORARY_NAME_BYTES - len('..tmp')]}.tmp"  # .3hx7ka2qz.tmp
        try:
            return name, _OS_OPEN(name, flags, 0o666, dir_fd=folder)
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no free name for a temporary file")


def _plugins_data(registry: Registry, source: str) -> dict[str, Any]:
    from fsaops.aops import member_name

    plugins = []
    for info in registry.plugins:
        filesystems = []
        for fstype in info.filesystems:
            modes = {}
            for mode in fstype.modes:
                table = registry.aops(fstype.name, mode)
                modes[mode] = {
                    "table": table.name,
                    "migratepage": member_name(table.migratepage),
                    "page_cache": fstype.has_page_cache(mode),
                }
            filesystems.append(
                {
                    "name": fstype.name,
                    "description": fstype.description,
                    "default_mode": fstype.default_mode,
                    "block_sizes": list(fstype.block_sizes),
                    "default_block_size": fstype.default_block_size,
                    "modes": modes,
                }
            )
        plugins.append(
            {
                "name": info.name,
                "label": info.label,
                "distribution": info.dist,
                "version": info.version,
                "module": info.value,
                "status": info.status.value,
                "error": info.error,
                "imported_by": [registry.plugin(name).label for name in info.imported_by],
                "filesystems": filesystems,
            }
        )
    return {
        "migration": registry.migration,
        "selection": list(registry.selection),
        "selected_by": source,
        "plugins": plugins,
    }


def _render_plugins(data: dict[str, Any], console: Console) -> None:
    from rich import box
    from rich.table import Table
    from rich.text import Text

    heading = Text("Plugins", style="bold")
    heading.append(f"  selected by {printable(data['selected_by'])}\n", style="cyan")
    if data["migration"]:
        heading.append("migration built in", style="dim")
    else:
        heading.append(
            "migration compiled out (CONFIG_MIGRATION=n): no table has migratepage",
            style="yellow",
        )
    console.print(heading)
    table = Table(
        caption="* the default mode; none: pages take the engine's generic fallback path",
        caption_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    table.add_column("plugin / filesystem mode", no_wrap=True)
    table.add_column("table", no_wrap=True)
    table.add_column("migratepage", overflow="fold")
    styles = {"loaded": "green", "not loaded": "dim", "imported": "yellow", "failed": "bold red"}
    for plugin in data["plugins"]:
        label = Text(plugin["label"], style="bold")
        label.append(f" {plugin['version']}", style="dim")
        status = Text(plugin["status"], style=styles.get(plugin["status"], ""))
        error = Text(plugin["error"] or "", style="red")
        if plugin["imported_by"]:
            error = Text(
                f"not selected, but imported by {', '.join(plugin['imported_by'])}: its code "
                "runs as theirs",
                style="yellow",
            )
        table.add_row(label, status, error, end_section=not plugin["filesystems"])
        for f, fs in enumerate(plugin["filesystems"]):
            modes = list(fs["modes"].items())
            for m, (mode, entry) in enumerate(modes):
                where = Text(f"  {fs['name']} {mode}")
                if mode == fs["default_mode"]:
                    where.append("*", style="cyan")
                member = entry["migratepage"]
                last = f == len(plugin["filesystems"]) - 1 and m == len(modes) - 1
                table.add_row(
                    where,
                    Text(entry["table"]),
                    Text(member) if member else Text("none", style="yellow"),
                    end_section=last,
                )
    console.print(table)


def _cmd_plugins(args: argparse.Namespace) -> int:

    config = None
    if args.config is not None:
        config, _ = _read_config(args.config)
    registry = _load(
        config, args.config, args.plugins, strict=False, next_modules=("rich.console", "rich.table")
    )
    selected_by = {
        "[plugins] load": f"[plugins] load in {args.config}",
        "installed": "default: every installed plugin",
    }.get(registry.selected_by, registry.selected_by)
    data = _plugins_data(registry, selected_by)
    failed = registry.failures
    if args.json:
        status = Status.BAD_INPUT if failed else Status.OK
        extra = {"error": failed[0].error} if failed else {}
        _write(_json_text({**envelope(status), **extra, **data}))
    else:
        _render_plugins(data, _stdout_console())
    if failed:
        _error(failed[0].error or f"plugin {failed[0].label} failed to load")
        return 2
    return 0


def _cmd_config_check(args: argparse.Namespace) -> int:
    from fsaops.config import format_size, page_cache_pages
    from fsaops.scenario import plan_scenario

    config, source = _read_config(args.file)
    registry = _load(config, source, args.plugins, next_modules=("fsaops.world",))
    plan = plan_scenario(config, registry, source)
    config = plan.config
    pages = page_cache_pages(config, registry) + config.anon_pages
    notes = []
    if not config.kernel.migration:
        notes.append("kernel.migration = false, so `fsaops migrate` stops with ENOSYS")
    if args.json:
        data = envelope(
            Status.OK,
            source=source,
            mounts=len(config.mount),
            pages=pages,
            node_pages=config.node_pages,
            plugins=list(registry.selection),
            notes=notes,
        )
        _write(_json_text(data))
        return 0
    source = shown_path(source)  # a file name a terminal would obey, shown escaped
    _write(
        f"{source}: OK: {len(config.mount)} mount(s), {pages} page{'' if pages == 1 else 's'} "
        f"on node "
        f"{config.migrate.from_node} of {config.node_pages} "
        f"({format_size(config.kernel.node_memory)}); plugins: "
        f"{', '.join(registry.selection) or 'none'}\n"
    )
    for note in notes:
        _write(f"{source}: note: {note}\n")
    return 0


def _cmd_diff(args: argparse.Namespace) -> int:
    from fsaops.diff import compare, load_report, render, render_html

    html = (
        None
        if args.html is None
        else _output_file(args.html, "--html", reads={"report A": args.a, "report B": args.b})
    )
    if html is not None:  # a comparison that fails says so on its page: no old page stands
        _set_page(html, f"{args.a} {args.b}", "diff")
    _not_the_output(args.a, "report A")
    _not_the_output(args.b, "report B")
    a = load_report(args.a)
    b = load_report(args.b)
    comparison = compare(a, b, names=(args.a, args.b))

    def page() -> None:
        if html is not None:  # the failure's page stays pending while this one is written
            _write_page(html, render_html(comparison))

    with _page_all_the_same(page):
        render(comparison, _stdout_console())  # first: a page that cannot be written keeps it
    page()
    return 0


def _explore_target(
    config: Config | None,
    source: str,
    fs: str | None,
    mode: str | None,
    defaults: Mapping[str, str] | None = None,
    mount: int | None = None,
) -> tuple[str, str | None, int | None, int | None]:
    """The filesystem, mode and block size to explore, and the index of the scenario's mount.

    They come from the options, or from a scenario's mount (the index is
    ``None`` without one, or for a type the scenario does not mount):
    ``mount`` (``--mount N``), else the one ``--fs`` and ``--mode`` leave.
    ``defaults`` gives each loaded filesystem's default mode: a mount that
    names no mode has that one (and ``--mode`` must match it).  Mounts of
    one type and mode that differ in block size are different pages to
    explore: several such left is bad input, naming ``--mount``.
    """
    from fsaops.errors import ConfigError

    if config is None:
        if fs is None:
            raise ConfigError("fsaops explore needs --fs NAME (or a SCENARIO.toml), or --replay")
        if mount is not None:
            raise ConfigError("--mount picks a mount of a SCENARIO.toml; none was given")
        return fs, mode, None, None
    known = defaults or {}
    named = shown_path(source)

    def mode_of(mount: MountConfig) -> str | None:
        return mount.mode if mount.mode is not None else known.get(mount.fs)

    if mount is not None and not 0 <= mount < len(config.mount):
        last = len(config.mount) - 1
        raise ConfigError(
            f"--mount {mount}: {named} has no mount[{mount}]"
            + (f" (its mounts are mount[0] to mount[{last}])" if last >= 0 else " (no mount)")
        )
    indexed = [
        (i, m)
        for i, m in enumerate(config.mount)
        if (mount is None or i == mount)
        and (fs is None or m.fs == fs)
        and (mode is None or (mode_of(m) or mode) == mode)
    ]
    if mount is not None and not indexed:
        chosen = config.mount[mount]
        raise ConfigError(
            f"--mount {mount}: mount[{mount}] of {named} is {chosen.fs} in mode "
            f"{mode_of(chosen) or 'default'}, not what --fs and --mode name"
        )
    mounts = [m for _, m in indexed]
    if fs is not None and not mounts and not any(m.fs == fs for m in config.mount):
        return fs, mode, None, None  # a type the scenario does not mount (swap: anonymous memory)
    if not mounts:
        if not config.mount:
            raise ConfigError(f"{named}: mounts nothing to explore; name a filesystem with --fs")
        wanted = "".join(
            (f" of {fs}" if fs is not None else "", f" in mode {mode}" if mode is not None else "")
        )
        raise ConfigError(f"{named}: no mount{wanted}")
    if len({(m.fs, mode_of(m)) for m in mounts}) > 1:
        shown = ", ".join(f"{m.fs}:{mode_of(m) or 'default'}" for m in mounts)
        raise ConfigError(f"{named}: pick one of its mounts with --fs and --mode: {shown}")
    if len({m.block_size for m in mounts}) > 1:
        shown = ", ".join(f"mount[{i}] block size {m.block_size or 'default'}" for i, m in indexed)
        raise ConfigError(
            f"{named}: several mounts of {mounts[0].fs} in mode "
            f"{mode_of(mounts[0]) or 'default'} differ in block size ({shown}): pick one "
            "with --mount N"
        )
    index, chosen = indexed[0]
    return chosen.fs, mode_of(chosen) or mode, chosen.block_size, index


def _migration_built_in(config: Config, source: str) -> None:
    """Refuse a scenario whose kernel has no migration to run (``CONFIG_MIGRATION=n``)."""
    from fsaops.errors import MigrationDisabled

    if not config.kernel.migration:
        raise MigrationDisabled(
            f"{shown_path(source)}: kernel.migration = false: this kernel is built without "
            "CONFIG_MIGRATION, so migrate_pages returns -ENOSYS (ENOSYS, function not "
            "implemented); set kernel.migration = true"
        )


def _cmd_explore(args: argparse.Namespace) -> int:
    from fsaops.errors import ConfigError
    from fsaops.explore import explore, replay
    from fsaops.explore.api import DEFAULT_PREEMPTIONS, parse_tasks
    from fsaops.explore.setup import DEFAULT_IO_LATENCY, DEFAULT_PAGES

    if args.replay is not None:
        given = [
            name
            for name, value in (
                ("SCENARIO.toml", args.scenario),
                ("--fs", args.fs),
                ("--mode", args.mode),
                ("--mount", args.mount),
                ("--tasks", args.tasks),
                ("--pct", args.pct),
                ("--schedules", args.schedules),
                ("--semantics", args.semantics),
                ("--together", args.together or None),
                ("--reduce", args.reduce),
                ("--seed", args.seed),
                ("--preemptions", args.preemptions),
                ("--pages", args.pages),
            )
            if value is not None
        ]
        if given:
            raise ConfigError(
                f"--replay runs the schedule its string records; it takes no {given[0]}"
            )
        registry = _load(None, None, args.plugins)
        result = replay(args.replay, registry=registry)
    else:
        if args.pct is not None:
            if args.reduce is not None:
                raise ConfigError(
                    "--reduce chooses the systematic search's reduction; PCT (--pct) reduces "
                    "nothing"
                )
            if args.preemptions is not None:
                raise ConfigError(
                    "--preemptions bounds the systematic search; PCT (--pct) bounds its "
                    "schedules by their depth"
                )
        elif args.seed is not None:
            raise ConfigError(
                "--seed seeds PCT's random schedules (--pct DEPTH); the systematic search "
                "draws nothing at random"
            )
        if args.together and args.tasks is not None:
            raise ConfigError(
                "--together runs the default accessors at once; the --tasks named run together "
                "already"
            )
        config: Config | None = None
        source = ""
        if args.scenario is not None:
            config, source = _read_config(args.scenario)
        registry = _load(config, source or None, args.plugins)
        if config is not None:
            from fsaops.scenario import plan_scenario

            plan_scenario(config, registry, source)  # the scenario, checked as migrate does
            _migration_built_in(config, source)
        defaults = {name: t.default_mode for name, t in registry.filesystems.items()}
        fs, mode, block_size, index = _explore_target(
            config, source, args.fs, args.mode, defaults, args.mount
        )
        semantics = args.semantics or (config.kernel.semantics if config else "v4")
        page_size = int(config.kernel.page_size) if config else 4096
        # What else of the scenario shapes the explored machine: the layout
        # of the mount's blocks, the I/O latency and the journal's commits.
        out_of_line = config.workload.out_of_line if config else False
        io_latency = config.kernel.io_latency if config else DEFAULT_IO_LATENCY
        # A scenario that leaves kernel.commit_interval at its default leaves
        # the journal its own, as --fs does (and the replay string records none).
        commit_interval = None
        if config is not None:
            from fsaops.config.schema import KernelConfig

            if config.kernel.commit_interval != attrs.fields(KernelConfig).commit_interval.default:
                commit_interval = config.kernel.commit_interval
        tasks = None if args.tasks is None else parse_tasks(args.tasks.split(","))
        if tasks is not None and not tasks:
            raise ConfigError("--tasks: expected at least one task")
        result = explore(
            fs,
            mode,
            registry=registry,
            pages=DEFAULT_PAGES if args.pages is None else args.pages,
            tasks=tasks,
            preemptions=DEFAULT_PREEMPTIONS if args.preemptions is None else args.preemptions,
            pct=args.pct,
            schedules=args.schedules,
            seed=args.seed or 0,
            semantics=semantics,
            block_size=block_size,
            page_size=page_size,
            together=args.together,
            reduce=args.reduce != "none",
            notice=_notice,
            out_of_line=out_of_line,
            io_latency=io_latency,
            commit_interval=commit_interval,
        )
        if config is not None:  # every other key it sets is named, not dropped
            from fsaops.explore.scenario import not_used

            unused = not_used(config, index, out_of_line=result.out_of_line)
            result = attrs.evolve(result, not_used=unused)
    _no_exit_called()
    if args.json:
        _write(_json_text(result.to_json()))  # as result.dumps(), with our encoder
    else:
        from fsaops.explore.api import render_text

        _write(render_text(result))
    return result.exit_status


class OutputError(Exception):
    """Standard output cannot be written (closed, full, or gone); the message says why."""


_json_text: Final = json_text
"""The command's JSON text, through :mod:`fsaops.jsonbound` (plugin code cannot rebind it)."""


# Bound when fsaops is imported: what writes the command's output does not go
# through names plugin code can rebind.
_OS_WRITE: Final = os.write
_OS_OPEN: Final = os.open
_OS_CLOSE: Final = os.close
_OS_FCHMOD: Final = os.fchmod
_URANDOM: Final = os.urandom


def _umask() -> int:
    """The process's file mode creation mask, read without changing it where the system says it.

    Linux (4.7 and later) shows it in ``/proc/self/status``; elsewhere it is
    set and put back at once, which is how it can be read at all.
    """
    with (
        contextlib.suppress(OSError, ValueError, IndexError),
        open("/proc/self/status", encoding="ascii", errors="replace") as status,
    ):
        for line in status:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8) & 0o777
    mask = os.umask(0o022)
    os.umask(mask)
    return mask & 0o777


# The stream the command's own output goes to: the real standard output,
# taken when main() starts, while sys.stdout points at standard error.
_UNSET: Final = object()
_OUT: contextvars.ContextVar[object] = contextvars.ContextVar("fsaops_stdout", default=_UNSET)
_ERR: contextvars.ContextVar[object] = contextvars.ContextVar("fsaops_stderr", default=_UNSET)
"""Standard error as the command found it (``sys.stderr`` when it started)."""
_GONE: contextvars.ContextVar[bool] = contextvars.ContextVar("fsaops_reader_gone", default=False)
"""Whether the reader of standard output went away (``fsaops ... | head``)."""
_PAGE: contextvars.ContextVar[tuple[str, str, str] | None] = contextvars.ContextVar(
    "fsaops_page", default=None
)
"""The ``--html`` page under way, what the command read, and the command: a failure writes it."""
_REGISTRY: contextvars.ContextVar[Registry | None] = contextvars.ContextVar(
    "fsaops_registry", default=None
)
_UMASK: contextvars.ContextVar[int | None] = contextvars.ContextVar("fsaops_umask", default=None)
"""The umask when the command started: plugin code that changes it changes no page's mode."""
"""The plugins of the command under way, once loaded: whose table a kernel BUG is about."""


def _stdout() -> TextIO | None:
    out = _OUT.get()
    if out is _UNSET:
        return sys.stdout
    return cast("TextIO | None", out)


def _write(text: str) -> None:
    """Write to standard output and flush, turning a failure into :class:`OutputError`.

    Once the reader has gone away (``fsaops ... | head``), what is left to
    write is dropped: the command goes on to the end (its ``--html`` page
    included) and ends with its own exit status.
    """
    supervisor.leave_if_copy()  # a copy of the run made below Python writes none of it
    if _GONE.get():
        return
    stream = _stdout()
    if stream is None:
        raise OutputError("cannot write to standard output: it is closed")
    _still_ours(stream)
    begun = _BEGUN.get()
    if begun is not None and not begun.is_set():
        begun.set()  # from here, a failure's envelope would follow part of an object
        supervisor.tell("begun", "yes")
    try:
        with signals_deferred():  # written whole: Ctrl-C or SIGTERM comes after
            fd, data = _as_bytes(stream, text)
            if fd is None or data is None:
                try:
                    stream.write(text)
                except UnicodeEncodeError:  # an output encoding that cannot say everything
                    encoding = getattr(stream, "encoding", None) or "ascii"
                    stream.write(text.encode(encoding, "replace").decode(encoding))
                stream.flush()
            else:
                _flush_all(stream, fd)  # nothing is buffered, unless a write failed before
                _write_all(fd, data)
    except BrokenPipeError:
        _reader_gone(stream)
    except (OSError, ValueError) as exc:
        raise OutputError(
            f"cannot write to standard output: {str(exc) or type(exc).__name__}"
        ) from None


def _as_bytes(stream: TextIO, text: str) -> tuple[int | None, bytes | None]:
    """The descriptor under ``stream``, and ``text`` encoded as ``stream`` would encode it.

    ``None`` for either when it has no descriptor (a stream in memory) or its
    encoding keeps state (one that begins with a byte order mark): then the
    stream itself writes ``text``.
    """
    try:
        fd = stream.fileno()
        encoding = getattr(stream, "encoding", None) or "utf-8"
        errors = getattr(stream, "errors", None) or "strict"
        if fd < 0 or "".encode(encoding):
            return None, None
        try:
            return fd, text.encode(encoding, errors)
        except UnicodeEncodeError:  # an output encoding that cannot say everything
            return fd, text.encode(encoding, "replace")
    except (OSError, ValueError, AttributeError, TypeError, LookupError):
        return None, None


def _flush_all(stream: TextIO, fd: int) -> None:
    """Flush ``stream``, waiting whenever its descriptor cannot take more yet."""
    while True:
        try:
            stream.flush()
            return
        except BlockingIOError:  # what could not be written stays buffered: try again
            _wait_writable(fd)


def _write_all(fd: int, data: bytes) -> None:
    """Write ``data`` whole to ``fd``, even one in non-blocking mode (``O_NONBLOCK``).

    A pipe that another program left non-blocking (Node.js, some CI runners)
    takes what fits in its buffer and refuses the rest: fsaops waits until
    it can take more and goes on from where the write stopped.
    """
    view = memoryview(data)
    while view:
        try:
            written = _OS_WRITE(fd, view)
        except BlockingIOError:
            _wait_writable(fd)
            continue
        view = view[written:]


def _wait_writable(fd: int) -> None:
    """Wait until ``fd`` can take more (or has failed: the next write says how)."""
    import select

    poller = select.poll()
    poller.register(fd, select.POLLOUT)
    poller.poll()


def _reader_gone(stream: TextIO) -> None:
    """The pipe's reader went away: drop the rest, here and at exit, without a word."""
    _GONE.set(True)
    # What the stream still buffers, and anything flushed at exit, goes nowhere.
    with contextlib.suppress(OSError, ValueError, AttributeError):
        null = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(null, stream.fileno())
        finally:
            os.close(null)


def _isatty(stream: object) -> bool:
    try:
        return stream is not None and bool(stream.isatty())  # type: ignore[attr-defined]
    except (AttributeError, OSError, ValueError):
        return False


MAX_MESSAGE = 2000
"""Characters of an error message shown; longer ones are cut (a value can be huge)."""


def _one_line(message: str) -> str:
    """``message`` on one line of printable characters, cut to :data:`MAX_MESSAGE`."""
    text = printable(" ".join(message.split()))  # a hostile name's escape sequences stay inert
    if len(text) > MAX_MESSAGE:
        text = text[:MAX_MESSAGE] + f"... ({len(text) - MAX_MESSAGE} more characters)"
    return text


def _error(message: str) -> None:
    """``fsaops: error: MESSAGE`` on standard error, on one line; silently nothing if it cannot."""
    _stderr_line(f"fsaops: error: {_one_line(message)}\n")


def _notice(message: str) -> None:
    """What a command says while it works (``fsaops explore``'s large search), on standard error."""
    _stderr_line(f"{printable(' '.join(message.split()))}\n")


def _stderr_line(line: str) -> None:
    """``line`` on standard error as the command found it; silently nothing if it cannot."""
    supervisor.leave_if_copy()  # the run's word, not a copy's
    # Standard error as the command found it, not what plugin code made of
    # sys.stderr since (a file of its own, a StringIO, a stream that blocks).
    own = _ERR.get()
    first = sys.stderr if own is _UNSET else cast("TextIO | None", own)
    for stream in (first, sys.__stderr__):
        if stream is None:
            continue
        try:
            try:
                stream.write(line)
            except UnicodeEncodeError:  # say what can be said in the stream's encoding
                encoding = getattr(stream, "encoding", None) or "ascii"
                stream.write(line.encode(encoding, "backslashreplace").decode(encoding))
            stream.flush()
        except OSError:
            return  # standard error itself is closed or full: nowhere to say it
        except ValueError:  # the stream object was closed: its descriptor may not be
            with contextlib.suppress(OSError):
                os.write(2, line.encode("utf-8", "backslashreplace"))
            return
        except Exception:  # a replacement that does not work: try the original
            continue
        return


def _fail(status: Status, message: str, json_mode: bool) -> int:
    """Report a command that could not finish: one line on stderr, the JSON envelope, the page.

    From here on a Ctrl-C or ``SIGTERM`` is only counted: a burst of them
    cannot cut this short, nor say the command's end twice.
    """
    supervisor.leave_if_copy()
    signals_done()
    # It never raises: what plugin code broke (a function it rebound, a stream
    # it replaced) costs the part it broke, never the rest.
    with contextlib.suppress(BaseException):
        _error(message)
    begun = _BEGUN.get()
    if json_mode and not (begun is not None and begun.is_set()):
        # Not after what the command wrote already: one JSON object, not two.
        with contextlib.suppress(BaseException):
            _write(_json_text(envelope(status, _one_line(message)), sort_keys=False))
    page = _PAGE.get()
    if page is not None:
        path, source, command = page
        try:
            from fsaops.html_report import render_failure

            failure = render_failure(source, status.value, _one_line(message), command=command)
            _write_file(path, failure, "--html")
        except OutputError as exc:
            with contextlib.suppress(BaseException):
                _error(str(exc))
        except BaseException as exc:  # the failure is said already; this is said too
            with contextlib.suppress(BaseException):
                _error(
                    f"--html {shown_path(path)}: cannot write the failure's page: "
                    f"{describe_exception(exc)}"
                )
    return status.exit_code


def _cmd_bench(argv: list[str]) -> int:
    """``fsaops bench``: hand the arguments to the benchmark's own command line."""
    try:
        from fsaops.bench import main as bench_main
    except ImportError as exc:
        _error(f"the benchmark is not available: {exc}")
        return 2
    try:
        return bench_main(argv)
    except SystemExit as exc:  # --help, or arguments its parser refused
        return exc.code if isinstance(exc.code, int) else 0


# -- the last word -----------------------------------------------------------------------------

GRACE_SECONDS: Final = 2.0
"""How long a run may take to stop after its time limit before the process is ended."""


def _ender() -> Callable[[Status, str], None]:
    """A function that ends the process now, saying why: taken while the command runs.

    It writes the line on standard error, the JSON envelope and the
    ``--html`` failure page, then exits with the status's code, from any
    thread, whatever the run's own thread is doing.  Once the command has
    finished it does nothing: the command's own word stands.
    """
    json_mode = _JSON.get()
    out = _stdout()
    page = _PAGE.get()
    finished = _FINISHED.get()
    begun = _BEGUN.get()

    def end(status: Status, message: str) -> None:
        supervisor.leave_if_copy()
        if finished is None or finished.is_set():
            return
        finished.set()  # one word only, whoever comes first
        with contextlib.suppress(OSError, ValueError):
            os.write(2, f"fsaops: error: {_one_line(message)}\n".encode())
        said = begun is not None and begun.is_set()  # part of the output is out: no envelope
        if json_mode and out is not None and not _GONE.get() and not said:
            data = _json_text(envelope(status, _one_line(message)), sort_keys=False)
            with contextlib.suppress(OSError, ValueError):
                os.write(out.fileno(), data.encode())
        if page is not None:
            from fsaops.html_report import render_failure

            with contextlib.suppress(Exception):
                failure = render_failure(page[1], status.value, message, command=page[2])
                _write_file(page[0], failure, "")
        supervisor.answer(status.exit_code)
        REAL_EXIT(status.exit_code)

    return end


def _interrupted(signal_name: str) -> None:
    """The first Ctrl-C or ``SIGTERM``: arm the end of the process, as interrupted.

    If the command has not ended :data:`GRACE_SECONDS` later (plugin code
    swallowed the interruption), the process ends there.
    """
    end = _ender()
    begun = _BEGUN.get()

    def stop() -> None:
        said = _interrupted_said(signal_name)
        if begun is not None and begun.is_set():
            end(Status.INTERRUPTED, f"{said}; standard output took no more of the output; ended")
        else:
            end(Status.INTERRUPTED, f"{said}; plugin code kept the run going; ended")

    timer = threading.Timer(GRACE_SECONDS, stop)
    timer.daemon = True
    timer.start()
    _LOST_INTERRUPT[:] = [lambda: end(Status.INTERRUPTED, _interrupted_said(signal_name))]


_LOST_INTERRUPT: list[Callable[[], None]] = []
"""How to end the command as interrupted, once a signal has come (:func:`_unraisable`)."""


def _interrupted_said(signal_name: str) -> str:
    """``interrupted`` or ``terminated (SIGTERM)``, and where the signal found the run, if in one.

    Inside a scenario's run, the page being migrated (pfn, table, plugin,
    pass) or the phase, and plugin code's ``file:line`` when it was running
    (:func:`~fsaops.errors.interrupted_where`); elsewhere the word alone.
    """
    said = "interrupted" if signal_name == "SIGINT" else f"terminated ({signal_name})"
    return f"{said}{interrupted_where()}"


def _stuck_ender() -> Callable[[str], None] | None:
    """What the run calls when it was told to stop and plugin code kept it going (program only)."""
    if not _PROGRAM.get():
        return None
    end = _ender()

    def stuck(message: str) -> None:
        end(
            Status.TIMEOUT,
            f"{message}; it did not stop within {GRACE_SECONDS:g} s more (plugin code kept it "
            "running); ended",
        )

    return stuck


@contextmanager
def _last_resort(seconds: float) -> Iterator[None]:
    """If the run outlives its time limit by :data:`GRACE_SECONDS`, end the process.

    The time limit raises :class:`~fsaops.errors.RunTimeout` in the main
    thread; plugin code that swallows it again and again is stopped here:
    one line on standard error, the JSON envelope, and exit status 1.  Code
    that holds the interpreter for good cannot even be told; a few seconds
    later ``faulthandler``'s own thread, which needs no interpreter, ends
    the process with exit status 1.  Only for the program: a caller of
    :func:`main` keeps its process.
    """
    if not seconds or not _PROGRAM.get():
        yield
        return
    end = _ender()
    supervisor.tell("time limit", f"{seconds:g}")

    def overdue() -> None:
        end(
            Status.TIMEOUT,
            f"timeout: the run went past its time limit of {seconds:g} s and did not stop within "
            f"{GRACE_SECONDS:g} s more (plugin code kept it running); ended",
        )

    timer = threading.Timer(seconds + GRACE_SECONDS, overdue)
    timer.daemon = True
    timer.start()
    sink = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115 - closed below
    faulthandler.dump_traceback_later(seconds + 3 * GRACE_SECONDS, exit=True, file=sink)
    try:
        yield
    finally:
        timer.cancel()
        faulthandler.cancel_dump_traceback_later()
        sink.close()


_JSON: contextvars.ContextVar[bool] = contextvars.ContextVar("fsaops_json", default=False)
_FINISHED: contextvars.ContextVar[threading.Event | None] = contextvars.ContextVar(
    "fsaops_finished", default=None
)
"""Set once the command has said its word (its report, or its failure): nobody else may."""
_BEGUN: contextvars.ContextVar[threading.Event | None] = contextvars.ContextVar(
    "fsaops_begun", default=None
)
"""Set once the command began writing to standard output: no envelope may follow it."""
_PROGRAM: contextvars.ContextVar[bool] = contextvars.ContextVar("fsaops_program", default=False)


def _plugin_modules() -> dict[str, str]:
    """Each plugin's entry-point module, and its ``distribution[entry]`` (metadata only).

    Only the plugins whose code can run, when a registry says which: the
    selected ones, and those a selected one imported (it is built on them).
    A plugin nobody imported ran no code.
    """
    from fsaops.plugins import discover

    registry = _REGISTRY.get()
    selected = (
        None
        if registry is None
        else set(registry.selection) | {p.name for p in registry.plugins if p.imported_by}
    )
    found: dict[str, str] = {}
    try:
        for name, item in discover().items():
            if selected is not None and name not in selected:
                continue
            module = item.value.split(":")[0].strip()
            if module and module.split(".")[0] != "fsaops":
                found.setdefault(module, item.shown)
    except Exception:  # no plugin metadata to name anybody by
        return {}
    return found


def _table_owner(table: str | None) -> str | None:
    """The plugin (``dist[entry]``) that provides the table named ``table``, if one does."""
    registry = _REGISTRY.get()
    owner = None if table is None or registry is None else registry.table_owner(table)
    return None if owner is None else owner.label


def _culprit(exc: BaseException | None) -> tuple[str, str] | None:
    """The plugin (``dist[entry]``) and function of the innermost plugin frame that ``exc`` left."""
    if exc is None:
        return None
    modules = _plugin_modules()
    found = None
    tb: TracebackType | None = exc.__traceback__
    while tb is not None:
        frame = tb.tb_frame
        module = frame.f_globals.get("__name__")
        owner = plugin_of_module(modules, module) if isinstance(module, str) else None
        if owner is not None:
            found = owner, f"{module}.{frame.f_code.co_name}"
        tb = tb.tb_next
    return found


def _unexpected(exc: BaseException, json_mode: bool) -> int:
    """Something no handler expected (from plugin code, or a bug): one line, exit 1."""
    culprit = _culprit(exc)
    if culprit is None and (
        isinstance(exc, MemoryError)
        or (isinstance(exc, OSError) and exc.errno == errno.ENOMEM)
        # What threading raises when it cannot have the memory for a lock or a thread.
        or (
            isinstance(exc, RuntimeError)
            and str(exc) in ("can't allocate lock", "can't start new thread")
        )
    ):
        return _fail(
            Status.BAD_INPUT,
            "out of memory: the command needs more memory than this process may have "
            f"({describe_exception(exc)}); make what it reads smaller (the scenario, the "
            "reports, --pages)",
            json_mode,
        )
    what = f"SystemExit({exc.code!r})" if isinstance(exc, SystemExit) else describe_exception(exc)
    if culprit is not None:
        did = f"raised {what}"
        if isinstance(exc, ProcessEnded):
            did = f"called {exc.code}"
        message = f"the run failed: plugin {culprit[0]} {did} in {culprit[1]}"
    else:
        message = f"the command failed: {what}"
        limit = sys.getrecursionlimit()
        if isinstance(exc, RecursionError) and limit < _RECURSION_LIMIT:
            message += (
                f"; plugin code lowered the recursion limit to {limit} (it was "
                f"{_RECURSION_LIMIT}), and fsaops's own code ran out of it"
            )
    if isinstance(exc, ProcessEnded):
        message += f"; {exc.rule}"
    elif isinstance(exc, SystemExit | KeyboardInterrupt):
        message += "; plugin code may not end fsaops"
    return _fail(Status.KERNEL_BUG, message, json_mode)


class _Discard:
    """Where ``sys.stdout`` points when standard error is closed too."""

    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        """Nothing to flush."""

    def isatty(self) -> bool:
        return False


def _thread_failed(args: threading.ExceptHookArgs) -> None:
    """A thread (started by plugin code) ended with an exception: one line, no traceback."""
    if issubclass(args.exc_type, SystemExit):  # as Python does; os._exit is told of later
        return
    name = args.thread.name if args.thread is not None else "?"
    value = args.exc_value
    what = describe_exception(value) if value is not None else args.exc_type.__name__
    with contextlib.suppress(Exception):
        print(
            f"fsaops: warning: thread {name!r} ended with {_one_line(what)}",
            file=sys.__stderr__ if sys.stderr is None else sys.stderr,
        )


def _unraisable(args: Any) -> None:
    """An exception nobody could catch (a ``__del__`` of plugin code): one line, no traceback.

    The command's own interruption raised in a finalizer (a ``__del__``, a
    generator closed by the collector) is lost to the command: it ends
    there, as interrupted, rather than run on until the grace period ends
    and blame plugin code for it.
    """
    if args.exc_type is not None and issubclass(args.exc_type, KeyboardInterrupt):
        for end in _LOST_INTERRUPT:
            _end_on_a_thread(end)
    value = args.exc_value
    what = describe_exception(value) if value is not None else args.exc_type.__name__
    with contextlib.suppress(Exception):
        print(
            f"fsaops: warning: ignored {_one_line(what)}",
            file=sys.__stderr__ if sys.stderr is None else sys.stderr,
        )


def _end_on_a_thread(end: Callable[[], None]) -> None:
    """Call ``end`` (which ends the process) on a thread of its own, and wait for it.

    The code an interruption was lost in (plugin code's ``__del__``, an
    installed library's callback) is then not under the command's answer
    to its supervising parent, which takes no answer given with code other
    than fsaops's and the standard library's under it
    (:func:`fsaops.supervisor.answer`).  Where no thread can start, ``end``
    is called here.
    """
    thread = threading.Thread(target=end, name="fsaops-interrupted", daemon=True)
    try:
        thread.start()
    except RuntimeError:  # "can't start new thread": a limit of the system
        end()
        return
    thread.join()


def _whose(exc: KernelBug, cause: BaseException | None) -> str:
    """`` (plugin NAME, ...)``: the plugin whose table ``exc`` is about, else whose code raised."""
    owner = _table_owner(exc.table)
    if owner is not None:
        return f" (plugin {owner}, whose table {exc.table} it is)"
    culprit = _culprit(cause)
    return f" (plugin {culprit[0]}, in {culprit[1]})" if culprit else ""


def _run(command: Callable[[], int], json_mode: bool) -> int:
    """Run a command; every way it can end becomes an exit status and at most one line.

    A Ctrl-C or ``SIGTERM`` interrupts the command until it returns (the
    first one only); after that, it changes nothing (:func:`signals_live`).
    """
    try:
        with signals_live():
            return command()
    except RunTimeout as exc:
        return _fail(Status.TIMEOUT, str(exc), json_mode)
    except Deadlock as exc:
        return _fail(Status.KERNEL_BUG, str(exc), json_mode)
    except InvariantError as exc:
        return _fail(Status.INVARIANT_BROKEN, f"CONFIG_DEBUG_VM: {exc}", json_mode)
    except PluginFault as exc:
        where = _whose(exc, exc.__cause__)
        return _fail(Status.KERNEL_BUG, f"the run failed: {exc}{where}", json_mode)
    except KernelBug as exc:
        # Reached through plugin code (a table member that called into the model):
        # say whose, as for a plugin's own failure; or whose table it is about.
        where = _whose(exc, exc.__cause__ or exc)
        return _fail(Status.KERNEL_BUG, f"kernel BUG: {exc}{where}", json_mode)
    except FsaopsError as exc:
        return _fail(Status.BAD_INPUT, str(exc), json_mode)
    except OutputError as exc:
        _error(str(exc))
        return 1
    except KeyboardInterrupt as exc:
        if raised_by_code(exc):  # plugin code, not Ctrl-C
            return _unexpected(exc, json_mode)
        return _fail(Status.INTERRUPTED, _interrupted_said(interrupted_by()), json_mode)
    except BaseException as exc:  # plugin code (SystemExit, anything) or a bug of ours
        return _unexpected(exc, json_mode)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``); returns the exit status.

    Run as the program (``argv`` omitted), file descriptor 1 is standard
    error too while the command runs (the command's output goes to the
    real standard output through a descriptor of its own), and a thread
    that plugin code left running cannot keep the process from ending
    when the command is done.
    """
    program = argv is None
    args_list = list(sys.argv[1:] if argv is None else argv)
    json_mode = "--json" in args_list
    saved = sys.stdout
    saved_err = sys.stderr
    if program:
        # The parent waits there and exits.
        supervisor.supervise(_speaker(json_mode), _copies_speaker(json_mode))
        threading.excepthook = _thread_failed
        sys.unraisablehook = _unraisable
        with contextlib.suppress(ValueError):  # not the main thread: Ctrl-C is not ours
            watch_sigint(_interrupted, hold=True)  # raised in the command only, once
        guard_process()
        supervisor.ready()
    # Only this process writes the command's output: a copy of it made below
    # Python (a fork through ctypes) leaves at its first word.
    previous_run = supervisor.run_started()
    try:
        with _own_stdout(program) as out:
            out_token = _OUT.set(out)
            err_token = _ERR.set(sys.stderr)  # plugin code may replace sys.stderr later
            gone_token = _GONE.set(False)
            page_token = _PAGE.set(None)
            registry_token = _REGISTRY.set(None)
            umask_token = _UMASK.set(_umask())
            json_token = _JSON.set(json_mode)
            program_token = _PROGRAM.set(program)
            finished = threading.Event()
            finished_token = _FINISHED.set(finished)
            begun_token = _BEGUN.set(threading.Event())
            sys.stdout = sys.stderr if sys.stderr is not None else cast("TextIO", _Discard())
            try:
                status = _run(lambda: _main(args_list), json_mode)
            finally:
                finished.set()
                _FINISHED.reset(finished_token)
                _BEGUN.reset(begun_token)
                sys.stdout = saved
                # What plugin code made of sys.stderr (a stream that blocks, one
                # it closed) must not stop the command from ending.
                sys.stderr = saved_err
                _OUT.reset(out_token)
                _ERR.reset(err_token)
                _GONE.reset(gone_token)
                _PAGE.reset(page_token)
                _REGISTRY.reset(registry_token)
                _UMASK.reset(umask_token)
                _JSON.reset(json_token)
                _PROGRAM.reset(program_token)
        if program:
            _settle_stderr()
            _exit_now(status)
    finally:  # main() called as a library: the caller's process is no run any more
        supervisor.run_started(previous_run)
    return status


def _set_page(path: str, source: str, command: str) -> None:
    """From here on, a command that fails says so on the ``--html`` page ``path`` too."""
    _PAGE.set((path, source, command))
    supervisor.tell("html", path)
    supervisor.tell("html source", source)
    supervisor.tell("html command", command)


def _speaker(json_mode: bool) -> Callable[[supervisor.Unanswered], int]:
    """What the supervising parent says when the command's process ends without its status."""

    def speak(ended: supervisor.Unanswered) -> int:
        limit = ended.facts.get("time limit")
        phase = ended.facts.get("phase")
        where = f" while {phase}" if phase else ""
        if (
            limit is not None
            and ended.exit_status == 1
            and ended.seconds >= float(limit) + GRACE_SECONDS
        ):
            status = Status.TIMEOUT
            message = (
                f"timeout: the run went past its time limit of {limit} s and plugin code held "
                "the interpreter, so that nothing could stop it; its process was ended"
            )
        elif ended.held:
            # The run's watchdog could not beat for want of the interpreter.
            status = Status.TIMEOUT
            message = f"stuck{where}: {ended.describe()}; it has no report"
        elif ended.not_ending:
            # Ctrl-C or kill, and plugin code held the interpreter in C: it never heard it.
            status = Status.INTERRUPTED
            first = ended.received[0]
            said = "interrupted" if first == "SIGINT" else f"terminated ({first})"
            message = f"{said}{where}: {ended.describe()}; it has no report"
        elif ended.stopped_by is not None:
            status = Status.KERNEL_BUG
            message = (
                f"{ended.describe()}: plugin code stopped its own process, or a signal was sent "
                "to that process alone; it has no report"
            )
        elif ended.signal_name is not None and ended.signal_name in ended.received:
            # Ctrl-C or kill, with the run's own handler taken away by native code.
            status = Status.INTERRUPTED
            said = "interrupted" if ended.signal_name == "SIGINT" else "terminated"
            message = f"{said} ({ended.signal_name}){where}: {ended.describe()}; it has no report"
        elif ended.signal_name is not None:
            status = Status.KERNEL_BUG
            message = (
                f"{ended.describe()}: a crash in native code, a signal sent to it, or the "
                "system (out of memory) ended it; it has no report"
            )
        else:
            status = Status.KERNEL_BUG
            message = (
                f"{ended.describe()}: code fsaops cannot guard ended it (such as the C "
                "library's _exit called through ctypes); it has no report"
            )
        return _say_for_the_run(status, message, ended.facts, json_mode)

    return speak


def _copies_speaker(json_mode: bool) -> Callable[[supervisor.Copies], int]:
    """What the supervising parent says when plugin code copied the command's process."""

    def speak(copies: supervisor.Copies) -> int:
        status = Status.KERNEL_BUG
        _say_for_the_run(status, copies.describe(), copies.facts, json_mode)
        return copies.given if copies.given != 0 else status.exit_code

    return speak


def _say_for_the_run(
    status: Status, message: str, facts: Mapping[str, str], json_mode: bool
) -> int:
    """The supervising parent's word for the run: its line, its envelope, its page."""
    with contextlib.suppress(OSError):
        os.write(2, f"fsaops: error: {message}\n".encode())
    if json_mode and "begun" not in facts:
        data = _json_text(envelope(status, message), sort_keys=False)
        with contextlib.suppress(OSError):
            os.write(1, data.encode())
    path = facts.get("html")
    if path is not None:
        from fsaops.html_report import render_failure

        source = facts.get("html source", "")
        command = facts.get("html command", "migrate")
        with contextlib.suppress(Exception):
            failure = render_failure(source, status.value, message, command=command)
            _write_file(path, failure, "--html")
    return status.exit_code


def _no_exit_called() -> None:
    """Fail the run if plugin code tried to end, replace or fork the process, even if it went on."""
    if refused_calls():  # the plugins' modules are read only then
        said = refused_in("during the run", _plugin_modules())
        if said is not None:
            raise PluginFault(said)


def _exit_now(status: int) -> NoReturn:
    """End the program with ``status`` once the command is done, without freeing its objects.

    The exit functions run (logging's handlers are flushed and closed, as at
    a normal exit) and both streams are flushed; then ``os._exit`` ends the
    process.  A normal exit would free a large run's millions of objects one
    by one (a quarter of a second for 100,000 pages), for nothing.  It also
    means that a thread plugin code left running cannot keep the process
    alive, and that after Ctrl-C exit status 130 holds (CPython ends a
    process whose KeyboardInterrupt ever escaped an exec() of a string, as
    an import that dataclasses or typing were building code in, by killing
    itself with SIGINT at exit, although the interrupt was handled).
    The command's output is flushed first; what exit functions (plugin
    code's among them) print after it goes to standard error, as what plugin
    code prints during the command does, so that it never follows a JSON
    report on standard output.
    """
    supervisor.leave_if_copy()  # the answer is the run's: a copy of it gives none
    with contextlib.suppress(ValueError):  # the command is done: a late Ctrl-C changes nothing
        for signum in INTERRUPTS:
            signal.signal(signum, signal.SIG_IGN)
    _flush_both()
    supervisor.answer(status)
    try:
        os.dup2(2, 1)
    except OSError:  # standard error is closed: what is printed goes nowhere
        with contextlib.suppress(OSError):
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, 1)
            os.close(null)
    if sys.stderr is not None:
        sys.stdout = sys.stderr
    # Exit functions that never return (plugin code's sleep or loop) must
    # not keep a finished command alive, now that no signal can end it.
    limit = threading.Timer(EXIT_FUNCTIONS_SECONDS, _exit_functions_overran, (status,))
    limit.daemon = True
    with contextlib.suppress(RuntimeError):  # no thread to be had: the functions run unwatched
        limit.start()
    with contextlib.suppress(Exception):
        atexit._run_exitfuncs()
    limit.cancel()
    _flush_both()
    supervisor.continue_parent()  # an exit function may have stopped the program
    REAL_EXIT(status)


EXIT_FUNCTIONS_SECONDS: Final = 5.0
"""Seconds the exit functions may take once a command is done (then the process ends)."""


def _exit_functions_overran(status: int) -> None:
    with contextlib.suppress(Exception):
        os.write(
            2,
            f"fsaops: warning: the exit functions did not finish within "
            f"{EXIT_FUNCTIONS_SECONDS:g} s; ending anyway\n".encode(),
        )
    supervisor.continue_parent()
    REAL_EXIT(status)


def _flush_both() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            if stream is not None:
                stream.flush()


def _settle_stderr() -> None:
    """Leave nothing in standard error's buffer that the interpreter would fail to flush at exit.

    A line that could not be written to a full or broken standard error
    stays buffered; CPython would then end the process with status 120
    instead of the command's own. What cannot be said is dropped.
    """
    stream = sys.stderr
    if stream is None:
        return
    try:
        stream.flush()
    except (OSError, ValueError):
        with contextlib.suppress(OSError, ValueError, AttributeError):
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, stream.fileno())
            os.close(null)
            stream.flush()


_IDENTITY: dict[int, tuple[int, int]] = {}
"""The file the command's own standard output was, by stream (device, inode)."""

_HIGH_FD: Final = 512
"""Where the command's own standard output is kept: above the descriptors code opens."""


def _dup_high(fd: int) -> int:
    """A copy of descriptor ``fd`` at ``_HIGH_FD`` or above, where it can (else anywhere)."""
    import fcntl

    try:
        return fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, _HIGH_FD)
    except (OSError, ValueError):  # fewer descriptors allowed than that
        return os.dup(fd)


def _still_ours(stream: TextIO) -> None:
    """Raise :class:`OutputError` if plugin code closed the command's standard output.

    Its descriptor, closed (``os.closerange``) and reused by a file plugin
    code opened, would take the report into that file.
    """
    identity = _IDENTITY.get(id(stream))
    if identity is None:
        return
    try:
        st = os.fstat(stream.fileno())
        same = (st.st_dev, st.st_ino) == identity
    except (OSError, ValueError):
        same = False
    if not same:
        raise OutputError(
            "cannot write to standard output: plugin code closed the descriptor fsaops "
            "writes its output to"
        )


@contextmanager
def _own_stdout(program: bool) -> Iterator[TextIO | None]:
    """Standard output for the command's own output; descriptor 1 points at standard error.

    Only for the program, when ``sys.stdout`` is descriptor 1: then what
    plugin code writes to descriptor 1 directly lands on standard error
    too, and cannot corrupt a JSON report.  Descriptor 1 is left so when
    the command is done, since the program ends next.
    """
    out = sys.stdout
    if not program or out is None:
        yield out
        return
    try:
        if out.fileno() != 1:
            raise OSError("not descriptor 1")
        out.flush()
        real = _dup_high(1)
        seen = os.fstat(real)
    except (OSError, ValueError, AttributeError):
        yield out
        return
    try:
        if sys.stderr is None:
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, 1)
            os.close(null)
        else:
            os.dup2(2, 1)
        stream = open(real, "w", encoding=out.encoding, errors=out.errors)  # noqa: SIM115
    except (OSError, ValueError, LookupError):
        with contextlib.suppress(OSError):
            os.dup2(real, 1)
            os.close(real)
        yield out
        return
    _IDENTITY[id(stream)] = (seen.st_dev, seen.st_ino)
    try:
        yield stream
    finally:
        # Descriptor 1 stays where it points: the program ends next, and a
        # thread plugin code left writing to it would follow the report.
        _IDENTITY.pop(id(stream), None)
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
        with contextlib.suppress(OSError, ValueError):
            stream.close()


def _page_of_rejected(args_list: list[str]) -> None:
    """Have a command line argparse rejected say so on its ``--html`` page, if it names one.

    The command has no report, and a page an earlier run left there must
    not stand for it, as for a scenario that does not parse.  Only a
    ``migrate`` or ``diff`` naming one page that can be written, over no
    file the command line names: otherwise the line on standard error
    stands alone.
    """
    from fsaops.errors import FsaopsError

    command, rest = (args_list[0], args_list[1:]) if args_list else ("", [])
    if command not in ("migrate", "diff"):
        return
    pages: list[tuple[int, str]] = []  # where the page is named, and the page
    for i, arg in enumerate(rest):
        if arg == "--":
            break
        if arg == "--html" and i + 1 < len(rest) and not rest[i + 1].startswith("-"):
            pages.append((i + 1, rest[i + 1]))
        elif arg.startswith("--html="):
            pages.append((i, arg.removeprefix("--html=")))
    if len(pages) != 1:  # none, or given twice: which one is not known
        return
    (at, page), reads = pages[0], {}
    for i, arg in enumerate(rest):  # every other word may be a file it reads: not over one
        if i != at:
            reads[f"the file {arg}"] = arg.removeprefix("--html=")
    try:
        html = _output_file(page, "--html", reads=reads)
    except FsaopsError:
        return
    line = shlex.join(rest)
    shown = line if len(line) <= 200 else line[:200] + "..."
    _set_page(html, printable(shown), command)


def _prog_of(exc: UsageError, args_list: list[str]) -> str:
    """The command whose ``--help`` an error sends the user to.

    Words left over (``unrecognized arguments``) are refused by the top
    parser, once the command's own has parsed what it knows: the command's
    help is the one that lists its options.
    """
    prog = exc.prog
    if prog != "fsaops" or not str(exc).startswith("unrecognized arguments"):
        return prog
    words = list(itertools.takewhile(lambda word: not word.startswith("-"), args_list))
    if words[:1] in (["migrate"], ["plugins"], ["diff"], ["explore"]):
        return f"fsaops {words[0]}"
    if words[:1] == ["config"]:
        return "fsaops config" + (f" {words[1]}" if len(words) > 1 and words[1] == "check" else "")
    return prog


def _main(args_list: list[str]) -> int:
    if args_list[:1] == ["bench"]:
        return _cmd_bench(args_list[1:])
    parser = _parser()
    try:
        args = parser.parse_args(args_list)
    except UsageError as exc:
        message = f"{exc} (see {_prog_of(exc, args_list)} --help)"
        _page_of_rejected(args_list)
        return _fail(Status.BAD_INPUT, message, "--json" in args_list)
    except SystemExit as exc:  # --help, --version
        return exc.code if isinstance(exc.code, int) else 0
    commands = {
        "migrate": _cmd_migrate,
        "plugins": _cmd_plugins,
        "config": _cmd_config_check,
        "diff": _cmd_diff,
        "explore": _cmd_explore,
    }
    json_mode = bool(getattr(args, "json", False))
    _JSON.set(json_mode)
    return _run(lambda: commands[args.command](args), json_mode)
