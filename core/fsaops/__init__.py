"""fsaops: an executable model of Linux page migration and its ``migratepage`` operation.

The public API a plugin needs is here: the hook markers, the filesystem and
table types, and the helpers the V4 series exports to filesystems, so a
third-party ``migratepage`` can be built exactly as a kernel module's
could.  The model itself lives in one module per kernel concept
(:mod:`fsaops.page`, :mod:`fsaops.buffer`, :mod:`fsaops.migrate`, ...).

Names are imported on first use, so importing :mod:`fsaops` (as pytest does
for the testing kit's plugin in every test run) costs next to nothing.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fsaops.aops import AddressSpaceOperations, FileSystemType
    from fsaops.buffer import buffer_migrate_page
    from fsaops.hookspecs import hookimpl, hookspec
    from fsaops.kernel import Kernel
    from fsaops.migrate import (
        fail_migrate_page,
        migrate_page,
        migrate_page_copy,
        migrate_page_remove_references,
        migrate_pages,
        swap_page,
    )
    from fsaops.mutex import Mutex
    from fsaops.page import PG, Page

__all__ = [
    "PG",
    "AddressSpaceOperations",
    "FileSystemType",
    "Kernel",
    "Mutex",
    "Page",
    "__version__",
    "buffer_migrate_page",
    "fail_migrate_page",
    "hookimpl",
    "hookspec",
    "migrate_page",
    "migrate_page_copy",
    "migrate_page_remove_references",
    "migrate_pages",
    "swap_page",
]

__version__ = "0.1.0"

_HOMES = {
    "hookimpl": "fsaops.hookspecs",
    "hookspec": "fsaops.hookspecs",
    "PG": "fsaops.page",
    "Page": "fsaops.page",
    "AddressSpaceOperations": "fsaops.aops",
    "FileSystemType": "fsaops.aops",
    "Kernel": "fsaops.kernel",
    "Mutex": "fsaops.mutex",
    "buffer_migrate_page": "fsaops.buffer",
    "fail_migrate_page": "fsaops.migrate",
    "migrate_page": "fsaops.migrate",
    "migrate_page_copy": "fsaops.migrate",
    "migrate_page_remove_references": "fsaops.migrate",
    "migrate_pages": "fsaops.migrate",
    "swap_page": "fsaops.migrate",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'fsaops' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
