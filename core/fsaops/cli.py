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
import json
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, NoReturn, TextIO

import attrs

from fsaops import __version__
from fsaops.errors import Deadlock, FsaopsError, KernelBug

if TYPE_CHECKING:
    from rich.console import Console

    from fsaops.config import Config
    from fsaops.plugins import Registry
    from fsaops.scenario import Progress

__all__ = ["main"]

LOG_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}


class UsageError(Exception):
    """A command line that argparse rejected."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {value}")
    return value


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

    config = sub.add_parser("config", help="work with scenario files")
    config_sub = config.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    check = config_sub.add_parser(
        "check",
        help="check a scenario file",
        description="Check a scenario file: syntax, keys, values, and the filesystems "
        "against the selected plugins.",
    )
    check.add_argument("file", metavar="FILE")
    check.add_argument("--plugins", metavar="NAME,...", help=plugins_help)

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
    from fsaops.config import check_plugin_names
    from fsaops.plugins import discover, load_plugins

    load = None
    migration = True
    if config is not None:
        check_plugin_names(config, discover(), source or "")
        load = list(config.plugins.load) if config.plugins.load is not None else None
        migration = config.kernel.migration
    return load_plugins(cli=cli, config=load, migration=migration, strict=strict)


def _logger(fmt: str, level: str, stream: TextIO) -> Any:
    import structlog

    renderer: Any
    if fmt == "json":
        renderer = structlog.processors.JSONRenderer(sort_keys=True)
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=stream.isatty())
    logger = structlog.wrap_logger(
        structlog.PrintLogger(file=stream),
        processors=[structlog.processors.add_log_level, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(LOG_LEVELS[level]),
    )
    return logger.bind()


def _stdout_console() -> Console:
    from rich.console import Console

    width = None if sys.stdout.isatty() else 120
    return Console(file=sys.stdout, width=width, highlight=False)


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
        console=Console(file=sys.stderr),
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
    from fsaops.config import check_config
    from fsaops.errors import MigrationDisabled
    from fsaops.report import render
    from fsaops.scenario import run_scenario

    config, source = _read_config(args.scenario)
    if args.debug_vm:
        config = attrs.evolve(config, kernel=attrs.evolve(config.kernel, debug_vm=True))
    registry = _load(config, source, args.plugins)
    check_config(config, registry, source)
    if not config.kernel.migration:
        raise MigrationDisabled(
            f"{source}: kernel.migration = false: this kernel is built without "
            "CONFIG_MIGRATION, so migrate_pages returns -ENOSYS (ENOSYS, function not "
            "implemented); set kernel.migration = true"
        )
    log = _logger(args.log_format, args.log_level, sys.stderr)
    show_progress = (
        sys.stderr.isatty()
        and not args.json
        and not args.no_progress
        and LOG_LEVELS[args.log_level] >= logging.WARNING
    )
    with _progress_bar(show_progress) as progress:
        report = run_scenario(
            config, registry, seed=args.seed, source=source, log=log, progress=progress
        )
    if args.json:
        sys.stdout.write(report.dumps())
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
                "status": info.status,
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
                if mode == fs["default_mode"] and len(modes) > 1:
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
    from fsaops.plugins import ENV_VAR

    config = None
    if args.config is not None:
        config, _ = _read_config(args.config)
    registry = _load(config, args.config, args.plugins, strict=False)
    if args.plugins is not None:
        selected_by = "--plugins"
    elif ENV_VAR in os.environ:
        selected_by = ENV_VAR
    elif config is not None and config.plugins.load is not None:
        selected_by = f"[plugins] load in {args.config}"
    else:
        selected_by = "default: every installed plugin"
    data = _plugins_data(registry, selected_by)
    if args.json:
        sys.stdout.write(json.dumps(data, sort_keys=True, indent=2) + "\n")
    else:
        _render_plugins(data, _stdout_console())
    failed = registry.failures
    if failed:
        _error(failed[0].error or f"plugin {failed[0].label} failed to load")
        return 2
    return 0


def _cmd_config_check(args: argparse.Namespace) -> int:
    from fsaops.config import check_config, format_size, page_cache_pages

    config, source = _read_config(args.file)
    registry = _load(config, source, args.plugins)
    check_config(config, registry, source)
    pages = page_cache_pages(config, registry) + config.processes.anon_pages
    print(
        f"{source}: OK: {len(config.mount)} mount(s), {pages} pages on node "
        f"{config.migrate.from_node} of {config.node_pages} "
        f"({format_size(config.kernel.node_memory)}); plugins: "
        f"{', '.join(registry.selection) or 'none'}"
    )
    if not config.kernel.migration:
        print(f"{source}: note: kernel.migration = false, so `fsaops migrate` stops with ENOSYS")
    return 0


def _error(message: str) -> None:
    text = " ".join(message.split())
    print(f"fsaops: error: {text}", file=sys.stderr)


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
        _error(f"{exc} (see fsaops --help)")
        return 2
    except SystemExit as exc:  # --help, --version
        return exc.code if isinstance(exc.code, int) else 0
    commands = {
        "migrate": _cmd_migrate,
        "plugins": _cmd_plugins,
        "config": _cmd_config_check,
    }
    try:
        return commands[args.command](args)
    except Deadlock as exc:
        _error(str(exc))
        return 1
    except KernelBug as exc:
        _error(f"kernel BUG: {exc}")
        return 1
    except FsaopsError as exc:
        _error(str(exc))
        return 2
    except KeyboardInterrupt:
        _error("interrupted")
        return 130
    except BrokenPipeError:
        return 0
