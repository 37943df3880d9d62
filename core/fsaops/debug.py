"""The invariant checker (``CONFIG_DEBUG_VM``).

:func:`check_kernel` checks the whole machine: every reference on every
page is accounted for (page-cache slot, buffers, ptes, isolation, other
tasks), every page-tree slot, LRU list, buffer ring and swap slot agrees
with the pages, and free pages are really free.  Every problem is a
sentence in the kernel's terms ("buffer head 2 of pfn 17 still points at
the old page").  Whether each page a migration touched arrived whole, or
was left as it was, is the oracle's to say (:mod:`fsaops.oracle`).
"""

from __future__ import annotations

import re
from collections import Counter
from typing import TYPE_CHECKING, Any

from fsaops.aops import member_name
from fsaops.buffer import BH, BufferHead, bh_offset, buffers, journal_head_problem
from fsaops.errors import InvariantError, KernelBug
from fsaops.fs import Inode
from fsaops.lists import LIST_POISON, PageList
from fsaops.mapping import AddressSpace as AddressSpaceClass
from fsaops.page import PG, Page, page_flags_str, page_index, page_mapping
from fsaops.rmap import AnonVma

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from fsaops.kernel import Kernel, MountTable
    from fsaops.mapping import AddressSpace

__all__ = [
    "FULL_CHECK_EVERY",
    "InvariantError",
    "broken_fields",
    "broken_fields_said",
    "broken_pages",
    "check_kernel",
    "check_pages",
    "mappings",
    "raise_if",
]

FULL_CHECK_EVERY = 64
"""``--debug-vm`` checks the whole machine after every this many pages tried.

After each page it checks what the page reaches (:func:`check_pages`); a
whole-machine :func:`check_kernel` after every page would cost the
machine's size per page."""


def raise_if(problems: list[str]) -> None:
    """Raise :class:`InvariantError` if ``problems`` is not empty."""
    if problems:
        raise InvariantError(problems)


def _kind(value: object) -> str:
    """What ``value`` is, said without calling any of its methods."""
    if value is None:
        return "None"
    name = type(value).__name__
    return f"{'an' if name[:1].lower() in 'aeiou' else 'a'} {name}"


def _number(value: object) -> bool:
    return type(value) is int


def _owner(value: object) -> bool:
    return value is None or isinstance(value, AddressSpaceClass | AnonVma)


def _link(value: object) -> bool:
    return value is LIST_POISON or isinstance(value, Page | PageList)


_FIELDS: tuple[tuple[str, Callable[[object], bool], str], ...] = (
    ("flags", _number, "an int"),
    ("count", _number, "an int"),
    ("mapcount", _number, "an int"),
    ("index", _number, "an int"),
    ("pfn", _number, "an int"),
    ("mapping", _owner, "an address space"),
    ("lru_next", _link, "a list entry"),
    ("lru_prev", _link, "a list entry"),
)
"""Each field :func:`broken_fields` checks, what it may hold, and what that is called."""


def broken_fields(page: Page) -> list[str]:
    """The fields of ``page`` that no kernel code could have left: missing, or of the wrong kind.

    Its counts, flags, index and pfn must be integers, its mapping ``None``
    or an address space, its ``lru`` links list entries, and with
    ``PG.private`` its ``private`` the head of its buffers.  Plugin code
    that puts anything else there breaks the engine and the filesystems'
    own code (a ``TypeError`` or an ``AttributeError`` far from the plugin
    that did it): the run names the page and the field instead (``[]``
    when every field is of the right kind).
    """
    found: list[str] = []
    values: dict[str, object] = {}
    for field, right, kind in _FIELDS:
        try:
            value = values[field] = object.__getattribute__(page, field)
        except AttributeError:
            found.append(f"{field} is missing")
            continue
        if not right(value):
            found.append(f"{field} is {_kind(value)}, not {kind}")
    flags = values.get("flags")
    if type(flags) is int and flags & PG.private:
        try:
            private = object.__getattribute__(page, "private")
        except AttributeError:
            found.append("private is missing")
        else:
            if private is None or _number(private):
                found.append(f"private is {_kind(private)} under PG_private, not a buffer head")
            elif not isinstance(private, BufferHead):
                # Private data of another kind (a jfs metapage, an NFS request).
                found.append(
                    f"private is {_kind(private)} under PG_private, not a buffer head (fsaops "
                    "models PG_private as buffer heads only: private data of other kinds, such "
                    "as jfs metapages or NFS requests, is outside what it models)"
                )
    return found


def broken_pages(kernel: Kernel, limit: int = 3) -> list[str]:
    """``pfn N: ...`` for the first ``limit`` frames of the machine with :func:`broken_fields`.

    A page of a file or of the swap cache says whose table it belongs to
    (``pfn N (ext2_aops): ...``): a ``migratepage`` that broke its new
    page is found that way, though the error came later, elsewhere.
    """
    found: list[str] = []
    for node in kernel.nodes:
        for page in node.frames_made:  # a frame not made yet was never handed out
            fields = broken_fields(page)
            if fields:
                found.append(f"pfn {page.pfn}{_table_of(page)}: {', '.join(fields)}")
                if len(found) >= limit:
                    return found
    return found


def _table_of(page: Page) -> str:
    """`` (<table>)`` for a page whose mapping is an address space, else ``""``."""
    try:
        mapping = object.__getattribute__(page, "mapping")
    except AttributeError:
        return ""
    if isinstance(mapping, AddressSpaceClass) and not mapping.anon:
        return f" ({mapping.a_ops.name})"
    return ""


def broken_fields_said(kernel: Kernel) -> str:
    """What a failure adds to its message about broken page fields, or ``""``.

    ``; plugin code left page fields no kernel code could: ...`` with
    :func:`broken_pages`, so that an error the engine's own code raised
    names the page fields that caused it.
    """
    broken = broken_pages(kernel)
    if not broken:
        return ""
    return f"; plugin code left page fields no kernel code could: {'; '.join(broken)}"


def mappings(kernel: Kernel) -> list[AddressSpace]:
    """Every address space of the machine: files of every mount, and swapper_space."""
    found = [inode.i_mapping for sb in kernel.super_blocks for inode in sb.inodes]
    if kernel.swapper_space is not None:
        found.append(kernel.swapper_space)
    return found


def _lists_membership(lists: Iterable[PageList]) -> dict[int, str]:
    where: dict[int, str] = {}
    for pl in lists:
        for page in pl:
            where[page.pfn] = pl.name or "a private list"
    return where


def _task_holds(kernel: Kernel) -> tuple[Counter[int], set[int], Counter[int], set[int]]:
    """Other tasks' holds: page references and locks by pfn, buffer ones by ``id``."""
    refs: Counter[int] = Counter()
    locks: set[int] = set()
    bh_refs: Counter[int] = Counter()
    for task in kernel.tasks:
        for hold in task.holds:
            if hold.kind == "page_ref":
                refs[hold.obj.pfn] += 1
            elif hold.kind == "page_lock":
                locks.add(hold.obj.pfn)
            elif hold.kind == "buffer_ref":
                bh_refs[id(hold.obj)] += 1
    return refs, locks, bh_refs, set(kernel.sched.buffer_lockers)


def check_kernel(
    kernel: Kernel,
    *,
    isolated: Iterable[PageList] = (),
    quiet: bool = True,
) -> list[str]:
    """Check every invariant of the machine; returns the problems found.

    Args:
        kernel: the machine.
        isolated: private lists to check the pages of, such as migration's
            ``from``/``to``/``moved``/``failed``.  Any page off the LRU but
            linked on a list is counted as holding one reference for that
            list (its isolation, or its allocation for a page on ``to``),
            whether or not its list is named here.
        quiet: the machine is at rest: no page or buffer is locked except
            by another task's hold, and no I/O is in flight.  With no
            ``isolated`` list named either, a page off the LRU but linked on
            a list is a problem too: nobody owns that list any more.
    """
    problems: list[str] = []
    # Other tasks' holds.
    expected, locked_by_task, bh_expected, bh_locked_by_task = _task_holds(kernel)

    # A page off the LRU but linked on a list is on somebody's private list
    # (isolated for migration, or a new page waiting on ``to``): that list
    # holds one reference.  The lists named in ``isolated`` are also walked,
    # to check that their pages really are linked.
    lists = list(isolated)
    on_private = _lists_membership(lists)
    # At rest (no I/O in flight, no private list named), every page in use is
    # on the LRU: a migration's lists were all put back when it returned.
    at_rest = quiet and not lists

    # Page trees: one reference per slot.
    in_tree: dict[int, AddressSpace] = {}
    swapcache = PG.swapcache
    for mapping in mappings(kernel):
        count = 0
        plain = not mapping.anon
        for index, page in enumerate(mapping.page_tree):
            if page is None:
                continue
            count += 1
            pfn = page.pfn
            expected[pfn] = expected.get(pfn, 0) + 1  # no Counter.__missing__ call per page
            if pfn in in_tree:
                problems.append(f"pfn {pfn} sits in two page-tree slots")
            in_tree[pfn] = mapping
            if (
                plain
                and page.mapping is mapping
                and not page.flags & swapcache
                and page.index == index
            ):
                # page_mapping(page) is mapping and page_index(page) == index,
                # the usual case, read without the calls.
                if page.count == 0:
                    problems.append(f"free pfn {pfn} is still in {mapping.name}")
                continue
            if page_mapping(page) is not mapping:
                problems.append(
                    f"slot {index} of {mapping.name} holds pfn {page.pfn}, whose mapping is "
                    f"{page_mapping(page)!r}"
                )
            elif page_index(page) != index:
                problems.append(
                    f"slot {index} of {mapping.name} holds pfn {page.pfn}, whose index is "
                    f"{page_index(page)}"
                )
            if page.count == 0:
                problems.append(f"free pfn {page.pfn} is still in {mapping.name}")
        if count != mapping.nrpages:
            problems.append(f"{mapping.name} counts {mapping.nrpages} pages but holds {count}")

    # Page tables: one reference and one mapcount per present pte; swap ptes count in swap_map.
    mapped: Counter[int] = Counter()
    swap_users: Counter[int] = Counter()
    for mm in kernel.mms:
        for vpn, pte in mm.ptes.items():
            if pte.page is not None:
                mapped[pte.page.pfn] += 1
                expected[pte.page.pfn] += 1
                vma = mm.find_vma(vpn)
                if vma is None:
                    problems.append(f"pid {mm.pid} maps page {vpn:#x} outside every area")
                elif vma.address(pte.page) != vpn:
                    problems.append(
                        f"pid {mm.pid} maps pfn {pte.page.pfn} at {vpn:#x}, where reverse "
                        f"mapping would not find it (index {pte.page.index})"
                    )
            else:
                swap_users[pte.swp] += 1

    # Buffers: journal holds.
    private = PG.private
    for page in [p for node in kernel.nodes for p in node.frames_made if p.flags & private]:
        if isinstance(page.private, BufferHead):
            for bh in buffers(page.private):
                if bh.b_state & BH.jbd:
                    bh_expected[id(bh)] += 1

    # Every page.
    lru_seen: set[int] = set()
    pg_lru = PG.lru
    pg_active = PG.active
    for node in kernel.nodes:
        for lru_list, active in ((node.active, True), (node.inactive, False)):
            n = 0
            # for page in lru_list, walked by hand: this runs for every cur.
            cur: Any = lru_list.lru_next
            while cur is not lru_list:
                n += 1
                lru_seen.add(cur.pfn)
                if not cur.flags & pg_lru:
                    problems.append(f"pfn {cur.pfn} is on an LRU list without PG_lru")
                if bool(cur.flags & pg_active) != active:
                    which = "active" if active else "inactive"
                    problems.append(
                        f"pfn {cur.pfn} is on the {which} list with flags "
                        f"{page_flags_str(cur.flags)}"
                    )
                if cur.node is not node:
                    problems.append(f"pfn {cur.pfn} is on node {node.nid}'s LRU")
                cur = cur.lru_next
            want = node.nr_active if active else node.nr_inactive
            if n != want:
                problems.append(
                    f"node {node.nid} counts {want} {'active' if active else 'inactive'} "
                    f"pages but holds {n}"
                )
    free_pfns: set[int] = set()
    for node in kernel.nodes:
        with node.lock:  # node.free_pages(), walked by hand
            free_list = node.free_area
            entry: Any = free_list.lru_next
            n = node.unmade  # the frames not made yet are free, after those on the list
            while entry is not free_list:
                n += 1
                free_pfns.add(entry.pfn)
                entry = entry.lru_next
            if n != node.nr_free:
                problems.append(
                    f"node {node.nid} counts {node.nr_free} free pages but its free list holds {n}"
                )
    # Plain dict reads below: a Counter calls a Python __missing__ for every absent pfn.
    lru = PG.lru
    locked = PG.locked
    writeback = PG.writeback
    # The bits a page on the LRU with nothing else to check has clear (PG_lru set).
    plain_bits = lru | locked | writeback | PG_reclaim | swapcache | private
    for page in [p for node in kernel.nodes for p in node.frames_made]:
        pfn = page.pfn
        if pfn in free_pfns:
            if page.count or page.mapcount or page.mapping is not None or page.flags:
                problems.append(f"free pfn {pfn} is in use: {page!r}")
            continue
        count = page.count
        if page.flags & plain_bits == lru and not page.private:
            # The usual page in use: on an LRU list, its references and ptes
            # all accounted for, in its mapping's page tree.  Every check
            # below holds for such a page; any other goes through them all.
            owner = page.mapping
            if (
                count
                and count == expected.get(pfn, 0)
                and page.mapcount == mapped.get(pfn, 0)
                and pfn in lru_seen
                and (pfn in in_tree or (owner.anon if owner is not None else not page.mapcount))
            ):
                continue
        if count == 0:
            problems.append(f"pfn {pfn} has no references but is not on the free list (leaked)")
            continue
        flags = page.flags
        listed = not flags & lru and page.lru_next is not LIST_POISON
        want = expected.get(pfn, 0) + (1 if flags & private else 0) + (1 if listed else 0)
        if count != want:
            problems.append(
                f"pfn {pfn} has page_count {count}, but {want} references are accounted "
                f"for (flags {page_flags_str(flags)}, mapcount {page.mapcount})"
            )
        nmapped = mapped.get(pfn, 0)
        if page.mapcount != nmapped:
            problems.append(f"pfn {pfn} has mapcount {page.mapcount} but {nmapped} ptes map it")
        if bool(flags & lru) != (pfn in lru_seen):
            problems.append(
                f"pfn {pfn} has PG_lru {'set' if flags & lru else 'clear'} but is "
                f"{'on' if pfn in lru_seen else 'not on'} an LRU list"
            )
        if pfn in on_private and page.lru_next is LIST_POISON:
            problems.append(f"pfn {pfn} is isolated but on no list")
        elif listed and at_rest:
            problems.append(
                f"pfn {pfn} is off the LRU on a list nobody owns, with the machine at rest: "
                "a page isolated, or a frame allocated, and never put back or freed"
            )
        elif at_rest and not flags & lru and page.mapping is not None:
            problems.append(
                f"pfn {pfn} is a page in use on no list, with the machine at rest: a page "
                "taken off the LRU and never put back (reclaim never sees it again)"
            )
        if quiet and flags & locked and pfn not in locked_by_task:
            problems.append(f"pfn {pfn} is locked, but no task holds its lock")
        if quiet and flags & writeback:
            problems.append(f"pfn {pfn} is still under writeback")
        if flags & PG_reclaim and not flags & writeback:
            problems.append(_RECLAIM.format(pfn=pfn))
        owner = page.mapping
        if owner is not None and not owner.anon and pfn not in in_tree:
            name = getattr(owner, "name", "a mapping")
            problems.append(f"pfn {pfn} points at {name} but is not in its page tree")
        elif owner is None and page.mapcount:
            problems.append(_stale_mapping(page))
        if not flags & (swapcache | private) and not page.private:
            continue  # the checks below concern the swap cache and private data only
        if page.flags & PG.swapcache and not page.flags & PG.locked:
            entry = page.private
            swapper = kernel.swapper_space
            if swapper is None or swapper.lookup(entry) is not page:
                problems.append(f"pfn {pfn} has PG_swapcache but is not in the swap cache")
        if page.flags & PG.private:
            problems.extend(_check_buffers(page, bh_expected, bh_locked_by_task, quiet))
        elif page.private and not page.flags & PG.swapcache:
            problems.append(f"pfn {pfn} has private {page.private!r} without PG_private")

    # Swap slots.
    swap = kernel.swap
    if swap is not None:
        cached: Counter[int] = Counter()
        if kernel.swapper_space is not None:
            for index, page in enumerate(kernel.swapper_space.page_tree):
                if page is not None:
                    cached[index] += 1
        for entry in range(1, swap.nr_slots + 1):
            want = swap_users[entry] + cached[entry]
            if swap.swap_map[entry] != want:
                problems.append(
                    f"swap entry {entry} has {swap.swap_map[entry]} users but {want} are "
                    "accounted for (swap ptes and the swap cache)"
                )
        free_slots = sum(1 for e in range(1, swap.nr_slots + 1) if swap.swap_map[e] == 0)
        if free_slots != swap.nr_swap_pages:
            problems.append(
                f"the swap device counts {swap.nr_swap_pages} free slots but {free_slots} "
                "are unused"
            )
    problems += _tables_kept(kernel) if at_rest else []
    return _named(kernel, problems)


def _tables_kept(kernel: Kernel) -> list[str]:
    """Each mount and file whose table is not the one its mount was given (at rest).

    A mount is given its table when it is mounted (its type's table for its
    mode), and every file it creates gets that table; nothing in the kernel
    changes either afterwards.  What the mount was given is the kernel's
    record (:meth:`~fsaops.kernel.Kernel.mount_table`), not ``sb.a_ops``,
    which plugin code can rewrite as it can any file's ``a_ops``.  A table
    swapped in later (by a ``migratepage``, say) changes how the files are
    written back, read and moved, unseen by anyone who asked the mount; so
    does a member of the mount's own table changed in place
    (:func:`_mount_kept`).  A table of another name is one; so is one of
    the same name that lacks a member the mount's had (``writepage``
    missing: its dirty pages are never written), said with those members.
    A copy of the mount's table with a member replaced is taken as the
    mount's own: a test gives a mount or a file such a table to drive the
    engine with.  Asked with the machine at rest (after a run).
    """
    problems: list[str] = []
    for sb in kernel.super_blocks:
        mounted = kernel.mount_table(sb)
        problems += _mount_kept(sb.name, sb.a_ops, mounted)
        given = mounted.table
        for inode in sb.inodes:
            a_ops = inode.i_mapping.a_ops
            if a_ops is given:
                continue
            said = _swapped(a_ops, mounted, "its mount's")
            if said is not None:
                problems.append(
                    f"{inode.name}'s a_ops is {said}: a file keeps the table its mount gave it, "
                    "and plugin code swapped it"
                )
    return problems


def _swapped(a_ops: object, mounted: MountTable, whose: str) -> str | None:
    """What a table in place of ``mounted``'s is, if it is not taken as that one; else ``None``.

    ``X, not <whose> Y (it lacks writepage)``, or ``another table named Y,
    not <whose> (it lacks ...)``: a table of another name, or of the same
    name without a member the mounted one had.
    """
    name = getattr(a_ops, "name", None)
    if not isinstance(name, str):
        name = repr(a_ops)
    members = getattr(a_ops, "members", None)
    mine = members() if callable(members) else None
    if not isinstance(mine, dict):
        mine = {}
    lost = [m for m, fn in mounted.members if fn is not None and not mine.get(m)]
    if name == mounted.name and not lost:
        return None
    said = (
        f"another table named {name}, not {whose}"
        if name == mounted.name
        else f"{name}, not {whose} {mounted.name}"
    )
    lacks = f" (it lacks {', '.join(lost)})" if lost else ""
    return f"{said}{lacks}"


def _mount_kept(mount: str, a_ops: object, mounted: MountTable) -> list[str]:
    """Whether a mount still has the table it was given, as it was given it.

    Its ``sb.a_ops`` swapped (as :func:`_swapped` says), or a member of the
    table it was given changed in place (``object.__setattr__`` on the
    frozen table the mount and its files share): each member named, with
    what it was when the mount was made and what it is now.
    """
    problems: list[str] = []
    if a_ops is not mounted.table:
        said = _swapped(a_ops, mounted, "the one it was mounted with")
        if said is not None:
            problems.append(
                f"{mount}'s a_ops is {said}: a mount keeps the table its type gave it, and "
                "plugin code swapped it"
            )
    changed = mounted.changed()
    if changed:
        members = "; ".join(
            f"{member} was {_said(then)}, is {_said(now)}" for member, then, now in changed
        )
        problems.append(
            f"{mount}'s table {mounted.name} is not as it was when it was mounted ({members}): "
            "a mount keeps the table its type gave it, and plugin code changed it in place"
        )
    return problems


def _said(member: object) -> str:
    """A member (or a table's name) as a problem says it: its function, or ``None``."""
    if member is None or isinstance(member, str):
        return str(member)
    return member_name(member) or "None"


def check_pages(kernel: Kernel, pages: Iterable[Page], *, quiet: bool = True) -> list[str]:
    """Check every invariant that concerns ``pages`` alone; returns the problems found.

    For each page: its references (page-tree slot, buffers, ptes, a
    private list, other tasks' holds) add up to its ``page_count``; its
    ``page_mapcount`` is the number of ptes that map it; ``PG_lru``
    agrees with its list link; it is in the page tree (or swap cache) its
    mapping says, and the tree counts its pages right; its buffers form a
    closed ring at their offsets with their counts accounted for; a free
    page is really free.  ``quiet`` as for :func:`check_kernel`.  What
    other pages, the LRU counters and the swap map hold is
    :func:`check_kernel`'s to check.
    """
    problems: list[str] = []
    refs, locked_by_task, bh_refs, bh_locked_by_task = _task_holds(kernel)
    wanted = {page.pfn: page for page in pages}
    mapped: Counter[int] = Counter()
    for mm in kernel.mms:
        for pte in mm.ptes.values():
            page = pte.page
            if page is not None and page.pfn in wanted:
                mapped[page.pfn] += 1
    trees: set[int] = set()
    for pfn, page in wanted.items():
        if page.count == 0:
            if page.mapcount or page.mapping is not None or page.flags or mapped[pfn]:
                problems.append(f"pfn {pfn} has no references but is in use: {page!r}")
            continue
        tree: AddressSpace | None
        if page.flags & PG.swapcache:
            tree, key = kernel.swapper_space, page.private
        else:
            owner = page.mapping
            tree = None if owner is None or owner.anon else owner  # type: ignore[assignment]
            key = page.index
        slots = [] if tree is None else tree.page_tree
        in_slot = isinstance(key, int) and 0 <= key < len(slots) and slots[key] is page
        if (
            tree is not None
            and not in_slot
            and not (page.flags & PG.swapcache and page.flags & PG.locked)
        ):
            problems.append(f"pfn {pfn} points at {tree.name} but is not in its page tree")
        if tree is not None and id(tree) not in trees:
            trees.add(id(tree))
            held = sum(1 for slot in slots if slot is not None)
            if held != tree.nrpages:
                problems.append(f"{tree.name} counts {tree.nrpages} pages but holds {held}")
        listed = not page.flags & PG.lru and page.lru_next is not LIST_POISON
        want = (
            (1 if in_slot else 0)
            + (1 if page.flags & PG.private else 0)
            + (1 if listed else 0)
            + mapped[pfn]
            + refs[pfn]
        )
        if page.count != want:
            problems.append(
                f"pfn {pfn} has page_count {page.count}, but {want} references are accounted "
                f"for (flags {page_flags_str(page.flags)}, mapcount {page.mapcount})"
            )
        if page.mapcount != mapped[pfn]:
            problems.append(f"pfn {pfn} has mapcount {page.mapcount} but {mapped[pfn]} ptes map it")
        if page.mapping is None and page.mapcount:
            problems.append(_stale_mapping(page))
        if page.flags & PG.lru and page.lru_next is LIST_POISON:
            problems.append(f"pfn {pfn} has PG_lru set but is on no list")
        if quiet and page.flags & PG.locked and pfn not in locked_by_task:
            problems.append(f"pfn {pfn} is locked, but no task holds its lock")
        if page.flags & PG_reclaim and not page.flags & PG.writeback:
            problems.append(_RECLAIM.format(pfn=pfn))
        if page.flags & PG.private:
            bh_expected = Counter(bh_refs)
            head = page.private
            if isinstance(head, BufferHead):
                bh = head
                for _ in range(page.node.page_size // 512 + 1):  # a broken ring is reported below
                    if bh.b_state & BH.jbd:
                        bh_expected[id(bh)] += 1
                    bh = bh.b_this_page
                    if bh is head:
                        break
            problems.extend(_check_buffers(page, bh_expected, bh_locked_by_task, quiet))
        elif page.private and not page.flags & PG.swapcache:
            problems.append(f"pfn {pfn} has private {page.private!r} without PG_private")
    return _named(kernel, problems)


_PFN = re.compile(r"\bpfn (\d+)")


def _named(kernel: Kernel, problems: list[str]) -> list[str]:
    """``problems``, with each page of a file named by its file page after its pfn.

    ``pfn 1034 (mount0/file0/page1, ext2_aops) has page_count 3``: after
    migration the pfn is a frame of the target node, which says nothing of
    whose page it is, nor whose ``migratepage`` moved it (the page's
    table).  A pfn is named where a problem first gives it, unless the
    problem names the page's file already (``slot 3 of mount0/file0 holds
    pfn 7, whose index is 4``).  Only problems are rewritten: no page is
    looked at when every invariant holds.
    """
    if not problems:
        return problems
    names: dict[int, tuple[str, str]] = {}

    def named(problem: str) -> str:
        seen: set[int] = set()

        def name(match: re.Match[str]) -> str:
            pfn = int(match.group(1))
            if pfn in seen:
                return match.group(0)
            seen.add(pfn)
            found = names.get(pfn)
            if found is None:
                found = names[pfn] = _file_page(kernel, pfn)
            file, said = found
            if not said or file in problem:
                return match.group(0)
            return f"{match.group(0)} ({said})"

        return _PFN.sub(name, problem)

    return [named(problem) for problem in problems]


def _file_page(kernel: Kernel, pfn: int) -> tuple[str, str]:
    """The file, and ``FILE/pageN, TABLE``, of a frame with a page of a file; else ``("", "")``."""
    try:
        page = kernel.pfn_to_page(pfn)
    except (KernelBug, IndexError):
        return "", ""
    mapping = getattr(page, "mapping", None)
    index = getattr(page, "index", None)
    flags = getattr(page, "flags", 0)
    if (
        not isinstance(mapping, AddressSpaceClass)
        or mapping.anon
        or type(index) is not int
        or type(flags) is not int
        or flags & PG.swapcache
    ):
        return "", ""
    table = getattr(mapping.a_ops, "name", None)
    said = f"{mapping.name}/page{index}"
    return mapping.name, said if type(table) is not str else f"{said}, {table}"


def _check_buffers(
    page: Page, bh_expected: Counter[int], bh_locked: set[int], quiet: bool
) -> list[str]:
    problems: list[str] = []
    head = page.private
    if head is None or _number(head):
        return [f"pfn {page.pfn} has PG_private but private is {head!r}"]
    if not isinstance(head, BufferHead):  # private data of another kind
        return [
            f"pfn {page.pfn} has PG_private but private is {head!r}, not a buffer head: fsaops "
            "models PG_private as buffer heads only, and private data of other kinds (jfs "
            "metapages, NFS requests) is outside what it models"
        ]
    size = head.b_size
    ps = page.node.page_size
    ring = []
    bh = head
    while True:
        ring.append(bh)
        bh = bh.b_this_page
        if bh is head:
            break
        if len(ring) > ps // 512:
            return [f"the buffer ring of pfn {page.pfn} is not closed"]
    if len(ring) * size != ps:
        problems.append(
            f"pfn {page.pfn} has {len(ring)} buffer heads of {size} bytes for a {ps}-byte page"
        )
    block_map = _block_map(page, len(ring))
    for i, bh in enumerate(ring):
        if block_map is not None and bh.b_state & BH.mapped:
            problem = _mapped_elsewhere(bh, i, *block_map)
            if problem is not None:
                problems.append(f"buffer head {i} of pfn {page.pfn} {problem}")
        if bh.b_page is not page:
            problems.append(
                f"buffer head {i} of pfn {page.pfn} points at pfn {bh.b_page.pfn}, not its page"
            )
        elif bh_offset(bh) != i * size or bh.b_data >> page.node.page_shift != page.pfn:
            problems.append(
                f"buffer head {i} of pfn {page.pfn} has b_data at offset {bh_offset(bh)} "
                f"of pfn {bh.b_data >> page.node.page_shift}, not offset {i * size}"
            )
        want = bh_expected[id(bh)]
        if bh.b_count != want:
            problems.append(
                f"buffer head {i} of pfn {page.pfn} has b_count {bh.b_count}, expected {want}"
            )
        if quiet and bh.b_state & BH.lock and id(bh) not in bh_locked:
            problems.append(f"buffer head {i} of pfn {page.pfn} is locked and nobody holds it")
        if bh.b_state & (BH.jbd | BH.jbddirty):
            journal = journal_head_problem(bh)
            if journal is not None:
                problems.append(f"buffer head {i} of pfn {page.pfn} {journal}")
    return problems


def _stale_mapping(page: Page) -> str:
    """What ``check_kernel`` and ``check_pages`` say of a page in no page cache that ptes map."""
    return (
        f"pfn {page.pfn} is mapped by {page.mapcount} pte(s) but is in no page cache: a stale "
        "mapping (the page left its file, truncated or replaced, and its ptes still point at it)"
    )


_RECLAIM = (
    "pfn {pfn} has PG_reclaim but is not under writeback: pageout clears it unless the "
    "write is in flight, and a page freed with it is in a bad state"
)
PG_reclaim = PG.reclaim


def _block_map(page: Page, nbuffers: int) -> tuple[Inode, int] | None:
    """The file whose block map a page's buffers follow, and its first buffer's file block."""
    host = getattr(page.mapping, "host", None)
    if not isinstance(host, Inode) or type(page.index) is not int:
        return None
    return host, page.index * nbuffers


def _mapped_elsewhere(bh: BufferHead, i: int, inode: Inode, first: int) -> str | None:
    """Why a mapped buffer is not mapped to the block its file's block map gives its place.

    A buffer mapped to another block would write its data over that block,
    and read that block's as its own.
    """
    iblock = first + i
    blocks = inode.blocks
    want = blocks[iblock] if iblock < len(blocks) else 0
    if bh.b_blocknr == want:
        return None
    if want:
        return (
            f"is mapped to block {bh.b_blocknr}, but block {iblock} of {inode.name} is block "
            f"{want}: its writes would go over another block"
        )
    # Its file has no block there yet (a hole, or a delayed allocation):
    # wrong if the block it is mapped to is a file's block somewhere else.
    owner = _owner_of(inode, bh.b_blocknr)
    if owner is None:
        return None
    other, other_iblock = owner
    whose = "another file's block" if other is not inode else "another block"
    return (
        f"is mapped to block {bh.b_blocknr}, which holds block {other_iblock} of {other.name}, "
        f"but {inode.name} has no block {iblock} yet: its writes would go over {whose}"
    )


def _owner_of(inode: Inode, blocknr: int) -> tuple[Inode, int] | None:
    """The file of ``inode``'s filesystem that owns device block ``blocknr``, and its file block."""
    for other in inode.i_sb.inodes:
        if blocknr in other.blocks:
            return other, other.blocks.index(blocknr)
    return None
