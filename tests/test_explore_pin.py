"""A swap table that moves a page someone holds: the ``pin`` accessor's read into it catches it.

``pin`` on an anonymous page was a direct I/O that read the page: a table
that ignored the extra reference and moved the page still let the I/O read
the old frame, whole, so every schedule passed.  On an anonymous page the
I/O now reads *into* the page (the process's buffer of an ``O_DIRECT``
read), writing a new version of its data into the frame it was given and
dirtying the page: moved while pinned, the page loses that data.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from errno import EAGAIN

import attrs
import pytest

from fsaops import FileSystemType
from fsaops.explore import explore
from fsaops.explore.api import render_text
from fsaops.explore.setup import TaskSpec
from fsaops.page import PG, Page
from fsaops.plugins import load_plugins


def ignores_extra_references(newpage: Page, page: Page) -> int:
    """``migrate_page``, told to expect every reference the page has: a pin is not seen.

    Otherwise ``migrate_page``: from 2.6.16 the moved page leaves the swap
    cache and gets its ptes back, which the placement proof checks.
    """
    helpers = page.node.kernel.semantics
    rc = helpers.migrate_page_remove_references(newpage, page, page.count - page.mapcount)
    if rc:
        return rc if rc < 0 else -EAGAIN
    helpers.migrate_page_copy(newpage, page)
    if newpage.flags & PG.swapcache and helpers.remove_from_swap_caller == "migrate_page":
        helpers.remove_from_swap(newpage)
    return 0


def _swap(migratepage: Callable[[Page, Page], int] | None = None) -> FileSystemType:
    swap = load_plugins(cli=["swap"]).filesystem("swap")
    if migratepage is None:
        return swap
    modes = {m: attrs.evolve(swap.aops(m), migratepage=migratepage) for m in swap.modes}
    return attrs.evolve(swap, modes=modes)


@pytest.mark.parametrize("semantics", ["v4", "2.6.16"])
@pytest.mark.parametrize("page", [0, 1])
def test_a_swap_table_that_moves_a_pinned_page_loses_what_the_io_wrote(
    semantics: str, page: int
) -> None:
    result = explore(
        _swap(ignores_extra_references),
        tasks=[TaskSpec("pin", page)],
        pages=2,
        semantics=semantics,
    )
    assert result.failures, render_text(result)
    said = [f"{kind}: {problem}" for kind, problem in result.failures[0].problems]
    # The version the I/O wrote is the one after what the page held: it is the one lost.
    lost = [
        (int(m[1]), int(m[2]))
        for line in said
        if line.startswith("data lost: ")
        for m in [re.search(r"reads back generation (\d+), expected (\d+)", line)]
        if m is not None
    ]
    assert lost and all(expected == read + 1 for read, expected in lost), said


@pytest.mark.parametrize("semantics", ["v4", "2.6.16"])
def test_the_swap_table_passes_a_read_into_a_pinned_page(semantics: str) -> None:
    result = explore(_swap(), tasks=[TaskSpec("pin", 0)], pages=1, semantics=semantics)
    assert result.exhausted and not result.failures, render_text(result)
    assert any("an extra reference is held" in reason for reason in result.reasons)


@pytest.mark.parametrize("semantics", ["v4", "2.6.16", "2.6.17"])
def test_a_store_to_a_pinned_page_keeps_what_the_io_wrote(semantics: str) -> None:
    """The process writes to its page while a direct I/O reads into it: both land in one page.

    The pin faults the page in for writing (``get_user_pages(write=1)``)
    and a write fault counts the ptes and swap ptes that reach the page,
    not its references (``can_share_swap_page`` from 2.6.13), so neither
    the pin nor the migration's reference makes the process's store go to
    a copy.  Counting references, the store copied the page from under the
    pin, and the I/O's data went to a frame the process no longer mapped:
    a schedule with no preemption lost it.
    """
    result = explore(
        _swap(),
        tasks=[TaskSpec("mmap-write", 0), TaskSpec("pin", 0)],
        pages=2,
        preemptions=1,
        semantics=semantics,
    )
    assert result.exhausted and not result.failures, render_text(result)


@pytest.mark.long
@pytest.mark.exhaustive
def test_a_store_to_a_pinned_page_keeps_what_the_io_wrote_at_two_preemptions() -> None:
    result = explore(
        _swap(), tasks=[TaskSpec("mmap-write", 0), TaskSpec("pin", 0)], pages=2, preemptions=2
    )
    assert result.exhausted and not result.failures, render_text(result)
