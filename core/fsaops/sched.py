"""The deterministic clock, other tasks, and sleeping (``kernel/sched.c``, ``wait.h``).

The model runs on a simulated clock counted in ticks.  Other tasks (one
holding a page lock for a while, an I/O completing, kjournald committing)
are events scheduled at a tick.  The migration engine yields once per page
(``cond_resched``), which advances the clock by one tick and runs what is
due.  A task that must sleep (``lock_page``, ``wait_on_page_writeback``,
``lock_buffer``) runs the pending events in time order until what it waits
for has happened; when nothing left can wake it, that is a
:class:`~fsaops.errors.Deadlock`, reported instead of hanging.

Real threads may share one kernel (the stress tests do).  A thread that
finds a page locked by another thread sleeps on the page's hashed wait
queue and is woken by ``unlock_page``, as in the kernel.
"""

from __future__ import annotations

import heapq
import threading
import time
from collections import deque
from typing import TYPE_CHECKING, Any

import attrs

from fsaops.errors import Deadlock
from fsaops.spinlock import held_spinlocks

if TYPE_CHECKING:
    from collections.abc import Callable

    from fsaops.buffer import BufferHead, WriteInFlight
    from fsaops.kernel import Kernel
    from fsaops.page import Page

__all__ = [
    "LIVELOCK_TRIES",
    "PF_SWAPWRITE",
    "SPIN_TRIES",
    "Event",
    "Hold",
    "Scheduler",
    "Task",
    "WaitQueue",
    "whose",
]

PF_SWAPWRITE = 0x00800000
"""Task flag: the task may write to swap even when the queue is congested."""

WAITQUEUE_HASH_BITS = 8
_REAL_WAIT_SLICE = 0.01  # seconds a real thread sleeps before looking again
_REAL_WAIT_LIMIT = 60.0  # seconds a real thread waits before calling it a deadlock

SPIN_TRIES = 100
"""Failed trylocks of one lock in a row, with the clock still, that make a spin.

A task that spins on a bit lock with no ``cond_resched``
(``while (!trylock_buffer(bh));``) gives the clock no tick, and the model's
other tasks (an I/O completing, a hold let go) run only as the clock moves;
on a kernel the holder lets go meanwhile, on another CPU or in an
interrupt.  So each ``SPIN_TRIES`` failed tries are time passing for the
spinner: the clock goes on to the next pending event
(:meth:`Scheduler.tried`).  No path of the model's own tries one lock
that often at one tick.
"""

LIVELOCK_TRIES = 100 * SPIN_TRIES
"""Failed trylocks of one lock in a row, with nothing left to let it go, that are a livelock."""


class Event:
    """A scheduled event; :meth:`cancel` stops it from running."""

    __slots__ = ("args", "cancelled", "daemon", "fn", "when")

    def __init__(
        self, when: int, fn: Callable[..., object], args: tuple[Any, ...], daemon: bool
    ) -> None:
        self.when = when
        self.fn = fn
        self.args = args
        self.daemon = daemon
        self.cancelled = False

    def cancel(self) -> None:
        """Do not run this event."""
        self.cancelled = True

    def __repr__(self) -> str:
        name = getattr(self.fn, "__qualname__", repr(self.fn))
        return f"<Event {name} at {self.when}{' daemon' if self.daemon else ''}>"


class WaitQueue:
    """One bucket of the hashed page wait table (``page_waitqueue``)."""

    __slots__ = ("cond",)

    def __init__(self) -> None:
        self.cond = threading.Condition(threading.Lock())


@attrs.define(eq=False)
class Hold:
    """Something another task holds: a page lock, a page or buffer reference or lock.

    ``event`` lets go of it when its time is up.  ``waited``, for a buffer
    lock: the ticks it is still held once a task first meets it, sleeping
    on it or trying it (an I/O in flight, which ends within its latency),
    if that is sooner than ``event``.  ``write``, for a buffer lock: the
    write of its block that the lock stands for, which ends (writes the
    block) as the lock is let go of.
    """

    kind: str
    obj: Any
    event: Event | None = None
    waited: int | None = None
    write: WriteInFlight | None = None


@attrs.define(eq=False)
class Task:
    """A task (``struct task_struct``), reduced to what the model needs.

    ``holds`` lists what the task holds, oldest first; holds mostly end in
    the order they were taken, which a deque lets go of in constant time.
    ``why`` is the task's own account of why the migration step it last
    tried gave up ("reference count 3, expected 2"): the helpers a
    ``migratepage`` calls return only the kernel's value, so they leave the
    reason on the calling task (``current``), as the kernel keeps per-task
    state, and the engine reads it back.
    """

    pid: int
    name: str
    flags: int = 0
    holds: deque[Hold] = attrs.field(factory=deque)
    why: str = ""


class Scheduler:
    """The simulated clock and the queue of pending events."""

    __slots__ = (
        "_heap",
        "_lock",
        "_pending",
        "_seq",
        "_tried",
        "buffer_lockers",
        "in_event",
        "migrating",
        "now",
        "on_sleep",
        "raised",
        "ran",
        "sleeps",
        "threads",
        "waitqueues",
    )

    def __init__(self) -> None:
        self.now = 0
        self._heap: list[tuple[int, int, Event]] = []
        self._seq = 0
        self._pending = 0  # events that are not daemons
        self._lock = threading.RLock()
        # The lock a trylock last failed on (its id), at which tick, how many times in a row.
        self._tried = (0, -1, 0)
        self.threads = 0
        #: How many events have run: another task's work (an I/O completing,
        #: a commit, a hold let go of) happened between two readings of it
        #: exactly when it changed.
        self.ran = 0
        #: How many events are running now, one inside another's sleep
        #: included: what a task writes while it is above 0 is another
        #: task's work (an I/O completing, a commit), not its own.
        self.in_event = 0
        #: What the last event that failed raised, kept as it left the
        #: event.  Another task's failure is not the fault of the code it
        #: interrupted: a table member the engine was calling (asleep on a
        #: lock when the event ran) does not answer for it
        #: (:func:`fsaops.migrate.migrate_pages` lets it go on as it is).
        self.raised: BaseException | None = None
        #: How many times a real thread went to sleep on a wait queue.
        self.sleeps = 0
        #: The buckets of the page wait table, by hash, made when first slept
        #: or woken on (most machines never sleep on any).
        self.waitqueues: dict[int, WaitQueue] = {}
        #: Told when a task sleeps on a page or buffer bit, for tracing one
        #: page: ``on_sleep(obj, what)`` before the sleep may return a function
        #: to call when it ends.  ``None`` (the default) costs the slow path
        #: one attribute load.
        self.on_sleep: Callable[[object, str], Callable[[], None] | None] | None = None
        #: The tasks that hold a buffer's lock through :func:`hold`, and
        #: their holds, by the buffer head's ``id``: a buffer lock has no
        #: owner of its own, and the judges tell another task's lock from
        #: the migrating one's.
        self.buffer_lockers: dict[int, tuple[Task, Hold]] = {}
        #: The mapping of the page a ``migratepage`` call is moving, while it
        #: runs (:meth:`might_sleep` checks its locks too: the old page may
        #: have left it by the time the call sleeps).
        self.migrating: object = None

    # -- events --------------------------------------------------------------

    def call_at(
        self, when: int, fn: Callable[..., object], *args: Any, daemon: bool = False
    ) -> Event:
        """Run ``fn(*args)`` at tick ``when`` (not before the current tick).

        A daemon event (a periodic flusher) never counts as something a
        sleeper can wait for: when only daemons are left, a sleeper is in
        a deadlock.
        """
        event = Event(max(when, self.now), fn, args, daemon)
        with self._lock:
            self._seq += 1
            heapq.heappush(self._heap, (event.when, self._seq, event))
            if not daemon:
                self._pending += 1
        return event

    def call_later(
        self, delay: int, fn: Callable[..., object], *args: Any, daemon: bool = False
    ) -> Event:
        """Run ``fn(*args)`` ``delay`` ticks from now."""
        return self.call_at(self.now + delay, fn, *args, daemon=daemon)

    def pending(self) -> int:
        """How many events other than daemons are waiting to run."""
        return self._pending

    def take_pending(self) -> list[Event]:
        """Take every event that is not a daemon off the queue, in time order, and return them.

        The explorer (:mod:`fsaops.explore`) runs each as a task of its own
        instead; daemon events stay queued.
        """
        with self._lock:
            entries = sorted(self._heap)
            keep = [e for e in entries if e[2].daemon]
            taken = [e[2] for e in entries if not e[2].daemon and not e[2].cancelled]
            self._heap[:] = keep
            heapq.heapify(self._heap)
            self._pending = 0
        return taken

    def unlocked(self, page: object, lock: str) -> None:
        """A spinlock with no object in the model was released: nothing in a plain run.

        In an explored kernel it is a scheduling point (another CPU may run
        between the release and what follows); ``page`` labels it.
        """

    def page_unlocked(self, page: Page) -> None:
        """``unlock_page`` released the page's lock: nothing in a plain run.

        In an explored kernel, a page lock a table's ``migratepage`` releases
        is a scheduling point: another CPU may take the lock before the
        migration takes it again.
        """

    def tick(self) -> None:
        """Advance the clock by one tick and run what is due (``cond_resched``)."""
        now = self.now + 1
        self.now = now
        heap = self._heap
        if heap and heap[0][0] <= now:
            self._run_due(now)

    def _run_due(self, now: int) -> None:
        heap = self._heap
        while True:
            with self._lock:
                if not heap or heap[0][0] > now:
                    return
                event = heapq.heappop(heap)[2]
                if not event.daemon:
                    self._pending -= 1
            if not event.cancelled:
                self.ran += 1
                self.in_event += 1
                try:
                    event.fn(*event.args)
                except BaseException as exc:
                    self.raised = exc
                    raise
                finally:
                    self.in_event -= 1

    def run_next(self) -> bool:
        """Advance the clock to the next event and run it; False if none is left."""
        with self._lock:
            heap = self._heap
            self._drop_cancelled()
            if not heap:
                return False
            when = heap[0][0]
            self.now = max(self.now, when)
        self._run_due(self.now)
        return True

    def run_until_idle(self, limit: int = 10_000_000) -> None:
        """Run events until only daemons are left (I/O settled, holds released).

        Raises:
            Deadlock: when more than ``limit`` events ran (a task that
                reschedules itself forever without being a daemon).
        """
        ran = 0
        while self._pending > 0:
            self.run_next()
            ran += 1
            if ran > limit:
                raise Deadlock("the pending events to settle", self.now)

    def run_for(self, ticks: int) -> None:
        """Let ``ticks`` ticks pass, running everything due, daemons included."""
        end = self.now + ticks
        while True:
            with self._lock:
                # A cancelled event due first must not let the one after it
                # run: it may be due after the end.
                self._drop_cancelled()
                if not self._heap or self._heap[0][0] > end:
                    break
            self.run_next()
        self.now = max(self.now, end)

    def _drop_cancelled(self) -> None:
        """Take the cancelled events off the front of the queue (``_lock`` held)."""
        heap = self._heap
        while heap and heap[0][2].cancelled:
            event = heapq.heappop(heap)[2]
            if not event.daemon:
                self._pending -= 1

    # -- sleeping ------------------------------------------------------------

    def waitqueue(self, obj: object) -> WaitQueue:
        """The hashed wait queue of a page or buffer."""
        bucket = hash(id(obj) >> 4) & ((1 << WAITQUEUE_HASH_BITS) - 1)
        wq = self.waitqueues.get(bucket)
        if wq is None:
            # setdefault: two threads that get here at once share one queue.
            wq = self.waitqueues.setdefault(bucket, WaitQueue())
        return wq

    def wait_on_page_bit(self, page: Page, bit: int, what: str) -> None:
        """Sleep until ``bit`` is clear in ``page.flags``."""
        if page.flags & bit:
            self.might_sleep(page, what)
        if self.on_sleep is None:
            # The usual sleep (an I/O to complete, nobody watching sleeps): run
            # the pending events until the bit clears, as wait() would, without
            # building its callbacks and message.  Anything else: wait() below.
            while page.flags & bit and self._pending > 0:
                self.run_next()
            if not page.flags & bit:
                return
        from fsaops.page import PG

        def ready() -> bool:
            return not page.flags & bit

        def announce() -> None:
            page.flags |= PG.waiters

        woken = None if self.on_sleep is None else self.on_sleep(page, what)
        self.wait(ready, f"{what} of pfn {page.pfn}{_whose(page)}", self.waitqueue(page), announce)
        if woken is not None:
            woken()

    def might_sleep(self, page: Page, what: str) -> None:
        """The kernel's ``might_sleep``: a task about to sleep on ``page`` must hold no spinlock.

        Checked for the ``tree_lock`` and ``private_lock`` of the page's
        mapping and of the mapping whose page a ``migratepage`` call is
        moving (:attr:`migrating`: the old page may have left it by the time
        the call sleeps), and inside such a call those of every other
        mapping of the machine; for every node's ``lru_lock``; and for every
        :class:`~fsaops.spinlock.Spinlock` of this machine held (a mapping's
        ``i_mmap_lock``, an ``anon_vma``'s lock, a process's
        ``page_table_lock``, or a lock a table keeps of its own).  In a run
        of simulated tasks only the sleeper can hold them (another task's
        work runs inside the sleep, and lets go of what it takes before it
        returns); with real threads, another may.  V4's
        ``buffer_migrate_page`` sleeps on buffer locks under
        ``private_lock`` itself (``Semantics.buffer_private_lock``): a sleep
        there is that release's own.

        Raises:
            KernelBug: the sleeper holds one of them.
        """
        if self.threads:
            return
        self._no_spinlock_held(page.node.kernel, page.mapping, what)

    def might_sleep_mutex(self, what: str, kernel: Kernel) -> None:
        """:meth:`might_sleep` for ``what``, a sleep on no page (a table's mutex).

        Held or free, ``mutex_lock`` checks that its caller holds no
        spinlock, in any member of a table: the ``tree_lock`` and
        ``private_lock`` of every mapping of ``kernel``, the nodes'
        ``lru_lock`` and every :class:`~fsaops.spinlock.Spinlock` of the
        machine.  Inside a ``migratepage`` call under V4, the
        ``private_lock`` of the mapping being migrated is that release's own
        (as for :meth:`might_sleep`).

        Raises:
            KernelBug: the caller holds one of them.
        """
        if self.threads:
            return
        self._no_spinlock_held(kernel, None, what, every_mapping=True)

    def _no_spinlock_held(
        self, kernel: Kernel, page_mapping: object, what: str, *, every_mapping: bool = False
    ) -> None:
        """Raise the ``might_sleep`` ``BUG`` if a spinlock :meth:`might_sleep` checks is held.

        Every mapping's locks are looked at inside a ``migratepage`` call,
        or with ``every_mapping``.
        """
        mapping: object = page_mapping if self.migrating is None else self.migrating
        wheres: tuple[Any, ...] = (page_mapping, self.migrating)
        held = [
            name
            for name in ("tree_lock", "private_lock")
            if any(
                (lock := getattr(where, name, None)) is not None and lock.locked()
                for where in wheres
            )
        ]
        if held == ["private_lock"] and kernel.semantics.buffer_private_lock:
            held = []
        others = [f"lru_lock of node {node.nid}" for node in kernel.nodes if node.lru_lock.locked()]
        if self.migrating is not None or every_mapping:
            others += _other_mappings_locked(kernel, wheres)
        for lock in sorted(held_spinlocks(), key=lambda lock: lock.name):
            owner = lock.owner
            # Another machine's lock (one a test left held) is not this task's.
            if getattr(owner, "kernel", kernel) is not kernel:
                continue
            named = getattr(owner, "name", None)
            if getattr(owner, "anon", None) is False:  # a mapping
                table = getattr(getattr(owner, "a_ops", None), "name", "?")
                others.append(f"{lock.name} of a mapping of {table}")
            elif isinstance(named, str):
                others.append(f"{lock.name} of {named}")
            elif owner is None:
                others.append(lock.name)
            else:
                others.append(f"{lock.name} of {type(owner).__name__}")
        if held or others:
            from fsaops.errors import KernelBug

            a_ops = getattr(mapping, "a_ops", None)
            parts = []
            if held:
                parts.append(
                    f"the {' and '.join(held)} of a mapping of {getattr(a_ops, 'name', '?')}"
                )
            parts += [f"the {lock}" for lock in others]
            raise KernelBug(
                f"sleeping function called from invalid context: a task sleeps on {what} "
                f"holding {' and '.join(parts)}, a spinlock: on a kernel, another CPU spins "
                "on it for as long, or this one deadlocks"
            )

    def buffer_tried(self, bh: BufferHead) -> None:
        """A task found ``bh`` locked: a hold with ``waited`` ends that many ticks from now.

        As an I/O in flight ends within its latency whether or not anyone
        waits for it, the countdown starts the first time a task meets the
        lock, by sleeping on it or by ``trylock_buffer``.
        """
        holder = self.buffer_lockers.get(id(bh))
        if holder is None:
            return
        task, held = holder
        waited = held.waited
        if waited is None:
            return
        when = self.now + max(waited, 1)
        held.waited = None
        if held.event is None or held.event.when > when:
            if held.event is not None:
                held.event.cancel()
            held.event = self.call_at(when, release, task, held)

    def tried(self, obj: Page | BufferHead, what: str) -> None:
        """A trylock found the ``what`` (``page lock``, ``buffer lock``) of ``obj`` held.

        The task did not sleep on it.  At every :data:`SPIN_TRIES`-th failed
        try of one lock in a row with the clock still, the task spins on it,
        and time passes: the next pending event runs (the I/O or the hold
        that has the lock may be it).  With none pending, nothing here can
        let the lock go: the task is left to its loop, which may give up,
        until :data:`LIVELOCK_TRIES` tries in a row.

        Raises:
            Deadlock: the task tried the lock :data:`LIVELOCK_TRIES` times in
                a row, and nothing pending, and no real thread, can let it go
                (a spin on a lock the task holds itself, or one nobody will
                release).
        """
        key, at, count = self._tried
        now = self.now
        if key == id(obj) and at == now:
            count += 1
        else:
            key, count = id(obj), 1
        self._tried = (key, now, count)
        if count % SPIN_TRIES:
            return
        if self._pending > 0:
            self.run_next()  # the clock moves on, and the count starts again
        elif count >= LIVELOCK_TRIES and not self.threads:
            self._tried = (0, -1, 0)
            raise Deadlock(f"the {what} of {obj!r}, tried {count:,} times in a row", now)

    def wait_on_buffer_bit(self, bh: BufferHead, bit: int, what: str) -> None:
        """Sleep until ``bit`` is clear in ``bh.b_state``."""
        from fsaops.buffer import BH

        def ready() -> bool:
            return not bh.b_state & bit

        def announce() -> None:
            bh.b_state |= BH.waiters

        if bh.b_state & bit:
            self.might_sleep(bh.b_page, what)
            self.buffer_tried(bh)
        woken = None if self.on_sleep is None else self.on_sleep(bh, what)
        self.wait(ready, f"{what} of {bh!r}", self.waitqueue(bh), announce)
        if woken is not None:
            woken()

    def wake_page(self, page: Page) -> None:
        """Wake every real thread sleeping on the page's wait queue."""
        wq = self.waitqueue(page)
        with wq.cond:
            wq.cond.notify_all()

    def wake_buffer(self, bh: BufferHead) -> None:
        """Wake every real thread sleeping on the buffer's wait queue."""
        wq = self.waitqueue(bh)
        with wq.cond:
            wq.cond.notify_all()

    def wait(
        self,
        ready: Callable[[], bool],
        what: str,
        wq: WaitQueue | None = None,
        announce: Callable[[], None] | None = None,
    ) -> None:
        """Sleep until ``ready()`` is true.

        Pending events run in time order while they can still wake the
        sleeper.  With real threads registered (``threads``), a sleeper
        with nothing simulated left to run waits on ``wq`` for a thread to
        wake it.

        Raises:
            Deadlock: nothing left can make ``ready()`` true.
        """
        deadline = 0.0
        while not ready():
            if self._pending > 0:
                self.run_next()
                continue
            if self.threads > 0 and wq is not None:
                if not deadline:
                    deadline = time.monotonic() + _REAL_WAIT_LIMIT
                    self.sleeps += 1
                with wq.cond:
                    if announce is not None:
                        announce()
                    if ready():
                        return
                    wq.cond.wait(_REAL_WAIT_SLICE)
                if time.monotonic() > deadline:
                    raise Deadlock(what, self.now)
                continue
            raise Deadlock(what, self.now)


def _other_mappings_locked(kernel: Kernel, skip: tuple[Any, ...]) -> list[str]:
    """The ``tree_lock`` and ``private_lock`` held of every mapping but those in ``skip``.

    Another file's, a mount's other files', the swap cache's: a table may
    take any of them.  They are plain locks with no owner, so finding them
    means looking at each mapping; :meth:`Scheduler.might_sleep` does only
    inside a ``migratepage`` call, where a sleep is rare.
    """
    from fsaops.debug import mappings  # the invariant checker's list of them

    found: list[str] = []
    for mapping in mappings(kernel):
        if any(mapping is where for where in skip):
            continue
        for name in ("tree_lock", "private_lock"):
            if getattr(mapping, name).locked():
                found.append(f"{name} of {mapping.name or 'a mapping'} ({mapping.a_ops.name})")
    return found


def whose(table: str) -> str:
    """`` (a page of ext2_aops)``: whose page a task sleeps on, as a deadlock's message says."""
    return f" (a page of {table})"


def _whose(page: Page) -> str:
    from fsaops.page import page_mapping

    mapping = page_mapping(page)
    return "" if mapping is None else whose(mapping.a_ops.name)


# -- other tasks holding things ----------------------------------------------


def hold(
    task: Task,
    sched: Scheduler,
    kind: str,
    obj: Any,
    ticks: int | None,
    *,
    waited: int | None = None,
    write: bool = False,
) -> Hold:
    """Make ``task`` take ``obj`` (a page or buffer, by ``kind``) for ``ticks`` ticks.

    ``kind`` is ``page_lock``, ``page_ref``, ``buffer_lock`` or
    ``buffer_ref``.  A lock must be free.  With ``ticks=None`` the task
    keeps it until :func:`release` (a sleeper waiting for it deadlocks).
    ``waited`` (a buffer lock only): let go of it that many ticks after a
    task first meets it, if that comes sooner (``Hold.waited``).  ``write``
    (a buffer lock only): the lock is a write of the buffer's block in
    flight (:func:`~fsaops.buffer.start_buffer_write`), which writes the
    block from the frame it was submitted from as it is let go of.
    """
    from fsaops.buffer import get_bh, start_buffer_write, trylock_buffer
    from fsaops.errors import KernelBug
    from fsaops.page import get_page, trylock_page

    # What is asked is checked before anything is taken: a wrong call holds nothing.
    if waited is not None and kind != "buffer_lock":
        raise ValueError("only a buffer lock is let go of once waited on")
    if write and kind != "buffer_lock":
        raise ValueError("only a buffer lock stands for a write in flight")
    if kind == "page_lock":
        if not trylock_page(obj):
            raise KernelBug(f"{task.name} cannot take the lock of {obj!r}: it is held")
    elif kind == "page_ref":
        get_page(obj)
    elif kind == "buffer_lock":
        if not trylock_buffer(obj):
            raise KernelBug(f"{task.name} cannot take the lock of {obj!r}: it is held")
    elif kind == "buffer_ref":
        get_bh(obj)
    else:
        raise ValueError(f"unknown hold kind {kind!r}")
    held = Hold(kind, obj, waited=waited, write=start_buffer_write(obj) if write else None)
    if kind == "buffer_lock":
        sched.buffer_lockers[id(obj)] = (task, held)
    task.holds.append(held)
    if ticks is not None:
        held.event = sched.call_later(max(ticks, 1), release, task, held)
    return held


def release(task: Task, held: Hold) -> None:
    """Make ``task`` let go of what it holds, now or when its time is up.

    Releasing something already let go of does nothing.
    """
    from fsaops.buffer import end_buffer_write, put_bh, unlock_buffer
    from fsaops.page import put_page, unlock_page

    if held not in task.holds:
        return
    task.holds.remove(held)
    if held.event is not None:
        held.event.cancel()
    if held.kind == "page_lock":
        unlock_page(held.obj)
    elif held.kind == "page_ref":
        put_page(held.obj)
    elif held.kind == "buffer_lock":
        held.obj.b_page.node.kernel.sched.buffer_lockers.pop(id(held.obj), None)
        if held.write is not None:
            end_buffer_write(held.obj, held.write)
        unlock_buffer(held.obj)
    elif held.kind == "buffer_ref":
        put_bh(held.obj)
