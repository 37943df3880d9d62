"""The invariants name a page of a file by its file page as well as its frame.

After migration a page's frame is on the target node, which says nothing
of whose page it is, and which ``--trace`` does not take: the problem line
gives the file page and its table too (``pfn 1034 (mount0/file1/page1, ext2_aops)``), and
``--trace`` of that frame says to name the page instead.
"""

from __future__ import annotations

import re

import attrs
import pytest

from fsaops.config import parse_config
from fsaops.debug import check_kernel, check_pages
from fsaops.page import Page, get_page, put_page
from fsaops.plugins import Registry
from fsaops.scenario import plan_scenario, run_plan, run_scenario
from fsaops.trace import PageTrace, TraceError, parse_page
from fsaops.world import World

SCENARIO = (
    '[kernel]\nnode_memory = "4MiB"\n[[mount]]\nfs = "leak"\npages = 24\nfiles = 2\n'
    "[workload]\nseed = 3\ndirty = 0.5\n"
)


def _leaking(registry: Registry) -> Registry:
    """ext2 whose ``migratepage`` keeps an extra reference on the new page of index 1."""
    ext2 = registry.filesystems["ext2"]
    a_ops = ext2.modes["default"]
    migratepage = a_ops.migratepage
    assert migratepage is not None

    def leak_migratepage(newpage: Page, page: Page, /) -> int:
        rc = migratepage(newpage, page)
        if rc == 0 and page.index == 1:
            get_page(newpage)
        return rc

    table = attrs.evolve(a_ops, name="leak_aops", migratepage=leak_migratepage)
    leak = attrs.evolve(ext2, name="leak", modes={"default": table})
    return attrs.evolve(registry, filesystems={**registry.filesystems, "leak": leak})


def test_a_file_page_is_named_after_its_pfn_and_an_anonymous_one_is_not(
    registry: Registry,
) -> None:
    world = World(registry=registry, node_pages=64, swap_slots=8)
    record = world.create_file(world.mount("ext2"), key="mount0/file0", name="mount0/file0")
    world.load_file(record, 4)
    page = world.page_of(record, 2)
    assert page is not None
    assert check_kernel(world.kernel) == [] and check_pages(world.kernel, [page]) == []
    anon = world.make_page("clean")
    get_page(page)
    get_page(anon.page)
    said = f"pfn {page.pfn} (mount0/file0/page2, ext2_aops) has page_count"
    # The anonymous page is isolated for a migration, on the world's list: name it.
    problems = check_kernel(world.kernel, isolated=[world.from_])
    assert len(problems) == 2
    assert problems[0].startswith(said) or problems[1].startswith(said)
    assert any(p.startswith(f"pfn {anon.page.pfn} has page_count") for p in problems)
    assert check_pages(world.kernel, [page])[0].startswith(said)
    put_page(page)
    put_page(anon.page)


def test_the_report_names_the_file_page_whose_invariant_broke(registry: Registry) -> None:
    report = run_scenario(parse_config(SCENARIO, "s.toml"), _leaking(registry), source="s.toml")
    assert len(report.invariants) == 2
    for line in report.invariants:
        said = r"pfn \d+ \(mount0/file[01]/page1, leak_aops\) has page_count 3, "
        assert re.match(said, line), line


def _traced(registry: Registry, page: str) -> PageTrace:
    plan = plan_scenario(parse_config(SCENARIO, "s.toml"), _leaking(registry), "s.toml")
    tracer = PageTrace(parse_page(page))
    run_plan(plan, observers=[tracer])
    return tracer


def test_trace_of_a_frame_a_page_moved_to_says_to_name_the_page(registry: Registry) -> None:
    report = run_scenario(parse_config(SCENARIO, "s.toml"), _leaking(registry), source="s.toml")
    found = re.match(r"pfn (\d+) \((mount0/file\d/page1), leak_aops\)", report.invariants[0])
    assert found is not None
    pfn, name = found.groups()
    with pytest.raises(TraceError) as caught:
        _traced(registry, pfn)
    assert str(caught.value) == (
        f"--trace {pfn}: pfn {pfn} is on node 1, where pages migrate to, and is free when "
        "migration starts: name the page that moves there instead, as MOUNT/FILE:INDEX, or "
        "MOUNT/FILE/pageN as a problem line gives it after the pfn (node 0 has pfns 0 to 1023)"
    )
    tracer = _traced(registry, name)  # the name the line gives is taken
    assert tracer.steps[-1].pfn == int(pfn)
