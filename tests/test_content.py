"""The content generator: every page's bytes are distinct, repeatable and say whose they are."""

from __future__ import annotations

from fsaops.content import STAMP, Contents


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
