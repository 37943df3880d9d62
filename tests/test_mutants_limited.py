"""The mutation tests' time limit and the child a probe runs in.

A mutant that loops for ever is found by :func:`mutants.limited`'s
:class:`mutants.TimeUp`.  Code on the way that catches a ``BaseException``
and goes on (under the mutant still) must meet the next one, or the test
hangs; and once the block is left, no timer and no handler of its may stay.
:func:`mutants.in_child` runs a probe in a forked copy of the process: its
answer comes back, and nothing else does (memory, state, a process that
will not end).  :func:`mutants.time_limit` gives each mutant a limit measured
on the real code's probe.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable

import pytest

from mutants import TimeUp, in_child, limited, time_limit

TOUCHED: list[str] = []
"""Module state a probe changes in its child."""


def _spin() -> None:
    while True:
        pass


def _spin_catching(caught: list[TimeUp], times: int) -> None:
    """Spin, catching a :class:`TimeUp` ``times - 1`` times and spinning again."""
    while True:
        try:
            _spin()
        except TimeUp as exc:
            caught.append(exc)
            if len(caught) == times:
                raise


def _limited_spin(seconds: float, again: float, spin: Callable[[], object]) -> None:
    with limited(seconds, again=again):
        spin()


def test_a_time_up_caught_is_raised_again_until_the_block_is_left() -> None:
    caught: list[TimeUp] = []
    with pytest.raises(TimeUp, match=r"still running after 0\.05 s"):
        _limited_spin(0.05, 0.05, lambda: _spin_catching(caught, 3))
    assert len(caught) == 3


def test_nothing_of_the_limit_is_left_after_the_block() -> None:
    def mine(signum: int, frame: object) -> None:
        raise AssertionError("not this one")

    before = signal.signal(signal.SIGALRM, mine)
    try:
        with pytest.raises(TimeUp):
            _limited_spin(0.02, 0.02, _spin)
        assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
        assert signal.getsignal(signal.SIGALRM) is mine
        _limited_spin(5, 1, lambda: None)
        assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
        assert signal.getsignal(signal.SIGALRM) is mine
    finally:
        signal.signal(signal.SIGALRM, before)


def _rss_kib() -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def _grows_touches_answers() -> str:
    TOUCHED.append("in the child")
    grown = [object() for _ in range(2_000_000)]  # some 100 MB
    return f"grew by {len(grown)} objects"


def test_a_probe_answers_from_its_child_and_leaves_nothing_else() -> None:
    before = _rss_kib()
    assert in_child(_grows_touches_answers, 30) == "grew by 2000000 objects"
    assert in_child(lambda: None, 30) is None
    assert TOUCHED == []
    assert _rss_kib() - before < 20_000, "the child's memory is not this process's"


def _raises() -> str | None:
    raise RuntimeError("the mutant broke")


def _spins_where_no_time_up_reaches() -> str | None:
    """As a loop in C: the alarm's handler never runs."""
    signal.signal(signal.SIGALRM, signal.SIG_IGN)
    _spin()
    return None


def _ends_the_process() -> str | None:
    os._exit(3)


def test_a_probe_that_raises_hangs_or_ends_its_process_is_found() -> None:
    assert in_child(_raises, 30) == "raised RuntimeError: the mutant broke"
    assert in_child(_spin, 0.1) == "raised TimeUp: still running after 0.1 s"
    assert in_child(_spins_where_no_time_up_reaches, 0.1, grace=0.3) == (
        "raised TimeUp: still running 0.3 s past 0.1 s; killed"
    )
    assert in_child(_ends_the_process, 30) == (
        "the probe's process ended with no answer (wait status 768)"
    )


def _takes(seconds: float, found: str | None = None) -> Callable[[], str | None]:
    def probe() -> str | None:
        time.sleep(seconds)
        return found

    return probe


def test_the_time_limit_is_what_the_real_probe_takes_times_the_factor_within_its_bounds() -> None:
    limit = time_limit(_takes(0.2), factor=4, floor=0, ceiling=30)
    assert 0.8 <= limit < 2.0
    assert time_limit(_takes(0.2), factor=4, floor=3, ceiling=30) == 3
    assert time_limit(_takes(0.2), factor=40, floor=0, ceiling=1.5) == 1.5


def test_a_real_probe_that_finds_something_or_runs_past_the_ceiling_fails() -> None:
    with pytest.raises(AssertionError, match="the code as it is fails its own probe: a bug"):
        time_limit(_takes(0, "a bug"))
    with pytest.raises(TimeUp, match=r"still running after 0\.1 s"):
        time_limit(_takes(5), ceiling=0.1)
