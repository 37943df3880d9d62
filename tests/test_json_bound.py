"""Every JSON text fsaops writes goes through an encoder plugin code cannot reach.

Plugin code may rebind ``json.dumps``, a method of ``json.JSONEncoder`` or
a function of ``json.encoder``, at import or inside a table's
``migratepage``.  The command's standard output was already written
through an encoder bound when fsaops was imported; :meth:`Report.dumps`,
the explorer's result, its replay strings and the data an ``--html`` page
embeds still called ``json.dumps``, so a plugin could change them, or
make writing them raise.  Now all of them go through
:mod:`fsaops.jsonbound`, and come out as they do with no plugin around.
"""

from __future__ import annotations

import json
import json.encoder
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

from fsaops.aops import FileSystemType
from fsaops.buffer import buffer_migrate_page
from fsaops.config import parse_config
from fsaops.explore import explore
from fsaops.explore.api import ExploreResult, decode_replay, encode_replay
from fsaops.jsonbound import dumps, json_text
from fsaops.page import Page
from fsaops.plugins import Registry
from fsaops.report import Report
from fsaops.scenario import run_scenario
from guarded import fsaops, install


def _broken(*args: object, **kwargs: object) -> Any:
    raise ValueError("no JSON here")


def _lies(*args: object, **kwargs: object) -> str:
    return '{"status": "lies"'


Rebind = Callable[[pytest.MonkeyPatch], object]

REBINDINGS: dict[str, Rebind] = {
    "json.dumps raises": lambda patch: patch.setattr(json, "dumps", _broken),
    "json.dumps says something else": lambda patch: patch.setattr(json, "dumps", _lies),
    "JSONEncoder.encode raises": lambda patch: patch.setattr(json.JSONEncoder, "encode", _broken),
    "JSONEncoder.encode says something else": (
        lambda patch: patch.setattr(json.JSONEncoder, "encode", _lies)
    ),
    "JSONEncoder.iterencode raises": (
        lambda patch: patch.setattr(json.JSONEncoder, "iterencode", _broken)
    ),
    "json.encoder's functions replaced": lambda patch: (
        patch.setattr(json.encoder, "c_make_encoder", None),
        patch.setattr(json.encoder, "_make_iterencode", _broken),
        patch.setattr(json.encoder, "encode_basestring_ascii", _broken),
        patch.setattr(json.encoder, "encode_basestring", _broken),
    ),
}
"""What plugin code may do to ``json``, as ``monkeypatch`` does it (undone after each test)."""

SCENARIO = (
    '[kernel]\nnode_memory = "4MiB"\n[[mount]]\nfs = "rebinds"\npages = 8\n'
    '[[mount]]\nfs = "ext2"\npages = 4\n[workload]\nseed = 3\ndirty = 0.5\n'
)


@pytest.fixture
def patch() -> Iterator[pytest.MonkeyPatch]:
    """A monkeypatch the test may undo itself (to write what ``json`` writes untouched)."""
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def _with_table(registry: Registry, name: str, migratepage: Any) -> FileSystemType:
    ext2 = registry.filesystem("ext2")
    table = attrs.evolve(ext2.aops("default"), name=f"{name}_aops", migratepage=migratepage)
    return attrs.evolve(ext2, name=name, modes={"default": table}, default_mode="default")


def _run(registry: Registry, rebind: Callable[[], object]) -> Report:
    """The scenario, with ``rebinds`` (ext2's table whose ``migratepage`` calls ``rebind``)."""

    def rebinds_migratepage(newpage: Page, page: Page, /) -> int:
        rebind()
        return buffer_migrate_page(newpage, page)

    fstype = _with_table(registry, "rebinds", rebinds_migratepage)
    registry = attrs.evolve(registry, filesystems={**registry.filesystems, "rebinds": fstype})
    return run_scenario(parse_config(SCENARIO, "s.toml"), registry, source="s.toml")


# -- the encoder itself -----------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        {"b": 1, "a": [1.5, float("inf"), None, True], "é": "\u2603\udcff\n"},
        [],
        {"nested": {"z": {"y": [{}, [], ""]}}},
        "text",
    ],
)
@pytest.mark.parametrize(
    "options",
    [{}, {"sort_keys": True}, {"indent": 2}, {"separators": (",", ":"), "sort_keys": True}],
)
def test_dumps_writes_what_json_dumps_writes(value: Any, options: dict[str, Any]) -> None:
    assert dumps(value, **options) == json.dumps(value, **options)
    assert json_text(value) == json.dumps(value, sort_keys=True, indent=2) + "\n"


@pytest.mark.parametrize("case", sorted(REBINDINGS))
def test_dumps_writes_the_same_whatever_json_became(patch: pytest.MonkeyPatch, case: str) -> None:
    value = {"b": [1, 2.5, None], "a": "\u2603"}
    expected = [json.dumps(value), json.dumps(value, indent=2, sort_keys=True) + "\n"]
    REBINDINGS[case](patch)
    assert [dumps(value), json_text(value)] == expected


# -- the report -------------------------------------------------------------------------


@pytest.mark.parametrize("case", sorted(REBINDINGS))
def test_a_report_is_written_whole_after_a_migratepage_rebinds_json(
    registry: Registry, patch: pytest.MonkeyPatch, case: str
) -> None:
    """``Report.dumps()`` was ``json.dumps``: what the table put there, or its exception."""
    report = _run(registry, lambda: REBINDINGS[case](patch))
    assert report.ok, report.invariants
    text = report.dumps()
    patch.undo()
    assert text == json.dumps(report.to_json(), sort_keys=True, indent=2) + "\n"
    assert text == _run(registry, lambda: None).dumps()


# -- the explorer -----------------------------------------------------------------------


def _says_it_moved(newpage: Page, page: Page, /) -> int:
    """A ``migratepage`` that moves nothing and says it did: every schedule fails."""
    return 0


@pytest.fixture(scope="module")
def explored(registry: Registry) -> ExploreResult:
    """An exploration that failed, so its result has replay strings."""
    fstype = _with_table(registry, "liar", _says_it_moved)
    result = explore(fstype, tasks=["read-fault"], pages=2, preemptions=0, registry=registry)
    assert result.failures
    return result


@pytest.mark.parametrize("case", sorted(REBINDINGS))
def test_the_explorers_json_is_written_whole_after_plugin_code_rebinds_json(
    explored: ExploreResult, patch: pytest.MonkeyPatch, case: str
) -> None:
    """``ExploreResult.dumps()`` and its replay strings, with ``json`` rebound (as at a plugin's
    import: the explorer's schedules run in processes of their own)."""
    expected = json.dumps(explored.to_json(), indent=2, sort_keys=True) + "\n"
    recorded = [decode_replay(failure.replay) for failure in explored.failures]
    REBINDINGS[case](patch)
    assert explored.dumps() == expected
    for failure, (setup, bounds, choices) in zip(explored.failures, recorded, strict=True):
        assert encode_replay(setup, bounds, choices) == failure.replay


# -- as a user runs it --------------------------------------------------------------------

PLUGIN = """\
import attrs, fsaops, json, json.encoder
from fsaops import FileSystemType
from fsaops_ext2 import ext2_aops
from fsaops.buffer import buffer_migrate_page

def broken(*args, **kwargs):
    raise ValueError("no JSON here")

def rebind():
    {rebind}

def mp(newpage, page):
    rebind()
    return buffer_migrate_page(newpage, page)

def says_it_moved(newpage, page):
    rebind()
    return 0

@fsaops.hookimpl
def fsaops_filesystem_types():
    return [
        FileSystemType(name=name, modes={{"default": attrs.evolve(ext2_aops, name=name + "_aops",
                       migratepage=migratepage)}}, block_sizes=(4096,))
        for name, migratepage in (("rebinds", mp), ("liar", says_it_moved))
    ]
"""

IN_PLUGINS = {
    "json.dumps raises": "json.dumps = broken",
    "json.dumps says something else": 'json.dumps = lambda *a, **k: \'{"status": "lies"\'',
    "JSONEncoder.encode raises": "json.JSONEncoder.encode = broken",
    "json.encoder's functions replaced": (
        "json.encoder.c_make_encoder = None; json.encoder._make_iterencode = broken; "
        "json.encoder.encode_basestring_ascii = broken"
    ),
}


def _outputs(site: Path, rebind: str) -> tuple[bytes, str]:
    """The ``--html`` page of a run of ``rebinds`` and ``fsaops explore --json`` of ``liar``."""
    env = install(site, "rebinds", PLUGIN.format(rebind=rebind))
    scenario = site / "rebinds.toml"
    scenario.write_text(
        '[plugins]\nload = ["rebinds", "swap"]\n[[mount]]\nfs = "rebinds"\npages = 8\n'
        "[processes]\ncount = 1\nanon_pages = 2\n"
    )
    page = site / "page.html"
    # In ``site``: the page names the scenario as the untouched run's does.
    proc = fsaops("migrate", scenario.name, "--html", page.name, env=env, cwd=site)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stderr == ""
    args = ("--fs", "liar", "--plugins", "rebinds", "--pages", "2", "--preemptions", "0")
    proc = fsaops("explore", *args, "--json", env=env)
    assert proc.returncode == 1, proc.stderr[-3000:]
    # The wall time of the search is the one thing that differs from run to run.
    return page.read_bytes(), _TIMES.sub(r'"\1": 0', proc.stdout)


_TIMES = re.compile(r'"(seconds|schedules_per_second)": [0-9.e+-]+')


@pytest.fixture(scope="module")
def untouched(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, str]:
    """What the same plugin writes when it leaves ``json`` alone."""
    return _outputs(tmp_path_factory.mktemp("untouched"), "pass")


@pytest.mark.parametrize("case", sorted(IN_PLUGINS))
def test_the_page_and_the_explorers_json_are_what_they_are_without_the_rebinding(
    tmp_path: Path, untouched: tuple[bytes, str], case: str
) -> None:
    """``--html`` embedded its frame maps with ``json.dumps``, and ``explore --json`` wrote its
    replay strings with it: a plugin that rebound it broke the page or made the strings lie."""
    page, explored = _outputs(tmp_path, IN_PLUGINS[case])
    assert page == untouched[0]
    assert explored == untouched[1]
    data = json.loads(explored)
    assert data["failures"]
    for failure in data["failures"]:
        assert encode_replay(*decode_replay(failure["replay"])) == failure["replay"]


@pytest.mark.parametrize("case", sorted(IN_PLUGINS))
def test_a_plugin_that_rebinds_json_at_import_is_loaded(tmp_path: Path, case: str) -> None:
    """The plugin probe's child wrote its events with ``json.dumps`` after the plugin's import:
    a plugin that rebound it there was refused, ``its import ended the process``, saying
    nothing of why."""
    code = PLUGIN.format(rebind="pass") + f"\n{IN_PLUGINS[case]}\n"
    env = install(tmp_path, "rebinds", code)
    proc = fsaops("plugins", "--json", env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    names = {p["name"] for p in json.loads(proc.stdout)["plugins"]}
    assert "rebinds" in names
