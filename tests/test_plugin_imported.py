"""A plugin the selection left out, whose module a selected one imported, said the way it happened.

A selected plugin may import another plugin's module when it loads (it is
built on it) or later, inside its ``migratepage``, while the run runs.
Either way the other's code ran: the report lists it with its version and
``imported_by`` (so ``fsaops diff`` sees its upgrade), the terminal's
heading and the HTML page say ``(imported by ...)``, and the page's saved
scenario does not select it.  ``fsaops config check`` says plainly that a
plugin only imported is not selected, and how to select it.  The page
shows the scenario's values as TOML writes them.

Every plugin here is installed as a distribution's metadata and module on
``PYTHONPATH`` (:func:`fsaops.testing.dist.write_dist_info`), and every
command runs in a subprocess with ``guarded``'s limits.
"""

from __future__ import annotations

import html
import json
import re
import sys
import tomllib
from pathlib import Path
from typing import Any

from fsaops.testing.dist import write_dist_info
from guarded import fsaops, one_error_line, run

EXAMPLE = (
    Path(__file__).resolve().parent.parent
    / "docs"
    / "examples"
    / "fsaops-example-plugin"
    / "src"
    / "fsaops_ramfs"
    / "__init__.py"
)


def _plugin(fs: str, behaviour: str = "", also: str = "") -> str:
    """The example ramfs plugin as filesystem ``fs``; ``behaviour`` runs first in its migratepage.

    ``also`` is added at the end of the module (an import it makes when it loads).
    """
    code = EXAMPLE.read_text(encoding="utf-8")
    code = code.replace("ramfs", fs).replace("RAMFS", fs.upper())
    if behaviour:
        start = "    rc = migrate_page_remove_references(newpage, page, NR_REFS)"
        assert start in code
        code = code.replace(start, f"    {behaviour}\n{start}")
    return code + also


def _install_lazy(site: Path, version: str) -> dict[str, str]:
    """``demo-lazy[lazy]``, whose migratepage imports ``demo-helper[helper]`` (at ``version``)."""
    write_dist_info(
        site,
        "demo-lazy",
        {"fsaops": {"lazy": "lazy_plugin"}},
        modules={"lazy_plugin": _plugin("lazyfs", "import helper_plugin  # noqa: F401")},
    )
    write_dist_info(
        site,
        "demo-helper",
        {"fsaops": {"helper": "helper_plugin"}},
        version=version,
        modules={"helper_plugin": _plugin("helperfs")},
    )
    return {"PYTHONPATH": str(site)}


def _install_pair(site: Path) -> dict[str, str]:
    """``demo-base[base]`` and ``demo-top[top]``, whose module imports base's when it loads."""
    write_dist_info(
        site,
        "demo-base",
        {"fsaops": {"base": "base_plugin"}},
        modules={"base_plugin": _plugin("basefs")},
    )
    write_dist_info(
        site,
        "demo-top",
        {"fsaops": {"top": "top_plugin"}},
        modules={"top_plugin": _plugin("topfs", also="import base_plugin  # noqa: E402, F401\n")},
    )
    return {"PYTHONPATH": str(site)}


LAZY_TOML = """
[plugins]
load = ["lazy", "swap"]

[[mount]]
fs = "lazyfs"
files = 1
pages = 8
"""


def _json(proc: Any) -> dict[str, Any]:
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert isinstance(data, dict)
    return data


# -- a module imported while the run runs ----------------------------------------------


def test_a_plugin_imported_while_the_run_runs_is_in_the_report_and_the_diff(
    tmp_path: Path,
) -> None:
    scenario = tmp_path / "lazy.toml"
    scenario.write_text(LAZY_TOML, encoding="utf-8")
    reports = []
    for version in ("3.0", "4.0"):
        env = _install_lazy(tmp_path / f"site{version}", version)
        proc = fsaops("migrate", "--json", scenario, env=env)
        plugins = _json(proc)["plugins"]
        assert {"name": "helper", "distribution": "demo-helper", "version": version,
                "imported_by": ["lazy"]} in plugins  # fmt: skip
        assert [p["name"] for p in plugins if "imported_by" not in p] == ["lazy", "swap"]
        path = tmp_path / f"r{version}.json"
        path.write_text(proc.stdout, encoding="utf-8")
        reports.append(path)
    proc = fsaops("diff", *reports, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "the runs differ" in proc.stdout, proc.stdout
    row = next(line for line in proc.stdout.splitlines() if "plugin helper" in line)
    assert "demo-helper 3.0" in row and "demo-helper 4.0" in row
    text = fsaops("migrate", "--no-progress", scenario, env=env)
    assert text.returncode == 0, text.stderr
    assert "\nplugins: lazy, swap; helper (imported by lazy)\n" in text.stdout


def _install_helperlib(site: Path, version: str) -> dict[str, str]:
    """``demo-helperlib[helperlib]``, entry point ``helperlib.fsaops_plugin``, and two users of it.

    ``demo-lazy2[lazy2]``'s migratepage imports ``helperlib.core``;
    ``demo-eager2[eager2]``'s module imports it when it loads.
    """
    (site / "helperlib").mkdir(parents=True)
    write_dist_info(
        site,
        "demo-helperlib",
        {"fsaops": {"helperlib": "helperlib.fsaops_plugin"}},
        version=version,
        modules={
            "helperlib/__init__": f"VERSION = {version!r}\n",
            "helperlib/core": "def f() -> int:\n    return 1\n",
            "helperlib/fsaops_plugin": _plugin("helperlibfs"),
        },
    )
    write_dist_info(
        site,
        "demo-lazy2",
        {"fsaops": {"lazy2": "lazy2_plugin"}},
        modules={"lazy2_plugin": _plugin("lazy2fs", "import helperlib.core  # noqa: F401")},
    )
    write_dist_info(
        site,
        "demo-eager2",
        {"fsaops": {"eager2": "eager2_plugin"}},
        modules={
            "eager2_plugin": _plugin("eager2fs", also="import helperlib.core  # noqa: E402, F401\n")
        },
    )
    return {"PYTHONPATH": str(site)}


def _in_process(env: dict[str, str], script: str, cwd: Path) -> Any:
    """What ``script`` (run in one fresh interpreter) prints as JSON."""
    proc = run([sys.executable, "-c", script], env=env, cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.splitlines()[-1])


_PLUGINS = """
import contextlib, io, json, sys
from fsaops.cli import main

def plugins(*args):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["migrate", "--json", *args]) == 0
    report = json.loads(out.getvalue())
    return [[p["name"], p["version"], p.get("imported_by")] for p in report["plugins"]]
"""


def test_every_run_in_one_process_lists_the_plugin_its_migratepage_imports(
    tmp_path: Path,
) -> None:
    """A second run, or one after ``fsaops plugins`` or the program imported it, lists it too."""
    (tmp_path / "lazy.toml").write_text(LAZY_TOML, encoding="utf-8")
    script = (
        _PLUGINS
        + """
first = plugins("lazy.toml")
second = plugins("lazy.toml")
with contextlib.redirect_stdout(io.StringIO()):
    main(["plugins"])
after_listing = plugins("lazy.toml")
import helper_plugin
after_program = plugins("lazy.toml")
print(json.dumps([first, second, after_listing, after_program]))
"""
    )
    for version in ("3.0", "4.0"):
        env = _install_lazy(tmp_path / f"site{version}", version)
        runs = _in_process(env, script, tmp_path)
        helper = ["helper", version, ["lazy"]]
        assert runs == [[helper, ["lazy", "0.1", None], ["swap", "0.1.0", None]]] * 4


def test_an_import_that_no_selected_plugin_ran_is_not_put_down_to_one(tmp_path: Path) -> None:
    """Not the program's, before or during the run, nor another registry's run's."""
    env = _install_lazy(tmp_path / "site", "3.0")
    write_dist_info(
        tmp_path / "site",
        "demo-other",
        {"fsaops": {"other": "other_plugin"}},
        modules={"other_plugin": _plugin("otherfs")},
    )
    (tmp_path / "other.toml").write_text(
        '[plugins]\nload = ["other", "swap"]\n[[mount]]\nfs = "otherfs"\npages = 8\n',
        encoding="utf-8",
    )
    (tmp_path / "lazy.toml").write_text(LAZY_TOML, encoding="utf-8")
    script = """
import json
from fsaops.config import load_config
from fsaops.plugins import load_plugins
from fsaops.scenario import run_scenario

def plugins(report):
    return [[p.name, list(p.imported_by)] for p in report.plugins]

lazy = load_plugins(cli="lazy,swap", env={})
other = load_plugins(cli="other,swap", env={})
import helper_plugin  # the program's own import, after other loaded
alone = plugins(run_scenario(load_config("other.toml"), other, source="other.toml"))
lazy_run = plugins(run_scenario(load_config("lazy.toml"), lazy, source="lazy.toml"))
other_run = plugins(run_scenario(load_config("other.toml"), other, source="other.toml"))
print(json.dumps([alone, lazy_run, other_run]))
"""
    alone, lazy_run, other_run = _in_process(env, script, tmp_path)
    assert alone == [["other", []], ["swap", []]]
    assert lazy_run == [["helper", ["lazy"]], ["lazy", []], ["swap", []]]
    assert other_run == [["other", []], ["swap", []]]


def test_a_module_of_a_plugin_whose_entry_point_is_a_submodule_counts(tmp_path: Path) -> None:
    """``helperlib.core`` is the code of ``helperlib.fsaops_plugin``'s distribution.

    Imported while the run runs or when the selected plugin loads, in a
    second load of the process too; ``fsaops diff`` sees its upgrade.
    """
    for name in ("lazy2", "eager2"):
        (tmp_path / f"{name}.toml").write_text(
            f'[plugins]\nload = ["{name}", "swap"]\n[[mount]]\nfs = "{name}fs"\npages = 8\n',
            encoding="utf-8",
        )
    script = (
        _PLUGINS
        + """
print(json.dumps([plugins(n) for n in ("lazy2.toml", "lazy2.toml", "eager2.toml", "eager2.toml")]))
"""
    )
    reports = []
    for version in ("3.0", "4.0"):
        env = _install_helperlib(tmp_path / f"site{version}", version)
        lazy2, again, eager2, eager2_again = _in_process(env, script, tmp_path)
        helper = ["helperlib", version]
        assert (
            lazy2
            == again
            == [[*helper, ["lazy2"]], ["lazy2", "0.1", None], ["swap", "0.1.0", None]]
        )
        assert eager2 == eager2_again == [
            ["eager2", "0.1", None], [*helper, ["eager2"]], ["swap", "0.1.0", None]
        ]  # fmt: skip
        proc = fsaops("migrate", "--json", tmp_path / "lazy2.toml", env=env)
        path = tmp_path / f"r{version}.json"
        path.write_text(proc.stdout, encoding="utf-8")
        reports.append(path)
    proc = fsaops("diff", *reports, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "the runs differ" in proc.stdout, proc.stdout


def test_a_package_a_selected_plugin_shares_with_another_is_not_the_others(
    tmp_path: Path,
) -> None:
    """Two entry points in one package: selecting one does not import the other."""
    site = tmp_path / "site"
    (site / "pairpkg").mkdir(parents=True)
    write_dist_info(
        site,
        "demo-pair",
        {"fsaops": {"pa": "pairpkg.a", "pb": "pairpkg.b"}},
        modules={
            "pairpkg/__init__": "",
            "pairpkg/common": "X = 1\n",
            "pairpkg/a": _plugin("pafs", "from pairpkg import common  # noqa: F401"),
            "pairpkg/b": _plugin("pbfs"),
        },
    )
    (tmp_path / "pa.toml").write_text(
        '[plugins]\nload = ["pa", "swap"]\n[[mount]]\nfs = "pafs"\npages = 8\n',
        encoding="utf-8",
    )
    proc = fsaops("migrate", "--json", tmp_path / "pa.toml", env={"PYTHONPATH": str(site)})
    assert [p["name"] for p in _json(proc)["plugins"]] == ["pa", "swap"]


def test_watching_a_run_sees_importlib_and_puts_back_the_import_function(tmp_path: Path) -> None:
    """A module that bypasses ``__import__`` is every selected plugin's; plugin code that
    replaces ``__import__`` does not keep it."""
    env = _install_lazy(tmp_path / "site", "3.0")
    script = """
import builtins, importlib, json, sys
from fsaops.plugins import load_plugins, watch_imports

original = builtins.__import__
lazy = load_plugins(cli="lazy,swap", env={})
only_built_in = load_plugins(cli="ext2,swap", env={})

def status(record):
    info = next(p for p in record.plugins() if p.name == "helper")
    return [info.status.value, list(info.imported_by)]

with watch_imports(lazy) as program:
    import helper_plugin  # the program's own import statement: not lazy's
del sys.modules["helper_plugin"]
with watch_imports(lazy) as record, watch_imports(only_built_in) as built_in:
    importlib.import_module("helper_plugin")
    builtins.__import__ = lambda *args, **kwargs: original(*args, **kwargs)
print(json.dumps([status(program), status(record), status(built_in),
                  builtins.__import__ is original]))
"""
    program, record, built_in, restored = _in_process(env, script, tmp_path)
    assert program == ["not loaded", []]
    assert record == ["imported", ["lazy"]]
    assert built_in == ["not loaded", []]  # fsaops's own code imports no plugin
    assert restored


# -- a plugin imported when the selected one loads, in the heading and on the page ---------


def test_the_heading_and_the_page_say_which_plugin_imported_another(tmp_path: Path) -> None:
    env = _install_pair(tmp_path / "site")
    scenario = tmp_path / "top.toml"
    scenario.write_text('[[mount]]\nfs = "topfs"\npages = 8\n', encoding="utf-8")
    page = tmp_path / "page.html"
    proc = fsaops(
        "migrate", "--no-progress", scenario, "--plugins", "top,swap", "--html", page, env=env
    )
    assert proc.returncode == 0, proc.stderr
    assert "\nplugins: top, swap (selected by --plugins); base (imported by top)\n" in proc.stdout
    source = page.read_text(encoding="utf-8")
    facts = re.search(r"<dt>plugins</dt><dd>(.*?)</dd>", source)
    assert facts is not None
    assert (
        "<bdi>base</bdi> (imported by <bdi>top</bdi>) "
        "<span class=muted>(<bdi>demo-base</bdi> <bdi>0.1</bdi>)</span>" in facts[1]
    )
    assert (
        "<bdi>top</bdi> <span class=muted>(<bdi>demo-top</bdi> <bdi>0.1</bdi>)</span>" in facts[1]
    )
    saved = re.search(r'<pre id="scenario-toml">(.*?)</pre>', source, re.S)
    assert saved is not None
    # Saved and run again, the scenario selects what the run selected: base comes with top.
    assert tomllib.loads(html.unescape(saved[1]))["plugins"]["load"] == ["swap", "top"]


def test_a_scenario_that_selects_its_plugins_names_an_imported_one_in_the_heading(
    tmp_path: Path,
) -> None:
    env = _install_pair(tmp_path / "site")
    scenario = tmp_path / "top.toml"
    scenario.write_text(
        '[plugins]\nload = ["top"]\n[[mount]]\nfs = "topfs"\npages = 8\n', encoding="utf-8"
    )
    proc = fsaops("migrate", "--no-progress", scenario, env=env)
    assert proc.returncode == 0, proc.stderr
    # The plugins the scenario selected come first: "base" alone read as the run's only plugin.
    assert "\nplugins: top; base (imported by top)\n" in proc.stdout


# -- a filesystem of a plugin that is only imported -----------------------------------------


def test_config_check_says_an_imported_plugin_is_not_selected_and_how_to_select_it(
    tmp_path: Path,
) -> None:
    site = tmp_path / "site"
    write_dist_info(
        site,
        "demo-onext2",
        {"fsaops": {"onext2": "onext2_plugin"}},
        modules={
            "onext2_plugin": _plugin("onext2fs", also="import fsaops_ext2  # noqa: E402, F401\n")
        },
    )
    env = {"PYTHONPATH": str(site)}
    scenario = tmp_path / "onext2.toml"
    scenario.write_text(
        '[plugins]\nload = ["onext2"]\n[[mount]]\nfs = "ext2"\npages = 8\n', encoding="utf-8"
    )
    proc = fsaops("config", "check", scenario, env=env)
    line = one_error_line(
        proc,
        2,
        "mount[0].fs: filesystem 'ext2' comes from plugin fsaops[ext2], which is not selected, "
        "only imported by onext2 (selected plugins: onext2)",
        "add ext2 to [plugins] load to select it",
    )
    assert "which is imported" not in line
    proc = fsaops("migrate", scenario, "--plugins", "onext2", env=env)
    one_error_line(proc, 2, "which is not selected", "add ext2 to --plugins to select it")
    proc = fsaops("config", "check", scenario, "--plugins", "swap", env=env)
    one_error_line(
        proc,
        2,
        "which is not loaded (selected plugins: swap): add ext2 to --plugins to select it",
    )


# -- the scenario's values on the page ---------------------------------------------------------


def test_the_page_shows_the_scenarios_values_as_toml_writes_them(tmp_path: Path) -> None:
    scenario = tmp_path / "ool.toml"
    scenario.write_text(
        '[plugins]\nload = ["ext2", "swap"]\n[[mount]]\nfs = "ext2"\nmode = "nobh"\n'
        "files = 2\npages = 8\n[workload]\nout_of_line = true\ndirty = 0.25\n",
        encoding="utf-8",
    )
    page = tmp_path / "page.html"
    proc = fsaops("migrate", "--no-progress", scenario, "--html", page)
    assert proc.returncode == 0, proc.stderr
    facts = re.search(r"<dt>workload</dt><dd>(.*?)</dd>", page.read_text(encoding="utf-8"))
    assert facts is not None
    assert facts[1] == "dirty 0.25, out_of_line true"


def test_an_import_function_plugin_code_wraps_around_the_watch_does_not_recurse(
    tmp_path: Path,
) -> None:
    """A pass-through wrapper that a plugin took while a watch was on (so it calls the watch's
    hook), installed again afterwards, made every import of the next watch recurse for ever;
    ``__import__(name, 1)``, which the builtin takes, raised inside the hook."""
    env = _install_lazy(tmp_path / "site", "3.0")
    script = """
import builtins, json
from fsaops.plugins import load_plugins, watch_imports

original = builtins.__import__
lazy = load_plugins(cli="lazy,swap", env={})
with watch_imports(lazy):
    captured = builtins.__import__  # what plugin code sees while a run runs: the hook
    def traced(*args, **kwargs):
        return captured(*args, **kwargs)
builtins.__import__ = traced  # put back after the run
results = []
with watch_imports(lazy) as record:
    results.append(__import__("json").__name__)
    results.append(__import__("json", 1).__name__)  # globals that is not a dictionary
    results.append(__import__("helper_plugin", {"__name__": "lazy_plugin"}).__name__)
builtins.__import__ = captured  # the hook itself left in place
with watch_imports(lazy):
    results.append(__import__("json").__name__)
helper = next(p for p in record.plugins() if p.name == "helper")
print(json.dumps([results, helper.status.value, list(helper.imported_by),
                  builtins.__import__ is original or builtins.__import__ is captured]))
builtins.__import__ = original
"""
    results, status, imported_by, restored = _in_process(env, script, tmp_path)
    assert results == ["json", "json", "helper_plugin", "json"]
    assert [status, imported_by] == ["imported", ["lazy"]]
    assert restored


def test_imports_a_module_body_makes_while_it_is_imported_are_recorded_and_chained(
    tmp_path: Path,
) -> None:
    """A selected plugin's module imported for the first time during a run, whose body imports
    another plugin (imported already), was left out of the report; an import function another
    tool installed saw only the outermost import while a run was watched."""
    env = _install_lazy(tmp_path / "site", "3.0")
    (tmp_path / "site" / "lzpkg").mkdir()
    write_dist_info(
        tmp_path / "site",
        "demo-lz",
        {"fsaops": {"lz": "lzpkg"}},
        modules={"lzpkg/__init__": _plugin("lzfs"), "lzpkg/sub": "import helper_plugin\n"},
    )
    (tmp_path / "site" / "toolpkg.py").write_text("import json, email.utils\n", encoding="utf-8")
    script = """
import builtins, json, sys
from fsaops.plugins import load_plugins, watch_imports

import helper_plugin  # the program's own, before any run
lz = load_plugins(cli="lz,swap", env={})
seen = []
found = builtins.__import__
def tool(name, *args, **kwargs):  # another tool's import hook, installed before the run
    seen.append(name)
    return found(name, *args, **kwargs)
builtins.__import__ = tool
with watch_imports(lz) as record:
    exec("import lzpkg.sub", vars(sys.modules["lzpkg"]))  # lz's code imports its own module
    import toolpkg
builtins.__import__ = found
helper = next(p for p in record.plugins() if p.name == "helper")
print(json.dumps([helper.status.value, list(helper.imported_by), seen]))
"""
    status, imported_by, seen = _in_process(env, script, tmp_path)
    assert [status, imported_by] == ["imported", ["lz"]]
    assert {"lzpkg.sub", "helper_plugin", "toolpkg", "json", "email.utils"} <= set(seen)
