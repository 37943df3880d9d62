"""What another task's event raises while a table's ``migratepage`` sleeps is not the table's.

An event (an I/O completing, a plugin's timer, a test's own) runs whenever
the task that was running sleeps.  ``buffer_migrate_page`` sleeps on a
buffer lock another task holds, so what an event raises there passes up
through ext2's ``migratepage``.  Before, the engine took it for the
table's own failure: the page failed with ``-EIO`` ("migratepage raised
..."), the table got a finding, the run went on with the table's call cut
off half way, and the report blamed ext2 for someone else's bug.  The
kernel has no such path: another CPU's oops is not an error return of the
code it interrupted.  What an event raises now goes on up as it is.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import attrs
import pytest

from fsaops.buffer import buffers
from fsaops.errors import KernelBug
from fsaops.page import Page
from fsaops.plugins import Registry
from fsaops.sched import hold
from fsaops.world import World
from guarded import fsaops, install
from test_hostile import HEADER, _table

MigratePage = Callable[[Page, Page], int]

SEMANTICS = ("v4", "2.6.16")


class EventBroke(Exception):
    """What the test's own event raises."""


def _asleep_in_migratepage(registry: Registry, semantics: str) -> tuple[World, Page]:
    """A clean ext2 page (1 KiB blocks) whose third buffer another task holds locked for 50 ticks.

    ``buffer_migrate_page`` sleeps on that lock, in both releases.
    """
    world = World(registry=registry, node_pages=256, swap_slots=64, semantics=semantics)
    inode = world.file(world.mount("ext2", block_size=1024), 1, clean=True)
    (page,) = inode.i_mapping.pages()
    bh = list(buffers(page.private))[2]
    hold(world.kernel.new_task("io"), world.kernel.sched, "buffer_lock", bh, 50)
    return world, page


def _sleeps(world: World) -> list[str]:
    """Fill with the table each event found asleep in ``migratepage`` (``sched.migrating``)."""
    seen: list[str] = []
    sched = world.kernel.sched

    def look() -> None:
        mapping = sched.migrating
        seen.append("" if mapping is None else mapping.a_ops.name)  # type: ignore[attr-defined]

    sched.call_later(10, look)
    return seen


def _event_raises(world: World, exc: BaseException) -> None:
    """An event due at tick 20, while the table sleeps, that raises ``exc``."""

    def event() -> None:
        raise exc

    world.kernel.sched.call_later(20, event)


def _goes_on_up(world: World, page: Page, exc: BaseException) -> None:
    """Migrating ``page`` raises ``exc`` itself, not what the engine or a table made of it."""
    with pytest.raises(type(exc)) as caught:
        world.migrate([page])
    assert caught.value is exc


def _table_becomes(page: Page, made: Callable[[MigratePage], MigratePage]) -> None:
    """The page's table with ``made(its migratepage)`` in place of its ``migratepage``."""
    a_ops = page.mapping.a_ops  # type: ignore[union-attr]
    real = a_ops.migratepage
    assert real is not None
    page.mapping.a_ops = attrs.evolve(a_ops, migratepage=made(real))  # type: ignore[union-attr]


@pytest.mark.parametrize("semantics", SEMANTICS)
def test_the_event_runs_while_ext2_sleeps_in_migratepage(
    registry: Registry, semantics: str
) -> None:
    """The ground the tests below stand on: an event due at tick 20 runs inside the table's call."""
    world, page = _asleep_in_migratepage(registry, semantics)
    seen = _sleeps(world)
    out = world.migrate([page])
    assert out.rc == 0 and out.problems == []
    assert seen == ["ext2_aops"]


@pytest.mark.parametrize("semantics", SEMANTICS)
def test_what_an_event_raises_goes_on_up_and_fails_no_page(
    registry: Registry, semantics: str
) -> None:
    """Before: rc 1, the page failed with EIO and "migratepage raised EventBroke", ext2 blamed."""
    world, page = _asleep_in_migratepage(registry, semantics)
    broke = EventBroke("the test's own event broke")
    _event_raises(world, broke)
    _goes_on_up(world, page, broke)
    assert "migratepage raised" not in world.kernel.current.why


def _raises_its_own(real: MigratePage) -> MigratePage:
    def wraps(newpage: Page, old: Page) -> int:
        try:
            return real(newpage, old)
        except Exception as exc:
            raise ValueError("the table's own words") from exc

    return wraps


def _swallows(real: MigratePage) -> MigratePage:
    def swallows(newpage: Page, old: Page) -> int:
        try:
            return real(newpage, old)
        except Exception:
            return -11  # -EAGAIN

    return swallows


@pytest.mark.parametrize("semantics", SEMANTICS)
def test_a_table_that_catches_it_and_raises_its_own_does_not_take_it_on(
    registry: Registry, semantics: str
) -> None:
    """A ``migratepage`` that turns whatever it meets into an error of its own: the event's
    exception, found in the context of the table's, is what goes on up."""
    world, page = _asleep_in_migratepage(registry, semantics)
    _table_becomes(page, _raises_its_own)
    broke = EventBroke("under the table's")
    _event_raises(world, broke)
    _goes_on_up(world, page, broke)


@pytest.mark.parametrize("semantics", SEMANTICS)
def test_a_table_that_swallows_it_does_not_make_it_vanish(
    registry: Registry, semantics: str
) -> None:
    """``except Exception: return -EAGAIN`` around its sleep: before, the event's failure was
    gone and the page was retried as if nothing had happened.  Now the call ends as it would
    (its pages counted), and what the event raised goes on up, with a note."""
    world, page = _asleep_in_migratepage(registry, semantics)
    _table_becomes(page, _swallows)
    broke = EventBroke("swallowed")
    _event_raises(world, broke)
    _goes_on_up(world, page, broke)
    assert any("caught it and went on" in note for note in broke.__notes__)


@pytest.mark.parametrize("semantics", SEMANTICS)
def test_a_table_that_raises_on_its_own_still_fails_its_page(
    registry: Registry, semantics: str
) -> None:
    """The other side: the table's own exception, with an event that ran fine in its sleep,
    is the table's (EIO, a finding), as before."""
    world, page = _asleep_in_migratepage(registry, semantics)

    def raises_after(real: MigratePage) -> MigratePage:
        def mp(newpage: Page, old: Page) -> int:
            real(newpage, old)
            raise ValueError("the table's own failure")

        return mp

    _table_becomes(page, raises_after)
    seen = _sleeps(world)
    out = world.migrate([page])
    assert seen == ["ext2_aops"], "an event ran in the sleep, and raised nothing"
    assert out.rc == 1
    assert out.where(page) == "failed"
    ((table, why, error, _),) = out.stats.failures.values()
    assert (table, why, error) == (
        "ext2_aops",
        "migratepage raised ValueError: the table's own failure",
        "EIO",
    )


@pytest.mark.parametrize("semantics", SEMANTICS)
def test_a_base_exception_of_an_event_is_not_called_the_table_s(
    registry: Registry, semantics: str
) -> None:
    """``SystemExit`` from the event: before, a PluginFault saying ext2's ``migratepage``
    raised it ("plugin code may not end fsaops"); now it goes on as it is, for the command
    line to name the code that raised it."""
    world, page = _asleep_in_migratepage(registry, semantics)
    ended = SystemExit(3)
    _event_raises(world, ended)
    _goes_on_up(world, page, ended)


@pytest.mark.parametrize("semantics", SEMANTICS)
def test_a_bug_an_event_finds_says_it_ran_in_the_table_s_sleep(
    registry: Registry, semantics: str
) -> None:
    """A ``BUG()`` an event reaches (the model's own check) is still a kernel bug, and says it
    ran in an event while the table slept, not that the table's own code reached it."""
    world, page = _asleep_in_migratepage(registry, semantics)
    _event_raises(world, KernelBug("an I/O completion found a broken buffer"))
    with pytest.raises(KernelBug) as caught:
        world.migrate([page])
    said = str(caught.value)
    assert said.startswith("an I/O completion found a broken buffer (in an event that ran ")
    assert "while ext2_aops's migratepage slept, migrating pfn" in said


TIMER = HEADER + (
    "FIRED = []\n"
    "def boom():\n"
    "    raise RuntimeError('the timer broke')\n"
    "def mp(newpage, page):\n"
    "    if not FIRED:\n"
    "        FIRED.append(1)\n"
    "        page.node.kernel.sched.call_later(3, boom)\n"
    "    return migrate_page(newpage, page)\n"
)
NAPPER = HEADER + (
    "def mp(newpage, page):\n"
    "    page.node.kernel.sched.run_for(5)  # a nap: what falls due meanwhile runs\n"
    "    return migrate_page(newpage, page)\n"
)


def test_the_command_names_the_plugin_whose_event_raised_not_the_table_that_slept(
    tmp_path: Path,
) -> None:
    """Plugin ``timer``'s table schedules an event that raises, three ticks on; plugin
    ``napper``'s ``migratepage`` naps five ticks, and the event runs in its nap (a page of
    ``napper`` is migrated on either side of ``timer``'s).  Before: exit 0, status ok, a page
    of napper's failed with EIO ("migratepage raised RuntimeError: the timer broke") and the
    finding blamed napper: "napper_aops: return on 1 page"; timer was named nowhere."""
    site = tmp_path / "site"
    env = install(site, "timer", TIMER + _table("timer", migratepage="mp"))
    install(site, "napper", NAPPER + _table("napper", migratepage="mp"))
    scenario = tmp_path / "s.toml"
    scenario.write_text(
        '[plugins]\nload = ["timer", "napper", "swap"]\n'
        '[[mount]]\nfs = "napper"\npages = 2\n'
        '[[mount]]\nfs = "timer"\npages = 1\n'
        '[[mount]]\nfs = "napper"\npages = 2\n'
        "[processes]\ncount = 0\nanon_pages = 0\n"
    )
    proc = fsaops("migrate", scenario, "--json", env=env)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    report = json.loads(proc.stdout)
    assert report["status"] == "kernel bug"
    assert report["error"] == (
        "the run failed: plugin timer-dist[timer] raised RuntimeError: the timer broke "
        "in timer.boom"
    )
    assert "napper" not in proc.stderr
