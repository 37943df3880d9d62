"""Distributions that look installed, without installing them.

:func:`write_dist_info` writes what ``pip install`` leaves in a
``site-packages`` folder for a distribution: a ``NAME-VERSION.dist-info``
folder with its ``METADATA`` and ``entry_points.txt``, and, if given, the
distribution's modules.  Put the folder on ``sys.path`` (or ``PYTHONPATH``
for a subprocess) and ``importlib.metadata`` finds the entry points, so the
plugin loader discovers the plugin exactly as it would an installed one.
The project's own tests write hostile plugins this way, and the
documentation build uses it to load the example plugin.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Mapping
from pathlib import Path

__all__ = ["write_dist_info"]


def write_dist_info(
    site: Path,
    name: str,
    entry_points: Mapping[str, Mapping[str, str]],
    *,
    version: str = "0.1",
    modules: Mapping[str, str] | None = None,
) -> Path:
    """Write a distribution's metadata (and modules) into ``site``; returns its dist-info folder.

    Args:
        site: the folder to write into (created if missing).
        name: the distribution's name (``fsaops-thirdfs``).
        entry_points: entry points by group: ``{"fsaops": {"thirdfs": "thirdfs"}}``.
        version: the distribution's version.
        modules: module name to source text (dedented), written as
            ``site/NAME.py``.
    """
    info = site / f"{re.sub(r'[-_.]+', '_', name)}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n", encoding="utf-8"
    )
    lines: list[str] = []
    for group, entries in entry_points.items():
        lines.append(f"[{group}]")
        lines.extend(f"{entry} = {value}" for entry, value in entries.items())
        lines.append("")
    (info / "entry_points.txt").write_text("\n".join(lines), encoding="utf-8")
    for module, code in (modules or {}).items():
        (site / f"{module}.py").write_text(textwrap.dedent(code), encoding="utf-8")
    return info
