"""The rules a scenario must keep: on the file alone, and against the loaded plugins.

:func:`static_problems` checks what the file says on its own (ranges, and
rules between keys); :func:`check_config` checks it against the plugins
(filesystems, modes, block sizes, whether the pages fit).  A problem is a
sentence naming the key (``mount[1].mode: ...``); :func:`raise_problems`
turns them into one :class:`~fsaops.errors.ConfigError` naming the file.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Final

from fsaops.config.effective import SWAP
from fsaops.config.schema import (
    MAX_COMMIT_INTERVAL,
    MAX_FILES,
    MAX_NODE_PAGES,
    MAX_NODES,
    MAX_PROCESSES,
    MAX_SEED,
    MAX_SWAP_SLOTS,
    MAX_TICKS,
    MAX_TIMEOUT,
    Config,
    MountConfig,
    WorkloadConfig,
)
from fsaops.config.sizes import MiB, format_size
from fsaops.errors import ConfigError, did_you_mean, shown, shown_path
from fsaops.semantics import SEMANTICS, semantics_names

if TYPE_CHECKING:
    from fsaops.aops import FileSystemType
    from fsaops.plugins import Registry

__all__ = [
    "MAX_PROBLEMS",
    "address_space_limit",
    "address_space_needed",
    "check_config",
    "machine_memory",
    "memory_needed",
    "memory_problem",
    "page_cache_pages",
    "raise_problems",
    "static_problems",
]

MAX_PROBLEMS: Final = 3
"""Problems one error message lists; it counts the rest."""


def message(source: str, problems: list[str]) -> str:
    """``source: problem; problem; problem; and 2 more problems``."""
    said = "; ".join(problems[:MAX_PROBLEMS])
    more = len(problems) - MAX_PROBLEMS
    if more > 0:
        said += f"; and {more} more problem{'s' if more > 1 else ''}"
    return f"{shown_path(source)}: {said}"


def raise_problems(source: str, problems: list[str]) -> None:
    """Raise one :class:`~fsaops.errors.ConfigError` naming ``source``, if there are problems."""
    if problems:
        raise ConfigError(message(source, problems))


# -- checks on the file alone ---------------------------------------------------


def _in_range(problems: list[str], key: str, value: int, low: int, high: int | None = None) -> bool:
    if value < low or (high is not None and value > high):
        want = f"from {low} to {high}" if high is not None else f"of at least {low}"
        problems.append(f"{key}: expected an integer {want}, got {value}")
        return False
    return True


def static_problems(config: Config) -> list[str]:
    """What is wrong with a scenario on its own: ranges, and rules between keys."""
    problems: list[str] = []
    k = config.kernel
    _in_range(problems, "kernel.nodes", k.nodes, 1, MAX_NODES)
    ps = k.page_size
    page_size_ok = 512 <= ps <= 65536 and not ps & (ps - 1)
    if not page_size_ok:
        problems.append(f"kernel.page_size: expected a power of two from 512 to 65536, got {ps}")
    if k.node_memory <= 0:
        problems.append(f"kernel.node_memory: expected a positive size, got {k.node_memory}")
    elif page_size_ok:
        if k.node_memory % ps:
            problems.append(
                f"kernel.node_memory: {format_size(k.node_memory)} is not a whole number of "
                f"{ps}-byte pages"
            )
        elif k.node_memory // ps > MAX_NODE_PAGES:
            problems.append(
                f"kernel.node_memory: {format_size(k.node_memory)} is {k.node_memory // ps} "
                f"pages; a node holds at most {MAX_NODE_PAGES}"
            )
    _in_range(problems, "kernel.io_latency", k.io_latency, 1, MAX_TICKS)
    _in_range(problems, "kernel.commit_interval", k.commit_interval, 1, MAX_COMMIT_INTERVAL)
    if k.semantics not in SEMANTICS:
        problems.append(
            f"kernel.semantics: unknown semantics {k.semantics!r} "
            f"(expected one of {semantics_names()})"
        )
    if not 0 <= k.timeout <= MAX_TIMEOUT:
        problems.append(
            f"kernel.timeout: expected a number of seconds from 0 (no limit) to {MAX_TIMEOUT}, "
            f"got {_number(k.timeout)}"
        )

    load = config.plugins.load
    if load is not None:
        seen: set[str] = set()
        for i, name in enumerate(load):
            if name in seen:
                problems.append(f"plugins.load[{i}]: plugin {shown(name)} is named twice")
            seen.add(name)

    for i, mount in enumerate(config.mount):
        key = f"mount[{i}]"
        if not mount.fs:
            problems.append(f"{key}.fs: expected a filesystem name, got an empty string")
        _in_range(problems, f"{key}.files", mount.files, 1, MAX_FILES)
        _in_range(problems, f"{key}.pages", mount.pages, 0)
        bs = mount.block_size
        if bs is not None:
            if bs < 512 or bs & (bs - 1):
                problems.append(
                    f"{key}.block_size: expected a power of two of at least 512, got {bs}"
                )
            elif page_size_ok and bs > ps:
                problems.append(
                    f"{key}.block_size: {bs} is larger than the page size (kernel.page_size = {ps})"
                )

    if config.swap.slots is not None:
        _in_range(problems, "swap.slots", config.swap.slots, 0, MAX_SWAP_SLOTS)
    procs = config.processes
    count_ok = _in_range(problems, "processes.count", procs.count, 0, MAX_PROCESSES)
    if procs.anon_pages is not None:
        _in_range(problems, "processes.anon_pages", procs.anon_pages, 0)
    if count_ok and procs.count == 0 and procs.anon_pages:
        problems.append(
            f"processes.anon_pages: {procs.anon_pages} anonymous pages need at least one "
            "process (processes.count = 0)"
        )

    w = config.workload
    _in_range(problems, "workload.seed", w.seed, 0, MAX_SEED)
    for state in WorkloadConfig.STATES:
        value = config.fraction(state)
        if not 0.0 <= value <= 1.0:
            problems.append(f"workload.{state}: expected a fraction from 0 to 1, got {value!r}")
    for name in (
        "pinned_dirty",
        "swapout_dirty",
        "released_dirty",
        "dirty_written",
        "mapped_shared",
        "tail",
    ):
        value = getattr(w, name)
        if not 0.0 <= value <= 1.0:
            problems.append(f"workload.{name}: expected a fraction from 0 to 1, got {value!r}")
    if count_ok and procs.count == 1 and w.mapped_shared > 0:
        problems.append(
            "workload.mapped_shared: mapping a page in a second process needs at least two "
            "processes (processes.count = 1)"
        )
    if count_ok and procs.count == 0:
        for state in ("mapped", "mlocked"):
            if config.fraction(state) > 0:
                problems.append(
                    f"workload.{state}: mapping pages needs at least one process "
                    "(processes.count = 0)"
                )
    for name in ("alloc_fail", "writepage_error", "swap_full"):
        value = getattr(config.faults, name)
        if not 0.0 <= value <= 1.0:
            problems.append(f"faults.{name}: expected a probability from 0 to 1, got {value!r}")

    m = config.migrate
    nodes_ok = 1 <= k.nodes <= MAX_NODES
    for name, nid in (("from_node", m.from_node), ("to_node", m.to_node)):
        if nodes_ok and not 0 <= nid < k.nodes:
            problems.append(
                f"migrate.{name}: node {nid} does not exist (kernel.nodes = {k.nodes}: "
                f"nodes 0 to {k.nodes - 1})"
            )
    if m.from_node == m.to_node:
        problems.append(
            f"migrate.to_node: the target node must differ from the source node "
            f"(both are {m.to_node})"
        )
    return problems


# -- checks against the plugins ---------------------------------------------------


def _mount_type(
    problems: list[str], key: str, mount: MountConfig, registry: Registry
) -> FileSystemType | None:
    fstype = registry.filesystems.get(mount.fs)
    if fstype is not None:
        return fstype
    loaded = ", ".join(sorted(registry.filesystems)) or "none"
    # Only a plugin known to provide it is named (a built-in one): the name of
    # another's entry point says nothing of what it provides, and it was not imported.
    info = registry.provider(mount.fs)
    if info is not None:
        problems.append(
            f"{key}.fs: filesystem {shown(mount.fs)} comes from plugin {info.label}, which "
            f"{registry.unused(info)}"
        )
        return None
    hint = did_you_mean(mount.fs, registry.filesystems)
    problems.append(
        f"{key}.fs: unknown filesystem {shown(mount.fs)}{hint} (loaded: {loaded})"
        f"{registry.unselected_hint()}"
    )
    return None


def page_cache_pages(config: Config, registry: Registry) -> int:
    """How many page-cache pages the mounts put on the source node."""
    total = 0
    for mount in config.mount:
        fstype = registry.filesystems.get(mount.fs)
        if fstype is None:
            continue
        mode = fstype.default_mode if mount.mode is None else mount.mode
        if mode in fstype.modes and fstype.has_page_cache(mode):
            total += mount.pages
    return total


def check_config(
    config: Config,
    registry: Registry,
    source: str,
    *,
    available: int | None = None,
    builtin: bool | None = None,
) -> None:
    """Check a scenario against the loaded plugins and the machine.

    Every mount's filesystem must be provided by a loaded plugin, in a mode
    and with a block size it has; a swap device and anonymous memory need
    the ``swap`` filesystem; the pages must fit on the source node; and the
    memory the run will touch must fit in the memory the machine (or this
    process's address-space limit) can give, ``available`` bytes if given.
    Keys left out of the file follow the selection first
    (:func:`effective_config`).  The workload's states are checked against
    the pages unless ``builtin`` (default: :attr:`Config.builtin`): the
    built-in scenario, cut to fit the selection, names what it left out.

    Raises:
        ConfigError: naming ``source``, the key and what was expected.
    """
    problems: list[str] = []
    ps = config.kernel.page_size
    for i, mount in enumerate(config.mount):
        key = f"mount[{i}]"
        fstype = _mount_type(problems, key, mount, registry)
        if fstype is None:
            continue
        if fstype.name == SWAP:
            problems.append(
                f"{key}.fs: swap is not a filesystem to mount: its table is the swap cache's, "
                "for anonymous memory (set swap.slots and processes.anon_pages instead)"
            )
            continue
        mode = fstype.default_mode if mount.mode is None else mount.mode
        problem = fstype.mode_problem(mode)
        if problem is not None:
            problems.append(f"{key}.mode: {problem}")
            continue
        bs = fstype.default_block_size if mount.block_size is None else mount.block_size
        problem = fstype.block_size_problem(bs, ps)
        if problem is not None:
            problems.append(f"{key}.block_size: {problem}")
        table = fstype.aops(mode)
        if (
            mount.pages
            and fstype.has_page_cache(mode)
            and not fstype.is_buffer_cache(mode)
            and (table.readpage is None or table.writepage is None)
            and (table.prepare_write is None or table.commit_write is None)
        ):
            # What the scenario's builder needs (Scenario._fill_mount): a file's
            # data on disk, read in; or, with nothing to write back to, write(2).
            problems.append(
                f"{key}: {fstype.name} mode {mode} keeps pages in the page cache, and its "
                f"table {table.name} can neither read pages in and write them back "
                "(readpage, writepage) nor take write(2) (prepare_write, commit_write), and "
                f"{fstype.name} has no read_metadata to fill it as a buffer cache: no file of "
                "it can be given data (a mode that executes in place says so: "
                f"page_cache = {{{mode!r}: false}} on its FileSystemType)"
            )
        if fstype.is_buffer_cache(mode) and mount.files != 1:
            problems.append(
                f"{key}.files: each mount of {fstype.name} holds one buffer-cache mapping, so "
                f"files must be 1, got {mount.files}"
            )
    swap_loaded = "swap" in registry.filesystems
    slots = config.swap.slots or 0
    if slots > 0 and not swap_loaded:
        problems.append(
            f"swap.slots: a swap device ({slots} slots) needs the 'swap' "
            "filesystem, which no loaded plugin provides; select the swap plugin or set "
            "swap.slots = 0"
        )
    anon = config.processes.anon_pages or 0
    if anon > 0 and not swap_loaded:
        problems.append(
            f"processes.anon_pages: {anon} pages of anonymous memory migrate through the "
            "swap cache, whose table the 'swap' filesystem provides, and no loaded plugin "
            "provides it; select the swap plugin or set processes.anon_pages = 0"
        )
    if not problems:
        needed = page_cache_pages(config, registry) + anon
        if needed > config.node_pages:
            problems.append(
                f"mount[].pages + processes.anon_pages: {needed} pages do not fit on node "
                f"{config.migrate.from_node}, which holds {config.node_pages} "
                f"(kernel.node_memory = {format_size(config.kernel.node_memory)})"
            )
    if builtin is None:
        builtin = config.builtin
    if not problems and not builtin:
        problems.extend(_workload_problems(config, registry))
    if not problems:
        problem = memory_problem(config, registry, available)
        if problem is not None:
            problems.append(problem)
    raise_problems(source, problems)


#: What each workload state is called on a page, and which pages can take it
#: (``None``: any page): what :class:`~fsaops.scenario.Scenario` gives out.
_STATE_PAGES: Final = {
    "mlocked": ("mlocked", "a file page in the page cache or an anonymous page"),
    "swapout": ("swapped out", "a file page in the page cache or an anonymous page"),
    "pinned": ("pinned", None),
    "locked": ("locked", None),
    "writeback": ("under writeback", "a file page whose table has a writepage"),
    "dirty": ("dirty", "a file page in the page cache"),
    "mapped": ("mapped", "a file page in the page cache"),
    "buffer_locked": (
        "buffer-locked",
        "a file page in the page cache that carries buffer heads once read in",
    ),
    "released": (
        "released of its buffer heads",
        "a file page in the page cache that carries buffer heads once read in",
    ),
    "partial": (
        "written in part",
        "a file page of a table with prepare_write whose blocks are smaller than a page",
    ),
    "holes": (
        "given holes",
        "a file page of a table with readpage and writepage whose blocks are smaller than a page",
    ),
}


def _workload_problems(config: Config, registry: Registry) -> list[str]:
    """The states the workload asks for (a fraction above 0) that no page of the scenario can take.

    Decided from the plan as the scenario's builder decides it: a mount
    that executes in place has no page to give a state; a buffer-cache
    mapping's pages can only be locked or pinned; a file page can be
    buffer-locked only if it carries buffer heads once read in (which the
    builder decides, refusing a scenario where none does); it can be under
    writeback only if its table has a ``writepage`` (one without it never
    cleans its pages, which are dirty anyway); anonymous pages can be
    mlocked, swapped out, locked or pinned.  The built-in scenario, cut to
    fit the selected plugins, is not checked: it names the parts it left
    out instead.
    """
    kinds = {
        "file": 0,
        "writable": 0,
        "meta": 0,
        "in_part": 0,
        "sparse": 0,
        "anon": config.anon_pages,
    }
    parts: list[str] = []  # every page the scenario has, for the message
    for i, mount in enumerate(config.mount):
        fstype = registry.filesystems[mount.fs]
        mode = fstype.default_mode if mount.mode is None else mount.mode
        if not mount.pages:
            continue
        where = f"mount[{i}], {fstype.name} {mode}"
        if not fstype.has_page_cache(mode):
            parts.append(f"{mount.pages} pages executed in place, with no page cache ({where})")
        elif fstype.is_buffer_cache(mode):
            kinds["meta"] += mount.pages
            parts.append(f"{mount.pages} pages of buffer-cache metadata ({where})")
        elif fstype.aops(mode).writepage is None:
            kinds["file"] += mount.pages
            table = fstype.aops(mode).name
            parts.append(f"{mount.pages} file pages whose table {table} has no writepage ({where})")
        else:
            kinds["file"] += mount.pages
            kinds["writable"] += mount.pages
            parts.append(f"{mount.pages} file pages ({where})")
        if fstype.has_page_cache(mode) and not fstype.is_buffer_cache(mode):
            bs = fstype.default_block_size if mount.block_size is None else mount.block_size
            aops = fstype.aops(mode)
            if bs < config.kernel.page_size and aops.prepare_write is not None:
                kinds["in_part"] += mount.pages
            if bs < config.kernel.page_size and aops.readpage and aops.writepage:
                kinds["sparse"] += mount.pages
    if config.anon_pages:
        parts.append(f"{config.anon_pages} anonymous pages")
    pools = {
        "mlocked": kinds["file"] + kinds["anon"],
        "swapout": kinds["file"] + kinds["anon"],
        "pinned": kinds["file"] + kinds["meta"] + kinds["anon"],
        "locked": kinds["file"] + kinds["meta"] + kinds["anon"],
        "writeback": kinds["writable"],
        # A table without writepage never cleans its pages: they are dirty anyway.
        "dirty": kinds["file"],
        "mapped": kinds["file"],
        # Which of them carry buffer heads is known once they are read in.
        "buffer_locked": kinds["file"],
        "released": kinds["file"],
        "partial": kinds["in_part"],
        "holes": kinds["sparse"],
    }
    listed = ", ".join(parts[:-1]) + " and " + parts[-1] if len(parts) > 1 else "".join(parts)
    has = f"it has {listed}" if parts else "it has no pages"
    problems: list[str] = []
    for state in WorkloadConfig.STATES:
        if config.fraction(state) <= 0 or pools[state]:
            continue
        called, which = _STATE_PAGES[state]
        only = f"only {which} can, and " if which is not None else ""
        problems.append(f"workload.{state}: no page of this scenario can be {called}: {only}{has}")
    return problems


# -- what the machine can give --------------------------------------------------------

#: Python memory per page frame: its ``struct page`` object, its frame number,
#: its place in ``mem_map`` and in a free or LRU list (``fsaops bench`` measures
#: about 150 bytes; the margin covers the page tree and the allocator).
FRAME_BYTES: Final = 200
#: Python memory per page of a file or of anonymous memory, beside its frame:
#: its slot in the page tree and the block map, the content record, the
#: migration's and the proofs' accounting (measured: 1,100 to 1,350 bytes a
#: page of the end-to-end scenario, from 100,000 to a million pages).
PAGE_BYTES: Final = 1536
#: Python memory per buffer head (``fsaops bench`` measures about 136 bytes).
BUFFER_HEAD_BYTES: Final = 160
#: Python memory per block of a filesystem that holds buffers back for its
#: ``sync_fs`` (ext3's journal): the journal's record of each buffer and the
#: old page's buffers it keeps until it commits (measured: about 470 bytes a
#: block of ext3 ``ordered`` pages all under writeback).
JOURNAL_BYTES: Final = 512
#: Python memory per file: its inode, mapping, page tree and record (measured:
#: about 1,500 bytes).
FILE_BYTES: Final = 2048
#: Python memory per process: its mm, vma and page tables (measured: about 1,300 bytes).
PROCESS_BYTES: Final = 2048
#: What the interpreter, the libraries and the model's other objects take (measured:
#: 45 MiB at the peak of a run of 1,000 pages).
BASELINE_BYTES: Final = 128 << 20
#: Address space the interpreter, its libraries and threads' stacks take (measured:
#: 190 to 260 MiB), beside the memory maps of the model.
ADDRESS_SPACE_BYTES: Final = 272 << 20
#: The workload states whose pages a run writes to their device: rewritten and
#: written back, dirtied through a mapping, written out when swapped, written
#: anew in part, or stored into their holes through a mapping.
_WRITTEN_STATES: Final = (
    "dirty",
    "writeback",
    "mapped",
    "mlocked",
    "swapout",
    "partial",
    "holes",
)


def memory_needed(config: Config, registry: Registry) -> int:
    """Bytes a run of ``config`` touches at most: the frames' objects, the data, the devices.

    Every frame a node makes is an object (made as the allocator first
    reaches it, so as many as the pages in use at once, not the node's
    size), and so is every page, buffer head (and a journal's record of
    it), file and process.  A page's data is written
    on the source node; the migration commits the target node's frames a
    window ahead (``fsaops.scenario.COMMIT_AHEAD_PAGES``) and hands
    the source's back as it frees them, so the nodes hold the data once
    and that window (twice under ``debug_vm``, which hands nothing back;
    pages swapped out come back on the target node while their old frames
    stay committed).  A device holds the blocks the workload writes (the
    pages it dirties, writes back, maps or swaps out); anonymous memory may
    be written to swap and read back on the target node.  An upper bound:
    runs of every shape measured peak at 0.55 to 0.9 times it from 100,000
    pages on.
    """
    objects, data = _memory_parts(config, registry)
    return BASELINE_BYTES + objects + data


def _memory_parts(config: Config, registry: Registry) -> tuple[int, int]:
    """Bytes of the model's Python objects, and bytes of page data a run touches at most."""
    from fsaops.memory import MAKE_FRAMES
    from fsaops.scenario import COMMIT_AHEAD_PAGES

    k = config.kernel
    ps = k.page_size
    objects = sum(m.files for m in config.mount) * FILE_BYTES
    objects += config.processes.count * PROCESS_BYTES
    written = min(
        1.0,
        sum(config.fraction(state) for state in _WRITTEN_STATES)
        + config.fraction("pinned") * config.workload.pinned_dirty
        + config.fraction("swapout") * config.workload.swapout_dirty
        + config.fraction("released") * config.workload.released_dirty,
    )
    swapped = config.fraction("swapout")
    cached = 0  # pages in the page cache or anonymous memory, on the source node
    again = 0  # pages whose old frames stay committed while their new ones are written
    device = 0
    for mount in config.mount:
        fstype = registry.filesystems.get(mount.fs)
        if fstype is None:
            continue
        mode = fstype.default_mode if mount.mode is None else mount.mode
        if mode not in fstype.modes:
            continue
        bs = fstype.default_block_size if mount.block_size is None else mount.block_size
        if not fstype.has_page_cache(mode):
            device += mount.pages * ps  # executed in place: the data is the device's
            continue
        cached += mount.pages
        again += math.ceil(swapped * mount.pages)
        objects += mount.pages * PAGE_BYTES
        if bs:
            device += math.ceil(written * mount.pages) * ps
            # A table that attaches none (ext2 nobh) still may, to a page it writes
            # or whose blocks are out of line: counted whole.
            objects += mount.pages * (ps // bs) * BUFFER_HEAD_BYTES
            if fstype.sync_fs is not None:
                objects += mount.pages * (ps // bs) * JOURNAL_BYTES
    anon = config.processes.anon_pages or 0
    cached += anon
    again += anon  # swapped out and read back on the target node
    objects += anon * PAGE_BYTES
    device += anon * ps  # its swap slot
    # A node makes its frames' objects as the allocator first reaches them,
    # MAKE_FRAMES at a time, and hands freed frames out again first: at most
    # the pages in use at once on it (each page once on each node, a page
    # swapped out once more), and a batch.
    made = min(k.nodes * config.node_pages, 2 * (cached + again) + k.nodes * MAKE_FRAMES)
    objects += made * FRAME_BYTES
    if k.debug_vm:
        frames = 2 * cached  # nothing goes back: every old frame keeps its poison
    else:
        frames = min(2 * cached, cached + again + COMMIT_AHEAD_PAGES)
    return objects, frames * ps + device


def address_space_needed(config: Config, registry: Registry) -> int:
    """Bytes of address space a run of ``config`` maps: its objects, and every map it reserves.

    Each node's frames, each block device and the swap device are memory
    maps of their whole size (committed only as they are touched, but
    counted whole against ``RLIMIT_AS``), beside the interpreter's own.
    """
    k = config.kernel
    ps = k.page_size
    reserved = k.nodes * config.node_pages * ps
    for mount in config.mount:
        fstype = registry.filesystems.get(mount.fs)
        if fstype is None:
            continue
        bs = fstype.default_block_size if mount.block_size is None else mount.block_size
        if bs:
            reserved += (mount.pages * (ps // bs) + mount.files + 64) * bs
    slots = config.swap_slots
    reserved += (slots + 1) * ps if slots else 0
    objects = k.nodes * config.node_pages * FRAME_BYTES
    objects += sum(m.files for m in config.mount) * FILE_BYTES
    objects += config.processes.count * PROCESS_BYTES
    for mount in config.mount:
        fstype = registry.filesystems.get(mount.fs)
        if fstype is None:
            continue
        mode = fstype.default_mode if mount.mode is None else mount.mode
        bs = fstype.default_block_size if mount.block_size is None else mount.block_size
        if mode in fstype.modes and bs:
            objects += 2 * mount.pages * (ps // bs) * BUFFER_HEAD_BYTES
    return ADDRESS_SPACE_BYTES + reserved + objects


def address_space_limit() -> int | None:
    """This process's ``RLIMIT_AS`` (``ulimit -v``) in bytes, or ``None`` when there is none."""
    try:
        import resource

        soft, _hard = resource.getrlimit(resource.RLIMIT_AS)
    except (ImportError, OSError, ValueError):
        return None
    return None if soft == resource.RLIM_INFINITY else soft


def machine_memory() -> int | None:
    """Bytes this process can still be given: the machine's available memory, or its limit.

    The smaller of ``MemAvailable`` (``/proc/meminfo``) and the room left
    under ``RLIMIT_AS``; ``None`` where neither can be read.
    """
    found: list[int] = []
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    found.append(int(line.split()[1]) * 1024)
                    break
    except (OSError, ValueError, IndexError):
        pass
    try:
        import resource

        soft, _hard = resource.getrlimit(resource.RLIMIT_AS)
        if soft != resource.RLIM_INFINITY:
            found.append(soft)
    except (ImportError, OSError, ValueError):
        pass
    return min(found) if found else None


def _mib(size: int, *, up: bool) -> str:
    """``size`` in whole MiB, rounded up (what a run needs) or down (what it may have)."""
    return f"{-(-size // MiB) if up else size // MiB} MiB"


def memory_problem(config: Config, registry: Registry, available: int | None = None) -> str | None:
    """Why the run cannot have the memory it needs (``None`` when it can, or when unknown)."""
    needed = memory_needed(config, registry)
    if available is None:
        available = machine_memory()
        limit = address_space_limit()
        space = address_space_needed(config, registry)
        if limit is not None and space > limit:
            return (
                f"kernel.node_memory, mount[].pages, mount[].files, swap.slots: out of memory: "
                f"the run maps about "
                f"{_mib(space, up=True)} of address space (both nodes' frames, the devices and "
                f"swap, reserved whole), and this process may map {_mib(limit, up=False)} "
                "(ulimit -v); use fewer or smaller nodes, fewer pages or swap slots, or a "
                "larger limit"
            )
    if available is None or needed <= available:
        return None
    return (
        f"kernel.node_memory, mount[].pages, processes.anon_pages: the run needs about "
        f"{_mib(needed, up=True)} of memory (the frames' and pages' objects, the pages' data, "
        f"the blocks written to the devices and swap), and this machine can give "
        f"{_mib(available, up=False)}; "
        "use fewer or smaller nodes, or fewer pages"
    )


def _number(value: float) -> str:
    """A number of the file as a message gives it: every digit it has (``1000000.5``).

    ``:g`` keeps six: ``1000000.5`` came out as ``1e+06``, as if the limit
    itself were refused.  A whole number is written as one (``2000000``).
    """
    if value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    return repr(value)
