"""The testing kit's suite fails a ``migratepage`` that changes a file's size.

Moving a page changes nothing of its file (KERNEL-SPEC §6, §7), yet a
``migratepage`` that grew or shrank ``i_size`` passed every promise: the
pages themselves were right.  ``read(2)`` and ``stat`` go by ``i_size``,
so the file read back longer (zeroes past its end) or cut short.  The
suite now reads every file's size before each call and each run, and the
promise ``size`` says whose changed and how.  Each broken table below is
``buffer_migrate_page`` followed by one act on a size, wrapped as a third
party would (ext2's table with the broken ``migratepage``), run through
pytester; every built-in table and the example plugin keep the promise.
"""

from __future__ import annotations

import textwrap

import pytest

from fsaops.testing import PageSpec, World, promises, resolve_subject
from fsaops.testing.harness import file_sizes
from fsaops.testing.promises import PROMISES
from suite_runs import call_reports, inline_reports

pytest_plugins = ["pytester"]

BROKEN_MODULE = textwrap.dedent(
    '''
    from errno import EAGAIN

    import attrs

    from fsaops import buffer_migrate_page
    from fsaops.testing import MigratepageConformance
    from fsaops_ext2 import EXT2, ext2_aops


    def _host(page):
        return page.mapping.host


    def grows(newpage, page):
        """Moves the page, then grows its file by three pages."""
        rc = buffer_migrate_page(newpage, page)
        if rc == 0:
            _host(newpage).i_size += 3 * 4096
        return rc


    def shrinks(newpage, page):
        """Moves the page, then cuts one byte off its file."""
        rc = buffer_migrate_page(newpage, page)
        if rc == 0:
            _host(newpage).i_size -= 1
        return rc


    def grows_another_file(newpage, page):
        """Moves the page (or not), then grows every other file of the mount by a page."""
        host = _host(page) if page.mapping is not None else None
        rc = buffer_migrate_page(newpage, page)
        if host is not None:
            for inode in host.i_sb.inodes:
                if inode is not host:
                    inode.i_size += 4096
        return rc


    def grows_then_fails(newpage, page):
        """Grows its file by a byte, whatever buffer_migrate_page then says."""
        if page.mapping is not None:
            _host(page).i_size += 1
        return buffer_migrate_page(newpage, page)


    def _type(name, migratepage):
        table = attrs.evolve(ext2_aops, name=f"{name}_aops", migratepage=migratepage)
        return attrs.evolve(EXT2, name=name, modes={"default": table})


    class TestGrows(MigratepageConformance):
        filesystem = _type("grows", grows)
        max_examples = 5


    class TestShrinks(MigratepageConformance):
        filesystem = _type("shrinks", shrinks)
        max_examples = 5


    class TestGrowsAnotherFile(MigratepageConformance):
        filesystem = _type("grows_another_file", grows_another_file)
        max_examples = 5


    class TestGrowsThenFails(MigratepageConformance):
        filesystem = _type("grows_then_fails", grows_then_fails)
        max_examples = 5


    class TestControl(MigratepageConformance):
        filesystem = _type("control", buffer_migrate_page)
        max_examples = 5
    '''
)

HOOK = "test_hook_leaves_every_files_size_as_it_was"
ENGINE = "test_engine_moves_whole_files_and_touches_no_other_page"
PROPERTY = "test_property_hook_keeps_every_promise_on_random_pages"

BUGS = {
    "TestGrows": (
        "migratepage of pfn 1 changed the size (i_size) of subject/page1 from 6044 to 18332 "
        "bytes: a read now returns 12288 bytes nobody wrote past its end (page dirty+the file "
        "ends inside it)"
    ),
    "TestShrinks": (
        "migratepage of pfn 0 changed the size (i_size) of subject/page0 from 16384 to 16383 "
        "bytes: a read now stops 1 byte short of the data it holds (page dirty)"
    ),
    "TestGrowsAnotherFile": (
        "migratepage of pfn 1 changed the size (i_size) of subject/page0 from 16384 to 20480 "
        "bytes: a read now returns 4096 bytes nobody wrote past its end (page dirty+the file "
        "ends inside it)"
    ),
    "TestGrowsThenFails": (  # a page that cannot move leaves its file as it was too
        "migratepage of pfn 2 changed the size (i_size) of subject/page2 from 8192 to 8193 "
        "bytes: a read now returns 1 byte nobody wrote past its end (page pinned x1)"
    ),
}


def _run(pytester: pytest.Pytester, keyword: str) -> dict[str, pytest.TestReport]:
    pytester.makepyfile(test_sizes=BROKEN_MODULE)
    reprec = inline_reports(pytester, "--tb=short", "-k", keyword)
    return call_reports(reprec)


@pytest.mark.parametrize("cls", sorted(BUGS))
def test_the_suite_fails_a_migratepage_that_changes_a_files_size(
    pytester: pytest.Pytester, cls: str
) -> None:
    ran = _run(pytester, f"{cls} and (size or touches_no_other_page or property_hook)")
    hook = ran[f"{cls}::{HOOK}"]
    assert hook.failed, f"{HOOK} passed {cls}"
    assert f"broken promise: {PROMISES['size']}" in hook.longreprtext
    assert BUGS[cls] in hook.longreprtext, hook.longreprtext
    engine = ran[f"{cls}::{ENGINE}"]
    assert engine.failed, f"{ENGINE} passed {cls}"
    assert f"broken promise: {PROMISES['size']}" in engine.longreprtext
    assert "migrate_pages changed the size (i_size) of " in engine.longreprtext
    prop = ran[f"{cls}::{PROPERTY}"]
    if cls == "TestGrowsAnotherFile":  # each random page is the only file of its machine
        return
    assert prop.failed, f"{PROPERTY} passed {cls}"
    assert f"broken promise: {PROMISES['size']}" in prop.longreprtext


def test_buffer_migrate_page_itself_keeps_every_promise(pytester: pytest.Pytester) -> None:
    """The control: the same table with the real ``buffer_migrate_page`` passes the suite."""
    ran = _run(pytester, "TestControl")
    assert ran, "the control ran nothing"
    failed = [test for test, report in ran.items() if report.failed]
    assert not failed, failed


TABLES = [
    ("ext2", "default"),
    ("ext2", "nobh"),
    ("ext3", "ordered"),
    ("ext3", "writeback"),
    ("xfs", "default"),
    ("xfs_buftarg", "default"),
    ("ramfs", "default"),  # the example plugin
]


@pytest.mark.parametrize(("fs", "mode"), TABLES, ids=[f"{fs}-{mode}" for fs, mode in TABLES])
@pytest.mark.parametrize(
    "spec",
    [
        PageSpec(dirty=True, index=2),
        PageSpec(tail=True, dirty=True, index=1),
        PageSpec(mapped=True),
        PageSpec(pinned=1),
    ],
    ids=str,
)
def test_every_built_in_table_keeps_every_files_size(fs: str, mode: str, spec: PageSpec) -> None:
    """No false alarm: each built-in ``migratepage`` and the example plugin's, on pages that
    move and one that cannot (the suites of tests/test_conformance.py and the example plugin
    run the whole promise)."""
    subject = resolve_subject(fs, mode)
    world = World(subject)
    world.make_page(PageSpec(dirty=True, seed=1))  # another file on the mount
    call = world.call_migratepage(world.make_page(spec))
    assert len(call.sizes_before) == 2
    assert promises.hook_size_kept(call) == []
    assert promises.check_hook_call(subject, call).get("size") is None


def test_sizes_kept_names_the_file_and_the_change() -> None:
    subject = resolve_subject("ext2", "default")
    world = World(subject)
    inode = world.make_page("tail").inode
    assert inode is not None
    before = file_sizes(world.kernel)
    (size,) = [s for i, s in before if i is inode]
    inode.i_size = size + 100
    assert promises.sizes_kept(before, "migrate_pages") == [
        f"migrate_pages changed the size (i_size) of {inode.name} from {size} to {size + 100} "
        "bytes: a read now returns 100 bytes nobody wrote past its end"
    ]
    inode.i_size = size
    assert promises.sizes_kept(before, "migrate_pages") == []
