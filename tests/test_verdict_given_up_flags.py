"""A ``migratepage`` that gives a page up must leave its flags as it found them.

A page ``migratepage`` returns an error for stays where it is, in its
page-tree slot, and goes back to the LRU: whatever state it had must still
be there.  A table that clears ``PG_uptodate`` on the way out leaves a
page whose next read goes to ``readpage`` again; on a page without buffers
(``mpage_readpage``, ramfs's ``simple_readpage``) that read overwrites
what the page holds.  ``--debug-vm`` stopped on it, but a plain run and
``--strict`` both said OK: the findings looked at the flags only of pages
that moved.  Now ``--strict`` reports it, a ``flags`` finding; and so a
page given up that *gained* a flag (``PG_active``: putback then files a
busy page as hot), which no mode saw.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from inproc import installed, migrate_json

PLUGIN = '''
import attrs

import fsaops
from fsaops import buffer_migrate_page
from fsaops.page import PG
from fsaops_ext2 import EXT2, ext2_aops


def unreads_what_it_gives_up(newpage, page):
    """Moves what it can; clears PG_uptodate on a page it gives up."""
    rc = buffer_migrate_page(newpage, page)
    if rc != 0:
        page.flags &= ~PG.uptodate
    return rc


def activates_what_it_gives_up(newpage, page):
    """Moves what it can; sets PG_active on a page it gives up (putback files it as hot)."""
    rc = buffer_migrate_page(newpage, page)
    if rc != 0:
        page.flags |= PG.active
    return rc


def _type(name, migratepage):
    table = attrs.evolve(ext2_aops, name=f"{name}_aops", migratepage=migratepage)
    return attrs.evolve(EXT2, name=name, modes={"default": table}, page_cache={})


@fsaops.hookimpl
def fsaops_filesystem_types():
    return [
        _type("unreads_what_it_gives_up", unreads_what_it_gives_up),
        _type("activates_what_it_gives_up", activates_what_it_gives_up),
        _type("gives_up_cleanly", buffer_migrate_page),
    ]
'''

CONFIG = """\
[kernel]
node_memory = "2MiB"
semantics = "{semantics}"
[plugins]
load = ["unreader", "ext2"]
[[mount]]
fs = "{fs}"
pages = 48
files = 2
block_size = 1024
[processes]
count = 2
[workload]
seed = 3
dirty = 0.3
mapped = 0.3
pinned = 0.05
"""


@pytest.fixture(scope="module")
def configs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """``unreader`` installed; a folder for configs."""
    yield from installed(tmp_path_factory, "unreader", PLUGIN)


@pytest.mark.parametrize("semantics", ["v4", "2.6.16", "2.6.17"])
def test_a_page_given_up_without_its_flags_is_a_finding(configs: Path, semantics: str) -> None:
    fs = "unreads_what_it_gives_up"
    path = configs / f"{fs}-{semantics}.toml"
    rc, report = migrate_json(path, CONFIG.format(semantics=semantics, fs=fs), "--strict")
    assert (rc, report["status"]) == (1, "findings"), report.get("error")
    flags = [f for f in report["findings"] if f["kind"] == "flags" and f["table"] == f"{fs}_aops"]
    assert flags, report["findings"]
    assert "did not move but lost flags uptodate" in flags[0]["example"], flags[0]


@pytest.mark.parametrize("semantics", ["v4", "2.6.16", "2.6.17"])
def test_pages_given_up_as_they_were_are_no_finding(configs: Path, semantics: str) -> None:
    fs = "gives_up_cleanly"
    path = configs / f"{fs}-{semantics}.toml"
    rc, report = migrate_json(path, CONFIG.format(semantics=semantics, fs=fs), "--strict")
    assert (rc, report["status"], report["findings"]) == (0, "ok", []), report.get("error")


@pytest.mark.parametrize("semantics", ["v4", "2.6.16", "2.6.17"])
def test_a_page_given_up_with_a_flag_it_never_had_is_a_finding(
    configs: Path, semantics: str
) -> None:
    fs = "activates_what_it_gives_up"
    path = configs / f"{fs}-{semantics}.toml"
    rc, report = migrate_json(path, CONFIG.format(semantics=semantics, fs=fs), "--strict")
    assert (rc, report["status"]) == (1, "findings"), report.get("error")
    flags = [f for f in report["findings"] if f["kind"] == "flags" and f["table"] == f"{fs}_aops"]
    assert flags, report["findings"]
    assert "did not move but gained flags active" in flags[0]["example"], flags[0]
