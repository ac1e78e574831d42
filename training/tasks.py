"""Celery tasks: each takes ids, loads, and calls a service. Routed to the gpu queue by settings.
Services send them by name (training.dispatch), so nothing below imports this module."""

from celery import Task, shared_task

from . import dispatch
from .services.execution import run_execute
from .services.recovery import recover_lost_messages as recover
from .services.rounds import round_advance
from .services.runs import runs_reap_stale
from .services.schedules import retrain_rm_if_due as retrain_check
from .services.schedules import scheduled_round as scheduled_start


@shared_task(bind=True, acks_late=True, name=dispatch.EXECUTE_RUN)
def execute_run(self: Task, run_id: int) -> str:
    run = run_execute(run_id=run_id, worker_task_id=self.request.id or "")
    return run.status if run else "missing"


@shared_task(name=dispatch.ADVANCE_ROUND)
def advance_round(round_id: int) -> str:
    return round_advance(round_id=round_id).status


@shared_task(name="training.tasks.recover_lost_messages")
def recover_lost_messages() -> dict[str, list[int]]:
    return recover()


@shared_task(name="training.tasks.reap_stale_runs")
def reap_stale_runs() -> list[int]:
    return runs_reap_stale()


@shared_task(name="training.tasks.scheduled_round")
def scheduled_round(method: str = "ppo") -> int | None:
    rnd = scheduled_start(method=method)
    return rnd.pk if rnd else None


@shared_task(name="training.tasks.retrain_rm_if_due")
def retrain_rm_if_due(threshold: int = 1000) -> int | None:
    run = retrain_check(threshold=threshold)
    return run.pk if run else None
