"""Going on after a lost message, without a human.

A round moves through messages: its advance after each step, each run's task, and the advance again when
the run ends. Any one can be lost: the broker is down as a run ends, a send after a commit fails, Redis
restarts empty. The committed rows always say where a round stands, so the sweep goes on from them:

- a run still queued long after its task was sent is sent again, or failed once it has waited past its
  limit while the queue cannot be reached (runs.runs_recover_queued);
- a running round that waits on nothing (no run of it is queued or running) is advanced.

The sweep is a periodic task (every minute, django-celery-beat). It is safe to run twice at once: a
re-send is claimed by a conditional update, a round is advanced under its row lock and skipped while
another process holds it, and advancing a round twice does nothing the second time.

Without a broker there is nothing in transit to lose; the round's process is what can go (see
rounds.rounds_fail_gone). `round_resume` is the operator's way on (start_round --resume).
"""

import logging
from typing import TYPE_CHECKING

from core import dispatch

from ..models import Round, RoundStatus
from .rounds import RoundRefused, round_advance_if_waiting, round_retry, rounds_fail_gone
from .runs import runs_recover_queued

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser, User

log = logging.getLogger(__name__)


def recover_lost_messages() -> dict[str, list[int]]:
    """The periodic sweep: runs first (a failed one ends its round's wait), then rounds."""
    if not dispatch.uses_broker():
        return {"resent": [], "failed": [], "advanced": []}
    outcome = runs_recover_queued()
    advanced = []
    for pk in Round.objects.filter(status=RoundStatus.RUNNING).values_list("pk", flat=True):
        if _advance_waiting(pk):
            advanced.append(pk)
    return {**outcome, "advanced": advanced}


def _advance_waiting(round_id: int) -> bool:
    try:
        rnd = round_advance_if_waiting(round_id=round_id)
    except dispatch.BROKER_ERRORS as exc:  # the step was recorded; its run's message goes with a later sweep
        log.warning("round %s advanced, but sending its run failed (%s)", round_id, exc)
        return True
    if rnd is not None:
        log.warning("round %s waited on nothing (a lost message): advanced by the recovery sweep", round_id)
    return rnd is not None


def round_resume(*, rnd: Round, actor: "User | AnonymousUser | None" = None) -> Round:
    """Go on with a round rather than start a new one. A failed round is retried from the step that
    failed. A running round whose process is gone (no broker) is failed and retried here; with a broker,
    a running round gets its queued runs sent again and is advanced if it waits on nothing, now."""
    if rnd.status == RoundStatus.RUNNING and not dispatch.uses_broker():
        if rnd.pk not in {gone.pk for gone in rounds_fail_gone()}:
            where = f"process {rnd.worker}, which is alive" if rnd.worker else "a process not known here"
            raise RoundRefused(
                f"round {rnd.number} is running in {where}; wait for it, or fail it (start_round --fail-stuck)."
            )
        rnd.refresh_from_db()
    if rnd.status == RoundStatus.FAILED:
        return round_retry(rnd=rnd, actor=actor)
    if rnd.status != RoundStatus.RUNNING:
        raise RoundRefused(f"round {rnd.number} {rnd.status}: there is nothing to resume.")
    runs_recover_queued(runs=rnd.runs.all())
    _advance_waiting(rnd.pk)
    rnd.refresh_from_db()
    return rnd
