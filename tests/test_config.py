"""Run configuration: defaults < TOML file < flags, and clear errors for bad files."""

from __future__ import annotations

import pytest

from workflows.config import ConfigError, RunConfig, resolve_config


def test_defaults_have_the_thesis_values():
    config = RunConfig()
    assert config.grid == 20  # L2100
    assert config.k is None  # max(2, ceil(ln n)), L2100
    assert config.data == "demo"
    assert config.store == "spray-store.zarr"


def test_flags_override_file_and_file_overrides_defaults(tmp_path):
    path = tmp_path / "spray.toml"
    path.write_text('grid = 10\nseed = 4\nembeddings = "tsne"\nn-clusters = 3\n')
    config = resolve_config(path, seed=7, grid=None)
    assert config.grid == 10  # from the file
    assert config.seed == 7  # the flag wins
    assert config.n_clusters == 3  # '-' may stand for '_'
    assert config.embeddings == ("tsne",)


def test_unknown_key_names_the_key_and_file(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("gird = 10\n")
    with pytest.raises(ConfigError, match=r"unknown key 'gird' in config file .*bad.toml"):
        resolve_config(path)


def test_invalid_toml_and_missing_file_are_clear_errors(tmp_path):
    broken = tmp_path / "broken.toml"
    broken.write_text("grid = = 3\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        resolve_config(broken)
    with pytest.raises(ConfigError, match="does not exist"):
        resolve_config(tmp_path / "missing.toml")
