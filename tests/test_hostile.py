"""Hostile input: adversarial scenario files get one clear message and exit 2, never a traceback."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from fsaops.cli import main

PAYLOADS: dict[str, tuple[Callable[[], bytes], str]] = {
    "deeply nested arrays": (
        lambda: b"a = " + b"[" * 100_000 + b"]" * 100_000 + b"\n",
        "nested too deeply",
    ),
    "deeply nested tables": (
        lambda: b"x = " + b"{a = " * 5_000 + b"1" + b"}" * 5_000 + b"\n",
        "nested too deeply",
    ),
    "an integer of 5000 digits": (
        lambda: b"[kernel]\nnodes = " + b"9" * 5_000 + b"\n",
        "too many digits",
    ),
    "an absurd memory size": (
        lambda: b'[kernel]\nnode_memory = "99999999999999999999999TiB"\n',
        "kernel.node_memory",
    ),
    "a huge page count": (
        lambda: b'[[mount]]\nfs = "ext2"\npages = 1000000000000\n',
        "do not fit on node 0",
    ),
    "UTF-16": (lambda: "[kernel]\nnodes = 2\n".encode("utf-16"), "not UTF-8 text"),
    "Latin-1": (lambda: b"# caf\xe9\n[kernel]\nnodes = 2\n", "not UTF-8 text"),
    "random bytes": (lambda: bytes(range(256)) * 16, "not UTF-8 text"),
    "NUL bytes": (lambda: b"[kernel]\x00nodes = 2\n", "NUL bytes"),
    "a file of 2 MiB": (lambda: b"# padding\n" * 220_000, "too large"),
    "a key of a million characters": (
        lambda: b"[kernel]\n" + b"x" * 1_000_000 + b" = 1\n",
        "kernel.xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...: unknown key",
    ),
    "infinity": (lambda: b"[workload]\ndirty = inf\n", "finite"),
    "not a number": (lambda: b"[workload]\ndirty = nan\n", "finite"),
    "a table where a value goes": (lambda: b"[kernel.nodes]\nx = 1\n", "kernel.nodes"),
    "a date for a count": (lambda: b"[kernel]\nnodes = 1979-05-27\n", "kernel.nodes"),
}


@pytest.mark.parametrize("name", sorted(PAYLOADS))
@pytest.mark.parametrize("command", ["config check", "migrate"])
def test_hostile_scenario_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, command: str
) -> None:
    make, expected = PAYLOADS[name]
    path = tmp_path / "scenario.toml"
    path.write_bytes(make())
    status = main([*command.split(), str(path), "--plugins", "ext2,swap"])
    out, err = capsys.readouterr()
    assert status == 2
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err[:500]
    assert lines[0].startswith(f"fsaops: error: {path}: ")
    assert expected in lines[0]
    assert len(lines[0]) < 400, "the message does not echo the hostile input"


def test_a_directory_and_a_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "check", str(tmp_path)]) == 2
    assert "is a directory" in capsys.readouterr().err
    assert main(["migrate", str(tmp_path / "nope.toml")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_a_byte_order_mark_is_accepted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bom.toml"
    path.write_bytes(b"\xef\xbb\xbf[kernel]\nnodes = 2\n")
    assert main(["config", "check", str(path), "--plugins", "ext2,swap"]) == 0
    assert "OK" in capsys.readouterr().out


def test_an_unreadable_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import fsaops.config.reading

    def refuse(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(fsaops.config.reading, "open", refuse, raising=False)
    path = tmp_path / "secret.toml"
    path.write_text("[kernel]\n")
    assert main(["config", "check", str(path)]) == 2
    assert capsys.readouterr().err == f"fsaops: error: {path}: cannot read: Permission denied\n"
