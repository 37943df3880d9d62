"""A small model of ext3's journal (``fs/jbd``): enough to hold buffers until commit.

Buffers enter the running transaction in two ways:

* as journalled data or metadata (:meth:`Journal.dirty_metadata`, data
  journalling mode): the journal owns their dirtiness (``BH.jbddirty``)
  and the buffer itself is clean until commit;
* as ordered data (:meth:`Journal.dirty_data`, ordered mode): the buffer
  stays dirty and the commit writes it out first.

Either way the buffer carries ``BH.jbd`` and one ``b_count`` reference for
the journal's record of it, so :func:`~fsaops.buffer.try_to_free_buffers`
cannot free it.  ``journal_try_to_free_buffers`` first lets go of every
ordered-data buffer that has been written back (clean and unlocked: jbd's
"written-back ordered data buffer" on ``BJ_SyncData`` or ``BJ_Locked``),
then refuses while any buffer of the page is still in the journal: a
journalled one, or ordered data still dirty or under I/O.  kjournald commits every
``commit_interval`` ticks: each buffer's data goes to its home block (the
model folds the log write and the checkpoint together) and the buffer
leaves the journal.  A buffer locked at commit time waits for the next
commit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fsaops.buffer import (
    BH,
    BufferHead,
    bh_offset,
    buffers,
    no_device,
    try_to_free_buffers,
    trylock_buffer,
    unlock_buffer,
)
from fsaops.errors import KernelBug
from fsaops.page import PG, Page

if TYPE_CHECKING:
    from fsaops.fs import SuperBlock
    from fsaops.sched import Event

__all__ = ["DEFAULT_COMMIT_INTERVAL", "Journal", "journal_of"]

DEFAULT_COMMIT_INTERVAL = 64
"""Ticks between commits (ext3's 5-second ``commit=`` default, scaled to the model's clock)."""


def _table(bh: BufferHead) -> str | None:
    """The name of the table of a buffer's page (``None``: it has none)."""
    table = getattr(getattr(bh.b_page.mapping, "a_ops", None), "name", None)
    return table if isinstance(table, str) else None


def _whose(bh: BufferHead) -> str:
    """A buffer, as a message names it: its place in its page, and the page's table."""
    table = _table(bh)
    place = f"buffer head at offset {bh_offset(bh)} of pfn {bh.b_page.pfn}"
    return f"{place} ({table})" if table is not None else place


class Journal:
    """One filesystem's journal and its running transaction."""

    def __init__(self, sb: SuperBlock, commit_interval: int = DEFAULT_COMMIT_INTERVAL) -> None:
        self.sb = sb
        self.running: dict[int, BufferHead] = {}
        #: The buffers of ``running`` filed as ordered data (jbd's ``BJ_SyncData``).
        self.ordered: set[int] = set()
        self.commits = 0
        self.commit_interval = commit_interval
        self._event: Event | None = None
        self._schedule()

    def __repr__(self) -> str:
        return f"<Journal {self.sb.name} running={len(self.running)} commits={self.commits}>"

    def _schedule(self) -> None:
        self._event = self.sb.kernel.sched.call_later(
            self.commit_interval, self.commit, daemon=True
        )

    def set_commit_interval(self, ticks: int) -> None:
        """Commit every ``ticks`` ticks from now on (the ``commit=`` mount option)."""
        self.commit_interval = max(1, ticks)
        if self._event is not None:
            self._event.cancel()
        self._schedule()

    def _file(self, bh: BufferHead) -> None:
        if not bh.b_state & BH.jbd:
            bh.b_state |= BH.jbd
            bh.b_count += 1
            bh.b_private = self
        self.running[id(bh)] = bh

    def holds(self, bh: BufferHead) -> bool:
        """Whether the running transaction holds ``bh`` (the invariant checker asks)."""
        return self.running.get(id(bh)) is bh

    def dirty_metadata(self, bh: BufferHead) -> None:
        """File a buffer as journalled data (``journal_dirty_metadata``)."""
        self._file(bh)
        self.ordered.discard(id(bh))  # refiled onto the metadata list
        bh.b_state = (bh.b_state | BH.jbddirty) & ~BH.dirty

    def dirty_data(self, bh: BufferHead) -> None:
        """File a buffer as ordered data (``journal_dirty_data``).

        A buffer the running transaction already journals stays journalled.
        """
        if self.running.get(id(bh)) is bh and id(bh) not in self.ordered:
            return
        self._file(bh)
        self.ordered.add(id(bh))

    def forget(self, bh: BufferHead) -> None:
        """Take a buffer out of the journal (truncate: ``journal_invalidatepage``)."""
        if self.running.pop(id(bh), None) is not None:
            self.ordered.discard(id(bh))
            self._detach(bh)

    @staticmethod
    def _detach(bh: BufferHead) -> None:
        bh.b_state &= ~(BH.jbd | BH.jbddirty)
        bh.b_count -= 1
        bh.b_private = None

    def commit(self) -> None:
        """Commit the running transaction (kjournald), then schedule the next."""
        keep: dict[int, BufferHead] = {}
        for key, bh in self.running.items():
            if not bh.b_state & BH.jbd or bh.b_private is not self:
                # jbd's J_ASSERT_JH: a buffer the transaction holds has its
                # journal head (BH_JBD, b_private); someone took it away.
                what = "no BH_JBD" if not bh.b_state & BH.jbd else "no journal head (b_private)"
                raise KernelBug(
                    f"kjournald: a buffer of the running transaction has {what}: {_whose(bh)}",
                    table=_table(bh),
                )
            if not trylock_buffer(bh):
                keep[key] = bh
                continue
            if bh.b_state & (BH.jbddirty | BH.dirty) and bh.b_state & BH.mapped:
                bdev = bh.b_bdev
                if bdev is None:
                    raise no_device(bh, "WRITE")
                bdev.write(bh.b_blocknr, bh.data)
                bh.b_state &= ~(BH.jbddirty | BH.dirty)
            unlock_buffer(bh)
            self._detach(bh)
        self.running = keep
        self.ordered &= keep.keys()
        self.commits += 1
        if self._event is not None:
            self._event.cancel()  # a commit asked for (sync) restarts the timer
        self._schedule()

    def try_to_free_buffers(self, page: Page) -> int:
        """``journal_try_to_free_buffers``: let written-back ordered data go, then free.

        Buffer by buffer (``__journal_try_to_free_buffer``): an ordered-data
        buffer that is neither dirty nor locked leaves the transaction, and
        the first buffer still in the journal makes the page busy (0), with
        the ones before it already let go, as in jbd.
        """
        if page.flags & PG.private:
            for bh in buffers(page.private):
                key = id(bh)
                if (
                    key in self.ordered
                    and self.running.get(key) is bh
                    and not bh.b_state & (BH.lock | BH.dirty)
                ):
                    # "A written-back ordered data buffer": __journal_unfile_buffer,
                    # journal_remove_journal_head, __brelse.
                    del self.running[key]
                    self.ordered.discard(key)
                    self._detach(bh)
                if bh.b_state & BH.jbd:
                    return 0
        return try_to_free_buffers(page)


def journal_of(page: Page) -> Journal:
    """The journal of the filesystem a page-cache page belongs to."""
    mapping = page.mapping
    assert mapping is not None and not mapping.anon, f"not a file page: {page!r}"
    journal = mapping.host.i_sb.s_fs_info  # type: ignore[union-attr]
    assert isinstance(journal, Journal)
    return journal
