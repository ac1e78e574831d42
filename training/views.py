"""Pages of the training side: runs (start, watch live, cancel, retry), the model registry with
lineage, and rounds."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from core.errors import ServiceError
from core.permissions import may_train, require_train, require_view, signed_in_user

from .forms import RoundStartForm, RunStartForm
from .models import ModelVersion, Round, TrainingRun
from .selectors.numbers import finite
from .selectors.reward import round_reward
from .selectors.rounds import round_progress
from .selectors.runs import config_rows
from .selectors.runs import run_status as run_status_of
from .services.registry import base_model_get_or_create, batches_behind, lineage, snapshots_held
from .services.rounds import round_retry, round_start
from .services.runs import run_cancel, run_retry, run_start


@login_required
def overview(request: HttpRequest) -> HttpResponse:
    require_view(request.user)
    return render(
        request,
        "training/overview.html",
        {
            "rounds": Round.objects.order_by("-number")[:20],
            "runs": TrainingRun.objects.select_related("base_model", "output_model").order_by("-created_at")[
                :50
            ],
            "models": ModelVersion.objects.select_related("parent").order_by("-created_at")[:50],
            "round_form": RoundStartForm(),
            "may_train": may_train(request.user),
        },
    )


@login_required
def run_new(request: HttpRequest) -> HttpResponse:
    require_train(request.user)
    if not ModelVersion.objects.exists():
        try:
            base_model_get_or_create()
        except ServiceError as exc:  # BASE_MODEL unset where the tiny model cannot be built
            messages.error(request, str(exc))
    form = RunStartForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            run = run_start(
                kind=data["kind"],
                base_model=data["base_model"],
                snapshots=list(data["snapshots"]),
                reward_model=data["reward_model"],
                config=data["config"],
                launch_config=data["launch_config"],
                created_by=signed_in_user(request),
            )
        except ServiceError as exc:
            field = (exc.field or "").split(".")[0]  # "config.learning_rate" belongs to the config box
            form.add_error(field if field in form.fields else None, exc.message)
        else:
            messages.success(request, f"Run {run.pk} queued.")
            return redirect("training:run", pk=run.pk)
    return render(request, "training/run_new.html", {"form": form})


@login_required
def run_detail(request: HttpRequest, pk: int) -> HttpResponse:
    require_view(request.user)
    run = get_object_or_404(
        TrainingRun.objects.select_related("base_model", "reward_model", "output_model", "round"), pk=pk
    )
    return render(
        request,
        "training/run_detail.html",
        {
            "run": run,
            "snapshots": run.snapshots.all(),
            "status": run_status_of(run),
            "config_rows": config_rows(run),
            "may_train": may_train(request.user),
        },
    )


@login_required
def run_status(request: HttpRequest, pk: int) -> JsonResponse:
    require_view(request.user)
    return JsonResponse(run_status_of(get_object_or_404(TrainingRun, pk=pk)))


@login_required
@require_POST
def run_cancel_view(request: HttpRequest, pk: int) -> HttpResponse:
    require_train(request.user)
    try:
        run_cancel(run=get_object_or_404(TrainingRun, pk=pk), actor=request.user)
        messages.info(request, "Cancel requested: the run stops at its next step.")
    except ServiceError as exc:
        messages.error(request, exc.message)
    return redirect("training:run", pk=pk)


@login_required
@require_POST
def run_retry_view(request: HttpRequest, pk: int) -> HttpResponse:
    require_train(request.user)
    try:
        new = run_retry(run=get_object_or_404(TrainingRun, pk=pk), created_by=signed_in_user(request))
    except ServiceError as exc:
        messages.error(request, exc.message)
        return redirect("training:run", pk=pk)
    messages.success(request, f"Run {new.pk} resumes run {pk} from its last checkpoint.")
    return redirect("training:run", pk=new.pk)


@login_required
def model_detail(request: HttpRequest, pk: int) -> HttpResponse:
    require_view(request.user)
    model = get_object_or_404(ModelVersion, pk=pk)
    chain = lineage(model)
    return render(
        request,
        "training/model_detail.html",
        {
            "model": model,
            "chain": [(m, snapshots_held(m), getattr(m, "training_run", None)) for m in chain],
            "batches": batches_behind(model),
            "children": model.children.all(),
        },
    )


@login_required
@require_POST
def round_start_view(request: HttpRequest) -> HttpResponse:
    require_train(request.user)
    form = RoundStartForm(request.POST)
    if not form.is_valid():
        messages.error(request, "; ".join(f"{k}: {' '.join(map(str, v))}" for k, v in form.errors.items()))
        return redirect("training:overview")
    data = form.cleaned_data
    try:
        rnd = round_start(method=data.pop("method"), created_by=signed_in_user(request), config=data)
    except ServiceError as exc:
        messages.error(request, exc.message)
        return redirect("training:overview")
    messages.success(request, f"Round {rnd.number} started.")
    return redirect("training:round", pk=rnd.pk)


def _round_status(rnd: Round) -> dict:
    """What the round page shows and polls: the steps with their times and estimates, the reward's
    verdict, the new batch."""
    progress = round_progress(rnd).to_json()
    for step in progress["steps"]:
        for run in step["runs"]:
            run["url"] = reverse("training:run", args=[run["id"]])
    reward = round_reward(rnd)
    batch = rnd.batch
    return finite(
        {
            **progress,
            "number": rnd.number,
            "method": rnd.method,
            "reward": reward.to_json() if reward else None,
            "batch": {"name": batch.name, "tasks": batch.tasks.count(), "status": batch.status}
            if batch
            else None,
        }
    )


@login_required
def round_detail(request: HttpRequest, pk: int) -> HttpResponse:
    require_view(request.user)
    rnd = get_object_or_404(Round.objects.select_related("batch"), pk=pk)
    return render(
        request,
        "training/round_detail.html",
        {
            "round": rnd,
            "status": _round_status(rnd),
            "runs": rnd.runs.select_related("output_model").order_by("pk"),
            "may_train": may_train(request.user),
        },
    )


@login_required
def round_status(request: HttpRequest, pk: int) -> JsonResponse:
    require_view(request.user)
    return JsonResponse(_round_status(get_object_or_404(Round.objects.select_related("batch"), pk=pk)))


@login_required
@require_POST
def round_retry_view(request: HttpRequest, pk: int) -> HttpResponse:
    require_train(request.user)
    try:
        round_retry(rnd=get_object_or_404(Round, pk=pk), actor=request.user)
        messages.success(request, "Round resumed from the step that failed.")
    except ServiceError as exc:
        messages.error(request, exc.message)
    return redirect("training:round", pk=pk)
