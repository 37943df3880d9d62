"""Finding, selecting, loading and checking plugins; the frozen :class:`Registry`.

There is one path for built-in and third-party plugins alike:

1. read the ``fsaops`` entry points from installed metadata (nothing is
   imported);
2. decide the selection: ``--plugins`` on the command line, else the
   ``FSAOPS_PLUGINS`` environment variable (an empty value selects none),
   else ``[plugins] load`` in the config, else everything installed; an
   unknown or duplicated name is an error;
3. block every name not selected, so it is never imported;
4. import and register the selected plugins (a failure names the plugin as
   ``distribution[entry]``);
5. ``check_pending()``: every hook a plugin implements must exist;
6. call ``fsaops_filesystem_types`` on each plugin and validate the result;
7. freeze everything into a :class:`Registry`.
"""

from __future__ import annotations

import difflib
import enum
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from importlib import metadata

import attrs
import pluggy

from fsaops import hookspecs
from fsaops.aops import (
    MEMBERS,
    AddressSpaceOperations,
    FileSystemType,
    configure_aops,
    member_name,
    signature_problem,
)
from fsaops.errors import (
    ConfigError,
    PluginError,
    PluginLoadError,
    PluginSelectionError,
    PluginValidationError,
)
from fsaops.frozen import frozen_mapping

__all__ = [
    "ENTRY_POINT_GROUP",
    "ENV_VAR",
    "TIMEOUT_VAR",
    "PluginInfo",
    "PluginStatus",
    "Registry",
    "discover",
    "load_plugins",
    "resolve_selection",
]

ENTRY_POINT_GROUP = "fsaops"
"""The entry-point group plugins register under."""

ENV_VAR = "FSAOPS_PLUGINS"
"""Comma-separated entry-point names of the plugins to load; empty for none."""

_EntryPoints = Callable[[], Iterable[metadata.EntryPoint]]


@attrs.frozen
class Available:
    """An installed plugin, from metadata only."""

    name: str
    dist: str
    version: str
    value: str
    entry_point: metadata.EntryPoint = attrs.field(eq=False, repr=False)

    @property
    def label(self) -> str:
        """``distribution[entry]``."""
        return f"{self.dist}[{self.name}]"


class PluginStatus(enum.Enum):
    """What became of an installed plugin (``fsaops plugins`` shows the value)."""

    #: Selected, imported, registered and validated.
    LOADED = "loaded"
    #: Installed but not selected: never imported.
    NOT_LOADED = "not loaded"
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
        status: loaded, not loaded (not selected) or failed.
        error: why it failed, when it did.
        filesystems: the filesystem types it provides (loaded plugins).
    """

    name: str
    dist: str
    version: str
    value: str
    status: PluginStatus
    error: str | None = None
    filesystems: tuple[FileSystemType, ...] = ()

    @property
    def label(self) -> str:
        """``distribution[entry]``, how errors and listings name the plugin."""
        return f"{self.dist}[{self.name}]"


@attrs.frozen
class Registry:
    """The loaded plugins and their filesystem types, frozen.

    Attributes:
        plugins: every installed plugin, loaded or not, in name order.
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
        hint = ""
        for info in self.plugins:
            if info.name == name and info.status is not PluginStatus.LOADED:
                hint = f"; plugin {info.label} provides it but is {info.status.value}"
        raise ConfigError(f"unknown filesystem {name!r} (loaded: {known}){hint}") from None

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


def _dist_of(ep: metadata.EntryPoint) -> tuple[str, str]:
    dist = ep.dist
    if dist is None:
        return "?", "?"
    return dist.metadata["Name"] or "?", dist.version or "?"


def discover(entry_points: _EntryPoints | None = None) -> dict[str, Available]:
    """Every installed plugin by entry-point name, from metadata only.

    Raises:
        PluginSelectionError: two distributions register the same name.
    """
    if entry_points is None:

        def entry_points() -> Iterable[metadata.EntryPoint]:
            return metadata.entry_points(group=ENTRY_POINT_GROUP)

    found: dict[str, Available] = {}
    for ep in entry_points():
        dist, version = _dist_of(ep)
        item = Available(ep.name, dist, version, ep.value, ep)
        other = found.get(ep.name)
        if other is not None:
            if other.dist == dist and other.value == ep.value:
                continue  # the same distribution seen twice on sys.path
            raise PluginSelectionError(
                f"plugin name {ep.name!r} is registered twice: by {other.label} "
                f"and by {item.label}; uninstall one of them"
            )
        found[ep.name] = item
    return dict(sorted(found.items()))


TIMEOUT_VAR = "FSAOPS_PLUGIN_TIMEOUT"
"""Seconds a plugin may take to import (default 60)."""


def _import(ep: metadata.EntryPoint, timeout: float | None) -> object:
    """Import an entry point's module, giving up after ``timeout`` seconds.

    The import runs in a daemon thread so that a plugin whose import hangs
    is reported instead of hanging the program.
    """
    if timeout is None:
        try:
            timeout = float(os.environ.get(TIMEOUT_VAR, "60"))
        except ValueError:
            raise PluginSelectionError(
                f"{TIMEOUT_VAR} must be a number of seconds, not {os.environ[TIMEOUT_VAR]!r}"
            ) from None
    result: list[object] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            result.append(ep.load())
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=run, name=f"import {ep.name}", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise TimeoutError(f"its import did not finish within {timeout:g} s")
    if failure:
        raise failure[0]
    return result[0]


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


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
    (an empty value means none), then ``config`` (``[plugins] load``), then
    everything available.  The names a config gives are checked even when
    something with more precedence overrides them: a typo in a file is a
    typo whoever wins.

    Returns:
        the selected names, and the source (``--plugins``, ``FSAOPS_PLUGINS``,
        ``[plugins] load`` or ``installed``).

    Raises:
        PluginSelectionError: a name is not installed or given twice.
        ConfigError: ``config`` names a plugin that is not installed; the
            message names ``config_source`` and the key (``plugins.load[1]``).
    """
    env = os.environ if env is None else env
    known = sorted(available)
    if config is not None:
        _check_config_names(config, known, config_source)
    names: list[str]
    if cli is not None:
        names, source = (_split(cli) if isinstance(cli, str) else list(cli)), "--plugins"
    elif ENV_VAR in env:
        names, source = _split(env[ENV_VAR]), ENV_VAR
    elif config is not None:
        names, source = list(config), "[plugins] load"
    else:
        return tuple(known), "installed"
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise PluginSelectionError(f"{source} names plugin {name!r} twice")
        seen.add(name)
        if name not in known:
            have = ", ".join(known) or "none"
            raise PluginSelectionError(
                f"{source} names plugin {name!r}, which is not installed (installed: {have})"
            )
    return tuple(names), source


def _check_config_names(names: Sequence[str], known: list[str], source: str | None) -> None:
    problems = []
    for i, name in enumerate(names):
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            problems.append(
                f"plugins.load[{i}]: plugin {name!r} is not installed{hint} "
                f"(installed: {', '.join(known) or 'none'})"
            )
    if problems:
        where = f"{source}: " if source else ""
        raise ConfigError(where + "; ".join(problems))


def _validate_table(label: str, fs: str, mode: str, table: object) -> None:
    if not isinstance(table, AddressSpaceOperations):
        raise PluginValidationError(
            label,
            f"filesystem {fs!r} mode {mode!r}: table is {type(table).__name__}, "
            "not an AddressSpaceOperations",
        )
    name: object = table.name
    if not isinstance(name, str) or not name:
        raise PluginValidationError(label, f"filesystem {fs!r} mode {mode!r}: table has no name")
    for member in MEMBERS:
        fn = getattr(table, member)
        if fn is None:
            continue
        problem = signature_problem(member, fn)
        if problem is not None:
            raise PluginValidationError(label, f"table {table.name}: {problem}")


def _validate_types(label: str, result: object) -> tuple[FileSystemType, ...]:
    if isinstance(result, (str, bytes)) or not isinstance(result, Iterable):
        raise PluginValidationError(
            label,
            "fsaops_filesystem_types() must return a sequence of FileSystemType, "
            f"not {type(result).__name__}",
        )
    types = tuple(result)
    for fstype in types:
        if not isinstance(fstype, FileSystemType):
            raise PluginValidationError(
                label,
                "fsaops_filesystem_types() returned a "
                f"{type(fstype).__name__}, not a FileSystemType",
            )
        fs_name: object = fstype.name
        if not isinstance(fs_name, str) or not fs_name.isidentifier():
            raise PluginValidationError(
                label, f"filesystem name {fstype.name!r} is not a simple name"
            )
        if not fstype.modes:
            raise PluginValidationError(label, f"filesystem {fstype.name!r} has no modes")
        if fstype.default_mode not in fstype.modes:
            raise PluginValidationError(
                label,
                f"filesystem {fstype.name!r}: default mode {fstype.default_mode!r} "
                "is not one of its modes",
            )
        sizes: tuple[object, ...] = tuple(fstype.block_sizes)
        for size in sizes:
            if not isinstance(size, int) or size < 512 or size & (size - 1):
                raise PluginValidationError(
                    label, f"filesystem {fstype.name!r}: block size {size!r} is not valid"
                )
        if fstype.default_block_size not in fstype.block_sizes:
            raise PluginValidationError(
                label,
                f"filesystem {fstype.name!r}: default block size "
                f"{fstype.default_block_size} is not one of its block sizes",
            )
        for hook in ("fill_super", "read_metadata"):
            fn: object = getattr(fstype, hook)
            if fn is not None and not callable(fn):
                raise PluginValidationError(
                    label, f"filesystem {fstype.name!r}: {hook} is not callable"
                )
        for mode, table in fstype.modes.items():
            _validate_table(label, fstype.name, mode, table)
    return types


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
) -> Registry:
    """Find, select, load and check plugins; return the frozen registry.

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
        import_timeout: seconds a plugin may take to import before it is
            reported as failed (default: ``FSAOPS_PLUGIN_TIMEOUT`` or 60).

    Raises:
        PluginSelectionError: the selection names an unknown plugin, or a
            name is registered twice.
        ConfigError: ``config`` names a plugin that is not installed.
        PluginLoadError: a selected plugin failed to import or register.
        PluginValidationError: a plugin returned something invalid.
    """
    available = discover(entry_points)
    selected, source = resolve_selection(
        available, cli=cli, env=env, config=config, config_source=config_source
    )
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    for name in available:
        if name not in selected:
            pm.set_blocked(name)
    errors: dict[str, PluginError] = {}
    for name in selected:
        item = available[name]
        try:
            module = _import(item.entry_point, import_timeout)
        except (Exception, SystemExit) as exc:  # a plugin calling sys.exit() is reported too
            errors[name] = PluginLoadError(item.label, exc)
            continue
        try:
            pm.register(module, name=name)
        except Exception as exc:
            errors[name] = PluginLoadError(item.label, exc)
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        bad = pm.get_name(exc.plugin) or "?"
        label = available[bad].label if bad in available else bad
        errors[bad] = PluginValidationError(label, str(exc))
        pm.unregister(exc.plugin)
    provided: dict[str, tuple[FileSystemType, ...]] = {}
    for impl in pm.hook.fsaops_filesystem_types.get_hookimpls():
        name = impl.plugin_name
        if name in errors:
            continue
        label = available[name].label if name in available else name
        try:
            result = impl.function()
        except Exception as exc:
            errors[name] = PluginValidationError(
                label, f"fsaops_filesystem_types() raised {type(exc).__name__}: {exc}"
            )
            continue
        try:
            provided[name] = _validate_types(label, result)
        except PluginValidationError as exc:
            errors[name] = exc
    filesystems: dict[str, FileSystemType] = {}
    owners: dict[str, str] = {}
    for name in sorted(provided):
        clash = next((f.name for f in provided[name] if f.name in filesystems), None)
        if clash is not None:
            first = available[owners[clash]].label
            errors[name] = PluginValidationError(
                available[name].label, f"filesystem {clash!r} is already provided by {first}"
            )
            continue
        for fstype in provided[name]:
            filesystems[fstype.name] = fstype
            owners[fstype.name] = name
    if strict and errors:
        raise next(iter(errors.values()))
    infos = []
    for name, item in available.items():
        if name in errors:
            status, error = PluginStatus.FAILED, str(errors[name])
        elif name in selected:
            status, error = PluginStatus.LOADED, None
        else:
            status, error = PluginStatus.NOT_LOADED, None
        fs = tuple(f for f in provided.get(name, ()) if owners.get(f.name) == name)
        infos.append(
            PluginInfo(
                name=name,
                dist=item.dist,
                version=item.version,
                value=item.value,
                status=status,
                error=error,
                filesystems=fs if status is PluginStatus.LOADED else (),
            )
        )
    return Registry(
        plugins=tuple(infos),
        filesystems=filesystems,
        owners=owners,
        migration=migration,
        selection=selected,
        selected_by=source,
    )


def describe_member(table: AddressSpaceOperations, member: str = "migratepage") -> str | None:
    """The qualified name of a table's member, or ``None`` when missing."""
    return member_name(getattr(table, member))
