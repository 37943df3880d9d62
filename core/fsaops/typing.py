"""Types shared across fsaops's modules (structlog's ``structlog.typing`` is the model).

:data:`EngineLog` is what the engine and the world take as their logger:
structlog's filtering bound logger, so below its level an event costs a
plain ``return None``.  The library never configures logging; the command
line builds the logger and passes it in.
"""

from __future__ import annotations

from typing import TypeAlias

from structlog.typing import FilteringBoundLogger

__all__ = ["EngineLog"]

EngineLog: TypeAlias = FilteringBoundLogger
"""The logger the engine emits its events to (one ``mm_migrate_page`` per page attempt)."""
