"""Workload states: a state no page can take is refused; a fraction becomes pages one way."""

from __future__ import annotations

import contextlib
import io
import itertools
import re
from pathlib import Path

import attrs
import pytest

from fsaops.aops import AddressSpaceOperations, FileSystemType
from fsaops.buffer import BH, buffers, mpage_readpage, nobh_commit_write, nobh_prepare_write
from fsaops.cli import main
from fsaops.config import Config, WorkloadConfig, default_config, parse_config
from fsaops.errors import ConfigError
from fsaops.migrate import migrate_page
from fsaops.page import PG
from fsaops.plugins import Registry, load_plugins
from fsaops.scenario import Scenario, plan_scenario

DOCS = Path(__file__).parent.parent / "docs"

#: A filesystem whose table has no writepage: its files are written with
#: write(2) and stay dirty, as a RAM filesystem's.
NOWB = FileSystemType(
    name="nowb",
    modes={
        "default": AddressSpaceOperations(
            name="nowb_aops",
            readpage=mpage_readpage,
            prepare_write=nobh_prepare_write,
            commit_write=nobh_commit_write,
            migratepage=migrate_page,
        )
    },
)


@pytest.fixture(scope="module")
def plugins() -> Registry:
    """The built-in plugins and ``nowb``."""
    registry = load_plugins(cli=["ext2", "ext3", "xfs", "swap", "xfs_buftarg"])
    return attrs.evolve(
        registry,
        filesystems={**registry.filesystems, "nowb": NOWB},
        owners={**registry.owners, "nowb": "ext2"},
    )


MOUNTS = {
    "ext2": '[[mount]]\nfs = "ext2"\npages = 3\n',
    "xip": '[[mount]]\nfs = "ext2"\nmode = "xip"\npages = 3\n',
    "buftarg": '[[mount]]\nfs = "xfs_buftarg"\npages = 3\n',
    "nowb": '[[mount]]\nfs = "nowb"\npages = 3\n',
}


def scenario(mounts: tuple[str, ...], anon: int, workload: str) -> str:
    """A small scenario: the named mounts, ``anon`` anonymous pages in one process."""
    return (
        '[kernel]\nnode_memory = "256KiB"\n'
        + "".join(MOUNTS[m] for m in mounts)
        + f"[processes]\ncount = 1\nanon_pages = {anon}\n[workload]\n{workload}\n"
    )


def refusal(text: str, registry: Registry) -> str | None:
    """What ``fsaops config check`` says of the scenario (``None``: it is accepted)."""
    try:
        plan_scenario(parse_config(text, "s.toml"), registry, "s.toml")
    except ConfigError as exc:
        return str(exc)
    return None


# -- a state no page can take ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("mounts", "anon", "state", "words"),
    [
        (("buftarg",), 0, "dirty", ["only a file page in the page cache", "buffer-cache"]),
        (("buftarg",), 0, "writeback", ["has a writepage", "buffer-cache metadata (mount[0]"]),
        (("buftarg",), 0, "mapped", ["xfs_buftarg default"]),
        (("buftarg",), 0, "mlocked", ["or an anonymous page", "3 pages of buffer-cache"]),
        (("buftarg",), 0, "swapout", ["swapped out"]),
        (("xip",), 0, "dirty", ["3 pages executed in place", "ext2 xip"]),
        (("xip",), 0, "locked", ["it has 3 pages executed in place"]),
        (("xip",), 0, "pinned", ["pinned"]),
        ((), 4, "dirty", ["it has 4 anonymous pages"]),
        ((), 4, "writeback", ["under writeback"]),
        ((), 4, "mapped", ["mapped"]),
        (("nowb",), 0, "writeback", ["table nowb_aops has no writepage"]),
        (("xip", "buftarg"), 2, "mapped", ["(mount[0], ext2 xip), 3 pages of", "and 2 anon"]),
        ((), 0, "locked", ["it has no pages"]),
    ],
)
def test_a_state_no_page_can_take_is_refused(
    plugins: Registry, mounts: tuple[str, ...], anon: int, state: str, words: list[str]
) -> None:
    said = refusal(scenario(mounts, anon, f"{state} = 0.5"), plugins)
    assert said is not None
    assert said.startswith(f"s.toml: workload.{state}: no page of this scenario can be ")
    for word in words:
        assert word in said, said


@pytest.mark.parametrize(
    ("mounts", "anon", "state"),
    [
        (("buftarg",), 0, "locked"),
        (("buftarg",), 0, "pinned"),
        ((), 4, "mlocked"),
        ((), 4, "swapout"),
        (("nowb",), 0, "dirty"),  # its pages are dirty anyway
        (("nowb",), 0, "mapped"),
        (("xip", "ext2"), 0, "writeback"),
    ],
)
def test_a_state_some_page_can_take_is_accepted(
    plugins: Registry, mounts: tuple[str, ...], anon: int, state: str
) -> None:
    assert refusal(scenario(mounts, anon, f"{state} = 0.5"), plugins) is None


def _any_buffer_heads(config: Config, plugins: Registry) -> bool:
    """Whether a file page of the scenario carries buffer heads once read in (none given states)."""
    quiet = attrs.evolve(config, workload=WorkloadConfig())
    world = Scenario(quiet, plugins, seed=1)
    return any(s.kind == "file" and world.page_of(s).flags & PG.private for s in world.slots)


def test_the_check_refuses_exactly_the_states_the_builder_would_drop(plugins: Registry) -> None:
    """Every mix of mounts and anonymous memory, each state: refused if and only if none gets it."""
    kinds = tuple(MOUNTS)
    tried = 0
    for n in range(len(kinds) + 1):
        for mounts, anon in itertools.product(itertools.combinations(kinds, n), (0, 2)):
            for state in WorkloadConfig.STATES:
                text = scenario(mounts, anon, f"{state} = 1.0")
                refused = refusal(text, plugins) is not None
                config = parse_config(text, "s.toml")
                if state in ("buffer_locked", "released") and not _any_buffer_heads(
                    config, plugins
                ):
                    # Which file pages carry buffer heads is known once they are read
                    # in: the builder refuses what the check could not.
                    with pytest.raises(ConfigError, match="no file page of this scenario"):
                        Scenario(config, plugins, seed=1)
                    tried += 1
                    continue
                world = Scenario(config, plugins, seed=1)
                got = len(world.states[state])
                if state == "dirty" and not got:
                    # A table without writepage never cleans its pages.
                    files = [s for s in world.slots if s.kind == "file"]
                    got = sum(bool(world.page_of(s).flags & PG.dirty) for s in files)
                assert refused == (got == 0), (mounts, anon, state, got)
                tried += 1
    assert tried == 2 * 2 ** len(kinds) * len(WorkloadConfig.STATES)


@pytest.mark.parametrize("plugin", ["xfs_buftarg", "swap", "ext2", "swap,xfs_buftarg"])
def test_the_builtin_scenario_cut_to_the_selection_is_not_refused(plugin: str) -> None:
    # Its states were written for every mount; the report names the parts left out.
    plan_scenario(default_config(), load_plugins(cli=plugin))


@pytest.mark.parametrize("command", [["config", "check"], ["migrate", "--no-progress"]])
def test_the_commands_refuse_it_with_exit_2(tmp_path: Path, command: list[str]) -> None:
    path = tmp_path / "buftarg.toml"
    path.write_text(
        '[plugins]\nload = ["xfs_buftarg"]\n[[mount]]\nfs = "xfs_buftarg"\npages = 16\n'
        "[workload]\ndirty = 1.0\n"
    )
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main([*command, str(path)])
    assert rc == 2
    assert out.getvalue() == ""
    assert err.getvalue() == (
        f"fsaops: error: {path}: workload.dirty: no page of this scenario can be dirty: only a "
        "file page in the page cache can, and it has 16 pages of buffer-cache metadata "
        "(mount[0], xfs_buftarg default)\n"
    )


# -- from a fraction to pages ----------------------------------------------------------------


def counts(registry: Registry, files: int, anon: int, workload: str) -> dict[str, int]:
    """The pages each state got, of ``files`` ext2 pages and ``anon`` anonymous pages."""
    text = (
        '[kernel]\nnode_memory = "256KiB"\n[[mount]]\nfs = "ext2"\n'
        f"pages = {files}\n[processes]\ncount = 1\nanon_pages = {anon}\n[workload]\n{workload}\n"
    )
    world = Scenario(parse_config(text, "s.toml"), registry, seed=0)
    return {state: len(slots) for state, slots in world.states.items()}


@pytest.mark.parametrize(
    ("files", "anon", "mlocked", "want"),
    [(1, 1, 0.5, 1), (3, 3, 0.5, 3), (1, 0, 0.5, 1), (0, 1, 0.5, 1), (5, 7, 0.25, 3)],
)
def test_mlocked_counts_file_and_anonymous_pages_together(
    plugins: Registry, files: int, anon: int, mlocked: float, want: int
) -> None:
    assert counts(plugins, files, anon, f"mlocked = {mlocked}")["mlocked"] == want


@pytest.mark.parametrize(
    ("files", "state", "fraction", "want"),
    [
        (5, "dirty", 0.5, 3),  # half up, where round() gave 2 (half to even)
        (7, "dirty", 0.5, 4),
        (2, "swapout", 0.5, 1),
        (50, "mapped", 0.29, 15),  # 14.5 as written; the float product is just under
        (50, "writeback", 0.01, 1),
        (10, "locked", 0.04, 0),
    ],
)
def test_a_fraction_is_its_pool_rounded_half_up(
    plugins: Registry, files: int, state: str, fraction: float, want: int
) -> None:
    assert counts(plugins, files, 0, f"{state} = {fraction}")[state] == want


# -- the writeback state on a data-journalling mount -----------------------------------------


def test_ext3_data_journal_writeback_pages_are_journalled_not_under_writeback(
    plugins: Registry,
) -> None:
    text = '[[mount]]\nfs = "ext3"\nmode = "journal"\npages = 8\n[workload]\nwriteback = 1.0\n'
    world = Scenario(parse_config(text, "s.toml"), plugins, seed=0)
    assert len(world.states["writeback"]) == 8
    for slot in world.states["writeback"]:
        page = world.page_of(slot)
        assert not page.flags & (PG.writeback | PG.dirty)
        assert all(bh.b_state & BH.jbddirty for bh in buffers(page.private))


def test_the_docs_say_what_writeback_means_on_data_journal() -> None:
    text = (DOCS / "configuration.md").read_text()
    row = re.search(r"^\| `writeback` \|.*$", text, re.MULTILINE)
    assert row is not None
    assert "data=journal" in row.group(0)
    assert "PG_writeback" in row.group(0)
    section = text.split("#### The workload states", 1)[1].split("\n### ", 1)[0]
    assert "writeback N" in section
    assert "rounded half up" in section
