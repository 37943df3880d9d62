"""The example third-party plugin keeps every promise under every release, not only V4.

Its ``migratepage`` answered ``-EAGAIN`` whatever the helper returned, so
under 2.6.16 and 2.6.17, where ``migrate_page_remove_references`` returns
``-EPERM`` for a page in a ``VM_LOCKED`` area, it retried such a page in
every pass instead of failing it, and six tests of the suite failed, while
the tutorial said ``fsaops.migrate_page`` would do the same.  The example's
own test runs it under V4 (the kit's default); this runs it under the rest.
"""

from __future__ import annotations

from fsaops.semantics import SEMANTICS, V4
from fsaops.testing import MigratepageConformance


class TestExampleRamfsUnderLaterReleases(MigratepageConformance):
    filesystem = "ramfs"
    capabilities = frozenset()
    semantics = tuple(name for name in SEMANTICS if name != V4.name)
