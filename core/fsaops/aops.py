"""Operation tables and filesystem types.

Kernel counterparts: ``struct address_space_operations``, ``struct file_system_type``.

A plugin describes each filesystem it provides as a :class:`FileSystemType`
with one :class:`AddressSpaceOperations` table per mount mode.  The engine
calls table members directly, as the kernel calls through its function
pointers; a member that is ``None`` is missing, as a NULL pointer is in C.
"""

from __future__ import annotations

import inspect
from types import MappingProxyType
from typing import TYPE_CHECKING, Final, Protocol

import attrs

from fsaops.errors import MAX_REASON, PluginFault, did_you_mean, shown
from fsaops.frozen import frozen_mapping

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from fsaops.fs import Inode, SuperBlock
    from fsaops.mapping import AddressSpace
    from fsaops.page import Page
    from fsaops.writeback import WritebackControl

__all__ = [
    "MAX_ERRNO",
    "MEMBERS",
    "TYPE_HOOKS",
    "AddressSpaceOperations",
    "CommitWrite",
    "FileSystemType",
    "GetXipPage",
    "InvalidatePage",
    "MigratePage",
    "PrepareWrite",
    "ReadPage",
    "ReadPages",
    "ReleasePage",
    "SetPageDirty",
    "SyncPage",
    "WritePage",
    "WritePages",
    "configure_aops",
    "returned",
]


class WritePage(Protocol):
    """``int (*writepage)(struct page *, struct writeback_control *)``.

    Called with the page locked and its dirty bit already cleared; must
    unlock the page (or return ``WRITEPAGE_ACTIVATE`` with it still locked).
    Returns 0 or a negative errno.
    """

    def __call__(self, page: Page, wbc: WritebackControl, /) -> int:
        """Call the member."""
        ...


class WritePages(Protocol):
    """``int (*writepages)(struct address_space *, struct writeback_control *)``.

    Writes the mapping's dirty pages as ``wbc`` asks (a whole-file sweep
    for a sync), each one as ``writepage`` would leave it: clean, under
    writeback, unlocked.  Optional: without it each dirty page is locked
    and handed to ``writepage`` (``do_writepages``).  Returns 0 or a
    negative errno.
    """

    def __call__(self, mapping: AddressSpace, wbc: WritebackControl, /) -> int:
        """Call the member."""
        ...


class ReadPage(Protocol):
    """``int (*readpage)(struct file *, struct page *)``, without the file.

    Called with the page locked; starts the read and unlocks the page when
    the data is in.  Returns 0 or a negative errno.
    """

    def __call__(self, page: Page, /) -> int:
        """Call the member."""
        ...


class ReadPages(Protocol):
    """``int (*readpages)(file, mapping, pages, nr_pages)``, without the file.

    Readahead's batch read: ``pages`` are new pages, each with its index
    set and one reference of the caller's, not yet in the page cache.  The
    member adds each to the page cache and the LRU, reads it and drops the
    caller's reference, leaving every page it added as ``readpage`` would.
    Optional: without it each page is added and read with ``readpage``.
    Returns 0 or a negative errno.
    """

    def __call__(self, mapping: AddressSpace, pages: Sequence[Page], /) -> int:
        """Call the member."""
        ...


class SyncPage(Protocol):
    """``int (*sync_page)(struct page *)``: kick the I/O a sleeper waits for.

    Called before each sleep on a page's lock or writeback
    (:func:`fsaops.page.sync_page`); what it returns is ignored.
    """

    def __call__(self, page: Page, /) -> object:
        """Call the member."""
        ...


class PrepareWrite(Protocol):
    """``int (*prepare_write)(file, page, from, to)``, without the file."""

    def __call__(self, page: Page, start: int, end: int, /) -> int:
        """Call the member."""
        ...


class CommitWrite(Protocol):
    """``int (*commit_write)(file, page, from, to)``, without the file."""

    def __call__(self, page: Page, start: int, end: int, /) -> int:
        """Call the member."""
        ...


class SetPageDirty(Protocol):
    """``int (*set_page_dirty)(struct page *)``: returns 1 if the page became dirty."""

    def __call__(self, page: Page, /) -> int:
        """Call the member."""
        ...


class ReleasePage(Protocol):
    """``int (*releasepage)(struct page *, gfp_t)``: free the buffers; non-zero on success."""

    def __call__(self, page: Page, gfp: int, /) -> int:
        """Call the member."""
        ...


class InvalidatePage(Protocol):
    """``int (*invalidatepage)(struct page *, unsigned long)``: the page is truncated."""

    def __call__(self, page: Page, offset: int, /) -> object:
        """Call the member."""
        ...


class GetXipPage(Protocol):
    """``get_xip_page``: the mapping executes in place, with no page cache."""

    def __call__(self, page: Page, /) -> object:
        """Call the member."""
        ...


class MigratePage(Protocol):
    """``int (*migratepage)(struct page *newpage, struct page *page)`` (added by the V4 series).

    Called with both pages locked.  Returns 0 when the page moved, or a
    negative errno: ``-EAGAIN`` to be retried on a later pass, anything
    else to fail the page for good.
    """

    def __call__(self, newpage: Page, page: Page, /) -> int:
        """Call the member."""
        ...


MEMBERS: Mapping[str, int] = MappingProxyType(
    {
        "writepage": 2,
        "readpage": 1,
        "readpages": 2,
        "writepages": 2,
        "sync_page": 1,
        "prepare_write": 3,
        "commit_write": 3,
        "set_page_dirty": 1,
        "releasepage": 2,
        "invalidatepage": 2,
        "get_xip_page": 1,
        "migratepage": 2,
    }
)
"""Every table member the model uses, with the number of arguments it is called with."""


@attrs.frozen
class AddressSpaceOperations:
    """An operations table (``struct address_space_operations``).

    ``name`` is the kernel's symbol for the table (``ext3_journalled_aops``).
    Every other field is a member, ``None`` when the table lacks it.
    """

    name: str
    writepage: WritePage | None = None
    readpage: ReadPage | None = None
    sync_page: SyncPage | None = None
    prepare_write: PrepareWrite | None = None
    commit_write: CommitWrite | None = None
    set_page_dirty: SetPageDirty | None = None
    releasepage: ReleasePage | None = None
    invalidatepage: InvalidatePage | None = None
    get_xip_page: GetXipPage | None = None
    migratepage: MigratePage | None = None
    readpages: ReadPages | None = None
    writepages: WritePages | None = None

    def members(self) -> dict[str, Callable[..., object] | None]:
        """Every member by name, ``None`` for the missing ones."""
        return {name: getattr(self, name) for name in MEMBERS}


def member_name(fn: object) -> str | None:
    """The qualified name of a table member, as ``fsaops.buffer.buffer_migrate_page``."""
    if fn is None:
        return None
    module = getattr(fn, "__module__", None) or "?"
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None)
    if not isinstance(name, str) or not isinstance(module, str):
        # No name of its own (a functools.partial, a callable object): how it
        # shows itself, without the address that differs from run to run.
        return shown(fn, limit=MAX_REASON)
    return f"{module}.{name}"  # one a terminal would obey is refused when the plugin loads


MAX_ERRNO: Final = 4095
"""The largest errno (``MAX_ERRNO``): a member's error is one of -1 to -4095."""

_INT_MAX: Final = (1 << 31) - 1


def returned(table: AddressSpaceOperations, member: str, rc: object) -> int:
    """What ``table.<member>`` returned, when it is an ``int`` the kernel's callers can take.

    That is 0, a positive value that fits C's ``int`` (``WRITEPAGE_ACTIVATE``,
    a ``releasepage`` that freed the buffers) or a negative errno down to
    ``-MAX_ERRNO``; ``True`` and ``False`` count as 1 and 0.  The engine
    checks ``migratepage``'s own return (a wrong one fails the page with
    ``-EIO``); this is for the other members, called all over the model.

    Raises:
        PluginFault: it returned anything else (``None`` from a missing
            ``return``, a string, a number C's ``int`` cannot hold), which
            no kernel caller could act on; the message names the table, the
            member and its function.
    """
    if isinstance(rc, int):
        # The value C would see, whatever an int subclass (a bool, an
        # IntEnum) says of itself.
        value = int.__index__(rc)
        if -MAX_ERRNO <= value <= _INT_MAX:
            return value
    hint = " (a missing return?)" if rc is None else ""
    raise PluginFault(
        f"{member} of table {table.name} ({member_name(getattr(table, member, None))}) "
        f"returned {shown(rc)}{hint}, not an int its callers can take "
        f"(0, a positive int, or a negative errno from -1 to -{MAX_ERRNO})"
    )


def configure_aops(table: AddressSpaceOperations, *, migration: bool) -> AddressSpaceOperations:
    """Apply the kernel's build configuration to a table.

    With ``CONFIG_MIGRATION=n`` the migration helpers are ``#define``-d to
    NULL, so every table's ``migratepage`` is missing.
    """
    if migration or table.migratepage is None:
        return table
    return attrs.evolve(table, migratepage=None)


@attrs.frozen
class FileSystemType:
    """A filesystem a plugin provides (``struct file_system_type``).

    Attributes:
        name: the type's name (``ext3``); unique across plugins.
        modes: one operations table per mount mode (``ordered``,
            ``writeback``, ``journal`` for ext3; ``default`` where there is
            one mode).
        default_mode: the mode a mount gets when none is asked for.
        block_sizes: the block sizes the filesystem accepts.
        default_block_size: the block size a mount gets when none is asked for.
        page_cache: per mode, whether files keep pages in the page cache
            (False for execute-in-place mounts).
        fill_super: called once for each new mount to set up the
            filesystem's private state (``s_fs_info``), such as a journal.
        sync_fs: ``super_operations.sync_fs``: write out what the mount
            holds back beyond its dirty pages (ext3 commits its running
            transaction); ``sync(2)`` calls it after writing the pages
            back (:meth:`~fsaops.kernel.Kernel.sync_filesystems`), as do
            the durability proof and the settling of a scenario's build.
        read_metadata: for a buffer-cache mapping that files never write
            to (``xfs_buftarg``): read page ``index`` of the mapping of
            ``inode`` from the device into the page cache, as the
            filesystem's own metadata code would, keeping whatever
            references that code keeps.  Its presence, with a mode whose
            table has no ``prepare_write`` / ``commit_write`` and keeps
            pages in the page cache, is what makes a mount of that mode
            one buffer-cache mapping (:meth:`is_buffer_cache`).
        description: one line for listings.
    """

    name: str
    modes: Mapping[str, AddressSpaceOperations] = attrs.field(converter=frozen_mapping)
    default_mode: str = "default"
    block_sizes: tuple[int, ...] = (1024, 2048, 4096)
    default_block_size: int = 4096
    page_cache: Mapping[str, bool] = attrs.field(factory=dict, converter=frozen_mapping)
    fill_super: Callable[[SuperBlock], None] | None = None
    sync_fs: Callable[[SuperBlock], None] | None = None
    read_metadata: Callable[[Inode, int], None] | None = None
    description: str = ""

    def aops(self, mode: str | None = None) -> AddressSpaceOperations:
        """The table of ``mode`` (default: the default mode).

        Raises:
            KeyError: the type has no such mode.
        """
        return self.modes[self.default_mode if mode is None else mode]

    def has_page_cache(self, mode: str) -> bool:
        """Whether files mounted in ``mode`` keep pages in the page cache."""
        return bool(self.page_cache.get(mode, True))

    def is_buffer_cache(self, mode: str) -> bool:
        """Whether a mount in ``mode`` is one buffer-cache mapping the filesystem fills itself.

        That is a type with ``read_metadata`` (the filesystem's metadata
        code reads the pages in), in a mode whose table can neither write
        files (no ``prepare_write`` / ``commit_write``) nor execute in
        place, but keeps pages in the page cache, such as ``xfs_buftarg``'s.
        Without ``read_metadata`` such a mode is not a buffer cache: it is a
        filesystem whose files cannot be given data, which a scenario's
        check refuses to mount.
        """
        table = self.modes[mode]
        return (
            self.read_metadata is not None
            and table.prepare_write is None
            and table.commit_write is None
            and table.get_xip_page is None
            and self.has_page_cache(mode)
        )

    # -- the rules a mount must keep (one place; the kernel, the config checker
    # -- and the testing kit all ask here) --------------------------------------

    def mode_problem(self, mode: str) -> str | None:
        """Why ``mode`` is not a mode of this type (``None`` if it is)."""
        if mode in self.modes:
            return None
        hint = did_you_mean(mode, self.modes)
        return (
            f"filesystem {self.name} has no mode {mode!r}{hint} (it has: {', '.join(self.modes)})"
        )

    def block_size_problem(self, block_size: int, page_size: int) -> str | None:
        """Why a mount cannot use ``block_size`` with pages of ``page_size`` (``None``: it can)."""
        if block_size not in self.block_sizes:
            return (
                f"filesystem {self.name} does not take block size {block_size} "
                f"(it takes: {', '.join(map(str, self.block_sizes))})"
            )
        if block_size > page_size:
            return (
                f"{self.name}'s block size {block_size} is larger than the page size ({page_size})"
            )
        return None


TYPE_HOOKS: Mapping[str, int] = MappingProxyType(
    {"fill_super": 1, "sync_fs": 1, "read_metadata": 2}
)
"""The functions a :class:`FileSystemType` may carry, and how many arguments each is given."""


def signature_problem(name: str, fn: object) -> str | None:
    """Why ``fn`` cannot be the table member (or type hook, :data:`TYPE_HOOKS`) ``name``.

    ``None`` if it can: it is callable with as many positional arguments
    as the model passes it.
    """
    member = "member " if name in MEMBERS else ""
    if not callable(fn):
        return f"{member}{name} is {type(fn).__name__}, not a function"
    if inspect.iscoroutinefunction(fn) or inspect.isgeneratorfunction(fn):
        kind = "async def" if inspect.iscoroutinefunction(fn) else "a generator"
        return f"{member}{name} is {kind}: the kernel calls it and takes what it returns"
    nargs = MEMBERS[name] if name in MEMBERS else TYPE_HOOKS[name]
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return None  # builtins without a signature: trust them
    try:
        sig.bind(*([None] * nargs))
    except TypeError:
        params = ", ".join(str(p) for p in sig.parameters.values())
        return f"{member}{name} takes ({params}); it is called with {nargs} argument(s)"
    return None
