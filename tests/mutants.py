"""Mutants of a function: its source with one small change each, as mutation testing makes them.

:func:`mutants` walks a function's syntax tree and makes one mutant for
each change of these kinds, wherever it applies:

* ``delete``: a statement replaced by ``pass``;
* ``negate``: the test of an ``if`` or ``while`` negated;
* ``flip op``: ``+=`` for ``-=``, ``&=`` for ``|=``, and back;
* ``swap op``: ``&`` for ``|``, ``+`` for ``-``, ``<<`` for ``>>`` in an expression;
* ``flip compare``: ``is`` for ``is not``, ``==`` for ``!=``, ``<`` for ``<=``, and back;
* ``const``: an integer constant one more, one less, or 0;
* ``swap names``: ``page`` for ``newpage``, and back.

Each mutant is named by what it changes, in the words of the source (the
statement it is in), so that a name stays the same when lines move; names
that would be the same get ``#2``, ``#3`` ... in source order.
"""

from __future__ import annotations

import ast
import contextlib
import copy
import functools
import inspect
import os
import select
import signal
import sys
import textwrap
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from types import CodeType, FrameType, FunctionType, ModuleType
from typing import Any, Final, NamedTuple

import pytest


class Mutant(NamedTuple):
    """One change to a function: its name and the whole mutated source."""

    name: str
    source: str


_AUG = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.BitAnd: ast.BitOr, ast.BitOr: ast.BitAnd}
_BIN = {ast.BitAnd: ast.BitOr, ast.BitOr: ast.BitAnd, ast.Add: ast.Sub, ast.LShift: ast.RShift}
_CMP = {ast.Is: ast.IsNot, ast.IsNot: ast.Is, ast.Lt: ast.LtE, ast.Eq: ast.NotEq, ast.NotEq: ast.Eq}
_SWAPPED = {"page": "newpage", "newpage": "page"}

Path = tuple[tuple[str, int | None], ...]


def _walk(node: ast.AST, path: Path = ()) -> Iterator[tuple[Path, ast.AST]]:
    for field, value in ast.iter_fields(node):
        if isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, ast.AST):
                    yield from _walk(item, (*path, (field, i)))
        elif isinstance(value, ast.AST):
            yield from _walk(value, (*path, (field, None)))
    yield path, node


def _at(node: ast.AST, path: Path) -> Any:
    for field, i in path:
        node = getattr(node, field) if i is None else getattr(node, field)[i]
    return node


def _said(node: ast.AST) -> str:
    text = ast.unparse(node).splitlines()[0]
    return text if len(text) <= 70 else text[:67] + "..."


def _tree(fn: Callable[..., Any]) -> tuple[ast.Module, ast.FunctionDef]:
    """``fn``'s syntax tree, its docstring left out, and the function's node in it."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
    func = tree.body[0]
    assert isinstance(func, ast.FunctionDef)
    body = func.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        func.body = body[1:]
    return tree, func


def original(fn: Callable[..., Any]) -> str:
    """``fn``'s source as its mutants are written (unparsed, no docstring), to compare them with."""
    return ast.unparse(_tree(fn)[0])


def mutants(fn: Callable[..., Any]) -> list[Mutant]:
    """Every mutant of ``fn`` (its docstring left out), each with a name of its own."""
    tree, func = _tree(fn)
    original = ast.unparse(tree)
    made: list[Mutant] = []
    counts: dict[str, int] = {}

    def add(name: str, path: Path, change: Callable[[Any], ast.AST]) -> None:
        mutated = copy.deepcopy(tree)
        root = mutated.body[0]
        parent = _at(root, path[:-1])
        field, i = path[-1]
        old = getattr(parent, field) if i is None else getattr(parent, field)[i]
        new = change(old)
        if i is None:
            setattr(parent, field, new)
        else:
            getattr(parent, field)[i] = new
        ast.fix_missing_locations(mutated)
        source = ast.unparse(mutated)
        if source == original:
            return
        counts[name] = counts.get(name, 0) + 1
        made.append(Mutant(name if counts[name] == 1 else f"{name} #{counts[name]}", source))

    statement = f"def {func.name}(...)"  # a default value comes before every statement
    for path, node in sorted(_walk(func), key=lambda item: _order(*item)):
        if not path:
            continue
        if isinstance(node, ast.stmt):
            statement = _said(node)
            add(f"delete `{statement}`", path, lambda old: ast.Pass())
        if isinstance(node, ast.AugAssign) and type(node.op) in _AUG:
            add(
                f"flip op in `{statement}`",
                path,
                lambda old: ast.AugAssign(old.target, _AUG[type(old.op)](), old.value),
            )
        if isinstance(node, ast.If | ast.While) and not isinstance(node.test, ast.Constant):
            add(
                f"negate `{_said(node.test)}`",
                (*path, ("test", None)),
                lambda old: ast.UnaryOp(ast.Not(), old),
            )
        if isinstance(node, ast.BinOp) and type(node.op) in _BIN:
            add(
                f"swap op in `{_said(node)}`",
                path,
                lambda old: ast.BinOp(old.left, _BIN[type(old.op)](), old.right),
            )
        if isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in _CMP:
            add(
                f"flip compare `{_said(node)}`",
                path,
                lambda old: ast.Compare(old.left, [_CMP[type(old.ops[0])]()], old.comparators),
            )
        if isinstance(node, ast.Constant) and type(node.value) is int:
            for value in sorted({node.value + 1, node.value - 1, 0} - {node.value}):
                add(
                    f"const {node.value} -> {value} in `{statement}`",
                    path,
                    _constant(value),
                )
        if isinstance(node, ast.Name) and node.id in _SWAPPED and isinstance(node.ctx, ast.Load):
            other = _SWAPPED[node.id]
            add(
                f"`{other}` for `{node.id}` in `{statement}`",
                path,
                _name(other),
            )
    return made


def _constant(value: int) -> Callable[[Any], ast.AST]:
    return lambda old: ast.Constant(value)


def _name(name: str) -> Callable[[Any], ast.AST]:
    return lambda old: ast.Name(name, ast.Load())


def _order(path: Path, node: ast.AST) -> tuple[int, int, int]:
    """Source order: where a node starts, and a node before the nodes it holds."""
    return (getattr(node, "lineno", 0), getattr(node, "col_offset", -1), len(path))


def compiled(mutant: Mutant, fn: Callable[..., Any]) -> FunctionType:
    """The mutant as a function, in a copy of the globals of ``fn``'s module."""
    assert isinstance(fn, FunctionType)
    namespace = dict(fn.__globals__)
    exec(compile(mutant.source, f"<mutant: {mutant.name}>", "exec"), namespace)
    made = namespace[fn.__name__]
    assert isinstance(made, FunctionType)
    return made


@contextlib.contextmanager
def running(real: Callable[..., Any], made: Callable[..., Any]) -> Iterator[None]:
    """Every caller of ``real`` runs ``made``'s code and defaults (``real``'s are put back after).

    The default values go with the code: a mutant of a default (``uid: int = 0``
    made ``-1``) is in ``__kwdefaults__`` or ``__defaults__``, not in the code.
    """
    assert isinstance(real, FunctionType)
    own = (real.__code__, real.__defaults__, real.__kwdefaults__)
    real.__code__ = made.__code__
    real.__defaults__ = made.__defaults__
    real.__kwdefaults__ = made.__kwdefaults__
    try:
        yield
    finally:
        real.__code__, real.__defaults__, real.__kwdefaults__ = own


class TimeUp(BaseException):
    """A mutant ran past the time :func:`limited` gave it (a loop that never ends)."""


AGAIN: Final = 1.0
"""Seconds between one :class:`TimeUp` and the next, once the time is up."""


@contextlib.contextmanager
def limited(seconds: float, again: float = AGAIN) -> Iterator[None]:
    """Raise :class:`TimeUp` in this (the main) thread after ``seconds``, and again every
    ``again`` seconds until the block is left.

    Once may not be enough: whatever catches a ``BaseException`` on the way
    (a command's own error handling, a runner of checks) takes the first,
    and code that goes on from there under the mutant is held to the limit
    by the next; no timer is left running once the block is left.
    """
    armed = True

    def time_up(signum: int, frame: FrameType | None) -> None:
        if armed:
            raise TimeUp(f"still running after {seconds:g} s")

    before = signal.signal(signal.SIGALRM, time_up)
    signal.setitimer(signal.ITIMER_REAL, seconds, again)
    try:
        yield
    finally:
        try:
            armed = False
        finally:  # a TimeUp raised just before ``armed`` changed leaves no timer running
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, before)


def first_failing_check(checks: Iterable[Callable[[], object]]) -> str | None:
    """The first of ``checks`` that raises, as the test and what it raised; else ``None``.

    A failed assertion, a bad page, a hang cut short by :func:`limited`:
    anything but ``KeyboardInterrupt``, which goes on up.
    """
    for check in checks:
        try:
            check()
        except KeyboardInterrupt:
            raise
        except BaseException as exc:
            test = getattr(check, "func", check)
            return f"{test.__name__}{getattr(check, 'keywords', '')}: {type(exc).__name__}: {exc}"
    return None


def found_with(
    real: Callable[..., Any], mutant: Mutant, probe: Callable[[], str | None], seconds: float
) -> str | None:
    """What ``probe`` finds while every caller of ``real`` runs ``mutant``, within ``seconds``.

    A mutant that makes the probe raise, exit or run past ``seconds`` (a
    loop that never ends) is found too.  The probe runs in a copy of this
    process (:func:`in_child`): what a mutant does there ends with it.
    """
    with running(real, compiled(mutant, real)):
        return in_child(probe, seconds)


FACTOR: Final = 4.0
"""How many times the real code's probe time a mutant's probe may take (:func:`time_limit`)."""

FLOOR: Final = 10.0
"""The fewest seconds a mutant's probe gets, however quick the real code's probe is."""

CEILING: Final = 30.0
"""The most seconds a mutant's probe gets, and the real code's probe must end within."""


def time_limit(
    probe: Callable[[], str | None],
    *,
    factor: float = FACTOR,
    floor: float = FLOOR,
    ceiling: float = CEILING,
) -> float:
    """Seconds a mutant may run ``probe``: ``factor`` times what it takes the real code here.

    Runs ``probe`` on the code as it is, under ``ceiling``, and fails the
    test if it finds anything.  The limit is that time times ``factor``,
    no less than ``floor`` and no more than ``ceiling``: measured on the
    machine that runs the mutants, it keeps to the machine's speed.  A
    mutant that loops for ever runs to the limit; with one fixed limit for
    every probe, a few dozen such mutants of probes that take a second
    spent a quarter of an hour of workers' time.  A listed survivor takes
    about as long as the real probe (it runs every check): ``factor``
    leaves it room on a machine that slows down as the tests go on.
    """
    start = time.perf_counter()
    with limited(ceiling):
        found = probe()
    took = time.perf_counter() - start
    assert found is None, f"the code as it is fails its own probe: {found}"
    return min(ceiling, max(floor, factor * took))


GRACE: Final = 5.0
"""Seconds a child has past its time limit to say so before it is killed."""


def in_child(probe: Callable[[], str | None], seconds: float, grace: float = GRACE) -> str | None:
    """What ``probe`` returns, run in a forked child of this process under :func:`limited`.

    A mutant that loops for ever building lists grows its process by a
    hundred megabytes a second; run here, the gigabytes would stay with the
    test worker after the test (Python keeps the memory it freed), and every
    later ``fork`` of that worker (the explorer forks one a schedule) would
    copy their page tables: a search of minutes took an hour.  In a child
    they go when it ends, and so does anything else the mutant leaves: a
    lock held, a timer, state of a module.  A child that runs ``grace``
    seconds past the limit (its ``TimeUp`` caught, a loop in C) is killed,
    and one that ends without an answer (killed, ``os._exit``) is found
    too: either way the mutant was told apart.
    """
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: answers through the pipe and ends, whatever happens
        try:
            os.close(rfd)
            try:
                with limited(seconds):
                    found = probe()
                answer = "-" if found is None else f"+{found}"
            except KeyboardInterrupt:
                answer = "!"
            except BaseException as exc:
                try:
                    answer = f"+raised {type(exc).__name__}: {exc}"
                except BaseException:
                    answer = f"+raised {type(exc).__name__} (it cannot be said)"
            view = memoryview(answer.encode("utf-8", "backslashreplace"))
            while view:
                view = view[os.write(wfd, view) :]
        finally:
            os._exit(0)
    os.close(wfd)
    chunks: list[bytes] = []
    deadline = time.monotonic() + seconds + grace
    killed = False
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                os.kill(pid, signal.SIGKILL)
                killed = True
                break
            ready, _, _ = select.select([rfd], [], [], left)
            if ready:
                chunk = os.read(rfd, 1 << 16)
                if not chunk:
                    break
                chunks.append(chunk)
    except BaseException:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
        raise
    finally:
        os.close(rfd)
        _, status = os.waitpid(pid, 0)
    # "replace": a child killed in the middle of its answer may leave half a character.
    answer = b"".join(chunks).decode("utf-8", "replace")
    if killed:
        return f"raised TimeUp: still running {grace:g} s past {seconds:g} s; killed"
    if answer == "!":
        raise KeyboardInterrupt
    if not answer:
        return f"the probe's process ended with no answer (wait status {status})"
    return None if answer == "-" else answer[1:]


def assert_listed_are_made(
    survivors: Mapping[str, Mapping[str, str]], made: Sequence[tuple[str, Mutant]]
) -> None:
    """Every survivor listed, by function, is a mutant still made; no two mutants share a name."""
    for function, listed in survivors.items():
        names = [m.name for name, m in made if name == function]
        assert len(set(names)) == len(names)
        assert set(listed) <= set(names), set(listed) - set(names)


_PARAM: Final = type(pytest.param())
"""What ``pytest.param(...)`` makes: a case with its values (and marks, ids)."""


def bound_tests(module: ModuleType, **fixtures: object) -> list[functools.partial[object]]:
    """Every test of ``module`` as a call with its arguments bound, one per parametrized case.

    A mutation test's probe runs a module's tests as they are: each
    ``test_`` function, with the values of its ``parametrize`` marks
    (every combination, as pytest makes them) and the ``fixtures`` given by
    name.  A test that needs a fixture not given is left out.
    """
    calls: list[functools.partial[object]] = []
    for name, fn in vars(module).items():
        if not name.startswith("test_") or not isinstance(fn, FunctionType):
            continue
        cases: list[dict[str, object]] = [{}]
        for mark in getattr(fn, "pytestmark", []):
            if mark.name != "parametrize":
                continue
            names, values = mark.args[0], mark.args[1]
            if isinstance(names, str):
                names = [n.strip() for n in names.split(",")]
            made = []
            for case in cases:
                for entry in values:
                    if isinstance(entry, _PARAM):
                        given = tuple(entry.values)
                    else:
                        given = (entry,) if len(names) == 1 else tuple(entry)
                    made.append({**case, **dict(zip(names, given, strict=True))})
            cases = made
        wanted = set(inspect.signature(fn).parameters)
        for case in cases:
            named = {k: v for k, v in fixtures.items() if k in wanted}
            if wanted <= set(case) | set(named):
                calls.append(functools.partial(fn, **case, **named))
    return calls


UNCHANGED: Final = "a type annotation, never evaluated: it compiles to the function's own code"
"""Why a mutant :func:`same_code` finds no change in survives: the one reason a list may give it."""


def same_code(mutant: Mutant, fn: Callable[..., Any]) -> bool:
    """Whether ``mutant`` compiles to the code ``fn``'s own source does, line numbers aside.

    Both are compiled the same way (:func:`original` for ``fn``), and their
    default argument values and code objects compared: bytecode, exception table, flags, arguments,
    names, variables and constants, nested code objects too.  A mutant that
    passes is no change at all (a change inside an annotation that ``from
    __future__ import annotations`` leaves unevaluated, say): nothing that
    runs it can tell it from the function.
    """
    made, own = compiled(mutant, fn), _own(fn)
    return (
        made.__defaults__ == own.__defaults__
        and made.__kwdefaults__ == own.__kwdefaults__
        and _same(made.__code__, own.__code__)
    )


@functools.cache
def _own(fn: Callable[..., Any]) -> FunctionType:
    return compiled(Mutant("the function itself", original(fn)), fn)


def _same(a: CodeType, b: CodeType) -> bool:
    fields = (
        "co_code",
        "co_exceptiontable",
        "co_flags",
        "co_argcount",
        "co_posonlyargcount",
        "co_kwonlyargcount",
        "co_names",
        "co_varnames",
        "co_freevars",
        "co_cellvars",
    )
    if any(getattr(a, f) != getattr(b, f) for f in fields):
        return False
    if len(a.co_consts) != len(b.co_consts):
        return False
    for x, y in zip(a.co_consts, b.co_consts, strict=True):
        if isinstance(x, CodeType) or isinstance(y, CodeType):
            if not (isinstance(x, CodeType) and isinstance(y, CodeType) and _same(x, y)):
                return False
        elif type(x) is not type(y) or x != y:
            return False
    return True


def judge(mutant: Mutant, found: str | None, survivors: Mapping[str, str], unseen: str) -> None:
    """What a mutation test asks of one mutant: that ``found`` says what caught it.

    A mutant ``survivors`` lists (by name, with why nothing can see it) must
    not be caught, for the list must stay true; any other must be, and
    ``unseen`` is the failure's message if it is not.
    """
    if mutant.name in survivors:
        assert found is None, (
            f"{mutant.name} is caught now ({found}): take it off SURVIVORS, "
            f"which said: {survivors[mutant.name]}"
        )
        return
    assert found is not None, unseen
