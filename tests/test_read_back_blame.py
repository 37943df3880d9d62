"""The read-back names the table's read member when it read a page in without its blocks.

The build checks the read member it reads with (``readpages`` when a table
has it).  A page migration dropped from the page cache is read in again by
the read-back, as ``read(2)`` reads it: readahead hands it to ``readpages``
(``readpage`` for a table without it).  When that page is wrong while its
blocks hold its data, the read path lost it, not migration, and the line
says so.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from fsaops.config import parse_config
from fsaops.mapping import AddressSpace, add_to_page_cache_lru, remove_from_page_cache
from fsaops.page import PG, Page, lock_page, page_address, put_page, unlock_page
from fsaops.plugins import Registry
from fsaops.scenario import run_scenario
from fsaops.world import File, World


def _zeroing_readpage(page: Page, /) -> int:
    """Zero the page and call it up to date, reading no blocks (as ``simple_readpage``)."""
    page_address(page)[:] = bytes(page.node.page_size)
    page.flags |= PG.uptodate
    unlock_page(page)
    return 0


def _split(registry: Registry) -> Registry:
    """ext2 ``nobh`` whose ``readpages`` is right on node 0 and zeroes pages elsewhere.

    The build reads in on node 0 (its check passes); the read-back reads in
    on the kernel's allocation node, which the tests set to node 1.
    """
    ext2 = registry.filesystems["ext2"]
    nobh = ext2.modes["nobh"]
    assert nobh.readpages is not None
    right = nobh.readpages

    def readpages(mapping: AddressSpace, pages: Sequence[Page]) -> int:
        if all(page.node.nid == 0 for page in pages):
            return right(mapping, pages)
        for page in pages:
            if add_to_page_cache_lru(page, mapping, page.index):
                _zeroing_readpage(page)
            put_page(page)
        return 0

    a_ops = attrs.evolve(nobh, name="split_aops", readpages=readpages)
    split = attrs.evolve(ext2, name="split", modes={"default": a_ops})
    return attrs.evolve(registry, filesystems={**registry.filesystems, "split": split})


def _drop(record: File, index: int) -> None:
    """Take a clean page out of the page cache, as migration drops one it need not copy."""
    page = record.inode.i_mapping.lookup(index)
    assert page is not None and not page.flags & PG.dirty
    lock_page(page)
    remove_from_page_cache(page)
    unlock_page(page)
    put_page(page)


BLAME = ", though its blocks hold its data: split_aops.readpages read it in without them"


def test_a_dropped_page_read_in_wrong_names_readpages(registry: Registry) -> None:
    world = World(registry=_split(registry), node_pages=600)
    record = world.create_file(world.mount("split", block_size=1024))
    world.load_file(record, 300)  # readpages: the build's check passes
    _drop(record, 3)
    _drop(record, 290)  # in the second run
    cached = record.inode.i_mapping.lookup(5)
    assert cached is not None
    page_address(cached)[:] = bytes(world.page_size)  # still in the page cache: not readpages'
    world.kernel.alloc_nid = 1
    found = world.oracle.read_back(world)
    assert (found.lost, found.corrupted) == (3, 0)
    assert list(found.problems) == [
        f"{record.describe(3)}: lost: reads back zeroes{BLAME}",
        f"{record.describe(5)}: lost: reads back zeroes",
        f"{record.describe(290)}: lost: reads back zeroes{BLAME}",
    ]


def test_a_dropped_page_whose_blocks_do_not_hold_its_data_is_not_blamed_on_readpages(
    registry: Registry,
) -> None:
    """The newest data never reached the disk: the read path read what is there."""
    world = World(registry=_split(registry), node_pages=600)
    record = world.create_file(world.mount("split", block_size=1024))
    world.load_file(record, 8)
    _drop(record, 2)
    record.gens[2] += 1  # a newer generation the disk never got
    world.kernel.alloc_nid = 1
    found = world.oracle.read_back(world)
    assert list(found.problems) == [f"{record.describe(2)}: lost: reads back zeroes"]


def test_a_scenario_with_a_zeroing_readpages_names_it_on_every_page_migration_dropped(
    registry: Registry,
) -> None:
    text = (
        '[kernel]\nnode_memory = "4MiB"\n[[mount]]\nfs = "split"\npages = 24\nfiles = 2\n'
        "[workload]\nseed = 3\ndirty = 0.5\nout_of_line = true\nswapout = 0.3\n"
    )
    report = run_scenario(parse_config(text, "s.toml"), _split(registry), source="s.toml")
    problems = report.integrity.problems
    assert problems and report.integrity.lost == len(problems)
    # The replay, run because pages read back wrong, confirms no migratepage call did it.
    replay = "; the replay saw no migratepage call change it while it was in memory"
    assert all(p.endswith(f"lost: reads back zeroes{BLAME}{replay}") for p in problems), problems


def test_a_page_past_a_shrunk_size_is_put_down_to_the_size_not_readpage(
    registry: Registry,
) -> None:
    """ext2's ``readpage`` rightly zeroes a page past ``i_size``: when code the migration ran
    shrank the size, the line names the size, never the correct ``readpage``."""
    world = World(registry=registry, node_pages=64)
    record = world.create_file(world.mount("ext2", block_size=1024))
    world.load_file(record, 8)
    _drop(record, 4)
    record.inode.i_size = 4 * world.page_size  # as a releasepage that shrank the file
    found = world.oracle.read_back(world)
    assert found.problems
    for problem in found.problems:
        assert "readpage" not in problem
    assert any(
        "the file's size (i_size) is 16384 bytes where 32768 were written" in problem
        for problem in found.problems
    ), found.problems


def test_a_table_without_readpages_has_its_readpage_named(registry: Registry) -> None:
    ext2 = registry.filesystems["ext2"]
    nobh = ext2.modes["nobh"]
    assert nobh.readpage is not None
    right = nobh.readpage

    def readpage(page: Page, /) -> int:
        return right(page) if page.node.nid == 0 else _zeroing_readpage(page)

    a_ops = attrs.evolve(nobh, name="single_aops", readpages=None, readpage=readpage)
    single = attrs.evolve(ext2, name="single", modes={"default": a_ops})
    world = World(
        registry=attrs.evolve(registry, filesystems={**registry.filesystems, "single": single}),
        node_pages=64,
    )
    record = world.create_file(world.mount("single", block_size=1024))
    world.load_file(record, 4)
    _drop(record, 1)
    world.kernel.alloc_nid = 1
    found = world.oracle.read_back(world)
    assert list(found.problems) == [
        f"{record.describe(1)}: lost: reads back zeroes, though its blocks hold its data: "
        "single_aops.readpage read it in without them"
    ]
