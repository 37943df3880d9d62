"""An error fsaops's own code meets on a model a table damaged names the table.

A ``migratepage`` that changes another page's ``page->index`` leaves that
page where its file's page tree does not say it is.  The next code to
handle the page is fsaops's own (``swap_page`` dropping it from its
file), and it fails there with an ``IndexError`` from the page tree.  The
run used to end with ``the command failed: IndexError: ...`` and no word
of any plugin, reading like a bug of fsaops.  Now it names the table: with
``--strict``, the change the watch saw the table's call make; without it,
the table whose page was being migrated, and ``--strict`` as the way to
name the call.  It stays a failed run (exit 1, status ``kernel bug``).
Under ``--debug-vm`` the run stops earlier, at the broken invariant of
that page, and names the call the watch saw change it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from inproc import installed, migrate_json

PLUGIN = '''
import attrs

import fsaops
from fsaops import buffer_migrate_page
from fsaops_ext2 import EXT2, ext2_aops


def shifts_an_index(newpage, page):
    """Moves the page before it 1000 pages on in its file (page->index), then moves its page."""
    mapping = page.mapping
    if mapping is not None and page.index > 0:
        other = mapping.lookup(page.index - 1)
        if other is not None:
            other.index += 1000
    return buffer_migrate_page(newpage, page)


def reads_past_the_tree(newpage, page):
    """Raises an IndexError of its own: its own bug, which the run blames on it as before."""
    return page.mapping.page_tree[len(page.mapping.page_tree) + 5]


def _type(name, migratepage):
    table = attrs.evolve(ext2_aops, name=f"{name}_aops", migratepage=migratepage)
    return attrs.evolve(EXT2, name=name, modes={"default": table}, page_cache={})


@fsaops.hookimpl
def fsaops_filesystem_types():
    return [
        _type("shifts_an_index", shifts_an_index),
        _type("reads_past_the_tree", reads_past_the_tree),
    ]
'''

CONFIG = """\
[kernel]
nodes = 2
node_memory = "2MiB"
io_latency = 8
semantics = "{semantics}"
[plugins]
load = ["shifter", "ext2", "swap"]
[[mount]]
fs = "{name}"
pages = 48
files = 2
block_size = 1024
[swap]
slots = 256
[processes]
count = 2
anon_pages = 16
[workload]
seed = 3
dirty = 0.3
writeback = 0.1
mapped = 0.3
swapout = 0.2
"""

OWN_CODE = (
    r"the run failed: fsaops's own code raised IndexError: list assignment index out of range, "
    r"while migrating the page at pfn (?P<working>\d+) \(table shifts_an_index_aops of plugin "
    r"fsaops-shifter\[shifter\], pass \d+, in swap_page\); "
)
WHOSE = r" \(plugin fsaops-shifter\[shifter\], whose table shifts_an_index_aops it is\)"


@pytest.fixture(scope="module")
def configs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """``shifter`` installed; a folder for configs."""
    yield from installed(tmp_path_factory, "shifter", PLUGIN)


def _migrate(configs: Path, name: str, semantics: str, *options: str) -> tuple[int, dict[str, Any]]:
    config = CONFIG.format(name=name, semantics=semantics)
    return migrate_json(configs / f"{name}-{semantics}.toml", config, *options)


@pytest.mark.parametrize("semantics", ["v4", "2.6.17"])
def test_strict_names_the_change_that_broke_fsaopss_own_code(configs: Path, semantics: str) -> None:
    rc, report = _migrate(configs, "shifts_an_index", semantics, "--strict")
    assert (rc, report["status"]) == (1, "kernel bug")
    said = (
        r"plugin code had damaged the model before: --strict saw that table "
        r"shifts_an_index_aops's migratepage of pfn \d+ changed pfn (?P<changed>\d+) "
        r"\(mount0/file\d page (?P<index>\d+)\), a page it was not handed: its index went from "
        r"(?P<was>\d+) to (?P<now>\d+)"
    )
    match = re.fullmatch(OWN_CODE + said + WHOSE, report["error"])
    assert match is not None, report["error"]
    # The change named is the one to the page swap_page was dropping when it failed.
    assert match["changed"] == match["working"]
    assert match["index"] == match["was"]
    assert int(match["now"]) == int(match["was"]) + 1000


@pytest.mark.parametrize("semantics", ["v4", "2.6.17"])
def test_a_plain_run_names_the_table_and_asks_for_strict(configs: Path, semantics: str) -> None:
    rc, report = _migrate(configs, "shifts_an_index", semantics)
    assert (rc, report["status"]) == (1, "kernel bug")
    said = (
        r"a table's code may have damaged the model before \(a page's index, mapping or "
        r"private, or a buffer ring\): run with --strict to name the call that changed a page "
        r"it was not handed"
    )
    assert re.fullmatch(OWN_CODE + said + WHOSE, report["error"]), report["error"]


def test_a_tables_own_error_is_still_its_own(configs: Path) -> None:
    """The same exception raised by the table's code is the table's failure, as before."""
    rc, report = _migrate(configs, "reads_past_the_tree", "v4", "--strict")
    assert (rc, report["status"]) == (1, "findings")
    (finding,) = [f for f in report["findings"] if f["kind"] == "return"]
    assert finding["table"] == "reads_past_the_tree_aops"
    assert "fsaops's own code" not in json.dumps(report)


@pytest.mark.parametrize("semantics", ["v4", "2.6.17"])
def test_debug_vm_names_the_call_that_changed_the_broken_page(
    configs: Path, semantics: str
) -> None:
    """The invariant broken on a page another page's call changed names that call."""
    rc, report = _migrate(configs, "shifts_an_index", semantics, "--debug-vm")
    assert (rc, report["status"]) == (1, "invariant broken")
    first = (
        r"CONFIG_DEBUG_VM: \d+ invariant\(s\) broken:\s+before pfn (?P<broken>\d+) was tried "
        r"\([^)]*\): [^;\n]*; --strict saw that table shifts_an_index_aops's migratepage of "
        r"pfn (?P<called>\d+) changed pfn (?P<changed>\d+) \(mount0/file\d page (?P<index>\d+)\), "
        r"a page it was not handed: its index went from (?P<was>\d+) to (?P<now>\d+)\s"
    )
    match = re.match(first, report["error"])
    assert match is not None, report["error"]
    # The change named is the one to the page the invariant is broken on, by another page's call.
    assert match["changed"] == match["broken"]
    assert match["called"] != match["broken"]
    assert match["index"] == match["was"]
    assert int(match["now"]) == int(match["was"]) + 1000
