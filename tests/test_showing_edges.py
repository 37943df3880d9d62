"""Edges of how a run is shown: ``fsaops diff`` of odd reports, and the page of odd runs."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import attrs
import pytest

from fsaops.config import default_config
from fsaops.diff import compare
from fsaops.html_report import INVARIANTS_LISTED, render_report
from fsaops.plugins import Registry
from fsaops.report import Report, member_name
from fsaops.scenario import run_scenario
from inproc import ext3_reports
from inproc import fsaops as _fsaops


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Reports of ext3 data=ordered and data=journal."""
    return ext3_reports(tmp_path_factory.mktemp("reports"))


def _edited(reports: tuple[Path, Path], tmp_path: Path, edit: Any) -> Path:
    data = json.loads(reports[0].read_text(encoding="utf-8"))
    edit(data)
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def _table(data: dict[str, Any]) -> dict[str, Any]:
    entry: dict[str, Any] = data["by_aops"]["ext3_ordered_aops"]
    return entry


WRONG_TYPES = {
    "a filesystem as a list": (
        lambda d: _table(d).update(filesystem=[]),
        "by_aops['ext3_ordered_aops'] filesystem is not a JSON string",
    ),
    "a mode as an object": (
        lambda d: _table(d).update(mode={}),
        "by_aops['ext3_ordered_aops'] mode is not a JSON string",
    ),
    "a migratepage as a number": (
        lambda d: _table(d).update(migratepage=3),
        "by_aops['ext3_ordered_aops'] migratepage is not a JSON string",
    ),
    "reasons as a list": (
        lambda d: _table(d).update(reasons=["busy"]),
        "by_aops['ext3_ordered_aops'] reasons is not a JSON object",
    ),
    "a count by path as text": (
        lambda d: _table(d).update(via={"migratepage": "many"}),
        "by_aops['ext3_ordered_aops'] via['migratepage'] is not a JSON integer",
    ),
    "a mount's mode as a list": (
        lambda d: d["config"]["mount"][0].update(mode=["default"]),
        "config mount[0] mode is not a JSON string",
    ),
    "a mount's fs as an object": (
        lambda d: d["config"]["mount"][0].update(fs={}),
        "config mount[0] fs is not a JSON string",
    ),
    "a mount as a number": (
        lambda d: d["config"]["mount"].__setitem__(0, 3),
        "config mount[0] is not a JSON object",
    ),
    "a plugin's name as a list": (
        lambda d: d["plugins"][0].update(name=["ext3"]),
        "plugins[0] name is not a JSON string",
    ),
}


@pytest.mark.parametrize("kind", sorted(WRONG_TYPES))
@pytest.mark.parametrize("side", ["a", "b"])
def test_a_field_of_the_wrong_json_type_is_bad_input_naming_it(
    kind: str, side: str, reports: tuple[Path, Path], tmp_path: Path
) -> None:
    edit, said = WRONG_TYPES[kind]
    bad = _edited(reports, tmp_path, edit)
    good = str(reports[1])
    status, out, err = _fsaops("diff", *([str(bad), good] if side == "a" else [good, str(bad)]))
    assert (status, out) == (2, "")
    assert err == f"fsaops: error: {bad}: not a report: {said}\n"


BELOW_ZERO = {
    "a total moved": (lambda d: d["totals"].update(moved=-5), "totals moved is -5"),
    "a total of calls": (lambda d: d["totals"].update(calls=-1), "totals calls is -1"),
    "a total's retry curve": (
        lambda d: d["totals"]["retry_by_pass"].__setitem__(1, -2),
        "totals retry_by_pass[1] is -2",
    ),
    "a table's moved": (
        lambda d: _table(d).update(moved=-5),
        "by_aops['ext3_ordered_aops'] moved is -5",
    ),
    "a table's failed": (
        lambda d: _table(d).update(failed=-1),
        "by_aops['ext3_ordered_aops'] failed is -1",
    ),
    "a table's pages": (
        lambda d: _table(d).update(pages=-400),
        "by_aops['ext3_ordered_aops'] pages is -400",
    ),
    "an errno's count": (
        lambda d: _table(d).update(errors={"EAGAIN": -2}),
        "by_aops['ext3_ordered_aops'] errors['EAGAIN'] is -2",
    ),
    "a count by path": (
        lambda d: _table(d).update(via={"migratepage": -3}),
        "by_aops['ext3_ordered_aops'] via['migratepage'] is -3",
    ),
    "a reason's count": (
        lambda d: _table(d).update(reasons={"busy": -1}),
        "by_aops['ext3_ordered_aops'] reasons['busy'] is -1",
    ),
    "a vmstat counter": (lambda d: d["vmstat"].update(pgfault=-7), "vmstat pgfault is -7"),
    "a left page's index": (
        lambda d: d["pages_left"][0].update(index=-1),
        "pages_left[0] index is -1",
    ),
    "a failed page's frame": (
        lambda d: d.update(pages_failed=[{**d["pages_left"][0], "pfn": -9}]),
        "pages_failed[0] pfn is -9",
    ),
    "a finding's count": (
        lambda d: d.update(findings=[{"kind": "k", "table": "t", "count": -1, "pages": []}]),
        "findings[0] count is -1",
    ),
}


@pytest.mark.parametrize("kind", sorted(BELOW_ZERO))
@pytest.mark.parametrize("side", ["a", "b"])
def test_a_count_below_zero_is_bad_input_naming_it(
    kind: str, side: str, reports: tuple[Path, Path], tmp_path: Path
) -> None:
    """No run counts below zero: a hand-edited count is refused, not compared."""
    edit, said = BELOW_ZERO[kind]
    bad = _edited(reports, tmp_path, edit)
    good = str(reports[1])
    status, out, err = _fsaops("diff", *([str(bad), good] if side == "a" else [good, str(bad)]))
    assert (status, out) == (2, "")
    assert err == f"fsaops: error: {bad}: not a report: {said}, a count below zero\n"


NOT_COUNTS = {
    "a total that is a string": (
        lambda d: d["totals"].update(moved="many"),
        'totals moved is "many"',
    ),
    "an integrity count that is a fraction": (
        lambda d: d["integrity"].update(lost=0.5),
        "integrity lost is 0.5",
    ),
    "a total that is true": (lambda d: d["totals"].update(failed=True), "totals failed is true"),
    "a vmstat counter that is a list": (
        lambda d: d["vmstat"].update(pgfault=[1]),
        "vmstat pgfault is [1]",
    ),
}


@pytest.mark.parametrize("kind", sorted(NOT_COUNTS))
def test_a_count_that_is_no_integer_is_bad_input_naming_it(
    kind: str, reports: tuple[Path, Path], tmp_path: Path
) -> None:
    """Before, ``totals.moved = "many"`` was compared, and the diff exited 0."""
    edit, said = NOT_COUNTS[kind]
    bad = _edited(reports, tmp_path, edit)
    status, out, err = _fsaops("diff", str(bad), str(reports[1]))
    assert (status, out) == (2, "")
    assert err == f"fsaops: error: {bad}: not a report: {said}, not a count\n"


def test_counts_of_zero_are_compared(reports: tuple[Path, Path], tmp_path: Path) -> None:
    """Zero is a count: the edge of the check refuses nothing a run could write."""

    def zeroed(data: dict[str, Any]) -> None:
        # The table's pages that stayed are taken out, as a run that moved them all counts.
        table = _table(data)
        stayed = table["failed"] + table["not_migrated"]
        table.update(failed=0, not_migrated=0, errors={"EAGAIN": 0}, reasons={})
        table["pages"] -= stayed
        totals = data["totals"]
        totals["pages"] -= stayed
        for key, count in (("pages_failed", "failed"), ("pages_left", "not_migrated")):
            mine = [p for p in data[key] if p["table"] == "ext3_ordered_aops"]
            data[key] = [p for p in data[key] if p not in mine]
            totals[count] -= len(mine)
        data["vmstat"].update(pgfault=0)

    edited = _edited(reports, tmp_path, zeroed)
    status, out, err = _fsaops("diff", str(edited), str(reports[1]))
    assert (status, err) == (0, "")
    assert "failed" in out


def _with_reasons(reports: tuple[Path, Path], reasons: dict[str, int]) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(reports[0].read_text(encoding="utf-8"))
    _table(data)["reasons"] = reasons
    return data


def test_long_reasons_alike_in_their_first_300_characters_keep_a_row_and_a_count_each(
    reports: tuple[Path, Path],
) -> None:
    head = "journal busy: " + "x" * 300
    a = _with_reasons(reports, {f"{head} see block {i:04}": 1 for i in range(12)})
    b = _with_reasons(reports, {f"{head} see block {i:04}": 1 for i in range(8)})
    table = compare(a, b).section("table", "ext3_ordered_aops")
    rows = [row for row in table.rows if row.name.startswith("reason ")]
    assert len(rows) == 12
    assert len({row.name for row in rows}) == 12
    assert sum(row.a or 0 for row in rows) == 12
    assert sum(row.b or 0 for row in rows) == 8
    assert [row.differs for row in rows] == [False] * 8 + [True] * 4
    assert rows[0].name.endswith("(336 characters) #1")
    assert all(len(row.name) < 360 for row in rows)


def test_a_short_reason_keeps_its_row_name(reports: tuple[Path, Path]) -> None:
    a = _with_reasons(reports, {"page busy": 2})
    table = compare(a, a).section("table", "ext3_ordered_aops")
    assert [row.name for row in table.rows if row.name.startswith("reason ")] == [
        "reason page busy"
    ]


def test_findings_of_long_tables_alike_in_their_first_80_characters_stay_apart(
    reports: tuple[Path, Path],
) -> None:
    data: dict[str, Any] = json.loads(reports[0].read_text(encoding="utf-8"))
    long = "t" * 100
    finding = {"kind": "no copy", "count": 1, "pages": [5], "example": "x"}
    a = {**data, "findings": [{**finding, "table": long + "a"}, {**finding, "table": long + "b"}]}
    b = {**data, "findings": [{**finding, "table": long + "a"}]}
    rows = [r for r in compare(a, b).section("verdict").rows if r.name.startswith("finding ")]
    counted = [r for r in rows if not r.name.endswith(("its pages", "what it says"))]
    assert [(r.a, r.b) for r in counted] == [(1, 1), (1, 0)]
    assert len({r.name for r in counted}) == 2


def test_a_plugins_own_helper_is_named_with_its_module() -> None:
    assert member_name("fsaops.buffer.buffer_migrate_page") == "buffer_migrate_page"
    assert member_name("myfs.buffer_migrate_page") == "myfs.buffer_migrate_page"
    assert member_name("myfs.sub.buffer_migrate_page") == "sub.buffer_migrate_page"
    assert member_name("myfs.myfs_migratepage") == "myfs_migratepage"


@pytest.fixture(scope="module")
def built_in(registry: Registry) -> Report:
    """The built-in scenario's run, with the built-in plugins."""
    return run_scenario(default_config(), registry)


def test_the_page_lists_a_bounded_number_of_broken_invariants(built_in: Report) -> None:
    many = attrs.evolve(built_in, invariants=tuple(f"invariant {i} broken" for i in range(5000)))
    page = render_report(many)
    assert page.count("broken</li>") == INVARIANTS_LISTED
    assert f"… and {5000 - INVARIANTS_LISTED:,} more (the JSON report lists every one)" in page


def test_the_page_cuts_a_long_table_name_and_keeps_it_whole_in_a_title(built_in: Report) -> None:
    table = built_in.by_aops[0]
    long = "n" * 10_000
    renamed = attrs.evolve(built_in, by_aops=(attrs.evolve(table, name=long),))
    page = render_report(renamed)
    assert f'<span title="{long}"><bdi>{"n" * 80}</bdi>… (10,000 characters)</span>' in page
    shown = re.sub(r"<title>[^<]*</title>", "", re.sub(f'(title|data-table)="{long}"', "", page))
    assert "n" * 81 not in shown  # whole only where a pointer shows it


def test_a_table_named_total_is_not_the_totals_row(built_in: Report) -> None:
    table = next(t for t in built_in.by_aops if any(t.retry_by_pass))
    renamed = attrs.evolve(built_in, by_aops=(attrs.evolve(table, name="total"),))
    page = render_report(renamed)
    assert page.count('<tr class="total" data-table="">') == 2  # the overview, the retries
    assert page.count('<tr data-table="total">') == 2
    assert "<b>total</b> <span class=muted>(every table)</span>" in page


def test_the_mount_table_and_saved_scenario_say_the_mode_and_block_size_the_run_used(
    tmp_path: Path,
) -> None:
    scenario = tmp_path / "ext3.toml"
    scenario.write_text(
        '[plugins]\nload = ["ext3"]\n[[mount]]\nfs = "ext3"\nfiles = 2\npages = 8\n',
        encoding="utf-8",
    )
    html = tmp_path / "e.html"
    status, _, err = _fsaops("migrate", str(scenario), "--no-progress", "--html", str(html))
    assert status == 0, err
    page = html.read_text(encoding="utf-8")
    assert "<td><bdi>ordered</bdi></td>" in page
    assert ">default<" not in page
    assert "mode = &quot;ordered&quot;" in page
    assert "block_size = " in page
