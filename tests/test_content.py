"""The content generator: every page's bytes are distinct, repeatable and say whose they are."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from fsaops.content import PERIOD, STAMP, Contents


def test_a_page_is_repeatable_and_depends_on_seed_owner_index_and_generation() -> None:
    contents = Contents(1, 4096)
    base = contents.page(3, 7, 0)
    assert len(base) == 4096
    assert base == Contents(1, 4096).page(3, 7, 0)
    others = [
        Contents(2, 4096).page(3, 7, 0),
        contents.page(4, 7, 0),
        contents.page(3, 8, 0),
        contents.page(3, 7, 1),
    ]
    for other in others:
        assert other != base
        assert other[STAMP.size :] != base[STAMP.size :], "only the stamp would differ"


def test_a_copy_shifted_by_a_block_is_not_the_page() -> None:
    page = Contents(5, 4096).page(1, 2)
    shifted = page[: STAMP.size] + page[STAMP.size + 1024 :] + page[STAMP.size : STAMP.size + 1024]
    assert shifted != page


def test_the_stamp_says_whose_data_a_page_holds() -> None:
    contents = Contents(9, 4096)
    stamp = contents.identify(contents.page(12, 345, 6))
    assert stamp is not None
    assert (stamp.this_seed, stamp.owner, stamp.index, stamp.gen) == (True, 12, 345, 6)
    foreign = contents.identify(Contents(10, 4096).page(12, 345, 6))
    assert foreign is not None and not foreign.this_seed
    assert contents.identify(bytes(4096)) is None
    assert contents.identify(b"short") is None


def test_bulk_pages_are_the_single_pages_in_order() -> None:
    contents = Contents(3, 1024)
    assert contents.pages(2, 5, 3) == b"".join(contents.page(2, i) for i in (5, 6, 7))
    assert contents.versions(2, [0, 4, 1], first=5) == b"".join(
        contents.page(2, i, gen) for i, gen in ((5, 0), (6, 4), (7, 1))
    )


@settings(max_examples=150, deadline=None)
@given(
    seed=st.integers(0, 3),
    page_size=st.sampled_from([512, 1024, 4096]),
    owner=st.integers(0, 2**32 - 1),
    first=st.one_of(st.integers(0, 3000), st.integers(2**40, 2**40 + 10)),
    gens=st.lists(st.integers(0, 3), max_size=40),
    at=st.integers(0, 9),
)
def test_a_run_is_its_single_pages_in_any_mix_of_generations(
    seed: int, page_size: int, owner: int, first: int, gens: list[int], at: int
) -> None:
    contents = Contents(seed, page_size)
    one_by_one = b"".join(contents.page(owner, first + i, g) for i, g in enumerate(gens))
    assert contents.versions(owner, gens, first) == one_by_one
    buffer = bytearray(b"\xee" * (at + len(one_by_one) + 3))
    assert contents.fill(memoryview(buffer), owner, first, gens, at=at) == len(one_by_one)
    assert buffer[at : at + len(one_by_one)] == one_by_one
    assert buffer[:at] == b"\xee" * at and buffer[at + len(one_by_one) :] == b"\xee" * 3


def test_a_run_longer_than_the_stream_wraps_around_it() -> None:
    contents = Contents(1, 4096)
    count = 3 * PERIOD // 4096
    run = contents.versions(5, [0] * count, 7)
    assert run == b"".join(contents.page(5, 7 + i) for i in range(count))


def test_every_block_of_a_file_differs_from_every_other_and_from_other_generations() -> None:
    # A file's bodies are consecutive windows of one stream: a block written at
    # another offset, of another page or of another generation, must not
    # compare equal to the block that belongs there (blocks, stamps aside).
    contents = Contents(2, 4096)
    block = 1024
    seen: dict[bytes, tuple[int, int, int]] = {}
    for gen in (0, 1, 2):
        data = contents.versions(9, [gen] * 64, 0)
        for off in range(0, len(data), block):
            piece = bytes(data[off + STAMP.size : off + block])
            assert piece not in seen, (gen, off, seen.get(piece))
            seen[piece] = (gen, off // 4096, off % 4096)
    assert len(seen) == 3 * 64 * 4
