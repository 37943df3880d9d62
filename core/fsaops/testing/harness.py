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
hook level), and :meth:`~fsaops.world.World.migrate` runs ``migrate_pages`` over the
isolated pages (the engine level).  Everything is built through the
model's own paths (``read_cache_page``, ``generic_file_write``, the
table's ``writepage``, page faults, ``isolate_lru_page``), never by
writing a state that those paths could not produce.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterable, Iterator, Mapping
from errno import EAGAIN
from types import MappingProxyType
from typing import TYPE_CHECKING, TypeVar, cast

import attrs

from fsaops import world as _world
from fsaops.aops import AddressSpaceOperations, FileSystemType, configure_aops
from fsaops.config.effective import SWAP
from fsaops.errors import FsaopsError, describe_exception
from fsaops.fs import generic_file_write
from fsaops.kernel import Kernel
from fsaops.oracle import Oracle, UnlockedMoves
from fsaops.page import PG, Page, trylock_page
from fsaops.rmap import remove_from_swap_2616
from fsaops.semantics import DEFAULT_SEMANTICS, SEMANTICS, semantics_names
from fsaops.swap import add_to_swap
from fsaops.untouched import Untouched
from fsaops.world import EngineRun, PageSpec, PreparedPage, SetupError

if TYPE_CHECKING:
    from fsaops.fs import Inode, SuperBlock
    from fsaops.oracle import IoCounters, PageState
    from fsaops.semantics import Semantics

__all__ = [
    "CAPABILITIES",
    "EngineRun",
    "HookCall",
    "PageSpec",
    "PreparedPage",
    "SetupError",
    "Subject",
    "World",
    "buffer_heads_seen",
    "check_semantics",
    "far_indices",
    "file_sizes",
    "free_frames",
    "infer_capabilities",
    "moved_anonymous_pages_leave_the_swap_cache",
    "observed_call",
    "other_pages",
    "pages_left_by_a_write",
    "resolve_subject",
    "vm_locked_errno",
]

_T = TypeVar("_T")

# EngineRun, PageSpec, PreparedPage and SetupError live in the core's builder
# (fsaops.world); they are re-exported here, where the kit documents them.

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
        inferred: the capabilities were inferred from the table
            (:func:`~fsaops.testing.harness.infer_capabilities`), not declared.
        semantics: the release of the migration code the subject is checked
            under (``"v4"``, ``"2.6.16"``, ``"2.6.17"``: :mod:`fsaops.semantics`):
            every :class:`World` built for it runs that release's kernel, and
            every expected outcome follows that release.
    """

    fstype: FileSystemType
    mode: str
    capabilities: frozenset[str] = frozenset()
    block_size: int | None = None
    origin: str = "given directly"
    inferred: bool = False
    semantics: str = DEFAULT_SEMANTICS

    @property
    def release(self) -> Semantics:
        """The :class:`~fsaops.semantics.Semantics` the subject is checked under."""
        return SEMANTICS[self.semantics]

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
        """``ext3 mode journal (ext3_journalled_aops)``, ``under 2.6.16`` after it if not V4."""
        what = f"{self.fstype.name} mode {self.mode} ({self.fstype.aops(self.mode).name})"
        if self.semantics != DEFAULT_SEMANTICS:
            what += f" under {self.semantics}"
        return what


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
    try:
        names = frozenset(capabilities)
    except TypeError:
        raise SetupError(f"capabilities must be a set of names, not {capabilities!r}") from None
    unknown = sorted(n for n in names if n not in CAPABILITIES)
    if unknown:
        known = ", ".join(sorted(CAPABILITIES))
        raise SetupError(f"unknown capability {unknown[0]!r} (known: {known})")
    return names


def check_semantics(semantics: object) -> str:
    """Validate the name of a release of the migration code; returns it.

    Raises:
        SetupError: it is not the name of a release :mod:`fsaops.semantics`
            models (the message lists them).
    """
    if not isinstance(semantics, str) or semantics not in SEMANTICS:
        raise SetupError(f"unknown kernel semantics {semantics!r} (known: {semantics_names()})")
    return semantics


def resolve_subject(
    filesystem: str | FileSystemType,
    mode: str | None = None,
    capabilities: Iterable[str] = (),
    *,
    plugin: str | None = None,
    block_size: int | None = None,
    semantics: str = DEFAULT_SEMANTICS,
) -> Subject:
    """Find the filesystem type under test and check the rest of the subject.

    ``semantics`` names the release of the migration code the subject is
    checked under (:mod:`fsaops.semantics`; default ``"v4"``).

    A name is resolved through the real plugin loader with only one plugin
    selected: ``plugin`` (an entry-point name), or the filesystem's own
    name.  A :class:`~fsaops.FileSystemType` is used as it is, so a plugin
    can be tested before it is installed.

    Raises:
        SetupError: the filesystem is neither a name nor a type, ``plugin``
            is not one name, the plugin is not installed or does not
            provide the filesystem, the mode or block size does not exist,
            or a capability or the semantics is unknown.
    """
    if not isinstance(filesystem, (str, FileSystemType)):
        raise SetupError(
            f"filesystem must be a filesystem's name or a FileSystemType, not {filesystem!r}"
        )
    if not (plugin is None or isinstance(plugin, str)):
        raise SetupError(
            "plugin must be the entry-point name of the one plugin that provides the "
            f"filesystem, not {plugin!r}"
        )
    caps = check_capabilities(capabilities)
    release = check_semantics(semantics)
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
    return Subject(fstype, chosen, caps, block_size, origin, semantics=release)


# -- calls -----------------------------------------------------------------------------


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
        moved_unlocked: the old page's buffer heads the call moved to the new
            page without their lock held, by their place in the ring
            (:class:`~fsaops.oracle.UnlockedMoves`).
        sizes_before: every file's size (``i_size``) just before the call
            (:func:`file_sizes`).
        others_before: every other page in use on the machine (neither of
            the two the call was handed) just before the call
            (:func:`other_pages`).
        free_before: every free frame of the machine with its bytes just
            before the call (:func:`free_frames`).
        allocs_before: the machine's page allocations (``pgalloc``) just
            before the call: a free frame the call took and gave back was
            its own for a while.
        engine: the engine made the call, inside ``migrate_pages``
            (:meth:`World.watching_migratepage`), rather than the suite
            directly: what it must have returned is for the page's list
            at the end of the run to say.
        untouched_before: what migration must leave alone outside the two
            pages, just before the call (:class:`~fsaops.untouched.Untouched`).
    """

    rc: object
    prepared: PreparedPage
    newpage: Page
    old_before: PageState
    new_before: PageState
    io_before: IoCounters
    moved_unlocked: tuple[int, ...] = ()
    sizes_before: tuple[tuple[Inode, int], ...] = ()
    others_before: tuple[PageState, ...] = ()
    free_before: tuple[tuple[Page, bytes], ...] = ()
    allocs_before: int = 0
    engine: bool = False
    untouched_before: Untouched | None = None

    @property
    def page(self) -> Page:
        """The old page."""
        return self.prepared.page


def other_pages(oracle: Oracle, kernel: Kernel, *skip: Page) -> tuple[PageState, ...]:
    """A snapshot of every page in use on ``kernel`` but ``skip``, in frame order.

    Read before a call, to compare with afterwards: ``migratepage`` is
    handed two locked pages, and every other page, its flags, references,
    contents and buffers, is its owners' (whoever holds its lock, or the
    buffer's); a table that changes one reaches past the pages it was
    given (:func:`~fsaops.testing.promises.hook_others_untouched`).
    """
    index = oracle.index(kernel)
    return tuple(
        oracle.snapshot(page, index=index)
        for node in kernel.nodes
        for page in node.pages
        if page.count and all(page is not other for other in skip)
    )


def free_frames(kernel: Kernel) -> tuple[tuple[Page, bytes], ...]:
    """Every free frame of ``kernel`` with its bytes, in frame order.

    Read before a call, to compare with afterwards: a free frame is no
    one's, and a table that writes into one corrupts what the allocator
    hands out next (:func:`~fsaops.testing.promises.hook_others_untouched`).
    """
    frames: list[tuple[Page, bytes]] = []
    for node in kernel.nodes:
        mem = bytes(node.mem)  # the node's memory, read once
        size, shift, start = node.page_size, node.page_shift, node.start_pfn
        for page in node.pages:
            if not page.count:
                off = (page.pfn - start) << shift
                frames.append((page, mem[off : off + size]))
    return tuple(frames)


def file_sizes(kernel: Kernel) -> tuple[tuple[Inode, int], ...]:
    """Every file of every mount of ``kernel`` with its size (``i_size``), in mount order.

    Read before a call or a run, to compare with afterwards: moving a page
    changes no file's size (:func:`~fsaops.testing.promises.sizes_kept`).
    """
    return tuple((inode, inode.i_size) for sb in kernel.super_blocks for inode in sb.inodes)


# -- the world ----------------------------------------------------------------------


class World(_world.World):
    """One small deterministic machine with the subject's table in use.

    The core's builder (:class:`fsaops.world.World`), its kernel running
    the subject's release of the migration code (:attr:`Subject.semantics`),
    with the subject mounted as ``subject`` (or serving the swap cache): :meth:`make_page`
    builds pages of that table, and :meth:`call_migratepage` calls its
    ``migratepage`` as the engine would.

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
        super().__init__(nodes=nodes, node_pages=node_pages, seed=seed, semantics=subject.semantics)
        self.subject = subject
        self.sb: SuperBlock | None = None
        if subject.has("swap_cache"):
            self.swapon(swap_slots, subject.fstype, subject.mode)
        else:
            self.sb = self.mount(
                subject.fstype, subject.mode, block_size=subject.block_size, name="subject"
            )
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

    # -- building ---------------------------------------------------------------

    def new_file(self) -> Inode:
        """An empty file on the subject's mount."""
        if self.sb is None:
            raise SetupError(f"{self.subject.describe()} serves the swap cache: it has no files")
        self._files += 1
        return self.create_file(self.sb, key=f"subject/file{self._files}").inode

    def make_page(
        self, spec: PageSpec | str | None = None, *, on: SuperBlock | None = None
    ) -> PreparedPage:
        """Build one page of the subject's table in the state ``spec`` describes.

        Raises:
            SetupError: the subject cannot be in that state (for example
                ``writeback`` without the ``writeback`` capability).
        """
        if isinstance(spec, str):
            spec = PageSpec.parse(spec)
        subject = self.subject
        if subject.has("no_page_cache"):
            raise SetupError(
                f"capability 'no_page_cache': {subject.describe()} keeps no pages in the page cache"
            )
        if spec is not None and spec.writeback and not subject.has("writeback"):
            raise SetupError(
                f"a page under writeback needs capability 'writeback' ({subject.describe()} "
                "does not declare it)"
            )
        if self.sb is not None or subject.fstype.name == SWAP:
            return super().make_page(spec, on=self.sb if on is None else on)
        # Another type's table declared to serve the swap cache: say so when it cannot.
        try:
            return super().make_page(spec, on=on)
        except SetupError:
            raise
        except Exception as exc:  # the table's own code, used on anonymous memory
            raise SetupError(_swap_cache_failure(subject, spec, exc)) from exc

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
        return observed_call(self.oracle, prepared, newpage, migratepage)

    @contextlib.contextmanager
    def watching_migratepage(self, judge: Callable[[HookCall], _T]) -> Iterator[list[_T]]:
        """Judge every call the engine makes to the table's ``migratepage`` while in the block.

        Yields the list ``judge``'s verdicts are appended to, in order, one
        a call, each given a :class:`HookCall` (``engine`` set) taken as
        :meth:`call_migratepage` takes one: the state of both pages, the
        write counters, every file's size, every other page and every free
        frame just before the call.  ``judge`` runs the moment the call
        returns, before the engine unlocks the pages or goes on.  A page the
        world did not build (not in ``prepared``) is described by its index
        alone.  Every mapping of the subject's mount (and the swap cache)
        calls a recording ``migratepage`` until the block ends; what the
        calls return is what the table returned.
        """
        table = self.table
        migratepage = table.migratepage
        calls: list[_T] = []
        if migratepage is None:
            yield calls
            return
        hook: Callable[[Page, Page], object] = migratepage

        def recording(newpage: Page, page: Page) -> int:
            prepared = self._prepared_for(page)
            call = observed_call(self.oracle, prepared, newpage, hook, engine=True)
            calls.append(judge(call))
            if isinstance(call.rc, BaseException):
                raise call.rc
            return cast("int", call.rc)  # what the table returned, as it is: the engine judges it

        watched = attrs.evolve(table, migratepage=recording)
        mappings = [
            inode.i_mapping
            for sb in self.kernel.super_blocks
            for inode in sb.inodes
            if inode.i_mapping.a_ops is table
        ]
        swapper = self.kernel.swapper_space
        if swapper is not None and swapper.a_ops is table:
            mappings.append(swapper)
        for mapping in mappings:
            mapping.a_ops = watched
        try:
            yield calls
        finally:
            for mapping in mappings:
                if mapping.a_ops is watched:
                    mapping.a_ops = table

    def _prepared_for(self, page: Page) -> PreparedPage:
        """The page as the world built it, or one described by its index and frame alone."""
        for prepared in self.prepared:
            if prepared.page is page:
                return prepared
        return PreparedPage(page, PageSpec(index=page.index), self.oracle.frame(page))


def observed_call(
    oracle: Oracle,
    prepared: PreparedPage,
    newpage: Page,
    migratepage: Callable[[Page, Page], object],
    *,
    engine: bool = False,
) -> HookCall:
    """Call ``migratepage(newpage, prepared.page)`` (both pages locked), with the state around it.

    What it raised (an :class:`Exception`) is the call's ``rc``.
    """
    page = prepared.page
    kernel = page.node.kernel
    old_before = oracle.snapshot(page)
    new_before = oracle.snapshot(newpage)
    io_before = oracle.io(kernel)
    sizes_before = file_sizes(kernel)
    others_before = other_pages(oracle, kernel, page, newpage)
    free_before = free_frames(kernel)
    allocs_before = kernel.vmstat.pgalloc
    untouched_before = Untouched.snapshot(kernel)
    ring = [state.bh for state in old_before.ring or ()]
    moves = UnlockedMoves(ring, newpage)
    rc: object
    try:
        rc = migratepage(newpage, page)
    except Exception as exc:  # a failed page to the engine (EIO); the promises say why
        rc = exc
    finally:
        moved = moves.stop()
    unlocked = tuple(i for i, bh in enumerate(ring) if bh in moved)
    return HookCall(
        rc,
        prepared,
        newpage,
        old_before,
        new_before,
        io_before,
        unlocked,
        sizes_before,
        others_before,
        free_before,
        allocs_before,
        engine,
        untouched_before,
    )


def far_indices(page_shift: int = 12) -> tuple[int, ...]:
    """The page indexes past which a table's arithmetic on a page's index changes.

    The second page of a file (1); past ext2's direct (12) and single
    indirect blocks at 1 KiB blocks (block 268: page 67 with 4 KiB pages)
    and at 4 KiB blocks (block 1036); past its double indirect blocks at 1
    KiB blocks (block 65804: page 16451); and the last page whose byte
    offset (``index << PAGE_SHIFT``) does not fit in 32 bits (``2**20``
    with 4 KiB pages).
    """
    page = 1 << page_shift
    pages = [1]
    for block_size, blocks in ((1024, 12 + 256), (4096, 12 + 1024), (1024, 12 + 256 + 256**2)):
        pages.append(-(-blocks * block_size // page))
    past_32_bits = 1 << (32 - page_shift)
    return (*pages, past_32_bits)


def vm_locked_errno(semantics: str) -> int:
    """What ``migratepage`` returns for a page mapped in a ``VM_LOCKED`` area, by release.

    ``try_to_unmap`` refuses such a page (KERNEL-SPEC §5.2): V4's unmap
    step gives ``migrate_page_remove_references``' 1, which its callers
    turn into ``-EAGAIN`` until the passes run out; from 2.6.16 it is
    ``-EPERM``, a permanent failure (§3's error table, §9.5).  Read from
    the model itself: the release's unmap step
    (:attr:`~fsaops.semantics.Semantics.unmap`) is run on a page of a
    ``VM_LOCKED`` area of a scratch kernel of that release.
    """
    rc = _vm_locked_probe(semantics)
    return -EAGAIN if rc > 0 else rc


@functools.cache
def _vm_locked_probe(semantics: str) -> int:
    """What the release's unmap step returns for a page in a ``VM_LOCKED`` area."""
    kernel = Kernel(nodes=1, node_pages=4, semantics=semantics)
    mm = kernel.new_mm(name="probe")
    vma = mm.mmap_anon(1, locked=True)
    mm.write(vma.vm_start * kernel.page_size, b"\0")
    page = mm.ptes[vma.vm_start].page
    if page is None or not trylock_page(page):
        raise SetupError(f"cannot probe {semantics}'s unmap step: no page in a VM_LOCKED area")
    return kernel.semantics.unmap(page)


def moved_anonymous_pages_leave_the_swap_cache(release: Semantics) -> bool:
    """Whether ``migrate_page`` takes a moved anonymous page out of the swap cache.

    From 2.6.16 ``migrate_page`` calls ``remove_from_swap(newpage)`` after
    the copy (:attr:`~fsaops.semantics.Semantics.remove_from_swap_caller`),
    and that release's ``remove_from_swap``
    (:func:`~fsaops.rmap.remove_from_swap_2616`) points the process's swap
    ptes at the new page again and deletes it from the swap cache
    (KERNEL-SPEC §9.4).  V4 calls it from ``migrate_pages`` instead, where
    it does nothing for a page without present ptes: the new page stays in
    the swap cache behind swap ptes.
    """
    return (
        release.remove_from_swap_caller == "migrate_page"
        and release.remove_from_swap is remove_from_swap_2616
    )


def expected_hook_outcome(subject: Subject, spec: PageSpec) -> str:
    """What ``migratepage`` must do with a page: ``moved``, ``eagain``, ``eperm`` or ``refused``.

    Derived from KERNEL-SPEC §5.1-3 and §7, under the subject's release
    (:attr:`Subject.semantics`): a page with a reference nobody accounts
    for or without a mapping cannot move now (``-EAGAIN``; the reference
    count is checked before the page is unmapped); one mapped in a
    ``VM_LOCKED`` area cannot move now in V4 (``-EAGAIN``) and never from
    2.6.16 (``-EPERM``, :func:`vm_locked_errno`); a refusing table refuses
    everything.
    """
    if subject.has("refuses"):
        return "refused"
    if spec.pinned or spec.truncated:
        return "eagain"
    if spec.mlocked:
        return "eagain" if vm_locked_errno(subject.semantics) == -EAGAIN else "eperm"
    return "moved"


def expected_engine_outcome(subject: Subject, spec: PageSpec) -> str:
    """Where ``migrate_pages`` must leave such a page: ``moved``, ``failed`` or ``from``.

    Derived from KERNEL-SPEC §3, under the subject's release
    (:attr:`Subject.semantics`, :mod:`fsaops.semantics`): a refusing
    table's pages fail for good; a pinned page gets ``-EAGAIN`` in every
    pass; one in a ``VM_LOCKED`` area too in V4, and fails for good with
    ``-EPERM`` from 2.6.16 (:func:`vm_locked_errno`).  Without
    ``migratepage`` the fallback's ``pageout`` keeps a dirty page that is
    mapped (``page_count - PagePrivate != 2``) or that the table cannot
    write (no ``writepage``), so that page stays too; from 2.6.17 the
    fallback unmaps the page first
    (:attr:`~fsaops.semantics.Semantics.fallback_unmaps`), so a mapped
    page is written and moves, a page dirty only in its pte is dirty by
    then (and stays if the table cannot write it), and a ``VM_LOCKED`` one
    fails there and then.
    """
    if subject.has("refuses"):
        return "failed"
    release = subject.release
    fallback = subject.has("no_migratepage")
    permanent = vm_locked_errno(subject.semantics) != -EAGAIN
    if fallback and release.fallback_unmaps and spec.mlocked and permanent:
        return "failed"
    if spec.pinned:
        return "from"
    # From 2.6.17 the fallback's unmap puts a dirty pte's bit on the page before PageDirty.
    dirty = spec.dirty or (spec.pte_dirty and release.fallback_unmaps)
    kept_dirty = (
        fallback
        and dirty
        and not spec.writeback
        and ((spec.mapped and not release.fallback_unmaps) or subject.table.writepage is None)
    )
    if spec.mlocked:
        return "failed" if permanent and not kept_dirty else "from"
    if kept_dirty:
        return "from"
    return "moved"


def _swap_cache_failure(subject: Subject, spec: PageSpec | None, exc: BaseException) -> str:
    """Why a table declared ``swap_cache`` could not build an anonymous page: a sentence."""
    return (
        f"capability 'swap_cache' is declared, but {subject.table.name} of {subject.fstype.name} "
        f"cannot serve the swap cache: building {'a clean' if spec is None else 'a ' + str(spec)} "
        f"anonymous page in it failed with {describe_exception(exc)}; leave 'swap_cache' out "
        "to test the table's file pages"
    )


_BUFFER_PROBES: tuple[tuple[str, PageSpec], ...] = (
    ("a dirty page", PageSpec(dirty=True, seed=2)),
    ("a page written in part through prepare_write", PageSpec(partial=True, seed=3)),
    ("a page whose blocks are out of line", PageSpec(out_of_line=True, seed=4)),
)


def buffer_heads_seen(world: World, clean: PreparedPage) -> str | None:
    """Which page of the world's table carries buffer heads, if any: ``a dirty page``.

    A table may attach buffers only on write (``mpage_readpage`` reads a
    clean page without them, ``block_prepare_write`` attaches them), or
    only to a page whose blocks do not follow on on the disk (ext2
    ``nobh``'s "confused" pages, read through ``block_read_full_page``), so
    the clean cached page ``clean`` is looked at first, then a dirty page,
    a page written in part through ``prepare_write`` and a clean page whose
    blocks are out of line are built in ``world``.  ``None``: none of them
    carries buffer heads.
    """
    if clean.page.flags & PG.private:
        return "a cached page"
    for what, spec in _BUFFER_PROBES:
        if spec.partial and (world.sb is None or world.table.prepare_write is None):
            continue
        try:
            prepared = world.make_page(spec)
        except FsaopsError:
            continue  # a state this table cannot be in
        if prepared.page.flags & PG.private:
            return what
    return None


def pages_left_by_a_write(subject: Subject) -> int:
    """How many pages a ``write(2)`` of three pages and a bit leaves in the page cache.

    The file is written on a small machine with the subject mounted; a mode
    that executes in place leaves none.

    Raises:
        FsaopsError: the write failed.
    """
    world = World(attrs.evolve(subject, capabilities=subject.capabilities - {"no_page_cache"}))
    inode = world.new_file()
    data = world.contents.pages(world.owner("subject/io"), 0, 4)[: 3 * world.page_size + 100]
    generic_file_write(inode, 0, data)
    mapping = inode.i_mapping
    return mapping.nrpages or sum(1 for slot in mapping.page_tree if slot is not None)


def infer_capabilities(subject: Subject) -> frozenset[str]:
    """The capabilities a subject shows when probed on a small machine.

    ``no_migratepage`` comes from the table; ``no_page_cache`` from the
    type's flag, when writing a file leaves no page in the page cache
    either (a mode whose type says it keeps none, but that does, has its
    pages tested); ``buffers`` from whether pages of the table carry buffer
    heads (a clean cached page, a dirty one, or one written in part
    through ``prepare_write``: :func:`buffer_heads_seen`); ``refuses`` from
    what ``migratepage`` does with a clean page; ``writeback`` from whether
    a dirty page can be put under writeback.  ``swap_cache`` is the
    ``swap`` filesystem's (the type the kernel's ``swapon`` takes the swap
    cache's table from), or kept as declared.
    """
    found = set(subject.capabilities & {"swap_cache"})
    if subject.fstype.name == SWAP:
        found.add("swap_cache")
    table = subject.table
    if table.migratepage is None:
        found.add("no_migratepage")
    if not subject.fstype.has_page_cache(subject.mode):
        try:
            left = 0 if "swap_cache" in found else pages_left_by_a_write(subject)
        except FsaopsError:
            left = 0  # test_capabilities_match_the_table says why the write failed
        if not left:
            found.add("no_page_cache")
            return frozenset(found)
    probe = attrs.evolve(subject, capabilities=frozenset(found | {"writeback"}))
    world = World(probe)
    prepared = world.make_page(PageSpec())
    if buffer_heads_seen(world, prepared) is not None:
        found.add("buffers")
    if table.migratepage is not None:
        rc = world.call_migratepage(prepared).rc
        if isinstance(rc, Exception):  # the engine fails such a page with EIO; say why here
            raise SetupError(
                f"inferring the capabilities of {table.name}: its migratepage raised "
                f"{describe_exception(rc)} on a clean page, where it must return 0 or a "
                "negative errno (the engine fails the page with EIO); declare the class's "
                "capabilities to run the other promises anyway"
            )
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
