"""A sleeping lock a table may keep of its own: :class:`Mutex` (the kernel's ``struct mutex``).

A table whose code serializes on state of its own (a per-filesystem
structure that ``migratepage`` and ``writepage`` both change) needs a
lock the model knows about.  Under ``fsaops migrate`` a :class:`Mutex` is
a plain lock, but one taken in any member with a spinlock held, from the
moment its machine is made, is the kernel's ``might_sleep`` ``BUG`` (``running_on``).  Under
``fsaops explore`` it is a lock of the explored kernel, as the mapping's
and the process's locks are: taking it is a scheduling point, a task that
finds it held sleeps until it is released (other tasks run meanwhile),
and releasing it is a point again.  Taking
one with a spinlock held is the kernel's ``might_sleep`` ``BUG``, held or
free, and its name is its class for the lock-order check
(:mod:`fsaops.explore.lockdep`).

A :class:`threading.Lock` does none of that: the explorer runs one task at
a time, so a task that waits on such a lock while the task holding it is
stopped at a scheduling point waits for ever, and ``fsaops explore``
stops with ``cannot explore``.
"""

from __future__ import annotations

import _thread
import sys
import weakref
from collections.abc import Callable
from typing import Any, Final, Protocol

from fsaops import spinlock
from fsaops.errors import KernelBug
from fsaops.spinlock import LOCKUP_SECONDS

__all__ = ["Mutex", "explored_by", "running_on"]

_EVERY_PAGE: Final = -1
"""A step's page mask when it may touch any page."""


class _Explorer(Protocol):
    """What a :class:`Mutex` needs of ``fsaops explore``'s controller."""

    @property
    def live(self) -> bool: ...

    @property
    def current(self) -> object: ...

    def point(self, kind: str, page: int, pfn: int, lock: str, mask: int) -> None: ...

    def block(
        self, ready: Callable[[], bool], kind: str, page: int, pfn: int, lock: str, mask: int
    ) -> None: ...

    def taking(self, name: str, caller: object) -> None: ...

    def might_sleep(self, what: str) -> None: ...

    def holds(self, name: str, held: bool) -> None: ...


_explorer: list[_Explorer | None] = spinlock.explorer
"""The controller of the schedule this process runs, if any (one slot, the
:class:`~fsaops.spinlock.Spinlock` one)."""


class _Sched(Protocol):
    """What a :class:`Mutex` needs of the scheduler of ``fsaops migrate``'s machine."""

    def might_sleep_mutex(self, what: str, kernel: Any) -> None: ...


class _Engine(Protocol):
    """The machine ``fsaops migrate`` migrates on: its scheduler."""

    @property
    def sched(self) -> _Sched: ...


_engine: list[Callable[[], _Engine | None]] = [lambda: None]
"""The machine made, or whose ``migrate_pages`` ran, last (one slot, a weak
reference: a finished run's machine is not kept alive for it)."""


def running_on(kernel: _Engine) -> None:
    """Plugin code runs on ``kernel`` now: from here on, a mutex taken anywhere asks it.

    Taking a mutex is the kernel's ``might_sleep`` check, held or free: a
    table member (``migratepage``, ``writepage``, ``releasepage``,
    ``readpage``, ``prepare_write``, any other) that takes one holding a
    spinlock (a mapping's ``tree_lock`` or ``private_lock``, a node's
    ``lru_lock``, a ``Spinlock`` of its own) is a ``BUG`` under ``fsaops
    migrate`` as it is under ``fsaops explore``: as the world is built,
    during the migration and in the proofs after it.  A machine calls this
    as it is made, and ``migrate_pages`` as it starts (another machine may
    have been made since).
    """
    if _engine[0]() is not kernel:  # once per machine: under V4 this runs once per page
        _engine[0] = weakref.ref(kernel)


def explored_by(explorer: _Explorer | None) -> None:
    """The controller of the schedule this process runs (``None``: no schedule); the explorer's."""
    _explorer[0] = explorer


class Mutex:
    """A sleeping lock of a table's own (``mutex_lock``/``mutex_unlock``), as ``with lock:``.

    Make it once (at import, or with the table's state) and take it where
    the table needs it, in any member; it is not recursive.  ``fsaops
    explore`` schedules it: a task that finds it held sleeps and the
    others run, so holding it across a scheduling point (a spinlock, a
    sleep, an I/O) is as fine as it is in the kernel.

    Args:
        name: how the explorer's interleavings and messages name it.
    """

    __slots__ = ("_lock", "_owner", "name")

    def __init__(self, name: str = "mutex") -> None:
        self.name = name
        self._lock = _thread.allocate_lock()
        self._owner: object = None

    def __repr__(self) -> str:
        return f"<Mutex {self.name} {'held' if self._lock.locked() else 'free'}>"

    def _me(self) -> object:
        explorer = _explorer[0]
        if explorer is not None and explorer.live:
            return explorer.current
        return _thread.get_ident()

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        """``mutex_lock``: take it, sleeping while another task holds it.

        Raises:
            KernelBug: the task already holds it (the kernel would deadlock).
        """
        explorer = _explorer[0]
        me = self._me()
        if self._lock.locked() and self._owner == me:
            raise KernelBug(f"mutex_lock of {self.name}, which this task already holds")
        if explorer is None or not explorer.live:
            engine = _engine[0]()
            if blocking and engine is not None:
                engine.sched.might_sleep_mutex(
                    f"the mutex {self.name} (mutex_lock may sleep)", engine
                )
            if blocking and timeout < 0:
                if not self._lock.acquire(True, LOCKUP_SECONDS):
                    raise KernelBug(
                        f"mutex_lock of {self.name} waited {LOCKUP_SECONDS:g} s: code that ran "
                        "before returned with it held (a table member that took it and never "
                        "let go)"
                    )
            elif not self._lock.acquire(blocking, timeout):
                return False
            self._owner = me
            return True
        explorer.point("mutex_lock", -1, -1, self.name, _EVERY_PAGE)
        lock = self._lock
        if blocking:
            explorer.might_sleep(f"mutex_lock of {self.name}")  # held or free
            # lockdep: the order with every lock the task holds (a trylock makes none)
            explorer.taking(self.name, sys._getframe(1))
        if lock.locked():
            if not blocking:
                return False
            explorer.block(
                lambda: not lock.locked(), "sleep", -1, -1, f"mutex {self.name}", _EVERY_PAGE
            )
        if not lock.acquire(False):  # pragma: no cover - one task runs at a time
            raise KernelBug(f"mutex_lock of {self.name}: woken with it still held")
        self._owner = me
        explorer.holds(self.name, True)
        return True

    def release(self) -> None:
        """``mutex_unlock``.

        Raises:
            KernelBug: nobody holds it.
        """
        if not self._lock.locked():
            raise KernelBug(f"mutex_unlock of {self.name}, which nobody holds")
        self._owner = None
        self._lock.release()
        explorer = _explorer[0]
        if explorer is not None and explorer.live:
            explorer.holds(self.name, False)
            explorer.point("mutex_unlock", -1, -1, self.name, _EVERY_PAGE)

    def locked(self) -> bool:
        """Whether it is held."""
        return self._lock.locked()

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
