"""The operating system's memory behind the model's: committing it ahead, in a thread of its own.

A node's frames and a block device's bytes are anonymous memory maps
(:func:`~fsaops.memory.anonymous_memory`), which the operating system
commits a page at a time as each is first written.  On a large run that
is a good part of the time: about a microsecond or more a page, in the
kernel.  One ``madvise(MADV_POPULATE_WRITE)`` request for a range costs
less than a fault for each of its pages, and a :class:`Committer` makes the
request from a thread of its own, through ``ctypes``, which lets go of
the interpreter lock while the system works (``mmap.madvise`` holds it).
On a machine with a second processor the memory is committed while the run
goes on, ahead of the code that writes it.

Committing changes nothing the model can see: a committed page reads as it
did (zeroes, or what was written), so a commit that loses the race with
the code writing the page, or one that fails, costs only time.  Where the
system has no such request (before Linux 5.14, or another system), nothing
is queued and the caller commits as it did.
"""

from __future__ import annotations

import collections
import contextlib
import mmap
import threading
from collections.abc import Callable
from typing import Final

__all__ = ["MADV_POPULATE_WRITE", "REQUEST_BYTES", "Committer"]

MADV_POPULATE_WRITE: Final = 23
"""``madvise`` advice: fault in the range as if written, without changing it (Linux 5.14)."""

LINGER_SECONDS: Final = 0.05
"""How long the committing thread waits for more work before it ends."""

REQUEST_BYTES: Final = 64 << 20
"""The most one request commits (64 MiB): a longer range is asked for a piece at a time.

The system holds the process's memory map for the whole of a request, and
the interpreter maps memory for every large object it makes: one request of
gigabytes held the run's own thread up for as long (a million-page build took
14 s where it takes 5 s a piece at a time).
"""

_Madvise = Callable[[int, int, int], int]


def _libc_madvise() -> _Madvise | None:
    """The C library's ``madvise``, called without the interpreter lock (``None``: none)."""
    try:
        import ctypes
    except ImportError:  # pragma: no cover - an interpreter built without ctypes
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        madvise = libc.madvise
    except (OSError, AttributeError):  # pragma: no cover - not a system with madvise
        return None
    madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    madvise.restype = ctypes.c_int
    return madvise


def _address(owner: mmap.mmap) -> int:
    """Where ``owner``'s bytes start in this process."""
    import ctypes

    view = ctypes.c_char.from_buffer(owner)
    try:
        return ctypes.addressof(view)
    finally:
        del view  # the export ends here: the map may be closed again


class Committer:
    """Commits ranges of memory maps from a thread of its own, in the order they were asked for.

    :meth:`commit` queues a range and returns at once (``False`` when this
    system cannot: the caller then commits it itself).  The thread starts
    with the first range and ends when it has had nothing to do for
    ``LINGER_SECONDS``; :meth:`close` waits for it to finish what is
    queued, and must be called before the process forks again.
    """

    def __init__(self) -> None:
        self._ready = threading.Condition()
        self._work: collections.deque[tuple[mmap.mmap, int, int]] = collections.deque()
        self._thread: threading.Thread | None = None
        self._closing = False
        self._madvise = _libc_madvise()
        #: Ranges committed, and requests the system refused (both for the tests).
        self.committed = 0
        self.refused = 0

    def commit(self, owner: mmap.mmap, start: int, length: int) -> bool:
        """Queue bytes ``start`` to ``start + length`` of ``owner`` to be committed.

        The range is committed in order, in requests of at most
        :data:`REQUEST_BYTES`.  The map is kept alive until its range has
        been committed.  Returns whether the range was queued.
        """
        if self._madvise is None or length <= 0:
            return False
        align = start % mmap.PAGESIZE
        start -= align
        try:
            length = min(length + align, len(owner) - start)
            address = _address(owner)
        except (TypeError, ValueError, BufferError):  # closed, or not writable
            return False
        if length <= 0:
            return False
        with self._ready:
            if self._thread is None:
                thread = threading.Thread(target=self._run, name="fsaops-commit", daemon=True)
                try:
                    thread.start()
                except RuntimeError:  # no thread to be had (a memory limit): commit here
                    return False
                self._thread = thread
            for at in range(start, start + length, REQUEST_BYTES):
                self._work.append((owner, address + at, min(REQUEST_BYTES, start + length - at)))
            self._ready.notify()
        return True

    def _run(self) -> None:
        madvise = self._madvise
        assert madvise is not None
        while True:
            with self._ready:
                if not self._work and not self._closing:
                    self._ready.wait(LINGER_SECONDS)
                if not self._work:
                    self._thread = None
                    return
                owner, address, length = self._work.popleft()
            with contextlib.suppress(Exception):
                if madvise(address, length, MADV_POPULATE_WRITE) == 0:
                    self.committed += 1
                else:
                    self.refused += 1
            del owner  # kept alive until here

    def close(self) -> None:
        """Wait until everything queued is committed and the thread has ended."""
        with self._ready:
            self._closing = True
            thread = self._thread
            self._ready.notify()
        try:
            if thread is not None:
                thread.join()
        finally:
            with self._ready:
                self._closing = False
