"""A plain-language verdict on the padding hypothesis, generated from the summary statistics.

The hypothesis lives where the thesis looked for it (Fig. 6.11, L2175): in landscape images,
which the pipeline pads above and below; portrait images (padded left and right) are the
comparison. So both questions are judged on landscape images: does a changed border lower the
class score of the class's own images (L2158-L2160), and do uniform borders raise it for
images of other classes (L2171)? The sentences are generic (class and strategies come from the
data). An effect counts only when its 95% confidence interval excludes zero, the Wilcoxon
p-value is below :data:`ALPHA` divided by the number of strategies the question picks its
strongest from (Bonferroni: the largest of five noisy means is "significant" by chance five
times as often), and the mean change is at least :data:`MIN_EFFECT` times the spread of the
class score over the group's images; a significant change below that size is called what it
is ("significant, but below the effect-size threshold") [X].
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from spray.verification.strategies import BASELINE, strategies

ALPHA = 0.05
#: Smallest mean change, in units of the baseline score's standard deviation over the group's
#: images, that counts as an effect: Cohen's "small" standardised effect.
MIN_EFFECT = 0.2
#: Strategies that fill the padded area with one uniform colour (the suspected shortcut, L2171).
CONSTANT_COLOUR_STRATEGIES = ("random_colour", "reference_colour")
#: Images padded above and below, where the border hypothesis is judged (Fig. 6.11, L2175).
JUDGED_ORIENTATION = "landscape"

CONFIRMED = "confirmed"
PARTIAL = "partial"
NOT_SUPPORTED = "not supported"
UNTESTABLE = "untestable"


@dataclass(frozen=True)
class Verdict:
    """The overall conclusion (one of the constants above), one headline and the findings."""

    conclusion: str
    headline: str
    findings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"conclusion": self.conclusion, "headline": self.headline, "findings": list(self.findings)}


def _labels() -> dict[str, str]:
    return {s.name: s.label for s in strategies()}


def _significant(row: pd.Series, tested: int) -> bool:
    """p below ALPHA / ``tested`` (the strategies the row was picked from) and a CI without zero."""
    return bool(row["p_value"] < ALPHA / max(tested, 1) and (row["ci_low"] > 0 or row["ci_high"] < 0))


def _is_effect(row: pd.Series, tested: int) -> bool:
    """Significant and at least MIN_EFFECT score spreads large; a NaN spread is not judged."""
    return _significant(row, tested) and not abs(row["mean"]) < MIN_EFFECT * row["score_std"]


def _evidence(row: pd.Series, tested: int) -> str:
    """The numbers behind a sentence and what they amount to, said plainly."""
    numbers = (
        f"95% CI {row['ci_low']:+.2f} to {row['ci_high']:+.2f}, Wilcoxon p = {row['p_value']:.2g}, n = {int(row['n'])}"
    )
    if tested > 1:
        numbers += f", strongest of {tested} strategies: p judged against {ALPHA:g}/{tested}"
    threshold = MIN_EFFECT * row["score_std"]
    if _is_effect(row, tested):
        return f"{numbers}; at least {MIN_EFFECT:g} x the score spread of {row['score_std']:.2f}"
    if _significant(row, tested):
        return (
            f"{numbers}: significant, but below the effect-size threshold of {MIN_EFFECT:g} x score spread "
            f"= {threshold:.2f}"
        )
    return f"{numbers}: not significant"


def _rows(summary: pd.DataFrame, member: bool, orientation: str) -> pd.DataFrame:
    chosen = summary[(summary["member"] == member) & (summary["orientation"] == orientation)]
    return chosen[chosen["strategy"] != BASELINE]


def padding_verdict(summary: pd.DataFrame, class_name: str) -> Verdict:
    """Read :func:`spray.verification.statistics.summarise`'s table as sentences a person can act on."""
    labels = _labels()
    members, others = _rows(summary, True, JUDGED_ORIENTATION), _rows(summary, False, JUDGED_ORIENTATION)
    findings: list[str] = []
    if members.empty:
        findings.append(
            f"No landscape {class_name} image was sampled, so whether the padded border above and below "
            f"matters for {class_name} images cannot be measured."
        )
    if others.empty:
        findings.append(
            f"No landscape image outside {class_name} was sampled, so whether uniform borders above and "
            f"below make other images look like {class_name} cannot be measured."
        )
    if members.empty and others.empty:
        return Verdict(
            UNTESTABLE,
            "The padding hypothesis cannot be tested: no sampled landscape image is padded above and below.",
            findings,
        )

    depends = False
    if not members.empty:
        drop = members.loc[members["mean"].idxmin()]
        depends = drop["mean"] < 0 and _is_effect(drop, len(members))
        change = (
            f"lowers the {class_name} score of landscape {class_name} images by {-drop['mean']:.2f}"
            if drop["mean"] < 0
            else f"changes the {class_name} score of landscape {class_name} images by {drop['mean']:+.2f}"
        )
        findings.append(
            f"Replacing the copied border with {labels[drop['strategy']]} {change} on average "
            f"({_evidence(drop, len(members))})."
        )
    raises = False
    uniform = others[others["strategy"].isin(CONSTANT_COLOUR_STRATEGIES)]
    if not uniform.empty:
        rise = uniform.loc[uniform["mean"].idxmax()]
        raises = rise["mean"] > 0 and _is_effect(rise, len(uniform))
        verb = "raise" if rise["mean"] > 0 else "change"
        findings.append(
            f"{labels[rise['strategy']].capitalize()} borders above and below {verb} the {class_name} "
            f"score of landscape images that are not {class_name} by {rise['mean']:+.2f} on average "
            f"({_evidence(rise, len(uniform))})."
        )
    findings += _orientation_finding(summary, class_name, labels) + _relevance_finding(summary, class_name)

    if depends and raises:
        return Verdict(
            CONFIRMED,
            f"The border shortcut is confirmed: the {class_name} score depends on the "
            f"padded border, and uniform borders make other images look more like {class_name}.",
            findings,
        )
    if raises:
        return Verdict(
            CONFIRMED,
            f"The border shortcut is confirmed: uniform borders alone make images that are "
            f"not {class_name} look more like {class_name}.",
            findings,
        )
    if depends:
        return Verdict(
            PARTIAL,
            f"The {class_name} score depends on the padded border, but uniform borders do not "
            f"make other images look more like {class_name}: the border matters, a shortcut "
            "is not shown.",
            findings,
        )
    return Verdict(
        NOT_SUPPORTED,
        f"No padding strategy changes the {class_name} score of landscape images by a "
        "clear effect: no evidence that the model uses the padded border.",
        findings,
    )


def _orientation_finding(summary: pd.DataFrame, class_name: str, labels: dict[str, str]) -> list[str]:
    """Compare vertical (landscape) with horizontal (portrait) padding for the strongest strategy (L2175)."""
    for member, who in ((False, f"images that are not {class_name}"), (True, f"{class_name} images")):
        padded = _rows(summary, member, "padded")
        landscape, portrait = _rows(summary, member, "landscape"), _rows(summary, member, "portrait")
        if padded.empty or landscape.empty or portrait.empty:
            continue
        strongest = padded.loc[padded["mean"].abs().idxmax(), "strategy"]
        wide = landscape[landscape["strategy"] == strongest].iloc[0]
        tall = portrait[portrait["strategy"] == strongest].iloc[0]
        stronger = "vertical" if abs(wide["mean"]) > abs(tall["mean"]) else "horizontal"
        return [
            f"For {who}, {labels[strongest]} padding has the stronger effect when the padding is {stronger}: "
            f"{wide['mean']:+.2f} for landscape images padded above and below (n = {int(wide['n'])}) against "
            f"{tall['mean']:+.2f} for portrait images padded left and right (n = {int(tall['n'])})."
        ]
    return []


def _relevance_finding(summary: pd.DataFrame, class_name: str) -> list[str]:
    """How much positive relevance the baseline puts on the padded border, against its area (L2173)."""
    baseline = summary[(summary["member"]) & (summary["orientation"] == "padded") & (summary["strategy"] == BASELINE)]
    if baseline.empty or pd.isna(baseline["padded_relevance_share"].iloc[0]):
        return []
    row = baseline.iloc[0]
    return [
        f"With the copied border, {row['padded_relevance_share']:.0%} of the positive relevance of {class_name} "
        f"images lies in the padded area, which covers {row['padded_fraction']:.0%} of the model input."
    ]
