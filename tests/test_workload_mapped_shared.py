"""``workload.mapped_shared``: mapped pages that a second process maps as well.

Every mapped page the scenario built had one pte, so a ``migratepage``
that assumes one (``page_count == 2 + !!page_mapcount``) moved every page
it was given; a page two processes map stayed behind under it for good,
and no run ever showed it.  ``mapped_shared`` has a second process map and
read that fraction of the mapped pages.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from inproc import installed, migrate_json

PLUGIN = '''
from errno import EAGAIN

import attrs

import fsaops
from fsaops import migrate_page, migrate_page_copy, migrate_page_remove_references
from fsaops_ext2 import EXT2, ext2_nobh_aops


def assumes_one_pte(newpage, page):
    """Refuses a page with more references than one mapping explains."""
    if page.count != 2 + (1 if page.mapcount else 0):
        return -EAGAIN
    return migrate_page(newpage, page)


def _type(name, migratepage):
    table = attrs.evolve(ext2_nobh_aops, name=f"{name}_aops", migratepage=migratepage)
    return attrs.evolve(EXT2, name=name, modes={"default": table}, page_cache={})


@fsaops.hookimpl
def fsaops_filesystem_types():
    return [_type("assumes_one_pte", assumes_one_pte)]
'''

CONFIG = """\
[kernel]
node_memory = "2MiB"
semantics = "{semantics}"
[plugins]
load = ["onepte", "ext2", "ext3", "xfs", "swap"]
[[mount]]
fs = "{fs}"
pages = 48
files = 2
[processes]
count = {processes}
anon_pages = 8
[workload]
seed = 6
dirty = 0.2
mapped = 0.5
mapped_shared = {fraction}
"""

SEMANTICS = ["v4", "2.6.16", "2.6.17"]


@pytest.fixture(scope="module")
def configs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """``onepte`` installed; a folder for configs."""
    yield from installed(tmp_path_factory, "onepte", PLUGIN)


def run(
    configs: Path,
    fs: str,
    *options: str,
    semantics: str = "v4",
    fraction: float = 0.5,
    processes: int = 3,
) -> tuple[int, dict[str, object]]:
    """``fsaops migrate --json OPTIONS`` of the scenario on ``fs``: exit status, report."""
    text = CONFIG.format(fs=fs, semantics=semantics, fraction=fraction, processes=processes)
    path = configs / f"{fs}-{semantics}-{'-'.join(options)}-{fraction}-{processes}.toml"
    return migrate_json(path, text, *options)


@pytest.mark.parametrize("semantics", SEMANTICS)
def test_strict_finds_a_table_that_refuses_pages_two_processes_map(
    configs: Path, semantics: str
) -> None:
    rc, report = run(configs, "assumes_one_pte", "--strict", semantics=semantics)
    assert (rc, report["status"]) == (1, "findings"), report.get("error")
    findings = report["findings"]
    assert isinstance(findings, list)
    assert [f["kind"] for f in findings] == ["refused"]
    assert "page_mapcount 2 + 2 expected references" in findings[0]["example"]


def test_with_one_pte_a_page_the_same_table_passes(configs: Path) -> None:
    """What catches the table above is the second mapping: without it, --strict says OK."""
    rc, report = run(configs, "assumes_one_pte", "--strict", fraction=0.0)
    assert (rc, report["status"], report["findings"]) == (0, "ok", []), report.get("error")


@pytest.mark.parametrize("fs", ["ext2", "ext3", "xfs"])
@pytest.mark.parametrize("semantics", SEMANTICS)
@pytest.mark.parametrize("options", [(), ("--strict",), ("--debug-vm",)])
def test_pages_two_processes_map_move_and_both_read_them_back(
    configs: Path, fs: str, semantics: str, options: tuple[str, ...]
) -> None:
    rc, report = run(configs, fs, *options, semantics=semantics, fraction=1.0)
    assert (rc, report["status"], report["findings"]) == (0, "ok", []), report.get("error")
    totals, integrity = report["totals"], report["integrity"]
    assert isinstance(totals, dict) and isinstance(integrity, dict)
    assert totals["moved"] == totals["pages"]
    assert (integrity["checked"], integrity["lost"], integrity["corrupted"]) == (56, 0, 0)


def test_each_page_picked_has_two_ptes_in_two_processes() -> None:
    from fsaops.config import parse_config
    from fsaops.plugins import load_plugins
    from fsaops.scenario import Scenario

    text = CONFIG.format(fs="ext2", semantics="v4", fraction=0.5, processes=3)
    text = text.replace('"onepte", ', "")
    world = Scenario(parse_config(text, "s.toml"), load_plugins(cli=["ext2", "swap"]), seed=6)
    mapped = world.states["mapped"]
    assert len(mapped) == 24
    twice = [s for s in mapped if world.page_of(s).mapcount == 2]
    assert len(twice) == 12
    for slot in twice:
        processes = {v.mm.pid for v in world.views if (v.file, v.index) == (slot.owner, slot.index)}
        assert len(processes) == 2


def test_the_same_seed_gives_the_same_report(configs: Path) -> None:
    first = run(configs, "ext2", fraction=0.4)
    assert run(configs, "ext2", fraction=0.4) == first


def test_one_process_cannot_map_a_page_twice(configs: Path) -> None:
    rc, report = run(configs, "ext2", processes=1)
    assert rc == 2
    assert "workload.mapped_shared: mapping a page in a second process needs at least two" in str(
        report["error"]
    )


def test_a_fraction_out_of_range_is_bad_input(configs: Path) -> None:
    rc, report = run(configs, "ext2", fraction=-0.1)
    assert rc == 2
    assert "workload.mapped_shared: expected a fraction from 0 to 1, got -0.1" in str(
        report["error"]
    )
