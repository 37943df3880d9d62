"""From 2.6.16, a moved anonymous page gets its ptes back: a table that leaves swap ptes fails.

V4's ``migrate_pages`` calls ``remove_from_swap`` on the new page, and V4's
``remove_from_swap`` does nothing for a page with no present ptes: the
process faults its pte back through the swap cache.  From 2.6.16 the call
works, and ``migrate_page`` makes it (KERNEL-SPEC §9.4).  A swap table
written for V4 (``migrate_page_remove_references`` and the copy, nothing
more) leaves every page it moves in the swap cache, reached through swap
ptes: its swap slots stay taken and ``migrate_pages(2)`` no longer sees
the pages, though every page reads back right.  Every mode said OK; the
placement proof now says where such a page is.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from inproc import installed, migrate_json

PLUGIN = '''
import attrs

import fsaops
from fsaops import migrate_page, migrate_page_copy, migrate_page_remove_references
from errno import EAGAIN
from fsaops_swap import SWAP, swap_aops


def v4_migrate_page(newpage, page):
    """V4's migrate_page as it was: remove_from_swap is left to the engine."""
    rc = migrate_page_remove_references(newpage, page, 2)
    if rc:
        return rc if rc < 0 else -EAGAIN
    migrate_page_copy(newpage, page)
    return 0


def _type(migratepage):
    table = attrs.evolve(swap_aops, name="swap_aops", migratepage=migratepage)
    return attrs.evolve(SWAP, modes={"default": table})


@fsaops.hookimpl
def fsaops_filesystem_types():
    import os

    return [_type(v4_migrate_page if os.environ.get("LEAKY") else migrate_page)]
'''

CONFIG = """\
[kernel]
node_memory = "2MiB"
semantics = "{semantics}"
[plugins]
load = ["leakyswap"]
[swap]
slots = 96
[processes]
count = 2
anon_pages = 96
[workload]
seed = 1
"""


@pytest.fixture(scope="module")
def configs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """``leakyswap`` installed; a folder for configs."""
    yield from installed(tmp_path_factory, "leakyswap", PLUGIN)


@pytest.mark.parametrize("semantics", ["2.6.16", "2.6.17"])
@pytest.mark.parametrize("mode", ["", "--strict"])
def test_a_moved_page_left_behind_swap_ptes_fails_the_placement_proof(
    configs: Path, semantics: str, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEAKY", "1")
    path = configs / f"leaky-{semantics}.toml"
    rc, report = migrate_json(path, CONFIG.format(semantics=semantics), *filter(None, [mode]))
    assert (rc, report["status"]) == (1, "invariant broken"), report.get("error")
    placement = report["proofs"]["placement"]
    assert placement["failures"] == report["totals"]["moved"] > 0
    said = placement["problems"][0]
    assert "counted as moved, but its process still reaches it through a swap entry" in said
    assert "(remove_from_swap)" in said


@pytest.mark.parametrize("semantics", ["v4", "2.6.16", "2.6.17"])
def test_pages_given_their_ptes_back_or_faulted_back_under_v4_pass(
    configs: Path, semantics: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The release's own table passes; V4's passes under V4, where swap ptes are the kernel's."""
    if semantics == "v4":
        monkeypatch.setenv("LEAKY", "1")
    else:
        monkeypatch.delenv("LEAKY", raising=False)
    path = configs / f"own-{semantics}.toml"
    rc, report = migrate_json(path, CONFIG.format(semantics=semantics))
    assert (rc, report["status"]) == (0, "ok"), report.get("error")
    assert report["totals"]["moved"] > 0
