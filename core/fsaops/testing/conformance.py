"""The conformance suite every ``migratepage`` implementation can run.

This module is for plugin authors to subclass, as SQLAlchemy's dialect
suite, fsspec's abstract tests and pandas' extension tests are: the tests
here are the promises the kernel makes about ``migratepage`` (KERNEL-SPEC
§3, §5, §6, §7, §9), and each keeps its name, so renaming or removing one
is a change to a public interface.  A plugin's test module needs four
lines::

    from fsaops.testing import MigratepageConformance

    class TestMyfs(MigratepageConformance):
        filesystem = "myfs"            # resolved through the plugin loader, only it selected
        mode = "default"

``filesystem`` may also be a :class:`~fsaops.FileSystemType`, for a plugin
that is not installed yet.  ``capabilities`` say which promises apply
(:data:`~fsaops.testing.harness.CAPABILITIES`): ``buffers``, ``writeback``,
``no_migratepage`` (the engine's fallback is checked instead of the hook),
``refuses`` (every page fails for good, as with ``xfs_buftarg``),
``swap_cache`` and ``no_page_cache``.  Left out, they are inferred from the
table and ``test_capabilities_match_the_table`` says what was inferred;
declared (``capabilities = {"buffers", "writeback"}``), they are checked
against what the table does.  A promise that does not apply is skipped with
a reason naming the capability.  Without a ``block_size``, the suite mounts
with the smallest block size the type takes; the promises about the ring of
buffer heads are checked at every block size the type takes that puts
several buffers in a page, and skipped when none does.

Tests come in two levels.  ``test_hook_*`` call the table's
``migratepage`` directly with both pages locked, exactly as the engine
does; ``test_engine_*`` isolate pages and run ``migrate_pages``, then check
the lists, the pages and the whole machine.  ``test_property_*`` run both
over random page states when Hypothesis is installed.  State is judged by
:class:`~fsaops.testing.oracle.Oracle`, which reads the machine directly
and never through the code under test.  A subclass may override any test
(for example to skip it with a reason of its own).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Collection, Iterator
from collections.abc import Set as AbstractSet
from errno import EAGAIN
from typing import TYPE_CHECKING, ClassVar, Final

import attrs
import pytest

if TYPE_CHECKING:
    import hypothesis

from fsaops.aops import FileSystemType
from fsaops.config.effective import SWAP
from fsaops.errors import FsaopsError, KernelBug
from fsaops.fs import generic_file_read, generic_file_write
from fsaops.oracle import Oracle
from fsaops.page import PG, Page
from fsaops.semantics import DEFAULT_SEMANTICS, semantics_names
from fsaops.testing import promises
from fsaops.testing.harness import (
    HookCall,
    PageSpec,
    SetupError,
    Subject,
    World,
    buffer_heads_seen,
    check_semantics,
    far_indices,
    file_sizes,
    infer_capabilities,
    pages_left_by_a_write,
    resolve_subject,
    vm_locked_errno,
)
from fsaops.testing.outcomes import KIT_CLASSES
from fsaops.testing.outcomes import ensure as ensure_outcome_guard

__all__ = ["MigratepageConformance"]


Verdict = tuple[HookCall, dict[str, list[str]]]
"""One call of ``migratepage`` with the promises it broke, judged the moment it returned."""


def _with_seed(spec: PageSpec, seed: int) -> PageSpec:
    return attrs.evolve(spec, seed=seed)


def _holds(subject: Subject, promise: str, problems: list[str]) -> None:
    """Fail on ``problems`` of the test's own ``promise``; then on any call judged since."""
    assert not problems, promises.report(promise, problems, semantics=subject.semantics)
    _pending_hold(subject)


_PENDING: list[tuple[str, Verdict]] = []
"""The direct calls of the running test judged so far, with the words that place each
(``at block size 2048 ...: ``): the test's own promise is reported first, then these."""


def _pending_hold(subject: Subject) -> None:
    """Fail on the first call of :data:`_PENDING` that broke a promise; forget them all."""
    pending = list(_PENDING)
    _PENDING.clear()
    for where, verdict in pending:
        _calls_hold(subject, [verdict], where)


def _moved_whole(call: HookCall) -> list[str]:
    """What kept a moved page from arriving whole: its contents, dirty state and buffer heads."""
    problems = [*promises.hook_contents_copied(call), *promises.hook_dirty_carried(call)]
    if call.old_before.ring:
        problems += promises.hook_buffers_follow(call)
    return problems


def _judge(subject: Subject, call: HookCall) -> Verdict:
    """Every promise that applies to ``call`` that it broke, read right after it returned.

    A direct call is judged by what its page's state says it must do
    (:func:`~fsaops.testing.promises.check_hook_call`), a call the engine
    made by what it returned
    (:func:`~fsaops.testing.promises.check_call_as_returned`).  Judged at
    once: the pages, the write counters and the rest of the machine go on
    changing after it (the engine unlocks the pages and puts them back,
    the next page is built or migrated).
    """
    if call.engine:
        return call, promises.check_call_as_returned(subject, call)
    return call, promises.check_hook_call(subject, call)


def _calls_hold(subject: Subject, verdicts: Collection[Verdict], where: str = "") -> None:
    """Fail on the first call of ``migratepage`` that broke a promise, naming each it broke.

    Every call the suite makes, directly or through ``migrate_pages``, is
    held to every promise that applies to it, whatever the test that made
    it is about.
    """
    engine = any(call.engine for call, _broken in verdicts)
    for number, (call, broken) in enumerate(verdicts, 1):
        if not broken:
            continue
        said = f" (it returned {call.rc!r})" if call.engine else ""
        which = f"call {number} of migratepage by migrate_pages" if engine else "migratepage"
        context = (
            f"{which} of pfn {call.old_before.pfn} to pfn {call.newpage.pfn}{said}: "
            f"page {call.prepared.spec}, index {call.old_before.index}"
        )
        pytest.fail(
            "\n".join(
                promises.report(
                    key, [f"{where}{p} ({context})" for p in problems], semantics=subject.semantics
                )
                for key, problems in broken.items()
            ),
            pytrace=False,
        )


def class_semantics(cls: type, config: pytest.Config | None = None) -> tuple[str, ...]:
    """The releases of the migration code a suite class is checked under, in its order.

    The class's ``semantics`` (a name, or several), else the
    ``--fsaops-semantics`` option, else ``"v4"`` (the default of
    ``[kernel] semantics`` and of ``fsaops migrate --semantics``); a name
    given twice counts once.

    Raises:
        SetupError: a name is not a release :mod:`fsaops.semantics` models
            (the message lists them), or none is given.
    """
    named = getattr(cls, "semantics", None)
    if named is None and config is not None:
        named = config.getoption("fsaops_semantics", default=None)
    if named is None:
        return (DEFAULT_SEMANTICS,)
    if isinstance(named, str):
        return (check_semantics(named),)
    try:
        names = list(named)
    except TypeError:
        raise SetupError(
            f"semantics must be a release's name or several, not {named!r} "
            f"(known: {semantics_names()})"
        ) from None
    if not names:
        raise SetupError(f"semantics names no release (known: {semantics_names()})")
    return tuple(dict.fromkeys(check_semantics(name) for name in names))


def parametrize_semantics(cls: type, metafunc: pytest.Metafunc) -> None:
    """Run each test of a suite class once per release it is checked under.

    The class-scoped fixture ``fsaops_semantics`` is parametrized with the
    releases of :func:`class_semantics`, each test id naming its release
    (``test_hook_copies_the_contents[2.6.16]``).  A class checked under
    V4 alone is not parametrized, so its test ids stay as they were.  An
    unknown name parametrizes nothing: the fixture fails every test with
    the reason.
    """
    if "fsaops_semantics" not in metafunc.fixturenames:
        return
    try:
        names = class_semantics(cls, metafunc.config)
    except SetupError:
        return
    if names != (DEFAULT_SEMANTICS,):
        metafunc.parametrize("fsaops_semantics", names, ids=names, scope="class")


def fixture_semantics(cls: type, request: pytest.FixtureRequest) -> str:
    """The release a suite class's ``fsaops_semantics`` fixture gives when not parametrized.

    A bad ``semantics`` fails the test (without a traceback), naming the
    class and the known releases.
    """
    try:
        return class_semantics(cls, request.config)[0]
    except SetupError as exc:
        pytest.fail(f"{cls.__name__}: {exc}", pytrace=False)


_COUNTS: Final = {
    "settle_ticks": ("a number of ticks", 0),
    "engine_rounds": ("a number of migrate_pages calls", 1),
    "max_examples": ("a number of examples", 1),
    "pages": ("a number of pages", 1),
    "preemptions": ("a number of preemptions", 0),
    "pct_depth": ("a PCT depth", 1),
    "pct_schedules": ("a number of schedules", 0),
    "seed": ("a seed", 0),
}
"""The suites' counts a class may set: what each is, and the least it takes."""


def check_class(cls: type) -> None:
    """Check the class attributes a suite class sets, before the suite reads any.

    ``filesystem`` (a name or a :class:`~fsaops.FileSystemType`), ``mode``
    and ``plugin`` (one name each), ``block_size`` (bytes), ``capabilities``
    (a set of names) and the suite's counts (``settle_ticks``,
    ``max_examples``, ``preemptions``, ...).  ``semantics`` is
    :func:`class_semantics`'s to check.

    Raises:
        SetupError: an attribute is not of the kind it takes; every such
            attribute is named, with what it takes.
    """
    problems: list[str] = []
    filesystem = getattr(cls, "filesystem", None)
    if not (filesystem is None or isinstance(filesystem, (str, FileSystemType))):
        problems.append(
            f"filesystem must be a filesystem's name or a FileSystemType, not {filesystem!r}"
        )
    mode = getattr(cls, "mode", None)
    if not (mode is None or isinstance(mode, str)):
        problems.append(f"mode must be the name of one mode, not {mode!r}")
    plugin = getattr(cls, "plugin", None)
    if not (plugin is None or isinstance(plugin, str)):
        problems.append(
            f"plugin must be the entry-point name of the one plugin that provides the "
            f"filesystem, not {plugin!r}"
        )
    block_size = getattr(cls, "block_size", None)
    if not (block_size is None or (type(block_size) is int and block_size > 0)):
        problems.append(f"block_size must be a block size in bytes (an int), not {block_size!r}")
    capabilities = getattr(cls, "capabilities", None)
    if not (
        capabilities is None
        or (
            isinstance(capabilities, Collection)
            and not isinstance(capabilities, str)
            and all(type(c) is str for c in capabilities)
        )
    ):
        problems.append(
            f'capabilities must be a set of capability names ({{"buffers", "writeback"}}), '
            f"not {capabilities!r}"
        )
    suites = [base for base in cls.__mro__ if base.__module__.startswith("fsaops.testing.")]
    for name, (what, least) in _COUNTS.items():
        if not any(name in vars(base) for base in suites):
            continue  # not one of this suite's counts
        value = getattr(cls, name)
        if type(value) is not int or value < least:
            problems.append(f"{name} must be {what}, an int of {least} or more, not {value!r}")
    if problems:
        raise SetupError("; ".join(problems))


def class_subject(
    cls: type,
    request: pytest.FixtureRequest,
    capabilities: AbstractSet[str] | tuple[()] = (),
    semantics: str = DEFAULT_SEMANTICS,
) -> Subject:
    """The subject a test class names (``filesystem``, ``mode``, ``plugin``, ``block_size``).

    The class's attributes first, then the closest
    ``@pytest.mark.fsaops(filesystem=..., mode=...)`` (on the class or its
    module), then the ``--fsaops-filesystem`` and ``--fsaops-mode`` options;
    the test fails (without a traceback) when none names a filesystem or the
    subject cannot be resolved.  The subject is checked under ``semantics``.
    """
    from fsaops.testing.pytest_plugin import marker_subject

    try:
        check_class(cls)
    except SetupError as exc:
        bad: str | None = str(exc)
    else:
        bad = None
    if bad is not None:  # failed outside the handler: one message, nothing chained
        pytest.fail(f"{cls.__name__}: {bad}", pytrace=False)
    filesystem = getattr(cls, "filesystem", None)
    mode = getattr(cls, "mode", None)
    plugin = getattr(cls, "plugin", None)
    block_size = getattr(cls, "block_size", None)
    if filesystem is None:
        try:
            marked = marker_subject(request)
        except pytest.UsageError as exc:
            pytest.fail(str(exc), pytrace=False)
        if marked is not None:
            filesystem, marked_mode, marked_plugin, marked_size = marked
            mode = mode if mode is not None else marked_mode
            plugin = plugin if plugin is not None else marked_plugin
            block_size = block_size if block_size is not None else marked_size
        else:
            filesystem = request.config.getoption("fsaops_filesystem", default=None)
            if mode is None:
                mode = request.config.getoption("fsaops_mode", default=None)
    if filesystem is None:
        pytest.fail(
            f"{cls.__name__} names no filesystem: set `filesystem` on the class "
            "or pass --fsaops-filesystem",
            pytrace=False,
        )
    try:
        return resolve_subject(
            filesystem,
            mode,
            capabilities,
            plugin=plugin,
            block_size=block_size,
            semantics=semantics,
        )
    except SetupError as exc:
        pytest.fail(f"{cls.__name__}: {exc}", pytrace=False)


class MigratepageConformance:
    """Subclass me, naming a filesystem, a mode and capabilities, to run the suite.

    Class attributes:
        filesystem: the filesystem's name (resolved through the plugin
            loader with only its plugin selected) or a ``FileSystemType``.
            ``None`` takes the closest ``@pytest.mark.fsaops`` (on the class
            or its module), else ``--fsaops-filesystem`` from the command line.
        mode: the mount mode (``None``: the marker's, else ``--fsaops-mode``,
            else the type's default).
        capabilities: which promises apply, as a set of names:
            ``buffers`` (pages carry buffer heads), ``writeback`` (the
            table's ``writepage`` puts a page under writeback),
            ``no_migratepage`` (the engine's fallback moves the pages),
            ``refuses`` (``migratepage`` fails every page for good, as
            ``fail_migrate_page``), ``swap_cache`` (the table serves the swap
            cache) and ``no_page_cache`` (execute in place: no page to
            migrate); :data:`~fsaops.testing.harness.CAPABILITIES` describes
            each.  ``None`` (the default): inferred from the table, and
            ``test_capabilities_match_the_table`` says what was inferred.
        plugin: the entry-point name of the plugin providing the
            filesystem, when it is not the filesystem's own name.
        block_size: the block size to mount with (``None``: the smallest the
            type takes, so a page holds the most buffer heads).  The
            promises about the ring of buffers are also checked at every
            other block size the type takes below the page size.
        settle_ticks: ticks let pass between engine calls for the fallback
            path (kjournald commits, I/O completes).
        engine_rounds: ``migrate_pages`` calls allowed for the fallback path
            to move a dirty page (``migrate_pages_to`` repeats calls too).
        max_examples: Hypothesis examples per property test.
        semantics: the release of the migration code the table is checked
            under (:mod:`fsaops.semantics`): ``"v4"``, ``"2.6.16"`` or
            ``"2.6.17"``, or several (``("v4", "2.6.16", "2.6.17")``) to run
            every test under each, its id naming the release
            (``[2.6.16]``).  Every machine the suite builds runs that
            release's kernel, and every outcome the suite expects is that
            release's (a page in a ``VM_LOCKED`` area is a permanent
            ``-EPERM`` from 2.6.16, ``-EAGAIN`` in V4).  ``None`` (the
            default): ``--fsaops-semantics``, else ``"v4"``, as ``fsaops
            migrate``.
    """

    filesystem: ClassVar[str | FileSystemType | None] = None
    mode: ClassVar[str | None] = None
    capabilities: ClassVar[AbstractSet[str] | None] = None
    plugin: ClassVar[str | None] = None
    block_size: ClassVar[int | None] = None
    settle_ticks: ClassVar[int] = 256
    engine_rounds: ClassVar[int] = 4
    max_examples: ClassVar[int] = 15
    semantics: ClassVar[str | Collection[str] | None] = None

    # -- fixtures (on the class, so the suite needs no pytest plugin) ------------

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        """Run every test once per release in ``semantics`` (:func:`parametrize_semantics`).

        Also registers the outcome guard (:mod:`fsaops.testing.outcomes`): a
        ``pytest.skip`` or ``pytest.xfail`` that table code calls fails its
        test, with or without the kit's pytest plugin.  A subclass that
        defines its own ``pytest_generate_tests`` calls this one.
        """
        ensure_outcome_guard(metafunc.config)
        parametrize_semantics(type(self), metafunc)

    @pytest.fixture(scope="class")
    @classmethod
    def fsaops_semantics(cls, request: pytest.FixtureRequest) -> str:
        """The release of the migration code under which the table is checked (``semantics``)."""
        return fixture_semantics(cls, request)

    @pytest.fixture(scope="class")
    @classmethod
    def fsaops_subject(cls, request: pytest.FixtureRequest, fsaops_semantics: str) -> Subject:
        """The filesystem, mode and capabilities under test, resolved once per class and release."""
        subject = class_subject(cls, request, cls.capabilities or (), fsaops_semantics)
        if subject.block_size is None:
            subject = attrs.evolve(subject, block_size=_smallest_block_size(subject.fstype))
        if cls.capabilities is None:
            subject = attrs.evolve(subject, capabilities=infer_capabilities(subject), inferred=True)
        return subject

    @pytest.fixture(autouse=True)
    def _fsaops_calls_of_this_test(self) -> Iterator[None]:
        """Each test is judged on its own calls: none an earlier test left unreported.

        A test that failed early (its own promise) leaves its direct calls
        judged but not reported; run alone after it (``-k``, ``--lf``), a
        test that makes no call of its own would fail on them, naming no
        table, or another class's.
        """
        _PENDING.clear()
        yield
        _PENDING.clear()

    @pytest.fixture
    def fsaops_world(self, fsaops_subject: Subject) -> World:
        """A fresh small machine with the table under test in use."""
        return World(fsaops_subject)

    @pytest.fixture
    def fsaops_oracle(self) -> Oracle:
        """The oracle that reads state without going through the code under test."""
        return Oracle()

    # -- skips ------------------------------------------------------------------------

    @staticmethod
    def _needs_pages(subject: Subject) -> None:
        if subject.has("no_page_cache"):
            pytest.skip(
                f"capability 'no_page_cache': {subject.describe()} keeps no pages in the "
                "page cache, so there is no page to migrate"
            )

    @classmethod
    def _needs_hook(cls, subject: Subject) -> None:
        cls._needs_pages(subject)
        if subject.has("no_migratepage"):
            pytest.skip(
                f"capability 'no_migratepage': {subject.table.name} has no migratepage, so "
                "the engine's fallback path is checked instead (test_engine_*)"
            )

    @classmethod
    def _needs_moving_hook(cls, subject: Subject) -> None:
        cls._needs_hook(subject)
        if subject.has("refuses"):
            pytest.skip(
                f"capability 'refuses': {subject.table.name}.migratepage refuses every page, "
                "so nothing moves (test_hook_refusal_* checks the refusal)"
            )

    @staticmethod
    def _needs_files(subject: Subject) -> None:
        if subject.has("swap_cache"):
            pytest.skip(
                f"capability 'swap_cache': {subject.describe()} serves anonymous memory, "
                "whose pages belong to no file"
            )

    @staticmethod
    def _needs(subject: Subject, capability: str, what: str) -> None:
        if not subject.has(capability):
            pytest.skip(f"needs capability {capability!r}: {what} ({subject.describe()})")

    @staticmethod
    def _call(world: World, spec: PageSpec, where: str = "") -> HookCall:
        """Call ``migratepage`` on a page built as ``spec``, holding it to every promise.

        The call is judged at once (:func:`_judge`); if it broke any promise
        that applies to the page, the test fails on it after its own
        promise's check (:func:`_holds`), whichever promise the test is about.
        """
        with _no_bug(world.subject, where):
            call = world.call_migratepage(world.make_page(spec))
        _PENDING.append((where, _judge(world.subject, call)))
        return call

    @staticmethod
    def _ring_worlds(
        subject: Subject, world: World, *, several: bool, one: bool = True
    ) -> Iterator[tuple[str, World]]:
        """The machines a promise about the ring of buffer heads is checked on.

        The test's own machine first (the subject's block size), unless
        ``several`` buffers are needed and its pages hold one; then one
        machine at every other block size the type takes that puts several
        buffer heads in a page, each with the words that start its problems
        (``at block size 2048 (2 buffer heads a page): ``).  Bugs in the
        ring (a forgotten loop, an offset computed for one block size) hide
        on a page of one buffer.  Unless ``several`` are needed (or ``one``
        is false: the state needs blocks to put out of line), a machine
        at the block size of the page follows, when the type takes it and
        the test's own is smaller (``at block size 4096 (1 buffer head a
        page): ``): a table that treats a ring of one buffer apart (its
        ``BH_dirty`` taken for the page's) is wrong only there, and the
        suite mounts the smallest block size when none is named.  A test
        that needs ``several`` calls :meth:`_needs_several_buffers` first.
        """
        ps = world.page_size
        own = world.sb.s_blocksize if world.sb is not None else ps
        sizes = subject.fstype.block_sizes
        others = sorted(size for size in sizes if size < ps and size != own)
        if not several or own < ps:
            yield "", world
        for size in others:
            where = f"at block size {size} ({ps // size} buffer heads a page): "
            yield where, World(attrs.evolve(subject, block_size=size))
        if one and not several and own < ps and ps in sizes:
            where = f"at block size {ps} (1 buffer head a page): "
            yield where, World(attrs.evolve(subject, block_size=ps))

    @staticmethod
    def _one_buffer_a_page(subject: Subject, world: World) -> bool:
        """Whether every block size the type takes (and the test's own) fills a page with one."""
        ps = world.page_size
        own = world.sb.s_blocksize if world.sb is not None else ps
        return own >= ps and not any(size < ps for size in subject.fstype.block_sizes)

    @staticmethod
    def _other_block_sizes(subject: Subject, world: World) -> list[int]:
        """The block sizes up to the page size the type takes, but the test's own."""
        own = world.sb.s_blocksize if world.sb is not None else world.page_size
        return [size for size in subject.fstype.block_sizes if own != size <= world.page_size]

    @classmethod
    def _one_block_size(cls, subject: Subject, world: World) -> bool:
        """Whether the type takes no block size up to the page size but the test's own."""
        return not cls._other_block_sizes(subject, world)

    def _needs_two_block_sizes(self, subject: Subject, world: World) -> None:
        """Skip a test of two mounts at different block sizes, when the type takes one."""
        if self._one_block_size(subject, world):
            taken = ", ".join(map(str, subject.fstype.block_sizes))
            pytest.skip(
                f"{subject.describe()} takes one block size up to the page size ({taken}), so "
                "two of its mounts cannot differ in it"
            )

    def _needs_several_buffers(self, subject: Subject, world: World) -> None:
        """Skip a promise only a page of several buffer heads can show, when none can be had."""
        if self._one_buffer_a_page(subject, world):
            taken = ", ".join(map(str, subject.fstype.block_sizes))
            pytest.skip(
                f"a page of one buffer cannot show this: {subject.describe()} takes no block "
                f"size below the page size ({world.page_size}; it takes: {taken})"
            )

    def _ring_problems(
        self,
        subject: Subject,
        world: World,
        spec: PageSpec,
        check: Callable[[HookCall], list[str]],
        *,
        several: bool,
        ring: bool = False,
    ) -> list[str]:
        """``check`` of a page built as ``spec``, at each block size of :meth:`_ring_worlds`.

        The problems of the first block size that has any.  With ``ring``,
        the page under test must have buffer heads at the test's own block
        size, and one without is passed over at the others.
        """
        one = not spec.out_of_line  # a page of one block has no blocks to put out of line
        for where, machine in self._ring_worlds(subject, world, several=several, one=one):
            call = self._call(machine, spec, where)
            if ring and not call.old_before.ring:
                assert where, "setup: the page under test has no buffer heads"
                continue
            problems = check(call)
            if problems:
                return [where + problem for problem in problems]
        return []

    def _untouched_problems(
        self, subject: Subject, world: World, spec: PageSpec, errno: int = -EAGAIN
    ) -> list[str]:
        """What changed on a page ``migratepage`` must leave as it was (``errno``: ``-EAGAIN``).

        With buffers, at every block size of :meth:`_ring_worlds`: a change
        to a buffer other than the first shows only on a page of several.
        """
        check = functools.partial(promises.hook_left_untouched, errno=errno)
        if not subject.has("buffers"):
            return check(self._call(world, spec))
        return self._ring_problems(subject, world, spec, check, several=False)

    # -- the declaration -----------------------------------------------------------------

    def test_capabilities_match_the_table(self, fsaops_subject: Subject) -> None:
        """The declared capabilities describe the table (KERNEL-SPEC §7, the aops table).

        ``no_migratepage`` must match a missing member, ``no_page_cache`` the
        type's ``page_cache`` flag and what a write leaves in the page cache,
        ``buffers`` whether pages of the table carry buffer heads (a clean
        cached page, a dirty one, one written in part), ``refuses`` whether
        ``migratepage`` fails a clean page for good, ``swap_cache`` a table
        that serves the swap cache (no ``readpage`` or ``prepare_write``, and
        pages it can build), and a declared ``writeback`` must be reachable.
        A mode with no page cache must still read back what was written,
        leaving no page in the page cache.  A failure says which capabilities
        the table shows.  With the capabilities inferred, only a type whose
        ``page_cache`` flag says a mode keeps no page, although a write leaves
        some, fails; otherwise the test is skipped, naming what was inferred.
        """
        subject = fsaops_subject
        if subject.inferred:
            _holds(subject, "capabilities", self._page_cache_flag_problems(subject))
            found = ", ".join(repr(c) for c in sorted(subject.capabilities)) or "none"
            pytest.skip(
                f"capabilities not declared, so inferred from {subject.describe()}: {found}; "
                "declare `capabilities` to have a declaration checked against the table"
            )
        table = subject.table
        problems: list[str] = []
        has_hook = table.migratepage is not None
        if subject.has("no_migratepage") and has_hook:
            problems.append(
                f"capability 'no_migratepage' is declared, but {table.name} has migratepage "
                f"{table.migratepage!r}"
            )
        if not subject.has("no_migratepage") and not has_hook:
            problems.append(
                f"{table.name} has no migratepage: declare capability 'no_migratepage' to "
                "check the engine's fallback instead"
            )
        page_cache = subject.fstype.has_page_cache(subject.mode)
        if subject.has("no_page_cache") and page_cache:
            problems.append(
                f"capability 'no_page_cache' is declared, but {subject.describe()} keeps pages "
                "in the page cache"
            )
        if not subject.has("no_page_cache") and not page_cache:
            problems += self._page_cache_flag_problems(subject) or [
                f"capability 'no_page_cache' is missing, but {subject.describe()} keeps no "
                "pages in the page cache"
            ]
        problems += self._swap_cache_problems(subject)
        if problems:
            _holds(subject, "capabilities", problems)
        if subject.has("no_page_cache"):
            _holds(subject, "capabilities", self._no_page_cache_problems(subject))
            return
        world = World(subject)
        try:
            prepared = world.make_page(PageSpec())
        except SetupError as exc:  # a table declared to serve the swap cache that cannot
            _holds(subject, "capabilities", [str(exc)])
            raise  # not reached: _holds failed the test
        carrier = buffer_heads_seen(world, prepared)
        if subject.has("buffers") and carrier is None:
            problems.append(
                f"capability 'buffers' is declared, but no page of {subject.describe()} "
                "carries buffer heads (a cached page, a dirty page, a page written in part "
                "through prepare_write)"
            )
        if not subject.has("buffers") and carrier is not None:
            problems.append(
                f"capability 'buffers' is missing, but {carrier} of {subject.describe()} "
                "carries buffer heads"
            )
        if has_hook:
            rc = world.call_migratepage(prepared).rc
            refuses = type(rc) is int and rc < 0 and rc != -EAGAIN
            if subject.has("refuses") != refuses:
                problems.append(
                    f"capability 'refuses' is "
                    f"{'declared' if subject.has('refuses') else 'missing'}, but "
                    f"{table.name}.migratepage returned {rc!r} for a clean page"
                )
        if subject.has("writeback"):
            try:
                world.make_page(PageSpec(writeback=True, seed=1))
            except SetupError as exc:
                problems.append(str(exc))
        elif table.writepage is not None:
            probe = World(attrs.evolve(subject, capabilities=subject.capabilities | {"writeback"}))
            try:
                probe.make_page(PageSpec(writeback=True, seed=1))
            except FsaopsError:
                pass  # its writepage puts no page under writeback (data=journal files it)
            else:
                problems.append(
                    f"capability 'writeback' is missing, but {table.name}.writepage puts a "
                    "dirty page under writeback: the promises about such pages would be "
                    "skipped"
                )
        if problems:
            observed = ", ".join(repr(c) for c in sorted(infer_capabilities(subject)))
            problems.append(
                "what the table does: capabilities = "
                + (f"{{{observed}}}" if observed else "frozenset()")
            )
        _holds(subject, "capabilities", problems)

    @staticmethod
    def _page_cache_flag_problems(subject: Subject) -> list[str]:
        """A type whose ``page_cache`` flag says a mode keeps no page, although a write leaves some.

        Empty when the flag says the mode keeps pages, or when the subject
        is tested as keeping none (``no_page_cache``; that is checked
        against file I/O instead).
        """
        if subject.fstype.has_page_cache(subject.mode) or subject.has("no_page_cache"):
            return []
        if subject.has("swap_cache"):
            return []
        try:
            left = pages_left_by_a_write(subject)
        except FsaopsError as exc:
            return [f"file I/O on {subject.describe()} failed: {exc}"]
        if not left:
            return []
        return [
            f"{subject.fstype.name}'s page_cache flag says mode {subject.mode} keeps no pages in "
            f"the page cache (page_cache = {{{subject.mode!r}: False}}), but writing a file on "
            f"{subject.describe()} left {left} page(s) in its page cache: the promises are "
            "checked on those pages; correct the flag, or give the table get_xip_page"
        ]

    @staticmethod
    def _swap_cache_problems(subject: Subject) -> list[str]:
        """``swap_cache`` declared for a table that is not the swap cache's, or left out for it."""
        table = subject.table
        is_swap = subject.fstype.name == SWAP
        if is_swap and not subject.has("swap_cache"):
            return [
                f"capability 'swap_cache' is missing, but {subject.fstype.name} is the swap "
                "filesystem: its table serves the swap cache (swapper_space)"
            ]
        if is_swap or not subject.has("swap_cache"):
            return []
        files = [name for name in ("readpage", "prepare_write") if getattr(table, name)]
        if not files:
            return []
        return [
            f"capability 'swap_cache' is declared, but {table.name} has {' and '.join(files)}: "
            "it reads and writes files, which the swap cache's table never does (a swap-in "
            "reads the slot itself), so only anonymous pages in the swap cache would be tested, "
            "never its file pages; leave 'swap_cache' out"
        ]

    @staticmethod
    def _no_page_cache_problems(subject: Subject) -> list[str]:
        """A mode without page cache: file I/O works and leaves no page behind."""
        world = World(subject)
        inode = world.new_file()
        ps = world.page_size
        data = world.contents.pages(world.owner("subject/io"), 0, 4)[: 3 * ps + 100]
        try:
            generic_file_write(inode, 0, data)
            back = generic_file_read(inode, 0, len(data))
        except FsaopsError as exc:
            return [f"file I/O on {subject.describe()} failed: {exc}"]
        problems = []
        if back != data:
            problems.append(f"{subject.describe()} did not read back what was written")
        if inode.i_mapping.nrpages or any(inode.i_mapping.page_tree):
            problems.append(
                f"capability 'no_page_cache': writing a file on {subject.describe()} left "
                f"{inode.i_mapping.nrpages} page(s) in its page cache"
            )
        return problems

    # -- the hook level ----------------------------------------------------------------------

    def test_hook_returns_zero_or_negative_errno(
        self, fsaops_subject: Subject, fsaops_world: World
    ) -> None:
        """``migratepage`` returns an int: 0 or a negative errno (KERNEL-SPEC §3 step 11, §7).

        Checked on a clean, a dirty, a mapped, a pinned, a truncated and an
        mlocked page.
        """
        self._needs_hook(fsaops_subject)
        problems: list[str] = []
        for seed, state in enumerate(
            ("clean", "dirty", "mapped", "pinned", "truncated", "mlocked")
        ):
            spec = _with_seed(PageSpec.parse(state), seed)
            call = self._call(fsaops_world, spec)
            problems.extend(f"{p} (page {spec})" for p in promises.hook_return_value(call.rc))
        _holds(fsaops_subject, "return", problems)

    def test_hook_copies_the_contents(self, fsaops_subject: Subject, fsaops_world: World) -> None:
        """The new page holds the old page's bytes (KERNEL-SPEC §6.1)."""
        self._needs_moving_hook(fsaops_subject)
        call = self._call(fsaops_world, PageSpec(dirty=True))
        _holds(fsaops_subject, "contents", promises.hook_contents_copied(call))

    def test_hook_copies_the_flags(self, fsaops_subject: Subject, fsaops_world: World) -> None:
        """The copied flags reach the new page; the old page is cleared (KERNEL-SPEC §6).

        ``PG_error``, ``referenced``, ``uptodate``, ``active``, ``checked`` and
        ``mappedtodisk`` reach the new page; the old page loses its mapping,
        ``private`` and ``PG_swapcache``/``active``/``private``; both pages
        stay locked for the engine to unlock (§6.2, §6.4, §6.6).
        """
        self._needs_moving_hook(fsaops_subject)
        call = self._call(fsaops_world, PageSpec(flags=PG.COPIED))
        _holds(fsaops_subject, "flags", promises.hook_flags_copied(call))

    def test_hook_carries_the_dirty_state_without_writeback(
        self, fsaops_subject: Subject, fsaops_world: World
    ) -> None:
        """A dirty page moves dirty, and nothing is written to move it (KERNEL-SPEC §6.3, §7).

        With buffers, at every block size the suite builds buffer rings at
        (the class's, the type's smaller ones, and the page's own, a page of
        one buffer): a table that moves such a page clean, taking
        its buffer's ``BH_dirty`` for the page's, loses the data, since
        writeback writes only ``PG_dirty`` pages.
        """
        self._needs_moving_hook(fsaops_subject)
        spec = PageSpec(dirty=True)

        def check(call: HookCall) -> list[str]:
            assert call.old_before.flags & PG.dirty, "setup: the page under test is not dirty"
            return promises.hook_dirty_carried(call)

        if not fsaops_subject.has("buffers"):
            _holds(fsaops_subject, "dirty", check(self._call(fsaops_world, spec)))
            return
        problems = self._ring_problems(fsaops_subject, fsaops_world, spec, check, several=False)
        _holds(fsaops_subject, "dirty", problems)

    def test_hook_carries_the_dirty_bit_of_each_buffer(
        self, fsaops_subject: Subject, fsaops_world: World
    ) -> None:
        """A dirty page with a clean first buffer moves with each buffer's bit (KERNEL-SPEC §6.3).

        A write(2) of part of a page dirties only the buffers it covers; the
        page is dirty, and so are they.  A ``migratepage`` that decides from
        one buffer (the first) whether the page, or its buffers, are dirty
        loses the others' data.
        """
        self._needs_moving_hook(fsaops_subject)
        if not fsaops_subject.has("buffers"):
            pytest.skip(f"{fsaops_subject.describe()}: its pages have no buffers")
        # A page of one buffer (a block as large as the page) is dirty whole.
        self._needs_several_buffers(fsaops_subject, fsaops_world)
        spec = PageSpec(dirty=True, clean_head=True)
        check = promises.hook_dirty_carried
        _holds(
            fsaops_subject,
            "dirty",
            self._ring_problems(fsaops_subject, fsaops_world, spec, check, several=True),
        )

    def test_hook_carries_a_dirty_bit_held_only_in_a_pte(
        self, fsaops_subject: Subject, fsaops_world: World
    ) -> None:
        """A page written through a mapping moves dirty (KERNEL-SPEC §5.2, §6.3).

        Only the pte's dirty bit knows the page is newer than the disk until
        ``try_to_unmap`` moves the bit to the page, so a ``migratepage`` that
        copies the page, or samples ``PG_dirty``, before unmapping it moves a
        clean page: once written back and dropped, the write is gone.
        """
        self._needs_moving_hook(fsaops_subject)
        call = self._call(fsaops_world, PageSpec(pte_dirty=True))
        assert call.old_before.pte_dirty, "setup: the page under test has no dirty pte"
        assert not call.old_before.flags & PG.dirty, "setup: the page under test has PG_dirty"
        _holds(fsaops_subject, "pte_dirty", promises.hook_dirty_carried(call))

    def test_hook_moves_a_page_without_buffers(
        self, fsaops_subject: Subject, fsaops_world: World
    ) -> None:
        """A page of a buffered table that has no buffers moves whole (KERNEL-SPEC §7 step 1).

        ``mpage_readpage`` reads a page in without buffer heads, and reclaim
        strips them from a clean page (``try_to_release_page``); written
        through a mapping since, it is dirty only in its pte.
        ``buffer_migrate_page`` takes ``migrate_page``'s path for it: the
        contents, the flags and the dirty state move all the same.
        """
        self._needs_moving_hook(fsaops_subject)
        self._needs(fsaops_subject, "buffers", "pages of this table carry no buffer heads anyway")
        call = self._call(fsaops_world, PageSpec(buffers=False, pte_dirty=True))
        assert not call.old_before.ring, "setup: the page under test has buffer heads"
        problems = [
            *promises.hook_contents_copied(call),
            *promises.hook_dirty_carried(call),
            *promises.hook_private_follows(call),
        ]
        _holds(fsaops_subject, "nobuffers", problems)

    def test_hook_moves_the_last_page_of_a_file(
        self, fsaops_subject: Subject, fsaops_world: World
    ) -> None:
        """A page the file ends inside moves whole, every buffer with it (KERNEL-SPEC §7, §9.3).

        The blocks past the end of the file are holes: their buffers are
        up to date (zeroes) but not mapped to disk.  ``buffer_migrate_page``
        moves every buffer of the ring, mapped or not; one left pointing at
        the old page is written to, and read from, a freed frame.
        """
        self._needs_moving_hook(fsaops_subject)
        spec = PageSpec(tail=True, dirty=True)
        if not fsaops_subject.has("buffers"):
            _holds(fsaops_subject, "tail", _moved_whole(self._call(fsaops_world, spec)))
            return
        _holds(
            fsaops_subject,
            "tail",
            self._ring_problems(fsaops_subject, fsaops_world, spec, _moved_whole, several=False),
        )

    def test_hook_moves_a_page_written_in_part(
        self, fsaops_subject: Subject, fsaops_world: World
    ) -> None:
        """A page written in part while not up to date moves as it is (KERNEL-SPEC §6.1, §7).

        ``write(2)`` of one block of a page not in the page cache leaves the
        page dirty and not up to date, that block's buffer up to date and
        dirty, the others unread.  The copy carries the page as it is: a
        ``migratepage`` that takes a page that is not up to date for empty
        loses the block written.
        """
        self._needs_moving_hook(fsaops_subject)
        self._needs(fsaops_subject, "buffers", "only pages with buffers can be written in part")
        if fsaops_subject.table.prepare_write is None:
            pytest.skip(f"{fsaops_subject.table.name} takes no write(2) (no prepare_write)")
        self._needs_several_buffers(fsaops_subject, fsaops_world)
        _holds(
            fsaops_subject,
            "partial",
            self._ring_problems(
                fsaops_subject,
                fsaops_world,
                PageSpec(partial=True),
                lambda call: [*_moved_whole(call), *promises.hook_flags_copied(call)],
                several=True,
            ),
        )

    def test_hook_moves_a_page_whose_holes_hold_data(
        self, fsaops_subject: Subject, fsaops_world: World
    ) -> None:
        """A page whose holes a process stored into moves with that data (KERNEL-SPEC §6.1, §7).

        A store through a mapping into a hole of a sparse file leaves the
        data in the frame, under buffers that are up to date but map no
        block until ``writepage`` allocates one.  A ``migratepage`` that
        takes an unmapped buffer for zeroes loses what the process wrote.
        """
        self._needs_moving_hook(fsaops_subject)
        self._needs(fsaops_subject, "buffers", "only pages with buffers have holes to tell")
        self._needs_several_buffers(fsaops_subject, fsaops_world)
        spec = PageSpec(sparse=True)
        _holds(
            fsaops_subject,
            "sparse",
            self._ring_problems(fsaops_subject, fsaops_world, spec, _moved_whole, several=True),
        )

    def test_hook_leaves_both_pages_locked(
        self, fsaops_subject: Subject, fsaops_world: World
    ) -> None:
        """``migratepage`` returns with both pages still locked (KERNEL-SPEC §3 step 9).

        The engine unlocks both after the call; 2.6.15's ``unlock_page`` of a
        page that is not locked is a ``BUG()``.  Checked on a page that moves
        and on one that cannot move now.
        """
        self._needs_hook(fsaops_subject)
        problems: list[str] = []
        for seed, state in enumerate(("dirty", "pinned")):
            call = self._call(fsaops_world, _with_seed(PageSpec.parse(state), seed))
            problems.extend(promises.hook_pages_left_locked(call))
        _holds(fsaops_subject, "locks", problems)

    def test_hook_moves_buffer_heads_with_the_page(
        self, fsaops_subject: Subject, fsaops_world: World
    ) -> None:
        """Buffer heads follow the page (KERNEL-SPEC §7 buffer_migrate_page, §9.3).

        Every buffer head of the ring points at the new page at the same
        offset, the ring is the same and closed, ``b_count`` is back to what
        it was and no buffer is left locked.
        """
        self._needs_moving_hook(fsaops_subject)
        self._needs(fsaops_subject, "buffers", "pages of this table carry no buffer heads")
        spec = PageSpec(dirty=True)
        # A table that attaches buffers only to pages whose blocks are out of
        # line (ext2 nobh) moves such a page with them.
        if (
            not self._one_buffer_a_page(fsaops_subject, fsaops_world)
            and not self._call(World(fsaops_subject), spec).old_before.ring
        ):
            spec = PageSpec(dirty=True, out_of_line=True)
        check = promises.hook_buffers_follow
        problems = self._ring_problems(
            fsaops_subject, fsaops_world, spec, check, several=False, ring=True
        )
        _holds(fsaops_subject, "buffers", problems)

    def test_hook_moves_private_data_with_the_page(
        self, fsaops_subject: Subject, fsaops_world: World
    ) -> None:
        """Private data follows the page; the old page keeps none (KERNEL-SPEC §5.5, §6.4).

        ``private`` is the head buffer head or the swap entry; ``PG_swapcache``
        moves with the swap entry.
        """
        self._needs_moving_hook(fsaops_subject)
        call = self._call(fsaops_world, PageSpec())
        _holds(fsaops_subject, "private", promises.hook_private_follows(call))

    def test_hook_points_the_page_tree_slot_at_the_new_page(
        self, fsaops_subject: Subject, fsaops_world: World
    ) -> None:
        """The page-tree slot holds the new page, with mapping and index (KERNEL-SPEC §5.4-6).

        Checked on a page near the start of its file and on the first page
        past the kernel's first radix-tree node (index 64, 256 KiB into the
        file with 4 KiB pages), whose slot is one level down: a table that
        finds or replaces the slot as if the tree had one level, by
        ``index & 63``, moves the pages of small files right and leaves a
        larger file's page tree and page indices wrong.
        """
        self._needs_moving_hook(fsaops_subject)
        problems: list[str] = []
        for seed, index in enumerate(_SLOT_INDICES):
            spec = PageSpec(index=index, seed=seed)
            call = self._call(fsaops_world, spec)
            problems.extend(
                f"{p} (page {spec}, index {index})" for p in promises.hook_slot_moved(call)
            )
        _holds(fsaops_subject, "slot", problems)

    def test_hook_moves_pages_far_into_a_file(
        self, fsaops_subject: Subject, fsaops_world: World
    ) -> None:
        """A page far into a large file moves whole, held to every promise (KERNEL-SPEC §5, §6, §7).

        The second page of a file, and pages at the indexes where a
        table's arithmetic on them changes (:func:`far_indices`): past the
        direct and single indirect blocks of ext2 at the smallest block size
        (index 67) and at 4 KiB blocks (index 1036), past its double
        indirect ones at 1 KiB blocks (16451), and where ``index <<
        PAGE_SHIFT`` no longer fits in 32 bits (``2**20`` with 4 KiB
        pages).  Each is dirty and mapped; the file is
        sparse before it (:data:`~fsaops.world.SPARSE_FROM`).  A table that
        computes a block, an offset or a slot from the index wrongly only
        there passes every test of a small file.
        """
        self._needs_moving_hook(fsaops_subject)
        self._needs_files(fsaops_subject)
        for seed, index in enumerate(far_indices(fsaops_world.page_size.bit_length() - 1)):
            spec = PageSpec(dirty=True, mapped=True, index=index, seed=seed)
            self._call(fsaops_world, spec)
        _pending_hold(fsaops_subject)

    def test_hook_leaves_every_files_size_as_it_was(
        self, fsaops_subject: Subject, fsaops_world: World
    ) -> None:
        """No file's size (``i_size``) changes, its page's file's or another's (KERNEL-SPEC §6, §7).

        Moving a page copies its contents and flags; nothing of the file
        changes.  ``read(2)`` and ``stat`` go by ``i_size``: a larger one
        has every read return bytes nobody wrote past the file's end, a
        smaller one cuts its data off.  Checked on a page inside its file,
        on the page its file ends inside, and on one that cannot move now,
        with another file on the mount.
        """
        self._needs_hook(fsaops_subject)
        if fsaops_subject.has("swap_cache"):
            pytest.skip(
                f"capability 'swap_cache': {fsaops_subject.describe()} serves anonymous "
                "memory, whose pages belong to no file"
            )
        world = fsaops_world
        problems: list[str] = []
        specs = (
            PageSpec(dirty=True, index=2),
            PageSpec(tail=True, dirty=True, index=1, seed=1),
            PageSpec(pinned=1, seed=2),
        )
        for spec in specs:
            call = self._call(world, spec)
            problems.extend(f"{p} (page {spec})" for p in promises.hook_size_kept(call))
        _holds(fsaops_subject, "size", problems)

    def test_hook_changes_no_other_page(self, fsaops_subject: Subject, fsaops_world: World) -> None:
        """No page but the two handed to ``migratepage`` changes (KERNEL-SPEC §3 step 9, §7).

        The engine hands ``migratepage`` the old page and the new one, both
        locked; every other page (its flags, references, contents, slot,
        ptes) and every other page's buffers are their owners'.  Checked
        with the page's neighbour in its file written (dirty, with dirty
        buffers where the table has them), another file's dirty page and a
        mapped one, around a page that moves and one that cannot move now.
        A table that clears a neighbour's ``PG_uptodate`` or a dirty
        buffer's ``BH_Uptodate`` leaves data the next read or partial
        write fetches from disk over, and no check of its own two pages
        sees it.
        """
        self._needs_hook(fsaops_subject)
        world = fsaops_world
        problems: list[str] = []
        for seed, state in enumerate(("dirty", "mapped")):
            world.make_page(_with_seed(PageSpec.parse(state), 10 + seed))
        for seed, state in enumerate(("dirty", "pinned")):
            spec = attrs.evolve(PageSpec.parse(state), index=1, seed=seed)
            prepared = world.make_page(spec)
            inode = prepared.inode
            if inode is not None and world.table.prepare_write is not None:
                # Page 0 of the same file, read in and written again as it is.
                data = generic_file_read(inode, 0, world.page_size)
                generic_file_write(inode, 0, data)
            with _no_bug(fsaops_subject):
                call = world.call_migratepage(prepared)
            problems.extend(f"{p} (page {spec})" for p in promises.hook_others_untouched(call))
            _PENDING.append(("", _judge(fsaops_subject, call)))
        _holds(fsaops_subject, "others", problems)

    def test_hook_balances_reference_counts(
        self, fsaops_subject: Subject, fsaops_world: World
    ) -> None:
        """Reference counts balance on both pages (KERNEL-SPEC §1, §5, §6).

        Old page: the isolation reference only (1).  New page: allocation +
        page-tree slot + buffers.
        """
        self._needs_moving_hook(fsaops_subject)
        call = self._call(fsaops_world, PageSpec(dirty=True))
        _holds(fsaops_subject, "refs", promises.hook_references_balanced(call))

    def test_hook_unmaps_a_mapped_page(self, fsaops_subject: Subject, fsaops_world: World) -> None:
        """A mapped page is unmapped and moves; its counts balance (KERNEL-SPEC §5.2-3)."""
        self._needs_moving_hook(fsaops_subject)
        call = self._call(fsaops_world, PageSpec(mapped=True))
        problems = promises.hook_unmapped(call) or promises.hook_references_balanced(call)
        _holds(fsaops_subject, "unmap", problems)

    def test_hook_eagain_with_an_extra_reference_leaves_the_old_page_as_it_was(
        self, fsaops_subject: Subject, fsaops_world: World
    ) -> None:
        """An extra reference: ``-EAGAIN``, both pages unchanged (KERNEL-SPEC §5.1, §5.4)."""
        self._needs_moving_hook(fsaops_subject)
        _holds(
            fsaops_subject,
            "eagain",
            self._untouched_problems(fsaops_subject, fsaops_world, PageSpec(pinned=1, dirty=True)),
        )

    def test_hook_eagain_without_a_mapping_leaves_the_old_page_as_it_was(
        self, fsaops_subject: Subject, fsaops_world: World
    ) -> None:
        """No mapping: ``-EAGAIN``, both pages unchanged (KERNEL-SPEC §7, §5.1).

        The page was truncated after isolation (``buffer_migrate_page`` step 1,
        ``migrate_page_remove_references`` step 1).
        """
        self._needs_moving_hook(fsaops_subject)
        _holds(
            fsaops_subject,
            "eagain",
            self._untouched_problems(fsaops_subject, fsaops_world, PageSpec(truncated=True)),
        )

    def test_hook_eagain_in_a_vm_locked_area_leaves_the_old_page_as_it_was(
        self, fsaops_subject: Subject, fsaops_world: World
    ) -> None:
        """Mapped in a ``VM_LOCKED`` area: ``-EAGAIN``, nothing changed (KERNEL-SPEC §5.2-3, §9.5).

        ``try_to_unmap`` refuses, so V4 answers ``-EAGAIN``; from 2.6.16
        (``semantics``) the answer is ``-EPERM``, a permanent failure
        (:func:`~fsaops.testing.harness.vm_locked_errno`).  Both pages are
        unchanged and the pte is still in place.
        """
        self._needs_moving_hook(fsaops_subject)
        errno = vm_locked_errno(fsaops_subject.semantics)
        spec = PageSpec(mlocked=True)
        problems = self._untouched_problems(fsaops_subject, fsaops_world, spec, errno)
        _holds(fsaops_subject, "eagain" if errno == -EAGAIN else "eperm", problems)

    def test_hook_refusal_is_permanent_and_leaves_the_old_page_as_it_was(
        self, fsaops_subject: Subject, fsaops_world: World
    ) -> None:
        """A refusal is permanent and changes nothing (KERNEL-SPEC §7 fail_migrate_page, §3).

        A refusing table fails every page with a negative errno other than
        ``-EAGAIN`` (the §3 error table), clean, dirty or pinned.
        """
        self._needs_hook(fsaops_subject)
        self._needs(fsaops_subject, "refuses", "this table's migratepage does not refuse pages")
        problems = []
        for seed, spec in enumerate((PageSpec(), PageSpec(dirty=True), PageSpec(pinned=1))):
            call = self._call(fsaops_world, _with_seed(spec, seed))
            problems.extend(promises.hook_left_untouched(call, refused=True))
        _holds(fsaops_subject, "refused", problems)

    def test_property_hook_keeps_every_promise_on_random_pages(
        self, fsaops_subject: Subject
    ) -> None:
        """Random page states keep every hook promise (KERNEL-SPEC §5, §6, §7).

        The result is 0 or a negative errno, and every promise that applies
        to the state holds.  Needs Hypothesis.
        """
        self._needs_hook(fsaops_subject)
        _needs_hypothesis()
        import hypothesis

        from fsaops.testing import strategies

        subject = fsaops_subject

        writes = subject.table.prepare_write is not None

        @_property_settings(type(self).max_examples)
        @hypothesis.given(
            spec=strategies.page_specs(subject.capabilities, for_hook=True, writes=writes)
        )
        def prop(spec: PageSpec) -> None:
            world = World(subject)
            call = world.call_migratepage(world.make_page(spec))
            broken = promises.check_hook_call(subject, call)
            assert not broken, "\n".join(
                promises.report(key, problems, semantics=subject.semantics) + f"\n  (page {spec})"
                for key, problems in broken.items()
            )

        prop()

    # -- the engine level -------------------------------------------------------------------------

    def _engine(self, world: World, specs: tuple[PageSpec, ...], *, quiet: bool = False) -> None:
        """Migrate pages built as ``specs``, check each, settle, check the machine.

        With ``quiet``, also fail when migrating wrote any page although the
        table has ``migratepage``.
        """
        prepared = [world.make_page(spec) for spec in specs]
        fallback = world.subject.has("no_migratepage")
        judge = functools.partial(_judge, world.subject)
        sizes = file_sizes(world.kernel)
        with _no_bug(world.subject), world.watching_migratepage(judge) as calls:
            run = world.migrate(
                rounds=type(self).engine_rounds if fallback else 1,
                settle_ticks=type(self).settle_ticks,
            )
        problems: list[str] = []
        for item in prepared:
            problems.extend(promises.check_engine_page(world, run, item))
        writes = world.oracle.io(world.kernel).since(run.io_before)
        if quiet and not fallback and (writes.writepage or writes.pageout or writes.pswpout):
            problems.append(
                f"migrate_pages made {writes.describe()} to move a dirty page although "
                f"{world.table.name} has migratepage"
            )
        _holds(world.subject, "engine", problems)
        _holds(world.subject, "size", promises.sizes_kept(sizes, "migrate_pages"))
        world.settle(run)
        _holds(world.subject, "machine", promises.check_after_settle(world))
        _calls_hold(world.subject, calls)

    def test_engine_moves_a_clean_page(self, fsaops_subject: Subject, fsaops_world: World) -> None:
        """``migrate_pages`` moves a clean page (KERNEL-SPEC §3, §9.1-3).

        It lands on ``moved``; the new page is on the LRU with the contents,
        flags and slot; the counts balance; the machine's invariants hold
        afterwards.  A refusing table puts it on ``failed`` instead.
        """
        self._needs_pages(fsaops_subject)
        self._engine(fsaops_world, (PageSpec(flags=PG.referenced),))

    def test_engine_moves_a_dirty_page(self, fsaops_subject: Subject, fsaops_world: World) -> None:
        """A dirty page moves and keeps its data (KERNEL-SPEC §3 steps 9-10, §6.3).

        With a ``migratepage`` nothing is written; without one the fallback
        writes the page out first.
        """
        self._needs_pages(fsaops_subject)
        self._engine(fsaops_world, (PageSpec(dirty=True),), quiet=True)

    def test_engine_moves_a_page_dirty_only_in_its_pte(
        self, fsaops_subject: Subject, fsaops_world: World
    ) -> None:
        """A page written through a mapping moves, and its write survives (KERNEL-SPEC §5.2, §6.3).

        After migration, writeback and a drop of the page cache, the disk
        (or swap) must hold the write: a dirty bit lost on the way loses it.
        """
        self._needs_pages(fsaops_subject)
        self._engine(fsaops_world, (PageSpec(pte_dirty=True),))

    def test_engine_moves_a_page_two_processes_map(
        self, fsaops_subject: Subject, fsaops_world: World
    ) -> None:
        """A page of a file two processes map moves; each still reads it (KERNEL-SPEC §5.2, §9).

        ``try_to_unmap`` clears both ptes, so the page's count is what
        ``migrate_page_remove_references`` expects once it has.  A table that
        counts on one mapping (``page_count == 2 + !!page_mapped``, taken
        before the unmap) refuses the page in every pass and leaves it on
        ``from``.  A clean and a dirty such page migrate together.
        """
        self._needs_pages(fsaops_subject)
        self._needs_files(fsaops_subject)
        self._engine(
            fsaops_world, (PageSpec(shared=True), PageSpec(shared=True, dirty=True, seed=1))
        )

    def test_engine_waits_for_writeback(self, fsaops_subject: Subject, fsaops_world: World) -> None:
        """A page under writeback is skipped in pass 0, waited on later (KERNEL-SPEC §3 step 4)."""
        self._needs_pages(fsaops_subject)
        self._needs(fsaops_subject, "writeback", "pages of this table are never under writeback")
        self._engine(fsaops_world, (PageSpec(writeback=True),))

    def test_engine_waits_for_a_page_lock_another_task_holds(
        self, fsaops_subject: Subject, fsaops_world: World
    ) -> None:
        """A page locked by another task is waited on from pass 3 (KERNEL-SPEC §3 step 3).

        Passes 0-2 only try the lock and skip the page; then it moves.
        """
        self._needs_pages(fsaops_subject)
        self._engine(fsaops_world, (PageSpec(locked_for=6),))

    def test_engine_waits_for_a_buffer_lock_another_task_holds(
        self, fsaops_subject: Subject, fsaops_world: World
    ) -> None:
        """A page whose last buffer another task holds locked moves whole (KERNEL-SPEC §7 step 4).

        ``buffer_migrate_page`` sleeps on each buffer's lock before it moves
        the buffers, so the page moves with its own ring and its data once
        the I/O ends.  A table that backs out with ``-EAGAIN`` after moving
        the page-tree slot loses the page; one that moves a buffer it could
        not lock, or gives the new page a copy of it, leaves that buffer's
        I/O on the frame the migration frees.  A page of another file
        migrates with it: one that sleeps on the lock while it holds that
        file's ``tree_lock`` or ``private_lock`` (spinlocks) is a kernel bug.
        """
        self._needs_pages(fsaops_subject)
        self._needs(fsaops_subject, "buffers", "pages of this table carry no buffer heads")
        spec = PageSpec(dirty=True, buffer_locked_for=6)
        if not World(fsaops_subject).make_page(PageSpec(dirty=True)).page.flags & PG.private:
            spec = attrs.evolve(spec, out_of_line=True)  # buffers only out of line (ext2 nobh)
        self._engine(fsaops_world, (spec, PageSpec()))

    def test_engine_moves_a_dirty_page_it_refused_at_first(
        self, fsaops_subject: Subject, fsaops_world: World
    ) -> None:
        """A page pinned for a moment is refused, then moved whole later (KERNEL-SPEC §3, §5.1).

        Another task lets go of its reference after a few ticks: the first
        ``migratepage`` call answers ``-EAGAIN``, a later one moves the
        page.  One that remembers the refusal and does less the second time
        (moves the page clean, forgets its buffers) loses it.
        """
        self._needs_moving_hook(fsaops_subject)
        self._engine(fsaops_world, (PageSpec(dirty=True, pinned_for=2), PageSpec(pinned_for=3)))

    def test_engine_leaves_a_pinned_page_on_from(
        self, fsaops_subject: Subject, fsaops_world: World
    ) -> None:
        """A pinned page stays on ``from`` as it was (KERNEL-SPEC §3 step 11, §5.1).

        An extra reference gets ``-EAGAIN`` in every pass; ``migrate_pages``
        counts the page as a retry.
        """
        self._needs_pages(fsaops_subject)
        self._engine(fsaops_world, (PageSpec(pinned=1),))

    def test_engine_leaves_a_page_in_a_vm_locked_area_on_from(
        self, fsaops_subject: Subject, fsaops_world: World
    ) -> None:
        """A page in a ``VM_LOCKED`` area stays on ``from``, still mapped (KERNEL-SPEC §9.5).

        V4 answers ``-EAGAIN`` until the passes run out.  From 2.6.16
        (``semantics``) the answer is ``-EPERM``, so the page goes to
        ``failed`` at once, as it was and still mapped (KERNEL-SPEC §3).
        """
        self._needs_pages(fsaops_subject)
        self._engine(fsaops_world, (PageSpec(mlocked=True),))

    def test_engine_moves_a_mapped_page_and_its_process_still_sees_the_data(
        self, fsaops_subject: Subject, fsaops_world: World
    ) -> None:
        """A mapped page moves and its process still sees the data (KERNEL-SPEC §5.2, §9.4)."""
        self._needs_pages(fsaops_subject)
        self._engine(fsaops_world, (PageSpec(mapped=True),))

    def test_engine_moves_whole_files_and_touches_no_other_page(
        self, fsaops_subject: Subject, fsaops_world: World
    ) -> None:
        """Neighbouring pages move together, each on its own (KERNEL-SPEC §3, §9.2).

        Two files of four pages (one clean, one dirty; for the swap cache,
        two areas of anonymous memory) migrate in one call.  Right after
        it every page is where the oracle says it must be and every
        invariant of the machine holds, and every page reads back; then the
        files are written back and their cache dropped, and every page must
        read back from disk (:func:`~fsaops.testing.promises.check_on_disk`:
        a buffer mapped to the wrong block, or a delayed allocation lost on
        the way, shows there).  A ``migratepage`` that touches a
        page other than the two it was given (a reference taken on the
        next page, a slot rewritten), or a file's size, fails here.
        """
        self._needs_pages(fsaops_subject)
        world = fsaops_world
        pages: list[Page] = []
        if world.sb is None:
            for _ in range(2):
                area = world.anon(4)
                pages += [area.mm.ptes[area.start + i].page for i in range(4)]  # type: ignore[misc]
        else:
            for clean in (True, False):
                inode = world.file(world.sb, 4, clean=clean)
                pages += inode.i_mapping.pages()
        self._engine_on_disk(world, pages)

    def test_engine_moves_pages_of_two_mounts_at_different_block_sizes(
        self, fsaops_subject: Subject, fsaops_world: World
    ) -> None:
        """Two mounts at different block sizes: their pages move in one call (KERNEL-SPEC §7, §9).

        The suite's machine mounts the type once; a second mount follows at
        another block size the type takes (the largest below the page size,
        so that both mounts' pages have several buffers where the type
        allows, else the page size), and a clean and a dirty file of four
        pages on each migrate together, then are written back and read
        from disk.  A table must
        take what it knows of a page's blocks from the page's own
        superblock: one that keeps the block size in state every mount
        shares (a module global its ``fill_super`` sets, the last mount's
        or the first's) puts the other mount's buffers at the wrong
        offsets, which no test on a machine of one mount can show.
        """
        subject = fsaops_subject
        self._needs_pages(subject)
        self._needs_files(subject)
        world = fsaops_world
        self._needs_two_block_sizes(subject, world)
        others = self._other_block_sizes(subject, world)
        # Several buffers a page on both mounts where the type allows, so that an
        # offset worked out from the other mount's block size is wrong on either.
        several = [size for size in others if size < world.page_size]
        self._two_mounts(world, max(several or others))

    def test_engine_moves_pages_of_two_mounts_of_one_block_size(
        self, fsaops_subject: Subject, fsaops_world: World
    ) -> None:
        """Two mounts at the suite's block size: their pages move in one call (KERNEL-SPEC §7, §9).

        As :meth:`test_engine_moves_pages_of_two_mounts_at_different_block_sizes`,
        with the second mount at the same block size, so that it runs for a
        type of one block size too, and state that tells mounts apart by
        their block size alone is no help: a table that keeps a mount's
        device, or anything else of one mount, where every mount shares it
        puts the other mount's pages wrong.
        """
        subject = fsaops_subject
        self._needs_pages(subject)
        self._needs_files(subject)
        world = fsaops_world
        assert world.sb is not None
        self._two_mounts(world, world.sb.s_blocksize)

    def _two_mounts(self, world: World, block_size: int) -> None:
        """Mount the type again at ``block_size``; move files of both mounts, read them from disk.

        A clean and a dirty file of four pages on each mount, in one call.
        """
        subject = world.subject
        assert world.sb is not None
        second = world.mount(subject.fstype, subject.mode, block_size=block_size, name="second")
        pages: list[Page] = []
        for sb in (world.sb, second):
            for clean in (True, False):
                pages += world.file(sb, 4, clean=clean).i_mapping.pages()
        self._engine_on_disk(world, pages)

    def _engine_on_disk(self, world: World, pages: list[Page]) -> None:
        """Migrate ``pages`` in one call, check them and the machine, then read them from disk."""
        fallback = world.subject.has("no_migratepage")
        judge = functools.partial(_judge, world.subject)
        sizes = file_sizes(world.kernel)
        with _no_bug(world.subject), world.watching_migratepage(judge) as calls:
            run = world.migrate(
                pages,
                rounds=type(self).engine_rounds if fallback else 1,
                settle_ticks=type(self).settle_ticks,
            )
        _holds(world.subject, "engine", run.problems)
        _holds(world.subject, "size", promises.sizes_kept(sizes, "migrate_pages"))
        world.settle(run)
        _holds(world.subject, "machine", promises.check_after_settle(world))
        if world.sb is not None:
            _holds(world.subject, "machine", promises.check_on_disk(world))
        _calls_hold(world.subject, calls)

    def test_engine_moves_pages_far_into_a_file(
        self, fsaops_subject: Subject, fsaops_world: World
    ) -> None:
        """Pages far into large files move together and read back (KERNEL-SPEC §3, §9).

        Pages past ext2's direct and indirect blocks (:func:`far_indices`;
        the page past 4 GiB is ``test_hook_moves_pages_far_into_a_file``'s),
        mapped, dirty, and dirty only in a pte and the page its file ends
        inside, migrate in one call; each lands where it must, every call
        of ``migratepage`` keeps every promise, and each reads back after
        writeback.
        """
        self._needs_pages(fsaops_subject)
        self._needs_files(fsaops_subject)
        far = far_indices(fsaops_world.page_size.bit_length() - 1)
        specs = (
            PageSpec(index=far[1], mapped=True),
            PageSpec(index=far[2], dirty=True, seed=1),
            PageSpec(index=far[3], pte_dirty=True, tail=True, seed=2),
        )
        self._engine(fsaops_world, specs, quiet=True)

    def test_engine_puts_permanent_failures_on_failed(
        self, fsaops_subject: Subject, fsaops_world: World
    ) -> None:
        """A permanent error sends the page to ``failed`` (KERNEL-SPEC §3 step 11, §7).

        The page is unchanged and the unused new page stays on ``to``.
        """
        self._needs_pages(fsaops_subject)
        self._needs(fsaops_subject, "refuses", "this table never fails a page for good")
        specs = (PageSpec(), PageSpec(dirty=True, seed=1), PageSpec(mapped=True, seed=2))
        self._engine(fsaops_world, specs)

    def test_property_engine_keeps_every_promise_on_random_workloads(
        self, fsaops_subject: Subject
    ) -> None:
        """Random workloads through ``migrate_pages`` keep every promise (KERNEL-SPEC §3, §9).

        Every page ends on the right list in the right state, and the machine
        stays consistent.  Needs Hypothesis.
        """
        self._needs_pages(fsaops_subject)
        _needs_hypothesis()
        import hypothesis

        from fsaops.testing import strategies

        subject = fsaops_subject

        writes = subject.table.prepare_write is not None

        @_property_settings(type(self).max_examples)
        @hypothesis.given(specs=strategies.workloads(subject.capabilities, writes=writes))
        def prop(specs: list[PageSpec]) -> None:
            self._engine(World(subject), tuple(specs))

        prop()

    # -- pages whose blocks are out of line ----------------------------------------------------

    def test_engine_moves_a_page_whose_blocks_are_out_of_line(
        self, fsaops_subject: Subject, fsaops_world: World
    ) -> None:
        """A page whose blocks do not follow on on the disk moves whole (KERNEL-SPEC §7, §9.3).

        ``mpage_readpage`` reads such a page through buffer heads
        (``block_read_full_page``: the page is "confused"), and writeback
        writes it through them, so a table that attaches no buffers to its
        other pages (ext2 ``nobh``) meets them here.  A ``migratepage`` that
        assumes none (expects no ``PG_private`` reference, leaves the ring
        on the old page) leaks the old page and loses the buffers.  A clean
        and a dirty such page migrate, at every block size the type takes
        that puts several blocks in a page.
        """
        self._needs_pages(fsaops_subject)
        if fsaops_subject.has("swap_cache"):
            pytest.skip(
                f"capability 'swap_cache': {fsaops_subject.describe()} serves the swap cache, "
                "whose pages have no blocks"
            )
        self._needs_several_buffers(fsaops_subject, fsaops_world)
        specs = (PageSpec(out_of_line=True), PageSpec(out_of_line=True, dirty=True, seed=1))
        for _where, machine in self._ring_worlds(fsaops_subject, fsaops_world, several=True):
            self._engine(machine, specs, quiet=True)


@contextlib.contextmanager
def _no_bug(subject: Subject, where: str = "") -> Iterator[None]:
    """A ``BUG()`` reached under the code under test is a broken promise, in kernel terms."""
    try:
        yield
    except KernelBug as exc:
        problem = f"{where}{type(exc).__name__}: {exc}"
        pytest.fail(promises.report("bug", [problem], semantics=subject.semantics), pytrace=False)


_SLOT_INDICES: Final = (3, 64)
"""The page indices the slot promise is checked at: one in the page tree's first radix-tree
node, and the first that needs a second level (the kernel's nodes hold 64 slots)."""


def _smallest_block_size(fstype: FileSystemType) -> int:
    """The block size the suite mounts with when none is named: the smallest the type takes.

    It puts the most buffer heads in a page, so the promises about the
    ring of buffers have a ring to check.
    """
    return min(fstype.block_sizes)


def _needs_hypothesis() -> None:
    """Skip the test when Hypothesis is not installed."""
    pytest.importorskip(
        "hypothesis", reason="the property tests need Hypothesis (pip install fsaops[testing])"
    )


def _property_settings(max_examples: int) -> hypothesis.settings:
    """The settings of the suite's property tests: repeatable, no database, no deadline."""
    import hypothesis

    return hypothesis.settings(
        max_examples=max_examples,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(hypothesis.HealthCheck),
        phases=[p for p in hypothesis.Phase if p.name != "explain"],
    )


KIT_CLASSES.append(MigratepageConformance)  # its tests run with the process's ends refused
