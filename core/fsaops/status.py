"""What a command came to: its status, its exit code, and the JSON envelope.

Every ``fsaops`` command that takes ``--json`` prints exactly one JSON
object on standard output, whatever happens: the report when the command
did its work, otherwise an envelope with the :class:`Status` and the error.
Both carry :data:`SCHEMA`, so that scripts (and ``fsaops diff``) can tell
versions of the report apart.
"""

from __future__ import annotations

import enum
from typing import Any, Final

__all__ = ["SCHEMA", "Status", "envelope"]

SCHEMA: Final = 1
"""The version of the JSON the commands print; it changes when a field changes meaning."""


class Status(enum.Enum):
    """The outcome of a command, as its JSON's ``status`` and its exit code."""

    #: The run completed, nothing was lost, every invariant holds (exit 0).
    OK = "ok"
    #: A page's newest data cannot be read back (exit 1).
    DATA_LOST = "data lost"
    #: The machine's state broke a rule of the kernel (exit 1).
    INVARIANT_BROKEN = "invariant broken"
    #: Code reached a ``BUG()``, or waited for what could never happen (exit 1).
    KERNEL_BUG = "kernel bug"
    #: With ``--strict``: a table did something wrong that lost nothing (exit 1).
    FINDINGS = "findings"
    #: The command line, a file, a value or a plugin was not acceptable (exit 2).
    BAD_INPUT = "bad input"
    #: The run went past its wall-clock limit (exit 1).
    TIMEOUT = "timeout"
    #: Interrupted (Ctrl-C, exit 130).
    INTERRUPTED = "interrupted"

    @property
    def exit_code(self) -> int:
        """0 for ok, 2 for bad input, 130 when interrupted, otherwise 1."""
        if self is Status.OK:
            return 0
        if self is Status.BAD_INPUT:
            return 2
        if self is Status.INTERRUPTED:
            return 130
        return 1


def envelope(status: Status, error: str | None = None, **fields: Any) -> dict[str, Any]:
    """The JSON object of a command that could not print its report: schema, status, error."""
    data: dict[str, Any] = {"schema": SCHEMA, "status": status.value}
    if error is not None:
        data["error"] = error
    data.update(fields)
    return data
