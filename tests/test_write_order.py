"""Two writers to one page: the one that reaches the page last is the newest version.

The checks number each version of a page's data (its generation) and hold
that the page ends with the newest.  A writer used to take its number when
it began: under ``fsaops explore``, a ``write(2)`` begun first whose copy
landed after a store through a mapping left the page with the older number
in it, and the run said ``data lost`` of a built-in table.  A store now
takes its number under the page-table lock as its bytes land
(:meth:`~fsaops.rmap.Mm.store`), and ``write(2)`` under the page lock as
it copies (``generic_file_write``'s ``landing``).
"""

from __future__ import annotations

import pytest

import fsaops.rmap
from fsaops.explore import TaskSpec, explore
from fsaops.explore.api import render_text
from fsaops.fs import generic_file_write
from fsaops.mapping import find_get_page
from fsaops.page import PG, put_page
from fsaops.plugins import Registry
from fsaops.rmap import Mm
from fsaops.world import World


def test_a_write_and_a_store_that_land_in_either_order_pass(registry: Registry) -> None:
    result = explore(
        "ext2",
        tasks=[TaskSpec("mmap-write", 0), TaskSpec("write", 0)],
        pages=2,
        preemptions=1,
        registry=registry,
    )
    assert result.exhausted and not result.failures, render_text(result)


def test_a_store_makes_its_bytes_once_the_pte_is_present_writable_and_locked(
    world: World,
) -> None:
    sb = world.mount("ext2")
    record = world.record_of(world.file(sb, 1, clean=True))
    mm = world.process("writer")
    vma = world.map_file(record, mm)
    vpn = vma.vm_start
    assert vpn not in mm.ptes, "nothing mapped yet: the store faults first"
    seen: list[tuple[bool, bool, bool]] = []

    def make() -> bytes:
        pte = mm.ptes.get(vpn)
        seen.append(
            (
                pte is not None and pte.page is not None,
                vpn not in mm.wrprotect,
                mm.page_table_lock.locked(),
            )
        )
        return b"\x5a\x5b"

    mm.store(vpn * world.page_size + 7, make)
    assert seen == [(True, True, True)], "made once, as the store lands"
    page = world.page_of(record, 0)
    assert page is not None and bytes(page.data)[7:9] == b"\x5a\x5b"
    assert mm.ptes[vpn].dirty


def test_world_store_numbers_the_version_as_it_lands(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another writer's version that lands while the store faults is older than the store's."""
    sb = world.mount("ext2")
    record = world.record_of(world.file(sb, 1, clean=True))
    mm = world.process("writer")
    vma = world.map_file(record, mm)
    fault = fsaops.rmap.handle_mm_fault

    def meanwhile(mm: Mm, vpn: int, write: bool) -> None:
        record.gens[0] = 5  # the other writer's version, landed during the fault
        fault(mm, vpn, write)

    monkeypatch.setattr(fsaops.rmap, "handle_mm_fault", meanwhile)
    world.store(record, 0, mm, vma)
    monkeypatch.undo()
    assert record.gens[0] == 6
    page = world.page_of(record, 0)
    assert page is not None and bytes(page.data) == world.expected(record, 0)


def test_write_landing_makes_each_page_under_its_lock(world: World) -> None:
    sb = world.mount("ext2")
    record = world.record_of(world.file(sb, 2, clean=True))
    mapping = record.inode.i_mapping
    ps = world.page_size
    calls: list[tuple[int, bool]] = []

    def landing(index: int) -> bytes:
        page = find_get_page(mapping, index)
        assert page is not None
        calls.append((index, bool(page.flags & PG.locked)))
        put_page(page)
        return bytes([index + 1]) * ps

    # From the middle of page 0 to the middle of page 1: each page's part of its bytes.
    done = generic_file_write(record.inode, ps // 2, bytes(ps), landing=landing)
    assert done == ps
    assert calls == [(0, True), (1, True)]
    first, second = world.page_of(record, 0), world.page_of(record, 1)
    assert first is not None and second is not None
    assert bytes(first.data)[ps // 2 :] == b"\x01" * (ps // 2)
    assert bytes(second.data)[: ps // 2] == b"\x02" * (ps // 2)
