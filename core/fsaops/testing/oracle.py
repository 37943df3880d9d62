"""The oracle, where the testing kit first documented it.

It lives in the core now (:mod:`fsaops.oracle`), because the command
line's verdict, ``--debug-vm`` and the conformance suite all ask the same
one; the names stay importable from here.
"""

from __future__ import annotations

from fsaops.oracle import BufferState, IoCounters, MigrationRecord, Oracle, PageState

__all__ = ["BufferState", "IoCounters", "MigrationRecord", "Oracle", "PageState"]
