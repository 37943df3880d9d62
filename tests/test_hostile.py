"""Hostile input, plugins and environments: one clear line and the right exit, never a traceback.

Adversarial scenario files (run in this process), then hostile plugins,
special files, plugin code misbehaving during a run and environments that
limit fsaops, each run in a subprocess as a user runs it, with a time and a
memory limit (``guarded``).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from fsaops.cli import main
from guarded import (
    alive,
    fsaops,
    install,
    one_error_line,
    one_json_object,
    run,
    signal_when,
    start,
)

PAYLOADS: dict[str, tuple[Callable[[], bytes], str]] = {
    "deeply nested arrays": (
        lambda: b"a = " + b"[" * 100_000 + b"]" * 100_000 + b"\n",
        "nested too deeply",
    ),
    "deeply nested tables": (
        lambda: b"x = " + b"{a = " * 5_000 + b"1" + b"}" * 5_000 + b"\n",
        "nested too deeply",
    ),
    "an integer of 5000 digits": (
        lambda: b"[kernel]\nnodes = " + b"9" * 5_000 + b"\n",
        "too many digits",
    ),
    "an absurd memory size": (
        lambda: b'[kernel]\nnode_memory = "99999999999999999999999TiB"\n',
        "kernel.node_memory",
    ),
    "a huge page count": (
        lambda: b'[[mount]]\nfs = "ext2"\npages = 1000000000000\n',
        "do not fit on node 0",
    ),
    "UTF-16": (lambda: "[kernel]\nnodes = 2\n".encode("utf-16"), "not UTF-8 text"),
    "Latin-1": (lambda: b"# caf\xe9\n[kernel]\nnodes = 2\n", "not UTF-8 text"),
    "random bytes": (lambda: bytes(range(256)) * 16, "not UTF-8 text"),
    "NUL bytes": (lambda: b"[kernel]\x00nodes = 2\n", "NUL bytes"),
    "a file of 2 MiB": (lambda: b"# padding\n" * 220_000, "too large"),
    "a key of a million characters": (
        lambda: b"[kernel]\n" + b"x" * 1_000_000 + b" = 1\n",
        "kernel.xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...: unknown key",
    ),
    # tomllib takes time quadratic in a dotted key's parts: minutes for a file of 1 MiB.
    "a dotted table name of 500,000 parts": (
        lambda: b"[" + b"a." * 500_000 + b"a]\n",
        "line 1: a dotted key of more than 64 parts",
    ),
    "a dotted key of 100,000 parts": (
        lambda: b"[kernel]\n" + b'a."b" . ' * 100_000 + b"a = 1\n",
        "line 2: a dotted key of more than 64 parts",
    ),
    "a dotted key in an inline table": (
        lambda: b"x = {" + b"a." * 400_000 + b"a = 1}\n",
        "line 1: a dotted key of more than 64 parts",
    ),
    "a dotted key of escaped quotes": (
        lambda: b"[x]\n" + b'"\\"".' * 50_000 + b"y = 1\n",
        "line 2: a dotted key of more than 64 parts",
    ),
    # No key: a comment and a string value with as many dots are read as usual.
    "a dotted comment": (lambda: b"# " + b"a." * 500 + b"\n[kernel]\nnodes = 'x'\n", "nodes"),
    "a dotted string value": (
        lambda: b'[[mount]]\nfs = "' + b"a." * 500 + b'"\n',
        "unknown filesystem",
    ),
    "infinity": (lambda: b"[workload]\ndirty = inf\n", "finite"),
    "not a number": (lambda: b"[workload]\ndirty = nan\n", "finite"),
    "a table where a value goes": (lambda: b"[kernel.nodes]\nx = 1\n", "kernel.nodes"),
    "a date for a count": (lambda: b"[kernel]\nnodes = 1979-05-27\n", "kernel.nodes"),
}


@pytest.mark.parametrize("name", sorted(PAYLOADS))
@pytest.mark.parametrize("command", ["config check", "migrate"])
def test_hostile_scenario_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, command: str
) -> None:
    make, expected = PAYLOADS[name]
    path = tmp_path / "scenario.toml"
    path.write_bytes(make())
    status = main([*command.split(), str(path), "--plugins", "ext2,swap"])
    out, err = capsys.readouterr()
    assert status == 2
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err[:500]
    assert lines[0].startswith(f"fsaops: error: {path}: ")
    assert expected in lines[0]
    assert len(lines[0]) < 400, "the message does not echo the hostile input"


def test_a_directory_and_a_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "check", str(tmp_path)]) == 2
    assert "is a directory" in capsys.readouterr().err
    assert main(["migrate", str(tmp_path / "nope.toml")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_a_byte_order_mark_is_accepted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bom.toml"
    path.write_bytes(b"\xef\xbb\xbf[kernel]\nnodes = 2\n")
    assert main(["config", "check", str(path), "--plugins", "ext2,swap"]) == 0
    assert "OK" in capsys.readouterr().out


def test_an_unreadable_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import fsaops.config.reading

    def refuse(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(fsaops.config.reading, "open", refuse, raising=False)
    path = tmp_path / "secret.toml"
    path.write_text("[kernel]\n")
    assert main(["config", "check", str(path)]) == 2
    assert capsys.readouterr().err == f"fsaops: error: {path}: cannot read: Permission denied\n"


# -- hostile plugins and environments, each run as a user runs fsaops -------------------------
#
# Every case runs `python -m fsaops` in a subprocess with a time and a memory
# limit (guarded.run), with the hostile plugin installed in a temporary folder
# as a distribution would be.  Each must end with one line on stderr, the exit
# status its class calls for and, with --json, one JSON object on stdout.

HEADER = """\
import os, sys, time, threading, itertools
import fsaops
from fsaops import AddressSpaceOperations, FileSystemType, migrate_page
from fsaops.buffer import mpage_readpage, nobh_commit_write, nobh_prepare_write, nobh_writepage
"""


def _table(name: str, **members: str) -> str:
    """Source of a plugin providing filesystem ``name`` whose table has ``members``."""
    fields = {
        "readpage": "mpage_readpage",
        "writepage": "nobh_writepage",
        "prepare_write": "nobh_prepare_write",
        "commit_write": "nobh_commit_write",
        "migratepage": "migrate_page",
        **members,
    }
    args = ", ".join(f"{k}={v}" for k, v in fields.items())
    return (
        f"TABLE = AddressSpaceOperations(name='{name}_aops', {args})\n"
        "@fsaops.hookimpl\n"
        "def fsaops_filesystem_types():\n"
        f"    return [FileSystemType(name='{name}', modes={{'default': TABLE}})]\n"
    )


def _migratepage_plugin(name: str, body: str) -> str:
    """Source of plugin ``name`` whose ``migratepage`` is the function ``mp`` of ``body``."""
    return HEADER + body + _table(name, migratepage="mp")


def _scenario(tmp_path: Path, fs: str, extra: str = "") -> Path:
    path = tmp_path / f"{fs}.toml"
    path.write_text(
        f'[plugins]\nload = ["{fs}", "swap"]\n[[mount]]\nfs = "{fs}"\npages = 8\n'
        f"[processes]\ncount = 0\nanon_pages = 0\n{extra}"
    )
    return path


# Plugins that fail while they load: exit 2, naming the plugin as dist[entry].
LOAD_FAILURES: dict[str, tuple[str, str]] = {
    "a BaseException subclass at import": (
        "class Boom(BaseException):\n    pass\nraise Boom('from the import')\n",
        "failed to load: Boom: from the import",
    ),
    "SystemExit(0) at import": ("raise SystemExit(0)\n", "failed to load: SystemExit: 0"),
    "KeyboardInterrupt raised by the import itself": (
        "raise KeyboardInterrupt\n",
        "failed to load: KeyboardInterrupt",
    ),
    "GeneratorExit at import": ("raise GeneratorExit\n", "failed to load: GeneratorExit"),
    "infinite recursion at import": (
        "def f():\n    return f()\nf()\n",
        "failed to load: RecursionError",
    ),
    "MemoryError at import": ("x = bytearray(1 << 60)\n", "failed to load: MemoryError"),
    "an exception whose str() raises": (
        "class E(Exception):\n    def __str__(self):\n        raise RuntimeError\nraise E()\n",
        "failed to load: E",
    ),
    "reading standard input at import": ("input()\n", "failed to load: EOFError"),
    "os._exit(0) at import": ("import os\nos._exit(0)\n", "its import ended the process"),
    "os.fork() at import": (
        "import os\nos.fork()\n",
        "failed to load: ProcessEnded: os.fork() was called: plugin code may not fork fsaops",
    ),
    "a crash at import (SIGSEGV)": (
        "import ctypes\nctypes.string_at(0)\n",
        "its import ended the process (killed by SIGSEGV)",
    ),
    "a hook that raises SystemExit(0)": (
        HEADER + "@fsaops.hookimpl\ndef fsaops_filesystem_types():\n    raise SystemExit(0)\n",
        "fsaops_filesystem_types() raised SystemExit: 0",
    ),
    "a hook returning a generator that raises": (
        HEADER + "@fsaops.hookimpl\ndef fsaops_filesystem_types():\n"
        "    yield FileSystemType(name='g', modes={'default': AddressSpaceOperations(name='g')})\n"
        "    raise RuntimeError('generator failed')\n",
        "fsaops_filesystem_types() raised RuntimeError: generator failed",
    ),
    "a hook returning an endless iterable": (
        HEADER + "@fsaops.hookimpl\ndef fsaops_filesystem_types():\n"
        "    return itertools.repeat(None)\n",
        "returned more than 1,000 filesystem types",
    ),
    "a hook returning an endless iterable of valid types": (
        HEADER + "T = AddressSpaceOperations(name='t')\n"
        "@fsaops.hookimpl\ndef fsaops_filesystem_types():\n"
        "    return (FileSystemType(name=f'fs{i}', modes={'default': T})\n"
        "            for i in itertools.count())\n",
        "returned more than 1,000 filesystem types",
    ),
    "a type whose modes are endless": (
        HEADER + "T = AddressSpaceOperations(name='t')\n"
        "F = FileSystemType(name='endless', modes={'default': T})\n"
        "class Modes(dict):\n"
        "    def items(self):\n        return ((str(i), T) for i in itertools.count())\n"
        "object.__setattr__(F, 'modes', Modes(default=T))\n"
        "@fsaops.hookimpl\ndef fsaops_filesystem_types():\n    return [F]\n",
        "modes has more than 100 entries",
    ),
    "a type whose block sizes are endless": (
        HEADER + "T = AddressSpaceOperations(name='t')\n"
        "F = FileSystemType(name='endless', modes={'default': T})\n"
        "object.__setattr__(F, 'block_sizes', itertools.count(512))\n"
        "@fsaops.hookimpl\ndef fsaops_filesystem_types():\n    return [F]\n",
        "block_sizes has more than 32 entries",
    ),
    "a table member that is not callable": (
        HEADER + _table("notcallable", migratepage="'migrate_page'"),
        "member migratepage is str, not a function",
    ),
    "a table member whose signature cannot be read": (
        HEADER + "class Member:\n"
        "    def __call__(self, newpage, page):\n        return 0\n"
        "    @property\n    def __signature__(self):\n        raise RuntimeError('no signature')\n"
        + _table("nosig", migratepage="Member()"),
        "could not be checked: RuntimeError: no signature",
    ),
    "a table member whose signature raises SystemExit": (
        HEADER + "class Member:\n"
        "    def __call__(self, newpage, page):\n        return 0\n"
        "    @property\n    def __signature__(self):\n        raise SystemExit(3)\n"
        + _table("nosig", migratepage="Member()"),
        "could not be checked: SystemExit: 3",
    ),
    "a sync_fs that is not callable": (
        HEADER + "T = AddressSpaceOperations(name='t')\n"
        "@fsaops.hookimpl\ndef fsaops_filesystem_types():\n"
        "    return [FileSystemType(name='s', modes={'default': T}, sync_fs='commit')]\n",
        "filesystem 's': sync_fs is str, not a function",
    ),
    "a hook function without @fsaops.hookimpl": (
        HEADER + "def fsaops_filesystem_types():\n    return []\n",
        "it defines fsaops_filesystem_types without @fsaops.hookimpl, so the hook never calls it",
    ),
    "an async def migratepage": (
        HEADER + "async def mp(newpage, page):\n    return 0\n" + _table("asy", migratepage="mp"),
        "table asy_aops: member migratepage is async def",
    ),
    "a fill_super with the kernel's three arguments": (
        HEADER + "T = AddressSpaceOperations(name='t')\n"
        "def fill(sb, data, silent):\n    pass\n"
        "@fsaops.hookimpl\ndef fsaops_filesystem_types():\n"
        "    return [FileSystemType(name='f', modes={'default': T}, fill_super=fill)]\n",
        "filesystem 'f': fill_super takes (sb, data, silent); it is called with 1 argument(s)",
    ),
    "a read_metadata taking one argument": (
        HEADER + "T = AddressSpaceOperations(name='t')\n"
        "@fsaops.hookimpl\ndef fsaops_filesystem_types():\n"
        "    return [FileSystemType(name='r', modes={'default': T},\n"
        "                           read_metadata=lambda inode: None)]\n",
        "filesystem 'r': read_metadata takes (inode); it is called with 2 argument(s)",
    ),
    "a type whose aops() gives a table it does not declare": (
        HEADER + "T = AddressSpaceOperations(name='t')\n"
        "OTHER = AddressSpaceOperations(name='other', migratepage=42)\n"
        "class Picky(FileSystemType):\n"
        "    def aops(self, mode=None):\n        return OTHER\n"
        "@fsaops.hookimpl\ndef fsaops_filesystem_types():\n"
        "    return [Picky(name='p', modes={'default': T})]\n",
        "filesystem 'p': aops('default') gives table other, not the table its modes name (t)",
    ),
    "a module __getattr__ that raises": (
        "def __getattr__(name):\n    raise RuntimeError('no attribute ' + name)\n",
        "failed to load: RuntimeError: no attribute fsaops_filesystem_types",
    ),
    "a module __getattr__ that raises SystemExit(0)": (
        "def __getattr__(name):\n    raise SystemExit(0)\n",
        "failed to load: SystemExit: 0",
    ),
    "a module with no hook at all": (
        "X = 1\n",
        "it implements no fsaops hook, so nothing of it is ever called",
    ),
    "a misspelled hook": (
        HEADER + "@fsaops.hookimpl\ndef fsaops_filesystem_type():\n    return []\n",
        "unknown hook 'fsaops_filesystem_type'; did you mean "
        "'fsaops_filesystem_types'? (the hooks of fsaops: fsaops_filesystem_types)",
    ),
    "a misspelled hook marked optionalhook": (
        HEADER + "@fsaops.hookimpl(optionalhook=True)\ndef fsaops_filesystem_type():\n"
        "    return []\n",
        "fsaops_filesystem_type is no hook of fsaops (optionalhook=True let the name pass)",
    ),
    # The hook is called one plugin at a time: a wrapper has nothing to wrap, and is
    # named for what it is, not for the generator it returns.
    "a hook implementation marked wrapper=True": (
        HEADER + "T = AddressSpaceOperations(name='t')\n"
        "@fsaops.hookimpl(wrapper=True)\ndef fsaops_filesystem_types():\n"
        "    result = yield\n"
        "    return [FileSystemType(name='w', modes={'default': T})]\n",
        "its fsaops_filesystem_types is marked @fsaops.hookimpl(wrapper=True), but fsaops "
        "calls fsaops_filesystem_types one plugin at a time, so a wrapper has no other "
        "implementation to wrap",
    ),
    "a hook implementation marked hookwrapper=True": (
        HEADER + "@fsaops.hookimpl(hookwrapper=True)\ndef fsaops_filesystem_types():\n    yield\n",
        "is marked @fsaops.hookimpl(hookwrapper=True), but fsaops calls",
    ),
    "a hook returning a dict of filesystem types": (
        HEADER + "T = AddressSpaceOperations(name='t')\n"
        "@fsaops.hookimpl\ndef fsaops_filesystem_types():\n"
        "    return {'d': FileSystemType(name='d', modes={'default': T})}\n",
        "fsaops_filesystem_types() must return a sequence of FileSystemType, not dict",
    ),
    "a description that is not a string": (
        HEADER + "T = AddressSpaceOperations(name='t')\n"
        "@fsaops.hookimpl\ndef fsaops_filesystem_types():\n"
        "    return [FileSystemType(name='d', modes={'default': T}, description=object())]\n",
        "description is not a string",
    ),
}


@pytest.mark.parametrize("case", sorted(LOAD_FAILURES))
def test_a_plugin_that_fails_to_load_is_named_and_exits_2(tmp_path: Path, case: str) -> None:
    code, expected = LOAD_FAILURES[case]
    env = install(tmp_path, "hostile", code)
    proc = fsaops("migrate", "--plugins", "hostile,ext2,swap", "--json", env=env)
    line = one_error_line(proc, 2, "hostile-dist[hostile]", expected)
    assert len(line) < 600
    data = one_json_object(proc, "bad input")
    assert "hostile-dist[hostile]" in data["error"]


def test_the_listing_names_every_broken_plugin_and_loads_the_rest(tmp_path: Path) -> None:
    """All of them installed at once: each is listed as failed with its reason, the rest load."""
    names = {case: f"hostile{i}" for i, case in enumerate(sorted(LOAD_FAILURES))}
    for case, name in names.items():
        env = install(tmp_path, name, LOAD_FAILURES[case][0])
    proc = fsaops("plugins", "--json", env=env)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.splitlines()) == 1
    data = one_json_object(proc, "bad input")
    plugins = {p["name"]: p for p in data["plugins"]}
    for case, name in names.items():
        assert plugins[name]["status"] == "failed", case
        assert LOAD_FAILURES[case][1] in plugins[name]["error"], case
    for builtin in ("ext2", "ext3", "xfs", "swap", "xfs_buftarg"):
        assert plugins[builtin]["status"] == "loaded"


@pytest.mark.parametrize("forked", [True, False], ids=["forked child", "new interpreter"])
def test_the_listing_is_the_same_from_either_kind_of_probe_child(
    tmp_path: Path, forked: bool
) -> None:
    """Each broken plugin gets its own reason whichever kind of child probes it.

    The probe forks its child only when fsaops has one thread; the other kind is forced here.
    """
    names = {case: f"hostile{i}" for i, case in enumerate(sorted(LOAD_FAILURES))}
    for case, name in names.items():
        env = install(tmp_path, name, LOAD_FAILURES[case][0])
    program = (
        "import sys\nimport fsaops.plugins\n"
        f"fsaops.plugins._single_threaded = lambda: {forked!r}\n"
        "from fsaops.cli import main\nsys.argv[0] = 'fsaops'\nsys.exit(main())\n"
    )
    proc = run([sys.executable, "-c", program, "plugins", "--json"], env=env)
    assert proc.returncode == 2, proc.stderr
    data = one_json_object(proc, "bad input")
    plugins = {p["name"]: p for p in data["plugins"]}
    for case, name in names.items():
        assert plugins[name]["status"] == "failed", case
        assert LOAD_FAILURES[case][1] in plugins[name]["error"], case
    for builtin in ("ext2", "ext3", "xfs", "swap", "xfs_buftarg"):
        assert plugins[builtin]["status"] == "loaded"


def test_an_import_that_holds_the_interpreter_lock_is_stopped_in_time(tmp_path: Path) -> None:
    """A catastrophic regular expression in C code: no thread can stop it, the probe can."""
    code = "import re\nre.match(r'(a+)+$', 'a' * 60 + 'b')\n"
    env = {**install(tmp_path, "stuck", code), "FSAOPS_PLUGIN_TIMEOUT": "1"}
    for command in ("migrate", "plugins"):
        proc = fsaops(command, "--plugins", "stuck,ext2,swap", "--json", env=env, timeout=60)
        one_error_line(proc, 2, "stuck-dist[stuck]", "did not finish within 1 s")
        one_json_object(proc, "bad input")


def test_a_hook_that_never_returns_is_stopped_in_time(tmp_path: Path) -> None:
    code = (
        HEADER + "@fsaops.hookimpl\ndef fsaops_filesystem_types():\n    while True:\n        pass\n"
    )
    env = {**install(tmp_path, "spin", code), "FSAOPS_PLUGIN_TIMEOUT": "1"}
    proc = fsaops("plugins", "--plugins", "spin", env=env, timeout=60)
    one_error_line(
        proc, 2, "spin-dist[spin]", "fsaops_filesystem_types() did not return within 1 s"
    )


def test_ctrl_c_while_a_plugin_is_probed_ends_cleanly(tmp_path: Path) -> None:
    """Ctrl-C during the probe: exit 130, one line, the JSON envelope, and no process left."""
    import signal

    pidfile = tmp_path / "probe.pid"
    code = f"import os, time\nopen({str(pidfile)!r}, 'w').write(str(os.getpid()))\ntime.sleep(60)\n"
    env = install(tmp_path, "sleepy", code)
    proc = start(
        [sys.executable, "-m", "fsaops", "migrate", "--plugins", "sleepy,ext2,swap", "--json"],
        env=env,
    )
    out, err = signal_when(
        proc,
        lambda: pidfile.exists() and bool(pidfile.read_text()),
        signal.SIGINT,
        "the probe imported the plugin",
    )
    assert proc.returncode == 130, err
    assert err == "fsaops: error: interrupted\n"
    assert json.loads(out)["status"] == "interrupted"
    child = int(pidfile.read_text())
    deadline = time.monotonic() + 10
    while alive(child):
        assert time.monotonic() < deadline, "the probe's child process was left running"
        time.sleep(0.05)


INTERRUPTED_WHILE_IMPORTING = r"""
import os, signal, sys, time
from pathlib import Path

TOLD = Path(sys.argv[-1])

class Slow:  # finds nothing: the import goes on as usual, a moment later
    def find_spec(self, name, path=None, target=None):
        if name == "resource":  # imported first there
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.5)  # the handler runs here, inside the import system
            TOLD.write_text("the import went on")
        return None

sys.meta_path.insert(0, Slow())
from fsaops.cli import main
sys.argv[0] = "fsaops"
sys.argv[1:] = sys.argv[1:-1]
sys.exit(main())
"""


def test_ctrl_c_while_the_command_imports_during_the_probe_comes_after_the_imports(
    tmp_path: Path,
) -> None:
    """The command imports what it needs next while the probe's child works; a Ctrl-C there was
    raised inside the import system, where it can be lost in a callback the import runs (the
    command then ended with exit status 1, its answer refused) or turned by the interpreter into
    a ``TypeError`` (the command failed). Now it is raised once the imports are done."""
    told = tmp_path / "told"
    args = [sys.executable, "-c", INTERRUPTED_WHILE_IMPORTING, "migrate", "--json", str(told)]
    proc = run(args, timeout=120)
    assert told.read_text() == "the import went on"
    assert one_error_line(proc, 130) == "fsaops: error: interrupted"
    assert one_json_object(proc, "interrupted")["error"] == "interrupted"


INTERRUPTED_WHILE_FORKING = r"""
import os, signal, sys, time
from pathlib import Path

TOLD = Path(sys.argv[-1])

def after_in_parent():  # as logging's handler, that releases its lock in the parent
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(0.5)  # the handler runs here, inside the handler Python runs after a fork
    TOLD.write_text("released")

os.register_at_fork(after_in_parent=after_in_parent)
from fsaops.cli import main
sys.argv[0] = "fsaops"
sys.argv[1:] = sys.argv[1:-1]
sys.exit(main())
"""


def test_ctrl_c_while_the_probe_forks_comes_after_the_fork(tmp_path: Path) -> None:
    """A Ctrl-C raised in a handler Python runs around the probe's fork was lost there, and
    the handler cut short (logging's would have left its lock held)."""
    told = tmp_path / "told"
    args = [sys.executable, "-c", INTERRUPTED_WHILE_FORKING, "migrate", "--json", str(told)]
    proc = run(args, env={"FSAOPS_NO_SUPERVISOR": "1"}, timeout=120)
    assert told.read_text() == "released"
    assert one_error_line(proc, 130) == "fsaops: error: interrupted"
    assert one_json_object(proc, "interrupted")["error"] == "interrupted"


@pytest.mark.parametrize("value", ["inf", "nan", "0", "-1", "abc", "1e400", "99999", "0x10"])
def test_a_bad_plugin_timeout_names_the_variable_not_a_plugin(
    value: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FSAOPS_PLUGIN_TIMEOUT", value)
    assert main(["migrate", "--json"]) == 2
    out, err = capsys.readouterr()
    assert err == (
        "fsaops: error: FSAOPS_PLUGIN_TIMEOUT must be a positive number of seconds, "
        f"at most 3600, not {value!r}\n"
    )
    assert json.loads(out)["status"] == "bad input"


def test_a_bad_plugin_timeout_in_a_subprocess() -> None:
    proc = fsaops("plugins", env={"FSAOPS_PLUGIN_TIMEOUT": "inf"})
    line = one_error_line(proc, 2, "FSAOPS_PLUGIN_TIMEOUT", "positive number of seconds")
    assert "fsaops[" not in line, "no plugin is blamed"


def test_an_empty_plugin_timeout_is_the_default(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FSAOPS_PLUGIN_TIMEOUT", " ")
    assert main(["config", "check", str(CONFIGS_SMALL)]) == 0, capsys.readouterr().err


CONFIGS_SMALL = Path(__file__).parent / "configs" / "small.toml"


@pytest.mark.parametrize("where", ["FSAOPS_PLUGINS", "--plugins", "[plugins] load"])
def test_a_huge_plugin_name_is_cut_in_the_message(
    tmp_path: Path,
    where: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    name = "x" * 100_000
    args: list[str] = ["migrate", "--json"]
    if where == "FSAOPS_PLUGINS":
        monkeypatch.setenv("FSAOPS_PLUGINS", name)
    elif where == "--plugins":
        monkeypatch.delenv("FSAOPS_PLUGINS", raising=False)
        args += ["--plugins", name]
    else:
        monkeypatch.delenv("FSAOPS_PLUGINS", raising=False)
        path = tmp_path / "long.toml"
        path.write_text(f'[plugins]\nload = ["{name}"]\n')
        args.insert(1, str(path))
    assert main(args) == 2
    out, err = capsys.readouterr()
    lines = err.splitlines()
    assert len(lines) == 1
    assert "not installed" in lines[0] and "100,000 characters" in lines[0]
    assert len(lines[0]) < 500
    assert len(json.loads(out)["error"]) < 500


@pytest.mark.parametrize("good", [True, False])
def test_a_file_name_that_is_no_utf8_goes_on_the_page(
    tmp_path: Path,
    good: bool,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Linux file names are bytes: one that is no UTF-8 crashed the page writer (exit 1)."""
    monkeypatch.delenv("FSAOPS_PLUGINS", raising=False)
    name = os.fsdecode(b"sc\xffn.toml")
    scenario = tmp_path / name
    text = CONFIGS_SMALL.read_text() if good else '[[mount]]\nfs = "ext9"\n'
    scenario.write_text(text)
    page = tmp_path / "page.html"
    status = main(["migrate", str(scenario), "--html", str(page), "--json", "--no-progress"])
    out, err = capsys.readouterr()
    assert status == (0 if good else 2), err
    assert json.loads(out)["status"] == ("ok" if good else "bad input")  # one object
    assert "Traceback" not in err
    html = page.read_text(encoding="utf-8")
    assert "sc\\udcffn.toml" in html
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []
    report = tmp_path / os.fsdecode(b"r\xff.json")
    if good:
        report.write_text(out)
        diff = tmp_path / "diff.html"
        assert main(["diff", str(report), str(report), "--html", str(diff)]) == 0
        assert "r\\udcff.json" in diff.read_text(encoding="utf-8")


def test_sigterm_while_the_report_is_written_leaves_one_whole_object(tmp_path: Path) -> None:
    """The report was cut where the signal came, and the envelope written after it."""
    import select
    import signal

    scenario = tmp_path / "held.toml"
    scenario.write_text(
        '[kernel]\nnode_memory = "16MiB"\n[plugins]\nload = ["ext2"]\n'
        '[[mount]]\nfs = "ext2"\npages = 2000\n[processes]\nanon_pages = 0\n'
        "[workload]\npinned = 1.0\n"
    )
    proc = start([sys.executable, "-m", "fsaops", "migrate", scenario, "--json"])
    try:
        assert proc.stdout is not None
        # The report (about half a megabyte) fills the pipe: the writer waits for us.
        ready, _, _ = select.select([proc.stdout], [], [], 120)
        assert ready, "no output"
        time.sleep(0.3)
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 130, err
    assert "terminated (SIGTERM)" in err
    report = json.loads(out)  # one object, whole
    assert report["status"] == "ok" and len(report["pages_left"]) == 2000


def test_a_huge_plugin_name_in_a_subprocess() -> None:
    proc = fsaops("plugins", env={"FSAOPS_PLUGINS": "y" * 100_000})
    assert len(one_error_line(proc, 2, "not installed", "100,000 characters")) < 500


def test_control_characters_in_a_name_are_not_echoed_raw(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FSAOPS_PLUGINS", raising=False)
    assert main(["migrate", "--plugins", "a\x1b[2Jb"]) == 2
    err = capsys.readouterr().err
    assert "not installed" in err
    assert "\x1b" not in err
    assert "\\x1b" in err


@pytest.mark.parametrize("command", [["config", "check"], ["plugins", "--config"]])
def test_a_scenario_named_with_an_escape_is_shown_escaped(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    command: list[str],
) -> None:
    monkeypatch.delenv("FSAOPS_PLUGINS", raising=False)
    scenario = tmp_path / "e\x1b]0;owned\x07.toml"
    scenario.write_text('[plugins]\nload = ["ext2"]\n[[mount]]\nfs = "ext2"\npages = 8\n')
    assert main([*command, str(scenario)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out
    assert "e\\x1b]0;owned\\x07.toml" in out


ESCAPE = "\\x1b]0;owned\\x07\\x1b[2J\\n"
"""Python source of a string that sets the terminal's title, clears the screen, breaks the line."""

UNPRINTABLE_NAMES = {
    "a table's name": (
        _table("esc").replace("name='esc_aops'", f"name='esc{ESCAPE}_aops'"),
        "table name",
    ),
    "a mode's name": (
        _table("esc").replace(
            "modes={'default': TABLE}", f"modes={{'m{ESCAPE}': TABLE}}, default_mode='m{ESCAPE}'"
        ),
        "mode 'm\\x1b]0;owned",
    ),
    "a member's name": (
        "def mp(newpage, page):\n    return migrate_page(newpage, page)\n"
        f"mp.__qualname__ = 'mp{ESCAPE}'\n" + _table("esc", migratepage="mp"),
        "migratepage's name 'esc.mp\\x1b]0;owned",
    ),
}


@pytest.mark.parametrize("case", sorted(UNPRINTABLE_NAMES))
def test_a_name_a_terminal_would_obey_is_refused_when_the_plugin_loads(
    tmp_path: Path, case: str
) -> None:
    """Listings and reports show names as they are: an escape sequence could draw over a verdict."""
    body, words = UNPRINTABLE_NAMES[case]
    env = install(tmp_path, "esc", HEADER + body)
    proc = fsaops("migrate", _scenario(tmp_path, "esc"), env=env)
    one_error_line(proc, 2, "plugin esc-dist[esc]", words, "not printable")
    assert "\x1b" not in proc.stdout + proc.stderr


def test_what_a_plugin_puts_in_an_exception_or_its_metadata_never_reaches_the_terminal_raw(
    tmp_path: Path,
) -> None:
    """A ``migratepage`` exception's message is cut and escaped; so are the metadata's strings."""
    code = (
        HEADER + "class Odd(Exception):\n    def __str__(self):\n        raise RuntimeError\n"
        "def mp(newpage, page):\n    if page.index % 2:\n        raise Odd()\n"
        f"    raise ValueError('{ESCAPE}' + 'y' * 100_000)\n" + _table("esc", migratepage="mp")
    )
    env = install(tmp_path, "esc", code)
    metadata = next(tmp_path.glob("*.dist-info")) / "METADATA"
    metadata.write_text(metadata.read_text().replace("0.1", "0.1\x1b[2J"))
    proc = fsaops("migrate", _scenario(tmp_path, "esc"), env=env)
    assert proc.returncode == 0, proc.stderr
    assert "\x1b" not in proc.stdout + proc.stderr
    assert "migratepage raised ValueError: \\x1b]0;owned\\x07\\x1b[2J" in proc.stdout
    assert "migratepage raised Odd" in proc.stdout, "a message that cannot be had is no crash"
    assert "y" * 2000 not in proc.stdout
    listing = fsaops("plugins", env=env)
    assert "\x1b" not in listing.stdout, listing.stdout
    assert "0.1\\x1b[2J" in listing.stdout


MARKUP = (
    "bad extent list [/dev/sdb1] [1, 'x'] [red]corrupt[/red] [link=https://e.x]here[/link] :smile:"
)


def test_what_plugin_code_says_is_shown_as_written_not_read_as_markup(tmp_path: Path) -> None:
    """Brackets and colons in a plugin's words are text: no crash, no colour, no link, no emoji.

    Before, ``[/dev/sdb1]`` in an exception's message ended the text report
    with ``MarkupError`` (exit 1, while ``--json`` said OK), and ``[red]``,
    ``[link=...]`` and ``:smile:`` were obeyed.
    """
    code = (
        HEADER
        + f"def mp(newpage, page):\n    raise ValueError({MARKUP!r})\n"
        + _table("tag", migratepage="mp").replace("'tag_aops'", "'tag_aops[/]'")
    )
    env = install(tmp_path, "tag", code)
    scenario = _scenario(tmp_path, "tag")
    proc = fsaops("migrate", scenario, env=env)
    assert proc.returncode == 0, proc.stderr
    assert f"migratepage raised ValueError: {MARKUP}" in " ".join(proc.stdout.split())
    assert "tag_aops[/]" in proc.stdout
    trace = fsaops("migrate", scenario, "--trace", "0", env=env)
    assert trace.returncode == 0, trace.stderr
    assert MARKUP in " ".join(trace.stdout.split())
    listing = fsaops("plugins", env=env)
    assert listing.returncode == 0, listing.stderr
    assert "tag_aops[/]" in listing.stdout
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(fsaops("migrate", scenario, "--json", env=env).stdout)
    b.write_text(fsaops("migrate", scenario, "--json", "--seed", "2", env=env).stdout)
    compared = fsaops("diff", a, b, env=env)
    assert compared.returncode == 0, compared.stderr
    assert "Table tag_aops[/]" in compared.stdout


def test_a_reason_plugin_code_gives_is_shown_escaped(tmp_path: Path) -> None:
    """A ``migratepage`` that says why it refuses (``current.why``) with an escape sequence."""
    code = (
        HEADER + "from errno import EAGAIN\n"
        "def mp(newpage, page):\n"
        "    page.node.kernel.current.why = 'busy \\x1b[2J\\x1b]0;owned\\x07' + 'z' * 5000\n"
        "    return -EAGAIN\n" + _table("why", migratepage="mp")
    )
    env = install(tmp_path, "why", code)
    page = tmp_path / "why.html"
    proc = fsaops("migrate", _scenario(tmp_path, "why"), "--html", page, env=env)
    assert proc.returncode == 0, proc.stderr
    shown = proc.stdout + page.read_text(encoding="utf-8")
    assert "\x1b" not in shown
    assert "z" * 600 not in shown, "cut"
    report = json.loads(fsaops("migrate", _scenario(tmp_path, "why"), "--json", env=env).stdout)
    (reason,) = report["by_aops"]["why_aops"]["reasons"]
    assert reason.startswith("busy \\x1b[2J\\x1b]0;owned\\x07zzz")
    assert reason.endswith("... (4519 more characters)")


def test_a_reason_for_every_page_is_folded_in_the_text_report(tmp_path: Path) -> None:
    """One distinct message a page (a block number in it) made the reasons table a row a page."""
    from fsaops.terminal_report import REASONS_SHOWN

    code = (
        HEADER
        + "def mp(newpage, page):\n    raise OSError(f'cannot map block {page.pfn}')\n"
        + _table("many", migratepage="mp")
    )
    env = install(tmp_path, "many", code)
    scenario = _scenario(tmp_path, "many").read_text().replace("pages = 8", "pages = 48")
    path = tmp_path / "many48.toml"
    path.write_text(scenario)
    proc = fsaops("migrate", path, env=env)
    assert proc.returncode == 0, proc.stderr
    shown = {line for line in proc.stdout.splitlines() if "cannot map block" in line}
    # The reasons table's rows, the five pages listed, and the finding's example.
    assert len(shown) <= REASONS_SHOWN + 5 + 1 < 48
    assert f"... and {48 - REASONS_SHOWN} more reasons, for {48 - REASONS_SHOWN} pages" in (
        proc.stdout
    )
    report = json.loads(fsaops("migrate", path, "--json", env=env).stdout)
    assert len(report["by_aops"]["many_aops"]["reasons"]) == 48, "the JSON keeps every one"


def test_names_in_a_report_file_never_reach_the_terminal_raw(tmp_path: Path) -> None:
    """``fsaops diff`` reads files anyone may have written; so does a scenario's name."""
    scenario = tmp_path / "s\x1b[31m.toml"
    scenario.write_text('[[mount]]\nfs = "ext2"\npages = 8\n[processes]\ncount = 0\n')
    proc = fsaops("migrate", scenario, "--plugins", "ext2,swap")
    assert proc.returncode == 0, proc.stderr
    assert "\x1b" not in proc.stdout and "s\\x1b[31m.toml" in proc.stdout
    a = tmp_path / "a.json"
    proc = fsaops("migrate", "--json", "--plugins", "ext2,swap")
    assert proc.returncode == 0, proc.stderr
    a.write_text(proc.stdout)
    report = json.loads(proc.stdout)
    report["by_aops"]["evil\x1b[2J_aops"] = report["by_aops"].pop("ext2_aops")
    b = tmp_path / "b.json"
    b.write_text(json.dumps(report))
    page = tmp_path / "diff.html"
    proc = fsaops("diff", a, b, "--html", page)
    assert proc.returncode == 0, proc.stderr
    assert "\x1b" not in proc.stdout + page.read_text()
    assert "evil\\x1b[2J_aops" in proc.stdout


@pytest.mark.parametrize("order", ["ext2 first", "third party first", "all installed"])
def test_two_plugins_with_one_filesystem_are_both_named(tmp_path: Path, order: str) -> None:
    """The message names both and says which loaded first; it never blames by alphabet."""
    code = "import fsaops_ext2\nfsaops_filesystem_types = fsaops_ext2.fsaops_filesystem_types\n"
    env = install(tmp_path, "aaa", code)
    args = ["config", "check", str(CONFIGS_SMALL)]
    if order == "ext2 first":
        args += ["--plugins", "ext2,aaa,ext3,xfs,swap,xfs_buftarg"]
        first, second = "fsaops[ext2]", "aaa-dist[aaa]"
    elif order == "third party first":
        args += ["--plugins", "aaa,ext2,ext3,xfs,swap,xfs_buftarg"]
        first, second = "aaa-dist[aaa]", "fsaops[ext2]"
    else:
        first, second = "aaa-dist[aaa]", "fsaops[ext2]"  # the selection is in name order
    proc = fsaops(*args, env=env)
    line = one_error_line(proc, 2, "filesystem 'ext2' is provided by two plugins")
    assert f"{first}, loaded first, and {second}" in line
    assert not line.startswith("fsaops: error: plugin fsaops[ext2]"), "ext2 is not blamed"


@pytest.mark.parametrize(
    ("answer", "said"),
    [
        ("raise ValueError('odd')", "could not be checked: ValueError: odd"),
        ("return 'yes'", "has_page_cache('default') returned 'yes', not true or false"),
    ],
)
def test_a_filesystem_type_that_answers_oddly_fails_when_its_plugin_loads(
    tmp_path: Path, answer: str, said: str
) -> None:
    """A subclass's ``has_page_cache`` that raised was first met in the middle of a run (exit 1)."""
    code = (
        "import attrs, fsaops\nfrom fsaops import FileSystemType\n"
        "from fsaops_ext2 import EXT2, ext2_nobh_aops\n"
        "@attrs.frozen\nclass Odd(FileSystemType):\n"
        f"    def has_page_cache(self, mode):\n        {answer}\n"
        "@fsaops.hookimpl\ndef fsaops_filesystem_types():\n"
        "    table = attrs.evolve(ext2_nobh_aops, name='odd_aops')\n"
        "    return [Odd(name='odd', modes={'default': table})]\n"
    )
    env = install(tmp_path, "odd", code)
    proc = fsaops("migrate", _scenario(tmp_path, "odd"), "--json", env=env)
    one_error_line(proc, 2, "plugin odd-dist[odd]", said)
    one_json_object(proc, "bad input")


NAMESAKE = """\
import attrs, fsaops
from fsaops_ext2 import EXT2, ext2_aops
def mp(newpage, page):
    return -5
OWN = attrs.evolve(ext2_aops, migratepage=mp)
@fsaops.hookimpl
def fsaops_filesystem_types():
    modes = {MODES}
    fstype = attrs.evolve(EXT2, name="namesake", modes=modes, default_mode=min(modes))
    return [attrs.evolve(fstype, page_cache={{}})]
"""


@pytest.mark.parametrize("order", ["ext2 first", "third party first"])
def test_a_table_named_as_another_plugins_table_is_a_conflict(tmp_path: Path, order: str) -> None:
    """Before, the report counted both tables as one ``ext2_aops``, and blamed the failures of
    the namesake's ``migratepage`` on ext2's ``buffer_migrate_page``."""
    env = install(tmp_path, "namesake", NAMESAKE.format(MODES="{'default': OWN}"))
    scenario = tmp_path / "s.toml"
    scenario.write_text(
        '[[mount]]\nfs = "ext2"\npages = 16\n[[mount]]\nfs = "namesake"\npages = 16\n'
        "[processes]\ncount = 0\n"
    )
    plugins = "ext2,namesake,swap" if order == "ext2 first" else "namesake,ext2,swap"
    first, second = "fsaops[ext2] (ext2 default)", "namesake-dist[namesake] (namesake default)"
    if order != "ext2 first":
        first, second = second, first
    proc = fsaops("migrate", scenario, "--plugins", plugins, env=env)
    line = one_error_line(proc, 2, "table 'ext2_aops' is provided by two plugins")
    assert f"{first}, loaded first, and {second}, left out" in line


def test_two_tables_of_one_name_in_one_plugin_are_refused_and_one_table_twice_is_not(
    tmp_path: Path,
) -> None:
    env = install(tmp_path, "namesake", NAMESAKE.format(MODES="{'a': OWN, 'b': ext2_aops}"))
    proc = fsaops("plugins", "--plugins", "namesake,swap", env=env)
    assert "two different tables are named ext2_aops (namesake a and namesake b)" in proc.stderr
    same = tmp_path / "same"  # one table twice, and a copy of it: the same members
    env = install(
        same, "namesake", NAMESAKE.format(MODES="{'a': OWN, 'b': OWN, 'c': attrs.evolve(OWN)}")
    )
    proc = fsaops("plugins", "--plugins", "namesake,swap", "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    (plugin,) = [p for p in json.loads(proc.stdout)["plugins"] if p["name"] == "namesake"]
    assert plugin["status"] == "loaded"


TWO_IMPLS = (
    HEADER
    + "T1 = AddressSpaceOperations(name='one_aops')\n"
    + "T2 = AddressSpaceOperations(name='two_aops')\n"
    + "@fsaops.hookimpl\ndef fsaops_filesystem_types():\n"
    + "    return [FileSystemType(name='one', modes={{'default': T1}})]\n"
    + "@fsaops.hookimpl(specname='fsaops_filesystem_types')\ndef more():\n"
    + "    return [FileSystemType(name='{SECOND}', modes={{'default': T2}})]\n"
)


def test_every_hook_implementation_of_a_plugin_counts(tmp_path: Path) -> None:
    """pluggy calls each implementation of the hook a plugin registers; so does the loader."""
    env = install(tmp_path, "twice", TWO_IMPLS.format(SECOND="two"))
    proc = fsaops("plugins", "--plugins", "twice", "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    (plugin,) = [p for p in json.loads(proc.stdout)["plugins"] if p["name"] == "twice"]
    assert sorted(f["name"] for f in plugin["filesystems"]) == ["one", "two"]
    # One name from both: refused, as from one.
    env = install(tmp_path / "same", "twice", TWO_IMPLS.format(SECOND="one"))
    proc = fsaops("plugins", "--plugins", "twice", env=env)
    one_error_line(proc, 2, "twice-dist[twice]", "filesystem 'one' is returned twice")


def test_an_entry_point_that_is_not_a_module_path(tmp_path: Path) -> None:
    from fsaops.testing.dist import write_dist_info

    write_dist_info(tmp_path, "odd-dist", {"fsaops": {"odd": "1bad-module!:x"}})
    proc = fsaops("plugins", "--plugins", "odd", env={"PYTHONPATH": str(tmp_path)})
    one_error_line(
        proc, 2, "plugin odd-dist[odd] failed to load: its entry point '1bad-module!:x' is not"
    )


OBJECTS = (
    "NONE = None\nNUMBER = 42\n"
    "class _Eq:\n"
    "    def __eq__(self, other):\n        raise RuntimeError('eq broke')\n"
    "    __hash__ = object.__hash__\n"
    "EQ = _Eq()\n"
)


@pytest.mark.parametrize(
    ("entry", "said"),
    [
        ("NONE", "plugin objs-dist[obj]: its entry point names None, not a module"),
        ("NUMBER", "plugin objs-dist[obj]: it implements no fsaops hook"),
        ("EQ", "plugin objs-dist[obj] failed to load: RuntimeError: eq broke"),
    ],
)
def test_an_entry_point_naming_an_object_without_hooks_is_refused(
    tmp_path: Path, entry: str, said: str
) -> None:
    """None (pluggy's mark of a blocked name), a number, an object whose == raises: exit 2."""
    from fsaops.testing.dist import write_dist_info

    write_dist_info(
        tmp_path,
        "objs-dist",
        {"fsaops": {"obj": f"objs_module:{entry}"}},
        modules={"objs_module": OBJECTS},
    )
    for command in ("plugins", "migrate"):
        proc = fsaops(command, "--plugins", "ext2,ext3,swap,obj", env={"PYTHONPATH": str(tmp_path)})
        one_error_line(proc, 2, said)


CHANGES_EXT2 = {
    "replaces its hook with None": (
        "import fsaops_ext2\nfsaops_ext2.fsaops_filesystem_types = None\n",
        "replaced fsaops_filesystem_types",
    ),
    "deletes its hook": (
        "import fsaops_ext2\ndel fsaops_ext2.fsaops_filesystem_types\n",
        "removed fsaops_filesystem_types",
    ),
    "puts another module in its place": (
        "import sys, types, fsaops_ext2\nsys.modules['fsaops_ext2'] = types.ModuleType('x')\n",
        "put another module in place of fsaops_ext2",
    ),
    "replaces its hook through importlib.import_module": (
        "import importlib\nimportlib.import_module('fsaops_ext2').fsaops_filesystem_types = None\n",
        "replaced fsaops_filesystem_types",
    ),
    "deletes its hook through importlib.import_module": (
        "import importlib\ndel importlib.import_module('fsaops_ext2').fsaops_filesystem_types\n",
        "removed fsaops_filesystem_types",
    ),
    "puts another module in its place through importlib.import_module": (
        "import importlib, sys, types\nimportlib.import_module('fsaops_ext2')\n"
        "sys.modules['fsaops_ext2'] = types.ModuleType('x')\n",
        "put another module in place of fsaops_ext2",
    ),
}


@pytest.mark.parametrize("how", sorted(CHANGES_EXT2))
def test_a_plugin_that_changes_another_plugins_module_is_the_one_named(
    tmp_path: Path, how: str
) -> None:
    """A plugin whose import changes a built-in's module fails; the built-in is not blamed."""
    code, said = CHANGES_EXT2[how]
    env = install(tmp_path, "changer", HEADER + _table("changer") + code)
    proc = fsaops("migrate", "--plugins", "changer,ext2,swap", "--json", env=env)
    line = one_error_line(proc, 2, "plugin changer-dist[changer]", said, "fsaops[ext2]")
    assert "plugin fsaops[ext2]:" not in line
    one_json_object(proc, "bad input")
    listing = fsaops("plugins", "--plugins", "changer,ext2,swap", "--json", env=env)
    status = {p["name"]: (p["status"], p["error"]) for p in json.loads(listing.stdout)["plugins"]}
    assert status["ext2"] == ("loaded", None)
    assert status["changer"][0] == "failed"
    assert said in status["changer"][1]


EVIL_MIGRATEPAGE = "def evil(newpage, page, mode=None):\n    raise RuntimeError('not ext2')\n"
SETS_EXT2_MIGRATEPAGE = (
    "import fsaops_ext2\nobject.__setattr__(fsaops_ext2.ext2_aops, 'migratepage', evil)\n"
)
CHANGES_EXT2_TABLES = {
    "at import, after ext2 loaded": (
        HEADER + EVIL_MIGRATEPAGE + _table("setter") + SETS_EXT2_MIGRATEPAGE,
        "ext2,setter,swap",
    ),
    "at import, before ext2 loaded": (
        HEADER + EVIL_MIGRATEPAGE + _table("setter") + SETS_EXT2_MIGRATEPAGE,
        "setter,ext2,swap",
    ),
    "in its hook, after ext2's hook": (
        HEADER
        + EVIL_MIGRATEPAGE
        + _table("setter").replace(
            "def fsaops_filesystem_types():\n",
            "def fsaops_filesystem_types():\n"
            + "".join(f"    {line}\n" for line in SETS_EXT2_MIGRATEPAGE.splitlines()),
        ),
        "ext2,setter,swap",
    ),
    "in its hook, before ext2's hook": (
        HEADER
        + EVIL_MIGRATEPAGE
        + _table("setter").replace(
            "def fsaops_filesystem_types():\n",
            "def fsaops_filesystem_types():\n"
            + "".join(f"    {line}\n" for line in SETS_EXT2_MIGRATEPAGE.splitlines()),
        ),
        "setter,ext2,swap",
    ),
}


@pytest.mark.parametrize("how", sorted(CHANGES_EXT2_TABLES))
def test_a_plugin_that_changes_another_plugins_table_is_the_one_named(
    tmp_path: Path, how: str
) -> None:
    """A plugin that changes ext2's table in place fails, named; nothing runs with the table."""
    code, selection = CHANGES_EXT2_TABLES[how]
    env = install(tmp_path, "setter", code)
    proc = fsaops("migrate", "--plugins", selection, "--json", env=env)
    line = one_error_line(proc, 2, "plugin setter-dist[setter]", "fsaops[ext2]", "ext2_aops")
    assert "changed migratepage of table ext2_aops in place" in line
    assert "another plugin's tables" in line
    one_json_object(proc, "bad input")
    listing = fsaops("plugins", "--plugins", selection, "--json", env=env)
    status = {p["name"]: p["status"] for p in json.loads(listing.stdout)["plugins"]}
    assert status["ext2"] == "loaded"
    assert status["setter"] == "failed"


KEEPER = (
    HEADER
    + """\
TABLES = [AddressSpaceOperations(name='keeper_aops', migratepage=migrate_page)]
@fsaops.hookimpl
def fsaops_filesystem_types():
    return [FileSystemType(name='keeper', modes={'default': TABLES[0]})]
"""
)


def test_a_plugin_that_changes_a_list_another_plugin_returns_from_is_named(
    tmp_path: Path,
) -> None:
    """keeper builds its type, in its hook, from a list of its module: replacer swaps an entry."""
    install(tmp_path, "keeper", KEEPER)
    code = "import keeper\nkeeper.TABLES[0] = AddressSpaceOperations(name='keeper_aops')\n"
    env = install(tmp_path, "replacer", HEADER + _table("replacer") + code)
    proc = fsaops("plugins", "--plugins", "keeper,replacer", "--json", env=env)
    status = {p["name"]: (p["status"], p["error"]) for p in json.loads(proc.stdout)["plugins"]}
    assert status["keeper"] == ("loaded", None)
    assert status["replacer"][0] == "failed"
    assert "changed the contents of keeper.TABLES" in status["replacer"][1]
    assert "plugin keeper-dist[keeper]" in status["replacer"][1]


@pytest.mark.parametrize("selection", ["regext,unreg,ext2,swap", "ext2,regext,unreg,swap"])
def test_the_plugin_whose_import_changed_another_module_is_named_not_the_first_importer(
    tmp_path: Path, selection: str
) -> None:
    """regext imports ext2's module (as it may); unreg then sets ext2's hook to None: unreg."""
    install(tmp_path, "regext", HEADER + "import fsaops_ext2\n" + _table("regext"))
    unsets = CHANGES_EXT2["replaces its hook with None"][0]
    env = install(tmp_path, "unreg", HEADER + _table("unreg") + unsets)
    proc = fsaops("migrate", "--plugins", selection, env=env)
    line = one_error_line(
        proc, 2, "plugin unreg-dist[unreg]", "replaced fsaops_filesystem_types", "fsaops[ext2]"
    )
    assert "regext" not in line


def test_a_failure_is_blamed_on_the_entry_point_whose_module_failed(tmp_path: Path) -> None:
    """One distribution, one package, three plugins: the one whose code failed is named."""
    from fsaops.testing.dist import write_dist_info

    package = tmp_path / "extras_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "alpha.py").write_text(HEADER + _table("alpha"))
    (package / "beta.py").write_text(
        HEADER
        + "def mp(newpage, page):\n    raise SystemExit(0)\n"
        + _table("beta", migratepage="mp")
    )
    write_dist_info(
        tmp_path, "extras-dist", {"fsaops": {n: f"extras_pkg.{n}" for n in ("alpha", "beta")}}
    )
    scenario = _scenario(tmp_path, "beta")
    proc = fsaops("migrate", str(scenario), env={"PYTHONPATH": str(tmp_path)})
    line = one_error_line(proc, 1, "(plugin extras-dist[beta], in extras_pkg.beta.mp)")
    assert "[alpha]" not in line


def test_a_thread_one_plugin_left_running_is_not_blamed_on_the_next(tmp_path: Path) -> None:
    """aaa's thread ends the process while bbb (correct, slow) imports: both are named.

    The thread waits for bbb's import to begin, rather than for a time: on a busy machine
    aaa's own steps could outlast a fixed delay, and then aaa alone was rightly blamed.
    """
    begun = tmp_path / "bbb imports"
    install(
        tmp_path,
        "aaa",
        HEADER + "def later():\n"
        f"    while not os.path.exists({str(begun)!r}):\n        time.sleep(0.01)\n"
        "    os._exit(0)\n"
        "threading.Thread(target=later, daemon=True).start()\n" + _table("aaa"),
    )
    code = f"open({str(begun)!r}, 'w').close()\ntime.sleep(30)\n"
    env = install(tmp_path, "bbb", HEADER + code + _table("bbb"))
    for command in ("migrate", "plugins"):
        begun.unlink(missing_ok=True)
        proc = fsaops(command, "--plugins", "aaa,bbb,ext2", env=env, timeout=60)
        one_error_line(
            proc,
            2,
            "ended the process (exit status 0) while plugin bbb-dist[bbb] was at its import step",
            "but aaa-dist[aaa] left a thread running: one of them did it",
        )


def test_one_module_under_two_entry_points_names_both(tmp_path: Path) -> None:
    """pluggy registers a module once: the second entry point is refused, naming the first."""
    from fsaops.testing.dist import write_dist_info

    write_dist_info(tmp_path, "alias-dist", {"fsaops": {"zzext2": "fsaops_ext2"}})
    proc = fsaops("plugins", "--plugins", "ext2,zzext2", env={"PYTHONPATH": str(tmp_path)})
    one_error_line(
        proc,
        2,
        "plugin alias-dist[zzext2]: its module 'fsaops_ext2' is plugin fsaops[ext2] already",
    )


THREADED = (
    HEADER
    + "LOCK = threading.Lock()\n"
    + "def stats():\n    while True:\n        with LOCK:\n            time.sleep(0.001)\n"
    + "threading.Thread(target=stats, daemon=True, name='stats').start()\n"
    + "def mp(newpage, page):\n    with LOCK:\n        return migrate_page(newpage, page)\n"
    + _table("threaded", migratepage="mp")
)


MAIN_THREAD_IMPORT = (
    HEADER
    + "import signal\n"
    + "signal.signal(signal.SIGUSR1, signal.SIG_IGN)  # only the main thread may\n"
    + "PERCPU = threading.local()\nPERCPU.moved = 0\n"
    + "def mp(newpage, page):\n    PERCPU.moved += 1\n    return migrate_page(newpage, page)\n"
    + _table("percpu", migratepage="mp")
)


ALARMED = (
    HEADER
    + "import signal\nSAMPLES = []\n"
    + "signal.signal(signal.SIGALRM, lambda *_: SAMPLES.append(1))\n"
    + _table("alarmed")
)


def test_a_sigalrm_handler_a_plugin_installs_at_import_stays(tmp_path: Path) -> None:
    """The timer that holds the import to its limit does not take the plugin's handler away."""
    install(tmp_path, "alarmed", ALARMED)
    script = (
        "import signal, sys\n"
        "from fsaops.plugins import load_plugins\n"
        "load_plugins(cli='alarmed', env={})\n"
        "import alarmed\n"
        "handler = signal.getsignal(signal.SIGALRM)\n"
        "signal.setitimer(signal.ITIMER_REAL, 0.01)\n"
        "import time; time.sleep(0.2)\n"
        "print(handler not in (signal.SIG_DFL, signal.SIG_IGN), alarmed.SAMPLES)\n"
    )
    proc = run([sys.executable, "-c", script], env={"PYTHONPATH": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["True", "[1]"]


def test_a_plugin_that_hangs_the_second_time_is_stopped_from_another_thread(
    tmp_path: Path,
) -> None:
    """No timer reaches a thread but the main one: there the import runs in a thread of its own."""
    env = install(tmp_path, "twice", SECOND_TIME)
    script = (
        "import threading\n"
        "from fsaops.plugins import load_plugins\n"
        "said = []\n"
        "def load():\n"
        "    try:\n        load_plugins(cli='twice', env={}, import_timeout=1)\n"
        "    except Exception as exc:\n        said.append(str(exc))\n"
        "t = threading.Thread(target=load)\nt.start()\nt.join(20)\n"
        "print(t.is_alive(), said)\n"
    )
    env["FSAOPS_TEST_PHASE"] = "import"
    proc = run([sys.executable, "-c", script], env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("False ["), proc.stdout
    assert "its import did not finish within 1 s" in proc.stdout


def test_a_plugin_imports_in_the_thread_that_runs_it(tmp_path: Path) -> None:
    """Set up at import for the main thread (a signal handler, a threading.local): it works.

    Once the probe has shown an import finishes in time, fsaops imports the
    plugin in its main thread, where the run calls it.  Before, every import
    ran in a thread of its own: ``signal.signal`` failed the plugin, and the
    thread-local counter was missing when migratepage ran (data lost).
    """
    proc = _migrate_with(tmp_path, "percpu", MAIN_THREAD_IMPORT)
    assert proc.returncode == 0, proc.stderr
    one_json_object(proc, "ok")


SECOND_TIME = (
    HEADER
    + "MARK = os.path.join(os.path.dirname(__file__), 'imported-once')\n"
    + "if os.path.exists(MARK) and os.environ.get('FSAOPS_TEST_PHASE') == 'import':\n"
    + "    while True:\n        time.sleep(0.01)\n"
    + "open(MARK, 'w').close()\n"
    + _table("twice")
)


@pytest.mark.parametrize("phase", ["import", "hook"])
def test_a_plugin_that_hangs_only_the_second_time_is_still_stopped_in_time(
    tmp_path: Path, phase: str
) -> None:
    """The probe passes it; the real import (or hook), in the main thread, has a timer."""
    code = SECOND_TIME
    if phase == "hook":
        code = code.replace(
            "def fsaops_filesystem_types():\n",
            "def fsaops_filesystem_types():\n"
            "    if os.path.exists(MARK + '2'):\n"
            "        while True:\n            time.sleep(0.01)\n"
            "    open(MARK + '2', 'w').close()\n",
        )
    env = install(tmp_path, "twice", code)
    env.update(FSAOPS_TEST_PHASE=phase, FSAOPS_PLUGIN_TIMEOUT="1")
    proc = fsaops("plugins", "--plugins", "twice", env=env)
    said = "its import did not finish" if phase == "import" else "did not return within 1 s"
    one_error_line(proc, 2, "twice-dist[twice]", said)


STARTERS = {
    "a thread": (THREADED, "stats (threaded.stats)"),
    # Threads whose function is the standard library's: new since the plugins loaded.
    "a pool's worker": (
        THREADED.replace(
            "threading.Thread(target=stats, daemon=True, name='stats').start()\n",
            "import concurrent.futures\n"
            "POOL = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix='flush')\n"
            "POOL.submit(stats)\n",
        ),
        "flush_0 (concurrent.futures.thread._worker)",
    ),
    "a timer": (
        THREADED.replace(
            "threading.Thread(target=stats, daemon=True, name='stats').start()\n",
            "threading.Timer(0.01, stats).start()\n",
        ),
        "(threading.Timer.run)",
    ),
}


@pytest.mark.parametrize("starter", sorted(STARTERS))
def test_explore_refuses_to_fork_past_a_plugins_thread(tmp_path: Path, starter: str) -> None:
    """A lock that thread holds at a fork stays held in the schedule's process: it would hang.

    Before, every schedule that took the lock hung, and the correct table
    was reported as a kernel bug ("the schedule did not end within 60 s").
    """
    code, named = STARTERS[starter]
    env = install(tmp_path, "threaded", code)
    proc = fsaops(
        "explore", "--plugins", "threaded", "--fs", "threaded", "--preemptions", "0", env=env
    )
    one_error_line(proc, 2, "plugin code runs ", named, "forked copy")
    # fsaops migrate runs it as it is.
    proc = fsaops("migrate", _scenario(tmp_path, "threaded"), "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    one_json_object(proc, "ok")


# -- not regular files ------------------------------------------------------------------------


@pytest.fixture
def special_files(tmp_path: Path) -> Iterator[dict[str, Path]]:
    """A FIFO, a listening socket and a character device, by kind."""
    import shutil
    import socket
    import tempfile

    fifo = tmp_path / "fifo.toml"
    os.mkfifo(fifo)
    short = Path(tempfile.mkdtemp(prefix="fs"))  # a socket's path must be short
    sock = short / "s.toml"
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(sock))
        server.listen()
        yield {"a FIFO": fifo, "a socket": sock, "a character device": Path(os.devnull)}
    shutil.rmtree(short)


@pytest.mark.parametrize(
    ("kind", "command"),
    [
        ("a FIFO", "migrate"),
        ("a FIFO", "config check"),
        ("a FIFO", "plugins --config"),
        ("a socket", "migrate"),
        ("a character device", "config check"),
    ],
)
def test_a_scenario_that_is_not_a_regular_file_is_refused_at_once(
    special_files: dict[str, Path], kind: str, command: str
) -> None:
    path = special_files[kind]
    proc = fsaops(*command.split(), path, "--json", timeout=30)
    one_error_line(proc, 2, str(path), "not a regular file", kind)
    one_json_object(proc, "bad input")


def test_a_directory_is_not_a_regular_file(tmp_path: Path) -> None:
    one_error_line(fsaops("migrate", tmp_path), 2, "is a directory, not a regular file")


# -- plugin code during a run -------------------------------------------------------------------


def test_a_fill_super_that_swaps_the_table_fails_the_run_naming_the_plugin(tmp_path: Path) -> None:
    """The table a mount uses is the one the loader checked, under the name it was checked by."""
    code = (
        HEADER
        + "import attrs\nfrom fsaops_ext2 import ext2_aops\n"
        + "SWAPPED = attrs.evolve(ext2_aops, migratepage=migrate_page)  # still 'ext2_aops'\n"
        + "def fill(sb):\n    sb.a_ops = SWAPPED\n"
        + _table("swapper").replace(
            "modes={'default': TABLE}", "modes={'default': TABLE}, fill_super=fill"
        )
    )
    proc = _migrate_with(tmp_path, "swapper", code)
    one_error_line(
        proc,
        1,
        "fill_super of filesystem swapper (swapper.fill) replaced the mount's table swapper_aops",
        "(plugin swapper-dist[swapper], whose table swapper_aops it is)",
    )
    one_json_object(proc, "kernel bug")


def test_systemexit_from_migratepage_fails_the_run_naming_table_and_page(tmp_path: Path) -> None:
    """The page named is the one being migrated (the old page), as the table saw it."""
    code = _migratepage_plugin(
        "quit", "def mp(newpage, page):\n    raise SystemExit(f'old {page.pfn}')\n"
    )
    proc = _migrate_with(tmp_path, "quit", code)
    line = one_error_line(
        proc, 1, "migratepage of table quit_aops raised SystemExit: old ", "quit-dist[quit]"
    )
    assert "may not end fsaops" in line
    named = re.search(r"raised SystemExit: old (\d+) on pfn (\d+)", line)
    assert named is not None and named[1] == named[2], line
    one_json_object(proc, "kernel bug")


@pytest.mark.parametrize(
    ("member", "raised"),
    [
        ("writepage", "SystemExit(0)"),
        ("writepage", "SystemExit(None)"),
        ("migratepage", "GeneratorExit"),
        ("readpages", "SystemExit(0)"),
        ("readpages", "RuntimeError('no')"),
        ("readpages", "KeyboardInterrupt"),
        ("migratepage", "KeyboardInterrupt"),
        ("writepage", "KeyboardInterrupt()"),
        ("writepages", "SystemExit(0)"),
        ("writepages", "KeyboardInterrupt"),
    ],
)
def test_plugin_code_ending_a_run_anywhere_fails_it(
    tmp_path: Path, member: str, raised: str
) -> None:
    code = HEADER + f"def bad(*args):\n    raise {raised}\n" + _table("bad", **{member: "bad"})
    env = install(tmp_path, "bad", code)
    proc = fsaops(
        "migrate", _scenario(tmp_path, "bad", "[workload]\ndirty = 1.0\n"), "--json", env=env
    )
    line = one_error_line(proc, 1, "bad-dist[bad]", "bad.bad")
    assert raised.split("(", maxsplit=1)[0] in line
    one_json_object(proc, "kernel bug")


SLEEPER = (
    HEADER + "def mp(newpage, page):\n    time.sleep(3600)\n" + _table("sleepy", migratepage="mp")
)


@pytest.mark.parametrize("how", ["--timeout", "[kernel] timeout"])
def test_a_migratepage_that_never_returns_is_ended_by_the_time_limit(
    tmp_path: Path, how: str
) -> None:
    env = install(tmp_path, "sleepy", SLEEPER)
    if how == "--timeout":
        args: list[str | Path] = [_scenario(tmp_path, "sleepy"), "--timeout", "1"]
    else:
        args = [_scenario(tmp_path, "sleepy", "[kernel]\ntimeout = 1\n")]
    proc = fsaops("migrate", *args, "--json", env=env, timeout=60)
    line = one_error_line(
        proc,
        1,
        "timeout: the run went past its time limit of 1 s",
        "while migrating the page at pfn",
        "sleepy_aops",
    )
    assert "sleepy-dist[sleepy]" in line
    data = one_json_object(proc, "timeout")
    assert "sleepy_aops" in data["error"]


def test_the_option_overrides_the_key(tmp_path: Path) -> None:
    env = install(tmp_path, "sleepy", SLEEPER)
    path = _scenario(tmp_path, "sleepy", "[kernel]\ntimeout = 900\n")
    proc = fsaops("migrate", path, "--timeout", "0.5", env=env, timeout=60)
    one_error_line(proc, 1, "time limit of 0.5 s")


def test_the_time_limit_names_the_phase_outside_the_engine(tmp_path: Path) -> None:
    # The world is built by reading every page in through readpage.
    code = HEADER + "def rp(page):\n    time.sleep(3600)\n" + _table("slowread", readpage="rp")
    env = install(tmp_path, "slowread", code)
    proc = fsaops("migrate", _scenario(tmp_path, "slowread"), "--timeout", "1", env=env, timeout=60)
    one_error_line(proc, 1, "time limit of 1 s while building the world")
    # Dirty pages move without being written; the durability proof writes them.
    code = HEADER + "def wp(page, wbc):\n    time.sleep(3600)\n" + _table("slowio", writepage="wp")
    env = install(tmp_path, "slowio", code)
    scenario = _scenario(tmp_path, "slowio", "[workload]\ndirty = 0.5\n")
    proc = fsaops("migrate", scenario, "--timeout", "1", env=env, timeout=60)
    one_error_line(proc, 1, "time limit of 1 s while proving durability")


def test_plugin_code_that_swallows_the_time_limit_is_ended_anyway(tmp_path: Path) -> None:
    code = (
        HEADER
        + "def mp(newpage, page):\n    while True:\n        try:\n            time.sleep(3600)\n"
        "        except BaseException:\n            pass\n" + _table("stubborn", migratepage="mp")
    )
    env = install(tmp_path, "stubborn", code)
    proc = fsaops(
        "migrate", _scenario(tmp_path, "stubborn"), "--timeout", "1", "--json", env=env, timeout=60
    )
    one_error_line(proc, 1, "time limit of 1 s", "did not stop")
    one_json_object(proc, "timeout")


STUBBORN = {
    "swallows": "    while True:\n        try:\n            while True:\n                pass\n"
    "        except BaseException:\n            pass\n",
    "ignores the alarm and sleeps": "    import signal\n"
    "    signal.signal(signal.SIGALRM, signal.SIG_IGN)\n    time.sleep(3600)\n",
}


@pytest.mark.parametrize("how", sorted(STUBBORN))
def test_a_stall_that_plugin_code_keeps_going_is_ended_without_a_time_limit(
    tmp_path: Path, how: str
) -> None:
    """No ``--timeout``: the stall watchdog tells the run to stop; plugin code that swallows
    that, or sleeps where nothing can reach it, is ended a little later. Before, it ran for ever
    and ``SIGTERM`` could not stop it either."""
    code = HEADER + "def mp(newpage, page):\n" + STUBBORN[how] + _table("stub", migratepage="mp")
    env = install(tmp_path, "stub", code)
    quick = (  # the program as it is, with a stall found after one second, not thirty
        "import sys, fsaops.scenario as s\ns.STALL_SECONDS = 1.0\ns._WATCH_EVERY = 0.2\n"
        "from fsaops.cli import main\nsys.argv[0] = 'fsaops'\nmain()\n"
    )
    scenario = _scenario(tmp_path, "stub")
    proc = run([sys.executable, "-c", quick, "migrate", scenario, "--json"], env=env, timeout=60)
    line = one_error_line(proc, 1, "stuck: the run made no progress", "did not stop within 2 s")
    assert "(table stub_aops of plugin stub-dist[stub]" in line
    one_json_object(proc, "timeout")


def test_sigterm_that_plugin_code_swallows_still_ends_the_run(tmp_path: Path) -> None:
    """The first ``SIGTERM`` is raised in the run as ``KeyboardInterrupt``; plugin code that
    swallows it is given two seconds, then the process ends, interrupted (exit 130)."""
    import signal

    started = tmp_path / "started"
    code = (  # the file is made inside the try, so the signal its making lets in is swallowed
        HEADER
        + "def mp(newpage, page):\n    while True:\n        try:\n"
        + f"            open({str(started)!r}, 'w').close()\n"
        + "            while True:\n                pass\n"
        + "        except BaseException:\n            pass\n"
        + _table("deaf", migratepage="mp")
    )
    env = install(tmp_path, "deaf", code)
    proc = start(
        [sys.executable, "-m", "fsaops", "migrate", _scenario(tmp_path, "deaf"), "--json"], env=env
    )
    out, err = signal_when(proc, started.exists, signal.SIGTERM, "the run reached migratepage")
    assert proc.returncode == 130, err
    assert re.fullmatch(
        r"fsaops: error: terminated \(SIGTERM\) while migrating the page at pfn \d+ \(table "
        r"deaf_aops of plugin deaf-dist\[deaf\], pass \d+[^)]*\); in plugin code of "
        r"deaf-dist\[deaf\] \(deaf\.mp, \S+deaf\.py:\d+\); plugin code kept the run going; "
        r"ended",
        err.strip(),
    ), err
    assert json.loads(out)["status"] == "interrupted"


@pytest.mark.parametrize("value", ["-1", "inf", "nan", "abc", "1e7"])
def test_a_bad_timeout_is_bad_input(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["migrate", "--timeout", value]) == 2
    err = capsys.readouterr().err
    assert err.startswith("fsaops: error: argument --timeout: expected a number of seconds")
    assert len(err.splitlines()) == 1


@pytest.mark.parametrize("value", ["-1", "abc", "9" * 5000, "0x10"])
def test_a_bad_seed_is_bad_input_said_in_a_short_line(
    value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["migrate", "--seed", value]) == 2
    err = capsys.readouterr().err
    assert err.startswith("fsaops: error: argument --seed: expected a non-negative integer")
    assert len(err.splitlines()) == 1 and len(err) < 200


# -- what plugin code prints, changes or leaves behind ------------------------------------------


def _migrate_with(tmp_path: Path, name: str, code: str) -> subprocess.CompletedProcess[str]:
    """``fsaops migrate --json`` of 8 pages of plugin ``name``, whose module is ``code``."""
    env = install(tmp_path, name, code)
    return fsaops("migrate", _scenario(tmp_path, name), "--json", env=env)


def test_what_a_plugin_prints_never_reaches_the_json_report(tmp_path: Path) -> None:
    body = (
        "print('printed at import')\nos.write(1, b'written to descriptor 1 at import\\n')\n"
        "def mp(newpage, page):\n    print('printed by migratepage')\n"
        "    return migrate_page(newpage, page)\n"
    )
    proc = _migrate_with(tmp_path, "noisy", _migratepage_plugin("noisy", body))
    assert proc.returncode == 0, proc.stderr
    report = one_json_object(proc, "ok")
    assert report["by_aops"]["noisy_aops"]["moved"] == 8
    assert "printed at import" in proc.stderr
    assert "written to descriptor 1" in proc.stderr
    assert "printed by migratepage" in proc.stderr


def test_a_plugin_that_empties_sys_path_does_not_take_the_others_down(tmp_path: Path) -> None:
    env = install(tmp_path, "aaa", HEADER + "import sys\nsys.path.clear()\n" + _table("aaa"))
    proc = fsaops(
        "config", "check", CONFIGS_SMALL, "--plugins", "aaa,ext2,ext3,xfs,swap,xfs_buftarg", env=env
    )
    assert proc.returncode == 0, proc.stderr


def test_threads_a_plugin_leaves_behind_do_not_hold_fsaops(tmp_path: Path) -> None:
    code = (
        HEADER + "threading.Thread(target=time.sleep, args=(3600,)).start()\n"
        "def fail():\n    time.sleep(0.1)\n    raise ValueError('thread failed')\n"
        "threading.Thread(target=fail, daemon=True).start()\n"
        "def mp(newpage, page):\n    time.sleep(0.05)\n    return migrate_page(newpage, page)\n"
        + _table("threads", migratepage="mp")
    )
    env = install(tmp_path, "threads", code)
    proc = fsaops("migrate", _scenario(tmp_path, "threads"), "--json", env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    one_json_object(proc, "ok")
    assert "Traceback" not in proc.stderr
    assert "ValueError: thread failed" in proc.stderr


@pytest.mark.parametrize("flag", ["--json", "--no-progress"])
def test_a_thread_writing_to_descriptor_1_never_reaches_the_output(
    tmp_path: Path, flag: str
) -> None:
    """A plugin's thread that writes to descriptor 1 for ever: its words came after the report.

    Descriptor 1 was pointed back at standard output once the report was
    written, before the process ended: what the thread wrote then followed
    the JSON report, which no longer parsed, under exit status 0.
    """
    code = (
        HEADER + "def chatter():\n    while True:\n        os.write(1, b'<chatter>')\n"
        "def mp(newpage, page):\n"
        "    if not hasattr(mp, 'started'):\n"
        "        mp.started = threading.Thread(target=chatter, daemon=True)\n"
        "        mp.started.start()\n"
        "    return migrate_page(newpage, page)\n" + _table("chatter", migratepage="mp")
    )
    env = install(tmp_path, "chatter", code)
    for _ in range(5):
        proc = fsaops("migrate", _scenario(tmp_path, "chatter"), flag, env=env, timeout=60)
        assert proc.returncode == 0, proc.stderr[-500:]
        assert "<chatter>" in proc.stderr
        assert "<chatter>" not in proc.stdout
        if flag == "--json":
            one_json_object(proc, "ok")


def test_the_probe_imports_no_unselected_plugin(tmp_path: Path) -> None:
    marker = tmp_path / "imported"
    code = f"open({str(marker)!r}, 'w').close()\nraise ImportError('never selected')\n"
    env = install(tmp_path, "unselected", code)
    proc = fsaops(
        "migrate", CONFIGS_SMALL, "--json", "--plugins", "ext2,ext3,xfs,swap,xfs_buftarg", env=env
    )
    assert proc.returncode == 0, proc.stderr
    proc = fsaops("plugins", env={**env, "FSAOPS_PLUGINS": "ext2"})
    assert proc.returncode == 0, proc.stderr
    assert not marker.exists()


def test_too_little_memory_is_one_line(tmp_path: Path) -> None:
    scenario = tmp_path / "big.toml"
    scenario.write_text('[kernel]\nnode_memory = "1GiB"\n', encoding="utf-8")
    proc = fsaops("migrate", scenario, "--json", memory=1 << 30)
    one_error_line(proc, 2, "out of memory")
    one_json_object(proc, "bad input")


def test_config_check_and_the_run_agree_on_an_address_space_limit(tmp_path: Path) -> None:
    """Many files under ``ulimit -v``: both refuse, in one line, before the run can run out.

    Running out of memory inside the run could leave Python 3.11 retrying an
    allocation for ever, deaf to ``SIGTERM``; the files' objects and the
    devices' reserved maps were missing from the estimate.
    """
    scenario = tmp_path / "files.toml"
    scenario.write_text('[plugins]\nload = ["ext2"]\n[[mount]]\nfs = "ext2"\nfiles = 32768\n')
    check = fsaops("config", "check", scenario, memory=400 << 20)
    run = fsaops("migrate", scenario, "--json", memory=400 << 20)
    for proc in (check, run):
        line = one_error_line(proc, 2, "out of memory: the run maps about")
        assert "(ulimit -v)" in line
    one_json_object(run, "bad input")


@pytest.mark.parametrize("said", ["can't allocate lock", "can't start new thread"])
def test_threading_out_of_memory_is_out_of_memory(
    said: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``threading`` says it ran out of memory with a ``RuntimeError``: not a kernel bug."""
    import fsaops.scenario

    def no_memory(*args: object, **kwargs: object) -> None:
        raise RuntimeError(said)

    monkeypatch.setattr(fsaops.scenario, "run_plan", no_memory)
    assert main(["migrate", "--json", "--plugins", "ext2,swap"]) == 2
    out = json.loads(capsys.readouterr().out)
    assert out["status"] == "bad input"
    assert out["error"].startswith("out of memory: ")


def test_a_plugin_that_changes_the_environment_changes_nothing_of_the_run(
    tmp_path: Path,
) -> None:
    """The selection and the time limit are read before any plugin is imported."""
    code = (
        HEADER + "import os\nos.environ['FSAOPS_PLUGINS'] = 'nothing_of_the_sort'\n"
        "os.environ['FSAOPS_PLUGIN_TIMEOUT'] = 'abc'\n" + _table("aaa")
    )
    env = install(tmp_path, "aaa", code)
    proc = fsaops(
        "migrate",
        CONFIGS_SMALL,
        "--json",
        env={**env, "FSAOPS_PLUGINS": "aaa,ext2,ext3,xfs,swap,xfs_buftarg"},
    )
    assert proc.returncode == 0, proc.stderr
    one_json_object(proc, "ok")


def test_an_output_encoding_that_cannot_say_everything(tmp_path: Path) -> None:
    """An ASCII terminal gets the report with what it can show, and the error lines too."""
    ascii_only = {"PYTHONIOENCODING": "ascii"}
    proc = fsaops("migrate", CONFIGS_SMALL, env=ascii_only)
    assert proc.returncode == 0, proc.stderr
    assert "OK: every page is where the engine says, nothing was lost" in proc.stdout
    proc = fsaops("plugins", env=ascii_only)
    assert proc.returncode == 0, proc.stderr
    proc = fsaops("migrate", "--plugins", "caf\u00e9", env=ascii_only)
    one_error_line(proc, 2, "caf\\xe9", "not installed")


def test_broken_metadata_of_another_distribution_is_not_fsaopss_business(tmp_path: Path) -> None:
    info = tmp_path / "other-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: other\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[console_scripts]\nno equals sign here\n")
    proc = fsaops("config", "check", CONFIGS_SMALL, env={"PYTHONPATH": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr
    (info / "entry_points.txt").write_text("[fsaops]\nno equals sign here\n")
    proc = fsaops("config", "check", CONFIGS_SMALL, env={"PYTHONPATH": str(tmp_path)})
    one_error_line(proc, 2, "entry points of distribution other cannot be read")


def test_a_hook_that_allocates_without_end_runs_out_of_memory_in_the_probe(
    tmp_path: Path,
) -> None:
    """An endless mapping handed to FileSystemType grows in the probe's child, which is limited."""
    code = HEADER + (
        "import collections.abc\n"
        "T = AddressSpaceOperations(name='t')\n"
        "class Endless(collections.abc.Mapping):\n"
        "    def __iter__(self):\n        return (str(i) for i in itertools.count())\n"
        "    def __len__(self):\n        return 1\n"
        "    def __getitem__(self, key):\n        return T\n"
        "@fsaops.hookimpl\ndef fsaops_filesystem_types():\n"
        "    return [FileSystemType(name='e', modes=Endless())]\n"
    )
    env = install(tmp_path, "greedy", code)
    proc = fsaops("plugins", "--plugins", "greedy", "--json", env=env, memory=1 << 30)
    one_error_line(proc, 2, "greedy-dist[greedy]", "fsaops_filesystem_types() raised MemoryError")
    one_json_object(proc, "bad input")


def test_an_exception_nobody_can_catch_is_one_warning_line(tmp_path: Path) -> None:
    """A plugin object whose __del__ raises: Python reports it; fsaops says it in one line."""
    code = (
        HEADER + "class Bad:\n    def __del__(self):\n        raise ValueError('from __del__')\n"
        "@fsaops.hookimpl\ndef fsaops_filesystem_types():\n    Bad()\n    return []\n"
    )
    env = install(tmp_path, "dels", code)
    proc = fsaops(
        "config",
        "check",
        CONFIGS_SMALL,
        "--plugins",
        "dels,ext2,ext3,xfs,swap,xfs_buftarg",
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "fsaops: warning: ignored ValueError: from __del__" in proc.stderr


def test_a_migratepage_stuck_in_a_regular_expression_is_ended_by_the_time_limit(
    tmp_path: Path,
) -> None:
    """C code that checks for signals (the regular expression engine) is interrupted too."""
    code = (
        HEADER + "import re\ndef mp(newpage, page):\n"
        "    re.match(r'(a+)+$', 'a' * 60 + 'b')\n    return 0\n"
        + _table("regex", migratepage="mp")
    )
    env = install(tmp_path, "regex", code)
    proc = fsaops("migrate", _scenario(tmp_path, "regex"), "--timeout", "1", "--json", env=env)
    one_error_line(proc, 1, "time limit of 1 s while migrating the page at pfn", "regex_aops")
    one_json_object(proc, "timeout")


def test_a_run_told_to_stop_is_not_told_again_while_it_cleans_up(tmp_path: Path) -> None:
    """The time limit's next look comes while the run unwinds: it is not raised a second time.

    Before, each look after the time limit raised the timeout again, even while the first one
    was still on its way out: a look that came during cleanup (a ``finally`` of plugin code,
    the engine's own, a thread joined on a busy machine) cut that cleanup short, and the second
    timeout, raised outside ``migrate_pages``, lost the page the run was migrating.
    """
    done = tmp_path / "cleaned up"
    code = (
        HEADER + "import signal\ndef mp(newpage, page):\n"
        "    try:\n        time.sleep(3600)\n    finally:\n"
        "        signal.raise_signal(signal.SIGALRM)  # the time limit's next look, now\n"
        f"        open({str(done)!r}, 'w').close()\n" + _table("tidy", migratepage="mp")
    )
    env = install(tmp_path, "tidy", code)
    proc = fsaops("migrate", _scenario(tmp_path, "tidy"), "--timeout", "1", "--json", env=env)
    one_error_line(proc, 1, "time limit of 1 s while migrating the page at pfn", "tidy_aops")
    one_json_object(proc, "timeout")
    assert done.exists(), "the cleanup of plugin code was cut short"


def test_a_run_that_took_the_alarm_is_not_told_again_while_it_cleans_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Plugin code took ``SIGALRM``: the watchdog thread raises the timeout in the run, once.

    Before, it raised it again at each look while the run was still unwinding from the first.
    """
    import signal

    from fsaops import scenario
    from fsaops.errors import RunTimeout
    from fsaops.plugins import Registry

    looks: list[float] = []
    real_wait = scenario._wait

    def counted(stop: object, seconds: float, keep: Callable[[], None]) -> bool:
        looks.append(seconds)
        return real_wait(stop, seconds, keep)  # type: ignore[arg-type]

    monkeypatch.setattr(scenario, "_wait", counted)
    cleaned: list[bool] = []
    registry = Registry(plugins=(), filesystems={}, owners={})

    def the_run() -> None:
        with scenario._time_limit(0.5, registry):
            try:  # the first timeout comes through the watchdog, or the signal if sooner
                signal.signal(signal.SIGALRM, signal.SIG_IGN)  # as plugin code may
                while True:
                    time.sleep(0.01)
            finally:  # cleanup that outlasts the watchdog's next look
                seen = len(looks)
                bound = time.monotonic() + 60  # bounds a hang, asserts nothing
                while len(looks) < seen + 2 and time.monotonic() < bound:
                    time.sleep(0.01)
                cleaned.append(len(looks) >= seen + 2)

    with pytest.raises(RunTimeout) as info:
        the_run()
    assert cleaned == [True]
    assert str(info.value).startswith("timeout: the run went past its time limit of 0.5 s")


def test_a_time_limit_due_before_the_run_starts_leaves_nothing_behind() -> None:
    """Due while the watchdog thread is being started (a tiny limit, a busy machine).

    Before, the timeout raised there skipped the cleanup: the watchdog thread ran on and the
    handler stayed, raising the timeout again in whatever the process did next.
    """
    script = (
        "import signal, threading, time, types\n"
        "from fsaops import scenario\n"
        "from fsaops.errors import RunTimeout\n"
        "from fsaops.plugins import Registry\n"
        "class Thread(threading.Thread):\n"
        "    def start(self):\n"
        "        super().start()\n"
        "        time.sleep(0.01)  # the limit passes here\n"
        "        signal.raise_signal(signal.SIGALRM)  # and the watchdog's look comes\n"
        "scenario.threading = types.SimpleNamespace(\n"
        "    Thread=Thread, Event=threading.Event, Lock=threading.Lock,\n"
        "    current_thread=threading.current_thread, main_thread=threading.main_thread,\n"
        "    get_ident=threading.get_ident)\n"
        "before = signal.getsignal(signal.SIGALRM)\n"
        "try:\n"
        "    with scenario._time_limit(0.001, Registry(plugins=(), filesystems={}, owners={})):\n"
        "        pass\n"
        "except RunTimeout:\n"
        "    print('timeout')\n"
        "time.sleep(1.2)  # two of the watchdog's looks, had it run on\n"
        "print(signal.getsignal(signal.SIGALRM) is before,\n"
        "      [t.name for t in threading.enumerate() if t.name == 'fsaops-watchdog'])\n"
    )
    proc = run([sys.executable, "-c", script], timeout=60)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split("\n")[:2] == ["timeout", "True []"]


# -- plugin code that ends the process, moves the working folder, or breaks a page's fields ----

OS_CALLS = {
    "os._exit in migratepage": (
        "def mp(newpage, page):\n    os._exit(0)\n",
        "migratepage of table caller_aops raised ProcessEnded",
    ),
    "os._exit through posix": (
        "import posix\ndef mp(newpage, page):\n    posix._exit(0)\n",
        "caller.mp",
    ),
    "os._exit bound at import": (
        "from os import _exit\ndef mp(newpage, page):\n    _exit(0)\n",
        "caller.mp",
    ),
    "os._exit caught by the plugin": (
        "def mp(newpage, page):\n    try:\n        os._exit(0)\n    except BaseException:\n"
        "        pass\n    return migrate_page(newpage, page)\n",
        "plugin caller-dist[caller] (caller.mp) called os._exit(0) during the run",
    ),
    "os._exit from a thread of the plugin": (
        "def mp(newpage, page):\n    t = threading.Thread(target=os._exit, args=(0,))\n"
        "    t.start()\n    t.join()\n    return migrate_page(newpage, page)\n",
        "code in thread 'Thread-",
    ),
    "os.execv, which would replace fsaops": (
        "def mp(newpage, page):\n    os.execv('/bin/true', ['true'])\n",
        "os.execv('/bin/true', ['true']) was called",
    ),
    "os.execl, through execv": (
        "def mp(newpage, page):\n    os.execl('/bin/true', 'true')\n",
        "os.execv('/bin/true', ('true',)) was called",
    ),
    "os.fork in migratepage": (
        "def mp(newpage, page):\n    os.fork()\n    return migrate_page(newpage, page)\n",
        "migratepage of table caller_aops raised ProcessEnded: os.fork() was called on pfn",
    ),
    "os.fork caught by the plugin": (
        "def mp(newpage, page):\n    try:\n        os.fork()\n    except BaseException:\n"
        "        pass\n    return migrate_page(newpage, page)\n",
        "plugin caller-dist[caller] (caller.mp) called os.fork() during the run",
    ),
    "os.forkpty": (
        "def mp(newpage, page):\n    os.forkpty()\n    return migrate_page(newpage, page)\n",
        "os.forkpty() was called",
    ),
    "os.fork through multiprocessing": (
        "import multiprocessing\ndef mp(newpage, page):\n"
        "    child = multiprocessing.get_context('fork').Process(target=print)\n"
        "    child.start()\n    child.join()\n    return migrate_page(newpage, page)\n",
        "os.fork() was called",
    ),
}


@pytest.mark.parametrize("case", sorted(OS_CALLS))
def test_plugin_code_that_would_end_replace_or_fork_fsaops_fails_the_run(
    tmp_path: Path, case: str
) -> None:
    """``os._exit(0)`` or ``exec`` ended fsaops with status 0 and no report at all; a fork
    went on with the run in a second process, which printed a second report."""
    body, words = OS_CALLS[case]
    proc = _migrate_with(tmp_path, "caller", _migratepage_plugin("caller", body))
    does = "replace" if "exec" in case else "fork" if "fork" in case else "end"
    one_error_line(proc, 1, f"plugin code may not {does} fsaops", words)
    one_json_object(proc, "kernel bug")


def test_a_plugin_may_still_run_a_program(tmp_path: Path) -> None:
    """``subprocess`` starts a new program without copying fsaops: that is no fork of the run."""
    code = (
        HEADER + "import subprocess\ndef mp(newpage, page):\n"
        "    subprocess.run([sys.executable, '-c', 'pass'], check=True, preexec_fn=os.getpid)\n"
        "    return migrate_page(newpage, page)\n" + _table("runner", migratepage="mp")
    )
    proc = _migrate_with(tmp_path, "runner", code)
    assert proc.returncode == 0, proc.stderr
    assert one_json_object(proc, "ok")["by_aops"]["runner_aops"]["moved"] == 8


WRONG_RETURNS = {
    "writepage returns None": (
        "def wp(page, wbc):\n    nobh_writepage(page, wbc)\n",
        {"writepage": "wp"},
        "writepage of table wrong_aops (wrong.wp) returned None (a missing return?)",
    ),
    "writepage returns a string": (
        "def wp(page, wbc):\n    nobh_writepage(page, wbc)\n    return 'done'\n",
        {"writepage": "wp"},
        "writepage of table wrong_aops (wrong.wp) returned 'done'",
    ),
    "writepage returns an errno C cannot have": (
        "def wp(page, wbc):\n    nobh_writepage(page, wbc)\n    return -(10 ** 5000)\n",
        {"writepage": "wp"},
        "returned <int of 16,610 bits>",
    ),
    "readpage returns a float": (
        "def rp(page):\n    mpage_readpage(page)\n    return 0.0\n",
        {"readpage": "rp"},
        "readpage of table wrong_aops (wrong.rp) returned 0.0",
    ),
}


@pytest.mark.parametrize("case", sorted(WRONG_RETURNS))
def test_a_table_member_returning_what_no_caller_can_take_is_named(
    tmp_path: Path, case: str
) -> None:
    """Before: ``the command failed: TypeError: '<' not supported``, naming nobody."""
    body, members, words = WRONG_RETURNS[case]
    env = install(tmp_path, "wrong", HEADER + body + _table("wrong", **members))
    scenario = _scenario(tmp_path, "wrong", "[workload]\ndirty = 1.0\n")
    proc = fsaops("migrate", scenario, "--json", env=env)
    one_error_line(proc, 1, "the run failed:", words, "not an int its callers can take")
    one_json_object(proc, "kernel bug")


@pytest.mark.parametrize(
    ("rc", "taken"),
    [
        (0, 0),
        (-4095, -4095),
        (0x80000, 0x80000),
        ((1 << 31) - 1, (1 << 31) - 1),
        (True, 1),
        (False, 0),
        (-4096, None),
        (1 << 31, None),
        (None, None),
        (1.0, None),
        ("0", None),
    ],
)
def test_what_a_member_may_return_is_what_c_callers_could_take(
    rc: object, taken: int | None
) -> None:
    from fsaops import AddressSpaceOperations
    from fsaops.aops import returned
    from fsaops.errors import PluginFault

    table = AddressSpaceOperations(name="t_aops", writepage=lambda page, wbc: 0)
    if taken is not None:
        assert returned(table, "writepage", rc) == taken
        assert type(returned(table, "writepage", rc)) is int
    else:
        with pytest.raises(PluginFault, match=r"writepage of table t_aops \(.*<lambda>\) returned"):
            returned(table, "writepage", rc)


def test_a_migratepage_returning_a_number_no_errno_can_be_fails_its_pages(tmp_path: Path) -> None:
    """The engine's own check: ``-EIO`` and the reason, not a ValueError writing the number."""
    code = _migratepage_plugin("huge", "def mp(newpage, page):\n    return -(10 ** 5000)\n")
    proc = _migrate_with(tmp_path, "huge", code)
    assert proc.returncode == 0, proc.stderr
    table = one_json_object(proc, "ok")["by_aops"]["huge_aops"]
    assert table["failed"] == 8
    assert table["errors"] == {"EIO": 8}
    assert table["reasons"] == {
        "migratepage returned <int of 16,610 bits>, not 0 or a negative errno": 8
    }


def test_os_exit_from_writepage_names_the_plugin(tmp_path: Path) -> None:
    code = HEADER + "def wp(page, wbc):\n    os._exit(0)\n" + _table("wexit", writepage="wp")
    env = install(tmp_path, "wexit", code)
    proc = fsaops(
        "migrate", _scenario(tmp_path, "wexit", "[workload]\ndirty = 1.0\n"), "--json", env=env
    )
    one_error_line(proc, 1, "plugin wexit-dist[wexit] called os._exit(0) in wexit.wp")
    one_json_object(proc, "kernel bug")


def test_os_exit_in_the_probe_still_ends_only_the_probe(tmp_path: Path) -> None:
    """The probe's child is a fork of fsaops: there ``os._exit`` is the real one."""
    env = install(tmp_path, "quitter", HEADER + "os._exit(0)\n" + _table("quitter"))
    proc = fsaops("migrate", "--plugins", "quitter,ext2,swap", "--json", env=env)
    one_error_line(proc, 2, "quitter-dist[quitter]", "its import ended the process")


def test_a_plugin_that_changes_the_working_folder_does_not_move_the_html_page(
    tmp_path: Path,
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    code = (
        HEADER + f"def mp(newpage, page):\n    os.chdir({str(elsewhere)!r})\n"
        "    return migrate_page(newpage, page)\n" + _table("mover", migratepage="mp")
    )
    env = install(tmp_path, "mover", code)
    proc = run(
        [
            sys.executable,
            "-m",
            "fsaops",
            "migrate",
            _scenario(tmp_path, "mover"),
            "--html",
            "page.html",
        ],
        env=env,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "page.html").read_text().startswith("<!DOCTYPE html>")
    assert not (elsewhere / "page.html").exists()


BROKEN_FIELDS = {
    "flags set to None": ("newpage.flags = None", "flags is None, not an int"),
    "the old page's flags set to a string": ("page.flags = 'x'", "flags is a str, not an int"),
    "an lru link set to None": ("newpage.lru_prev = None", "lru_prev is None, not a list entry"),
    "the mapping set to a number": (
        "newpage.mapping = 42",
        "mapping is an int, not an address space",
    ),
    "flags deleted": ("del newpage.flags", "flags is missing"),
}


def _breaker(tmp_path: Path, statement: str) -> dict[str, str]:
    """Install ``breaker``, whose ``migratepage`` moves the page and then runs ``statement``."""
    code = (
        HEADER + "def mp(newpage, page):\n    rc = migrate_page(newpage, page)\n"
        f"    {statement}\n    return rc\n" + _table("breaker", migratepage="mp")
    )
    return install(tmp_path, "breaker", code)


@pytest.mark.parametrize("case", sorted(BROKEN_FIELDS))
def test_page_fields_broken_by_plugin_code_are_named(tmp_path: Path, case: str) -> None:
    """The engine fails far from the plugin (a TypeError): the line names the page and field."""
    statement, words = BROKEN_FIELDS[case]
    env = _breaker(tmp_path, statement)
    proc = fsaops("migrate", _scenario(tmp_path, "breaker"), "--json", env=env)
    line = one_error_line(proc, 1, "the run failed:", "plugin code left page fields", words)
    assert "pfn" in line
    one_json_object(proc, "kernel bug")


@pytest.mark.parametrize("where", ["-3", "inode.blocks[lo] + 10**6"])
def test_a_block_map_damaged_by_plugin_code_is_a_request_beyond_the_device(
    tmp_path: Path, where: str
) -> None:
    """Before, a negative block number wrote over the device's last blocks without a word."""
    code = (
        HEADER + "def mp(newpage, page):\n    rc = migrate_page(newpage, page)\n"
        "    inode = newpage.mapping.host\n"
        "    lo = newpage.index * (4096 // inode.i_sb.s_blocksize)\n"
        f"    inode.blocks[lo] = {where}\n    return rc\n" + _table("mapper", migratepage="mp")
    )
    env = install(tmp_path, "mapper", code)
    proc = fsaops(
        "migrate", _scenario(tmp_path, "mapper", "[workload]\ndirty = 1.0\n"), "--json", env=env
    )
    one_error_line(proc, 1, "kernel BUG: attempt to access beyond end of device", "write of")
    one_json_object(proc, "kernel bug")


@pytest.mark.parametrize("case", ["flags set to None", "the mapping set to a number"])
def test_the_explorer_names_page_fields_broken_by_plugin_code(tmp_path: Path, case: str) -> None:
    statement, words = BROKEN_FIELDS[case]
    env = _breaker(tmp_path, statement)
    problems = _explore_problems(env, "breaker")
    assert any("plugin code left page fields" in p and words in p for p in problems), problems


def _explore_problems(env: dict[str, str], fs: str) -> list[str]:
    """``fsaops explore`` of ``fs`` (plugin ``fs``) against a pin: exit 1, and every problem."""
    proc = fsaops(
        "explore", "--plugins", f"{fs},swap", "--fs", fs, "--tasks", "pin", "--json", env=env
    )
    assert proc.returncode == 1, proc.stderr
    result = json.loads(proc.stdout)
    return [str(p) for failure in result["failures"] for p in failure["problems"]]


@pytest.mark.parametrize(
    ("call", "rule"),
    [("os._exit(0)", "may not end fsaops"), ("os.fork()", "may not fork fsaops")],
)
def test_the_explorer_names_plugin_code_that_ends_or_forks_a_schedule(
    tmp_path: Path, call: str, rule: str
) -> None:
    """Before, a schedule whose plugin called ``os._exit`` "died without an answer"."""
    body = (
        f"def mp(newpage, page):\n    try:\n        {call}\n    except BaseException:\n"
        "        pass\n    return migrate_page(newpage, page)\n"
    )
    env = install(tmp_path, "quitter", _migratepage_plugin("quitter", body))
    problems = _explore_problems(env, "quitter")
    assert any(f"quitter.mp called {call}" in p and rule in p for p in problems), problems


def test_an_exit_function_of_plugin_code_cannot_change_the_exit_status(tmp_path: Path) -> None:
    """``atexit.register(lambda: os._exit(0))`` made a run whose data was lost exit 0."""
    body = (
        "import atexit\natexit.register(lambda: os._exit(0))\n"
        "def mp(newpage, page):\n    rc = migrate_page(newpage, page)\n"
        "    if rc == 0 and newpage.index == 3:\n        newpage.data[:8] = bytes(8)\n"
        "    return rc\n"
    )
    proc = _migrate_with(tmp_path, "atexiter", _migratepage_plugin("atexiter", body))
    assert proc.returncode == 1, proc.stderr
    one_json_object(proc, "data lost")
    assert "Traceback" not in proc.stderr
    assert "os._exit(0) was called" in proc.stderr


def test_what_a_plugin_prints_at_exit_never_follows_the_json_report(tmp_path: Path) -> None:
    code = (
        HEADER + "import atexit\n"
        "atexit.register(lambda: (print('printed at exit'), os.write(1, b'fd 1 at exit\\n')))\n"
        + _table("exitprint")
    )
    proc = _migrate_with(tmp_path, "exitprint", code)
    assert proc.returncode == 0, proc.stderr
    one_json_object(proc, "ok")
    assert "printed at exit" in proc.stderr
    assert "fd 1 at exit" in proc.stderr


@pytest.mark.parametrize("upto", [256, 4096])
def test_plugin_code_that_closes_descriptors_never_gets_the_report(
    tmp_path: Path, upto: int
) -> None:
    """``os.closerange(3, N)`` then a file of its own: the report went into that file, exit 0."""
    log = tmp_path / "plugin.log"
    body = (
        "def mp(newpage, page):\n"
        "    if not hasattr(mp, 'f'):\n"
        f"        os.closerange(3, {upto})\n"
        f"        mp.f = open({str(log)!r}, 'w')\n"
        "    return migrate_page(newpage, page)\n"
    )
    proc = _migrate_with(tmp_path, "closer", _migratepage_plugin("closer", body))
    if upto == 256:  # below where fsaops keeps its standard output
        assert proc.returncode == 0, proc.stderr
        one_json_object(proc, "ok")
    else:
        assert (proc.returncode, proc.stdout) == (1, ""), proc.stderr
        assert "plugin code closed the descriptor fsaops writes its output to" in proc.stderr
    assert '"schema"' not in log.read_text()


@pytest.mark.parametrize(
    "replace",
    [
        "sys.stderr = io.StringIO()",
        "sys.stderr.close()",
        "class Stuck:\n"
        "        def write(self, text):\n            time.sleep(3600)\n"
        "        def flush(self):\n            time.sleep(3600)\n"
        "    sys.stderr = Stuck()",
    ],
    ids=["a StringIO", "closed", "one that blocks"],
)
def test_the_error_line_reaches_standard_error_whatever_plugin_code_made_of_sys_stderr(
    tmp_path: Path, replace: str
) -> None:
    """The line went into plugin code's StringIO, was dropped, or hung the process for good."""
    body = f"import io, sys, time\ndef mp(newpage, page):\n    {replace}\n    raise SystemExit(0)\n"
    proc = _migrate_with(tmp_path, "stderrfs", _migratepage_plugin("stderrfs", body))
    assert proc.returncode == 1, proc.stderr
    one_json_object(proc, "kernel bug")
    assert proc.stderr.startswith("fsaops: error: the run failed: migratepage of table stderrfs")


def test_an_exit_function_that_never_returns_cannot_keep_a_finished_run_alive(
    tmp_path: Path,
) -> None:
    """It hung for ever, with SIGTERM ignored: only SIGKILL ended it."""
    code = HEADER + "import atexit, time\natexit.register(time.sleep, 3600)\n" + _table("sleeper")
    proc = _migrate_with(tmp_path, "sleeper", code)
    assert proc.returncode == 0, proc.stderr
    one_json_object(proc, "ok")
    assert "the exit functions did not finish within 5 s; ending anyway" in proc.stderr


# -- buffers a table's code leaves wrong ------------------------------------------------------

BUFFERS = """\
import attrs, fsaops
from fsaops import buffer_migrate_page
from fsaops.page import PG
from fsaops_ext2 import EXT2, ext2_aops
{body}
TABLE = attrs.evolve(ext2_aops, name="{name}_aops", {members})
@fsaops.hookimpl
def fsaops_filesystem_types():
    return [attrs.evolve(EXT2, name="{name}", modes={{"default": TABLE}}, page_cache={{}})]
"""


def _buffers_run(
    tmp_path: Path, name: str, body: str, members: str, workload: str = ""
) -> subprocess.CompletedProcess[str]:
    """``fsaops migrate --json`` of 8 pages with buffers of plugin ``name``'s table."""
    env = install(tmp_path, name, BUFFERS.format(name=name, body=body, members=members))
    return fsaops("migrate", _scenario(tmp_path, name, workload), "--json", env=env)


RELEASEPAGE_LIES = {
    "leaves PG_private over private = 0": (
        "def rp(page, gfp):\n    page.private = 0\n    return 1\n",
        "has PG_private set but private 0, not a buffer head",
    ),
    "keeps the buffers and their reference": (
        "def rp(page, gfp):\n    return 1\n",
        "still has its buffers (PG_private)",
    ),
    "drops the reference and keeps the buffers": (
        "def rp(page, gfp):\n    page.count -= 1\n    return 1\n",
        "still has its buffers (PG_private)",
    ),
}


@pytest.mark.parametrize("case", sorted(RELEASEPAGE_LIES))
def test_a_releasepage_that_says_it_freed_buffers_it_did_not_free_is_named(
    tmp_path: Path, case: str
) -> None:
    """Before, the first failed later in the durability proof's writeback with
    ``AttributeError: 'int' object has no attribute 'b_state'``, naming nobody; the second left
    every page where it was behind the reason "an extra reference is held", with an OK; the
    third moved every page and leaked its buffers, pointing at the freed old page, with an OK.
    """
    body, left = RELEASEPAGE_LIES[case]
    proc = _buffers_run(tmp_path, "rel", body, "migratepage=None, releasepage=rp")
    one_error_line(
        proc,
        1,
        "releasepage of table rel_aops (rel.rp) returned 1, which says the buffers were freed, "
        "but pfn ",
        left,
    )
    one_json_object(proc, "kernel bug")


def test_a_page_a_migratepage_left_with_pg_private_and_no_buffers_names_its_table(
    tmp_path: Path,
) -> None:
    """The error comes later, from ext2's writepage of the dirty pages; the message names the
    pages and their table.  (Clean pages reach the invariant check, which names them too.)"""
    body = (
        "def mp(newpage, page):\n    rc = buffer_migrate_page(newpage, page)\n"
        "    newpage.private = 7\n    return rc\n"
    )
    proc = _buffers_run(tmp_path, "stray", body, "migratepage=mp", "[workload]\ndirty = 1.0\n")
    one_error_line(
        proc,
        1,
        "plugin code left page fields no kernel code could: pfn ",
        " (stray_aops): private is an int under PG_private, not a buffer head",
    )


@pytest.mark.parametrize("optimize", [[], ["-O"]], ids=["python", "python -O"])
def test_page_buffers_of_a_page_without_buffers_is_a_kernel_bug_even_under_python_o(
    tmp_path: Path, optimize: list[str]
) -> None:
    """The kernel's ``page_buffers()`` is ``BUG_ON(!PagePrivate(page))``.  It was an ``assert``:
    a migratepage asking for the new page's buffers failed its pages with EIO and an OK, and
    under ``python -O`` got ``None`` back and left every page busy, with an OK."""
    body = (
        "from fsaops.page import page_buffers\n"
        "def mp(newpage, page):\n    page_buffers(newpage)\n"
        "    return buffer_migrate_page(newpage, page)\n"
    )
    env = install(
        tmp_path, "nobufs", BUFFERS.format(name="nobufs", body=body, members="migratepage=mp")
    )
    scenario = _scenario(tmp_path, "nobufs", "[workload]\ndirty = 0.5\n")
    proc = run([sys.executable, *optimize, "-m", "fsaops", "migrate", scenario, "--json"], env=env)
    line = one_error_line(
        proc,
        1,
        "kernel BUG: page_buffers() of a page without buffers: <Page pfn=",
        "(in nobufs_aops's migratepage, migrating pfn ",
        "(plugin nobufs-dist[nobufs], in nobufs.mp)",
    )
    assert one_json_object(proc, "kernel bug")["error"] in line


def test_a_sync_page_is_called_by_every_sleep_on_a_page_and_what_it_raises_is_named(
    tmp_path: Path,
) -> None:
    """Without ``migratepage`` a dirty page is written out in pass 0 and the engine sleeps on
    its writeback in pass 1 (still in flight: slow I/O); each sleep on a page kicks the I/O
    through the table's ``sync_page``, as ``lock_page`` and ``wait_on_page_writeback`` do.
    Before, fsaops never called that member, so a broken one passed every run."""
    body = "def sp(page):\n    raise RuntimeError('sync_page broke')\n"
    members = "migratepage=None, sync_page=sp"
    slow_io = "[workload]\ndirty = 1.0\n[kernel]\nio_latency = 1000\n"
    proc = _buffers_run(tmp_path, "kick", body, members, slow_io)
    said = "plugin kick-dist[kick] raised RuntimeError: sync_page broke in kick.sp"
    one_error_line(proc, 1, said)
    one_json_object(proc, "kernel bug")


@pytest.mark.parametrize(
    ("body", "waits_for"),
    [
        ("def wp(page, wbc):\n    return 0\n", "page lock"),
        (
            "def wp(page, wbc):\n    page.flags |= PG.writeback\n    page.flags &= ~PG.locked\n"
            "    return 0\n",
            "page writeback",
        ),
    ],
    ids=["keeps the page locked", "writeback that no I/O ends"],
)
def test_a_deadlock_says_whose_page_it_waits_on(tmp_path: Path, body: str, waits_for: str) -> None:
    """A ``writepage`` that returns 0 without unlocking the page, or without I/O to end its
    writeback: the engine's next sleep on the page can never end."""
    dirty = "[workload]\ndirty = 1.0\n"
    proc = _buffers_run(tmp_path, "stuck", body, "migratepage=None, writepage=wp", dirty)
    one_error_line(
        proc, 1, "deadlock at tick ", f"waiting for {waits_for} of pfn ", "(a page of stuck_aops)"
    )
    one_json_object(proc, "kernel bug")


def test_a_recursion_limit_plugin_code_lowered_is_said_not_taken_for_fsaops_s_crash(
    tmp_path: Path,
) -> None:
    """The limit set at import is undone; set in ``migratepage``, fsaops's next call hits it."""
    code = _migratepage_plugin(
        "reclim",
        "import inspect\n"
        "def mp(newpage, page):\n"
        "    rc = migrate_page(newpage, page)\n"
        "    sys.setrecursionlimit(len(inspect.stack(0)) + 6)\n"
        "    return rc\n",
    )
    env = install(tmp_path, "reclim", code)
    proc = fsaops("migrate", _scenario(tmp_path, "reclim"), "--json", env=env)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    report = json.loads(proc.stdout)
    assert report["status"] == "kernel bug"
    assert re.search(
        r"RecursionError: .*; plugin code lowered the recursion limit to \d+ \(it was \d+\), "
        r"and fsaops's own code ran out of it$",
        report["error"],
    ), report["error"]


@pytest.mark.parametrize("command", ["migrate", "plugins"])
def test_a_plugin_selection_of_only_commas_is_one_line_exit_2(command: str) -> None:
    """``FSAOPS_PLUGINS=,,,`` is a list that lost its names, not the empty value (none)."""
    proc = fsaops(*command.split(), env={"FSAOPS_PLUGINS": ",,,"})
    one_error_line(proc, 2, "FSAOPS_PLUGINS is ',,,', which names no plugin")
    proc = fsaops(*command.split(), "--plugins", " , ")
    one_error_line(proc, 2, "--plugins is ' , ', which names no plugin")
