"""A ``migratepage`` that loses a dirty page it gives up on must not get an OK.

The workload gives each page one state, so the pages every
``migratepage`` call gives up on (``pinned``: another task holds a
reference) were always clean, and no dirty page ever went back to the LRU
through a failed call. A table that cleared the ``BH_dirty`` bits of a
page it gave up on (its next ``writepage`` then writes nothing, and the
data is gone) got OK from a plain run, ``--strict`` and ``--debug-vm``.
``workload.pinned_dirty`` now rewrites that fraction of the pinned pages
of files with a ``writepage``, leaving them dirty, before the pin.
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
from fsaops_ext2 import EXT2, ext2_aops


def cleans_what_it_gives_up(newpage, page):
    """Moves what it can; clears the BH_dirty bits of a page it gives up."""
    rc = buffer_migrate_page(newpage, page)
    if rc != 0 and page.flags & PG.private:
        for bh in buffers(page.private):
            bh.b_state &= ~BH.dirty
    return rc


def _type(name, migratepage):
    table = attrs.evolve(ext2_aops, name=f"{name}_aops", migratepage=migratepage)
    return attrs.evolve(EXT2, name=name, modes={"default": table}, page_cache={})


@fsaops.hookimpl
def fsaops_filesystem_types():
    return [
        _type("cleans_what_it_gives_up", cleans_what_it_gives_up),
        _type("gives_up_dirty_pages_whole", buffer_migrate_page),
    ]
'''

CONFIG = """\
[kernel]
node_memory = "2MiB"
semantics = "{semantics}"
[plugins]
load = ["cleaner", "ext2"]
[[mount]]
fs = "{fs}"
pages = 48
files = 2
block_size = 1024
[processes]
count = 2
[workload]
seed = 3
dirty = 0.3
mapped = 0.3
pinned = 0.1
pinned_dirty = {pinned_dirty}
"""

SEMANTICS = ["v4", "2.6.16", "2.6.17"]


@pytest.fixture(scope="module")
def configs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """``cleaner`` installed; a folder for configs."""
    yield from installed(tmp_path_factory, "cleaner", PLUGIN)


def run(
    configs: Path, fs: str, semantics: str, *options: str, pinned_dirty: float = 1.0
) -> tuple[int, dict[str, object]]:
    """``fsaops migrate --json OPTIONS`` of the scenario on ``fs``: exit status, report."""
    text = CONFIG.format(fs=fs, semantics=semantics, pinned_dirty=pinned_dirty)
    path = configs / f"{fs}-{semantics}-{len(options)}-{pinned_dirty}.toml"
    return migrate_json(path, text, *options)


@pytest.mark.parametrize("semantics", SEMANTICS)
def test_a_dirty_page_cleaned_by_a_failed_call_is_data_lost(configs: Path, semantics: str) -> None:
    rc, report = run(configs, "cleans_what_it_gives_up", semantics)
    assert (rc, report["status"]) == (1, "data lost"), report.get("error")


def test_the_loss_names_the_page_as_left_in_place_not_moved(configs: Path) -> None:
    rc, report = run(configs, "cleans_what_it_gives_up", "v4")
    assert rc == 1
    said = str(report["proofs"])
    assert "(left in place by cleans_what_it_gives_up_aops): a dirty state was lost" in said
    assert "(moved by cleans_what_it_gives_up_aops)" not in said


@pytest.mark.parametrize("semantics", SEMANTICS)
@pytest.mark.parametrize("options", [("--strict",), ("--debug-vm",)])
def test_strict_and_debug_vm_fail_a_table_that_cleaned_a_page_it_gave_up(
    configs: Path, semantics: str, options: tuple[str, ...]
) -> None:
    rc, report = run(configs, "cleans_what_it_gives_up", semantics, *options)
    assert rc == 1
    assert report["status"] in {"data lost", "invariant broken"}, report.get("error")


@pytest.mark.parametrize("semantics", SEMANTICS)
@pytest.mark.parametrize("options", [(), ("--strict",), ("--debug-vm",)])
def test_dirty_pinned_pages_left_whole_are_no_failure(
    configs: Path, semantics: str, options: tuple[str, ...]
) -> None:
    rc, report = run(configs, "gives_up_dirty_pages_whole", semantics, *options)
    assert (rc, report["status"], report["findings"]) == (0, "ok", []), report.get("error")
    totals = report["totals"]
    assert isinstance(totals, dict)
    assert totals["not_migrated"], totals


def test_pinned_dirty_out_of_range_is_bad_input(configs: Path) -> None:
    text = CONFIG.format(fs="gives_up_dirty_pages_whole", semantics="v4", pinned_dirty=1.5)
    rc, report = migrate_json(configs / "out-of-range.toml", text)
    assert (rc, report["status"]) == (2, "bad input")
    assert "workload.pinned_dirty: expected a fraction from 0 to 1, got 1.5" in str(report["error"])
