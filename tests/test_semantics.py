"""Kernel semantics: ``[kernel] semantics``, ``--semantics`` and what each release changes.

The engine-level differences are asserted branch by branch in
``test_engine.py``, ``test_helpers.py`` and ``test_mempolicy.py``; here are
the switch itself and what a whole scenario shows of each release.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import attrs
import pytest

from fsaops.cli import main
from fsaops.config import default_config, parse_config
from fsaops.errors import ConfigError
from fsaops.kernel import Kernel
from fsaops.plugins import Registry
from fsaops.scenario import run_scenario
from fsaops.semantics import (
    DEFAULT_SEMANTICS,
    LINUX_2_6_16,
    LINUX_2_6_17,
    SEMANTICS,
    V4,
    Semantics,
    get_semantics,
)
from fsaops.world import World

DOCS = Path(__file__).resolve().parent.parent / "docs"

ANON_ONLY = """
[kernel]
node_memory = "1MiB"
semantics = "{semantics}"

[plugins]
load = ["swap"]

[swap]
slots = 512

[processes]
count = 2
anon_pages = 96

[workload]
seed = 5
mlocked = {mlocked}
"""


def anon_only(semantics: str, mlocked: float = 0.0) -> Any:
    return parse_config(ANON_ONLY.format(semantics=semantics, mlocked=mlocked), "anon.toml")


# -- the switch ------------------------------------------------------------------------------


def test_the_releases_and_the_default() -> None:
    assert list(SEMANTICS) == ["v4", "2.6.16", "2.6.17"]
    assert DEFAULT_SEMANTICS == "v4" == default_config().kernel.semantics
    assert SEMANTICS["v4"] is V4
    assert SEMANTICS["2.6.16"] is LINUX_2_6_16
    assert SEMANTICS["2.6.17"] is LINUX_2_6_17
    assert {s.generation for s in SEMANTICS.values()} == {"migratepage"}
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        V4.name = "v5"  # type: ignore[misc]


def test_releases_differ_only_where_documented() -> None:
    def fields(s: Semantics) -> dict[str, Any]:
        return {
            k: v for k, v in attrs.asdict(s, recurse=False).items() if k not in ("name", "title")
        }

    v4, l16, l17 = (fields(s) for s in (V4, LINUX_2_6_16, LINUX_2_6_17))
    assert {k for k in v4 if v4[k] != l16[k]} == {
        "unmap",
        "refs_mismatch",
        "remove_from_swap",
        "remove_from_swap_caller",
        "buffer_private_lock",
        "swap_page_ignore_refs",
        "chunk_pages",
        "new_pages_at_tail",
        "queue_at_tail",
        "swap_needed",
        "capable_moves_all",
        "may_queue",
    }
    # 2.6.17 moved the code to mm/migrate.c; what it does is 2.6.16's, but
    # for the fallback's unmapping first.
    assert {k for k in l16 if l16[k] != l17[k]} == {"fallback_unmaps"}


def test_a_kernel_is_built_with_one_release(registry: Registry) -> None:
    assert Kernel().semantics is V4
    assert Kernel(semantics="2.6.17").semantics is LINUX_2_6_17
    assert Kernel(semantics=LINUX_2_6_16).semantics is LINUX_2_6_16
    assert World(registry=registry, semantics="2.6.16").kernel.semantics is LINUX_2_6_16
    assert "semantics 2.6.16" in repr(World(registry=registry, semantics="2.6.16").kernel)


@pytest.mark.parametrize("name", ["v5", "2.6.15", "", "V4"])
def test_an_unknown_release_is_refused_with_the_valid_names(name: str) -> None:
    with pytest.raises(ConfigError, match=r"expected one of v4, 2\.6\.16, 2\.6\.17"):
        get_semantics(name)
    with pytest.raises(ConfigError, match=r"expected one of v4, 2\.6\.16, 2\.6\.17"):
        Kernel(semantics=name)


def test_the_config_key_names_an_unknown_release() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config('[kernel]\nsemantics = "2.6.15"\n', "old.toml")
    message = str(info.value)
    assert message.startswith("old.toml: kernel.semantics: unknown semantics '2.6.15'")
    assert "v4, 2.6.16, 2.6.17" in message
    assert parse_config('[kernel]\nsemantics = "2.6.16"\n', "ok.toml").kernel.semantics == "2.6.16"


# -- the command line ----------------------------------------------------------------------------


def test_an_unknown_semantics_option_exits_2_listing_the_valid_ones(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["migrate", "--semantics", "v5"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith("fsaops: error: argument --semantics: unknown semantics 'v5'")
    assert "v4, 2.6.16, 2.6.17" in err
    assert main(["migrate", "--semantics", "v5", "--json"]) == 2
    out, _ = capsys.readouterr()
    envelope = json.loads(out)
    assert envelope["status"] == "bad input"
    assert "--semantics" in envelope["error"] and "2.6.17" in envelope["error"]


def test_an_unknown_semantics_in_a_file_exits_2_naming_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "old.toml"
    path.write_text('[kernel]\nsemantics = "2.6.18"\n', encoding="utf-8")
    assert main(["migrate", str(path)]) == 2
    _, err = capsys.readouterr()
    assert "kernel.semantics: unknown semantics '2.6.18'" in err
    assert "v4, 2.6.16, 2.6.17" in err
    assert main(["config", "check", str(path)]) == 2


@pytest.mark.parametrize("semantics", ["v4", "2.6.17"])
def test_the_report_names_the_semantics(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], semantics: str
) -> None:
    path = tmp_path / "anon.toml"
    path.write_text(ANON_ONLY.format(semantics="2.6.16", mlocked=0.0), encoding="utf-8")
    assert main(["migrate", str(path), "--semantics", semantics, "--json"]) == 0
    out, _ = capsys.readouterr()
    assert json.loads(out)["config"]["kernel"]["semantics"] == semantics, "the option wins"
    assert main(["migrate", str(path), "--semantics", semantics]) == 0
    out, _ = capsys.readouterr()
    # The heading wraps at the console's width (a long temporary path pushes
    # its end onto the next line): look for it in the heading, not one line.
    heading = " ".join(out.split(" nodes of ")[0].split())
    assert f"semantics {semantics}" in heading


# -- what a scenario shows of each release ---------------------------------------------------------


@pytest.mark.parametrize("semantics", SEMANTICS)
def test_migrated_anonymous_pages_are_read_back_through_minor_faults_only_in_v4(
    registry: Registry, semantics: str
) -> None:
    report = run_scenario(anon_only(semantics), registry)
    assert report.exit_status == 0
    assert report.config["kernel"]["semantics"] == semantics
    (table,) = report.by_aops
    assert table.name == "swap_aops"
    assert table.moved == table.pages == 96
    vmstat = report.vmstat
    # The report's counters cover the read-back: V4's swap ptes each take a
    # minor fault through the swap cache; later releases gave real ptes back.
    assert vmstat["pgfault"] == (96 if semantics == "v4" else 0)
    assert vmstat["pgmajfault"] == vmstat["pswpin"] == 0


@pytest.mark.parametrize("semantics", SEMANTICS)
def test_vm_locked_pages_stay_with_eagain_until_2_6_16_fails_them_with_eperm(
    registry: Registry, semantics: str
) -> None:
    report = run_scenario(anon_only(semantics, mlocked=0.25), registry)
    assert report.exit_status == 0
    (table,) = report.by_aops
    mlocked = report.workload["mlocked"]
    assert mlocked == 24
    if semantics != "v4":
        assert table.failed == mlocked and table.not_migrated == 0
        assert table.errors == {"EPERM": mlocked}
        assert table.reasons == {"VM_LOCKED: try_to_unmap refused (permanent)": mlocked}
    else:
        assert table.not_migrated == mlocked and table.failed == 0
        assert table.errors == {"EAGAIN": mlocked}
        assert list(table.reasons) == [
            "still mapped: try_to_unmap refused, a VM_LOCKED area maps it"
        ]
    assert table.moved == 96 - mlocked


@pytest.mark.parametrize("semantics", SEMANTICS)
def test_the_default_scenario_under_each_release(registry: Registry, semantics: str) -> None:
    config = default_config()
    config = attrs.evolve(config, kernel=attrs.evolve(config.kernel, semantics=semantics))
    report = run_scenario(config, registry)
    assert report.exit_status == 0
    t = report.totals
    assert t.pages == t.moved + t.failed + t.not_migrated
    assert report.vmstat["pgmigrate_success"] == t.moved
    anon = next(x for x in report.by_aops if x.name == "swap_aops")
    if semantics == "v4":
        # One new page per migrate_pages call (the stray `;`): a call a page.
        assert t.calls > t.pages - t.failed - t.not_migrated - report.workload["swapout"]
        assert report.vmstat["pgmigrate_fail"] > t.failed + t.not_migrated
        assert report.vmstat["pgfault"] >= anon.via["migratepage"]
    else:
        # Chunks of 257: every page is left behind by one call at most.
        assert t.calls <= -(-t.pages // 257) + 2
        assert report.vmstat["pgmigrate_fail"] == t.failed + t.not_migrated
    eperm = sum(x.errors.get("EPERM", 0) for x in report.by_aops)
    assert (eperm > 0) == (semantics != "v4")


# -- the documentation -----------------------------------------------------------------------------


@pytest.mark.parametrize("page", ["engine.md", "concepts.md"])
def test_the_docs_tabulate_every_release(page: str) -> None:
    text = (DOCS / page).read_text(encoding="utf-8")
    header = next(line for line in text.splitlines() if line.startswith("| Difference"))
    for name in SEMANTICS:
        assert f"`{name}`" in header, f"{page}: the semantics table has no column for {name}"


JOURNAL_MAPPED = """
[kernel]
node_memory = "1MiB"
semantics = "{semantics}"

[plugins]
load = ["ext3"]

[[mount]]
fs = "ext3"
mode = "journal"
pages = 24
files = 2

[swap]
slots = 0

[processes]
count = 1
anon_pages = 0

[workload]
seed = 3
mapped = 0.5
"""


@pytest.mark.parametrize("semantics", SEMANTICS)
def test_the_2_6_17_fallback_unmaps_before_it_looks_at_the_dirty_bit(
    registry: Registry, semantics: str
) -> None:
    """data=journal has no migratepage: the fallback moves its pages.

    Pages written through a mapping are dirty only in their ptes.  Until
    2.6.17 the fallback looks at ``PageDirty`` first, sees a clean page
    and moves it with ``migrate_page`` (which unmaps it, so the new page is
    dirty); 2.6.17 unmaps first, so it writes the page out, into the
    running transaction, whose buffers no one can free until kjournald
    commits: the page stays behind, as it would in the kernel.
    """
    config = parse_config(JOURNAL_MAPPED.format(semantics=semantics), "journal.toml")
    report = run_scenario(config, registry)
    assert report.exit_status == 0, report.integrity
    (table,) = report.by_aops
    mapped = report.workload["mapped"]
    assert mapped > 0
    if semantics == "2.6.17":
        assert report.vmstat["writepage"] == mapped
        assert (table.moved, table.not_migrated) == (24 - mapped, mapped)
        assert set(table.reasons) == {"swap_page: buffers could not be released"}
    else:
        assert report.vmstat["writepage"] == 0
        assert table.moved == 24


def test_the_oracle_follows_a_page_whose_swap_entry_went_to_another_page(
    registry: Registry,
) -> None:
    """From 2.6.16 a moved anonymous page leaves the swap cache and frees its entry.

    A page the same ``migrate_pages`` call adds to the swap cache later (the
    mlocked page, tried after the clean ones) may be given that entry: its
    slot then holds another page, and the oracle must not take that page
    for where the first one went (it follows the process's pte instead).
    """
    for semantics in ("v4", "2.6.16", "2.6.17"):
        world = World(registry=registry, nodes=2, node_pages=64, swap_slots=32, semantics=semantics)
        for spec in ("clean", "clean", "dirty+mlocked"):
            world.make_page(spec)
        run = world.migrate()
        assert run.problems == [], (semantics, run.problems)
        assert len(run.moved) == 2, semantics
