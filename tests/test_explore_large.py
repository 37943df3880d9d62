"""A search far larger than any built-in table's says so, and one cut short is not ``ok``.

A ``migratepage`` that writes a dirty page out itself and waits for it (as
the generic path's ``pageout`` does) is right, but each buffer write it
submits is a task of its own whose completion the search interleaves with
every other task: the default search of such a table does not end for
hours.  Before, ``fsaops explore`` said nothing while it ran, and a search
stopped by ``--schedules`` said "no schedule fails", status ``ok``, exit 0.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import attrs
import pytest

from fsaops.aops import FileSystemType
from fsaops.cli import main
from fsaops.explore import TaskSpec, explore
from fsaops.explore import search as explore_search
from fsaops.explore.api import render_text
from fsaops.mapping import AddressSpace
from fsaops.page import PG, Page, lock_page, wait_on_page_writeback
from fsaops.plugins import Registry, load_plugins
from fsaops.status import Status
from fsaops.writeback import WritebackControl, clear_page_dirty_for_io


@pytest.fixture(scope="module")
def registry() -> Iterator[Registry]:
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("FSAOPS_PLUGINS", raising=False)
        yield load_plugins()


def _writes_itself(registry: Registry) -> FileSystemType:
    """ext2 whose ``migratepage`` writes a dirty page out, waits for the write, then moves it."""
    ext2 = registry.filesystems["ext2"]
    a_ops = ext2.modes["default"]
    migratepage = a_ops.migratepage
    assert migratepage is not None

    def writes_then_moves(newpage: Page, page: Page, /) -> int:
        mapping = page.mapping
        if isinstance(mapping, AddressSpace) and page.flags & PG.dirty:
            writepage = mapping.a_ops.writepage
            if writepage is not None and clear_page_dirty_for_io(page):
                writepage(page, WritebackControl(sync_mode="none", for_reclaim=False))
                lock_page(page)
                wait_on_page_writeback(page)
        return migratepage(newpage, page)

    table = attrs.evolve(a_ops, name="writer_aops", migratepage=writes_then_moves)
    return attrs.evolve(ext2, name="writer", modes={"default": table}, page_cache={})


def test_a_table_that_writes_its_pages_out_is_said_to_make_the_search_large(
    registry: Registry,
) -> None:
    said: list[str] = []
    result = explore(
        _writes_itself(registry),
        tasks=[TaskSpec("read-fault", 1)],
        schedules=1_200,
        notice=said.append,
        registry=registry,
    )
    assert len(said) == 1, said
    (notice,) = said
    assert "the search against read-fault@1 is large" in notice
    # Pages 1 and 3 are dirty: four buffers each, written by the migration.
    assert "8 of them the completions of I/O the migration submitted itself" in notice
    assert "fewer preemptions (--preemptions 1), fewer pages (--pages 2)" in notice
    assert "--schedules N" in notice
    assert not result.exhausted and not result.failures
    assert result.cut_short and result.status is Status.OK and result.exit_status == 0
    text = render_text(result)
    assert "no schedule fails" not in text
    assert "NOT EXHAUSTED: none of the 1200 schedules run fails" in text
    assert result.to_json()["exhausted"] is False


def test_a_built_in_table_is_never_said_to_be_large(registry: Registry) -> None:
    said: list[str] = []
    result = explore(
        "ext2", tasks=[TaskSpec("read-fault", 1)], notice=said.append, registry=registry
    )
    assert result.exhausted and said == []
    assert result.status is Status.OK and result.exit_status == 0
    assert render_text(result).endswith("no schedule fails\n")


def test_the_command_says_it_on_stderr_and_a_cut_short_search_says_so(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FSAOPS_PLUGINS", raising=False)
    monkeypatch.setattr(explore_search, "LARGE_SPACE", 10)
    args = ["--fs", "ext2", "--tasks", "read-fault@1", "--pages", "2", "--preemptions", "1"]
    status = main(["explore", *args, "--schedules", "15", "--json"])
    out, err = capsys.readouterr()
    assert status == 0
    data = json.loads(out)
    assert data["status"] == "ok" and data["exhausted"] is False
    assert err.count("\n") == 1 and err.startswith("fsaops explore: the search against ")
    assert "is large" in err and "--schedules N" in err
    # A search that ends is ok, and says nothing more.
    monkeypatch.setattr(explore_search, "LARGE_SPACE", 10**9)
    status = main(["explore", *args])
    out, err = capsys.readouterr()
    assert status == 0 and err == ""
    assert out.endswith("no schedule fails\n")


def test_pct_and_a_replay_are_still_ok_when_nothing_fails(registry: Registry) -> None:
    """PCT runs the schedules it was asked for and never exhausts a space: not cut short."""
    pct = explore("ext2", tasks=["read-fault"], pages=1, pct=2, schedules=2, registry=registry)
    assert not pct.exhausted and not pct.cut_short
    assert pct.status is Status.OK and pct.exit_status == 0
