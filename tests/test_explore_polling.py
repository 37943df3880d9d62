"""A ``migratepage`` that polls (``cond_resched()`` until what it waits for comes) is no livelock.

On the kernel's SMP machines the task it waits for runs on another CPU
meanwhile.  Under the explorer only the task a schedule chooses runs, and
a poller stopped at a ``cond_resched`` was chosen again at every point
(switching away from it was a preemption): the schedule with no
preemption never let the buffer reader's I/O complete, and ended at the
point limit, "kernel bug: the schedule did not end within 200000 points",
for a table that is right.  A task that polls from one place now yields
after :data:`~fsaops.explore.runtime.SPIN_YIELDS` calls in a row, and the
switch costs no preemption.

A table that spins on a lock with no ``cond_resched`` at all
(``while (!trylock_buffer(bh));``) reached no point: the task that held the
lock never ran again, and the schedule ended at the explorer's 60-second
limit (or, spinning on ``spin_trylock``, at the point limit), "kernel bug",
for a table that works on a kernel.  Every
:data:`~fsaops.sched.SPIN_TRIES`-th failed try of one lock is now a point,
and at :data:`~fsaops.explore.runtime.YIELD_TRIES` the spinner yields.
"""

from __future__ import annotations

from collections.abc import Callable
from errno import EAGAIN

import attrs
import pytest

from fsaops import buffer_migrate_page, migrate_page_copy
from fsaops.aops import FileSystemType
from fsaops.buffer import BufferHead, buffers, lock_buffer, trylock_buffer, unlock_buffer
from fsaops.explore import TaskSpec, explore
from fsaops.explore.api import render_text
from fsaops.explore.runtime import YIELD_TRIES
from fsaops.mapping import AddressSpace
from fsaops.page import PG, Page, trylock_page
from fsaops.plugins import Registry
from fsaops.status import Status


def _ext2_with(
    registry: Registry, name: str, migratepage: Callable[[Page, Page], int]
) -> FileSystemType:
    ext2 = registry.filesystems["ext2"]
    table = attrs.evolve(ext2.modes["default"], name=f"{name}_aops", migratepage=migratepage)
    return attrs.evolve(ext2, name=name, modes={"default": table}, page_cache={})


def _move_buffers(newpage: Page, page: Page, head: BufferHead) -> None:
    """The buffers and their page reference to ``newpage``, as ``buffer_migrate_page`` does."""
    page.flags &= ~PG.private
    newpage.private = head
    page.private = 0
    page.count -= 1
    newpage.count += 1
    mask = newpage.node.page_size - 1
    base = newpage.pfn << newpage.node.page_shift
    for bh in buffers(head):
        bh.b_page = newpage
        bh.b_data = base + (bh.b_data & mask)
    newpage.flags |= PG.private


def _buffers_locked_by(
    take: Callable[[BufferHead], object],
) -> Callable[[Page, Page], int]:
    """V4 5/6, each buffer's lock taken by ``take``: a table of its own, for each way of taking.

    ``take`` says whether it took the lock; a buffer it did not take is
    moved all the same (the bug a table that gives up too early has).
    """

    def migratepage(newpage: Page, page: Page) -> int:
        mapping = page.mapping
        if not isinstance(mapping, AddressSpace) or not page.flags & PG.private:
            return buffer_migrate_page(newpage, page)
        if mapping.kernel.semantics.migrate_page_remove_references(newpage, page, 3):
            return -EAGAIN
        head: BufferHead = page.private
        held = []
        for bh in buffers(head):
            bh.b_count += 1
            if take(bh):
                held.append(bh)
        with mapping.private_lock:
            _move_buffers(newpage, page, head)
        migrate_page_copy(newpage, page)
        for bh in buffers(head):
            if bh in held:
                unlock_buffer(bh)
            bh.b_count -= 1
        return 0

    return migratepage


def _poll(bh: BufferHead) -> bool:
    """Takes the lock with ``trylock_buffer``, ``cond_resched()`` between tries."""
    sched = bh.b_page.node.kernel.sched
    while not trylock_buffer(bh):
        sched.tick()  # cond_resched()
    return True


polls_buffer_locks = _buffers_locked_by(_poll)
"""V4 5/6, taking each buffer's lock with ``trylock_buffer`` and ``cond_resched`` between."""


def test_a_table_that_polls_a_buffer_lock_passes(registry: Registry) -> None:
    """Before: FAILED (kernel bug), 0 preemptions, "did not end within 200000 points"."""
    fstype = _ext2_with(registry, "poller", polls_buffer_locks)
    result = explore(
        fstype, tasks=[TaskSpec("bh-lock", 0)], pages=2, preemptions=1, registry=registry
    )
    assert not result.failures, render_text(result)
    assert result.exhausted and result.status is Status.OK


@pytest.mark.exhaustive
def test_a_table_that_polls_for_a_reference_to_go_passes(registry: Registry) -> None:
    """The direct-I/O reference goes when its I/O completes, a task of its own."""

    def waits_for_the_reference(newpage: Page, page: Page) -> int:
        sched = page.node.kernel.sched
        extra = page.mapcount + (3 if page.flags & PG.private else 2)
        while page.count > extra:
            sched.tick()  # cond_resched()
        return buffer_migrate_page(newpage, page)

    fstype = _ext2_with(registry, "refwaiter", waits_for_the_reference)
    result = explore(fstype, tasks=[TaskSpec("pin", 0)], pages=2, preemptions=1, registry=registry)
    assert not result.failures, render_text(result)
    assert result.exhausted and result.status is Status.OK


def test_a_poller_that_gives_a_lock_up_too_early_is_still_found(registry: Registry) -> None:
    """Yielding changes no verdict on a racy table: one that skips a buffer it finds locked."""

    def three_tries(bh: BufferHead) -> bool:
        """Gives up after three tries, and the table moves the buffer anyway."""
        sched = bh.b_page.node.kernel.sched
        for _ in range(3):
            if trylock_buffer(bh):
                return True
            sched.tick()
        return False

    fstype = _ext2_with(registry, "impatient", _buffers_locked_by(three_tries))
    result = explore(
        fstype, tasks=[TaskSpec("bh-lock", 0)], pages=2, preemptions=1, registry=registry
    )
    (failure,) = result.failures
    assert any("moved a locked buffer" in problem for _, problem in failure.problems), (
        failure.problems
    )


def _spin(bh: BufferHead) -> bool:
    while not trylock_buffer(bh):
        pass  # no cond_resched(): the CPU spins
    return True


def test_a_table_that_spins_on_a_buffer_lock_passes(registry: Registry) -> None:
    """Before: FAILED (kernel bug), 0 preemptions, "did not end within 60 s", after a minute."""
    fstype = _ext2_with(registry, "spinner", _buffers_locked_by(_spin))
    result = explore(
        fstype, tasks=[TaskSpec("bh-lock", 0)], pages=2, preemptions=1, registry=registry
    )
    assert not result.failures, render_text(result)
    assert result.exhausted and result.status is Status.OK


def test_a_table_that_spins_on_spin_trylock_passes(registry: Registry) -> None:
    """Before: FAILED (kernel bug), 1 preemption, "did not end within 200000 points"."""

    def spins_on_private_lock(newpage: Page, page: Page) -> int:
        mapping = page.mapping
        if isinstance(mapping, AddressSpace) and page.flags & PG.private:
            while not mapping.private_lock.acquire(False):
                pass
            mapping.private_lock.release()
        return buffer_migrate_page(newpage, page)

    fstype = _ext2_with(registry, "lockspinner", spins_on_private_lock)
    result = explore(
        fstype, tasks=[TaskSpec("bh-lock", 0)], pages=2, preemptions=1, registry=registry
    )
    assert not result.failures, render_text(result)
    assert result.exhausted and result.status is Status.OK


@pytest.mark.parametrize("tries", [3, 150, YIELD_TRIES - 1])
def test_a_spinner_that_gives_the_lock_up_is_still_found(registry: Registry, tries: int) -> None:
    """A spin that gives up before the yield, and moves the buffer anyway, is seen giving up."""

    def gives_up(bh: BufferHead) -> bool:
        return any(trylock_buffer(bh) for _ in range(tries))

    fstype = _ext2_with(registry, f"gives_up_{tries}", _buffers_locked_by(gives_up))
    result = explore(
        fstype, tasks=[TaskSpec("bh-lock", 0)], pages=2, preemptions=1, registry=registry
    )
    (failure,) = result.failures
    assert failure.preemptions == 0
    assert any("moved a locked buffer" in problem for _, problem in failure.problems), (
        failure.problems
    )


def test_spinning_on_a_buffer_lock_the_table_holds_itself_is_a_livelock(
    registry: Registry,
) -> None:
    """Nothing can let the lock go: the schedule fails at once, naming the spin, not at 60 s."""

    def relocks(bh: BufferHead) -> bool:
        lock_buffer(bh)
        return _spin(bh)

    fstype = _ext2_with(registry, "relocker", _buffers_locked_by(relocks))
    result = explore(
        fstype, tasks=[TaskSpec("bh-lock", 0)], pages=2, preemptions=1, registry=registry
    )
    (failure,) = result.failures
    (problem,) = (problem for _, problem in failure.problems)
    assert problem.startswith("livelock: migrate spins in _spin on the buffer lock of buffer head")
    assert f"trying it {YIELD_TRIES:,} times in a row" in problem
    assert "no other task can run to let it go" in problem


def test_spinning_on_the_page_lock_the_engine_holds_is_a_livelock(registry: Registry) -> None:
    """``migrate_pages`` hands the table its page locked: a spin on that lock never ends."""

    def spins_on_its_page(newpage: Page, page: Page) -> int:
        while not trylock_page(page):
            pass
        return buffer_migrate_page(newpage, page)

    fstype = _ext2_with(registry, "pagespinner", spins_on_its_page)
    result = explore(
        fstype, tasks=[TaskSpec("bh-lock", 0)], pages=2, preemptions=0, registry=registry
    )
    (failure,) = result.failures
    (problem,) = (problem for _, problem in failure.problems)
    assert problem.startswith(
        "livelock: migrate spins in spins_on_its_page on the page lock of pfn "
    ), problem
