"""Which schedules to run: every one up to *k* preemptions, or PCT's random ones.

Every schedule runs in a child process forked from the machine built once
(:class:`~fsaops.explore.setup.ExploredWorld`), so each starts from the same
state and whatever it does is thrown away with the child; the child sends
back its trace: at every scheduling point, the task that reached it, the
runnable tasks with the pages each one's next step touches, and the one
chosen.

**Systematic** (:func:`explore_dfs`): the schedule with no preemption runs
first.  From each schedule's trace, every other choice at every point of
it that keeps the number of preemptions within the bound is a new schedule
to run (the choices up to that point, that choice, then no preemption),
taken in order of preemptions, fewest first (CHESS's iterative context
bounding), so the first failing schedule found has the fewest preemptions
any failing schedule has.  A *preemption* is a switch away from a task
that could have gone on; a switch when it blocks or ends is free.  Two
cheap reductions keep equivalent schedules from running twice: a
preemption in front of a step that touches none of the pages the other
task ever touches is the same as the one at the next point, so it is not
tried; and a schedule whose choices so far are, page by page, the same
steps in the same order as a schedule already run or queued (with no more
preemptions) is not run again: steps on different pages commute.  The
bounded space is *exhausted* when every schedule so generated has run.
Both reductions read a step's pages from its lock or page: state a table
keeps across pages (a buffer every page shares) is in no step's pages, so
with them a schedule that races through it may never run.  Without them
(``reduce=False``) every schedule within the bound runs, and exhausted
means that no schedule with at most *k* preemptions was left out.

**Randomized** (:func:`explore_pct`): PCT (probabilistic concurrency
testing) gives every task a random priority and lowers the running task's
priority at *d* - 1 random steps; the highest-priority runnable task
always runs.  A bug of depth *d* is found by one schedule with probability
at least 1 / (n k^(d-1)) for n tasks and k steps.
"""

from __future__ import annotations

import contextlib
import marshal
import os
import random
import select
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Final

from fsaops.aops import MEMBERS, TYPE_HOOKS
from fsaops.debug import broken_fields_said
from fsaops.errors import (
    INTERRUPTS,
    CannotStart,
    FsaopsError,
    cannot_start,
    describe_exception,
    forget_deferred_signals,
    signals_deferred,
)
from fsaops.explore.lockdep import LockOrder
from fsaops.explore.run import SCHEDULE_SECONDS, RunResult, execute
from fsaops.explore.runtime import ScheduleDiverged, XTask, default_policy
from fsaops.process import PLUGIN_THREADS, REAL_EXIT, REAL_FORK, adopt, refused_in, shed_memory
from fsaops.status import Status

if TYPE_CHECKING:
    from fsaops.explore.runtime import Policy
    from fsaops.explore.setup import ExploredWorld

__all__ = [
    "LARGE_SPACE",
    "LARGE_WORK",
    "Deviations",
    "Large",
    "PctPolicy",
    "ThreadsAtFork",
    "Trace",
    "deviations",
    "explore_dfs",
    "explore_pct",
    "fork_run",
    "plugin_threads",
    "preemptions",
]

Trace = list[tuple[int, int, tuple[int, ...], tuple[int, ...]]]
"""One ``(current, chosen, runnable, masks)`` per scheduling point (see the controller)."""

GRACE: Final = 10.0
"""Seconds a child may take beyond the schedule's own limit before it is killed."""

LARGE_SPACE: Final = 5_000
"""Schedules run and queued in one systematic search past which it says it is large.

An exhausted search runs every schedule it queues, so this is never
reached by a search of fewer schedules: the largest run of the built-in
tables at the default bounds (a ``bh-lock`` of ext3's journalled pages)
takes about 2,200 under V4 and about 4,400 under 2.6.17.
"""

LARGE_WORK: Final = 2_000_000
"""Schedules run and queued, times the points of the longest schedule, past which a search is large.

The number of schedules alone says nothing of a search whose schedules
are long (a ``migratepage`` that takes and drops a lock a thousand times
a page): a few hundred of them cost what tens of thousands of a built-in
table's do, and they are known to be long from the first one.  The
largest run of the built-in tables at the default bounds, on any
semantics (a ``bh-lock`` of ext3's journalled pages under 2.6.17: about
4,400 schedules of at most 154 points), comes to about 680,000.
"""


# -- policies -------------------------------------------------------------------------


class Deviations:
    """A policy that makes the given choices at the given points and none elsewhere.

    ``choices`` maps a point's number to the task chosen there; everywhere
    else the default (no preemption) applies.  A schedule is replayed from
    the places where it differs from the default: that is what a replay
    string records.
    """

    def __init__(self, choices: dict[int, int], *, exact: bool = False) -> None:
        self.choices = choices
        self.exact = exact

    def __call__(self, j: int, current: XTask | None, enabled: list[XTask]) -> XTask:
        """The task to run at point ``j``.

        Raises:
            ScheduleDiverged: with ``exact``, the task chosen at ``j`` cannot
                run there (the code took other paths than when the schedule
                was recorded); without it, the default applies instead.
        """
        tid = self.choices.get(j)
        if tid is not None:
            for task in enabled:
                if task.tid == tid:
                    return task
            if self.exact:
                raise ScheduleDiverged(
                    f"the schedule does not replay: at point {j} the recorded task {tid} "
                    f"cannot run (runnable: {', '.join(t.name for t in enabled)})"
                )
        return default_policy(j, current, enabled)


class PctPolicy:
    """PCT's scheduler (Burckhardt et al., ASPLOS 2010) for one schedule.

    Args:
        seed: this schedule's random seed.
        depth: the bug depth *d*: *d* - 1 priority change points.
        steps: how many points a schedule has (*k*), as measured.
    """

    def __init__(self, seed: int, depth: int, steps: int) -> None:
        self.rng = random.Random(seed)
        # More change points than a schedule has steps change nothing more:
        # a deeper bound is the same search (and a huge one would not fit).
        self.depth = min(max(depth, 1), max(steps, 1) + 1)
        points = range(1, max(steps, self.depth) + 1)
        picked = self.rng.sample(points, min(self.depth - 1, len(points)))
        self.changes = {point: self.depth - 1 - i for i, point in enumerate(sorted(picked))}
        self.priority: dict[int, float] = {}

    def __call__(self, j: int, current: XTask | None, enabled: list[XTask]) -> XTask:
        """The runnable task of highest priority, after lowering it at a change point."""
        priority = self.priority
        for task in enabled:
            if task.tid not in priority:
                priority[task.tid] = self.depth + self.rng.random()
        best = max(enabled, key=lambda t: priority[t.tid])
        low = self.changes.get(j)
        if low is not None:
            priority[best.tid] = low
            best = max(enabled, key=lambda t: priority[t.tid])
        return best


def preemptions(trace: Trace) -> int:
    """How many switches of a schedule left a task that could have gone on."""
    return sum(1 for cur, chosen, enabled, _ in trace if cur in enabled and chosen != cur)


def deviations(trace: Trace) -> dict[int, int]:
    """The points where a schedule's choice differs from the default policy's, and the choice."""
    out = {}
    for j, (cur, chosen, enabled, _) in enumerate(trace):
        default = cur if cur in enabled else min(enabled)
        if chosen != default:
            out[j] = chosen
    return out


# -- running one schedule ------------------------------------------------------------------


class ThreadsAtFork(FsaopsError):
    """Plugin code runs a thread of its own, and the explorer cannot fork safely past it.

    Each schedule runs in a forked copy of this process, which has only the
    thread that forked: a lock another thread held at that moment stays
    held in the copy for ever, and a schedule that wants it never ends.
    """


def plugin_threads(xworld: ExploredWorld) -> list[str]:
    """Threads other than this one that plugin code of the explored machine may have started.

    A thread counts when it started while plugin code ran here (a plugin's
    import or hook, the machine's build: :data:`fsaops.process.PLUGIN_THREADS`;
    a pool's worker, a timer), or when the function it runs comes from the
    package of a member of the explored table, of its filesystem type or of
    a loaded plugin (a thread a plugin module started when something
    imported it before the loader ran).  A test runner's threads hold none
    of a schedule's locks.  Each as ``NAME (module.function)``.
    """
    others = [t for t in threading.enumerate() if t is not threading.current_thread()]
    if not others:
        return []
    packages = _plugin_packages(xworld)
    found = []
    for thread in others:
        package = _package(thread)
        if thread in PLUGIN_THREADS or (package in packages and package != "fsaops"):
            found.append(_described(thread))
    return found


def _function(thread: threading.Thread) -> object:
    """What ``thread`` runs: its target, or its class's own ``run``."""
    target = getattr(thread, "_target", None)
    if target is None and type(thread).run is not threading.Thread.run:
        target = type(thread).run
    return target


def _package(thread: threading.Thread) -> str | None:
    """The top-level package of the function ``thread`` runs (``None``: not known)."""
    module = getattr(_function(thread), "__module__", None)
    return module.partition(".")[0] if isinstance(module, str) else None


def _described(thread: threading.Thread) -> str:
    target = _function(thread)
    module = getattr(target, "__module__", None) or "?"
    name = getattr(target, "__qualname__", None) or type(target).__name__
    return f"{thread.name} ({module}.{name})"


def _plugin_packages(xworld: ExploredWorld) -> set[str]:
    packages: set[str] = set()
    functions: list[object] = [getattr(xworld.table, m, None) for m in MEMBERS]
    functions += [getattr(xworld.fstype, hook, None) for hook in TYPE_HOOKS]
    for fn in functions:
        module = getattr(fn, "__module__", None)
        if isinstance(module, str):
            packages.add(module.partition(".")[0])
    registry = xworld.world.kernel.registry
    if registry is not None:
        packages.update(p.value.partition(":")[0].partition(".")[0] for p in registry.plugins)
    packages.discard("fsaops")  # the core's own threads hold none of a schedule's locks
    return packages


def fork_run(
    xworld: ExploredWorld,
    *,
    forced: Sequence[int] = (),
    policy: Callable[[], Policy | None] = lambda: None,
    record: bool = False,
    timeout: float = SCHEDULE_SECONDS,
) -> RunResult:
    """Run one schedule in a forked child of this process; returns what it came to.

    ``policy`` is called in the child to make the policy.  A child that
    does not answer within ``timeout`` (and a grace period) is killed, and
    that is the schedule's failure.

    Raises:
        ThreadsAtFork: plugin code runs a thread of its own (:func:`plugin_threads`).
        CannotStart: the system refused the pipe, the process or a task's
            thread (a limit on processes or open files, memory).
    """
    threads = plugin_threads(xworld)
    if threads:
        raise ThreadsAtFork(
            "fsaops explore runs each schedule in a forked copy of this process, which "
            f"keeps only the thread that forks; plugin code runs {', '.join(threads)}: a "
            "lock it holds at the fork would never be let go in the copy, and the schedule "
            "would hang. Explore the table without that thread (work that runs beside the "
            "engine belongs in a kernel task: Kernel.new_task)"
        )
    threads_at_fork = [
        _described(t)
        for t in threading.enumerate()
        if t is not threading.current_thread() and (t in PLUGIN_THREADS or _package(t) != "fsaops")
    ]
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            if stream is not None:
                stream.flush()
    try:
        rfd, wfd = os.pipe()
    except OSError as exc:
        raise cannot_start("a pipe to the process that runs a schedule", exc) from None
    # Ctrl-C and SIGTERM wait while the process forks: a handler that raised
    # inside fork()'s own after-fork callbacks would see its exception
    # dropped as unraisable, and the search go on as if nothing came.  The
    # mask holds them off this thread; one the system gives another thread
    # (a signal is the process's) still has its handler run here, maybe in
    # those callbacks: the handler then defers it to the block's end.
    blocked = _block_interrupts()
    with signals_deferred():
        try:
            pid = REAL_FORK()
        except BaseException as exc:
            os.close(rfd)
            os.close(wfd)
            if blocked is not None:
                signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
            if isinstance(exc, OSError):
                raise cannot_start("the process that runs a schedule", exc) from None
            raise
        if pid == 0:  # pragma: no cover - the child
            forget_deferred_signals()
        elif blocked is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)  # one that came is raised here
    if pid == 0:  # pragma: no cover - the child (coverage does not follow forks)
        os.close(rfd)
        adopt()
        try:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not the parent's handler
            if hasattr(signal, "SIGHUP"):
                signal.signal(signal.SIGHUP, signal.SIG_DFL)
            if blocked is not None:
                signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
            done = execute(
                xworld, forced=tuple(forced), policy=policy(), record=record, timeout=timeout
            )
            refused = refused_in("during the schedule")
            data = marshal.dumps(done if refused is None else {"error": refused})
        except CannotStart as exc:  # a thread for a task: the environment's limit
            data = marshal.dumps({"cannot start": str(exc)})
        except BaseException as exc:
            said = describe_exception(exc)
            with contextlib.suppress(Exception):
                said += broken_fields_said(xworld.world.kernel)
            data = marshal.dumps({"error": said})
        try:
            view = memoryview(data)
            while view:
                written = os.write(wfd, view)
                view = view[written:]
        finally:
            REAL_EXIT(0)
    os.close(wfd)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout + GRACE
    killed = False
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                os.kill(pid, signal.SIGKILL)
                killed = True
                break
            ready, _, _ = select.select([rfd], [], [], left)
            if not ready:
                continue
            chunk = os.read(rfd, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
    except BaseException:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
        raise
    finally:
        os.close(rfd)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
    if killed:
        stopped = _broken(
            f"the schedule did not end within {timeout + GRACE:g} s (stopped)"
            + _threads_hint(threads_at_fork)
        )
        stopped["killed"] = True
        return stopped
    try:
        result: RunResult = marshal.loads(b"".join(chunks))
    except (EOFError, ValueError, TypeError):
        return _broken("the process running the schedule died without an answer")
    if "cannot start" in result:
        raise CannotStart(result["cannot start"])
    if "error" in result:
        return _broken(f"the schedule could not run: {result['error']}")
    if result.get("outcome") == "too long" and threads_at_fork:
        hint = _threads_hint(threads_at_fork)
        result["problems"] = [(status, problem + hint) for status, problem in result["problems"]]
    # The spinlock orders a schedule that passed made hold for the schedules forked
    # after it (lockdep); a failing one ends the search, and is run again as it ran.
    if not result["problems"]:
        xworld.lock_orders.extend(LockOrder.from_list(item) for item in result.get("orders", ()))
    return result


def _threads_hint(threads: Sequence[str]) -> str:
    """What to suspect of a schedule that never ended, when other threads ran at the fork."""
    if not threads:
        return ""
    listed = ", ".join(threads[:5]) + (f" and {len(threads) - 5} more" if len(threads) > 5 else "")
    return (
        f"; {len(threads)} other thread(s) ran when its process forked ({listed}): "
        "a lock one of them held stays held there, so the hang may be theirs"
    )


def _block_interrupts() -> set[int | signal.Signals] | None:
    """Block ``SIGINT`` and ``SIGTERM`` in this thread; the mask before (``None``: cannot)."""
    if not hasattr(signal, "pthread_sigmask"):  # pragma: no cover - not a POSIX system
        return None
    return signal.pthread_sigmask(signal.SIG_BLOCK, set(INTERRUPTS))


def _broken(problem: str) -> RunResult:
    return {
        "trace": [],
        "names": [],
        "keys": [],
        "footprints": [],
        "outcome": "error",
        "problems": [(Status.KERNEL_BUG.value, problem)],
        "reasons": [],
        "labels": [],
        "seconds": 0.0,
    }


# -- systematic ------------------------------------------------------------------------------


class Large:
    """What a systematic search that grew large (:data:`LARGE_SPACE`, :data:`LARGE_WORK`) knows.

    Attributes:
        schedules: schedules run so far.
        queued: schedules queued to run (more come as they run).
        bound: the preemption bound.
        steps: the points of its longest schedule so far.
        tasks: the tasks of that schedule, I/O completions included.
        own_io: of those, the I/O the migration task submitted itself (a
            ``migratepage`` that writes pages out): each is a task of its own.
    """

    __slots__ = ("bound", "own_io", "queued", "schedules", "steps", "tasks")

    def __init__(
        self, schedules: int, queued: int, bound: int, steps: int, tasks: int, own_io: int
    ) -> None:
        self.schedules = schedules
        self.queued = queued
        self.bound = bound
        self.steps = steps
        self.tasks = tasks
        self.own_io = own_io


class Found:
    """What a search came to.

    Attributes:
        schedules: schedules run.
        exhausted: every schedule the systematic search generated within
            the bound ran (with its reductions, one of each set of schedules
            that differ only in the order of steps on different pages).
        failure: the first failing schedule's result and its choices, or ``None``.
        reasons: why the migration gave pages up, as the engine said, with
            the number of schedules each reason came up in.
        seconds: wall time of the search.
    """

    def __init__(self) -> None:
        self.schedules = 0
        self.exhausted = False
        self.failure: tuple[RunResult, dict[int, int]] | None = None
        self.reasons: dict[str, int] = {}
        self.seconds = 0.0
        self.steps = 0

    def add(self, result: RunResult, forced: Sequence[int] = ()) -> bool:
        """Count a schedule; True when it failed (and is the one kept).

        ``forced``: the choices the schedule was run with, which make its
        replay when it came back without a trace (its process was killed).
        """
        self.schedules += 1
        self.steps = max(self.steps, len(result["trace"]))
        for why in result["reasons"]:
            self.reasons[why] = self.reasons.get(why, 0) + 1
        if result["problems"] and self.failure is None:
            trace = result["trace"]
            choices = deviations(trace) if trace else dict(enumerate(forced))
            self.failure = (result, choices)
            return True
        return False


class _Hasher:
    """Incremental fingerprints of schedule prefixes, up to commuting steps on different pages.

    Two prefixes get the same fingerprint when every task made the same
    number of steps and, page by page, the steps touching that page came in
    the same order: then they reach the same state.
    """

    __slots__ = ("chains", "counts", "keys", "nbits")

    def __init__(self, keys: Sequence[str], nbits: int) -> None:
        self.keys = keys
        self.nbits = nbits
        self.chains = [0] * nbits
        self.counts: dict[str, int] = {}

    def copy(self) -> _Hasher:
        other = _Hasher.__new__(_Hasher)
        other.keys = self.keys
        other.nbits = self.nbits
        other.chains = list(self.chains)
        other.counts = dict(self.counts)
        return other

    def step(self, tid: int, mask: int) -> None:
        key = self.keys[tid] if tid < len(self.keys) else str(tid)
        n = self.counts.get(key, 0) + 1
        self.counts[key] = n
        chains = self.chains
        bit = 0
        while mask:
            if mask & 1:
                chains[bit] = hash((chains[bit], key, n))
            mask >>= 1
            bit += 1

    def fingerprint(self) -> int:
        return hash((tuple(self.chains), tuple(sorted(self.counts.items()))))

    def peek(self, tid: int, mask: int) -> int:
        other = self.copy()
        other.step(tid, mask)
        return other.fingerprint()


def explore_dfs(
    xworld: ExploredWorld,
    *,
    preemptions_bound: int,
    max_schedules: int | None = None,
    reduce: bool = True,
    run: Callable[[Sequence[int]], RunResult] | None = None,
    progress: Callable[[int], object] | None = None,
    large: Callable[[Large], object] | None = None,
) -> Found:
    """Every schedule with at most ``preemptions_bound`` preemptions (see the module).

    ``large`` is called once, when the schedules run and queued first
    number more than :data:`LARGE_SPACE`, or they times the points of the
    longest schedule so far come to more than :data:`LARGE_WORK` (far more
    than any built-in table's: a search of long schedules says so from its
    first schedules), with what makes the space large: the search goes on.

    With ``reduce`` (the default) schedules equivalent to one already run
    or queued (steps on different pages taken to commute) are not run
    again, which is sound only for state that steps label with their pages;
    without it every schedule within the bound runs.  Stops at the first failing
    schedule (one with the fewest preemptions any failing schedule has), or
    after ``max_schedules`` schedules (then not exhausted).
    """
    if run is None:
        shed_memory()
    runner = run or (lambda forced: fork_run(xworld, forced=forced))
    nbits = xworld.pages.count
    found = Found()
    start = time.perf_counter()
    exhausted = True
    # levels[c]: prefixes (forced choices) to run whose schedule has c preemptions;
    # made as they are needed, so a bound far beyond any schedule's length costs nothing.
    levels: dict[int, list[tuple[int, ...]]] = {0: [()]}
    seen: dict[tuple[int, int], int] = {}
    first: RunResult | None = None
    told = large is None
    for forced in _pending(levels):
        if max_schedules is not None and found.schedules >= max_schedules:
            exhausted = False
            break
        result = runner(forced)
        if first is None:
            first = result
        if progress is not None:
            progress(found.schedules + 1)
        if found.add(result, forced):
            exhausted = False
            break
        _branch(result, forced, levels, seen, nbits, preemptions_bound, reduce)
        if not told:
            queued = sum(len(stack) for stack in levels.values())
            space = found.schedules + queued
            if space > LARGE_SPACE or space * found.steps > LARGE_WORK:
                told = True
                assert large is not None
                large(_large(first, found.schedules, queued, preemptions_bound, found.steps))
    found.exhausted = exhausted
    found.seconds = time.perf_counter() - start
    return found


def _large(first: RunResult, schedules: int, queued: int, bound: int, steps: int) -> Large:
    """What a search that grew large knows of itself: its tasks from its first schedule."""
    keys: list[str] = first["keys"]
    own_io = sum(1 for key in keys if key.startswith("m."))
    return Large(schedules, queued, bound, max(steps, len(first["trace"])), len(keys), own_io)


def _pending(levels: dict[int, list[tuple[int, ...]]]) -> Iterator[tuple[int, ...]]:
    """The queued prefixes, fewest preemptions first (depth first within a level)."""
    while True:
        for cost in sorted(levels):
            stack = levels[cost]
            if stack:
                yield stack.pop()
                break
        else:
            return


def _branch(
    result: RunResult,
    forced: tuple[int, ...],
    levels: dict[int, list[tuple[int, ...]]],
    seen: dict[tuple[int, int], int],
    nbits: int,
    bound: int,
    reduce: bool,
) -> None:
    """Queue every other choice at every point after ``forced`` that stays within the bound.

    With ``reduce``: a preemption in front of a step that touches none of
    the pages the other task may ever touch is left to the next point (the
    two orders are the same schedule), and a prefix that is, page by page,
    the same steps in the same order as one already queued or run with no
    more preemptions is not queued again.
    """
    trace: Trace = result["trace"]
    footprints: list[int] = result["footprints"]
    hasher = _Hasher(result["keys"], nbits)
    spent = 0
    choices: list[int] = []
    new: list[tuple[int, tuple[int, ...]]] = []
    for j, (cur, chosen, enabled, masks) in enumerate(trace):
        running = cur in enabled
        if j >= len(forced):
            cur_mask = masks[enabled.index(cur)] if running else 0
            for alt, mask in zip(enabled, masks, strict=True):
                if alt == chosen:
                    continue
                preempt = running and alt != cur
                cost = spent + preempt
                if cost > bound:
                    continue
                if reduce:
                    if preempt and not cur_mask & _footprint(footprints, alt):
                        continue  # the step in front commutes with all alt does: try it later
                    key = (hasher.peek(alt, mask), alt)
                    if seen.get(key, bound + 1) <= cost:
                        continue
                    seen[key] = cost
                new.append((cost, (*choices, alt)))
        spent += running and chosen != cur
        if reduce:
            hasher.step(chosen, masks[enabled.index(chosen)])
            key = (hasher.fingerprint(), chosen)
            if seen.get(key, bound + 1) > spent:
                seen[key] = spent
        choices.append(chosen)
    # Deepest first within a level, so the stack runs depth first.
    for cost, prefix in sorted(new, key=lambda item: len(item[1])):
        levels.setdefault(cost, []).append(prefix)


def _footprint(footprints: list[int], tid: int) -> int:
    return footprints[tid] if tid < len(footprints) else -1


# -- randomized -------------------------------------------------------------------------------


def explore_pct(
    xworld: ExploredWorld,
    *,
    depth: int,
    schedules: int,
    seed: int,
    run: Callable[[Callable[[], Policy | None]], RunResult] | None = None,
    progress: Callable[[int], object] | None = None,
) -> Found:
    """``schedules`` PCT schedules of depth ``depth`` from ``seed``; stops at the first failure."""
    if run is None:
        shed_memory()
    runner = run or (lambda policy: fork_run(xworld, policy=policy))
    found = Found()
    start = time.perf_counter()
    first = runner(lambda: None)
    steps = max(len(first["trace"]), 1)
    rng = random.Random(seed)
    found.add(first)
    if progress is not None:
        progress(1)
    while found.failure is None and found.schedules < schedules:
        sub = rng.getrandbits(64)

        def make(sub: int = sub) -> Policy:
            return PctPolicy(sub, depth, steps)

        result = runner(make)
        found.add(result)
        if progress is not None:
            progress(found.schedules)
    found.seconds = time.perf_counter() - start
    return found
