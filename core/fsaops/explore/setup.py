"""What a schedule runs on: the table, its pages and the tasks, built once.

A :class:`Setup` names everything the explored machine is made of (the
table, the page and block sizes, the kernel's semantics, the number of
pages and the accessor tasks with their pages); a replay string records
it.  :class:`ExploredWorld` builds that machine once, through the one
builder (:class:`~fsaops.world.World`), and every schedule starts from it.

The pages are the explorer's pages 0, 1, ...: each a page of its own file
on one mount of the table (or, for the swap cache's table, one page of
anonymous memory of its own process), isolated for migration, with a new
page for each on the other node.  Page *k* is at index *k* of its file
(the file's pages before it are on disk, not in the page cache, or, for a
table with nothing to write back to, in the page cache and not migrated),
so that a table that treats a file's first page apart is run on both
kinds.  Even pages are on node 0 and move to node 1, odd pages are on
node 1 and move to node 0: the migration task migrates each direction in
turn, as ``sys_migrate_pages`` does node by node.  A page's state follows the tasks that
work on it: dirty for ``writeback``, mapped for ``mmap-write``, a swap pte
for ``swapin``; otherwise odd pages are dirty (where the table can write),
and even anonymous pages are mapped.  With ``out_of_line`` (a scenario's
``[workload] out_of_line``) each file page's blocks are allocated in turn
with another file's, as ``fsaops migrate`` lays out the files of such a
scenario, so a table that reads pages from runs of blocks reads them
through buffer heads (ext2 ``nobh``'s "confused" pages).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Final

import attrs

from fsaops.config.effective import SWAP
from fsaops.errors import ConfigError
from fsaops.explore.lockdep import LockOrder
from fsaops.explore.runtime import Pages
from fsaops.explore.tasks import ACCESSORS, Accessor, Runtime, accessor, make_body
from fsaops.fs import generic_file_write
from fsaops.lists import PageList, list_add_tail, list_del
from fsaops.mapping import grab_cache_page
from fsaops.memory import POISON_BYTE, Node
from fsaops.page import PG, Page, put_page, unlock_page
from fsaops.process import plugin_code
from fsaops.proofs import Places, snapshot_places
from fsaops.world import Area, File, PageSpec, PreparedPage, SetupError, World
from fsaops.writeback import set_page_dirty

if TYPE_CHECKING:
    from fsaops.aops import AddressSpaceOperations, FileSystemType
    from fsaops.fs import SuperBlock
    from fsaops.kernel import Kernel
    from fsaops.plugins import Registry
    from fsaops.rmap import Mm, Vma
    from fsaops.sched import Task

__all__ = [
    "DEFAULT_PAGES",
    "MAX_PAGES",
    "MAX_TASKS",
    "ExploredWorld",
    "Setup",
    "TableInfo",
    "Target",
    "TaskSpec",
    "applies",
    "assign_pages",
    "check_setup",
    "default_tasks",
    "lone_runs",
    "out_of_line_applies",
    "page_spec",
    "probe",
    "source_node",
    "target_node",
]

DEFAULT_PAGES: Final = 4
"""Pages the migration task moves unless told otherwise."""

MAX_PAGES: Final = 16
"""The most pages a schedule may have (a page is a bit of a step's label)."""

MAX_TASKS: Final = 16
"""The most accessor tasks a schedule may have."""

DEFAULT_IO_LATENCY: Final = 4
"""Ticks from submitting a write to its completion unless told otherwise (the kernel's default)."""

SOURCE_NODE: Final = 0
"""The node even pages are on (odd pages are on :data:`TARGET_NODE`)."""

TARGET_NODE: Final = 1
"""The node even pages move to (odd pages move to :data:`SOURCE_NODE`)."""


def source_node(i: int) -> int:
    """The node page ``i`` is on before migration: even pages on node 0, odd ones on node 1."""
    return SOURCE_NODE if i % 2 == 0 else TARGET_NODE


def target_node(i: int) -> int:
    """The node page ``i`` moves to: the other one."""
    return TARGET_NODE if i % 2 == 0 else SOURCE_NODE


def file_index(i: int, anonymous: bool) -> int:
    """The index of page ``i`` in its file: ``i`` (anonymous memory: 0, its area's one page)."""
    return 0 if anonymous else i


@attrs.frozen
class TaskSpec:
    """One accessor task: its kind and the explorer page it works on."""

    name: str
    page: int

    def __str__(self) -> str:
        return f"{self.name}@{self.page}"


@attrs.frozen
class Setup:
    """Everything the explored machine is made of.

    Attributes:
        fs: the filesystem type's name.
        mode: its mount mode (which selects the table).
        block_size: the mount's block size (``None``: the type's default).
        page_size: bytes per page.
        semantics: the release of the migration code (``v4``, ``2.6.16``, ``2.6.17``).
        pages: how many pages the migration task moves.
        tasks: the accessor tasks, each with its page.
        out_of_line: lay each file page's blocks out of line (a scenario's
            ``[workload] out_of_line``); a page of one block, a buffer-cache
            mapping and anonymous memory are left as they are
            (:func:`out_of_line_applies`).
        io_latency: the kernel's ticks from submitting a write to its
            completion (a scenario's ``kernel.io_latency``).  While a
            schedule runs an I/O completion is a task of its own, as late as
            the schedule makes it; the latency times the I/O of the build
            and of the checks after the schedule.
        commit_interval: ticks between the journal's commits (a scenario's
            ``kernel.commit_interval``; ``None``: the journal's own
            default).  While a schedule runs the journal commits only in
            the ``kjournald`` task; the interval times the commits of the
            build and of the checks after the schedule.
        lock_orders: spinlock orders made before the first schedule (those
            of the search's earlier schedules that a replayed failure rests
            on, :mod:`fsaops.explore.lockdep`).
    """

    fs: str
    mode: str
    block_size: int | None = None
    page_size: int = 4096
    semantics: str = "v4"
    pages: int = DEFAULT_PAGES
    tasks: tuple[TaskSpec, ...] = ()
    out_of_line: bool = False
    io_latency: int = DEFAULT_IO_LATENCY
    commit_interval: int | None = None
    lock_orders: tuple[LockOrder, ...] = ()

    @property
    def anonymous(self) -> bool:
        """Whether the pages are anonymous memory (the swap cache's table)."""
        return self.fs == SWAP


@attrs.frozen
class Target:
    """One of the explorer's pages, as built.

    Attributes:
        index: its number.
        prepared: the page and what it must keep.
        record: its file or area.
        rindex: its index there (``file_index``).
        node: the node it is on before migration (:func:`source_node`).
        target: the node it moves to (:func:`target_node`).
    """

    index: int
    prepared: PreparedPage
    record: File | Area
    rindex: int
    node: int = SOURCE_NODE
    target: int = TARGET_NODE

    @property
    def anonymous(self) -> bool:
        """Whether it is anonymous memory."""
        return isinstance(self.record, Area)

    def file(self) -> File:
        """Its file.

        Raises:
            fsaops.world.SetupError: it is anonymous memory.
        """
        if not isinstance(self.record, File):
            raise SetupError(f"page {self.index} is anonymous memory, not a file page")
        return self.record


# -- which tasks apply ------------------------------------------------------------------


@attrs.frozen
class TableInfo:
    """What the explorer found out about a table by building one page of it.

    Attributes:
        kind: ``anonymous``, ``buffered`` (file pages with buffer heads) or
            ``unbuffered``.
        journal: its filesystem keeps a journal (something with ``commit()``
            hangs off the superblock, as ext3's kjournald does).
    """

    kind: str
    journal: bool = False


def probe(
    fstype: FileSystemType,
    mode: str,
    registry: Registry | None,
    *,
    out_of_line: bool = False,
    block_size: int | None = None,
    page_size: int = 4096,
) -> TableInfo:
    """What the table's pages are, found by building one on a small machine.

    With ``out_of_line`` the page is built as the explorer builds its pages
    then, on a mount of ``block_size`` with pages of ``page_size``: its blocks
    out of line where :func:`out_of_line_applies` (ext2 ``nobh`` reads such a
    page through buffer heads, and it carries them).

    Raises:
        fsaops.world.SetupError: the mode keeps no pages in the page cache.
    """
    if fstype.name == SWAP:
        return TableInfo("anonymous")
    if not fstype.has_page_cache(mode):
        raise SetupError(
            f"{fstype.name} mode {mode} keeps no pages in the page cache (execute in place): "
            "there is nothing to migrate"
        )
    if out_of_line:
        world = World(registry=registry, nodes=2, node_pages=16, page_size=page_size)
        sb = world.mount(fstype, mode, block_size=block_size)
        spec = PageSpec(out_of_line=out_of_line_applies(fstype, mode, sb, page_size), last=True)
    else:
        world = World(registry=registry, nodes=2, node_pages=16)
        sb = world.mount(fstype, mode)
        spec = PageSpec(last=True)
    prepared = world.make_page(spec, on=sb)
    kind = "buffered" if prepared.page.flags & PG.private else "unbuffered"
    return TableInfo(kind, callable(getattr(sb.s_fs_info, "commit", None)))


def out_of_line_applies(fstype: FileSystemType, mode: str, sb: SuperBlock, page_size: int) -> bool:
    """Whether the explorer lays the blocks of its pages on ``sb`` out of line, when asked to.

    As ``fsaops migrate`` does with ``[workload] out_of_line``: the pages of
    files, on a mount whose blocks are smaller than a page (a page of one
    block has nothing out of line); not a buffer-cache mapping's pages.
    """
    return fstype.name != SWAP and not fstype.is_buffer_cache(mode) and sb.s_blocksize < page_size


def applies(acc: Accessor, fstype: FileSystemType, mode: str, info: TableInfo) -> str | None:
    """Why ``acc`` does not apply to the table's pages, or ``None`` if it does."""
    table = fstype.aops(mode)
    kind = info.kind
    if kind not in acc.kinds:
        what = {"anonymous": "anonymous memory", "buffered": "pages with buffer heads"}
        return (
            f"{acc.name} works on {', '.join(sorted(acc.kinds))} pages, "
            f"not {what.get(kind, kind + ' pages')}"
        )
    if acc.member and getattr(table, acc.member, None) is None:
        return f"{acc.name} needs {table.name}.{acc.member}, which is NULL"
    if acc.name == "write" and table.commit_write is None:
        return f"{acc.name} needs {table.name}.commit_write, which is NULL"
    if acc.name == "truncate" and fstype.is_buffer_cache(mode):
        return f"{acc.name} works on regular files, and {table.name} is a buffer-cache mapping"
    if acc.journal and not info.journal:
        return f"{acc.name} needs a filesystem with a journal (such as ext3)"
    return None


def _held_by(pfns: set[int]) -> Callable[[object, Page], bool]:
    """Whether a page is one of the frames ``pfns`` (for :meth:`Places.select`)."""
    return lambda _record, page: page.pfn in pfns


def page_spec(i: int, accs: Sequence[Accessor], *, writable: bool, anonymous: bool) -> PageSpec:
    """The state page ``i`` starts in, with the accessors ``accs`` on it.

    What the accessors need decides it; otherwise odd pages are dirty (where
    the table can write) and even anonymous pages are mapped.  ``writable``:
    the table has a ``writepage``; ``anonymous``: the pages are the swap
    cache's.
    """
    needs: set[str] = set().union(*(a.needs for a in accs)) if accs else set()
    if anonymous:
        swapped = "swapped" in needs or "dirty" in needs
        mapped = "mapped" in needs or (not swapped and i % 2 == 0)
        if "dirty" in needs:
            return PageSpec(writeback=True, seed=i)
        return PageSpec(mapped=mapped, dirty=i % 2 == 1, seed=i)
    # A table with nothing to write back to (ramfs) holds only what
    # write(2) put in its pages: read in, they would hold zeroes, not the
    # data every schedule is checked against.
    dirty = not writable or "dirty" in needs or i % 2 == 1
    # Each page is its file's last: the schedules check every page of the file.
    return PageSpec(dirty=dirty, mapped="mapped" in needs, seed=i, last=True)


def lone_runs(
    fstype: FileSystemType,
    mode: str,
    info: TableInfo,
    pages: int,
    names: Sequence[str] | None = None,
) -> tuple[TaskSpec, ...]:
    """Where each accessor runs by itself: on page 0, and on page 1 where that starts otherwise.

    Page 0 starts clean (mapped, for anonymous memory) and page 1 dirty
    (unmapped), unless what the accessor needs makes them the same, so
    that a race only a dirty page shows (a buffer lock holder writing the
    buffer out, say) is within the default bounds.  An accessor that
    touches the whole mount runs once.  ``names`` defaults to
    :func:`default_tasks`.
    """
    anonymous = info.kind == "anonymous"
    writable = anonymous or fstype.aops(mode).writepage is not None
    runs: list[TaskSpec] = []
    for name in default_tasks(fstype, mode, info) if names is None else names:
        acc = accessor(name)
        runs.append(TaskSpec(acc.name, 0))
        if pages < 2 or acc.whole_mount:
            continue
        clean, dirty = (
            attrs.evolve(page_spec(i, [acc], writable=writable, anonymous=anonymous), seed=0)
            for i in (0, 1)
        )
        if clean != dirty:
            runs.append(TaskSpec(acc.name, 1))
    return tuple(runs)


def default_tasks(fstype: FileSystemType, mode: str, info: TableInfo) -> list[str]:
    """Every accessor that applies to the table's pages, in catalog order."""
    return [acc.name for acc in ACCESSORS if applies(acc, fstype, mode, info) is None]


def _conflict(acc: Accessor, others: Sequence[Accessor], anonymous: bool) -> bool:
    if "alone" in acc.needs and others:
        return True
    if any("alone" in other.needs for other in others):
        return True
    needs = set(acc.needs).union(*(o.needs for o in others))
    return anonymous and "mapped" in needs and "swapped" in needs


def assign_pages(
    names: Iterable[str | TaskSpec], pages: int, *, anonymous: bool
) -> tuple[TaskSpec, ...]:
    """Give every task a page: the one asked for, else the page with the fewest tasks it fits.

    Raises:
        fsaops.world.SetupError: a page number is out of range, or a task fits no page
            (``truncate`` wants a page of its own; anonymous ``mmap-write``
            and ``swapin`` want a present and a swap pte).
    """
    on: list[list[Accessor]] = [[] for _ in range(pages)]
    out: list[TaskSpec] = []
    wanted: list[tuple[Accessor, int | None]] = []
    for item in names:
        if isinstance(item, TaskSpec):
            wanted.append((accessor(item.name), item.page))
        else:
            wanted.append((accessor(item), None))
    for acc, page in wanted:
        if page is not None:
            if not 0 <= page < pages:
                raise SetupError(f"task {acc.name}@{page}: there are pages 0 to {pages - 1}")
            if _conflict(acc, on[page], anonymous):
                raise SetupError(
                    f"task {acc.name}@{page} cannot share page {page} with "
                    f"{', '.join(o.name for o in on[page])}"
                )
            on[page].append(acc)
            out.append(TaskSpec(acc.name, page))
    for acc, page in wanted:
        if page is not None:
            continue
        fits = [p for p in range(pages) if not _conflict(acc, on[p], anonymous)]
        if not fits:
            raise SetupError(
                f"task {acc.name} fits none of the {pages} pages (truncate wants a page of its "
                "own; give more pages with --pages)"
            )
        best = min(fits, key=lambda p: (len(on[p]), p))
        on[best].append(acc)
        out.append(TaskSpec(acc.name, best))
    order = {id(spec): i for i, spec in enumerate(out)}
    return tuple(sorted(out, key=lambda s: (s.page, order[id(s)])))


# -- the world ---------------------------------------------------------------------------


class _FromNode1(Node):
    """Node 0, while a page of node 1 is built: its frames come from node 1.

    The builder reads a file page in on node 0 whatever the kernel's
    allocation node; the explorer's odd pages are on node 1.
    """

    __slots__ = ()

    def alloc_page(self) -> Page | None:
        """A free frame of node 1."""
        return self.kernel.nodes[1].alloc_page()


@contextmanager
def _allocating_on(kernel: Kernel, nid: int) -> Iterator[None]:
    """Every page allocated while it lasts is on node ``nid`` (0 or 1)."""
    node0 = kernel.nodes[0]
    kind = node0.__class__
    was = kernel.alloc_nid
    kernel.alloc_nid = nid
    if nid == 1:
        node0.__class__ = _FromNode1
    try:
        yield
    finally:
        node0.__class__ = kind
        kernel.alloc_nid = was


class ExploredWorld:
    """The machine every schedule starts from, built once.

    Args:
        setup: what to build.
        fstype: the filesystem type (resolved from the registry by the caller).
        registry: the loaded plugins (for the swap table of anonymous pages).

    Attributes:
        world: the builder's world (kernel, contents, oracle, files, areas).
        targets: the explorer's pages.
        pages: which page each kernel object belongs to.
        tasks: the accessor tasks: (name, kernel task, page mask, body).
        views: file pages that processes map (for the read-back).
        truncated: the files a ``truncate`` task emptied (by id), in a run.
        moves: what the migration task migrates, a direction at a time:
            (the isolated pages of one node, the new pages on the other, that node).
        places: where every explorer page was before migration, by the node
            it moves to (the placement proof's start).
        rt: what the task bodies need at run time.
        lock_orders: the spinlock orders known before the next schedule
            runs: the setup's, then those each schedule run from here made
            (:mod:`fsaops.explore.lockdep`).
        out_of_line: the pages' blocks are out of line (``setup.out_of_line``,
            where :func:`out_of_line_applies`).

    Raises:
        fsaops.world.SetupError: the machine cannot be built as asked.
    """

    def __init__(
        self, setup: Setup, fstype: FileSystemType, registry: Registry | None = None
    ) -> None:
        with plugin_code():  # the build runs plugin code: fill_super, readpage, ...
            self._build(setup, fstype, registry)

    def _build(self, setup: Setup, fstype: FileSystemType, registry: Registry | None) -> None:
        self.setup = setup
        #: The spinlock orders known before the next schedule: the setup's, then each
        #: schedule's new ones, as the search gets them back (lockdep).
        self.lock_orders: list[LockOrder] = list(setup.lock_orders)
        self.fstype = fstype
        n = setup.pages
        if not 1 <= n <= MAX_PAGES:
            raise SetupError(f"the explorer works on 1 to {MAX_PAGES} pages, not {n}")
        if len(setup.tasks) > MAX_TASKS:
            raise SetupError(f"at most {MAX_TASKS} accessor tasks, not {len(setup.tasks)}")
        anonymous = setup.anonymous
        self.world = World(
            registry=registry,
            nodes=2,
            # Each node: the pages, their new pages and the accessors' (6 a page),
            # and room to read back every file whole (page i is page i of its file).
            node_pages=max(32, 6 * n + 16 + n * (n + 1) // 2),
            page_size=setup.page_size,
            io_latency=setup.io_latency,
            semantics=setup.semantics,
            swap_slots=4 * n + 8 if anonymous else 0,
            seed=0,
            commit_interval=setup.commit_interval,
        )
        kernel = self.world.kernel
        self.sb: SuperBlock | None = None
        if anonymous:
            if self.world.kernel.swapper_space is None:  # pragma: no cover - swapon above
                raise SetupError("no swap device")
        else:
            self.sb = self.world.mount(fstype, setup.mode, block_size=setup.block_size)
        self.out_of_line = (
            setup.out_of_line
            and self.sb is not None
            and out_of_line_applies(fstype, setup.mode, self.sb, setup.page_size)
        )
        self.table: AddressSpaceOperations = (
            kernel.swapper_space.a_ops  # type: ignore[union-attr]
            if anonymous
            else self.sb.a_ops  # type: ignore[union-attr]
        )
        self.pages = Pages(n)
        self.views: list[tuple[File, int, Mm, Vma]] = []
        self.truncated: set[int] = set()
        self.rt = Runtime()
        self.targets: list[Target] = []
        on: list[list[Accessor]] = [[] for _ in range(n)]
        for spec in setup.tasks:
            if not 0 <= spec.page < n:
                raise SetupError(f"task {spec}: there are pages 0 to {n - 1}")
            on[spec.page].append(accessor(spec.name))
        for i in range(n):
            with _allocating_on(kernel, source_node(i)):
                self.targets.append(self._build_page(i, on[i]))
        first = self.targets[0].prepared.page
        bh = first.private if first.flags & PG.private else None
        self.buffers_per_page = 0 if bh is None else setup.page_size // bh.b_size
        self.tasks: list[tuple[str, Task, int, object]] = []
        for spec in setup.tasks:
            acc = accessor(spec.name)
            target = self.targets[spec.page]
            body = make_body(spec.name, self, target, self.rt)
            mask = self.pages.all if acc.whole_mount else 1 << spec.page
            self.tasks.append((str(spec), kernel.new_task(str(spec)), mask, body))
        self.moves: list[tuple[PageList, PageList, int]] = []
        self.places: list[tuple[int, Places]] = []
        isolated = list(self.world.from_)
        for nid in (SOURCE_NODE, TARGET_NODE):
            pfns = {t.prepared.page.pfn for t in self.targets if t.node == nid}
            if not pfns:
                continue
            from_ = PageList(f"from node {nid}")
            for page in isolated:
                if page.pfn in pfns:
                    list_del(page)
                    list_add_tail(page, from_)
            dest = target_node(nid)
            self.moves.append((from_, self.world.new_pages(len(pfns), dest), dest))
            before = snapshot_places(self.world, nid)
            self.places.append((dest, before.select(_held_by(pfns))))

    def __repr__(self) -> str:
        return f"<ExploredWorld {self.setup.fs}:{self.setup.mode} {self.setup.pages} pages>"

    @property
    def kernel(self) -> Kernel:
        """The machine."""
        return self.world.kernel

    def _spec(self, i: int, accs: Sequence[Accessor]) -> PageSpec:
        spec = page_spec(
            i,
            accs,
            writable=self.table.writepage is not None,
            anonymous=self.setup.anonymous,
        )
        return attrs.evolve(spec, out_of_line=True) if self.out_of_line else spec

    def _build_page(self, i: int, accs: Sequence[Accessor]) -> Target:
        spec = attrs.evolve(self._spec(i, accs), index=file_index(i, self.setup.anonymous))
        try:
            prepared = self.world.make_page(spec, on=self.sb)
            if prepared.inode is not None:
                self._fill_before(self.world.record_of(prepared.inode), spec.index)
        except (SetupError, ValueError) as exc:
            raise SetupError(f"page {i} ({spec}): {exc}") from exc
        pages = self.pages
        pages.by_pfn[prepared.page.pfn] = i
        if prepared.inode is not None:
            record: File | Area = self.world.record_of(prepared.inode)
            pages.add(prepared.inode.i_mapping, i)
        else:
            record = self.world.areas[-1]
            vma = record.vma
            if vma.anon_vma is not None:
                pages.add(vma.anon_vma, i)
            swapper = self.world.kernel.swapper_space
            if swapper is not None:
                pages.add(swapper, i)
        if prepared.mm is not None:
            pages.add(prepared.mm, i)
        return Target(i, prepared, record, prepared.spec.index, source_node(i), target_node(i))

    def _fill_before(self, record: File, index: int) -> None:
        """Give the file's pages before ``index`` their data: on disk, not in the page cache.

        The builder puts only the explored page's own blocks on disk.  A
        table with nothing to write back to (no ``writepage``) that takes
        ``write(2)`` (ramfs) reads zeroes from the disk, and one with no
        ``readpage`` reads nothing: their file's other pages are put in the
        page cache instead, where they stay (they are not migrated).
        """
        if index == 0:
            return
        world = self.world
        inode = record.inode
        table = inode.i_mapping.a_ops
        ps = world.page_size
        if (
            table.writepage is None
            and table.prepare_write is not None
            and table.commit_write is not None
        ):
            generic_file_write(inode, 0, world.expected_range(record, 0, index))
            return
        if table.readpage is None:
            # Nothing reads it from the disk (a buffer-cache mapping of
            # xfs_buftarg's): in the page cache, as the builder makes such a page.
            for i in range(index):
                page = grab_cache_page(inode.i_mapping, i)
                if page is None:
                    raise SetupError(f"node {self.kernel.alloc_nid} is out of pages")
                world.oracle.write_frame(page, world.expected(record, i))
                page.flags |= PG.uptodate
                set_page_dirty(page)  # nothing to write it back to: only memory holds it
                unlock_page(page)
                put_page(page)
            return
        bdev = inode.i_sb.s_bdev
        bs = bdev.block_size
        per_page = ps // bs
        for i in range(index):
            data = world.expected(record, i)
            for j in range(per_page):
                blocknr = inode.blocks[i * per_page + j]
                if blocknr:
                    bdev.write(blocknr, data[j * bs : (j + 1) * bs])

    def register_process(self, mm: Mm, index: int) -> None:
        """A process of page ``index`` (its locks belong to that page)."""
        self.pages.add(mm, index)

    def journal(self) -> object | None:
        """The mount's journal (something with ``commit()``), or ``None``."""
        info = None if self.sb is None else self.sb.s_fs_info
        return info if callable(getattr(info, "commit", None)) else None

    def stale_data(self, record: File | Area, rindex: int, data: bytes) -> str | None:
        """Why ``data`` is no version of that page the world ever wrote, or ``None``."""
        contents = self.world.contents
        stamp = contents.identify(data)
        cindex = record.first + rindex if isinstance(record, Area) else rindex
        if (
            stamp is not None
            and stamp.this_seed
            and (stamp.owner, stamp.index) == (record.owner, cindex)
            and stamp.gen <= (record.gens[rindex] if rindex < len(record.gens) else stamp.gen)
            and data == contents.page(record.owner, cindex, stamp.gen)
        ):
            return None
        if data and data.count(data[0]) == len(data):
            if data[0] == POISON_BYTE:
                return f"{len(data)} bytes of {POISON_BYTE:#04x} (a freed frame's poison)"
            if data[0] == 0:
                return f"{len(data)} bytes of 0x00 (zeroes: no version of the page was there)"
            return f"{len(data)} bytes of {data[0]:#04x}"
        return "bytes that are no version of the page"

    def stale_block(self, record: File | Area, rindex: int, offset: int, data: bytes) -> str | None:
        """Why ``data``, a block at ``offset`` in that page, is no version of it, or ``None``."""
        contents = self.world.contents
        cindex = record.first + rindex if isinstance(record, Area) else rindex
        newest = record.gens[rindex] if rindex < len(record.gens) else 0
        end = offset + len(data)
        for gen in range(newest, -1, -1):
            if contents.page(record.owner, cindex, gen)[offset:end] == data:
                return None
        if data and all(b == data[0] for b in data):
            return f"{len(data)} bytes of {data[0]:#04x}"
        return "bytes that are no version of that block"


def check_setup(setup: Setup, fstype: FileSystemType, info: TableInfo) -> None:
    """Refuse tasks that do not apply to the table's pages.

    Raises:
        ConfigError: a task does not apply, saying why.
    """
    for spec in setup.tasks:
        why = applies(accessor(spec.name), fstype, setup.mode, info)
        if why is not None:
            raise ConfigError(f"task {spec.name}: {why}")
