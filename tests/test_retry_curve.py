"""The retry curve: the pages each pass of ``migrate_pages`` left to retry, per table.

The engine counts them once per pass (the kernel's ``retry``), not per page;
the events it emits for every attempt say the same, page by page.
"""

from __future__ import annotations

from collections import Counter

from fsaops.migrate import MAX_PASSES
from fsaops.testing import Recorder
from fsaops.world import World


def _from_events(recorder: Recorder) -> dict[str, list[int]]:
    """Per table, the attempts that ended in -EAGAIN in each pass: the curve, from the events."""
    curve: dict[str, list[int]] = {}
    for e in recorder.named("mm_migrate_page"):
        if e["rc"] == -11:
            curve.setdefault(e["table"], [0] * MAX_PASSES)[e["pass_"]] += 1
    return curve


def test_a_pinned_page_is_left_after_every_pass_and_a_locked_one_after_three(
    world: World, recorder: Recorder
) -> None:
    sb = world.mount("ext2", "nobh")
    inode = world.file(sb, 4, clean=True)
    pinned, locked, *free = inode.i_mapping.pages()
    world.pin(pinned)
    world.lock(locked, 5_000)
    out = world.migrate([pinned, locked, *free])
    assert out.problems == []
    table = out.stats.tables["ext2_nobh_aops"]
    # Passes 0-2 try the lock and skip; pass 3 sleeps on it and moves the page.
    assert table.retry_by_pass == [2, 2, 2] + [1] * (MAX_PASSES - 3)
    assert out.stats.retry_by_pass == table.retry_by_pass
    assert table.not_migrated == 1
    assert _from_events(recorder) == {"ext2_nobh_aops": table.retry_by_pass}
    world.settle(out)


def test_pages_that_move_at_once_leave_no_curve(world: World) -> None:
    sb = world.mount("ext2")
    inode = world.file(sb, 6, clean=True)
    out = world.migrate(inode.i_mapping.pages())
    assert len(out.moved) == 6
    assert out.stats.retry_by_pass == [0] * MAX_PASSES
    assert out.stats.tables["ext2_aops"].retry_by_pass == [0] * MAX_PASSES
    world.settle(out)


def test_the_curve_adds_up_over_calls_and_tables(world: World, recorder: Recorder) -> None:
    """Two tables, two calls: each pass's count is the sum over both, split by table."""
    ext2 = world.file(world.mount("ext2"), 3, clean=True)
    xfs = world.file(world.mount("xfs"), 3, clean=True)
    pinned = [ext2.i_mapping.pages()[0], *xfs.i_mapping.pages()[:2]]
    for page in pinned:
        world.pin(page)
    out = world.migrate([*ext2.i_mapping.pages(), *xfs.i_mapping.pages()], rounds=2)
    assert out.problems == []
    curve = _from_events(recorder)
    assert set(curve) == {"ext2_aops", "linvfs_aops"}
    assert curve["ext2_aops"] == [2] * MAX_PASSES  # one page, two calls
    assert curve["linvfs_aops"] == [4] * MAX_PASSES
    for name, expected in curve.items():
        assert out.stats.tables[name].retry_by_pass == expected
    totals = [sum(c) for c in zip(*curve.values(), strict=True)]
    assert out.stats.retry_by_pass == totals
    assert Counter(e["pass_"] for e in recorder.named("mm_migrate_page") if e["rc"]) == Counter(
        dict.fromkeys(range(MAX_PASSES), 6)
    )
    world.settle(out)
