"""A search far larger than any built-in table's says so, and one cut short is not ``ok``.

A ``migratepage`` that writes a dirty page out itself and waits for it (as
the generic path's ``pageout`` does) is right, but each buffer write it
submits is a task of its own whose completion the search interleaves with
every other task: the default search of such a table does not end for
hours.  Before, ``fsaops explore`` said nothing while it ran, and a search
stopped by ``--schedules`` said "no schedule fails", status ``ok``, exit 0.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import attrs
import pytest

from fsaops.aops import FileSystemType
from fsaops.cli import main
from fsaops.explore import TaskSpec, explore
from fsaops.explore import search as explore_search
from fsaops.explore.api import render_text
from fsaops.explore.setup import MAX_PAGES
from fsaops.mapping import AddressSpace
from fsaops.page import PG, Page, lock_page, wait_on_page_writeback
from fsaops.plugins import Registry, load_plugins
from fsaops.status import Status
from fsaops.writeback import WritebackControl, clear_page_dirty_for_io

pytest_plugins = ["pytester"]


@pytest.fixture(scope="module")
def registry() -> Iterator[Registry]:
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("FSAOPS_PLUGINS", raising=False)
        yield load_plugins()


def _writes_itself(registry: Registry) -> FileSystemType:
    """ext2 whose ``migratepage`` writes a dirty page out, waits for the write, then moves it."""
    ext2 = registry.filesystems["ext2"]
    a_ops = ext2.modes["default"]
    migratepage = a_ops.migratepage
    assert migratepage is not None

    def writes_then_moves(newpage: Page, page: Page, /) -> int:
        mapping = page.mapping
        if isinstance(mapping, AddressSpace) and page.flags & PG.dirty:
            writepage = mapping.a_ops.writepage
            if writepage is not None and clear_page_dirty_for_io(page):
                writepage(page, WritebackControl(sync_mode="none", for_reclaim=False))
                lock_page(page)
                wait_on_page_writeback(page)
        return migratepage(newpage, page)

    table = attrs.evolve(a_ops, name="writer_aops", migratepage=writes_then_moves)
    return attrs.evolve(ext2, name="writer", modes={"default": table}, page_cache={})


@pytest.mark.exhaustive
def test_a_table_that_writes_its_pages_out_is_said_to_make_the_search_large(
    registry: Registry,
) -> None:
    said: list[str] = []
    result = explore(
        _writes_itself(registry),
        tasks=[TaskSpec("read-fault", 1)],
        schedules=1_200,
        notice=said.append,
        registry=registry,
    )
    assert len(said) == 1, said
    (notice,) = said
    assert "the search against read-fault@1 is large" in notice
    # Pages 1 and 3 are dirty: four buffers each, written by the migration.
    assert "8 of them the completions of I/O the migration submitted itself" in notice
    assert "fewer preemptions (--preemptions 1), fewer pages (--pages 2)" in notice
    assert "--schedules N" in notice
    assert not result.exhausted and not result.failures
    assert result.cut_short and result.status is Status.OK and result.exit_status == 0
    text = render_text(result)
    assert "no schedule fails" not in text
    assert "NOT EXHAUSTED: none of the 1200 schedules run fails" in text
    assert result.to_json()["exhausted"] is False


def test_a_built_in_table_is_never_said_to_be_large(registry: Registry) -> None:
    said: list[str] = []
    result = explore(
        "ext2", tasks=[TaskSpec("read-fault", 1)], notice=said.append, registry=registry
    )
    assert result.exhausted and said == []
    assert result.status is Status.OK and result.exit_status == 0
    assert render_text(result).endswith("no schedule fails\n")


def test_the_command_says_it_on_stderr_and_a_cut_short_search_says_so(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FSAOPS_PLUGINS", raising=False)
    monkeypatch.setattr(explore_search, "LARGE_SPACE", 10)
    args = ["--fs", "ext2", "--tasks", "read-fault@1", "--pages", "2", "--preemptions", "1"]
    status = main(["explore", *args, "--schedules", "15", "--json"])
    out, err = capsys.readouterr()
    assert status == 0
    data = json.loads(out)
    assert data["status"] == "ok" and data["exhausted"] is False
    assert err.count("\n") == 1 and err.startswith("fsaops explore: the search against ")
    assert "is large" in err and "--schedules N" in err
    # A search that ends is ok, and says nothing more.
    monkeypatch.setattr(explore_search, "LARGE_SPACE", 10**9)
    status = main(["explore", *args])
    out, err = capsys.readouterr()
    assert status == 0 and err == ""
    assert out.endswith("no schedule fails\n")


def test_pct_and_a_replay_are_still_ok_when_nothing_fails(registry: Registry) -> None:
    """PCT runs the schedules it was asked for and never exhausts a space: not cut short."""
    pct = explore("ext2", tasks=["read-fault"], pages=1, pct=2, schedules=2, registry=registry)
    assert not pct.exhausted and not pct.cut_short
    assert pct.status is Status.OK and pct.exit_status == 0


def _relocks(registry: Registry, times: int) -> FileSystemType:
    """ext2 whose ``migratepage`` takes and drops ``tree_lock`` ``times`` times, then moves.

    Right, and every schedule of it is long: each take and each drop is a point.
    """
    ext2 = registry.filesystems["ext2"]
    a_ops = ext2.modes["default"]
    migratepage = a_ops.migratepage
    assert migratepage is not None

    def relocks_then_moves(newpage: Page, page: Page, /) -> int:
        mapping = page.mapping
        assert isinstance(mapping, AddressSpace)
        for _ in range(times):
            with mapping.tree_lock:
                pass
        return migratepage(newpage, page)

    table = attrs.evolve(a_ops, name="relocker_aops", migratepage=relocks_then_moves)
    return attrs.evolve(ext2, name="relocker", modes={"default": table}, page_cache={})


def test_a_search_of_long_schedules_says_so_from_its_first_schedules(registry: Registry) -> None:
    """Fewer schedules than a built-in table's largest run, each of them a hundred times longer.

    Before, nothing was said: the notice counted schedules only, and a few
    hundred schedules of thousands of points each stayed under its bound.
    """
    said: list[str] = []
    result = explore(
        _relocks(registry, 800),
        tasks=[TaskSpec("read-fault", 0)],
        pages=2,
        preemptions=1,
        schedules=10,
        notice=said.append,
        registry=registry,
    )
    assert len(said) == 1, said
    (notice,) = said
    assert "the search against read-fault@0 is large" in notice
    steps = int(notice.split("its schedules are up to ")[1].split(" ")[0])
    assert steps > 1_600, notice
    assert "--schedules N" in notice
    assert not result.exhausted and result.cut_short and not result.failures


RACE_CLASS = """
from fsaops.testing.races import MigratepageRaces


class TestExt2Races(MigratepageRaces):
    filesystem = "ext2"
    pages = 2
    preemptions = 0
    pct_schedules = 0
"""


def test_the_kits_race_test_says_a_search_is_large_at_once_and_warns(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A plugin author's race test whose search is large says so: on the terminal and as a warning.

    Before, the kit passed no notice on: the test ran on without a word.
    """
    monkeypatch.delenv("FSAOPS_PLUGINS", raising=False)
    monkeypatch.setattr(explore_search, "LARGE_WORK", 1)  # every search is large
    pytester.makepyfile(test_races=RACE_CLASS)
    run = pytester.runpytest_inprocess(
        "-p",
        "no:cacheprovider",
        "-p",
        "no:randomly",
        "-k",
        "one_accessor",
        "-W",
        "default::fsaops.testing.races.LargeSearchWarning",
    )
    assert run.parseoutcomes().get("passed") == 1, run.stdout.str()
    out = run.stdout.str()
    live = [line for line in out.splitlines() if "fsaops explore: the search against" in line]
    assert live, out
    assert any(line.startswith("ext2 ") and "is large" in line for line in live), live
    assert "LargeSearchWarning" in out
    assert run.parseoutcomes().get("warnings", 0) >= 1


def test_under_warnings_as_errors_the_kits_race_test_fails_at_once_saying_why(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FSAOPS_PLUGINS", raising=False)
    monkeypatch.setattr(explore_search, "LARGE_WORK", 1)
    pytester.makepyfile(test_races=RACE_CLASS)
    # In process (for the patched bound): the suite may have imported fsaops's
    # plugin modules already, which pytest can then no longer rewrite; that
    # warning is not what this test is about.
    run = pytester.runpytest_inprocess(
        "-p",
        "no:cacheprovider",
        "-p",
        "no:randomly",
        "-k",
        "one_accessor",
        "-W",
        "error",
        "-W",
        "ignore::pytest.PytestAssertRewriteWarning",
    )
    assert run.parseoutcomes().get("failed") == 1, run.stdout.str()
    assert "LargeSearchWarning: ext2 " in run.stdout.str()


@pytest.mark.parametrize(
    ("fs", "mode"),
    [
        ("ext2", "default"),
        ("ext2", "nobh"),
        ("ext3", "ordered"),
        ("ext3", "journal"),
        ("xfs", "default"),
        ("xfs_buftarg", "default"),
        ("swap", "default"),
    ],
)
def test_the_most_pages_are_read_back_whole_on_every_built_in_table(
    registry: Registry, fs: str, mode: str
) -> None:
    """Page i is page i of its file: the nodes have room to read every file back whole."""
    result = explore(fs, mode, pages=MAX_PAGES, preemptions=0, registry=registry)
    assert result.status is Status.OK, render_text(result)
