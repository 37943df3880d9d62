"""fsaops's pytest plugin, registered under ``pytest11``: inert until used.

It loads in every pytest run of anyone who installs fsaops, so at import it
does nothing but register the kit for assertion rewriting and declare its
command-line options; the model, the plugins and Hypothesis are imported
only inside a fixture that a test asks for.  ``pytest -p no:fsaops`` turns
it off.

Options (SQLAlchemy's ``--dburi`` is the model):

``--fsaops-filesystem NAME``
    The filesystem the ``fsaops_*`` fixtures build pages of (default
    ``ext2``), and the one a :class:`~fsaops.testing.conformance.MigratepageConformance`
    subclass without ``filesystem`` tests (no default there: without the
    option such a class fails, saying it names no filesystem).
``--fsaops-mode MODE``
    Its mount mode (default: the type's default mode).
``--fsaops-semantics NAME``
    The release of the migration code (:mod:`fsaops.semantics`: ``v4``,
    ``2.6.16``, ``2.6.17``) the fixtures' kernels run, and the one a suite
    class without ``semantics`` is checked under (default ``v4``).

A test (or a class, or a module) chooses its own table with the marker
``@pytest.mark.fsaops(filesystem="ext3", mode="ordered")``, or by
parametrizing ``fsaops_subject`` indirectly with a ``(filesystem, mode)``
pair; either wins over the options.  A table the fixtures cannot build is an
error, never silently replaced by the default.

Every fixture is named ``fsaops_*``, to stay out of the user's namespace.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from fsaops.process import dispatch_ends

# Before anything imports the suite: plugin authors get pytest's assertion
# diffs from the conformance suite's asserts.
pytest.register_assert_rewrite("fsaops.testing")

# Before conftest files and test modules import the plugins they test: a
# plugin that binds os._exit at its import binds the kit's dispatcher.
dispatch_ends()

if TYPE_CHECKING:
    from collections.abc import Callable

    from fsaops.kernel import Kernel
    from fsaops.mapping import AddressSpace
    from fsaops.oracle import Oracle
    from fsaops.plugins import Registry
    from fsaops.testing.harness import PageSpec, PreparedPage, Subject, World

__all__ = [
    "fsaops_kernel",
    "fsaops_kernel_factory",
    "fsaops_mapping",
    "fsaops_oracle",
    "fsaops_page",
    "fsaops_page_factory",
    "fsaops_registry",
    "fsaops_subject",
    "fsaops_world",
    "pytest_addoption",
]

DEFAULT_FILESYSTEM = "ext2"

DEFAULT_SEMANTICS = "v4"
"""The release the fixtures run without ``--fsaops-semantics``: the model's default
(:data:`fsaops.semantics.DEFAULT_SEMANTICS`), named here so that loading the plugin
imports nothing of the model (only :mod:`fsaops.process`, for :func:`dispatch_ends`)."""


MARKER = (
    "fsaops(filesystem, mode=None, plugin=None, block_size=None): the table the fsaops_* "
    "fixtures of this test, class or module build pages of"
)


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``fsaops`` marker (so ``--strict-markers`` accepts it), and the outcome guard.

    The guard (:mod:`fsaops.testing.outcomes`) fails a test in which table
    code called ``pytest.skip`` or ``pytest.xfail``.

    A ``--fsaops-semantics`` that names no release stops the run with a
    usage error naming the releases (the model is imported only then).

    Raises:
        pytest.UsageError: ``--fsaops-semantics`` names no release.
    """
    config.addinivalue_line("markers", MARKER)
    from fsaops.testing.outcomes import ensure

    ensure(config)  # a skip or xfail that table code raises fails its test
    semantics = config.getoption("fsaops_semantics", default=None)
    if semantics is not None:
        from fsaops.testing.harness import SetupError, check_semantics

        try:
            check_semantics(semantics)
        except SetupError as exc:
            raise pytest.UsageError(f"--fsaops-semantics: {exc}") from exc


def pytest_addoption(parser: pytest.Parser) -> None:
    """Declare ``--fsaops-filesystem``, ``--fsaops-mode`` and ``--fsaops-semantics``."""
    group = parser.getgroup("fsaops", "fsaops testing kit")
    group.addoption(
        "--fsaops-filesystem",
        dest="fsaops_filesystem",
        default=None,
        metavar="NAME",
        help=(
            f"filesystem the fsaops_* fixtures use (default: {DEFAULT_FILESYSTEM}), and the one "
            "MigratepageConformance and MigratepageRaces subclasses without `filesystem` "
            "test (no default: such a class fails, naming no filesystem)"
        ),
    )
    group.addoption(
        "--fsaops-mode",
        dest="fsaops_mode",
        default=None,
        metavar="MODE",
        help="mount mode of --fsaops-filesystem (default: the filesystem's default mode)",
    )
    group.addoption(
        "--fsaops-semantics",
        dest="fsaops_semantics",
        default=None,
        metavar="NAME",
        help=(
            "release of the migration code (v4, 2.6.16, 2.6.17) the fsaops_* fixtures' kernels "
            "run, and the one MigratepageConformance subclasses without `semantics` are checked "
            f"under (default: {DEFAULT_SEMANTICS})"
        ),
    )


@pytest.fixture(scope="session")
def fsaops_registry() -> Registry:
    """Every installed fsaops plugin, loaded once per session (honours ``FSAOPS_PLUGINS``)."""
    from fsaops.plugins import load_plugins

    return load_plugins()


_SUBJECTS: dict[tuple[str, str | None, str | None, int | None, str], Subject] = {}
"""Subjects resolved and probed in this run, by (filesystem, mode, plugin, block size, release)."""


def _wanted(request: pytest.FixtureRequest) -> tuple[str, str | None, str | None, int | None, str]:
    """The table a test asked for: indirect parameter, then marker, then the options."""
    param = getattr(request, "param", None)
    if param is not None:
        where = "indirect parametrization of fsaops_subject"
        if isinstance(param, str):
            return param, None, None, None, where
        if (
            isinstance(param, tuple)
            and len(param) == 2
            and isinstance(param[0], str)
            and (param[1] is None or isinstance(param[1], str))
        ):
            return param[0], param[1], None, None, where
        raise pytest.UsageError(
            f"{request.node.nodeid}: {where} takes a filesystem name or a (filesystem, mode) "
            f"pair, not {param!r}"
        )
    marked = marker_subject(request)
    if marked is not None:
        return (*marked, "@pytest.mark.fsaops")
    name = request.config.getoption("fsaops_filesystem", default=None) or DEFAULT_FILESYSTEM
    mode = request.config.getoption("fsaops_mode", default=None)
    return name, mode, None, None, "--fsaops-filesystem/--fsaops-mode"


def marker_subject(
    request: pytest.FixtureRequest,
) -> tuple[str, str | None, str | None, int | None] | None:
    """The closest ``@pytest.mark.fsaops``'s filesystem, mode, plugin and block size, if any.

    Raises:
        pytest.UsageError: the marker's arguments are not of that shape.
    """
    marker = request.node.get_closest_marker("fsaops")
    if marker is not None:
        where = "@pytest.mark.fsaops"
        kwargs = dict(marker.kwargs)
        args = list(marker.args)
        filesystem = kwargs.pop("filesystem", args.pop(0) if args else None)
        mode = kwargs.pop("mode", args.pop(0) if args else None)
        plugin = kwargs.pop("plugin", None)
        block_size = kwargs.pop("block_size", None)
        if (
            args
            or kwargs
            or not isinstance(filesystem, str)
            or not (mode is None or isinstance(mode, str))
            or not (plugin is None or isinstance(plugin, str))
            or not (block_size is None or type(block_size) is int)
        ):
            raise pytest.UsageError(
                f"{request.node.nodeid}: {where} takes filesystem=NAME and optionally "
                f"mode=MODE, plugin=ENTRY_POINT, block_size=BYTES; got {marker.args!r} "
                f"{marker.kwargs!r}"
            )
        return filesystem, mode, plugin, block_size
    return None


@pytest.fixture
def fsaops_subject(request: pytest.FixtureRequest) -> Subject:
    """The filesystem and mode under test.

    Chosen by indirect parametrization (``("ext3", "ordered")``), else by
    the closest ``@pytest.mark.fsaops(filesystem=..., mode=...)``, else by
    ``--fsaops-filesystem``/``--fsaops-mode`` (default ``ext2``).  Resolved
    through the plugin loader with only that plugin selected; its
    capabilities (buffers, writeback, refuses, no_migratepage, ...) are
    probed.  A table that cannot be had fails the test's setup with the
    reason; it is never replaced by another.
    Its kernels run the release ``--fsaops-semantics`` names (default
    ``v4``).
    """
    import attrs

    from fsaops.testing.harness import SetupError, infer_capabilities, resolve_subject

    name, mode, plugin, block_size, where = _wanted(request)
    semantics = _semantics(request.config)
    key = (name, mode, plugin, block_size, semantics)
    subject = _SUBJECTS.get(key)
    if subject is None:
        try:
            subject = resolve_subject(
                name, mode, plugin=plugin, block_size=block_size, semantics=semantics
            )
            subject = attrs.evolve(subject, capabilities=infer_capabilities(subject))
        except SetupError as exc:
            if where.startswith("--"):
                raise pytest.UsageError(f"{where}: {exc}") from exc
            pytest.fail(f"{where}: {exc}", pytrace=False)
        _SUBJECTS[key] = subject
    return subject


def _semantics(config: pytest.Config) -> str:
    """The release ``--fsaops-semantics`` names, else ``v4``."""
    named = config.getoption("fsaops_semantics", default=None)
    return DEFAULT_SEMANTICS if named is None else str(named)


@pytest.fixture
def fsaops_kernel_factory(
    request: pytest.FixtureRequest, fsaops_registry: Registry
) -> Callable[..., Kernel]:
    """Build small deterministic kernels: ``fsaops_kernel_factory(nodes=2, node_pages=64)``.

    Keyword arguments go to the builder, :class:`~fsaops.world.World`
    (which makes the :class:`~fsaops.Kernel`); the defaults are two
    nodes of 64 pages, seed 0, the session's plugin registry and the
    release ``--fsaops-semantics`` names (``v4`` without it), so two
    kernels built with the same arguments behave the same.
    """
    from fsaops.world import World

    semantics = _semantics(request.config)

    def build(**kwargs: object) -> Kernel:
        options: dict[str, object] = {
            "nodes": 2,
            "node_pages": 64,
            "seed": 0,
            "registry": fsaops_registry,
            "semantics": semantics,
        }
        options.update(kwargs)
        return World(**options).kernel  # type: ignore[arg-type]

    return build


@pytest.fixture
def fsaops_world(fsaops_subject: Subject) -> World:
    """A small machine (two nodes of 64 pages) with the filesystem under test mounted.

    Pages are built on node 0 and new pages come from node 1; see
    :class:`~fsaops.testing.harness.World` for building pages and calling
    ``migratepage`` or ``migrate_pages`` on them.
    """
    from fsaops.testing.harness import World

    return World(fsaops_subject)


@pytest.fixture
def fsaops_kernel(fsaops_world: World) -> Kernel:
    """The kernel of ``fsaops_world`` (the machine the other fixtures build in)."""
    return fsaops_world.kernel


@pytest.fixture
def fsaops_mapping(fsaops_world: World) -> AddressSpace:
    """The address space of a new, empty file on the filesystem under test.

    For the swap cache's table, ``swapper_space``.
    """
    if fsaops_world.sb is None:
        swapper = fsaops_world.kernel.swapper_space
        assert swapper is not None
        return swapper
    return fsaops_world.new_file().i_mapping


@pytest.fixture
def fsaops_page_factory(fsaops_world: World) -> Callable[..., PreparedPage]:
    """Build pages in any state: ``fsaops_page_factory("dirty+mapped")`` or a ``PageSpec``.

    States: clean, dirty, writeback, mapped, pte_dirty (written through the
    mapping), mlocked (in a ``VM_LOCKED`` area), pinned (another task holds
    a reference), locked (another task holds the page lock for a while),
    buffers, nobuffers, truncated, clean_head, tail (the file ends inside
    the page), partial (written in part while not up to date), sparse
    (holes stored into through the mapping).  Pages
    are isolated onto ``fsaops_world.from_`` unless ``isolated=False``.
    Returns a :class:`~fsaops.testing.harness.PreparedPage` (the page, its contents,
    its file or process).
    """

    def build(spec: PageSpec | str | None = None) -> PreparedPage:
        return fsaops_world.make_page(spec)

    return build


@pytest.fixture
def fsaops_page(
    request: pytest.FixtureRequest, fsaops_page_factory: Callable[..., PreparedPage]
) -> PreparedPage:
    """One isolated page of the filesystem under test: clean, or the state given indirectly.

    ``@pytest.mark.parametrize("fsaops_page", ["dirty", "writeback+mapped"], indirect=True)``
    """
    spec = getattr(request, "param", None)
    return fsaops_page_factory(spec)


@pytest.fixture
def fsaops_oracle() -> Oracle:
    """Reads page, buffer, page-tree and page-table state directly, not through the code tested."""
    from fsaops.oracle import Oracle

    return Oracle()
