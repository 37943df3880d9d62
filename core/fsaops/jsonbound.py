"""JSON text through an encoder plugin code cannot reach.

Plugin code runs in fsaops's process and may rebind ``json.dumps``, a method
of ``json.JSONEncoder`` or a function of ``json.encoder``, at import or
inside a table's ``migratepage``; that changes them for every caller.  This
module executes its own copy of ``json.encoder`` when it is imported,
keeps it out of ``sys.modules``, and writes every JSON text fsaops writes
(the command's output, :meth:`fsaops.report.Report.dumps`, the explorer's
result and replay strings, the data an ``--html`` page embeds) through it:
byte for byte what :func:`json.dumps` writes with the same arguments, whatever
plugin code did since.
"""

from __future__ import annotations

import json
from typing import Final, cast

__all__ = ["ENCODER", "dumps", "json_text"]


def _private_json_encoder() -> type[json.JSONEncoder]:
    """The ``JSONEncoder`` of a fresh copy of ``json.encoder``, kept out of ``sys.modules``."""
    import importlib.util

    try:
        spec = importlib.util.find_spec("json.encoder")
        if spec is not None and spec.loader is not None:
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            return cast("type[json.JSONEncoder]", module.JSONEncoder)
    except Exception:  # no copy to be had: the module as it is now
        pass
    return json.JSONEncoder


ENCODER: Final = _private_json_encoder()
"""The encoder class of the copy, bound when this module is imported."""

_PLAIN: Final = ENCODER()
_SORTED: Final = ENCODER(indent=2, sort_keys=True)
_AS_BUILT: Final = ENCODER(indent=2)


def dumps(
    data: object,
    *,
    indent: int | None = None,
    sort_keys: bool = False,
    separators: tuple[str, str] | None = None,
) -> str:
    """``json.dumps(data, indent=..., sort_keys=..., separators=...)``, through :data:`ENCODER`."""
    if indent is None and not sort_keys and separators is None:
        return _PLAIN.encode(data)
    return ENCODER(indent=indent, sort_keys=sort_keys, separators=separators).encode(data)


def json_text(data: object, *, sort_keys: bool = True) -> str:
    """``data`` as JSON text, indented by two spaces, with a final newline.

    What ``json.dumps(data, sort_keys=sort_keys, indent=2)`` writes, through
    :data:`ENCODER`.
    """
    return (_SORTED if sort_keys else _AS_BUILT).encode(data) + "\n"
