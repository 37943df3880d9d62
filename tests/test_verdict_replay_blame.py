"""A page that reads back wrong names the ``migratepage`` call that changed it, wherever it was.

``--strict`` compares the bytes of the frames next to a call's page and its
new page, and of the pages of its file within 16 of it (a page spoiled
there is named by ``--strict`` itself); a table that spoils a page further
away, of another file, or of anonymous memory, made the run fail
(``data lost``) with no call named, and the plain run's line listed every
table that ran.  Now a run whose read-back finds pages wrong replays
itself (same scenario, seed and plugins), watching those pages' bytes
around each ``migratepage`` call, and each wrong page's line names the
first call after which it no longer held its data: the table, the call's
number and the page it was handed.  A table that does not do the same
thing twice is said not to have been reproduced.  Each table below is
ext2's ``buffer_migrate_page`` plus one wild write (adding 1 to the first
byte of a page), in a plugin installed through the ``fsaops``
entry-point group.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from html import escape
from pathlib import Path
from typing import Any

import pytest

from inproc import fsaops, installed, migrate_json

PLUGIN = '''
import os
import time

import attrs

import fsaops
from fsaops import buffer_migrate_page
from fsaops_ext2 import EXT2, ext2_aops


def _spoil(other):
    node = other.node
    at = (other.pfn - node.start_pfn) << node.page_shift
    node.mem[at] = (node.mem[at] + 1) & 0xFF


def _back(distance):
    def table(newpage, page):
        """Spoils the page ``distance`` pages before its page in its file."""
        if page.index >= distance:
            other = page.mapping.lookup(page.index - distance)
            if other is not None:
                _spoil(other)
        return buffer_migrate_page(newpage, page)
    return table


def another_mounts_page(newpage, page):
    """At page 5 of a file, spoils page 5 of the first file of another mount that has one."""
    if page.index == 5:
        sb = page.mapping.host.i_sb
        for other_sb in page.node.kernel.super_blocks:
            if other_sb is sb:
                continue
            for inode in other_sb.inodes:
                tree = inode.i_mapping.page_tree
                if len(tree) > 5 and tree[5] is not None:
                    _spoil(tree[5])
                    return buffer_migrate_page(newpage, page)
    return buffer_migrate_page(newpage, page)


def an_anonymous_page(newpage, page):
    """At pages 3, 7, 11... of a file, spoils the first anonymous page the last process maps."""
    if page.index % 4 == 3:
        ptes = page.node.kernel.mms[-1].ptes
        for vpn in sorted(ptes):
            other = ptes[vpn].page
            if other is not None and other.mapping is not None and other.mapping.anon:
                _spoil(other)
                break
    return buffer_migrate_page(newpage, page)


def a_random_page(newpage, page):
    """Spoils a page of its file more than 16 before its page, chosen with os.urandom."""
    if page.index >= 17:
        pick = int.from_bytes(os.urandom(4), "little") % (page.index - 16)
        other = page.mapping.lookup(pick)
        if other is not None:
            _spoil(other)
    return buffer_migrate_page(newpage, page)


def notes_each_call(newpage, page):
    """Writes a line for each call to the file FSAOPS_TEST_CALLS names, then spoils as back17."""
    with open(os.environ["FSAOPS_TEST_CALLS"], "a", encoding="utf-8") as out:
        out.write(f"{page.mapping.name} {page.index}\\n")
    return _back(17)(newpage, page)


_KERNELS = {}


def _again(page):
    """Whether ``page``'s machine was built after another this table worked on (a replay)."""
    kernel = page.node.kernel
    _KERNELS.setdefault(page.mapping.a_ops.name, [])
    seen = _KERNELS[page.mapping.a_ops.name]
    if kernel not in seen:
        seen.append(kernel)
    return seen.index(kernel) > 0


def hangs_the_second_time(newpage, page):
    """Spoils as back17 in a first machine; in any machine built after it, never returns."""
    if _again(page):
        while True:
            time.sleep(0.01)
    return _back(17)(newpage, page)


class NoSecondTime(BaseException):
    """Not an ``Exception``: the engine lets it through, as it does ``KeyboardInterrupt``."""


def raises_the_second_time(newpage, page):
    """Spoils as back17 in a first machine; in any machine built after it, raises."""
    if _again(page):
        raise NoSecondTime("no second time")
    return _back(17)(newpage, page)


def bugs_the_second_time(newpage, page):
    """Spoils as back17 in a first machine; in any built after it, unlocks the new page."""
    if _again(page):
        newpage.flags &= ~fsaops.PG.locked  # the engine's unlock_page() BUG()s
    return _back(17)(newpage, page)


_MACHINES = []


def page5_one_call_later(newpage, page):
    """Spoils page 5 of its file once, at a call after the 20th, in each machine one call later."""
    kernel = page.node.kernel
    if kernel not in _MACHINES:
        _MACHINES.append(kernel)
        kernel.page5_calls = 0
    kernel.page5_calls += 1
    if kernel.page5_calls == 20 + _MACHINES.index(kernel):
        other = page.mapping.lookup(5)
        if other is not None:
            _spoil(other)
    return buffer_migrate_page(newpage, page)


def _type(name, migratepage):
    table = attrs.evolve(ext2_aops, name=f"{name}_aops", migratepage=migratepage)
    return attrs.evolve(EXT2, name=name, modes={"default": table}, page_cache={})


@fsaops.hookimpl
def fsaops_filesystem_types():
    return [
        _type("back17", _back(17)),
        _type("back30", _back(30)),
        _type("back100", _back(100)),
        _type("back1000", _back(1000)),
        _type("another_mounts_page", another_mounts_page),
        _type("an_anonymous_page", an_anonymous_page),
        _type("a_random_page", a_random_page),
        _type("notes_each_call", notes_each_call),
        _type("hangs_the_second_time", hangs_the_second_time),
        _type("hangs_the_second_time_too", hangs_the_second_time),
        _type("raises_the_second_time", raises_the_second_time),
        _type("bugs_the_second_time", bugs_the_second_time),
        _type("page5_one_call_later", page5_one_call_later),
    ]
'''

CONFIG = """\
[kernel]
nodes = 2
node_memory = "{memory}"
io_latency = 8
semantics = "{semantics}"
[plugins]
load = ["pageflipper", "ext2", "ext3", "swap"]
[[mount]]
fs = "{first}"
pages = {pages}
files = 1
block_size = 1024
[[mount]]
fs = "{second}"
pages = 64
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

CALL = (
    r"the replay saw table (?P<table>\w+)'s migratepage call (?P<call>\d+) \(of pfn \d+, "
    r"mount(?P<mount>\d)/file0 page (?P<at>\d+)\) change it, at pfn \d+ "
    r"\(a call of the replay, which read back what the run did; the run's own call is another "
    r"only for a plugin that does not do the same thing twice\)"
)

STRICT_SAW = (
    r"--strict saw that table (?P<table>\w+)'s migratepage of pfn (?P<pfn>\d+) changed pfn "
    r"\d+ \((?P<key>mount\d/file\d) page (?P<index>\d+)\), a page it was not handed: its "
    r"contents changed \(first at byte \d+\)"
)
"""What a line says when ``--strict``'s watch saw the call change the page itself: the frames
around a call's new page are compared too, and a page moved a few calls before sits there."""


@pytest.fixture(scope="module")
def configs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """``pageflipper`` installed; a folder for configs."""
    yield from installed(tmp_path_factory, "pageflipper", PLUGIN)


def _config(first: str, semantics: str, *, second: str = "ext2", pages: int = 64) -> str:
    memory = "8MiB" if pages > 400 else "2MiB"
    return CONFIG.format(
        first=first, second=second, semantics=semantics, pages=pages, memory=memory
    )


def _migrate(
    configs: Path, first: str, semantics: str, *options: str, second: str = "ext2", pages: int = 64
) -> tuple[int, dict[str, Any]]:
    text = _config(first, semantics, second=second, pages=pages)
    return migrate_json(configs / f"{first}-{second}-{semantics}.toml", text, *options)


def _page(problem: str) -> tuple[str, int]:
    """The key of the file or process and the page index a problem line is about."""
    match = re.match(r".*? \((mount\d/file\d)/page(\d+)\): ", problem)
    assert match is not None, problem
    return match[1], int(match[2])


@pytest.mark.parametrize("semantics", SEMANTICS)
@pytest.mark.parametrize(
    ("distance", "strict"),
    [(17, False), (100, False), (1000, False), (17, True), (100, True), (1000, True)],
    ids=["17-plain", "100-plain", "1000-plain", "17-strict", "100-strict", "1000-strict"],
)
def test_a_page_far_back_in_its_file_names_the_call(
    configs: Path, distance: int, semantics: str, strict: bool
) -> None:
    options = ("--strict",) if strict else ()
    pages = 64 if distance < 60 else distance + 64
    rc, report = _migrate(configs, f"back{distance}", semantics, *options, pages=pages)
    assert (rc, report["status"]) == (1, "data lost")
    problems = report["integrity"]["problems"]
    assert problems
    for problem in problems:
        key, index = _page(problem)
        saw = re.search(r"; " + STRICT_SAW + r"$", problem) if strict else None
        if saw is not None:
            # --strict named the call itself: file0's pages fill node 0 from its first
            # frame, so the page a call was handed is its pfn.
            assert saw["table"] == f"back{distance}_aops"
            assert (saw["key"], int(saw["index"])) == (key, index), problem
            assert int(saw["pfn"]) - index == distance, problem
            continue
        match = re.search(r"; " + CALL + r"$", problem)
        assert match is not None, problem
        assert match["table"] == f"back{distance}_aops"
        assert key == "mount0/file0" == f"mount{match['mount']}/file0"
        # The call named is the one on the page `distance` pages after the spoiled one.
        assert int(match["at"]) - index == distance, problem


@pytest.mark.parametrize("semantics", SEMANTICS)
def test_a_page_of_another_mount_names_the_call(configs: Path, semantics: str) -> None:
    rc, report = _migrate(configs, "another_mounts_page", semantics)
    assert (rc, report["status"]) == (1, "data lost")
    problems = report["integrity"]["problems"]
    assert problems
    for problem in problems:
        key, index = _page(problem)
        assert (key, index) == ("mount1/file0", 5), problem
        match = re.search(r"; " + CALL + r"$", problem)
        assert match is not None, problem
        assert (match["table"], match["mount"], match["at"]) == (
            "another_mounts_page_aops",
            "0",
            "5",
        )


@pytest.mark.parametrize("semantics", SEMANTICS)
def test_a_page_of_anonymous_memory_names_the_call(configs: Path, semantics: str) -> None:
    rc, report = _migrate(configs, "an_anonymous_page", semantics)
    assert (rc, report["status"]) == (1, "data lost")
    problems = report["integrity"]["problems"]
    assert problems
    for problem in problems:
        assert re.match(r"process\d page \d+ \(process\d/anon\d+\): ", problem), problem
        match = re.search(r"; " + CALL + r"$", problem)
        assert match is not None, problem
        assert (match["table"], match["mount"]) == ("an_anonymous_page_aops", "0")
        assert int(match["at"]) % 4 == 3, problem


@pytest.mark.parametrize("semantics", SEMANTICS)
def test_two_tables_are_each_named_for_their_own_pages(configs: Path, semantics: str) -> None:
    rc, report = _migrate(configs, "back17", semantics, second="back30", pages=24)
    assert (rc, report["status"]) == (1, "data lost")
    problems = report["integrity"]["problems"]
    distances = {"0": 17, "1": 30}
    seen = set()
    for problem in problems:
        match = re.search(r"; " + CALL + r"$", problem)
        assert match is not None, problem
        key, index = _page(problem)
        assert key == f"mount{match['mount']}/file0", problem
        distance = distances[match["mount"]]
        assert match["table"] == f"back{distance}_aops", problem
        assert int(match["at"]) - index == distance, problem
        seen.add(match["table"])
    assert seen == {"back17_aops", "back30_aops"}


@pytest.mark.parametrize("semantics", SEMANTICS)
@pytest.mark.parametrize("strict", [False, True], ids=["plain", "strict"])
def test_a_table_that_does_not_do_the_same_twice_is_not_named(
    configs: Path, semantics: str, strict: bool
) -> None:
    options = ("--strict",) if strict else ()
    rc, report = _migrate(configs, "a_random_page", semantics, *options)
    assert (rc, report["status"]) == (1, "data lost")
    problems = report["integrity"]["problems"]
    assert problems
    for problem in problems:
        assert "migratepage call" not in problem, problem
        saw = re.search(r"; " + STRICT_SAW + r"$", problem) if strict else None
        if saw is not None:
            # --strict saw the run's own call change it: that needs no replay.
            assert saw["table"] == "a_random_page_aops", problem
            assert (saw["key"], int(saw["index"])) == _page(problem), problem
            continue
        assert re.search(
            r"; the replay \(same scenario, seed and plugins\) did not reproduce the run "
            r"\([\d,]+ page\(s\) read back wrong in it, [\d,]+ of them as in the run\): a plugin "
            r"does not do the same thing twice, so no call is named$",
            problem,
        ), problem


def test_the_terminal_json_and_html_say_the_same(configs: Path, tmp_path: Path) -> None:
    path = configs / "back100-text.toml"
    path.write_text(_config("back100", "v4", pages=164), encoding="utf-8")
    html = tmp_path / "report.html"
    rc, out, err = fsaops("migrate", str(path), "--no-progress", "--html", str(html))
    assert rc == 1, err
    _rc, report = migrate_json(path, path.read_text(encoding="utf-8"))
    first = report["integrity"]["problems"][0]
    assert re.search(CALL + "$", first), first
    # The terminal wraps the line to its width.
    said, printed = " ".join(first.split()), " ".join(out.split())
    # The report is written once: the replay writes nothing of its own.
    assert printed.count(said) == 1
    assert printed.count("fsaops migrate ") == 1
    assert escape(first) in html.read_text(encoding="utf-8")


def test_a_table_with_side_effects_does_them_again_in_the_replay(
    configs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = tmp_path / "calls.txt"
    monkeypatch.setenv("FSAOPS_TEST_CALLS", str(calls))
    rc, report = _migrate(configs, "notes_each_call", "v4")
    assert (rc, report["status"]) == (1, "data lost")
    for problem in report["integrity"]["problems"]:
        match = re.search(r"; " + CALL + r"$", problem)
        assert match is not None, problem
        assert match["table"] == "notes_each_call_aops"
    lines = calls.read_text(encoding="utf-8").splitlines()
    # The run's calls, then the replay's: the same calls in the same order.
    half = len(lines) // 2
    assert lines and lines[:half] == lines[half:]
    named = [re.search(CALL, p) for p in report["integrity"]["problems"]]
    for match in named:
        assert match is not None
        assert f"mount0/file0 {match['at']}" in lines[:half]


def _run_kept(report: dict[str, Any], why: str) -> None:
    """The run's verdict stands, and each wrong page's line says the replay did not finish."""
    assert report["status"] == "data lost"
    assert "error" not in report or not report["error"]
    problems = report["integrity"]["problems"]
    assert problems
    for problem in problems:
        assert "migratepage call" not in problem, problem
        assert re.search(
            r"; the replay did not finish \(" + why + r"\), so no call is named$", problem
        ), problem


def test_a_replay_that_hangs_ends_at_the_time_limit_and_the_run_keeps_its_verdict(
    configs: Path,
) -> None:
    rc, report = _migrate(configs, "hangs_the_second_time", "v4", "--timeout", "3")
    assert rc == 1
    _run_kept(
        report,
        r"it went past the [\d.]+ s the run's time limit of 3 s left it while replaying the run "
        r"to name the calls that changed pages read back wrong, migrating the page at pfn \d+ "
        r"\(table hangs_the_second_time_aops of plugin fsaops-pageflipper\[pageflipper\], "
        r"pass \d+, in migratepage\); in plugin code of fsaops-pageflipper\[pageflipper\] "
        r"\(pageflipper\.\w+, [^)]*\)",
    )
    assert report["integrity"]["lost"] + report["integrity"]["corrupted"] > 0


def test_a_replay_that_stalls_is_stopped_and_the_run_keeps_its_verdict(
    configs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fsaops import scenario

    monkeypatch.setattr(scenario, "STALL_SECONDS", 1.0)
    monkeypatch.setattr(scenario, "_WATCH_EVERY", 0.2)
    rc, report = _migrate(configs, "hangs_the_second_time_too", "v4")
    assert rc == 1
    _run_kept(
        report,
        r"stuck: the replay made no progress for \d+ s \(a lock left held, or a loop that does "
        r"not end\) while replaying the run to name the calls that changed pages read back "
        r"wrong, migrating the page at pfn \d+ \(table hangs_the_second_time_too_aops .*",
    )


def test_a_replay_that_raises_leaves_the_run_its_verdict(configs: Path) -> None:
    rc, report = _migrate(configs, "raises_the_second_time", "v4", "--timeout", "30")
    assert rc == 1
    assert report["status"] == "data lost"
    for problem in report["integrity"]["problems"]:
        assert re.search(
            r"; the replay failed \(PluginFault: migratepage of table raises_the_second_time_aops "
            r"raised NoSecondTime: no second time on pfn \d+: plugin code may not end fsaops\), "
            r"so no call is named$",
            problem,
        ), problem


def test_a_replay_that_hits_a_kernel_bug_leaves_the_run_its_verdict(configs: Path) -> None:
    rc, report = _migrate(configs, "bugs_the_second_time", "v4")
    assert rc == 1
    assert report["status"] == "data lost"
    for problem in report["integrity"]["problems"]:
        assert re.search(
            r"; the replay failed \(KernelBug: unlock_page\(\) of pfn \d+ \(the new page\), "
            r"which is not locked: .*\), so no call is named$",
            problem,
        ), problem


def test_the_call_named_is_said_to_be_the_replays(configs: Path) -> None:
    # Page 5 reads back the same bytes in the run and in the replay, spoiled by
    # the table's 20th call in the run and by its 21st in the replay: the line
    # names the replay's call, and says it is the replay's.
    rc, report = _migrate(configs, "page5_one_call_later", "v4")
    assert (rc, report["status"]) == (1, "data lost")
    problems = report["integrity"]["problems"]
    assert [_page(p) for p in problems] == [("mount0/file0", 5)]
    match = re.search(r"; " + CALL + r"$", problems[0])
    assert match is not None, problems[0]
    assert match["table"] == "page5_one_call_later_aops"
    calls = [int(c) for c in re.findall(r"migratepage call (\d+)", problems[0])]
    assert len(calls) == 1
