"""One page's journey through a migration: ``fsaops migrate --trace PAGE``.

A page is named as the report names it: by its frame (``56``), as a page
of a file (``mount0/file1:3``, the mount's index, the file's number and the
page's index; ``mount7/meta:5`` for a buffer-cache mapping), or as
anonymous memory of a process (``5:0x10000``, the pid and the address in
hex).  :func:`parse_page` reads that; :class:`PageTrace` follows the page
through a run:

* when the world is built, it finds the page and notes its state (flags,
  counts, the workload state the scenario gave it) and who else holds it;
* during migration it keeps the engine's own ``mm_migrate_page`` events
  for that page (it is a structlog processor, :meth:`PageTrace.processor`),
  each with the clock and, when the attempt was refused, the tasks that
  held the page; and it is told by the scheduler of every sleep on the
  page's lock, its writeback or its buffers' locks, how long it lasted and
  who held what the engine waited for;
* when migration is over, it says where the page ended: moved to which
  frame, dropped to its file's blocks or to swap, failed or left, and why.

The steps are :class:`TraceStep` values; the report carries them as its
``trace`` list, and :func:`render` draws them for a terminal.
"""

from __future__ import annotations

import re
from collections.abc import MutableMapping, Sequence
from typing import TYPE_CHECKING, Any, Final

import attrs

from fsaops.errors import FsaopsError
from fsaops.migrate import errno_name, table_name, untold_why
from fsaops.page import PG, Page, page_flags_str

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

    from rich.console import Console

    from fsaops.kernel import Kernel
    from fsaops.migrate import MigrateStats
    from fsaops.proofs import Placed
    from fsaops.scenario import Scenario
    from fsaops.world import Area, File

__all__ = [
    "PAGE_FORMS",
    "STEPS",
    "Holder",
    "Mapper",
    "PageRef",
    "PageTrace",
    "TraceError",
    "TraceStep",
    "describe",
    "fold",
    "parse_page",
    "render",
    "span",
]

PAGE_FORMS: Final = (
    "a pfn (56), a page of a file as the report names it (mount0/file1:3 or "
    "mount0/file1/page3), or a page of a process (PID:ADDRESS, the address in hex with 0x: "
    "5:0x10000, or process0/anon12)"
)
"""What ``--trace`` accepts, as its messages say it."""

_FILE_PAGE = re.compile(r"(?P<file>[^:\s]*/[^:\s]*):(?P<index>\d+)", re.ASCII)
_PROCESS_PAGE = re.compile(r"(?P<pid>\d+):(?P<address>0[xX][0-9a-fA-F]+)", re.ASCII)
# An address without its ``0x``: hex to some, and the JSON report's decimal to others.
_BARE_ADDRESS = re.compile(r"(?P<pid>\d+):(?P<address>[0-9a-fA-F]+)", re.ASCII)
# How the proofs' and the invariants' problem lines name a page (``File.page_key``,
# ``Area.page_key``): ``mount0/file1/page3``, ``process0/anon12``.
_FILE_PAGE_KEY = re.compile(r"(?P<file>[^:\s/]+/[^:\s/]+)/page(?P<index>\d+)", re.ASCII)
_AREA_PAGE_KEY = re.compile(r"(?P<area>[^:\s/]+)/anon(?P<page>\d+)", re.ASCII)


_MAX_ADDRESS_DIGITS: Final = 20
"""Digits of the largest address (2**64 - 1 in decimal)."""

_MAX_PAGE_TEXT: Final = 1000
"""Longest ``--trace`` argument read: no page of any machine needs more."""


class TraceError(FsaopsError):
    """The page to trace does not name a page migration takes on."""


@attrs.frozen
class PageRef:
    """A page as the user named it: one of ``pfn``, ``file`` and ``index``, ``pid`` and ``address``.

    Attributes:
        text: what the user wrote.
        pfn: a frame number.
        file: a file as the report names it (``mount0/file1``).
        index: the page's index in that file.
        pid: a process.
        address: a byte address in that process.
        area: a process's anonymous memory as problem lines name it
            (``process0``), with ``index`` its page (``process0/anon12``).
    """

    text: str
    pfn: int | None = None
    file: str | None = None
    index: int | None = None
    pid: int | None = None
    address: int | None = None
    area: str | None = None


def parse_page(text: str) -> PageRef:
    """Read a page as ``--trace`` takes it.

    Raises:
        ValueError: ``text`` is none of the three forms; the message says which they are.
    """
    if len(text) > _MAX_PAGE_TEXT:
        raise ValueError(f"expected {PAGE_FORMS}, got {len(text)} characters")
    if text.isascii() and text.isdigit():
        return PageRef(text, pfn=int(text))
    if match := _FILE_PAGE.fullmatch(text) or _FILE_PAGE_KEY.fullmatch(text):
        return PageRef(text, file=match["file"], index=int(match["index"]))
    if match := _AREA_PAGE_KEY.fullmatch(text):
        return PageRef(text, area=match["area"], index=int(match["page"]))
    if match := _PROCESS_PAGE.fullmatch(text):
        return PageRef(text, pid=int(match["pid"]), address=int(match["address"], 16))
    if (match := _BARE_ADDRESS.fullmatch(text)) and len(match["pid"]) <= _MAX_ADDRESS_DIGITS:
        raise ValueError(_bare_address(int(match["pid"]), match["address"]))
    raise ValueError(f"expected {PAGE_FORMS}, got {text[:60]!r}")


def _bare_address(pid: int, written: str) -> str:
    """Why ``PID:ADDRESS`` without ``0x`` is refused, with the page it may have meant.

    The text report writes addresses in hex (``pid 5 at 0x11000``), the JSON
    report as numbers (``"address": 69632``): ``5:69632`` may mean either,
    and in a large process both are pages of it, so it names neither.
    """
    rule = "PID:ADDRESS takes the address in hex with 0x"
    if len(written) > _MAX_ADDRESS_DIGITS:  # no address of any machine: no page to suggest
        return f"{rule} (5:0x10000), got {pid}:{written[:20]}... ({len(written):,} digits)"
    as_hex = f"{pid}:{int(written, 16):#x}"
    if not written.isdigit():  # a hex digit: it can only be hex
        return f"{rule}: {as_hex}, not {pid}:{written}"
    return (
        f"{rule}: {as_hex} if {written} is hex (as the text report writes addresses), "
        f"{pid}:{int(written):#x} if it is decimal (as the JSON report's address is), "
        f"not {pid}:{written}"
    )


@attrs.frozen
class Holder:
    """Another task holding the traced page, or one of its buffers.

    Attributes:
        task: the task's name (``locker``, ``pinner``).
        pid: its pid.
        hold: ``page_lock``, ``page_ref``, ``buffer_lock`` or ``buffer_ref``.
        until: the tick it lets go, or ``None`` when no time is set (it
            holds on until the run makes it let go, or for good).
        writes: for a buffer lock that is a write in flight
            (:class:`~fsaops.buffer.WriteInFlight`), the block it writes and
            the pfn of the frame it reads as it ends; else ``None``.
    """

    task: str
    pid: int
    hold: str
    until: int | None
    writes: tuple[int, int] | None = None

    def describe(self) -> str:
        """``locker (pid 3) holds the page lock until tick 1234``."""
        what = {
            "page_lock": "the page lock",
            "page_ref": "a reference",
            "buffer_lock": "a buffer's lock",
            "buffer_ref": "a reference to a buffer",
        }.get(self.hold, self.hold)
        if self.writes is not None:
            block, pfn = self.writes
            what += f" (writing block {block} from pfn {pfn})"
        until = "with no time set to let go" if self.until is None else f"until tick {self.until}"
        return f"{self.task} (pid {self.pid}) holds {what} {until}"

    def to_json(self) -> dict[str, Any]:
        """Plain data for JSON."""
        writes = None if self.writes is None else {"block": self.writes[0], "pfn": self.writes[1]}
        return {
            "task": self.task,
            "pid": self.pid,
            "hold": self.hold,
            "until": self.until,
            "writes": writes,
        }


@attrs.frozen
class Mapper:
    """A process that maps the traced page.

    Attributes:
        process: the process's name (``process2``).
        pid: its pid.
        address: the byte address the page is mapped at.
        vm_locked: whether the area is ``VM_LOCKED`` (``try_to_unmap`` refuses it).
    """

    process: str
    pid: int
    address: int
    vm_locked: bool

    def describe(self) -> str:
        """``process2 (pid 6) at 0x7000, VM_LOCKED``."""
        locked = ", VM_LOCKED" if self.vm_locked else ""
        return f"{self.process} (pid {self.pid}) at {self.address:#x}{locked}"

    def to_json(self) -> dict[str, Any]:
        """Plain data for JSON."""
        return {
            "process": self.process,
            "pid": self.pid,
            "address": self.address,
            "vm_locked": self.vm_locked,
        }


STEPS: Final = ("start", "wait", "try", "end")
"""The kinds of step, in the order a journey has them."""


@attrs.frozen
class TraceStep:
    """One step of a page's journey.

    ``start`` (the page as migration finds it), ``wait`` (the engine slept
    on the page), ``try`` (one attempt, as the engine's ``mm_migrate_page``
    event tells it) or ``end`` (where the page is when migration is over).
    Fields that do not apply to a step are ``None`` and left out of its JSON.

    Attributes:
        step: one of :data:`STEPS`.
        tick: the simulated clock: when the page was found, the attempt
            ended, the sleep ended, or migration ended.
        call: the ``migrate_pages`` call (from 1), for ``try`` and ``wait``.
        pass_: the pass (0 to 10), for ``try`` and ``wait``.
        path: the branch the engine took (``try``), as the event stream names it.
        rc: what the attempt came to: 0 or a negative errno (``try``).
        errno: ``rc`` by name (``EAGAIN``), or ``None`` for 0.
        why: the engine's reason (``try``), or what the outcome means (``end``).
        held_by: other tasks holding the page or its buffers at that moment.
        what: what the engine slept on (``wait``): ``page lock``,
            ``page writeback`` or ``buffer lock``.
        ticks: how long it slept (``wait``).
        outcome: where the page ended (``end``): ``moved``, ``dropped``,
            ``swap``, ``freed``, ``failed`` or ``left``.
        via: how a page that moved went (``end``), as the report's ``via``.
        pfn: the page's frame (``start``), or the frame it moved to (``end``).
        node: that frame's node.
        table: its operations table.
        page: whose page it is: ``mount0/file1:3``, ``pid 5 at 0x10000``.
        flags: its flags (``start``; ``end``, of the new page).
        count: its reference count (``page_count``).
        mapcount: how many ptes map it.
        state: the workload state the scenario gave it (``start``):
            ``clean``, ``dirty``, ``writeback``, ``mapped``, ``mlocked``,
            ``locked``, ``pinned`` or ``swapout``; for a page it gave none,
            ``dirty`` or ``clean`` as its flags say.
        mapped_by: the processes whose ptes map the page (``start``; ``end``,
            the new page), or ``None`` for other steps.
    """

    step: str
    tick: int
    call: int | None = None
    pass_: int | None = None
    path: str | None = None
    rc: int | None = None
    errno: str | None = None
    why: str | None = None
    held_by: tuple[Holder, ...] = ()
    what: str | None = None
    ticks: int | None = None
    outcome: str | None = None
    via: str | None = None
    pfn: int | None = None
    node: int | None = None
    table: str | None = None
    page: str | None = None
    flags: str | None = None
    count: int | None = None
    mapcount: int | None = None
    state: str | None = None
    mapped_by: tuple[Mapper, ...] | None = None

    def to_json(self) -> dict[str, Any]:
        """Plain data for JSON: ``step``, ``tick``, ``held_by``, and the fields that apply."""
        data: dict[str, Any] = {"step": self.step, "tick": self.tick}
        for field in attrs.fields(TraceStep)[2:]:
            value = getattr(self, field.name)
            if field.name in ("held_by", "mapped_by"):
                if value is not None:
                    data[field.name] = [h.to_json() for h in value]
            elif value is not None:
                data["pass" if field.name == "pass_" else field.name] = value
        return data


class PageTrace:
    """Follows one page through a run: a :class:`~fsaops.scenario.RunObserver`.

    Give :meth:`processor` to the engine's logger (it needs the logger to
    let ``debug`` events through), and the trace to
    :func:`~fsaops.scenario.run_plan` as an observer; afterwards
    :attr:`steps` holds the journey.

    Attributes:
        ref: the page, as the user named it.
        steps: the journey so far, oldest step first.

    Raises:
        TraceError: (from :meth:`built`) the page does not exist, or is not
            one migration takes on.
    """

    def __init__(self, ref: PageRef) -> None:
        self.ref = ref
        self.steps: list[TraceStep] = []
        self._page: Page | None = None
        self._kernel: Kernel | None = None
        self._name = ""
        self._last_try: str | None = None
        self._waits: list[int] = []  # steps of sleeps whose attempt has not ended yet

    @property
    def pfn(self) -> int | None:
        """The traced page's frame, once the world is built."""
        return None if self._page is None else self._page.pfn

    # -- the run's two moments -------------------------------------------------------

    def built(self, scenario: Scenario) -> None:
        """Find the page and note how migration finds it; start listening to the scheduler."""
        kernel = scenario.kernel
        page, name = self._find(scenario)
        self._page, self._kernel, self._name = page, kernel, name
        # A page the scenario gave no state is as its filesystem left it: a ramfs page,
        # which nothing writes back, is dirty.
        state = "dirty" if page.flags & PG.dirty else "clean"
        for kind, slots in scenario.states.items():
            if any(scenario.world.page_of(s.owner, s.index) is page for s in slots):
                state = kind
                break
        self.steps.append(
            TraceStep(
                "start",
                kernel.sched.now,
                pfn=page.pfn,
                node=page.node.nid,
                table=table_name(page),
                page=name,
                flags=page_flags_str(page.flags),
                count=page.count,
                mapcount=page.mapcount,
                state=state,
                held_by=self._holders(),
                mapped_by=_mappers(page),
            )
        )
        kernel.sched.on_sleep = self._on_sleep

    def migrated(
        self, scenario: Scenario, stats: MigrateStats, places: Mapping[int, Placed]
    ) -> None:
        """Say where the page ended; stop listening."""
        page = self._page
        kernel = self._kernel
        if page is None or kernel is None:
            return
        kernel.sched.on_sleep = None
        pfn = page.pfn
        now = kernel.sched.now
        left = stats.pending.get(pfn)
        failed = stats.failures.get(pfn)
        for outcome, entry in (("left", left), ("failed", failed)):
            if entry is not None:
                table, why, error, pass_ = entry
                self.steps.append(
                    TraceStep(
                        "end",
                        now,
                        outcome=outcome,
                        errno=error,
                        why=why,
                        pass_=None if pass_ < 0 else pass_,
                        pfn=pfn,
                        node=page.node.nid,
                        table=table,
                        page=self._name,
                        flags=page_flags_str(page.flags),
                        count=page.count,
                        mapcount=page.mapcount,
                        mapped_by=_mappers(page),
                    )
                )
                return
        frameless = stats.frameless.get(pfn)
        place = places.get(pfn)
        table = place.table if place is not None else str(self.steps[0].table)
        if frameless is not None:
            why = {
                "freed": "its last other user let go while the engine held it: nothing to move",
                "swap": "swap_page wrote it to swap and dropped it: it lives in its swap slot",
                "dropped": "swap_page wrote it to its file's blocks and dropped it from memory",
            }[frameless]
            self.steps.append(
                TraceStep(
                    "end",
                    now,
                    outcome=frameless,
                    via=frameless,
                    why=why,
                    table=table,
                    page=self._name,
                )
            )
            return
        new = None if place is None else scenario.world.page_of(place.record, place.index)
        via = "migratepage" if self._last_try == "migratepage" else self._last_try
        if via == "migrate_page" and any(s.path == "pageout_success" for s in self.steps):
            via = "writeback"
        self.steps.append(
            TraceStep(
                "end",
                now,
                outcome="moved",
                via=via,
                why="its data, slot and ptes are on the new page; the old frame is free",
                pfn=None if new is None else new.pfn,
                node=None if new is None else new.node.nid,
                table=table,
                page=self._name,
                flags=None if new is None else page_flags_str(new.flags),
                count=None if new is None else new.count,
                mapcount=None if new is None else new.mapcount,
                mapped_by=None if new is None else _mappers(new),
            )
        )

    # -- what the engine says ---------------------------------------------------------

    def processor(
        self, _logger: Any, _method: str, event: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        """A structlog processor: keep the ``mm_migrate_page`` events of the traced page."""
        page = self._page
        if (
            page is not None
            and event.get("event") == "mm_migrate_page"
            and event.get("pfn") == page.pfn
        ):
            self._try(event)
        return event

    def _try(self, event: MutableMapping[str, Any]) -> None:
        kernel = self._kernel
        assert kernel is not None
        rc = event.get("rc")
        path = event.get("path")
        call = event.get("call")
        pass_ = event.get("pass_")
        self._last_try = path if isinstance(path, str) else None
        # The sleeps of this attempt were told before it ended: they are its own.
        for i in self._waits:
            self.steps[i] = attrs.evolve(self.steps[i], call=call, pass_=pass_)
        self._waits.clear()
        self.steps.append(
            TraceStep(
                "try",
                kernel.sched.now,
                call=call,
                pass_=pass_,
                path=self._last_try,
                rc=rc if isinstance(rc, int) else None,
                errno=errno_name(rc) if isinstance(rc, int) and rc else None,
                why=_own_why(event.get("why"), self._last_try, rc),
                held_by=self._holders() if rc else (),
            )
        )

    def _on_sleep(self, obj: object, what: str) -> Callable[[], None] | None:
        """The scheduler's hook: a sleep on the traced page, or one of its buffers."""
        page = self._page
        kernel = self._kernel
        if page is None or kernel is None or (obj is not page and _page_of(obj) is not page):
            return None
        start = kernel.sched.now
        # Who holds what the engine waits for: a lock (no task holds writeback).
        kind = {"page lock": "page_lock", "buffer lock": "buffer_lock"}.get(what)
        held_by = tuple(h for h in self._holders() if h.hold == kind)

        def woken() -> None:
            self._waits.append(len(self.steps))
            self.steps.append(
                TraceStep(
                    "wait",
                    kernel.sched.now,
                    what=what,
                    ticks=kernel.sched.now - start,
                    held_by=held_by,
                )
            )

        return woken

    def _holders(self) -> tuple[Holder, ...]:
        page, kernel = self._page, self._kernel
        if page is None or kernel is None:
            return ()
        found = []
        for task in kernel.tasks:
            for held in task.holds:
                if held.obj is page or _page_of(held.obj) is page:
                    event = held.event
                    until = None if event is None or event.cancelled else event.when
                    write = held.write
                    writes = None if write is None else (write.blocknr, write.page.pfn)
                    found.append(Holder(task.name, task.pid, held.kind, until, writes))
        return tuple(found)

    # -- finding the page ---------------------------------------------------------------

    def _find(self, scenario: Scenario) -> tuple[Page, str]:
        ref = self.ref
        if ref.file is not None and ref.index is not None:
            return self._file_page(scenario, ref.file, ref.index)
        if ref.pid is not None and ref.address is not None:
            return self._process_page(scenario, ref.pid, ref.address)
        if ref.area is not None and ref.index is not None:
            return self._area_page(scenario, ref.area, ref.index)
        assert ref.pfn is not None
        return self._frame(scenario, ref.pfn)

    def _frame(self, scenario: Scenario, pfn: int) -> tuple[Page, str]:
        kernel = scenario.kernel
        source = kernel.nodes[scenario.source_node]
        frames = f"node {source.nid} has pfns {source.start_pfn} to {_last(source)}"
        last = _last(kernel.nodes[-1])
        if pfn > last:
            raise TraceError(f"--trace {pfn}: no such frame: the machine has pfns 0 to {last}")
        page = kernel.pfn_to_page(pfn)
        held = self._held_in(scenario, page)
        if page.node is not source and page.node.nid == scenario.target_node:
            # A problem line printed after migration names a frame a page moved to.
            if held is not None:
                raise TraceError(
                    f"--trace {pfn}: pfn {pfn} is on node {page.node.nid}, where pages migrate "
                    f"to: it holds {held} when migration starts, which is there already and "
                    f"does not migrate ({frames})"
                )
            raise TraceError(
                f"--trace {pfn}: pfn {pfn} is on node {page.node.nid}, where pages migrate to, "
                "and is free when migration starts: name the page that moves there instead, as "
                "MOUNT/FILE:INDEX, or MOUNT/FILE/pageN as a problem line gives it after the pfn "
                f"({frames})"
            )
        if page.node is not source:
            raise TraceError(
                f"--trace {pfn}: pfn {pfn} is on node {page.node.nid}, not on node "
                f"{source.nid}, whose pages migrate ({frames})"
            )
        if held is not None:
            return page, held
        raise TraceError(
            f"--trace {pfn}: pfn {pfn} holds no page of the scenario when migration starts "
            f"(a free frame); {frames}, {_in_use(source)} of them in use"
        )

    @staticmethod
    def _held_in(scenario: Scenario, page: Page) -> str | None:
        """The name of the scenario's page that ``page`` holds, or ``None`` (a free frame)."""
        for record, index in _records(scenario):
            if scenario.world.page_of(record, index) is page:
                return _name(record, index, scenario)
        return None

    def _file_page(self, scenario: Scenario, key: str, index: int) -> tuple[Page, str]:
        files = {record.key: record for record in scenario.files}
        record = files.get(key)
        text = self.ref.text
        if record is None:
            raise TraceError(f"--trace {text}: no file {key}: the files are {_listing(files)}")
        if index >= record.npages:
            raise TraceError(
                f"--trace {text}: {key} has {record.npages} page(s): indexes 0 to "
                f"{record.npages - 1}"
            )
        if not record.page_cache:
            raise TraceError(
                f"--trace {text}: {key} is on an execute-in-place mount: its pages live on "
                "the device and never in memory, so migration has none of them to move"
            )
        page = scenario.world.page_of(record, index)
        if page is None:
            raise TraceError(f"--trace {text}: {key}:{index} is not in memory")
        return self._on_source(scenario, page, text), f"{key}:{index}"

    def _process_page(self, scenario: Scenario, pid: int, address: int) -> tuple[Page, str]:
        text = self.ref.text
        areas = [a for a in scenario.areas if a.mm.pid == pid]
        if not areas:
            pids = sorted({a.mm.pid for a in scenario.areas})
            listed = ", ".join(map(str, pids)) if pids else "none"
            raise TraceError(
                f"--trace {text}: no process {pid} with anonymous memory (the pids are {listed})"
            )
        vpn = address // scenario.page_size
        for area in areas:
            if area.start <= vpn < area.start + area.npages:
                page = scenario.world.page_of(area, vpn - area.start)
                if page is None:
                    break
                return self._on_source(scenario, page, text), f"pid {pid} at {address:#x}"
        spans = ", ".join(
            f"{a.start * scenario.page_size:#x}-{(a.start + a.npages) * scenario.page_size - 1:#x}"
            for a in areas
        )
        raise TraceError(
            f"--trace {text}: process {pid} has no page of anonymous memory at {address:#x} "
            f"(its memory: {spans})"
        )

    def _area_page(self, scenario: Scenario, key: str, page_no: int) -> tuple[Page, str]:
        """The page problem lines call ``KEY/anonN``: page ``N`` of a process's anonymous memory."""
        text = self.ref.text
        areas = [a for a in scenario.areas if a.key == key]
        if not areas:
            keys = sorted({a.key for a in scenario.areas})
            listed = ", ".join(keys) if keys else "none"
            raise TraceError(
                f"--trace {text}: no process {key} with anonymous memory (the processes are "
                f"{listed})"
            )
        for area in areas:
            if area.first <= page_no < area.first + area.npages:
                address = (area.start + page_no - area.first) * scenario.page_size
                return self._process_page(scenario, area.mm.pid, address)
        spans = ", ".join(f"anon{a.first}-anon{a.first + a.npages - 1}" for a in areas)
        raise TraceError(f"--trace {text}: {key} has no page anon{page_no} (its pages: {spans})")

    @staticmethod
    def _on_source(scenario: Scenario, page: Page, text: str) -> Page:
        if page.node.nid != scenario.source_node:
            raise TraceError(
                f"--trace {text}: the page is on node {page.node.nid} when migration starts, "
                f"not on node {scenario.source_node}, whose pages migrate"
            )
        return page


def _mappers(page: Page) -> tuple[Mapper, ...]:
    """The processes whose ptes map ``page`` now."""
    from fsaops.rmap import VM_LOCKED

    mapping: Any = page.mapping
    if mapping is None:
        return ()
    vmas = mapping.vmas if mapping.anon else mapping.i_mmap
    size = page.node.page_size
    found = []
    for vma in list(vmas):
        vpn = vma.address(page)
        pte = vma.mm.ptes.get(vpn) if vpn >= 0 else None
        if pte is not None and pte.page is page:
            found.append(
                Mapper(vma.mm.name, vma.mm.pid, vpn * size, bool(vma.vm_flags & VM_LOCKED))
            )
    return tuple(found)


def _page_of(obj: object) -> object:
    """The page a buffer head belongs to (``None`` for anything else)."""
    return getattr(obj, "b_page", None)


def _last(node: Any) -> int:
    return int(node.start_pfn + node.nr_pages - 1)


def _in_use(node: Any) -> int:
    return int(node.nr_pages - node.nr_free)


def _records(scenario: Scenario) -> Iterable[tuple[File | Area, int]]:
    records: list[File | Area] = [*scenario.files, *scenario.areas]
    for record in records:
        for index in range(record.npages):
            yield record, index


def _name(record: File | Area, index: int, scenario: Scenario) -> str:
    """How the report names a page: ``mount0/file1:3``, ``pid 5 at 0x10000``."""
    from fsaops.world import Area

    if isinstance(record, Area):
        return f"pid {record.mm.pid} at {(record.start + index) * scenario.page_size:#x}"
    return f"{record.key}:{index}"


def _listing(files: Mapping[str, object]) -> str:
    names = sorted(files)
    shown = ", ".join(names[:12])
    return shown + (f" and {len(names) - 12} more" if len(names) > 12 else "")


# -- the terminal form -----------------------------------------------------------------------


def _holders_text(holders: Sequence[Holder]) -> str:
    return "; ".join(h.describe() for h in holders)


def describe(step: TraceStep) -> tuple[str, str]:
    """(what happened, in a few words; the details) for one step."""
    if step.step == "start":
        head = "start"
        details = (
            f"pfn {step.pfn} on node {step.node}: "
            f"{step.page}, {step.table}; flags {step.flags}, page_count {step.count}, "
            f"mapcount {step.mapcount}; workload state {step.state}"
        )
        if step.mapped_by:
            details += "; mapped by " + ", ".join(m.describe() for m in step.mapped_by)
        if step.held_by:
            details += f"; {_holders_text(step.held_by)}"
        return head, details
    if step.step == "wait":
        details = f"slept {step.ticks} tick(s) on the {step.what}"
        if step.held_by:
            details += f": {_holders_text(step.held_by)}"
        elif step.what == "page writeback":
            details += ": the write in flight had to end"
        return "wait", details
    if step.step == "try":
        rc = "0" if not step.rc else f"{step.rc} ({step.errno})"
        details = f"rc {rc}"
        if step.why:
            details += f": {step.why}"
        if step.held_by:
            details += f"; {_holders_text(step.held_by)}"
        return str(step.path), details
    if step.outcome == "moved":
        where = "" if step.pfn is None else f" to pfn {step.pfn} on node {step.node}"
        details = f"moved{where} via {step.via}"
        if step.flags is not None:
            details += (
                f"; the new page: flags {step.flags}, page_count {step.count}, "
                f"mapcount {step.mapcount}"
            )
        if step.mapped_by:
            details += "; mapped by " + ", ".join(m.describe() for m in step.mapped_by)
        return "end", details
    if step.outcome in ("left", "failed"):
        when = "never tried" if step.pass_ is None else f"last tried in pass {step.pass_}"
        return "end", f"{step.outcome} ({step.errno}, {when}): {step.why}"
    return "end", f"{step.outcome}: {step.why}"


def _own_why(why: object, path: str | None, rc: object) -> str:
    """An attempt's reason, without the words the event adds when the table said nothing.

    A try step shows its path and errno already: the engine's
    :func:`~fsaops.migrate.untold_why` would repeat them.
    """
    said = str(why or "")
    if said and path is not None and isinstance(rc, int) and rc and said == untold_why(path, rc):
        return ""
    return said


def fold(steps: Sequence[TraceStep]) -> list[list[TraceStep]]:
    """Steps in runs a person reads as one: attempts that came to the same, told once.

    A run is attempts with the same path, return code, reason and holders,
    either in one pass of call after call (V4 retries a busy page in pass 0
    of every call) or in pass after pass of one call.
    """
    runs: list[list[TraceStep]] = []
    for step in steps:
        run = runs[-1] if runs else None
        if run is not None and step.step == "try" and run[0].step == "try":
            first, last = run[0], run[-1]
            alike = (first.path, first.rc, first.why, first.held_by) == (
                step.path,
                step.rc,
                step.why,
                step.held_by,
            )
            across_calls = all(s.pass_ == step.pass_ for s in run) and (
                len(run) > 1 or step.call != last.call
            )
            across_passes = (
                all(s.call == step.call for s in run)
                and last.pass_ is not None
                and step.pass_ == last.pass_ + 1
            )
            if alike and (across_calls or across_passes):
                run.append(step)
                continue
        runs.append([step])
    return runs


def span(first: int | None, last: int | None) -> str:
    """``3``, or ``3-7`` for a run of steps; empty for none."""
    if first is None:
        return ""
    return str(first) if first == last else f"{first}-{last}"


def render(steps: Sequence[TraceStep], console: Console, *, title: str) -> None:
    """Print a journey for a person: one row per step, repeated attempts folded into one."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    table = Table(
        title=Text(title),  # never markup: it may name a plugin's table
        title_justify="left",
        title_style="bold",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    table.add_column("tick", justify="right", no_wrap=True)
    table.add_column("call", justify="right", no_wrap=True)
    table.add_column("pass", justify="right", no_wrap=True)
    table.add_column("step", no_wrap=True)
    table.add_column("what happened", min_width=30)
    for run in fold(steps):
        step, last = run[0], run[-1]
        head, details = describe(step)
        style = {"wait": "yellow", "end": "bold"}.get(step.step, "")
        if step.step == "try":
            style = "green" if step.rc == 0 else "yellow" if step.errno == "EAGAIN" else "red"
        if len(run) > 1:
            details += f"  ({len(run)} tries)"
        table.add_row(
            span(step.tick, last.tick),
            span(step.call, last.call),
            "" if step.step == "end" else span(step.pass_, last.pass_),
            Text(head, style=style),
            Text(details),  # what plugin code said, never markup
        )
    console.print(table)
