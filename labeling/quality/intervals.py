"""95% intervals by the bootstrap over tasks (scipy.stats.bootstrap).

Every figure here is a ratio of sums over tasks: agreeing pairs / compared pairs, wins / judgments,
Likert points / ratings. Tasks are the unit that is resampled, because the judgments of one task (its
several labelers, its C(K,2) pairs) are not independent of each other.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

CONFIDENCE = 0.95
RESAMPLES = 2000
SEED = 20220304  # InstructGPT's arXiv date: fixed, so a page shows the same interval on every load


@dataclass(frozen=True)
class Estimate:
    """A ratio pooled over tasks, with its bootstrap interval (None where there is too little data)."""

    value: float | None
    low: float | None
    high: float | None
    numerator: float  # e.g. agreeing pairs, wins (+ half the ties)
    denominator: float  # e.g. compared pairs, judgments
    tasks: int

    @classmethod
    def empty(cls) -> "Estimate":
        return cls(None, None, None, 0.0, 0.0, 0)

    def as_dict(self) -> dict:
        return {
            "value": self.value,
            "low": self.low,
            "high": self.high,
            "numerator": self.numerator,
            "denominator": self.denominator,
            "tasks": self.tasks,
        }

    def _show(self, fmt: str) -> str:
        if self.value is None:
            return "–"
        text = format(self.value, fmt)
        if self.low is not None and self.high is not None:
            text += f" [{format(self.low, fmt)}, {format(self.high, fmt)}]"
        return text

    @property
    def percent(self) -> str:
        """'72.6% [70.1%, 75.0%]' for pages; '–' when there is no data."""
        return self._show(".1%")

    @property
    def number(self) -> str:
        """'0.45 [0.40, 0.50]' (Kendall's tau, Likert means)."""
        return self._show(".2f")


def _ratio(numerators, denominators, axis=-1):
    return np.sum(numerators, axis=axis) / np.sum(denominators, axis=axis)


def pooled_ratio(
    numerators: Sequence[float],
    denominators: Sequence[float],
    *,
    n_resamples: int = RESAMPLES,
    seed: int = SEED,
) -> Estimate:
    """sum(numerators) / sum(denominators), one entry per task, with a percentile bootstrap interval
    that resamples tasks. Tasks with a zero denominator carry no information and are dropped."""
    num = np.asarray(numerators, dtype=float)
    den = np.asarray(denominators, dtype=float)
    keep = den > 0
    num, den = num[keep], den[keep]
    if not len(den):
        return Estimate.empty()
    value = float(num.sum() / den.sum())
    low = high = None
    if len(den) >= 2:
        result = stats.bootstrap(
            (num, den),
            _ratio,
            paired=True,
            vectorized=True,
            n_resamples=n_resamples,
            batch=200,
            confidence_level=CONFIDENCE,
            method="percentile",
            rng=np.random.default_rng(seed),
        )
        low, high = float(result.confidence_interval.low), float(result.confidence_interval.high)
    return Estimate(value, low, high, float(num.sum()), float(den.sum()), int(len(den)))
