"""Sphinx configuration for the fsaops documentation.

The build needs no network and no program outside the Python packages of
the ``docs`` dependency group: the pictures are SVG files kept in
``_static/``, there is no intersphinx, and the parts generated from the
code (the configuration reference, the command line's usage and output)
are made in the build's own process by ``_ext/fsaops_docs.py``.  It is
run with ``-n -W``, so every cross-reference must resolve; see
:func:`_resolve_short_names` for how names written the short way in
docstrings and annotations are found.
"""

from __future__ import annotations

import importlib
import sys
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from sphinx.ext.napoleon import Config as NapoleonConfig
from sphinx.ext.napoleon.docstring import GoogleDocstring

if TYPE_CHECKING:
    from sphinx.addnodes import pending_xref
    from sphinx.application import Sphinx
    from sphinx.environment import BuildEnvironment

project = "fsaops"
author = "The fsaops developers"
copyright = "the fsaops developers"
release = metadata.version("fsaops")
version = ".".join(release.split(".")[:2])

# The project's own helpers (docs/_ext/fsaops_docs.py): the configuration
# reference, command output and usage built from the code at build time,
# and links for "KERNEL-SPEC §n" citations.
sys.path.insert(0, str(Path(__file__).resolve().parent / "_ext"))

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.doctest",
    "sphinx.ext.viewcode",
    "fsaops_docs",
]

source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
root_doc = "index"
exclude_patterns = ["_build", "examples"]

# The annotated scenario the configuration reference shows, table by table.
fsaops_example_scenario = "scenarios/annotated.toml"

# -- MyST ----------------------------------------------------------------------

myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

# -- autodoc -------------------------------------------------------------------

autodoc_member_order = "bysource"

autodoc_typehints = "signature"
autodoc_default_options: dict[str, Any] = {}
# rich's Console is imported for type checking only (a run that prints JSON
# never imports rich): its name in a signature is rich's class.
autodoc_type_aliases = {"Console": "rich.console.Console"}
autoclass_content = "class"
add_module_names = False
python_maximum_signature_line_length = 88

# Docstrings are Google style (``Args:``, ``Returns:``, ``Raises:``,
# ``Attributes:``); see _google_docstrings below.
_NAPOLEON = NapoleonConfig(
    napoleon_google_docstring=True,
    napoleon_numpy_docstring=False,
    napoleon_use_rtype=False,
    napoleon_use_ivar=False,
    napoleon_attr_annotations=False,
)

# -- doctest -------------------------------------------------------------------

doctest_test_doctest_blocks = ""  # only the {doctest} and {testcode} directives
doctest_default_flags = 0

# -- cross-references ----------------------------------------------------------

nitpicky = True
# Without intersphinx (it would fetch inventories over the network) the
# standard library has no targets: its names are shown as plain text.
# (Sphinx itself already lets built-in types and names from typing through.)
_STDLIB = "|".join(sorted(sys.stdlib_module_names))
nitpick_ignore_regex = [
    (r"py:(class|exc|func|data)", rf"({_STDLIB})(\.\w+)+"),
    # rich draws the reports; its classes appear in signatures only.
    (r"py:class", r"rich\.[\w.]+"),
    # structlog writes the engine's events; its types appear in signatures only.
    (r"py:class", r"structlog\.[\w.]+"),
    # Private helper classes that appear in annotations (the scenario's
    # records of files and process areas, for instance) are not documented.
    (r"py:class", r"fsaops\.[\w.]*\._\w+"),
    # The explorer's type aliases in signatures (a task body, a policy, a
    # search's tally) are described in prose.
    (r"py:class", r"(Body|Found|Policy|Callable\[\[\])"),
    # importlib.metadata, imported as `metadata` where entry points are read.
    (r"py:class", r"metadata\.\w+"),
]
# The benchmark (fsaops.bench) is a command, not part of the API reference.
nitpick_ignore = [("py:mod", "fsaops.bench")]

# -- HTML ------------------------------------------------------------------------

html_theme = "furo"
html_title = f"fsaops {release}"
html_static_path = ["_static"]
html_css_files = ["fsaops.css"]
html_show_sourcelink = False
html_theme_options = {"navigation_with_keys": True}


def _google_docstrings(
    app: Sphinx,
    what: str,
    name: str,
    obj: object,
    options: dict[str, Any],
    lines: list[str],
) -> None:
    """Turn Google-style sections into reST, as ``sphinx.ext.napoleon`` does.

    Napoleon reads the first line of a constant's docstring as
    ``type: description``, but the model's constants are described in
    prose ("Mapping flag: a write-back I/O error happened"), so their
    docstrings are left as written.
    """
    if what in {"data", "attribute"}:
        return
    # GoogleDocstring takes napoleon's own Config as well as Sphinx's (napoleon's
    # documented use outside a Sphinx build); its annotations name only Sphinx's.
    docstring = GoogleDocstring(
        lines, cast("Any", _NAPOLEON), app, cast("Any", what), name, obj, options
    )
    lines[:] = docstring.lines()


def _resolve_short_names(
    app: Sphinx, env: BuildEnvironment, node: pending_xref, contnode: Any
) -> Any:
    """Find the documented object a short or re-exported Python name means.

    Docstrings and type annotations name model objects the short way
    (``Page``, ``KernelBug``), as the code imports them, and the helpers
    the package root re-exports are documented under their public names
    (``fsaops.migrate_page``) while the code refers to them by their home
    module (``fsaops.migrate.migrate_page``).  When Sphinx cannot find such
    a target, this looks for exactly one documented object with the same
    last name component, preferring the package root; anything else stays
    unresolved and fails the build.
    """
    if node.get("refdomain") != "py":
        return None
    target: str = node.get("reftarget", "")
    last = target.rpartition(".")[2]
    if not last:
        return None
    domain: Any = env.get_domain("py")
    candidates = sorted(
        name for name in domain.objects if name == last or name.endswith("." + last)
    )
    if not candidates:
        return None
    if "." in target:
        # A dotted name must point at the very object a candidate documents.
        obj = _lookup(target)
        if obj is None:
            return None
        candidates = [c for c in candidates if _lookup(c) is obj]
    root = [c for c in candidates if c == f"fsaops.{last}"]
    if root:
        candidates = root
    if len(candidates) != 1:
        return None
    result = domain.resolve_xref(
        env, node["refdoc"], app.builder, node["reftype"], candidates[0], node, contnode
    )
    if result is None:
        result = domain.resolve_xref(
            env, node["refdoc"], app.builder, "obj", candidates[0], node, contnode
        )
    return result


def _lookup(dotted: str) -> object:
    """The object a dotted name such as ``fsaops.kernel.Kernel.mount`` names, or ``None``."""
    module, _, name = dotted.rpartition(".")
    while module:
        try:
            obj: object = importlib.import_module(module)
        except ImportError:
            module, _, rest = module.rpartition(".")
            name = f"{rest}.{name}"
            continue
        for part in name.split("."):
            obj = getattr(obj, part, None)
        return obj
    return None


def setup(app: Sphinx) -> dict[str, Any]:
    """Register the docstring converter and the resolver for short names."""
    app.connect("autodoc-process-docstring", _google_docstrings)
    app.connect("missing-reference", _resolve_short_names)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
