"""``fsaops migrate --strict`` finds a ``migratepage`` that makes another page of its file stale.

``migratepage`` is handed the old page and the new one, both locked
(KERNEL-SPEC §3 step 9); every other page of the file is its owners'.  A
table that clears a neighbour's ``PG_uptodate``, or ``BH_Uptodate`` on the
mapped buffers of a dirty neighbour, loses nothing the run reads back (sync
writes the dirty buffers, and the read-back goes to disk), yet the next
read or partial write of that page fetches the block from disk over newer
data.  Every judge said OK: the per-call findings looked at the two pages
only, and a neighbour changed before its own call was taken as it came.
Each broken table below is ext2's ``buffer_migrate_page`` and one act on
the page before it in its file, in a plugin installed through the
``fsaops`` entry-point group; ext2's own table, from the same plugin, is
the control.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from inproc import installed, migrate_json

PLUGIN = '''
import attrs

import fsaops
from fsaops import buffer_migrate_page
from fsaops.buffer import BH, buffers
from fsaops.page import PG
from fsaops_ext2 import EXT2, ext2_aops


def _before(page):
    mapping = page.mapping
    if mapping is None or page.index == 0:
        return None
    return mapping.lookup(page.index - 1)


def stales_a_neighbour_page(newpage, page):
    """Moves the page, and clears PG_uptodate on the page before it in its file."""
    other = _before(page)
    rc = buffer_migrate_page(newpage, page)
    if other is not None:
        other.flags &= ~PG.uptodate
    return rc


def stales_a_neighbours_buffers(newpage, page):
    """Moves the page, and clears BH_Uptodate on the dirty buffers of the page before it."""
    other = _before(page)
    rc = buffer_migrate_page(newpage, page)
    if other is not None and other.flags & PG.private:
        for bh in buffers(other.private):
            if bh.b_state & BH.dirty:
                bh.b_state &= ~BH.uptodate
    return rc


def _type(name, migratepage):
    table = attrs.evolve(ext2_aops, name=f"{name}_aops", migratepage=migratepage)
    return attrs.evolve(EXT2, name=name, modes={"default": table}, page_cache={})


@fsaops.hookimpl
def fsaops_filesystem_types():
    return [
        _type("stales_a_neighbour_page", stales_a_neighbour_page),
        _type("stales_a_neighbours_buffers", stales_a_neighbours_buffers),
        _type("control", buffer_migrate_page),
    ]
'''

CONFIG = """\
[kernel]
node_memory = "2MiB"
semantics = "{semantics}"
[plugins]
load = ["staler"]
[[mount]]
fs = "{name}"
pages = 48
files = 2
block_size = 1024
[processes]
count = 2
[workload]
seed = 3
dirty = 0.3
mapped = 0.3
pinned = 0.05
"""

SAID = {
    "stales_a_neighbour_page": (
        "flags",
        r"migratepage of pfn \d+ cleared PG_uptodate of pfn \d+ \(mount0/file\d page \d+\), a page "
        r"it was not handed: the next read fetches that page from disk again, over its data if "
        r"it is dirty",
    ),
    "stales_a_neighbours_buffers": (
        "buffers",
        r"migratepage of pfn \d+ cleared BH_Uptodate of buffer head \d of pfn \d+ "
        r"\(mount0/file\d page \d+\), a page it was not handed: the next read or partial write "
        r"fetches the block from disk again, over its data if it is dirty",
    ),
}
"""Each broken table: the kind of its finding, and the finding's example as a pattern."""


@pytest.fixture(scope="module")
def configs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """``staler`` installed; a folder for configs."""
    yield from installed(tmp_path_factory, "staler", PLUGIN)


def _migrate(configs: Path, name: str, semantics: str, *options: str) -> tuple[int, dict[str, Any]]:
    config = CONFIG.format(name=name, semantics=semantics)
    return migrate_json(configs / f"{name}-{semantics}.toml", config, *options)


@pytest.mark.parametrize("semantics", ["v4", "2.6.17"])
@pytest.mark.parametrize("name", sorted(SAID))
def test_strict_finds_a_neighbour_made_stale(configs: Path, name: str, semantics: str) -> None:
    kind, said = SAID[name]
    rc, report = _migrate(configs, name, semantics, "--strict")
    assert (rc, report["status"]) == (1, "findings")
    (finding,) = [f for f in report["findings"] if f["kind"] == kind]
    assert finding["table"] == f"{name}_aops"
    assert re.fullmatch(said, finding["example"]), finding["example"]
    # A plain run loses nothing it reads back: it stays OK, as for every finding.
    rc, report = _migrate(configs, name, semantics)
    assert (rc, report["status"]) == (0, "ok")


@pytest.mark.parametrize("semantics", ["v4", "2.6.16", "2.6.17"])
def test_ext2s_own_table_makes_no_neighbour_stale(configs: Path, semantics: str) -> None:
    rc, report = _migrate(configs, "control", semantics, "--strict", "--debug-vm")
    assert (rc, report["status"], report["findings"]) == (0, "ok", [])
