"""The scenario builder and runner: the world it builds, the paths it takes, what it checks."""

from __future__ import annotations

import json
import math
from fractions import Fraction
from pathlib import Path
from typing import Any

import attrs
import pytest

from fsaops.buffer import BH, buffers
from fsaops.config import Config, default_config, load_config, parse_config
from fsaops.errors import ConfigError, MigrationDisabled
from fsaops.page import PG
from fsaops.plugins import Registry, load_plugins
from fsaops.report import Report
from fsaops.scenario import Scenario, plan_scenario, run_plan, run_scenario
from fsaops.testing import Recorder

CONFIGS = Path(__file__).parent / "configs"


@pytest.fixture(scope="module")
def small() -> Config:
    return load_config(CONFIGS / "small.toml")


@pytest.fixture(scope="module")
def default_report(registry: Registry) -> Report:
    return run_scenario(default_config(), registry)


def evolve(config: Config, **tables: dict[str, Any]) -> Config:
    """``config`` with some keys of some tables replaced."""
    changes = {
        name: attrs.evolve(getattr(config, name), **values) for name, values in tables.items()
    }
    return attrs.evolve(config, **changes)


# -- the built-in scenario --------------------------------------------------------------


def test_default_scenario_keeps_every_page(default_report: Report) -> None:
    r = default_report
    assert r.integrity.lost == 0
    assert r.integrity.corrupted == 0
    assert r.invariants == ()
    assert r.exit_status == 0
    assert r.integrity.checked >= r.totals.pages


def test_default_scenario_takes_migratepage_with_and_without_buffers(
    default_report: Report,
) -> None:
    tables = {t.name: t for t in default_report.by_aops}
    buffered = [
        t
        for t in tables.values()
        if t.migratepage is not None and t.migratepage.endswith(".buffer_migrate_page")
    ]
    assert {t.filesystem for t in buffered} >= {"ext2", "ext3", "xfs"}
    assert all(t.via.get("migratepage", 0) > 0 for t in buffered)
    swap = tables["swap_aops"]
    assert swap.migratepage is not None and swap.migratepage.endswith(".migrate_page")
    assert swap.via["migratepage"] > 0


def test_default_scenario_takes_the_fallback_on_ext3_journal(default_report: Report) -> None:
    journal = {t.name: t for t in default_report.by_aops}["ext3_journalled_aops"]
    assert journal.migratepage is None
    assert journal.via["writeback"] > 0
    assert journal.via["migrate_page"] > 0
    assert default_report.vmstat["writepage"] >= journal.via["writeback"]


def test_default_scenario_swaps_pages_out(default_report: Report) -> None:
    tables = {t.name: t for t in default_report.by_aops}
    # swap_page sends an anonymous page to swap, and drops a file page to its blocks.
    assert tables["swap_aops"].via.get("swap", 0) > 0
    assert all("swap" not in t.via for name, t in tables.items() if name != "swap_aops")
    dropped = sum(t.via.get("dropped", 0) for t in default_report.by_aops)
    assert dropped > 0
    assert tables["swap_aops"].via["swap"] + dropped <= default_report.workload["swapout"]


def test_default_scenario_fails_buftarg_pages_with_eio(default_report: Report) -> None:
    buftarg = [t for t in default_report.by_aops if t.filesystem == "xfs_buftarg"]
    assert len(buftarg) == 1
    t = buftarg[0]
    assert t.pages > 0
    assert t.failed == t.pages == t.errors["EIO"]
    assert t.moved == 0


def test_default_scenario_leaves_pinned_and_mlocked_pages_with_eagain(
    default_report: Report,
) -> None:
    reasons: dict[str, int] = {}
    left = 0
    for t in default_report.by_aops:
        left += t.not_migrated
        assert t.errors.get("EAGAIN", 0) == t.not_migrated
        for why, n in t.reasons.items():
            reasons[why] = reasons.get(why, 0) + n
    assert left > 0
    pinned = sum(n for why, n in reasons.items() if "extra reference" in why)
    mlocked = sum(n for why, n in reasons.items() if "still mapped" in why)
    assert 0 < pinned <= default_report.workload["pinned"]
    assert 0 < mlocked <= default_report.workload["mlocked"]


def test_report_totals_add_up(default_report: Report) -> None:
    t = default_report.totals
    assert t.pages == t.moved + t.failed + t.not_migrated
    assert t.pages == sum(x.pages for x in default_report.by_aops)
    assert t.moved == sum(sum(x.via.values()) for x in default_report.by_aops)
    assert default_report.vmstat["pgmigrate_success"] == t.moved
    # V4 (the default) gives each migrate_pages call one new page, so a page left
    # behind is left by many calls, and pgmigrate_fail counts each (2.6.16: see
    # test_semantics.py).
    assert default_report.vmstat["pgmigrate_fail"] > t.failed + t.not_migrated
    assert t.calls >= 2
    assert t.passes >= t.calls
    assert default_report.workload["pages"] == t.pages


# -- the world ------------------------------------------------------------------------------


def test_world_puts_every_page_on_the_source_node(small: Config, registry: Registry) -> None:
    world = Scenario(small, registry, seed=1)
    node = world.kernel.nodes[small.migrate.from_node]
    used = node.nr_pages - node.nr_free
    anon = small.anon_pages
    assert used == sum(m.pages for m in small.mount) + anon
    assert world.kernel.nodes[small.migrate.to_node].nr_free == small.node_pages


def test_world_state_counts_follow_the_fractions(small: Config, registry: Registry) -> None:
    world = Scenario(small, registry, seed=3)
    file_pages = sum(m.pages for m in small.mount if m.fs != "xfs_buftarg")
    meta_pages = sum(m.pages for m in small.mount if m.fs == "xfs_buftarg")
    anon = small.anon_pages
    w = small.workload
    pools = {
        "mlocked": file_pages + anon,  # file and anonymous pages counted together
        "swapout": file_pages + anon,
        "pinned": file_pages + anon + meta_pages,
        "locked": file_pages + anon + meta_pages,
        "writeback": file_pages,
        "dirty": file_pages,
        "mapped": file_pages,
    }
    for state, pool in pools.items():
        # The documented rule: the fraction of the whole pool, rounded half up.
        want = math.floor(Fraction(repr(getattr(w, state))) * pool + Fraction(1, 2))
        assert len(world.states[state]) == want, state
    keys = [slot.key for slots in world.states.values() for slot in slots]
    assert len(keys) == len(set(keys)), "a page got two states"


def test_world_pages_are_in_their_states(small: Config, registry: Registry) -> None:
    world = Scenario(small, registry, seed=5)
    assert any(world.page_of(s).flags & PG.writeback for s in world.states["writeback"])
    assert all(world.page_of(s).flags & PG.dirty for s in world.states["dirty"])
    assert all(world.page_of(s).flags & PG.locked for s in world.states["locked"])
    assert all(world.page_of(s).mapcount == 1 for s in world.states["mapped"])
    assert all(world.page_of(s).mapcount == 1 for s in world.states["mlocked"])
    pinned = {id(s) for s in world.states["pinned"]}
    for slot in world.slots:
        page = world.page_of(slot)
        if slot in world.states["swapout"]:
            continue  # isolated: one more reference
        cache = 0 if slot.kind == "anon" else 1
        xfs_buf = 1 if slot.kind == "meta" else 0  # the metadata buffer's own reference
        base = cache + xfs_buf + (1 if page.flags & PG.private else 0) + page.mapcount
        assert page.count == base + (id(slot) in pinned), slot.key
    assert len(world.swaplist) == len(world.states["swapout"])
    clean = [
        s
        for s in world.slots
        if s.kind == "file" and not any(s in v for v in world.states.values())
    ]
    assert clean and not any(world.page_of(s).flags & PG.dirty for s in clean)


def test_source_node_keeps_only_the_pages_that_stayed(small: Config, registry: Registry) -> None:
    world = Scenario(small, registry, seed=11)
    stats = world.migrate()
    node = world.kernel.nodes[small.migrate.from_node]
    left = sum(t.failed + t.not_migrated for t in stats.tables.values())
    assert left > 0
    assert node.nr_pages - node.nr_free == left
    integrity = world.check_integrity()
    assert (integrity.lost, integrity.corrupted) == (0, 0)
    assert node.nr_pages - node.nr_free == left, "reading back allocated on the source node"


def test_swapped_out_pages_come_back_on_the_target_node(small: Config, registry: Registry) -> None:
    world = Scenario(small, registry, seed=2)
    stats = world.migrate()
    swapped = sum(t.via.get("swap", 0) + t.via.get("dropped", 0) for t in stats.tables.values())
    assert swapped > 0
    world.check_integrity()
    target = small.migrate.to_node
    back = [s for s in world.states["swapout"] if world.page_of(s).node.nid == target]
    assert len(back) == swapped


def test_integrity_check_finds_corrupted_and_lost_pages(small: Config, registry: Registry) -> None:
    world = Scenario(small, registry, seed=4)
    world.migrate()
    dirty = world.states["dirty"][0]
    clean_anon = next(s for s in world.slots if s.kind == "anon")
    other = world.states["dirty"][1]
    contents = world.world.contents
    world.page_of(dirty).data[:] = contents.page(dirty.owner.owner, dirty.index, 0)
    world.page_of(clean_anon).data[100:108] = b"garbage!"
    stranger = world.world.owner("mount9/file9")
    world.page_of(other).data[:] = contents.page(stranger, 9, 1)
    integrity = world.check_integrity()
    assert integrity.lost == 1
    assert integrity.corrupted == 2
    text = "\n".join(integrity.problems)
    assert f"({dirty.key}): lost: reads back generation 0, expected 1" in text
    assert f"({clean_anon.key}): corrupted: reads back other bytes" in text
    assert f"({other.key}): corrupted: holds the data of mount9/file9/page9 (generation 1)" in text


def test_zeroed_page_is_lost(small: Config, registry: Registry) -> None:
    world = Scenario(small, registry, seed=4)
    world.migrate()
    slot = next(s for s in world.slots if s.kind == "meta")
    world.page_of(slot).data[:] = bytes(world.page_size)
    integrity = world.check_integrity()
    assert integrity.lost == 1
    assert "lost: reads back zeroes" in integrity.problems[0]


# -- determinism --------------------------------------------------------------------------------


def test_same_seed_gives_the_same_report(small: Config, registry: Registry) -> None:
    first = run_scenario(small, registry, seed=9, source="small.toml").dumps()
    second = run_scenario(small, registry, seed=9, source="small.toml").dumps()
    assert first == second


def test_another_seed_gives_another_workload(small: Config, registry: Registry) -> None:
    a = run_scenario(small, registry, seed=1)
    b = run_scenario(small, registry, seed=2)
    assert a.workload["digest"] != b.workload["digest"]
    assert a.seed == 1 and b.seed == 2
    assert json.loads(a.dumps())["config"] == json.loads(b.dumps())["config"]


def test_seed_defaults_to_the_workload_seed(small: Config, registry: Registry) -> None:
    assert run_scenario(small, registry).seed == small.workload.seed


# -- the other runs ---------------------------------------------------------------------------


def test_migration_compiled_out_is_enosys(registry: Registry) -> None:
    config = load_config(CONFIGS / "no_migration.toml")
    no_migration = load_plugins(cli=list(registry.selection), env={}, migration=False)
    with pytest.raises(MigrationDisabled, match="ENOSYS"):
        run_scenario(config, no_migration)


def test_progress_reports_every_phase(small: Config, registry: Registry) -> None:
    calls: list[tuple[str, int, int]] = []
    run_scenario(small, registry, progress=lambda *a: calls.append(a))
    phases = [c[0] for c in calls]
    assert phases[0] == "build" and phases[-1] == "check"
    assert set(phases) == {"build", "migrate", "check"}
    for phase in ("build", "migrate", "check"):
        mine = [c for c in calls if c[0] == phase]
        done = [c[1] for c in mine]
        assert done == sorted(done)
        assert mine[-1][1] == mine[-1][2], phase


def test_engine_events_go_to_the_given_logger(small: Config, registry: Registry) -> None:
    log = Recorder()
    report = run_scenario(small, registry, log=log.log)
    attempts = log.named("mm_migrate_page")
    assert len(attempts) >= report.totals.pages
    assert {e["level"] for e in attempts} == {"debug"}
    assert {"pfn", "table", "pass_", "path", "rc"} <= set(attempts[0])
    assert [e["event"] for e in log.events if e["level"] == "info"] == [
        "scenario_built",
        "scenario_done",
    ]


def test_allocation_failures_leave_pages_behind_but_lose_nothing(
    small: Config, registry: Registry
) -> None:
    config = evolve(small, faults={"alloc_fail": 1.0})
    report = run_scenario(config, registry)
    migrated = report.totals.pages - report.workload["swapout"]
    enomem = sum(t.errors.get("ENOMEM", 0) for t in report.by_aops)
    assert enomem == migrated
    assert report.faults["alloc_fail"] > 0
    assert report.totals.moved == sum(
        t.via.get("swap", 0) + t.via.get("dropped", 0) for t in report.by_aops
    )
    assert (report.integrity.lost, report.integrity.corrupted) == (0, 0)
    assert report.invariants == ()


def test_writepage_errors_lose_nothing(small: Config, registry: Registry) -> None:
    config = evolve(small, faults={"writepage_error": 1.0})
    report = run_scenario(config, registry)
    assert report.faults["writepage_error"] > 0
    assert (report.integrity.lost, report.integrity.corrupted) == (0, 0)
    assert report.invariants == ()


def test_without_swap_anonymous_pages_fail_with_enomem(registry: Registry) -> None:
    config = parse_config(
        '[kernel]\nnode_memory = "1MiB"\n[swap]\nslots = 0\n[processes]\nanon_pages = 12\n'
    )
    report = run_scenario(config, registry)
    swap = {t.name: t for t in report.by_aops}["swap_aops"]
    assert swap.failed == 12 == swap.errors["ENOMEM"]
    assert (report.integrity.lost, report.integrity.corrupted) == (0, 0)


def test_ext3_only_scenario_reports_only_ext3_tables() -> None:
    ext3 = load_plugins(cli="ext3", env={})
    report = run_scenario(load_config(CONFIGS / "ext3_only.toml"), ext3)
    assert {t.filesystem for t in report.by_aops} == {"ext3"}
    assert report.totals.pages == 64
    assert report.exit_status == 0


def test_empty_scenario_migrates_anonymous_memory(registry: Registry) -> None:
    report = run_scenario(Config(), registry)
    assert [t.name for t in report.by_aops] == ["swap_aops"]
    assert report.totals.moved == 256
    assert report.integrity.checked == 256
    assert report.exit_status == 0


# -- journals and the commit interval ----------------------------------------------------------

JOURNALS = """\
[kernel]
node_memory = "2MiB"
io_latency = 8
{interval}
[[mount]]
fs = "ext3"
mode = "ordered"
files = 2
pages = 40
[[mount]]
fs = "ext3"
mode = "journal"
files = 2
pages = 40
[workload]
seed = 5
dirty = 0.2
writeback = 0.25
"""


class _Journalled:
    """Counts, at each moment, the pages whose buffers a journal holds, by table."""

    def __init__(self) -> None:
        self.seen: dict[str, dict[str, int]] = {}

    def _count(self, moment: str, scenario: Scenario) -> None:
        counts: dict[str, int] = {}
        for record in scenario.files:
            for page in record.inode.i_mapping.pages():
                if page.flags & PG.private and any(
                    bh.b_state & BH.jbd for bh in buffers(page.private)
                ):
                    name = record.inode.i_mapping.a_ops.name
                    counts[name] = counts.get(name, 0) + 1
        self.seen[moment] = counts

    def built(self, scenario: Scenario) -> None:
        self._count("built", scenario)

    def migrated(self, scenario: Scenario, stats: object, places: object) -> None:
        self._count("migrated", scenario)


def test_the_journal_holds_written_back_buffers_through_the_migration(registry: Registry) -> None:
    """ext3 commits every five seconds, far longer than a migration: the default models that."""
    watch = _Journalled()
    plan = plan_scenario(parse_config(JOURNALS.format(interval=""), "journals.toml"), registry)
    report = run_plan(plan, observers=[watch])
    assert report.exit_status == 0 and report.integrity.lost == 0
    # Written-back pages reach migratepage (ordered) and the fallback (journal)
    # with their buffers in the running transaction, and ordered moves them so.
    assert watch.seen["built"].get("ext3_ordered_aops", 0) > 0
    assert watch.seen["built"].get("ext3_journalled_aops", 0) > 0
    assert watch.seen["migrated"].get("ext3_ordered_aops", 0) > 0
    tables = {t.name: t for t in report.by_aops}
    # data=journal has no migratepage in V4: a page the journal holds cannot be
    # released until the commit, so migration leaves it.
    reasons = tables["ext3_journalled_aops"].reasons
    left = reasons.get("swap_page: buffers could not be released", 0)
    assert left > 0, reasons
    assert sum(p.table == "ext3_journalled_aops" for p in report.pages_left) >= left


def test_a_short_commit_interval_commits_during_the_migration(registry: Registry) -> None:
    text = JOURNALS.format(interval="commit_interval = 16")
    report = run_plan(plan_scenario(parse_config(text, "journals.toml"), registry))
    journal = {t.name: t for t in report.by_aops}["ext3_journalled_aops"]
    assert journal.reasons.get("swap_page: buffers could not be released", 0) == 0
    assert journal.via.get("writeback", 0) > 0, "moved once the commit released the buffers"
    assert report.exit_status == 0 and report.integrity.lost == 0


@pytest.mark.parametrize("value", [0, -5, 10**10])
def test_a_commit_interval_out_of_range_is_bad_input(registry: Registry, value: int) -> None:
    text = JOURNALS.format(interval=f"commit_interval = {value}")
    with pytest.raises(ConfigError, match=r"kernel\.commit_interval"):
        plan_scenario(parse_config(text, "journals.toml"), registry)


@pytest.mark.parametrize("page_size", [1024, 2048])
def test_a_page_that_stays_behind_keeps_its_data_on_frames_smaller_than_the_systems_pages(
    registry: Registry, page_size: int
) -> None:
    """Handing freed frames back must not zero a neighbour that shares the system's page.

    Pages left behind (pinned, mlocked, no swap slot) keep their frames; a
    frame of 1,024 bytes shares a 4 KiB page of the system with three
    others, some of them maybe still in use.
    """
    text = (
        f'[kernel]\npage_size = {page_size}\n[[mount]]\nfs = "ext2"\n'
        "[workload]\npinned = 0.1\nmlocked = 0.05\ndirty = 0.3\n[faults]\nswap_full = 0.5\n"
    )
    report = run_scenario(parse_config(text, "small-pages.toml"), registry)
    assert report.status == "ok", (report.integrity.problems, report.proofs)
    assert report.totals.not_migrated + report.totals.failed > 0, "some pages stay behind"
