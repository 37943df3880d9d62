"""``[workload] out_of_line``: scenario files whose blocks are out of line on the disk.

ext2 ``nobh`` reads such pages through buffer heads ("confused"), so a
``migratepage`` that assumes nobh pages never carry any is caught by a run
of such a scenario; with the key off the scenario is built as before.
"""

from __future__ import annotations

from errno import EAGAIN

import attrs

from fsaops import FileSystemType, migrate_page_copy, migrate_page_remove_references
from fsaops.config import parse_config, unstructure_config
from fsaops.page import PG, Page
from fsaops.plugins import Registry
from fsaops.scenario import Scenario, plan_scenario, run_plan

SCENARIO = """
[kernel]
node_memory = "2MiB"
strict = true
[[mount]]
fs = "{fs}"
mode = "nobh"
pages = 24
files = 3
block_size = {block_size}
[processes]
count = 2
[workload]
seed = 3
dirty = 0.3
mapped = 0.2
{key}
"""


def _config(fs: str = "ext2", *, key: str = "out_of_line = true", block_size: int = 1024) -> str:
    return SCENARIO.format(fs=fs, key=key, block_size=block_size)


def _assumes_no_buffers(newpage: Page, page: Page) -> int:
    """A nobh migratepage that takes its pages for bufferless: buffers stay behind."""
    extra = 1 if page.flags & PG.private else 0
    if migrate_page_remove_references(newpage, page, 2 + extra):
        return -EAGAIN
    migrate_page_copy(newpage, page)
    return 0


def _with_bad_nobh(registry: Registry) -> Registry:
    ext2 = registry.filesystem("ext2")
    table = attrs.evolve(
        ext2.modes["nobh"], name="assumes_no_buffers_aops", migratepage=_assumes_no_buffers
    )
    bad = FileSystemType(
        name="badnobh", modes={"nobh": table}, default_mode="nobh", block_sizes=(1024, 4096)
    )
    return attrs.evolve(registry, filesystems={**registry.filesystems, "badnobh": bad})


def test_every_page_of_every_file_has_its_blocks_out_of_line(registry: Registry) -> None:
    plan = plan_scenario(parse_config(_config()), registry, "scenario.toml")
    world = Scenario(plan.config, registry, seed=3)
    files = [record for record in world.files if record.npages]
    assert len(files) == 3
    for record in files:
        blocks = record.inode.blocks
        assert len(blocks) == 4 * record.npages
        assert all(blocks[k] != blocks[k - 1] + 1 for k in range(1, len(blocks)))
        # Read through block_read_full_page: every page carries its buffers.
        for page in record.inode.i_mapping.pages():
            assert page.flags & PG.private


def test_off_by_default_and_left_out_of_the_report(registry: Registry) -> None:
    off = parse_config(_config(key=""))
    assert not off.workload.out_of_line
    assert "out_of_line" not in unstructure_config(off)["workload"]
    on = parse_config(_config())
    assert unstructure_config(on)["workload"]["out_of_line"] is True
    world = Scenario(plan_scenario(off, registry, "scenario.toml").config, registry, seed=3)
    for record in world.files:
        blocks = record.inode.blocks
        assert blocks == [*range(blocks[0], blocks[0] + len(blocks))] if blocks else True


def test_a_run_catches_a_nobh_table_that_assumes_no_buffers(registry: Registry) -> None:
    bad = _with_bad_nobh(registry)
    report = run_plan(plan_scenario(parse_config(_config("badnobh")), bad, "scenario.toml"))
    assert not report.ok
    assert any("references are accounted for" in problem for problem in report.invariants)
    # The built-in table moves the same pages cleanly.
    good = run_plan(plan_scenario(parse_config(_config()), registry, "scenario.toml"))
    assert good.ok, good.invariants
    assert good.workload["dirty"] > 0


def test_a_mount_of_one_block_a_page_is_left_as_it_is(registry: Registry) -> None:
    """A page of one block has nothing out of line: the files are built as without the key."""
    bad = _with_bad_nobh(registry)
    config = parse_config(_config("badnobh", block_size=4096))
    world = Scenario(plan_scenario(config, bad, "scenario.toml").config, bad, seed=3)
    for record in world.files:
        blocks = record.inode.blocks
        assert blocks == [*range(blocks[0], blocks[0] + len(blocks))] if blocks else True
