"""A plain-language verdict on one cluster, from the paired contrasts of :mod:`.cluster_statistics`.

A cluster is **confirmed** as a shortcut only when both interventions beat their controls by
a clear margin:

- *remove*: on the cluster's images, inpainting the region lowers the class score, and lowers
  it more than inpainting a random region of the same size;
- *transplant*: on images of other classes, pasting the region raises the class score, and
  raises it more than pasting the same region cut from the class's images outside the cluster.

"Beats its control" means, for the paired difference intervention - control [X]:

- it is real: a 95% bootstrap interval that excludes zero and a Wilcoxon p below :data:`ALPHA`;
- it is large: its mean is at least :data:`MARGIN` standard deviations of the class score over
  the class's images. The padding verdict counts an effect from 0.2 spreads (Cohen's
  "small"); confirming a shortcut asks for Cohen's "medium", 0.5: half the typical difference
  between two images of the class, a change a person sees in the scores;
- it is consistent: its mean is at least :data:`CONSISTENCY` times its own standard deviation
  across images (Cohen's d_z). A shortcut is a rule the model applies to every image that
  carries the artefact, and an artefact sits at the same place with the same look in all of
  them, so the images respond alike. If a share p of the images respond by the same amount
  and the rest not at all, d_z = sqrt(p / (1 - p)) (noise lowers it further): 1 at p = 1/2,
  1.5 at p = 0.69. So the bar asks that clearly more than two in three images respond: a
  cluster that *is* the shortcut. A region that holds the object itself (a cluster of
  centred objects, such as a class's main cluster) can move the mean as much, but only
  through the images whose object happens to lie there, about half of them (measured on the
  demo's main horse cluster: d_z 0.3-1.1 in five runs of 30 images per group, against 2.1-3.5
  for its watermark cluster).

Either test alone makes the verdict *partial*. Pasting into the class's own images outside the
cluster is reported as a finding but does not decide: those images already have the class's
evidence.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from spray.verification.verdict import ALPHA, CONFIRMED, NOT_SUPPORTED, PARTIAL, UNTESTABLE

MARGIN = 0.5
"""Smallest mean paired difference intervention - control, in class-score standard deviations,
that confirms (Cohen's medium standardised effect)."""
CONSISTENCY = 1.5
"""Smallest mean paired difference over its standard deviation across images (d_z) that confirms:
more than two in three images respond (module docstring)."""


@dataclass(frozen=True)
class ClusterVerdict:
    """The conclusion, a headline, the findings, and the outcome of each test (None: not measured)."""

    conclusion: str
    headline: str
    findings: list[str] = field(default_factory=list)
    removal: bool | None = None
    transplant: bool | None = None

    @property
    def confirmed(self) -> bool:
        return self.conclusion == CONFIRMED

    def to_dict(self) -> dict:
        return {
            "conclusion": self.conclusion,
            "confirmed": self.confirmed,
            "headline": self.headline,
            "findings": list(self.findings),
            "removal": self.removal,
            "transplant": self.transplant,
            "margin": MARGIN,
            "consistency": CONSISTENCY,
            "alpha": ALPHA,
        }


def beats_control(row: pd.Series, direction: int) -> bool:
    """Whether the intervention moves the score in ``direction`` (+1 rise, -1 drop) and beats its control
    by the margin (module docstring)."""
    moves = direction * row["intervention_mean"] > 0
    real = (row["ci_low"] > 0 if direction > 0 else row["ci_high"] < 0) and row["p_value"] < ALPHA
    large = direction * row["effect"] >= MARGIN
    consistent = direction * row["consistency"] >= CONSISTENCY
    return bool(moves and real and large and consistent)


def _sentence(row: pd.Series, class_name: str, who: str, action: str, control: str, direction: int) -> str:
    verb = "rises" if row["intervention_mean"] > 0 else "drops"
    verdict = (
        "it beats the control clearly."
        if beats_control(row, direction)
        else f"it does not beat the control clearly (that needs {MARGIN} class-score spreads and d_z {CONSISTENCY})."
    )
    return (
        f"The {class_name} score of {who} {verb} by {row['intervention_mean']:+.2f} on average when {action}, "
        f"against {row['control_mean']:+.2f} for {control}: a difference of {row['difference']:+.2f} (95% CI "
        f"{row['ci_low']:+.2f} to {row['ci_high']:+.2f}, Wilcoxon p = {row['p_value']:.2g}, n = {int(row['n'])}), "
        f"{row['effect']:+.2f} class-score spreads of {row['scale']:.2f}, d_z {row['consistency']:+.2f}, the "
        f"expected way in {row['win_share']:.0%} of the images; {verdict}"
    )


def cluster_verdict(contrasts: pd.DataFrame, class_name: str, cluster: int) -> ClusterVerdict:
    """Read :func:`.cluster_statistics.contrast`'s table as sentences and a conclusion."""
    rows = {row["group"]: row for _, row in contrasts.iterrows()}
    name = f"cluster {cluster} of {class_name}"
    findings, outcome = [], {}
    tests = (
        (
            "members",
            "removal",
            f"the images of cluster {cluster}",
            "the region is removed (inpainted from its surroundings)",
            "a random region of the same size removed the same way",
            -1,
        ),
        (
            "other_classes",
            "transplant",
            "images of other classes",
            "the region of a cluster image is pasted in",
            f"the same region cut from {class_name} images outside the cluster",
            +1,
        ),
        (
            "non_members",
            None,
            f"{class_name} images outside the cluster",
            "the region of a cluster image is pasted in",
            f"the same region cut from other {class_name} images outside the cluster",
            +1,
        ),
    )
    for group, test, who, action, control, direction in tests:
        if group in rows:
            findings.append(_sentence(rows[group], class_name, who, action, control, direction))
            if test:
                outcome[test] = beats_control(rows[group], direction)
        elif test:
            findings.append(f"No {who} could be scored, so the {test} test was not run.")
    removal, transplant = outcome.get("removal"), outcome.get("transplant")
    if removal is None and transplant is None:
        return ClusterVerdict(
            UNTESTABLE, f"The shortcut test of {name} could not be run: no image was scored.", findings
        )
    if removal and transplant:
        headline = (
            f"Confirmed shortcut: the region of {name} drives the {class_name} score. Removing it lowers "
            "the score of the cluster's images and pasting it into images of other classes raises theirs, "
            f"both clearly more than their controls (by at least {MARGIN} class-score spreads, consistently "
            "across images)."
        )
        return ClusterVerdict(CONFIRMED, headline, findings, removal, transplant)
    if removal or transplant:
        works, fails = (
            (
                "removing the region lowers the score of the cluster's images",
                "pasting it into images of other classes does not raise theirs clearly",
            )
            if removal
            else (
                "pasting the region into images of other classes raises their score",
                "removing it from the cluster's images does not lower theirs clearly",
            )
        )
        return ClusterVerdict(
            PARTIAL,
            f"Partly supported: for {name}, {works}, but {fails}; a shortcut is not confirmed.",
            findings,
            removal,
            transplant,
        )
    return ClusterVerdict(
        NOT_SUPPORTED,
        f"Not confirmed: for {name}, neither removing its region nor pasting it into "
        f"other images changes the {class_name} score clearly more than the controls.",
        findings,
        removal,
        transplant,
    )
