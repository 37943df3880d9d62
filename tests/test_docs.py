"""The documentation keeps up with the code: every hook, public name, key and option is documented.

Modelled on datasette's ``test_plugin_hooks_are_documented``: the hooks are
read from the hook specifications through pluggy, the public names from
``fsaops.__all__``, the configuration keys from
:func:`fsaops.config.reference`, the command line's options from its
argparse parser, the report's fields from a real report, and each must be
described in the documentation, so adding one without documenting it
fails here.  The scenarios the docs show must pass ``fsaops config
check``, and every "KERNEL-SPEC §n" citation must name a section of the
published spec.  The plugin tutorial must show the example plugin's own
files, and the testing kit's page every test of the conformance suite,
every fixture and every option of the kit's pytest plugin.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import shlex
import tomllib
from pathlib import Path

import pluggy
import pytest

import fsaops
from fsaops import hookspecs
from fsaops.cli import _parser, main
from fsaops.config import ConfigKey, reference

DOCS = Path(__file__).resolve().parent.parent / "docs"
HOOKS_PAGE = DOCS / "hooks.md"
API_INDEX = DOCS / "api" / "index.md"


def _hook_specs() -> dict[str, tuple[str, ...]]:
    """Every hook of the ``fsaops`` project with its argument names, as pluggy sees them."""
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    found: dict[str, tuple[str, ...]] = {}
    for name in dir(pm.hook):
        caller = getattr(pm.hook, name)
        if isinstance(caller, pluggy.HookCaller) and caller.spec is not None:
            found[name] = tuple(caller.spec.argnames)
    return found


HOOKS = _hook_specs()


def _sources() -> dict[Path, str]:
    """The text of every documentation page, outside the build directory."""
    return {
        path: path.read_text(encoding="utf-8")
        for path in sorted(DOCS.rglob("*.md"))
        if not {"_build", "examples"} & set(path.relative_to(DOCS).parts)
    }


def _describes(text: str, name: str) -> bool:
    """Whether ``text`` holds a Python-domain description of ``fsaops.<name>``."""
    escaped = re.escape(name)
    auto = rf"^\.\. auto(?:function|class|data|exception|attribute)::\s+fsaops\.{escaped}\s*$"
    plain = rf"^\.\. py:(?:function|class|data|exception)::\s+{escaped}\s*\n\s+:module: fsaops\s*$"
    return bool(re.search(auto, text, re.MULTILINE) or re.search(plain, text, re.MULTILINE))


def test_the_hook_specifications_are_found() -> None:
    assert "fsaops_filesystem_types" in HOOKS
    assert all(name.startswith("fsaops_") for name in HOOKS)


@pytest.mark.parametrize("hook", sorted(HOOKS))
def test_plugin_hooks_are_documented(hook: str) -> None:
    """The hook reference has a section titled by the hook's signature, with its docstring."""
    text = HOOKS_PAGE.read_text(encoding="utf-8")
    signature = f"{hook}({', '.join(HOOKS[hook])})"
    heading = rf"^#+ {re.escape(signature)}\s*$"
    assert re.search(heading, text, re.MULTILINE), f"no section '## {signature}' in {HOOKS_PAGE}"
    directive = rf"^\.\. autofunction:: fsaops\.hookspecs\.{re.escape(hook)}\s*$"
    assert re.search(directive, text, re.MULTILINE), f"{hook} is not autodocumented in {HOOKS_PAGE}"


@pytest.mark.parametrize("hook", sorted(HOOKS))
def test_hook_specifications_say_when_they_were_added(hook: str) -> None:
    doc = getattr(hookspecs, hook).__doc__ or ""
    assert doc.strip(), f"hook {hook} has no docstring"
    assert ".. versionadded::" in doc, f"hook {hook}'s docstring does not say when it was added"


@pytest.mark.parametrize("name", sorted(fsaops.__all__))
def test_public_names_are_in_the_api_reference(name: str) -> None:
    """Every name the package root exports is listed in the API reference and described."""
    index = API_INDEX.read_text(encoding="utf-8")
    assert f"fsaops.{name}`" in index, f"fsaops.{name} is not listed in {API_INDEX}"
    pages = [path for path, text in _sources().items() if _describes(text, name)]
    assert len(pages) == 1, (
        f"fsaops.{name} must be described exactly once in the docs, found in {pages or 'none'}"
    )


# -- the configuration reference ---------------------------------------------------------------

CONFIG_PAGE = DOCS / "configuration.md"
CLI_PAGE = DOCS / "cli.md"
SPEC_PAGE = DOCS / "kernel-spec.md"
SCENARIOS = DOCS / "scenarios"
ANNOTATED = SCENARIOS / "annotated.toml"

KEYS = reference()


def _config_table_directive(table: str) -> str:
    """The directive that renders every key of ``table`` from :func:`reference` at build time."""
    return rf"^```\{{fsaops-config-table\}} {re.escape(table)}\s*$"


@pytest.mark.parametrize("key", KEYS, ids=[f"{k.table}.{k.key}" for k in KEYS])
def test_every_configuration_key_is_documented(key: ConfigKey) -> None:
    """Each key is in the configuration page's rendered output, and in its complete example.

    The page renders a table's keys with ``{fsaops-config-table} TABLE``,
    which lists every key :func:`fsaops.config.reference` gives for that
    table; a key named in the page's own words counts too.
    """
    text = CONFIG_PAGE.read_text(encoding="utf-8")
    rendered = re.search(_config_table_directive(key.table), text, re.MULTILINE)
    assert rendered or f"{key.table}.{key.key}" in text, (
        f"{key.table}.{key.key} is not in {CONFIG_PAGE}: add ```{{fsaops-config-table}} "
        f"{key.table}``` to it"
    )
    example = tomllib.loads(ANNOTATED.read_text(encoding="utf-8"))
    section = example.get(key.table)
    tables = section if isinstance(section, list) else [section or {}]
    assert any(key.key in table for table in tables), (
        f"the complete example {ANNOTATED.name} does not set {key.table}.{key.key}"
    )
    assert key.doc.strip(), f"{key.table}.{key.key} has no description"


def test_every_configuration_table_has_its_own_section() -> None:
    text = CONFIG_PAGE.read_text(encoding="utf-8")
    for table in dict.fromkeys(key.table for key in KEYS):
        header = f"[[{table}]]" if table == "mount" else f"[{table}]"
        assert re.search(rf"^#+ `{re.escape(header)}`\s*$", text, re.MULTILINE), (
            f"no section titled {header} in {CONFIG_PAGE}"
        )


def _config_check(path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    status = main(["config", "check", str(path)])
    out, err = capsys.readouterr()
    assert status == 0, err
    assert ": OK: " in out
    return out


@pytest.mark.parametrize("path", sorted(SCENARIOS.glob("*.toml")), ids=lambda p: p.name)
def test_the_scenarios_of_the_docs_pass_config_check(
    path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FSAOPS_PLUGINS", raising=False)
    _config_check(path, capsys)


def test_every_toml_block_of_the_configuration_page_is_a_valid_scenario(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FSAOPS_PLUGINS", raising=False)
    text = CONFIG_PAGE.read_text(encoding="utf-8")
    blocks = re.findall(r"^```toml\n(.*?)^```", text, re.MULTILINE | re.DOTALL)
    assert blocks
    for n, block in enumerate(blocks):
        path = tmp_path / f"block{n}.toml"
        path.write_text(block, encoding="utf-8")
        _config_check(path, capsys)


# -- the command-line reference ----------------------------------------------------------------


def _programs() -> dict[str, argparse.ArgumentParser]:
    """Every command of ``fsaops``, by its name as the docs write it (``fsaops config check``)."""
    found: dict[str, argparse.ArgumentParser] = {}

    def walk(name: str, parser: argparse.ArgumentParser) -> None:
        found[name] = parser
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                choices: dict[str, argparse.ArgumentParser] = action.choices
                for sub, subparser in choices.items():
                    walk(f"{name} {sub}", subparser)

    walk("fsaops", _parser())
    return found


PROGRAMS = _programs()


def _is_leaf(parser: argparse.ArgumentParser) -> bool:
    return not any(isinstance(a, argparse._SubParsersAction) for a in parser._actions)


def _parser_options() -> dict[tuple[str, str], argparse.Action]:
    """(program, option) for every option and positional argument, but ``--help``."""
    options: dict[tuple[str, str], argparse.Action] = {}
    for name, parser in PROGRAMS.items():
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction | argparse._SubParsersAction):
                continue
            if action.option_strings:
                for option in action.option_strings:
                    options[(name, option)] = action
            else:
                options[(name, str(action.metavar or action.dest))] = action
    return options


OPTIONS = _parser_options()


def _documented_options() -> dict[tuple[str, str], str]:
    """(program, option) → its description, from the ``{program}`` and ``{option}`` blocks."""
    documented: dict[tuple[str, str], str] = {}
    program = None
    lines = CLI_PAGE.read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines):
        if match := re.match(r"^```\{program\}\s+(.+?)\s*$", line):
            program = match.group(1)
        elif match := re.match(r"^```\{option\}\s+(.+?)\s*$", line):
            assert program is not None, f"{CLI_PAGE}:{i + 1}: an option before any program"
            end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
            body = "\n".join(lines[i + 1 : end])
            for signature in match.group(1).split(", "):
                option = re.split(r"[\s=]", signature.strip(), maxsplit=1)[0]
                documented[(program, option)] = body
    return documented


@pytest.mark.parametrize("option", sorted(OPTIONS), ids=[" ".join(o) for o in sorted(OPTIONS)])
def test_every_cli_option_is_documented(option: tuple[str, str]) -> None:
    documented = _documented_options()
    program, name = option
    assert option in documented, (
        f"{program} {name} is not documented in {CLI_PAGE}: add an {{option}} {name} "
        f"block after {{program}} {program}"
    )
    action = OPTIONS[option]
    body = documented[option]
    for choice in action.choices or ():
        assert f"`{choice}`" in body, f"{program} {name}: choice {choice!r} is not described"
    if action.default not in (None, False, argparse.SUPPRESS):
        assert f"`{action.default}`" in body, (
            f"{program} {name}: the default {action.default!r} is not given"
        )


def test_the_cli_page_documents_no_option_that_does_not_exist() -> None:
    helps = {
        (name, option)
        for name, parser in PROGRAMS.items()
        for action in parser._actions
        if isinstance(action, argparse._HelpAction)
        for option in action.option_strings
    }
    stale = sorted(set(_documented_options()) - set(OPTIONS) - helps)
    assert not stale, f"{CLI_PAGE} documents options the parser does not have: {stale}"


@pytest.mark.parametrize("program", sorted(n for n, p in PROGRAMS.items() if _is_leaf(p)))
def test_every_command_shows_its_usage(program: str) -> None:
    text = CLI_PAGE.read_text(encoding="utf-8")
    args = program.removeprefix("fsaops").strip()
    directive = rf"^```\{{fsaops-usage\}}{' ' + re.escape(args) if args else ''}\s*$"
    assert re.search(directive, text, re.MULTILINE), f"no usage of {program} in {CLI_PAGE}"
    assert re.search(rf"^#+ {re.escape(program)}\s*$", text, re.MULTILINE), (
        f"no section titled {program} in {CLI_PAGE}"
    )


def _json_paths(value: object, prefix: str = "") -> set[str]:
    """The report's fields as the docs write them: ``totals.moved``, ``by_aops.TABLE.via``.

    The objects of a list are described once, as ``pages_left[].pfn``.
    """
    paths: set[str] = set()
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        paths.add(prefix)
        for item in value:
            paths |= _json_paths(item, f"{prefix}[]")
        return paths
    if not isinstance(value, dict) or prefix in REPORT_LEAVES:
        return {prefix}
    for key, item in value.items():
        name = "TABLE" if prefix == "by_aops" else key
        paths |= _json_paths(item, f"{prefix}.{name}" if prefix else name)
    return paths


# Objects whose keys are data (errno names, reasons, fault kinds), not fields.
REPORT_LEAVES = {
    "config",
    "by_aops.TABLE.errors",
    "by_aops.TABLE.via",
    "by_aops.TABLE.reasons",
    "faults.injected",
    "proofs.io",
    "proofs.placement.memory_only",
    "proofs.durability.memory_only",
}


def _migrate(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[str, str]:
    status = main(["migrate", str(SCENARIOS / "small.toml"), *args])
    out, err = capsys.readouterr()
    assert status == 0, err
    return out, err


def test_every_field_of_the_json_report_is_documented(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FSAOPS_PLUGINS", raising=False)
    out, _ = _migrate(["--json"], capsys)
    report = json.loads(out)
    text = CLI_PAGE.read_text(encoding="utf-8")
    missing = sorted(p for p in _json_paths(report) if f"`{p}`" not in text)
    assert not missing, f"report fields not described in {CLI_PAGE}: {missing}"
    # DESIGN §6: the fields every report has at least.
    for field in ("totals", "by_aops", "vmstat", "integrity"):
        assert field in report


def test_every_field_of_the_trace_is_documented(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--trace`` adds ``trace`` to the report: a left page and an anonymous page show it all."""
    monkeypatch.delenv("FSAOPS_PLUGINS", raising=False)
    out, _ = _migrate(["--json"], capsys)
    report = json.loads(out)
    left = report["pages_left"][0]
    anonymous = next(p for p in report["pages_left"] + report["pages_failed"] if "pid" in p)
    paths: set[str] = set()
    for page in (str(left["pfn"]), f"{anonymous['pid']}:{anonymous['address']:#x}"):
        out, _ = _migrate(["--json", "--trace", page], capsys)
        paths |= {p for p in _json_paths(json.loads(out)) if p.startswith("trace")}
    assert {"trace[].held_by[].task", "trace[].mapped_by[].vm_locked", "trace[].why"} <= paths
    text = CLI_PAGE.read_text(encoding="utf-8")
    missing = sorted(p for p in paths if f"`{p}`" not in text)
    assert not missing, f"trace fields not described in {CLI_PAGE}: {missing}"


def test_every_field_of_the_event_stream_is_documented(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FSAOPS_PLUGINS", raising=False)
    _, err = _migrate(["--json", "--log-level", "debug", "--log-format", "json"], capsys)
    events = [json.loads(line) for line in err.splitlines()]
    assert {e["event"] for e in events} == {"scenario_built", "mm_migrate_page", "scenario_done"}
    text = CLI_PAGE.read_text(encoding="utf-8")
    for event in events:
        missing = [f for f in event if f"`{f}`" not in text]
        assert not missing, f"fields of {event['event']} not described in {CLI_PAGE}: {missing}"
        if event["event"] == "mm_migrate_page":
            assert f"`{event['path']}`" in text, f"path {event['path']!r} is not described"


# -- the behavioural spec ------------------------------------------------------------------------

CITATION = re.compile(r"KERNEL-SPEC\s+§\d+(?:\.\d+(?:-\d+)?)?(?:\s*(?:,|and|-)\s*§\d+(?:\.\d+)?)*")
ROOT = DOCS.parent


def _spec_sections() -> set[str]:
    text = SPEC_PAGE.read_text(encoding="utf-8")
    labels = set(re.findall(r"^\(kernel-spec-(\d+)\)=\n\n## (\d+)\. ", text, re.MULTILINE))
    assert all(a == b for a, b in labels), f"a label of {SPEC_PAGE} names the wrong section"
    return {a for a, _ in labels}


def test_the_spec_keeps_its_section_numbers() -> None:
    assert _spec_sections() == {str(n) for n in range(13)}


def test_every_kernel_spec_citation_names_a_section_of_the_spec() -> None:
    """What the code, the tests and the docs cite as "KERNEL-SPEC §n" is in the published spec."""
    sections = _spec_sections()
    files = [
        *sorted((ROOT / "core").rglob("*.py")),
        *sorted((ROOT / "plugins").rglob("*.py")),
        *sorted((ROOT / "tests").rglob("*.py")),
        *_sources(),
    ]
    bad: list[str] = []
    for path in files:
        for citation in CITATION.findall(path.read_text(encoding="utf-8")):
            for number in re.findall(r"§(\d+)", citation):
                if number not in sections:
                    bad.append(f"{path.relative_to(ROOT)}: {' '.join(citation.split())}")
    assert not bad, f"citations of sections the spec does not have: {bad}"


# -- the plugin tutorial and the testing kit ---------------------------------------------------

TUTORIAL_PAGE = DOCS / "plugin-tutorial.md"
KIT_PAGE = DOCS / "testing-kit.md"
EXAMPLE = DOCS / "examples" / "fsaops-example-plugin"
EXAMPLE_MODULE = EXAMPLE / "src" / "fsaops_ramfs" / "__init__.py"
EXAMPLE_TESTS = EXAMPLE / "tests" / "test_conformance.py"
SUITE = "fsaops.testing.conformance.MigratepageConformance"


def _directives(text: str, name: str) -> list[tuple[str, dict[str, str]]]:
    """Each ``name`` directive of a page, in MyST (```{name} ARG) or reST (.. name:: ARG) form.

    Returns the argument and the options of each.
    """
    found: list[tuple[str, dict[str, str]]] = []
    lines = text.splitlines()
    head = re.compile(rf"^\s*(?:```\{{{re.escape(name)}\}}|\.\. {re.escape(name)}::)\s*(.*?)\s*$")
    for i, line in enumerate(lines):
        match = head.match(line)
        if match is None:
            continue
        options: dict[str, str] = {}
        for following in lines[i + 1 :]:
            option = re.match(r"^\s*:([\w-]+):\s*(.*?)\s*$", following)
            if option is None:
                break
            options[option.group(1)] = option.group(2).strip('"')
        found.append((match.group(1), options))
    return found


def _suite_tests_in_source() -> dict[str, ast.FunctionDef]:
    """The tests the suite's class body defines, as the docs build reads them from its source."""
    from fsaops.testing import conformance

    tree = ast.parse(Path(conformance.__file__).read_text(encoding="utf-8"))
    cls = next(
        node
        for node in tree.body
        if isinstance(node, ast.ClassDef) and node.name == "MigratepageConformance"
    )
    return {
        node.name: node
        for node in cls.body
        if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")
    }


def test_every_conformance_test_is_listed_on_the_testing_kit_page() -> None:
    """The page lists the suite's tests from its source: every test must be found there, once.

    The build reads the class body of ``MigratepageConformance`` (the docs
    build does without pytest, so it cannot import the suite) and shows the
    tests whose names start with the prefix of each ``fsaops-suite-tests``
    directive; so every test pytest would collect from a subclass must be
    defined in that class body, with a docstring, and match exactly one
    prefix on the page.
    """
    from fsaops.testing import MigratepageConformance

    collected = {name for name in dir(MigratepageConformance) if name.startswith("test_")}
    in_source = _suite_tests_in_source()
    assert collected == set(in_source), (
        "tests not defined in the class body, which the testing kit page reads: "
        f"{sorted(collected ^ set(in_source))}"
    )
    undocumented = sorted(name for name, node in in_source.items() if not ast.get_docstring(node))
    assert not undocumented, f"tests without a docstring to show: {undocumented}"
    text = KIT_PAGE.read_text(encoding="utf-8")
    prefixes = [
        options.get("prefix", "test_")
        for argument, options in _directives(text, "fsaops-suite-tests")
        if argument == SUITE
    ]
    assert prefixes, f"{KIT_PAGE} does not list the suite's tests (fsaops-suite-tests {SUITE})"
    for name in sorted(collected):
        matching = [prefix for prefix in prefixes if name.startswith(prefix)]
        assert len(matching) == 1, (
            f"{name} matches {len(matching)} of the prefixes {prefixes} on {KIT_PAGE}: "
            "it must be listed exactly once"
        )


def _included_lines(path: Path, options: dict[str, str]) -> set[int]:
    """The line numbers (from 1) that a ``literalinclude`` with these options shows."""
    text = path.read_text(encoding="utf-8")
    numbered = list(enumerate(text.splitlines(), start=1))
    if "pyobject" in options:
        tree = ast.parse(text)
        node = next(
            n
            for n in tree.body
            if isinstance(n, ast.FunctionDef | ast.ClassDef) and n.name == options["pyobject"]
        )
        assert node.end_lineno is not None
        numbered = numbered[node.lineno - 1 : node.end_lineno]
    if "lines" in options:
        wanted: set[int] = set()
        for part in options["lines"].split(","):
            first, _, last = part.strip().partition("-")
            wanted.update(range(int(first), int(last or first) + 1))
        numbered = [(n, line) for n, line in numbered if n in wanted]
    for option, inclusive in (("start-at", True), ("start-after", False)):
        if option in options:
            at = next(i for i, (_, line) in enumerate(numbered) if options[option] in line)
            numbered = numbered[at if inclusive else at + 1 :]
    for option, inclusive in (("end-at", True), ("end-before", False)):
        if option in options:
            at = next(i for i, (_, line) in enumerate(numbered) if options[option] in line)
            numbered = numbered[: at + 1 if inclusive else at]
    return {n for n, _ in numbered}


def _tutorial_includes() -> dict[Path, set[int]]:
    """The example's files the tutorial includes, with the lines it shows of each."""
    shown: dict[Path, set[int]] = {}
    text = TUTORIAL_PAGE.read_text(encoding="utf-8")
    for argument, options in _directives(text, "literalinclude"):
        path = (DOCS / argument).resolve()
        shown.setdefault(path, set()).update(_included_lines(path, options))
    return shown


def test_the_tutorial_includes_the_example_plugin() -> None:
    """The tutorial shows the example's code from its files: the module, the tests, pyproject.toml.

    Its test file is shown whole, and every definition of its module (the
    members, ``migratepage``, the table, the filesystem type, the hook) is
    shown somewhere on the page.
    """
    shown = _tutorial_includes()
    for path in (EXAMPLE / "pyproject.toml", EXAMPLE_MODULE, EXAMPLE_TESTS):
        assert path.resolve() in shown, f"{TUTORIAL_PAGE.name} does not include {path}"
    tests_lines = len(EXAMPLE_TESTS.read_text(encoding="utf-8").splitlines())
    assert shown[EXAMPLE_TESTS.resolve()] == set(range(1, tests_lines + 1)), (
        f"{TUTORIAL_PAGE.name} shows only part of {EXAMPLE_TESTS.name}"
    )
    module_lines = shown[EXAMPLE_MODULE.resolve()]
    tree = ast.parse(EXAMPLE_MODULE.read_text(encoding="utf-8"))
    missing = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            name, line = node.name, node.lineno
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            name, line = ast.unparse(targets[0]), node.lineno
            if name == "__all__":
                continue
        else:
            continue
        if line not in module_lines:
            missing.append(name)
    assert not missing, f"{TUTORIAL_PAGE.name} does not show {missing} of {EXAMPLE_MODULE.name}"


def test_the_tutorial_installs_what_it_runs_and_runs_it_from_the_tree_root() -> None:
    """The tutorial says to work from the root of the source tree: each project its commands
    need is installed by a ``pip install`` line before them, and each file a command names is
    there, from the root."""
    text = TUTORIAL_PAGE.read_text(encoding="utf-8")
    commands = list(
        re.finditer(r"```\{fsaops-example-command\} (fsaops .*)\n((?::[a-z-]+:.*\n)*)", text)
    )
    assert commands
    for command in commands:
        options = dict(re.findall(r"^:([a-z-]+):[ ]*(.*)$", command.group(2), re.MULTILINE))
        before = text[: command.start()]
        for project in options["project"].split():
            assert f"pip install ./docs/{project}" in before or (
                f"pip install './docs/{project}[" in before
            ), f"{command.group(1)!r} needs {project}, which the page has not installed"
        if "scenario" in options:
            continue  # the page shows the file, which the reader writes where they are
        for word in shlex.split(command.group(1)):
            if word.endswith(".toml"):
                assert (ROOT / word).is_file(), f"{word}: no such file from the tree's root"
                where = (DOCS / options.get("cwd", ".")).resolve()
                assert where == ROOT, f"{command.group(1)!r} runs in {where}, not the root"


def test_the_testing_kit_page_reads_every_fixture_and_strategy() -> None:
    """What the page's generated sections read from source is everything there is.

    Fixtures are found as top-level ``@pytest.fixture`` functions of the
    plugin module, strategies as the functions in ``__all__`` of
    ``fsaops.testing.strategies``.
    """
    from fsaops.testing import pytest_plugin, strategies

    text = KIT_PAGE.read_text(encoding="utf-8")
    assert ("fsaops.testing.pytest_plugin", {}) in _directives(text, "fsaops-fixtures")
    assert ("fsaops.testing.strategies", {}) in _directives(text, "fsaops-source-functions")
    tree = ast.parse(Path(pytest_plugin.__file__).read_text(encoding="utf-8"))
    fixtures = {
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef)
        and any("pytest.fixture" in ast.unparse(d) for d in node.decorator_list)
    }
    exported = set(pytest_plugin.__all__) - {"pytest_addoption"}
    assert fixtures == exported, f"fixtures the page would miss: {sorted(exported ^ fixtures)}"
    tree = ast.parse(Path(strategies.__file__).read_text(encoding="utf-8"))
    functions = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
    assert set(strategies.__all__) <= functions


def _documented_pytest_options() -> dict[str, str]:
    """``--option`` → its description, from the ``{option}`` blocks after ``{program} pytest``."""
    documented: dict[str, str] = {}
    program = None
    lines = KIT_PAGE.read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines):
        if match := re.match(r"^```\{program\}\s+(.+?)\s*$", line):
            program = match.group(1)
        elif (match := re.match(r"^```\{option\}\s+(\S+)", line)) and program == "pytest":
            end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
            documented[match.group(1)] = "\n".join(lines[i + 1 : end])
    return documented


def test_every_pytest_option_of_the_kit_is_documented() -> None:
    from fsaops.testing import pytest_plugin

    declared: dict[str, dict[str, object]] = {}

    class Group:
        def addoption(self, *names: str, **attrs: object) -> None:
            for name in names:
                declared[name] = attrs

    class Parser:
        def getgroup(self, name: str, description: str = "") -> Group:
            return Group()

    pytest_plugin.pytest_addoption(Parser())  # type: ignore[arg-type]
    documented = _documented_pytest_options()
    assert set(documented) == set(declared), (
        f"{KIT_PAGE} documents {sorted(documented)}, the plugin declares {sorted(declared)}"
    )
    assert f"`{pytest_plugin.DEFAULT_FILESYSTEM}`" in documented["--fsaops-filesystem"]
