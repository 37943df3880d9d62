"""The kit's race class searches with or without the explorer's page reduction, as it is told.

``MigratepageRaces.reduce`` is to the kit what ``fsaops explore --reduce``
is to the command: a table that keeps state across pages (a shared bounce
buffer) needs every schedule within the bound, which only the search
without the reduction runs.
"""

from __future__ import annotations

from typing import Any

import pytest

from fsaops.plugins import Registry
from fsaops.testing import races
from fsaops.testing.harness import Subject
from fsaops.testing.races import MigratepageRaces


class _Stop(Exception):
    """Raised by the stand-in explorer once it has seen its arguments."""


@pytest.mark.parametrize("reduce", [True, False])
def test_each_lone_run_is_searched_with_the_class_reduction(
    registry: Registry, monkeypatch: pytest.MonkeyPatch, reduce: bool
) -> None:
    seen: list[dict[str, Any]] = []

    def explore(*args: object, **kwargs: Any) -> object:
        seen.append(kwargs)
        raise _Stop

    monkeypatch.setattr(races, "explore", explore)

    class Races(MigratepageRaces):
        filesystem = "ext2"

    Races.reduce = reduce
    subject = Subject(fstype=registry.filesystems["ext2"], mode="default")
    with pytest.raises(_Stop):
        Races().test_race_no_schedule_with_one_accessor_fails(subject)
    assert seen and seen[0]["reduce"] is reduce
    assert seen[0]["preemptions"] == Races.preemptions


def test_the_default_is_the_command_default() -> None:
    assert MigratepageRaces.reduce is True
