"""Every mutant of ``buffer_migrate_page`` that changes what it does fails a run of fsaops.

Mutation testing of the verdict: :mod:`mutants` makes ``buffer_migrate_page``
with one small change each (a statement deleted, a test negated, an
operator or a constant changed, ``page`` and ``newpage`` swapped), 142 of
them.  Each becomes the ``migratepage`` of a third-party table
(``tests/configs/plugins/mutantfs_plugin.py``) and goes through ``fsaops
migrate`` on three scenarios (dirty, mapped and pinned pages; buffer locks
held and holes; pages released of their buffers, written in part, with
holes), under V4 and 2.6.16, plain and then ``--strict --debug-vm``, until
a run is not ``ok``.

A mutant every run passes is a change no run of fsaops can see: either it
changes nothing a kernel could tell (:data:`SURVIVORS`, each with why), or
the verdict has a hole.  A mutant that survives and is not listed fails
this test; so does a listed one that some run now fails (the list says
what fsaops cannot see, and must stay true).
"""

from __future__ import annotations

import contextlib
import difflib
import io
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Final

import pytest

from fsaops import buffer, scenario
from fsaops.cli import main
from fsaops.page import Page
from inproc import first_failing_run, plugin_installed
from mutants import Mutant, compiled, judge, mutants, original

PLUGINS = Path(__file__).resolve().parent / "configs" / "plugins"
sys.path.insert(0, str(PLUGINS))
import mutantfs_plugin  # noqa: E402

SCENARIO = """\
[kernel]
node_memory = "2MiB"
semantics = "{semantics}"
[plugins]
load = ["mutantfs"]
[[mount]]
fs = "mutant"
pages = 48
files = 6
block_size = 1024
[processes]
count = 2
[workload]
"""

WORKLOADS: Final = {
    "dirty, mapped and pinned": "seed = 3\ndirty = 0.3\nmapped = 0.3\npinned = 0.05\n",
    "buffer locks held, holes": (
        "seed = 3\ndirty = 0.3\nmapped = 0.3\npinned = 0.05\nbuffer_locked = 0.3\nholes = 0.2\n"
    ),
    "released, written in part, holes": (
        "seed = 5\nreleased = 0.4\npartial = 0.2\nholes = 0.2\ndirty = 0.1\n"
    ),
}

_CONCURRENT = (
    "it matters only while another task holds private_lock, which no serial run has "
    "(fsaops explore finds the second site's under V4, a kernel bug)"
)
_WAITER = (
    "a task waiting on a buffer lock the migration holds would sleep for ever, and no "
    "serial run has one (fsaops explore finds it: a kernel bug)"
)
_COPY_CLEARS = "migrate_page_copy clears the old page's PG_private and private afterwards"

SURVIVORS: Final = {
    "delete `if mapping is None:`": (
        "the engine itself gives up on a page with no mapping, under the page lock, before "
        "it calls migratepage, so the table's own check never sees one (the kernel's neither)"
    ),
    "delete `return -EAGAIN`": "the same: the page always has a mapping here",
    "flip compare `rc < 0`": "rc <= 0 for rc < 0: rc is never 0 here",
    "const 0 -> -1 in `return rc if rc < 0 else -EAGAIN`": (
        "rc < -1: rc is -EAGAIN or -EPERM (returned as it is), or 1 (-EAGAIN either way)"
    ),
    "const 0 -> 1 in `return rc if rc < 0 else -EAGAIN`": (
        "rc < 1: V4's 1 still becomes -EAGAIN, a negative errno is returned as it is"
    ),
    "delete `if helpers.buffer_private_lock:`": (
        "never taking private_lock under V4 is what 2.6.16 does; " + _CONCURRENT
    ),
    "delete `spin_lock_contended(private_lock, 'private_lock', mapping)`": _CONCURRENT,
    "negate `private_lock.locked()`": (
        "the contended path takes the lock too (and a plain acquire waits): " + _CONCURRENT
    ),
    "delete `spin_lock_contended(private_lock, 'private_lock', mapping)` #2": _CONCURRENT,
    "negate `private_lock.locked()` #2": (
        "the contended path takes the lock too (and a plain acquire waits): " + _CONCURRENT
    ),
    "swap op in `state & locked`": (
        "lock_buffer() of a free buffer takes it, as setting the bit does"
    ),
    "delete `page.flags &= ~PG_private`": _COPY_CLEARS,
    "`newpage` for `page` in `page.flags &= ~PG_private`": (
        "the new page's PG_private is set again below, and " + _COPY_CLEARS
    ),
    "delete `page.private = 0`": _COPY_CLEARS,
    "const 0 -> -1 in `page.private = 0`": _COPY_CLEARS,
    "const 0 -> 1 in `page.private = 0`": _COPY_CLEARS,
    "`page` for `newpage` in `node = newpage.node`": (
        "only the page size and shift are read from the node, and every node has the same"
    ),
    "const 1 -> 2 in `mask = node.page_size - 1`": (
        "every buffer's offset in its page is a multiple of its block size, never odd"
    ),
    "delete `bh = head` #2": "the walk of the ring before this one ended on its head",
    "delete `bh = head` #3": "the walk of the ring before this one ended on its head",
    "negate `state & waiters`": "wakes only the buffers nobody waits on: " + _WAITER,
    "swap op in `state & waiters`": (
        "wakes every buffer: wake_buffer() of one nobody waits on does nothing"
    ),
    "delete `if state & waiters:`": "never wakes a waiter: " + _WAITER,
    "delete `newpage.node.kernel.sched.wake_buffer(bh)`": "never wakes a waiter: " + _WAITER,
    "`page` for `newpage` in `newpage.node.kernel.sched.wake_buffer(bh)`": (
        "both nodes have the same kernel"
    ),
}
"""The mutants no run of ``fsaops migrate`` fails, and why each is none it could."""

MUTANTS: Final = mutants(buffer.buffer_migrate_page)
ORIGINAL: Final = original(buffer.buffer_migrate_page)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The plugin installed as ``fsaops-mutantfs``; where the scenarios go."""
    yield from plugin_installed(tmp_path_factory, "mutantfs")


def caught(fn: Callable[[Page, Page], int], folder: Path) -> str | None:
    """The first run that is not ``ok`` with ``fn`` as the table's migratepage, or ``None``."""
    mutantfs_plugin.CURRENT[0] = fn
    try:
        return first_failing_run(folder, SCENARIO, WORKLOADS, ("v4", "2.6.16"))
    finally:
        mutantfs_plugin.CURRENT[0] = buffer.buffer_migrate_page


def test_the_mutants_are_the_ones_the_list_names(folder: Path) -> None:
    """Every listed survivor is a mutant still made, and the real function passes every run."""
    names = {m.name for m in MUTANTS}
    assert len(names) == len(MUTANTS)
    assert set(SURVIVORS) <= names, set(SURVIVORS) - names
    assert caught(buffer.buffer_migrate_page, folder) is None


@pytest.mark.exhaustive
@pytest.mark.parametrize("mutant", MUTANTS, ids=[m.name for m in MUTANTS])
def test_a_mutant_of_buffer_migrate_page_fails_a_run(
    mutant: Mutant, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A mutant that loops for ever is stopped as stuck after two seconds, not thirty.
    monkeypatch.setattr(scenario, "STALL_SECONDS", 2.0)
    monkeypatch.setattr(scenario, "_WATCH_EVERY", 0.2)
    found = caught(compiled(mutant, buffer.buffer_migrate_page), folder)
    diff = "\n".join(
        difflib.unified_diff(ORIGINAL.splitlines(), mutant.source.splitlines(), lineterm="", n=1)
    )
    judge(mutant, found, SURVIVORS, f"no run of fsaops fails this mutant:\n{diff}")


WAITERS: Final = sorted(name for name, why in SURVIVORS.items() if why.endswith(_WAITER))


@pytest.mark.exhaustive
@pytest.mark.parametrize("name", WAITERS)
def test_the_explorer_finds_a_mutant_that_leaves_a_waiter_asleep(name: str, folder: Path) -> None:
    """What no serial run can see, a task waiting on a buffer lock the migration holds does."""
    mutant = next(m for m in MUTANTS if m.name == name)
    mutantfs_plugin.CURRENT[0] = compiled(mutant, buffer.buffer_migrate_page)
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            rc = main(
                [
                    "explore",
                    "--fs",
                    "mutant",
                    "--plugins",
                    "mutantfs",
                    "--tasks",
                    "bh-lock",
                    "--json",
                ]
            )
    finally:
        mutantfs_plugin.CURRENT[0] = buffer.buffer_migrate_page
    report = json.loads(out.getvalue())
    assert (rc, report["status"]) == (1, "kernel bug"), report
    assert "lost wake-up: bh-lock@" in json.dumps(report), report
