"""Tasks that block and resume, and the scheduling points between their steps.

The explorer runs every task of a schedule (the migration, each accessor,
each I/O completion) on a thread of its own, but only one at a time: a
task runs until it reaches a *scheduling point*, where the
:class:`Controller` decides who runs next and hands over.  A task that must
wait (a page lock, a buffer lock, a spinlock another task holds,
writeback) is *blocked* until what it waits for holds; a blocked task is
never chosen.  So the interleaving of the tasks is exactly the sequence of
choices the controller made, and a sequence of choices replays it.

Scheduling points are where the kernel has them, and cost nothing when no
explorer runs, because they are put into an explored kernel only:

* the mapping's ``tree_lock``, ``private_lock`` and ``i_mmap_lock``, an
  anon_vma's lock and a process's ``page_table_lock`` are replaced by
  :class:`Spinlock` objects: a point before each acquire (another task may
  take the lock first) and after each release.  While one task holds a
  spinlock the others run on (another CPU), and block only if they want
  the same lock;
* a process's ``mmap_sem`` becomes a :class:`Semaphore` (a sleeping lock);
* the kernel's scheduler becomes an :class:`ExploredScheduler`:
  ``cond_resched`` (``tick``) is a point (a task that polls at one
  ``cond_resched`` yields, :data:`SPIN_YIELDS`; so does one that spins on a
  trylock with no ``cond_resched``, at a ``trylock`` point every
  :data:`~fsaops.sched.SPIN_TRIES` failed tries), a page lock a table's
  ``migratepage`` releases is a point, sleeping on a page or buffer bit
  blocks the task, and an event the code schedules (an I/O completion, a
  hold let go) is a task of its own, runnable at once: the DMA window
  lasts until the explorer runs it;
* the NUMA nodes become :class:`ExploredNode` objects, which poison a
  frame when it is freed (so that a task still using it reads garbage).

Every point carries a *label*: the kind of step, the kernel function, the
page (as the explorer's page number, and its frame) and the lock, and the
set of the explorer's pages the step touches (a bit mask), which the
search uses to tell steps that commute from steps that do not.
"""

from __future__ import annotations

import _thread
import dis
import inspect
import sys
import threading
import time
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from fsaops.debug import broken_fields_said
from fsaops.errors import CannotStart, KernelBug, cannot_start, describe_exception, printable
from fsaops.explore.lockdep import KERNEL_ORDER, CircularLocking, LockGraph, LockOrder
from fsaops.memory import POISON_BYTE, Node
from fsaops.page import PG, Page
from fsaops.sched import SPIN_TRIES, Event, Scheduler, Task

if TYPE_CHECKING:
    from collections.abc import Sequence

    from fsaops.buffer import BufferHead
    from fsaops.kernel import Kernel
    from fsaops.sched import WaitQueue

__all__ = [
    "ALL",
    "SPIN_YIELDS",
    "YIELD_TRIES",
    "Controller",
    "ExploredNode",
    "ExploredScheduler",
    "Label",
    "PageTree",
    "Pages",
    "ScheduleDiverged",
    "Semaphore",
    "Spinlock",
    "TreeUnlocked",
    "XTask",
]

ALL: Final = -1
"""A label's page mask when the step may touch any page (every bit set)."""

Label = tuple[str, str, int, int, str, int]
"""A point's label: (kind, kernel function, explorer page or -1, pfn or -1, lock, page mask)."""

_MODULE: Final = __name__

STALL_SECONDS: Final = 0.5
"""How long the task that has the CPU may go without reaching a point before it is looked at."""

SPIN_YIELDS: Final = 100
"""``cond_resched`` calls in a row from one place, with no other task run, that make a spin.

A task that polls (``while (!trylock_buffer(bh)) cond_resched();``) waits
for another task to make progress; on the kernel's SMP machines that task
runs on another CPU meanwhile.  At its ``SPIN_YIELDS``-th such call the
poller yields: it is left out of the runnable tasks at that point, so
another one runs and the switch costs no preemption, as when a task
sleeps.  No path of the model comes near it: ``migrate_pages`` reaches a
page's ``cond_resched`` at most once a pass, ten passes in all, with the
other pages' in between.
"""

YIELD_TRIES: Final = SPIN_TRIES * SPIN_YIELDS
"""Failed trylocks of one lock in a row, with no other task run, after which the task yields.

Every :data:`~fsaops.sched.SPIN_TRIES`-th failed try is a ``trylock``
point, where the search may switch to another task (a preemption) or let
the spinner go on (it does by default); at the :data:`SPIN_YIELDS`-th
such point in a row the spinner yields, as a poller does, so that a spin
that waits for the lock ends in every schedule.  A table that gives up on
the lock sooner is seen giving up.  If no other task can run then, and the
lock is still held, nothing can let it go: a livelock, which fails the
schedule.
"""


def _never() -> bool:
    return False


class Pages:
    """The explorer's pages: which of them a kernel object or a frame belongs to.

    The explorer numbers the pages it migrates 0, 1, ...; a step's label
    says which of them it touches as a bit mask.  A file page is known by
    its mapping (each explored page is the one page of its own file), an
    anonymous page by its anon_vma, a process by the page it maps, and a
    frame by its pfn; anything else may touch every page (:data:`ALL`).
    """

    __slots__ = ("by_id", "by_pfn", "count")

    def __init__(self, count: int) -> None:
        self.count = count
        self.by_id: dict[int, int] = {}
        self.by_pfn: dict[int, int] = {}

    @property
    def all(self) -> int:
        """The mask of every page."""
        return (1 << self.count) - 1

    def add(self, obj: object, index: int) -> None:
        """``obj`` (a mapping, an anon_vma, a process) belongs to page ``index`` (also)."""
        self.by_id[id(obj)] = self.by_id.get(id(obj), 0) | (1 << index)

    def of(self, obj: object) -> int:
        """The mask of the pages ``obj`` belongs to; every page when it is not known."""
        return self.by_id.get(id(obj), ALL)

    def page(self, page: Page | None) -> tuple[int, int]:
        """(explorer page or -1, mask) of a frame: by its mapping, else by its pfn."""
        if page is None:
            return -1, ALL
        mapping = page.mapping
        if mapping is not None:
            mask = self.by_id.get(id(mapping))
            if mask is not None:
                return _single(mask), mask
        index = self.by_pfn.get(page.pfn)
        if index is not None:
            return index, 1 << index
        return -1, ALL


def _tolerated(held: Sequence[Spinlock]) -> bool:
    """Whether every spinlock in ``held`` is a mapping's ``private_lock``."""
    return all(lock.name.startswith("private_lock ") for lock in held)


def _spinlocks_held(held: Sequence[Spinlock]) -> str:
    """``spinlock tree_lock of ...``, ``spinlocks A and B``: what a task holds, and who took it."""
    names = [f"{lock.name} (taken in {lock.taker.rsplit('.', 1)[-1]})" for lock in held]
    if len(names) == 1:
        return f"spinlock {names[0]}"
    return f"spinlocks {', '.join(names[:-1])} and {names[-1]}"


def _single(mask: int) -> int:
    """The page number of a one-page mask, or -1."""
    if mask > 0 and mask & (mask - 1) == 0:
        return mask.bit_length() - 1
    return -1


class XTask:
    """One task of a schedule: the migration, an accessor, or an event (an I/O completion).

    Attributes:
        tid: its number in the schedule (its index in ``Controller.tasks``).
        name: how the interleaving names it (``migrate``, ``write@1``, ...).
        task: the kernel's task structure (``kernel.current`` while it runs).
        footprint: the mask of the explorer's pages it may touch.
        key: a name that does not depend on the schedule: ``m`` (the
            migration), ``a0``, ``a1``, ... (the accessors), and
            ``PARENT.n`` for the n-th task a task started (its I/O).
        body: what it does.
        label: the label of the point it is stopped at (its next step).
        ready: while it is blocked, what must hold for it to go on.
        free: while it sleeps on a bit (a page or buffer lock, writeback),
            whether that bit is clear: asleep with it clear, the task was
            not woken (``None``: it does not sleep on a bit).
        holding: the explored kernel's spinlocks it holds, in the order it
            took them.
        mutexes: the names of the tables' own locks
            (:class:`~fsaops.mutex.Mutex`) it holds, in the order it took
            them: for the lock-order check, not for ``might_sleep``.
        done: it finished.
        ident: the identifier of the thread it runs on (0 before it starts).
    """

    __slots__ = (
        "body",
        "children",
        "done",
        "footprint",
        "free",
        "gate",
        "holding",
        "ident",
        "key",
        "label",
        "mutexes",
        "name",
        "ready",
        "task",
        "tid",
    )

    def __init__(
        self,
        tid: int,
        name: str,
        task: Task,
        footprint: int,
        body: Callable[[], object],
        key: str = "",
    ) -> None:
        self.tid = tid
        self.name = name
        self.key = key or str(tid)
        self.children = 0
        self.holding: list[Spinlock] = []
        self.mutexes: list[str] = []
        self.task = task
        self.footprint = footprint
        self.body = body
        self.label: Label = ("start", "", -1, -1, "", footprint)
        self.ready: Callable[[], bool] | None = None
        self.free: Callable[[], bool] | None = None
        self.done = False
        self.ident = 0
        self.gate = threading.Lock()
        self.gate.acquire()

    def __repr__(self) -> str:
        return f"<XTask {self.tid} {self.name}{' done' if self.done else ''}>"

    def enabled(self) -> bool:
        """Whether it can run now."""
        if self.done:
            return False
        ready = self.ready
        return ready is None or ready()


Policy = Callable[[int, "XTask | None", list["XTask"]], "XTask"]
"""Chooses who runs at point ``j``: ``policy(j, current, enabled)``."""


class Controller:
    """Runs the tasks of one schedule, one at a time, choosing at every scheduling point.

    Args:
        kernel: the explored machine.
        pages: the explorer's pages.
        forced: the choices (task numbers) of the first points; after
            them ``policy`` decides.
        policy: who runs when ``forced`` is used up (default: the task
            that ran last if it can go on, else the runnable task with the
            lowest number: no preemption).
        max_points: a schedule longer than this is stopped and reported.
        record: report every point's label (for the readable interleaving);
            a schedule stopped for taking too long reports them anyway.
        lock_orders: the lock orders earlier schedules made, which a nested
            spinlock taken in the other order fails against (``lockdep``:
            :class:`~fsaops.explore.lockdep.LockGraph`, which knows the
            kernel's own orders too).

    After :meth:`run`: ``trace`` holds one entry per point,
    ``(current, chosen, enabled, masks)``: the task that reached the point
    (-1 at the start), the task chosen, the runnable tasks and the page
    mask of each one's next step; ``labels`` (with ``record``) the
    label of the step each choice let run; ``outcome`` is ``done``,
    ``deadlock``, ``error``, ``too long`` or ``foreign lock`` (a task waits
    on a lock of its plugin's own, ``foreign_lock``), and ``problem``
    says why for the last four.
    """

    def __init__(
        self,
        kernel: Kernel,
        pages: Pages,
        *,
        forced: Sequence[int] = (),
        policy: Policy | None = None,
        max_points: int = 200_000,
        record: bool = False,
        lock_orders: Sequence[LockOrder] = (),
    ) -> None:
        self.kernel = kernel
        self.pages = pages
        self.tasks: list[XTask] = []
        self.current: XTask | None = None
        self.forced = list(forced)
        self.policy: Policy = policy or default_policy
        self.max_points = max_points
        self.record = record
        self.trace: list[tuple[int, int, tuple[int, ...], tuple[int, ...]]] = []
        self.labels: list[tuple[int, Label]] = []
        self.live = False
        self.outcome = ""
        self.problem = ""
        self.failed_task: XTask | None = None
        #: The last I/O each task submitted (by the task's number; -1: before the schedule).
        self.io_tail: dict[int, XTask] = {}
        #: The task that polls at a ``cond_resched``, where, and how many times in a row.
        self._spin: tuple[XTask | None, str, int, int] = (None, "", -1, 0)
        #: The task whose trylocks of one lock (its ``id``) failed in a row, how many
        #: times, and whether that lock is free now.
        self._tries: tuple[XTask | None, int, int, Callable[[], bool]] = (None, 0, 0, _never)
        self._finished = threading.Event()
        self._mask_all = pages.all
        #: How many wakes of each page's and buffer's queue found each bit its
        #: sleepers wait on clear: by ``(id(object), bit)``.
        self.wakes: dict[tuple[int, int], int] = {}
        #: The bits tasks have slept on, by ``id`` of their page or buffer.
        self.waited: dict[int, set[int]] = {}
        #: The spinlock classes' orders: the kernel's, earlier schedules', this one's.
        self.lockdep = LockGraph((*KERNEL_ORDER, *lock_orders))
        #: The explored kernel's lock standing for each of the tables' own
        #: spinlocks (:class:`fsaops.spinlock.Spinlock`) taken in this
        #: schedule, by the ``id`` of the table's lock (kept with it).
        self._own: dict[int, tuple[object, Spinlock]] = {}

    # -- tasks -----------------------------------------------------------------

    def add(
        self,
        name: str,
        task: Task,
        footprint: int,
        body: Callable[[], object],
        key: str = "",
    ) -> XTask:
        """Add a task (before :meth:`run`, or from a running task: an event it starts)."""
        parent = self.current if self.live else None
        if not key:
            if parent is not None:
                key = f"{parent.key}.{parent.children}"
                parent.children += 1
            else:
                key = f"e{len(self.tasks)}"
        xt = XTask(len(self.tasks), name, task, footprint & self._mask_all, body, key)
        self.tasks.append(xt)
        if self.live:
            self._start(xt)
        return xt

    def add_io(
        self,
        name: str,
        task: Task,
        footprint: int,
        body: Callable[[], object],
        submitter: XTask | None,
    ) -> XTask:
        """Add the completion of an I/O ``submitter`` started, as a task of its own.

        The I/O one task submits completes in the order it was submitted
        (a device's queue): a completion can run only once the one
        submitted before it by the same task has.
        """
        key = -1 if submitter is None else submitter.tid
        before = self.io_tail.get(key)
        xt = self.add(name, task, footprint, body)
        if before is not None and not before.done:
            xt.ready = lambda: before.done
        self.io_tail[key] = xt
        return xt

    def _start(self, xt: XTask) -> None:
        # A bare thread: threading.Thread.start() costs several times more, and
        # these threads are never joined (a schedule that ends in a deadlock
        # leaves its tasks parked, and the process that ran it goes away).
        try:
            xt.ident = _thread.start_new_thread(self._main, (xt,))
        except RuntimeError as exc:  # "can't start new thread": a limit of the system
            raise cannot_start(f"the thread of task {xt.name}", exc) from None

    def _main(self, xt: XTask) -> None:
        xt.gate.acquire()
        try:
            xt.body()
        except BaseException as exc:  # the task's own failure, whoever's code raised it
            self._failed(xt, exc)
            return
        xt.done = True
        self._decide(xt)

    def _failed(self, xt: XTask, exc: BaseException) -> None:
        if isinstance(exc, CannotStart):  # the system's, not the task's: the run says so
            self._stop("cannot start", str(exc))
            return
        where = _where(exc)
        self.failed_task = xt
        broken = broken_fields_said(self.kernel)
        said = describe_exception(exc)
        if {type(exc), type(exc.__cause__)} & _OWN_REPORTS:
            # lockdep's report, or the page tree's, is the explorer's own, said whole (a
            # plugin's is cut), with where the engine ran the table's migratepage if it did.
            said = f"KernelBug: {printable(str(exc))}"
        self._stop("error", f"task {xt.name} failed: {said}{where}{broken}")

    def _stop(self, outcome: str, problem: str) -> None:
        if not self.outcome:
            self.outcome = outcome
            self.problem = problem
        self.live = False
        self._finished.set()

    # -- running ---------------------------------------------------------------

    def run(self, timeout: float | None = None) -> None:
        """Run every task to the end (or to a deadlock, an error, the point limit).

        A task that has had the CPU for ``STALL_SECONDS`` without
        reaching a point is looked at: one that waits on a lock of its
        plugin's own that the explorer does not schedule stops the schedule
        at once (outcome ``foreign lock``, ``foreign_lock``), rather than
        at the end of ``timeout``.
        """
        self.live = True
        for xt in self.tasks:
            self._start(xt)
        self._decide(None)
        deadline = None if timeout is None else time.monotonic() + timeout
        seen: tuple[int, XTask | None] | None = None
        while True:
            left = STALL_SECONDS if deadline is None else deadline - time.monotonic()
            if self._finished.wait(max(0.0, min(STALL_SECONDS, left))):
                break
            if deadline is not None and time.monotonic() >= deadline:
                self._stop(
                    "too long", f"the schedule did not end within {timeout:g} s{self._running()}"
                )
                break
            now = (len(self.trace), self.current)
            if now == seen:
                why = self._foreign_lock()
                if why:
                    self._stop("foreign lock", why)
                    break
            seen = now
        self.live = False

    def _foreign_lock(self) -> str:
        """Why the task that has the CPU waits for ever on a plugin's own lock, or ``""``."""
        me = self.current
        if me is None or not me.ident:
            return ""
        found = foreign_lock(sys._current_frames().get(me.ident))
        if found is None:
            return ""
        where, lock, kind = found
        return (
            f"cannot explore: task {me.name} waits {where} on {lock}, a lock of its own "
            f"({kind}) that the explorer does not schedule: the task that holds it is stopped "
            "at a scheduling point, and only the explorer could run it again; use "
            "fsaops.Mutex, the lock of a table's own that the explorer schedules"
        )

    def _running(self) -> str:
        """``: task migrate was ...``: where the task that had the CPU was when time ran out."""
        me = self.current
        if me is None:
            return ""
        frame = sys._current_frames().get(me.ident) if me.ident else None
        return f": task {me.name} was {_doing(frame, self.kernel)}"

    def _decide(self, me: XTask | None) -> None:
        """Choose who runs next at a point reached by ``me``, and hand over to it."""
        if not self.live:
            if me is not None and not me.done:
                me.gate.acquire()  # the schedule is over: park for good
            return
        enabled = [t for t in self.tasks if t.enabled()]
        j = len(self.trace)
        if not enabled:
            if all(t.done for t in self.tasks):
                self._stop("done", "")
            else:
                self._stop("deadlock", self._deadlock())
            if me is not None and not me.done:
                me.gate.acquire()
            return
        if j >= self.max_points:
            self._stop("too long", f"the schedule did not end within {self.max_points} points")
            if me is not None and not me.done:
                me.gate.acquire()
            return
        if me is not None and me.label[0] == "cond_resched" and len(enabled) > 1:
            enabled = self._yielded(me, enabled)
        elif me is not None and me.label[0] == "trylock" and self._spun_out(me):
            # A task that spins on a lock yields, as one that polls does: the
            # holder runs meanwhile, on a kernel on another CPU.
            others = [t for t in enabled if t is not me]
            if others:
                enabled = others
            elif not self._tries[3]():
                self._stop("deadlock", self._livelock(me))
                me.gate.acquire()
                return
        chosen: XTask | None = None
        if j < len(self.forced):
            tid = self.forced[j]
            if 0 <= tid < len(self.tasks) and self.tasks[tid] in enabled:
                chosen = self.tasks[tid]
            else:
                self._stop(
                    "diverged",
                    f"the schedule does not replay: at point {j} task {tid} cannot run "
                    f"(runnable: {', '.join(t.name for t in enabled)})",
                )
                if me is not None and not me.done:
                    me.gate.acquire()
                return
        else:
            try:
                chosen = self.policy(j, me, enabled)
            except ScheduleDiverged as exc:
                self._stop("diverged", str(exc))
                if me is not None and not me.done:
                    me.gate.acquire()
                return
        self.trace.append(
            (
                -1 if me is None else me.tid,
                chosen.tid,
                tuple(t.tid for t in enabled),
                tuple(t.label[5] for t in enabled),
            )
        )
        # Kept for every schedule (an append): a schedule stopped for taking
        # too long is described from its own labels, not run again.
        self.labels.append((chosen.tid, chosen.label))
        chosen.ready = None
        if chosen is not me:
            self._spin = (None, "", -1, 0)  # another task ran: whoever polled may find it done
            self._tries = (None, 0, 0, _never)
        self.current = chosen
        self.kernel.current = chosen.task
        if chosen is me:
            return
        chosen.gate.release()
        if me is not None and not me.done:
            me.gate.acquire()

    def _yielded(self, me: XTask, enabled: list[XTask]) -> list[XTask]:
        """``enabled``, without ``me`` when it polls: its :data:`SPIN_YIELDS`-th call in a row."""
        _, function, page, _, _, _ = me.label
        task, where, at, count = self._spin
        count = count + 1 if task is me and where == function and at == page else 1
        if count < SPIN_YIELDS:
            self._spin = (me, function, page, count)
            return enabled
        self._spin = (None, "", -1, 0)
        return [t for t in enabled if t is not me]

    def tried(
        self,
        key: int,
        page: Page | tuple[int, int] | None,
        lock: str,
        caller: Any,
        free: Callable[[], bool],
    ) -> None:
        """A trylock of the running task, made in the frame ``caller``, found ``lock`` held.

        ``key`` is the lock's ``id``; ``page`` the page it belongs to, or
        for a lock of the explored kernel its (explorer page, mask).  Every
        :data:`~fsaops.sched.SPIN_TRIES`-th failed try of one lock in a row,
        with no other task run in between, is a ``trylock`` point, labelled
        with the caller's function; at :data:`YIELD_TRIES` the task yields
        there (the choice of who runs next).  ``free`` says whether the lock is
        free now.
        """
        me = self.current
        if me is None or not self.live:
            return
        task, at, count, _ = self._tries
        count = count + 1 if task is me and at == key else 1
        self._tries = (me, key, count, free)
        if count % SPIN_TRIES == 0:
            if isinstance(page, tuple):
                (index, mask), pfn = page, -1
            else:
                index, pfn, mask = self.page_label(page)
            self.point("trylock", index, pfn, lock, mask, caller.f_code.co_name)

    def taking(self, name: str, caller: Any) -> None:
        """The running task, in the frame ``caller``, waits for lock ``name`` if it is held.

        Lockdep's check (:mod:`fsaops.explore.lockdep`): every lock the task
        holds (the explored kernel's spinlocks and the tables' own mutexes)
        makes an order with ``name``; one that closes a cycle with the
        orders known fails the schedule.  A trylock cannot wait, and is not
        checked.

        Raises:
            CircularLocking: the order closes a cycle.
        """
        me = self.current
        if me is None or not self.live or not (me.holding or me.mutexes):
            return
        held = [*(lock.name for lock in me.holding), *me.mutexes]
        said = self.lockdep.taking(me.name, held, name, caller)
        if said:
            raise CircularLocking(said)

    def own_spinlock(self, lock: object) -> Spinlock:
        """The explored kernel's lock that stands for a table's own spinlock in this schedule.

        Made the first time the lock is taken: a lock of every page (its
        steps depend on all others), named as the table named it.
        """
        found = self._own.get(id(lock))
        if found is None or found[0] is not lock:
            name = str(getattr(lock, "name", "spinlock"))
            found = self._own[id(lock)] = (lock, Spinlock(self, name, -1))
        return found[1]

    def might_sleep(self, what: str) -> None:
        """The running task calls ``what``, which may sleep: the kernel's ``might_sleep`` check.

        ``mutex_lock`` calls ``might_sleep()`` first, held or free: with a
        spinlock held it is a ``BUG`` whether or not it would sleep this
        time.

        Raises:
            KernelBug: the task holds a spinlock of the explored kernel.
        """
        me = self.current
        if me is None or not self.live or not me.holding:
            return
        raise KernelBug(
            f"sleeping function called from invalid context: {me.name} calls {what} in "
            f"{_function()} holding {_spinlocks_held(me.holding)}, and {what} may sleep "
            "(it does if another task holds the lock)"
        )

    def holds(self, name: str, held: bool) -> None:
        """The running task took (``held``) or let go of a table's own lock named ``name``."""
        me = self.current
        if me is None or not self.live:
            return
        if held:
            me.mutexes.append(name)
        elif name in me.mutexes:
            me.mutexes.remove(name)

    def _spun_out(self, me: XTask) -> bool:
        """Whether ``me`` has tried one lock :data:`YIELD_TRIES` times in a row, or more."""
        task, _, count, _ = self._tries
        return task is me and count >= YIELD_TRIES

    def _livelock(self, me: XTask) -> str:
        _, function, _, _, lock, _ = me.label
        others = [
            f"{t.name} waits in {t.label[1] or '?'} for {t.label[4] or t.label[0]}"
            for t in self.tasks
            if t is not me and not t.done
        ]
        return (
            f"livelock: {me.name} spins in {function or '?'} on the {lock}, trying it "
            f"{YIELD_TRIES:,} times in a row, and no other task can run to let it go"
            + (": " + "; ".join(others) if others else " (every other task has ended)")
        )

    def _deadlock(self) -> str:
        waiting = [
            f"{t.name} waits in {t.label[1] or '?'} for {t.label[4] or t.label[0]}"
            for t in self.tasks
            if not t.done
        ]
        lost = [t for t in self.tasks if not t.done and t.free is not None and t.free()]
        if lost:
            t = lost[0]
            return (
                f"lost wake-up: {t.name} sleeps in {t.label[1] or '?'} on the "
                f"{t.label[4] or t.label[0]}, which is free, but the task that freed it did "
                "not wake its sleepers (unlock_buffer, unlock_page and end_page_writeback "
                "wake them, after clearing the bit; clearing the bit alone does not): on a "
                "kernel the sleeper sleeps for ever; no task can run: " + "; ".join(waiting)
            )
        return "deadlock: no task can run: " + "; ".join(waiting)

    # -- scheduling points -------------------------------------------------------

    def point(
        self, kind: str, page: int, pfn: int, lock: str, mask: int, function: str = ""
    ) -> None:
        """A scheduling point of the running task, before a step labelled so.

        ``function`` names the kernel function that reached it (default:
        the first caller outside the scheduler).
        """
        me = self.current
        if me is None or not self.live:
            return
        me.label = (kind, function or _function(), page, pfn, lock, mask & self._mask_all)
        self._decide(me)

    def block(
        self,
        ready: Callable[[], bool],
        kind: str,
        page: int,
        pfn: int,
        lock: str,
        mask: int,
        *,
        under_private_lock: bool = False,
        free: Callable[[], bool] | None = None,
    ) -> None:
        """The running task sleeps until ``ready()``; other tasks run meanwhile.

        ``kind`` ``spin`` waits for a spinlock (the task spins, as on another
        CPU); any other kind sleeps, which a task holding a spinlock must not
        do: the kernel's ``might_sleep`` BUG, raised here as a
        :class:`~fsaops.errors.KernelBug` naming the locks held and who took
        them.  ``under_private_lock``: this sleep is let be while only
        mappings' ``private_lock`` is held (a buffer lock, in a release whose
        ``buffer_migrate_page`` takes it there itself).  ``free``: for a
        sleep on a bit that only a wake-up ends (``sleep_on_bit``),
        whether the bit is clear, so that a schedule in which nobody woke
        the sleeper is said to be a lost wake-up.
        """
        me = self.current
        if me is None or not self.live:
            if not ready():
                raise KernelBug(f"sleeping on {lock or kind} outside an explored schedule")
            return
        function = _function()
        if me.holding and kind != "spin" and not (under_private_lock and _tolerated(me.holding)):
            raise KernelBug(
                f"sleeping function called from invalid context: {me.name} sleeps on "
                f"{lock or kind} in {function} holding {_spinlocks_held(me.holding)}"
            )
        me.label = (kind, function, page, pfn, lock, mask & self._mask_all)
        me.ready = ready
        me.free = free
        self._decide(me)
        me.free = None
        if not ready():  # only a schedule that ended comes back with nothing ready
            raise KernelBug(f"woken in {me.label[1]} with {lock or kind} still not ready")

    def page_label(self, page: Page | None) -> tuple[int, int, int]:
        """(explorer page, pfn, mask) of a frame, for a label."""
        index, mask = self.pages.page(page)
        return index, -1 if page is None else page.pfn, mask


class ScheduleDiverged(Exception):
    """A policy cannot make the choice it was given: the schedule does not replay."""


def default_policy(j: int, current: XTask | None, enabled: list[XTask]) -> XTask:
    """No preemption: the task that ran last goes on if it can, else the lowest-numbered one."""
    if current is not None and current in enabled:
        return current
    return enabled[0]


_SKIPPED: Final = frozenset({_MODULE, "fsaops.sched", "fsaops.mutex"})
_TASKS: Final = "fsaops.explore.tasks"
_HELPERS: Final = frozenset({"load", "io", "wait"})


def _function() -> str:
    """The kernel function that reached a point: the first caller outside the scheduler.

    ``_lock_page_slow`` reads as ``lock_page``.
    """
    frame: Any = sys._getframe(1)
    while frame is not None and (
        frame.f_globals.get("__name__") in _SKIPPED
        or (frame.f_globals.get("__name__") == _TASKS and frame.f_code.co_name in _HELPERS)
    ):
        frame = frame.f_back
    if frame is None:
        return "?"
    name: str = frame.f_code.co_name
    return name.strip("_").removesuffix("_slow")


def _doing(frame: Any, kernel: Kernel) -> str:
    """Where a task's thread is: the page it was migrating, its table and plugin, and its frame.

    As ``fsaops migrate``'s time limit says it: the page at its pfn, the
    table and the plugin whose filesystem has it, the pass; then the
    innermost function the thread runs (plugin code that never returns).
    """
    if frame is None:
        return "not running Python code"
    code = frame.f_code
    here = f"in {code.co_name} ({code.co_filename.rsplit('/', 1)[-1]}:{frame.f_lineno})"
    from fsaops.migrate import migrate_pages, table_name

    while frame is not None and frame.f_code is not migrate_pages.__code__:
        frame = frame.f_back
    if frame is None:
        return here
    local = frame.f_locals
    page = local.get("page")
    pfn = getattr(page, "pfn", None)
    if not isinstance(pfn, int):
        return here
    try:
        table = table_name(page)
    except Exception:
        table = "?"
    registry = kernel.registry
    owner = registry.table_owner(table) if registry is not None else None
    plugin = "" if owner is None else f" of plugin {owner.label}"
    path = local.get("path")
    step = f", in {path}" if isinstance(path, str) and path else ""
    return (
        f"migrating the page at pfn {pfn} (table {table}{plugin}, pass {local.get('pass_')}"
        f"{step}), {here}"
    )


_LOCK: Final = type(threading.Lock())
_RLOCK: Final = type(threading.RLock())
_LOCK_MODULES: Final = frozenset({"threading", "queue"})
_MISSING: Final = object()


def foreign_lock(frame: Any) -> tuple[str, str, str] | None:
    """(where, the lock, its type) when a thread waits on a lock of a plugin's own, else ``None``.

    ``frame`` is the innermost frame of a thread that has made no progress:
    a ``with`` on, or an ``acquire()`` of, a :class:`threading.Lock` or
    :class:`threading.RLock` that is held, or code of :mod:`threading`
    (a semaphore, a condition, an event), called from code outside fsaops
    (a plugin's).  ``where`` is ``in FUNCTION (FILE:LINE)``.  A wait of
    :mod:`threading` or :mod:`queue` given a ``timeout`` ends by itself,
    whoever holds what it waits on: it is slow, not stuck (``None``; the
    schedule's own time limit still applies).
    """
    waiting: object = None
    while frame is not None and frame.f_globals.get("__name__") in _LOCK_MODULES:
        timeout = frame.f_locals.get("timeout")
        if type(timeout) in (int, float) and timeout >= 0:
            return None
        waiting = frame.f_locals.get("self", waiting)
        frame = frame.f_back
    if frame is None:
        return None
    module = str(frame.f_globals.get("__name__", ""))
    if module == "fsaops" or module.startswith("fsaops."):
        return None  # the model's own code: its locks are the explorer's
    code = frame.f_code
    where = f"in {code.co_name} ({code.co_filename.rsplit('/', 1)[-1]}:{frame.f_lineno})"
    if waiting is not None:
        kind = type(waiting)
        return where, _named(frame, waiting) or "a lock", f"{kind.__module__}.{kind.__qualname__}"
    found = _operand(frame)
    if found is None:
        return None
    name, lock = found
    if not _held(lock):
        return None
    return where, name, "threading.RLock" if type(lock) is _RLOCK else "threading.Lock"


def _held(lock: object) -> bool:
    if type(lock) is _LOCK:
        return bool(lock.locked())
    if type(lock) is _RLOCK:
        return repr(lock).startswith("<locked")
    return False


def _operand(frame: Any) -> tuple[str, object] | None:
    """(its name, the lock) a frame stopped at ``with LOCK:`` or ``LOCK.acquire(...)`` waits on."""
    code = frame.f_code
    instructions = list(dis.get_instructions(code))
    pos = next((k for k, ins in enumerate(instructions) if ins.offset == frame.f_lasti), None)
    if pos is None:
        return None
    k = pos - 1
    if instructions[pos].opname != "BEFORE_WITH":
        if not instructions[pos].opname.startswith("CALL"):
            return None
        while k >= 0 and instructions[k].opname in ("PRECALL", "KW_NAMES", "LOAD_CONST"):
            k -= 1
        if k < 0 or instructions[k].argval not in ("acquire", "__enter__"):
            return None
        k -= 1
    chain: list[str] = []
    while k >= 0 and instructions[k].opname == "LOAD_ATTR":
        chain.append(str(instructions[k].argval))
        k -= 1
    if k < 0:
        return None
    first = instructions[k]
    name = str(first.argval)
    if first.opname in ("LOAD_FAST", "LOAD_DEREF", "LOAD_CLOSURE"):
        obj = frame.f_locals.get(name, _MISSING)
    elif first.opname in ("LOAD_GLOBAL", "LOAD_NAME"):
        obj = frame.f_globals.get(name, _MISSING)
    else:
        return None
    for attr in reversed(chain):
        if obj is _MISSING:
            break
        obj = inspect.getattr_static(obj, attr, _MISSING)
        name += f".{attr}"
    if type(obj) not in (_LOCK, _RLOCK):
        return None
    return name, obj


def _named(frame: Any, obj: object) -> str:
    """The name a frame knows ``obj`` by (a local or a global), or ``""``."""
    for names, space in (
        (frame.f_code.co_varnames + frame.f_code.co_freevars, frame.f_locals),
        (frame.f_code.co_names, frame.f_globals),
    ):
        for name in names:
            if space.get(name) is obj:
                return str(name)
    return ""


def _where(exc: BaseException) -> str:
    """`` (in FUNCTION, FILE:LINE)`` of the innermost frame of an exception."""
    tb = traceback.extract_tb(exc.__traceback__)
    if not tb:
        return ""
    last = tb[-1]
    return f" (in {last.name}, {last.filename.rsplit('/', 1)[-1]}:{last.lineno})"


# -- the explored kernel's locks -------------------------------------------------------


class Spinlock:
    """A spinlock of an explored kernel: points around it, and it blocks only who wants it.

    Acquiring is a scheduling point (another task may take the lock
    first); a lock another task holds blocks the acquirer until it is
    released (on an SMP kernel it would spin on another CPU); releasing is
    a point again.  It can be used as ``with lock:`` or by hand, as the
    model's ``threading.Lock`` is.  Outside a schedule (building the world,
    the checks after it) it is a plain lock.
    """

    __slots__ = ("ctl", "held", "mask", "name", "owner", "page", "taker")

    def __init__(self, ctl: Controller, name: str, mask: int) -> None:
        self.ctl = ctl
        self.name = name
        self.mask = mask
        self.page = _single(mask)
        self.held = False
        self.owner: XTask | None = None
        #: The function that took it (``module.function``), while a task holds it.
        self.taker = ""

    def __repr__(self) -> str:
        owner = self.owner.name if self.owner is not None else "nobody"
        return f"<Spinlock {self.name} held by {owner if self.held else 'nobody'}>"

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        """Take the lock (``spin_lock``); a point first, then wait while another task has it."""
        return self._take(blocking, sys._getframe(1))

    def take(self, blocking: bool, caller: Any) -> bool:
        """:meth:`acquire` for code in the frame ``caller`` (a table's own spinlock taking it)."""
        return self._take(blocking, caller, caller.f_code.co_name)

    def let_go(self, caller: Any) -> None:
        """:meth:`release` for code in the frame ``caller`` (a table's own spinlock)."""
        self._release(caller.f_code.co_name)

    def _take(self, blocking: bool, caller: Any, function: str = "") -> bool:
        ctl = self.ctl
        if not ctl.live:
            if self.held:
                if not blocking:
                    return False
                raise KernelBug(f"spin_lock of {self.name}, which is held, outside a schedule")
            self.held = True
            self.owner = None
            return True
        ctl.point("spin_lock", self.page, -1, self.name, self.mask, function)
        me = ctl.current
        if self.held:
            if self.owner is me:
                raise KernelBug(f"spin_lock of {self.name}, which this task already holds")
            if not blocking:
                # a spin_trylock loop spins
                ctl.tried(id(self), (self.page, self.mask), self.name, caller, self._free)
                return False
        if blocking:  # lockdep: the order this makes against those known (a trylock makes none)
            ctl.taking(self.name, caller)
        if self.held:
            ctl.block(self._free, "spin", self.page, -1, self.name, self.mask)
        self.held = True
        self.owner = me
        if me is not None:
            self.taker = f"{caller.f_globals.get('__name__', '?')}.{caller.f_code.co_name}"
            me.holding.append(self)
        return True

    def _free(self) -> bool:
        return not self.held

    def release(self) -> None:
        """Let go of the lock (``spin_unlock``), then a point."""
        self._release()

    def _release(self, function: str = "") -> None:
        if not self.held:
            raise KernelBug(f"spin_unlock of {self.name}, which nobody holds")
        owner = self.owner
        if owner is not None and self in owner.holding:
            owner.holding.remove(self)
        self.held = False
        self.owner = None
        ctl = self.ctl
        if ctl.live:
            ctl.point("spin_unlock", self.page, -1, self.name, self.mask, function)

    def locked(self) -> bool:
        """Whether it is held."""
        return self.held

    def __enter__(self) -> bool:
        return self._take(True, sys._getframe(1))

    def __exit__(self, *exc: object) -> None:
        self.release()


class TreeUnlocked(KernelBug):
    """A task set a page tree's slot without holding the mapping's ``tree_lock``."""


_OWN_REPORTS: Final[frozenset[type[BaseException]]] = frozenset({CircularLocking, TreeUnlocked})
"""The explorer's own exceptions, whose message a failing schedule quotes whole."""


class PageTree(list):  # type: ignore[type-arg]
    """A mapping's page tree in an explored kernel: a slot is set only under its ``tree_lock``.

    The kernel changes a radix tree slot with ``write_lock_irq(&mapping->
    tree_lock)`` held: ``find_get_page`` takes the page and its reference
    under the same lock, so a count checked and a slot replaced under it
    leave no window.  Without the lock there is one, but no point in it for
    the explorer to run another task in, so every schedule passed: a task
    that sets a slot without holding the mapping's ``tree_lock`` fails the
    schedule at once.  Reading needs no lock here (``radix_tree_lookup``
    under RCU or the read lock is the caller's business).
    """

    __slots__ = ("mapping_name", "tree_lock")

    def __init__(self, slots: list[Page | None], mapping_name: str, tree_lock: Spinlock) -> None:
        super().__init__(slots)
        self.mapping_name = mapping_name
        self.tree_lock = tree_lock

    def __setitem__(self, index: Any, value: Any) -> None:
        lock = self.tree_lock
        ctl = lock.ctl
        me = ctl.current if ctl.live else None
        if me is not None and not (lock.held and lock.owner is me):
            frame = sys._getframe(1)
            slot = f"slot {index}" if isinstance(index, int) else "slots"
            raise TreeUnlocked(
                f"radix tree of {self.mapping_name} changed without its tree_lock: task "
                f"{me.name} sets {slot} in {frame.f_code.co_name}"
                + (f" (tree_lock is held by task {lock.owner.name})" if lock.owner else "")
                + "; on a kernel find_get_page takes a page and its reference under that lock, "
                "so a reference count checked and a slot replaced without it leave a window "
                "for a lookup to take the old page (write_lock_irq(&mapping->tree_lock))"
            )
        super().__setitem__(index, value)


class Semaphore:
    """A sleeping lock of an explored kernel (``mmap_sem``): taken by one task, others sleep.

    Reentrant for the task that holds it, as the model's ``RLock`` is.
    """

    __slots__ = ("ctl", "depth", "mask", "name", "owner")

    def __init__(self, ctl: Controller, name: str, mask: int) -> None:
        self.ctl = ctl
        self.name = name
        self.mask = mask
        self.owner: XTask | None = None
        self.depth = 0

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        """``down``: sleep while another task holds it."""
        ctl = self.ctl
        me = ctl.current if ctl.live else None
        if self.owner is not None and self.owner is not me:
            if not blocking:
                return False
            ctl.block(self._free, "down", _single(self.mask), -1, self.name, self.mask)
        self.owner = me
        self.depth += 1
        return True

    def _free(self) -> bool:
        return self.owner is None

    def release(self) -> None:
        """``up``."""
        self.depth -= 1
        if self.depth == 0:
            self.owner = None

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


# -- the explored kernel's scheduler and memory ------------------------------------------


class ExploredScheduler(Scheduler):
    """The scheduler of an explored kernel (the class of ``kernel.sched`` while exploring).

    ``tick`` (``cond_resched``) is a scheduling point, and so is a page lock
    a table's ``migratepage`` releases (``page_unlocked``); a sleep blocks the
    task at a point; an event that is not a daemon becomes a task that can
    run at once (an I/O completion: the window from submission to
    completion is as long as the schedule makes it); daemon events
    (kjournald's timer) wait in the queue, not run while exploring (the
    ``kjournald`` task commits instead), and run as usual afterwards.
    """

    __slots__ = ()

    #: The controller of the schedule (set on the per-run subclass).
    ctl: Controller
    #: Turns an event into the body of a task: ``spawn(fn, args, event) -> (name, mask, body)``.
    spawn: Callable[[Callable[..., object], tuple[Any, ...], Event], tuple[str, int, Any]]

    def tick(self) -> None:
        """``cond_resched``: a scheduling point, labelled with the page the caller works on.

        Raises:
            KernelBug: the task holds a spinlock: on a kernel without
                preemption ``cond_resched`` schedules with it held (and with
                interrupts off under ``tree_lock``), where another task on
                this CPU may spin on it for ever; ``cond_resched_lock`` is the
                call that drops it first.  Under the releases whose
                ``buffer_migrate_page`` sleeps under ``private_lock``, a
                ``private_lock`` held alone is let be, as a sleep there is.
        """
        self.now += 1
        ctl = self.ctl
        if not ctl.live:
            return
        me = ctl.current
        if (
            me is not None
            and me.holding
            and not (ctl.kernel.semantics.buffer_private_lock and _tolerated(me.holding))
        ):
            raise KernelBug(
                f"cond_resched() called from invalid context: {me.name} reschedules in "
                f"{_function()} holding {_spinlocks_held(me.holding)}, which schedule() "
                "keeps held (cond_resched_lock drops it first)"
            )
        frame = sys._getframe(1)
        page = frame.f_locals.get("page")
        index, pfn, mask = ctl.page_label(page if isinstance(page, Page) else None)
        ctl.point("cond_resched", index, pfn, "", mask)

    def unlocked(self, page: object, lock: str) -> None:
        """A spinlock the model has no object for was released: a scheduling point."""
        ctl = self.ctl
        if not ctl.live:
            return
        index, pfn, mask = ctl.page_label(page if isinstance(page, Page) else None)
        ctl.point("spin_unlock", index, pfn, lock, mask)

    def page_unlocked(self, page: Page) -> None:
        """A page lock released where another task may take it before this one goes on.

        A scheduling point when a table's ``migratepage`` releases a page's
        lock (it drops the lock and takes it again, to wait for something
        or by mistake: another task may lock the page, start writeback on
        it or truncate it meanwhile), and when an accessor task does
        (``unlock_page`` in the fault, ``write`` and truncate paths, the
        flusher's, and in the table's own members they call: the page stays
        in the accessor's hands, its reference held, and it goes on with it
        or takes the lock again) while it holds no spinlock: the kernel's
        paths can be preempted there, and on another CPU the migration may
        take the lock at once.  The engine's own releases (a page it gives
        up, the generic path's ``pageout``) and an I/O completion's (an
        interrupt) are not points: they open no window in a table's code,
        and would multiply the schedules of every table.
        """
        ctl = self.ctl
        me = ctl.current
        if not ctl.live or me is None:
            return
        caller = sys._getframe(2)  # unlock_page's caller
        if me.key == "m":
            if not _in_migratepage(caller):
                return
        elif not me.key.startswith("a") or "." in me.key or me.holding:
            return
        index, pfn, mask = ctl.page_label(page)
        name = caller.f_code.co_name
        ctl.point("unlock_page", index, pfn, f"page lock of pfn {page.pfn}", mask, name)

    def call_at(
        self, when: int, fn: Callable[..., object], *args: Any, daemon: bool = False
    ) -> Event:
        """Schedule ``fn(*args)``: a task of its own while exploring (a daemon: later)."""
        ctl = self.ctl
        if daemon or not ctl.live:
            return super().call_at(when, fn, *args, daemon=daemon)
        event = Event(when, fn, args, daemon)
        name, mask, body = self.spawn(fn, args, event)
        current = ctl.current
        owner = current.task if current is not None else ctl.kernel.current
        ctl.add_io(name, owner, mask, body, current)
        index = _single(mask)
        ctl.point("io_submit", index, -1, "", mask)
        return event

    def wait(
        self,
        ready: Callable[[], bool],
        what: str,
        wq: WaitQueue | None = None,
        announce: Callable[[], None] | None = None,
    ) -> None:
        """Sleep until ``ready()``: the task blocks, others run."""
        if not self.ctl.live:
            super().wait(ready, what, wq, announce)
            return
        self.ctl.block(ready, "sleep", -1, -1, what, ALL)

    def tried(self, obj: Page | BufferHead, what: str) -> None:
        """A trylock found the lock of ``obj`` held: a try of a spin (:meth:`Controller.tried`)."""
        ctl = self.ctl
        if not ctl.live:
            super().tried(obj, what)
            return
        if isinstance(obj, Page):
            page = obj
            label = f"{what} of pfn {obj.pfn}"

            def free() -> bool:
                return not page.flags & PG.locked

        else:
            from fsaops.buffer import BH

            bh = obj
            page = bh.b_page
            label = f"{what} of {_bh_name(bh)}"

            def free() -> bool:
                return not bh.b_state & BH.lock

        # The caller of trylock_buffer or trylock_page: the code that spins.
        ctl.tried(id(obj), page, label, sys._getframe(2), free)

    def wait_on_page_bit(self, page: Page, bit: int, what: str) -> None:
        """Sleep until ``bit`` is clear in ``page.flags`` (page lock, writeback)."""
        ctl = self.ctl
        if not ctl.live:
            super().wait_on_page_bit(page, bit, what)
            return
        index, pfn, mask = ctl.page_label(page)
        ready, free = sleep_on_bit(ctl, page, "flags", bit, PG.waiters)
        ctl.block(ready, "sleep", index, pfn, f"{what} of pfn {page.pfn}", mask, free=free)

    def wait_on_buffer_bit(self, bh: BufferHead, bit: int, what: str) -> None:
        """Sleep until ``bit`` is clear in ``bh.b_state`` (buffer lock)."""
        ctl = self.ctl
        if not ctl.live:
            super().wait_on_buffer_bit(bh, bit, what)
            return
        index, pfn, mask = ctl.page_label(bh.b_page)
        from fsaops.buffer import BH

        ready, free = sleep_on_bit(ctl, bh, "b_state", bit, BH.waiters)
        # V4 to V8 lock the buffers with private_lock held (lock_buffer may
        # sleep there): a release that does so lets any table do the same.
        tolerated = what == "buffer lock" and ctl.kernel.semantics.buffer_private_lock
        label = f"{what} of {_bh_name(bh)}"
        ctl.block(ready, "sleep", index, pfn, label, mask, under_private_lock=tolerated, free=free)

    def wake_page(self, page: Page) -> None:
        """Wake the page's sleepers whose bit is clear now (``wake_up_page``)."""
        _woken(self.ctl, page, page.flags)
        super().wake_page(page)

    def wake_buffer(self, bh: BufferHead) -> None:
        """Wake the buffer's sleepers whose bit is clear now (``wake_up_bit``)."""
        _woken(self.ctl, bh, bh.b_state)
        super().wake_buffer(bh)

    def run_next(self) -> bool:
        """Not while exploring: events are tasks then."""
        if self.ctl.live:
            raise KernelBug("run_next() inside an explored schedule")
        return super().run_next()

    def run_for(self, ticks: int) -> None:
        """Not while exploring: events are tasks then."""
        if self.ctl.live:
            raise KernelBug("run_for() inside an explored schedule")
        super().run_for(ticks)


def _woken(ctl: Controller, obj: object, word: int) -> None:
    """A wake of ``obj``'s queue, its bits ``word``: it wakes the sleepers of each bit clear.

    As 2.6.15's ``wake_bit_function`` does (``test_bit`` at the wake): a wake
    sent while the bit is still set wakes nobody, so a release that wakes
    before it clears the bit loses the wake-up.
    """
    key = id(obj)
    bits = ctl.waited.get(key)
    if not bits:
        return
    wakes = ctl.wakes
    for bit in bits:
        if not word & bit:
            wakes[key, bit] = wakes.get((key, bit), 0) + 1


def sleep_on_bit(
    ctl: Controller, obj: Page | BufferHead, field: str, bit: int, waiters: int
) -> tuple[Callable[[], bool], Callable[[], bool] | None]:
    """``(ready, free)`` of a task that sleeps until ``bit`` of ``obj.<field>`` is clear.

    As ``__wait_on_bit`` sleeps on the object's wait queue, the task goes
    on only when the bit is clear and someone woke the queue, with the bit
    clear, since it went to sleep (:meth:`ExploredScheduler.wake_page`,
    ``wake_buffer``: what ``unlock_page``, ``end_page_writeback`` and
    ``unlock_buffer`` do after they clear the bit).  While it sleeps it is
    on the queue: the object's ``waiters`` bit is set, so that the next release wakes it, and a wake
    that finds the bit taken again leaves it asleep until the next.  With
    the bit clear at once, the task does not sleep (``free`` is ``None``).
    """

    def clear() -> bool:
        return not getattr(obj, field) & bit

    if clear():
        return clear, None
    ctl.waited.setdefault(id(obj), set()).add(bit)
    wakes = ctl.wakes
    key = (id(obj), bit)
    seen = [wakes.get(key, 0)]

    def ready() -> bool:
        woken = wakes.get(key, 0) != seen[0]
        if woken and clear():
            return True
        if woken:  # woken, and the bit is taken again: back to sleep until the next wake
            seen[0] = wakes.get(key, 0)
        setattr(obj, field, getattr(obj, field) | waiters)  # still on the wait queue
        return False

    ready()  # prepare_to_wait: on the queue before it sleeps
    return ready, clear


_ENGINE: Final = ("fsaops.migrate", "migrate_pages")
"""The engine's function that calls a table's ``migratepage``."""


def _in_migratepage(frame: Any) -> bool:
    """Whether ``frame`` runs inside a table's ``migratepage``, called by ``migrate_pages``.

    ``migrate_pages`` names what it is doing with a page in its local
    ``path``: ``"migratepage"`` from just before the call until it returns.
    """
    while frame is not None:
        code = frame.f_code
        if code.co_name == _ENGINE[1] and frame.f_globals.get("__name__") == _ENGINE[0]:
            return bool(frame.f_locals.get("path") == "migratepage")
        frame = frame.f_back
    return False


def _bh_name(bh: BufferHead) -> str:
    size = bh.b_size
    offset = bh.b_data & (bh.b_page.node.page_size - 1)
    return f"buffer head {offset // size if size else 0} of pfn {bh.b_page.pfn}"


class ExploredNode(Node):
    """A NUMA node of an explored kernel: a freed frame is poisoned.

    A task that kept using a frame after it was freed (a stale pte, a DMA
    still reading it) then sees garbage, which the checks find.
    """

    __slots__ = ()

    def free_page(self, page: Page) -> None:
        """Free the frame, then fill it with ``POISON_BYTE``."""
        super().free_page(page)
        off = (page.pfn - self.start_pfn) << self.page_shift
        self.mem[off : off + self.page_size] = bytes([POISON_BYTE]) * self.page_size


def flags_of(page: Page) -> str:
    """``locked|dirty`` for messages."""
    return "|".join(name for bit, name in PG.NAMES if page.flags & bit) or "0"
