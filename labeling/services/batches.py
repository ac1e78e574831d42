"""Running labeling batches: create one with its tasks, pause, resume, close, and change who works on it.

A batch of each kind gets its tasks from:
- prompt writing: a number of empty tasks (each asks for a new prompt);
- demonstration: prompts chosen by split / category / source / date (`prompts_select`) or imported;
- ranking and evaluation: the completions of chosen prompts (2 to 9 per prompt), an imported
  completions file (labeling.services.imports), or a model's generated outputs:
  `batch_create_from_completions` is the hook the loop calls after generation.
"""

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone

from audit.services import Action, audit_record
from core.errors import ServiceError
from core.roles import is_labeler

from ..models import Assignment, Batch, Completion, Task, TaskCompletion
from ..selectors.batches import completions_select, prompts_select
from ..vocab import K_MAX, K_MIN

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser, User

RANKING_KINDS = (Batch.Kind.RANKING, Batch.Kind.EVALUATION)
OVERLAP_MAX = 100
LEASE_MAX_MINUTES = 7 * 24 * 60
WRITING_TASKS_MAX = 100_000
TASKS_PER_INSERT = 1000


def _check_settings(*, name: str, overlap: object, lease_minutes: object, deadline: datetime | None) -> None:
    if not (name or "").strip():
        raise ServiceError("give the batch a name.", field="name")
    if len(name) > 200:
        raise ServiceError("keep the name under 200 characters.", field="name")
    if isinstance(overlap, bool) or not isinstance(overlap, int) or not 1 <= overlap <= OVERLAP_MAX:
        raise ServiceError(
            f"'overlap' (labels per task) must be a whole number from 1 to {OVERLAP_MAX}.", field="overlap"
        )
    if (
        isinstance(lease_minutes, bool)
        or not isinstance(lease_minutes, int)
        or not 1 <= lease_minutes <= LEASE_MAX_MINUTES
    ):
        raise ServiceError(
            f"'lease_minutes' must be a whole number from 1 to {LEASE_MAX_MINUTES}.", field="lease_minutes"
        )
    if deadline is not None and deadline <= timezone.now():
        raise ServiceError("the deadline must lie in the future.", field="deadline")


def _check_labelers(users: Iterable) -> list:
    users = list(users)
    outsiders = sorted(u.get_username() for u in users if not is_labeler(u))
    if outsiders:
        raise ServiceError(
            f"not labelers (give them the labeler role first): {', '.join(outsiders)}.", field="labelers"
        )
    return users


def batch_create(
    *,
    name: str,
    kind: str,
    overlap: int = 1,
    lease_minutes: int = 30,
    instructions: str = "",
    deadline: datetime | None = None,
    labelers: Iterable["User"] = (),
    groups: Iterable[Group] = (),
    status: str = Batch.Status.ACTIVE,
    round_number: int = 0,
    model_version: Any = None,  # a training.models.ModelVersion (labeling does not import training)
    created_by: "User | None" = None,
) -> Batch:
    """An empty batch with its settings; the batch_create_from_* functions add its tasks."""
    if kind not in Batch.Kind.values:
        raise ServiceError(
            f"unknown kind '{kind}'; choose one of: {', '.join(Batch.Kind.values)}.", field="kind"
        )
    if status not in (Batch.Status.DRAFT, Batch.Status.ACTIVE, Batch.Status.PAUSED):
        raise ServiceError("a new batch starts as draft, active or paused.", field="status")
    _check_settings(name=name, overlap=overlap, lease_minutes=lease_minutes, deadline=deadline)
    labelers = _check_labelers(labelers)
    with transaction.atomic():
        batch = Batch.objects.create(
            name=name.strip(),
            kind=kind,
            status=status,
            overlap=overlap,
            lease_minutes=lease_minutes,
            instructions=instructions or "",
            deadline=deadline,
            round_number=round_number,
            model_version=model_version,
            created_by=created_by,
        )
        batch.labelers.set(labelers)
        batch.groups.set(list(groups))
        audit_record(
            actor=created_by,
            action=Action.BATCH_CREATED,
            target=batch,
            details={"kind": kind, "status": status, "round_number": round_number},
        )
    return batch


def batch_add_writing_tasks(*, batch: Batch, count: int | None) -> int:
    if batch.kind != Batch.Kind.PROMPT_WRITING:
        raise ServiceError(f"batch '{batch.name}' is a {batch.kind} batch, not a prompt-writing batch.")
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= WRITING_TASKS_MAX:
        raise ServiceError(
            f"'task_count' must be a whole number from 1 to {WRITING_TASKS_MAX}.", field="task_count"
        )
    Task.objects.bulk_create((Task(batch=batch) for _ in range(count)), batch_size=TASKS_PER_INSERT)
    return count


def batch_add_prompt_tasks(*, batch: Batch, prompt_ids: Iterable[int]) -> int:
    """One demonstration task per prompt."""
    if batch.kind != Batch.Kind.DEMONSTRATION:
        raise ServiceError(f"batch '{batch.name}' is a {batch.kind} batch, not a demonstration batch.")
    tasks = [Task(batch=batch, prompt_id=pk) for pk in prompt_ids]
    Task.objects.bulk_create(tasks, batch_size=TASKS_PER_INSERT)
    return len(tasks)


def ranking_batch_check(batch: Batch) -> None:
    """Ranking tasks go into ranking (or evaluation) batches only."""
    if batch.kind not in RANKING_KINDS:
        raise ServiceError(
            f"batch '{batch.name}' is a {batch.kind} batch; ranking tasks need a ranking batch."
        )


def ranking_group_clean(group: Iterable[Completion]) -> list[Completion]:
    """The completions of one ranking task: 2 to 9, distinct, answers to one prompt (ServiceError naming
    `completions` otherwise)."""
    group = list(group)
    if not K_MIN <= len(group) <= K_MAX:
        raise ServiceError(
            f"a ranking task needs {K_MIN} to {K_MAX} completions, got {len(group)}.", field="completions"
        )
    if len({c.prompt_id for c in group}) != 1:
        raise ServiceError(
            "the completions of one ranking task must answer the same prompt.", field="completions"
        )
    if len({c.pk for c in group}) != len(group):
        raise ServiceError("the same completion is listed twice in one task.", field="completions")
    return group


def batch_add_ranking_tasks(*, batch: Batch, groups: Iterable[Sequence[Completion]]) -> int:
    """One ranking task per group: 2 to 9 distinct completions of one prompt, shown in the given order.
    Called inside the caller's transaction: a bad group raises and nothing of the batch's tasks stays."""
    ranking_batch_check(batch)
    added = 0
    chunk: list[Sequence[Completion]] = []

    def flush() -> None:
        tasks = Task.objects.bulk_create(Task(batch=batch, prompt_id=g[0].prompt_id, k=len(g)) for g in chunk)
        TaskCompletion.objects.bulk_create(
            TaskCompletion(task=task, completion=c, prompt_id=c.prompt_id, position=i)
            for task, group in zip(tasks, chunk, strict=True)
            for i, c in enumerate(group)
        )
        chunk.clear()

    for group in groups:
        chunk.append(ranking_group_clean(group))
        added += 1
        if len(chunk) >= TASKS_PER_INSERT:
            flush()
    if chunk:
        flush()
    return added


def _group_by_prompt(completions: Iterable[Completion]) -> list[list[Completion]]:
    groups: dict[int, list[Completion]] = {}
    for c in completions:
        groups.setdefault(c.prompt_id, []).append(c)
    return list(groups.values())


def batch_create_from_prompts(
    *,
    prompt_filters: Mapping | None = None,
    completion_filters: Mapping | None = None,
    task_count: int | None = None,
    **settings: Any,
) -> Batch:
    """A batch and its tasks in one transaction (settings as for batch_create).

    prompt writing: `task_count` empty tasks. demonstration: one task per prompt chosen by
    `prompt_filters` (split, category, source, created_after, created_before, limit). ranking and
    evaluation: per chosen prompt, its completions chosen by `completion_filters` (model_version,
    source_name), at most 9 (the oldest); prompts with fewer than 2 are left out.
    """
    with transaction.atomic():
        batch = batch_create(**settings)
        if batch.kind == Batch.Kind.PROMPT_WRITING:
            batch_add_writing_tasks(batch=batch, count=task_count)
            return batch
        prompts = prompts_select(**dict(prompt_filters or {}))
        if batch.kind == Batch.Kind.DEMONSTRATION:
            added = batch_add_prompt_tasks(
                batch=batch, prompt_ids=prompts.values_list("pk", flat=True).iterator()
            )
        else:
            completions = completions_select(prompts=prompts, **dict(completion_filters or {}))
            groups = [g[:K_MAX] for g in _group_by_prompt(completions.iterator()) if len(g) >= K_MIN]
            added = batch_add_ranking_tasks(batch=batch, groups=groups)
        if added == 0:
            what = (
                "prompts"
                if batch.kind == Batch.Kind.DEMONSTRATION
                else "prompts with 2 or more matching completions"
            )
            raise ServiceError(f"no {what} match these filters: the batch would be empty.", field="prompts")
    return batch


def batch_create_from_completions(
    *, completions: Iterable[Completion], kind: str = Batch.Kind.RANKING, **settings: Any
) -> Batch:
    """The loop's hook: a ranking (or evaluation) batch of freshly generated completions, one task per
    prompt with that prompt's completions in the given order (2 to 9 of them). Pass model_version and
    round_number among the settings to record where the batch came from."""
    groups = _group_by_prompt(completions)
    if not groups:
        raise ServiceError("no completions given: the batch would be empty.", field="completions")
    with transaction.atomic():
        batch = batch_create(kind=kind, **settings)
        batch_add_ranking_tasks(batch=batch, groups=groups)
    return batch


# --- running a batch ---------------------------------------------------------------------------------

TRANSITIONS = {
    "open": ({Batch.Status.DRAFT}, Batch.Status.ACTIVE),
    "pause": ({Batch.Status.ACTIVE}, Batch.Status.PAUSED),
    "resume": ({Batch.Status.PAUSED, Batch.Status.DRAFT}, Batch.Status.ACTIVE),
    "close": ({Batch.Status.DRAFT, Batch.Status.ACTIVE, Batch.Status.PAUSED}, Batch.Status.CLOSED),
}
AUDITED = {
    "open": Action.BATCH_OPENED,
    "pause": Action.BATCH_PAUSED,
    "resume": Action.BATCH_RESUMED,
    "close": Action.BATCH_CLOSED,
}


def batch_transition(*, batch: Batch, action: str, actor: "User | AnonymousUser | None" = None) -> Batch:
    """open, pause, resume or close. Labelers keep the assignments they hold (they may still submit)
    but get no new task unless the batch is active. A closed batch stays closed."""
    if action not in TRANSITIONS:
        raise ServiceError(
            f"unknown action '{action}'; choose one of: {', '.join(TRANSITIONS)}.", field="action"
        )
    allowed, target = TRANSITIONS[action]
    with transaction.atomic():
        batch = Batch.objects.select_for_update().get(pk=batch.pk)
        if batch.status == target:
            return batch
        if batch.status not in allowed:
            raise ServiceError(
                f"a {batch.status} batch cannot be {action}d.", field="status", code="bad_state"
            )
        before, batch.status = batch.status, target
        batch.save(update_fields=["status"])
        audit_record(
            actor=actor, action=AUDITED[action], target=batch, details={"from": before, "to": target}
        )
    return batch


def batch_pause(*, batch: Batch, actor: "User | AnonymousUser | None" = None) -> Batch:
    return batch_transition(batch=batch, action="pause", actor=actor)


def batch_resume(*, batch: Batch, actor: "User | AnonymousUser | None" = None) -> Batch:
    return batch_transition(batch=batch, action="resume", actor=actor)


def batch_close(*, batch: Batch, actor: "User | AnonymousUser | None" = None) -> Batch:
    return batch_transition(batch=batch, action="close", actor=actor)


def _usernames(users: list) -> list[str]:
    return sorted(u.get_username() for u in users)


def batch_labelers_add(
    *, batch: Batch, users: Iterable["User"], actor: "User | AnonymousUser | None" = None
) -> None:
    users = _check_labelers(users)
    with transaction.atomic():
        batch.labelers.add(*users)
        audit_record(
            actor=actor,
            action=Action.BATCH_LABELERS_ADDED,
            target=batch,
            details={"labelers": _usernames(users)},
        )


def batch_labelers_remove(
    *, batch: Batch, users: Iterable["User"], actor: "User | AnonymousUser | None" = None
) -> int:
    """Take labelers off the batch. Their live leases end now, so the tasks go to others; returns how many."""
    users = list(users)
    with transaction.atomic():
        batch.labelers.remove(*users)
        freed = Assignment.objects.filter(
            batch=batch, labeler__in=users, status=Assignment.Status.ACTIVE
        ).update(status=Assignment.Status.EXPIRED, lease_expires_at=timezone.now())
        audit_record(
            actor=actor,
            action=Action.BATCH_LABELERS_REMOVED,
            target=batch,
            details={"labelers": _usernames(users), "leases_ended": freed},
        )
    return freed


def batch_update(
    *,
    batch: Batch,
    name: str,
    overlap: int,
    lease_minutes: int,
    instructions: str,
    deadline: datetime | None,
    groups: Iterable[Group] | None = None,
) -> Batch:
    """Change a batch's settings. A deadline already passed may stay as it is."""
    passed = deadline is not None and deadline == batch.deadline
    _check_settings(
        name=name, overlap=overlap, lease_minutes=lease_minutes, deadline=None if passed else deadline
    )
    with transaction.atomic():
        batch.name, batch.overlap, batch.lease_minutes = name.strip(), overlap, lease_minutes
        batch.instructions, batch.deadline = instructions or "", deadline
        batch.save(update_fields=["name", "overlap", "lease_minutes", "instructions", "deadline"])
        if groups is not None:
            batch.groups.set(list(groups))
    return batch
