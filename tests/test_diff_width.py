"""``fsaops diff`` at the width of the terminal: rows wrap, no column or value is cut off."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import pytest
from rich.cells import cell_len
from rich.console import Console

from fsaops.diff import compare, load_report, render
from inproc import ext3_reports
from inproc import fsaops as _fsaops


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Reports of ext3 data=ordered and data=journal, as cli.md compares them."""
    return ext3_reports(tmp_path_factory.mktemp("reports"))


def _check_drawn(out: str, width: int, comparison: Any) -> None:
    """Every line fits; every table has its four columns; every number and delta is whole."""
    lines = out.splitlines()
    assert max(cell_len(line) for line in lines) <= width
    tables = [section for section in comparison.sections if section.rows]
    heads = [line for line in lines if re.search(r"\bA\s+B\s+B - A\s*$", line)]
    assert len(heads) == len(tables), f"a section lost a column at width {width}"
    words = set(out.split())
    for section in tables:
        for row in section.rows:
            for value in (row.a, row.b):
                shown = str(value) if not isinstance(value, int) else f"{value:,}"
                for word in shown.split():
                    if re.search(r"\d", word) and len(word) <= 10:
                        assert word in words, (width, row.name, shown)
            if row.differs and row.delta is not None and row.marked is None:
                assert f"{row.delta:+,}" in words, (width, row.name)


@pytest.mark.parametrize("width", [80, 100, 120])
def test_diff_wraps_at_the_terminal_width_and_cuts_nothing(
    reports: tuple[Path, Path], width: int
) -> None:
    a, b = reports
    comparison = compare(load_report(str(a)), load_report(str(b)), names=(str(a), str(b)))
    buffer = io.StringIO()
    render(comparison, Console(file=buffer, width=width, highlight=False, markup=False))
    out = buffer.getvalue()
    _check_drawn(out, width, comparison)
    # The first page left in B, as cli.md shows it: its pass is 10, never cut to 1.
    assert "pass 10:" in " ".join(out.split())


def test_diff_piped_is_drawn_at_120_columns_whole(reports: tuple[Path, Path]) -> None:
    a, b = reports
    status, out, err = _fsaops("diff", str(a), str(b))
    assert (status, err) == (0, "")
    comparison = compare(load_report(str(a)), load_report(str(b)), names=(str(a), str(b)))
    _check_drawn(out, 120, comparison)
