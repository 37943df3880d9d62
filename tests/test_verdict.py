"""What fsaops says about a broken plugin: the verdict, the findings, --debug-vm, the suite.

``tests/configs/plugins/buggyfs_plugin.py`` holds ext2's ``migratepage`` with
one mistake each, installed here as a third-party plugin (``buggyfs``) the
way pip would leave it.  Each bug either loses something (data, an
invariant of the machine, a kernel ``BUG()``), and then a plain
``fsaops migrate`` must fail, or loses nothing but is wrong, and then
``--strict`` must fail with the finding that names it.  No bug may get an
OK from ``--strict``; the real ``buffer_migrate_page`` must get one from
every mode, on ext2 and on ext3 ``data=journal``.  The conformance suite,
subclassed for each bug as a plugin author would, must fail at least one
promise for every bug.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import signal
import sys
import textwrap
from collections.abc import Iterator
from errno import EAGAIN, EBUSY, EIO
from pathlib import Path
from typing import Any

import attrs
import pytest

import fsaops.spinlock
from fsaops import scenario
from fsaops.cli import main
from fsaops.migrate import UNMAP_TRIES
from fsaops.page import PG, Page
from fsaops.rmap import VM_LOCKED
from fsaops.testing.dist import write_dist_info
from fsaops.world import World
from suite_runs import failed_by_table

PLUGINS = Path(__file__).parent / "configs" / "plugins"
sys.path.insert(0, str(PLUGINS))
import buggyfs_plugin  # noqa: E402

pytest_plugins = ["pytester"]

BUGS = sorted(buggyfs_plugin.BROKEN)
LOSSY = [name for name in BUGS if name not in buggyfs_plugin.LOSSLESS]
LOSSLESS = sorted(buggyfs_plugin.LOSSLESS)
FAILED = {"data lost", "invariant broken", "kernel bug"}
RUNS = [(3, "v4"), (8, "v4"), (5, "2.6.16"), (6, "2.6.17")]
"""(seed, semantics) of each run: the default release twice, the later ones once."""

CONFIG = """\
[kernel]
node_memory = "2MiB"
semantics = "{semantics}"
[plugins]
load = ["buggyfs"]
[[mount]]
fs = "bug_{name}"
pages = 48
files = 2
block_size = 1024
[processes]
count = 2
[workload]
seed = {seed}
dirty = 0.3
mapped = 0.3
pinned = 0.05
writeback = {writeback}
"""


@pytest.fixture(scope="module")
def configs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """``buggyfs`` installed (a dist-info on ``sys.path``); yields a folder for configs."""
    site = tmp_path_factory.mktemp("site")
    write_dist_info(site, "fsaops-buggyfs", {"fsaops": {"buggyfs": "buggyfs_plugin"}})
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(site))
        patch.delenv("FSAOPS_PLUGINS", raising=False)
        yield tmp_path_factory.mktemp("configs")


def migrate(
    configs: Path, name: str, run: tuple[int, str], *options: str
) -> tuple[int, dict[str, Any]]:
    """``fsaops migrate --json`` on bug ``name``'s filesystem; returns exit status and report."""
    seed, semantics = run
    path = configs / f"{name}-{seed}-{semantics}.toml"
    # On data=journal, pages written back are filed in the running transaction,
    # which holds them through the migration: their buffers reach migratepage.
    writeback = 0.1 if name in buggyfs_plugin.JOURNALLED else 0
    text = CONFIG.format(name=name, seed=seed, semantics=semantics, writeback=writeback)
    path.write_text(text, encoding="utf-8")
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(["migrate", str(path), "--json", "--no-progress", *options])
    assert "Traceback" not in err.getvalue()
    report: dict[str, Any] = json.loads(out.getvalue())
    assert report["schema"] == 1
    return rc, report


def kinds(report: dict[str, Any], name: str) -> set[str]:
    """The kinds of finding the report holds for bug ``name``'s table."""
    found = {f["kind"] for f in report["findings"] if f["table"] == f"{name}_aops"}
    for finding in report["findings"]:
        assert finding["count"] >= len(finding["pages"]) >= 1 and finding["example"], finding
    return found


# -- fsaops migrate -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "said"),
    [
        ("takes_the_old_page_off_the_list", "took pfn {pfn} (the old page) off the engine's list"),
        ("puts_the_new_page_on_the_lru", "put pfn {new} (the new page) on the LRU"),
    ],
)
def test_a_migratepage_that_breaks_the_engines_lists_is_a_named_kernel_bug(
    configs: Path, name: str, said: str
) -> None:
    rc, report = migrate(configs, name, RUNS[0])
    assert (rc, report["status"]) == (1, "kernel bug")
    error = report["error"]
    match = re.search(r"\(pfn (\d+), pass 0\)", error)
    assert match, error
    assert f"list corruption: {name}_aops's migratepage " in error
    # the first page tried, and the first new page (the target node's first frame)
    pattern = re.escape(said).replace(r"\{pfn\}", match[1]).replace(r"\{new\}", r"\d+")
    assert re.search(pattern, error), error


@pytest.mark.parametrize(
    ("name", "role"),
    [
        ("marks_the_new_page_on_the_lru", "the new page"),
        ("marks_the_old_page_on_the_lru", "the old page"),
    ],
)
@pytest.mark.parametrize("run", RUNS, ids=[f"{seed}-{sem}" for seed, sem in RUNS])
def test_pg_lru_set_on_a_page_off_the_lru_is_the_bug_of_putting_it_back_naming_the_plugin(
    configs: Path, name: str, role: str, run: tuple[int, str]
) -> None:
    """Before, the engine put the page back over the bit (setting it again) and the run was ok:
    the kernel's ``lru_cache_add`` finds ``PG_lru`` set (``TestSetPageLRU``) and BUGs."""
    for options in ((), ("--strict",)):
        rc, report = migrate(configs, name, run, *options)
        assert (rc, report["status"]) == (1, "kernel bug"), report.get("error")
        error = report["error"]
        assert re.search(rf"pfn \d+ \({role}\) is marked on the LRU \(PG_lru\)", error), error
        assert f"{name}_aops's migratepage set it" in error, error
        assert error.endswith(f"(plugin fsaops-buggyfs[buggyfs], whose table {name}_aops it is)")


@pytest.mark.parametrize("run", RUNS, ids=[f"{seed}-{sem}" for seed, sem in RUNS])
@pytest.mark.parametrize("name", LOSSY)
def test_a_bug_that_loses_something_fails_every_mode(
    configs: Path, name: str, run: tuple[int, str]
) -> None:
    for options in ((), ("--strict",)):
        rc, report = migrate(configs, name, run, *options)
        assert rc == 1, (options, report["status"], report.get("error"))
        assert report["status"] in FAILED | ({"findings"} if options else set()), options
    # --debug-vm stops at the page, naming it, instead of finding the loss at the end.
    rc, report = migrate(configs, name, run, "--debug-vm")
    assert (rc, report["status"]) in {(1, "invariant broken"), (1, "kernel bug")}, report
    assert re.search(r"pfn \d+", report["error"]), report["error"]


@pytest.mark.parametrize("run", RUNS, ids=[f"{seed}-{sem}" for seed, sem in RUNS])
@pytest.mark.parametrize("name", LOSSLESS)
def test_a_bug_that_loses_nothing_is_a_finding_and_strict_fails_on_it(
    configs: Path, name: str, run: tuple[int, str]
) -> None:
    kind = buggyfs_plugin.LOSSLESS[name]
    rc, report = migrate(configs, name, run)
    assert (rc, report["status"]) == (0, "ok"), report.get("error")
    rc, report = migrate(configs, name, run, "--strict")
    assert (rc, report["status"]) == (1, "findings"), report.get("error")
    assert kind in kinds(report, name)
    assert report["findings_checked"] == "all"


@pytest.mark.parametrize("run", RUNS, ids=[f"{seed}-{sem}" for seed, sem in RUNS])
@pytest.mark.parametrize("name", ["correct", "journalled_correct"])
def test_the_real_buffer_migrate_page_is_ok_in_every_mode(
    configs: Path, name: str, run: tuple[int, str]
) -> None:
    # ext3 data=journal's set_page_dirty sets PG_checked on the way (a dirty
    # pte, unmapped), which the new page then has and the old page had not.
    for options in ((), ("--strict",), ("--debug-vm",)):
        rc, report = migrate(configs, name, run, *options)
        assert (rc, report["status"]) == (0, "ok"), (options, report.get("error"))
        assert report["findings"] == []
        assert report["integrity"]["lost"] == 0


@pytest.mark.parametrize("name", sorted(buggyfs_plugin.STUCK))
def test_a_migratepage_that_never_lets_go_ends_the_run_without_a_time_limit(
    configs: Path, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No ``--timeout``: the stall watchdog stops a run whose clock stands still."""
    monkeypatch.setattr(scenario, "STALL_SECONDS", 1.0)
    monkeypatch.setattr(scenario, "_WATCH_EVERY", 0.2)
    rc, report = migrate(configs, name, (3, "v4"))
    assert (rc, report["status"]) == (1, "timeout")
    assert report["error"].startswith("stuck: the run made no progress for ")
    assert "while migrating the page at pfn " in report["error"]
    assert f"(table {name}_aops of plugin fsaops-buggyfs[buggyfs], pass 0" in report["error"]


@pytest.mark.parametrize("name", ["ignores_the_alarm_and_spins", "takes_the_alarm_and_spins"])
def test_a_migratepage_that_takes_sigalrm_is_still_held_to_the_time_limit(
    configs: Path, name: str
) -> None:
    """Its timer silenced, the watchdog thread raises the timeout in the run itself."""
    rc, report = migrate(configs, name, (3, "v4"), "--timeout", "0.5")
    assert (rc, report["status"]) == (1, "timeout")
    assert report["error"].startswith("timeout: the run went past its time limit of 0.5 s ")
    assert f"(table {name}_aops of plugin fsaops-buggyfs[buggyfs], pass 0" in report["error"]
    assert signal.getsignal(signal.SIGALRM) is signal.SIG_DFL  # put back when the run ended


@pytest.mark.parametrize("alone", [True, False])
def test_a_spinlock_left_held_is_a_recursion_naming_the_lock_and_the_plugin(
    configs: Path, monkeypatch: pytest.MonkeyPatch, alone: bool
) -> None:
    """The next ``spin_lock`` of it is the kernel's "spinlock recursion", at once, and says whose.

    Where other threads may run the machine (``Scheduler.threads``), it waits
    ``LOCKUP_SECONDS`` for one of them to let go, then is a lockup.
    """
    monkeypatch.setattr(fsaops.spinlock, "LOCKUP_SECONDS", 0.3)
    if not alone:
        monkeypatch.setattr(fsaops.spinlock, "_alone", lambda lock, owner: False)
    rc, report = migrate(configs, "leaves_tree_lock_held", (3, "v4"))
    assert (rc, report["status"]) == (1, "kernel bug")
    error = report["error"]
    said = "spinlock recursion" if alone else "spinlock lockup suspected"
    assert error.startswith(f"kernel BUG: {said}: tree_lock of <AddressSpace")
    assert "in leaves_tree_lock_held_aops's migratepage, migrating pfn " in error
    assert error.endswith(
        "(plugin fsaops-buggyfs[buggyfs], in buggyfs_plugin.leaves_tree_lock_held)"
    )


@pytest.mark.parametrize("name", ["clears_the_journal_bit", "drops_the_journal_head"])
def test_a_kernel_bug_kjournald_finds_names_the_plugin_whose_table_it_is(
    configs: Path, name: str
) -> None:
    """The BUG is raised in ext3's commit, but the broken table is buggyfs's: name buggyfs."""
    rc, report = migrate(configs, name, RUNS[0])
    assert (rc, report["status"]) == (1, "kernel bug")
    assert report["error"].startswith("kernel BUG: kjournald: a buffer of the running transaction")
    assert report["error"].endswith(
        f"(plugin fsaops-buggyfs[buggyfs], whose table {name}_aops it is)"
    )


def test_a_buffer_left_without_its_device_is_the_oops_of_its_write_naming_the_table(
    configs: Path,
) -> None:
    """ext2's writepage submits the buffer, but buggyfs's migratepage emptied it: name buggyfs."""
    rc, report = migrate(configs, "forgets_every_buffers_device", RUNS[0])
    assert (rc, report["status"]) == (1, "kernel bug")
    error = report["error"]
    assert re.match(
        r"kernel BUG: submit_bh\(WRITE\): the buffer head at offset \d+ of pfn \d+ "
        r"\(forgets_every_buffers_device_aops\) is mapped to block \d+ but has no b_bdev",
        error,
    ), error
    assert error.endswith(
        "(plugin fsaops-buggyfs[buggyfs], whose table forgets_every_buffers_device_aops it is)"
    )


@pytest.mark.parametrize("alloc_fail", [0.0, 1.0])
def test_strict_says_how_many_migratepage_calls_it_looked_at(
    configs: Path, alloc_fail: float
) -> None:
    """No new page for any chunk: no call was made, and "every call looked right" would lie."""
    path = configs / f"noalloc-{alloc_fail}.toml"
    name = "returns_zero_doing_nothing" if alloc_fail else "correct"
    text = CONFIG.format(name=name, seed=3, semantics="v4", writeback=0)
    path.write_text(text + f"[faults]\nalloc_fail = {alloc_fail}\n", encoding="utf-8")
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(["migrate", str(path), "--strict", "--no-progress"])
    findings = next(line for line in out.getvalue().splitlines() if "findings" in line)
    assert rc == 0, err.getvalue()
    if alloc_fail:  # a broken table, never called
        assert "none, but no page reached a migratepage: nothing was looked at" in findings
    else:
        calls = re.search(r"none: every one of ([\d,]+) migratepage calls looked right", findings)
        assert calls is not None, findings
        assert int(calls.group(1).replace(",", "")) >= 48


def test_strict_says_a_zero_for_a_page_that_did_not_move_is_the_wrong_return(
    configs: Path,
) -> None:
    """Not the flags or the references it never moved: the kit says the same (-EAGAIN)."""
    rc, report = migrate(configs, "returns_zero_doing_nothing", RUNS[0], "--strict")
    assert rc == 1
    (finding,) = report["findings"]
    assert finding["kind"] == "return", finding
    assert re.fullmatch(
        r"migratepage returned 0 for pfn \d+, but its page-tree slot still holds it: the page "
        r"did not move, and a page that cannot move now must get -EAGAIN",
        finding["example"],
    ), finding


@pytest.mark.parametrize(
    ("name", "said", "never"),
    [
        (
            "keeps_the_old_page_reference",
            r"findings +none in [\d,]+ migratepage calls, but the run failed",
            "looked right",
        ),
        (
            "moves_the_slot_only",
            r"findings +1 finding \(wrong, besides the run's failures\)",
            "nothing lost",
        ),
    ],
)
def test_strict_findings_do_not_clear_a_run_that_failed(
    configs: Path, name: str, said: str, never: str
) -> None:
    """A finding loses nothing by itself; the line must not say so of a run that lost or broke."""
    migrate(configs, name, RUNS[0])  # writes the config
    path = configs / f"{name}-{RUNS[0][0]}-{RUNS[0][1]}.toml"
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        assert main(["migrate", str(path), "--strict", "--no-progress"]) == 1
    text = out.getvalue()
    assert re.search(said, text), text
    assert never not in text


def test_debug_vm_stops_at_the_first_page_and_names_it(configs: Path) -> None:
    rc, report = migrate(configs, "moves_buffers_to_offset_zero", RUNS[0], "--debug-vm")
    assert (rc, report["status"]) == (1, "invariant broken")
    error = report["error"]
    assert "pfn" in error and "moves_buffers_to_offset_zero_aops" in error
    assert "pass" in error


# -- findings in the engine -------------------------------------------------------------------


def _mapped_page(world: World) -> tuple[Page, Any]:
    sb = world.mount("ext2")
    inode = world.file(sb, 1, clean=True)
    mm = world.kernel.new_mm()
    vma = mm.mmap_file(inode, 0, 1)
    mm.read(vma.vm_start * world.page_size, 16)
    (page,) = inode.i_mapping.pages()
    return page, vma


def test_a_pte_young_on_every_try_is_the_kernels_refusal_not_a_finding(
    registry: Any,
) -> None:
    world = World(registry=registry, strict=True)
    page, _vma = _mapped_page(world)
    (pte,) = [p for mm in world.kernel.mms for p in mm.ptes.values() if p.page is page]
    sched = world.kernel.sched
    ticks: list[int] = []
    done: list[bool] = []

    def touch() -> None:  # another CPU reads the page on every tick try_to_unmap waits
        pte.young = True
        ticks.append(sched.now)
        if not done:
            sched.call_later(1, touch, daemon=True)

    sched.call_later(1, touch, daemon=True)
    out = world.migrate([page])
    done.append(True)
    assert len(ticks) >= UNMAP_TRIES
    assert page in out.from_ or page in out.failed
    reasons = out.stats.tables["ext2_aops"].reasons
    assert any("young" in reason for reason in reasons), reasons
    assert not out.stats.findings


@pytest.mark.parametrize(("rc", "name"), [(-EAGAIN, "-EAGAIN"), (-EBUSY, "-EBUSY"), (-EIO, "-EIO")])
def test_refusing_a_page_that_could_move_is_a_finding(registry: Any, rc: int, name: str) -> None:
    """-EAGAIN tries again; any other errno fails the page for good: both refuse it."""
    world = World(registry=registry, strict=True)
    page, _vma = _mapped_page(world)
    mapping = page.mapping
    assert mapping is not None

    def refuses(newpage: Page, old: Page) -> int:
        return rc

    mapping.a_ops = attrs.evolve(mapping.a_ops, migratepage=refuses)  # type: ignore[union-attr]
    out = world.migrate([page])
    (finding,) = out.stats.findings.result()
    assert finding.kind == "refused"
    assert f"returned {name} for pfn {page.pfn}" in finding.example


def test_a_table_that_never_moves_a_page_fails_a_held_one_without_a_finding(
    registry: Any,
) -> None:
    """Any wrapper of ``fail_migrate_page`` fails every page alike, busy or not."""
    from fsaops import fail_migrate_page

    world = World(registry=registry, strict=True)
    page, _vma = _mapped_page(world)
    world.pin(page)
    mapping = page.mapping
    assert mapping is not None

    def never(newpage: Page, old: Page) -> int:
        return fail_migrate_page(newpage, old)

    mapping.a_ops = attrs.evolve(mapping.a_ops, migratepage=never)  # type: ignore[union-attr]
    out = world.migrate([page])
    assert page in out.failed
    assert not out.stats.findings


def test_a_table_that_frees_the_buffers_and_moves_the_page_without_them_is_lawful(
    registry: Any,
) -> None:
    """Buffers released, then ``migrate_page``: debug mode said the buffers did not follow."""
    from fsaops import migrate_page
    from fsaops.mapping import try_to_release_page

    world = World(registry=registry, debug_vm=True, strict=True)
    sb = world.mount("ext2")
    inode = world.file(sb, 2, clean=True)
    pages = inode.i_mapping.pages()
    assert all(p.flags & PG.private for p in pages)

    def releases(newpage: Page, old: Page) -> int:
        if old.flags & PG.private and not try_to_release_page(old, 0):
            return -EAGAIN
        return migrate_page(newpage, old)

    inode.i_mapping.a_ops = attrs.evolve(inode.i_mapping.a_ops, migratepage=releases)
    out = world.migrate(pages)  # no InvariantError
    assert out.problems == [] and len(list(out.moved)) == 2
    assert not out.stats.findings


def test_eagain_for_a_page_in_a_locked_area_is_no_finding(registry: Any) -> None:
    world = World(registry=registry, strict=True)
    page, vma = _mapped_page(world)
    vma.vm_flags |= VM_LOCKED
    out = world.migrate([page])
    assert page in out.from_ or page in out.failed
    assert not out.stats.findings


# -- the conformance suite ---------------------------------------------------------------------

SUITE = textwrap.dedent(
    """
    from buggyfs_plugin import BROKEN, JOURNALLED, SUITE_ONLY, filesystem
    from fsaops.testing import MigratepageConformance

    # data=journal's writepage files the buffers in the journal: no writeback.
    for name in [*BROKEN, *SUITE_ONLY, "correct", "journalled_correct"]:
        globals()[f"Test_{name}"] = type(
            f"Test_{name}",
            (MigratepageConformance,),
            {
                "filesystem": filesystem(name),
                "capabilities": {"buffers"} if name in JOURNALLED else {"buffers", "writeback"},
            },
        )
    """
)


@pytest.mark.long
@pytest.mark.exhaustive
def test_the_suite_fails_a_promise_for_every_bug(pytester: pytest.Pytester) -> None:
    reprec, failed = failed_by_table(pytester, PLUGINS, SUITE)
    for report in reprec.getreports("pytest_runtest_logreport"):
        if report.failed:
            assert "Traceback" not in report.longreprtext or "broken promise" in report.longreprtext
    assert failed.pop("correct", []) == []
    assert failed.pop("journalled_correct", []) == []
    missed = [name for name in [*BUGS, *buggyfs_plugin.SUITE_ONLY] if name not in failed]
    assert missed == [], f"no promise failed for {missed}"


def test_a_run_of_no_page_says_nothing_was_checked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Its proofs hold of nothing: a plain OK would pass any plugin it never tried."""
    path = tmp_path / "empty.toml"
    path.write_text('[plugins]\nload = ["ext3"]\n', encoding="utf-8")
    page = tmp_path / "page.html"
    assert main(["migrate", str(path), "--html", str(page)]) == 0
    out = capsys.readouterr().out
    assert "result      OK, but nothing was checked: the scenario has no page" in out
    assert "result      OK: every page" not in out
    html = page.read_text()
    assert '<p class="banner note">OK, but nothing was checked' in html
    assert 'class="banner note" id="status" data-status="ok">OK, BUT NOTHING WAS CHECKED' in html
    assert main(["migrate", str(path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["status"], report["totals"]["pages"]) == ("ok", 0)


def test_a_run_of_execute_in_place_pages_only_says_what_it_checked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before, a scenario whose only mount is execute in place was told "nothing was checked ...
    (no mount of a loaded filesystem ...)": it has one, and its 12 pages were read back."""
    path = tmp_path / "xip.toml"
    path.write_text(
        '[plugins]\nload = ["ext2"]\n[[mount]]\nfs = "ext2"\nmode = "xip"\npages = 12\n',
        encoding="utf-8",
    )
    page = tmp_path / "page.html"
    assert main(["migrate", str(path), "--html", str(page)]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "integrity 12 pages read back" in out
    assert "result OK, but no page was migrated: the scenario has no page to migrate" in out
    assert "only 12 execute-in-place page(s) read back from their device" in out
    assert "nothing was checked" not in out
    assert "no mount of a loaded filesystem" not in out
    html = page.read_text()
    assert '<p class="banner note">OK, but no page was migrated' in html
    assert 'class="banner note" id="status" data-status="ok">OK, BUT NO PAGE WAS MIGRATED' in html
    assert "NOTHING WAS CHECKED" not in html


def test_a_correct_data_journal_table_keeps_the_flags_promise_for_a_page_dirty_in_its_pte() -> None:
    """Unmapping the dirty pte calls data=journal's set_page_dirty, which sets PG_checked.

    The suite's random pages found the promise failing the real
    ``buffer_migrate_page`` there ("has flags checked that pfn 0 never had").
    """
    from fsaops.testing import World as SubjectWorld
    from fsaops.testing import promises
    from fsaops.testing.harness import Subject
    from fsaops.world import PageSpec

    subject = Subject(
        buggyfs_plugin.filesystem("journalled_correct"), "journal", frozenset({"buffers"})
    )
    world = SubjectWorld(subject)
    call = world.call_migratepage(world.make_page(PageSpec(pte_dirty=True)))
    assert call.rc == 0
    assert call.newpage.flags & PG.checked, "setup: set_page_dirty on the way set PG_checked"
    assert promises.hook_flags_copied(call) == []
    # A clean page that gains it is still a broken promise.
    clean = world.call_migratepage(world.make_page(PageSpec(index=1)))
    clean.newpage.flags |= PG.checked
    assert any("checked" in p for p in promises.hook_flags_copied(clean))


@pytest.mark.parametrize(
    ("name", "proof"),
    [("clears_the_dirty_bit", "durability"), ("copies_into_the_old_page", "placement")],
)
def test_the_page_s_banner_says_which_proof_failed(configs: Path, name: str, proof: str) -> None:
    """A run whose pages all read back but whose disk lost them is ``data lost``: the page's
    banner must not say only ``0 lost, 0 corrupted`` (the read-back's counts) under it."""
    page = configs / f"{name}.html"
    rc, report = migrate(configs, name, (3, "v4"), "--html", str(page))
    assert (rc, report["status"]) == (1, "data lost")
    failures = report["proofs"][proof]["failures"]
    assert failures > 0
    html = page.read_text(encoding="utf-8")
    banner = html[html.index('id="status"') :].split("</p>", 1)[0]
    integrity = report["integrity"]
    assert f"{integrity['lost']:,} lost, {integrity['corrupted']:,} corrupted" in banner
    assert f"{proof} fails for {failures:,}" in banner


def test_the_json_counts_the_migratepage_calls_the_terminal_and_the_page_count(
    configs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--strict`` looks at every ``migratepage`` call, and the terminal and the page say how
    many: the JSON says it too (``findings_calls``), so that the three agree."""
    name = "refuses_dirty_pages"
    page = configs / f"{name}-calls.html"
    rc, report = migrate(configs, name, (3, "v4"), "--strict", "--html", str(page))
    assert (rc, report["findings_checked"]) == (1, "all")
    calls = report["findings_calls"]
    assert type(calls) is int and calls >= report["totals"]["pages"] - report["totals"]["failed"]
    assert f"looked for: every migratepage call ({calls:,})" in page.read_text(encoding="utf-8")
    clean = configs / "correct-calls.toml"
    text = CONFIG.format(name="correct", seed=3, semantics="v4", writeback=0)
    clean.write_text(text, encoding="utf-8")
    assert main(["migrate", str(clean), "--strict", "--no-progress"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    said = re.search(r"findings none: every one of ([\d,]+) migratepage calls looked right", out)
    assert said is not None, out
    assert main(["migrate", str(clean), "--strict", "--json"]) == 0
    plain = json.loads(capsys.readouterr().out)
    assert plain["findings_calls"] == int(said.group(1).replace(",", ""))
    assert main(["migrate", str(clean), "--json"]) == 0
    unwatched = json.loads(capsys.readouterr().out)
    assert (unwatched["findings_checked"], unwatched["findings_calls"]) == ("return only", 0)


def test_a_failed_strict_run_without_findings_says_so_on_the_page_as_in_the_terminal(
    configs: Path,
) -> None:
    """No finding, yet the run failed: the terminal says what broke is not of a kind a finding
    names, and the page says the same, not a bare "None" under a failed run."""
    name = "clears_the_dirty_bit"
    page = configs / f"{name}-none.html"
    rc, report = migrate(configs, name, (3, "v4"), "--strict", "--html", str(page))
    assert rc == 1 and report["status"] != "ok"
    assert [f for f in report["findings"] if f["table"] == f"{name}_aops"] == []
    text = " ".join(page.read_text(encoding="utf-8").split())
    said = re.search(r'<p id="findings">(.*?)</p>', text)
    assert said is not None, text[-2000:]
    assert "but the run failed: what broke is not of a kind a finding names" in said.group(1)
