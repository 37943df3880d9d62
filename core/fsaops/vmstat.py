"""Event counters (``mm/vmstat.c``, ``/proc/vmstat``)."""

from __future__ import annotations

__all__ = ["VmStat"]


class VmStat:
    """The kernel's event counters, as ``/proc/vmstat`` shows them.

    ``pgmigrate_success`` and ``pgmigrate_fail`` are the modern kernel's
    names (2005 had no migration counters): pages moved, and pages that
    failed or were still busy after the last pass.  ``pageout_writepage``
    counts ``writepage`` calls made by ``pageout``, the only writer during
    migration; ``migrate_passes`` counts passes over the page list.
    ``find_lock_page_retry`` and ``swap_fault_retry`` count lookups that
    slept on a page's lock and found, on waking, that it had left the page
    cache or the swap cache (migrated under them), and looked again.
    """

    __slots__ = (
        "find_lock_page_retry",
        "migrate_pageout",
        "migrate_passes",
        "nr_writepage",
        "pageout_writepage",
        "pgalloc",
        "pgfault",
        "pgfree",
        "pgmajfault",
        "pgmigrate_fail",
        "pgmigrate_success",
        "pswpin",
        "pswpout",
        "swap_cache_add",
        "swap_fault_retry",
        "writepage_error",
    )

    def __init__(self) -> None:
        self.find_lock_page_retry = 0
        self.swap_fault_retry = 0
        self.migrate_pageout = 0
        self.migrate_passes = 0
        self.nr_writepage = 0
        self.pageout_writepage = 0
        self.pgalloc = 0
        self.pgfault = 0
        self.pgfree = 0
        self.pgmajfault = 0
        self.pgmigrate_fail = 0
        self.pgmigrate_success = 0
        self.pswpin = 0
        self.pswpout = 0
        self.swap_cache_add = 0
        self.writepage_error = 0

    def as_dict(self) -> dict[str, int]:
        """Every counter by name, sorted."""
        return {name: getattr(self, name) for name in sorted(self.__slots__)}

    def __repr__(self) -> str:
        busy = {k: v for k, v in self.as_dict().items() if v}
        return f"<VmStat {busy}>"
