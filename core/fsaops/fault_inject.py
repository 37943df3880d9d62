"""Fault injection (``lib/fault-inject.c``, ``failslab`` / ``fail_page_alloc``).

A :class:`FaultInjector` makes chosen operations fail with a given
probability, drawn from its own seeded generator so runs stay
reproducible.  It is armed only while a migration runs, so building the
world is never disturbed.

It also keeps the ledger of the write errors it made: which ``AS_*`` bits
of which mapping an injected ``writepage`` failure set, until an ``fsync``
reports them (the kernel reports such an error once).  The durability
proof reads that ledger to tell the injector's errors from a table's own,
and to find an injected error whose report plugin code took away by
clearing the bit first.  Plugin code is handed the mappings, not this
ledger: ``mapping.injected_flags`` is a read-only view of it.
"""

from __future__ import annotations

import random
import types
from typing import TYPE_CHECKING

import attrs

from fsaops.aops import MEMBERS, member_name

if TYPE_CHECKING:
    from fsaops.kernel import Kernel
    from fsaops.mapping import AddressSpace

__all__ = ["FaultInjector"]


@attrs.define
class _WriteErrors:
    """The injector's write errors on one mapping.

    Attributes:
        mapping: the mapping (kept, so that its ``id`` keys it).
        pending: the ``AS_*`` bits an injected error set that no ``fsync``
            has reported yet.
        lost: bits cleared before an ``fsync`` reported them, each with the
            table member whose code cleared them (``None``: not known).
    """

    mapping: AddressSpace
    pending: int = 0
    lost: list[tuple[int, str | None]] = attrs.field(factory=list)


@attrs.define
class FaultInjector:
    """Probabilities of injected failures, and counts of those injected.

    Attributes:
        alloc_fail: allocating a page fails (the engine sees ``-ENOMEM``).
        writepage_error: a ``writepage`` fails with ``-EIO`` (the page stays dirty).
        swap_full: getting a swap slot fails as if the device were full.
        seed: seeds the generator.
        armed: faults are injected only while this is true.
    """

    alloc_fail: float = 0.0
    writepage_error: float = 0.0
    swap_full: float = 0.0
    seed: int = 0
    armed: bool = False
    injected: dict[str, int] = attrs.field(factory=dict)
    _rng: random.Random = attrs.field(init=False, repr=False)
    _write_errors: dict[int, _WriteErrors] = attrs.field(
        init=False, factory=dict, repr=False, eq=False
    )

    def __attrs_post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def _fail(self, kind: str, probability: float) -> bool:
        if not self.armed or probability <= 0.0:
            return False
        if self._rng.random() < probability:
            self.injected[kind] = self.injected.get(kind, 0) + 1
            return True
        return False

    def fail_alloc(self) -> bool:
        """Whether this page allocation fails."""
        return self._fail("alloc_fail", self.alloc_fail)

    def fail_writepage(self) -> bool:
        """Whether this ``writepage`` fails with ``-EIO``."""
        return self._fail("writepage_error", self.writepage_error)

    def fail_swap(self) -> bool:
        """Whether this swap-slot allocation fails."""
        return self._fail("swap_full", self.swap_full)

    # -- the ledger of injected write errors ---------------------------------

    def made_write_error(self, mapping: AddressSpace, bits: int) -> None:
        """Note that an injected ``writepage`` failure set ``bits`` (``AS_*``) on ``mapping``.

        ``pageout`` calls this: the next ``fsync`` of the file reports them,
        and that report is the injector's doing, not the table's.
        """
        if not bits:
            return
        entry = self._write_errors.get(id(mapping))
        if entry is None:
            entry = self._write_errors[id(mapping)] = _WriteErrors(mapping)
        entry.pending |= bits

    def write_errors(self, mapping: AddressSpace) -> int:
        """The ``AS_*`` bits of ``mapping`` an injected error set that no ``fsync`` reported yet."""
        entry = self._write_errors.get(id(mapping))
        return 0 if entry is None else entry.pending

    def cleared(self, mapping: AddressSpace, bits: int, caller: types.FrameType | None) -> None:
        """``bits`` of ``mapping.flags`` were just cleared, by the code of frame ``caller``.

        :class:`~fsaops.mapping.AddressSpace` calls this whenever its
        ``flags`` lose a bit.  The kernel's wait for writeback
        (``wait_on_page_writeback_range``) clearing a pending injected bit
        is the one report of it, made to its caller, the ``fsync``.  Any
        other clear, or one made while a table member runs, takes that
        report away: it is noted as lost, with the table member whose code
        ran (:meth:`lost_reports`).
        """
        entry = self._write_errors.get(id(mapping))
        if entry is None or not entry.pending & bits:
            return
        bits &= entry.pending
        entry.pending &= ~bits
        member = _running_member(mapping.kernel, caller)
        if member is None and caller is not None and _is_the_wait(caller):
            return  # reported
        entry.lost.append((bits, member))

    def lost_reports(self, mapping: AddressSpace) -> list[tuple[int, str | None]]:
        """The injected errors of ``mapping`` whose report was taken away, and forget them.

        Each is the ``AS_*`` bits and the table member whose code cleared
        them (``None``: plugin code the ledger cannot name).  A pending bit
        that is no longer set on the mapping was cleared without its
        ``flags`` being told (``object.__setattr__``): lost too.
        """
        entry = self._write_errors.get(id(mapping))
        if entry is None:
            return []
        gone = entry.pending & ~mapping.flags
        if gone:
            entry.pending &= ~gone
            entry.lost.append((gone, None))
        lost, entry.lost = entry.lost, []
        return lost


def _is_the_wait(frame: types.FrameType) -> bool:
    """Whether ``frame`` is the kernel's wait for writeback, which reports ``AS_*`` errors."""
    from fsaops.writeback import wait_on_page_writeback_range

    return frame.f_code is wait_on_page_writeback_range.__code__


def _running_member(kernel: Kernel, frame: types.FrameType | None) -> str | None:
    """The innermost table member running at ``frame`` or below it: ``ext2_aops.writepage (f)``.

    The tables are every mount's as it was given and as it is now, every
    file's, and the swap cache's; a function several tables share is
    named with each of them.  ``None`` when no table member's code runs.
    """
    if frame is None:
        return None
    tables: dict[int, object] = {}
    for sb in kernel.super_blocks:
        for table in (kernel.mount_table(sb).table, sb.a_ops):
            tables.setdefault(id(table), table)
        for inode in sb.inodes:
            tables.setdefault(id(inode.i_mapping.a_ops), inode.i_mapping.a_ops)
    if kernel.swapper_space is not None:
        tables.setdefault(id(kernel.swapper_space.a_ops), kernel.swapper_space.a_ops)
    codes: dict[types.CodeType, list[str]] = {}
    for each in tables.values():
        name = getattr(each, "name", None)
        if not isinstance(name, str):
            continue
        for member in MEMBERS:
            try:
                fn = object.__getattribute__(each, member)
            except AttributeError:
                continue
            if isinstance(fn, types.MethodType):
                fn = fn.__func__
            if isinstance(fn, types.FunctionType):
                said = f"{name}.{member} ({member_name(fn)})"
                sharing = codes.setdefault(fn.__code__, [])
                if said not in sharing:
                    sharing.append(said)
    here: types.FrameType | None = frame
    while here is not None:
        named = codes.get(here.f_code)
        if named:
            return " or ".join(named)
        here = here.f_back
    return None
