"""``fsaops explore SCENARIO.toml``: what it takes from the scenario, and what it names as not used.

The explorer builds its own machine, but a key that changes which paths a
migration takes is either honoured (``[workload] out_of_line``, the I/O
latency, the commit interval) or named in the summary: it is never dropped
without a word.  ``nobhx`` is ext2's nobh table with a ``migratepage`` that
is correct for pages without buffers and drops the buffers of a "confused"
page that has them, the page a scenario with ``out_of_line = true`` has.
"""

from __future__ import annotations

import base64
import itertools
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from fsaops.cli import main
from fsaops.config import parse_config
from fsaops.errors import ConfigError
from fsaops.explore import REPLAY_PREFIX, decode_replay, encode_replay, explore
from fsaops.explore.api import Bounds, render_text
from fsaops.explore.scenario import not_used
from fsaops.explore.setup import ExploredWorld, Setup, TaskSpec, probe
from fsaops.plugins import Registry, load_plugins
from fsaops.testing.dist import write_dist_info

NOBHX = '''
"""nobhx: ext2's nobh table, whose migratepage drops the buffers of a page that has them."""
from errno import EAGAIN

import attrs
import fsaops
import fsaops_ext2
from fsaops import migrate_page_copy, migrate_page_remove_references
from fsaops.buffer import buffer_migrate_page
from fsaops.page import PG


def nobhx_migratepage(newpage, page):
    if not page.flags & PG.private:
        return buffer_migrate_page(newpage, page)
    # Wrong: the slot and the data move, the buffers stay on the old page.
    if migrate_page_remove_references(newpage, page, 3):
        return -EAGAIN
    migrate_page_copy(newpage, page)
    return 0


NOBHX = attrs.evolve(
    fsaops_ext2.EXT2,
    name="nobhx",
    modes={
        "nobh": attrs.evolve(
            fsaops_ext2.ext2_nobh_aops, name="nobhx_aops", migratepage=nobhx_migratepage
        )
    },
    default_mode="nobh",
    page_cache={},
    description="ext2 nobh, which drops the buffers of a confused page",
)


@fsaops.hookimpl
def fsaops_filesystem_types():
    return [NOBHX]
'''

SCENARIO = """\
[plugins]
load = ["nobhx"]
[[mount]]
fs = "nobhx"
files = 2
pages = 8
block_size = 1024
"""

FAST = ["--pages", "1", "--preemptions", "0", "--tasks", "read-fault"]
"""One page, one accessor, no preemption: the bug shows in the first schedule."""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """``nobhx`` installed (a dist-info on ``sys.path``)."""
    path = tmp_path_factory.mktemp("site")
    write_dist_info(
        path, "fsaops-nobhx", {"fsaops": {"nobhx": "nobhx_plugin"}}, modules={"nobhx_plugin": NOBHX}
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(path))
        patch.delenv("FSAOPS_PLUGINS", raising=False)
        yield path


@pytest.fixture(scope="module")
def registry(site: Path) -> Registry:
    return load_plugins()


def _explore(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    status = main(["explore", *args])
    out, err = capsys.readouterr()
    return status, out, err


def _scenario(tmp_path: Path, text: str, name: str = "s.toml") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


# -- [workload] out_of_line -----------------------------------------------------------------


def test_explore_of_an_out_of_line_scenario_finds_a_table_that_drops_a_confused_pages_buffers(
    site: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """It said 'the bounded space is exhausted ... no schedule fails' (exit 0), where
    ``fsaops migrate`` of the same scenario fails: the key was dropped."""
    ool = _scenario(tmp_path, SCENARIO + "[workload]\nout_of_line = true\n", "ool.toml")
    status, out, err = _explore([ool, *FAST, "--json"], capsys)
    assert status == 1, out + err
    data = json.loads(out)
    assert data["status"] == "invariant broken" and data["out_of_line"] is True
    (failure,) = data["failures"]
    assert any(
        "counted as moved, but the old frame was not freed" in p["problem"]
        for p in failure["problems"]
    ), failure["problems"]
    # The replay string records the layout: the schedule fails again from it alone.
    status, out, _ = _explore(["--replay", failure["replay"], "--json"], capsys)
    assert status == 1
    again = json.loads(out)
    assert again["out_of_line"] is True
    assert again["failures"][0]["problems"] == failure["problems"]
    status, out, _ = _explore([ool, *FAST], capsys)
    assert status == 1
    assert out.splitlines()[0].endswith("1 page, blocks out of line")
    # Without the key the pages have no buffers, and the table is right for them.
    inline = _scenario(tmp_path, SCENARIO, "inline.toml")
    status, out, err = _explore([inline, *FAST, "--json"], capsys)
    assert status == 0, err
    assert json.loads(out)["out_of_line"] is False


def test_the_pages_of_nobh_laid_out_of_line_carry_buffers_and_take_their_accessors(
    registry: Registry,
) -> None:
    """The "confused" page: read through buffer heads, so ``bh-lock`` applies to it."""
    ext2 = registry.filesystem("ext2")
    assert probe(ext2, "nobh", registry).kind == "unbuffered"
    laid = probe(ext2, "nobh", registry, out_of_line=True, block_size=1024)
    assert laid.kind == "buffered"
    setup = Setup("ext2", "nobh", block_size=1024, pages=2, out_of_line=True)
    xworld = ExploredWorld(setup, ext2, registry)
    assert xworld.out_of_line and xworld.buffers_per_page == 4
    for target in xworld.targets:
        blocks = target.file().inode.blocks
        assert all(b != a + 1 for a, b in itertools.pairwise(blocks)), blocks


@pytest.mark.parametrize(
    ("fs", "mode", "block_size"),
    [("nobhx", "nobh", 4096), ("xfs_buftarg", "default", None), ("swap", "default", None)],
)
def test_out_of_line_leaves_what_has_nothing_to_lay_out(
    registry: Registry, fs: str, mode: str, block_size: int | None
) -> None:
    """A page of one block, a buffer-cache mapping and anonymous memory stay as they are,
    as ``fsaops migrate`` leaves them."""
    result = explore(
        fs,
        mode,
        registry=registry,
        pages=1,
        tasks=["pin"],
        preemptions=0,
        block_size=block_size,
        out_of_line=True,
    )
    assert not result.out_of_line and not result.failures


@pytest.mark.exhaustive
def test_correct_builtin_tables_laid_out_of_line_still_explore_clean(registry: Registry) -> None:
    """ext2 nobh with buffers on its confused pages: every default accessor, each in turn."""
    result = explore(
        "ext2", "nobh", registry=registry, pages=2, preemptions=1, block_size=1024, out_of_line=True
    )
    assert result.out_of_line
    assert "bh-lock@0" in result.tasks
    assert result.exhausted and not result.failures, result.failures[0].problems


# -- kernel.io_latency and kernel.commit_interval --------------------------------------------


def test_the_scenarios_io_latency_and_commit_interval_are_the_explored_kernels(
    site: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], registry: Registry
) -> None:
    """They were dropped: the explored kernel had 4 ticks and the journal's own 64."""
    text = (
        '[kernel]\nio_latency = 24\ncommit_interval = 500\n[plugins]\nload = ["ext3"]\n'
        '[[mount]]\nfs = "ext3"\nmode = "journal"\n'
    )
    status, out, err = _explore(
        [_scenario(tmp_path, text), "--pages", "1", "--tasks", "kjournald", "--json"], capsys
    )
    assert status == 0, err
    data = json.loads(out)
    assert (data["io_latency"], data["commit_interval"]) == (24, 500)
    assert data["not_used"] == []
    setup = Setup("ext3", "journal", pages=1, io_latency=24, commit_interval=500)
    xworld = ExploredWorld(setup, registry.filesystem("ext3"), registry)
    journal = xworld.journal()
    assert xworld.kernel.io_latency == 24
    assert getattr(journal, "commit_interval", None) == 500
    # A replay builds the same kernel.
    text_replay = encode_replay(setup, Bounds(), {})
    assert decode_replay(text_replay)[0] == setup


def _fields(string: str) -> dict[str, object]:
    body = string[len(REPLAY_PREFIX) :]
    data = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    assert isinstance(data, dict)
    return data


def _string(fields: dict[str, object]) -> str:
    raw = json.dumps(fields).encode()
    return REPLAY_PREFIX + base64.urlsafe_b64encode(raw).decode().rstrip("=")


DEFAULTS = Setup("ext2", "default", pages=1, tasks=(TaskSpec("write", 0),))


def test_a_replay_string_of_the_defaults_records_no_scenario_field() -> None:
    """Strings of runs without a scenario's layout, latency or interval stay as they were."""
    string = encode_replay(DEFAULTS, Bounds(), {})
    assert not {"ool", "io", "ci"} & set(_fields(string))
    assert decode_replay(string)[0] == DEFAULTS


@pytest.mark.parametrize(
    ("field", "value"), [("ool", 1), ("ool", "yes"), ("io", 0), ("io", True), ("ci", -1)]
)
def test_a_replay_field_of_a_scenario_of_the_wrong_kind_is_named(field: str, value: object) -> None:
    fields = _fields(encode_replay(DEFAULTS, Bounds(), {}))
    fields[field] = value
    with pytest.raises(ConfigError, match=f"--replay: bad {field} "):
        decode_replay(_string(fields))


@pytest.mark.parametrize(
    ("io_latency", "commit_interval", "key"),
    [(0, None, "io_latency"), (10**7, None, "io_latency"), (4, 0, "commit_interval")],
)
def test_a_latency_or_interval_out_of_range_is_bad_input(
    registry: Registry, io_latency: int, commit_interval: int | None, key: str
) -> None:
    with pytest.raises(ConfigError, match=f"{key}: expected 1 to"):
        explore(
            "ext2",
            registry=registry,
            pages=1,
            tasks=["write"],
            io_latency=io_latency,
            commit_interval=commit_interval,
        )


# -- every other key: named, not dropped -----------------------------------------------------


def test_every_key_the_explorer_does_not_use_is_named(
    site: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The summary and the JSON name each key the scenario sets that explore leaves."""
    text = (
        "[kernel]\nnodes = 3\ndebug_vm = true\n"
        '[plugins]\nload = ["ext2", "swap"]\n'
        '[[mount]]\nfs = "ext2"\npages = 8\nblock_size = 1024\n'
        '[[mount]]\nfs = "ext2"\nmode = "nobh"\n'
        "[workload]\nseed = 3\ndirty = 0.3\nmapped = 0.1\n"
        "[faults]\nalloc_fail = 0.1\n"
        "[migrate]\nfrom_node = 1\nto_node = 0\n"
    )
    scenario = _scenario(tmp_path, text)
    args = [scenario, "--mode", "default", "--pages", "1", "--tasks", "write"]
    args += ["--preemptions", "0"]
    status, out, err = _explore([*args, "--json"], capsys)
    assert status == 0, err
    expected = [
        "kernel.nodes",
        "kernel.debug_vm",
        "mount[0].pages",
        "mount[1]",
        "workload.seed",
        "workload.dirty",
        "workload.mapped",
        "faults.alloc_fail",
        "migrate.from_node",
        "migrate.to_node",
    ]
    assert json.loads(out)["not_used"] == expected
    status, out, _ = _explore(args, capsys)
    assert f"not used by explore: {', '.join(expected)}\n" in out
    # Anonymous memory from the same scenario: every mount is left whole.
    swap = [scenario, "--fs", "swap", "--pages", "1", "--tasks", "pin", "--preemptions", "0"]
    status, out, _ = _explore([*swap, "--json"], capsys)
    assert status == 0
    assert json.loads(out)["not_used"][2:4] == ["mount[0]", "mount[1]"]


def test_a_scenario_of_only_keys_the_explorer_uses_names_none(
    site: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = (
        '[kernel]\nsemantics = "2.6.16"\npage_size = 8192\n[plugins]\nload = ["ext2"]\n'
        '[[mount]]\nfs = "ext2"\nmode = "nobh"\nblock_size = 1024\n'
        "[workload]\nout_of_line = true\n"
    )
    status, out, err = _explore(
        [_scenario(tmp_path, text), "--pages", "1", "--tasks", "pin", "--preemptions", "0"],
        capsys,
    )
    assert status == 0, err
    assert "not used by explore" not in out
    assert "blocks out of line" in out.splitlines()[0]


def test_out_of_line_on_a_mount_of_page_sized_blocks_is_named() -> None:
    """The explored pages were not laid out of line: the key did nothing here."""
    config = parse_config(
        '[[mount]]\nfs = "ext2"\nblock_size = 4096\npages = 64\n[workload]\nout_of_line = true\n'
    )
    assert not_used(config, 0, out_of_line=False) == ("workload.out_of_line",)
    assert not_used(config, 0, out_of_line=True) == ()
    assert not_used(config, None, out_of_line=False) == ("mount[0]", "workload.out_of_line")


def test_a_search_from_python_names_nothing_as_not_used(registry: Registry) -> None:
    result = explore("ext2", registry=registry, pages=1, tasks=["write"], preemptions=0)
    assert result.not_used == () and "not used" not in render_text(result)
    assert result.to_json()["not_used"] == []


# -- which mount ----------------------------------------------------------------------------


def test_mounts_of_one_type_that_differ_in_block_size_are_picked_with_mount(
    site: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--fs and --mode cannot tell them apart: explore took the first, and the buggy layout was
    on the second (exit 0 where ``fsaops migrate`` fails); now it asks for ``--mount N``."""
    text = (
        '[plugins]\nload = ["nobhx"]\n'
        '[[mount]]\nfs = "nobhx"\npages = 4\nblock_size = 4096\n'
        '[[mount]]\nfs = "nobhx"\npages = 4\nblock_size = 1024\n'
        "[workload]\nout_of_line = true\n"
    )
    scenario = _scenario(tmp_path, text)
    status, out, err = _explore([scenario, *FAST, "--fs", "nobhx", "--json"], capsys)
    assert status == 2
    error = json.loads(out)["error"]
    assert "differ in block size" in error and "--mount N" in error
    assert "mount[0] block size 4096, mount[1] block size 1024" in error
    status, out, err = _explore([scenario, *FAST, "--mount", "1", "--json"], capsys)
    assert status == 1, out + err  # the out-of-line pages of mount[1]: the bug shows
    data = json.loads(out)
    assert data["out_of_line"] is True
    assert "mount[0]" in data["not_used"] and "mount[1]" not in data["not_used"]
    status, out, err = _explore([scenario, *FAST, "--mount", "0", "--json"], capsys)
    assert status == 0, out + err
    assert json.loads(out)["out_of_line"] is False


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--mount", "5"], "has no mount[5] (its mounts are mount[0] to mount[1])"),
        (["--mount", "0", "--mode", "default"], "mount[0] of"),
        (["--mount", "-1"], "--mount"),
    ],
)
def test_a_mount_that_is_not_there_is_bad_input(
    args: list[str], words: str, site: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = (
        '[plugins]\nload = ["ext2"]\n'
        '[[mount]]\nfs = "ext2"\nmode = "nobh"\n[[mount]]\nfs = "ext2"\nblock_size = 1024\n'
    )
    status, out, err = _explore([_scenario(tmp_path, text), *FAST, *args, "--json"], capsys)
    assert status == 2
    assert words in json.loads(out)["error"]
    status, out, err = _explore(["--fs", "ext2", "--mount", "0", *FAST], capsys)
    assert status == 2 and "--mount picks a mount of a SCENARIO.toml" in err


def test_a_scenario_that_leaves_the_commit_interval_leaves_the_journal_its_own(
    site: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Explored with 1,000,000 and recorded in every replay string, unlike --fs (its own 64)."""
    text = '[plugins]\nload = ["ext3"]\n[[mount]]\nfs = "ext3"\nmode = "journal"\n'
    args = ["--pages", "1", "--tasks", "kjournald", "--preemptions", "0", "--json"]
    status, out, err = _explore([_scenario(tmp_path, text), *args], capsys)
    assert status == 0, err
    from_scenario = json.loads(out)
    status, out, err = _explore(["--fs", "ext3", "--mode", "journal", *args], capsys)
    assert status == 0, err
    from_options = json.loads(out)
    assert from_scenario["commit_interval"] is None
    assert from_scenario["commit_interval"] == from_options["commit_interval"]
    assert from_scenario["schedules"] == from_options["schedules"]
