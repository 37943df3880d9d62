"""The testing kit's pytest plugin: inert until used, documented fixtures, options.

The plugin loads in every pytest run of anyone who installs fsaops, so it
must import nothing of the kit, the plugins or Hypothesis until a fixture
is asked for.  Its fixtures must show in ``pytest --fixtures`` with their
docstrings, and ``--fsaops-filesystem``/``--fsaops-mode`` must pick the
table they build pages of.  The fixtures themselves are used here, in the
project's own run, as a plugin author would use them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable

import attrs
import pytest

from fsaops.aops import FileSystemType
from fsaops.buffer import BH
from fsaops.kernel import Kernel
from fsaops.mapping import AddressSpace
from fsaops.page import PG
from fsaops.rmap import VM_LOCKED
from fsaops.testing import Oracle, PageSpec, PreparedPage, Subject, World
from fsaops.testing.harness import CAPABILITIES, SetupError, check_capabilities
from fsaops.world import tail_bytes

pytest_plugins = ["pytester"]

FIXTURES = (
    "fsaops_registry",
    "fsaops_subject",
    "fsaops_kernel_factory",
    "fsaops_world",
    "fsaops_kernel",
    "fsaops_mapping",
    "fsaops_page_factory",
    "fsaops_page",
    "fsaops_oracle",
)

PROBE = """
import sys

def test_probe():
    loaded = sorted(m for m in sys.modules if m.startswith(("fsaops", "hypothesis")))
    print("\\nLOADED=" + ",".join(loaded))
    if "fsaops.testing.pytest_plugin" in loaded:
        import fsaops.testing.promises
        from _pytest.assertion.rewrite import AssertionRewritingHook
        loader = sys.modules["fsaops.testing.promises"].__loader__
        print("\\nREWRITTEN=" + str(isinstance(loader, AssertionRewritingHook)))
"""


@attrs.frozen
class Probe:
    """What one pytest run in a fresh interpreter had imported when its test ran."""

    returncode: int
    output: str
    loaded: frozenset[str]
    rewritten: bool


def _probe(tmp_path_factory: pytest.TempPathFactory, *args: str) -> Probe:
    """Run pytest on a one-test file in a fresh interpreter, away from this project."""
    where = tmp_path_factory.mktemp("probe")
    (where / "test_probe.py").write_text(PROBE)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-s", "-p", "no:cacheprovider", "-W", "error", *args],
        cwd=where,
        capture_output=True,
        text=True,
        check=False,
        env={k: v for k, v in os.environ.items() if not k.startswith("PYTEST")},
    )
    loaded: frozenset[str] = frozenset()
    rewritten = False
    for line in proc.stdout.splitlines():
        if line.startswith("LOADED="):
            loaded = frozenset(filter(None, line[len("LOADED=") :].split(",")))
        elif line.startswith("REWRITTEN="):
            rewritten = line == "REWRITTEN=True"
    return Probe(proc.returncode, proc.stdout + proc.stderr, loaded, rewritten)


@pytest.fixture(scope="module")
def plain_run(tmp_path_factory: pytest.TempPathFactory) -> Probe:
    """A pytest run that never uses the kit."""
    return _probe(tmp_path_factory)


# -- inert until used --------------------------------------------------------------------


def test_the_plugin_loads_but_imports_nothing_of_the_kit(plain_run: Probe) -> None:
    assert plain_run.returncode == 0, plain_run.output
    assert "fsaops.testing.pytest_plugin" in plain_run.loaded  # installed and active
    heavy = {
        "fsaops.plugins",
        "fsaops.testing.conformance",
        "fsaops.testing.harness",
        "fsaops.testing.oracle",
        "fsaops.testing.promises",
        "fsaops.testing.strategies",
        "fsaops_ext2",
        "fsaops_ext3",
        "fsaops_swap",
        "fsaops_xfs",
        "fsaops_xfs_buftarg",
    }
    early = plain_run.loaded & heavy
    assert not early, f"imported at start-up: {sorted(early)}"
    assert "hypothesis" not in plain_run.loaded


def test_the_plugin_does_not_import_the_model(plain_run: Probe) -> None:
    assert "fsaops.kernel" not in plain_run.loaded


def test_the_suite_is_rewritten_for_assertion_diffs_without_a_warning(plain_run: Probe) -> None:
    # -W error: registering the kit for rewriting must not warn ("already imported").
    assert plain_run.returncode == 0, plain_run.output
    assert plain_run.rewritten


def test_no_fsaops_turns_the_plugin_off(tmp_path_factory: pytest.TempPathFactory) -> None:
    run = _probe(tmp_path_factory, "-p", "no:fsaops")
    assert run.returncode == 0, run.output
    assert not {m for m in run.loaded if m.startswith("fsaops")}


# -- documented fixtures and options --------------------------------------------------------


def test_every_fixture_is_listed_with_its_docstring(pytester: pytest.Pytester) -> None:
    from fsaops.testing import pytest_plugin

    result = pytester.runpytest("--fixtures", "-p", "no:randomly")
    out = result.stdout.str()
    for name in FIXTURES:
        doc = getattr(pytest_plugin, name).__doc__
        assert doc, f"fixture {name} has no docstring"
        assert name in out, f"{name} is missing from pytest --fixtures"
        assert doc.strip().splitlines()[0] in out, f"the docstring of {name} is not shown"


def test_the_options_are_in_help(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(["*--fsaops-filesystem=NAME*", "*--fsaops-mode=MODE*"])
    # A class without `filesystem` gets no default (it fails, naming none): the help says so.
    text = " ".join(result.stdout.str().split())
    assert "subclasses without `filesystem` test (no default: such a class fails" in text


def test_the_options_select_the_table(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_selected="""
        def test_table(fsaops_world, fsaops_subject):
            assert fsaops_world.table.name == "ext3_journalled_aops"
            assert fsaops_subject.capabilities == {"buffers", "no_migratepage"}
        """
    )
    result = pytester.runpytest(
        "-p", "no:randomly", "--fsaops-filesystem", "ext3", "--fsaops-mode", "journal"
    )
    result.assert_outcomes(passed=1)


def test_an_unknown_filesystem_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_bad="""
        def test_table(fsaops_world):
            pass
        """
    )
    result = pytester.runpytest("-p", "no:randomly", "--fsaops-filesystem", "nosuchfs")
    assert result.ret != 0
    result.stdout.fnmatch_lines(["*--fsaops-filesystem*nosuchfs*not installed*"])


def test_a_subclass_without_filesystem_takes_the_option(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_any="""
        from fsaops.testing import MigratepageConformance

        class TestFromTheCommandLine(MigratepageConformance):
            capabilities = {"refuses"}
            max_examples = 3
        """
    )
    result = pytester.runpytest(
        "-p", "no:randomly", "-rs", "--fsaops-filesystem", "xfs_buftarg", "-k", "hook or engine"
    )
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) == 0, result.stdout.str()
    assert outcomes["passed"] >= 3
    # Promises that do not apply are skipped, and the reason names the capability.
    result.stdout.fnmatch_lines(
        [
            "SKIPPED*capability 'refuses'*refuses every page*",
            "SKIPPED*needs capability 'writeback'*",
        ],
        consecutive=False,
    )


def test_a_wrong_declaration_is_reported_with_what_the_table_does(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_wrong="""
        from fsaops.testing import MigratepageConformance

        class TestWronglyDeclared(MigratepageConformance):
            filesystem = "ext2"
            capabilities = frozenset()
        """
    )
    result = pytester.runpytest("-p", "no:randomly", "-k", "capabilities")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*broken promise: the declared capabilities match what the table does*",
            "*capability 'buffers' is missing, but a cached page of ext2 mode default*",
            "*what the table does: capabilities = {'buffers', 'writeback'}*",
        ]
    )


def test_a_declaration_without_writeback_is_reported(pytester: pytest.Pytester) -> None:
    """Leaving ``writeback`` out would skip the promises about pages under writeback."""
    pytester.makepyfile(
        test_wrong="""
        from fsaops.testing import MigratepageConformance

        class TestNoWriteback(MigratepageConformance):
            filesystem = "xfs"
            capabilities = {"buffers"}
        """
    )
    result = pytester.runpytest("-p", "no:randomly", "-k", "capabilities")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*capability 'writeback' is missing, but linvfs_aops.writepage puts a dirty page*"]
    )


def test_a_marker_chooses_the_table_of_a_conformance_class(pytester: pytest.Pytester) -> None:
    """The closest marker names the table of a class that names none; the option does not win."""
    pytester.makepyfile(
        test_marked="""
        import pytest
        from fsaops.testing import MigratepageConformance

        pytestmark = pytest.mark.fsaops(filesystem="xfs_buftarg")

        class TestMarked(MigratepageConformance):
            def test_the_subject(self, fsaops_subject):
                assert fsaops_subject.table.name == "xfs_mapping_buftarg.mapping_aops"

        @pytest.mark.fsaops(filesystem="ext3", mode="journal")
        class TestClassMarker(MigratepageConformance):
            def test_the_subject(self, fsaops_subject):
                assert fsaops_subject.table.name == "ext3_journalled_aops"

        @pytest.mark.fsaops(filesystem="ext3", mode="journal")
        class TestOwnAttributeWins(MigratepageConformance):
            filesystem = "xfs"

            def test_the_subject(self, fsaops_subject):
                assert fsaops_subject.table.name == "linvfs_aops"
        """
    )
    result = pytester.runpytest(
        "-p", "no:randomly", "--fsaops-filesystem", "ext2", "-k", "the_subject"
    )
    result.assert_outcomes(passed=3)


def test_a_four_line_subclass_passes_and_says_what_it_inferred(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_four_lines="""
        from fsaops.testing import MigratepageConformance

        class TestExt3Ordered(MigratepageConformance):
            filesystem = "ext3"
            mode = "ordered"
        """
    )
    result = pytester.runpytest("-p", "no:randomly", "-rs")
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) == 0 and outcomes.get("errors", 0) == 0
    assert outcomes["passed"] >= 15
    result.stdout.fnmatch_lines(
        [
            "*capabilities not declared, so inferred from ext3 mode ordered "
            "(ext3_ordered_aops): 'buffers', 'writeback'*"
        ]
    )


def test_a_test_class_or_module_chooses_its_table(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_choose="""
        import pytest

        pytestmark = pytest.mark.fsaops(filesystem="xfs")

        def test_module(fsaops_world):
            assert fsaops_world.table.name == "linvfs_aops"

        @pytest.mark.fsaops(filesystem="ext3", mode="journal")
        class TestClass:
            def test_class(self, fsaops_mapping):
                assert fsaops_mapping.a_ops.name == "ext3_journalled_aops"

            @pytest.mark.fsaops(filesystem="ext3", mode="ordered")
            def test_function_wins(self, fsaops_world):
                assert fsaops_world.table.name == "ext3_ordered_aops"

        @pytest.mark.parametrize("fsaops_subject", ["swap", ("ext2", "nobh")], indirect=True)
        def test_parameter_wins(fsaops_subject, fsaops_world):
            assert fsaops_world.table.name in {"swap_aops", "ext2_nobh_aops"}
            assert fsaops_subject.has("swap_cache") == (fsaops_world.table.name == "swap_aops")
        """
    )
    result = pytester.runpytest("-p", "no:randomly", "--strict-markers")
    result.assert_outcomes(passed=5)


@pytest.mark.parametrize(
    ("test", "words"),
    [
        (
            '@pytest.mark.fsaops(filesystem="nosuchfs")\ndef test_it(fsaops_world): pass',
            ["*@pytest.mark.fsaops*nosuchfs*not installed*"],
        ),
        (
            '@pytest.mark.fsaops(filesystem="ext3", mode="journalled")\n'
            "def test_it(fsaops_world): pass",
            ["*@pytest.mark.fsaops*has no mode 'journalled'*"],
        ),
        (
            '@pytest.mark.fsaops(filesystem="ext2", bogus=1)\ndef test_it(fsaops_world): pass',
            ["*@pytest.mark.fsaops takes filesystem=NAME*"],
        ),
        (
            '@pytest.mark.parametrize("fsaops_subject", [42], indirect=True)\n'
            "def test_it(fsaops_world): pass",
            ["*fsaops_subject takes a filesystem name or a (filesystem, mode) pair, not 42*"],
        ),
    ],
    ids=["unknown filesystem", "unknown mode", "unknown argument", "bad parameter"],
)
def test_a_table_the_fixtures_cannot_build_is_an_error(
    pytester: pytest.Pytester, test: str, words: list[str]
) -> None:
    pytester.makepyfile(test_bad="import pytest\n\n" + test + "\n")
    result = pytester.runpytest("-p", "no:randomly")
    assert result.ret != 0
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed", 0) == 0
    result.stdout.fnmatch_lines(words)


@pytest.mark.fsaops(filesystem="ext3", mode="ordered")
def test_the_marker_chooses_the_table_in_this_run(fsaops_world: World) -> None:
    assert fsaops_world.table.name == "ext3_ordered_aops"


@pytest.mark.parametrize("fsaops_subject", [("ext3", "ordered")], indirect=True)
def test_indirect_parametrization_chooses_the_table_in_this_run(fsaops_world: World) -> None:
    assert fsaops_world.table.name == "ext3_ordered_aops"


def test_a_subclass_without_any_filesystem_says_so(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_none="""
        from fsaops.testing import MigratepageConformance

        class TestNothing(MigratepageConformance):
            pass
        """
    )
    result = pytester.runpytest("-p", "no:randomly", "-k", "capabilities")
    result.stdout.fnmatch_lines(["*TestNothing names no filesystem*--fsaops-filesystem*"])


def test_a_wrong_capability_is_reported_with_the_known_ones() -> None:
    with pytest.raises(SetupError, match=r"unknown capability 'buffer'.*known: buffers"):
        check_capabilities({"buffer"})
    with pytest.raises(SetupError, match="not the string"):
        check_capabilities("buffers")
    assert check_capabilities({"refuses"}) == {"refuses"}
    assert set(CAPABILITIES) >= {"buffers", "writeback", "refuses", "no_migratepage"}


# -- the fixtures, used -----------------------------------------------------------------------


def test_the_default_subject_is_ext2_with_its_capabilities(fsaops_subject: Subject) -> None:
    assert fsaops_subject.fstype.name == "ext2"
    assert fsaops_subject.table.name == "ext2_aops"
    assert fsaops_subject.capabilities == {"buffers", "writeback"}


def test_the_kernel_factory_is_small_and_deterministic(
    fsaops_kernel_factory: Callable[..., Kernel],
) -> None:
    a = fsaops_kernel_factory()
    b = fsaops_kernel_factory()
    assert len(a.nodes) == 2
    assert a.node_pages == 64
    assert [a.rng.random() for _ in range(3)] == [b.rng.random() for _ in range(3)]
    assert a.registry is not None
    assert "ext2" in a.registry.filesystems
    bigger = fsaops_kernel_factory(nodes=3, node_pages=16)
    assert (len(bigger.nodes), bigger.node_pages) == (3, 16)


def test_the_mapping_is_an_empty_file_of_the_table(
    fsaops_mapping: AddressSpace, fsaops_kernel: Kernel
) -> None:
    assert fsaops_mapping.a_ops.name == "ext2_aops"
    assert fsaops_mapping.nrpages == 0
    assert fsaops_mapping.kernel is fsaops_kernel


@pytest.mark.parametrize(
    ("state", "check"),
    [
        ("clean", lambda s, p: not s.flags & PG.dirty and s.in_slot),
        ("dirty", lambda s, p: bool(s.flags & PG.dirty)),
        ("writeback", lambda s, p: bool(s.flags & PG.writeback)),
        ("mapped", lambda s, p: len(s.ptes) == 1 and s.mapcount == 1),
        ("mlocked", lambda s, p: p.vma is not None and bool(p.vma.vm_flags & VM_LOCKED)),
        ("pinned", lambda s, p: s.holds == 1),
        ("locked", lambda s, p: s.locked_by_task and bool(s.flags & PG.locked)),
        ("truncated", lambda s, p: s.mapping is None and not s.in_slot),
        ("dirty+mapped+pinned", lambda s, p: bool(s.flags & PG.dirty) and s.ptes and s.holds),
        # ext2's 1 KiB blocks: the file ends in the second, the last two are holes.
        (
            "tail",
            lambda s, p: (
                [b.state & BH.mapped != 0 for b in s.ring] == [True, True, False, False]
                and all(b.state & BH.uptodate for b in s.ring)
                and p.data[tail_bytes(4096) :] == bytes(4096 - tail_bytes(4096))
            ),
        ),
        (
            "partial",
            lambda s, p: (
                s.flags & PG.dirty
                and not s.flags & PG.uptodate
                and [b.state & (BH.uptodate | BH.dirty) != 0 for b in s.ring]
                == [True, False, False, False]
            ),
        ),
    ],
)
def test_the_page_factory_builds_each_state(
    fsaops_page_factory: Callable[..., PreparedPage],
    fsaops_oracle: Oracle,
    state: str,
    check: Callable[[object, PreparedPage], bool],
) -> None:
    prepared = fsaops_page_factory(state)
    seen = fsaops_oracle.snapshot(prepared.page)
    assert check(seen, prepared), f"{state}: {prepared.page!r}"
    assert not seen.flags & PG.lru  # isolated, as migration callers leave it
    # What the frame holds is the page's data, but where a page written in
    # part was never read: there, what the frame's last user left.
    assert seen.data == prepared.in_frame or state == "truncated"
    assert (prepared.in_frame != prepared.data) == (state == "partial")


@pytest.mark.parametrize("fsaops_page", ["dirty", "mapped"], indirect=True)
def test_the_page_fixture_takes_a_state_indirectly(
    fsaops_page: PreparedPage, fsaops_oracle: Oracle
) -> None:
    seen = fsaops_oracle.snapshot(fsaops_page.page)
    assert seen.flags & PG.dirty or seen.ptes
    assert seen.ring is not None  # ext2 pages carry buffer heads
    assert len(seen.ring) == 4  # 1 KiB blocks in a 4 KiB page


def test_a_page_written_in_part_reads_back_through_its_buffers(
    fsaops_page_factory: Callable[..., PreparedPage],
) -> None:
    """read(2) fills the blocks never read from the disk, and keeps the block written."""
    prepared = fsaops_page_factory("partial")
    assert not prepared.page.flags & PG.uptodate
    assert prepared.read_back() == prepared.data
    assert prepared.page.flags & PG.uptodate and prepared.page.flags & PG.dirty


@pytest.mark.fsaops(filesystem="ext2", mode="nobh")
def test_a_write_that_reads_the_rest_in_leaves_nothing_unread(
    fsaops_page_factory: Callable[..., PreparedPage],
) -> None:
    """nobh_prepare_write reads the blocks a write does not cover: the page is up to date.

    Its frame holds the file's data everywhere, and reads back so; nothing of
    what the frame's last user left may show.
    """
    prepared = fsaops_page_factory("partial")
    assert prepared.page.flags & PG.uptodate
    assert prepared.frame is None and Oracle.frame(prepared.page) == prepared.data
    assert prepared.read_back() == prepared.data


@pytest.mark.parametrize("mode", ["default", "nobh"])
def test_a_page_over_holes_is_not_mapped_to_disk(mode: str) -> None:
    """PG_mappedtodisk says every block of the page is on disk: not where the file ends inside."""
    from fsaops.testing import resolve_subject

    world = World(resolve_subject("ext2", mode))
    whole, tail = world.make_page(PageSpec()), world.make_page(PageSpec(tail=True, seed=1))
    assert not tail.page.flags & PG.mappedtodisk
    # A whole page read through buffers just made is not either, as in the kernel:
    # block_read_full_page counts a buffer unmapped when it starts as one.
    assert bool(whole.page.flags & PG.mappedtodisk) == (mode == "nobh")


def test_mpage_readpage_reads_a_page_with_buffers_through_them(
    fsaops_page_factory: Callable[..., PreparedPage],
) -> None:
    """As do_mpage_readpage's "confused" path: the block written is newer than the disk."""
    from fsaops.buffer import mpage_readpage
    from fsaops.page import lock_page
    from fsaops_ext2 import ext2_get_block

    prepared = fsaops_page_factory("partial")
    page = prepared.page
    lock_page(page)
    assert mpage_readpage(page, ext2_get_block) == 0
    assert Oracle.frame(page) == prepared.data
    assert page.flags & PG.uptodate


def test_a_state_the_table_cannot_reach_is_refused(fsaops_registry: object) -> None:
    from fsaops.testing import resolve_subject

    world = World(resolve_subject("xfs_buftarg"))
    with pytest.raises(SetupError, match="needs capability 'writeback'"):
        world.make_page("writeback")
    with pytest.raises(ValueError, match="unknown page state 'dirtied'"):
        PageSpec.parse("dirtied")
    with pytest.raises(ValueError, match="written in part while not up to date is not mapped"):
        PageSpec.parse("partial+mapped")


# -- the oracle ----------------------------------------------------------------------------


def test_the_oracle_sees_what_changed_in_kernel_terms(
    fsaops_page: PreparedPage, fsaops_oracle: Oracle
) -> None:
    page = fsaops_page.page
    before = fsaops_oracle.snapshot(page)
    assert fsaops_oracle.changes(before, fsaops_oracle.snapshot(page)) == []
    node = page.node
    node.mem[(page.pfn - node.start_pfn) << node.page_shift] ^= 0xFF
    head = page.private
    head.b_this_page.b_count += 1
    head.b_this_page.b_state |= BH.lock
    page.count += 1
    changes = fsaops_oracle.changes(before, fsaops_oracle.snapshot(page))
    pfn = page.pfn
    assert f"pfn {pfn}: its contents changed (first at byte 0)" in changes
    assert f"buffer head 1 of pfn {pfn}: b_count went from 0 to 1" in changes
    assert f"pfn {pfn}: page_count went from {before.count} to {before.count + 1}" in changes
    assert len(changes) == 4  # contents, count, b_count, b_state


def test_the_oracle_reads_a_broken_ring_without_looping(
    fsaops_page: PreparedPage, fsaops_oracle: Oracle
) -> None:
    head = fsaops_page.page.private
    head.b_this_page.b_this_page = head.b_this_page  # ring short-circuited on buffer 1
    ring, problem = fsaops_oracle.ring(head)
    assert problem is not None
    assert "loops back to buffer head 1" in problem
    assert len(ring) == 2


def test_the_oracle_counts_references_it_can_account_for(
    fsaops_page_factory: Callable[..., PreparedPage], fsaops_oracle: Oracle
) -> None:
    prepared = fsaops_page_factory("mapped+pinned")
    total, parts = fsaops_oracle.accounted_references(prepared.page)
    # slot + buffers + one pte + one pin; the isolation reference is the caller's
    assert total == 4
    assert parts == "page-tree slot 1 + buffers 1 + ptes 1 + other tasks 1"
    assert prepared.page.count == total + 1


def test_a_filesystem_type_can_be_tested_before_it_is_installed() -> None:
    from fsaops.testing import resolve_subject
    from fsaops_ext2 import EXT2

    subject = resolve_subject(EXT2, "nobh")
    assert isinstance(subject.fstype, FileSystemType)
    assert subject.origin == "given directly"
    assert subject.table.name == "ext2_nobh_aops"
