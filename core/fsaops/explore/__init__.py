"""Systematic concurrency testing of a table's ``migratepage``: ``fsaops explore``.

The migration of a few pages of one table runs against accessor tasks (a
fault, a ``write()``, a truncate, writeback, a journal commit, a swap-in,
a buffer-lock holder, direct I/O) under every schedule with at most *k*
preemptions (or PCT's random schedules), and every schedule's end state
is checked in full.  :func:`~fsaops.explore.api.explore` runs a search,
:func:`~fsaops.explore.api.replay` one schedule from its replay string.
"""

from fsaops.explore.api import (
    DEFAULT_PREEMPTIONS,
    MAX_SEED,
    REPLAY_PREFIX,
    Bounds,
    ExploreResult,
    Failure,
    Step,
    decode_replay,
    encode_replay,
    explore,
    replay,
)
from fsaops.explore.setup import DEFAULT_PAGES, TaskSpec
from fsaops.explore.tasks import ACCESSORS, Accessor

__all__ = [
    "ACCESSORS",
    "DEFAULT_PAGES",
    "DEFAULT_PREEMPTIONS",
    "MAX_SEED",
    "REPLAY_PREFIX",
    "Accessor",
    "Bounds",
    "ExploreResult",
    "Failure",
    "Step",
    "TaskSpec",
    "decode_replay",
    "encode_replay",
    "explore",
    "replay",
]
