"""Hypothesis strategies for page states, mappings and workloads.

Hypothesis is an optional dependency (the ``testing`` extra); this module
is imported only by code that asks for it, never by ``fsaops.testing``
itself or by the pytest plugin.

* :func:`page_specs` draws a :class:`~fsaops.testing.harness.PageSpec`
  that a subject with the given capabilities can be in: dirty or clean,
  under writeback (only with ``writeback``, and never for a direct hook
  call), mapped, written through the mapping (a dirty pte), in a
  ``VM_LOCKED`` area, mapped by a second process too (a page of a file),
  pinned, locked by another task
  for a while (engine only), truncated (hook only), carrying any of the
  flags ``migrate_page_copy`` carries; at an index near the start of its
  file (0 to 40), or past ext2's direct and indirect blocks (67, 1036,
  16451, in a sparse file: :data:`fsaops.world.SPARSE_FROM`).
* :func:`workloads` draws a list of such pages to migrate together.
* :func:`mappings` draws an installed filesystem, mode and block size as a
  :class:`~fsaops.testing.harness.Subject` with its capabilities probed.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

try:
    from hypothesis import strategies as st
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "fsaops.testing.strategies needs Hypothesis: pip install 'fsaops[testing]'"
    ) from exc

import attrs

from fsaops.page import PG
from fsaops.testing.harness import (
    PageSpec,
    Subject,
    check_semantics,
    far_indices,
    infer_capabilities,
)

if TYPE_CHECKING:
    from fsaops.plugins import Registry

__all__ = ["copied_flags", "mappings", "page_specs", "workloads"]

_FAR = far_indices()[1:-1]
"""Indexes past ext2's direct and indirect blocks, drawn as often as a small one's range.

The page past 4 GiB (:func:`~fsaops.testing.harness.far_indices`' last) is left to the
suite's fixed tests: a file that long takes a million-slot page tree to build and check."""

_COPIED_BITS = tuple(bit for bit, _name in PG.NAMES if bit & PG.COPIED)


def copied_flags() -> st.SearchStrategy[int]:
    """Any combination of the flags ``migrate_page_copy`` carries (``PG.COPIED``)."""
    return st.sets(st.sampled_from(_COPIED_BITS)).map(lambda bits: sum(bits, 0))


def page_specs(
    capabilities: Iterable[str] = (), *, for_hook: bool = False, writes: bool = True
) -> st.SearchStrategy[PageSpec]:
    """Page states a subject with ``capabilities`` can be in.

    With ``for_hook`` only states the engine could hand to ``migratepage``
    as they are (no writeback in flight, no lock held by another task), plus
    truncated pages; otherwise states for ``migrate_pages``.  ``writes``:
    the table takes ``write(2)`` (``prepare_write``), so a page of a
    buffered table may be one written in part while not up to date.
    """
    caps = frozenset(capabilities)
    writeback = "writeback" in caps and not for_hook
    # A page of a buffered table may have none (read by mpage_readpage, or
    # stripped by reclaim): buffer_migrate_page's migrate_page branch.
    buffers = st.sampled_from((None, None, False)) if "buffers" in caps else st.none()
    # File pages may be whole pages of their file (followed by another, or
    # the last), the last one with the file ending inside it (buffers past
    # its end map no block), written in part while not up to date, or holes
    # stored into through a mapping (buffers that map no block hold data).
    shapes = ["whole"]
    files = "swap_cache" not in caps  # anonymous memory is shared only after fork()
    if files:
        shapes.append("tail")
        if "buffers" in caps:
            shapes += ["partial", "sparse"] if writes else ["sparse"]

    @st.composite
    def build(draw: st.DrawFn) -> PageSpec:
        shape = draw(st.sampled_from(shapes))
        partial, sparse = shape == "partial", shape == "sparse"
        truncated = for_hook and not sparse and draw(st.booleans())
        mapped = sparse or (not truncated and not partial and draw(st.booleans()))
        dirty = partial or draw(st.booleans())
        return PageSpec(
            dirty=dirty,
            clean_head=dirty and not partial and draw(st.booleans()),
            writeback=writeback and not truncated and not partial and draw(st.booleans()),
            mapped=mapped,
            pte_dirty=sparse or (mapped and draw(st.booleans())),
            mlocked=mapped and draw(st.booleans()),
            shared=mapped and files and draw(st.booleans()),
            pinned=draw(st.integers(0, 2)),
            pinned_for=0 if for_hook or truncated else draw(st.sampled_from((0, 0, 2, 5))),
            locked_for=0 if for_hook else draw(st.sampled_from((0, 0, 3, 9))),
            flags=draw(copied_flags()) & ~(PG.uptodate if partial else 0),
            truncated=truncated,
            buffers=None if partial or sparse else draw(buffers),
            tail=shape == "tail",
            last=shape != "whole" or draw(st.booleans()),
            partial=partial,
            sparse=sparse,
            index=draw(st.integers(0, 7) | st.integers(8, 40) | st.sampled_from(_FAR)),
            seed=draw(st.integers(0, 2**16)),
        )

    return build()


def workloads(
    capabilities: Iterable[str] = (), *, max_pages: int = 4, writes: bool = True
) -> st.SearchStrategy[list[PageSpec]]:
    """Between one and ``max_pages`` pages to migrate together, each with its own contents."""
    return st.lists(page_specs(capabilities, writes=writes), min_size=1, max_size=max_pages)


def mappings(
    registry: Registry | None = None, *, semantics: str = "v4"
) -> st.SearchStrategy[Subject]:
    """An installed filesystem type, mode and block size, with its capabilities probed.

    Draws from ``registry`` (default: every installed plugin).  Modes that
    keep no page cache are left out; the swap cache's table (the ``swap``
    filesystem) is marked ``swap_cache``.  Each subject is checked under
    ``semantics``, the release of the migration code (:mod:`fsaops.semantics`).

    Raises:
        fsaops.testing.harness.SetupError: ``semantics`` names no release.
    """
    release = check_semantics(semantics)
    if registry is None:
        from fsaops.plugins import load_plugins

        registry = load_plugins()
    choices = [
        (fstype, mode) for fstype, mode, _table in registry.tables() if fstype.has_page_cache(mode)
    ]
    if not choices:
        raise ValueError("no installed filesystem keeps pages in the page cache")

    @st.composite
    def build(draw: st.DrawFn) -> Subject:
        fstype, mode = draw(st.sampled_from(choices))
        block_size = draw(st.sampled_from(sorted(fstype.block_sizes)))
        declared = frozenset({"swap_cache"} if fstype.name == "swap" else ())
        subject = Subject(fstype, mode, declared, block_size, semantics=release)
        return attrs.evolve(subject, capabilities=infer_capabilities(subject))

    return build()
