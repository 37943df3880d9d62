"""A ``migratepage`` that leaves the new page's buffer heads in no ring is a named kernel bug.

The buffer heads of a page are a ring through ``b_this_page``
(KERNEL-SPEC §1): every walk of them starts at the page's first and stops
when it comes back to it.  A table that points one of them back at itself,
or at another one than the first, leaves a ring no walk comes out of:
writeback of the new page later looped for ever, and ``fsaops migrate``,
plain or ``--strict``, never ended (with a time limit, it ended
``timeout`` while proving durability, naming no table).  Now a walk that
has not come back to its head after more buffer heads than any page has is
the kernel's ``BUG()``, naming the page and the table.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import islice
from pathlib import Path

import pytest

from fsaops.buffer import BufferHead, buffers
from fsaops.errors import KernelBug
from fsaops.world import World
from inproc import installed, migrate_json

PLUGIN = '''
import attrs

import fsaops
from fsaops import buffer_migrate_page
from fsaops.buffer import buffers
from fsaops.page import PG
from fsaops_ext2 import EXT2, ext2_aops


def loops_a_buffer(newpage, page):
    """Moves the page, then points its second buffer head at itself."""
    rc = buffer_migrate_page(newpage, page)
    if rc == 0 and newpage.flags & PG.private:
        ring = list(buffers(newpage.private))
        if len(ring) > 2:
            ring[1].b_this_page = ring[1]
    return rc


def _type(name, migratepage):
    table = attrs.evolve(ext2_aops, name=f"{name}_aops", migratepage=migratepage)
    return attrs.evolve(EXT2, name=name, modes={"default": table}, page_cache={})


@fsaops.hookimpl
def fsaops_filesystem_types():
    return [_type("loops_a_buffer", loops_a_buffer)]
'''

CONFIG = """\
[kernel]
nodes = 2
node_memory = "2MiB"
semantics = "{semantics}"
timeout = 60
[plugins]
load = ["looper", "ext2"]
[[mount]]
fs = "loops_a_buffer"
pages = 16
files = 1
block_size = 1024
[workload]
seed = 3
dirty = 0.3
"""


@pytest.fixture(scope="module")
def configs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """``looper`` installed; a folder for configs."""
    yield from installed(tmp_path_factory, "looper", PLUGIN)


@pytest.mark.parametrize("semantics", ["v4", "2.6.17"])
@pytest.mark.parametrize("options", [(), ("--strict",)])
def test_a_ring_that_does_not_close_is_a_kernel_bug_naming_the_table(
    configs: Path, semantics: str, options: tuple[str, ...]
) -> None:
    path = configs / f"{semantics}-{len(options)}.toml"
    rc, report = migrate_json(path, CONFIG.format(semantics=semantics), *options)
    assert (rc, report["status"]) == (1, "kernel bug"), report.get("error")
    error = report["error"]
    assert "(loops_a_buffer_aops) do not come back to the first" in error
    assert "a b_this_page points back into the ring, not at its head" in error


def test_a_walk_of_a_ring_that_does_not_close_raises() -> None:
    page = World(nodes=1, node_pages=4).kernel.nodes[0].pages[0]
    ring = [BufferHead(page, offset, 1024, None) for offset in range(0, 3072, 1024)]
    for bh, following in zip(ring, [*ring[1:], ring[1]], strict=True):
        bh.b_this_page = following  # the last one points back at the second
    with pytest.raises(KernelBug, match=rf"the buffer heads of pfn {page.pfn} do not come back"):
        list(islice(buffers(ring[0]), 10_000))
