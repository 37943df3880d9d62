"""A survivor that compiles to its function's own code is said to, and only such a one.

The mutation tests list each mutant nothing catches with why.  For one
kind the why can be checked, not just read: a mutant that compiles to the
very code of its function (:func:`mutants.same_code`; a change inside an
annotation that is never evaluated) is no change, and is listed as
:data:`mutants.UNCHANGED`.  Here, for every function the mutation tests
mutate, the mutants that compile to its own code are exactly the survivors
listed that way: a mutant found unchanged but listed for another reason, or
listed unchanged but compiling to different code, fails.  It compiles each
mutant once, about a second in all, so it runs with the quick tests.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from types import FunctionType
from typing import Any

import pytest

import test_mutants
import test_mutants_of_callers
import test_mutants_of_fallback
import test_mutants_of_helpers
import test_mutants_of_lru
import test_mutants_of_main_path
from fsaops import buffer, mempolicy, migrate
from mutants import UNCHANGED, Mutant, compiled, mutants, original, running, same_code

#: Each function a mutation test mutates: (the function, its mutants, the survivors it lists).
LISTS: dict[str, tuple[Callable[..., Any], list[Mutant], Mapping[str, str]]] = {
    "buffer_migrate_page": (
        buffer.buffer_migrate_page,
        test_mutants.MUTANTS,
        test_mutants.SURVIVORS,
    ),
    "migrate_pages": (
        migrate.migrate_pages,
        test_mutants_of_main_path.MUTANTS,
        test_mutants_of_main_path.SURVIVORS,
    ),
}
for _test, _functions in (
    (test_mutants_of_callers, test_mutants_of_callers.FUNCTIONS),
    (test_mutants_of_fallback, test_mutants_of_fallback.FUNCTIONS),
    (test_mutants_of_helpers, test_mutants_of_helpers.HELPERS),
    (test_mutants_of_lru, test_mutants_of_lru.FUNCTIONS),
):
    for _name, _fn in _functions.items():
        assert _name not in LISTS, f"{_name} is mutated by two tests"
        LISTS[_name] = (
            _fn,
            [m for function, m in _test.MUTANTS if function == _name],
            _test.SURVIVORS.get(_name, {}),
        )


@functools.cache
def unchanged(name: str) -> frozenset[str]:
    """The mutants of the function ``name`` that compile to its own code."""
    fn, made, _survivors = LISTS[name]
    return frozenset(m.name for m in made if same_code(m, fn))


@pytest.mark.parametrize("name", sorted(LISTS))
def test_the_survivors_said_unchanged_are_the_mutants_that_compile_alike(name: str) -> None:
    _fn, _made, survivors = LISTS[name]
    said = {mutant for mutant, why in survivors.items() if why == UNCHANGED}
    alike = unchanged(name)
    assert alike == said, (
        f"compile to {name}'s own code but listed otherwise or not at all: {alike - said}; "
        f"listed as compiling to it but do not: {said - alike}"
    )


def test_the_mutants_of_the_engine_include_some_that_compile_alike() -> None:
    """The check above is not empty: ``migrate_pages``'s ``X | None`` annotations make four."""
    assert len(unchanged("migrate_pages")) == 4


def test_a_default_value_changed_does_not_compile_alike() -> None:
    """A default lives on the function, not in its code: ``ignore_refs=True`` is a change."""
    fn = test_mutants_of_helpers.HELPERS["try_to_unmap"]
    source = original(fn)
    assert source.count("ignore_refs: bool=False") == 1
    changed = source.replace("ignore_refs: bool=False", "ignore_refs: bool=True")
    assert not same_code(Mutant("ignore_refs=True", changed), fn)
    assert same_code(Mutant("the function itself", source), fn)


def test_running_a_mutant_of_a_default_puts_its_value_in_place_and_the_real_one_back() -> None:
    """The default is what a caller that leaves the argument out gets: it must change too.

    Only the code was swapped before, so a mutant of a default ran the real
    function, and survived whatever the tests asked."""
    fn = mempolicy.sys_migrate_pages
    assert isinstance(fn, FunctionType) and fn.__kwdefaults__ is not None
    made = {m.name: m for m in mutants(fn)}
    mutant = made["const 0 -> -1 in `def sys_migrate_pages(...)`"]
    own = dict(fn.__kwdefaults__)
    assert own["uid"] == 0
    with running(fn, compiled(mutant, fn)):
        assert fn.__kwdefaults__ == {**own, "uid": -1}
    assert fn.__kwdefaults__ == own
    two = test_mutants_of_helpers.HELPERS["try_to_unmap"]
    before = two.__defaults__
    assert before == (False,)
    changed = original(two).replace("ignore_refs: bool=False", "ignore_refs: bool=True")
    with running(two, compiled(Mutant("ignore_refs=True", changed), two)):
        assert two.__defaults__ == (True,)
    assert two.__defaults__ == before


def test_a_change_that_runs_does_not_compile_alike() -> None:
    """Each kind of change that runs (a deleted statement, a constant, a name) is told apart."""
    fn = migrate.migrate_page
    made = {m.name: m for m in mutants(fn)}
    for name in (
        "delete `migrate_page_copy(newpage, page)`",
        "const 2 -> 3 in `rc = migrate_page_remove_references(newpage, page, 2)`",
        "`newpage` for `page` in `migrate_page_copy(newpage, page)`",
        "flip compare `rc < 0`",
    ):
        assert not same_code(made[name], fn), name
