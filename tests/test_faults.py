"""Injected faults: each leaves the page whole on its old node and says why (issue: reliability).

Every kind of fault the model can inject, and every way a plugin's
``migratepage`` can misbehave, is tried here; each test checks the reason
the engine reports and that the page's data is intact on its old node.
"""

from __future__ import annotations

import enum
from collections.abc import Callable

import attrs
import pytest

from fsaops.debug import InvariantError, check_kernel
from fsaops.fault_inject import FaultInjector
from fsaops.fs import Inode, generic_file_read
from fsaops.memory_hotplug import migrate_node
from fsaops.migrate import MigrateStats
from fsaops.page import Page
from fsaops.plugins import Registry
from fsaops.world import World
from fsaops.writeback import set_page_dirty


def armed(
    world: World, *, alloc_fail: float = 0.0, writepage_error: float = 0.0, swap_full: float = 0.0
) -> FaultInjector:
    faults = FaultInjector(
        alloc_fail=alloc_fail,
        writepage_error=writepage_error,
        swap_full=swap_full,
        seed=1,
        armed=True,
    )
    world.kernel.faults = faults
    return faults


def on_node(inode: Inode, nid: int) -> bool:
    return all(p.node.nid == nid for p in inode.i_mapping.pages())


def test_new_page_allocation_failing_is_enomem(registry: Registry) -> None:
    world = World(registry=registry, node_pages=256, swap_slots=64)
    inode = world.file(world.mount("ext2"), 4)
    data = generic_file_read(inode, 0, 4 * 4096)
    faults = armed(world, alloc_fail=1.0)
    result = migrate_node(world.kernel, 0, 1)
    assert result.rc == -12
    assert faults.injected["alloc_fail"] >= 1
    table = result.stats.tables["ext2_aops"]
    assert table.not_migrated == 4
    assert table.errors == {"ENOMEM": 4}
    assert any("ENOMEM" in r for r in table.reasons)
    faults.armed = False
    assert on_node(inode, 0)
    assert generic_file_read(inode, 0, 4 * 4096) == data
    assert check_kernel(world.kernel) == []


def test_writepage_failing_with_eio_keeps_the_page_dirty_and_home(registry: Registry) -> None:
    world = World(registry=registry, node_pages=256, swap_slots=64)
    sb = world.mount("ext3", "journal")
    inode = world.file(sb, 2, clean=True)
    world.kernel.run_until_idle()
    world.kernel.sched.run_for(200)
    for page in inode.i_mapping.pages():
        set_page_dirty(page)
    data = generic_file_read(inode, 0, 2 * 4096)
    faults = armed(world, writepage_error=1.0)
    stats = MigrateStats()
    result = migrate_node(world.kernel, 0, 1, stats=stats)
    faults.armed = False
    assert faults.injected["writepage_error"] >= 2
    table = stats.tables["ext3_journalled_aops"]
    assert table.not_migrated == 2
    assert table.reasons == {"writepage failed (EIO)": 2}
    assert result.left == 2
    assert world.kernel.vmstat.writepage_error >= 2
    assert on_node(inode, 0)
    assert all(p.flags & 4 for p in inode.i_mapping.pages()), "still dirty: nothing lost"
    assert generic_file_read(inode, 0, 2 * 4096) == data
    assert check_kernel(world.kernel) == []


def test_a_full_swap_device_fails_anonymous_pages(registry: Registry) -> None:
    world = World(registry=registry, node_pages=256, swap_slots=64)
    area = world.anon(3)
    mm, vma = area.mm, area.vma
    data = mm.read(vma.vm_start * 4096, 3 * 4096)
    faults = armed(world, swap_full=1.0)
    result = migrate_node(world.kernel, 0, 1)
    faults.armed = False
    table = result.stats.tables["swap_aops"]
    assert table.failed == 3
    assert table.errors == {"ENOMEM": 3}
    assert table.reasons == {"no swap space (add_to_swap failed)": 3}
    assert all(p.page is not None and p.page.node.nid == 0 for p in mm.ptes.values())
    assert mm.read(vma.vm_start * 4096, 3 * 4096) == data
    assert check_kernel(world.kernel) == []


def raises(newpage: Page, page: Page) -> int:
    raise RuntimeError("the plugin crashed")


def positive(newpage: Page, page: Page) -> int:
    return 1


def none(newpage: Page, page: Page) -> int:
    return None  # type: ignore[return-value]


def not_an_int(newpage: Page, page: Page) -> int:
    return "0"  # type: ignore[return-value]


def a_float(newpage: Page, page: Page) -> int:
    return 0.0  # type: ignore[return-value]


class _Escape(Exception):
    pass


_Escape.__name__ = "Esc\x1b[2J"


def raises_an_escape(newpage: Page, page: Page) -> int:
    raise _Escape("m")


class _Anything:
    """An object with the default repr, which holds its address."""


def an_object(newpage: Page, page: Page) -> int:
    return _Anything()  # type: ignore[return-value]


@pytest.mark.parametrize(
    ("broken", "reason"),
    [
        (raises, "migratepage raised RuntimeError: the plugin crashed"),
        (raises_an_escape, "migratepage raised Esc\\x1b[2J: m"),
        (an_object, f"migratepage returned <{__name__}._Anything>, not 0 or a negative errno"),
        (positive, "migratepage returned 1, not 0 or a negative errno"),
        (none, "migratepage returned None, not 0 or a negative errno"),
        (not_an_int, "migratepage returned '0', not 0 or a negative errno"),
        (a_float, "migratepage returned 0.0, not 0 or a negative errno"),
    ],
)
def test_a_misbehaving_migratepage_fails_the_page_and_says_why(
    registry: Registry, broken: Callable[[Page, Page], int], reason: str
) -> None:
    world = World(registry=registry, node_pages=256, swap_slots=64)
    inode = world.file(world.mount("ext2"), 2)
    data = generic_file_read(inode, 0, 2 * 4096)
    inode.i_mapping.a_ops = attrs.evolve(inode.i_mapping.a_ops, migratepage=broken)
    result = migrate_node(world.kernel, 0, 1)
    table = result.stats.tables["ext2_aops"]
    assert table.failed == 2
    assert table.errors == {"EIO": 2}
    assert table.reasons == {reason: 2}
    assert on_node(inode, 0)
    assert generic_file_read(inode, 0, 2 * 4096) == data
    assert check_kernel(world.kernel) == []


class _Zero(enum.IntEnum):
    SUCCESS = 0


class _Lying(int):
    def __eq__(self, other: object) -> bool:
        return False

    __hash__ = int.__hash__


@pytest.mark.parametrize("zero", [False, _Zero.SUCCESS, _Lying(0)])
def test_an_int_subclass_is_taken_at_its_value(registry: Registry, zero: int) -> None:
    """C sees a value: a bool, an IntEnum or an int subclass worth 0 is success."""
    world = World(registry=registry, node_pages=256)
    inode = world.file(world.mount("ext2"), 2)
    data = generic_file_read(inode, 0, 2 * 4096)
    real = inode.i_mapping.a_ops.migratepage
    assert real is not None

    def moves(newpage: Page, page: Page) -> int:
        rc = real(newpage, page)
        assert rc == 0
        return zero

    inode.i_mapping.a_ops = attrs.evolve(inode.i_mapping.a_ops, migratepage=moves)
    result = migrate_node(world.kernel, 0, 1)
    assert result.stats.tables["ext2_aops"].moved == 2
    assert on_node(inode, 1)
    assert generic_file_read(inode, 0, 2 * 4096) == data
    assert check_kernel(world.kernel) == []


def test_a_migratepage_that_corrupts_the_model_is_named(registry: Registry) -> None:
    from fsaops import migrate_page_remove_references

    world = World(registry=registry, debug_vm=True, node_pages=256, swap_slots=64)
    inode = world.file(world.mount("ext2", "nobh"), 2)
    data = generic_file_read(inode, 0, 2 * 4096)

    def forgets_the_copy(newpage: Page, page: Page) -> int:
        # Moves the slot but never copies: the new page holds garbage.
        if migrate_page_remove_references(newpage, page, 2):
            return -11
        page.mapping = None
        return 0

    inode.i_mapping.a_ops = attrs.evolve(inode.i_mapping.a_ops, migratepage=forgets_the_copy)
    with pytest.raises(InvariantError) as info:
        migrate_node(world.kernel, 0, 1)
    assert "(ext2_nobh_aops, pass 0, path migratepage)" in info.value.problems[0]
    del data


def test_a_member_without_a_name_of_its_own_is_named_without_its_address() -> None:
    """A report holding an address would differ from run to run for the same seed."""
    import functools

    from fsaops.aops import member_name
    from fsaops.migrate import migrate_page

    name = member_name(functools.partial(migrate_page))
    assert name == "functools.partial(<function migrate_page>)"
    assert member_name(_Anything()) == f"<{__name__}._Anything>"
    assert "0x" not in (member_name(_Anything()) or "")
