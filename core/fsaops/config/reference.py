"""The configuration reference: every key with its type, default and description."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import attrs

from fsaops.config.schema import (
    ByteSize,
    FaultsConfig,
    KernelConfig,
    MigrateConfig,
    MountConfig,
    PluginsConfig,
    ProcessesConfig,
    SwapConfig,
    WorkloadConfig,
)
from fsaops.config.sizes import MiB, format_size

__all__ = ["ConfigKey", "reference"]


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
    int | None: "integer",
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
