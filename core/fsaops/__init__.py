"""fsaops: an executable model of Linux page migration and its ``migratepage`` operation.

The public API a plugin needs is here: the hook markers, the filesystem and
table types, and the helpers the V4 series exports to filesystems, so a
third-party ``migratepage`` can be built exactly as a kernel module's
could.  The model itself lives in one module per kernel concept
(:mod:`fsaops.page`, :mod:`fsaops.buffer`, :mod:`fsaops.migrate`, ...).
"""

from __future__ import annotations

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
from fsaops.page import PG, Page

__all__ = [
    "PG",
    "AddressSpaceOperations",
    "FileSystemType",
    "Kernel",
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
