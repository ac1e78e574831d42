"""Celery tasks of the collection side: each takes ids, loads, and calls a service. Routed to the default
queue by settings (CELERY_TASK_ROUTES)."""

from celery import Task, shared_task

from .services.job_recovery import jobs_recover
from .services.jobs import job_run
from .services.tokens import tokens_delete_expired
from .services.undo import submissions_finalise


@shared_task(bind=True, acks_late=True, name="labeling.tasks.run_job")
def run_job(self: Task, job_id: int) -> str:
    job = job_run(job_id=job_id, worker_task_id=self.request.id or "")
    return job.status if job else "skipped"


@shared_task(name="labeling.tasks.recover_jobs")
def recover_jobs() -> dict[str, list[int]]:
    return jobs_recover()


@shared_task(name="labeling.tasks.finalise_submissions")
def finalise_submissions() -> int:
    """Write the labels whose undo window has closed (beat, every 15 s: migration 0015)."""
    return submissions_finalise()


@shared_task(name="labeling.tasks.delete_expired_tokens")
def delete_expired_tokens() -> int:
    """Delete the API tokens that have expired (beat, hourly: migration 0017)."""
    return tokens_delete_expired()
