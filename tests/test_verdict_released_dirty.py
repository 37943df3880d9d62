"""A ``migratepage`` that loses the dirty state of a page with no buffers must not get an OK.

On a table that uses buffer heads, a page can be dirty with none: reclaim
freed them (``released``, as ``mpage_readpage`` leaves a page), then a
store through a shared mapping dirtied it, and ``set_page_dirty`` found no
buffer to dirty. ``buffer_migrate_page`` hands such a page to
``migrate_page``, which moves the dirty bit. The workload gave each page
one state, so every released page was clean, and a ``migratepage`` that
dropped the dirty bit of a page without buffers got OK from a plain run,
``--strict`` and ``--debug-vm``. ``workload.released_dirty`` now stores
into that fraction of the released pages once their buffers are freed.
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
from fsaops import buffer_migrate_page, migrate_page
from fsaops.page import PG
from fsaops_ext2 import EXT2, ext2_aops


def loses_dirty_without_buffers(newpage, page):
    """buffer_migrate_page, but a page without buffers arrives clean."""
    if page.flags & PG.private:
        return buffer_migrate_page(newpage, page)
    rc = migrate_page(newpage, page)
    if rc == 0:
        newpage.flags &= ~PG.dirty
    return rc


@fsaops.hookimpl
def fsaops_filesystem_types():
    table = attrs.evolve(
        ext2_aops, name="loses_dirty_aops", migratepage=loses_dirty_without_buffers
    )
    return [attrs.evolve(EXT2, name="loses_dirty", modes={"default": table}, page_cache={})]
'''

CONFIG = """\
[kernel]
node_memory = "2MiB"
semantics = "{semantics}"
[plugins]
load = ["dropper", "ext2", "ext3", "xfs"]
[[mount]]
fs = "{fs}"
mode = "{mode}"
pages = 48
files = 6
block_size = 1024
[processes]
count = 2
[workload]
seed = 5
released = 0.5
released_dirty = {released_dirty}
dirty = 0.2
mapped = 0.1
"""

SEMANTICS = ["v4", "2.6.16", "2.6.17"]


@pytest.fixture(scope="module")
def configs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """``dropper`` installed; a folder for configs."""
    yield from installed(tmp_path_factory, "dropper", PLUGIN)


def run(
    configs: Path,
    fs: str,
    semantics: str,
    *options: str,
    mode: str = "default",
    released_dirty: float = 1.0,
) -> tuple[int, dict[str, Any]]:
    """``fsaops migrate --json OPTIONS`` of the scenario on ``fs``: exit status, report."""
    text = CONFIG.format(fs=fs, mode=mode, semantics=semantics, released_dirty=released_dirty)
    path = configs / f"{fs}-{mode}-{semantics}-{len(options)}-{released_dirty}.toml"
    return migrate_json(path, text, *options)


@pytest.mark.parametrize("semantics", SEMANTICS)
@pytest.mark.parametrize("options", [(), ("--strict",)])
def test_a_migratepage_that_cleans_pages_without_buffers_is_data_lost(
    configs: Path, semantics: str, options: tuple[str, ...]
) -> None:
    rc, report = run(configs, "loses_dirty", semantics, *options)
    assert (rc, report["status"]) == (1, "data lost"), report.get("error")
    said = str(report["integrity"]) + str(report["proofs"])
    assert "loses_dirty_aops" in said and "expected 1" in said, said


@pytest.mark.parametrize("semantics", SEMANTICS)
def test_debug_vm_stops_on_the_page_that_arrived_clean(configs: Path, semantics: str) -> None:
    rc, report = run(configs, "loses_dirty", semantics, "--debug-vm")
    assert rc == 1
    assert report["status"] in {"data lost", "invariant broken"}, report.get("error")


@pytest.mark.parametrize("semantics", SEMANTICS)
def test_without_the_key_every_released_page_is_clean(configs: Path, semantics: str) -> None:
    """The hole the key closes: at 0 (the default) the same table is OK."""
    rc, report = run(configs, "loses_dirty", semantics, released_dirty=0.0)
    assert (rc, report["status"]) == (0, "ok"), report.get("error")


@pytest.mark.parametrize("semantics", SEMANTICS)
@pytest.mark.parametrize(
    ("fs", "mode"),
    [
        ("ext2", "default"),
        ("ext3", "ordered"),
        ("ext3", "writeback"),
        ("ext3", "journal"),
        ("xfs", "default"),
    ],
)
def test_the_built_in_tables_move_dirty_pages_without_buffers(
    configs: Path, fs: str, mode: str, semantics: str
) -> None:
    for options in ((), ("--strict",), ("--debug-vm",)):
        rc, report = run(configs, fs, semantics, *options, mode=mode)
        assert (rc, report["status"], report["findings"]) == (0, "ok", []), (
            options,
            report.get("error"),
        )
        assert report["workload"]["released"] > 0


def test_released_dirty_draws_nothing_when_zero(configs: Path) -> None:
    """At 0 the scenario is the one it was before the key: same report but for the key itself."""
    _, with_key = run(configs, "ext2", "v4", released_dirty=0.0)
    text = CONFIG.format(fs="ext2", mode="default", semantics="v4", released_dirty=0.0)
    _, without = migrate_json(configs / "no-key.toml", text.replace("released_dirty = 0.0\n", ""))
    for report in (with_key, without):
        report.pop("source", None)
    assert with_key == without


def test_released_dirty_out_of_range_is_bad_input(configs: Path) -> None:
    text = CONFIG.format(fs="ext2", mode="default", semantics="v4", released_dirty=-0.5)
    rc, report = migrate_json(configs / "out-of-range.toml", text)
    assert (rc, report["status"]) == (2, "bad input")
    said = "workload.released_dirty: expected a fraction from 0 to 1, got -0.5"
    assert said in str(report["error"])
