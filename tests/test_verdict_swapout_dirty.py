"""A ``writepage`` that fakes the writes swap-out asks for must not get an OK.

The workload gives each page one state, so the pages migrated by swap-out
(``swapout``: ``migrate_pages`` with no new pages, each page dropped by
``swap_page``) were always clean, and ``swap_page`` never handed a dirty
page of a table with a ``migratepage`` to ``pageout``. A ``writepage``
that, asked to write for reclaim, cleared the dirty bit and wrote nothing
got OK from a plain run, ``--strict`` and ``--debug-vm``: the one call
that would lose the data never came. ``workload.swapout_dirty`` now
rewrites that fraction of the swapout pages of files with a
``writepage``, leaving them dirty, before they are isolated.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from inproc import installed, migrate_json

PLUGIN = '''
import attrs

import fsaops
from fsaops.page import PG, unlock_page
from fsaops_ext2 import EXT2, ext2_aops, ext2_nobh_aops


def _fakes_reclaim(writepage):
    def fakes_reclaim_writes(page, wbc):
        """Writes as ext2 does, but for reclaim: then clears the dirty bit and writes nothing."""
        if wbc.for_reclaim:
            page.flags &= ~PG.dirty
            unlock_page(page)
            return 0
        return writepage(page, wbc)

    return fakes_reclaim_writes


def _type(name, base):
    table = attrs.evolve(base, name=f"{name}_aops", writepage=_fakes_reclaim(base.writepage))
    return attrs.evolve(EXT2, name=name, modes={"default": table}, page_cache={})


@fsaops.hookimpl
def fsaops_filesystem_types():
    return [_type("fakes_reclaim", ext2_aops), _type("fakes_reclaim_nobh", ext2_nobh_aops)]
'''

CONFIG = """\
[kernel]
node_memory = "2MiB"
semantics = "{semantics}"
[plugins]
load = ["faker", "ext2", "swap"]
[[mount]]
fs = "{fs}"
pages = 48
files = 4
block_size = 1024
[processes]
count = 2
anon_pages = 12
[workload]
seed = 7
swapout = 0.3
swapout_dirty = {swapout_dirty}
dirty = 0.2
mapped = 0.2
"""

SEMANTICS = ["v4", "2.6.16", "2.6.17"]


@pytest.fixture(scope="module")
def configs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """``faker`` installed; a folder for configs."""
    yield from installed(tmp_path_factory, "faker", PLUGIN)


def run(
    configs: Path, fs: str, semantics: str, *options: str, swapout_dirty: float = 1.0
) -> tuple[int, dict[str, Any]]:
    """``fsaops migrate --json OPTIONS`` of the scenario on ``fs``: exit status, report."""
    text = CONFIG.format(fs=fs, semantics=semantics, swapout_dirty=swapout_dirty)
    path = configs / f"{fs}-{semantics}-{len(options)}-{swapout_dirty}.toml"
    return migrate_json(path, text, *options)


@pytest.mark.parametrize("semantics", SEMANTICS)
@pytest.mark.parametrize("fs", ["fakes_reclaim", "fakes_reclaim_nobh"])
@pytest.mark.parametrize("options", [(), ("--strict",), ("--debug-vm",)])
def test_a_writepage_that_fakes_reclaim_writes_is_data_lost(
    configs: Path, fs: str, semantics: str, options: tuple[str, ...]
) -> None:
    rc, report = run(configs, fs, semantics, *options)
    assert (rc, report["status"]) == (1, "data lost"), report.get("error")
    said = str(report["integrity"]) + str(report["proofs"])
    assert "generation 0, expected 1" in said, said


@pytest.mark.parametrize("semantics", SEMANTICS)
def test_without_the_key_no_dirty_page_reaches_pageout_for_reclaim(
    configs: Path, semantics: str
) -> None:
    """The hole the key closes: at 0 (the default) the same table is OK."""
    rc, report = run(configs, "fakes_reclaim_nobh", semantics, swapout_dirty=0.0)
    assert (rc, report["status"]) == (0, "ok"), report.get("error")


@pytest.mark.parametrize("semantics", SEMANTICS)
@pytest.mark.parametrize("options", [(), ("--strict",), ("--debug-vm",)])
def test_dirty_swapout_pages_are_written_out_then_dropped(
    configs: Path, semantics: str, options: tuple[str, ...]
) -> None:
    """ext2's own tables: each dirty swapout page goes through pageout, and nothing is lost."""
    rc, report = run(configs, "ext2", semantics, *options)
    clean_rc, clean = run(configs, "ext2", semantics, *options, swapout_dirty=0.0)
    assert (rc, report["status"], report["findings"]) == (0, "ok", []), report.get("error")
    assert (clean_rc, clean["status"]) == (0, "ok"), clean.get("error")
    # The same pages are swapped out either way; only their dirty state differs.
    assert report["workload"] == clean["workload"]
    dirtied = report["vmstat"]["migrate_pageout"] - clean["vmstat"]["migrate_pageout"]
    assert dirtied > 0, (report["vmstat"], clean["vmstat"])
    dropped = sum(t["via"].get("dropped", 0) for t in report["by_aops"].values())
    assert dropped > 0, report["by_aops"]


def test_swapout_dirty_draws_nothing_when_zero(configs: Path) -> None:
    """At 0 the scenario is the one it was before the key: same report but for the key itself."""
    _, with_key = run(configs, "ext2", "v4", swapout_dirty=0.0)
    text = CONFIG.format(fs="ext2", semantics="v4", swapout_dirty=0.0).replace(
        "swapout_dirty = 0.0\n", ""
    )
    _, without = migrate_json(configs / "no-key.toml", text)
    for report in (with_key, without):
        report.pop("source", None)
    assert with_key == without


def test_swapout_dirty_out_of_range_is_bad_input(configs: Path) -> None:
    text = CONFIG.format(fs="ext2", semantics="v4", swapout_dirty=1.5)
    rc, report = migrate_json(configs / "out-of-range.toml", text)
    assert (rc, report["status"]) == (2, "bad input")
    said = "workload.swapout_dirty: expected a fraction from 0 to 1, got 1.5"
    assert said in str(report["error"])
