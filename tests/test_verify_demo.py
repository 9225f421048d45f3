"""The thesis's padding findings (§6.3.1, L2158-L2175) on the demo model, which was trained with
edge padding on a world where a minority of the aeroplanes (28 %, world v6) are distant wide
shots against uniform sky: the border shortcut the thesis found in its CaffeNet. Two findings
do not reproduce on this model and are marked as known gaps, with the figures measured."""

from __future__ import annotations

import pytest

from spray.verification.verdict import CONFIRMED
from workflows.config import RunConfig
from workflows.verify_padding import PaddingSettings, verify_padding

pytestmark = pytest.mark.slow  # ~40 s: 240 images x 6 strategies with LRP

SAMPLES = 120  # per group (of 200 aeroplanes and 1200 others in the demo test split)
CHANGED = ["mirror", "crop", "noise", "random_colour", "reference_colour"]


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    folder = tmp_path_factory.mktemp("demo-padding")
    config = RunConfig().replace(store=str(folder / "store.zarr"), reports=str(folder / "reports"), workers=1, seed=0)
    return verify_padding(config, PaddingSettings("aeroplane", samples=SAMPLES, n_examples=2), progress=False)


def means(results, member: bool, orientation: str) -> dict[str, float]:
    rows = results.summary[(results.summary["member"] == member) & (results.summary["orientation"] == orientation)]
    return dict(zip(rows["strategy"], rows["mean"], strict=True))


@pytest.mark.xfail(
    strict=True,
    reason=(
        "known gap of the demo model (world v6): over a sample of all aeroplanes noise padding raises the "
        "score (+1.5 on all 200; the 150 over land gain +2.3) and only the flagged sky-border aeroplanes lose "
        "(-0.94, the lowest of all strategies there: tests/test_demo_shortcuts.py). Strict: passes -> remove the mark."
    ),
)
def test_noise_lowers_the_aeroplane_score_of_aeroplanes_most(results):
    """L2158-L2160: every strategy but copy border lowers f; random noise lowers it most."""
    change = means(results, True, "padded")
    assert change["noise"] < 0
    assert change["noise"] == min(change[s] for s in CHANGED)


@pytest.mark.parametrize("constant", ["reference_colour", "random_colour"])
def test_a_constant_colour_raises_the_aeroplane_score_of_other_landscapes_against_mirror_and_crop(results, constant):
    """L2171: for images not labelled aeroplane, mirror and crop lower "airplaneness" while a
    constant colour raises it comparatively strongly."""
    change = means(results, False, "landscape")
    assert change[constant] > max(change["mirror"], change["crop"])


@pytest.mark.parametrize(
    "constant",
    [
        "reference_colour",
        pytest.param(
            "random_colour",
            marks=pytest.mark.xfail(
                strict=True,
                reason="known gap of the demo model (world v6): random colours raise the aeroplane score of "
                "other portraits more than of other landscapes (+6.2 vs +4.1); the reference colour holds the finding",
            ),
        ),
    ],
)
def test_vertical_padding_has_the_stronger_effect(results, constant):
    """L2175 (Fig. 6.11): constant padding raises the aeroplane score of other images more when
    it pads the vertical axis (landscape) than the horizontal one (portrait)."""
    assert means(results, False, "landscape")[constant] > means(results, False, "portrait")[constant]


@pytest.mark.xfail(
    strict=True,
    reason=(
        "known gap of the demo model (worlds v5 and v6): under noise padding LRP puts positive relevance on the "
        "top noise and negative on the bottom noise, so the positive share of the padded area rises (v5: "
        "0.28 -> 0.57) although the border's net relevance falls (+3.3 -> about -0.5); 13 retrained "
        "worlds found none that keeps the other findings and this one. Strict: passes -> remove the mark."
    ),
)
def test_noise_removes_the_relevance_on_the_border(results):
    """L2160, L2173: under the copied border, positive relevance sits on the padded border more
    than its area; noise padding removes that."""
    rows = results.summary[results.summary["member"] & (results.summary["orientation"] == "padded")].set_index(
        "strategy"
    )
    assert rows.loc["copy_border", "padded_relevance_share"] > rows.loc["copy_border", "padded_fraction"]
    assert rows.loc["noise", "padded_relevance_share"] < rows.loc["copy_border", "padded_relevance_share"]


def test_the_generated_verdict_confirms_the_shortcut(results):
    assert results.verdict["conclusion"] == CONFIRMED, results.verdict
    assert results.page.exists()
