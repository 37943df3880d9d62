"""The conformance suite mounts a type twice: state one mount leaves for all is caught.

Every machine of the suite had one mount, so a ``migratepage`` that took the
block size from a module global its ``fill_super`` set (whichever mount set
it last, or first) met only pages of the mount that had set it, and passed
the whole suite; ``fsaops migrate`` of two such mounts at different block
sizes lost data.  ``test_engine_moves_pages_of_two_mounts_at_different_block_sizes``
mounts the type a second time at another block size and moves pages of both.
"""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

TABLES = """
import attrs

import fsaops
from fsaops import buffer_migrate_page, migrate_page, migrate_page_copy
from fsaops import migrate_page_remove_references
from fsaops.buffer import buffers, get_bh, lock_buffer, put_bh, set_bh_page, unlock_buffer
from fsaops.page import PG
from fsaops_ext2 import EXT2, ext2_aops

SEEN = {}


def last_mount(sb):
    SEEN["block_size"] = sb.s_blocksize


def first_mount(sb):
    SEEN.setdefault("block_size", sb.s_blocksize)


def by_the_global(newpage, page):
    # buffer_migrate_page, with each buffer's offset in the page worked out
    # from the block size a mount left behind rather than from the page's own.
    if not page.flags & PG.private:
        return migrate_page(newpage, page)
    if migrate_page_remove_references(newpage, page, 3):
        return -11
    ring = list(buffers(page.private))
    for bh in ring:
        get_bh(bh)
        lock_buffer(bh)
    page.flags &= ~PG.private
    newpage.private, page.private = page.private, 0
    page.count -= 1
    newpage.count += 1
    for i, bh in enumerate(ring):
        set_bh_page(bh, newpage, i * SEEN["block_size"] % newpage.node.page_size)
    newpage.flags |= PG.private
    migrate_page_copy(newpage, page)
    for bh in ring:
        unlock_buffer(bh)
        put_bh(bh)
    return 0


def _type(name, migratepage, fill_super=None):
    table = attrs.evolve(ext2_aops, name=f"{name}_aops", migratepage=migratepage)
    return fsaops.FileSystemType(
        name=name,
        modes={"default": table},
        block_sizes=EXT2.block_sizes,
        default_block_size=1024,
        description="a table that keeps per-mount state",
        fill_super=fill_super,
    )


DEVICE = {}


def keep_the_device(sb):
    DEVICE["bdev"] = sb.s_bdev


def on_the_kept_device(newpage, page):
    # buffer_migrate_page, then the moved buffers pointed at the device a mount left behind.
    rc = buffer_migrate_page(newpage, page)
    if rc == 0 and newpage.flags & PG.private:
        for bh in buffers(newpage.private):
            bh.b_bdev = DEVICE["bdev"]
    return rc


LAST = _type("last", by_the_global, last_mount)
FIRST = _type("first", by_the_global, first_mount)
OWN = _type("own", buffer_migrate_page)
ONE_SIZE = attrs.evolve(_type("onesize", buffer_migrate_page), block_sizes=(1024,))
KEPT_DEVICE = attrs.evolve(
    _type("keptdev", on_the_kept_device, keep_the_device), block_sizes=(1024,)
)
"""

SUITE = """
import table_code
from fsaops.testing import MigratepageConformance


class TestIt(MigratepageConformance):
    filesystem = table_code.{name}
    capabilities = {{"writeback", "buffers"}}
"""

TEST = "two_mounts_at_different"


@pytest.mark.parametrize("name", ["LAST", "FIRST"])
def test_a_table_that_keeps_a_mount_s_block_size_for_all_fails_the_suite(
    pytester: pytest.Pytester, name: str
) -> None:
    pytester.syspathinsert()
    pytester.makepyfile(table_code=TABLES)
    pytester.makepyfile(test_suite=SUITE.format(name=name))
    result = pytester.runpytest("-p", "no:randomly", "-p", "no:cacheprovider", "-k", TEST)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*buffer head 1 of pfn * is not at offset * of pfn *"])


def test_the_one_mount_tests_pass_the_table_that_keeps_the_last_mount_s_block_size(
    pytester: pytest.Pytester,
) -> None:
    """What the new test adds: the suite's one-mount machines never showed this bug."""
    pytester.syspathinsert()
    pytester.makepyfile(table_code=TABLES)
    pytester.makepyfile(test_suite=SUITE.format(name="LAST"))
    result = pytester.runpytest(
        "-p", "no:randomly", "-p", "no:cacheprovider", "-k", "moves_whole_files or ring"
    )
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed", 0) >= 1 and "failed" not in outcomes


def test_buffer_migrate_page_passes_it(pytester: pytest.Pytester) -> None:
    pytester.syspathinsert()
    pytester.makepyfile(table_code=TABLES)
    pytester.makepyfile(test_suite=SUITE.format(name="OWN"))
    result = pytester.runpytest("-p", "no:randomly", "-p", "no:cacheprovider", "-k", TEST)
    result.assert_outcomes(passed=1)


def test_a_type_of_one_block_size_is_skipped_with_the_reason(pytester: pytest.Pytester) -> None:
    pytester.syspathinsert()
    pytester.makepyfile(table_code=TABLES)
    pytester.makepyfile(test_suite=SUITE.format(name="ONE_SIZE"))
    result = pytester.runpytest("-p", "no:randomly", "-p", "no:cacheprovider", "-rs", "-k", TEST)
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*takes one block size up to the page size (1024)*"])


def test_a_type_of_one_block_size_that_keeps_a_mount_s_device_for_all_fails_the_suite(
    pytester: pytest.Pytester,
) -> None:
    """The second mount at the same block size: the test runs for a type of one size too."""
    pytester.syspathinsert()
    pytester.makepyfile(table_code=TABLES)
    pytester.makepyfile(test_suite=SUITE.format(name="KEPT_DEVICE"))
    result = pytester.runpytest("-p", "no:randomly", "-p", "no:cacheprovider", "-k", "two_mounts")
    result.assert_outcomes(failed=1, skipped=1)
    result.stdout.fnmatch_lines(
        [
            "*buffer head 0 of pfn * has b_bdev second-dev, not subject-dev, on the move to pfn *: "
            "its next write goes to another device",
            "*FAILED*two_mounts_of_one_block_size*",
        ]
    )
