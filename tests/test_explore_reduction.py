"""What "exhausted" claims under the systematic search's reduction, and ``--reduce none``.

The reduction takes steps on different pages to commute: a step's pages
come from its lock or page, so state a table keeps across pages is in no
step's pages.  ``bounce`` below is ext2's table with a bounce buffer every
page shares (as a per-CPU buffer): ``migratepage`` copies the old page into
it, takes ``private_lock`` (a scheduling point), and copies it into the new
page; ``writepage`` runs the page it writes through the same buffer.  Page
0's writeback between the two copies of page 1 gives page 1 page 0's data.
Under the reduction that schedule is never run, and "exhausted" said "no
schedule with at most K preemptions fails"; the claim is now the
reduction's, and ``--reduce none`` runs every schedule, which finds it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import attrs
import pytest

import bounce
from fsaops.aops import FileSystemType
from fsaops.cli import main
from fsaops.explore import REPLAY_PREFIX, TaskSpec, explore
from fsaops.explore.api import render_text
from fsaops.plugins import Registry, load_plugins
from fsaops.status import Status

RACE: dict[str, Any] = {"tasks": [TaskSpec("writeback", 0)], "pages": 2, "preemptions": 1}
"""The case: page 0's writeback against the migration of two pages, k = 1."""


def bounce_filesystem(registry: Registry) -> FileSystemType:
    """ext2 whose ``migratepage`` and ``writepage`` share one bounce buffer."""
    return bounce.bounce_filesystem(registry, writepage=True)


@pytest.fixture(scope="module")
def registry() -> Iterator[Registry]:
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("FSAOPS_PLUGINS", raising=False)
        yield load_plugins()


@pytest.fixture
def with_bounce(registry: Registry, monkeypatch: pytest.MonkeyPatch) -> Registry:
    """The command's plugins, with ``bounce`` among their filesystems."""
    import fsaops.cli

    real = fsaops.cli._load
    fstype = bounce_filesystem(registry)

    def load(*args: Any, **kwargs: Any) -> Registry:
        loaded = real(*args, **kwargs)
        return attrs.evolve(loaded, filesystems={**loaded.filesystems, "bounce": fstype})

    monkeypatch.setattr(fsaops.cli, "_load", load)
    monkeypatch.delenv("FSAOPS_PLUGINS", raising=False)
    return registry


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    status = main(["explore", *args])
    out, err = capsys.readouterr()
    return status, out, err


def test_exhausted_under_the_page_reduction_says_what_it_covers(registry: Registry) -> None:
    """It said "the bounded space is exhausted" and "no schedule fails" as if every
    schedule with at most one preemption had run; the reduction never ran the one that fails."""
    result = explore(bounce_filesystem(registry), registry=registry, **RACE)
    assert result.exhausted and not result.failures
    assert result.reduction == "pages"
    assert result.to_json()["reduction"] == "pages"
    text = render_text(result)
    assert (
        "the bounded space is exhausted (steps on different pages taken to commute; state a "
        "table keeps across pages is not covered: --reduce none or --pct)\n"
    ) in text
    assert "bounds: every schedule with at most 1 preemptions\n" in text


def test_reduce_none_finds_the_race_through_state_shared_across_pages(
    with_bounce: Registry, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--fs", "bounce", "--tasks", "writeback@0", "--pages", "2", "--preemptions", "1"]
    status, out, err = _run([*args, "--reduce", "none", "--json"], capsys)
    assert status == 1, err
    data = json.loads(out)
    assert data["status"] == Status.DATA_LOST.value
    assert data["reduction"] == "none" and data["exhausted"] is False
    (failure,) = data["failures"]
    assert failure["preemptions"] == 1
    assert any(
        "holds the data of bounce0/page0/page0" in p["problem"] for p in failure["problems"]
    ), failure["problems"]
    # The replay string runs that schedule again, whatever the reduction it was found under.
    status, out, _ = _run(["--replay", failure["replay"], "--json"], capsys)
    assert status == 1
    again = json.loads(out)
    assert again["failures"][0]["problems"] == failure["problems"]
    assert again["reduction"] is None and again["runs"] == []


def test_reduce_none_runs_every_schedule_and_says_so(
    registry: Registry, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FSAOPS_PLUGINS", raising=False)
    args = ["--fs", "ext2", "--tasks", "read-fault@0", "--pages", "2", "--preemptions", "1"]
    status, out, err = _run([*args, "--reduce", "none"], capsys)
    assert status == 0, err
    assert "bounds: every schedule with at most 1 preemptions, no reduction\n" in out
    assert (
        "the bounded space is exhausted (no reduction: every schedule within the bound ran)\n"
        in out
    )
    status, out, _ = _run([*args, "--reduce", "none", "--json"], capsys)
    data = json.loads(out)
    full = explore(
        "ext2", registry=registry, reduce=False, **{**RACE, "tasks": [TaskSpec("read-fault", 0)]}
    )
    assert data["schedules"] == full.schedules and data["exhausted"] is True
    assert data["reduction"] == "none"
    status, out, _ = _run([*args, "--reduce", "pages", "--json"], capsys)
    reduced = json.loads(out)
    assert reduced["reduction"] == "pages" and reduced["schedules"] < data["schedules"]


def test_pct_reduces_nothing(registry: Registry) -> None:
    result = explore("ext2", tasks=["read-fault"], pages=1, pct=2, schedules=2, registry=registry)
    assert result.reduction is None and result.to_json()["reduction"] is None


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--fs", "ext2", "--reduce", "nothing"], "expected one of pages, none, got 'nothing'"),
        (["--fs", "ext2", "--reduce", ""], "expected one of pages, none, got ''"),
        (["--fs", "ext2", "--pct", "2", "--reduce", "none"], "PCT (--pct) reduces nothing"),
        (["--replay", REPLAY_PREFIX, "--reduce", "none"], "takes no --reduce"),
    ],
)
def test_a_bad_reduce_is_bad_input(
    args: list[str], words: str, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = _run([*args, "--json"], capsys)
    assert status == 2
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("fsaops: error: ")
    assert words in lines[0]
    data = json.loads(out)
    assert data["status"] == "bad input" and words in data["error"]


def test_the_help_names_the_reduction(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explore", "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "--reduce pages|none" in out
    assert "none runs every schedule within the bound" in out
