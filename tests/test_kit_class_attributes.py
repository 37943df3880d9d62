"""A suite class's attributes are checked before the suite reads them.

``plugin = ["hider", "ext2"]`` once failed every test of the class with
a raw ``TypeError`` from the plugin loader; now each attribute of the
wrong kind is named once, with what it takes, and no traceback.
"""

from __future__ import annotations

import textwrap
from typing import ClassVar

import pytest

from fsaops.testing import MigratepageConformance
from fsaops.testing.conformance import check_class
from fsaops.testing.harness import SetupError, check_capabilities, resolve_subject

pytest_plugins = ["pytester"]

BAD = textwrap.dedent(
    """
    from fsaops.testing import MigratepageConformance
    from fsaops.testing.races import MigratepageRaces

    class TestList(MigratepageConformance):
        filesystem = "ext2"
        plugin = ["ext2", "ext3"]

    class TestCounts(MigratepageConformance):
        filesystem = "ext2"
        block_size = "1024"
        max_examples = 0
        capabilities = 3

    class TestRaces(MigratepageRaces):
        filesystem = "ext2"
        preemptions = 1.5
    """
)


@pytest.mark.parametrize(
    ("cls", "words"),
    [
        (
            "TestList",
            "TestList: plugin must be the entry-point name of the one plugin that provides "
            "the filesystem, not ['ext2', 'ext3']",
        ),
        (
            "TestCounts",
            "TestCounts: block_size must be a block size in bytes (an int), not '1024'; "
            "capabilities must be a set of capability names",
        ),
        (
            "TestRaces",
            "TestRaces: preemptions must be a number of preemptions, an int of 0 or more, not 1.5",
        ),
    ],
)
def test_an_attribute_of_the_wrong_kind_is_named_with_what_it_takes(
    pytester: pytest.Pytester, cls: str, words: str
) -> None:
    pytester.makepyfile(test_bad=BAD)
    result = pytester.runpytest("-p", "no:cacheprovider", "-p", "no:randomly", "-k", cls)
    outcomes = result.parseoutcomes()
    assert outcomes.get("errors", 0) >= 1, result.stdout.str()
    assert "passed" not in outcomes
    text = result.stdout.str()
    assert words in text
    assert "Traceback" not in text and "TypeError" not in text
    assert "During handling" not in text


def test_every_bad_attribute_is_named_at_once() -> None:
    class TestCounts(MigratepageConformance):
        filesystem = 7  # type: ignore[assignment]
        mode = ("default",)  # type: ignore[assignment]
        settle_ticks = -1
        max_examples = 0

    with pytest.raises(SetupError) as caught:
        check_class(TestCounts)
    assert str(caught.value) == (
        "filesystem must be a filesystem's name or a FileSystemType, not 7; "
        "mode must be the name of one mode, not ('default',); "
        "settle_ticks must be a number of ticks, an int of 0 or more, not -1; "
        "max_examples must be a number of examples, an int of 1 or more, not 0"
    )


def test_the_kit_s_own_defaults_and_a_list_of_capabilities_pass() -> None:
    class TestFine(MigratepageConformance):
        filesystem = "ext2"
        capabilities: ClassVar = ["buffers", "writeback"]  # type: ignore[assignment]
        pages = "not the suite's"  # a name the conformance suite does not read

    check_class(MigratepageConformance)
    check_class(TestFine)


def test_resolve_subject_names_a_plugin_or_capabilities_of_the_wrong_kind() -> None:
    with pytest.raises(SetupError, match=r"plugin must be the entry-point name .* not \['a'\]"):
        resolve_subject("ext2", plugin=["a"])  # type: ignore[arg-type]
    with pytest.raises(SetupError, match="filesystem must be a filesystem's name"):
        resolve_subject(3)  # type: ignore[arg-type]
    with pytest.raises(SetupError, match="capabilities must be a set of names, not 3"):
        check_capabilities(3)  # type: ignore[arg-type]
