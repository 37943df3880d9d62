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

Exit status: 0 when the command did its work (for ``migrate``: nothing was
lost and every invariant holds; pages that could not move are a normal
outcome), 1 when data was lost or an invariant broke, 2 for bad input
(a bad file, key or value, an unknown or broken plugin, migration compiled
out).  Errors are one line on standard error, ``fsaops: error: ...``.

This is the only place fsaops configures logging: the per-page event
stream goes to standard error, filtered by ``--log-level``, as
``--log-format`` says.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import IO, TYPE_CHECKING, Any, NoReturn, TextIO, cast

import attrs

from fsaops import __version__
from fsaops.errors import Deadlock, FsaopsError, InvariantError, KernelBug
from fsaops.status import Status, envelope

if TYPE_CHECKING:
    from rich.console import Console

    from fsaops.config import Config
    from fsaops.plugins import Registry
    from fsaops.scenario import Progress
    from fsaops.typing import EngineLog

__all__ = ["main"]

LOG_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}


class UsageError(Exception):
    """A command line that argparse rejected; ``prog`` is the command whose help to see."""

    def __init__(self, message: str, prog: str) -> None:
        super().__init__(message)
        self.prog = prog


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message, self.prog)


EXIT_STATUS = """\
exit status:
  0    the run completed and nothing was lost (pages that could not move are a
       normal outcome; the report says which and why)
  1    data was lost, an invariant broke, the model hit a kernel BUG() or a
       deadlock, a plugin crashed the run, the run timed out, or (with
       --strict) a table did something wrong that lost nothing
  2    bad input: the command line, the scenario, a value, or a plugin
  130  interrupted (Ctrl-C)
with --json, every exit prints one JSON object on standard output: the report,
or {"schema", "status", "error"}"""


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {value}")
    return value


def _semantics(text: str) -> str:
    from fsaops.semantics import SEMANTICS, semantics_names

    if text not in SEMANTICS:
        raise argparse.ArgumentTypeError(
            f"unknown semantics {text!r}: expected one of {semantics_names()}"
        )
    return text


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
        "--debug-vm",
        action="store_true",
        help="check every invariant after every page (CONFIG_DEBUG_VM; slow): the first "
        "broken one names the page, its table and the path taken, and exits 1",
    )

    plugins = sub.add_parser(
        "plugins",
        help="list the installed plugins",
        description="List every installed plugin: loaded, not loaded or failed, its "
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

    sub.add_parser(
        "bench",
        help="measure the engine's performance figures (fsaops bench --help)",
        add_help=False,
    )
    return parser


# -- shared steps ------------------------------------------------------------------


def _read_config(path: str | None) -> tuple[Config, str]:
    from fsaops.config import BUILTIN_SOURCE, default_config, load_config

    if path is None:
        return default_config(), BUILTIN_SOURCE
    return load_config(path), path


def _load(
    config: Config | None, source: str | None, cli: str | None, *, strict: bool = True
) -> Registry:
    from fsaops.plugins import load_plugins

    load = None
    migration = True
    if config is not None:
        load = list(config.plugins.load) if config.plugins.load is not None else None
        migration = config.kernel.migration
    return load_plugins(
        cli=cli, config=load, config_source=source, migration=migration, strict=strict
    )


def _logger(fmt: str, level: str, stream: TextIO) -> EngineLog:
    import structlog

    renderer: structlog.typing.Processor
    if fmt == "json":
        renderer = structlog.processors.JSONRenderer(sort_keys=True)
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=_isatty(stream))
    logger: EngineLog = structlog.wrap_logger(
        structlog.PrintLogger(file=stream),
        processors=[structlog.processors.add_log_level, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(LOG_LEVELS[level]),
    )
    return logger


def _stdout_console() -> Console:
    from rich.console import Console

    if sys.stdout is None:
        raise OutputError("standard output is closed")
    width = None if _isatty(sys.stdout) else 120
    return Console(file=cast("IO[str]", _Checked(sys.stdout)), width=width, highlight=False)


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
        console=Console(file=sys.stderr),  # only on a terminal: see _isatty
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
    from fsaops.errors import MigrationDisabled
    from fsaops.report import render
    from fsaops.scenario import plan_scenario, run_plan

    config, source = _read_config(args.scenario)
    if args.debug_vm:
        config = attrs.evolve(config, kernel=attrs.evolve(config.kernel, debug_vm=True))
    if args.strict:
        config = attrs.evolve(config, kernel=attrs.evolve(config.kernel, strict=True))
    if args.semantics is not None:
        config = attrs.evolve(config, kernel=attrs.evolve(config.kernel, semantics=args.semantics))
    registry = _load(config, source, args.plugins)
    plan = plan_scenario(config, registry, source)
    if not config.kernel.migration:
        raise MigrationDisabled(
            f"{source}: kernel.migration = false: this kernel is built without "
            "CONFIG_MIGRATION, so migrate_pages returns -ENOSYS (ENOSYS, function not "
            "implemented); set kernel.migration = true"
        )
    log = _logger(args.log_format, args.log_level, sys.stderr)
    show_progress = (
        _isatty(sys.stderr)
        and not args.json
        and not args.no_progress
        and LOG_LEVELS[args.log_level] >= logging.WARNING
    )
    with _progress_bar(show_progress) as progress:
        report = run_plan(plan, seed=args.seed, log=log, progress=progress)
    if args.json:
        _write(report.dumps())
    else:
        render(report, _stdout_console())
    return report.exit_status


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
    heading.append(f"  selected by {data['selected_by']}\n", style="cyan")
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
    styles = {"loaded": "green", "not loaded": "dim", "failed": "bold red"}
    for plugin in data["plugins"]:
        label = Text(plugin["label"], style="bold")
        label.append(f" {plugin['version']}", style="dim")
        status = Text(plugin["status"], style=styles.get(plugin["status"], ""))
        error = Text(plugin["error"] or "", style="red")
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
                    entry["table"],
                    Text(member) if member else Text("none", style="yellow"),
                    end_section=last,
                )
    console.print(table)


def _cmd_plugins(args: argparse.Namespace) -> int:

    config = None
    if args.config is not None:
        config, _ = _read_config(args.config)
    registry = _load(config, args.config, args.plugins, strict=False)
    selected_by = {
        "[plugins] load": f"[plugins] load in {args.config}",
        "installed": "default: every installed plugin",
    }.get(registry.selected_by, registry.selected_by)
    data = _plugins_data(registry, selected_by)
    failed = registry.failures
    if args.json:
        status = Status.BAD_INPUT if failed else Status.OK
        extra = {"error": failed[0].error} if failed else {}
        _write(json.dumps({**envelope(status), **extra, **data}, sort_keys=True, indent=2) + "\n")
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
    registry = _load(config, source, args.plugins)
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
        _write(json.dumps(data, sort_keys=True, indent=2) + "\n")
        return 0
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


class OutputError(Exception):
    """Standard output cannot be written (closed, full, or gone)."""


def _write(text: str) -> None:
    """Write to standard output and flush, turning a failure into :class:`OutputError`."""
    stream = sys.stdout
    if stream is None:
        raise OutputError("standard output is closed")
    try:
        stream.write(text)
        stream.flush()
    except BrokenPipeError:
        raise
    except (OSError, ValueError) as exc:
        raise OutputError(str(exc) or type(exc).__name__) from None


def _isatty(stream: TextIO | None) -> bool:
    try:
        return stream is not None and stream.isatty()
    except (OSError, ValueError):
        return False


MAX_MESSAGE = 2000
"""Characters of an error message shown; longer ones are cut (a value can be huge)."""


def _error(message: str) -> None:
    text = " ".join(message.split())
    if len(text) > MAX_MESSAGE:
        text = text[:MAX_MESSAGE] + f"... ({len(text) - MAX_MESSAGE} more characters)"
    stream = sys.stderr
    if stream is None:
        return
    try:
        print(f"fsaops: error: {text}", file=stream)
        stream.flush()
    except (OSError, ValueError):
        pass


def _fail(status: Status, message: str, json_mode: bool) -> int:
    """Report a command that could not finish: one line on stderr, and the JSON envelope."""
    _error(message)
    if json_mode:
        with contextlib.suppress(OutputError, BrokenPipeError):
            _write(json.dumps(envelope(status, " ".join(message.split())), indent=2) + "\n")
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
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``); returns the exit status."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["bench"]:
        return _cmd_bench(args_list[1:])
    parser = _parser()
    try:
        args = parser.parse_args(args_list)
    except UsageError as exc:
        message = f"{exc} (see {exc.prog} --help)"
        return _fail(Status.BAD_INPUT, message, "--json" in args_list)
    except SystemExit as exc:  # --help, --version
        return exc.code if isinstance(exc.code, int) else 0
    commands = {
        "migrate": _cmd_migrate,
        "plugins": _cmd_plugins,
        "config": _cmd_config_check,
    }
    json_mode = bool(getattr(args, "json", False))
    try:
        return commands[args.command](args)
    except Deadlock as exc:
        return _fail(Status.KERNEL_BUG, str(exc), json_mode)
    except InvariantError as exc:
        return _fail(Status.INVARIANT_BROKEN, f"CONFIG_DEBUG_VM: {exc}", json_mode)
    except KernelBug as exc:
        return _fail(Status.KERNEL_BUG, f"kernel BUG: {exc}", json_mode)
    except FsaopsError as exc:
        return _fail(Status.BAD_INPUT, str(exc), json_mode)
    except OutputError as exc:
        _error(f"cannot write to standard output: {exc}")
        return 1
    except KeyboardInterrupt:
        return _fail(Status.INTERRUPTED, "interrupted", json_mode)
    except BrokenPipeError:
        return 0
