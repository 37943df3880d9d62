"""The promises a ``migratepage`` implementation and the engine keep, as checks.

Each function looks at the outcome of one hook call (:class:`~fsaops.testing.harness.HookCall`)
or one engine run (:class:`~fsaops.testing.harness.EngineRun`) through the
:class:`~fsaops.testing.oracle.Oracle` and returns the broken promises as
sentences in the kernel's terms; an empty list means the promise holds.
The conformance suite asserts on them; a plugin author's own tests can too.

KERNEL-SPEC sections: §3 (the engine), §5 (``migrate_page_remove_references``),
§6 (``migrate_page_copy``), §7 (the ``migratepage`` implementations), §9
(derived invariants).
"""

from __future__ import annotations

from collections.abc import Mapping
from errno import EAGAIN, EPERM
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import attrs

from fsaops.buffer import BH
from fsaops.debug import check_kernel
from fsaops.errors import describe_exception
from fsaops.migrate import errno_name
from fsaops.oracle import (
    Oracle,
    bdev_change,
    buffer_changes,
    dirtied_buffer_problem,
    first_difference,
    journalled_dirty_problem,
    journalled_made_dirty,
    may_gain,
    unlocked_move_problem,
)
from fsaops.page import PG
from fsaops.rmap import AnonVma
from fsaops.semantics import DEFAULT_SEMANTICS
from fsaops.testing.harness import (
    EngineRun,
    HookCall,
    PreparedPage,
    Subject,
    World,
    expected_engine_outcome,
    expected_hook_outcome,
    moved_anonymous_pages_leave_the_swap_cache,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from fsaops.fs import Inode
    from fsaops.oracle import PageState


__all__ = [
    "PROMISES",
    "check_after_settle",
    "check_call_as_returned",
    "check_engine_page",
    "check_hook_call",
    "check_on_disk",
    "hook_buffers_follow",
    "hook_contents_copied",
    "hook_dirty_carried",
    "hook_flags_copied",
    "hook_left_untouched",
    "hook_others_untouched",
    "hook_pages_left_locked",
    "hook_private_follows",
    "hook_references_balanced",
    "hook_return_value",
    "hook_size_kept",
    "hook_slot_moved",
    "hook_unmapped",
    "report",
    "sizes_kept",
]

PROMISES: Mapping[str, str] = MappingProxyType(
    {
        "capabilities": "the declared capabilities match what the table does (KERNEL-SPEC §7)",
        "return": "migratepage returns 0 or a negative errno (KERNEL-SPEC §3 step 11, §7)",
        "contents": "the contents are copied to the new page (KERNEL-SPEC §6.1)",
        "flags": "the copied flags reach the new page and the old page is cleared (KERNEL-SPEC §6)",
        "dirty": "the dirty state moves to the new page without writeback (KERNEL-SPEC §6.3, §7)",
        "pte_dirty": (
            "a dirty bit held only in a pte reaches the new page (KERNEL-SPEC §5.2, §6.3)"
        ),
        "nobuffers": (
            "a page of a buffered table without buffer heads moves whole: contents, dirty "
            "state and private data (KERNEL-SPEC §7 step 1)"
        ),
        "tail": (
            "the last page of a file moves whole, the buffers past its end with it "
            "(KERNEL-SPEC §7, §9.3)"
        ),
        "partial": (
            "a page written in part while not up to date moves as it is (KERNEL-SPEC §6.1, §7)"
        ),
        "sparse": (
            "a page whose holes hold data stored through a mapping moves with it "
            "(KERNEL-SPEC §6.1, §7)"
        ),
        "locks": (
            "migratepage leaves both pages locked (the engine unlocks them) and no spinlock "
            "held (KERNEL-SPEC §3)"
        ),
        "buffers": "buffer heads follow the page (KERNEL-SPEC §7 buffer_migrate_page, §9.3)",
        "private": "private data follows the page (KERNEL-SPEC §5.5, §6.4)",
        "slot": "the page-tree slot points at the new page (KERNEL-SPEC §5.4-6)",
        "size": "migratepage leaves every file's size (i_size) as it was (KERNEL-SPEC §6, §7)",
        "others": (
            "migratepage changes no page but the two it is handed, nor another page's buffers "
            "(KERNEL-SPEC §3 step 9, §7)"
        ),
        "refs": "reference counts are balanced on both pages (KERNEL-SPEC §1, §5, §6)",
        "unmap": "a mapped page is unmapped before it moves (KERNEL-SPEC §5.2-3)",
        "eagain": "-EAGAIN leaves the old page exactly as it was (KERNEL-SPEC §5.1-4)",
        "eperm": (
            "from 2.6.16, a page in a VM_LOCKED area fails for good with -EPERM and is left "
            "as it was (KERNEL-SPEC §3, §5.2, §9.5)"
        ),
        "refused": "a permanent failure leaves the old page as it was (KERNEL-SPEC §3, §7)",
        "engine": (
            "migrate_pages moves each page whole or leaves it as it was, on the right list "
            "(KERNEL-SPEC §3, §9.1-4)"
        ),
        "machine": (
            "afterwards every page reads back its data and the machine's invariants hold "
            "(KERNEL-SPEC §9)"
        ),
        "bug": "no BUG() is reached (KERNEL-SPEC §3, §7)",
    }
)
"""The promises, by key, as the suite names them in failure messages."""

_ORACLE = Oracle()


def report(promise: str, problems: list[str], *, semantics: str = DEFAULT_SEMANTICS) -> str:
    """A failure message: the broken promise, then what broke.

    Under a release other than V4 (``semantics``), the first line names it:
    ``broken promise under 2.6.16: ...``.
    """
    head = PROMISES.get(promise, promise)
    under = "" if semantics == DEFAULT_SEMANTICS else f" under {semantics}"
    return f"broken promise{under}: {head}\n  " + "\n  ".join(problems)


def _why(call: HookCall) -> str:
    why = call.page.node.kernel.current.why
    return f" (the model says: {why})" if why else ""


# -- the hook level ------------------------------------------------------------------


def hook_return_value(rc: object) -> list[str]:
    """``migratepage`` returned an int that is 0 or negative (and raised nothing)."""
    if isinstance(rc, Exception):
        return [
            f"migratepage raised {describe_exception(rc)}: it must return 0 or a negative "
            "errno (the engine fails the page with EIO)"
        ]
    if type(rc) is not int:
        return [
            f"migratepage returned {rc!r} (a {type(rc).__name__}), not an int: "
            "it must return 0 or a negative errno"
        ]
    if rc > 0:
        return [
            f"migratepage returned {rc}, a positive number: it must return 0 or a negative "
            "errno (remove_references' 1 must become -EAGAIN)"
        ]
    return []


def _moved_first(call: HookCall) -> list[str]:
    """The call must have succeeded for the success promises to be checked."""
    problems = hook_return_value(call.rc)
    if problems:
        return problems
    if call.rc != 0:
        return [
            f"migratepage returned {call.rc} for pfn {call.old_before.pfn} "
            f"({call.prepared.spec}), a page that can move{_why(call)}"
        ]
    return []


def hook_contents_copied(call: HookCall) -> list[str]:
    """The new page holds the old page's bytes."""
    problems = _moved_first(call)
    if problems:
        return problems
    want = call.old_before.data
    got = _ORACLE.frame(call.newpage)
    if got != want:
        i = first_difference(want, got)
        return [
            f"the contents of pfn {call.old_before.pfn} were not copied to new pfn "
            f"{call.newpage.pfn} (first difference at byte {i}: {want[i]:#04x} expected, "
            f"{got[i]:#04x} found)"
        ]
    return []


def hook_flags_copied(call: HookCall) -> list[str]:
    """``PG.COPIED`` reached the new page; the old page lost mapping, private and its flags."""
    problems = _moved_first(call)
    if problems:
        return problems
    page, new = call.page, call.newpage
    old_pfn, new_pfn = call.old_before.pfn, new.pfn
    lost = call.old_before.flags & PG.COPIED & ~new.flags
    if lost:
        problems.append(
            f"new pfn {new_pfn} did not get flags {Oracle.flag_names(lost)} from pfn {old_pfn}"
        )
    # PG_referenced may come from the ptes on the way, and PG_checked from the
    # table's own set_page_dirty for a page or pte that was dirty (may_gain).
    before = call.old_before
    dirtied = bool(before.flags & PG.dirty) or before.pte_dirty
    tree = before.tree
    allowed = PG.referenced | may_gain(getattr(tree, "a_ops", None), dirtied)
    gained = new.flags & PG.COPIED & ~allowed & ~before.flags
    if gained:
        problems.append(
            f"new pfn {new_pfn} has flags {Oracle.flag_names(gained)} that pfn {old_pfn} never had"
        )
    if new.flags & PG.lru:
        problems.append(f"new pfn {new_pfn} has PG_lru: only move_to_lru may set it")
    if new.flags & PG.writeback:
        problems.append(f"new pfn {new_pfn} is under writeback")
    kept = page.flags & (PG.swapcache | PG.active | PG.private)
    if kept:
        problems.append(f"old pfn {old_pfn} still has flags {Oracle.flag_names(kept)}")
    if page.private:
        problems.append(f"old pfn {old_pfn} still has private {page.private!r}")
    if page.mapping is not None:
        problems.append(f"old pfn {old_pfn} still has a mapping ({page.mapping!r})")
    return problems


def hook_pages_left_locked(call: HookCall) -> list[str]:
    """Both pages are still locked when ``migratepage`` returns, and no spinlock is held.

    The engine unlocks both after the call; a ``migratepage`` that unlocks
    one makes the engine's ``unlock_page`` reach its ``BUG()``.  One that
    returns with a spinlock of its page held (its mapping's ``tree_lock``,
    ``private_lock`` or ``i_mmap_lock``, its ``anon_vma``'s lock, the
    ``page_table_lock`` of a process that maps its file) leaves the next
    ``spin_lock`` of it waiting for ever.
    """
    problems = hook_return_value(call.rc)
    if problems:
        return problems
    if not call.page.flags & PG.locked:
        problems.append(
            f"migratepage unlocked old pfn {call.old_before.pfn}: the engine unlocks it after "
            "the call, and 2.6.15's unlock_page() of an unlocked page is a BUG()"
        )
    if not call.newpage.flags & PG.locked:
        problems.append(
            f"migratepage unlocked new pfn {call.newpage.pfn}: the engine unlocks it after "
            "the call, and 2.6.15's unlock_page() of an unlocked page is a BUG()"
        )
    mapping = call.old_before.tree
    held: list[tuple[str, object, Any]] = []
    if mapping is not None:
        held += [(n, mapping, getattr(mapping, n)) for n in ("tree_lock", "private_lock")]
        held.append(("i_mmap_lock", mapping, mapping.i_mmap_lock))
    anon = call.page.mapping
    if isinstance(anon, AnonVma):
        held.append(("lock", anon, anon.lock))
    for vma in [] if mapping is None else mapping.i_mmap:
        held.append(("page_table_lock", vma.mm, vma.mm.page_table_lock))
    for name, owner, lock in held:
        if lock.locked():
            problems.append(
                f"migratepage returned with the {name} of {owner!r} held: the next "
                "spin_lock of it never returns (a self-deadlock)"
            )
    return problems


def hook_dirty_carried(call: HookCall) -> list[str]:
    """A dirty page's new page is dirty with nothing written to move it; a clean one's clean."""
    problems = _moved_first(call)
    if problems:
        return problems
    before = call.old_before
    page, new = call.page, call.newpage
    if not before.flags & PG.dirty and not before.pte_dirty:
        if new.flags & PG.dirty:
            return [
                f"clean pfn {before.pfn} (neither PG_dirty nor a pte's dirty bit) moved to "
                f"pfn {new.pfn} dirty: the page would be written back for nothing"
            ]
        return []
    if not new.flags & PG.dirty:
        where = "PG_dirty" if before.flags & PG.dirty else "only its pte's dirty bit"
        problems.append(
            f"dirty pfn {before.pfn} ({where} said so) moved to pfn {new.pfn} clean "
            "(PG_dirty clear) without being written back: its data would be lost"
        )
    if page.flags & PG.dirty:
        problems.append(f"old pfn {before.pfn} is still dirty (clear_page_dirty_for_io not done)")
    io = _ORACLE.io(page.node.kernel).since(call.io_before)
    if io.any():
        problems.append(
            f"moving dirty pfn {before.pfn} made {io.describe()}: migratepage moves a dirty "
            "page without writing it"
        )
    if before.ring is not None:
        after = _ORACLE.ring(before.ring[0].bh)[0]
        for i, (state, bh) in enumerate(zip(before.ring, after, strict=False)):
            if state.state & BH.dirty and not bh.b_state & BH.dirty:
                problems.append(
                    f"buffer head {i} of pfn {before.pfn} was dirty and is clean on pfn {new.pfn}"
                )
    return problems


def hook_buffers_follow(call: HookCall) -> list[str]:
    """Every buffer head now belongs to the new page, at the same offset, released and unlocked.

    Each was locked while it moved (``b_page`` set to the new page with
    ``BH_Lock`` held, :class:`~fsaops.oracle.UnlockedMoves`).

    Nothing else about it changed (KERNEL-SPEC §7): every ``BH`` bit but
    the lock (``BH_dirty`` may come from ``set_page_dirty`` on a dirty
    page, never on a clean one, nor on a buffer its journal holds as
    ``BH_JBDDirty``), ``b_count``, ``b_size``, ``b_bdev``, ``b_private`` and
    a mapped buffer's ``b_blocknr``
    (:func:`~fsaops.oracle.buffer_changes`).
    """
    problems = _moved_first(call)
    if problems:
        return problems
    before = call.old_before
    if before.ring is None:
        return []
    page, new = call.page, call.newpage
    old_pfn, new_pfn = before.pfn, new.pfn
    head = before.ring[0].bh
    if not new.flags & PG.private:
        problems.append(
            f"new pfn {new_pfn} has no PG_private: the buffers of pfn {old_pfn} did not follow it"
        )
    if new.private is not head:
        problems.append(
            f"new pfn {new_pfn} has private {new.private!r}, not the head buffer head of "
            f"pfn {old_pfn}"
        )
    if page.flags & PG.private or page.private:
        problems.append(f"old pfn {old_pfn} still has its buffers (PG_private or private set)")
    ring, trouble = _ORACLE.ring(head)
    if trouble:
        problems.append(f"the buffer ring of pfn {old_pfn} is broken: {trouble}")
    if [b.bh for b in before.ring] != ring:
        problems.append(
            f"the buffer ring of pfn {old_pfn} is not the same ring of "
            f"{len(before.ring)} buffer heads any more"
        )
    shift = new.node.page_shift
    mask = new.node.page_size - 1
    # migrate_page_copy's set_page_dirty may dirty every buffer of a dirty page.
    dirtied = bool(before.flags & PG.dirty) or before.pte_dirty
    for i, (state, bh) in enumerate(zip(before.ring, ring, strict=False)):
        if bh.b_page is page:
            problems.append(f"buffer head {i} of pfn {old_pfn} still points at the old page")
        elif bh.b_page is not new:
            problems.append(
                f"buffer head {i} of pfn {old_pfn} points at pfn {bh.b_page.pfn}, "
                f"not the new pfn {new_pfn}"
            )
        elif bh.b_data >> shift != new_pfn:
            problems.append(
                f"buffer head {i} of pfn {old_pfn} has b_page set to the new page but b_data "
                f"still in pfn {bh.b_data >> shift}"
            )
        if bh.b_data & mask != state.offset:
            problems.append(
                f"buffer head {i} of pfn {old_pfn} moved from offset {state.offset} "
                f"to offset {bh.b_data & mask}"
            )
        if bh.b_count != state.count:
            why = (
                "a reference taken to move it was not dropped"
                if bh.b_count > state.count
                else "a reference it held was dropped: a put_bh too many"
            )
            problems.append(
                f"buffer head {i} of pfn {old_pfn} has b_count {bh.b_count}; it had "
                f"{state.count} ({bh.b_count - state.count:+d}: {why})"
            )
        if i in call.moved_unlocked:
            problems.append(unlocked_move_problem(i, old_pfn, new_pfn))
        if bh.b_state & BH.lock and not state.state & BH.lock:
            problems.append(f"buffer head {i} of pfn {old_pfn} was left locked")
        if state.state & BH.mapped and bh.b_blocknr != state.blocknr:
            problems.append(
                f"buffer head {i} of pfn {old_pfn} was mapped to block {state.blocknr} and is "
                f"mapped to block {bh.b_blocknr} on pfn {new_pfn}: its writes would go over "
                "another block"
            )
        if state.state & BH.mapped and bh.b_bdev is not state.bdev:
            what, then = bdev_change(state.bdev, bh.b_bdev)
            problems.append(
                f"buffer head {i} of pfn {old_pfn} {what} on the way to pfn {new_pfn}: {then}"
            )
        # A buffer that was never read, now up to date, serves the frame's
        # left-over bytes; one mapped to no block, a block; and so on.
        problems.extend(
            f"buffer head {i} of pfn {old_pfn} {change} on the way to pfn {new_pfn}: "
            "moving a page changes no buffer's state"
            for change in buffer_changes(state, bh)
        )
        if journalled_made_dirty(state.state, bh.b_state):
            problems.append(journalled_dirty_problem(i, old_pfn, new_pfn))
        elif bh.b_state & BH.dirty and not state.state & BH.dirty and not dirtied:
            problems.append(
                dirtied_buffer_problem(i, old_pfn, new_pfn, page_dirty=bool(new.flags & PG.dirty))
            )
    return problems


def hook_private_follows(call: HookCall) -> list[str]:
    """``private`` (buffers or swap entry) and ``PG_swapcache`` moved; nothing stayed behind.

    From 2.6.16 a moved anonymous page leaves the swap cache instead, its
    process's pte pointing at it
    (:func:`~fsaops.testing.harness.moved_anonymous_pages_leave_the_swap_cache`).
    """
    problems = _moved_first(call)
    if problems:
        return problems
    before = call.old_before
    page, new = call.page, call.newpage
    release = page.node.kernel.semantics
    if before.flags & PG.swapcache and moved_anonymous_pages_leave_the_swap_cache(release):
        problems.extend(_left_the_swap_cache(call))
    elif before.flags & PG.swapcache:
        if not new.flags & PG.swapcache:
            problems.append(f"new pfn {new.pfn} is not in the swap cache (PG_swapcache clear)")
        if new.private != before.private:
            problems.append(
                f"new pfn {new.pfn} has private {new.private!r}, not the swap entry "
                f"{before.private!r} of pfn {before.pfn}"
            )
    elif before.ring is None and (new.private or new.flags & PG.private):
        problems.append(f"new pfn {new.pfn} gained private {new.private!r} from nowhere")
    if page.private or page.flags & (PG.private | PG.swapcache):
        problems.append(
            f"old pfn {before.pfn} kept private {page.private!r} "
            f"(flags {Oracle.flag_names(page.flags)})"
        )
    return problems


def _left_the_swap_cache(call: HookCall) -> list[str]:
    """A moved anonymous page out of the swap cache and mapped, as 2.6.16's ``migrate_page`` does.

    ``remove_from_swap(newpage)`` points the process's swap pte at the new
    page and deletes it from the swap cache: no ``PG_swapcache``, no swap
    entry in ``private`` (KERNEL-SPEC §9.4;
    :func:`~fsaops.testing.harness.moved_anonymous_pages_leave_the_swap_cache`).
    """
    before, new = call.old_before, call.newpage
    release = new.node.kernel.semantics.name
    problems = []
    if new.flags & PG.swapcache or new.private:
        problems.append(
            f"new pfn {new.pfn} is still in the swap cache (flags "
            f"{Oracle.flag_names(new.flags & (PG.swapcache | PG.private))}, private "
            f"{new.private!r}): under {release} migrate_page's remove_from_swap(newpage) "
            "takes a moved anonymous page out of it"
        )
    prepared = call.prepared
    if prepared.mm is not None:
        vpn = prepared.addr // new.node.page_size
        pte = prepared.mm.ptes.get(vpn)
        if pte is None or pte.page is not new:
            problems.append(
                f"{prepared.mm.name}'s pte at page {vpn} is {pte!r}, not new pfn {new.pfn}: "
                f"under {release} remove_from_swap(newpage) points the swap pte of pfn "
                f"{before.pfn} at the new page"
            )
    return problems


def hook_slot_moved(call: HookCall) -> list[str]:
    """The page-tree slot holds the new page, which took the old page's mapping and index.

    From 2.6.16 the swap cache's slot of a moved anonymous page holds
    nothing: the new page left the swap cache
    (:func:`~fsaops.testing.harness.moved_anonymous_pages_leave_the_swap_cache`).
    """
    problems = _moved_first(call)
    if problems:
        return problems
    before = call.old_before
    new = call.newpage
    tree = before.tree
    if tree is None:
        return [f"pfn {before.pfn} was in no page tree before the call"]
    held = _ORACLE.slot(tree, before.key)
    where = f"slot {before.key} of {tree.name}'s page tree"
    release = new.node.kernel.semantics
    if before.flags & PG.swapcache and moved_anonymous_pages_leave_the_swap_cache(release):
        if held is not None:  # delete_from_swap_cache(newpage) emptied it
            problems.append(
                f"{where} holds pfn {held.pfn}: under {release.name} the moved anonymous page "
                "leaves the swap cache (remove_from_swap), so the slot holds nothing"
            )
    elif held is call.page:
        problems.append(f"{where} still points at the old page (pfn {before.pfn})")
    elif held is not new:
        what = "nothing" if held is None else f"pfn {held.pfn}"
        problems.append(f"{where} holds {what}, not the new pfn {new.pfn}")
    if new.mapping is not before.mapping:
        problems.append(
            f"new pfn {new.pfn} has mapping {new.mapping!r}, not {before.mapping!r} "
            f"of pfn {before.pfn}"
        )
    if new.index != before.index:
        problems.append(f"new pfn {new.pfn} has index {new.index}, not {before.index}")
    return problems


def hook_references_balanced(call: HookCall) -> list[str]:
    """Old page: the isolation reference only; new page: allocation + cache + buffers (+ ptes)."""
    problems = _moved_first(call)
    if problems:
        return problems
    page, new = call.page, call.newpage
    if page.count != 1:
        problems.append(
            f"old pfn {page.pfn} has page_count {page.count}; only the isolation reference "
            "should be left (1)"
        )
    want, parts = _ORACLE.accounted_references(new)
    if new.count != want + 1:
        problems.append(
            f"new pfn {new.pfn} has page_count {new.count}, expected {want + 1} = "
            f"allocation 1 + {parts}"
        )
    return problems


def hook_unmapped(call: HookCall) -> list[str]:
    """No pte maps the old page any more."""
    problems = _moved_first(call)
    if problems:
        return problems
    page = call.page
    ptes = _ORACLE.ptes(page.node.kernel, page)
    if ptes or page.mapcount:
        problems.append(
            f"old pfn {page.pfn} is still mapped: page_mapcount {page.mapcount}, ptes {list(ptes)}"
        )
    return problems


def sizes_kept(before: Iterable[tuple[Inode, int]], who: str) -> list[str]:
    """Every file still has the size (``i_size``) it had in ``before``; ``who`` changed it.

    ``before`` is :func:`~fsaops.testing.harness.file_sizes` read before the
    call or the run ``who`` names (``migratepage of pfn 3``).  Nothing in
    migration touches ``i_size`` (KERNEL-SPEC §6, §7): ``read(2)`` and
    ``stat`` go by it, so a larger size has every read return bytes nobody
    wrote past the file's end, and a smaller one cuts its data off.
    """
    problems = []
    for inode, size in before:
        now = inode.i_size
        if now == size:
            continue
        if now > size:
            what = f"a read now returns {_bytes(now - size)} nobody wrote past its end"
        else:
            what = f"a read now stops {_bytes(size - now)} short of the data it holds"
        problems.append(
            f"{who} changed the size (i_size) of {inode.name} from {size} to {now} bytes: {what}"
        )
    return problems


def _bytes(count: int) -> str:
    return f"{count} byte" if count == 1 else f"{count} bytes"


def hook_size_kept(call: HookCall) -> list[str]:
    """No file's size (``i_size``) changed in the call, its page's file's or another's.

    Whatever the call returned: a page that failed to move leaves its file
    as it was too (:func:`sizes_kept`).
    """
    problems = hook_return_value(call.rc)
    if problems:
        return problems
    return sizes_kept(call.sizes_before, f"migratepage of pfn {call.old_before.pfn}")


def hook_left_untouched(
    call: HookCall, *, refused: bool = False, errno: int = -EAGAIN
) -> list[str]:
    """The call failed, and neither page changed.

    With ``refused`` the failure must be permanent (negative, not
    ``-EAGAIN``); otherwise it must be ``errno``: ``-EAGAIN`` (the page
    cannot move now), or ``-EPERM`` for a page in a ``VM_LOCKED`` area
    from 2.6.16 (KERNEL-SPEC §3, §5.2).
    """
    problems = hook_return_value(call.rc)
    if problems:
        return problems
    rc = call.rc
    pfn = call.old_before.pfn
    if refused and rc in (0, -EAGAIN):
        problems.append(
            f"migratepage returned {rc} for pfn {pfn}: a refusing table returns a permanent "
            "error (-EIO)"
        )
    elif not refused and rc != errno:
        why = _WHY_ERRNO.get(errno, "")
        problems.append(
            f"migratepage returned {rc} for pfn {pfn} ({call.prepared.spec}): it must return "
            f"-{errno_name(errno)} ({errno}){why}"
        )
    problems.extend(_ORACLE.changes(call.old_before, _ORACLE.snapshot(call.page)))
    new_changes = _ORACLE.changes(call.new_before, _ORACLE.snapshot(call.newpage))
    problems.extend(
        f"the new page changed: {c}" for c in new_changes if "contents changed" not in c
    )
    return problems


_WHY_ERRNO: Mapping[int, str] = MappingProxyType(
    {
        -EAGAIN: ", since the page cannot move now",
        -EPERM: (
            ", since try_to_unmap refuses a page in a VM_LOCKED area for good (from 2.6.16, "
            "a permanent failure)"
        ),
    }
)


_SUCCESS_CHECKS: Mapping[str, Callable[[HookCall], list[str]]] = MappingProxyType(
    {
        "contents": hook_contents_copied,
        "flags": hook_flags_copied,
        "locks": hook_pages_left_locked,
        "dirty": hook_dirty_carried,
        "buffers": hook_buffers_follow,
        "private": hook_private_follows,
        "slot": hook_slot_moved,
        "refs": hook_references_balanced,
        "unmap": hook_unmapped,
    }
)


def check_hook_call(
    subject: Subject, call: HookCall, outcome: str | None = None
) -> dict[str, list[str]]:
    """Every promise that applies to one hook call, by promise key (only broken ones).

    ``outcome`` is what the call must have done: ``moved``, ``eagain``,
    ``eperm`` or ``refused`` (default: ``expected_hook_outcome``
    of the page's spec).  A call that moved its page is held to every
    promise of a move (contents byte for byte, flags, dirty state, buffer
    heads, private data, slot, references, ptes, locks); one that did not,
    to leaving both pages as they were and locked; every call, to leaving
    every file's size and every other page as they were.
    """
    if outcome is None:
        outcome = expected_hook_outcome(subject, call.prepared.spec)
    broken: dict[str, list[str]] = {}
    rc_problems = hook_return_value(call.rc)
    if rc_problems:
        broken["return"] = rc_problems
        return broken
    if outcome == "moved":
        for key, check in _SUCCESS_CHECKS.items():
            problems = check(call)
            if problems:
                broken[key] = problems
    else:
        errno = -EPERM if outcome == "eperm" else -EAGAIN
        problems = hook_left_untouched(call, refused=outcome == "refused", errno=errno)
        key = outcome
        if problems:
            broken[key] = problems
        locks = hook_pages_left_locked(call)
        if locks:
            broken["locks"] = locks
    size = hook_size_kept(call)
    if size:
        broken["size"] = size
    others = hook_others_untouched(call, busy_ok=call.engine)
    if others:
        broken["others"] = others
    return broken


def check_call_as_returned(subject: Subject, call: HookCall) -> dict[str, list[str]]:
    """Every promise that applies to a call the engine made, judged by what it returned.

    ``migrate_pages`` calls ``migratepage`` on a page that another task may
    still pin, or that the call may find it cannot move yet: which answer is
    right is for the page's list at the end of the run to say
    (:func:`check_engine_page`).  What each call did with its answer is
    this function's: 0 holds it to every promise of a move, a negative
    errno to leaving both pages as they were (``-EAGAIN``, or a permanent
    error for ``refused`` tables and ``VM_LOCKED`` pages from 2.6.16), and
    every call to every file's size and every other page
    (:func:`check_hook_call`).
    """
    rc = call.rc
    if type(rc) is not int or rc > 0:
        return check_hook_call(subject, call, "moved")  # names the return value
    if rc == 0:
        return check_hook_call(subject, call, "moved")
    if rc == -EAGAIN:
        outcome = "eagain"
    elif rc == -EPERM and not subject.has("refuses"):
        outcome = "eperm"
    else:
        outcome = "refused"
    broken = check_hook_call(subject, call, outcome)
    if outcome in broken and _busy(call.old_before, own_lock=True):
        # Another task (the journal, I/O) may change the old page while the call waits:
        # only what the call did to the new page is its own.
        kept = [p for p in broken[outcome] if p.startswith("the new page changed")]
        if kept:
            broken[outcome] = kept
        else:
            del broken[outcome]
    return broken


def hook_others_untouched(call: HookCall, *, busy_ok: bool = False) -> list[str]:
    """No page but the two the call was handed changed in it, nor any other page's buffers.

    Whatever the call returned.  ``migratepage`` gets the old page and the
    new one, both locked (KERNEL-SPEC §3 step 9); every other page's flags,
    references, contents, slot, ptes and buffers belong to whoever holds
    that page's lock, or the buffer's.  A table that reaches past its two
    pages (clears a neighbour's ``PG_uptodate``, or a dirty buffer's
    ``BH_Uptodate``, so the next read or partial write fetches the block
    from disk over newer data; marks a page it does not hold) breaks a page
    no check of the two pages looks at, and would race with that page's
    owner.  ``PG_referenced`` is left out: ``mark_page_accessed`` sets it
    on any page without the page's lock.  Compared with
    :func:`~fsaops.testing.harness.other_pages` taken before the call; and a
    frame free before and after it must hold the same bytes, unless the call
    took a frame from the allocator (:func:`~fsaops.testing.harness.free_frames`).

    With ``busy_ok`` (a call the engine made, while other tasks run), a
    page another task was busy with when the call began is left out: one
    under writeback, locked, held by another task, or with a locked buffer
    head; the I/O or the task may end while the call waits on a lock.

    Nor did anything else migration leaves alone change
    (:class:`~fsaops.untouched.Untouched`: processes' areas, files'
    ``i_mmap``, a device's allocator, the blocks no file owns), except with
    ``busy_ok``, where another task may map, unmap or write.
    """
    problems = hook_return_value(call.rc)
    if problems:
        return problems
    if call.untouched_before is not None and not busy_ok:
        problems.extend(
            f"migratepage of pfn {call.old_before.pfn} changed what migration leaves alone: "
            f"{line.replace(' during migration', '')}"
            for line in call.untouched_before.changes()
        )
    who = f"migratepage of pfn {call.old_before.pfn} changed another page"
    index = _ORACLE.index(call.page.node.kernel) if call.others_before else None
    for before in call.others_before:
        if busy_ok and _busy(before):
            continue
        after = _ORACLE.snapshot(before.page, index=index)
        if (before.flags ^ after.flags) & PG.referenced:
            after = attrs.evolve(after, flags=after.flags ^ PG.referenced)
        problems.extend(f"{who}: {change}" for change in _ORACLE.changes(before, after))
    if call.free_before and call.page.node.kernel.vmstat.pgalloc == call.allocs_before:
        memory: dict[int, bytes] = {}  # each node's memory, read once
        for frame, data in call.free_before:
            if frame.count:
                continue
            node = frame.node
            mem = memory.get(node.nid)
            if mem is None:
                mem = memory[node.nid] = bytes(node.mem)
            off = (frame.pfn - node.start_pfn) << node.page_shift
            if mem[off : off + node.page_size] != data:
                problems.append(
                    f"migratepage of pfn {call.old_before.pfn} wrote into pfn {frame.pfn}, a "
                    "free frame: whoever is given that frame next finds it changed"
                )
                break
    return problems


def _busy(state: PageState, *, own_lock: bool = False) -> bool:
    """Whether another task was busy with the page: I/O in flight, its lock, or a hold on it.

    A buffer head locked, or held by the journal (``BH_JBD``: kjournald
    commits it when it will), counts too.  With ``own_lock`` the page's
    lock is the caller's, so it does not count.
    """
    locked = 0 if own_lock else PG.locked
    if state.flags & (PG.writeback | locked) or state.holds or state.locked_by_task:
        return True
    return any(buffer.state & (BH.lock | BH.jbd) for buffer in state.ring or ())


# -- the engine level ----------------------------------------------------------------------


def check_engine_page(
    world: World, run: EngineRun, prepared: PreparedPage, expected: str | None = None
) -> list[str]:
    """Where ``migrate_pages`` left one page, and whether that place is right.

    ``expected`` is ``moved``, ``failed`` or ``from`` (default: derived
    from the page's spec and the subject's capabilities).
    """
    subject = world.subject
    if expected is None:
        expected = expected_engine_outcome(subject, prepared.spec)
    page = prepared.page
    before = run.before[page.pfn]
    problems: list[str] = []
    for i, (rc, (nr_failed, left)) in enumerate(zip(run.rcs, run.calls, strict=True)):
        if rc != nr_failed + left:
            problems.append(
                f"migrate_pages call {i + 1} returned {rc}, but it put {nr_failed} page(s) on "
                f"failed and left {left} on from (it returns nr_failed + retry)"
            )
    where = run.where(page)
    if where != expected:
        problems.append(
            f"pfn {page.pfn} ({prepared.spec}) ended {where}, expected {expected}: {run.reasons()}"
        )
        return problems
    if where == "moved":
        problems.extend(
            _ORACLE.moved_problems(
                before,
                page,
                expected=prepared.in_frame,
                new_pfns=run.new_pages,
                dropped_ok=subject.has("no_migratepage"),
            )
        )
    else:
        exact = not subject.has("no_migratepage") and not prepared.anonymous
        problems.extend(
            _ORACLE.unmoved_problems(before, page, expected=prepared.in_frame, exact=exact)
        )
    for newpage in run.to:
        if newpage.mapping is not None or newpage.flags or newpage.count != 1 or newpage.private:
            problems.append(f"unused new pfn {newpage.pfn} was changed: {newpage!r}")
    return problems


def check_on_disk(world: World) -> list[str]:
    """Sync everything, drop the cache, and read every page of the world back from disk.

    :func:`~fsaops.proofs.prove_durability`, as ``fsaops migrate`` proves
    it: every file written back and its journal committed, its cache
    dropped, every page read from its blocks (anonymous memory from swap).
    What a moved page's buffers say about its blocks (``BH_Mapped``,
    ``b_blocknr``, ``BH_Delay``) is what writeback goes by, so a buffer
    mapped to the wrong block, or a delayed allocation lost on the way,
    shows here as a page that does not read back.  Afterwards every
    invariant of the machine must hold.
    """
    from fsaops.proofs import prove_durability  # fsaops.proofs imports the world

    proof = prove_durability(world)
    problems = list(proof.problems)
    if proof.failures > len(problems):
        problems.append(f"and {proof.failures - len(problems)} more page(s)")
    problems.extend(check_kernel(world.kernel))
    return problems


def check_after_settle(world: World) -> list[str]:
    """After :meth:`.World.settle`: every page reads back its data, every invariant holds."""
    problems: list[str] = []
    for prepared in world.prepared:
        if prepared.spec.truncated:
            continue  # truncation drops the cached data: nothing to read back
        got = prepared.read_back()
        if got != prepared.data:
            problems.append(
                f"the data of pfn {prepared.page.pfn} ({prepared.spec}) was lost: reading it "
                f"back differs at byte {first_difference(prepared.data, got)}"
            )
        elif prepared.sharer is not None:
            seen = prepared.sharer.read(prepared.sharer_addr, len(prepared.data))
            if seen != prepared.data:
                problems.append(
                    f"the data of pfn {prepared.page.pfn} ({prepared.spec}) was lost for "
                    f"{prepared.sharer.name}, its second process: what it reads differs at "
                    f"byte {first_difference(prepared.data, seen)}"
                )
    problems.extend(check_kernel(world.kernel))
    return problems
