"""Running fsaops's command line inside the test process, capturing what it writes.

For commands that need no isolation (a subprocess with limits is
:mod:`guarded`'s job): the diff tests run ``migrate`` and ``diff`` this way.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any, NamedTuple

import hypothesis.strategies as st
import pytest

from fsaops.cli import main
from fsaops.testing.dist import write_dist_info

SCENARIOS = Path(__file__).resolve().parent.parent / "docs" / "scenarios"
PLUGINS = Path(__file__).resolve().parent / "configs" / "plugins"

BUGGY = """\
[kernel]
node_memory = "2MiB"
[plugins]
load = ["buggyfs"]
[[mount]]
fs = "bug_{name}"
pages = 48
files = 6
block_size = 1024
[processes]
count = 2
[workload]
seed = 3
dirty = 0.3
mapped = 0.3
pinned = 0.05
"""
"""A scenario of one broken table of ``buggyfs``: 48 pages, a third dirty, a third mapped."""


def fsaops(*args: str) -> tuple[int, str, str]:
    """``fsaops ARGS``: the exit status, standard output and standard error."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        status = main(list(args))
    return status, out.getvalue(), err.getvalue()


def ext3_reports(folder: Path) -> tuple[Path, Path]:
    """Reports of ext3 data=ordered and data=journal in ``folder``, as cli.md compares them."""
    paths = []
    for mode in ("ordered", "journal"):
        status, out, err = fsaops("migrate", str(SCENARIOS / f"ext3-{mode}.toml"), "--json")
        assert status == 0, err
        path = folder / f"{mode}.json"
        path.write_text(out, encoding="utf-8")
        paths.append(path)
    return paths[0], paths[1]


def installed(tmp_path_factory: pytest.TempPathFactory, name: str, source: str) -> Iterator[Path]:
    """Plugin ``name`` (its module, ``source``) installed as ``fsaops-NAME``; a folder for configs.

    For a module-scoped fixture: ``yield from installed(...)``.  The plugin's
    dist-info and module are on ``sys.path`` and ``FSAOPS_PLUGINS`` is unset
    until the fixture ends.
    """
    site = tmp_path_factory.mktemp("site")
    write_dist_info(site, f"fsaops-{name}", {"fsaops": {name: name}}, modules={name: source})
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(site))
        patch.delenv("FSAOPS_PLUGINS", raising=False)
        yield tmp_path_factory.mktemp("configs")


def migrate_json(path: Path, text: str, *options: str) -> tuple[int, dict[str, Any]]:
    """Write scenario ``text`` to ``path`` and ``fsaops migrate --json`` it: status, report."""
    path.write_text(text, encoding="utf-8")
    status, out, err = fsaops("migrate", str(path), "--json", "--no-progress", *options)
    assert "Traceback" not in err
    report: dict[str, Any] = json.loads(out)
    return status, report


def first_failing_run(
    folder: Path, scenario: str, workloads: Mapping[str, str], releases: Sequence[str]
) -> str | None:
    """The first run of ``fsaops migrate`` that is not ``ok``, as what it was; else ``None``.

    ``scenario`` has ``{semantics}`` where the release goes, and each of
    ``workloads`` (name: the lines of ``[workload]``) is put after it; each
    runs under each of ``releases``, plain, then with ``--strict --debug-vm``.
    For mutation tests: a mutant no run fails is one fsaops cannot see.
    """
    for options in ((), ("--strict", "--debug-vm")):
        for semantics in releases:
            for what, workload in workloads.items():
                text = scenario.format(semantics=semantics) + workload
                _rc, report = migrate_json(folder / "mutant.toml", text, *options)
                if report["status"] != "ok":
                    how = " ".join(options) or "plain"
                    return f"{report['status']}: {what}, {semantics} {how}"
    return None


def buggyfs_installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """``buggyfs`` (``tests/configs/plugins``) installed as ``fsaops-buggyfs``; a config folder.

    For a module-scoped fixture: ``yield from buggyfs_installed(...)``.
    """
    yield from plugin_installed(tmp_path_factory, "buggyfs")


def plugin_installed(tmp_path_factory: pytest.TempPathFactory, name: str) -> Iterator[Path]:
    """``tests/configs/plugins/NAME_plugin.py`` installed as ``fsaops-NAME``; a config folder.

    Its entry point is ``NAME``, and no ``FSAOPS_PLUGINS`` is set meanwhile.
    For a module-scoped fixture: ``yield from plugin_installed(...)``.
    """
    site = tmp_path_factory.mktemp("site")
    write_dist_info(site, f"fsaops-{name}", {"fsaops": {name: f"{name}_plugin"}})
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(site))
        patch.syspath_prepend(str(PLUGINS))
        patch.delenv("FSAOPS_PLUGINS", raising=False)
        yield tmp_path_factory.mktemp("configs")


def every_table_scenario(tables: Sequence[tuple[str, str, int]], states: str) -> str:
    """A scenario mounting each of ``tables`` (filesystem, mode, block size), 24 pages in 3 files.

    Two processes with no anonymous memory; the workload (seed 9) dirties and
    maps a fifth of the file pages each, then adds ``states`` (TOML lines).
    For the tests that every built-in table moves the pages of a state.
    """
    mounts = "".join(
        f'[[mount]]\nfs = "{fs}"\nmode = "{mode}"\nblock_size = {bs}\npages = 24\nfiles = 3\n'
        for fs, mode, bs in tables
    )
    return (
        f'[kernel]\nnode_memory = "4MiB"\n[plugins]\nload = ["ext2", "ext3", "xfs"]\n{mounts}'
        "[processes]\ncount = 2\nanon_pages = 0\n[workload]\nseed = 9\ndirty = 0.2\n"
        f"mapped = 0.2\n{states}"
    )


def buggy_migrate(
    folder: Path, name: str, workload: str, *options: str
) -> tuple[int, dict[str, Any]]:
    """``fsaops migrate --json`` of :data:`BUGGY` for table ``name``, ``workload`` lines added."""
    label = re.sub(r"\W+", "_", f"{name}-{workload}-{'-'.join(options)}")
    return migrate_json(folder / f"{label}.toml", BUGGY.format(name=name) + workload, *options)


class Mix(NamedTuple):
    """One scenario of :func:`migrate_mix`: a mount of a built-in table, its files, its pages."""

    mount: tuple[str, str, int]
    """(filesystem, mode, block size)."""
    files: int
    pages: int
    workload: dict[str, Any]
    """The ``[workload]`` keys (numbers and booleans)."""


def state_mixes(
    mounts: Sequence[tuple[str, str, int]],
    states: Sequence[str],
    fixed: Mapping[str, Any],
    *,
    values: Sequence[float] = (0.0, 0.1, 0.3),
    least_pages: int = 1,
) -> st.SearchStrategy[Mix]:
    """Scenarios for the property tests of a workload state: any mix of ``states`` with it.

    One of ``mounts``, 1 to 4 files of ``least_pages`` to 14 pages in all,
    a seed, each of ``states`` at one of ``values``, and the keys of
    ``fixed`` (each a strategy, or a value as it is).
    """
    keys = {k: v if isinstance(v, st.SearchStrategy) else st.just(v) for k, v in fixed.items()}
    workload = st.fixed_dictionaries(
        {"seed": st.integers(0, 2**16), **keys, **{n: st.sampled_from(values) for n in states}}
    )
    return st.builds(
        Mix, st.sampled_from(mounts), st.integers(1, 4), st.integers(least_pages, 14), workload
    )


def migrate_mix(folder: Path, mix: Mix, options: tuple[str, ...] = ("--strict",)) -> dict[str, Any]:
    """``fsaops migrate --json OPTIONS`` of ``mix``, with one process.

    Asserts the run is ``ok`` with no finding: for the property tests of
    the workload states (:func:`state_mixes`).
    """
    fs, mode, block_size = mix.mount
    text = (
        f'[kernel]\nnode_memory = "1MiB"\n[plugins]\nload = ["ext2", "ext3", "xfs"]\n'
        f'[[mount]]\nfs = "{fs}"\nmode = "{mode}"\nblock_size = {block_size}\n'
        f"pages = {mix.pages}\nfiles = {mix.files}\n[processes]\ncount = 1\nanon_pages = 0\n"
        "[workload]\n"
    )
    text += "".join(f"{key} = {json.dumps(value)}\n" for key, value in mix.workload.items())
    rc, report = migrate_json(folder / "mix.toml", text, *options)
    assert (rc, report["status"], report["findings"]) == (0, "ok", []), report.get("error")
    return report
