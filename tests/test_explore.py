"""The explorer: schedules, the search, replay strings, the command, the race branches.

Every schedule runs in a forked child from a machine built once; these
tests keep the bounds small (a few hundred schedules at most) so that the
suite stays fast.  The full bounds of every built-in table are measured by
``tox -e explore``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from errno import EAGAIN
from pathlib import Path
from typing import Any

import attrs
import pytest

from fsaops import rmap
from fsaops.cli import main
from fsaops.errors import ConfigError
from fsaops.explore import REPLAY_PREFIX, TaskSpec, decode_replay, encode_replay, explore, replay
from fsaops.explore.api import Bounds, render_text
from fsaops.explore.search import fork_run, preemptions
from fsaops.explore.setup import ExploredWorld, Setup, assign_pages, default_tasks, probe
from fsaops.page import PG, Page, put_page
from fsaops.plugins import Registry, load_plugins
from fsaops.proofs import snapshot_places
from fsaops.status import Status
from fsaops.swap import delete_from_swap_cache, read_swap_cache_async


@pytest.fixture(scope="module")
def registry() -> Iterator[Registry]:
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("FSAOPS_PLUGINS", raising=False)
        yield load_plugins()


def _world(registry: Registry, fs: str, tasks: list[str], pages: int = 4) -> ExploredWorld:
    fstype = registry.filesystem(fs)
    specs = assign_pages(tasks, pages, anonymous=fs == "swap")
    return ExploredWorld(Setup(fs, fstype.default_mode, pages=pages, tasks=specs), fstype, registry)


def test_one_schedule_runs_end_to_end(registry: Registry) -> None:
    xworld = _world(registry, "ext2", ["read-fault", "write"])
    result = fork_run(xworld, record=True)
    assert result["outcome"] == "done", result["problems"]
    assert result["problems"] == []
    assert result["names"][:3] == ["migrate", "read-fault@0", "write@1"]
    # No preemption: the migration runs first, to the end, then each accessor.
    assert preemptions(result["trace"]) == 0
    functions = {label[2] for label in result["labels"]}
    assert {"migrate_pages", "migrate_page_remove_references", "buffer_migrate_page"} <= functions
    # The machine the schedule ran on is the parent's, untouched: it runs again the same.
    again = fork_run(xworld, record=True)
    assert again["trace"] == result["trace"]


def test_the_bounded_space_of_two_accessors_is_exhausted(registry: Registry) -> None:
    result = explore("ext2", tasks=["read-fault", "write"], preemptions=1, registry=registry)
    assert result.exhausted
    assert result.failures == ()
    assert result.status is Status.OK
    assert result.schedules > 10
    assert result.tasks == ("read-fault@0", "write@1")
    assert result.schedules_per_second > 0


def test_the_tree_lock_recheck_is_reached_by_an_explored_schedule(registry: Registry) -> None:
    """migrate_page_remove_references's "changed under us" branch: a fault's reference
    taken after the count was checked, before tree_lock, is caught there."""
    result = explore("ext2", tasks=["read-fault"], pages=1, preemptions=1, registry=registry)
    assert result.exhausted and not result.failures
    changed = [why for why in result.reasons if "changed under us" in why]
    assert changed == ["reference count changed under us: 4, expected 3"]


def test_the_reduction_runs_fewer_schedules_and_reaches_the_same_branches(
    registry: Registry,
) -> None:
    kwargs: dict[str, Any] = {"tasks": ["read-fault", "write"], "pages": 2, "preemptions": 1}
    reduced = explore("ext2", registry=registry, **kwargs)
    full = explore("ext2", registry=registry, reduce=False, **kwargs)
    assert reduced.exhausted and full.exhausted
    assert reduced.schedules < full.schedules
    assert set(reduced.reasons) == set(full.reasons)
    assert not reduced.failures and not full.failures


def test_pct_runs_the_schedules_asked_for_and_never_exhausts(registry: Registry) -> None:
    result = explore(
        "ext2", tasks=["read-fault", "write"], pct=3, schedules=20, seed=7, registry=registry
    )
    assert result.schedules == 20
    assert not result.exhausted
    assert result.bounds.pct_depth == 3 and result.bounds.seed == 7
    assert not result.failures


@pytest.fixture
def no_swap_recheck(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rmap, "_SWAP_FAULT_RECHECK", False)


def test_without_the_swap_fault_recheck_the_explorer_finds_the_race(
    registry: Registry, no_swap_recheck: None
) -> None:
    """V4 1/6's re-check removed: under 2.6.16, whose migrate_page takes a migrated
    anonymous page out of the swap cache (remove_from_swap), a swap fault that
    slept on the page lock maps it anyway and frees its swap entry twice."""
    result = explore("swap", tasks=["swapin"], pages=1, semantics="2.6.16", registry=registry)
    assert result.failures, render_text(result)
    (failure,) = result.failures
    assert failure.status is Status.KERNEL_BUG
    assert any("task swapin@0 failed" in p for _, p in failure.problems)
    tasks = {step.task for step in failure.interleaving}
    assert {"migrate", "swapin@0"} <= tasks
    functions = {step.function for step in failure.interleaving}
    assert "remove_from_swap_2616" in functions
    text = render_text(result)
    assert "FAILED (kernel bug)" in text
    assert f"replay: fsaops explore --replay {failure.replay}" in text


def test_with_the_swap_fault_recheck_nothing_fails(registry: Registry) -> None:
    assert rmap._SWAP_FAULT_RECHECK
    result = explore("swap", tasks=["swapin"], pages=1, semantics="2.6.16", registry=registry)
    assert result.exhausted
    assert result.failures == ()


# A schedule the default search of the swap table under 2.6.16 runs: swapin@1's fault
# looks up its swap entry after the migration took page 1's new page out of the swap
# cache (delete_from_swap_cache, tree_lock released) and before it freed the entry.
SWAP_READ_INTO_AN_OLD_FRAME = (
    "fsx2.eyJicyI6bnVsbCwiYyI6W1swLDFdLFs1LDBdLFs0MCwxXV0sImQiOm51bGwsImZzIjoic3dhcCIsImsiOjIs"
    "Im1vZGUiOiJkZWZhdWx0IiwibiI6bnVsbCwicGFnZXMiOjQsInBzIjo0MDk2LCJzZWVkIjowLCJzZW0iOiIyLjYu"
    "MTYiLCJ0YXNrcyI6WyJzd2FwaW5AMSJdfQ"
)


def test_a_swap_fault_that_reads_its_entry_into_a_freed_old_frame_is_no_failure(
    registry: Registry,
) -> None:
    """The fault finds no page for its entry, which is still in use, so it reads the
    entry into a new page (read_swap_cache_async): the old frame of page 0, freed by
    the first pass.  Its pte is present by then, so it leaves that page in the swap
    cache, as do_swap_page does.  The frame was freed; the proof said it was not."""
    result = replay(SWAP_READ_INTO_AN_OLD_FRAME, registry=registry)
    assert result.replayed and result.schedules == 1
    assert result.semantics == "2.6.16"
    steps = [(s.task, s.kind, s.function) for s in result.interleaving]
    # The migration stops in page 1's delete_from_swap_cache while the fault reads.
    read = steps.index(("swapin@1", "spin_lock", "add_to_swap_cache"))
    migrate = [step for step in steps[:read] if step[0] == "migrate"]
    assert migrate[-1] == ("migrate", "spin_lock", "delete_from_swap_cache"), steps
    assert steps[read:].count(("migrate", "spin_unlock", "delete_from_swap_cache")) == 2
    assert result.failures == (), render_text(result)
    assert result.status is Status.OK


def test_only_frames_a_fault_filled_after_the_snapshot_count_as_handed_out_again(
    registry: Registry,
) -> None:
    """A page a swap fault read in before migration is the page the proof follows: were its
    frame still noted, a table that moved it and never freed the old frame would pass."""
    xworld = _world(registry, "swap", ["swapin"], pages=1)
    world = xworld.world
    kernel = world.kernel
    entry = kernel.swap_info().get_swap_page()
    page = read_swap_cache_async(kernel, entry, 0)
    assert page is not None and page.pfn in kernel.swap_reads
    kernel.cow_copies.add(page.pfn)
    snapshot_places(world, 0)
    assert page.pfn not in kernel.swap_reads
    assert page.pfn not in kernel.cow_copies


def test_an_old_frame_a_swap_fault_read_into_is_reused_only_until_freed(
    registry: Registry,
) -> None:
    xworld = _world(registry, "swap", ["swapin"], pages=1)
    kernel = xworld.world.kernel
    swap = kernel.swap_info()
    entry = swap.get_swap_page()
    page = read_swap_cache_async(kernel, entry, 0)
    assert page is not None
    assert page.pfn in kernel.swap_reads
    delete_from_swap_cache(page)
    assert page.pfn in kernel.swap_reads  # the fault's reference and the LRU's still hold it
    put_page(page)
    assert page.count == 0
    assert page.pfn not in kernel.swap_reads


# Under 2.6.16 the migration gives the page up (a reference is held) and remove_from_swap
# gives its pte back read-only while the page is still locked; mmap-write@0's write-protect
# fault cannot lock it and copies it.
WRITE_COPIES_A_PAGE_THE_MIGRATION_GIVES_UP = (
    "fsx2.eyJicyI6bnVsbCwiYyI6W1swLDJdLFs2LDNdLFs3LDJdLFsxOSwxXV0sImQiOm51bGwsImZzIjoic3dhcCIs"
    "ImsiOjIsIm1vZGUiOiJkZWZhdWx0IiwibiI6bnVsbCwicGFnZXMiOjEsInBzIjo0MDk2LCJzZWVkIjowLCJzZW0i"
    "OiIyLjYuMTYiLCJ0YXNrcyI6WyJtbWFwLXdyaXRlQDAiLCJwaW5AMCJdfQ"
)


def test_a_page_left_whose_process_wrote_to_its_own_copy_is_no_failure(
    registry: Registry,
) -> None:
    """do_wp_page gives the process a copy, the old page stays in the swap cache,
    unmapped, and the migration leaves it there: the process's place is its copy.
    The proof said the page should still be in its frame."""
    result = replay(WRITE_COPIES_A_PAGE_THE_MIGRATION_GIVES_UP, registry=registry)
    assert result.replayed and result.schedules == 1
    functions = {(s.task, s.function) for s in result.interleaving}
    assert ("mmap-write@0", "copy_on_write") in functions
    assert any("reference count" in why for why in result.reasons), result.reasons
    assert result.failures == (), render_text(result)
    assert result.status is Status.OK


def test_a_replay_reruns_exactly_the_failing_schedule(
    registry: Registry, no_swap_recheck: None
) -> None:
    found = explore("swap", tasks=["swapin"], pages=1, semantics="2.6.16", registry=registry)
    (failure,) = found.failures
    again = replay(failure.replay, registry=registry)
    assert again.replayed and again.schedules == 1
    (rerun,) = again.failures
    assert rerun.problems == failure.problems
    assert rerun.interleaving == failure.interleaving
    assert rerun.replay == failure.replay


def test_a_replay_whose_choices_exceed_its_bound_is_damaged(registry: Registry) -> None:
    """Before, a string recording k = 0 replayed "a schedule with 1 preemption"."""
    setup = Setup("ext2", "default", pages=1, tasks=(TaskSpec("write", 0),))
    preempted = {1: 1}  # at point 1 the write runs, though the migration could go on
    again = replay(encode_replay(setup, Bounds(preemptions=1), preempted), registry=registry)
    assert again.replayed and again.status is Status.OK
    with pytest.raises(
        ConfigError, match=r"damaged: its choices make 1 preemption, more than the bound it records"
    ):
        replay(encode_replay(setup, Bounds(preemptions=0), preempted), registry=registry)


def test_a_replay_string_records_everything() -> None:
    setup = Setup(
        "ext3",
        "journal",
        block_size=1024,
        semantics="2.6.17",
        pages=3,
        tasks=(TaskSpec("write", 0), TaskSpec("kjournald", 2)),
    )
    from fsaops.explore import Bounds

    bounds = Bounds(preemptions=None, pct_depth=3, schedules=50, seed=9)
    text = encode_replay(setup, bounds, {4: 1, 17: 0})
    assert text.startswith(REPLAY_PREFIX)
    assert decode_replay(text) == (setup, bounds, {4: 1, 17: 0})


@pytest.mark.parametrize(
    "text",
    [
        "",
        "xyz",
        REPLAY_PREFIX + "!!!",
        REPLAY_PREFIX + "e30",  # {}
        REPLAY_PREFIX + "WzFd",  # [1]
    ],
)
def test_a_damaged_replay_string_is_bad_input(text: str) -> None:
    with pytest.raises(ConfigError, match="--replay"):
        decode_replay(text)


def test_a_long_interleaving_is_shown_by_its_ends() -> None:
    """A schedule of 200,000 points printed 14 MB of text; the JSON keeps every step."""
    from fsaops.explore.api import STEPS_SHOWN, Step, _interleaving

    steps = [Step("migrate", "tick", "f", 0, -1, "") for _ in range(10 * STEPS_SHOWN)]
    lines = _interleaving(steps)
    assert len(lines) == 2 * STEPS_SHOWN + 2
    assert lines[STEPS_SHOWN].strip() == (
        f"... {8 * STEPS_SHOWN:,} steps left out (--json has every step) ..."
    )
    assert lines[STEPS_SHOWN + 1].split()[0] == str(9 * STEPS_SHOWN)  # numbered as they ran
    assert len(_interleaving(steps[: 2 * STEPS_SHOWN])) == 2 * STEPS_SHOWN + 1


def _replay_string(**fields: object) -> str:
    import base64

    data: dict[str, object] = {
        "bs": None,
        "c": [],
        "d": None,
        "fs": "ext2",
        "k": 1,
        "mode": "default",
        "n": None,
        "pages": 2,
        "ps": 4096,
        "seed": 0,
        "sem": "v4",
        "tasks": ["bh-lock@0"],
    }
    data.update(fields)
    text = json.dumps(data, separators=(",", ":"))
    return REPLAY_PREFIX + base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    ("fields", "said"),
    [
        ({"ps": 1 << 20}, "bad ps"),
        ({"ps": 3000}, "bad ps"),
        ({"c": [[0, 1], [0, 0]]}, "choice point 0 is given twice"),
        ({"k": 1, "d": 3}, "either a preemption bound, k, or a PCT depth, d"),
        ({"k": None, "d": None}, "either a preemption bound, k, or a PCT depth, d"),
        ({"k": None, "d": 0}, "bad d 0"),
        ({"n": 0}, "bad n 0"),
        ({"seed": 5}, "bad seed"),
    ],
)
def test_a_replay_string_no_search_writes_is_bad_input(
    fields: dict[str, object], said: str
) -> None:
    """Before, a 1 MiB page, a choice given twice (the last one won) and odd bounds replayed."""
    with pytest.raises(ConfigError, match=re.escape(said)):
        decode_replay(_replay_string(**fields))


def test_a_deeply_nested_replay_string_is_damaged_not_a_crash() -> None:
    import base64

    deep = '{"fs":' + "[" * 30_000 + "]" * 30_000 + "}"
    text = REPLAY_PREFIX + base64.urlsafe_b64encode(deep.encode()).decode().rstrip("=")
    with pytest.raises(ConfigError, match="damaged"):
        decode_replay(text)


@pytest.mark.parametrize("choices", [[[0, 99]], [[0, 1], [3, 7]]])
def test_a_replay_whose_choices_cannot_be_made_does_not_replay(
    registry: Registry, choices: list[list[int]]
) -> None:
    """Before, a choice that could not be made was dropped and the schedule "passed"."""
    with pytest.raises(ConfigError, match="does not replay: at point"):
        replay(_replay_string(c=choices), registry=registry)
    assert replay(_replay_string(c=[[0, 1]]), registry=registry).replayed  # a choice it can make


@pytest.mark.parametrize("choices", [[[999, 7]], [[0, 1], [5000, 0]]])
def test_a_replay_whose_choices_lie_past_the_schedule_s_end_does_not_replay(
    registry: Registry, choices: list[list[int]]
) -> None:
    """Before, a choice at a point the schedule never reached was never made, and the schedule
    "passed": a string recorded against a longer version of a table came back as a pass."""
    with pytest.raises(ConfigError, match=r"does not replay: the string records a choice at point"):
        replay(_replay_string(c=choices), registry=registry)


@pytest.mark.parametrize(("k", "pct"), [(10**20, None), (2, 10**20), (2, 10**8)])
def test_a_bound_beyond_any_schedule_costs_nothing(
    registry: Registry, k: int, pct: int | None
) -> None:
    """Before, a huge k made a list per level, and a huge PCT depth overflowed: a false failure."""
    result = explore(
        "ext2",
        tasks=[TaskSpec("bh-lock", 0)],
        pages=2,
        schedules=3,
        preemptions=k,
        pct=pct,
        registry=registry,
    )
    assert result.schedules == 3 and result.failures == ()


@pytest.mark.parametrize("page", ["²", "٣", "3x", ""])
def test_a_task_page_in_other_digits_is_bad_input(page: str) -> None:
    from fsaops.explore.api import parse_tasks

    with pytest.raises(ConfigError, match="expected NAME or NAME@PAGE"):
        parse_tasks([f"read-fault@{page}"])


@pytest.mark.parametrize("items", [["read-fault", "", "write"], ["read-fault", " "]])
def test_an_empty_task_in_a_list_is_bad_input(items: list[str]) -> None:
    """Before, ``--tasks read-fault,,write`` dropped the empty item and ran."""
    from fsaops.explore.api import parse_tasks

    with pytest.raises(ConfigError, match="an empty item"):
        parse_tasks(items)
    assert parse_tasks([""]) == []  # nothing named at all: --tasks says a list needs one


@pytest.mark.parametrize(("field", "value"), [("tasks", 5), ("c", {"4": 1}), ("pages", "4")])
def test_a_replay_field_of_the_wrong_kind_is_named(field: str, value: object) -> None:
    """Before, ``"tasks": 5`` was "a field is missing"."""
    with pytest.raises(ConfigError, match=f"--replay: bad {field} "):
        decode_replay(_replay_string(**{"k": 0, "pages": 4, "tasks": ["write@0"], field: value}))


@pytest.mark.parametrize("digits", [41, 5000])
def test_a_task_page_of_more_digits_than_any_page_is_bad_input(digits: int) -> None:
    """Before, 4,301 digits and more were a ``ValueError`` of ``int()``: a "kernel bug", exit 1."""
    from fsaops.explore.api import parse_tasks

    said = f"task read-fault@...: a page number of {digits:,} digits, past every page"
    with pytest.raises(ConfigError, match=re.escape(said)):
        parse_tasks(["read-fault@" + "9" * digits])
    text = _replay_string(k=0, pages=4, tasks=["read-fault@" + "9" * digits])
    with pytest.raises(ConfigError, match=re.escape("--replay: " + said)):
        decode_replay(text)
    assert parse_tasks(["read-fault@" + "0" * 39 + "1"]) == [TaskSpec("read-fault", 1)]


def test_default_tasks_are_every_accessor_that_applies(registry: Registry) -> None:
    ext2 = registry.filesystem("ext2")
    assert default_tasks(ext2, "default", probe(ext2, "default", registry)) == [
        "read-fault",
        "mmap-write",
        "write",
        "truncate",
        "writeback",
        "bh-lock",
        "pin",
    ]
    ext3 = registry.filesystem("ext3")
    assert "kjournald" in default_tasks(ext3, "ordered", probe(ext3, "ordered", registry))
    swap = registry.filesystem("swap")
    assert default_tasks(swap, "default", probe(swap, "default", registry)) == [
        "mmap-write",
        "writeback",
        "swapin",
        "pin",
    ]


BUILTIN_TABLES = [
    ("ext2", "default"),
    ("ext2", "nobh"),
    ("ext3", "ordered"),
    ("ext3", "writeback"),
    ("ext3", "journal"),
    ("xfs", "default"),
    ("swap", "default"),
    ("xfs_buftarg", "default"),
]


@pytest.mark.exhaustive
@pytest.mark.parametrize(("fs", "mode"), BUILTIN_TABLES)
def test_every_builtin_table_exhausts_its_default_space_without_a_failure(
    fs: str, mode: str, registry: Registry
) -> None:
    """Smaller bounds than the default (``tox -e explore`` runs k = 2 and four pages)."""
    result = explore(fs, mode, pages=2, preemptions=1, registry=registry)
    assert result.exhausted, result.schedules
    assert not result.failures, result.failures[0].problems
    assert result.schedules > len(result.tasks)


# -- the command ---------------------------------------------------------------------------


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    status = main(["explore", *args])
    out, err = capsys.readouterr()
    return status, out, err


def test_the_command_exits_0_and_says_the_space_was_exhausted(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FSAOPS_PLUGINS", raising=False)
    status, out, err = _run(
        ["--fs", "ext2", "--tasks", "read-fault", "--pages", "1", "--preemptions", "1", "--json"],
        capsys,
    )
    assert status == 0, err
    data = json.loads(out)
    assert data["schema"] == 1 and data["status"] == "ok"
    assert data["exhausted"] is True
    assert data["failures"] == []
    assert data["tasks"] == ["read-fault@0"]
    assert data["bounds"] == {
        "preemptions": 1,
        "pct_depth": None,
        "schedules": None,
        "seed": 0,
        "together": True,
    }
    assert data["schedules"] > 1 and data["schedules_per_second"] > 0
    status, out, _ = _run(
        ["--fs", "ext2", "--tasks", "read-fault", "--pages", "1", "--preemptions", "1"], capsys
    )
    assert status == 0
    assert "the bounded space is exhausted" in out
    assert "no schedule fails" in out


@pytest.mark.parametrize(
    ("text", "args", "said"),
    [
        ("[plugins]\nload = []\n", [], "mounts nothing to explore; name a filesystem with --fs"),
        ('[[mount]]\nfs = "ext2"\nmode = "default"\n', ["--mode", "nobh"], "no mount in mode nobh"),
        # A mount that names no mode has its filesystem's default one.
        (
            '[[mount]]\nfs = "ext2"\n',
            ["--fs", "ext2", "--mode", "nobh"],
            "no mount of ext2 in mode nobh",
        ),
        # Checked as migrate checks it: a kernel without migration has none to explore,
        # and another mount of the scenario is checked too.
        (
            '[kernel]\nmigration = false\n[[mount]]\nfs = "ext2"\n',
            ["--fs", "ext2"],
            "kernel.migration = false: this kernel is built without CONFIG_MIGRATION",
        ),
        (
            '[[mount]]\nfs = "ext2"\n[[mount]]\nfs = "nosuchfs"\n',
            ["--fs", "ext2"],
            "mount[1].fs: unknown filesystem 'nosuchfs'",
        ),
    ],
)
def test_a_scenario_without_the_mount_to_explore_says_so(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    text: str,
    args: list[str],
    said: str,
) -> None:
    """It said 'no mount of None in mode None'."""
    monkeypatch.delenv("FSAOPS_PLUGINS", raising=False)
    scenario = tmp_path / "s.toml"
    scenario.write_text(text)
    status, _, err = _run([str(scenario), *args], capsys)
    assert status == 2
    assert said in err and "None" not in err


@pytest.mark.exhaustive
def test_without_tasks_the_command_takes_every_accessor_in_turn_and_exhausts(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FSAOPS_PLUGINS", raising=False)
    status, out, err = _run(["--fs", "xfs_buftarg", "--json"], capsys)
    assert status == 0, err
    data = json.loads(out)
    assert data["bounds"]["together"] is False and data["bounds"]["preemptions"] == 2
    assert [t.split("@")[0] for t in data["tasks"]] == ["mmap-write", "pin"]
    assert data["exhausted"] is True and data["failures"] == []
    # Each accessor's space is run in turn: more schedules than either alone.
    alone = []
    for task in ("mmap-write", "pin"):
        status, out, _ = _run(["--fs", "xfs_buftarg", "--tasks", task, "--json"], capsys)
        alone.append(json.loads(out)["schedules"])
    assert data["schedules"] == sum(alone)
    status, out, _ = _run(["--fs", "xfs_buftarg"], capsys)
    assert "with each accessor in turn" in out and "exhausted" in out
    status, out, _ = _run(["--fs", "xfs_buftarg", "--together", "--json"], capsys)
    together = json.loads(out)
    assert together["bounds"]["together"] is True and together["exhausted"] is True
    assert together["schedules"] > data["schedules"]


def test_the_command_exits_1_on_a_failing_schedule_and_replays_it(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, no_swap_recheck: None
) -> None:
    monkeypatch.delenv("FSAOPS_PLUGINS", raising=False)
    args = ["--fs", "swap", "--tasks", "swapin", "--pages", "1", "--semantics", "2.6.16"]
    status, out, err = _run([*args, "--json"], capsys)
    assert status == 1, err
    data = json.loads(out)
    assert data["status"] == "kernel bug"
    (failure,) = data["failures"]
    assert failure["problems"] and failure["interleaving"]
    assert {"task", "kind", "function", "page", "pfn", "lock", "preempted"} == set(
        failure["interleaving"][0]
    )
    status, out, _ = _run(["--replay", failure["replay"], "--json"], capsys)
    assert status == 1
    again = json.loads(out)
    assert again["replayed"] is True
    assert again["failures"][0]["problems"] == failure["problems"]
    assert again["interleaving"] == failure["interleaving"]


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--fs", "nofs"], "unknown filesystem 'nofs'"),
        (["--fs", "ext2", "--mode", "nomode"], "nomode"),
        # An empty mode ran the default one, where a scenario's mount refuses it.
        (
            ["--fs", "ext2", "--mode", "", "--pages", "1", "--preemptions", "0"],
            "filesystem ext2 has no mode '' (it has: default, nobh, xip)",
        ),
        (["--fs", "ext2", "--tasks", "dance"], "unknown task 'dance'"),
        (["--fs", "ext2", "--tasks", "swapin"], "swapin works on anonymous"),
        (["--fs", "ext2", "--tasks", "kjournald"], "journal"),
        (["--fs", "ext2", "--tasks", "write@9"], "pages 0 to 3"),
        (["--fs", "ext2", "--pages", "0"], "positive integer"),
        (["--fs", "ext2", "--semantics", "2.4"], "unknown semantics"),
        (["--replay", "fsx1.AAAA"], "a replay string of an older fsaops"),
        (["--replay", "fsx2.AAAA"], "--replay"),
        (["--replay", REPLAY_PREFIX, "--fs", "ext2"], "takes no --fs"),
        ([], "needs --fs"),
    ],
)
def test_bad_input_exits_2_with_one_line_and_the_json_envelope(
    args: list[str], words: str, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = _run([*args, "--json"], capsys)
    assert status == 2
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("fsaops: error: ")
    assert words in lines[0]
    data = json.loads(out)
    assert data["status"] == "bad input" and data["schema"] == 1
    assert words in data["error"]


def _interrupted_while_forking(registry: Registry, send: Callable[[], object]) -> None:
    """``send`` a signal from the first fork's after-fork hook: the search must be interrupted.

    The hook runs in the parent right after ``fork()`` (``os.register_at_fork``
    registers it for the life of the process: it is disarmed after).
    """
    import os
    import signal

    from fsaops.errors import _Signals, watch_sigint

    armed = [False]
    counted = (_Signals.watching, _Signals.seen, _Signals.last)

    def signal_while_forking() -> None:
        if armed[0]:
            armed[0] = False
            send()

    os.register_at_fork(after_in_parent=signal_while_forking)
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        watch_sigint()
        armed[0] = True
        with pytest.raises(KeyboardInterrupt):
            explore("ext2", tasks=["read-fault"], pages=1, preemptions=1, registry=registry)
    finally:
        armed[0] = False
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
        _Signals.watching, _Signals.seen, _Signals.last = counted


def test_a_signal_that_comes_while_a_schedule_forks_is_not_lost(registry: Registry) -> None:
    """``SIGTERM`` during ``fork()`` ended as an unraisable exception in an after-fork hook.

    The search then went on and said "exhausted, no schedule fails", exit 0.
    The signal now waits until the fork is done, and interrupts the search.
    """
    import os
    import signal

    _interrupted_while_forking(registry, lambda: os.kill(os.getpid(), signal.SIGTERM))


def test_a_signal_another_thread_takes_while_a_schedule_forks_is_not_lost(
    registry: Registry,
) -> None:
    """A signal is the process's: the system may give it to a thread that does not block it.

    Its handler then still runs in the main thread, at once, maybe inside
    ``fork()``'s after-fork callbacks, whose exceptions are dropped: the
    search went on and passed.  Sent here to another thread while the main
    one forks, it must still interrupt the search.
    """
    import signal
    import threading
    import time

    from fsaops.errors import _Signals

    stop = threading.Event()
    other = threading.Thread(target=stop.wait, daemon=True)
    other.start()
    ident = other.ident
    assert ident is not None

    def to_the_other_thread() -> None:
        seen = _Signals.seen
        signal.pthread_kill(ident, signal.SIGTERM)
        deadline = time.monotonic() + 2.0
        while _Signals.seen == seen and time.monotonic() < deadline:
            pass  # Python code: where the handler comes in

    try:
        _interrupted_while_forking(registry, to_the_other_thread)
    finally:
        stop.set()


def test_a_failure_that_does_not_fail_again_says_so(
    registry: Registry, no_swap_recheck: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The recorded rerun of a failing schedule passes (its first process died of a signal from
    outside, say): the first run's problems stand, marked as not reproduced, never an empty list.
    """
    from fsaops.explore import api

    real = api.fork_run  # type: ignore[attr-defined]

    def passes(*args: object, **kwargs: object) -> Any:
        result = real(*args, **kwargs)  # type: ignore[arg-type]
        return {**result, "problems": [], "outcome": "ok"}

    monkeypatch.setattr(api, "fork_run", passes)
    result = explore("swap", tasks=["swapin"], pages=1, semantics="2.6.16", registry=registry)
    (failure,) = result.failures
    assert failure.problems
    assert all(
        p.endswith("(run again, the schedule passed: it does not reproduce)")
        for _, p in failure.problems
    )
    assert any("task swapin@0 failed" in p for _, p in failure.problems)


def test_every_seed_explore_takes_a_replay_string_can_record(registry: Registry) -> None:
    """A seed past 2**64 was taken, and its replay string then refused as "bad seed"."""
    from fsaops.errors import ConfigError
    from fsaops.explore import MAX_SEED
    from fsaops.explore.api import Bounds

    with pytest.raises(ConfigError, match=f"seed: expected 0 to {MAX_SEED}, got {MAX_SEED + 1}"):
        explore("ext2", pct=1, schedules=1, seed=MAX_SEED + 1, registry=registry)
    result = explore("ext2", pct=1, schedules=1, seed=MAX_SEED, registry=registry)
    assert result.schedules == 1
    setup = Setup("ext2", "default", block_size=1024, semantics="v4", pages=1, tasks=())
    bounds = Bounds(preemptions=None, pct_depth=1, schedules=1, seed=MAX_SEED)
    assert decode_replay(encode_replay(setup, bounds, {}))[1].seed == MAX_SEED


def _unlocks_buffers_before_copy(newpage: Page, page: Page) -> int:
    """``buffer_migrate_page`` with the buffers unlocked before the contents are copied."""
    from fsaops.buffer import buffers, get_bh, lock_buffer, put_bh, set_bh_page, unlock_buffer
    from fsaops.migrate import migrate_page_copy, migrate_page_remove_references

    rc = migrate_page_remove_references(newpage, page, 3)
    if rc:
        return rc if rc < 0 else -EAGAIN
    head = page.private
    ring = list(buffers(head))
    mapping: Any = newpage.mapping
    with mapping.private_lock:  # as V4 does, around the move of the buffers
        for bh in ring:
            get_bh(bh)
            lock_buffer(bh)
        page.flags &= ~PG.private
        newpage.private, page.private = head, 0
        page.count -= 1
        newpage.count += 1
        for bh in ring:
            set_bh_page(bh, newpage, bh.b_data & (page.node.page_size - 1))
        newpage.flags |= PG.private
        for bh in ring:  # too early: a buffer's holder may read it before the copy
            unlock_buffer(bh)
            put_bh(bh)
    migrate_page_copy(newpage, page)
    return 0


@pytest.mark.exhaustive
def test_a_buffer_lock_holder_reads_what_the_buffer_holds(registry: Registry) -> None:
    """Whoever holds a buffer's lock may read its data (why V4 5/6 keeps every buffer locked
    until the copy): a ``migratepage`` that lets them go first hands a reader a new page's
    zeroes, and ``bh-lock`` now looks at what it holds."""
    table = attrs.evolve(
        registry.aops("ext2"), name="early_aops", migratepage=_unlocks_buffers_before_copy
    )
    fstype = attrs.evolve(
        registry.filesystem("ext2"), name="early", modes={"default": table}, page_cache={}
    )
    result = explore(fstype, tasks=[TaskSpec("bh-lock", 0)], pages=1, registry=registry)
    (failure,) = result.failures
    assert any(
        "bh-lock@0: the locked buffer at offset 0 of pfn" in p
        and "holds bytes that are no version of that block" in p
        for _, p in failure.problems
    ), failure.problems
    correct = explore("ext2", tasks=[TaskSpec("bh-lock", 0)], pages=1, registry=registry)
    assert correct.exhausted and not correct.failures


def test_a_thread_the_caller_starts_after_loading_is_not_taken_for_a_plugins(
    registry: Registry,
) -> None:
    """A test runner's per-test thread (pytest-timeout's) holds none of a schedule's locks."""
    import threading

    stop = threading.Event()
    watchdog = threading.Thread(target=stop.wait, name="runner-watchdog", daemon=True)
    watchdog.start()
    try:
        result = explore("ext2", tasks=[TaskSpec("write", 0)], preemptions=0, registry=registry)
    finally:
        stop.set()
        watchdog.join()
    assert result.exhausted and not result.failures


def test_one_page_says_which_accessors_ran_on_a_clean_page_only(registry: Registry) -> None:
    """Before, ``pages=1`` dropped each accessor's run on a dirty page and said nothing: the
    space was "exhausted", and a race only a dirty page shows was never searched."""
    one = explore("ext2", registry=registry, pages=1, preemptions=0)
    assert "bh-lock" in one.clean_only and "write" in one.clean_only, one.clean_only
    assert one.to_json()["clean_only"] == list(one.clean_only)
    assert "on a clean page only (one page): " in render_text(one)
    two = explore("ext2", registry=registry, pages=2, preemptions=0)
    assert two.clean_only == ()
    assert "clean page only" not in render_text(two)
