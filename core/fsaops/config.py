"""Scenario configuration: a TOML file structured into frozen attrs classes.

A scenario file says which machine to build, which plugins to load, which
filesystems to mount with how many pages, how much anonymous memory the
processes hold, what state the pages are in when migration starts, which
faults to inject, and which node to empty into which::

    [kernel]
    nodes = 2
    node_memory = "64MiB"

    [[mount]]
    fs = "ext3"
    mode = "journal"
    files = 8
    pages = 2000
    block_size = 1024

    [workload]
    seed = 42
    dirty = 0.3

Every key is optional (a mount needs only its ``fs``), so an empty file is
a valid scenario: a two-node machine with swap and one process whose
anonymous memory moves from node 0 to node 1.  Each class below documents
its table; each field carries its description in its attrs metadata
(``metadata["doc"]``), which is where the configuration reference comes
from.

Checking happens in two steps.  :func:`parse_config` and
:func:`load_config` check the file on its own: TOML syntax, key names
(an unknown key is an error, so a typo is never ignored), types, ranges,
and rules between keys.  :func:`check_config` then checks it against the
loaded plugins: filesystem names, modes, block sizes, and whether the
pages fit on the source node.  Every problem raises
:class:`~fsaops.errors.ConfigError` with one line naming the file, the key
(``mount[1].mode``) and what was expected.
"""

from __future__ import annotations

import difflib
import math
import os
import re
import tomllib
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Final

import attrs
import cattrs
from cattrs.errors import (
    AttributeValidationNote,
    BaseValidationError,
    ForbiddenExtraKeysError,
    IterableValidationError,
    IterableValidationNote,
)
from cattrs.gen import make_dict_structure_fn

from fsaops.errors import ConfigError
from fsaops.plugins import PluginStatus

if TYPE_CHECKING:
    from fsaops.aops import FileSystemType
    from fsaops.plugins import Registry

__all__ = [
    "BUILTIN_SOURCE",
    "DEFAULT_SCENARIO",
    "ByteSize",
    "Config",
    "ConfigKey",
    "FaultsConfig",
    "KernelConfig",
    "MigrateConfig",
    "MountConfig",
    "PluginsConfig",
    "ProcessesConfig",
    "SwapConfig",
    "WorkloadConfig",
    "check_config",
    "default_config",
    "format_size",
    "load_config",
    "page_cache_pages",
    "parse_config",
    "parse_size",
    "reference",
    "unstructure_config",
]


KiB: Final = 1024
MiB: Final = 1024 * KiB

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
    per-page invariant checks, I/O completing 4 ticks after it is submitted.
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
    io_latency: int = attrs.field(
        default=4,
        metadata=_doc(
            "Ticks from submitting a write to its completion (how long a page stays "
            "under writeback). The engine yields one tick per page it tries."
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

    Default: 4096 slots.
    """

    slots: int = attrs.field(
        default=4096,
        metadata=_doc(
            "Slots of one page each; 0 for no swap device. Anonymous pages migrate "
            "through the swap cache, so without swap they cannot migrate (ENOMEM). "
            "Needs the swap plugin when above 0."
        ),
    )


@attrs.frozen
class ProcessesConfig:
    """``[processes]``: processes holding anonymous memory and mapping file pages.

    Default: one process with 256 pages of anonymous memory.
    """

    count: int = attrs.field(
        default=1,
        metadata=_doc(
            f"Number of processes, 0 to {MAX_PROCESSES}. Mapped and mlocked file pages "
            "are mapped by these processes."
        ),
    )
    anon_pages: int = attrs.field(
        default=256,
        metadata=_doc(
            "Pages of anonymous memory, shared out among the processes, all touched "
            "(present on the source node)."
        ),
    )


@attrs.frozen
class WorkloadConfig:
    """``[workload]``: the state of the pages when migration starts.

    Each fraction is of the pages that can be in that state (file pages, or
    file and anonymous pages, as each says; the metadata pages of a
    buffer-cache mapping can only be locked or pinned), and each page gets
    at most one state.  States are given out in the order mlocked, swapout,
    pinned, locked, writeback, dirty, mapped, so when fractions add up to
    more than the pages there are, the later states get fewer.  Every
    fraction defaults to 0: clean, unmapped pages that nothing holds.
    """

    seed: int = attrs.field(
        default=0,
        metadata=_doc(
            "Seed of the run: which pages get which state, the data written into "
            "them, and the timing of other tasks. `--seed` overrides it."
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
            "the write is still in flight (kernel.io_latency ticks)."
        ),
    )
    locked: float = attrs.field(
        default=0.0,
        metadata=_doc(
            "Fraction of pages whose page lock another task holds for a while (up to "
            "twice as many ticks as there are pages to migrate)."
        ),
    )
    pinned: float = attrs.field(
        default=0.0,
        metadata=_doc(
            "Fraction of pages on which another task holds an extra reference for the "
            "whole migration (they stay behind with EAGAIN)."
        ),
    )
    mapped: float = attrs.field(
        default=0.0,
        metadata=_doc(
            "Fraction of file pages mapped shared into a process and written through "
            "the mapping (the newest data is only in memory)."
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

    #: The state fractions, in the order pages are given out.
    STATES: ClassVar[tuple[str, ...]] = (
        "mlocked",
        "swapout",
        "pinned",
        "locked",
        "writeback",
        "dirty",
        "mapped",
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

    def fraction(self, state: str) -> float:
        """The workload fraction of ``state`` (one of :attr:`WorkloadConfig.STATES`)."""
        value: float = getattr(self.workload, state)
        return value


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

[faults]
alloc_fail = 0.0
writepage_error = 0.0

[migrate]
from_node = 0
to_node = 1
"""
"""The built-in scenario ``fsaops migrate`` runs when no file is given, as TOML."""


@attrs.frozen
class ConfigKey:
    """One key of the scenario file, for the configuration reference.

    Attributes:
        table: the TOML table (``kernel``, ``mount`` for ``[[mount]]``).
        key: the key's name.
        type: what the key takes, in words.
        default: the default as TOML would write it, or ``None`` when the
            key is required or has no default value (the filesystem's own).
        doc: the description.
    """

    table: str
    key: str
    type: str
    default: str | None
    doc: str


_TYPE_WORDS: Final[Mapping[object, str]] = {
    bool: "boolean",
    int: "integer",
    float: "number",
    str: "string",
    ByteSize: 'size (bytes, or a string such as "64MiB")',
    ByteSize | None: 'size (bytes, or a string such as "64MiB")',
    str | None: "string",
    tuple[str, ...] | None: "array of strings",
}


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, ByteSize) and value >= MiB and value % MiB == 0:
        return f'"{format_size(value).replace(" ", "")}"'
    if isinstance(value, str):
        return f'"{value}"'
    return repr(value)


def reference() -> list[ConfigKey]:
    """Every key of the scenario file with its type, default and description, in order."""
    tables: dict[str, type] = {
        "kernel": KernelConfig,
        "plugins": PluginsConfig,
        "mount": MountConfig,
        "swap": SwapConfig,
        "processes": ProcessesConfig,
        "workload": WorkloadConfig,
        "faults": FaultsConfig,
        "migrate": MigrateConfig,
    }
    keys: list[ConfigKey] = []
    for table, cls in tables.items():
        for field in attrs.fields(attrs.resolve_types(cls)):
            default: str | None
            if field.default is attrs.NOTHING or field.default is None:
                default = None
            else:
                default = _toml_value(field.default)
            keys.append(
                ConfigKey(
                    table=table,
                    key=field.name,
                    type=_TYPE_WORDS.get(field.type, str(field.type)),
                    default=default,
                    doc=field.metadata["doc"],
                )
            )
    return keys


# -- sizes ----------------------------------------------------------------------

_UNITS: Final[Mapping[str, int]] = {
    "": 1,
    "b": 1,
    "k": KiB,
    "kib": KiB,
    "m": MiB,
    "mib": MiB,
    "g": 1024 * MiB,
    "gib": 1024 * MiB,
    "t": 1024 * 1024 * MiB,
    "tib": 1024 * 1024 * MiB,
}
_SIZE_RE: Final = re.compile(r"\s*(\d+)\s*([A-Za-z]*)\s*")


def parse_size(text: str) -> int:
    """``"64MiB"`` → 67108864.

    Units are binary: ``KiB``, ``MiB``, ``GiB``, ``TiB`` (``K``, ``M``, ``G``,
    ``T`` mean the same, as on the kernel command line), ``B`` or none for
    bytes; case does not matter.

    Raises:
        ValueError: not a size.
    """
    match = _SIZE_RE.fullmatch(text)
    if match is None or match.group(2).lower() not in _UNITS:
        raise ValueError(f"not a size: {text!r}")
    return int(match.group(1)) * _UNITS[match.group(2).lower()]


def format_size(size: int) -> str:
    """67108864 → ``"64 MiB"`` (the largest binary unit that divides it)."""
    for unit, factor in (("TiB", 1024 * 1024 * MiB), ("GiB", 1024 * MiB), ("MiB", MiB)):
        if size and size % factor == 0:
            return f"{size // factor} {unit}"
    if size and size % KiB == 0:
        return f"{size // KiB} KiB"
    return f"{size} bytes"


# -- structuring ----------------------------------------------------------------


class _Expected(Exception):
    """A value of the wrong type or form; says what was expected."""

    def __init__(self, expected: str, value: object) -> None:
        self.expected = expected
        self.value = value
        super().__init__(f"expected {expected}, got {_describe(value)}")


def _describe(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"the integer {value}"
    if isinstance(value, float):
        return f"the number {value!r}"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"the string {shown!r}"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return f"a {type(value).__name__}"


def _structure_int(value: object, _: type) -> int:
    if type(value) is not int:
        raise _Expected("an integer", value)
    return value


def _structure_float(value: object, _: type) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _Expected("a number", value)
    result = float(value)
    if not math.isfinite(result):
        raise _Expected("a finite number", value)
    return result


def _structure_bool(value: object, _: type) -> bool:
    if type(value) is not bool:
        raise _Expected("true or false", value)
    return value


def _structure_str(value: object, _: type) -> str:
    if type(value) is not str:
        raise _Expected("a string", value)
    return value


_SIZE_EXPECTED: Final = 'a size: a number of bytes, or a string such as "64MiB"'


def _structure_size(value: object, _: type) -> ByteSize:
    if type(value) is int:
        return ByteSize(value)
    if type(value) is str:
        try:
            return ByteSize(parse_size(value))
        except ValueError:
            raise _Expected(_SIZE_EXPECTED, value) from None
    raise _Expected(_SIZE_EXPECTED, value)


def _is_homogeneous_tuple(cl: Any) -> bool:
    args: tuple[Any, ...] = getattr(cl, "__args__", ())
    return getattr(cl, "__origin__", None) is tuple and len(args) == 2 and args[1] is Ellipsis


def _tuple_factory(cl: Any, converter: cattrs.Converter) -> Callable[[object, type], object]:
    item_type = cl.__args__[0]
    if attrs.has(item_type):
        expected = "an array of tables"
    elif item_type is str:
        expected = "an array of strings"
    else:
        expected = "an array"

    def structure(value: object, _: type) -> tuple[object, ...]:
        if not isinstance(value, list):
            raise _Expected(expected, value)
        items: list[object] = []
        errors: list[Exception] = []
        for index, item in enumerate(value):
            try:
                items.append(converter.structure(item, item_type))
            except Exception as exc:
                exc.add_note(
                    IterableValidationNote(f"Structuring {cl} @ index {index}", index, item_type)
                )
                errors.append(exc)
        if errors:
            raise IterableValidationError(f"While structuring {cl}", errors, cl)
        return tuple(items)

    return structure


def _attrs_factory(cl: Any, converter: cattrs.Converter) -> Callable[[object, type], object]:
    inner = make_dict_structure_fn(
        cl, converter, _cattrs_forbid_extra_keys=True, _cattrs_detailed_validation=True
    )

    def structure(value: object, _: type) -> object:
        if not isinstance(value, dict):
            raise _Expected("a table", value)
        return inner(value, cl)

    return structure


def _converter() -> cattrs.Converter:
    conv = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)
    conv.register_structure_hook(int, _structure_int)
    conv.register_structure_hook(float, _structure_float)
    conv.register_structure_hook(bool, _structure_bool)
    conv.register_structure_hook(str, _structure_str)
    conv.register_structure_hook(ByteSize, _structure_size)
    conv.register_structure_hook_factory(_is_homogeneous_tuple, _tuple_factory)
    conv.register_structure_hook_factory(attrs.has, _attrs_factory)
    conv.register_unstructure_hook(ByteSize, int)
    return conv


def _format_path(path: Iterable[str | int]) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            # A hostile key is not echoed whole.
            name = f"{part[:37]}..." if len(part) > 40 else part
            out += f".{name}" if out else name
    return out


def _table_name(path: tuple[str | int, ...]) -> str:
    return _format_path(path) if path else "the top level"


def _unknown_keys(exc: ForbiddenExtraKeysError, path: tuple[str | int, ...]) -> list[str]:
    known = sorted(a.name for a in attrs.fields(exc.cl))
    problems = []
    for key in sorted(exc.extra_fields):
        close = difflib.get_close_matches(key, known, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        where = _table_name(path)
        problems.append(
            f"{_format_path((*path, key))}: unknown key{hint} ({where} takes: {', '.join(known)})"
        )
    return problems


def _flatten(exc: BaseException, path: tuple[str | int, ...]) -> list[str]:
    if isinstance(exc, ForbiddenExtraKeysError):
        return _unknown_keys(exc, path)
    if isinstance(exc, BaseValidationError):
        problems: list[str] = []
        for sub in exc.exceptions:
            sub_path = path
            for note in getattr(sub, "__notes__", ()):
                if isinstance(note, AttributeValidationNote):
                    sub_path = (*sub_path, note.name)
                elif isinstance(note, IterableValidationNote):
                    sub_path = (*sub_path, note.index)
            problems.extend(_flatten(sub, sub_path))
        return problems
    where = _format_path(path) or "the file"
    if isinstance(exc, KeyError):
        return [f"{where}: required key missing"]
    if isinstance(exc, _Expected):
        return [f"{where}: {exc}"]
    return [f"{where}: {type(exc).__name__}: {exc}"]


MAX_PROBLEMS: Final = 3
"""Problems one error message lists; it counts the rest."""


def _message(source: str, problems: list[str]) -> str:
    shown = "; ".join(problems[:MAX_PROBLEMS])
    more = len(problems) - MAX_PROBLEMS
    if more > 0:
        shown += f"; and {more} more problem{'s' if more > 1 else ''}"
    return f"{source}: {shown}"


def _raise(source: str, problems: list[str]) -> None:
    if problems:
        raise ConfigError(_message(source, problems))


# -- checks on the file alone ---------------------------------------------------


def _in_range(problems: list[str], key: str, value: int, low: int, high: int | None = None) -> bool:
    if value < low or (high is not None and value > high):
        want = f"from {low} to {high}" if high is not None else f"of at least {low}"
        problems.append(f"{key}: expected an integer {want}, got {value}")
        return False
    return True


def _static_problems(config: Config) -> list[str]:
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


MAX_FILE_BYTES = 1024 * 1024
"""A scenario file larger than this is refused unread."""


def parse_config(text: str, source: str = BUILTIN_SOURCE) -> Config:
    """Parse and check a scenario from TOML text; ``source`` names it in messages.

    Raises:
        ConfigError: not TOML, an unknown key, a value of the wrong type, or a
            value out of range; the message names ``source`` and the key.
    """
    text = text.removeprefix("\ufeff")  # a byte-order mark some editors write
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{source}: not a scenario: values are nested too deeply") from None
    except ValueError:  # an integer of more digits than Python converts
        raise ConfigError(f"{source}: not valid TOML: a number has far too many digits") from None
    try:
        config = _converter().structure(raw, Config)
    except RecursionError:
        raise ConfigError(f"{source}: not a scenario: values are nested too deeply") from None
    except Exception as exc:
        raise ConfigError(_message(source, _flatten(exc, ()))) from None
    _raise(source, _static_problems(config))
    return config


def load_config(path: str | os.PathLike[str]) -> Config:
    """Read, parse and check a scenario file.

    Raises:
        ConfigError: the file cannot be read, is not UTF-8 TOML, or is not a
            valid scenario; the message names the file and the key.
    """
    source = os.fspath(path)
    try:
        with open(source, "rb") as fp:
            data = fp.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(f"{source}: no such file") from None
    except IsADirectoryError:
        raise ConfigError(f"{source}: is a directory, not a scenario file") from None
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read: {exc.strerror or exc}") from None
    if len(data) > MAX_FILE_BYTES:
        raise ConfigError(
            f"{source}: too large for a scenario file (more than {MAX_FILE_BYTES // 1024} KiB)"
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{source}: not a TOML file: byte {exc.start} is not UTF-8 text"
        ) from None
    if "\x00" in text:
        raise ConfigError(f"{source}: not a TOML file: it holds NUL bytes (a binary file?)")
    return parse_config(text, source)


def default_config() -> Config:
    """The built-in scenario (:data:`DEFAULT_SCENARIO`)."""
    return parse_config(DEFAULT_SCENARIO, BUILTIN_SOURCE)


def unstructure_config(config: Config) -> dict[str, Any]:
    """The configuration as plain data (every default filled in), for reports."""
    data: dict[str, Any] = _converter().unstructure(config)
    return data


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
    _raise(source, problems)
