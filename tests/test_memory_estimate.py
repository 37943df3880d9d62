"""The memory a run needs: an upper bound of its peak, and close to it.

``memory_needed`` refuses a run the machine cannot hold; a refusal is
better than the system killing the run, but a run it refuses must not be
one that fits.  The peaks below were measured (the peak resident size of
a whole ``fsaops migrate`` with the check turned off, ``/usr/bin/time
-v``) on scenarios of every shape the estimate has a term for; each
estimate must stay at or above its peak, and the end-to-end scenario's at
no more than 1.5 times it from 300,000 pages on.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

import pytest

from fsaops import bench
from fsaops.config import Config, check_config, checks, effective_config, parse_config
from fsaops.config.checks import memory_needed, memory_problem
from fsaops.errors import ConfigError
from fsaops.memory import MAKE_FRAMES
from fsaops.migrate import MigrateStats
from fsaops.plugins import Registry
from fsaops.proofs import Placed
from fsaops.scenario import Scenario, plan_scenario, run_plan

MiB = 1 << 20


def node_memory(pages: int) -> int:
    """A node with room for ``pages`` pages and a little more, as the bench's scenario has."""
    return min(pages + pages // 8 + 1024, 1_048_576) * 4096


def mount(pages: int, fs: str, mode: str | None, workload: str, *, extra: str = "") -> str:
    """``pages`` pages of ``fs`` in 100 files, nothing else, with ``workload``."""
    plugins = '["ext2", "swap"]' if "swapout" in workload else f'["{fs}"]'
    chosen = f'mode = "{mode}"\n' if mode else ""
    return (
        f"[kernel]\nnodes = 2\nnode_memory = {node_memory(pages)}\n{extra}"
        f"[plugins]\nload = {plugins}\n"
        f'[[mount]]\nfs = "{fs}"\n{chosen}pages = {pages}\nfiles = 100\n'
        "[swap]\nslots = 0\n[processes]\ncount = 0\nanon_pages = 0\n"
        f"[workload]\n{workload}\n"
    )


def on_large_nodes(text: str) -> str:
    """``text`` with nodes of 4 GiB (the most a node holds), whatever its pages."""
    return re.sub(r"node_memory = \d+", 'node_memory = "4GiB"', text, count=1)


def anonymous(pages: int, workload: str) -> str:
    """``pages`` pages of anonymous memory in 4 processes, with a swap slot each."""
    return (
        f"[kernel]\nnodes = 2\nnode_memory = {node_memory(pages)}\n"
        '[plugins]\nload = ["ext2", "swap"]\n'
        '[[mount]]\nfs = "ext2"\nmode = "nobh"\npages = 1\nfiles = 1\n'
        f"[swap]\nslots = {pages}\n[processes]\ncount = 4\nanon_pages = {pages}\n"
        f"[workload]\n{workload}\n"
    )


SHAPES: dict[str, Callable[[int], str]] = {
    "bench": bench.end_to_end_scenario,
    "bench, nodes of 4 GiB": lambda n: on_large_nodes(bench.end_to_end_scenario(n)),
    "ext2 default, 30% dirty": lambda n: mount(n, "ext2", "default", "dirty = 0.3"),
    "ext2 default, all dirty": lambda n: mount(n, "ext2", "default", "dirty = 1.0"),
    "ext2 nobh, all dirty": lambda n: mount(n, "ext2", "nobh", "dirty = 1.0"),
    "ext2 nobh, all under writeback": lambda n: mount(n, "ext2", "nobh", "writeback = 1.0"),
    "ext2 nobh, all swapped out": lambda n: mount(n, "ext2", "nobh", "swapout = 1.0"),
    "ext2 nobh, debug_vm": lambda n: mount(
        n, "ext2", "nobh", "dirty = 0.3", extra="debug_vm = true\n"
    ),
    "ext3 journal, 30% dirty": lambda n: mount(n, "ext3", "journal", "dirty = 0.3"),
    "ext3 journal, all dirty": lambda n: mount(n, "ext3", "journal", "dirty = 1.0"),
    "ext3 ordered, all dirty": lambda n: mount(n, "ext3", "ordered", "dirty = 1.0"),
    "ext3 ordered, all under writeback": lambda n: mount(n, "ext3", "ordered", "writeback = 1.0"),
    "xfs, all dirty": lambda n: mount(n, "xfs", None, "dirty = 1.0"),
    "anonymous memory": lambda n: anonymous(n, "dirty = 0"),
    "anonymous memory, all swapped out": lambda n: anonymous(n, "swapout = 1.0"),
}

#: (shape, pages, measured peak resident size in MiB).
MEASURED = [
    ("bench", 1_000, 46),
    ("bench", 10_000, 117),
    ("bench", 100_000, 715),
    ("bench", 300_000, 2_050),
    ("bench", 1_000_000, 6_702),
    ("bench, nodes of 4 GiB", 100_000, 703),
    ("ext2 default, 30% dirty", 100_000, 838),
    ("ext2 default, all dirty", 100_000, 990),
    ("ext2 default, all dirty", 300_000, 2_850),
    ("ext2 nobh, all dirty", 100_000, 911),
    ("ext2 nobh, all dirty", 300_000, 2_656),
    ("ext2 nobh, all under writeback", 100_000, 1_176),
    ("ext2 nobh, all under writeback", 300_000, 2_939),
    ("ext2 nobh, all swapped out", 100_000, 916),
    ("ext2 nobh, debug_vm", 30_000, 356),
    ("ext3 journal, 30% dirty", 100_000, 822),
    ("ext3 journal, all dirty", 10_000, 174),
    ("ext3 journal, all dirty", 100_000, 1_264),
    ("ext3 journal, all dirty", 300_000, 3_186),
    ("ext3 ordered, all dirty", 100_000, 1_021),
    ("ext3 ordered, all under writeback", 10_000, 184),
    ("ext3 ordered, all under writeback", 100_000, 1_385),
    ("ext3 ordered, all under writeback", 300_000, 3_521),
    ("xfs, all dirty", 100_000, 914),
    ("anonymous memory", 100_000, 902),
    ("anonymous memory, all swapped out", 10_000, 171),
    ("anonymous memory, all swapped out", 100_000, 1_315),
]


def needed(text: str, registry: Registry) -> int:
    config, _ = effective_config(parse_config(text), registry)
    return memory_needed(config, registry)


@pytest.mark.parametrize(("shape", "pages", "peak_mib"), MEASURED)
def test_the_estimate_is_at_or_above_every_measured_peak(
    registry: Registry, shape: str, pages: int, peak_mib: int
) -> None:
    estimate = needed(SHAPES[shape](pages), registry)
    assert estimate >= peak_mib * MiB, f"{shape}, {pages:,} pages: below its peak"
    if shape == "bench" and pages >= 300_000:
        assert estimate <= 1.5 * peak_mib * MiB, f"{pages:,} pages: more than 1.5 times its peak"


def test_a_million_pages_end_to_end_fit_a_machine_of_16_gib(registry: Registry) -> None:
    config, _ = effective_config(parse_config(bench.end_to_end_scenario(1_000_000)), registry)
    check_config(config, registry, "e2e.toml", available=10 << 30)
    assert memory_problem(config, registry, available=16 << 30) is None


def test_debug_vm_counts_the_data_on_both_nodes(registry: Registry) -> None:
    # Under debug_vm no freed frame goes back: both nodes hold every page.
    plain = needed(mount(200_000, "ext2", "nobh", "dirty = 0"), registry)
    debug = needed(mount(200_000, "ext2", "nobh", "dirty = 0", extra="debug_vm = true\n"), registry)
    assert debug - plain >= 200_000 * 4096 - (256 * MiB)


def test_only_the_blocks_a_run_writes_are_counted_on_the_device(registry: Registry) -> None:
    clean = needed(mount(100_000, "ext2", "nobh", "dirty = 0"), registry)
    dirty = needed(mount(100_000, "ext2", "nobh", "dirty = 1.0"), registry)
    assert dirty - clean == 100_000 * 4096, "each dirty page's blocks, once"


def test_the_refusal_prints_every_size_in_one_unit(registry: Registry) -> None:
    config, _ = effective_config(parse_config(bench.end_to_end_scenario(300_000)), registry)
    estimate = memory_needed(config, registry)
    with pytest.raises(ConfigError) as info:
        check_config(config, registry, "e2e.toml", available=1_000_000 * 1024)
    message = str(info.value)
    assert f"the run needs about {-(-estimate // MiB)} MiB of memory" in message
    assert "this machine can give 976 MiB; " in message
    assert "bytes" not in message and "KiB" not in message and "GiB" not in message


def frames_charged(config: Config, registry: Registry, monkeypatch: pytest.MonkeyPatch) -> int:
    """How many frames' objects the estimate of ``config`` counts."""
    with monkeypatch.context() as patch:
        patch.setattr(checks, "FRAME_BYTES", 0)
        without = memory_needed(config, registry)
        patch.setattr(checks, "FRAME_BYTES", 1)
        return memory_needed(config, registry) - without


def test_frames_no_page_reaches_are_not_counted(
    registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A node makes its frames as the allocator reaches them: its size costs nothing more."""
    text = bench.end_to_end_scenario(100_000)
    sized, _ = effective_config(parse_config(text), registry)
    large, _ = effective_config(parse_config(on_large_nodes(text)), registry)
    assert large.node_pages == 1_048_576 > 2 * sized.node_pages
    assert memory_needed(large, registry) == memory_needed(sized, registry)
    charged = frames_charged(large, registry, monkeypatch)
    assert 2 * 100_000 <= charged <= 2 * 100_000 + large.kernel.nodes * MAKE_FRAMES


class _Kept:
    """Keeps the world of a run (a run observer that looks at nothing)."""

    scenario: Scenario | None = None

    def built(self, scenario: Scenario) -> None:
        self.scenario = scenario

    def migrated(
        self, scenario: Scenario, stats: MigrateStats, places: Mapping[int, Placed]
    ) -> None:
        pass


@pytest.mark.parametrize(
    "shape",
    [
        "bench",
        "ext2 nobh, all swapped out",
        "ext2 nobh, debug_vm",
        "ext3 ordered, all under writeback",
        "anonymous memory, all swapped out",
    ],
)
def test_a_run_makes_no_more_frames_than_the_estimate_counts(
    registry: Registry, monkeypatch: pytest.MonkeyPatch, shape: str
) -> None:
    """Built, migrated, read back and proved on nodes of 4 GiB: every frame made was counted."""
    config, _ = effective_config(parse_config(on_large_nodes(SHAPES[shape](3_000))), registry)
    kept = _Kept()
    report = run_plan(plan_scenario(config, registry, "frames.toml"), observers=[kept])
    assert report.status == "ok", report.status
    assert kept.scenario is not None
    made = sum(len(node.frames_made) for node in kept.scenario.kernel.nodes)
    assert 2 * 3_000 <= made <= frames_charged(config, registry, monkeypatch)


def test_many_large_nodes_with_few_pages_fit_a_small_machine(registry: Registry) -> None:
    """64 nodes of 4 GiB holding 1,000 pages: 40 MiB at the peak, not a frame object per frame."""
    text = (
        '[kernel]\nnodes = 64\nnode_memory = "4GiB"\n[plugins]\nload = ["ext2"]\n'
        '[[mount]]\nfs = "ext2"\nmode = "nobh"\npages = 1000\nfiles = 10\n'
        "[workload]\ndirty = 0.3\n"
    )
    config, _ = effective_config(parse_config(text), registry)
    assert config.kernel.nodes * config.node_pages == 64 * 1_048_576
    check_config(config, registry, "many.toml", available=1 << 30)
    assert memory_needed(config, registry) < 256 * MiB
