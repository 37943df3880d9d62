"""A table that takes a spinlock the code it calls takes again: the kernel's spinlock recursion.

``migrate_page_copy`` dirties the new page of a dirty one through
``set_page_dirty``, which takes the mapping's ``private_lock`` (to dirty
the buffers) and then its ``tree_lock`` (to tag the page dirty in the
tree).  A table that copies under either lock deadlocks on a kernel. The
model's ``set_page_dirty`` took no ``tree_lock``, so the ``tree_lock``
version got OK from every mode and the whole testing kit; the
``private_lock`` version was said only after a 30-second stall (and the kit
hung).  On a machine no other thread runs, a plain lock found held is held
by the taker: said at once.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from inproc import installed, migrate_json

pytest_plugins = ["pytester"]

PLUGIN = '''
from errno import EAGAIN

import attrs

import fsaops
from fsaops import migrate_page, migrate_page_copy, migrate_page_remove_references
from fsaops.buffer import buffers, get_bh, lock_buffer, put_bh, set_bh_page, unlock_buffer
from fsaops.page import PG
from fsaops_ext2 import EXT2, ext2_aops


def _copies_under(lock_name):
    def copies_under(newpage, page):
        """buffer_migrate_page, with the copy made under one of the mapping's spinlocks."""
        if not page.flags & PG.private:
            return migrate_page(newpage, page)
        mapping = page.mapping
        if migrate_page_remove_references(newpage, page, 3):
            return -EAGAIN
        ring = list(buffers(page.private))
        for bh in ring:
            get_bh(bh)
            lock_buffer(bh)
        page.flags &= ~PG.private
        newpage.private, page.private = page.private, 0
        page.count -= 1
        newpage.count += 1
        for bh in ring:
            set_bh_page(bh, newpage, bh.b_data & (page.node.page_size - 1))
        newpage.flags |= PG.private
        with getattr(mapping, lock_name):  # "an atomic copy"
            migrate_page_copy(newpage, page)
        for bh in ring:
            unlock_buffer(bh)
            put_bh(bh)
        return 0

    return copies_under


def _type(name, migratepage):
    table = attrs.evolve(ext2_aops, name=f"{name}_aops", migratepage=migratepage)
    return attrs.evolve(EXT2, name=name, modes={"default": table}, page_cache={})


UNDER_TREE_LOCK = _type("copies_under_tree_lock", _copies_under("tree_lock"))
UNDER_PRIVATE_LOCK = _type("copies_under_private_lock", _copies_under("private_lock"))


@fsaops.hookimpl
def fsaops_filesystem_types():
    return [UNDER_TREE_LOCK, UNDER_PRIVATE_LOCK]
'''

CONFIG = """\
[kernel]
node_memory = "2MiB"
semantics = "{semantics}"
[plugins]
load = ["copylock", "swap"]
[[mount]]
fs = "{fs}"
pages = 24
files = 2
block_size = 1024
[workload]
dirty = 0.5
"""

SUITE = """
import copylock
from fsaops.testing import MigratepageConformance


class TestIt(MigratepageConformance):
    filesystem = copylock.{name}
"""

LOCKS = ["tree_lock", "private_lock"]


@pytest.fixture(scope="module")
def configs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """``copylock`` installed; a folder for configs."""
    yield from installed(tmp_path_factory, "copylock", PLUGIN)


@pytest.mark.parametrize("semantics", ["v4", "2.6.17"])
@pytest.mark.parametrize("lock", LOCKS)
def test_copying_under_a_lock_set_page_dirty_takes_is_a_kernel_bug(
    configs: Path, lock: str, semantics: str
) -> None:
    fs = f"copies_under_{lock}"
    rc, report = migrate_json(
        configs / f"{fs}-{semantics}.toml", CONFIG.format(fs=fs, semantics=semantics)
    )
    assert (rc, report["status"]) == (1, "kernel bug"), report.get("error")
    error = str(report["error"])
    assert error.startswith(f"kernel BUG: spinlock recursion: {lock} of <AddressSpace mount0/")
    assert f"(in {fs}_aops's migratepage, migrating pfn " in error


@pytest.mark.parametrize(
    ("lock", "name"), [("tree_lock", "UNDER_TREE_LOCK"), ("private_lock", "UNDER_PRIVATE_LOCK")]
)
def test_the_suite_fails_such_a_table_and_hangs_nothing(
    pytester: pytest.Pytester, lock: str, name: str
) -> None:
    pytester.makepyfile(copylock=PLUGIN)
    pytester.makepyfile(test_suite=SUITE.format(name=name))
    pytester.syspathinsert()
    result = pytester.runpytest(
        "-p",
        "no:randomly",
        "-p",
        "no:cacheprovider",
        "-k",
        "test_engine_moves_a_dirty_page and not refused",
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([f"*spinlock recursion: {lock} of <AddressSpace *"])
