"""The conformance suite catches broken ``migratepage`` implementations.

Each broken function below is what a plugin author could plausibly write:
``buffer_migrate_page`` with one step missing or wrong.  A generated test
module wraps each in a ``FileSystemType`` (ext2's table with the broken
``migratepage``) and subclasses the suite, exactly as a third party would
before installing its plugin; pytester runs it, and these tests check that
the suite fails the right promise, with a message that names it and says
what broke in the kernel's terms.  A control class with the real
``buffer_migrate_page`` must pass the same suite.
"""

from __future__ import annotations

import textwrap

import pytest

import fsaops.spinlock
from fsaops.testing.promises import PROMISES
from suite_runs import call_reports, inline_reports

pytest_plugins = ["pytester"]

BROKEN_MODULE = textwrap.dedent(
    '''
    from errno import EAGAIN

    import attrs

    from fsaops import buffer_migrate_page, migrate_page_copy, migrate_page_remove_references
    from fsaops.buffer import BH, buffers
    from fsaops.page import PG
    from fsaops.testing import MigratepageConformance
    from fsaops_ext2 import EXT2, ext2_aops


    def take_buffers(newpage, page, *, repoint=True):
        """buffer_migrate_page's middle: lock the buffers, move private, repoint them."""
        head = page.private
        for bh in buffers(head):
            bh.b_count += 1
            bh.b_state |= BH.lock
        page.flags &= ~PG.private
        newpage.private = head
        page.private = 0
        page.count -= 1
        newpage.count += 1
        if repoint:
            mask = newpage.node.page_size - 1
            base = newpage.pfn << newpage.node.page_shift
            for bh in buffers(head):
                bh.b_page = newpage
                bh.b_data = base + (bh.b_data & mask)
        newpage.flags |= PG.private
        return head


    def release_buffers(head):
        for bh in buffers(head):
            bh.b_state &= ~BH.lock
            bh.b_count -= 1


    def forgets_buffer_heads(newpage, page):
        """Moves private but never points the buffer heads at the new page."""
        if page.mapping is None or migrate_page_remove_references(newpage, page, 3):
            return -EAGAIN
        head = take_buffers(newpage, page, repoint=False)
        migrate_page_copy(newpage, page)
        release_buffers(head)
        return 0


    def skips_the_copy(newpage, page):
        """Moves the slot and the buffers, forgets migrate_page_copy."""
        if page.mapping is None or migrate_page_remove_references(newpage, page, 3):
            return -EAGAIN
        head = take_buffers(newpage, page)
        page.mapping = None
        release_buffers(head)
        return 0


    def drops_the_dirty_bit(newpage, page):
        """Cleans the new page after the move, as if the data were on disk."""
        rc = buffer_migrate_page(newpage, page)
        newpage.flags &= ~PG.dirty
        return rc


    def leaks_a_reference(newpage, page):
        """Takes a reference on the new page and never drops it."""
        rc = buffer_migrate_page(newpage, page)
        if rc == 0:
            newpage.count += 1
        return rc


    def changes_the_old_page_before_eagain(newpage, page):
        """Takes the buffer references before checking the page's, and keeps them on -EAGAIN."""
        if page.mapping is None:
            return -EAGAIN
        for bh in buffers(page.private):
            bh.b_count += 1
        if migrate_page_remove_references(newpage, page, 3):
            return -EAGAIN
        for bh in buffers(page.private):
            bh.b_count -= 1
        head = take_buffers(newpage, page)
        migrate_page_copy(newpage, page)
        release_buffers(head)
        return 0


    def returns_a_positive_number(newpage, page):
        """Passes remove_references' V3-style 1 through instead of -EAGAIN."""
        if page.mapping is None:
            return -EAGAIN
        rc = migrate_page_remove_references(newpage, page, 3)
        if rc:
            return rc
        head = take_buffers(newpage, page)
        migrate_page_copy(newpage, page)
        release_buffers(head)
        return 0


    def returns_none(newpage, page):
        """Does the work and forgets to return."""
        buffer_migrate_page(newpage, page)


    def raises_memory_error(newpage, page):
        """Raises where C would have returned -ENOMEM."""
        raise MemoryError("no buffer heads left")


    def leaves_the_tree_slot(newpage, page):
        """Checks the counts and moves everything but the page-tree slot."""
        if page.mapping is None or page.mapcount or page.count != 3:
            return -EAGAIN
        newpage.count += 1
        newpage.index = page.index
        newpage.mapping = page.mapping
        head = take_buffers(newpage, page)
        migrate_page_copy(newpage, page)
        release_buffers(head)
        return 0


    def broken(fn):
        """ext2 with ``fn`` as its migratepage, given to the suite directly."""
        table = attrs.evolve(ext2_aops, name=f"{fn.__name__}_aops", migratepage=fn)
        return attrs.evolve(EXT2, name=fn.__name__, modes={"default": table})


    class TestForgetsBufferHeads(MigratepageConformance):
        filesystem = broken(forgets_buffer_heads)
        capabilities = {"buffers", "writeback"}


    class TestSkipsTheCopy(MigratepageConformance):
        filesystem = broken(skips_the_copy)
        capabilities = {"buffers", "writeback"}


    class TestDropsTheDirtyBit(MigratepageConformance):
        filesystem = broken(drops_the_dirty_bit)
        capabilities = {"buffers", "writeback"}


    class TestLeaksAReference(MigratepageConformance):
        filesystem = broken(leaks_a_reference)
        capabilities = {"buffers", "writeback"}


    class TestChangesTheOldPageBeforeEagain(MigratepageConformance):
        filesystem = broken(changes_the_old_page_before_eagain)
        capabilities = {"buffers", "writeback"}


    class TestReturnsAPositiveNumber(MigratepageConformance):
        filesystem = broken(returns_a_positive_number)
        capabilities = {"buffers", "writeback"}


    class TestReturnsNone(MigratepageConformance):
        filesystem = broken(returns_none)
        capabilities = {"buffers", "writeback"}


    class TestLeavesTheTreeSlot(MigratepageConformance):
        filesystem = broken(leaves_the_tree_slot)
        capabilities = {"buffers", "writeback"}


    class TestRaisesAnException(MigratepageConformance):
        filesystem = broken(raises_memory_error)
        capabilities = {"buffers", "writeback"}


    class TestRaisesWithCapabilitiesInferred(MigratepageConformance):
        filesystem = broken(raises_memory_error)


    class TestCorrect(MigratepageConformance):
        filesystem = broken(buffer_migrate_page)
        capabilities = {"buffers", "writeback"}
        max_examples = 5
    '''
)

# class -> (hook-level test, engine-level test, promise key, phrase of the kernel-terms message)
BUGS = {
    "TestForgetsBufferHeads": (
        "test_hook_moves_buffer_heads_with_the_page",
        "test_engine_moves_a_clean_page",
        "buffers",
        "buffer head 0 of pfn 0 still points at the old page",
    ),
    "TestSkipsTheCopy": (
        "test_hook_copies_the_contents",
        "test_engine_moves_a_clean_page",
        "contents",
        "the contents of pfn 0 were not copied to new pfn",
    ),
    "TestDropsTheDirtyBit": (
        "test_hook_carries_the_dirty_state_without_writeback",
        "test_engine_moves_a_dirty_page",
        "dirty",
        "clean (PG_dirty clear) without being written back",
    ),
    "TestLeaksAReference": (
        "test_hook_balances_reference_counts",
        "test_engine_moves_a_clean_page",
        "refs",
        "has page_count 4, expected 3 = allocation 1 + page-tree slot 1 + buffers 1",
    ),
    "TestChangesTheOldPageBeforeEagain": (
        "test_hook_eagain_with_an_extra_reference_leaves_the_old_page_as_it_was",
        "test_engine_leaves_a_pinned_page_on_from",
        "eagain",
        "buffer head 0 of pfn 0: b_count went from 0 to 1",
    ),
    "TestReturnsAPositiveNumber": (
        "test_hook_returns_zero_or_negative_errno",
        "test_engine_leaves_a_pinned_page_on_from",
        "return",
        "migratepage returned 1, a positive number",
    ),
    "TestReturnsNone": (
        "test_hook_returns_zero_or_negative_errno",
        "test_engine_moves_a_clean_page",
        "return",
        "migratepage returned None (a NoneType), not an int",
    ),
    "TestRaisesAnException": (
        "test_hook_returns_zero_or_negative_errno",
        "test_engine_moves_a_clean_page",
        "return",
        "migratepage raised MemoryError: no buffer heads left: it must return 0 or a negative",
    ),
    "TestLeavesTheTreeSlot": (
        "test_hook_points_the_page_tree_slot_at_the_new_page",
        "test_engine_moves_a_clean_page",
        "slot",
        "page tree still points at the old page",
    ),
}


def _run(pytester: pytest.Pytester, keyword: str, source: str = BROKEN_MODULE) -> dict[str, str]:
    """Run the generated suite ``source`` for ``keyword``; each failed test's report text."""
    pytester.makepyfile(test_broken=source)
    reprec = inline_reports(pytester, "--tb=short", "-k", keyword)
    failed: dict[str, str] = {}
    for report in reprec.getreports("pytest_runtest_logreport"):
        if report.failed:
            failed[report.nodeid.split("::", 1)[1]] = report.longreprtext
    return failed


@pytest.mark.parametrize("cls", sorted(BUGS))
def test_the_suite_reports_the_broken_promise(pytester: pytest.Pytester, cls: str) -> None:
    hook_test, engine_test, promise, phrase = BUGS[cls]
    failed = _run(pytester, f"{cls} and not property")
    hook_id = f"{cls}::{hook_test}"
    assert hook_id in failed, f"{hook_test} did not catch {cls}; failures: {sorted(failed)}"
    message = failed[hook_id]
    assert f"broken promise: {PROMISES[promise]}" in message
    assert phrase in message
    assert f"{cls}::{engine_test}" in failed, f"{engine_test} did not catch {cls}"
    # The suite does not blame promises the function keeps.
    assert f"{cls}::test_capabilities_match_the_table" not in failed


def test_the_property_tests_catch_a_broken_copy(pytester: pytest.Pytester) -> None:
    failed = _run(pytester, "TestSkipsTheCopy and property")
    hook = failed["TestSkipsTheCopy::test_property_hook_keeps_every_promise_on_random_pages"]
    assert f"broken promise: {PROMISES['contents']}" in hook
    assert "Falsifying example" in hook or "Failing test case" in hook
    engine = failed[
        "TestSkipsTheCopy::test_property_engine_keeps_every_promise_on_random_workloads"
    ]
    assert "but the contents differ" in engine


def test_the_real_buffer_migrate_page_passes_the_same_suite(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_broken=BROKEN_MODULE)
    result = pytester.runpytest("-p", "no:cacheprovider", "-p", "no:randomly", "-k", "TestCorrect")
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) == 0, result.stdout.str()
    assert outcomes.get("error", 0) == 0, result.stdout.str()
    assert outcomes["passed"] >= 20


JOURNALLED_MODULE = textwrap.dedent(
    """
    import attrs

    from fsaops import buffer_migrate_page
    from fsaops.buffer import BH, buffers
    from fsaops.page import PG
    from fsaops.testing import MigratepageConformance
    from fsaops_ext3 import EXT3, ext3_journalled_aops


    def journalled(fn):
        table = attrs.evolve(ext3_journalled_aops, name="jtest_aops", migratepage=fn)
        return attrs.evolve(EXT3, name="jtest", modes={"journal": table}, default_mode="journal")


    def drops_the_journals_dirty_bit(newpage, page):
        rc = buffer_migrate_page(newpage, page)
        if rc == 0 and newpage.flags & PG.private:
            for bh in buffers(newpage.private):
                bh.b_state &= ~BH.jbddirty
        return rc


    class TestDropsTheJournalsDirtyBit(MigratepageConformance):
        filesystem = journalled(drops_the_journals_dirty_bit)
        max_examples = 5


    class TestJournalledCorrect(MigratepageConformance):
        filesystem = journalled(buffer_migrate_page)
        max_examples = 5
    """
)


def test_the_suite_catches_a_buffer_the_journal_would_never_write(
    pytester: pytest.Pytester,
) -> None:
    """ext3 data=journal files written buffers in the journal (BH_JBDDirty), not writeback:
    a move that drops the bit loses the data at the next commit, which writes only those."""
    failed = _run(pytester, "Journalled or Journals", JOURNALLED_MODULE)
    assert not [test for test in failed if test.startswith("TestJournalledCorrect")], failed
    message = failed["TestDropsTheJournalsDirtyBit::test_engine_moves_a_dirty_page"]
    assert f"broken promise: {PROMISES['engine']}" in message
    assert "lost BH_JBDDirty on the move" in message
    assert "the journal's commit would never write it" in message


SPINLOCK_MODULE = textwrap.dedent(
    """
    import attrs

    from fsaops import buffer_migrate_page
    from fsaops.testing import MigratepageConformance
    from fsaops_ext2 import EXT2, ext2_aops


    def leaves_tree_lock_held(newpage, page):
        # spin_lock(&mapping->tree_lock) on the way out, and no spin_unlock.
        mapping = page.mapping
        rc = buffer_migrate_page(newpage, page)
        if rc == 0:
            mapping.tree_lock.acquire()
        return rc


    class TestLeavesTreeLockHeld(MigratepageConformance):
        filesystem = attrs.evolve(
            EXT2,
            name="held",
            modes={
                "default": attrs.evolve(
                    ext2_aops, name="held_aops", migratepage=leaves_tree_lock_held
                )
            },
            page_cache={},
        )
        max_examples = 3
    """
)


def test_the_suite_ends_on_a_migratepage_that_returns_with_a_spinlock_held(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before, the next page's spin_lock of tree_lock waited for ever: the plugin author's
    pytest run hung without a word.  The hook-level promise names the lock; the engine-level
    tests end with the kernel's "spinlock recursion" (no other thread runs the machine: only
    the task that takes the lock can hold it)."""
    monkeypatch.setattr(fsaops.spinlock, "LOCKUP_SECONDS", 0.2)
    failed = _run(pytester, "TestLeavesTreeLockHeld", SPINLOCK_MODULE)
    hook = failed["TestLeavesTreeLockHeld::test_hook_leaves_both_pages_locked"]
    assert f"broken promise: {PROMISES['locks']}" in hook
    assert "migratepage returned with the tree_lock of <AddressSpace" in hook
    engine = failed["TestLeavesTreeLockHeld::test_engine_moves_a_clean_page"]
    assert "spinlock recursion: tree_lock of <AddressSpace" in engine


def test_a_migratepage_that_raises_is_named_when_the_suite_infers_capabilities(
    pytester: pytest.Pytester,
) -> None:
    """Before, every test errored at setup with the plugin's bare traceback (a RecursionError's
    a thousand frames long)."""
    pytester.makepyfile(test_broken=BROKEN_MODULE)
    result = pytester.runpytest(
        "-p", "no:cacheprovider", "-p", "no:randomly", "-k", "TestRaisesWithCapabilitiesInferred"
    )
    assert result.parseoutcomes().get("errors", 0) >= 20
    result.stdout.fnmatch_lines(
        [
            "*SetupError: inferring the capabilities of raises_memory_error_aops: its migratepage "
            "raised MemoryError: no buffer heads left on a clean page, where it must return 0 or "
            "a negative errno*"
        ]
    )


REFUSED_ONCE = BROKEN_MODULE + textwrap.dedent(
    '''

    refused = set()


    def moves_clean_after_refusing(newpage, page):
        """Refuses a page it cannot move yet, and moves it clean when asked again."""
        rc = buffer_migrate_page(newpage, page)
        if rc == -EAGAIN:
            refused.add(page.pfn)
        elif rc == 0 and page.pfn in refused:
            newpage.flags &= ~PG.dirty
            for bh in buffers(newpage.private):
                bh.b_state &= ~BH.dirty
        return rc


    class TestRefusesThenCleans(MigratepageConformance):
        filesystem = broken(moves_clean_after_refusing)
        capabilities = {"buffers", "writeback"}
    '''
)
"""The broken module, and a ``migratepage`` that does less after a refusal."""


def test_a_migratepage_that_does_less_after_a_refusal_is_caught(pytester: pytest.Pytester) -> None:
    """A page pinned for a moment is refused, then asked again: the second call must do it all."""
    pytester.makepyfile(test_refused=REFUSED_ONCE)
    reprec = inline_reports(
        pytester, "-k", "refused_at_first and (RefusesThenCleans or TestCorrect)"
    )
    outcomes = call_reports(reprec)
    broken = outcomes["TestRefusesThenCleans::test_engine_moves_a_dirty_page_it_refused_at_first"]
    assert broken.failed
    assert "dirty pfn 0 moved to pfn" in broken.longreprtext
    assert "clean, and its data never reached the disk" in broken.longreprtext
    assert outcomes["TestCorrect::test_engine_moves_a_dirty_page_it_refused_at_first"].passed
