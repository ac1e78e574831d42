"""A round of the loop, one step at a time, each step its own task:

export -> sft -> rm -> ppo -> generate -> batch   (method "ppo")
export -> sft -> dpo -> generate -> batch        (method "dpo")

`round_advance` is the whole state machine: it looks at `Round.state`, finishes what is finished and
starts the next step. Training steps start a TrainingRun; the run's end calls back into the round.
A failed step fails the round with its reason; `round_retry` goes on from that step (a failed
training run resumes from its checkpoints) without redoing the steps before it.

Each step is recorded under the round's row lock, so advancing a round twice does nothing the second
time: a lost message is made good by advancing again (training/services/recovery.py). Without a broker
the round runs inside one process, recorded as its `worker`; a round whose process is gone is failed at
the next start (`rounds_fail_gone`) instead of blocking it.
"""

import json
import logging
from pathlib import Path

from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from audit.services import Action, audit_record
from labeling.errors import ServiceError
from labeling.models import Batch, Completion, DatasetSnapshot, Prompt
from labeling.services.exports import snapshot_create
from labeling.services.tasks import ranking_task_create
from labeling.vocab import K_MAX, K_MIN, ROLE_LABELER

from .. import dispatch
from ..models import ModelVersion, Round, RoundStatus, RunStatus, TrainingRun
from . import liveness, run_settings
from .registry import base_model_get_or_create
from .runs import ACTIVE, run_start, runs_stop

log = logging.getLogger(__name__)

STEPS = {
    "ppo": ["export", "sft", "rm", "ppo", "generate", "batch"],
    "dpo": ["export", "sft", "dpo", "generate", "batch"],
}
DEFAULTS = {
    "k": 4,
    "prompt_limit": 50,
    "batch_status": "active",
    "overlap": 1,
    "mix_sft": False,
    "batches": [],
    "stage_config": {},
}


class RoundRefused(ServiceError):
    pass


def _next_number() -> int:
    last_round = Round.objects.aggregate(n=Max("number"))["n"] or 0
    last_batch = Batch.objects.aggregate(n=Max("round_number"))["n"] or 0
    return max(last_round, last_batch) + 1


def round_start(*, method: str = "ppo", created_by=None, config: dict | None = None) -> Round:
    """Start round N+1. Refused while another round is running (a database rule, so schedules and
    double clicks cannot start a second copy)."""
    if method not in STEPS:
        raise RoundRefused(f"unknown method '{method}'; choose ppo or dpo.", field="method")
    config = {**DEFAULTS, **(config or {})}
    if not (isinstance(config["k"], int) and K_MIN <= config["k"] <= K_MAX):
        raise RoundRefused(f"k must be {K_MIN} to {K_MAX}, got {config['k']!r}.", field="k")
    if config["batch_status"] not in (Batch.Status.DRAFT, Batch.Status.ACTIVE):
        raise RoundRefused("batch_status must be draft or active.", field="batch_status")
    config["stage_config"] = run_settings.stage_settings_clean(stage_config=config["stage_config"])
    rounds_fail_gone()
    running = Round.objects.filter(status=RoundStatus.RUNNING).first()
    if running:
        raise RoundRefused(
            f"round {running.number} is still running (step '{running.step}'); wait for it or let it fail first."
        )
    dispatch.check_queue()
    try:
        with transaction.atomic():
            rnd = Round.objects.create(
                number=_next_number(),
                method=method,
                config=config,
                created_by=created_by,
                step=STEPS[method][0],
                state={"done": []},
                worker=_this_worker(),
            )
            audit_record(
                actor=created_by,
                action=Action.ROUND_STARTED,
                target=rnd,
                details={"method": method, **config},
            )
    except IntegrityError:
        raise RoundRefused("another round is already running.") from None
    from ..tasks import advance_round

    try:
        dispatch.send(advance_round, rnd.pk)
    except dispatch.BROKER_ERRORS as exc:
        Round.objects.filter(pk=rnd.pk, state__done=[]).delete()  # never started: nothing to keep
        raise dispatch.QueueUnavailable(type(exc).__name__) from exc
    return rnd


def _this_worker() -> str:
    """The process a round runs in, recorded only without a broker (with one, any worker takes a step)."""
    return "" if dispatch.uses_broker() else liveness.this_process()


def _send_advance(rnd: Round) -> None:
    """Ask for the round's next step. Its reason is committed, so a broker that stays down is no error
    here: the recovery sweep advances every running round that waits on nothing."""
    from ..tasks import advance_round

    if not dispatch.send_follow_up(advance_round, rnd.pk):
        log.warning("round %s: its next step is left to the recovery sweep (the broker is down)", rnd.pk)


def round_retry(*, rnd: Round, actor=None) -> Round:
    if rnd.status != RoundStatus.FAILED:
        raise RoundRefused(f"round {rnd.number} is {rnd.status}; only a failed round can be retried.")
    if Round.objects.filter(status=RoundStatus.RUNNING).exclude(pk=rnd.pk).exists():
        raise RoundRefused("another round is running.")
    dispatch.check_queue()
    with transaction.atomic():
        rnd = Round.objects.select_for_update().get(pk=rnd.pk)
        rnd.status, rnd.error, rnd.finished_at = RoundStatus.RUNNING, "", None
        rnd.state["retry"] = rnd.step
        rnd.worker = _this_worker()
        rnd.save(update_fields=["status", "error", "finished_at", "state", "worker"])
        audit_record(actor=actor, action=Action.ROUND_RETRIED, target=rnd, details={"step": rnd.step})
    _send_advance(rnd)
    return rnd


def round_on_run_finished(*, run: TrainingRun) -> None:
    rnd = run.round
    if rnd is not None and rnd.status == RoundStatus.RUNNING:
        _send_advance(rnd)


def _fail(rnd: Round, message: str) -> None:
    rnd.status, rnd.error, rnd.finished_at = RoundStatus.FAILED, message, timezone.now()
    rnd.save(update_fields=["status", "error", "finished_at"])


def round_fail(*, rnd: Round, error: str, actor=None) -> Round:
    """Fail a running round that will not go on by itself, and stop its unfinished runs (runs_stop).
    Checkpoints stay, so round_retry goes on from the step it stopped at."""
    with transaction.atomic():
        rnd = Round.objects.select_for_update().get(pk=rnd.pk)
        if rnd.status != RoundStatus.RUNNING:
            raise RoundRefused(f"round {rnd.number} is {rnd.status}, not running.")
        runs = list(rnd.runs.filter(status__in=ACTIVE))
        runs_stop(runs=runs, error=f"stopped with round {rnd.number}: {error}", actor=actor)
        _fail(rnd, error)
    log.warning("round %s failed: %s", rnd.number, error)
    return rnd


def rounds_fail_gone() -> list[Round]:
    """Without a broker a round runs inside the process that started it (or went on with it). When that
    process is killed or restarted nothing takes the round further, and it would block every later start:
    such a round is failed, with its runs; round_retry (start_round --resume) goes on from its step."""
    if dispatch.uses_broker():
        return []  # workers come and go; the reaper and the recovery sweep look after their rounds
    failed = []
    for rnd in Round.objects.filter(status=RoundStatus.RUNNING):
        if not liveness.round_gone(rnd):
            continue
        error = (
            f"the process that ran it ({rnd.worker}) is gone (killed or restarted) during "
            f"step '{rnd.step}'. Retry the round to go on from that step; training resumes from its last "
            "checkpoint."
        )
        try:
            failed.append(round_fail(rnd=rnd, error=error))
        except RoundRefused:
            pass  # it ended meanwhile
    return failed


def round_advance(*, round_id: int) -> Round:
    """Do what the round's next step needs now. Called by a task after each step ends."""
    with transaction.atomic():
        rnd = Round.objects.select_for_update().get(pk=round_id)
        _go_on(rnd)
    return rnd


def round_advance_if_waiting(*, round_id: int) -> Round | None:
    """The recovery sweep's advance: None, and nothing done, for a round that another process is
    advancing now (skipped, never waited for) or that still has a run queued or running."""
    with transaction.atomic():
        rnd = Round.objects.select_for_update(skip_locked=True).filter(pk=round_id).first()
        if rnd is None or not _waiting_on_nothing(rnd):
            return None
        _go_on(rnd)
    return rnd


def _waiting_on_nothing(rnd: Round) -> bool:
    """Running with no run queued or running: whatever ended last, the message that should have taken
    the round further was lost, or is still on its way (then the second advance finds nothing to do)."""
    return rnd.status == RoundStatus.RUNNING and not rnd.runs.filter(status__in=ACTIVE).exists()


def _go_on(rnd: Round) -> None:
    if rnd.worker != _this_worker():
        rnd.worker = _this_worker()
        rnd.save(update_fields=["worker"])
    while rnd.status == RoundStatus.RUNNING:
        step = next((s for s in STEPS[rnd.method] if s not in rnd.state["done"]), None)
        if step is None:
            rnd.status, rnd.finished_at, rnd.step = RoundStatus.SUCCEEDED, timezone.now(), ""
            rnd.save(update_fields=["status", "finished_at", "step"])
            break
        rnd.step = step
        try:
            with transaction.atomic():  # a step that raises leaves nothing half-made (no run, no batch)
                finished = STEP_HANDLERS.get(step, _training_step)(rnd, step)
        except dispatch.QueueUnavailable:
            log.warning(
                "round %s step %s: the queue is unreachable; the recovery sweep goes on", rnd.pk, step
            )
            rnd.save(update_fields=["step"])
            break
        except ServiceError as exc:
            _fail(rnd, f"step '{step}': {exc.message}")
            break
        except Exception as exc:  # a bug or an outage: the round shows it and can be retried
            log.exception("round %s step %s", rnd.pk, step)
            _fail(rnd, f"step '{step}': {type(exc).__name__}: {exc}")
            break
        if not finished:
            rnd.save(update_fields=["step", "state"])
            break
        rnd.state["done"].append(step)
        rnd.save(update_fields=["step", "state"])


def _export(rnd: Round, step: str) -> bool:
    filters = {"batches": rnd.config["batches"]} if rnd.config["batches"] else {}
    kinds = ["sft", "rm_rankings" if rnd.method == "ppo" else "rm_pairs", "prompts"]
    snaps = {}
    for kind in kinds:
        snap = snapshot_create(kind=kind, filters=filters, created_by=rnd.created_by)
        if snap.row_count == 0:
            raise ServiceError(f"the {kind} export is empty: there is nothing labeled to train on yet.")
        snaps[kind] = snap.pk
    rnd.state["snapshots"] = snaps
    return True


def _model(rnd: Round, key: str) -> ModelVersion:
    return ModelVersion.objects.get(pk=rnd.state["models"][key])


def _run_inputs(rnd: Round, step: str) -> dict:
    snaps = {k: DatasetSnapshot.objects.get(pk=v) for k, v in rnd.state["snapshots"].items()}
    overrides = dict(rnd.config["stage_config"].get(step, {}))
    if step == "sft":
        return {"base_model": base_model_get_or_create(), "snapshots": [snaps["sft"]], "config": overrides}
    if step == "rm":
        return {
            "base_model": _model(rnd, "sft"),
            "snapshots": [snaps["rm_rankings"], snaps["sft"]],
            "config": overrides,
        }
    if step == "ppo":
        return {
            "base_model": _model(rnd, "sft"),
            "reward_model": _model(rnd, "rm"),
            "snapshots": [snaps["prompts"], snaps["sft"]],
            "config": overrides,
        }
    if step == "dpo":
        return {"base_model": _model(rnd, "sft"), "snapshots": [snaps["rm_pairs"]], "config": overrides}
    raise ServiceError(f"unknown step {step}")


def _await_runs(rnd: Round, step: str, run_ids: list[int]) -> bool | None:
    """True when every run succeeded, False while some still go; fails the round on a failed run."""
    runs = list(TrainingRun.objects.filter(pk__in=run_ids))
    bad = [r for r in runs if r.status in (RunStatus.FAILED, RunStatus.CANCELLED)]
    if bad:
        if rnd.state.get("retry") == step:  # retry: resume the failed runs from their checkpoints
            rnd.state.pop("retry")
            new_ids = [_rerun(rnd, step, r).pk if r in bad else r.pk for r in runs]
            rnd.state.setdefault("runs", {})[step] = new_ids
            return False
        first = bad[0]
        reason = first.error.splitlines()[0] if first.error else first.status
        raise ServiceError(f"run {first.pk} {first.status}: {reason}")
    return all(r.status == RunStatus.SUCCEEDED for r in runs)


KEPT_ON_RETRY = ("num_samples", "max_prompts")


def _rerun(rnd: Round, step: str, failed: TrainingRun) -> TrainingRun:
    """A failed step's run again, with the round's current stage settings (an admin may have fixed
    them) in the failed run's output folder (retry_of), so training resumes from its last checkpoint."""
    config = {k: v for k, v in failed.config.items() if k in KEPT_ON_RETRY}
    config.update(rnd.config["stage_config"].get(step, {}))
    return run_start(
        kind=failed.kind,
        base_model=failed.base_model,
        snapshots=list(failed.snapshots.all()),
        reward_model=failed.reward_model,
        config=config,
        created_by=rnd.created_by,
        round=rnd,
        retry_of=failed,
    )


def _training_step(rnd: Round, step: str) -> bool:
    runs = rnd.state.setdefault("runs", {})
    if step not in runs:
        run = run_start(kind=step, created_by=rnd.created_by, round=rnd, **_run_inputs(rnd, step))
        runs[step] = [run.pk]
        return False
    if not _await_runs(rnd, step, runs[step]):
        return False
    run = TrainingRun.objects.get(pk=runs[step][0])
    key = "policy" if step in ("ppo", "dpo") else step
    rnd.state.setdefault("models", {})[key] = run.output_model_id
    return True


def _generate(rnd: Round, step: str) -> bool:
    runs = rnd.state.setdefault("runs", {})
    if step not in runs:
        sources = [_model(rnd, "policy")] + ([_model(rnd, "sft")] if rnd.config["mix_sft"] else [])
        per_source = -(-rnd.config["k"] // len(sources))  # ceil
        prompts = DatasetSnapshot.objects.get(pk=rnd.state["snapshots"]["prompts"])
        overrides = dict(rnd.config["stage_config"].get("generate", {}))
        runs[step] = [
            run_start(
                kind="generate",
                base_model=model,
                snapshots=[prompts],
                created_by=rnd.created_by,
                round=rnd,
                config={"num_samples": per_source, "max_prompts": rnd.config["prompt_limit"], **overrides},
            ).pk
            for model in sources
        ]
        return False
    return bool(_await_runs(rnd, step, runs[step]))


def _make_batch(rnd: Round, step: str) -> bool:
    """The next ranking batch: K outputs per prompt, interleaved across the source models."""
    per_prompt: dict[int, list[list[tuple[ModelVersion, str]]]] = {}
    for run in TrainingRun.objects.filter(pk__in=rnd.state["runs"]["generate"]).select_related("base_model"):
        path = Path(run.config["output_dir"]) / "completions.jsonl"
        with path.open(encoding="utf-8") as lines:
            for line in lines:
                row = json.loads(line)
                per_prompt.setdefault(int(row["prompt_id"]), []).append(
                    [(run.base_model, text) for text in row["completions"]]
                )
    policy = _model(rnd, "policy")
    batch = batch_from_generations(
        name=f"Round {rnd.number}: rank outputs of {policy.name}",
        round_number=rnd.number,
        model_version=policy,
        generations=per_prompt,
        k=rnd.config["k"],
        status=rnd.config["batch_status"],
        overlap=rnd.config["overlap"],
        created_by=rnd.created_by,
    )
    rnd.batch = batch
    rnd.save(update_fields=["batch"])
    return True


@transaction.atomic
def batch_from_generations(
    *,
    name: str,
    round_number: int,
    model_version: ModelVersion,
    generations: dict,
    k: int,
    status: str,
    overlap: int,
    created_by=None,
) -> Batch:
    """A ranking batch from {prompt id: [[(model, text), ...] per source model]}: the first K outputs
    taken round-robin across the sources, so a mixed batch shows each model's samples side by side."""
    from django.contrib.auth.models import Group

    batch = Batch.objects.create(
        name=name,
        kind=Batch.Kind.RANKING,
        status=status,
        overlap=overlap,
        round_number=round_number,
        model_version=model_version,
        created_by=created_by,
        instructions="Rate each output, then rank them best to worst. Ties are fine for outputs of similar quality.",
    )
    batch.groups.add(Group.objects.get_or_create(name=ROLE_LABELER)[0])
    audit_record(
        actor=created_by,
        action=Action.BATCH_CREATED,
        target=batch,
        details={"kind": batch.kind, "status": status, "round_number": round_number},
    )
    prompts = Prompt.objects.in_bulk(list(generations))
    for prompt_id in sorted(generations):
        sources = generations[prompt_id]
        mixed = [pair for group in zip(*sources, strict=False) for pair in group][:k]
        if len(mixed) < K_MIN or prompt_id not in prompts:
            continue
        completions = [
            Completion.objects.create(prompt=prompts[prompt_id], text=_storable(text), model_version=model)
            for model, text in mixed
        ]
        ranking_task_create(batch=batch, prompt=prompts[prompt_id], completions=completions)
    if not batch.tasks.exists():
        raise ServiceError("generation produced no prompt with at least two outputs; no batch was made.")
    return batch


def _storable(text: str) -> str:
    """Model output as Postgres can store it: NUL characters (which byte-level models can emit) become
    U+FFFD, the replacement character, so the labeler still sees that something was there."""
    return text.replace("\x00", "\ufffd")


STEP_HANDLERS = {"export": _export, "generate": _generate, "batch": _make_batch}
