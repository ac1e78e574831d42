"""A small labeled world for the API tests: one user per role, batches, tasks, rankings, a snapshot."""

from core.roles import ROLE_BATCH_ADMIN, ROLE_LABELER, ROLE_RESEARCHER
from labeling.models import Demonstration, Job
from labeling.services.exports import snapshot_create
from labeling.services.rankings import ranking_submit
from tests.factories import BatchFactory, PromptFactory, UserFactory, assignment_for, ranking_task, scored
from training.models import ModelVersion, TrainingRun


def completion_ids(task) -> list[int]:
    return list(task.task_completions.values_list("completion_id", flat=True))


def build_world() -> dict:
    """lab1 works on batch "mine": one ranking submitted (task t1) and one live assignment (t2).
    lab2 ranked t1 too and also works on "not mine", which lab1 is not on."""
    labeler = UserFactory(username="lab1", roles=[ROLE_LABELER])
    other_labeler = UserFactory(username="lab2", roles=[ROLE_LABELER])
    admin = UserFactory(username="boss", roles=[ROLE_BATCH_ADMIN])
    researcher = UserFactory(username="sci", roles=[ROLE_RESEARCHER])
    batch = BatchFactory(overlap=2, name="mine")
    batch.labelers.add(labeler, other_labeler)
    other_batch = BatchFactory(name="not mine")
    other_batch.labelers.add(other_labeler)
    t1, t2 = ranking_task(batch), ranking_task(batch)
    other_task = ranking_task(other_batch)
    mine = ranking_submit(
        assignment=assignment_for(t1, labeler),
        tiers=[completion_ids(t1)],
        seconds_spent=9,
        ratings=scored([completion_ids(t1)]),
    )
    theirs = ranking_submit(
        assignment=assignment_for(t1, other_labeler),
        tiers=[[c] for c in completion_ids(t1)],
        ratings=scored([[c] for c in completion_ids(t1)]),
    )
    model = ModelVersion.objects.create(name="base", kind="base", checkpoint="/models/base")
    return {
        "batch": batch,
        "other_batch": other_batch,
        "t1": t1,
        "t2": t2,
        "other_task": other_task,
        "my_ranking": mine,
        "other_ranking": theirs,
        "live": assignment_for(t2, labeler),
        "my_demo": Demonstration.objects.create(prompt=t1.prompt, author=labeler, text="mine"),
        "other_demo": Demonstration.objects.create(prompt=t1.prompt, author=other_labeler, text="theirs"),
        "authored": PromptFactory(author=labeler),
        "prompt": t2.prompt,
        "completion": completion_ids(t2)[0],
        "snapshot": snapshot_create(kind="rm_pairs", filters={}),
        "model": model,
        "run": TrainingRun.objects.create(kind="sft", base_model=model),
        "import_job": Job.objects.create(kind="prompt_import", created_by=admin, upload_name="p.jsonl"),
        "export_job": Job.objects.create(kind="export", created_by=researcher, params={"kind": "sft"}),
        "users": {
            "labeler": labeler,
            "other_labeler": other_labeler,
            "admin": admin,
            "researcher": researcher,
        },
    }
