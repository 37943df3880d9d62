"""Migrating every page off a node (``mm/memory_hotplug.c``).

The 2005 kernel had no caller that emptied a whole node; memory hot-remove
(``offline_pages``, 2.6.24) later did exactly that, through the same
``migrate_pages``.  :func:`migrate_node` is that caller: isolate every LRU
page of the source node, then move them with
:func:`~fsaops.mempolicy.migrate_pages_to`, all at once or a chunk at a
time with progress reported (as ``fsaops migrate`` calls it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from errno import ENOSYS
from typing import TYPE_CHECKING, Any

import attrs

from fsaops.errors import MigrationDisabled
from fsaops.lists import PageList, list_add_tail, list_move_tail, list_splice
from fsaops.lru import isolate_lru_page, putback_lru_pages
from fsaops.mempolicy import migrate_pages_to
from fsaops.migrate import MigrateStats

if TYPE_CHECKING:
    from fsaops.kernel import Kernel
    from fsaops.page import Page

__all__ = ["NodeMigration", "isolate_node_pages", "migrate_node"]


@attrs.frozen
class NodeMigration:
    """The outcome of :func:`migrate_node`.

    Attributes:
        isolated: pages taken off the source node's LRU lists.
        left: pages still on the source node when it finished (failed or busy).
        rc: what ``migrate_pages_to`` returned (negative: an errno).
        stats: per-table outcomes.
    """

    isolated: int
    left: int
    rc: int
    stats: MigrateStats


def isolate_node_pages(kernel: Kernel, nid: int, pagelist: PageList) -> int:
    """Isolate every page on node ``nid``'s LRU lists onto ``pagelist``; returns how many."""
    node = kernel.nodes[nid]
    count = 0
    for lru in (node.inactive, node.active):
        # Walked by hand, safe against removal (isolating takes the page off):
        # no copy of a list of every page of the node.
        page: Any = lru.lru_next
        while page is not lru:
            nxt = page.lru_next
            if isolate_lru_page(page) == 1:
                list_add_tail(page, pagelist)
                count += 1
            page = nxt
    return count


def migrate_node(
    kernel: Kernel,
    source: int,
    dest: int,
    *,
    stats: MigrateStats | None = None,
    chunk: int | None = None,
    progress: Callable[[int, int], object] | None = None,
) -> NodeMigration:
    """Move every page on node ``source`` to node ``dest``.

    With ``chunk``, the isolated pages go to
    :func:`~fsaops.mempolicy.migrate_pages_to` ``chunk`` pages at a time, and
    ``progress(done, total)`` is called after each; otherwise in one call.
    Pages that could not be moved go back on the LRU.

    Returns the outcome; ``rc`` is the first negative errno a call
    returned, else the last call's result.

    Raises:
        MigrationDisabled: the kernel was built without migration (``-ENOSYS``).
    """
    if not kernel.migration:
        raise MigrationDisabled(
            "this kernel was built without CONFIG_MIGRATION: migration is not available (ENOSYS)"
        )
    stats = stats if stats is not None else MigrateStats()
    pagelist = PageList("pagelist")
    isolated = isolate_node_pages(kernel, source, pagelist)
    left = PageList("left")
    rc = 0
    done = 0
    try:
        if progress is not None:
            progress(0, isolated)
        while not pagelist.empty():
            part = PageList("chunk")
            for page in list(_first(pagelist, chunk or isolated)):
                list_move_tail(page, part)
            size = len(part)
            result = migrate_pages_to(part, None, dest, stats=stats)
            if rc >= 0:
                rc = result
            list_splice(part, left)
            done += size
            if progress is not None:
                progress(done, isolated)
    finally:
        count = len(left) + len(pagelist)
        putback_lru_pages(left)
        putback_lru_pages(pagelist)
    if rc == -ENOSYS:  # pragma: no cover - guarded above
        raise MigrationDisabled("migration is not available (ENOSYS)")
    return NodeMigration(isolated=isolated, left=count, rc=rc, stats=stats)


def _first(pagelist: PageList, count: int) -> Iterator[Page]:
    for n, page in enumerate(pagelist):
        if n == count:
            return
        yield page
