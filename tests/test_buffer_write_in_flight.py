"""A buffer's write in flight reads the frame it was submitted from, as the write ends.

Another task's hold of a buffer lock (``workload.buffer_locked``,
``PageSpec.buffer_locked_for``) stands for a write of its block in flight.
It used to end with no I/O, so a ``migratepage`` that moved the buffer
without waiting for its lock lost nothing the model could see, where on a
kernel the request goes on reading the frame the migration frees.  The
request now names that frame (:func:`fsaops.buffer.start_buffer_write`)
and writes the block from it as the lock is let go of
(:func:`fsaops.buffer.end_buffer_write`): a freed frame gives poison.
"""

from __future__ import annotations

import json
from errno import EAGAIN
from pathlib import Path

import attrs
import pytest

from fsaops.buffer import (
    BH,
    bh_offset,
    buffers,
    end_buffer_write,
    set_bh_page,
    start_buffer_write,
)
from fsaops.fs import Inode
from fsaops.lists import PageList
from fsaops.lru import putback_lru_pages
from fsaops.mapping import AddressSpace
from fsaops.memory import POISON_BYTE
from fsaops.migrate import migrate_page_copy, migrate_page_remove_references, migrate_pages
from fsaops.oracle import Oracle
from fsaops.page import PG, Page, page_address
from fsaops.sched import hold, release
from fsaops.testing import PageSpec, Subject, World
from fsaops_ext2 import EXT2
from inproc import fsaops as inproc_fsaops

BS = 1024


def _world() -> World:
    return World(Subject(EXT2, "default", block_size=BS))


def _block_on_disk(inode: Inode | None, index: int, block: int) -> bytes:
    assert inode is not None
    return Oracle.on_disk(inode, index)[block * BS : (block + 1) * BS]


def test_starting_a_write_takes_the_buffers_dirty_bit_and_names_its_frame() -> None:
    world = _world()
    prepared = world.make_page(PageSpec(dirty=True))
    page = prepared.page
    last = list(buffers(page.private))[-1]
    assert last.b_state & BH.dirty
    last.b_state |= BH.lock
    write = start_buffer_write(last)
    assert write is not None
    assert (write.page, write.offset, write.blocknr, write.size) == (
        page,
        3 * BS,
        last.b_blocknr,
        BS,
    )
    assert not last.b_state & BH.dirty
    assert page.flags & PG.dirty  # the page keeps its dirty state: its other buffers have it


def test_a_buffer_that_maps_no_block_has_no_write() -> None:
    world = _world()
    bh = world.make_page(PageSpec(dirty=True)).page.private
    bh.b_state = (bh.b_state & ~BH.mapped) | BH.lock
    state = bh.b_state
    assert start_buffer_write(bh) is None
    assert bh.b_state == state


def test_the_write_ends_with_the_frames_bytes_and_is_not_the_codes_write() -> None:
    world = _world()
    prepared = world.make_page(PageSpec(dirty=True))
    page = prepared.page
    inode = prepared.inode
    last = list(buffers(page.private))[-1]
    bdev = last.b_bdev
    assert bdev is not None
    before = bdev.writes
    last.b_state |= BH.lock
    write = start_buffer_write(last)
    assert write is not None
    end_buffer_write(last, write)
    assert bdev.writes == before  # another task's I/O: no check counts it as the code's
    assert last.b_state & BH.uptodate
    assert _block_on_disk(inode, page.index, 3) == bytes(page_address(page)[3 * BS :])


def test_a_write_that_ends_on_a_freed_frame_writes_poison() -> None:
    """A table moves the buffers while the write is in flight; the engine frees the old page."""
    world = _world()
    prepared = world.make_page(PageSpec(buffer_locked_for=1000))
    page = prepared.page
    inode = prepared.inode
    held = prepared.holds[-1]
    assert held.write is not None and held.write.page is page
    index = page.index

    def moves_without_waiting(newpage: Page, old: Page) -> int:
        if migrate_page_remove_references(newpage, old, 3):
            return -EAGAIN
        head = old.private
        old.flags &= ~PG.private
        newpage.private, old.private = head, 0
        old.count -= 1
        newpage.count += 1
        for bh in buffers(head):
            set_bh_page(bh, newpage, bh_offset(bh))
        newpage.flags |= PG.private
        migrate_page_copy(newpage, old)
        return 0

    mapping = page.mapping
    assert isinstance(mapping, AddressSpace)
    mapping.a_ops = attrs.evolve(mapping.a_ops, migratepage=moves_without_waiting)
    from_ = world.from_  # the page is isolated on it, as built
    to = world.new_pages(1)
    moved, failed = PageList("moved"), PageList("failed")
    assert migrate_pages(from_, to, moved, failed) == 0
    putback_lru_pages(moved)
    assert page.count == 0  # the old frame is free; the write is still in flight
    world.release_all()
    assert _block_on_disk(inode, index, 3) == bytes([POISON_BYTE]) * BS
    assert _block_on_disk(inode, index, 0) == prepared.data[:BS]  # no write there


def test_a_hold_stands_for_a_write_of_a_buffer_only() -> None:
    world = _world()
    page = world.make_page(PageSpec()).page
    task = world.kernel.new_task("io")
    with pytest.raises(ValueError, match="only a buffer lock stands for a write"):
        hold(task, world.kernel.sched, "page_lock", page, 5, write=True)
    assert not page.flags & PG.locked and not task.holds  # the wrong call took nothing
    bh = list(buffers(page.private))[1]
    held = hold(task, world.kernel.sched, "buffer_lock", bh, None)
    assert held.write is None  # a plain lock, as before
    release(task, held)
    assert not bh.b_state & BH.lock


def test_the_journey_of_a_page_names_the_write_in_flight(tmp_path: Path) -> None:
    """``--trace``: who holds the page's buffer, and which block it writes from which frame."""
    path = tmp_path / "held.toml"
    path.write_text(
        '[kernel]\nnode_memory = "2MiB"\n[plugins]\nload = ["ext2"]\n'
        '[[mount]]\nfs = "ext2"\npages = 4\nblock_size = 1024\n'
        "[workload]\nbuffer_locked = 1.0\n",
        encoding="utf-8",
    )
    status, out, err = inproc_fsaops(
        "migrate", str(path), "--json", "--no-progress", "--trace", "mount0/file0:0"
    )
    assert status == 0, err
    report = json.loads(out)
    start = report["trace"][0]
    assert start["state"] == "buffer_locked"
    (holder,) = start["held_by"]
    assert holder["hold"] == "buffer_lock" and holder["task"] == "buffer_writer"
    writes = holder["writes"]
    assert writes["pfn"] == start["pfn"] and writes["block"] > 0
    status, out, err = inproc_fsaops(
        "migrate", str(path), "--no-progress", "--trace", "mount0/file0:0"
    )
    assert status == 0, err
    said = " ".join(out.split())
    assert f"(writing block {writes['block']} from pfn {writes['pfn']})" in said
