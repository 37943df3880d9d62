"""The report of one scenario run: a frozen value and its JSON form.

:class:`Report` holds what ``fsaops migrate`` found: per operations table,
how many pages moved, failed or stayed behind and why; the totals; the
kernel's counters during migration; what the integrity check read back;
and the invariants the checker found broken.  :meth:`Report.to_json`
gives plain data with sorted keys and nothing that changes from run to run
(no time, no addresses), so one scenario and one seed always give the same
bytes.  Its terminal form is :mod:`fsaops.terminal_report`'s; its page,
:mod:`fsaops.html_report`'s.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

import attrs

from fsaops.config.effective import LeftOut
from fsaops.findings import Finding
from fsaops.frozen import frozen_mapping, sorted_mapping
from fsaops.jsonbound import json_text
from fsaops.proofs import Proof
from fsaops.status import SCHEMA, Status
from fsaops.trace import TraceStep

__all__ = [
    "NOTHING",
    "NOTHING_MIGRATED",
    "SWAPPED_IN",
    "VERDICTS",
    "Integrity",
    "MountReport",
    "PageOutcome",
    "PluginVersion",
    "Proofs",
    "Report",
    "Selection",
    "TableReport",
    "Totals",
    "headline",
    "member_name",
    "tone",
    "verdict",
]


def _ints(values: Iterable[int]) -> tuple[int, ...]:
    return tuple(values)


@attrs.frozen
class TableReport:
    """What happened to the pages of one operations table.

    Attributes:
        name: the table's name (the kernel's symbol, ``ext3_journalled_aops``).
        filesystem: the filesystem type that uses it (``swap`` for anonymous
            memory; ``?`` for a table no mount was set up with, :attr:`swapped_in`).
        mode: the mount mode (``?`` for a table no mount was set up with).
        migratepage: the qualified name of the table's ``migratepage``, or
            ``None`` when it has none (the engine's fallback path is used)
            or the table is :attr:`swapped_in`.
        pages: pages of this table that migration finished with.
        moved: pages that moved (or were swapped out).
        failed: pages that failed for good.
        not_migrated: pages still busy (``-EAGAIN``) after the last pass, or
            never tried because no new page could be allocated.
        errors: errno name → pages, for failed and not migrated pages.
        via: how moved pages went → pages: ``migratepage`` (the table's
            op), ``migrate_page`` (the fallback on a clean page),
            ``writeback`` (the fallback after writing the page out),
            ``swap`` (written out and dropped) or ``freed``.
        reasons: why pages failed or stayed → pages.
        retry_by_pass: for each pass (0 to 10), the pages of this table
            that the pass left to retry (``-EAGAIN``), summed over the
            ``migrate_pages`` calls: the retry curve.
        wrong: pages of this table (as migration began) found wrong: read
            back wrong, or named by the placement or the durability proof;
            each page counts once.
    """

    name: str
    filesystem: str
    mode: str
    migratepage: str | None
    pages: int
    moved: int
    failed: int
    not_migrated: int
    errors: Mapping[str, int] = attrs.field(converter=sorted_mapping)
    via: Mapping[str, int] = attrs.field(converter=sorted_mapping)
    reasons: Mapping[str, int] = attrs.field(converter=sorted_mapping)
    retry_by_pass: tuple[int, ...] = attrs.field(default=(), converter=_ints)
    wrong: int = 0

    def to_json(self) -> dict[str, Any]:
        """Plain data for JSON."""
        return {
            "filesystem": self.filesystem,
            "mode": self.mode,
            "migratepage": self.migratepage,
            "pages": self.pages,
            "moved": self.moved,
            "failed": self.failed,
            "not_migrated": self.not_migrated,
            "errors": dict(self.errors),
            "via": dict(self.via),
            "reasons": dict(self.reasons),
            "retry_by_pass": list(self.retry_by_pass),
            "wrong": self.wrong,
        }

    @property
    def swapped_in(self) -> bool:
        """Whether no mount of the run, nor the swap cache, was set up with this table.

        Its pages took it from their file's mapping all the same: plugin
        code swapped it in (a ``migratepage`` that set ``mapping->a_ops``,
        which the run reports as a broken invariant).  The run knows
        neither its filesystem nor its mode (``?``), nor the name of its
        ``migratepage``: the report says it was swapped in, never that it
        has no ``migratepage`` (its ``via`` says how its pages moved).
        """
        return self.filesystem == "?" and self.mode == "?" and self.migratepage is None


SWAPPED_IN: Final = "no mount's table: plugin code swapped it in"
"""How the report describes a table no mount was set up with (:attr:`TableReport.swapped_in`)."""


@attrs.frozen
class Totals:
    """The sums over every table, and the engine's passes.

    Attributes:
        pages: pages taken off the source node's LRU lists to migrate
            (including those migrated by swap-out).
        moved, failed, not_migrated: as in :class:`TableReport`.
        passes: passes ``migrate_pages`` made over its page lists, summed
            over its calls.
        calls: how many times ``migrate_pages`` was called (one per chunk
            of new pages, plus one for the swap-out).
        retry_by_pass: for each pass (0 to 10), the pages the pass left to
            retry (the kernel's ``retry``), summed over the calls.
    """

    pages: int
    moved: int
    failed: int
    not_migrated: int
    passes: int
    calls: int
    retry_by_pass: tuple[int, ...] = attrs.field(default=(), converter=_ints)

    def to_json(self) -> dict[str, Any]:
        """Plain data for JSON."""
        return attrs.asdict(self)


@attrs.frozen
class Integrity:
    """What reading every page back found.

    Attributes:
        checked: pages of data read back and compared: every page of every
            file (through ``read``, execute-in-place files included) and
            every page of anonymous memory (through its process's page
            tables).  File pages that processes map are also read through
            those processes; each page counts once.
        lost: pages whose newest data is gone: they cannot be read, read
            back zeroes, or read back an older version.
        corrupted: pages that read back anything else that is wrong.
        problems: the first of those, one sentence each.
        not_cached: pages among ``checked`` that live on their device and
            never in the page cache (execute-in-place files): migration has
            nothing of theirs to move, so no table counts them.
    """

    checked: int
    lost: int
    corrupted: int
    problems: tuple[str, ...] = ()
    not_cached: int = 0

    def to_json(self) -> dict[str, Any]:
        """Plain data for JSON."""
        return {
            "checked": self.checked,
            "lost": self.lost,
            "corrupted": self.corrupted,
            "not_cached": self.not_cached,
            "problems": list(self.problems),
        }


@attrs.frozen
class Proofs:
    """The proofs behind the verdict (:mod:`fsaops.proofs`) and their own I/O.

    Attributes:
        placement: every page is where the engine's account says.
        durability: after a sync and a drop of memory, every page reads
            back from its backing store.
        io: the counters of the proofs' own work (writes, swap-outs and
            faults), kept apart from ``vmstat``, which covers migration and
            the in-memory read-back.
    """

    placement: Proof
    durability: Proof
    io: Mapping[str, int] = attrs.field(converter=sorted_mapping)

    @property
    def hold(self) -> bool:
        """Whether both proofs hold."""
        return self.placement.holds and self.durability.holds

    def to_json(self) -> dict[str, Any]:
        """Plain data for JSON."""
        return {
            "placement": self.placement.to_json(),
            "durability": self.durability.to_json(),
            "io": dict(self.io),
        }


@attrs.frozen
class PageOutcome:
    """One page that did not move: where it is, whose it is, and why it stayed.

    Attributes:
        pfn: its frame.
        node: the node of the frame.
        table: the operations table of its mapping.
        errno: the error it ended with (``EAGAIN`` for a page still busy
            after the last pass, ``ENOMEM`` for one no new page could be
            allocated for, the permanent error of a failed page).
        reason: why, in the kernel's words.
        pass_: the pass of its last attempt (0 to 10), or ``None`` when the
            engine never reached it.
        file: for a file page, its file as the report names it
            (``mount0/file1``); ``None`` otherwise.
        inode: the file's inode number.
        index: the page's index in the file.
        pid: for anonymous memory, the process that maps it.
        address: the byte address it is mapped at in that process.
    """

    pfn: int
    node: int
    table: str
    errno: str
    reason: str
    pass_: int | None
    file: str | None = None
    inode: int | None = None
    index: int | None = None
    pid: int | None = None
    address: int | None = None

    def where(self) -> str:
        """``mount0/file1:3`` for a file page, ``pid 5 at 0x10000`` for anonymous memory."""
        if self.file is not None:
            return f"{self.file}:{self.index}"
        if self.pid is not None and self.address is not None:
            return f"pid {self.pid} at {self.address:#x}"
        return "no mapping"

    def to_json(self) -> dict[str, Any]:
        """Plain data for JSON (``file``/``inode``/``index``, or ``pid``/``address``)."""
        data: dict[str, Any] = {
            "pfn": self.pfn,
            "node": self.node,
            "table": self.table,
            "errno": self.errno,
            "reason": self.reason,
            "pass": self.pass_,
        }
        if self.file is not None:
            data.update(file=self.file, inode=self.inode, index=self.index)
        if self.pid is not None:
            data.update(pid=self.pid, address=self.address)
        return data


@attrs.frozen
class PluginVersion:
    """A plugin whose code the run used: enough to know which code ran.

    Attributes:
        name: its entry-point name (``ext3``).
        distribution: the distribution that installs it.
        version: the distribution's version.
        imported_by: for a plugin that was not selected, the selected
            plugins that imported its module (they are built on it);
            empty for a plugin the run loaded.
    """

    name: str
    distribution: str
    version: str
    imported_by: tuple[str, ...] = ()

    def describe(self) -> str:
        """``myfs`` for a plugin the run loaded, ``ext2 (imported by myfs)`` for one it imported."""
        if not self.imported_by:
            return self.name
        return f"{self.name} (imported by {', '.join(self.imported_by)})"

    def to_json(self) -> dict[str, Any]:
        """Plain data for JSON (``imported_by`` only when there is one)."""
        data: dict[str, Any] = {
            "name": self.name,
            "distribution": self.distribution,
            "version": self.version,
        }
        if self.imported_by:
            data["imported_by"] = list(self.imported_by)
        return data


@attrs.frozen
class MountReport:
    """One mount of the run, as it was made: what the scenario asked for, defaults filled in.

    A scenario may leave a mount's mode and block size to the filesystem;
    the report says which the run got, so that a reader of the report (its
    page, ``fsaops diff``) need not ask the installed plugin, which may be
    another version by then, or gone.

    Attributes:
        name: the mount's name (``mount0``), as page names start.
        filesystem: the filesystem type.
        mode: the mode it was mounted in.
        block_size: its block size in bytes.
        table: the operations table its files were given.
    """

    name: str
    filesystem: str
    mode: str
    block_size: int
    table: str

    def to_json(self) -> dict[str, Any]:
        """Plain data for JSON."""
        return {
            "name": self.name,
            "filesystem": self.filesystem,
            "mode": self.mode,
            "block_size": self.block_size,
            "table": self.table,
        }


@attrs.frozen
class Selection:
    """The plugins a run loaded, when the scenario did not choose them.

    Attributes:
        names: the selected plugins, as given.
        selected_by: ``--plugins`` or ``FSAOPS_PLUGINS``.
        overriding: the scenario's ``[plugins] load``, which the selection
            overrode (``None``: the scenario has none).
    """

    names: tuple[str, ...]
    selected_by: str
    overriding: tuple[str, ...] | None = None

    def to_json(self) -> dict[str, Any]:
        """Plain data for JSON."""
        return {"names": list(self.names), "selected_by": self.selected_by}

    def describe(self) -> str:
        """``ext2, swap (selected by FSAOPS_PLUGINS, overriding [plugins] load: ext2)``."""
        said = f"{', '.join(self.names) or 'none'} (selected by {self.selected_by}"
        if self.overriding is not None:
            load = ", ".join(self.overriding) or "none"
            said += f", overriding the scenario's [plugins] load: {load}"
        return said + ")"


@attrs.frozen
class Report:
    """The outcome of one scenario run.

    Attributes:
        version: the fsaops version that made it.
        source: where the scenario came from (a file as named, or the
            built-in scenario).
        seed: the seed the run used.
        config: the whole scenario with every default filled in.
        from_node, to_node: the nodes migrated from and to.
        totals: sums over every table.
        by_aops: one entry per operations table, by name.
        vmstat: the kernel's counters, as differences over the migration;
            ``writepage`` is the number of ``writepage`` calls migration made
            (through ``pageout``).
        workload: how many pages got each state, and a digest of which.
        faults: injected faults by kind.
        ticks: simulated time: ``build`` (the clock when migration started),
            ``migration`` (ticks it took) and ``total`` (at the end).
        integrity: what the read-back found.
        invariants: problems the invariant checker found at the end.
        pages_left: every page still on the source node because it was busy
            after the last pass or never tried, in pfn order.
        pages_failed: every page that failed for good, in pfn order.
        left_out: the parts of the built-in scenario the selected plugins
            cannot serve, which the run left out.
        not_mounted: the filesystems the selected plugins provide that the
            built-in scenario does not mount: loaded, but not tried.
        mounts: each mount of the scenario, in order, with the mode and
            block size it got (:class:`MountReport`).
        proofs: the placement and durability proofs, and their own I/O.
        findings: wrong but lossless behaviour of tables' ``migratepage``
            (:mod:`fsaops.findings`).
        watched: every ``migratepage`` call was looked at for findings
            (``--strict`` or ``--debug-vm``); otherwise only the free ones
            (``return``) were collected.
        strict: findings fail the run.
        watched_calls: the ``migratepage`` calls looked at when ``watched``
            (not in the JSON: the text and the page say "none was called"
            rather than "every call looked right" when it is 0).
        plugins: the plugins the run loaded, in name order, with their
            versions, and those it did not select whose code a loaded one
            imported (:attr:`PluginVersion.imported_by`).
        selection: the selection and what made it, when it did not come from
            the scenario (``--plugins``, ``FSAOPS_PLUGINS``); ``None`` when
            the scenario's ``[plugins] load`` (or its absence) chose.
        trace: one page's journey (:mod:`fsaops.trace`), when a page was
            traced; ``None`` otherwise.
    """

    version: str
    source: str
    seed: int
    config: Mapping[str, Any] = attrs.field(converter=frozen_mapping)
    from_node: int
    to_node: int
    totals: Totals
    by_aops: tuple[TableReport, ...]
    vmstat: Mapping[str, int] = attrs.field(converter=sorted_mapping)
    workload: Mapping[str, Any] = attrs.field(converter=frozen_mapping)
    faults: Mapping[str, int] = attrs.field(converter=sorted_mapping)
    ticks: Mapping[str, int] = attrs.field(converter=sorted_mapping)
    integrity: Integrity
    invariants: tuple[str, ...]
    pages_left: tuple[PageOutcome, ...] = ()
    pages_failed: tuple[PageOutcome, ...] = ()
    left_out: tuple[LeftOut, ...] = ()
    not_mounted: tuple[str, ...] = ()
    mounts: tuple[MountReport, ...] = ()
    proofs: Proofs | None = None
    findings: tuple[Finding, ...] = ()
    watched: bool = False
    strict: bool = False
    watched_calls: int = 0
    plugins: tuple[PluginVersion, ...] = ()
    trace: tuple[TraceStep, ...] | None = None
    selection: Selection | None = None

    @property
    def outcome(self) -> Status:
        """What the run came to.

        ``data lost`` when a page reads back wrong or the durability proof
        fails; ``invariant broken`` when the invariant checker or the
        placement proof finds something; ``findings`` when the run is strict
        and a table did something wrong that lost nothing; otherwise ``ok``.
        """
        i = self.integrity
        proofs = self.proofs
        if i.lost or i.corrupted or (proofs is not None and not proofs.durability.holds):
            return Status.DATA_LOST
        if self.invariants or (proofs is not None and not proofs.placement.holds):
            return Status.INVARIANT_BROKEN
        if self.strict and self.findings:
            return Status.FINDINGS
        return Status.OK

    @property
    def ok(self) -> bool:
        """Nothing was lost, every invariant holds, and both proofs hold."""
        return self.outcome is Status.OK

    @property
    def exit_status(self) -> int:
        """0 when :attr:`ok`, else 1."""
        return self.outcome.exit_code

    @property
    def status(self) -> str:
        """The name of the outcome (``ok``, ``data lost``, ``invariant broken``, ``findings``)."""
        return self.outcome.value

    def to_json(self) -> dict[str, Any]:
        """The report as plain data (serialize with sorted keys for stable bytes)."""
        return {
            "schema": SCHEMA,
            "fsaops": self.version,
            "source": self.source,
            "seed": self.seed,
            "config": dict(self.config),
            "migrate": {"from_node": self.from_node, "to_node": self.to_node},
            "status": self.status,
            "totals": self.totals.to_json(),
            "by_aops": {t.name: t.to_json() for t in self.by_aops},
            "vmstat": dict(self.vmstat),
            "workload": dict(self.workload),
            "faults": {"injected": dict(self.faults)},
            "ticks": dict(self.ticks),
            "integrity": self.integrity.to_json(),
            "invariants": list(self.invariants),
            "pages_left": [p.to_json() for p in self.pages_left],
            "pages_failed": [p.to_json() for p in self.pages_failed],
            "left_out": [part.to_json() for part in self.left_out],
            "not_mounted": list(self.not_mounted),
            "mounts": [m.to_json() for m in self.mounts],
            "proofs": None if self.proofs is None else self.proofs.to_json(),
            "findings": [f.to_json() for f in self.findings],
            "findings_checked": "all" if self.watched else "return only",
            "findings_calls": self.watched_calls if self.watched else 0,
            "plugins": [p.to_json() for p in self.plugins],
            **({} if self.trace is None else {"trace": [step.to_json() for step in self.trace]}),
            **({} if self.selection is None else {"selection": self.selection.to_json()}),
        }

    def dumps(self) -> str:
        """The JSON text: sorted keys, two-space indent, a final newline.

        Written through :mod:`fsaops.jsonbound`: plugin code that rebinds
        ``json.dumps`` does not change it.
        """
        return json_text(self.to_json())


# -- what the terminal form and the page both say --------------------------------


def _n(value: int) -> str:
    return f"{value:,}"


def member_name(member: str) -> str:
    """A table's ``migratepage`` as an overview names it: ``buffer_migrate_page``.

    A function named as one of fsaops's own helpers but not fsaops's (a
    plugin's copy) keeps its module, ``myfs.buffer_migrate_page``, so that
    it is not taken for the kernel's.
    """
    module, _, name = member.rpartition(".")
    if not module or module == "fsaops" or module.startswith("fsaops."):
        return name
    from fsaops import buffer, migrate

    if name in (*buffer.__all__, *migrate.__all__):
        return f"{module.rpartition('.')[2]}.{name}"
    return name


VERDICTS: Final = {
    "ok": "OK: every page is where the engine says, nothing was lost, every invariant holds",
    "data lost": "FAILED: data was lost",
    "invariant broken": "FAILED: an invariant is broken, or a page is not where the engine says",
    "findings": "FAILED (strict): nothing was lost, but a table's migratepage did something wrong",
}
"""The verdict of a report, by its status."""

NOTHING: Final = (
    "OK, but nothing was checked: the scenario has no page to migrate "
    "(no page of a loaded filesystem in the page cache, and no process memory)"
)
"""The verdict of a run that lost nothing because it had nothing: no table was tried."""

NOTHING_MIGRATED: Final = (
    "OK, but no page was migrated: the scenario has no page to migrate "
    "(no page of a loaded filesystem in the page cache, and no process memory); "
    "only {pages} read back from their device"
)
"""The verdict of a run of no page to migrate whose execute-in-place pages were read back.

Its read-back checked them, but no table was tried: nothing migrated.
"""


def _nothing(report: Report) -> str:
    """The verdict of an ``ok`` run that took on no page (:func:`tone` ``note``)."""
    if report.integrity.checked == 0:
        return NOTHING
    pages = f"{_n(report.integrity.checked)} execute-in-place page(s)"
    return NOTHING_MIGRATED.format(pages=pages)


def headline(report: Report) -> str:
    """The first words of the verdict, as a banner shows them: ``OK, but nothing was checked``.

    The status itself (``ok``, ``data lost``) for a run that took on pages.
    """
    if tone(report) != "note":
        return report.status
    return _nothing(report).split(":", 1)[0]


def tone(report: Report) -> str:
    """How the verdict is shown: ``ok``, ``note`` (OK, but nothing was checked) or ``bad``."""
    if report.status != "ok":
        return "bad"
    return "note" if report.totals.pages == 0 else "ok"


def verdict(report: Report) -> str:
    """The report's verdict in one line, as the terminal and the page say it.

    An ``ok`` run of no page at all says so: its proofs hold of nothing,
    and no plugin's table was tried.  So does one that left a selected
    plugin's filesystem out of the built-in scenario (:attr:`Report.not_mounted`).
    """
    if tone(report) == "note":
        return _nothing(report)
    said = VERDICTS.get(report.status, report.status)
    if report.not_mounted:
        said += f"; not tried: filesystem {', '.join(map(repr, report.not_mounted))} (not mounted)"
    return said


NOT_MOUNTED: Final = (
    "filesystem {name!r}, which a selected plugin provides but the built-in scenario does not "
    "use; a scenario file with a [[mount]] of it tries its tables"
)
"""What the report says of each filesystem in :attr:`Report.not_mounted`."""
