"""The testing kit against table code that ends the process, leaks a lock, or fails first.

* A ``migratepage`` that called ``os._exit(0)`` ended the test session: pytest
  exited 0 after one test, the rest never run.  The kit's tests now run with
  the process's ends refused: the call fails the test, named, even when the
  table catches what the refusal raises.
* A ``migratepage`` that returned with its mapping's ``i_mmap_lock`` held
  passed every direct-call test (the locks promise looked at ``tree_lock``
  and ``private_lock`` only), then hung the first engine test for ever.  The
  promise names the lock now, and a wait for it is a lockup after ten
  seconds, not a hang.
* A test that failed on its own promise left its other calls' verdicts for
  the next test that made no call of its own: run alone after it (``-k``),
  a correct table's test failed with a broken table's problem.
"""

from __future__ import annotations

import textwrap

import pytest

pytest_plugins = ["pytester"]

TABLE = """
import os
from errno import EAGAIN
from os import _exit

import attrs

import fsaops
from fsaops import migrate_page, migrate_page_copy, migrate_page_remove_references
from fsaops_ext2 import ext2_aops


def exits(newpage, page):
    if page.count != page.mapcount + 2:
        os._exit(0)
    return migrate_page(newpage, page)


def exits_bound(newpage, page):
    if page.count != page.mapcount + 2:
        _exit(0)  # bound when the module was imported
    return migrate_page(newpage, page)


def exits_quietly(newpage, page):
    if page.count != page.mapcount + 2:
        try:
            os._exit(0)
        except BaseException:
            return -EAGAIN
    return migrate_page(newpage, page)


def keeps_i_mmap_lock(newpage, page):
    lock = page.mapping.i_mmap_lock
    lock.acquire()
    if page.count != page.mapcount + 2:
        return -EAGAIN  # the release is forgotten on this path
    lock.release()
    if migrate_page_remove_references(newpage, page, 2):
        return -EAGAIN
    migrate_page_copy(newpage, page)
    return 0


def takes_more_references(newpage, page):
    page.count += 1  # the old page's reference leaks, on every call
    return migrate_page(newpage, page)


def _fs(name, migratepage):
    table = attrs.evolve(ext2_aops, name=name + "_aops", migratepage=migratepage)
    return fsaops.FileSystemType(
        name=name,
        modes={"default": table},
        block_sizes=(1024,),
        default_block_size=1024,
        description="a table with a mistake the kit must name",
    )


EXITS = _fs("exitfs", exits)
EXITS_BOUND = _fs("boundfs", exits_bound)
EXITS_QUIETLY = _fs("quietfs", exits_quietly)
KEEPS_LOCK = _fs("lockfs", keeps_i_mmap_lock)
LEAKS = _fs("leakfs", takes_more_references)
RIGHT = _fs("rightfs", migrate_page)
CORRECT = _fs("correctfs", fsaops.buffer_migrate_page)
"""

DECLARED = 'capabilities = {"buffers", "writeback"}'


def _suite(pytester: pytest.Pytester, *classes: tuple[str, str], declared: str = "") -> None:
    pytester.syspathinsert()
    pytester.makepyfile(table_code=TABLE)
    body = "".join(
        f"""

class Test{name}(MigratepageConformance):
    filesystem = table_code.{fs}
    semantics = "v4"
    {declared}
"""
        for name, fs in classes
    )
    pytester.makepyfile(
        test_suite=textwrap.dedent(
            """
            import table_code
            from fsaops.testing import MigratepageConformance
            """
        )
        + body
    )


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    """The suite in a pytest of its own: a table that ends it cannot end this one."""
    return pytester.runpytest_subprocess(
        "-p", "no:randomly", "-p", "no:cacheprovider", *args, timeout=120
    )


@pytest.mark.parametrize("fs", ["EXITS", "EXITS_QUIETLY", "EXITS_BOUND"])
def test_a_table_that_ends_the_process_fails_its_tests(pytester: pytest.Pytester, fs: str) -> None:
    """``EXITS_BOUND`` calls ``os._exit`` as its module bound it at import (``from os import
    _exit``), before any test put a stand-in in its place."""
    _suite(pytester, ("It", fs))
    result = _run(pytester, "-k", "test_hook_eagain_with_an_extra_reference or copies_the_contents")
    assert result.ret == 1, result.stdout.str()
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) + outcomes.get("errors", 0) >= 1, outcomes
    result.stdout.fnmatch_lines(
        [
            "*TestIt: plugin code called os._exit(0) (in table_code.exits*) in thread MainThread: "
            "plugin code may not end, replace or fork the process the tests run in*"
        ]
    )


def test_a_table_that_keeps_a_spinlock_fails_the_locks_promise_and_hangs_nothing(
    pytester: pytest.Pytester,
) -> None:
    _suite(pytester, ("It", "KEEPS_LOCK"))
    result = _run(pytester, "-k", "test_hook_leaves_both_pages_locked")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*migratepage returned with the i_mmap_lock of <AddressSpace * held: the next "
            "spin_lock of it never returns*"
        ]
    )


def test_a_lock_kept_by_the_engines_call_is_a_recursion_not_a_hang(
    pytester: pytest.Pytester,
) -> None:
    _suite(pytester, ("It", "KEEPS_LOCK"))
    result = _run(pytester, "-k", "test_engine_leaves_a_pinned_page_on_from")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*spinlock recursion: i_mmap_lock of <AddressSpace *"])


def test_a_test_is_judged_on_its_own_calls_not_an_earlier_tests(
    pytester: pytest.Pytester,
) -> None:
    """The broken class's test fails first; the right one's, run next, passes."""
    _suite(pytester, ("ABroken", "LEAKS"), ("BRight", "RIGHT"), declared=DECLARED)
    result = _run(
        pytester,
        "-k",
        "(ABroken and test_hook_eagain_with_an_extra_reference) or "
        "(BRight and test_capabilities_match_the_table)",
        "-v",
    )
    result.stdout.fnmatch_lines(
        [
            "*TestABroken::test_hook_eagain_with_an_extra_reference* FAILED*",
            "*TestBRight::test_capabilities_match_the_table* PASSED*",
        ]
    )


ENDS_AFTER = {
    # An exit function registered at import, as plugin code may.
    "atexit": """
import atexit
import os


def _bye():
    os._exit(0)


atexit.register(_bye)
""",
    # The same, with the function bound at import, before the session failed.
    "atexit, bound": """
import atexit
from os import _exit


def _bye():
    _exit(0)


atexit.register(_bye)
""",
    # os._exit itself registered, with its argument.
    "atexit, registered itself": """
import atexit
import os

atexit.register(os._exit, 0)
""",
    # A thread left running, which ends the process once the tests are over.
    "thread": """
import os
import threading


def _after_the_tests():
    threading.main_thread().join()
    os._exit(0)


threading.Thread(target=_after_the_tests, name="leftover").start()
""",
    # An exit function that replaces the process with a program that exits 0.
    "exec": """
import atexit
import os
import sys


def _replace():
    os.execv(sys.executable, [sys.executable, "-c", "pass"])


atexit.register(_replace)
""",
}


@pytest.mark.parametrize("how", sorted(ENDS_AFTER))
@pytest.mark.parametrize(("fs", "status"), [("LEAKS", 1), ("CORRECT", 0)])
def test_plugin_code_that_ends_the_process_after_the_tests_keeps_their_status(
    pytester: pytest.Pytester, how: str, fs: str, status: int
) -> None:
    """``os._exit(0)`` after the last test ended a failed session with status 0."""
    _suite(pytester, ("It", fs))
    pytester.makepyfile(ends_after=ENDS_AFTER[how])
    pytester.makeconftest("import ends_after")
    result = _run(pytester, "-k", "test_hook_balances_reference_counts")
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed" if status else "passed") == 1, result.stdout.str()
    assert result.ret == status, result.stdout.str()
