"""A ``migratepage`` that spoils the bytes of a page far back in its file is named.

The table below is ext2's ``buffer_migrate_page`` plus one wild write: it
flips the first byte of the page ten pages before its page in its file, a
page it was not handed and that lies far from its frame.  The read-back
finds that page wrong (``data lost``), but the run used to name no table:
the page was not migrated by then, or was moved as it was.  ``--strict``
compared the bytes of the frames around the page only.  Now the plain
run's line says whose pages were being migrated while that page went
wrong, and names the call its replay saw change it; ``--strict`` names the
call it saw.
"""

from __future__ import annotations

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


def flips_a_far_byte(newpage, page):
    """Flips the first byte of the page ten pages before its page in its file."""
    mapping = page.mapping
    if mapping is not None and page.index >= 10:
        other = mapping.lookup(page.index - 10)
        if other is not None:
            node = other.node
            node.mem[(other.pfn - node.start_pfn) << node.page_shift] ^= 0xFF
    return buffer_migrate_page(newpage, page)


def _type(name, migratepage):
    table = attrs.evolve(ext2_aops, name=f"{name}_aops", migratepage=migratepage)
    return attrs.evolve(EXT2, name=name, modes={"default": table}, page_cache={})


@fsaops.hookimpl
def fsaops_filesystem_types():
    return [_type("flips_a_far_byte", flips_a_far_byte), _type("control", buffer_migrate_page)]
'''

CONFIG = """\
[kernel]
nodes = 2
node_memory = "2MiB"
io_latency = 8
semantics = "{semantics}"
[plugins]
load = ["farflipper", "ext2", "ext3", "swap"]
[[mount]]
fs = "{name}"
pages = 48
files = 2
block_size = 1024
[[mount]]
fs = "ext3"
mode = "journal"
pages = 16
files = 1
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
locked = 0.05
mapped = 0.3
pinned = 0.05
swapout = 0.2
"""

SEMANTICS = ["v4", "2.6.16", "2.6.17"]


@pytest.fixture(scope="module")
def configs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """``farflipper`` installed; a folder for configs."""
    yield from installed(tmp_path_factory, "farflipper", PLUGIN)


def _migrate(configs: Path, name: str, semantics: str, *options: str) -> tuple[int, dict[str, Any]]:
    config = CONFIG.format(name=name, semantics=semantics)
    return migrate_json(configs / f"{name}-{semantics}.toml", config, *options)


LINE = (
    r"mount\[0\] \(flips_a_far_byte default\) file \d page \d+ \(mount0/file\d/page\d+\): "
    r"corrupted: reads back other bytes; it was in memory when the migration began and "
    r"(was not migrated itself \(still at pfn \d+\)|moved from pfn \d+ to pfn \d+), while "
    r"pages of table\(s\) [^;:]*\bflips_a_far_byte_aops\b[^;:]* were being migrated"
)
CALL = (
    r"migratepage of pfn (?P<called>\d+) changed pfn (?P<changed>\d+) \(mount0/file\d page "
    r"\d+\), a page it was not handed: its contents changed \(first at byte 0\)"
)


REPLAYED = (
    r"the replay saw table flips_a_far_byte_aops's migratepage call \d+ \(of pfn \d+, "
    r"mount0/file(?P<file>\d) page (?P<at>\d+)\) change it, at pfn \d+ "
    r"\(a call of the replay, which read back what the run did; the run's own call is another "
    r"only for a plugin that does not do the same thing twice\)"
)


@pytest.mark.parametrize("semantics", SEMANTICS)
def test_a_plain_run_says_whose_pages_were_migrating_and_names_the_call(
    configs: Path, semantics: str
) -> None:
    rc, report = _migrate(configs, "flips_a_far_byte", semantics)
    assert (rc, report["status"]) == (1, "data lost")
    problems = report["integrity"]["problems"]
    assert problems
    for problem in problems:
        match = re.fullmatch(LINE + "; " + REPLAYED, problem)
        assert match is not None, problem
        # The call on the page ten pages after it, in the same file.
        page = re.match(r".*? file (\d) page (\d+) ", problem)
        assert page is not None
        assert (match["file"], int(match["at"])) == (page[1], int(page[2]) + 10), problem


@pytest.mark.parametrize("semantics", SEMANTICS)
def test_strict_names_the_call_that_spoiled_a_far_page(configs: Path, semantics: str) -> None:
    rc, report = _migrate(configs, "flips_a_far_byte", semantics, "--strict")
    assert (rc, report["status"]) == (1, "data lost")
    (finding,) = [f for f in report["findings"] if f["table"] == "flips_a_far_byte_aops"]
    assert finding["kind"] == "flags"
    match = re.fullmatch(CALL, finding["example"])
    assert match is not None, finding["example"]
    # Far from the page it was handed: past the frames next to it.
    assert abs(int(match["called"]) - int(match["changed"])) > 4
    named = [
        p
        for p in report["integrity"]["problems"]
        if re.fullmatch(LINE + r"; --strict saw that table flips_a_far_byte_aops's " + CALL, p)
    ]
    assert named, report["integrity"]["problems"]


@pytest.mark.parametrize("semantics", SEMANTICS)
def test_ext2s_own_table_stays_clean(configs: Path, semantics: str) -> None:
    rc, report = _migrate(configs, "control", semantics, "--strict", "--debug-vm")
    assert (rc, report["status"], report["findings"]) == (0, "ok", [])
