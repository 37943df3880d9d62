"""The swap cache's operations: ``swap_aops`` (``mm/swap_state.c``).

As in 2.6.15: ``writepage``, ``sync_page``, ``set_page_dirty`` and, from V4
5/6, ``migratepage``, which is :func:`~fsaops.migrate_page`: the engine
puts every anonymous page into the swap cache first, so anonymous memory
migrates like a page-cache page without buffers, and without being
written to swap.  There is no ``readpage``: a swap-in reads the slot
itself (:func:`~fsaops.swap.read_swap_cache_async`).
"""

from __future__ import annotations

import fsaops
from fsaops import AddressSpaceOperations, FileSystemType, migrate_page
from fsaops.buffer import block_sync_page
from fsaops.swap import swap_writepage
from fsaops.writeback import set_page_dirty_nobuffers

__all__ = ["fsaops_filesystem_types", "swap_aops"]

swap_aops = AddressSpaceOperations(
    name="swap_aops",
    writepage=swap_writepage,
    sync_page=block_sync_page,
    set_page_dirty=set_page_dirty_nobuffers,
    migratepage=migrate_page,
)

SWAP = FileSystemType(
    name="swap",
    modes={"default": swap_aops},
    block_sizes=(4096,),
    default_block_size=4096,
    description="the swap cache (swapper_space) of the swap device",
)


@fsaops.hookimpl
def fsaops_filesystem_types() -> list[FileSystemType]:
    """Provide the swap cache's table."""
    return [SWAP]
