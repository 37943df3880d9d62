"""A table's own ``fsaops.spinlock.Spinlock`` under ``fsaops explore``.

The explorer knew the explored kernel's spinlocks (a mapping's
``tree_lock`` and ``private_lock``, a process's ``page_table_lock``) and a
table's own :class:`fsaops.Mutex`, but a :class:`~fsaops.spinlock.Spinlock`
of the table's own was a plain lock there: a ``migratepage`` that took its
mutex, or slept on a page, while holding one passed every schedule, and
two of them nested both ways were never ordered.  In a schedule such a lock
is now a spinlock of the explored kernel.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from fsaops import buffer_migrate_page
from fsaops.explore import ExploreResult, explore
from fsaops.explore.api import render_text
from fsaops.explore.setup import TaskSpec
from fsaops.mutex import Mutex
from fsaops.page import PG, Page, lock_page, unlock_page
from fsaops.plugins import Registry
from fsaops.spinlock import Spinlock, held_spinlocks
from test_explore_buffer_locks import _table

Migratepage = Callable[[Page, Page], int]


def _explore(
    registry: Registry, migratepage: Migratepage, *, preemptions: int = 1, semantics: str = "v4"
) -> ExploreResult:
    """Explore ``migratepage`` in ext2's table against one ``write`` of the page."""
    fstype = _table(registry, "ext2", "default", migratepage)
    return explore(
        fstype,
        "default",
        tasks=[TaskSpec("write", 0)],
        pages=1,
        preemptions=preemptions,
        semantics=semantics,
        registry=registry,
    )


def _problems(result: ExploreResult) -> str:
    assert result.failures, render_text(result)
    return " ".join(p for failure in result.failures for _, p in failure.problems)


def test_a_mutex_taken_under_the_table_s_own_spinlock_fails(registry: Registry) -> None:
    """Taking and letting go of the spinlock are scheduling points, labelled with the table's
    code, and the mutex taken under it is the might_sleep BUG."""
    spin, sem = Spinlock("s_lock", None), Mutex("s_alloc_sem")

    def mutex_under_own_spinlock(newpage: Page, page: Page) -> int:
        with spin, sem:
            pass
        return buffer_migrate_page(newpage, page)

    result = _explore(registry, mutex_under_own_spinlock)
    text = _problems(result)
    assert "sleeping function called from invalid context" in text, text
    assert "mutex_lock of s_alloc_sem" in text and "holding spinlock s_lock" in text, text
    assert "taken in mutex_under_own_spinlock" in text, text
    shown = render_text(result)
    assert "spin_lock in mutex_under_own_spinlock [s_lock]" in shown, shown


def test_a_sleep_under_the_table_s_own_spinlock_fails(registry: Registry) -> None:
    """``lock_page`` of the new page (free, locked by nobody) with the spinlock held: a sleep
    that may happen, which a schedule in which it does shows."""
    spin = Spinlock("s_lock", None)

    def sleeps_under_own_spinlock(newpage: Page, page: Page) -> int:
        with spin:
            if page.flags & PG.locked:
                unlock_page(page)
                lock_page(page)  # may sleep: another task may take it in between
        return buffer_migrate_page(newpage, page)

    text = _problems(_explore(registry, sleeps_under_own_spinlock, preemptions=2))
    assert "sleeping function called from invalid context" in text, text
    assert "holding spinlock s_lock" in text, text


def test_two_own_spinlocks_nested_both_ways_in_two_schedules_fail(registry: Registry) -> None:
    """One order on a clean page, the other on a page ``write`` dirtied first: lockdep knows the
    order an earlier schedule took."""
    first, second = Spinlock("s_bitmap_lock", None), Spinlock("s_inode_lock", None)

    def nested_by_dirt(newpage: Page, page: Page) -> int:
        outer, inner = (second, first) if page.flags & PG.dirty else (first, second)
        with outer, inner:
            pass
        return buffer_migrate_page(newpage, page)

    text = _problems(_explore(registry, nested_by_dirt))
    assert "possible circular locking dependency detected" in text, text
    assert "s_bitmap_lock" in text and "s_inode_lock" in text, text


@pytest.mark.parametrize("semantics", ["v4", "2.6.17"])
def test_the_table_s_own_spinlock_taken_alone_passes(registry: Registry, semantics: str) -> None:
    spin, sem = Spinlock("s_lock", None), Mutex("s_alloc_sem")

    def in_turn(newpage: Page, page: Page) -> int:
        with sem:
            pass
        with spin:
            pass
        with sem, spin:  # a spinlock under a mutex is fine
            pass
        return buffer_migrate_page(newpage, page)

    result = _explore(registry, in_turn, semantics=semantics)
    assert result.exhausted and not result.failures, render_text(result)
    assert not held_spinlocks()  # every schedule let go of it
