"""A ``--schedules`` cap on the systematic search: which runs it searched, and which never ran.

The default search runs the migration against each accessor in turn.
With a cap, the summary and the JSON listed every run as explored, though
the cap was spent on the first ones; each run now says how far it got
(``exhausted``, ``failed``, ``partly``, ``not reached``).  ``bounce`` is
ext2's table with a bounce buffer every page shares: only the run of
``mmap-write`` on page 1 fails, the one a small cap never reaches.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

import bounce
from fsaops.aops import FileSystemType
from fsaops.cli import main
from fsaops.explore import TaskSpec, explore
from fsaops.explore.api import ExploreResult, render_text
from fsaops.plugins import Registry, load_plugins


def _bounce(registry: Registry) -> FileSystemType:
    """ext2 whose ``migratepage`` goes through one bounce buffer."""
    return bounce.bounce_filesystem(registry, writepage=False)


@pytest.fixture(scope="module")
def registry() -> Iterator[Registry]:
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("FSAOPS_PLUGINS", raising=False)
        yield load_plugins()


def _runs(result: ExploreResult) -> list[tuple[tuple[str, ...], int, str]]:
    return [(run.tasks, run.schedules, run.searched) for run in result.runs]


SMALL: dict[str, Any] = {"tasks": ["mmap-write"], "pages": 2, "preemptions": 1}
"""One accessor named without a page: a run on page 0 (clean), then one on page 1 (dirty)."""


def test_a_cap_names_the_runs_it_never_reached(registry: Registry) -> None:
    """It listed ``mmap-write@0, mmap-write@1`` and "no schedule fails": the run that fails
    was never reached."""
    fstype = _bounce(registry)
    result = explore(fstype, schedules=5, registry=registry, **SMALL)
    assert not result.exhausted and not result.failures
    assert result.tasks == ("mmap-write@0", "mmap-write@1")  # what was asked for, as before
    assert _runs(result) == [
        (("mmap-write@0",), 5, "partly"),
        (("mmap-write@1",), 0, "not reached"),
    ]
    text = render_text(result)
    assert "the bounded space is NOT exhausted\n" in text
    assert "tasks searched: mmap-write@0 (partly, 5 schedules); not reached: mmap-write@1\n" in text
    assert result.to_json()["runs"] == [
        {"tasks": ["mmap-write@0"], "schedules": 5, "searched": "partly"},
        {"tasks": ["mmap-write@1"], "schedules": 0, "searched": "not reached"},
    ]
    # Without the cap, the run it never reached is the one that fails.
    full = explore(fstype, registry=registry, **SMALL)
    first, second = full.runs
    assert first.searched == "exhausted" and first.schedules > 5
    assert second.tasks == ("mmap-write@1",) and second.searched == "failed"
    assert "tasks searched" not in render_text(full)  # a failure's summary is as it was


def test_a_cap_the_first_run_fits_in_says_it_was_exhausted(registry: Registry) -> None:
    """A run whose space the cap holds is exhausted; one it runs out in is partly searched;
    a cap that runs out just as a run's space does leaves the next one not reached."""
    alone = explore(
        "ext2", tasks=[TaskSpec("read-fault", 0)], pages=2, preemptions=1, registry=registry
    )
    n = alone.schedules
    result = explore(
        "ext2", tasks=["read-fault"], pages=2, preemptions=1, schedules=n + 1, registry=registry
    )
    assert not result.exhausted
    assert [(r.tasks, r.searched) for r in result.runs] == [
        (("read-fault@0",), "exhausted"),
        (("read-fault@1",), "partly"),
    ]
    assert [r.schedules for r in result.runs] == [n, 1]
    said = f"tasks searched: read-fault@0 (exhausted, {n} schedules), read-fault@1 (partly, 1 "
    assert said + "schedule)\n" in render_text(result)
    capped = explore(
        "ext2", tasks=["read-fault"], pages=2, preemptions=1, schedules=n, registry=registry
    )
    assert [r.searched for r in capped.runs] == ["exhausted", "not reached"]
    assert f"(exhausted, {n} schedules); not reached: read-fault@1\n" in render_text(capped)


def test_a_search_nothing_cut_short_has_no_line_of_runs(registry: Registry) -> None:
    result = explore("ext2", tasks=["read-fault"], pages=2, preemptions=1, registry=registry)
    assert result.exhausted
    assert [r.searched for r in result.runs] == ["exhausted", "exhausted"]
    assert sum(r.schedules for r in result.runs) == result.schedules
    assert "tasks searched" not in render_text(result)
    together = explore(
        "ext2", tasks=[TaskSpec("read-fault", 0)], pages=1, preemptions=1, registry=registry
    )
    assert _runs(together) == [(("read-fault@0",), together.schedules, "exhausted")]
    pct = explore("ext2", tasks=["read-fault"], pages=1, pct=2, schedules=2, registry=registry)
    assert pct.runs == ()


def test_the_command_says_which_runs_a_cap_reached(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FSAOPS_PLUGINS", raising=False)
    args = ["--fs", "ext2", "--tasks", "read-fault", "--pages", "2", "--preemptions", "1"]
    status = main(["explore", *args, "--schedules", "3", "--json"])
    out, err = capsys.readouterr()
    # Cut short with no failing schedule: exit 0, as the command promises, but not exhausted.
    assert status == 0, err
    data = json.loads(out)
    assert data["status"] == "ok" and data["exhausted"] is False
    assert data["tasks"] == ["read-fault@0", "read-fault@1"]
    assert data["runs"] == [
        {"tasks": ["read-fault@0"], "schedules": 3, "searched": "partly"},
        {"tasks": ["read-fault@1"], "schedules": 0, "searched": "not reached"},
    ]
    status = main(["explore", *args, "--schedules", "3"])
    out, _ = capsys.readouterr()
    assert status == 0 and "no schedule fails" not in out
    assert "NOT EXHAUSTED: none of the 3 schedules run fails" in out
    assert "tasks searched: read-fault@0 (partly, 3 schedules); not reached: read-fault@1\n" in out
