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
    exit status is not the expected one.
``{fsaops-usage} COMMAND...``
    The ``usage:`` lines of ``fsaops COMMAND --help``.

A transform also turns every citation of the project's behavioural spec,
"KERNEL-SPEC §3" (and "§3-§7", "§2 and §3"), into a link to that section of
the spec's page, in hand-written pages and in docstrings alike; on the
spec's page itself, a bare "§4" links too.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import os
import re
import shlex
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar
from unittest import mock

from docutils import nodes
from docutils.parsers.rst import directives
from sphinx import addnodes
from sphinx.transforms import SphinxTransform
from sphinx.util.docutils import SphinxDirective

if TYPE_CHECKING:
    from sphinx.application import Sphinx

    from fsaops.config import ConfigKey

#: The page that publishes the behavioural spec, and the labels of its sections.
SPEC_DOC = "kernel-spec"
SPEC_LABEL = "kernel-spec-{}"
#: The section of the configuration page that says how sizes are written.
SIZES_LABEL = "config-sizes"

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
        import sys

        return Console(file=sys.stdout, width=width, highlight=False, color_system=None)

    with (
        _command_context(cwd, width) as (out, err),
        mock.patch.object(cli, "_stdout_console", console),
    ):
        status = cli.main(argv)
    return status, out.getvalue(), err.getvalue()


def _lines(text: str) -> list[str]:
    return [line.rstrip() for line in text.rstrip("\n").splitlines()]


class Command(SphinxDirective):
    """``{fsaops-command} fsaops migrate --json``: run it, show what it printed."""

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
    }

    def run(self) -> list[nodes.Node]:
        """Run the command and show its output as a console session."""
        command = self.arguments[0]
        argv = shlex.split(command)
        if not argv or argv[0] != "fsaops":
            raise self.error(f"not an fsaops command: {command!r}")
        width = self.options.get("width", 88)
        status, out, err = run_fsaops(argv[1:], cwd=Path(self.env.srcdir), width=width)
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


def setup(app: Sphinx) -> dict[str, Any]:
    """Register the directives, the citation transform and their setting."""
    app.add_config_value("fsaops_example_scenario", "", "env", types=frozenset({str}))
    app.add_directive("fsaops-config-table", ConfigTable)
    app.add_directive("fsaops-literal", Literal)
    app.add_directive("fsaops-command", Command)
    app.add_directive("fsaops-usage", Usage)
    app.add_transform(KernelSpecCitations)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
