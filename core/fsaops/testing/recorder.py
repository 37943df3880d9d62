"""A logger that keeps every event it is given: the engine's tracepoint stream, for tests.

The engine emits one ``mm_migrate_page`` event per page attempt at debug
level (``pfn``, ``table``, ``call``, ``pass_``, ``path``, ``rc``, ``why``), and a
scenario run emits ``scenario_built`` and ``scenario_done`` at info level.
A :class:`Recorder` is a real structlog filtering logger (:attr:`log`)
whose only processor keeps each event as a dict, so a test can pass it
wherever fsaops takes a logger and then read back what happened::

    recorder = Recorder()
    world = World(registry=registry, log=recorder.log)
    ...
    assert recorder.paths(page.pfn) == [(0, "migratepage", 0)]
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import structlog

if TYPE_CHECKING:
    from structlog.typing import EventDict, FilteringBoundLogger, WrappedLogger

__all__ = ["Recorder"]


class Recorder:
    """Keeps every event logged through :attr:`log` at ``level`` or above.

    Attributes:
        events: each event as a dict: its keys, ``event`` (the name) and
            ``level`` (``debug``, ``info``, ...), oldest first.
        log: the logger to hand to the engine or the builder.
    """

    def __init__(self, level: int = logging.DEBUG) -> None:
        self.events: list[dict[str, Any]] = []
        self.log: FilteringBoundLogger = structlog.wrap_logger(
            structlog.ReturnLogger(),
            processors=[self._keep],
            wrapper_class=structlog.make_filtering_bound_logger(level),
        )

    def _keep(self, _logger: WrappedLogger, method: str, event: EventDict) -> EventDict:
        self.events.append({**event, "level": method})
        raise structlog.DropEvent

    def named(self, name: str) -> list[dict[str, Any]]:
        """The events called ``name``."""
        return [e for e in self.events if e.get("event") == name]

    def paths(self, pfn: int) -> list[tuple[int, str, int]]:
        """(pass, path, rc) of every attempt the engine made on page ``pfn``."""
        return [
            (e["pass_"], e["path"], e["rc"])
            for e in self.events
            if e.get("event") == "mm_migrate_page" and e["pfn"] == pfn
        ]
