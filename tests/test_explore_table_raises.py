"""The explorer and a table whose code raises, or never returns, in the tasks' threads.

Every task of a schedule runs in a thread of its own.  A ``migratepage``
that raises there (state its plugin set up at import for the importing
thread is missing, ``signal.signal`` outside the main thread) fails every
page with ``-EIO``: nothing moved, nothing was lost, and the end state
passes every check.  That is a finding, as ``fsaops migrate --strict``
counts it, never "no schedule fails".  A ``migratepage`` that never
returns is named with its page, table and task, and its schedule is not
run a second time only to hang again.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

import attrs
import pytest

from fsaops.aops import FileSystemType
from fsaops.buffer import buffer_migrate_page
from fsaops.explore import explore
from fsaops.explore.api import render_text
from fsaops.explore.setup import ExploredWorld, Setup, assign_pages
from fsaops.migrate import fail_migrate_page
from fsaops.page import PG, Page
from fsaops.plugins import Registry, load_plugins
from fsaops.status import Status

_LOCAL = threading.local()
_LOCAL.ready = True  # set in the thread that imports this module


@pytest.fixture(scope="module")
def registry() -> Iterator[Registry]:
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("FSAOPS_PLUGINS", raising=False)
        yield load_plugins()


def _fstype(registry: Registry, name: str, migratepage: Any) -> FileSystemType:
    ext2 = registry.filesystem("ext2")
    table = attrs.evolve(ext2.aops("default"), name=f"{name}_aops", migratepage=migratepage)
    return attrs.evolve(ext2, name=name, modes={"default": table}, default_mode="default")


def _thread_local_mp(newpage: Page, page: Page) -> int:
    if not _LOCAL.ready:  # AttributeError in any thread but the importing one
        return -5
    return buffer_migrate_page(newpage, page)


def _signal_mp(newpage: Page, page: Page) -> int:
    signal.signal(signal.SIGUSR2, signal.SIG_DFL)  # ValueError outside the main thread
    return buffer_migrate_page(newpage, page)


def test_a_migratepage_that_raises_in_the_task_threads_fails_the_exploration(
    registry: Registry,
) -> None:
    """A table that reads a threading.local filled at import passes under migrate (same
    thread) and raised on every call under explore: that was "no schedule fails", exit 0."""
    fstype = _fstype(registry, "tlocalfs", _thread_local_mp)
    result = explore(fstype, tasks=["read-fault"], pages=2, preemptions=1, registry=registry)
    assert result.status is Status.FINDINGS
    assert result.exit_status == 1
    (failure,) = result.failures
    assert failure.preemptions == 0  # the very first schedule
    ((status, problem),) = failure.problems
    assert status == "findings"
    assert problem.startswith(
        "table tlocalfs_aops: migratepage raised AttributeError: '_thread._local' object has "
        "no attribute 'ready' (pfn "
    )
    assert "on 2 pages (each failed with -EIO)" in problem
    assert "a thread of its own" in problem
    text = render_text(result)
    assert "FAILED (findings)" in text
    assert "no schedule fails" not in text


def test_signal_signal_in_migratepage_under_explore_is_a_finding(registry: Registry) -> None:
    fstype = _fstype(registry, "sigfs", _signal_mp)
    result = explore(fstype, tasks=["write"], pages=1, preemptions=0, registry=registry)
    assert result.status is Status.FINDINGS
    (failure,) = result.failures
    assert (
        "table sigfs_aops: migratepage raised ValueError: signal only works in main thread"
        in (failure.problems[0][1])
    )


def test_a_table_that_fails_every_page_by_design_still_passes(registry: Registry) -> None:
    """fail_migrate_page returns -EIO without raising: no finding, as for xfs_buftarg."""
    fstype = _fstype(registry, "refusefs", fail_migrate_page)
    result = explore(fstype, tasks=["read-fault"], pages=2, preemptions=1, registry=registry)
    assert result.failures == ()
    assert result.exhausted
    assert result.status is Status.OK


def _sleeping_mp(newpage: Page, page: Page) -> int:
    time.sleep(30)
    return buffer_migrate_page(newpage, page)


def test_a_schedule_that_does_not_end_names_the_task_page_and_table(registry: Registry) -> None:
    from fsaops.explore.search import fork_run

    fstype = _fstype(registry, "sleepfs", _sleeping_mp)
    setup = Setup(
        "sleepfs", "default", pages=1, tasks=assign_pages(["read-fault"], 1, anonymous=False)
    )
    xworld = ExploredWorld(setup, fstype, registry)
    start = time.monotonic()
    result = fork_run(xworld, timeout=1.0)
    assert time.monotonic() - start < 10
    assert result["outcome"] == "too long"
    ((status, problem),) = result["problems"]
    assert status == "kernel bug"
    assert problem.startswith(
        "the schedule did not end within 1 s: task migrate was migrating the page at pfn "
    )
    assert "(table sleepfs_aops, pass 0, in migratepage), in _sleeping_mp (" in problem
    assert "test_explore_table_raises.py:" in problem
    # Its interleaving came back with it.
    assert result["labels"] and len(result["labels"]) == len(result["trace"])


def test_a_schedule_that_does_not_end_runs_once(
    registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It ran twice (the recorded rerun for the interleaving), doubling the wait."""
    from fsaops.explore import api, search

    real = search.fork_run
    runs: list[str] = []

    def quick(xworld: ExploredWorld, **kwargs: Any) -> Any:
        runs.append("search")
        return real(xworld, **{**kwargs, "timeout": 1.0})

    def again(*args: Any, **kwargs: Any) -> Any:
        runs.append("rerun")
        return real(*args, **{**kwargs, "timeout": 1.0})

    monkeypatch.setattr(search, "fork_run", quick)
    monkeypatch.setattr(api, "fork_run", again)
    fstype = _fstype(registry, "sleepfs", _sleeping_mp)
    result = explore(fstype, tasks=["read-fault"], pages=1, preemptions=0, registry=registry)
    assert runs == ["search"]
    (failure,) = result.failures
    assert "task migrate was migrating the page at pfn" in failure.problems[0][1]
    assert failure.interleaving
    assert failure.interleaving[0].task == "migrate"
    assert failure.replay.startswith("fsx2.")


def _stopping_mp(newpage: Page, page: Page) -> int:
    os.kill(os.getpid(), signal.SIGSTOP)  # the whole process: it can answer nothing
    return buffer_migrate_page(newpage, page)


def test_a_schedule_whose_process_is_killed_runs_once_and_replays_its_choices(
    registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fsaops.explore import api, decode_replay, search

    real = search.fork_run
    runs: list[tuple[int, ...]] = []

    def quick(xworld: ExploredWorld, **kwargs: Any) -> Any:
        runs.append(tuple(kwargs.get("forced", ())))
        return real(xworld, **{**kwargs, "timeout": 0.5})

    def again(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a schedule whose process was killed was run again")

    monkeypatch.setattr(search, "GRACE", 0.5)
    monkeypatch.setattr(search, "fork_run", quick)
    monkeypatch.setattr(api, "fork_run", again)
    fstype = _fstype(registry, "stopfs", _stopping_mp)
    result = explore(fstype, tasks=["read-fault"], pages=1, preemptions=0, registry=registry)
    assert runs == [()]
    (failure,) = result.failures
    assert "did not end within 1 s (stopped)" in failure.problems[0][1]
    _, _, choices = decode_replay(failure.replay)
    assert choices == {}


def _dirty_only_mp(newpage: Page, page: Page) -> int:
    if page.flags & PG.dirty:
        raise ValueError("no dirty pages here")
    return buffer_migrate_page(newpage, page)


def test_an_ordinary_raise_is_not_blamed_on_the_task_threads(registry: Registry) -> None:
    """The thread hint is for what a thread of its own explains, not for every raise."""
    fstype = _fstype(registry, "dirtyraisefs", _dirty_only_mp)
    result = explore(fstype, tasks=["write"], pages=2, preemptions=0, registry=registry)
    assert result.status is Status.FINDINGS, render_text(result)
    ((status, problem),) = result.failures[0].problems
    assert status == Status.FINDINGS.value
    assert "migratepage raised ValueError: no dirty pages here" in problem
    assert "thread of its own" not in problem
