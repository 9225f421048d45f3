"""Run configuration: defaults < TOML file < flags, one settings object per stage, and one rule
for every value whether it comes from a flag or a TOML key."""

from __future__ import annotations

import pytest

from workflows.config import ConfigError, RunConfig, resolve_config
from workflows.settings import COMPOSITES, AnalysisSettings, ComputeSettings


def test_defaults_have_the_thesis_values():
    config = RunConfig()
    assert config.analysis.grid == 20  # L2100
    assert config.analysis.k is None  # max(2, ceil(ln n)), L2100
    assert config.compute.composite == "thesis"  # L2106
    assert config.compute.selection == "true"  # every sample of the class, L2100
    assert config.data == "demo" and config.store == "spray-store.zarr"


def test_flags_override_file_and_file_overrides_defaults(tmp_path):
    path = tmp_path / "spray.toml"
    path.write_text(
        'grid = 10\nseed = 4\nembeddings = "tsne"\nn-clusters = 3\ncomposite = "epsilon"\n'
        'device = "cpu"\n[preprocessing]\npreset = "native"\nchannels = "grey"\n'
    )
    config = resolve_config(path, seed=7, grid=None, batch_size=8, input_size=28)
    assert config.analysis.grid == 10 and config.analysis.n_clusters == 3  # from the file ('-' for '_')
    assert config.analysis.seed == 7  # the flag wins
    assert config.analysis.embeddings == ("tsne",)
    assert (config.compute.composite, config.compute.device, config.compute.batch_size) == ("epsilon", "cpu", 8)
    assert config.preprocessing == {"preset": "native", "channels": "grey", "input_size": 28}
    assert 10 in config.compute.grids  # the analysis grid is always stored


def test_a_preset_flag_and_a_preset_string_in_toml_mean_the_same(tmp_path):
    path = tmp_path / "spray.toml"
    path.write_text('preprocessing = "torchvision"\n')
    assert resolve_config(path).preprocessing == resolve_config(preprocessing="torchvision").preprocessing


def test_unknown_key_names_the_key_and_file(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("gird = 10\n")
    with pytest.raises(ConfigError, match=r"unknown key 'gird' in config file .*bad.toml"):
        resolve_config(path)
    path.write_text("[preprocessing]\nsize = 3\n")
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['size'\] in preprocessing"):
        resolve_config(path)


def test_invalid_toml_and_missing_file_are_clear_errors(tmp_path):
    broken = tmp_path / "broken.toml"
    broken.write_text("grid = = 3\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        resolve_config(broken)
    with pytest.raises(ConfigError, match="does not exist"):
        resolve_config(tmp_path / "missing.toml")


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('force = "false"', r"force \(--force\) = 'false' is not true or false"),
        ("grid = 0", r"grid \(--grid\) = 0 is out of range"),
        ('grid = "10"', r"grid \(--grid\) = '10' is not an integer"),
        ("k = 2.5", r"k \(--k\) = 2.5 is not an integer"),
        ("workers = 0", r"workers \(--workers\) = 0 is out of range"),
        ('composite = "lrp0"', r"composite \(--composite\) = 'lrp0' is not one of"),
        ('device = "tpu"', r"device \(--device\) = 'tpu' is not one of"),
        ('normalize = "max"', r"normalize \(--normalize\) = 'max' is not one of"),
        ('embeddings = ["tsne", "pca"]', r"embeddings \(--embeddings\) = 'pca' is not one of"),
        ("seed = -1", r"seed \(--seed\) = -1 is out of range"),
        ("full_maps = 1", r"full_maps \(--full-maps\) = 1 is not true or false"),
        ('classes = ["a\\nb"]', r"class \(--class\) = 'a\\nb' holds the control character '\\n'"),
    ],
)
def test_every_toml_value_is_checked_before_any_work(tmp_path, line, message):
    path = tmp_path / "spray.toml"
    path.write_text(line + "\n")
    with pytest.raises(ConfigError, match=message):
        resolve_config(path)


def test_the_same_rule_holds_for_flags():
    with pytest.raises(ConfigError, match=r"grid \(--grid\) = 0 is out of range"):
        resolve_config(grid=0)
    with pytest.raises(ConfigError, match="is not one of"):
        RunConfig(compute=ComputeSettings(selection="all"))


def test_duplicate_classes_are_dropped_keeping_the_order():
    assert resolve_config(classes=("horse", "boat", "horse")).classes == ("horse", "boat")


def test_composites_listed_for_the_cli_are_the_engine_s():
    from spray.lrp.composites import NAMED

    assert sorted(COMPOSITES) == sorted(NAMED)


def test_to_dict_holds_every_stage_flat():
    record = RunConfig().to_dict()
    assert {"classes", "preprocessing", "composite", "device", "grids", "grid", "k", "seed"} <= set(record)
    assert AnalysisSettings().grid == record["grid"]
