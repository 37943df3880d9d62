"""Committing memory ahead from a thread of its own changes nothing the model can see."""

from __future__ import annotations

import mmap
import os
import sys
import threading
import time
from typing import Any

import pytest

from fsaops.backing import MADV_POPULATE_WRITE, Committer
from fsaops.config import parse_config
from fsaops.memory import anonymous_memory
from fsaops.page import PG
from fsaops.plugins import Registry
from fsaops.scenario import Scenario, plan_scenario, run_plan
from fsaops.world import World

linux = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="MADV_POPULATE_WRITE is Linux's"
)


def _threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name == "fsaops-commit"]


@linux
def test_a_committed_range_reads_as_it_did_and_the_thread_ends() -> None:
    size = 64 * mmap.PAGESIZE
    owner = mmap.mmap(-1, size)
    owner[5 * mmap.PAGESIZE : 5 * mmap.PAGESIZE + 3] = b"abc"
    committer = Committer()
    assert committer.commit(owner, 3, 20 * mmap.PAGESIZE)  # an unaligned start
    assert committer.commit(owner, 40 * mmap.PAGESIZE, 24 * mmap.PAGESIZE)
    committer.close()
    assert _threads() == []
    assert committer.committed + committer.refused == 2
    want = bytearray(size)
    want[5 * mmap.PAGESIZE : 5 * mmap.PAGESIZE + 3] = b"abc"
    assert owner[:] == bytes(want)
    owner.close()  # nothing of the committer holds the map any more


@linux
def test_the_thread_ends_by_itself_once_idle_and_starts_again() -> None:
    owner = mmap.mmap(-1, 8 * mmap.PAGESIZE)
    committer = Committer()
    assert committer.commit(owner, 0, len(owner))
    deadline = time.monotonic() + 10
    while _threads() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert _threads() == []
    assert committer.commit(owner, 0, mmap.PAGESIZE)
    committer.close()
    assert committer.committed + committer.refused == 2
    committer.close()  # twice is fine


def test_what_cannot_be_queued_is_said() -> None:
    committer = Committer()
    read_only = mmap.mmap(-1, mmap.PAGESIZE, prot=mmap.PROT_READ)
    assert not committer.commit(read_only, 0, mmap.PAGESIZE)
    closed = mmap.mmap(-1, mmap.PAGESIZE)
    closed.close()
    assert not committer.commit(closed, 0, mmap.PAGESIZE)
    assert not committer.commit(mmap.mmap(-1, mmap.PAGESIZE), 0, 0)
    committer.close()
    assert _threads() == []


@linux
def test_prefault_through_a_committer_changes_no_frame(registry: Registry) -> None:
    world = World(registry=registry, node_pages=300)
    node = world.kernel.nodes[1]
    page = node.pages[7]
    page.data[:4] = b"kept"
    order = [p.pfn for p in node.free_pages()]
    committer = Committer()
    world.prefault(1, 200, committer=committer)
    world.prefault(1, 10_000, committer=committer)
    committer.close()
    assert committer.committed + committer.refused >= 2
    assert [p.pfn for p in node.free_pages()] == order
    want = bytearray(len(node.mem))
    want[7 * world.page_size : 7 * world.page_size + 4] = b"kept"
    assert bytes(node.mem) == bytes(want)


def test_a_migration_leaves_no_committing_thread_behind(registry: Registry) -> None:
    """It commits its new frames ahead from a thread, which is gone when it returns.

    Before it ends by itself the thread lingers a while; a process that
    forks with it alive (the explorer, the plugin probe) would copy a
    process with a thread in it.
    """
    config = parse_config(
        '[kernel]\nnode_memory = "4MiB"\n[[mount]]\nfs = "ext2"\nmode = "nobh"\npages = 700\n'
        "[swap]\nslots = 0\n[processes]\ncount = 0\nanon_pages = 0\n[workload]\ndirty = 0.3\n"
    )
    plan = plan_scenario(config, registry, "test", builtin=False)
    world = Scenario(plan.config, registry, seed=3)
    assert _threads() == []
    stats = world.migrate()
    assert _threads() == []
    assert stats.tables["ext2_nobh_aops"].moved == 700


def test_without_a_thread_to_be_had_the_caller_commits(
    registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under a memory limit starting a thread can fail: prefault then commits in its own."""

    def no_thread(self: threading.Thread) -> None:
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(threading.Thread, "start", no_thread)
    committer = Committer()
    assert not committer.commit(mmap.mmap(-1, mmap.PAGESIZE), 0, mmap.PAGESIZE)
    world = World(registry=registry, node_pages=300)
    node = world.kernel.nodes[1]
    calls: list[tuple[int, int]] = []
    monkeypatch.setattr(
        "fsaops.world._commit", lambda mem, start, length: calls.append((start, length))
    )
    world.prefault(1, 200, committer=committer)
    assert calls == [(0, 200 * world.page_size)]
    assert [p.pfn for p in node.free_pages()][:200] == [p.pfn for p in node.pages[:200]]
    committer.close()


@linux
def test_a_long_range_is_committed_a_piece_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """The system holds the memory map through a request: none asks for more than a piece."""
    page = mmap.PAGESIZE
    monkeypatch.setattr("fsaops.backing.REQUEST_BYTES", 4 * page)
    owner = mmap.mmap(-1, 16 * page)
    committer = Committer()
    asked: list[tuple[int, int]] = []

    def madvise(address: int, length: int, advice: int) -> int:
        asked.append((address, length))
        return 0

    monkeypatch.setattr(committer, "_madvise", madvise)
    assert committer.commit(owner, page + 3, 9 * page)  # pages 1 to 10, a part of 10 too
    committer.close()
    base = asked[0][0] - page
    assert [(address - base, length) for address, length in asked] == [
        (page, 4 * page),
        (5 * page, 4 * page),
        (9 * page, 9 * page + 3 - 8 * page),
    ]
    assert committer.committed == 3


@linux
def test_the_build_commits_the_frames_it_fills_ahead_from_a_thread(
    registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No read of the build commits in its own thread: the builder queued every frame first."""
    config = parse_config(
        '[kernel]\nnode_memory = "4MiB"\n[[mount]]\nfs = "ext2"\nmode = "nobh"\npages = 600\n'
        "files = 3\n[swap]\nslots = 0\n[processes]\ncount = 0\nanon_pages = 0\n"
    )
    plan = plan_scenario(config, registry, "test", builtin=False)
    in_this_thread: list[tuple[int, int]] = []
    monkeypatch.setattr(
        "fsaops.world._commit", lambda mem, start, length: in_this_thread.append((start, length))
    )
    queued: list[tuple[int, int, int]] = []
    commit = Committer.commit

    def spy(self: Committer, owner: mmap.mmap, start: int, length: int) -> bool:
        queued.append((id(owner), start, length))
        return commit(self, owner, start, length)

    monkeypatch.setattr(Committer, "commit", spy)
    world = Scenario(plan.config, registry, seed=5)
    assert in_this_thread == []
    assert _threads() == []
    node = world.kernel.nodes[world.source_node]
    covered: set[int] = set()
    for owner, start, length in queued:
        if owner == id(node.mem.obj):
            covered.update(range(start // world.page_size, -(-(start + length) // world.page_size)))
    filled = {
        page.pfn - node.start_pfn
        for record in world.files
        for page in record.inode.i_mapping.page_tree
        if page is not None
    }
    assert len(filled) == 600
    assert filled <= covered


def _resident(owner: mmap.mmap) -> list[bool]:
    """Which of ``owner``'s pages the system has committed (``mincore``)."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    view = ctypes.c_char.from_buffer(owner)
    try:
        pages = -(-len(owner) // mmap.PAGESIZE)
        vec = (ctypes.c_ubyte * pages)()
        rc = libc.mincore(ctypes.c_void_p(ctypes.addressof(view)), ctypes.c_size_t(len(owner)), vec)
        assert rc == 0, ctypes.get_errno()
        return [bool(v & 1) for v in vec]
    finally:
        del view


def _takes_vectors() -> bool:
    """Whether this system commits a range asked for with ``process_madvise``, tried here."""
    import ctypes

    owner = anonymous_memory(mmap.PAGESIZE)
    view = ctypes.c_char.from_buffer(owner)
    vector = (ctypes.c_uint64 * 2)(ctypes.addressof(view), mmap.PAGESIZE)
    libc = ctypes.CDLL(None, use_errno=True)
    pidfd = os.pidfd_open(os.getpid())
    try:
        rc = libc.syscall(440, pidfd, vector, 1, MADV_POPULATE_WRITE, 0)
    finally:
        os.close(pidfd)
        del view
    return bool(rc == mmap.PAGESIZE and _resident(owner) == [True])


@linux
def test_many_short_ranges_are_committed_a_vector_at_a_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each range from the start of its page on; what the map holds stays as it was."""
    page = mmap.PAGESIZE
    monkeypatch.setattr("fsaops.backing.IOV_MAX", 3)
    owner = anonymous_memory(64 * page)  # as a device's: committed as it is written
    owner[21 * page : 21 * page + 4] = b"kept"
    starts = [page // 4 + 4 * k * page for k in range(8)]  # unaligned: each reaches a second page
    committer = Committer()
    assert committer.commit_runs(owner, starts, page)
    committer.close()
    assert _threads() == []
    resident = [i for i, r in enumerate(_resident(owner)) if r]
    want = bytearray(len(owner))
    want[21 * page : 21 * page + 4] = b"kept"
    assert owner[:] == bytes(want)
    if not _takes_vectors():
        # A system that takes no such request (an older Linux): it is asked no more.
        assert (committer.committed, committer.refused) == (0, 1)
        assert resident == [21]
        assert not committer.commit_runs(owner, starts, page)
        return
    assert committer.committed == 3  # 8 ranges, 3 a request
    assert resident == sorted({4 * k for k in range(8)} | {4 * k + 1 for k in range(8)} | {21})


def test_the_vector_names_each_range_from_its_page_iov_max_at_a_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import ctypes

    page = mmap.PAGESIZE
    monkeypatch.setattr("fsaops.backing.IOV_MAX", 2)
    owner = mmap.mmap(-1, 16 * page)
    committer = Committer()
    asked: list[list[tuple[int, int]]] = []

    def process_madvise(pidfd: int, vector: int, count: int, advice: int, flags: int) -> int:
        pairs = (ctypes.c_uint64 * (2 * count)).from_address(vector)
        asked.append([(pairs[2 * i], pairs[2 * i + 1]) for i in range(count)])
        assert (advice, flags) == (MADV_POPULATE_WRITE, 0)
        return sum(length for _address, length in asked[-1])

    monkeypatch.setattr(committer, "_vector", process_madvise)
    monkeypatch.setattr(committer, "_madvise", lambda address, length, advice: 0)
    assert committer.commit_runs(owner, [0, page + 100, 5 * page], 200)
    committer.close()
    base = asked[0][0][0]
    assert [[(address - base, length) for address, length in req] for req in asked] == [
        [(0, 200), (page, 300)],
        [(5 * page, 200)],
    ]
    assert committer.committed == 2
    with pytest.raises(ValueError, match="not inside the map"):
        committer.commit_runs(owner, [15 * page + 1], page)
    with pytest.raises(ValueError, match="not inside the map"):
        committer.commit_runs(owner, [-1], 1)


def test_a_system_that_refuses_vectors_is_asked_no_more(monkeypatch: pytest.MonkeyPatch) -> None:
    import ctypes
    import errno

    owner = mmap.mmap(-1, 4 * mmap.PAGESIZE)
    committer = Committer()
    calls: list[int] = []

    def refuse(pidfd: int, vector: int, count: int, advice: int, flags: int) -> int:
        calls.append(count)
        ctypes.set_errno(errno.EINVAL)
        return -1

    monkeypatch.setattr(committer, "_vector", refuse)
    monkeypatch.setattr(committer, "_madvise", lambda address, length, advice: 0)
    assert committer.commit_runs(owner, [0], 10)
    committer.close()
    assert (calls, committer.committed, committer.refused) == ([1], 0, 1)
    assert not committer.commit_runs(owner, [0], 10)  # nothing queued: the pages fault as before
    committer.close()
    assert calls == [1]


def _migrated(registry: Registry) -> Scenario:
    """Three files of ext2 nobh, 30 % of their pages dirty, migrated."""
    config = parse_config(
        '[kernel]\nnode_memory = "4MiB"\n[[mount]]\nfs = "ext2"\nmode = "nobh"\npages = 600\n'
        "files = 3\n[swap]\nslots = 0\n[processes]\ncount = 0\nanon_pages = 0\n"
        "[workload]\ndirty = 0.3\n"
    )
    plan = plan_scenario(config, registry, "test", builtin=False)
    world = Scenario(plan.config, registry, seed=5)
    world.migrate()
    return world


def test_the_blocks_committed_ahead_of_the_sync_are_those_of_the_dirty_pages(
    registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The durability proof's sync writes each dirty page to its blocks: those are asked for."""
    world = _migrated(registry)
    asked: list[tuple[int, list[int], int]] = []

    def spy(self: Committer, owner: mmap.mmap, starts: list[int], length: int) -> bool:
        asked.append((id(owner), list(starts), length))
        return commit_runs(self, owner, starts, length)

    commit_runs = Committer.commit_runs
    monkeypatch.setattr(Committer, "commit_runs", spy)
    (record,) = {id(r.inode.i_sb.s_bdev): r for r in world.files}.values()
    bdev = record.inode.i_sb.s_bdev
    bs = bdev.block_size
    per_page = world.page_size // bs
    want = sorted(
        r.inode.blocks[page.index * per_page] * bs
        for r in world.files
        for page in r.inode.i_mapping.page_tree
        if page is not None and page.flags & PG.dirty
    )
    assert len(want) >= 100
    with Committer() as committer:
        world.world.commit_ahead_of_writeback(committer)
    assert [(owner, sorted(starts), length) for owner, starts, length in asked] == [
        (id(bdev._mem.obj), want, world.page_size)
    ]
    assert _threads() == []


def test_committing_ahead_of_the_sync_changes_no_report(
    registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same run with and without the device memory committed ahead reports the same."""
    config = parse_config(
        '[kernel]\nnode_memory = "4MiB"\n[[mount]]\nfs = "ext2"\nmode = "nobh"\npages = 500\n'
        "files = 2\n[workload]\ndirty = 0.4\n"
    )
    plan = plan_scenario(config, registry, "test", builtin=False)
    queued: list[int] = []
    commit_ahead = World.commit_ahead_of_writeback

    def spy(self: World, committer: Committer) -> None:
        queued.append(1)
        commit_ahead(self, committer)

    monkeypatch.setattr(World, "commit_ahead_of_writeback", spy)
    ahead = run_plan(plan, seed=11).to_json()
    assert queued == [1]
    assert _threads() == []
    monkeypatch.setattr(World, "commit_ahead_of_writeback", lambda self, committer: None)
    assert run_plan(plan, seed=11).to_json() == ahead
    assert ahead["status"] == "ok"


def test_a_file_whose_fields_plugin_code_broke_is_left_out_of_the_hint(
    registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing is raised where no proof would name the field; the other files are asked for."""
    world = _migrated(registry)
    first, second, third = world.files

    class Boom:
        def __and__(self, other: object) -> int:
            raise RuntimeError("plugin code's flags")

    dirty = next(
        p for p in second.inode.i_mapping.page_tree if p is not None and p.flags & PG.dirty
    )
    flags = dirty.flags
    monkeypatch.setattr(first.inode, "blocks", "not a block map")
    asked: list[list[int]] = []

    def spy(self: Committer, owner: mmap.mmap, starts: list[int], length: int) -> bool:
        asked.append(sorted(starts))
        return True

    monkeypatch.setattr(Committer, "commit_runs", spy)
    bs = third.inode.i_sb.s_bdev.block_size
    per_page = world.page_size // bs
    want = sorted(
        third.inode.blocks[page.index * per_page] * bs
        for page in third.inode.i_mapping.page_tree
        if page is not None and page.flags & PG.dirty
    )
    dirty.flags = Boom()  # type: ignore[assignment]
    try:
        with Committer() as committer:
            world.world.commit_ahead_of_writeback(committer)
    finally:
        dirty.flags = flags
    assert asked == [want]


def test_a_device_asks_only_for_block_numbers_it_has(monkeypatch: pytest.MonkeyPatch) -> None:
    from fsaops.fs import BlockDevice

    bdev = BlockDevice("sdz", 64, 1024)
    asked: list[tuple[list[int], int]] = []

    def spy(self: Committer, owner: mmap.mmap, starts: list[int], length: int) -> bool:
        asked.append((list(starts), length))
        return True

    monkeypatch.setattr(Committer, "commit_runs", spy)
    firsts: list[Any] = [3, "3", None, 2.0, -1, 0, 60, 61, True, 5]
    assert bdev.commit_ahead(Committer(), firsts, 4096)
    assert asked == [([3 * 1024, 60 * 1024, 5 * 1024], 4096)]  # 61 on would run off the end
