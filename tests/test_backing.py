"""Committing memory ahead from a thread of its own changes nothing the model can see."""

from __future__ import annotations

import mmap
import sys
import threading
import time

import pytest

from fsaops.backing import Committer
from fsaops.config import parse_config
from fsaops.plugins import Registry
from fsaops.scenario import Scenario, plan_scenario
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
