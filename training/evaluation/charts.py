"""The win rate per round for the plot drawn by static/js/quality_charts.js (the vendored Chart.js): human,
against each evaluation's baseline, and the reward model's, of each new policy over its parent."""

from typing import TypedDict

from core.errors import ServiceError
from labeling.models import Batch

from ..models import ModelVersion
from .batches import round_of_model
from .winrate import evaluation_results


class Point(TypedDict):
    """A win rate at a round, with its interval where known."""

    x: int  # the round
    y: float
    low: float | None
    high: float | None
    label: str


def win_rate_per_round_series() -> dict:
    """Human win rate of every model in every evaluation batch against that batch's default baseline,
    by the model's round; and the reward model's win rate of each policy over its parent (auto_eval)."""
    human: list[Point] = []
    for batch in Batch.objects.filter(kind=Batch.Kind.EVALUATION).order_by("pk"):
        try:
            results = evaluation_results(batch=batch)
        except ServiceError:  # no outputs yet
            continue
        for r in results.overall:
            model = r.source.model_version
            if r.win_rate is None or r.win_rate.value is None or model is None:
                continue
            human.append(
                {
                    "x": round_of_model(model) or batch.round_number,
                    "y": r.win_rate.value,
                    "low": r.win_rate.low,
                    "high": r.win_rate.high,
                    "label": f"{model.name} vs {results.baseline.key} ({batch.name})",
                }
            )
    automatic: list[Point] = []
    for model in ModelVersion.objects.filter(metrics__has_key="auto_eval").order_by("pk"):
        auto = model.metrics["auto_eval"]
        if isinstance(auto, dict) and auto.get("rm_win_rate") is not None:
            automatic.append(
                {
                    "x": round_of_model(model),
                    "y": auto["rm_win_rate"],
                    "low": auto.get("rm_win_rate_low"),
                    "high": auto.get("rm_win_rate_high"),
                    "label": f"{model.name} vs its parent",
                }
            )
    series: list[dict[str, object]] = [
        {"label": "human win rate vs baseline", "points": sorted(human, key=lambda p: p["x"])}
    ]
    if automatic:
        series.append(
            {"label": "reward-model win rate vs parent", "points": sorted(automatic, key=lambda p: p["x"])}
        )
    return {"kind": "per_round", "y_label": "win rate", "series": series}
