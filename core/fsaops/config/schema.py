"""The scenario's schema: one frozen attrs class per TOML table, and the built-in scenario.

Each field carries its description in its attrs metadata
(``metadata["doc"]``), which is where the configuration reference comes from
(``fsaops.config.reference``).
"""

from __future__ import annotations

from typing import ClassVar, Final

import attrs

from fsaops.config.sizes import MiB

MAX_NODES: Final = 64
"""The most NUMA nodes a scenario may have."""
MAX_NODE_PAGES: Final = 1 << 20
"""The most page frames one node may have (every frame is a Python object)."""
MAX_SWAP_SLOTS: Final = 1 << 22
"""The most slots a swap device may have."""
MAX_PROCESSES: Final = 4096
"""The most processes a scenario may start."""
MAX_FILES: Final = 1 << 16
"""The most files one mount may hold."""
MAX_TICKS: Final = 1_000_000
"""The longest I/O latency, in ticks."""
MAX_COMMIT_INTERVAL: Final = 1_000_000_000
"""The longest time between a journal's commits, in ticks."""
MAX_TIMEOUT: Final = 1_000_000
"""The longest wall-clock limit of a run, in seconds (``kernel.timeout``, ``--timeout``)."""

MAX_SEED: Final = 2**64 - 1
"""The largest seed (``workload.seed``, ``--seed``, a report's, as ``fsaops diff`` reads it)."""

BUILTIN_SOURCE: Final = "<built-in scenario>"
"""How messages and reports name the built-in scenario."""


class ByteSize(int):
    """A size in bytes, written in TOML as an integer or a string such as ``"64MiB"``."""


def _doc(text: str) -> dict[str, str]:
    return {"doc": text}


# -- the configuration classes ------------------------------------------------


@attrs.frozen
class KernelConfig:
    """``[kernel]``: the machine.

    Defaults: migration built in, 2 nodes of 64 MiB, 4096-byte pages, no
    per-page invariant checks, I/O completing 4 ticks after it is submitted,
    the V4 series' semantics, no time limit.
    """

    migration: bool = attrs.field(
        default=True,
        metadata=_doc(
            "CONFIG_MIGRATION. With false, no operations table has migratepage, "
            "and `fsaops migrate` stops with ENOSYS."
        ),
    )
    nodes: int = attrs.field(default=2, metadata=_doc(f"Number of NUMA nodes, 1 to {MAX_NODES}."))
    node_memory: ByteSize = attrs.field(
        default=ByteSize(64 * MiB),
        metadata=_doc(
            'Memory of each node: bytes, or a size such as "64MiB". A whole number of '
            f"pages, at most {MAX_NODE_PAGES} pages per node."
        ),
    )
    page_size: ByteSize = attrs.field(
        default=ByteSize(4096),
        metadata=_doc("Bytes per page: a power of two from 512 to 65536."),
    )
    debug_vm: bool = attrs.field(
        default=False,
        metadata=_doc(
            "CONFIG_DEBUG_VM: check every invariant after every page the engine tries "
            "(slow); the first broken one names the page, its table and the path taken. "
            "`fsaops migrate --debug-vm` turns it on for one run."
        ),
    )
    strict: bool = attrs.field(
        default=False,
        metadata=_doc(
            "Findings fail the run: wrong but lossless behaviour of a table's migratepage "
            "(writing a dirty page back, -EAGAIN for a page that could move, copied flags "
            "lost, buffers left locked, a bad return) ends `fsaops migrate` with exit 1 and "
            "status `findings`. Turns on the per-page checks that find them. "
            "`fsaops migrate --strict` turns it on for one run."
        ),
    )
    io_latency: int = attrs.field(
        default=4,
        metadata=_doc(
            "Ticks from submitting a write to its completion (how long a page stays "
            "under writeback). The engine yields one tick per page it tries."
        ),
    )
    commit_interval: int = attrs.field(
        default=1_000_000,
        metadata=_doc(
            "Ticks between a journalling filesystem's commits (ext3's commit=, five "
            "seconds): buffers written into the journal stay in its running transaction "
            "that long. The default is far longer than any migration here, as five seconds "
            "are to the kernel's; a sync (settling the build, the durability proof) "
            "commits at once."
        ),
    )
    semantics: str = attrs.field(
        default="v4",
        metadata=_doc(
            'Which release of the migration code the kernel runs: "v4" (the V4 series on '
            '2.6.15-rc1-mm2, Nov 2005), "2.6.16" or "2.6.17". They differ in how pages '
            "are unmapped, whether migrated anonymous pages get real ptes back or keep "
            "swap ptes (V4: read back through a minor fault), whether VM_LOCKED pages stay "
            "behind with EAGAIN (v4) or fail with EPERM (2.6.16, 2.6.17), and how many new "
            "pages each migrate_pages call gets (v4: one). `fsaops migrate --semantics` "
            "overrides it."
        ),
    )
    timeout: float = attrs.field(
        default=0.0,
        metadata=_doc(
            "Wall-clock limit of the whole run (building, migrating, reading back), in "
            f"seconds, at most {MAX_TIMEOUT:,}; 0: no limit. When it passes, the run ends "
            "with exit status 1 and status `timeout`, naming the page being migrated and "
            "its table (or what the run was doing). `fsaops migrate --timeout` overrides it."
        ),
    )


@attrs.frozen
class PluginsConfig:
    """``[plugins]``: which plugins load.

    ``--plugins`` on the command line and the ``FSAOPS_PLUGINS`` environment
    variable take precedence over this table.
    """

    load: tuple[str, ...] | None = attrs.field(
        default=None,
        metadata=_doc(
            'Entry-point names of the plugins to load, e.g. ["ext3", "swap"]. '
            "Omitted: every installed plugin. Plugins not named are never imported."
        ),
    )


@attrs.frozen
class MountConfig:
    """``[[mount]]``: one mounted filesystem and the pages of its files.

    ``fs`` is required; the other keys default to the filesystem's default
    mode and block size, one file, and 64 pages.
    """

    fs: str = attrs.field(
        metadata=_doc("Filesystem type, as a loaded plugin names it (ext2, ext3, xfs, ...).")
    )
    mode: str | None = attrs.field(
        default=None,
        metadata=_doc(
            "Mount mode; each filesystem says which it has (ext3: ordered, writeback, "
            "journal). Omitted: the filesystem's default mode."
        ),
    )
    files: int = attrs.field(
        default=1,
        metadata=_doc(
            f"Number of files, 1 to {MAX_FILES}; the pages are shared out among them. "
            "A filesystem whose pages belong to one buffer-cache mapping (xfs_buftarg) "
            "has exactly one."
        ),
    )
    pages: int = attrs.field(
        default=64,
        metadata=_doc(
            "Pages of file data. They are page-cache pages on the source node, except on "
            "execute-in-place mounts (ext2 xip), whose data stays on the device."
        ),
    )
    block_size: ByteSize | None = attrs.field(
        default=None,
        metadata=_doc(
            "Filesystem block size in bytes (so page_size / block_size buffer heads per "
            "page); one the filesystem takes. Omitted: the filesystem's default."
        ),
    )


@attrs.frozen
class SwapConfig:
    """``[swap]``: the swap device (``swapon``); its cache uses the swap plugin's table.

    Default: 4096 slots when the swap plugin is loaded, none otherwise.
    """

    slots: int | None = attrs.field(
        default=None,
        metadata=_doc(
            "Slots of one page each; 0 for no swap device. Anonymous pages migrate "
            "through the swap cache, so without swap they cannot migrate (ENOMEM). "
            "Omitted: 4096 when the swap plugin is loaded, else 0; above 0 it needs "
            "the swap plugin."
        ),
    )


@attrs.frozen
class ProcessesConfig:
    """``[processes]``: processes holding anonymous memory and mapping file pages.

    Default: one process, with 256 pages of anonymous memory when the swap
    plugin is loaded (anonymous memory migrates through its swap cache).
    """

    count: int = attrs.field(
        default=1,
        metadata=_doc(
            f"Number of processes, 0 to {MAX_PROCESSES}. Mapped and mlocked file pages "
            "are mapped by these processes."
        ),
    )
    anon_pages: int | None = attrs.field(
        default=None,
        metadata=_doc(
            "Pages of anonymous memory, shared out among the processes, all touched "
            "(present on the source node). Omitted: 256 when the swap plugin is loaded "
            "and there is a process, else 0; above 0 it needs the swap plugin."
        ),
    )


@attrs.frozen
class WorkloadConfig:
    """``[workload]``: the state of the pages when migration starts.

    Each fraction is of the pages that can be in that state (file pages, or
    file and anonymous pages, as each says; the metadata pages of a
    buffer-cache mapping can only be locked or pinned), and each page gets
    at most one state.  States are given out in the order
    mlocked, swapout, pinned, locked, writeback, dirty, mapped,
    buffer_locked, released, partial, holes, so when fractions add up to more than the pages
    there are, the later states get fewer.  Every fraction defaults to 0: clean,
    unmapped pages that nothing holds.
    """

    seed: int = attrs.field(
        default=0,
        metadata=_doc(
            "Seed of the run, from 0 to 2**64 - 1: which pages get which state, the data "
            "written into them, and the timing of other tasks. `--seed` overrides it."
        ),
    )
    dirty: float = attrs.field(
        default=0.0,
        metadata=_doc(
            "Fraction of file pages rewritten and left dirty (newer than the disk), "
            "chosen among files whose table has a writepage (a table without one, such "
            "as a RAM filesystem's, never cleans its pages: they are all dirty anyway). "
            "On data-journalling mounts they are dirtied through a shared mapping."
        ),
    )
    writeback: float = attrs.field(
        default=0.0,
        metadata=_doc(
            "Fraction of file pages rewritten and handed to their table's writepage, so "
            "the write is still in flight (kernel.io_latency ticks). On ext3 data=journal "
            "the page's buffers go into the running transaction instead: the page is clean, "
            "with no PG_writeback, until the journal commits (kernel.commit_interval)."
        ),
    )
    locked: float = attrs.field(
        default=0.0,
        metadata=_doc(
            "Fraction of pages whose page lock another task holds for a while (up to "
            "twice as many ticks as there are pages to migrate)."
        ),
    )
    buffer_locked: float = attrs.field(
        default=0.0,
        metadata=_doc(
            "Fraction of the file pages that carry buffer heads once read in, one of "
            "whose buffers another task holds locked, as a write of that block in flight "
            "does: until a task first meets the lock (sleeps on it, or tries it), then for "
            "1 to kernel.io_latency ticks (one nobody meets is let go of when migration "
            "ends). As it is let go of, the write ends: the block gets the bytes of the "
            "frame it was submitted from, poison if that frame was freed meanwhile. The "
            "page itself is unlocked; buffer_migrate_page sleeps on each "
            "buffer's lock before it moves the buffers, and the generic fallback cannot "
            "release a locked buffer, so such a page stays behind with EAGAIN. A scenario "
            "none of whose file "
            "pages carries buffer heads (ext2 nobh reads pages without them, unless "
            "workload.out_of_line) is bad input."
        ),
    )
    released: float = attrs.field(
        default=0.0,
        metadata=_doc(
            "Fraction of the file pages that carry buffer heads once read in, whose buffers "
            "reclaim released (try_to_release_page, as shrink_list does before it finds the "
            "page still in use and keeps it in the page cache): clean, up-to-date pages of a "
            "buffered table with no buffer heads, as the kernel's mpage_readpage reads a page "
            "whose blocks follow on. buffer_migrate_page hands such a page to migrate_page, "
            "which must still copy it. A scenario none of whose file pages carries buffer "
            "heads is bad input, as for buffer_locked."
        ),
    )
    partial: float = attrs.field(
        default=0.0,
        metadata=_doc(
            "Fraction of the file pages with blocks smaller than a page, of a table that can "
            "write (prepare_write), that reclaim dropped from the page cache and that were then "
            "written anew: their other blocks straight to the disk (as O_DIRECT does), one "
            "block with write(2), which brought the page back dirty and not up to date, with "
            "one mapped, up-to-date, dirty buffer (whose new bytes are only in memory), its "
            "other buffers unread, and the rest of its frame holding whatever the frame held "
            "(poison under --debug-vm). A page whose table reads the rest in "
            "(ext2 nobh's nobh_prepare_write) ends up to date: it is written back, clean as a "
            "page no state took, and not counted; a scenario where no page stays written in "
            "part is bad input."
        ),
    )
    holes: float = attrs.field(
        default=0.0,
        metadata=_doc(
            "Fraction of the file pages with blocks smaller than a page, of a table that can "
            "read and write them back (readpage and writepage), with at least two blocks "
            "inside the file, whose blocks after the first are holes (the file was written "
            "with them skipped), and which a process then maps shared and writes through the "
            "mapping: the page is read in with those buffers up to date and mapping no block "
            "(a table that reads without buffer heads zeroes them in the frame), and the data "
            "stored there is only in memory until writepage gives them blocks of their own. "
            "A scenario none of whose file pages can have a hole is bad input."
        ),
    )
    pinned: float = attrs.field(
        default=0.0,
        metadata=_doc(
            "Fraction of pages on which another task holds an extra reference for the "
            "whole migration (they stay behind with EAGAIN)."
        ),
    )
    pinned_dirty: float = attrs.field(
        default=0.0,
        metadata=_doc(
            "Fraction of the pinned pages, among those of files whose table has a "
            "writepage, rewritten and left dirty (as dirty's are) before the pin: dirty "
            "pages every migratepage call gives up on, which go back to the LRU and must "
            "still be written back. A modifier of pinned, not a state of its own."
        ),
    )
    swapout_dirty: float = attrs.field(
        default=0.0,
        metadata=_doc(
            "Fraction of the swapout pages, among those of files whose table has a "
            "writepage, rewritten and left dirty (as dirty's are) before they are "
            "isolated: dirty pages swap-out must write out (swap_page's pageout, the "
            "table's writepage for reclaim) before it drops them. A modifier of swapout, "
            "not a state of its own."
        ),
    )
    released_dirty: float = attrs.field(
        default=0.0,
        metadata=_doc(
            "Fraction of the released pages, among those of files whose table has a "
            "writepage, stored into through a shared mapping and left dirty (as dirty's "
            "are) once their buffer heads are freed: dirty pages with no buffer heads on "
            "a table that uses them, which migratepage must move dirty as they are. A "
            "modifier of released, not a state of its own."
        ),
    )
    dirty_written: float = attrs.field(
        default=0.0,
        metadata=_doc(
            "Fraction of the dirty pages rewritten with write(2) (the table's "
            "prepare_write and commit_write) instead of through a shared mapping: ext3 "
            "data=ordered files their dirty buffers in the running transaction as ordered "
            "data, which the commit writes. On data=journal, where write(2) leaves the page "
            "clean with its buffers in the journal, the page is then also dirtied through a "
            "mapping. A modifier of dirty, not a state of its own."
        ),
    )
    mapped: float = attrs.field(
        default=0.0,
        metadata=_doc(
            "Fraction of file pages mapped shared into a process and written through "
            "the mapping (the newest data is only in memory)."
        ),
    )
    mapped_shared: float = attrs.field(
        default=0.0,
        metadata=_doc(
            "Fraction of the mapped pages also mapped by a second process, which reads them "
            "through its own shared mapping: a page with two ptes, both of which "
            "try_to_unmap must remove. Needs two processes. A modifier of mapped, not a "
            "state of its own."
        ),
    )
    tail: float = attrs.field(
        default=0.0,
        metadata=_doc(
            "Fraction of each mount's files (those read in from their disk) that end inside "
            "their last page, a little short of half of it: the page's blocks past the end "
            "are holes, whose buffers map no block, and the page reads zeroes past the end, "
            "where a process's stores through a mapping are not kept. A modifier of files, "
            "not a state of pages: the last page gets its own state as any other."
        ),
    )
    mlocked: float = attrs.field(
        default=0.0,
        metadata=_doc(
            "Fraction of file and anonymous pages mapped in VM_LOCKED areas "
            "(they stay behind with EAGAIN in the V4 engine)."
        ),
    )
    swapout: float = attrs.field(
        default=0.0,
        metadata=_doc(
            "Fraction of file and anonymous pages migrated by swap-out instead "
            "(migrate_pages with no target pages: written out, dropped, and faulted "
            "back in on the target node when read)."
        ),
    )

    out_of_line: bool = attrs.field(
        default=False,
        metadata=_doc(
            "Give each file's blocks in turn with another file's on the same mount, so no "
            "two blocks of a page follow on on the disk: a table that reads pages from "
            "runs of blocks reads every such page through buffer heads (ext2 nobh's "
            '"confused" pages, which then carry them). Off: each file\'s blocks follow '
            "on. A mount whose blocks are as large as a page is left as it is."
        ),
    )

    #: The state fractions, in the order pages are given out.
    STATES: ClassVar[tuple[str, ...]] = (
        "mlocked",
        "swapout",
        "pinned",
        "locked",
        "writeback",
        "dirty",
        "mapped",
        "buffer_locked",
        "released",
        "partial",
        "holes",
    )


@attrs.frozen
class FaultsConfig:
    """``[faults]``: fault injection while migration runs; all off by default.

    Faults are drawn from a generator seeded by the run's seed, so a run
    with faults is still reproducible.
    """

    alloc_fail: float = attrs.field(
        default=0.0,
        metadata=_doc(
            "Probability that allocating a page fails (a chunk of new pages that cannot "
            "be had leaves its pages behind with ENOMEM)."
        ),
    )
    writepage_error: float = attrs.field(
        default=0.0,
        metadata=_doc("Probability that a writepage fails with EIO (the page stays dirty)."),
    )
    swap_full: float = attrs.field(
        default=0.0,
        metadata=_doc("Probability that getting a swap slot fails as if the device were full."),
    )


@attrs.frozen
class MigrateConfig:
    """``[migrate]``: which node is emptied into which (default: node 0 to node 1)."""

    from_node: int = attrs.field(
        default=0, metadata=_doc("The node whose pages are migrated (the source node).")
    )
    to_node: int = attrs.field(
        default=1, metadata=_doc("The node the pages move to; not from_node.")
    )


@attrs.frozen
class Config:
    """A whole scenario: one attribute per TOML table.

    Build one with :func:`parse_config`, :func:`load_config` or
    :func:`default_config`; they check it.  ``mount`` is the array of
    ``[[mount]]`` tables, empty by default.
    """

    kernel: KernelConfig = attrs.field(
        factory=KernelConfig, metadata=_doc("The machine: nodes, memory, page size.")
    )
    plugins: PluginsConfig = attrs.field(
        factory=PluginsConfig, metadata=_doc("Which plugins load.")
    )
    mount: tuple[MountConfig, ...] = attrs.field(
        default=(), metadata=_doc("The mounted filesystems ([[mount]] tables).")
    )
    swap: SwapConfig = attrs.field(factory=SwapConfig, metadata=_doc("The swap device."))
    processes: ProcessesConfig = attrs.field(
        factory=ProcessesConfig, metadata=_doc("Processes and their anonymous memory.")
    )
    workload: WorkloadConfig = attrs.field(
        factory=WorkloadConfig, metadata=_doc("Page states when migration starts.")
    )
    faults: FaultsConfig = attrs.field(
        factory=FaultsConfig, metadata=_doc("Fault injection during migration.")
    )
    migrate: MigrateConfig = attrs.field(
        factory=MigrateConfig, metadata=_doc("Source and target node.")
    )

    @property
    def node_pages(self) -> int:
        """Page frames per node."""
        return self.kernel.node_memory // self.kernel.page_size

    @property
    def swap_slots(self) -> int:
        """Slots of the swap device; 0 for none, or while the key is left out.

        :func:`~fsaops.config.effective_config` fills a key left out in.
        """
        return self.swap.slots or 0

    @property
    def anon_pages(self) -> int:
        """Pages of anonymous memory; 0 while the key is left out.

        :func:`~fsaops.config.effective_config` fills a key left out in.
        """
        return self.processes.anon_pages or 0

    builtin: ClassVar[bool] = False
    """Whether this is the built-in scenario (:func:`~fsaops.config.default_config`), not a file.

    The built-in scenario is cut to fit the selected plugins, and names the
    parts it left out; a scenario file keeps every part it names.  It
    travels with the scenario (``attrs.evolve`` keeps it), whatever the
    scenario is called: a file may be named as the built-in scenario is.
    """

    def fraction(self, state: str) -> float:
        """The workload fraction of ``state`` (one of :attr:`WorkloadConfig.STATES`)."""
        value: float = getattr(self.workload, state)
        return value


@attrs.frozen(eq=False)
class BuiltinConfig(Config):
    """The built-in scenario: a :class:`Config` whose :attr:`~Config.builtin` is true.

    Equal to the same scenario read from a file (the scenario is the same;
    only how it is checked against the plugins differs).
    """

    builtin: ClassVar[bool] = True

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Config):
            return NotImplemented
        return all(
            getattr(self, field.name) == getattr(other, field.name)
            for field in attrs.fields(Config)
        )

    def __ne__(self, other: object) -> bool:
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    def __hash__(self) -> int:
        return Config.__hash__(self)


DEFAULT_SCENARIO: Final = """\
# The built-in scenario of `fsaops migrate`: all five built-in plugins,
# every mount mode that has page-cache pages, every workload state, so that
# every path of the V4 engine is taken at least once.

[kernel]
migration = true
nodes = 2
node_memory = "32MiB"
page_size = 4096
io_latency = 24
# kjournald commits every 64 ticks, far more often than ext3's five seconds
# would: ext3 data=journal pages, which V4 can move only once the journal has
# committed their buffers, then take the writeback path too.
commit_interval = 64

[plugins]
load = ["ext2", "ext3", "xfs", "swap", "xfs_buftarg"]

[[mount]]
fs = "ext2"
mode = "default"
files = 4
pages = 320
block_size = 1024

[[mount]]
fs = "ext2"
mode = "nobh"
files = 2
pages = 160

[[mount]]
fs = "ext2"
mode = "xip"
files = 1
pages = 32

[[mount]]
fs = "ext3"
mode = "ordered"
files = 4
pages = 320
block_size = 2048

[[mount]]
fs = "ext3"
mode = "writeback"
files = 2
pages = 160

[[mount]]
fs = "ext3"
mode = "journal"
files = 4
pages = 320
block_size = 1024

[[mount]]
fs = "xfs"
files = 4
pages = 320

[[mount]]
fs = "xfs_buftarg"
pages = 96

[swap]
slots = 4096

[processes]
count = 4
anon_pages = 960

[workload]
seed = 42
dirty = 0.3
writeback = 0.05
locked = 0.02
pinned = 0.01
mapped = 0.25
mlocked = 0.01
swapout = 0.02
buffer_locked = 0.02
released = 0.02
partial = 0.02
holes = 0.02
dirty_written = 0.5
mapped_shared = 0.2
tail = 0.25

[faults]
alloc_fail = 0.0
writepage_error = 0.0

[migrate]
from_node = 0
to_node = 1
"""
"""The built-in scenario ``fsaops migrate`` runs when no file is given, as TOML."""
