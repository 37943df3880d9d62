"""The documentation keeps up with the code: every hook and every public name is documented.

Modelled on datasette's ``test_plugin_hooks_are_documented``: the hooks are
read from the hook specifications through pluggy, the public names from
``fsaops.__all__``, and each must be described in the documentation's
sources, so adding one without documenting it fails here.
"""

from __future__ import annotations

import re
from pathlib import Path

import pluggy
import pytest

import fsaops
from fsaops import hookspecs

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
