"""A small builder of test machines for the core's own tests."""

from __future__ import annotations

from typing import Any

import attrs

from fsaops.debug import MigrationSnapshot, check_kernel
from fsaops.fs import Inode, SuperBlock, generic_file_write
from fsaops.kernel import Kernel
from fsaops.lists import PageList, list_add, list_add_tail
from fsaops.lru import isolate_lru_page
from fsaops.migrate import MigrateStats, migrate_pages
from fsaops.page import Page
from fsaops.plugins import Registry
from fsaops.rmap import Mm, Vma
from fsaops.writeback import filemap_write_and_wait


class Recorder:
    """A logger that keeps every event (the engine's tracepoint stream)."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def debug(self, event: str, **kw: Any) -> None:
        self.events.append({"event": event, **kw})

    def paths(self, pfn: int) -> list[tuple[int, str, int]]:
        """(pass, path, rc) of every attempt on ``pfn``."""
        return [(e["pass_"], e["path"], e["rc"]) for e in self.events if e["pfn"] == pfn]


def content(tag: int, index: int, size: int) -> bytes:
    """Recognisable bytes for page ``index`` of file ``tag``."""
    seed = f"<{tag}:{index}>".encode()
    return (seed * (size // len(seed) + 1))[:size]


@attrs.define
class Outcome:
    """What one ``migrate_pages`` call did."""

    rc: int
    from_: PageList
    to: PageList
    moved: PageList
    failed: PageList
    stats: MigrateStats
    problems: list[str]


class World:
    """A kernel with plugins loaded, and helpers to populate and migrate it."""

    def __init__(
        self,
        registry: Registry,
        *,
        nodes: int = 2,
        node_pages: int = 256,
        swap_slots: int = 64,
        **kernel_args: Any,
    ) -> None:
        self.recorder = Recorder()
        self.kernel = Kernel(
            nodes=nodes,
            node_pages=node_pages,
            registry=registry,
            log=self.recorder,
            **kernel_args,
        )
        if swap_slots:
            self.kernel.swapon(swap_slots)
        self._tag = 0

    def mount(self, fs: str, mode: str | None = None, block_size: int | None = None) -> SuperBlock:
        return self.kernel.mount(fs, mode, block_size=block_size)

    def file(self, sb: SuperBlock, npages: int, *, clean: bool = False) -> Inode:
        """A file of ``npages`` pages of recognisable content, in the page cache."""
        self._tag += 1
        inode = sb.new_inode()
        ps = self.kernel.page_size
        data = b"".join(content(self._tag, i, ps) for i in range(npages))
        generic_file_write(inode, 0, data)
        if clean:
            filemap_write_and_wait(inode.i_mapping)
            self.kernel.run_until_idle()
        return inode

    def anon(self, npages: int, *, locked: bool = False) -> tuple[Mm, Vma]:
        """A process with ``npages`` of anonymous memory, all touched."""
        mm = self.kernel.new_mm()
        vma = mm.mmap_anon(npages, locked=locked)
        ps = self.kernel.page_size
        self._tag += 1
        for i in range(npages):
            mm.write((vma.vm_start + i) * ps, content(self._tag, i, ps))
        return mm, vma

    def isolate(self, pages: list[Page]) -> PageList:
        """Take ``pages`` off the LRU onto a new ``from`` list."""
        from_ = PageList("from")
        for page in pages:
            assert isolate_lru_page(page) == 1, f"could not isolate {page!r}"
            list_add_tail(page, from_)
        return from_

    def new_pages(self, count: int, nid: int = 1) -> PageList:
        """A ``to`` list of ``count`` fresh pages on node ``nid``."""
        to = PageList("to")
        for _ in range(count):
            page = self.kernel.nodes[nid].alloc_page()
            assert page is not None
            list_add(page, to)
        return to

    def migrate(self, pages: list[Page], *, to_count: int | None = None, nid: int = 1) -> Outcome:
        """Isolate ``pages`` and run ``migrate_pages`` on them, checking the outcome."""
        from_ = self.isolate(pages)
        to = self.new_pages(len(pages) if to_count is None else to_count, nid)
        moved, failed = PageList("moved"), PageList("failed")
        snap = MigrationSnapshot(from_, to)
        stats = MigrateStats()
        rc = migrate_pages(from_, to, moved, failed, stats=stats)
        problems = snap.check(from_, moved, failed, to)
        problems += check_kernel(self.kernel, isolated=[from_, to, moved, failed], quiet=False)
        return Outcome(rc, from_, to, moved, failed, stats, problems)
