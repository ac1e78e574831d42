"""Series for the plots (drawn by static/js/quality_charts.js with the vendored Chart.js): agreement over
time per labeler. The win rate per round is the training side's (training/evaluation/charts.py)."""

from .dashboard import LabelerStats


def agreement_over_time_series(stats: list[LabelerStats]) -> dict:
    return {
        "kind": "over_time",
        "y_label": "pairwise agreement",
        "series": [
            {"label": s.username, "points": [{"x": p["period"], "y": p["value"]} for p in s.over_time]}
            for s in stats
            if s.over_time
        ],
    }
