"""Draw the screenshots of the documentation's HTML report page with headless Chromium.

    python tests/screenshots.py [FOLDER]

runs the built-in scenario (``fsaops migrate --html --trace``) and the two
ext3 scenarios of the docs (``fsaops diff --html``), then draws parts of
the pages into PNG files in ``FOLDER`` (default: ``docs/_static``), with
the same browser and flags as the tests that render the pages
(:mod:`browser`).  Each picture shows one part of a page: a copy of the
page gets a style that hides the rest, and the window is made as tall as
what is left.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import attrs

import guarded
from browser import chromium, parse, render, screenshot

ROOT = Path(__file__).resolve().parent.parent
WIDTH = 1100
"""The window's width, in CSS pixels."""

TRACED = "mount6/file3:44"
"""The page the report's trace follows: a locked page of xfs, which V4 tries in pass 0 of
call after call, until its locker lets go and it moves."""


@attrs.frozen
class Shot:
    """One picture: which page, what of it to show, and into which file."""

    name: str
    page: str
    show: str
    hide: str = ""
    script: str = ""
    most: int = 2000


SHOTS = (
    Shot(
        "report-top.png",
        "report",
        "main > h1, main > p.muted, #status, nav, #tables",
        hide="#tables .cards, #tables > p",
    ),
    Shot(
        "report-cards.png",
        "report",
        "#tables",
        hide="#tables > p, #overview, #tables .card:not([data-table=ext3_ordered_aops],"
        "[data-table=ext3_journalled_aops],[data-table='xfs_mapping_buftarg.mapping_aops'])",
    ),
    Shot("report-frames.png", "report", "#frames"),
    Shot(
        "report-frames-state.png",
        "report",
        "#frames",
        hide="#frames > p:first-of-type",
        script='document.querySelector("#colour-by input[value=states]").click();',
    ),
    Shot("report-retries.png", "report", "#retries"),
    Shot("report-verdict.png", "report", "#verdict", most=900),
    Shot("report-trace.png", "report", "#trace"),
    Shot("diff.png", "diff", "main > *", most=1300),
)


def _only(page: Path, shot: Shot, out: Path) -> Path:
    """A copy of ``page`` that shows only what ``shot`` shows, and says how tall that is."""
    style = f"main > * {{ display: none !important; }} {shot.show} {{ display: block !important; }}"
    if shot.hide:
        style += f" {shot.hide} {{ display: none !important; }}"
    script = (
        "<script>window.addEventListener('load', function () {"
        f"{shot.script}"
        "document.documentElement.dataset.height = "
        "Math.ceil(document.querySelector('main').getBoundingClientRect().bottom);});</script>"
    )
    text = page.read_text(encoding="utf-8")
    text = text.replace("</style>", style + "</style>", 1).replace("</body>", script + "</body>", 1)
    out.write_text(text, encoding="utf-8")
    return out


def main(folder: Path) -> None:
    """Run the scenarios and draw every picture into ``folder``."""
    browser = chromium()
    with tempfile.TemporaryDirectory(prefix="fsaops-shots-") as scratch:
        work = Path(scratch)
        pages = {"report": work / "report.html", "diff": work / "diff.html"}
        proc = guarded.fsaops("migrate", "--trace", TRACED, "--html", pages["report"])
        assert proc.returncode == 0, proc.stderr
        reports = []
        for mode in ("ordered", "journal"):
            report = work / f"{mode}.json"
            # Run from the docs' folder, so that the reports name their scenarios as the
            # docs do (scenarios/ext3-ordered.toml).
            proc = guarded.fsaops(
                "migrate", f"scenarios/ext3-{mode}.toml", "--json", cwd=ROOT / "docs"
            )
            assert proc.returncode == 0, proc.stderr
            report.write_text(proc.stdout, encoding="utf-8")
            reports.append(report.name)
        proc = guarded.fsaops("diff", *reports, "--html", pages["diff"], cwd=work)
        assert proc.returncode == 0, proc.stderr
        for shot in SHOTS:
            copy = _only(pages[shot.page], shot, work / f"only-{shot.name}.html")
            rendered = render(browser, copy, width=WIDTH)
            height = int(parse(rendered.dom).find("html").attributes["data-height"] or 0)
            png = folder / shot.name
            screenshot(browser, copy, png, width=WIDTH, height=min(height + 16, shot.most))
            print(f"{png}: {png.stat().st_size:,} bytes")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "_static")
