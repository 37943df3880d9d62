"""What fsaops writes: ``--html`` pages and standard output, whatever is around them.

A page is written to a new file that is then renamed over it: that file
is created, never opened (a symbolic link planted where it will be cannot
send the page elsewhere), its name fits wherever the page's name fits, and
its mode is what a new file's is.  Standard output takes the whole output
even when it does not block (``O_NONBLOCK``, as some programs leave their
pipes), and plugin code that rebinds what ``json`` offers cannot change
fsaops's own JSON, nor make the reporting of a failed run fail.  Each case
runs in a subprocess, as a user runs fsaops.
"""

from __future__ import annotations

import fcntl
import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from guarded import fsaops, install, one_error_line, one_json_object, run

SCENARIO = '[[mount]]\nfs = "ext2"\npages = 16\n[processes]\ncount = 0\n'
BAD_SCENARIO = "[kernel]\nnodes = 'x'\n"
PLUGINS = ("--plugins", "ext2,swap")


def _fsaops_argv(*args: str | Path) -> list[str]:
    return [sys.executable, "-m", "fsaops", *(str(a) for a in args)]


def _in_shell(script: str, *args: str | Path, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run ``sh -c SCRIPT sh ARGS`` (the script ends with ``exec "$@"``) with the limits."""
    return run(["sh", "-c", script, "sh", *(str(a) for a in args)], **kwargs)


def _reports(tmp_path: Path) -> tuple[Path, Path]:
    """Two reports of ``fsaops migrate --json`` for ``fsaops diff``."""
    scenario = tmp_path / "s.toml"
    scenario.write_text(SCENARIO)
    proc = fsaops("migrate", scenario, *PLUGINS, "--json")
    assert proc.returncode == 0, proc.stderr
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(proc.stdout)
    b.write_text(proc.stdout)
    return a, b


def _command(tmp_path: Path, which: str, page: Path) -> tuple[list[str | Path], int]:
    """The arguments of a command that writes ``page``, and its exit status."""
    if which == "the report's page":
        scenario = tmp_path / "s.toml"
        scenario.write_text(SCENARIO)
        return ["migrate", scenario, *PLUGINS, "--html", page], 0
    if which == "a failure's page":
        scenario = tmp_path / "bad.toml"
        scenario.write_text(BAD_SCENARIO)
        return ["migrate", scenario, *PLUGINS, "--html", page], 2
    a, b = _reports(tmp_path)
    return ["diff", a, b, "--html", page], 0


PAGES = ["the report's page", "a failure's page", "diff's page"]


@pytest.mark.parametrize("which", PAGES)
def test_a_symbolic_link_planted_for_the_temporary_file_is_not_followed(
    tmp_path: Path, which: str
) -> None:
    """Before, the page was written to ``PAGE.PID.tmp``, opened as it came: a symbolic link
    there had fsaops write the page over the file it points to, then rename the link over the
    page."""
    folder = (tmp_path / "out").resolve()
    folder.mkdir()
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    page = folder / "out.html"
    args, status = _command(tmp_path, which, page)
    # The shell plants the link for its own process id, which fsaops then has.
    proc = _in_shell(
        'ln -s "$1" "$2.$$.tmp" && shift 2 && exec "$@"',
        victim,
        page,
        *_fsaops_argv(*args),
    )
    assert proc.returncode == status, proc.stderr
    assert "Traceback" not in proc.stderr
    assert victim.read_text() == "precious\n"
    assert not page.is_symlink()
    assert page.read_text().startswith("<!DOCTYPE html>")
    planted = [p.name for p in folder.iterdir() if p.is_symlink()]
    assert len(planted) == 1, "the planted link is left as it was"
    assert sorted(p.name for p in folder.iterdir()) == sorted(["out.html", *planted])


@pytest.mark.parametrize("which", PAGES)
@pytest.mark.parametrize("before", [None, 0o600, 0o644])
def test_the_page_has_the_mode_of_a_new_file(
    tmp_path: Path, which: str, before: int | None
) -> None:
    """0666 less the umask, as a file the command created, whatever the page it replaces had."""
    page = tmp_path / "out.html"
    if before is not None:
        page.write_text("an older page\n")
        page.chmod(before)
    args, status = _command(tmp_path, which, page)
    proc = _in_shell('umask 027 && exec "$@"', *_fsaops_argv(*args))
    assert proc.returncode == status, proc.stderr
    assert stat.S_IMODE(page.stat().st_mode) == 0o640
    assert page.read_text().startswith("<!DOCTYPE html>")
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_a_page_that_cannot_be_written_leaves_nothing_behind(tmp_path: Path) -> None:
    """A file size limit below the page's size: the command says so, and no file is left."""
    folder = tmp_path / "out"
    folder.mkdir()
    page = folder / "out.html"
    args, _ = _command(tmp_path, "the report's page", page)
    proc = _in_shell('ulimit -f 8 && exec "$@"', *_fsaops_argv(*args, "--json"))
    assert proc.returncode == 1, proc.stderr
    one_json_object(proc, "ok")  # the report first: the page does not take it along
    line = one_error_line(proc, 1, f"--html {page}: cannot write it")
    assert "File too large" in line
    assert list(folder.iterdir()) == []


@pytest.mark.parametrize("which", PAGES)
def test_the_longest_file_name_a_folder_takes_is_written(tmp_path: Path, which: str) -> None:
    """Before, a name of 246 to 255 bytes failed after the whole run: the temporary file's name
    (the page's with ``.PID.tmp`` added) was too long."""
    longest = os.pathconf(tmp_path, "PC_NAME_MAX")
    page = tmp_path / ("r" * (longest - len(".html")) + ".html")
    args, status = _command(tmp_path, which, page)
    proc = fsaops(*args)
    assert proc.returncode == status, proc.stderr
    assert page.read_text().startswith("<!DOCTYPE html>")


@pytest.mark.parametrize("which", PAGES)
def test_a_file_name_too_long_for_its_folder_is_refused_before_the_command(
    tmp_path: Path, which: str
) -> None:
    """Before, ``migrate`` ran to the end, then failed with "File name too long" (exit 1)."""
    longest = os.pathconf(tmp_path, "PC_NAME_MAX")
    page = tmp_path / ("r" * (longest + 1 - len(".html")) + ".html")
    args, _ = _command(tmp_path, which, page)
    if which == "a failure's page":  # a scenario that would run, had the name been right
        scenario = tmp_path / "s.toml"
        scenario.write_text(SCENARIO)
        args[1] = scenario
    proc = fsaops(*args, *(["--json"] if args[0] == "migrate" else []))
    line = one_error_line(proc, 2, f"--html {page}: the file name is too long")
    assert f"{longest + 1} bytes" in line
    assert f"at most {longest}" in line
    if args[0] == "migrate":
        one_json_object(proc, "bad input")
    else:
        assert proc.stdout == ""
    assert list(tmp_path.glob("r*")) == []


@pytest.mark.parametrize("which", PAGES)
@pytest.mark.parametrize("where", ["in /proc", "a link into /proc"])
def test_a_folder_that_takes_no_new_file_is_refused_before_the_command(
    tmp_path: Path, which: str, where: str
) -> None:
    """Before, a folder where no file can be created (``/proc``, for root any folder ``os.access``
    passes), or a link ``FILE`` to a file in one, ran the whole command, then failed with
    ``cannot write it: No such file or directory``, exit 1, the JSON saying ``ok``."""
    if where == "in /proc":
        page = Path("/proc/fsaops-page.html")
    else:
        page = tmp_path / "page.html"
        page.symlink_to("/proc/version")
    args, _ = _command(tmp_path, which, page)
    if which == "a failure's page":  # a scenario that would run, had the page been writable
        scenario = tmp_path / "s.toml"
        scenario.write_text(SCENARIO)
        args[1] = scenario
    proc = fsaops(*args, *(["--json"] if args[0] == "migrate" else []))
    one_error_line(proc, 2, f"--html {page}: cannot write in /proc")
    if args[0] == "migrate":
        one_json_object(proc, "bad input")
    else:
        assert proc.stdout == ""


CHATTY = """\
import attrs, fsaops
from fsaops import FileSystemType
from fsaops_ext2 import ext2_aops

def mp(newpage, page):
    raise RuntimeError(f"block {page.index} of its own " + "z" * 200)

@fsaops.hookimpl
def fsaops_filesystem_types():
    table = attrs.evolve(ext2_aops, name="chatty_aops", migratepage=mp)
    return [FileSystemType(name="chatty", modes={"default": table}, block_sizes=(4096,))]
"""


def test_a_non_blocking_standard_output_takes_the_whole_report(tmp_path: Path) -> None:
    """Before, standard output a pipe in ``O_NONBLOCK`` mode cut every report longer than the
    pipe's buffer (64 KiB) and failed the run: "write could not complete without blocking"."""
    env = install(tmp_path, "chatty", CHATTY)
    scenario = tmp_path / "chatty.toml"
    scenario.write_text(
        '[plugins]\nload = ["chatty", "swap"]\n[[mount]]\nfs = "chatty"\npages = 600\n'
        "[processes]\ncount = 0\nanon_pages = 0\n"
    )
    reader, writer = os.pipe()
    fcntl.fcntl(writer, fcntl.F_SETFL, fcntl.fcntl(writer, fcntl.F_GETFL) | os.O_NONBLOCK)
    environment = {k: v for k, v in os.environ.items() if k not in ("FSAOPS_PLUGINS",)}
    proc = subprocess.Popen(
        _fsaops_argv("migrate", scenario, "--json"),
        stdout=writer,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        env={**environment, **env},
    )
    os.close(writer)
    try:
        time.sleep(1.0)  # a slow reader: the pipe fills, and a write would block
        chunks = []
        with os.fdopen(reader, "rb") as stream:
            while chunk := stream.read(65536):
                chunks.append(chunk)
        err = proc.communicate(timeout=120)[1].decode()
    finally:
        proc.kill()
        proc.wait()
    output = b"".join(chunks)
    assert proc.returncode == 0, err[-2000:]
    assert err == ""
    assert len(output) > 4 * 65536
    data = json.loads(output)
    assert data["status"] == "ok"
    assert len(data["pages_failed"]) == 600


REBOUND = """\
import attrs, fsaops, json, json.encoder, os
from fsaops import FileSystemType
from fsaops_ext2 import ext2_aops
from fsaops.buffer import buffer_migrate_page

class Stop(BaseException):
    pass

def broken(*args, **kwargs):
    raise ValueError("no JSON here")

def mp(newpage, page):
    {rebind}
    if {fail}:
        raise Stop("the run ends here")
    return buffer_migrate_page(newpage, page)

@fsaops.hookimpl
def fsaops_filesystem_types():
    table = attrs.evolve(ext2_aops, name="rebinds_aops", migratepage=mp)
    return [FileSystemType(name="rebinds", modes={{"default": table}}, block_sizes=(4096,))]
"""

REBINDINGS = {
    "json.dumps raises": "json.dumps = broken",
    "json.dumps says something else": 'json.dumps = lambda *a, **k: \'{"status": "lies"\'',
    "JSONEncoder.encode raises": "json.JSONEncoder.encode = broken",
    "JSONEncoder.iterencode raises": "json.JSONEncoder.iterencode = broken",
    "json.JSONEncoder replaced": "json.JSONEncoder = broken",
    "json.encoder's functions replaced": (
        "json.encoder._make_iterencode = broken; json.encoder.encode_basestring_ascii = broken"
    ),
}


def _rebinds(tmp_path: Path, rebind: str, fail: bool) -> tuple[dict[str, str], Path]:
    env = install(tmp_path, "rebinds", REBOUND.format(rebind=rebind, fail=fail))
    scenario = tmp_path / "rebinds.toml"
    scenario.write_text(
        '[plugins]\nload = ["rebinds", "swap"]\n[[mount]]\nfs = "rebinds"\npages = 8\n'
        "[processes]\ncount = 0\nanon_pages = 0\n"
    )
    return env, scenario


@pytest.mark.parametrize("case", sorted(REBINDINGS))
def test_plugin_code_that_rebinds_json_does_not_change_the_report(
    tmp_path: Path, case: str
) -> None:
    """Before, a ``migratepage`` that replaced ``json.dumps`` had the report written with it (or
    failed the run: the error line twice, then a traceback)."""
    env, scenario = _rebinds(tmp_path, REBINDINGS[case], fail=False)
    proc = fsaops("migrate", scenario, "--json", env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    data = one_json_object(proc, "ok")
    assert data["totals"]["moved"] == 8, data["totals"]
    assert data["pages_failed"] == []


@pytest.mark.parametrize("case", sorted(REBINDINGS))
def test_a_failed_run_is_reported_whole_after_plugin_code_rebinds_json(
    tmp_path: Path, case: str
) -> None:
    """One error line, the JSON envelope and the failure's page, never a traceback."""
    env, scenario = _rebinds(tmp_path, REBINDINGS[case], fail=True)
    page = tmp_path / "out.html"
    proc = fsaops("migrate", scenario, "--json", "--html", page, env=env)
    one_error_line(proc, 1, "raised Stop: the run ends here", "plugin rebinds-dist[rebinds]")
    data = one_json_object(proc, "kernel bug")
    assert "rebinds-dist[rebinds]" in data["error"]
    assert "the run ends here" in page.read_text()


@pytest.mark.parametrize("umask", [0o777, 0o000])
@pytest.mark.parametrize("fail", [False, True])
def test_plugin_code_that_changes_the_umask_changes_no_page_s_mode(
    tmp_path: Path, umask: int, fail: bool
) -> None:
    """Before, a ``migratepage`` that set the umask to 0777 had the run's page written with mode
    000 (and one that set 0 with mode 0666): the mode is that of the umask the command started
    with, for the report's page and for a failure's."""
    env, scenario = _rebinds(tmp_path, f"os.umask({umask:#o})", fail=fail)
    page = tmp_path / "out.html"
    page.write_text("an older page\n")
    proc = _in_shell(
        'umask 027 && exec "$@"', *_fsaops_argv("migrate", scenario, "--html", page), env=env
    )
    assert proc.returncode == (1 if fail else 0), proc.stderr[-3000:]
    assert stat.S_IMODE(page.stat().st_mode) == 0o640
    assert page.read_text().startswith("<!DOCTYPE html>")
    assert ("the run ends here" in page.read_text()) == fail


def test_the_failure_reporting_never_raises(tmp_path: Path) -> None:
    """Plugin code that breaks the failure's page: the line and the envelope still come out."""
    rebind = (
        "import fsaops.html_report; fsaops.html_report.render_failure = broken; json.dumps = broken"
    )
    env, scenario = _rebinds(tmp_path, rebind, fail=True)
    page = tmp_path / "out.html"
    proc = fsaops("migrate", scenario, "--json", "--html", page, env=env)
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 2, proc.stderr[-3000:]
    assert lines[0].startswith("fsaops: error: the run failed: ")
    assert "raised Stop: the run ends here" in lines[0]
    assert "plugin rebinds-dist[rebinds]" in lines[0]
    assert lines[1].startswith(f"fsaops: error: --html {page}: cannot write the failure's page")
    assert "ValueError: no JSON here" in lines[1]
    one_json_object(proc, "kernel bug")
    assert not page.exists()


@pytest.mark.parametrize(
    "value",
    [
        {"b": 1, "a": [1.5, float("inf"), None, True], "é": "\u2603\udcff\n"},
        [],
        {"nested": {"z": {"y": [{}, [], ""]}}},
        "text",
    ],
)
@pytest.mark.parametrize("sort_keys", [True, False])
def test_fsaops_json_is_what_json_dumps_writes(value: Any, sort_keys: bool) -> None:
    """The command's own encoder writes, byte for byte, what ``json.dumps`` would."""
    from fsaops.cli import _json_text

    expected = json.dumps(value, sort_keys=sort_keys, indent=2) + "\n"
    assert _json_text(value, sort_keys=sort_keys) == expected
