"""Every built-in operations table runs the conformance suite, as a third party's would.

One subclass of :class:`fsaops.testing.MigratepageConformance` per table
(KERNEL-SPEC §7 lists them), each resolved through the real plugin loader
with only its plugin selected.  Capabilities say which promises apply:

* ext2 ``default``, ext3 ``ordered``/``writeback``, XFS: buffer heads and
  writeback, ``migratepage = buffer_migrate_page``;
* ext2 ``nobh``: no buffer heads, still ``buffer_migrate_page``;
* ext3 ``journal``: no ``migratepage`` in V4, so the suite checks the
  engine's fallback (pageout, the journal's commit, ``migrate_page``); its
  pages go through the journal rather than under writeback;
* the swap cache: anonymous pages, ``migratepage = migrate_page``;
* the XFS buffer-cache mapping: ``fail_migrate_page`` refuses with ``-EIO``.

ext2 ``xip`` executes in place and keeps no page-cache pages, so there is
no page to migrate: ``no_page_cache`` skips every promise but the one that
applies.

Each subclass is written the four-line way a plugin author would write it
(filesystem and mode only): the suite infers the capabilities from the
table.  Two declare theirs, so that a declaration is checked against the
table too.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fsaops.plugins import load_plugins
from fsaops.testing import MigratepageConformance, World, promises, resolve_subject, strategies
from fsaops.testing.harness import infer_capabilities


class TestExt2(MigratepageConformance):
    filesystem = "ext2"
    mode = "default"


class TestExt2Nobh(MigratepageConformance):
    filesystem = "ext2"
    mode = "nobh"


class TestExt2Xip(MigratepageConformance):
    filesystem = "ext2"
    mode = "xip"


class TestExt3Ordered(MigratepageConformance):
    filesystem = "ext3"
    mode = "ordered"


class TestExt3Writeback(MigratepageConformance):
    filesystem = "ext3"
    mode = "writeback"


class TestExt3Journal(MigratepageConformance):
    filesystem = "ext3"
    mode = "journal"


class TestXfs(MigratepageConformance):
    filesystem = "xfs"
    mode = "default"


class TestXfsSmallBlocks(MigratepageConformance):
    """XFS with 512-byte blocks: eight buffer heads per page, capabilities declared."""

    filesystem = "xfs"
    block_size = 512
    capabilities = frozenset({"buffers", "writeback"})


class TestSwap(MigratepageConformance):
    filesystem = "swap"
    mode = "default"


class TestSwapDeclared(MigratepageConformance):
    """The swap cache's table with its capabilities declared, so the declaration is checked."""

    filesystem = "swap"
    capabilities = frozenset({"swap_cache", "writeback"})


class TestXfsBuftarg(MigratepageConformance):
    filesystem = "xfs_buftarg"
    mode = "default"


#: What each built-in table does (KERNEL-SPEC §7), as the suite must infer it.
EXPECTED_CAPABILITIES = {
    ("ext2", "default"): {"buffers", "writeback"},
    ("ext2", "nobh"): {"buffers", "writeback"},
    ("ext2", "xip"): {"no_migratepage", "no_page_cache"},
    ("ext3", "ordered"): {"buffers", "writeback"},
    ("ext3", "writeback"): {"buffers", "writeback"},
    ("ext3", "journal"): {"buffers", "no_migratepage"},
    ("xfs", "default"): {"buffers", "writeback"},
    ("swap", "default"): {"swap_cache", "writeback"},
    ("xfs_buftarg", "default"): {"refuses"},
}


@pytest.mark.parametrize("table", sorted(EXPECTED_CAPABILITIES), ids="-".join)
def test_capabilities_left_out_are_inferred_from_what_the_table_does(
    table: tuple[str, str],
) -> None:
    subject = resolve_subject(*table)
    assert infer_capabilities(subject) == EXPECTED_CAPABILITIES[table]


BUILTIN = ["ext2", "ext3", "swap", "xfs", "xfs_buftarg"]


def test_every_builtin_table_at_any_block_size_keeps_its_promises() -> None:
    """Random built-in table, block size and page state (KERNEL-SPEC §3, §5-§7).

    The subclasses above use each type's default block size; here the
    Hypothesis strategies draw any table and any block size it takes (XFS
    down to 512 bytes: eight buffer heads per page) and a page state.  A
    table with ``migratepage`` is called directly; one without goes
    through the engine's fallback.
    """
    registry = load_plugins(cli=BUILTIN)

    @settings(max_examples=40, deadline=None, derandomize=True, database=None)
    @given(data=st.data())
    def prop(data: st.DataObject) -> None:
        subject = data.draw(strategies.mappings(registry), label="table")
        hook = not subject.has("no_migratepage")
        spec = data.draw(strategies.page_specs(subject.capabilities, for_hook=hook), label="page")
        world = World(subject)
        if hook:
            call = world.call_migratepage(world.make_page(spec))
            broken = promises.check_hook_call(subject, call)
            assert not broken, "\n".join(promises.report(k, v) for k, v in broken.items())
        else:
            prepared = world.make_page(spec)
            run = world.migrate(rounds=4, settle_ticks=256)
            problems = promises.check_engine_page(world, run, prepared)
            assert not problems, promises.report("engine", problems)

    prop()


def test_every_promise_cites_the_kernel_spec() -> None:
    names = [name for name in dir(MigratepageConformance) if name.startswith("test_")]
    assert len(names) >= 20
    missing = [
        n
        for n in names
        if "KERNEL-SPEC §" not in (getattr(MigratepageConformance, n).__doc__ or "")
    ]
    assert not missing, f"promises without a KERNEL-SPEC citation: {missing}"
    assert not MigratepageConformance.__name__.startswith("Test")
