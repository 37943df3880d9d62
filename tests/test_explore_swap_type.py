"""``explore`` of a swap type given as an object explores that type's table.

Anonymous pages migrate with the swap cache's table, which the machine
took from the registry's ``swap`` type: before, a ``FileSystemType`` named
``swap`` with a broken table, given to :func:`fsaops.explore.explore` (or
to the kit's ``MigratepageRaces``), had the built-in ``swap_aops``
explored in its place, and passed.
"""

from __future__ import annotations

import attrs

from fsaops import migrate_page
from fsaops.explore import TaskSpec, explore
from fsaops.page import Page, page_address
from fsaops_swap import SWAP, swap_aops


def _copies_before_unmapping(newpage: Page, page: Page) -> int:
    """Saves the bytes before the ptes are removed: a store in between is lost."""
    early = bytes(page_address(page))
    rc = migrate_page(newpage, page)
    if rc == 0:
        page_address(newpage)[:] = early
    return rc


BROKEN = attrs.evolve(
    SWAP,
    modes={
        "default": attrs.evolve(swap_aops, name="early_aops", migratepage=_copies_before_unmapping)
    },
)


def test_the_broken_swap_table_given_is_the_one_explored_and_it_fails() -> None:
    result = explore(BROKEN, "default", pages=2, tasks=[TaskSpec("mmap-write", 0)], preemptions=1)
    assert result.table == "early_aops"
    assert result.failures, result


def test_the_built_in_swap_table_given_as_an_object_passes() -> None:
    result = explore(SWAP, "default", pages=2, tasks=[TaskSpec("mmap-write", 0)], preemptions=1)
    assert result.table == "swap_aops"
    assert (result.failures, result.exhausted) == ((), True)
