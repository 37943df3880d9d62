"""The callers of migration: moving a process's pages between nodes (``mm/mempolicy.c``).

:func:`migrate_pages_to` allocates new pages in chunks and calls
:func:`~fsaops.migrate.migrate_pages`; :func:`migrate_to_node` moves every
page a process has on one node; :func:`do_migrate_pages` moves a process
from a set of nodes to another (``sys_migrate_pages`` and cpusets);
:func:`sys_migrate_pages` is the system call with its permission checks.
These follow V8 4/5 and 2.6.16, where the V4 text is not available, and
the kernel's semantics where the releases differ (the chunk of new pages,
the order of the lists, which pages are queued).
"""

from __future__ import annotations

from errno import EINVAL, ENODEV, ENOMEM, ENOSYS, EPERM, ESRCH
from typing import TYPE_CHECKING, Any

from fsaops.lists import PageList, list_add, list_add_tail, list_del, list_splice
from fsaops.lru import isolate_lru_page, putback_lru_pages
from fsaops.migrate import NOT_REACHED, MigrateStats, migrate_pages, table_name
from fsaops.page import page_anon, page_mapping, put_page
from fsaops.rmap import VM_SHARED

if TYPE_CHECKING:
    from fsaops.kernel import Kernel
    from fsaops.mapping import AddressSpace
    from fsaops.page import Page
    from fsaops.rmap import Mm, Vma

__all__ = [
    "MAX_NUMNODES",
    "MIGRATE_CHUNK_SIZE",
    "MPOL_MF_INVERT",
    "MPOL_MF_MOVE",
    "MPOL_MF_MOVE_ALL",
    "MPOL_MF_STRICT",
    "check_range",
    "do_migrate_pages",
    "migrate_page_add",
    "migrate_pages_to",
    "migrate_to_node",
    "movable_v4",
    "node_remap",
    "not_shared",
    "sys_migrate_pages",
]

MPOL_MF_STRICT = 1 << 0
MPOL_MF_MOVE = 1 << 1
MPOL_MF_MOVE_ALL = 1 << 2
MPOL_MF_DISCONTIG_OK = 1 << 3
MPOL_MF_INVERT = 1 << 4

_NO_NEW_PAGE = "no new page could be allocated on the target node (ENOMEM)"

MIGRATE_CHUNK_SIZE = 256
"""New pages are allocated in chunks; the test is ``> 256``, so a chunk is 257.

Up to 2.6.16-rc4 a stray ``;`` after that test made the ``break``
unconditional, so a chunk was one page
(:attr:`~fsaops.semantics.Semantics.chunk_pages`).
"""


def _single_mm_mapping(mm: Mm, mapping: AddressSpace) -> bool:
    """``single_mm_mapping``: every area mapping the file is one of ``mm``'s."""
    return all(vma.mm is mm for vma in mapping.i_mmap)


def _writably_mapped(mapping: AddressSpace) -> bool:
    """``mapping_writably_mapped``: ``i_mmap_writable``, which counts every ``VM_SHARED`` area.

    A shared mapping counts whether or not it may write (``mprotect`` can
    make it writable later).
    """
    return any(vma.vm_flags & VM_SHARED for vma in mapping.i_mmap)


def movable_v4(mm: Mm, page: Page) -> bool:
    """V3/V4's test of a page ``migrate_page_add`` may queue without ``MPOL_MF_MOVE_ALL``.

    It has no mapping, is anonymous, is in a writably mapped file, or its
    file is mapped by this process only.
    """
    mapping = page_mapping(page)
    return (
        mapping is None
        or page_anon(page)
        or _writably_mapped(mapping)
        or _single_mm_mapping(mm, mapping)
    )


def not_shared(mm: Mm, page: Page) -> bool:
    """2.6.16's test: the page is not shared (``page_mapcount(page) == 1``).

    Seen in the context lines of the 16 Feb 2006 patch against 2.6.16-rc3
    ("page migration: Fix MPOL_INTERLEAVE behavior for migration via mbind()").
    """
    return page.mapcount == 1


def migrate_page_add(mm: Mm, page: Page, pagelist: PageList, flags: int) -> None:
    """Isolate a page and queue it for migration.

    With ``MPOL_MF_MOVE_ALL`` every page goes; otherwise the kernel's
    semantics say which (:attr:`~fsaops.semantics.Semantics.may_queue`:
    V4's :func:`movable_v4`, 2.6.16's :func:`not_shared`).  V4 queues at
    the head of the list (so the pages migrate in reverse order), 2.6.16
    at the tail.
    """
    semantics = mm.kernel.semantics
    if (flags & MPOL_MF_MOVE_ALL or semantics.may_queue(mm, page)) and isolate_lru_page(page) == 1:
        if semantics.queue_at_tail:
            list_add_tail(page, pagelist)
        else:
            list_add(page, pagelist)


def check_range(mm: Mm, nodes: set[int], flags: int, pagelist: PageList | None) -> int:
    """Walk a process's ptes and queue the pages whose node is in ``nodes``.

    With ``MPOL_MF_INVERT`` the pages whose node is *not* in ``nodes`` are
    queued instead.  From 2.6.16 moving needs a swap device: without a
    free slot this returns ``-ENODEV`` and queues nothing
    (:attr:`~fsaops.semantics.Semantics.swap_needed`); before, the pages
    are queued, and each anonymous one fails to get a swap entry.
    """
    kernel = mm.kernel
    if (
        flags & (MPOL_MF_MOVE | MPOL_MF_MOVE_ALL)
        and kernel.semantics.swap_needed
        and (kernel.swap is None or kernel.swap.nr_swap_pages <= 0)
    ):
        return -ENODEV
    invert = bool(flags & MPOL_MF_INVERT)
    for vma in list(mm.vmas):
        for vpn in range(vma.vm_start, vma.vm_end):
            pte = mm.ptes.get(vpn)
            if pte is None or pte.page is None:
                continue
            page = pte.page
            if (page.node.nid in nodes) == invert:
                continue
            # A page met again (mapped twice) is off the LRU by now:
            # isolate_lru_page() returns 0 and it is not queued twice.
            if pagelist is not None and flags & (MPOL_MF_MOVE | MPOL_MF_MOVE_ALL):
                migrate_page_add(mm, page, pagelist, flags)
    return 0


def migrate_pages_to(
    pagelist: PageList,
    vma: Vma | None,
    dest: int,
    *,
    stats: MigrateStats | None = None,
) -> int:
    """Migrate the isolated pages on ``pagelist`` to node ``dest``, a chunk at a time.

    Allocates a chunk of new pages (on the area's node when ``vma`` has
    one, else on ``dest``): 257 from 2.6.16, one in V4 (a stray ``;``; see
    :attr:`~fsaops.semantics.Semantics.chunk_pages`), added at the head of
    the list in V4 and at the tail from 2.6.16.  Then it calls
    ``migrate_pages``, puts the moved old pages back (which frees them) and
    goes on while chunks are used up and pages remain.  Unused new pages
    are freed and failed pages spliced back onto ``pagelist``.

    Returns ``-ENOMEM`` when a new page cannot be had, another negative
    errno from ``migrate_pages``, or the number of pages left on
    ``pagelist``.
    """
    if pagelist.empty():
        return 0
    kernel: Kernel = pagelist.first().node.kernel
    if not kernel.migration:
        return -ENOSYS
    semantics = kernel.semantics
    chunk = semantics.chunk_pages
    add_new = list_add_tail if semantics.new_pages_at_tail else list_add
    newlist = PageList("new")
    moved = PageList("moved")
    failed = PageList("failed")
    err = 0
    target = dest if vma is None or vma.nid is None else vma.nid
    node = kernel.nodes[target]
    alloc_page = node.alloc_page
    while True:  # redo:
        # list_for_each_entry(page, pagelist, lru), walked by hand: under V4
        # this runs once per page, and a generator costs more than the walk.
        nr_pages = 0
        entry: Any = pagelist.lru_next
        while entry is not pagelist:
            newpage = alloc_page()
            if newpage is None:
                err = -ENOMEM
                break
            add_new(newpage, newlist)
            nr_pages += 1
            if nr_pages >= chunk:  # if (nr_pages > MIGRATE_CHUNK_SIZE) break;
                break
            entry = entry.lru_next
        if err == -ENOMEM:  # goto out (what an earlier call returned is no reason to stop)
            break
        err = migrate_pages(pagelist, newlist, moved, failed, stats=stats)
        putback_lru_pages(moved)
        # newlist.empty() and not pagelist.empty(), read off the links
        if err >= 0 and newlist.lru_next is newlist and pagelist.lru_next is not pagelist:
            continue
        break
    if stats is not None:
        # Pages the engine never got to: count them once, here.
        why, error = (_NO_NEW_PAGE, "ENOMEM") if err == -ENOMEM else (NOT_REACHED, "EAGAIN")
        for page in pagelist:
            if page.pfn not in stats.pending:
                stats.pend(page.pfn, table_name(page), why, error)
    for newpage in newlist:
        list_del(newpage)
        put_page(newpage)
    list_splice(failed, pagelist)
    if err < 0:
        return err
    return len(pagelist)


def migrate_to_node(
    mm: Mm, source: int, dest: int, flags: int, *, stats: MigrateStats | None = None
) -> int:
    """Move every page ``mm`` has on node ``source`` to node ``dest``.

    Returns a negative errno, or the number of pages that could not be moved.
    """
    pagelist = PageList("pagelist")
    check_range(mm, {source}, flags | MPOL_MF_DISCONTIG_OK, pagelist)
    err = 0
    if not pagelist.empty():
        err = migrate_pages_to(pagelist, None, dest, stats=stats)
        if not pagelist.empty():
            putback_lru_pages(pagelist)
    return err


def node_remap(oldbit: int, old: set[int], new: set[int]) -> int:
    """Where node ``oldbit`` of ``old`` goes in ``new``, by rank (``node_remap``)."""
    if oldbit not in old or not new:
        return oldbit
    rank = sorted(old).index(oldbit)
    targets = sorted(new)
    return targets[rank % len(targets)]


def do_migrate_pages(
    mm: Mm,
    from_nodes: set[int],
    to_nodes: set[int],
    flags: int,
    *,
    stats: MigrateStats | None = None,
) -> int:
    """Move a process's pages from ``from_nodes`` to ``to_nodes`` (V8 4/5, 2.6.16).

    Picks a source node whose target is not itself, preferring a target
    that is not still a source, and calls :func:`migrate_to_node`, until no
    pair is left or an error comes back.

    Returns the negative errno, or the number of pages that stayed busy.
    On a kernel built without migration, ``-ENOSYS``: the stub
    ``mm/mempolicy.c`` has in its place (its ``#else`` of
    ``CONFIG_MIGRATION``), whoever calls it.
    """
    if not mm.kernel.migration:
        return -ENOSYS
    busy = 0
    err = 0
    tmp = set(from_nodes)
    with mm.mmap_sem:
        while tmp:
            source = -1
            dest = 0
            for s in sorted(tmp):
                d = node_remap(s, from_nodes, to_nodes)
                if s == d:
                    continue
                source, dest = s, d
                if dest not in tmp:
                    break
            if source == -1:
                break
            tmp.discard(source)
            err = migrate_to_node(mm, source, dest, flags, stats=stats)
            if err > 0:
                busy += err
            if err < 0:
                break
    if err < 0:
        return err
    return busy


MAX_NUMNODES = 64
"""Node numbers a node mask holds (``1 << CONFIG_NODES_SHIFT``, 6 on x86-64)."""


def sys_migrate_pages(
    kernel: Kernel,
    pid: int,
    old_nodes: set[int],
    new_nodes: set[int],
    *,
    uid: int = 0,
    capable: bool = True,
    stats: MigrateStats | None = None,
) -> int:
    """``migrate_pages(2)``: move process ``pid``'s pages from ``old_nodes`` to ``new_nodes``.

    The checks come in the kernel's order (KERNEL-SPEC §8):

    1. ``-EINVAL`` for a node number no node mask can hold (below 0, or
       :data:`MAX_NUMNODES` or more: ``get_nodes``);
    2. ``-ESRCH`` for no such process; pid 0 is the caller, which in the
       model is no process with memory: ``-EINVAL``, as for a task with no
       mm;
    3. ``-EPERM`` for someone else's process (the caller is ``uid``;
       ``capable`` for ``CAP_SYS_NICE``);
    4. ``-EPERM`` for a ``new_nodes`` outside the process's cpuset (in the
       model, every node there is) when the caller is not capable;
    5. ``-ENOSYS`` without migration (``do_migrate_pages`` compiled out).

    A node of ``old_nodes`` that does not exist holds no pages: nothing
    moves from it.  A capable caller naming a node that does not exist in
    ``new_nodes`` gets ``-EINVAL``: the kernel of the time would allocate
    on it (later kernels refuse such a node with ``-EINVAL``).  From 2.6.16
    a capable caller moves every page (``MPOL_MF_MOVE_ALL``); V4 moves only
    the pages ``MPOL_MF_MOVE`` takes, for every caller
    (:attr:`~fsaops.semantics.Semantics.capable_moves_all`).  Otherwise it
    returns the number of pages not moved.
    """
    if any(not 0 <= n < MAX_NUMNODES for n in old_nodes | new_nodes):
        return -EINVAL
    if pid == 0:
        return -EINVAL
    mm = next((m for m in kernel.mms if m.pid == pid), None)
    if mm is None:
        return -ESRCH
    if not capable and uid != mm.uid:
        return -EPERM
    missing = any(n >= len(kernel.nodes) for n in new_nodes)
    if missing and not capable:
        return -EPERM
    if not kernel.migration:
        return -ENOSYS
    if missing:
        return -EINVAL
    flags = MPOL_MF_MOVE_ALL if capable and kernel.semantics.capable_moves_all else MPOL_MF_MOVE
    return do_migrate_pages(mm, old_nodes, new_nodes, flags, stats=stats)
