"""Fixtures for the core's own tests."""

from __future__ import annotations

import os

import pytest
from hypothesis import settings

from fsaops.plugins import Registry, load_plugins
from fsaops.testing import Recorder
from fsaops.world import World

BUILTIN = ("ext2", "ext3", "swap", "xfs", "xfs_buftarg")

# The regular suite runs a fixed set of examples, so a run is reproducible;
# `tox -e soak` (FSAOPS_SOAK=1) explores thousands more, at random.
settings.register_profile("default", max_examples=200, derandomize=True, deadline=None)
settings.register_profile("soak", max_examples=5000, deadline=None)
settings.load_profile("soak" if os.environ.get("FSAOPS_SOAK") else "default")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked ``long`` go first, the rest in their order.

    pytest-xdist hands each worker a share of the tests in this order, and an
    idle one takes from the ends of the others' shares: a test of minutes
    left near the end would run there alone, on one core, while the other
    waits.
    """
    items.sort(key=lambda item: item.get_closest_marker("long") is None)


@pytest.fixture(scope="session")
def registry() -> Registry:
    """The built-in plugins, loaded once."""
    return load_plugins(cli=list(BUILTIN))


@pytest.fixture
def recorder() -> Recorder:
    """Keeps every event the engine emits (one ``mm_migrate_page`` per page attempt)."""
    return Recorder()


@pytest.fixture
def world(registry: Registry, recorder: Recorder) -> World:
    """The builder: two nodes of 256 pages, 64 swap slots, the built-in plugins, events recorded."""
    return World(registry=registry, node_pages=256, swap_slots=64, log=recorder.log)
