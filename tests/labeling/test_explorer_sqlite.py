"""The explorer on SQLite, as `make run`'s demo serves it: search is a plain substring match, agreement
and "too fast" come from the same SQL and Python rules, and every page answers."""

from tests.sqlite_demo import run_on_sqlite

SCRIPT = """
import json
import django

django.setup()
from django.core.management import call_command
from django.test import Client
from django.test.utils import setup_test_environment

setup_test_environment()  # responses carry their template context

call_command("migrate", verbosity=0)
from core.roles import ROLE_LABELER, ROLE_RESEARCHER
from tests.factories import BatchFactory, PromptFactory, UserFactory, ranking_task
from tests.labeling.explorer_world import rank

ada, bob = (UserFactory(username=n, roles=[ROLE_LABELER]) for n in ("ada", "bob"))
batch = BatchFactory(name="Demo")
calm = ranking_task(batch, k=3, prompt=PromptFactory(text="Explain photosynthesis"))
torn = ranking_task(batch, k=3, prompt=PromptFactory(text="Write a haiku"))
r = {
    "calm_ada": rank(calm, ada, "A>B>C", comment="clear"),
    "calm_bob": rank(calm, bob, "A>B>C"),
    "torn_ada": rank(torn, ada, "A>B>C"),
    "torn_bob": rank(torn, bob, "C>B>A", seconds=1),
}
for i in range(4):
    rank(ranking_task(batch, k=2), bob, "A>B", seconds=90)
client = Client()
client.force_login(UserFactory(username="rex", roles=[ROLE_RESEARCHER]))
names = {v.pk: k for k, v in r.items()}


def listed(**params):
    response = client.get("/explore/rankings/", params)
    assert response.status_code == 200, response.status_code
    return sorted(names.get(row.ranking.pk, "other") for row in response.context["rows"])


print(json.dumps({
    "search": listed(q="PHOTOSYNTHESIS"),
    "comment": listed(q="clear"),
    "agree": listed(agreement_min=100),
    "disagree": listed(agreement_max=0),
    "fast": listed(too_fast="yes"),
    "pages": [client.get(u).status_code for u in (
        "/explore/prompts/?q=haiku", "/explore/demonstrations/?q=x", f"/explore/tasks/{calm.pk}/",
        f"/explore/prompts/{calm.prompt_id}/", "/explore/rankings/?before=0",
    )],
}))
"""


def test_the_explorer_filters_and_searches_on_sqlite(tmp_path):
    out = run_on_sqlite(SCRIPT, tmp_path)
    assert out["search"] == ["calm_ada", "calm_bob"]
    assert out["comment"] == ["calm_ada"]
    assert out["agree"] == ["calm_ada", "calm_bob"]
    assert out["disagree"] == ["torn_ada", "torn_bob"]
    assert out["fast"] == ["torn_bob"]
    assert out["pages"] == [200] * 5
