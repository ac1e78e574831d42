"""How a round goes from SFT to RM: this module. A round is one turn of the loop, its steps in order:

    method "ppo":  export -> sft -> rm -> ppo -> generate -> batch
    method "dpo":  export -> sft -> dpo -> generate -> batch

export    three snapshots of the labels: demonstrations (sft), rankings or pairs (rm / dpo), prompts
sft       fine-tune the base model on the demonstrations                         -> model "sft"
rm        train the reward model from the SFT model on the rankings             -> model "rm"
ppo       train the policy from the SFT model against the reward model          -> model "policy"
dpo       (instead of rm and ppo) train the policy on the preference pairs      -> model "policy"
generate  sample K outputs per prompt from the policy (and the SFT model, when mix_sft)
batch     open the next ranking batch with those outputs

STEPS is the order; STEP_ACTIONS (training/services/round_steps.py, with the step functions in the same
order) says what each step does. `round_advance` takes the round as far as it can: each step function returns True when the step is
done, or False when it started training runs and waits for them. A run's end sends the advance again
(runs.after_finish, by task name). What each finished step produced is the round's state (RoundState).

A failed step fails the round with its reason; `round_retry` goes on from that step (a failed training run
resumes from its checkpoints) without redoing the steps before it. Each step is recorded under the round's
row lock, so advancing a round twice does nothing the second time: a lost message is made good by
advancing again (training/services/recovery.py). Executing a run on a worker is
training/services/execution.py. Without a broker the round runs inside one process, recorded as its
`worker`; a round whose process is gone is failed at the next start (`rounds_fail_gone`).
"""

import logging
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from audit.services import Action, audit_record
from core.dispatch import BROKER_ERRORS, QueueUnavailable, check_queue, uses_broker
from core.errors import ServiceError
from labeling.models import Batch
from labeling.vocab import K_MAX, K_MIN

from .. import dispatch
from ..models import Round, RoundStatus
from ..round_state import RoundState
from . import launch, liveness, run_settings
from .round_steps import STEP_ACTIONS
from .runs import ACTIVE, first_line, runs_stop

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser, User

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


def _with_site_defaults(stage_config: object) -> object:
    """The site's per-step settings (TRAINING_ROUND_STAGE_CONFIG; `make run` sets small PPO sizes for the demo)
    under the round's own: the round records the merged settings, so its page shows what each step trains with."""
    site = settings.TRAINING_ROUND_STAGE_CONFIG
    if not site or not isinstance(stage_config, dict):
        return stage_config  # a malformed value is stage_settings_clean's to refuse, naming the field
    steps = set(site) | set(stage_config)
    return {
        step: {**site.get(step, {}), **stage_config.get(step, {})}
        if isinstance(stage_config.get(step, {}), dict)
        else stage_config[step]
        for step in steps
    }


def round_start(
    *, method: str = "ppo", created_by: "User | None" = None, config: dict | None = None
) -> Round:
    """Start round N+1. Refused while another round is running (a database rule, so schedules and
    double clicks cannot start a second copy)."""
    if method not in STEPS:
        raise RoundRefused(f"unknown method '{method}'; choose ppo or dpo.", field="method")
    config = {**DEFAULTS, **(config or {})}
    config["stage_config"] = _with_site_defaults(config["stage_config"])
    if not (isinstance(config["k"], int) and K_MIN <= config["k"] <= K_MAX):
        raise RoundRefused(f"k must be {K_MIN} to {K_MAX}, got {config['k']!r}.", field="k")
    if config["batch_status"] not in (Batch.Status.DRAFT, Batch.Status.ACTIVE):
        raise RoundRefused("batch_status must be draft or active.", field="batch_status")
    config["stage_config"] = run_settings.stage_settings_clean(stage_config=config["stage_config"])
    launch_config = launch.launch_config_clean(config.pop("launch_config", ""))  # its runs train with it
    rounds_fail_gone()
    running = Round.objects.filter(status=RoundStatus.RUNNING).first()
    if running:
        raise RoundRefused(
            f"round {running.number} is still running (step '{running.step}'); wait for it or let it fail first."
        )
    check_queue()
    try:
        with transaction.atomic():
            rnd = Round.objects.create(
                number=_next_number(),
                method=method,
                config=config,
                launch_config=launch_config,
                created_by=created_by,
                step=STEPS[method][0],
                state=RoundState().to_json(),
                worker=_this_worker(),
            )
            audit_record(
                actor=created_by,
                action=Action.ROUND_STARTED,
                target=rnd,
                details={"method": method, "launch_config": launch_config, **config},
            )
    except IntegrityError:
        raise RoundRefused("another round is already running.") from None
    try:
        dispatch.send_named(dispatch.ADVANCE_ROUND, rnd.pk)
    except BROKER_ERRORS as exc:
        Round.objects.filter(pk=rnd.pk, state__done=[]).delete()  # never started: nothing to keep
        raise QueueUnavailable(type(exc).__name__) from exc
    return rnd


def _this_worker() -> str:
    """The process a round runs in, recorded only without a broker (with one, any worker takes a step)."""
    return "" if uses_broker() else liveness.this_process()


def _send_advance(rnd: Round) -> None:
    """Ask for the round's next step. Its reason is committed, so a broker that stays down is no error
    here: the recovery sweep advances every running round that waits on nothing."""
    if not dispatch.send_follow_up(dispatch.ADVANCE_ROUND, rnd.pk):
        log.warning("round %s: its next step is left to the recovery sweep (the broker is down)", rnd.pk)


def round_retry(*, rnd: Round, actor: "User | AnonymousUser | None" = None) -> Round:
    if rnd.status != RoundStatus.FAILED:
        raise RoundRefused(f"round {rnd.number} is {rnd.status}; only a failed round can be retried.")
    if Round.objects.filter(status=RoundStatus.RUNNING).exclude(pk=rnd.pk).exists():
        raise RoundRefused("another round is running.")
    check_queue()
    with transaction.atomic():
        rnd = Round.objects.select_for_update().get(pk=rnd.pk)
        rnd.status, rnd.error, rnd.finished_at = RoundStatus.RUNNING, "", None
        state = RoundState.from_json(rnd.state)
        state.retry = rnd.step
        rnd.state = state.to_json()
        rnd.worker = _this_worker()
        rnd.save(update_fields=["status", "error", "finished_at", "state", "worker"])
        audit_record(actor=actor, action=Action.ROUND_RETRIED, target=rnd, details={"step": rnd.step})
    _send_advance(rnd)
    return rnd


def _fail(rnd: Round, message: str, actor: "User | AnonymousUser | None" = None) -> None:
    """Every way a round fails comes here (a step refused or raised, round_fail): audited, with the step
    it failed in and the first line of why; `actor` None for the system."""
    rnd.status, rnd.error, rnd.finished_at = RoundStatus.FAILED, message, timezone.now()
    rnd.save(update_fields=["status", "error", "finished_at"])
    audit_record(
        actor=actor,
        action=Action.ROUND_FAILED,
        target=rnd,
        details={"step": rnd.step, "error": first_line(message)},
    )


def round_fail(*, rnd: Round, error: str, actor: "User | AnonymousUser | None" = None) -> Round:
    """Fail a running round that will not go on by itself, and stop its unfinished runs (runs_stop).
    Checkpoints stay, so round_retry goes on from the step it stopped at."""
    with transaction.atomic():
        rnd = Round.objects.select_for_update().get(pk=rnd.pk)
        if rnd.status != RoundStatus.RUNNING:
            raise RoundRefused(f"round {rnd.number} is {rnd.status}, not running.")
        runs = list(rnd.runs.filter(status__in=ACTIVE))
        runs_stop(runs=runs, error=f"stopped with round {rnd.number}: {error}", actor=actor)
        _fail(rnd, error, actor)
    log.warning("round %s failed: %s", rnd.number, error)
    return rnd


def rounds_fail_gone() -> list[Round]:
    """Without a broker a round runs inside the process that started it (or went on with it). When that
    process is killed or restarted nothing takes the round further, and it would block every later start:
    such a round is failed, with its runs; round_retry (start_round --resume) goes on from its step."""
    if uses_broker():
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
    """Take the round through its steps (STEPS, in order) until one waits for runs, fails, or the last
    is done."""
    if rnd.worker != _this_worker():
        rnd.worker = _this_worker()
        rnd.save(update_fields=["worker"])
    state = RoundState.from_json(rnd.state)
    while rnd.status == RoundStatus.RUNNING:
        step = next((s for s in STEPS[rnd.method] if s not in state.done), None)
        if step is None:
            rnd.status, rnd.finished_at, rnd.step = RoundStatus.SUCCEEDED, timezone.now(), ""
            rnd.save(update_fields=["status", "finished_at", "step"])
            break
        rnd.step = step
        try:
            with transaction.atomic():  # a step that raises leaves nothing half-made (no run, no batch)
                finished = STEP_ACTIONS[step](rnd, state, step)
        except QueueUnavailable:
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
        if finished:
            state.done.append(step)
        rnd.state = state.to_json()
        rnd.save(update_fields=["step", "state"])
        if not finished:
            break
