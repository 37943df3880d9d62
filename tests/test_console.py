"""The ``fsaops`` entry point: a Ctrl-C while the command line is still being imported."""

from __future__ import annotations

import json
import subprocess
import sys

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
