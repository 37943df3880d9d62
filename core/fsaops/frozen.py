"""Read-only mappings for frozen attrs classes.

A frozen attrs class is only as frozen as its fields: a ``dict`` field can
still be changed in place.  :func:`frozen_mapping` is the one converter
every such field uses; it copies the mapping into a read-only view.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

__all__ = ["frozen_mapping", "sorted_mapping"]

# The converters take and give ``Mapping[Any, Any]``: attrs' mypy plugin types
# a field's __init__ argument as its converter's parameter, and cannot bind
# type variables there; the field's own annotation keeps the precise type.


def frozen_mapping(value: Mapping[Any, Any]) -> Mapping[Any, Any]:
    """A read-only copy of ``value``, in its order."""
    return MappingProxyType(dict(value))


def sorted_mapping(value: Mapping[str, Any]) -> Mapping[str, Any]:
    """A read-only copy of ``value``, sorted by key (counts by name in reports)."""
    return MappingProxyType(dict(sorted(value.items())))
