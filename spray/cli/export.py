"""``spray export``: the store's analyses in the formats of other tools (ViRelAy)."""

from __future__ import annotations

import click

from spray.cli.errors import one_line_errors
from spray.cli.options import CLASS_OPTION, STORE_OPTIONS, VARIANT_OPTION, apply


@click.group()
def export() -> None:
    """Export stored analyses for other tools; nothing is recomputed."""


@export.command()
@click.argument("out_dir", metavar="DIR")
@apply([CLASS_OPTION, *STORE_OPTIONS, VARIANT_OPTION])
@one_line_errors
def virelay(out_dir: str, classes: tuple[str, ...] | None, store: str | None, variant: str | None) -> None:
    """Write a ViRelAy project of the analysed classes into DIR (needs h5py: pip install 'spray[virelay]').

    DIR gets project.yaml, label-map.json, dataset.h5 (input thumbnails), attribution.h5
    (relevance maps, predictions, labels) and analysis.h5: one category per class with its
    spectral embedding (eigenvectors of L_sym, smallest eigenvalue first), its t-SNE and UMAP
    embeddings and its clusters, each class's latest stored analysis. Open it with
    `virelay DIR/project.yaml`. Without --class every analysed class is exported.
    """
    from workflows.config import RunConfig
    from workflows.export_virelay import export_virelay

    project, categories = export_virelay(store or RunConfig().store, out_dir, classes, variant)
    samples = sum(len(c.sample_ids) for c in categories)
    click.echo(
        f"wrote {project.resolve()} ({len(categories)} class{'es' if len(categories) != 1 else ''}, "
        f"{samples} samples): open it with `virelay {project}`"
    )
