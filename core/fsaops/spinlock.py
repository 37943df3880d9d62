"""Spinlocks taken by hand, with the kernel's lockup check (``lib/spinlock_debug.c``).

The model's spinlocks (a mapping's ``tree_lock`` and ``private_lock``, a
node's ``lru_lock``) are plain :class:`threading.Lock` objects, taken with
``acquire()`` and ``release()`` on the paths that run once a page.  Code
that returns with one held (a ``migratepage`` that forgets its
``spin_unlock``) leaves the next ``spin_lock`` of it waiting for ever: in
the kernel a self-deadlock, which ``CONFIG_DEBUG_SPINLOCK`` reports as
"spinlock lockup suspected" after about a second of spinning.

The per-page paths take a mapping's ``tree_lock`` and ``private_lock`` this
way (the locks a table's code can take itself), so that the usual case
costs one look at the lock::

    if lock.locked():
        spin_lock_contended(lock, "tree_lock", mapping)
    else:
        lock.acquire()

(:func:`spin_lock` says the same).  A lock found held is waited for, but
not for ever.  On a machine no other thread runs, only the task that takes
it can hold it (code that returned with it held, or that holds it and
calls code that takes it again): after :data:`RECURSION_SECONDS` that is
the kernel's "spinlock recursion", a :class:`~fsaops.errors.KernelBug`
naming the lock.  Where other real threads run (they hold such a lock for
microseconds), the wait lasts at most :data:`LOCKUP_SECONDS`, then is a
lockup.  ``fsaops explore``'s locks block its tasks as they always did.
Dirtying a clean page takes its mapping's ``tree_lock`` for a moment
(:func:`tag_dirty`), as the kernel's ``set_page_dirty`` does.

The locks taken off the per-page path (a mapping's ``i_mmap_lock``, an
``anon_vma``'s lock, a process's ``page_table_lock``: ``try_to_unmap``,
faults, ``remove_from_swap``) are :class:`Spinlock` objects, which make the
same check on every ``acquire`` and ``with``, and so are the locks a table
keeps of its own.  A :class:`Spinlock` held is known
(:func:`held_spinlocks`): a task that sleeps holding one is a kernel bug
(:meth:`fsaops.sched.Scheduler.might_sleep`).
"""

from __future__ import annotations

import sys
import threading
from typing import TYPE_CHECKING, Any, Final, Protocol

from fsaops.errors import KernelBug

if TYPE_CHECKING:
    from fsaops.mapping import AddressSpace

__all__ = [
    "LOCKUP_SECONDS",
    "RECURSION_SECONDS",
    "Spinlock",
    "held_spinlocks",
    "spin_lock",
    "spin_lock_contended",
    "tag_dirty",
]

LOCKUP_SECONDS: Final = 10.0
"""Seconds a spinlock found held may stay held before the wait is a lockup."""


class _Lock(Protocol):
    def acquire(self, blocking: bool = True, timeout: float = -1, /) -> bool: ...

    def locked(self) -> bool: ...

    def release(self) -> None: ...


RECURSION_SECONDS: Final = 0.05
"""Seconds a plain lock found held is waited for before its holder is taken to be the taker."""


def spin_lock_contended(lock: _Lock, name: str, owner: object) -> None:
    """Take ``lock`` (``name`` of ``owner``), which was found held: wait for it, within limits.

    On a machine no other thread runs on (``Scheduler.threads`` is 0), a
    plain lock still held after :data:`RECURSION_SECONDS` can only be held
    by the task that takes it: code that returned with it held, or that
    holds it and calls code that takes it (``set_page_dirty`` under
    ``tree_lock``).  That is the kernel's "spinlock recursion", said at
    once rather than after :data:`LOCKUP_SECONDS`.

    Raises:
        KernelBug: the taker holds it already, or it was still held after
            :data:`LOCKUP_SECONDS` seconds.
    """
    if lock.acquire(True, RECURSION_SECONDS):
        return
    if _alone(lock, owner):
        raise KernelBug(
            f"spinlock recursion: {name} of {owner!r} is held by the task that takes it (on "
            "a kernel this CPU spins on it for ever); code that ran before returned with it "
            "held, or holds it and called code that takes it again (set_page_dirty takes "
            "tree_lock, set_page_dirty_buffers private_lock too)"
        )
    if lock.acquire(True, LOCKUP_SECONDS - RECURSION_SECONDS):
        return
    raise KernelBug(
        f"spinlock lockup suspected: {name} of {owner!r} stayed held for "
        f"{LOCKUP_SECONDS:g} s; code that ran before returned with it held (a table "
        "member that took it and never let go)"
    )


def _alone(lock: _Lock, owner: object) -> bool:
    """Whether ``lock`` is a plain lock of a machine that runs no other thread of its own."""
    if type(lock) is not _LOCK_TYPE:  # fsaops explore's locks, which block its tasks
        return False
    sched = getattr(getattr(owner, "kernel", None), "sched", None)
    return sched is not None and getattr(sched, "threads", 1) == 0


_LOCK_TYPE: Final = type(threading.Lock())


def spin_lock(lock: _Lock, name: str, owner: object) -> None:
    """Take ``lock`` (``name`` of ``owner``): at once if free, else :func:`spin_lock_contended`.

    Raises:
        KernelBug: it was found held, and stayed held :data:`LOCKUP_SECONDS` seconds.
    """
    if lock.locked():
        spin_lock_contended(lock, name, owner)
    else:
        lock.acquire()


def tag_dirty(mapping: AddressSpace) -> None:
    """Take and drop ``mapping``'s ``tree_lock``, as tagging a page dirty in its tree does.

    ``__set_page_dirty_nobuffers`` and ``__set_page_dirty_buffers`` take it
    (``write_lock_irq``) when a page turns dirty: code that dirties a page
    with the lock held (a ``migrate_page_copy`` under ``tree_lock``)
    deadlocks on a kernel, and here its wait is the lockup check's.
    """
    lock = mapping.tree_lock
    spin_lock(lock, "tree_lock", mapping)
    lock.release()


class _Explored(Protocol):
    """The explored kernel's lock standing for a :class:`Spinlock` in a schedule.

    The lock itself is not taken there: a schedule that ends with a task
    holding it leaves nothing held for the next.
    """

    def take(self, blocking: bool, caller: Any) -> bool: ...

    def let_go(self, caller: Any) -> None: ...

    def locked(self) -> bool: ...


class _Explorer(Protocol):
    """What a :class:`Spinlock` needs of ``fsaops explore``'s controller."""

    @property
    def live(self) -> bool: ...

    def own_spinlock(self, lock: Spinlock) -> _Explored: ...


explorer: list[Any] = [None]
"""The controller of the schedule this process runs, if any (one slot; set by
:func:`fsaops.mutex.explored_by`)."""


class Spinlock:
    """A spinlock with the lockup check: a wait past :data:`LOCKUP_SECONDS` is a ``BUG()``.

    As :class:`threading.Lock` (``acquire``, ``release``, ``locked``,
    ``with``), for the locks that code of a table can take and forget off
    the per-page path: ``name`` and ``owner`` say which it is.  In a
    schedule of ``fsaops explore`` it is a spinlock of the explored kernel,
    as the mapping's locks are: taking and releasing it are scheduling
    points, a task that wants it while another holds it spins, lockdep
    orders it by its name, and a task that sleeps or takes a mutex while
    it holds it is the ``might_sleep`` ``BUG``.
    """

    __slots__ = ("_lock", "name", "owner")

    def __init__(self, name: str, owner: object) -> None:
        self._lock = threading.Lock()
        self.name = name
        self.owner = owner

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        """Take the lock; a wait for ever is a wait of at most :data:`LOCKUP_SECONDS`.

        Raises:
            KernelBug: it stayed held that long.
        """
        ctl: _Explorer | None = explorer[0]
        if ctl is not None and ctl.live:
            return ctl.own_spinlock(self).take(blocking, sys._getframe(1))
        if not blocking or timeout >= 0:
            taken = self._lock.acquire(blocking, timeout)
            if taken:
                _HELD.add(self)
            return taken
        if not self._lock.acquire(False):
            spin_lock_contended(self._lock, self.name, self.owner)
        _HELD.add(self)
        return True

    def release(self) -> None:
        """Let the lock go."""
        ctl: _Explorer | None = explorer[0]
        if ctl is not None and ctl.live:
            ctl.own_spinlock(self).let_go(sys._getframe(1))
            return
        _HELD.discard(self)
        self._lock.release()

    def locked(self) -> bool:
        """Whether someone holds it."""
        ctl: _Explorer | None = explorer[0]
        if ctl is not None and ctl.live:
            return ctl.own_spinlock(self).locked()
        return self._lock.locked()

    def __enter__(self) -> bool:
        ctl: _Explorer | None = explorer[0]
        if ctl is not None and ctl.live:
            return ctl.own_spinlock(self).take(True, sys._getframe(1))
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        ctl: _Explorer | None = explorer[0]
        if ctl is not None and ctl.live:
            ctl.own_spinlock(self).let_go(sys._getframe(1))
            return
        _HELD.discard(self)
        self._lock.release()


_HELD: set[Spinlock] = set()
"""Every :class:`Spinlock` held now, in any machine of the process."""


def held_spinlocks() -> list[Spinlock]:
    """Every :class:`Spinlock` held now (in any machine of the process), in no order."""
    return list(_HELD)
