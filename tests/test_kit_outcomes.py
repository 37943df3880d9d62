"""The testing kit and pytest's outcome exceptions raised from table code.

``pytest.skip`` and ``pytest.xfail`` raise ``BaseException`` subclasses, which
pass through every ``except Exception`` of the model and of the kit.  From a
lossy table's ``migratepage`` they turned its whole conformance suite into
skips or xfails, and pytest exited 0.  Now such a test fails, naming the
table, the member and the call; the kit's own skips, and a user's own skip
in an overriding test, stay skips.
"""

from __future__ import annotations

import textwrap

import pytest

pytest_plugins = ["pytester"]

TABLE = """
import sys

import attrs
import pytest

import fsaops
from fsaops.buffer import buffer_migrate_page
from fsaops.page import page_address
from fsaops_ext2 import ext2_aops


def _lossy(newpage, page):
    rc = buffer_migrate_page(newpage, page)
    if rc == 0:
        page_address(newpage)[:] = bytes(len(page_address(newpage)))
    return rc


def skips(newpage, page):
    rc = _lossy(newpage, page)
    pytest.skip("needs a real disk")
    return rc


def xfails(newpage, page):
    rc = _lossy(newpage, page)
    pytest.xfail("known to be flaky")
    return rc


def skips_deep(newpage, page):
    rc = _lossy(newpage, page)
    _helper()
    return rc


def _helper():
    pytest.skip("no disk here")


def _fs(name, migratepage):
    table = attrs.evolve(ext2_aops, name=name + "_aops", migratepage=migratepage)
    return fsaops.FileSystemType(
        name=name,
        modes={"default": table},
        block_sizes=(1024,),
        default_block_size=1024,
        description="a lossy table that decides its own tests' outcome",
    )


SKIPS = _fs("skipfs", skips)
XFAILS = _fs("xfailfs", xfails)
SKIPS_DEEP = _fs("deepfs", skips_deep)
"""

DECLARED = 'capabilities = {"buffers", "writeback"}'


def _suite(pytester: pytest.Pytester, fs: str, body: str = "", declared: str = "") -> None:
    pytester.syspathinsert()
    pytester.makepyfile(table_code=TABLE)
    pytester.makepyfile(
        test_suite=textwrap.dedent(
            f"""
            import pytest

            import table_code
            from fsaops.testing import MigratepageConformance


            class TestIt(MigratepageConformance):
                filesystem = table_code.{fs}
                {declared}
            """
        )
        + textwrap.indent(textwrap.dedent(body), "    ")
    )


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest("-p", "no:randomly", "-p", "no:cacheprovider", *args)


def test_a_skip_from_migratepage_fails_every_test_not_skips_it(pytester: pytest.Pytester) -> None:
    """It was "35 skipped", exit 0 (the capabilities' probe called migratepage at setup)."""
    _suite(pytester, "SKIPS")
    result = _run(pytester, "-k", "test_hook_copies_the_contents or test_engine_moves_a_clean")
    outcomes = result.parseoutcomes()
    assert outcomes.get("skipped", 0) == 0, result.stdout.str()
    assert outcomes.get("errors", 0) + outcomes.get("failed", 0) == 2
    assert result.ret == 1
    result.stdout.fnmatch_lines(
        [
            "*TestIt: migratepage of table skipfs_aops called pytest.skip('needs a real disk') "
            "(in skips, table_code.py:*): plugin code may not skip or xfail a test of the "
            "testing kit*"
        ]
    )


def test_a_skip_from_migratepage_in_the_test_itself_fails_it(pytester: pytest.Pytester) -> None:
    """With the capabilities declared, nothing calls the table before the test does."""
    _suite(pytester, "SKIPS", declared=DECLARED)
    result = _run(pytester, "-k", "test_hook_copies_the_contents")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*migratepage of table skipfs_aops called pytest.skip(*"])


def test_an_xfail_from_migratepage_fails_the_test(pytester: pytest.Pytester) -> None:
    _suite(pytester, "XFAILS", declared=DECLARED)
    result = _run(pytester, "-k", "test_hook_copies_the_contents or test_engine_moves_a_clean")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        ["*migratepage of table xfailfs_aops called pytest.xfail('known to be flaky')*"]
    )


def test_a_skip_deeper_in_table_code_names_the_member_fsaops_called(
    pytester: pytest.Pytester,
) -> None:
    _suite(pytester, "SKIPS_DEEP", declared=DECLARED)
    result = _run(pytester, "-k", "test_hook_copies_the_contents")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*migratepage of table deepfs_aops called pytest.skip('no disk here') "
            "(in _helper, table_code.py:*)*"
        ]
    )


def test_the_guard_holds_without_the_kits_pytest_plugin(pytester: pytest.Pytester) -> None:
    """The suite needs no pytest plugin; nor does the guard."""
    _suite(pytester, "SKIPS", declared=DECLARED)
    result = _run(pytester, "-p", "no:fsaops", "-k", "test_hook_copies_the_contents")
    result.assert_outcomes(failed=1)


def test_the_kits_own_skips_stay_skips(pytester: pytest.Pytester) -> None:
    """ramfs pages carry no buffers: the buffer promises are skipped, naming the capability."""
    pytester.makepyfile(
        test_ramfs="""
        from fsaops.testing import MigratepageConformance


        class TestRamfs(MigratepageConformance):
            filesystem = "ramfs"
        """
    )
    result = _run(pytester, "-rs", "-k", "test_hook_moves_buffer_heads_with_the_page")
    outcomes = result.parseoutcomes()
    assert outcomes.get("skipped", 0) >= 1, result.stdout.str()
    assert "failed" not in outcomes
    result.stdout.fnmatch_lines(["*needs capability 'buffers'*"])


def test_a_users_own_skip_in_an_overriding_test_stays_a_skip(pytester: pytest.Pytester) -> None:
    _suite(
        pytester,
        "SKIPS",
        declared=DECLARED,
        body="""
        def test_hook_copies_the_contents(self):
            pytest.skip("not on this table")

        def test_hook_copies_the_flags(self):
            pytest.xfail("not yet")
        """,
    )
    result = _run(pytester, "-k", "test_hook_copies_the_contents or test_hook_copies_the_flags")
    result.assert_outcomes(skipped=1, xfailed=1)


def test_a_skip_from_a_helper_that_fsaops_did_not_call_stays_a_skip(
    pytester: pytest.Pytester,
) -> None:
    """A project's own helper (a conftest's) that skips is none of the guard's business."""
    pytester.makeconftest(
        """
        import pytest

        def needs_gpu():
            pytest.skip("no GPU")
        """
    )
    pytester.makepyfile(
        test_other="""
        from conftest import needs_gpu
        from fsaops.page import PG


        def test_it():
            needs_gpu()
        """
    )
    pytester.syspathinsert()
    result = _run(pytester)
    result.assert_outcomes(skipped=1)
