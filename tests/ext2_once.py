"""ext2's table as ``alt``, whose first ``migratepage`` that moves a page does one thing more.

The tests of what a table may do beyond the page it moves (swap a file's
table, grow its size, change its mount's table, clear an error) wrap ext2's
correct table this way and add the one act under test.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs

from fsaops.fs import Inode
from fsaops.page import Page
from fsaops.plugins import Registry

SCENARIO = (
    '[kernel]\nnode_memory = "4MiB"\n[[mount]]\nfs = "alt"\npages = 16\nfiles = 2\n'
    '[[mount]]\nfs = "ext2"\npages = 8\n[workload]\nseed = 3\ndirty = 0.5\n'
)
"""Two files of ``alt``, half their pages dirty, and a mount of plain ext2 beside them."""

Act = Callable[[Inode], None]


def once(registry: Registry, act: Act) -> Registry:
    """``registry`` with ``alt`` (``alt_aops``): ext2, whose first ``migratepage`` that moves
    a page does ``act`` to that page's file."""
    ext2 = registry.filesystems["ext2"]
    a_ops = ext2.modes["default"]
    migratepage = a_ops.migratepage
    assert migratepage is not None
    done: list[bool] = []

    def alt_migratepage(newpage: Page, page: Page, /) -> int:
        rc = migratepage(newpage, page)
        if rc == 0 and not done:
            done.append(True)
            host = newpage.mapping.host  # type: ignore[union-attr]
            assert isinstance(host, Inode)
            act(host)
        return rc

    table = attrs.evolve(a_ops, name="alt_aops", migratepage=alt_migratepage)
    alt = attrs.evolve(ext2, name="alt", modes={"default": table})
    return attrs.evolve(registry, filesystems={**registry.filesystems, "alt": alt})
