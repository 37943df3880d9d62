"""Building a deterministic world from a scenario, migrating it, and checking it.

:func:`run_scenario` is what ``fsaops migrate`` does:

1. **Build** (:class:`World`): a :class:`~fsaops.kernel.Kernel` with the
   loaded plugins; a swap device; every ``[[mount]]`` with its files, whose
   page-cache pages sit on the source node (an execute-in-place mount keeps
   its data on the device; a buffer-cache mapping such as ``xfs_buftarg``
   has its pages filled directly); processes with anonymous memory.  Every
   page gets known data derived from the seed, written through the model
   (``write(2)`` for files, process memory for anonymous pages).  Then
   everything is written back and the journal commits, so pages start
   clean.
2. **Workload**: pages picked with a seeded generator get their state:
   mlocked (mapped in ``VM_LOCKED`` areas), swapout, pinned (another task
   holds a reference until the run ends), locked (another task holds the
   page lock for a while), writeback (rewritten and handed to
   ``writepage``, the I/O still in flight), dirty (rewritten and left
   dirty), mapped (mapped shared by a process and rewritten through the
   mapping).
3. **Migrate**: :func:`~fsaops.memory_hotplug.migrate_node` isolates every
   page on the source node's LRU lists and moves them with
   :func:`~fsaops.mempolicy.migrate_pages_to`, one chunk of new pages at a
   time (so progress can be shown); the swapout pages go
   through ``migrate_pages`` with no target pages, the V4 swap-out
   migration.  Faults are injected only here.
4. **Check**: holds are released and pending I/O settles; every file is
   read back with ``read(2)`` and every process's memory through its page
   tables, new pages being allocated on the target node; each page is
   compared with what was written; then the invariant checker runs.

The same scenario and seed give the same world, the same run and the same
report.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any, Final

import attrs

from fsaops.aops import member_name
from fsaops.config import (
    BUILTIN_SOURCE,
    Config,
    WorkloadConfig,
    check_config,
    is_buffer_cache,
    unstructure_config,
)
from fsaops.debug import check_kernel
from fsaops.errors import FsaopsError, MigrationDisabled
from fsaops.fault_inject import FaultInjector
from fsaops.fs import generic_file_read, generic_file_write
from fsaops.kernel import Kernel
from fsaops.lists import PageList, list_add_tail
from fsaops.lru import isolate_lru_page, putback_lru_pages
from fsaops.mapping import grab_cache_page
from fsaops.memory_hotplug import migrate_node
from fsaops.mempolicy import MIGRATE_CHUNK_SIZE
from fsaops.migrate import MigrateStats, migrate_pages
from fsaops.page import PG, Page, lock_page, put_page, unlock_page
from fsaops.report import Integrity, Report, TableReport, Totals
from fsaops.sched import Hold, Task, hold, release
from fsaops.writeback import WRITEPAGE_ACTIVATE, WritebackControl, clear_page_dirty_for_io

if TYPE_CHECKING:
    from fsaops.fs import Inode, SuperBlock
    from fsaops.plugins import Registry
    from fsaops.rmap import Mm, Vma

__all__ = [
    "CHUNK_PAGES",
    "SETTLE_TICKS",
    "Progress",
    "Slot",
    "World",
    "page_content",
    "run_scenario",
]

Progress = Callable[[str, int, int], None]
"""Called as ``progress(phase, done, total)``; phases are ``build``, ``migrate``, ``check``."""

CHUNK_PAGES: Final = MIGRATE_CHUNK_SIZE + 1
"""Pages migrated per ``migrate_pages_to`` call: one chunk of new pages (257)."""

SETTLE_TICKS: Final = 256
"""Ticks the clock runs after the world is written, so periodic flushers (a journal) commit."""

MAX_PROBLEMS: Final = 20
"""Integrity problems listed in a report (all are counted)."""


def _subseed(seed: int, purpose: str) -> int:
    digest = hashlib.sha256(f"fsaops/{seed}/{purpose}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def page_content(seed: int, key: str, gen: int, size: int) -> bytes:
    """The data a scenario writes into page ``key`` in generation ``gen``.

    A readable header (``fsaops seed=42 mount0/file1/page7 gen=1``) followed by
    SHAKE-128 output keyed with all three, so every page, version and seed
    differs and a page holding another page's data says whose it is.
    """
    header = f"fsaops seed={seed} {key} gen={gen}\n".encode()
    body = hashlib.shake_128(f"{seed}/{key}/{gen}".encode()).digest(max(size - len(header), 1))
    return (header + body)[:size]


def _header_of(data: bytes) -> str | None:
    if not data.startswith(b"fsaops seed="):
        return None
    line = data.split(b"\n", 1)[0]
    try:
        return line.decode("ascii")
    except UnicodeDecodeError:
        return None


# -- the world --------------------------------------------------------------------


@attrs.define(eq=False)
class _File:
    """A file of a mount, or a mount's buffer-cache mapping."""

    key: str
    label: str
    inode: Inode
    npages: int
    page_cache: bool
    meta: bool
    gens: list[int]


@attrs.define(eq=False)
class _Area:
    """Anonymous memory of one process: one area."""

    key: str
    mm: Mm
    start: int  # first virtual page number
    first: int  # the process's page number of the first page
    npages: int
    locked: bool
    gens: list[int]


@attrs.define(eq=False)
class _View:
    """A file page mapped into a process (mapped or mlocked)."""

    file: _File
    index: int
    mm: Mm
    vpn: int


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
    owner: _File | _Area
    index: int

    @property
    def key(self) -> str:
        """The page's name in the data written into it (``mount0/file1/page7``)."""
        if isinstance(self.owner, _Area):
            return f"{self.owner.key}/anon{self.owner.first + self.index}"
        return f"{self.owner.key}/page{self.index}"


class World:
    """A machine built from a scenario, with the pages it wrote and their states.

    Args:
        config: the scenario (checked against ``registry``).
        registry: the loaded plugins.
        seed: the run's seed.
        log: the engine's logger (structlog-like), or ``None``.
        progress: called as pages are written.
    """

    def __init__(
        self,
        config: Config,
        registry: Registry,
        *,
        seed: int,
        log: Any = None,
        progress: Progress | None = None,
    ) -> None:
        k = config.kernel
        self.config = config
        self.seed = seed
        self.page_size = k.page_size
        self.faults = FaultInjector(
            alloc_fail=config.faults.alloc_fail,
            writepage_error=config.faults.writepage_error,
            swap_full=config.faults.swap_full,
            seed=_subseed(seed, "faults"),
        )
        self.kernel = Kernel(
            nodes=k.nodes,
            node_pages=config.node_pages,
            page_size=k.page_size,
            migration=k.migration,
            registry=registry,
            log=log,
            io_latency=k.io_latency,
            debug_vm=k.debug_vm,
            faults=self.faults,
            seed=_subseed(seed, "kernel"),
        )
        self.log = log
        self.rng = random.Random(_subseed(seed, "workload"))
        self.source_node = config.migrate.from_node
        self.target_node = config.migrate.to_node
        self.files: list[_File] = []
        self.areas: list[_Area] = []
        self.views: list[_View] = []
        self.mms: list[Mm] = []
        self.slots: list[Slot] = []
        self.states: dict[str, list[Slot]] = {s: [] for s in WorkloadConfig.STATES}
        self.holds: list[tuple[Task, Hold]] = []
        self.swaplist = PageList("swapout")
        self._progress = progress
        self._writer: Mm | None = None
        self._written = 0
        self._to_write = 0
        self._build()

    # -- building ----------------------------------------------------------------

    def _tick_progress(self, pages: int) -> None:
        self._written += pages
        if self._progress is not None:
            self._progress("build", self._written, self._to_write)

    def _content(self, key: str, gen: int) -> bytes:
        return page_content(self.seed, key, gen, self.page_size)

    def _build(self) -> None:
        config = self.config
        kernel = self.kernel
        self._to_write = sum(m.pages for m in config.mount) + config.processes.anon_pages
        kernel.alloc_nid = self.source_node
        if config.swap.slots > 0:
            kernel.swapon(config.swap.slots)
        for i, mount in enumerate(config.mount):
            sb = kernel.mount(mount.fs, mount.mode, block_size=mount.block_size, name=f"mount{i}")
            self._fill_mount(i, sb, mount.files, mount.pages)
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

    def _fill_mount(self, index: int, sb: SuperBlock, files: int, pages: int) -> None:
        fstype, mode = sb.s_type, sb.mode
        label = f"mount[{index}] ({fstype.name} {mode})"
        meta = is_buffer_cache(fstype, mode)
        page_cache = fstype.has_page_cache(mode)
        nfiles = 1 if meta else files
        base, extra = divmod(pages, nfiles)
        for f in range(nfiles):
            npages = base + (1 if f < extra else 0)
            inode = sb.new_inode()
            key = f"mount{index}/{'meta' if meta else f'file{f}'}"
            record = _File(
                key=key,
                label=f"{label} {'metadata' if meta else f'file {f}'}",
                inode=inode,
                npages=npages,
                page_cache=page_cache,
                meta=meta,
                gens=[0] * npages,
            )
            self.files.append(record)
            if meta:
                self._fill_buffer_cache(record)
            elif npages:
                data = b"".join(self._content(f"{key}/page{i}", 0) for i in range(npages))
                generic_file_write(inode, 0, data)
            if page_cache:
                kind = "meta" if meta else "file"
                self.slots.extend(Slot(kind, record, i) for i in range(npages))
            self._tick_progress(npages)

    def _fill_buffer_cache(self, record: _File) -> None:
        """Put known bytes on the device and have the filesystem read them in.

        A filesystem with ``read_metadata`` (``xfs_buftarg``) reads each page
        as its metadata code would, keeping its own references; otherwise the
        page is created and filled directly.
        """
        inode = record.inode
        mapping = inode.i_mapping
        read_metadata = inode.i_sb.s_type.read_metadata
        bs = inode.i_sb.s_blocksize
        per_page = self.page_size // bs
        for i in range(record.npages):
            data = self._content(f"{record.key}/page{i}", 0)
            if read_metadata is not None:
                for b in range(per_page):
                    blocknr = inode.get_block(i * per_page + b, True)
                    inode.i_sb.s_bdev.write(blocknr, data[b * bs : (b + 1) * bs])
                read_metadata(inode, i)
                continue
            page = grab_cache_page(mapping, i, self.source_node)
            if page is None:
                raise FsaopsError(f"{record.label}: out of memory on node {self.source_node}")
            page.data[:] = data
            page.flags |= PG.uptodate
            unlock_page(page)
            put_page(page)
        inode.i_size = record.npages * self.page_size

    def _start_processes(self) -> None:
        procs = self.config.processes
        kernel = self.kernel
        self.mms = [kernel.new_mm(name=f"process{p}") for p in range(procs.count)]
        if not procs.count:
            return
        base, extra = divmod(procs.anon_pages, procs.count)
        sizes = [base + (1 if p < extra else 0) for p in range(procs.count)]
        # mlocked anonymous pages live in a VM_LOCKED area of their process.
        nlocked = round(self.config.workload.mlocked * procs.anon_pages)
        owners = [p for p, size in enumerate(sizes) for _ in range(size)]
        locked = [0] * procs.count
        for j in self.rng.sample(range(len(owners)), nlocked):
            locked[owners[j]] += 1
        ps = self.page_size
        for p, mm in enumerate(self.mms):
            first = 0
            for npages, is_locked in ((sizes[p] - locked[p], False), (locked[p], True)):
                if not npages:
                    continue
                vma = mm.mmap_anon(npages, locked=is_locked)
                area = _Area(
                    key=f"process{p}",
                    mm=mm,
                    start=vma.vm_start,
                    first=first,
                    npages=npages,
                    locked=is_locked,
                    gens=[0] * npages,
                )
                self.areas.append(area)
                slots = [Slot("anon", area, i) for i in range(npages)]
                mm.write(vma.vm_start * ps, b"".join(self._content(s.key, 0) for s in slots))
                self.slots.extend(slots)
                if is_locked:
                    self.states["mlocked"].extend(slots)
                first += npages
                self._tick_progress(npages)

    def _give_out_states(self) -> None:
        """Pick the pages of each state (disjoint), in :attr:`WorkloadConfig.STATES` order."""
        taken = {id(s) for s in self.states["mlocked"]}

        def eligible(slot: Slot, state: str) -> bool:
            if state in ("locked", "pinned"):
                return True
            if slot.kind == "meta":
                return False
            if state in ("swapout", "mlocked"):
                return True
            if slot.kind != "file":
                return False
            if state in ("writeback", "dirty"):
                assert isinstance(slot.owner, _File)
                return slot.owner.inode.i_mapping.a_ops.writepage is not None
            return True  # mapped

        order = {id(s): i for i, s in enumerate(self.slots)}
        for state in WorkloadConfig.STATES:
            pool = [s for s in self.slots if eligible(s, state)]
            if state == "mlocked":
                # Anonymous mlocked pages were placed when the processes started.
                pool = [s for s in pool if s.kind == "file"]
            want = round(self.config.fraction(state) * len(pool))
            free = [s for s in pool if id(s) not in taken]
            picked = self.rng.sample(free, min(want, len(free)))
            picked.sort(key=lambda s: order[id(s)])
            for slot in picked:
                taken.add(id(slot))
            self.states[state].extend(picked)

    def _map(self, slots: Sequence[Slot], *, locked: bool, gen: int) -> None:
        """Map file pages into processes and touch them (write ``gen`` if not 0, else read).

        Each page goes to a process picked at random; a process maps a whole
        file in one shared area (a ``VM_LOCKED`` one for mlocked pages), of
        which only the picked pages are touched, so only they get ptes.
        """
        ps = self.page_size
        areas: dict[tuple[int, int], Vma] = {}
        for slot in slots:
            record = slot.owner
            assert isinstance(record, _File)
            p = self.rng.randrange(len(self.mms))
            mm = self.mms[p]
            vma = areas.get((id(record), p))
            if vma is None:
                vma = mm.mmap_file(record.inode, 0, record.npages, locked=locked)
                areas[(id(record), p)] = vma
            vpn = vma.vm_start + slot.index
            if gen:
                record.gens[slot.index] = gen
                mm.write(vpn * ps, self._content(slot.key, gen))
            else:
                mm.read(vpn * ps, ps)
            self.views.append(_View(record, slot.index, mm, vpn))

    def _writeback_dirty(self) -> None:
        """Start writing every dirty file page, as the flusher would."""
        for record in self.files:
            mapping = record.inode.i_mapping
            if mapping.a_ops.writepage is None:
                continue
            for page in mapping.pages():
                if page.flags & PG.dirty:
                    _start_write(page)

    def _settle(self) -> None:
        """Write everything back and let the journal commit, so every page starts clean."""
        file_mlocked = [s for s in self.states["mlocked"] if s.kind == "file"]
        if file_mlocked:
            self._map(file_mlocked, locked=True, gen=0)
        self._writeback_dirty()
        sched = self.kernel.sched
        sched.run_until_idle()
        sched.run_for(SETTLE_TICKS)
        sched.run_until_idle()

    def page_of(self, slot: Slot) -> Page:
        """The page that holds ``slot`` now.

        Raises:
            FsaopsError: it is not in memory (not in the page cache, or swapped out).
        """
        owner = slot.owner
        if isinstance(owner, _Area):
            pte = owner.mm.ptes.get(owner.start + slot.index)
            page = None if pte is None else pte.page
        else:
            page = owner.inode.i_mapping.lookup(slot.index)
        if page is None:
            raise FsaopsError(f"page {slot.key} is not in memory after building the world")
        return page

    def _rewrite(self, slot: Slot) -> Page:
        record = slot.owner
        assert isinstance(record, _File)
        record.gens[slot.index] = 1
        data = self._content(slot.key, 1)
        generic_file_write(record.inode, slot.index * self.page_size, data)
        return self.page_of(slot)

    def _apply_states(self) -> None:
        kernel = self.kernel
        sched = kernel.sched
        for slot in self.states["dirty"]:
            page = self._rewrite(slot)
            if not page.flags & PG.dirty:
                # The filesystem journalled the write instead of dirtying the
                # page (ext3 data=journal): dirty it the way a process does,
                # through a shared mapping that is then unmapped.
                self._dirty_through_mapping(slot)
        for slot in self.states["writeback"]:
            page = self._rewrite(slot)
            if page.flags & PG.dirty:
                _start_write(page)
        if self.states["mapped"]:
            self._map(self.states["mapped"], locked=False, gen=1)
        pages_to_migrate = max(1, len(self.slots))
        if self.states["pinned"]:
            pinner = kernel.new_task("pinner")
            for slot in self.states["pinned"]:
                self.holds.append(
                    (pinner, hold(pinner, sched, "page_ref", self.page_of(slot), None))
                )
        if self.states["locked"]:
            locker = kernel.new_task("locker")
            for slot in self.states["locked"]:
                ticks = self.rng.randint(1, 2 * pages_to_migrate)
                hold(locker, sched, "page_lock", self.page_of(slot), ticks)
        for slot in self.states["swapout"]:
            page = self.page_of(slot)
            if isolate_lru_page(page) == 1:
                list_add_tail(page, self.swaplist)

    def _dirty_through_mapping(self, slot: Slot) -> None:
        record = slot.owner
        assert isinstance(record, _File)
        writer = self._writer
        if writer is None:
            writer = self._writer = self.kernel.new_mm(name="writer")
        vma = writer.mmap_file(record.inode, slot.index, 1)
        writer.write(vma.vm_start * self.page_size, self._content(slot.key, 1))
        writer.munmap(vma)

    # -- migrating -----------------------------------------------------------------

    def migrate(self, progress: Progress | None = None) -> MigrateStats:
        """Migrate every page of the source node, then swap out the swapout pages.

        Raises:
            MigrationDisabled: the kernel is built without migration (``ENOSYS``).
        """
        kernel = self.kernel
        if not kernel.migration:
            raise MigrationDisabled(_ENOSYS_MESSAGE)
        stats = MigrateStats()
        total = 0

        def report(done: int, isolated: int) -> None:
            nonlocal total
            total = isolated + len(self.swaplist)
            if progress is not None:
                progress("migrate", done, total)

        self.faults.armed = True
        try:
            migrate_node(
                kernel,
                self.source_node,
                self.target_node,
                stats=stats,
                chunk=CHUNK_PAGES,
                progress=report,
            )
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
        for task, held in self.holds:
            release(task, held)
        self.holds.clear()
        kernel.run_until_idle()
        return stats

    # -- checking --------------------------------------------------------------------

    def check_integrity(self, progress: Progress | None = None) -> Integrity:
        """Read every page back through the model and compare it with what was written.

        New pages (read from disk or swap) are allocated on the target node.
        """
        self.kernel.alloc_nid = self.target_node
        ps = self.page_size
        checked = lost = corrupted = 0
        problems: list[str] = []
        # File pages that processes map are read through those processes too:
        # a pte left pointing at a stale page would not show in a file read.
        through_views: dict[tuple[int, int], str] = {}
        for view in self.views:
            key = f"{view.file.key}/page{view.index}"
            data = view.mm.read(view.vpn * ps, ps)
            verdict = self._verdict(data, key, view.file.gens[view.index])
            if verdict is not None:
                through_views[(id(view.file), view.index)] = f"{verdict}, as {view.mm.name} maps it"
        total = sum(r.npages for r in self.files) + sum(a.npages for a in self.areas)
        for record, index, key, gen, reader in self._readers():
            checked += 1
            try:
                data = reader()
            except FsaopsError as exc:
                verdict = f"lost: cannot be read ({exc})"
            else:
                verdict = self._verdict(data, key, gen)
            if verdict is None:
                verdict = through_views.get((id(record), index))
            if verdict is not None:
                if verdict.startswith("lost"):
                    lost += 1
                else:
                    corrupted += 1
                if len(problems) < MAX_PROBLEMS:
                    where = record.label if isinstance(record, _File) else record.mm.name
                    problems.append(f"{where} page {index} ({key}): {verdict}")
            if progress is not None and (checked % 256 == 0 or checked == total):
                progress("check", checked, total)
        return Integrity(checked=checked, lost=lost, corrupted=corrupted, problems=tuple(problems))

    def _readers(
        self,
    ) -> Iterator[tuple[_File | _Area, int, str, int, Callable[[], bytes]]]:
        ps = self.page_size
        for record in self.files:
            for i in range(record.npages):
                inode = record.inode
                yield (
                    record,
                    i,
                    f"{record.key}/page{i}",
                    record.gens[i],
                    partial(generic_file_read, inode, i * ps, ps),
                )
        for area in self.areas:
            for i in range(area.npages):
                yield (
                    area,
                    area.first + i,
                    f"{area.key}/anon{area.first + i}",
                    area.gens[i],
                    partial(area.mm.read, (area.start + i) * ps, ps),
                )

    def _verdict(self, data: bytes, key: str, gen: int) -> str | None:
        if data == self._content(key, gen):
            return None
        for older in range(gen):
            if data == self._content(key, older):
                return f"lost: reads back generation {older}, expected {gen}"
        if not any(data):
            return "lost: reads back zeroes"
        header = _header_of(data)
        if header is not None and header != _header_of(self._content(key, gen)):
            return f"corrupted: holds the data of {header.removeprefix('fsaops ')}"
        return "corrupted: reads back other bytes"

    def workload_summary(self) -> dict[str, Any]:
        """How many pages got each state, and a digest of which pages."""
        digest = hashlib.sha256()
        summary: dict[str, Any] = {}
        for state in WorkloadConfig.STATES:
            slots = self.states[state]
            summary[state] = len(slots)
            for slot in slots:
                digest.update(f"{state} {slot.key}\n".encode())
        summary["pages"] = len(self.slots)
        summary["digest"] = digest.hexdigest()[:16]
        return summary


_ENOSYS_MESSAGE: Final = (
    "this kernel is built without CONFIG_MIGRATION (kernel.migration = false): "
    "migrate_pages returns -ENOSYS (ENOSYS, function not implemented)"
)


def _start_write(page: Page) -> None:
    """Lock a dirty page and hand it to its table's ``writepage`` (``write_one_page``, no wait)."""
    mapping = page.mapping
    assert mapping is not None and not mapping.anon
    writepage = mapping.a_ops.writepage  # type: ignore[union-attr]
    if writepage is None:
        return
    lock_page(page)
    if not clear_page_dirty_for_io(page):
        unlock_page(page)
        return
    rc = writepage(page, WritebackControl(sync_mode="all", for_reclaim=False))
    if rc == WRITEPAGE_ACTIVATE:
        unlock_page(page)


# -- the report ---------------------------------------------------------------------


def _tables(world: World, stats: MigrateStats) -> tuple[TableReport, ...]:
    kernel = world.kernel
    known: dict[str, tuple[str, str, str | None]] = {}
    for sb in kernel.super_blocks:
        known.setdefault(
            sb.a_ops.name, (sb.s_type.name, sb.mode, member_name(sb.a_ops.migratepage))
        )
    if kernel.swapper_space is not None:
        table = kernel.swapper_space.a_ops
        known.setdefault(table.name, ("swap", "default", member_name(table.migratepage)))
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
            )
        )
    return tuple(reports)


def run_scenario(
    config: Config,
    registry: Registry,
    *,
    seed: int | None = None,
    source: str = BUILTIN_SOURCE,
    log: Any = None,
    progress: Progress | None = None,
) -> Report:
    """Build the world of ``config``, migrate it, check it, and report.

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
    """
    check_config(config, registry, source)
    if not config.kernel.migration:
        raise MigrationDisabled(f"{source}: {_ENOSYS_MESSAGE}")
    seed = config.workload.seed if seed is None else seed
    world = World(config, registry, seed=seed, log=log, progress=progress)
    kernel = world.kernel
    before = kernel.vmstat.as_dict()
    start = kernel.sched.now
    stats = world.migrate(progress)
    after = kernel.vmstat.as_dict()
    migration_ticks = kernel.sched.now - start
    integrity = world.check_integrity(progress)
    kernel.run_until_idle()
    invariants = tuple(check_kernel(kernel))
    vmstat = {name: after[name] - before[name] for name in after}
    vmstat["writepage"] = vmstat["pageout_writepage"]
    tables = _tables(world, stats)
    totals = Totals(
        pages=sum(t.pages for t in tables),
        moved=sum(t.moved for t in tables),
        failed=sum(t.failed for t in tables),
        not_migrated=sum(t.not_migrated for t in tables),
        passes=stats.passes,
        calls=stats.calls,
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

    return Report(
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
    )
