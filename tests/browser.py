"""Looking at HTML pages as a person would: headless Chromium, and a small DOM to read.

:func:`chromium` finds the browser (Debian's ``chromium`` package): where it
is missing, a test that needs it is skipped with the reason, except under
CI (``CI`` set in the environment), where that is a failure, since CI
installs it (``.ci/run``).  :func:`render` loads a page and returns its DOM
once its script has run, with what it tried to load from anywhere
(:class:`Rendered`); :func:`screenshot` draws it into a PNG file.  The
DOM is read with :func:`parse`, a tree of :class:`Element` built by the
standard library's HTML parser.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import attrs
import pytest

from guarded import run_group

NAMES = ("chromium", "chromium-browser")
"""The browser's program names, as Debian (and others) install it."""

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
)
"""What headless Chromium needs here: no sandbox (it runs as root in CI), no GPU, no updates."""

RENDER_SECONDS = 60.0
"""How long one page may take to render before the test fails."""

PROBE = """<script>
(function () {
  var blocked = [];
  document.addEventListener("securitypolicyviolation", function (e) {
    blocked.push(e.blockedURI || e.violatedDirective);
  });
  window.addEventListener("load", function () {
    setTimeout(function () {
      var loaded = performance.getEntriesByType("resource").map(function (r) { return r.name; });
      var root = document.documentElement;
      root.setAttribute("data-probe", JSON.stringify({
        blocked: blocked, loaded: loaded, width: window.innerWidth, scrollWidth: root.scrollWidth
      }));
    }, 100);
  });
})();
</script>"""
"""Put first in a page: after it has loaded, what it loaded, what its policy blocked, how wide."""


def find() -> str | None:
    """The browser's path, or ``None``."""
    for name in NAMES:
        path = shutil.which(name)
        if path is not None:
            return path
    return None


def chromium() -> str:
    """The browser's path; a skip with the reason where it is missing, a failure under CI."""
    path = find()
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(
                "Chromium is not installed, and CI is set: the tests that render the HTML "
                "report must run under CI (.ci/run installs the Debian package chromium)"
            )
        pytest.skip(
            "Chromium is not installed (Debian package chromium): the HTML report is not "
            "rendered in a browser"
        )
    return path


@attrs.frozen
class Rendered:
    """A page as the browser left it.

    Attributes:
        dom: the document once its script ran (``--dump-dom``).
        loaded: every resource the page loaded (the Resource Timing entries).
        blocked: every load its Content-Security-Policy refused.
        width: the window's width, in CSS pixels.
        scroll_width: the document's (wider than the window: the page scrolls sideways).
    """

    dom: str
    loaded: tuple[str, ...]
    blocked: tuple[str, ...]
    width: int = 0
    scroll_width: int = 0


def _run(browser: str, *args: str) -> str:
    with tempfile.TemporaryDirectory(prefix="fsaops-chromium-") as profile:
        proc = run_group(
            [browser, *FLAGS, f"--user-data-dir={profile}", *args], timeout=RENDER_SECONDS
        )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def render(browser: str, page: Path, *, width: int = 1280) -> Rendered:
    """Load ``page`` (a copy of it with :data:`PROBE` put first) and return what became of it.

    The window is ``width`` CSS pixels wide.
    """
    text = page.read_text(encoding="utf-8")
    at = text.index("<head>") + len("<head>")
    with tempfile.TemporaryDirectory(prefix="fsaops-page-") as folder:
        copy = Path(folder) / page.name
        copy.write_text(text[:at] + PROBE + text[at:], encoding="utf-8")
        dom = _run(
            browser,
            f"--window-size={width},900",
            "--virtual-time-budget=5000",
            "--dump-dom",
            copy.as_uri(),
        )
    root = parse(dom)
    html = next(root.iter("html"))
    probe = json.loads(html.attributes.get("data-probe") or "null")
    assert probe is not None, "the page did not finish loading (no probe result)"
    return Rendered(
        dom, tuple(probe["loaded"]), tuple(probe["blocked"]), probe["width"], probe["scrollWidth"]
    )


def screenshot(browser: str, page: Path, png: Path, *, width: int, height: int) -> None:
    """Draw ``page`` in a window ``width`` x ``height`` pixels into ``png``."""
    _run(
        browser,
        f"--window-size={width},{height}",
        "--virtual-time-budget=5000",
        f"--screenshot={png}",
        page.as_uri(),
    )
    assert png.stat().st_size > 0


# -- reading the DOM --------------------------------------------------------------------------

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}


@attrs.define(eq=False)
class Element:
    """An element of the document: its tag, attributes, children and text."""

    tag: str
    attributes: dict[str, str | None] = attrs.field(factory=dict)
    children: list[Element | str] = attrs.field(factory=list)

    def iter(self, tag: str | None = None, **attributes: str) -> Iterator[Element]:
        """This element and every element under it, in document order, that match.

        ``data_table="x"`` matches the attribute ``data-table``.
        """
        wanted = {k.rstrip("_").replace("_", "-"): v for k, v in attributes.items()}
        if (tag is None or self.tag == tag) and all(
            self.attributes.get(k) == v for k, v in wanted.items()
        ):
            yield self
        for child in self.children:
            if isinstance(child, Element):
                yield from child.iter(tag, **attributes)

    def find(self, tag: str | None = None, **attributes: str) -> Element:
        """The first matching element (a test failure if there is none)."""
        found = next(self.iter(tag, **attributes), None)
        assert found is not None, f"no <{tag}> with {attributes}"
        return found

    def text(self) -> str:
        """The text inside, with spaces as a person reads them."""
        parts: list[str] = []
        for child in self.children:
            parts.append(child if isinstance(child, str) else child.text())
        return " ".join("".join(parts).split())

    def number(self) -> int:
        """The text as a count (``2,507`` is 2507)."""
        return int(self.text().replace(",", ""))


class _Builder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Element("#document")
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, dict(attrs))
        self.stack[-1].children.append(element)
        if tag not in VOID:
            self.stack.append(element)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack[-1].children.append(Element(tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self.stack) - 1, 0, -1):
            if self.stack[i].tag == tag:
                del self.stack[i:]
                return

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)


def parse(html: str) -> Element:
    """The document ``html`` as a tree."""
    builder = _Builder()
    builder.feed(html)
    builder.close()
    return builder.root


EXTERNAL_ATTRIBUTES = (
    "src",
    "srcset",
    "href",
    "xlink:href",
    "action",
    "formaction",
    "poster",
    "data",
    "background",
    "manifest",
    "ping",
)
"""Attributes through which a page can load something."""


def references(root: Element) -> list[str]:
    """Everything the markup itself points at outside the page (``#fragment`` links aside)."""
    found = []
    for element in root.iter():
        for name in EXTERNAL_ATTRIBUTES:
            value = element.attributes.get(name)
            if value is not None and not value.startswith("#") and not value.startswith("data:"):
                found.append(f"<{element.tag} {name}={value!r}>")
        style = element.attributes.get("style") or ""
        if "url(" in style or "@import" in style:
            found.append(f"<{element.tag} style={style!r}>")
        if element.tag in ("link", "base", "iframe", "frame", "object", "embed"):
            found.append(f"<{element.tag}>")
        if element.tag == "style":
            css = element.text()
            if "url(" in css or "@import" in css:
                found.append("<style> with url() or @import")
    return found
