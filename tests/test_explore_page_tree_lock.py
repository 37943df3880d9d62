"""A table that replaces a page's slot without ``tree_lock``: the explored kernel says so.

The kernel checks the reference count and replaces the radix tree slot
under ``write_lock_irq(&mapping->tree_lock)``, the lock ``find_get_page``
takes a page and its reference under; done without it, a lookup between
the check and the store takes the old page after the migration counted
its references.  There is no scheduling point in that window for the
explorer to run the lookup in, so every schedule of such a table passed.
In an explored kernel a mapping's page tree now refuses a slot set by a
task that does not hold its ``tree_lock``.
"""

from __future__ import annotations

from errno import EAGAIN

from fsaops import migrate_page
from fsaops.explore import explore
from fsaops.explore.api import render_text
from fsaops.explore.setup import TaskSpec
from fsaops.mapping import AddressSpace
from fsaops.page import Page
from fsaops.plugins import Registry
from fsaops.status import Status
from test_explore_buffer_locks import _table


def replaces_the_slot_without_tree_lock(newpage: Page, page: Page) -> int:
    """``migrate_page`` of an unmapped page, its count check and slot store done with no lock."""
    mapping = page.mapping
    if not isinstance(mapping, AddressSpace) or page.mapcount or page.count != 2:
        return -EAGAIN
    newpage.count += 1
    newpage.index = page.index
    newpage.mapping = mapping
    mapping.page_tree[page.index] = newpage
    page.count -= 1
    page.node.kernel.semantics.migrate_page_copy(newpage, page)
    return 0


def test_a_slot_replaced_without_tree_lock_fails_the_first_schedule(registry: Registry) -> None:
    fstype = _table(registry, "ext2", "nobh", replaces_the_slot_without_tree_lock)
    result = explore(fstype, "nobh", tasks=[TaskSpec("write", 0)], registry=registry)
    assert result.failures, render_text(result)
    (failure,) = result.failures
    assert failure.preemptions == 0
    said = " ".join(problem for _, problem in failure.problems)
    assert "radix tree of ext2" in said and "changed without its tree_lock" in said, said
    assert "task migrate sets slot 0 in replaces_the_slot_without_tree_lock" in said, said
    assert "for a lookup to take the old page" in said and "more characters" not in said, said
    assert result.status is Status.KERNEL_BUG


def test_migrate_page_itself_passes_with_the_checked_tree(registry: Registry) -> None:
    fstype = _table(registry, "ext2", "nobh", migrate_page)
    result = explore(fstype, "nobh", tasks=[TaskSpec("write", 0)], registry=registry)
    assert result.exhausted and not result.failures, render_text(result)
