"""The clock, other tasks, sleeping and deadlocks."""

from __future__ import annotations

import threading

import pytest

from fsaops.errors import Deadlock
from fsaops.page import PG, lock_page, trylock_page, unlock_page
from fsaops.sched import LIVELOCK_TRIES, SPIN_TRIES, Scheduler, hold, release
from fsaops.world import World


def test_events_run_in_time_order_and_ticks_advance_the_clock() -> None:
    sched = Scheduler()
    seen: list[tuple[int, str]] = []
    sched.call_later(3, lambda: seen.append((sched.now, "c")))
    sched.call_later(1, lambda: seen.append((sched.now, "a")))
    sched.call_later(1, lambda: seen.append((sched.now, "b")))
    for _ in range(3):
        sched.tick()
    assert seen == [(1, "a"), (1, "b"), (3, "c")]


@pytest.mark.parametrize("daemon", [False, True])
def test_run_for_stops_at_its_end_when_a_cancelled_event_comes_first(daemon: bool) -> None:
    sched = Scheduler()
    seen: list[int] = []
    sched.call_later(10, seen.append, 10, daemon=daemon).cancel()
    sched.call_later(20, lambda: seen.append(sched.now), daemon=daemon)
    sched.run_for(15)
    assert (seen, sched.now) == ([], 15)
    sched.run_for(5)
    assert (seen, sched.now) == ([20], 20)


def test_run_until_idle_leaves_daemons_alone() -> None:
    sched = Scheduler()
    runs: list[int] = []

    def daemon() -> None:
        runs.append(sched.now)
        sched.call_later(10, daemon, daemon=True)

    sched.call_later(10, daemon, daemon=True)
    sched.call_later(25, lambda: runs.append(-1))
    sched.run_until_idle()
    assert runs == [10, 20, -1]


def test_waiting_for_a_lock_held_forever_is_a_deadlock(world: World) -> None:
    inode = world.file(world.mount("ext2"), 1)
    (page,) = inode.i_mapping.pages()
    held = hold(world.kernel.new_task("stuck"), world.kernel.sched, "page_lock", page, None)
    with pytest.raises(Deadlock, match=f"page lock of pfn {page.pfn}"):
        lock_page(page)
    release(world.kernel.tasks[-1], held)
    assert trylock_page(page)
    unlock_page(page)


def test_spinning_on_a_page_lock_lets_the_holder_let_go(world: World) -> None:
    """``while (!trylock_page(page));``: on a kernel the holder lets go meanwhile; here too."""
    inode = world.file(world.mount("ext2"), 1)
    (page,) = inode.i_mapping.pages()
    sched = world.kernel.sched
    start = sched.now
    hold(world.kernel.new_task("io"), sched, "page_lock", page, 3)
    tries = 1
    while not trylock_page(page):
        tries += 1
        assert tries <= 10 * SPIN_TRIES, "the spin never ended"
    # SPIN_TRIES failed tries run the next event, three ticks on: the hold let go.
    assert (sched.now - start, tries) == (3, SPIN_TRIES + 1)
    unlock_page(page)


def test_spinning_with_nothing_to_let_go_leaves_the_clock_still(world: World) -> None:
    """A lock nobody will let go: the clock stays still, for the stall watchdog to report."""
    inode = world.file(world.mount("ext2"), 1)
    (page,) = inode.i_mapping.pages()
    sched = world.kernel.sched
    held = hold(world.kernel.new_task("stuck"), sched, "page_lock", page, None)
    now = sched.now
    assert not any(trylock_page(page) for _ in range(5 * SPIN_TRIES))
    assert sched.now == now
    release(world.kernel.tasks[-1], held)


def test_a_spin_nothing_can_end_is_a_deadlock_at_its_livelock_tries(world: World) -> None:
    """A loop that gives up sooner is let be; one that goes on to LIVELOCK_TRIES never ends."""
    inode = world.file(world.mount("ext2"), 1)
    (page,) = inode.i_mapping.pages()
    held = hold(world.kernel.new_task("stuck"), world.kernel.sched, "page_lock", page, None)
    tries: list[bool] = []

    def spin() -> None:
        while not trylock_page(page):
            tries.append(False)
            assert len(tries) < 2 * LIVELOCK_TRIES, "the spin was let go on for ever"

    with pytest.raises(Deadlock, match=f"page lock of .*tried {LIVELOCK_TRIES:,} times in a row"):
        spin()
    assert len(tries) == LIVELOCK_TRIES - 1
    release(world.kernel.tasks[-1], held)


def test_failed_tries_of_different_locks_are_no_spin(world: World) -> None:
    """Trying each of many held pages once (a scan) lets no time pass."""
    inode = world.file(world.mount("ext2"), 2)
    pages = inode.i_mapping.pages()
    sched = world.kernel.sched
    task = world.kernel.new_task("io")
    for page in pages:
        hold(task, sched, "page_lock", page, 1000)
    now = sched.now
    for _ in range(SPIN_TRIES):
        for page in pages:
            assert not trylock_page(page)
    assert sched.now == now


def test_sleeping_runs_the_event_that_wakes_us(world: World) -> None:
    inode = world.file(world.mount("ext2"), 1)
    (page,) = inode.i_mapping.pages()
    hold(world.kernel.new_task("io"), world.kernel.sched, "page_lock", page, 42)
    lock_page(page)
    assert world.kernel.sched.now == 42
    unlock_page(page)


def test_a_real_thread_waits_for_another_real_thread(world: World) -> None:
    inode = world.file(world.mount("ext2"), 1)
    (page,) = inode.i_mapping.pages()
    sched = world.kernel.sched
    assert trylock_page(page)
    got = threading.Event()

    def waiter() -> None:
        lock_page(page)
        got.set()
        unlock_page(page)

    sched.threads += 1
    try:
        thread = threading.Thread(target=waiter)
        thread.start()
        assert not got.wait(0.2), "the waiter sleeps while we hold the lock"
        assert page.flags & PG.locked
        unlock_page(page)
        assert got.wait(5), "unlock_page woke it"
        thread.join(5)
    finally:
        sched.threads -= 1
