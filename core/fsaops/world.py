"""The one builder of a machine in a given state.

Everything that needs a machine with pages in it builds it here: ``fsaops
migrate`` (:mod:`fsaops.scenario`), the benchmark (:mod:`fsaops.bench`), the
testing kit's fixtures and conformance suite (:mod:`fsaops.testing`), and
the project's own tests.  A :class:`World` owns one
:class:`~fsaops.kernel.Kernel`, its :class:`~fsaops.content.Contents` (the
one content generator) and an :class:`~fsaops.oracle.Oracle` (the one
checker), and remembers every file and every area of anonymous memory it
wrote, with the generation each page must read back.

Every state is reached through the model's own paths, never by writing a
field those paths could not produce: files are written with ``write(2)``
(:func:`~fsaops.fs.generic_file_write`) or put on their device and read in
through the table's ``readpage``, dirtied by a rewrite or a store through a
shared mapping, put under writeback by the table's ``writepage``, mapped by
page faults, pinned and locked by other tasks' holds, and isolated with
``isolate_lru_page``.

Large worlds are built and checked in bulk, where the kernel's semantics do
not need a step per page: :meth:`World.load_file` puts a whole file's data
on its device in runs of blocks before reading each page in,
:meth:`World.expected_range` generates a run of pages in one go, and
:meth:`World.read_range` reads one back with one ``read(2)``, so that a
run is compared in one comparison and only a run that differs is looked at
page by page.

:class:`PageSpec` is the page-level building block: :meth:`World.make_page`
builds one page in the state a spec describes, on a mount or as anonymous
memory.  :meth:`World.migrate` runs ``migrate_pages`` over isolated pages and
has the oracle judge the outcome (:class:`EngineRun`).
"""

from __future__ import annotations

import contextlib
import mmap
from typing import TYPE_CHECKING, Any, Final, TypeVar

import attrs

from fsaops.aops import MAX_ERRNO, returned
from fsaops.buffer import (
    BH,
    BufferHead,
    buffers,
    create_empty_buffers,
    generic_get_block,
    sync_dirty_buffer,
)
from fsaops.content import Contents
from fsaops.debug import check_kernel
from fsaops.errors import FsaopsError, shown
from fsaops.fs import (
    BlockDevice,
    file_read,
    generic_file_read,
    generic_file_write,
    read_cache_page,
)
from fsaops.gfp import GFP_KERNEL
from fsaops.kernel import Kernel
from fsaops.lists import PageList, list_add_tail, list_del
from fsaops.lru import isolate_lru_page, lru_cache_add, mark_page_accessed, putback_lru_pages
from fsaops.mapping import (
    add_to_page_cache,
    find_get_page,
    grab_cache_page,
    remove_from_page_cache,
    truncate_inode_pages,
    try_to_release_page,
)
from fsaops.memory import POISON_BYTE
from fsaops.migrate import MigrateStats, errno_name, migrate_pages
from fsaops.oracle import IoCounters, Oracle, PageState
from fsaops.page import (
    PG,
    Page,
    get_page,
    lock_page,
    page_address,
    put_page,
    trylock_page,
    unlock_page,
)
from fsaops.rmap import SWAP_SUCCESS, try_to_unmap
from fsaops.sched import Hold, Task, hold, release
from fsaops.semantics import DEFAULT_SEMANTICS
from fsaops.swap import add_to_swap
from fsaops.writeback import (
    WRITEPAGE_ACTIVATE,
    WritebackControl,
    clear_page_dirty_for_io,
    set_page_dirty,
)

if TYPE_CHECKING:
    from collections.abc import Iterable

    from fsaops.aops import AddressSpaceOperations, FileSystemType
    from fsaops.backing import Committer
    from fsaops.fault_inject import FaultInjector
    from fsaops.fs import Inode, SuperBlock
    from fsaops.memory import Node
    from fsaops.plugins import Registry
    from fsaops.rmap import Mm, Vma
    from fsaops.semantics import Semantics
    from fsaops.swap import SwapInfo
    from fsaops.typing import EngineLog

__all__ = [
    "SPARSE_FROM",
    "Area",
    "EngineRun",
    "File",
    "PageSpec",
    "PreparedPage",
    "SetupError",
    "World",
    "tail_bytes",
]


class SetupError(FsaopsError):
    """The state asked for cannot be built; the message says why."""


_Data = TypeVar("_Data", bytes, bytearray)
"""Page data as the content generator makes it (a run) or a single page (``bytes``)."""

_LEFT_OVER: Final = b"\xa5\x5a" * 8
"""What a page :meth:`World.new_page` hands out holds before a migration copies into it."""

_RUN_PAGES = 256
"""Pages generated, written or compared in one go (1 MiB of 4 KiB pages): runs of
this size are large enough to cost little per page and small enough to reuse
the same memory run after run."""

_MADV_POPULATE_WRITE = 23
"""Linux's ``madvise`` advice to fault a range in, writable, in one call (5.14 and later)."""

_can_commit = [hasattr(mmap.mmap, "madvise")]


def _free_head_runs(node: Node, npages: int) -> list[tuple[int, int]]:
    """The first ``npages`` frames of ``node``'s free list, as (byte offset, length) runs.

    Frames are sorted and consecutive ones joined, so each run is one request.
    """
    free_list = node.free_area
    pfns: list[int] = []
    want = max(0, min(npages, node.nr_free))
    entry: Any = free_list.lru_next
    for _ in range(want):
        if entry is free_list:
            # The frames not made yet come next, in frame order.
            first = node.start_pfn + len(node.frames_made)
            pfns.extend(range(first, first + min(want - len(pfns), node.unmade)))
            break
        pfns.append(entry.pfn)
        entry = entry.lru_next
    pfns.sort()
    shift = node.page_shift
    base = node.start_pfn
    runs: list[tuple[int, int]] = []
    i = 0
    while i < len(pfns):
        j = i + 1
        while j < len(pfns) and pfns[j] == pfns[j - 1] + 1:
            j += 1
        runs.append(((pfns[i] - base) << shift, (j - i) << shift))
        i = j
    return runs


def _not_read_in(page: Page | None) -> str:
    """How a page a read left behind differs from one read in: clean, up to date, on the LRU."""
    if page is None:
        return "out of the page cache"
    flags = page.flags
    for bit, state in (
        (PG.dirty, "dirty"),
        (PG.writeback, "under writeback"),
        (PG.locked, "locked"),
    ):
        if flags & bit:
            return state
    if not flags & PG.uptodate:
        return "not up to date"
    return "off the LRU"


def _release(mem: memoryview, start: int, length: int) -> None:
    """Hand ``length`` bytes of ``mem`` from ``start`` back to the operating system.

    The system's pages inside the range read as zeroes afterwards and are
    committed again when next written; a part of one at either end is kept.
    A hint only, as :func:`_commit`: where the system cannot take it,
    nothing happens.
    """
    owner = mem.obj
    if not isinstance(owner, mmap.mmap) or length <= 0 or not hasattr(owner, "madvise"):
        return
    # Only the system's pages the range covers whole: a frame smaller than the
    # system's page shares it with its neighbours, which may still hold data
    # (MADV_DONTNEED would zero the whole page, theirs too).
    end = (start + length) // mmap.PAGESIZE * mmap.PAGESIZE
    start = -(-start // mmap.PAGESIZE) * mmap.PAGESIZE
    if end <= start:
        return
    with contextlib.suppress(OSError, ValueError, AttributeError):
        owner.madvise(mmap.MADV_DONTNEED, start, end - start)


def _commit(mem: memoryview, start: int, length: int) -> None:
    """Have the operating system commit ``length`` bytes of ``mem`` from ``start`` now.

    ``mem`` is a node's or a device's memory map, which the system commits
    a page at a time as it is first touched; committing a range about to be
    written in one request costs less than a page fault for each page.  A
    hint only: nothing the model can see changes, and where the system
    cannot take it, nothing happens.
    """
    owner = mem.obj
    if not _can_commit[0] or not isinstance(owner, mmap.mmap) or length <= 0:
        return
    align = start % mmap.PAGESIZE
    start -= align
    length = min(length + align, len(mem) - start)
    try:
        owner.madvise(_MADV_POPULATE_WRITE, start, length)
    except (OSError, ValueError):
        _can_commit[0] = False  # an older kernel, or another system


# -- what the world wrote ------------------------------------------------------------


@attrs.define(eq=False)
class File:
    """A file the world wrote (or a mount's buffer-cache mapping), and what it must read back.

    Attributes:
        owner: its owner number in the content generator.
        key: its name in page names (``mount0/file1``).
        label: how reports name it (``mount[0] (ext2 default) file 1``).
        inode: the file.
        npages: pages of data.
        page_cache: whether its pages live in the page cache (not for
            execute-in-place mounts).
        meta: whether it is a buffer-cache mapping filled by the
            filesystem's own metadata code, not by ``write(2)``.
        gens: the generation each page must read back.
        size: the file's size in bytes when it ends inside its last page
            (``None``: ``npages`` whole pages); past it a page reads zeroes.
        on_disk: whether its data is on its blocks: the world put it there
            (:meth:`World.load_file`, or a buffer cache its filesystem reads
            in), or its table wrote it back when the world was built (a
            scenario's settling).  The file has a disk, and a page sync
            leaves dirty is one sync skipped, whatever its table's
            ``writepage`` says when asked.
    """

    owner: int
    key: str
    label: str
    inode: Inode
    npages: int = 0
    page_cache: bool = True
    meta: bool = False
    gens: list[int] = attrs.field(factory=list)
    size: int | None = None
    on_disk: bool = False

    def page_key(self, index: int) -> str:
        """The name of page ``index`` (``mount0/file1/page7``)."""
        return f"{self.key}/page{index}"

    def describe(self, index: int) -> str:
        """How reports name page ``index``: ``mount[0] (ext2 default) file 1 page 7 (...)``."""
        return f"{self.label} page {index} ({self.page_key(index)})"


@attrs.define(eq=False)
class Area:
    """Anonymous memory the world wrote: one area of one process.

    Attributes:
        owner: its owner number in the content generator (one per process).
        key: the process's name in page names (``process0``).
        mm: the process.
        vma: the area.
        first: the process's page number of the area's first page (pages
            of one process are numbered across its areas).
        npages: pages in the area.
        locked: whether the area is ``VM_LOCKED``.
        gens: the generation each page must read back.
    """

    owner: int
    key: str
    mm: Mm
    vma: Vma
    first: int
    npages: int
    locked: bool
    gens: list[int] = attrs.field(factory=list)

    @property
    def start(self) -> int:
        """The virtual page number of the area's first page."""
        return self.vma.vm_start

    def page_key(self, index: int) -> str:
        """The name of page ``index`` of the area (``process0/anon12``)."""
        return f"{self.key}/anon{self.first + index}"

    def describe(self, index: int) -> str:
        """How reports name page ``index``: ``process0 page 12 (process0/anon12)``."""
        return f"{self.mm.name} page {self.first + index} ({self.page_key(index)})"


# -- the page-level building block ---------------------------------------------------------

_NAMED_STATES = (
    "clean",
    "dirty",
    "writeback",
    "mapped",
    "pte_dirty",
    "mlocked",
    "shared",
    "pinned",
    "locked",
    "buffer_locked",
)

_TRUE_STATES = ("dirty", "writeback", "mapped", "pte_dirty", "mlocked", "shared", "truncated")
"""The state names that set the :class:`PageSpec` field of the same name."""


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
        pte_dirty: that process wrote the page through its mapping, so the
            newest data is in the frame and only the pte's dirty bit knows
            (``PG_dirty`` stays clear until ``try_to_unmap`` moves the bit
            to the page); implies ``mapped``.
        mlocked: that process's area is ``VM_LOCKED`` (implies ``mapped``).
        shared: a second process maps the page too and has read it, so it
            has two ptes (implies ``mapped``; a page of a file only).
        pinned: extra references another task holds and never drops.
        pinned_for: another task holds one reference for this many ticks,
            then lets go (0: none): ``migratepage`` refuses the page at
            first (``-EAGAIN``) and moves it on a later pass.
        locked_for: another task holds the page lock for this many ticks
            (0: nobody does).  The engine waits; the hook never sees it.
        buffer_locked_for: another task (``buffer_writer``) holds the lock
            of the page's last buffer for this many ticks (0: nobody does):
            a write of that block in flight, which took the buffer's dirty
            bit and, as it ends, writes the block from the frame it was
            submitted from (:meth:`~fsaops.world.World.lock_buffer`); the page itself is
            unlocked.  ``buffer_migrate_page`` sleeps on it; the page must
            have buffer heads.
        flags: flags ``migrate_page_copy`` carries (``PG.COPIED``), set once
            the page is isolated.
        truncated: the page left its mapping after isolation (no mapping).
        buffers: ``None`` for whatever the table does; ``True`` to attach
            buffer heads if its read path did not; ``False`` to release them.
        clean_head: a dirty page whose first buffer was written out on its
            own (``sync_dirty_buffer``): ``PG_dirty`` with a clean buffer
            and dirty ones, as a write(2) of part of a page leaves it
            (implies ``dirty``; nothing changes for a page of one buffer).
        tail: the file ends inside the page, :func:`tail_bytes` into it:
            the blocks past its end are holes, so their buffers are not
            mapped to disk, and the page past the end reads zeroes.
        partial: the page was not in the page cache when a ``write(2)``
            of its first block came, and the table's ``prepare_write`` read
            nothing else: the page is dirty and not up to date, its first
            buffer dirty and up to date, the others never read (implies
            ``dirty``; a table that reads the rest in, or a page of one
            block, leaves it up to date).  Not mapped (a fault would read it
            in), not under writeback, with its buffers, ``PG_uptodate``
            not among ``flags``.
        sparse: the page's blocks after its first are holes in the file,
            and the process that maps it stored its data there: their
            buffers are up to date and map no block, and the data is only
            in the frame until ``writepage`` gives them blocks (implies
            ``pte_dirty``; a page of one block has no hole).
        out_of_line: the page's blocks do not follow on on the disk: the
            file's blocks were allocated in turn with another file's, so
            each block of the page sits between two of the other's.  A
            table that reads pages from runs of blocks (``mpage_readpage``)
            reads such a page through buffer heads ("confused"), so it
            carries them even in a mode that attaches none to other pages
            (ext2 ``nobh``).  Not ``sparse`` (its blocks are all on disk);
            a page of one block has nothing out of line (building it is a
            :class:`SetupError`).
        last: the file ends where the page does: it is its file's last
            page.  Otherwise the file goes on for a page past it, on disk and
            not read in, as most pages of a file are followed: a table that
            treats a file's last page apart is checked on both.  ``tail`` and
            ``sparse`` imply it.
        index: the page's index in its file.
        seed: varies the page's contents: its data is written in generation
            ``2 * seed`` (and rewritten in the next one when dirty).
        isolated: take the page off the LRU onto the world's ``from`` list,
            as migration callers do.
    """

    dirty: bool = False
    writeback: bool = False
    mapped: bool = False
    pte_dirty: bool = False
    mlocked: bool = False
    shared: bool = False
    pinned: int = attrs.field(default=0, validator=attrs.validators.ge(0))
    pinned_for: int = attrs.field(default=0, validator=attrs.validators.ge(0))
    locked_for: int = attrs.field(default=0, validator=attrs.validators.ge(0))
    buffer_locked_for: int = attrs.field(default=0, validator=attrs.validators.ge(0))
    flags: int = attrs.field(default=0, validator=_check_flags)
    truncated: bool = False
    buffers: bool | None = None
    clean_head: bool = False
    tail: bool = False
    partial: bool = False
    sparse: bool = False
    out_of_line: bool = False
    last: bool = False
    index: int = attrs.field(default=0, validator=attrs.validators.ge(0))
    seed: int = attrs.field(default=0, validator=attrs.validators.ge(0))
    isolated: bool = True

    def __attrs_post_init__(self) -> None:
        # Implications, so that a spec always describes a reachable state.
        if (self.tail or self.sparse) and not self.last:
            object.__setattr__(self, "last", True)
        if self.sparse:
            if self.out_of_line:
                raise ValueError(
                    "a page with holes stored into through its mapping has no blocks to put "
                    "out of line"
                )
            if self.partial or self.tail or self.buffers is False:
                raise ValueError(
                    "a page with holes stored into through its mapping is not written in "
                    "part, at the end of its file, or without buffers"
                )
            object.__setattr__(self, "pte_dirty", True)
        if (self.writeback or self.clean_head) and not self.dirty:
            object.__setattr__(self, "dirty", True)
        if (self.mlocked or self.pte_dirty or self.shared) and not self.mapped:
            object.__setattr__(self, "mapped", True)
        if self.truncated and (
            self.mapped
            or self.writeback
            or self.locked_for
            or self.pinned_for
            or self.buffer_locked_for
        ):
            raise ValueError("a truncated page is not mapped, under writeback or locked")
        if self.buffer_locked_for and self.buffers is False:
            raise ValueError("a page without buffers has no buffer to lock")
        if self.buffer_locked_for and self.writeback:
            raise ValueError(
                "a page under writeback has its buffers locked by its own I/O: no other task "
                "can hold one"
            )
        if self.partial:
            if not self.dirty:
                object.__setattr__(self, "dirty", True)
            if (
                self.mapped
                or self.writeback
                or self.clean_head
                or self.tail
                or self.buffers is False
                or self.flags & PG.uptodate
            ):
                raise ValueError(
                    "a page written in part while not up to date is not mapped, under "
                    "writeback, with its first buffer written out, at the end of its file, "
                    "without buffers or PG_uptodate"
                )

    @classmethod
    def parse(cls, text: str) -> PageSpec:
        """Build a spec from state names joined by ``+``: ``"dirty+mapped+pinned"``.

        Names: ``clean``, ``dirty``, ``writeback``, ``mapped``, ``pte_dirty``
        (written through the mapping), ``mlocked``, ``shared`` (mapped by a
        second process too), ``pinned`` (one
        reference), ``locked`` (by another task for 8 ticks),
        ``buffer_locked`` (its last buffer, for 8 ticks), ``buffers``,
        ``nobuffers``, ``truncated``, ``clean_head`` (dirty, its first buffer
        written out), ``tail`` (the file ends inside it), ``partial``
        (written in part while not up to date), ``sparse`` (holes stored
        into through its mapping), ``out_of_line`` (its blocks do not
        follow on on the disk), ``last`` (its file's last page).
        """
        fields: dict[str, object] = {}
        for raw in text.split("+"):
            name = raw.strip()
            if name == "clean":
                continue
            if name in _TRUE_STATES:
                fields[name] = True
            elif name == "pinned":
                fields["pinned"] = 1
            elif name == "locked":
                fields["locked_for"] = 8
            elif name == "buffer_locked":
                fields["buffer_locked_for"] = 8
            elif name == "buffers":
                fields["buffers"] = True
            elif name == "nobuffers":
                fields["buffers"] = False
            elif name in ("clean_head", "tail", "partial", "sparse", "out_of_line", "last"):
                fields[name] = True
            else:
                known = ", ".join(
                    (
                        *_NAMED_STATES,
                        "buffers",
                        "nobuffers",
                        "truncated",
                        "clean_head",
                        "tail",
                        "partial",
                        "sparse",
                        "out_of_line",
                        "last",
                    )
                )
                raise ValueError(f"unknown page state {name!r} (known: {known})")
        return cls(**fields)  # type: ignore[arg-type]

    def __str__(self) -> str:
        parts = [
            name
            for name in ("dirty", "writeback", "mapped", "pte_dirty", "mlocked", "truncated")
            if getattr(self, name)
        ]
        if self.mlocked or self.pte_dirty:
            parts.remove("mapped")
        if self.shared:
            parts.append("mapped by a second process")
        if self.writeback:
            parts.remove("dirty")
        if self.pinned:
            parts.append(f"pinned x{self.pinned}")
        if self.pinned_for:
            parts.append(f"pinned by another task for {self.pinned_for} ticks")
        if self.locked_for:
            parts.append(f"locked by another task for {self.locked_for} ticks")
        if self.buffer_locked_for:
            parts.append(f"a buffer locked by another task for {self.buffer_locked_for} ticks")
        if self.buffers is not None:
            parts.append("buffers" if self.buffers else "no buffers")
        if self.clean_head:
            parts.append("first buffer clean")
        if self.tail:
            parts.append("the file ends inside it")
        if self.partial:
            parts.append("written in part, not up to date")
        if self.sparse:
            parts.append("holes stored into")
        if self.out_of_line:
            parts.append("blocks out of line")
        if self.flags:
            parts.append(f"flags {Oracle.flag_names(self.flags)}")
        return "+".join(parts) or "clean"


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
        sharer: the second process that maps a ``shared`` page (else ``None``).
        sharer_addr: the page's byte address in ``sharer``.
        holds: what other tasks hold on it.
        frame: what its frame holds, where that is not ``data``: a page
            written in part while not up to date holds left-over bytes where
            no block was read (``None``: ``data``).
    """

    page: Page
    spec: PageSpec
    data: bytes
    inode: Inode | None = None
    mm: Mm | None = None
    vma: Vma | None = None
    addr: int = 0
    sharer: Mm | None = None
    sharer_addr: int = 0
    holds: list[Hold] = attrs.field(factory=list)
    frame: bytes | None = None

    @property
    def in_frame(self) -> bytes:
        """The bytes its frame must hold, wherever it ends up (``frame``, else ``data``)."""
        return self.data if self.frame is None else self.frame

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
        size = len(self.data)
        data = generic_file_read(self.inode, self.spec.index * size, size)
        # A file that ends inside the page reads short: past its end, zeroes.
        return data.ljust(size, b"\0") if self.spec.tail else data


@attrs.define(eq=False)
class EngineRun:
    """The outcome of :meth:`~fsaops.world.World.migrate`.

    Attributes:
        rcs: what each ``migrate_pages`` call returned.
        calls: for each call, (pages put on ``failed`` by it, pages left on
            ``from`` after it).
        from_: the pages still to migrate (the world's ``from`` list).
        to: the new pages not used.
        moved: old pages that moved (or were freed under us).
        failed: old pages that failed for good.
        stats: per-table outcomes.
        before: each old page's state before the first call, by pfn.
        new_pages: the new pages offered, by pfn.
        io_before: the write counters before the first call.
        problems: what the oracle found wrong with the outcome, and the
            invariant checker with the machine, right after the last call.
    """

    rcs: list[int]
    calls: list[tuple[int, int]]
    from_: PageList
    to: PageList
    moved: PageList
    failed: PageList
    stats: MigrateStats
    before: dict[int, PageState]
    new_pages: dict[int, Page]
    io_before: IoCounters
    problems: list[str] = attrs.field(factory=list)

    @property
    def rc(self) -> int:
        """What the last ``migrate_pages`` call returned."""
        return self.rcs[-1]

    def where(self, page: Page) -> str:
        """``moved``, ``failed``, ``from``, or a sentence saying what is wrong."""
        found = [
            name
            for name, pl in (("from", self.from_), ("moved", self.moved), ("failed", self.failed))
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


# -- the world -------------------------------------------------------------------------


class World:
    """One deterministic machine, and everything written into it.

    Args:
        registry: the loaded plugins, to mount filesystems by name.
        nodes: NUMA nodes.
        node_pages: page frames per node.
        page_size: bytes per page.
        migration: ``CONFIG_MIGRATION``.
        io_latency: ticks from submitting a write to its completion.
        debug_vm: ``CONFIG_DEBUG_VM`` (the engine checks every page).
        strict: the engine looks for findings around every ``migratepage``.
        faults: fault injection, or ``None``.
        seed: seeds the kernel's generator and the content generator.
        log: the engine's logger, or ``None``.
        swap_slots: slots of a swap device to turn on (its table from the
            registry's ``swap`` filesystem); 0 for none.
        semantics: the release of the migration code the kernel runs
            (``"v4"``, ``"2.6.16"``, ``"2.6.17"``; see :mod:`fsaops.semantics`).
        commit_interval: ticks between a journal's commits (ext3's
            ``commit=``); ``None`` for each journal's own default.

    Attributes:
        kernel: the machine.
        contents: the content generator every page's data comes from.
        oracle: the checker that judges what a migration did.
        files: every file the world wrote, with what each page must read back.
        areas: every area of anonymous memory it wrote.
        from_: the pages isolated for migration (``migrate_pages``' ``from``).
        prepared: the pages :meth:`make_page` built.
    """

    def __init__(
        self,
        *,
        registry: Registry | None = None,
        nodes: int = 2,
        node_pages: int = 64,
        page_size: int = 4096,
        migration: bool = True,
        io_latency: int = 4,
        debug_vm: bool = False,
        strict: bool = False,
        faults: FaultInjector | None = None,
        seed: int = 0,
        log: EngineLog | None = None,
        swap_slots: int = 0,
        semantics: str | Semantics = DEFAULT_SEMANTICS,
        commit_interval: int | None = None,
    ) -> None:
        self.seed = seed
        self.kernel = Kernel(
            nodes=nodes,
            node_pages=node_pages,
            page_size=page_size,
            migration=migration,
            registry=registry,
            log=log,
            debug_vm=debug_vm,
            strict=strict,
            io_latency=io_latency,
            faults=faults,
            seed=seed,
            semantics=semantics,
            commit_interval=commit_interval,
        )
        self.page_size = page_size
        self.contents = Contents(seed, page_size)
        self.oracle = Oracle()
        self.files: list[File] = []
        self.areas: list[Area] = []
        self.from_ = PageList("from")
        self.prepared: list[PreparedPage] = []
        self._owners: dict[str, int] = {}
        self._by_inode: dict[int, File] = {}
        self._helpers: dict[str, Task] = {}
        self._reading = _Reading()
        #: While set, a builder has queued the frames it is about to fill to be
        #: committed by this :class:`~fsaops.backing.Committer`'s thread: reading
        #: a file in (:meth:`load_file`) then commits none of its own.
        self.committer: Committer | None = None
        if swap_slots:
            self.swapon(swap_slots)

    def __repr__(self) -> str:
        return f"<World seed={self.seed} {self.kernel!r}>"

    # -- the machine -------------------------------------------------------------

    @property
    def target_nid(self) -> int:
        """The node new pages are allocated on by default (the last one)."""
        return len(self.kernel.nodes) - 1

    def swapon(
        self, slots: int, fstype: FileSystemType | None = None, mode: str | None = None
    ) -> SwapInfo:
        """Turn on a swap device of ``slots`` pages (table: ``fstype``, else the registry's)."""
        return self.kernel.swapon(slots, swap_type=fstype, mode=mode)

    def mount(
        self,
        fs: str | FileSystemType,
        mode: str | None = None,
        *,
        block_size: int | None = None,
        nr_blocks: int | None = None,
        name: str | None = None,
    ) -> SuperBlock:
        """Mount a filesystem (see :meth:`~fsaops.kernel.Kernel.mount`)."""
        return self.kernel.mount(fs, mode, block_size=block_size, nr_blocks=nr_blocks, name=name)

    def process(self, name: str = "") -> Mm:
        """Start a process (an address space and its task)."""
        return self.kernel.new_mm(name=name)

    def helper(self, name: str) -> Task:
        """Another task of the machine, created on first use (``pinner``, ``locker``, ...)."""
        task = self._helpers.get(name)
        if task is None:
            task = self._helpers[name] = self.kernel.new_task(name)
        return task

    # -- contents ---------------------------------------------------------------------

    def owner(self, key: str) -> int:
        """The owner number of ``key`` (a file or a process) in the content generator."""
        number = self._owners.get(key)
        if number is None:
            number = self._owners[key] = len(self._owners) + 1
        return number

    def owner_key(self, owner: int) -> str | None:
        """The key of owner number ``owner``, or ``None``."""
        for key, number in self._owners.items():
            if number == owner:
                return key
        return None

    def expected(self, record: File | Area, index: int) -> bytes:
        """The bytes page ``index`` of a file or area must read back."""
        data = self.contents.page(record.owner, _content_index(record, index), record.gens[index])
        if isinstance(record, File) and record.size is not None:
            return self._cut_at_eof(record, index, data)
        return data

    def _cut_at_eof(self, record: File, first: int, data: _Data) -> _Data:
        """``data``, pages ``first`` on of a file, with zeroes past the file's end."""
        assert record.size is not None
        return _cut_at(record.size - first * self.page_size, data)

    def matches(self, record: File | Area, first: int, count: int, data: bytes | bytearray) -> bool:
        """Whether ``data`` is exactly what pages ``first`` to ``first + count - 1`` must read back.

        The pages are generated as one run (:meth:`~fsaops.content.Contents.versions`) and
        compared with ``data`` in one comparison.
        """
        if len(data) != count * self.page_size:
            return False
        if isinstance(record, File) and record.size is not None:
            return data == self.expected_range(record, first, count)
        gens = record.gens[first : first + count]
        if len(gens) != count:
            raise IndexError(f"{record.key} has {len(record.gens)} pages, not {first + count}")
        return data == self.contents.versions(record.owner, gens, _content_index(record, first))

    def expected_range(self, record: File | Area, first: int, count: int) -> bytes | bytearray:
        """The bytes pages ``first`` to ``first + count - 1`` of a file or area must read back."""
        gens = record.gens[first : first + count]
        if len(gens) != count:
            raise IndexError(f"{record.key} has {len(record.gens)} pages, not {first + count}")
        data = self.contents.versions(record.owner, gens, _content_index(record, first))
        if isinstance(record, File) and record.size is not None:
            return self._cut_at_eof(record, first, data)
        return data

    def disk_holds(self, record: File, first: int, count: int) -> bool:
        """Whether the disk is known to hold the data written last of pages ``first`` on.

        Told without making the bytes of blocks that still hold what
        :meth:`load_file` put there: those hold a page's data written last
        if the page is still in the generation it had then; every block
        written since is compared with the data.  ``False`` means it could
        not be told this way (the pages' blocks do not follow on, or are
        not all from one :meth:`load_file`), or the disk does not hold the
        data: the caller reads the blocks and compares them.
        """
        inode = record.inode
        bdev = inode.i_sb.s_bdev
        per_page = self.page_size // bdev.block_size
        lo = first * per_page
        nblocks = count * per_page
        blocks = inode.blocks
        if count <= 0 or lo + nblocks > len(blocks):
            return False
        start = blocks[lo]
        if not start or blocks[lo : lo + nblocks] != [*range(start, start + nblocks)]:
            return False
        known = bdev.known(start, nblocks)
        if known is None:
            return False
        on_disk, offset, still = known
        if not isinstance(on_disk, OnDisk):
            return False
        base = first - on_disk.first
        if base < 0 or on_disk.record is not record or on_disk.iblock + offset != lo:
            return False
        then = on_disk.gens[base : base + count]
        now = record.gens[first : first + count]
        if len(then) != count:
            return False
        if list(then) != now:
            # A page rewritten since must have had every block written again.
            rewritten = [k for k, (a, b) in enumerate(zip(then, now, strict=True)) if a != b]
            for k in rewritten:
                if still.find(1, k * per_page, (k + 1) * per_page) >= 0:
                    return False
        if still.find(0) < 0:
            return True  # nothing was written since, and no page was rewritten
        return bdev.written_match(start, self.expected_range(record, first, count))

    def diagnose(self, data: bytes, record: File | Area, index: int) -> str | None:
        """Why ``data`` is not what page ``index`` of ``record`` must read back (``None`` if it is).

        ``lost: ...`` when the newest data is gone (an older generation,
        zeroes, nothing to read, or a file page whose blocks hold, block by
        block, its newest data and older generations of it, or zeroes: a
        dirty buffer that was never written), ``corrupted: ...`` for
        anything else.
        """
        gen = record.gens[index]
        cindex = _content_index(record, index)
        if data == self.expected(record, index):
            return None
        stamp = self.contents.identify(data)
        if stamp is not None and stamp.this_seed:
            if (stamp.owner, stamp.index) == (record.owner, cindex) and stamp.gen < gen:
                older = self.contents.page(record.owner, cindex, stamp.gen)
                if isinstance(record, File) and record.size is not None:
                    older = self._cut_at_eof(record, index, older)
                if data == older:
                    return f"lost: reads back generation {stamp.gen}, expected {gen}"
            elif (stamp.owner, stamp.index) != (record.owner, cindex):
                key = self.owner_key(stamp.owner) or f"owner {stamp.owner}"
                unit = "anon" if isinstance(record, Area) and key == record.key else "page"
                return (
                    f"corrupted: holds the data of {key}/{unit}{stamp.index} "
                    f"(generation {stamp.gen})"
                )
        if not any(data):
            return "lost: reads back zeroes"
        if isinstance(record, File):
            mixed = self._generations_by_block(data, record, index)
            if mixed is not None:
                return f"lost: reads back {mixed}, expected {gen}"
            poisoned = self._poisoned_blocks(data, record)
            if poisoned is not None:
                return (
                    f"corrupted: reads back poison, what a freed frame holds, in {poisoned} "
                    "(a write that read its frame after the frame was freed: I/O in flight on "
                    "a buffer moved or left behind without its lock)"
                )
        return "corrupted: reads back other bytes"

    def _poisoned_blocks(self, data: bytes, record: File) -> str | None:
        """The blocks of ``data`` that hold nothing but poison (``block 2``), else ``None``."""
        bs = record.inode.i_sb.s_bdev.block_size
        if len(data) != self.page_size or bs > self.page_size:
            return None
        poison = bytes([POISON_BYTE]) * bs
        blocks = [k for k in range(self.page_size // bs) if data[k * bs : (k + 1) * bs] == poison]
        return _block_runs(blocks) if blocks else None

    def _generations_by_block(self, data: bytes, record: File, index: int) -> str | None:
        """Which generation of page ``index`` each block of ``data`` holds, as words.

        A page written back in part (a dirty buffer whose write never
        came) reads back, block by block, its newest data and an older
        generation of the same page, or zeroes where a block was never
        written.  Returns ``generation 0 in block 3 and generation 1 in
        blocks 0-2``, or ``None`` when a block holds anything else (damaged,
        or another page's data) or the page is one block.
        """
        bs = record.inode.i_sb.s_bdev.block_size
        per_page = self.page_size // bs
        if per_page < 2 or len(data) != self.page_size:
            return None
        gen = record.gens[index]
        cindex = _content_index(record, index)
        held: list[int | None] = [None] * per_page
        for version in range(gen, -1, -1):
            want = self.contents.page(record.owner, cindex, version)
            if record.size is not None:
                want = self._cut_at_eof(record, index, want)
            for k in range(per_page):
                if held[k] is None and data[k * bs : (k + 1) * bs] == want[k * bs : (k + 1) * bs]:
                    held[k] = version
            if None not in held:
                break
        for k in range(per_page):
            if held[k] is None and not any(data[k * bs : (k + 1) * bs]):
                held[k] = -1  # never written
        if None in held or held == [gen] * per_page:
            return None
        parts = []
        for version in sorted({v for v in held if v is not None}):
            blocks = [k for k, v in enumerate(held) if v == version]
            what = "zeroes" if version < 0 else f"generation {version}"
            parts.append(f"{what} in {_block_runs(blocks)}")
        return ", ".join(parts[:-1]) + " and " + parts[-1] if len(parts) > 1 else parts[0]

    # -- files ---------------------------------------------------------------------------

    def create_file(
        self,
        sb: SuperBlock,
        *,
        key: str | None = None,
        label: str | None = None,
        name: str | None = None,
    ) -> File:
        """Create an empty file on ``sb`` and remember it.

        ``name`` is the inode's name, the one messages about its page tree
        and its blocks give it (the invariants, a page's mapping); by
        default the filesystem's own, ``mount0/file1`` by inode number.  A
        builder whose reports name its files by ``key`` passes that.
        """
        inode = sb.new_inode(name or "")
        key = key or f"{sb.name}/file{inode.i_ino}"
        fstype, mode = sb.s_type, sb.mode
        record = File(
            owner=self.owner(key),
            key=key,
            label=label or key,
            inode=inode,
            page_cache=fstype.has_page_cache(mode),
            meta=fstype.is_buffer_cache(mode),
        )
        self.files.append(record)
        self._by_inode[id(inode)] = record
        return record

    def record_of(self, inode: Inode) -> File:
        """The world's record of a file it created."""
        return self._by_inode[id(inode)]

    def write_file(self, record: File, npages: int, *, gen: int = 0) -> None:
        """Give the file ``npages`` more pages of data with ``write(2)``; they end dirty, cached.

        A buffer-cache mapping is filled by :meth:`fill_buffer_cache` instead.
        """
        if record.meta:
            self.fill_buffer_cache(record, npages)
            return
        first = record.npages
        record.npages = first + npages
        record.gens.extend([gen] * npages)
        if npages:
            data = self.contents.pages(record.owner, first, npages, gen)
            generic_file_write(record.inode, first * self.page_size, data)

    def load_file(
        self, record: File, npages: int, *, nid: int | None = None, tail: bool = False
    ) -> None:
        """Give the file ``npages`` more pages of data that is on disk, read into the page cache.

        The data is put on the file's blocks first, as known contents
        (:meth:`~fsaops.fs.BlockDevice.put_known`: the device makes it when
        it is read), and each page is then read in as ``read(2)`` of the file
        reads it (readahead's ``add_to_page_cache_lru`` and the table's
        ``readpage``, then ``mark_page_accessed``): the pages are up to
        date, clean, referenced and on the inactive LRU list of node ``nid``
        (default: the kernel's allocation node).  A file that executes in
        place only gets its blocks, as ``write(2)`` to it does; a
        buffer-cache mapping is filled by :meth:`fill_buffer_cache`.  With
        ``tail`` the file ends inside its last page, :func:`tail_bytes` into
        it: the blocks past the end are holes, the page reads zeroes there,
        and the file takes no more pages.

        Raises:
            SetupError: the table cannot read pages in (no ``readpage``), a
                read failed, a page is already cached, node ``nid`` is full,
                or the file already ends inside its last page.
        """
        if record.meta:
            self.fill_buffer_cache(record, npages, nid)
            return
        inode = record.inode
        table = inode.i_mapping.a_ops
        if record.page_cache and table.readpage is None:
            raise SetupError(f"{table.name} has no readpage to read {record.label} in")
        if record.size is not None:
            raise SetupError(f"{record.label} ends inside its last page: it takes no more")
        first = record.npages
        record.npages = first + npages
        record.gens.extend([0] * npages)
        if not npages:
            return
        ps = self.page_size
        size = (first + npages) * ps
        if tail:
            size -= ps - tail_bytes(ps)
            record.size = size
        inode.reserve(size)
        self._put_on_disk(record, first, npages)
        record.on_disk = True
        if record.page_cache:
            self._read_in(record, first, npages, self.kernel.alloc_nid if nid is None else nid)

    def _put_on_disk(self, record: File, first: int, npages: int) -> None:
        """Put pages ``first`` on of a file's data on its blocks, as known contents.

        Each run of the file's blocks that follow on on the device gets the
        data as :meth:`~fsaops.fs.BlockDevice.put_known` contents: the
        device makes the bytes from the content generator whenever they are
        read, until a write replaces them, so the data is not written (nor
        the memory under it committed) up front.
        """
        inode = record.inode
        bdev = inode.i_sb.s_bdev
        bs = bdev.block_size
        per_page = self.page_size // bs
        blocks = inode.blocks
        gens = tuple(record.gens[first : first + npages])
        lo = first * per_page
        hi = min(lo + npages * per_page, len(blocks))  # a file that ends inside a page: fewer
        run = lo
        while run < hi:
            end = run + 1
            while end < hi and blocks[end] == blocks[end - 1] + 1:
                end += 1
            on_disk = OnDisk(self.contents, record, first, gens, run, self._reading)
            bdev.put_known(blocks[run], end - run, on_disk.fill, on_disk)
            run = end

    def _read_in(self, record: File, first: int, npages: int, nid: int) -> None:
        """Read pages ``first`` on of a file into the page cache, as ``read(2)`` of them does.

        Readahead's steps (``read_pages``: the table's ``readpages`` for a
        run of new pages, or ``add_to_page_cache_lru`` and ``readpage`` for
        each), waiting for the read, then ``mark_page_accessed`` as the read
        uses each page.
        """
        mapping = record.inode.i_mapping
        if self.committer is None:
            self.prefault(nid, npages)
        if mapping.a_ops.readpages is not None:
            for start in range(first, first + npages, _RUN_PAGES):
                self._read_in_run(record, start, min(_RUN_PAGES, first + npages - start), nid)
            return
        readpage = mapping.a_ops.readpage
        assert readpage is not None
        node = self.kernel.nodes[nid]
        alloc = node.alloc_page
        locked = PG.locked
        uptodate = PG.uptodate
        reading = self._reading
        run = pfn0 = 0
        in_line = True  # the run's pages are consecutive frames, in order
        for index in range(first, first + npages):
            if (index - first) % _RUN_PAGES == 0:
                # The next run's data, made once: the device reads it, the check compares it.
                run = index
                reading.start(self, record, run, min(_RUN_PAGES, first + npages - run))
            # page_cache_alloc_cold(), add_to_page_cache_lru(), readpage(),
            # page_cache_release(): read_pages() of the kernel's readahead.
            page = alloc()
            if page is None:
                raise SetupError(f"{record.label}: out of memory on node {nid}")
            if not add_to_page_cache(page, mapping, index):
                put_page(page)
                raise SetupError(f"{record.page_key(index)} is already in the page cache")
            lru_cache_add(page)
            err = returned(mapping.a_ops, "readpage", readpage(page))  # unlocks it when read
            if page.flags & locked:
                lock_page(page)  # wait for the read
                unlock_page(page)
            if err or not page.flags & uptodate:
                put_page(page)
                raise SetupError(
                    f"reading {record.page_key(index)} in failed"
                    + (f" ({err})" if err else ": the page is not up to date")
                )
            if page.flags & (PG.dirty | PG.writeback) or not page.flags & PG.lru:
                raise SetupError(
                    f"reading {record.page_key(index)} in failed: "
                    f"{mapping.a_ops.name}.readpage left it {_not_read_in(page)}"
                )
            mark_page_accessed(page)  # the reader used it, as read(2) notes
            put_page(page)
            if index == run:
                pfn0, in_line = page.pfn - index, True
            elif page.pfn != pfn0 + index:
                in_line = False
            if index + 1 == first + npages or (index + 1 - first) % _RUN_PAGES == 0:
                self._check_read_in(record, run, index + 1 - run, in_line, "readpage")

    def _read_in_run(self, record: File, first: int, count: int, nid: int) -> None:
        """Read ``count`` pages from ``first`` in with one call of the table's ``readpages``."""
        mapping = record.inode.i_mapping
        readpages = mapping.a_ops.readpages
        assert readpages is not None
        for index in range(first, first + count):
            if mapping.lookup(index) is not None:
                raise SetupError(f"{record.page_key(index)} is already in the page cache")
        # __do_page_cache_readahead(): page_cache_alloc_cold() of each, page->index.
        pages = self.kernel.nodes[nid].alloc_pages(count)
        if len(pages) < count:
            for new in pages:
                put_page(new)
            raise SetupError(f"{record.label}: out of memory on node {nid}")
        for index, new in enumerate(pages, first):
            new.index = index
        self._reading.start(self, record, first, count)
        err = readpages(mapping, pages)  # adds, reads and releases them
        member = f"{mapping.a_ops.name}.readpages"
        if type(err) is not int or not -MAX_ERRNO <= err <= 0:
            raise SetupError(
                f"reading {record.page_key(first)} in failed: {member} returned {shown(err)}, "
                "not 0 or a negative errno"
            )
        if err:
            raise SetupError(
                f"reading {record.page_key(first)} in failed ({err}): {member} returned "
                f"{errno_name(err)}"
            )
        tree = mapping.page_tree
        locked = PG.locked
        read_in = PG.uptodate | PG.lru
        unread = PG.dirty | PG.writeback | PG.locked
        referenced = PG.referenced | PG.active
        head = tree[first] if first < len(tree) else None
        pfn0 = 0 if head is None else head.pfn - first
        in_line = True  # the pages are consecutive frames, in order
        for index in range(first, first + count):
            page = tree[index] if index < len(tree) else None
            if page is not None and page.flags & locked:
                lock_page(page)  # wait for the read
                unlock_page(page)
            if page is None or page.flags & unread or page.flags & read_in != read_in:
                raise SetupError(
                    f"reading {record.page_key(index)} in failed: {member} left it "
                    + _not_read_in(page)
                )
            flags = page.flags
            if flags & referenced:
                mark_page_accessed(page)
            else:  # the first use: mark_page_accessed() only notes it
                page.flags = flags | PG.referenced
            if page.pfn != pfn0 + index:
                in_line = False
        self._check_read_in(record, first, count, in_line, "readpages")

    def _check_read_in(
        self, record: File, first: int, count: int, in_line: bool, member: str
    ) -> None:
        """Check that the run of pages just read in holds the data on its blocks.

        A table whose read path does not read its blocks (``simple_readpage``
        zeroes the page) would otherwise start the run with pages that never
        held their data, and the run would blame whatever moved them next.
        The pages are compared with the run's data, made once for the device
        to read (:class:`_Reading`): in one comparison when they are
        consecutive frames (``in_line``), else a page at a time.

        Raises:
            SetupError: a page does not hold its data; the first is named.
        """
        data = self._reading.data
        self._reading.clear()
        tree = record.inode.i_mapping.page_tree
        pages = tree[first : first + count]
        head, tail = pages[0], pages[-1]
        if in_line and head is not None and tail is not None and head.node is tail.node:
            node = head.node
            off = (head.pfn - node.start_pfn) << node.page_shift
            if data.startswith(node.mem[off : off + len(data)]):
                return
        ps = self.page_size
        for k, page in enumerate(pages):
            if page is None or not data.startswith(page_address(page), k * ps):
                self._not_on_blocks(record, first + k, member)

    def _not_on_blocks(self, record: File, index: int, member: str) -> None:
        """Refuse page ``index``: the table's read path left it without the data on its blocks.

        Raises:
            SetupError: always, naming the member and the page.
        """
        page = record.inode.i_mapping.lookup(index)
        held = b"" if page is None else bytes(page_address(page))
        said = self.diagnose(held, record, index)
        detail = said.split(": ", 1)[1] if said else "reads back other bytes"
        table = record.inode.i_mapping.a_ops.name
        raise SetupError(
            f"reading {record.page_key(index)} in failed: {table}.{member} left it without the "
            f"data on its blocks (it {detail})"
        )

    def dirty_range(self, record: File, indexes: Iterable[int], gen: int | None = None) -> None:
        """Store the next (or the given) generation into cached pages of a file and dirty them.

        Each page is written in its frame and dirtied with ``set_page_dirty``
        (through the table's own, if it has one), as a store through a
        shared mapping leaves a page once the mapping goes (``munmap``
        moves the pte's dirty bit to the page).

        Raises:
            SetupError: a page is not in memory.
        """
        mapping = record.inode.i_mapping
        make = self.contents.page
        owner = record.owner
        gens = record.gens
        for index in indexes:
            page = mapping.lookup(index)
            if page is None:
                raise SetupError(f"{record.page_key(index)} is not in memory to dirty")
            gens[index] = now = gens[index] + 1 if gen is None else gen
            if record.size is not None and (index + 1) * self.page_size > record.size:
                page_address(page)[:] = self.expected(record, index)  # zeroes past the end
            else:
                page_address(page)[:] = make(owner, index, now)
            set_page_dirty(page)

    def file(self, sb: SuperBlock, npages: int, *, clean: bool = False) -> Inode:
        """A new file of ``npages`` pages written with ``write(2)``; ``clean``: written back."""
        from fsaops.writeback import filemap_write_and_wait

        record = self.create_file(sb)
        self.write_file(record, npages)
        if clean:
            filemap_write_and_wait(record.inode.i_mapping)
            self.kernel.run_until_idle()
        return record.inode

    def fill_buffer_cache(self, record: File, npages: int, nid: int | None = None) -> None:
        """Put known bytes on the device and have the filesystem read them into its buffer cache.

        A filesystem with ``read_metadata`` (``xfs_buftarg``) reads each page
        as its metadata code would, keeping its own references; otherwise the
        page is created and filled directly.
        """
        inode = record.inode
        sb = inode.i_sb
        read_metadata = sb.s_type.read_metadata
        bs = sb.s_blocksize
        per_page = self.page_size // bs
        first = record.npages
        record.npages = first + npages
        record.gens.extend([0] * npages)
        nid = self.kernel.alloc_nid if nid is None else nid
        for i in range(first, first + npages):
            data = self.contents.page(record.owner, i)
            if read_metadata is not None:
                for b in range(per_page):
                    blocknr = inode.get_block(i * per_page + b, True)
                    sb.s_bdev.write(blocknr, data[b * bs : (b + 1) * bs])
                record.on_disk = True
                read_metadata(inode, i)
                continue
            page = grab_cache_page(inode.i_mapping, i, nid)
            if page is None:
                raise SetupError(f"{record.label}: out of memory on node {nid}")
            self.oracle.write_frame(page, data)
            page.flags |= PG.uptodate
            unlock_page(page)
            put_page(page)
        inode.i_size = record.npages * self.page_size

    def rewrite(self, record: File, index: int, gen: int | None = None) -> Page:
        """Write page ``index`` again with ``write(2)`` in the next (or the given) generation.

        Without ``gen``, the generation is the one after the page's as the
        bytes are copied into the page (``generic_file_write``'s
        ``landing``), so a write that lands after another begun later still
        counts as the newer.  Returns the page that holds it now.
        """
        pos = index * self.page_size
        # A file that ends inside the page is written up to its end, which stays.
        inside = self.page_size if record.size is None else min(record.size - pos, self.page_size)
        if gen is None:

            def landing(_: int) -> bytes:
                number = record.gens[index] + 1
                record.gens[index] = number
                return self.expected(record, index)

            generic_file_write(record.inode, pos, bytes(inside), landing=landing)
        else:
            record.gens[index] = gen
            generic_file_write(record.inode, pos, self.expected(record, index)[:inside])
        page = self.page_of(record, index)
        if page is None:
            raise SetupError(f"{record.page_key(index)} is not in memory after writing it")
        return page

    def write_in_part(self, record: File, index: int, block: int) -> Page:
        """Drop page ``index`` from the page cache, then ``write(2)`` block ``block`` of it alone.

        The page is dropped as reclaim or ``invalidate_mapping_pages`` drops
        a clean, unused page (its buffers freed with
        ``try_to_release_page``, out of the tree, its frame freed).  The
        page's data then moves one generation on: its other blocks are
        written straight to the device, as an ``O_DIRECT`` write of them
        does, and the block itself (up to the end of the file, if it ends
        inside it) with ``write(2)``, which brings a new page in, so the
        block's new bytes are only in memory.  ``prepare_write`` maps and
        reads only what the write touches, so with buffers the page is left
        dirty and not up to date, its other blocks unread, and the rest of
        its frame holds whatever the frame held (a table that reads the rest
        in, as ``nobh_prepare_write`` does, leaves it up to date).  Returns
        the page that holds it now.

        Raises:
            SetupError: the page is not in memory, is dirty, under
                writeback, mapped or held, or its table kept its buffers;
                or the block is not inside the file.
        """
        inode = record.inode
        bs = inode.i_sb.s_blocksize
        ps = self.page_size
        pos = index * ps + block * bs
        if not 0 <= block < ps // bs or pos >= inode.i_size:
            raise SetupError(f"block {block} of {record.page_key(index)} is not inside the file")
        length = min(bs, inode.i_size - pos)  # a block the file ends inside: up to its end
        self._drop(record, index)
        # The page's data, one generation on: its other blocks go straight to the
        # device, as an O_DIRECT write of them does while the page is not cached;
        # the block itself through the page cache, so only the page holds it.
        record.gens[index] += 1
        data = self.expected(record, index)
        bdev = inode.i_sb.s_bdev
        first = index * (ps // bs)
        for b, blocknr in enumerate(inode.blocks[first : first + ps // bs]):
            if b != block and blocknr:
                bdev.write(blocknr, data[b * bs : (b + 1) * bs])
        generic_file_write(inode, pos, data[block * bs :][:length])
        now = self.page_of(record, index)
        if now is None:
            raise SetupError(f"{record.page_key(index)} is not in memory after writing it")
        return now

    def make_holes(self, record: File, index: int) -> int:
        """Drop page ``index`` from the page cache and make its blocks after the first holes.

        The page is dropped as :meth:`write_in_part` drops it.  The file
        then has the block map a file written with those blocks skipped
        (``lseek`` past them) has: each of the page's blocks after its first
        that is inside the file maps no block on the device, so a read of
        the page zeroes them, and a ``writepage`` that finds them dirty
        gives them blocks of their own.  The blocks they had stay on the
        device, used by no file.  The next read of the page (a fault through
        a mapping, a ``read(2)``) reads it in again through its table.
        Returns how many holes the page has.

        Raises:
            SetupError: the page is not in memory, is dirty, under
                writeback, mapped or held, or its table kept its buffers;
                or it has no block inside the file after its first.
        """
        inode = record.inode
        first = index * (self.page_size // inode.i_sb.s_blocksize)
        inside = min(self.blocks_inside(record, index), len(inode.blocks) - first)
        if inside < 2:
            raise SetupError(
                f"{record.page_key(index)} has no block inside the file after its first: "
                "no hole to make"
            )
        self._drop(record, index)
        inode.blocks[first + 1 : first + inside] = [0] * (inside - 1)
        return inside - 1

    def blocks_inside(self, record: File, index: int) -> int:
        """How many of page ``index``'s blocks hold bytes of its file (the last may in part)."""
        inode = record.inode
        bs = inode.i_sb.s_blocksize
        per_page = self.page_size // bs
        return max(0, min(per_page, -(-inode.i_size // bs) - index * per_page))

    def _drop(self, record: File, index: int) -> None:
        """Drop page ``index`` of ``record`` as reclaim drops a clean, unused page, and free it.

        Its buffers are freed with ``try_to_release_page`` (the table's
        ``releasepage``), the page leaves the tree, and its frame is freed.

        Raises:
            SetupError: the page is not in memory, is dirty, under writeback,
                mapped or held, or its table kept its buffers.
        """
        page = record.inode.i_mapping.lookup(index)
        if page is None:
            raise SetupError(f"{record.page_key(index)} is not in memory to drop")
        lock_page(page)
        try:
            if page.flags & (PG.dirty | PG.writeback) or page.mapcount:
                raise SetupError(f"{record.page_key(index)} is in use: it cannot be dropped")
            if page.flags & PG.private and not try_to_release_page(page, GFP_KERNEL):
                raise SetupError(f"{record.page_key(index)} kept its buffers: not dropped")
            if page.count != 1:  # the page cache's alone
                raise SetupError(f"{record.page_key(index)} is held: it cannot be dropped")
            remove_from_page_cache(page)
        finally:
            unlock_page(page)
        put_page(page)  # the page cache's reference: the frame is free

    def map_file(self, record: File, mm: Mm, *, locked: bool = False) -> Vma:
        """Map the whole file shared into ``mm`` (``VM_LOCKED`` with ``locked``), touching none."""
        return mm.mmap_file(record.inode, 0, max(record.npages, 1), locked=locked)

    def store(self, record: File, index: int, mm: Mm, vma: Vma, gen: int | None = None) -> None:
        """Write page ``index`` through ``mm``'s mapping ``vma``, in the next or given gen.

        Past the end of a file that ends inside the page, the page keeps its
        zeroes: the kernel never writes those bytes back, so no store there
        is data.

        Without ``gen``, the generation is the one after the page's as the
        store lands (:meth:`~fsaops.rmap.Mm.store`), so a write that lands
        after another begun later still counts as the newer.
        """

        def landing() -> bytes:
            number = record.gens[index] + 1 if gen is None else gen
            record.gens[index] = number
            # Past the end of the file the page keeps its zeroes: no store goes there.
            return self.expected(record, index)

        vpn = vma.vm_start + index - vma.vm_pgoff
        mm.store(vpn * self.page_size, landing)

    def touch(self, mm: Mm, vma: Vma, index: int) -> None:
        """Read page ``index`` of a mapped file through ``vma`` (a read fault maps it)."""
        vpn = vma.vm_start + index - vma.vm_pgoff
        mm.read(vpn * self.page_size, self.page_size)

    # -- anonymous memory -------------------------------------------------------------------

    def anon(
        self,
        npages: int,
        *,
        mm: Mm | None = None,
        locked: bool = False,
        key: str | None = None,
        first: int = 0,
    ) -> Area:
        """An area of ``npages`` of anonymous memory in ``mm`` (default: a new process), written.

        ``key`` names the process in page names (default ``process<pid>``)
        and ``first`` numbers the area's first page among the process's.
        """
        if mm is None:
            mm = self.process()
        vma = mm.mmap_anon(npages, locked=locked)
        key = key or f"process{mm.pid}"
        area = Area(
            owner=self.owner(key),
            key=key,
            mm=mm,
            vma=vma,
            first=first,
            npages=npages,
            locked=locked,
            gens=[0] * npages,
        )
        self.areas.append(area)
        mm.write(vma.vm_start * self.page_size, self.contents.pages(area.owner, first, npages))
        return area

    # -- where pages are ----------------------------------------------------------------------

    def page_of(self, record: File | Area, index: int) -> Page | None:
        """The page that holds page ``index`` of a file or area now, or ``None`` (not in memory).

        An anonymous page behind a swap pte is in memory if the swap cache
        holds its entry (as after a V4 migration, until the next access).
        """
        if isinstance(record, Area):
            pte = record.mm.ptes.get(record.start + index)
            if pte is None or pte.page is not None:
                return None if pte is None else pte.page
            swapper = self.kernel.swapper_space
            return None if swapper is None else swapper.lookup(pte.swp)
        return record.inode.i_mapping.lookup(index)

    def read(self, record: File | Area, index: int) -> bytes:
        """Page ``index`` read back as its user sees it: ``read(2)``, or the process's memory."""
        ps = self.page_size
        if isinstance(record, Area):
            return record.mm.read((record.start + index) * ps, ps)
        data = generic_file_read(record.inode, index * ps, ps)
        return data if record.size is None else data.ljust(ps, b"\0")

    def read_range(self, record: File | Area, first: int, count: int) -> bytes | bytearray:
        """Pages ``first`` to ``first + count - 1`` read back as :meth:`read` reads one, in one go.

        One ``read(2)`` of the whole range (short if the file is), or one
        read of the process's memory.
        """
        ps = self.page_size
        if isinstance(record, Area):
            return record.mm.read((record.start + first) * ps, count * ps)
        data = file_read(record.inode, first * ps, count * ps)
        if record.size is not None:  # past the end of the file: zeroes, as expected()
            return data.ljust(count * ps, b"\0")
        return data

    # -- the page-level building block ------------------------------------------------------

    def make_page(
        self, spec: PageSpec | str | None = None, *, on: SuperBlock | None = None
    ) -> PreparedPage:
        """Build one page in the state ``spec`` describes: a file page on mount ``on``.

        With ``on`` left out the page is anonymous memory (the swap cache's
        table must be on: :meth:`swapon`).  The page is isolated onto
        :attr:`from_` unless the spec says otherwise.

        Raises:
            SetupError: the state cannot be built (a table that cannot put a
                page under writeback, a full node, ...).
        """
        if spec is None:
            spec = PageSpec()
        elif isinstance(spec, str):
            spec = PageSpec.parse(spec)
        prepared = self._make_anon(spec) if on is None else self._make_file(spec, on)
        self._finish(prepared)
        self.prepared.append(prepared)
        return prepared

    def _make_file(self, spec: PageSpec, sb: SuperBlock) -> PreparedPage:
        kernel = self.kernel
        ps = self.page_size
        key = f"{sb.name}/page{len(self.prepared)}"
        record = self.create_file(sb, key=key, name=key)
        inode = record.inode
        mapping = inode.i_mapping
        bs = sb.s_blocksize
        per_page = ps // bs
        # The file's last page, or followed by one more (on disk, not read in).
        record.npages = spec.index + (1 if spec.last else 2)
        record.gens = [2 * spec.seed] * record.npages
        inside = tail_bytes(ps) if spec.tail else ps  # bytes of the page inside the file
        if spec.tail:
            record.size = spec.index * ps + inside
        size = spec.index * ps + inside if spec.last else record.npages * ps
        data = self.expected(record, spec.index)
        table = sb.a_ops
        if spec.index >= SPARSE_FROM:
            # A sparse file: every block before the page is a hole, so a page
            # far into a file (past 4 GiB) needs no more of the device than its own.
            inode.blocks.extend([0] * (spec.index * per_page - len(inode.blocks)))
        # The file's data is on disk first; the page is read through the table.
        if spec.out_of_line:
            interleave_blocks(inode, size)
        if spec.sparse:  # only the page's first block: the others are holes
            inode.reserve(spec.index * ps + bs)
            inode.i_size = (spec.index + 1) * ps
        else:
            inode.reserve(size)
        if spec.partial:
            # On disk: the page's first block as it was, the others as they
            # are to be (write(2) does not touch them); then the write.
            if table.prepare_write is None or table.commit_write is None:
                raise SetupError(
                    f"a page written in part: {table.name} takes no write(2) (no prepare_write)"
                )
            record.gens[spec.index] += 1
            data = self.expected(record, spec.index)
            old = self.contents.page(record.owner, spec.index, 2 * spec.seed)
            on_disk = old[:bs] + data[bs:]
        else:
            on_disk = data
        pages = [(spec.index, on_disk)]
        if not spec.last:
            pages.append((spec.index + 1, self.expected(record, spec.index + 1)))
        for index, stored in pages:
            first_block = index * per_page
            for i in range(per_page):
                k = first_block + i
                blocknr = inode.blocks[k] if k < len(inode.blocks) else 0
                if blocknr:  # else a hole (past the end of the file, or sparse): nothing on disk
                    sb.s_bdev.write(blocknr, stored[i * bs : (i + 1) * bs])
        if spec.partial:
            generic_file_write(inode, spec.index * ps, data[:bs])
            found = find_get_page(mapping, spec.index)
            if found is None:
                raise SetupError(f"write(2) of {record.label} left no page in the page cache")
            page = found
            # Where the table's prepare_write read nothing, the frame holds
            # what its last user left (the allocator does not clear it); a
            # reader reads those blocks from the disk first.  A table that
            # read the rest in (nobh_prepare_write does) left nothing unread.
            if not page.flags & PG.uptodate and page.flags & PG.private:
                frame = page_address(page)
                left = _LEFT_OVER * (ps // len(_LEFT_OVER))
                for i, bh in enumerate(buffers(page.private)):
                    if not bh.b_state & BH.uptodate:
                        frame[i * bs : (i + 1) * bs] = left[i * bs : (i + 1) * bs]
        elif table.readpage is not None:
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
        if spec.partial and bytes(page_address(page)) != data:
            prepared.frame = bytes(page_address(page))
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
        if spec.shared:
            other = kernel.new_mm(name=f"sharer{len(self.prepared)}")
            area = other.mmap_file(inode, spec.index, 1)
            prepared.sharer, prepared.sharer_addr = other, area.vm_start * ps
            other.read(prepared.sharer_addr, 1)
            pte = other.ptes.get(area.vm_start)
            if pte is None or pte.page is not page:
                raise SetupError(f"mapping the file in a second process did not map pfn {page.pfn}")
        if spec.dirty and not spec.partial:
            record.gens[spec.index] += 1
            new = self.expected(record, spec.index)
            if table.prepare_write is not None and table.commit_write is not None:
                generic_file_write(inode, spec.index * ps, new[:inside])
            else:
                self.oracle.write_frame(page, new)
            if not page.flags & PG.dirty:
                set_page_dirty(page)  # as a write through a mapping does
            prepared.data = new
            if spec.clean_head:
                write_head_buffer(page)
        if spec.writeback:
            self._start_writeback(page, table)
        if spec.pte_dirty:
            self._store_through_pte(prepared, record, spec.index)
        put_page(page)  # read_cache_page's / grab_cache_page's reference
        return prepared

    def _store_through_pte(self, prepared: PreparedPage, record: File | Area, index: int) -> None:
        """Write the page's next generation through its process's mapping: only the pte is dirty.

        Only the bytes inside the file: a store past its end is never written back.
        """
        assert prepared.mm is not None
        record.gens[index] += 1
        new = self.expected(record, index)
        inside = len(new)
        if isinstance(record, File) and record.size is not None:
            inside = min(max(record.size - index * self.page_size, 0), inside)
        prepared.mm.write(prepared.addr, new[:inside])
        prepared.data = new

    def _make_anon(self, spec: PageSpec) -> PreparedPage:
        kernel = self.kernel
        swapper = kernel.swapper_space
        if swapper is None:
            raise SetupError("anonymous pages need the swap cache: turn a swap device on first")
        table = swapper.a_ops
        if spec.buffers:
            raise SetupError("anonymous pages carry no buffer heads")
        if spec.shared:
            raise SetupError(
                "a second process maps anonymous memory only after fork(), which the kit does "
                "not build: 'shared' is for a page of a file"
            )
        mm = kernel.new_mm(name=f"process{len(self.prepared)}")
        vma = mm.mmap_anon(1, locked=spec.mlocked)
        key = f"process{mm.pid}"
        area = Area(
            owner=self.owner(key),
            key=key,
            mm=mm,
            vma=vma,
            first=spec.index,
            npages=1,
            locked=spec.mlocked,
            gens=[2 * spec.seed],
        )
        self.areas.append(area)
        addr = vma.vm_start * self.page_size
        data = self.expected(area, 0)
        mm.write(addr, data)  # the fault allocates on the kernel's allocation node
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
                self._write_out(page, table, wait=True)
            elif spec.writeback:
                self._write_out(page, table, wait=False)
            else:
                unlock_page(page)
        if spec.pte_dirty:
            self._store_through_pte(prepared, area, 0)
        return prepared

    def _write_out(self, page: Page, table: AddressSpaceOperations, *, wait: bool) -> None:
        # page locked on entry; writepage unlocks it.
        writepage = table.writepage
        if writepage is None:
            unlock_page(page)
            raise SetupError(f"{table.name} has no writepage")
        clear_page_dirty_for_io(page)
        get_page(page)  # as the kernel's callers of writepage hold one
        returned(table, "writepage", writepage(page, WritebackControl()))
        put_page(page)
        if wait:
            self.kernel.run_until_idle()
            if page.flags & (PG.writeback | PG.dirty):
                raise SetupError(f"writing pfn {page.pfn} out did not leave it clean")
        elif not page.flags & PG.writeback:
            raise SetupError(
                f"capability 'writeback': {table.name}.writepage did not put "
                f"pfn {page.pfn} under writeback"
            )

    def _start_writeback(self, page: Page, table: AddressSpaceOperations) -> None:
        if not trylock_page(page):
            raise SetupError(f"pfn {page.pfn} is locked")
        if not page.flags & PG.dirty:
            unlock_page(page)
            raise SetupError(f"pfn {page.pfn} is not dirty, so there is nothing to write")
        self._write_out(page, table, wait=False)

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
            elif not try_to_release_page(page, GFP_KERNEL):
                raise SetupError(f"the buffers of pfn {page.pfn} could not be released")
        finally:
            unlock_page(page)

    def _finish(self, prepared: PreparedPage) -> None:
        page = prepared.page
        spec = prepared.spec
        if spec.isolated:
            if isolate_lru_page(page) != 1:
                raise SetupError(f"pfn {page.pfn} could not be isolated from the LRU")
            list_add_tail(page, self.from_)
            page.flags |= spec.flags
        elif spec.flags:
            page.flags |= spec.flags & ~PG.active  # PG_active must match the LRU list
        if spec.truncated and prepared.inode is not None:
            truncate_inode_pages(prepared.inode.i_mapping, spec.index * self.page_size)
        for _ in range(spec.pinned):
            prepared.holds.append(self.pin(page))
        if spec.pinned_for:
            prepared.holds.append(self.pin(page, spec.pinned_for))
        if spec.locked_for:
            prepared.holds.append(self.lock(page, spec.locked_for))
        if spec.buffer_locked_for:
            head = page.private if page.flags & PG.private else None
            if not isinstance(head, BufferHead):
                raise SetupError(f"pfn {page.pfn} has no buffer heads for another task to lock")
            last = list(buffers(head))[-1]
            prepared.holds.append(self.lock_buffer(last, spec.buffer_locked_for))

    # -- other tasks ----------------------------------------------------------------------------

    def pin(self, page: Page, ticks: int | None = None) -> Hold:
        """Another task (``pinner``) takes a reference on ``page``, for ``ticks`` or for good."""
        return hold(self.helper("pinner"), self.kernel.sched, "page_ref", page, ticks)

    def lock(self, page: Page, ticks: int | None = None) -> Hold:
        """Another task (``locker``) takes the lock of ``page``, for ``ticks`` or until released."""
        return hold(self.helper("locker"), self.kernel.sched, "page_lock", page, ticks)

    def lock_buffer(self, bh: BufferHead, ticks: int | None = None) -> Hold:
        """Another task (``buffer_writer``) writes ``bh``'s block, for ``ticks`` or until released.

        It locks the buffer and submits the write
        (:func:`~fsaops.buffer.start_buffer_write`: the buffer is clean from
        then on); as it lets go, the write ends and the block gets the bytes
        of the frame it was submitted from, poison if that frame was freed
        meanwhile (:func:`~fsaops.buffer.end_buffer_write`).  A buffer that
        maps no block is only locked.
        """
        return hold(
            self.helper("buffer_writer"), self.kernel.sched, "buffer_lock", bh, ticks, write=True
        )

    def release_all(self) -> None:
        """Every other task lets go of everything it holds."""
        for task in self.kernel.tasks:
            for held in list(task.holds):
                release(task, held)
        for prepared in self.prepared:
            prepared.holds.clear()

    # -- migrating ---------------------------------------------------------------------------

    def isolate(self, pages: Iterable[Page]) -> PageList:
        """Take ``pages`` off the LRU onto :attr:`from_`, as migration callers do; returns it.

        Raises:
            SetupError: a page is not on the LRU.
        """
        for page in pages:
            if isolate_lru_page(page) != 1:
                raise SetupError(f"pfn {page.pfn} could not be isolated from the LRU")
            list_add_tail(page, self.from_)
        return self.from_

    def new_page(self, nid: int | None = None) -> Page:
        """A free page on ``nid`` (default: the target node), with its allocation reference."""
        nid = self.target_nid if nid is None else nid
        page = self.kernel.nodes[nid].alloc_page()
        if page is None:
            raise SetupError(f"node {nid} is out of pages")
        # The page allocator does not clear a frame: it holds what its last
        # user left.  Here a pattern no page's data holds, so that a copy that
        # leaves bytes out (past the end of a file, say) shows.
        page_address(page)[:] = _LEFT_OVER * (page.node.page_size // len(_LEFT_OVER))
        return page

    def prefault(self, nid: int, npages: int, *, committer: Committer | None = None) -> None:
        """Have the operating system commit the next ``npages`` free frames of node ``nid``.

        The frames the node hands out next (the head of its free list) are
        committed in one request per run of consecutive frames, instead of a
        page fault when each is first written: now, or with ``committer`` by
        its thread while this one goes on (:mod:`fsaops.backing`).  A hint
        only: which frames are free, and what they hold, does not change.
        """
        node = self.kernel.nodes[nid]
        owner = node.mem.obj
        for start, length in _free_head_runs(node, npages):
            if (
                committer is None
                or not isinstance(owner, mmap.mmap)
                or not committer.commit(owner, start, length)
            ):
                _commit(node.mem, start, length)

    def commit_ahead_of_writeback(self, committer: Committer) -> None:
        """Have ``committer`` commit the device memory the files' dirty pages will be written to.

        Each dirty page of a file whose blocks are allocated is written back
        to them by the next sync: their memory on the device is committed
        by ``committer``'s thread while this one goes on, rather than a page
        fault at each page's write (:meth:`BlockDevice.commit_ahead
        <fsaops.fs.BlockDevice.commit_ahead>`).  A hint only: nothing the
        model can see changes, and a page written elsewhere (its blocks out
        of line, say) costs only the memory committed for nothing.
        """
        ps = self.page_size
        dirty = PG.dirty
        devices: dict[int, tuple[BlockDevice, list[int]]] = {}
        for record in self.files:
            # A hint only: fields plugin code broke are for the proofs to name.
            try:
                inode = record.inode
                sb = inode.i_sb
                bdev = sb.s_bdev
                blocks = inode.blocks
                tree = inode.i_mapping.page_tree
                bs = sb.s_blocksize
                if (
                    not record.page_cache
                    or type(bdev) is not BlockDevice
                    or type(blocks) is not list
                    or type(tree) is not list
                    or type(bs) is not int
                    or not 0 < bs <= ps
                ):
                    continue
                per_page = ps // bs
                last = len(blocks) - per_page
                found = [
                    blocks[i * per_page]
                    for i, page in enumerate(tree)
                    if page is not None and page.flags & dirty and i * per_page <= last
                ]
            except Exception:
                continue
            devices.setdefault(id(bdev), (bdev, []))[1].extend(found)
        for bdev, firsts in devices.values():
            bdev.commit_ahead(committer, firsts, ps)

    def give_back(self, nid: int, npages: int) -> None:
        """Have the operating system take back the memory of node ``nid``'s last freed frames.

        The ``npages`` frames at the head of the node's free list (the most
        recently freed) hold nothing anyone may read: their memory is handed
        back (``MADV_DONTNEED``), one request per run of consecutive frames,
        so that the operating system can commit it again for the next frames
        written (a migration's new pages) instead of memory touched for the
        first time.  A hint only: which frames are free does not change.
        Nothing is handed back under ``debug_vm``, whose freed frames keep
        their poison.
        """
        node = self.kernel.nodes[nid]
        if node.kernel.debug_vm:
            return
        for start, length in _free_head_runs(node, npages):
            _release(node.mem, start, length)

    def new_pages(self, count: int, nid: int | None = None) -> PageList:
        """A ``to`` list of ``count`` free pages on ``nid`` (default: the target node)."""
        to = PageList("to")
        for _ in range(count):
            list_add_tail(self.new_page(nid), to)
        return to

    def migrate(
        self,
        pages: Iterable[Page] | None = None,
        *,
        to_count: int | None = None,
        nid: int | None = None,
        rounds: int = 1,
        settle_ticks: int = 0,
    ) -> EngineRun:
        """Run ``migrate_pages`` over the isolated pages, with new pages on ``nid``.

        ``pages`` are isolated first.  ``to_count`` new pages are offered
        (default: one per page).  ``rounds`` > 1 calls ``migrate_pages``
        again for pages still on ``from`` after letting ``settle_ticks``
        ticks pass (kjournald commits, I/O ends), as ``migrate_pages_to``
        calls it again while pages are left.  The oracle judges the outcome
        right after the last call (:attr:`EngineRun.problems`).
        """
        if pages is not None:
            self.isolate(pages)
        from_ = self.from_
        count = len(from_) if to_count is None else to_count
        to = self.new_pages(count, nid)
        new_pages = {page.pfn: page for page in to}
        moved = PageList("moved")
        failed = PageList("failed")
        record = self.oracle.record(from_, to)
        io_before = self.oracle.io(self.kernel)
        stats = MigrateStats()
        run = EngineRun(
            [], [], from_, to, moved, failed, stats, dict(record.before), new_pages, io_before
        )
        for round_ in range(max(rounds, 1)):
            if round_ and not from_:
                break
            if round_:
                self.kernel.sched.run_for(settle_ticks)
            nr_failed = len(failed)
            run.rcs.append(migrate_pages(from_, to, moved, failed, stats=stats, kernel=self.kernel))
            run.calls.append((len(failed) - nr_failed, len(from_)))
        run.problems = record.check(from_, moved, failed, to)
        run.problems += check_kernel(self.kernel, isolated=[from_, to, moved, failed], quiet=False)
        return run

    def settle(self, run: EngineRun | None = None) -> None:
        """Let go of everything: holds released, pages put back, spare new pages freed, I/O done."""
        self.release_all()
        self.kernel.run_until_idle()
        if run is not None:
            putback_lru_pages(run.moved)
            putback_lru_pages(run.failed)
            for page in list(run.to):
                list_del(page)
                put_page(page)
        putback_lru_pages(self.from_)
        self.kernel.run_until_idle()


@attrs.define(eq=False)
class _Reading:
    """The run of a file's pages being read in, made once for the device and the check.

    :meth:`World.load_file` reads a file's pages in from blocks that hold
    known contents (:class:`OnDisk`), then checks that each page holds its
    data.  The run's data is made once, before the read: the device copies
    what it is asked for from it (:meth:`OnDisk.fill`), and the check
    compares each page with its part, so the check costs a comparison, not
    another run of the content generator.

    Attributes:
        owner: the file's owner number (-1: no run).
        first: the run's first page.
        gens: each page's generation.
        data: what the pages must read back.
        on_disk: whether ``data`` is also what their blocks hold (the file
            does not end inside a page).
    """

    owner: int = -1
    first: int = 0
    gens: tuple[int, ...] = ()
    data: bytes | bytearray = b""
    on_disk: bool = False

    def start(self, world: World, record: File, first: int, count: int) -> None:
        """Make pages ``first`` to ``first + count - 1`` of ``record``, about to be read in."""
        self.owner, self.first = record.owner, first
        self.gens = tuple(record.gens[first : first + count])
        self.data = world.expected_range(record, first, count)
        self.on_disk = record.size is None

    def clear(self) -> None:
        """Forget the run (it was read in)."""
        self.owner, self.gens, self.data, self.on_disk = -1, (), b"", False

    def part(self, owner: int, page: int, gens: tuple[int, ...]) -> memoryview | None:
        """What the blocks of pages ``page`` on of ``owner`` in ``gens`` hold, if made."""
        at = page - self.first
        if not self.on_disk or owner != self.owner or at < 0 or not gens:
            return None
        if self.gens[at : at + len(gens)] != gens:
            return None
        ps = len(self.data) // len(self.gens)
        return memoryview(self.data)[at * ps : (at + len(gens)) * ps]


@attrs.frozen(eq=False)
class OnDisk:
    """A run of a file's blocks that the world put its pages on as known contents.

    :meth:`World.load_file` puts one for each run of the file's blocks
    that follow on on the device; :meth:`fill` makes the run's bytes
    (:data:`~fsaops.fs.FillKnown`), and it is the run's tag.

    Attributes:
        contents: the world's content generator.
        record: the file.
        first: the first of the pages the load put there.
        gens: each of those pages' generation when it was put there.
        iblock: the file block the run starts at.
        reading: the pages being read in, made once (:class:`_Reading`).
    """

    contents: Contents
    record: File
    first: int
    gens: tuple[int, ...]
    iblock: int
    reading: _Reading = attrs.field(factory=_Reading)

    def fill(self, dst: memoryview, offset: int) -> None:
        """Write the run's bytes from byte ``offset`` of the run on into ``dst``."""
        contents = self.contents
        ps = contents.page_size
        page, skip = divmod(self.iblock * self.record.inode.i_sb.s_blocksize + offset, ps)
        count = -(-(skip + len(dst)) // ps)
        k = page - self.first
        gens = self.gens[k : k + count]
        record = self.record
        made = self.reading.part(record.owner, page, gens)
        if made is not None:  # the run being read in: made already
            dst[:] = made[skip : skip + len(dst)]
        elif record.size is not None:  # zeroes past the end, as writepage leaves a last block
            data = _cut_at(record.size - page * ps, contents.versions(record.owner, gens, page))
            dst[:] = data[skip : skip + len(dst)]
        elif not skip and len(dst) == count * ps:
            contents.fill(dst, record.owner, page, gens)
        else:
            data = contents.versions(record.owner, gens, page)
            dst[:] = data[skip : skip + len(dst)]


def write_head_buffer(page: Page) -> bool:
    """Write a dirty page's first buffer out on its own; whether it did.

    Only a page of more than one buffer, all dirty: it keeps ``PG_dirty``
    and its other dirty buffers, as a write(2) of part of it would leave it.
    """
    if not page.flags & PG.dirty or not page.flags & PG.private:
        return False
    head = page.private
    if not isinstance(head, BufferHead) or head.b_this_page is head:
        return False
    if any(not bh.b_state & BH.dirty for bh in buffers(head)):
        return False
    return sync_dirty_buffer(head) == 0


SPARSE_FROM: Final = 64
"""The first page index :meth:`World.make_page` builds in a sparse file: the blocks of the
file before the page are holes, so a page far into a file (``index << PAGE_SHIFT`` past
``2**32``, or past a filesystem's direct and indirect blocks) takes no more of the device
than its own blocks.  Pages before it are built in a file whose every block is on disk."""


def interleave_blocks(inode: Inode, size: int) -> None:
    """Allocate the blocks of ``size`` bytes of ``inode`` in turn with another file's.

    Each block comes from the filesystem's allocator (``get_block`` with
    ``create``), one for the file, then one for a new file on the same
    mount, so no two blocks of the file follow on on the disk.  Blocks the
    file already has stay.

    Raises:
        SetupError: a page of the file would still have blocks that follow
            on (the allocator gave them so, or a page holds one block).
    """
    sb = inode.i_sb
    bs = sb.s_blocksize
    per_page = sb.kernel.page_size // bs
    if per_page < 2:
        raise SetupError(f"a page of one block ({bs} bytes) has no blocks to put out of line")
    other = sb.new_inode(f"{inode.name} (the blocks between)")
    start = len(inode.blocks)
    nblocks = -(-size // bs)
    for iblock in range(start, nblocks):
        inode.get_block(iblock, True)
        other.get_block(len(other.blocks), True)
    blocks = inode.blocks
    for k in range(max(start, 1), nblocks):
        if k % per_page and blocks[k] == blocks[k - 1] + 1:
            raise SetupError(
                f"{inode.name}: blocks {k - 1} and {k} follow on on the disk "
                f"({blocks[k - 1]}, {blocks[k]}) although they were allocated in turn with "
                "another file's"
            )


def _block_runs(blocks: list[int]) -> str:
    """``block 3``, ``blocks 0-2`` or ``blocks 0, 2-3``: block numbers of a page, in runs."""
    runs: list[str] = []
    start = prev = blocks[0]
    for k in [*blocks[1:], -2]:
        if k == prev + 1:
            prev = k
            continue
        runs.append(str(start) if start == prev else f"{start}-{prev}")
        start = prev = k
    return ("block " if len(blocks) == 1 else "blocks ") + ", ".join(runs)


def tail_bytes(page_size: int) -> int:
    """Where a file that ends inside a page ends in it (:attr:`PageSpec.tail`): past half of it.

    With 1 KiB blocks on 4 KiB pages that leaves the first two blocks
    inside the file (the second in part) and the last two holes.
    """
    return page_size // 2 - 100


def _cut_at(keep: int, data: _Data) -> _Data:
    """``data`` with zeroes from byte ``keep`` on (all of it zeroes when ``keep`` is negative)."""
    if keep >= len(data):
        return data
    keep = max(keep, 0)
    return data[:keep] + bytes(len(data) - keep)


def _content_index(record: File | Area, index: int) -> int:
    """The index a page's data is keyed by: its file index, or its process page number."""
    return record.first + index if isinstance(record, Area) else index


def start_write(page: Page) -> None:
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
    rc = returned(mapping.a_ops, "writepage", rc)  # type: ignore[union-attr]
    if rc == WRITEPAGE_ACTIVATE:
        unlock_page(page)
