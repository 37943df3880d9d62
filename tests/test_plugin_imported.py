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
        start = "    if migrate_page_remove_references(newpage, page, NR_REFS):"
        assert start in code
        code = code.replace(start, f"    {behaviour}\n{start}")
    return code + also


def _install_lazy(site: Path, version: str) -> dict[str, str]:
    """``adv-lazy[lazy]``, whose migratepage imports ``adv-helper[helper]`` (at ``version``)."""
    write_dist_info(
        site,
        "adv-lazy",
        {"fsaops": {"lazy": "lazy_plugin"}},
        modules={"lazy_plugin": _plugin("lazyfs", "import helper_plugin  # noqa: F401")},
    )
    write_dist_info(
        site,
        "adv-helper",
        {"fsaops": {"helper": "helper_plugin"}},
        version=version,
        modules={"helper_plugin": _plugin("helperfs")},
    )
    return {"PYTHONPATH": str(site)}


def _install_pair(site: Path) -> dict[str, str]:
    """``adv-base[base]`` and ``adv-top[top]``, whose module imports base's when it loads."""
    write_dist_info(
        site,
        "adv-base",
        {"fsaops": {"base": "base_plugin"}},
        modules={"base_plugin": _plugin("basefs")},
    )
    write_dist_info(
        site,
        "adv-top",
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
        assert {"name": "helper", "distribution": "adv-helper", "version": version,
                "imported_by": ["lazy"]} in plugins  # fmt: skip
        assert [p["name"] for p in plugins if "imported_by" not in p] == ["lazy", "swap"]
        path = tmp_path / f"r{version}.json"
        path.write_text(proc.stdout, encoding="utf-8")
        reports.append(path)
    proc = fsaops("diff", *reports, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "the runs differ" in proc.stdout, proc.stdout
    row = next(line for line in proc.stdout.splitlines() if "plugin helper" in line)
    assert "adv-helper 3.0" in row and "adv-helper 4.0" in row
    text = fsaops("migrate", "--no-progress", scenario, env=env)
    assert text.returncode == 0, text.stderr
    assert "\nplugins: helper (imported by lazy)\n" in text.stdout


def test_a_plugin_module_imported_after_loading_counts_only_when_a_loaded_plugin_can_have(
    tmp_path: Path,
) -> None:
    """Not when only fsaops's own plugins loaded, nor when another load selected it."""
    env = _install_lazy(tmp_path / "site", "3.0")
    script = """
import json, sys
from fsaops.plugins import load_plugins

def status(registry):
    info = registry.plugin("helper")
    return [info.status.value, list(info.imported_by)]

only_built_in = load_plugins(cli="ext2", env={})
lazy = load_plugins(cli="lazy,swap", env={})
before = status(lazy)
import helper_plugin
after = status(lazy)
built_in = status(only_built_in)
lazy2 = load_plugins(cli="lazy", env={})
helper = load_plugins(cli="helper", env={})
json.dump([before, after, built_in, status(lazy2)], sys.stdout)
"""
    proc = run([sys.executable, "-c", script], env=env)
    assert proc.returncode == 0, proc.stderr
    before, after, built_in, other_load = json.loads(proc.stdout)
    assert before == ["not loaded", []]
    assert after == ["imported", ["lazy"]]
    assert built_in == ["not loaded", []]  # ext2's code imports no plugin
    assert other_load == ["not loaded", []]  # already imported: nobody imported it since


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
    assert "base (imported by top) <span class=muted>(adv-base 0.1)</span>" in facts[1]
    assert "top <span class=muted>(adv-top 0.1)</span>" in facts[1]
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
    assert "\nplugins: base (imported by top)\n" in proc.stdout


# -- a filesystem of a plugin that is only imported -----------------------------------------


def test_config_check_says_an_imported_plugin_is_not_selected_and_how_to_select_it(
    tmp_path: Path,
) -> None:
    site = tmp_path / "site"
    write_dist_info(
        site,
        "adv-onext2",
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
