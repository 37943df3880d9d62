"""Node and device memory: reserved lazily, whatever the Python version's ``mmap`` names."""

from __future__ import annotations

import mmap
import platform
import sys
from pathlib import Path

import pytest

from fsaops import memory


def _total_memory() -> int:
    for line in Path("/proc/meminfo").read_text(encoding="ascii").splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no MemTotal in /proc/meminfo")


@pytest.mark.skipif(sys.platform != "linux", reason="MAP_NORESERVE is Linux's")
def test_a_node_larger_than_the_machine_is_reserved_lazily() -> None:
    """Python 3.11 and 3.12's ``mmap`` have no ``MAP_NORESERVE``: Linux's value is used.

    Without it the system charged every node and device whole, and one
    larger than memory and swap was refused (``cannot reserve``), though a
    run touches only its pages.
    """
    known = memory._LINUX_MAP_NORESERVE.get(platform.machine())
    assert getattr(mmap, "MAP_NORESERVE", known) == memory._MAP_NORESERVE
    mode = Path("/proc/sys/vm/overcommit_memory").read_text(encoding="ascii").strip()
    if mode == "2" or not memory._MAP_NORESERVE:
        pytest.skip(f"strict overcommit (mode {mode}) or an unknown architecture")
    size = 2 * _total_memory()
    mem = memory.anonymous_memory(size, "a node larger than the machine")
    try:
        assert len(mem) == size
        mem[size // 2] = 7  # a page of it is committed when touched
        assert mem[size // 2] == 7 and mem[0] == 0
    finally:
        mem.close()
