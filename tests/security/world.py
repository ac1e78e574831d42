"""A world with two labelers whose work lies on two disjoint sides, for the leak tests.

Side "a" and side "b" each hold a labeler and what only that labeler (and the batch admins and
researchers) may see: a ranking batch no one else is on (a submitted ranking with a comment, a skipped
task, a live assignment with a draft), a prompt-writing batch with a written prompt, a demonstration
batch with a demonstration. Both labelers also ranked one task of a shared batch. Every text a side owns
starts with a marker (`zzb-comment`, ...): a response body holding the marker shows that text. Markers
lead the texts because Prompt.__str__ keeps only the first 60 characters."""

from dataclasses import dataclass, field
from types import SimpleNamespace

from knox.models import AuthToken

from core.roles import ROLE_BATCH_ADMIN, ROLE_LABELER, ROLE_RESEARCHER
from labeling.handout.next import assignment_next
from labeling.handout.work import assignment_save_draft, assignment_skip
from labeling.models import Assignment, Batch, Demonstration, Job, Prompt, Ranking, Task
from labeling.selectors.exports import labeler_pseudonym
from labeling.services.batches import (
    batch_add_prompt_tasks,
    batch_add_writing_tasks,
    batch_create,
    batch_create_from_completions,
)
from labeling.services.demonstrations import demonstration_submit
from labeling.services.exports import snapshot_create
from labeling.services.prompt_writing import prompt_submit
from labeling.services.rankings import ranking_submit
from tests.factories import CompletionFactory, PromptFactory, UserFactory, scored
from training.models import ModelVersion, Round, TrainingRun

# What each marker names. Drafts and skip reasons are the labeler's alone: no page shows them to anyone
# else (the Django admin aside). The pseudonym appears only in dataset files.
MARKED = (
    "username",
    "display-name",
    "batch-name",
    "batch-instructions",
    "prompt",
    "completion",
    "comment",
    "draft",
    "skip-reason",
    "written-prompt",
    "demo-batch",
    "demo-prompt",
    "demonstration",
    "shared-comment",
)
ONLY_THE_LABELER = ("draft", "skip-reason")


@dataclass
class Side:
    """One labeler's private corner of the world. `objects` maps a kind of object to its instances,
    the first being the one a control request uses."""

    name: str
    user: object
    objects: dict[str, list] = field(default_factory=dict)

    def marker(self, what: str) -> str:
        if what == "username":
            return self.user.username
        if what == "pseudonym":
            return labeler_pseudonym(self.user.pk)
        return f"zz{self.name}-{what}"

    def markers(self, *whats: str) -> dict[str, str]:
        return {f"{self.name}:{w}": self.marker(w) for w in whats}


def completion_ids(task: Task) -> list[int]:
    return list(task.task_completions.values_list("completion_id", flat=True))


def _side(name: str) -> Side:
    user = UserFactory(
        username=f"zz{name}-username", first_name=f"zz{name}-display-name", roles=[ROLE_LABELER]
    )
    side = Side(name, user)
    m = side.marker
    completions = []
    for n in range(3):
        prompt = PromptFactory(text=f"{m('prompt')} {n}: what should we ask here?", origin_user="origin-x")
        completions += [CompletionFactory(prompt=prompt, text=f"{m('completion')} {n}.{k}") for k in range(2)]
    batch = batch_create_from_completions(
        completions=completions,
        name=m("batch-name"),
        instructions=m("batch-instructions"),
        labelers=[user],
    )
    submitted = assignment_next(labeler=user, batch=batch)
    ranking = ranking_submit(
        assignment=submitted,
        tiers=[[c] for c in completion_ids(submitted.task)],
        ratings={c: {"likert": 5} for c in completion_ids(submitted.task)},
        comment=f"{m('comment')}: the second one rambles.",
        seconds_spent=40,
    )
    skipped = assignment_next(labeler=user, batch=batch)
    assignment_skip(assignment=skipped, reason=f"{m('skip-reason')}: I do not know this topic.")
    live = assignment_next(labeler=user, batch=batch)
    assignment_save_draft(assignment=live, draft={"tiers": [], "comment": f"{m('draft')} half done"})

    writing = batch_create(name=m("writing-batch"), kind=Batch.Kind.PROMPT_WRITING, labelers=[user])
    batch_add_writing_tasks(batch=writing, count=2)
    written = prompt_submit(
        assignment=assignment_next(labeler=user, batch=writing),
        text=f"{m('written-prompt')}: list three uses of a paperclip.",
        category="brainstorming",
        source="plain",
    )

    demo_prompt = PromptFactory(text=f"{m('demo-prompt')}: explain tides to a child.")
    demos = batch_create(name=m("demo-batch"), kind=Batch.Kind.DEMONSTRATION, labelers=[user])
    batch_add_prompt_tasks(batch=demos, prompt_ids=[demo_prompt.pk])
    demonstration = demonstration_submit(
        assignment=assignment_next(labeler=user, batch=demos),
        text=f"{m('demonstration')}: the moon pulls the sea.",
        seconds_spent=30,
    )
    side.objects = {
        "user": [user],
        "batch": [batch, writing, demos],
        "task": [live.task, submitted.task, skipped.task],
        "assignment": [live, submitted, skipped],
        "prompt": [written, live.task.prompt, demo_prompt],
        "completion": [live.task.task_completions.first().completion],
        "ranking": [ranking],
        "demonstration": [demonstration],
        # An API token, named in URLs by its prefix (the walker fills a kwarg with the object's pk).
        "token": [SimpleNamespace(pk=AuthToken.objects.create(user=user)[0].token_key)],
    }
    return side


def _shared(a: Side, b: Side) -> Batch:
    """A batch both labelers are on; each ranked its one task and wrote a comment."""
    prompt = PromptFactory(text="A shared prompt: name two rivers.")
    completions = [CompletionFactory(prompt=prompt, text=f"shared output {k}") for k in range(3)]
    batch = batch_create_from_completions(
        completions=completions, name="shared batch", overlap=2, labelers=[a.user, b.user]
    )
    for side, order in ((a, 1), (b, -1)):
        assignment = assignment_next(labeler=side.user, batch=batch)
        ranking_submit(
            assignment=assignment,
            tiers=[[c] for c in completion_ids(assignment.task)[::order]],
            comment=f"{side.marker('shared-comment')}: close call.",
            ratings=scored([[c] for c in completion_ids(assignment.task)[::order]]),
        )
    return batch


@dataclass
class World:
    a: Side
    b: Side
    shared: Batch
    users: dict  # role -> user (None for anonymous)
    common: dict  # kind -> [objects] readable by batch admins and researchers, the same for both sides

    def sides_of(self, role: str) -> tuple[Side | None, Side]:
        """(the role's own side, the side whose objects it is walked against)."""
        return {"labeler_a": (self.a, self.b), "labeler_b": (self.b, self.a)}.get(role, (None, self.b))

    def objects(self, side: Side) -> dict[str, list]:
        return {**self.common, **side.objects}


def build_world() -> World:
    admin = UserFactory(username="boss", roles=[ROLE_BATCH_ADMIN])
    researcher = UserFactory(username="sci", roles=[ROLE_RESEARCHER])
    a, b = _side("a"), _side("b")
    shared = _shared(a, b)
    snapshot = snapshot_create(kind="rm_rankings", filters={}, created_by=researcher)
    model = ModelVersion.objects.create(name="base", kind="base", checkpoint="/models/base")
    model.snapshots.add(snapshot)
    run = TrainingRun.objects.create(kind="sft", base_model=model, status="failed", error="stopped")
    run.snapshots.add(snapshot)
    rnd = Round.objects.create(number=1, status=Round.Status.FAILED, step="sft", batch=b.objects["batch"][0])
    job = Job.objects.create(kind="export", status="succeeded", snapshot=snapshot, created_by=researcher)
    return World(
        a=a,
        b=b,
        shared=shared,
        users={
            "anonymous": None,
            "labeler_a": a.user,
            "labeler_b": b.user,
            "batch_admin": admin,
            "researcher": researcher,
        },
        common={
            "snapshot": [snapshot],
            "model_version": [model],
            "training_run": [run],
            "round": [rnd],
            "job": [job],  # an export job: researchers see it, batch admins see import jobs only
        },
    )


def fingerprint() -> tuple:
    """What a refused write must leave unchanged."""
    from django.contrib.auth import get_user_model
    from knox.models import AuthToken

    from labeling.models import Completion, DatasetSnapshot, LabelerQualification

    return (
        list(
            Batch.objects.order_by("pk").values_list(
                "pk", "name", "status", "overlap", "lease_minutes", "instructions", "gold_rate"
            )
        ),
        sorted(Batch.labelers.through.objects.values_list("batch_id", "user_id")),
        list(
            Assignment.objects.order_by("pk").values_list(
                "pk", "labeler_id", "status", "draft", "skip_reason", "lease_expires_at"
            )
        ),
        list(Task.objects.order_by("pk").values_list("pk", "is_gold", "gold_tiers")),
        list(TrainingRun.objects.order_by("pk").values_list("pk", "status", "cancel_requested")),
        list(Round.objects.order_by("pk").values_list("pk", "status", "step")),
        list(get_user_model().objects.order_by("pk").values_list("pk", "password", "is_active")),
        sorted(get_user_model().groups.through.objects.values_list("user_id", "group_id")),
        [
            model.objects.count()
            for model in (
                Prompt,
                Completion,
                Demonstration,
                Ranking,
                DatasetSnapshot,
                ModelVersion,
                LabelerQualification,
                AuthToken,
                get_user_model(),
            )
        ],
    )
