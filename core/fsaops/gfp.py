"""Allocation flags (``include/linux/gfp.h``, 2.6.15): what a caller lets the allocator do.

Only the flags the model's callers pass are here.  A table's
``releasepage(page, gfp)`` reads them: the migration code asks with
:data:`GFP_KERNEL`, which lets the filesystem block, start I/O and call
back into itself (XFS converts delayed allocations only then); truncation
(``block_invalidatepage``) asks with 0.  The kernel spells the bits
``__GFP_WAIT``, ``__GFP_IO`` and ``__GFP_FS``.
"""

from __future__ import annotations

from typing import Final

__all__ = ["GFP_FS", "GFP_IO", "GFP_KERNEL", "GFP_NOFS", "GFP_NOIO", "GFP_WAIT"]

GFP_WAIT: Final = 0x10
"""``__GFP_WAIT``: the caller can sleep."""

GFP_IO: Final = 0x40
"""``__GFP_IO``: the caller can start physical I/O."""

GFP_FS: Final = 0x80
"""``__GFP_FS``: the caller can call down into a filesystem."""

GFP_NOIO: Final = GFP_WAIT
"""``GFP_NOIO``: sleep, but no I/O and no filesystem."""

GFP_NOFS: Final = GFP_WAIT | GFP_IO
"""``GFP_NOFS``: sleep and I/O, but no filesystem."""

GFP_KERNEL: Final = GFP_WAIT | GFP_IO | GFP_FS
"""``GFP_KERNEL`` (0xd0): what the migration code passes to ``try_to_release_page``."""
