"""Intrusive doubly linked lists, as ``include/linux/list.h``.

A page is on at most one list at a time through its ``lru`` links: an LRU
list of its node, or a private list of the migration engine (``from``,
``to``, ``moved``, ``failed``).  Moving a page between lists is O(1).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator

    from fsaops.page import Page

__all__ = [
    "LIST_POISON",
    "ListEntry",
    "PageList",
    "list_add",
    "list_add_tail",
    "list_del",
    "list_move",
    "list_move_tail",
    "list_splice",
]


class ListEntry:
    """The ``struct list_head`` links embedded in a page or a list head."""

    __slots__ = ("lru_next", "lru_prev")

    lru_next: ListEntry
    lru_prev: ListEntry


class _Poison(ListEntry):
    __slots__ = ()

    def __repr__(self) -> str:
        return "LIST_POISON"


LIST_POISON: ListEntry = _Poison()
"""What ``list_del`` leaves in an entry's links: it is on no list."""
LIST_POISON.lru_next = LIST_POISON
LIST_POISON.lru_prev = LIST_POISON


class PageList(ListEntry):
    """A list head whose entries are pages (``LIST_HEAD(name)``).

    Iteration is safe against removal of the current page
    (``list_for_each_entry_safe``).
    """

    __slots__ = ("name",)

    def __init__(self, name: str = "") -> None:
        self.name = name
        self.lru_next = self
        self.lru_prev = self

    def __iter__(self) -> Iterator[Page]:
        entry = self.lru_next
        while entry is not self:
            nxt = entry.lru_next
            yield entry  # type: ignore[misc]
            entry = nxt

    def __len__(self) -> int:
        n = 0
        entry = self.lru_next
        while entry is not self:
            n += 1
            entry = entry.lru_next
        return n

    def __bool__(self) -> bool:
        return self.lru_next is not self

    def empty(self) -> bool:
        """``list_empty()``."""
        return self.lru_next is self

    def first(self) -> Page:
        """The head entry; the list must not be empty."""
        assert self.lru_next is not self, "first() of an empty list"
        return self.lru_next  # type: ignore[return-value]

    def last(self) -> Page:
        """The tail entry (``lru_to_page``); the list must not be empty."""
        assert self.lru_prev is not self, "last() of an empty list"
        return self.lru_prev  # type: ignore[return-value]

    def __repr__(self) -> str:
        return f"<PageList {self.name or hex(id(self))} {self._length()}>"

    def _length(self) -> str:
        """``len=N``; for a list whose walk never comes back to its head, where it went wrong.

        A repr is what an error message or a failed check shows, often of a
        list some code corrupted: it must end.  A second walk at twice the
        pace meets the first on any loop that does not pass the head, and
        the ``LIST_POISON`` that ``list_del`` leaves in an entry's links is
        said as such.
        """
        n = 0
        entry = self.lru_next
        hare = entry
        while entry is not self:
            if entry is LIST_POISON:
                return f"broken: the link after {n} entries is LIST_POISON (an entry taken off)"
            n += 1
            entry = entry.lru_next
            for _ in range(2):
                if hare is not self:
                    hare = hare.lru_next
            if hare is entry and entry is not self and entry is not LIST_POISON:
                return "broken: a loop that never comes back to the head"
        return f"len={n}"


def list_add(entry: ListEntry, head: ListEntry) -> None:
    """Insert ``entry`` right after ``head``."""
    nxt = head.lru_next
    entry.lru_next = nxt
    entry.lru_prev = head
    nxt.lru_prev = entry
    head.lru_next = entry


def list_add_tail(entry: ListEntry, head: ListEntry) -> None:
    """Insert ``entry`` right before ``head`` (at the tail of the list)."""
    prev = head.lru_prev
    entry.lru_next = head
    entry.lru_prev = prev
    prev.lru_next = entry
    head.lru_prev = entry


def list_del(entry: ListEntry) -> None:
    """Unlink ``entry`` and poison its links."""
    nxt = entry.lru_next
    prev = entry.lru_prev
    nxt.lru_prev = prev
    prev.lru_next = nxt
    entry.lru_next = LIST_POISON
    entry.lru_prev = LIST_POISON


def list_move(entry: ListEntry, head: ListEntry) -> None:
    """Unlink ``entry`` and insert it after ``head``."""
    nxt = entry.lru_next
    prev = entry.lru_prev
    nxt.lru_prev = prev
    prev.lru_next = nxt
    nxt = head.lru_next
    entry.lru_next = nxt
    entry.lru_prev = head
    nxt.lru_prev = entry
    head.lru_next = entry


def list_move_tail(entry: ListEntry, head: ListEntry) -> None:
    """Unlink ``entry`` and insert it at the tail of ``head``."""
    nxt = entry.lru_next
    prev = entry.lru_prev
    nxt.lru_prev = prev
    prev.lru_next = nxt
    prev = head.lru_prev
    entry.lru_next = head
    entry.lru_prev = prev
    prev.lru_next = entry
    head.lru_prev = entry


def list_splice(source: PageList, head: ListEntry) -> None:
    """Move every entry of ``source`` to the front of ``head``; ``source`` ends empty."""
    if source.lru_next is source:
        return
    first = source.lru_next
    last = source.lru_prev
    at = head.lru_next
    first.lru_prev = head
    head.lru_next = first
    last.lru_next = at
    at.lru_prev = last
    source.lru_next = source
    source.lru_prev = source
