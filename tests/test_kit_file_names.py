"""A page the testing kit builds is named one way: its file's key, in every message.

``World.make_page`` names the inode by the key the page's file has
(``hider0/page0``), so the explorer's interleaving names the locks of the
file (``tree_lock of hider0/page0``) as its problem lines name the page.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import attrs
import pytest

from fsaops.buffer import BH, buffer_migrate_page, buffers
from fsaops.explore import explore
from fsaops.explore.api import render_text
from fsaops.page import PG, Page
from fsaops.plugins import Registry, load_plugins
from fsaops.world import World


@pytest.fixture(scope="module")
def registry() -> Iterator[Registry]:
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("FSAOPS_PLUGINS", raising=False)
        yield load_plugins()


def test_a_page_the_kit_builds_is_in_a_file_named_by_its_key(registry: Registry) -> None:
    world = World(registry=registry, node_pages=64)
    sb = world.mount("ext2")
    for state in ("clean", "dirty"):
        prepared = world.make_page(state, on=sb)
        assert prepared.inode is not None
        record = world.record_of(prepared.inode)
        assert record.key == f"{sb.name}/page{len(world.prepared) - 1}"
        assert record.inode.name == record.inode.i_mapping.name == record.key


def _loses_dirty_buffers(newpage: Page, page: Page, /) -> int:
    """``buffer_migrate_page``, then the new page's buffers are cleaned: their data is lost."""
    rc = buffer_migrate_page(newpage, page)
    if rc == 0 and newpage.flags & PG.private:
        for bh in buffers(newpage.private):
            bh.b_state &= ~BH.dirty
    return rc


def test_the_explorer_names_a_file_as_its_problem_lines_do(registry: Registry) -> None:
    table = attrs.evolve(registry.aops("ext2"), name="loses_aops", migratepage=_loses_dirty_buffers)
    fstype = attrs.evolve(
        registry.filesystem("ext2"), name="loses", modes={"default": table}, page_cache={}
    )
    result = explore(fstype, tasks=["mmap-write"], pages=1, registry=registry)
    assert result.failures, render_text(result)
    failure = result.failures[0]
    assert any("loses0/page0" in p for _, p in failure.problems), failure.problems
    files = {
        m.group(1)
        for step in failure.interleaving
        for m in [re.match(r"(?:tree_lock|i_mmap_lock|private_lock) of (\S+)", step.lock)]
        if m is not None
    }
    assert files == {"loses0/page0"}
