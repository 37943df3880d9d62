"""Kernel semantics: which release of the migration code a :class:`~fsaops.kernel.Kernel` runs.

The engine models the V4 series (18 Nov 2005, on 2.6.15-rc1-mm2, the
series that added ``migratepage``).  The code changed in the four months
that followed; each :class:`Semantics` is one release's set of those
changes, named in ``[kernel] semantics`` (``fsaops migrate --semantics``):

``"v4"`` (the default)
    The series as posted: ``try_to_unmap`` up to ten times,
    ``migrate_page_remove_references`` returns 1 for a mismatch,
    ``remove_from_swap`` called by ``migrate_pages`` and doing nothing for
    an unmapped page (so migrated anonymous pages keep swap ptes),
    ``private_lock`` held around the buffer locks, one new page per
    ``migrate_pages`` call in ``migrate_pages_to`` (a stray ``;``).
``"2.6.16"``
    One ``try_to_unmap(page, 1)`` (11 Jan 2006), ``swap_page`` ignoring
    references too (9 Feb 2006), chunks of 257 new pages, the last
    allocated used first, and pages queued in address order (2.6.16-rc5),
    ``remove_from_swap`` in ``migrate_page`` giving anonymous pages real
    ptes and taking them out of the swap cache (2.6.16-rc6), no
    ``private_lock`` in ``buffer_migrate_page``, a capable caller of
    ``migrate_pages(2)`` moving every page (2.6.16-rc6); and, merged after
    2.6.16-rc6 (the 2.6.16 announcement's shortlog lists them),
    ``VM_LOCKED`` is ``-EPERM`` with ``-Exx`` return codes throughout
    (24 Feb 2006) and moving pages needs a swap device (14 Mar 2006).
``"2.6.17"``
    The same migration code, moved to ``mm/migrate.c`` ("page migration
    reorg", 15 Mar 2006), with one change: the generic fallback, for a
    table without ``migratepage``, unmaps the page before it looks at
    ``PageDirty`` ("page migration: Fix fallback behavior for dirty pages",
    28 Apr 2006).  In every other branch the model has it behaves as
    2.6.16.

The semantics are chosen once, when the kernel is built.  The engine
(:func:`~fsaops.migrate.migrate_pages`) binds what it needs once per call;
a helper whose behaviour differs looks the semantics up from the page's
kernel only in the branch that differs (an unmapped page skips the unmap
step, so it never asks).  The differing steps are functions here
(:attr:`Semantics.unmap`, :attr:`Semantics.remove_from_swap`,
:attr:`Semantics.may_queue`), so a release is a choice of functions, not a
test made on every page.

Every release here is the ``migratepage`` generation of the protocol
(:attr:`Semantics.generation`): two-list ``migrate_pages``, a swap entry
for every anonymous page.  The modern generation (``migrate_folio``,
migration entries, a ``get_new_folio`` callback instead of a ``to`` list)
would join as another generation with its own engine and helpers, named
here; the callers dispatch on the generation once per call, and the
per-page path of the ``migratepage`` releases stays as it is.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from errno import EAGAIN
from types import MappingProxyType
from typing import TYPE_CHECKING, Final, Literal

import attrs

from fsaops.errors import ConfigError
from fsaops.mempolicy import MIGRATE_CHUNK_SIZE, movable_v4, not_shared
from fsaops.migrate import (
    migrate_page,
    migrate_page_copy,
    migrate_page_remove_references,
    unmap_eperm,
    unmap_v4,
)
from fsaops.rmap import remove_from_swap_2616, remove_from_swap_v4

if TYPE_CHECKING:
    from fsaops.page import Page
    from fsaops.rmap import Mm

__all__ = [
    "DEFAULT_SEMANTICS",
    "LINUX_2_6_16",
    "LINUX_2_6_17",
    "SEMANTICS",
    "V4",
    "Semantics",
    "get_semantics",
    "semantics_names",
]


@attrs.frozen
class Semantics:
    """One release of the migration code: what it does where the releases differ.

    Attributes:
        name: the name ``[kernel] semantics`` takes (``"v4"``, ``"2.6.16"``, ...).
        title: the release in words, with its date.
        generation: the protocol generation: ``"migratepage"`` (2005-2006:
            ``migrate_pages(from, to, moved, failed)``, ``aops->migratepage``,
            anonymous pages through the swap cache).
        unmap: the unmap step of ``migrate_page_remove_references`` for a
            mapped page (KERNEL-SPEC §5.2): :func:`~fsaops.migrate.unmap_v4`
            (up to ten ``try_to_unmap`` calls),
            :func:`~fsaops.migrate.unmap_ignore_refs` (one call that
            ignores young ptes: the code of January 2006 to 2.6.16-rc6) or
            :func:`~fsaops.migrate.unmap_eperm` (the same call, and
            ``VM_LOCKED`` is ``-EPERM``: 2.6.16).  Returns 0 when the page is
            unmapped, else what ``migrate_page_remove_references`` returns.
        refs_mismatch: what ``migrate_page_remove_references`` returns when
            the references or the slot do not match: 1 (V3 to 2.6.16-rc6)
            or ``-EAGAIN`` (2.6.16) (§5.1).
        remove_from_swap: the release's ``remove_from_swap``:
            :func:`~fsaops.rmap.remove_from_swap_v4` (nothing for an
            unmapped page) or :func:`~fsaops.rmap.remove_from_swap_2616`
            (real ptes, and the page leaves the swap cache) (§7.4, §9.4).
        remove_from_swap_caller: who calls it: ``"migrate_pages"`` (V4: on a
            page that failed and on a new page that was used) or
            ``"migrate_page"`` (V8 and later: on the new page, after the copy).
        buffer_private_lock: whether ``buffer_migrate_page`` takes the
            mapping's ``private_lock`` around locking and unlocking the
            buffers (V4 to V8; not in the 2.6.16-rc6 copy) (§7.3).
        swap_page_ignore_refs: whether ``swap_page`` unmaps with
            ``try_to_unmap(page, 1)`` (from 9 Feb 2006) rather than
            ``try_to_unmap(page)`` (§4.1).
        chunk_pages: new pages ``migrate_pages_to`` allocates per
            ``migrate_pages`` call: 1 (a stray ``;`` after the chunk test,
            V2 to 2.6.16-rc4) or 257 (the test is ``> 256``) (§8).
        new_pages_at_tail: whether ``migrate_pages_to`` adds new pages at the
            tail of its list (from 2.6.16-rc5), so ``migrate_pages``, which
            takes them from the tail, uses the last allocated first; before,
            at the head, so the first allocated first (§8).
        queue_at_tail: whether ``migrate_page_add`` queues pages at the tail
            of the list (from 2.6.16-rc5), so they migrate in address order;
            before, at the head, so in reverse order (§8).
        swap_needed: whether ``check_range`` refuses to move pages when
            there is no free swap (``-ENODEV``; 14 Mar 2006, 2.6.16).  V4
            moves what it can, and each anonymous page fails ``add_to_swap``.
        capable_moves_all: whether ``migrate_pages(2)`` moves every page
            for a capable caller (``MPOL_MF_MOVE_ALL``; "Fix
            sys_migrate_pages: Move all pages when invoked from root", 24 Feb
            2006, 2.6.16-rc6); before, ``MPOL_MF_MOVE`` for every caller.
        fallback_unmaps: whether the generic fallback unmaps the page first
            (``try_to_unmap(page, 1)``: ``SWAP_FAIL`` is ``-EPERM``, a page
            still mapped ``-EAGAIN``), so that a dirty bit held only in a pte
            reaches the page before ``PageDirty`` decides whether to write it
            ("page migration: Fix fallback behavior for dirty pages",
            2.6.17-rc3, and 2.6.16.17); before, a page dirty only in its ptes
            looked clean and moved by ``migrate_page``.
        may_queue: which pages ``migrate_page_add`` queues without
            ``MPOL_MF_MOVE_ALL``: :func:`~fsaops.mempolicy.movable_v4` (no
            mapping, anonymous, writably mapped, or mapped by this process
            only) or :func:`~fsaops.mempolicy.not_shared`
            (``page_mapcount == 1``) (§8).
        migrate_page: the generation's ``migrate_page`` helper (what
            ``buffer_migrate_page`` delegates a page without buffers to).
        migrate_page_copy: the generation's ``migrate_page_copy``.
        migrate_page_remove_references: the generation's
            ``migrate_page_remove_references``.
    """

    name: str
    title: str
    generation: Literal["migratepage"]
    unmap: Callable[[Page], int]
    refs_mismatch: int
    remove_from_swap: Callable[[Page], None]
    remove_from_swap_caller: Literal["migrate_pages", "migrate_page"]
    buffer_private_lock: bool
    swap_page_ignore_refs: bool
    chunk_pages: int
    new_pages_at_tail: bool
    queue_at_tail: bool
    swap_needed: bool
    capable_moves_all: bool
    fallback_unmaps: bool
    may_queue: Callable[[Mm, Page], bool]
    migrate_page: Callable[[Page, Page], int]
    migrate_page_copy: Callable[[Page, Page], None]
    migrate_page_remove_references: Callable[[Page, Page, int], int]

    def __repr__(self) -> str:
        return f"<Semantics {self.name}: {self.title}>"


_MIGRATEPAGE_HELPERS: Final = {
    "generation": "migratepage",
    "migrate_page": migrate_page,
    "migrate_page_copy": migrate_page_copy,
    "migrate_page_remove_references": migrate_page_remove_references,
}

V4: Final = Semantics(
    name="v4",
    title="the V4 series on 2.6.15-rc1-mm2 (18 Nov 2005)",
    unmap=unmap_v4,
    refs_mismatch=1,
    remove_from_swap=remove_from_swap_v4,
    remove_from_swap_caller="migrate_pages",
    buffer_private_lock=True,
    swap_page_ignore_refs=False,
    chunk_pages=1,
    new_pages_at_tail=False,
    queue_at_tail=False,
    swap_needed=False,
    capable_moves_all=False,
    fallback_unmaps=False,
    may_queue=movable_v4,
    **_MIGRATEPAGE_HELPERS,  # type: ignore[arg-type]
)
"""The V4 series, as posted on 18 Nov 2005 (the default)."""

LINUX_2_6_16: Final = Semantics(
    name="2.6.16",
    title="Linux 2.6.16 (20 Mar 2006)",
    unmap=unmap_eperm,
    refs_mismatch=-EAGAIN,
    remove_from_swap=remove_from_swap_2616,
    remove_from_swap_caller="migrate_page",
    buffer_private_lock=False,
    swap_page_ignore_refs=True,
    chunk_pages=MIGRATE_CHUNK_SIZE + 1,
    new_pages_at_tail=True,
    queue_at_tail=True,
    swap_needed=True,
    capable_moves_all=True,
    fallback_unmaps=False,
    may_queue=not_shared,
    **_MIGRATEPAGE_HELPERS,  # type: ignore[arg-type]
)
"""Linux 2.6.16: the fixes of January to March 2006, ``-EPERM`` for ``VM_LOCKED`` among them."""

LINUX_2_6_17: Final = attrs.evolve(
    LINUX_2_6_16,
    name="2.6.17",
    title="Linux 2.6.17 (18 Jun 2006: 2.6.16's migration code in mm/migrate.c)",
    fallback_unmaps=True,
)
"""Linux 2.6.17: 2.6.16's migration code in ``mm/migrate.c``, and the generic
fallback unmaps a page before it looks at ``PageDirty``."""

SEMANTICS: Final[Mapping[str, Semantics]] = MappingProxyType(
    {s.name: s for s in (V4, LINUX_2_6_16, LINUX_2_6_17)}
)
"""Every release by name, oldest first."""

DEFAULT_SEMANTICS: Final = V4.name
"""What a kernel runs unless told otherwise: ``"v4"``."""


def semantics_names() -> str:
    """The valid names, for messages: ``v4, 2.6.16, 2.6.17``."""
    return ", ".join(SEMANTICS)


def get_semantics(name: str | Semantics) -> Semantics:
    """The release named ``name`` (a :class:`Semantics` is returned as it is).

    Raises:
        ConfigError: no release has that name (the message lists the valid ones).
    """
    if isinstance(name, Semantics):
        return name
    found = SEMANTICS.get(name)
    if found is None:
        raise ConfigError(f"unknown kernel semantics {name!r}: expected one of {semantics_names()}")
    return found
