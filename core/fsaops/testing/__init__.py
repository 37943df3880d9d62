"""The testing kit for plugin authors: fixtures, a conformance suite, strategies.

* :class:`MigratepageConformance` (:mod:`fsaops.testing.conformance`): the
  suite a plugin subclasses in a few lines to check its ``migratepage``.
* :class:`~fsaops.testing.harness.World`, :class:`~fsaops.world.PageSpec`, :class:`Subject`
  (:mod:`fsaops.testing.harness`): a small machine and pages in any state.
* :class:`Oracle` (:mod:`fsaops.oracle`): reads state without the code
  under test; :mod:`fsaops.testing.promises` holds the checks.
* :class:`Recorder` (:mod:`fsaops.testing.recorder`): a logger that keeps
  the engine's events, for tests that follow a page through the passes.
* :mod:`fsaops.testing.strategies`: Hypothesis strategies (needs the
  ``testing`` extra).
* :mod:`fsaops.testing.pytest_plugin`: the fixtures, loaded by pytest
  through the ``pytest11`` entry point.

Names are imported on first use, so that loading the pytest plugin, which
imports this package, costs next to nothing.  The plugin registers this
package for assertion rewriting; this module holds no assertion, so it is
itself left alone (PYTEST_DONT_REWRITE), which keeps pytest from warning
that it was imported before it could be rewritten.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fsaops.oracle import Oracle
    from fsaops.testing.conformance import MigratepageConformance
    from fsaops.testing.harness import (
        CAPABILITIES,
        PageSpec,
        PreparedPage,
        SetupError,
        Subject,
        World,
        resolve_subject,
    )
    from fsaops.testing.recorder import Recorder

__all__ = [
    "CAPABILITIES",
    "MigratepageConformance",
    "Oracle",
    "PageSpec",
    "PreparedPage",
    "Recorder",
    "SetupError",
    "Subject",
    "World",
    "resolve_subject",
]

_WHERE: Mapping[str, str] = MappingProxyType(
    {
        "MigratepageConformance": "fsaops.testing.conformance",
        "CAPABILITIES": "fsaops.testing.harness",
        "PageSpec": "fsaops.testing.harness",
        "PreparedPage": "fsaops.testing.harness",
        "SetupError": "fsaops.testing.harness",
        "Subject": "fsaops.testing.harness",
        "World": "fsaops.testing.harness",
        "resolve_subject": "fsaops.testing.harness",
        "Oracle": "fsaops.oracle",
        "Recorder": "fsaops.testing.recorder",
    }
)


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'fsaops.testing' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
