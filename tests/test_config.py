"""The scenario configuration: parsing, defaults, sizes, and every check with its key."""

from __future__ import annotations

import tomllib
from pathlib import Path

import attrs
import pytest

from fsaops.config import (
    BUILTIN_SOURCE,
    DEFAULT_SCENARIO,
    Config,
    FaultsConfig,
    KernelConfig,
    MigrateConfig,
    MountConfig,
    PluginsConfig,
    ProcessesConfig,
    SwapConfig,
    WorkloadConfig,
    check_config,
    default_config,
    effective_config,
    format_size,
    load_config,
    memory_needed,
    page_cache_pages,
    parse_config,
    parse_size,
    reference,
    unstructure_config,
)
from fsaops.errors import ConfigError, PluginSelectionError
from fsaops.plugins import Registry, load_plugins, resolve_selection
from fsaops.scenario import plan_scenario

CONFIGS = Path(__file__).parent / "configs"
CLASSES = (
    Config,
    KernelConfig,
    PluginsConfig,
    MountConfig,
    SwapConfig,
    ProcessesConfig,
    WorkloadConfig,
    FaultsConfig,
    MigrateConfig,
)


def error_of(text: str) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config(text, "scenario.toml")
    message = str(info.value)
    assert message.startswith("scenario.toml: ")
    assert "\n" not in message
    return message


# -- defaults and documentation ------------------------------------------------------


def test_an_empty_file_is_a_valid_scenario_with_the_documented_defaults() -> None:
    config = parse_config("", "empty.toml")
    assert config == Config()
    assert config.kernel.nodes == 2
    assert config.kernel.node_memory == 64 * 1024 * 1024
    assert config.kernel.page_size == 4096
    assert config.kernel.migration is True
    assert config.plugins.load is None
    assert config.mount == ()
    # Left out, swap and anonymous memory follow the plugin selection.
    assert config.swap.slots is None
    assert (config.processes.count, config.processes.anon_pages) == (1, None)
    assert all(config.fraction(state) == 0.0 for state in WorkloadConfig.STATES)
    assert (config.migrate.from_node, config.migrate.to_node) == (0, 1)


def test_swap_and_anonymous_memory_follow_the_selection(registry: Registry) -> None:
    config = parse_config("", "empty.toml")
    with_swap, left = effective_config(config, registry)
    assert (with_swap.swap_slots, with_swap.anon_pages, left) == (4096, 256, ())
    only_ext2 = load_plugins(cli="ext2", env={})
    without, left = effective_config(config, only_ext2)
    assert (without.swap_slots, without.anon_pages, left) == (0, 0, ())
    no_process = parse_config("[processes]\ncount = 0\n")
    assert effective_config(no_process, registry)[0].anon_pages == 0
    explicit = parse_config("[swap]\nslots = 8\n[processes]\nanon_pages = 3\n")
    assert effective_config(explicit, registry)[0].swap_slots == 8
    assert effective_config(explicit, registry)[0].anon_pages == 3


def test_the_empty_file_in_the_test_data_loads() -> None:
    assert load_config(CONFIGS / "empty.toml") == Config()


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_every_config_class_and_key_is_documented(cls: type) -> None:
    assert cls.__doc__ and cls.__doc__.strip()
    for field in attrs.fields(cls):
        doc = field.metadata.get("doc", "")
        assert len(doc) > 10, f"{cls.__name__}.{field.name} has no description"


def test_a_mount_needs_only_its_filesystem() -> None:
    config = parse_config('[[mount]]\nfs = "ext3"\n')
    assert config.mount == (MountConfig(fs="ext3"),)
    assert config.mount[0].mode is None
    assert config.mount[0].block_size is None


def test_the_default_scenario_uses_every_builtin_plugin_and_every_state() -> None:
    config = default_config()
    assert config == parse_config(DEFAULT_SCENARIO, BUILTIN_SOURCE)
    assert set(config.plugins.load or ()) == {"ext2", "ext3", "xfs", "swap", "xfs_buftarg"}
    assert {m.fs for m in config.mount} == {"ext2", "ext3", "xfs", "xfs_buftarg"}
    modes = {(m.fs, m.mode) for m in config.mount}
    assert {("ext3", "journal"), ("ext3", "ordered"), ("ext2", "nobh")} <= modes
    for state in WorkloadConfig.STATES:
        assert config.fraction(state) > 0, state
    assert config.swap_slots > 0
    assert config.anon_pages > 0


def test_the_configuration_unstructures_to_plain_data_and_back() -> None:
    config = default_config()
    data = unstructure_config(config)
    assert data["kernel"]["node_memory"] == config.kernel.node_memory
    assert type(data["kernel"]["node_memory"]) is int
    assert data["mount"][0]["fs"] == config.mount[0].fs
    assert data["plugins"]["load"] == list(config.plugins.load or ())


def test_the_reference_lists_every_key_with_its_documented_default() -> None:
    keys = reference()
    tables = {a.name for a in attrs.fields(Config)}
    assert {k.table for k in keys} == tables
    assert len(keys) == sum(
        len(attrs.fields(type(getattr(Config(), t)))) for t in tables - {"mount"}
    ) + len(attrs.fields(MountConfig))
    mount = '[[mount]]\nfs = "ext2"\n'
    for k in keys:
        assert k.doc and k.type
        if k.default is None:
            continue
        if k.table == "mount":
            assert parse_config(f"{mount}{k.key} = {k.default}\n") == parse_config(mount), k
        else:
            assert parse_config(f"[{k.table}]\n{k.key} = {k.default}\n") == Config(), k
    required = [k.key for k in keys if k.table == "mount" and k.default is None]
    assert "fs" in required


# -- sizes ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("4096", 4096),
        ("64MiB", 64 << 20),
        ("64 MiB", 64 << 20),
        ("64mib", 64 << 20),
        ("64M", 64 << 20),
        ("512KiB", 512 << 10),
        ("1GiB", 1 << 30),
        ("2T", 2 << 40),
        ("100B", 100),
    ],
)
def test_parse_size(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize(
    "text", ["", "MiB", "1.5GiB", "-1MiB", "64XB", "64 MB", "0x10", "\uff12MiB", "\u0663MiB"]
)
def test_parse_size_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="not a size"):
        parse_size(text)


@pytest.mark.parametrize("text", ["\u300064MiB", "64\u00a0MiB", "64MiB\u2003", "\u200964 KiB"])
def test_a_size_is_spaced_with_ascii_spaces_only(text: str) -> None:
    """``\\s`` took every script's spaces: an ideographic space before 64MiB read as 64 MiB."""
    with pytest.raises(ValueError, match="not a size"):
        parse_size(text)
    with pytest.raises(ConfigError, match=r"kernel\.node_memory: expected a size"):
        parse_config(f'[kernel]\nnode_memory = "{text}"\n', "spaced.toml")


@pytest.mark.parametrize("size", [512, 4096, 3 << 20, 64 << 30, 12345])
def test_format_size_reads_back(size: int) -> None:
    number, unit = format_size(size).split()
    factor = {"bytes": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40}[unit]
    assert int(number) * factor == size


def test_sizes_are_accepted_as_strings_or_integers() -> None:
    as_text = parse_config('[kernel]\nnode_memory = "8MiB"\npage_size = "1KiB"\n')
    as_int = parse_config("[kernel]\nnode_memory = 8388608\npage_size = 1024\n")
    assert as_text == as_int
    assert as_text.node_pages == 8192


# -- errors from the file alone -----------------------------------------------------


@pytest.mark.parametrize(
    ("text", "key", "expected"),
    [
        ('[kernel]\nnodes = "2"', "kernel.nodes", "expected an integer, got the string '2'"),
        ("[kernel]\nnodes = 2.0", "kernel.nodes", "expected an integer"),
        ("[kernel]\nnodes = true", "kernel.nodes", "expected an integer, got true"),
        ("[kernel]\nmigration = 1", "kernel.migration", "expected true or false"),
        ('[workload]\ndirty = "a lot"', "workload.dirty", "expected a number"),
        ("[workload]\ndirty = nan", "workload.dirty", "expected a finite number"),
        ("[workload]\ndirty = true", "workload.dirty", "expected a number"),
        ("[[mount]]\nfs = 3", "mount[0].fs", "expected a string"),
        ("[kernel]\nnode_memory = [1]", "kernel.node_memory", "expected a size"),
        ('[plugins]\nload = "ext2"', "plugins.load", "expected an array of strings"),
        ("[plugins]\nload = [1]", "plugins.load[0]", "expected a string"),
        ('[mount]\nfs = "ext2"', "mount", "expected an array of tables, got a table"),
        ("mount = [1]", "mount[0]", "expected a table, got the integer 1"),
        ("kernel = 3", "kernel", "expected a table"),
        ("[[mount]]\npages = 3", "mount[0].fs", "required key missing"),
    ],
)
def test_type_errors_name_the_key_and_what_was_expected(text: str, key: str, expected: str) -> None:
    message = error_of(text)
    assert f"{key}: " in message
    assert expected in message


def test_an_unknown_key_is_an_error_with_a_suggestion() -> None:
    message = error_of("[kernel]\nnodez = 2")
    assert "kernel.nodez: unknown key; did you mean 'nodes'?" in message
    assert "migration, node_memory, nodes, page_size" in message


def test_an_unknown_table_is_an_error() -> None:
    message = error_of('[[mounts]]\nfs = "ext2"')
    assert "mounts: unknown key; did you mean 'mount'?" in message


def test_an_unknown_key_inside_an_array_of_tables_names_its_index() -> None:
    message = error_of('[[mount]]\nfs = "ext2"\n[[mount]]\nfs = "ext3"\nblocksize = 1024')
    assert "mount[1].blocksize: unknown key; did you mean 'block_size'?" in message


def test_several_problems_are_reported_together() -> None:
    message = error_of('[kernel]\nnodes = "x"\npage_size = "y"')
    assert "kernel.nodes:" in message and "kernel.page_size:" in message
    many = error_of("[kernel]\na = 1\nb = 2\nc = 3\nd = 4\ne = 5")
    assert "kernel.c: unknown key" in many
    assert "kernel.d" not in many
    assert many.endswith("; and 2 more problems")


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[kernel]\nnodes = 0", "kernel.nodes"),
        ("[kernel]\nnodes = 65", "kernel.nodes"),
        ("[kernel]\npage_size = 256", "kernel.page_size"),
        ("[kernel]\npage_size = 6144", "kernel.page_size"),
        ("[kernel]\nnode_memory = 0", "kernel.node_memory"),
        ('[kernel]\nnode_memory = "6KiB"', "kernel.node_memory"),
        ('[kernel]\nnode_memory = "8GiB"', "kernel.node_memory"),
        ("[kernel]\nio_latency = 0", "kernel.io_latency"),
        ('[[mount]]\nfs = "ext2"\nfiles = 0', "mount[0].files"),
        ('[[mount]]\nfs = "ext2"\npages = -1', "mount[0].pages"),
        ('[[mount]]\nfs = ""', "mount[0].fs"),
        ('[[mount]]\nfs = "ext2"\nblock_size = 1000', "mount[0].block_size"),
        ('[[mount]]\nfs = "ext2"\nblock_size = "8KiB"', "mount[0].block_size"),
        ("[swap]\nslots = -1", "swap.slots"),
        ("[processes]\ncount = -1", "processes.count"),
        ("[processes]\nanon_pages = -1", "processes.anon_pages"),
        ("[processes]\ncount = 0\nanon_pages = 5", "processes.anon_pages"),
        ("[processes]\ncount = 0\nanon_pages = 0\n[workload]\nmlocked = 0.1", "workload.mlocked"),
        ("[workload]\nseed = -3", "workload.seed"),
        ("[workload]\nswapout = 1.01", "workload.swapout"),
        ("[faults]\nwritepage_error = -0.5", "faults.writepage_error"),
        ("[faults]\nswap_full = 7", "faults.swap_full"),
        ("[migrate]\nfrom_node = 2", "migrate.from_node"),
        ("[migrate]\nto_node = -1", "migrate.to_node"),
        ("[migrate]\nto_node = 0", "migrate.to_node"),
        ("[kernel]\nnodes = 1", "migrate.to_node"),
        ('[plugins]\nload = ["ext2", "ext2"]', "plugins.load[1]"),
    ],
)
def test_values_out_of_range_are_errors_naming_the_key(text: str, key: str) -> None:
    assert f"{key}: " in error_of(text)


def test_fractions_at_the_bounds_are_accepted() -> None:
    config = parse_config("[workload]\ndirty = 0\nmapped = 1\n")
    assert config.workload.dirty == 0.0
    assert config.workload.mapped == 1.0


def test_not_toml_names_the_file_and_the_line() -> None:
    message = error_of("[kernel\nnodes = 2\n")
    assert "not valid TOML" in message
    assert "line 1" in message


def test_load_config_errors(tmp_path: Path) -> None:
    missing = tmp_path / "missing.toml"
    with pytest.raises(ConfigError, match=r"missing\.toml: no such file"):
        load_config(missing)
    with pytest.raises(ConfigError, match="is a directory"):
        load_config(tmp_path)
    binary = tmp_path / "binary.toml"
    binary.write_bytes(bytes(range(256)))
    with pytest.raises(ConfigError, match=r"binary\.toml: not a TOML file"):
        load_config(binary)
    nul = tmp_path / "nul.toml"
    nul.write_bytes(b"[kernel]\x00\n")
    with pytest.raises(ConfigError, match=r"nul\.toml: not a TOML file"):
        load_config(nul)


def load_and_check(path: Path, installed: list[str]) -> None:
    """What ``fsaops config check`` does, with FSAOPS_PLUGINS unset."""
    config = load_config(path)
    load = list(config.plugins.load) if config.plugins.load is not None else None
    resolve_selection(installed, env={}, config=load, config_source=str(path))
    check_config(config, load_plugins(env={}, config=load, config_source=str(path)), str(path))


@pytest.mark.parametrize("path", sorted((CONFIGS / "bad").glob("*.toml")), ids=lambda p: p.stem)
def test_every_bad_config_in_the_test_data_is_rejected(path: Path, registry: Registry) -> None:
    expect = path.read_text().splitlines()[0].removeprefix("# expect: ")
    with pytest.raises(ConfigError) as info:
        load_and_check(path, [p.name for p in registry.plugins])
    assert str(info.value).startswith(f"{path}: ")
    assert expect in str(info.value)


# -- checks against the plugins -------------------------------------------------------


def check(text: str, registry: Registry) -> None:
    """What `fsaops config check` does: defaults from the selection, then the checks, once."""
    plan_scenario(parse_config(text, "s.toml"), registry, "s.toml")


def check_error(text: str, registry: Registry) -> str:
    with pytest.raises(ConfigError) as info:
        check(text, registry)
    return str(info.value)


def test_the_default_scenario_fits_the_builtin_plugins(registry: Registry) -> None:
    config = default_config()
    check_config(config, registry, BUILTIN_SOURCE)
    xip = sum(m.pages for m in config.mount if m.mode == "xip")
    assert page_cache_pages(config, registry) == sum(m.pages for m in config.mount) - xip


def test_the_swap_filesystem_is_not_mounted(registry: Registry) -> None:
    """Its table is the swap cache's: mounted, its writepage writes to swap, not the mount."""
    message = check_error('[[mount]]\nfs = "swap"', registry)
    assert message.startswith("s.toml: mount[0].fs: swap is not a filesystem to mount")
    assert "swap.slots" in message


def test_unknown_filesystem_lists_what_is_loaded(registry: Registry) -> None:
    message = check_error('[[mount]]\nfs = "ext4"', registry)
    assert "mount[0].fs: unknown filesystem 'ext4'; did you mean 'ext" in message
    assert "loaded: ext2, ext3, swap, xfs, xfs_buftarg" in message
    message = check_error('[[mount]]\nfs = "XFS"', registry)
    assert "mount[0].fs: unknown filesystem 'XFS'; did you mean 'xfs'?" in message
    with pytest.raises(ConfigError, match=r"unknown filesystem 'EXT3'; did you mean 'ext3'\?"):
        registry.filesystem("EXT3")


def test_unknown_mode_lists_the_modes(registry: Registry) -> None:
    message = check_error('[[mount]]\nfs = "ext3"\nmode = "journalled"', registry)
    assert "mount[0].mode: filesystem ext3 has no mode 'journalled'" in message
    assert "ordered, writeback, journal" in message


def test_a_page_cache_mode_no_file_can_be_given_data_is_refused(registry: Registry) -> None:
    """An execute-in-place table left with the page cache on: check says so, not the run."""
    from fsaops_ext2 import EXT2, ext2_aops_xip

    xipfs = attrs.evolve(
        EXT2,
        name="xipfs",
        modes={"default": attrs.evolve(ext2_aops_xip, name="xipfs_aops")},
        page_cache={},
    )
    with_xipfs = attrs.evolve(registry, filesystems={**registry.filesystems, "xipfs": xipfs})
    message = check_error('[[mount]]\nfs = "xipfs"', with_xipfs)
    assert "mount[0]: xipfs mode default keeps pages in the page cache" in message
    assert "page_cache = {'default': false}" in message
    # Marked as executing in place, it runs.
    xip = attrs.evolve(xipfs, page_cache={"default": False})
    check(
        '[[mount]]\nfs = "xipfs"',
        attrs.evolve(registry, filesystems={**registry.filesystems, "xipfs": xip}),
    )


def test_a_block_size_the_filesystem_does_not_take(registry: Registry) -> None:
    message = check_error('[[mount]]\nfs = "ext3"\nblock_size = 512', registry)
    assert "mount[0].block_size: filesystem ext3 does not take block size 512" in message


def test_the_default_block_size_must_fit_the_page(registry: Registry) -> None:
    message = check_error('[kernel]\npage_size = 2048\n[[mount]]\nfs = "xfs"', registry)
    assert "mount[0].block_size: xfs's block size 4096 is larger than the page size" in message
    check('[kernel]\npage_size = 2048\n[[mount]]\nfs = "xfs"\nblock_size = 2048', registry)


def test_a_mount_of_an_unselected_plugin_names_the_plugin() -> None:
    only_ext2 = load_plugins(cli="ext2,swap", env={})
    message = check_error('[[mount]]\nfs = "ext2"\n[[mount]]\nfs = "ext3"', only_ext2)
    assert "mount[1].fs: filesystem 'ext3' comes from plugin fsaops[ext3], which is not loaded" in (
        message
    )
    assert "selected plugins: ext2, swap" in message


def test_swap_needs_the_swap_plugin_only_when_asked_for() -> None:
    only_ext2 = load_plugins(cli="ext2", env={})
    check('[[mount]]\nfs = "ext2"', only_ext2)  # no swap, no anonymous memory
    check('[swap]\nslots = 0\n[[mount]]\nfs = "ext2"', only_ext2)
    check('[processes]\ncount = 0\n[[mount]]\nfs = "ext2"', only_ext2)
    message = check_error('[swap]\nslots = 64\n[[mount]]\nfs = "ext2"', only_ext2)
    assert "swap.slots: a swap device (64 slots) needs the 'swap' filesystem" in message
    assert "select the swap plugin or set swap.slots = 0" in message
    message = check_error('[processes]\nanon_pages = 5\n[[mount]]\nfs = "ext2"', only_ext2)
    assert "processes.anon_pages: 5 pages of anonymous memory" in message
    assert "select the swap plugin or set processes.anon_pages = 0" in message


def test_memory_the_machine_cannot_give_is_refused(registry: Registry) -> None:
    config = parse_config('[kernel]\nnode_memory = "64MiB"\n[[mount]]\nfs = "ext2"\npages = 8000\n')
    effective, _ = effective_config(config, registry)
    needed = memory_needed(effective, registry)
    assert needed > 8000 * 4096 * 3, "the data is counted on both nodes and on the device"
    check_config(effective, registry, "s.toml", available=needed)
    with pytest.raises(ConfigError) as info:
        check_config(effective, registry, "s.toml", available=needed - 1)
    message = str(info.value)
    assert message.startswith("s.toml: kernel.node_memory, mount[].pages, processes.anon_pages: ")
    assert "this machine can give" in message


def test_pages_must_fit_on_the_source_node(registry: Registry) -> None:
    base = '[kernel]\nnode_memory = "1MiB"\n[[mount]]\nfs = "ext2"\npages = 200\n'
    check(base + "[processes]\nanon_pages = 56\n", registry)
    message = check_error(base + "[processes]\nanon_pages = 57\n", registry)
    assert "257 pages do not fit on node 0, which holds 256" in message


def test_xip_pages_do_not_count_against_the_node(registry: Registry) -> None:
    check(
        '[kernel]\nnode_memory = "1MiB"\n[[mount]]\nfs = "ext2"\nmode = "xip"\npages = 600\n',
        registry,
    )


def test_a_buffer_cache_mapping_is_one_file(registry: Registry) -> None:
    message = check_error('[[mount]]\nfs = "xfs_buftarg"\nfiles = 2', registry)
    assert "mount[0].files: each mount of xfs_buftarg holds one buffer-cache mapping" in message


def test_plugin_names_must_be_installed() -> None:
    installed = ["ext2", "ext3", "swap"]
    with pytest.raises(ConfigError) as info:
        resolve_selection(installed, config=["ext2", "ext33"], config_source="s.toml")
    assert "s.toml: plugins.load[1]: plugin 'ext33' is not installed; did you mean 'ext3'?" in (
        str(info.value)
    )
    # A name that differs only in case is the one meant, wherever it is given.
    with pytest.raises(ConfigError) as info:
        resolve_selection(installed, config=["EXT3"], config_source="s.toml")
    assert "plugin 'EXT3' is not installed; did you mean 'ext3'?" in str(info.value)
    with pytest.raises(PluginSelectionError) as selection:
        resolve_selection(installed, cli="Ext2")
    assert "--plugins names plugin 'Ext2', which is not installed; did you mean 'ext2'?" in (
        str(selection.value)
    )
    # Checked even when --plugins overrides the file: a typo there is still a typo.
    with pytest.raises(ConfigError, match="ext33"):
        resolve_selection(installed, cli="ext2", config=["ext33"], config_source="s.toml")
    assert resolve_selection([], env={}, config=None) == ((), "installed")


def test_the_test_scenarios_are_valid(registry: Registry) -> None:
    for name in ("small.toml", "ext3_only.toml", "no_migration.toml", "empty.toml"):
        config = load_config(CONFIGS / name)
        check_config(config, registry, name)
        raw = tomllib.loads((CONFIGS / name).read_text())
        assert set(raw) <= {a.name for a in attrs.fields(Config)}
