"""A ``migratepage`` that writes the page's buffers out itself, around ``writepage``.

V4 5/6 moves a dirty page dirty: writing it back instead is the habit the
series ended, and ``--strict`` names it (a ``writepage`` finding) when the
call goes through ``writepage``.  A table that writes the buffers with
``sync_dirty_buffer`` and cleans the page moved it clean with every mode
saying OK: the finding counted only ``nr_writepage``.  Now the block writes
the call makes to its page's device, while no other task's I/O completes,
count too.  ext2's own table, from the same plugin, is the control.
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
from fsaops.buffer import BH, buffers, sync_dirty_buffer
from fsaops.page import PG
from fsaops.writeback import clear_page_dirty_for_io
from fsaops_ext2 import EXT2, ext2_aops


def writes_buffers_then_moves(newpage, page):
    """Writes a dirty page's buffers with sync_dirty_buffer, cleans it, then moves it clean."""
    if page.flags & PG.private and page.flags & PG.dirty:
        for bh in buffers(page.private):
            if bh.b_state & BH.dirty:
                sync_dirty_buffer(bh)
        clear_page_dirty_for_io(page)
    return buffer_migrate_page(newpage, page)


def _type(name, migratepage):
    table = attrs.evolve(ext2_aops, name=f"{name}_aops", migratepage=migratepage)
    return attrs.evolve(EXT2, name=name, modes={"default": table}, page_cache={})


@fsaops.hookimpl
def fsaops_filesystem_types():
    return [_type("syncbh", writes_buffers_then_moves), _type("control", buffer_migrate_page)]
'''

CONFIG = """\
[kernel]
node_memory = "2MiB"
semantics = "{semantics}"
[plugins]
load = ["syncbh", "ext2"]
[[mount]]
fs = "{fs}"
pages = 32
files = 2
block_size = 1024
[processes]
count = 2
[workload]
seed = 3
dirty = 0.3
mapped = 0.3
pinned = 0.1
"""


@pytest.fixture(scope="module")
def configs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """``syncbh`` installed; a folder for configs."""
    yield from installed(tmp_path_factory, "syncbh", PLUGIN)


@pytest.mark.parametrize("semantics", ["v4", "2.6.16", "2.6.17"])
def test_buffers_written_around_writepage_are_a_writepage_finding(
    configs: Path, semantics: str
) -> None:
    path = configs / f"syncbh-{semantics}.toml"
    rc, report = migrate_json(path, CONFIG.format(semantics=semantics, fs="syncbh"), "--strict")
    assert (rc, report["status"]) == (1, "findings"), report.get("error")
    found = [f for f in report["findings"] if f["kind"] == "writepage"]
    assert found and found[0]["table"] == "syncbh_aops", report["findings"]
    assert "block(s) to the device of pfn" in found[0]["example"]
    assert "(not through writepage)" in found[0]["example"]


@pytest.mark.parametrize("semantics", ["v4", "2.6.16", "2.6.17"])
def test_a_table_that_writes_nothing_is_no_finding(configs: Path, semantics: str) -> None:
    path = configs / f"control-{semantics}.toml"
    rc, report = migrate_json(
        path, CONFIG.format(semantics=semantics, fs="control"), "--strict", "--debug-vm"
    )
    assert (rc, report["status"], report["findings"]) == (0, "ok", []), report.get("error")
