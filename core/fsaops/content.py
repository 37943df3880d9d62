"""Page contents: distinct, verifiable bytes for every page, derived from the seed.

Every page a world writes holds bytes that say whose they are.  A page of
*owner* (a file, or a process's anonymous memory) at *index*, in generation
*gen* (0 when first written, 1 after a rewrite, ...), is a 28-byte stamp
followed by a window of a long random stream::

    b"fsaops" | version | seed tag | owner | gen | index | stream[p + 28 : p + page_size]

The stream is :data:`PERIOD` bytes (a prime number) long and wraps
around.  Where the window starts, ``p``, is the owner's and the
generation's place in it (mixed from the seed, the owner and the
generation) plus ``index`` pages, so the pages of one owner and
generation are consecutive windows of the stream, their stamps written
over each page's first bytes.  Every byte after a stamp thus depends on
the seed, the owner, the generation and its own offset in the owner's
data: a page holding another page's data, a stale generation, a copy
shifted by a block (or by any number of bytes short of ``PERIOD``),
zeroes or poison never compares equal to what was written.

Because a run of an owner's pages in one generation is one piece of the
stream, it is made in bulk: the piece is copied in once (a few copies
where it wraps around) and the stamps written over it a 4-byte column at
a time (seven strided writes for the whole run), so making a run costs a
handful of operations, not work for each page.  :meth:`Contents.fill`
writes runs straight into a buffer (a device's memory, say), and
:meth:`Contents.pages` and :meth:`Contents.versions` return them as a new
``bytearray``, to be compared with a whole run read back in one comparison.
:meth:`Contents.identify` reads the stamp back to say whose data a wrong
page holds.
"""

from __future__ import annotations

import functools
import hashlib
import struct
from itertools import groupby
from typing import TYPE_CHECKING, Final

import attrs

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["MAGIC", "PERIOD", "STAMP", "Contents", "Stamp"]

MAGIC: Final = b"fsaops"
"""The first bytes of every page a world writes."""

STAMP: Final = struct.Struct("<6sHIIIQ")
"""magic, format version, seed tag, owner, generation, index (28 bytes)."""

PERIOD: Final = 1_048_573
"""The length of the random stream page bodies are windows of (a prime: no page size divides it)."""

_VERSION: Final = 2
_MASK: Final = 0xFFFFFFFF
_MUL_OWNER: Final = 0x9E3779B1
_MUL_GEN: Final = 0xC2B2AE3D
_MUL_MIX: Final = 0x2C1B3C6D


@functools.cache
def _stream(page_size: int) -> bytes:
    """The random stream, with its first ``page_size`` bytes again at the end.

    The same for every seed (a world's seed moves its owners' places in
    it), so it is made once per process and page size.  The repeated
    bytes let any one page's window be a single slice.
    """
    stream = hashlib.shake_128(b"fsaops/contents/stream").digest(PERIOD)
    return stream + stream[:page_size]


@attrs.frozen
class Stamp:
    """What a page's stamp says about whose data it holds.

    Attributes:
        this_seed: the stamp was written by a world of the same seed.
        owner: the owner number (a file or a process's memory).
        index: the page's index in its owner.
        gen: the generation (0 when first written, one more per rewrite).
    """

    this_seed: bool
    owner: int
    index: int
    gen: int


class Contents:
    """The content generator of one world: ``seed`` and ``page_size`` fix every page's bytes.

    Args:
        seed: the world's seed.
        page_size: bytes per page.
    """

    __slots__ = ("_pad", "_tag", "page_size", "seed")

    def __init__(self, seed: int, page_size: int) -> None:
        self.seed = seed
        self.page_size = page_size
        digest = hashlib.blake2b(f"fsaops/{seed}/contents".encode(), digest_size=8).digest()
        self._tag = int.from_bytes(digest[:4], "little")
        self._pad = memoryview(_stream(page_size))

    def __repr__(self) -> str:
        return f"<Contents seed={self.seed} page_size={self.page_size}>"

    def _place(self, owner: int, index: int, gen: int) -> int:
        """Where in the stream page ``index`` of ``owner`` in generation ``gen`` starts."""
        x = (owner * _MUL_OWNER + gen * _MUL_GEN + self._tag) & _MASK
        x ^= x >> 15
        x = (x * _MUL_MIX) & _MASK
        x ^= x >> 12
        return (x + index * self.page_size) % PERIOD

    def page(self, owner: int, index: int, gen: int = 0) -> bytes:
        """The bytes of page ``index`` of ``owner`` in generation ``gen``."""
        p = self._place(owner, index, gen)
        return (
            STAMP.pack(MAGIC, _VERSION, self._tag, owner, gen, index)
            + self._pad[p + STAMP.size : p + self.page_size]
        )

    def fill(
        self,
        dst: bytearray | memoryview,
        owner: int,
        first: int,
        gens: int | Sequence[int] = 0,
        *,
        count: int | None = None,
        at: int = 0,
    ) -> int:
        """Write consecutive pages of ``owner`` from index ``first`` into ``dst`` at byte ``at``.

        ``gens`` is one generation for every page (then ``count`` says how
        many), or each page's own (page ``first + i`` in ``gens[i]``).
        The pages are written side by side, each the bytes :meth:`page`
        returns: the run :meth:`versions` makes, written in place.
        Returns the number of bytes written.

        Raises:
            ValueError: ``dst`` is too short, or ``count`` is missing.
        """
        if isinstance(gens, int):
            if count is None:
                raise ValueError("fill: count is needed with a single generation")
            gens = [gens] * count
        n = len(gens)
        ps = self.page_size
        out = memoryview(dst)
        if out.format != "B" or out.ndim != 1:
            out = out.cast("B")
        if at < 0 or at + n * ps > len(out):
            raise ValueError(f"fill: {n} pages at byte {at} do not fit in {len(out)} bytes")
        self._write(out[at : at + n * ps], owner, gens, first)
        return n * ps

    def pages(self, owner: int, first: int, count: int, gen: int = 0) -> bytearray:
        """``count`` consecutive pages of ``owner`` from index ``first``, in generation ``gen``."""
        return self.versions(owner, [gen] * count, first)

    def versions(self, owner: int, gens: Sequence[int], first: int = 0) -> bytearray:
        """Consecutive pages of ``owner`` from ``first``; page ``first + i`` in ``gens[i]``.

        The same bytes :meth:`fill` writes, made as one new buffer: the
        pieces of the stream joined in one copy, the stamps written over them.
        """
        out = bytearray().join(self._pieces(owner, gens, first))
        self._stamps(memoryview(out), owner, gens, first)
        return out

    def _write(self, out: memoryview, owner: int, gens: Sequence[int], first: int) -> None:
        """Write the pages into ``out`` (as long as they are)."""
        at = 0
        for piece in self._pieces(owner, gens, first):
            out[at : at + len(piece)] = piece
            at += len(piece)
        self._stamps(out, owner, gens, first)

    def _pieces(self, owner: int, gens: Sequence[int], first: int) -> list[memoryview]:
        """The pages' bytes before their stamps: the pieces of the stream they are.

        The pages of a run of one generation are one piece (two or more
        where it wraps around the end of the stream).
        """
        ps = self.page_size
        pad = self._pad
        pieces = []
        # Where each generation's page 0 is in the stream, worked out once a
        # generation: the scenario's mix has a run of one generation every
        # two or three pages.
        start: dict[int, int] = {}
        index = first
        for gen, same in groupby(gens):
            count = len(list(same))
            base = start.get(gen)
            if base is None:
                base = start[gen] = self._place(owner, 0, gen)
            pos = (base + index * ps) % PERIOD
            size = count * ps
            while size > PERIOD - pos:
                pieces.append(pad[pos:PERIOD])
                size -= PERIOD - pos
                pos = 0
            pieces.append(pad[pos : pos + size])
            index += count
        return pieces

    def _stamps(self, out: memoryview, owner: int, gens: Sequence[int], first: int) -> None:
        """Write the stamps of pages ``first`` on, in ``gens``, over their bytes in ``out``.

        A stamp is seven 4-byte words: magic and version (two words), seed
        tag, owner, generation and index (two words).  Each word is written
        to every page of the run in one strided write (page sizes are powers
        of two of at least 512), from a column made in bulk.
        """
        n = len(gens)
        if not n:
            return
        words = self.page_size // 4
        cols = out.cast("I")
        head = STAMP.pack(MAGIC, _VERSION, self._tag, owner, 0, 0)
        for w in range(4):
            cols[w::words] = memoryview(head[4 * w : 4 * w + 4] * n).cast("I")
        cols[4::words] = memoryview(struct.pack(f"<{n}I", *gens)).cast("I")
        index = memoryview(struct.pack(f"<{n}Q", *range(first, first + n))).cast("I")
        cols[5::words] = index[0::2]
        cols[6::words] = index[1::2]

    def identify(self, data: bytes | memoryview) -> Stamp | None:
        """Whose page ``data`` holds, read from its stamp; ``None`` when it has none."""
        if len(data) < STAMP.size:
            return None
        magic, version, tag, owner, gen, index = STAMP.unpack_from(data)
        if magic != MAGIC or version != _VERSION:
            return None
        return Stamp(tag == self._tag, owner, index, gen)
