"""The fuzzed API's world: the API tests' world (tests/api/world.py), plus a live assignment of every
batch kind for lab1, an evaluation batch and a finished round, and the ids of what exists per resource."""

from labeling.models import (
    Batch,
    Completion,
    DatasetSnapshot,
    Demonstration,
    Prompt,
    Ranking,
    Task,
)
from labeling.services.tasks import prompt_task_create
from tests.api.world import build_world
from tests.factories import BatchFactory, CompletionFactory, assignment_for, ranking_task
from training.models import ModelVersion, Round, TrainingRun


def build_fuzz_world() -> dict:
    world = build_world()
    labeler = world["users"]["labeler"]
    live = [world["live"]]
    for kind in (Batch.Kind.DEMONSTRATION, Batch.Kind.PROMPT_WRITING):
        batch = BatchFactory(kind=kind, name=f"{kind} batch")
        batch.labelers.add(labeler)
        live.append(assignment_for(prompt_task_create(batch=batch, prompt=world["prompt"]), labeler))
    evaluation = BatchFactory(kind=Batch.Kind.EVALUATION, name="evaluation batch")
    evaluation.labelers.add(labeler)
    task = ranking_task(evaluation, k=2)
    CompletionFactory(prompt=task.prompt, source_name="other-model")
    live.append(assignment_for(task, labeler))
    Round.objects.create(number=1, status=Round.Status.SUCCEEDED, batch=world["batch"])

    def ids(model) -> list[int]:
        return sorted(model.objects.values_list("pk", flat=True))

    world["ids"] = {
        # The lead object of each resource (the coverage phase's id 0) comes first: lab1's live ranking
        # assignment, batch "mine" (the oldest of the others).
        "assignments": [a.pk for a in live] + [world["my_ranking"].assignment_id],
        "batches": ids(Batch),
        "completions": ids(Completion),
        "datasets": ids(DatasetSnapshot),
        "demonstrations": ids(Demonstration),
        "model-versions": ids(ModelVersion),
        "prompts": ids(Prompt),
        "rankings": ids(Ranking),
        "tasks": ids(Task),
        "training-runs": ids(TrainingRun),
        "runs": ids(TrainingRun),
        "rounds": ids(Round),
        "users": sorted(user.pk for user in world["users"].values()),
    }
    return world
