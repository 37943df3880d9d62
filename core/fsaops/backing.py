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

Many short ranges (the blocks a sync is about to write, a few pages each
and scattered over a device) are asked for a vector at a time with
``process_madvise``, which newer Linux kernels take with any advice for the
process itself: one request for up to :data:`IOV_MAX` ranges.

Committing changes nothing the model can see: a committed page reads as it
did (zeroes, or what was written), so a commit that loses the race with
the code writing the page, or one that fails, costs only time.  Where the
system has no such request (before Linux 5.14, or another system), nothing
is queued and the caller commits as it did.
"""

from __future__ import annotations

import array
import collections
import contextlib
import errno
import mmap
import os
import threading
from collections.abc import Callable, Sequence
from typing import Final

__all__ = ["IOV_MAX", "MADV_POPULATE_WRITE", "REQUEST_BYTES", "Committer"]

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

IOV_MAX: Final = 1024
"""The most ranges one vector request names (the system's ``UIO_MAXIOV``)."""

_SYS_PROCESS_MADVISE: Final = 440
"""``process_madvise``'s number, the same on every architecture that has it."""

_Madvise = Callable[[int, int, int], int]
_ProcessMadvise = Callable[[int, int, int, int, int], int]


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


def _libc_process_madvise() -> _ProcessMadvise | None:
    """``process_madvise``, called without the interpreter lock (``None``: not this system)."""
    if not hasattr(os, "pidfd_open"):
        return None
    try:
        import ctypes

        syscall = ctypes.CDLL(None, use_errno=True).syscall
    except (ImportError, OSError, AttributeError):  # pragma: no cover - not Linux
        return None
    syscall.argtypes = [
        ctypes.c_long,
        ctypes.c_int,
        ctypes.c_void_p,
        ctypes.c_size_t,
        ctypes.c_int,
        ctypes.c_uint,
    ]
    syscall.restype = ctypes.c_long

    def process_madvise(pidfd: int, vector: int, count: int, advice: int, flags: int) -> int:
        return int(syscall(_SYS_PROCESS_MADVISE, pidfd, vector, count, advice, flags))

    return process_madvise


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
        # (map, address, length, vector): one range, or with a vector (the
        # ranges' addresses and lengths in turn) ``length`` ranges at ``address``.
        self._work: collections.deque[tuple[mmap.mmap, int, int, array.array[int] | None]] = (
            collections.deque()
        )
        self._thread: threading.Thread | None = None
        self._closing = False
        self._madvise = _libc_madvise()
        self._vector: _ProcessMadvise | bool | None = False  # False: not looked for yet
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
            if not self._started():
                return False
            for at in range(start, start + length, REQUEST_BYTES):
                self._work.append(
                    (owner, address + at, min(REQUEST_BYTES, start + length - at), None)
                )
            self._ready.notify()
        return True

    def commit_runs(self, owner: mmap.mmap, starts: Sequence[int], length: int) -> bool:
        """Queue ``length`` bytes of ``owner`` from each offset in ``starts`` to be committed.

        For ranges too many and too short to ask for one at a time: they
        are asked for :data:`IOV_MAX` at a time, in one
        ``process_madvise(MADV_POPULATE_WRITE)`` request each (newer Linux
        kernels take any advice for the process itself).  The ranges
        must lie inside the map.  Returns whether they were queued; where
        the system has no such request, nothing is, and the pages are
        committed as they are first written.
        """
        if self._vector is False:
            self._vector = _libc_process_madvise()
        if self._vector is None or self._madvise is None or not starts or length <= 0:
            return False
        try:
            address = _address(owner)
        except (TypeError, ValueError, BufferError):  # closed, or not writable
            return False
        if min(starts) < 0 or max(starts) + length > len(owner):
            raise ValueError("a range to commit is not inside the map")
        # Each range from the start of its page: the system rounds the end up.
        offset = mmap.PAGESIZE - 1
        pairs = [
            value
            for start in starts
            for value in (address + (start & ~offset), length + (start & offset))
        ]
        with self._ready:
            if not self._started():
                return False
            step = 2 * IOV_MAX
            for at in range(0, len(pairs), step):
                vector = array.array("Q", pairs[at : at + step])
                self._work.append((owner, vector.buffer_info()[0], len(vector) // 2, vector))
            self._ready.notify()
        return True

    def _started(self) -> bool:
        """Start the thread if it is not running (the caller holds ``_ready``); whether it runs."""
        if self._thread is None:
            thread = threading.Thread(target=self._run, name="fsaops-commit", daemon=True)
            try:
                thread.start()
            except RuntimeError:  # no thread to be had (a memory limit): commit here
                return False
            self._thread = thread
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
                owner, address, length, vector = self._work.popleft()
            with contextlib.suppress(Exception):
                if vector is None:
                    done = madvise(address, length, MADV_POPULATE_WRITE) == 0
                else:
                    done = self._commit_vector(address, length)
                if done:
                    self.committed += 1
                else:
                    self.refused += 1
            del owner, vector  # kept alive until here

    def _commit_vector(self, address: int, count: int) -> bool:
        """Ask for the ``count`` ranges the vector at ``address`` names; whether the system did."""
        process_madvise = self._vector
        if not callable(process_madvise):
            return False
        pidfd = os.pidfd_open(os.getpid())
        try:
            if process_madvise(pidfd, address, count, MADV_POPULATE_WRITE, 0) >= 0:
                return True
        finally:
            os.close(pidfd)
        import ctypes

        if ctypes.get_errno() in (errno.EINVAL, errno.ENOSYS, errno.EPERM):
            self._vector = None  # this system takes no such request: ask no more
        return False

    def __enter__(self) -> Committer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

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
