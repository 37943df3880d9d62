"""The explorer's Python API: :func:`explore`, :func:`replay` and what they return.

A run of the explorer builds one small machine (the table's pages and the
accessor tasks, :class:`~fsaops.explore.setup.ExploredWorld`), then runs
schedules of the migration task and the accessor tasks on it, each from
the same start, and checks every schedule's end state in full.  The
result says how many schedules ran, whether the bounded space was
exhausted, and, for a schedule that failed, its interleaving and a replay
string that :func:`replay` (or ``fsaops explore --replay``) runs again.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

import attrs

from fsaops.config.effective import SWAP
from fsaops.config.schema import MAX_COMMIT_INTERVAL, MAX_TICKS
from fsaops.errors import ConfigError, interrupt_told, shown
from fsaops.explore.lockdep import LockOrder
from fsaops.explore.search import (
    Deviations,
    Found,
    Large,
    deviations,
    explore_dfs,
    explore_pct,
    fork_run,
)
from fsaops.explore.search import preemptions as count_preemptions
from fsaops.explore.setup import (
    DEFAULT_IO_LATENCY,
    DEFAULT_PAGES,
    MAX_PAGES,
    ExploredWorld,
    Setup,
    TaskSpec,
    applies,
    assign_pages,
    default_tasks,
    lone_runs,
    probe,
)
from fsaops.explore.tasks import ACCESSORS, accessor
from fsaops.jsonbound import dumps, json_text
from fsaops.semantics import SEMANTICS
from fsaops.status import SCHEMA, Status

if TYPE_CHECKING:
    from fsaops.aops import FileSystemType
    from fsaops.explore.run import RunResult
    from fsaops.plugins import Registry

__all__ = [
    "DEFAULT_PREEMPTIONS",
    "MAX_SEED",
    "REDUCTIONS",
    "REPLAY_PREFIX",
    "Bounds",
    "ExploreResult",
    "Failure",
    "SearchedRun",
    "Step",
    "decode_replay",
    "encode_replay",
    "explore",
    "large_said",
    "replay",
]

DEFAULT_PREEMPTIONS: Final = 2
"""The systematic search's preemption bound *k* unless told otherwise."""

MAX_SEED: Final = 2**64 - 1
"""The largest PCT seed: a replay string records the seed, and reads no larger one back."""

DEFAULT_PCT_SCHEDULES: Final = 1000
"""How many PCT schedules run unless told otherwise."""

REPLAY_PREFIX: Final = "fsx2."
"""What every replay string starts with (the format's version)."""

REDUCTIONS: Final = ("pages", "none")
"""The systematic search's reductions, as ``--reduce`` and the report's ``reduction`` name them.

``pages`` (the default): steps on different pages are taken to commute, so
a schedule that differs from one already run only in the order of such
steps is not run; state a table keeps across pages (a buffer every page
shares) is not covered.  ``none``: every schedule within the bound runs.
"""

_EXHAUSTED_UNDER: Final = {
    "pages": " (steps on different pages taken to commute; state a table keeps across pages "
    "is not covered: --reduce none or --pct)",
    "none": " (no reduction: every schedule within the bound ran)",
}
"""What "exhausted" claims under each reduction, as the summary says it."""

_STATUS_ORDER: Final = (
    Status.BAD_INPUT,
    Status.KERNEL_BUG,
    Status.DATA_LOST,
    Status.INVARIANT_BROKEN,
    Status.FINDINGS,
)


@attrs.frozen
class Bounds:
    """How far a search goes.

    Attributes:
        preemptions: the systematic search's bound *k* (``None`` with PCT).
        pct_depth: PCT's bug depth *d* (``None`` for the systematic search).
        schedules: PCT: how many schedules; systematic: the most that may
            run (``None``: until the space is exhausted).
        seed: PCT's seed (0 for the systematic search).
        together: the accessor tasks ran together in each schedule; ``False``
            when the systematic search took the default tasks one at a time
            (each with the migration, its own space exhausted in turn).
    """

    preemptions: int | None = DEFAULT_PREEMPTIONS
    pct_depth: int | None = None
    schedules: int | None = None
    seed: int = 0
    together: bool = True

    def to_json(self) -> dict[str, Any]:
        """As the report's ``bounds`` field."""
        return {
            "preemptions": self.preemptions,
            "pct_depth": self.pct_depth,
            "schedules": self.schedules,
            "seed": self.seed,
            "together": self.together,
        }


@attrs.frozen
class SearchedRun:
    """One run of the systematic search: its accessor tasks, and how far it got.

    The default search runs each accessor in turn, each a run of its own;
    tasks named together make one run.

    Attributes:
        tasks: the run's accessor tasks, ``NAME@PAGE``.
        schedules: schedules it ran.
        searched: ``exhausted`` (every schedule of its space ran),
            ``failed`` (it stopped at a failing schedule), ``partly`` (the
            ``schedules`` cap stopped it), or ``not reached`` (the search
            stopped before it began: none of its schedules ran).
    """

    tasks: tuple[str, ...]
    schedules: int
    searched: str

    def to_json(self) -> dict[str, Any]:
        """As an element of the report's ``runs``."""
        return {"tasks": list(self.tasks), "schedules": self.schedules, "searched": self.searched}


@attrs.frozen
class Step:
    """One step of an interleaving: a task ran from a scheduling point to its next one.

    Attributes:
        task: the task (``migrate``, ``write@1``, ``end_dio:8``, ...).
        kind: the point it ran from: ``start``, ``spin_lock``,
            ``spin_unlock``, ``cond_resched``, ``sleep`` (it had waited
            for a page or buffer bit, an I/O), ``io_submit``, ``load``, ...
        function: the kernel function at that point.
        page: the explorer's page the step works on (-1: none, or several).
        pfn: that page's frame (-1 when not known).
        lock: the lock or the thing waited for, if any.
        preempted: the task that ran before it could have gone on.
    """

    task: str
    kind: str
    function: str
    page: int
    pfn: int
    lock: str
    preempted: bool = False

    def __str__(self) -> str:
        where = f" in {self.function}" if self.function else ""
        page = f" page {self.page}" if self.page >= 0 else ""
        pfn = f" (pfn {self.pfn})" if self.pfn >= 0 else ""
        lock = f" [{self.lock}]" if self.lock else ""
        mark = "preempts: " if self.preempted else ""
        return f"{mark}{self.task}: {self.kind}{where}{page}{pfn}{lock}"

    def to_json(self) -> dict[str, Any]:
        """As an element of a failure's ``interleaving``."""
        return attrs.asdict(self)


@attrs.frozen
class Failure:
    """A failing schedule.

    Attributes:
        status: the worst of its problems (kernel bug, data lost, invariant broken).
        problems: ``(status, sentence)`` for each thing found wrong.
        interleaving: the schedule, step by step.
        preemptions: how many preemptions it has.
        replay: the replay string that runs exactly this schedule again.
    """

    status: Status
    problems: tuple[tuple[str, str], ...]
    interleaving: tuple[Step, ...]
    preemptions: int
    replay: str

    def to_json(self) -> dict[str, Any]:
        """As an element of the report's ``failures``."""
        return {
            "status": self.status.value,
            "problems": [{"status": s, "problem": p} for s, p in self.problems],
            "interleaving": [step.to_json() for step in self.interleaving],
            "preemptions": self.preemptions,
            "replay": self.replay,
        }


@attrs.frozen
class ExploreResult:
    """What a run of the explorer (or a replay) came to.

    Attributes:
        fs: the filesystem type.
        mode: its mode.
        table: the operations table's name.
        semantics: the kernel's semantics.
        pages: how many pages the migration task moved.
        tasks: the accessor tasks, ``NAME@PAGE``.
        bounds: how far the search went.
        schedules: schedules run.
        exhausted: every schedule the search generated within the bound
            ran (only a systematic search can exhaust its space); under the
            ``pages`` reduction, schedules that differ only in the order of
            steps on different pages count as one (see :attr:`reduction`).
        seconds: wall time of the search.
        failures: the failing schedule found, if any (the search stops
            at the first one; the systematic search finds one with the
            fewest preemptions).
        reasons: why the migration gave a page up, as the engine said it,
            with the number of schedules it came up in: which of the
            model's race branches the schedules reached.
        replayed: this is the result of :func:`replay` (one schedule).
        interleaving: a replay's schedule, step by step (empty otherwise).
        out_of_line: the pages' blocks were out of line (a scenario's
            ``[workload] out_of_line``, on a mount whose blocks are smaller
            than a page).
        io_latency: the kernel's I/O latency, in ticks.
        commit_interval: ticks between the journal's commits (``None``:
            the journal's own default).
        not_used: the keys of the scenario explored that are set (not at
            their defaults) and that the explorer does not use
            (``workload.dirty``, ``mount[1]``, ...): they do not shape the
            explored machine.
        reduction: the systematic search's reduction (one of
            :data:`~fsaops.explore.api.REDUCTIONS`): ``pages`` (steps on different pages taken
            to commute; state a table keeps across pages is not covered)
            or ``none`` (every schedule within the bound ran); ``None``
            with PCT and for a replay, which reduce nothing.
        runs: the systematic search's runs, in order (one per accessor
            when each ran in turn, else one), each with how far it got:
            with a ``schedules`` cap, the runs it never reached say so.
            Empty with PCT and for a replay.
        clean_only: the accessors that, each running in turn on one page,
            ran on a clean page only, where two pages would have run each on
            a dirty page too (``pages=2``): their dirty-page races were not
            searched.
    """

    fs: str
    mode: str
    table: str
    semantics: str
    pages: int
    tasks: tuple[str, ...]
    bounds: Bounds
    schedules: int
    exhausted: bool
    seconds: float
    failures: tuple[Failure, ...] = ()
    reasons: Mapping[str, int] = attrs.field(factory=dict)
    replayed: bool = False
    interleaving: tuple[Step, ...] = ()
    out_of_line: bool = False
    io_latency: int = DEFAULT_IO_LATENCY
    commit_interval: int | None = None
    not_used: tuple[str, ...] = ()
    reduction: str | None = None
    runs: tuple[SearchedRun, ...] = ()
    clean_only: tuple[str, ...] = ()

    @property
    def schedules_per_second(self) -> float:
        """Schedules run per second of wall time."""
        return self.schedules / self.seconds if self.seconds > 0 else 0.0

    @property
    def status(self) -> Status:
        """``ok`` when no schedule failed, else the failure's status.

        A search a ``schedules`` cap stopped is ``ok`` too when none of the
        schedules it ran failed; :attr:`exhausted` and :attr:`cut_short` say
        that it did not run them all.
        """
        return self.failures[0].status if self.failures else Status.OK

    @property
    def cut_short(self) -> bool:
        """Whether a systematic search stopped at its cap before its space was exhausted.

        PCT never exhausts a space (it runs the schedules it was asked for),
        and a replay runs one schedule: neither is cut short.
        """
        return not self.exhausted and not self.replayed and self.bounds.pct_depth is None

    @property
    def exit_status(self) -> int:
        """Exit status of ``fsaops explore`` for it (0 if no schedule failed, else 1)."""
        return self.status.exit_code

    def to_json(self) -> dict[str, Any]:
        """The report of ``fsaops explore --json``."""
        return {
            "schema": SCHEMA,
            "status": self.status.value,
            "fs": self.fs,
            "mode": self.mode,
            "table": self.table,
            "semantics": self.semantics,
            "pages": self.pages,
            "tasks": list(self.tasks),
            "bounds": self.bounds.to_json(),
            "schedules": self.schedules,
            "exhausted": self.exhausted,
            "seconds": round(self.seconds, 6),
            "schedules_per_second": round(self.schedules_per_second, 3),
            "failures": [f.to_json() for f in self.failures],
            "reasons": dict(sorted(self.reasons.items())),
            "replayed": self.replayed,
            "interleaving": [step.to_json() for step in self.interleaving],
            "out_of_line": self.out_of_line,
            "io_latency": self.io_latency,
            "commit_interval": self.commit_interval,
            "not_used": list(self.not_used),
            "reduction": self.reduction,
            "runs": [run.to_json() for run in self.runs],
            "clean_only": list(self.clean_only),
        }

    def dumps(self) -> str:
        """:meth:`to_json` as indented JSON text, with a final newline.

        Written through :mod:`fsaops.jsonbound`: plugin code that rebinds
        ``json.dumps`` does not change it.
        """
        return json_text(self.to_json())


# -- replay strings --------------------------------------------------------------------------


def encode_replay(setup: Setup, bounds: Bounds, choices: Mapping[int, int]) -> str:
    """The replay string of a schedule: :data:`REPLAY_PREFIX` and base64url of compact JSON.

    ``choices`` are the points where the schedule departs from running the
    current task on (point number to task number).
    """
    data: dict[str, Any] = {
        "fs": setup.fs,
        "mode": setup.mode,
        "bs": setup.block_size,
        "ps": setup.page_size,
        "sem": setup.semantics,
        "pages": setup.pages,
        "tasks": [str(t) for t in setup.tasks],
        "k": bounds.preemptions,
        "d": bounds.pct_depth,
        "n": bounds.schedules,
        "seed": bounds.seed,
        "c": [[j, tid] for j, tid in sorted(choices.items())],
    }
    # What a scenario may set, only when it is not the default: a string
    # recorded without them stays as it was.
    if setup.out_of_line:
        data["ool"] = True
    if setup.io_latency != DEFAULT_IO_LATENCY:
        data["io"] = setup.io_latency
    if setup.commit_interval is not None:
        data["ci"] = setup.commit_interval
    if setup.lock_orders:  # a failure against spinlock orders earlier schedules made
        data["lo"] = [order.to_list() for order in setup.lock_orders]
    text = dumps(data, separators=(",", ":"), sort_keys=True)
    return REPLAY_PREFIX + base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


_TASK = re.compile(r"^([a-z-]+)@(\d+)$", re.ASCII)


def decode_replay(text: str) -> tuple[Setup, Bounds, dict[int, int]]:
    """The setup, bounds and choices a replay string records.

    Raises:
        ConfigError: it is not a replay string of this version, or a field is wrong.
    """
    text = text.strip()
    if text.startswith("fsx1."):
        raise ConfigError(
            "--replay: a replay string of an older fsaops (fsx1.): the explorer's pages have "
            "changed since (page k at index k of its file, odd pages from node 1 to node 0), "
            "so it would replay another schedule; run the search again for a new one"
        )
    if not text.startswith(REPLAY_PREFIX):
        raise ConfigError(
            f"--replay: not a replay string of this version (it must start with {REPLAY_PREFIX})"
        )
    body = text[len(REPLAY_PREFIX) :]
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        data = json.loads(raw.decode())
    except (binascii.Error, ValueError, UnicodeDecodeError, RecursionError):
        raise ConfigError("--replay: the replay string is damaged (not base64url JSON)") from None
    if not isinstance(data, dict):
        raise ConfigError("--replay: the replay string is damaged (not an object)")
    try:
        fs, mode = _str(data, "fs"), _str(data, "mode")
        sem = _str(data, "sem")
        if sem not in SEMANTICS:
            raise ConfigError(f"--replay: unknown semantics {sem!r}")
        pages = _int(data, "pages", 1, MAX_PAGES)
        tasks = []
        for item in _list(data, "tasks"):
            match = _TASK.match(item) if isinstance(item, str) else None
            if match is None:
                raise ConfigError(f"--replay: bad task {item!r}")
            name = _known_task(match.group(1))
            tasks.append(TaskSpec(name, _page_number(name, match.group(2), "--replay: ")))
        choices: dict[int, int] = {}
        for pair in _list(data, "c"):
            if (
                not isinstance(pair, list)
                or len(pair) != 2
                or not all(type(v) is int and v >= 0 for v in pair)
            ):
                raise ConfigError(f"--replay: bad choice {pair!r}")
            if pair[0] in choices:
                raise ConfigError(f"--replay: choice point {pair[0]} is given twice")
            choices[pair[0]] = pair[1]
        bounds = Bounds(
            preemptions=_opt_int(data, "k"),
            pct_depth=_opt_int(data, "d"),
            schedules=_opt_int(data, "n"),
            seed=_int(data, "seed", 0, MAX_SEED),
        )
        if (bounds.preemptions is None) == (bounds.pct_depth is None):
            raise ConfigError(
                "--replay: the replay string is damaged (it must record either a preemption "
                "bound, k, or a PCT depth, d)"
            )
        for key, value in (("d", bounds.pct_depth), ("n", bounds.schedules)):
            if value == 0:
                raise ConfigError(f"--replay: bad {key} 0")
        if bounds.seed and bounds.pct_depth is None:
            raise ConfigError("--replay: bad seed: a systematic search draws nothing at random")
        page_size = _int(data, "ps", 512, 65536)
        if page_size & (page_size - 1):
            raise ConfigError(f"--replay: bad ps {page_size}")
        out_of_line = data.get("ool", False)
        if type(out_of_line) is not bool:
            raise ConfigError(f"--replay: bad ool {shown(out_of_line)}")
        orders = []
        for item in data.get("lo", []):
            if (
                not isinstance(item, list)
                or len(item) != 5
                or not all(isinstance(v, str) for v in item)
            ):
                raise ConfigError(f"--replay: bad lock order {shown(item)}")
            orders.append(LockOrder.from_list(item))
        setup = Setup(
            fs,
            mode,
            block_size=_opt_int(data, "bs"),
            page_size=page_size,
            semantics=sem,
            pages=pages,
            tasks=tuple(tasks),
            out_of_line=out_of_line,
            io_latency=_int(data, "io", 1, MAX_TICKS) if "io" in data else DEFAULT_IO_LATENCY,
            commit_interval=_int(data, "ci", 1, MAX_COMMIT_INTERVAL) if "ci" in data else None,
            lock_orders=tuple(orders),
        )
    except (KeyError, TypeError):
        raise ConfigError("--replay: the replay string is damaged (a field is missing)") from None
    return setup, bounds, choices


def _list(data: dict[str, Any], key: str) -> list[Any]:
    value = data[key]
    if not isinstance(value, list):
        raise ConfigError(f"--replay: bad {key} {shown(value)}")
    return value


def _str(data: dict[str, Any], key: str) -> str:
    value = data[key]
    if not isinstance(value, str) or not value:
        raise ConfigError(f"--replay: bad {key} {shown(value)}")
    return value


def _int(data: dict[str, Any], key: str, low: int, high: int) -> int:
    value = data[key]
    if type(value) is not int or not low <= value <= high:
        raise ConfigError(f"--replay: bad {key} {shown(value)}")
    return value


def _opt_int(data: dict[str, Any], key: str) -> int | None:
    value = data.get(key)
    if value is None:
        return None
    if type(value) is not int or value < 0:
        raise ConfigError(f"--replay: bad {key} {shown(value)}")
    return value


def _known_task(name: str) -> str:
    try:
        return accessor(name).name
    except KeyError:
        known = ", ".join(a.name for a in ACCESSORS)
        raise ConfigError(f"unknown task {name!r}: expected one of {known}") from None


# -- running ---------------------------------------------------------------------------------


def _registry(registry: Registry | None) -> Registry:
    if registry is not None:
        return registry
    from fsaops.plugins import load_plugins

    return load_plugins()


def _shown(text: str, limit: int = 60) -> str:
    """``text`` quoted as a message shows it, a long one cut and its length said."""
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}... ({len(text):,} characters)"


def _page_number(name: str, digits: str, where: str = "") -> int:
    """The page number ``NAME@DIGITS`` names, its digits written out (ASCII ``0`` to ``9``).

    Python converts no more than 4,300 digits; a number of more than 40
    is refused here, shown by its length (no page is that far: a smaller
    one is checked against the pages there are, once they are known).

    Raises:
        ConfigError: a number of more than 40 digits.
    """
    if len(digits) > 40:
        raise ConfigError(
            f"{where}task {name}@...: a page number of {len(digits):,} digits, past every "
            f"page (at most {MAX_PAGES - 1:,})"
        )
    return int(digits)


def parse_tasks(items: Iterable[str]) -> list[str | TaskSpec]:
    """``NAME`` or ``NAME@PAGE`` items of ``--tasks``, checked.

    Raises:
        ConfigError: an unknown task or a bad page number.
    """
    out: list[str | TaskSpec] = []
    given = [raw.strip() for raw in items]
    if not any(given):
        return out  # nothing named: the caller says a list needs one
    for item in given:
        if not item:
            listed = ",".join(given)
            raise ConfigError(f"tasks {listed!r}: an empty item (two commas, or one at an end)")
        name, at, page = item.partition("@")
        name = _known_task(name)
        if at:
            if not (page.isascii() and page.isdigit()):
                raise ConfigError(f"task {_shown(item)}: expected NAME or NAME@PAGE")
            out.append(TaskSpec(name, _page_number(name, page)))
        else:
            out.append(name)
    return out


def _resolve(
    registry: Registry,
    fs: str | FileSystemType,
    mode: str | None,
    *,
    pages: int,
    tasks: Sequence[str | TaskSpec] | None,
    semantics: str,
    block_size: int | None,
    page_size: int,
    alone: bool = False,
    out_of_line: bool = False,
    io_latency: int = DEFAULT_IO_LATENCY,
    commit_interval: int | None = None,
) -> tuple[FileSystemType, Setup]:
    fstype = registry.filesystem(fs) if isinstance(fs, str) else fs
    fs = fstype.name
    if mode is None:  # "" is no mode, as in a scenario file
        mode = fstype.default_mode
    problem = fstype.mode_problem(mode)
    if problem is not None:
        raise ConfigError(problem)
    if semantics not in SEMANTICS:
        raise ConfigError(f"unknown semantics {semantics!r}: expected one of {sorted(SEMANTICS)}")
    if not 1 <= pages <= MAX_PAGES:
        raise ConfigError(f"pages: expected 1 to {MAX_PAGES}, got {pages}")
    if not 1 <= io_latency <= MAX_TICKS:
        raise ConfigError(f"io_latency: expected 1 to {MAX_TICKS} ticks, got {shown(io_latency)}")
    if commit_interval is not None and not 1 <= commit_interval <= MAX_COMMIT_INTERVAL:
        raise ConfigError(
            f"commit_interval: expected 1 to {MAX_COMMIT_INTERVAL} ticks, got "
            f"{shown(commit_interval)}"
        )
    info = probe(
        fstype,
        mode,
        registry,
        out_of_line=out_of_line,
        block_size=block_size,
        page_size=page_size,
    )
    wanted: list[str | TaskSpec]
    if tasks is None:
        wanted = list(default_tasks(fstype, mode, info))
    else:
        wanted = [t if isinstance(t, TaskSpec) else _known_task(t) for t in tasks]
    for item in wanted:
        name = item.name if isinstance(item, TaskSpec) else item
        why = applies(accessor(name), fstype, mode, info)
        if why is not None:
            raise ConfigError(f"task {name}: {why}")
    if alone:  # each runs by itself, on a clean and on a dirty page
        specs = lone_runs(fstype, mode, info, pages, [str(name) for name in wanted])
    else:
        specs = assign_pages(wanted, pages, anonymous=info.kind == "anonymous")
    setup = Setup(
        fs,
        mode,
        block_size=block_size,
        page_size=page_size,
        semantics=semantics,
        pages=pages,
        tasks=specs,
        out_of_line=out_of_line,
        io_latency=io_latency,
        commit_interval=commit_interval,
    )
    return fstype, setup


def _steps(result: RunResult) -> tuple[Step, ...]:
    names: list[str] = result["names"]
    out = []
    trace = result["trace"]
    for j, (tid, kind, function, page, pfn, lock) in enumerate(result["labels"]):
        cur, chosen, enabled, _ = trace[j]
        out.append(
            Step(
                names[tid] if 0 <= tid < len(names) else str(tid),
                kind,
                function,
                page,
                pfn,
                lock,
                preempted=cur in enabled and chosen != cur,
            )
        )
    return tuple(out)


def _status(problems: Sequence[tuple[str, str]]) -> Status:
    values = {s for s, _ in problems}
    for status in _STATUS_ORDER:
        if status.value in values:
            return status
    return Status.KERNEL_BUG


def _failure(
    xworld: ExploredWorld,
    setup: Setup,
    bounds: Bounds,
    choices: dict[int, int],
    first: RunResult,
) -> Failure:
    """Run a failing schedule again, recorded, and describe it.

    ``first`` is what the schedule came to the first time.  A schedule that
    passes when run again (its process died of a signal from outside, say)
    keeps the first run's problems, and says it did not fail again.  A
    schedule that did not end in time is not run again (that would only
    wait as long once more): one stopped by its own time limit came back
    with its interleaving, one whose process had to be killed has none.
    """
    if first.get("labels") or first.get("killed"):
        result = first
    else:
        result = fork_run(xworld, policy=lambda: Deviations(choices), record=True)
    problems = tuple((s, p) for s, p in result["problems"])
    if not problems:
        problems = tuple(
            (s, f"{p} (run again, the schedule passed: it does not reproduce)")
            for s, p in first["problems"]
        )
    # A lock order of an earlier schedule that the failure rests on goes in its
    # replay string: the replay knows it before it starts, and fails the same way.
    used = tuple(LockOrder.from_list(item) for item in result.get("orders_used", ()))
    return Failure(
        status=_status(problems),
        problems=problems,
        interleaving=_steps(result),
        preemptions=count_preemptions(result["trace"]),
        replay=encode_replay(attrs.evolve(setup, lock_orders=used), bounds, choices),
    )


def explore(
    fs: str | FileSystemType,
    mode: str | None = None,
    *,
    registry: Registry | None = None,
    pages: int = DEFAULT_PAGES,
    tasks: Sequence[str | TaskSpec] | None = None,
    preemptions: int = DEFAULT_PREEMPTIONS,
    pct: int | None = None,
    schedules: int | None = None,
    seed: int = 0,
    semantics: str = "v4",
    block_size: int | None = None,
    page_size: int = 4096,
    reduce: bool = True,
    progress: Callable[[int], object] | None = None,
    notice: Callable[[str], object] | None = None,
    together: bool = False,
    out_of_line: bool = False,
    io_latency: int = DEFAULT_IO_LATENCY,
    commit_interval: int | None = None,
) -> ExploreResult:
    """Run the migration of a table's pages against accessor tasks under many schedules.

    Without ``tasks``, the systematic search takes every accessor that
    applies to the table's pages one at a time (unless ``together``), each
    on a clean and on a dirty page (:func:`~fsaops.explore.setup.lone_runs`):
    the migration against each, every schedule with at most
    ``preemptions`` preemptions, each space exhausted in turn, stopping at
    the first failing schedule.  One task named without a page runs the
    same way.  All of them at once make a space too large to
    exhaust for most tables; name them with ``tasks`` (or ask for
    ``together``, or PCT) to explore them together.

    Args:
        fs: the filesystem type, by name (``swap`` for anonymous memory) or
            itself (then it need not come from a loaded plugin).
        mode: its mount mode (default: the type's default mode).
        registry: the loaded plugins (default: every installed plugin).
        pages: how many pages the migration task moves.
        tasks: the accessor tasks, by name (``write``) or with their page
            (``TaskSpec("write", 1)``); default: every accessor that applies
            to the table's pages, one at a time (see above).
        preemptions: the systematic search's bound *k*: every schedule
            with at most this many preemptions runs (up to ``reduce``).
        pct: run PCT schedules of this depth instead of the systematic search.
        schedules: PCT: how many schedules (default 1000); systematic: stop
            after this many (the space is then not exhausted).
        seed: PCT's seed (the systematic search takes none: another than 0
            without ``pct`` is refused).
        semantics: the release of the migration code (``v4``, ``2.6.16``, ``2.6.17``).
        block_size: the mount's block size (default: the type's).
        page_size: bytes per page.
        reduce: skip schedules equivalent to one already run, taking
            steps on different pages to commute (the ``pages`` reduction:
            state a table keeps across pages is not covered, so a race
            through it may be missed); ``False`` runs every schedule within
            the bound (``none``), and "exhausted" then means that every
            schedule with at most ``preemptions`` preemptions ran.
        progress: called with the number of schedules run so far.
        notice: called with a sentence when a systematic search grows far
            larger than any built-in table's (:data:`~fsaops.explore.search.LARGE_SPACE`
            schedules run and queued, or :data:`~fsaops.explore.search.LARGE_WORK`
            when multiplied by the steps of the longest schedule, so a search of
            long schedules says so early): what makes it large and how to make it
            smaller; the search goes on.
        together: without ``tasks`` (it is refused with them), run every
            default accessor in each schedule, instead of one at a time.
        out_of_line: lay the blocks of each file page out of line, as
            ``fsaops migrate`` does with ``[workload] out_of_line`` (not on a
            mount whose blocks are as large as a page, nor a buffer-cache
            mapping): a table that reads pages from runs of blocks then
            reads them through buffer heads, and the pages carry them.
        io_latency: the kernel's ticks from submitting a write to its
            completion (``kernel.io_latency``).  Within a schedule an I/O
            completes when the schedule runs its task, so the latency times
            only the I/O of the build and of the checks after it.
        commit_interval: ticks between the journal's commits
            (``kernel.commit_interval``; ``None``: the journal's default).
            Within a schedule only the ``kjournald`` task commits.

    Returns:
        What the search found; its :attr:`~ExploreResult.failures` hold the
        first failing schedule, if any.

    Raises:
        ConfigError: an unknown filesystem, mode, semantics or task, a
            task that does not apply to the table's pages, a latency or
            commit interval out of range, a seed without ``pct``, or
            ``together`` with ``tasks``.
        fsaops.world.SetupError: the machine cannot be built as asked.
    """
    registry = _registry(registry)
    if not isinstance(fs, str) and fs.name == SWAP:
        # Anonymous pages migrate with the swap cache's table, which the machine
        # takes from the registry's swap type: that is the type given here.
        registry = attrs.evolve(registry, filesystems={**registry.filesystems, SWAP: fs})
    if preemptions < 0:
        raise ConfigError(f"preemptions: expected 0 or more, got {preemptions}")
    if pct is not None and pct < 1:
        raise ConfigError(f"pct: expected a depth of 1 or more, got {pct}")
    if schedules is not None and schedules < 1:
        raise ConfigError(f"schedules: expected 1 or more, got {schedules}")
    if not 0 <= seed <= MAX_SEED:
        raise ConfigError(f"seed: expected 0 to {MAX_SEED}, got {shown(seed)}")
    if seed and pct is None:
        raise ConfigError(
            f"seed {seed}: the seed is PCT's (pct); the systematic search draws nothing at random"
        )
    if together and tasks is not None:
        raise ConfigError(
            "together: it runs the default accessors at once; the tasks named run together already"
        )
    # The accessors one at a time, each on a clean and on a dirty page: the
    # default, and one accessor named without a page.
    lone = tasks is None or (len(tasks) == 1 and isinstance(tasks[0], str))
    alone = lone and pct is None and not together
    fstype, setup = _resolve(
        registry,
        fs,
        mode,
        pages=pages,
        tasks=tasks,
        semantics=semantics,
        block_size=block_size,
        page_size=page_size,
        alone=alone,
        out_of_line=out_of_line,
        io_latency=io_latency,
        commit_interval=commit_interval,
    )
    clean_only: tuple[str, ...] = ()
    if alone and pages == 1:
        # One page: each accessor runs on a clean page; say which a dirty one would
        # have run too (lone_runs puts those on page 1).
        _, wider = _resolve(
            registry,
            fstype,
            setup.mode,
            pages=2,
            tasks=tasks,
            semantics=semantics,
            block_size=block_size,
            page_size=page_size,
            alone=True,
            out_of_line=out_of_line,
            io_latency=io_latency,
            commit_interval=commit_interval,
        )
        clean_only = tuple(spec.name for spec in wider.tasks if spec.page == 1)
    if alone and len(setup.tasks) > 1:
        return attrs.evolve(
            _one_at_a_time(
                setup.tasks,
                lambda spec, cap: explore(
                    fstype,
                    setup.mode,
                    registry=registry,
                    pages=pages,
                    tasks=[spec],
                    preemptions=preemptions,
                    schedules=cap,
                    semantics=semantics,
                    block_size=block_size,
                    page_size=page_size,
                    reduce=reduce,
                    progress=progress,
                    notice=notice,
                    out_of_line=out_of_line,
                    io_latency=io_latency,
                    commit_interval=commit_interval,
                ),
                schedules,
            ),
            clean_only=clean_only,
        )
    xworld = ExploredWorld(setup, fstype, registry)
    found: Found
    runs: tuple[SearchedRun, ...] = ()
    reduction: str | None = None
    at = [1]  # the schedule running (counted from 1): what a Ctrl-C or SIGTERM names
    said_tasks = ", ".join(str(t) for t in setup.tasks) or "no accessor"
    told = interrupt_told(
        lambda _frame: (
            f" while exploring {fstype.name} (mode {setup.mode}; {said_tasks}) at schedule "
            f"{at[0]:,}"
        )
    )

    def counted(done: int) -> None:
        at[0] = done + 1  # the next one runs
        if progress is not None:
            progress(done)

    with told:
        found, runs, reduction, bounds = _search(
            xworld, setup, preemptions, pct, schedules, seed, reduce, counted, notice
        )
    failures: tuple[Failure, ...] = ()
    if found.failure is not None:
        failures = (_failure(xworld, setup, bounds, found.failure[1], found.failure[0]),)
    return _result(
        setup,
        xworld,
        bounds,
        schedules=found.schedules,
        exhausted=found.exhausted,
        seconds=found.seconds,
        failures=failures,
        reasons=dict(found.reasons),
        reduction=reduction,
        runs=runs,
        clean_only=clean_only,
    )


def _search(
    xworld: ExploredWorld,
    setup: Setup,
    preemptions: int,
    pct: int | None,
    schedules: int | None,
    seed: int,
    reduce: bool,
    progress: Callable[[int], object],
    notice: Callable[[str], object] | None,
) -> tuple[Found, tuple[SearchedRun, ...], str | None, Bounds]:
    """The systematic search, or PCT's: what it found, its runs, its reduction, its bounds."""
    runs: tuple[SearchedRun, ...] = ()
    reduction: str | None = None
    if pct is None:
        bounds = Bounds(preemptions=preemptions, schedules=schedules)
        found = explore_dfs(
            xworld,
            preemptions_bound=preemptions,
            max_schedules=schedules,
            reduce=reduce,
            progress=progress,
            large=None if notice is None else lambda big: notice(large_said(setup, big)),
        )
        reduction = REDUCTIONS[0] if reduce else REDUCTIONS[1]
        searched = (
            "exhausted" if found.exhausted else "failed" if found.failure is not None else "partly"
        )
        runs = (SearchedRun(tuple(str(t) for t in setup.tasks), found.schedules, searched),)
    else:
        count = schedules if schedules is not None else DEFAULT_PCT_SCHEDULES
        bounds = Bounds(preemptions=None, pct_depth=pct, schedules=count, seed=seed)
        found = explore_pct(xworld, depth=pct, schedules=count, seed=seed, progress=progress)
    return found, runs, reduction, bounds


def large_said(setup: Setup, big: Large) -> str:
    """What ``fsaops explore`` says of a search that grew large: why, and what to do."""
    run = ", ".join(str(t) for t in setup.tasks) or "no accessor"
    why = f"its schedules are up to {big.steps} steps long, with {_plural(big.tasks, 'task')}"
    if big.own_io:
        why += (
            f", {big.own_io} of them the completions of I/O the migration submitted itself "
            "(the table's migratepage writes pages out): each is a task that may run at "
            "every point where another blocks, which costs no preemption"
        )
    smaller = []
    if big.bound > 0:
        smaller.append(f"fewer preemptions (--preemptions {big.bound - 1})")
    if setup.pages > 1:
        smaller.append(f"fewer pages (--pages {max(1, setup.pages // 2)})")
    smaller.append("one accessor (--tasks NAME@PAGE)")
    smaller.append("or a bound (--schedules N: the verdict then covers only the schedules run)")
    return (
        f"fsaops explore: the search against {run} is large: {big.schedules:,} schedules "
        f"run and {big.queued:,} queued, at most {_plural(big.bound, 'preemption')}, and "
        "more are queued as they run (no run of a built-in table at the default bounds "
        "takes more than a few thousand, of at most a few hundred steps each); "
        f"{why}. It may take a long time. To end sooner: " + ", ".join(smaller)
    )


def _one_at_a_time(
    runs: Sequence[TaskSpec],
    run: Callable[[TaskSpec, int | None], ExploreResult],
    schedules: int | None,
) -> ExploreResult:
    """The systematic search against each accessor on each of its pages in turn, summed."""
    results: list[ExploreResult] = []
    for spec in runs:
        cap = None if schedules is None else schedules - sum(r.schedules for r in results)
        if cap is not None and cap < 1:
            break
        results.append(run(spec, cap))
        if results[-1].failures:
            break
    first = results[0]
    searched = [run for result in results for run in result.runs]
    searched += [SearchedRun((str(spec),), 0, "not reached") for spec in runs[len(results) :]]
    reasons: dict[str, int] = {}
    for result in results:
        for why, n in result.reasons.items():
            reasons[why] = reasons.get(why, 0) + n
    return attrs.evolve(
        first,
        tasks=tuple(str(spec) for spec in runs),
        bounds=attrs.evolve(first.bounds, schedules=schedules, together=False),
        schedules=sum(r.schedules for r in results),
        exhausted=len(results) == len(runs) and all(r.exhausted for r in results),
        seconds=sum(r.seconds for r in results),
        failures=next((r.failures for r in results if r.failures), ()),
        reasons=reasons,
        runs=tuple(searched),
    )


def _result(setup: Setup, xworld: ExploredWorld, bounds: Bounds, **outcome: Any) -> ExploreResult:
    """The result of a search or a replay of ``setup`` on ``xworld``: what ran, and ``outcome``."""
    return ExploreResult(
        fs=setup.fs,
        mode=setup.mode,
        table=xworld.table.name,
        semantics=setup.semantics,
        pages=setup.pages,
        tasks=tuple(str(t) for t in setup.tasks),
        bounds=bounds,
        out_of_line=xworld.out_of_line,
        io_latency=setup.io_latency,
        commit_interval=setup.commit_interval,
        **outcome,
    )


def replay(string: str, *, registry: Registry | None = None) -> ExploreResult:
    """Run exactly the schedule a replay string records, and describe it.

    The string carries the table, the pages, the tasks, the bounds, the
    semantics and the choices; only the plugins must be installed.

    Raises:
        ConfigError: the string is damaged, names a table or task the
            loaded plugins do not have, or records a choice that cannot be
            made (the schedule does not replay: the code changed since).
    """
    setup, bounds, choices = decode_replay(string)
    registry = _registry(registry)
    fstype, checked = _resolve(
        registry,
        setup.fs,
        setup.mode,
        pages=setup.pages,
        tasks=list(setup.tasks),
        semantics=setup.semantics,
        block_size=setup.block_size,
        page_size=setup.page_size,
        out_of_line=setup.out_of_line,
        io_latency=setup.io_latency,
        commit_interval=setup.commit_interval,
    )
    # The lock orders of earlier schedules its failure rests on, known from the start.
    checked = attrs.evolve(checked, lock_orders=setup.lock_orders)
    xworld = ExploredWorld(checked, fstype, registry)
    result = fork_run(xworld, policy=lambda: Deviations(choices, exact=True), record=True)
    if result.get("diverged"):
        raise ConfigError(
            f"{result['diverged']}: the string records a schedule these plugins or this "
            "fsaops no longer take (was the table changed since it was recorded?)"
        )
    points = len(result["trace"])
    unreached = [j for j in choices if j >= points]
    if unreached:
        raise ConfigError(
            f"the schedule does not replay: the string records a choice at point "
            f"{min(unreached)}, but the schedule ended after {points} points (was the table "
            "changed since it was recorded?)"
        )
    made = count_preemptions(result["trace"])
    if bounds.preemptions is not None and made > bounds.preemptions:
        raise ConfigError(
            f"--replay: the replay string is damaged: its choices make "
            f"{_plural(made, 'preemption')}, more than the bound it records (at most "
            f"{bounds.preemptions}): no search with that bound runs such a schedule"
        )
    problems = tuple((s, p) for s, p in result["problems"])
    steps = _steps(result)
    failures: tuple[Failure, ...] = ()
    if problems:
        failures = (
            Failure(
                status=_status(problems),
                problems=problems,
                interleaving=steps,
                preemptions=made,
                replay=encode_replay(checked, bounds, deviations(result["trace"])),
            ),
        )
    return _result(
        checked,
        xworld,
        bounds,
        schedules=1,
        exhausted=False,
        seconds=float(result["seconds"]),
        failures=failures,
        reasons=dict.fromkeys(result["reasons"], 1),
        replayed=True,
        interleaving=steps,
    )


# -- the terminal summary --------------------------------------------------------------------


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def render_text(result: ExploreResult) -> str:
    """The terminal summary of ``fsaops explore``: what ran, and a failing schedule if any."""
    layout = ", blocks out of line" if result.out_of_line else ""
    lines = [
        f"fsaops explore: {result.fs} {result.mode} ({result.table}), semantics "
        f"{result.semantics}, {_plural(result.pages, 'page')}{layout}",
        f"tasks: migrate (pages 0-{result.pages - 1}), {', '.join(result.tasks) or 'no accessor'}",
    ]
    if result.not_used:
        lines.append(f"not used by explore: {', '.join(result.not_used)}")
    if result.clean_only:
        lines.append(
            f"on a clean page only (one page): {', '.join(result.clean_only)}; --pages 2 runs "
            "each on a dirty page too"
        )
    bounds = result.bounds
    if result.replayed:
        lines.append("replaying one schedule:")
        lines += _interleaving(result.interleaving)
    elif bounds.pct_depth is not None:
        lines.append(
            f"bounds: PCT depth {bounds.pct_depth}, {bounds.schedules} schedules, "
            f"seed {bounds.seed}"
        )
    else:
        cap = f", stopping after {bounds.schedules}" if bounds.schedules else ""
        each = "" if bounds.together else ", with each accessor in turn"
        none = ", no reduction" if result.reduction == "none" else ""
        lines.append(
            f"bounds: every schedule with at most {bounds.preemptions} preemptions{each}{cap}{none}"
        )
    if not result.replayed:
        space = (
            "the bounded space is exhausted" + _EXHAUSTED_UNDER.get(result.reduction or "", "")
            if result.exhausted
            else "stopped at the first failing schedule"
            if result.failures
            else "the bounded space is NOT exhausted"
            if bounds.pct_depth is None
            else "random schedules (PCT never exhausts a space)"
        )
        lines.append(
            f"{_plural(result.schedules, 'schedule')} in {result.seconds:.1f} s "
            f"({result.schedules_per_second:.1f} schedules/s): {space}"
        )
        lines += _cut_short(result)
    if result.reasons:
        lines.append("why the migration gave a page up (schedules):")
        lines += [f"  {why} ({n})" for why, n in sorted(result.reasons.items())]
    if not result.failures:
        if result.cut_short:
            lines.append(
                f"NOT EXHAUSTED: none of the {_plural(result.schedules, 'schedule')} run fails, "
                "but the search stopped before the bounded space was exhausted, and the "
                "schedules it left out may (run it without --schedules, or with fewer "
                "preemptions, pages or tasks, to end it)"
            )
        else:
            lines.append("no schedule fails" if not result.replayed else "the schedule passes")
        return "\n".join(lines) + "\n"
    failure = result.failures[0]
    lines.append(
        f"FAILED ({failure.status.value}): a schedule with "
        f"{_plural(failure.preemptions, 'preemption')}:"
    )
    lines += [f"  {status}: {problem}" for status, problem in failure.problems]
    if not result.replayed:
        lines.append("the interleaving (task: the point it ran from, in function, page, [lock]):")
        lines += _interleaving(failure.interleaving)
    lines.append(f"replay: fsaops explore --replay {failure.replay}")
    return "\n".join(lines) + "\n"


def _cut_short(result: ExploreResult) -> list[str]:
    """Which runs a ``schedules`` cap let the search reach, when it stopped the search."""
    runs = result.runs
    if result.exhausted or result.failures or len(runs) < 2:
        return []
    reached = [
        f"{', '.join(run.tasks)} ({run.searched}, {_plural(run.schedules, 'schedule')})"
        for run in runs
        if run.searched != "not reached"
    ]
    missed = [", ".join(run.tasks) for run in runs if run.searched == "not reached"]
    line = f"tasks searched: {', '.join(reached)}"
    if missed:
        line += f"; not reached: {', '.join(missed)}"
    return [line]


STEPS_SHOWN: Final = 200
"""Steps of an interleaving the terminal summary shows at each end (the JSON has them all)."""


def _interleaving(steps: Sequence[Step]) -> list[str]:
    width = max((len(s.task) for s in steps), default=0)
    out = []
    for j, step in enumerate(steps):
        if STEPS_SHOWN <= j < len(steps) - STEPS_SHOWN:
            if j == STEPS_SHOWN:
                left = len(steps) - 2 * STEPS_SHOWN
                out.append(f"  ... {left:,} steps left out (--json has every step) ...")
            continue
        where = f" in {step.function}" if step.function else ""
        page = f" page {step.page}" if step.page >= 0 else ""
        pfn = f" (pfn {step.pfn})" if step.pfn >= 0 else ""
        lock = f" [{step.lock}]" if step.lock else ""
        mark = "*" if step.preempted else " "
        out.append(f"  {j:4d} {mark} {step.task:<{width}}  {step.kind}{where}{page}{pfn}{lock}")
    out.append("  (* a preemption: the task before could have gone on)")
    return out
