from fsaops.testing import MigratepageConformance


class TestRamfs(MigratepageConformance):
    filesystem = "ramfs"
    capabilities = frozenset()  # no buffer heads, no writeback: memory only
