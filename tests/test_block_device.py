"""A block device's known contents read and write exactly as written bytes would.

A world puts the data of files it loads on their blocks as *known
contents*: bytes the device makes when they are read, until a write
replaces them.  These tests run the same operations on a device given
known contents and on one given the same bytes by writing them, and
compare every read, and the raw bytes at the end.
"""

from __future__ import annotations

import hashlib
import threading
import time
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from fsaops.errors import KernelBug
from fsaops.fs import BlockDevice, FillKnown

BLOCKS = 64
BS = 512


def _pattern(seed: int, size: int) -> bytes:
    return hashlib.shake_128(f"run {seed}".encode()).digest(size)


def _filler(data: bytes) -> FillKnown:
    def fill(dst: memoryview, offset: int) -> None:
        dst[:] = data[offset : offset + len(dst)]

    return fill


def _read(dev: BlockDevice, block: int, nbytes: int) -> bytes:
    out = bytearray(nbytes)
    dev.read(block, memoryview(out))
    return bytes(out)


_put = st.tuples(st.just("put"), st.integers(0, BLOCKS - 1), st.integers(1, 20), st.integers())
_write = st.tuples(st.just("write"), st.integers(0, BLOCKS - 1), st.integers(1, 5 * BS))
_read_op = st.tuples(st.just("read"), st.integers(0, BLOCKS - 1), st.integers(1, 9 * BS))
_mem = st.tuples(st.just("mem"))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(_put, _write, _read_op, _mem), max_size=30))
# Known contents put again over a block written since the first run was put:
# the first run, whose blocks were all written, was kept and read instead.
@example(ops=[("put", 0, 1, 0), ("write", 0, 1), ("put", 0, 1, 1), ("read", 0, 1)])
@example(ops=[("put", 0, 4, 0), ("write", 1, BS), ("put", 1, 1, 1), ("read", 0, 4 * BS)])
def test_known_contents_read_as_the_same_bytes_written_would(ops: list[tuple[Any, ...]]) -> None:
    known = BlockDevice("known", BLOCKS, BS)
    written = BlockDevice("written", BLOCKS, BS)
    for counter, op in enumerate(ops):
        if op[0] == "put":
            _, block, nblocks, seed = op
            nblocks = min(nblocks, BLOCKS - block)
            data = _pattern(seed, nblocks * BS)
            known.put_known(block, nblocks, _filler(data), tag=seed)
            written.mem[block * BS : (block + nblocks) * BS] = data
        elif op[0] == "write":
            _, block, nbytes = op
            nbytes = min(nbytes, (BLOCKS - block) * BS)
            data = _pattern(-1 - counter, nbytes)
            known.write(block, data)
            written.write(block, data)
        elif op[0] == "read":
            _, block, nbytes = op
            nbytes = min(nbytes, (BLOCKS - block) * BS)
            assert _read(known, block, nbytes) == _read(written, block, nbytes)
        else:
            assert bytes(known.mem) == bytes(written.mem)
    assert bytes(known.mem) == bytes(written.mem)
    assert known.writes == written.writes


def test_a_read_across_two_runs_side_by_side_takes_each_from_its_own() -> None:
    dev = BlockDevice("d", BLOCKS, BS)
    first, second = _pattern(4, 3 * BS), _pattern(5, 2 * BS)
    dev.put_known(4, 3, _filler(first))
    dev.put_known(7, 2, _filler(second))
    assert _read(dev, 5, 5 * BS) == first[BS:] + second + bytes(BS)


def test_known_says_which_blocks_still_hold_a_run() -> None:
    dev = BlockDevice("d", BLOCKS, BS)
    data = _pattern(1, 8 * BS)
    dev.put_known(10, 8, _filler(data), tag="run")
    assert dev.known(10, 8) == ("run", 0, b"\x01" * 8)
    dev.write(12, bytes(BS))
    assert dev.known(11, 4) == ("run", 1, b"\x01\x00\x01\x01")
    assert dev.known(9, 2) is None, "block 9 is not in the run"
    assert dev.known(17, 2) is None, "block 18 is past its end"
    assert dev.writes == 1, "putting known contents is no write"


def test_written_match_compares_only_the_blocks_written_since() -> None:
    dev = BlockDevice("d", BLOCKS, BS)
    data = bytearray(_pattern(2, 4 * BS))
    dev.put_known(0, 4, _filler(bytes(data)))
    dev.write(2, bytes(data[2 * BS : 3 * BS]))
    assert dev.written_match(0, bytes(data))
    data[2 * BS + 7] ^= 1
    assert not dev.written_match(0, bytes(data)), "block 2 was written and differs"
    data[2 * BS + 7] ^= 1
    data[BS] ^= 1
    assert dev.written_match(0, bytes(data)), "block 1 still holds the known bytes: not compared"


def test_reading_the_raw_bytes_writes_known_contents_out_once() -> None:
    dev = BlockDevice("d", BLOCKS, BS)
    data = _pattern(3, 3 * BS)
    calls: list[int] = []

    def fill(dst: memoryview, offset: int) -> None:
        calls.append(offset)
        dst[:] = data[offset : offset + len(dst)]

    dev.put_known(5, 3, fill)
    dev.write(6, bytes(BS))
    assert bytes(dev.mem[5 * BS : 8 * BS]) == data[:BS] + bytes(BS) + data[2 * BS :]
    assert calls == [0, 2 * BS]
    assert dev.known(5, 3) is None, "the run is now written bytes"
    dev.mem[5 * BS] ^= 1
    assert _read(dev, 5, 1) == bytes([data[0] ^ 1])
    assert calls == [0, 2 * BS]


def test_known_contents_must_be_on_the_device() -> None:
    dev = BlockDevice("d", BLOCKS, BS)
    with pytest.raises(ValueError, match="not on the device"):
        dev.put_known(BLOCKS - 2, 3, _filler(bytes(3 * BS)))


def test_a_write_while_known_contents_are_written_out_is_not_lost() -> None:
    """Another thread's write lands after the write-out, never under it."""
    dev = BlockDevice("d", BLOCKS, BS)
    data = _pattern(6, 8 * BS)
    started = threading.Event()

    def slow_fill(dst: memoryview, offset: int) -> None:
        started.set()
        time.sleep(0.05)  # another thread runs here
        dst[:] = data[offset : offset + len(dst)]

    dev.put_known(0, 8, slow_fill)
    new = _pattern(7, BS)

    def writer() -> None:
        started.wait(5)
        dev.write(3, new)

    thread = threading.Thread(target=writer)
    thread.start()
    assert bytes(dev.mem[:BS]) == data[:BS]  # writes the run out
    thread.join(5)
    assert _read(dev, 3, BS) == new
    assert bytes(dev.mem[3 * BS : 4 * BS]) == new


@pytest.mark.parametrize("known", [False, True])
@pytest.mark.parametrize(
    ("block", "nbytes"),
    [(-1, BS), (-4, BS), (BLOCKS, BS), (BLOCKS - 1, 2 * BS), (10**6, BS)],
)
def test_a_request_beyond_the_device_is_refused_and_changes_nothing(
    known: bool, block: int, nbytes: int
) -> None:
    """The kernel's "attempt to access beyond end of device": a negative block is not the end."""
    dev = BlockDevice("dev", BLOCKS, BS)
    if known:
        dev.put_known(0, BLOCKS, _filler(_pattern(1, BLOCKS * BS)))
    else:
        dev.write(0, _pattern(1, BLOCKS * BS))
    writes = dev.writes
    with pytest.raises(KernelBug, match=f"beyond end of device: dev: write of {nbytes} bytes"):
        dev.write(block, b"\xee" * nbytes)
    with pytest.raises(KernelBug, match=f"read of {nbytes} bytes at block {block}"):
        dev.read(block, memoryview(bytearray(nbytes)))
    assert dev.writes == writes
    assert bytes(dev.mem) == _pattern(1, BLOCKS * BS)


def test_the_last_block_is_on_the_device() -> None:
    dev = BlockDevice("dev", BLOCKS, BS)
    dev.write(BLOCKS - 1, b"\x01" * BS)
    assert _read(dev, BLOCKS - 1, BS) == b"\x01" * BS
