"""``workload.released``: pages of a buffered table with no buffer heads.

Every page of ext2 ``default``, ext3 and xfs that ``fsaops migrate``
built carried buffer heads, because the model reads those tables' pages
through their buffers.  The kernel reads most of them with
``mpage_readpage``, which attaches none, and reclaim frees the buffers of
clean pages it then finds still in use.  So no page without buffers of a
buffered table reached a ``migratepage``, and a table that moves such a
page and forgets to copy it passed every mode (the conformance suite
alone caught it).  ``released`` frees that fraction of the pages with
buffers through ``try_to_release_page``, as ``shrink_list`` does.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import hypothesis.strategies as st
import pytest
from hypothesis import given, settings

from fsaops.buffer import BufferHead
from fsaops.config import parse_config
from fsaops.config.schema import WorkloadConfig
from fsaops.page import PG
from fsaops.plugins import Registry
from fsaops.scenario import Scenario, plan_scenario
from guarded import fsaops, install, one_error_line
from inproc import (
    Mix,
    buggy_migrate,
    buggyfs_installed,
    every_table_scenario,
    migrate_json,
    migrate_mix,
    state_mixes,
)

BUFFERED = [
    ("ext2", "default", 1024, False),
    ("ext2", "nobh", 1024, True),  # out of line: every page is read through buffers
    ("ext3", "ordered", 2048, False),
    ("ext3", "writeback", 1024, False),
    ("ext3", "journal", 1024, False),
    ("xfs", "default", 1024, False),
]


def _text(
    fs: str, mode: str, block_size: int, *, out_of_line: bool, released: float, seed: int = 5
) -> str:
    return (
        f'[kernel]\nnode_memory = "2MiB"\n[plugins]\nload = ["ext2", "ext3", "xfs"]\n'
        f'[[mount]]\nfs = "{fs}"\nmode = "{mode}"\nblock_size = {block_size}\npages = 40\n'
        f"files = 4\n[processes]\ncount = 2\nanon_pages = 0\n[workload]\nseed = {seed}\n"
        f"dirty = 0.2\nmapped = 0.2\npinned = 0.05\nbuffer_locked = 0.05\ntail = 0.5\n"
        f"out_of_line = {str(out_of_line).lower()}\nreleased = {released}\n"
    )


def _scenario(registry: Registry, text: str, seed: int = 5) -> Scenario:
    plan = plan_scenario(parse_config(text), registry, "test", builtin=False)
    return Scenario(plan.config, registry, seed=seed)


def _with_buffers(world: Scenario) -> list[str]:
    """The keys of the file pages that carry buffer heads now."""
    return [
        slot.key
        for slot in world.slots
        if slot.kind == "file"
        and world.page_of(slot).flags & PG.private
        and isinstance(world.page_of(slot).private, BufferHead)
    ]


@pytest.mark.parametrize(
    ("fs", "mode", "block_size", "out_of_line"), BUFFERED, ids=[f"{m[0]}-{m[1]}" for m in BUFFERED]
)
def test_released_pages_are_clean_cached_and_without_buffer_heads(
    registry: Registry, fs: str, mode: str, block_size: int, out_of_line: bool
) -> None:
    text = _text(fs, mode, block_size, out_of_line=out_of_line, released=0.5)
    world = _scenario(registry, text)
    released = world.states["released"]
    assert released, "no page was released"
    for slot in released:
        page = world.page_of(slot)
        assert page is world.world.page_of(slot.owner, slot.index)  # still in the page cache
        assert not page.flags & (PG.private | PG.dirty | PG.locked | PG.writeback), page
        assert page.private == 0 and page.flags & PG.uptodate and page.flags & PG.lru, page
        assert page.mapcount == 0
    # Half of the pages with buffers that no earlier state took: the others keep theirs.
    before = _with_buffers(_scenario(registry, text.replace("released = 0.5", "released = 0")))
    after = set(_with_buffers(world))
    keys = {slot.key for slot in released}
    assert keys <= set(before) and not keys & after
    assert after == set(before) - keys


def test_the_other_states_are_the_same_with_and_without_it(registry: Registry) -> None:
    text = _text("ext2", "default", 1024, out_of_line=False, released=0.5)
    with_it = _scenario(registry, text)
    without = _scenario(registry, text.replace("released = 0.5", "released = 0"))
    for state in WorkloadConfig.STATES:
        if state != "released":
            keys = [s.key for s in with_it.states[state]]
            assert keys == [s.key for s in without.states[state]], state
            assert not {s.key for s in with_it.states["released"]} & set(keys), state
    assert without.states["released"] == []
    summary, plain = with_it.workload_summary(), without.workload_summary()
    assert summary["released"] == len(with_it.states["released"]) and plain["released"] == 0
    assert summary["digest"] != plain["digest"]
    assert _scenario(registry, text).workload_summary() == summary  # the seed decides


@pytest.mark.parametrize("options", [(), ("--strict",), ("--debug-vm",)])
def test_every_built_in_table_moves_released_pages(
    tmp_path: Path, options: tuple[str, ...]
) -> None:
    text = every_table_scenario(
        [(fs, mode, bs) for fs, mode, bs, _ in BUFFERED],
        "out_of_line = true\ntail = 0.5\nreleased = 0.5\n",
    )
    rc, report = migrate_json(tmp_path / "all.toml", text, *options)
    assert (rc, report["status"], report["findings"]) == (0, "ok", []), report.get("error")
    assert report["workload"]["released"] > 0
    assert report["config"]["workload"]["released"] == 0.5


# -- the table that forgets the copy without buffers ------------------------------------------


@pytest.fixture(scope="module")
def buggy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """``buggyfs`` (``tests/configs/plugins``) installed; a folder for configs."""
    yield from buggyfs_installed(tmp_path_factory)


def _buggy(
    folder: Path, name: str, released: float, *options: str
) -> tuple[int, dict[str, object]]:
    return buggy_migrate(folder, name, f"released = {released}\n", *options)


@pytest.mark.parametrize(
    ("options", "said"),
    [((), "kernel bug"), (("--strict",), "kernel bug"), (("--debug-vm",), "invariant broken")],
)
def test_forgetting_the_copy_of_a_page_without_buffers_fails(
    buggy: Path, options: tuple[str, ...], said: str
) -> None:
    rc, report = _buggy(buggy, "forgets_the_copy_without_buffers", 0.2, *options)
    assert (rc, report["status"]) == (1, said), report.get("error")
    assert "forgets_the_copy_without_buffers_aops" in str(report["error"])


def test_without_released_pages_that_table_passes(buggy: Path) -> None:
    """What catches it is the pages without buffers: every other page has them."""
    rc, report = _buggy(buggy, "forgets_the_copy_without_buffers", 0.0, "--debug-vm")
    assert (rc, report["status"]) == (0, "ok"), report.get("error")


@pytest.mark.parametrize("options", [(), ("--strict",), ("--debug-vm",)])
def test_buffer_migrate_page_passes_with_released_pages(
    buggy: Path, options: tuple[str, ...]
) -> None:
    rc, report = _buggy(buggy, "correct", 1.0, *options)
    assert (rc, report["status"], report["findings"]) == (0, "ok", []), report.get("error")


# -- bad input and plugins that keep their buffers ---------------------------------------------


@pytest.mark.parametrize(
    ("mount", "said"),
    [
        (
            'fs = "ext2"\nmode = "nobh"\n',
            "workload.released: no file page of this scenario carries buffer heads once read "
            "in (its tables: ext2_nobh_aops): a table that reads pages without buffer heads",
        ),
        (
            'fs = "xfs_buftarg"\n',
            "workload.released: no page of this scenario can be released of its buffer heads",
        ),
    ],
)
def test_a_scenario_with_no_page_to_release_is_bad_input(
    tmp_path: Path, mount: str, said: str
) -> None:
    path = tmp_path / "none.toml"
    path.write_text(
        f'[plugins]\nload = ["ext2", "xfs_buftarg"]\n[[mount]]\n{mount}pages = 8\n'
        "block_size = 1024\n[processes]\ncount = 0\nanon_pages = 0\n[workload]\nreleased = 0.5\n"
        if "ext2" in mount
        else f'[plugins]\nload = ["xfs_buftarg"]\n[[mount]]\n{mount}pages = 8\n'
        "[processes]\ncount = 0\nanon_pages = 0\n[workload]\nreleased = 0.5\n"
    )
    proc = fsaops("migrate", path, "--no-progress", timeout=120)
    one_error_line(proc, 2, said)


def test_a_fraction_out_of_range_is_bad_input(tmp_path: Path) -> None:
    path = tmp_path / "big.toml"
    path.write_text("[workload]\nreleased = 1.5\n")
    proc = fsaops("config", "check", path, timeout=120)
    one_error_line(proc, 2, "workload.released: expected a fraction from 0 to 1, got 1.5")


KEEPER = """\
import attrs, fsaops
from fsaops import FileSystemType
from fsaops_ext2 import ext2_aops

def rel(page, gfp):
    {body}

TABLE = attrs.evolve(ext2_aops, name="keeper_aops", releasepage=rel)

@fsaops.hookimpl
def fsaops_filesystem_types():
    return [FileSystemType(name="keeper", modes={{"default": TABLE}})]
"""

KEEPER_SCENARIO = """\
[kernel]
node_memory = "2MiB"
[plugins]
load = ["keeper"]
[[mount]]
fs = "keeper"
pages = 16
block_size = 1024
[processes]
count = 0
anon_pages = 0
[workload]
released = 0.5
"""


def _keeper(tmp_path: Path, body: str, *options: str) -> tuple[int, str, str]:
    env = install(tmp_path, "keeper", KEEPER.format(body=body))
    path = tmp_path / "keeper.toml"
    path.write_text(KEEPER_SCENARIO)
    proc = fsaops("migrate", path, "--json", "--no-progress", *options, env=env, timeout=120)
    return proc.returncode, proc.stdout, proc.stderr


def test_a_releasepage_that_keeps_the_buffers_leaves_the_page_as_it_was(tmp_path: Path) -> None:
    """As reclaim's: the page keeps its buffers, and is not counted as released."""
    rc, out, err = _keeper(tmp_path, "return 0", "--strict")
    report = json.loads(out)
    assert (rc, report["status"], report["findings"]) == (0, "ok", []), err
    assert report["workload"]["released"] == 0


@pytest.mark.parametrize(
    ("body", "said"),
    [
        ("raise RuntimeError('boom')", "plugin keeper-dist[keeper] raised RuntimeError: boom"),
        ("return 1", "releasepage of table keeper_aops (keeper.rel) returned 1"),
    ],
)
def test_a_releasepage_that_raises_or_lies_while_the_world_is_built_is_named(
    tmp_path: Path, body: str, said: str
) -> None:
    rc, out, err = _keeper(tmp_path, body)
    assert rc == 1 and "Traceback" not in err, err
    assert json.loads(out)["status"] == "kernel bug"  # plugin code raised, as an oops
    assert err.count("\n") == 1 and said in err, err


# -- any mix of states, with released pages ----------------------------------------------------

MIX_STATES = ("dirty", "writeback", "locked", "pinned", "mapped", "buffer_locked", "dirty_written")


def _released_mixes(out_of_line: bool) -> st.SearchStrategy[Mix]:
    """Mixes on the tables of :data:`BUFFERED` that read through buffers with ``out_of_line``."""
    mounts = [(fs, mode, bs) for fs, mode, bs, line in BUFFERED if line == out_of_line]
    fixed = {
        "released": st.sampled_from([0.3, 1.0]),
        "tail": st.sampled_from([0.0, 1.0]),
        "out_of_line": out_of_line,
    }
    return state_mixes(mounts, MIX_STATES, fixed)


@settings(max_examples=20, deadline=None)
@given(mix=_released_mixes(False) | _released_mixes(True))
def test_any_mix_of_states_with_released_pages_is_ok_for_the_built_in_tables(
    tmp_path_factory: pytest.TempPathFactory, mix: Mix
) -> None:
    """Every promise holds and no call is wrong, whatever else the other pages are."""
    migrate_mix(tmp_path_factory.mktemp("mix"), mix)
