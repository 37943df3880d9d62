"""The conformance suite moves a page two processes map: a one-pte table fails it.

Every mapped page the suite built had one pte, so a ``migratepage`` that
expects ``page_count == 2 + !!page_mapcount`` before unmapping (one mapping
assumed), which never moves a page two processes map, passed the whole
suite.  ``PageSpec.shared`` maps the page in a second process, and
``test_engine_moves_a_page_two_processes_map`` migrates such pages.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings

from fsaops.testing import PageSpec, SetupError, Subject, World
from fsaops_ext2 import EXT2
from fsaops_swap import SWAP

pytest_plugins = ["pytester"]

TABLES = """
from errno import EAGAIN

import attrs

from fsaops import migrate_page, migrate_page_copy, migrate_page_remove_references
from fsaops_ramfs import RAMFS, ramfs_aops


def one_pte(newpage, page):
    if page.count != 2 + (1 if page.mapcount else 0):
        return -EAGAIN
    if migrate_page_remove_references(newpage, page, 2):
        return -EAGAIN
    migrate_page_copy(newpage, page)
    return 0


def _type(name, migratepage):
    table = attrs.evolve(ramfs_aops, name=f"{name}_aops", migratepage=migratepage)
    return attrs.evolve(RAMFS, name=name, modes={"default": table})


ONE_PTE = _type("onepte", one_pte)
ANY = _type("any", migrate_page)
"""

SUITE = """
import table_code
from fsaops.testing import MigratepageConformance


class TestIt(MigratepageConformance):
    filesystem = table_code.{name}
    semantics = "{semantics}"
"""

TEST = "two_processes"


@pytest.mark.parametrize("semantics", ["v4", "2.6.16", "2.6.17"])
def test_a_table_that_assumes_one_pte_fails_the_suite(
    pytester: pytest.Pytester, semantics: str
) -> None:
    pytester.syspathinsert()
    pytester.makepyfile(table_code=TABLES)
    pytester.makepyfile(test_suite=SUITE.format(name="ONE_PTE", semantics=semantics))
    result = pytester.runpytest("-p", "no:randomly", "-p", "no:cacheprovider", "-k", TEST)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*mapped by a second process*"])


def test_migrate_page_passes_it(pytester: pytest.Pytester) -> None:
    pytester.syspathinsert()
    pytester.makepyfile(table_code=TABLES)
    pytester.makepyfile(test_suite=SUITE.format(name="ANY", semantics="v4"))
    result = pytester.runpytest("-p", "no:randomly", "-p", "no:cacheprovider", "-k", TEST)
    result.assert_outcomes(passed=1)


def test_a_shared_page_has_a_pte_in_each_of_two_processes() -> None:
    world = World(Subject(EXT2, "default", block_size=1024))
    prepared = world.make_page(PageSpec.parse("shared+dirty"))
    assert prepared.spec.mapped and prepared.sharer is not None
    assert prepared.sharer is not prepared.mm
    assert prepared.page.mapcount == 2
    assert prepared.sharer.read(prepared.sharer_addr, 8) == prepared.data[:8]
    assert "mapped by a second process" in str(prepared.spec)
    with pytest.raises(ValueError, match="truncated page is not mapped"):
        PageSpec(shared=True, truncated=True)


def test_anonymous_memory_is_not_shared_by_the_kit() -> None:
    world = World(Subject(SWAP, "default", frozenset({"swap_cache"})))
    with pytest.raises(SetupError, match="only after fork"):
        world.make_page(PageSpec(shared=True))


def test_the_random_pages_of_the_suite_include_shared_file_pages() -> None:
    """The property tests draw pages two processes map (files only), as well as the rest."""
    from fsaops.testing import strategies

    drawn: list[PageSpec] = []

    @settings(max_examples=200, database=None, derandomize=True)
    @given(strategies.page_specs({"buffers", "writeback"}))
    def files(spec: PageSpec) -> None:
        assert not spec.shared or spec.mapped
        drawn.append(spec)

    @settings(max_examples=50, database=None, derandomize=True)
    @given(strategies.page_specs({"swap_cache"}))
    def anonymous(spec: PageSpec) -> None:
        assert not spec.shared

    files()
    anonymous()
    assert any(spec.shared for spec in drawn)
    assert any(spec.mapped and not spec.shared for spec in drawn)
