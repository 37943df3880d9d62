"""fsaops's pytest plugin, registered under ``pytest11``: inert until used.

It loads in every pytest run of anyone who installs fsaops, so at import it
does nothing but register the kit for assertion rewriting and declare two
command-line options; the model, the plugins and Hypothesis are imported
only inside a fixture that a test asks for.  ``pytest -p no:fsaops`` turns
it off.

Options (SQLAlchemy's ``--dburi`` is the model):

``--fsaops-filesystem NAME``
    The filesystem the ``fsaops_*`` fixtures build pages of (default
    ``ext2``), and the one a :class:`~fsaops.testing.conformance.MigratepageConformance`
    subclass without ``filesystem`` tests.
``--fsaops-mode MODE``
    Its mount mode (default: the type's default mode).

Every fixture is named ``fsaops_*``, to stay out of the user's namespace.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

# Before anything imports the suite: plugin authors get pytest's assertion
# diffs from the conformance suite's asserts.
pytest.register_assert_rewrite("fsaops.testing")

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


def pytest_addoption(parser: pytest.Parser) -> None:
    """Declare ``--fsaops-filesystem`` and ``--fsaops-mode``."""
    group = parser.getgroup("fsaops", "fsaops testing kit")
    group.addoption(
        "--fsaops-filesystem",
        dest="fsaops_filesystem",
        default=None,
        metavar="NAME",
        help=(
            "filesystem the fsaops_* fixtures use, and the one MigratepageConformance "
            f"subclasses without `filesystem` test (default: {DEFAULT_FILESYSTEM})"
        ),
    )
    group.addoption(
        "--fsaops-mode",
        dest="fsaops_mode",
        default=None,
        metavar="MODE",
        help="mount mode of --fsaops-filesystem (default: the filesystem's default mode)",
    )


@pytest.fixture(scope="session")
def fsaops_registry() -> Registry:
    """Every installed fsaops plugin, loaded once per session (honours ``FSAOPS_PLUGINS``)."""
    from fsaops.plugins import load_plugins

    return load_plugins()


@pytest.fixture(scope="session")
def fsaops_subject(request: pytest.FixtureRequest) -> Subject:
    """The filesystem and mode under test, from ``--fsaops-filesystem``/``--fsaops-mode``.

    Resolved through the plugin loader with only that plugin selected; its
    capabilities (buffers, writeback, refuses, no_migratepage, ...) are
    probed, and the ``swap`` filesystem is taken as the swap cache's table.
    """
    import attrs

    from fsaops.testing.harness import SetupError, infer_capabilities, resolve_subject

    name = request.config.getoption("fsaops_filesystem", default=None) or DEFAULT_FILESYSTEM
    mode = request.config.getoption("fsaops_mode", default=None)
    try:
        subject = resolve_subject(name, mode, {"swap_cache"} if name == "swap" else ())
        return attrs.evolve(subject, capabilities=infer_capabilities(subject))
    except SetupError as exc:
        raise pytest.UsageError(f"--fsaops-filesystem/--fsaops-mode: {exc}") from exc


@pytest.fixture
def fsaops_kernel_factory(fsaops_registry: Registry) -> Callable[..., Kernel]:
    """Build small deterministic kernels: ``fsaops_kernel_factory(nodes=2, node_pages=64)``.

    Keyword arguments go to the builder, :class:`~fsaops.world.World`
    (which makes the :class:`~fsaops.Kernel`); the defaults are two
    nodes of 64 pages, seed 0 and the session's plugin registry, so two
    kernels built with the same arguments behave the same.
    """
    from fsaops.world import World

    def build(**kwargs: object) -> Kernel:
        options: dict[str, object] = {
            "nodes": 2,
            "node_pages": 64,
            "seed": 0,
            "registry": fsaops_registry,
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

    States: clean, dirty, writeback, mapped, mlocked (in a ``VM_LOCKED``
    area), pinned (another task holds a reference), locked (another task
    holds the page lock for a while), buffers, nobuffers, truncated.  Pages
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
