"""What migration must leave as it found it, outside the pages it moves.

Migrating a page changes that page, its new page, its buffers and the
page-cache slot; nothing in the 2005 series changes a process's memory
areas, a file's list of the areas that map it, a device's block allocator
or the blocks no file owns.  A table that does (clears ``VM_LOCKED`` so that
pinned pages move, writes a buffer over the superblock, winds the
allocator back over blocks in use) leaves every page reading back right,
so the page proofs cannot see it.  :meth:`Untouched.snapshot` notes those
things before migration and :meth:`Untouched.changes` says what differs
after it, one line each; the run reports them with the broken invariants.

What is compared, per machine:

* every process's areas, in order: each area's object, range, flags, file,
  offset and node (``vm_start``, ``vm_end``, ``vm_flags``, ``vm_file``,
  ``vm_pgoff``, the node its policy allocates on);
* every file's ``i_mmap``, the areas that map it, in order;
* every mounted device's allocator (``next_free``), the bytes of each
  allocated block no file owns (block 0, the superblock, and any other),
  the writes made past the last allocated block, and the blocks each file
  owns past the allocator's next free block (which it would hand out
  again) - unless the engine handed one of the device's pages to its
  filesystem's own I/O: the generic path and ``swap_page`` call the
  table's ``writepage`` and ``releasepage``, which may write a log or
  bitmap block or allocate (delayed allocation, copy-on-write), as a
  filesystem's own I/O does.  Another device's pages taking that path
  leave this device compared.

Writes into a device's memory that go around ``BlockDevice.write`` past
the last allocated block, and changes undone before migration ends, are
not seen.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import attrs

if TYPE_CHECKING:
    from fsaops.fs import BlockDevice, SuperBlock
    from fsaops.kernel import Kernel
    from fsaops.mapping import AddressSpace
    from fsaops.rmap import Mm, Vma

__all__ = ["AreaFields", "DeviceSnapshot", "Untouched"]

_VM_NAMES: Final = {0x1: "VM_READ", 0x2: "VM_WRITE", 0x8: "VM_SHARED", 0x2000: "VM_LOCKED"}


AreaFields = tuple[int, int, int, object, int, "int | None"]
"""An area's ``vm_start``, ``vm_end``, ``vm_flags``, ``vm_file``, ``vm_pgoff`` and node."""


def _vm_flags(flags: int) -> str:
    names = [name for bit, name in _VM_NAMES.items() if flags & bit]
    rest = flags & ~sum(_VM_NAMES)
    if rest:
        names.append(hex(rest))
    return "|".join(names) or "0"


def _area(vma: Vma) -> AreaFields:
    return vma.vm_start, vma.vm_end, vma.vm_flags, vma.vm_file, vma.vm_pgoff, vma.nid


def _owned(sb: SuperBlock, nblocks: int) -> bytearray:
    """One byte per block below ``nblocks``: 1 where a file of the mount owns the block."""
    owned = bytearray(nblocks)
    for inode in sb.inodes:
        blocks = inode.blocks
        if not blocks:
            continue
        first = blocks[0]
        n = len(blocks)
        if first > 0 and first + n <= nblocks and blocks == list(range(first, first + n)):
            owned[first : first + n] = b"\x01" * n  # one run, as files are laid out
            continue
        for block in blocks:
            if 0 < block < nblocks:
                owned[block] = 1
    return owned


def _unowned_runs(owned: bytearray) -> list[tuple[int, int]]:
    """The runs of blocks no file owns, as (first, count)."""
    runs: list[tuple[int, int]] = []
    at = owned.find(0)
    while at >= 0:
        end = owned.find(1, at)
        end = len(owned) if end < 0 else end
        runs.append((at, end - at))
        at = owned.find(0, end)
    return runs


def _read(bdev: BlockDevice, first: int, count: int) -> bytes:
    out = bytearray(count * bdev.block_size)
    bdev.read(first, memoryview(out))
    return bytes(out)


@attrs.frozen
class DeviceSnapshot:
    """A mounted device as migration must leave it.

    Attributes:
        sb: the mount.
        bdev: its device.
        next_free: the allocator's next free block.
        past_end: the device's count of writes past its last allocated block.
        unowned: each run of allocated blocks no file owns: first block, count, bytes.
    """

    sb: SuperBlock
    bdev: BlockDevice
    next_free: int
    past_end: int
    unowned: tuple[tuple[int, int, bytes], ...]


@attrs.frozen
class Untouched:
    """A snapshot of what migration must not change (see the module's text).

    Attributes:
        kernel: the machine.
        generic_path: the machine's count of pages handed to the generic path
            or ``swap_page``, by device (``Kernel.generic_path``): a device
            whose count moves is not compared, since its filesystem's
            ``writepage`` or ``releasepage`` may write a block no file owns
            (a log, a bitmap) or allocate (delayed allocation,
            copy-on-write); a page of no known device (count 0) leaves none
            compared.
        areas: each process and its areas, in order, with their fields.
        i_mmap: each file's mapping, its name, and the areas mapping it.
        devices: each mounted device.
    """

    kernel: Kernel
    generic_path: dict[int, int]
    areas: tuple[tuple[Mm, tuple[tuple[Vma, AreaFields], ...]], ...]
    i_mmap: tuple[tuple[AddressSpace, str, tuple[Vma, ...]], ...]
    devices: tuple[DeviceSnapshot, ...]

    @classmethod
    def snapshot(cls, kernel: Kernel) -> Untouched:
        """Note what ``kernel``'s migration must leave alone, as it is now."""
        areas = tuple((mm, tuple((vma, _area(vma)) for vma in mm.vmas)) for mm in kernel.mms)
        i_mmap = tuple(
            (inode.i_mapping, inode.name, tuple(inode.i_mapping.i_mmap))
            for sb in kernel.super_blocks
            for inode in sb.inodes
        )
        devices = []
        for sb in kernel.super_blocks:
            bdev = sb.s_bdev
            nblocks = min(bdev.next_free, bdev.nr_blocks)
            owned = _owned(sb, nblocks)
            unowned = tuple(
                (first, count, _read(bdev, first, count)) for first, count in _unowned_runs(owned)
            )
            devices.append(DeviceSnapshot(sb, bdev, bdev.next_free, bdev.past_end, unowned))
        return cls(kernel, dict(kernel.generic_path), areas, i_mmap, tuple(devices))

    def changes(self) -> list[str]:
        """What differs from the snapshot, one line each (empty: nothing)."""
        found: list[str] = []
        for mm, before in self.areas:
            now = tuple((vma, _area(vma)) for vma in mm.vmas)
            if now == before:
                continue
            was = dict(before)
            for vma, fields in now:
                old = was.pop(vma, None)
                if old is None:
                    found.append(
                        f"process {mm.pid}: area [{fields[0]}, {fields[1]}) appeared "
                        "during migration"
                    )
                elif old != fields:
                    found.append(_area_changed(mm, old, fields))
            for _vma, fields in was.items():
                found.append(
                    f"process {mm.pid}: area [{fields[0]}, {fields[1]}) went away during migration"
                )
            if not found or not found[-1].startswith(f"process {mm.pid}:"):
                found.append(f"process {mm.pid}: its areas were reordered during migration")
        for mapping, name, before_vmas in self.i_mmap:
            if tuple(mapping.i_mmap) != before_vmas:
                found.append(
                    f"file {name}: the areas mapping it (i_mmap) changed during migration: "
                    f"{len(before_vmas)} before, {len(mapping.i_mmap)} after"
                )
        # A filesystem's writepage or releasepage, which the generic path and
        # swap_page call, may write a log block of its device or allocate there.
        noted, counts = self.generic_path, self.kernel.generic_path
        own_io = {key for key, count in counts.items() if noted.get(key, 0) != count}
        if 0 not in own_io:
            for device in self.devices:
                if id(device.bdev) not in own_io:
                    found.extend(_device_changes(device))
        return found


def _area_changed(mm: Mm, old: AreaFields, new: AreaFields) -> str:
    what = []
    if old[:2] != new[:2]:
        what.append(f"its range became [{new[0]}, {new[1]})")
    if old[2] != new[2]:
        what.append(f"vm_flags {_vm_flags(old[2])} became {_vm_flags(new[2])}")
    if old[3] is not new[3]:
        what.append("it maps another file")
    if old[4] != new[4]:
        what.append(f"vm_pgoff {old[4]} became {new[4]}")
    if old[5] != new[5]:
        was, now = ("none" if n is None else f"node {n}" for n in (old[5], new[5]))
        what.append(f"the node its pages are allocated on ({was}) became {now}")
    return f"process {mm.pid}: area [{old[0]}, {old[1]}) changed during migration: " + (
        ", ".join(what)
    )


def _device_changes(device: DeviceSnapshot) -> list[str]:
    bdev = device.bdev
    found: list[str] = []
    if bdev.next_free != device.next_free:
        found.append(
            f"device {bdev.name}: its allocator moved during migration (the next free block "
            f"was {device.next_free}, now {bdev.next_free}): migration allocates and frees "
            "no blocks"
        )
    for first, count, data in device.unowned:
        if _read(bdev, first, count) != data:
            bs = bdev.block_size
            now = _read(bdev, first, count)
            block = first + next(i for i in range(len(data)) if now[i] != data[i]) // bs
            what = " (the superblock)" if block == 0 else ""
            found.append(
                f"device {bdev.name}: block {block}{what}, which no file owns, was written "
                "during migration"
            )
    for inode in device.sb.inodes:
        beyond = [block for block in inode.blocks if block >= bdev.next_free]
        if beyond:
            found.append(
                f"device {bdev.name}: file {inode.name} owns block {beyond[0]}, past the "
                f"allocator's next free block ({bdev.next_free}), which it would hand out again"
            )
    if bdev.past_end != device.past_end:
        found.append(
            f"device {bdev.name}: {bdev.past_end - device.past_end} write(s) during migration "
            f"past its last allocated block ({device.next_free - 1}), which no file owns"
        )
    return found
