"""The engine's logger is structlog's, built (structlog imported) at the first event it writes."""

from __future__ import annotations

import io
import json
import logging
import sys
from typing import Any

import pytest
import structlog

import guarded
from fsaops.enginelog import DeferredLog, engine_logger


def _counting(build: Any) -> tuple[DeferredLog, list[int]]:
    calls: list[int] = []

    def counted() -> Any:
        calls.append(1)
        return build()

    return DeferredLog(counted, logging.WARNING), calls


def test_an_event_below_the_level_builds_nothing() -> None:
    out = io.StringIO()
    log, built = _counting(lambda: _eager("json", logging.WARNING, out))
    assert not log.is_enabled_for(logging.INFO)
    assert log.is_enabled_for(logging.WARNING)
    assert log.info("mm_migrate_page", pfn=3) is None
    assert log.debug("x") is None
    assert log.msg("x") is None  # structlog's msg() is info()
    assert log.bind(run=1).info("y") is None
    assert (built, out.getvalue()) == ([], "")
    log.warning("z", pfn=4)
    log.error("w")
    assert built == [1]  # once
    assert [json.loads(line)["event"] for line in out.getvalue().splitlines()] == ["z", "w"]


def test_each_name_of_a_level_is_dropped_where_structlog_drops_it() -> None:
    names = ("debug", "info", "msg", "warning", "warn", "error", "exception", "critical", "fatal")
    for name in names:
        out, ref = io.StringIO(), io.StringIO()
        log, built = _counting(lambda out=out: _eager("json", logging.WARNING, out))
        getattr(log, name)("event", name=name)
        getattr(_eager("json", logging.WARNING, ref), name)("event", name=name)
        assert out.getvalue() == ref.getvalue(), name
        assert built == ([1] if ref.getvalue() else []), name
    log, _built = _counting(lambda: _eager("json", logging.WARNING, io.StringIO()))
    with pytest.raises(AttributeError):
        log.err("no such method in structlog's filtering logger")


def test_what_is_written_is_what_the_structlog_logger_writes() -> None:
    for fmt in ("json", "console"):
        deferred, eager = io.StringIO(), io.StringIO()
        log = engine_logger(fmt, "info", deferred)
        same = _eager(fmt, logging.INFO, eager)
        for logger in (log, same):
            logger.bind(run=7, table="ext2_aops").info("migrated", pages=3)
            logger.debug("hidden")
            logger.warning("slow", seconds=2.5)
        assert deferred.getvalue() == eager.getvalue() != ""


def test_a_tap_sees_every_event_and_the_stream_only_those_at_the_level() -> None:
    seen: list[tuple[str, str]] = []

    def tap(_logger: Any, method: str, event: Any) -> Any:
        seen.append((method, event["event"]))
        return event

    out = io.StringIO()
    log = engine_logger("json", "warning", out, tap=tap)
    assert log.is_enabled_for(logging.DEBUG)
    log.debug("a")
    log.warning("b")
    assert seen == [("debug", "a"), ("warning", "b")]
    assert [json.loads(line)["event"] for line in out.getvalue().splitlines()] == ["b"]


def test_a_run_that_logs_nothing_never_imports_structlog() -> None:
    code = (
        "import sys\n"
        "from fsaops.cli import main\n"
        "rc = main(['migrate', '--json'])\n"
        "print(rc, 'structlog' in sys.modules)\n"
        "from fsaops.enginelog import engine_logger\n"
        "engine_logger('console', 'warning', sys.stderr).warning('now')\n"
        "print('structlog' in sys.modules)\n"
    )
    done = guarded.run([sys.executable, "-c", code])
    assert done.stdout.splitlines()[-2:] == ["0 False", "True"], done.stderr[-2000:]
    assert "now" in done.stderr


def _eager(fmt: str, level: int, stream: io.StringIO) -> Any:
    renderer: Any = (
        structlog.processors.JSONRenderer(sort_keys=True)
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    return structlog.wrap_logger(
        structlog.PrintLogger(file=stream),
        processors=[structlog.processors.add_log_level, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(level),
    )
