"""A migratepage that moves buffers without taking their locks: the explorer and the kit fail it.

The buffer lock is what keeps a buffer from moving under I/O in flight: a
task that holds it (``bh-lock``) submits its I/O with the frame the buffer
is in, and the DMA uses that frame until the I/O ends.  A table that moves
the buffer meanwhile hands the old frame back to the allocator while the
I/O still uses it.  The final state hides it (the move redirties the new
page's buffers, so the next writeback puts the right bytes on the disk), so
the ``bh-lock`` task checks, when its I/O ends, that its buffer is where it
was when the I/O began.
"""

from __future__ import annotations

import textwrap
from errno import EAGAIN

import attrs
import pytest

from fsaops import FileSystemType, buffer_migrate_page
from fsaops.aops import MigratePage
from fsaops.buffer import BufferHead, buffers
from fsaops.explore import explore
from fsaops.explore.api import render_text
from fsaops.explore.setup import TaskSpec
from fsaops.page import PG, Page
from fsaops.plugins import Registry, load_plugins
from suite_runs import call_reports, inline_reports

pytest_plugins = ["pytester"]

MOVED = "the table moved a locked buffer; migratepage must lock_buffer each buffer"


def buffer_migrate_page_without_locks(newpage: Page, page: Page) -> int:
    """``buffer_migrate_page`` with no ``lock_buffer``/``unlock_buffer`` (the references kept)."""
    mapping = page.mapping
    if mapping is None:
        return -EAGAIN
    helpers = mapping.kernel.semantics  # type: ignore[union-attr]
    if not page.flags & PG.private:
        return helpers.migrate_page(newpage, page)
    rc: int = helpers.migrate_page_remove_references(newpage, page, 3)
    if rc:
        return rc if rc < 0 else -EAGAIN
    ring: list[BufferHead] = list(buffers(page.private))
    for bh in ring:
        bh.b_count += 1
    newpage.private = page.private
    page.private = 0
    page.flags &= ~PG.private
    page.count -= 1
    newpage.count += 1
    base = newpage.pfn << newpage.node.page_shift
    mask = newpage.node.page_size - 1
    for bh in ring:
        bh.b_page = newpage
        bh.b_data = base + (bh.b_data & mask)
    newpage.flags |= PG.private
    helpers.migrate_page_copy(newpage, page)
    for bh in ring:
        bh.b_count -= 1
    return 0


@pytest.fixture(scope="module")
def registry() -> Registry:
    """The plugins this repository ships."""
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("FSAOPS_PLUGINS", raising=False)
        return load_plugins()


def _table(registry: Registry, fs: str, mode: str, migratepage: MigratePage) -> FileSystemType:
    """``fs`` with ``migratepage`` in the table of ``mode``, under a name of its own."""
    fstype = registry.filesystem(fs)
    name = getattr(migratepage, "__name__", "migratepage")
    modes = {
        mode: attrs.evolve(fstype.aops(mode), name=f"{fs}_{name}_aops", migratepage=migratepage)
    }
    return attrs.evolve(fstype, name=f"{fs}_{name}", modes=modes)


CASES = [("ext3", "ordered"), ("xfs", "default")]


@pytest.mark.parametrize(("fs", "mode"), CASES)
def test_the_explorer_fails_a_table_that_moves_locked_buffers(
    fs: str, mode: str, registry: Registry
) -> None:
    fstype = _table(registry, fs, mode, buffer_migrate_page_without_locks)
    result = explore(fstype, mode, tasks=["bh-lock"], block_size=1024, registry=registry)
    assert result.failures, f"no schedule fails in {result.schedules}"
    (failure,) = result.failures
    (problem,) = [p for _, p in failure.problems]
    assert "task bh-lock@" in problem and "while this task held its lock for the" in problem
    assert MOVED in problem, problem
    assert "which the migration frees" in problem
    text = render_text(result)
    assert "FAILED" in text and failure.replay in text


@pytest.mark.parametrize(("fs", "mode"), CASES)
def test_a_dirty_buffer_fails_too(fs: str, mode: str, registry: Registry) -> None:
    """A dirty buffer: the write's DMA reads the old frame after the migration frees it."""
    fstype = _table(registry, fs, mode, buffer_migrate_page_without_locks)
    result = explore(
        fstype, mode, tasks=[TaskSpec("bh-lock", 1)], block_size=1024, registry=registry
    )
    (failure,) = result.failures
    assert any("for the write of block" in p and MOVED in p for _, p in failure.problems)


@pytest.mark.exhaustive
@pytest.mark.parametrize(("fs", "mode"), CASES)
def test_buffer_migrate_page_passes_the_same_schedules(
    fs: str, mode: str, registry: Registry
) -> None:
    fstype = _table(registry, fs, mode, buffer_migrate_page)
    result = explore(fstype, mode, tasks=["bh-lock"], block_size=1024, registry=registry)
    assert result.exhausted and not result.failures, render_text(result)


@pytest.mark.exhaustive
def test_ext3_itself_explores_clean(registry: Registry) -> None:
    """ext3's own table takes the buffer locks: its bh-lock space is exhausted, and clean."""
    result = explore("ext3", "ordered", tasks=["bh-lock"], block_size=1024, registry=registry)
    assert result.exhausted and not result.failures


RACE_PROMISE = textwrap.dedent(
    """
    from errno import EAGAIN

    import attrs

    from fsaops import buffer_migrate_page
    from fsaops.buffer import buffers
    from fsaops.page import PG
    from fsaops.plugins import load_plugins
    from fsaops.testing.races import MigratepageRaces

    def nolock(newpage, page):
        mapping = page.mapping
        if mapping is None:
            return -EAGAIN
        helpers = mapping.kernel.semantics
        if not page.flags & PG.private:
            return helpers.migrate_page(newpage, page)
        rc = helpers.migrate_page_remove_references(newpage, page, 3)
        if rc:
            return rc if rc < 0 else -EAGAIN
        ring = list(buffers(page.private))
        for bh in ring:
            bh.b_count += 1
        newpage.private, page.private = page.private, 0
        page.flags &= ~PG.private
        page.count -= 1
        newpage.count += 1
        base = newpage.pfn << newpage.node.page_shift
        for bh in ring:
            bh.b_page = newpage
            bh.b_data = base + (bh.b_data & (newpage.node.page_size - 1))
        newpage.flags |= PG.private
        helpers.migrate_page_copy(newpage, page)
        for bh in ring:
            bh.b_count -= 1
        return 0

    EXT3 = load_plugins().filesystem("ext3")

    def table(name, migratepage):
        aops = attrs.evolve(EXT3.aops("ordered"), name=name + "_aops", migratepage=migratepage)
        return attrs.evolve(EXT3, name=name, modes={"ordered": aops})

    class TestNoLock(MigratepageRaces):
        filesystem = table("ext3_nolock", nolock)
        mode = "ordered"
        block_size = 1024
        preemptions = 0
        pct_schedules = 0

    class TestLocked(MigratepageRaces):
        filesystem = table("ext3_locked", buffer_migrate_page)
        mode = "ordered"
        block_size = 1024
        preemptions = 0
        pct_schedules = 0
    """
)


def test_the_race_promise_fails_a_table_that_moves_locked_buffers(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FSAOPS_PLUGINS", raising=False)
    pytester.makepyfile(test_nolock=RACE_PROMISE)
    reprec = inline_reports(pytester)
    outcomes = call_reports(reprec)
    nolock = outcomes["TestNoLock::test_race_no_schedule_with_one_accessor_fails"]
    assert nolock.failed
    assert "task bh-lock@" in nolock.longreprtext and MOVED in nolock.longreprtext
    assert "replay: fsaops explore --replay fsx2." in nolock.longreprtext
    assert outcomes["TestLocked::test_race_no_schedule_with_one_accessor_fails"].passed
