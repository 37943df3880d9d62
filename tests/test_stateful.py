"""A Hypothesis state machine over the whole system.

Random worlds (filesystems, modes, block sizes, swap), random writes through
files and mappings, random contention (page locks, extra references,
writeback in flight, mlocked mappings) and injected faults, and migrations
back and forth between the nodes.  After every step every invariant holds
and every byte written reads back.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, settings
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from fsaops.debug import check_kernel
from fsaops.fault_inject import FaultInjector
from fsaops.fs import Inode, generic_file_read, generic_file_write
from fsaops.memory_hotplug import migrate_node
from fsaops.mempolicy import MPOL_MF_MOVE_ALL, do_migrate_pages
from fsaops.page import PG, Page
from fsaops.plugins import Registry, load_plugins
from fsaops.rmap import Mm, Vma
from fsaops.sched import hold
from fsaops.world import World
from fsaops.writeback import set_page_dirty, write_one_page

PAGE = 4096
MOUNTS = [
    ("ext2", "default", 1024),
    ("ext2", "default", 4096),
    ("ext2", "nobh", 2048),
    ("ext3", "ordered", 1024),
    ("ext3", "writeback", 4096),
    ("ext3", "journal", 1024),
    ("xfs", "default", 1024),
    ("xfs", "default", 4096),
]

_REGISTRY: list[Registry] = []

#: What every example of the run did, summed (printed with ``-s``).
TOTALS: Counter[str] = Counter()


def registry() -> Registry:
    if not _REGISTRY:
        _REGISTRY.append(load_plugins(cli="ext2,ext3,xfs,swap,xfs_buftarg"))
    return _REGISTRY[0]


class MigrationMachine(RuleBasedStateMachine):
    """The model of what was written, checked against the machine after every step."""

    def __init__(self) -> None:
        super().__init__()
        self.world: World
        self.files: list[tuple[Inode, bytearray]] = []
        self.areas: list[tuple[Mm, Vma, bytearray]] = []
        self.faults = FaultInjector()
        self.src = 0
        self.moved = 0

    @initialize(
        mounts=st.lists(st.sampled_from(MOUNTS), min_size=1, max_size=3),
        swap=st.sampled_from([0, 4, 64]),
        seed=st.integers(0, 2**16),
    )
    def build(self, mounts: list[tuple[str, str, int]], swap: int, seed: int) -> None:
        self.faults = FaultInjector(seed=seed)
        world = self.world = World(
            registry=registry(), node_pages=160, swap_slots=swap, faults=self.faults, seed=seed
        )
        for fs, mode, bs in mounts:
            sb = world.mount(fs, mode, block_size=bs)
            if fs == "ext3":
                sb.s_fs_info.set_commit_interval(24)
            record = world.create_file(sb)
            world.write_file(record, 6)
            self.files.append((record.inode, bytearray(world.contents.pages(record.owner, 0, 6))))
        area = world.anon(6)
        self.areas.append((area.mm, area.vma, bytearray(world.contents.pages(area.owner, 0, 6))))

    # -- helpers ----------------------------------------------------------------

    def cached_pages(self) -> list[Page]:
        return [p for inode, _ in self.files for p in inode.i_mapping.pages()]

    # -- writes ------------------------------------------------------------------

    @rule(data=st.data(), text=st.binary(min_size=1, max_size=300))
    def write_file(self, data: st.DataObject, text: bytes) -> None:
        inode, model = data.draw(st.sampled_from(self.files))
        pos = data.draw(st.integers(0, len(model) - 1))
        text = text[: len(model) - pos]
        generic_file_write(inode, pos, text)
        model[pos : pos + len(text)] = text

    @rule(data=st.data(), text=st.binary(min_size=1, max_size=300))
    def write_memory(self, data: st.DataObject, text: bytes) -> None:
        mm, vma, model = data.draw(st.sampled_from(self.areas))
        pos = data.draw(st.integers(0, len(model) - 1))
        text = text[: len(model) - pos]
        mm.write(vma.vm_start * PAGE + pos, text)
        model[pos : pos + len(text)] = text

    @rule(data=st.data(), locked=st.booleans())
    def map_file(self, data: st.DataObject, locked: bool) -> None:
        inode, model = data.draw(st.sampled_from(self.files))
        mm = self.areas[0][0]
        npages = len(model) // PAGE
        vma = mm.mmap_file(inode, 0, npages, locked=locked)
        mm.read(vma.vm_start * PAGE, len(model))  # fault every page in
        self.areas.append((mm, vma, model))  # the same bytes, seen through the mapping

    # -- contention ------------------------------------------------------------------

    @precondition(lambda self: bool(self.cached_pages()))
    @rule(
        data=st.data(), kind=st.sampled_from(["page_lock", "page_ref"]), ticks=st.integers(1, 400)
    )
    def contend(self, data: st.DataObject, kind: str, ticks: int) -> None:
        page = data.draw(st.sampled_from(self.cached_pages()))
        if kind == "page_lock" and page.flags & PG.locked:
            return
        kernel = self.world.kernel
        hold(kernel.new_task("other"), kernel.sched, kind, page, ticks)

    @precondition(lambda self: bool(self.cached_pages()))
    @rule(data=st.data())
    def dirty_or_write_back(self, data: st.DataObject) -> None:
        page = data.draw(st.sampled_from(self.cached_pages()))
        if page.flags & PG.locked:
            return
        if data.draw(st.booleans()):
            set_page_dirty(page)
        else:
            write_one_page(page, wait=False)

    @rule(ticks=st.integers(1, 200))
    def let_time_pass(self, ticks: int) -> None:
        self.world.kernel.sched.run_for(ticks)

    # -- migration ----------------------------------------------------------------------

    @rule(
        alloc_fail=st.sampled_from([0.0, 0.0, 0.05]),
        writepage_error=st.sampled_from([0.0, 0.0, 0.3]),
    )
    def migrate_the_node(self, alloc_fail: float, writepage_error: float) -> None:
        kernel = self.world.kernel
        dst = 1 - self.src
        self.faults.alloc_fail = alloc_fail
        self.faults.writepage_error = writepage_error
        self.faults.armed = True
        try:
            result = migrate_node(kernel, self.src, dst)
        finally:
            self.faults.armed = False
        self.moved += result.isolated - result.left
        TOTALS["migrations"] += 1
        kernel.alloc_nid = dst
        self.src = dst

    @rule()
    def migrate_again(self) -> None:
        self.migrate_the_node(0.0, 0.0)

    @rule()
    def migrate_the_process(self) -> None:
        mm = self.areas[0][0]
        dst = 1 - self.src
        do_migrate_pages(mm, {self.src}, {dst}, MPOL_MF_MOVE_ALL)

    # -- invariants ---------------------------------------------------------------------

    @invariant()
    def nothing_is_broken(self) -> None:
        problems = check_kernel(self.world.kernel, quiet=False)
        assert problems == [], problems[:5]

    @invariant()
    def every_byte_reads_back(self) -> None:
        for inode, model in self.files:
            assert generic_file_read(inode, 0, len(model)) == bytes(model)
            TOTALS["bytes checked"] += len(model)
        for mm, vma, model in self.areas:
            assert mm.read(vma.vm_start * PAGE, len(model)) == bytes(model)
            TOTALS["bytes checked"] += len(model)
        TOTALS["checks"] += 1

    def teardown(self) -> None:
        from hypothesis import event

        event("pages moved" if self.moved else "nothing moved")
        TOTALS["examples"] += 1
        TOTALS["pages moved"] += self.moved
        TOTALS["faults injected"] += sum(self.faults.injected.values())
        kernel = self.world.kernel
        kernel.run_until_idle()
        assert check_kernel(kernel) == []


settings_for: dict[str, Any] = {
    "stateful_step_count": 25,
    "deadline": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
}
MigrationMachine.TestCase.settings = settings(**settings_for)
TestMigrationMachine = MigrationMachine.TestCase


@pytest.fixture(autouse=True, scope="module")
def _report_totals() -> Iterator[None]:
    start = time.perf_counter()
    yield
    if TOTALS:
        seconds = time.perf_counter() - start
        print("\nstate machine totals:", dict(sorted(TOTALS.items())))
        print(
            f"state machine: {TOTALS['examples']} examples in {seconds:.1f} s, "
            f"{TOTALS['examples'] / seconds:.1f} examples/s"
        )
