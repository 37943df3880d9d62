"""The kit's pages are not all the last page of their file.

Every page the kit built for a direct call was its file's last page.  A
table that takes the safe path there (``migrate_page`` for a file's last
page, say) and a lossy one elsewhere (reading ``PG_dirty`` before the ptes
are gone, so a page written only through a mapping arrives clean) passed
the whole suite, while ``fsaops migrate`` lost its data.  A page is now
followed by another page of its file unless its spec says ``last`` (or
``tail``, or ``sparse``), and the random specs draw both.
"""

from __future__ import annotations

import textwrap

import pytest

from fsaops.testing import Oracle, PageSpec, Subject, World

pytest_plugins = ["pytester"]

TABLE = """
import attrs

import fsaops
from fsaops import migrate_page, migrate_page_copy, migrate_page_remove_references
from fsaops.page import PG
from fsaops_ext2 import ext2_nobh_aops


def safe_only_at_the_end(newpage, page):
    inode = page.mapping.host
    if (page.index + 1) * 4096 >= inode.i_size:
        return migrate_page(newpage, page)
    dirty = page.flags & PG.dirty  # read before the ptes are gone: a pte's dirty bit is lost
    rc = migrate_page_remove_references(newpage, page, 2)
    if rc:
        return rc if rc < 0 else -11
    migrate_page_copy(newpage, page)
    if not dirty:
        newpage.flags &= ~PG.dirty
    return 0


table = attrs.evolve(ext2_nobh_aops, name="tailsafe_aops", migratepage=safe_only_at_the_end)
TAILSAFE = fsaops.FileSystemType(
    name="tailsafe",
    modes={"default": table},
    block_sizes=(4096,),
    default_block_size=4096,
    description="loses a pte's dirty bit, except on a file's last page",
)
"""


def test_a_table_safe_only_on_a_files_last_page_fails_the_suite(
    pytester: pytest.Pytester,
) -> None:
    pytester.syspathinsert()
    pytester.makepyfile(table_code=TABLE)
    pytester.makepyfile(
        test_suite=textwrap.dedent(
            """
            import table_code
            from fsaops.testing import MigratepageConformance


            class TestIt(MigratepageConformance):
                filesystem = table_code.TAILSAFE
                semantics = "v4"
                capabilities = {"writeback"}
            """
        )
    )
    result = pytester.runpytest(
        "-p", "no:randomly", "-p", "no:cacheprovider", "-k", "dirty_bit_held_only_in_a_pte"
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*moved to pfn * clean*"])


@pytest.mark.parametrize(
    ("spec", "pages", "last"),
    [
        ("dirty", 2, False),
        ("dirty+last", 1, True),
        ("tail", 1, True),
        ("sparse", 1, True),
    ],
)
def test_a_page_is_followed_by_another_unless_it_is_the_last(
    spec: str, pages: int, last: bool
) -> None:
    from fsaops_ext2 import EXT2

    world = World(Subject(EXT2, "default", block_size=1024))
    parsed = PageSpec.parse(spec)
    assert parsed.last is last
    prepared = world.make_page(parsed)
    inode = prepared.inode
    assert inode is not None
    ps = world.page_size
    assert (inode.i_size + ps - 1) // ps == pages
    if not last:
        # The next page is on disk, with its own data, and not in memory.
        assert inode.i_mapping.lookup(1) is None
        record = world.files[-1]
        assert Oracle.on_disk(inode, 1) == world.expected(record, 1)
