"""``spray verify``: experiments that test a shortcut SpRAy suggests (thesis §6.3.1)."""

from __future__ import annotations

import click

from spray.cli.errors import one_line_errors
from spray.cli.options import (COMPUTE_OPTIONS, EXECUTION_OPTIONS, MODEL_OPTIONS, PIPELINE_OPTIONS, REPORT_OPTIONS,
                               STORE_OPTIONS, apply, config_from_flags)

# The composite of the maps the experiment explains, and where it runs (no sample selection or
# full maps here: every image of the split is scored).
_RUN_OPTIONS = [COMPUTE_OPTIONS[0], *EXECUTION_OPTIONS]


@click.group()
def verify() -> None:
    """Verification experiments for a suspected shortcut.

    SpRAy suggests a shortcut; these commands test it by changing the input and measuring
    how the model's class score moves.
    """


@verify.command()
@click.option("--class", "class_name", required=True, metavar="NAME", help="Class whose output is scored.")
@apply(MODEL_OPTIONS + PIPELINE_OPTIONS + STORE_OPTIONS + REPORT_OPTIONS + _RUN_OPTIONS)
@click.option("--samples", type=click.IntRange(min=1), default=None, metavar="N",
              help="Use at most N images of the class and N images not of it (seeded subsample). [default: all]")
@click.option("--reference-colour", default=None, metavar="R,G,B",
              help="Fill of the reference-colour strategy. [default: the sky (top rows) of the most typical "
                   "landscape image of the class, sampled from an image as the thesis did (L2162); recorded]")
@click.option("--mirror-mode", type=click.Choice(["reflect", "symmetric"]), default="reflect", show_default=True,
              help="Mirror without (reflect) or with (symmetric) the border pixel; the thesis does not say [A].")
@click.option("--examples", "n_examples", type=click.IntRange(min=0), default=4, show_default=True,
              help="Images drawn with a relevance map per strategy (half of the class).")
@click.option("--seed", type=int, default=None,
              help="Seed of the subsample, the noise, the random colours, the examples and the bootstrap. [default: 0]")
@one_line_errors
def padding(class_name: str, samples: int | None, reference_colour: str | None, mirror_mode: str, n_examples: int,
            **flags) -> None:
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
        class_name=class_name, samples=samples, mirror_mode=mirror_mode, n_examples=n_examples,
        reference_colour=parse_colour(reference_colour) if reference_colour is not None else None,
    )
    results = verify_padding(config, settings)
    click.echo(results.verdict["headline"])
    for sentence in results.verdict["findings"]:
        click.echo(f"  - {sentence}")
    click.echo(f"page: {results.page}")
