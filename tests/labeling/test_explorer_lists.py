"""The explorer's lists: each filter picks exactly the rows it names, full-text search finds words in the
prompt, the outputs and the comment, pages follow ids both ways, and a bad filter is refused by name."""

import pytest
from django.urls import reverse

from core.roles import ROLE_LABELER, ROLE_RESEARCHER
from labeling.models import Demonstration, Task
from labeling.selectors import explorer_paging
from labeling.vocab import Category, Split
from tests.factories import BatchFactory, CompletionFactory, PromptFactory, UserFactory, ranking_task
from tests.labeling.explorer_world import rank

pytestmark = pytest.mark.django_db


@pytest.fixture
def reader(client):
    client.force_login(UserFactory(username="rex", roles=[ROLE_RESEARCHER]))
    return client


@pytest.fixture
def world():
    """Two batches; ada and bob agree on task `calm`, disagree on task `torn`; cy is fast on a gold task."""
    ada, bob, cy = (UserFactory(username=n, roles=[ROLE_LABELER]) for n in ("ada", "bob", "cy"))
    north, south = BatchFactory(name="North"), BatchFactory(name="South")
    calm = ranking_task(north, k=3, prompt=PromptFactory(text="Explain photosynthesis to a child"))
    torn = ranking_task(
        north, k=3, prompt=PromptFactory(text="Write a haiku about autumn", category=Category.CHAT)
    )
    gold = ranking_task(south, k=3, prompt=PromptFactory(text="Summarize the tax code"))
    Task.objects.filter(pk=gold.pk).update(is_gold=True, gold_tiers=[[c] for c in _ids(gold)])
    CompletionFactory(prompt=gold.prompt, text="unused output")
    out = {
        "calm_ada": rank(calm, ada, "A>B>C", comment="clear and kind"),
        "calm_bob": rank(calm, bob, "A>B>C"),
        "torn_ada": rank(torn, ada, "A>B>C", flags={"B": ["hallucination"]}),
        "torn_bob": rank(torn, bob, "C>B>A"),
    }
    for i in range(5):  # South's median time is 60 s; cy's 5 s ranking is too fast
        task = ranking_task(south, k=2)
        out[f"south_{i}"] = rank(task, bob, "A>B", seconds=60)
    out["fast"] = rank(gold, cy, "A>B>C", seconds=5)
    return out


def _ids(task):
    return list(task.task_completions.order_by("position").values_list("completion_id", flat=True))


def shown(client, kind="rankings", **params) -> set[int]:
    response = client.get(reverse(f"explore:{kind}"), params)
    assert response.status_code == 200, response.content[:2000]
    return set(
        response.context["page"].rows and [getattr(r, "ranking", r).pk for r in response.context["rows"]]
    )


def pks(world, *names) -> set[int]:
    return {world[n].pk for n in names}


def test_without_filters_every_ranking_is_listed(reader, world):
    assert shown(reader) == {r.pk for r in world.values()}


def test_each_ranking_filter_picks_exactly_its_rows(reader, world):
    north = world["calm_ada"].task.batch
    assert shown(reader, batch=north.pk) == pks(world, "calm_ada", "calm_bob", "torn_ada", "torn_bob")
    assert shown(reader, labeler="ada") == pks(world, "calm_ada", "torn_ada")
    assert shown(reader, category=Category.CHAT) == pks(world, "torn_ada", "torn_bob")
    assert shown(reader, agreement_min=100) == pks(world, "calm_ada", "calm_bob")
    assert shown(reader, agreement_max=0) == pks(world, "torn_ada", "torn_bob")
    assert shown(reader, flag="hallucination") == pks(world, "torn_ada")
    assert shown(reader, too_fast="yes") == pks(world, "fast")
    assert shown(reader, gold="yes") == pks(world, "fast")
    assert shown(reader, labeler="bob", batch=north.pk, agreement_min=50) == pks(world, "calm_bob")


def test_split_filter_follows_the_prompt(reader, world):
    split = world["calm_ada"].task.prompt.split
    expected = {r.pk for r in world.values() if r.task.prompt.split == split}
    assert shown(reader, split=split) == expected
    other = next(s for s in Split.values if s != split)
    assert shown(reader, split=other) == {r.pk for r in world.values() if r.task.prompt.split == other}


def test_search_finds_the_prompt_an_output_and_a_comment(reader, world):
    assert shown(reader, q="photosynthesis") == pks(world, "calm_ada", "calm_bob")
    assert shown(reader, q="kind") == pks(world, "calm_ada")  # the comment "clear and kind"
    output = world["torn_bob"].task.task_completions.first().completion
    assert shown(reader, q=output.text) == pks(world, "torn_ada", "torn_bob")
    assert shown(reader, q="unused output") == set()  # an output of the prompt that no task shows


def test_prompts_and_demonstrations_filter_and_search(reader, world):
    calm = world["calm_ada"].task
    ada = world["calm_ada"].labeler
    Demonstration.objects.create(prompt=calm.prompt, author=ada, text="Plants eat sunlight, roughly.")
    assert shown(reader, "prompts", q="haiku") == {world["torn_ada"].task.prompt_id}
    assert shown(reader, "prompts", gold="yes") == {world["fast"].task.prompt_id}
    assert shown(reader, "prompts", batch=calm.batch_id) == {calm.prompt_id, world["torn_ada"].task.prompt_id}
    assert len(shown(reader, "demonstrations", q="sunlight")) == 1
    assert shown(reader, "demonstrations", labeler="bob") == set()


def test_pages_go_older_and_newer_by_id_and_the_oldest_page_is_one_link(reader, world, monkeypatch):
    monkeypatch.setattr(explorer_paging, "PAGE_SIZE", 4)
    newest_first = sorted((r.pk for r in world.values()), reverse=True)  # 10 rankings
    first = reader.get(reverse("explore:rankings")).context["page"]
    assert [r.pk for r in first.rows] == newest_first[:4] and first.newer is None
    second = reader.get(reverse("explore:rankings"), {"after": first.older}).context["page"]
    assert [r.pk for r in second.rows] == newest_first[4:8]
    back = reader.get(reverse("explore:rankings"), {"before": second.newer}).context["page"]
    assert [r.pk for r in back.rows] == newest_first[:4] and back.newer is None
    oldest = reader.get(reverse("explore:rankings"), {"before": 0}).context["page"]
    assert [r.pk for r in oldest.rows] == newest_first[-4:] and oldest.older is None
    assert oldest.newer == newest_first[-4]


def test_the_page_says_how_many_match_and_counts_no_further_than_its_cap(reader, world, monkeypatch):
    response = reader.get(reverse("explore:rankings"), {"labeler": "bob"})
    assert b"7 rankings match" in response.content
    monkeypatch.setattr(explorer_paging, "COUNT_CAP", 3)
    response = reader.get(reverse("explore:rankings"), {"labeler": "bob"})
    assert b"more than 3 rankings match" in response.content


@pytest.mark.parametrize(
    "params, field",
    [
        ({"agreement_min": "150"}, "agreement_min"),
        ({"agreement_min": "80", "agreement_max": "20"}, "agreement_max"),
        ({"labeler": "nobody-by-that-name"}, "labeler"),
        ({"flag": "purple"}, "flag"),
        ({"after": "x"}, "after"),
    ],
)
def test_a_bad_filter_is_refused_naming_it(reader, world, params, field):
    response = reader.get(reverse("explore:rankings"), params)
    assert response.status_code == 400
    assert field in response.context["form"].errors
    assert "page" not in response.context


def test_texts_are_escaped_in_the_lists(reader, world):
    PromptFactory(text="<script>alert(1)</script> escaped?")
    response = reader.get(reverse("explore:prompts"))
    assert b"<script>alert(1)" not in response.content
    assert b"&lt;script&gt;alert(1)" in response.content


def test_postgres_search_matches_word_forms_and_exclusions(reader, world):
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("full-text search is Postgres'; SQLite matches substrings")
    assert shown(reader, "prompts", q="explains photosynthesis") == {world["calm_ada"].task.prompt_id}
    everything = shown(reader, "prompts")
    assert shown(reader, "prompts", q="-haiku") == everything - {world["torn_ada"].task.prompt_id}
