"""A list's repr ends, whatever its links: error messages and failed checks show corrupted lists."""

from __future__ import annotations

from fsaops.lists import LIST_POISON, PageList, list_add_tail, list_del
from fsaops.page import Page


def _pages(n: int) -> list[Page]:
    return [Page(pfn) for pfn in range(n)]


def test_a_sound_list_says_its_length() -> None:
    pages = PageList("moved")
    assert repr(pages) == "<PageList moved len=0>"
    for page in _pages(3):
        list_add_tail(page, pages)
    assert repr(pages) == "<PageList moved len=3>"
    assert len(pages) == 3


def test_a_loop_that_misses_the_head_is_said_not_walked_for_ever() -> None:
    pages = PageList("moved")
    a, b, c = _pages(3)
    for page in (a, b, c):
        list_add_tail(page, pages)
    c.lru_next = b  # the tail links back into the list, not to its head
    assert repr(pages) == "<PageList moved broken: a loop that never comes back to the head>"
    a.lru_next = a  # an entry linked to itself
    assert "a loop that never comes back to the head" in repr(pages)


def test_an_entry_taken_off_under_the_walk_is_said() -> None:
    pages = PageList("moved")
    a, b = _pages(2)
    list_add_tail(a, pages)
    list_add_tail(b, pages)
    list_del(b)  # poisoned, but a still links to it
    a.lru_next = b
    assert b.lru_next is LIST_POISON
    assert repr(pages) == (
        "<PageList moved broken: the link after 2 entries is LIST_POISON (an entry taken off)>"
    )
