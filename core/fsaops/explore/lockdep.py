"""The order locks are nested in (spinlocks, a table's mutexes), checked as lockdep checks it.

A task that takes lock B while it holds lock A makes the *order* A -> B
between their classes (a lock's class is its kernel name: ``tree_lock``,
``private_lock``, ``i_mmap_lock``, ``page_table_lock``, ``anon_vma lock``,
whichever mapping or process it belongs to).  Two tasks that take the same
two classes in opposite orders can deadlock on a kernel: each holds the
lock the other waits for.  The interleaving that does it need not come up
in an explored schedule (each explored page is the only page of its own
file, so two tasks rarely want the locks of one mapping at once), so the
check does not wait for it: when a task takes B while it holds A and the
orders known already lead from B to A, the schedule fails, as
``CONFIG_PROVE_LOCKING`` reports "possible circular locking dependency
detected".

The orders known are, in every schedule:

* the kernel's own (:data:`KERNEL_ORDER`), from the lock ordering comment
  at the top of 2.6.15's ``mm/filemap.c`` and the paths it names.  Some of
  them the model's paths do not nest (its ``try_to_free_buffers`` clears
  the dirty bit with no ``tree_lock``), but a kernel's do, so a table is held
  to them from the first schedule;
* those the schedule's own tasks made so far;
* those earlier schedules of the same search made (the search passes them
  on to every schedule it runs after).  A schedule that fails on one of
  them records it in its replay string, so that the replay knows it too
  and fails the same way.

The spinlocks an explored kernel schedules are tracked (see
:mod:`fsaops.explore.runtime`), and so are the tables' own locks
(:class:`~fsaops.mutex.Mutex`, of the class their name says).  The kernel's
orders know nothing of a table's mutexes: for them the orders earlier
schedules made are what finds two nested both ways.  Not the page lock
and the buffer lock (bit locks, which lockdep does not track either), not
a node's ``lru_lock`` and the swap device's lock (plain locks taken on the
engine's per-page path, which the explorer does not replace), nor
``mmap_sem``.  A trylock makes no order (it cannot wait), and neither does
taking a second lock of the class already held.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Final

import attrs

from fsaops.errors import KernelBug, printable

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = [
    "KERNEL",
    "KERNEL_ORDER",
    "CircularLocking",
    "LockGraph",
    "LockOrder",
    "lock_class",
    "site",
]

KERNEL: Final = ""
"""The ``task`` of an order that is the kernel's own, not one a task of a schedule made."""


@attrs.frozen
class LockOrder:
    """One order: a lock of class ``after`` was taken while one of class ``before`` was held.

    Attributes:
        before: the class held.
        after: the class taken under it.
        task: the task that took it (``migrate``, ``write@1``, ...), or
            :data:`KERNEL` for the kernel's own order.
        function: the function that took ``after`` (for the kernel's own
            order: the kernel path that nests them).
        table: the table whose code took it (its ``migratepage``), ``""``
            when it is not known to be a table's.
        earlier: it was made in an earlier schedule of the search, not in
            the one that runs.
    """

    before: str
    after: str
    task: str
    function: str
    table: str = ""
    earlier: bool = False

    def said(self) -> str:
        """``private_lock -> tree_lock (taken by task write@1 in set_page_dirty)``."""
        return f"{self.before} -> {self.after} ({self.where()})"

    def where(self) -> str:
        """Who made this order and where: the kernel's path, or a task's function."""
        if self.task == KERNEL:
            return f"the kernel's order: {self.function}"
        where = f"taken by task {self.task} in {self.function}"
        if self.table:
            where += f", table {self.table}'s migratepage"
        if self.earlier:
            where += ", in an earlier schedule of this search"
        return where

    def to_list(self) -> list[str]:
        """As a replay string records it: ``[before, after, task, function, table]``."""
        return [self.before, self.after, self.task, self.function, self.table]

    @classmethod
    def from_list(cls, item: Sequence[str]) -> LockOrder:
        """Read :meth:`to_list` back, as an order of an earlier schedule."""
        before, after, task, function, table = item
        return cls(before, after, task, function, table, earlier=True)


KERNEL_ORDER: Final = (
    LockOrder(
        "private_lock",
        "tree_lock",
        KERNEL,
        "try_to_free_buffers takes tree_lock under private_lock (clear_page_dirty); "
        "mm/filemap.c: private_lock -> swap_lock -> tree_lock",
    ),
    LockOrder(
        "i_mmap_lock",
        "private_lock",
        KERNEL,
        "vmtruncate: unmap_mapping_range under i_mmap_lock dirties pages "
        "(__set_page_dirty_buffers takes private_lock)",
    ),
    LockOrder(
        "i_mmap_lock",
        "page_table_lock",
        KERNEL,
        "try_to_unmap_file takes each mapping process's page_table_lock under i_mmap_lock",
    ),
    LockOrder("i_mmap_lock", "anon_vma lock", KERNEL, "vma_adjust takes anon_vma lock"),
    LockOrder(
        "anon_vma lock",
        "page_table_lock",
        KERNEL,
        "try_to_unmap_anon takes each process's page_table_lock under the anon_vma lock",
    ),
    LockOrder(
        "page_table_lock",
        "private_lock",
        KERNEL,
        "try_to_unmap_one dirties the page under page_table_lock (set_page_dirty)",
    ),
    LockOrder(
        "page_table_lock",
        "tree_lock",
        KERNEL,
        "try_to_unmap_one dirties the page under page_table_lock (set_page_dirty)",
    ),
)
"""The kernel's own orders between the classes the explorer tracks (2.6.15's ``mm/filemap.c``)."""


class CircularLocking(KernelBug):
    """A task took two lock classes in the order opposite to one known (lockdep's report).

    Its message is the explorer's own and says both orders and where each was
    made: the schedule's failure quotes it whole, where a plugin's exception
    is cut short.
    """


def lock_class(name: str) -> str:
    """The class of a lock named ``tree_lock of ext2:f0``: ``tree_lock``."""
    return name.split(" of ", 1)[0]


_SKIPPED: Final = frozenset(
    {"fsaops.spinlock", "fsaops.mutex", "fsaops.explore.runtime", "fsaops.explore.lockdep"}
)
_ENGINE: Final = ("fsaops.migrate", "migrate_pages")


def site(frame: Any) -> tuple[str, str]:
    """(function, table) of the code that took a lock, from the frame that called ``acquire``.

    The function is the first caller outside the lock helpers (``spin_lock``
    reads as its caller).  The table is the explored table's name when the
    lock was taken inside its ``migratepage`` (``migrate_pages`` says so in
    its local ``path``), else ``""``.
    """
    while frame is not None and frame.f_globals.get("__name__") in _SKIPPED:
        frame = frame.f_back
    if frame is None:
        return "?", ""
    function: str = frame.f_code.co_name
    table = ""
    up = frame
    while up is not None:
        code = up.f_code
        if code.co_name == _ENGINE[1] and up.f_globals.get("__name__") == _ENGINE[0]:
            if up.f_locals.get("path") == "migratepage":
                table = _table_of(up.f_locals.get("page"))
            break
        up = up.f_back
    return function, table


def _table_of(page: object) -> str:
    from fsaops.migrate import table_name
    from fsaops.page import Page

    if not isinstance(page, Page):
        return ""
    try:
        return printable(table_name(page))  # a plugin's name: shown escaped if it must be
    except Exception:  # a page a table broke: the order stands without its table
        return ""


class LockGraph:
    """The orders known in one schedule, and the check every nested acquire makes.

    Args:
        known: the orders known before the schedule starts: the kernel's
            own and those of earlier schedules.

    Attributes:
        new: the orders this schedule's tasks made that were not known (for
            the search to pass on to the schedules after it).
        used: the orders of earlier schedules that a failure of this schedule
            rests on (for its replay string).
    """

    __slots__ = ("edges", "new", "used")

    def __init__(self, known: Iterable[LockOrder] = KERNEL_ORDER) -> None:
        #: ``edges[before][after]``: how the order before -> after was first made.
        self.edges: dict[str, dict[str, LockOrder]] = {}
        self.new: list[LockOrder] = []
        self.used: list[LockOrder] = []
        for order in known:
            self.edges.setdefault(order.before, {}).setdefault(order.after, order)

    def taking(self, task: str, held: Sequence[str], name: str, frame: Any) -> str:
        """Task ``task`` takes lock ``name`` while it holds ``held`` (lock names, oldest first).

        Returns ``""``, after recording every order it makes, or the
        message of the first order that closes a cycle ("possible circular
        locking dependency detected"), with nothing recorded.
        """
        after = lock_class(name)
        edges = self.edges
        fresh = [
            (lock, before)
            for lock in held
            if (before := lock_class(lock)) != after and after not in edges.get(before, ())
        ]
        if not fresh:
            return ""
        function, table = site(frame)
        for lock, before in fresh:
            back = self._path(after, before)
            if back is not None:
                self.used = [order for order in back if order.earlier]
                return _cycle(task, lock, name, function, table, back)
        for _lock, before in fresh:
            order = LockOrder(before, after, task, function, table)
            if after not in edges.setdefault(before, {}):
                edges[before][after] = order
                self.new.append(order)
        return ""

    def _path(self, start: str, goal: str) -> list[LockOrder] | None:
        """The orders that lead from class ``start`` to class ``goal`` (fewest), or ``None``."""
        edges = self.edges
        came: dict[str, LockOrder | None] = {start: None}
        queue = [start]
        for here in queue:
            for there, order in edges.get(here, {}).items():
                if there in came:
                    continue
                came[there] = order
                if there == goal:
                    path: list[LockOrder] = []
                    step: LockOrder | None = order
                    while step is not None:
                        path.append(step)
                        step = came[step.before]
                    return path[::-1]
                queue.append(there)
        return None


def _cycle(
    task: str, held: str, name: str, function: str, table: str, back: Sequence[LockOrder]
) -> str:
    """The message of a task that takes ``name`` holding ``held`` against the orders ``back``."""
    before, after = lock_class(held), lock_class(name)
    at_fault = f"; table {table}'s migratepage takes them out of order" if table else ""
    if not table:
        tables = sorted({order.table for order in back if order.table})
        if tables:
            at_fault = f"; table {', '.join(tables)}'s migratepage made the other order"
    return (
        f"possible circular locking dependency detected: task {task} takes {name} in "
        f"{function}{f' (table {table})' if table else ''} while it holds {held}: the order "
        f"{before} -> {after}; but {after} -> {before} is known: "
        + "; ".join(order.said() for order in back)
        + f". On a kernel a task that holds {after} and waits for {before} while this one "
        f"holds {before} and waits for {after} deadlocks with it (an ABBA deadlock): take "
        f"{before} and {after} in one order everywhere{at_fault}"
    )
