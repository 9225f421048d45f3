"""``spray analyze``: the spectral analysis of stored relevance maps (no LRP, no report)."""

from __future__ import annotations

import click

from spray.cli.errors import one_line_errors
from spray.cli.options import ANALYSIS_OPTIONS, CLASS_OPTION, STORE_OPTIONS, VARIANT_OPTION, apply, config_from_flags
from spray.errors import SprayError


@click.command()
@CLASS_OPTION
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False),
    default=None,
    help="TOML file with any of these options (flags given here override it).",
)
@apply([*STORE_OPTIONS, VARIANT_OPTION, *ANALYSIS_OPTIONS])
@click.option("--force", is_flag=True, default=None, help="Redo an analysis the store already has.")
@click.option(
    "--layer",
    default=None,
    metavar="MODULE.PATH",
    help="Analyse the maps computed with this --layer (their channel vectors).",
)
@one_line_errors
def analyze(config_file, classes, variant, layer, **flags) -> None:
    """Cluster the stored maps of a class: kNN graph, L_sym spectrum, eigengap, clusters, embeddings.

    Reads the maps `spray compute` stored, and stores the result next to them, keyed by every
    parameter and the maps analysed (an existing identical analysis is reused). Classes are
    looked up by name in the store; 'all' analyses every stored class.
    """
    config = config_from_flags(config_file, classes=classes, **flags)
    if not config.classes:
        raise click.UsageError("name the class to analyse with --class NAME (or --class all)")
    from relevance_store import open_store
    from workflows.analyze import analyze_group

    store = open_store(config.store, "r")  # an analysis to write reopens its class writable
    if config.classes == ("all",):
        groups = [
            store.class_group(key)
            for key in store.class_keys()
            if variant is None or key.maps_id.startswith(variant) or key.model_id.startswith(variant)
        ]
    else:
        groups = [store.find_class(name, variant, layer=layer) for name in config.classes]
    if layer is not None:
        groups = [g for g in groups if g.provenance.get("config", {}).get("layer") == layer]
        if not groups:
            raise SprayError(
                f"the store holds no maps computed with --layer {layer} for these classes; compute them "
                f"with `spray run --layer {layer}` (or `spray compute --layer {layer}`)"
            )
    for group in groups:
        analysis = analyze_group(group, config)
        eigenvalues = ", ".join(f"{v:.3g}" for v in analysis.result.arrays["eigenvalues"][:5])
        state = "reused" if analysis.reused else "stored"
        click.echo(
            f"{group.key.class_name}: {analysis.result.attrs['n_clusters']} cluster(s); "
            f"smallest eigenvalues {eigenvalues}; analysis {analysis.result.params_hash} {state}"
        )
