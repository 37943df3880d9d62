"""Which plugins a run used, and how the selection is spelled, said the way it happened.

A plugin built on another (its module imports the other's) uses code the
selection never named: the listing, the report, ``fsaops diff`` and the
blame for a failure name that plugin too.  ``fsaops diff`` compares the
plugins that ran, not how ``[plugins] load`` spells them; a run whose
selection came from ``--plugins`` or ``FSAOPS_PLUGINS`` says so.  A missing
filesystem names no owner guessed from an entry-point name.  A plugin name
the comma-separated interfaces cannot give, or one two distributions
register, is refused only when it is selected.  A table two filesystems
share is not reported as the first one's.

Every plugin here is installed as a distribution's metadata and module on
``PYTHONPATH`` (:func:`fsaops.testing.dist.write_dist_info`), and every
command runs in a subprocess with ``guarded``'s limits.
"""

from __future__ import annotations

import html
import json
import re
import shlex
from pathlib import Path
from typing import Any

from fsaops.testing.dist import write_dist_info
from guarded import fsaops, one_error_line

EXAMPLE = (
    Path(__file__).resolve().parent.parent
    / "docs"
    / "examples"
    / "fsaops-example-plugin"
    / "src"
    / "fsaops_ramfs"
    / "__init__.py"
)

DERIVED = """
import attrs
import fsaops
from basefs_plugin import BASEFS


@fsaops.hookimpl
def fsaops_filesystem_types():
    return [attrs.evolve(BASEFS, name="derivedfs", description="basefs under another name")]
"""

DERIVED_TOML = """
[plugins]
load = ["derived"]

[[mount]]
fs = "derivedfs"
files = 1
pages = 16
"""


def _base(behaviour: str = "") -> str:
    """The example ramfs plugin as ``basefs``; ``behaviour`` runs first in its migratepage."""
    code = EXAMPLE.read_text(encoding="utf-8").replace("ramfs", "basefs").replace("RAMFS", "BASEFS")
    if behaviour:
        first = "    rc = migrate_page_remove_references(newpage, page, NR_REFS)"
        assert first in code
        code = code.replace(first, f"    {behaviour}\n{first}")
    return code


def _install_pair(site: Path, version: str = "1.0", behaviour: str = "") -> dict[str, str]:
    """``demo-base[base]`` (basefs) and ``demo-derived[derived]`` (derivedfs, on base's table)."""
    write_dist_info(
        site,
        "demo-base",
        {"fsaops": {"base": "basefs_plugin"}},
        version=version,
        modules={"basefs_plugin": _base(behaviour)},
    )
    write_dist_info(
        site,
        "demo-derived",
        {"fsaops": {"derived": "derived_plugin"}},
        modules={"derived_plugin": DERIVED},
    )
    return {"PYTHONPATH": str(site)}


def _json(proc: Any) -> dict[str, Any]:
    data = json.loads(proc.stdout)
    assert isinstance(data, dict)
    return data


# -- F1, F2: a plugin built on another ---------------------------------------------------


def test_a_plugin_built_on_another_is_listed_as_imported(tmp_path: Path) -> None:
    env = _install_pair(tmp_path / "site")
    (tmp_path / "derived.toml").write_text(DERIVED_TOML, encoding="utf-8")
    proc = fsaops("plugins", "--json", "--config", tmp_path / "derived.toml", env=env)
    assert proc.returncode == 0, proc.stderr
    plugins = {p["name"]: p for p in _json(proc)["plugins"]}
    assert plugins["base"]["status"] == "imported"
    assert plugins["base"]["imported_by"] == ["demo-derived[derived]"]
    assert plugins["derived"]["status"] == "loaded"
    assert plugins["ext2"]["status"] == "not loaded"  # nobody imported it
    assert plugins["ext2"]["imported_by"] == []
    text = fsaops("plugins", "--config", tmp_path / "derived.toml", env=env).stdout
    line = next(line for line in text.splitlines() if "demo-base[base]" in line)
    assert "not loaded" not in line and "imported" in line


def test_a_new_version_of_the_plugin_built_on_is_in_the_report_and_the_diff(
    tmp_path: Path,
) -> None:
    scenario = tmp_path / "derived.toml"
    scenario.write_text(DERIVED_TOML, encoding="utf-8")
    reports = []
    for version in ("1.0", "2.0"):
        env = _install_pair(tmp_path / f"site{version}", version)
        proc = fsaops("migrate", "--json", scenario, env=env)
        assert proc.returncode == 0, proc.stderr
        path = tmp_path / f"r{version}.json"
        path.write_text(proc.stdout, encoding="utf-8")
        reports.append(path)
        plugins = _json(proc)["plugins"]
        assert {"name": "base", "distribution": "demo-base", "version": version,
                "imported_by": ["derived"]} in plugins  # fmt: skip
    proc = fsaops("diff", *reports, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "the runs differ" in proc.stdout
    row = next(line for line in proc.stdout.splitlines() if "plugin base" in line)
    assert "demo-base 1.0" in row and "demo-base 2.0" in row


def test_code_of_the_plugin_built_on_that_ends_the_run_is_named(tmp_path: Path) -> None:
    env = _install_pair(tmp_path / "site", "3.0", "raise SystemExit(0)")
    scenario = tmp_path / "derived.toml"
    scenario.write_text(DERIVED_TOML, encoding="utf-8")
    proc = fsaops("migrate", "--no-progress", scenario, env=env)
    line = one_error_line(proc, 1, "SystemExit", "plugin demo-base[base]")
    assert "basefs_plugin.basefs_migratepage" in line


def test_the_page_of_a_plugin_built_on_another_reruns_its_selection(tmp_path: Path) -> None:
    env = _install_pair(tmp_path / "site")
    scenario = tmp_path / "derived.toml"
    scenario.write_text(DERIVED_TOML, encoding="utf-8")
    page = tmp_path / "page.html"
    proc = fsaops("migrate", "--no-progress", scenario, "--html", page, env=env)
    assert proc.returncode == 0, proc.stderr
    found = re.search(r"To run it again: <code>(.*?)</code>", page.read_text(encoding="utf-8"))
    assert found is not None
    words = shlex.split(html.unescape(re.sub(r"<[^>]*>", "", found[1])))  # each word isolated
    assert words[words.index("--plugins") + 1] == "derived"
    again = fsaops(*words[1:], "--no-progress", env=env)
    assert again.returncode == 0, again.stderr


# -- F3, F4: how the selection is spelled, and what made it ------------------------------

EXT2_SWAP = """
{plugins}
[[mount]]
fs = "ext2"
files = 1
pages = 32

[processes]
count = 1
anon_pages = 16
"""


def _report(tmp_path: Path, name: str, plugins: str, *args: str, **env: str) -> Path:
    scenario = tmp_path / f"{name}.toml"
    scenario.write_text(EXT2_SWAP.format(plugins=plugins), encoding="utf-8")
    proc = fsaops("migrate", "--json", scenario, *args, env=env)
    assert proc.returncode == 0, proc.stderr
    path = tmp_path / f"{name}.json"
    path.write_text(proc.stdout, encoding="utf-8")
    return path


def test_diff_compares_the_plugins_that_ran_not_how_load_spells_them(tmp_path: Path) -> None:
    a = _report(tmp_path, "a", '[plugins]\nload = ["ext2", "swap"]')
    b = _report(tmp_path, "b", '[plugins]\nload = ["swap", "ext2"]')
    c = _report(tmp_path, "c", "", "--plugins", "ext2,swap")
    d = _report(tmp_path, "d", '[plugins]\nload = ["ext2"]', FSAOPS_PLUGINS="ext2,swap")
    for other in (b, c, d):
        proc = fsaops("diff", a, other)
        assert proc.returncode == 0, proc.stderr
        assert "the runs are the same" in proc.stdout, proc.stdout
    proc = fsaops("diff", a, b)
    assert "plugins.load" in proc.stdout  # shown, unmarked
    assert "config.plugins.load" in fsaops("diff", a, b).stdout  # and named as not compared


def test_a_selection_the_scenario_did_not_make_is_reported(tmp_path: Path) -> None:
    scenario = tmp_path / "s.toml"
    scenario.write_text(EXT2_SWAP.format(plugins='[plugins]\nload = ["ext2", "swap"]'), "utf-8")
    env = {"FSAOPS_PLUGINS": "swap,ext2"}
    data = _json(fsaops("migrate", "--json", scenario, env=env))
    assert data["selection"] == {"names": ["swap", "ext2"], "selected_by": "FSAOPS_PLUGINS"}
    assert data["config"]["plugins"]["load"] == ["ext2", "swap"]
    text = fsaops("migrate", "--no-progress", scenario, env=env).stdout
    assert (
        "plugins: swap, ext2 (selected by FSAOPS_PLUGINS, overriding the scenario's "
        "[plugins] load: ext2, swap)"
    ) in text
    # A selection the scenario made adds nothing: the report is as it was.
    mine = _json(fsaops("migrate", "--json", scenario))
    assert "selection" not in mine
    assert "plugins:" not in fsaops("migrate", "--no-progress", scenario).stdout


# -- F5: a filesystem no selected plugin provides ------------------------------------------


def test_a_missing_filesystem_names_no_owner_guessed_from_an_entry_point_name(
    tmp_path: Path,
) -> None:
    env = _install_pair(tmp_path / "site")
    # An entry point named like the filesystem, that provides another one.
    write_dist_info(
        tmp_path / "site",
        "demo-clash",
        {"fsaops": {"derivedfs": "clash_plugin"}},
        modules={"clash_plugin": DERIVED.replace('name="derivedfs"', 'name="odda"')},
    )
    scenario = tmp_path / "s.toml"
    scenario.write_text(DERIVED_TOML.replace('["derived"]', '["ext2"]'), encoding="utf-8")
    for args in (
        ("config", "check", scenario),
        ("migrate", "--no-progress", scenario),
        ("explore", "--plugins", "ext2", "--fs", "derivedfs"),
    ):
        line = one_error_line(fsaops(*args, env=env), 2, "derivedfs", "not selected")
        assert "comes from plugin" not in line and "[derivedfs] provides" not in line
        # demo-clash's entry point among those left out, not named as the owner.
        assert "no selected plugin provides it; " in line
        assert "installed plugins were not selected: base, derived, derivedfs, " in line
        assert len(line) < 400
    # A built-in's filesystem is known: its plugin is named.
    scenario.write_text(DERIVED_TOML.replace("derivedfs", "xfs").replace('["derived"]', '["ext2"]'))
    one_error_line(fsaops("config", "check", scenario, env=env), 2, "plugin fsaops[xfs]")


# -- F6, F7: names that cannot be selected -------------------------------------------------


def test_a_name_with_a_comma_is_refused_where_it_is_selected(tmp_path: Path) -> None:
    site = tmp_path / "site"
    write_dist_info(
        site,
        "demo-odd",
        {"fsaops": {"x,y": "odd_plugin"}},
        modules={"odd_plugin": DERIVED.replace("basefs_plugin", "fsaops_swap").replace(
            "BASEFS", "SWAP").replace('name="derivedfs"', 'name="odd"')},
    )  # fmt: skip
    env = {"PYTHONPATH": str(site)}
    listing = _json(fsaops("plugins", "--json", "--plugins", "ext2", env=env))
    odd = next(p for p in listing["plugins"] if p["name"] == "x,y")
    assert odd["status"] == "not loaded"
    assert "cannot be given to --plugins" in odd["error"]
    scenario = tmp_path / "s.toml"
    scenario.write_text('[plugins]\nload = ["x,y"]\n', encoding="utf-8")
    one_error_line(fsaops("migrate", scenario, env=env), 2, "'x,y'", "rename the entry point")
    # Left out, it is no concern of the run.
    scenario.write_text('[plugins]\nload = ["ext2"]\n', encoding="utf-8")
    assert fsaops("migrate", "--no-progress", scenario, env=env).returncode == 0


def test_a_name_two_distributions_register_is_refused_only_when_selected(tmp_path: Path) -> None:
    site = tmp_path / "site"
    for dist in ("demo-one", "demo-two"):
        write_dist_info(site, dist, {"fsaops": {"twice": "fsaops_swap"}})
    env = {"PYTHONPATH": str(site)}
    scenario = tmp_path / "s.toml"
    scenario.write_text(EXT2_SWAP.format(plugins=""), encoding="utf-8")
    proc = fsaops("migrate", "--no-progress", "--plugins", "ext2,swap", scenario, env=env)
    assert proc.returncode == 0, proc.stderr
    for args in (("--plugins", "twice"), ()):  # named, or all installed
        one_error_line(
            fsaops("migrate", scenario, *args, env=env), 2, "'twice' is registered twice"
        )
    proc = fsaops("plugins", "--json", env=env)
    assert proc.returncode == 2
    twins = [p for p in _json(proc)["plugins"] if p["name"] == "twice"]
    assert sorted(p["distribution"] for p in twins) == ["demo-one", "demo-two"]
    assert all("registered twice" in p["error"] for p in twins)
    proc = fsaops("plugins", "--json", "--plugins", "ext2", env=env)
    assert proc.returncode == 0, proc.stderr
    assert {p["status"] for p in _json(proc)["plugins"] if p["name"] == "twice"} == {"not loaded"}


# -- F8: one table under two filesystems ---------------------------------------------------


def test_a_table_two_filesystems_share_is_not_counted_as_the_first_ones(tmp_path: Path) -> None:
    site = tmp_path / "site"
    code = DERIVED.replace("basefs_plugin", "fsaops_ext2").replace("BASEFS", "EXT2")
    write_dist_info(
        site,
        "demo-ext2b",
        {"fsaops": {"ext2b": "ext2b_plugin"}},
        modules={"ext2b_plugin": code.replace('name="derivedfs"', 'name="ext2b"')},
    )
    env = {"PYTHONPATH": str(site)}
    tables = []
    for first, second in (("ext2", "ext2b"), ("ext2b", "ext2")):
        scenario = tmp_path / f"{first}.toml"
        scenario.write_text(
            '[plugins]\nload = ["ext2", "ext2b"]\n'
            f'[[mount]]\nfs = "{first}"\nfiles = 1\npages = 10\n'
            f'[[mount]]\nfs = "{second}"\nfiles = 1\npages = 30\n',
            encoding="utf-8",
        )
        proc = fsaops("migrate", "--json", scenario, env=env)
        assert proc.returncode == 0, proc.stderr
        tables.append(_json(proc)["by_aops"]["ext2_aops"])
    for table in tables:
        assert table["pages"] == 40
        assert table["filesystem"] == "ext2, ext2b"
