"""The opt-in race promise: a table's ``migratepage`` under concurrent tasks, explored.

:class:`MigratepageRaces` is subclassed like
:class:`~fsaops.testing.conformance.MigratepageConformance`, naming a
filesystem and a mode.  Its tests run the explorer (:mod:`fsaops.explore`)
with small bounds against the table: every accessor that applies to the
table's pages, alone with the migration of :attr:`~MigratepageRaces.pages`
pages, on a clean and on a dirty page, under every schedule with at most
:attr:`~MigratepageRaces.preemptions` preemptions (under the explorer's
page reduction unless :attr:`~MigratepageRaces.reduce` is false: state a
table keeps across pages is outside it); then every such accessor
at once under :attr:`~MigratepageRaces.pct_schedules` PCT schedules.  A
failing schedule fails the test with the schedule in kernel terms (task,
step, kernel function, page, lock) and its replay string.  It takes seconds,
not milliseconds, so it is a class of its own: the conformance suite stays
fast, and a plugin opts in by subclassing this one too.
"""

from __future__ import annotations

import warnings
from collections.abc import Collection, Iterator
from typing import ClassVar

import pytest

from fsaops.errors import FsaopsError
from fsaops.explore import ExploreResult, explore
from fsaops.explore.api import render_text
from fsaops.explore.setup import TaskSpec, applies, assign_pages, lone_runs, probe
from fsaops.explore.tasks import ACCESSORS
from fsaops.testing.conformance import (
    class_subject,
    fixture_semantics,
    parametrize_semantics,
)
from fsaops.testing.harness import Subject
from fsaops.testing.outcomes import KIT_CLASSES
from fsaops.testing.outcomes import ensure as ensure_outcome_guard
from fsaops.world import SetupError

__all__ = ["CleanPageOnlyWarning", "LargeSearchWarning", "MigratepageRaces"]


class LargeSearchWarning(UserWarning):
    """A race test's search is far larger than any built-in table's, and may take a long time.

    Its message is what ``fsaops explore`` says on standard error then: what
    makes the search large and how to make it smaller.  The test goes on;
    the line is also written to the terminal as soon as it is known, so a
    test that runs for a long time says why.
    """


class CleanPageOnlyWarning(UserWarning):
    """A race test of one page ran each accessor on a clean page only.

    With ``pages = 1`` the accessors that ``fsaops explore``'s default also
    runs on a dirty page (page 1) are not run there; the message names them.
    The test goes on, as ``fsaops explore --pages 1`` does; the line is also
    written to the terminal at once.
    """


def _say_now(request: pytest.FixtureRequest | None, line: str) -> None:
    """``line`` on pytest's terminal at once, past output capture (nothing if there is none)."""
    if request is None:
        return
    manager = request.config.pluginmanager
    reporter = manager.get_plugin("terminalreporter")
    if reporter is None:
        return
    capture = manager.get_plugin("capturemanager")
    if capture is None:
        reporter.write_line(line)
        return
    with capture.global_and_fixture_disabled():
        reporter.write_line(line)


class MigratepageRaces:
    """Subclass me, naming a filesystem and a mode, to explore its ``migratepage`` for races.

    Set ``filesystem`` to the filesystem's name (resolved through the plugin
    loader with only its plugin selected) or a ``FileSystemType``; ``None``
    takes the closest ``@pytest.mark.fsaops``, else ``--fsaops-filesystem``
    from the command line.  ``mode`` is the mount mode (``None``: the
    marker's, else ``--fsaops-mode``, else the type's default),
    ``plugin`` the entry-point name of the plugin when it is not the
    filesystem's own name, ``block_size`` the block size to mount with,
    ``semantics`` the release of the migration code, or several, each
    test then run under each, as
    :attr:`MigratepageConformance.semantics <fsaops.testing.conformance.MigratepageConformance>`
    (``None``: ``--fsaops-semantics``, else ``"v4"``).  The bounds:
    ``pages`` the migration task moves (2; more when every accessor at
    once needs them, as ``truncate`` wants a page of its own; with 1 the
    accessors run on a clean page only, and the test of one accessor at a
    time says which would also run on a dirty page: :class:`CleanPageOnlyWarning`),
    ``preemptions`` of the
    systematic search per accessor (2), ``reduce`` (true: the search
    takes steps on different pages to commute, as ``fsaops explore
    --reduce pages`` does; false: every schedule within the bound, as
    ``--reduce none``, for a table that keeps state across pages),
    PCT's ``pct_depth`` (3),
    ``pct_schedules`` (100; 0 for none) and ``seed`` (0).
    """

    filesystem: ClassVar[object] = None
    mode: ClassVar[str | None] = None
    plugin: ClassVar[str | None] = None
    block_size: ClassVar[int | None] = None
    semantics: ClassVar[str | Collection[str] | None] = None
    pages: ClassVar[int] = 2
    preemptions: ClassVar[int] = 2
    """The bound *k* of the systematic search, per accessor."""
    reduce: ClassVar[bool] = True
    """Whether the systematic search uses the explorer's page reduction."""
    pct_depth: ClassVar[int] = 3
    pct_schedules: ClassVar[int] = 100
    """How many PCT schedules the run with every accessor takes (0: none)."""
    seed: ClassVar[int] = 0

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        """Run every test once per release in ``semantics`` (ids name a release other than V4).

        Also registers the outcome guard (:mod:`fsaops.testing.outcomes`).
        """
        ensure_outcome_guard(metafunc.config)
        parametrize_semantics(type(self), metafunc)

    @pytest.fixture(scope="class")
    @classmethod
    def fsaops_semantics(cls, request: pytest.FixtureRequest) -> str:
        """The release of the migration code the table is explored under (``semantics``)."""
        return fixture_semantics(cls, request)

    @pytest.fixture(scope="class")
    @classmethod
    def fsaops_race_subject(cls, request: pytest.FixtureRequest, fsaops_semantics: str) -> Subject:
        """The filesystem and mode under test, resolved once per class and release."""
        return class_subject(cls, request, semantics=fsaops_semantics)

    @pytest.fixture(autouse=True)
    def _fsaops_race_session(self, request: pytest.FixtureRequest) -> Iterator[None]:
        """The running test's request: where a large search's notice is written at once."""
        self._fsaops_request: pytest.FixtureRequest | None = request
        yield
        self._fsaops_request = None

    def _explore(
        self,
        subject: Subject,
        tasks: list[str] | list[TaskSpec],
        **bounds: int | bool | None,
    ) -> ExploreResult:
        said: list[str] = []

        def notice(message: str) -> None:
            # A long search says why at once, on the terminal, and as a
            # warning in the session's summary; a failure repeats it.
            line = f"{subject.describe()}: {message}"
            said.append(line)
            _say_now(getattr(self, "_fsaops_request", None), line)
            warnings.warn(LargeSearchWarning(line), stacklevel=2)

        try:
            result = explore(
                subject.fstype,
                subject.mode,
                pages=self._pages_for(subject, tasks),
                tasks=tasks,
                semantics=subject.semantics,
                block_size=subject.block_size,
                notice=notice,
                **bounds,  # type: ignore[arg-type]
            )
        except FsaopsError as exc:
            pytest.fail(
                f"{subject.describe()}: the explorer could not run: {exc}" + _also(said),
                pytrace=False,
            )
        if result.failures:
            pytest.fail(
                f"{subject.describe()}: a schedule fails\n{render_text(result)}" + _also(said),
                pytrace=False,
            )
        return result

    def _pages_for(self, subject: Subject, tasks: list[str] | list[TaskSpec]) -> int:
        """``pages``, or the fewest more that give every task a page it fits.

        Some tasks want a page of their own (``truncate``): with every
        accessor at once, two pages may hold them all only with more.
        """
        anonymous = probe(subject.fstype, subject.mode, None).kind == "anonymous"
        for pages in range(self.pages, self.pages + len(tasks) + 1):
            try:
                assign_pages(tasks, pages, anonymous=anonymous)
            except SetupError:
                continue
            return pages
        return self.pages  # the explorer says why none fits

    def _accessors(self, subject: Subject) -> list[str]:
        if not subject.fstype.has_page_cache(subject.mode):
            pytest.skip(f"{subject.describe()} keeps no pages in the page cache")
        info = probe(subject.fstype, subject.mode, None)
        return [
            acc.name
            for acc in ACCESSORS
            if applies(acc, subject.fstype, subject.mode, info) is None
        ]

    def test_race_no_schedule_with_one_accessor_fails(self, fsaops_race_subject: Subject) -> None:
        """Each accessor alone with the migration, on a clean and a dirty page: none fails.

        Every schedule up to k preemptions that the search keeps (all of
        them when ``reduce`` is false), as ``fsaops explore``'s default
        runs them (:func:`~fsaops.explore.setup.lone_runs`).  A search far
        larger than any built-in table's says so as soon as it is known
        (:class:`LargeSearchWarning`, and a line on the terminal).
        """
        subject = fsaops_race_subject
        info = probe(subject.fstype, subject.mode, None)
        names = self._accessors(subject)
        runs = lone_runs(subject.fstype, subject.mode, info, self.pages, names)
        if self.pages < 2:
            # One page is a clean one: what a dirty page would run is not run.
            wider = lone_runs(subject.fstype, subject.mode, info, 2, names)
            dirty = [spec.name for spec in wider if spec.page == 1]
            if dirty:
                line = (
                    f"{subject.describe()}: pages = {self.pages} runs each accessor on a clean "
                    f"page only; {', '.join(dirty)} would run on a dirty page too (page 1) "
                    "with pages = 2 or more"
                )
                _say_now(getattr(self, "_fsaops_request", None), line)
                warnings.warn(CleanPageOnlyWarning(line), stacklevel=2)
        for spec in runs:
            self._explore(subject, [spec], preemptions=self.preemptions, reduce=self.reduce)

    def test_race_no_pct_schedule_with_every_accessor_fails(
        self, fsaops_race_subject: Subject
    ) -> None:
        """Every accessor at once: no PCT schedule fails."""
        if not self.pct_schedules:
            pytest.skip("pct_schedules = 0")
        tasks = self._accessors(fsaops_race_subject)
        self._explore(
            fsaops_race_subject,
            tasks,
            pct=self.pct_depth,
            schedules=self.pct_schedules,
            seed=self.seed,
        )


def _also(said: list[str]) -> str:
    """The notices of a large search, for a failure's message."""
    return "".join(f"\n{line}" for line in said)


KIT_CLASSES.append(MigratepageRaces)  # its tests run with the process's ends refused
