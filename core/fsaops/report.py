"""The report of one scenario run: a frozen value, its JSON form and its terminal form.

:class:`Report` holds what ``fsaops migrate`` found: per operations table,
how many pages moved, failed or stayed behind and why; the totals; the
kernel's counters during migration; what the integrity check read back;
and the invariants the checker found broken.  :meth:`Report.to_json`
gives plain data with sorted keys and nothing that changes from run to run
(no time, no addresses), so one scenario and one seed always give the same
bytes.  :func:`render` draws it for a terminal with rich.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import attrs
from rich import box
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from fsaops.frozen import frozen_mapping, sorted_mapping
from fsaops.status import SCHEMA

__all__ = [
    "Integrity",
    "Report",
    "TableReport",
    "Totals",
    "render",
]


@attrs.frozen
class TableReport:
    """What happened to the pages of one operations table.

    Attributes:
        name: the table's name (the kernel's symbol, ``ext3_journalled_aops``).
        filesystem: the filesystem type that uses it (``swap`` for anonymous memory).
        mode: the mount mode.
        migratepage: the qualified name of the table's ``migratepage``, or
            ``None`` when it has none (the engine's fallback path is used).
        pages: pages of this table that migration finished with.
        moved: pages that moved (or were swapped out).
        failed: pages that failed for good.
        not_migrated: pages still busy (``-EAGAIN``) after the last pass, or
            never tried because no new page could be allocated.
        errors: errno name → pages, for failed and not migrated pages.
        via: how moved pages went → pages: ``migratepage`` (the table's
            op), ``migrate_page`` (the fallback on a clean page),
            ``writeback`` (the fallback after writing the page out),
            ``swap`` (written out and dropped) or ``freed``.
        reasons: why pages failed or stayed → pages.
    """

    name: str
    filesystem: str
    mode: str
    migratepage: str | None
    pages: int
    moved: int
    failed: int
    not_migrated: int
    errors: Mapping[str, int] = attrs.field(converter=sorted_mapping)
    via: Mapping[str, int] = attrs.field(converter=sorted_mapping)
    reasons: Mapping[str, int] = attrs.field(converter=sorted_mapping)

    def to_json(self) -> dict[str, Any]:
        """Plain data for JSON."""
        return {
            "filesystem": self.filesystem,
            "mode": self.mode,
            "migratepage": self.migratepage,
            "pages": self.pages,
            "moved": self.moved,
            "failed": self.failed,
            "not_migrated": self.not_migrated,
            "errors": dict(self.errors),
            "via": dict(self.via),
            "reasons": dict(self.reasons),
        }


@attrs.frozen
class Totals:
    """The sums over every table, and the engine's passes.

    Attributes:
        pages: pages taken off the source node's LRU lists to migrate
            (including those migrated by swap-out).
        moved, failed, not_migrated: as in :class:`TableReport`.
        passes: passes ``migrate_pages`` made over its page lists, summed
            over its calls.
        calls: how many times ``migrate_pages`` was called (one per chunk
            of new pages, plus one for the swap-out).
    """

    pages: int
    moved: int
    failed: int
    not_migrated: int
    passes: int
    calls: int

    def to_json(self) -> dict[str, Any]:
        """Plain data for JSON."""
        return attrs.asdict(self)


@attrs.frozen
class Integrity:
    """What reading every page back found.

    Attributes:
        checked: pages of data read back and compared: every page of every
            file (through ``read``, execute-in-place files included) and
            every page of anonymous memory (through its process's page
            tables).  File pages that processes map are also read through
            those processes; each page counts once.
        lost: pages whose newest data is gone: they cannot be read, read
            back zeroes, or read back an older version.
        corrupted: pages that read back anything else that is wrong.
        problems: the first of those, one sentence each.
    """

    checked: int
    lost: int
    corrupted: int
    problems: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """Plain data for JSON."""
        return {
            "checked": self.checked,
            "lost": self.lost,
            "corrupted": self.corrupted,
            "problems": list(self.problems),
        }


@attrs.frozen
class Report:
    """The outcome of one scenario run.

    Attributes:
        version: the fsaops version that made it.
        source: where the scenario came from (a file as named, or the
            built-in scenario).
        seed: the seed the run used.
        config: the whole scenario with every default filled in.
        from_node, to_node: the nodes migrated from and to.
        totals: sums over every table.
        by_aops: one entry per operations table, by name.
        vmstat: the kernel's counters, as differences over the migration;
            ``writepage`` is the number of ``writepage`` calls migration made
            (through ``pageout``).
        workload: how many pages got each state, and a digest of which.
        faults: injected faults by kind.
        ticks: simulated time: ``build`` (the clock when migration started),
            ``migration`` (ticks it took) and ``total`` (at the end).
        integrity: what the read-back found.
        invariants: problems the invariant checker found at the end.
    """

    version: str
    source: str
    seed: int
    config: Mapping[str, Any] = attrs.field(converter=frozen_mapping)
    from_node: int
    to_node: int
    totals: Totals
    by_aops: tuple[TableReport, ...]
    vmstat: Mapping[str, int] = attrs.field(converter=sorted_mapping)
    workload: Mapping[str, Any] = attrs.field(converter=frozen_mapping)
    faults: Mapping[str, int] = attrs.field(converter=sorted_mapping)
    ticks: Mapping[str, int] = attrs.field(converter=sorted_mapping)
    integrity: Integrity
    invariants: tuple[str, ...]

    @property
    def ok(self) -> bool:
        """Nothing was lost or corrupted and every invariant holds."""
        i = self.integrity
        return not (i.lost or i.corrupted or self.invariants)

    @property
    def exit_status(self) -> int:
        """0 when :attr:`ok`, else 1 (data lost or an invariant broken)."""
        return 0 if self.ok else 1

    @property
    def status(self) -> str:
        """``ok``, ``data lost`` or ``invariant broken``."""
        if self.integrity.lost or self.integrity.corrupted:
            return "data lost"
        if self.invariants:
            return "invariant broken"
        return "ok"

    def to_json(self) -> dict[str, Any]:
        """The report as plain data (serialize with sorted keys for stable bytes)."""
        return {
            "schema": SCHEMA,
            "fsaops": self.version,
            "source": self.source,
            "seed": self.seed,
            "config": dict(self.config),
            "migrate": {"from_node": self.from_node, "to_node": self.to_node},
            "status": self.status,
            "totals": self.totals.to_json(),
            "by_aops": {t.name: t.to_json() for t in self.by_aops},
            "vmstat": dict(self.vmstat),
            "workload": dict(self.workload),
            "faults": {"injected": dict(self.faults)},
            "ticks": dict(self.ticks),
            "integrity": self.integrity.to_json(),
            "invariants": list(self.invariants),
        }

    def dumps(self) -> str:
        """The JSON text: sorted keys, two-space indent, a final newline."""
        return json.dumps(self.to_json(), sort_keys=True, indent=2) + "\n"


# -- the terminal form ------------------------------------------------------------


def _n(value: int) -> str:
    return f"{value:,}"


def _counts_cell(counts: Mapping[str, int], style: str = "") -> Text:
    text = Text()
    for i, (name, count) in enumerate(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))):
        if i:
            text.append("\n")
        text.append(name, style=style)
        text.append(f" {_n(count)}")
    return text


def _short(member: str | None) -> str:
    return member.rsplit(".", 1)[-1] if member is not None else ""


def _number(value: int, style: str) -> Text:
    return Text(_n(value), style=style if value else "dim")


def _tables(report: Report) -> Table:
    table = Table(
        title="Pages by operations table",
        title_justify="left",
        title_style="bold",
        caption="left: still busy (EAGAIN) after the last pass, or never tried (ENOMEM)",
        caption_justify="left",
        box=box.SIMPLE_HEAD,
        show_footer=True,
        pad_edge=False,
        collapse_padding=True,
    )
    t = report.totals
    table.add_column(
        "table · migratepage", footer=Text("total", style="bold"), overflow="fold", min_width=16
    )
    for header, value, style in (
        ("pages", t.pages, ""),
        ("moved", t.moved, "green"),
        ("failed", t.failed, "red"),
        ("left", t.not_migrated, "yellow"),
    ):
        table.add_column(
            header,
            justify="right",
            footer=_number(value, style),
            no_wrap=True,
            min_width=max(len(header), len(_n(value))),
        )
    errors: dict[str, int] = {}
    via: dict[str, int] = {}
    for entry in report.by_aops:
        for k, v in entry.errors.items():
            errors[k] = errors.get(k, 0) + v
        for k, v in entry.via.items():
            via[k] = via.get(k, 0) + v
    for header, counts, style in (("errors", errors, "red"), ("moved via", via, "green")):
        widest = max((len(f"{k} {_n(v)}") for k, v in counts.items()), default=0)
        table.add_column(
            header,
            footer=_counts_cell(counts, style),
            no_wrap=True,
            min_width=max(len(header), widest),
        )
    for entry in report.by_aops:
        name = Text(entry.name, style="bold")
        name.append(f"\n{entry.filesystem} {entry.mode} · ", style="dim")
        if entry.migratepage is not None:
            name.append(_short(entry.migratepage), style="cyan")
        elif entry.pages:
            name.append("none: generic fallback", style="yellow")
        else:
            name.append("none", style="dim")
        table.add_row(
            name,
            _n(entry.pages),
            _number(entry.moved, "green"),
            _number(entry.failed, "red"),
            _number(entry.not_migrated, "yellow"),
            _counts_cell(entry.errors, "red"),
            _counts_cell(entry.via, "green"),
        )
    return table


def _reasons(report: Report) -> Table | None:
    rows = [
        (entry.name, why, count) for entry in report.by_aops for why, count in entry.reasons.items()
    ]
    if not rows:
        return None
    table = Table(
        title="Why pages failed or were left",
        title_justify="left",
        title_style="bold",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    table.add_column("table", overflow="fold", min_width=12)
    table.add_column("reason (the last pass)", min_width=20)
    table.add_column("pages", justify="right", no_wrap=True, min_width=5)
    for name, why, count in sorted(rows, key=lambda r: (-r[2], r[0], r[1])):
        table.add_row(name, why, _n(count))
    return table


_VMSTAT_SHOWN = (
    "pgmigrate_success",
    "pgmigrate_fail",
    "writepage",
    "nr_writepage",
    "swap_cache_add",
    "pswpout",
    "pgfree",
)


def _summary(report: Report) -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()
    t = report.totals
    grid.add_row(
        "engine",
        f"{_n(t.passes)} passes in {_n(t.calls)} migrate_pages calls, "
        f"{_n(report.ticks.get('migration', 0))} ticks",
    )
    counters = "  ".join(
        f"{name} {_n(report.vmstat[name])}" for name in _VMSTAT_SHOWN if name in report.vmstat
    )
    grid.add_row("vmstat", Text(counters + "  (during migration)"))
    states = {k: v for k, v in report.workload.items() if isinstance(v, int) and v and k != "pages"}
    workload = f"{_n(report.workload.get('pages', 0))} pages"
    if states:
        workload += ": " + "  ".join(f"{k} {_n(v)}" for k, v in sorted(states.items()))
    grid.add_row("workload", workload)
    if report.faults:
        grid.add_row("faults", "  ".join(f"{k} {_n(v)}" for k, v in sorted(report.faults.items())))
    i = report.integrity
    line = Text(f"{_n(i.checked)} pages read back: ")
    line.append(f"{_n(i.lost)} lost", style="bold red" if i.lost else "green")
    line.append(", ")
    line.append(f"{_n(i.corrupted)} corrupted", style="bold red" if i.corrupted else "green")
    grid.add_row("integrity", line)
    for problem in i.problems[:5]:
        grid.add_row("", Text(problem, style="red"))
    if report.invariants:
        grid.add_row(
            "invariants",
            Text(f"{len(report.invariants)} broken", style="bold red"),
        )
        for problem in report.invariants[:5]:
            grid.add_row("", Text(problem, style="red"))
    else:
        grid.add_row("invariants", Text("all hold", style="green"))
    verdict = {
        "ok": Text("OK: nothing lost, every invariant holds", style="bold green"),
        "data lost": Text("FAILED: data was lost", style="bold red"),
        "invariant broken": Text("FAILED: an invariant is broken", style="bold red"),
    }[report.status]
    grid.add_row("result", verdict)
    return grid


def _heading(report: Report) -> Text:
    cfg = report.config.get("kernel", {})
    nodes = cfg.get("nodes", "?")
    memory = cfg.get("node_memory", 0)
    page_size = cfg.get("page_size", 0)
    from fsaops.config import format_size

    semantics = cfg.get("semantics", "?")
    text = Text("fsaops migrate", style="bold")
    text.append(f"  {report.source}  seed {report.seed}  semantics {semantics}\n", style="cyan")
    text.append(
        f"{nodes} nodes of {format_size(memory)}, {page_size}-byte pages; "
        f"every page of node {report.from_node} to node {report.to_node}",
        style="dim",
    )
    return text


def render(report: Report, console: Console) -> None:
    """Print the report for a person: tables per operations table, reasons, summary."""
    parts: list[Any] = [_heading(report), Text(""), _tables(report)]
    reasons = _reasons(report)
    if reasons is not None:
        parts.append(reasons)
    parts.append(_summary(report))
    console.print(Group(*parts))
