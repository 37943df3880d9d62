"""The README's first quick-start line: ``fsaops migrate`` runs the built-in scenario cleanly."""

from __future__ import annotations

import os
import subprocess
import sys


def test_python_m_fsaops_migrate_exits_zero() -> None:
    env = {k: v for k, v in os.environ.items() if k != "FSAOPS_PLUGINS"}
    proc = subprocess.run(
        [sys.executable, "-m", "fsaops", "migrate"],
        capture_output=True,
        text=True,
        check=False,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Pages by operations table" in proc.stdout
    assert "0 lost, 0 corrupted" in proc.stdout
    assert "OK: every page is where the engine says, nothing was lost" in proc.stdout
