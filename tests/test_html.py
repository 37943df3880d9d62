"""``fsaops migrate --html``, looked at as a person would: rendered in headless Chromium.

The page of the built-in scenario and of a scenario of 100,000 pages are
rendered; what the browser shows is read back and held against the JSON
report of the same run: every table with its numbers, the bars, the retry
curve, the verdict, and four frame maps of one cell per frame whose counts
(made by the page's own script from what it drew) add up to the report.
Nothing may be loaded from outside the page: not by its markup, not by its
script, not even a load its policy blocks.
"""

from __future__ import annotations

import html
import json
import re
import shlex
import tomllib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import guarded
from browser import Element, Rendered, chromium, parse, references, render
from fsaops.config import parse_config, unstructure_config

BIG_SCENARIO = """\
[kernel]
node_memory = "512MiB"

[[mount]]
fs = "ext2"
mode = "nobh"
files = 8
pages = 60000

[[mount]]
fs = "ext3"
mode = "ordered"
files = 4
pages = 20000

[swap]
slots = 30000

[processes]
count = 4
anon_pages = 20000

[workload]
dirty = 0.3
writeback = 0.02
locked = 0.005
pinned = 0.005
mapped = 0.1
mlocked = 0.005
swapout = 0.005
"""
"""100,000 pages on a node of 131,072 frames."""


class Run:
    """One run: its JSON report, its HTML page, and the page as the browser left it."""

    def __init__(self, report: dict[str, Any], page: Path, rendered: Rendered) -> None:
        self.report = report
        self.page = page
        self.rendered = rendered
        self.dom = parse(rendered.dom)
        self.source = parse(page.read_text(encoding="utf-8"))


def _run(folder: Path, *args: str) -> tuple[dict[str, Any], Path]:
    page = folder / "report.html"
    proc = guarded.fsaops("migrate", *args, "--json", "--html", page, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout), page


@pytest.fixture(scope="module")
def browser() -> str:
    return chromium()


@pytest.fixture(scope="module")
def builtin(browser: str, tmp_path_factory: pytest.TempPathFactory) -> Run:
    report, page = _run(tmp_path_factory.mktemp("builtin"))
    return Run(report, page, render(browser, page))


@pytest.fixture(scope="module")
def big(browser: str, tmp_path_factory: pytest.TempPathFactory) -> Run:
    folder = tmp_path_factory.mktemp("big")
    scenario = folder / "big.toml"
    scenario.write_text(BIG_SCENARIO, encoding="utf-8")
    report, page = _run(folder, str(scenario))
    assert report["totals"]["pages"] == 100_000
    return Run(report, page, render(browser, page))


@pytest.fixture(params=["builtin", "big"])
def run(request: pytest.FixtureRequest) -> Run:
    result: Run = request.getfixturevalue(request.param)
    return result


# -- nothing from outside ---------------------------------------------------------------------


def test_the_page_loads_nothing_from_outside(run: Run) -> None:
    assert run.rendered.loaded == ()
    assert run.rendered.blocked == ()
    assert references(run.source) == []
    assert references(run.dom) == []
    policy = run.source.find("meta", http_equiv="Content-Security-Policy").attributes["content"]
    assert policy is not None and "default-src 'none'" in policy


def test_the_probe_sees_a_page_that_loads_something(browser: str, tmp_path: Path) -> None:
    """The checks above can fail: a page with an image from elsewhere is caught by each."""
    page = tmp_path / "leaky.html"
    page.write_text(
        '<!DOCTYPE html><html><head><meta http-equiv="Content-Security-Policy" '
        'content="default-src \'none\'"></head><body><img src="http://127.0.0.1:9/x.png">'
        "</body></html>",
        encoding="utf-8",
    )
    rendered = render(browser, page)
    assert rendered.blocked == ("http://127.0.0.1:9/x.png",)
    assert references(parse(page.read_text())) == ["<img src='http://127.0.0.1:9/x.png'>"]


def test_the_script_ran_and_drew_every_map(run: Run) -> None:
    body = run.dom.find("body")
    assert body.attributes.get("data-frame-maps") == "drawn"
    canvases = list(run.dom.iter("canvas"))
    assert len(canvases) == 4
    assert all(c.attributes.get("data-drawn") == "tables" for c in canvases)


def _shown(element: Element) -> Iterator[Element]:
    """``element`` and every element under it that is not ``hidden``, nor inside one that is."""
    if "hidden" in element.attributes:
        return
    yield element
    for child in element.children:
        if isinstance(child, Element):
            yield from _shown(child)


CONTROLS = ("input", "button", "select", "label", "canvas", "details")
"""What the frame maps have that only the page's script makes work (or fills)."""


def test_without_script_the_maps_show_no_control_and_say_what_they_are(run: Run) -> None:
    """A browser that runs no script shows the page as written: no control that does nothing.

    The radio buttons, the canvases, the empty tables under them and the
    line that says what a cell is showed, and did nothing; the captions
    and the note that the script draws the maps are what such a page says.
    """
    written = run.source.find("section", id="frames")
    shown = list(_shown(written))
    assert [e.tag for e in shown if e.tag in CONTROLS] == []
    assert "hover" not in {e.attributes.get("id") for e in shown}
    assert "legend-tables" not in {e.attributes.get("id") for e in shown}
    captions = [e.text() for e in shown if e.tag == "figcaption"]
    assert len(captions) == 4
    assert all(c.startswith("node ") and " frames, pfn " in c for c in captions)
    assert "does not run" in written.find("noscript").text()
    # Where the script runs, it shows them all.
    drawn = run.dom.find("section", id="frames")
    shown = list(_shown(drawn))
    tags = Counter(e.tag for e in shown)
    assert (tags["input"], tags["canvas"], tags["details"]) == (2, 4, 4)
    assert {"hover", "colour-by", "legend-tables"} <= {e.attributes.get("id") for e in shown}


# -- the tables ---------------------------------------------------------------------------------


def _cells(row: Element) -> dict[str, int]:
    return {
        td.attributes["data-field"] or "": td.number()
        for td in row.iter("td")
        if "data-field" in td.attributes
    }


def test_every_table_is_shown_with_the_numbers_of_the_json(run: Run) -> None:
    overview = run.dom.find("table", id="overview")
    rows = {
        row.attributes["data-table"]: row
        for row in overview.iter("tr")
        if "data-table" in row.attributes
    }
    tables = run.report["by_aops"]
    assert set(rows) == {*tables, ""}
    fields = ("pages", "moved", "failed", "not_migrated")
    for name, entry in tables.items():
        assert _cells(rows[name]) == {f: entry[f] for f in fields}, name
    assert _cells(rows[""]) == {f: run.report["totals"][f] for f in fields}


def _bars(card: Element, kind: str) -> dict[str, int]:
    found = {}
    for row in card.iter("tr", data_kind=kind):
        key = row.attributes["data-key"]
        assert key is not None
        found[key] = row.find("td", class_="num").number()
    return found


def test_each_table_has_its_bars_moved_by_path_failed_by_errno_left_by_reason(run: Run) -> None:
    report = run.report
    failed = Counter((p["table"], p["errno"]) for p in report["pages_failed"])
    left = Counter((p["table"], p["reason"]) for p in report["pages_left"])
    cards = {c.attributes["data-table"]: c for c in run.dom.iter("article", class_="card")}
    assert set(cards) == {name for name, entry in report["by_aops"].items() if entry["pages"]}
    for name, card in cards.items():
        entry = report["by_aops"][name]
        assert _bars(card, "via") == entry["via"]
        assert _bars(card, "errno") == {e: c for (t, e), c in failed.items() if t == name}
        assert _bars(card, "reason") == {r: c for (t, r), c in left.items() if t == name}
        assert sum(_bars(card, "errno").values()) == entry["failed"]
        assert sum(_bars(card, "reason").values()) == entry["not_migrated"]
        # A bar's length is its share of the table's pages.
        for row in card.iter("tr", data_kind="via"):
            width = row.find("span", class_="bar").attributes["style"] or ""
            share = float(width.split("width:")[1].split("%")[0])
            assert share == pytest.approx(
                100 * row.find("td", class_="num").number() / entry["pages"], abs=0.01
            )


def test_the_retry_curve_has_the_numbers_of_every_pass(run: Run) -> None:
    table = run.dom.find("table", id="retry-table")
    shown = {
        row.attributes["data-table"]: [td.number() for td in row.iter("td", class_="num")]
        for row in table.iter("tr")
        if "data-table" in row.attributes
    }
    report = run.report
    expected = {
        n: e["retry_by_pass"] for n, e in report["by_aops"].items() if any(e["retry_by_pass"])
    }
    assert shown == {**expected, "": report["totals"]["retry_by_pass"]}
    lines = list(run.dom.find("section", id="retries").iter("polyline"))
    assert len(lines) == len(shown)
    assert all(len((line.attributes["points"] or "").split()) == 11 for line in lines)


# -- the frame maps ----------------------------------------------------------------------------


def _frame_counts(run: Run, index: int) -> dict[str, Counter[str]]:
    table = run.dom.find("table", class_="counts", data_map=str(index))
    counts: dict[str, Counter[str]] = {}
    for row in table.iter("tr"):
        name = row.attributes.get("data-table")
        if name is None:
            continue
        counts[name] = Counter(
            {
                td.attributes["data-state"] or "": td.number()
                for td in row.iter("td")
                if "data-state" in td.attributes
            }
        )
    return counts


def _maps(run: Run) -> Iterator[tuple[int, Element, Element]]:
    for figure in run.dom.iter("figure", class_="framemap"):
        index = int(figure.attributes["data-map"] or -1)
        yield index, figure, figure.find("canvas")


def test_the_frame_maps_have_one_cell_per_frame(run: Run) -> None:
    kernel = run.report["config"]["kernel"]
    frames = kernel["node_memory"] // kernel["page_size"]
    seen = []
    for index, figure, canvas in _maps(run):
        seen.append((figure.attributes["data-role"], figure.attributes["data-when"]))
        assert int(figure.attributes["data-frames"] or 0) == frames
        assert int(canvas.attributes["data-cells"] or 0) == frames
        cell, cols, rows = (
            int(canvas.attributes[k] or 0) for k in ("data-cell", "data-cols", "data-rows")
        )
        assert cols * (rows - 1) < frames <= cols * rows
        assert int(canvas.attributes["width"] or 0) == cols * cell
        assert int(canvas.attributes["height"] or 0) == rows * cell
        counted = sum(sum(c.values()) for c in _frame_counts(run, index).values())
        assert counted == frames, index
    assert seen == [
        ("source", "before"),
        ("target", "before"),
        ("source", "after"),
        ("target", "after"),
    ]


def test_the_frame_maps_add_up_to_the_report(run: Run) -> None:
    """What the page's script decoded, frame by frame, is what the run reported."""
    report = run.report
    tables = report["by_aops"]
    source_before, target_before, source_after, target_after = (
        _frame_counts(run, i) for i in range(4)
    )
    in_use = {name: sum(c.values()) for name, c in source_before.items() if name}
    assert in_use == {n: e["pages"] for n, e in tables.items() if e["pages"]}
    states = Counter[str]()
    for name, counts in source_before.items():
        if name:
            states.update(counts)
    workload = report["workload"]
    for state in ("dirty", "writeback", "locked", "pinned", "mapped", "mlocked", "swapout"):
        assert states[state] == workload[state], state
    assert set(target_before) == {""}, "the target node is empty before migration"
    left = {n: c["left"] for n, c in source_after.items() if c["left"]}
    failed = {n: c["failed"] for n, c in source_after.items() if c["failed"]}
    assert left == {n: e["not_migrated"] for n, e in tables.items() if e["not_migrated"]}
    assert failed == {n: e["failed"] for n, e in tables.items() if e["failed"]}
    moved = {n: c["moved"] for n, c in target_after.items() if c["moved"]}
    frameless = ("swap", "dropped", "freed")
    expected = {
        n: e["moved"] - sum(e["via"].get(v, 0) for v in frameless) for n, e in tables.items()
    }
    assert moved == {n: m for n, m in expected.items() if m}


# -- the verdict and the scenario --------------------------------------------------------------


def test_the_verdict_names_its_proofs_and_every_failed_and_left_page(run: Run) -> None:
    report = run.report
    assert run.dom.find("p", id="status").attributes["data-status"] == report["status"]
    for name in ("placement", "durability"):
        row = run.dom.find("tr", data_proof=name)
        cells = [td.number() for td in row.iter("td", class_="num")]
        proof = report["proofs"][name]
        assert cells == [proof["checked"], proof["failures"]]
        assert ("holds" in row.text()) == (proof["failures"] == 0)
    for ident, pages in (
        ("pages-failed", report["pages_failed"]),
        ("pages-left", report["pages_left"]),
    ):
        if not pages:
            assert run.dom.find("p", id=ident).text() == "none"
            continue
        groups = list(run.dom.find("ul", id=ident).iter("li"))
        assert sum(int(g.attributes["data-pages"] or 0) for g in groups) == len(pages)
        text = run.dom.find("ul", id=ident).text()
        for page in pages[:200]:
            where = (
                f"{page['file']}:{page['index']}"
                if "file" in page
                else f"pid {page['pid']} at {page['address']:#x}"
            )
            assert f"pfn {page['pfn']} · {where}" in text


def test_the_page_holds_the_scenario_to_run_it_again(run: Run) -> None:
    report = run.report
    facts = run.dom.find("section", id="scenario").text()
    for plugin in report["plugins"]:
        assert f"{plugin['name']} ({plugin['distribution']} {plugin['version']})" in facts
    assert f"--seed {report['seed']}" in facts
    assert f"--semantics {report['config']['kernel']['semantics']}" in facts
    # The selection the run had, however it was made: the same plugins, the same machine.
    assert f"--plugins {','.join(p['name'] for p in report['plugins'])}" in facts
    toml = run.dom.find("pre", id="scenario-toml").text()
    # The text of a <pre> keeps its lines; the DOM's text() joins them.
    raw = next(e for e in run.source.iter("pre", id="scenario-toml")).children[0]
    assert isinstance(raw, str) and " ".join(raw.split()) == toml
    config = parse_config(raw, "the page's scenario")
    expected = json.loads(json.dumps(report["config"]))
    expected["workload"]["seed"] = report["seed"]
    expected["plugins"]["load"] = [p["name"] for p in report["plugins"]]
    again = unstructure_config(config)
    # Where the scenario left a mount's mode or block size to its filesystem,
    # the page fills in what the run used: the mode of the run's table of
    # that filesystem, and a block size.
    for mount, given in zip(again["mount"], expected["mount"], strict=True):
        if given["mode"] is None:
            modes = {
                t["mode"] for t in report["by_aops"].values() if t["filesystem"] == mount["fs"]
            }
            assert mount["mode"] in modes, (mount, modes)
        for field in ("mode", "block_size"):
            if given[field] is None:
                assert mount[field] is not None, (field, mount)
                given[field] = mount[field]
    assert again == expected
    assert tomllib.loads(raw)["workload"]["seed"] == report["seed"]


def test_the_saved_scenario_loads_the_plugins_the_run_loaded(tmp_path: Path) -> None:
    """A selection made with --plugins, not the file's [plugins] load, goes into the saved file."""
    scenario = tmp_path / "s.toml"
    scenario.write_text(
        '[plugins]\nload = ["ext2", "ext3", "swap", "xfs", "xfs_buftarg"]\n'
        '[[mount]]\nfs = "ext2"\npages = 16\n[processes]\ncount = 1\nanon_pages = 8\n',
        encoding="utf-8",
    )
    report, page = _run(tmp_path, str(scenario), "--plugins", "ext2,swap")
    source = page.read_text(encoding="utf-8")
    match = re.search(r'<pre id="scenario-toml">(.*?)</pre>', source, re.S)
    assert match is not None
    raw = html.unescape(match[1])
    assert tomllib.loads(raw)["plugins"]["load"] == ["ext2", "swap"]
    saved = tmp_path / "saved.toml"
    saved.write_text(raw, encoding="utf-8")
    (tmp_path / "again").mkdir()
    again, _ = _run(tmp_path / "again", str(saved))
    assert [p["name"] for p in again["plugins"]] == ["ext2", "swap"]
    assert again["totals"] == report["totals"]


def test_the_built_in_page_stays_small(builtin: Run, big: Run) -> None:
    """A few hundred KB for the built-in scenario; the frame maps do not grow it much at 100k."""
    assert builtin.page.stat().st_size < 300_000
    assert big.page.stat().st_size < 600_000


@pytest.mark.parametrize("ci", ["", "true"])
def test_a_missing_browser_is_a_skip_outside_ci_and_a_failure_under_it(
    ci: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setenv("CI", ci)
    outcome = pytest.fail.Exception if ci else pytest.skip.Exception
    with pytest.raises(outcome, match="Chromium is not installed"):
        chromium()


@pytest.mark.parametrize(
    ("where", "words"),
    [
        (lambda tmp: tmp, "is a directory"),
        (lambda tmp: tmp / "no" / "such" / "r.html", "no such directory"),
        (lambda tmp: Path("/dev/null"), "is not a regular file"),
        (lambda tmp: "", "expected a file name"),
    ],
)
def test_a_page_that_cannot_be_written_is_bad_input_before_the_run(
    where: Any, words: str, tmp_path: Path
) -> None:
    proc = guarded.fsaops("migrate", "--html", str(where(tmp_path)), "--json")
    line = guarded.one_error_line(proc, 2, "--html", words)
    assert "building" not in line
    assert guarded.one_json_object(proc, "bad input")["error"] in line
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["out.html/", "out.html/r.html"])
def test_a_page_inside_a_file_is_said_to_be_inside_a_file(tmp_path: Path, name: str) -> None:
    """It said ``no such directory: out.html``, of a file that is there."""
    (tmp_path / "out.html").write_text("kept", encoding="utf-8")
    proc = guarded.fsaops("migrate", "--html", f"{tmp_path}/{name}", "--json")
    guarded.one_error_line(proc, 2, "--html", "out.html is a file, not a directory")
    assert (tmp_path / "out.html").read_text(encoding="utf-8") == "kept"


def _command(page: Path) -> str:
    """The command line the page gives to run its scenario again, as a person copies it."""
    scenario = parse(page.read_text(encoding="utf-8")).find("section", id="scenario")
    return next(c for c in scenario.iter("code") if c.text().startswith("fsaops ")).text()


def test_the_command_to_run_it_again_keeps_a_name_with_a_space_one_word(tmp_path: Path) -> None:
    scenario = tmp_path / "my scenario.toml"
    scenario.write_text('[[mount]]\nfs = "ext2"\npages = 8\n[processes]\ncount = 0\n')
    report, page = _run(tmp_path, str(scenario), "--plugins", "ext2,swap")
    command = f"fsaops migrate {shlex.quote(str(scenario))} --seed {report['seed']}"
    said = _command(page)
    assert said.startswith(command)
    assert "--plugins ext2,swap" in said, "given on the command line"


def test_the_command_to_run_it_again_of_a_run_of_no_plugin_loads_none(tmp_path: Path) -> None:
    """Without ``--plugins ''`` the command loaded every plugin: another machine."""
    scenario = tmp_path / "empty.toml"
    scenario.write_text("[processes]\ncount = 0\n")
    report, page = _run(tmp_path, str(scenario), "--plugins", "")
    assert report["plugins"] == []
    command = f"fsaops migrate {scenario} --seed {report['seed']} --semantics v4 --plugins ''"
    assert _command(page) == command


def test_an_old_page_never_stands_for_a_command_that_failed_early(tmp_path: Path) -> None:
    """A scenario that does not parse, a file that is no report: the page says so."""
    page = tmp_path / "page.html"
    page.write_text('<p data-status="ok">an earlier run</p>')
    scenario = tmp_path / "broken.toml"
    scenario.write_text('[kernel]\nnodes = "two"\n')
    proc = guarded.fsaops("migrate", scenario, "--html", page, "--json")
    assert proc.returncode == 2
    text = page.read_text(encoding="utf-8")
    assert 'data-status="bad input"' in text and "kernel.nodes" in text
    good = tmp_path / "good.json"
    small = Path(__file__).parent / "configs" / "small.toml"
    good.write_text(guarded.fsaops("migrate", small, "--json").stdout)
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    assert guarded.fsaops("diff", good, good, "--html", page).returncode == 0
    assert 'data-status="bad input"' not in page.read_text(encoding="utf-8")
    proc = guarded.fsaops("diff", good, bad, "--html", page)
    assert proc.returncode == 2
    text = page.read_text(encoding="utf-8")
    assert "<h1>fsaops diff: " in text and 'data-status="bad input"' in text
    assert "not a report" in text


@pytest.mark.parametrize(
    "args",
    [
        ["migrate", "{scenario}", "--html", "{page}", "--seed", "-1"],
        ["migrate", "{scenario}", "--html={page}", "--trace", "zz", "--json"],
        ["migrate", "--html", "{page}", "--frobnicate"],
        ["diff", "{scenario}", "--html", "{page}"],
    ],
)
def test_an_old_page_never_stands_for_a_command_line_that_was_refused(
    tmp_path: Path, args: list[str]
) -> None:
    """Before, a command line argparse refused (a bad ``--seed``, a ``--trace`` of no page's
    form, an unknown option, a missing report) left an earlier run's page standing, exit 2."""
    page = tmp_path / "page.html"
    page.write_text('<p data-status="ok">an earlier run</p>')
    scenario = tmp_path / "s.toml"
    scenario.write_text("[processes]\ncount = 0\n")
    argv = [arg.format(page=page, scenario=scenario) for arg in args]
    proc = guarded.fsaops(*argv)
    assert proc.returncode == 2
    assert len(proc.stderr.splitlines()) == 1
    error = proc.stderr.removeprefix("fsaops: error: ").rstrip("\n")
    text = page.read_text(encoding="utf-8")
    assert 'data-status="bad input"' in text and "an earlier run" not in text
    assert f'<pre id="error">{html.escape(error)}</pre>' in text
    assert f"<h1>fsaops {args[0]}: " in text
    assert scenario.read_text() == "[processes]\ncount = 0\n"


def test_a_refused_command_line_never_writes_its_page_over_a_file_it_names(
    tmp_path: Path,
) -> None:
    scenario = tmp_path / "s.toml"
    scenario.write_text("[processes]\ncount = 0\n")
    for html_option in (["--html", str(scenario)], [f"--html={scenario}"]):
        proc = guarded.fsaops("migrate", scenario, *html_option, "--seed", "-1")
        assert proc.returncode == 2
        assert scenario.read_text() == "[processes]\ncount = 0\n"


def test_a_reason_for_every_page_is_folded_after_the_largest_groups() -> None:
    """One distinct message a page made one group a page: 25 MB for 100,000 pages."""
    from fsaops.html_report import GROUPS_LISTED, _page_groups
    from fsaops.report import PageOutcome

    pages = [
        PageOutcome(pfn=i, node=0, table="x_aops", errno="EIO", reason=f"block {i}", pass_=0)
        for i in range(GROUPS_LISTED + 70)
    ]
    pages += [
        PageOutcome(pfn=1000 + i, node=0, table="x_aops", errno="EIO", reason="common", pass_=0)
        for i in range(3)
    ]
    doc = parse(_page_groups("Failed", "failed", pages, "errno"))
    groups = list(doc.iter("li"))
    assert len(groups) == GROUPS_LISTED + 1
    assert groups[0].attributes["data-pages"] == "3", "the largest group first"
    folded = groups[-1]
    assert folded.attributes["data-groups"] == "71"
    assert folded.attributes["data-pages"] == "71"
    assert "and 71 more reasons, for 71 pages" in folded.text()
    assert sum(int(g.attributes["data-pages"] or 0) for g in groups) == len(pages)


def test_every_frame_state_has_a_colour_of_its_own() -> None:
    """A workload state added without a colour broke every page (a ``KeyError``)."""
    from fsaops.frames import STATES
    from fsaops.html_report import STATE_COLOURS

    assert set(STATE_COLOURS) == set(STATES)
    assert len(set(STATE_COLOURS.values())) == len(STATE_COLOURS)
