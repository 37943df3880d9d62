"""A report names the first 20 problems of each proof and of the read-back: the rest are said.

Over the tables, whose bars say "moved" of pages whose data did not
survive, the page says so, and each table how many of its pages were
found wrong (as the JSON report's ``by_aops.TABLE.wrong`` does).

The terminal report showed the first five and the page the first 20 of
them, and neither said that there were more: a run that lost 32 pages
read as one that lost the 20 (or five) it named.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from browser import parse
from inproc import fsaops, installed, migrate_json

PLUGIN = '''
from errno import EAGAIN

import attrs

import fsaops
from fsaops import migrate_page_remove_references
from fsaops.page import PG
from fsaops.writeback import set_page_dirty
from fsaops_ramfs import NR_REFS, RAMFS, ramfs_aops


def moves_no_bytes(newpage, page):
    """Moves the slot and the flags, never the data."""
    if migrate_page_remove_references(newpage, page, NR_REFS):
        return -EAGAIN
    newpage.flags |= page.flags & PG.uptodate
    if page.flags & PG.dirty:
        page.flags &= ~PG.dirty
        set_page_dirty(newpage)
    page.mapping = None
    return 0


@fsaops.hookimpl
def fsaops_filesystem_types():
    table = attrs.evolve(ramfs_aops, name="nobytes_aops", migratepage=moves_no_bytes)
    return [attrs.evolve(RAMFS, name="nobytes", modes={"default": table})]
'''

CONFIG = """\
[plugins]
load = ["nobytes"]
[[mount]]
fs = "nobytes"
files = 4
pages = {pages}
[swap]
slots = 0
[processes]
anon_pages = 0
"""


TWO_TABLES = """\
[plugins]
load = ["nobytes", "ext2"]
[[mount]]
fs = "nobytes"
files = 4
pages = 12
[[mount]]
fs = "ext2"
files = 2
pages = 10
[swap]
slots = 0
[processes]
anon_pages = 0
"""
"""A table that loses every page it moves, and one that loses none."""


@pytest.fixture(scope="module")
def configs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """``nobytes`` installed; a folder for configs."""
    yield from installed(tmp_path_factory, "nobytes", PLUGIN)


@pytest.mark.parametrize("pages", [32, 12])
def test_the_problems_left_unnamed_are_counted(configs: Path, pages: int) -> None:
    path = configs / f"nobytes-{pages}.toml"
    rc, report = migrate_json(path, CONFIG.format(pages=pages))
    assert (rc, report["status"]) == (1, "data lost")
    integrity = report["integrity"]
    assert isinstance(integrity, dict)
    wrong = integrity["lost"] + integrity["corrupted"]
    assert wrong == pages
    named = len(integrity["problems"])
    assert named == min(pages, 20)

    page = configs / f"nobytes-{pages}.html"
    status, out, _err = fsaops("migrate", str(path), "--no-progress", "--html", str(page))
    assert status == 1
    dom = parse(page.read_text(encoding="utf-8"))
    integrity_row = next(
        tr for tr in dom.iter("tr") if tr.attributes.get("data-proof") == "integrity"
    )
    more = [li for li in integrity_row.iter("li") if "data-unlisted" in li.attributes]
    if pages > 20:
        assert [li.attributes["data-unlisted"] for li in more] == [str(pages - 20)]
        assert more[0].text().startswith(f"… and {pages - 20} more (the report names the first 20)")
    else:
        assert more == []
    # Each table's bar says "moved" of pages that moved: that their data did not survive
    # is said over the tables too.
    warning = next(p for p in dom.iter("p") if p.attributes.get("id") == "moved-not-kept")
    assert f"{pages} pages read back wrong" in warning.text()
    # The terminal shows five of them, and says how many more there are.
    said = re.findall(r"\.\.\. and (\d+) more \(the JSON report names the first (\d+)\)", out)
    assert (str(pages - 5), str(named)) in said


def test_each_table_counts_its_pages_found_wrong(configs: Path) -> None:
    """Over the tables the page said how many pages read back wrong in all, but not whose."""
    path = configs / "two-tables.toml"
    rc, report = migrate_json(path, TWO_TABLES)
    assert (rc, report["status"]) == (1, "data lost")
    tables = report["by_aops"]
    assert (tables["nobytes_aops"]["wrong"], tables["ext2_aops"]["wrong"]) == (12, 0)
    page = configs / "two-tables.html"
    status, _out, _err = fsaops("migrate", str(path), "--no-progress", "--html", str(page))
    assert status == 1
    dom = parse(page.read_text(encoding="utf-8"))
    wrong = {
        tr.attributes["data-table"]: tr.find("td", data_field="wrong").number()
        for tr in dom.find("table", id="overview").iter("tr")
        if "data-table" in tr.attributes
    }
    assert wrong == {"nobytes_aops": 12, "ext2_aops": 0, "": 12}, "the last: the total"
    card = dom.find("article", data_table="nobytes_aops")
    assert "12 pages: 12 moved, 0 failed, 0 left; 12 found wrong" in card.text()
    assert "found wrong" not in dom.find("article", data_table="ext2_aops").text()


def test_a_run_that_lost_nothing_has_no_such_warning(tmp_path: Path) -> None:
    page = tmp_path / "ok.html"
    status, _out, err = fsaops("migrate", "--no-progress", "--html", str(page))
    assert status == 0, err
    text = page.read_text(encoding="utf-8")
    assert 'id="moved-not-kept"' not in text
    assert 'data-field="wrong"' not in text, "no column of pages found wrong: none was"
