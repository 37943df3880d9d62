"""The README's first quick-start line: ``fsaops migrate`` runs and keeps every invariant."""

from __future__ import annotations

import subprocess
import sys


def test_python_m_fsaops_migrate_exits_zero() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "fsaops", "migrate"], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert "moved" in proc.stdout
