"""The conformance suite probes what it does not take on trust, and tests rings of buffers.

A suite that passes a promise it never exercised is a wrong OK.  These
tests pin down four ways that happened:

* a page of one buffer (a block as large as the page) has no ring to get
  wrong, so the promises about the ring of buffer heads are checked at
  every block size the type takes that puts several buffers in a page,
  the suite mounts with the smallest block size when none is named, and a
  promise no block size can show is skipped, saying so;
* a table whose clean pages carry no buffers (``mpage_readpage``) but
  whose written pages do (``block_prepare_write``) is a buffered table;
* a type whose ``page_cache`` flag says a mode keeps no page, although a
  write leaves pages in the page cache, has those pages tested;
* ``swap_cache`` declared for a table that is not the swap cache's is
  named, not left to an assertion deep in the model.
"""

from __future__ import annotations

import textwrap
from typing import Any

import attrs
import pytest

from fsaops import AddressSpaceOperations, FileSystemType, buffer_migrate_page
from fsaops.testing import MigratepageConformance, World, resolve_subject
from fsaops.testing.harness import PageSpec, SetupError, Subject, infer_capabilities
from fsaops_ext2 import EXT2, ext2_aops
from fsaops_swap import SWAP
from suite_runs import call_reports, inline_reports

pytest_plugins = ["pytester"]

TYPES = textwrap.dedent(
    """
    import attrs
    from fsaops_ext2 import EXT2, ext2_aops, ext2_nobh_readpage

    # ext2 as the kernel's 2.6.15 reads it: mpage_readpage attaches no buffers to a clean
    # page read from contiguous blocks; block_prepare_write attaches them on write.
    MPAGE_AOPS = attrs.evolve(ext2_aops, name="mpext2_aops", readpage=ext2_nobh_readpage)
    MPAGE_EXT2 = attrs.evolve(EXT2, name="mpext2", modes={"default": MPAGE_AOPS})

    # ext2's table, its type claiming execute in place, with a migratepage that does nothing.
    LYING_XIP = attrs.evolve(
        EXT2,
        name="fakexip",
        modes={"default": attrs.evolve(ext2_aops, name="nothing_aops", migratepage=lambda n, p: 0)},
        page_cache={"default": False},
    )
    """
)
"""Two filesystem types, defined the same here and in the generated test modules."""

_types: dict[str, Any] = {}
exec(TYPES, _types)  # this module's own source text
MPAGE_AOPS: AddressSpaceOperations = _types["MPAGE_AOPS"]
MPAGE_EXT2: FileSystemType = _types["MPAGE_EXT2"]
LYING_XIP: FileSystemType = _types["LYING_XIP"]


def _run(pytester: pytest.Pytester, source: str, keyword: str) -> dict[str, pytest.TestReport]:
    pytester.makepyfile(test_probes=source)
    reprec = inline_reports(pytester, "--tb=short", "-rs", "-k", keyword)
    reports = call_reports(reprec)
    for report in reprec.getreports("pytest_runtest_logreport"):
        if report.when == "setup" and report.failed:
            reports[report.nodeid.split("::", 1)[1]] = report
    return reports


# -- rings of several buffers ------------------------------------------------------------

RING_MODULE = textwrap.dedent(
    '''
    import attrs

    from fsaops import buffer_migrate_page
    from fsaops.buffer import buffers
    from fsaops.testing import MigratepageConformance
    from fsaops_ext2 import EXT2, ext2_aops


    def head_only(newpage, page):
        """Moves the ring, but repoints only the head buffer at the new page."""
        head = page.private if page.private else None
        others = [] if head is None else list(buffers(head))[1:]
        rc = buffer_migrate_page(newpage, page)
        if rc == 0:
            base, mask = page.pfn << page.node.page_shift, page.node.page_size - 1
            for bh in others:
                bh.b_page = page
                bh.b_data = base + (bh.b_data & mask)
        return rc


    def offsets_for_1k(newpage, page):
        """Repoints every buffer at offset i * 1024, right only for 1 KiB blocks."""
        rc = buffer_migrate_page(newpage, page)
        if rc == 0 and newpage.private:
            base = newpage.pfn << newpage.node.page_shift
            for i, bh in enumerate(buffers(newpage.private)):
                bh.b_data = base + i * 1024
        return rc


    def swaps_two_block_numbers(newpage, page):
        """Moves the page, then swaps the disk blocks of its first two buffers."""
        rc = buffer_migrate_page(newpage, page)
        if rc == 0 and newpage.private:
            ring = list(buffers(newpage.private))
            if len(ring) > 1:
                ring[0].b_blocknr, ring[1].b_blocknr = ring[1].b_blocknr, ring[0].b_blocknr
        return rc


    def fstype(fn, **kw):
        """ext2 with ``fn`` as its migratepage, its default block size the type's (4096)."""
        table = attrs.evolve(ext2_aops, name=f"{fn.__name__}_aops", migratepage=fn)
        options = {"default_block_size": 4096, **kw}
        return attrs.evolve(EXT2, name=fn.__name__, modes={"default": table}, **options)


    class TestHeadOnly(MigratepageConformance):
        filesystem = fstype(head_only)


    class TestOffsetsFor1k(MigratepageConformance):
        filesystem = fstype(offsets_for_1k)


    class TestSwapsBlocksAt4k(MigratepageConformance):
        filesystem = fstype(swaps_two_block_numbers)
        block_size = 4096


    class TestOnePagedBlocks(MigratepageConformance):
        filesystem = fstype(buffer_migrate_page, block_sizes=(4096,))


    class TestRingCorrect(MigratepageConformance):
        filesystem = fstype(buffer_migrate_page)
        block_size = 4096
    '''
)


def test_a_forgotten_loop_over_the_ring_is_caught_at_a_default_block_size_of_a_page(
    pytester: pytest.Pytester,
) -> None:
    """Before, the suite mounted with the type's default of 4096: one buffer, nothing to miss."""
    reports = _run(pytester, RING_MODULE, "TestHeadOnly and not property")
    report = reports["TestHeadOnly::test_hook_moves_buffer_heads_with_the_page"]
    assert report.failed
    assert "buffer head 1 of pfn 0 still points at the old page" in report.longreprtext


def test_an_offset_right_for_one_block_size_only_is_caught_at_another(
    pytester: pytest.Pytester,
) -> None:
    """Right at 1 KiB, the smallest size; the ring promises check 2 KiB too."""
    reports = _run(pytester, RING_MODULE, "TestOffsetsFor1k and buffer_heads")
    report = reports["TestOffsetsFor1k::test_hook_moves_buffer_heads_with_the_page"]
    assert report.failed
    assert (
        "at block size 2048 (2 buffer heads a page): buffer head 1 of pfn 0 moved from "
        "offset 2048 to offset 1024"
    ) in report.longreprtext


def test_a_class_mounted_with_blocks_of_a_page_has_its_ring_checked_at_smaller_blocks(
    pytester: pytest.Pytester,
) -> None:
    """``block_size = 4096`` mounts the machine; the ring is still checked at what ext2 takes."""
    reports = _run(pytester, RING_MODULE, "TestSwapsBlocksAt4k and buffer_heads")
    report = reports["TestSwapsBlocksAt4k::test_hook_moves_buffer_heads_with_the_page"]
    assert report.failed
    assert (
        "at block size 1024 (4 buffer heads a page): buffer head 0 of pfn 0 was mapped to block"
    ) in report.longreprtext
    assert "its writes would go over another block" in report.longreprtext


def test_a_promise_no_block_size_can_show_is_skipped_saying_why(
    pytester: pytest.Pytester,
) -> None:
    """Before, it passed: a page of one buffer has no clean first buffer, no hole, no part."""
    reports = _run(pytester, RING_MODULE, "TestOnePagedBlocks and test_hook_")
    for test in (
        "test_hook_carries_the_dirty_bit_of_each_buffer",
        "test_hook_moves_a_page_written_in_part",
        "test_hook_moves_a_page_whose_holes_hold_data",
    ):
        report = reports[f"TestOnePagedBlocks::{test}"]
        assert report.skipped, test
        assert (
            "a page of one buffer cannot show this: buffer_migrate_page mode default "
            "(buffer_migrate_page_aops) takes no block size below the page size (4096; it "
            "takes: 4096)"
        ) in str(report.longrepr)
    # One buffer still has a head to move, and a file still ends inside a page.
    assert reports["TestOnePagedBlocks::test_hook_moves_buffer_heads_with_the_page"].passed
    assert reports["TestOnePagedBlocks::test_hook_moves_the_last_page_of_a_file"].passed


def test_a_correct_table_passes_the_ring_promises_at_every_block_size(
    pytester: pytest.Pytester,
) -> None:
    reports = _run(pytester, RING_MODULE, "TestRingCorrect and test_hook_")
    assert reports
    failed = [name for name, report in reports.items() if report.failed]
    assert failed == []


def test_the_suite_mounts_with_the_smallest_block_size_when_none_is_named(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_size=textwrap.dedent(
            """
            import attrs
            from fsaops_ext2 import EXT2
            from fsaops.testing import MigratepageConformance

            class TestSize(MigratepageConformance):
                filesystem = attrs.evolve(EXT2, name="big", default_block_size=4096)

                def test_mounted_block_size(self, fsaops_subject, fsaops_world):
                    assert fsaops_subject.block_size == 1024
                    assert fsaops_world.sb.s_blocksize == 1024
            """
        )
    )
    inline_reports(pytester, "-k", "test_mounted_block_size").assertoutcome(passed=1)


# -- buffers attached on write --------------------------------------------------------------


def test_a_table_that_attaches_buffers_only_on_write_is_inferred_buffered() -> None:
    subject = resolve_subject(MPAGE_EXT2)
    world = World(attrs.evolve(subject, capabilities=frozenset({"writeback"})))
    assert not world.make_page(PageSpec()).page.private  # the clean page: none
    assert infer_capabilities(subject) == {"buffers", "writeback"}


def test_declaring_buffers_for_a_table_that_attaches_them_on_write_is_no_false_alarm() -> None:
    subject = resolve_subject(MPAGE_EXT2, capabilities={"buffers", "writeback"})
    MigratepageConformance().test_capabilities_match_the_table(subject)


def test_leaving_out_buffers_for_a_table_that_attaches_them_on_write_is_named() -> None:
    subject = resolve_subject(MPAGE_EXT2, capabilities={"writeback"})
    with pytest.raises(AssertionError) as caught:
        MigratepageConformance().test_capabilities_match_the_table(subject)
    assert (
        "capability 'buffers' is missing, but a dirty page of mpext2 mode default (mpext2_aops) "
        "carries buffer heads"
    ) in str(caught.value)


MPAGE_MODULE = textwrap.dedent(
    '''
    import attrs

    from fsaops import buffer_migrate_page
    from fsaops.buffer import BH, BufferHead, buffers
    from fsaops.page import PG
    from fsaops.testing import MigratepageConformance


    def decides_dirty_from_the_first_buffer(newpage, page):
        """Moves a dirty page whose first buffer is clean as a clean page, buffers cleaned."""
        head = page.private if page.flags & PG.private else None
        head_clean = isinstance(head, BufferHead) and not head.b_state & BH.dirty
        rc = buffer_migrate_page(newpage, page)
        if rc == 0 and head_clean:
            newpage.flags &= ~PG.dirty
            for bh in buffers(newpage.private):
                bh.b_state &= ~BH.dirty
        return rc


    class TestFirstBuffer(MigratepageConformance):
        filesystem = attrs.evolve(
            MPAGE_EXT2,
            modes={
                "default": attrs.evolve(MPAGE_AOPS, migratepage=decides_dirty_from_the_first_buffer)
            },
        )
    '''
)


def test_a_bug_in_the_buffers_of_a_table_that_attaches_them_on_write_is_caught(
    pytester: pytest.Pytester,
) -> None:
    """Before, the four-line class inferred no buffers and skipped every buffer promise."""
    reports = _run(pytester, TYPES + MPAGE_MODULE, "dirty_bit_of_each_buffer")
    report = reports["TestFirstBuffer::test_hook_carries_the_dirty_bit_of_each_buffer"]
    assert report.failed
    assert "moved to pfn" in report.longreprtext


# -- no page cache --------------------------------------------------------------------------


def test_a_type_that_says_it_keeps_no_page_cache_but_does_has_its_pages_tested() -> None:
    subject = resolve_subject(LYING_XIP)
    assert infer_capabilities(subject) == {"buffers", "writeback"}
    inferred = attrs.evolve(subject, capabilities=infer_capabilities(subject), inferred=True)
    with pytest.raises(AssertionError) as caught:
        MigratepageConformance().test_capabilities_match_the_table(inferred)
    assert (
        "fakexip's page_cache flag says mode default keeps no pages in the page cache "
        "(page_cache = {'default': False}), but writing a file on fakexip mode default "
        "(nothing_aops) left 4 page(s) in its page cache"
    ) in str(caught.value)


def test_a_type_that_lies_about_its_page_cache_fails_instead_of_skipping_everything(
    pytester: pytest.Pytester,
) -> None:
    source = textwrap.dedent(
        """
        from fsaops.testing import MigratepageConformance

        class TestLies(MigratepageConformance):
            filesystem = LYING_XIP
        """
    )
    reports = _run(pytester, TYPES + source, "TestLies and not property")
    assert reports["TestLies::test_capabilities_match_the_table"].failed
    assert reports["TestLies::test_hook_copies_the_contents"].failed


def test_a_mode_that_executes_in_place_is_still_inferred_without_page_cache() -> None:
    subject = resolve_subject("ext2", "xip")
    assert infer_capabilities(subject) == {"no_migratepage", "no_page_cache"}
    inferred = attrs.evolve(subject, capabilities=infer_capabilities(subject), inferred=True)
    with pytest.raises(pytest.skip.Exception, match="capabilities not declared"):
        MigratepageConformance().test_capabilities_match_the_table(inferred)


# -- the swap cache ---------------------------------------------------------------------------


def test_swap_cache_declared_for_a_file_table_is_named() -> None:
    subject = resolve_subject(MPAGE_EXT2, capabilities={"swap_cache"})
    with pytest.raises(AssertionError) as caught:
        MigratepageConformance().test_capabilities_match_the_table(subject)
    message = str(caught.value)
    assert (
        "capability 'swap_cache' is declared, but mpext2_aops has readpage and prepare_write"
        in (message)
    )
    assert "never its file pages" in message


def test_swap_cache_declared_for_a_table_that_cannot_serve_it_is_named_not_an_assertion() -> None:
    """Before, ``block_write_full_page``'s "not a file page" assertion ended the test."""
    table = attrs.evolve(
        ext2_aops, name="writer_aops", readpage=None, prepare_write=None, commit_write=None
    )
    fstype = attrs.evolve(EXT2, name="writer", modes={"default": table})
    subject = resolve_subject(fstype, capabilities={"swap_cache", "writeback"})
    with pytest.raises(SetupError, match="capability 'swap_cache' is declared, but writer_aops"):
        World(subject).make_page(PageSpec())
    with pytest.raises(AssertionError) as caught:
        MigratepageConformance().test_capabilities_match_the_table(subject)
    assert "cannot serve the swap cache: building a clean anonymous page in it failed" in str(
        caught.value
    )


def test_swap_cache_left_out_for_the_swap_filesystem_is_named() -> None:
    subject = Subject(SWAP, "default", frozenset({"writeback"}))
    with pytest.raises(AssertionError, match="capability 'swap_cache' is missing, but swap"):
        MigratepageConformance().test_capabilities_match_the_table(subject)


def test_the_real_buffer_migrate_page_keeps_its_declared_capabilities_on_every_probe() -> None:
    table = attrs.evolve(MPAGE_AOPS, migratepage=buffer_migrate_page)
    subject = resolve_subject(
        attrs.evolve(MPAGE_EXT2, modes={"default": table}), capabilities={"buffers", "writeback"}
    )
    MigratepageConformance().test_capabilities_match_the_table(subject)
