"""The ``fsaops`` entry point: a Ctrl-C while the command line is still being imported."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

INTERRUPTED_IMPORT = """
import sys

class Interrupting:
    def find_spec(self, name, path=None, target=None):
        if name == "fsaops.cli":
            raise KeyboardInterrupt
        return None

sys.meta_path.insert(0, Interrupting())
sys.argv[1:] = {args!r}
from fsaops.console import main
sys.exit(main())
"""


@pytest.mark.parametrize("args", [["plugins"], ["plugins", "--json"], ["migrate", "--", "--json"]])
def test_a_ctrl_c_while_the_command_line_is_imported_is_said_in_one_line(args: list[str]) -> None:
    """Before, the interpreter printed the KeyboardInterrupt's traceback, and nothing else."""
    proc = subprocess.run(
        [sys.executable, "-c", INTERRUPTED_IMPORT.format(args=args)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 130
    assert proc.stderr == "fsaops: error: interrupted\n"
    if args == ["plugins", "--json"]:
        assert json.loads(proc.stdout) == {
            "schema": 1,
            "status": "interrupted",
            "error": "interrupted",
        }
    else:
        assert proc.stdout == ""


SIGNALLED_IMPORT = """
import os, signal, sys, time
from pathlib import Path

TOLD = Path(sys.argv[-1])

class Signalling:
    def find_spec(self, name, path=None, target=None):
        if name == "fsaops.cli":
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.3)  # the handler would run here, inside the import system
            TOLD.write_text("the import went on")
        return None

sys.meta_path.insert(0, Signalling())
sys.argv[1:] = ["plugins", "--json"]
from fsaops.console import main
sys.exit(main())
"""


def test_a_ctrl_c_signal_while_the_command_line_is_imported_comes_once_the_import_is_done(
    tmp_path: Path,
) -> None:
    """Raised inside the import system, it could be lost in a callback the import runs (the
    command then ran on) or turned into another error by the interpreter."""
    told = tmp_path / "told"
    proc = subprocess.run(
        [sys.executable, "-c", SIGNALLED_IMPORT, str(told)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert told.read_text() == "the import went on"
    assert proc.returncode == 130, proc.stderr
    assert proc.stderr == "fsaops: error: interrupted\n"
    assert json.loads(proc.stdout)["status"] == "interrupted"


def test_importing_fsaops_imports_nothing_else_of_it() -> None:
    """The package is cheap to import: the window before the command's handlers stays short."""
    code = (
        "import sys; import fsaops; "
        "print(sorted(m for m in sys.modules if m.startswith(('fsaops.', 'pluggy'))))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert proc.stdout.strip() == "[]"


_WATCH_RICH = """
import sys

class Watch:
    def find_spec(self, name, path=None, target=None):
        if name == "rich":
            sys.stderr.write("rich imported\\n")
            sys.stderr.flush()
        return None

sys.meta_path.insert(0, Watch())
sys.argv = ["fsaops", *sys.argv[1:]]
from fsaops.console import main
sys.exit(main())
"""


@pytest.mark.parametrize("as_json", [True, False], ids=["json", "terminal"])
def test_a_run_that_prints_json_never_imports_the_terminal_renderer(as_json: bool) -> None:
    """``migrate --json`` draws no table: it does not import rich; the terminal form does."""
    args = ["migrate", "--no-progress", *(["--json"] if as_json else [])]
    proc = subprocess.run(
        [sys.executable, "-c", _WATCH_RICH, *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert ("rich imported" in proc.stderr) is not as_json
    if as_json:
        assert json.loads(proc.stdout)["status"] == "ok"
    else:
        assert "OK: every page is where the engine says" in proc.stdout
