"""Every mutant of ``migrate_pages`` that changes what it does is caught.

Mutation testing of the engine itself: :mod:`mutants` makes
``migrate_pages`` with one small change each (528 in all).  A mutant
replaces the code of the real function, so every caller runs it, and
:func:`test_fallback_paths.first_difference` follows the engine through
the generic path and a swap-out, then
:func:`test_main_path.first_difference` through every part of that module
(a page in each state under each release, calls of every shape and what
they count, ``debug_vm``'s stops, the replay, another task's event,
tables that do something wrong, explored schedules), quickest first.  A
mutant that runs past its time limit (a pass loop that never ends) is
caught too.

A mutant they do not catch is listed in :data:`SURVIVORS` with why
nothing can tell it from the real function; a survivor not listed fails
this test, and so does a listed one that is caught now.  Most mutants are
told apart in well under a second, a survivor runs every probe (a few
seconds), and all of them take about six minutes on two workers, so the
test runs with the exhaustive ones.
"""

from __future__ import annotations

from typing import Final

import pytest

import test_fallback_paths
import test_main_path
from fsaops import migrate
from mutants import (
    UNCHANGED,
    Mutant,
    found_with,
    judge,
    mutants,
    time_limit,
)

pytestmark = pytest.mark.exhaustive


_FIRST_VALUE = "a first value, which every way on sets again before it is read"
_NEW_PAGE_LOCK = (
    "the lock of a page just allocated, which no other task can hold: the lock is taken "
    "either way, and lock_page never sleeps on it"
)
_ANON = (
    "page_mapping of an anonymous page outside the swap cache: here every anonymous page "
    "has been given a swap entry (add_to_swap above), or has failed"
)
_DISARM = (
    "the watch of the call's writes is put down where the call ended by raising; the "
    "`finally` that closes the watch on the way out puts it down too"
)
_QUICK_RC = (
    "the engine's quick test of what a table returned: _migratepage_returned, which it "
    "calls, tests the value again and gives a 0 or an errno back as it is"
)
_V4_REMOVE_FROM_SWAP = (
    "V4's remove_from_swap gives back only swap ptes of areas it finds through a present "
    "pte: an anonymous page with one pte has a present pte and no swap pte, or neither, "
    "and two ptes of one anonymous page need a fork, which nothing builds (a new page has "
    "no present pte; later releases call it from migrate_page)"
)
_WRITTEN = (
    "a moved page left among the pfns written out: only a later page of the same pfn "
    "moved on the same counts would be said to go via writeback, and no frame is an old "
    "page twice on one count (old pages are on the source node, new ones come from the "
    "target)"
)
_COUNT_RUN = "_count_run, which it calls, tests the count of the run again"
_WAKE = (
    "wakes the page's waiters whether or not PG_waiters says there are any: a woken "
    "thread tests the lock again, and with no waiter the wake-up does nothing"
)

SURVIVORS: Final[dict[str, str]] = {
    "swap op in `PageList | None`": UNCHANGED,
    "swap op in `MigrateStats | None`": UNCHANGED,
    "swap op in `Kernel | None`": UNCHANGED,
    "swap op in `str | None`": UNCHANGED,
    "delete `retry = 0`": _FIRST_VALUE,
    "const 0 -> -1 in `retry = 0`": _FIRST_VALUE,
    "const 0 -> 1 in `retry = 0`": _FIRST_VALUE,
    "delete `path = ''`": _FIRST_VALUE,
    "delete `current.why = ''`": (
        "the reason cleared where a call stops for want of a new page: no attempt follows "
        "in that call, and each attempt clears it first"
    ),
    "`page` for `newpage` in `flags = newpage.flags`": _NEW_PAGE_LOCK,
    "negate `flags & PG_locked`": _NEW_PAGE_LOCK,
    "swap op in `flags & PG_locked` #2": _NEW_PAGE_LOCK,
    "delete `lock_page(newpage)`": _NEW_PAGE_LOCK,
    "`page` for `newpage` in `lock_page(newpage)`": _NEW_PAGE_LOCK,
    "delete `if mapping is not None and mapping.anon:`": _ANON,
    "delete `mapping = None`": _ANON,
    "delete `if watch is not None:` #2": _DISARM,
    "delete `watch.disarm()`": _DISARM,
    "delete `if watch is not None:` #3": _DISARM,
    "delete `watch.disarm()` #2": _DISARM,
    "delete `if watch is not None:` #4": _DISARM,
    "delete `watch.disarm()` #3": _DISARM,
    "const 0 -> -1 in `if type(rc) is not int or (rc and (not _MIN_ERRNO <= rc < 0)):`": (
        _QUICK_RC
    ),
    "const 0 -> 1 in `if type(rc) is not int or (rc and (not _MIN_ERRNO <= rc < 0)):`": (_QUICK_RC),
    "delete `if engine_remove_from_swap is not None and path != 'add_to_swap':`": (
        _V4_REMOVE_FROM_SWAP
    ),
    "flip compare `path != 'add_to_swap'`": _V4_REMOVE_FROM_SWAP,
    "delete `engine_remove_from_swap(page)`": _V4_REMOVE_FROM_SWAP,
    "`newpage` for `page` in `engine_remove_from_swap(page)`": _V4_REMOVE_FROM_SWAP,
    "delete `if engine_remove_from_swap is not None and newpage.flags & PG_swapc...`": (
        _V4_REMOVE_FROM_SWAP
    ),
    "flip compare `engine_remove_from_swap is not None` #2": _V4_REMOVE_FROM_SWAP,
    "swap op in `newpage.flags & PG_swapcache`": _V4_REMOVE_FROM_SWAP,
    "`page` for `newpage` in `if engine_remove_from_swap is not None and newpage.flags & "
    "PG_swapc...`": _V4_REMOVE_FROM_SWAP,
    "delete `engine_remove_from_swap(newpage)`": _V4_REMOVE_FROM_SWAP,
    "`page` for `newpage` in `engine_remove_from_swap(newpage)`": _V4_REMOVE_FROM_SWAP,
    "delete `if written:`": _WRITTEN,
    "negate `written`": _WRITTEN,
    "delete `written.discard(page.pfn)`": _WRITTEN,
    "`newpage` for `page` in `written.discard(page.pfn)`": _WRITTEN,
    "flip compare `name is run_name`": (
        "each moved page starts a run of its own, and the run before is counted: the same "
        "totals, counted a page at a time"
    ),
    "swap op in `flags & PG_waiters`": _WAKE,
    "swap op in `flags & PG_waiters` #2": _WAKE,
    "`page` for `newpage` in `for which in (page, newpage):`": (
        "the new page's PG_lru test after the generic path, which hands the new page to no "
        "table code (only the engine's migrate_page; writepage and releasepage get the old "
        "page)"
    ),
    "const 2 -> 0 in `if run[2]:`": _COUNT_RUN,
    "const 2 -> 1 in `if run[2]:`": _COUNT_RUN,
}
"""The mutants nothing tells from ``migrate_pages``, and why each is none anything could."""

MUTANTS: Final = mutants(migrate.migrate_pages)


def first_difference() -> str | None:
    """What the probes find the engine doing wrong, or ``None``."""
    return test_fallback_paths.first_difference() or test_main_path.first_difference()


@pytest.fixture(scope="module")
def limit() -> float:
    """Seconds a mutant may run the probe: measured on the real engine (:func:`time_limit`)."""
    return time_limit(first_difference)


def test_the_mutants_are_the_ones_the_list_names(limit: float) -> None:
    """Every listed survivor is a mutant still made (``limit`` ran the probe: the code passed)."""
    names = [m.name for m in MUTANTS]
    assert len(set(names)) == len(names)
    assert set(SURVIVORS) <= set(names), set(SURVIVORS) - set(names)
    assert len(MUTANTS) > 500


@pytest.mark.parametrize("mutant", MUTANTS, ids=[m.name for m in MUTANTS])
def test_a_mutant_of_the_engine_is_caught(limit: float, mutant: Mutant) -> None:
    """The probes tell the mutant apart, unless it is a listed survivor."""
    found = found_with(migrate.migrate_pages, mutant, first_difference, limit)
    unseen = f"nothing tells this mutant of migrate_pages apart:\n{mutant.source}"
    judge(mutant, found, SURVIVORS, unseen)
