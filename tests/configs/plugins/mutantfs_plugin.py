"""One ext2 table whose ``migratepage`` is whichever mutant a test puts in :data:`CURRENT`.

``tests/test_mutants.py`` makes mutants of ``buffer_migrate_page``, one
change each, and runs each through ``fsaops migrate`` as this plugin's
table, ``mutant_aops`` of filesystem ``mutant``: the plugin is loaded
once, and each run calls the function :data:`CURRENT` holds then.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs

import fsaops
from fsaops import FileSystemType, buffer_migrate_page
from fsaops.page import Page
from fsaops_ext2 import EXT2, ext2_aops

CURRENT: list[Callable[[Page, Page], int]] = [buffer_migrate_page]
"""The ``migratepage`` the table calls (the real one until a test puts a mutant in)."""


def mutant_migratepage(newpage: Page, page: Page) -> int:
    """Call the mutant of the moment."""
    return CURRENT[0](newpage, page)


@fsaops.hookimpl
def fsaops_filesystem_types() -> list[FileSystemType]:
    """Filesystem ``mutant``: ext2's table with :func:`mutant_migratepage`."""
    table = attrs.evolve(ext2_aops, name="mutant_aops", migratepage=mutant_migratepage)
    return [attrs.evolve(EXT2, name="mutant", modes={"default": table}, page_cache={})]
