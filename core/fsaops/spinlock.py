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

A lock found held is waited for, as before, but for at most
:data:`LOCKUP_SECONDS`; then the wait is a :class:`~fsaops.errors.KernelBug`
naming the lock, instead of a run (or a test of the conformance suite)
that never ends.  Another real thread holds such a lock for microseconds;
``fsaops explore``'s locks block its tasks as they always did.

The locks taken off the per-page path (a mapping's ``i_mmap_lock``, an
``anon_vma``'s lock, a process's ``page_table_lock``: ``try_to_unmap``,
faults, ``remove_from_swap``) are :class:`Spinlock` objects, which make the
same check on every ``acquire`` and ``with``, and so are the locks a table
keeps of its own.  A :class:`Spinlock` held is known
(:func:`held_spinlocks`): a task that sleeps holding one is a kernel bug
(:meth:`fsaops.sched.Scheduler.might_sleep`).
"""

from __future__ import annotations

import threading
from typing import Final, Protocol

from fsaops.errors import KernelBug

__all__ = ["LOCKUP_SECONDS", "Spinlock", "held_spinlocks", "spin_lock_contended"]

LOCKUP_SECONDS: Final = 10.0
"""Seconds a spinlock found held may stay held before the wait is a lockup."""


class _Lock(Protocol):
    def acquire(self, blocking: bool = True, timeout: float = -1, /) -> bool: ...


def spin_lock_contended(lock: _Lock, name: str, owner: object) -> None:
    """Take ``lock`` (``name`` of ``owner``), which was found held: wait for it, within limits.

    Raises:
        KernelBug: it was still held after :data:`LOCKUP_SECONDS` seconds.
    """
    if lock.acquire(True, LOCKUP_SECONDS):
        return
    raise KernelBug(
        f"spinlock lockup suspected: {name} of {owner!r} stayed held for "
        f"{LOCKUP_SECONDS:g} s; code that ran before returned with it held (a table "
        "member that took it and never let go)"
    )


class Spinlock:
    """A spinlock with the lockup check: a wait past :data:`LOCKUP_SECONDS` is a ``BUG()``.

    As :class:`threading.Lock` (``acquire``, ``release``, ``locked``,
    ``with``), for the locks that code of a table can take and forget off
    the per-page path: ``name`` and ``owner`` say which it is.
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
        _HELD.discard(self)
        self._lock.release()

    def locked(self) -> bool:
        """Whether someone holds it."""
        return self._lock.locked()

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        _HELD.discard(self)
        self._lock.release()


_HELD: set[Spinlock] = set()
"""Every :class:`Spinlock` held now, in any machine of the process."""


def held_spinlocks() -> list[Spinlock]:
    """Every :class:`Spinlock` held now (in any machine of the process), in no order."""
    return list(_HELD)
