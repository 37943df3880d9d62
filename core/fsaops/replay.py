"""The replay: which ``migratepage`` call changed a page the read-back found wrong.

A run is deterministic for its seed: the world is built, and migrated, the
same way each time with the same scenario and plugins.  When the read-back
finds pages wrong, :func:`~fsaops.scenario.run_plan` builds the world again
and migrates it with a :class:`ReplayWatch` on its kernel
(:attr:`Kernel.replay <fsaops.kernel.Kernel>`).  Before and after each
``migratepage`` call the watch compares the bytes of the wrong pages that
are in memory (at most :data:`WATCHED_PAGES` of them) with what they must
hold: the first call after which a page that held its data no longer does
is named, with its table, its call number and the page it was handed,
wherever the page it changed lies (another file, far in its own file,
anonymous memory or the swap cache).  A page that went wrong between two
calls (another task, the engine's own fallback) is said to have, and
blames no call.

The replay then reads its own world back: only if the same pages read back
wrong as in the run did the replay reproduce it, and only then are calls
named.  A plugin that does not do the same thing twice (it draws on
``os.urandom``, the clock, or state it kept from the first run) is said
not to have been reproduced; nothing is guessed.

Nothing of the replay is taken on a run whose pages all read back right.
The call named is the replay's: the replay cannot see the run's calls, and
a plugin that spoils the same page with the same bytes in another call the
second time has the replay's named (the line says so).

The replay runs the plugins' code a second time, in the same process and
under the same time limit (and stall watch) as the run, with what the
limit leaves less a share kept for the report
(:data:`~fsaops.scenario.REPLAY_KEEPS`): a replay that runs out of it,
stalls or raises ends alone, and the run keeps its verdict.  Whatever a
plugin does besides moving pages (writes a file, prints) it does again.  The
report, the progress bar and the engine's log are not written by it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import attrs

from fsaops.mapping import AddressSpace
from fsaops.page import PG, Page
from fsaops.world import Area, File, World

__all__ = ["WATCHED_PAGES", "Change", "ReplayWatch"]

WATCHED_PAGES: Final = 20
"""Wrong pages the replay watches (the first the read-back reports)."""


@attrs.frozen
class Change:
    """What the replay saw change a watched page.

    Attributes:
        table: the table whose ``migratepage`` call changed it, or ``None``
            when it changed between two calls (or before the first).
        call: the number of that call among the run's ``migratepage``
            calls, from 1; with ``table`` ``None``, the calls made before
            the change was seen.
        handed: the page the call was handed, as ``pfn 44 (mount0/file1 page 10)``.
        pfn: the frame that held the page it changed.
    """

    table: str | None
    call: int
    handed: str
    pfn: int

    def said(self) -> str:
        """The words a report adds to the wrong page's line."""
        if self.table is None:
            if self.call == 0:
                return "the replay saw it change before the first migratepage call, in no call"
            return (
                f"the replay saw it change after migratepage call {self.call}, between two "
                "calls: no migratepage call changed it"
            )
        return (
            f"the replay saw table {self.table}'s migratepage call {self.call} "
            f"(of {self.handed}) change it, at pfn {self.pfn} ({_IN_THE_REPLAY})"
        )


_IN_THE_REPLAY: Final = (
    "a call of the replay, which read back what the run did; the run's own call is another "
    "only for a plugin that does not do the same thing twice"
)
"""What a named call is: the replay's, not the run's (the replay cannot see the run's calls)."""


def _handed(page: Page) -> str:
    """``pfn 44 (mount0/file1 page 10)``: the page a call was handed."""
    mapping = page.mapping
    if page.flags & PG.swapcache:
        return f"pfn {page.pfn}, swap cache"
    if not isinstance(mapping, AddressSpace):
        return f"pfn {page.pfn}"
    if mapping.anon:
        return f"pfn {page.pfn}, anonymous memory"
    return f"pfn {page.pfn}, {mapping.name} page {page.index}"


class ReplayWatch:
    """Watches a few pages' bytes around each ``migratepage`` call of a replayed run.

    Args:
        world: the replayed world, built and not yet migrated.
        pages: the pages to watch, as ``(file or area, page index)`` of ``world``.

    Attributes:
        calls: the ``migratepage`` calls made so far.
        changes: for each watched page (by its position in ``pages``), what
            changed it, once seen.
    """

    __slots__ = ("_expected", "_handing", "_pages", "_world", "calls", "changes")

    def __init__(self, world: World, pages: Sequence[tuple[File | Area, int]]) -> None:
        self._world = world
        self._pages = list(pages)
        self._expected: list[tuple[int, bytes] | None] = [None] * len(self._pages)
        self._handing = ""
        self.calls = 0
        self.changes: dict[int, Change] = {}

    def _holds(self, position: int) -> bool | None:
        """Whether watched page ``position`` holds its data; ``None``: not in memory to say."""
        record, index = self._pages[position]
        world = self._world
        page = world.page_of(record, index)
        if page is None or not page.flags & PG.uptodate:
            return None
        gen = record.gens[index]
        expected = self._expected[position]
        if expected is None or expected[0] != gen:
            expected = (gen, world.expected(record, index))
            self._expected[position] = expected
        node = page.node
        offset = (page.pfn - node.start_pfn) << node.page_shift
        # As bytes: a memoryview compares with bytes item by item, some twenty
        # times slower than copying the frame out and comparing the copy.
        return bytes(node.mem[offset : offset + len(expected[1])]) == expected[1]

    def _look(self, table: str | None) -> None:
        changes = self.changes
        for position in range(len(self._pages)):
            if position in changes or self._holds(position) is not False:
                continue
            found = self._world.page_of(*self._pages[position])
            pfn = -1 if found is None else found.pfn
            handed = "" if table is None else self._handing
            changes[position] = Change(table, self.calls, handed, pfn)

    def start(self) -> None:
        """Look once before migration begins: a page wrong already was changed by no call."""
        self._look(None)

    def before(self, page: Page) -> None:
        """Before a ``migratepage`` call on ``page``: a change seen now came between calls."""
        if len(self.changes) < len(self._pages):
            self._handing = _handed(page)
            self._look(None)

    def after(self, table: str) -> None:
        """After ``table``'s ``migratepage`` call: a change seen now is the call's."""
        self.calls += 1
        if len(self.changes) < len(self._pages):
            self._look(table)

    def done(self) -> bool:
        """Whether a change was seen on every watched page."""
        return len(self.changes) == len(self._pages)
