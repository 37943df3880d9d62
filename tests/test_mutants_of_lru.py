"""Every mutant of the LRU's functions that changes what they do is caught.

Mutation testing of the three functions every migration takes its pages
through: ``isolate_lru_page`` takes each page off its LRU list,
``putback_lru_pages`` and ``move_to_lru`` put the ones left back and free
the old pages a migration moved; and of the three that put pages on the
lists otherwise: ``lru_cache_add`` and ``lru_cache_add_active`` (a page
read in, a new anonymous page) and ``activate_page`` (a page used twice).
:mod:`mutants` makes each with one small change (218 in all).  A mutant
replaces the code of the real function, so every caller runs it: the
engine, the callers in ``mempolicy`` and ``memory_hotplug``, the build,
the read-back and the checks.

Each mutant goes first through the LRU's own tests, called here as they
are (every case of ``tests/test_lru_flag.py`` that needs no folder of its
own: a page isolated and put back on either list, the last reference put
back, a page already marked on the LRU, a page whose references are gone,
a frame freed with a count, a page activated or left alone;
``tests/test_mempolicy.py``: a page the
walk meets twice, a process moved there and back; ``tests/test_engine.py``:
a kernel built without migration), then through ``fsaops
migrate`` on the helpers' mutation scenarios (an ext2 ``nobh`` mount, an
ext2 mount of 1 KiB blocks and anonymous memory, pages in every state)
under V4, 2.6.16 and 2.6.17.  A mutant that raises, hangs past
its time limit or breaks a run is caught.

A mutant nothing catches is listed in :data:`SURVIVORS` with why nothing
could; a survivor not listed fails this test, and so does a listed one that
is caught now.  About a minute on two workers (mutants that loop run to
their limit), so it runs with the exhaustive tests.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from types import FunctionType
from typing import Final

import pytest

import test_engine
import test_lru_flag
import test_mempolicy
import test_mutants_of_helpers
from fsaops import lru
from fsaops.plugins import load_plugins
from mutants import (
    Mutant,
    assert_listed_are_made,
    bound_tests,
    first_failing_check,
    found_with,
    judge,
    mutants,
    time_limit,
)

pytestmark = pytest.mark.exhaustive


FUNCTIONS: Final[dict[str, FunctionType]] = {
    name: getattr(lru, name)
    for name in (
        "isolate_lru_page",
        "move_to_lru",
        "putback_lru_pages",
        "lru_cache_add",
        "lru_cache_add_active",
        "activate_page",
    )
}

_SAME_END = (
    "the quick way for a page whose isolation reference is the last is skipped: it goes on "
    "its LRU list, put_page() frees it and takes it off again, as the kernel does, to the "
    "same lists, counts and free frame"
)

SURVIVORS: Final[dict[str, dict[str, str]]] = {
    "move_to_lru": {
        "delete `if page.count == 1 and (not flags & PG_lru):`": _SAME_END,
        "swap op in `flags & PG_lru`": _SAME_END,
        "delete `flags = page.flags` #2": (
            "the flags read again under lru_lock are the ones read before it: no scheduling "
            "point comes between, so nothing can change them"
        ),
        "const 0 -> -1 in `if count <= 0:`": (
            "the count drops to 0 here only for a page that came in with one reference, "
            "and such a page took the quick way above (or raised PG_lru's BUG()); a count "
            "below 0 goes to release_page() either way, which calls it a bad page"
        ),
    },
}
"""The mutants nothing tells from the LRU's functions, by function, and why each is none."""

MUTANTS: Final = [(name, m) for name, fn in FUNCTIONS.items() for m in mutants(fn)]


@functools.cache
def _checks() -> list[Callable[[], object]]:
    """The LRU's own tests, each a call with its parameters bound, and the callers' that isolate."""
    registry = load_plugins()
    checks: list[Callable[[], object]] = list(bound_tests(test_lru_flag))
    checks.append(functools.partial(test_engine.test_migration_compiled_out, registry))
    for semantics in ("v4", "2.6.16", "2.6.17"):
        for test in (
            test_mempolicy.test_a_page_the_walk_meets_twice_is_isolated_and_queued_once,
            test_mempolicy.test_migrate_to_node_moves_a_process,
        ):
            checks.append(functools.partial(test, registry, semantics))
    return checks


def first_difference(folder: Path) -> str | None:
    """The first check or run that fails with the LRU's functions as they are now, or ``None``."""
    return first_failing_check(_checks()) or test_mutants_of_helpers.caught(folder)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the scenarios go."""
    return tmp_path_factory.mktemp("mutants")


@pytest.fixture(scope="module")
def limit(folder: Path) -> float:
    """Seconds a mutant may run the probe: measured on the real functions (:func:`time_limit`)."""
    return time_limit(lambda: first_difference(folder))


def test_the_mutants_are_the_ones_the_list_names(limit: float) -> None:
    """Every listed survivor is a mutant still made (``limit`` ran the probe: the code passed)."""
    assert_listed_are_made(SURVIVORS, MUTANTS)
    assert len(MUTANTS) > 100


@pytest.mark.parametrize(
    ("function", "mutant"), MUTANTS, ids=[f"{name}: {m.name}" for name, m in MUTANTS]
)
def test_a_mutant_of_the_lru_is_caught(
    folder: Path, limit: float, function: str, mutant: Mutant
) -> None:
    """The LRU's tests or a run tell the mutant apart, unless it is a listed survivor."""
    found = found_with(FUNCTIONS[function], mutant, lambda: first_difference(folder), limit)
    unseen = f"nothing tells this mutant of {function} apart:\n{mutant.source}"
    judge(mutant, found, SURVIVORS.get(function, {}), unseen)
