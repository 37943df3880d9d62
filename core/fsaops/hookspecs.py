"""Hook specifications for fsaops plugins.

A plugin is a module registered under the ``fsaops`` entry-point group
that implements some of these hooks with the :data:`hookimpl` marker::

    # pyproject.toml
    [project.entry-points.fsaops]
    myfs = "fsaops_myfs"

    # fsaops_myfs/__init__.py
    import fsaops

    @fsaops.hookimpl
    def fsaops_filesystem_types():
        return [fsaops.FileSystemType(name="myfs", modes={"default": myfs_aops})]

Hooks are called once, when plugins load; the tables they return are then
called directly by the engine, never through pluggy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from collections.abc import Sequence

    from fsaops.aops import FileSystemType

__all__ = ["PROJECT_NAME", "fsaops_filesystem_types", "hookimpl", "hookspec"]

PROJECT_NAME = "fsaops"
"""The pluggy project name the hook markers are made for."""

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
"""Marks a function in this module as a hook specification."""

hookimpl = pluggy.HookimplMarker(PROJECT_NAME)
"""Marks a plugin's function as the implementation of a hook."""


@hookspec
def fsaops_filesystem_types() -> Sequence[FileSystemType]:  # type: ignore[empty-body]
    """Return the filesystem types this plugin provides.

    Called once per plugin when plugins are loaded.  Each
    :class:`~fsaops.FileSystemType` names one filesystem and gives one
    :class:`~fsaops.AddressSpaceOperations` table per mount mode.  The
    loader checks what comes back: a sequence of ``FileSystemType``, names
    unique across every loaded plugin, each mode's table complete with
    members that take the arguments the kernel passes them.  A problem is
    reported as a :class:`~fsaops.errors.PluginValidationError` naming the
    plugin as ``distribution[entry]``.

    :return: the filesystem types, possibly empty: any iterable (not a
        string) of at most 1,000 (:data:`fsaops.plugins.MAX_FILESYSTEM_TYPES`)
        ``FileSystemType``.  The loader reads no more than one beyond that
        bound, so an endless iterable is reported, not followed.

    .. note::
        The tables are called directly by the engine, once per page, so
        keep their members plain functions.  On a kernel built without
        migration the loader removes ``migratepage`` from every table,
        as the kernel's headers ``#define`` the helpers to ``NULL``.

    Use in plugins: return module-level constants; the hook may be called
    again for a fresh registry.

    .. versionadded:: 0.1
    """
