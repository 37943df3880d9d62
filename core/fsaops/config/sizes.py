"""Sizes in a scenario file (``"64MiB"`` and friends, read and written), and numbers of seconds."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

__all__ = ["KiB", "MiB", "TooSmall", "format_size", "parse_number", "parse_size", "too_small"]

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
# ASCII: 0-9 and ASCII spaces, not other scripts' digits and spaces
_SIZE_RE: Final = re.compile(r"\s*([0-9]+)\s*([A-Za-z]*)\s*", re.ASCII)


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


# -- numbers ----------------------------------------------------------------------

# 0-9 only: float() also takes other scripts' digits ('٣'), '1_0', 'inf' and 'nan'.
_NUMBER_RE: Final = re.compile(r"\s*[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\s*")


class TooSmall(ValueError):
    """A number that is not 0 as written, but too small for a float: it would be 0."""


def too_small(text: str, value: float) -> bool:
    """Whether ``text`` (a number as written) is not 0, but ``value`` (it as a float) is.

    ``1e-400`` is positive, and 0.0 as a float: taken as it reads, a time
    limit would be none and a fraction of pages no page.
    """
    mantissa = re.split(r"[eE]", text, maxsplit=1)[0]
    return value == 0 and any(digit in mantissa for digit in "123456789")


def parse_number(text: str) -> float:
    """``"2.5"`` → 2.5: a decimal number written with the digits 0 to 9, as a float.

    A sign, a fraction and an exponent are taken (``"1e-3"``); nothing
    else ``float()`` takes (``"1_0"``, ``"٣"``, ``"inf"``, ``"nan"``).  A
    number too large for a float is infinite: the caller's range refuses it.

    Raises:
        TooSmall: not 0 as written, but too small to tell from 0 (``"1e-400"``).
        ValueError: not such a number.
    """
    if not text.isascii() or _NUMBER_RE.fullmatch(text) is None:
        raise ValueError(f"not a number: {text!r}")
    value = float(text)
    if too_small(text, value):
        raise TooSmall(f"{text.strip()} is not 0, but too small to tell from 0")
    return value
