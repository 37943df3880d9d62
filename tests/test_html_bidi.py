"""The ``--html`` page isolates every name a plugin or the user gave it: right to left stays put.

A plugin's names (its filesystem, modes, tables and functions) can be in
any script: a filesystem's any identifier, the others any printable text,
Hebrew and Arabic too; the scenario's file name can be anything, a U+202E
RIGHT-TO-LEFT OVERRIDE too.  Shown bare, such a name reordered the text
that followed it on its line (an override drew the rest of its line
backwards; a right-to-left name took the numbers after it into its run).
Each is shown in a ``<bdi>`` now, and nothing else is in it.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from pathlib import Path

import pytest

from browser import Element, chromium, parse, render
from inproc import fsaops, installed

RLO = "\u202e"
"""RIGHT-TO-LEFT OVERRIDE: what follows it, to the end of its isolate, is laid out backwards."""

TABLE = "\u05d8\u05d1\u05dc\u05d4_aops"
"""A table named in Hebrew (printable, as a table's name must be)."""

FS = "\u05de\u05e2\u05e8\u05db\u05ea"
"""A filesystem named in Hebrew (an identifier, as a filesystem's name must be)."""

MODE = "\u0648\u0636\u0639 2"
"""A mode named in Arabic, with a number after it."""

FUNCTION = "\u064a\u062d\u0631\u0643_2"
"""A ``migratepage`` named in Arabic, with a number after it."""

PLUGIN = f'''
import attrs

import fsaops
from fsaops import buffer_migrate_page
from fsaops_ext2 import EXT2, ext2_aops


def moves(newpage, page):
    """ext2's own, under a name written partly right to left."""
    return buffer_migrate_page(newpage, page)


moves.__qualname__ = {FUNCTION!r}


@fsaops.hookimpl
def fsaops_filesystem_types():
    table = attrs.evolve(ext2_aops, name={TABLE!r}, migratepage=moves)
    return [
        attrs.evolve(
            EXT2, name={FS!r}, modes={{{MODE!r}: table}}, default_mode={MODE!r}, page_cache={{}}
        )
    ]
'''

SCENARIO = f"""\
[kernel]
node_memory = "4MiB"
[plugins]
load = ["rtlnames", "ext2", "swap"]
[[mount]]
fs = "{FS}"
files = 2
pages = 12
"""


def _right_to_left(text: str) -> bool:
    """Whether ``text`` holds a letter written right to left, or an override."""
    return any(unicodedata.bidirectional(c) in ("R", "AL", "RLO", "RLE", "RLI") for c in text)


COPYABLE = {"script", "title", "pre"}
"""Where a name is text to copy or no text at all: the data, the titles, the scenario file."""


def _texts(element: Element, inside: tuple[Element, ...] = ()) -> Iterator[tuple[str, Element]]:
    """Every piece of text a person reads, with the element it is directly in."""
    if element.tag in COPYABLE:
        return
    if element.tag == "code" and element.text().startswith("fsaops migrate"):
        return  # the command line that runs the scenario again: copied as it is
    for child in element.children:
        if isinstance(child, Element):
            yield from _texts(child, (*inside, element))
        elif child.strip():
            yield child, element


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The page of a run of ``rtlnames``, from a scenario file with U+202E in its name."""
    for configs in installed(tmp_path_factory, "rtlnames", PLUGIN):
        scenario = configs / f"scen{RLO}ario.toml"
        scenario.write_text(SCENARIO, encoding="utf-8")
        page = configs / "report.html"
        status, _out, err = fsaops("migrate", str(scenario), "--no-progress", "--html", str(page))
        assert status == 0, err[-3000:]
        yield page


def test_every_name_is_isolated_and_alone_in_its_isolate(page: Path) -> None:
    doc = parse(page.read_text(encoding="utf-8"))
    named = [(text, parent) for text, parent in _texts(doc.find("main")) if _right_to_left(text)]
    assert named, "the page shows none of the names"
    for text, parent in named:
        assert parent.tag == "bdi", f"{text!r} is shown in a <{parent.tag}>, not isolated"
        assert parent.children == [text], f"the <bdi> of {text!r} holds more than the name"
    isolated = {text for text, _ in named}
    source = str(page.parent / f"scen{RLO}ario.toml")
    assert {TABLE, FS, MODE, FUNCTION, f"rtlnames.{FUNCTION}", source} <= isolated


def test_the_text_around_a_name_is_as_it_was(page: Path) -> None:
    doc = parse(page.read_text(encoding="utf-8"))
    source = str(page.parent / f"scen{RLO}ario.toml")
    assert doc.find("h1").text() == f"fsaops migrate: {source}"
    row = doc.find("tr", data_table=TABLE)
    cells = [td.text() for td in row.iter("td")]
    assert cells[:3] == [TABLE, f"{FS} {MODE}", FUNCTION]
    card = doc.find("article", data_table=TABLE)
    assert card.find("h3").text() == TABLE
    assert card.find("p", class_="muted").text() == f"{FS} {MODE} · rtlnames.{FUNCTION}"
    mounts = doc.find("table", id="mounts")
    assert [td.text() for td in mounts.iter("td")][:3] == ["mount0", FS, MODE]


def test_the_names_the_script_shows_are_isolated_too(page: Path) -> None:
    """The tables the script writes under the maps name the table of each row."""
    dom = parse(render(chromium(), page).dom)
    rows = [tr for table in dom.iter("table", class_="counts") for tr in table.iter("tr")]
    named = [tr for tr in rows if tr.attributes.get("data-table") == TABLE]
    assert len(named) == 2, "the source node before migration, the target after"
    for row in named:
        first = next(row.iter("td"))
        (bdi,) = first.children
        assert isinstance(bdi, Element)
        assert (bdi.tag, bdi.children) == ("bdi", [TABLE])


def test_the_tab_title_isolates_the_file_name(page: Path) -> None:
    """A ``<title>`` holds no ``<bdi>``: the name goes between U+2068 and U+2069 there."""
    doc = parse(page.read_text(encoding="utf-8"))
    source = str(page.parent / f"scen{RLO}ario.toml")
    title = doc.find("title").text()
    assert title.startswith(f"fsaops migrate: \u2068{source}\u2069, seed "), title


def test_a_curve_s_tooltips_isolate_the_table_s_name() -> None:
    """The retry curve's tooltips say a table's name and then the pass: the name is isolated."""
    from fsaops.html_report import _curve_svg

    name = f"{RLO}{TABLE}"
    svg = _curve_svg([(name, [3, 1], "#000")], 2)
    assert f"<title>\u2068{name}\u2069</title>" in svg
    assert f"<title>\u2068{name}\u2069, pass 1: 1</title>" in svg
