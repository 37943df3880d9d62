"""A lock released without waking its sleepers: the explorer says it is a lost wake-up.

``unlock_buffer`` clears ``BH_Lock`` and then wakes the buffer's wait queue
(``wake_up_bit``); ``unlock_page`` and ``end_page_writeback`` do the same
for a page's bits.  A table that clears the bit alone leaves a task asleep
on it for ever on a kernel, though the lock is free.  A sleeper of an
explored schedule goes on only when the bit is clear *and* its queue was
woken, so such a schedule ends with that task asleep: a lost wake-up.
"""

from __future__ import annotations

import inspect
import textwrap
from collections.abc import Callable
from errno import EAGAIN

import pytest

from fsaops.aops import MigratePage
from fsaops.buffer import BH, BufferHead, buffers, lock_buffer, unlock_buffer
from fsaops.explore import explore, runtime
from fsaops.explore.api import render_text
from fsaops.page import PG, Page
from fsaops.plugins import Registry
from suite_runs import call_reports, inline_reports
from test_explore_buffer_locks import _table

pytest_plugins = ["pytester"]

LOST = "lost wake-up: bh-lock@"


def _moving(newpage: Page, page: Page, unlock: Callable[[BufferHead], None]) -> int:
    """``buffer_migrate_page``, with each buffer released by ``unlock(bh)``."""
    mapping = page.mapping
    if mapping is None:
        return -EAGAIN
    helpers = mapping.kernel.semantics  # type: ignore[union-attr]
    if not page.flags & PG.private:
        return helpers.migrate_page(newpage, page)
    rc: int = helpers.migrate_page_remove_references(newpage, page, 3)
    if rc:
        return rc if rc < 0 else -EAGAIN
    ring: list[BufferHead] = list(buffers(page.private))
    for bh in ring:
        bh.b_count += 1
        lock_buffer(bh)
    newpage.private = page.private
    page.private = 0
    page.flags &= ~PG.private
    page.count -= 1
    newpage.count += 1
    base = newpage.pfn << newpage.node.page_shift
    mask = newpage.node.page_size - 1
    for bh in ring:
        bh.b_page = newpage
        bh.b_data = base + (bh.b_data & mask)
    newpage.flags |= PG.private
    helpers.migrate_page_copy(newpage, page)
    for bh in ring:
        unlock(bh)
        bh.b_count -= 1
    return 0


def clears_lock(newpage: Page, page: Page) -> int:
    """Releases each buffer with ``clear_buffer_locked()``: the bit, no ``wake_up_bit``."""

    def unlock(bh: BufferHead) -> None:
        bh.b_state &= ~BH.lock

    return _moving(newpage, page, unlock)


def clears_lock_and_waiters(newpage: Page, page: Page) -> int:
    """Clears the lock bit and the model's waiters bit too, and still wakes nobody."""

    def unlock(bh: BufferHead) -> None:
        bh.b_state &= ~(BH.lock | BH.waiters)

    return _moving(newpage, page, unlock)


def wakes_then_clears(newpage: Page, page: Page) -> int:
    """Wakes the buffer's sleepers, then clears the lock bit: the wake finds it set."""

    def unlock(bh: BufferHead) -> None:
        bh.b_page.node.kernel.sched.wake_buffer(bh)
        bh.b_state &= ~(BH.lock | BH.waiters)

    return _moving(newpage, page, unlock)


def unlocks(newpage: Page, page: Page) -> int:
    """The same moves, each buffer released with ``unlock_buffer``: the twin that passes."""
    return _moving(newpage, page, unlock_buffer)


@pytest.mark.parametrize("migratepage", [clears_lock, clears_lock_and_waiters, wakes_then_clears])
@pytest.mark.parametrize(("fs", "mode"), [("ext2", "default"), ("ext3", "ordered")])
def test_a_buffer_unlocked_without_a_wake_is_a_lost_wakeup(
    fs: str, mode: str, migratepage: MigratePage, registry: Registry
) -> None:
    fstype = _table(registry, fs, mode, migratepage)
    result = explore(
        fstype, mode, tasks=["bh-lock"], block_size=1024, preemptions=1, registry=registry
    )
    assert result.failures, f"no schedule fails in {result.schedules}"
    (failure,) = result.failures
    problems = [p for _, p in failure.problems]
    assert any(LOST in p and "which is free" in p and "lock_buffer" in p for p in problems), (
        problems
    )
    assert failure.status.value == "kernel bug"
    text = render_text(result)
    assert "FAILED" in text and "lost wake-up" in text and failure.replay in text


def test_a_release_that_wakes_passes(registry: Registry) -> None:
    """The twin: the same moves, each buffer released with ``unlock_buffer``."""
    fstype = _table(registry, "ext2", "default", unlocks)
    result = explore(
        fstype,
        "default",
        tasks=["bh-lock"],
        pages=2,
        block_size=1024,
        preemptions=1,
        registry=registry,
    )
    assert result.exhausted and not result.failures, render_text(result)


class _Queue:
    """What :func:`~fsaops.explore.runtime.sleep_on_bit` needs of a controller: its wakes."""

    def __init__(self) -> None:
        self.wakes: dict[tuple[int, int], int] = {}
        self.waited: dict[int, set[int]] = {}

    def wake(self, obj: _Word) -> None:
        """A wake of ``obj``'s queue, as ``unlock_page`` sends it, with its flags as they are."""
        runtime._woken(self, obj, obj.flags)  # type: ignore[arg-type]


class _Word:
    def __init__(self, flags: int) -> None:
        self.flags = flags


def test_a_sleeper_goes_on_only_when_woken_with_its_bit_clear() -> None:
    lock, waiters = PG.locked, PG.waiters
    queue, page = _Queue(), _Word(lock)
    ready, free = runtime.sleep_on_bit(queue, page, "flags", lock, waiters)  # type: ignore[arg-type]
    assert free is not None
    assert not ready() and page.flags & waiters  # asleep, on the queue
    page.flags &= ~(lock | waiters)  # a release that clears both bits and wakes nobody
    assert free() and not ready()  # the lock is free; the sleeper still sleeps...
    assert page.flags & waiters  # ...on the queue, so the next release will wake it
    page.flags |= lock  # another task takes the lock, and releases it with a wake
    page.flags &= ~(lock | waiters)
    queue.wake(page)
    assert ready()
    queue.wake(_Word(0))  # a wake of another object wakes nobody here
    assert ready()


def test_a_wake_sent_before_the_bit_is_clear_wakes_nobody() -> None:
    """``wake_bit_function`` tests the bit at the wake: wake, then clear, loses the wake-up."""
    lock, waiters = PG.locked, PG.waiters
    queue, page = _Queue(), _Word(lock)
    ready, free = runtime.sleep_on_bit(queue, page, "flags", lock, waiters)  # type: ignore[arg-type]
    assert free is not None
    queue.wake(page)  # the bit is still set: nobody is woken
    page.flags &= ~(lock | waiters)
    assert free() and not ready()
    queue.wake(page)  # the bit is clear now: this one wakes it
    assert ready()


def test_a_wake_that_finds_the_bit_taken_again_leaves_the_sleeper_asleep() -> None:
    lock, waiters = PG.locked, PG.waiters
    queue, page = _Queue(), _Word(lock)
    ready, _ = runtime.sleep_on_bit(queue, page, "flags", lock, waiters)  # type: ignore[arg-type]
    page.flags &= ~(lock | waiters)
    queue.wake(page)
    page.flags |= lock  # taken again before the sleeper ran
    assert not ready() and page.flags & waiters  # back on the queue
    page.flags &= ~lock  # cleared with no wake: the earlier wake does not count
    assert not ready()
    queue.wake(page)
    assert ready()


def test_a_bit_clear_at_once_is_no_sleep() -> None:
    queue, page = _Queue(), _Word(0)
    ready, free = runtime.sleep_on_bit(queue, page, "flags", PG.locked, PG.waiters)  # type: ignore[arg-type]
    assert free is None and ready() and not page.flags


def test_the_builtin_tables_sleep_and_wake_as_before(
    registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A table that wakes its sleepers: the same schedules as a sleep on the bit alone.

    Each release clears its bit and wakes in one step, so no schedule sees
    the bit clear before the wake: the schedules are those of sleepers that
    wait only for their bit, with nothing to wake them.
    """
    result = explore("ext2", "default", tasks=["bh-lock"], block_size=1024, registry=registry)
    assert result.exhausted and not result.failures, render_text(result)

    def bit_alone(
        ctl: object, obj: object, field: str, bit: int, waiters: int
    ) -> tuple[object, None]:
        return (lambda: not getattr(obj, field) & bit), None

    monkeypatch.setattr(runtime, "sleep_on_bit", bit_alone)
    alone = explore("ext2", "default", tasks=["bh-lock"], block_size=1024, registry=registry)
    assert alone.exhausted and alone.schedules == result.schedules
    assert [f.replay for f in alone.failures] == [f.replay for f in result.failures]


RACE_PROMISE = textwrap.dedent(
    """
    import attrs

    from fsaops.buffer import BH
    from fsaops.plugins import load_plugins
    from fsaops.testing.races import MigratepageRaces

    EXT3 = load_plugins().filesystem("ext3")

    def unlock(bh):
        bh.b_state &= ~BH.lock  # clear_buffer_locked(), and no wake_up_bit

    def TABLE(newpage, page):
        return moving(newpage, page, unlock)

    class TestLost(MigratepageRaces):
        filesystem = attrs.evolve(
            EXT3,
            name="ext3_lost",
            modes={
                "ordered": attrs.evolve(
                    EXT3.aops("ordered"), name="ext3_lost_aops", migratepage=TABLE
                )
            },
        )
        mode = "ordered"
        block_size = 1024
        preemptions = 1
        pct_schedules = 0
    """
)


def test_the_race_promise_fails_a_lost_wakeup(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The kit's race promise runs the same explorer: a lost wake-up fails it."""
    monkeypatch.delenv("FSAOPS_PLUGINS", raising=False)
    moving = textwrap.dedent(inspect.getsource(_moving)).replace("def _moving", "def moving")
    header = "from __future__ import annotations\nfrom errno import EAGAIN\n"
    header += "from fsaops.buffer import buffers, lock_buffer\nfrom fsaops.page import PG\n"
    pytester.makepyfile(test_lost=header + moving + RACE_PROMISE)
    reprec = inline_reports(pytester)
    outcomes = call_reports(reprec)
    failed = [name for name, report in outcomes.items() if report.failed]
    assert failed, sorted(outcomes)
    text = "".join(outcomes[name].longreprtext for name in failed)
    assert "lost wake-up" in text
