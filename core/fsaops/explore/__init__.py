"""Systematic concurrency testing of a table's ``migratepage``: ``fsaops explore``."""
