"""The documentation keeps up with the code: every hook, public name, key and option is documented.

Modelled on datasette's ``test_plugin_hooks_are_documented``: the hooks are
read from the hook specifications through pluggy, the public names from
``fsaops.__all__``, the configuration keys from
:func:`fsaops.config.reference`, the command line's options from its
argparse parser, the report's fields from a real report, and each must be
described in the documentation, so adding one without documenting it
fails here.  The scenarios the docs show must pass ``fsaops config
check``, and every "KERNEL-SPEC §n" citation must name a section of the
published spec.
"""

from __future__ import annotations

import argparse
import json
import re
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
    """The report's fields as the docs write them: ``totals.moved``, ``by_aops.TABLE.via``."""
    if not isinstance(value, dict) or prefix in REPORT_LEAVES:
        return {prefix}
    paths: set[str] = set()
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
