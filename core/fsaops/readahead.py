"""Readahead (``mm/readahead.c``): reading a run of a file's pages in before they are used.

``read(2)`` of a page that is not in the page cache does not read that
page alone: ``do_generic_mapping_read`` first has readahead allocate the
pages of the window that are missing and hand them to ``read_pages``, which
gives them to the table's ``readpages`` in one call (or, for a table
without one, adds each to the page cache and calls ``readpage``).  Only a
page readahead did not bring in is read on its own, with ``readpage``.
So a file's pages dropped during migration come back through the table's
``readpages`` when the read-back reads them, as they would for a user,
on the node the kernel allocates on.

The model reads ahead the pages of the read itself, up to
:data:`VM_MAX_READAHEAD` KiB from the page that missed, and not past the
end of the file: what ``page_cache_readahead``'s first window of a read
asks for, without its heuristics for later windows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from fsaops.aops import returned
from fsaops.mapping import add_to_page_cache_lru
from fsaops.page import put_page

if TYPE_CHECKING:
    from fsaops.mapping import AddressSpace
    from fsaops.page import Page

__all__ = ["VM_MAX_READAHEAD", "do_page_cache_readahead", "read_pages"]

VM_MAX_READAHEAD: Final = 128
"""The largest readahead window, in KiB (``include/linux/mm.h``)."""


def read_pages(mapping: AddressSpace, pages: list[Page]) -> int:
    """Read new pages into ``mapping``: the table's ``readpages``, else ``readpage`` each.

    ``pages`` are new pages, each with its ``index`` set and the caller's
    reference, which is dropped here (by ``readpages``, whose job that is,
    or after each ``readpage``).  A page whose slot is taken is only
    released.  What a ``readpage`` returns is not looked at, as the kernel
    does not: a page it did not read is found not up to date later, and
    read again.  Returns what ``readpages`` returned, or 0.
    """
    a_ops = mapping.a_ops
    if a_ops.readpages is not None:
        return returned(a_ops, "readpages", a_ops.readpages(mapping, pages))
    readpage = a_ops.readpage
    for page in pages:
        if readpage is not None and add_to_page_cache_lru(page, mapping, page.index):
            returned(a_ops, "readpage", readpage(page))  # unlocks the page once read
        put_page(page)  # page_cache_release(): the allocation's reference
    return 0


def do_page_cache_readahead(mapping: AddressSpace, offset: int, nr_to_read: int) -> int:
    """Read in the missing pages of ``offset`` to ``offset + nr_to_read - 1``, not past the end.

    New pages come from the kernel's allocation node; readahead stops
    where none is left.  Returns how many pages were handed to
    :func:`read_pages` (``__do_page_cache_readahead``).
    """
    a_ops = mapping.a_ops
    if a_ops.readpages is None and a_ops.readpage is None:
        return 0
    kernel = mapping.kernel
    inode = mapping.host
    isize = getattr(inode, "i_size", 0)
    if isize <= 0 or nr_to_read <= 0:
        return 0
    end_index = (isize - 1) // kernel.page_size
    node = kernel.nodes[kernel.alloc_nid]
    pages: list[Page] = []
    for index in range(offset, min(offset + nr_to_read, end_index + 1)):
        if mapping.lookup(index) is not None:
            continue
        page = node.alloc_page()
        if page is None:
            break
        page.index = index
        pages.append(page)
    if pages:
        read_pages(mapping, pages)
    return len(pages)
