"""Every mutant of the engine's fallback and of ``swap_page`` that changes what they do is caught.

Mutation testing of the engine's own path for a table without
``migratepage``: :mod:`mutants` makes ``_fallback`` (V4 §3 step 10: write
a dirty page out, release its buffers, ``migrate_page``, ``swap_page``
after the fifth pass) and ``swap_page`` with one small change each, 145
in all.  A mutant replaces the code of the real function, and
:func:`test_fallback_paths.first_difference` follows a page in each state
through the fallback and through a swap-out, under every release, with
buffer heads and without: every attempt's path, result and reason, the
oracle's judgement of each moved page, what the report counts
(``vmstat.migrate_pageout``, ``via``, reasons, errors), and that no page is
left locked or dropped while still mapped.

The verdict of ``fsaops migrate`` alone lets most of these through, for a
fallback that writes a page once too often or drops a page it could have
moved keeps the data: that is why the steps are followed one by one.  A
mutant they do not catch is listed in :data:`SURVIVORS` with why nothing
can tell it from the real function; a survivor not listed fails this test,
and so does a listed one that is caught now.  A mutant that raises, or
runs past its time limit, is caught.
"""

from __future__ import annotations

from types import FunctionType
from typing import Final

import pytest

from fsaops import migrate
from mutants import (
    UNCHANGED,
    Mutant,
    assert_listed_are_made,
    found_with,
    judge,
    mutants,
    time_limit,
)
from test_fallback_paths import first_difference

FUNCTIONS: Final[dict[str, FunctionType]] = {
    name: getattr(migrate, name) for name in ("_fallback", "swap_page")
}

_NEWPAGE_UNUSED = (
    "the engine does not use the page a failed attempt gives back: only a success's new "
    "page goes to the LRU (debug_vm's check after the call is given None)"
)
_RELEASE_TEST = "in `if page.flags & PG_private and (not try_to_release_page(page, GFP_K...`"
_NOT_MAPPED_HERE = (
    "a page that left its mapping (truncated) is freed by the truncate, which drops its "
    "buffers: the engine finds its count at 1 and moves it as freed before swap_page, so "
    "no page reaches swap_page with buffers and no mapping in a serial run"
)

SURVIVORS: Final[dict[str, dict[str, str]]] = {
    "_fallback": {
        "swap op in `Page | None`": UNCHANGED,
        "`newpage` for `page` in `kernel = page.node.kernel`": (
            "both pages are on nodes of the one kernel"
        ),
        "`page` for `newpage` in `return (rc, 'unmap', newpage)`": _NEWPAGE_UNUSED,
        "`page` for `newpage` in `return (-EAGAIN, f'pageout_{result.value}', newpage)`": (
            _NEWPAGE_UNUSED
        ),
        "`page` for `newpage` in `return (-EAGAIN, 'pageout_success', newpage)`": (_NEWPAGE_UNUSED),
        "`page` for `newpage` in `return (-EAGAIN, 'release_failed', newpage)`": (_NEWPAGE_UNUSED),
        "`newpage` for `page` in `if not page.flags & PG_dirty:`": (
            "a page a failed write left dirty is dirty on the next pass too, so the fallback "
            "writes it out again before it can move, and it is among the pages written "
            "either way when it does (via writeback)"
        ),
    },
    "swap_page": {
        "flip compare `mapping is None`": _NOT_MAPPED_HERE,
        "flip compare `page.count == 1`": _NOT_MAPPED_HERE,
        f"`newpage` for `page` {_RELEASE_TEST} #3": _NOT_MAPPED_HERE,
        f"const 1 -> 0 {_RELEASE_TEST}": _NOT_MAPPED_HERE,
        f"const 1 -> 2 {_RELEASE_TEST}": _NOT_MAPPED_HERE,
    },
}

MUTANTS: Final = [(name, m) for name, fn in FUNCTIONS.items() for m in mutants(fn)]


@pytest.fixture(scope="module")
def limit() -> float:
    """Seconds a mutant may run the probe: measured on the real functions (:func:`time_limit`)."""
    return time_limit(first_difference)


def test_the_mutants_are_the_ones_the_list_names(limit: float) -> None:
    """Every listed survivor is a mutant still made (``limit`` ran the probe: the code passed)."""
    assert_listed_are_made(SURVIVORS, MUTANTS)
    assert len(MUTANTS) > 100


@pytest.mark.parametrize(
    ("function", "mutant"), MUTANTS, ids=[f"{name}: {m.name}" for name, m in MUTANTS]
)
def test_a_mutant_of_the_fallback_is_caught(limit: float, function: str, mutant: Mutant) -> None:
    """The steps followed tell the mutant apart, unless it is a listed survivor."""
    # A mutant that breaks the engine outright, or loops past the limit, is caught too.
    found = found_with(FUNCTIONS[function], mutant, first_difference, limit)
    unseen = f"nothing tells this mutant of {function} apart:\n{mutant.source}"
    judge(mutant, found, SURVIVORS[function], unseen)
