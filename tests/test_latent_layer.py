"""SpRAy at an inner layer (`--layer`): the relevance at the layer's channels kept per sample from
the same backward pass, its own store key, and the analysis on those channel vectors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from relevance_store import open_store
from spray.cli import cli
from spray.data import open_source
from spray.errors import SprayError
from spray.lrp import attribute_layers
from spray.models import load_model
from workflows.compute import compute_classes
from workflows.config import RunConfig
from workflows.pipeline import run

LAYER = "3"  # the tiny test CNN's second conv (6 channels)


@pytest.fixture
def options(compute_images, tiny_model_spec):
    return {
        "model_spec": {**tiny_model_spec, "classes": ["cat", "dog", "fox"]},
        "source_spec": str(compute_images),
        "workers": 1,
        "progress": False,
        "chunk_size": 5,
    }


def test_the_layer_s_channel_relevance_is_kept_per_sample_as_a_direct_call_gives_it(options, tmp_path):
    (result,) = compute_classes(tmp_path / "s.zarr", "dog", layer=LAYER, **options)
    group = open_store(tmp_path / "s.zarr").class_group(result.key)
    assert group.latent.shape == (12, 6) and np.isfinite(group.latent).all()
    model = load_model(**options["model_spec"])
    source = open_source(options["source_spec"])
    sid = group.sample_ids[4]
    x = torch.from_numpy(model.preprocessing(source.load(sid).image, sid))[None]
    direct = attribute_layers(model.module, x, 1, [LAYER]).layers[LAYER].sum(dim=(2, 3))[0].numpy()
    np.testing.assert_allclose(group.latent[4], direct, rtol=1e-5, atol=1e-6 * np.abs(direct).max())
    (plain,) = compute_classes(tmp_path / "s.zarr", "dog", **options)
    assert plain.key.maps_id != result.key.maps_id  # another store key: both kept
    assert open_store(tmp_path / "s.zarr").class_group(plain.key).latent is None


SOFTMAX_TAIL = """
import torch
from torch import nn

def with_softmax():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
                         nn.Linear(16, 3), nn.Softmax(dim=1))
"""


def test_an_unknown_layer_or_one_after_the_head_is_one_clear_error(options, tmp_path):
    with pytest.raises(SprayError, match=r"layer '33' is not a module of Sequential.*near names: 3"):
        compute_classes(tmp_path / "s.zarr", "dog", layer="33", **options)
    (tmp_path / "tail.py").write_text(SOFTMAX_TAIL)
    tail = {**options, "model_spec": {**options["model_spec"], "model": f"{tmp_path / 'tail.py'}:with_softmax"}}
    with (
        pytest.warns(UserWarning, match="explaining its input logits"),
        pytest.raises(SprayError, match="layer '5' comes after the explained logits"),
    ):
        compute_classes(tmp_path / "t.zarr", "dog", layer="5", **tail)
    assert not open_store(tmp_path / "t.zarr").class_keys()  # refused before any class group was made


def test_the_analysis_clusters_the_channel_vectors_by_cosine(compute_images, tiny_model_spec, tmp_path):
    config = RunConfig().replace(
        model=tiny_model_spec["model"],
        preprocessing=tiny_model_spec["preprocessing"],
        data=str(compute_images),
        store=str(tmp_path / "s.zarr"),
        reports=str(tmp_path / "r"),
        embeddings=("tsne",),
        workers=1,
        layer=LAYER,
    )
    result = run(config.replace(classes=("dog",)), progress=False)
    group = open_store(tmp_path / "s.zarr").find_class("dog")
    analysis = group.read_analysis(result.outcomes[0].analysis_key)
    assert analysis.attrs["resolved"]["n_features"] == 6 and analysis.attrs["resolved"]["normalize"] == "l2"
    assert analysis.arrays["latent_prototypes"].shape == (result.outcomes[0].n_clusters, 6)
    assert analysis.arrays["prototypes"].shape[1:] == (20, 20)  # where in the image, for the page and audits
    assert (tmp_path / "r" / "class-dog.html").is_file()


def test_spray_layers_lists_the_layers_with_their_shapes(tiny_model_spec, compute_images):
    result = CliRunner().invoke(
        cli,
        [
            "layers",
            "--model",
            tiny_model_spec["model"],
            "--data",
            str(compute_images),
            "--resize-to",
            "40",
            "--input-size",
            "32",
        ],
    )
    assert result.exit_code == 0, result.output
    lines = dict(line.split(maxsplit=1) for line in result.output.splitlines())
    assert lines["3"].strip() == "6 x 8 x 8" and lines["0"].strip() == "6 x 32 x 32"


def test_analysing_a_layer_the_store_has_no_maps_of_is_one_clear_line(options, tmp_path):
    compute_classes(tmp_path / "s.zarr", "dog", **options)  # maps without a layer
    result = CliRunner().invoke(cli, ["analyze", "--class", "dog", "--store", str(tmp_path / "s.zarr"), "--layer", "3"])
    assert (
        result.exit_code == 1
        and "has no class 'dog' computed with --layer 3" in result.output
        and "Traceback" not in result.output
    )


def test_the_page_of_a_latent_analysis_shows_each_cluster_s_top_channels(compute_images, tiny_model_spec, tmp_path):
    from workflows.latent_views import MEDOIDS, TOP_CHANNELS, channel_shares

    config = RunConfig().replace(
        model=tiny_model_spec["model"],
        preprocessing=tiny_model_spec["preprocessing"],
        data=str(compute_images),
        store=str(tmp_path / "s.zarr"),
        reports=str(tmp_path / "r"),
        embeddings=("tsne",),
        workers=1,
        layer=LAYER,
        classes=("dog",),
    )
    result = run(config, progress=False)
    group = open_store(tmp_path / "s.zarr").find_class("dog")
    analysis = group.read_analysis(result.outcomes[0].analysis_key)
    views = group.latent_views(analysis.params_hash)
    k = result.outcomes[0].n_clusters
    assert views["channels"].shape == (k, TOP_CHANNELS) and views["maps"].shape[:3] == (k, TOP_CHANNELS, MEDOIDS)
    rows, labels = analysis.arrays["rows"], analysis.arrays["labels"]
    shares = channel_shares(group.latent[rows], labels, list(analysis.tables["clusters"]["cluster"]))
    np.testing.assert_array_equal(views["channels"][:, 0], shares.argmax(axis=1))  # the largest excess share first
    page = (tmp_path / "r" / "class-dog.html").read_text()
    assert page.count("Top channels (concepts)") == k and f"channel {views['channels'][0, 0]} of 3" in page
