"""The ``--html`` page fits its window (long names, a narrow screen) and tells tables apart.

A plugin's names are its own to choose, of any length; at 1280 pixels a
2,000-character table name made the page about 18,000 pixels wide. At a
narrow width the frame maps (540 pixels at least) and the retry curve
(620) were cut off.  Rendered in headless Chromium, whose window is 500
pixels at the narrowest.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from browser import chromium, parse, render
from inproc import fsaops, installed

LONG = "E" * 2000
FS = "f" * 300
MODE = "m" * 120
WHY = "w" * 600

PLUGIN = f'''
from errno import EAGAIN

import attrs

import fsaops
from fsaops import buffer_migrate_page
from fsaops_ext2 import EXT2, ext2_aops


def refuses_some(newpage, page):
    """Leaves every third page behind, with a long reason."""
    if page.index % 3 == 0:
        page.node.kernel.current.why = "{WHY}"
        return -EAGAIN
    return buffer_migrate_page(newpage, page)


@fsaops.hookimpl
def fsaops_filesystem_types():
    table = attrs.evolve(ext2_aops, name="{LONG}", migratepage=refuses_some)
    fs = attrs.evolve(
        EXT2, name="{FS}", modes={{"{MODE}": table}}, default_mode="{MODE}", page_cache={{}}
    )
    return [fs]
'''

SCENARIO = f"""\
[kernel]
node_memory = "4MiB"
[plugins]
load = ["longnames", "ext2", "swap"]
[[mount]]
fs = "{FS}"
files = 2
pages = 24
[[mount]]
fs = "ext2"
files = 2
pages = 24
"""


@pytest.fixture(scope="module")
def configs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """``longnames`` installed; a folder for configs."""
    yield from installed(tmp_path_factory, "longnames", PLUGIN)


def _page(folder: Path, *args: str) -> Path:
    page = folder / "report.html"
    status, _out, err = fsaops("migrate", *args, "--no-progress", "--html", str(page))
    assert status == 0, err[-3000:]
    return page


def test_long_names_are_cut_and_the_page_is_as_wide_as_its_window(configs: Path) -> None:
    scenario = configs / "long.toml"
    scenario.write_text(SCENARIO, encoding="utf-8")
    page = _page(configs, str(scenario))
    source = page.read_text(encoding="utf-8")
    assert f"<bdi>{LONG[:80]}</bdi>… (2,000 characters)" in source
    rendered = render(chromium(), page, width=1280)
    assert (rendered.width, rendered.scroll_width) == (1280, 1280)
    dom = parse(rendered.dom)
    mounts = next(t for t in dom.iter("table") if t.attributes.get("id") == "mounts")
    assert FS[:80] + "… (300 characters)" in mounts.text()
    assert FS not in mounts.text()


@pytest.mark.parametrize("width", [500, 800])
def test_the_built_in_page_fits_a_narrow_window(tmp_path: Path, width: int) -> None:
    page = _page(tmp_path)
    rendered = render(chromium(), page, width=width)
    assert (rendered.width, rendered.scroll_width) == (width, width)


def test_twenty_tables_have_twenty_colours() -> None:
    """The built-in scenario alone has eight tables: ten colours left two pairs alike at 12."""
    from fsaops.html_report import table_colours

    names = [f"t{i}_aops" for i in range(20)]
    colours = table_colours(names)
    assert len(set(colours.values())) == 20
    assert table_colours([*names, "t20_aops"])["t20_aops"] == colours["t0_aops"]
