"""The engine's logger as the command line builds it: structlog, imported at the first event.

A run's engine events go to a structlog filtering bound logger (the
library never configures logging; the command line builds the logger and
passes it in).  Most runs log nothing at the level asked for, so
:func:`engine_logger` returns a :class:`DeferredLog`: it answers
``is_enabled_for`` and drops an event below its level itself, as the
filtering logger would, and builds the structlog logger (importing
structlog, a few hundredths of a second) only when an event is to be
written.  What is written is what the structlog logger writes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, TextIO, cast

if TYPE_CHECKING:
    import structlog

    from fsaops.typing import EngineLog

__all__ = ["LOG_LEVELS", "DeferredLog", "engine_logger"]

LOG_LEVELS: Final = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}
"""The levels ``--log-level`` takes, by name."""

_METHOD_LEVELS: Final = {
    **LOG_LEVELS,
    # structlog's filtering logger's other names for its levels.
    "warn": logging.WARNING,
    "exception": logging.ERROR,
    "fatal": logging.CRITICAL,
    "msg": logging.INFO,
}


class DeferredLog:
    """A filtering bound logger built at its first event at or above ``level``.

    Below ``level`` an event method returns ``None`` without building
    anything; ``bind`` returns another deferred logger with the context
    added.  Anything else is the built logger's.

    Args:
        build: makes the structlog logger (called at most once).
        level: the lowest level written.
        context: the context bound so far.
    """

    __slots__ = ("_build", "_context", "_level", "_logger")

    def __init__(
        self, build: Callable[[], Any], level: int, context: dict[str, Any] | None = None
    ) -> None:
        self._build = build
        self._level = level
        self._context = {} if context is None else context
        self._logger: Any = None

    def __repr__(self) -> str:
        state = "built" if self._logger is not None else "not built yet"
        return f"<DeferredLog level={logging.getLevelName(self._level)} {state}>"

    def is_enabled_for(self, level: int) -> bool:
        """Whether an event at ``level`` is written."""
        return level >= self._level

    def get_effective_level(self) -> int:
        """The lowest level written."""
        return self._level

    def bind(self, **new_values: Any) -> DeferredLog:
        """The same logger with ``new_values`` added to its context (still deferred)."""
        return DeferredLog(self._build, self._level, {**self._context, **new_values})

    def built(self) -> Any:
        """The structlog logger, built (and structlog imported) the first time it is asked for."""
        if self._logger is None:
            logger = self._build()
            self._logger = logger.bind(**self._context) if self._context else logger
        return self._logger

    def __getattr__(self, name: str) -> Any:
        level = _METHOD_LEVELS.get(name)
        if level is not None and level < self._level:
            return _dropped
        return getattr(self.built(), name)


def _dropped(*_args: Any, **_kw: Any) -> None:
    """An event below the logger's level: nothing is written, as structlog's filter does."""


def engine_logger(
    fmt: str,
    level: str,
    stream: TextIO,
    tap: structlog.typing.Processor | None = None,
    *,
    colors: bool = False,
) -> EngineLog:
    """The engine's logger at ``level``, writing to ``stream``; ``tap`` sees every event.

    ``fmt`` is ``json`` (one JSON object a line) or ``console`` (structlog's
    console renderer, in colour with ``colors``).  With ``tap``, every event,
    ``debug`` ones included, goes to it before the filter.
    """
    lowest = LOG_LEVELS[level]
    if tap is not None:
        lowest = logging.DEBUG

    def build() -> Any:
        return _structlog_logger(fmt, LOG_LEVELS[level], stream, tap, colors)

    return cast("EngineLog", DeferredLog(build, lowest))


def _structlog_logger(
    fmt: str, shown: int, stream: TextIO, tap: structlog.typing.Processor | None, colors: bool
) -> EngineLog:
    import structlog

    renderer: structlog.typing.Processor
    if fmt == "json":
        renderer = structlog.processors.JSONRenderer(sort_keys=True)
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=colors)
    processors: list[structlog.typing.Processor] = [structlog.processors.add_log_level, renderer]
    lowest = shown
    if tap is not None:

        def below_level(
            _logger: structlog.typing.WrappedLogger, method: str, event: structlog.typing.EventDict
        ) -> structlog.typing.EventDict:
            if LOG_LEVELS.get(method, logging.CRITICAL) < shown:
                raise structlog.DropEvent
            return event

        processors = [tap, below_level, *processors]
        lowest = logging.DEBUG
    logger: EngineLog = structlog.wrap_logger(
        structlog.PrintLogger(file=stream),
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(lowest),
    )
    return logger
