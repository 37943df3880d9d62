"""A table plugin code swapped in is described as swapped in, never as a generic fallback.

A ``migratepage`` that sets its file's ``mapping->a_ops`` fails the run
(an invariant, :mod:`test_file_identity`), but the file's later pages are
still tried under the swapped-in table, and the report lists it.  No mount
of the run was set up with it, so the run knows neither its filesystem,
its mode nor the name of its ``migratepage``: the listing said
``? ? · none: generic fallback`` beside ``moved via migratepage 7``.  Now
the terminal report and the ``--html`` page say plainly that plugin code
swapped it in, and tables a mount was set up with read as before.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable

import attrs
import pytest
from rich.console import Console

from ext2_once import once
from fsaops.aops import AddressSpaceOperations
from fsaops.config import parse_config
from fsaops.fs import Inode
from fsaops.html_report import render_report
from fsaops.plugins import Registry
from fsaops.report import SWAPPED_IN, Report, TableReport
from fsaops.scenario import run_scenario
from fsaops.terminal_report import render

SCENARIO = (
    '[kernel]\nnode_memory = "4MiB"\n[[mount]]\nfs = "alt"\npages = 16\nfiles = 2\n'
    '[[mount]]\nfs = "ext2"\npages = 8\n[[mount]]\nfs = "ext3"\nmode = "journal"\npages = 4\n'
    "[workload]\nseed = 3\ndirty = 0.5\n"
)


def _swapping(registry: Registry, swapped: AddressSpaceOperations) -> Registry:
    """ext2 as ``alt`` (``alt_aops``), whose first ``migratepage`` that moves puts ``swapped``
    on its file's mapping."""

    def swap(host: Inode) -> None:
        host.i_mapping.a_ops = swapped

    return once(registry, swap)


def _nobh(registry: Registry) -> AddressSpaceOperations:
    """ext2's ``nobh`` table: it has ``buffer_migrate_page``, and no mount of the run uses it."""
    return registry.filesystems["ext2"].modes["nobh"]


def _without_migratepage(registry: Registry) -> AddressSpaceOperations:
    """ext2's ``nobh`` table without ``migratepage``, as ``nomigrate_aops``."""
    return attrs.evolve(_nobh(registry), name="nomigrate_aops", migratepage=None)


def _run(registry: Registry, swapped: AddressSpaceOperations) -> Report:
    config = parse_config(SCENARIO, "s.toml")
    return run_scenario(config, _swapping(registry, swapped), source="s.toml")


def _terminal(report: Report) -> str:
    buffer = io.StringIO()
    render(report, Console(file=buffer, width=160, highlight=False, color_system=None))
    return buffer.getvalue()


def _row(text: str, name: str) -> str:
    """The two lines of the terminal listing's row of table ``name``, up to its first column."""
    lines = text.splitlines()
    at = next(i for i, line in enumerate(lines) if line.split()[:1] == [name])
    return "\n".join(re.split(r"\s{2,}", line.strip())[0] for line in lines[at : at + 2])


def _swapped_entry(report: Report, name: str) -> TableReport:
    (entry,) = [t for t in report.by_aops if t.name == name]
    assert entry.swapped_in
    assert (entry.filesystem, entry.mode, entry.migratepage) == ("?", "?", None)
    return entry


@pytest.mark.parametrize(
    ("swapped", "name", "via"),
    [(_nobh, "ext2_nobh_aops", "migratepage"), (_without_migratepage, "nomigrate_aops", None)],
    ids=["with-migratepage", "without-migratepage"],
)
def test_the_terminal_report_says_plugin_code_swapped_the_table_in(
    registry: Registry,
    swapped: Callable[[Registry], AddressSpaceOperations],
    name: str,
    via: str | None,
) -> None:
    report = _run(registry, swapped(registry))
    assert not report.ok
    assert any(f"a_ops is {name}, not its mount's alt_aops" in i for i in report.invariants)
    entry = _swapped_entry(report, name)
    assert entry.pages and entry.moved
    if via is not None:
        assert entry.via == {via: entry.moved}
    row = _row(_terminal(report), name)
    assert row.splitlines()[1] == SWAPPED_IN == "no mount's table: plugin code swapped it in"
    assert "generic fallback" not in row
    assert "?" not in row


def test_the_page_says_plugin_code_swapped_the_table_in(registry: Registry) -> None:
    report = _run(registry, _nobh(registry))
    _swapped_entry(report, "ext2_nobh_aops")
    page = render_report(report)
    (row,) = re.findall(r'<tr data-table="ext2_nobh_aops">.*?</tr>', page)
    assert (
        '<td class="nowrap">no mount&#x27;s</td>'
        '<td class="mono nowrap">plugin code swapped the table in</td>'
    ) in row
    (card,) = re.findall(r'<article class="card" data-table="ext2_nobh_aops">.*?</article>', page)
    assert '<p class="muted">no mount&#x27;s table: plugin code swapped it in</p>' in card
    for said in (row, card):
        assert "generic fallback" not in said
        assert "? ?" not in said


def test_tables_a_mount_was_set_up_with_read_as_before(registry: Registry) -> None:
    """ext3 ``data=journal`` has no ``migratepage``: still "none: generic fallback"."""
    report = _run(registry, _nobh(registry))
    assert [t.name for t in report.by_aops if t.swapped_in] == ["ext2_nobh_aops"]
    text = _terminal(report)
    assert _row(text, "alt_aops").splitlines()[1].startswith("alt default · ")
    assert _row(text, "ext2_aops").splitlines()[1] == "ext2 default · buffer_migrate_page"
    assert _row(text, "ext3_journalled_aops").splitlines()[1] == (
        "ext3 journal · none: generic fallback"
    )
    page = render_report(report)
    (card,) = re.findall(r'<article class="card" data-table="ext3_journalled_aops">.*?</p>', page)
    assert card.endswith(
        '<p class="muted"><bdi>ext3</bdi> <bdi>journal</bdi> · '
        "<code>none: the engine&#x27;s generic fallback</code></p>"
    )
