"""``--strict``'s watch of a call's writes changes only its own machine's frame classes.

The watch puts a ``__setattr__`` on classes while a ``migratepage`` call
runs.  Put on ``Page`` itself, it made CPython walk every subclass of
``Page`` at each call, and there is one per node of every machine the
process built that is not yet collected: in a process that had run many
scenarios (a test session, Hypothesis), each ``--strict`` call grew dearer
than the last.  Now only the frame classes of the call's machine (and
``BufferHead``) get it, and lose it when the call's watch ends.
"""

from __future__ import annotations

from fsaops.buffer import BufferHead
from fsaops.findings import _Writes
from fsaops.page import Page
from fsaops.world import World


def test_the_watch_leaves_page_and_other_machines_frames_alone() -> None:
    other = World(nodes=2, node_pages=8)
    world = World(nodes=2, node_pages=8)
    nodes = world.kernel.nodes
    page, newpage = nodes[0].pages[0], nodes[1].pages[0]
    plain = object.__setattr__
    others = {type(n.pages[0]) for n in other.kernel.nodes}
    assert others.isdisjoint({type(page), type(newpage)})
    writes = _Writes(page, newpage)
    writes.arm()
    try:
        for node in nodes:
            assert type(node.pages[0]).__setattr__ is not plain
        assert BufferHead.__setattr__ is not plain
        assert "__setattr__" not in vars(Page)
        for cls in others:
            assert cls.__setattr__ is plain
    finally:
        writes.disarm()
    for node in nodes:
        assert type(node.pages[0]).__setattr__ is plain
    assert BufferHead.__setattr__ is plain


def test_a_second_watch_of_the_same_thread_replaces_the_first() -> None:
    world = World(nodes=2, node_pages=8)
    nodes = world.kernel.nodes
    first = _Writes(nodes[0].pages[0], nodes[1].pages[0])
    second = _Writes(nodes[0].pages[1], nodes[1].pages[1])
    first.arm()
    second.arm()  # the first call raised: its watch never ended
    second.disarm()
    first.disarm()  # no longer armed: nothing to undo
    for node in nodes:
        assert type(node.pages[0]).__setattr__ is object.__setattr__
    assert BufferHead.__setattr__ is object.__setattr__
