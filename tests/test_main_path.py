"""The engine's main path, for a table with ``migratepage``, step by step.

``migrate_pages`` under V4 (KERNEL-SPEC §3) takes each isolated page in
turn: a page whose count fell to 1 was freed under us and is done; a
locked page is skipped in the first three passes (``pass > 2`` in the
code) and slept on after; a page under writeback is skipped in pass 0 and
waited on after; an anonymous page is given a swap entry first (no slot:
it fails for good); a page that lost its mapping is retried; any other
page goes to its table's ``migratepage``, whose ``-EAGAIN`` retries it in
the next pass, up to ``MAX_PASSES``.  After the call the engine checks
what the table did, unlocks both pages, and counts the page.

The verdict sees little of this: a page moved one pass later, or skipped
with the wrong reason, keeps its data.  These tests follow one page in
each state through the engine's trace and hold every attempt (pass, path,
result, reason) and what the report and the counters say of it to what
each release's code does, for ext2's table with buffer heads and without
and for the swap cache's, plain and with every check the engine can run
(``strict``, ``debug_vm``).  Then what the engine makes of a table that
does something wrong (an error, a value that is no errno, a ``BUG``, an
exit, a page unlocked or taken off its lists, a mutex under a spinlock),
of another task's event that raises while a table sleeps, of calls of
every shape and what they count across calls and attempts, of
``debug_vm``'s stops, the generic path's odd ``writepage``, the replay's
naming of a call, and of explored schedules in which other tasks sleep on
the engine's page locks.  ``tests/test_mutants_of_main_path.py`` runs
them all (:func:`first_difference`) against every mutant of
``migrate_pages``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from errno import EAGAIN, EIO, ENOMEM, ENOSYS, EPERM
from functools import partial
from typing import Final

import attrs
import pytest

from fsaops.aops import WritePage
from fsaops.buffer import BufferHead, buffers, get_bh
from fsaops.config import parse_config
from fsaops.debug import InvariantError
from fsaops.errors import KernelBug, PluginFault
from fsaops.explore import explore
from fsaops.lists import PageList, list_add_tail, list_del
from fsaops.lru import isolate_lru_page, putback_lru_pages
from fsaops.mapping import AddressSpace
from fsaops.migrate import MAX_PASSES, MigrateStats, errno_name, migrate_pages
from fsaops.mutex import Mutex
from fsaops.page import PG, Page, get_page, unlock_page
from fsaops.plugins import load_plugins
from fsaops.scenario import plan_scenario, run_plan
from fsaops.sched import PF_SWAPWRITE
from fsaops.semantics import SEMANTICS
from fsaops.spinlock import spin_lock
from fsaops.status import Status
from fsaops.testing import Recorder, resolve_subject
from fsaops.testing.harness import World
from fsaops.world import EngineRun, PageSpec
from fsaops.writeback import WritebackControl
from test_event_blame import EventBroke, _swallows
from test_kernel_tables_pass import EXT2_2615

RELEASES: Final = tuple(SEMANTICS)

Step = tuple[int, str, int, str]
"""One attempt at a page: the pass, the engine's path, what it returned, why."""

#: The tables followed: (filesystem, mode) by the name the engine gives the table.
TABLES: Final[dict[str, tuple[str, str | None]]] = {
    "ext2_aops": ("ext2", "default"),
    "ext2_nobh_aops": ("ext2", "nobh"),
    "swap_aops": ("swap", None),
}

_SLOTS: Final = 2
"""The swap device's slots."""

_BRIEFLY: Final = 3
"""Ticks another task holds a reference to a ``pinned_briefly`` page."""

_LONG: Final = 1 << 20
"""Ticks another task holds what it holds: longer than any migration."""

#: Pages in one state each; each is built alone on a machine of its own, so
#: that one page's sleep does not end another's wait.
STATES: Final[dict[str, PageSpec]] = {
    "clean": PageSpec(),
    "dirty": PageSpec(dirty=True),
    "mapped": PageSpec(mapped=True),
    "pte_dirty": PageSpec(pte_dirty=True),
    "shared": PageSpec(shared=True),
    "pinned": PageSpec(pinned=1),
    "pinned_briefly": PageSpec(pinned_for=_BRIEFLY),
    "mlocked": PageSpec(mlocked=True),
    "locked": PageSpec(locked_for=_LONG),
    "writeback": PageSpec(writeback=True),
    "locked_writeback": PageSpec(locked_for=_LONG, writeback=True),
    "buffer_locked": PageSpec(buffer_locked_for=_LONG),
    "truncated": PageSpec(truncated=True),
    "truncated_pinned": PageSpec(truncated=True, pinned=1),
    "mapped_dirty": PageSpec(mapped=True, dirty=True),
    "no_swap_slot": PageSpec(mapped=True, dirty=True),
}

#: The states each table's pages can be in: anonymous pages are never
#: shared by a file's two mappings, nor truncated; only pages with buffer
#: heads have a buffer to lock; only anonymous pages need a swap slot.
_FILE_ONLY: Final = ("shared", "truncated", "truncated_pinned")
_STATES_OF: Final[dict[str, tuple[str, ...]]] = {
    "ext2_aops": tuple(s for s in STATES if s != "no_swap_slot"),
    "ext2_nobh_aops": tuple(s for s in STATES if s not in ("no_swap_slot", "buffer_locked")),
    "swap_aops": tuple(s for s in STATES if s not in (*_FILE_ONLY, "buffer_locked")),
}

_LOCKED = "page locked by another task"
_WRITEBACK = "under writeback"
_TRUNCATED = "no mapping (truncated)"
_NO_SLOT = "no swap space (add_to_swap failed)"
_MLOCKED_AGAIN = "still mapped: try_to_unmap refused, a VM_LOCKED area maps it"
_MLOCKED_FAILS = "VM_LOCKED: try_to_unmap refused (permanent)"
_HELD = "an extra reference is held"
_NO_MAPPING = "(no mapping)"


def _pinned(table: str) -> str:
    """``migrate_page_remove_references``'s reason for a page another task holds."""
    if table == "ext2_aops":
        return f"reference count 4, expected 3 (cache + isolation + buffers + 0 pte(s)): {_HELD}"
    return f"reference count 3, expected 2 (cache + isolation + 0 pte(s)): {_HELD}"


def _every_pass(path: str, rc: int, why: str) -> list[Step]:
    return [(p, path, rc, why) for p in range(MAX_PASSES)]


def main_steps(state: str, table: str, semantics: str) -> list[Step]:
    """What ``migrate_pages`` does with a page in ``state`` of ``table``, attempt by attempt.

    A page nothing holds moves in pass 0, whatever its data or its ptes
    (``migratepage`` unmaps it; a young pte refuses V4's first try only).
    A page whose count is down to 1 was freed under us.  One another task
    holds locked is skipped in passes 0 to 2 and slept on in pass 3; one
    under writeback is skipped in pass 0 and waited on in pass 1 (a locked
    one is waited on where its lock is had).  A page whose buffer another
    task holds locked moves in pass 0: ``buffer_migrate_page`` sleeps on
    the lock.  A page another task holds a reference to is refused by
    ``migrate_page_remove_references`` every pass (one it holds for three
    ticks, until the engine's third ``cond_resched``), as a page truncated
    while another task held it is retried for its lost mapping.  An
    ``mlocked`` page is refused by ``try_to_unmap``: ``-EAGAIN`` every pass
    under V4, ``-EPERM`` at once from 2.6.16.  An anonymous page with no
    swap slot left fails for good, reported ``ENOMEM`` (a fresh one, mapped
    and dirty, is outside the swap cache until the engine gives it a slot).
    """
    if state == "truncated":
        return [(0, "freed", 0, "")]
    if state == "truncated_pinned":
        return _every_pass("no_mapping", -EAGAIN, _TRUNCATED)
    if state == "pinned":
        return _every_pass("migratepage", -EAGAIN, _pinned(table))
    if state == "pinned_briefly":  # the engine ticks once before each attempt
        refused = [(p, "migratepage", -EAGAIN, _pinned(table)) for p in range(_BRIEFLY - 1)]
        return [*refused, (_BRIEFLY - 1, "migratepage", 0, "")]
    if state == "mlocked":
        if semantics == "v4":
            return _every_pass("migratepage", -EAGAIN, _MLOCKED_AGAIN)
        return [(0, "migratepage", -EPERM, _MLOCKED_FAILS)]
    if state == "no_swap_slot":
        return [(0, "add_to_swap", -ENOMEM, _NO_SLOT)]
    if state.startswith("locked"):
        return [(p, "locked", -EAGAIN, _LOCKED) for p in range(3)] + [(3, "migratepage", 0, "")]
    if state == "writeback":
        return [(0, "writeback", -EAGAIN, _WRITEBACK), (1, "migratepage", 0, "")]
    return [(0, "migratepage", 0, "")]


def _table_of(state: str, table: str) -> str:
    """The name the report counts the page under: a truncated page has no table."""
    return _NO_MAPPING if state.startswith("truncated") else table


def _world(table: str, semantics: str, state: str, *, checked: bool) -> tuple[World, int]:
    """A machine with a page of ``table`` in ``state``, on its ``from`` list; the page's pfn."""
    fs, mode = TABLES[table]
    capabilities = {"writeback"} if "writeback" in state else set()
    if table == "swap_aops":  # anonymous pages, in the swap cache or given to it
        capabilities.add("swap_cache")
    subject = resolve_subject(fs, mode, capabilities, semantics=semantics)
    world = World(subject, swap_slots=_SLOTS)
    world.kernel.strict = world.kernel.debug_vm = checked
    pfn = world.make_page(STATES[state]).page.pfn
    if state == "no_swap_slot":  # pages of other processes take every slot first
        swap = world.kernel.swap_info()
        while swap.nr_swap_pages:
            world.make_page(PageSpec(isolated=False))
    return world, pfn


def follow(table: str, semantics: str, state: str, *, checked: bool) -> list[str]:
    """Migrate one page in ``state`` of ``table``; what differs from the release's steps.

    ``checked``: with ``strict`` and ``debug_vm`` on, so that the checks
    the engine makes around each call run too.  Besides each attempt, it
    holds to the steps: where each page ends (``moved``, ``failed`` or left
    on ``from``), what ``migrate_pages`` returns, the report's counts (how a
    page moved, or why and with which errno it did not), the passes and the
    retries of each, the vmstat counters, the oracle's judgement of the
    machine, that no page is left locked, that each new page used is back
    on the LRU, and that the task's flags are put back.
    """
    world, pfn = _world(table, semantics, state, checked=checked)
    kernel = world.kernel
    recorder = Recorder()
    kernel.log = recorder.log
    vmstat = kernel.vmstat
    before = (vmstat.pgmigrate_success, vmstat.pgmigrate_fail, vmstat.migrate_passes)
    flags = kernel.current.flags
    assert [page.pfn for page in world.from_] == [pfn]
    want = {pfn: main_steps(state, table, semantics)}
    names = {pfn: _table_of(state, table)}
    run = world.migrate()
    problems = list(run.problems)  # the oracle: each moved page's data, the lists, the machine
    events = recorder.named("mm_migrate_page")
    for p, steps in want.items():
        got = [(e["pass_"], e["path"], e["rc"], e["why"]) for e in events if e["pfn"] == p]
        if got != steps:
            problems.append(f"pfn {p}: steps {got}, not {steps}")
        said = {(e["table"], e["call"]) for e in events if e["pfn"] == p}
        if said != {(names[p], 1)}:
            problems.append(f"pfn {p}: attempts said to be of {said}, not of {names[p]} in call 1")
    problems += _outcome(run, want, names)
    moved = sum(steps[-1][2] == 0 for steps in want.values())
    left = sum(steps[-1][2] == -EAGAIN for steps in want.values())
    failed = len(want) - moved - left
    passes = 1 + max(steps[-1][0] for steps in want.values())
    if run.rcs != [failed + left]:
        problems.append(f"migrate_pages returned {run.rcs}, not [{failed + left}]")
    counted = (
        vmstat.pgmigrate_success - before[0],
        vmstat.pgmigrate_fail - before[1],
        vmstat.migrate_passes - before[2],
        run.stats.passes,
        run.stats.calls,
    )
    if counted != (moved, failed + left, passes, passes, 1):
        problems.append(
            "counted (vmstat success, fail and passes; passes, calls) "
            f"{counted}, not {(moved, failed + left, passes, passes, 1)}"
        )
    retries = [0] * MAX_PASSES
    for steps in want.values():
        for p, _path, rc, _why in steps:
            retries[p] += rc == -EAGAIN
    by_table = [0] * MAX_PASSES
    for stats in run.stats.tables.values():
        by_table = [a + b for a, b in zip(by_table, stats.retry_by_pass, strict=True)]
    if run.stats.retry_by_pass != retries or by_table != retries:
        problems.append(
            f"retries by pass {run.stats.retry_by_pass} (by table {by_table}), not {retries}"
        )
    if kernel.current.flags != flags:
        problems.append(f"the task's flags {kernel.current.flags:#x}, not put back to {flags:#x}")
    if kernel.sched.migrating is not None:
        problems.append("Scheduler.migrating left set after the call")
    return problems


def _outcome(run: EngineRun, want: dict[int, list[Step]], names: dict[int, str]) -> list[str]:
    """Where each page ended, what the report says of it, and the locks and LRU of all."""
    problems = []
    stats = run.stats
    lists = {"moved": run.moved, "failed": run.failed, "from": run.from_}
    on = {page.pfn: name for name, pages in lists.items() for page in pages}
    via: dict[str, dict[str, int]] = {}
    reasons: dict[str, dict[str, int]] = {}
    errors: dict[str, dict[str, int]] = {}
    for p, steps in want.items():
        pass_, path, rc, why = steps[-1]
        name = names[p]
        if rc == 0:
            where = "moved"
            how = via.setdefault(name, {})
            how[path] = how.get(path, 0) + 1
            entry = None
        else:
            where = "from" if rc == -EAGAIN else "failed"
            error = errno_name(rc)
            entry = (name, why, error, pass_)
            reasons.setdefault(name, {})[why] = reasons.get(name, {}).get(why, 0) + 1
            errors.setdefault(name, {})[error] = errors.get(name, {}).get(error, 0) + 1
        if on.get(p) != where:
            problems.append(f"pfn {p}: on {on.get(p)}, not on {where}")
        told = stats.pending.get(p) if where == "from" else stats.failures.get(p)
        if told != entry or (where != "from" and p in stats.pending):
            problems.append(f"pfn {p}: reported as {told}, not {entry}")
        if where != "failed" and p in stats.failures:
            problems.append(f"pfn {p}: reported failed, {stats.failures[p]}")
    for name in set(names.values()):
        table = stats.tables.get(name)
        got = (table.via, table.reasons, table.errors) if table is not None else None
        wanted = (via.get(name, {}), reasons.get(name, {}), errors.get(name, {}))
        if got != wanted:
            problems.append(f"{name}: (via, reasons, errors) {got}, not {wanted}")
    if set(stats.tables) - set(names.values()):
        problems.append(f"tables counted: {sorted(stats.tables)}")
    for page in [*run.moved, *run.failed, *run.from_, *run.new_pages.values()]:
        if page.flags & PG.locked:
            problems.append(f"pfn {page.pfn} left locked")
    unused = {page.pfn for page in run.to}
    used = [page for pfn, page in run.new_pages.items() if pfn not in unused]
    moved = sum(steps[-1][1] == "migratepage" and steps[-1][2] == 0 for steps in want.values())
    if len(used) != moved or not all(page.flags & PG.lru for page in used):
        problems.append(f"{len(used)} new pages used, not {moved}, or one is off the LRU")
    return problems


#: Every run :func:`follow` makes: (table, release, state, checked).
RUNS: Final = [
    (table, semantics, state, checked)
    for checked in (False, True)
    for semantics in RELEASES
    for table in TABLES
    for state in _STATES_OF[table]
]


@pytest.mark.parametrize(("table", "semantics", "state", "checked"), RUNS)
def test_each_page_takes_its_releases_path(
    table: str, semantics: str, state: str, checked: bool
) -> None:
    """Every attempt at the page, and what the report counts of it, as the release did."""
    assert follow(table, semantics, state, checked=checked) == []


def test_a_step_the_engine_does_not_take_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    """The comparison can fail: expected steps that say a locked page moves at once."""

    def at_once(state: str, table: str, semantics: str) -> list[Step]:
        return [(0, "migratepage", 0, "")]

    monkeypatch.setattr(sys.modules[__name__], "main_steps", at_once)
    problems = follow("ext2_aops", "v4", "locked", checked=False)
    said = [p.split(":")[0] for p in problems]
    assert said[0].startswith("pfn "), problems
    assert problems[0].endswith(f"not {at_once('', '', '')}"), problems
    rest = " ".join(problems[1:])
    for what in (
        "counted (vmstat success, fail and passes; passes, calls) (1, 0, 4, 4, 1)",
        "retries by pass [1, 1, 1, 0",
    ):
        assert what in rest, problems


# -- what a table does wrong ------------------------------------------------------------------

MigratePage = Callable[[Page, Page], int]


def _raises(exc: BaseException) -> Callable[[MigratePage], MigratePage]:
    def made(real: MigratePage) -> MigratePage:
        def mp(newpage: Page, page: Page) -> int:
            raise exc

        return mp

    return made


def _returns(rc: object, why: object = None) -> Callable[[MigratePage], MigratePage]:
    def made(real: MigratePage) -> MigratePage:
        def mp(newpage: Page, page: Page) -> int:
            if why is not None:
                page.node.kernel.current.why = why  # type: ignore[assignment]  # wrongly, too
            return rc  # type: ignore[return-value]  # what a table may return, wrongly

        return mp

    return made


def _then(after: Callable[[Page, Page], object]) -> Callable[[MigratePage], MigratePage]:
    """The real table, then ``after(newpage, page)``."""

    def made(real: MigratePage) -> MigratePage:
        def mp(newpage: Page, page: Page) -> int:
            rc = real(newpage, page)
            after(newpage, page)
            return rc

        return mp

    return made


def mutex_under_tree_lock(name: str) -> Callable[[MigratePage], MigratePage]:
    """A table that takes the mutex ``name`` under its mapping's ``tree_lock``, then migrates."""

    def made(real: MigratePage) -> MigratePage:
        state = Mutex(name)  # a mutex of each table's own

        def mp(newpage: Page, page: Page) -> int:
            mapping = page.mapping
            assert isinstance(mapping, AddressSpace)
            spin_lock(mapping.tree_lock, "tree_lock", mapping)
            try:
                with state:
                    pass
            finally:
                mapping.tree_lock.release()
            return real(newpage, page)

        return mp

    return made


_BROKE = "migratepage raised RuntimeError: the table broke"
_SEVEN = "migratepage returned 7, not 0 or a negative errno"
_NONE = "migratepage returned None, not 0 or a negative errno"

#: Tables that do something wrong, by what they do: how each is made from
#: the real ``migratepage``, and what the engine must make of it, as
#: ``(errno, reason, finding)`` for the page it was migrating, or as
#: ``(exception type, its message)`` when the run must end.  ``{pfn}``,
#: ``{new}`` and ``{pass}`` stand for the old page, the new page and the pass.
ODD: Final[dict[str, tuple[Callable[[MigratePage], MigratePage], tuple[object, str, str]]]] = {
    "raises": (
        _raises(RuntimeError("the table broke")),
        ("EIO", _BROKE, f"{_BROKE} (pfn {{pfn}})"),
    ),
    "returns 7": (_returns(7), ("EIO", _SEVEN, f"{_SEVEN} (pfn {{pfn}})")),
    "returns None": (_returns(None), ("EIO", _NONE, f"{_NONE} (pfn {{pfn}})")),
    "returns -EIO, saying nothing": (_returns(-EIO), ("EIO", "migratepage returned EIO", "")),
    "returns -EPERM, saying why": (
        _returns(-EPERM, "the table says no"),
        ("EPERM", "the table says no", ""),
    ),
    "says -EAGAIN, with a reason that is not a str": (
        _returns(-EAGAIN, 42),
        ("EAGAIN", "current.why was set to 42, not a str", ""),
    ),
    "a BUG": (
        _raises(KernelBug("kernel BUG at the table")),
        (
            KernelBug,
            "kernel BUG at the table (in ext2_aops's migratepage, migrating pfn {pfn}, pass 0)",
            "",
        ),
    ),
    "exits": (
        _raises(SystemExit(3)),
        (
            PluginFault,
            "migratepage of table ext2_aops raised SystemExit: 3 on pfn {pfn}: plugin code may "
            "not end fsaops",
            "",
        ),
    ),
    "sleeps on a mutex under tree_lock": (
        mutex_under_tree_lock("odd_state"),
        (
            KernelBug,
            "sleeping function called from invalid context: a task sleeps on the mutex "
            "odd_state (mutex_lock may sleep) holding the tree_lock of a mapping of ext2_aops",
            "",
        ),
    ),
    "unlocks the new page": (
        _then(lambda newpage, page: unlock_page(newpage)),
        (
            KernelBug,
            "unlock_page() of pfn {new} (the new page), which is not locked: ext2_aops's "
            "migratepage unlocked it",
            "",
        ),
    ),
    "unlocks the old page": (
        _then(lambda newpage, page: unlock_page(page)),
        (
            KernelBug,
            "unlock_page() of pfn {pfn} (the old page), which is not locked: ext2_aops's "
            "migratepage unlocked it",
            "",
        ),
    ),
    "takes the old page off the engine's list": (
        _then(lambda newpage, page: list_del(page)),
        (
            KernelBug,
            "list corruption: ext2_aops's migratepage took pfn {pfn} (the old page) off the "
            "engine's list of pages to migrate",
            "",
        ),
    ),
    "takes the new page off the engine's list": (
        _then(lambda newpage, page: list_del(newpage)),
        (
            KernelBug,
            "list corruption: ext2_aops's migratepage took pfn {new} (the new page) off the "
            "engine's list of new pages",
            "",
        ),
    ),
}


def _odd_world(
    semantics: str, *, checked: bool, subject: tuple[str, str | None] = ("ext2", "default")
) -> World:
    world = World(
        resolve_subject(
            *subject, {"swap_cache"} if subject[0] == "swap" else (), semantics=semantics
        )
    )
    world.kernel.strict = world.kernel.debug_vm = checked
    return world


def _real_table(page: Page) -> MigratePage:
    """The ``migratepage`` of ``page``'s table, as built."""
    mapping = page.mapping
    assert isinstance(mapping, AddressSpace) and mapping.a_ops.migratepage is not None
    return mapping.a_ops.migratepage


def _table_becomes(page: Page, mp: MigratePage) -> None:
    mapping = page.mapping
    assert isinstance(mapping, AddressSpace)
    mapping.a_ops = attrs.evolve(mapping.a_ops, migratepage=mp)


def _watch_left_on() -> bool:
    """Whether ``strict``'s watch of a call's writes still patches ``BufferHead``.

    It puts ``__setattr__`` on the classes it watches while a call runs;
    a run that ends inside a call must take it off on the way out.
    """
    return "__setattr__" in vars(BufferHead)


def follow_odd(what: str, semantics: str, *, checked: bool) -> list[str]:
    """Migrate a page of a table that does ``what`` (:data:`ODD`), then a sound one's page.

    The page must fail, or be left, with the errno and reason the engine
    gives, in the report and its trace, and with the finding it makes, or
    the run must end with the error that names the page; the page after
    it must move either way (when the run goes on).  While the table runs
    the engine knows which mapping it is in (``Scheduler.migrating``, for
    ``might_sleep``) and lets it write pages out (``PF_SWAPWRITE``); after
    the call it knows neither.  A machine made after this one, and idle,
    is not the one a mutex the table takes asks whether a spinlock is held.
    """
    made, (kind, said, finding) = ODD[what]
    world = _odd_world(semantics, checked=checked)
    kernel = world.kernel
    page = world.make_page(PageSpec()).page
    other = world.make_page(PageSpec(index=1)).page
    mapping = page.mapping
    odd = made(_real_table(page))
    seen: list[tuple[object, int]] = []
    news: list[Page] = []

    def mp(newpage: Page, old: Page) -> int:
        seen.append((kernel.sched.migrating, kernel.current.flags & PF_SWAPWRITE))
        news.append(newpage)
        return odd(newpage, old)

    _table_becomes(page, mp)
    recorder = Recorder()
    kernel.log = recorder.log
    # A machine made after this one, kept and idle: a mutex must not ask it.
    _later = _odd_world(semantics, checked=checked)
    problems = []
    try:
        run = world.migrate()
    except (Exception, SystemExit) as exc:  # an exit fsaops lets through is caught too
        if not isinstance(kind, type):
            return [f"{what}: raised {exc!r}"]
        message = said.format(pfn=page.pfn, new=news[0].pfn if news else None)
        if type(exc) is not kind or not str(exc).startswith(message):
            problems.append(f"{what}: raised {exc!r}, not {kind.__name__}: {message}")
        if kernel.sched.migrating is not None:
            problems.append(f"{what}: Scheduler.migrating left set after the run ended")
        if _watch_left_on():
            problems.append(f"{what}: strict's watch of writes left on after the run ended")
        return problems
    if isinstance(kind, type):
        return [f"{what}: ended without {kind.__name__}"]
    if seen and set(seen) != {(mapping, PF_SWAPWRITE)}:
        problems.append(f"{what}: during the call, (migrating, PF_SWAPWRITE) {set(seen)}")
    if kernel.sched.migrating is not None:
        problems.append(f"{what}: Scheduler.migrating left set after the call")
    if kind == "EAGAIN":
        where, told, entry = run.from_, run.stats.pending.get(page.pfn), MAX_PASSES - 1
    else:
        where, told, entry = run.failed, run.stats.failures.get(page.pfn), 0
    if told != ("ext2_aops", said, kind, entry) or page not in list(where):
        problems.append(f"{what}: reported {told}, not {('ext2_aops', said, kind, entry)}")
    whys = {e["why"] for e in recorder.named("mm_migrate_page") if e["pfn"] == page.pfn}
    if whys != {said}:
        problems.append(f"{what}: the trace says {whys}, not {said!r}")
    # A page that could move and was refused is a finding of --strict too.
    wanted: list[tuple[str, str]] = [("refused", "")] if checked else []
    if finding:
        wanted.append(("return", finding.format(pfn=page.pfn)))
    findings = [
        (f.kind, f.example if f.kind == "return" else "")
        for f in run.stats.findings.result()
        if f.table == "ext2_aops" and f.pages == (page.pfn,)
    ]
    if findings != wanted or len(run.stats.findings.result()) != len(wanted):
        problems.append(f"{what}: findings {run.stats.findings.result()}, not {wanted}")
    if other not in list(run.moved) or run.problems:
        problems.append(f"{what}: the next page not moved, or {run.problems}")
    return problems


ODD_RUNS: Final = [
    (what, semantics, checked)
    for checked in (False, True)
    for semantics in RELEASES
    for what in ODD
]


@pytest.mark.parametrize(("what", "semantics", "checked"), ODD_RUNS)
def test_what_a_table_does_wrong_is_said_of_the_page_it_was_migrating(
    what: str, semantics: str, checked: bool
) -> None:
    """The errno, reason and finding of the page, or the error that ends the run and names it."""
    assert follow_odd(what, semantics, checked=checked) == []


class EventExit(BaseException):
    """What another task's event raises that is not an ``Exception``."""


#: How an event's exception meets the table: (what the event raises, the
#: table's ``migratepage`` made from the real one, a note the exception must carry).
EVENTS: Final[
    dict[str, tuple[Callable[[], BaseException], Callable[[MigratePage], MigratePage], str]]
] = {
    "raises": (lambda: EventBroke("the event broke"), lambda real: real, ""),
    "raises a BaseException": (lambda: EventExit("the event ended"), lambda real: real, ""),
    "is swallowed by the table": (
        lambda: EventBroke("swallowed"),
        _swallows,
        "caught it and went on",
    ),
}


def follow_event(semantics: str, *, checked: bool) -> list[str]:
    """What another task's event raises while the table sleeps goes on up as it is.

    ext2's table sleeps on the page's buffer, which another task holds
    locked; an event due meanwhile raises.  The run ends with that very
    exception, not a failure of the page blamed on the table: also when
    it is not an ``Exception``, and when the table catches it and goes on
    (then once the call has counted its pages, with a note; not checked,
    for the table cut off half way leaves broken buffers, which
    ``debug_vm`` finds first).
    """
    problems = []
    for what, (raised, made, note) in EVENTS.items():
        if note and checked:
            # Cut off half way by the event, the table leaves the page's buffers
            # as no kernel would: --debug-vm's check after the call says so first.
            continue
        world = _odd_world(semantics, checked=checked)
        kernel = world.kernel
        page = world.make_page(PageSpec(buffer_locked_for=50)).page
        _table_becomes(page, made(_real_table(page)))
        broke = raised()

        def event(broke: BaseException = broke) -> None:
            raise broke

        kernel.sched.call_later(20, event)
        try:
            run = world.migrate()
        except (Exception, EventExit) as exc:
            notes = getattr(exc, "__notes__", [])
            if exc is not broke or (note and not any(note in n for n in notes)):
                problems.append(f"event {what}: raised {exc!r} (notes {notes})")
            if kernel.sched.migrating is not None:
                problems.append(f"event {what}: Scheduler.migrating left set")
            if _watch_left_on():
                problems.append(f"event {what}: strict's watch of writes left on")
            continue
        problems.append(f"event {what}: went on, failures {run.stats.failures}")
    return problems


def follow_calls(semantics: str, *, checked: bool) -> list[str]:
    """Two calls on the same counts: the second moves the page the first left.

    A clean page moves in the first call; another task holds a reference
    to the second page through the first call (-EAGAIN every pass, so the
    page is left pending with its reason) and lets go before the second,
    which moves it.  The report must count both moved in one run of
    ``via``, the second no longer pending, and each call's passes.
    """
    world = _odd_world(semantics, checked=checked)
    kernel = world.kernel
    first = world.make_page(PageSpec()).page
    second = world.make_page(PageSpec(pinned_for=4 * MAX_PASSES, index=1)).page
    vmstat = kernel.vmstat
    before = (vmstat.pgmigrate_success, vmstat.pgmigrate_fail, vmstat.migrate_passes)
    run = world.migrate(rounds=2, settle_ticks=8 * MAX_PASSES)
    stats = run.stats
    problems = list(run.problems)
    table = stats.tables.get("ext2_aops")
    got = (
        run.rcs,
        stats.calls,
        stats.passes,
        dict(stats.pending),
        dict(stats.failures),
        None if table is None else (table.via, table.reasons, table.errors, table.moved),
        vmstat.pgmigrate_success - before[0],
        vmstat.pgmigrate_fail - before[1],
        vmstat.migrate_passes - before[2],
        sorted(page.pfn for page in run.moved),
    )
    wanted: tuple[object, ...] = (
        [1, 0],
        2,
        MAX_PASSES + 1,
        {},
        {},
        ({"migratepage": 2}, {}, {}, 2),
        2,
        1,
        MAX_PASSES + 1,
        sorted((first.pfn, second.pfn)),
    )
    if got != wanted:
        problems.append(f"two calls: {got}, not {wanted}")
    return problems


@pytest.mark.parametrize("checked", [False, True])
@pytest.mark.parametrize("semantics", RELEASES)
def test_what_an_event_raises_in_the_tables_sleep_goes_on_up(semantics: str, checked: bool) -> None:
    assert follow_event(semantics, checked=checked) == []


@pytest.mark.parametrize("checked", [False, True])
@pytest.mark.parametrize("semantics", RELEASES)
def test_a_second_call_moves_what_the_first_left(semantics: str, checked: bool) -> None:
    assert follow_calls(semantics, checked=checked) == []


def follow_shapes(semantics: str) -> list[str]:
    """Calls of every shape: no page at all, a swap-out, a kernel built without migration.

    A call with no page to migrate does nothing and counts nothing: it
    returns 0, whether or not ``kernel=`` names the machine.  On a kernel
    built without ``CONFIG_MIGRATION`` every call returns ``-ENOSYS`` (the
    kernel's stub), an empty one included, once a page on any of its lists
    or ``kernel=`` says which machine it is, and touches nothing.  A
    swap-out (no new pages) with no machine named takes it from its pages,
    and a call given no counts (``stats=None``) keeps its own.
    """
    world = _odd_world(semantics, checked=False)
    kernel = world.kernel
    stats = MigrateStats()
    vmstat = kernel.vmstat
    passes = vmstat.migrate_passes

    def empty() -> PageList:
        return PageList("empty")

    problems = []
    new = world.new_pages(1)
    calls: dict[str, Callable[[], int]] = {
        "no page, the machine named": lambda: migrate_pages(
            empty(), empty(), empty(), empty(), stats=stats, kernel=kernel
        ),
        "no page, nothing named": lambda: migrate_pages(
            empty(), None, empty(), empty(), stats=stats
        ),
        "only new pages": lambda: migrate_pages(empty(), new, empty(), empty(), stats=stats),
    }
    for what, call in calls.items():
        rc = call()
        counted = (rc, stats.calls, stats.passes, vmstat.migrate_passes - passes, len(new))
        if counted != (0, 0, 0, 0, 1):
            problems.append(f"{what}: (rc, calls, passes, vmstat passes, new) {counted}")
    page = world.make_page(PageSpec()).page
    moved, failed = PageList("moved"), PageList("failed")
    rc = migrate_pages(world.from_, None, moved, failed, stats=stats)
    said = (rc, list(moved), stats.calls, stats.frameless)
    if said != (0, [page], 1, {page.pfn: "dropped"}):
        problems.append(f"a swap-out, nothing named: (rc, moved, calls, frameless) {said}")
    page = world.make_page(PageSpec(index=2)).page
    rc = migrate_pages(world.from_, world.new_pages(1), moved, failed)
    if (rc, page in list(moved), stats.calls) != (0, True, 1):
        problems.append(f"no counts given: returned {rc}, moved {list(moved)}")
    other = world.make_page(PageSpec(index=1)).page
    kernel.migration = False
    stubbed: dict[str, Callable[[], int]] = {
        "pages": lambda: migrate_pages(world.from_, new, moved, failed, stats=stats),
        "no page, the machine named": lambda: migrate_pages(
            empty(), empty(), empty(), empty(), stats=stats, kernel=kernel
        ),
        "only new pages": lambda: migrate_pages(empty(), new, empty(), empty(), stats=stats),
    }
    for what, call in stubbed.items():
        rc = call()
        kept = (rc, list(world.from_), len(new), stats.calls, vmstat.migrate_passes - passes)
        # Two passes before: the swap-out's and the call's that was given no counts.
        if kept != (-ENOSYS, [other], 1, 1, 2):
            problems.append(f"without CONFIG_MIGRATION, {what}: {kept}")
    return problems


@pytest.mark.parametrize("semantics", RELEASES)
def test_calls_of_every_shape(semantics: str) -> None:
    assert follow_shapes(semantics) == []


def _refuses_then_fails(after: int) -> MigratePage:
    """A table that says ``-EAGAIN`` (``not yet``) ``after`` times, then ``-EIO``."""
    tries: list[Page] = []

    def mp(newpage: Page, page: Page) -> int:
        tries.append(page)
        if len(tries) <= after:
            page.node.kernel.current.why = "not yet"
            return -EAGAIN
        return -EIO

    return mp


def follow_counts(semantics: str, *, checked: bool) -> list[str]:
    """What the counts say across calls, and of a page left for want of a new page.

    Two calls on the same counts, read only at the end, move a page each:
    one run of ``via``; so does a call made inside another's
    ``migratepage``, whose run the outer call counts before its own.  A
    page refused in one attempt and failed for good in the next is a
    failure only, in the pass it failed, never pending, within a call and
    across two.  A page freed under us needs no new page; once the new
    pages are used up, the pages after are not reached (no attempt, left
    on ``from``: counting them is the caller's).
    """
    problems = []
    world = _odd_world(semantics, checked=checked)
    stats = MigrateStats()
    for index in range(2):
        world.make_page(PageSpec(index=index))
        migrate_pages(world.from_, world.new_pages(1), PageList("m"), PageList("f"), stats=stats)
    counted = {name: (t.via, t.moved) for name, t in stats.tables.items()}
    if counted != {"ext2_aops": ({"migratepage": 2}, 2)}:
        problems.append(f"two calls, one run: {counted}")

    for rounds, fails_after in ((1, 1), (2, MAX_PASSES)):
        world = _odd_world(semantics, checked=checked)
        page = world.make_page(PageSpec()).page

        _table_becomes(page, _refuses_then_fails(fails_after))
        run = world.migrate(rounds=rounds)
        failed_in = fails_after % MAX_PASSES
        got = (dict(run.stats.pending), dict(run.stats.failures), list(run.failed))
        wanted: tuple[object, ...] = (
            {},
            {page.pfn: ("ext2_aops", "migratepage returned EIO", "EIO", failed_in)},
            [page],
        )
        reasons = {n: t.reasons for n, t in run.stats.tables.items()}
        if got != wanted or reasons != {"ext2_aops": {"migratepage returned EIO": 1}}:
            problems.append(f"refused, then failed, {rounds} call(s): {got}, {reasons}")

    world = _odd_world(semantics, checked=checked)
    outer = world.make_page(PageSpec()).page
    inner = world.make_page(PageSpec(index=1, isolated=False)).page
    stats = MigrateStats()
    real = _real_table(outer)
    calls: list[int] = []

    def migrates_another_first(newpage: Page, page: Page) -> int:
        if not calls:  # a call on the same counts, made inside this one
            others = PageList("inner")
            assert isolate_lru_page(inner) == 1
            list_add_tail(inner, others)
            moved = PageList("moved")
            calls.append(
                migrate_pages(others, world.new_pages(1), moved, PageList("f"), stats=stats)
            )
            putback_lru_pages(moved)
        return real(newpage, page)

    _table_becomes(outer, migrates_another_first)
    moved = PageList("moved")
    calls.append(migrate_pages(world.from_, world.new_pages(1), moved, PageList("f"), stats=stats))
    putback_lru_pages(moved)
    counted = {name: (t.via, t.moved) for name, t in stats.tables.items()}
    if (calls, counted) != ([0, 0], {"ext2_aops": ({"migratepage": 2}, 2)}):
        problems.append(f"a call inside another: {calls}, {counted}")

    world = _odd_world(semantics, checked=checked)
    recorder = Recorder()
    world.kernel.log = recorder.log
    first = world.make_page(PageSpec()).page
    freed = world.make_page(PageSpec(truncated=True, index=1)).page
    last = world.make_page(PageSpec(index=2)).page
    run = world.migrate(to_count=1)
    steps = {p.pfn: recorder.paths(p.pfn) for p in (first, freed, last)}
    got_lists = (
        set(run.moved),
        list(run.from_),
        run.rcs,
        run.stats.passes,
        dict(run.stats.pending),
    )
    if steps != {first.pfn: [(0, "migratepage", 0)], freed.pfn: [(0, "freed", 0)], last.pfn: []}:
        problems.append(f"one new page for three: steps {steps}")
    if got_lists != ({first, freed}, [last], [0], 1, {}):
        problems.append(f"one new page for three: (moved, from, rcs, passes, pending) {got_lists}")
    return problems


@pytest.mark.parametrize("checked", [False, True])
@pytest.mark.parametrize("semantics", RELEASES)
def test_what_the_counts_say_across_calls_and_attempts(semantics: str, checked: bool) -> None:
    assert follow_counts(semantics, checked=checked) == []


def _next_page_pinned(real: MigratePage, next_page: Page) -> MigratePage:
    def mp(newpage: Page, page: Page) -> int:
        rc = real(newpage, page)
        get_page(next_page)  # a reference nobody will drop, on another page
        return rc

    return mp


def _new_page_kept(news: list[Page], newpage: Page, page: Page) -> None:
    news.append(newpage)
    get_page(newpage)  # a reference to the new page it never drops


def _buffer_kept(real: MigratePage) -> MigratePage:
    def mp(newpage: Page, page: Page) -> int:
        rc = real(newpage, page)
        get_bh(next(iter(buffers(newpage.private))))  # a reference it never drops
        return rc

    return mp


def follow_debug_vm(semantics: str) -> list[str]:
    """``debug_vm`` stops the run at the page a table broke, before and after each try.

    A table that keeps a reference to a buffer of the new page, or to the
    new page itself, is named right after its call; one that takes a reference to the next page on
    the list, which its own call does not touch, is found before that
    page is tried (not blamed on the next page's table), with what
    ``strict``'s watch saw it change.  The oracle at the end of the run
    would find both too, but later and with no page to name.
    """
    problems = []
    for what in ("after", "after, the new page", "before"):
        world = _odd_world(semantics, checked=True)
        page = world.make_page(PageSpec()).page
        after = world.make_page(PageSpec(index=1)).page
        real = _real_table(page)
        news: list[Page] = []
        if what == "after":
            made = _buffer_kept(real)
        elif what == "before":
            made = _next_page_pinned(real, after)
        else:
            made = _then(partial(_new_page_kept, news))(real)
        _table_becomes(page, made)
        said = f"after pfn {page.pfn} (ext2_aops, pass 0, path migratepage): "
        if what == "after":
            said += "buffer head 0 of"
        elif what == "before":
            said = f"before pfn {after.pfn} was tried (pass 0; it was broken earlier"
        try:
            world.migrate()
        except InvariantError as exc:
            lines = str(exc).splitlines()
            kept = f"pfn {news[0].pfn} (" if news else ""
            if news and not any(kept in n and "has page_count" in n for n in lines[2:]):
                problems.append(f"debug_vm {what}: the new page's count not checked: {exc}")
            if len(lines) < 2 or not lines[1].strip().startswith(said):
                problems.append(f"debug_vm {what}: {exc}")
            elif what == "before" and "--strict saw that" not in lines[1]:
                problems.append(f"debug_vm {what}: no word of what the watch saw: {exc}")
            continue
        problems.append(f"debug_vm {what}: the run went on")
    return problems


@pytest.mark.parametrize("semantics", RELEASES)
def test_debug_vm_stops_at_the_page_a_table_broke(semantics: str) -> None:
    assert follow_debug_vm(semantics) == []


def follow_generic(semantics: str) -> list[str]:
    """A table without ``migratepage`` whose ``writepage`` does something wrong.

    Its ``writepage``, called by the engine's generic path, sets the reason
    a page stays to something not a ``str``: the engine says what it was set
    to, in the trace, and the page moves on the next pass.  One that marks
    the page it wrote on the LRU (which only the engine may put back) is
    ``lru_cache_add``'s ``BUG()`` ahead, named as the generic path's.
    """
    problems = []
    for what in ("reason", "lru"):
        subject = resolve_subject(EXT2_2615, "nobh", ("no_migratepage",), semantics=semantics)
        world = World(subject)
        recorder = Recorder()
        world.kernel.log = recorder.log
        page = world.make_page(PageSpec(dirty=True)).page
        mapping = page.mapping
        assert isinstance(mapping, AddressSpace) and mapping.a_ops.writepage is not None
        real = mapping.a_ops.writepage

        def writepage(
            page: Page, wbc: WritebackControl, /, real: WritePage = real, what: str = what
        ) -> int:
            rc = real(page, wbc)
            if what == "reason":
                page.node.kernel.current.why = 42  # type: ignore[assignment]  # wrongly
            else:
                page.flags |= PG.lru
            return rc

        mapping.a_ops = attrs.evolve(mapping.a_ops, writepage=writepage)
        name = mapping.a_ops.name
        try:
            run = world.migrate()
        except KernelBug as exc:
            said = (
                f"pfn {page.pfn} (the old page) is marked on the LRU (PG_lru) though it is off "
                f"every LRU list: {name}'s writepage or releasepage (generic path) set it"
            )
            if what != "lru" or not str(exc).startswith(said):
                problems.append(f"generic path, {what}: {exc}")
            continue
        steps = [
            (e["pass_"], e["path"], e["rc"], e["why"]) for e in recorder.named("mm_migrate_page")
        ]
        wanted = [
            (0, "pageout_success", -EAGAIN, "current.why was set to 42, not a str"),
            (1, "migrate_page", 0, ""),
        ]
        if what != "reason" or steps != wanted or run.problems:
            problems.append(f"generic path, {what}: steps {steps}, {run.problems}")
    return problems


@pytest.mark.parametrize("semantics", RELEASES)
def test_what_a_writepage_does_wrong_on_the_generic_path(semantics: str) -> None:
    assert follow_generic(semantics) == []


def _spoils_page_2(real: MigratePage) -> MigratePage:
    def mp(newpage: Page, page: Page) -> int:
        if page.index == 20:
            mapping = page.mapping
            assert isinstance(mapping, AddressSpace)
            other = mapping.lookup(2)
            assert other is not None
            node = other.node
            at = (other.pfn - node.start_pfn) << node.page_shift
            node.mem[at] = (node.mem[at] + 1) & 0xFF
        return real(newpage, page)

    return mp


_REPLAYED = (
    '[kernel]\nnode_memory = "4MiB"\nsemantics = "{semantics}"\n[[mount]]\nfs = "spoil"\n'
    "pages = 24\nfiles = 1\n[workload]\nseed = 3\n"
)


def follow_replay(semantics: str) -> list[str]:
    """A run whose page reads back wrong replays itself and names the call that changed it.

    The table (ext2's, plus one wild write) spoils page 2 of its file while
    it migrates page 20, out of ``--strict``'s sight; the replay's watch,
    which the engine tells of each call (``kernel.replay``), names the call
    of page 20 and where the bytes changed.
    """
    registry = load_plugins(cli=["ext2"])
    ext2 = registry.filesystems["ext2"]
    real = ext2.modes["default"].migratepage
    assert real is not None
    table = attrs.evolve(ext2.modes["default"], name="spoil_aops", migratepage=_spoils_page_2(real))
    fs = attrs.evolve(ext2, name="spoil", modes={"default": table})
    spoiling = attrs.evolve(registry, filesystems={**registry.filesystems, "spoil": fs})
    config = parse_config(_REPLAYED.format(semantics=semantics), "spoil.toml")
    report = run_plan(plan_scenario(config, spoiling, "spoil.toml"))
    (line,) = report.integrity.problems
    said = (
        "the replay saw table spoil_aops's migratepage call ",
        " (of pfn 20, mount0/file0 page 20) change it, at pfn 2 (",
    )
    if report.status != "data lost" or not all(words in line for words in said):
        return [f"replay: {report.status}: {line}"]
    return []


@pytest.mark.parametrize("semantics", RELEASES)
def test_the_replay_names_the_call_that_spoiled_a_page(semantics: str) -> None:
    assert follow_replay(semantics) == []


def follow_explore() -> list[str]:
    """Schedules of ext2's migration against a reading fault and a ``write()``: none fails.

    The accessors sleep on the page locks the engine holds (the old page's,
    and the new page's once the fault finds it in the page cache): each
    must be woken when the engine unlocks the page, or a schedule hangs.
    Every schedule with at most one preemption is run.
    """
    result = explore(
        "ext2", tasks=["read-fault", "write"], preemptions=1, registry=load_plugins(cli=["ext2"])
    )
    if not result.exhausted or result.failures or result.status is not Status.OK:
        return [f"explore: {result.status}, exhausted {result.exhausted}, {result.failures}"]
    return []


def test_every_schedule_against_a_fault_and_a_write_passes() -> None:
    assert follow_explore() == []


def first_difference() -> str | None:
    """The first of this module's runs the engine does not follow, as what differs; else ``None``.

    Every run, the quick ones that follow most of the engine first (so a
    mutant of it is told apart in well under a second): each page state
    (:data:`RUNS`), the calls' shapes, ``debug_vm``'s stops, the generic
    path's odd ``writepage``, the replay's naming of a call, the events,
    the calls and their counts, then the tables that do something wrong and
    the explored schedules, which take about as long as all the rest.
    """
    for table, semantics, state, checked in RUNS:
        problems = follow(table, semantics, state, checked=checked)
        if problems:
            how = "checked" if checked else "plain"
            return f"{table}, {semantics}, {state}, {how}: " + "; ".join(problems)
    for semantics in RELEASES:
        problems = (
            follow_shapes(semantics)
            + follow_debug_vm(semantics)
            + follow_generic(semantics)
            + follow_replay(semantics)
        )
        if problems:
            return f"{semantics}: " + "; ".join(problems)
    for checked in (False, True):
        for semantics in RELEASES:
            problems = (
                follow_event(semantics, checked=checked)
                + follow_calls(semantics, checked=checked)
                + follow_counts(semantics, checked=checked)
            )
            if problems:
                return f"{semantics}, {'checked' if checked else 'plain'}: " + "; ".join(problems)
    for what, semantics, checked in ODD_RUNS:
        problems = follow_odd(what, semantics, checked=checked)
        if problems:
            return f"{semantics}, {'checked' if checked else 'plain'}: " + "; ".join(problems)
    problems = follow_explore()
    return "; ".join(problems) if problems else None
