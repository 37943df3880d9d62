"""The :class:`Kernel`: one machine's state.

Everything the model knows of a machine hangs off one ``Kernel``: its NUMA
nodes and their frames, the clock and other tasks, the swap device, the
mounted filesystems, the processes and the counters.  There is no
module-level state: every test and scenario builds its own kernel, and
threads that share one do so explicitly.
"""

from __future__ import annotations

import itertools
import random
from typing import TYPE_CHECKING

import attrs

from fsaops.aops import (
    MEMBERS,
    AddressSpaceOperations,
    FileSystemType,
    configure_aops,
    member_name,
)
from fsaops.errors import ConfigError, KernelBug, PluginFault, shown
from fsaops.fs import BlockDevice, SuperBlock, mapping_bdev
from fsaops.mapping import AddressSpace
from fsaops.memory import Node
from fsaops.mutex import running_on
from fsaops.rmap import Mm
from fsaops.sched import Scheduler, Task
from fsaops.semantics import DEFAULT_SEMANTICS, Semantics, get_semantics
from fsaops.swap import SwapInfo
from fsaops.vmstat import VmStat

if TYPE_CHECKING:
    from collections.abc import Iterator

    from fsaops.fault_inject import FaultInjector
    from fsaops.page import Page
    from fsaops.plugins import Registry
    from fsaops.replay import ReplayWatch
    from fsaops.typing import EngineLog

__all__ = ["Kernel", "MountTable"]


@attrs.frozen
class MountTable:
    """The table a mount was given, as it was when the mount was made.

    The kernel keeps one for each mount, in a ledger of its own
    (:meth:`~fsaops.kernel.Kernel.mount_table`), not on the super block: plugin code is
    handed the super block, its files and their mappings, and may rewrite
    ``sb.a_ops`` or, through ``object.__setattr__``, a member of the one
    frozen table the mount and its files share.  The judges (the
    invariants, the durability proof) ask this record what the mount was
    given, and compare what is there now with it.

    Attributes:
        table: the table object the mount was given (``sb.a_ops`` then).
        name: its name then.
        members: each of its members then, by name (``None`` for a missing
            one), in the order of :data:`~fsaops.aops.MEMBERS`.
    """

    table: AddressSpaceOperations
    name: str
    members: tuple[tuple[str, object], ...]

    @classmethod
    def of(cls, table: AddressSpaceOperations) -> MountTable:
        """The record of ``table`` as it is now, read without calling any of its methods."""
        read = object.__getattribute__
        return cls(table, read(table, "name"), tuple((m, read(table, m)) for m in MEMBERS))

    def member(self, name: str) -> object:
        """Member ``name`` as the mount was given it (``None`` if it had none)."""
        return dict(self.members).get(name)

    def changed(self) -> list[tuple[str, object, object]]:
        """Each member of the table that is not what it was: (name, then, now); ``name`` too.

        A member is read as it is now without calling any method of the
        table; one that cannot be read is ``None``.
        """
        table = self.table
        found: list[tuple[str, object, object]] = []
        for name, then in (("name", self.name), *self.members):
            try:
                now = object.__getattribute__(table, name)
            except AttributeError:
                now = None
            if name == "name":
                differs = type(now) is not str or now != then
            else:
                differs = now is not then
            if differs:
                found.append((name, then, now))
        return found


class Kernel:
    """One simulated machine.

    Args:
        nodes: number of NUMA nodes.
        node_pages: page frames per node.
        page_size: bytes per page, a power of two (4096 by default).
        migration: ``CONFIG_MIGRATION``; without it no table has
            ``migratepage`` and migration calls fail with ``-ENOSYS``.
        registry: the loaded plugins, used to mount filesystems by name.
        log: a structlog logger for the engine's events (one per page
            attempt at debug level); ``None`` for no events.
        debug_vm: ``CONFIG_DEBUG_VM``: poison freed frames; callers also run
            the invariant checker more often.
        strict: look at every page before and after its ``migratepage``
            call for findings (:mod:`fsaops.findings`); ``debug_vm`` does too.
        io_latency: ticks from submitting a write to its completion.
        commit_interval: ticks between a journalling filesystem's commits
            (ext3's ``commit=``), for the journals mounted from now on;
            ``None`` leaves each its own default.
        faults: fault injection, or ``None``.
        seed: seeds ``rng``, the machine's own random generator.
        semantics: which release of the migration code the kernel runs: a
            name (``"v4"``, the default; ``"2.6.16"``; ``"2.6.17"``) or a
            :class:`~fsaops.semantics.Semantics`.  Chosen once, here.

    Raises:
        ConfigError: a size is out of range, or no release has that name.
    """

    def __init__(
        self,
        *,
        nodes: int = 2,
        node_pages: int = 1024,
        page_size: int = 4096,
        migration: bool = True,
        registry: Registry | None = None,
        log: EngineLog | None = None,
        debug_vm: bool = False,
        strict: bool = False,
        io_latency: int = 4,
        faults: FaultInjector | None = None,
        seed: int = 0,
        semantics: str | Semantics = DEFAULT_SEMANTICS,
        commit_interval: int | None = None,
    ) -> None:
        if nodes < 1:
            raise ConfigError("a kernel needs at least one node")
        if node_pages < 1:
            raise ConfigError("a node needs at least one page")
        if page_size < 512 or page_size & (page_size - 1):
            raise ConfigError(f"page size {page_size} is not a power of two of at least 512")
        #: The release of the migration code this kernel runs.
        self.semantics: Semantics = get_semantics(semantics)
        self.page_size = page_size
        self.page_shift = page_size.bit_length() - 1
        self.migration = migration
        self.registry = registry
        self.log = log
        self.debug_vm = debug_vm
        self.strict = strict
        #: The watch of a replayed run (:mod:`fsaops.replay`): told of every
        #: ``migratepage`` call; ``None`` in every other run.
        self.replay: ReplayWatch | None = None
        #: ``CONFIG_DEBUG_VM``: pages tried so far, and after which one the
        #: whole machine was last checked (every ``FULL_CHECK_EVERY`` pages).
        self.debug_vm_tried = 0
        self.debug_vm_last = "the start"
        self.io_latency = io_latency
        if commit_interval is not None and commit_interval < 1:
            raise ConfigError(f"a commit interval of {commit_interval} ticks is not at least 1")
        self.commit_interval = commit_interval
        self.faults = faults
        self.rng = random.Random(seed)
        self.sched = Scheduler()
        self.vmstat = VmStat()
        self.node_pages = node_pages
        self.nodes: tuple[Node, ...] = tuple(
            Node(self, nid, nid * node_pages, node_pages) for nid in range(nodes)
        )
        self.swap: SwapInfo | None = None
        self.swapper_space: AddressSpace | None = None
        self.swap_aops_name = "swap_aops"
        self.super_blocks: list[SuperBlock] = []
        # What each mount was given, by id(sb): the super block (which keeps
        # its id) and the record of its table (:meth:`mount_table`).
        self._mount_tables: dict[int, tuple[SuperBlock, MountTable]] = {}
        self.mms: list[Mm] = []
        self.tasks: list[Task] = []
        self._pids = itertools.count(1)
        self.current = self.new_task("migrate")
        #: The node new pages are allocated on when nothing else says.
        self.alloc_nid = 0
        #: The frames a write fault gave a process as its own copy of an
        #: anonymous page someone else held (``do_wp_page``), until freed.
        self.cow_copies: set[int] = set()
        #: The frames a swap fault read a page into (``read_swap_cache_async``),
        #: until freed: one may be a migrated page's old frame, freed and
        #: handed out again.
        self.swap_reads: set[int] = set()
        #: Pages the engine handed to a table's own I/O members (``writepage``
        #: through ``pageout``, ``releasepage``) rather than to ``migratepage``:
        #: the generic path and ``swap_page``, counted by the ``id`` of the
        #: block device of the page's filesystem (-1 for the swap cache's,
        #: 0 where the mapping names none).  Such members may write blocks of their own
        #: device that no file owns (a log, a bitmap) or allocate (delayed
        #: allocation, copy-on-write), which ``migratepage`` may not
        #: (:mod:`fsaops.untouched`).
        self.generic_path: dict[int, int] = {}
        # A table's Mutex taken under a spinlock is a BUG from here on, as the
        # world is built too (its readpage, prepare_write, writepage calls).
        running_on(self)

    def note_own_io(self, mapping: object) -> None:
        """The engine hands a page of ``mapping`` to its table's own I/O members.

        Counted in :attr:`generic_path` by the block device of the mapping's
        filesystem (``mapping.host.i_sb.s_bdev``); the swap cache's by the
        swap device (-1: no filesystem's), anything else by 0 (unknown).
        """
        if mapping is not None and mapping is self.swapper_space:
            key = -1
        else:
            bdev = mapping_bdev(mapping)
            key = 0 if bdev is None else id(bdev)
        self.generic_path[key] = self.generic_path.get(key, 0) + 1

    def __repr__(self) -> str:
        return (
            f"<Kernel {len(self.nodes)} nodes x {self.node_pages} pages, "
            f"migration={'y' if self.migration else 'n'}, semantics {self.semantics.name}, "
            f"tick {self.sched.now}>"
        )

    # -- memory ------------------------------------------------------------

    def pfn_to_page(self, pfn: int) -> Page:
        """The page of frame ``pfn``."""
        nid, off = divmod(pfn, self.node_pages)
        if not 0 <= nid < len(self.nodes):
            raise KernelBug(f"pfn {pfn} is outside memory")
        return self.nodes[nid].frame(off)

    def pages(self) -> Iterator[Page]:
        """Every page frame of every node (``mem_map``)."""
        for node in self.nodes:
            yield from node.pages

    def intern(self, value: int) -> int:
        """``value``, as the int object of frame number ``value`` when that frame is made.

        Page indexes are stored through this: an index below the number of
        frames shares the int its frame number already keeps alive instead
        of holding an equal int of its own (28 bytes a page), as CPython
        shares its small ints.  Any other value, and one whose frame is not
        made yet (:attr:`~fsaops.memory.Node.frames_made`), comes back as it is.
        """
        node_pages = self.node_pages
        nid = value // node_pages
        if 0 <= nid < len(self.nodes):
            made = self.nodes[nid].frames_made
            off = value - nid * node_pages
            if off < len(made):  # a frame not made yet has no int to share
                return made[off].pfn
        return value

    # -- tasks and processes -----------------------------------------------

    def new_task(self, name: str) -> Task:
        """Create another task (something that can hold locks and references)."""
        task = Task(next(self._pids), name)
        self.tasks.append(task)
        return task

    def new_mm(self, *, uid: int = 0, name: str = "") -> Mm:
        """Create a process (its task and address space)."""
        task = self.new_task(name or "process")
        mm = Mm(self, task.pid, uid=uid, name=name or f"process{task.pid}")
        self.mms.append(mm)
        return mm

    # -- swap ----------------------------------------------------------------

    def swapon(
        self, slots: int, swap_type: FileSystemType | None = None, mode: str | None = None
    ) -> SwapInfo:
        """Enable a swap device of ``slots`` pages; the swap cache uses ``swap_aops``.

        The table comes from ``swap_type`` (in ``mode``, default its default
        mode) or from the registry's ``swap`` filesystem type (the ``swap``
        plugin).

        Raises:
            ConfigError: a swap device is already on, or no swap plugin is loaded.
        """
        if self.swap is not None:
            raise ConfigError("a swap device is already enabled")
        if slots < 1:
            raise ConfigError("a swap device needs at least one slot")
        if swap_type is None:
            swap_type = self._filesystem("swap")
        table = configure_aops(swap_type.aops(mode), migration=self.migration)
        self.swap = SwapInfo(self, slots)
        self.swapper_space = AddressSpace(self, table, name="swapper_space")
        self.swap_aops_name = table.name
        return self.swap

    def swap_info(self) -> SwapInfo:
        """The swap device.

        Raises:
            KernelBug: there is none.
        """
        if self.swap is None:
            raise KernelBug("swap used with no swap device")
        return self.swap

    # -- filesystems ------------------------------------------------------------

    def _filesystem(self, name: str) -> FileSystemType:
        if self.registry is None:
            raise ConfigError(f"no plugins are loaded, so there is no {name!r} filesystem")
        return self.registry.filesystem(name)

    def mount(
        self,
        fs: str | FileSystemType,
        mode: str | None = None,
        *,
        block_size: int | None = None,
        nr_blocks: int | None = None,
        name: str | None = None,
    ) -> SuperBlock:
        """Mount a filesystem type in a mode on a new block device.

        Args:
            fs: a filesystem type, or its name in the registry.
            mode: the mount mode; the type's default if ``None``.
            block_size: the filesystem block size; the type's default if ``None``.
            nr_blocks: the device's size in blocks (default: four times the
                memory of all nodes, so the files always fit).
            name: the mount's name in reports.

        Raises:
            ConfigError: unknown type or mode, or a block size the type does not take.
        """
        fstype = self._filesystem(fs) if isinstance(fs, str) else fs
        mode = fstype.default_mode if mode is None else mode
        problem = fstype.mode_problem(mode)
        bs = fstype.default_block_size if block_size is None else block_size
        if problem is None:
            problem = fstype.block_size_problem(bs, self.page_size)
        if problem is not None:
            raise ConfigError(problem)
        if nr_blocks is None:
            total = len(self.nodes) * self.node_pages * self.page_size
            nr_blocks = 4 * total // bs + 16
        table: AddressSpaceOperations = configure_aops(fstype.aops(mode), migration=self.migration)
        label = name or f"{fstype.name}{len(self.super_blocks)}"
        bdev = BlockDevice(f"{label}-dev", nr_blocks, bs)
        sb = SuperBlock(self, fstype, mode, table, bdev, label)
        # Recorded before fill_super, plugin code, runs: what the loader
        # checked is what the judges hold the mount to.
        self._mount_tables[id(sb)] = (sb, MountTable.of(table))
        if fstype.fill_super is not None:
            fstype.fill_super(sb)
            if sb.a_ops is not table:  # what the loader checked is what mounts use
                given: object = sb.a_ops
                what = getattr(given, "name", type(given).__name__)
                raise PluginFault(
                    f"fill_super of filesystem {fstype.name} "
                    f"({member_name(fstype.fill_super)}) replaced the mount's table "
                    f"{table.name} with {shown(what)}: a mount uses the table its type "
                    f"declares for mode {mode}",
                    table=table.name,
                )
        self.super_blocks.append(sb)
        return sb

    def mount_table(self, sb: SuperBlock) -> MountTable:
        """The table mount ``sb`` was given when it was mounted, and its members then.

        A super block not made by :meth:`mount` has no record: its table as
        it is now stands for it.
        """
        found = self._mount_tables.get(id(sb))
        if found is not None and found[0] is sb:
            return found[1]
        return MountTable.of(sb.a_ops)

    def sync_filesystems(self) -> None:
        """Have every mount write out what it holds back beyond its pages (``sync_filesystems``).

        ``sync(2)``'s second step, after the dirty pages are written back:
        each filesystem type's ``sync_fs`` (ext3 commits its running
        transaction), mount by mount in the order they were mounted.
        """
        for sb in list(self.super_blocks):
            sync_fs = sb.s_type.sync_fs
            if sync_fs is not None:
                sync_fs(sb)

    def run_until_idle(self) -> None:
        """Let every pending event run: I/O completes, other tasks let go."""
        self.sched.run_until_idle()
