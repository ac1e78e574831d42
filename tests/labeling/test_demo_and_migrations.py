import io

import pytest
from django.core.management import call_command

from core.roles import is_batch_admin, is_labeler, is_researcher
from labeling.models import Assignment, Batch, Completion, Demonstration, Prompt, Task

pytestmark = pytest.mark.django_db


def table_counts():
    return [m.objects.count() for m in (Prompt, Completion, Demonstration, Batch, Task, Assignment)]


def test_load_demo_is_idempotent(django_user_model):
    call_command("load_demo", stdout=io.StringIO())
    first = table_counts()
    call_command("load_demo", stdout=io.StringIO())
    assert table_counts() == first
    assert django_user_model.objects.count() == 4
    ranking = Batch.objects.get(kind=Batch.Kind.RANKING)
    assert ranking.tasks.count() >= 5 and all(t.k == 4 for t in ranking.tasks.all())
    assert len(set(Prompt.objects.values_list("category", flat=True))) >= 4


def test_demo_users_can_log_in_with_documented_passwords(client):
    call_command("load_demo", stdout=io.StringIO())
    from labeling.demo import DEMO_USERS

    for username, password, _, _ in DEMO_USERS:
        assert client.login(username=username, password=password), username


def test_each_demo_user_has_their_role(django_user_model):
    call_command("load_demo", stdout=io.StringIO())
    assert is_labeler(django_user_model.objects.get(username="labeler"))
    assert is_batch_admin(django_user_model.objects.get(username="admin"))
    assert is_researcher(django_user_model.objects.get(username="researcher"))
    assert not is_researcher(django_user_model.objects.get(username="labeler"))


def test_add_role_command(django_user_model):
    user = django_user_model.objects.create_user("newbie", password="x-long-password-1")
    call_command("add_role", "newbie", "researcher", stdout=io.StringIO())
    assert is_researcher(django_user_model.objects.get(pk=user.pk))


def test_migrations_are_complete():
    out = io.StringIO()
    call_command("makemigrations", "--check", "--dry-run", stdout=out)
    assert "No changes detected" in out.getvalue()


def test_admin_shows_the_demo_batch(client):
    call_command("load_demo", stdout=io.StringIO())
    assert client.login(username="admin", password="admin-demo-pass")
    # The demo admin is staff; batch admins get the labeling models in the Django admin.
    response = client.get("/admin/labeling/batch/")
    assert response.status_code == 200
    assert b"Demo: rank outputs (round 0)" in response.content


def test_the_demo_rankings_count_at_once_so_a_round_can_train_straight_away(settings, tmp_path):
    from labeling.models import Ranking
    from labeling.services.exports import snapshot_create

    settings.MEDIA_ROOT = str(tmp_path)
    call_command("load_demo", stdout=io.StringIO())
    assert Ranking.objects.count() == Task.objects.filter(batch__kind=Batch.Kind.RANKING).count()
    assert snapshot_create(kind="rm_rankings", filters={}).row_count == Ranking.objects.count()


def test_the_demo_base_model_learns_every_prompt_with_its_good_outputs_but_never_the_echo():
    from labeling.demo import DEMO_PROMPTS, demo_texts

    texts = demo_texts()
    for _, prompt, demonstration in DEMO_PROMPTS:
        assert f"{prompt}\n{demonstration}" in texts
        assert not any(t.startswith(f"{prompt}\n{prompt}") for t in texts)
    assert len(texts) == 3 * len(DEMO_PROMPTS)
