"""Finding, selecting, loading and checking plugins; the frozen :class:`Registry`.

There is one path for built-in and third-party plugins alike:

1. read the ``fsaops`` entry points from installed metadata (nothing is
   imported);
2. decide the selection: ``--plugins`` on the command line, else the
   ``FSAOPS_PLUGINS`` environment variable (an empty value selects none;
   one of only commas and spaces is an error),
   else ``[plugins] load`` in the config, else everything installed; an
   unknown or duplicated name is an error, and so is selecting a name two
   distributions register, or one ``--plugins`` cannot give;
3. block every name not selected, so it is never imported;
4. try the selected plugins first in a child process, where a plugin that
   hangs (even in C code that never lets go of the interpreter), crashes
   or ends the process can be stopped and named: the probe (steps 5 to 7
   for the plugins this process has not imported yet, each step limited to
   ``FSAOPS_PLUGIN_TIMEOUT`` seconds);
5. import and register the selected plugins that passed the probe (a
   failure names the plugin as ``distribution[entry]``);
6. ``check_pending()``: every hook a plugin implements must exist;
7. call ``fsaops_filesystem_types`` on each plugin, take at most
   :data:`MAX_FILESYSTEM_TYPES` of what it returns, and validate them;
8. freeze everything into a :class:`Registry`.

After each plugin's import (step 5) and hook (step 7), the loader compares
every other plugin's entry module (what ``sys.modules`` holds, and its
hook) and every table and filesystem type those modules hold or the hooks
returned (each field, by identity) with what they were: a plugin whose
step changed another plugin's is that step's plugin's failure, and the
change is put back.

Plugin code never decides how fsaops ends: whatever a plugin raises while
it loads (``SystemExit`` and other exceptions that are not an
:class:`Exception` included) is that plugin's failure.
"""

from __future__ import annotations

import builtins
import contextlib
import enum
import functools
import importlib
import importlib.util
import itertools
import json
import math
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from collections.abc import Set as AbstractSet
from importlib import metadata
from types import MappingProxyType, ModuleType
from typing import IO, Any, Final, NoReturn, Protocol, TypeVar, cast

import attrs
import pluggy

from fsaops import hookspecs
from fsaops.aops import (
    MEMBERS,
    TYPE_HOOKS,
    AddressSpaceOperations,
    FileSystemType,
    configure_aops,
    member_name,
    signature_problem,
)
from fsaops.errors import (
    MAX_SHOWN,
    ConfigError,
    PluginConflictError,
    PluginError,
    PluginLoadError,
    PluginSelectionError,
    PluginValidationError,
    cannot_start,
    describe_exception,
    did_you_mean,
    printable,
    reclaim_signals,
    shown,
    shown_path,
    signals_deferred,
)
from fsaops.frozen import frozen_mapping
from fsaops.jsonbound import dumps as json_dumps
from fsaops.process import REAL_FORK, plugin_code, refuse_forks

__all__ = [
    "BUILT_IN",
    "BUILT_IN_DISTRIBUTION",
    "DEFAULT_TIMEOUT",
    "ENTRY_POINT_GROUP",
    "ENV_VAR",
    "MAX_BLOCK_SIZES",
    "MAX_FILESYSTEM_TYPES",
    "MAX_MODES",
    "MAX_TIMEOUT",
    "PROBE_MEMORY",
    "PROBE_START",
    "TIMEOUT_VAR",
    "PluginInfo",
    "PluginStatus",
    "Registry",
    "RunImports",
    "discover",
    "load_plugins",
    "resolve_selection",
    "unambiguous",
    "watch_imports",
]

ENTRY_POINT_GROUP = "fsaops"
"""The entry-point group plugins register under."""

ENV_VAR = "FSAOPS_PLUGINS"
"""Comma-separated entry-point names of the plugins to load; empty for none."""

MAX_FILESYSTEM_TYPES: Final = 1000
"""The most filesystem types one plugin's ``fsaops_filesystem_types()`` may return.

The loader takes at most one more than this from what the hook returns, so
an endless iterable is cut off and reported instead of filling memory.
"""

MAX_MODES: Final = 100
"""The most mount modes (operations tables) one filesystem type may have."""

MAX_BLOCK_SIZES: Final = 32
"""The most block sizes one filesystem type may list."""

BUILT_IN: Final = frozenset({"ext2", "ext3", "swap", "xfs", "xfs_buftarg"})
"""fsaops's own plugins: each provides the filesystem of its name (and no other)."""

BUILT_IN_DISTRIBUTION: Final = "fsaops"
"""The distribution that installs :data:`BUILT_IN`."""

HINT_LISTED: Final = 5
"""Plugins left out that a missing filesystem's message names; the rest are counted."""

_EntryPoints = Callable[[], Iterable[metadata.EntryPoint]]
_T = TypeVar("_T")


def _cut(text: str) -> str:
    """A name as a label shows it: cut to :data:`~fsaops.errors.MAX_SHOWN` characters."""
    return text if len(text) <= MAX_SHOWN else f"{text[:MAX_SHOWN]}..."


@attrs.frozen
class Available:
    """An installed plugin, from metadata only."""

    name: str
    dist: str
    version: str
    value: str
    entry_point: metadata.EntryPoint = attrs.field(eq=False, repr=False)
    clash: tuple[Available, ...] = attrs.field(default=(), eq=False, repr=False)

    @property
    def label(self) -> str:
        """``distribution[entry]``."""
        return f"{self.dist}[{self.name}]"

    @property
    def problem(self) -> str | None:
        """Why this plugin cannot be selected (``None``: it can).

        Its name is registered by another distribution too (``clash``),
        or it is a name the comma-separated ``--plugins`` and
        ``FSAOPS_PLUGINS`` cannot give (a comma, or spaces around it).
        """
        if self.clash:
            others = " and by ".join(other.shown for other in self.clash)
            return (
                f"plugin name {shown(self.name)} is registered twice: by {self.shown} "
                f"and by {others}; uninstall one of them"
            )
        if not unambiguous(self.name):
            return (
                f"plugin {self.shown}: its entry-point name {shown(self.name)} cannot be "
                "given to --plugins or FSAOPS_PLUGINS (they are comma-separated, and spaces "
                "around a name are dropped); rename the entry point"
            )
        return None

    @property
    def shown(self) -> str:
        """:attr:`label` as messages show it: each part cut to 80 characters."""
        return f"{_cut(self.dist)}[{_cut(self.name)}]"


class PluginStatus(enum.Enum):
    """What became of an installed plugin (``fsaops plugins`` shows the value)."""

    #: Selected, imported, registered and validated.
    LOADED = "loaded"
    #: Installed but not selected: never imported.
    NOT_LOADED = "not loaded"
    #: Not selected, but a selected plugin imported its module (it is built
    #: on it): its code runs as part of that plugin's.
    IMPORTED = "imported"
    #: Selected, but it failed to import, register or validate.
    FAILED = "failed"


@attrs.frozen
class PluginInfo:
    """One installed plugin and what became of it.

    Attributes:
        name: the entry-point name (its identity in configs and ``FSAOPS_PLUGINS``).
        dist: the distribution that installs it.
        version: the distribution's version.
        value: the entry point's module path.
        status: loaded, not loaded (not selected), imported (not selected,
            but a selected plugin imported its module) or failed.
        error: why it failed, when it did; for one that is not loaded, why
            it cannot be selected, if it cannot (:attr:`Available.problem`).
        filesystems: the filesystem types it provides (loaded plugins).
        imported_by: the selected plugins that imported its module, or
            whose tables use its code (imported plugins).
    """

    name: str
    dist: str
    version: str
    value: str
    status: PluginStatus
    error: str | None = None
    filesystems: tuple[FileSystemType, ...] = ()
    imported_by: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """``distribution[entry]``, how errors and listings name the plugin."""
        return f"{self.dist}[{self.name}]"

    @property
    def ran(self) -> bool:
        """Whether the run uses its code (loaded, or imported by a loaded plugin)."""
        return self.status in (PluginStatus.LOADED, PluginStatus.IMPORTED)

    @property
    def built_in(self) -> bool:
        """Whether it is one of fsaops's own plugins, whose filesystems are known unloaded."""
        return (
            self.dist == BUILT_IN_DISTRIBUTION
            and self.name in BUILT_IN
            and self.value == f"fsaops_{self.name}"
        )


@attrs.frozen
class Registry:
    """The loaded plugins and their filesystem types, frozen.

    Attributes:
        plugins: every installed plugin, loaded or not, in name order, as
            loading left it (what a run imports is :func:`watch_imports`'s).
        filesystems: filesystem types by name.
        owners: the entry-point name of the plugin providing each type.
        migration: whether the kernel it serves is built with migration;
            without it the tables it hands out have no ``migratepage``.
        selection: the names that were selected.
        selected_by: where the selection came from: ``--plugins``,
            ``FSAOPS_PLUGINS``, ``[plugins] load`` or ``installed`` (all).
    """

    plugins: tuple[PluginInfo, ...]
    filesystems: Mapping[str, FileSystemType] = attrs.field(converter=frozen_mapping)
    owners: Mapping[str, str] = attrs.field(converter=frozen_mapping)
    migration: bool = True
    selection: tuple[str, ...] = ()
    selected_by: str = "installed"

    @property
    def failures(self) -> tuple[PluginInfo, ...]:
        """The plugins that failed to load or validate."""
        return tuple(p for p in self.plugins if p.status is PluginStatus.FAILED)

    def plugin(self, name: str) -> PluginInfo:
        """The plugin with entry-point name ``name``."""
        for info in self.plugins:
            if info.name == name:
                return info
        raise KeyError(name)

    def table_owner(self, table: str) -> PluginInfo | None:
        """The plugin whose filesystem has the operations table named ``table`` (``None``: none)."""
        for name, fstype in self.filesystems.items():
            if any(t.name == table for t in fstype.modes.values()):
                owner = self.owners.get(name)
                if owner is not None:
                    return self.plugin(owner)
        return None

    def filesystem(self, name: str) -> FileSystemType:
        """The filesystem type ``name``.

        Raises:
            ConfigError: no loaded plugin provides it; the message says
                which are available and whether an unselected plugin would.
        """
        try:
            return self.filesystems[name]
        except KeyError:
            pass
        known = ", ".join(sorted(self.filesystems)) or "none"
        provider = self.provider(name)
        if provider is not None:
            hint = f"; plugin {provider.label} provides it but {self.unused(provider)}"
            where = ""
        else:
            hint, where = did_you_mean(name, self.filesystems), self.unselected_hint()
        raise ConfigError(
            f"unknown filesystem {shown(name)}{hint} (loaded: {known}){where}"
        ) from None

    def provider(self, fs: str) -> PluginInfo | None:
        """The plugin, not loaded or failed, known to provide filesystem ``fs`` (``None``: none).

        Only a built-in plugin is known without importing it: the name of
        another's entry point says nothing of the filesystems it provides.
        """
        for info in self.plugins:
            if info.status is not PluginStatus.LOADED and info.built_in and info.name == fs:
                return info
        return None

    def unused(self, info: PluginInfo) -> str:
        """Why the filesystems of ``info``, a plugin not loaded, are not there, and what to do.

        ``is not loaded (selected plugins: ext2, swap): add ext3 to --plugins
        to select it``; a plugin a selected one imported is not selected
        either (importing its module does not register its filesystems); one
        that failed says so.
        """
        if info.status is PluginStatus.FAILED:
            return "failed to load (fsaops plugins says why)"
        selected = ", ".join(_cut(name) for name in self.selection) or "none"
        where = self.selected_by if self.selected_by != "installed" else "the selection"
        select = f"add {_cut(info.name)} to {where} to select it"
        if info.status is PluginStatus.IMPORTED:
            importers = ", ".join(_cut(name) for name in info.imported_by)
            return (
                f"is not selected, only imported by {importers} (selected plugins: "
                f"{selected}): its filesystems come only with selecting it; {select}"
            )
        return f"is not loaded (selected plugins: {selected}): {select}"

    def unselected_hint(self) -> str:
        """``; no selected plugin provides it; 3 installed plugins were not selected: a, b, c``.

        The names as ``--plugins`` takes them, the first ``HINT_LISTED``
        (the rest are counted).  Empty when every installed plugin was selected.
        """
        left = list(
            dict.fromkeys(
                info.name
                for info in self.plugins
                if info.status in (PluginStatus.NOT_LOADED, PluginStatus.IMPORTED)
            )
        )
        if not left:
            return ""
        many = "plugin was" if len(left) == 1 else "plugins were"
        listed = ", ".join(_cut(name) for name in left[:HINT_LISTED])
        if len(left) > HINT_LISTED:
            listed += f" and {len(left) - HINT_LISTED} more"
        return (
            f"; no selected plugin provides it; {len(left)} installed {many} not selected: {listed}"
        )

    def aops(self, fs: str, mode: str | None = None) -> AddressSpaceOperations:
        """The table of filesystem ``fs`` in ``mode``, as the kernel would use it."""
        fstype = self.filesystem(fs)
        problem = None if mode is None else fstype.mode_problem(mode)
        if problem is not None:
            raise ConfigError(problem)
        return configure_aops(fstype.aops(mode), migration=self.migration)

    def tables(self) -> Iterator[tuple[FileSystemType, str, AddressSpaceOperations]]:
        """Every (type, mode, table) the loaded plugins provide."""
        for name in sorted(self.filesystems):
            fstype = self.filesystems[name]
            for mode in fstype.modes:
                yield fstype, mode, self.aops(name, mode)


def unambiguous(name: str) -> bool:
    """Whether ``--plugins`` and ``FSAOPS_PLUGINS`` can name the plugin ``name``.

    They are comma-separated lists whose parts are stripped: a name with a
    comma, or with spaces at either end, cannot be given there.
    """
    return bool(name) and "," not in name and name == name.strip()


def _dist_of(ep: metadata.EntryPoint) -> tuple[str, str]:
    try:
        dist = ep.dist
        if dist is None:
            return "?", "?"
        name: object = dist.metadata["Name"]
        version: object = dist.version
    except Exception:  # unreadable or malformed metadata
        return "?", "?"
    # Listings show them: a terminal escape sequence in the metadata stays inert.
    return (printable(name) if isinstance(name, str) and name else "?"), (
        printable(version) if isinstance(version, str) and version else "?"
    )


def _installed_entry_points() -> Iterator[metadata.EntryPoint]:
    """The ``fsaops`` entry points of every installed distribution (the first of each name).

    A distribution whose entry points cannot be read is skipped, unless it
    names the ``fsaops`` group: then it is a plugin that cannot be used, and
    an error names it.
    """
    seen: set[str] = set()
    for dist in metadata.distributions():
        try:
            key = getattr(dist, "_normalized_name", None) or dist.metadata["Name"]
        except Exception:
            key = None
        if isinstance(key, str):
            if key in seen:
                continue  # shadowed by one earlier on sys.path, as importlib.metadata does
            seen.add(key)
        try:
            points = [ep for ep in dist.entry_points if ep.group == ENTRY_POINT_GROUP]
        except Exception as exc:
            try:
                text = dist.read_text("entry_points.txt") or ""
            except Exception:
                text = ""
            if ENTRY_POINT_GROUP in text:
                name = key if isinstance(key, str) else "?"
                raise PluginSelectionError(
                    f"the entry points of distribution {_cut(name)} cannot be read "
                    f"({describe_exception(exc)}); reinstall or uninstall it"
                ) from None
            continue  # not a plugin: not fsaops's business
        yield from points


def discover(entry_points: _EntryPoints | None = None) -> dict[str, Available]:
    """Every installed plugin by entry-point name, from metadata only.

    A name two distributions register is kept once, with the others in its
    ``Available.clash``: it cannot be selected (:attr:`Available.problem`),
    but a selection that leaves it out is not concerned.

    Raises:
        PluginSelectionError: the installed metadata cannot be read.
    """
    if entry_points is None:
        entry_points = _installed_entry_points
    found: dict[str, Available] = {}
    try:
        eps = list(entry_points())
    except PluginError:
        raise
    except Exception as exc:
        raise PluginSelectionError(
            f"cannot read the installed plugins' metadata: {describe_exception(exc)}"
        ) from None
    for ep in eps:
        dist, version = _dist_of(ep)
        item = Available(printable(ep.name), dist, version, ep.value, ep)
        other = found.get(item.name)
        if other is not None:
            if other.dist == dist and other.value == ep.value:
                continue  # the same distribution seen twice on sys.path
            if any(o.dist == dist and o.value == ep.value for o in other.clash):
                continue
            found[item.name] = attrs.evolve(other, clash=(*other.clash, item))
            continue
        found[item.name] = item
    return dict(sorted(found.items()))


# -- the import time limit -----------------------------------------------------------------

TIMEOUT_VAR = "FSAOPS_PLUGIN_TIMEOUT"
"""Seconds a plugin may take to import, or to return its filesystem types (default 60)."""

DEFAULT_TIMEOUT: Final = 60.0
"""Seconds a plugin may take when :data:`TIMEOUT_VAR` is not set."""

MAX_TIMEOUT: Final = 3600.0
"""The longest time limit :data:`TIMEOUT_VAR` may set, in seconds."""


def _timeout(value: object, what: str) -> float:
    """``value`` as a time limit in seconds; a ``ConfigError`` naming ``what`` if it is not one.

    Text is a number written with the digits 0 to 9 (not ``'1_0'``, nor
    another script's digits); one too small to tell from 0 is no limit, and
    refused as 0 is.
    """
    from fsaops.config.sizes import parse_number

    seconds = math.nan
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            seconds = parse_number(value)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        with contextlib.suppress(OverflowError):
            seconds = float(value)
    if not (math.isfinite(seconds) and 0 < seconds <= MAX_TIMEOUT):
        raise ConfigError(
            f"{what} must be a positive number of seconds, at most {MAX_TIMEOUT:g}, "
            f"not {shown(value)}"
        )
    return seconds


def _import_timeout(value: float | None) -> float:
    if value is not None:
        return _timeout(value, "import_timeout")
    text = os.environ.get(TIMEOUT_VAR)
    if text is None or not text.strip():  # unset, or set to nothing
        return DEFAULT_TIMEOUT
    return _timeout(text, TIMEOUT_VAR)


def _from_plugin(exc: BaseException, interrupts: bool) -> bool:
    """Whether ``exc``, raised by plugin code, is the plugin's failure.

    Everything is, except a :class:`KeyboardInterrupt` where it may come
    from a real Ctrl-C (``interrupts``).
    """
    return not (interrupts and isinstance(exc, KeyboardInterrupt))


class _Late(BaseException):
    """Work given to :func:`_in_thread` did not finish in time (plugin code cannot catch it)."""


def _in_thread(
    work: Callable[[], _T], timeout: float | None, name: str, *, here: bool = False
) -> _T:
    """Run ``work`` in a daemon thread for at most ``timeout`` seconds (``None``: no limit).

    Returns what it returned, raises what it raised, or :class:`_Late`.
    Without a time limit (the probe's child, which its parent watches) the
    work runs in this thread.  So it does with ``here`` (plugin code that
    passed the probe) when this is the main thread, where a ``SIGALRM``
    timer keeps the limit (:func:`_here`): the plugin's code will run in
    this thread, and what it sets up per thread at import (a
    ``threading.local``, a signal handler) must be there.
    Plugin code runs this way so that a plugin that sleeps or loops is
    reported instead of hanging the program (a real Ctrl-C, in the main
    thread, still interrupts the wait); the work builds its own error
    message, in the thread, so that formatting what a plugin raised cannot
    hang the program either.
    """
    if timeout is None:
        return work()
    if (
        here
        and threading.current_thread() is threading.main_thread()
        and hasattr(signal, "setitimer")
    ):
        return _here(work, timeout)
    # Elsewhere (another thread, where no timer can reach): a thread of its own.
    outcome: list[tuple[bool, Any]] = []

    def run() -> None:
        try:
            outcome.append((True, work()))
        except BaseException as exc:  # handed to the waiting thread
            outcome.append((False, exc))

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    thread.join(timeout)
    if not outcome:
        raise _Late
    done, value = outcome[0]
    if not done:
        raise value
    result: _T = value
    return result


def _here(work: Callable[[], _T], timeout: float) -> _T:
    """Run ``work`` in this thread (the main one), stopping it after ``timeout`` seconds.

    A ``SIGALRM`` timer raises :class:`_Late` in it, as the thread's
    ``join`` would give up: a plugin that behaves otherwise the second time
    it is imported (sleeps, loops in Python) is still held to the limit.
    A ``SIGALRM`` handler the plugin puts in place while it imports stays
    (and then that import has no time limit); a timer set before runs on.
    """

    def late(signum: int, frame: object) -> None:
        raise _Late

    previous = signal.signal(signal.SIGALRM, late)
    started = time.monotonic()
    delay, interval = signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        return work()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        if signal.getsignal(signal.SIGALRM) is late:
            signal.signal(signal.SIGALRM, previous)
        if delay:  # someone else's timer (pytest-timeout's, say) runs on
            left = max(delay - (time.monotonic() - started), 0.001)
            signal.setitimer(signal.ITIMER_REAL, left, interval)


def _import(
    item: Available, timeout: float | None, *, here: bool = False, ctrl_c: bool = False
) -> object:
    """Import an entry point's module, giving up after ``timeout`` seconds (``None``: never).

    Anything the import raises is the plugin's failure, but for a
    ``KeyboardInterrupt`` when ``ctrl_c`` says it may be a real Ctrl-C (the
    import runs in this thread, the main one).  Changes the
    import makes to ``sys.path`` are undone, so that one plugin cannot
    change where the next is found.

    Raises:
        PluginLoadError: the import raised, or did not finish in time.
    """
    if metadata.EntryPoint.pattern.match(item.value) is None:
        raise PluginLoadError(
            item.shown,
            f"its entry point {shown(item.value)} is not a module path (module or "
            "module:attribute)",
        )

    def work() -> object:
        try:
            return item.entry_point.load()
        except _Late:
            raise
        except KeyboardInterrupt:
            if ctrl_c:
                raise
            raise PluginLoadError(item.shown, KeyboardInterrupt()) from None
        except BaseException as exc:  # whatever a plugin raises is its failure
            raise PluginLoadError(item.shown, exc) from None

    path = sys.path
    saved = list(path)
    try:
        return _in_thread(work, timeout, f"fsaops import {_cut(item.name)}", here=here)
    except _Late:
        raise PluginLoadError(item.shown, f"its import {_late('import', timeout)}") from None
    finally:
        sys.path = path
        path[:] = saved


def _provided(
    label: str,
    hook: Callable[[], object],
    timeout: float | None,
    *,
    here: bool = False,
    ctrl_c: bool = False,
) -> tuple[FileSystemType, ...]:
    """Call a plugin's ``fsaops_filesystem_types()``, read and validate what it returns.

    ``timeout`` and ``ctrl_c`` as for :func:`_import`.

    Raises:
        PluginValidationError: it raised, returned something invalid, or
            did not return in time.
    """

    def work() -> tuple[FileSystemType, ...]:
        try:
            items = _take(label, hook())
        except (PluginValidationError, _Late):
            raise
        except KeyboardInterrupt:
            if ctrl_c:
                raise
            raise PluginValidationError(
                label, "fsaops_filesystem_types() raised KeyboardInterrupt"
            ) from None
        except BaseException as exc:  # whatever a plugin raises is its failure
            raise PluginValidationError(
                label, f"fsaops_filesystem_types() raised {describe_exception(exc)}"
            ) from None
        try:
            return _validate_types(label, items)
        except (PluginValidationError, _Late):
            raise
        except BaseException as exc:  # a property, a __signature__, an __eq__ that raises
            raise PluginValidationError(
                label,
                "what fsaops_filesystem_types() returned could not be checked: "
                f"{describe_exception(exc)}",
            ) from None

    try:
        return _in_thread(work, timeout, f"fsaops hook {_cut(label)}", here=here)
    except _Late:
        raise PluginValidationError(
            label, f"fsaops_filesystem_types() {_late('hook', timeout)}"
        ) from None


# -- selection -----------------------------------------------------------------------------

MAX_LISTED: Final = 20
"""Installed plugins a message lists; the rest are counted."""


def _listing(names: Sequence[str]) -> str:
    shown_names = ", ".join(_cut(name) for name in names[:MAX_LISTED]) or "none"
    more = len(names) - MAX_LISTED
    return shown_names + (f" and {more} more" if more > 0 else "")


def _split(value: str, source: str = ENV_VAR) -> list[str]:
    """The names of a comma-separated selection; an empty one (or only spaces) names none.

    Raises:
        PluginSelectionError: the value is not empty but names no plugin
            (only commas and spaces): a list whose names went missing.
    """
    names = [part.strip() for part in value.split(",") if part.strip()]
    if not names and value.strip():
        raise PluginSelectionError(
            f"{source} is {shown(value)}, which names no plugin: give names separated by "
            "commas, or an empty value to select none"
        )
    return names


def resolve_selection(
    available: Iterable[str],
    *,
    cli: Sequence[str] | str | None = None,
    env: Mapping[str, str] | None = None,
    config: Sequence[str] | None = None,
    config_source: str | None = None,
) -> tuple[tuple[str, ...], str]:
    """Decide which plugins load, and say where the choice came from.

    Precedence: ``cli`` (``--plugins``), then ``FSAOPS_PLUGINS`` in ``env``
    (an empty value, or one of spaces, means none; one of only commas and
    spaces is an error), then ``config`` (``[plugins] load``), then
    everything available.  The names a config gives are checked even when
    something with more precedence overrides them: a typo in a file is a
    typo whoever wins.  Messages quote at most 80 characters of a name.

    Returns:
        the selected names, and the source (``--plugins``, ``FSAOPS_PLUGINS``,
        ``[plugins] load`` or ``installed``).

    Raises:
        PluginSelectionError: a name is not installed or given twice, or a
            value that is not empty names no plugin (``,,``).
        ConfigError: ``config`` names a plugin that is not installed; the
            message names ``config_source`` and the key (``plugins.load[1]``).
    """
    env = os.environ if env is None else env
    known = sorted(available)
    if config is not None:
        _check_config_names(config, known, config_source)
    names: list[str]
    if cli is not None:
        source = "--plugins"
        names = _split(cli, source) if isinstance(cli, str) else list(cli)
    elif ENV_VAR in env:
        names, source = _split(env[ENV_VAR]), ENV_VAR
    elif config is not None:
        names, source = list(config), "[plugins] load"
    else:
        return tuple(known), "installed"
    seen: set[str] = set()
    installed = set(known)
    for name in names:
        if name in seen:
            raise PluginSelectionError(f"{source} names plugin {shown(name)} twice")
        seen.add(name)
        if name not in installed:
            raise PluginSelectionError(
                f"{source} names plugin {shown(name)}, which is not installed"
                f"{did_you_mean(name, known)} (installed: {_listing(known)})"
            )
    return tuple(names), source


def _check_config_names(names: Sequence[str], known: list[str], source: str | None) -> None:
    problems = []
    installed = set(known)
    for i, name in enumerate(names):
        if name not in installed:
            hint = did_you_mean(name, known)
            problems.append(
                f"plugins.load[{i}]: plugin {shown(name)} is not installed{hint} "
                f"(installed: {_listing(known)})"
            )
    if problems:
        where = f"{shown_path(source)}: " if source else ""
        shown_problems = "; ".join(problems[:3])
        if len(problems) > 3:
            shown_problems += f"; and {len(problems) - 3} more"
        raise ConfigError(where + shown_problems)


# -- validating what a plugin returns ----------------------------------------------------------


def _validate_table(label: str, fs: str, mode: str, table: object) -> None:
    where = f"filesystem {shown(fs)} mode {shown(mode)}"
    if not isinstance(table, AddressSpaceOperations):
        raise PluginValidationError(
            label, f"{where}: table is {type(table).__name__}, not an AddressSpaceOperations"
        )
    name: object = table.name
    if not isinstance(name, str) or not name:
        raise PluginValidationError(label, f"{where}: table has no name")
    if not name.isprintable():
        raise PluginValidationError(label, f"{where}: table name {shown(name)} {_UNPRINTABLE}")
    for member in MEMBERS:
        fn = getattr(table, member)
        if fn is None:
            continue
        problem = signature_problem(member, fn)
        if problem is not None:
            raise PluginValidationError(label, f"table {_cut(name)}: {problem}")
        shown_as = member_name(fn)
        if not isinstance(shown_as, str):  # listings and reports name it
            raise PluginValidationError(label, f"table {_cut(name)}: {member} has no name")
        if not shown_as.isprintable():
            raise PluginValidationError(
                label, f"table {_cut(name)}: {member}'s name {shown(shown_as)} {_UNPRINTABLE}"
            )


_UNPRINTABLE: Final = (
    "has characters that are not printable (a line break, a terminal escape sequence): "
    "listings and reports show names as they are"
)


def _table_name_taken(
    fstypes: Sequence[FileSystemType],
    tables: Mapping[str, tuple[AddressSpaceOperations, str, str]],
    available: Mapping[str, Available],
    plugin: str,
) -> PluginValidationError | None:
    """The error when a plugin names a table as a different one is named; ``None`` if none.

    Reports, listings and the engine's statistics key tables by name: two
    tables of one name would be counted as one, and one's failures blamed
    on the other's ``migratepage``.  The same table under two filesystems
    or modes is fine.
    """
    seen = dict(tables)
    label = available[plugin].shown
    for fstype in fstypes:
        for mode, table in fstype.modes.items():
            where = f"{fstype.name} {mode}"
            other = seen.get(table.name)
            if other is None:
                seen[table.name] = (table, where, plugin)
                continue
            if _same_table(other[0], table):
                continue
            if other[2] == plugin:
                return PluginValidationError(
                    label,
                    f"two different tables are named {_cut(table.name)} ({other[1]} and "
                    f"{where}); reports count tables by name",
                )
            first = f"{available[other[2]].shown} ({other[1]})"
            return PluginConflictError(table.name, first, f"{label} ({where})", kind="table")
    return None


def _same_table(a: AddressSpaceOperations, b: AddressSpaceOperations) -> bool:
    """Whether two tables are one: the same object, or the same members (no plugin code runs)."""
    if a is b:
        return True
    return type(a) is type(b) and all(getattr(a, m) is getattr(b, m) for m in MEMBERS)


def _take(label: str, result: object) -> list[object]:
    """What ``fsaops_filesystem_types()`` returned, as a list of at most the bound (+1).

    A mapping is refused as a whole: iterating it gives its keys, which would
    be reported as the wrong type when the plugin returned no sequence at all.
    """
    if isinstance(result, str | bytes | Mapping) or not isinstance(result, Iterable):
        raise PluginValidationError(
            label,
            "fsaops_filesystem_types() must return a sequence of FileSystemType, "
            f"not {type(result).__name__}",
        )
    items = list(itertools.islice(result, MAX_FILESYSTEM_TYPES + 1))
    if len(items) > MAX_FILESYSTEM_TYPES:
        raise PluginValidationError(
            label,
            f"fsaops_filesystem_types() returned more than {MAX_FILESYSTEM_TYPES:,} "
            "filesystem types (the most a plugin may provide); the rest were not read",
        )
    return items


def _bounded(label: str, what: str, values: object, limit: int) -> list[Any]:
    if isinstance(values, str | bytes) or not isinstance(values, Iterable):
        raise PluginValidationError(label, f"{what} is {type(values).__name__}, not a collection")
    items = list(itertools.islice(values, limit + 1))
    if len(items) > limit:
        raise PluginValidationError(label, f"{what} has more than {limit} entries")
    return items


def _returned_twice(types: Sequence[FileSystemType]) -> str | None:
    """The first filesystem name two of ``types`` share, if any."""
    seen: set[str] = set()
    for fstype in types:
        if fstype.name in seen:
            return fstype.name
        seen.add(fstype.name)
    return None


def _described(value: object) -> str:
    """A table by its name, anything else by its type: for messages."""
    if isinstance(value, AddressSpaceOperations) and isinstance(value.name, str):
        return f"table {_cut(value.name)}"
    return f"a {type(value).__name__}"


def _validate_types(label: str, items: list[object]) -> tuple[FileSystemType, ...]:
    types: list[FileSystemType] = []
    names: set[str] = set()
    for fstype in items:
        if not isinstance(fstype, FileSystemType):
            raise PluginValidationError(
                label,
                "fsaops_filesystem_types() returned a "
                f"{type(fstype).__name__}, not a FileSystemType",
            )
        fs_name: object = fstype.name
        if not isinstance(fs_name, str) or not fs_name.isidentifier():
            raise PluginValidationError(
                label, f"filesystem name {shown(fs_name)} is not a simple name"
            )
        fs = shown(fs_name)
        if fs_name in names:
            raise PluginValidationError(label, f"filesystem {fs} is returned twice")
        names.add(fs_name)
        if not isinstance(fstype.modes, Mapping):
            raise PluginValidationError(label, f"filesystem {fs}: modes is not a mapping")
        modes = _bounded(label, f"filesystem {fs}: modes", fstype.modes.items(), MAX_MODES)
        if not modes:
            raise PluginValidationError(label, f"filesystem {fs} has no modes")
        for mode, _ in modes:
            if not isinstance(mode, str) or not mode:
                raise PluginValidationError(
                    label, f"filesystem {fs}: mode {shown(mode)} is not a name"
                )
            if not mode.isprintable():
                raise PluginValidationError(
                    label, f"filesystem {fs}: mode {shown(mode)} {_UNPRINTABLE}"
                )
        mode_names = [mode for mode, _ in modes]
        default_mode: object = fstype.default_mode
        if not isinstance(default_mode, str) or default_mode not in mode_names:
            raise PluginValidationError(
                label,
                f"filesystem {fs}: default mode {shown(default_mode)} is not one of its modes",
            )
        sizes = _bounded(
            label, f"filesystem {fs}: block_sizes", fstype.block_sizes, MAX_BLOCK_SIZES
        )
        for size in sizes:
            if type(size) is not int or size < 512 or size & (size - 1):
                raise PluginValidationError(
                    label, f"filesystem {fs}: block size {shown(size)} is not valid"
                )
        default_size: object = fstype.default_block_size
        if type(default_size) is not int or default_size not in sizes:
            raise PluginValidationError(
                label,
                f"filesystem {fs}: default block size {shown(default_size)} "
                "is not one of its block sizes",
            )
        if not isinstance(fstype.page_cache, Mapping):
            raise PluginValidationError(label, f"filesystem {fs}: page_cache is not a mapping")
        for mode, flag in _bounded(
            label, f"filesystem {fs}: page_cache", fstype.page_cache.items(), MAX_MODES
        ):
            if mode not in mode_names or not isinstance(flag, bool):
                raise PluginValidationError(
                    label,
                    f"filesystem {fs}: page_cache[{shown(mode)}] must be true or false "
                    "for one of its modes",
                )
        if not isinstance(fstype.description, str):
            raise PluginValidationError(label, f"filesystem {fs}: description is not a string")
        for hook in TYPE_HOOKS:
            fn: object = getattr(fstype, hook)
            problem = None if fn is None else signature_problem(hook, fn)
            if problem is not None:
                raise PluginValidationError(label, f"filesystem {fs}: {problem}")
        for mode, table in modes:
            _validate_table(label, fs_name, mode, table)
            # A mount takes its table from aops(), which a subclass may
            # override: it must give the table validated here, not another.
            given: object = fstype.aops(mode)
            if given is not table:
                raise PluginValidationError(
                    label,
                    f"filesystem {fs}: aops({shown(mode)}) gives {_described(given)}, not the "
                    f"table its modes name ({_cut(table.name)}): a mount uses the table its "
                    "type declares",
                )
            # The model asks these of every mount: a subclass that overrides
            # them answers here, inside the loader, not first in the middle of a run.
            for ask in (fstype.has_page_cache, fstype.is_buffer_cache):
                answer: object = ask(mode)
                if type(answer) is not bool:
                    raise PluginValidationError(
                        label,
                        f"filesystem {fs}: {ask.__name__}({shown(mode)}) returned "
                        f"{shown(answer)}, not true or false",
                    )
        types.append(fstype)
    return tuple(types)


# -- loading -------------------------------------------------------------------------------------

_Watch = Callable[[str, str], None]
"""Told ``(step, plugin)`` as each step on a plugin starts: ``import``, ``register``, ``hook``."""

_Report = Callable[[str, PluginError], None]
"""Told each failure as it is found."""


def _quiet(step: str, name: str) -> None:
    """A :data:`_Watch` that does nothing."""


def _registration_problem(
    pm: pluggy.PluginManager,
    module: object,
    item: Available,
    available: Mapping[str, Available],
) -> PluginError | None:
    """Why ``module`` cannot be registered as ``item``'s plugin, or ``None``."""
    unmarked = getattr(module, "fsaops_filesystem_types", None)
    if callable(unmarked) and pm.parse_hookimpl_opts(module, "fsaops_filesystem_types") is None:
        return PluginValidationError(
            item.shown,
            "it defines fsaops_filesystem_types without @fsaops.hookimpl, so the hook "
            "never calls it",
        )
    twin = pm.get_name(module)
    if twin is not None:  # pluggy refuses one module under two names
        return PluginValidationError(
            item.shown,
            f"its module {shown(getattr(module, '__name__', module))} is plugin "
            f"{available[twin].shown if twin in available else shown(twin)} already: one "
            "module can be one plugin, under one entry point",
        )
    return None


def _no_hook(pm: pluggy.PluginManager, plugin: object) -> str | None:
    """Why nothing of a registered plugin is ever called (no fsaops hook), or ``None``."""
    callers = pm.get_hookcallers(plugin) or []
    if any(caller.spec is not None for caller in callers):
        return None
    unknown = sorted(caller.name for caller in callers)
    if unknown:
        names = ", ".join(_cut(n) for n in unknown[:3])
        return (
            f"it implements no fsaops hook, so nothing of it is ever called: {names} "
            "is no hook of fsaops (optionalhook=True let the name pass); the hook is "
            "fsaops_filesystem_types"
        )
    return (
        "it implements no fsaops hook, so nothing of it is ever called (the hook is "
        "fsaops_filesystem_types, marked @fsaops.hookimpl)"
    )


def _wrapping(impl: pluggy.HookImpl) -> str | None:
    """Why a hook implementation marked as a wrapper cannot work, or ``None``."""
    option = "wrapper" if impl.wrapper else "hookwrapper" if impl.hookwrapper else None
    if option is None:
        return None
    name = _cut(str(getattr(impl.function, "__name__", "fsaops_filesystem_types")))
    return (
        f"its {name} is marked @fsaops.hookimpl({option}=True), but fsaops calls "
        "fsaops_filesystem_types one plugin at a time, so a wrapper has no other "
        f"implementation to wrap: drop {option}=True and return the filesystem types"
    )


def _load(
    available: Mapping[str, Available],
    selected: Sequence[str],
    source: str,
    *,
    migration: bool,
    strict: bool,
    timeout: float | None,
    known: Mapping[str, PluginError],
    watch: _Watch = _quiet,
    report: _Report | None = None,
    interrupts: bool = True,
    probed: AbstractSet[str] = frozenset(),
    imported: AbstractSet[str] = frozenset(),
) -> Registry:
    """Steps 5 to 8 of the loader, on the plugins in ``selected``.

    ``known`` are failures found already (by the probe): those plugins are
    not imported again.  ``probed`` ones passed the probe: they import and
    answer their hook in this thread (:func:`_here`); ``imported``
    ones (imported before the loader ran) import here too, which runs none
    of their code; everything else runs in a thread of its own, within
    ``timeout``.  ``interrupts``
    says whether a KeyboardInterrupt can be a real Ctrl-C here (it cannot
    in the probe, which ignores SIGINT), in which case it is not taken for a
    plugin's failure.
    """
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    for name in available:
        if name not in selected:
            pm.set_blocked(name)
    errors: dict[str, PluginError] = dict(known)
    brought: dict[str, set[str]] = {}  # the modules each selected plugin's import brought in
    modules_before = set(sys.modules)

    def fail(name: str, error: PluginError) -> None:
        errors[name] = error
        if report is not None:
            report(name, error)

    belongs = _Belongs(
        ((name, item.value) for name, item in available.items() if not item.clash), set(selected)
    )
    entry_plugins = {
        _entry_module(available[name].value): name
        for name in selected
        if name in available and not available[name].clash
    }
    guard = _Guard()
    statements = _LoadImports(belongs, entry_plugins, guard)

    def settle(name: str) -> bool:
        """Whether plugin ``name``'s step left every other plugin's code as it was."""
        changed = guard.check(name)
        for entry, owner in entry_plugins.items():  # each plugin's code as it is now
            guard.watch_module(owner, entry, again=owner == name)
        if changed is None:
            return True
        owner, what, rule = changed
        if name not in errors:
            with contextlib.suppress(Exception):
                if pm.has_plugin(name):
                    pm.unregister(name=name)
            victim = available[owner].shown if owner in available else _cut(owner)
            whose = "the module" if rule == "module" else "a table"
            fail(
                name,
                PluginValidationError(
                    available[name].shown,
                    f"its code {what}, {whose} of plugin {victim} (a plugin may not change "
                    f"another plugin's {rule})",
                ),
            )
        return False

    for name in selected:
        if name in errors:
            continue
        item = available[name]
        watch("import", name)
        before = set(sys.modules)
        try:
            here = name in probed or name in imported
            # An import of a module imported already counts too, and so does one
            # through importlib.import_module (no import statement).
            with _watching(statements), _import_module_watched(statements):
                module = _import(item, timeout, here=here, ctrl_c=here and interrupts)
        except PluginLoadError as exc:
            fail(name, exc)
            settle(name)
            continue
        finally:
            brought[name] = set(sys.modules) - before
            brought[name] |= statements.modules.pop(name, set())
        if not settle(name):
            _remember_brought(item, brought[name])
            continue
        changed = statements.changed(_entry_module(item.value))
        if changed is not None:  # another plugin's code did it: that plugin fails, not this one
            culprit, what, was_module, was_hook = changed
            if culprit not in errors:
                with contextlib.suppress(Exception):
                    if pm.has_plugin(culprit):
                        pm.unregister(name=culprit)
                fail(
                    culprit,
                    PluginValidationError(
                        available[culprit].shown,
                        f"its code {what}, the module of plugin {item.shown} (a plugin "
                        "may not change another plugin's module)",
                    ),
                )
            with contextlib.suppress(Exception):  # put back what this plugin's module was
                sys.modules[_entry_module(item.value)] = cast(ModuleType, was_module)
                namespace = vars(was_module)
                if was_hook is _ABSENT:
                    namespace.pop(_HOOK, None)
                else:
                    namespace[_HOOK] = was_hook
            if ":" not in item.value:
                module = was_module
        _remember_brought(item, brought[name])
        watch("register", name)
        if module is None:  # pluggy keeps blocked names as None: it would find one
            fail(
                name,
                PluginValidationError(
                    item.shown, "its entry point names None, not a module with fsaops hooks"
                ),
            )
            continue
        # Plugin code can run in each step (a module's __getattr__, an object's
        # __eq__): what it raises is this plugin's failure to load.
        try:
            problem = _registration_problem(pm, module, item, available)
            if problem is None:
                pm.register(module, name=name)
        except BaseException as exc:
            if not _from_plugin(exc, interrupts):
                raise
            with contextlib.suppress(Exception):
                if pm.has_plugin(name):
                    pm.unregister(name=name)
            problem = PluginLoadError(item.shown, exc)
        if problem is not None:
            fail(name, problem)
    watch("check", "")
    hooks = sorted(n for n, c in vars(pm.hook).items() if not n.startswith("_") and c.has_spec())
    for hook_name, caller in list(vars(pm.hook).items()):
        if hook_name.startswith("_") or caller.has_spec():
            continue
        for impl in caller.get_hookimpls():  # a misspelt hook: named, without the module's path
            bad = impl.plugin_name
            if impl.optionalhook or bad not in available or bad in errors:
                continue
            fail(
                bad,
                PluginValidationError(
                    available[bad].shown,
                    f"unknown hook {shown(hook_name)}{did_you_mean(hook_name, hooks)} "
                    f"(the hooks of fsaops: {', '.join(hooks)})",
                ),
            )
            with contextlib.suppress(Exception):
                pm.unregister(name=bad)
    while True:  # every plugin with a hook that does not exist, not just the first
        try:
            pm.check_pending()
        except pluggy.PluginValidationError as exc:
            bad = pm.get_name(exc.plugin) or "?"
            label = available[bad].shown if bad in available else _cut(bad)
            fail(bad, PluginValidationError(label, " ".join(str(exc).split())))
            pm.unregister(exc.plugin)
            continue
        break
    for name, plugin in list(pm.list_name_plugin()):
        if name in available and name not in errors and plugin is not None:
            silent = _no_hook(pm, plugin)
            if silent is not None:
                fail(name, PluginValidationError(available[name].shown, silent))
                pm.unregister(name=name)
    # A plugin may implement the hook more than once (pluggy's specname=):
    # pluggy would call each, so each one's types count.
    impls: dict[str, list[Callable[[], object]]] = {}
    for impl in reversed(pm.hook.fsaops_filesystem_types.get_hookimpls()):
        wrapping = _wrapping(impl)
        if wrapping is not None:
            if impl.plugin_name in available and impl.plugin_name not in errors:
                fail(
                    impl.plugin_name,
                    PluginValidationError(available[impl.plugin_name].shown, wrapping),
                )
            continue
        impls.setdefault(impl.plugin_name, []).append(impl.function)
    provided: dict[str, tuple[FileSystemType, ...]] = {}
    for name in selected:
        if name not in impls or name in errors:
            continue
        watch("hook", name)
        label = available[name].shown
        try:
            types: list[FileSystemType] = []
            here = name in probed
            for function in impls[name]:
                types.extend(
                    _provided(label, function, timeout, here=here, ctrl_c=here and interrupts)
                )
            twice = _returned_twice(types)
            if twice is not None:
                raise PluginValidationError(label, f"filesystem {shown(twice)} is returned twice")
        except PluginValidationError as exc:
            fail(name, exc)
            settle(name)
            continue
        if settle(name):
            provided[name] = tuple(types)
            guard.watch_types(name, types)
    watch("finish", "")
    filesystems: dict[str, FileSystemType] = {}
    owners: dict[str, str] = {}
    tables: dict[str, tuple[AddressSpaceOperations, str, str]] = {}
    for name in selected:  # the selection's order is the load order
        if name not in provided:
            continue
        try:
            clash = next((f.name for f in provided[name] if f.name in filesystems), None)
            if clash is not None:
                first = available[owners[clash]].shown
                fail(name, PluginConflictError(clash, first, available[name].shown))
                continue
            taken = _table_name_taken(provided[name], tables, available, name)
            if taken is not None:
                fail(name, taken)
                continue
            entries = [
                (fstype, mode, table)
                for fstype in provided[name]
                for mode, table in fstype.modes.items()
            ]
        except BaseException as exc:  # its types' own code, read again
            if not _from_plugin(exc, interrupts):
                raise
            fail(name, PluginLoadError(available[name].shown, exc))
            continue
        for fstype in provided[name]:
            filesystems[fstype.name] = fstype
            owners[fstype.name] = name
        for fstype, mode, table in entries:
            tables.setdefault(table.name, (table, f"{fstype.name} {mode}", name))
    if strict and errors:
        raise next(iter(errors.values()))
    used = _imported_by(
        belongs,
        [name for name in selected if name in brought],
        brought,
        set(sys.modules) - modules_before,
        {name: types for name, types in provided.items() if name not in errors},
    )
    infos = []
    for name, item in available.items():
        imported_by: tuple[str, ...] = ()
        if name in errors:
            status, error = PluginStatus.FAILED, str(errors[name])
        elif name in selected:
            status, error = PluginStatus.LOADED, None
        elif name in used:
            status, error, imported_by = PluginStatus.IMPORTED, None, used[name]
        else:
            status, error = PluginStatus.NOT_LOADED, item.problem
        fs = tuple(f for f in provided.get(name, ()) if owners.get(f.name) == name)
        for each in (item, *item.clash):
            infos.append(
                PluginInfo(
                    name=name,
                    dist=each.dist,
                    version=each.version,
                    value=each.value,
                    status=status,
                    error=error,
                    filesystems=fs if status is PluginStatus.LOADED else (),
                    imported_by=imported_by,
                )
            )
    return Registry(
        plugins=tuple(infos),
        filesystems=filesystems,
        owners=owners,
        migration=migration,
        selection=tuple(selected),
        selected_by=source,
    )


_BROUGHT: Final[dict[str, tuple[object, frozenset[str]]]] = {}
"""What importing each plugin's entry module brought in, when a load of this process imported it.

A later load finds the module imported already (its import runs no code):
what the first import brought in is still what the plugin is built on.
"""


def _remember_brought(item: Available, brought: set[str]) -> None:
    """Remember what importing ``item``'s module brought in, or add what its first import did."""
    entry = _entry_module(item.value)
    module = sys.modules.get(entry)
    if module is None:
        return
    if entry in brought:
        _BROUGHT[entry] = (module, frozenset(brought))
        return
    first = _BROUGHT.get(entry)
    if first is not None and first[0] is module:
        brought |= first[1]


def _entry_module(value: str) -> str:
    """The module of an entry point's value (``pkg.mod:attr`` → ``pkg.mod``)."""
    return value.split(":", maxsplit=1)[0].strip()


def _under(module: object, top: str) -> bool:
    return isinstance(module, str) and (module == top or module.startswith(top + "."))


class _Belongs:
    """Which installed plugins a module belongs to, one look-up per module name.

    A module belongs to a plugin when it is the package of the plugin's
    entry module (the entry module itself when that is top-level) or under
    it: ``helperlib.core`` belongs to the plugin whose entry point is
    ``helperlib.fsaops_plugin``.  fsaops's own package belongs to none.  A
    package a selected plugin's code is in too is that plugin's: there a
    plugin not selected owns only its entry module and what is under it.
    A name two distributions register is left out (which one ran is not
    known).
    """

    def __init__(self, plugins: Iterable[tuple[str, str]], selected: AbstractSet[str]) -> None:
        self.selected = selected
        self._entries: list[tuple[str, str, str]] = []  # name, entry module, package
        for name, value in plugins:
            entry = _entry_module(value)
            package = entry.rpartition(".")[0] or entry
            if package and package.split(".")[0] != "fsaops":
                self._entries.append((name, entry, package))
        self._chosen = [(e, p) for n, e, p in self._entries if n in selected]
        self._cache: dict[str, tuple[str, ...]] = {}

    def __bool__(self) -> bool:
        return any(name not in self.selected for name, _, _ in self._entries)

    def __call__(self, module: object) -> tuple[str, ...]:
        """The names of the plugins ``module`` belongs to (none for a name that is not a string)."""
        if not isinstance(module, str):
            return ()
        found = self._cache.get(module)
        if found is None:
            found = self._cache[module] = self._owners(module)
        return found

    def _owners(self, module: str) -> tuple[str, ...]:
        shared = [e for e, p in self._chosen if _under(module, p)]
        return tuple(
            name
            for name, entry, package in self._entries
            if _under(module, package)
            and (
                name in self.selected
                or not shared
                or (_under(module, entry) and all(not _under(entry, e) for e in shared))
            )
        )

    def unselected(self, module: object) -> Iterator[str]:
        """The plugins not selected that ``module`` belongs to."""
        return (name for name in self(module) if name not in self.selected)


def _imported_by(
    belongs: _Belongs,
    selected: Sequence[str],
    brought: Mapping[str, AbstractSet[str]],
    new: AbstractSet[str],
    provided: Mapping[str, Sequence[FileSystemType]],
) -> dict[str, tuple[str, ...]]:
    """The plugins not selected whose code the selected ones use, and which selected ones do.

    A plugin not selected is used when a module that ``belongs`` to it (its
    entry module's package or under it) is imported,
    and either a selected plugin's import brought it in (``brought``), it
    came in while the selected plugins loaded (``new``: all of them are
    named), or a loaded plugin's filesystem type or table has a member
    defined in it (``provided``).  A module imported before, by nobody's
    table, counts for nothing: fsaops or the program around it imported it.
    """
    users: dict[str, set[str]] = {}

    def owned(modules: Iterable[object]) -> set[str]:
        return {plugin for m in modules for plugin in belongs.unselected(m)}

    for name in selected:
        for plugin in owned(brought.get(name, ())):
            users.setdefault(plugin, set()).add(name)
    for plugin in owned(new) - set(users):  # it came in while they all loaded
        users[plugin] = set(selected)
    for name, types in provided.items():
        for plugin in owned(_code_modules(types)):
            users.setdefault(plugin, set()).add(name)
    present = owned(list(sys.modules))
    return {
        plugin: tuple(n for n in selected if n in who)
        for plugin, who in users.items()
        if plugin in present and who
    }


def _code_modules(types: Iterable[FileSystemType]) -> Iterator[object]:
    """The modules the members of ``types`` and of their tables are defined in."""
    for fstype in types:
        for hook in TYPE_HOOKS:
            yield getattr(getattr(fstype, hook, None), "__module__", None)
        for table in fstype.modes.values():
            for member in MEMBERS:
                yield getattr(getattr(table, member, None), "__module__", None)


class RunImports:
    """What plugin code imported while one run ran (:func:`watch_imports` fills it).

    Attributes:
        imported: the plugins not selected whose modules the run's plugin
            code imported, each with the selected plugins that imported them.
    """

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.imported: dict[str, set[str]] = {}
        names = [p.name for p in registry.plugins]
        loaded = {p.name for p in registry.plugins if p.status is PluginStatus.LOADED}
        self._belongs = _Belongs(
            ((p.name, p.value) for p in registry.plugins if names.count(p.name) == 1),
            {name for name in registry.selection if name in loaded},
        )
        self._before = {p.name: set(p.imported_by) for p in registry.plugins if p.imported_by}
        self._seen: set[str] = set()  # plugins an import statement of the run named

    def saw(self, importer: object, modules: Iterable[str]) -> None:
        """An import statement in module ``importer`` imported ``modules``."""
        belongs = self._belongs
        owners = belongs(importer)
        by = {name for name in owners if name in belongs.selected}
        if not by:  # a plugin not selected that a selected one imported: theirs
            for name in owners:
                by |= self._before.get(name, set()) | self.imported.get(name, set())
        for module in modules:
            for plugin in belongs.unselected(module):
                self._seen.add(plugin)
                if by:
                    self.imported.setdefault(plugin, set()).update(by)

    def appeared(self, modules: Iterable[object]) -> None:
        """``modules`` came into ``sys.modules`` without an import statement of the run naming them.

        The plugins not selected they belong to are put down to every
        selected plugin that loaded and is not fsaops's own (whose code
        imports no other plugin): which one imported them is not known.
        """
        found = {p for m in modules for p in self._belongs.unselected(m)} - self._seen
        if not found:
            return
        everyone = {
            p.name
            for p in self.registry.plugins
            if p.name in self._belongs.selected and not p.built_in
        }
        if everyone:
            for plugin in found:
                self.imported.setdefault(plugin, set()).update(everyone)

    def plugins(self) -> tuple[PluginInfo, ...]:
        """The registry's plugins; those the run imported are ``imported``, with their importers."""
        if not self.imported:
            return self.registry.plugins
        order = {name: i for i, name in enumerate(self.registry.selection)}
        out = []
        for p in self.registry.plugins:
            by = self.imported.get(p.name)
            if by and p.status in (PluginStatus.NOT_LOADED, PluginStatus.IMPORTED):
                names = sorted(by | set(p.imported_by), key=order.__getitem__)
                out.append(
                    attrs.evolve(
                        p, status=PluginStatus.IMPORTED, error=None, imported_by=tuple(names)
                    )
                )
            else:
                out.append(p)
        return tuple(out)


class _Recorder(Protocol):
    def saw(self, importer: object, modules: Iterable[str]) -> None: ...


_WATCHING: Final[list[_Recorder]] = []
_WATCH_LOCK: Final = threading.Lock()
_SAVED_IMPORT: Final[list[Callable[..., ModuleType]]] = []
_BUILTIN_IMPORT: Final = builtins.__import__
"""The import function as this module found it: what :func:`_import_hook` falls back on."""
_IN_HOOK: Final = threading.local()
_CORE_GLOBALS: Final[dict[int, dict[str, object]]] = {}
"""The namespaces of fsaops's own modules (read from its package folder), by ``id``, while a
watch is on: their import statements are fsaops's, which imports no plugin, and are not
recorded.  The namespaces are held, so that no other module's can take one's ``id``."""
_CORE_FOLDER: Final = os.path.dirname(os.path.abspath(__file__)) + os.sep


def _core_globals() -> dict[int, dict[str, object]]:
    """The namespaces of the fsaops modules imported now, read from fsaops's own folder."""
    found: dict[int, dict[str, object]] = {}
    for name, module in list(sys.modules.items()):
        if name != "fsaops" and not name.startswith("fsaops."):
            continue
        file = getattr(module, "__file__", None)
        namespace = getattr(module, "__dict__", None)
        if (
            isinstance(file, str)
            and isinstance(namespace, dict)
            and os.path.abspath(file).startswith(_CORE_FOLDER)
        ):
            found[id(namespace)] = namespace
    return found


@contextlib.contextmanager
def _watching(record: _Recorder) -> Iterator[None]:
    """Tell ``record`` of every import statement executed in the block (:func:`_import_hook`).

    The import function found in place is the one the hook calls, unless
    it is the hook itself (left in place by plugin code that put back what
    it saw during an earlier watch); a function that wraps the hook ends
    in it again, which the hook notices and answers with the import
    function this module found.  At the end the function found is put
    back, whatever plugin code did to ``builtins.__import__`` meanwhile.
    """
    with _WATCH_LOCK:
        if not _WATCHING:
            found = builtins.__import__
            _SAVED_IMPORT[:] = [_BUILTIN_IMPORT if found is _import_hook else found]
            _CORE_GLOBALS.clear()
            _CORE_GLOBALS.update(_core_globals())
            builtins.__import__ = _import_hook
        _WATCHING.append(record)
    try:
        yield
    finally:
        with _WATCH_LOCK:
            _WATCHING.remove(record)
            if not _WATCHING:
                builtins.__import__ = _SAVED_IMPORT[0]
                _CORE_GLOBALS.clear()


@contextlib.contextmanager
def _import_module_watched(record: _Recorder) -> Iterator[None]:
    """Tell ``record`` of every ``importlib.import_module`` call made in the block.

    Such a call runs no import statement, so :func:`_import_hook` does not
    see it: a plugin that imports another plugin's entry module this way,
    and changes it, would otherwise leave the other plugin blamed for what
    it found.  The call is recorded as an import statement of the calling
    module would be, once it returned.  At the end the function found is
    put back, whatever plugin code did to ``importlib.import_module``
    meanwhile.
    """
    found = importlib.import_module

    def import_module(name: str, package: str | None = None) -> ModuleType:
        module = found(name, package)
        with contextlib.suppress(Exception):  # recording is ours; the import succeeded
            full = importlib.util.resolve_name(name, package)
            record.saw(sys._getframe(1).f_globals.get("__name__"), [full])
        return module

    functools.update_wrapper(import_module, found)
    importlib.import_module = import_module
    try:
        yield
    finally:
        importlib.import_module = found


_HOOK: Final = "fsaops_filesystem_types"
_ABSENT: Final = object()
"""What :func:`_hook_of` gives for a module without the hook."""


def _hook_of(module: object) -> object:
    """The hook function in ``module``'s own namespace (no plugin code runs), or :data:`_ABSENT`."""
    try:
        return vars(module).get(_HOOK, _ABSENT)
    except TypeError:  # no namespace of its own
        return _ABSENT


class _LoadImports:
    """The modules the import statements of each selected plugin's code named while it loaded.

    It also keeps, for the entry module of each selected plugin that another
    selected plugin's code imports first, the module and its hook as that
    import statement found them: :meth:`changed` tells whether the other
    plugin's code then changed them before the plugin's own turn came.
    """

    def __init__(
        self, belongs: _Belongs, entries: Mapping[str, str], guard: _Guard | None = None
    ) -> None:
        self.belongs = belongs
        self.guard = guard
        self.modules: dict[str, set[str]] = {}
        self._entries = entries  # entry module -> selected plugin
        self._first: dict[str, tuple[str, object, object]] = {}

    def saw(self, importer: object, modules: Iterable[str]) -> None:
        """An import statement in module ``importer`` imported ``modules``."""
        owners = self.belongs(importer)
        for name in owners:
            if name in self.belongs.selected:
                self.modules.setdefault(name, set()).update(modules)
        importers = [name for name in owners if name in self.belongs.selected]
        if not importers:
            return
        for module in modules:
            plugin = self._entries.get(module)
            if plugin is None or plugin in owners or module in self._first:
                continue
            found = sys.modules.get(module)
            if found is not None:
                self._first[module] = (importers[0], found, _hook_of(found))
                if self.guard is not None:  # as the import statement found it
                    self.guard.watch_module(plugin, module)

    def changed(self, entry: str) -> tuple[str, str, object, object] | None:
        """Which plugin changed module ``entry`` since its code imported it, and how.

        Returns ``(plugin, what it did, the module, its hook)`` as they were, or
        ``None`` when no other plugin imported it first or nothing changed.
        """
        first = self._first.get(entry)
        if first is None:
            return None
        plugin, module, hook = first
        now = sys.modules.get(entry)
        if now is not module:
            what = f"put another module in place of {_cut(entry)}"
        else:
            now_hook = _hook_of(now)
            if now_hook is hook:
                return None
            verb = "removed" if now_hook is _ABSENT else "added" if hook is _ABSENT else "replaced"
            what = f"{verb} {_HOOK} in {_cut(entry)}"
        return plugin, what, module, hook


_FIELD_NAMES: Final[dict[type, tuple[str, ...]]] = {}


def _field_names(obj: object) -> tuple[str, ...]:
    """The attrs fields of a table or filesystem type, in order."""
    kind = type(obj)
    names = _FIELD_NAMES.get(kind)
    if names is None:
        fields = attrs.fields(cast("type[AddressSpaceOperations]", kind))
        names = _FIELD_NAMES[kind] = tuple(f.name for f in fields)
    return names


def _state(obj: object) -> tuple[object, ...]:
    """What a table or filesystem type holds now: each field's value (a mapping's: its items).

    Read from the instance's slots, so that no plugin code runs.
    """
    values: list[object] = []
    held: list[object] = []  # after the fields, so that each field keeps its place
    for name in _field_names(obj):
        value = object.__getattribute__(obj, name)
        values.append(value)
        if type(value) is MappingProxyType or type(value) is dict:
            items = cast("Mapping[object, object]", value).items()
            held.extend(itertools.chain.from_iterable(items))
    return (*values, *held)


def _contents(value: object) -> tuple[object, ...] | None:
    """A list's items or a dict's keys and values, when it holds a table or type; else ``None``."""
    if type(value) is list:
        items: tuple[object, ...] = tuple(cast("list[object]", value))
        held: Iterable[object] = items
    elif type(value) is dict:
        pairs = tuple(cast("dict[object, object]", value).items())
        items = tuple(itertools.chain.from_iterable(pairs))
        held = (v for _, v in pairs)
    else:
        return None
    if any(issubclass(type(v), (AddressSpaceOperations, FileSystemType)) for v in held):
        return items
    return None


def _differs(then: tuple[object, ...], now: tuple[object, ...]) -> bool:
    """Whether two states differ: in length, or in any value (by identity)."""
    return len(then) != len(now) or any(a is not b for a, b in zip(then, now, strict=True))


class _Watched:
    """One thing a plugin's code may not change once another plugin's code runs."""

    def __init__(self, owner: str, where: str, obj: object, kind: str) -> None:
        self.owner = owner
        self.where = where
        self.obj = obj  # held, so that no other object takes its id
        self.kind = kind  # "table", "type", "container", "module"
        self.then = self.now()

    def now(self) -> tuple[object, ...]:
        """The thing's state now."""
        if self.kind == "module":
            module = sys.modules.get(self.where, _ABSENT)
            return (module, _hook_of(module))
        if self.kind == "container":
            return _contents(self.obj) or ()
        return _state(self.obj)

    def put_back(self) -> None:
        """Make the thing hold what it held when it was watched (no plugin code runs)."""
        then = self.then
        if self.kind == "module":
            module, hook = then
            if module is _ABSENT:
                sys.modules.pop(self.where, None)
                return
            sys.modules[self.where] = cast(ModuleType, module)
            namespace = vars(module)
            if hook is _ABSENT:
                namespace.pop(_HOOK, None)
            else:
                namespace[_HOOK] = hook
        elif self.kind == "container":
            if type(self.obj) is list:
                cast("list[object]", self.obj)[:] = list(then)
            else:
                box = cast("dict[object, object]", self.obj)
                box.clear()
                box.update(zip(then[::2], then[1::2], strict=True))
        else:
            for name, value in zip(_field_names(self.obj), then, strict=False):
                object.__setattr__(self.obj, name, value)

    def said(self, now: tuple[object, ...]) -> str:
        """What was done to it, as a failure says it."""
        if self.kind == "module":
            if now[0] is not self.then[0]:
                return f"put another module in place of {_cut(self.where)}"
            was, hook = self.then[1], now[1]
            verb = "removed" if hook is _ABSENT else "added" if was is _ABSENT else "replaced"
            return f"{verb} {_HOOK} in {_cut(self.where)}"
        if self.kind == "container":
            return f"changed the contents of {_cut(self.where)}"
        names = _field_names(self.obj)
        fields = [n for n, a, b in zip(names, self.then, now, strict=False) if a is not b]
        what = ", ".join(fields) or "what it holds"
        return f"changed {what} of {self.kind} {_cut(self.where)} in place"


class _Guard:
    """What each selected plugin's code provides, so that another plugin's changes are seen.

    After each plugin's step (its import, its hook), :meth:`check` compares
    every module, table and filesystem type watched with what it held when
    it was watched, by identity: a change one plugin did not make to its own
    is the plugin's whose step ran, and is put back.
    """

    def __init__(self) -> None:
        self._watched: dict[tuple[int, str], _Watched] = {}
        self._scanned: dict[str, object] = {}  # entry module -> the module object read

    def watch(self, owner: str, where: str, obj: object, kind: str) -> None:
        """Watch ``obj`` (a module's name, for a module), which is plugin ``owner``'s."""
        key = (id(obj), kind)
        if key not in self._watched:
            self._watched[key] = _Watched(owner, where, obj, kind)

    def watch_module(self, owner: str, entry: str, *, again: bool = False) -> None:
        """Watch the entry module ``entry`` of ``owner``: its hook, and its tables and types.

        A module's namespace is read once (``again``: read it again, for
        what its own plugin's step added).
        """
        module = sys.modules.get(entry)
        if module is None:
            return
        self.watch(owner, entry, entry, "module")
        if not again and self._scanned.get(entry) is module:
            return
        self._scanned[entry] = module
        try:
            namespace = dict(vars(module))
        except TypeError:
            return
        for key, value in namespace.items():
            if type(key) is str and key.startswith("__"):
                continue  # __builtins__ and the like: not the plugin's
            where = f"{entry}.{key}"
            if issubclass(type(value), AddressSpaceOperations):
                name = value.name if isinstance(value.name, str) else where
                self.watch(owner, name, value, "table")
            elif issubclass(type(value), FileSystemType):
                self.watch_types(owner, [value])
            elif _contents(value) is not None:
                self.watch(owner, where, value, "container")

    def watch_types(self, owner: str, types: Iterable[object]) -> None:
        """Watch filesystem types ``owner``'s hook returned, and their tables."""
        for fstype in types:
            if not issubclass(type(fstype), FileSystemType):
                continue
            fs = cast(FileSystemType, fstype)
            self.watch(owner, f"filesystem {fs.name}", fs, "type")
            for table in fs.modes.values():
                if issubclass(type(table), AddressSpaceOperations):
                    self.watch(owner, table.name, table, "table")

    def check(self, culprit: str) -> tuple[str, str, str] | None:
        """What the step of plugin ``culprit`` changed of another plugin's.

        ``(owner, what it did, what of the owner's it is)``: ``module``, or ``tables``.

        Everything changed is put back (or, when it was the owner's own
        doing, taken as it is now); ``None`` when nothing of another's changed.
        """
        found: tuple[str, str, str] | None = None
        for item in self._watched.values():
            now = item.now()
            if not _differs(item.then, now):
                continue
            if item.owner == culprit:
                item.then = now
                continue
            if found is None:
                rule = "module" if item.kind == "module" else "tables"
                found = (item.owner, item.said(now), rule)
            with contextlib.suppress(Exception):
                item.put_back()
        return found


def _resolved(name: str, globals: Mapping[str, object], level: int) -> str:
    """The absolute name an import of ``name`` at ``level`` (``from .. import``) refers to."""
    if level <= 0:
        return name
    package = globals.get("__package__")
    if not isinstance(package, str) or not package:
        here = globals.get("__name__")
        here = here if isinstance(here, str) else ""
        package = here if "__path__" in globals else here.rpartition(".")[0]
    base = package.rsplit(".", level - 1)[0] if level > 1 else package
    return f"{base}.{name}" if name else base


def _import_hook(
    name: str,
    globals: Mapping[str, object] | None = None,
    locals: Mapping[str, object] | None = None,
    fromlist: Sequence[str] | None = (),
    level: int = 0,
) -> ModuleType:
    """``builtins.__import__`` while a run is watched: import, then tell every watch what.

    Re-entered on one thread for the import it is making (an import
    function plugin code installed that calls what it saw while a watch
    was on, which is this hook), it imports with the function this module
    found, so the chain ends; the imports a module's body makes while it
    is imported are other imports, recorded as any.  What
    it records never fails the import: arguments the builtin takes but
    that name no importer (``globals`` that is not a dictionary) are not
    recorded.
    """
    if (
        globals is not None
        and id(globals) in _CORE_GLOBALS
        and _SAVED_IMPORT
        and _SAVED_IMPORT[0] is _BUILTIN_IMPORT
    ):  # fsaops's own import statement (a function's, run again and again): nothing to record
        return _BUILTIN_IMPORT(name, globals, locals, fromlist, level)
    pending: set[tuple[object, int]] | None = getattr(_IN_HOOK, "pending", None)
    if pending is None:
        pending = _IN_HOOK.pending = set()
    key: tuple[object, int] = (name, level)
    if not isinstance(key[0], str):  # the builtin refuses it: nothing to chain or record
        return _BUILTIN_IMPORT(name, globals, locals, fromlist, level)
    if key in pending:  # the same import, back through a wrapper: end the chain
        return _BUILTIN_IMPORT(name, globals, locals, fromlist, level)
    pending.add(key)
    try:
        importer = _SAVED_IMPORT[0] if _SAVED_IMPORT else _BUILTIN_IMPORT
        module = importer(name, globals, locals, fromlist, level)
    finally:
        pending.discard(key)
    watching = tuple(_WATCHING)
    if watching:
        with contextlib.suppress(Exception):  # recording is ours; the import succeeded
            _record(watching, name, globals, fromlist, level)
    return module


def _record(
    watching: Sequence[_Recorder],
    name: str,
    globals: Mapping[str, object] | None,
    fromlist: Sequence[str] | None,
    level: int,
) -> None:
    """Tell every watch the modules one import statement imported, and from which module."""
    if globals is None:  # called as a function without them: the caller's (the hook's caller)
        globals = sys._getframe(2).f_globals
    if not isinstance(globals, dict):
        return
    full = _resolved(name, globals, level)
    modules = [full]
    if fromlist:
        items: Sequence[object] = fromlist
        modules += [f"{full}.{item}" for item in items if isinstance(item, str) and item != "*"]
    importer = globals.get("__name__")
    for record in watching:
        record.saw(importer, modules)


@contextlib.contextmanager
def watch_imports(registry: Registry) -> Iterator[RunImports]:
    """Record, for the block (a run), what plugin code imports: the plugins it brings in.

    While the block runs, ``builtins.__import__`` is wrapped: every import
    statement executed (one of a module imported already too) that a
    module of a selected plugin runs, and that imports a module of a
    plugin not selected (its entry module's package, or under it), puts
    that plugin down as imported by it.  A plugin not selected that a
    selected one imported imports on its behalf.  Modules that come in
    without an import statement (``importlib.import_module``) are found by
    comparing ``sys.modules`` before and after: which plugin imported them
    is not known, so they are put down to every selected plugin that loaded
    and is not fsaops's own.  An ``importlib.import_module`` of a module
    imported already is not seen.  The original ``__import__`` is put back
    when the last watch ends, whatever plugin code did to it meanwhile.

    Yields:
        the :class:`RunImports` of the block, complete when the block ends.
    """
    record = RunImports(registry)
    if not record._belongs:  # no plugin that could be imported
        yield record
        return
    before = set(sys.modules)
    with _watching(record):
        yield record
    record.appeared(set(sys.modules) - before)


def load_plugins(
    *,
    cli: Sequence[str] | str | None = None,
    env: Mapping[str, str] | None = None,
    config: Sequence[str] | None = None,
    config_source: str | None = None,
    migration: bool = True,
    strict: bool = True,
    entry_points: _EntryPoints | None = None,
    import_timeout: float | None = None,
    meanwhile: Callable[[], object] | None = None,
) -> Registry:
    """Find, select, probe, load and check plugins; return the frozen registry.

    Args:
        cli: the ``--plugins`` value, if given.
        env: the environment to read ``FSAOPS_PLUGINS`` from (default:
            ``os.environ``).
        config: ``[plugins] load`` from the config, if given.
        config_source: the config file, named in messages about its names.
        migration: whether the kernel is built with migration.
        strict: raise the first plugin failure; otherwise record failures
            in the registry (``fsaops plugins`` lists them).
        entry_points: where to read entry points from (tests pass a fake).
        import_timeout: seconds a plugin may take to import, or to return
            its filesystem types, before it is reported as failed (default:
            ``FSAOPS_PLUGIN_TIMEOUT`` or 60; at most :data:`MAX_TIMEOUT`).
        meanwhile: called while the probe's child process works, so that
            this process can do work of its own at the same time (the
            command line imports what it needs next); it must not import
            plugins.

    The selected plugins this process has not imported yet are first
    loaded in a child process (the probe), which is killed if a step takes
    longer than the time limit or a plugin ends it; only the plugins that
    passed are then imported here.  Where no child process can be started
    (no interpreter to run), they are imported here directly, each in a
    thread with the time limit.

    Raises:
        CannotStart: the system refused the probe's child, or the thread
            that follows it (a limit on processes or open files, memory).
        ConfigError: ``config`` names a plugin that is not installed, or the
            time limit is not a positive number of seconds up to
            :data:`MAX_TIMEOUT`.
        PluginSelectionError: the selection names an unknown plugin, or
            one that cannot be selected: its name is registered twice, or
            ``--plugins`` cannot give it (:attr:`Available.problem`).
        PluginLoadError: a selected plugin failed to import or register.
        PluginValidationError: a plugin returned something invalid
            (:class:`~fsaops.errors.PluginConflictError`: two plugins provide
            one filesystem).
    """
    timeout = _import_timeout(import_timeout)
    available = discover(entry_points)
    selected, source = resolve_selection(
        available, cli=cli, env=env, config=config, config_source=config_source
    )
    known: dict[str, PluginError] = {}
    for name in selected:
        problem = available[name].problem
        if problem is not None:
            if strict:
                raise PluginSelectionError(problem)
            known[name] = PluginSelectionError(problem)
    fresh = [name for name in selected if name not in known and not _imported(available[name])]
    probed: set[str] = set()
    if fresh:
        found, probed = _probe(
            available, fresh, timeout, migration=migration, strict=strict, meanwhile=meanwhile
        )
        known.update(found)
        if strict and known:
            raise next(iter(known.values()))
    with plugin_code():  # threads the imports and hooks start: fsaops.process.PLUGIN_THREADS
        registry = _load(
            available,
            selected,
            source,
            migration=migration,
            strict=strict,
            timeout=timeout,
            known=known,
            probed=probed,
            imported={name for name in selected if name not in fresh},
        )
    reclaim_signals()  # what an import took by a way round fsaops.process's guard
    return registry


def _imported(item: Available) -> bool:
    """Whether this process has imported the plugin's module already (so its code has run)."""
    try:
        return item.entry_point.module in sys.modules
    except Exception:
        return False


# -- the probe -----------------------------------------------------------------------------------

PROBE_START: Final = 60.0
"""Seconds the probe's child process may take to start, before any plugin code runs."""

# The child's program.  SIGINT is ignored there: Ctrl-C is the parent's to
# handle, and it kills the child.  The job comes on standard input.
_CHILD = """\
import json, signal, sys
signal.signal(signal.SIGINT, signal.SIG_IGN)
job = json.loads(sys.stdin.buffer.read())
sys.path[:] = job["path"]
from fsaops.plugins import _probe_child
_probe_child(job)
"""

_STEPS = ("import", "register", "check", "hook", "finish")


def _error_event(name: str, error: PluginError) -> dict[str, str]:
    if isinstance(error, PluginConflictError):
        kind, text = "conflict", error.problem
    elif isinstance(error, PluginLoadError):
        kind, text = "load", error.reason
    elif isinstance(error, PluginValidationError):
        kind, text = "validation", error.problem
    else:
        kind, text = "other", str(error)
    label = getattr(error, "plugin", "")
    return {"plugin": name, "kind": kind, "label": label, "text": text}


def _error_from_event(event: Mapping[str, object]) -> PluginError | None:
    label, text, kind = event.get("label"), event.get("text"), event.get("kind")
    if not isinstance(label, str) or not isinstance(text, str):
        return None
    if kind == "load":
        return PluginLoadError(label, text)
    if kind == "validation":
        return PluginValidationError(label, text)
    return None  # a conflict depends on every plugin loaded: found again here


def _probe_child(job: dict[str, Any], channel_fd: int | None = None) -> NoReturn:
    """The probe's child process: load the plugins of ``job``, telling each step on a channel.

    The channel is ``channel_fd`` (a forked child) or standard output (a new
    interpreter).  Standard input, output and error become ``/dev/null``:
    what plugins print or read here goes nowhere.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # and a SIGTERM just ends the child
    if hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, signal.SIG_DFL)  # as a hang-up does
    _die_with_parent(job.get("parent"))
    _limit_memory()
    refuse_forks()  # a plugin's copy of this child would load the others again, and outlive it
    if channel_fd is None:
        channel_fd = os.dup(1)
    if channel_fd <= 2:  # the parent ran with descriptors 0 to 2 closed: move it out of the way
        import fcntl

        channel_fd = fcntl.fcntl(channel_fd, fcntl.F_DUPFD, 3)
    channel = os.fdopen(channel_fd, "w", encoding="utf-8")
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        if fd != null:
            os.dup2(null, fd)
    sys.stdin = open(os.devnull, encoding="utf-8")  # noqa: SIM115
    sys.stdout = sys.stderr = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115

    def emit(event: dict[str, object]) -> None:
        channel.write(json_dumps(event) + "\n")  # bound before any plugin is imported
        channel.flush()

    available = {
        p["name"]: Available(
            p["name"],
            p["dist"],
            p["version"],
            p["value"],
            metadata.EntryPoint(p["name"], p["value"], ENTRY_POINT_GROUP),
        )
        for p in job["plugins"]
    }
    emit({"ready": True})
    # Threads plugin code starts (here it runs in this thread): each is put
    # down to the plugin whose step was running when it was first seen, and
    # every step says whose threads are still alive, so that a process a
    # thread ends is not blamed on the plugin that happened to be loading.
    here = {t.ident for t in threading.enumerate()}
    started: dict[int | None, str] = {}
    loading: list[str] = []

    def watch(step: str, name: str) -> None:
        alive = threading.enumerate()
        for thread in alive:
            if thread.ident not in here and thread.ident not in started and loading:
                started[thread.ident] = loading[-1]
        owners = sorted({started[t.ident] for t in alive if t.ident in started})
        emit({"step": step, "plugin": name, "threads": owners})
        loading[:] = [name] if name else []

    try:
        _load(
            available,
            tuple(available),
            "probe",
            migration=bool(job["migration"]),
            strict=False,
            timeout=None,
            known={},
            watch=watch,
            report=lambda name, error: emit({"error": _error_event(name, error)}),
            interrupts=False,
        )
    except BaseException as exc:  # the loader's own failure: say so, and end
        emit({"crash": describe_exception(exc)})
    emit({"done": True})
    os._exit(0)


PROBE_MEMORY: Final = 2 << 30
"""Bytes of data the probe's child may allocate beyond what it starts with (at most half the RAM).

A plugin that allocates without end (an endless mapping handed to
``FileSystemType``) gets a ``MemoryError`` there, long before its time
limit, instead of filling the machine's memory.
"""


def _limit_memory() -> None:
    """Limit this process's data to what it has plus :data:`PROBE_MEMORY` (Linux; best effort)."""
    try:
        import resource

        with open("/proc/self/status", encoding="ascii") as fp:
            data = next(int(line.split()[1]) * 1024 for line in fp if line.startswith("VmData:"))
        ram = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        limit = data + min(PROBE_MEMORY, max(ram // 2, 1 << 30))
        soft, hard = resource.getrlimit(resource.RLIMIT_DATA)
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        if soft == resource.RLIM_INFINITY or soft > limit:
            resource.setrlimit(resource.RLIMIT_DATA, (limit, hard))
    except (ImportError, OSError, ValueError, StopIteration):
        return


def _die_with_parent(parent: object) -> None:
    """Ask Linux to kill this process when its parent dies (best effort, elsewhere nothing)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        return
    if isinstance(parent, int) and os.getppid() != parent:
        os._exit(1)  # the parent is already gone


READER_END: Final = 10.0
"""Seconds a probe child's reader may take to end once the child is killed (it ends at once)."""


class _Child:
    """The probe's child process: forked from this one, or a new interpreter."""

    def __init__(
        self, pid: int, stream: IO[bytes], popen: subprocess.Popen[bytes] | None = None
    ) -> None:
        self.pid = pid
        self.stream = stream
        self.popen = popen
        self.status: int | None = None
        #: The thread that reads the child's output, once started.
        self.reader: threading.Thread | None = None

    def wait(self, timeout: float) -> int | None:
        """Its exit status (negative: the signal that killed it), or ``None`` if still running."""
        if self.status is not None:
            return self.status
        if self.popen is not None:
            try:
                self.status = self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                return None
            return self.status
        deadline = time.monotonic() + timeout
        while True:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:
                self.status = -signal.SIGKILL  # reaped already: nothing more to know
                return self.status
            if pid:
                self.status = os.waitstatus_to_exitcode(status)
                return self.status
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.01)

    def kill(self) -> None:
        """End it and whatever it started (its process group), reap it, and let its reader end.

        The reader sees the end of the output and ends too: waited for, so
        that this process is single-threaded again when the next round of
        the probe starts, and forks that round's child as it did this one,
        rather than start a new interpreter or not depending on the load.
        """
        if self.status is None:
            with contextlib.suppress(OSError):
                if os.name == "posix":
                    os.killpg(self.pid, signal.SIGKILL)
                elif self.popen is not None:
                    self.popen.kill()
            self.wait(10)
        if self.popen is not None and self.popen.stdin is not None:
            with contextlib.suppress(OSError):
                self.popen.stdin.close()
        reader = self.reader
        if reader is not None and reader is not threading.current_thread():
            deadline = time.monotonic() + READER_END  # bounded: a process outside the group
            reader.join(READER_END)  # may hold the output open
            # Python is done with the thread a moment before the system is.
            task = f"/proc/self/task/{reader.native_id}"
            while reader.native_id is not None and os.path.exists(task):
                if time.monotonic() >= deadline:
                    break
                time.sleep(0.001)

    def ended(self) -> str:
        """How it ended, in words."""
        code = self.wait(5)
        if code is None:
            return "it closed its output"
        if code < 0:
            try:
                return f"killed by {signal.Signals(-code).name}"
            except ValueError:
                return f"killed by signal {-code}"
        return f"exit status {code}"


def _single_threaded() -> bool:
    """Whether this process has one thread only (so that it may fork safely)."""
    if threading.active_count() != 1:
        return False
    try:
        return len(os.listdir("/proc/self/task")) == 1  # threads started by C code too
    except OSError:
        return False


def _fork(job: dict[str, Any]) -> _Child | OSError:
    """The probe's child, forked: it has every module this process has imported already.

    The system's refusal of the pipe or the process is returned, not raised.
    """
    try:
        read, write = os.pipe()
    except OSError as exc:
        return exc
    child = None
    try:
        # A Ctrl-C comes once the fork is done: raised in the handlers Python
        # runs around it (logging's, that releases its lock in the parent), it
        # would be lost there and leave the lock held.
        with signals_deferred():
            try:
                pid = REAL_FORK()
            except OSError as exc:
                os.close(read)
                os.close(write)
                return exc
            if pid == 0:  # the child
                try:
                    os.close(read)
                    os.setsid()
                    _probe_child(job, write)
                finally:
                    os._exit(70)
            os.close(write)
            child = _Child(pid, os.fdopen(read, "rb"))
    except BaseException:  # the Ctrl-C that came meanwhile: the child is not left running
        if child is not None:
            child.kill()
        raise
    return child


#: ``sys.flags`` that a command-line option sets, and the option (repeated as the flag counts).
_FLAG_OPTIONS: Final = (
    ("optimize", "-O"),
    ("dont_write_bytecode", "-B"),
    ("no_user_site", "-s"),
    ("ignore_environment", "-E"),
    ("isolated", "-I"),
    ("safe_path", "-P"),
    ("bytes_warning", "-b"),
    ("verbose", "-v"),
    ("quiet", "-q"),
)


def _interpreter_options() -> list[str]:
    """The options this interpreter runs with (``-O``, ``-W``, ``-X``), for a new one to run with.

    A probe child that is a new interpreter must run a plugin's import as a
    forked child, and this process, do: without ``-O`` there, a plugin's
    ``assert`` fails it in the probe alone; without ``-X
    int_max_str_digits=0``, a conversion this process allows.
    """
    options: list[str] = []
    for flag, option in _FLAG_OPTIONS:
        count = getattr(sys.flags, flag, 0)
        options += [option] * (int(count) if isinstance(count, int) else 0)
    options += [f"-W{warning}" for warning in sys.warnoptions]
    for name, value in sys._xoptions.items():
        options.append(f"-X{name}" if value is True else f"-X{name}={value}")
    return options


def _spawn(job: dict[str, Any]) -> _Child | OSError | None:
    """The probe's child, a new interpreter with the same options, ``sys.path`` and environment.

    ``None`` when there is no interpreter to start, or it could not be
    given its job; the system's refusal of the process or its pipes is
    returned, not raised.
    """
    if not sys.executable:
        return None
    try:
        proc = subprocess.Popen(
            [sys.executable, *_interpreter_options(), "-c", _CHILD],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            close_fds=True,
            start_new_session=os.name == "posix",
        )
    except OSError as exc:
        return exc
    except (ValueError, subprocess.SubprocessError):
        return None
    assert proc.stdin is not None and proc.stdout is not None
    child = _Child(proc.pid, proc.stdout, proc)
    try:
        proc.stdin.write(json_dumps(job).encode("utf-8"))
        proc.stdin.close()
    except OSError:
        child.kill()
        return None
    return child


#: What a plugin is built from (the helpers the package root exports, and
#: the model under them): imported before the probe forks, so that its
#: child imports only the plugins' own modules.
_PLUGIN_API: Final = ("fsaops.buffer", "fsaops.migrate")


def _stuck(step: str, item: Available, what: str) -> PluginError:
    """The failure of a plugin whose ``step`` did not finish: ``what`` happened."""
    if step == "hook":
        return PluginValidationError(item.shown, f"fsaops_filesystem_types() {what}")
    doing = "its import" if step == "import" else "registering it"
    return PluginLoadError(item.shown, f"{doing} {what}")


def _probe(
    available: Mapping[str, Available],
    names: Sequence[str],
    timeout: float,
    *,
    migration: bool,
    strict: bool,
    meanwhile: Callable[[], object] | None = None,
) -> tuple[dict[str, PluginError], set[str]]:
    """Load ``names`` in child processes first; the failures found, by plugin, and who passed.

    One child loads them all.  When a plugin hangs or ends the child, it is
    named, and (unless ``strict``) a new child tries the others.  A plugin
    passed when a child took it through every step and the child finished.
    """
    errors: dict[str, PluginError] = {}
    passed: set[str] = set()
    remaining = list(names)
    while remaining:
        outcome = _probe_once([available[n] for n in remaining], timeout, migration, meanwhile)
        meanwhile = None
        if outcome is None:
            break  # no child process here: the import threads keep the time limit
        found, stuck = outcome
        errors.update(found)
        if stuck is None:
            passed.update(n for n in remaining if n not in errors)
            break
        errors[stuck[0]] = stuck[1]
        if strict:
            break
        remaining = [n for n in remaining if n not in errors]
    return errors, passed


def _probe_once(
    items: Sequence[Available],
    timeout: float,
    migration: bool,
    meanwhile: Callable[[], object] | None = None,
) -> tuple[dict[str, PluginError], tuple[str, PluginError] | None] | None:
    """One child: the failures it reported, and the plugin that hung or ended it, if any.

    The child is forked where that is safe (Linux, a single thread), so it
    starts with what this process has imported; otherwise it is a new
    interpreter.  ``None`` when no child could be started or it never got
    to the plugins.

    Raises:
        CannotStart: the system refused both children (a limit on
            processes or open files, memory): loading the plugins in this
            process instead would blame them for the environment.
    """
    path: list[object] = list(sys.path)  # entries may be anything
    job = {
        "parent": os.getpid(),
        "path": [p for p in path if isinstance(p, str)],
        "migration": migration,
        "plugins": [
            {"name": i.name, "dist": i.dist, "version": i.version, "value": i.value} for i in items
        ],
    }
    child: _Child | OSError | None = None
    if sys.platform.startswith("linux") and _single_threaded():
        for module in _PLUGIN_API:
            importlib.import_module(module)
        child = _fork(job)
    if not isinstance(child, _Child):
        child = _spawn(job) or child
    if isinstance(child, OSError):
        raise cannot_start("the plugin probe's process", child)
    if child is None:
        return None
    try:
        return _watch_child(child, {i.name: i for i in items}, timeout, meanwhile)
    finally:
        child.kill()


def _watch_child(
    child: _Child,
    items: Mapping[str, Available],
    timeout: float,
    meanwhile: Callable[[], object] | None,
) -> tuple[dict[str, PluginError], tuple[str, PluginError] | None] | None:
    """Follow the child's steps, each against the time limit (from when the child told it)."""
    events: queue.Queue[tuple[float, bytes | None]] = queue.Queue()
    stream = child.stream

    def read() -> None:
        try:
            for line in stream:
                events.put((time.monotonic(), line))
        except (OSError, ValueError):
            pass
        finally:
            events.put((time.monotonic(), None))
            with contextlib.suppress(OSError):
                stream.close()

    reader = threading.Thread(target=read, name="fsaops plugin probe", daemon=True)
    try:
        reader.start()
    except RuntimeError as exc:  # "can't start new thread": a limit of the system
        raise cannot_start("the thread that follows the plugin probe", exc) from None
    child.reader = reader
    deadline = time.monotonic() + max(timeout, PROBE_START)
    if meanwhile is not None:
        meanwhile()
    ready = False
    step = ""
    plugin: Available | None = None
    threaded: list[str] = []  # plugins whose threads were alive at the last step
    errors: dict[str, PluginError] = {}
    while True:
        try:  # what the child has said already counts, however late it is read
            when, line = events.get_nowait()
        except queue.Empty:
            left = deadline - time.monotonic()
            if left <= 0:
                if not ready:
                    return None
                if plugin is None:
                    raise PluginError(
                        f"loading plugins did not finish within {timeout:g} s ({TIMEOUT_VAR})"
                    ) from None
                _not_alone(plugin, step, threaded, items, _late(step, timeout))
                return errors, (plugin.name, _stuck(step, plugin, _late(step, timeout)))
            try:
                when, line = events.get(timeout=left)
            except queue.Empty:
                continue
        if line is None:  # the child ended without saying it was done
            if not ready:
                return None  # before any plugin code ran: no probe here
            if plugin is None:  # between plugins: a thread one of them started
                names = ", ".join(_cut(name) for name in items)
                raise PluginError(
                    f"loading plugins ended the probe's process ({child.ended()}) between "
                    f"steps: one of {names} did it"
                )
            ended = f"ended the process ({child.ended()})"
            _not_alone(plugin, step, threaded, items, ended)
            return errors, (plugin.name, _stuck(step, plugin, ended))
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if not isinstance(event, dict):
            continue
        if event.get("ready") is True:
            ready = True
            deadline = when + timeout
        elif event.get("step") in _STEPS:
            step = str(event["step"])
            plugin = items.get(str(event.get("plugin")))
            owners = event.get("threads")
            threaded = [n for n in owners if n in items] if isinstance(owners, list) else []
            deadline = when + timeout
        elif isinstance(event.get("error"), dict):
            name = event["error"].get("plugin")
            error = _error_from_event(event["error"])
            if isinstance(name, str) and name in items and error is not None:
                errors.setdefault(name, error)
        elif "crash" in event:
            return None
        elif event.get("done") is True:
            return errors, None


def _not_alone(
    plugin: Available, step: str, threaded: Sequence[str], items: Mapping[str, Available], did: str
) -> None:
    """Raise when a thread another plugin left running may have done what the step is blamed for.

    A thread plugin code started runs on while the next plugin loads: the
    process it ends, or the interpreter lock it holds, is then not surely
    the loading plugin's doing.  No one is blamed alone; both are named.
    """
    others = [name for name in threaded if name != plugin.name]
    if not others:
        return
    theirs = ", ".join(items[name].shown for name in others)
    raise PluginError(
        f"loading plugins {did} while plugin {plugin.shown} was at its {step} step, but "
        f"{theirs} left a thread running: one of them did it (a thread a plugin starts runs "
        "on while the others load)"
    )


def _late(step: str, timeout: float | None) -> str:
    verb = "return" if step == "hook" else "finish"
    return f"did not {verb} within {timeout:g} s ({TIMEOUT_VAR})"


def describe_member(table: AddressSpaceOperations, member: str = "migratepage") -> str | None:
    """The qualified name of a table's member, or ``None`` when missing."""
    return member_name(getattr(table, member))
