"""Real threads read and write while the memory migrates back and forth.

Modelled on the kernel's ``tools/testing/selftests/mm/migration.c``: worker
threads keep touching pages (through a process's mappings and through the
page cache) while the main thread migrates the same memory between two
nodes.  Readers and writers block on page locks exactly where the kernel's
would; afterwards no write is lost, no page is torn, and every invariant
holds.
"""

from __future__ import annotations

import os
import random
import sys
import threading
import time

import attrs

from fsaops.debug import check_kernel
from fsaops.fs import Inode, generic_file_read, generic_file_write
from fsaops.memory_hotplug import migrate_node
from fsaops.plugins import Registry
from fsaops.rmap import Mm
from fsaops.world import World

PAGE = 4096
ROUNDS = int(os.environ.get("FSAOPS_STRESS_ROUNDS", "12"))
THREAD_PAGES = 4
SWITCH_INTERVAL = 2e-5
MAX_ROUNDS = 400


def pattern(owner: int, index: int, version: int) -> bytes:
    """A page that says who wrote it and when, all over."""
    word = f"[{owner:02d}:{index:03d}:{version:06d}]".encode()
    return (word * (PAGE // len(word) + 1))[:PAGE]


def version_of(page: bytes) -> tuple[int, int, int]:
    owner, index, version = page[1 : page.index(b"]")].decode().split(":")
    return int(owner), int(index), int(version)


@attrs.define
class Worker:
    """One thread's pages, and what it last wrote to each."""

    owner: int
    kind: str  # "anon", "mmap" or "file"
    pages: list[int]
    written: dict[int, int] = attrs.field(factory=dict)
    errors: list[str] = attrs.field(factory=list)
    ops: int = 0


def run_worker(
    worker: Worker, mm: Mm, base: int, inode: Inode, stop: threading.Event, seed: int
) -> None:
    rng = random.Random(seed)
    try:
        while not stop.is_set():
            index = rng.choice(worker.pages)
            version = worker.written.get(index, 0) + 1
            data = pattern(worker.owner, index, version)
            if worker.kind == "file":
                generic_file_write(inode, index * PAGE, data)
                back = generic_file_read(inode, index * PAGE, PAGE)
            else:
                mm.write((base + index) * PAGE, data)
                back = mm.read((base + index) * PAGE, PAGE)
            worker.written[index] = version
            worker.ops += 1
            if back != data:
                got = version_of(back)
                worker.errors.append(f"{worker.kind} page {index}: wrote v{version}, read {got}")
                return
    except Exception as exc:  # a failure in a thread must reach the test
        worker.errors.append(f"{type(exc).__name__}: {exc}")


def run_reader(mm: Mm, base: int, npages: int, stop: threading.Event, errors: list[str]) -> None:
    rng = random.Random(7)
    try:
        while not stop.is_set():
            index = rng.randrange(npages)
            page = mm.read((base + index) * PAGE, PAGE)
            if page == bytes(PAGE):
                continue  # not written yet
            owner, idx, version = version_of(page)
            if page != pattern(owner, idx, version):
                errors.append(f"torn page {index}: starts as v{version} of {owner}")
                return
    except Exception as exc:
        errors.append(f"reader: {type(exc).__name__}: {exc}")


def test_threads_keep_their_data_while_pages_migrate(registry: Registry) -> None:
    world = World(registry=registry, node_pages=512, swap_slots=256)
    kernel = world.kernel
    kinds = ["anon", "anon", "mmap", "file"]
    workers = [
        Worker(i, kind, list(range(i * THREAD_PAGES, (i + 1) * THREAD_PAGES)))
        for i, kind in enumerate(kinds)
    ]
    npages = len(workers) * THREAD_PAGES
    sb = world.mount("ext2")
    inode = sb.new_inode()
    generic_file_write(inode, 0, bytes(npages * PAGE))
    mm = kernel.new_mm()
    anon = mm.mmap_anon(npages)
    shared = mm.mmap_file(inode, 0, npages)
    stop = threading.Event()
    reader_errors: list[str] = []
    threads = []
    for n, worker in enumerate(workers):
        base = shared.vm_start if worker.kind == "mmap" else anon.vm_start
        threads.append(threading.Thread(target=run_worker, args=(worker, mm, base, inode, stop, n)))
    threads.append(
        threading.Thread(target=run_reader, args=(mm, anon.vm_start, npages, stop, reader_errors))
    )
    kernel.sched.threads = len(threads)
    moved = 0
    started = time.perf_counter()
    # Switch threads every 20 µs instead of every 5 ms, so that workers run
    # while the migration holds page locks, as other CPUs would.
    interval = sys.getswitchinterval()
    sys.setswitchinterval(SWITCH_INTERVAL)
    for t in threads:
        t.start()
    try:
        time.sleep(0.05)
        round_ = 0
        # At least ROUNDS rounds, and more (up to MAX_ROUNDS) until workers
        # have been seen sleeping on a page lock the migration holds.
        while round_ < ROUNDS or (kernel.sched.sleeps < 3 and round_ < MAX_ROUNDS):
            src, dst = round_ % 2, 1 - round_ % 2
            round_ += 1
            kernel.alloc_nid = dst
            result = migrate_node(kernel, src, dst)
            moved += result.isolated - result.left
            time.sleep(0.005)
    finally:
        stop.set()
        for t in threads:
            t.join(60)
        sys.setswitchinterval(interval)
        kernel.sched.threads = 0
    seconds = time.perf_counter() - started
    print(
        f"\nstress: {round_} rounds in {seconds:.2f} s ({round_ / seconds:.1f} rounds/s), "
        f"{moved} pages moved, {sum(w.ops for w in workers)} worker operations"
    )
    assert not any(t.is_alive() for t in threads), "a thread hung"
    errors = reader_errors + [e for w in workers for e in w.errors]
    assert errors == []
    assert moved > ROUNDS, "pages really moved while the threads ran"
    assert kernel.sched.sleeps > 0, "workers slept on page locks the migration held"
    assert all(w.ops > 0 for w in workers)
    kernel.run_until_idle()
    assert check_kernel(kernel) == []
    for worker in workers:
        for index, version in worker.written.items():
            if worker.kind == "file":
                got = generic_file_read(inode, index * PAGE, PAGE)
            else:
                base = shared.vm_start if worker.kind == "mmap" else anon.vm_start
                got = mm.read((base + index) * PAGE, PAGE)
            assert got == pattern(worker.owner, index, version), f"lost write on {worker.kind}"
