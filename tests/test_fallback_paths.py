"""The engine's own path for a table without ``migratepage``, and ``swap_page``, step by step.

A table with no ``migratepage`` (ext2 as 2.6.15 had it, with buffer heads
and without) has its pages moved by the engine: the generic fallback
writes a dirty page out (``pageout``) and moves it clean on a later pass,
releases its buffers, and after the fifth pass drops a page whose buffers
cannot go (``swap_page``).  A swap-out (``migrate_pages`` with no new
pages) drops every page through ``swap_page``, which unmaps it and writes
it out first.

The verdict cannot see most of this: a fallback that writes a page twice,
or drops a page it could have moved, keeps the data.  What the report
says of it can still be wrong: how each page went (``via``), the reasons
of the pages left, ``vmstat.migrate_pageout``.  These tests follow each
page through the engine's trace, pass by pass, and hold every step, and
those counts, to what each release's code does with a page in that
state.  ``tests/test_mutants_of_fallback.py`` runs them against every
mutant of the two functions.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from errno import EAGAIN, EPERM
from typing import Final

import pytest

from fsaops.lists import PageList
from fsaops.migrate import MAX_PASSES, MigrateStats, migrate_pages
from fsaops.page import PG
from fsaops.semantics import SEMANTICS
from fsaops.testing import Recorder, resolve_subject
from fsaops.testing.harness import World
from fsaops.world import PageSpec
from test_kernel_tables_pass import EXT2_2615

RELEASES: Final = tuple(SEMANTICS)

Step = tuple[int, str, int, str]
"""One attempt at a page: the pass, the engine's path, what it returned, why."""

# Why the engine leaves a page, as it says it.
_WAITING = "written out; waiting for writeback"
_KEEP = "pageout: keep (dirty page could not be written)"
_NOT_RELEASED = "buffers could not be released"
_SWAP_WRITTEN = "swap_page: written out, not yet clean"
_SWAP_MAPPED = "swap_page: still mapped"
_SWAP_NOT_RELEASED = "swap_page: buffers could not be released"
_MLOCKED_AGAIN = "still mapped: try_to_unmap refused, a VM_LOCKED area maps it"
_MLOCKED_FAILS = "VM_LOCKED: try_to_unmap refused (permanent)"
_PINNED = "reference count 3, expected 2 (cache + isolation + 0 pte(s)): an extra reference is held"
_SWAP_KEEP = "swap_page: pageout keep"
_SWAP_IN_USE = "swap_page: the page is still in use"

#: Pages in one state each, as the tests build them (another task holds a
#: reference to the pinned pages, and the lock of the last buffer of
#: ``buffer_locked``, for longer than any migration).
STATES: Final[dict[str, PageSpec]] = {
    "clean": PageSpec(),
    "dirty": PageSpec(dirty=True),
    "pinned": PageSpec(pinned=1),
    "pinned_dirty": PageSpec(pinned=1, dirty=True),
    "mapped": PageSpec(mapped=True),
    "pte_dirty": PageSpec(pte_dirty=True),
    "mlocked": PageSpec(mlocked=True),
    "mlocked_dirty": PageSpec(mlocked=True, dirty=True),
    "buffer_locked": PageSpec(buffer_locked_for=1 << 20),
}


def _every_pass(path: str, rc: int, why: str, first: int = 0) -> list[Step]:
    return [(p, path, rc, why) for p in range(first, MAX_PASSES)]


def fallback_steps(state: str, semantics: str) -> list[Step]:
    """What the generic fallback does with a page in ``state``, attempt by attempt.

    Every page is tried once a pass while any is left (``MAX_PASSES``).
    A dirty page is written out on pass 0 (``-EAGAIN`` while the write is
    in flight) and moved clean by ``migrate_page`` on pass 1.  From 2.6.17
    the fallback unmaps the page first, so a dirty bit held only in a pte
    reaches the page and it is written too, and a ``VM_LOCKED`` page fails
    at once with ``-EPERM``, before ``pageout`` is called.  Before that, a
    dirty mlocked page goes to ``pageout``, which keeps it (mapped, it is
    not freeable) every pass, as it keeps a dirty page another task holds a
    reference to; a clean pinned page reaches ``migrate_page``, which
    refuses it every pass; a clean mlocked one reaches ``migrate_page``,
    whose ``try_to_unmap`` refuses it: ``-EAGAIN`` under V4, ``-EPERM``
    from 2.6.16.  Buffers another task holds locked cannot be released: retried
    to pass 4, then handed to ``swap_page``, which cannot release them
    either.
    """
    unmaps = SEMANTICS[semantics].fallback_unmaps
    if state == "dirty" or (state == "pte_dirty" and unmaps):
        return [(0, "pageout_success", -EAGAIN, _WAITING), (1, "migrate_page", 0, "")]
    if state in ("clean", "mapped", "pte_dirty"):
        return [(0, "migrate_page", 0, "")]
    if state.startswith("mlocked") and unmaps:
        return [(0, "unmap", -EPERM, _MLOCKED_FAILS)]
    if state in ("mlocked_dirty", "pinned_dirty"):
        return _every_pass("pageout_keep", -EAGAIN, _KEEP)
    if state == "pinned":
        return _every_pass("migrate_page", -EAGAIN, _PINNED)
    if state == "mlocked":
        if semantics == "v4":
            return _every_pass("migrate_page", -EAGAIN, _MLOCKED_AGAIN)
        return [(0, "migrate_page", -EPERM, _MLOCKED_FAILS)]
    assert state == "buffer_locked"
    return [(p, "release_failed", -EAGAIN, _NOT_RELEASED) for p in range(5)] + _every_pass(
        "swap_page", -EAGAIN, _SWAP_NOT_RELEASED, first=5
    )


def swap_steps(state: str, semantics: str) -> list[Step]:
    """What a swap-out (``swap_page`` for every page) does with a page in ``state``.

    ``swap_page`` unmaps a mapped page first: V4's ``try_to_unmap``
    refuses a young pte once (clearing it), later releases ignore it.  A
    dirty page (or one whose pte was dirty) is written out, ``-EAGAIN``
    while the write is in flight, and dropped clean on the next pass.  An
    mlocked page cannot be unmapped and a page whose buffer another task
    holds locked cannot lose its buffers: both are retried every pass.  A
    page another task holds a reference to is kept by ``pageout`` if dirty,
    and cannot leave its cache if clean: retried every pass too.
    """
    young = semantics == "v4"
    if state == "pinned":
        return _every_pass("swap_page", -EAGAIN, _SWAP_IN_USE)
    if state == "pinned_dirty":
        return _every_pass("swap_page", -EAGAIN, _SWAP_KEEP)
    if state == "clean":
        return [(0, "swap_page", 0, "")]
    if state == "dirty":
        return [(0, "swap_page", -EAGAIN, _SWAP_WRITTEN), (1, "swap_page", 0, "")]
    first: list[Step] = [(0, "swap_page", -EAGAIN, _SWAP_MAPPED)] if young else []
    after = len(first)
    if state == "mapped":
        return [*first, (after, "swap_page", 0, "")]
    if state == "pte_dirty":
        return [
            *first,
            (after, "swap_page", -EAGAIN, _SWAP_WRITTEN),
            (after + 1, "swap_page", 0, ""),
        ]
    if state.startswith("mlocked"):
        return _every_pass("swap_page", -EAGAIN, _SWAP_MAPPED)
    assert state == "buffer_locked"
    return _every_pass("swap_page", -EAGAIN, _SWAP_NOT_RELEASED)


def _writes(steps: Sequence[Step]) -> int:
    """The attempts that called ``pageout``, each counted in ``vmstat.migrate_pageout``."""
    return sum(
        path.startswith("pageout_") or why in (_SWAP_WRITTEN, _SWAP_KEEP)
        for _pass, path, _rc, why in steps
    )


def _via(steps: Sequence[Step], swap: bool) -> str | None:
    """How the report says the page went, or ``None`` if it did not."""
    if steps[-1][2] != 0:
        return None
    if swap:
        return "dropped"
    written = any(path == "pageout_success" for _p, path, _rc, _why in steps)
    return "writeback" if written else "migrate_page"


def follow(mode: str, semantics: str, *, swap: bool) -> list[str]:
    """Migrate one page in each of :data:`STATES`; what differs from the release's steps.

    ``mode`` is the ext2 table (``default``: buffer heads, ``nobh``: none,
    where ``buffer_locked`` has no buffer to hold).  ``swap``: a swap-out
    instead of a migration to new pages.
    """
    world = World(resolve_subject(EXT2_2615, mode, ("no_migratepage",), semantics=semantics))
    recorder = Recorder()
    kernel = world.kernel
    kernel.log = recorder.log
    states = [s for s in STATES if mode == "default" or s != "buffer_locked"]
    pages = {state: world.make_page(STATES[state]).page for state in states}
    pageouts = kernel.vmstat.migrate_pageout
    noted = sum(kernel.generic_path.values())
    stats = MigrateStats()
    problems = []
    if swap:
        moved, failed = PageList("moved"), PageList("failed")
        migrate_pages(world.from_, None, moved, failed, stats=stats, kernel=kernel)
    else:
        run = world.migrate()
        stats = run.stats
        problems += run.problems  # the oracle: each moved page's data, the lists, the machine
    steps_of = fallback_steps if not swap else swap_steps
    want_writes = 0
    want_via: dict[str, int] = {}
    want_reasons: dict[str, int] = {}
    want_errors: dict[str, int] = {}
    calls = 0
    for state, page in pages.items():
        want = steps_of(state, semantics)
        got = [
            (e["pass_"], e["path"], e["rc"], e["why"])
            for e in recorder.named("mm_migrate_page")
            if e["pfn"] == page.pfn
        ]
        if got != want:
            problems.append(f"{state}: steps {got}, not {want}")
        want_writes += _writes(want)
        calls += len(want) + sum(path == "swap_page" for _p, path, _rc, _why in want if not swap)
        via = _via(want, swap)
        if via is not None:
            want_via[via] = want_via.get(via, 0) + 1
        else:
            want_reasons[want[-1][3]] = want_reasons.get(want[-1][3], 0) + 1
            errno = "EPERM" if want[-1][2] == -EPERM else "EAGAIN"
            want_errors[errno] = want_errors.get(errno, 0) + 1
        if via == "dropped" and (page.mapcount or page.mapping is not None):
            problems.append(f"{state}: dropped, yet still mapped or in its file")
        if page.flags & PG.locked:
            problems.append(f"{state}: the old page is left locked")
    if kernel.vmstat.migrate_pageout - pageouts != want_writes:
        problems.append(
            f"vmstat.migrate_pageout counted {kernel.vmstat.migrate_pageout - pageouts} "
            f"pageout calls, not {want_writes}"
        )
    if sum(kernel.generic_path.values()) - noted != calls:
        problems.append(
            f"{sum(kernel.generic_path.values()) - noted} pages noted as handed to the "
            f"table's own I/O, not {calls}"
        )
    (table,) = stats.tables.values()
    if table.via != want_via:
        problems.append(f"via {table.via}, not {want_via}")
    if table.reasons != want_reasons:
        problems.append(f"reasons {table.reasons}, not {want_reasons}")
    if table.errors != want_errors:
        problems.append(f"errors {table.errors}, not {want_errors}")
    return problems


#: Every run :func:`follow` makes: (mode, release, swap-out).
RUNS: Final = [
    (mode, semantics, swap)
    for swap in (False, True)
    for semantics in RELEASES
    for mode in ("default", "nobh")
]


def first_difference(runs: Sequence[tuple[str, str, bool]] = RUNS) -> str | None:
    """The first of ``runs`` the engine does not follow step by step, as what differs."""
    for mode, semantics, swap in runs:
        problems = follow(mode, semantics, swap=swap)
        if problems:
            how = "swap-out" if swap else "fallback"
            return f"{how}, {mode}, {semantics}: " + "; ".join(problems)
    return None


@pytest.mark.parametrize(("mode", "semantics", "swap"), RUNS)
def test_each_page_takes_its_releases_path(mode: str, semantics: str, swap: bool) -> None:
    """Every attempt at every page, and what the report counts of them, as the release did."""
    assert follow(mode, semantics, swap=swap) == []


def test_a_step_the_engine_does_not_take_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    """The comparison can fail: expected steps that say every page moves on its first try."""

    def at_once(state: str, semantics: str) -> list[Step]:
        return [(0, "migrate_page", 0, "")]

    monkeypatch.setattr(sys.modules[__name__], "fallback_steps", at_once)
    problems = follow("default", "v4", swap=False)
    assert problems[0].startswith("dirty: steps [(0, 'pageout_success', -11, "), problems
    said = [p.split(" ")[0] for p in problems]
    assert {"vmstat.migrate_pageout", "via", "reasons", "errors"} <= set(said), problems
