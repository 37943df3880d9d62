"""The suite's watchdog: a test that hangs fails, named, and the run goes on.

``pyproject.toml`` sets pytest's ``faulthandler_timeout`` with
``faulthandler_exit_on_timeout``: a test still running after that long ends
its process with every thread's traceback.  Here a test that sleeps for ever
runs under the project's own configuration, with the limit cut to two
seconds; under pytest-xdist, as the suite runs, it fails as the test its
worker crashed in, and the test after it still runs.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"

HANGS = """\
import time

def test_before():
    pass

def test_hangs():
    time.sleep(3600)

def test_after():
    pass
"""


def test_a_test_that_hangs_fails_named_with_its_traceback_and_the_rest_run(
    tmp_path: Path,
) -> None:
    (tmp_path / "test_hang.py").write_text(HANGS, encoding="utf-8")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-c",
            str(PYPROJECT),
            "--rootdir",
            str(tmp_path),
            "-o",
            "faulthandler_timeout=2",
            "-p",
            "no:cacheprovider",
            "-n",
            "1",
            str(tmp_path / "test_hang.py"),
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 1, output[-3000:]
    assert "Timeout (0:00:02)!" in output, output[-3000:]
    assert "in test_hangs" in output, output[-3000:]  # the hung test's own frame
    assert "worker 'gw0' crashed while running 'test_hang.py::test_hangs'" in output, output
    assert "1 failed, 2 passed" in output, output[-3000:]
