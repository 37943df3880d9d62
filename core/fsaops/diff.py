"""Two runs side by side: ``fsaops diff A.json B.json [--html FILE]``.

The two files are reports written by ``fsaops migrate --json``.
:func:`load_report` reads one and refuses anything else (not JSON, not an
object, an error envelope, a report of another ``schema``);
:func:`compare` lines the two up, section by section: first where the
scenarios differ (every key of the scenario, the seed, the plugins and
their versions, the semantics), then every operations table of either run
(pages moved, failed and left, how they moved, their errors and reasons,
the retry curve), the totals, the kernel's counters (``vmstat``), every
other field of the run (simulated time, the workload, the proofs' own
I/O, ...) and the verdict.  Each row holds the two values and says whether
they differ.  The few fields that are not compared are named, with why, in
:data:`NOT_COMPARED`; a field a report gains later is compared as it comes.
:func:`render` draws the comparison for a terminal, :func:`render_html` as
a self-contained page.
"""

from __future__ import annotations

import json
import math
import os
import re
import stat
from collections import Counter
from html import escape
from typing import TYPE_CHECKING, Any, Final

import attrs

from fsaops.config.schema import MAX_SEED
from fsaops.errors import MAX_REASON, MAX_SHOWN, FsaopsError, printable, shown_path
from fsaops.status import SCHEMA

if TYPE_CHECKING:
    from collections.abc import Mapping

    from rich.console import Console

    from fsaops.plugins import Registry

__all__ = [
    "MAX_REPORT_BYTES",
    "NOT_COMPARED",
    "BadReport",
    "Comparison",
    "Row",
    "Section",
    "compare",
    "load_report",
    "render",
    "render_html",
    "same",
    "shown",
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
    "mounts": list,
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
    if not path:  # no file at all, not a file that is not there
        raise BadReport("expected a report file name, got an empty string")
    named = shown_path(path)
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise BadReport(f"{named}: no such file") from None
    except OSError as exc:
        raise BadReport(f"{named}: cannot read it: {exc.strerror or exc}") from None
    if not stat.S_ISREG(info.st_mode):
        raise BadReport(f"{named}: not a regular file; expected a report of fsaops migrate --json")
    if info.st_size > MAX_REPORT_BYTES:
        raise BadReport(f"{named}: {info.st_size:,} bytes is too large for a report")
    try:
        with open(path, "rb") as stream:
            raw = stream.read(MAX_REPORT_BYTES + 1)
        data = _inert(
            json.loads(
                raw.decode("utf-8"),
                parse_constant=_not_json,
                parse_float=_report_float,
                parse_int=_report_int,
                object_pairs_hook=_once_each,
            )
        )
    except OSError as exc:
        raise BadReport(f"{named}: cannot read it: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise BadReport(f"{named}: not a report: not UTF-8 text") from None
    except (_TooLarge, _KeyTwice) as exc:
        raise BadReport(f"{named}: not a report: {exc}") from None
    except (ValueError, RecursionError) as exc:
        raise BadReport(f"{named}: not a report: not JSON ({printable(str(exc)[:200])})") from None
    if not isinstance(data, dict):
        what = _JSON_NAMES.get(type(data), type(data).__name__)
        raise BadReport(f"{named}: not a report: {what}, not a JSON object")
    schema = data.get("schema")
    if "schema" not in data:
        raise BadReport(f"{named}: not a report of fsaops migrate --json: it has no schema")
    if type(schema) is not int or schema != SCHEMA:
        raise BadReport(
            f"{named}: a report of schema {json.dumps(schema)[:40]}; this fsaops reads schema "
            f"{SCHEMA} (the report was written by another version of fsaops)"
        )
    if "totals" not in data and "error" in data:
        raise BadReport(
            f"{named}: not a report: the JSON of a command that could not finish "
            f"(status {str(data.get('status'))[:40]}: {str(data['error'])[:300]})"
        )
    fields = [(key, kind, True) for key, kind in _NEEDED.items()]
    fields += [(key, kind, False) for key, kind in _OPTIONAL.items()]
    for key, kind, needed in fields:
        value = data.get(key)
        if (needed or value is not None) and type(value) is not kind:
            raise BadReport(
                f"{named}: not a report of fsaops migrate --json: "
                f"{key!r} is {'missing' if key not in data else 'not a JSON ' + _json_type(kind)}"
            )
    proofs = data.get("proofs") or {}
    if any(not isinstance(proofs.get(n), dict | None) for n in ("placement", "durability")):
        raise BadReport(f"{named}: not a report of fsaops migrate --json: 'proofs' is malformed")
    if not 0 <= data["seed"] <= MAX_SEED:  # what migrate's seed may be (workload.seed, --seed)
        raise BadReport(
            f"{named}: not a report: 'seed' is {data['seed']}, not one of 0 to {MAX_SEED}"
        )
    for name, entry in data["by_aops"].items():
        if not isinstance(entry, dict) or any(type(entry.get(k)) is not int for k in _TABLE_COUNTS):
            raise BadReport(f"{named}: not a report: by_aops[{name!r}] has no page counts")
    wrong = _wrong_field(data) or _below_zero(data) or _contradiction(data)
    if wrong is not None:
        raise BadReport(f"{named}: not a report: {wrong}")
    _scenario_of_report(path, data["config"])
    return data


def _scenario_of_report(path: str, config: dict[str, Any]) -> None:
    """Refuse a report whose ``config`` is no scenario (a seed past 2**64 - 1, -5 pages, ...).

    ``fsaops migrate`` writes the scenario it ran, every default filled in:
    it passes every check a scenario file passes on its own.
    """
    from fsaops.config import structure_config
    from fsaops.errors import ConfigError

    named = shown_path(path)
    try:
        structure_config(config, "config")
    except ConfigError as exc:
        said = str(exc).removeprefix("config: ")
        raise BadReport(f"{named}: not a report: its config is no scenario's: {said}") from None


_REPORT_STATUSES: Final = ("ok", "data lost", "invariant broken", "findings")
"""The statuses of a run that finished (any other is said by an envelope, not a report)."""


def _contradiction(data: Mapping[str, Any]) -> str | None:
    """The first thing a report says against itself, said as a line; else ``None``.

    What ``fsaops migrate`` writes holds together by construction: its
    status is what its integrity, proofs and invariants come to, each total
    is its tables' sum, each page a table failed or left is listed once
    (``pages_failed``, ``pages_left``), a table's errors and reasons count
    those pages and its paths the pages it moved, and each plugin is named
    once.  A report that says otherwise was edited, or pasted together.
    """
    status = data["status"]
    if status not in _REPORT_STATUSES:
        return (
            f"status {_cut(json.dumps(status))} is none a run that finished has "
            f"({', '.join(_REPORT_STATUSES)})"
        )
    totals, tables = data["totals"], data["by_aops"]
    for key in _TABLE_COUNTS:
        if key in totals:
            summed = sum(entry[key] for entry in tables.values())
            if totals[key] != summed:
                return f"totals {key} is {totals[key]:,}, but its tables' add up to {summed:,}"
    for name, entry in tables.items():
        where = f"by_aops[{_cut(name)!r}]"
        stayed = entry["failed"] + entry["not_migrated"]
        for field, counted, what in (
            ("errors", stayed, "failed and left"),
            ("reasons", stayed, "failed and left"),
            ("via", entry["moved"], "moved"),
        ):
            if field in entry and sum(entry[field].values()) != counted:
                return (
                    f"{where} {field} add up to {sum(entry[field].values()):,}, but it has "
                    f"{counted:,} pages {what}"
                )
    for key, count in (("pages_failed", "failed"), ("pages_left", "not_migrated")):
        listed = data.get(key)
        if listed is not None and type(totals.get(count)) is int and len(listed) != totals[count]:
            return f"{key} lists {len(listed):,} pages, but totals {count} is {totals[count]:,}"
    names = [p.get("name") for p in data.get("plugins") or []]
    if None in names:
        return f"plugins[{names.index(None)}] has no name"
    twice = next((n for i, n in enumerate(names) if n in names[:i]), None)
    if twice is not None:
        return f"plugin {_cut(str(twice))!r} is listed twice"
    return _status_against_verdict(data)


def _status_against_verdict(data: Mapping[str, Any]) -> str | None:
    """A status other than the one the report's integrity, proofs and invariants come to."""
    integrity = data.get("integrity")
    if integrity is None:
        return None  # an older report: nothing to weigh the status against
    proofs = data.get("proofs") or {}
    placement, durability = (proofs.get(n) or {} for n in ("placement", "durability"))
    lost = bool(integrity.get("lost") or integrity.get("corrupted") or durability.get("failures"))
    broken = bool(data.get("invariants") or placement.get("failures"))
    status = data["status"]
    expected: tuple[str, ...]
    if lost:
        expected = ("data lost",)
    elif broken:
        expected = ("invariant broken",)
    elif data.get("findings"):
        expected = ("ok", "findings")  # findings fail a strict run only
    else:
        expected = ("ok",)
    if status in expected:
        return None
    if lost:
        why = "its read-back or durability proof lost pages"
    elif broken:
        why = "it has broken invariants or placement failures"
    else:
        why = "it lost nothing and broke nothing"
        if not data.get("findings"):
            why += ", with no findings"
    return f"status {status!r}, but {why}"


_TABLE_FIELDS: Final[dict[str, type]] = {
    "filesystem": str,
    "mode": str,
    "migratepage": str,
    "via": dict,
    "errors": dict,
    "reasons": dict,
    "retry_by_pass": list,
}
"""The other fields of a table ``fsaops diff`` reads, and their JSON types (each may be absent)."""

_MOUNT_FIELDS: Final[dict[str, type]] = {"fs": str, "mode": str, "block_size": int}
"""The fields of a mount ``fsaops diff`` reads, and their JSON types (each may be absent)."""

_MADE_FIELDS: Final[dict[str, type]] = {"filesystem": str, "mode": str, "block_size": int}
"""The fields of a mount as the run made it (``mounts``) ``fsaops diff`` reads, and their types."""

_PLUGIN_FIELDS: Final[dict[str, type]] = {
    "name": str,
    "distribution": str,
    "version": str,
    "imported_by": list,
}
"""The fields of a plugin ``fsaops diff`` reads, and their JSON types (each may be absent)."""

_FINDING_FIELDS: Final[dict[str, type]] = {
    "kind": str,
    "table": str,
    "example": str,
    "pages": list,
}
"""The fields of a finding ``fsaops diff`` reads, and their JSON types (each may be absent)."""

_PAGE_FIELDS: Final[dict[str, type]] = {
    "file": str,
    "table": str,
    "errno": str,
    "reason": str,
    "address": int,
}
"""The texts of a failed or left page ``fsaops diff`` reads, and their JSON types."""


def _wrong_field(data: Mapping[str, Any]) -> str | None:
    """The first field below the top whose JSON type no report has, said as a line; else ``None``.

    Only the fields :func:`compare` reads by their meaning (a table's
    filesystem and mode, its counts by path, errno and reason, a mount's
    filesystem, mode and block size, a plugin's name and version); every
    other value is compared as it is.
    """

    def kind_of(value: object, kind: type, where: str, field: str) -> str | None:
        if value is None or type(value) is kind:
            return None
        return f"{where} {field} is not a JSON {'array' if kind is list else _json_type(kind)}"

    for name, entry in data["by_aops"].items():
        where = f"by_aops[{_cut(name)!r}]"
        for field, kind in _TABLE_FIELDS.items():
            wrong = kind_of(entry.get(field), kind, where, field)
            if wrong is not None:
                return wrong
        for field in ("via", "errors", "reasons"):
            for key, count in (entry.get(field) or {}).items():
                if type(count) is not int:
                    return f"{where} {field}[{_cut(key, MAX_REASON)!r}] is not a JSON integer"
    mounts = data["config"].get("mount")
    if mounts is not None and type(mounts) is not list:
        return "config mount is not a JSON array"
    for where, items, fields in (
        ("config mount", mounts, _MOUNT_FIELDS),
        ("mounts", data.get("mounts"), _MADE_FIELDS),
        ("plugins", data.get("plugins"), _PLUGIN_FIELDS),
        ("findings", data.get("findings"), _FINDING_FIELDS),
        ("pages_failed", data.get("pages_failed"), _PAGE_FIELDS),
        ("pages_left", data.get("pages_left"), _PAGE_FIELDS),
    ):
        for i, item in enumerate(items or []):
            if type(item) is not dict:
                return f"{where}[{i}] is not a JSON object"
            for field, kind in fields.items():
                wrong = kind_of(item.get(field), kind, f"{where}[{i}]", field)
                if wrong is not None:
                    return wrong
    # The lines a report lists, compared as text: each is one.
    proofs = data.get("proofs") or {}
    for where, lines in (
        ("invariants", data.get("invariants")),
        ("integrity problems", (data.get("integrity") or {}).get("problems")),
        ("proofs placement problems", (proofs.get("placement") or {}).get("problems")),
        ("proofs durability problems", (proofs.get("durability") or {}).get("problems")),
    ):
        if lines is not None and type(lines) is not list:
            return f"{where} is not a JSON array"
        for i, line in enumerate(lines or []):
            if type(line) is not str:
                return f"{where}[{i}] is not a JSON string"
    return None


_PAGE_COUNTS: Final = ("index", "pfn", "pass", "pid")
"""The numbers of a failed or left page ``fsaops diff`` reads (each may be absent)."""


def _below_zero(data: Mapping[str, Any]) -> str | None:
    """The first count ``fsaops diff`` reads that is below zero, said as a line; else ``None``.

    Every count a report holds is of pages, calls, passes or events, or a
    page's index, frame, pass or process: none is ever below zero, and a
    report that says one is was not written by ``fsaops migrate``.  Each
    count is read where :func:`compare` reads it: the totals, each table's
    counts (by path, errno and reason too) and retry curve, ``vmstat``,
    each finding, each failed or left page, the read-back and the proofs.
    A count that is there but is not an integer (a string, a fraction,
    ``true``) is no count either; an absent one is left to the checks of
    what may be absent; one that is there as ``null`` is no
    count (a run that counted nothing says 0), except a page's, whose pass
    is ``null`` where the engine never reached it.
    """
    counts: list[tuple[str, object]] = []
    for key in (*_TABLE_COUNTS, "passes", "calls"):
        counts.append((f"totals {key}", data["totals"].get(key, _ABSENT)))
    tables = [("totals", data["totals"])]
    tables += [(f"by_aops[{_cut(name)!r}]", entry) for name, entry in data["by_aops"].items()]
    for where, entry in tables:
        if where != "totals":
            counts += [(f"{where} {key}", entry.get(key, _ABSENT)) for key in _TABLE_COUNTS]
            for field in ("via", "errors", "reasons"):
                for key, count in (entry.get(field) or {}).items():
                    counts.append((f"{where} {field}[{_cut(key, MAX_REASON)!r}]", count))
        curve = entry.get("retry_by_pass")
        if isinstance(curve, list):
            counts += [(f"{where} retry_by_pass[{i}]", v) for i, v in enumerate(curve)]
    counts += [(f"vmstat {_cut(key)}", value) for key, value in data["vmstat"].items()]
    for i, finding in enumerate(data.get("findings") or []):
        if isinstance(finding, dict):
            counts.append((f"findings[{i}] count", finding.get("count", _ABSENT)))
    for key in ("pages_failed", "pages_left"):
        for i, page in enumerate(data.get(key) or []):
            if isinstance(page, dict):
                # A page's pass is null where the engine never reached it.
                counts += [
                    (f"{key}[{i}] {field}", page.get(field, _ABSENT if field == "pfn" else None))
                    for field in _PAGE_COUNTS
                ]
    integrity = data.get("integrity") or {}
    for key in ("checked", "lost", "corrupted"):
        counts.append((f"integrity {key}", integrity.get(key, _ABSENT)))
    for name in ("placement", "durability"):
        proof = (data.get("proofs") or {}).get(name) or {}
        counts.append((f"proofs {name} failures", proof.get("failures", _ABSENT)))
    for where, value in counts:
        if value is _ABSENT or (value is None and where.startswith("pages_")):
            continue
        if type(value) is not int:
            return f"{where} is {_cut(json.dumps(value))}, not a count"
        if value < 0:
            return f"{where} is {value}, a count below zero"
    return None


_ABSENT: Final = object()
"""A count a report does not have (an older one), as against one it says is ``null``."""


_MAX_DIGITS: Final = 20
"""Digits of the largest number a report holds (a seed or a count below 2**64)."""


class _TooLarge(ValueError):
    """A JSON integer no report holds."""


def _report_int(token: str) -> int:
    """A JSON integer, refused when no report could hold it (and its difference not print)."""
    if len(token.lstrip("-")) > _MAX_DIGITS:
        raise _TooLarge(f"a number of {len(token.lstrip('-')):,} digits is no count or seed")
    return int(token)


def _report_float(token: str) -> float:
    """A JSON number with a fraction or an exponent; refused when it is past every float.

    ``1e999999`` is valid JSON that Python reads as infinity, which no
    report holds (the reader refuses ``Infinity`` itself).
    """
    value = float(token)
    if not math.isfinite(value):
        raise _TooLarge(f"the number {_cut(token, 40)} is past every number a report holds")
    return value


class _KeyTwice(ValueError):
    """A JSON object holding a key twice: no report does, and ``json`` would keep the last."""


def _once_each(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object's pairs as a dict, refused when a key comes twice.

    ``{"seed": 99, ..., "seed": 42}`` would read as seed 42 without a word:
    an edited or pasted-together file, whose values are not one run's.
    """
    data = dict(pairs)
    if len(data) < len(pairs):
        seen: set[str] = set()
        twice = ""
        for key, _ in pairs:
            if key in seen:
                twice = key
                break
            seen.add(key)
        raise _KeyTwice(f"key {printable(twice)[:60]!r} is given twice in one object")
    return data


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


def same(a: object, b: object) -> bool:
    """Whether two JSON values are one value: of one JSON type, and equal.

    Python's ``==`` takes ``1``, ``1.0`` and ``true`` for one value; two
    reports that differ so do not say the same thing.
    """
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        assert isinstance(b, dict)
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        assert isinstance(b, list)
        return len(a) == len(b) and all(map(same, a, b))
    return a == b


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
        return not same(self.a, self.b)

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
    statuses: tuple[str, str] = ("ok", "ok")
    """Each run's ``status``: a comparison of two runs that lost data is no good news."""

    @property
    def differs(self) -> bool:
        """Whether the runs differ anywhere."""
        return any(section.differs for section in self.sections)

    @property
    def failed(self) -> bool:
        """Whether either run's status is other than ``ok``."""
        return any(status != "ok" for status in self.statuses)

    def headline(self) -> str:
        """``the runs are the same; both: data lost``: the comparison, then each run's status."""
        said = "the runs differ" if self.differs else "the runs are the same"
        status_a, status_b = self.statuses
        if status_a == status_b:
            return f"{said}; both: {status_a}"
        return f"{said}; A: {status_a}, B: {status_b}"

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
    return {prefix: value}


def _items(values: list[Any]) -> str:
    """A list of plain values as one text (``ext2, swap``), no two lists alike.

    A string is shown as it is, unless it could be read as another
    item or items (``"1"``, ``"true"``, ``"a, b"``): then it is quoted, as
    every other value is shown as JSON, so that ``["1"]`` and ``[1]``, or
    ``["a, b"]`` and ``["a", "b"]``, read differently.
    """
    return ", ".join(_item(v) for v in values)


def _item(value: object) -> str:
    plain = isinstance(value, str) and value not in ("", "none") and ", " not in value
    if plain and isinstance(value, str) and value.strip() == value:
        try:
            json.loads(value)
        except ValueError:
            return value
    return json.dumps(value, ensure_ascii=False)


def _plugins(report: Mapping[str, Any]) -> dict[str, Any]:
    """Each plugin that ran, by name: its distribution and version, then any other field.

    ``imported_by`` (a plugin the run did not select, whose module a
    selected one imported) included: a plugin loaded and one only imported
    are not the same run.
    """
    found: dict[str, Any] = {}
    for plugin in report.get("plugins") or []:
        if isinstance(plugin, dict) and "name" in plugin:
            name = plugin["name"]
            found[f"plugin {name}"] = (
                f"{plugin.get('distribution', '?')} {plugin.get('version', '?')}"
            )
            for key in sorted(plugin.keys() - {"name", "distribution", "version"}):
                value = plugin[key]
                if key == "imported_by" and value == []:
                    continue  # a plugin the run loaded: said by its absence in older reports
                found[f"plugin {name} {key}"] = value
    return found


_FRAME: Final = (
    "a page is named by what it is (its file and index, or its process and address), "
    "not by the frame it sat in"
)

NOT_COMPARED: Final[Mapping[str, str]] = {
    "schema": "the same in both: a report of another schema is refused",
    "source": (
        "the scenario's file as it was named (a relative or an absolute path): "
        "the scenario itself is compared, key by key"
    ),
    "config.kernel.timeout": (
        "a wall-clock limit, not part of the model: a run it cut short says so in its status"
    ),
    "config.plugins.load": (
        "the plugins the scenario names, in its order, which --plugins or FSAOPS_PLUGINS may "
        "override: the plugins that ran are compared, with their versions"
    ),
    "trace": "the journey of the one page --trace asked for: every page's outcome is compared",
    "pages_failed[].pfn": _FRAME,
    "pages_failed[].node": _FRAME,
    "pages_failed[].inode": _FRAME,
    "pages_left[].pfn": _FRAME,
    "pages_left[].node": _FRAME,
    "pages_left[].inode": _FRAME,
}
"""The fields of a report ``fsaops diff`` does not compare, and why.

A field named here whose values differ is still shown (``source``, the
timeout), but not as a difference.  Every other field is compared; one a
report gains later is compared in the section of the run as it comes.
"""

_APART: Final = (
    "fsaops",
    "seed",
    "config",
    "plugins",
    "by_aops",
    "totals",
    "vmstat",
    "status",
    "integrity.checked",
    "integrity.lost",
    "integrity.corrupted",
    "integrity.problems",
    "proofs.placement.failures",
    "proofs.placement.problems",
    "proofs.durability.failures",
    "proofs.durability.problems",
    "invariants",
    "findings",
    "pages_failed",
    "pages_left",
    "selection",
    "mounts",
)
"""The fields a section of their own compares; the section of the run takes the rest.

``selection`` (what chose the plugins, when the scenario did not) is shown
in the scenario's section, unmarked: the plugins that ran are compared.
``mounts`` (each mount as the run made it) fills in the scenario's
section what a mount left to its filesystem.
"""

_SHOWN_NOT_COMPARED: Final = ("source", "config.kernel.timeout", "config.plugins.load")
"""The fields of :data:`NOT_COMPARED` the scenario's section shows when their values differ."""

_MOUNT_DEFAULT: Final = re.compile(r"mount\[(\d+)\]\.(mode|block_size)")


def _scenario(a: Mapping[str, Any], b: Mapping[str, Any]) -> Section:
    def facts(report: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "fsaops": report.get("fsaops"),
            "seed": report["seed"],
            **_plugins(report),
            **_flatten(report["config"]),
            **_made(report),
        }

    fa, fb = facts(a), facts(b)
    _fill_defaults(fa, a, fb)
    _fill_defaults(fb, b, fa)
    _said_once(fa, a)
    _said_once(fb, b)
    rows = []
    for key in (*_SHOWN_NOT_COMPARED, "selection.names", "selection.selected_by"):
        va, vb = _listed(_field(a, key)), _listed(_field(b, key))
        if va != vb:
            rows.append(Row(key.removeprefix("config."), va, vb, False))
    keys = list(dict.fromkeys([*fa, *fb]))
    rows += [
        Row(_cut(k, MAX_REASON), fa.get(k), fb.get(k))
        for k in keys
        if f"config.{k}" not in NOT_COMPARED and not same(fa.get(k), fb.get(k))
    ]
    return Section("scenario", "scenario", tuple(rows))


def _made(report: Mapping[str, Any]) -> dict[str, Any]:
    """What the run says each mount got (``mounts[0].table``), for the scenario's section."""
    return _flatten(report.get("mounts") or [], "mounts")


def _said_once(facts: dict[str, Any], report: Mapping[str, Any]) -> None:
    """Drop what a mount got where the report says it already, so that it is compared once.

    Its mode or block size where the scenario's key says the same
    (``mount[0].mode``, filled in where the scenario left it to the
    filesystem), its name and filesystem where they are the scenario's, and
    its table where the run's table sections compare it.  Only what a
    report says nowhere else, or says otherwise elsewhere, is kept.
    """
    for key in [k for k in facts if k.startswith("mounts[")]:
        match = _MADE_KEY.fullmatch(key)
        if match is None:
            continue
        index, field = match[1], match[2]
        said = {
            "mode": facts.get(f"mount[{index}].mode"),
            "block_size": facts.get(f"mount[{index}].block_size"),
            "filesystem": facts.get(f"mount[{index}].fs"),
            "name": f"mount{index}",
        }
        value = facts[key]
        compared = field == "table" and isinstance(value, str) and value in report["by_aops"]
        if compared or (field in said and said[field] == value):
            del facts[key]


_MADE_KEY: Final = re.compile(r"mounts\[(\d+)\]\.(\w+)")


def _listed(value: Any) -> Any:
    """A list as a row shows it (``ext2, swap``); anything else as it is."""
    return _items(value) if isinstance(value, list) else value


def _field(report: Mapping[str, Any], path: str) -> Any:
    """The value at ``path`` (``config.kernel.timeout``), ``None`` where there is none."""
    value: Any = report
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _fill_defaults(
    facts: dict[str, Any], report: Mapping[str, Any], other: Mapping[str, Any]
) -> None:
    """A mount's mode or block size left to the filesystem's default, as that default.

    ``mode = "default"`` written out and the mode left out are one scenario
    when ``default`` is the filesystem's default mode.  A report says what
    each mount got (``mounts``).  For one that does not (an older report),
    the default is taken from the run's own tables when every mount of the
    filesystem leaves the mode out (their table is the default mode's);
    otherwise, and for the block size, from the installed plugin, when it is
    the distribution and version the report names.  Where none can say, the
    key stays empty, and differs from a value written out.
    """
    mounts = [m if isinstance(m, dict) else {} for m in report["config"].get("mount") or []]
    made = report.get("mounts") or []
    for index, mount in enumerate(mounts):
        got = made[index] if index < len(made) else None
        if got is None or got.get("filesystem") != mount.get("fs"):
            continue  # not the mount the scenario names there: say nothing of it
        for field in ("mode", "block_size"):
            key = f"mount[{index}].{field}"
            if key in facts and facts[key] is None and got.get(field) is not None:
                facts[key] = got[field]
    wanted = [
        key
        for key in facts
        if _MOUNT_DEFAULT.fullmatch(key)
        and facts[key] is None
        # A mount the other run does not have: its row shows what it used, as its other keys'.
        and (other.get(key) is not None or key not in other)
    ]
    if not wanted:
        return
    for key in wanted:
        match = _MOUNT_DEFAULT.fullmatch(key)
        assert match is not None
        index, field = int(match[1]), match[2]
        fs = mounts[index].get("fs") if index < len(mounts) else None
        if fs is None:
            continue
        if field == "mode" and all(m.get("mode") is None for m in mounts if m.get("fs") == fs):
            modes = {
                entry.get("mode")
                for entry in report["by_aops"].values()
                if isinstance(entry, dict) and entry.get("filesystem") == fs
            }
            if len(modes) == 1:
                facts[key] = modes.pop()
                continue
        default = _installed_default(report, str(fs), field)
        if default is not None:
            facts[key] = default


def _installed_default(report: Mapping[str, Any], fs: str, field: str) -> object:
    """The default ``mode`` or ``block_size`` of ``fs`` as installed, if the report ran it."""
    from fsaops.plugins import discover, load_plugins

    ran = {  # the plugins it loaded; not those they imported, which provide no filesystem
        p.get("name"): (p.get("distribution"), p.get("version"))
        for p in report.get("plugins") or []
        if isinstance(p, dict) and not p.get("imported_by")
    }
    try:
        available = discover()
        names = sorted(str(n) for n in ran if n in available)
        if not names:
            return None
        registry = _REGISTRIES.get(tuple(names))
        if registry is None:
            registry = load_plugins(cli=names, env={}, strict=False)
            _REGISTRIES[tuple(names)] = registry
    except FsaopsError:
        return None
    owner = registry.owners.get(fs)
    fstype = registry.filesystems.get(fs)
    if owner is None or fstype is None:
        return None
    info = registry.plugin(owner)
    if ran.get(owner) != (info.dist, info.version):
        return None
    return fstype.default_mode if field == "mode" else fstype.default_block_size


_REGISTRIES: dict[tuple[str, ...], Registry] = {}
"""The installed plugins :func:`_installed_default` loaded, by the names it loaded."""


def _counts(entry: Mapping[str, Any], field: str, label: str) -> dict[str, Any]:
    """A table's counts by path, errno or reason, keyed by their whole text (``reason ...``)."""
    value = entry.get(field)
    if not isinstance(value, dict):
        return {}
    return {f"{label} {k}": v for k, v in value.items()}


def _count_rows(ca: Mapping[str, Any], cb: Mapping[str, Any]) -> list[Row]:
    """A row for each key of either run's counts, in order, each named as :func:`_names` cuts it."""
    keys = sorted(set(ca) | set(cb))
    shown = _names(keys, MAX_REASON)
    return [Row(shown[k], ca.get(k), cb.get(k)) for k in keys]


def _names(keys: list[str], limit: int) -> dict[str, str]:
    """Each key as a row names it: cut at ``limit``, told apart by a number where cuts are alike.

    Two keys that share their first ``limit`` characters and their length
    would show the same; each then gets ``#1``, ``#2``, ... in the order
    of ``keys``, so that neither row hides the other.
    """
    cuts = {key: _cut(key, limit) for key in keys}
    alike: dict[str, list[str]] = {}
    for key in keys:
        alike.setdefault(cuts[key], []).append(key)
    for cut, group in alike.items():
        if len(group) > 1:
            for i, key in enumerate(group, 1):
                cuts[key] = f"{cut} #{i}"
    return cuts


def _table_rows(
    ea: Mapping[str, Any], eb: Mapping[str, Any], names: tuple[str | None, str | None]
) -> tuple[Row, ...]:
    labels = {"not_migrated": "left"}
    rows = []
    if names[0] is not None and names[1] is not None and names[0] != names[1]:
        rows.append(_names_row("table", names[0], names[1]))
    rows += [_names_row(k, ea.get(k), eb.get(k)) for k in ("filesystem", "mode")]
    # A table without migratepage takes the engine's generic fallback.
    rows.append(
        _names_row(
            "migratepage",
            (ea.get("migratepage") or "none: generic fallback") if ea else None,
            (eb.get("migratepage") or "none: generic fallback") if eb else None,
        )
    )
    rows += [Row(labels.get(k, k), ea.get(k), eb.get(k)) for k in _TABLE_COUNTS]
    for field, label in (("via", "via"), ("errors", "errno"), ("reasons", "reason")):
        rows += _count_rows(_counts(ea, field, label), _counts(eb, field, label))
    ra, rb = ea.get("retry_by_pass"), eb.get("retry_by_pass")
    if isinstance(ra, list) or isinstance(rb, list):
        rows.append(Row("retry after each pass", _curve(ra), _curve(rb)))
    # A field a table gains later is compared as it comes.
    rows += [
        Row(_cut(k, MAX_REASON), ea.get(k), eb.get(k))
        for k in sorted((ea.keys() | eb.keys()) - _TABLE_READ)
    ]
    return tuple(rows)


_TABLE_READ: Final = frozenset(
    {*_TABLE_COUNTS, "filesystem", "mode", "migratepage", "via", "errors", "reasons"}
    | {"retry_by_pass"}
)
"""The fields of a table its section reads by their meaning; it compares any other as it is."""


def _names_row(label: str, a: object, b: object) -> Row:
    """A row of two names, each cut as a title cuts it (and compared whole)."""
    cut_a = _cut(a) if isinstance(a, str) else a
    cut_b = _cut(b) if isinstance(b, str) else b
    if (cut_a, cut_b) == (a, b):
        return Row(label, a, b)
    return Row(label, cut_a, cut_b, a != b)


def _curve(values: object) -> str | None:
    if not isinstance(values, list):
        return None
    return " ".join(f"{v:,}" if type(v) is int else str(v) for v in values)


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
        rows += _count_rows(ca, cb)
    if "retry_by_pass" in ta or "retry_by_pass" in tb:
        rows.append(
            Row(
                "retry after each pass",
                _curve(ta.get("retry_by_pass")),
                _curve(tb.get("retry_by_pass")),
            )
        )
    # A sum a report gains later is compared as it comes.
    seen = {*keys, "retry_by_pass"}
    rows += [
        Row(_cut(k, MAX_REASON), ta.get(k), tb.get(k)) for k in sorted((set(ta) | set(tb)) - seen)
    ]
    return Section("totals", "total", tuple(rows))


def _vmstat(a: Mapping[str, Any], b: Mapping[str, Any]) -> Section:
    va, vb = a["vmstat"], b["vmstat"]
    return Section(
        "vmstat",
        "vmstat",
        tuple(Row(_cut(k, MAX_REASON), va.get(k), vb.get(k)) for k in sorted(set(va) | set(vb))),
    )


def _leaves(value: Any, prefix: str, pattern: str) -> dict[str, tuple[str, Any]]:
    """Every value under ``value``, keyed by its path (``ticks.migration``, ``left_out[0].key``).

    Each comes with its pattern, the path with ``[]`` for an index
    (``left_out[].key``), as :data:`NOT_COMPARED` and :data:`_APART` name
    fields.  An empty list is a value (``none``); an empty object has none.
    """
    if isinstance(value, dict):
        found: dict[str, tuple[str, Any]] = {}
        for key, item in value.items():
            found |= _leaves(
                item,
                f"{prefix}.{key}" if prefix else str(key),
                f"{pattern}.{key}" if pattern else str(key),
            )
        return found
    if isinstance(value, list) and any(isinstance(v, dict | list) for v in value):
        found = {}
        for i, item in enumerate(value):
            found |= _leaves(item, f"{prefix}[{i}]", f"{pattern}[]")
        return found
    return {prefix: (pattern, value)}


def _compared_apart(pattern: str) -> bool:
    """Whether a section of its own compares the field, or it is not compared."""
    for field in (*_APART, *NOT_COMPARED):
        if pattern == field or pattern.startswith((f"{field}.", f"{field}[")):
            return True
    return False


def _run(a: Mapping[str, Any], b: Mapping[str, Any]) -> Section:
    """Every field no other section compares: simulated time, the workload, the proofs' I/O, ..."""
    la = {k: v for k, (p, v) in _leaves(a, "", "").items() if not _compared_apart(p)}
    lb = {k: v for k, (p, v) in _leaves(b, "", "").items() if not _compared_apart(p)}
    keys = list(dict.fromkeys([*la, *lb]))
    return Section(
        "run", "run", tuple(Row(_cut(k, MAX_REASON), la.get(k), lb.get(k)) for k in keys)
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
    # pages and on which; which pages failed or stayed; which invariant,
    # which problem the read-back and the proofs found.
    found_a, found_b = _findings(a), _findings(b)
    # Keyed by the whole kind and table; named as a title cuts them, numbered where alike.
    whole = sorted(found_a.keys() | found_b.keys(), key=lambda k: f"{k[0]} ({k[1]})")
    cut = {k: f"{_cut(k[0])} ({_cut(k[1])})" for k in whole}
    alike: dict[str, list[tuple[str, str]]] = {}
    for k in whole:
        alike.setdefault(cut[k], []).append(k)
    for shown, group in alike.items():
        if len(group) > 1:
            cut |= {k: f"{shown} #{i}" for i, k in enumerate(group, 1)}
    for whole_key in whole:
        key = cut[whole_key]
        count_a, pages_a, said_a = found_a.get(whole_key, (0, None, None))
        count_b, pages_b, said_b = found_b.get(whole_key, (0, None, None))
        rows.append(Row(f"finding {key}", count_a, count_b))
        if pages_a != pages_b:
            rows.append(Row(f"finding {key}: its pages", pages_a, pages_b))
        if said_a != said_b:
            rows.append(Row(f"finding {key}: what it says", said_a, said_b))
    for label, key in (
        ("failed pages", "pages_failed"),
        ("pages left behind", "pages_left"),
        ("broken invariants", "invariants"),
        ("integrity problems", "integrity"),
        ("placement problems", "placement"),
        ("durability problems", "durability"),
    ):
        named_a, named_b = _named(a, key), _named(b, key)
        only_a, only_b = _only(named_a, named_b), _only(named_b, named_a)
        if only_a or only_b:
            rows.append(Row(f"{label} the other run does not have", len(only_a), len(only_b), True))
            rows.append(
                Row(
                    f"{label} the other run does not have: the first",
                    only_a[0] if only_a else None,
                    only_b[0] if only_b else None,
                    True,
                )
            )
    return Section("verdict", "verdict", tuple(rows))


def _only(mine: list[str], theirs: list[str]) -> list[str]:
    """What ``mine`` lists that ``theirs`` does not, in order, each as many times as it is more."""
    left = Counter(theirs)
    found = []
    for name in mine:
        if left[name]:
            left[name] -= 1
        else:
            found.append(name)
    return found


def _findings(report: Mapping[str, Any]) -> dict[tuple[str, str], tuple[int, str, str]]:
    """Each finding, keyed by its whole kind and table: its pages' count, names and example."""
    found: dict[tuple[str, str], tuple[int, str, str]] = {}
    for finding in report.get("findings") or []:
        if isinstance(finding, dict):
            key = (str(finding.get("kind")), str(finding.get("table")))
            count = finding.get("count")
            pages = finding.get("pages")
            listed = _items(pages) if isinstance(pages, list) else _item(pages)
            said = str(finding.get("example"))
            # A field a finding gains later is compared as it comes.
            for field in sorted(finding.keys() - _FINDING_READ):
                said += f"; {field} {_item(finding[field])}"
            before = found.get(key)
            found[key] = (
                (before[0] if before else 0) + (count if type(count) is int else 1),
                f"{before[1]}; {listed}" if before else listed,
                f"{before[2]}; {said}" if before else said,
            )
    return found


_FINDING_READ: Final = frozenset({"kind", "table", "count", "pages", "example"})
"""The fields of a finding its rows read by their meaning."""


def _named(report: Mapping[str, Any], key: str) -> list[str]:
    """What a report lists under ``key``, in order, each named so that two runs can be compared."""
    if key in ("pages_failed", "pages_left"):
        return _page_names(report, key)
    if key == "integrity":
        return _texts((report.get("integrity") or {}).get("problems"))
    if key in ("placement", "durability"):
        return _texts(((report.get("proofs") or {}).get(key) or {}).get("problems"))
    return _texts(report.get(key))


def _page_names(report: Mapping[str, Any], key: str) -> list[str]:
    """The pages a report lists under ``key``, by what they are (not their frame), and why."""
    names: list[str] = []
    for page in report.get(key) or []:
        if not isinstance(page, dict):
            continue
        # Named as the text report names it (and as ``--trace`` takes it).
        address = page.get("address")
        if page.get("file") is not None:
            name = f"{_item(page.get('file'))}:{_item(page.get('index'))}"
        elif page.get("pid") is not None:
            where = f"{address:#x}" if type(address) is int else json.dumps(address)
            name = f"pid {_item(page.get('pid'))} at {where}"
        else:
            name = f"pfn {_item(page.get('pfn'))}"
        said = (
            f"{name}: {page.get('errno')} in {_cut(str(page.get('table')))}, "
            f"pass {page.get('pass')}: {page.get('reason')}"
        )
        # A field a page gains later is compared as it comes.
        for field in sorted(page.keys() - _PAGE_READ):
            said += f"; {field} {_item(page[field])}"
        names.append(said)
    return names


_PAGE_READ: Final = frozenset(
    {"file", "index", "pid", "address", "errno", "table", "pass", "reason", "pfn", "node", "inode"}
)
"""The fields of a failed or left page its name reads, or that are not compared."""


def _texts(values: object) -> list[str]:
    return [str(v) for v in values] if isinstance(values, list) else []


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

    def by_filesystem(
        tables: Mapping[str, Any], other: Mapping[str, Any]
    ) -> dict[object, list[str]]:
        found: dict[object, list[str]] = {}
        for name, entry in tables.items():
            if name not in other:
                fs = entry.get("filesystem") if isinstance(entry, dict) else None
                found.setdefault(fs, []).append(name)
        return found

    alone_a, alone_b = by_filesystem(tables_a, tables_b), by_filesystem(tables_b, tables_a)
    for fs, mine in alone_a.items():
        theirs = alone_b.get(fs, [])
        if fs is not None and len(mine) == 1 and len(theirs) == 1:
            pairs.append((mine[0], theirs[0]))
            mine.clear()
            theirs.clear()
    pairs += [(name, None) for names in alone_a.values() for name in names]
    pairs += [(None, name) for names in alone_b.values() for name in names]
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
        sections.append(
            Section("table", title, _table_rows(ea, eb, (name_a, name_b)), only, (name_a, name_b))
        )
    sections += [_totals(a, b), _vmstat(a, b), _run(a, b), _verdict(a, b)]
    # The files' names as given: a newline or an escape sequence in one is shown, not obeyed.
    statuses = (printable(str(a["status"])), printable(str(b["status"])))
    return Comparison(shown_path(names[0]), shown_path(names[1]), tuple(sections), statuses)


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


def shown(value: Any) -> str:
    """A value as a row shows it: a count with thousands marked, a long text cut."""
    if value is None:
        return "—"
    if type(value) is int:
        return f"{value:,}"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict) and not value:
        return "none"
    if isinstance(value, list) and not any(isinstance(v, list | dict) for v in value):
        return _cut(_items(value), MAX_REASON)
    if isinstance(value, list | dict):
        return _cut(json.dumps(value, ensure_ascii=False, separators=(", ", ": ")), MAX_REASON)
    return _cut(str(value), MAX_REASON)


_TITLES: Final = {
    "totals": "Total",
    "vmstat": "vmstat (migration and read-back)",
    "run": "The rest of the run (simulated time, the workload, the proofs' own I/O, ...)",
    "verdict": "Verdict",
}


_EMPTY: Final = {"scenario": "Every key, the seed and the plugins are the same."}


def _scenario_title(section: Section) -> str:
    if section.differs:
        return "The scenarios differ in"
    return "The scenarios are the same (every key, the seed, the plugins)"


def _not_compared() -> list[str]:
    """What the comparison leaves out, one line each, for the foot of the comparison."""
    return [f"{field}: {why}" for field, why in NOT_COMPARED.items()]


def _delta(row: Row) -> str:
    delta = row.delta
    if delta is None or not row.differs or row.marked is not None:
        return ""
    return f"{delta:+,}"


_TABLE_OVERHEAD: Final = 11
"""Columns a section's table takes besides its cells: its two edges, three rules, six pads."""


def _widths(section: Section, deltas: list[str], width: int) -> list[int | None]:
    """The widths to draw the names, A and B at, so that the four columns fit in ``width``.

    ``None`` for each when the table fits as it is.  Otherwise ``B - A`` is
    never wrapped, so its width is taken first, and what is left is shared:
    a column that needs less than its share gets what it needs, and the
    others split the rest.  Values wider than their column wrap inside it
    (at spaces; a word wider than the column is folded onto the next line),
    so rich never crops a column, or a value, at the edge of the terminal.
    """
    marked = [len(row.name) + 2 for row in section.rows]  # "≠ " or "  "
    wanted = [
        max(marked),
        *(
            max(len(shown(r.a if side == "A" else r.b)) for r in section.rows)
            for side in ("A", "B")
        ),
    ]
    delta = max(len("B - A"), *(len(d) for d in deltas))
    room = width - _TABLE_OVERHEAD - delta
    if sum(wanted) <= room:
        return [None, None, None]
    left = max(room, 3)
    out = [0, 0, 0]
    for n, i in enumerate(sorted(range(3), key=lambda i: wanted[i])):
        out[i] = max(min(wanted[i], left // (3 - n)), 1)
        left -= out[i]
    return list(out)


def render(comparison: Comparison, console: Console) -> None:
    """Print the comparison: the scenario's differences, then each section, differences marked."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    a, b = comparison.a, comparison.b
    head = Text("fsaops diff", style="bold")
    head.append(f"  A: {a}  B: {b}\n", style="cyan")
    head.append(
        comparison.headline(),
        style="bold red" if comparison.failed else "bold yellow" if comparison.differs else "green",
    )
    console.print(head)
    for section in comparison.sections:
        if section.kind == "scenario":
            title = _scenario_title(section)
        elif section.kind == "table":
            title = f"Table {section.title}"
            if section.only is not None:
                title += f" (only in {section.only.upper()}: the other run had no page of it)"
        else:
            title = _TITLES.get(section.kind, section.kind)
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
        numeric = all(
            type(r.a) in (int, type(None)) and type(r.b) in (int, type(None)) for r in section.rows
        )
        deltas = [_delta(row) for row in section.rows]
        widths = _widths(section, deltas, console.width)
        fixed = widths[0] is not None
        table.add_column("", overflow="fold", min_width=None if fixed else 16, width=widths[0])
        for side, width in zip(("A", "B"), widths[1:], strict=True):
            values = [shown(r.a if side == "A" else r.b) for r in section.rows]
            table.add_column(
                side,
                justify="right" if numeric else "left",
                overflow="fold",
                min_width=None if fixed else min(max(len(v) for v in values), VALUE_WIDTH),
                width=width,
            )
        table.add_column("B - A", justify="right", no_wrap=True)
        for row, delta in zip(section.rows, deltas, strict=True):
            style = "bold yellow" if row.differs else "dim"
            marker = "≠ " if row.differs else "  "
            table.add_row(
                Text(marker + row.name, style=style),
                Text(shown(row.a), style="" if row.differs else "dim"),
                Text(shown(row.b), style="" if row.differs else "dim"),
                Text(delta, style=style),
            )
        console.print(table)
    foot = Text("Not compared:", style="bold")
    for line in _not_compared():
        foot.append(f"\n  {line}", style="dim")
    console.print(foot)


# -- the page --------------------------------------------------------------------------------------


def _html_section(section: Section) -> str:
    from fsaops.html_report import tag

    if section.kind == "scenario":
        title = "The scenarios differ in" if section.differs else "The scenarios are the same"
    elif section.kind == "table":
        title = escape(section.title)
        if section.only is not None:
            title += f" <span class=muted>(only in {section.only.upper()})</span>"
    else:
        title = escape(_TITLES.get(section.kind, section.kind))
    if not section.rows:
        return (
            f'<section data-kind="{section.kind}" data-differs="same"><h2>{title}</h2>'
            f"<p class=muted>{_EMPTY.get(section.kind, 'Neither run has any.')}</p></section>\n"
        )
    rows = "".join(
        tag(
            "tr",
            tag("td", escape(row.name), class_="key")
            + tag("td", escape(shown(row.a)), class_="only" if row.a is None else None)
            + tag("td", escape(shown(row.b)), class_="only" if row.b is None else None)
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
    from fsaops.html_report import document, isolated

    verdict = comparison.headline()
    kind = "bad" if comparison.failed else "note" if comparison.differs else "ok"
    body = [
        f"<h1>fsaops diff</h1>\n<p>A: <code>{escape(comparison.a)}</code><br>"
        f"B: <code>{escape(comparison.b)}</code></p>\n"
        f'<p class="banner {kind}" id="status">{escape(verdict[0].upper() + verdict[1:])}. '
        "Rows that differ are highlighted.</p>\n",
        *(_html_section(s) for s in comparison.sections),
        '<div id="not-compared"><h2>Not compared</h2><ul class=muted>'
        + "".join(f"<li>{escape(line)}</li>" for line in _not_compared())
        + "</ul></div>\n",
    ]
    return document(
        f"fsaops diff: {isolated(comparison.a)} and {isolated(comparison.b)}", "".join(body)
    )
