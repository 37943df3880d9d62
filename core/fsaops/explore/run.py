"""One schedule: run the tasks on the explored machine, then check everything.

:func:`execute` turns the machine an :class:`~fsaops.explore.setup.ExploredWorld`
built into an explored kernel (its locks, scheduler and nodes replaced, see
:mod:`fsaops.explore.runtime`), runs the migration task and the accessor
tasks under a :class:`~fsaops.explore.runtime.Controller`, and checks the
end state the way ``fsaops migrate`` does: the invariants of the whole
machine (:func:`~fsaops.debug.check_kernel`), where every page went (the
placement proof), every page read back through the model (the oracle),
and every page read back from its backing store after a sync and a dropped
cache (the durability proof).  It changes the machine for good: the
search runs it in a forked child, which is thrown away.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, cast

from fsaops.debug import check_kernel
from fsaops.errors import CannotStart, KernelBug
from fsaops.explore.runtime import (
    ALL,
    Controller,
    ExploredNode,
    ExploredScheduler,
    PageTree,
    Policy,
    Semaphore,
    Spinlock,
)
from fsaops.lists import PageList, list_del
from fsaops.lru import putback_lru_pages
from fsaops.migrate import MigrateStats, migrate_pages
from fsaops.mutex import explored_by
from fsaops.page import Page, page_address, put_page
from fsaops.proofs import ledger, prove_durability, prove_placement
from fsaops.sched import Event
from fsaops.status import Status

if TYPE_CHECKING:
    from fsaops.buffer import BufferHead
    from fsaops.explore.setup import ExploredWorld
    from fsaops.kernel import Kernel
    from fsaops.typing import EngineLog

__all__ = ["RunResult", "execute", "install"]

RunResult = dict[str, Any]
"""What a schedule came to, as plain data (it crosses a pipe from the child).

Keys: ``trace`` (one ``(current, chosen, enabled, masks)`` per point),
``names``, ``keys`` and ``footprints`` (the tasks, by number), ``outcome``, ``diverged`` (why a
schedule replayed exactly could not be, else empty), ``problems`` (a list of
``(status, sentence)``), ``reasons`` (why the migration gave pages up, as
the engine said), ``labels`` (with ``record``, or for a schedule stopped for
taking too long: ``(task, kind, function, page, pfn, lock)`` of each step),
``seconds``, ``orders`` (the spinlock orders the schedule made that were not
known before it, as :meth:`~fsaops.explore.lockdep.LockOrder.to_list` says
them) and ``orders_used`` (those of earlier schedules its failure rests on)."""

SCHEDULE_SECONDS: Final = 60.0
"""Wall time one schedule may take before it is stopped and reported."""

TARGET_NID: Final = 1
"""The node the checks after a schedule read pages in on."""


class _WhyLog:
    """A logger for the engine that keeps only why it gave pages up (its ``why`` field)."""

    def __init__(self) -> None:
        self.reasons: set[str] = set()

    def is_enabled_for(self, level: int) -> bool:
        return level >= logging.DEBUG

    def debug(self, event: str, **fields: Any) -> None:
        why = fields.get("why")
        if why:
            self.reasons.add(str(why))

    def info(self, event: str, **fields: Any) -> None:
        """Not kept."""


def install(xworld: ExploredWorld, ctl: Controller) -> None:
    """Make the machine an explored kernel: its spinlocks, scheduler and nodes (see runtime).

    The tables' own :class:`~fsaops.mutex.Mutex` locks become the explored
    kernel's too.
    """
    kernel = xworld.kernel
    pages = xworld.pages
    mappings = [inode.i_mapping for sb in kernel.super_blocks for inode in sb.inodes]
    if kernel.swapper_space is not None:
        mappings.append(kernel.swapper_space)
    for mapping in mappings:
        mask = pages.of(mapping)
        mapping.tree_lock = Spinlock(ctl, f"tree_lock of {mapping.name}", mask)  # type: ignore[assignment]
        mapping.page_tree = PageTree(mapping.page_tree, mapping.name, mapping.tree_lock)  # type: ignore[arg-type]
        mapping.private_lock = Spinlock(ctl, f"private_lock of {mapping.name}", mask)  # type: ignore[assignment]
        mapping.i_mmap_lock = Spinlock(ctl, f"i_mmap_lock of {mapping.name}", mask)  # type: ignore[assignment]
    for mm in kernel.mms:
        mask = pages.of(mm)
        mm.page_table_lock = Spinlock(ctl, f"page_table_lock of {mm.name}", mask)  # type: ignore[assignment]
        mm.mmap_sem = Semaphore(ctl, f"mmap_sem of {mm.name}", mask)  # type: ignore[assignment]
        for vma in mm.vmas:
            anon_vma = vma.anon_vma
            if anon_vma is not None:
                anon_vma.lock = Spinlock(  # type: ignore[assignment]
                    ctl, f"anon_vma lock of {mm.name}", pages.of(anon_vma)
                )
    spawn = _spawner(xworld, ctl)
    scheduler = type(
        "ExploredScheduler",
        (ExploredScheduler,),
        {"__slots__": (), "ctl": ctl, "spawn": staticmethod(spawn)},
    )
    kernel.sched.__class__ = scheduler
    for node in kernel.nodes:
        node.__class__ = ExploredNode
    explored_by(ctl)  # the tables' own locks (fsaops.Mutex)


def _spawner(
    xworld: ExploredWorld, ctl: Controller
) -> Callable[[Callable[..., object], tuple[Any, ...], Event], tuple[str, int, Any]]:
    """What turns an event the kernel schedules into a task: its name, page mask and body.

    The write of an I/O is done again when it completes, from the frame it
    was submitted with: the DMA reads that frame until the end of the I/O.
    """

    def spawn(
        fn: Callable[..., object], args: tuple[Any, ...], event: Event
    ) -> tuple[str, int, Any]:
        name = getattr(fn, "__name__", "event").strip("_")
        page = _page_of(args)
        _, mask = ctl.pages.page(page)
        dma = _dma(fn, args)

        def body() -> None:
            if event.cancelled:
                return
            for dst, src in dma:
                dst[:] = src
            fn(*args)

        return f"{name}:{len(ctl.tasks)}", mask, body

    return spawn


def _page_of(args: tuple[Any, ...]) -> Page | None:
    from fsaops.buffer import BufferHead

    for arg in args:
        if isinstance(arg, Page):
            return arg
        if isinstance(arg, BufferHead):
            return arg.b_page
    return None


def _dma(fn: Callable[..., object], args: tuple[Any, ...]) -> list[tuple[memoryview, memoryview]]:
    """(device bytes, frame bytes) an I/O completion writes again, for writes the model knows."""
    name = getattr(fn, "__name__", "")
    if name == "_end_buffer_async_write" and args:
        bh: BufferHead = args[0]
        bdev = bh.b_bdev
        if bdev is None:
            return []
        start = bh.b_blocknr * bdev.block_size
        return [(bdev.mem[start : start + bh.b_size], _bh_frame(bh))]
    if name == "_end_swap_write" and args:
        page: Page = args[0]
        swap = page.node.kernel.swap
        if swap is None or not page.private:
            return []
        return [(swap.slot(page.private), page_address(page))]
    if name == "end_page_writeback" and args:
        return _nobh_blocks(args[0])
    return []


def _bh_frame(bh: BufferHead) -> memoryview:
    page = bh.b_page
    node = page.node
    off = ((page.pfn - node.start_pfn) << node.page_shift) + (bh.b_data & (node.page_size - 1))
    return node.mem[off : off + bh.b_size]


def _nobh_blocks(page: Page) -> list[tuple[memoryview, memoryview]]:
    """The blocks ``nobh_writepage`` wrote from a page (a page without buffers)."""
    mapping = page.mapping
    host = getattr(mapping, "host", None)
    if host is None or getattr(mapping, "anon", True):
        return []
    bs = host.i_sb.s_blocksize
    per_page = page.node.page_size // bs
    first = page.index * per_page
    last = (host.i_size - 1) // bs if host.i_size else -1
    data = page_address(page)
    bdev = host.i_sb.s_bdev
    out = []
    for i in range(per_page):
        block = first + i
        if block > last or block >= len(host.blocks):
            break
        start = host.blocks[block] * bs
        out.append((bdev.mem[start : start + bs], data[i * bs : (i + 1) * bs]))
    return out


def execute(
    xworld: ExploredWorld,
    *,
    forced: list[int] | tuple[int, ...] = (),
    policy: Policy | None = None,
    record: bool = False,
    timeout: float = SCHEDULE_SECONDS,
) -> RunResult:
    """Run one schedule on the machine and check it (this changes the machine for good).

    Raises:
        CannotStart: the system refused a task's thread (a limit of the environment).
    """
    start = time.perf_counter()
    kernel = xworld.kernel
    ctl = Controller(
        kernel,
        xworld.pages,
        forced=forced,
        policy=policy,
        record=record,
        lock_orders=xworld.lock_orders,
    )
    xworld.rt.ctl = ctl
    log = _WhyLog()
    kernel.log = cast("EngineLog", log)
    install(xworld, ctl)
    stats = MigrateStats()

    def migrate() -> None:
        # A direction at a time (node 0 to node 1, then node 1 to node 0), as
        # sys_migrate_pages migrates node by node.
        for from_, to, _nid in xworld.moves:
            moved, failed = PageList("moved"), PageList("failed")
            migrate_pages(from_, to, moved, failed, stats=stats, kernel=kernel)
            # As migrate_pages_to does: the old pages go back (and are freed),
            # the spare new pages too.
            putback_lru_pages(moved)
            putback_lru_pages(failed)
            putback_lru_pages(from_)
            for page in list(to):
                list_del(page)
                put_page(page)

    ctl.add("migrate", kernel.current, ALL, migrate, "m")
    for j, (name, task, mask, body) in enumerate(xworld.tasks):
        ctl.add(name, task, mask, body, f"a{j}")  # type: ignore[arg-type]
    spawn = _spawner(xworld, ctl)
    for event in kernel.sched.take_pending():
        name, mask, body = spawn(event.fn, event.args, event)
        ctl.add_io(name, kernel.current, mask, body, None)
    ctl.run(timeout)
    if ctl.outcome == "cannot start":  # a task's thread: the system's limit, no verdict
        raise CannotStart(ctl.problem)
    problems: list[tuple[str, str]] = []
    if ctl.outcome == "diverged":
        pass  # no verdict on a schedule that is not the one asked for: ``outcome`` says so
    elif ctl.outcome == "foreign lock":
        # Not the table's bug: a lock the explorer cannot schedule.
        problems.append((Status.BAD_INPUT.value, ctl.problem))
    elif ctl.outcome != "done":
        problems.append((Status.KERNEL_BUG.value, ctl.problem))
    else:
        problems = _check(xworld, stats)
        problems += _raised(stats)
    labels = ctl.labels if record or ctl.outcome == "too long" else []
    return {
        "trace": ctl.trace,
        "names": [t.name for t in ctl.tasks],
        "keys": [t.key for t in ctl.tasks],
        "footprints": [t.footprint for t in ctl.tasks],
        "outcome": ctl.outcome,
        "diverged": ctl.problem if ctl.outcome == "diverged" else "",
        "problems": problems,
        "reasons": sorted(log.reasons),
        "labels": [(tid, *label[:5]) for tid, label in labels],
        "seconds": time.perf_counter() - start,
        "orders": [order.to_list() for order in ctl.lockdep.new],
        "orders_used": [order.to_list() for order in ctl.lockdep.used],
    }


_THREAD_MARKS: Final = ("AttributeError", "thread")
"""Words of an exception that may come of running in a thread other than the importing one."""


def _raised(stats: MigrateStats) -> list[tuple[str, str]]:
    """A ``migratepage`` that raised (or returned neither 0 nor an errno): a ``return`` finding.

    The engine fails such a page with ``-EIO`` and goes on, so the end state
    checks pass: the page stayed whole where it was.  But it is a bug of the
    table, as ``fsaops migrate --strict`` counts it, and a table whose every
    call raises has had nothing explored.  Each task of a schedule runs in a
    thread of its own, not in the thread that imported the plugin: state a
    plugin set up at import for its thread is not there.
    """
    problems = []
    for finding in stats.findings.result():
        if finding.kind != "return":
            continue
        pages = _plural(finding.count, "page")
        said = (
            f"table {finding.table}: {finding.example}, on {pages} (each failed with "
            "-EIO): a bug, as fsaops migrate --strict counts it (a return finding)"
        )
        if any(mark in finding.example for mark in _THREAD_MARKS):
            said += (
                "; explore runs each task in a thread of its own, where state a plugin set up "
                "at import for its thread is not there"
            )
        problems.append((Status.FINDINGS.value, said))
    return problems


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _check(xworld: ExploredWorld, stats: MigrateStats) -> list[tuple[str, str]]:
    """The full check of the end state: invariants, placement, read-back, durability."""
    kernel: Kernel = xworld.kernel
    world = xworld.world
    problems: list[tuple[str, str]] = []
    invariant = Status.INVARIANT_BROKEN.value
    lost = Status.DATA_LOST.value
    try:
        kernel.run_until_idle()
        problems += [(invariant, p) for p in check_kernel(kernel)]
        truncated = xworld.truncated
        for target, before in xworld.places:
            places = (
                before.select(lambda record, _page: id(record) not in truncated)
                if truncated
                else before
            )
            placement = prove_placement(world, places, ledger(stats), target_nid=target)
            problems += [(invariant, p) for p in placement.problems]
        views = [v for v in xworld.views if id(v[0]) not in truncated]
        kernel.alloc_nid = TARGET_NID
        readback = world.oracle.read_back(world, views=views)
        for p in readback.problems:
            problems.append((lost if ": lost" in p else Status.DATA_LOST.value, p))
        kernel.run_until_idle()
        durability = prove_durability(world, views=views)
        problems += [(lost, p) for p in durability.problems]
        if not problems:
            problems += [(invariant, p) for p in check_kernel(kernel)]
    except KernelBug as exc:
        problems.append((Status.KERNEL_BUG.value, f"checking the end state: {exc}"))
    return problems
