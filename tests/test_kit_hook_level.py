"""Hook-level tests of one table's members, with the testing kit's fixtures.

Each test chooses its table itself: the module's marker says ext3 in
``data=ordered`` mode, and one test overrides it by parametrizing
``fsaops_subject`` indirectly.  The fixtures then build pages of that table
(``fsaops_page_factory``), and the test calls a table member directly, as
the kernel calls through ``a_ops``; the oracle reads what happened without
going through the code under test.  The testing kit's page shows this file.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from fsaops.mapping import AddressSpace
from fsaops.oracle import Oracle
from fsaops.page import PG, trylock_page
from fsaops.testing import PageSpec, PreparedPage, Subject, World
from fsaops.writeback import WritebackControl, clear_page_dirty_for_io

pytestmark = pytest.mark.fsaops(filesystem="ext3", mode="ordered")


def test_writepage_writes_the_page_to_its_blocks(
    fsaops_world: World,
    fsaops_page_factory: Callable[..., PreparedPage],
    fsaops_oracle: Oracle,
) -> None:
    """``writepage`` starts writeback, unlocks the page, and the blocks get its bytes."""
    assert fsaops_world.table.name == "ext3_ordered_aops"
    prepared = fsaops_page_factory(PageSpec(dirty=True, isolated=False))
    page = prepared.page
    assert prepared.inode is not None
    assert fsaops_oracle.on_disk(prepared.inode, 0) != prepared.data, "not yet written"
    writepage = fsaops_world.table.writepage
    assert writepage is not None
    assert trylock_page(page)
    assert clear_page_dirty_for_io(page)  # the caller's part, as write_one_page does it
    assert writepage(page, WritebackControl(sync_mode="all", for_reclaim=False)) == 0
    assert not page.flags & PG.locked, "writepage unlocks the page"
    assert page.flags & PG.writeback, "the I/O is in flight"
    fsaops_world.kernel.run_until_idle()
    assert not page.flags & (PG.writeback | PG.dirty)
    assert fsaops_oracle.on_disk(prepared.inode, 0) == prepared.data


def test_releasepage_frees_clean_buffers(
    fsaops_world: World,
    fsaops_page_factory: Callable[..., PreparedPage],
    fsaops_oracle: Oracle,
) -> None:
    """``releasepage`` frees the buffers of a clean page the journal is done with."""
    prepared = fsaops_page_factory(PageSpec(isolated=False))
    page = prepared.page
    fsaops_world.kernel.run_until_idle()  # kjournald has committed
    before = fsaops_oracle.snapshot(page)
    assert before.ring is not None, "ext3 pages carry buffer heads"
    releasepage = fsaops_world.table.releasepage
    assert releasepage is not None
    assert trylock_page(page)
    assert releasepage(page, 0) != 0
    assert not page.flags & PG.private and page.private == 0
    assert page.count == before.count - 1, "the buffers' reference on the page is dropped"


def test_releasepage_keeps_dirty_buffers(
    fsaops_world: World, fsaops_page_factory: Callable[..., PreparedPage]
) -> None:
    """A dirty page's buffers are busy: ``releasepage`` refuses and nothing changes."""
    page = fsaops_page_factory(PageSpec(dirty=True, isolated=False)).page
    releasepage = fsaops_world.table.releasepage
    assert releasepage is not None
    assert trylock_page(page)
    assert releasepage(page, 0) == 0
    assert page.flags & PG.private


@pytest.mark.parametrize("fsaops_subject", [("ext2", "nobh")], indirect=True)
def test_a_test_can_choose_another_table(
    fsaops_subject: Subject, fsaops_mapping: AddressSpace
) -> None:
    """Indirect parametrization of ``fsaops_subject`` wins over the module's marker."""
    assert fsaops_subject.describe() == "ext2 mode nobh (ext2_nobh_aops)"
    assert fsaops_mapping.a_ops.name == "ext2_nobh_aops"
