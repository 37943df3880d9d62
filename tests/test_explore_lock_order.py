"""Spinlocks nested in the order opposite to the kernel's: the explorer says so, as lockdep does.

A ``migratepage`` that takes ``private_lock`` while it holds ``tree_lock``
deadlocks on a kernel against a task that holds ``private_lock`` and wants
``tree_lock`` (``try_to_free_buffers`` clearing the dirty bit, the order of
2.6.15's ``mm/filemap.c``).  Each explored page is the one page of its own
file, so no explored schedule has two tasks want one mapping's two locks at
once, and every schedule passed.  The explorer now checks each nested
acquire against the orders known (the kernel's own, and those earlier
schedules of the search made), and fails the schedule with "possible
circular locking dependency detected".
"""

from __future__ import annotations

from types import MappingProxyType

import attrs
import pytest

from fsaops import FileSystemType, buffer_migrate_page
from fsaops.explore import explore, replay, runtime
from fsaops.explore.api import decode_replay, render_text
from fsaops.explore.lockdep import KERNEL_ORDER, LockGraph, LockOrder
from fsaops.explore.setup import TaskSpec
from fsaops.mapping import AddressSpace
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
    result = explore(
        fstype, "default", tasks=[TaskSpec("write", 0)], pages=1, preemptions=1, registry=registry
    )
    assert result.failures, render_text(result)
    assert result.schedules > 1
    (failure,) = result.failures
    text = " ".join(p for _, p in failure.problems)
    assert CIRCULAR in text and "in an earlier schedule of this search" in text, text
    setup, _, _ = decode_replay(failure.replay)
    assert [(o.before, o.after) for o in setup.lock_orders] == [("tree_lock", "private_lock")]
    again = replay(failure.replay, registry=_knowing(registry, fstype))
    (replayed,) = again.failures
    assert replayed.problems == failure.problems


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
