"""The ``fsaops`` command line (a first version: ``fsaops migrate`` on a small built-in world)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from fsaops.errors import FsaopsError

__all__ = ["main"]


def _migrate(args: argparse.Namespace) -> int:
    from fsaops.debug import check_kernel
    from fsaops.fs import generic_file_write
    from fsaops.kernel import Kernel
    from fsaops.memory_hotplug import migrate_node
    from fsaops.plugins import load_plugins

    registry = load_plugins()
    kernel = Kernel(nodes=2, node_pages=4096, registry=registry)
    kernel.swapon(1024)
    for fs in sorted(registry.filesystems):
        if fs in ("swap", "xfs_buftarg"):
            continue
        sb = kernel.mount(fs)
        inode = sb.new_inode()
        generic_file_write(inode, 0, bytes(range(256)) * 64)
    result = migrate_node(kernel, 0, 1)
    kernel.run_until_idle()
    for name, table in sorted(result.stats.tables.items()):
        left = table.not_migrated
        print(f"{name:40} moved {table.moved:5} failed {table.failed:5} left {left:5}")
    problems = check_kernel(kernel)
    for problem in problems:
        print(f"invariant broken: {problem}", file=sys.stderr)
    return 1 if problems else 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = argparse.ArgumentParser(prog="fsaops", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="migrate every page of node 0 to node 1")
    args = parser.parse_args(argv)
    try:
        return _migrate(args)
    except FsaopsError as exc:
        print(f"fsaops: error: {exc}", file=sys.stderr)
        return 2
