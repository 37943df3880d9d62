"""A table with a lock of its own: ``fsaops.Mutex`` is explored, a ``threading.Lock`` is refused.

The explorer runs one task at a time.  A task that waits on a
``threading.Lock`` its table holds in another task, stopped at a scheduling
point, waits for ever: that was a 60 s hang per schedule, then "kernel bug"
blamed on the table's ``migratepage``.  It is now found within a second
and said for what it is; a table that takes a :class:`fsaops.Mutex` instead
is explored as the kernel would run it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import attrs
import pytest

import fsaops
from fsaops.aops import FileSystemType
from fsaops.buffer import buffer_migrate_page
from fsaops.errors import KernelBug
from fsaops.explore import TaskSpec, explore
from fsaops.explore.api import render_text
from fsaops.explore.runtime import foreign_lock
from fsaops.mutex import Mutex
from fsaops.page import Page
from fsaops.plugins import Registry, load_plugins
from fsaops.status import Status
from fsaops.writeback import WritebackControl


@pytest.fixture(scope="module")
def registry() -> Iterator[Registry]:
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("FSAOPS_PLUGINS", raising=False)
        yield load_plugins()


def _own_lock_table(registry: Registry, name: str, lock: Any) -> FileSystemType:
    """ext2's table, its migratepage and writepage each under ``lock``, after the page lock."""
    ext2 = registry.filesystem("ext2")
    table = ext2.aops("default")
    writepage = table.writepage
    assert writepage is not None

    def own_lock_migratepage(newpage: Page, page: Page) -> int:
        with lock:
            return buffer_migrate_page(newpage, page)

    def own_lock_writepage(page: Page, wbc: WritebackControl) -> int:
        with lock:
            return writepage(page, wbc)

    own = attrs.evolve(
        table,
        name=f"{name}_aops",
        migratepage=own_lock_migratepage,
        writepage=own_lock_writepage,
    )
    return attrs.evolve(ext2, name=name, modes={"default": own}, default_mode="default")


_TASKS = [TaskSpec("writeback", 0)]


def test_a_threading_lock_held_by_a_stopped_task_is_said_plainly_and_at_once(
    registry: Registry,
) -> None:
    fstype = _own_lock_table(registry, "ownlock", threading.Lock())
    start = time.monotonic()
    result = explore(fstype, tasks=_TASKS, pages=2, preemptions=1, registry=registry)
    assert time.monotonic() - start < 45, "the stuck schedule ran to the time limit"
    assert result.failures, render_text(result)
    (failure,) = result.failures
    ((status, problem),) = failure.problems
    assert status == Status.BAD_INPUT.value
    assert problem.startswith(
        "cannot explore: task migrate waits in own_lock_migratepage (test_explore_plugin_locks.py:"
    )
    assert (
        "on lock, a lock of its own (threading.Lock) that the explorer does not schedule" in problem
    )
    assert problem.endswith(
        "use fsaops.Mutex, the lock of a table's own that the explorer schedules"
    )
    assert "kernel bug" not in problem and "did not end" not in problem
    # The run says so too: bad input (exit 2), not a kernel bug of the table.
    assert result.status is Status.BAD_INPUT, render_text(result)
    assert "FAILED (bad input)" in render_text(result)


def test_a_table_with_a_mutex_of_its_own_passes(registry: Registry) -> None:
    """The same table with fsaops.Mutex: the writeback holds it across its I/O submission,
    the migration sleeps on it, and the writeback goes on."""
    fstype = _own_lock_table(registry, "ownmutex", fsaops.Mutex("ownmutex_lock"))
    result = explore(fstype, tasks=_TASKS, pages=2, preemptions=1, registry=registry)
    assert result.status is Status.OK, render_text(result)
    assert result.exhausted


def test_a_mutex_is_a_plain_lock_outside_the_explorer() -> None:
    lock = Mutex("m")
    with lock:
        assert lock.locked()
        with pytest.raises(KernelBug, match="mutex_lock of m, which this task already holds"):
            lock.acquire()
    assert not lock.locked()
    with pytest.raises(KernelBug, match="mutex_unlock of m, which nobody holds"):
        lock.release()
    assert fsaops.Mutex is Mutex


def _stuck(target: Callable[[], object], threads: list[threading.Thread]) -> Any:
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    threads.append(thread)
    time.sleep(0.2)
    import sys

    assert thread.ident is not None
    return sys._current_frames()[thread.ident]


def test_foreign_lock_names_a_with_an_acquire_and_a_semaphore() -> None:
    threads: list[threading.Thread] = []
    held = threading.Lock()
    held.acquire()
    rheld = threading.RLock()
    let_go = threading.Event()

    def hold_rlock() -> None:
        with rheld:
            let_go.wait()

    owner = threading.Thread(target=hold_rlock, daemon=True)
    owner.start()
    time.sleep(0.1)
    sem = threading.Semaphore(0)

    def with_lock() -> None:
        with held:
            pass

    def acquire_rlock() -> None:
        rheld.acquire(True)
        rheld.release()

    def down() -> None:
        sem.acquire()

    def wait_for_ever() -> None:
        let_go.wait()

    try:
        found = foreign_lock(_stuck(with_lock, threads))
        assert found is not None and found[1:] == ("held", "threading.Lock")
        assert found[0].startswith("in with_lock (test_explore_plugin_locks.py:")
        found = foreign_lock(_stuck(acquire_rlock, threads))
        assert found is not None and found[1:] == ("rheld", "threading.RLock")
        found = foreign_lock(_stuck(down, threads))
        assert found is not None and found[1:] == ("sem", "threading.Semaphore")
        # A thread that sleeps is waiting on no lock.
        assert foreign_lock(_stuck(lambda: time.sleep(1), threads)) is None
        # A wait with a timeout ends by itself: slow, not stuck.
        assert foreign_lock(_stuck(lambda: let_go.wait(30), threads)) is None
        assert foreign_lock(_stuck(lambda: sem.acquire(timeout=30), threads)) is None
        found = foreign_lock(_stuck(wait_for_ever, threads))
        assert found is not None and found[2] == "threading.Event"
    finally:
        # No thread of this test outlives it: the explorer refuses to fork past one.
        held.release()
        let_go.set()
        sem.release(5)
        for thread in [owner, *threads]:
            thread.join(5)
    assert not any(t.is_alive() for t in [owner, *threads])


def test_a_table_that_waits_with_a_timeout_is_slow_not_stuck(registry: Registry) -> None:
    """An ``Event.wait(T)`` nobody sets ends after T s: no "lock of its own" whatever T is.

    The stall check looks every half second, so such a wait longer than
    about a second was said to be a lock held by a stopped task (bad
    input), and a shorter one passed: the verdict hung on the clock.
    """
    ext2 = registry.filesystem("ext2")
    table = ext2.aops("default")
    nobody_sets = threading.Event()

    def waits_then_moves(newpage: Page, page: Page) -> int:
        nobody_sets.wait(1.2)
        return buffer_migrate_page(newpage, page)

    own = attrs.evolve(table, name="timedwait_aops", migratepage=waits_then_moves)
    fstype = attrs.evolve(ext2, name="timedwait", modes={"default": own}, default_mode="default")
    result = explore(fstype, tasks=[], pages=1, registry=registry)
    assert result.status is Status.OK, render_text(result)
    assert result.exhausted
