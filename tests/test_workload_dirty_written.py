"""``workload.dirty_written``: dirty pages rewritten with ``write(2)``, not through a mapping.

The ``dirty`` state stores through a shared mapping, which files nothing in
a journal. So no page of an ext3 ``data=ordered`` mount ever reached a
``migratepage`` with its dirty buffers filed in the running transaction as
ordered data, which is what ``write(2)`` (``ext3_ordered_commit_write``)
leaves, and a table that cleared ``BH_dirty`` on buffers the journal holds
(the commit then writes nothing, and the data never reaches the disk) got
OK from a plain run, ``--strict`` and ``--debug-vm``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from inproc import installed, migrate_json

PLUGIN = '''
import attrs

import fsaops
from fsaops import buffer_migrate_page
from fsaops.buffer import BH, buffers
from fsaops.page import PG
from fsaops_ext3 import EXT3


def undirties_journal_buffers(newpage, page):
    """buffer_migrate_page, then "a buffer the journal holds is the journal's to write"."""
    rc = buffer_migrate_page(newpage, page)
    if rc == 0 and newpage.flags & PG.private:
        for bh in buffers(newpage.private):
            if bh.b_state & BH.jbd:
                bh.b_state &= ~BH.dirty
    return rc


def _type(name, migratepage):
    modes = {
        mode: attrs.evolve(table, name=f"{name}_{mode}_aops", migratepage=migratepage)
        for mode, table in EXT3.modes.items()
        if mode != "journal"
    }
    return attrs.evolve(EXT3, name=name, modes=modes, default_mode="ordered")


@fsaops.hookimpl
def fsaops_filesystem_types():
    return [
        _type("undirties_journal_buffers", undirties_journal_buffers),
        _type("leaves_journal_buffers", buffer_migrate_page),
    ]
'''

CONFIG = """\
[kernel]
node_memory = "2MiB"
semantics = "{semantics}"
[plugins]
load = ["ordered", "ext3", "swap"]
[[mount]]
fs = "{fs}"
mode = "ordered"
pages = 48
files = 2
block_size = 1024
[processes]
count = 2
anon_pages = 8
[workload]
seed = 4
dirty = 0.4
mapped = 0.1
pinned = 0.05
dirty_written = {fraction}
"""

SEMANTICS = ["v4", "2.6.16", "2.6.17"]
MODES = [(), ("--strict",), ("--debug-vm",)]


@pytest.fixture(scope="module")
def configs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """``ordered`` installed; a folder for configs."""
    yield from installed(tmp_path_factory, "ordered", PLUGIN)


def run(
    configs: Path, fs: str, *options: str, semantics: str = "v4", fraction: float = 0.5
) -> tuple[int, dict[str, object]]:
    """``fsaops migrate --json OPTIONS`` of the scenario on ``fs``: exit status, report."""
    text = CONFIG.format(fs=fs, semantics=semantics, fraction=fraction)
    path = configs / f"{fs}-{semantics}-{'-'.join(options)}-{fraction}.toml"
    return migrate_json(path, text, *options)


@pytest.mark.parametrize("semantics", SEMANTICS)
@pytest.mark.parametrize("options", MODES)
def test_clearing_dirty_on_ordered_data_buffers_fails_the_run(
    configs: Path, semantics: str, options: tuple[str, ...]
) -> None:
    rc, report = run(configs, "undirties_journal_buffers", *options, semantics=semantics)
    assert rc == 1
    assert report["status"] in {"data lost", "invariant broken"}, report.get("error")


def test_the_loss_is_the_data_of_pages_written_with_write(configs: Path) -> None:
    rc, report = run(configs, "undirties_journal_buffers")
    assert (rc, report["status"]) == (1, "data lost")
    assert "a dirty state was lost" in str(report["proofs"])


def test_pages_dirtied_through_a_mapping_alone_do_not_show_it(configs: Path) -> None:
    """What catches the table above is the write(2)-dirtied pages: without them it passes."""
    rc, report = run(configs, "undirties_journal_buffers", fraction=0.0)
    assert (rc, report["status"]) == (0, "ok"), report.get("error")


@pytest.mark.parametrize("semantics", SEMANTICS)
@pytest.mark.parametrize("options", MODES)
def test_buffer_migrate_page_keeps_ordered_data_dirty(
    configs: Path, semantics: str, options: tuple[str, ...]
) -> None:
    rc, report = run(configs, "leaves_journal_buffers", *options, semantics=semantics)
    assert (rc, report["status"], report["findings"]) == (0, "ok", []), report.get("error")


@pytest.mark.parametrize("mode", ["ordered", "writeback", "journal"])
def test_every_ext3_mode_passes_with_every_dirty_page_written(tmp_path: Path, mode: str) -> None:
    text = (
        CONFIG.format(fs="ext3", semantics="2.6.17", fraction=1.0)
        .replace('load = ["ordered", "ext3", "swap"]', 'load = ["ext3", "swap"]')
        .replace('mode = "ordered"', f'mode = "{mode}"')
    )
    rc, report = migrate_json(tmp_path / f"{mode}.toml", text, "--strict")
    assert (rc, report["status"], report["findings"]) == (0, "ok", []), report.get("error")
    workload = report["workload"]
    assert isinstance(workload, dict)
    assert workload["dirty"] == 19  # 0.4 of 48 pages, rounded half up


def test_the_same_seed_gives_the_same_report(configs: Path) -> None:
    first = run(configs, "leaves_journal_buffers", fraction=0.7)
    assert run(configs, "leaves_journal_buffers", fraction=0.7) == first


def test_a_fraction_out_of_range_is_bad_input(configs: Path) -> None:
    rc, report = run(configs, "leaves_journal_buffers", fraction=1.5)
    assert rc == 2
    assert "workload.dirty_written: expected a fraction from 0 to 1, got 1.5" in str(
        report["error"]
    )
