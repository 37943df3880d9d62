"""Fault injection (``lib/fault-inject.c``, ``failslab`` / ``fail_page_alloc``).

A :class:`FaultInjector` makes chosen operations fail with a given
probability, drawn from its own seeded generator so runs stay
reproducible.  It is armed only while a migration runs, so building the
world is never disturbed.
"""

from __future__ import annotations

import random

import attrs

__all__ = ["FaultInjector"]


@attrs.define
class FaultInjector:
    """Probabilities of injected failures, and counts of those injected.

    Attributes:
        alloc_fail: allocating a page fails (the engine sees ``-ENOMEM``).
        writepage_error: a ``writepage`` fails with ``-EIO`` (the page stays dirty).
        swap_full: getting a swap slot fails as if the device were full.
        seed: seeds the generator.
        armed: faults are injected only while this is true.
    """

    alloc_fail: float = 0.0
    writepage_error: float = 0.0
    swap_full: float = 0.0
    seed: int = 0
    armed: bool = False
    injected: dict[str, int] = attrs.field(factory=dict)
    _rng: random.Random = attrs.field(init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def _fail(self, kind: str, probability: float) -> bool:
        if not self.armed or probability <= 0.0:
            return False
        if self._rng.random() < probability:
            self.injected[kind] = self.injected.get(kind, 0) + 1
            return True
        return False

    def fail_alloc(self) -> bool:
        """Whether this page allocation fails."""
        return self._fail("alloc_fail", self.alloc_fail)

    def fail_writepage(self) -> bool:
        """Whether this ``writepage`` fails with ``-EIO``."""
        return self._fail("writepage_error", self.writepage_error)

    def fail_swap(self) -> bool:
        """Whether this swap-slot allocation fails."""
        return self._fail("swap_full", self.swap_full)
