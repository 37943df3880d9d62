"""Building a deterministic world from a scenario, migrating it, and checking it.

:func:`run_scenario` is what ``fsaops migrate`` does:

1. **Build** (:class:`Scenario`, through the one builder,
   :class:`~fsaops.world.World`): a :class:`~fsaops.kernel.Kernel` with the
   loaded plugins; a swap device; every ``[[mount]]`` with its files, whose
   page-cache pages sit on the source node (an execute-in-place mount keeps
   its data on the device; a buffer-cache mapping such as ``xfs_buftarg``
   has its pages filled directly); processes with anonymous memory.  Every
   page gets known data from the world's content generator
   (:class:`~fsaops.content.Contents`), through the model: a file's data
   is put on its device a run of blocks at a time and each page read in
   through the table's ``readpage`` (:meth:`~fsaops.world.World.load_file`),
   so pages start clean; a file whose table cannot read pages in or write
   them back is written with ``write(2)``, then written back while the
   journal commits; anonymous pages are written into process memory.
2. **Workload**: pages picked with a seeded generator get their state:
   mlocked (mapped in ``VM_LOCKED`` areas), swapout, pinned (another task
   holds a reference until the run ends), locked (another task holds the
   page lock for a while), writeback (rewritten and handed to
   ``writepage``, the I/O still in flight), dirty (rewritten through a
   shared mapping and dirtied with ``set_page_dirty`` as the mapping goes),
   mapped (mapped shared by a process and rewritten through the mapping),
   buffer_locked (another task holds one of the page's buffers locked for
   a while, as a write of that block in flight does).
3. **Migrate**: :func:`~fsaops.memory_hotplug.migrate_node` isolates every
   page on the source node's LRU lists and moves them with
   :func:`~fsaops.mempolicy.migrate_pages_to`, one chunk of new pages at a
   time (so progress can be shown); the swapout pages go
   through ``migrate_pages`` with no target pages, the V4 swap-out
   migration.  Faults are injected only here.
4. **Check**: holds are released and pending I/O settles; every file is
   read back with ``read(2)`` and every process's memory through its page
   tables, new pages being allocated on the target node, and the oracle
   (:class:`~fsaops.oracle.Oracle`) compares each page with what was
   written (a run of pages at a time, page by page where a run differs);
   then the invariant checker runs.  The report's counters
   (``vmstat``) cover the migration and this read-back: under the V4
   semantics a migrated anonymous page is read through its swap pte, a
   minor fault (``pgfault``).

The kernel runs the release of the migration code that ``[kernel]
semantics`` names (:mod:`fsaops.semantics`).

The same scenario and seed give the same world, the same run and the same
report.
"""

from __future__ import annotations

import bisect
import contextlib
import gc
import hashlib
import math
import random
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from fractions import Fraction
from typing import TYPE_CHECKING, Any, Final, Protocol, overload

import attrs

from fsaops import supervisor
from fsaops.aops import configure_aops, member_name
from fsaops.backing import Committer
from fsaops.buffer import BufferHead, buffers
from fsaops.config import (
    BUILTIN_SOURCE,
    Config,
    LeftOut,
    MountConfig,
    WorkloadConfig,
    check_config,
    effective_config,
    not_mounted,
    unstructure_config,
)
from fsaops.debug import broken_fields_said, check_kernel
from fsaops.errors import (
    INTERRUPTS,
    ConfigError,
    FsaopsError,
    KernelBug,
    MigrationDisabled,
    PluginFault,
    RunTimeout,
    describe_exception,
    interrupt_told,
    reclaim_signals,
    shown_path,
)
from fsaops.fault_inject import FaultInjector
from fsaops.gfp import GFP_KERNEL
from fsaops.lists import PageList, list_add_tail
from fsaops.lru import isolate_lru_page, putback_lru_pages
from fsaops.mapping import AddressSpace, try_to_release_page
from fsaops.memory_hotplug import migrate_node
from fsaops.mempolicy import MIGRATE_CHUNK_SIZE
from fsaops.migrate import MAX_PASSES, MigrateStats, migrate_pages, table_name
from fsaops.page import PG, Page, lock_page, unlock_page
from fsaops.plugins import watch_imports
from fsaops.process import Alarm, keep_handler, plugin_of_module
from fsaops.proofs import (
    Places,
    account_problems,
    ledger,
    prove_durability,
    prove_placement,
    snapshot_places,
)
from fsaops.replay import WATCHED_PAGES, ReplayWatch
from fsaops.report import (
    Integrity,
    MountReport,
    PageOutcome,
    PluginVersion,
    Proofs,
    Report,
    Selection,
    TableReport,
    Totals,
)
from fsaops.rmap import AnonVma
from fsaops.sched import Hold, Task, hold, release
from fsaops.untouched import Untouched
from fsaops.world import (
    Area,
    File,
    World,
    interleave_blocks,
    start_write,
    tail_bytes,
    write_head_buffer,
)
from fsaops.writeback import write_one_page

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from types import FrameType

    from fsaops.fs import SuperBlock
    from fsaops.kernel import Kernel
    from fsaops.plugins import Registry
    from fsaops.proofs import Placed
    from fsaops.rmap import Mm, Vma
    from fsaops.typing import EngineLog

__all__ = [
    "CHUNK_PAGES",
    "REPLAY_KEEPS",
    "REPLAY_KEEPS_AT_LEAST",
    "SETTLE_TICKS",
    "STOP_SECONDS",
    "Plan",
    "Progress",
    "ReplayStopped",
    "RunObserver",
    "Scenario",
    "Slot",
    "Slots",
    "plan_scenario",
    "run_plan",
    "run_scenario",
    "stall_watched",
]

Progress = Callable[[str, int, int], None]
"""Called as ``progress(phase, done, total)``; phases are ``build``, ``migrate``, ``check``."""

CHUNK_PAGES: Final = MIGRATE_CHUNK_SIZE + 1
"""Pages migrated per ``migrate_pages_to`` call: one chunk of new pages (257)."""

COMMIT_AHEAD_PAGES: Final = 65_536
"""New frames (256 MiB of 4 KiB pages) a migration has committed ahead of the engine.

The committing thread (:mod:`fsaops.backing`) needs the interpreter lock
between two requests, which a busy run hands over every few milliseconds:
few large requests keep it ahead."""

SETTLE_TICKS: Final = 256
"""Ticks the clock runs after the world is written, so periodic flushers (a journal) commit."""

MAX_PROBLEMS: Final = 20
"""Integrity problems listed in a report (all are counted)."""


def _any_fault(config: Config) -> bool:
    """Whether the scenario injects any fault at all."""
    faults = config.faults
    return bool(faults.alloc_fail or faults.writepage_error or faults.swap_full)


class RunObserver(Protocol):
    """Something that looks at a run at two moments (the HTML report's frame maps, a trace).

    :func:`run_plan` calls :meth:`built` once the world is built and every
    page has its state, just before migration starts, and :meth:`migrated`
    when migration is over (other tasks let go, pages put back), before the
    proofs and the read-back touch anything.  Neither may change the machine.
    """

    def built(self, scenario: Scenario) -> None:
        """The world is built; migration starts next."""

    def migrated(
        self, scenario: Scenario, stats: MigrateStats, places: Mapping[int, Placed]
    ) -> None:
        """Migration is over; ``places`` is where every page was before it, by old pfn."""


def _subseed(seed: int, purpose: str) -> int:
    digest = hashlib.sha256(f"fsaops/{seed}/{purpose}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def _by_file(slots: Iterable[Slot]) -> list[tuple[File, list[int]]]:
    """The file pages ``slots`` name, by file: each file once, where it first comes."""
    files: dict[int, tuple[File, list[int]]] = {}
    for slot in slots:
        record = slot.owner
        assert isinstance(record, File)
        files.setdefault(id(record), (record, []))[1].append(slot.index)
    return list(files.values())


def _share(fraction: float, pages: int) -> int:
    """The pages ``fraction`` of ``pages`` comes to: ``floor(fraction * pages + 1/2)``.

    Rounded half up, on the fraction as written (``0.29`` of 50 pages is
    14.5, so 15, where the binary float's product is just under 14.5).
    """
    return math.floor(Fraction(repr(fraction)) * pages + Fraction(1, 2))


# -- the scenario's world --------------------------------------------------------------


@attrs.frozen
class Slot:
    """One page of data the scenario wrote.

    Attributes:
        kind: ``file`` (a page-cache page of a file), ``meta`` (a page of a
            buffer-cache mapping) or ``anon`` (anonymous memory).
        owner: the file or the process area it belongs to.
        index: its page number there.
    """

    kind: str
    owner: File | Area
    index: int

    @property
    def key(self) -> str:
        """The page's name (``mount0/file1/page7``, ``process0/anon12``)."""
        return self.owner.page_key(self.index)


class Slots(Sequence[Slot]):
    """Every page the scenario wrote, in order: files, buffer-cache mappings, then processes.

    Kept a file or area at a time; each page's :class:`Slot` is made the
    first time it is asked for and is the same object from then on, so a
    large scenario makes slots only for the pages that get a state.
    """

    __slots__ = ("_len", "_made", "_runs", "_starts")

    def __init__(self) -> None:
        self._runs: list[tuple[str, File | Area, int]] = []
        self._starts: list[int] = []
        self._len = 0
        self._made: dict[int, Slot] = {}

    def add(self, kind: str, owner: File | Area, npages: int) -> range:
        """Add ``npages`` pages of ``owner`` (of ``kind``); returns their positions."""
        start = self._len
        if npages > 0:
            self._runs.append((kind, owner, npages))
            self._starts.append(start)
            self._len += npages
        return range(start, self._len)

    def __len__(self) -> int:
        return self._len

    @overload
    def __getitem__(self, position: int) -> Slot: ...

    @overload
    def __getitem__(self, position: slice) -> list[Slot]: ...

    def __getitem__(self, position: int | slice) -> Slot | list[Slot]:
        if isinstance(position, slice):
            return [self[i] for i in range(*position.indices(self._len))]
        if position < 0:
            position += self._len
        slot = self._made.get(position)
        if slot is None:
            if not 0 <= position < self._len:
                raise IndexError(f"page position {position} of {self._len}")
            n = bisect.bisect_right(self._starts, position) - 1
            kind, owner, _npages = self._runs[n]
            slot = self._made[position] = Slot(kind, owner, position - self._starts[n])
        return slot

    def __iter__(self) -> Iterator[Slot]:
        for position in range(self._len):
            yield self[position]

    def position(self, slot: Slot) -> int:
        """Where ``slot`` is.

        Raises:
            ValueError: it is not a page of this scenario.
        """
        for (kind, owner, npages), start in zip(self._runs, self._starts, strict=True):
            if owner is slot.owner and kind == slot.kind and 0 <= slot.index < npages:
                return start + slot.index
        raise ValueError(f"{slot.key} is not a page of this scenario")

    def positions(self, keep: Callable[[str, File | Area], bool]) -> Sequence[int]:
        """The positions of the pages of every file or area for which ``keep(kind, owner)``.

        In order; a ``range`` when they are all consecutive (a list otherwise).
        """
        spans: list[range] = []
        for (kind, owner, npages), start in zip(self._runs, self._starts, strict=True):
            if keep(kind, owner):
                if spans and spans[-1].stop == start:
                    spans[-1] = range(spans[-1].start, start + npages)
                else:
                    spans.append(range(start, start + npages))
        if len(spans) == 1:
            return spans[0]
        return [position for span in spans for position in span]


@attrs.define(eq=False)
class _View:
    """A file page mapped into a process (mapped or mlocked)."""

    file: File
    index: int
    mm: Mm
    vma: Vma


class Scenario:
    """The machine a scenario describes, built by a :class:`~fsaops.world.World`.

    The world is the one builder; this class decides, from the scenario,
    what it builds: the swap device, the mounts and their files, the
    processes and their memory, and which pages get which state.

    Args:
        config: the scenario (checked against ``registry``).
        registry: the loaded plugins.
        seed: the run's seed.
        log: the engine's logger, or ``None``.
        progress: called as pages are written.
    """

    def __init__(
        self,
        config: Config,
        registry: Registry,
        *,
        seed: int,
        log: EngineLog | None = None,
        progress: Progress | None = None,
    ) -> None:
        config, _left = effective_config(config, registry)
        k = config.kernel
        self.config = config
        self.seed = seed
        self.page_size = k.page_size
        #: The migration's outcome counts and findings, once it has begun.
        self.stats: MigrateStats | None = None
        self.faults = FaultInjector(
            alloc_fail=config.faults.alloc_fail,
            writepage_error=config.faults.writepage_error,
            swap_full=config.faults.swap_full,
            seed=_subseed(seed, "faults"),
        )
        self.world = World(
            registry=registry,
            nodes=k.nodes,
            node_pages=config.node_pages,
            page_size=k.page_size,
            migration=k.migration,
            io_latency=k.io_latency,
            debug_vm=k.debug_vm,
            strict=k.strict,
            # An injector that never injects is left out: the kernel then
            # asks nobody at every allocation and write.
            faults=self.faults if _any_fault(config) else None,
            seed=_subseed(seed, "kernel"),
            log=log,
            semantics=k.semantics,
            commit_interval=k.commit_interval,
        )
        self.kernel = self.world.kernel
        self.log = log
        self.rng = random.Random(_subseed(seed, "workload"))
        self.source_node = config.migrate.from_node
        self.target_node = config.migrate.to_node
        self.views: list[_View] = []
        #: Each process's shared mapping of each file, by (file, process, VM_LOCKED).
        self._areas: dict[tuple[int, int, bool], Vma] = {}
        self.mounts: list[MountReport] = []
        self.mms: list[Mm] = []
        self.slots = Slots()
        self.states: dict[str, list[Slot]] = {s: [] for s in WorkloadConfig.STATES}
        #: The pinned pages rewritten and left dirty before the pin (``workload.pinned_dirty``).
        self.pinned_dirty: list[Slot] = []
        #: The swapout pages rewritten and left dirty before swap-out (``workload.swapout_dirty``).
        self.swapout_dirty: list[Slot] = []
        #: The released pages stored into, their buffers freed (``workload.released_dirty``).
        self.released_dirty: list[Slot] = []
        #: The dirty pages rewritten with ``write(2)`` (``workload.dirty_written``).
        self.dirty_written: list[Slot] = []
        self.holds: list[tuple[Task, Hold]] = []
        #: The ``buffer_locked`` pages and the hold of each one's buffer.
        self.held_buffers: list[tuple[Slot, Hold]] = []
        #: What migration did with a held buffer that it must not have
        #: (:meth:`buffers_left_behind`), read as it ends.
        self.buffers_left: list[str] = []
        self.swaplist = PageList("swapout")
        #: The pages the migration handed to ``migrate_pages`` (isolated, and
        #: the swapout pages), which its counts must account for.
        self.given = 0
        self._progress = progress
        self._unsettled: list[File] = []
        self._written = 0
        self._to_write = 0
        self._build()

    # -- building ----------------------------------------------------------------

    @property
    def files(self) -> list[File]:
        """The files of every mount (and buffer-cache mappings)."""
        return self.world.files

    @property
    def areas(self) -> list[Area]:
        """The processes' areas of anonymous memory."""
        return self.world.areas

    def _tick_progress(self, pages: int) -> None:
        self._written += pages
        if self._progress is not None:
            self._progress("build", self._written, self._to_write)

    def _build(self) -> None:
        config = self.config
        world = self.world
        kernel = self.kernel
        self._to_write = sum(m.pages for m in config.mount) + config.anon_pages
        kernel.alloc_nid = self.source_node
        if config.swap_slots > 0:
            world.swapon(config.swap_slots)
        # Every frame the build fills is committed by a thread of its own, ahead
        # of the reads that fill them (fsaops.backing): on a large run most of
        # it is memory the operating system hands out for the first time.
        committer = Committer()
        source = kernel.nodes[self.source_node]
        world.prefault(self.source_node, min(self._to_write, source.nr_free), committer=committer)
        world.committer = committer
        try:
            self._mount_all()
        finally:
            world.committer = None
            committer.close()
        self._start_processes()
        self._give_out_states()
        self._settle()
        self._apply_states()
        if self.log is not None:
            self.log.info(
                "scenario_built",
                files=len(self.files),
                processes=len(self.mms),
                pages=len(self.slots),
                tick=kernel.sched.now,
            )

    def _mount_all(self) -> None:
        """Mount every ``[[mount]]`` and fill it with its files."""
        config = self.config
        world = self.world
        kernel = self.kernel
        file_pages = sum(mount.pages for mount in config.mount)
        for i, mount in enumerate(config.mount):
            sb = world.mount(
                mount.fs,
                mount.mode,
                block_size=mount.block_size,
                nr_blocks=_device_blocks(
                    mount,
                    config.kernel.page_size,
                    world,
                    out_of_line=config.workload.out_of_line,
                    holes=min(mount.pages, _share(config.workload.holes, file_pages)),
                ),
                name=f"mount{i}",
            )
            fstype = sb.s_type
            self.mounts.append(
                MountReport(
                    name=f"mount{i}",
                    filesystem=mount.fs,
                    mode=fstype.default_mode if mount.mode is None else mount.mode,
                    block_size=(
                        fstype.default_block_size if mount.block_size is None else mount.block_size
                    ),
                    table=kernel.mount_table(sb).name,
                )
            )
            self._fill_mount(i, sb, mount.files, mount.pages)

    def _tails(self, index: int, sizes: list[int]) -> set[int]:
        """Which of a mount's files (by number; ``sizes`` in pages) end inside their last page.

        ``workload.tail`` of the files with pages, drawn by a generator of
        their own, so that every other choice of the run is the same with
        tails as without.
        """
        fraction = self.config.workload.tail
        candidates = [f for f, npages in enumerate(sizes) if npages]
        if fraction <= 0 or not candidates:
            return set()
        rng = random.Random(_subseed(self.seed, f"tail/{index}"))
        want = min(_share(fraction, len(candidates)), len(candidates))
        return {candidates[i] for i in rng.sample(range(len(candidates)), want)}

    def _fill_mount(self, index: int, sb: SuperBlock, files: int, pages: int) -> None:
        fstype, mode = sb.s_type, sb.mode
        label = f"mount[{index}] ({fstype.name} {mode})"
        meta = fstype.is_buffer_cache(mode)
        nfiles = 1 if meta else files
        base, extra = divmod(pages, nfiles)
        sizes = [base + (1 if f < extra else 0) for f in range(nfiles)]
        ps = self.world.page_size
        tails = set() if meta else self._tails(index, sizes)
        for f in range(nfiles):
            npages = sizes[f]
            key = f"mount{index}/{'meta' if meta else f'file{f}'}"
            record = self.world.create_file(
                sb,
                key=key,
                label=f"{label} {'metadata' if meta else f'file {f}'}",
                name=key,  # every message names it as the report does
            )
            table = sb.a_ops
            loaded = not record.page_cache or (
                table.readpage is not None and table.writepage is not None
            )
            tail = f in tails and loaded and not meta
            if not meta and npages and self._out_of_line(sb):
                size = npages * ps - ((ps - tail_bytes(ps)) if tail else 0)
                interleave_blocks(record.inode, size)
            if meta:
                self.world.fill_buffer_cache(record, npages, self.source_node)
            elif loaded:
                # Clean pages of data that is on disk: put on the device and
                # read in through the table's readpage (execute in place: the
                # device alone).
                self.world.load_file(record, npages, nid=self.source_node, tail=tail)
            else:
                # Nothing to read from or write back to: written with write(2).
                self.world.write_file(record, npages)
                self._unsettled.append(record)
            if record.page_cache:
                self.slots.add("meta" if meta else "file", record, npages)
            self._tick_progress(npages)

    def _out_of_line(self, sb: SuperBlock) -> bool:
        """Whether the files of ``sb`` get blocks out of line (``[workload] out_of_line``).

        Not on a mount whose blocks are as large as a page: a page of one
        block has nothing out of line.
        """
        return self.config.workload.out_of_line and sb.s_blocksize < self.world.page_size

    def _start_processes(self) -> None:
        procs = self.config.processes
        world = self.world
        self.mms = [world.process(f"process{p}") for p in range(procs.count)]
        if not procs.count:
            return
        base, extra = divmod(self.config.anon_pages, procs.count)
        sizes = [base + (1 if p < extra else 0) for p in range(procs.count)]
        # mlocked anonymous pages live in a VM_LOCKED area of their process: their
        # share of the mlocked pages, which are counted over file and anonymous
        # pages together (_give_out_states gives the file pages the rest).
        nlocked = _share(self.config.workload.mlocked, self.config.anon_pages)
        owners = [p for p, size in enumerate(sizes) for _ in range(size)]
        locked = [0] * procs.count
        for j in self.rng.sample(range(len(owners)), nlocked):
            locked[owners[j]] += 1
        for p, mm in enumerate(self.mms):
            first = 0
            for npages, is_locked in ((sizes[p] - locked[p], False), (locked[p], True)):
                if not npages:
                    continue
                area = world.anon(npages, mm=mm, locked=is_locked, key=f"process{p}", first=first)
                positions = self.slots.add("anon", area, npages)
                if is_locked:
                    self.states["mlocked"].extend(self.slots[i] for i in positions)
                first += npages
                self._tick_progress(npages)

    def _give_out_states(self) -> None:
        """Pick the pages of each state (disjoint), in :attr:`WorkloadConfig.STATES` order.

        Each state draws from its pool (the pages it can apply to, in page
        order) the pages no earlier state took: its fraction of the whole
        pool, rounded half up (:func:`_share`).  ``mlocked`` is counted over
        file and anonymous pages together; the anonymous pages, their own
        share, were placed when the processes started, and the file pages
        get the rest.  Pages are handled by their position in :attr:`slots`
        until picked.
        """
        slots = self.slots
        taken = {slots.position(s) for s in self.states["mlocked"]}
        files = slots.positions(lambda kind, owner: kind == "file")
        writable = slots.positions(
            lambda kind, owner: (
                kind == "file"
                and isinstance(owner, File)
                and owner.inode.i_mapping.a_ops.writepage is not None
            )
        )
        pools: dict[str, Sequence[int]] = {
            "locked": range(len(slots)),
            "pinned": range(len(slots)),
            "swapout": slots.positions(lambda kind, owner: kind != "meta"),
            # Anonymous mlocked pages were placed when the processes started.
            "mlocked": files,
            "writeback": writable,
            "dirty": writable,
            "mapped": files,
            "buffer_locked": (
                self._carrying_buffers("buffer_locked")
                if self.config.fraction("buffer_locked") > 0
                else ()
            ),
            "released": (
                self._carrying_buffers("released") if self.config.fraction("released") > 0 else ()
            ),
            "partial": (
                slots.positions(
                    lambda kind, owner: (
                        kind == "file"
                        and isinstance(owner, File)
                        and owner.inode.i_sb.s_blocksize < self.page_size
                        and owner.inode.i_mapping.a_ops.prepare_write is not None
                    )
                )
                if self.config.fraction("partial") > 0
                else ()
            ),
            "holes": self._sparse() if self.config.fraction("holes") > 0 else (),
        }
        for state in WorkloadConfig.STATES:
            pool = pools[state]
            whole = len(pool) + (self.config.anon_pages if state == "mlocked" else 0)
            want = _share(self.config.fraction(state), whole) - len(self.states[state])
            if want <= 0:
                continue  # sampling nothing draws nothing from the generator
            free = [p for p in pool if p not in taken] if taken else pool
            # Sampling the positions draws what sampling the pages would; sorted,
            # they give the pages in page order.
            chosen = sorted(self.rng.sample(range(len(free)), min(want, len(free))))
            picked = [free[i] for i in chosen]
            taken.update(picked)
            self.states[state].extend(slots[p] for p in picked)
        # The modifiers that leave pages of a state dirty: among that state's pages of
        # files whose table has a writepage, in page order.  Each draws only when its
        # key is set, and the later ones after every earlier draw, so a scenario
        # without them draws what it always did.
        writable_set = set(writable)
        self.pinned_dirty.extend(
            self._some_writable("pinned", self.config.workload.pinned_dirty, writable_set)
        )
        fraction = self.config.workload.dirty_written
        dirty = self.states["dirty"]
        if fraction > 0 and dirty:
            # Among the dirty pages, in page order.
            chosen = sorted(self.rng.sample(range(len(dirty)), _share(fraction, len(dirty))))
            self.dirty_written.extend(dirty[i] for i in chosen)
        self.swapout_dirty.extend(
            self._some_writable("swapout", self.config.workload.swapout_dirty, writable_set)
        )
        self.released_dirty.extend(
            self._some_writable("released", self.config.workload.released_dirty, writable_set)
        )

    def _some_writable(self, state: str, fraction: float, writable: set[int]) -> list[Slot]:
        """``fraction`` of ``state``'s pages among ``writable`` (positions), drawn in page order."""
        if fraction <= 0:
            return []  # sampling nothing draws nothing from the generator
        slots = self.slots
        candidates = [s for s in self.states[state] if slots.position(s) in writable]
        want = min(_share(fraction, len(candidates)), len(candidates))
        chosen = sorted(self.rng.sample(range(len(candidates)), want))
        return [candidates[i] for i in chosen]

    def _sparse(self) -> Sequence[int]:
        """Where the file pages that can be given holes are: ``holes``' pool.

        Pages read in from their disk (a table with ``readpage`` and
        ``writepage``) whose blocks are smaller than a page, with at least
        two blocks inside their file (:meth:`~fsaops.world.World.make_holes`).

        Raises:
            ConfigError: pages of such tables and blocks there are, and each
                ends its file inside its first block, which the scenario's
                check could not tell (the built-in scenario, cut to the
                selected plugins, is not refused).
        """
        pool: list[int] = []
        short = 0  # pages that could, but end their file inside their first block
        for p, slot in enumerate(self.slots):
            owner = slot.owner
            if slot.kind != "file" or not isinstance(owner, File):
                continue
            inode = owner.inode
            a_ops = inode.i_mapping.a_ops
            if (
                inode.i_sb.s_blocksize < self.page_size
                and a_ops.readpage is not None
                and a_ops.writepage is not None
            ):
                if self.world.blocks_inside(owner, slot.index) >= 2:
                    pool.append(p)
                else:
                    short += 1
        if short and not pool and not self.config.builtin:
            raise ConfigError(
                "workload.holes: no page of this scenario can be given holes: every file page "
                "of a table with readpage and writepage whose blocks are smaller than a page "
                "ends its file inside its first block"
            )
        return pool

    def _carrying_buffers(self, state: str) -> Sequence[int]:
        """Where the file pages that carry buffer heads once read in are: ``state``'s pool.

        The pool of ``buffer_locked`` and of ``released``.

        Raises:
            ConfigError: no page does, so ``workload.<state>`` has none to
                give its state to (the built-in scenario, cut to the
                selected plugins, is not refused: its pool is empty).
        """
        page_of = self.world.page_of
        pool = [
            p
            for p, slot in enumerate(self.slots)
            if slot.kind == "file"
            and (page := page_of(slot.owner, slot.index)) is not None
            and page.flags & PG.private
            and isinstance(page.private, BufferHead)
        ]
        if not pool and not self.config.builtin:
            # The built-in scenario, cut to the selected plugins, is not refused.
            tables = sorted({m.table for m in self.mounts})
            small_blocks = any(m.block_size < self.page_size for m in self.mounts)
            hint = (
                ": a table that reads pages without buffer heads, as mpage_readpage does, "
                "gives them to pages whose blocks are not in one run (workload.out_of_line = true)"
                if small_blocks and not self.config.workload.out_of_line
                else ""
            )
            raise ConfigError(
                f"workload.{state}: no file page of this scenario carries buffer heads "
                f"once read in (its tables: {', '.join(tables) or 'none'}){hint}"
            )
        return pool

    def _area(self, record: File, p: int, locked: bool) -> Vma:
        """Process ``p``'s shared area of ``record`` (``VM_LOCKED`` if ``locked``), mapped once."""
        key = (id(record), p, locked)
        vma = self._areas.get(key)
        if vma is None:
            vma = self._areas[key] = self.world.map_file(record, self.mms[p], locked=locked)
        return vma

    def _map(self, slots: Sequence[Slot], *, locked: bool, gen: int) -> list[int]:
        """Map file pages into processes and touch them (write ``gen`` if not 0, else read).

        Each page goes to a process picked at random; a process maps a whole
        file in one shared area (a ``VM_LOCKED`` one for mlocked pages), of
        which only the picked pages are touched, so only they get ptes.
        Returns the process each page went to.
        """
        world = self.world
        chosen = []
        for slot in slots:
            record = slot.owner
            assert isinstance(record, File)
            p = self.rng.randrange(len(self.mms))
            mm = self.mms[p]
            vma = self._area(record, p, locked)
            if gen:
                world.store(record, slot.index, mm, vma, gen)
            else:
                world.touch(mm, vma, slot.index)
            self.views.append(_View(record, slot.index, mm, vma))
            chosen.append(p)
        return chosen

    def _map_again(self, slots: Sequence[Slot], first: Sequence[int]) -> None:
        """Map each page in a second process, other than ``first``'s, which reads it."""
        world = self.world
        for slot, p in zip(slots, first, strict=True):
            record = slot.owner
            assert isinstance(record, File)
            q = self.rng.randrange(len(self.mms) - 1)
            q += q >= p
            mm = self.mms[q]
            vma = self._area(record, q, False)
            world.touch(mm, vma, slot.index)
            self.views.append(_View(record, slot.index, mm, vma))

    def _writeback_dirty(self) -> None:
        """Start writing every dirty file page, as the flusher would."""
        for record in self._unsettled:
            mapping = record.inode.i_mapping
            if mapping.a_ops.writepage is None:
                continue
            for page in mapping.pages():
                if page.flags & PG.dirty:
                    start_write(page)

    def _settle(self) -> None:
        """Write everything back and let the journal commit, so every page starts clean."""
        file_mlocked = [s for s in self.states["mlocked"] if s.kind == "file"]
        if file_mlocked:
            self._map(file_mlocked, locked=True, gen=0)
        self._writeback_dirty()
        sched = self.kernel.sched
        sched.run_until_idle()
        self.kernel.sync_filesystems()
        sched.run_for(SETTLE_TICKS)
        sched.run_until_idle()
        # A mount whose table wrote a page of a file written with write(2)
        # back has a disk now: a page of any of its files that a later sync
        # leaves dirty is one the sync skipped, not one its table has
        # nowhere to write.
        written = {
            id(record.inode.i_sb)
            for record in self._unsettled
            if record.inode.i_mapping.a_ops.writepage is not None
            and any(
                page is not None and not page.flags & PG.dirty
                for page in record.inode.i_mapping.page_tree
            )
        }
        for record in self._unsettled:
            if id(record.inode.i_sb) in written:
                record.on_disk = True

    def page_of(self, slot: Slot) -> Page:
        """The page that holds ``slot`` now.

        Raises:
            FsaopsError: it is not in memory (not in the page cache, or swapped out).
        """
        page = self.world.page_of(slot.owner, slot.index)
        if page is None:
            raise FsaopsError(f"page {slot.key} is not in memory after building the world")
        return page

    def _apply_states(self) -> None:
        world = self.world
        kernel = self.kernel
        # First: a page read in whole to be written in part is written back, and
        # the time that takes must not let a journal commit the states below.
        if self.states["partial"]:
            self._write_in_part()
        # Pages given holes are dropped first too, and stored into through a
        # mapping with the mapped pages below.
        for slot in self.states["holes"]:
            assert isinstance(slot.owner, File)
            world.make_holes(slot.owner, slot.index)
        # Dirty pages: rewritten through a shared mapping, as a process does,
        # and dirtied when the mapping goes; a file at a time.
        # Pinned pages left dirty are rewritten the same way, before the pin; and
        # the swapout pages left dirty, before they are isolated below.
        written = {id(slot) for slot in self.dirty_written}
        stored = [slot for slot in self.states["dirty"] if id(slot) not in written]
        for file, indexes in _by_file((*stored, *self.pinned_dirty, *self.swapout_dirty)):
            world.dirty_range(file, indexes, 1)
            # Every other one has its first buffer written out on its own: a
            # dirty page whose buffers are not all dirty, as a write(2) of part
            # of a page leaves it (a page of one buffer, or none, stays as it is).
            lookup = file.inode.i_mapping.lookup
            for index in indexes[::2]:
                page = lookup(index)
                if page is not None:
                    write_head_buffer(page)
        # Dirty pages rewritten with write(2): on ext3 data=ordered their dirty
        # buffers are filed in the running transaction, as ordered data.
        for slot in self.dirty_written:
            record = slot.owner
            assert isinstance(record, File)
            page = world.rewrite(record, slot.index, 1)
            if not page.flags & PG.dirty:
                # data=journal: the buffers are the journal's and the page is clean;
                # a store through a mapping makes it dirty as well.
                world.dirty_range(record, [slot.index], 1)
        for slot in self.states["writeback"]:
            record = slot.owner
            assert isinstance(record, File)
            page = world.rewrite(record, slot.index, 1)
            if page.flags & PG.dirty:
                start_write(page)
        if self.states["released"]:
            self._release_buffers()
            # Released pages left dirty: stored into through a shared mapping once
            # their buffers are gone, so set_page_dirty finds none to dirty.
            # (A page whose table kept its buffers is not released, and not stored into.)
            kept = {id(slot) for slot in self.states["released"]}
            for file, indexes in _by_file(s for s in self.released_dirty if id(s) in kept):
                world.dirty_range(file, indexes, 1)
        if self.states["holes"]:
            # Each read in again by the fault, its holes zeroed, then stored into.
            self._map(self.states["holes"], locked=False, gen=1)
        if self.states["mapped"]:
            mapped = self.states["mapped"]
            first = self._map(mapped, locked=False, gen=1)
            fraction = self.config.workload.mapped_shared
            if fraction > 0 and len(self.mms) > 1:
                chosen = sorted(self.rng.sample(range(len(mapped)), _share(fraction, len(mapped))))
                self._map_again([mapped[i] for i in chosen], [first[i] for i in chosen])
        pages_to_migrate = max(1, len(self.slots))
        if self.states["pinned"]:
            pinner = kernel.new_task("pinner")
            for slot in self.states["pinned"]:
                self.holds.append(
                    (pinner, hold(pinner, kernel.sched, "page_ref", self.page_of(slot), None))
                )
        if self.states["locked"]:
            locker = kernel.new_task("locker")
            for slot in self.states["locked"]:
                ticks = self.rng.randint(1, 2 * pages_to_migrate)
                hold(locker, kernel.sched, "page_lock", self.page_of(slot), ticks)
        if self.states["buffer_locked"]:
            # A write of the block in flight (ll_rw_block, a journal commit)
            # holds the buffer's lock, with the page itself unlocked: until a
            # task first meets it (sleeps on it, or tries it), then for up to
            # the I/O latency; so a sleep on one leaves the others held for
            # the pages after it.  One nobody meets is let go of when
            # migration ends.  As it ends, the block gets the bytes of the
            # frame the write was submitted from (poison if it was freed).
            writer = kernel.new_task("buffer_writer")
            for slot in self.states["buffer_locked"]:
                page = self.page_of(slot)
                head = page.private
                if not page.flags & PG.private or not isinstance(head, BufferHead):
                    raise FsaopsError(
                        f"page {slot.key} lost its buffer heads while the world was built"
                    )
                ring = list(buffers(head))
                bh = ring[self.rng.randrange(len(ring))]
                waited = self.rng.randint(1, max(1, kernel.io_latency))
                held = hold(
                    writer, kernel.sched, "buffer_lock", bh, None, waited=waited, write=True
                )
                self.holds.append((writer, held))
                self.held_buffers.append((slot, held))
        for slot in self.states["swapout"]:
            page = self.page_of(slot)
            if isolate_lru_page(page) == 1:
                list_add_tail(page, self.swaplist)

    def _release_buffers(self) -> None:
        """Free the buffer heads of the ``released`` pages, as reclaim does.

        ``shrink_list`` locks a clean page, frees its buffers with
        ``try_to_release_page`` (the table's ``releasepage``) and, finding
        the page still in use, keeps it in the page cache: clean, up to
        date, with no buffer heads, as ``mpage_readpage`` leaves a page whose
        blocks follow on.  A page whose table keeps its buffers (a
        ``releasepage`` that says no) keeps them, as reclaim's does, and is
        not counted as released.
        """
        kept: list[Slot] = []
        for slot in self.states["released"]:
            page = self.page_of(slot)
            lock_page(page)
            try:
                if try_to_release_page(page, GFP_KERNEL):
                    kept.append(slot)
            finally:
                unlock_page(page)
        self.states["released"] = kept

    def _write_in_part(self) -> None:
        """Drop each ``partial`` page from the cache and write one of its blocks back in.

        The block is drawn among those inside the file
        (:meth:`~fsaops.world.World.write_in_part`).  A page its table reads
        in whole to write part of it ends up to date: it is written back,
        clean as every page no state took, and not counted.
        """
        kept: list[Slot] = []
        for slot in self.states["partial"]:
            record = slot.owner
            assert isinstance(record, File)
            # The blocks the file has bytes in (the last may hold its end): at least one.
            inside = self.world.blocks_inside(record, slot.index)
            page = self.world.write_in_part(record, slot.index, self.rng.randrange(inside))
            if not page.flags & PG.uptodate:
                kept.append(slot)
            else:
                # Read in whole to be written in part: written back, it is clean, as
                # every page no state took.
                write_one_page(page)
        if not kept and not self.config.builtin:
            tables = sorted({m.table for m in self.mounts})
            raise ConfigError(
                "workload.partial: no file page of this scenario stays written in part: its "
                f"tables ({', '.join(tables)}) read the rest of a page in to write part of it"
            )
        self.states["partial"] = kept

    # -- migrating -----------------------------------------------------------------

    def migrate(self, progress: Progress | None = None) -> MigrateStats:
        """Migrate every page of the source node, then swap out the swapout pages.

        Raises:
            MigrationDisabled: the kernel is built without migration (``ENOSYS``).
        """
        kernel = self.kernel
        if not kernel.migration:
            raise MigrationDisabled(_ENOSYS_MESSAGE)
        stats = self.stats = MigrateStats()
        total = 0

        source = kernel.nodes[self.source_node]
        freed = source.nr_free
        committer = Committer()
        ahead = 0  # new pages whose frames were asked to be committed

        def report(done: int, isolated: int) -> None:
            nonlocal total, freed, ahead
            # Between chunks: the frames the last chunk freed go back to the
            # operating system, and the new pages of the chunks to come (the
            # target node's next free frames) are committed by the
            # committer's thread while this one migrates, from that memory
            # rather than memory touched for the first time: a window of
            # COMMIT_AHEAD_PAGES at a time, asked for when all but a sixteenth
            # of the last is used (few requests: each waits for the
            # interpreter lock).
            self.world.give_back(self.source_node, source.nr_free - freed)
            freed = source.nr_free
            if ahead < isolated and ahead - done < COMMIT_AHEAD_PAGES // 16:
                window = min(COMMIT_AHEAD_PAGES, isolated - done)
                self.world.prefault(self.target_node, window, committer=committer)
                ahead = done + window
            total = isolated + len(self.swaplist)
            reclaim_signals()  # Ctrl-C and SIGTERM are fsaops's, whatever plugin code did
            if progress is not None:
                progress("migrate", done, total)

        self.faults.armed = True
        swapout = len(self.swaplist)
        try:
            result = migrate_node(
                kernel,
                self.source_node,
                self.target_node,
                stats=stats,
                chunk=CHUNK_PAGES,
                progress=report,
            )
            self.given = result.isolated + swapout
            if not self.swaplist.empty():
                moved, failed = PageList("moved"), PageList("failed")
                migrate_pages(self.swaplist, None, moved, failed, stats=stats)
                putback_lru_pages(moved)
                putback_lru_pages(failed)
                putback_lru_pages(self.swaplist)
                if progress is not None:
                    progress("migrate", total, total)
        finally:
            self.faults.armed = False
            committer.close()
        self.buffers_left = self.buffers_left_behind()
        for task, held in self.holds:
            release(task, held)
        self.holds.clear()
        kernel.run_until_idle()
        return stats

    def buffers_left_behind(self) -> list[str]:
        """The buffers another task holds locked that are no longer their page's.

        A buffer head is its page's while the page's ring holds it and the
        page is in use.  One a migration replaced with a copy, or left in a
        ring it never freed, is on a frame the migration gave back: the
        write it stands for ends there.  Read while the holds are still on.
        """
        problems = []
        for slot, held in self.held_buffers:
            bh = held.obj
            page = bh.b_page
            head = page.private if page.flags & PG.private else None
            try:
                in_ring = isinstance(head, BufferHead) and any(o is bh for o in buffers(head))
            except KernelBug:
                in_ring = False  # a broken ring: the invariant checker says how
            if page.count > 0 and in_ring:
                continue
            where = "a free frame" if page.count <= 0 else "a page whose ring does not hold it"
            problems.append(
                f"a buffer head of {slot.key} that buffer_writer held locked is on pfn "
                f"{page.pfn}, {where}: migration left it behind (a copy took its place in "
                "the page's ring, or the ring was dropped without try_to_release_page), and "
                "the write it stands for ends on a frame that is no longer the page's"
            )
        return problems

    # -- checking --------------------------------------------------------------------

    def check_integrity(
        self,
        progress: Progress | None = None,
        blame: Callable[[File | Area, int, Page], str] | None = None,
        wrong: list[tuple[File | Area, int, bytes] | None] | None = None,
    ) -> Integrity:
        """Read every page back through the model and compare it with what was written.

        The oracle reads every file and every process's memory (pages read
        from disk or swap are allocated on the target node) and every file
        page a process maps through that process too.  ``blame`` adds to the
        line of a wrong page that was in the page cache; ``wrong`` gets the
        page of each problem (see :meth:`~fsaops.oracle.Oracle.read_back`).
        """
        self.kernel.alloc_nid = self.target_node
        views = [(v.file, v.index, v.mm, v.vma) for v in self.views]
        result = self.world.oracle.read_back(
            self.world, views=views, progress=progress, blame=blame, wrong=wrong
        )
        return Integrity(
            checked=result.checked,
            lost=result.lost,
            corrupted=result.corrupted,
            problems=result.problems[:MAX_PROBLEMS],
            not_cached=sum(r.npages for r in self.files if not r.page_cache),
        )

    def outcomes(
        self, stats: MigrateStats
    ) -> tuple[tuple[PageOutcome, ...], tuple[PageOutcome, ...]]:
        """Every page left and every page failed, each with whose it is (call after migrating).

        Pages that did not move are still where they were, so their file and
        index, or their process and address, are read off them.
        """

        def one(pfn: int, entry: tuple[str, str, str, int]) -> PageOutcome:
            table, why, error, pass_ = entry
            page = self.kernel.pfn_to_page(pfn)
            outcome = PageOutcome(
                pfn=pfn,
                node=page.node.nid,
                table=table,
                errno=error,
                reason=why,
                pass_=None if pass_ < 0 else pass_,
            )
            mapping = page.mapping
            if isinstance(mapping, AddressSpace) and mapping.host is not None:
                inode = mapping.host
                key = self.world.record_of(inode).key
                return attrs.evolve(outcome, file=key, inode=inode.i_ino, index=page.index)
            if isinstance(mapping, AnonVma):
                for vma in list(mapping.vmas):
                    vpn = vma.address(page)
                    if vpn >= 0 and vpn in vma.mm.ptes:
                        return attrs.evolve(outcome, pid=vma.mm.pid, address=vpn * self.page_size)
            return outcome

        left = tuple(one(pfn, entry) for pfn, entry in sorted(stats.pending.items()))
        failed = tuple(one(pfn, entry) for pfn, entry in sorted(stats.failures.items()))
        return left, failed

    def workload_summary(self) -> dict[str, Any]:
        """How many pages got each state, and a digest of which pages (and of the tails)."""
        digest = hashlib.sha256()
        summary: dict[str, Any] = {}
        for state in WorkloadConfig.STATES:
            slots = self.states[state]
            summary[state] = len(slots)
            for slot in slots:
                digest.update(f"{state} {slot.key}\n".encode())
        for record in self.files:  # the files that end inside their last page (workload.tail)
            if record.size is not None:
                digest.update(f"tail {record.key} {record.size}\n".encode())
        summary["pages"] = len(self.slots)
        summary["digest"] = digest.hexdigest()[:16]
        return summary


_PROOF_COUNTERS: Final = (
    "nr_writepage",
    "pswpout",
    "pswpin",
    "pgfault",
    "pgmajfault",
    "pgfree",
)
"""The counters the report gives for the proofs' own work (``proofs.io``)."""


def _device_blocks(
    mount: MountConfig,
    page_size: int,
    world: World,
    *,
    out_of_line: bool = False,
    holes: int = 0,
) -> int:
    """Blocks for a mount's device: its files' pages, with room for their superblock.

    With ``out_of_line`` each file's blocks alternate with another file's,
    so the device holds twice the blocks.  Up to ``holes`` pages of it may
    be given holes (``workload.holes``): the blocks they had stay used, and
    ``writepage`` gives the holes new ones.
    """
    registry = world.kernel.registry
    assert registry is not None
    fstype = registry.filesystem(mount.fs)
    bs = fstype.default_block_size if mount.block_size is None else mount.block_size
    per_page = page_size // bs
    data = mount.pages * per_page
    return (2 * data if out_of_line else data) + holes * (per_page - 1) + mount.files + 64


_ENOSYS_MESSAGE: Final = (
    "this kernel is built without CONFIG_MIGRATION (kernel.migration = false): "
    "migrate_pages returns -ENOSYS (ENOSYS, function not implemented)"
)


# -- the report ---------------------------------------------------------------------


def _tables(
    world: Scenario, stats: MigrateStats, wrong: Mapping[str, int]
) -> tuple[TableReport, ...]:
    """A report of each table: its pages, how they went, and ``wrong[table]`` found wrong."""
    kernel = world.kernel
    known: dict[str, tuple[str, str, str | None]] = {}
    users: dict[str, dict[tuple[str, str], None]] = {}  # each table's (type, mode)s, in order
    for sb in kernel.super_blocks:
        if not sb.s_type.has_page_cache(sb.mode):
            continue  # execute in place: no page of it is ever migrated
        known.setdefault(
            sb.a_ops.name, (sb.s_type.name, sb.mode, member_name(sb.a_ops.migratepage))
        )
        users.setdefault(sb.a_ops.name, {})[(sb.s_type.name, sb.mode)] = None
    for name, used in users.items():
        # One table under several filesystems (or modes): its pages are counted
        # by table, so the row names every filesystem whose pages it counts.
        types = sorted({fs for fs, _ in used})
        if len(used) > 1:
            modes = sorted({mode for _, mode in used})
            known[name] = (", ".join(types), ", ".join(modes), known[name][2])
    if kernel.swapper_space is not None:
        table = kernel.swapper_space.a_ops
        known.setdefault(table.name, ("swap", "default", member_name(table.migratepage)))
    elif kernel.registry is not None and "swap" in kernel.registry.filesystems:
        # No swap device (swap.slots = 0): anonymous pages are still counted
        # under the swap plugin's table, and fail (add_to_swap finds no slot).
        swap_type = kernel.registry.filesystems["swap"]
        table = configure_aops(swap_type.aops(None), migration=kernel.migration)
        if table.name in stats.tables:  # a row only for pages tried, as before
            known.setdefault(
                table.name, ("swap", swap_type.default_mode, member_name(table.migratepage))
            )
    reports = []
    for name in sorted(set(known) | set(stats.tables)):
        fs, mode, fn = known.get(name, ("?", "?", None))
        ts = stats.tables.get(name)
        reports.append(
            TableReport(
                name=name,
                filesystem=fs,
                mode=mode,
                migratepage=fn,
                pages=ts.pages if ts else 0,
                moved=ts.moved if ts else 0,
                failed=ts.failed if ts else 0,
                not_migrated=ts.not_migrated if ts else 0,
                errors=dict(ts.errors) if ts else {},
                via=dict(ts.via) if ts else {},
                reasons=dict(ts.reasons) if ts else {},
                retry_by_pass=ts.retry_by_pass if ts else [0] * MAX_PASSES,
                wrong=wrong.get(name, 0),
            )
        )
    return tuple(reports)


def _wrong_by_table(
    places: Places,
    *found: Iterable[tuple[File | Area, int] | tuple[File | Area, int, bytes] | None],
) -> dict[str, int]:
    """How many pages of each table were found wrong, each page once.

    ``found``: the pages the read-back and each proof found wrong, by file
    or area and index.  A page counts for its table as migration began
    (:class:`~fsaops.proofs.Places`); one that was not on the source node
    then is no table's (the read-back's and the proofs' totals count it).
    """
    runs: dict[int, list[tuple[list[int], list[str]]]] = {}
    for record, indexes, _pages, tables in places.runs():
        runs.setdefault(id(record), []).append((indexes, tables))
    seen: set[tuple[int, int]] = set()
    counts: dict[str, int] = {}
    for pages in found:
        for page in pages:
            if page is None or (id(page[0]), page[1]) in seen:
                continue
            seen.add((id(page[0]), page[1]))
            for indexes, tables in runs.get(id(page[0]), ()):
                at = bisect.bisect_left(indexes, page[1])
                if at < len(indexes) and indexes[at] == page[1]:
                    counts[tables[at]] = counts.get(tables[at], 0) + 1
                    break
    return counts


@attrs.frozen
class Plan:
    """A scenario checked against the loaded plugins: what ``fsaops migrate`` will build.

    Made by :func:`plan_scenario`, the one place a scenario is checked
    against the plugins; :func:`run_plan` runs it without checking again.

    Attributes:
        config: the scenario as it will be built, every default filled in
            from the selection (:func:`~fsaops.config.effective_config`).
        registry: the loaded plugins.
        source: how messages and the report name the scenario.
        left_out: the parts of the built-in scenario the selected plugins
            cannot serve (empty for a scenario file).
        not_mounted: the filesystems the selected plugins provide that the
            built-in scenario does not mount (empty for a scenario file).
    """

    config: Config
    registry: Registry
    source: str = BUILTIN_SOURCE
    left_out: tuple[LeftOut, ...] = ()
    not_mounted: tuple[str, ...] = ()


def plan_scenario(
    config: Config,
    registry: Registry,
    source: str = BUILTIN_SOURCE,
    *,
    builtin: bool | None = None,
) -> Plan:
    """Fill in the defaults the selection decides, then check the scenario (once).

    ``builtin`` (default: :attr:`Config.builtin <fsaops.config.Config.builtin>`,
    true only for :func:`~fsaops.config.default_config`, whatever
    ``source`` says) lets the scenario drop the parts the selected plugins
    cannot serve.

    Raises:
        ConfigError: the scenario does not fit the loaded plugins or the machine.
    """
    if builtin is None:
        builtin = config.builtin
    effective, left_out = effective_config(config, registry, builtin=builtin)
    check_config(effective, registry, source, builtin=builtin)
    unused = not_mounted(config, registry) if builtin else ()
    return Plan(effective, registry, source, left_out, unused)


def run_scenario(
    config: Config,
    registry: Registry,
    *,
    seed: int | None = None,
    source: str = BUILTIN_SOURCE,
    log: EngineLog | None = None,
    progress: Progress | None = None,
) -> Report:
    """Check the scenario, build its world, migrate it, check it, and report.

    :func:`plan_scenario` then :func:`run_plan`.

    Args:
        config: the scenario.
        registry: the loaded plugins (built with the scenario's ``kernel.migration``).
        seed: the seed; ``[workload] seed`` when ``None``.
        source: how the report names the scenario.
        log: the engine's structlog logger (one ``mm_migrate_page`` debug
            event per page attempt), or ``None``.
        progress: called as ``progress(phase, done, total)``.

    Raises:
        ConfigError: the scenario does not fit the loaded plugins.
        MigrationDisabled: ``kernel.migration`` is false (``ENOSYS``).
        RunTimeout: the run went past ``kernel.timeout`` seconds.
    """
    plan = plan_scenario(config, registry, source)
    return run_plan(plan, seed=seed, log=log, progress=progress)


def run_plan(
    plan: Plan,
    *,
    seed: int | None = None,
    log: EngineLog | None = None,
    progress: Progress | None = None,
    observers: Sequence[RunObserver] = (),
    phases: dict[str, float] | None = None,
    on_stuck: Callable[[str], object] | None = None,
) -> Report:
    """Build the world of a checked scenario, migrate it, check it, and report.

    ``observers`` are told when the world is built and when migration is
    over (:class:`RunObserver`).  With ``kernel.timeout`` set, the whole
    run has that many seconds of wall time (measured with ``SIGALRM``, so
    it must run in the main thread).  ``phases``, when given, gets the
    seconds of wall time each phase took added to it: ``build``,
    ``migrate``, ``prove`` (the placement and durability proofs and the
    invariant checker), ``read back`` (with the replay of a run whose pages
    read back wrong: :mod:`fsaops.replay`) and ``report``.  ``on_stuck``, when
    given, is called from another thread with the message when the run was
    told to stop (its time limit, or a stall) and plugin code kept it going
    :data:`STOP_SECONDS` more: the command line ends the process there.

    Raises:
        MigrationDisabled: ``kernel.migration`` is false (``ENOSYS``).
        RunTimeout: the run went past ``kernel.timeout`` seconds; the
            message names the page being migrated and its table, or what
            the run was doing.
        ConfigError: ``kernel.timeout`` is set, but this is not the main
            thread of a system with ``SIGALRM``.
    """
    config, registry, source = plan.config, plan.registry, plan.source
    if not config.kernel.migration:
        raise MigrationDisabled(f"{shown_path(source)}: {_ENOSYS_MESSAGE}")
    seed = config.workload.seed if seed is None else seed
    if log is not None:
        # structlog hands out a lazy proxy that builds a new logger at every
        # use; the engine asks its logger once per migrate_pages call (under
        # V4 once per page), so build it once, here.
        log = log.bind()
    lap = _Laps(phases)
    with (
        collector_paused(),
        _time_limit(config.kernel.timeout, registry, on_stuck) as where,
        _broken_fields_named(where, registry),
        interrupt_told(lambda frame: _stopped_where("", frame, where, registry)),
        watch_imports(registry) as imports,
        Committer() as ahead,
    ):
        # Every phase tells of its work through this, the progress bar or not:
        # the stall watch takes work told of for a run that is not stuck.
        progress = where.progress(progress)
        try:
            world = Scenario(config, registry, seed=seed, log=log, progress=progress)
        except ConfigError as exc:
            named = shown_path(source)
            if str(exc).startswith(f"{named}: "):
                raise
            raise ConfigError(f"{named}: {exc}") from None  # found as it was built
        kernel = where.kernel = world.kernel
        where.scenario = world
        where.clock = lambda: kernel.sched.now
        for observer in observers:
            observer.built(world)
        before = kernel.vmstat.as_dict()
        start = kernel.sched.now
        lap("build")
        places = snapshot_places(world.world, world.source_node)
        untouched = Untouched.snapshot(kernel)
        where.phase = "migrating"
        stats = world.migrate(progress)
        migration_ticks = kernel.sched.now - start
        for observer in observers:
            observer.migrated(world, stats, places)
        pages_left, pages_failed = world.outcomes(stats)
        lap("migrate")
        # The sync the durability proof makes writes every dirty page to its
        # blocks: their memory is committed meanwhile, from a thread of its own.
        world.world.commit_ahead_of_writeback(ahead)
        where.phase = "proving where every page went"
        # The pages each check finds wrong, to count by table (only a run that lost
        # data has any).
        misplaced: list[tuple[File | Area, int]] = []
        placement = prove_placement(
            world.world, places, ledger(stats), target_nid=world.target_node, found=misplaced
        )
        migrated = kernel.vmstat.pgmigrate_success - before["pgmigrate_success"]
        if accounts := account_problems(stats, world.given, places, migrated=migrated):
            placement = attrs.evolve(
                placement,
                failures=placement.failures + sum(off for off, _problem in accounts),
                problems=(*(problem for _off, problem in accounts), *placement.problems)[
                    :MAX_PROBLEMS
                ],
            )
        changed = untouched.changes()
        lap("prove")
        where.phase = "reading pages back"
        blame = _changed_while_migrating(places, stats)
        wrong: list[tuple[File | Area, int, bytes] | None] = []
        integrity = world.check_integrity(progress, blame, wrong)
        kernel.run_until_idle()
        # The counters cover the migration and the read-back that checks it: the
        # faults a migration leaves for the processes (V4's swap ptes) count too.
        after = kernel.vmstat.as_dict()
        lap("read back")
        where.phase = "proving durability (writeback, dropped cache, read-back)"
        not_durable: list[tuple[File | Area, int]] = []
        try:
            durability = prove_durability(
                world.world,
                views=[(v.file, v.index, v.mm, v.vma) for v in world.views],
                moved_by=places,
                found=not_durable,
            )
        except KernelBug as exc:
            if not changed:
                raise
            # What migration changed that it must not have is what the BUG ran into.
            raise KernelBug(
                f"{exc}; migration had changed what it must leave alone: {changed[0]}",
                table=exc.table,
            ) from exc
        proved = kernel.vmstat.as_dict()
        where.phase = "checking invariants"
        invariants = tuple(changed) + tuple(world.buffers_left) + tuple(check_kernel(kernel))
        lap("prove")
        where.done = time.monotonic()  # the replay that may follow is no part of the time limit's
        if wrong:
            # Only a run that lost data pays for this: none of it is taken otherwise.
            integrity = _named_by_replay(plan, seed, world, integrity, wrong, blame.seen, where)
            lap("read back")
    supervisor.tell_phase("")  # the run is over: what comes next is no phase of it
    vmstat = {name: after[name] - before[name] for name in after}
    vmstat["writepage"] = vmstat["pageout_writepage"]
    proofs_io = {name: proved[name] - after[name] for name in _PROOF_COUNTERS}
    tables = _tables(world, stats, _wrong_by_table(places, wrong, misplaced, not_durable))
    totals = Totals(
        pages=sum(t.pages for t in tables),
        moved=sum(t.moved for t in tables),
        failed=sum(t.failed for t in tables),
        not_migrated=sum(t.not_migrated for t in tables),
        passes=stats.passes,
        calls=stats.calls,
        retry_by_pass=stats.retry_by_pass,
    )
    if log is not None:
        log.info(
            "scenario_done",
            moved=totals.moved,
            failed=totals.failed,
            not_migrated=totals.not_migrated,
            lost=integrity.lost,
            corrupted=integrity.corrupted,
            invariants=len(invariants),
        )
    from fsaops import __version__

    report = Report(
        version=__version__,
        source=source,
        seed=seed,
        config=unstructure_config(config),
        from_node=world.source_node,
        to_node=world.target_node,
        totals=totals,
        by_aops=tables,
        vmstat=vmstat,
        workload=world.workload_summary(),
        faults=dict(world.faults.injected),
        ticks={"build": start, "migration": migration_ticks, "total": kernel.sched.now},
        integrity=integrity,
        invariants=invariants,
        pages_left=pages_left,
        pages_failed=pages_failed,
        left_out=plan.left_out,
        not_mounted=plan.not_mounted,
        mounts=tuple(world.mounts),
        proofs=Proofs(placement=placement, durability=durability, io=proofs_io),
        findings=stats.findings.result(),
        watched_calls=stats.findings.watched,
        watched=config.kernel.strict or config.kernel.debug_vm,
        strict=config.kernel.strict,
        plugins=tuple(
            PluginVersion(
                name=p.name, distribution=p.dist, version=p.version, imported_by=p.imported_by
            )
            for p in imports.plugins()
            if p.ran
        ),
        selection=_selection(config, registry),
    )
    lap("report")
    return report


class _Blame:
    """What the line of a wrong page in the page cache adds (see :func:`_changed_while_migrating`).

    Attributes:
        seen: the pages (file or area, index) whose line names a call
            ``--strict`` saw change them.
    """

    __slots__ = ("_before", "_places", "_stats", "seen")

    def __init__(self, places: Places, stats: MigrateStats) -> None:
        self._places = places
        self._stats = stats
        self._before: dict[tuple[int, int], Page] = {}
        self.seen: set[tuple[int, int]] = set()

    def __call__(self, owner: File | Area, index: int, page: Page) -> str:
        before = self._before
        if not before:
            for record, indexes, pages, _tables in self._places.runs():
                for i, held in zip(indexes, pages, strict=True):
                    before[(id(record), i)] = held
        was = before.get((id(owner), index))
        if was is None:
            return ""
        if page is was:
            how = f"was not migrated itself (still at pfn {page.pfn})"
        else:
            how = f"moved from pfn {was.pfn} to pfn {page.pfn}"
        stats = self._stats
        tables = ", ".join(sorted(stats.tables))
        head = (
            f"; it was in memory when the migration began and {how}, while pages of table(s) "
            f"{tables} were being migrated"
        )
        pfns = (was.pfn, page.pfn)
        seen = next((d for d in reversed(stats.findings.damage) if d[1] in pfns), None)
        if seen is not None:
            self.seen.add((id(owner), index))
            return f"{head}; --strict saw that table {seen[0]}'s {seen[2]}"
        return head


def _changed_while_migrating(places: Places, stats: MigrateStats) -> _Blame:
    """What the line of a wrong page in the page cache adds, when it was there as migration began.

    ``places`` is where every page was before the migration: a page of it
    was moved (by the table whose call moved it) or not (a call on another
    page may have changed it).  The line says which, and which tables' pages
    were being migrated; a change ``--strict`` saw a call make to it names
    that call (any other wrong page is the replay's to name:
    :func:`_named_by_replay`).  Nothing is taken per page on a run whose
    pages all read back right: the lookup is made at the first wrong page.
    """
    return _Blame(places, stats)


REPLAY_PHASE: Final = "replaying the run to name the calls that changed the pages read back wrong"
"""What a run is doing while it replays itself (:mod:`fsaops.replay`)."""


def _named_by_replay(
    plan: Plan,
    seed: int,
    world: Scenario,
    integrity: Integrity,
    wrong: Sequence[tuple[File | Area, int, bytes] | None],
    seen: set[tuple[int, int]],
    where: _Where,
) -> Integrity:
    """``integrity`` with each wrong page's line saying what the replay saw change it.

    The run is built and migrated again (same scenario, seed and plugins)
    with a :class:`~fsaops.replay.ReplayWatch` on the wrong pages that are
    listed (the first :data:`~fsaops.replay.WATCHED_PAGES`), except those
    ``--strict`` already named a call for (``seen``); then read back.  Only
    if the same pages read back wrong does a line name a call; otherwise
    it says the replay did not reproduce the run.
    """
    records: list[File | Area] = [*world.files, *world.areas]
    position = {id(r): n for n, r in enumerate(records)}
    listed = list(wrong[: len(integrity.problems)])
    watch_keys: list[tuple[int, int]] = []
    for w in listed:
        if w is None or (id(w[0]), w[1]) in seen:
            continue
        key = (position[id(w[0])], w[1])
        if key not in watch_keys and len(watch_keys) < WATCHED_PAGES:
            watch_keys.append(key)
    if not watch_keys:
        return integrity
    were_wrong = {(position[id(w[0])], w[1]): w[2] for w in wrong if w is not None}
    tails: dict[tuple[int, int], str] = {}
    where.phase = REPLAY_PHASE
    try:
        if where.start_replay() == 0.0:
            raise _NotFinished(f"the run's time limit of {where.limit:g} s left it no time")
        worked = where.progress(None)  # the replay's work, for the stall watch
        again = Scenario(plan.config, plan.registry, seed=seed, progress=worked)
        where.clock = lambda: again.kernel.sched.now
        replayed: list[File | Area] = [*again.files, *again.areas]
        if [r.key for r in replayed] != [r.key for r in records]:
            raise _NotReproduced("it built other files or processes")
        watch = ReplayWatch(again.world, [(replayed[p], i) for p, i in watch_keys])
        again.kernel.replay = watch
        try:
            watch.start()
            again.migrate(worked)
        finally:
            again.kernel.replay = None
        wrong_again: list[tuple[File | Area, int, bytes] | None] = []
        again.check_integrity(worked, None, wrong_again)
        again.kernel.run_until_idle()
        at = {id(r): n for n, r in enumerate(replayed)}
        now_wrong = {(at[id(w[0])], w[1]): w[2] for w in wrong_again if w is not None}
        if now_wrong != were_wrong:
            # The same pages, reading back the same bytes: anything else is another run.
            same = sum(1 for k, v in now_wrong.items() if were_wrong.get(k) == v)
            raise _NotReproduced(
                f"{len(now_wrong):,} page(s) read back wrong in it, {same:,} of them as in the run"
            )
        for n, key in enumerate(watch_keys):
            change = watch.changes.get(n)
            tails[key] = (
                change.said()
                if change is not None
                else "the replay saw no migratepage call change it while it was in memory"
            )
    except (_NotFinished, ReplayStopped) as exc:
        said = f"the replay did not finish ({exc}), so no call is named"
        tails = dict.fromkeys(watch_keys, said)
    except _NotReproduced as exc:
        said = (
            f"the replay (same scenario, seed and plugins) did not reproduce the run ({exc}): "
            "a plugin does not do the same thing twice, so no call is named"
        )
        tails = dict.fromkeys(watch_keys, said)
    except Exception as exc:
        # Whatever the replay raised (plugin code, a kernel BUG the run did not
        # hit): the run's own verdict stands.
        said = f"the replay failed ({describe_exception(exc)}), so no call is named"
        tails = dict.fromkeys(watch_keys, said)
    finally:
        _replay_over(where)
    where.phase = "reporting"
    problems = list(integrity.problems)
    for n, w in enumerate(listed):
        if w is None:
            continue
        tail = tails.get((position[id(w[0])], w[1]))
        if tail is None and (id(w[0]), w[1]) not in seen:
            tail = f"not watched by the replay (it watches the first {WATCHED_PAGES} wrong pages)"
        if tail is not None:
            problems[n] = f"{problems[n]}; {tail}"
    return attrs.evolve(integrity, problems=tuple(problems))


class _NotReproduced(Exception):
    """The replay did not come to what the run did."""


class _NotFinished(Exception):
    """The replay was not made, or not to its end."""


def _replay_over(where: _Where) -> None:
    """Tell ``where`` the replay is over; a :class:`ReplayStopped` raised meanwhile is let go."""
    while True:
        try:
            where.replay_over()
        except ReplayStopped:
            continue
        return


def _selection(config: Config, registry: Registry) -> Selection | None:
    """The selection, when ``--plugins`` or ``FSAOPS_PLUGINS`` made it rather than the scenario."""
    if registry.selected_by in ("[plugins] load", "installed"):
        return None
    load = config.plugins.load
    return Selection(
        names=registry.selection,
        selected_by=registry.selected_by,
        overriding=None if load is None else tuple(load),
    )


class _Laps:
    """Adds the wall time since the last lap to ``phases[name]`` (nothing without ``phases``)."""

    __slots__ = ("_last", "_phases")

    def __init__(self, phases: dict[str, float] | None) -> None:
        self._phases = phases
        self._last = time.perf_counter()

    def __call__(self, name: str) -> None:
        phases = self._phases
        if phases is not None:
            now = time.perf_counter()
            phases[name] = phases.get(name, 0.0) + now - self._last
            self._last = now


@contextmanager
def collector_paused() -> Iterator[None]:
    """Keep Python's cyclic garbage collector from running until the block ends.

    A run builds hundreds of thousands of objects that live as long as it
    does (a frame's page, a slot, a page-tree entry); every full collection
    would walk all of them again, for nothing: the run drops little garbage
    on the way.  Whatever it drops is collected once the block ends.
    """
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


# -- the time limit ------------------------------------------------------------------------


REPLAY_KEEPS: Final = 0.1
"""The share of a run's time limit its replay leaves to the report.

At least :data:`REPLAY_KEEPS_AT_LEAST` seconds."""

REPLAY_KEEPS_AT_LEAST: Final = 0.25
"""Seconds of a run's time limit its replay leaves to the report, at least."""


class ReplayStopped(RunTimeout):
    """The replay (:mod:`fsaops.replay`) was stopped: it ran out of the time left it, or stalled.

    Only the replay ends: the run it replays keeps its verdict.
    """


class _Where:
    """What a run is doing, said when its time limit passes, it is stuck or a signal ends it.

    A signal: Ctrl-C or ``SIGTERM``.

    Each phase is told to the program's supervising parent too
    (:func:`fsaops.supervisor.tell`), which says it should the run's process
    die of the signal (its handler taken away below Python).
    """

    _phase = "building the world"
    work = 0  # how often the run told of its work (progress, a new phase): a stall watch's sign
    clock: Callable[[], int] | None = None  # the kernel's clock, once there is a kernel
    kernel: Kernel | None = None  # the machine, once it is built
    scenario: Scenario | None = None  # the scenario, once it is built
    replaying = False  # the run is replaying itself (fsaops.replay)
    replay_start = 0.0  # when the replay began (monotonic)
    replay_end: float | None = None  # when the replay must be over (monotonic), if ever
    deadline: float | None = None  # when the run must be over (monotonic), if ever
    limit = 0.0  # the run's time limit, in seconds (0: none)
    thread: int | None = None  # the run's thread, when the time limit watches it
    done: float | None = None  # when the run's own work ended (monotonic), before any replay

    def __init__(self) -> None:
        supervisor.tell_phase(self._phase)
        self.lock = threading.Lock()
        # When the run was first told to stop, and why.
        self.told: list[tuple[float, str]] = []

    def replay_over(self) -> None:
        """The replay is over: what told it to stop is forgotten, and tells the run nothing.

        A :class:`ReplayStopped` the watchdog had on its way to the run's
        thread is taken back; one that is raised all the same (the signal
        handler's) is for the caller to catch until this returns.
        """
        with self.lock:
            self.replaying = False
            self.replay_end = None
            self.told.clear()
            if self.thread is not None:
                _raise_in(self.thread, None)

    def start_replay(self) -> float | None:
        """The replay begins: the seconds it may take (``None``: any), or ``0.0``: none left.

        It may take what the run's time limit leaves, less a share kept for
        the report (:data:`REPLAY_KEEPS`); a replay still going then (or
        that stalls) is stopped with :class:`ReplayStopped`, and the run's
        own verdict stands.
        """
        if self.deadline is None:
            with self.lock:
                self.replaying = True
            return None
        now = time.monotonic()
        end = self.deadline - max(REPLAY_KEEPS * self.limit, REPLAY_KEEPS_AT_LEAST)
        if end <= now:
            return 0.0
        with self.lock:
            self.replay_start, self.replay_end = now, end
            self.replaying = True
        return end - now

    @property
    def phase(self) -> str:
        """What the run is doing: ``building the world``, ``migrating``, ..."""
        return self._phase

    @phase.setter
    def phase(self, phase: str) -> None:
        self._phase = phase
        self.work += 1
        supervisor.tell_phase(phase)

    def progress(self, told: Progress | None) -> Progress:
        """A progress callback that counts the run's work, then tells ``told`` (if any)."""

        def worked(phase: str, done: int, total: int) -> None:
            self.work += 1
            if told is not None:
                told(phase, done, total)

        return worked


@contextmanager
def _broken_fields_named(where: _Where, registry: Registry) -> Iterator[None]:
    """An error that escapes a run because plugin code damaged the model names who did.

    A ``flags`` set to ``None``, an ``lru`` link to a number, a ``mapping``
    to a string: such a page breaks the engine's own code (a ``TypeError``
    or an ``AttributeError``) far from the plugin that did it.  When the
    machine has such pages (:func:`~fsaops.debug.broken_pages`), the error
    becomes a :class:`~fsaops.errors.PluginFault` that names them and where
    the run was.  So does any other error fsaops's own code raised (no
    plugin code on its way) once a table's code has run: a page's index,
    mapping or private, or a buffer ring, that a table changed where it
    had no business breaks code far from it in the same way
    (:func:`_damage_said`).  Anything else goes on as it is.
    """
    try:
        yield
    except Exception as exc:
        kernel = where.kernel
        if kernel is None or isinstance(exc, FsaopsError | KernelBug):
            raise
        frame = None
        tb = exc.__traceback__
        while tb is not None:
            frame = tb.tb_frame
            tb = tb.tb_next
        head = f"{describe_exception(exc)},"
        broken = broken_fields_said(kernel)
        if broken:
            raise PluginFault(f"{_timeout_message(head, frame, where, registry)}{broken}") from exc
        stats = where.scenario.stats if where.scenario is not None else None
        if (
            stats is None
            or not stats.tables
            or _of_the_machine(exc)
            or _plugin_code_in(exc, registry)
        ):
            raise
        said, table = _damage_said(exc, stats, kernel, frame)
        raise PluginFault(
            f"fsaops's own code raised {_timeout_message(head, frame, where, registry)}{said}",
            table=table,
        ) from exc


_DAMAGE: Final = "a page's index, mapping or private, or a buffer ring"
"""What a table's code may damage that fsaops's own code trips over later."""


def _of_the_machine(exc: BaseException) -> bool:
    """Whether ``exc`` is about this process's machine (memory, files, threads), not the model."""
    return isinstance(exc, MemoryError | RecursionError | OSError) or (
        isinstance(exc, RuntimeError)
        and str(exc) in ("can't allocate lock", "can't start new thread")
    )


def _plugin_code_in(exc: BaseException, registry: Registry) -> bool:
    """Whether a frame of plugin code is on ``exc``'s way: then the error names that plugin."""
    modules = {p.value.split(":")[0].strip(): p.name for p in registry.plugins}
    modules = {module: name for module, name in modules.items() if module.split(".")[0] != "fsaops"}
    tb = exc.__traceback__
    while tb is not None:
        module = tb.tb_frame.f_globals.get("__name__")
        if isinstance(module, str) and plugin_of_module(modules, module) is not None:
            return True
        tb = tb.tb_next
    return False


def _damage_said(
    exc: BaseException, stats: MigrateStats, kernel: Kernel, frame: FrameType | None
) -> tuple[str, str | None]:
    """What an error of fsaops's own code adds about the table that damaged the model.

    Returns the words and the table to blame.  When ``--strict`` (or
    ``--debug-vm``) saw a table change a page it was not handed, that
    change, preferring one to the page the failing code was working on;
    otherwise the table whose page that was, and how to find out more.
    """
    pfns: set[int] = set()
    tb = exc.__traceback__
    while tb is not None:
        page = tb.tb_frame.f_locals.get("page")
        if isinstance(page, Page) and isinstance(page.pfn, int):
            pfns.add(page.pfn)
        tb = tb.tb_next
    seen = stats.findings.damage_said(pfns)
    if seen is not None:
        culprit, said = seen
        return f"; plugin code had damaged the model before: {said}", culprit
    table = _working_table(frame)
    if table is None:
        names = sorted(stats.tables)
        table = names[0] if len(names) == 1 else None
        whose = f"after pages of table(s) {', '.join(names)} were migrated: "
    else:
        whose = ""
    if kernel.strict or kernel.debug_vm:
        return (
            f"; {whose}a table's code may have damaged the model before ({_DAMAGE}) in a way "
            "--strict does not see",
            table,
        )
    return (
        f"; {whose}a table's code may have damaged the model before ({_DAMAGE}): run with "
        "--strict to name the call that changed a page it was not handed",
        table,
    )


def _working_table(frame: FrameType | None) -> str | None:
    """The table of the page the engine was migrating when ``frame`` (innermost) failed."""
    while frame is not None and frame.f_code is not migrate_pages.__code__:
        frame = frame.f_back
    if frame is None:
        return None
    page: Any = frame.f_locals.get("page")
    table = frame.f_locals.get("name")
    if isinstance(table, str):
        return table
    try:
        return table_name(page)
    except Exception:
        return None


STOP_SECONDS: Final = 2.0
"""Wall time a run told to stop (time limit, stall) has to do so before ``on_stuck`` is called."""

STALL_SECONDS: Final = 30.0
"""Wall time a run may go with neither the kernel's clock nor its work moving before it
is stopped as stuck, whatever phase it is in.  Every page the engine tries
advances the clock (``cond_resched``), and the other phases tell of their
work as they go (each file built, each run of pages read back), so only
code that never returns stays still that long: plugin code with a lock it
left held or a loop without end (a ``migratepage``, or a ``writepage`` the
durability proof's sync calls), or a lookup of the model that retries for
ever over a page cache a table left broken (a slot that holds another
file's page)."""

HUNG_SECONDS: Final = 120.0
"""Wall time one call into plugin code may go on before the run is stopped as stuck, though the
kernel's clock moves: a table member that waits in a loop for what never comes, calling
``cond_resched`` (``sched.tick``) as it goes, keeps the clock moving and so escapes
:data:`STALL_SECONDS`.  The kernel's hung-task watchdog waits as long by default (from
2.6.25).  The call of a correct table takes far less, a ``writepages`` of a whole file of a
million pages a few seconds."""

_WATCH_EVERY: Final = 5.0
"""Seconds between two looks of the stall watchdog."""

_KEEP_EVERY: Final = 0.1
"""Seconds between two times the watchdog thread puts fsaops's signal handlers back.

With the system, not Python: a ``sigaction`` for each of ``SIGINT``,
``SIGTERM``, ``SIGALRM`` and the backstop's signal, where Python still
records a handler for it (:func:`fsaops.process.keep_handler`)."""

_TIMER_LATE: Final = 0.5
"""Seconds after the watchdog thread's next look that its backstop timer fires.

The thread sends ``SIGALRM`` itself at each look, and pushes the timer on:
the timer fires only when the thread could not run (the run's thread holds
the interpreter lock in C code, a regular expression that backtracks).  The
timer is a :class:`~fsaops.process.Alarm`: its signal is not ``SIGALRM``
(where the system allows), so plugin code that sets ``SIGALRM`` to its
default action, by any route and at any moment, cannot have it end the
process."""


@contextmanager
def _time_limit(
    seconds: float, registry: Registry, on_stuck: Callable[[str], object] | None = None
) -> Iterator[_Where]:
    """Raise :class:`~fsaops.errors.RunTimeout` in this thread after ``seconds`` (0: never).

    ``SIGALRM`` interrupts whatever runs, a ``migratepage`` that sleeps
    included; the handler finds the page being migrated by walking the
    interrupted frames to ``migrate_pages`` (nothing is done per page).  If
    plugin code swallows the exception, it is raised again every half
    second; not while it is still on its way out (:func:`_stopping`).
    The signal is sent by a watchdog thread when it is due, and only
    while its handler is fsaops's (put back with the system first,
    should code below Python have changed it); a timer of fsaops's own
    (:class:`~fsaops.process.Alarm`, whose signal's default action is to
    ignore it) is a backstop, for when that thread cannot run
    (:data:`_TIMER_LATE`), and is cancelled while plugin code has taken
    ``SIGALRM``.  Each look also puts fsaops's ``SIGINT``
    and ``SIGTERM`` handlers back, should code have taken them
    (:func:`~fsaops.errors.reclaim_signals`).  In the main thread the same
    signal also watches the run for a stall, in every phase:
    :data:`STALL_SECONDS` with neither the kernel's clock nor the run's
    work (:meth:`_Where.progress`) moving ends the run the same way, time
    limit or not.  A run told to stop that is still going
    :data:`STOP_SECONDS` later (plugin code swallowed the exception, or
    sleeps where it cannot be reached) is handed to ``on_stuck``.
    """
    where = _Where()
    main_thread = (
        hasattr(signal, "setitimer")
        and hasattr(signal, "pthread_kill")
        and (threading.current_thread() is threading.main_thread())
    )
    if not main_thread:
        if seconds:
            raise ConfigError(
                "kernel.timeout: a time limit needs SIGALRM and the main thread; "
                "run the scenario there, or set kernel.timeout = 0"
            )
        yield where
        return
    start = time.monotonic()
    deadline = start + seconds if seconds else None
    seen: list[Any] = [None, start]  # the clock and the work last seen, and when either moved
    # The outermost call into plugin code last seen running, and since when.
    called: list[Any] = [None, start]
    modules = _plugin_modules(registry)
    told = where.told
    where.deadline, where.limit = deadline, seconds

    def due(now: float, frame: FrameType | None) -> str | None:
        """What ends the run (or its replay) now: the time limit, a stall, or nothing (``None``).

        ``frame`` is the run's thread's, where it was interrupted.
        """
        replay_end = where.replay_end
        if where.replaying and replay_end is not None and now >= replay_end:
            return (
                f"it went past the {replay_end - where.replay_start:.1f} s the run's time limit "
                f"of {seconds:g} s left it"
            )
        if deadline is not None and now >= deadline:
            return f"timeout: the run went past its time limit of {seconds:g} s"
        moved = (where.clock() if where.clock is not None else -1, where.work)
        if moved != seen[0]:
            seen[0], seen[1] = moved, now
        elif now - seen[1] >= STALL_SECONDS:
            return (
                f"stuck: the {'replay' if where.replaying else 'run'} made no progress for "
                f"{now - seen[1]:.0f} s (a lock left held, or a loop that does not end)"
            )
        calls = [found for found, _owner in _plugin_frames(frame, modules)]
        outermost = calls[-1] if calls else None
        if outermost is not called[0]:
            called[0], called[1] = outermost, now
        elif outermost is not None and now - called[1] >= HUNG_SECONDS:
            return (
                f"stuck: a call into plugin code has not returned in {now - called[1]:.0f} s, "
                "though the kernel's clock moves (a loop that waits for what never comes)"
            )
        return None

    def told_to_stop(head: str, frame: FrameType | None, now: float) -> RunTimeout:
        said = _stopped_where(head, frame, where, registry)
        exc = ReplayStopped(said) if where.replaying else RunTimeout(said)
        if not told:
            told.append((now, str(exc)))
        return exc

    def next_look(now: float) -> float:
        return _WATCH_EVERY if deadline is None else max(min(_WATCH_EVERY, deadline - now), 0.01)

    def expired(signum: int, frame: FrameType | None) -> None:
        reclaim_signals()
        keep()
        now = time.monotonic()
        head = due(now, frame)
        if head is None:
            backstop.arm(next_look(now) + _TIMER_LATE)
            return
        backstop.arm(0.5 + _TIMER_LATE)  # again, should it be swallowed
        if told and _stopping(sys.exception()):
            return  # still on its way out (cleanup runs): not told a second time
        raise told_to_stop(head, frame, now)

    def in_place_of_the_timer(frame: FrameType | None) -> float:
        """The watchdog's look; returns in how many seconds to look again.

        ``frame`` is the run's, when plugin code took ``SIGALRM``: a run that
        is due to end then gets :class:`~fsaops.errors.RunTimeout` raised in
        its thread, and again every half second should it be swallowed.
        ``None``: the timer is still ours, and only the next look is asked.
        """
        now = time.monotonic()
        if told and now - told[0][0] >= STOP_SECONDS and on_stuck is not None:
            on_stuck(told[0][1])  # told to stop, and still going
        with where.lock:  # the replay's end, and what it was told, are not undone meanwhile
            head = None if frame is None else due(now, frame)
            if head is not None:
                if not (told and _stopping(_handled_in(main_ident))):
                    _raise_in(main_ident, told_to_stop(head, frame, now))
                return 0.5
        if told:
            return 0.5
        return next_look(now)

    def keep() -> None:
        """Put fsaops's handlers back with the system, where Python still records them.

        And tell the program the run's watchdog is alive (:func:`supervisor.beat
        <fsaops.supervisor.beat>`): called ten times a second by the watchdog thread.
        """
        supervisor.beat()
        for put_back in kept:
            put_back()

    main_ident = where.thread = threading.get_ident()
    backstop = Alarm()
    kept: list[Callable[[], None]] = []
    stop = threading.Event()
    guard = threading.Thread(
        target=_watch,
        args=(stop, expired, main_ident, in_place_of_the_timer, backstop, keep),
        name="fsaops-watchdog",
        daemon=True,
    )
    previous = signal.signal(signal.SIGALRM, expired)
    previous_backstop: Any = None
    # From here on the handler is in place: a timeout due already (a tiny
    # limit, a busy machine) may be raised at any line, and must not skip
    # stopping the watchdog and putting the signals back.
    try:
        kept.append(keep_handler(signal.SIGALRM, *INTERRUPTS))
        if backstop.signum != signal.SIGALRM:
            previous_backstop = signal.signal(backstop.signum, expired)
            kept.append(keep_handler(backstop.signum))
        backstop.arm(next_look(start) + _TIMER_LATE)
        supervisor.beat()  # watched from here on: the watchdog beats on
        guard.start()
        yield where
        now = time.monotonic() if where.done is None else where.done
        if deadline is not None and now >= deadline and not told:
            # Over before the watchdog's first look (a limit shorter than its
            # wake-up): a run past its limit is a timeout all the same.  What
            # a replay takes is its own (it is stopped in time, and the run's
            # verdict stands).
            raise told_to_stop(
                f"timeout: the run went past its time limit of {seconds:g} s", None, now
            )
    finally:
        stop.set()
        # A timeout raised here (the timer, or the watchdog, at the very end
        # of the run) must not skip putting the signal back.
        try:
            if guard.ident is not None:  # started
                guard.join()
        finally:
            supervisor.beat(watched=False)  # no watchdog from here on: nothing to beat
            _put_back_alarms(backstop, previous, previous_backstop)


@contextmanager
def stall_watched(registry: Registry, kernel: Kernel) -> Iterator[None]:
    """Watch migration on ``kernel`` for a stall, as a run with no time limit is watched.

    For migration outside :func:`run_plan` (``fsaops bench``'s rate of each
    table): plugin code that keeps the kernel's clock still for
    ``STALL_SECONDS`` (a sleep, a loop, a lock left held) gets
    :class:`~fsaops.errors.RunTimeout` raised in this thread, naming the
    page; code that holds the interpreter in C is ended by the program
    that waits for the run (:data:`fsaops.supervisor.HELD_SECONDS`).  Main
    thread only; elsewhere nothing is watched.
    """
    with _time_limit(0.0, registry) as where:
        where.kernel = kernel
        where.clock = lambda: kernel.sched.now
        where.phase = "migrating"
        try:
            yield
        finally:
            supervisor.tell_phase("")


def _put_back_alarms(backstop: Alarm, previous: Any, previous_backstop: Any) -> None:
    """Cancel the backstop and put back what ``SIGALRM`` and its signal did before the run."""
    try:
        backstop.close()
    finally:
        try:
            if backstop.signum != signal.SIGALRM:
                signal.signal(
                    backstop.signum,
                    previous_backstop if previous_backstop is not None else signal.SIG_DFL,
                )
        finally:
            signal.signal(signal.SIGALRM, previous if previous is not None else signal.SIG_DFL)


def _watch(
    stop: threading.Event,
    handler: Callable[[int, FrameType | None], None],
    main_ident: int,
    look: Callable[[FrameType | None], float],
    backstop: Alarm,
    keep: Callable[[], None],
) -> None:
    """Keep the time limit and the stall watchdog working whatever plugin code does to ``SIGALRM``.

    While ``handler`` is the signal's, this thread puts it back with the
    system (``keep``: code below Python may have changed what the signal
    does without Python seeing it), sends ``SIGALRM`` to the run's thread
    at each look (``look``, which says when to look again), and sets the
    ``backstop`` timer to fire :data:`_TIMER_LATE` after its next look: the
    timer fires only if this thread cannot run, and a library that cancels
    the process's own timer (``alarm(0)``, as those that keep their own
    time limits do) changes nothing.  Plugin code that ignores the signal,
    sets it to its default action, or puts a handler of its own in place,
    has this thread look in the handler's place: it raises
    :class:`~fsaops.errors.RunTimeout` in the run's thread itself, and the
    backstop is cancelled (a ``SIGALRM`` one, only at the signal's default
    action, where it would end the process with no word and no report).
    """
    wait = look(None)
    while not _wait(stop, wait, keep):
        with contextlib.suppress(OSError, ValueError):
            disposition = signal.getsignal(signal.SIGALRM)
            if disposition is handler:
                keep()
                signal.pthread_kill(main_ident, signal.SIGALRM)  # at once: it is still ours
                wait = look(None)
                backstop.arm(wait + _TIMER_LATE)
                continue
            if disposition == signal.SIG_DFL or backstop.own:
                backstop.arm(0)
            wait = look(sys._current_frames().get(main_ident))


def _wait(stop: threading.Event, seconds: float, keep: Callable[[], None]) -> bool:
    """Wait ``seconds``, or until ``stop`` is set (then ``True``), calling ``keep`` meanwhile.

    ``keep`` puts fsaops's handlers back with the system every
    :data:`_KEEP_EVERY` seconds: what code below Python did to ``SIGINT``
    or ``SIGTERM`` (ignored, or at its default action) is undone that soon,
    not at the next look.
    """
    until = time.monotonic() + seconds
    while True:
        left = until - time.monotonic()
        if left <= 0:
            return stop.is_set()
        if stop.wait(min(left, _KEEP_EVERY)):
            return True
        with contextlib.suppress(OSError, ValueError):
            keep()


def _stopping(handled: BaseException | None) -> bool:
    """Whether ``handled``, the exception a thread is handling, is a timeout or came of one.

    A run told to stop unwinds through ``finally`` blocks and ``with``
    statements (plugin code's, the engine's own: a thread joined, a lock
    released), each of which handles the timeout while it runs: told again
    there, the cleanup would be cut short, and the second timeout, raised
    outside the page's migration, would lose the page.  Only a timeout that
    plugin code swallowed (its ``except`` block is over) is raised again.
    """
    stack = [handled]
    seen: set[int] = set()
    while stack and len(seen) < 100:
        exc = stack.pop()
        if exc is None or id(exc) in seen:
            continue
        if isinstance(exc, RunTimeout):
            return True
        seen.add(id(exc))
        stack += [exc.__cause__, exc.__context__]
    return False


def _handled_in(ident: int) -> BaseException | None:
    """The exception thread ``ident`` is handling now, if any."""
    handled: object = sys._current_exceptions().get(ident)
    if isinstance(handled, tuple):  # Python 3.11: (type, value, traceback)
        handled = handled[1]
    return handled if isinstance(handled, BaseException) else None


def _raise_in(ident: int, exc: RunTimeout | None) -> None:
    """Have thread ``ident`` raise ``exc`` at its next line of Python (where signals cannot reach).

    The interpreter raises a class, not an object: a subclass that makes
    ``exc`` again is handed over.  Code stuck in C, or sleeping, raises it
    when it comes back.  ``None`` takes back one not raised yet
    (:func:`_take_back`; only the thread ``ident`` itself can).
    """
    import ctypes

    if exc is None:
        _take_back(ident)
        return
    message = str(exc)
    kind = type(exc)

    class _Raised(kind):  # type: ignore[valid-type,misc]
        def __init__(self) -> None:
            super().__init__(message)

    _Raised.__name__ = _Raised.__qualname__ = kind.__name__
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident), ctypes.py_object(_Raised))


class _TakenBack(BaseException):
    """Raised in a thread in place of what :func:`_raise_in` had on its way, and caught at once."""


def _take_back(ident: int) -> None:
    """Take back the exception :func:`_raise_in` had on its way to this thread, ``ident``.

    ``PyThreadState_SetAsyncExc`` with no exception clears it, but leaves
    set the interpreter's word that one is pending (Python 3.11 and 3.12):
    from then on every check for pending work takes the slow way, and under
    a tracer or profiler (a debugger, coverage, ``cProfile``) Python 3.11
    checks again at the same instruction for ever.  So one of our own goes
    in its place, and is raised and caught here, which clears both.  An
    exception raised meanwhile (a signal handler's) is raised once ours is
    caught.  From another thread, nothing is done.
    """
    if threading.get_ident() != ident:
        return
    import ctypes

    meanwhile: BaseException | None = None
    sent = False
    while True:
        try:
            if not sent:
                # Raised as soon as the call returns, or at the loop's first jump back;
                # sent again should something else be raised before the call returned.
                ctypes.pythonapi.PyThreadState_SetAsyncExc(
                    ctypes.c_ulong(ident), ctypes.py_object(_TakenBack)
                )
                sent = True
            while True:
                pass
        except _TakenBack:
            break
        except BaseException as exc:
            if meanwhile is None:
                meanwhile = exc
    if meanwhile is not None:
        raise meanwhile


def _timeout_message(head: str, frame: FrameType | None, where: _Where, registry: Registry) -> str:
    """``head``, and where the run was: the page being migrated, or the phase."""
    while frame is not None and frame.f_code is not migrate_pages.__code__:
        frame = frame.f_back
    if frame is not None:
        local = frame.f_locals
        page: Any = local.get("page")
        table = local.get("name")
        pfn = getattr(page, "pfn", None)
        if isinstance(pfn, int):
            if not isinstance(table, str):
                try:
                    table = table_name(page)
                except Exception:
                    table = "?"
            owner = _table_owner(registry, table)
            path = local.get("path")
            step = f", in {path}" if path else ""
            again = "replaying the run to name the calls that changed pages read back wrong, "
            return (
                f"{head} while {again if where.replaying else ''}migrating the page at pfn "
                f"{pfn} (table {table}{owner}, pass {local.get('pass_')}{step})"
            )
    return f"{head} while {where.phase}"


def _stopped_where(head: str, frame: FrameType | None, where: _Where, registry: Registry) -> str:
    """``head`` and where the run was stopped at ``frame``: a time limit's and a signal's words.

    The page being migrated (its pfn, table, plugin and pass) or the phase
    (:func:`_timeout_message`), and, when plugin code was running, that
    code's plugin, function and ``file:line`` (:func:`_plugin_code_at`).
    A time limit (or a stall) and a Ctrl-C or ``SIGTERM`` say it alike.
    """
    return _timeout_message(head, frame, where, registry) + _plugin_code_at(frame, registry)


def _plugin_modules(registry: Registry) -> dict[str, str]:
    """The plugins' modules (not fsaops's own), each with its plugin's label."""
    modules = {p.value.split(":")[0].strip(): p.label for p in registry.plugins}
    return {module: name for module, name in modules.items() if module.split(".")[0] != "fsaops"}


def _plugin_frames(
    frame: FrameType | None, modules: dict[str, str]
) -> Iterator[tuple[FrameType, str]]:
    """The frames of plugin code from ``frame`` outwards, each with its plugin's label."""
    while frame is not None:
        module = frame.f_globals.get("__name__")
        owner = plugin_of_module(modules, module) if isinstance(module, str) else None
        if owner is not None:
            yield frame, owner
        frame = frame.f_back


def _plugin_code_at(frame: FrameType | None, registry: Registry) -> str:
    """``; in plugin code of PLUGIN (module.function, file:line)``: the innermost such frame."""
    for found, owner in _plugin_frames(frame, _plugin_modules(registry)):
        code = found.f_code
        return (
            f"; in plugin code of {owner} ({found.f_globals['__name__']}.{code.co_name}, "
            f"{code.co_filename}:{found.f_lineno})"
        )
    return ""


def _table_owner(registry: Registry, table: str) -> str:
    """`` of plugin dist[entry]`` for the plugin whose filesystem has ``table``, else ``""``."""
    owner = registry.table_owner(table)
    return "" if owner is None else f" of plugin {owner.label}"
