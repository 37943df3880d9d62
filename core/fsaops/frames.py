"""Frame maps: every frame of the source and target nodes, before and after migration.

A :class:`FrameMaps` is a :class:`~fsaops.scenario.RunObserver`: when the
world is built it notes, for every frame of both nodes, the operations
table of the page in it and the page's workload state (``clean``,
``dirty``, ``writeback``, ``mapped``, ``mlocked``, ``locked``, ``pinned``,
``swapout``; for a page the scenario gave none, ``dirty`` or ``clean`` as
its flags say), or that the frame is free; when migration is over, the same
again, the state now being what became of the page (``moved`` into this
frame, ``left`` or ``failed`` in its old one).

Each map keeps the two sequences run-length coded (:func:`run_length`), so
that a node of a million frames whose pages sit in long runs of one file
costs little; the HTML report (:mod:`fsaops.html_report`) draws them.
"""

from __future__ import annotations

import itertools
from collections import Counter
from typing import TYPE_CHECKING, Final

import attrs

from fsaops.config import WorkloadConfig
from fsaops.frozen import frozen_mapping
from fsaops.migrate import table_name
from fsaops.page import PG

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

    from fsaops.memory import Node
    from fsaops.migrate import MigrateStats
    from fsaops.page import Page
    from fsaops.proofs import Placed
    from fsaops.scenario import Scenario

__all__ = [
    "ALPHABET",
    "STATES",
    "FrameMap",
    "FrameMaps",
    "run_length",
    "run_length_decode",
]

FREE: Final = "free"
IN_USE: Final = "in use"
STATES: Final = (
    FREE,
    "clean",
    *WorkloadConfig.STATES,
    "moved",
    "left",
    "failed",
    IN_USE,
)
"""Every state a frame can be shown in; a map codes a state by its place here.

``in use`` is a frame whose page migration did not take on (none in the
scenarios fsaops builds).
"""

OTHER_TABLES: Final = "(other tables)"
"""The name a map gives every table past the last symbol of :data:`ALPHABET`."""

ALPHABET: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz!#$%()*+,-./:;=?@[]^_{|}~"
"""The symbols of the codes: no digits (they count runs), nothing HTML or JSON quotes."""


def run_length(codes: Iterable[int]) -> str:
    """Code a sequence of small integers as symbols of :data:`ALPHABET`, each with its run.

    ``[0, 0, 0, 2, 1, 1]`` is ``"A3CB2"``: a symbol, then how many times it
    repeats when that is more than once.

    Raises:
        ValueError: a code has no symbol (there are ``len(ALPHABET)``).
    """
    parts = []
    for code, run in itertools.groupby(codes):
        if not 0 <= code < len(ALPHABET):
            raise ValueError(f"code {code} has no symbol")
        count = sum(1 for _ in run)
        parts.append(ALPHABET[code] if count == 1 else f"{ALPHABET[code]}{count}")
    return "".join(parts)


def run_length_decode(text: str) -> list[int]:
    """The codes :func:`run_length` coded (what the HTML report's script does)."""
    codes: list[int] = []
    i = 0
    while i < len(text):
        code = ALPHABET.index(text[i])
        j = i + 1
        while j < len(text) and text[j].isdigit():
            j += 1
        codes.extend([code] * (int(text[i + 1 : j]) if j > i + 1 else 1))
        i = j
    return codes


@attrs.frozen
class FrameMap:
    """Every frame of one node at one moment.

    Attributes:
        node: the node.
        when: ``before`` or ``after`` migration.
        role: ``source`` or ``target``.
        start_pfn: the node's first frame.
        frames: how many frames it has.
        tables: the table of each frame's page, run-length coded, as the
            index into :attr:`FrameMaps.tables` (0: a free frame).
        states: the state of each frame, run-length coded, as the index into
            :data:`STATES`.
        counts: frames by (table, state); ``("", "free")`` for free frames.
    """

    node: int
    when: str
    role: str
    start_pfn: int
    frames: int
    tables: str
    states: str
    counts: Mapping[tuple[str, str], int] = attrs.field(converter=frozen_mapping)


class FrameMaps:
    """Takes the frame maps of a run: four of them, the two nodes before and after.

    Attributes:
        tables: the operations tables the maps name, in the order their
            codes number them; the first, ``""``, is no table (a free frame).
        maps: the maps, in the order taken: source before, target before,
            source after, target after.
    """

    def __init__(self) -> None:
        self.tables: list[str] = [""]
        self.maps: list[FrameMap] = []
        self._code: dict[str, int] = {"": 0}

    def built(self, scenario: Scenario) -> None:
        """The nodes as migration finds them: each page's table and workload state."""
        world = scenario.world
        state_of: dict[int, str] = {}
        for state, slots in scenario.states.items():
            for slot in slots:
                page = world.page_of(slot.owner, slot.index)
                if page is not None:
                    state_of[page.pfn] = state
        for role, nid in (("source", scenario.source_node), ("target", scenario.target_node)):
            node = scenario.kernel.nodes[nid]

            def classify(page: Page) -> tuple[str, str]:
                # A page the scenario gave no state is as its filesystem left it.
                given = state_of.get(page.pfn)
                return table_name(page), given or ("dirty" if page.flags & PG.dirty else "clean")

            self.maps.append(self._take(node, "before", role, classify))

    def migrated(
        self, scenario: Scenario, stats: MigrateStats, places: Mapping[int, Placed]
    ) -> None:
        """The nodes once migration is over: moved, left and failed pages in their frames."""
        world = scenario.world
        ended: dict[int, tuple[str, str]] = {}
        for pfn, entry in stats.pending.items():
            ended[pfn] = (entry[0], "left")
        for pfn, entry in stats.failures.items():
            ended[pfn] = (entry[0], "failed")
        for pfn, place in places.items():
            if pfn in ended or pfn in stats.frameless:
                continue
            new = world.page_of(place.record, place.index)
            if new is not None and new.pfn != pfn:
                ended[new.pfn] = (place.table, "moved")

        def classify(page: Page) -> tuple[str, str]:
            return ended.get(page.pfn) or (table_name(page), IN_USE)

        for role, nid in (("source", scenario.source_node), ("target", scenario.target_node)):
            node = scenario.kernel.nodes[nid]
            self.maps.append(self._take(node, "after", role, classify))

    def _new_code(self, table: str) -> int:
        """A code for a table not seen yet; past the last symbol, they share one."""
        last = len(ALPHABET) - 1
        if len(self.tables) < last:
            self.tables.append(table)
            return len(self.tables) - 1
        if len(self.tables) == last:
            self.tables.append(OTHER_TABLES)
        return last

    def _take(
        self, node: Node, when: str, role: str, classify: Callable[[Page], tuple[str, str]]
    ) -> FrameMap:
        code = self._code
        state_code = {state: i for i, state in enumerate(STATES)}
        free = state_code[FREE]
        tables: list[int] = []
        states: list[int] = []
        counts: Counter[tuple[str, str]] = Counter()
        for page in node.frames_made:
            if page.count == 0:
                tables.append(0)
                states.append(free)
                counts["", FREE] += 1
                continue
            table, state = classify(page)
            number = code.get(table)
            if number is None:
                number = code[table] = self._new_code(table)
            tables.append(number)
            states.append(state_code[state])
            counts[table, state] += 1
        unmade = node.unmade  # the frames not made yet were never handed out: free
        if unmade:
            tables.extend([0] * unmade)
            states.extend([free] * unmade)
            counts["", FREE] += unmade
        return FrameMap(
            node=node.nid,
            when=when,
            role=role,
            start_pfn=node.start_pfn,
            frames=node.nr_pages,
            tables=run_length(tables),
            states=run_length(states),
            counts=dict(counts),
        )
