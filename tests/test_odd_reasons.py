"""A reason for a refusal that plugin code sets, ``current.why``, that is not a ``str``.

The engine measures and escapes a page's reason for the report; an int, a
``bytes`` or an object whose ``repr`` raises made that fsaops's own crash
(``the command failed: TypeError: object of type 'int' has no len()``),
naming no plugin.  The page's reason says what was set instead.
"""

from __future__ import annotations

from errno import EAGAIN, EIO

import attrs
import pytest

from fsaops.config import parse_config
from fsaops.page import Page
from fsaops.plugins import Registry
from fsaops.scenario import plan_scenario, run_plan
from fsaops.writeback import WritebackControl

SCENARIO = (
    '[kernel]\nnode_memory = "4MiB"\nstrict = {strict}\n[[mount]]\nfs = "why"\npages = 12\n'
    "files = 2\n[workload]\nseed = 3\ndirty = 0.5\n"
)


class _Unshowable:
    def __repr__(self) -> str:
        raise RuntimeError("no repr")


def _refusing(registry: Registry, why: object, rc: int) -> Registry:
    ext2 = registry.filesystems["ext2"]

    def migratepage(newpage: Page, page: Page, /) -> int:
        page.node.kernel.current.why = why  # type: ignore[assignment]
        return rc

    table = attrs.evolve(ext2.modes["default"], name="why_aops", migratepage=migratepage)
    fs = attrs.evolve(ext2, name="why", modes={"default": table})
    return attrs.evolve(registry, filesystems={**registry.filesystems, "why": fs})


@pytest.mark.parametrize("strict", ["false", "true"])
@pytest.mark.parametrize(
    ("why", "said"),
    [(12345, "12345"), (b"\x1b[2J", r"b'\x1b[2J'"), (_Unshowable(), "_Unshowable")],
)
@pytest.mark.parametrize("rc", [-EAGAIN, -EIO])
def test_a_reason_that_is_not_a_str_is_the_page_s_reason_not_a_crash(
    registry: Registry, why: object, said: str, rc: int, strict: str
) -> None:
    config = parse_config(SCENARIO.format(strict=strict), "s.toml")
    report = run_plan(plan_scenario(config, _refusing(registry, why, rc), "s.toml"))
    (table,) = [t for t in report.by_aops if t.name == "why_aops"]
    assert table.moved == 0
    reasons = " ".join([*table.reasons, *(p.reason for p in report.pages_failed)])
    assert "current.why was set to " in reasons and said in reasons, reasons
    assert "not a str" in reasons


@pytest.mark.parametrize(
    "why", [12345, b"\x1b[2J", _Unshowable()], ids=["int", "bytes", "unshowable"]
)
def test_a_reason_that_is_not_a_str_set_on_the_generic_path_is_not_a_crash(
    registry: Registry, why: object
) -> None:
    """A table without ``migratepage``: its ``writepage``, which the engine calls, sets it.

    The written page is tried again in the next pass with that reason; the
    engine says what was set, as for a ``migratepage``, and the run is
    ``ok`` (its pinned pages left), not fsaops's own crash blaming the
    swap cache's table.
    """
    ext2 = registry.filesystems["ext2"]
    nobh = ext2.modes["nobh"]
    writepage = nobh.writepage
    assert writepage is not None

    def says_why(page: Page, wbc: WritebackControl, /) -> int:
        rc = writepage(page, wbc)
        page.node.kernel.current.why = why  # type: ignore[assignment]
        return rc

    table = attrs.evolve(nobh, name="why_aops", migratepage=None, writepage=says_why)
    fs = attrs.evolve(ext2, name="why", modes={"default": table})
    odd = attrs.evolve(registry, filesystems={**registry.filesystems, "why": fs})
    scenario = SCENARIO.format(strict="false").replace("dirty = 0.5", "dirty = 1.0\npinned = 0.5")
    report = run_plan(plan_scenario(parse_config(scenario, "s.toml"), odd, "s.toml"))
    assert report.status == "ok"
    (table_stats,) = [t for t in report.by_aops if t.name == "why_aops"]
    assert table_stats.moved + sum(table_stats.reasons.values()) == 12
