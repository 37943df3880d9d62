"""The flusher's dirty-to-writeback handoff is two steps: the window is explored.

``clear_page_dirty_for_io`` clears ``PG_dirty`` under the mapping's
``tree_lock`` and ``set_page_writeback`` takes that lock again to set
``PG_writeback``: in between, another CPU sees the page neither dirty nor
under writeback.  The model did both in one step, so a ``migratepage``
that looked at ``PageWriteback`` with the page lock let go never saw that
state, and a search of it said "exhausted, no schedule fails".  The
release of ``tree_lock`` after the dirty bit is cleared is a scheduling
point now.
"""

from __future__ import annotations

from collections.abc import Callable
from errno import EAGAIN

import attrs
import pytest

from fsaops import buffer_migrate_page
from fsaops.aops import FileSystemType
from fsaops.explore import TaskSpec, explore
from fsaops.explore.api import render_text
from fsaops.page import PG, Page, lock_page, unlock_page
from fsaops.plugins import Registry


def looks_at_writeback_unlocked(newpage: Page, page: Page) -> int:
    """Reads PageWriteback with the page lock dropped, then moves the page."""
    unlock_page(page)
    busy = page.flags & PG.writeback
    lock_page(page)
    if busy:
        return -EAGAIN
    return buffer_migrate_page(newpage, page)


def looks_at_writeback_locked(newpage: Page, page: Page) -> int:
    """The same, but reads PageWriteback once it holds the page lock again."""
    unlock_page(page)
    lock_page(page)
    if page.flags & PG.writeback:
        return -EAGAIN
    return buffer_migrate_page(newpage, page)


def _ext2_with(
    registry: Registry, name: str, migratepage: Callable[[Page, Page], int]
) -> FileSystemType:
    ext2 = registry.filesystems["ext2"]
    table = attrs.evolve(ext2.modes["default"], name=f"{name}_aops", migratepage=migratepage)
    return attrs.evolve(ext2, name=name, modes={"default": table}, page_cache={})


@pytest.mark.exhaustive
def test_a_lockless_writeback_check_is_raced_by_the_flusher(registry: Registry) -> None:
    """Before: 'exhausted' after 1,068 schedules, none fails."""
    fstype = _ext2_with(registry, "unlockedcheck", looks_at_writeback_unlocked)
    result = explore(
        fstype,
        tasks=[TaskSpec("writeback", 0)],
        pages=1,
        block_size=4096,
        preemptions=3,
        registry=registry,
    )
    assert result.failures, render_text(result)
    (failure,) = result.failures
    assert any("while it is still in use" in p for _, p in failure.problems), failure.problems
    text = render_text(result)
    assert "spin_unlock in clear_page_dirty_for_io page 0 (pfn 0) [tree_lock]" in text, text


@pytest.mark.exhaustive
def test_a_check_made_under_the_page_lock_passes(registry: Registry) -> None:
    fstype = _ext2_with(registry, "lockedcheck", looks_at_writeback_locked)
    result = explore(
        fstype,
        tasks=[TaskSpec("writeback", 0)],
        pages=1,
        block_size=4096,
        preemptions=3,
        registry=registry,
    )
    assert result.exhausted, render_text(result)
    assert not result.failures, render_text(result)
