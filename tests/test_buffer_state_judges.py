"""Every judge says "moving a page changes no buffer's state", and means it.

A ``migratepage`` that is ``buffer_migrate_page`` followed by one wrong
change to the buffers: the hook promise (``promises.hook_buffers_follow``),
the oracle's ``moved_problems`` (``--debug-vm`` and the engine promises),
the findings of ``--strict`` (``MigratepageWatch``) and the machine's
invariants (``check_kernel``) must each name what changed, in the rule's
own words; the real ``buffer_migrate_page`` must satisfy every one.  The
suite's engine test writes its files back and reads them from disk, so a
buffer mapped onto another file's block fails it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from errno import EAGAIN
from typing import Any

import attrs
import pytest

from fsaops import (
    FileSystemType,
    buffer_migrate_page,
    migrate_page_copy,
    migrate_page_remove_references,
)
from fsaops.buffer import BH, BufferHead, bh_offset, buffers, set_bh_page
from fsaops.debug import check_kernel
from fsaops.findings import Findings, MigratepageWatch
from fsaops.oracle import Oracle, UnlockedMoves
from fsaops.page import PG, Page
from fsaops.testing import World, promises, resolve_subject
from fsaops.testing.harness import PageSpec
from fsaops_ext2 import EXT2, ext2_aops
from fsaops_ext3 import EXT3, ext3_journalled_aops
from fsaops_xfs import XFS, linvfs_aops

Migratepage = Callable[[Page, Page], int]
Change = Callable[[BufferHead], None]


def _then(change: Change) -> Migratepage:
    """``buffer_migrate_page``, then ``change`` on every buffer of the new page."""

    def migratepage(newpage: Page, page: Page) -> int:
        rc = buffer_migrate_page(newpage, page)
        if rc == 0 and newpage.flags & PG.private:
            for bh in buffers(newpage.private):
                change(bh)
        return rc

    return migratepage


def _ext2(fn: Migratepage) -> FileSystemType:
    table = attrs.evolve(ext2_aops, name="bhtest_aops", migratepage=fn)
    return attrs.evolve(EXT2, name="bhtest", modes={"default": table})


def _journalled(fn: Migratepage) -> FileSystemType:
    table = attrs.evolve(ext3_journalled_aops, name="jbhtest_aops", migratepage=fn)
    return attrs.evolve(EXT3, name="jbhtest", modes={"journal": table}, default_mode="journal")


def _xfs(fn: Migratepage) -> FileSystemType:
    table = attrs.evolve(linvfs_aops, name="xbhtest_aops", migratepage=fn)
    return attrs.evolve(XFS, name="xbhtest", modes={"default": table})


def _set(bit: int) -> Change:
    def change(bh: BufferHead) -> None:
        bh.b_state |= bit

    return change


def _clear(bit: int) -> Change:
    def change(bh: BufferHead) -> None:
        bh.b_state &= ~bit

    return change


def _private(bh: BufferHead) -> None:
    bh.b_private = "stray"


def _size(bh: BufferHead) -> None:
    bh.b_size //= 2


def _put(bh: BufferHead) -> None:
    bh.b_count -= 1


def _get(bh: BufferHead) -> None:
    bh.b_count += 1


def _jbddirty_to_dirty(bh: BufferHead) -> None:
    if bh.b_state & BH.jbddirty:
        bh.b_state = (bh.b_state & ~BH.jbddirty) | BH.dirty


def _hook(fs: FileSystemType, spec: PageSpec, mode: str | None = None) -> list[str]:
    world = World(resolve_subject(fs, mode))
    return promises.hook_buffers_follow(world.call_migratepage(world.make_page(spec)))


CHANGES = {
    "gains BH_New": (_set(BH.new), "gained BH_New"),
    "gains BH_Write_EIO": (_set(BH.write_io_error), "gained BH_Write_EIO"),
    "gains BH_Delay": (_set(BH.delay), "gained BH_Delay"),
    "gains BH_Req": (_set(BH.req), "gained BH_Req"),
    "drops BH_Mapped": (_clear(BH.mapped), "lost BH_Mapped"),
    "drops BH_Uptodate": (_clear(BH.uptodate), "lost BH_Uptodate"),
    "sets b_private": (_private, "has b_private 'stray', not None"),
    "halves b_size": (_size, "has b_size "),
}


@pytest.mark.parametrize("name", sorted(CHANGES))
def test_the_hook_promise_compares_every_buffer_bit_and_field(name: str) -> None:
    change, said = CHANGES[name]
    problems = _hook(_ext2(_then(change)), PageSpec())
    assert any(said in p and "moving a page changes no buffer's state" in p for p in problems), (
        problems
    )


def test_the_hook_promise_passes_the_real_buffer_migrate_page() -> None:
    for spec in (PageSpec(), PageSpec(dirty=True), PageSpec(mapped=True, pte_dirty=True)):
        assert _hook(_ext2(buffer_migrate_page), spec) == []
    assert _hook(_journalled(buffer_migrate_page), PageSpec(dirty=True), "journal") == []


def test_the_hook_promise_catches_a_device_taken_from_a_mapped_buffer() -> None:
    def unmap_device(bh: BufferHead) -> None:
        bh.b_bdev = None

    problems = _hook(_ext2(_then(unmap_device)), PageSpec())
    assert any("lost its b_bdev" in p for p in problems), problems


def test_the_hook_promise_says_which_way_b_count_went() -> None:
    fell = _hook(_ext2(_then(_put)), PageSpec())
    assert any("(-1: a reference it held was dropped" in p for p in fell), fell
    assert not any("was not dropped" in p for p in fell)
    rose = _hook(_ext2(_then(_get)), PageSpec())
    assert any("(+1: a reference taken to move it was not dropped)" in p for p in rose), rose


def test_a_clean_page_s_buffers_do_not_turn_dirty() -> None:
    problems = _hook(_ext2(_then(_set(BH.dirty))), PageSpec())
    assert any("gained BH_dirty" in p and "the page can never be freed" in p for p in problems)


def test_a_clean_page_moved_dirty_with_its_buffers_is_written_back_for_nothing() -> None:
    def dirty_all(bh: BufferHead) -> None:
        bh.b_state |= BH.dirty
        bh.b_page.flags |= PG.dirty

    problems = _hook(_ext2(_then(dirty_all)), PageSpec())
    assert any("gained BH_dirty" in p and "written back for nothing" in p for p in problems)


RULE = "a journalled buffer must not be BH_dirty"


def test_the_hook_promise_names_the_journalled_buffer_rule() -> None:
    problems = _hook(_journalled(_then(_jbddirty_to_dirty)), PageSpec(dirty=True), "journal")
    assert any(RULE in p for p in problems), problems


def test_the_oracle_names_the_journalled_buffer_rule_not_a_lost_write() -> None:
    world = World(resolve_subject(_journalled(_then(_jbddirty_to_dirty)), "journal"))
    prepared = world.make_page(PageSpec(dirty=True))
    assert prepared.page.private and any(
        bh.b_state & BH.jbddirty for bh in buffers(prepared.page.private)
    )
    oracle = Oracle()
    before = oracle.snapshot(prepared.page)
    world.call_migratepage(prepared)
    problems = oracle.moved_problems(before, prepared.page)
    assert any(RULE in p for p in problems), problems
    assert not any("would never write it" in p for p in problems), problems


def _watched(fs: FileSystemType, spec: PageSpec, mode: str | None = None) -> list[str]:
    """The findings of ``--strict`` for one call of ``fs``'s ``migratepage`` on ``spec``."""
    findings = Findings()
    box: list[MigratepageWatch] = []
    subject = resolve_subject(fs, mode)
    inner = subject.fstype.modes[subject.mode].migratepage
    assert inner is not None

    def watched(newpage: Page, page: Page) -> int:
        box[0].before(newpage, page)
        rc = inner(newpage, page)
        box[0].after(newpage, page, rc, "t")
        return rc

    table = attrs.evolve(subject.fstype.modes[subject.mode], migratepage=watched)
    fstype = attrs.evolve(subject.fstype, modes={subject.mode: table})
    world = World(resolve_subject(fstype, mode))
    box.append(MigratepageWatch(world.kernel, findings))
    world.call_migratepage(world.make_page(spec))
    return [f.example for f in findings.result() if f.kind == "buffers"]


@pytest.mark.parametrize(
    ("change", "said"),
    [
        (_set(BH.new), "gained BH_New in migratepage"),
        (_set(BH.delay), "gained BH_Delay in migratepage"),
        (_private, "has b_private 'stray', not None in migratepage"),
        (_size, "has b_size "),
    ],
)
def test_findings_compare_the_buffer_state_no_other_task_changes(change: Change, said: str) -> None:
    assert any(said in f for f in _watched(_ext2(_then(change)), PageSpec()))


def test_findings_name_the_journalled_buffer_rule() -> None:
    examples = _watched(_journalled(_then(_jbddirty_to_dirty)), PageSpec(dirty=True), "journal")
    assert any(RULE in f for f in examples), examples


def test_findings_pass_the_real_buffer_migrate_page() -> None:
    assert _watched(_ext2(buffer_migrate_page), PageSpec(dirty=True)) == []
    assert _watched(_journalled(buffer_migrate_page), PageSpec(dirty=True), "journal") == []


def _delay_to_block_one(bh: BufferHead) -> None:
    if bh.b_state & BH.delay:
        bh.b_state = (bh.b_state & ~BH.delay) | BH.mapped
        bh.b_blocknr = 1


def _two_files(fn: Migratepage) -> tuple[World, list[str]]:
    """A clean and a delalloc file of four pages, moved in one call and settled."""
    world = World(resolve_subject(_xfs(fn)))
    assert world.sb is not None
    pages: list[Page] = []
    for clean in (True, False):
        pages += world.file(world.sb, 4, clean=clean).i_mapping.pages()
    assert any(bh.b_state & BH.delay for bh in buffers(pages[-1].private))
    run = world.migrate(pages)
    world.settle(run)
    return world, list(run.problems)


def test_an_invariant_catches_a_buffer_mapped_onto_another_file_s_block() -> None:
    world, problems = _two_files(_then(_delay_to_block_one))
    problems += check_kernel(world.kernel)
    assert any("its writes would go over another file's block" in p for p in problems), problems


def test_the_suite_reads_moved_files_back_from_disk() -> None:
    world, _problems = _two_files(_then(_delay_to_block_one))
    problems = promises.check_on_disk(world)
    assert any("does not hold the data written last" in p for p in problems), problems
    world, problems = _two_files(buffer_migrate_page)
    assert problems == []
    assert promises.check_on_disk(world) == []


def test_the_oracle_catches_a_delayed_allocation_forgotten_on_the_way() -> None:
    world = World(resolve_subject(_xfs(_then(_clear(BH.delay)))))
    assert world.sb is not None
    inode = world.file(world.sb, 4)
    pages = inode.i_mapping.pages()
    run = world.migrate(pages)
    assert any("lost BH_Delay" in p and "has no block" in p for p in run.problems), run.problems


def test_a_watch_of_unlocked_moves_notes_only_moves_to_the_new_page_without_the_lock() -> None:
    """``UnlockedMoves``: a locked move, a move elsewhere, a store of the same page: no problem."""
    world = World(resolve_subject(EXT2, "default", block_size=1024))
    prepared = world.make_page(PageSpec())
    page, newpage = prepared.page, world.new_page()
    ring = list(buffers(page.private))
    slot = BufferHead.__dict__["b_page"]
    moves = UnlockedMoves(ring, newpage)
    ring[0].b_state |= BH.lock
    ring[0].b_page = newpage  # locked: as set_bh_page is called
    ring[0].b_state &= ~BH.lock
    ring[0].b_page = newpage  # the page it already has: nothing moves
    ring[1].b_page = page  # not the new page
    ring[2].b_page = newpage  # unlocked: noted
    assert ring[2].b_page is newpage
    descriptor: Any = BufferHead.__dict__["b_page"]  # what BufferHead.b_page is now
    descriptor.__set__(ring[3], newpage)  # through the class's own descriptor: noted
    assert moves.stop() == [ring[2], ring[3]]
    assert BufferHead.__dict__["b_page"] is slot, "the slot is put back"
    assert all(type(bh) is BufferHead for bh in ring)


def test_the_watch_changes_no_buffer_head_s_type_and_copies_stay_plain() -> None:
    """Plugin code that checks ``type(bh)``, or copies a buffer head, sees what a plain run sees."""

    class Mine(BufferHead):
        __slots__ = ("extra",)

    world = World(resolve_subject(EXT2, "default", block_size=1024))
    page, newpage = world.make_page(PageSpec()).page, world.new_page()
    (first, *_rest) = buffers(page.private)
    mine = Mine(page, 0, 1024, None)
    moves = UnlockedMoves([first, mine], newpage)
    assert type(first) is BufferHead and type(mine) is Mine
    twin = copy.copy(first)
    assert type(twin) is BufferHead and twin.b_page is page
    twin.b_page = newpage  # not watched: a copy is a buffer head of no page's ring
    mine.b_page = newpage  # a plugin's own class is watched too
    assert moves.stop() == [mine]


def _without_locking(newpage: Page, page: Page) -> int:
    """``buffer_migrate_page`` with no ``lock_buffer``/``unlock_buffer``."""
    if page.mapping is None or not page.flags & PG.private:
        return buffer_migrate_page(newpage, page)
    if migrate_page_remove_references(newpage, page, 3):
        return -EAGAIN
    ring = list(buffers(page.private))
    page.flags &= ~PG.private
    newpage.private, page.private = page.private, 0
    page.count -= 1
    newpage.count += 1
    base = newpage.pfn << newpage.node.page_shift
    for bh in ring:
        set_bh_page(bh, newpage, bh.b_data - (page.pfn << page.node.page_shift))
    newpage.flags |= PG.private
    migrate_page_copy(newpage, page)
    assert all(
        bh.b_data >> newpage.node.page_shift == base >> newpage.node.page_shift for bh in ring
    )
    return 0


@pytest.mark.parametrize("fs", [_ext2, _xfs])
def test_the_kit_and_strict_name_a_buffer_moved_without_its_lock(
    fs: Callable[[Migratepage], FileSystemType],
) -> None:
    """Nothing in a serial call's end state shows it: the move itself is watched."""
    said = "was moved to pfn 64 without its lock held: migratepage must lock_buffer each buffer"
    assert any(said in p for p in _hook(fs(_without_locking), PageSpec(dirty=True)))
    assert any(said in f for f in _watched(fs(_without_locking), PageSpec(dirty=True)))
    assert _hook(fs(buffer_migrate_page), PageSpec(dirty=True)) == []


def _fresh_buffers(newpage: Page, page: Page) -> int:
    """Gives the new page copies of the buffer heads and leaves the old ones behind."""
    if page.mapping is None or not page.flags & PG.private:
        return buffer_migrate_page(newpage, page)
    if migrate_page_remove_references(newpage, page, 3):
        return -EAGAIN
    old = list(buffers(page.private))
    fresh = [BufferHead(newpage, bh_offset(bh), bh.b_size, bh.b_bdev) for bh in old]
    for i, (bh, was) in enumerate(zip(fresh, old, strict=True)):
        bh.b_state, bh.b_blocknr = was.b_state, was.b_blocknr
        bh.b_this_page = fresh[(i + 1) % len(fresh)]
    page.flags &= ~PG.private
    page.private = 0
    page.count -= 1
    newpage.private = fresh[0]
    newpage.flags |= PG.private
    newpage.count += 1
    migrate_page_copy(newpage, page)
    return 0


def test_strict_agrees_with_debug_vm_that_buffers_given_anew_did_not_follow() -> None:
    examples = _watched(_ext2(_fresh_buffers), PageSpec(dirty=True))
    assert any(
        "the buffers of pfn 0 did not follow it to pfn 64: the new page has buffer heads of its "
        "own" in f
        for f in examples
    ), examples
