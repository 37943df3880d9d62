"""A run that ends in a kernel BUG right after a ``migratepage`` call ends the call's watches.

Under ``--strict`` and ``--debug-vm`` the engine watches each call: the
writes it makes to other pages (a ``__setattr__`` on the machine's frame
classes and ``BufferHead``) and the buffers it moves (a ``b_page`` property
on ``BufferHead``), with the pages in module tables.  A call that broke the
engine's lists ended the run before the watch's end came: the watches stayed
on for the rest of the process, slowing every later write to a page and
keeping the machine alive.
"""

from __future__ import annotations

import gc
import weakref

import attrs
import pytest

from fsaops import findings, oracle
from fsaops.buffer import BufferHead
from fsaops.errors import KernelBug
from fsaops.lists import list_del
from fsaops.page import Page
from fsaops.plugins import Registry
from fsaops.world import World


@pytest.mark.parametrize("mode", ["strict", "debug_vm"])
def test_a_kernel_bug_after_a_call_leaves_no_watch_on(registry: Registry, mode: str) -> None:
    world = World(registry=registry, node_pages=64)
    setattr(world.kernel, mode, True)
    sb = world.mount("ext2")
    mapping = world.file(sb, 2).i_mapping
    pages = mapping.pages()
    frames = {type(node.pages[0]) for node in world.kernel.nodes}

    def takes_the_page_off_the_list(newpage: Page, page: Page) -> int:
        list_del(page)
        return 0

    mapping.a_ops = attrs.evolve(mapping.a_ops, migratepage=takes_the_page_off_the_list)
    with pytest.raises(KernelBug, match="list corruption"):
        world.migrate(pages)
    assert findings._ARMED == {}
    assert findings._PATCHED == {}
    assert oracle._WATCHES == {}
    plain: object = object.__setattr__
    for cls in (*frames, BufferHead):
        assert cls.__setattr__ is plain, cls
    assert BufferHead.__dict__["b_page"] is not oracle._WATCHED_B_PAGE
    # Nothing of fsaops's keeps the machine once the run is let go.
    kernel = weakref.ref(world.kernel)
    del world, mapping, pages, sb, frames, cls
    gc.collect()
    assert kernel() is None


def test_a_call_after_one_that_raised_ends_its_buffer_watch(registry: Registry) -> None:
    """A call that raised (the engine goes on) leaves no watch on the next page's call.

    The next page has no buffers: the watch on the first page's buffers must
    end all the same, not stay on through the next call.
    """
    world = World(registry=registry, node_pages=64)
    world.kernel.strict = True
    with_buffers = world.file(world.mount("ext2"), 1).i_mapping.pages()[0]
    without = world.file(world.mount("ext2", "nobh"), 1).i_mapping.pages()[0]
    assert isinstance(with_buffers.private, BufferHead)
    assert not isinstance(without.private, BufferHead)
    node = world.kernel.nodes[1]
    watch = findings.MigratepageWatch(world.kernel, findings.Findings())
    first, second = node.alloc_page(), node.alloc_page()
    assert first is not None and second is not None
    watch.before(first, with_buffers)  # its call raised: no after()
    assert oracle._WATCHES
    watch.before(second, without)
    assert oracle._WATCHES == {}
    assert BufferHead.__dict__["b_page"] is not oracle._WATCHED_B_PAGE
    watch.close()
