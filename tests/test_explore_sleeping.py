"""Sleeping while holding a spinlock: the explorer fails the schedule, as ``might_sleep`` does.

A ``migratepage`` that takes ``private_lock`` or ``tree_lock`` and then
sleeps (``lock_buffer`` on a buffer another task holds) passed every
schedule before: no task in the explored schedules wanted the lock while
it slept.  The kernel's debug build says "sleeping
function called from invalid context"; the explorer now fails the schedule
with it, naming the lock, the function that took it and where the task
slept.  V4's own ``buffer_migrate_page``, which locks the buffers under
``private_lock`` as the kernel did (V4 to V8), still passes, and so does a
table that does the same under those releases; a task that only spins for
a second spinlock while it holds one does not sleep.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable

import attrs
import pytest

from fsaops import FileSystemType, buffer_migrate_page
from fsaops.buffer import buffers, lock_buffer, unlock_buffer
from fsaops.errors import ConfigError
from fsaops.explore import explore
from fsaops.explore.api import ExploreResult, render_text
from fsaops.explore.setup import TaskSpec
from fsaops.mapping import AddressSpace
from fsaops.page import PG, Page
from fsaops.plugins import load_plugins

pytest_plugins = ["pytester"]

SLEEPS = "sleeping function called from invalid context"


def _ext2() -> FileSystemType:
    return load_plugins(cli=["ext2"]).filesystem("ext2")


def _table(name: str, migratepage: Callable[[Page, Page], int]) -> FileSystemType:
    ext2 = _ext2()
    aops = attrs.evolve(ext2.aops("default"), name=f"{name}_aops", migratepage=migratepage)
    return attrs.evolve(ext2, name=name, modes={"default": aops}, page_cache={})


def locks_buffers_under_private_lock(newpage: Page, page: Page) -> int:
    """Locks (and unlocks) every buffer with ``private_lock`` held, then migrates."""
    mapping = page.mapping
    if isinstance(mapping, AddressSpace) and page.flags & PG.private:
        with mapping.private_lock:
            for bh in buffers(page.private):
                lock_buffer(bh)
                unlock_buffer(bh)
    return buffer_migrate_page(newpage, page)


def locks_buffers_under_tree_lock(newpage: Page, page: Page) -> int:
    """The same under ``tree_lock``, taken by hand."""
    mapping = page.mapping
    if isinstance(mapping, AddressSpace) and page.flags & PG.private:
        mapping.tree_lock.acquire()
        try:
            for bh in buffers(page.private):
                lock_buffer(bh)
                unlock_buffer(bh)
        finally:
            mapping.tree_lock.release()
    return buffer_migrate_page(newpage, page)


def spins_for_tree_lock_under_private_lock(newpage: Page, page: Page) -> int:
    """Takes ``tree_lock`` inside ``private_lock``: a spin, not a sleep."""
    mapping = page.mapping
    if isinstance(mapping, AddressSpace):
        with mapping.private_lock, mapping.tree_lock:
            pass
    return buffer_migrate_page(newpage, page)


def _said(result: ExploreResult) -> str:
    assert result.failures, render_text(result)
    (failure,) = result.failures
    return " ".join(problem for _, problem in failure.problems)


@pytest.mark.parametrize("semantics", ["v4", "2.6.16"])
def test_a_table_that_sleeps_on_a_buffer_under_tree_lock_fails(semantics: str) -> None:
    fs = _table("treelock", locks_buffers_under_tree_lock)
    said = _said(
        explore(fs, "default", tasks=[TaskSpec("bh-lock", 0)], pages=2, semantics=semantics)
    )
    assert SLEEPS in said
    assert "migrate sleeps on buffer lock of buffer head 0 of pfn " in said
    assert "in lock_buffer holding spinlock tree_lock of treelock" in said
    assert "(taken in locks_buffers_under_tree_lock)" in said
    assert "treelock_aops's migratepage" in said


def test_sleeping_on_a_buffer_under_private_lock_fails_where_the_release_does_not_do_it() -> None:
    """2.6.16's ``buffer_migrate_page`` takes no ``private_lock``: there the sleep is a bug."""
    fs = _table("privlock", locks_buffers_under_private_lock)
    said = _said(
        explore(fs, "default", tasks=[TaskSpec("bh-lock", 0)], pages=2, semantics="2.6.16")
    )
    assert SLEEPS in said
    assert "holding spinlock private_lock of privlock" in said
    assert "(taken in locks_buffers_under_private_lock)" in said


def test_sleeping_on_a_buffer_under_private_lock_passes_where_the_release_does_it() -> None:
    """V4 to V8 lock the buffers under ``private_lock`` themselves: a table may too."""
    fs = _table("privlock", locks_buffers_under_private_lock)
    result = explore(fs, "default", tasks=[TaskSpec("bh-lock", 0)], pages=2)
    assert result.exhausted and not result.failures, render_text(result)


def test_v4_buffer_migrate_page_sleeps_under_private_lock_as_the_kernel_did() -> None:
    """The same schedules pass for V4's own code, which locks the buffers under the lock."""
    result = explore(_ext2(), "default", tasks=[TaskSpec("bh-lock", 0)], pages=2)
    assert result.exhausted and not result.failures, render_text(result)
    assert result.schedules > 1


def test_spinning_for_a_spinlock_while_holding_one_is_no_sleep() -> None:
    fs = _table("nested", spins_for_tree_lock_under_private_lock)
    result = explore(fs, "default", tasks=[TaskSpec("bh-lock", 0)], pages=2)
    assert result.exhausted and not result.failures, render_text(result)
    assert result.schedules > 1


# -- what the explorer's options do not take together ------------------------------


def test_a_seed_without_pct_is_refused() -> None:
    with pytest.raises(ConfigError, match="PCT"):
        explore("ext2", tasks=["write"], seed=3)


def test_together_with_tasks_is_refused() -> None:
    with pytest.raises(ConfigError, match="together"):
        explore("ext2", tasks=["write"], together=True)


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--fs", "ext2", "--seed", "3"], "--seed seeds PCT"),
        (["--fs", "ext2", "--pct", "2", "--preemptions", "1"], "--preemptions bounds"),
        (["--fs", "ext2", "--together", "--tasks", "write"], "--together runs"),
        (["--replay", "fsx2.e30", "--seed", "1"], "it takes no --seed"),
        (["--replay", "fsx2.e30", "--pages", "2"], "it takes no --pages"),
        (["--replay", "fsx2.e30", "--preemptions", "0"], "it takes no --preemptions"),
    ],
)
def test_the_command_refuses_options_it_would_ignore(
    args: list[str], words: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from fsaops.cli import main

    assert main(["explore", *args]) == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


# -- the kit ------------------------------------------------------------------------


def test_the_race_kit_says_one_page_leaves_the_dirty_runs_out(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FSAOPS_PLUGINS", raising=False)
    pytester.makepyfile(
        test_one_page=textwrap.dedent(
            """
            from fsaops.testing.races import MigratepageRaces

            class TestOnePage(MigratepageRaces):
                filesystem = "ext2"
                pages = 1
                preemptions = 0
                pct_schedules = 0

            class TestTwoPages(MigratepageRaces):
                filesystem = "ext2"
                pages = 2
                preemptions = 0
                pct_schedules = 0
            """
        )
    )
    run = pytester.runpytest_inprocess(
        "-p",
        "no:cacheprovider",
        "-k",
        "one_accessor",
        "-W",
        "default::UserWarning",
    )
    out = run.stdout.str()
    assert run.parseoutcomes().get("passed") == 2, out
    said = "ext2 mode default (ext2_aops): pages = 1 runs each accessor on a clean page only; "
    live = [line for line in out.splitlines() if line.startswith(said)]
    assert len(live) == 1, out
    assert "bh-lock" in live[0] and "with pages = 2 or more" in live[0]
    assert "CleanPageOnlyWarning" in out
    assert out.count("runs each accessor on a clean page only") == 2  # the line and the warning
    strict = pytester.runpytest_inprocess(
        "-p",
        "no:cacheprovider",
        "-k",
        "one_accessor",
        "-W",
        "error::UserWarning",
        "-W",
        "ignore::pytest.PytestAssertRewriteWarning",
    )
    outcomes = strict.parseoutcomes()
    assert outcomes.get("failed") == 1 and outcomes.get("passed") == 1, strict.stdout.str()
    assert "CleanPageOnlyWarning: ext2 mode default" in strict.stdout.str()


RESCHEDULES = "cond_resched() called from invalid context"


def _resched_under(page: Page, lock: str) -> None:
    """``cond_resched`` with the page's mapping's ``lock`` held."""
    mapping = page.mapping
    if isinstance(mapping, AddressSpace):
        with getattr(mapping, lock):
            mapping.kernel.sched.tick()


def reschedules_under_tree_lock(newpage: Page, page: Page) -> int:
    """Calls ``cond_resched`` with ``tree_lock`` held, then migrates."""
    _resched_under(page, "tree_lock")
    return buffer_migrate_page(newpage, page)


def reschedules_under_private_lock(newpage: Page, page: Page) -> int:
    """Calls ``cond_resched`` with ``private_lock`` held, as a trylock loop there would."""
    _resched_under(page, "private_lock")
    return buffer_migrate_page(newpage, page)


def reschedules_unlocked(newpage: Page, page: Page) -> int:
    """Takes and drops ``tree_lock``, then calls ``cond_resched``: the twin that passes."""
    mapping = page.mapping
    if isinstance(mapping, AddressSpace):
        with mapping.tree_lock:
            pass
        mapping.kernel.sched.tick()
    return buffer_migrate_page(newpage, page)


@pytest.mark.parametrize("semantics", ["v4", "2.6.16", "2.6.17"])
def test_cond_resched_under_tree_lock_fails_the_schedule(semantics: str) -> None:
    """On a kernel without preemption ``cond_resched`` schedules with the spinlock held."""
    result = explore(
        _table("resched_tree", reschedules_under_tree_lock),
        "default",
        tasks=["read-fault"],
        pages=2,
        preemptions=0,
        semantics=semantics,
    )
    assert result.failures, render_text(result)
    (failure,) = result.failures
    text = " ".join(p for _, p in failure.problems)
    assert RESCHEDULES in text and "tree_lock of" in text, text
    assert "reschedules in resched_under holding" in text and "cond_resched_lock" in text


def test_cond_resched_under_private_lock_is_let_be_only_where_v4_sleeps_there() -> None:
    """V4 to V8 sleep on buffer locks under ``private_lock``: a reschedule there is theirs too."""
    table = _table("resched_private", reschedules_under_private_lock)
    v4 = explore(table, "default", tasks=["read-fault"], pages=2, preemptions=0)
    assert not v4.failures, render_text(v4)
    later = explore(
        table, "default", tasks=["read-fault"], pages=2, preemptions=0, semantics="2.6.16"
    )
    (failure,) = later.failures
    assert any(RESCHEDULES in p and "private_lock of" in p for _, p in failure.problems)


def test_cond_resched_with_no_spinlock_held_passes() -> None:
    result = explore(
        _table("resched_free", reschedules_unlocked),
        "default",
        tasks=["read-fault"],
        pages=2,
        preemptions=1,
    )
    assert result.exhausted and not result.failures, render_text(result)
