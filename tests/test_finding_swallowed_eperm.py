"""``--strict`` finds a table that turns the helper's ``-EPERM`` into ``-EAGAIN`` (2.6.16 on).

From 2.6.16 ``migrate_page_remove_references`` returns ``-EPERM`` for a page
in a ``VM_LOCKED`` area, a failure for good that ``migratepage`` passes on.
A table written for V4 (``if helper(): return -EAGAIN``) has the engine try
such a page in every pass instead; it loses nothing, so every mode said
``ok``.  The example plugin did this until it was fixed.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from inproc import installed, migrate_json

PLUGIN = """
from errno import EAGAIN

import attrs

import fsaops
from fsaops import migrate_page_copy, migrate_page_remove_references
from fsaops_ramfs import RAMFS, ramfs_aops


def as_in_v4(newpage, page):
    if migrate_page_remove_references(newpage, page, 2):
        return -EAGAIN
    migrate_page_copy(newpage, page)
    return 0


V4_ONLY = attrs.evolve(
    RAMFS,
    name="v4only",
    modes={"default": attrs.evolve(ramfs_aops, name="v4only_aops", migratepage=as_in_v4)},
)


@fsaops.hookimpl
def fsaops_filesystem_types():
    return [V4_ONLY]
"""

CONFIG = """\
[kernel]
node_memory = "2MiB"
semantics = "{semantics}"
[plugins]
load = ["v4only", "ramfs", "swap"]
[[mount]]
fs = "{fs}"
pages = 32
files = 2
[processes]
count = 2
anon_pages = 8
[workload]
seed = 3
mapped = 0.5
mlocked = 0.3
dirty = 0.3
"""


@pytest.fixture(scope="module")
def configs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    yield from installed(tmp_path_factory, "v4only", PLUGIN)


def run(configs: Path, fs: str, semantics: str, *options: str) -> tuple[int, dict[str, object]]:
    path = configs / f"{fs}-{semantics}-{'-'.join(options)}.toml"
    return migrate_json(path, CONFIG.format(fs=fs, semantics=semantics), *options)


@pytest.mark.parametrize("semantics", ["2.6.16", "2.6.17"])
def test_strict_finds_the_eperm_turned_into_eagain(configs: Path, semantics: str) -> None:
    rc, plain = run(configs, "v4only", semantics)
    assert (rc, plain["status"]) == (0, "ok"), plain.get("error")  # nothing is lost
    rc, strict = run(configs, "v4only", semantics, "--strict")
    assert (rc, strict["status"]) == (1, "findings"), strict.get("error")
    findings = strict["findings"]
    assert isinstance(findings, list) and len(findings) == 1
    (finding,) = findings
    assert (finding["table"], finding["kind"]) == ("v4only_aops", "return")
    assert finding["count"] >= 1
    assert "returned -EAGAIN for pfn" in finding["example"]
    assert (
        f"had returned -EPERM for it (a VM_LOCKED area): under {semantics}" in (finding["example"])
    )


@pytest.mark.parametrize(("fs", "semantics"), [("v4only", "v4"), ("ramfs", "2.6.16")])
def test_the_same_table_under_v4_and_the_example_under_2_6_16_have_no_finding(
    configs: Path, fs: str, semantics: str
) -> None:
    """V4's helper says 1 (``-EAGAIN``); the example passes 2.6.16's ``-EPERM`` on."""
    rc, strict = run(configs, fs, semantics, "--strict")
    assert (rc, strict["status"], strict["findings"]) == (0, "ok", []), strict.get("error")
