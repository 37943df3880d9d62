"""Sizes in a scenario file: ``"64MiB"`` and friends, read and written."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

__all__ = ["KiB", "MiB", "format_size", "parse_size"]

KiB: Final = 1024
MiB: Final = 1024 * KiB

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
_SIZE_RE: Final = re.compile(r"\s*([0-9]+)\s*([A-Za-z]*)\s*")  # 0-9: not other scripts' digits


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
