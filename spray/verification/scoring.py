"""Score and explain one batch of images under every padding strategy.

For each image and strategy this runs one LRP pass for the class output (which also yields
the class score, the logit; L544) and measures how much of the positive relevance falls in
the padded area: the thesis saw it on the top and bottom borders (L2173, Figs. 6.9-6.10).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from spray.preprocess import Preprocessing
from spray.verification.strategies import orientation


@dataclass(frozen=True)
class StrategyView:
    """One image under one strategy: what the model saw, its padded pixels, score and relevance."""

    pixels: np.ndarray
    """(crop, crop, 3) uint8: the model input before normalisation."""
    pad_mask: np.ndarray
    """(crop, crop) bool: True where the pixel was made by the padding step."""
    score: float
    relevance: np.ndarray
    """(crop, crop) float32: LRP relevance of the class output, summed over colour channels (L938)."""

    @property
    def padded_relevance_share(self) -> float:
        """Positive relevance inside the padded area / all positive relevance (NaN if none)."""
        positive = np.clip(self.relevance, 0, None)
        total = float(positive.sum())
        return float(positive[self.pad_mask].sum()) / total if total > 0 else float("nan")


def explain_strategies(
    module: torch.nn.Module,
    preprocessings: Mapping[str, Preprocessing],
    images: Sequence[tuple[str, np.ndarray]],
    class_index: int,
    batch_size: int = 32,
    composite: str = "thesis",
    device: str = "cpu",
) -> list[dict[str, StrategyView]]:
    """Every (sample id, image) under every strategy: one dict {strategy: view} per image, explained
    with ``composite`` (the run's, so that the maps compare with the stored ones) on ``device``."""
    from spray.lrp import attribute

    jobs = [
        (i, name, prep, key, image) for i, (key, image) in enumerate(images) for name, prep in preprocessings.items()
    ]
    views: list[dict[str, StrategyView]] = [{} for _ in images]
    for start in range(0, len(jobs), batch_size):
        batch = jobs[start : start + batch_size]
        seen = [prep.model_view(image, key) for _, _, prep, key, image in batch]
        inputs = torch.from_numpy(
            np.stack([prep.normalise(pixels) for (_, _, prep, _, _), (pixels, _) in zip(batch, seen, strict=True)])
        )
        relevance, logits = attribute(module, inputs.to(device), int(class_index), composite=composite)
        maps = relevance.detach().sum(dim=1).float().cpu().numpy()
        scores = logits.detach()[:, int(class_index)].float().cpu().numpy()
        for row, ((i, name, _, _, _), (pixels, mask)) in enumerate(zip(batch, seen, strict=True)):
            views[i][name] = StrategyView(
                pixels=np.ascontiguousarray(pixels),
                pad_mask=np.ascontiguousarray(mask),
                score=float(scores[row]),
                relevance=maps[row],
            )
    return views


def strategy_rows(sample_id: str, image: np.ndarray, views: Mapping[str, StrategyView], baseline: str) -> list[dict]:
    """The table rows of one image: one per strategy, with the score change against ``baseline``."""
    height, width = image.shape[:2]
    base_score = views[baseline].score
    return [
        {
            "sample_id": sample_id,
            "orientation": orientation(height, width),
            "height": height,
            "width": width,
            "strategy": name,
            "score": view.score,
            "delta": view.score - base_score,
            "padded_fraction": float(view.pad_mask.mean()),
            "padded_relevance_share": view.padded_relevance_share,
        }
        for name, view in views.items()
    ]
