"""``spray verify``: experiments that test a shortcut SpRAy suggests (thesis §6.3.1)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from spray.cli.errors import one_line_errors
from spray.cli.options import (
    ANALYSIS_OPTIONS,
    COMPUTE_OPTIONS,
    EXECUTION_OPTIONS,
    MODEL_OPTIONS,
    PIPELINE_OPTIONS,
    REPORT_OPTIONS,
    STORE_OPTIONS,
    apply,
    config_from_flags,
)

# The composite of the maps the experiment explains, and where it runs (no sample selection or
# full maps here: every image of the split is scored).
_RUN_OPTIONS = [COMPUTE_OPTIONS[0], *EXECUTION_OPTIONS]


def _option_name(option: Callable[[Any], Any]) -> str:
    """The parameter name of a shared click option (to pick options by name, not position)."""
    return option(lambda: None).__click_params__[-1].name


# The cluster test reads a stored analysis: the options that made its labels pick it (embeddings do not).
_LABELLING_OPTIONS = [option for option in ANALYSIS_OPTIONS if _option_name(option) != "embeddings"]


@click.group()
def verify() -> None:
    """Verification experiments for a suspected shortcut.

    SpRAy suggests a shortcut; these commands test it by changing the input and measuring
    how the model's class score moves.
    """


@verify.command()
@click.option("--class", "class_name", required=True, metavar="NAME", help="Class whose output is scored.")
@apply(MODEL_OPTIONS + PIPELINE_OPTIONS + STORE_OPTIONS + REPORT_OPTIONS + _RUN_OPTIONS)
@click.option(
    "--samples",
    type=click.IntRange(min=1),
    default=None,
    metavar="N",
    help="Use at most N images of the class and N images not of it (seeded subsample). [default: all]",
)
@click.option(
    "--reference-colour",
    default=None,
    metavar="R,G,B",
    help="Fill of the reference-colour strategy. [default: the sky (top rows) of the most typical "
    "landscape image of the class, sampled from an image as the thesis did (L2162); recorded]",
)
@click.option(
    "--mirror-mode",
    type=click.Choice(["reflect", "symmetric"]),
    default="reflect",
    show_default=True,
    help="Mirror without (reflect) or with (symmetric) the border pixel; the thesis does not say [A].",
)
@click.option(
    "--examples",
    "n_examples",
    type=click.IntRange(min=0),
    default=4,
    show_default=True,
    help="Images drawn with a relevance map per strategy (half of the class).",
)
@click.option(
    "--seed",
    type=int,
    default=None,
    help="Seed of the subsample, the noise, the random colours, the examples and the bootstrap. [default: 0]",
)
@one_line_errors
def padding(
    class_name: str, samples: int | None, reference_colour: str | None, mirror_mode: str, n_examples: int, **flags
) -> None:
    """Test the padding hypothesis for a class (thesis §6.3.1, Figs. 6.8-6.11).

    Every image of the split, of the class and not of it, is made square in six ways:
    copy border (the thesis's pipeline and the baseline), mirror, crop the centre square,
    random noise, one random colour, and one reference colour. For each strategy the change
    of the class score against the baseline is reported with mean, std, a 95% bootstrap
    confidence interval and a Wilcoxon test, for landscape and portrait images apart, with
    relevance maps of a few examples and a plain-language verdict. Results are kept in the
    store (a rerun resumes) and drawn on <reports>/class-<name>-padding.html.
    """
    from spray.verification import parse_colour
    from workflows.verify_padding import PaddingSettings, verify_padding

    config = config_from_flags(**flags)
    settings = PaddingSettings(
        class_name=class_name,
        samples=samples,
        mirror_mode=mirror_mode,
        n_examples=n_examples,
        reference_colour=parse_colour(reference_colour) if reference_colour is not None else None,
    )
    results = verify_padding(config, settings)
    click.echo(results.verdict["headline"])
    for sentence in results.verdict["findings"]:
        click.echo(f"  - {sentence}")
    click.echo(f"page: {results.page}")


@verify.command()
@click.option("--class", "class_name", required=True, metavar="NAME", help="Class whose cluster is tested.")
@click.option(
    "--cluster",
    "cluster_id",
    required=True,
    type=int,
    metavar="K",
    help="Cluster id, as on the class page (its stored analysis must exist: run `spray run` first).",
)
@apply(
    MODEL_OPTIONS
    + PIPELINE_OPTIONS
    + STORE_OPTIONS
    + REPORT_OPTIONS
    + [option for option in COMPUTE_OPTIONS if _option_name(option) != "full_maps"]
    + _LABELLING_OPTIONS
)
@click.option(
    "--samples",
    type=click.IntRange(min=1),
    default=None,
    metavar="N",
    help="Use at most N images per target group: the cluster's, other classes', the class's outside the "
    "cluster (seeded subsample). [default: all]",
)
@click.option(
    "--examples",
    "n_examples",
    type=click.IntRange(min=0),
    default=4,
    show_default=True,
    help="Images drawn before and after (half of them the cluster's).",
)
@one_line_errors
def cluster(class_name: str, cluster_id: int, samples: int | None, n_examples: int, **flags) -> None:
    """Test whether a cluster is a shortcut, by intervention (issue 15; cf. thesis L1742-L1753).

    From the cluster's stored relevance maps, the region where it puts positive relevance and the
    main cluster does not is cut out (a mask at the input resolution). Then, on the images as the
    run's pipeline hands them to the model: the region is removed from the cluster's images
    (inpainted from its surroundings) against a random region of the same size, and pasted into
    images of other classes and of the class outside the cluster against the same region cut
    from the class's images outside the cluster. Mean score changes with 95% bootstrap CIs and
    paired Wilcoxon tests give the verdict: confirmed when both beat their controls by at least
    half a standard deviation of the class score, consistently across images (paired d_z of at
    least 1.5). The analysis options (--grid, --n-clusters, --seed, ...) pick the stored analysis whose cluster
    ids you mean; --seed also seeds the subsample, donors, control regions, examples and
    bootstrap. Results are kept in the store (a rerun resumes) and drawn on
    <reports>/class-<name>-cluster-<K>.html.
    """
    from workflows.verify_cluster import ClusterSettings, verify_cluster

    config = config_from_flags(**flags)
    results = verify_cluster(
        config, ClusterSettings(class_name=class_name, cluster=cluster_id, samples=samples, n_examples=n_examples)
    )
    click.echo(results.verdict["headline"])
    for sentence in results.verdict["findings"]:
        click.echo(f"  - {sentence}")
    click.echo(f"page: {results.page}")
