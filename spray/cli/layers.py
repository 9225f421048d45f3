"""``spray layers``: the inner layers of a model that ``--layer`` can read relevance at."""

from __future__ import annotations

import click

from spray.cli.errors import one_line_errors
from spray.cli.options import MODEL_OPTIONS, PIPELINE_OPTIONS, apply, config_from_flags


@click.command()
@apply(MODEL_OPTIONS + PIPELINE_OPTIONS)
@one_line_errors
def layers(config_file, **flags) -> None:
    """List the module paths a model's relevance can be read at (for --layer), with their output shapes.

    The model is built with the same options as `spray run` (factory, weights, input pipeline);
    modules after the logits, modules that run twice and branches held constant (gates) are left out.
    """
    config = config_from_flags(config_file, **flags)
    from spray.lrp import explainable_layers
    from workflows.relevance_task import cached_model, cached_source

    model = cached_model(config.model_spec(cached_source(config.data).class_order))
    size = model.preprocessing.input_size
    if size is None:
        raise click.UsageError("the input pipeline does not fix the input size; pass --input-size N")
    for path, shape in explainable_layers(model.module, (model.preprocessing.n_channels, size, size)):
        click.echo(f"{path:<40} {' x '.join(map(str, shape))}")
