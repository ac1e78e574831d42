"""One page of every kind the product serves, with the rows each needs, and who may open it: for tests
that walk the site as each role (CSRF tokens on every form, the CSP in a real browser)."""

from django.utils import timezone

from core.roles import ROLE_BATCH_ADMIN, ROLE_LABELER, ROLE_RESEARCHER
from labeling.models import Batch, DatasetSnapshot, Job
from labeling.services.rankings import ranking_submit
from labeling.services.tasks import prompt_task_create
from labeling.vocab import Split
from tests.factories import BatchFactory, PromptFactory, UserFactory, assignment_for, ranking_task, scored
from training.evaluation.batches import evaluation_batch_create
from training.models import ModelVersion, Round, RoundStatus, RunStatus, TrainingRun

USERS = {"labeler": "ada", "batch admin": "boss", "researcher": "rex", "staff": "root"}


def build_site() -> dict[str, list[str]]:
    """The rows, and the pages each user (USERS; password: the factory's) opens."""
    ada = UserFactory(username="ada", roles=[ROLE_LABELER])
    UserFactory(username="boss", roles=[ROLE_BATCH_ADMIN])
    rex = UserFactory(username="rex", roles=[ROLE_RESEARCHER])
    UserFactory(username="root", is_staff=True, is_superuser=True)

    ranking = ranking_task(BatchFactory(name="Rank these"), k=4)
    writing = prompt_task_create(batch=BatchFactory(name="Write prompts", kind=Batch.Kind.PROMPT_WRITING))
    demo = prompt_task_create(
        batch=BatchFactory(name="Write answers", kind=Batch.Kind.DEMONSTRATION), prompt=PromptFactory()
    )
    work = [assignment_for(task, ada) for task in (ranking, writing, demo)]
    for task in (ranking, writing, demo):
        task.batch.labelers.add(ada)
    ranked = ranking_task(BatchFactory(name="Ranked already"), k=2)  # ada's history
    ranked.batch.labelers.add(ada)
    order = [[c.pk] for c in ranked.completions.all()]
    done = assignment_for(ranked, ada)
    ranking_submit(assignment=done, tiers=order, ratings=scored(order), undo_window=False)

    base = ModelVersion.objects.create(name="base", kind="base", checkpoint="/m/base")
    sft = ModelVersion.objects.create(name="sft-1", kind="sft", parent=base, checkpoint="/m/sft")
    snapshot = DatasetSnapshot.objects.create(
        kind="sft", row_count=0, sha256="0" * 64, file="datasets/none.jsonl", created_by=rex
    )
    run = TrainingRun.objects.create(
        kind="sft",
        base_model=base,
        output_model=sft,
        status=RunStatus.SUCCEEDED,
        metrics_history=[{"step": 1, "loss": 2.0}, {"step": 2, "loss": 1.5}],
        finished_at=timezone.now(),
    )
    run.snapshots.set([snapshot])
    rnd = Round.objects.create(number=1, status=RoundStatus.FAILED, step="sft", state={"done": ["export"]})
    policy = ModelVersion.objects.create(  # its round page says that the reward fell
        name="ppo-2",
        kind="ppo",
        parent=sft,
        checkpoint="/m/ppo",
        metrics={
            "auto_eval": {"rm_score_policy": -0.4, "rm_score_parent": 0.2, "prompts": 8, "split": "valid"}
        },
    )
    done_round = Round.objects.create(
        number=2,
        status=RoundStatus.SUCCEEDED,
        state={"done": ["export", "sft", "rm", "ppo", "generate", "batch"], "models": {"policy": policy.pk}},
        finished_at=timezone.now(),
    )
    prompts = [PromptFactory(split=Split.TEST) for _ in range(2)]
    evaluation = evaluation_batch_create(
        name="Eval",
        model_versions=[base, sft],
        outputs={p.pk: {"base": f"base says {p.pk}", "sft-1": f"sft says {p.pk}"} for p in prompts},
        status=Batch.Status.ACTIVE,
    )
    importing = Job.objects.create(  # its page polls the API for progress
        kind="prompt_import", status="running", progress_done=10, progress_total=40, upload_name="p.jsonl"
    )
    exported = Job.objects.create(kind="export", status="succeeded", snapshot=snapshot, created_by=rex)
    return {
        "ada": [
            "/",
            *(f"/assignments/{a.pk}/" for a in work),
            "/quality/",
            "/accounts/password/",
            "/accounts/tokens/",
            "/submissions/",
            f"/submissions/{done.pk}/",
        ],
        "boss": [
            "/accounts/team-tokens/",
            "/manage/batches/",
            "/manage/batches/new/",
            f"/manage/batches/{ranking.batch_id}/",
            "/manage/imports/",
            f"/manage/jobs/{importing.pk}/",
            "/manage/people/",
            "/quality/",
            f"/quality/labelers/{ada.pk}/",
            "/quality/gold/",
            f"/quality/gold/{ranking.batch_id}/",
            "/explore/rankings/",
            f"/explore/tasks/{ranked.pk}/",
        ],
        "rex": [
            "/manage/datasets/",
            f"/manage/jobs/{exported.pk}/",
            "/training/",
            "/training/runs/new/",
            f"/training/runs/{run.pk}/",
            f"/training/models/{sft.pk}/",
            f"/training/rounds/{rnd.pk}/",
            f"/training/rounds/{done_round.pk}/",
            "/training/evaluations/",
            f"/training/evaluations/{evaluation.pk}/",
            "/explore/demonstrations/",
            f"/explore/prompts/?q=prompt&split={Split.TEST}",
            f"/explore/prompts/{ranking.prompt_id}/",
        ],
        "root": [
            "/admin/",
            "/admin/labeling/batch/",
            f"/admin/labeling/batch/{ranking.batch_id}/change/",
            "/admin/audit/auditevent/",
            f"/admin/auth/user/{ada.pk}/change/",
            "/api/v1/docs/",
        ],
    }
