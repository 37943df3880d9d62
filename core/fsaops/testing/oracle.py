"""An oracle that reads the machine's state directly, bypassing the code under test.

The conformance suite must not ask a ``migratepage`` implementation (or
the helpers it is built from) whether it did its job.  The :class:`Oracle`
reads the raw state instead: a frame's bytes straight out of its node's
memory, the page-tree slot straight out of ``page_tree``, the buffer ring
by walking ``b_this_page``, the page tables by scanning every process's
ptes, other tasks' holds from their task structures, and file blocks
straight off the block device.  It never calls ``page_address``,
``page_mapping``, ``find_get_page``, ``buffers()`` or any other helper a
filesystem might use or replace.

Its descriptions are sentences in the kernel's terms, so a failing
promise reads like a ``BUG()`` report: "buffer head 2 of pfn 17 still
points at the old page".
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

from fsaops.buffer import BufferHead
from fsaops.mapping import AddressSpace
from fsaops.page import PG, Page

if TYPE_CHECKING:
    from fsaops.fs import Inode
    from fsaops.kernel import Kernel

__all__ = ["BufferState", "IoCounters", "Oracle", "PageState"]


@attrs.frozen
class IoCounters:
    """Counters of writes the machine made (to tell whether migration wrote a page).

    Attributes:
        writepage: ``writepage`` calls that started I/O (``nr_writepage``).
        pageout: ``writepage`` calls made by ``pageout``.
        pswpout: pages written to swap.
        disk_writes: writes that reached any mounted block device.
    """

    writepage: int
    pageout: int
    pswpout: int
    disk_writes: int

    def since(self, before: IoCounters) -> IoCounters:
        """The writes made after ``before``."""
        return IoCounters(
            self.writepage - before.writepage,
            self.pageout - before.pageout,
            self.pswpout - before.pswpout,
            self.disk_writes - before.disk_writes,
        )

    def any(self) -> bool:
        """Whether any write happened."""
        return bool(self.writepage or self.pageout or self.pswpout or self.disk_writes)

    def describe(self) -> str:
        """``2 writepage call(s), 8 disk write(s)``."""
        parts = [
            f"{self.writepage} writepage call(s)",
            f"{self.pageout} pageout write(s)",
            f"{self.pswpout} swap write(s)",
            f"{self.disk_writes} disk block write(s)",
        ]
        return ", ".join(p for p in parts if not p.startswith("0 "))


@attrs.frozen(eq=False)
class BufferState:
    """One buffer head as the oracle saw it."""

    bh: BufferHead
    page: Page
    offset: int
    data_pfn: int
    count: int
    state: int


@attrs.frozen(eq=False)
class PageState:
    """Everything about one page that migration may change, read raw.

    Attributes:
        page: the page itself.
        pfn, flags, count, mapcount, mapping, index, private: its fields.
        data: its frame's bytes.
        ring: its buffer ring (``None`` without ``PG_private`` or a head).
        ring_problem: why the ring could not be walked, if it could not.
        tree: the address space whose page tree it is keyed in (the file's
            mapping, or ``swapper_space`` for a swap-cache page).
        key: its key there (index, or swap entry).
        in_slot: whether that slot holds it.
        slot_pfn: the pfn that slot holds (-1: none).
        ptes: the (pid, page number) of every present pte mapping it.
        holds: references other tasks hold on it.
        locked_by_task: whether another task holds its lock.
    """

    page: Page
    pfn: int
    flags: int
    count: int
    mapcount: int
    mapping: object
    index: int
    private: object
    data: bytes
    ring: tuple[BufferState, ...] | None
    ring_problem: str | None
    tree: AddressSpace | None
    key: int
    in_slot: bool
    slot_pfn: int
    ptes: tuple[tuple[int, int], ...]
    holds: int
    locked_by_task: bool


def _describe_mapping(mapping: object) -> str:
    if mapping is None:
        return "NULL"
    name = getattr(mapping, "name", None)
    if isinstance(name, str) and name:
        return name
    return type(mapping).__name__


class Oracle:
    """Reads page, buffer, page-tree and page-table state without the code under test."""

    # -- formatting ----------------------------------------------------------

    @staticmethod
    def flag_names(flags: int) -> str:
        """``uptodate|dirty|lru``, or ``0``."""
        names = [name for bit, name in PG.NAMES if flags & bit]
        return "|".join(names) or "0"

    # -- raw reads -----------------------------------------------------------

    @staticmethod
    def frame(page: Page) -> bytes:
        """The bytes of the page's frame, read from its node's memory."""
        node = page.node
        off = (page.pfn - node.start_pfn) << node.page_shift
        return bytes(node.mem[off : off + node.page_size])

    @staticmethod
    def write_frame(page: Page, data: bytes) -> None:
        """Overwrite the page's frame (to build states, never to check them)."""
        node = page.node
        off = (page.pfn - node.start_pfn) << node.page_shift
        node.mem[off : off + node.page_size] = data

    @staticmethod
    def tree_of(page: Page) -> AddressSpace | None:
        """The address space whose page tree the page is keyed in, or ``None``."""
        if page.flags & PG.swapcache:
            return page.node.kernel.swapper_space
        mapping = page.mapping
        return mapping if isinstance(mapping, AddressSpace) else None

    @staticmethod
    def key_of(page: Page) -> int:
        """The page's key in its tree: the swap entry of a swap-cache page, else its index."""
        if page.flags & PG.swapcache:
            private = page.private
            return private if isinstance(private, int) else -1
        return page.index

    @staticmethod
    def slot(tree: AddressSpace, key: int) -> Page | None:
        """What slot ``key`` of the tree holds, read from ``page_tree``."""
        slots = tree.page_tree
        return slots[key] if 0 <= key < len(slots) else None

    @staticmethod
    def ring(head: BufferHead) -> tuple[list[BufferHead], str | None]:
        """The buffer ring from ``head``, walked by ``b_this_page``; and a problem, if any."""
        limit = head.b_page.node.page_size // 512 + 1
        found = [head]
        link: object = head.b_this_page
        while link is not head:
            if not isinstance(link, BufferHead):
                return found, f"b_this_page of buffer head {len(found) - 1} is {link!r}"
            bh = link
            if any(bh is seen for seen in found):
                return found, f"the ring loops back to buffer head {found.index(bh)}, not the head"
            found.append(bh)
            if len(found) > limit:
                return found, "the ring is not closed"
            link = bh.b_this_page
        return found, None

    @staticmethod
    def ptes(kernel: Kernel, page: Page) -> tuple[tuple[int, int], ...]:
        """Every present pte mapping the page, by scanning every process's page table."""
        found = []
        for mm in kernel.mms:
            for vpn, pte in mm.ptes.items():
                if pte.page is page:
                    found.append((mm.pid, vpn))
        return tuple(sorted(found))

    @staticmethod
    def holds(kernel: Kernel, page: Page) -> tuple[int, bool]:
        """References other tasks hold on the page, and whether one holds its lock."""
        refs = 0
        locked = False
        for task in kernel.tasks:
            for held in task.holds:
                if held.obj is page:
                    if held.kind == "page_ref":
                        refs += 1
                    elif held.kind == "page_lock":
                        locked = True
        return refs, locked

    @staticmethod
    def io(kernel: Kernel) -> IoCounters:
        """The machine's write counters now."""
        vm = kernel.vmstat
        disk = sum(sb.s_bdev.writes for sb in kernel.super_blocks)
        return IoCounters(vm.nr_writepage, vm.pageout_writepage, vm.pswpout, disk)

    @staticmethod
    def on_disk(inode: Inode, index: int) -> bytes:
        """Page ``index`` of a file as its blocks hold it on the device (zeros for holes)."""
        sb = inode.i_sb
        bs = sb.s_blocksize
        per_page = sb.kernel.page_size // bs
        out = bytearray()
        for i in range(per_page):
            iblock = index * per_page + i
            blocknr = inode.blocks[iblock] if iblock < len(inode.blocks) else 0
            if blocknr:
                off = blocknr * bs
                out += sb.s_bdev.mem[off : off + bs]
            else:
                out += bytes(bs)
        return bytes(out)

    def snapshot(self, page: Page) -> PageState:
        """Everything about ``page`` that migration may change."""
        kernel = page.node.kernel
        ring: tuple[BufferState, ...] | None = None
        problem = None
        private = page.private
        if page.flags & PG.private:
            if isinstance(private, BufferHead):
                bhs, problem = self.ring(private)
                shift = page.node.page_shift
                mask = page.node.page_size - 1
                ring = tuple(
                    BufferState(
                        bh, bh.b_page, bh.b_data & mask, bh.b_data >> shift, bh.b_count, bh.b_state
                    )
                    for bh in bhs
                )
            else:
                problem = f"PG_private is set but private is {private!r}, not a buffer head"
        tree = self.tree_of(page)
        key = self.key_of(page)
        held = self.slot(tree, key) if tree is not None else None
        refs, locked = self.holds(kernel, page)
        return PageState(
            page=page,
            pfn=page.pfn,
            flags=page.flags,
            count=page.count,
            mapcount=page.mapcount,
            mapping=page.mapping,
            index=page.index,
            private=private,
            data=self.frame(page),
            ring=ring,
            ring_problem=problem,
            tree=tree,
            key=key,
            in_slot=held is page,
            slot_pfn=held.pfn if held is not None else -1,
            ptes=self.ptes(kernel, page),
            holds=refs,
            locked_by_task=locked,
        )

    # -- judgements ----------------------------------------------------------------

    def accounted_references(self, page: Page) -> tuple[int, str]:
        """References on ``page`` the oracle can account for, besides its caller's.

        One for its page-tree slot, one for buffers (``PG_private``), one
        per present pte, one per reference another task holds.  Returns the
        sum and a breakdown such as ``cache 1 + buffers 1 + ptes 0``.
        """
        state = self.snapshot(page)
        cache = 1 if state.in_slot else 0
        buffers = 1 if page.flags & PG.private else 0
        ptes = len(state.ptes)
        total = cache + buffers + ptes + state.holds
        parts = [f"page-tree slot {cache}", f"buffers {buffers}", f"ptes {ptes}"]
        if state.holds:
            parts.append(f"other tasks {state.holds}")
        return total, " + ".join(parts)

    def changes(self, before: PageState, after: PageState) -> list[str]:
        """How the page changed between two snapshots, one sentence per change."""
        pfn = before.pfn
        out: list[str] = []
        if before.flags != after.flags:
            out.append(
                f"pfn {pfn}: flags went from {self.flag_names(before.flags)} "
                f"to {self.flag_names(after.flags)}"
            )
        if before.count != after.count:
            out.append(f"pfn {pfn}: page_count went from {before.count} to {after.count}")
        if before.mapcount != after.mapcount:
            out.append(f"pfn {pfn}: page_mapcount went from {before.mapcount} to {after.mapcount}")
        if before.mapping is not after.mapping:
            out.append(
                f"pfn {pfn}: mapping went from {_describe_mapping(before.mapping)} "
                f"to {_describe_mapping(after.mapping)}"
            )
        if before.index != after.index:
            out.append(f"pfn {pfn}: index went from {before.index} to {after.index}")
        if before.private is not after.private and before.private != after.private:
            out.append(f"pfn {pfn}: private went from {before.private!r} to {after.private!r}")
        if before.data != after.data:
            first = next(
                i for i, (a, b) in enumerate(zip(before.data, after.data, strict=False)) if a != b
            )
            out.append(f"pfn {pfn}: its contents changed (first at byte {first})")
        if before.in_slot and not after.in_slot:
            # Look in the tree the page was in: after a move its own mapping is gone.
            now = self.slot(before.tree, before.key) if before.tree is not None else None
            where = "is empty" if now is None else f"holds pfn {now.pfn}"
            name = before.tree.name if before.tree is not None else "?"
            out.append(
                f"pfn {pfn}: slot {before.key} of {name}'s page tree no longer points at it "
                f"(it {where})"
            )
        if before.ptes != after.ptes:
            out.append(
                f"pfn {pfn}: it was mapped by ptes {list(before.ptes)}, now by {list(after.ptes)}"
            )
        out.extend(self._ring_changes(pfn, before.ring, after.ring))
        return out

    @staticmethod
    def _ring_changes(
        pfn: int, before: tuple[BufferState, ...] | None, after: tuple[BufferState, ...] | None
    ) -> list[str]:
        if before is None and after is None:
            return []
        if before is None:
            return [f"pfn {pfn}: it gained buffer heads"]
        if after is None:
            return [f"pfn {pfn}: it lost its buffer heads"]
        if len(before) != len(after) or any(
            a.bh is not b.bh for a, b in zip(before, after, strict=False)
        ):
            return [f"pfn {pfn}: its buffer ring is not the same ring of buffer heads"]
        out = []
        for i, (a, b) in enumerate(zip(before, after, strict=True)):
            if a.page is not b.page or a.data_pfn != b.data_pfn:
                out.append(f"buffer head {i} of pfn {pfn} now points at pfn {b.page.pfn}")
            if a.offset != b.offset:
                out.append(
                    f"buffer head {i} of pfn {pfn}: offset went from {a.offset} to {b.offset}"
                )
            if a.count != b.count:
                out.append(
                    f"buffer head {i} of pfn {pfn}: b_count went from {a.count} to {b.count}"
                )
            if a.state != b.state:
                out.append(
                    f"buffer head {i} of pfn {pfn}: b_state went from {a.state:#x} to {b.state:#x}"
                )
        return out
