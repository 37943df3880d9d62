"""The benchmark: the performance figures of docs/performance.md, as ratios in one process.

Every figure compares two ways of doing the same work, in the same
process, on the same pages:

``engine_vs_bare``
    ``migrate_pages`` on a prepared list of isolated pages with a prepared
    ``to`` list, against a bare loop doing only the irreducible work of
    migrating a page (swap the page-tree slot, copy the flags, copy the
    4 KiB) on the same pages.  Reported for a table without buffers
    (``ext2_nobh_aops``) and one with four buffer heads a page
    (``ext2_aops``, 1 KiB blocks).
``registry_vs_direct``
    The same migration with the table the plugin registry handed to
    ``Kernel.mount``, against a table built here from the same functions.
``scaling``
    Ten times the pages against the base count, with one page in ten
    contended (an extra reference or the page lock held by another task
    until the end of the first pass).
``log_filtered_vs_off``
    A structlog filtering logger at INFO (the engine's per-page events are
    at DEBUG) against no logger.
``metadata_bytes``
    The bytes of Python memory a page costs (``tracemalloc``): its
    ``struct page`` object, its frame number, its ``mem_map`` and page-tree
    slots, its index and its LRU links; not its data (in the node's memory
    map) and not its buffer heads (reported apart).
``end_to_end[ext2_nobh_aops]``
    The engine's pages per second for ``ext2_nobh_aops`` dirty pages (from
    the rates below) against those of a whole ``fsaops migrate`` run of
    ten times the base count of pages on one ext2 nobh mount, 30 % dirty:
    the command's wall clock from start to exit (a child process: start-up,
    building the world, migrating, the proofs, reading back and the
    report), and the same at the base count, with where the time of one
    run goes.

How: each repetition isolates the pages and deals them into batches of
:data:`PART_PAGES`; the two sides take turns on the batches (A B B A ...,
the other way round in the next repetition; the bare loop and the engine
both run on every batch, each first on every other one), so both see the
same machine at the same moments.  A repetition's ratio is A's time over
B's, and a figure is the median over the repetitions, after one warm-up.
The scaling figure alternates whole runs instead.  Times are CPU time of
this process, with the collector paused (as :mod:`timeit` does), and
everything a timed section needs is set up before it, untimed.  Every
figure comes with the spread of its repetitions.

Besides the figures it reports pages per second for every loaded table
(clean and dirty pages), and with ``--million`` the time and peak memory of
migrating a million pages, and of a whole ``fsaops migrate`` of a million
pages (each in a child process, so its peak is its own).

Plugins are selected as for ``fsaops migrate`` (``--plugins``, then
``FSAOPS_PLUGINS``, else every installed plugin); a plugin not selected is
never imported.  The figures measure ext2's tables; a figure whose table
no selected plugin provides is skipped, and the report says which and why.

Run it as ``fsaops bench [--json] [--pages N] [--repeat R] [--plugins NAME,...]
[--semantics NAME]`` (or ``python -m fsaops.bench``); ``--semantics`` runs
every machine under one release of the migration code
(:mod:`fsaops.semantics`), so the figures can be checked under each.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import io
import json
import logging
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, NoReturn, TextIO

import attrs

from fsaops.aops import AddressSpaceOperations
from fsaops.buffer import create_empty_buffers
from fsaops.errors import RunTimeout, cannot_start, describe_exception, interrupt_told
from fsaops.fs import Inode
from fsaops.lists import PageList, list_add, list_add_tail, list_del
from fsaops.lru import isolate_lru_page, putback_lru_pages
from fsaops.mapping import AddressSpace, add_to_page_cache_lru
from fsaops.memory_hotplug import migrate_node
from fsaops.migrate import MigrateStats, migrate_pages
from fsaops.page import PG, Page, put_page, unlock_page
from fsaops.plugins import Registry, load_plugins
from fsaops.rmap import Mm
from fsaops.sched import hold
from fsaops.semantics import DEFAULT_SEMANTICS, SEMANTICS
from fsaops.status import Status
from fsaops.world import World

if TYPE_CHECKING:
    from fsaops.typing import EngineLog
from fsaops.writeback import filemap_write_and_wait, set_page_dirty, write_one_page

__all__ = ["Figure", "main", "run"]

DEFAULT_PAGES = 10_000
DEFAULT_REPEAT = 11
QUICK_PAGES = 400
QUICK_REPEAT = 2
MILLION = 1_000_000
MIN_PAGES = 20
MAX_PAGES = 50_000  # the scaling figure builds ten times as many, twice
MAX_REPEAT = 100
DOCS = "docs/performance.md"

#: The tables the engine figures use: one without buffers, one with.
BUFFERLESS = ("ext2", "nobh", 4096)
WITH_BUFFERS = ("ext2", "default", 1024)
#: The end-to-end figure's mount: ext2 nobh with ext2's default (1 KiB) blocks,
#: as a scenario that names no block size gets, and as the rates measure it.
END_TO_END = ("ext2", "nobh", 1024)
END_TO_END_TARGET = 5.0
END_TO_END_DIRTY = 0.3
#: Seconds a whole run of a million pages may take, and its peak resident
#: size over the bytes the model must hold.
MILLION_SECONDS = 60.0
MILLION_MEMORY = 1.5


# -- results -------------------------------------------------------------------


@attrs.frozen
class Side:
    """The timings of one side of a ratio, in seconds per run."""

    label: str
    times: tuple[float, ...]

    @property
    def median(self) -> float:
        """The median time of a run."""
        return statistics.median(self.times)

    def noise(self) -> dict[str, float]:
        """Minimum, median and maximum, and the spread (max - min) / median in percent."""
        med = self.median
        lo, hi = min(self.times), max(self.times)
        return {
            "min_s": lo,
            "median_s": med,
            "max_s": hi,
            "spread_pct": 100.0 * (hi - lo) / med if med else 0.0,
        }


@attrs.frozen
class Figure:
    """One figure of docs/performance.md: its value, its target and whether it is met.

    ``value`` is a ratio (``unit`` ``"x"``) or a number of bytes; lower is
    better for every figure, so the target is met when ``value <= target``.
    ``stretch`` is a second, harder target where there is one.
    """

    key: str
    title: str
    value: float
    target: float
    unit: str = "x"
    stretch: float | None = None
    detail: dict[str, Any] = attrs.field(factory=dict)
    noise: dict[str, Any] = attrs.field(factory=dict)

    @property
    def met(self) -> bool:
        """Whether the value is within the target."""
        return self.value <= self.target

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        out: dict[str, Any] = {
            "key": self.key,
            "title": self.title,
            "value": round(self.value, 4),
            "unit": self.unit,
            "target": self.target,
            "met": self.met,
        }
        if self.stretch is not None:
            out["stretch"] = self.stretch
            out["stretch_met"] = self.value <= self.stretch
        out["detail"] = self.detail
        out["noise"] = self.noise
        return out


def _ratio_figure(
    key: str,
    title: str,
    a: Side,
    b: Side,
    target: float,
    *,
    stretch: float | None = None,
    detail: dict[str, Any] | None = None,
) -> Figure:
    """A ratio A ÷ B: the median over the repetitions of A's time ÷ B's.

    Each repetition runs A and B back to back (in alternating order), so
    its ratio is taken under the same conditions of a shared machine; the
    ratio of the two sides' medians is reported beside it.
    """
    pairs = [x / y for x, y in zip(a.times, b.times, strict=True) if y]
    noise: dict[str, Any] = {a.label: a.noise(), b.label: b.noise()}
    noise["ratio_of_each_repetition"] = {"min": min(pairs), "max": max(pairs)}
    info = dict(detail or {})
    info["ratio_of_medians"] = a.median / b.median
    info["repetitions"] = len(pairs)
    return Figure(
        key=key,
        title=title,
        value=statistics.median(pairs),
        target=target,
        stretch=stretch,
        detail=info,
        noise=noise,
    )


# -- timing ----------------------------------------------------------------------

#: The clock of the timed sections: the CPU time of this process, so that
#: other processes on a busy machine do not count (their cache and memory
#: traffic still does; medians and alternation deal with that).
_clock = time.process_time


@contextmanager
def _quiet_gc() -> Iterator[None]:
    """Collect now, then keep the collector out of the timed section."""
    from fsaops.scenario import collector_paused

    gc.collect()
    with collector_paused():
        yield


# -- a machine with pages to migrate -------------------------------------------------


@attrs.define
class Batch:
    """Pages isolated for one ``migrate_pages`` call, and the lists it works on."""

    from_: PageList
    to: PageList
    moved: PageList
    failed: PageList
    count: int
    stats: MigrateStats = attrs.field(factory=MigrateStats)
    rc: int = 0


class Rig:
    """A two-node machine with the pages of one table, migrated back and forth.

    File tables get one file of ``npages`` pages; ``swap`` gets a process
    with ``npages`` of anonymous memory; ``xfs_buftarg`` gets its buffer
    cache filled from the device.  Each :meth:`prepare` isolates the pages
    on whichever node they are on now and allocates as many new pages on
    the other node; :meth:`finish` puts everything back, which frees the
    old pages, so the next batch moves the same data the other way.
    """

    def __init__(
        self,
        registry: Registry,
        fs: str,
        mode: str | None,
        npages: int,
        *,
        block_size: int | None = None,
        dirty: bool = False,
        semantics: str = DEFAULT_SEMANTICS,
    ) -> None:
        self.registry = registry
        self.fs = fs
        self.npages = npages
        world = self.world = World(
            registry=registry,
            nodes=2,
            node_pages=npages + 64,
            io_latency=4,
            seed=1,
            semantics=semantics,
        )
        kernel = self.kernel = world.kernel
        self.holder = kernel.new_task("bench-holder")
        self.mm: Mm | None = None
        self.inode: Inode | None = None
        if fs == "swap":
            world.swapon(npages + 64)
            area = world.anon(npages, key="bench")
            self.mm = area.mm
            self._vpns = range(area.start, area.start + npages)
            self.table = kernel.swap_aops_name
        else:
            blocks = npages * (kernel.page_size // (block_size or 512)) + 64
            sb = world.mount(fs, mode, block_size=block_size, nr_blocks=blocks)
            self.table = sb.a_ops.name
            record = world.create_file(sb, key="bench")
            self.inode = record.inode
            if record.page_cache:
                # write(2) for a file; the filesystem's own reads for a
                # buffer cache (xfs_buftarg), as the scenario builds them.
                world.write_file(record, npages)
        self.set_state(dirty=dirty)

    @property
    def mapping(self) -> AddressSpace:
        """The file's page cache."""
        assert self.inode is not None
        return self.inode.i_mapping

    def pages(self) -> list[Page]:
        """The pages, in file (or virtual address) order, wherever they are now."""
        if self.mm is not None:
            ptes = self.mm.ptes
            swapper = self.kernel.swapper_space
            assert swapper is not None
            found = []
            for vpn in self._vpns:
                pte = ptes[vpn]
                # After a V4 migration the pte is a swap pte; the page is in the swap cache.
                page = pte.page if pte.page is not None else swapper.lookup(pte.swp)
                assert page is not None
                found.append(page)
            return found
        return [p for p in self.mapping.page_tree if p is not None]

    def set_state(self, *, dirty: bool) -> None:
        """Make every page dirty, or write every dirty page out and wait (untimed)."""
        kernel = self.kernel
        pages = self.pages()
        if dirty:
            for page in pages:
                if not page.flags & PG.dirty:
                    set_page_dirty(page)
        elif self.mm is not None:
            for page in pages:
                if page.flags & PG.dirty and page.flags & PG.swapcache:
                    write_one_page(page, wait=False)
        elif self.inode is not None:
            filemap_write_and_wait(self.mapping)
        kernel.run_until_idle()

    def prepare(
        self, count: int | None = None, *, parts: int = 1, contended: bool = False
    ) -> list[Batch]:
        """Isolate the first ``count`` pages and allocate as many new pages on the other node.

        The pages are dealt, in order, into ``parts`` batches of consecutive
        pages, each with its own ``from`` and ``to`` lists.  With
        ``contended``, one page in ten is held by another task until the
        first pass is over: every other one by an extra reference, the rest
        by the page lock.
        """
        pages = self.pages()[: self.npages if count is None else count]
        src = pages[0].node.nid
        node = self.kernel.nodes[1 - src]
        pages = [p for p in pages if p.node.nid == src]
        size = -(-len(pages) // parts)
        batches = []
        for first in range(0, len(pages), size):
            from_ = PageList("from")
            for page in pages[first : first + size]:
                if isolate_lru_page(page) == 1:
                    list_add_tail(page, from_)
            n = len(from_)
            to = PageList("to")
            for _ in range(n):
                new = node.alloc_page()
                assert new is not None, "the benchmark's machine ran out of pages"
                list_add(new, to)
            if contended:
                sched = self.kernel.sched
                for i, page in enumerate(from_):
                    if i % 10 == 5:
                        kind = "page_ref" if (i // 10) % 2 else "page_lock"
                        hold(self.holder, sched, kind, page, n + 1)
            batches.append(Batch(from_, to, PageList("moved"), PageList("failed"), n))
        return batches

    def migrate(self, batch: Batch) -> float:
        """Time ``migrate_pages`` on a prepared batch; returns CPU seconds."""
        t0 = _clock()
        batch.rc = migrate_pages(
            batch.from_, batch.to, batch.moved, batch.failed, stats=batch.stats
        )
        return _clock() - t0

    def bare(self, batch: Batch) -> float:
        """Time the irreducible work on a batch's pages, then undo it; returns CPU seconds.

        Before the batch migrates, each page goes to the new page the
        engine would give it (the tail of ``to`` first); after, each new
        page goes back to the old page, which is still allocated.  For
        each: point the page-tree slot at the target, copy the flags
        ``migrate_page_copy`` copies, and copy the 4 KiB.
        """
        pairs: list[tuple[Page, Page]] = []
        if batch.moved.lru_next is batch.moved:
            new: Any = batch.to.lru_prev
            for page in batch.from_:
                pairs.append((page, new))
                new = new.lru_prev
        else:
            tree = self.mapping.page_tree
            for old in batch.moved:
                found = tree[old.index]
                assert found is not None
                pairs.append((found, old))
        if not pairs:
            return 0.0
        flags = [target.flags for _, target in pairs]
        first, target = pairs[0]
        smem, s0 = first.node.mem, first.node.start_pfn
        dmem, d0 = target.node.mem, target.node.start_pfn
        shift, size = first.node.page_shift, first.node.page_size
        t0 = _clock()
        _bare_loop(pairs, smem, dmem, s0, d0, shift, size)
        elapsed = _clock() - t0
        for (page, target), saved in zip(pairs, flags, strict=True):
            page.mapping.page_tree[page.index] = page  # type: ignore[union-attr]
            target.flags = saved
        return elapsed

    def finish(self, batch: Batch) -> None:
        """Put every page back on the LRU (freeing the old pages) and free unused new ones."""
        putback_lru_pages(batch.moved)
        putback_lru_pages(batch.failed)
        putback_lru_pages(batch.from_)
        for page in list(batch.to):
            list_del(page)
            put_page(page)
        self.kernel.run_until_idle()

    def engine_run(self, count: int | None = None, *, contended: bool = False) -> float:
        """Prepare, time one ``migrate_pages`` call on every page, and put everything back."""
        (batch,) = self.prepare(count, contended=contended)
        with _quiet_gc():
            elapsed = self.migrate(batch)
        self.last = batch
        self.finish(batch)
        return elapsed

    def close(self) -> None:
        """Drop the machine (its memory maps go with the next collection)."""
        del self.kernel
        del self.world
        gc.collect()


def _bare_loop(
    pairs: list[tuple[Page, Page]],
    smem: memoryview,
    dmem: memoryview,
    s0: int,
    d0: int,
    shift: int,
    size: int,
) -> None:
    copied = PG.COPIED
    for page, newpage in pairs:
        page.mapping.page_tree[page.index] = newpage  # type: ignore[union-attr]
        newpage.flags |= page.flags & copied
        soff = (page.pfn - s0) << shift
        doff = (newpage.pfn - d0) << shift
        dmem[doff : doff + size] = smem[soff : soff + size]


#: Pages in each of the small batches the interleaved figures alternate on.
PART_PAGES = 500


def _interleaved(
    rig: Rig,
    pages: int,
    repeat: int,
    run_a: Callable[[Batch], float],
    run_b: Callable[[Batch], float],
    *,
    same_batch: bool,
) -> tuple[list[float], list[float]]:
    """Repetitions of A against B, interleaved over small batches of the same pages.

    Each repetition isolates ``pages`` pages dealt into batches of
    :data:`PART_PAGES`.  With ``same_batch`` both sides run on every batch,
    A first on every other batch and B first on the rest (the bare loop
    and the engine); otherwise the batches go to A and B in the order A B
    B A, A B B A, ... (the order flips every repetition).  Returns the
    seconds of each side per repetition, summed over its batches.
    """
    ta: list[float] = []
    tb: list[float] = []
    parts = max(2, -(-pages // PART_PAGES))
    parts += parts % 2
    for rep in range(repeat + 1):  # the first is a warm-up
        batches = rig.prepare(pages, parts=parts)
        a = b = 0.0
        with _quiet_gc():
            for i, batch in enumerate(batches):
                first_a = (i % 4 in (0, 3)) != (rep % 2 == 1)
                if same_batch:
                    if first_a:
                        a += run_a(batch)
                        b += run_b(batch)
                    else:
                        b += run_b(batch)
                        a += run_a(batch)
                elif first_a:
                    a += run_a(batch)
                else:
                    b += run_b(batch)
        rig.last = batches[-1]
        for batch in batches:
            rig.finish(batch)
        if rep:
            ta.append(a)
            tb.append(b)
    return ta, tb


def _outcome(batch: Batch) -> dict[str, int]:
    moved = sum(t.moved for t in batch.stats.tables.values())
    failed = sum(t.failed for t in batch.stats.tables.values())
    return {"pages": batch.count, "moved": moved, "failed": failed, "passes": batch.stats.passes}


# -- the figures -------------------------------------------------------------------


def engine_vs_bare(
    registry: Registry,
    pages: int,
    repeat: int,
    fs: tuple[str, str, int],
    *,
    semantics: str = DEFAULT_SEMANTICS,
) -> Figure:
    """(a) ``migrate_pages`` against the bare loop, on the same clean pages of one table."""
    rig = Rig(registry, fs[0], fs[1], pages, block_size=fs[2], semantics=semantics)
    try:
        rig.engine_run()  # the first trip touches every new frame
        ta, tb = _interleaved(rig, pages, repeat, rig.migrate, rig.bare, same_batch=True)
        out = _outcome(rig.last)
    finally:
        rig.close()
    eng = Side("engine", tuple(ta))
    bare = Side("bare_loop", tuple(tb))
    return _ratio_figure(
        f"engine_vs_bare[{rig.table}]",
        f"engine ÷ bare loop, {rig.table} (clean pages)",
        eng,
        bare,
        6.0,
        stretch=3.0,
        detail={
            "table": rig.table,
            "block_size": fs[2],
            "pages": pages,
            "engine_us_per_page": 1e6 * eng.median / pages,
            "bare_us_per_page": 1e6 * bare.median / pages,
            "last_batch": out,
        },
    )


def registry_vs_direct(
    registry: Registry, pages: int, repeat: int, *, semantics: str = DEFAULT_SEMANTICS
) -> Figure:
    """(b) the registry's table against one wired up here from the same functions."""
    fs, mode, bs = BUFFERLESS
    rig = Rig(registry, fs, mode, pages, block_size=bs, semantics=semantics)
    mapping = rig.mapping
    found = mapping.a_ops  # what load_plugins + Kernel.mount handed out
    members = {k: v for k, v in found.members().items() if v is not None}
    direct = AddressSpaceOperations(name=found.name, **members)  # type: ignore[arg-type]

    def through_registry(batch: Batch) -> float:
        mapping.a_ops = found
        return rig.migrate(batch)

    def wired_directly(batch: Batch) -> float:
        mapping.a_ops = direct
        return rig.migrate(batch)

    try:
        rig.engine_run()
        ta, tb = _interleaved(
            rig, pages, repeat, through_registry, wired_directly, same_batch=False
        )
    finally:
        mapping.a_ops = found
        rig.close()
    return _ratio_figure(
        "registry_vs_direct",
        f"registry table ÷ directly wired table, {found.name}",
        Side("registry", tuple(ta)),
        Side("direct", tuple(tb)),
        1.05,
        detail={"table": found.name, "pages": pages, "pages_each_side": pages // 2},
    )


def scaling(
    registry: Registry, pages: int, repeat: int, *, semantics: str = DEFAULT_SEMANTICS
) -> Figure:
    """(c) ten times the pages against the base count, one page in ten contended.

    Each repetition times one call on every page between two pairs of
    calls on the first ``pages`` of them (each pair brings those back where
    they were), and compares it with the median of the four.
    """
    fs, mode, bs = BUFFERLESS
    big = 10 * pages
    # Dirty pages: building them needs no write-back, which at this size
    # would take longer than the measurement.
    rig = Rig(registry, fs, mode, big, block_size=bs, dirty=True, semantics=semantics)
    ta: list[float] = []
    tb: list[float] = []
    try:
        rig.engine_run(contended=True)
        for _ in range(repeat):
            small = [rig.engine_run(pages, contended=True) for _ in range(2)]
            ta.append(rig.engine_run(big, contended=True))
            large_run = _outcome(rig.last)
            small += [rig.engine_run(pages, contended=True) for _ in range(2)]
            tb.append(statistics.median(small))
        small_run = _outcome(rig.last)
    finally:
        rig.close()
    return _ratio_figure(
        "scaling",
        f"{big:,} pages ÷ {pages:,} pages, 10% contended ({rig.table}, dirty)",
        Side(f"{big}_pages", tuple(ta)),
        Side(f"{pages}_pages", tuple(tb)),
        11.0,
        detail={
            "table": rig.table,
            "large": big,
            "small": pages,
            "large_run": large_run,
            "small_run": small_run,
        },
    )


def _filtering_logger(level: int, file: TextIO | None = None) -> EngineLog:
    """A structlog filtering bound logger at ``level`` that renders key=value lines."""
    import structlog

    sink = structlog.PrintLogger(file=io.StringIO() if file is None else file)
    logger: EngineLog = structlog.wrap_logger(
        sink,
        processors=[structlog.processors.KeyValueRenderer()],
        wrapper_class=structlog.make_filtering_bound_logger(level),
    )
    return logger


def log_filtered_vs_off(
    registry: Registry, pages: int, repeat: int, *, semantics: str = DEFAULT_SEMANTICS
) -> Figure:
    """(d) a structlog logger at INFO (events filtered out) against no logger."""
    fs, mode, bs = BUFFERLESS
    rig = Rig(registry, fs, mode, pages, block_size=bs, semantics=semantics)
    kernel = rig.kernel
    at_info = _filtering_logger(logging.INFO)

    def filtered(batch: Batch) -> float:
        kernel.log = at_info
        return rig.migrate(batch)

    def off(batch: Batch) -> float:
        kernel.log = None
        return rig.migrate(batch)

    try:
        rig.engine_run()
        ta, tb = _interleaved(rig, pages, repeat, filtered, off, same_batch=False)
        # For information: the cost of emitting every event (DEBUG, rendered).
        sink = open(os.devnull, "w")  # noqa: SIM115
        try:
            emitting = _filtering_logger(logging.DEBUG, sink)

            def emitted(batch: Batch) -> float:
                kernel.log = emitting
                return rig.migrate(batch)

            tc, td = _interleaved(rig, pages, max(1, repeat // 3), emitted, off, same_batch=False)
        finally:
            sink.close()
    finally:
        kernel.log = None
        rig.close()
    return _ratio_figure(
        "log_filtered_vs_off",
        f"events filtered out at INFO ÷ logging off ({rig.table})",
        Side("filtered_at_info", tuple(ta)),
        Side("off", tuple(tb)),
        1.05,
        detail={
            "table": rig.table,
            "pages": pages,
            "pages_each_side": pages // 2,
            "for_information_emitted_at_debug_vs_off": statistics.median(
                x / y for x, y in zip(tc, td, strict=True)
            ),
        },
    )


def _traced(fn: Callable[[], object]) -> tuple[int, object]:
    """Bytes ``fn`` leaves allocated (``tracemalloc``), and what it returned."""
    gc.collect()
    before = tracemalloc.get_traced_memory()[0]
    result = fn()
    gc.collect()
    return tracemalloc.get_traced_memory()[0] - before, result


def _every_frame_made(world: World) -> World:
    for node in world.kernel.nodes:
        assert len(node.pages) == node.nr_pages  # mem_map: makes every frame
    return world


def metadata_bytes(registry: Registry, pages: int) -> Figure:
    """(e) Python bytes per page: frame, page-tree slot, index and LRU; buffer heads apart."""
    n = max(pages, 1000)
    started = tracemalloc.is_tracing()
    if not started:
        tracemalloc.start()
    try:
        # Every frame made (a node makes its pages as they are first handed out).
        base_bytes, _base = _traced(lambda: _every_frame_made(World(nodes=1, node_pages=1)))
        big_bytes, world_obj = _traced(
            lambda: _every_frame_made(World(nodes=1, node_pages=n + 1, registry=registry))
        )
        world: World = world_obj  # type: ignore[assignment]
        kernel = world.kernel
        frame = (big_bytes - base_bytes) / n
        sb = world.mount("ext2", "nobh", block_size=4096, nr_blocks=n + 64)
        mapping = world.create_file(sb, key="meta").inode.i_mapping
        node = kernel.nodes[0]

        def populate() -> None:
            for index in range(n):
                page = node.alloc_page()
                assert page is not None
                add_to_page_cache_lru(page, mapping, index)
                page.flags |= PG.uptodate
                unlock_page(page)
                put_page(page)

        cache_bytes, _ = _traced(populate)
        in_cache = cache_bytes / n
        some = [p for p in mapping.page_tree if p is not None]

        def attach() -> None:
            for page in some:
                create_empty_buffers(page, 1024)

        bh_bytes, _ = _traced(attach)
        page_object = sys.getsizeof(some[-1])
    finally:
        if not started:
            tracemalloc.stop()
    total = frame + in_cache
    return Figure(
        key="metadata_bytes",
        title="bytes of metadata per page (struct page, mem_map, page tree, LRU)",
        value=total,
        target=160.0,
        unit="bytes",
        detail={
            "pages": n,
            "frame_bytes": frame,
            "page_cache_and_lru_bytes": in_cache,
            "page_object_bytes": page_object,
            "buffer_heads_bytes_per_page_1k_blocks": bh_bytes / n,
            "data_bytes_per_page": kernel.page_size,
            "kernel_struct_page_bytes": 64,
            "python": platform.python_version(),
        },
    )


# -- pages per second for every table ---------------------------------------------------


def throughput(
    registry: Registry,
    pages: int,
    repeat: int,
    *,
    semantics: str = DEFAULT_SEMANTICS,
    only: tuple[str, str] | None = None,
) -> list[dict[str, Any]]:
    """Pages per second through ``migrate_pages`` for every loaded table, clean and dirty.

    ``only`` is a (filesystem, mode) to measure alone.  A table whose
    ``migratepage`` raised, or kept the kernel's clock still for
    ``fsaops.scenario.STALL_SECONDS``, gets a note in place of its rate.
    """
    from fsaops.scenario import stall_watched

    rows: list[dict[str, Any]] = []
    for fstype, mode, table in registry.tables():
        if only is not None and (fstype.name, mode) != only:
            continue
        if not fstype.has_page_cache(mode):
            rows.append(
                {
                    "fs": fstype.name,
                    "mode": mode,
                    "table": table.name,
                    "note": "execute in place: no page-cache pages to migrate",
                }
            )
            continue
        if fstype.name == "swap":
            bs: int | None = None
        else:
            bs = fstype.default_block_size
        for dirty in (False, True):
            note: str | None = None
            try:
                rig = Rig(
                    registry,
                    fstype.name,
                    mode,
                    pages,
                    block_size=bs,
                    dirty=dirty,
                    semantics=semantics,
                )
            except Exception as exc:  # a table the benchmark's machine cannot build
                rows.append(
                    {
                        "fs": fstype.name,
                        "mode": mode,
                        "table": table.name,
                        "note": f"not measured: {describe_exception(exc)}",
                    }
                )
                break
            broken: list[str] = []
            try:

                def one(rig: Rig = rig, dirty: bool = dirty, broken: list[str] = broken) -> float:
                    rig.set_state(dirty=dirty)
                    elapsed = rig.engine_run()
                    # A migratepage that raised (or returned what is no errno) fails its
                    # page: the rate would be that of a table that moves nothing.
                    found = rig.last.stats.findings.result()
                    broken.extend(f.example for f in found if f.kind == "return")
                    return elapsed

                with stall_watched(registry, rig.kernel):
                    one()
                    times = [one() for _ in range(repeat)]
                out = _outcome(rig.last)
            except RunTimeout as exc:  # stuck: plugin code kept the kernel's clock still
                note = f"not measured: {exc}"
            finally:
                rig.close()
            if broken and note is None:
                note = f"not measured: {broken[0]}"
            if note is not None:
                rows.append({"fs": fstype.name, "mode": mode, "table": table.name, "note": note})
                break
            side = Side("engine", tuple(times))
            rows.append(
                {
                    "fs": fstype.name,
                    "mode": mode,
                    "table": table.name,
                    "state": "dirty" if dirty else "clean",
                    "block_size": bs,
                    "pages_per_second": pages / side.median,
                    "us_per_page": 1e6 * side.median / pages,
                    **out,
                    "noise": side.noise(),
                }
            )
    return rows


# -- end to end ----------------------------------------------------------------------------


def end_to_end_scenario(pages: int, *, plugin: str = "ext2") -> str:
    """The scenario of the end-to-end figure: ``pages`` pages of ext2 nobh, 30 % dirty.

    One mount of ``pages`` pages in up to 100 files, nothing else (no swap,
    no processes, no other state); each node is big enough for every page:
    an eighth more than ``pages`` and 1,024 pages, but no more than a node
    can hold (:data:`~fsaops.config.schema.MAX_NODE_PAGES`; 48,576 pages to
    spare at a million).
    """
    from fsaops.config.schema import MAX_NODE_PAGES

    node_memory = min(pages + pages // 8 + 1024, MAX_NODE_PAGES) * 4096
    return (
        f"[kernel]\nnodes = 2\nnode_memory = {node_memory}\n"
        f'[plugins]\nload = ["{plugin}"]\n'
        f'[[mount]]\nfs = "ext2"\nmode = "nobh"\npages = {pages}\nfiles = {min(100, pages)}\n'
        "[swap]\nslots = 0\n"
        "[processes]\ncount = 0\nanon_pages = 0\n"
        f"[workload]\ndirty = {END_TO_END_DIRTY}\n"
    )


@attrs.frozen
class CommandRun:
    """One whole ``fsaops migrate --json`` in a child process."""

    seconds: float
    peak_rss_bytes: int
    status: str
    returncode: int
    #: What the child said when it did not complete: its JSON's ``error``, or
    #: the end of its standard error ("" when it completed or said nothing).
    error: str = ""

    @property
    def completed(self) -> bool:
        """Whether the run did its work: exit status 0 and status ``ok``."""
        return self.returncode == 0 and self.status == "ok"

    def failure(self, what: str) -> str:
        """The run that did not complete, in one line: ``what``, its exit status and status."""
        said = f": {self.error}" if self.error else ""
        return f"{what} ended with exit status {self.returncode} ({self.status}){said}"


#: The small program that starts a timed child and says what it cost: its
#: wall clock, its peak resident size and its exit status.  A process started
#: straight from the bench would be charged the bench's own peak: Linux
#: carries a process's peak over ``exec`` (and ``fork`` copies it), so every
#: child of a bench that has built its rigs would peak at the bench's size at
#: least.  This program's own memory is small, and the child it starts
#: inherits only that.
_LAUNCHER = """\
import os, sys, time
said = int(sys.argv[1])
start = time.perf_counter()
try:
    pid = os.posix_spawn(sys.argv[2], sys.argv[2:], os.environ)
except OSError as exc:
    os.write(said, f"error {exc.errno} {exc.strerror}".encode())
    raise SystemExit(0)
_pid, status, usage = os.wait4(pid, 0)
seconds = time.perf_counter() - start
os.write(said, f"ran {seconds!r} {usage.ru_maxrss} {os.waitstatus_to_exitcode(status)}".encode())
"""


def _launched(cmd: list[str], stdout: Any, stderr: Any) -> tuple[float, int, int]:
    """Run ``cmd`` through :data:`_LAUNCHER`: its wall clock, peak resident bytes and exit status.

    Where the system has no ``posix_spawn`` and ``wait4``, the child is
    started from here and its peak is not known (0).

    Raises:
        CannotStart: the child could not be started.
    """
    if not hasattr(os, "posix_spawn") or not hasattr(os, "wait4"):  # pragma: no cover
        start = time.perf_counter()
        try:
            proc = subprocess.run(
                cmd, stdout=stdout, stderr=stderr, stdin=subprocess.DEVNULL, check=False
            )
        except OSError as exc:
            raise cannot_start("the fsaops migrate the bench times", exc) from None
        return time.perf_counter() - start, 0, proc.returncode
    read, write = os.pipe()
    try:
        launcher = [sys.executable, "-I", "-S", "-c", _LAUNCHER, str(write), *cmd]
        try:
            proc = subprocess.run(
                launcher,
                stdout=stdout,
                stderr=stderr,
                stdin=subprocess.DEVNULL,
                pass_fds=(write,),
                check=False,
            )
        except OSError as exc:
            raise cannot_start("the fsaops migrate the bench times", exc) from None
        os.close(write)
        write = -1
        with os.fdopen(read, "rb") as f:
            read = -1
            said = f.read().decode(errors="replace").split()
    finally:
        for fd in (read, write):
            if fd >= 0:
                os.close(fd)
    if said[:1] == ["error"] and len(said) >= 2:
        code = int(said[1])
        raise cannot_start(
            "the fsaops migrate the bench times", OSError(code, " ".join(said[2:]))
        ) from None
    if said[:1] != ["ran"] or len(said) != 4 or proc.returncode != 0:
        raise RuntimeError(
            f"the program that starts the timed fsaops migrate ended with exit status "
            f"{proc.returncode} and said {' '.join(said)!r}"
        )
    scale = 1 if sys.platform == "darwin" else 1024
    return float(said[1]), int(said[2]) * scale, int(said[3])


def migrate_command(scenario: str, *, plugin: str = "ext2") -> CommandRun:
    """Run ``fsaops migrate --json`` on ``scenario`` (TOML text) in a child process, timed.

    The time is the wall clock from starting the child to reaping it; the
    peak resident size is the child's own (started through
    :data:`_LAUNCHER`, so that the bench's own memory is not counted).
    """
    with tempfile.TemporaryDirectory(prefix="fsaops-bench-") as tmp:
        path = os.path.join(tmp, "scenario.toml")
        with open(path, "w", encoding="utf-8") as f:
            f.write(scenario)
        cmd = [sys.executable, "-m", "fsaops", "migrate", "--json", "--no-progress"]
        cmd += ["--plugins", plugin, path]
        with (
            open(os.path.join(tmp, "stdout"), "w+b") as out_file,
            open(os.path.join(tmp, "stderr"), "w+b") as errors,
        ):
            seconds, peak, returncode = _launched(cmd, out_file, errors)
            out_file.seek(0)
            out = out_file.read()
            errors.seek(0)
            err = errors.read()
    said = err.decode(errors="replace").strip()
    try:
        data = json.loads(out)
        outcome = str(data["status"])
    except (ValueError, KeyError, TypeError):
        return CommandRun(seconds, peak, "no report: " + said[-500:], returncode)
    message = data.get("error") if isinstance(data, dict) else None
    if returncode == 0 and outcome == "ok":
        error = ""
    elif isinstance(message, str) and message:
        error = message
    else:
        error = said.splitlines()[-1][-500:] if said else ""
    return CommandRun(seconds, peak, outcome, returncode, error)


def end_to_end(
    registry: Registry, pages: int, repeat: int, rates: Sequence[dict[str, Any]]
) -> Figure:
    """Engine pages/s ÷ pages/s of a whole ``fsaops migrate`` of ``10 * pages`` pages.

    The engine's rate is the ``ext2_nobh_aops`` dirty row of ``rates`` (or
    measured here if it is missing).  The command runs ``repeat`` times at
    each size, small and large in turn, each in a child process timed by
    the wall clock; the figure is the median large run.  One more run of
    the large size says where its time goes (:func:`_phases`).
    """
    fs, mode, block_size = END_TO_END
    plugin = registry.owners.get(fs, fs)
    table = registry.aops(fs, mode).name
    row = next(
        (
            r
            for r in rates
            if r.get("table") == table and r.get("state") == "dirty" and "note" not in r
        ),
        None,
    )
    if row is None:
        row = throughput(registry, max(pages // 5, 50), 3, only=(fs, mode))[-1]
    engine = float(row["pages_per_second"])
    sizes = (pages, 10 * pages)
    times: dict[int, list[float]] = {n: [] for n in sizes}
    peaks: dict[int, int] = {}
    for _ in range(repeat):
        for n in sizes:
            run = migrate_command(end_to_end_scenario(n, plugin=plugin), plugin=plugin)
            if not run.completed:
                raise RuntimeError(run.failure(f"fsaops migrate of {n:,} ext2 nobh pages"))
            times[n].append(run.seconds)
            peaks[n] = run.peak_rss_bytes
    large = sizes[-1]
    phases = _phases(large, plugin)
    runs: dict[str, Any] = {}
    for n in sizes:
        median = statistics.median(times[n])
        runs[str(n)] = {
            "pages": n,
            "seconds": median,
            "pages_per_second": n / median,
            "ratio_to_engine": engine * median / n,
            "times_s": times[n],
            "peak_rss_bytes": peaks[n],
        }
    pairs = [engine * t / large for t in times[large]]
    engine_noise = dict(row.get("noise", {}))
    return Figure(
        key=f"end_to_end[{table}]",
        title=f"engine ÷ end to end, fsaops migrate of {large:,} pages ({table}, 30% dirty)",
        value=statistics.median(pairs),
        target=END_TO_END_TARGET,
        detail={
            "table": table,
            "block_size": block_size,
            "dirty": END_TO_END_DIRTY,
            "engine_pages_per_second": engine,
            "engine_pages": row.get("pages"),
            "runs": runs,
            "phases_s": phases,
            "clock": "wall clock of the whole command, from starting it to its exit",
            "repetitions": len(pairs),
        },
        noise={
            "end_to_end": Side("end_to_end", tuple(times[large])).noise(),
            "engine": engine_noise,
            "ratio_of_each_repetition": {"min": min(pairs), "max": max(pairs)},
        },
    )


def _phases(pages: int, plugin: str) -> dict[str, float]:
    """Where the time of one whole run of ``pages`` pages goes, in seconds of wall time.

    The command runs in a child process (``--phases-child``) that times the
    phases of :func:`~fsaops.scenario.run_plan` and says when it started
    them and when the command was done; ``start-up`` is the time from
    starting the child to the run (the interpreter, the imports, loading
    the plugins, checking the scenario), ``report`` includes writing the
    JSON report, and ``exit`` is the time from the command being done to
    the child's end, which ends as the program does (``os._exit``, without
    freeing the world object by object).
    """
    with tempfile.TemporaryDirectory(prefix="fsaops-bench-") as tmp:
        path = os.path.join(tmp, "scenario.toml")
        with open(path, "w", encoding="utf-8") as f:
            f.write(end_to_end_scenario(pages, plugin=plugin))
        cmd = [sys.executable, "-m", "fsaops.bench", "--phases-child", path, "--plugins", plugin]
        started = time.time()
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        except OSError as exc:
            raise cannot_start("the run whose phases the bench times", exc) from None
        ended = time.time()
    if proc.returncode != 0:
        raise RuntimeError(f"timing the phases failed: {proc.stderr.strip()[-500:]}")
    child = json.loads(proc.stdout.strip().splitlines()[-1])
    phases: dict[str, float] = {"start-up": child["run_started"] - started}
    phases.update(child["phases"])
    phases["report"] += child["done"] - child["run_started"] - sum(child["phases"].values())
    phases["exit"] = ended - child["done"]
    return phases


def _phases_child(path: str, plugin: str) -> dict[str, Any]:
    """``fsaops migrate --json`` of the scenario at ``path``, with the phases of its run timed."""
    import fsaops.scenario
    from fsaops.cli import main as cli_main

    phases: dict[str, float] = {}
    marks: dict[str, float] = {}
    run_plan = fsaops.scenario.run_plan

    def timed(plan: Any, **options: Any) -> Any:
        marks["run_started"] = time.time()
        return run_plan(plan, phases=phases, **options)

    fsaops.scenario.run_plan = timed
    try:
        with open(os.devnull, "w", encoding="utf-8") as sink, contextlib.redirect_stdout(sink):
            status = cli_main(["migrate", "--json", "--no-progress", "--plugins", plugin, path])
    finally:
        fsaops.scenario.run_plan = run_plan
    marks["done"] = time.time()
    return {"phases": phases, "exit_status": status, **marks}


# -- a million pages ------------------------------------------------------------------------


def _rss_bytes() -> int:
    """The peak resident size of this process so far, in bytes (0 where unknown).

    Linux's ``VmHWM``, this program's own: the peak ``getrusage`` gives
    carries over the peak of the process that started it (see
    :data:`_LAUNCHER`), which is used only where there is no ``VmHWM``.
    """
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        import resource
    except ImportError:  # pragma: no cover - platforms without getrusage
        return 0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def million(npages: int) -> dict[str, Any]:
    """Fill a file of ``npages`` dirty pages on node 0 and move node 0 to node 1.

    Runs in the calling process: :func:`run` starts it in a child process
    so that the peak resident size it reports is this migration's own.
    """
    registry = load_plugins(cli=["ext2"])
    rss_start = _rss_bytes()
    t0 = time.perf_counter()
    world = World(registry=registry, nodes=2, node_pages=npages + 512, seed=1)
    kernel = world.kernel
    size = kernel.page_size
    sb = world.mount("ext2", "nobh", block_size=size, nr_blocks=npages + 64)
    record = world.create_file(sb, key="million")
    inode = record.inode
    chunk = 4096
    for first in range(0, npages, chunk):
        world.write_file(record, min(chunk, npages - first))
    t1 = time.perf_counter()
    rss_filled = _rss_bytes()
    stats = MigrateStats()
    with _quiet_gc():
        t2 = time.perf_counter()
        result = migrate_node(kernel, 0, 1, stats=stats)
        t3 = time.perf_counter()
    rss_peak = _rss_bytes()
    tree = inode.i_mapping.page_tree
    step = max(1, npages // 997)
    checked = bad = 0
    for index in range(0, npages, step):
        page = tree[index]
        checked += 1
        if page is None or page.node.nid != 1 or page.data != world.expected(record, index):
            bad += 1
    moved = sum(t.moved for t in stats.tables.values())
    data_bytes = 2 * npages * size  # the frames written on both nodes
    return {
        "pages": npages,
        "table": sb.a_ops.name,
        "moved": moved,
        "left": result.left,
        "fill_seconds": t1 - t0,
        "migrate_seconds": t3 - t2,
        "pages_per_second": npages / (t3 - t2),
        "peak_rss_bytes": rss_peak,
        "rss_after_fill_bytes": rss_filled,
        "page_data_bytes_touched": data_bytes,
        "rss_at_start_bytes": rss_start,
        "rss_beyond_data_per_page_bytes": (rss_peak - rss_start - data_bytes) / npages,
        "sampled": checked,
        "sampled_bad": bad,
        "completed": result.left == 0 and bad == 0 and moved == npages,
    }


def million_end_to_end(registry: Registry, npages: int) -> dict[str, Any]:
    """A whole ``fsaops migrate`` of ``npages`` ext2 nobh pages, 30 % dirty, in a child process.

    Its wall clock against :data:`MILLION_SECONDS`, and its peak resident
    size against :data:`MILLION_MEMORY` times the bytes the model must hold:
    both nodes' frames in use (every page on each) and the device's data.
    A run that did not complete (refused, failed, interrupted) gives no
    figures: ``completed`` is false and ``error`` says why, in the child's
    own words.
    """
    fs, _mode, _block_size = END_TO_END
    plugin = registry.owners.get(fs, fs)
    run = migrate_command(end_to_end_scenario(npages, plugin=plugin), plugin=plugin)
    if not run.completed:
        return {
            "pages": npages,
            "completed": False,
            "status": run.status,
            "exit_status": run.returncode,
            "error": run.failure(f"fsaops migrate of {npages:,} ext2 nobh pages"),
        }
    model = 3 * npages * 4096
    return {
        "pages": npages,
        "seconds": run.seconds,
        "pages_per_second": npages / run.seconds,
        "target_seconds": MILLION_SECONDS,
        "peak_rss_bytes": run.peak_rss_bytes,
        "model_bytes": model,
        "peak_over_model": run.peak_rss_bytes / model,
        "target_peak_over_model": MILLION_MEMORY,
        "status": run.status,
        "exit_status": run.returncode,
        "met": run.returncode == 0
        and run.status == "ok"
        and run.seconds < MILLION_SECONDS
        and run.peak_rss_bytes <= MILLION_MEMORY * model,
    }


def not_measured(report: dict[str, Any]) -> tuple[str, str] | None:
    """The status the bench ends with, and why, when a run it asked for did not complete.

    ``None`` when every run completed.  The million-page runs are the
    bench's children: one that did not complete gives no figures, and the
    bench is not ``ok`` (the JSON's ``status``, the exit status).  The
    status is the child's own when it gave one, as ``fsaops migrate`` does,
    otherwise that of a command that failed.
    """
    big: dict[str, Any] = report.get("million") or {}
    if "error" in big:
        why = f"the {big['pages']:,}-page run was not measured: {big['error']}"
        return Status.KERNEL_BUG.value, why
    whole = big.get("end_to_end")
    if not isinstance(whole, dict) or "error" not in whole:
        return None
    said = whole.get("status")
    status = said if said in {s.value for s in Status} - {"ok"} else Status.KERNEL_BUG.value
    why = f"the {whole['pages']:,}-page run end to end was not measured: {whole['error']}"
    return str(status), why


def _million_in_child(npages: int) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "fsaops.bench", "--million-child", str(npages)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    except OSError as exc:
        raise cannot_start("the bench's run of a million pages", exc) from None
    if proc.returncode != 0:
        return {"pages": npages, "completed": False, "error": proc.stderr.strip()[-2000:]}
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


# -- the run ------------------------------------------------------------------------------------


#: The table each figure measures: (filesystem, mode, block size).
NEEDS: dict[str, tuple[str, str, int]] = {
    "engine_vs_bare[ext2_nobh_aops]": BUFFERLESS,
    "engine_vs_bare[ext2_aops]": WITH_BUFFERS,
    "registry_vs_direct": BUFFERLESS,
    "scaling": BUFFERLESS,
    "log_filtered_vs_off": BUFFERLESS,
    "metadata_bytes": BUFFERLESS,
    "end_to_end[ext2_nobh_aops]": END_TO_END,
    "million": BUFFERLESS,
}


def _missing(registry: Registry, fs: str, mode: str, block_size: int) -> str | None:
    """Why the loaded plugins cannot give the table ``fs`` ``mode``, or ``None``."""
    fstype = registry.filesystems.get(fs)
    selected = ", ".join(registry.selection) or "none"
    if fstype is None:
        return (
            f"needs filesystem {fs}, which no selected plugin provides "
            f"(selected by {registry.selected_by}: {selected})"
        )
    if mode not in fstype.modes or block_size not in fstype.block_sizes:
        return f"needs filesystem {fs} mode {mode} with {block_size}-byte blocks"
    return None


def run(
    *,
    pages: int = DEFAULT_PAGES,
    repeat: int = DEFAULT_REPEAT,
    table_pages: int | None = None,
    million_pages: int | None = None,
    progress: Callable[[str], None] | None = None,
    registry: Registry | None = None,
    semantics: str = DEFAULT_SEMANTICS,
) -> dict[str, Any]:
    """Measure every figure the loaded tables allow; returns the JSON-ready report.

    ``registry`` is the loaded plugins (default: every installed plugin, or
    those ``FSAOPS_PLUGINS`` selects).  A figure whose table is missing is
    listed in ``skipped`` with the reason.  ``semantics`` is the release of
    the migration code the machines run (:mod:`fsaops.semantics`): the
    figures hold under each.
    """

    def say(what: str) -> None:
        if progress is not None:
            progress(what)

    if registry is None:
        registry = load_plugins()
    t0 = time.perf_counter()
    sections: dict[str, float] = {}
    figures: list[Figure] = []
    skipped: list[dict[str, str]] = []

    def section(key: str, name: str, fn: Callable[[], Figure]) -> None:
        why = _missing(registry, *NEEDS[key])
        if why is not None:
            skipped.append({"key": key, "reason": why})
            return
        say(name)
        start = time.perf_counter()
        with interrupt_told(lambda _frame: f" while measuring {key}"):  # what Ctrl-C names
            figures.append(fn())
        sections[figures[-1].key] = time.perf_counter() - start

    sem = semantics
    section(
        "engine_vs_bare[ext2_nobh_aops]",
        "engine ÷ bare loop",
        lambda: engine_vs_bare(registry, pages, repeat, BUFFERLESS, semantics=sem),
    )
    section(
        "engine_vs_bare[ext2_aops]",
        "engine ÷ bare loop",
        lambda: engine_vs_bare(registry, pages, repeat, WITH_BUFFERS, semantics=sem),
    )
    section(
        "registry_vs_direct",
        "registry ÷ direct",
        lambda: registry_vs_direct(registry, pages, repeat, semantics=sem),
    )
    section(
        "scaling", "scaling", lambda: scaling(registry, pages, max(4, repeat // 3), semantics=sem)
    )
    section(
        "log_filtered_vs_off",
        "logging",
        lambda: log_filtered_vs_off(registry, pages, repeat, semantics=sem),
    )
    section("metadata_bytes", "metadata", lambda: metadata_bytes(registry, pages))
    say("pages per second")
    start = time.perf_counter()
    per_table = table_pages or max(pages // 5, 50)
    with interrupt_told(lambda _frame: " while measuring throughput (pages per second)"):
        rows = throughput(registry, per_table, max(2, repeat // 3 + 1), semantics=sem)
    sections["throughput"] = time.perf_counter() - start
    section(
        "end_to_end[ext2_nobh_aops]",
        "end to end",
        lambda: end_to_end(registry, pages, max(1, min(3, repeat // 3)), rows),
    )
    big: dict[str, Any] | None = None
    if million_pages:
        why = _missing(registry, *NEEDS["million"])
        if why is not None:
            skipped.append({"key": "million", "reason": why})
        else:
            say(f"{million_pages:,} pages")
            start = time.perf_counter()
            with interrupt_told(lambda _frame: " while measuring million"):
                big = _million_in_child(million_pages)
            sections["million"] = time.perf_counter() - start
            if _missing(registry, *END_TO_END) is None:
                say(f"{million_pages:,} pages end to end")
                start = time.perf_counter()
                with interrupt_told(lambda _frame: " while measuring million end to end"):
                    big["end_to_end"] = million_end_to_end(registry, million_pages)
                sections["million_end_to_end"] = time.perf_counter() - start
    return {
        "figures": [f.as_dict() for f in figures],
        # None: no figure was measured, so none met its target and none missed it.
        "all_met": all(f.met for f in figures) if figures else None,
        "skipped": skipped,
        "throughput": rows,
        "million": big,
        "plugins": {"selection": list(registry.selection), "selected_by": registry.selected_by},
        "method": {
            "pages": pages,
            "repeat": repeat,
            "semantics": semantics,
            "order": "A B, then B A, ...; value = median over repetitions of A's time / B's",
            "clock": "CPU time of this process (time.process_time)",
            "gc": "collected before and paused during each timed section",
            "warm_up": "one untimed run of each side first",
            "seconds": time.perf_counter() - t0,
            "seconds_by_section": sections,
        },
        "environment": {
            "python": platform.python_version(),
            "implementation": platform.python_implementation(),
            "machine": platform.machine(),
            "processor": processor_name(),
            "cpus": os.cpu_count(),
        },
    }


def processor_name() -> str:
    """The processor's model as the system names it (``model name`` of ``/proc/cpuinfo``).

    The figures are ratios, but not free of the machine: the engine is
    interpreted work and the bare loop mostly a 4 KiB copy, so a processor
    slower at the one than the other moves them (docs/performance.md).
    Elsewhere ``platform.processor()``; empty when nothing says.
    """
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                key, sep, value = line.partition(":")
                if sep and key.strip() == "model name" and value.strip():
                    return value.strip()
    except OSError:
        pass
    return platform.processor()


def _fmt(value: float, unit: str) -> str:
    return f"{value:,.1f} B" if unit == "bytes" else f"{value:.2f}x"


def render(report: dict[str, Any]) -> str:
    """The report as text: every figure beside its target, then the rest."""
    semantics = report["method"].get("semantics", DEFAULT_SEMANTICS)
    lines = [f"fsaops bench: the figures of {DOCS} (lower is better), semantics {semantics}", ""]
    figures = report["figures"]
    width = max((len(f["title"]) for f in figures), default=0)
    for f in figures:
        target = f"≤ {f['target']:g}" + (f" (then ≤ {f['stretch']:g})" if "stretch" in f else "")
        spread = ""
        rr = f["noise"].get("ratio_of_each_repetition")
        if rr:
            spread = f"  [each repetition {rr['min']:.2f}-{rr['max']:.2f}]"
        status = "met" if f["met"] else "NOT MET"
        lines.append(
            f"  {f['title']:<{width}}  {_fmt(f['value'], f['unit']):>10}  "
            f"target {target:<18} {status}{spread}"
        )
    if not figures:
        lines.append("  no figure measured: every one was skipped (below); no target met or missed")
    for skip in report.get("skipped", ()):
        lines.append(f"  {skip['key']}: skipped: {skip['reason']}")
    lines.append("")
    if figures:
        lines.append(
            "noise: how much each side's time varied between repetitions, (max - min) / median"
        )
        lines.append("(the ratios vary much less: their range is on each figure's line)")
    for f in figures:
        sides = [
            f"{name} {n['spread_pct']:.0f}%"
            for name, n in f["noise"].items()
            if isinstance(n, dict) and "spread_pct" in n
        ]
        if sides:
            lines.append(f"  {f['key']}: " + ", ".join(sides))
    meta = next((f["detail"] for f in figures if f["key"] == "metadata_bytes"), None)
    if meta is not None:
        lines.append("")
        lines.append(
            f"metadata: frame {meta['frame_bytes']:.1f} B + page cache and LRU "
            f"{meta['page_cache_and_lru_bytes']:.1f} B a page (page object alone "
            f"{meta['page_object_bytes']} B); buffer heads, apart: "
            f"{meta['buffer_heads_bytes_per_page_1k_blocks']:.0f} B a page with 1 KiB blocks; "
            f"the kernel's struct page: 64 B"
        )
    e2e = next((f for f in figures if f["key"].startswith("end_to_end[")), None)
    if e2e is not None:
        d = e2e["detail"]
        lines.append("")
        runs = ", ".join(
            f"{r['pages']:,} pages in {r['seconds']:.2f} s ({r['pages_per_second']:,.0f}/s, "
            f"{r['ratio_to_engine']:.1f}x the engine's time)"
            for r in d["runs"].values()
        )
        lines.append(
            f"end to end ({d['table']}, {d['dirty']:.0%} dirty; the engine "
            f"{d['engine_pages_per_second']:,.0f}/s): {runs}"
        )
        phases = ", ".join(f"{name} {sec:.2f} s" for name, sec in d["phases_s"].items())
        lines.append(f"  where the time of the largest run goes: {phases}")
    lines.append("")
    lines.append("pages per second, per table:")
    for row in report["throughput"]:
        label = f"{row['fs']}/{row['mode']} ({row['table']})"
        if "note" in row:
            lines.append(f"  {label:<48} {row['note']}")
            continue
        lines.append(
            f"  {label:<48} {row['state']:<5} {row['pages_per_second']:>10,.0f}/s "
            f"({row['us_per_page']:.1f} µs a page; moved {row['moved']}, failed "
            f"{row['failed']}, {row['passes']} pass(es); spread {row['noise']['spread_pct']:.0f}%)"
        )
    if not report["throughput"]:
        lines.append("  none: no selected plugin provides a table")
    big = report.get("million")
    if big:
        lines.append("")
        if "error" in big:
            lines.append(f"{big['pages']:,} pages: FAILED: {big['error']}")
        else:
            lines.append(
                f"{big['pages']:,} pages ({big['table']}): migrated in "
                f"{big['migrate_seconds']:.1f} s ({big['pages_per_second']:,.0f}/s), filled in "
                f"{big['fill_seconds']:.1f} s; peak RSS {big['peak_rss_bytes'] / 2**30:.2f} GiB "
                f"(page data {big['page_data_bytes_touched'] / 2**30:.2f} GiB); "
                f"{'completed' if big['completed'] else 'DID NOT COMPLETE'}"
            )
        whole = big.get("end_to_end")
        if whole and "error" in whole:
            lines.append(
                f"{whole['pages']:,} pages end to end (fsaops migrate): NOT MEASURED: "
                f"{whole['error']}"
            )
        elif whole:
            lines.append(
                f"{whole['pages']:,} pages end to end (fsaops migrate): {whole['seconds']:.1f} s "
                f"(target < {whole['target_seconds']:g} s), peak RSS "
                f"{whole['peak_rss_bytes'] / 2**30:.2f} GiB = {whole['peak_over_model']:.2f}x the "
                f"{whole['model_bytes'] / 2**30:.2f} GiB the model holds (target ≤ "
                f"{whole['target_peak_over_model']:g}x); status {whole['status']}; "
                f"{'met' if whole['met'] else 'NOT MET'}"
            )
    m = report["method"]
    env = report["environment"]
    plugins = report.get("plugins") or {}
    lines.append("")
    lines.append(
        f"{m['pages']:,} pages a run, {m['repeat']} repetitions after a warm-up; each ratio is "
        "the median of the repetitions' A ÷ B, A and B run back to back in alternating order;"
    )
    lines.append(
        f"CPU time, collector paused; Python {env['python']} on {env['cpus']} CPU(s)"
        f"{' (' + env['processor'] + ')' if env.get('processor') else ''}; "
        f"{m['seconds']:.1f} s in all"
    )
    if plugins:
        lines.append(
            f"plugins: {', '.join(plugins['selection']) or 'none'} "
            f"(selected by {plugins['selected_by']})"
        )
    lines.append(f"what each figure measures, and how: {DOCS}")
    return "\n".join(lines)


class _UsageError(Exception):
    """Arguments the benchmark's parser refused."""


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)  # as fsaops's own: "--jso" is not "--json"
        super().__init__(*args, **kwargs)
        from fsaops.cli import _StoreOnce  # as fsaops's own: a value option is given once

        self.register("action", None, _StoreOnce)
        self.register("action", "store", _StoreOnce)

    def error(self, message: str) -> NoReturn:
        raise _UsageError(message)

    def _print_message(self, message: str, file: Any = None) -> None:
        from fsaops.cli import _write

        if message:
            _write(message)


def _count(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        from fsaops.cli import _decimal

        try:
            value = _decimal(text)
        except ValueError:
            value = low - 1
        if not low <= value <= high:
            shown = text if len(text) <= 40 else text[:40] + "..."
            raise argparse.ArgumentTypeError(
                f"expected an integer from {low:,} to {high:,}, got {shown!r}"
            )
        return value

    return parse


def _parser() -> _Parser:
    parser = _Parser(
        prog="fsaops bench",
        description="Measure the performance figures of the migration engine "
        f"(described in {DOCS}).",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument(
        "--pages",
        type=_count(MIN_PAGES, MAX_PAGES),
        default=None,
        help=f"pages a run, {MIN_PAGES} to {MAX_PAGES:,} (default {DEFAULT_PAGES:,}; the "
        "scaling figure uses ten times as many)",
    )
    parser.add_argument(
        "--repeat",
        type=_count(1, MAX_REPEAT),
        default=None,
        help=f"repetitions of each side, 1 to {MAX_REPEAT} (default {DEFAULT_REPEAT})",
    )
    parser.add_argument(
        "--plugins",
        metavar="NAME,...",
        help="plugins to load, comma-separated (overrides FSAOPS_PLUGINS); the figures need ext2",
    )
    parser.add_argument(
        "--quick", action="store_true", help="a small, fast run (for tests; figures are rough)"
    )
    parser.add_argument(
        "--million",
        action="store_true",
        help="also migrate a million pages and report the time and peak memory (takes a while)",
    )
    parser.add_argument(
        "--semantics",
        choices=tuple(SEMANTICS),
        default=DEFAULT_SEMANTICS,
        metavar="NAME",
        help="the release of the migration code the machines run: "
        f"{', '.join(SEMANTICS)} (default {DEFAULT_SEMANTICS})",
    )
    parser.add_argument(
        "--million-pages", type=_count(1, MILLION), default=MILLION, help=argparse.SUPPRESS
    )
    parser.add_argument(
        "--million-child", type=_count(1, MILLION), default=None, help=argparse.SUPPRESS
    )
    parser.add_argument("--phases-child", metavar="PATH", default=None, help=argparse.SUPPRESS)
    return parser


def _progress_line(what: str) -> None:
    stream = sys.stderr
    if stream is None:
        return
    with contextlib.suppress(OSError, ValueError):  # progress is a courtesy
        print(f"... {what}", file=stream, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; print the figures (or JSON). Returns the exit status.

    Arguments out of range end it with one line on standard error (and,
    with ``--json``, the JSON envelope) and ``SystemExit(2)``.
    """
    from fsaops.cli import _error, _fail, _one_line, _run, _write
    from fsaops.status import envelope

    args_list = list(sys.argv[1:] if argv is None else argv)
    json_mode = "--json" in args_list
    try:
        args = _parser().parse_args(args_list)
    except _UsageError as exc:
        _fail(Status.BAD_INPUT, f"{exc} (see fsaops bench --help)", json_mode)
        raise SystemExit(2) from None

    def bench() -> int:
        if args.million_child is not None:
            _write(json.dumps(million(args.million_child)) + "\n")
            return 0
        if args.phases_child is not None:
            _write(json.dumps(_phases_child(args.phases_child, args.plugins or "ext2")) + "\n")
            # Then end as the program ends once its command is done, so that the
            # ``exit`` phase is the program's own.
            from fsaops.cli import _exit_now

            _exit_now(0)
        pages = args.pages if args.pages is not None else QUICK_PAGES if args.quick else None
        repeat = args.repeat if args.repeat is not None else QUICK_REPEAT if args.quick else None
        registry = load_plugins(cli=args.plugins)
        if not registry.filesystems:
            selected = ", ".join(registry.selection) or "none"
            _fail(
                Status.BAD_INPUT,
                "nothing to measure: the figures need filesystem ext2 and the rates a table, "
                f"and no selected plugin provides any (selected by {registry.selected_by}: "
                f"{selected})",
                args.json,
            )
            return Status.BAD_INPUT.exit_code
        progress = None if args.json else _progress_line
        report = run(
            pages=DEFAULT_PAGES if pages is None else pages,
            repeat=DEFAULT_REPEAT if repeat is None else repeat,
            million_pages=args.million_pages if args.million else None,
            progress=progress,
            registry=registry,
            semantics=args.semantics,
        )
        failed = not_measured(report)
        status = Status.OK if failed is None else Status(failed[0])
        if failed is not None:
            _error(failed[1])
        if args.json:
            # Like every command's JSON: the schema and the status first (and
            # the error, when a run was not measured).
            head = envelope(status, None if failed is None else _one_line(failed[1]))
            _write(json.dumps({**head, **report}, indent=2) + "\n")
        else:
            _write(render(report) + "\n")
        return status.exit_code

    return _run(bench, args.json)


if __name__ == "__main__":
    raise SystemExit(main())
