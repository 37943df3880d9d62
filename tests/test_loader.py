"""Finding, selecting, loading and checking plugins (DESIGN §4)."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest

import guarded
from fsaops.errors import FsaopsError
from fsaops.plugins import ENV_VAR, load_plugins, resolve_selection
from fsaops.testing.dist import write_dist_info

THIRDFS = """
import fsaops
from fsaops import AddressSpaceOperations, FileSystemType
from fsaops.buffer import nobh_commit_write, nobh_prepare_write, nobh_writepage, mpage_readpage


def thirdfs_migratepage(newpage, page):
    # Built from the exported helpers, as a kernel module's would be.
    if fsaops.migrate_page_remove_references(newpage, page, 2):
        return -11
    fsaops.migrate_page_copy(newpage, page)
    return 0


thirdfs_aops = AddressSpaceOperations(
    name="thirdfs_aops",
    readpage=mpage_readpage,
    writepage=nobh_writepage,
    prepare_write=nobh_prepare_write,
    commit_write=nobh_commit_write,
    migratepage=thirdfs_migratepage,
)


@fsaops.hookimpl
def fsaops_filesystem_types():
    return [FileSystemType(name="thirdfs", modes={"default": thirdfs_aops})]
"""

BROKEN_IMPORT = "raise ImportError('thirdfs needs libfoo')\n"

RUN = """
import json, sys
from fsaops.errors import FsaopsError
from fsaops.plugins import load_plugins
try:
    reg = load_plugins(strict={strict})
except FsaopsError as exc:
    print(json.dumps({{"error": str(exc), "type": type(exc).__name__,
                      "modules": sorted(m for m in sys.modules if m.split('.')[0] in {names})}}))
else:
    print(json.dumps({{
        "filesystems": sorted(reg.filesystems),
        "plugins": {{p.name: [p.label, p.status.value, p.error] for p in reg.plugins}},
        "modules": sorted(m for m in sys.modules if m.split('.')[0] in {names}),
    }}))
"""

WATCHED = [
    "thirdfs",
    "brokenfs",
    "fsaops_ext2",
    "fsaops_ext3",
    "fsaops_xfs",
    "fsaops_swap",
    "fsaops_xfs_buftarg",
]


def make_dist(site: Path, dist: str, entries: dict[str, str], modules: dict[str, str]) -> None:
    """Install a distribution into ``site`` the way pip would leave it: module + dist-info."""
    write_dist_info(site, dist, {"fsaops": entries}, modules=modules)


def load_in_subprocess(
    site: Path, *, env: dict[str, str] | None = None, strict: bool = True
) -> dict[str, object]:
    environ = {"PYTHONPATH": str(site), **(env or {})}
    code = RUN.format(strict=strict, names=repr(set(WATCHED)))
    proc = guarded.run([sys.executable, "-c", code], env=environ)
    assert proc.returncode == 0, proc.stderr
    result: dict[str, object] = json.loads(proc.stdout)
    return result


def test_a_third_party_plugin_is_found_with_no_change_to_the_core(tmp_path: Path) -> None:
    make_dist(tmp_path, "fsaops-thirdfs", {"thirdfs": "thirdfs"}, {"thirdfs": THIRDFS})
    out = load_in_subprocess(tmp_path)
    assert "thirdfs" in out["filesystems"]  # type: ignore[operator]
    plugins = out["plugins"]
    assert isinstance(plugins, dict)
    assert plugins["thirdfs"] == ["fsaops-thirdfs[thirdfs]", "loaded", None]


def test_a_third_party_migratepage_runs_in_the_engine(tmp_path: Path) -> None:
    make_dist(tmp_path, "fsaops-thirdfs", {"thirdfs": "thirdfs"}, {"thirdfs": THIRDFS})
    script = textwrap.dedent(
        """
        from fsaops import Kernel
        from fsaops.plugins import load_plugins
        from fsaops.fs import generic_file_write
        from fsaops.memory_hotplug import migrate_node
        from fsaops.debug import check_kernel
        k = Kernel(registry=load_plugins(cli="thirdfs"))
        inode = k.mount("thirdfs").new_inode()
        generic_file_write(inode, 0, b"x" * 8192)
        res = migrate_node(k, 0, 1)
        k.run_until_idle()
        t = res.stats.tables["thirdfs_aops"]
        print(t.moved, t.via, check_kernel(k))
        """
    )
    proc = guarded.run([sys.executable, "-c", script], env={"PYTHONPATH": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "2 {'migratepage': 2} []"


def test_a_plugin_that_fails_to_import_is_named(tmp_path: Path) -> None:
    make_dist(tmp_path, "brokenfs-dist", {"brokenfs": "brokenfs"}, {"brokenfs": BROKEN_IMPORT})
    out = load_in_subprocess(tmp_path)
    assert out["type"] == "PluginLoadError"
    assert "brokenfs-dist[brokenfs]" in str(out["error"])
    assert "libfoo" in str(out["error"])


def test_a_failing_plugin_does_not_take_the_others_down_silently(tmp_path: Path) -> None:
    make_dist(tmp_path, "brokenfs-dist", {"brokenfs": "brokenfs"}, {"brokenfs": BROKEN_IMPORT})
    out = load_in_subprocess(tmp_path, strict=False)
    plugins = out["plugins"]
    assert isinstance(plugins, dict)
    assert plugins["brokenfs"][1] == "failed"
    assert "libfoo" in plugins["brokenfs"][2]
    assert plugins["ext2"][1] == "loaded"
    assert "ext2" in out["filesystems"]  # type: ignore[operator]


def test_an_unselected_plugin_is_never_imported(tmp_path: Path) -> None:
    make_dist(tmp_path, "brokenfs-dist", {"brokenfs": "brokenfs"}, {"brokenfs": BROKEN_IMPORT})
    out = load_in_subprocess(tmp_path, env={ENV_VAR: "ext3"})
    assert out["filesystems"] == ["ext3"]
    modules = out["modules"]
    assert isinstance(modules, list)
    assert {m.split(".")[0] for m in modules} == {"fsaops_ext3"}, "only the selected plugin"


def test_an_empty_selection_loads_nothing(tmp_path: Path) -> None:
    out = load_in_subprocess(tmp_path, env={ENV_VAR: ""})
    assert out["filesystems"] == []
    assert out["modules"] == []


@pytest.mark.parametrize(
    ("code", "problem"),
    [
        (
            "@fsaops.hookimpl\ndef fsaops_filesystem_types():\n    return 'ext9'\n",
            "must return a sequence of FileSystemType",
        ),
        (
            "@fsaops.hookimpl\ndef fsaops_filesystem_types():\n    return [object()]\n",
            "not a FileSystemType",
        ),
        (
            "@fsaops.hookimpl\ndef fsaops_filesystem_types():\n"
            "    return [FileSystemType(name='badfs', modes={'default': 'not a table'})]\n",
            "not an AddressSpaceOperations",
        ),
        (
            "def mp(page):\n    return 0\n"
            "@fsaops.hookimpl\ndef fsaops_filesystem_types():\n"
            "    t = AddressSpaceOperations(name='bad_aops', migratepage=mp)\n"
            "    return [FileSystemType(name='badfs', modes={'default': t})]\n",
            "member migratepage takes (page); it is called with 2 argument(s)",
        ),
        (
            "@fsaops.hookimpl\ndef fsaops_filesystem_types():\n"
            "    t = AddressSpaceOperations(name='bad_aops', writepage=42)\n"
            "    return [FileSystemType(name='badfs', modes={'default': t})]\n",
            "member writepage is int, not a function",
        ),
        (
            "@fsaops.hookimpl\ndef fsaops_filesystem_types():\n    raise RuntimeError('oops')\n",
            "fsaops_filesystem_types() raised RuntimeError: oops",
        ),
        (
            "@fsaops.hookimpl\ndef fsaops_no_such_hook():\n    return 1\n",
            "unknown hook 'fsaops_no_such_hook'",
        ),
        (
            "@fsaops.hookimpl\ndef fsaops_filesystem_types():\n"
            "    t = AddressSpaceOperations(name='x_aops')\n"
            "    return [FileSystemType(name='badfs', modes={'a': t}, default_mode='b')]\n",
            "default mode 'b' is not one of its modes",
        ),
    ],
)
def test_a_malformed_plugin_gets_an_error_naming_it(
    tmp_path: Path, code: str, problem: str
) -> None:
    header = "import fsaops\nfrom fsaops import AddressSpaceOperations, FileSystemType\n"
    make_dist(tmp_path, "badfs-dist", {"badfs": "badfs"}, {"badfs": header + code})
    out = load_in_subprocess(tmp_path)
    assert out["type"] == "PluginValidationError", out
    assert "badfs-dist[badfs]" in str(out["error"])
    assert problem in str(out["error"])


def test_two_distributions_registering_one_name_is_an_error(tmp_path: Path) -> None:
    make_dist(tmp_path, "one-dist", {"samefs": "samefs_one"}, {"samefs_one": ""})
    make_dist(tmp_path, "two-dist", {"samefs": "samefs_two"}, {"samefs_two": ""})
    out = load_in_subprocess(tmp_path)
    assert out["type"] == "PluginSelectionError"
    assert "one-dist[samefs]" in str(out["error"])
    assert "two-dist[samefs]" in str(out["error"])


def test_selection_precedence() -> None:
    available = ["ext2", "ext3", "xfs"]
    assert resolve_selection(available, env={}) == (("ext2", "ext3", "xfs"), "installed")
    assert resolve_selection(available, env={}, config=["xfs"]) == (("xfs",), "[plugins] load")
    env = {ENV_VAR: "ext3, ext2"}
    assert resolve_selection(available, env=env, config=["xfs"]) == (
        ("ext3", "ext2"),
        ENV_VAR,
    )
    assert resolve_selection(available, cli="xfs", env=env, config=["ext2"]) == (
        ("xfs",),
        "--plugins",
    )
    assert resolve_selection(available, env={ENV_VAR: ""}, config=["xfs"]) == ((), ENV_VAR)
    assert resolve_selection(available, env={ENV_VAR: "  "}, config=["xfs"]) == ((), ENV_VAR)
    assert resolve_selection(available, cli="", env={}) == ((), "--plugins")


@pytest.mark.parametrize("value", [",", ",,,", " , ,", "\t,"])
@pytest.mark.parametrize("where", ["cli", "env"])
def test_a_selection_of_only_commas_is_an_error_not_none(value: str, where: str) -> None:
    """``FSAOPS_PLUGINS=,,,`` lost its names: it is not taken for an empty value (none)."""
    kwargs: dict[str, object] = {"env": {}, "config": ["xfs"]}
    if where == "cli":
        kwargs["cli"] = value
    else:
        kwargs["env"] = {ENV_VAR: value}
    with pytest.raises(FsaopsError) as info:
        resolve_selection(["ext2", "xfs"], **kwargs)  # type: ignore[arg-type]
    source = "--plugins" if where == "cli" else ENV_VAR
    assert f"{source} is {value!r}, which names no plugin" in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"cli": "ext9"}, "--plugins names plugin 'ext9', which is not installed"),
        ({"env": {ENV_VAR: "ext2,ext2"}}, "names plugin 'ext2' twice"),
        ({"config": ["nope"]}, "plugins.load[0]: plugin 'nope' is not installed"),
    ],
)
def test_unknown_or_repeated_names_are_errors(kwargs: dict[str, object], message: str) -> None:
    kwargs.setdefault("env", {})
    with pytest.raises(FsaopsError) as info:
        resolve_selection(["ext2", "ext3"], **kwargs)  # type: ignore[arg-type]
    assert message in str(info.value)
    assert "installed: ext2, ext3" in str(info.value) or "twice" in message


def test_migration_compiled_out_removes_every_migratepage() -> None:
    registry = load_plugins(env={}, migration=False)
    tables = list(registry.tables())
    assert tables
    assert all(table.migratepage is None for _, _, table in tables)
    assert load_plugins(env={}).aops("ext2").migratepage is not None


def test_a_plugin_whose_import_hangs_is_reported_not_waited_for(tmp_path: Path) -> None:
    slow = "import time\ntime.sleep(60)\n"
    make_dist(tmp_path, "slowfs-dist", {"slowfs": "slowfs"}, {"slowfs": slow})
    out = load_in_subprocess(tmp_path, env={"FSAOPS_PLUGIN_TIMEOUT": "0.5"})
    assert out["type"] == "PluginLoadError"
    assert "slowfs-dist[slowfs]" in str(out["error"])
    assert "did not finish within 0.5 s" in str(out["error"])


def test_a_plugin_raising_a_base_exception_on_import_is_reported(tmp_path: Path) -> None:
    make_dist(tmp_path, "exitfs-dist", {"exitfs": "exitfs"}, {"exitfs": "raise SystemExit(3)\n"})
    out = load_in_subprocess(tmp_path)
    assert out["type"] == "PluginLoadError"
    assert "exitfs-dist[exitfs]" in str(out["error"])


@pytest.mark.parametrize(
    ("selection", "first", "second"),
    [
        ("ext2,clashfs", "fsaops[ext2]", "clash-dist[clashfs]"),
        ("clashfs,ext2", "clash-dist[clashfs]", "fsaops[ext2]"),
    ],
)
def test_two_plugins_providing_one_filesystem_are_both_named(
    tmp_path: Path, selection: str, first: str, second: str
) -> None:
    """The one loaded first (the selection's order, not the alphabet's) keeps the name."""
    code = (
        "import fsaops\nfrom fsaops import AddressSpaceOperations, FileSystemType\n"
        "@fsaops.hookimpl\ndef fsaops_filesystem_types():\n"
        "    table = AddressSpaceOperations(name='x')\n"
        "    return [FileSystemType(name='ext2', modes={'default': table})]\n"
    )
    make_dist(tmp_path, "clash-dist", {"clashfs": "clashfs"}, {"clashfs": code})
    out = load_in_subprocess(tmp_path, env={ENV_VAR: selection})
    assert out["type"] == "PluginConflictError", out
    assert (
        f"filesystem 'ext2' is provided by two plugins: {first}, loaded first, and {second}"
        in str(out["error"])
    )
    listing = load_in_subprocess(tmp_path, env={ENV_VAR: selection}, strict=False)
    plugins = listing["plugins"]
    assert isinstance(plugins, dict)
    loaded = plugins["ext2"] if first == "fsaops[ext2]" else plugins["clashfs"]
    left_out = plugins["clashfs"] if first == "fsaops[ext2]" else plugins["ext2"]
    assert loaded[1] == "loaded"
    assert left_out[1] == "failed"
    assert first in left_out[2] and second in left_out[2]


def test_the_probe_is_skipped_for_plugins_already_imported(tmp_path: Path) -> None:
    """A module put in sys.modules (as the contract page's example does) is not probed."""
    script = textwrap.dedent(
        """
        import sys, types
        import fsaops
        from fsaops import AddressSpaceOperations, FileSystemType
        from fsaops.plugins import load_plugins
        module = types.ModuleType("inmemory")
        @fsaops.hookimpl
        def fsaops_filesystem_types():
            table = AddressSpaceOperations(name="m")
            return [FileSystemType(name="inmem", modes={"default": table})]
        module.fsaops_filesystem_types = fsaops_filesystem_types
        sys.modules["inmemory"] = module
        print(sorted(load_plugins(cli="inmemory").filesystems))
        """
    )
    make_dist(tmp_path, "inmemory-dist", {"inmemory": "inmemory"}, {})
    proc = guarded.run([sys.executable, "-c", script], env={"PYTHONPATH": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "['inmem']"


def test_a_plugin_that_fails_in_the_probe_is_never_imported_here(tmp_path: Path) -> None:
    """Its import ran once, in the probe's child process: not again in this process."""
    marker = tmp_path / "imports"
    code = (
        f"import os\nopen({str(marker)!r}, 'a').write(f'{{os.getpid()}}\\n')\n"
        "raise ImportError('no')\n"
    )
    make_dist(tmp_path, "once-dist", {"once": "once"}, {"once": code})
    out = load_in_subprocess(tmp_path, env={ENV_VAR: "once"})
    assert out["type"] == "PluginLoadError"
    assert len(marker.read_text().split()) == 1


@pytest.mark.parametrize("value", [0, -1, float("inf"), float("nan"), 3601, "abc"])
def test_a_bad_import_timeout_argument_is_refused(value: object) -> None:
    with pytest.raises(FsaopsError, match="import_timeout must be a positive number of seconds"):
        load_plugins(env={}, import_timeout=value)  # type: ignore[arg-type]


def test_messages_cut_a_long_name() -> None:
    with pytest.raises(FsaopsError) as info:
        resolve_selection(["ext2"], cli=["y" * 10_000], env={})
    assert len(str(info.value)) < 300
    assert "10,000 characters" in str(info.value)


def test_the_probe_of_a_process_with_threads_starts_a_new_interpreter(tmp_path: Path) -> None:
    """With another thread running it is not safe to fork: the probe's child is a new Python."""
    make_dist(tmp_path, "exitfs-dist", {"exitfs": "exitfs"}, {"exitfs": "import os\nos._exit(3)\n"})
    stuck = "import re\nre.match(r'(a+)+$', 'a' * 60 + 'b')\n"
    make_dist(tmp_path, "stuckfs-dist", {"stuckfs": "stuckfs"}, {"stuckfs": stuck})
    script = textwrap.dedent(
        """
        import threading, time
        from fsaops.plugins import _single_threaded, load_plugins
        threading.Thread(target=time.sleep, args=(60,), daemon=True).start()
        assert not _single_threaded()
        registry = load_plugins(cli="exitfs,stuckfs,ext2", strict=False, import_timeout=1)
        for plugin in registry.plugins:
            if plugin.status.value != "not loaded":
                print(plugin.name, plugin.status.value, plugin.error)
        """
    )
    proc = guarded.run([sys.executable, "-c", script], env={"PYTHONPATH": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr
    assert set(proc.stdout.splitlines()) == {
        "ext2 loaded None",
        "exitfs failed plugin exitfs-dist[exitfs] failed to load: its import ended the process "
        "(exit status 3)",
        "stuckfs failed plugin stuckfs-dist[stuckfs] failed to load: its import did not finish "
        "within 1 s (FSAOPS_PLUGIN_TIMEOUT)",
    }


@pytest.mark.parametrize("threads", [False, True], ids=["forked child", "new interpreter"])
def test_a_plugin_that_forks_at_import_is_refused_by_either_kind_of_probe_child(
    tmp_path: Path, threads: bool
) -> None:
    """The fork is refused, not made: no copy of the probe loads the plugins again.

    A probe child started as a new interpreter (this process has another
    thread, or an earlier child's reader is still alive) let the fork
    happen: the plugin's copy and the child each went on to the end of its
    import and said the plugin had no hook, where a forked child said it
    forked, and the copy outlived the probe.
    """
    marker = tmp_path / "after-fork"
    code = f"import os\nos.fork()\nopen({str(marker)!r}, 'a').write(f'{{os.getpid()}}\\n')\n"
    make_dist(tmp_path, "forker-dist", {"forker": "forker"}, {"forker": code})
    script = textwrap.dedent(
        f"""
        import threading, time
        from fsaops.plugins import _single_threaded, load_plugins
        from fsaops.process import guard_process
        guard_process()
        if {threads!r}:
            threading.Thread(target=time.sleep, args=(60,), daemon=True).start()
        assert _single_threaded() is not {threads!r}
        registry = load_plugins(cli="forker,ext2", strict=False, import_timeout=5)
        for plugin in registry.plugins:
            if plugin.name == "forker":
                print(plugin.status.value, plugin.error)
        """
    )
    proc = guarded.run([sys.executable, "-c", script], env={"PYTHONPATH": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == (
        "failed plugin forker-dist[forker] failed to load: ProcessEnded: os.fork() was called: "
        "plugin code may not fork fsaops"
    )
    assert not marker.exists()


def test_the_probe_forks_again_after_a_plugin_ended_its_child(tmp_path: Path) -> None:
    """The next round's child is forked: the last child's reader has ended before it starts.

    Before, whether the reader thread of the child a plugin had ended was still alive when
    the next round began (to Python, or to the system, which ends a thread a moment after
    Python is done with it) was up to the machine's load; when it was, that child was a new
    interpreter, which did not say what a forked one says of every plugin.
    """
    make_dist(tmp_path, "exitfs-dist", {"exitfs": "exitfs"}, {"exitfs": "import os\nos._exit(3)\n"})
    script = textwrap.dedent(
        """
        import time
        import fsaops.plugins as plugins
        spawned = []
        spawn = plugins._spawn
        def counted(job):
            spawned.append(job)
            return spawn(job)
        plugins._spawn = counted
        class Slow:  # a reader that finishes late, as on a busy machine
            def __init__(self, stream):
                self.stream = stream
            def __iter__(self):
                return iter(self.stream)
            def close(self):
                time.sleep(0.5)
                self.stream.close()
        child = plugins._Child.__init__
        def slow(self, pid, stream, popen=None):
            child(self, pid, Slow(stream), popen)
        plugins._Child.__init__ = slow
        registry = plugins.load_plugins(cli="exitfs,ext2", strict=False)
        statuses = {p.name: p.status.value for p in registry.plugins}
        print(len(spawned), statuses["exitfs"], statuses["ext2"])
        """
    )
    proc = guarded.run([sys.executable, "-c", script], env={"PYTHONPATH": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "0 failed loaded"


# Options of the interpreter: a probe child that is a new interpreter must load a plugin as a
# forked one, and this process, would.
RUN_WITH: dict[str, tuple[list[str], str, str]] = {
    "-O": (["-O"], "assert False, 'a check for development'", "loaded None"),
    "-X int_max_str_digits": (
        ["-X", "int_max_str_digits=0"],
        "DIGITS = str(10 ** 5000)",
        "loaded None",
    ),
}


@pytest.mark.parametrize("threads", [False, True], ids=["forked child", "new interpreter"])
@pytest.mark.parametrize("case", sorted(RUN_WITH))
def test_either_kind_of_probe_child_runs_as_this_interpreter(
    tmp_path: Path, case: str, threads: bool
) -> None:
    """Its options (``-O``, ``-X``, ...) hold in the probe's child, whichever kind it is.

    Before, a child started as a new interpreter ran with none of them: under ``python -O``
    a plugin's development ``assert`` failed it there, while a forked child loaded it.
    """
    options, line, expected = RUN_WITH[case]
    code = (
        "import fsaops\nfrom fsaops import AddressSpaceOperations, FileSystemType\n"
        f"{line}\n"
        "@fsaops.hookimpl\ndef fsaops_filesystem_types():\n"
        "    table = AddressSpaceOperations(name='opts')\n"
        "    return [FileSystemType(name='opts', modes={'default': table})]\n"
    )
    make_dist(tmp_path, "opts-dist", {"opts": "opts"}, {"opts": code})
    script = (
        "import threading, time\n"
        "from fsaops.plugins import _single_threaded, load_plugins\n"
        f"if {threads!r}:\n"
        "    threading.Thread(target=time.sleep, args=(60,), daemon=True).start()\n"
        f"assert _single_threaded() is not {threads!r}\n"
        "registry = load_plugins(cli='opts', strict=False)\n"
        "print(*[(p.status.value, p.error) for p in registry.plugins if p.name == 'opts'][0])\n"
    )
    proc = guarded.run([sys.executable, *options, "-c", script], env={"PYTHONPATH": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == expected


def test_a_hook_that_sleeps_is_reported_without_the_probe_too(tmp_path: Path) -> None:
    """A plugin imported already is not probed; its hook still runs against the time limit."""
    script = textwrap.dedent(
        """
        import sys, time, types
        import fsaops
        from fsaops.errors import PluginValidationError
        from fsaops.plugins import load_plugins
        module = types.ModuleType("sleeper")
        @fsaops.hookimpl
        def fsaops_filesystem_types():
            time.sleep(60)
        module.fsaops_filesystem_types = fsaops_filesystem_types
        sys.modules["sleeper"] = module
        try:
            load_plugins(cli="sleeper", import_timeout=0.5)
        except PluginValidationError as exc:
            print(exc)
        """
    )
    make_dist(tmp_path, "sleeper-dist", {"sleeper": "sleeper"}, {})
    proc = guarded.run(
        [sys.executable, "-c", script], env={"PYTHONPATH": str(tmp_path)}, timeout=30
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == (
        "plugin sleeper-dist[sleeper]: fsaops_filesystem_types() did not return within "
        "0.5 s (FSAOPS_PLUGIN_TIMEOUT)"
    )


def test_the_probe_works_with_standard_streams_closed(tmp_path: Path) -> None:
    """With descriptors 0 to 2 closed, the probe's channel must not land on one of them."""
    stuck = "import re\nre.match(r'(a+)+$', 'a' * 60 + 'b')\n"
    make_dist(tmp_path, "stuckfs-dist", {"stuckfs": "stuckfs"}, {"stuckfs": stuck})
    args = [sys.executable, "-m", "fsaops", "migrate", "--plugins", "stuckfs,ext2,swap"]
    proc = guarded.run(
        ["sh", "-c", 'exec "$@" <&- >&- 2>&-', "sh", *args],
        env={"PYTHONPATH": str(tmp_path), "FSAOPS_PLUGIN_TIMEOUT": "1"},
        timeout=60,
    )
    assert proc.returncode == 2
