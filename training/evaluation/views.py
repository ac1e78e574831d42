"""Model evaluation pages: the evaluation batches with the win rate per round, a form for a new
evaluation batch, and one batch's results (win rates against a chosen baseline, Likert means, flag
rates, by model and by category, next to the automatic evaluation of each model)."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render

from core.errors import ServiceError
from core.permissions import may_manage, require_manage, require_see_all, signed_in_user
from labeling.models import Batch
from labeling.quality.display import flag_heading, num, pct
from labeling.vocab import Category

from .batches import evaluation_batch_create
from .charts import win_rate_per_round_series
from .forms import EvaluationCreateForm
from .winrate import EVALUATION_FLAGS, SourceResult, evaluation_results


def _auto(auto: dict) -> list[tuple[str, str]]:
    """The automatic evaluation's figures, written for the page."""
    rate = pct(auto.get("rm_win_rate"))
    if auto.get("rm_win_rate_low") is not None and auto.get("rm_win_rate_high") is not None:
        rate += f" [{pct(auto['rm_win_rate_low'])}, {pct(auto['rm_win_rate_high'])}]"
    return [
        ("RM win rate over parent", rate),
        ("RM held-out accuracy", pct(auto.get("rm_heldout_accuracy"))),
        ("KL to SFT (nats per sequence)", num(auto.get("kl_to_sft"), 2)),
        ("valid prompts", num(auto.get("prompts"))),
    ]


@login_required
def evaluations(request: HttpRequest) -> HttpResponse:
    require_see_all(request.user)
    form = EvaluationCreateForm(request.POST or None)
    if request.method == "POST":
        require_manage(request.user)
        if form.is_valid():
            data = form.cleaned_data
            try:
                batch = evaluation_batch_create(
                    name=data["name"],
                    model_versions=list(data["model_versions"]),
                    external_sources=data["external_sources"],
                    created_by=signed_in_user(request),
                    status=data["status"],
                    overlap=data["overlap"],
                    limit=data["limit"],
                )
            except ServiceError as exc:
                form.add_error(exc.field if exc.field in form.fields else None, exc.message)
            else:
                messages.success(
                    request, f"Evaluation batch '{batch.name}' created with {batch.tasks.count()} tasks."
                )
                return redirect("training:evaluation", batch_id=batch.pk)
    batches = (
        Batch.objects.filter(kind=Batch.Kind.EVALUATION).annotate(n_tasks=Count("tasks")).order_by("-pk")
    )
    return render(
        request,
        "training/evaluations.html",
        {
            "batches": batches,
            "form": form,
            "may_manage": may_manage(request.user),
            "chart": win_rate_per_round_series(),
        },
    )


def _table(results: list[SourceResult], baseline_key: str) -> list[dict]:
    rows = []
    for r in results:
        auto = r.auto_eval if isinstance(r.auto_eval, dict) else {}
        rows.append(
            {
                "result": r,
                "is_baseline": r.source.key == baseline_key,
                "flags": [r.flags[f] for f in EVALUATION_FLAGS],
                "auto": _auto(auto) if auto else None,
            }
        )
    return rows


@login_required
def evaluation(request: HttpRequest, batch_id: int) -> HttpResponse:
    require_see_all(request.user)
    batch = get_object_or_404(Batch, pk=batch_id)
    try:
        results = evaluation_results(batch=batch, baseline=request.GET.get("baseline") or None)
    except ServiceError as exc:
        return render(request, "training/evaluation.html", {"batch": batch, "error": exc.message}, status=200)
    return render(
        request,
        "training/evaluation.html",
        {
            "batch": batch,
            "results": results,
            "rows": _table(results.overall, results.baseline.key),
            "categories": [
                (Category(c).label if c in Category.values else c, _table(rs, results.baseline.key))
                for c, rs in results.by_category.items()
            ],
            "flag_labels": [flag_heading(f) for f in EVALUATION_FLAGS],
            "chart": {
                "kind": "win_rates",
                "y_label": f"win rate vs {results.baseline.key}",
                "series": [
                    {
                        "label": "win rate",
                        "points": [
                            {
                                "x": r.source.key,
                                "y": r.win_rate.value,
                                "low": r.win_rate.low,
                                "high": r.win_rate.high,
                            }
                            for r in results.overall
                            if r.win_rate is not None and r.win_rate.value is not None
                        ],
                    }
                ],
            },
        },
    )
