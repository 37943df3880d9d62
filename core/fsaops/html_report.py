"""The report of a run as one self-contained HTML page: ``fsaops migrate --html FILE``.

The page needs nothing but itself: its style and its one script are
inline, and a ``Content-Security-Policy`` tells the browser to load
nothing else, so it opens offline, from a mail or an archive, as it did
the day it was written.  Everything a person reads is written out in the
page's HTML (tables, bars, numbers, the retry curve as inline SVG); the
script only draws the four frame maps on canvases, from run-length-coded
strings (:mod:`fsaops.frames`), so that a node of a hundred thousand
frames costs about one byte a frame at worst, and counts what it drew.

:func:`render_report` makes the page; :func:`document`, :data:`STYLE` and
the small helpers are shared with ``fsaops diff --html``
(:mod:`fsaops.diff`).
"""

from __future__ import annotations

import math
import shlex
from html import escape
from typing import TYPE_CHECKING, Any, Final

from fsaops.errors import MAX_SHOWN
from fsaops.frames import STATES
from fsaops.jsonbound import dumps
from fsaops.migrate import MAX_PASSES
from fsaops.report import NOT_MOUNTED, SWAPPED_IN, headline, member_name, tone, verdict

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from fsaops.frames import FrameMaps
    from fsaops.report import PageOutcome, Report, TableReport
    from fsaops.trace import TraceStep

__all__ = [
    "GROUPS_LISTED",
    "INVARIANTS_LISTED",
    "PAGES_LISTED",
    "STATE_COLOURS",
    "STYLE",
    "TABLE_COLOURS",
    "document",
    "render_failure",
    "render_report",
    "scenario_toml",
]

PAGES_LISTED: Final = 500
"""Pages the page names in each group of failed or left pages (all are counted)."""

GROUPS_LISTED: Final = 50
"""Groups of failed or left pages (a table, an errno and a reason each) the page shows, the
largest first; the others are counted in one line (a reason for every page would make a
group a page)."""

INVARIANTS_LISTED: Final = 100
"""Broken invariants the page lists (all are counted; the JSON report has every one)."""

TABLE_COLOURS: Final = (
    "#4e79a7",
    "#f28e2b",
    "#59a14f",
    "#b07aa1",
    "#76b7b2",
    "#edc948",
    "#9c755f",
    "#ff9da7",
    "#e15759",
    "#bab0ac",
    "#17becf",
    "#bcbd22",
    "#1b4f72",
    "#d35400",
    "#145a32",
    "#6c3483",
    "#b7950b",
    "#641e16",
    "#0e6655",
    "#5d6d7e",
)
"""The colours of operations tables, in the order the frame maps number them (twenty)."""

STATE_COLOURS: Final = {
    "free": "#e9e9ec",
    "clean": "#a6cee3",
    "mlocked": "#6a3d9a",
    "swapout": "#b15928",
    "pinned": "#cab2d6",
    "locked": "#fb9a99",
    "writeback": "#ff7f00",
    "dirty": "#fdbf6f",
    "mapped": "#1f78b4",
    "buffer_locked": "#b2df8a",
    "released": "#8dd3c7",
    "partial": "#bc80bd",
    "holes": "#e7298a",
    "moved": "#33a02c",
    "left": "#f0c419",
    "failed": "#d62728",
    "in use": "#555555",
}
"""The colour of each frame state (:data:`fsaops.frames.STATES`)."""

CONTENT_SECURITY_POLICY: Final = (
    "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
    "img-src data:; base-uri 'none'; form-action 'none'"
)
"""Nothing but the page itself: no request leaves it."""

STYLE: Final = """
:root { --fg: #1d1f24; --muted: #5f6672; --line: #d9dce1; --bg: #ffffff; --panel: #f6f7f9;
  --ok: #1f7a35; --bad: #b3261e; --warn: #8a6100;
  --moved: #33a02c; --failed: #d62728; --left: #f0c419; }
* { box-sizing: border-box; }
[hidden] { display: none !important; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  color: var(--fg); background: var(--bg); }
main { max-width: 1180px; margin: 0 auto; padding: 20px 24px 48px; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 32px 0 10px; padding-bottom: 4px;
  border-bottom: 1px solid var(--line); }
h3 { font-size: 15px; margin: 18px 0 6px; }
p { margin: 6px 0; }
code, .mono { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace;
  font-size: 12.5px; }
.muted { color: var(--muted); }
nav { margin: 10px 0 0; font-size: 13px; }
nav a { margin-right: 14px; color: var(--muted); }
.banner { margin: 14px 0; padding: 10px 14px; border-radius: 6px; font-weight: 600; }
.banner.ok { background: #e6f4ea; color: var(--ok); border: 1px solid #b7dfc2; }
.banner.bad { background: #fce8e6; color: var(--bad); border: 1px solid #f3b8b2; }
.banner.note { background: #fff4d6; color: var(--warn); border: 1px solid #f1d48a; }
.facts { display: grid; grid-template-columns: max-content 1fr; gap: 3px 16px; margin: 8px 0; }
.facts dt { color: var(--muted); }
.facts dd { margin: 0; }
table { border-collapse: collapse; margin: 6px 0 10px; }
th, td { padding: 3px 8px; text-align: left; vertical-align: top;
  border-bottom: 1px solid var(--line); }
th { font-weight: 600; font-size: 12.5px; color: var(--muted); }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.total td { font-weight: 600; border-top: 2px solid var(--line); }
.stack { display: flex; width: 150px; height: 12px; background: var(--panel); border-radius: 2px;
  overflow: hidden; }
.stack span { display: block; height: 100%; }
.s-moved { background: var(--moved); } .s-failed { background: var(--failed); }
.s-left { background: var(--left); }
.wrong { color: var(--bad); font-weight: 600; }
.wide { overflow-x: auto; }
li, dd, .card p, .card code { overflow-wrap: anywhere; }
svg { max-width: 100%; height: auto; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(min(360px, 100%), 1fr));
  gap: 14px; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: 10px 12px; background: #fff; }
.card h3 { margin: 0 0 2px; word-break: break-all; }
.card table { width: 100%; margin: 4px 0; }
.card td { border: none; padding: 2px 4px; }
.card td.num { width: 1%; }
.card tr.group th { padding-top: 8px; border: none; }
.bar { display: block; height: 8px; margin: 2px 0 3px; border-radius: 2px; min-width: 1px; }
td.key { word-break: break-word; }
td.name, td.nowrap { white-space: nowrap; }
table.diff { width: 100%; table-layout: fixed; }
table.diff td, table.diff th { text-align: right; overflow-wrap: anywhere; }
table.diff td.key, table.diff th.key { text-align: left; width: 40%; }
table.diff th.delta { width: 9%; }
.sw { display: inline-block; width: 11px; height: 11px; margin-right: 6px; vertical-align: -1px;
  border-radius: 2px; }
.maps { display: grid; grid-template-columns: repeat(auto-fill, minmax(min(540px, 100%), 1fr));
  gap: 14px; }
figure { margin: 0; }
figcaption { font-weight: 600; margin-bottom: 4px; }
figcaption .muted { font-weight: 400; font-size: 12.5px; }
canvas { display: block; image-rendering: pixelated; border: 1px solid var(--line);
  max-width: 100%; height: auto; }
.legend { display: flex; flex-wrap: wrap; gap: 4px 14px; margin: 6px 0; font-size: 12.5px; }
.legend > span::before { content: ""; display: inline-block; width: 11px; height: 11px;
  margin-right: 5px; vertical-align: -1px; border-radius: 2px; background: var(--swatch); }
#hover { min-height: 1.5em; font-size: 12.5px; }
details { margin: 6px 0; }
summary { cursor: pointer; color: var(--muted); }
table.counts { font-size: 12px; }
.diff-same td { color: var(--muted); }
tr.differs td { background: #fff4d6; }
tr.differs td.delta { font-weight: 600; }
td.only { color: var(--muted); font-style: italic; }
ul.pages { margin: 4px 0 10px; padding-left: 20px; }
.pagelist { display: flex; flex-wrap: wrap; gap: 2px 6px; margin: 3px 0 8px;
  font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 11.5px; }
.pagelist span { background: var(--panel); border-radius: 3px; padding: 0 5px; }
pre { background: var(--panel); padding: 8px 10px; border-radius: 4px; overflow-x: auto; }
pre#error { white-space: pre-wrap; overflow-wrap: anywhere; }
svg text { font-size: 11px; fill: var(--muted); }
footer { margin-top: 40px; font-size: 12px; color: var(--muted); }
"""
"""The page's style (shared by the diff's page)."""


def document(title: str, body: str, *, script: str = "", data: str = "") -> str:
    """A whole HTML page: the policy, the style, ``body``, and the script and its data if any."""
    from fsaops import __version__

    parts = [
        "<!DOCTYPE html>\n",
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n',
        f'<meta http-equiv="Content-Security-Policy" content="{CONTENT_SECURITY_POLICY}">\n',
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n',
        f'<meta name="generator" content="fsaops {escape(__version__)}">\n',
        f"<title>{escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>\n",
        body,
        f"<footer>Written by fsaops {escape(__version__)}. This page loads nothing "
        "from anywhere: everything it shows is in this one file.</footer>\n</main>\n",
    ]
    if data:
        parts.append(f'<script id="frame-data" type="application/json">{data}</script>\n')
    if script:
        parts.append(f"<script>{script}</script>\n")
    parts.append("</body>\n</html>\n")
    return "".join(parts)


def n(value: int) -> str:
    """A count as the page writes it: ``2,507``."""
    return f"{value:,}"


def tag(name: str, text: str = "", **attributes: object) -> str:
    """``<name attributes>text</name>``; ``text`` is HTML, attribute values are escaped.

    An attribute ``class_`` is written ``class``, ``data_x`` is ``data-x``;
    ``None`` leaves an attribute out.
    """
    attrs_text = "".join(
        f' {key.rstrip("_").replace("_", "-")}="{escape(str(value))}"'
        for key, value in attributes.items()
        if value is not None
    )
    return f"<{name}{attrs_text}>{text}</{name}>"


def _stack(moved: int, failed: int, left: int) -> str:
    total = moved + failed + left
    if not total:
        return '<div class="stack"></div>'
    spans = "".join(
        f'<span class="s-{kind}" style="width:{100 * value / total:.2f}%" '
        f'title="{kind}: {n(value)}"></span>'
        for kind, value in (("moved", moved), ("failed", failed), ("left", left))
        if value
    )
    return f'<div class="stack">{spans}</div>'


def _bar(value: int, total: int, colour: str) -> str:
    width = 0.0 if not total else 100 * value / total
    return f'<span class="bar" style="width:{width:.2f}%;background:{colour}"></span>'


def name_html(name: str, *, cut: bool = True) -> str:
    """A name as the page shows it: escaped, isolated, cut at 80 characters, whole in a title.

    Every name the page shows that a plugin or the user gave (a table, a
    filesystem, a mode, a ``migratepage``, a plugin, the scenario's file)
    is shown through here.  A name can be any Unicode: in a ``<bdi>``, one
    written right to left, or holding a U+202E RIGHT-TO-LEFT OVERRIDE,
    is laid out on its own and cannot reorder the text around it (nor
    what the page says of a name it cuts).  ``cut=False``: whole, for text
    to copy (a word of a command line).
    """
    if not cut or len(name) <= MAX_SHOWN:
        return f"<bdi>{escape(name)}</bdi>"
    return (
        f'<span title="{escape(name)}"><bdi>{escape(name[:MAX_SHOWN])}</bdi>… '
        f"({len(name):,} characters)</span>"
    )


def isolated(text: str) -> str:
    """A name inside plain text where no ``<bdi>`` can go (a tab's title, an SVG tooltip).

    Between U+2068 FIRST STRONG ISOLATE and U+2069 POP DIRECTIONAL
    ISOLATE: laid out on its own, as in a ``<bdi>``, so a name written right
    to left, or one holding an override, cannot reorder the text after it.
    """
    return f"\u2068{text}\u2069"


def swatch(colour: str) -> str:
    """A small square of ``colour`` before a name."""
    return f'<span class="sw" style="background:{colour}"></span>'


# -- the scenario -------------------------------------------------------------------------


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return repr(value)


def scenario_toml(config: Mapping[str, Any], seed: int) -> str:
    """The scenario a report ran, as a scenario file that runs it again (with ``seed``)."""
    lines: list[str] = []
    for table, values in config.items():
        if isinstance(values, list):
            for entry in values:
                lines.append(f"[[{table}]]")
                lines += [f"{k} = {_toml_value(v)}" for k, v in entry.items() if v is not None]
                lines.append("")
            continue
        lines.append(f"[{table}]")
        for key, value in values.items():
            written = seed if table == "workload" and key == "seed" else value
            if written is not None:
                lines.append(f"{key} = {_toml_value(written)}")
        lines.append("")
    return "\n".join(lines)


def _rerun(report: Report) -> list[str]:
    from fsaops.config import BUILTIN_SOURCE

    config = report.config
    words = ["fsaops", "migrate"]
    # The command line names a file as the built-in scenario is as
    # ./<built-in scenario>: a report so named is the built-in scenario's.
    if report.source != BUILTIN_SOURCE:
        # A file named like an option (-x.toml, --html=x) is named by a path
        # no option starts with: the line must not read it as one.
        source = report.source
        words.append(f"./{source}" if source.startswith("-") else source)
    words += ["--seed", str(report.seed)]
    kernel = config.get("kernel", {})
    words += ["--semantics", str(kernel.get("semantics", "v4"))]
    # The plugins the run loaded, however they were chosen (--plugins,
    # FSAOPS_PLUGINS, [plugins] load), none included (--plugins ''): the same
    # selection builds the same machine.  Not those a loaded one imported (they
    # come with it), and only names --plugins can give: the loader refuses a
    # plugin whose name has a comma or spaces around it, so a run has none.
    words += ["--plugins", ",".join(p.name for p in report.plugins if not p.imported_by)]
    if kernel.get("strict"):
        words.append("--strict")
    if kernel.get("debug_vm"):
        words.append("--debug-vm")
    return words


def _scenario(report: Report) -> str:
    from fsaops.config import format_size

    config = report.config
    kernel = config.get("kernel", {})
    workload = config.get("workload", {})
    # A plugin the selection left out, whose module a loaded one imported,
    # is said to be so, as the text report says it.
    plugins = ", ".join(
        name_html(p.name)
        + (f" (imported by {', '.join(map(name_html, p.imported_by))})" if p.imported_by else "")
        + f" <span class=muted>({name_html(p.distribution)} {name_html(p.version)})</span>"
        for p in report.plugins
    )
    facts = [
        ("scenario", name_html(report.source)),
        ("seed", str(report.seed)),
        ("semantics", escape(str(kernel.get("semantics", "?")))),
        ("fsaops", escape(report.version)),
        ("plugins", plugins or "none"),
        (
            "machine",
            f"{kernel.get('nodes', '?')} nodes of {format_size(int(kernel.get('node_memory', 0)))}"
            f", {kernel.get('page_size', '?')}-byte pages; migration "
            f"{'built in' if kernel.get('migration', True) else 'compiled out'}",
        ),
        ("migrate", f"every page of node {report.from_node} to node {report.to_node}"),
        (
            "workload",
            ", ".join(
                f"{escape(k)} {escape(_toml_value(v))}"
                for k, v in workload.items()
                if k != "seed" and v
            )
            or "every page clean",
        ),
        (
            "faults",
            ", ".join(
                f"{escape(k)} {escape(_toml_value(v))}"
                for k, v in config.get("faults", {}).items()
                if v
            )
            or "none injected",
        ),
        (
            "checks",
            ("strict (findings fail the run)" if report.strict else "not strict")
            + (", --debug-vm" if kernel.get("debug_vm") else ""),
        ),
    ]
    for part in report.left_out:
        facts.append(("left out", escape(part.describe())))
    for name in report.not_mounted:
        facts.append(
            ("not mounted", escape(NOT_MOUNTED).replace("{name!r}", name_html(repr(name))))
        )
    rows = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in facts)
    mounts = [dict(m) for m in config.get("mount", [])]
    for m, made in zip(mounts, report.mounts, strict=False):
        # what the run used where the scenario left it to the filesystem
        m["mode"] = made.mode
        m["block_size"] = made.block_size
    mount_rows = "".join(
        "<tr>"
        + tag("td", f"mount{i}", class_="mono")
        + tag("td", name_html(str(m.get("fs"))))
        + tag("td", name_html(str(m.get("mode") or "the filesystem's default")))
        + tag("td", n(int(m.get("files", 0))), class_="num")
        + tag("td", n(int(m.get("pages", 0))), class_="num")
        + tag("td", escape(str(m.get("block_size") or "the filesystem's default")), class_="num")
        + "</tr>"
        for i, m in enumerate(mounts)
    )
    processes = config.get("processes", {})
    swap = config.get("swap", {})
    more = (
        f"<p>Swap: {n(int(swap.get('slots', 0)))} slots. Processes: "
        f"{processes.get('count', 0)}, with {n(int(processes.get('anon_pages', 0)))} pages of "
        "anonymous memory.</p>"
    )
    # The plugins the run loaded, however they were chosen: saved and run
    # again, the scenario loads the same set, as the command above does (not
    # those a loaded one imported: they come with it).
    loaded = {
        **(config.get("plugins") or {}),
        "load": [p.name for p in report.plugins if not p.imported_by],
    }
    # Each word quoted as a shell reads it (a file named with a space stays one word); a word
    # that is not ASCII is isolated: a file's name that overrides the direction of its text,
    # or is written right to left, ends with its word.
    command = " ".join(
        escape(quoted) if quoted.isascii() else name_html(quoted, cut=False)
        for quoted in map(shlex.quote, _rerun(report))
    )
    toml = escape(scenario_toml({**config, "mount": mounts, "plugins": loaded}, report.seed))
    return (
        '<section id="scenario">\n<h2>The scenario</h2>\n'
        f'<dl class="facts">{rows}</dl>\n'
        '<div class="wide"><table id="mounts"><thead><tr><th>mount</th><th>filesystem</th>'
        '<th>mode</th><th class="num">files</th><th class="num">pages</th>'
        '<th class="num">block size</th>'
        f"</tr></thead><tbody>{mount_rows}</tbody></table></div>\n{more}\n"
        f"<p>To run it again: <code>{command}</code>, or save the scenario "
        "below as a file and run <code>fsaops migrate FILE</code>.</p>\n"
        "<details><summary>the scenario, every default filled in</summary>"
        f'<pre id="scenario-toml">{toml}</pre></details>\n</section>\n'
    )


# -- the tables ---------------------------------------------------------------------------


def _grouped(pages: Iterable[PageOutcome], key: str) -> dict[str, dict[str, list[PageOutcome]]]:
    """Pages by table, then by their errno (``key="errno"``) or reason."""
    groups: dict[str, dict[str, list[PageOutcome]]] = {}
    for page in pages:
        value = page.errno if key == "errno" else page.reason
        groups.setdefault(page.table, {}).setdefault(value, []).append(page)
    return groups


def _found_wrong(report: Report) -> bool:
    """Whether a page read back wrong or a proof failed: each table then says how many of its."""
    i, proofs = report.integrity, report.proofs
    failures = 0 if proofs is None else proofs.placement.failures + proofs.durability.failures
    return bool(i.lost or i.corrupted or failures)


def _wrong_cell(value: int) -> str:
    """A table's pages found wrong, red unless none."""
    return tag("td", n(value), class_="num wrong" if value else "num", data_field="wrong")


def _overview(report: Report, colours: Mapping[str, str]) -> str:
    # Of a run that found pages wrong, how many were each table's: "moved" is no promise.
    wrong = _found_wrong(report)
    rows = []
    for t in report.by_aops:
        member = (
            name_html(member_name(t.migratepage)) if t.migratepage else "none: generic fallback"
        )
        used_by = f"{name_html(t.filesystem)} {name_html(t.mode)}"
        if t.swapped_in:  # never "none: generic fallback": the run has no name for its op
            used_by, member = escape("no mount's"), "plugin code swapped the table in"
        rows.append(
            tag(
                "tr",
                tag(
                    "td",
                    f"{swatch(colours.get(t.name, '#999'))}<b>{name_html(t.name)}</b>",
                    class_="name",
                )
                + tag("td", used_by, class_="nowrap")
                + tag("td", member, class_="mono nowrap")
                + tag("td", n(t.pages), class_="num", data_field="pages")
                + tag("td", n(t.moved), class_="num", data_field="moved")
                + tag("td", n(t.failed), class_="num", data_field="failed")
                + tag("td", n(t.not_migrated), class_="num", data_field="not_migrated")
                + (_wrong_cell(t.wrong) if wrong else "")
                + tag("td", _stack(t.moved, t.failed, t.not_migrated)),
                data_table=t.name,
            )
        )
    total = report.totals
    rows.append(
        tag(
            "tr",
            tag("td", "<b>total</b> <span class=muted>(every table)</span>")
            + tag("td", "")
            + tag("td", "")
            + tag("td", n(total.pages), class_="num", data_field="pages")
            + tag("td", n(total.moved), class_="num", data_field="moved")
            + tag("td", n(total.failed), class_="num", data_field="failed")
            + tag("td", n(total.not_migrated), class_="num", data_field="not_migrated")
            + (_wrong_cell(sum(t.wrong for t in report.by_aops)) if wrong else "")
            + tag("td", _stack(total.moved, total.failed, total.not_migrated)),
            class_="total",
            data_table="",
        )
    )
    return (
        '<table id="overview"><thead><tr><th>operations table</th><th>filesystem</th>'
        '<th>migratepage</th><th class="num">pages</th><th class="num">moved</th>'
        '<th class="num">failed</th><th class="num">left</th>'
        + (
            '<th class="num" title="read back wrong, or named by a proof">wrong</th>'
            if wrong
            else ""
        )
        + "<th>moved · failed · left</th>"
        f"</tr></thead><tbody>{''.join(rows)}</tbody></table>\n"
    )


def _card(
    table: TableReport, failed: Mapping[str, list[Any]], left: Mapping[str, list[Any]]
) -> str:
    groups = [
        ("moved, by path", "via", dict(table.via), "var(--moved)"),
        ("failed, by errno", "errno", {k: len(v) for k, v in failed.items()}, "var(--failed)"),
        ("left, by reason", "reason", {k: len(v) for k, v in left.items()}, "var(--left)"),
    ]
    body = []
    for title, kind, counts, colour in groups:
        body.append(f'<tr class="group"><th colspan="2">{title}</th></tr>')
        if not counts:
            body.append('<tr><td colspan="2" class="muted">none</td></tr>')
        for key, count in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
            body.append(
                tag(
                    "tr",
                    tag("td", escape(key) + _bar(count, table.pages, colour), class_="key")
                    + tag("td", n(count), class_="num"),
                    data_kind=kind,
                    data_key=key,
                )
            )
    member = (
        name_html(table.migratepage)
        if table.migratepage
        else escape("none: the engine's generic fallback")
    )
    said = f"{name_html(table.filesystem)} {name_html(table.mode)} · <code>{member}</code>"
    if table.swapped_in:
        said = escape(SWAPPED_IN)
    return (
        f'<article class="card" data-table="{escape(table.name)}">'
        f"<h3>{name_html(table.name)}</h3>"
        f'<p class="muted">{said}</p>'
        f"<p>{_stack(table.moved, table.failed, table.not_migrated)}</p>"
        f"<p>{n(table.pages)} pages: {n(table.moved)} moved, {n(table.failed)} failed, "
        f"{n(table.not_migrated)} left"
        + (f'; <b class="wrong">{n(table.wrong)} found wrong</b>' if table.wrong else "")
        + "</p>"
        f"<table>{''.join(body)}</table></article>\n"
    )


def _moved_is_not_kept(report: Report) -> str:
    """A warning over the tables of a run whose pages read back wrong: "moved" is no promise.

    The bars say where the engine put each page; that its data survived is
    the verdict's to say, and a table that loses every page it moves shows
    a full green bar.
    """
    if not _found_wrong(report):
        return ""
    i = report.integrity
    wrong = i.lost + i.corrupted
    said = f"{n(wrong)} pages read back wrong" if wrong else "the proofs failed"
    return (
        '<p class="banner bad" id="moved-not-kept">Moved says where the engine put a page, '
        f"not that its data survived: {said}. Each table's <b>wrong</b> counts its pages that "
        "read back wrong or that a proof names; "
        '<a href="#verdict">the verdict</a> names the pages.</p>\n'
    )


def _tables(report: Report, colours: Mapping[str, str]) -> str:
    failed = _grouped(report.pages_failed, "errno")
    left = _grouped(report.pages_left, "reason")
    cards = "".join(
        _card(t, failed.get(t.name, {}), left.get(t.name, {})) for t in report.by_aops if t.pages
    )
    idle = [t.name for t in report.by_aops if not t.pages]
    note = (
        f"<p class=muted>Tables with no page to migrate: {', '.join(map(name_html, idle))}.</p>"
        if idle
        else ""
    )
    return (
        '<section id="tables">\n<h2>Pages by operations table</h2>\n'
        "<p>Every page migration took on: <b>moved</b> (to the target node, or written out "
        "and dropped by <code>swap_page</code>), <b>failed</b> for good (any error but "
        "<code>-EAGAIN</code>), or <b>left</b> where it was (still busy after the last pass, "
        "or never reached).</p>\n"
        f"{_moved_is_not_kept(report)}"
        f'<div class="wide">{_overview(report, colours)}</div>'
        f"<div class=cards>{cards}</div>{note}\n</section>\n"
    )


# -- the frame maps -------------------------------------------------------------------------


def _frame_maps(frames: FrameMaps, colours: Mapping[str, str]) -> tuple[str, str]:
    figures = []
    for i, fmap in enumerate(frames.maps):
        title = f"node {fmap.node}, the {fmap.role}, {fmap.when} migration"
        span = (
            f"{n(fmap.frames)} frames, pfn {n(fmap.start_pfn)} to "
            f"{n(fmap.start_pfn + fmap.frames - 1)}"
        )
        figures.append(
            f'<figure class="framemap" data-map="{i}" data-node="{fmap.node}" '
            f'data-when="{fmap.when}" data-role="{fmap.role}" data-frames="{fmap.frames}">'
            f"<figcaption>{escape(title)} <span class=muted>({escape(span)})</span></figcaption>"
            f'<canvas data-map="{i}" width="1" height="1" hidden data-needs-script></canvas>'
            "<details hidden data-needs-script><summary>frames by table and state</summary>"
            f'<div class="wide"><table class="counts" data-map="{i}"></table></div>'
            "</details></figure>"
        )
    table_legend = "".join(
        f'<span style="--swatch:{colours[name]}">{name_html(name)}</span>'
        for name in frames.tables[1:]
    )
    state_legend = "".join(
        f'<span style="--swatch:{STATE_COLOURS[state]}">{escape(state)}</span>' for state in STATES
    )
    data = dumps(
        {
            "tables": frames.tables,
            "tableColours": ["#e9e9ec", *(colours[t] for t in frames.tables[1:])],
            "states": list(STATES),
            "stateColours": [STATE_COLOURS[s] for s in STATES],
            "maps": [
                {
                    "node": m.node,
                    "when": m.when,
                    "start": m.start_pfn,
                    "frames": m.frames,
                    "tables": m.tables,
                    "states": m.states,
                }
                for m in frames.maps
            ],
        },
        separators=(",", ":"),
    )
    html = (
        '<section id="frames">\n<h2>Frame maps</h2>\n'
        "<p>Every frame of the source and the target node, one cell each, in pfn order "
        "(left to right, then down), before migration started and once it was over, "
        "coloured by the operations table of the page in the frame, or by its state: "
        "before, the workload state the scenario gave the page (a page it gave none is "
        "dirty or clean as its flags say: a ramfs page is dirty from its first write); "
        "after, whether it "
        "<b>moved</b> into this frame, or was <b>left</b> or <b>failed</b> in its old one.</p>\n"
        # What needs the script is hidden until it runs: without it, no control that does
        # nothing, no empty canvas; the captions say what each map would have shown.
        "<noscript><p>The frame maps are drawn by the page's own script, which this "
        "browser does not run.</p></noscript>\n"
        '<p id="colour-by" hidden data-needs-script>Colour by: <label><input type="radio" '
        'name="colour" value="tables" checked> table</label> <label><input type="radio" '
        'name="colour" value="states"> state</label></p>\n'
        f'<div class="legend" id="legend-tables" hidden>{table_legend}</div>\n'
        f'<div class="legend" id="legend-states" hidden>{state_legend}</div>\n'
        '<p id="hover" class="mono muted" hidden data-needs-script>Point at a cell to see its '
        "frame.</p>\n"
        f'<div class="maps">{"".join(figures)}</div>\n</section>\n'
    )
    # Inside a script element: no "<" at all, so no "</script>" or "<!--" either.
    return html, data.replace("<", "\\u003c")


FRAME_SCRIPT: Final = """
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("frame-data").textContent);
  function decode(text, frames) {
    var out = new Uint8Array(frames), at = 0, re = /([^0-9])([0-9]*)/g, m;
    var alphabet = ALPHABET;
    while ((m = re.exec(text)) !== null) {
      var code = alphabet.indexOf(m[1]), run = m[2] ? parseInt(m[2], 10) : 1;
      if (code < 0 || at + run > frames) { throw new Error("bad frame map"); }
      out.fill(code, at, at + run);
      at += run;
    }
    if (at !== frames) { throw new Error("frame map of " + at + " frames, expected " + frames); }
    return out;
  }
  function rgb(hex) {
    return [1, 3, 5].map(function (at) { return parseInt(hex.slice(at, at + 2), 16); });
  }
  var palettes = { tables: data.tableColours.map(rgb), states: data.stateColours.map(rgb) };
  var maps = data.maps.map(function (m, i) {
    var tables = decode(m.tables, m.frames), states = decode(m.states, m.frames);
    var canvas = document.querySelector('canvas[data-map="' + i + '"]');
    var width = 520, height = 280;
    var cell = Math.max(1, Math.min(12, Math.floor(Math.sqrt(width * height / m.frames))));
    var cols = Math.floor(width / cell), rows = Math.ceil(m.frames / cols);
    canvas.width = cols * cell;
    canvas.height = rows * cell;
    canvas.dataset.cell = cell;
    canvas.dataset.cols = cols;
    canvas.dataset.rows = rows;
    canvas.dataset.cells = tables.length;
    var counts = {};
    for (var f = 0; f < m.frames; f++) {
      var key = tables[f] + "," + states[f];
      counts[key] = (counts[key] || 0) + 1;
    }
    fillCounts(i, counts);
    return { m: m, tables: tables, states: states, canvas: canvas, cell: cell, cols: cols };
  });
  function cell(row, kind, text, attributes) {
    var td = document.createElement(kind);
    td.textContent = text;
    Object.keys(attributes || {}).forEach(function (a) { td.setAttribute(a, attributes[a]); });
    row.appendChild(td);
    return td;
  }
  function named(element, name) {
    if (name) { element.appendChild(document.createElement("bdi")).textContent = name; }
    return element;
  }
  function fillCounts(i, counts) {
    var table = document.querySelector('table.counts[data-map="' + i + '"]');
    var used = {}, rowsUsed = {};
    Object.keys(counts).forEach(function (key) {
      var p = key.split(",");
      rowsUsed[p[0]] = true;
      used[p[1]] = true;
    });
    var states = data.states.map(function (s, k) { return k; }).filter(function (k) {
      return used[k];
    });
    var head = table.createTHead().insertRow();
    cell(head, "th", "table");
    states.forEach(function (k) { cell(head, "th", data.states[k], { "class": "num" }); });
    var body = table.createTBody();
    Object.keys(rowsUsed).map(Number).sort(function (a, b) { return a - b; }).forEach(function (t) {
      var row = body.insertRow();
      row.setAttribute("data-table", t ? data.tables[t] : "");
      // A table's name is a plugin's, any Unicode: isolated, as the page's own names are.
      named(cell(row, "td", t ? "" : "(no page)"), t ? data.tables[t] : "");
      states.forEach(function (k) {
        cell(row, "td", String(counts[t + "," + k] || 0),
             { "class": "num", "data-state": data.states[k] });
      });
    });
  }
  function draw(mode) {
    maps.forEach(function (v) {
      var codes = v[mode], palette = palettes[mode], cell = v.cell, cols = v.cols;
      var ctx = v.canvas.getContext("2d");
      var image = ctx.createImageData(v.canvas.width, v.canvas.height), px = image.data;
      var w = v.canvas.width, inner = cell >= 4 ? cell - 1 : cell;
      for (var f = 0; f < codes.length; f++) {
        var c = palette[codes[f]], x0 = (f % cols) * cell, y0 = Math.floor(f / cols) * cell;
        for (var y = 0; y < inner; y++) {
          var at = ((y0 + y) * w + x0) * 4;
          for (var x = 0; x < inner; x++, at += 4) {
            px[at] = c[0]; px[at + 1] = c[1]; px[at + 2] = c[2]; px[at + 3] = 255;
          }
        }
      }
      ctx.putImageData(image, 0, 0);
      v.canvas.dataset.drawn = mode;
    });
    document.getElementById("legend-tables").hidden = mode !== "tables";
    document.getElementById("legend-states").hidden = mode !== "states";
  }
  var hover = document.getElementById("hover");
  maps.forEach(function (v) {
    v.canvas.addEventListener("mousemove", function (e) {
      // A map narrower than its frames (a phone's screen) is drawn scaled down.
      var sx = v.canvas.width / (v.canvas.clientWidth || v.canvas.width);
      var sy = v.canvas.height / (v.canvas.clientHeight || v.canvas.height);
      var f = Math.floor(e.offsetY * sy / v.cell) * v.cols + Math.floor(e.offsetX * sx / v.cell);
      if (f < 0 || f >= v.m.frames) { return; }
      hover.textContent = "node " + v.m.node + ", " + v.m.when + ": pfn " + (v.m.start + f) + ": ";
      named(hover, data.tables[v.tables[f]] || "no page");
      hover.appendChild(document.createTextNode(", " + data.states[v.states[f]]));
    });
  });
  document.querySelectorAll('#colour-by input').forEach(function (input) {
    input.addEventListener("change", function () { draw(input.value); });
  });
  document.querySelectorAll("[data-needs-script]").forEach(function (e) { e.hidden = false; });
  draw("tables");
  document.body.dataset.frameMaps = "drawn";
})();
"""
"""The page's one script: decode and draw the frame maps, count what it drew.

What only it makes work (the choice of colouring, the canvases, the counts
under each map, what pointing at a cell says) is written ``hidden`` and
``data-needs-script``; it shows them.
"""


# -- the retry curve ------------------------------------------------------------------------


_TOTAL: Final = "total (every table)"
"""How the retry curve names the sum of every table's (``None`` in its series)."""


def _curve_svg(series: Sequence[tuple[str | None, Sequence[int], str]], passes: int) -> str:
    width, height, left, bottom, top = 620, 240, 56, 28, 12
    peak = max((max(values, default=0) for _, values, _ in series), default=0)
    decades = max(1, math.ceil(math.log10(peak + 1)))
    plot_w, plot_h = width - left - 16, height - bottom - top

    def x(p: int) -> float:
        return left + plot_w * p / max(passes - 1, 1)

    def y(v: int) -> float:
        return top + plot_h * (1 - math.log10(v + 1) / decades)

    grid = []
    for d in range(decades + 1):
        yy = y(10**d if d else 0)
        grid.append(
            f'<line x1="{left}" x2="{width - 16}" y1="{yy:.1f}" y2="{yy:.1f}" stroke="#e3e5e8"/>'
            f'<text x="{left - 6}" y="{yy + 4:.1f}" text-anchor="end">{n(10**d if d else 0)}</text>'
        )
    for p in range(passes):
        grid.append(f'<text x="{x(p):.1f}" y="{height - 10}" text-anchor="middle">{p}</text>')
    lines = []
    for table, values, colour in series:
        name = _TOTAL if table is None else table
        points = " ".join(f"{x(p):.1f},{y(v):.1f}" for p, v in enumerate(values[:passes]))
        dash = ' stroke-dasharray="5 3"' if table is None else ""
        lines.append(
            f'<polyline fill="none" stroke="{colour}" stroke-width="2"{dash} points="{points}">'
            f"<title>{escape(isolated(name))}</title></polyline>"
        )
        for p, v in enumerate(values[:passes]):
            lines.append(
                f'<circle cx="{x(p):.1f}" cy="{y(v):.1f}" r="2.5" fill="{colour}">'
                f"<title>{escape(isolated(name))}, pass {p}: {n(v)}</title></circle>"
            )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="pages left to retry after each '
        f'pass, per table">{"".join(grid)}{"".join(lines)}'
        f'<text x="{left + plot_w / 2:.0f}" y="{height}" text-anchor="middle">pass</text></svg>'
    )


def _retries(report: Report, colours: Mapping[str, str]) -> str:
    totals = list(report.totals.retry_by_pass) or [0] * MAX_PASSES
    passes = len(totals)
    series: list[tuple[str | None, list[int], str]] = [
        (t.name, list(t.retry_by_pass), colours.get(t.name, "#999"))
        for t in report.by_aops
        if any(t.retry_by_pass)
    ]
    series.append((None, totals, "#1d1f24"))  # the sum: no table's, whatever a table is named
    head = "".join(f'<th class="num">{p}</th>' for p in range(passes))
    rows = "".join(
        tag(
            "tr",
            tag(
                "td",
                swatch(colour)
                + (
                    "<b>total</b> <span class=muted>(every table)</span>"
                    if name is None
                    else name_html(name)
                ),
                class_="key nowrap",  # the table scrolls on a narrow screen: names stay whole
            )
            + "".join(tag("td", n(v), class_="num", data_pass=p) for p, v in enumerate(values)),
            class_="total" if name is None else None,
            data_table="" if name is None else name,
        )
        for name, values, colour in series
    )
    calm = [t.name for t in report.by_aops if t.pages and not any(t.retry_by_pass)]
    note = (
        f"<p class=muted>No page of {', '.join(map(name_html, calm))} was ever left to retry.</p>"
        if calm
        else ""
    )
    return (
        '<section id="retries">\n<h2>The retry curve</h2>\n'
        "<p>After each pass of <code>migrate_pages</code>, the pages it left to retry "
        "(<code>-EAGAIN</code>: the kernel's <code>retry</code>), summed over its "
        f"{n(report.totals.calls)} calls, on a log scale. Under the V4 semantics each call "
        "gets one new page, so a busy page near the head of the list is retried in pass 0 "
        "of call after call and counts each time; from 2.6.16 a call gets a chunk of 257.</p>\n"
        f"{_curve_svg(series, passes)}\n"
        f'<div class="wide"><table id="retry-table"><thead><tr><th>pass</th>{head}</tr></thead>'
        f"<tbody>{rows}</tbody></table></div>{note}\n</section>\n"
    )


# -- the verdict ---------------------------------------------------------------------------


def _page_groups(title: str, ident: str, pages: Sequence[PageOutcome], key: str) -> str:
    if not pages:
        return f'<h3>{title}</h3><p class=muted id="{ident}">none</p>'
    groups: dict[tuple[str, str, str], list[PageOutcome]] = {}
    for page in pages:
        groups.setdefault((page.table, page.errno, page.reason), []).append(page)
    items = []
    ordered = sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    for (table, errno, reason), group in ordered[:GROUPS_LISTED]:
        shown = group[:PAGES_LISTED]
        names = "".join(
            "<span>"
            + escape(f"pfn {p.pfn} · {p.where()}")
            + ("" if p.pass_ is None else f" · pass {p.pass_}")
            + "</span>"
            for p in shown
        )
        more = (
            f"<span>… and {n(len(group) - len(shown))} more (the JSON report lists every "
            "one)</span>"
            if len(group) > len(shown)
            else ""
        )
        items.append(
            f'<li data-table="{escape(table)}" data-errno="{escape(errno)}" '
            f'data-pages="{len(group)}"><b>{name_html(table)}</b>: {n(len(group))} '
            f"page{'s' if len(group) != 1 else ''}, <code>{escape(errno)}</code>: "
            f'{escape(reason)}<div class="pagelist">{names}{more}</div></li>'
        )
    rest = ordered[GROUPS_LISTED:]
    if rest:
        pages_left_out = sum(len(group) for _, group in rest)
        items.append(
            f'<li class="muted" data-groups="{len(rest)}" data-pages="{pages_left_out}">'
            f"… and {n(len(rest))} more reasons, for {n(pages_left_out)} "
            f"page{'s' if pages_left_out != 1 else ''} (the JSON report lists every one)</li>"
        )
    return f'<h3>{title}</h3><ul class="pages" id="{ident}">{"".join(items)}</ul>'


def _problems_html(problems: Sequence[str], count: int) -> str:
    """The list items of a proof's (or the read-back's) problems, and how many it leaves out.

    A report names the first :data:`~fsaops.proofs.MAX_PROBLEMS` of them;
    ``count`` is how many pages were found wrong.
    """
    items = "".join(f"<li>{escape(p)}</li>" for p in problems)
    unlisted = count - len(problems)
    if problems and unlisted > 0:
        items += (
            f'<li class="muted" data-unlisted="{unlisted}">… and {n(unlisted)} more '
            f"(the report names the first {n(len(problems))})</li>"
        )
    return items


def _verdict(report: Report) -> str:
    parts = ['<section id="verdict">\n<h2>The verdict</h2>\n']
    parts.append(f'<p class="banner {tone(report)}">{escape(verdict(report))}</p>')
    rows = []
    proofs = report.proofs
    if proofs is not None:
        for proof, what in (
            (proofs.placement, "every page the engine finished with is where its account says"),
            (
                proofs.durability,
                "after a sync and a dropped cache, every page reads back from its backing store",
            ),
        ):
            problems = _problems_html(proof.problems, proof.failures)
            only = ", ".join(f"{name_html(t)} {n(c)}" for t, c in sorted(proof.memory_only.items()))
            rows.append(
                tag(
                    "tr",
                    tag("td", f"<b>{proof.name}</b>")
                    + tag("td", n(proof.checked), class_="num")
                    + tag("td", n(proof.failures), class_="num")
                    + tag(
                        "td",
                        ("holds: " if proof.holds else "<b>FAILS</b>: ")
                        + escape(what)
                        + (f"<br><span class=muted>in memory only: {only}</span>" if only else "")
                        + (f"<ul>{problems}</ul>" if problems else ""),
                    ),
                    data_proof=proof.name,
                )
            )
    integrity = report.integrity
    problems = _problems_html(integrity.problems, integrity.lost + integrity.corrupted)
    rows.append(
        tag(
            "tr",
            tag("td", "<b>integrity</b>")
            + tag("td", n(integrity.checked), class_="num")
            + tag("td", n(integrity.lost + integrity.corrupted), class_="num")
            + tag(
                "td",
                f"{n(integrity.lost)} lost, {n(integrity.corrupted)} corrupted"
                + (
                    f" ({n(integrity.not_cached)} execute in place: on their device)"
                    if integrity.not_cached
                    else ""
                )
                + (f"<ul>{problems}</ul>" if problems else ""),
            ),
            data_proof="integrity",
        )
    )
    invariants = "".join(f"<li>{escape(p)}</li>" for p in report.invariants[:INVARIANTS_LISTED])
    unlisted = len(report.invariants) - INVARIANTS_LISTED
    if unlisted > 0:
        invariants += (
            f'<li class="muted" data-invariants="{unlisted}">… and {n(unlisted)} more '
            "(the JSON report lists every one)</li>"
        )
    rows.append(
        tag(
            "tr",
            tag("td", "<b>invariants</b>")
            + tag("td", "")
            + tag("td", n(len(report.invariants)), class_="num")
            + tag("td", f"<ul>{invariants}</ul>" if invariants else "all hold"),
            data_proof="invariants",
        )
    )
    parts.append(
        '<div class="wide"><table id="proofs"><thead><tr><th>check</th>'
        '<th class="num">pages</th><th class="num">wrong</th><th>what it says</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>\n"
    )
    checked = (
        f"every migratepage call ({n(report.watched_calls)})"
        if report.watched
        else "bad returns only (--strict looks at every call)"
    )
    # A finding loses nothing by itself; the run may have lost or broken something else.
    head = (
        "Wrong, but nothing lost"
        if report.status in ("ok", "findings")
        else "Wrong, besides the run's failures"
    )
    if report.findings:
        frows = "".join(
            tag(
                "tr",
                tag("td", name_html(f.table))
                + tag("td", escape(f.kind))
                + tag("td", n(f.count), class_="num")
                + tag("td", escape(", ".join(f"pfn {p}" for p in f.pages)), class_="mono")
                + tag("td", escape(f.example)),
                data_table=f.table,
                data_kind=f.kind,
            )
            for f in report.findings
        )
        parts.append(
            f"<h3>Findings</h3><p>{head}; looked for: {checked}.</p>"
            '<table id="findings"><thead><tr><th>table</th><th>kind</th>'
            '<th class="num">pages</th><th>first pages</th><th>example</th></tr></thead>'
            f"<tbody>{frows}</tbody></table>"
        )
    elif report.watched and not report.watched_calls:
        parts.append(
            '<h3>Findings</h3><p id="findings">None, but no page reached a migratepage: '
            "nothing was looked at.</p>"
        )
    elif report.watched and report.status not in ("ok", "findings"):
        # As the terminal says it: no finding is no word on what made the run fail.
        parts.append(
            f'<h3>Findings</h3><p id="findings">None; looked for: {checked}; but the run '
            "failed: what broke is not of a kind a finding names.</p>"
        )
    else:
        parts.append(f'<h3>Findings</h3><p id="findings">None; looked for: {checked}.</p>')
    parts.append(_page_groups("Pages that failed", "pages-failed", report.pages_failed, "errno"))
    parts.append(_page_groups("Pages left behind", "pages-left", report.pages_left, "reason"))
    parts.append("\n</section>\n")
    return "".join(parts)


# -- the trace and the counters ----------------------------------------------------------------


def _trace(steps: Sequence[TraceStep]) -> str:
    from fsaops.trace import describe, fold, span

    rows = []
    for run in fold(steps):
        step, last = run[0], run[-1]
        head, details = describe(step)
        if len(run) > 1:
            details += f" ({len(run)} tries)"
        rows.append(
            tag(
                "tr",
                tag("td", span(step.tick, last.tick), class_="num")
                + tag("td", span(step.call, last.call), class_="num")
                + tag(
                    "td",
                    "" if step.step == "end" else span(step.pass_, last.pass_),
                    class_="num",
                )
                + tag("td", escape(head), class_="mono")
                + tag("td", escape(details)),
                data_step=step.step,
                data_steps=len(run),
            )
        )
    first = steps[0]
    return (
        '<section id="trace">\n'
        f"<h2>The journey of pfn {first.pfn} ({escape(str(first.page))})</h2>\n"
        '<table id="trace-table"><thead><tr><th class="num">tick</th><th class="num">call</th>'
        '<th class="num">pass</th><th>step</th><th>what happened</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>\n</section>\n"
    )


def _counters(report: Report) -> str:
    vm = "".join(
        tag(
            "tr",
            tag("td", escape(k), class_="mono") + tag("td", n(v), class_="num"),
            data_counter=k,
        )
        for k, v in report.vmstat.items()
    )
    io = ""
    if report.proofs is not None:
        io = ", ".join(f"{escape(k)} {n(v)}" for k, v in report.proofs.io.items())
    t = report.totals
    ticks = report.ticks
    return (
        '<section id="counters">\n<h2>Counters</h2>\n'
        f"<p>The engine made {n(t.passes)} passes in {n(t.calls)} <code>migrate_pages</code> "
        f"calls; migration took {n(ticks.get('migration', 0))} ticks of simulated time "
        f"(it started at tick {n(ticks.get('build', 0))}; the run ended at "
        f"{n(ticks.get('total', 0))}).</p>"
        "<p>The kernel's counters over migration and the in-memory read-back "
        f"(<code>vmstat</code>); the proofs' own work apart: {io or 'none'}.</p>"
        f'<table id="vmstat"><tbody>{vm}</tbody></table>\n</section>\n'
    )


# -- the page --------------------------------------------------------------------------------


def table_colours(names: Iterable[str]) -> dict[str, str]:
    """A colour for each table name, in order (the palette repeats after twenty)."""
    return {name: TABLE_COLOURS[i % len(TABLE_COLOURS)] for i, name in enumerate(names)}


def render_failure(source: str, status: str, error: str, *, command: str = "migrate") -> str:
    """The page of a command that could not finish: its status and the error, as stderr said.

    A run that ends in a kernel BUG, a broken invariant under
    ``CONFIG_DEBUG_VM``, a time limit, a plugin that fails or bad input
    has no report to draw (nor a ``diff`` given a file that is no report a
    comparison); its page says so, so that a page left from an earlier
    command never stands for this one.  ``source``: what the command read
    (the scenario; for ``diff``, the two reports).
    """
    what = "the comparison" if command == "diff" else "the run"
    body = (
        f"<h1>fsaops {escape(command)}: {name_html(source)}</h1>\n"
        f'<p class="banner bad" id="status" data-status="{escape(status)}">'
        f"{escape(status.upper())}: {what} did not finish, so it has no report</p>\n"
        f'<pre id="error">{escape(error)}</pre>\n'
    )
    return document(f"fsaops {command}: {isolated(source)}: {status}", body)


def _proofs_failed(report: Report) -> str:
    """``; durability fails for 28``: the proofs that failed, for the banner.

    The read-back's counts alone say ``0 lost`` of a run whose disk lost
    what its pages held.
    """
    proofs = report.proofs
    if proofs is None:
        return ""
    return "".join(
        f"; {name} fails for {n(proof.failures)}"
        for name, proof in (("placement", proofs.placement), ("durability", proofs.durability))
        if proof.failures
    )


def render_report(report: Report, frames: FrameMaps | None = None) -> str:
    """The report of a run as one self-contained HTML page.

    ``frames`` (taken by a :class:`~fsaops.frames.FrameMaps` during the
    run) adds the frame maps; without it the page has none.
    """
    names = list(frames.tables[1:]) if frames is not None else []
    names += [t.name for t in report.by_aops if t.name not in names]
    colours = table_colours(names)
    banner = tone(report)
    said = headline(report).upper()
    heading = (
        f"<h1>fsaops migrate: {name_html(report.source)}</h1>\n"
        f'<p class="muted">seed {report.seed} · semantics '
        f"{escape(str(report.config.get('kernel', {}).get('semantics', '?')))} · fsaops "
        f"{escape(report.version)}</p>\n"
        f'<p class="banner {banner}" id="status" '
        f'data-status="{escape(report.status)}">{escape(said)}: '
        f"{n(report.totals.moved)} of {n(report.totals.pages)} pages moved, "
        f"{n(report.totals.failed)} failed, {n(report.totals.not_migrated)} left; "
        f"{n(report.integrity.lost)} lost, {n(report.integrity.corrupted)} corrupted"
        f"{escape(_proofs_failed(report))}</p>\n"
    )
    links = [
        ("scenario", "Scenario"),
        ("tables", "Tables"),
        *([("frames", "Frame maps")] if frames is not None else []),
        ("retries", "Retry curve"),
        ("verdict", "Verdict"),
        *([("trace", "Trace")] if report.trace else []),
        ("counters", "Counters"),
    ]
    nav = "<nav>" + "".join(f'<a href="#{a}">{t}</a>' for a, t in links) + "</nav>\n"
    body = [heading, nav, _scenario(report), _tables(report, colours)]
    data = script = ""
    if frames is not None:
        from fsaops.frames import ALPHABET

        maps, data = _frame_maps(frames, colours)
        body.append(maps)
        script = FRAME_SCRIPT.replace("ALPHABET", dumps(ALPHABET))
    body += [_retries(report, colours), _verdict(report)]
    if report.trace:
        body.append(_trace(report.trace))
    body.append(_counters(report))
    title = f"fsaops migrate: {isolated(report.source)}, seed {report.seed}: {report.status}"
    return document(title, "".join(body), script=script, data=data)
