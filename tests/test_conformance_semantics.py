"""The conformance suite checks a table under the release of the migration code it targets.

Every built-in table's suite class (tests/test_conformance.py) runs again
here under 2.6.16 and 2.6.17, where the helpers differ (``-EAGAIN`` from
``migrate_page_remove_references``, ``-EPERM`` for ``VM_LOCKED``,
``remove_from_swap`` in ``migrate_page``, the fallback's unmap): a correct
table must pass under each.  A table written to V4's conventions that is
wrong under 2.6.16 passes V4 and fails 2.6.16, the test ids and messages
naming the release; a ``semantics`` no release has is a setup error that
names the releases.
"""

from __future__ import annotations

import textwrap

import pytest
from hypothesis import given, settings

import test_conformance as builtin
from fsaops.plugins import load_plugins
from fsaops.semantics import DEFAULT_SEMANTICS, SEMANTICS
from fsaops.testing import Subject, World, pytest_plugin, resolve_subject, strategies
from fsaops.testing.harness import (
    SetupError,
    check_semantics,
    expected_engine_outcome,
    expected_hook_outcome,
    vm_locked_errno,
)
from fsaops.testing.promises import PROMISES
from fsaops.world import PageSpec
from suite_runs import call_reports, inline_reports

pytest_plugins = ["pytester"]

LATER = ("2.6.16", "2.6.17")
"""The releases after V4 the model runs."""


# -- (1) every built-in table keeps its promises under the later releases ----------------


class TestExt2(builtin.TestExt2):
    semantics = LATER


class TestExt2Nobh(builtin.TestExt2Nobh):
    semantics = LATER


class TestExt2Xip(builtin.TestExt2Xip):
    semantics = LATER


class TestExt3Ordered(builtin.TestExt3Ordered):
    semantics = LATER


class TestExt3Writeback(builtin.TestExt3Writeback):
    semantics = LATER


class TestExt3Journal(builtin.TestExt3Journal):
    semantics = LATER


class TestXfs(builtin.TestXfs):
    semantics = LATER


class TestXfsSmallBlocks(builtin.TestXfsSmallBlocks):
    semantics = LATER


class TestSwap(builtin.TestSwap):
    semantics = LATER


class TestSwapDeclared(builtin.TestSwapDeclared):
    semantics = LATER


class TestXfsBuftarg(builtin.TestXfsBuftarg):
    semantics = LATER


def test_every_builtin_suite_class_runs_under_the_later_releases() -> None:
    """No built-in class is left out of the runs above."""
    here = {name for name in globals() if name.startswith("Test")}
    there = {name for name in dir(builtin) if name.startswith("Test")}
    assert here == there
    assert tuple(name for name in SEMANTICS if name != DEFAULT_SEMANTICS) == LATER


# -- (2) a table right under V4 and wrong under 2.6.16 is caught -------------------------

V4_CONVENTIONS = textwrap.dedent(
    '''
    from errno import EAGAIN

    import attrs

    from fsaops import buffer_migrate_page, migrate_page_copy, migrate_page_remove_references
    from fsaops.buffer import buffers, lock_buffer, unlock_buffer
    from fsaops.page import PG
    from fsaops.testing import MigratepageConformance
    from fsaops_ext2 import EXT2, ext2_aops


    def only_one_is_a_mismatch(newpage, page):
        """buffer_migrate_page as written against V4: remove_references' 1 is its only failure.

        2.6.16's remove_references returns -EAGAIN (an extra reference) or
        -EPERM (VM_LOCKED) instead, and this goes on moving the page.
        """
        if page.mapping is None:
            return -EAGAIN
        if not page.flags & PG.private:
            return buffer_migrate_page(newpage, page)
        if migrate_page_remove_references(newpage, page, 3) == 1:
            return -EAGAIN
        head = page.private
        for bh in buffers(head):
            bh.b_count += 1
            lock_buffer(bh)
        page.flags &= ~PG.private
        newpage.private = head
        page.private = 0
        page.count -= 1
        newpage.count += 1
        mask = newpage.node.page_size - 1
        base = newpage.pfn << newpage.node.page_shift
        for bh in buffers(head):
            bh.b_page = newpage
            bh.b_data = base + (bh.b_data & mask)
        newpage.flags |= PG.private
        migrate_page_copy(newpage, page)
        for bh in buffers(head):
            unlock_buffer(bh)
            bh.b_count -= 1
        return 0


    table = attrs.evolve(ext2_aops, name="v4_conventions_aops", migratepage=only_one_is_a_mismatch)


    class TestV4Conventions(MigratepageConformance):
        filesystem = attrs.evolve(EXT2, name="v4conv", modes={"default": table})
        semantics = ("v4", "2.6.16")
        max_examples = 5
    '''
)

#: Where the V4-style table goes wrong under 2.6.16: test, promise, what the message says.
CAUGHT_UNDER_2616 = {
    "test_hook_eagain_with_an_extra_reference_leaves_the_old_page_as_it_was": (
        "eagain",
        "migratepage returned 0 for pfn 0 (dirty+pinned x1): it must return -EAGAIN (-11)",
    ),
    "test_hook_eagain_in_a_vm_locked_area_leaves_the_old_page_as_it_was": (
        "eperm",
        "migratepage returned 0 for pfn 0 (mlocked): it must return -EPERM (-1), since "
        "try_to_unmap refuses a page in a VM_LOCKED area for good",
    ),
    "test_engine_leaves_a_pinned_page_on_from": (
        "engine",
        "pfn 0 (pinned x1) ended moved, expected from",
    ),
}


def test_a_table_right_under_v4_and_wrong_under_2_6_16_fails_only_under_2_6_16(
    pytester: pytest.Pytester,
) -> None:
    """Before, the suite built every machine with V4's kernel: this table passed the whole
    suite, and ``fsaops migrate --semantics 2.6.16`` moved pages another task still used."""
    pytester.makepyfile(test_v4conv=V4_CONVENTIONS)
    reprec = inline_reports(pytester, "--tb=short")
    outcomes = call_reports(reprec)
    under_v4 = {test: r for test, r in outcomes.items() if test.endswith("[v4]")}
    under_2616 = {test: r for test, r in outcomes.items() if test.endswith("[2.6.16]")}
    assert len(under_v4) == len(under_2616) == len(outcomes) // 2 >= 20
    assert not [test for test, r in under_v4.items() if r.failed], "wrong alarm under V4"
    failed = {test for test, r in under_2616.items() if r.failed}
    for test, (promise, phrase) in CAUGHT_UNDER_2616.items():
        nodeid = f"TestV4Conventions::{test}[2.6.16]"
        assert nodeid in failed, f"{test} did not catch it; failures: {sorted(failed)}"
        message = outcomes[nodeid].longreprtext
        assert f"broken promise under 2.6.16: {PROMISES[promise]}" in message
        assert phrase in message


def test_the_built_in_buffer_migrate_page_passes_under_every_release(
    pytester: pytest.Pytester,
) -> None:
    """The control: the model's own ``buffer_migrate_page`` in the same table passes each."""
    source = V4_CONVENTIONS.replace(
        "migratepage=only_one_is_a_mismatch", "migratepage=buffer_migrate_page"
    )
    source = source.replace('semantics = ("v4", "2.6.16")', "semantics = tuple(SEMANTICS)")
    source = "from fsaops.semantics import SEMANTICS\n" + source
    pytester.makepyfile(test_control=source)
    result = pytester.runpytest("-p", "no:cacheprovider", "-p", "no:randomly", "-q")
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) == 0, result.stdout.str()
    assert outcomes.get("errors", 0) == 0, result.stdout.str()
    assert outcomes["passed"] >= 3 * 20


# -- the expectations follow the release, as the model's semantics say -------------------


def test_the_expected_outcomes_follow_the_release() -> None:
    """KERNEL-SPEC §3, §5.2, §9.5: VM_LOCKED is -EAGAIN in V4, a permanent -EPERM from 2.6.16;
    2.6.17's fallback unmaps a page before ``pageout``, so a dirty mapped page moves."""
    assert [vm_locked_errno(name) for name in SEMANTICS] == [-11, -1, -1]
    mlocked, pinned = PageSpec(mlocked=True), PageSpec(mlocked=True, pinned=1)
    dirty_mapped = PageSpec(dirty=True, mapped=True)
    outcomes = {}
    for name in SEMANTICS:
        ext2 = resolve_subject("ext2", semantics=name)
        journal = resolve_subject("ext3", "journal", {"buffers", "no_migratepage"}, semantics=name)
        outcomes[name] = (
            expected_hook_outcome(ext2, mlocked),
            expected_hook_outcome(ext2, pinned),
            expected_engine_outcome(ext2, mlocked),
            expected_engine_outcome(journal, mlocked),
            expected_engine_outcome(journal, dirty_mapped),
        )
    assert outcomes == {
        "v4": ("eagain", "eagain", "from", "from", "from"),
        "2.6.16": ("eperm", "eagain", "failed", "failed", "from"),
        "2.6.17": ("eperm", "eagain", "failed", "failed", "moved"),
    }


def test_a_subject_under_another_release_says_so() -> None:
    assert resolve_subject("ext2").describe() == "ext2 mode default (ext2_aops)"
    subject = resolve_subject("ext2", semantics="2.6.16")
    assert subject.describe() == "ext2 mode default (ext2_aops) under 2.6.16"
    assert subject.release is SEMANTICS["2.6.16"]
    assert pytest_plugin.DEFAULT_SEMANTICS == DEFAULT_SEMANTICS


def test_the_mappings_strategy_draws_subjects_under_the_release_it_is_given() -> None:
    registry = load_plugins(cli=builtin.BUILTIN)

    @settings(max_examples=5, deadline=None, derandomize=True, database=None)
    @given(subject=strategies.mappings(registry, semantics="2.6.16"))
    def prop(subject: Subject) -> None:
        assert subject.semantics == "2.6.16"
        assert World(subject).kernel.semantics is SEMANTICS["2.6.16"]

    prop()
    with pytest.raises(SetupError, match=r"unknown kernel semantics '2\.6\.15'"):
        strategies.mappings(registry, semantics="2.6.15")


# -- (3) a bad semantics is a clear setup error --------------------------------------------


def test_an_unknown_release_is_a_setup_error_naming_the_known_ones() -> None:
    with pytest.raises(SetupError, match=r"unknown kernel semantics '2.6.15' \(known: v4, 2.6"):
        resolve_subject("ext2", semantics="2.6.15")
    with pytest.raises(SetupError, match=r"unknown kernel semantics 16 \(known: v4, "):
        check_semantics(16)


BAD_SEMANTICS = textwrap.dedent(
    """
    from fsaops.testing import MigratepageConformance

    class TestUnknown(MigratepageConformance):
        filesystem = "ext2"
        semantics = "2.6.15"

    class TestOneUnknown(MigratepageConformance):
        filesystem = "ext2"
        semantics = ("v4", "2.6.18")

    class TestNone(MigratepageConformance):
        filesystem = "ext2"
        semantics = ()

    class TestNotANAme(MigratepageConformance):
        filesystem = "ext2"
        semantics = 2.616
    """
)


@pytest.mark.parametrize(
    ("cls", "words"),
    [
        ("TestUnknown", "unknown kernel semantics '2.6.15' (known: v4, 2.6.16, 2.6.17)"),
        ("TestOneUnknown", "unknown kernel semantics '2.6.18' (known: v4, 2.6.16, 2.6.17)"),
        ("TestNone", "semantics names no release (known: v4, 2.6.16, 2.6.17)"),
        (
            "TestNotANAme",
            "semantics must be a release's name or several, not 2.616 (known: v4, 2.6.16",
        ),
    ],
)
def test_a_bad_semantics_fails_every_test_of_the_class_with_the_reason(
    pytester: pytest.Pytester, cls: str, words: str
) -> None:
    pytester.makepyfile(test_bad=BAD_SEMANTICS)
    result = pytester.runpytest("-p", "no:cacheprovider", "-p", "no:randomly", "-k", cls)
    outcomes = result.parseoutcomes()
    assert outcomes.get("errors", 0) >= 20, result.stdout.str()
    assert "passed" not in outcomes
    result.stdout.fnmatch_lines([f"*{cls}: {words}*"])
    assert "Traceback" not in result.stdout.str()


# -- the option, and the ids -------------------------------------------------------------

OPTION = textwrap.dedent(
    """
    from fsaops.testing import MigratepageConformance

    class TestFromTheOption(MigratepageConformance):
        filesystem = "ext2"
        max_examples = 2

    class TestItsOwn(MigratepageConformance):
        filesystem = "ext2"
        semantics = "v4"
        max_examples = 2

    def test_fixtures(fsaops_world, fsaops_kernel_factory):
        assert fsaops_world.subject.semantics == fsaops_world.kernel.semantics.name
        assert fsaops_kernel_factory().semantics.name == fsaops_world.subject.semantics
        print("fixtures run", fsaops_world.kernel.semantics.name)
    """
)


def test_v4_alone_keeps_the_test_ids_as_they_were(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_option=OPTION)
    result = pytester.runpytest("-p", "no:randomly", "--collect-only", "-q")
    ids = [line for line in result.stdout.lines if "::" in line]
    assert "test_option.py::TestFromTheOption::test_hook_copies_the_contents" in ids
    assert "test_option.py::TestItsOwn::test_hook_copies_the_contents" in ids
    assert not [line for line in ids if "[" in line]


def test_the_option_chooses_the_release_of_a_class_without_its_own(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_option=OPTION)
    result = pytester.runpytest(
        "-p", "no:randomly", "-p", "no:cacheprovider", "-s", "--fsaops-semantics", "2.6.17"
    )
    assert result.parseoutcomes().get("failed", 0) == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["*fixtures run 2.6.17*"])
    listed = pytester.runpytest(
        "-p", "no:randomly", "--collect-only", "-q", "--fsaops-semantics", "2.6.17"
    )
    ids = [line for line in listed.stdout.lines if "::" in line]
    assert "test_option.py::TestFromTheOption::test_hook_copies_the_contents[2.6.17]" in ids
    # The class's own attribute wins over the option.
    assert "test_option.py::TestItsOwn::test_hook_copies_the_contents" in ids


def test_an_unknown_release_on_the_command_line_is_a_usage_error(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_option=OPTION)
    result = pytester.runpytest("-p", "no:randomly", "--fsaops-semantics", "2.4")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*--fsaops-semantics: unknown kernel semantics '2.4' (known: v4, 2.6.16, 2.6.17)*"]
    )


RACES = textwrap.dedent(
    """
    from fsaops.testing.races import MigratepageRaces

    class TestRaces(MigratepageRaces):
        filesystem = "ext2"
        semantics = ("v4", "2.6.16")
        pages = 1
        preemptions = 0
        pct_schedules = 0
    """
)


def test_the_race_class_runs_under_each_release_it_names(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_races=RACES)
    # One page leaves the dirty-page runs out, which the kit says as a warning (a UserWarning:
    # the class may be another import of it than the filter would name).
    reprec = inline_reports(pytester, "-k", "one_accessor", "-W", "default::UserWarning")
    outcomes = call_reports(reprec)
    assert sorted(outcomes) == [
        "TestRaces::test_race_no_schedule_with_one_accessor_fails[2.6.16]",
        "TestRaces::test_race_no_schedule_with_one_accessor_fails[v4]",
    ]
    assert all(report.passed for report in outcomes.values())
