"""A run that stops moving ends with a word in every phase, not only while it migrates.

The stall watch used to look only at migration: a table member that loops
for ever where another phase calls it (``readpage`` as the world is built,
``writepage`` in the durability proof's sync), or a lookup of the model that
retries for ever over a page cache a table left broken, hung ``fsaops
migrate`` with no time limit for good.  Now every phase tells of its work,
and :data:`fsaops.scenario.STALL_SECONDS` with neither the kernel's clock
nor the run's work moving ends the run as stuck, naming the phase and the
plugin code; so does a call into plugin code that has not returned in
:data:`fsaops.scenario.HUNG_SECONDS`, though it moves the clock.  A lookup
whose slot keeps a page that says it is another page is the kernel's soft
lockup, said at once.

The tables are ext2's, with one member replaced, in a plugin written here
and installed as a third party's would be.
"""

from __future__ import annotations

import contextlib
import io
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fsaops import scenario
from fsaops.cli import main
from fsaops.testing.dist import write_dist_info

PLUGIN = '''\
import attrs

import fsaops
from fsaops import buffer_migrate_page
from fsaops.debug import mappings
from fsaops.page import PG
from fsaops_ext2 import EXT2, ext2_aops


def spins_in_writepage(page, wbc):
    while True:
        pass


def spins_in_readpage(page):
    while True:
        pass


def ticks_in_writepage(page, wbc):
    while True:
        page.node.kernel.sched.tick()  # cond_resched(), waiting for what never comes


def ticks_in_migratepage(newpage, page):
    while True:
        page.node.kernel.sched.tick()


filed = []


def files_the_page_elsewhere(newpage, page):
    """Moves the page, then (once) marks the new one another file's, and not up to date."""
    mapping = page.mapping
    rc = buffer_migrate_page(newpage, page)
    if rc == 0 and not filed:
        other = next(m for m in mappings(mapping.kernel) if m.a_ops.name == "ext2_aops")
        newpage.mapping = other
        newpage.flags &= ~PG.uptodate
        filed.append(newpage.pfn)
    return rc


TABLES = {
    "writepage": {"writepage": spins_in_writepage},
    "readpage": {"readpage": spins_in_readpage},
    "elsewhere": {"migratepage": files_the_page_elsewhere},
    "tick_writepage": {"writepage": ticks_in_writepage},
    "tick_migratepage": {"migratepage": ticks_in_migratepage},
}


@fsaops.hookimpl
def fsaops_filesystem_types():
    return [
        attrs.evolve(
            EXT2,
            name=f"stall_{name}",
            modes={"default": attrs.evolve(ext2_aops, name=f"stall_{name}_aops", **members)},
            page_cache={},
        )
        for name, members in TABLES.items()
    ]
'''

SCENARIO = """\
[kernel]
node_memory = "2MiB"
[plugins]
load = ["stallfs", "ext2"]
[[mount]]
fs = "stall_{name}"
pages = 24
files = 3
block_size = 1024
[[mount]]
fs = "ext2"
pages = 8
[processes]
count = 1
anon_pages = 0
[workload]
dirty = 0.3
"""


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The plugin, installed; where the scenarios go."""
    site = tmp_path_factory.mktemp("site")
    (site / "stallfs_plugin.py").write_text(PLUGIN, encoding="utf-8")
    write_dist_info(site, "fsaops-stallfs", {"fsaops": {"stallfs": "stallfs_plugin"}})
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(site))
        patch.delenv("FSAOPS_PLUGINS", raising=False)
        yield tmp_path_factory.mktemp("scenarios")


@pytest.fixture
def quick_watch(monkeypatch: pytest.MonkeyPatch) -> None:
    """A stall after one second, looked for five times a second."""
    monkeypatch.setattr(scenario, "STALL_SECONDS", 1.0)
    monkeypatch.setattr(scenario, "_WATCH_EVERY", 0.2)


def migrate(folder: Path, name: str) -> tuple[int, dict[str, Any], str]:
    """``fsaops migrate --json`` of the scenario of table ``stall_NAME``, in this process."""
    path = folder / f"{name}.toml"
    path.write_text(SCENARIO.format(name=name), encoding="utf-8")
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(["migrate", str(path), "--json", "--no-progress"])
    assert "Traceback" not in err.getvalue()
    return rc, json.loads(out.getvalue()), err.getvalue()


@pytest.mark.usefixtures("quick_watch")
@pytest.mark.parametrize(
    ("name", "phase"),
    [
        ("readpage", "while building the world"),
        ("writepage", "while proving durability (writeback, dropped cache, read-back)"),
    ],
)
def test_a_member_that_loops_for_ever_outside_migration_ends_the_run(
    folder: Path, name: str, phase: str
) -> None:
    rc, report, err = migrate(folder, name)
    assert (rc, report["status"]) == (1, "timeout"), report
    error = report["error"]
    assert error.startswith("stuck: the run made no progress for "), error
    assert phase in error, error
    assert f"in plugin code of fsaops-stallfs[stallfs] (stallfs_plugin.spins_in_{name}" in error
    assert err.splitlines() == [f"fsaops: error: {error}"]


def test_a_lookup_over_a_slot_that_keeps_another_files_page_is_a_soft_lockup(
    folder: Path,
) -> None:
    """The read-back's lookup would find the page again for ever; said at once."""
    rc, report, _ = migrate(folder, "elsewhere")
    assert (rc, report["status"]) == (1, "kernel bug"), report
    error = report["error"]
    assert "soft lockup: page-cache slot " in error, error
    assert "of mount0/file" in error and "(stall_elsewhere_aops) holds pfn " in error, error
    assert "which says it is page " in error and " of mount1/file0" in error, error
    assert "whose table stall_elsewhere_aops it is" in error, error


def test_a_run_that_tells_of_its_work_is_not_stuck(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the clock still, each phase's work told is progress (a stall of a second)."""
    monkeypatch.setattr(scenario, "STALL_SECONDS", 1.0)
    monkeypatch.setattr(scenario, "_WATCH_EVERY", 0.05)
    worked = scenario._Where.progress

    def slowly(where: Any, told: Any) -> Any:
        inner = worked(where, told)

        def each(phase: str, done: int, total: int) -> None:
            inner(phase, done, total)
            if phase == "check":
                time.sleep(0.4)  # three of these: longer than the stall, each a sign of work

        return each

    monkeypatch.setattr(scenario._Where, "progress", slowly)
    path = folder / "correct.toml"
    path.write_text(SCENARIO.replace('fs = "stall_{name}"', 'fs = "ext2"'), encoding="utf-8")
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        rc = main(["migrate", str(path), "--json", "--no-progress"])
    report = json.loads(out.getvalue())
    assert (rc, report["status"]) == (0, "ok"), report.get("error")


@pytest.mark.parametrize(
    ("name", "phase"),
    [
        ("tick_migratepage", "while migrating the page at pfn "),
        ("tick_writepage", "while proving durability (writeback, dropped cache, read-back)"),
    ],
)
def test_a_member_that_loops_for_ever_moving_the_clock_ends_the_run(
    folder: Path, name: str, phase: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each tick moves the clock, so no stall is seen: the call that never returns is."""
    monkeypatch.setattr(scenario, "HUNG_SECONDS", 1.0)
    monkeypatch.setattr(scenario, "_WATCH_EVERY", 0.2)
    rc, report, _ = migrate(folder, name)
    assert (rc, report["status"]) == (1, "timeout"), report
    error = report["error"]
    assert error.startswith("stuck: a call into plugin code has not returned in "), error
    assert "though the kernel's clock moves" in error, error
    assert phase in error, error
    assert f"in plugin code of fsaops-stallfs[stallfs] (stallfs_plugin.ticks_in_{name[5:]}" in error
