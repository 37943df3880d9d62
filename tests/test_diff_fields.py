"""``fsaops diff`` compares every field of the run, by what it means.

Each finding with its pages, each proof's problems, simulated time and
every other field a report holds; a table renamed; a scenario spelled
another way (a relative path, a default written out, a wall-clock limit)
is the same scenario.  Pairing thousands of tables takes no time, and a
huge name is cut in every row.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from fsaops import diff
from fsaops.diff import Comparison, compare, load_report, render_html
from inproc import fsaops as _fsaops

SCENARIOS = Path(__file__).resolve().parent.parent / "docs" / "scenarios"


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A report of ext3 data=ordered, as ``fsaops diff`` reads it."""
    path = tmp_path_factory.mktemp("report") / "ordered.json"
    status, out, err = _fsaops("migrate", str(SCENARIOS / "ext3-ordered.toml"), "--json")
    assert status == 0, err
    path.write_text(out, encoding="utf-8")
    return load_report(str(path))


def _rows(comparison: Comparison) -> dict[str, tuple[Any, Any, bool]]:
    return {
        f"{section.kind}: {row.name}": (row.a, row.b, row.differs)
        for section in comparison.sections
        for row in section.rows
    }


def _page(pfn: int, reason: str = "r") -> dict[str, Any]:
    return {
        "pfn": pfn,
        "node": 0,
        "table": "ext3_ordered_aops",
        "errno": "EIO",
        "reason": reason,
        "pass": 0,
        "file": "mount0/file0",
        "inode": 12,
        "index": pfn,
    }


def _rich(report: dict[str, Any]) -> dict[str, Any]:
    """The report with something in every list, so that every field has a value to change."""
    rich = copy.deepcopy(report)
    rich["findings"] = [
        {"kind": "flags", "table": "ext3_ordered_aops", "count": 1, "pages": [3], "example": "e"}
    ]
    rich["invariants"] = ["pfn 3: a"]
    rich["pages_failed"] = [_page(3)]
    rich["pages_left"] = [_page(4)]
    rich["left_out"] = [{"key": "mount[1]", "what": "xfs: 1 file", "needs": "xfs"}]
    rich["not_mounted"] = ["xfs"]
    rich["integrity"]["problems"] = ["pfn 5: lost"]
    rich["faults"]["injected"] = {"alloc_fail": 1}
    for proof in ("placement", "durability"):
        rich["proofs"][proof]["problems"] = [f"pfn 6: {proof}"]
    rich["trace"] = [{"step": "migratepage", "pfn": 3}]
    return rich


def _changed(value: Any) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return value + 0.5
    if isinstance(value, str):
        return value + "x"
    if value is None:
        return 1
    if isinstance(value, dict):
        return {**value, "x": 1}
    assert isinstance(value, list)
    return [*value, "x"]


def _paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """The path of every value in a report (a key or an index at each step)."""
    if isinstance(value, dict) and value:
        return [p for key, item in value.items() for p in _paths(item, (*path, key))]
    if isinstance(value, list) and any(isinstance(v, dict | list) for v in value):
        return [p for i, item in enumerate(value) for p in _paths(item, (*path, i))]
    return [path]


def _pattern(path: tuple[Any, ...]) -> str:
    text = ""
    for part in path:
        text += "[]" if isinstance(part, int) else f".{part}" if text else str(part)
    return text


def test_every_field_of_a_report_is_compared_or_named_as_not_compared(
    report: dict[str, Any],
) -> None:
    """A field a report gains later cannot escape the comparison unnoticed."""
    not_compared: dict[str, str] = dict(getattr(diff, "NOT_COMPARED", {}))
    rich = _rich(report)
    assert not compare(rich, rich).differs
    seen = set()
    for path in _paths(rich):
        pattern = _pattern(path)
        seen.add(pattern)
        if pattern == "schema":
            continue  # load_report refuses another
        other = copy.deepcopy(rich)
        holder = other
        for part in path[:-1]:
            holder = holder[part]
        holder[path[-1]] = _changed(holder[path[-1]])
        differs = compare(rich, other).differs
        excluded = [
            f for f in not_compared if pattern == f or pattern.startswith((f"{f}.", f"{f}["))
        ]
        assert differs is not bool(excluded), pattern
        seen.update(excluded)
    # Every field named as not compared is one a report has.
    assert set(not_compared) <= seen


def test_a_field_a_report_gains_later_is_compared(report: dict[str, Any]) -> None:
    other = copy.deepcopy(report)
    other["ticks"]["writeback"] = 7
    other["newfield"] = {"count": 3}
    rows = _rows(compare(report, other))
    assert rows["run: ticks.writeback"] == (None, 7, True)
    assert rows["run: newfield.count"] == (None, 3, True)


def test_simulated_time_is_compared(report: dict[str, Any]) -> None:
    slow = copy.deepcopy(report)
    slow["ticks"]["migration"] += 1000
    comparison = compare(report, slow)
    assert comparison.differs
    row = _rows(comparison)["run: ticks.migration"]
    assert row[1] - row[0] == 1000 and row[2]


def test_a_finding_on_other_pages_is_a_difference(report: dict[str, Any]) -> None:
    def finding(pfn: int) -> dict[str, Any]:
        return {
            "kind": "flags",
            "table": "ext3_ordered_aops",
            "count": 1,
            "pages": [pfn],
            "example": f"pfn {pfn} moved to pfn 272, which gained error the old page never had",
        }

    a, b = copy.deepcopy(report), copy.deepcopy(report)
    a["findings"], b["findings"] = [finding(3)], [finding(7)]
    comparison = compare(a, b)
    assert comparison.differs
    rows = _rows(comparison)
    assert rows["verdict: finding flags (ext3_ordered_aops)"] == (1, 1, False)
    assert rows["verdict: finding flags (ext3_ordered_aops): its pages"] == ("3", "7", True)
    assert rows["verdict: finding flags (ext3_ordered_aops): what it says"][2]
    assert not compare(a, copy.deepcopy(a)).differs


@pytest.mark.parametrize("proof", ["placement", "durability"])
def test_a_proof_that_fails_other_pages_is_a_difference(report: dict[str, Any], proof: str) -> None:
    a, b = copy.deepcopy(report), copy.deepcopy(report)
    said = "the disk does not hold the data written last"
    a["proofs"][proof].update(failures=1, problems=[f"mount0/file0 page 3: {said}"])
    b["proofs"][proof].update(failures=1, problems=[f"mount0/file0 page 7: {said}"])
    comparison = compare(a, b)
    assert comparison.differs
    rows = _rows(comparison)
    assert rows[f"verdict: {proof} failures"] == (1, 1, False)
    assert rows[f"verdict: {proof} problems the other run does not have"] == (1, 1, True)
    first = rows[f"verdict: {proof} problems the other run does not have: the first"]
    assert first == (f"mount0/file0 page 3: {said}", f"mount0/file0 page 7: {said}", True)


def test_a_table_renamed_is_a_difference(report: dict[str, Any]) -> None:
    renamed = copy.deepcopy(report)
    renamed["by_aops"]["other_aops"] = renamed["by_aops"].pop("ext3_ordered_aops")
    comparison = compare(report, renamed)
    assert comparison.differs
    section = comparison.section("table", "ext3_ordered_aops ↔ other_aops")
    assert section.rows[0].name == "table"
    assert (section.rows[0].a, section.rows[0].b, section.rows[0].differs) == (
        "ext3_ordered_aops",
        "other_aops",
        True,
    )


def test_a_scenario_named_by_another_path_or_with_a_time_limit_is_the_same(
    report: dict[str, Any], tmp_path: Path
) -> None:
    other = copy.deepcopy(report)
    assert report["source"] == str(SCENARIOS / "ext3-ordered.toml")
    other["source"] = "docs/scenarios/ext3-ordered.toml"
    other["config"]["kernel"]["timeout"] = 600.0
    comparison = compare(report, other)
    assert not comparison.differs
    rows = _rows(comparison)
    # Shown, so that nobody wonders, but not a difference.
    assert rows["scenario: source"] == (report["source"], other["source"], False)
    assert rows["scenario: kernel.timeout"] == (0.0, 600.0, False)
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(report), encoding="utf-8")
    b.write_text(json.dumps(other), encoding="utf-8")
    status, out, _ = _fsaops("diff", str(a), str(b))
    assert status == 0
    assert "the runs are the same" in out
    assert "≠" not in out
    assert "Not compared:" in out and "kernel.timeout: a wall-clock limit" in " ".join(out.split())


def _left_out_and_written(report: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The report's ext3 mount with mode and block size left out, and with the defaults written."""
    left_out = copy.deepcopy(report)
    left_out["config"]["mount"][0]["mode"] = None
    left_out["config"]["mount"][0]["block_size"] = None
    written = copy.deepcopy(report)
    written["config"]["mount"][0]["mode"] = "ordered"
    written["config"]["mount"][0]["block_size"] = 1024
    return left_out, written


def test_a_default_written_out_is_the_same_scenario(report: dict[str, Any]) -> None:
    """ext3: mode ordered and 1,024-byte blocks by default."""
    left_out, written = _left_out_and_written(report)
    assert not compare(left_out, written).differs
    assert not compare(written, left_out).differs
    # Another value than the default is a difference.
    for key, value in (("block_size", 4096), ("mode", "journal")):
        other = copy.deepcopy(written)
        other["config"]["mount"][0][key] = value
        rows = _rows(compare(left_out, other))
        assert rows[f"scenario: mount[0].{key}"][2], key
    # An older report, which does not say what each mount got, of another
    # version of the plugin: its default is not known here.
    elsewhere = copy.deepcopy(left_out)
    del elsewhere["mounts"]
    for plugin in elsewhere["plugins"]:
        plugin["version"] = "9.9"
    rows = _rows(compare(elsewhere, written))
    assert rows["scenario: mount[0].block_size"] == (None, 1024, True)


def test_what_a_mount_got_is_read_from_the_report_not_the_installed_plugin(
    report: dict[str, Any],
) -> None:
    """A report says the mode and block size each mount got, whichever plugin is installed now.

    Another version of the plugin ran it (or the plugin is gone): the
    defaults it filled in are the report's, and one that differs from a
    value written out is a difference.
    """
    assert report["mounts"] == [
        {
            "name": "mount0",
            "filesystem": "ext3",
            "mode": "ordered",
            "block_size": 1024,
            "table": "ext3_ordered_aops",
        }
    ]
    left_out, written = _left_out_and_written(report)
    for plugin in (*left_out["plugins"], *written["plugins"]):
        plugin["version"] = "9.9"
    assert not compare(left_out, written).differs
    # That version's default mode was another: the runs differ in it.
    other_default = copy.deepcopy(left_out)
    other_default["mounts"][0]["mode"] = "writeback"
    rows = _rows(compare(other_default, written))
    assert rows["scenario: mount[0].mode"] == ("writeback", "ordered", True)
    # Both left it out, and got different modes: a difference too.
    rows = _rows(compare(left_out, other_default))
    assert rows["scenario: mount[0].mode"] == ("ordered", "writeback", True)
    # Said once, as the scenario's key: not again as what the mount got.
    assert not any("mounts" in name for name in _rows(compare(left_out, other_default)))


def test_a_mounts_entry_of_the_wrong_type_is_bad_input(
    report: dict[str, Any], tmp_path: Path
) -> None:
    bad = copy.deepcopy(report)
    bad["mounts"][0]["block_size"] = "1024"
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bad), encoding="utf-8")
    good = tmp_path / "good.json"
    good.write_text(json.dumps(report), encoding="utf-8")
    status, _, err = _fsaops("diff", str(good), str(path))
    assert status == 2
    assert err.strip().endswith("not a report: mounts[0] block_size is not a JSON integer"), err


def test_a_mount_only_one_run_has_shows_the_defaults_it_used(report: dict[str, Any]) -> None:
    """Before, a mount only one run had was shown with its files, filesystem and pages, but not
    the mode or block size it left to the filesystem's default (both sides empty, no row)."""
    more = copy.deepcopy(report)
    more["config"]["mount"].append(
        {"fs": "ext3", "mode": None, "block_size": None, "files": 1, "pages": 4}
    )
    rows = _rows(compare(report, more))
    assert rows["scenario: mount[1].fs"] == (None, "ext3", True)
    assert rows["scenario: mount[1].mode"] == (None, "ordered", True)
    assert rows["scenario: mount[1].block_size"] == (None, 1024, True)
    rows = _rows(compare(more, report))
    assert rows["scenario: mount[1].mode"] == ("ordered", None, True)
    assert rows["scenario: mount[1].block_size"] == (1024, None, True)


def test_thousands_of_tables_are_paired_by_filesystem(report: dict[str, Any]) -> None:
    """Each table only one run has meets the other run's only table of its filesystem.

    (How long 8,000 take is measured, not asserted: the pairing groups the
    tables by filesystem once.)
    """
    entry = report["by_aops"]["ext3_ordered_aops"]
    wide = copy.deepcopy(report)
    wide["by_aops"] = {f"t{i}_aops": {**entry, "filesystem": f"fs{i}"} for i in range(8000)}
    narrow = copy.deepcopy(report)
    narrow["by_aops"] = {f"u{i}_aops": {**entry, "filesystem": f"fs{i}"} for i in range(8000)}
    alone = compare(wide, report)
    paired = compare(wide, narrow)
    render_html(paired)
    assert sum(s.kind == "table" and s.only == "a" for s in alone.sections) == 8000
    tables = [s.tables for s in paired.sections if s.kind == "table"]
    assert len(tables) == 8000 and ("t7_aops", "u7_aops") in tables


def test_a_huge_name_is_cut_in_every_row(report: dict[str, Any], tmp_path: Path) -> None:
    name = "y" * 100_000
    a, b = copy.deepcopy(report), copy.deepcopy(report)
    b["by_aops"][name] = b["by_aops"].pop("ext3_ordered_aops")
    b["findings"] = [{"kind": "return", "table": name, "count": 1, "pages": [3], "example": "e"}]
    b["pages_failed"] = [{**_page(3), "table": name}]
    for counts in (b["by_aops"][name], b["totals"]):  # one more page, failed with EIO
        counts["pages"] += 1
        counts["failed"] += 1
    b["by_aops"][name]["errors"]["EIO"] = 1
    b["by_aops"][name]["reasons"]["r"] = 1
    comparison = compare(a, b)
    for section in comparison.sections:
        for row in section.rows:
            assert len(row.name) < 400, row.name[:100]
    pa, pb = tmp_path / "a.json", tmp_path / "b.json"
    pa.write_text(json.dumps(a), encoding="utf-8")
    pb.write_text(json.dumps(b), encoding="utf-8")
    page = tmp_path / "page.html"
    status, out, err = _fsaops("diff", str(pa), str(pb), "--html", str(page))
    assert status == 0, err
    assert len(out) < 100_000
    assert "y" * 81 not in "".join(out.split())
    assert "y" * 81 not in page.read_text(encoding="utf-8")


def test_a_page_that_differs_is_named_as_the_report_names_it(report: dict[str, Any]) -> None:
    """A file page is ``mount0/file0:3`` and anonymous memory ``pid 6 at 0x100000``, as the
    text report writes them (and as ``--trace`` takes them), not its address in decimal."""
    a, b = copy.deepcopy(report), copy.deepcopy(report)
    a["pages_failed"] = [_page(3)]
    b["pages_failed"] = [_page(7)]
    anon = {**_page(9), "file": None, "inode": None, "index": None, "table": "swap_aops"}
    a["pages_left"] = [{**anon, "pid": 6, "address": 0x100000}]
    b["pages_left"] = [{**anon, "pid": 6, "address": 0x101000}]
    rows = _rows(compare(a, b))
    failed = rows["verdict: failed pages the other run does not have: the first"]
    assert str(failed[0]).startswith("mount0/file0:3: EIO in ext3_ordered_aops")
    assert str(failed[1]).startswith("mount0/file0:7: EIO in ext3_ordered_aops")
    left = rows["verdict: pages left behind the other run does not have: the first"]
    assert str(left[0]).startswith("pid 6 at 0x100000: EIO in swap_aops")
    assert str(left[1]).startswith("pid 6 at 0x101000: EIO in swap_aops")


def _recount(report: dict[str, Any]) -> dict[str, Any]:
    """``report`` with its status, tables and totals counted from its pages, as a run would."""
    for entry in report["by_aops"].values():
        entry.update(failed=0, not_migrated=0, errors={}, reasons={})
    for key, field in (("pages_failed", "failed"), ("pages_left", "not_migrated")):
        for page in report[key]:
            entry = report["by_aops"][page["table"]]
            entry[field] += 1
            entry["errors"][page["errno"]] = entry["errors"].get(page["errno"], 0) + 1
            entry["reasons"][page["reason"]] = entry["reasons"].get(page["reason"], 0) + 1
    for entry in report["by_aops"].values():
        entry["pages"] = entry["moved"] + entry["failed"] + entry["not_migrated"]
    for key in ("pages", "moved", "failed", "not_migrated"):
        report["totals"][key] = sum(entry[key] for entry in report["by_aops"].values())
    report["status"] = "invariant broken" if report["invariants"] else "ok"
    return report


def _loaded(report: dict[str, Any], path: Path) -> dict[str, Any] | None:
    """``report`` as ``fsaops diff`` reads it from a file, or ``None`` where it refuses it."""
    path.write_text(json.dumps(report), encoding="utf-8")
    try:
        return load_report(str(path))
    except diff.BadReport:
        return None


def _not_compared(pattern: str) -> bool:
    return any(pattern == f or pattern.startswith((f"{f}.", f"{f}[")) for f in diff.NOT_COMPARED)


def test_a_field_any_object_of_a_report_gains_is_compared(
    report: dict[str, Any], tmp_path: Path
) -> None:
    """Not only at the top: a table, a page, a finding, a plugin, a proof gaining one too.

    Refused, where the object holds names (``by_aops``: a table ``gained``
    that is no table), or a difference.
    """
    rich = _recount(_rich(report))
    assert _loaded(rich, tmp_path / "rich.json") is not None
    objects: list[tuple[Any, ...]] = [()]
    for path in _paths(rich):
        objects += [path[:i] for i in range(1, len(path))]
    checked = 0
    for path in dict.fromkeys(objects):
        holder: Any = rich
        for part in path:
            holder = holder[part]
        if not isinstance(holder, dict) or _not_compared(_pattern(path)):
            continue
        other = copy.deepcopy(rich)
        target: Any = other
        for part in path:
            target = target[part]
        target["gained"] = 1
        read = _loaded(other, tmp_path / "other.json")
        assert read is None or compare(rich, read).differs, _pattern(path) or "the top"
        checked += 1
    assert checked > 20


def test_a_value_of_another_json_type_is_no_longer_the_same(
    report: dict[str, Any], tmp_path: Path
) -> None:
    """``1``, ``1.0``, ``true`` and ``"1"`` are four values: refused as a count, or a difference."""
    rich = _recount(_rich(report))
    rich["plugins"][0]["imported_by"] = ["ext3"]
    checked = 0
    for path in _paths(rich):
        holder: Any = rich
        for part in path[:-1]:
            holder = holder[part]
        value = holder[path[-1]]
        if type(value) is not int or _not_compared(_pattern(path)):
            continue
        for changed in (float(value), str(value), *([bool(value)] if value in (0, 1) else [])):
            other = copy.deepcopy(rich)
            target: Any = other
            for part in path[:-1]:
                target = target[part]
            target[path[-1]] = changed
            read = _loaded(other, tmp_path / "other.json")
            assert read is None or compare(rich, read).differs, (_pattern(path), changed)
            checked += 1
    assert checked > 50


def test_a_plugin_only_imported_is_not_one_the_run_loaded(report: dict[str, Any]) -> None:
    imported = copy.deepcopy(report)
    imported["plugins"][0]["imported_by"] = ["ext3"]
    name = report["plugins"][0]["name"]
    rows = _rows(compare(report, imported))
    assert rows[f"scenario: plugin {name} imported_by"] == (None, ["ext3"], True)


def test_a_page_addressed_by_a_text_is_not_the_page_at_that_address(report: dict[str, Any]) -> None:
    def left(address: object) -> dict[str, Any]:
        page = {k: v for k, v in _page(4).items() if k not in ("file", "inode", "index")}
        return {**page, "pid": 1, "address": address}

    a, b = copy.deepcopy(report), copy.deepcopy(report)
    a["pages_left"], b["pages_left"] = [left(0x11000)], [left("0x11000")]
    assert compare(a, b).differs


@pytest.mark.parametrize(
    ("edit", "said"),
    [
        (lambda r: r.update(status="totally fine"), 'status "totally fine" is none a run'),
        (lambda r: r.update(status="ok"), "status 'ok', but it has broken invariants"),
        (lambda r: r["integrity"].update(lost=9), "its read-back or durability proof lost"),
        (lambda r: r.update(status="data lost"), "status 'data lost', but it has broken"),
        (lambda r: r["totals"].update(moved=r["totals"]["moved"] + 1), "totals moved is"),
        (lambda r: r["pages_left"].append(r["pages_left"][0]), "pages_left lists 2 pages"),
        (lambda r: r["pages_failed"].clear(), "pages_failed lists 0 pages"),
        (lambda r: r["plugins"].append(dict(r["plugins"][0])), "is listed twice"),
        (lambda r: r["plugins"][0].pop("name"), "plugins[0] has no name"),
        (lambda r: r["integrity"].update(lost=None), "integrity lost is null, not a count"),
        (lambda r: r["totals"].update(failed=None), "totals failed is null, not a count"),
        (lambda r: r["invariants"].append(3), "invariants[1] is not a JSON string"),
        (
            lambda r: r["by_aops"]["ext3_ordered_aops"]["errors"].update(EIO=5),
            "errors add up to 5, but it has 2 pages failed and left",
        ),
    ],
)
def test_a_report_that_says_two_things_at_once_is_bad_input(
    report: dict[str, Any], tmp_path: Path, edit: Any, said: str
) -> None:
    """What no run writes: a status its own counts deny, totals its tables do not add up to."""
    rich = _recount(_rich(report))
    assert _loaded(rich, tmp_path / "rich.json") is not None
    edit(rich)
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(rich), encoding="utf-8")
    with pytest.raises(diff.BadReport, match="not a report: ") as caught:
        load_report(str(path))
    assert said in str(caught.value)
