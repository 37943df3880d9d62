"""What ``fsaops explore SCENARIO.toml`` takes from a scenario, and what it leaves.

The explorer builds its own small machine (:mod:`fsaops.explore.setup`):
a few pages of one mount's table, each in the state its tasks need, on two
nodes.  From a scenario it takes the plugins, the kernel's migration,
semantics, page size, I/O latency and commit interval, the mount it
explores (filesystem, mode, block size) and the layout of its blocks
(``[workload] out_of_line``).  Every other key shapes a machine the
explorer does not build; :func:`not_used` names those a scenario sets, so
that the summary can say so instead of dropping them.
"""

from __future__ import annotations

from typing import Final

import attrs

from fsaops.config.schema import Config, MountConfig

__all__ = ["USED", "USED_MOUNT_KEYS", "not_used"]

USED: Final = frozenset(
    {
        "kernel.migration",  # checked: a kernel without migration has none to explore
        "kernel.page_size",
        "kernel.semantics",
        "kernel.io_latency",
        "kernel.commit_interval",
        "plugins.load",
        "workload.out_of_line",  # when the explored pages' blocks are laid out of line
    }
)
"""The keys of the scenario's tables (but ``[[mount]]``) that the explorer uses."""

USED_MOUNT_KEYS: Final = frozenset({"fs", "mode", "block_size"})
"""The keys of the explored ``[[mount]]`` that the explorer uses."""


def _set(table: object, key: attrs.Attribute[object]) -> bool:
    """Whether ``key`` of ``table`` has other than its default value."""
    return key.default is attrs.NOTHING or getattr(table, key.name) != key.default


def not_used(config: Config, mount: int | None, *, out_of_line: bool) -> tuple[str, ...]:
    """The keys ``config`` sets (to other than their defaults) that the explorer does not use.

    Args:
        config: the scenario.
        mount: the index of the ``[[mount]]`` explored (``None``: a type the
            scenario does not mount, such as ``swap``); every other mount is
            named whole (``mount[1]``), the explored one by the keys the
            explorer leaves (``mount[0].pages``).
        out_of_line: the explored pages' blocks were laid out of line; if
            not, ``workload.out_of_line = true`` is named too (anonymous
            memory, a buffer-cache mapping, a mount whose blocks are as
            large as a page).

    Returns:
        Dotted key names in the order of the scenario's tables.
    """
    names: list[str] = []
    for field in attrs.fields(Config):
        if field.name == "mount":
            for i, each in enumerate(config.mount):
                if i != mount:
                    names.append(f"mount[{i}]")
                    continue
                names += [
                    f"mount[{i}].{key.name}"
                    for key in attrs.fields(MountConfig)
                    if key.name not in USED_MOUNT_KEYS and _set(each, key)
                ]
            continue
        table = getattr(config, field.name)
        for key in attrs.fields(type(table)):
            name = f"{field.name}.{key.name}"
            unused = name not in USED or (name == "workload.out_of_line" and not out_of_line)
            if unused and _set(table, key):
                names.append(name)
    return tuple(names)
