"""``bounce``: ext2's table with a bounce buffer every page shares, for the explorer's tests.

``migratepage`` copies the old page into one buffer for the whole machine
(as a per-CPU buffer would be), takes ``private_lock`` (a scheduling
point), and copies the buffer into the new page; with ``writepage`` too,
the page it writes goes through the same buffer.  Another task's use of the
buffer between the two copies gives the new page another page's data:
state a table keeps across pages, which the explorer's page reduction does
not see.
"""

from __future__ import annotations

from errno import EAGAIN

import attrs

from fsaops import buffer_migrate_page, migrate_page_copy
from fsaops.aops import FileSystemType
from fsaops.buffer import buffers, get_bh, lock_buffer, put_bh, set_bh_page, unlock_buffer
from fsaops.mapping import AddressSpace
from fsaops.migrate import migrate_page_remove_references
from fsaops.page import PG, Page, page_address
from fsaops.plugins import Registry
from fsaops.writeback import WritebackControl

BOUNCE = bytearray(4096)
"""The buffer every page of the table goes through (one for the whole machine)."""


def bounce_migratepage(newpage: Page, page: Page) -> int:
    """``buffer_migrate_page``, with the data carried through :data:`BOUNCE` across a lock."""
    mapping = page.mapping
    if not isinstance(mapping, AddressSpace) or not page.flags & PG.private:
        return buffer_migrate_page(newpage, page)
    rc = migrate_page_remove_references(newpage, page, 3)
    if rc:
        return rc if rc < 0 else -EAGAIN
    head = page.private
    ring = list(buffers(head))
    with mapping.private_lock:
        for bh in ring:
            get_bh(bh)
            lock_buffer(bh)
        BOUNCE[:] = page_address(page)
    with mapping.private_lock:  # a scheduling point: another CPU runs meanwhile
        page.flags &= ~PG.private
        newpage.private, page.private = head, 0
        page.count -= 1
        newpage.count += 1
        for bh in ring:
            set_bh_page(bh, newpage, bh.b_data & (page.node.page_size - 1))
        newpage.flags |= PG.private
    migrate_page_copy(newpage, page)
    page_address(newpage)[:] = BOUNCE  # a store through the old pte in between is lost
    with mapping.private_lock:
        for bh in ring:
            unlock_buffer(bh)
            put_bh(bh)
    return 0


def bounce_filesystem(registry: Registry, *, writepage: bool) -> FileSystemType:
    """ext2 with :func:`bounce_migratepage`; with ``writepage``, one through the same buffer too."""
    ext2 = registry.aops("ext2")

    def bounce_writepage(page: Page, wbc: WritebackControl) -> int:
        BOUNCE[:] = page_address(page)  # a checksum, say, of the page in the bounce buffer
        assert ext2.writepage is not None
        return ext2.writepage(page, wbc)

    table = attrs.evolve(ext2, name="bounce_aops", migratepage=bounce_migratepage)
    if writepage:
        table = attrs.evolve(table, writepage=bounce_writepage)
    return attrs.evolve(
        registry.filesystem("ext2"), name="bounce", modes={"default": table}, page_cache={}
    )
