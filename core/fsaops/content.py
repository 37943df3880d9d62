"""Page contents: distinct, verifiable bytes for every page, derived from the seed.

Every page a world writes holds bytes that say whose they are.  A page of
*owner* (a file, or a process's anonymous memory) at *index*, in generation
*gen* (0 when first written, 1 after a rewrite, ...), is a 28-byte stamp
followed by a window of a seed's random pad::

    b"fsaops" | version | seed tag | owner | gen | index | pad[r : r + page_size - 28]

The window's start ``r`` is mixed from the stamp, so the bytes after the
stamp differ between pages and between offsets: a page holding another
page's data, a stale generation, a copy shifted by a block, zeroes or
poison never compares equal to what was written.  Making a page costs a
stamp and one slice of the pad, so whole runs of pages are generated in
bulk: :meth:`Contents.fill` writes them straight into a buffer (one
reused run after run, or a device's memory), and :meth:`Contents.pages`
and :meth:`Contents.versions` return them as bytes (stamps and views of
the pad joined in one copy), to be compared with a whole run read back in
one comparison.
:meth:`Contents.identify` reads the stamp back to say whose data a wrong
page holds.
"""

from __future__ import annotations

import hashlib
import struct
from typing import TYPE_CHECKING, Final

import attrs

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["MAGIC", "STAMP", "Contents", "Stamp"]

MAGIC: Final = b"fsaops"
"""The first bytes of every page a world writes."""

STAMP: Final = struct.Struct("<6sHIIIQ")
"""magic, format version, seed tag, owner, generation, index (28 bytes)."""

_VERSION: Final = 1
_MASK: Final = 0xFFFFFFFF
_MUL_OWNER: Final = 0x9E3779B1
_MUL_INDEX: Final = 0x85EBCA77
_MUL_GEN: Final = 0xC2B2AE3D
_MUL_MIX: Final = 0x2C1B3C6D


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

    __slots__ = ("_body", "_pad", "_tag", "page_size", "seed")

    def __init__(self, seed: int, page_size: int) -> None:
        self.seed = seed
        self.page_size = page_size
        digest = hashlib.blake2b(f"fsaops/{seed}/contents".encode(), digest_size=8).digest()
        self._tag = int.from_bytes(digest[:4], "little")
        self._body = page_size - STAMP.size
        self._pad = hashlib.shake_128(f"fsaops/{seed}/pad".encode()).digest(2 * page_size)

    def __repr__(self) -> str:
        return f"<Contents seed={self.seed} page_size={self.page_size}>"

    def _window(self, owner: int, index: int, gen: int) -> int:
        x = (owner * _MUL_OWNER + index * _MUL_INDEX + gen * _MUL_GEN + self._tag) & _MASK
        x ^= x >> 15
        x = (x * _MUL_MIX) & _MASK
        x ^= x >> 12
        return x % self.page_size

    def page(self, owner: int, index: int, gen: int = 0) -> bytes:
        """The bytes of page ``index`` of ``owner`` in generation ``gen``."""
        r = self._window(owner, index, gen)
        return (
            STAMP.pack(MAGIC, _VERSION, self._tag, owner, gen, index)
            + self._pad[r : r + self._body]
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
        returns: the run :meth:`versions` makes, in one copy.
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
        if out.format != "B":
            out = out.cast("B")
        if at < 0 or at + n * ps > len(out):
            raise ValueError(f"fill: {n} pages at byte {at} do not fit in {len(out)} bytes")
        out[at : at + n * ps] = self.versions(owner, gens, first)
        return n * ps

    def pages(self, owner: int, first: int, count: int, gen: int = 0) -> bytes:
        """``count`` consecutive pages of ``owner`` from index ``first``, in generation ``gen``."""
        return self.versions(owner, [gen] * count, first)

    def versions(self, owner: int, gens: Sequence[int], first: int = 0) -> bytes:
        """Consecutive pages of ``owner`` from ``first``; page ``first + i`` in ``gens[i]``.

        The same bytes :meth:`fill` writes, made as one ``bytes`` object: each
        page's stamp and a view of its window of the pad, joined in one
        copy (faster than writing them into a buffer one by one).
        """
        ps = self.page_size
        body = self._body
        pad = memoryview(self._pad)
        tag = self._tag
        pack = STAMP.pack
        mask = _MASK
        mix = _MUL_MIX
        step = _MUL_INDEX
        parts: list[bytes | memoryview] = []
        add = parts.append
        # _window, written out: the owner's and the generation's part is the
        # same for a run of one generation, so it is worked out once.
        last_gen = -1
        base = 0
        index = first
        for gen in gens:
            if gen != last_gen:
                base = (owner * _MUL_OWNER + gen * _MUL_GEN + tag) & mask
                last_gen = gen
            x = (base + index * step) & mask
            x ^= x >> 15
            x = (x * mix) & mask
            x ^= x >> 12
            r = x % ps
            add(pack(MAGIC, _VERSION, tag, owner, gen, index))
            add(pad[r : r + body])
            index += 1
        return b"".join(parts)

    def identify(self, data: bytes | memoryview) -> Stamp | None:
        """Whose page ``data`` holds, read from its stamp; ``None`` when it has none."""
        if len(data) < STAMP.size:
            return None
        magic, version, tag, owner, gen, index = STAMP.unpack_from(data)
        if magic != MAGIC or version != _VERSION:
            return None
        return Stamp(tag == self._tag, owner, index, gen)
