"""The LRU lists: adding, isolating and putting back pages (``mm/swap.c``, ``mm/vmscan.c``).

Every node has an active and an inactive list under its ``lru_lock``.  A
page on either carries ``PG.lru`` (and ``PG.active`` on the active list).
Migration takes pages off with :func:`isolate_lru_page`, which also takes
a reference, and returns them with :func:`move_to_lru` /
:func:`putback_lru_pages`, which drop it.

The kernel batches additions in per-CPU page vectors and drains them
before isolating (``lru_add_drain``); the model adds at once, so there is
nothing to drain.
"""

from __future__ import annotations

from errno import ENOSYS

from fsaops.errors import BadPage, KernelBug
from fsaops.lists import LIST_POISON, PageList, list_add, list_del
from fsaops.page import Page, PG_active, PG_lru, PG_referenced

__all__ = [
    "activate_page",
    "isolate_lru_page",
    "lru_add_drain",
    "lru_cache_add",
    "lru_cache_add_active",
    "mark_page_accessed",
    "move_to_lru",
    "putback_lru_pages",
]


def already_on_the_lru(caller: str, page: Page) -> KernelBug:
    """``__pagevec_lru_add``'s ``BUG()``: ``TestSetPageLRU`` found ``PG_lru`` already set.

    The page was off every LRU list (isolated, or new), so whatever set the
    bit broke the rule; the error names the page's table, whose code is
    what was handed the page (a ``writepage`` setting ``PG_lru`` on the
    page it writes, a ``migratepage`` on the new page).
    """
    from fsaops.migrate import table_name

    table = table_name(page)
    return KernelBug(
        f"{caller} of pfn {page.pfn}, which is already marked on the LRU (PG_lru set on a page "
        f"off every LRU list; __pagevec_lru_add's BUG): {page!r}",
        table=None if table.startswith("(") else table,
    )


def lru_cache_add(page: Page) -> None:
    """Add a page to its node's inactive list.

    Raises:
        KernelBug: the page has ``PG_lru`` set already (the kernel's ``BUG()``).
    """
    node = page.node
    lru_lock = node.lru_lock
    lru_lock.acquire()  # by hand, not with: once for every page read in
    try:
        if page.flags & PG_lru:
            raise already_on_the_lru("lru_cache_add()", page)
        page.flags |= PG_lru
        list_add(page, node.inactive)
        node.nr_inactive += 1
    finally:
        lru_lock.release()


def lru_cache_add_active(page: Page) -> None:
    """Add a page to its node's active list.

    Raises:
        KernelBug: the page has ``PG_lru`` set already (the kernel's ``BUG()``).
    """
    node = page.node
    with node.lru_lock:
        if page.flags & PG_lru:
            raise already_on_the_lru("lru_cache_add_active()", page)
        page.flags |= PG_lru | PG_active
        list_add(page, node.active)
        node.nr_active += 1


def activate_page(page: Page) -> None:
    """Move a page on the inactive list to the active list (``activate_page``)."""
    node = page.node
    lru_lock = node.lru_lock
    lru_lock.acquire()  # by hand, not with: once for every page read back
    try:
        flags = page.flags
        if flags & PG_lru and not flags & PG_active:
            # list_move(&page->lru, &zone->active_list), written out
            nxt = page.lru_next
            prev = page.lru_prev
            nxt.lru_prev = prev
            prev.lru_next = nxt
            node.nr_inactive -= 1
            page.flags = flags | PG_active
            head = node.active
            nxt = head.lru_next
            page.lru_next = nxt
            page.lru_prev = head
            nxt.lru_prev = page
            head.lru_next = page
            node.nr_active += 1
    finally:
        lru_lock.release()


def mark_page_accessed(page: Page) -> None:
    """Note a use of the page (``mark_page_accessed``, 2.6.15).

    The first use sets ``PG_referenced``; a second one while the page is on
    the inactive list moves it to the active list and clears the bit.
    """
    flags = page.flags
    if not flags & PG_active and flags & PG_referenced and flags & PG_lru:
        activate_page(page)
        page.flags &= ~PG_referenced
    elif not flags & PG_referenced:
        page.flags = flags | PG_referenced


def lru_add_drain() -> None:
    """Drain the per-CPU LRU vectors; the model has none, so this does nothing."""


def isolate_lru_page(page: Page) -> int:
    """Take a page off its LRU list with a reference (2.6.15: returns 1, or 0).

    The caller puts the page on a list of its own.  Returns 0 if the page
    was not on an LRU list (being freed, or already isolated), and
    ``-ENOSYS`` on a kernel built without migration.
    """
    node = page.node
    if not node.kernel.migration:
        return -ENOSYS
    with node.lru_lock:
        flags = page.flags
        if not flags & PG_lru:
            return 0
        page.flags = flags & ~PG_lru
        list_del(page)
        if flags & PG_active:
            node.nr_active -= 1
        else:
            node.nr_inactive -= 1
        page.count += 1
    return 1


def move_to_lru(page: Page) -> None:
    """Put an isolated page back on the LRU and drop the isolation reference.

    When that reference is the last (the old page of a migration), the page
    is freed without going on the LRU first: the kernel puts it there and
    takes it off again as it frees it, to the same end.

    Raises:
        KernelBug: the page has ``PG_lru`` set already: it is added to the
            LRU through ``lru_cache_add``, whose ``BUG()`` that is.
    """
    node = page.node
    flags = page.flags
    if page.count == 1 and not flags & PG_lru:
        # The isolation reference is the last (the old page of a migration):
        # the page that lru_cache_add() puts on the LRU, put_page() frees at
        # once, and __page_cache_release() takes off the LRU again.  It goes
        # from the private list straight to the free list; the LRU lists and
        # their counts end as they would.
        nxt = page.lru_next  # list_del(page), written out
        prev = page.lru_prev
        nxt.lru_prev = prev
        prev.lru_next = nxt
        page.lru_next = page.lru_prev = LIST_POISON
        page.flags = flags & ~PG_active
        page.count = 0
        node.free_page(page)  # release_page() with nothing to take off the LRU
        return
    lru_lock = node.lru_lock
    lru_lock.acquire()  # by hand, not with: this is on the engine's per-page path
    try:
        flags = page.flags
        if flags & PG_lru:
            raise already_on_the_lru("move_to_lru()", page)
        if flags & PG_active:
            head = node.active
            node.nr_active += 1
        else:
            head = node.inactive
            node.nr_inactive += 1
        # list_move(&page->lru, head), written out: off the private list,
        # onto the head of the LRU list.
        nxt = page.lru_next
        prev = page.lru_prev
        nxt.lru_prev = prev
        prev.lru_next = nxt
        nxt = head.lru_next
        page.lru_next = nxt
        page.lru_prev = head
        nxt.lru_prev = page
        head.lru_next = page
        page.flags = flags | PG_lru
    finally:
        lru_lock.release()
    # put_page(): the isolation reference; the last one frees the page.
    count = page.count - 1
    page.count = count
    if count <= 0:
        node.release_page(page)


def putback_lru_pages(pages: PageList) -> int:
    """``move_to_lru`` every page of a private list; returns how many.

    On a kernel built without migration nothing can be isolated
    (:func:`isolate_lru_page` returns ``-ENOSYS``), so there is nothing to
    put back and this returns 0, as the kernel's stub does.
    """
    count = 0
    entry = pages.lru_next
    while entry is not pages:  # list_for_each_entry_safe, by hand: once a page under V4
        nxt = entry.lru_next
        try:
            move_to_lru(entry)  # type: ignore[arg-type]
        except BadPage as exc:
            raise BadPage(f"{exc}{_put_back_from(entry, pages)}") from exc  # type: ignore[arg-type]
        count += 1
        entry = nxt
    return count


def _put_back_from(page: Page, pages: PageList) -> str:
    """Where ``bad_page()`` found a page ``putback_lru_pages`` freed: the list, the page's table.

    The old pages a migration moved are freed here, once their isolation
    reference goes: one still in use was left so by whatever moved it.
    """
    mapping = page.mapping
    a_ops = getattr(mapping, "a_ops", None)
    table = getattr(a_ops, "name", None)
    whose = f"; its mapping is still a file's of table {table}" if table else ""
    return f" (freed as putback_lru_pages put back the {pages.name or 'isolated'} pages{whose})"
