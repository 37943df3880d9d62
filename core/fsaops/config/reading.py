"""Reading a scenario: TOML text structured into the schema with cattrs, every error named.

:func:`parse_config` and :func:`load_config` check the file on its own:
TOML syntax, key names (an unknown key is an error, so a typo is never
ignored), types, and then the rules of ``fsaops.config.checks``.
cattrs' errors are flattened into one sentence per problem, naming the key
(``mount[1].mode``) and what was expected.
"""

from __future__ import annotations

import math
import os
import re
import stat
import tomllib
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

import attrs
import cattrs
from cattrs.errors import (
    AttributeValidationNote,
    BaseValidationError,
    ForbiddenExtraKeysError,
    IterableValidationError,
    IterableValidationNote,
)
from cattrs.gen import make_dict_structure_fn

from fsaops.config.checks import message, raise_problems, static_problems
from fsaops.config.schema import (
    BUILTIN_SOURCE,
    DEFAULT_SCENARIO,
    BuiltinConfig,
    ByteSize,
    Config,
)
from fsaops.config.sizes import parse_size, too_small
from fsaops.errors import ConfigError, did_you_mean, shown_path

__all__ = [
    "MAX_FILE_BYTES",
    "default_config",
    "load_config",
    "parse_config",
    "unstructure_config",
]

# -- structuring ----------------------------------------------------------------


class _Expected(Exception):
    """A value of the wrong type or form; says what was expected."""

    def __init__(self, expected: str, value: object) -> None:
        self.expected = expected
        self.value = value
        super().__init__(f"expected {expected}, got {_describe(value)}")


class _Tiny(float):
    """A TOML float that is not 0 as written but is 0.0 as a float (``1e-400``); keeps its text."""

    text: str

    def __new__(cls, text: str) -> _Tiny:
        tiny = super().__new__(cls, text)
        tiny.text = text
        return tiny


def _toml_float(text: str) -> float:
    """A TOML float; one too small to tell from 0 stays so marked, for its key to refuse."""
    value = float(text)
    return _Tiny(text) if too_small(text, value) else value


class _TooSmallNumber(_Expected):
    """A number that is not 0 as written, but too small to tell from 0."""

    def __init__(self, value: _Tiny) -> None:
        super().__init__("a number", value)
        said = f"{value.text} is not 0, but too small to tell from 0; write 0 or a larger number"
        self.args = (said,)

    def __str__(self) -> str:
        return str(self.args[0])


def _describe(value: object) -> str:
    if isinstance(value, _Tiny):
        return f"the number {value.text}"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"the integer {value}"
    if isinstance(value, float):
        return f"the number {value!r}"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"the string {shown!r}"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return f"a {type(value).__name__}"


def _structure_int(value: object, _: type) -> int:
    if type(value) is not int:
        raise _Expected("an integer", value)
    return value


def _structure_float(value: object, _: type) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _Expected("a number", value)
    if isinstance(value, _Tiny):
        raise _TooSmallNumber(value)
    result = float(value)
    if not math.isfinite(result):
        raise _Expected("a finite number", value)
    return result


def _structure_bool(value: object, _: type) -> bool:
    if type(value) is not bool:
        raise _Expected("true or false", value)
    return value


def _structure_str(value: object, _: type) -> str:
    if type(value) is not str:
        raise _Expected("a string", value)
    return value


_SIZE_EXPECTED: Final = 'a size: a number of bytes, or a string such as "64MiB"'


def _structure_size(value: object, _: type) -> ByteSize:
    if type(value) is int:
        return ByteSize(value)
    if type(value) is str:
        try:
            return ByteSize(parse_size(value))
        except ValueError:
            raise _Expected(_SIZE_EXPECTED, value) from None
    raise _Expected(_SIZE_EXPECTED, value)


def _is_homogeneous_tuple(cl: Any) -> bool:
    args: tuple[Any, ...] = getattr(cl, "__args__", ())
    return getattr(cl, "__origin__", None) is tuple and len(args) == 2 and args[1] is Ellipsis


def _tuple_factory(cl: Any, converter: cattrs.Converter) -> Callable[[object, type], object]:
    item_type = cl.__args__[0]
    if attrs.has(item_type):
        expected = "an array of tables"
    elif item_type is str:
        expected = "an array of strings"
    else:
        expected = "an array"

    def structure(value: object, _: type) -> tuple[object, ...]:
        if not isinstance(value, list):
            raise _Expected(expected, value)
        items: list[object] = []
        errors: list[Exception] = []
        for index, item in enumerate(value):
            try:
                items.append(converter.structure(item, item_type))
            except Exception as exc:
                exc.add_note(
                    IterableValidationNote(f"Structuring {cl} @ index {index}", index, item_type)
                )
                errors.append(exc)
        if errors:
            raise IterableValidationError(f"While structuring {cl}", errors, cl)
        return tuple(items)

    return structure


def _attrs_factory(cl: Any, converter: cattrs.Converter) -> Callable[[object, type], object]:
    inner = make_dict_structure_fn(
        cl, converter, _cattrs_forbid_extra_keys=True, _cattrs_detailed_validation=True
    )

    def structure(value: object, _: type) -> object:
        if not isinstance(value, dict):
            raise _Expected("a table", value)
        return inner(value, cl)

    return structure


def _converter() -> cattrs.Converter:
    conv = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)
    conv.register_structure_hook(int, _structure_int)
    conv.register_structure_hook(float, _structure_float)
    conv.register_structure_hook(bool, _structure_bool)
    conv.register_structure_hook(str, _structure_str)
    conv.register_structure_hook(ByteSize, _structure_size)
    conv.register_structure_hook_factory(_is_homogeneous_tuple, _tuple_factory)
    conv.register_structure_hook_factory(attrs.has, _attrs_factory)
    conv.register_unstructure_hook(ByteSize, int)
    return conv


def _format_path(path: Iterable[str | int]) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            # A hostile key is not echoed whole.
            name = f"{part[:37]}..." if len(part) > 40 else part
            out += f".{name}" if out else name
    return out


def _table_name(path: tuple[str | int, ...]) -> str:
    return _format_path(path) if path else "the top level"


def _unknown_keys(exc: ForbiddenExtraKeysError, path: tuple[str | int, ...]) -> list[str]:
    known = sorted(a.name for a in attrs.fields(exc.cl))
    problems = []
    for key in sorted(exc.extra_fields):
        hint = did_you_mean(key, known)
        where = _table_name(path)
        problems.append(
            f"{_format_path((*path, key))}: unknown key{hint} ({where} takes: {', '.join(known)})"
        )
    return problems


def _flatten(exc: BaseException, path: tuple[str | int, ...]) -> list[str]:
    if isinstance(exc, ForbiddenExtraKeysError):
        return _unknown_keys(exc, path)
    if isinstance(exc, BaseValidationError):
        problems: list[str] = []
        for sub in exc.exceptions:
            sub_path = path
            for note in getattr(sub, "__notes__", ()):
                if isinstance(note, AttributeValidationNote):
                    sub_path = (*sub_path, note.name)
                elif isinstance(note, IterableValidationNote):
                    sub_path = (*sub_path, note.index)
            problems.extend(_flatten(sub, sub_path))
        return problems
    where = _format_path(path) or "the file"
    if isinstance(exc, KeyError):
        return [f"{where}: required key missing"]
    if isinstance(exc, _Expected):
        return [f"{where}: {exc}"]
    return [f"{where}: {type(exc).__name__}: {exc}"]


MAX_FILE_BYTES = 1024 * 1024
"""A scenario file larger than this is refused unread."""


MAX_KEY_PARTS = 64
"""The most parts a dotted key may have (``a.b.c`` has three) before the file is refused unread."""

# One part of a dotted key: a bare key, a basic string (escapes included) or a
# literal string.  Possessive, and from the start of a word only: linear in the
# text, whatever it holds.
_KEY_PART: Final = r"""(?:[A-Za-z0-9_-]++|"(?:[^"\\\n]|\\.)*+"|'[^'\n]*+')"""
_LONG_KEY: Final = re.compile(
    r"(?<![A-Za-z0-9_-])(?:" + _KEY_PART + r"[ \t]*+\.[ \t]*+)" + f"{{{MAX_KEY_PARTS}}}"
)


def _long_key_at(text: str) -> int:
    """Where a dotted key of more than :data:`MAX_KEY_PARTS` parts starts, or -1.

    Only where a key can start (a line's start, after ``[``, ``{`` or
    ``,``): a comment or a string value with as many dots is no key.
    """
    for match in _LONG_KEY.finditer(text):
        i = match.start() - 1
        while i >= 0 and text[i] in " \t":
            i -= 1
        if i < 0 or text[i] in "\n[{,":
            return match.start()
    return -1


def parse_config(text: str, source: str = BUILTIN_SOURCE) -> Config:
    """Parse and check a scenario from TOML text; ``source`` names it in messages.

    Raises:
        ConfigError: not TOML, an unknown key, a value of the wrong type, or a
            value out of range; the message names ``source`` and the key.
    """
    named = shown_path(source)
    text = text.removeprefix("\ufeff")  # a byte-order mark some editors write
    long_key = _long_key_at(text)
    if long_key >= 0:
        line = text.count("\n", 0, long_key) + 1
        raise ConfigError(
            f"{named}: line {line}: a dotted key of more than {MAX_KEY_PARTS} parts; no "
            "scenario key has more than three (and TOML takes time quadratic in them)"
        )
    try:
        raw = tomllib.loads(text, parse_float=_toml_float)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{named}: not valid TOML: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{named}: not a scenario: values are nested too deeply") from None
    except ValueError:  # an integer of more digits than Python converts
        raise ConfigError(f"{named}: not valid TOML: a number has far too many digits") from None
    return structure_config(raw, source)


def structure_config(raw: Mapping[str, Any], source: str = BUILTIN_SOURCE) -> Config:
    """Check plain data (a parsed scenario, or a report's ``config``) and structure it.

    The same checks as :func:`parse_config` after the TOML: key names,
    types, ranges and the rules between keys.

    Raises:
        ConfigError: an unknown key, a value of the wrong type, or a value
            out of range; the message names ``source`` and the key.
    """
    try:
        config = _converter().structure(raw, Config)
    except RecursionError:
        raise ConfigError(
            f"{shown_path(source)}: not a scenario: values are nested too deeply"
        ) from None
    except Exception as exc:
        raise ConfigError(message(source, _flatten(exc, ()))) from None
    raise_problems(source, static_problems(config))
    return config


_KINDS: Final = (
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


class _NotRegular(OSError):
    """The path names something that is not a regular file."""


def _read_regular_file(source: str) -> bytes:
    """Up to :data:`MAX_FILE_BYTES` + 1 bytes of ``source``, which must be a regular file.

    The file is opened without blocking (``O_NONBLOCK``: opening a FIFO
    would otherwise wait for a writer, forever) and checked with ``fstat``
    on what was opened, so that nothing but a regular file is ever read.

    Raises:
        OSError: it cannot be opened or read, or is not a regular file.
    """
    _check_regular(source, os.stat(source).st_mode)  # a socket cannot even be opened
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    flags |= getattr(os, "O_BINARY", 0)
    fd = os.open(source, flags)
    try:
        _check_regular(source, os.fstat(fd).st_mode)  # what was opened, should it have changed
        with open(fd, "rb", closefd=False) as fp:
            return fp.read(MAX_FILE_BYTES + 1)
    finally:
        os.close(fd)


def _check_regular(source: str, mode: int) -> None:
    if stat.S_ISREG(mode):
        return
    if stat.S_ISDIR(mode):
        raise IsADirectoryError(source)
    kind = next((name for test, name in _KINDS if test(mode)), "not a file")
    raise _NotRegular(f"not a regular file: it is {kind}")


def _working_folder_exists() -> bool:
    """Whether the working folder still exists (a relative path names nothing in a deleted one)."""
    try:
        os.getcwd()
    except FileNotFoundError:
        return False
    return True


def load_config(path: str | os.PathLike[str]) -> Config:
    """Read, parse and check a scenario file.

    Raises:
        ConfigError: the file cannot be read (it is not there, or is
            named relative to a working folder that was deleted), is not a
            regular file (a directory, a FIFO, a device, a socket: never
            opened for reading), is not UTF-8 TOML, or is not a valid
            scenario; the message names the file and the key.
    """
    source = os.fspath(path)
    if not source:  # no file at all, not a file that is not there
        raise ConfigError("expected a scenario file name, got an empty string")
    named = shown_path(source)
    try:
        data = _read_regular_file(source)
    except FileNotFoundError:
        if not os.path.isabs(source) and not _working_folder_exists():
            raise ConfigError(f"{named}: the working folder no longer exists") from None
        raise ConfigError(f"{named}: no such file") from None
    except _NotRegular as exc:
        raise ConfigError(f"{named}: {exc}") from None
    except IsADirectoryError:
        raise ConfigError(
            f"{named}: is a directory, not a regular file (a scenario file)"
        ) from None
    except (OSError, ValueError) as exc:
        why = getattr(exc, "strerror", None) or exc
        raise ConfigError(f"{named}: cannot read: {why}") from None
    if len(data) > MAX_FILE_BYTES:
        raise ConfigError(
            f"{named}: too large for a scenario file (more than {MAX_FILE_BYTES // 1024} KiB)"
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{named}: not a TOML file: byte {exc.start} is not UTF-8 text") from None
    if "\x00" in text:
        raise ConfigError(f"{named}: not a TOML file: it holds NUL bytes (a binary file?)")
    return parse_config(text, source)


def default_config() -> Config:
    """The built-in scenario (:data:`DEFAULT_SCENARIO`), marked so (:attr:`Config.builtin`).

    The only scenario so marked: the same text read from a file, or given
    to :func:`parse_config`, is a scenario like any other.
    """
    config = parse_config(DEFAULT_SCENARIO, BUILTIN_SOURCE)
    return BuiltinConfig(
        **{field.name: getattr(config, field.name) for field in attrs.fields(Config)}
    )


def unstructure_config(config: Config) -> dict[str, Any]:
    """The configuration as plain data (every default filled in), for reports.

    ``[workload] out_of_line`` is left out while it is off, so a report of
    a scenario that does not ask for it is as it was before the key came.
    """
    data: dict[str, Any] = _converter().unstructure(config)
    if not config.workload.out_of_line:
        del data["workload"]["out_of_line"]
    return data
