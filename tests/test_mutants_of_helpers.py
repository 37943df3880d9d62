"""Every mutant of the kernel's migration helpers that changes what they do fails a run.

Mutation testing of the verdict, for the helpers a table is built from:
:mod:`mutants` makes ``migrate_page``, ``migrate_page_copy``,
``migrate_page_remove_references`` and its unmap steps (``unmap_v4``, and
``unmap_eperm`` from 2.6.16), ``try_to_unmap`` and its step for one area
(``_try_to_unmap_one``) under them, and 2.6.16's ``remove_from_swap``,
with one small change each (324 in all).  A
mutant replaces the code of the real function, so every caller runs it, as
every caller in a kernel would: the engine, each built-in table's
``buffer_migrate_page`` (through its release's helpers), and the swap
cache's table, which is ``migrate_page`` itself.  Each goes through
``fsaops migrate`` on three scenarios of an ext2 ``nobh`` mount, an ext2
mount of 1 KiB blocks and a process's anonymous memory (dirty, mapped,
pinned, locked and under writeback; mlocked and shared; released of their
buffers, written in part, with holes, swapped out), under V4, 2.6.16 and
2.6.17, plain and then ``--strict --debug-vm``, until a run is not ``ok``.

A mutant every run passes is listed in :data:`SURVIVORS` with why no run
can see it: it changes nothing a kernel could tell, only the words of a
reason the report gives, or what happens only while another task races
the migration, where ``fsaops explore`` finds those it can
(:data:`EXPLORED`).  A survivor not listed fails this test, and so does a
listed one some run now fails.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from types import FunctionType
from typing import Any, Final

import pytest

from fsaops import migrate, rmap, scenario
from fsaops.cli import main
from inproc import first_failing_run, migrate_json
from mutants import Mutant, assert_listed_are_made, compiled, judge, mutants, running

SCENARIO = """\
[kernel]
node_memory = "2MiB"
semantics = "{semantics}"
[plugins]
load = ["ext2", "swap"]
[[mount]]
fs = "ext2"
mode = "nobh"
pages = 48
files = 6
[[mount]]
fs = "ext2"
pages = 48
files = 6
block_size = 1024
[processes]
count = 2
anon_pages = 12
[workload]
"""

WORKLOADS: Final = {
    "dirty, mapped, pinned, locked, writeback": (
        "seed = 3\ndirty = 0.3\nmapped = 0.3\npinned = 0.1\nlocked = 0.05\nwriteback = 0.05\n"
    ),
    "mlocked, shared": (
        "seed = 5\nmapped = 0.4\nmlocked = 0.1\ndirty = 0.2\npinned = 0.05\nmapped_shared = 0.3\n"
    ),
    "released, written in part, holes, swapped out": (
        "seed = 7\nreleased = 0.3\npartial = 0.2\nholes = 0.2\ndirty = 0.2\npinned = 0.1\n"
        "swapout = 0.1\n"
    ),
}

RELEASES: Final = ("v4", "2.6.16", "2.6.17")

HELPERS: Final[dict[str, FunctionType]] = {
    **{
        name: getattr(migrate, name)
        for name in (
            "migrate_page",
            "migrate_page_copy",
            "migrate_page_remove_references",
            "unmap_v4",
            "unmap_eperm",
        )
    },
    **{
        name: getattr(rmap, name)
        for name in ("try_to_unmap", "_try_to_unmap_one", "remove_from_swap_2616")
    },
}

_SAME_KERNEL = "both pages are on nodes of the one kernel"
_NO_MAPPING = (
    "the engine gives up on a page with no mapping itself, under the page lock, before "
    "it calls migratepage, so the helper never sees one"
)
_NO_WRITEBACK = (
    "no page is under writeback here: the engine waits for writeback to end (or skips "
    "the page) before it calls migratepage, and a new page is never written"
)
_WORDS = (
    "only the words of the reason the report gives for a page left change (no reason, "
    "or the new page's count)"
)
_RACE = "matters only when another task changes the page between the two checks"
_EXPLORED = f"{_RACE} (fsaops explore finds it)"
_TREE_LOCK = (
    "matters only while another task holds tree_lock, which no task does across a "
    "scheduling point, serial run or explored schedule"
)

_NONE = "None for 0: every caller tests the result for truth"
_CLOCK = (
    "only the kernel's clock differs (a reschedule more or less between tries), which "
    "no serial run's outcome depends on"
)
_YOUNG = (
    "a young pte no longer refuses V4's first try, whose refusal clears it so the next try "
    "succeeds: " + _CLOCK
)
_UNLOCKED = "every caller locks the page before it unmaps it: the BUG() never fires"
_NO_SWAP_ENTRY = (
    "the engine gives an anonymous page its swap entry (add_to_swap) before it unmaps it: "
    "the BUG() never fires"
)
_NOT_HERE = (
    "where an area does not map the page, the pte lookup that follows finds no pte of "
    "it and gives SWAP_AGAIN too (and no area starts at address 0)"
)
_RESULT_TESTED = (
    "every caller tests page_mapcount as well: unmap_v4 at its next try (one tick "
    "later), the others after their tries; swap_page, which does not, runs only for a "
    "table without migratepage, which these scenarios lack"
)
_ONLY_SWAP_CACHE = (
    "its one caller, migrate_page, calls it only for a new page in the swap cache, whose "
    "mapping is its anon_vma: the test never returns"
)
_ONLY_VM_LOCKED = (
    "try_to_unmap with ignore_refs leaves a page mapped only for a VM_LOCKED area, which "
    "returned -EPERM first"
)

SURVIVORS: Final[dict[str, dict[str, str]]] = {
    "migrate_page": {
        "delete `if page.flags & PG_writeback:`": _NO_WRITEBACK,
        "`newpage` for `page` in `if page.flags & PG_writeback:`": _NO_WRITEBACK,
        "delete `raise KernelBug(f'migrate_page() of a page under writeback: {page!r}')`": (
            _NO_WRITEBACK
        ),
        "`newpage` for `page` in `raise KernelBug(f'migrate_page() of a page under "
        "writeback: {page!r}')`": _NO_WRITEBACK,
        "flip compare `rc < 0`": "rc <= 0 for rc < 0: rc is never 0 here",
        "const 0 -> 1 in `return rc if rc < 0 else -EAGAIN`": (
            "rc < 1: V4's 1 still becomes -EAGAIN, a negative errno is returned as it is"
        ),
        "swap op in `newpage.flags & PG_swapcache`": (
            "remove_from_swap() of a page that is not in the swap cache does nothing"
        ),
        "`page` for `newpage` in `semantics = newpage.node.kernel.semantics`": _SAME_KERNEL,
    },
    "migrate_page_copy": {
        "delete `if newpage.flags & PG_writeback:`": _NO_WRITEBACK,
        "`page` for `newpage` in `if newpage.flags & PG_writeback:`": _NO_WRITEBACK,
        "delete `from fsaops.page import end_page_writeback`": _NO_WRITEBACK,
        "delete `end_page_writeback(newpage)`": _NO_WRITEBACK,
        "`page` for `newpage` in `end_page_writeback(newpage)`": _NO_WRITEBACK,
    },
    "migrate_page_remove_references": {
        "`newpage` for `page` in `mapping = page.node.kernel.swapper_space`": _SAME_KERNEL,
        "delete `if mapping is None:`": _NO_MAPPING,
        "delete `kernel = page.node.kernel`": _NO_MAPPING,
        "`newpage` for `page` in `kernel = page.node.kernel`": _NO_MAPPING,
        "delete `kernel.current.why = 'no mapping (truncated)'`": _NO_MAPPING,
        "delete `return kernel.semantics.refs_mismatch`": _NO_MAPPING,
        "`newpage` for `page` in `kernel = page.node.kernel` #2": _SAME_KERNEL,
        "delete `kernel.current.why = _count_mismatch(page, nr_refs)`": _WORDS,
        "`newpage` for `page` in `kernel.current.why = _count_mismatch(page, nr_refs)`": _WORDS,
        "`newpage` for `page` in `rc = page.node.kernel.semantics.unmap(page)`": _SAME_KERNEL,
        "negate `tree_lock.locked()`": (
            "the contended path takes the lock too (and a plain acquire waits): " + _TREE_LOCK
        ),
        "delete `spin_lock_contended(tree_lock, 'tree_lock', mapping)`": _TREE_LOCK,
        "delete `if not flags & PG_swapcache and (page.mapping is None or page.mappi...`": (
            "the re-check under tree_lock: " + _EXPLORED
        ),
        "swap op in `flags & PG_swapcache` #2": (
            "the mapping test of the re-check is skipped, and a page truncated under us "
            "has left its page-tree slot, which the re-check still tests: " + _RACE
        ),
        "delete `kernel = page.node.kernel` #3": _EXPLORED,
        "`newpage` for `page` in `kernel = page.node.kernel` #3": _SAME_KERNEL,
        "delete `kernel.current.why = _changed_under_us(page, nr_refs, tree, index)`": (
            f"{_WORDS}; {_RACE}"
        ),
        "`newpage` for `page` in `kernel.current.why = _changed_under_us(page, nr_refs, "
        "tree, index)`": f"{_WORDS}; {_RACE}",
        "delete `return kernel.semantics.refs_mismatch` #3": _EXPLORED,
        "delete `return 0`": _NONE,
    },
    "unmap_v4": {
        "delete `break`": _CLOCK,
        "delete `tick()`": _CLOCK,
        "delete `page.node.kernel.current.why = _still_mapped(page)`": _WORDS,
        "const 1 -> 2 in `return 1`": "every caller takes a result that is not 0 as -EAGAIN",
        "delete `return 0`": _NONE,
    },
    "unmap_eperm": {
        "delete `page.node.kernel.current.why = VM_LOCKED_REFUSED`": (
            _WORDS + "; the page still fails for good with -EPERM"
        ),
        "delete `if page.mapcount:`": _ONLY_VM_LOCKED,
        "delete `page.node.kernel.current.why = _still_mapped(page)`": _ONLY_VM_LOCKED,
        "`newpage` for `page` in `page.node.kernel.current.why = _still_mapped(page)`": (
            _ONLY_VM_LOCKED
        ),
        "`newpage` for `page` in `page.node.kernel.current.why = _still_mapped(page)` #2": (
            _ONLY_VM_LOCKED
        ),
        "delete `return -EAGAIN`": _ONLY_VM_LOCKED,
        "delete `return 0`": _NONE,
    },
    "try_to_unmap": {
        "delete `if not page.flags & PG.locked:`": _UNLOCKED,
        "swap op in `page.flags & PG.locked`": _UNLOCKED,
        "delete `raise KernelBug(f'try_to_unmap() of an unlocked page: {page!r}')`": _UNLOCKED,
        "`newpage` for `page` in `raise KernelBug(f'try_to_unmap() of an unlocked page: "
        "{page!r}')`": _UNLOCKED,
        "delete `ret = SWAP_AGAIN`": (
            "a page with ptes has an area, whose try sets ret before it is read; with none, "
            "ret is SWAP_SUCCESS"
        ),
        "delete `if mapping is None:`": _NO_MAPPING,
        "delete `return SWAP_SUCCESS if page.mapcount == 0 else SWAP_AGAIN`": _NO_MAPPING,
        "flip compare `page.mapcount == 0`": _NO_MAPPING,
        "`newpage` for `page` in `return SWAP_SUCCESS if page.mapcount == 0 else SWAP_AGAIN`": (
            _NO_MAPPING
        ),
        "const 0 -> -1 in `return SWAP_SUCCESS if page.mapcount == 0 else SWAP_AGAIN`": (
            _NO_MAPPING
        ),
        "const 0 -> 1 in `return SWAP_SUCCESS if page.mapcount == 0 else SWAP_AGAIN`": (
            _NO_MAPPING
        ),
        "const 0 -> -1 in `if ret == SWAP_FAIL or page.mapcount == 0:`": (
            "the walk goes on through the areas left, none of which maps the page any more"
        ),
        "delete `if page.mapcount == 0:`": _RESULT_TESTED,
        "const 0 -> -1 in `if page.mapcount == 0:`": _RESULT_TESTED,
        "delete `ret = SWAP_SUCCESS`": _RESULT_TESTED,
    },
    "_try_to_unmap_one": {
        "delete `if vpn < 0:`": _NOT_HERE,
        "flip compare `vpn < 0`": _NOT_HERE,
        "const 0 -> -1 in `if vpn < 0:`": _NOT_HERE,
        "const 0 -> 1 in `if vpn < 0:`": _NOT_HERE,
        "delete `return SWAP_AGAIN`": _NOT_HERE,
        "delete `if young and (not ignore_refs):`": _YOUNG,
        "delete `return SWAP_FAIL` #2": _YOUNG,
        "delete `if not page.flags & PG.swapcache:`": _NO_SWAP_ENTRY,
        "swap op in `page.flags & PG.swapcache`": _NO_SWAP_ENTRY,
        "delete `raise KernelBug(f'unmapping an anonymous page that has no swap entr...`": (
            _NO_SWAP_ENTRY
        ),
        "`newpage` for `page` in `raise KernelBug(f'unmapping an anonymous page that has no "
        "swap entr...`": _NO_SWAP_ENTRY,
        "delete `pte.dirty = False`": (
            "a swap pte keeps the dirty bit of the pte it was: remove_from_swap gives it "
            "back dirty, and the durability proof's teardown writes the page to swap once "
            "more, with the data it holds; nothing a run checks"
        ),
        "delete `return SWAP_AGAIN` #3": (
            "None for SWAP_AGAIN: try_to_unmap tests each area's result against SWAP_FAIL only"
        ),
    },
    "remove_from_swap_2616": {
        "delete `if not page.flags & PG.swapcache or mapping is None or (not mapping...`": (
            _ONLY_SWAP_CACHE
        ),
        "swap op in `page.flags & PG.swapcache`": _ONLY_SWAP_CACHE,
        "delete `return`": _ONLY_SWAP_CACHE,
    },
}
"""The mutants no run of ``fsaops migrate`` fails, by helper, and why each is none it could."""

MUTANTS: Final = [(name, m) for name, fn in HELPERS.items() for m in mutants(fn)]

EXPLORED: Final = sorted(
    (helper, name)
    for helper, listed in SURVIVORS.items()
    for name, why in listed.items()
    if why.endswith(_EXPLORED)
)
"""The survivors ``fsaops explore`` fails, on an ext2 ``nobh`` mount (a truncate racing)."""


def mutated(helper: str, mutant: Mutant) -> contextlib.AbstractContextManager[None]:
    """Every caller of ``helper`` runs ``mutant`` (the real function's code is put back after)."""
    real = HELPERS[helper]
    return running(real, compiled(mutant, real))


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the scenarios go."""
    return tmp_path_factory.mktemp("mutants")


def caught(folder: Path) -> str | None:
    """The first run with the helpers as they are now that is not ``ok``, or ``None``."""
    return first_failing_run(folder, SCENARIO, WORKLOADS, RELEASES)


def test_the_mutants_are_the_ones_the_list_names(folder: Path) -> None:
    """Every listed survivor is a mutant still made, and the real helpers pass every run."""
    assert_listed_are_made(SURVIVORS, MUTANTS)
    assert caught(folder) is None


def test_a_mutant_runs_in_every_caller(folder: Path) -> None:
    """A helper that refuses every page refuses the pages of every table, the swap cache's too."""

    def refuse(*args: Any) -> int:
        return -11  # -EAGAIN

    text = SCENARIO.format(semantics="v4") + WORKLOADS["dirty, mapped, pinned, locked, writeback"]
    path = folder / "refuse.toml"
    path.write_text(text, encoding="utf-8")
    out = io.StringIO()
    with (
        running(HELPERS["migrate_page_remove_references"], refuse),
        contextlib.redirect_stdout(out),
    ):
        main(["migrate", str(path), "--json", "--no-progress"])
    tables = json.loads(out.getvalue())["by_aops"]
    assert set(tables) == {"ext2_nobh_aops", "ext2_aops", "swap_aops"}
    for table in tables.values():
        assert table["via"].get("migratepage", 0) == 0, table
        assert table["not_migrated"] > 0, table


@pytest.mark.exhaustive
@pytest.mark.parametrize(
    ("helper", "mutant"), MUTANTS, ids=[f"{helper}: {m.name}" for helper, m in MUTANTS]
)
def test_a_mutant_of_a_helper_fails_a_run(
    helper: str, mutant: Mutant, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A mutant that loops for ever is stopped as stuck after two seconds, not thirty.
    monkeypatch.setattr(scenario, "STALL_SECONDS", 2.0)
    monkeypatch.setattr(scenario, "_WATCH_EVERY", 0.2)
    with mutated(helper, mutant):
        found = caught(folder)
    unseen = f"no run of fsaops fails this mutant of {helper}:\n{mutant.source}"
    judge(mutant, found, SURVIVORS[helper], unseen)


@pytest.mark.exhaustive
@pytest.mark.parametrize(("helper", "name"), EXPLORED)
def test_the_explorer_finds_a_mutant_a_race_shows(helper: str, name: str) -> None:
    """What no serial run can see, a truncate racing the migration's re-check does."""
    mutant = next(m for h, m in MUTANTS if h == helper and m.name == name)
    out = io.StringIO()
    with mutated(helper, mutant), contextlib.redirect_stdout(out):
        rc = main(["explore", "--fs", "ext2", "--mode", "nobh", "--plugins", "ext2", "--json"])
    report = json.loads(out.getvalue())
    assert rc == 1, report
    assert report["status"] != "ok", report


@pytest.mark.parametrize(
    ("helper", "name", "semantics", "workload", "kind", "said"),
    [
        (
            "migrate_page_remove_references",
            "delete `if page.mapcount:`",
            "v4",
            "dirty, mapped, pinned, locked, writeback",
            "refused",
            "was refused as changed under the migration (reference count changed under us",
        ),
        (
            "unmap_v4",
            "delete `for _ in range(UNMAP_TRIES):`",
            "v4",
            "dirty, mapped, pinned, locked, writeback",
            "refused",
            "were young and no other task's work ran during the call: each of the 10 tries",
        ),
        (
            "unmap_eperm",
            "delete `return -EPERM`",
            "2.6.16",
            "mlocked, shared",
            "return",
            "under 2.6.16 the unmap step gives -EPERM for a page a VM_LOCKED area maps",
        ),
    ],
    ids=["changed under us", "young every try", "EAGAIN for VM_LOCKED"],
)
def test_a_refusal_that_blames_what_did_not_happen_is_a_finding(
    folder: Path, helper: str, name: str, semantics: str, workload: str, kind: str, said: str
) -> None:
    """A helper's refusal that says another task got in the way, when none ran, is found.

    A helper that forgets to unmap says the count changed under it (its
    re-check finds the ptes' references still there); one that gives up
    before its tries are done says a pte was young on every try; one that
    gives 2.6.16's ``-EPERM`` case ``-EAGAIN`` says the page is still
    mapped.  Nothing ran during the call that could make any of it so, so
    ``--strict`` finds the refusal wrong.  Plain, nothing is lost.
    """
    mutant = next(m for h, m in MUTANTS if h == helper and m.name == name)
    text = SCENARIO.format(semantics=semantics) + WORKLOADS[workload]
    with mutated(helper, mutant):
        _rc, plain = migrate_json(folder / "blames.toml", text)
        rc, strict = migrate_json(folder / "blames.toml", text, "--strict")
    assert plain["status"] == "ok"
    assert (rc, strict["status"]) == (1, "findings")
    found = [f["example"] for f in strict["findings"] if f["kind"] == kind]
    assert any(said in example for example in found), strict["findings"]
    # The real helper, the same run: no finding.
    rc, real = migrate_json(folder / "blames.toml", text, "--strict")
    assert (rc, real["status"], real["findings"]) == (0, "ok", []), real["findings"]


_VM_LOCKED_MOVED = (
    "_try_to_unmap_one",
    "delete `if vma.vm_flags & VM_LOCKED:`",
    "mlocked, shared",
    "counted as moved, but a VM_LOCKED area mapped it (mlock)",
)
_LEFT_IN_SWAP_CACHE = (
    "remove_from_swap_2616",
    "delete `delete_from_swap_cache(page)`",
    "dirty, mapped, pinned, locked, writeback",
    "is still in the swap cache: this release's migrate_page takes a moved page out of it",
)


@pytest.mark.parametrize(
    ("semantics", "helper", "name", "workload", "said"),
    [
        *((semantics, *_VM_LOCKED_MOVED) for semantics in ("v4", "2.6.16", "2.6.17")),
        *((semantics, *_LEFT_IN_SWAP_CACHE) for semantics in ("2.6.16", "2.6.17")),
    ],
    ids=[
        *(f"VM_LOCKED moved [{semantics}]" for semantics in ("v4", "2.6.16", "2.6.17")),
        *(f"left in the swap cache [{semantics}]" for semantics in ("2.6.16", "2.6.17")),
    ],
)
def test_a_page_moved_against_its_release_fails_the_placement_proof(
    folder: Path, semantics: str, helper: str, name: str, workload: str, said: str
) -> None:
    """A page the release would not move, or would move otherwise, fails a plain run.

    ``try_to_unmap`` refuses a page a ``VM_LOCKED`` area maps in every
    release fsaops models, so such a page is left (V4) or fails (2.6.16
    on): an unmap that ignores ``VM_LOCKED`` moves it, and the placement
    proof, which knows which pages were mapped so before the migration,
    names each one counted as moved.  From 2.6.16 ``migrate_page`` takes a
    moved anonymous page out of the swap cache (``remove_from_swap``): one
    left there keeps its swap slot, and the proof names it too.
    """
    mutant = next(m for h, m in MUTANTS if h == helper and m.name == name)
    text = SCENARIO.format(semantics=semantics) + WORKLOADS[workload]
    with mutated(helper, mutant):
        rc, report = migrate_json(folder / "placed.toml", text)
    assert (rc, report["status"]) == (1, "invariant broken")
    placement = report["proofs"]["placement"]
    assert placement["failures"] > 0
    assert all(said in problem for problem in placement["problems"]), placement
    # The real helper, the same run: the proof holds.
    rc, real = migrate_json(folder / "placed.toml", text)
    assert (rc, real["status"], real["proofs"]["placement"]["failures"]) == (0, "ok", 0)
