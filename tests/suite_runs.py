"""The conformance suite run over a test plugin's tables in ``pytester``, and what failed."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

import pytest


def failed_by_table(
    pytester: pytest.Pytester, plugins: Path, source: str
) -> tuple[pytest.HookRecorder, dict[str, list[str]]]:
    """Run ``source``, a test module making ``Test_<name>`` suite classes, ``plugins`` importable.

    Returns the run's recorder and the failed tests by ``<name>``.
    """
    pytester.syspathinsert(plugins)
    pytester.makepyfile(test_tables=source)
    reprec = inline_reports(pytester, "--tb=short")
    failed: dict[str, list[str]] = {}
    for report in reprec.getreports("pytest_runtest_logreport"):
        if report.failed:
            cls, test = report.nodeid.split("::")[1:3]
            failed.setdefault(cls.removeprefix("Test_"), []).append(test)
    return reprec, failed


_REPORTS: Final = frozenset({"pytest_collectreport", "pytest_runtest_logreport"})
"""The hooks whose calls a recorder keeps: its outcomes are read off them."""


class _ReportsOnly(list[Any]):
    """A recorder's list of calls that takes only the reports' calls."""

    def append(self, call: Any) -> None:
        if call._name in _REPORTS:  # what HookRecorder.getcalls matches on
            super().append(call)


def inline_reports(pytester: pytest.Pytester, *args: str) -> pytest.HookRecorder:
    """``pytester.inline_run(*args)``, its recorder keeping the reports and nothing else.

    Without the cache (a run leaves nothing behind) or a plugin that orders
    tests at random.

    A recorder keeps every hook call it sees with its arguments: a failed
    test's ``pytest_runtest_makereport`` call holds its exception, whose
    frames hold the machines the test built, and ``pytest_assertrepr_compare``
    the objects an assertion compared.  A suite run over many broken tables
    kept some 2,500 machines, 9 GB, until the test session ended.  The
    reports say every outcome and failure.
    """
    make = pytester.make_hook_recorder

    def keeping_reports(pluginmanager: pytest.PytestPluginManager) -> pytest.HookRecorder:
        recorder = make(pluginmanager)
        recorder.calls = _ReportsOnly()
        return recorder

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pytester, "make_hook_recorder", keeping_reports)
        return pytester.inline_run("-p", "no:cacheprovider", "-p", "no:randomly", *args)


def call_reports(reprec: pytest.HookRecorder) -> dict[str, pytest.TestReport]:
    """Each test's report of its call, by ``Class::test`` (the node id after the file)."""
    return {
        report.nodeid.split("::", 1)[1]: report
        for report in reprec.getreports("pytest_runtest_logreport")
        if report.when == "call"
    }
