"""Sphinx helpers that build parts of the fsaops documentation from the code.

Everything here runs at build time, in the build's own Python process, with
no network and no program other than fsaops itself:

``{fsaops-config-table} TABLE``
    The keys of one table of the scenario file, from
    :func:`fsaops.config.reference`: key, type, default and description,
    then that table's part of the annotated example scenario.  Each key
    becomes a ``confval`` object (``kernel.nodes``), so ``{confval}`` links
    to it are checked by ``-n``.
``{fsaops-literal} DOTTED.NAME``
    A string constant of the code, such as ``fsaops.config.DEFAULT_SCENARIO``,
    as a literal block.
``{fsaops-command} fsaops ARGS...``
    Runs the command line in-process and shows what it printed, optionally
    as a terminal of a given width would show it; the build fails if the
    exit status is not the expected one.  ``:setup:`` runs commands first
    whose output the command reads (the reports ``fsaops diff`` compares).
``{fsaops-usage} COMMAND...``
    The ``usage:`` lines of ``fsaops COMMAND --help``.
``{fsaops-example-command} fsaops ARGS...``
    Like ``{fsaops-command}``, with a project (the example third-party
    plugin) installed for the one command, and optionally a scenario file
    written in the directive's content.
``{fsaops-mapping-table} DOTTED.NAME``
    A constant mapping of names to sentences (the testing kit's
    capabilities and promises) as a table.

The testing kit's conformance suite, pytest plugin and Hypothesis
strategies import pytest or Hypothesis, which the build does without; these
read their source instead, and are used inside ``{eval-rst}``:

``.. fsaops-suite-class:: DOTTED.CLASS``
    A conformance suite class and its class attributes.
``.. fsaops-suite-tests:: DOTTED.CLASS`` (``:prefix: test_hook_``)
    The suite's tests with their docstrings and when each is skipped; the
    build fails if a test is on no page.
``.. fsaops-suite-skips:: DOTTED.CLASS`` (``:capabilities: a, b``)
    Which tests a subject with those capabilities skips.
``.. fsaops-fixtures:: DOTTED.MODULE``
    A module's pytest fixtures, as ``fixture`` objects.
``.. fsaops-source-functions:: DOTTED.MODULE``
    The functions a module's ``__all__`` lists, with their docstrings.

A transform also turns every citation of the project's behavioural spec,
"KERNEL-SPEC §3" (and "§3-§7", "§2 and §3"), into a link to that section of
the spec's page, in hand-written pages and in docstrings alike; on the
spec's page itself, a bare "§4" links too.
"""

from __future__ import annotations

import ast
import contextlib
import importlib
import importlib.util
import io
import json
import os
import re
import shlex
import sys
import tempfile
import threading
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, cast
from unittest import mock

from docutils import nodes
from docutils.parsers.rst import directives
from docutils.parsers.rst.states import RSTState
from docutils.statemachine import StringList
from sphinx import addnodes
from sphinx.ext.napoleon import Config as NapoleonConfig
from sphinx.ext.napoleon.docstring import GoogleDocstring
from sphinx.transforms import SphinxTransform
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective, switch_source_input
from sphinx.util.nodes import nested_parse_with_titles

if TYPE_CHECKING:
    from sphinx.application import Sphinx

    from fsaops.config import ConfigKey

#: The page that publishes the behavioural spec, and the labels of its sections.
SPEC_DOC = "kernel-spec"
SPEC_LABEL = "kernel-spec-{}"
#: The section of the configuration page that says how sizes are written.
SIZES_LABEL = "config-sizes"

_logger = logging.getLogger(__name__)

# -- KERNEL-SPEC citations -------------------------------------------------------

# "§5", or a step of a section: "§5.2", "§5.2-3" (linked to the section).
_SECTION = r"§(\d+)(?:\.\d+(?:[-\u2013]\d+)?)?"
_CITATION = re.compile(
    r"KERNEL-SPEC\s+" + _SECTION + r"((?:\s*(?:,|and|or|to|-|\u2013)\s*" + _SECTION + r")*)"
)
_HEAD = re.compile(r"KERNEL-SPEC\s+" + _SECTION)
_BARE = re.compile(_SECTION)
_SKIP = (
    nodes.FixedTextElement,
    nodes.literal,
    nodes.reference,
    nodes.target,
    nodes.raw,
    nodes.comment,
    nodes.title,
    addnodes.pending_xref,
    addnodes.desc_signature,
)


class KernelSpecCitations(SphinxTransform):
    """Link "KERNEL-SPEC §n" to section n of the spec's page."""

    default_priority = 500

    def apply(self, **kwargs: Any) -> None:
        """Replace each citation in the document's running text with links."""
        on_spec_page = self.env.docname == SPEC_DOC
        _merge_text(self.document)
        for text in list(self.document.findall(nodes.Text)):
            parent = text.parent
            if parent is None or _inside(parent, _SKIP):
                continue
            value = str(text)
            pieces = _split_citations(value, bare=on_spec_page)
            if len(pieces) == 1 and isinstance(pieces[0], str):
                continue
            new: list[nodes.Node] = []
            for piece in pieces:
                if isinstance(piece, str):
                    new.append(nodes.Text(piece))
                else:
                    label, section = piece
                    new.append(self._link(label, section, parent))
            at = next(i for i, child in enumerate(parent.children) if child is text)
            parent[at : at + 1] = new

    def _link(self, label: str, section: str, near: nodes.Element) -> addnodes.pending_xref:
        ref = addnodes.pending_xref(
            "",
            nodes.inline(label, label, classes=["kernel-spec"]),
            refdomain="std",
            reftype="ref",
            reftarget=SPEC_LABEL.format(section),
            refexplicit=True,
            refwarn=True,
        )
        ref["refdoc"] = self.env.docname
        ref.source, ref.line = near.source, near.line
        return ref


def _merge_text(document: nodes.document) -> None:
    """Join neighbouring text nodes, so a citation cut by a line break is whole again.

    MyST gives each line of a paragraph its own text node.
    """
    for element in list(document.findall(nodes.Element)):
        children = element.children
        i = 0
        while i < len(children) - 1:
            first, second = children[i], children[i + 1]
            if isinstance(first, nodes.Text) and isinstance(second, nodes.Text):
                # By position: text nodes compare equal by their text.
                element[i : i + 2] = [nodes.Text(str(first) + str(second))]
            else:
                i += 1


def _inside(node: nodes.Element, kinds: tuple[type[nodes.Node], ...]) -> bool:
    current: nodes.Element | None = node
    while current is not None:
        if isinstance(current, kinds):
            return True
        current = current.parent
    return False


def _split_citations(value: str, *, bare: bool) -> list[str | tuple[str, str]]:
    """Cut ``value`` into plain text and ``(link text, section)`` pairs.

    "KERNEL-SPEC §3" is one link; each further "§n" of the same citation
    ("KERNEL-SPEC §3, §5-§7") is one more.
    """
    pieces: list[str | tuple[str, str]] = []
    pos = 0
    for match in (_BARE if bare else _CITATION).finditer(value):
        if match.start() > pos:
            pieces.append(value[pos : match.start()])
        cited = match.group(0)
        offset = 0
        if not bare:
            head = _HEAD.match(cited)
            assert head is not None
            pieces.append((head.group(0), head.group(1)))
            offset = head.end()
        for more in _BARE.finditer(cited, offset):
            if more.start() > offset:
                pieces.append(cited[offset : more.start()])
            pieces.append((more.group(0), more.group(1)))
            offset = more.end()
        if offset < len(cited):
            pieces.append(cited[offset:])
        pos = match.end()
    if pos < len(value):
        pieces.append(value[pos:])
    return pieces or [value]


# -- the configuration reference ----------------------------------------------------


def _example_blocks(text: str) -> dict[str, str]:
    """The annotated example cut into one piece per TOML table.

    A piece is a table's header line, the comment lines right above it, and
    everything up to the next piece; every ``[[mount]]`` goes to ``mount``.
    """
    lines = text.splitlines()
    header = re.compile(r"^\[\[?\s*([A-Za-z_]+)\s*\]\]?")
    starts: list[tuple[int, str]] = []
    for i, line in enumerate(lines):
        match = header.match(line)
        if match is None:
            continue
        start = i
        while start > 0 and lines[start - 1].startswith("#"):
            start -= 1
        starts.append((start, match.group(1)))
    blocks: dict[str, list[str]] = {}
    for n, (start, table) in enumerate(starts):
        end = starts[n + 1][0] if n + 1 < len(starts) else len(lines)
        chunk = lines[start:end]
        while chunk and not chunk[-1].strip():
            chunk.pop()
        blocks.setdefault(table, [])
        if blocks[table]:
            blocks[table].append("")
        blocks[table].extend(chunk)
    return {table: "\n".join(chunk) + "\n" for table, chunk in blocks.items()}


class ConfigTable(SphinxDirective):
    """``{fsaops-config-table} TABLE``: the keys of one TOML table, and its example."""

    required_arguments = 1
    option_spec: ClassVar[dict[str, Any]] = {"no-example": directives.flag}

    def run(self) -> list[nodes.Node]:
        """Build the table of keys and the example from the code and the example file."""
        from fsaops.config import reference

        table = self.arguments[0]
        keys = [key for key in reference() if key.table == table]
        if not keys:
            known = sorted({key.table for key in reference()})
            raise self.error(f"no configuration table {table!r} (tables: {', '.join(known)})")
        result: list[nodes.Node] = [self._keys(table, keys)]
        if "no-example" not in self.options:
            example = self._example(table)
            if example is not None:
                result.append(example)
        return result

    def _keys(self, table: str, keys: list[ConfigKey]) -> nodes.table:
        widths = (19, 12, 13, 56)
        node = nodes.table(classes=["fsaops-config", "colwidths-given"])
        group = nodes.tgroup(cols=len(widths))
        node += group
        for width in widths:
            group += nodes.colspec(colwidth=width)
        head = nodes.thead()
        group += head
        head += _row([nodes.paragraph(text=t) for t in ("Key", "Type", "Default", "Description")])
        body = nodes.tbody()
        group += body
        std: Any = self.env.get_domain("std")
        for key in keys:
            name = f"{table}.{key.key}"
            node_id = f"confval-{table}-{key.key}".replace("_", "-")
            key_cell = nodes.paragraph()
            key_cell += nodes.literal(key.key, key.key, classes=["fsaops-key"])
            key_cell["ids"].append(node_id)
            index = addnodes.index(
                entries=[("single", f"{name} (configuration key)", node_id, "", None)]
            )
            std.note_object("confval", name, node_id, location=self.get_location())
            if key.default is None:
                default = nodes.paragraph(text="required" if _required(key) else "omitted")
                default["classes"].append("fsaops-none")
            else:
                default = nodes.paragraph()
                default += nodes.literal(key.default, key.default)
            description = nodes.paragraph()
            inline, messages = self.state.inline_text(key.doc, self.lineno)
            description.extend(inline)
            description.extend(messages)
            body += _row(
                [nodes.container("", index, key_cell), self._type(key.type), default, description]
            )
        self.set_source_info(node)
        return node

    def _type(self, words: str) -> nodes.paragraph:
        """The key's type; a size links to the section that explains sizes."""
        para = nodes.paragraph()
        if words.startswith("size"):
            ref = addnodes.pending_xref(
                "",
                nodes.inline("size", "size"),
                refdomain="std",
                reftype="ref",
                reftarget=SIZES_LABEL,
                refexplicit=True,
                refwarn=True,
            )
            ref["refdoc"] = self.env.docname
            para += ref
        else:
            para += nodes.Text(words)
        return para

    def _example(self, table: str) -> nodes.Node | None:
        path = Path(self.env.srcdir) / self.config.fsaops_example_scenario
        self.env.note_dependency(str(path))
        blocks = _example_blocks(path.read_text(encoding="utf-8"))
        text = blocks.get(table)
        if text is None:
            return None
        block = nodes.literal_block(text, text, language="toml")
        caption = nodes.caption(text=f"[{table}] in the example scenario")
        box = nodes.container(
            "", caption, block, classes=["literal-block-wrapper"], literal_block=True
        )
        self.set_source_info(box)
        return box


def _required(key: ConfigKey) -> bool:
    """Whether the key has no default at all (rather than a default of "omitted")."""
    import attrs

    from fsaops.config import Config

    holder: Any = attrs.fields_dict(attrs.resolve_types(Config))[key.table].type
    cls: Any = holder.__args__[0] if getattr(holder, "__origin__", None) is tuple else holder
    field = attrs.fields_dict(cls)[key.key]
    return field.default is attrs.NOTHING


def _row(cells: list[nodes.Node]) -> nodes.row:
    row = nodes.row()
    for cell in cells:
        entry = nodes.entry()
        entry += cell
        row += entry
    return row


# -- constants and commands -----------------------------------------------------------


class Literal(SphinxDirective):
    """``{fsaops-literal} fsaops.config.DEFAULT_SCENARIO``: a string constant, verbatim."""

    required_arguments = 1
    option_spec: ClassVar[dict[str, Any]] = {"language": directives.unchanged}

    def run(self) -> list[nodes.Node]:
        """Import the constant and show it."""
        module_name, _, name = self.arguments[0].rpartition(".")
        try:
            value = getattr(importlib.import_module(module_name), name)
        except (ImportError, AttributeError) as exc:
            raise self.error(f"cannot import {self.arguments[0]}: {exc}") from None
        if not isinstance(value, str):
            raise self.error(f"{self.arguments[0]} is not a string")
        block = nodes.literal_block(value, value, language=self.options.get("language", "text"))
        self.set_source_info(block)
        return [block]


# The command line reads and writes process-wide state (the working
# directory, standard streams, the environment); one command runs at a time.
_RUN_LOCK = threading.Lock()


@contextlib.contextmanager
def _command_context(cwd: Path, columns: int) -> Iterator[tuple[io.StringIO, io.StringIO]]:
    out, err = io.StringIO(), io.StringIO()
    saved_cwd = Path.cwd()
    saved_env = {name: os.environ.get(name) for name in ("COLUMNS", "FSAOPS_PLUGINS")}
    with _RUN_LOCK:
        os.chdir(cwd)
        os.environ["COLUMNS"] = str(columns)  # argparse wraps its help to this
        os.environ.pop("FSAOPS_PLUGINS", None)
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                yield out, err
        finally:
            os.chdir(saved_cwd)
            for name, value in saved_env.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


def run_fsaops(argv: list[str], *, cwd: Path, width: int) -> tuple[int, str, str]:
    """Run ``fsaops ARGV`` in this process; returns the exit status, stdout and stderr.

    Its reports are drawn for a terminal ``width`` columns wide, as on a
    real terminal, without colour.
    """
    from rich.console import Console

    from fsaops import cli

    def console() -> Console:
        # The command's own standard output: while a command runs, sys.stdout
        # is its standard error (what plugin code prints goes there).
        out = cli._stdout()
        assert out is not None
        return Console(file=out, width=width, highlight=False, color_system=None)

    with (
        _command_context(cwd, width) as (out, err),
        mock.patch.object(cli, "_stdout_console", console),
    ):
        status = cli.main(argv)
    return status, out.getvalue(), err.getvalue()


def _lines(text: str) -> list[str]:
    return [line.rstrip() for line in text.rstrip("\n").splitlines()]


class Command(SphinxDirective):
    """``{fsaops-command} fsaops migrate --json``: run it, show what it printed.

    ``:setup:`` commands (``fsaops migrate scenarios/a.toml --json > a.json``,
    separated by ``;``) run first, in the documentation's folder, each writing what it printed
    to a file of a scratch folder; the command then runs in that folder, so
    that it can read those files (``fsaops diff a.json b.json``).
    """

    required_arguments = 1
    final_argument_whitespace = True
    option_spec: ClassVar[dict[str, Any]] = {
        "exit": directives.nonnegative_int,
        "width": directives.positive_int,
        "stream": lambda arg: directives.choice(arg, ("stdout", "stderr", "both")),
        "head": directives.nonnegative_int,
        "tail": directives.nonnegative_int,
        "json-omit": directives.unchanged,
        "json-compact": directives.flag,
        "language": directives.unchanged,
        "no-prompt": directives.flag,
        "wrap": directives.flag,
        "small": directives.flag,
        "setup": directives.unchanged,
    }

    def run(self) -> list[nodes.Node]:
        """Run the command and show its output as a console session."""
        command = self.arguments[0]
        argv = shlex.split(command)
        if not argv or argv[0] != "fsaops":
            raise self.error(f"not an fsaops command: {command!r}")
        width = self.options.get("width", 88)
        with tempfile.TemporaryDirectory(prefix="fsaops-docs-") as scratch:
            cwd = Path(self.env.srcdir)
            setup = self.options.get("setup", "").strip()
            for line in filter(None, (part.strip() for part in setup.split(";"))):
                words = shlex.split(line)
                if len(words) < 4 or words[0] != "fsaops" or words[-2] != ">":
                    raise self.error(f"a setup line is `fsaops ARGS > FILE`, not {line!r}")
                done, written, problems = run_fsaops(words[1:-2], cwd=cwd, width=width)
                if done != 0:
                    raise self.error(f"{line!r} exited with status {done}: {problems[:500]}")
                (Path(scratch) / words[-1]).write_text(written, encoding="utf-8")
                for dependency in words[1:-2]:
                    if (cwd / dependency).is_file():
                        self.env.note_dependency(str(cwd / dependency))
            if setup:
                cwd = Path(scratch)
            status, out, err = run_fsaops(argv[1:], cwd=cwd, width=width)
        expected = self.options.get("exit", 0)
        if status != expected:
            raise self.error(
                f"{command!r} exited with status {status}, not {expected}: {err.strip()[:500]}"
            )
        stream = self.options.get("stream", "stdout")
        text = {"stdout": out, "stderr": err, "both": out + err}[stream]
        omit = self.options.get("json-omit")
        if omit or "json-compact" in self.options:
            data = json.loads(text)
            for key in (omit or "").split(","):
                data.pop(key.strip(), None)
            if "json-compact" in self.options:
                text = _compact_json(data, 0, width)
            else:
                text = json.dumps(data, indent=2, sort_keys=True)
        lines = _cut(_lines(text), self.options.get("head"), self.options.get("tail"))
        if "no-prompt" not in self.options:
            lines.insert(0, f"$ {command}")
        shown = "\n".join(lines)
        block = nodes.literal_block(shown, shown, language=self.options.get("language", "console"))
        for flag in ("wrap", "small"):
            if flag in self.options:
                block["classes"].append(f"fsaops-{flag}")
        self.set_source_info(block)
        return [block]


def _compact_json(value: object, indent: int, width: int) -> str:
    """JSON with sorted keys, two-space indents, and short objects on one line."""
    flat = json.dumps(value, sort_keys=True)
    if not isinstance(value, (dict, list)) or indent + len(flat) <= width - 8 or not value:
        return flat
    pad = " " * (indent + 2)
    if isinstance(value, dict):
        items = [
            f"{pad}{json.dumps(k)}: {_compact_json(v, indent + 2, width)}"
            for k, v in sorted(value.items())
        ]
        return "{\n" + ",\n".join(items) + "\n" + " " * indent + "}"
    items = [pad + _compact_json(v, indent + 2, width) for v in value]
    return "[\n" + ",\n".join(items) + "\n" + " " * indent + "]"


def _cut(lines: list[str], head: int | None, tail: int | None) -> list[str]:
    if head is None and tail is None:
        return lines
    keep_head = head or 0
    keep_tail = tail or 0
    if keep_head + keep_tail >= len(lines):
        return lines
    skipped = len(lines) - keep_head - keep_tail
    middle = [f"[... {skipped} more lines]"]
    return lines[:keep_head] + middle + (lines[len(lines) - keep_tail :] if keep_tail else [])


class Usage(SphinxDirective):
    """``{fsaops-usage} migrate``: the usage lines of ``fsaops migrate --help``."""

    required_arguments = 0
    optional_arguments = 3

    def run(self) -> list[nodes.Node]:
        """Ask the command line for its help and keep the ``usage:`` paragraph."""
        argv = [*self.arguments, "--help"]
        status, out, err = run_fsaops(argv, cwd=Path(self.env.srcdir), width=80)
        if status != 0 or not out.startswith("usage:"):
            raise self.error(f"fsaops {' '.join(argv)} failed: {err.strip()[:500]}")
        usage = out.split("\n\n", 1)[0].rstrip()
        block = nodes.literal_block(usage, usage, language="text")
        self.set_source_info(block)
        return [block]


# -- the example third-party plugin, installed for one command ----------------------

#: The example third-party plugin's project, a distribution of its own, which
#: the plugin tutorial walks through.
EXAMPLE_PLUGIN = Path(__file__).resolve().parent.parent / "examples" / "fsaops-example-plugin"

# Installing a project changes sys.path and sys.modules: one at a time.
_INSTALL_LOCK = threading.Lock()


def _pyproject(project: Path) -> dict[str, Any]:
    with (project / "pyproject.toml").open("rb") as file:
        return tomllib.load(file)


def package_folders(project: Path) -> list[Path]:
    """The folders a project's packages are found in (setuptools' ``packages.find.where``)."""
    setuptools: dict[str, Any] = _pyproject(project).get("tool", {}).get("setuptools", {})
    where: list[str] = setuptools.get("packages", {}).get("find", {}).get("where", ["."])
    return [(project / folder).resolve() for folder in where]


def _dist_info(project: Path, site: Path) -> None:
    """Write a project's metadata into ``site`` as pip would: name, version, entry points."""
    from fsaops.testing.dist import write_dist_info

    table: dict[str, Any] = _pyproject(project)["project"]
    groups: dict[str, dict[str, str]] = table.get("entry-points", {})
    write_dist_info(site, str(table["name"]), groups, version=str(table["version"]))


@contextlib.contextmanager
def installed(*projects: Path) -> Iterator[None]:
    """Make projects (folders with a ``pyproject.toml``) look installed, for a while.

    Their metadata goes to a temporary folder on ``sys.path`` and their
    package folders go on ``sys.path`` too, so the plugin loader finds their
    entry points and imports their modules as if ``pip install`` had run;
    afterwards both leave ``sys.path`` again, and the modules imported from
    the projects are forgotten.
    """
    folders = [folder for project in projects for folder in package_folders(project)]
    with _INSTALL_LOCK, tempfile.TemporaryDirectory() as temporary:
        site = Path(temporary)
        for project in projects:
            _dist_info(project, site)
        added = [str(site), *(str(folder) for folder in folders)]
        sys.path[:0] = added
        importlib.invalidate_caches()
        try:
            yield
        finally:
            for entry in added:
                sys.path.remove(entry)
                sys.path_importer_cache.pop(entry, None)
            for name, module in list(sys.modules.items()):
                where = getattr(module, "__file__", None)
                if where and any(Path(where).is_relative_to(folder) for folder in folders):
                    del sys.modules[name]
            importlib.invalidate_caches()


class ExampleCommand(SphinxDirective):
    """``{fsaops-example-command} fsaops plugins``: a command run with a project installed.

    ``:project:`` names the project's folder, relative to the page (or
    several, separated by spaces); they are installed for this one command
    (see :func:`installed`).  With
    ``:scenario: NAME``, the directive's content is a scenario file of that
    name: it is shown first, and the command runs in a fresh folder that
    holds it.  Otherwise it runs in the page's folder, or in ``:cwd:``, a
    folder relative to the page (``..``, the source tree's root, for a page
    that tells its reader to work there).  The other options are those of
    ``{fsaops-command}``.
    """

    required_arguments = 1
    final_argument_whitespace = True
    has_content = True
    option_spec: ClassVar[dict[str, Any]] = {
        "project": directives.unchanged_required,
        "scenario": directives.unchanged_required,
        "cwd": directives.unchanged_required,
        "exit": directives.nonnegative_int,
        "width": directives.positive_int,
        "head": directives.nonnegative_int,
        "tail": directives.nonnegative_int,
        "wrap": directives.flag,
        "small": directives.flag,
    }

    def run(self) -> list[nodes.Node]:
        """Install the project, run the command, show the scenario and what was printed."""
        command = self.arguments[0]
        argv = shlex.split(command)
        if not argv or argv[0] != "fsaops":
            raise self.error(f"not an fsaops command: {command!r}")
        if "project" not in self.options:
            raise self.error("the :project: option names the projects to install")
        projects = []
        for given in self.options["project"].split():
            project = Path(self.env.relfn2path(given)[1])
            if not (project / "pyproject.toml").is_file():
                raise self.error(f"{given} has no pyproject.toml")
            self.env.note_dependency(str(project / "pyproject.toml"))
            for folder in package_folders(project):
                for source in sorted(folder.rglob("*.py")):
                    self.env.note_dependency(str(source))
            projects.append(project)
        name = self.options.get("scenario")
        text = "\n".join(self.content).strip("\n") + "\n"
        if name is None and self.content:
            raise self.error("only a :scenario: has content")
        if name is not None and (not self.content or Path(name).name != name):
            raise self.error(":scenario: is a file name, and the content is the file")
        result: list[nodes.Node] = []
        width = self.options.get("width", 88)
        if name is not None and "cwd" in self.options:
            raise self.error("a :scenario: runs in a folder of its own: it takes no :cwd:")
        with tempfile.TemporaryDirectory() as temporary:
            cwd = Path(self.env.srcdir)
            if "cwd" in self.options:
                cwd = Path(self.env.relfn2path(self.options["cwd"])[1])
                if not cwd.is_dir():
                    raise self.error(f":cwd: {self.options['cwd']} is not a folder")
            if name is not None:
                cwd = Path(temporary)
                (cwd / name).write_text(text, encoding="utf-8")
                result.append(self._file(name, text))
            with installed(*projects):
                status, out, err = run_fsaops(argv[1:], cwd=cwd, width=width)
        expected = self.options.get("exit", 0)
        if status != expected:
            raise self.error(
                f"{command!r} exited with status {status}, not {expected}: {err.strip()[:500]}"
            )
        lines = _cut(_lines(out), self.options.get("head"), self.options.get("tail"))
        shown = "\n".join([f"$ {command}", *lines])
        block = nodes.literal_block(shown, shown, language="console")
        for flag in ("wrap", "small"):
            if flag in self.options:
                block["classes"].append(f"fsaops-{flag}")
        self.set_source_info(block)
        result.append(block)
        return result

    def _file(self, name: str, text: str) -> nodes.Node:
        block = nodes.literal_block(text, text, language="toml")
        box = nodes.container(
            "",
            nodes.caption(text=name),
            block,
            classes=["literal-block-wrapper"],
            literal_block=True,
        )
        self.set_source_info(box)
        return box


# -- the testing kit, read from its source --------------------------------------------
#
# The conformance suite, the pytest plugin and the Hypothesis strategies
# import pytest or Hypothesis, which the documentation's build does not
# need: these directives read their source (names, docstrings, the skips)
# instead of importing them.  They write reStructuredText, as autodoc does,
# so they are used inside ``{eval-rst}``.

# Google-style sections become reST as conf.py has autodoc's docstrings converted.
_NAPOLEON = NapoleonConfig(
    napoleon_google_docstring=True,
    napoleon_numpy_docstring=False,
    napoleon_use_rtype=False,
    napoleon_use_ivar=False,
    napoleon_attr_annotations=False,
)


def read_module(dotted: str) -> tuple[Path, ast.Module]:
    """The source file of a module and its syntax tree, without running the module."""
    spec = importlib.util.find_spec(dotted)
    if spec is None or spec.origin is None or not spec.origin.endswith(".py"):
        raise ValueError(f"no Python source for module {dotted!r}")
    path = Path(spec.origin)
    return path, ast.parse(path.read_text(encoding="utf-8"), str(path))


def read_class(dotted: str) -> tuple[Path, ast.ClassDef]:
    """The source file of a class and its syntax tree, without running its module."""
    module, _, name = dotted.rpartition(".")
    path, tree = read_module(module)
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == name:
            return path, node
    raise ValueError(f"module {module} defines no class {name}")


def suite_tests(cls: ast.ClassDef) -> list[ast.FunctionDef]:
    """The tests a suite class defines, in the order of its source: ``test_*`` methods."""
    return [
        node
        for node in cls.body
        if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")
    ]


def _docstring(node: ast.AST, what: str, name: str) -> list[str]:
    """A definition's docstring as reST lines, Google-style sections converted."""
    if not isinstance(node, ast.FunctionDef | ast.ClassDef | ast.Module):
        return []
    doc = ast.get_docstring(node) or ""
    converted = GoogleDocstring(doc.splitlines(), cast("Any", _NAPOLEON), what=cast("Any", what))
    return [*converted.lines(), ""]


def _note(sentence: str) -> list[str]:
    """A short note under an object's description (when it is skipped, its scope), as reST."""
    return ["   .. container:: fsaops-note", "", f"      {sentence}", ""]


def _indent(lines: list[str], by: int = 3) -> list[str]:
    pad = " " * by
    return [pad + line if line.strip() else "" for line in lines]


def _calls(node: ast.AST, module: str, name: str) -> list[ast.Call]:
    """Calls of ``module.name(...)`` anywhere under ``node``."""
    return [
        call
        for call in ast.walk(node)
        if isinstance(call, ast.Call)
        and isinstance(call.func, ast.Attribute)
        and call.func.attr == name
        and isinstance(call.func.value, ast.Name)
        and call.func.value.id == module
    ]


#: A reason a suite test is skipped: ("with", capability) when the subject
#: declares the capability, ("without", capability) when it does not,
#: ("import", module) when the module cannot be imported, ("inferred", "")
#: when the subclass declared no capabilities (they were inferred),
#: ("member", name) when the subject's table has no such member.
Skip = tuple[str, str]


class SkipReader:
    """Reads from a suite's source when each of its tests skips itself.

    A test skips through the suite's ``_needs*`` helpers, each an ``if
    subject.has(...)`` (or ``if not subject.has(...)``) around a
    ``pytest.skip``, and through ``pytest.importorskip``; helpers may call
    each other.  Anything else that skips is an error, so that the rules
    shown can never be fewer than the rules that run.
    """

    def __init__(self, cls: ast.ClassDef) -> None:
        methods = {node.name: node for node in cls.body if isinstance(node, ast.FunctionDef)}
        # The helpers that skip: those that call pytest.skip, or such a helper.
        self.helpers: dict[str, ast.FunctionDef] = {}
        grew = True
        while grew:
            grew = False
            for name, method in methods.items():
                if name.startswith("test_") or name in self.helpers:
                    continue
                if _calls(method, "pytest", "skip") or any(
                    isinstance(call, ast.Call) and self._helper(call) is not None
                    for call in ast.walk(method)
                ):
                    self.helpers[name] = method
                    grew = True

    def skips(self, test: ast.FunctionDef) -> list[Skip]:
        """The reasons ``test`` may skip, in the order it checks them."""
        return self._body(test.body, {}, test.name)

    def _body(self, body: list[ast.stmt], bound: dict[str, object], where: str) -> list[Skip]:
        found: list[Skip] = []
        for stmt in body:
            if isinstance(stmt, ast.If) and any(_calls(s, "pytest", "skip") for s in stmt.body):
                found.append(self._condition(stmt.test, bound, where))
                if any(_calls(s, "pytest", "skip") for s in stmt.orelse):
                    raise ValueError(f"{where}: a pytest.skip in an else branch")
                continue
            if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call):
                call = stmt.value
                helper = self._helper(call)
                if helper is not None:
                    found.extend(self._call(helper, call, bound))
                    continue
            for call in _calls(stmt, "pytest", "importorskip"):
                found.append(("import", self._string(call.args[0], bound, where)))
            if _calls(stmt, "pytest", "skip") or any(
                self._helper(call) is not None
                for call in ast.walk(stmt)
                if isinstance(call, ast.Call)
            ):
                raise ValueError(f"{where}, line {stmt.lineno}: a skip this page cannot read")
        return found

    def _helper(self, call: ast.Call) -> ast.FunctionDef | None:
        func = call.func
        if (
            isinstance(func, ast.Attribute)
            and isinstance(func.value, ast.Name)
            and func.value.id in {"self", "cls"}
        ):
            return self.helpers.get(func.attr)
        return None

    def _call(
        self, helper: ast.FunctionDef, call: ast.Call, bound: dict[str, object]
    ) -> list[Skip]:
        params = [arg.arg for arg in helper.args.args]
        static = any(
            isinstance(d, ast.Name) and d.id == "staticmethod" for d in helper.decorator_list
        )
        if not static:
            params = params[1:]  # self or cls
        values: dict[str, object] = {}
        for param, arg in zip(params, call.args, strict=False):
            if isinstance(arg, ast.Constant):
                values[param] = arg.value
            elif isinstance(arg, ast.Name):
                values[param] = bound.get(arg.id)
        return self._body(helper.body, values, helper.name)

    def _condition(self, test: ast.expr, bound: dict[str, object], where: str) -> Skip:
        if isinstance(test, ast.Attribute) and test.attr == "inferred":
            return ("inferred", "")
        if (  # subject.table.MEMBER is None
            isinstance(test, ast.Compare)
            and len(test.ops) == 1
            and isinstance(test.ops[0], ast.Is)
            and isinstance(test.comparators[0], ast.Constant)
            and test.comparators[0].value is None
            and isinstance(test.left, ast.Attribute)
            and isinstance(test.left.value, ast.Attribute)
            and test.left.value.attr == "table"
        ):
            return ("member", test.left.attr)
        if (  # self._one_buffer_a_page(subject, world)
            isinstance(test, ast.Call)
            and isinstance(test.func, ast.Attribute)
            and test.func.attr == "_one_buffer_a_page"
        ):
            return ("one buffer", "")
        if (  # self._one_block_size(subject, world)
            isinstance(test, ast.Call)
            and isinstance(test.func, ast.Attribute)
            and test.func.attr == "_one_block_size"
        ):
            return ("one block size", "")
        kind = "with"
        if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
            kind, test = "without", test.operand
        if (
            isinstance(test, ast.Call)
            and isinstance(test.func, ast.Attribute)
            and test.func.attr == "has"
            and len(test.args) == 1
        ):
            return (kind, self._string(test.args[0], bound, where))
        raise ValueError(f"{where}, line {test.lineno}: a skip condition this page cannot read")

    @staticmethod
    def _string(node: ast.expr, bound: dict[str, object], where: str) -> str:
        value: object = node.value if isinstance(node, ast.Constant) else None
        if isinstance(node, ast.Name):
            value = bound.get(node.id)
        if not isinstance(value, str):
            raise ValueError(f"{where}: cannot tell which capability {ast.unparse(node)} is")
        return value


def skipped(rules: list[Skip], capabilities: frozenset[str]) -> Skip | None:
    """The first rule that skips a test for a subject with ``capabilities``.

    Hypothesis is taken as installed (it comes with the testing kit), and
    the table as having every member a test asks for.
    """
    for kind, name in rules:
        if (kind == "with" and name in capabilities) or (
            kind == "without" and name not in capabilities
        ):
            return (kind, name)
    return None


def _some(names: list[str], joiner: str) -> str:
    """``a``, ``b`` or ``c``."""
    if len(names) == 1:
        return names[0]
    return f"{', '.join(names[:-1])} {joiner} {names[-1]}"


def _skips_in_words(rules: list[Skip]) -> str:
    """When a test is skipped, as a reST sentence: ``Skipped when ...`` or ``Never skipped.``."""
    with_ = [f"``{name}``" for kind, name in rules if kind == "with"]
    without = [f"``{name}``" for kind, name in rules if kind == "without"]
    imports = [name.capitalize() for kind, name in rules if kind == "import"]
    members = [f"``{name}``" for kind, name in rules if kind == "member"]
    parts = []
    if any(kind == "inferred" for kind, _ in rules):
        parts.append("when the subclass declares no capabilities (the skip says which it inferred)")
    if with_:
        parts.append(f"when the subject declares {_some(with_, 'or')}")
    if without:
        parts.append(f"when it does not declare {_some(without, 'and')}")
    if members:
        parts.append(f"when its table has no {_some(members, 'or')}")
    if any(kind == "one buffer" for kind, _ in rules):
        parts.append(
            "when every block size its type takes is the page size (a page of one buffer "
            "cannot show this)"
        )
    if any(kind == "one block size" for kind, _ in rules):
        parts.append(
            "when its type takes no other block size up to the page size (two mounts cannot "
            "differ in it)"
        )
    if imports:
        parts.append(f"when {_some(imports, 'or')} is not installed")
    return f"Skipped {'; '.join(parts)}." if parts else "Never skipped."


class _FromSource(SphinxDirective):
    """A directive that writes reST from source it reads; used inside ``{eval-rst}``."""

    def parse_rst(self, lines: list[str], path: Path) -> list[nodes.Node]:
        """Parse generated reST lines, as autodoc parses what it generates."""
        if not isinstance(self.state, RSTState):
            raise self.error(f"{self.name} writes reStructuredText: use it inside {{eval-rst}}")
        self.env.note_dependency(str(path))
        content = StringList(lines, source=f"{path} (read by {self.name})")
        node = nodes.section()
        node.document = self.state.document
        with switch_source_input(self.state, content):
            nested_parse_with_titles(self.state, content, node)
        return node.children

    @contextlib.contextmanager
    def python_context(self, module: str, cls: str | None = None) -> Iterator[None]:
        """Describe objects as members of ``module`` (and ``cls``); then restore the page's."""
        context = self.env.ref_context
        keys = ("py:module", "py:class", "py:classes")
        saved = {key: context.get(key) for key in keys}
        context["py:module"] = module
        # Each object directive resets py:class from the py:classes stack when it ends.
        context["py:classes"] = [] if cls is None else [cls]
        if cls is None:
            context.pop("py:class", None)
        else:
            context["py:class"] = cls
        try:
            yield
        finally:
            for key, value in saved.items():
                if value is None:
                    context.pop(key, None)
                else:
                    context[key] = value


def _attribute_docs(cls: ast.ClassDef) -> tuple[list[str], dict[str, str]]:
    """A class docstring cut into its prose and its ``Class attributes:`` entries."""
    doc = ast.get_docstring(cls) or ""
    prose: list[str] = []
    entries: dict[str, list[str]] = {}
    current: list[str] | None = None
    inside = False
    for line in doc.splitlines():
        if line.strip() == "Class attributes:":
            inside = True
            continue
        if not inside:
            prose.append(line)
            continue
        match = re.match(r"^ {4}(\w+): (.*)$", line)
        if match:
            current = entries.setdefault(match.group(1), [])
            current.append(match.group(2))
        elif line.startswith("        ") and current is not None:
            current.append(line.strip())
        elif line.strip():
            inside = False
            prose.append(line)
    return prose, {name: " ".join(words) for name, words in entries.items()}


def _aliases(tree: ast.Module) -> dict[str, str]:
    """Names imported under another name (``Set as AbstractSet``), by the name the code uses."""
    return {
        alias.asname: alias.name.rpartition(".")[2]
        for node in tree.body
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
        if alias.asname is not None
    }


def _class_variables(cls: ast.ClassDef, aliases: dict[str, str]) -> list[tuple[str, str, str]]:
    """(name, type, default) of each ``ClassVar`` a class declares, aliases undone."""
    found = []
    for node in cls.body:
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
            continue
        annotation = node.annotation
        if isinstance(annotation, ast.Subscript) and ast.unparse(annotation.value) == "ClassVar":
            annotation = annotation.slice
        default = ast.unparse(node.value) if node.value is not None else ""
        written = ast.unparse(annotation)
        for alias, name in aliases.items():
            written = re.sub(rf"\b{re.escape(alias)}\b", name, written)
        found.append((node.target.id, written, default))
    return found


class SuiteClass(_FromSource):
    """``fsaops-suite-class DOTTED.CLASS``: a suite class and its class attributes.

    The attributes are the class's ``ClassVar`` declarations, each described
    by its entry in the docstring's ``Class attributes:`` section (an
    attribute without one fails the build).
    """

    required_arguments = 1

    def run(self) -> list[nodes.Node]:
        """Read the class and describe it."""
        dotted = self.arguments[0]
        try:
            path, cls = read_class(dotted)
        except ValueError as exc:
            raise self.error(str(exc)) from None
        module = dotted.rpartition(".")[0]
        prose, described = _attribute_docs(cls)
        lines = [f".. py:class:: {cls.name}", f"   :module: {module}", ""]
        lines += _indent(GoogleDocstring(prose, cast("Any", _NAPOLEON), what="class").lines())
        lines.append("")
        aliases = _aliases(read_module(module)[1])
        for name, annotation, default in _class_variables(cls, aliases):
            if name not in described:
                raise self.error(f"{dotted}.{name} is not described under 'Class attributes:'")
            lines += [f"   .. py:attribute:: {name}", f"      :value: {default}", ""]
            lines += [f"      ``{annotation}``: {described[name]}", ""]
        with self.python_context(module):
            return self.parse_rst(lines, path)


class SuiteTests(_FromSource):
    """``fsaops-suite-tests DOTTED.CLASS`` with ``:prefix: test_hook_``: tests of a suite.

    Each test is a method of the class, with its docstring and when it is
    skipped (read by :class:`SkipReader`).  Every test must be shown on
    some page: the build checks that none is left out.
    """

    required_arguments = 1
    option_spec: ClassVar[dict[str, Any]] = {"prefix": directives.unchanged_required}

    def run(self) -> list[nodes.Node]:
        """Read the tests with the prefix and describe each."""
        dotted = self.arguments[0]
        prefix = self.options.get("prefix", "test_")
        try:
            path, cls = read_class(dotted)
        except ValueError as exc:
            raise self.error(str(exc)) from None
        tests = suite_tests(cls)
        chosen = [test for test in tests if test.name.startswith(prefix)]
        if not chosen:
            raise self.error(f"{dotted} has no test whose name starts with {prefix!r}")
        reader = SkipReader(cls)
        lines: list[str] = []
        for test in chosen:
            try:
                rules = reader.skips(test)
            except ValueError as exc:
                raise self.error(str(exc)) from None
            lines += [f".. py:method:: {test.name}", ""]
            lines += _indent(_docstring(test, "method", f"{dotted}.{test.name}"))
            lines += _note(_skips_in_words(rules))
        _note_suite(self.env, dotted, {test.name for test in tests}, {t.name for t in chosen})
        module, _, name = dotted.rpartition(".")
        with self.python_context(module, name):
            return self.parse_rst(lines, path)


class SuiteSkips(_FromSource):
    """``fsaops-suite-skips DOTTED.CLASS`` with ``:capabilities: a, b``: what a declaration skips.

    How many of the suite's tests run for a subject that declares those
    capabilities (with Hypothesis installed), and a list of those skipped,
    each with the capability that decides it.
    """

    required_arguments = 1
    option_spec: ClassVar[dict[str, Any]] = {"capabilities": directives.unchanged}

    def run(self) -> list[nodes.Node]:
        """Work out the skips and list them."""
        dotted = self.arguments[0]
        words = self.options.get("capabilities") or ""
        capabilities = frozenset(part.strip() for part in words.split(",") if part.strip())
        try:
            path, cls = read_class(dotted)
            reader = SkipReader(cls)
            tests = [(test.name, reader.skips(test)) for test in suite_tests(cls)]
        except ValueError as exc:
            raise self.error(str(exc)) from None
        left_out: list[tuple[str, Skip]] = []
        for name, rules in tests:
            rule = skipped(rules, capabilities)
            if rule is not None:
                left_out.append((name, rule))
        lines = [
            f"{len(tests) - len(left_out)} of the suite's {len(tests)} tests run, and "
            f"{len(left_out)} {'is' if len(left_out) == 1 else 'are'} skipped"
            + (":" if left_out else "."),
            "",
        ]
        for name, (kind, capability) in left_out:
            need = "needs" if kind == "without" else "does not apply with"
            lines.append(f"* :py:meth:`~{dotted}.{name}` ({need} ``{capability}``)")
        lines.append("")
        return self.parse_rst(lines, path)


def _suites(env: Any) -> dict[str, dict[str, Any]]:
    """Per suite class: its tests, and the tests each page shows (kept in the environment)."""
    if not hasattr(env, "fsaops_suites"):
        env.fsaops_suites = {}
    record: dict[str, dict[str, Any]] = env.fsaops_suites
    return record


def _note_suite(env: Any, dotted: str, tests: set[str], shown: set[str]) -> None:
    """Remember which tests of a suite this page showed, for :func:`_check_suites`."""
    record = _suites(env)
    entry = record.setdefault(dotted, {"tests": set(), "shown": {}})
    entry["tests"] = set(tests)
    entry["shown"].setdefault(env.docname, set()).update(shown)


def _purge_suites(app: Sphinx, env: Any, docname: str) -> None:
    for entry in _suites(env).values():
        entry["shown"].pop(docname, None)


def _merge_suites(app: Sphinx, env: Any, docnames: set[str], other: Any) -> None:
    mine = _suites(env)
    for dotted, theirs in _suites(other).items():
        entry = mine.setdefault(dotted, {"tests": set(), "shown": {}})
        entry["tests"] |= theirs["tests"]
        for docname, names in theirs["shown"].items():
            entry["shown"].setdefault(docname, set()).update(names)


def _check_suites(app: Sphinx, env: Any) -> None:
    """Warn (an error, with ``-W``) about a test of a suite that no page shows."""
    for dotted, entry in _suites(env).items():
        shown: set[str] = set().union(*entry["shown"].values())
        for name in sorted(entry["tests"] - shown):
            _logger.warning("%s.%s is on no page (no fsaops-suite-tests shows it)", dotted, name)


class Fixtures(_FromSource):
    """``fsaops-fixtures DOTTED.MODULE``: the pytest fixtures a module defines.

    Each function decorated with ``pytest.fixture`` becomes a ``fixture``
    object (so ``{fixture}`` links to it are checked), with its docstring,
    its scope and the fixtures it uses.
    """

    required_arguments = 1

    def run(self) -> list[nodes.Node]:
        """Read the module's fixtures and describe each."""
        try:
            path, tree = read_module(self.arguments[0])
        except ValueError as exc:
            raise self.error(str(exc)) from None
        found = [(node, scope) for node in tree.body if (scope := _fixture_scope(node))]
        if not found:
            raise self.error(f"{self.arguments[0]} defines no fixture")
        names = {node.name for node, _scope in found if isinstance(node, ast.FunctionDef)}
        lines: list[str] = []
        for node, scope in found:
            assert isinstance(node, ast.FunctionDef)
            lines += [f".. fixture:: {node.name}", ""]
            lines += _indent(_docstring(node, "function", node.name))
            # The fixtures it uses from this module (pytest's own, such as
            # ``request``, are an implementation detail).
            uses = [f":fixture:`{arg.arg}`" for arg in node.args.args if arg.arg in names]
            words = f"Scope ``{scope}``" + (f"; uses {_some(uses, 'and')}." if uses else ".")
            lines += _note(words)
        return self.parse_rst(lines, path)


def _fixture_scope(node: ast.stmt) -> str | None:
    """The scope of a ``@pytest.fixture`` function (``function`` by default), or ``None``."""
    if not isinstance(node, ast.FunctionDef):
        return None
    for decorator in node.decorator_list:
        call = decorator if isinstance(decorator, ast.Call) else None
        target = call.func if call is not None else decorator
        if ast.unparse(target) != "pytest.fixture":
            continue
        for keyword in call.keywords if call is not None else []:
            if keyword.arg == "scope" and isinstance(keyword.value, ast.Constant):
                return str(keyword.value.value)
        return "function"
    return None


def module_all(tree: ast.Module) -> list[str]:
    """The names a module's ``__all__`` lists (it must be a literal list or tuple)."""
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets)
            and isinstance(node.value, ast.List | ast.Tuple)
        ):
            return [str(ast.literal_eval(item)) for item in node.value.elts]
    return []


def _signature(node: ast.FunctionDef) -> str:
    """Parameters and defaults as written, without annotations: ``(a, b=1, *, c=())``."""
    args = node.args
    plain = [*args.posonlyargs, *args.args]
    defaults = [None] * (len(plain) - len(args.defaults)) + list(args.defaults)
    parts = [
        arg.arg + ("" if default is None else f"={ast.unparse(default)}")
        for arg, default in zip(plain, defaults, strict=True)
    ]
    if args.vararg is not None:
        parts.append(f"*{args.vararg.arg}")
    elif args.kwonlyargs:
        parts.append("*")
    for arg, kw_default in zip(args.kwonlyargs, args.kw_defaults, strict=True):
        parts.append(arg.arg + ("" if kw_default is None else f"={ast.unparse(kw_default)}"))
    if args.kwarg is not None:
        parts.append(f"**{args.kwarg.arg}")
    return f"({', '.join(parts)})"


class SourceFunctions(_FromSource):
    """``fsaops-source-functions DOTTED.MODULE``: the functions a module's ``__all__`` lists.

    For a module that cannot be imported at build time: each function with
    its parameters, its docstring, and what it returns (the annotation, as
    written).  The page declares the module (``py:module``) itself.
    """

    required_arguments = 1

    def run(self) -> list[nodes.Node]:
        """Read the module and describe its public functions."""
        dotted = self.arguments[0]
        try:
            path, tree = read_module(dotted)
        except ValueError as exc:
            raise self.error(str(exc)) from None
        functions = {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}
        lines: list[str] = []
        for name in module_all(tree):
            node = functions.get(name)
            if node is None:
                continue
            lines += [f".. py:function:: {name}{_signature(node)}", ""]
            lines += _indent(_docstring(node, "function", f"{dotted}.{name}"))
            if node.returns is not None:
                # ``st.SearchStrategy[int]`` reads as ``SearchStrategy[int]``.
                returns = re.sub(r"\b[a-z_]\w*\.", "", ast.unparse(node.returns))
                lines += _note(f"Returns ``{returns}``.")
        with self.python_context(dotted):
            return self.parse_rst(lines, path)


class MappingTable(SphinxDirective):
    """``{fsaops-mapping-table} DOTTED.NAME``: a constant mapping of names to sentences, as a table.

    Options ``:key:`` and ``:value:`` title the two columns.
    """

    required_arguments = 1
    option_spec: ClassVar[dict[str, Any]] = {
        "key": directives.unchanged_required,
        "value": directives.unchanged_required,
    }

    def run(self) -> list[nodes.Node]:
        """Import the mapping and show one row per entry."""
        module_name, _, name = self.arguments[0].rpartition(".")
        try:
            value = getattr(importlib.import_module(module_name), name)
        except (ImportError, AttributeError) as exc:
            raise self.error(f"cannot import {self.arguments[0]}: {exc}") from None
        if not isinstance(value, Mapping):
            raise self.error(f"{self.arguments[0]} is not a mapping")
        table = nodes.table(classes=["fsaops-mapping"])
        group = nodes.tgroup(cols=2)
        table += group
        group += nodes.colspec(colwidth=25)
        group += nodes.colspec(colwidth=75)
        head = nodes.thead()
        group += head
        titles = (self.options.get("key", "Name"), self.options.get("value", "Meaning"))
        head += _row([nodes.paragraph(text=title) for title in titles])
        body = nodes.tbody()
        group += body
        for key, text in value.items():
            cell = nodes.paragraph()
            cell += nodes.literal(str(key), str(key))
            body += _row([cell, nodes.paragraph(text=str(text))])
        self.set_source_info(table)
        return [table]


def setup(app: Sphinx) -> dict[str, Any]:
    """Register the directives, the citation transform and their setting."""
    app.add_config_value("fsaops_example_scenario", "", "env", types=frozenset({str}))
    app.add_directive("fsaops-config-table", ConfigTable)
    app.add_directive("fsaops-literal", Literal)
    app.add_directive("fsaops-command", Command)
    app.add_directive("fsaops-usage", Usage)
    app.add_directive("fsaops-example-command", ExampleCommand)
    app.add_directive("fsaops-mapping-table", MappingTable)
    app.add_directive("fsaops-suite-class", SuiteClass)
    app.add_directive("fsaops-suite-tests", SuiteTests)
    app.add_directive("fsaops-suite-skips", SuiteSkips)
    app.add_directive("fsaops-fixtures", Fixtures)
    app.add_directive("fsaops-source-functions", SourceFunctions)
    app.add_object_type("fixture", "fixture", indextemplate="pair: %s; pytest fixture")
    app.connect("env-purge-doc", _purge_suites)
    app.connect("env-merge-info", _merge_suites)
    app.connect("env-check-consistency", _check_suites)
    app.add_transform(KernelSpecCitations)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
