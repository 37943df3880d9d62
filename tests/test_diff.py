"""``fsaops diff A.json B.json``: two runs side by side.

It is a report: exit 0 whether the runs differ or not, every table of
both runs listed, the scenarios' differences first; anything that is not
a report of this schema is bad input (exit 2, one line naming the file).
Its ``--html`` page is rendered in headless Chromium.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from browser import chromium, parse, references, render
from fsaops import diff
from fsaops.diff import Row, compare, load_report
from fsaops.status import SCHEMA
from inproc import ext3_reports
from inproc import fsaops as _fsaops


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Reports of ext3 data=ordered and data=journal: same files, workload and seed."""
    return ext3_reports(tmp_path_factory.mktemp("reports"))


def _words(text: str) -> str:
    return " ".join(text.split())


def test_two_runs_that_differ_exit_0_and_list_every_table_of_both(
    reports: tuple[Path, Path],
) -> None:
    a, b = reports
    status, out, err = _fsaops("diff", str(a), str(b))
    assert (status, err) == (0, "")
    text = _words(out)
    assert "the runs differ" in text
    tables = set(load_report(str(a))["by_aops"]) | set(load_report(str(b))["by_aops"])
    assert {"ext3_ordered_aops", "ext3_journalled_aops", "swap_aops"} <= tables
    for table in tables:
        assert table in text, table
    # The scenarios' differences come first, then the tables, the totals, vmstat.
    order = [
        text.index("The scenarios differ in"),
        text.index("≠ mount[0].mode ordered journal"),
        text.index("Table ext3_ordered_aops ↔ ext3_journalled_aops"),
        text.index("Table swap_aops"),
        text.index("Total"),
        text.index("vmstat"),
        text.index("Verdict"),
    ]
    assert order == sorted(order)
    # data=journal has no migratepage: the pages the journal holds until its
    # commit, five seconds away, cannot be released, and are left.
    journal = load_report(str(b))["by_aops"]["ext3_journalled_aops"]
    left = journal["reasons"]["swap_page: buffers could not be released"]
    assert left > 0
    assert "≠ reason swap_page: buffers could" in text
    ext3 = compare(load_report(str(a)), load_report(str(b))).section(
        "table", "ext3_ordered_aops ↔ ext3_journalled_aops"
    )
    reason = {row.name: row for row in ext3.rows}["reason swap_page: buffers could not be released"]
    assert (reason.a, reason.b, reason.differs) == (None, left, True)
    assert "≠ migratepage fsaops.buffer.buffer_migrate_page none: generic fallback" in text


def test_a_retry_curve_is_shown_with_thousands_separators_as_the_report_shows_counts(
    reports: tuple[Path, Path], tmp_path: Path
) -> None:
    a, _ = reports
    data = _report(reports)
    table = next(iter(data["by_aops"].values()))
    table["retry_by_pass"] = [81951, 1205, 7]
    data["totals"]["retry_by_pass"] = [81951, 1205, 7]
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps(data), encoding="utf-8")
    status, out, err = _fsaops("diff", str(a), str(edited))
    assert (status, err) == (0, "")
    assert "81,951 1,205 7" in _words(out)
    assert "81951" not in out


def test_a_run_against_itself_is_the_same(reports: tuple[Path, Path]) -> None:
    a, _ = reports
    status, out, _ = _fsaops("diff", str(a), str(a))
    assert status == 0
    assert "the runs are the same" in out
    assert "The scenarios are the same" in out
    assert "≠" not in out


def test_the_vmstat_section_says_its_counters_cover_the_read_back_too(
    reports: tuple[Path, Path], tmp_path: Path
) -> None:
    """As the JSON report's vmstat: differences over the migration and the read-back."""
    a, b = reports
    page = tmp_path / "diff.html"
    status, out, _ = _fsaops("diff", str(a), str(b), "--html", str(page))
    assert status == 0
    for text in (_words(out), page.read_text(encoding="utf-8")):
        assert "vmstat (migration and read-back)" in text
        assert "during migration" not in text


def test_compare_pairs_the_one_table_of_a_filesystem_each_run_has(
    reports: tuple[Path, Path],
) -> None:
    a, b = (load_report(str(p)) for p in reports)
    comparison = compare(a, b, names=("ordered", "journal"))
    ext3 = comparison.section("table", "ext3_ordered_aops ↔ ext3_journalled_aops")
    assert ext3.tables == ("ext3_ordered_aops", "ext3_journalled_aops")
    assert ext3.only is None
    rows = {row.name: row for row in ext3.rows}
    assert rows["moved"].a == a["by_aops"]["ext3_ordered_aops"]["moved"]
    assert rows["moved"].b == b["by_aops"]["ext3_journalled_aops"]["moved"]
    assert rows["via migratepage"].differs and rows["via migratepage"].b is None
    scenario = comparison.section("scenario")
    assert [row.name for row in scenario.rows] == ["source", "mount[0].mode"]
    # Without a partner the table stands alone, the other side empty.
    del b["by_aops"]["ext3_journalled_aops"]
    alone = compare(a, b).section("table", "ext3_ordered_aops")
    assert alone.only == "a"
    assert all(row.b is None for row in alone.rows)


@pytest.mark.parametrize(
    ("a", "b", "differs", "delta"),
    [
        (3, 3, False, 0),
        (3, 5, True, 2),
        (None, 0, False, 0),
        (None, 4, True, 4),
        ("x", "y", True, None),
    ],
)
def test_a_row_says_whether_it_differs(a: Any, b: Any, differs: bool, delta: int | None) -> None:
    row = Row("moved", a, b)
    assert row.differs is differs
    assert row.delta == delta


# -- bad input -------------------------------------------------------------------------------


def _report(reports: tuple[Path, Path]) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(reports[0].read_text(encoding="utf-8"))
    return data


BAD = {
    "not JSON": ("hello", "not JSON"),
    "a list": ("[1, 2]", "not a report: an array, not a JSON object"),
    "null": ("null", "not a report: null, not a JSON object"),
    "a NaN": ('{"schema": NaN}', "not JSON (NaN is not a JSON value)"),
    "an envelope": (
        json.dumps({"schema": SCHEMA, "status": "bad input", "error": "no such file"}),
        "the JSON of a command that could not finish (status bad input: no such file)",
    ),
    "no schema": (json.dumps({"totals": {}}), "it has no schema"),
    "another schema": ("schema:2", "a report of schema 2; this fsaops reads schema 1"),
    "a schema as text": ('schema:"1"', 'a report of schema "1"'),
    "no totals": ("drop:totals", "'totals' is missing"),
    "a table without counts": ("table", "by_aops['ext3_ordered_aops'] has no page counts"),
    "integrity as a list": ("set:integrity:[]", "'integrity' is not a JSON object"),
    "findings as true": ("set:findings:true", "'findings' is not a JSON list"),
    "invariants as a number": ("set:invariants:3", "'invariants' is not a JSON list"),
    "plugins as a number": ("set:plugins:3", "'plugins' is not a JSON list"),
    "a proof as a number": ('set:proofs:{"placement": 3}', "'proofs' is malformed"),
    "not UTF-8": ("\udcff", "not UTF-8"),
    # json.loads keeps the last: the run would read as its seed, whatever the file's first says.
    "a key given twice": ("dup:seed", "not a report: key 'seed' is given twice in one object"),
    "a key given twice in a table": (
        "dup:by_aops",
        "not a report: key 'moved' is given twice in one object",
    ),
    # json.loads takes it; its difference with another would not print.
    "a number no report holds": (
        "set:totals:" + json.dumps({"moved": "BIG"}).replace('"BIG"', "9" * 4300),
        "not a report: a number of 4,300 digits is no count or seed",
    ),
}


def _bad_file(kind: str, folder: Path, reports: tuple[Path, Path]) -> Path:
    content, _ = BAD[kind]
    path = folder / "bad.json"
    data = _report(reports)
    if content.startswith("schema:"):
        data["schema"] = json.loads(content.removeprefix("schema:"))
        content = json.dumps(data)
    elif content.startswith("set:"):
        _, key, value = content.split(":", 2)
        data[key] = json.loads(value)
        content = json.dumps(data)
    elif content.startswith("drop:"):
        del data[content.removeprefix("drop:")]
        content = json.dumps(data)
    elif content.startswith("dup:"):
        key = content.removeprefix("dup:")
        if key == "by_aops":  # a key twice in an object within the report
            name, counts = next(iter(data["by_aops"].items()))
            inner = json.dumps(counts)
            twice = inner.replace("{", '{"moved": 0, ', 1)
            data["by_aops"][name] = "TWICE"
            content = json.dumps(data).replace('"TWICE"', twice)
        else:
            content = json.dumps(data).replace("{", f'{{"{key}": 99, ', 1)
    elif content == "table":
        data["by_aops"]["ext3_ordered_aops"] = {"moved": "many"}
        content = json.dumps(data)
    path.write_bytes(content.encode("utf-8", "surrogateescape"))
    return path


@pytest.mark.parametrize("kind", sorted(BAD))
@pytest.mark.parametrize("side", ["a", "b"])
def test_what_is_not_a_report_is_bad_input(
    kind: str, side: str, reports: tuple[Path, Path], tmp_path: Path
) -> None:
    bad = _bad_file(kind, tmp_path, reports)
    good = reports[0]
    args = [str(bad), str(good)] if side == "a" else [str(good), str(bad)]
    status, out, err = _fsaops("diff", *args)
    assert status == 2
    assert out == ""
    assert len(err.splitlines()) == 1
    assert err.startswith(f"fsaops: error: {bad}: ")
    assert BAD[kind][1] in err


def test_runs_that_fail_other_pages_or_find_other_things_are_not_the_same(
    reports: tuple[Path, Path], tmp_path: Path
) -> None:
    """The same counts, other pages: 20 failed pages each, none in common, is a difference."""
    base = _report(reports)

    def failed(first: int) -> list[dict[str, Any]]:
        return [
            {
                "pfn": i,
                "node": 0,
                "table": "x_aops",
                "errno": "EIO",
                "reason": "r",
                "pass": 0,
                "file": "mount[0] file 0",
                "inode": 1,
                "index": i,
                "pid": None,
                "address": None,
            }
            for i in range(first, 40, 2)
        ]

    def finding(count: int) -> list[dict[str, Any]]:
        return [{"kind": "flags", "table": "x_aops", "count": count, "pages": [0], "example": "e"}]

    def counted(field: str, key: str) -> dict[str, Any]:
        """The totals and tables of 20 pages of ``x_aops`` failed or left, as a run counts them."""
        totals = {**base["totals"], "pages": base["totals"]["pages"] + 20}
        totals[field] += 20
        table: dict[str, Any] = {"filesystem": "x", "mode": "default", "migratepage": "x_mp"}
        table |= {"pages": 20, "moved": 0, "failed": 0, "not_migrated": 0, "via": {}}
        table |= {field: 20, "errors": {"EIO": 20}, "reasons": {"r": 20}}
        tables = {**base["by_aops"], "x_aops": table}
        return {key: base[key] + failed(0), "totals": totals, "by_aops": tables}

    def elsewhere(field: str, key: str) -> dict[str, Any]:
        return {**counted(field, key), key: base[key] + failed(1)}

    variants: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
        "failed pages": (counted("failed", "pages_failed"), elsewhere("failed", "pages_failed")),
        "pages left": (
            counted("not_migrated", "pages_left"),
            elsewhere("not_migrated", "pages_left"),
        ),
        "findings": ({"findings": finding(40)}, {"findings": finding(2)}),
        "invariants": (
            {"invariants": ["pfn 3: a"], "status": "invariant broken"},
            {"invariants": ["pfn 4: b"], "status": "invariant broken"},
        ),
    }
    for name, (one, other) in variants.items():
        a, b = tmp_path / f"{name}-a.json", tmp_path / f"{name}-b.json"
        a.write_text(json.dumps({**base, **one}), encoding="utf-8")
        b.write_text(json.dumps({**base, **other}), encoding="utf-8")
        status, out, err = _fsaops("diff", str(a), str(b))
        assert status == 0, err
        assert "the runs differ" in out, name
        same, _, _ = _fsaops("diff", str(a), str(a))
        assert same == 0
        assert "the runs are the same" in _fsaops("diff", str(a), str(a))[1], name


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda p: p / "missing.json", "no such file"),
        (lambda p: p, "not a regular file"),
    ],
)
def test_a_missing_file_or_a_directory_is_bad_input(
    make: Any, words: str, reports: tuple[Path, Path], tmp_path: Path
) -> None:
    status, _, err = _fsaops("diff", str(make(tmp_path)), str(reports[0]))
    assert status == 2 and words in err and len(err.splitlines()) == 1


def test_html_to_a_directory_is_bad_input_before_anything_is_read(
    reports: tuple[Path, Path], tmp_path: Path
) -> None:
    status, out, err = _fsaops("diff", "nowhere.json", str(reports[0]), "--html", str(tmp_path))
    assert status == 2 and "is a directory" in err and out == ""


@pytest.mark.parametrize("which", ["a", "b"])
def test_html_over_a_report_it_reads_is_bad_input_and_the_report_is_kept(
    reports: tuple[Path, Path], tmp_path: Path, which: str
) -> None:
    a, b = (tmp_path / "a.json", tmp_path / "b.json")
    a.write_bytes(reports[0].read_bytes())
    b.write_bytes(reports[1].read_bytes())
    target = a if which == "a" else b
    link = tmp_path / "same.html"
    link.symlink_to(target)  # another name for the same file
    for page in (target, link):
        status, out, err = _fsaops("diff", str(a), str(b), "--html", str(page))
        assert status == 2 and out == ""
        assert f"is report {which.upper()} this command reads" in err
    assert target.read_bytes() == reports[0 if which == "a" else 1].read_bytes()


# -- the page ----------------------------------------------------------------------------------


def test_the_page_shows_every_table_and_marks_what_differs(
    reports: tuple[Path, Path], tmp_path: Path
) -> None:
    browser = chromium()
    page = tmp_path / "diff.html"
    a, b = reports
    status, _, err = _fsaops("diff", str(a), str(b), "--html", str(page))
    assert status == 0, err
    rendered = render(browser, page)
    assert rendered.loaded == () and rendered.blocked == ()
    assert references(parse(page.read_text(encoding="utf-8"))) == []
    dom = parse(rendered.dom)
    comparison = compare(load_report(str(a)), load_report(str(b)))
    sections = list(dom.iter("section"))
    assert [s.attributes["data-kind"] for s in sections] == [s.kind for s in comparison.sections]
    for shown, section in zip(sections, comparison.sections, strict=True):
        if section.kind == "scenario":
            assert shown.find("h2").text() == "The scenarios differ in"
        else:
            assert shown.attributes["data-title"] == section.title
        rows = [tr for tr in shown.iter("tr") if "data-row" in tr.attributes]
        assert [tr.attributes["data-row"] for tr in rows] == [r.name for r in section.rows]
        for tr, row in zip(rows, section.rows, strict=True):
            assert ("differs" in (tr.attributes.get("class") or "")) == row.differs, row
            cells = [td.text() for td in tr.iter("td")]
            assert cells[1:3] == [diff.shown(v) for v in (row.a, row.b)]
    assert dom.find("p", id="status").text().startswith("The runs differ")


def test_the_headline_says_each_runs_status_and_a_failed_run_is_never_good_news(
    reports: tuple[Path, Path], tmp_path: Path
) -> None:
    """Two runs that broke alike are "the same", but not in green: each status is said."""
    base = _report(reports)
    broken = {**base, "invariants": ["pfn 3: a"], "status": "invariant broken"}
    ok, bad = tmp_path / "ok.json", tmp_path / "bad.json"
    ok.write_text(json.dumps(base), encoding="utf-8")
    bad.write_text(json.dumps(broken), encoding="utf-8")
    cases = {
        (bad, bad): ("the runs are the same; both: invariant broken", "bad"),
        (ok, bad): ("the runs differ; A: ok, B: invariant broken", "bad"),
        (ok, ok): ("the runs are the same; both: ok", "ok"),
    }
    for (a, b), (said, banner) in cases.items():
        page = tmp_path / f"{a.stem}-{b.stem}.html"
        status, out, err = _fsaops("diff", str(a), str(b), "--html", str(page))
        assert (status, err) == (0, "")
        assert said in out.splitlines()
        dom = parse(page.read_text(encoding="utf-8"))
        shown = dom.find("p", id="status")
        assert shown.text().startswith(said[0].upper() + said[1:] + ".")
        assert banner in (shown.attributes.get("class") or "").split()


def test_a_table_name_of_any_length_is_cut_in_titles(
    reports: tuple[Path, Path], tmp_path: Path
) -> None:
    """A report from elsewhere may name a table at any length; a title shows 80 characters."""
    data = _report(reports)
    name = "x" * 100_000
    first = next(iter(data["by_aops"]))
    data["by_aops"] = {name if k == first else k: v for k, v in data["by_aops"].items()}
    long = tmp_path / "long.json"
    long.write_text(json.dumps(data), encoding="utf-8")
    page = tmp_path / "page.html"
    status, out, err = _fsaops("diff", str(reports[0]), str(long), "--html", str(page))
    assert status == 0, err
    flat = re.sub(r"\s+", "", out)  # a title wider than the terminal is wrapped
    assert "ext3_ordered_aops↔" + "x" * 80 + "...(100,000characters)" in flat
    assert "x" * 81 not in flat
    html = page.read_text(encoding="utf-8")
    assert "x" * 80 + "... (100,000 characters)" in html
    assert "x" * 81 not in html.replace("x" * 80 + "...", "")


def test_a_file_name_is_shown_not_obeyed(reports: tuple[Path, Path], tmp_path: Path) -> None:
    """A newline or an escape sequence in a report's name cannot forge or colour a line."""
    odd = tmp_path / "a\x1b[2J\nthe runs are the same.json"
    odd.write_bytes(reports[1].read_bytes())
    page = tmp_path / "page.html"
    status, out, err = _fsaops("diff", str(reports[0]), str(odd), "--html", str(page))
    assert status == 0, err
    assert "\x1b" not in out and "\\x1b[2J\\nthe runs are the same.json" in out.replace("\n", "")
    verdicts = [line for line in out.splitlines() if line.startswith("the runs")]
    assert verdicts == ["the runs differ; both: ok"]
    html = page.read_text(encoding="utf-8")
    assert "\x1b" not in html and "\\x1b[2J\\nthe runs are the same.json" in html


@pytest.mark.parametrize(
    ("where", "value", "said"),
    [
        (("workload", "seed"), 2**64, "workload.seed: expected an integer from 0 to "),
        (("workload", "seed"), "x", "workload.seed: expected an integer, got the string 'x'"),
        (("workload", "seed"), -1, "workload.seed: expected an integer from 0 to "),
        (("mount", 0, "pages"), -5, "mount[0].pages: expected an integer of at least 0, got -5"),
        (("kernel", "bogus"), 1, "kernel.bogus: unknown key"),
    ],
)
def test_a_report_whose_config_is_no_scenario_is_bad_input(
    reports: tuple[Path, Path],
    tmp_path: Path,
    where: tuple[str | int, ...],
    value: object,
    said: str,
) -> None:
    """Before, the config's values were compared as they were: seed 2**64, -5 pages, a key no
    scenario has."""
    data = _report(reports)
    at: Any = data["config"]
    for key in where[:-1]:
        at = at[key]
    at[where[-1]] = value
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data), encoding="utf-8")
    status, out, err = _fsaops("diff", str(reports[0]), str(bad))
    assert (status, out) == (2, "")
    assert err.startswith(
        f"fsaops: error: {bad}: not a report: its config is no scenario's: {said}"
    )


def test_a_number_past_every_float_is_bad_input(reports: tuple[Path, Path], tmp_path: Path) -> None:
    """``1e999999`` is JSON that Python reads as infinity: it was shown as ``inf``."""
    data = _report(reports)
    data["vmstat"]["pgfault"] = 7.5
    bad = tmp_path / "inf.json"
    bad.write_text(json.dumps(data).replace("7.5", "1e999999"), encoding="utf-8")
    status, _out, err = _fsaops("diff", str(reports[0]), str(bad))
    assert status == 2
    assert f"{bad}: not a report: the number 1e999999 is past every number a report holds" in err
