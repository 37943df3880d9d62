"""The ``fsaops`` command's entry point: :func:`fsaops.cli.main`, once it is imported.

Importing the command line takes the interpreter a tenth of a second, before
:func:`fsaops.cli.main` has put its own signal handlers in place.  A Ctrl-C
in that window is said as the command says one later (``fsaops: error:
interrupted``, exit status 130, the JSON envelope with ``--json``), never
as a traceback.  It is held back (blocked) until the import is done:
raised inside the import system, it could be lost in a callback the
import runs, so that the command ran on, or turned by the interpreter into
another error.
"""

from __future__ import annotations

import signal
import sys

__all__ = ["main"]


def main() -> int:
    """Import the command line and run it; a Ctrl-C while importing ends it as interrupted."""
    held = _hold_ctrl_c()
    try:
        try:
            from fsaops.cli import main as command
        finally:
            if held is not None:  # a Ctrl-C that came meanwhile is raised here
                signal.pthread_sigmask(signal.SIG_SETMASK, held)
    except KeyboardInterrupt:
        return _interrupted_while_starting(sys.argv[1:])
    return command()


def _hold_ctrl_c() -> set[int | signal.Signals] | None:
    """Block ``SIGINT`` in this thread; the mask before, or ``None`` where it cannot be blocked."""
    if not hasattr(signal, "pthread_sigmask"):
        return None
    return signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})


def _interrupted_while_starting(args: list[str]) -> int:
    """Say ``interrupted`` as the command would, before it could; returns exit status 130."""
    import json

    from fsaops.status import Status, envelope

    words = args[: args.index("--")] if "--" in args else args
    try:
        if "--json" in words:
            sys.stdout.write(json.dumps(envelope(Status.INTERRUPTED, "interrupted"), indent=2))
            sys.stdout.write("\n")
            sys.stdout.flush()
        sys.stderr.write("fsaops: error: interrupted\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass  # nowhere to say it: the exit status says it
    return Status.INTERRUPTED.exit_code
