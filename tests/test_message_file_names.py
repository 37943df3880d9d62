"""A file name in a one-line message reads as the one name it is.

A message is one line, its whitespace collapsed: a newline or a tab in a
scenario's, a report's or a page's name became a space there, and the line
named another file (``a b.toml``) while the JSON report kept the real one.
Every message that names a user's file now shows such a name escaped
(``a\\nb.toml``), through :func:`fsaops.errors.shown_path`; a plain name,
spaces and backslashes included, is shown as it always was.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from inproc import fsaops

ODD = "a\nb\tc.toml"
SHOWN = "a\\nb\\tc.toml"
ONE_MOUNT = '[plugins]\nload = ["ext2"]\n[[mount]]\nfs = "ext2"\npages = 8\n'


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working folder of the test's own."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _error(*args: str) -> str:
    """The one line of a command that ends as bad input, its ``fsaops: error: `` cut off."""
    status, _out, err = fsaops(*args)
    assert status == 2, err
    assert err.count("\n") == 1 and err.startswith("fsaops: error: "), err
    return err.removeprefix("fsaops: error: ").rstrip("\n")


@pytest.mark.parametrize(
    ("text", "args", "said"),
    [
        (None, ["config", "check"], f"{SHOWN}: no such file"),
        ("x = 1\n", ["migrate"], f"{SHOWN}: x: unknown key"),
        ("[[mount\n", ["config", "check"], f"{SHOWN}: not valid TOML"),
        (f"{ONE_MOUNT}[kernel]\nnodes = 0\n", ["migrate"], f"{SHOWN}: kernel.nodes"),
        (f"{ONE_MOUNT}[kernel]\nmigration = false\n", ["migrate"], f"{SHOWN}: kernel.migration"),
        ('[plugins]\nload = ["nope"]\n', ["migrate"], f"{SHOWN}: plugins.load[0]"),
        ("[plugins]\nload = []\n", ["explore"], f"{SHOWN}: mounts nothing to explore"),
        (ONE_MOUNT, ["explore", "--fs", "ext2", "--mode", "nobh"], f"{SHOWN}: no mount of ext2"),
    ],
)
def test_a_scenario_s_name_is_escaped_in_its_error(
    folder: Path, text: str | None, args: list[str], said: str
) -> None:
    if text is not None:
        (folder / ODD).write_text(text)
    assert _error(*args, ODD).startswith(said)


def test_a_report_s_name_is_escaped_in_its_error(folder: Path) -> None:
    (folder / ODD).write_text("[]")
    assert _error("diff", ODD, ODD).startswith(f"{SHOWN}: not a report: an array")
    assert _error("diff", "missing\n.json", ODD).startswith("missing\\n.json: no such file")


def test_a_page_s_name_is_escaped_in_its_error(folder: Path) -> None:
    said = _error("migrate", "--html", "no\nsuch/page.html")
    assert said == "--html no\\nsuch/page.html: no such directory: no\\nsuch"
    (folder / ODD).write_text(ONE_MOUNT)
    said = _error("migrate", ODD, "--html", ODD)
    assert said == f"--html {SHOWN}: is the scenario this command reads; name another file"


def test_the_json_keeps_the_name_and_a_plain_name_is_shown_as_it_is(folder: Path) -> None:
    (folder / ODD).write_text(ONE_MOUNT)
    status, out, err = fsaops("migrate", ODD, "--json")
    assert status == 0, err
    assert json.loads(out)["source"] == ODD
    status, out, err = fsaops("config", "check", ODD)
    assert status == 0, err
    assert out.startswith(f"{SHOWN}: OK: 1 mount(s)")
    status, out, _err = fsaops("migrate", "x\ny.toml", "--json")
    assert status == 2 and json.loads(out)["error"] == "x\\ny.toml: no such file"
    plain = "a b\\c.toml"  # a space and a backslash: no escape needed, none made
    assert _error("config", "check", plain) == f"{plain}: no such file"


def test_shown_path() -> None:
    from fsaops.errors import shown_path

    for plain in ("s.toml", "a b.toml", "a\\nb.toml", "café.toml", "'q'.toml", ""):
        assert shown_path(plain) == plain
    assert shown_path(Path("a\nb")) == "a\\nb"
    assert shown_path("e\x1b]0;x\x07\r.toml") == "e\\x1b]0;x\\x07\\r.toml"
    assert shown_path("not\xa0utf8\udcff") == "not\\xa0utf8\\udcff"
    # In a name that needs escapes, a backslash is doubled: `\n` is a newline, `\\n` is not.
    assert shown_path("a\\n\n") == "a\\\\n\\n"
    for name in ("a\nb", "a\\\tb", "x"):
        shown = shown_path(name)
        assert shown.isprintable() and shown_path(shown) == shown
