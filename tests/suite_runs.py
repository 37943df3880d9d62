"""The conformance suite run over a test plugin's tables in ``pytester``, and what failed."""

from __future__ import annotations

from pathlib import Path

import pytest


def failed_by_table(
    pytester: pytest.Pytester, plugins: Path, source: str
) -> tuple[pytest.HookRecorder, dict[str, list[str]]]:
    """Run ``source``, a test module making ``Test_<name>`` suite classes, ``plugins`` importable.

    Returns the run's recorder and the failed tests by ``<name>``.
    """
    pytester.syspathinsert(plugins)
    pytester.makepyfile(test_tables=source)
    reprec = pytester.inline_run("-p", "no:cacheprovider", "-p", "no:randomly", "--tb=short")
    failed: dict[str, list[str]] = {}
    for report in reprec.getreports("pytest_runtest_logreport"):
        if report.failed:
            cls, test = report.nodeid.split("::")[1:3]
            failed.setdefault(cls.removeprefix("Test_"), []).append(test)
    return reprec, failed


def call_reports(reprec: pytest.HookRecorder) -> dict[str, pytest.TestReport]:
    """Each test's report of its call, by ``Class::test`` (the node id after the file)."""
    return {
        report.nodeid.split("::", 1)[1]: report
        for report in reprec.getreports("pytest_runtest_logreport")
        if report.when == "call"
    }
