"""Small machines, and pages in chosen states, for testing one operations table.

A :class:`Subject` names what is under test: a filesystem type, a mount
mode (so one operations table) and the *capabilities* that say which of
the kernel's promises apply to it.  A :class:`World` is one small,
deterministic machine (two nodes of 64 pages by default) with that table
mounted (or serving the swap cache), and :meth:`World.make_page` builds a
page in any state a :class:`PageSpec` describes: clean or dirty, under
writeback, with or without buffers, mapped by a process, in a
``VM_LOCKED`` area, pinned or locked by another task, carrying chosen
flags, or truncated from its mapping.

The world then does what the engine does: :meth:`World.call_migratepage`
calls the table's ``migratepage`` directly with both pages locked (the
hook level), and :meth:`World.migrate` runs ``migrate_pages`` over the
isolated pages (the engine level).  Everything is built through the
model's own paths (``read_cache_page``, ``generic_file_write``, the
table's ``writepage``, page faults, ``isolate_lru_page``), never by
writing a state that those paths could not produce.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from errno import EAGAIN
from types import MappingProxyType
from typing import TYPE_CHECKING

import attrs

from fsaops.aops import AddressSpaceOperations, FileSystemType, configure_aops
from fsaops.buffer import BH, create_empty_buffers, generic_get_block, try_to_release_page
from fsaops.errors import FsaopsError
from fsaops.fs import generic_file_read, generic_file_write, read_cache_page
from fsaops.kernel import Kernel
from fsaops.lists import PageList, list_add_tail, list_del
from fsaops.lru import isolate_lru_page, putback_lru_pages
from fsaops.mapping import grab_cache_page, truncate_inode_pages
from fsaops.migrate import MigrateStats, migrate_pages
from fsaops.page import PG, Page, put_page, trylock_page, unlock_page
from fsaops.rmap import SWAP_SUCCESS, try_to_unmap
from fsaops.sched import Hold, hold, release
from fsaops.swap import add_to_swap
from fsaops.testing.oracle import IoCounters, Oracle, PageState
from fsaops.writeback import WritebackControl, clear_page_dirty_for_io, set_page_dirty

if TYPE_CHECKING:
    from fsaops.fs import Inode, SuperBlock
    from fsaops.rmap import Mm, Vma

__all__ = [
    "CAPABILITIES",
    "EngineRun",
    "HookCall",
    "PageSpec",
    "PreparedPage",
    "SetupError",
    "Subject",
    "World",
    "resolve_subject",
]

CAPABILITIES: Mapping[str, str] = MappingProxyType(
    {
        "buffers": "pages of the mapping carry buffer heads",
        "writeback": "the table's writepage puts a page under asynchronous writeback",
        "no_migratepage": (
            "the table has no migratepage, so the engine's fallback path "
            "(pageout, try_to_release_page, migrate_page, swap_page) moves its pages"
        ),
        "refuses": (
            "migratepage refuses every page with a permanent error "
            "(fail_migrate_page: -EIO), so nothing ever moves"
        ),
        "swap_cache": (
            "the table serves the swap cache (swapper_space): the pages under test "
            "are anonymous memory that the engine puts into the swap cache"
        ),
        "no_page_cache": (
            "the mode keeps no pages in the page cache (execute in place), "
            "so there is no page to migrate"
        ),
    }
)
"""Every capability a subject may declare, with what declaring it means."""

_NAMED_STATES = ("clean", "dirty", "writeback", "mapped", "mlocked", "pinned", "locked")


class SetupError(FsaopsError):
    """The subject or the state asked for cannot be built; the message says why."""


# -- the subject -----------------------------------------------------------------


@attrs.frozen
class Subject:
    """What is under test: a filesystem type in one mode, and its capabilities.

    Attributes:
        fstype: the filesystem type.
        mode: the mount mode, which selects the operations table.
        capabilities: names from :data:`CAPABILITIES`.
        block_size: the block size to mount with (``None``: the type's default).
        origin: where the type came from, for messages (``dist[entry]``, or
            ``given directly``).
    """

    fstype: FileSystemType
    mode: str
    capabilities: frozenset[str] = frozenset()
    block_size: int | None = None
    origin: str = "given directly"

    @property
    def table(self) -> AddressSpaceOperations:
        """The mode's table, as a kernel built with migration uses it."""
        return configure_aops(self.fstype.aops(self.mode), migration=True)

    def has(self, capability: str) -> bool:
        """Whether the subject declares ``capability``."""
        if capability not in CAPABILITIES:
            raise ValueError(f"unknown capability {capability!r}")
        return capability in self.capabilities

    def describe(self) -> str:
        """``ext3 mode journal (ext3_journalled_aops)``."""
        return f"{self.fstype.name} mode {self.mode} ({self.fstype.aops(self.mode).name})"


def check_capabilities(capabilities: Iterable[str]) -> frozenset[str]:
    """Validate capability names; returns them as a frozenset.

    Raises:
        SetupError: a name is not one of :data:`CAPABILITIES` (or a bare
            string was given instead of a set of names).
    """
    if isinstance(capabilities, str):
        raise SetupError(
            f"capabilities must be a set of names, not the string {capabilities!r} "
            f'(write {{"{capabilities}"}})'
        )
    names = frozenset(capabilities)
    unknown = sorted(n for n in names if n not in CAPABILITIES)
    if unknown:
        known = ", ".join(sorted(CAPABILITIES))
        raise SetupError(f"unknown capability {unknown[0]!r} (known: {known})")
    return names


def resolve_subject(
    filesystem: str | FileSystemType,
    mode: str | None = None,
    capabilities: Iterable[str] = (),
    *,
    plugin: str | None = None,
    block_size: int | None = None,
) -> Subject:
    """Find the filesystem type under test and check the rest of the subject.

    A name is resolved through the real plugin loader with only one plugin
    selected: ``plugin`` (an entry-point name), or the filesystem's own
    name.  A :class:`~fsaops.FileSystemType` is used as it is, so a plugin
    can be tested before it is installed.

    Raises:
        SetupError: the plugin is not installed or does not provide the
            filesystem, the mode or block size does not exist, or a
            capability is unknown.
    """
    caps = check_capabilities(capabilities)
    origin = "given directly"
    if isinstance(filesystem, FileSystemType):
        fstype = filesystem
    else:
        from fsaops.plugins import load_plugins

        entry = plugin or filesystem
        try:
            registry = load_plugins(cli=[entry])
        except FsaopsError as exc:
            raise SetupError(
                f"cannot load the plugin providing filesystem {filesystem!r}: {exc}"
                + ("" if plugin else "; if its entry point has another name, set `plugin`")
            ) from exc
        try:
            fstype = registry.filesystem(filesystem)
        except FsaopsError as exc:
            raise SetupError(f"plugin {entry!r} does not provide it: {exc}") from exc
        info = registry.plugin(entry)
        origin = info.label
    chosen = fstype.default_mode if mode is None else mode
    if chosen not in fstype.modes:
        have = ", ".join(sorted(fstype.modes))
        raise SetupError(f"filesystem {fstype.name} has no mode {chosen!r} (it has: {have})")
    if block_size is not None and block_size not in fstype.block_sizes:
        have = ", ".join(map(str, fstype.block_sizes))
        raise SetupError(
            f"filesystem {fstype.name} does not take block size {block_size} (it takes: {have})"
        )
    return Subject(fstype, chosen, caps, block_size, origin)


# -- page states -------------------------------------------------------------------


def _check_flags(_instance: object, _attribute: object, value: int) -> None:
    if value & ~PG.COPIED:
        raise ValueError(
            "PageSpec.flags may only hold flags migrate_page_copy carries "
            "(PG.error, referenced, uptodate, active, checked, mappedtodisk)"
        )


@attrs.frozen
class PageSpec:
    """The state of one page when migration starts.

    Attributes:
        dirty: the page is newer than the disk (written through the
            filesystem, or dirtied as a write through a mapping does).
        writeback: a write of the page is in flight (implies it was dirty).
            The engine waits for it; ``migratepage`` is never called on such
            a page.
        mapped: a process maps the page.
        mlocked: that process's area is ``VM_LOCKED`` (implies ``mapped``).
        pinned: extra references another task holds and never drops.
        locked_for: another task holds the page lock for this many ticks
            (0: nobody does).  The engine waits; the hook never sees it.
        flags: flags ``migrate_page_copy`` carries (``PG.COPIED``), set once
            the page is isolated.
        truncated: the page left its mapping after isolation (no mapping).
        buffers: ``None`` for whatever the table does; ``True`` to attach
            buffer heads if its read path did not; ``False`` to release them.
        index: the page's index in its file.
        seed: seeds the page's contents.
        isolated: take the page off the LRU onto the world's ``from`` list,
            as migration callers do.
    """

    dirty: bool = False
    writeback: bool = False
    mapped: bool = False
    mlocked: bool = False
    pinned: int = attrs.field(default=0, validator=attrs.validators.ge(0))
    locked_for: int = attrs.field(default=0, validator=attrs.validators.ge(0))
    flags: int = attrs.field(default=0, validator=_check_flags)
    truncated: bool = False
    buffers: bool | None = None
    index: int = attrs.field(default=0, validator=attrs.validators.ge(0))
    seed: int = 0
    isolated: bool = True

    def __attrs_post_init__(self) -> None:
        # Implications, so that a spec always describes a reachable state.
        if self.writeback and not self.dirty:
            object.__setattr__(self, "dirty", True)
        if self.mlocked and not self.mapped:
            object.__setattr__(self, "mapped", True)
        if self.truncated and (self.mapped or self.writeback or self.locked_for):
            raise ValueError("a truncated page is not mapped, under writeback or locked")

    @classmethod
    def parse(cls, text: str) -> PageSpec:
        """Build a spec from state names joined by ``+``: ``"dirty+mapped+pinned"``.

        Names: ``clean``, ``dirty``, ``writeback``, ``mapped``, ``mlocked``,
        ``pinned`` (one reference), ``locked`` (by another task for 8 ticks),
        ``buffers``, ``nobuffers``, ``truncated``.
        """
        fields: dict[str, object] = {}
        for raw in text.split("+"):
            name = raw.strip()
            if name == "clean":
                continue
            if name in ("dirty", "writeback", "mapped", "mlocked", "truncated"):
                fields[name] = True
            elif name == "pinned":
                fields["pinned"] = 1
            elif name == "locked":
                fields["locked_for"] = 8
            elif name == "buffers":
                fields["buffers"] = True
            elif name == "nobuffers":
                fields["buffers"] = False
            else:
                known = ", ".join((*_NAMED_STATES, "buffers", "nobuffers", "truncated"))
                raise ValueError(f"unknown page state {name!r} (known: {known})")
        return cls(**fields)  # type: ignore[arg-type]

    def __str__(self) -> str:
        parts = [
            name
            for name in ("dirty", "writeback", "mapped", "mlocked", "truncated")
            if getattr(self, name)
        ]
        if self.mlocked:
            parts.remove("mapped")
        if self.writeback:
            parts.remove("dirty")
        if self.pinned:
            parts.append(f"pinned x{self.pinned}")
        if self.locked_for:
            parts.append(f"locked by another task for {self.locked_for} ticks")
        if self.buffers is not None:
            parts.append("buffers" if self.buffers else "no buffers")
        if self.flags:
            parts.append(f"flags {Oracle.flag_names(self.flags)}")
        return "+".join(parts) or "clean"


def page_contents(seed: int, size: int) -> bytes:
    """Deterministic contents for a page: every byte depends on ``seed``."""
    return random.Random(seed).randbytes(size)


@attrs.define(eq=False)
class PreparedPage:
    """A page built by :meth:`World.make_page`, and what it must keep.

    Attributes:
        page: the page.
        spec: the state it was built in.
        data: the contents it holds (and must still hold, wherever it ends up).
        inode: its file (``None`` for anonymous memory).
        mm: the process whose memory it is: the one mapping a file page, if
            any; always the owner of an anonymous page, even when its pte
            is a swap entry.
        vma: that process's area.
        addr: the page's byte address in ``mm``.
        holds: what other tasks hold on it.
    """

    page: Page
    spec: PageSpec
    data: bytes
    inode: Inode | None = None
    mm: Mm | None = None
    vma: Vma | None = None
    addr: int = 0
    holds: list[Hold] = attrs.field(factory=list)

    @property
    def anonymous(self) -> bool:
        """Whether the page is anonymous memory (the swap cache's table)."""
        return self.inode is None

    def read_back(self) -> bytes:
        """What its user sees now: the process's memory, or the file through the page cache."""
        if self.mm is not None:
            return self.mm.read(self.addr, len(self.data))
        if self.inode is None:
            raise SetupError("an anonymous page that nobody maps cannot be read back")
        return generic_file_read(self.inode, self.spec.index * len(self.data), len(self.data))


@attrs.frozen(eq=False)
class HookCall:
    """One direct call of ``migratepage``, with the state around it.

    Attributes:
        rc: what ``migratepage`` returned, whatever its type.
        prepared: the old page, as built.
        newpage: the new page.
        old_before: the old page just before the call (locked, as the engine
            passes it).
        new_before: the new page just before the call.
        io_before: the write counters just before the call.
    """

    rc: object
    prepared: PreparedPage
    newpage: Page
    old_before: PageState
    new_before: PageState
    io_before: IoCounters

    @property
    def page(self) -> Page:
        """The old page."""
        return self.prepared.page


@attrs.define(eq=False)
class EngineRun:
    """The outcome of :meth:`World.migrate`.

    Attributes:
        rcs: what each ``migrate_pages`` call returned.
        calls: for each call, (pages put on ``failed`` by it, pages left on
            ``from`` after it).
        to: the new pages not used.
        moved: old pages that moved (or were freed under us).
        failed: old pages that failed for good.
        stats: per-table outcomes.
        before: each old page's state before the first call, by pfn.
        new_pages: the new pages offered, by pfn.
        io_before: the write counters before the first call.
    """

    rcs: list[int]
    calls: list[tuple[int, int]]
    to: PageList
    moved: PageList
    failed: PageList
    stats: MigrateStats
    before: dict[int, PageState]
    new_pages: dict[int, Page]
    io_before: IoCounters

    def where(self, world: World, page: Page) -> str:
        """``moved``, ``failed``, ``from``, or a sentence saying what is wrong."""
        found = [
            name
            for name, pl in (("from", world.from_), ("moved", self.moved), ("failed", self.failed))
            if any(p is page for p in pl)
        ]
        if len(found) == 1:
            return found[0]
        if not found:
            return "on none of from/moved/failed"
        return "on " + " and ".join(found)

    def reasons(self) -> str:
        """Why pages failed or stayed, per table (the engine's own account)."""
        parts = []
        for name, ts in sorted(self.stats.tables.items()):
            if ts.reasons:
                why = "; ".join(f"{k} (x{v})" for k, v in sorted(ts.reasons.items()))
                parts.append(f"{name}: {why}")
        return " | ".join(parts) or "no reason recorded"


# -- the world ----------------------------------------------------------------------


class World:
    """One small deterministic machine with the subject's table in use.

    Args:
        subject: what is under test.
        nodes: NUMA nodes (old pages are built on node 0, new ones on the last).
        node_pages: page frames per node.
        swap_slots: slots of the swap device (the swap cache's table only).
        seed: the kernel's seed.
    """

    def __init__(
        self,
        subject: Subject,
        *,
        nodes: int = 2,
        node_pages: int = 64,
        swap_slots: int = 32,
        seed: int = 0,
    ) -> None:
        self.subject = subject
        self.oracle = Oracle()
        self.kernel = Kernel(nodes=nodes, node_pages=node_pages, seed=seed)
        self.sb: SuperBlock | None = None
        if subject.has("swap_cache"):
            self.kernel.swapon(swap_slots, swap_type=subject.fstype, mode=subject.mode)
        else:
            self.sb = self.kernel.mount(
                subject.fstype, subject.mode, block_size=subject.block_size, name="subject"
            )
        self.from_ = PageList("from")
        self.prepared: list[PreparedPage] = []
        self._pinner = self.kernel.new_task("pinner")
        self._locker = self.kernel.new_task("locker")
        self._files = 0

    def __repr__(self) -> str:
        return f"<World {self.subject.describe()} {self.kernel!r}>"

    @property
    def table(self) -> AddressSpaceOperations:
        """The table in use (as mounted, so with the kernel's configuration applied)."""
        if self.sb is not None:
            return self.sb.a_ops
        swapper = self.kernel.swapper_space
        assert swapper is not None
        return swapper.a_ops

    @property
    def target_nid(self) -> int:
        """The node new pages are allocated on."""
        return len(self.kernel.nodes) - 1

    # -- building ---------------------------------------------------------------

    def new_file(self) -> Inode:
        """An empty file on the subject's mount."""
        if self.sb is None:
            raise SetupError(f"{self.subject.describe()} serves the swap cache: it has no files")
        self._files += 1
        return self.sb.new_inode(f"file{self._files}")

    def new_page(self) -> Page:
        """A free page on the target node, with its allocation reference."""
        page = self.kernel.nodes[self.target_nid].alloc_page()
        if page is None:
            raise SetupError(f"node {self.target_nid} is out of pages")
        return page

    def make_page(self, spec: PageSpec | str | None = None) -> PreparedPage:
        """Build one page in the state ``spec`` describes (a spec or state names).

        Raises:
            SetupError: the subject cannot be in that state (for example
                ``writeback`` without the ``writeback`` capability).
        """
        if spec is None:
            spec = PageSpec()
        elif isinstance(spec, str):
            spec = PageSpec.parse(spec)
        subject = self.subject
        if subject.has("no_page_cache"):
            raise SetupError(
                f"capability 'no_page_cache': {subject.describe()} keeps no pages in the page cache"
            )
        if spec.writeback and not subject.has("writeback"):
            raise SetupError(
                f"a page under writeback needs capability 'writeback' ({subject.describe()} "
                "does not declare it)"
            )
        if subject.has("swap_cache"):
            prepared = self._make_anon(spec)
        else:
            prepared = self._make_file(spec)
        self._finish(prepared)
        self.prepared.append(prepared)
        return prepared

    def _make_file(self, spec: PageSpec) -> PreparedPage:
        kernel = self.kernel
        ps = kernel.page_size
        inode = self.new_file()
        mapping = inode.i_mapping
        sb = inode.i_sb
        bs = sb.s_blocksize
        per_page = ps // bs
        data = page_contents(spec.seed, ps)
        # The file's data is on disk first; the page is read through the table.
        inode.reserve((spec.index + 1) * ps)
        for i in range(per_page):
            sb.s_bdev.write(inode.blocks[spec.index * per_page + i], data[i * bs : (i + 1) * bs])
        table = self.table
        if table.readpage is not None:
            page = read_cache_page(mapping, spec.index, 0)
            # What the table's read path put there (a filesystem without a
            # backing store, such as ramfs, reads zeros).
            data = self.oracle.frame(page)
        else:
            grabbed = grab_cache_page(mapping, spec.index, 0)
            if grabbed is None:
                raise SetupError("node 0 is out of pages")
            page = grabbed
            self.oracle.write_frame(page, data)
            page.flags |= PG.uptodate
            unlock_page(page)
        prepared = PreparedPage(page, spec, data, inode=inode)
        if spec.buffers is not None:
            self._set_buffers(prepared, spec.buffers)
        if spec.mapped:
            mm = kernel.new_mm(name=f"mapper{len(self.prepared)}")
            vma = mm.mmap_file(inode, spec.index, 1, locked=spec.mlocked)
            prepared.mm, prepared.vma, prepared.addr = mm, vma, vma.vm_start * ps
            mm.read(prepared.addr, 1)  # fault it in
            pte = mm.ptes.get(vma.vm_start)
            if pte is None or pte.page is not page:
                raise SetupError(f"mapping the file did not map pfn {page.pfn}")
        if spec.dirty:
            new = page_contents(spec.seed ^ 0x5EED, ps)
            if table.prepare_write is not None and table.commit_write is not None:
                generic_file_write(inode, spec.index * ps, new)
            else:
                self.oracle.write_frame(page, new)
            if not page.flags & PG.dirty:
                set_page_dirty(page)  # as a write through a mapping does
            prepared.data = new
        if spec.writeback:
            self._start_writeback(page)
        put_page(page)  # read_cache_page's / grab_cache_page's reference
        return prepared

    def _make_anon(self, spec: PageSpec) -> PreparedPage:
        kernel = self.kernel
        ps = kernel.page_size
        if spec.buffers:
            raise SetupError("anonymous pages carry no buffer heads")
        mm = kernel.new_mm(name=f"process{len(self.prepared)}")
        vma = mm.mmap_anon(1, locked=spec.mlocked)
        addr = vma.vm_start * ps
        data = page_contents(spec.seed, ps)
        mm.write(addr, data)  # the fault allocates on node 0
        pte = mm.ptes[vma.vm_start]
        assert pte.page is not None
        page = pte.page
        prepared = PreparedPage(page, spec, data, mm=mm, vma=vma, addr=addr)
        # Fresh anonymous memory is outside the swap cache (the engine adds
        # it); a page that is not mapped, clean or being written lives there.
        in_swap_cache = not spec.truncated and (not spec.mapped or not spec.dirty or spec.writeback)
        if in_swap_cache:
            if not trylock_page(page):
                raise SetupError(f"pfn {page.pfn} is locked")
            if not add_to_swap(page):
                unlock_page(page)
                raise SetupError("the swap device is full")
            if not spec.mapped:
                for _ in range(3):  # the first try only clears the young bit
                    if try_to_unmap(page) == SWAP_SUCCESS:
                        break
                if page.mapcount:
                    unlock_page(page)
                    raise SetupError(f"could not unmap pfn {page.pfn}")
            if not spec.dirty:
                self._write_out(page, wait=True)
            elif spec.writeback:
                self._write_out(page, wait=False)
            else:
                unlock_page(page)
        return prepared

    def _write_out(self, page: Page, *, wait: bool) -> None:
        # page locked on entry; writepage unlocks it.
        writepage = self.table.writepage
        if writepage is None:
            unlock_page(page)
            raise SetupError(f"{self.table.name} has no writepage")
        clear_page_dirty_for_io(page)
        writepage(page, WritebackControl())
        if wait:
            self.kernel.run_until_idle()
            if page.flags & (PG.writeback | PG.dirty):
                raise SetupError(f"writing pfn {page.pfn} out did not leave it clean")
        elif not page.flags & PG.writeback:
            raise SetupError(
                f"capability 'writeback': {self.table.name}.writepage did not put "
                f"pfn {page.pfn} under writeback"
            )

    def _start_writeback(self, page: Page) -> None:
        if not trylock_page(page):
            raise SetupError(f"pfn {page.pfn} is locked")
        if not page.flags & PG.dirty:
            unlock_page(page)
            raise SetupError(f"pfn {page.pfn} is not dirty, so there is nothing to write")
        self._write_out(page, wait=False)

    def _set_buffers(self, prepared: PreparedPage, want: bool) -> None:
        page = prepared.page
        inode = prepared.inode
        assert inode is not None
        if bool(page.flags & PG.private) == want:
            return
        if not trylock_page(page):
            raise SetupError(f"pfn {page.pfn} is locked")
        try:
            if want:
                bs = inode.i_sb.s_blocksize
                per_page = page.node.page_size // bs
                head = create_empty_buffers(page, bs, BH.uptodate)
                bh = head
                for i in range(per_page):
                    generic_get_block(inode, prepared.spec.index * per_page + i, bh, False)
                    bh = bh.b_this_page
            elif not try_to_release_page(page, 0):
                raise SetupError(f"the buffers of pfn {page.pfn} could not be released")
        finally:
            unlock_page(page)

    def _finish(self, prepared: PreparedPage) -> None:
        page = prepared.page
        spec = prepared.spec
        sched = self.kernel.sched
        if spec.isolated:
            if isolate_lru_page(page) != 1:
                raise SetupError(f"pfn {page.pfn} could not be isolated from the LRU")
            list_add_tail(page, self.from_)
            page.flags |= spec.flags
        elif spec.flags:
            page.flags |= spec.flags & ~PG.active  # PG_active must match the LRU list
        if spec.truncated and prepared.inode is not None:
            ps = self.kernel.page_size
            truncate_inode_pages(prepared.inode.i_mapping, spec.index * ps)
        for _ in range(spec.pinned):
            prepared.holds.append(hold(self._pinner, sched, "page_ref", page, None))
        if spec.locked_for:
            prepared.holds.append(hold(self._locker, sched, "page_lock", page, spec.locked_for))

    # -- migrating ---------------------------------------------------------------

    def call_migratepage(self, prepared: PreparedPage, newpage: Page | None = None) -> HookCall:
        """Call the table's ``migratepage`` directly, as the engine does (KERNEL-SPEC §3 step 9).

        Both pages are locked first; an anonymous page is put into the swap
        cache first, as the engine does (§3 step 5), unless it was built
        ``truncated``.  The pages are left locked: the caller inspects them.

        Raises:
            SetupError: the table has no ``migratepage``, or the page is locked.
        """
        migratepage = self.table.migratepage
        if migratepage is None:
            raise SetupError(f"{self.table.name} has no migratepage")
        page = prepared.page
        if page.flags & PG.writeback:
            raise SetupError(
                f"pfn {page.pfn} is under writeback: the engine waits for it before calling "
                "migratepage (KERNEL-SPEC §3 step 4)"
            )
        if newpage is None:
            newpage = self.new_page()
        if not trylock_page(page):
            raise SetupError(f"pfn {page.pfn} is locked by someone else")
        engine_adds_swap = (
            prepared.anonymous and not page.flags & PG.swapcache and not prepared.spec.truncated
        )
        if engine_adds_swap and not add_to_swap(page):
            raise SetupError("the swap device is full")
        if not trylock_page(newpage):
            raise SetupError(f"new pfn {newpage.pfn} is locked")
        kernel = self.kernel
        old_before = self.oracle.snapshot(page)
        new_before = self.oracle.snapshot(newpage)
        io_before = self.oracle.io(kernel)
        rc: object = migratepage(newpage, page)
        return HookCall(rc, prepared, newpage, old_before, new_before, io_before)

    def migrate(self, *, rounds: int = 1, settle_ticks: int = 0) -> EngineRun:
        """Run ``migrate_pages`` over every isolated page, with one new page each.

        ``rounds`` > 1 calls it again for pages still on ``from`` after
        letting ``settle_ticks`` ticks pass (kjournald commits, I/O ends),
        as ``migrate_pages_to`` calls it again while pages are left.
        """
        to = PageList("to")
        new_pages: dict[int, Page] = {}
        for _ in range(len(self.from_)):
            newpage = self.new_page()
            list_add_tail(newpage, to)
            new_pages[newpage.pfn] = newpage
        moved = PageList("moved")
        failed = PageList("failed")
        before = {page.pfn: self.oracle.snapshot(page) for page in self.from_}
        io_before = self.oracle.io(self.kernel)
        stats = MigrateStats()
        run = EngineRun([], [], to, moved, failed, stats, before, new_pages, io_before)
        for round_ in range(max(rounds, 1)):
            if round_ and not self.from_:
                break
            if round_:
                self.kernel.sched.run_for(settle_ticks)
            nr_failed = len(failed)
            run.rcs.append(migrate_pages(self.from_, to, moved, failed, stats=stats))
            run.calls.append((len(failed) - nr_failed, len(self.from_)))
        return run

    def settle(self, run: EngineRun | None = None) -> None:
        """Let go of everything: holds released, pages put back, spare new pages freed, I/O done."""
        for prepared in self.prepared:
            for held in list(prepared.holds):
                for task in self.kernel.tasks:
                    if held in task.holds:
                        release(task, held)
            prepared.holds.clear()
        self.kernel.run_until_idle()
        if run is not None:
            putback_lru_pages(run.moved)
            putback_lru_pages(run.failed)
            for page in list(run.to):
                list_del(page)
                put_page(page)
        putback_lru_pages(self.from_)
        self.kernel.run_until_idle()


def expected_hook_outcome(subject: Subject, spec: PageSpec) -> str:
    """What ``migratepage`` must do with such a page: ``moved``, ``eagain`` or ``refused``.

    Derived from KERNEL-SPEC §5.1-3 and §7: a page with a reference nobody
    accounts for, without a mapping, or mapped in a ``VM_LOCKED`` area
    cannot move now (``-EAGAIN``); a refusing table refuses everything.
    """
    if subject.has("refuses"):
        return "refused"
    if spec.pinned or spec.mlocked or spec.truncated:
        return "eagain"
    return "moved"


def expected_engine_outcome(subject: Subject, spec: PageSpec) -> str:
    """Where ``migrate_pages`` must leave such a page: ``moved``, ``failed`` or ``from``.

    Derived from KERNEL-SPEC §3: a refusing table's pages fail for good; a
    pinned page, or one in a ``VM_LOCKED`` area, gets ``-EAGAIN`` in every
    pass.  Without ``migratepage`` the fallback's ``pageout`` keeps a dirty
    page that is mapped (``page_count - PagePrivate != 2``) or that the table
    cannot write (no ``writepage``), so that page stays too.
    """
    if subject.has("refuses"):
        return "failed"
    if spec.pinned or spec.mlocked:
        return "from"
    if (
        subject.has("no_migratepage")
        and spec.dirty
        and not spec.writeback
        and (spec.mapped or subject.table.writepage is None)
    ):
        return "from"
    return "moved"


def infer_capabilities(subject: Subject) -> frozenset[str]:
    """The capabilities a subject shows when probed on a small machine.

    ``no_migratepage`` and ``no_page_cache`` come from the table and the
    type; ``buffers`` from whether a cached page carries buffer heads;
    ``refuses`` from what ``migratepage`` does with a clean page;
    ``writeback`` from whether a dirty page can be put under writeback.
    ``swap_cache`` cannot be observed: it is kept as declared.
    """
    found = set(subject.capabilities & {"swap_cache"})
    table = subject.table
    if table.migratepage is None:
        found.add("no_migratepage")
    if not subject.fstype.has_page_cache(subject.mode):
        found.add("no_page_cache")
        return frozenset(found)
    probe = attrs.evolve(subject, capabilities=frozenset(found | {"writeback"}))
    world = World(probe)
    prepared = world.make_page(PageSpec())
    if prepared.page.flags & PG.private:
        found.add("buffers")
    if table.migratepage is not None:
        rc = world.call_migratepage(prepared).rc
        if type(rc) is int and rc < 0 and rc != -EAGAIN:
            found.add("refuses")
    if table.writepage is not None:
        try:
            world.make_page(PageSpec(writeback=True, seed=1))
        except FsaopsError:
            pass
        else:
            found.add("writeback")
    return frozenset(found)
