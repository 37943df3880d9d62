"""Racy ``migratepage`` implementations: the explorer finds each; does the serial suite?

``tests/configs/plugins/racyfs_plugin.py`` holds ext2's ``migratepage``
with one race each, installed here as a third-party plugin (``racyfs``) the
way pip would leave it.  ``fsaops explore`` must find every one within its
default bounds (two preemptions, four pages), with the accessor task that
races with it, and print its schedule.  For each, the serial conformance
suite's verdict is recorded as observed.
"""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from fsaops.explore import explore, replay
from fsaops.explore.api import render_text
from fsaops.explore.setup import TaskSpec
from fsaops.plugins import Registry, load_plugins
from fsaops.testing.dist import write_dist_info
from suite_runs import call_reports, failed_by_table, inline_reports

PLUGINS = Path(__file__).parent / "configs" / "plugins"
sys.path.insert(0, str(PLUGINS))
import racyfs_plugin  # noqa: E402

pytest_plugins = ["pytester"]

RACES: dict[str, tuple[list[str | TaskSpec], str]] = {
    "checks_refs_without_tree_lock": (["read-fault", "write"], "stale mapping"),
    "drops_private_lock_before_retargeting": (["bh-lock"], "PG_private is set but private is 0"),
    "copies_before_unmapping": (["mmap-write"], "lost"),
    "samples_dirty_before_unmapping": (["mmap-write"], "a dirty state was lost"),
    "drops_the_page_lock": (["writeback"], "under writeback"),
    # Only on a dirty page (page 1): the default runs each accessor on both.
    "locks_clean_buffers_only": (
        [TaskSpec("bh-lock", 1)],
        "holds bytes that are no version of that block",
    ),
    # Page 1's bh-lock takes the last buffer (page 0's the first).  The first
    # schedule that fails moves that buffer while the lock is held for its I/O.
    "skips_the_last_buffer_lock": (
        [TaskSpec("bh-lock", 1)],
        "the table moved a locked buffer",
    ),
    # A reader that got the buffer before the migration locks it between
    # the unlock and the move, and its I/O uses the old frame.
    "unlocks_buffers_before_moving_them": (
        [TaskSpec("bh-lock", 0)],
        "the table moved a locked buffer",
    ),
    # Only dirty pages are written out (page 1): the last buffer's write
    # unlocks it before the page's writeback ends, and the page is freed
    # under writeback in between.
    "writes_out_without_waiting": (
        [TaskSpec("read-fault", 0)],
        "while it is still in use",
    ),
}
"""Each racy function: the accessors it races with, and words of what goes wrong."""


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """``racyfs`` installed (a dist-info on ``sys.path``), and the plugins loaded."""
    site = tmp_path_factory.mktemp("site")
    write_dist_info(site, "fsaops-racyfs", {"fsaops": {"racyfs": "racyfs_plugin"}})
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(site))
        patch.delenv("FSAOPS_PLUGINS", raising=False)
        yield load_plugins()


def test_every_racy_function_is_listed() -> None:
    assert set(RACES) == set(racyfs_plugin.RACY)


@pytest.mark.parametrize("name", sorted(RACES))
def test_the_explorer_finds_the_race(name: str, registry: Registry) -> None:
    tasks, words = RACES[name]
    result = explore(f"race_{name}", tasks=tasks, registry=registry)
    assert result.failures, f"{name}: no schedule fails in {result.schedules}"
    (failure,) = result.failures
    assert any(words in problem for _, problem in failure.problems), failure.problems
    # The schedule in kernel terms: the migration and the accessor both ran.
    ran = {step.task.split("@")[0] for step in failure.interleaving}
    assert {"migrate", str(tasks[0]).split("@")[0]} <= ran
    text = render_text(result)
    assert "FAILED" in text and failure.replay in text
    # The replay string runs exactly that schedule again.
    again = replay(failure.replay, registry=registry)
    assert [f.problems for f in again.failures] == [failure.problems]


@pytest.mark.long
@pytest.mark.exhaustive
@pytest.mark.parametrize("name", sorted(RACES))
def test_the_default_tasks_and_bounds_find_the_race(name: str, registry: Registry) -> None:
    """``fsaops explore --fs race_NAME`` alone: every accessor in turn, k = 2, four pages."""
    result = explore(f"race_{name}", registry=registry)
    assert not result.bounds.together and result.bounds.preemptions == 2
    assert len(result.tasks) > 1  # every accessor that applies
    assert result.failures, f"{name}: no schedule fails in {result.schedules}"
    (failure,) = result.failures
    assert any(RACES[name][1] in problem for _, problem in failure.problems), failure.problems
    again = replay(failure.replay, registry=registry)
    assert [f.problems for f in again.failures] == [failure.problems]


@pytest.mark.exhaustive
def test_one_accessor_named_without_a_page_runs_on_a_clean_and_a_dirty_page(
    registry: Registry,
) -> None:
    """``--tasks bh-lock``: as the default runs it, so the dirty-only race is found."""
    result = explore("race_locks_clean_buffers_only", tasks=["bh-lock"], registry=registry)
    assert result.tasks == ("bh-lock@0", "bh-lock@1")
    (failure,) = result.failures
    assert any("task bh-lock@1 failed" in problem for _, problem in failure.problems)


@pytest.mark.exhaustive
def test_the_correct_table_passes_the_same_schedules(registry: Registry) -> None:
    """ext2's own buffer_migrate_page under the accessors the races need: nothing fails."""
    for tasks, _ in RACES.values():
        result = explore("ext2", tasks=tasks, pages=2, preemptions=1, registry=registry)
        assert result.exhausted and not result.failures, render_text(result)


SUITE = textwrap.dedent(
    """
    from racyfs_plugin import RACY, filesystem
    from fsaops.testing import MigratepageConformance

    for name in RACY:
        globals()[f"Test_{name}"] = type(
            f"Test_{name}",
            (MigratepageConformance,),
            {"filesystem": filesystem(name)},
        )
    """
)

CAUGHT_SERIALLY = {
    # Serially nobody takes a reference between the check and the move.
    "checks_refs_without_tree_lock": False,
    # Serially nobody looks the buffers up while private_lock is dropped.
    "drops_private_lock_before_retargeting": False,
    # Serially nobody stores through a pte between the copy and the unmap.
    "copies_before_unmapping": False,
    # Caught: a page dirty only in its pte is clean when the bit is sampled.
    "samples_dirty_before_unmapping": True,
    # Serially nobody starts writeback while the page lock is dropped.
    "drops_the_page_lock": False,
    # Caught: serially nobody holds a dirty buffer's lock while the page moves,
    # but the hook promise watches each buffer move, and a dirty one moves unlocked.
    "locks_clean_buffers_only": True,
    # Caught the same way: the last buffer moves without its lock.
    "skips_the_last_buffer_lock": True,
    # Caught: the buffers move to the new page with their locks dropped.
    "unlocks_buffers_before_moving_them": True,
    # Caught, though not for the race: it writes a dirty page back, where the
    # hook promises to carry the dirty state to the new page without writeback.
    "writes_out_without_waiting": True,
}
"""Whether the serial conformance suite fails a promise for each racy function, as observed."""


@pytest.mark.exhaustive
def test_what_the_serial_suite_catches(pytester: pytest.Pytester) -> None:
    reprec, failed = failed_by_table(pytester, PLUGINS, SUITE)
    passed, _, _ = reprec.listoutcomes()
    assert len(passed) > 10 * len(racyfs_plugin.RACY)  # the suite ran for every table
    observed = {name: name in failed for name in racyfs_plugin.RACY}
    assert observed == CAUGHT_SERIALLY, failed


RACE_PROMISE = textwrap.dedent(
    """
    from racyfs_plugin import filesystem
    from fsaops.testing.races import MigratepageRaces

    class TestRacy(MigratepageRaces):
        filesystem = filesystem("drops_private_lock_before_retargeting")
        pages = 1
        preemptions = 1
        pct_schedules = 0

    class TestDirtyOnly(MigratepageRaces):
        filesystem = filesystem("locks_clean_buffers_only")
        preemptions = 1
        pct_schedules = 0

    class TestBuftarg(MigratepageRaces):
        filesystem = "xfs_buftarg"
        preemptions = 1
        pct_schedules = 10
    """
)


@pytest.mark.exhaustive
def test_the_race_promise_fails_with_the_schedule_in_kernel_terms(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FSAOPS_PLUGINS", raising=False)
    pytester.syspathinsert(PLUGINS)
    pytester.makepyfile(test_races=RACE_PROMISE)
    # TestRacy runs one page (its race is on page 0): what that leaves out is said as a
    # warning (a UserWarning: the class may be another import of it than a filter would name).
    reprec = inline_reports(pytester, "-W", "default::UserWarning")
    outcomes = call_reports(reprec)
    racy = outcomes["TestRacy::test_race_no_schedule_with_one_accessor_fails"]
    assert racy.failed
    text = racy.longreprtext
    assert "task bh-lock@0 failed" in text
    assert "spin_lock in find_get_block_lock_buffer page 0" in text
    assert "replay: fsaops explore --replay fsx2." in text
    # A race only a dirty page shows: each accessor runs on a clean and on a dirty page.
    dirty = outcomes["TestDirtyOnly::test_race_no_schedule_with_one_accessor_fails"]
    assert dirty.failed and "task bh-lock@1 failed" in dirty.longreprtext
    assert outcomes["TestBuftarg::test_race_no_schedule_with_one_accessor_fails"].passed
    assert outcomes["TestBuftarg::test_race_no_pct_schedule_with_every_accessor_fails"].passed


EXAMPLE_PLUGIN = Path(__file__).parents[1] / "docs" / "examples" / "fsaops-example-plugin" / "src"

CORRECT_TABLES = textwrap.dedent(
    """
    from fsaops_ramfs import RAMFS
    from fsaops.testing.races import MigratepageRaces

    class TestExt2(MigratepageRaces):
        filesystem = "ext2"
        preemptions = 0
        pct_schedules = 10

    class TestRamfs(MigratepageRaces):
        filesystem = RAMFS
        preemptions = 1
        pct_schedules = 10
    """
)


@pytest.mark.exhaustive
def test_the_race_promise_passes_correct_tables_as_documented(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two pages by default, every accessor at once (truncate wants a page of its own), and a
    table with nothing to write back to (the docs' ramfs, whose reads give zeroes)."""
    monkeypatch.delenv("FSAOPS_PLUGINS", raising=False)
    pytester.syspathinsert(EXAMPLE_PLUGIN)
    pytester.makepyfile(test_correct=CORRECT_TABLES)
    reprec = inline_reports(pytester)
    passed, skipped, failed = reprec.listoutcomes()
    assert not failed, [report.longreprtext[-1500:] for report in failed]
    assert len(passed) == 4, skipped


def test_a_page_freed_under_writeback_is_found_with_one_preemption(registry: Registry) -> None:
    """The window between a write's last buffer unlock and the end of the page's writeback."""
    result = explore(
        "race_writes_out_without_waiting",
        tasks=[TaskSpec("read-fault", 0)],
        pages=2,
        preemptions=1,
        registry=registry,
    )
    assert result.failures, f"no schedule fails in {result.schedules}"
    (failure,) = result.failures
    assert any("while it is still in use" in problem for _, problem in failure.problems)
    assert any("writeback" in problem for _, problem in failure.problems)
    # The migration, woken by the last unlock, ran before the write ended the writeback.
    assert any(step.task == "migrate" and step.preempted for step in failure.interleaving)
