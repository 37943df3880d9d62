"""The explorer's pages are of varied place, and the tasks that read a page check what they read.

Page *k* is at index *k* of its own file, even pages move from node 0 to
node 1 and odd ones from node 1 to node 0: a table racy only past a file's
first page, or only toward node 0, is within reach.  ``read-fault`` and
``swapin`` check that the bytes the process read are a version of the page
(as ``pin`` does), not only the end state.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from errno import EAGAIN

import attrs
import pytest

from fsaops.aops import FileSystemType
from fsaops.buffer import buffer_migrate_page
from fsaops.errors import FsaopsError
from fsaops.explore import TaskSpec, explore
from fsaops.explore.api import render_text
from fsaops.explore.setup import ExploredWorld, Setup
from fsaops.mapping import AddressSpace
from fsaops.page import PG, Page, page_address
from fsaops.plugins import Registry, load_plugins
from fsaops.status import Status

Migratepage = Callable[[Page, Page], int]

_LOST = (Status.INVARIANT_BROKEN, Status.DATA_LOST)
"""What a slot moved with no re-check of the count comes to (a stale pte, a lost store)."""


@pytest.fixture(scope="module")
def registry() -> Iterator[Registry]:
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("FSAOPS_PLUGINS", raising=False)
        yield load_plugins()


def _fstype(registry: Registry, name: str, migratepage: Migratepage) -> FileSystemType:
    ext2 = registry.filesystem("ext2")
    table = attrs.evolve(ext2.aops("default"), name=f"{name}_aops", migratepage=migratepage)
    return attrs.evolve(ext2, name=name, modes={"default": table}, default_mode="default")


def _tree_lock_twice(newpage: Page, page: Page) -> int:
    """The count checked under tree_lock, the lock dropped, then the slot moved: no re-check."""
    mapping = page.mapping
    assert isinstance(mapping, AddressSpace)
    if page.mapcount and mapping.kernel.semantics.unmap(page):
        return -EAGAIN
    with mapping.tree_lock:
        ok = page.count == 3 and mapping.page_tree[page.index] is page
    if not ok:
        return -EAGAIN
    with mapping.tree_lock:
        mapping.page_tree[page.index] = newpage
        newpage.count += 1
        newpage.index = page.index
        newpage.mapping = mapping
        page.count -= 1
    # buffer_migrate_page's tail, done by the real thing on a page whose slot moved.
    return _finish(newpage, page)


def _finish(newpage: Page, page: Page) -> int:
    from fsaops.buffer import buffers, lock_buffer, unlock_buffer
    from fsaops.migrate import migrate_page_copy

    mapping = page.mapping
    assert isinstance(mapping, AddressSpace)
    head = page.private
    with mapping.private_lock:
        for bh in buffers(head):
            bh.b_count += 1
            lock_buffer(bh)
        page.flags &= ~PG.private
        newpage.private, page.private = head, 0
        page.count -= 1
        newpage.count += 1
        mask = newpage.node.page_size - 1
        base = newpage.pfn << newpage.node.page_shift
        for bh in buffers(head):
            bh.b_page = newpage
            bh.b_data = base + (bh.b_data & mask)
        newpage.flags |= PG.private
    migrate_page_copy(newpage, page)
    with mapping.private_lock:
        for bh in buffers(head):
            unlock_buffer(bh)
            bh.b_count -= 1
    return 0


def _racy_past_index_0(newpage: Page, page: Page) -> int:
    if page.index == 0 or not page.flags & PG.private:
        return buffer_migrate_page(newpage, page)
    return _tree_lock_twice(newpage, page)


def _racy_to_node_0(newpage: Page, page: Page) -> int:
    if newpage.node.nid != 0 or not page.flags & PG.private:
        return buffer_migrate_page(newpage, page)
    return _tree_lock_twice(newpage, page)


def _uptodate_before_copy(newpage: Page, page: Page) -> int:
    """The new page published up to date before its data is copied."""
    mapping = page.mapping
    assert isinstance(mapping, AddressSpace)
    if not page.flags & PG.private:
        return buffer_migrate_page(newpage, page)
    if mapping.kernel.semantics.migrate_page_remove_references(newpage, page, 3):
        return -EAGAIN
    newpage.flags |= page.flags & PG.uptodate
    return _finish(newpage, page)


def test_page_k_is_at_index_k_and_odd_pages_move_from_node_1_to_node_0(
    registry: Registry,
) -> None:
    fstype = registry.filesystem("ext2")
    xworld = ExploredWorld(Setup("ext2", "default", pages=4), fstype, registry)
    for target in xworld.targets:
        page = target.prepared.page
        assert (target.rindex, page.index) == (target.index, target.index)
        assert page.node.nid == target.node == target.index % 2
        assert target.target == 1 - target.node
        # The file's pages before it are on disk, not in the page cache.
        tree = target.file().inode.i_mapping.page_tree
        assert [i for i, p in enumerate(tree) if p is not None] == [target.index]
    directions = [
        ({p.node.nid for p in from_}, {p.node.nid for p in to}, nid)
        for from_, to, nid in xworld.moves
    ]
    assert directions == [({0}, {1}, 1), ({1}, {0}, 0)]


def test_the_file_pages_before_an_explored_page_read_back_whole(registry: Registry) -> None:
    """The end-of-schedule read-back reads every page of each file, also those before page k."""
    result = explore("ext2", tasks=["write"], pages=3, preemptions=0, registry=registry)
    assert result.status is Status.OK, render_text(result)


def test_a_race_only_past_a_files_first_page_is_found(registry: Registry) -> None:
    """Page 2 is index 2 of its file (and moves from node 0 to node 1, as page 0 does):
    every page was index 0 of its own file, and this table was "no schedule fails"."""
    fstype = _fstype(registry, "pastzero", _racy_past_index_0)
    result = explore(
        fstype, tasks=[TaskSpec("mmap-write", 2)], pages=3, preemptions=1, registry=registry
    )
    assert result.status in _LOST, render_text(result)


def test_a_race_only_toward_node_0_is_found(registry: Registry) -> None:
    """Page 1 moves from node 1 to node 0: every migration went from node 0 to node 1."""
    fstype = _fstype(registry, "tonode0", _racy_to_node_0)
    result = explore(
        fstype, tasks=[TaskSpec("mmap-write", 1)], pages=2, preemptions=1, registry=registry
    )
    assert result.status in _LOST, render_text(result)
    # The same task on page 2 (node 0 to node 1) passes: it is the direction that matters.
    passes = explore(
        fstype, tasks=[TaskSpec("mmap-write", 2)], pages=3, preemptions=1, registry=registry
    )
    assert passes.status is Status.OK and passes.exhausted


def test_read_fault_checks_what_the_process_read(registry: Registry) -> None:
    """The new page up to date before the copy: a fault in between maps it and reads bytes
    that are no version of the page, which the end state, copied by then, does not show."""
    fstype = _fstype(registry, "earlyuptodate", _uptodate_before_copy)
    result = explore(fstype, tasks=["read-fault"], pages=1, preemptions=1, registry=registry)
    assert result.status is Status.KERNEL_BUG, render_text(result)
    (failure,) = result.failures
    ((_, problem),) = failure.problems
    assert "read-fault@0: the process read bytes that are no version of the page" in problem


@pytest.mark.parametrize(
    ("fill", "said"),
    [
        # Only the poison says a freed frame: a zeroed page (a read of a new page that
        # was never copied into) was once called one too.
        (0x6B, "4096 bytes of 0x6b (a freed frame's poison)"),
        (0x00, "4096 bytes of 0x00 (zeroes: no version of the page was there)"),
        (0x5A, "4096 bytes of 0x5a"),
    ],
)
@pytest.mark.parametrize(("fs", "task"), [("ext2", "read-fault"), ("swap", "swapin")])
def test_a_reading_task_refuses_bytes_that_are_no_version_of_the_page(
    registry: Registry, fs: str, task: str, fill: int, said: str
) -> None:
    fstype = registry.filesystem(fs)
    setup = Setup(fs, fstype.default_mode, pages=1, tasks=(TaskSpec(task, 0),))
    xworld = ExploredWorld(setup, fstype, registry)
    ((_, _, _, body),) = xworld.tasks
    page = xworld.targets[0].prepared.page
    page_address(page)[:] = bytes([fill]) * len(page_address(page))
    with pytest.raises(FsaopsError, match=rf"^{task}@0: the process read ") as caught:
        body()  # type: ignore[operator]
    assert str(caught.value).endswith(said)
