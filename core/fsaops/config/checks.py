"""The rules a scenario must keep: on the file alone, and against the loaded plugins.

:func:`static_problems` checks what the file says on its own (ranges, and
rules between keys); :func:`check_config` checks it against the plugins
(filesystems, modes, block sizes, whether the pages fit).  A problem is a
sentence naming the key (``mount[1].mode: ...``); :func:`raise_problems`
turns them into one :class:`~fsaops.errors.ConfigError` naming the file.
"""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING, Final

from fsaops.config.schema import (
    MAX_FILES,
    MAX_NODE_PAGES,
    MAX_NODES,
    MAX_PROCESSES,
    MAX_SWAP_SLOTS,
    MAX_TICKS,
    MAX_TIMEOUT,
    Config,
    MountConfig,
    WorkloadConfig,
)
from fsaops.config.sizes import format_size
from fsaops.errors import ConfigError
from fsaops.plugins import PluginStatus

if TYPE_CHECKING:
    from fsaops.aops import FileSystemType
    from fsaops.plugins import Registry

__all__ = ["MAX_PROBLEMS", "check_config", "page_cache_pages", "raise_problems", "static_problems"]

MAX_PROBLEMS: Final = 3
"""Problems one error message lists; it counts the rest."""


def message(source: str, problems: list[str]) -> str:
    """``source: problem; problem; problem; and 2 more problems``."""
    shown = "; ".join(problems[:MAX_PROBLEMS])
    more = len(problems) - MAX_PROBLEMS
    if more > 0:
        shown += f"; and {more} more problem{'s' if more > 1 else ''}"
    return f"{source}: {shown}"


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
    if not 0 <= k.timeout <= MAX_TIMEOUT:
        problems.append(
            f"kernel.timeout: expected a number of seconds from 0 (no limit) to {MAX_TIMEOUT}, "
            f"got {k.timeout:g}"
        )

    load = config.plugins.load
    if load is not None:
        seen: set[str] = set()
        for i, name in enumerate(load):
            if name in seen:
                problems.append(f"plugins.load[{i}]: plugin {name!r} is named twice")
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

    _in_range(problems, "swap.slots", config.swap.slots, 0, MAX_SWAP_SLOTS)
    procs = config.processes
    count_ok = _in_range(problems, "processes.count", procs.count, 0, MAX_PROCESSES)
    _in_range(problems, "processes.anon_pages", procs.anon_pages, 0)
    if count_ok and procs.count == 0 and procs.anon_pages > 0:
        problems.append(
            f"processes.anon_pages: {procs.anon_pages} anonymous pages need at least one "
            "process (processes.count = 0)"
        )

    w = config.workload
    _in_range(problems, "workload.seed", w.seed, 0)
    for state in WorkloadConfig.STATES:
        value = config.fraction(state)
        if not 0.0 <= value <= 1.0:
            problems.append(f"workload.{state}: expected a fraction from 0 to 1, got {value!r}")
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
    for info in registry.plugins:
        if info.name == mount.fs and info.status is not PluginStatus.LOADED:
            selected = ", ".join(registry.selection) or "none"
            problems.append(
                f"{key}.fs: filesystem {mount.fs!r} comes from plugin {info.label}, which is "
                f"{info.status.value} (selected plugins: {selected})"
            )
            return None
    close = difflib.get_close_matches(mount.fs, list(registry.filesystems), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    problems.append(f"{key}.fs: unknown filesystem {mount.fs!r}{hint} (loaded: {loaded})")
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


def check_config(config: Config, registry: Registry, source: str) -> None:
    """Check a scenario against the loaded plugins.

    Every mount's filesystem must be provided by a loaded plugin, in a mode
    and with a block size it has; a swap device needs the ``swap``
    filesystem; and the pages must fit on the source node.

    Raises:
        ConfigError: naming ``source``, the key and what was expected.
    """
    problems: list[str] = []
    ps = config.kernel.page_size
    total_memory_pages = config.node_pages * config.kernel.nodes
    for i, mount in enumerate(config.mount):
        key = f"mount[{i}]"
        fstype = _mount_type(problems, key, mount, registry)
        if fstype is None:
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
        if fstype.is_buffer_cache(mode) and mount.files != 1:
            problems.append(
                f"{key}.files: a {fstype.name} mount holds one buffer-cache mapping, so "
                f"files must be 1, got {mount.files}"
            )
        if not fstype.has_page_cache(mode) and mount.pages > 4 * total_memory_pages:
            problems.append(
                f"{key}.pages: {mount.pages} pages do not fit on the mount's device, which "
                f"holds {4 * total_memory_pages} pages (four times the machine's memory)"
            )
    if config.swap.slots > 0 and "swap" not in registry.filesystems:
        problems.append(
            f"swap.slots: a swap device ({config.swap.slots} slots) needs the 'swap' "
            "filesystem, which no loaded plugin provides; select the swap plugin or set "
            "swap.slots = 0"
        )
    if not problems:
        needed = page_cache_pages(config, registry) + config.processes.anon_pages
        if needed > config.node_pages:
            problems.append(
                f"mount[].pages + processes.anon_pages: {needed} pages do not fit on node "
                f"{config.migrate.from_node}, which holds {config.node_pages} "
                f"(kernel.node_memory = {format_size(config.kernel.node_memory)})"
            )
    raise_problems(source, problems)
