"""Fixtures for the core's own tests."""

from __future__ import annotations

import pytest

from _world import World
from fsaops.plugins import Registry, load_plugins

BUILTIN = ("ext2", "ext3", "swap", "xfs", "xfs_buftarg")


@pytest.fixture(scope="session")
def registry() -> Registry:
    """The built-in plugins, loaded once."""
    return load_plugins(cli=list(BUILTIN))


@pytest.fixture
def world(registry: Registry) -> World:
    """A two-node machine with swap and the built-in plugins."""
    return World(registry)
