"""Two runs side by side: ``fsaops diff A.json B.json [--html FILE]``.

The two files are reports written by ``fsaops migrate --json``.
:func:`load_report` reads one and refuses anything else (not JSON, not an
object, an error envelope, a report of another ``schema``);
:func:`compare` lines the two up, section by section: first where the
scenarios differ (every key of the scenario, the seed, the plugins and
their versions, the semantics), then every operations table of either run
(pages moved, failed and left, how they moved, their errors and reasons,
the retry curve), the totals, the kernel's counters (``vmstat``) and the
verdict.  Each row holds the two values and says whether they differ.
:func:`render` draws the comparison for a terminal, :func:`render_html` as
a self-contained page.
"""

from __future__ import annotations

import json
import os
import stat
from html import escape
from typing import TYPE_CHECKING, Any, Final

import attrs
from rich.console import Console

from fsaops.errors import MAX_SHOWN, FsaopsError, printable
from fsaops.status import SCHEMA

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "MAX_REPORT_BYTES",
    "BadReport",
    "Comparison",
    "Row",
    "Section",
    "compare",
    "load_report",
    "render",
    "render_html",
]

MAX_REPORT_BYTES: Final = 512 << 20
"""The largest report ``fsaops diff`` reads (a run of millions of pages writes less)."""

_NEEDED: Final = {
    "totals": dict,
    "by_aops": dict,
    "vmstat": dict,
    "config": dict,
    "seed": int,
    "source": str,
    "status": str,
}
"""The fields of a report ``fsaops diff`` needs, and their JSON types."""

_OPTIONAL: Final = {
    "integrity": dict,
    "proofs": dict,
    "invariants": list,
    "findings": list,
    "plugins": list,
    "pages_failed": list,
    "pages_left": list,
    "workload": dict,
}
"""Fields a report may lack (an older one), and their JSON types when it has them."""

_TABLE_COUNTS: Final = ("pages", "moved", "failed", "not_migrated")

VALUE_WIDTH: Final = 36
"""Columns of a terminal a value gets before it is folded."""


class BadReport(FsaopsError):
    """A file given to ``fsaops diff`` is not a report it can read."""


def load_report(path: str) -> dict[str, Any]:
    """Read a report written by ``fsaops migrate --json``.

    Raises:
        BadReport: the file cannot be read, is not a regular file, is not
            JSON, is not a report (an error envelope, another program's
            JSON), or has a ``schema`` other than :data:`~fsaops.status.SCHEMA`;
            the message names the file and says which.
    """
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise BadReport(f"{path}: no such file") from None
    except OSError as exc:
        raise BadReport(f"{path}: cannot read it: {exc.strerror or exc}") from None
    if not stat.S_ISREG(info.st_mode):
        raise BadReport(f"{path}: not a regular file; expected a report of fsaops migrate --json")
    if info.st_size > MAX_REPORT_BYTES:
        raise BadReport(f"{path}: {info.st_size:,} bytes is too large for a report")
    try:
        with open(path, "rb") as stream:
            raw = stream.read(MAX_REPORT_BYTES + 1)
        data = _inert(
            json.loads(raw.decode("utf-8"), parse_constant=_not_json, parse_int=_report_int)
        )
    except OSError as exc:
        raise BadReport(f"{path}: cannot read it: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise BadReport(f"{path}: not a report: not UTF-8 text") from None
    except _TooLarge as exc:
        raise BadReport(f"{path}: not a report: {exc}") from None
    except (ValueError, RecursionError) as exc:
        raise BadReport(f"{path}: not a report: not JSON ({printable(str(exc)[:200])})") from None
    if not isinstance(data, dict):
        what = _JSON_NAMES.get(type(data), type(data).__name__)
        raise BadReport(f"{path}: not a report: {what}, not a JSON object")
    schema = data.get("schema")
    if "schema" not in data:
        raise BadReport(f"{path}: not a report of fsaops migrate --json: it has no schema")
    if type(schema) is not int or schema != SCHEMA:
        raise BadReport(
            f"{path}: a report of schema {json.dumps(schema)[:40]}; this fsaops reads schema "
            f"{SCHEMA} (the report was written by another version of fsaops)"
        )
    if "totals" not in data and "error" in data:
        raise BadReport(
            f"{path}: not a report: the JSON of a command that could not finish "
            f"(status {str(data.get('status'))[:40]}: {str(data['error'])[:300]})"
        )
    fields = [(key, kind, True) for key, kind in _NEEDED.items()]
    fields += [(key, kind, False) for key, kind in _OPTIONAL.items()]
    for key, kind, needed in fields:
        value = data.get(key)
        if (needed or value is not None) and type(value) is not kind:
            raise BadReport(
                f"{path}: not a report of fsaops migrate --json: "
                f"{key!r} is {'missing' if key not in data else 'not a JSON ' + _json_type(kind)}"
            )
    proofs = data.get("proofs") or {}
    if any(not isinstance(proofs.get(n), dict | None) for n in ("placement", "durability")):
        raise BadReport(f"{path}: not a report of fsaops migrate --json: 'proofs' is malformed")
    for name, entry in data["by_aops"].items():
        if not isinstance(entry, dict) or any(type(entry.get(k)) is not int for k in _TABLE_COUNTS):
            raise BadReport(f"{path}: not a report: by_aops[{name!r}] has no page counts")
    return data


_MAX_DIGITS: Final = 20
"""Digits of the largest number a report holds (a seed or a count below 2**64)."""


class _TooLarge(ValueError):
    """A JSON integer no report holds."""


def _report_int(token: str) -> int:
    """A JSON integer, refused when no report could hold it (and its difference not print)."""
    if len(token.lstrip("-")) > _MAX_DIGITS:
        raise _TooLarge(f"a number of {len(token.lstrip('-')):,} digits is no count or seed")
    return int(token)


def _not_json(token: str) -> None:
    """``NaN`` and ``Infinity`` are Python's, not JSON's: no report holds them."""
    raise ValueError(f"{token} is not a JSON value")


_JSON_NAMES: Final = {
    type(None): "null",
    bool: "true or false",
    int: "a number",
    float: "a number",
    str: "a string",
    list: "an array",
}


def _json_type(kind: type) -> str:
    return {dict: "object", int: "integer", str: "string"}.get(kind, kind.__name__)


@attrs.frozen
class Row:
    """One thing the two runs are compared on.

    Attributes:
        name: what it is (``moved``, ``via migratepage``, ``kernel.semantics``).
        a: its value in the first run, or ``None`` where that run has none.
        b: its value in the second run.
        marked: whether the row differs, when its values cannot say (two
            counts of pages only one run has: 20 and 20 differ); ``None``:
            they say.
    """

    name: str
    a: Any
    b: Any
    marked: bool | None = None

    @property
    def differs(self) -> bool:
        """Whether the two values differ (a count one run lacks is 0 there), or ``marked``."""
        if self.marked is not None:
            return self.marked
        if self.delta is not None:
            return self.delta != 0
        return bool(self.a != self.b)

    @property
    def delta(self) -> int | None:
        """``b - a`` for two counts (a missing one counts 0), else ``None``."""
        a = 0 if self.a is None else self.a
        b = 0 if self.b is None else self.b
        if type(a) is int and type(b) is int and (self.a is not None or self.b is not None):
            return b - a
        return None


@attrs.frozen
class Section:
    """A group of rows: the scenario, one table, the totals, ``vmstat``, the verdict.

    Attributes:
        kind: ``scenario``, ``table``, ``totals``, ``vmstat`` or ``verdict``.
        title: its heading (a table's name for a table; ``A ↔ B`` for two
            tables of one filesystem that only one run each has, such as
            ``ext3_ordered_aops`` and ``ext3_journalled_aops``).
        rows: the rows (for the scenario, only those that differ).
        only: ``a`` or ``b`` when the section exists in one run only (a
            table the other run had no page of), else ``None``.
        tables: the table's name in each run (``None`` where it has none).
    """

    kind: str
    title: str
    rows: tuple[Row, ...]
    only: str | None = None
    tables: tuple[str | None, str | None] = (None, None)

    @property
    def differs(self) -> bool:
        """Whether any row differs."""
        return any(row.differs for row in self.rows)


@attrs.frozen
class Comparison:
    """Two reports compared (:func:`compare`).

    Attributes:
        a, b: how the two are named (their file names).
        sections: the scenario's differences first, then each table, the
            totals, ``vmstat`` and the verdict.
    """

    a: str
    b: str
    sections: tuple[Section, ...]

    @property
    def differs(self) -> bool:
        """Whether the runs differ anywhere."""
        return any(section.differs for section in self.sections)

    def section(self, kind: str, title: str | None = None) -> Section:
        """The section of ``kind`` (and ``title``, for a table)."""
        for section in self.sections:
            if section.kind == kind and (title is None or section.title == title):
                return section
        raise KeyError((kind, title))


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """``{"kernel": {"nodes": 2}}`` → ``{"kernel.nodes": 2}``; lists of objects by index."""
    if isinstance(value, dict):
        found: dict[str, Any] = {}
        for key, item in value.items():
            found |= _flatten(item, f"{prefix}.{key}" if prefix else str(key))
        return found
    if isinstance(value, list) and any(isinstance(v, dict) for v in value):
        found = {}
        for i, item in enumerate(value):
            found |= _flatten(item, f"{prefix}[{i}]")
        return found
    if isinstance(value, list):
        return {prefix: ", ".join(map(str, value))}
    return {prefix: value}


def _plugins(report: Mapping[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for plugin in report.get("plugins") or []:
        if isinstance(plugin, dict) and "name" in plugin:
            found[f"plugin {plugin['name']}"] = (
                f"{plugin.get('distribution', '?')} {plugin.get('version', '?')}"
            )
    return found


def _scenario(a: Mapping[str, Any], b: Mapping[str, Any]) -> Section:
    def facts(report: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "source": report["source"],
            "seed": report["seed"],
            "fsaops": report.get("fsaops"),
            **_plugins(report),
            **_flatten(report["config"]),
        }

    fa, fb = facts(a), facts(b)
    keys = list(dict.fromkeys([*fa, *fb]))
    rows = tuple(Row(k, fa.get(k), fb.get(k)) for k in keys if fa.get(k) != fb.get(k))
    return Section("scenario", "scenario", rows)


def _counts(entry: Mapping[str, Any], field: str, label: str) -> dict[str, Any]:
    value = entry.get(field)
    if not isinstance(value, dict):
        return {}
    return {f"{label} {k}": v for k, v in value.items()}


def _table_rows(ea: Mapping[str, Any], eb: Mapping[str, Any]) -> tuple[Row, ...]:
    names = {"not_migrated": "left"}
    rows = [Row(k, ea.get(k), eb.get(k)) for k in ("filesystem", "mode")]
    # A table without migratepage takes the engine's generic fallback.
    rows.append(
        Row(
            "migratepage",
            (ea.get("migratepage") or "none: generic fallback") if ea else None,
            (eb.get("migratepage") or "none: generic fallback") if eb else None,
        )
    )
    rows += [Row(names.get(k, k), ea.get(k), eb.get(k)) for k in _TABLE_COUNTS]
    for field, label in (("via", "via"), ("errors", "errno"), ("reasons", "reason")):
        ca, cb = _counts(ea, field, label), _counts(eb, field, label)
        rows += [Row(k, ca.get(k), cb.get(k)) for k in sorted(set(ca) | set(cb))]
    ra, rb = ea.get("retry_by_pass"), eb.get("retry_by_pass")
    if isinstance(ra, list) or isinstance(rb, list):
        rows.append(Row("retry after each pass", _curve(ra), _curve(rb)))
    return tuple(rows)


def _curve(values: object) -> str | None:
    if not isinstance(values, list):
        return None
    return " ".join(str(v) for v in values)


def _summed(report: Mapping[str, Any], field: str) -> dict[str, int]:
    total: dict[str, int] = {}
    for entry in report["by_aops"].values():
        value = entry.get(field)
        if isinstance(value, dict):
            for k, v in value.items():
                if type(v) is int:
                    total[k] = total.get(k, 0) + v
    return total


def _totals(a: Mapping[str, Any], b: Mapping[str, Any]) -> Section:
    ta, tb = a["totals"], b["totals"]
    names = {"not_migrated": "left"}
    keys = [k for k in (*_TABLE_COUNTS, "passes", "calls") if k in ta or k in tb]
    rows = [Row(names.get(k, k), ta.get(k), tb.get(k)) for k in keys]
    for field, label in (("via", "via"), ("errors", "errno")):
        ca = {f"{label} {k}": v for k, v in _summed(a, field).items()}
        cb = {f"{label} {k}": v for k, v in _summed(b, field).items()}
        rows += [Row(k, ca.get(k), cb.get(k)) for k in sorted(set(ca) | set(cb))]
    if "retry_by_pass" in ta or "retry_by_pass" in tb:
        rows.append(
            Row(
                "retry after each pass",
                _curve(ta.get("retry_by_pass")),
                _curve(tb.get("retry_by_pass")),
            )
        )
    return Section("totals", "total", tuple(rows))


def _vmstat(a: Mapping[str, Any], b: Mapping[str, Any]) -> Section:
    va, vb = a["vmstat"], b["vmstat"]
    return Section(
        "vmstat", "vmstat", tuple(Row(k, va.get(k), vb.get(k)) for k in sorted(set(va) | set(vb)))
    )


def _verdict(a: Mapping[str, Any], b: Mapping[str, Any]) -> Section:
    def facts(report: Mapping[str, Any]) -> dict[str, Any]:
        integrity = report.get("integrity") or {}
        proofs = report.get("proofs") or {}
        found: dict[str, Any] = {"status": report["status"]}
        for key in ("checked", "lost", "corrupted"):
            found[f"integrity {key}"] = integrity.get(key)
        for name in ("placement", "durability"):
            proof = proofs.get(name) or {}
            found[f"{name} failures"] = proof.get("failures")
        found["invariants broken"] = len(report.get("invariants") or [])
        found["findings"] = len(report.get("findings") or [])
        return found

    fa, fb = facts(a), facts(b)
    rows = [Row(k, fa[k], fb[k]) for k in fa]
    # What the counts above cannot tell apart: which finding, on how many
    # pages; which pages failed or stayed; which invariant, which problem.
    kinds_a, kinds_b = _finding_counts(a), _finding_counts(b)
    for key in sorted(kinds_a.keys() | kinds_b.keys()):
        rows.append(Row(f"finding {key}", kinds_a.get(key, 0), kinds_b.get(key, 0)))
    for label, key in (
        ("failed pages", "pages_failed"),
        ("pages left behind", "pages_left"),
        ("broken invariants", "invariants"),
        ("integrity problems", "integrity"),
    ):
        set_a, set_b = _named(a, key), _named(b, key)
        only_a, only_b = len(set_a - set_b), len(set_b - set_a)
        if only_a or only_b:
            rows.append(Row(f"{label} the other run does not have", only_a, only_b, True))
    return Section("verdict", "verdict", tuple(rows))


def _finding_counts(report: Mapping[str, Any]) -> dict[str, int]:
    """Pages of each finding, keyed ``KIND (TABLE)``."""
    counts: dict[str, int] = {}
    for finding in report.get("findings") or []:
        if isinstance(finding, dict):
            key = f"{finding.get('kind')} ({finding.get('table')})"
            count = finding.get("count")
            counts[key] = counts.get(key, 0) + (count if type(count) is int else 1)
    return counts


def _named(report: Mapping[str, Any], key: str) -> set[str]:
    """What a report lists under ``key``, each named so that two runs can be compared."""
    if key in ("pages_failed", "pages_left"):
        return _page_names(report, key)
    if key == "integrity":
        return _texts((report.get("integrity") or {}).get("problems"))
    return _texts(report.get(key))


def _page_names(report: Mapping[str, Any], key: str) -> set[str]:
    """The pages a report lists under ``key``, by what they are (not their frame), and why."""
    names: set[str] = set()
    for page in report.get(key) or []:
        if not isinstance(page, dict):
            continue
        if page.get("file") is not None:
            name = f"{page.get('file')} page {page.get('index')}"
        elif page.get("pid") is not None:
            name = f"process {page.get('pid')} at {page.get('address')}"
        else:
            name = f"pfn {page.get('pfn')}"
        names.add(f"{name}: {page.get('errno')} in {page.get('table')}: {page.get('reason')}")
    return names


def _texts(values: object) -> set[str]:
    return {str(v) for v in values} if isinstance(values, list) else set()


def _pairs(
    tables_a: Mapping[str, Any], tables_b: Mapping[str, Any]
) -> list[tuple[str | None, str | None]]:
    """The tables to put side by side: by name, else the one table of a filesystem each run has.

    A table only one run has is paired with the other run's only unpaired
    table of the same filesystem (ext3 ``ordered`` in one, ``journal`` in the
    other); anything else stands alone.
    """
    pairs: list[tuple[str | None, str | None]] = [
        (name, name) for name in tables_a if name in tables_b
    ]
    alone_a = [name for name in tables_a if name not in tables_b]
    alone_b = [name for name in tables_b if name not in tables_a]

    def filesystem(entry: Any) -> object:
        return entry.get("filesystem") if isinstance(entry, dict) else None

    for name in list(alone_a):
        fs = filesystem(tables_a[name])
        mine = [n for n in alone_a if filesystem(tables_a[n]) == fs]
        theirs = [n for n in alone_b if filesystem(tables_b[n]) == fs]
        if fs is not None and len(mine) == 1 and len(theirs) == 1:
            pairs.append((name, theirs[0]))
            alone_a.remove(name)
            alone_b.remove(theirs[0])
    pairs += [(name, None) for name in alone_a]
    pairs += [(None, name) for name in alone_b]
    return sorted(pairs, key=lambda pair: str(pair[0] if pair[0] is not None else pair[1]))


def compare(
    a: Mapping[str, Any], b: Mapping[str, Any], *, names: tuple[str, str] = ("A", "B")
) -> Comparison:
    """Line two reports (as :func:`load_report` reads them) up, section by section."""
    sections = [_scenario(a, b)]
    tables_a, tables_b = a["by_aops"], b["by_aops"]
    for name_a, name_b in _pairs(tables_a, tables_b):
        ea = {} if name_a is None else tables_a[name_a]
        eb = {} if name_b is None else tables_b[name_b]
        only = "a" if name_b is None else "b" if name_a is None else None
        title = _cut(str(name_a if name_a == name_b or name_b is None else name_b))
        if name_a is not None and name_b is not None and name_a != name_b:
            title = f"{_cut(name_a)} ↔ {_cut(name_b)}"
        sections.append(Section("table", title, _table_rows(ea, eb), only, (name_a, name_b)))
    sections += [_totals(a, b), _vmstat(a, b), _verdict(a, b)]
    return Comparison(names[0], names[1], tuple(sections))


def _inert(value: Any) -> Any:
    """``value`` (parsed JSON) with every string and key :func:`~fsaops.errors.printable`.

    A report is a file anyone may have written: a terminal escape sequence
    in a table's name must not reach the terminal (or the page).
    """
    if isinstance(value, str):
        return printable(value)
    if isinstance(value, list):
        return [_inert(item) for item in value]
    if isinstance(value, dict):
        return {printable(key): _inert(item) for key, item in value.items()}
    return value


def _cut(name: str, limit: int = MAX_SHOWN) -> str:
    """A table's name as a title shows it: a name longer than ``limit`` is cut, its length said."""
    if len(name) <= limit:
        return name
    return f"{name[:limit]}... ({len(name):,} characters)"


# -- the terminal form ----------------------------------------------------------------------------


def _shown(value: Any) -> str:
    if value is None:
        return "—"
    if type(value) is int:
        return f"{value:,}"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _delta(row: Row) -> str:
    delta = row.delta
    if delta is None or not row.differs or row.marked is not None:
        return ""
    return f"{delta:+,}"


def render(comparison: Comparison, console: Console) -> None:
    """Print the comparison: the scenario's differences, then each section, differences marked."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    a, b = comparison.a, comparison.b
    head = Text("fsaops diff", style="bold")
    head.append(f"  A: {a}  B: {b}\n", style="cyan")
    head.append(
        "the runs differ" if comparison.differs else "the runs are the same",
        style="bold yellow" if comparison.differs else "green",
    )
    console.print(head)
    for section in comparison.sections:
        if section.kind == "scenario":
            title = (
                "The scenarios differ in"
                if section.rows
                else "The scenarios are the same (every key, the seed, the plugins)"
            )
        elif section.kind == "table":
            title = f"Table {section.title}"
            if section.only is not None:
                title += f" (only in {section.only.upper()}: the other run had no page of it)"
        else:
            title = {
                "totals": "Total",
                "vmstat": "vmstat (during migration)",
                "verdict": "Verdict",
            }[section.kind]
        table = Table(
            title=Text(title),  # a table's name, never markup
            title_justify="left",
            title_style="bold",
            box=box.SIMPLE_HEAD,
            pad_edge=False,
        )
        if not section.rows:
            console.print(Text(title, style="bold"))
            console.print()
            continue
        table.add_column("", overflow="fold", min_width=16)
        numeric = all(
            type(r.a) in (int, type(None)) and type(r.b) in (int, type(None)) for r in section.rows
        )
        for side in ("A", "B"):
            values = [_shown(r.a if side == "A" else r.b) for r in section.rows]
            table.add_column(
                side,
                justify="right" if numeric else "left",
                overflow="fold",
                min_width=min(max(len(v) for v in values), VALUE_WIDTH),
            )
        table.add_column("B - A", justify="right", no_wrap=True)
        for row in section.rows:
            style = "bold yellow" if row.differs else "dim"
            marker = "≠ " if row.differs else "  "
            table.add_row(
                Text(marker + row.name, style=style),
                Text(_shown(row.a), style="" if row.differs else "dim"),
                Text(_shown(row.b), style="" if row.differs else "dim"),
                Text(_delta(row), style=style),
            )
        console.print(table)


# -- the page --------------------------------------------------------------------------------------


def _html_section(section: Section) -> str:
    from fsaops.html_report import tag

    if section.kind == "scenario":
        title = "The scenarios differ in" if section.rows else "The scenarios are the same"
    elif section.kind == "table":
        title = escape(section.title)
        if section.only is not None:
            title += f" <span class=muted>(only in {section.only.upper()})</span>"
    else:
        title = {"totals": "Total", "vmstat": "vmstat (during migration)", "verdict": "Verdict"}[
            section.kind
        ]
    if not section.rows:
        return (
            f'<section data-kind="{section.kind}" data-differs="same"><h2>{title}</h2>'
            "<p class=muted>Every key, the seed and the plugins are the same.</p></section>\n"
        )
    rows = "".join(
        tag(
            "tr",
            tag("td", escape(row.name), class_="key")
            + tag("td", escape(_shown(row.a)), class_="only" if row.a is None else None)
            + tag("td", escape(_shown(row.b)), class_="only" if row.b is None else None)
            + tag("td", escape(_delta(row)), class_="delta"),
            class_="differs" if row.differs else "diff-same",
            data_row=row.name,
        )
        for row in section.rows
    )
    differs = "differs" if section.differs else "same"
    return (
        f'<section data-kind="{section.kind}" data-title="{escape(section.title)}" '
        f'data-differs="{differs}"><h2>{title}</h2>'
        '<table class="diff"><thead><tr><th class="key"></th><th>A</th><th>B</th>'
        f'<th class="delta">B &minus; A</th></tr></thead><tbody>{rows}</tbody></table></section>\n'
    )


def render_html(comparison: Comparison) -> str:
    """The comparison as one self-contained HTML page; differing rows are highlighted."""
    from fsaops.html_report import document

    verdict = "The runs differ" if comparison.differs else "The runs are the same"
    body = [
        f"<h1>fsaops diff</h1>\n<p>A: <code>{escape(comparison.a)}</code><br>"
        f"B: <code>{escape(comparison.b)}</code></p>\n"
        f'<p class="banner {"note" if comparison.differs else "ok"}" id="status">{verdict}: '
        "rows that differ are highlighted.</p>\n",
        *(_html_section(s) for s in comparison.sections),
    ]
    return document(f"fsaops diff: {comparison.a} and {comparison.b}", "".join(body))
