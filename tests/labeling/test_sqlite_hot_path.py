"""The hand-out and submit on SQLite, the local demo's database (`make run`), in a fresh interpreter: the
hot paths' SQL (core.rows, labeling.handout, services.rankings) and the migrations' SQLite branches
run there too. The rest of the suite runs on Postgres."""

from pathlib import Path

from tests.sqlite_demo import run_on_sqlite

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import json
import django
django.setup()
from datetime import datetime
from django.contrib.auth import get_user_model
from django.core.management import call_command
from knox.models import AuthToken
from rest_framework.test import APIClient
from labeling.models import Assignment, Batch, Ranking
from core.roles import ROLE_LABELER

call_command("migrate", verbosity=0)
call_command("load_demo", verbosity=0)
batch = Batch.objects.filter(kind="ranking", status="active").first()
users = list(get_user_model().objects.filter(groups__name=ROLE_LABELER).order_by("pk"))
batch.labelers.add(*users)
out = {"submits": [], "nothing_left": 0}
for user in users:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token " + AuthToken.objects.create(user=user)[1])
    while True:
        answer = client.post(f"/api/v1/tasks/next/{batch.pk}/")
        if answer.status_code == 204:
            out["nothing_left"] += 1
            break
        assert answer.status_code == 200, answer.content
        shown = answer.json()
        ids = [c["id"] for c in shown["completions"]]
        submit = client.post(
            f"/api/v1/assignments/{shown['id']}/submit/",
            {"tiers": [[i] for i in ids], "ratings": {str(i): {"likert": 5} for i in ids}, "comment": "fine"},
            format="json",
        )
        assert submit.status_code == 201, submit.content
        assignment = Assignment.objects.get(pk=shown["id"])
        assert isinstance(assignment.finished_at, datetime) and assignment.finished_at.tzinfo is not None
        assert assignment.draft == {} and sorted(assignment.display_order) == sorted(ids)
        out["submits"].append([user.pk, shown["task"], submit.json()["ranking"], len(ids)])
out["rankings"] = Ranking.objects.filter(task__batch=batch).count()
out["overlap"] = batch.overlap
out["tasks"] = batch.tasks.count()
out["labelers"] = len(users)
print(json.dumps(out))
"""


def test_labelers_rank_a_demo_batch_to_the_end_on_sqlite(tmp_path):
    out = run_on_sqlite(SCRIPT, tmp_path)
    submits = out["submits"]
    assert out["nothing_left"] == out["labelers"] >= 2  # each asked until nothing was left
    per_task = {}
    for user, task, ranking, k in submits:
        assert k >= 2 and ranking is not None
        per_task.setdefault(task, set()).add(user)
    assert all(len(users) <= out["overlap"] for users in per_task.values())  # never past the overlap
    # The demo's labelers finish the batch: every task has its overlap of rankings, the demo's included.
    assert out["rankings"] == out["tasks"] * out["overlap"]
    assert len({r for _, _, r, _ in submits}) == len(submits)  # one ranking per submit
