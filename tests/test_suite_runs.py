"""The test suite's in-process pytest runs free the machines of failed tests as they go.

Running the conformance suite over many broken tables in ``pytester`` kept
every failed test's machine alive (its exception's frames, held by the
run's recorder) until the run ended and after: some 2,500 machines, 9 GB,
in one test of this suite.
"""

from __future__ import annotations

import sys
import textwrap
import types
from collections.abc import Callable

import pytest

from suite_runs import inline_reports

pytest_plugins = ["pytester"]

SOURCE = textwrap.dedent(
    """
    import gc
    import sys
    import weakref

    from fsaops.plugins import load_plugins
    from fsaops.world import World

    KEPT = sys.modules["_suite_runs_kept"].kept

    def test_1_builds_a_machine_and_fails():
        world = World(registry=load_plugins(cli=["ext2"]), node_pages=64)
        KEPT.append(weakref.ref(world.kernel))
        assert world.kernel is None

    def test_2_that_machine_is_freed():
        # pytest keeps the last failure for a debugger (one, not every one).
        for name in ("last_type", "last_value", "last_traceback", "last_exc"):
            if hasattr(sys, name):
                delattr(sys, name)
        gc.collect()
        assert len(KEPT) == 1
        assert KEPT[0]() is None, "the failed test's machine is still alive"
    """
)


@pytest.fixture(autouse=True)
def _kept(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where the inner test puts a weak reference to the machine it built."""
    module = types.ModuleType("_suite_runs_kept")
    module.kept = []  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "_suite_runs_kept", module)


def _run(pytester: pytest.Pytester, run: Callable[..., pytest.HookRecorder]) -> dict[str, str]:
    """The inner tests' outcomes, by name, and that the first failed as it should."""
    pytester.makepyfile(test_inner=SOURCE)
    reprec = run()
    reports = [r for r in reprec.getreports("pytest_runtest_logreport") if r.when == "call"]
    first = reports[0]
    assert first.failed
    assert "assert world.kernel is None" in first.longreprtext
    return {r.nodeid.split("::")[-1]: r.outcome for r in reports}


def test_a_failed_test_run_in_process_keeps_no_machine(pytester: pytest.Pytester) -> None:
    outcomes = _run(pytester, lambda: inline_reports(pytester))
    assert outcomes["test_2_that_machine_is_freed"] == "passed"


def test_the_plain_recorder_keeps_it(pytester: pytest.Pytester) -> None:
    """Why the suite does not call ``pytester.inline_run`` itself (this test can fail)."""
    outcomes = _run(pytester, lambda: pytester.inline_run("-p", "no:cacheprovider"))
    assert outcomes["test_2_that_machine_is_freed"] == "failed"
