"""The explorer hands freed memory back before it forks a process per schedule.

A fork copies the page tables of every resident page and the child's end
tears them down, so a schedule forked from a test session's process (a few
hundred megabytes resident, mostly freed and kept by the allocator) cost
two and a half times what it did in a fresh ``fsaops explore``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from fsaops import process
from fsaops.explore import search
from fsaops.explore.setup import ExploredWorld

glibc = pytest.mark.skipif(
    process._malloc_trim() is None, reason="malloc_trim is glibc's; other C libraries lack it"
)


def _resident_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS in /proc/self/status")


@glibc
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_freed_memory_the_allocator_kept_goes_back_to_the_system() -> None:
    # 4 KiB blocks come from the C library's heap (Python's own allocator
    # takes only small objects); keeping one in 64 alive leaves the freed
    # ones in the middle of the heap, where it does not give them back alone.
    blocks = [bytes([i % 251]) * 4000 for i in range(64_000)]
    kept = blocks[::64]
    del blocks
    before = _resident_mb()
    process.shed_memory()
    after = _resident_mb()
    assert kept[3][0] == (3 * 64) % 251
    # About 250 MB were freed; at least half of it goes back.
    assert before - after > 120, (before, after)


def test_the_systematic_search_sheds_before_it_forks(monkeypatch: pytest.MonkeyPatch) -> None:
    shed: list[str] = []
    monkeypatch.setattr(search, "shed_memory", lambda: shed.append("shed"))
    forked: list[Sequence[int]] = []

    def fake_fork_run(xworld: ExploredWorld, *, forced: Sequence[int] = ()) -> object:
        assert shed == ["shed"], "forked before shedding"
        forked.append(forced)
        return _done()

    monkeypatch.setattr(search, "fork_run", fake_fork_run)
    xworld = _tiny_world()
    search.explore_dfs(xworld, preemptions_bound=0)
    assert forked and shed == ["shed"]
    # A search that runs its schedules itself (in-process) forks nothing, and sheds nothing.
    shed.clear()
    search.explore_dfs(xworld, preemptions_bound=0, run=lambda forced: _done())
    assert shed == []


def test_the_pct_search_sheds_before_it_forks(monkeypatch: pytest.MonkeyPatch) -> None:
    shed: list[str] = []
    monkeypatch.setattr(search, "shed_memory", lambda: shed.append("shed"))

    def fake_fork_run(xworld: ExploredWorld, *, policy: object = None) -> object:
        assert shed == ["shed"], "forked before shedding"
        return _done()

    monkeypatch.setattr(search, "fork_run", fake_fork_run)
    search.explore_pct(_tiny_world(), depth=1, schedules=2, seed=1)
    assert shed == ["shed"]


class _Pages:
    count = 1


class _TinyWorld:
    pages = _Pages()


def _tiny_world() -> ExploredWorld:
    return _TinyWorld()  # type: ignore[return-value]


def _done() -> dict[str, object]:
    return {
        "trace": [],
        "names": ["migrate"],
        "keys": ["m"],
        "footprints": [()],
        "outcome": "done",
        "problems": [],
        "reasons": [],
        "labels": [],
        "seconds": 0.0,
    }
