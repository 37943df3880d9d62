"""Every mutant of the engine's callers that changes what they do is caught.

Mutation testing of the code that hands ``migrate_pages`` its pages: the
callers of ``mm/mempolicy.c`` (``check_range`` walks a process's ptes,
``migrate_page_add`` isolates and queues each page, ``migrate_pages_to``
gives the engine its new pages a chunk at a time, ``migrate_to_node`` and
``do_migrate_pages`` move a process from node to node, ``sys_migrate_pages``
checks a call of ``migrate_pages(2)`` first, and ``movable_v4`` with its
two tests of a file's mappings, or 2.6.16's ``not_shared``, says which pages
a caller without ``MPOL_MF_MOVE_ALL`` may queue) and the caller ``fsaops
migrate`` goes through (``migrate_node`` empties a node, with
``isolate_node_pages``).  :mod:`mutants` makes each with one small change.
A mutant replaces the code of the real function, so every caller runs it.

Each mutant goes first through the callers' own tests
(``tests/test_mempolicy.py``, every case, called here as they are, and
``tests/test_engine.py``'s kernel built without migration), then through
``fsaops migrate`` on the helpers' mutation scenarios under V4, 2.6.16
and 2.6.17.  A mutant that raises, hangs past its time limit (a walk that
never ends) or breaks a run is caught.

A mutant nothing catches is listed in :data:`SURVIVORS` with why nothing
could; a survivor not listed fails this test, and so does a listed one that
is caught now.  About two minutes on two workers (fifteen mutants loop
until their limit), so it runs with the exhaustive tests.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from types import FunctionType
from typing import Final

import pytest

import test_engine
import test_mempolicy
import test_mutants_of_helpers
from conftest import BUILTIN
from fsaops import memory_hotplug, mempolicy
from fsaops.plugins import load_plugins
from mutants import (
    UNCHANGED,
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
    **{
        name: getattr(mempolicy, name)
        for name in (
            "check_range",
            "migrate_page_add",
            "migrate_pages_to",
            "migrate_to_node",
            "do_migrate_pages",
            "sys_migrate_pages",
            "movable_v4",
            "_writably_mapped",
            "_single_mm_mapping",
            "not_shared",
        )
    },
    **{name: getattr(memory_hotplug, name) for name in ("migrate_node", "isolate_node_pages")},
}

_NO_ISOLATION = (
    "a kernel without migration isolates no page (isolate_lru_page is -ENOSYS), so no list "
    "it is given has a page to reach this with"
)
_ERR_SET_AGAIN = "err's first value: every way on sets it again before it is read"
_NO_EPERM = (
    "-1 is -EPERM, which no call here returns: migrate_pages gives a VM_LOCKED page's EPERM "
    "to the page, and returns a count or -ENOSYS; migrate_pages_to adds -ENOMEM"
)

SURVIVORS: Final[dict[str, dict[str, str]]] = {
    "check_range": {"swap op in `PageList | None`": UNCHANGED},
    "migrate_pages_to": {
        "swap op in `Vma | None`": UNCHANGED,
        "swap op in `MigrateStats | None`": UNCHANGED,
        "delete `if not kernel.migration:`": _NO_ISOLATION,
        "delete `return -ENOSYS`": _NO_ISOLATION,
        "const 0 -> -1 in `err = 0`": _ERR_SET_AGAIN,
        "const 0 -> 1 in `err = 0`": _ERR_SET_AGAIN,
        "const 0 -> -1 in `if err >= 0 and newlist.lru_next is newlist and (pagelist.lru_next "
        "...`": _NO_EPERM,
        "const 0 -> -1 in `if err < 0:`": _NO_EPERM,
    },
    "migrate_to_node": {"swap op in `MigrateStats | None`": UNCHANGED},
    "do_migrate_pages": {
        "swap op in `MigrateStats | None`": UNCHANGED,
        "const 0 -> 1 in `err = 0`": (
            "err's first value is read only where no pair was moved, and 1 is no error: the "
            "call returns busy, 0, either way"
        ),
        "delete `dest = 0`": "dest's first value is never read: a pair found sets it",
        "const 0 -> -1 in `dest = 0`": "dest's first value is never read: a pair found sets it",
        "const 0 -> 1 in `dest = 0`": "dest's first value is never read: a pair found sets it",
        "const 0 -> -1 in `if err > 0:`": "err > -1 for err > 0: a pair that left none adds 0",
        "const 0 -> -1 in `if err < 0:`": _NO_EPERM,
        "const 0 -> -1 in `if err < 0:` #2": _NO_EPERM,
    },
    "sys_migrate_pages": {"swap op in `MigrateStats | None`": UNCHANGED},
    "migrate_node": {
        "swap op in `MigrateStats | None`": UNCHANGED,
        "swap op in `int | None`": UNCHANGED,
        "swap op in `Callable[[int, int], object] | None`": UNCHANGED,
        "const 0 -> -1 in `if rc >= 0:`": (
            "rc >= -1 for rc >= 0: a call's -1 (EPERM) would not be kept, but migrate_pages_to "
            "returns no -EPERM (only -ENOMEM, -ENOSYS or a count)"
        ),
        "swap op in `len(left) + len(pagelist)`": (
            "the count is read only where the loop ended, when pagelist is empty; where "
            "something raised, it is not returned"
        ),
        "delete `if rc == -ENOSYS:`": (
            "migrate_node raises MigrationDisabled at its start on a kernel without migration, "
            "so no call returns -ENOSYS"
        ),
        "delete `raise MigrationDisabled('migration is not available (ENOSYS)')`": (
            "migrate_node raises MigrationDisabled at its start on a kernel without migration, "
            "so no call returns -ENOSYS"
        ),
    },
}
"""The mutants nothing tells from the callers, by function, and why each is none."""

MUTANTS: Final = [(name, m) for name, fn in FUNCTIONS.items() for m in mutants(fn)]


@functools.cache
def _checks() -> list[Callable[[], object]]:
    """The callers' own tests, each a call with its parameters bound."""
    registry = load_plugins(cli=list(BUILTIN))
    return [
        *bound_tests(test_mempolicy, registry=registry),
        functools.partial(test_engine.test_migration_compiled_out, registry),
    ]


def first_difference(folder: Path) -> str | None:
    """The first check or run that fails with the callers as they are now, or ``None``."""
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
    assert len(_checks()) > 50


@pytest.mark.parametrize(
    ("function", "mutant"), MUTANTS, ids=[f"{name}: {m.name}" for name, m in MUTANTS]
)
def test_a_mutant_of_a_caller_is_caught(
    folder: Path, limit: float, function: str, mutant: Mutant
) -> None:
    """The callers' tests or a run tell the mutant apart, unless it is a listed survivor."""
    found = found_with(FUNCTIONS[function], mutant, lambda: first_difference(folder), limit)
    unseen = f"nothing tells this mutant of {function} apart:\n{mutant.source}"
    judge(mutant, found, SURVIVORS.get(function, {}), unseen)
