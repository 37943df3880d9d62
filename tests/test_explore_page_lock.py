"""A page lock dropped while its page stays in the task's hands: the window is explored.

``unlock_page`` and a ``lock_page`` that finds the lock free never called
the scheduler, so a ``migratepage`` that let the page lock go and took it
straight back ran both as one step: "no schedule fails", where on another
CPU the flusher may lock the page in between and start writeback on it,
which the migration then moves and frees.  A page lock the migration task
releases is a scheduling point now.

So is one an accessor releases while it holds no spinlock: ``write(2)``
unlocks the page it wrote and only then drops its reference, and on
another CPU the migration, asleep on that lock, takes it at once and
finds the page dirty and one reference too many.  Before, the writer's
unlock and everything up to its next point were one step.
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
from fsaops.status import Status
from fsaops.writeback import clear_page_dirty_for_io, set_page_dirty


def _ext2_with(
    registry: Registry, name: str, migratepage: Callable[[Page, Page], int]
) -> FileSystemType:
    ext2 = registry.filesystems["ext2"]
    table = attrs.evolve(ext2.modes["default"], name=f"{name}_aops", migratepage=migratepage)
    return attrs.evolve(ext2, name=name, modes={"default": table}, page_cache={})


def drops_the_page_lock(newpage: Page, page: Page) -> int:
    """Lets the page lock go and takes it back, and forgets the page may be under writeback."""
    unlock_page(page)
    lock_page(page)
    return buffer_migrate_page(newpage, page)


def drops_the_page_lock_and_checks_again(newpage: Page, page: Page) -> int:
    """The same, but gives the page up if writeback started meanwhile, as the engine would."""
    unlock_page(page)
    lock_page(page)
    if page.flags & PG.writeback:
        return -EAGAIN
    return buffer_migrate_page(newpage, page)


def cleans_before_it_knows_it_can_move(newpage: Page, page: Page) -> int:
    """Takes the page's dirty state first, and gives a page it cannot move up clean."""
    dirty = clear_page_dirty_for_io(page)
    rc = buffer_migrate_page(newpage, page)
    if rc == 0 and dirty:
        set_page_dirty(newpage)
    return rc


def test_a_page_lock_dropped_and_taken_again_at_once_is_found(registry: Registry) -> None:
    """Before: 'the bounded space is exhausted ... no schedule fails'."""
    fstype = _ext2_with(registry, "dropper", drops_the_page_lock)
    result = explore(fstype, tasks=[TaskSpec("writeback", 0)], pages=2, registry=registry)
    assert result.failures, render_text(result)
    (failure,) = result.failures
    assert any("while it is still in use" in p for _, p in failure.problems), failure.problems
    assert any(step.kind == "unlock_page" for step in failure.interleaving)
    assert "unlock_page in drops_the_page_lock page 0" in render_text(result)


@pytest.mark.exhaustive
def test_one_that_checks_for_writeback_after_it_passes(registry: Registry) -> None:
    fstype = _ext2_with(registry, "rechecker", drops_the_page_lock_and_checks_again)
    result = explore(fstype, tasks=[TaskSpec("writeback", 0)], pages=2, registry=registry)
    assert not result.failures, render_text(result)
    assert result.exhausted and result.status is Status.OK


def test_the_window_after_a_writer_unlocks_its_page_is_explored(registry: Registry) -> None:
    """Before: 'the bounded space is exhausted (53 schedules) ... no schedule fails'.

    Page 0 is clean until the writer dirties it; the only moment the
    migration finds it dirty with the writer's reference still held is
    between the writer's ``unlock_page`` and its ``put_page``.
    """
    fstype = _ext2_with(registry, "cleaner", cleans_before_it_knows_it_can_move)
    result = explore(fstype, tasks=[TaskSpec("write", 0)], pages=2, registry=registry)
    assert result.failures, render_text(result)
    (failure,) = result.failures
    assert failure.status is Status.DATA_LOST, failure.problems
    text = render_text(result)
    assert "write@0  unlock_page in generic_file_write page 0" in text, text


def test_the_correct_table_passes_the_writers_window(registry: Registry) -> None:
    result = explore("ext2", tasks=[TaskSpec("write", 0)], pages=2, registry=registry)
    assert result.exhausted and not result.failures, render_text(result)
    assert any("an extra reference is held" in why for why in result.reasons), result.reasons
