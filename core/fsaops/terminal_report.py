"""The report of one scenario run drawn for a terminal, with rich.

:func:`render` prints a :class:`~fsaops.report.Report` for a person: a
heading, the pages by operations table, why pages failed or were left, the
pages themselves (the first few of each kind) and a summary that ends in
the verdict.  Apart from :mod:`fsaops.report` so that a run that prints
JSON never imports rich.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text

from fsaops.errors import printable, shown_path
from fsaops.report import NOT_MOUNTED, SWAPPED_IN, Report, _n, member_name, tone, verdict
from fsaops.status import Status

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["PAGES_SHOWN", "PROBLEMS_SHOWN", "REASONS_SHOWN", "render"]


def _short(member: str | None) -> str:
    return member_name(member) if member is not None else ""


def _count(value: int, one: str, many: str) -> str:
    return f"{_n(value)} {one if value == 1 else many}"


def _counts_cell(counts: Mapping[str, int], style: str = "") -> Text:
    text = Text()
    for i, (name, count) in enumerate(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))):
        if i:
            text.append("\n")
        text.append(name, style=style)
        text.append(f" {_n(count)}")
    return text


def _number(value: int, style: str) -> Text:
    return Text(_n(value), style=style if value else "dim")


def _tables(report: Report) -> Table:
    table = Table(
        title="Pages by operations table",
        title_justify="left",
        title_style="bold",
        caption=(
            "failed: a permanent error, any errno but EAGAIN (what the table returned, such as "
            "EIO; EPERM for a VM_LOCKED page from 2.6.16; ENOMEM when add_to_swap found no swap "
            "slot)\nleft: still busy (EAGAIN) after the last pass, or not tried because "
            "no new page could be allocated (ENOMEM)"
        ),
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
        if entry.swapped_in:  # never "none: generic fallback": the run has no name for its op
            name.append(f"\n{SWAPPED_IN}", style="yellow")
        else:
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


REASONS_SHOWN = 20
"""Reasons the terminal report lists (the most pages first); the JSON has them all."""


def _listing(title: str) -> Table:
    """An empty table of the report's lists (reasons, pages), headed by ``title``."""
    return Table(
        title=title, title_justify="left", title_style="bold", box=box.SIMPLE_HEAD, pad_edge=False
    )


def _reasons(report: Report) -> Table | None:
    rows = [
        (entry.name, why, count) for entry in report.by_aops for why, count in entry.reasons.items()
    ]
    if not rows:
        return None
    table = _listing("Why pages failed or were left")
    table.add_column("table", overflow="fold", min_width=12)
    table.add_column("reason (the last pass)", min_width=20)
    table.add_column("pages", justify="right", no_wrap=True, min_width=5)
    rows.sort(key=lambda r: (-r[2], r[0], r[1]))
    # Text, never markup: a reason is what plugin code said ("[/dev/sdb1]", "[red]").
    for name, why, count in rows[:REASONS_SHOWN]:
        table.add_row(Text(name), Text(why), _n(count))
    if len(rows) > REASONS_SHOWN:
        rest = rows[REASONS_SHOWN:]
        table.add_row(
            "",
            Text(
                f"... and {_n(len(rest))} more reasons, for {_n(sum(r[2] for r in rest))} pages "
                "(the JSON lists every one)",
                style="dim",
            ),
            "",
        )
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


def _add_problems(grid: Table, problems: Sequence[str], count: int) -> None:
    """The first problems of a proof (or the read-back), and how many more there are."""
    for problem in problems[:PROBLEMS_SHOWN]:
        grid.add_row("", Text(problem, style="red"))
    unlisted = count - min(len(problems), PROBLEMS_SHOWN)
    if problems and unlisted > 0:
        grid.add_row(
            "",
            Text(
                f"... and {_n(unlisted)} more (the JSON report names the first "
                f"{_n(len(problems))})",
                style="dim",
            ),
        )


PROBLEMS_SHOWN: Final = 5
"""Problems of each proof (and of the read-back) the terminal report shows."""


def _summary(report: Report) -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()
    t = report.totals
    grid.add_row(
        "engine",
        f"{_count(t.passes, 'pass', 'passes')} in "
        f"{_count(t.calls, 'migrate_pages call', 'migrate_pages calls')}, "
        f"{_count(report.ticks.get('migration', 0), 'tick', 'ticks')}",
    )
    counters = "  ".join(
        f"{name} {_n(report.vmstat[name])}" for name in _VMSTAT_SHOWN if name in report.vmstat
    )
    grid.add_row("vmstat", Text(counters + "  (migration and read-back)"))
    freed = report.vmstat.get("pgfree")
    if freed is not None and freed != t.moved:
        spare = freed - t.moved
        grid.add_row(
            "",
            Text(
                f"pgfree: {_n(t.moved)} old pages freed once moved, and "
                f"{_n(spare)} spare new pages returned (a chunk's new pages that "
                "no old page used)",
                style="dim",
            ),
        )
    states = {k: v for k, v in report.workload.items() if isinstance(v, int) and v and k != "pages"}
    workload = f"{_n(report.workload.get('pages', 0))} pages"
    if states:
        workload += ": " + "  ".join(f"{k} {_n(v)}" for k, v in sorted(states.items()))
    grid.add_row("workload", Text(workload))
    if report.faults:
        faults = "  ".join(f"{k} {_n(v)}" for k, v in sorted(report.faults.items()))
        grid.add_row("faults", Text(faults))
    i = report.integrity
    line = Text(f"{_count(i.checked, 'page', 'pages')} read back")
    if i.not_cached:
        line.append(f" ({_n(i.not_cached)} execute in place: on their device, in no table)")
    line.append(": ")
    line.append(f"{_n(i.lost)} lost", style="bold red" if i.lost else "green")
    line.append(", ")
    line.append(f"{_n(i.corrupted)} corrupted", style="bold red" if i.corrupted else "green")
    grid.add_row("integrity", line)
    _add_problems(grid, i.problems, i.lost + i.corrupted)
    if report.invariants:
        grid.add_row(
            "invariants",
            Text(f"{len(report.invariants)} broken", style="bold red"),
        )
        for problem in report.invariants[:5]:
            grid.add_row("", Text(problem, style="red"))
    else:
        grid.add_row("invariants", Text("all hold", style="green"))
    # A finding loses nothing by itself; the run may have lost or broken something else.
    clean = report.outcome in (Status.OK, Status.FINDINGS)
    if report.findings:
        grid.add_row(
            "findings",
            Text(
                f"{_count(len(report.findings), 'finding', 'findings')} "
                + ("(wrong, but nothing lost)" if clean else "(wrong, besides the run's failures)")
                + (
                    ""
                    if report.watched
                    else ": only bad returns looked for; --strict looks at every page"
                ),
                style="bold yellow",
            ),
        )
        for finding in report.findings:
            grid.add_row(
                "",
                Text(
                    f"{finding.table}: {finding.kind} on {_count(finding.count, 'page', 'pages')}"
                    f", e.g. {finding.example}",
                    style="yellow",
                ),
            )
    elif report.watched and not report.watched_calls:
        grid.add_row(
            "findings",
            Text("none, but no page reached a migratepage: nothing was looked at", style="yellow"),
        )
    elif report.watched and clean:
        calls = _count(report.watched_calls, "migratepage call", "migratepage calls")
        grid.add_row("findings", Text(f"none: every one of {calls} looked right", style="green"))
    elif report.watched:
        calls = _count(report.watched_calls, "migratepage call", "migratepage calls")
        grid.add_row(
            "findings",
            Text(
                f"none in {calls}, but the run failed: what broke is not of a kind a finding names",
                style="yellow",
            ),
        )
    else:
        grid.add_row(
            "findings",
            Text(
                "not looked for: --strict (or --debug-vm) looks at every migratepage call",
                style="dim",
            ),
        )
    if report.proofs is not None:
        for proof, what in (
            (report.proofs.placement, "every page is where the engine says"),
            (
                report.proofs.durability,
                "every page reads back after writeback and a dropped cache",
            ),
        ):
            line = Text(f"{_count(proof.checked, 'page', 'pages')}: ")
            if proof.holds:
                line.append(f"holds: {what}", style="green")
            else:
                line.append(f"FAILS for {_n(proof.failures)}", style="bold red")
            if proof.memory_only:
                only = ", ".join(f"{t} {_n(n)}" for t, n in sorted(proof.memory_only.items()))
                line.append(f"  (in memory only, with no backing store: {only})", style="dim")
            grid.add_row(proof.name, line)
            _add_problems(grid, proof.problems, proof.failures)
    style = {"ok": "bold green", "note": "bold yellow", "bad": "bold red"}[tone(report)]
    grid.add_row("result", Text(verdict(report), style=style))
    return grid


def _heading(report: Report) -> Text:
    cfg = report.config.get("kernel", {})
    nodes = cfg.get("nodes", "?")
    memory = cfg.get("node_memory", 0)
    page_size = cfg.get("page_size", 0)
    from fsaops.config import format_size

    semantics = cfg.get("semantics", "?")
    text = Text("fsaops migrate", style="bold")
    source = shown_path(report.source)  # a file's name may hold an escape sequence
    text.append(f"  {source}  seed {report.seed}  semantics {semantics}\n", style="cyan")
    text.append(
        f"{nodes} nodes of {format_size(memory)}, {page_size}-byte pages; "
        f"every page of node {report.from_node} to node {report.to_node}",
        style="dim",
    )
    imported = [p.describe() for p in report.plugins if p.imported_by]
    plugins = [] if report.selection is None else [report.selection.describe()]
    if imported and report.selection is None:  # the scenario chose: say what it chose too
        plugins.append(", ".join(p.name for p in report.plugins if not p.imported_by))
    plugins += imported
    if plugins:
        text.append(f"\nplugins: {printable('; '.join(plugins))}", style="yellow")
    for part in report.left_out:
        text.append(f"\nleft out: {part.describe()}", style="yellow")
    for name in report.not_mounted:
        text.append(f"\nnot mounted: {NOT_MOUNTED.format(name=name)}", style="yellow")
    return text


PAGES_SHOWN = 5
"""Pages of each kind (left, failed) the terminal report lists; the JSON has them all."""


def _pages(report: Report) -> Table | None:
    groups = [("failed", report.pages_failed, "red"), ("left", report.pages_left, "yellow")]
    if not any(pages for _, pages, _ in groups):
        return None
    table = _listing("Pages that did not move (the JSON lists every one)")
    table.add_column("", no_wrap=True)
    table.add_column("pfn", justify="right", no_wrap=True)
    table.add_column("page", overflow="fold", min_width=12)
    table.add_column("table", overflow="fold", min_width=12)
    table.add_column("pass", justify="right", no_wrap=True)
    table.add_column("why", min_width=20)
    for label, pages, style in groups:
        for i, page in enumerate(pages[:PAGES_SHOWN]):
            more = len(pages) - PAGES_SHOWN
            head = Text(f"{label} ({_n(len(pages))})" if i == 0 else "", style=style)
            table.add_row(
                head,
                str(page.pfn),
                Text(page.where()),
                Text(page.table),
                "-" if page.pass_ is None else str(page.pass_),
                Text(f"{page.errno}: {page.reason}"),
                end_section=i == min(len(pages), PAGES_SHOWN) - 1 and more <= 0,
            )
        if len(pages) > PAGES_SHOWN:
            table.add_row(
                "",
                "",
                Text(f"... and {_n(len(pages) - PAGES_SHOWN)} more", style="dim"),
                end_section=True,
            )
    return table


def render(report: Report, console: Console) -> None:
    """Print the report for a person: tables per operations table, reasons, pages, summary."""
    tables = _tables(report)
    below = [t for t in (_reasons(report), _pages(report)) if t is not None]
    # The tables are drawn as wide as the widest of them (the reasons' long text can take the
    # whole terminal), and the legend under the first ends in a line of its own.
    widest = max(console.measure(t).maximum for t in (tables, *below))
    if console.measure(tables).maximum < widest:
        tables.width = widest
    for table in below:
        table.width = widest
    parts: list[Any] = [_heading(report), Text(""), tables, Text(""), *below, _summary(report)]
    console.print(Group(*parts))
