"""Tables the 2.6.16/2.6.17 kernel really had pass every judge.

ext2's table of 2.6.15 (no ``migratepage``: the generic fallback writes a
dirty page out, releases its buffers and moves it clean) and ramfs's of
2.6.16 (no ``writepage``, no ``migratepage``) do what the kernel did.
Debug mode, the oracle and the conformance suite's expected outcomes
agree with the engine on them; the slips they must still catch are
caught, and named for what they are.
"""

from __future__ import annotations

from errno import EAGAIN

import attrs
import pytest

from fsaops import AddressSpaceOperations, FileSystemType, migrate_page
from fsaops.buffer import BH, buffers, lock_buffer
from fsaops.debug import InvariantError, broken_fields, check_pages
from fsaops.memory_hotplug import migrate_node
from fsaops.migrate import _count_mismatch
from fsaops.page import PG, Page, page_address, unlock_page
from fsaops.plugins import Registry
from fsaops.semantics import SEMANTICS
from fsaops.testing import promises, resolve_subject
from fsaops.testing.harness import World as SubjectWorld
from fsaops.testing.harness import expected_engine_outcome
from fsaops.world import PageSpec, World
from fsaops.writeback import set_page_dirty_nobuffers
from fsaops_ext2 import EXT2

RELEASES = tuple(SEMANTICS)
FALLBACK = ("no_migratepage",)  # the engine's fallback moves the pages

#: ext2 of 2.6.15: the same tables, with buffer heads and without (``nobh``),
#: with no migratepage (the generic fallback).
EXT2_2615 = attrs.evolve(
    EXT2,
    name="ext2_2615",
    modes={
        mode: attrs.evolve(EXT2.modes[mode], name=f"{EXT2.modes[mode].name}_2615", migratepage=None)
        for mode in ("default", "nobh")
    },
    page_cache={},
)


def _simple_readpage(page: Page) -> int:
    page_address(page)[:] = bytes(page.node.page_size)
    page.flags |= PG.uptodate
    unlock_page(page)
    return 0


def _simple_prepare_write(page: Page, start: int, end: int) -> int:
    if not page.flags & PG.uptodate:
        data = page_address(page)
        data[:start] = bytes(start)
        data[end:] = bytes(len(data) - end)
    return 0


def _simple_commit_write(page: Page, start: int, end: int) -> int:
    page.flags |= PG.uptodate
    set_page_dirty_nobuffers(page)
    mapping = page.mapping
    assert mapping is not None and not mapping.anon
    inode = mapping.host  # type: ignore[union-attr]
    assert inode is not None
    inode.i_size = max(inode.i_size, (page.index << page.node.page_shift) + end)
    return 0


# ramfs of 2.6.16/2.6.17: simple_* members, no writepage, no migratepage.
ramfs_aops_2616 = AddressSpaceOperations(
    name="ramfs_aops_2616",
    readpage=_simple_readpage,
    prepare_write=_simple_prepare_write,
    commit_write=_simple_commit_write,
)
RAMFS_2616 = FileSystemType(
    name="ramfs2616",
    modes={"default": ramfs_aops_2616},
    block_sizes=(4096,),
    default_block_size=4096,
    description="ramfs as 2.6.16 had it",
)


# -- debug mode: a lock held by I/O in flight is no buffer left locked ----------------------


@pytest.mark.parametrize("semantics", RELEASES)
def test_debug_vm_passes_the_fallback_writing_a_buffer_page(
    registry: Registry, semantics: str
) -> None:
    """``block_write_full_page`` leaves each buffer locked until ``end_buffer_async_write``."""
    world = World(
        registry=registry,
        nodes=2,
        node_pages=128,
        swap_slots=32,
        semantics=semantics,
        debug_vm=True,
    )
    record = world.create_file(world.mount(EXT2_2615))
    world.write_file(record, 4)  # dirty, with buffers
    result = migrate_node(world.kernel, 0, 1)  # no InvariantError
    world.kernel.run_until_idle()
    assert (result.left, result.rc) == (0, 0)
    assert all(world.read(record, i) == world.expected(record, i) for i in range(4))


def test_debug_vm_still_names_a_buffer_left_locked_with_no_io_in_flight(
    registry: Registry,
) -> None:
    """A ``migratepage`` that locks a buffer and returns without unlocking it is caught."""
    world = World(registry=registry, nodes=2, node_pages=128, debug_vm=True)
    sb = world.mount("ext2")
    inode = world.file(sb, 2, clean=True)
    pages = inode.i_mapping.pages()

    def leaves_locked(newpage: Page, page: Page) -> int:
        lock_buffer(page.private)
        return -EAGAIN

    inode.i_mapping.a_ops = attrs.evolve(inode.i_mapping.a_ops, migratepage=leaves_locked)
    with pytest.raises(InvariantError) as info:
        world.migrate(pages)
    first = info.value.problems[0]
    assert first.endswith(f"buffer head 0 of pfn {pages[0].pfn} was left locked")
    assert not pages[0].private.b_state & (BH.async_write | BH.async_read)


# -- the oracle: holes of a page written in part are not file data -------------------------


@pytest.mark.parametrize("semantics", RELEASES)
def test_the_fallback_moving_a_page_written_in_part_keeps_every_promise(semantics: str) -> None:
    """Buffers not uptodate hold the frame's old bytes; a read returns zeros for them."""
    world = SubjectWorld(resolve_subject(EXT2_2615, capabilities=FALLBACK, semantics=semantics))
    prepared = world.make_page(PageSpec(dirty=True, partial=True))
    page = prepared.page
    ring = list(buffers(page.private))
    assert not page.flags & PG.uptodate
    assert any(not bh.b_state & BH.uptodate for bh in ring)  # holes: not file data
    run = world.migrate(rounds=3, settle_ticks=64)
    assert run.where(page) == "moved"
    assert promises.check_engine_page(world, run, prepared) == []


def test_the_oracle_still_finds_uptodate_data_that_never_reached_the_disk() -> None:
    """Only the holes are left out: a dirty uptodate buffer moved clean and unwritten is lost."""
    world = SubjectWorld(resolve_subject(EXT2_2615, capabilities=FALLBACK))
    prepared = world.make_page(PageSpec(dirty=True, partial=True))
    page = prepared.page
    before = world.oracle.snapshot(page)
    newpage = world.new_page()
    written = next(bh for bh in buffers(page.private) if bh.b_state & BH.uptodate)
    changed = bytearray(before.data)
    changed[written.b_data & (page.node.page_size - 1)] ^= 0xFF  # never on the disk
    assert not world.oracle.data_is_safe(newpage, bytes(changed), before)


# -- the suite's expected outcome follows the release's fallback ---------------------------


@pytest.mark.parametrize("semantics", RELEASES)
def test_a_page_dirty_only_in_its_pte_stays_under_a_fallback_that_cannot_write_it(
    semantics: str,
) -> None:
    """From 2.6.17 the fallback unmaps first: the pte's dirty bit reaches the page, and
    ``pageout`` without ``writepage`` gives ``ACTIVATE`` (``-EAGAIN``) every pass."""
    subject = resolve_subject(RAMFS_2616, capabilities=FALLBACK, semantics=semantics)
    spec = PageSpec(pte_dirty=True)
    want = "from" if SEMANTICS[semantics].fallback_unmaps else "moved"
    assert expected_engine_outcome(subject, spec) == want
    world = SubjectWorld(subject)
    prepared = world.make_page(spec)
    run = world.migrate(rounds=3, settle_ticks=64)
    assert run.where(prepared.page) == want
    assert promises.check_engine_page(world, run, prepared) == []


def test_a_table_that_can_write_moves_a_page_dirty_only_in_its_pte() -> None:
    """With ``writepage`` the 2.6.17 fallback writes the page out and moves it."""
    subject = resolve_subject(EXT2_2615, capabilities=FALLBACK, semantics="2.6.17")
    assert expected_engine_outcome(subject, PageSpec(pte_dirty=True)) == "moved"


# -- messages -------------------------------------------------------------------------------


def test_a_buffer_page_given_migrate_page_is_told_its_buffers_hold_the_reference(
    registry: Registry,
) -> None:
    """``migrate_page`` counts 2; the buffers' reference is no other task's pin."""
    world = World(registry=registry, nodes=2, node_pages=64)
    sb = world.mount("ext2")
    inode = world.file(sb, 1, clean=True)
    inode.i_mapping.a_ops = attrs.evolve(inode.i_mapping.a_ops, migratepage=migrate_page)
    (page,) = inode.i_mapping.pages()
    assert page.flags & PG.private
    out = world.migrate([page])
    assert page not in out.moved
    why = out.reasons()
    assert "reference count 3, expected 2 (cache + isolation + 0 pte(s))" in why
    assert (
        "the extra reference is the page's buffers' (PG_private), which this count has no term "
        "for (buffer_migrate_page counts it)"
    ) in why
    world.pin(page)
    assert "an extra reference is held, besides the page's buffers' (PG_private)" in (
        _count_mismatch(page, 2)
    )
    assert _count_mismatch(page, 3).endswith(": an extra reference is held")


class _Metapage:
    def __repr__(self) -> str:
        return "<metapage>"


def test_pg_private_without_buffers_is_named_outside_what_fsaops_models(
    registry: Registry,
) -> None:
    """jfs metapages and NFS requests are private data of other kinds: not modelled."""
    world = World(registry=registry, nodes=2, node_pages=64)
    inode = world.file(world.mount("ext2"), 1, clean=True)
    (page,) = inode.i_mapping.pages()
    page.private = 0  # no private data at all: a slip, said as before
    assert broken_fields(page) == ["private is an int under PG_private, not a buffer head"]
    page.private = _Metapage()
    (field,) = broken_fields(page)
    assert field.startswith("private is ")
    assert "outside what it models" in field and "jfs metapages" in field
    (said,) = [p for p in check_pages(world.kernel, [page], quiet=False) if "<metapage>" in p]
    assert said.startswith(f"pfn {page.pfn} (")
    assert said.endswith(
        "has PG_private but private is <metapage>, not a buffer head: fsaops models PG_private "
        "as buffer heads only, and private data of other kinds (jfs metapages, NFS requests) is "
        "outside what it models"
    )
