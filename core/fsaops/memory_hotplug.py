"""Migrating every page off a node (``mm/memory_hotplug.c``).

The 2005 kernel had no caller that emptied a whole node; memory hot-remove
(``offline_pages``, 2.6.24) later did exactly that, through the same
``migrate_pages``.  :func:`migrate_node` is that caller: isolate every LRU
page of the source node, then move them with
:func:`~fsaops.mempolicy.migrate_pages_to`.  (``fsaops migrate`` does the
same in chunks of its own, so that it can show progress.)
"""

from __future__ import annotations

from errno import ENOSYS
from typing import TYPE_CHECKING

import attrs

from fsaops.errors import MigrationDisabled
from fsaops.lists import PageList, list_add_tail
from fsaops.lru import isolate_lru_page, putback_lru_pages
from fsaops.mempolicy import migrate_pages_to
from fsaops.migrate import MigrateStats

if TYPE_CHECKING:
    from fsaops.kernel import Kernel

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
        for page in list(lru):
            if isolate_lru_page(page) == 1:
                list_add_tail(page, pagelist)
                count += 1
    return count


def migrate_node(
    kernel: Kernel, source: int, dest: int, *, stats: MigrateStats | None = None
) -> NodeMigration:
    """Move every page on node ``source`` to node ``dest``.

    Pages that could not be moved go back on the LRU.

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
    rc = migrate_pages_to(pagelist, None, dest, stats=stats)
    left = len(pagelist)
    putback_lru_pages(pagelist)
    if rc == -ENOSYS:  # pragma: no cover - guarded above
        raise MigrationDisabled("migration is not available (ENOSYS)")
    return NodeMigration(isolated=isolated, left=left, rc=rc, stats=stats)
