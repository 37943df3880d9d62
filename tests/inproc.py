"""Running fsaops's command line inside the test process, capturing what it writes.

For commands that need no isolation (a subprocess with limits is
:mod:`guarded`'s job): the diff tests run ``migrate`` and ``diff`` this way.
"""

from __future__ import annotations

import io
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

from fsaops.cli import main

SCENARIOS = Path(__file__).resolve().parent.parent / "docs" / "scenarios"


def fsaops(*args: str) -> tuple[int, str, str]:
    """``fsaops ARGS``: the exit status, standard output and standard error."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        status = main(list(args))
    return status, out.getvalue(), err.getvalue()


def ext3_reports(folder: Path) -> tuple[Path, Path]:
    """Reports of ext3 data=ordered and data=journal in ``folder``, as cli.md compares them."""
    paths = []
    for mode in ("ordered", "journal"):
        status, out, err = fsaops("migrate", str(SCENARIOS / f"ext3-{mode}.toml"), "--json")
        assert status == 0, err
        path = folder / f"{mode}.json"
        path.write_text(out, encoding="utf-8")
        paths.append(path)
    return paths[0], paths[1]
