"""The report's counts must account for every page the engine was given, once.

Before, the engine's counts by table were read by no proof: an engine that
counted a run of moved pages once instead of page by page reported 20 pages
of the 108 it migrated, and the run said ``ok``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

import pytest

from fsaops import migrate
from fsaops.migrate import MigrateStats
from fsaops.proofs import account_problems
from inproc import migrate_json
from mutants import Mutant, compiled, mutants
from test_mutants_of_helpers import SCENARIO as MACHINE

# The mutation test's machine, with pages swapped out as well.
SCENARIO = MACHINE + "seed = 3\ndirty = 0.3\nmapped = 0.3\npinned = 0.1\nswapout = 0.1\n"


def _counted_once(stats: MigrateStats, name: str, via: str, count: int) -> None:
    """A broken count: a run of moved pages counted as one page."""
    _REAL_COUNT_MOVED(stats, name, via, 1)


def _counted_twice(stats: MigrateStats, name: str, via: str, count: int) -> None:
    """A broken count: every moved page counted twice."""
    _REAL_COUNT_MOVED(stats, name, via, 2 * count)


_REAL_COUNT_MOVED = migrate._count_moved

BROKEN: dict[str, Callable[..., Any]] = {"once a run": _counted_once, "twice": _counted_twice}


@pytest.mark.parametrize("semantics", ["v4", "2.6.16"])
@pytest.mark.parametrize("broken", BROKEN.values(), ids=BROKEN.keys())
def test_moved_pages_counted_wrong_break_the_invariant(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, semantics: str, broken: Callable[..., Any]
) -> None:
    text = SCENARIO.format(semantics=semantics)
    status, report = migrate_json(tmp_path / "ok.toml", text)
    assert (status, report["status"]) == (0, "ok")
    given = sum(t["pages"] for t in report["by_aops"].values())
    monkeypatch.setattr(migrate, "_count_moved", broken)
    status, report = migrate_json(tmp_path / "broken.toml", text)
    counted = sum(t["pages"] for t in report["by_aops"].values())
    assert counted != given
    assert (status, report["status"]) == (1, "invariant broken")
    problems = report["proofs"]["placement"]["problems"]
    assert problems[0].startswith(f"the report accounts for {counted} pages (moved ")
    assert problems[0].endswith(
        f"but migrate_pages was given {given}: each page it is given ends moved, failed or "
        "not migrated, once"
    )


def _counted_as_ext2(stats: MigrateStats, name: str, via: str, count: int) -> None:
    """A broken count: ext2 nobh pages counted as ext2's (every total still right)."""
    _REAL_COUNT_MOVED(stats, "ext2_aops" if name == "ext2_nobh_aops" else name, via, count)


@pytest.mark.parametrize("semantics", ["v4", "2.6.16"])
def test_moved_pages_counted_under_another_table_break_the_invariant(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, semantics: str
) -> None:
    text = SCENARIO.format(semantics=semantics)
    status, report = migrate_json(tmp_path / "ok.toml", text)
    assert (status, report["status"]) == (0, "ok")
    tables = report["by_aops"]
    nobh = tables["ext2_nobh_aops"]
    monkeypatch.setattr(migrate, "_count_moved", _counted_as_ext2)
    status, report = migrate_json(tmp_path / "broken.toml", text)
    wrong = report["by_aops"]
    assert sum(t["pages"] for t in wrong.values()) == sum(t["pages"] for t in tables.values())
    counted = wrong["ext2_nobh_aops"]["pages"] if "ext2_nobh_aops" in wrong else 0
    assert counted < nobh["pages"]
    assert (status, report["status"]) == (1, "invariant broken")
    assert report["proofs"]["placement"]["problems"][0] == (
        f"the report counts {counted} pages of ext2_nobh_aops, but {nobh['pages']} of its "
        "pages were given to migrate_pages: each page is counted under its own table"
    )


# Each mutant of the engine's count of moved pages for vmstat (but the one
# that leaves the count unset, and so raises).
MISCOUNTS: Final = [
    m
    for m in mutants(migrate.migrate_pages)
    if ("nr_moved" in m.name or "success" in m.name) and m.name != "delete `nr_moved = 0`"
]


@pytest.mark.parametrize("mutant", MISCOUNTS, ids=[m.name for m in MISCOUNTS])
def test_vmstat_that_miscounts_moved_pages_breaks_the_invariant(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mutant: Mutant
) -> None:
    text = SCENARIO.format(semantics="2.6.16")
    real = migrate.migrate_pages
    monkeypatch.setattr(real, "__code__", compiled(mutant, real).__code__)
    status, report = migrate_json(tmp_path / "broken.toml", text)
    moved = sum(t["moved"] for t in report["by_aops"].values())
    counted = report["vmstat"]["pgmigrate_success"]
    assert counted != moved
    assert (status, report["status"]) == (1, "invariant broken")
    assert report["proofs"]["placement"]["problems"][0] == (
        f"vmstat's pgmigrate_success counts {counted} pages migrated, but the report counts "
        f"{moved} moved"
    )


def test_a_table_count_that_is_not_its_ledger_is_named() -> None:
    stats = MigrateStats()
    stats.fail(7, "ext2_aops", "refused", "EIO", 0)
    stats.pend(8, "ext2_aops", "busy")
    stats.table("ext2_aops").moved = 3
    assert account_problems(stats, 5) == []
    stats.table("ext2_aops").failed += 1
    stats.pending[9] = ("swap_aops", "busy", "EAGAIN", 0)
    assert account_problems(stats, 6) == [
        (1, "the report counts 2 pages of ext2_aops as failed, but the engine's ledger names 1"),
        (
            1,
            "the report counts 0 pages of swap_aops as not migrated, but the engine's ledger "
            "names 1",
        ),
    ]
    assert account_problems(stats, 5)[-1][0] == 1  # and 6 counted against 5 given
