"""Scenario configuration: a TOML file structured into frozen attrs classes.

A scenario file says which machine to build, which plugins to load, which
filesystems to mount with how many pages, how much anonymous memory the
processes hold, what state the pages are in when migration starts, which
faults to inject, and which node to empty into which::

    [kernel]
    nodes = 2
    node_memory = "64MiB"

    [[mount]]
    fs = "ext3"
    mode = "journal"
    files = 8
    pages = 2000
    block_size = 1024

    [workload]
    seed = 42
    dirty = 0.3

Every key is optional (a mount needs only its ``fs``), so an empty file is
a valid scenario: a two-node machine with swap and one process whose
anonymous memory moves from node 0 to node 1.  Each class below documents
its table; each field carries its description in its attrs metadata
(``metadata["doc"]``), which is where the configuration reference comes
from.

Checking happens in two steps.  :func:`parse_config` and
:func:`load_config` check the file on its own: TOML syntax, key names
(an unknown key is an error, so a typo is never ignored), types, ranges,
and rules between keys.  :func:`check_config` then checks it against the
loaded plugins: filesystem names, modes, block sizes, and whether the
pages fit on the source node.  Every problem raises
:class:`~fsaops.errors.ConfigError` with one line naming the file, the key
(``mount[1].mode``) and what was expected.

The package keeps its parts apart:

* ``fsaops.config.schema``: the attrs classes, one per TOML table, and
  the built-in scenario;
* ``fsaops.config.reading``: TOML and cattrs, with every error turned
  into one sentence naming the key;
* ``fsaops.config.checks``: the rules, on the file alone and against
  the plugins and the machine;
* ``fsaops.config.effective``: defaults that follow the plugin selection,
  and the built-in scenario cut to fit it;
* ``fsaops.config.sizes`` and ``fsaops.config.reference``: sizes such
  as ``"64MiB"``, and the key-by-key reference the documentation shows.

Everything a caller needs is re-exported here, and documented as
``fsaops.config.NAME``.
"""

from __future__ import annotations

from fsaops.config.checks import check_config, memory_needed, page_cache_pages
from fsaops.config.effective import LeftOut, effective_config, not_mounted
from fsaops.config.reading import (
    MAX_FILE_BYTES,
    default_config,
    load_config,
    parse_config,
    structure_config,
    unstructure_config,
)
from fsaops.config.reference import ConfigKey, reference
from fsaops.config.schema import (
    BUILTIN_SOURCE,
    DEFAULT_SCENARIO,
    ByteSize,
    Config,
    FaultsConfig,
    KernelConfig,
    MigrateConfig,
    MountConfig,
    PluginsConfig,
    ProcessesConfig,
    SwapConfig,
    WorkloadConfig,
)
from fsaops.config.sizes import format_size, parse_size

__all__ = [
    "BUILTIN_SOURCE",
    "DEFAULT_SCENARIO",
    "MAX_FILE_BYTES",
    "ByteSize",
    "Config",
    "ConfigKey",
    "FaultsConfig",
    "KernelConfig",
    "LeftOut",
    "MigrateConfig",
    "MountConfig",
    "PluginsConfig",
    "ProcessesConfig",
    "SwapConfig",
    "WorkloadConfig",
    "check_config",
    "default_config",
    "effective_config",
    "format_size",
    "load_config",
    "memory_needed",
    "not_mounted",
    "page_cache_pages",
    "parse_config",
    "parse_size",
    "reference",
    "structure_config",
    "unstructure_config",
]
