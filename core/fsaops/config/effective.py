"""Defaults that follow the plugin selection, and the built-in scenario cut to fit it.

A key the file leaves out adds nothing the selected plugins cannot serve:
``[swap] slots`` and ``[processes] anon_pages`` default to a swap device and
anonymous memory only when the swap plugin is loaded.  The built-in
scenario goes further: it keeps only the mounts the selected plugins
provide, and the swap device and anonymous memory only with the swap
plugin, and names every part it left out (:class:`LeftOut`).  A scenario
file keeps every part it names: a mount of a filesystem no selected plugin
provides is an error there, as anything explicit the plugins cannot serve.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import attrs

if TYPE_CHECKING:
    from fsaops.config.schema import Config
    from fsaops.plugins import Registry

__all__ = [
    "DEFAULT_ANON_PAGES",
    "DEFAULT_SWAP_SLOTS",
    "LeftOut",
    "effective_config",
    "not_mounted",
]

DEFAULT_SWAP_SLOTS: Final = 4096
"""Slots of the swap device when ``[swap] slots`` is left out and the swap plugin is loaded."""

DEFAULT_ANON_PAGES: Final = 256
"""Pages of anonymous memory when ``[processes] anon_pages`` is left out (swap plugin loaded)."""

SWAP: Final = "swap"
"""The filesystem type that serves the swap cache."""


@attrs.frozen
class LeftOut:
    """A part of the built-in scenario that the selected plugins cannot serve, left out.

    Attributes:
        key: the scenario key of the part (``mount[0]``, ``swap.slots``).
        what: what the part is (``ext2 default: 4 files, 320 pages``).
        needs: the filesystem a selected plugin would have to provide.
    """

    key: str
    what: str
    needs: str

    def describe(self) -> str:
        """``mount[0] (ext2 default: 4 files, 320 pages): needs filesystem ext2``."""
        return (
            f"{self.key} ({self.what}): needs filesystem {self.needs!r}, "
            "which no selected plugin provides"
        )

    def to_json(self) -> dict[str, str]:
        """Plain data for JSON."""
        return {"key": self.key, "what": self.what, "needs": self.needs}


def effective_config(
    config: Config, registry: Registry, *, builtin: bool = False
) -> tuple[Config, tuple[LeftOut, ...]]:
    """The scenario the run will build: defaults filled in from the selection.

    With ``builtin`` (the built-in scenario), the parts the selected plugins
    cannot serve are left out and returned; otherwise nothing is left out
    and the checks that follow reject what cannot be served.
    """
    loaded = registry.filesystems
    left: list[LeftOut] = []
    mounts = config.mount
    if builtin:
        kept = []
        for i, mount in enumerate(config.mount):
            if mount.fs in loaded:
                kept.append(mount)
                continue
            mode = mount.mode or "default"
            left.append(
                LeftOut(
                    key=f"mount[{i}]",
                    what=f"{mount.fs} {mode}: {mount.files} file(s), {mount.pages} pages",
                    needs=mount.fs,
                )
            )
        mounts = tuple(kept)
    swap_loaded = SWAP in loaded
    slots = config.swap.slots
    anon = config.processes.anon_pages
    if builtin and not swap_loaded:
        if slots:
            left.append(LeftOut("swap.slots", f"a swap device of {slots} slots", SWAP))
        if anon:
            left.append(LeftOut("processes.anon_pages", f"{anon} pages of anonymous memory", SWAP))
        slots, anon = 0, 0
    if slots is None:
        slots = DEFAULT_SWAP_SLOTS if swap_loaded else 0
    if anon is None:
        anon = DEFAULT_ANON_PAGES if swap_loaded and config.processes.count > 0 else 0
    effective = attrs.evolve(
        config,
        mount=mounts,
        swap=attrs.evolve(config.swap, slots=slots),
        processes=attrs.evolve(config.processes, anon_pages=anon),
    )
    return effective, tuple(left)


def not_mounted(config: Config, registry: Registry) -> tuple[str, ...]:
    """The filesystems the selected plugins provide that ``config`` mounts nowhere, by name.

    For the built-in scenario, whose mounts are fixed: a third-party
    plugin's filesystem is loaded but not tried, and the report says so,
    lest its OK be taken for one.  The swap type serves anonymous memory,
    not a mount, and is never listed.
    """
    mounted = {mount.fs for mount in config.mount}
    return tuple(sorted(name for name in registry.filesystems if name not in mounted | {SWAP}))
