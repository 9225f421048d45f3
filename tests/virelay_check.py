"""Open an exported project with ViRelAy's own classes and its REST server; print a JSON summary.

Run by ``tests/test_export_virelay.py`` with an interpreter that has ViRelAy (``virelay``
declares Python >= 3.11.13 and pins older numpy/Pillow, so it usually lives in its own
environment: set SPRAY_VIRELAY_PYTHON to its python). Usage: python virelay_check.py PROJECT.yaml
"""

from __future__ import annotations

import json
import sys

from virelay.model import Workspace
from virelay.server import Server


def main(project_path: str) -> None:
    workspace = Workspace()
    workspace.add_project(project_path)
    (name,) = workspace.get_project_names()
    project = workspace.get_project(name)
    report: dict = {"name": name, "methods": project.get_analysis_methods(), "categories": {}}
    for method in project.get_analysis_methods():
        clusterings = project.get_analysis_clustering_names(method)
        embeddings = project.get_analysis_embedding_names(method)
        report["clusterings"], report["embeddings"] = clusterings, embeddings
        for category in project.get_analysis_categories(method):
            for clustering in clusterings:
                for embedding in embeddings:
                    analysis = project.get_analysis(method, category.name, clustering, embedding)
                    entry = report["categories"].setdefault(category.name, {"human": category.human_readable_name})
                    entry[embedding] = list(analysis.embedding.shape)
                    entry["indices"] = [int(i) for i in analysis.attribution_indices]
                    entry["clusters"] = [int(c) for c in analysis.clustering]
                    if analysis.eigenvalues is not None:
                        entry[f"{embedding}_eigenvalues"] = [float(v) for v in analysis.eigenvalues]
    first = min(min(e["indices"]) for e in report["categories"].values())
    sample, attribution = project.get_sample(first), project.get_attribution(first)
    report["sample"] = {"shape": list(sample.data.shape), "labels": [label.name for label in sample.labels]}
    report["attribution"] = {
        "shape": list(attribution.data.shape),
        "labels": [label.name for label in attribution.labels],
        "sum": float(attribution.data.sum()),
    }

    client = Server(workspace).app.test_client()  # the REST API the browser UI calls
    statuses = {}
    for colour_map in Server(workspace).color_maps:
        for superimpose in ("false", "true"):
            response = client.get(
                f"/api/projects/0/attributions/{first}/heatmap?colorMap={colour_map}&superimpose={superimpose}"
            )
            statuses[f"{colour_map}/{superimpose}"] = response.status_code
    category = next(iter(report["categories"]))
    for embedding in report["embeddings"]:
        response = client.get(
            f"/api/projects/0/analyses/{report['methods'][0]}?category={category}"
            f"&clustering={report['clusterings'][0]}&embedding={embedding}"
        )
        statuses[f"analysis/{embedding}"] = response.status_code
    statuses["sample image"] = client.get(f"/api/projects/0/dataset/{first}/image").status_code
    statuses["attributions"] = client.get(f"/api/projects/0/attributions?indices={first}").status_code
    report["http"] = statuses
    workspace.close()
    print(json.dumps(report))


if __name__ == "__main__":
    main(sys.argv[1])
