"""The conformance suite holds a buffer lock: a table that never sleeps on one fails it.

No test of the suite had another task hold a buffer's lock, so a
``buffer_migrate_page`` that trylocks the buffers after moving the
page-tree slot and backs out with ``-EAGAIN`` (the slot then holds a new
page that never got the data), or gives the new page a copy of a buffer it
could not lock, passed the whole suite; only the opt-in race suite, minutes
long, caught them.  ``PageSpec.buffer_locked_for`` builds such a page, and
``test_engine_waits_for_a_buffer_lock_another_task_holds`` migrates one.
"""

from __future__ import annotations

import pytest

from fsaops.testing import PageSpec, Subject, World
from fsaops_ext2 import EXT2

pytest_plugins = ["pytester"]

TABLES = """
from errno import EAGAIN

import attrs

import fsaops
from fsaops import buffer_migrate_page, migrate_page, migrate_page_copy
from fsaops import migrate_page_remove_references
from fsaops.buffer import BH, BufferHead, bh_offset, buffers, get_bh, lock_buffer, put_bh
from fsaops.buffer import set_bh_page, trylock_buffer, unlock_buffer
from fsaops.page import PG
from fsaops_ext2 import ext2_aops


def _finish(newpage, page, ring, locked):
    page.flags &= ~PG.private
    newpage.private, page.private = page.private, 0
    page.count -= 1
    newpage.count += 1
    for bh in ring:
        set_bh_page(bh, newpage, bh_offset(bh))
    newpage.flags |= PG.private
    migrate_page_copy(newpage, page)
    for bh in locked:
        unlock_buffer(bh)
    for bh in ring:
        put_bh(bh)
    return 0


def trylocks_after_moving(newpage, page):
    if not page.flags & PG.private:
        return migrate_page(newpage, page)
    if migrate_page_remove_references(newpage, page, 3):
        return -EAGAIN
    ring, locked = list(buffers(page.private)), []
    for bh in ring:
        if not trylock_buffer(bh):
            for other in locked:
                unlock_buffer(other)
                put_bh(other)
            return -EAGAIN
        get_bh(bh)
        locked.append(bh)
    return _finish(newpage, page, ring, locked)


def copies_busy_buffers(newpage, page):
    if not page.flags & PG.private:
        return migrate_page(newpage, page)
    if migrate_page_remove_references(newpage, page, 3):
        return -EAGAIN
    ring, locked = [], []
    for i, bh in enumerate(list(buffers(page.private))):
        if i == 0 or trylock_buffer(bh):
            if i == 0:
                lock_buffer(bh)
            get_bh(bh)
            locked.append(bh)
            ring.append(bh)
        else:
            copy = BufferHead(newpage, bh_offset(bh), bh.b_size, bh.b_bdev)
            copy.b_state = bh.b_state & ~BH.lock
            copy.b_blocknr = bh.b_blocknr
            get_bh(copy)
            ring.append(copy)
            bh.b_this_page = bh
    for bh, after in zip(ring, ring[1:] + ring[:1]):
        bh.b_this_page = after
    return _finish(newpage, page, ring, locked)


def sleeps_under_anothers_lock(newpage, page):
    # buffer_migrate_page, sleeping on the buffer locks under another file's private_lock.
    if not page.flags & PG.private:
        return migrate_page(newpage, page)
    mapping = page.mapping
    if migrate_page_remove_references(newpage, page, 3):
        return -EAGAIN
    ring = list(buffers(page.private))
    kernel = page.node.kernel
    others = [i.i_mapping for sb in kernel.super_blocks for i in sb.inodes]
    others = [m for m in others if m is not mapping] or [mapping]
    with others[0].private_lock:
        for bh in ring:
            get_bh(bh)
            lock_buffer(bh)
    return _finish(newpage, page, ring, ring)


def _type(name, migratepage):
    table = attrs.evolve(ext2_aops, name=f"{name}_aops", migratepage=migratepage)
    return fsaops.FileSystemType(
        name=name,
        modes={"default": table},
        block_sizes=(1024,),
        default_block_size=1024,
        description="buffer_migrate_page with one mistake",
    )


TRYLOCKS = _type("trylocks", trylocks_after_moving)
COPIES = _type("copies", copies_busy_buffers)
WAITS = _type("waits", buffer_migrate_page)
SLEEPS = _type("sleeps", sleeps_under_anothers_lock)
"""

SUITE = """
import table_code
from fsaops.testing import MigratepageConformance


class TestIt(MigratepageConformance):
    filesystem = table_code.{name}
    semantics = "{semantics}"
    capabilities = {{"writeback", "buffers"}}
"""


@pytest.mark.parametrize(
    ("name", "said"),
    [
        ("TRYLOCKS", "*"),
        ("COPIES", "*is not the one pfn * had: migratepage must move the page's own buffer heads*"),
        # Another file's page migrates with it: its private_lock is a spinlock to sleep under.
        ("SLEEPS", "*sleeping function called from invalid context*private_lock of subject/*"),
    ],
)
@pytest.mark.parametrize("semantics", ["v4", "2.6.17"])
def test_a_table_that_mishandles_a_held_buffer_fails_the_suite(
    pytester: pytest.Pytester, name: str, said: str, semantics: str
) -> None:
    pytester.syspathinsert()
    pytester.makepyfile(table_code=TABLES)
    pytester.makepyfile(test_suite=SUITE.format(name=name, semantics=semantics))
    result = pytester.runpytest("-p", "no:randomly", "-p", "no:cacheprovider", "-k", "buffer_lock")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([said])


def test_buffer_migrate_page_passes_it(pytester: pytest.Pytester) -> None:
    pytester.syspathinsert()
    pytester.makepyfile(table_code=TABLES)
    pytester.makepyfile(test_suite=SUITE.format(name="WAITS", semantics="v4"))
    result = pytester.runpytest("-p", "no:randomly", "-p", "no:cacheprovider", "-k", "buffer_lock")
    result.assert_outcomes(passed=1)


def test_a_buffer_locked_page_has_its_last_buffer_held_by_another_task() -> None:
    world = World(Subject(EXT2, "default", block_size=1024))
    prepared = world.make_page(PageSpec(dirty=True, buffer_locked_for=5))
    ring = list(world.kernel.sched.buffer_lockers.values())
    assert len(ring) == 1
    task, held = ring[0]
    assert task.name == "buffer_writer" and held.obj.b_page is prepared.page
    assert held.obj.b_this_page is prepared.page.private  # the last buffer of the ring
    assert PageSpec.parse("buffer_locked").buffer_locked_for == 8
    with pytest.raises(ValueError, match="no buffer to lock"):
        PageSpec(buffer_locked_for=3, buffers=False)
    with pytest.raises(ValueError, match="locked by its own I/O"):
        PageSpec.parse("buffer_locked+writeback")
