"""``fsaops migrate --trace PAGE``: one page's journey, held against the engine's own events.

Every attempt the trace tells is an ``mm_migrate_page`` event of that page
in the JSON event stream, in order, with the same call, pass, path, return
code and reason; what it adds (who held the page, how long the engine slept
on its lock and who held that, where the page ended) is checked against
the report and against the machine itself.
"""

from __future__ import annotations

import importlib.metadata
import io
import json
import logging
from collections.abc import Mapping
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

import pytest
import structlog

from fsaops.cli import main
from fsaops.config import BUILTIN_SOURCE, default_config, parse_config
from fsaops.frames import FrameMaps
from fsaops.migrate import MigrateStats, untold_why
from fsaops.plugins import Registry, load_plugins
from fsaops.proofs import Placed
from fsaops.scenario import Scenario, plan_scenario, run_plan
from fsaops.testing.dist import write_dist_info
from fsaops.trace import PageRef, PageTrace, parse_page

XIP_SCENARIO = """\
[kernel]
node_memory = "1MiB"

[[mount]]
fs = "ext2"
pages = 8

[[mount]]
fs = "ext2"
mode = "xip"
pages = 2

[processes]
count = 1
anon_pages = 4

[workload]
pinned = 0.2
"""


def _migrate(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        status = main(["migrate", *args])
    return status, out.getvalue(), err.getvalue()


def _traced(*args: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The report with its trace, and the engine's events, of one run."""
    status, out, err = _migrate(*args, "--json", "--log-level", "debug", "--log-format", "json")
    assert status == 0, err[-2000:]
    events = [json.loads(line) for line in err.splitlines()]
    return json.loads(out), events


@pytest.fixture(scope="module")
def builtin() -> dict[str, Any]:
    status, out, err = _migrate("--json")
    assert status == 0, err
    report: dict[str, Any] = json.loads(out)
    return report


def _tries(trace: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [
        (s["call"], s["pass"], s["path"], s["rc"], s["why"]) for s in trace if s["step"] == "try"
    ]


def _events_of(events: list[dict[str, Any]], pfn: int) -> list[tuple[Any, ...]]:
    # An event whose table said nothing carries the report's reason (untold_why); the
    # trace's try step shows the path and errno instead, and leaves its why empty.
    return [
        (
            e["call"],
            e["pass_"],
            e["path"],
            e["rc"],
            "" if e["rc"] and e["why"] == untold_why(e["path"], e["rc"]) else e["why"],
        )
        for e in events
        if e["event"] == "mm_migrate_page" and e["pfn"] == pfn
    ]


# -- naming a page --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "ref"),
    [
        ("56", PageRef("56", pfn=56)),
        ("mount0/file1:3", PageRef("mount0/file1:3", file="mount0/file1", index=3)),
        ("mount7/meta:0", PageRef("mount7/meta:0", file="mount7/meta", index=0)),
        ("5:0x10000", PageRef("5:0x10000", pid=5, address=0x10000)),
        ("5:0XfF000", PageRef("5:0XfF000", pid=5, address=0xFF000)),
        # As the proofs' and the invariants' problem lines name pages.
        ("mount0/file1/page3", PageRef("mount0/file1/page3", file="mount0/file1", index=3)),
        ("mount7/meta/page0", PageRef("mount7/meta/page0", file="mount7/meta", index=0)),
        ("process0/anon12", PageRef("process0/anon12", area="process0", index=12)),
    ],
)
def test_a_page_is_named_as_the_report_names_it(text: str, ref: PageRef) -> None:
    assert parse_page(text) == ref


@pytest.mark.parametrize(
    "text",
    # Digits of other scripts: "²" is no number to int(), "٣" (3) is, but --seed refuses both.
    [
        *("", "x", "-3", "mount0/file1", "mount0/file1:-1", "5:0xzz", ":3", "9" * 5000),
        *(" 56", "56 ", "5:0x10000 ", "5:0x"),
        *("mount0/file1/page", "mount0/file1/page-1", "process0/anon", "a/b/c/page1"),
        *("²", "٣", "mount0/file1:٣", "٣:0x10"),
    ],
)
def test_anything_else_is_refused_saying_what_is_expected(text: str) -> None:
    with pytest.raises(ValueError, match="a pfn"):
        parse_page(text)
    status, out, err = _migrate("--trace", text, "--json")
    assert status == 2
    assert err.startswith("fsaops: error: argument --trace: expected a pfn")
    assert len(err.splitlines()) == 1
    assert json.loads(out)["status"] == "bad input"


# -- the journey, against the events ------------------------------------------------------------


def test_a_pinned_page_is_left_after_every_try_and_its_pinner_is_named(
    builtin: dict[str, Any],
) -> None:
    pinned = next(p for p in builtin["pages_left"] if "extra reference" in p["reason"])
    name = f"{pinned['file']}:{pinned['index']}" if "file" in pinned else None
    if name is None:
        name = f"{pinned['pid']}:{pinned['address']:#x}"
    report, events = _traced("--trace", name)
    trace = report["trace"]
    start, end = trace[0], trace[-1]
    assert start["step"] == "start" and end["step"] == "end"
    assert start["pfn"] == pinned["pfn"] and start["state"] == "pinned"
    pinner = {"task": "pinner", "hold": "page_ref", "until": None}
    assert any(pinner.items() <= h.items() for h in start["held_by"])
    assert _tries(trace) == _events_of(events, pinned["pfn"])
    assert len(_tries(trace)) > 1
    for step in trace[1:-1]:
        assert step["errno"] == "EAGAIN"
        assert any(pinner.items() <= h.items() for h in step["held_by"])
    assert end["outcome"] == "left"
    assert (end["errno"], end["why"], end["pass"]) == (
        pinned["errno"],
        pinned["reason"],
        pinned["pass"],
    )


def test_a_page_that_moved_ends_on_the_target_node_by_the_path_of_its_last_try(
    builtin: dict[str, Any],
) -> None:
    stayed = {p["pfn"] for p in builtin["pages_left"] + builtin["pages_failed"]}
    report, events = _traced("--trace", "mount5/file0:3")
    trace = report["trace"]
    start, end = trace[0], trace[-1]
    assert start["pfn"] not in stayed
    assert start["page"] == "mount5/file0:3" and start["table"] == "ext3_journalled_aops"
    tries = _tries(trace)
    assert tries == _events_of(events, start["pfn"])
    assert tries[-1][3] == 0
    assert end["outcome"] == "moved"
    via = {"migrate_page": "migrate_page", "migratepage": "migratepage"}[tries[-1][2]]
    if any(t[2] == "pageout_success" for t in tries):
        via = "writeback"
    assert end["via"] == via
    kernel = report["config"]["kernel"]
    frames = kernel["node_memory"] // kernel["page_size"]
    assert end["node"] == report["migrate"]["to_node"] == 1
    assert frames <= end["pfn"] < 2 * frames
    assert end["page"] == "mount5/file0:3"


def test_the_last_event_of_a_page_left_or_failed_carries_the_report_s_reason(
    builtin: dict[str, Any],
) -> None:
    """An attempt whose table said nothing is told in its event as the report tells the page.

    The event's reason is then :func:`~fsaops.migrate.untold_why` of its path
    and return code, as the report's is; not the empty reason the attempt
    itself left.
    """
    _, events = _traced()
    last: dict[int, dict[str, Any]] = {}
    for e in events:
        if e["event"] == "mm_migrate_page":
            last[e["pfn"]] = e
    stayed = builtin["pages_left"] + builtin["pages_failed"]
    assert stayed
    told = [(last[p["pfn"]]["why"], last[p["pfn"]]["rc"] == 0) for p in stayed]
    assert told == [(p["reason"], False) for p in stayed]
    untold = [e for e in last.values() if e["rc"] and e["why"] == untold_why(e["path"], e["rc"])]
    assert untold, "the built-in scenario has no page whose table said nothing"


def test_a_locked_page_is_skipped_three_times_then_waited_for(
    builtin: dict[str, Any],
) -> None:
    """From 2.6.16 a call gets 257 new pages: pass 3 sleeps on the lock its locker holds."""
    _, events = _traced("--semantics", "2.6.16")
    first = [e for e in events if e["event"] == "mm_migrate_page" and e["call"] == 1]
    skipped = {e["pfn"] for e in first if e["pass_"] == 2 and e["path"] == "locked"}
    pfn = next(e["pfn"] for e in first if e["pass_"] == 3 and e["pfn"] in skipped)
    report, events = _traced("--semantics", "2.6.16", "--trace", str(pfn))
    trace = report["trace"]
    assert trace[0]["state"] == "locked"
    locker = next(h for h in trace[0]["held_by"] if h["hold"] == "page_lock")
    assert locker["task"] == "locker"
    assert _tries(trace) == _events_of(events, pfn)
    steps = [(s["step"], s.get("pass"), s.get("path")) for s in trace[1:4]]
    assert steps == [("try", 0, "locked"), ("try", 1, "locked"), ("try", 2, "locked")]
    assert {s["why"] for s in trace[1:4]} == {"page locked by another task"}
    wait = trace[4]
    assert wait["step"] == "wait" and wait["what"] == "page lock"
    assert (wait["call"], wait["pass"]) == (1, 3)
    assert wait["held_by"] == [locker]
    assert wait["tick"] == locker["until"], "the engine woke when the locker let go"
    assert wait["ticks"] > 0
    after = trace[5]
    assert after["step"] == "try" and after["pass"] == 3 and after["tick"] >= wait["tick"]


def test_the_terminal_tells_the_journey_and_folds_repeated_tries(
    builtin: dict[str, Any],
) -> None:
    mlocked = next(p for p in builtin["pages_left"] if "VM_LOCKED" in p["reason"])
    status, out, err = _migrate("--trace", str(mlocked["pfn"]), "--no-progress")
    assert status == 0, err
    journey = " ".join(out[out.index(f"The journey of {mlocked['pfn']}") :].split())
    assert "VM_LOCKED" in journey
    assert "tries)" in journey, "repeated tries are told once, with their number"
    assert "left (EAGAIN" in journey
    assert "mapped by process" in journey


# -- against the machine -------------------------------------------------------------------------


class _Where:
    """A test's own look at the machine when migration is over: where a page is now."""

    def __init__(self, key: str, index: int) -> None:
        self.key, self.index = key, index
        self.pfn: int | None = None

    def built(self, scenario: Scenario) -> None:
        pass

    def migrated(
        self, scenario: Scenario, stats: MigrateStats, places: Mapping[int, Placed]
    ) -> None:
        record = next(f for f in scenario.files if f.key == self.key)
        page = scenario.world.page_of(record, self.index)
        self.pfn = None if page is None else page.pfn


def _logger(trace: PageTrace) -> Any:
    """A logger at debug level whose events go through the trace, then nowhere."""

    def drop(_logger: Any, _method: str, event: Any) -> Any:
        raise structlog.DropEvent

    return structlog.wrap_logger(
        structlog.ReturnLogger(),
        processors=[trace.processor, drop],
        wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG),
    )


def test_the_new_frame_is_the_one_the_page_cache_points_at(registry: Registry) -> None:
    plan = plan_scenario(default_config(), registry)
    trace = PageTrace(parse_page("mount0/file1:7"))
    where = _Where("mount0/file1", 7)
    log = _logger(trace)
    run_plan(plan, log=log, observers=[trace, where])
    end = trace.steps[-1]
    assert end.outcome == "moved"
    assert where.pfn is not None and end.pfn == where.pfn


# -- pages that cannot be traced -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("page", "words"),
    [
        ("mount9/file0:0", ["no file mount9/file0", "mount0/file0"]),
        ("mount0/file0:99", ["mount0/file0 has 8 page(s)", "0 to 7"]),
        ("mount1/file0:0", ["execute-in-place"]),
        ("999999", ["no such frame", "pfns 0 to 511"]),
        ("300", ["pfn 300 is on node 1", "node 0"]),
        ("200", ["a free frame", "node 0 has pfns 0 to 255"]),
        ("99:0x1000", ["no process 99"]),
        ("2:0x1", ["process 2 has no page of anonymous memory at 0x1"]),
    ],
)
def test_a_page_migration_does_not_take_on_is_bad_input(
    page: str, words: list[str], tmp_path: Path
) -> None:
    scenario = tmp_path / "xip.toml"
    scenario.write_text(XIP_SCENARIO, encoding="utf-8")
    status, out, err = _migrate(str(scenario), "--trace", page, "--json")
    assert status == 2
    assert len(err.splitlines()) == 1 and err.startswith("fsaops: error: --trace ")
    for word in words:
        assert word in err
    data = json.loads(out)
    assert data["status"] == "bad input" and "trace" not in data


def test_an_address_of_the_json_report_written_in_decimal_is_told_in_hex(
    builtin: dict[str, Any],
) -> None:
    """The report's ``address`` is a JSON number; ``--trace`` reads addresses in hex, with ``0x``.
    Before, the message said only that there is no page at ``0x<the decimal digits>``."""
    anonymous = next(p for p in builtin["pages_left"] if "pid" in p)
    pid, address = anonymous["pid"], anonymous["address"]
    status, out, err = _migrate("--trace", f"{pid}:{address}", "--json")
    assert status == 2
    assert len(err.splitlines()) == 1
    assert (
        f"{pid}:{address:#x} if it is decimal (as the JSON report's address is), "
        f"not {pid}:{address} (see fsaops migrate --help)"
    ) in err
    assert json.loads(out)["status"] == "bad input"
    status, _out, err = _migrate("--trace", f"{pid}:{address:#x}", "--json")
    assert status == 0, err


def test_an_address_without_0x_names_no_page_even_where_both_readings_are_pages() -> None:
    """``5:65536``, 0x10000 in decimal as the JSON report gives it, is also 0x65536 in hex, another
    page of the built-in scenario's 256-page process.  Before, it was read in hex: the run traced
    that other page, and exited 0."""
    for address in ("0x10000", "0x65536"):
        status, out, err = _migrate("--trace", f"5:{address}", "--json")
        assert status == 0, err
        assert json.loads(out)["trace"][0]["page"] == f"pid 5 at {address}"
    for written, words in (
        ("65536", ["5:0x65536 if 65536 is hex", "5:0x10000 if it is decimal"]),
        ("65a36", ["5:0x65a36, not 5:65a36"]),
        ("1" * 30, ["(5:0x10000), got 5:11111111111111111111... (30 digits)"]),
    ):
        status, out, err = _migrate("--trace", f"5:{written}", "--json")
        assert status == 2, err
        assert len(err.splitlines()) == 1
        assert err.startswith(
            "fsaops: error: argument --trace: PID:ADDRESS takes the address in hex with 0x"
        )
        for word in words:
            assert word in err
        assert json.loads(out)["status"] == "bad input"


def test_the_three_names_of_a_page_trace_the_same_page(builtin: dict[str, Any]) -> None:
    """A pfn, a file page and a process page, as the report names them, find the page it names."""
    file_page = next(p for p in builtin["pages_left"] if "file" in p)
    anonymous = next(p for p in builtin["pages_left"] if "pid" in p)
    for page, names in (
        (file_page, [str(file_page["pfn"]), f"{file_page['file']}:{file_page['index']}"]),
        (
            anonymous,
            [
                str(anonymous["pfn"]),
                f"{anonymous['pid']}:{anonymous['address']:#x}",
                f"{anonymous['pid']}:{anonymous['address'] + 7:#x}",  # any byte of the page
            ],
        ),
    ):
        for name in names:
            status, out, err = _migrate("--trace", name, "--json")
            assert status == 0, err
            start = json.loads(out)["trace"][0]
            assert start["pfn"] == page["pfn"], name
            assert start["table"] == page["table"]


def test_a_page_named_as_problem_lines_name_it_traces_the_same_page(
    builtin: dict[str, Any], registry: Registry
) -> None:
    """``mount0/file1/page3`` and ``process0/anon12``, copied from a problem line, are the pages."""
    plan = plan_scenario(default_config(), registry, BUILTIN_SOURCE)
    world = Scenario(plan.config, registry, seed=builtin["seed"])
    file_page = next(p for p in builtin["pages_left"] if "file" in p)
    anonymous = next(p for p in builtin["pages_left"] if "pid" in p)
    vpn = anonymous["address"] // world.page_size
    area = next(
        a
        for a in world.areas
        if a.mm.pid == anonymous["pid"] and a.start <= vpn < a.start + a.npages
    )
    for page, name in (
        (file_page, f"{file_page['file']}/page{file_page['index']}"),
        (anonymous, area.page_key(vpn - area.start)),
    ):
        status, out, err = _migrate("--trace", name, "--json")
        assert status == 0, err
        start = json.loads(out)["trace"][0]
        assert start["pfn"] == page["pfn"], name
    key = world.areas[0].key
    status, _out, err = _migrate("--trace", f"{key}/anon99999", "--json")
    assert status == 2 and f"{key} has no page anon99999" in err
    status, _out, err = _migrate("--trace", "process99/anon0", "--json")
    assert status == 2 and "no process process99" in err


# -- a page the scenario gave no state -------------------------------------------------------

RAMFS_SCENARIO = """\
[kernel]
node_memory = "1MiB"

[plugins]
load = ["ramfs"]

[[mount]]
fs = "ramfs"
files = 1
pages = 8

[swap]
slots = 0

[processes]
anon_pages = 0
"""

EXAMPLE = Path(__file__).parent.parent / "docs" / "examples" / "fsaops-example-plugin" / "src"


def test_a_page_given_no_state_is_named_by_its_flags(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A ramfs page is dirty (nothing writes it back): the journey and the frame map say so."""
    monkeypatch.delenv("FSAOPS_PLUGINS", raising=False)
    if not importlib.metadata.entry_points(group="fsaops", name="ramfs"):
        write_dist_info(tmp_path, "fsaops-ramfs", {"fsaops": {"ramfs": "fsaops_ramfs"}})
        monkeypatch.syspath_prepend(str(tmp_path))
        monkeypatch.syspath_prepend(str(EXAMPLE))
    scenario = tmp_path / "ramfs.toml"
    scenario.write_text(RAMFS_SCENARIO, encoding="utf-8")
    html = tmp_path / "ramfs.html"
    report, _ = _traced(str(scenario), "--trace", "mount0/file0:0", "--html", str(html))
    assert report["workload"].get("dirty", 0) == 0, "the scenario gave no page a state"
    start = report["trace"][0]
    assert "dirty" in start["flags"].split("|")
    assert start["state"] == "dirty"
    page = html.read_text(encoding="utf-8")
    assert "workload state dirty" in page and "workload state clean" not in page
    maps = FrameMaps()
    plan = plan_scenario(parse_config(RAMFS_SCENARIO, str(scenario)), load_plugins(cli="ramfs"))
    run_plan(plan, observers=[maps])
    before = next(m for m in maps.maps if m.when == "before" and m.role == "source")
    assert before.counts == {("ramfs_aops", "dirty"): 8, ("", "free"): before.frames - 8}
