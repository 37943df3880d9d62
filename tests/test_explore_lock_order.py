"""Spinlocks nested in the order opposite to the kernel's: the explorer says so, as lockdep does.

A ``migratepage`` that takes ``private_lock`` while it holds ``tree_lock``
deadlocks on a kernel against a task that holds ``private_lock`` and wants
``tree_lock`` (``try_to_free_buffers`` clearing the dirty bit, the order of
2.6.15's ``mm/filemap.c``).  Each explored page is the one page of its own
file, so no explored schedule has two tasks want one mapping's two locks at
once, and every schedule passed.  The explorer now checks each nested
acquire against the orders known (the kernel's own, and those earlier
schedules of the search made), and fails the schedule with "possible
circular locking dependency detected".  A table's own locks
(:class:`fsaops.Mutex`) are in it too: the kernel's orders know nothing of
them, so an order only an earlier schedule took is what finds two of them
nested both ways.
"""

from __future__ import annotations

from collections.abc import Callable
from types import MappingProxyType

import attrs
import pytest

from fsaops import FileSystemType, buffer_migrate_page
from fsaops.explore import explore, replay, runtime
from fsaops.explore.api import decode_replay, render_text
from fsaops.explore.lockdep import KERNEL_ORDER, LockGraph, LockOrder
from fsaops.explore.setup import TaskSpec
from fsaops.mapping import AddressSpace
from fsaops.mutex import Mutex
from fsaops.page import PG, Page
from fsaops.plugins import Registry
from test_explore_buffer_locks import _table

CIRCULAR = "possible circular locking dependency detected"


def tree_then_private(newpage: Page, page: Page) -> int:
    """Takes ``private_lock`` while it holds ``tree_lock`` (the kernel's order reversed)."""
    mapping = page.mapping
    if isinstance(mapping, AddressSpace):
        with mapping.tree_lock, mapping.private_lock:
            pass
    return buffer_migrate_page(newpage, page)


def private_then_tree(newpage: Page, page: Page) -> int:
    """Takes ``tree_lock`` while it holds ``private_lock``: the kernel's order, which passes."""
    mapping = page.mapping
    if isinstance(mapping, AddressSpace):
        with mapping.private_lock, mapping.tree_lock:
            pass
    return buffer_migrate_page(newpage, page)


def tries_private_under_tree(newpage: Page, page: Page) -> int:
    """Tries ``private_lock`` under ``tree_lock``: a trylock cannot wait, so makes no order."""
    mapping = page.mapping
    if isinstance(mapping, AddressSpace):
        with mapping.tree_lock:
            if mapping.private_lock.acquire(False):
                mapping.private_lock.release()
    return buffer_migrate_page(newpage, page)


def by_dirt(newpage: Page, page: Page) -> int:
    """Nests the two locks one way on a clean page and the other way on a dirty one."""
    mapping = page.mapping
    if isinstance(mapping, AddressSpace):
        first, second = mapping.tree_lock, mapping.private_lock
        if page.flags & PG.dirty:
            first, second = second, first
        with first, second:
            pass
    return buffer_migrate_page(newpage, page)


def _knowing(registry: Registry, fstype: FileSystemType) -> Registry:
    """``registry`` that names ``fstype`` too: a replay string names its table."""
    filesystems = MappingProxyType({**registry.filesystems, fstype.name: fstype})
    return attrs.evolve(registry, filesystems=filesystems)


@pytest.mark.parametrize("semantics", ["v4", "2.6.16", "2.6.17"])
def test_private_lock_under_tree_lock_is_a_circular_dependency(
    semantics: str, registry: Registry
) -> None:
    fstype = _table(registry, "ext2", "default", tree_then_private)
    result = explore(
        fstype,
        "default",
        tasks=["write"],
        pages=1,
        preemptions=0,
        semantics=semantics,
        registry=registry,
    )
    assert result.failures, render_text(result)
    (failure,) = result.failures
    text = " ".join(p for _, p in failure.problems)
    assert CIRCULAR in text, text
    assert "tree_lock -> private_lock" in text and "private_lock -> tree_lock" in text, text
    assert "task migrate takes private_lock of" in text and "while it holds tree_lock" in text
    assert "in tree_then_private (table ext2_tree_then_private_aops)" in text, text
    assert "try_to_free_buffers" in text and "ABBA" in text, text
    assert failure.status.value == "kernel bug"
    again = replay(failure.replay, registry=_knowing(registry, fstype))
    (replayed,) = again.failures
    assert replayed.problems == failure.problems


def test_the_kernel_order_passes(registry: Registry) -> None:
    fstype = _table(registry, "ext2", "default", private_then_tree)
    result = explore(fstype, "default", tasks=["write"], pages=1, preemptions=1, registry=registry)
    assert result.exhausted and not result.failures, render_text(result)


def test_a_trylock_makes_no_order(registry: Registry) -> None:
    fstype = _table(registry, "ext2", "default", tries_private_under_tree)
    result = explore(fstype, "default", tasks=["write"], pages=1, preemptions=1, registry=registry)
    assert result.exhausted and not result.failures, render_text(result)


def test_an_order_of_an_earlier_schedule_counts_and_replays(
    registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the kernel's orders, the two orders come from two schedules of one search.

    The schedule with no preemption migrates the clean page (``tree_lock``
    first); one in which ``write`` dirties the page first takes them the
    other way, and fails against the first schedule's order.  Its replay
    string carries that order, so the one schedule replayed fails too.
    """
    monkeypatch.setattr(runtime, "KERNEL_ORDER", ())
    fstype = _table(registry, "ext2", "default", by_dirt)
    _fails_on_an_earlier_order(registry, fstype, ("tree_lock", "private_lock"))


def _fails_on_an_earlier_order(
    registry: Registry, fstype: FileSystemType, order: tuple[str, str]
) -> str:
    """Explore ``fstype`` against ``write@0``: it fails on ``order``, taken by an earlier schedule.

    The replay string carries that order, and the replay fails the same way.
    Returns the failure's text.
    """
    result = explore(
        fstype, "default", tasks=[TaskSpec("write", 0)], pages=1, preemptions=1, registry=registry
    )
    assert result.failures, render_text(result)
    assert result.schedules > 1
    (failure,) = result.failures
    text = " ".join(p for _, p in failure.problems)
    assert CIRCULAR in text and "in an earlier schedule of this search" in text, text
    setup, _, _ = decode_replay(failure.replay)
    assert [(o.before, o.after) for o in setup.lock_orders] == [order]
    again = replay(failure.replay, registry=_knowing(registry, fstype))
    (replayed,) = again.failures
    assert replayed.problems == failure.problems
    return text


def test_the_graph_finds_a_path_of_several_orders() -> None:
    """``i_mmap_lock`` under ``tree_lock`` closes the kernel's chain through ``private_lock``."""
    graph = LockGraph(KERNEL_ORDER)
    said = graph.taking("migrate", ["tree_lock of f"], "i_mmap_lock of f", None)
    assert CIRCULAR in said and "tree_lock -> i_mmap_lock" in said
    assert "i_mmap_lock -> private_lock" in said and "private_lock -> tree_lock" in said
    assert not graph.new
    assert graph.taking("migrate", ["tree_lock of f"], "tree_lock of g", None) == ""
    assert graph.taking("migrate", ["x of f"], "y of f", None) == ""
    assert graph.new == [LockOrder("x", "y", "migrate", "?")]


def _two_mutexes_by_dirt(names: tuple[str, str]) -> Callable[[Page, Page], int]:
    """Takes a table's own two mutexes one way on a clean page and the other on a dirty one."""
    first, second = Mutex(names[0]), Mutex(names[1])

    def mutexes_by_dirt(newpage: Page, page: Page) -> int:
        outer, inner = (second, first) if page.flags & PG.dirty else (first, second)
        with outer, inner:
            pass
        return buffer_migrate_page(newpage, page)

    return mutexes_by_dirt


def test_a_table_s_own_mutexes_nested_both_ways_in_two_schedules_fail_and_replay(
    registry: Registry,
) -> None:
    """The kernel's orders know nothing of a table's own locks: an earlier schedule's order counts.

    The schedule with no preemption migrates the clean page (``s_alloc_sem``
    first); one in which ``write`` dirties the page first nests the two the
    other way.  No single schedule takes both orders, and each passed.
    """
    fstype = _table(registry, "ext2", "default", _two_mutexes_by_dirt(("s_alloc_sem", "s_bitmap")))
    text = _fails_on_an_earlier_order(registry, fstype, ("s_alloc_sem", "s_bitmap"))
    assert "takes s_alloc_sem in mutexes_by_dirt" in text and "while it holds s_bitmap" in text


def test_a_table_s_own_mutexes_nested_one_way_pass(registry: Registry) -> None:
    first, second = Mutex("s_alloc_sem"), Mutex("s_bitmap")

    def mutexes_in_order(newpage: Page, page: Page) -> int:
        with first, second:
            pass
        return buffer_migrate_page(newpage, page)

    fstype = _table(registry, "ext2", "default", mutexes_in_order)
    result = explore(
        fstype, "default", tasks=[TaskSpec("write", 0)], pages=1, preemptions=1, registry=registry
    )
    assert result.exhausted and not result.failures, render_text(result)


def test_a_mutex_and_a_kernel_spinlock_nested_both_ways_fail(registry: Registry) -> None:
    """``tree_lock`` under the table's mutex on a clean page, the mutex under it on a dirty one.

    The second is a sleeping lock taken under a spinlock: ``mutex_lock``'s
    ``might_sleep()`` says so first, held or free.
    """
    own = Mutex("s_alloc_sem")

    def mutex_and_tree_lock(newpage: Page, page: Page) -> int:
        mapping = page.mapping
        if isinstance(mapping, AddressSpace):
            if page.flags & PG.dirty:
                with mapping.tree_lock, own:
                    pass
            else:
                with own, mapping.tree_lock:
                    pass
        return buffer_migrate_page(newpage, page)

    fstype = _table(registry, "ext2", "default", mutex_and_tree_lock)
    result = explore(
        fstype, "default", tasks=[TaskSpec("write", 0)], pages=1, preemptions=1, registry=registry
    )
    (failure,) = result.failures
    text = " ".join(p for _, p in failure.problems)
    assert "sleeping function called from invalid context: migrate calls mutex_lock of " in text
    assert "s_alloc_sem in mutex_and_tree_lock holding spinlock tree_lock of" in text, text
