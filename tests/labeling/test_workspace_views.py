"""The workspace pages through the test client: home, start, the three task pages, skip and drafts."""

import json
import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from labeling.handout.next import assignment_next
from labeling.models import Assignment, Batch, Demonstration, Prompt, Ranking
from labeling.services.tasks import prompt_task_create, ranking_task_create
from tests.factories import BatchFactory, CompletionFactory, PromptFactory, ranking_task

pytestmark = pytest.mark.django_db


def make_batch(kind, labelers, *, tasks=2, **kwargs):
    batch = BatchFactory(kind=kind, instructions="Be <b>kind</b> & precise.", **kwargs)
    batch.labelers.add(*labelers)
    for _ in range(tasks):
        if kind == Batch.Kind.RANKING:
            ranking_task(batch=batch, k=4)
        elif kind == Batch.Kind.DEMONSTRATION:
            prompt_task_create(batch=batch, prompt=PromptFactory())
        else:
            prompt_task_create(batch=batch)
    return batch


def start(client, batch):
    response = client.post(reverse("workspace-start", args=[batch.pk]))
    assert response.status_code == 302
    return response


def page_of(assignment):
    return reverse("workspace-assignment", args=[assignment.pk])


def assert_no_inline_script(html: str) -> None:
    for tag in re.findall(r"<script\b[^>]*>", html):
        assert "src=" in tag or 'type="application/json"' in tag, tag
    for tag in re.findall(r"<[a-zA-Z][^>]*>", html):  # escaped text holds no tags
        assert not re.search(r"\son[a-z]+\s*=", tag), f"inline event handler in {tag}"


def test_home_lists_my_batches_with_counts_and_a_start_button(client, labeler):
    make_batch(Batch.Kind.RANKING, [labeler], tasks=3, name="Round 1 ranking")
    BatchFactory(name="Someone else's").labelers.add()
    client.force_login(labeler)
    html = client.get("/").content.decode()
    assert "Round 1 ranking" in html and "Someone else" not in html
    assert re.search(r'class="tasks-left">3<', html)
    assert 'id="count-today">0<' in html
    assert "Start" in html
    assert_no_inline_script(html)


@pytest.mark.parametrize(
    "role_fixture, links", [("researcher", ["/manage/", "/training/"]), ("batch_admin", ["/manage/"])]
)
def test_home_links_other_roles_to_their_areas(client, request, role_fixture, links):
    client.force_login(request.getfixturevalue(role_fixture))
    html = client.get("/").content.decode()
    for link in links:
        assert f'href="{link}"' in html
    assert "Your batches" not in html


def test_start_opens_my_task_and_asking_again_gives_the_same(client, labeler):
    batch = make_batch(Batch.Kind.RANKING, [labeler])
    client.force_login(labeler)
    first = start(client, batch)["Location"]
    assert start(client, batch)["Location"] == first
    assert Assignment.objects.filter(labeler=labeler).count() == 1


def test_when_the_batch_is_done_for_me_i_am_told_so(client, labeler):
    batch = make_batch(Batch.Kind.PROMPT_WRITING, [labeler], tasks=1)
    client.force_login(labeler)
    response = client.post(
        page_of(assignment_next(labeler=labeler, batch=batch)),
        {
            "text": "Tell me a joke about owls.",
            "category": "generation",
            "source": "plain",
            "seconds_spent": "12",
        },
        follow=True,
    )
    assert response.redirect_chain[-1][0] == "/"
    assert "You are done with" in response.content.decode()


def test_writing_a_prompt_stores_it_and_opens_the_next_task(client, labeler):
    batch = make_batch(Batch.Kind.PROMPT_WRITING, [labeler], tasks=2)
    client.force_login(labeler)
    assignment = assignment_next(labeler=labeler, batch=batch)
    html = client.get(page_of(assignment)).content.decode()
    assert "Be &lt;b&gt;kind&lt;/b&gt; &amp; precise." in html  # instructions shown, escaped
    assert_no_inline_script(html)
    response = client.post(
        page_of(assignment),
        {
            "text": "Write a haiku about Mondays.",
            "category": "generation",
            "source": "few_shot",
            "seconds_spent": "33",
        },
    )
    nxt = Assignment.objects.get(labeler=labeler, status=Assignment.Status.ACTIVE)
    assert response["Location"] == page_of(nxt)
    prompt = Prompt.objects.get(author=labeler)
    assert (prompt.source, prompt.metadata["seconds_spent"]) == ("few_shot", 33)


def test_a_duplicate_prompt_is_refused_saying_only_that_a_similar_one_exists(client, labeler):
    """Whoever can type a prompt's first 200 characters learns that it exists: not its id, not its text
    (before, the page linked to the prompt and that link opened it whole)."""
    opening = "What is the capital of France? " + "Answer in one word, then explain. " * 6
    existing = PromptFactory(text=opening + "SECRET continuation nobody else may read.")
    batch = make_batch(Batch.Kind.PROMPT_WRITING, [labeler], tasks=1)
    client.force_login(labeler)
    assignment = assignment_next(labeler=labeler, batch=batch)
    response = client.post(
        page_of(assignment),
        {"text": opening.lower() + "my own ending", "category": "open_qa", "source": "plain"},
        follow=True,
    )
    assert response.redirect_chain == [(page_of(assignment), 303)]
    html = response.content.decode()
    assert "A similar prompt already exists" in html
    assert "my own ending" in html  # the labeler's text is kept
    assert (
        "SECRET" not in html
        and f"/prompts/{existing.pk}/" not in html
        and f"prompt {existing.pk}" not in html
    )
    assert Prompt.objects.count() == 1
    assert client.get(f"/prompts/{existing.pk}/").status_code == 404


def test_writing_a_demonstration_stores_text_and_time(client, labeler):
    batch = make_batch(Batch.Kind.DEMONSTRATION, [labeler], tasks=1)
    client.force_login(labeler)
    assignment = assignment_next(labeler=labeler, batch=batch)
    html = client.get(page_of(assignment)).content.decode()
    assert assignment.task.prompt.text in html
    client.post(page_of(assignment), {"text": "Here is my answer.", "seconds_spent": "75"})
    demo = Demonstration.objects.get()
    assert (demo.text, demo.seconds_spent, demo.author, demo.assignment_id) == (
        "Here is my answer.",
        75,
        labeler,
        assignment.pk,
    )


def test_an_empty_demonstration_is_refused(client, labeler):
    assignment = assignment_next(labeler=labeler, batch=make_batch(Batch.Kind.DEMONSTRATION, [labeler]))
    client.force_login(labeler)
    response = client.post(page_of(assignment), {"text": "   ", "seconds_spent": "5"})
    assert response.status_code == 303 and Demonstration.objects.count() == 0
    assert "This field is required." in client.get(page_of(assignment)).content.decode()


def ranking_post(assignment, tiers, likert=6, **extra):
    data = {"tiers": json.dumps(tiers), "seconds_spent": "41", "comment": "", **extra}
    for cid in assignment.display_order:
        if likert is not None:
            data[f"likert-{cid}"] = str(likert)
    return data


def test_ranking_page_shows_outputs_in_my_remembered_order_and_stores_the_ranking(client, labeler):
    batch = make_batch(Batch.Kind.RANKING, [labeler], tasks=2)
    client.force_login(labeler)
    assignment = assignment_next(labeler=labeler, batch=batch)
    html = client.get(page_of(assignment)).content.decode()
    positions = [html.index(f'id="output-{cid}"') for cid in assignment.display_order]
    assert positions == sorted(positions)
    assert_no_inline_script(html)
    a, b, c, d = assignment.display_order
    data = ranking_post(assignment, [[b], [a, c], [d]])
    data[f"flag-{d}"] = ["hallucination", "harmful_advice"]
    response = client.post(page_of(assignment), data)
    assert response.status_code == 302
    ranking = Ranking.objects.get(assignment=assignment)
    assert ranking.tiers == [[b], [a, c], [d]] and ranking.seconds_spent == 41
    flags = ranking.ratings.get(completion_id=d).flags
    assert flags["hallucination"] and flags["harmful_advice"] and not flags["opinion"]
    assert ranking.comparisons.count() == 5


def test_a_double_submitted_ranking_is_stored_once_and_answers_success(client, labeler):
    batch = make_batch(Batch.Kind.RANKING, [labeler], tasks=2)
    client.force_login(labeler)
    assignment = assignment_next(labeler=labeler, batch=batch)
    data = ranking_post(assignment, [assignment.display_order])
    first = client.post(page_of(assignment), data)
    second = client.post(page_of(assignment), data)
    assert first.status_code == second.status_code == 302
    assert Ranking.objects.count() == 1


def test_a_ranking_without_scores_or_with_a_missing_output_is_refused(client, labeler):
    assignment = assignment_next(labeler=labeler, batch=make_batch(Batch.Kind.RANKING, [labeler]))
    client.force_login(labeler)
    ids = assignment.display_order
    no_scores = client.post(page_of(assignment), ranking_post(assignment, [ids], likert=None), follow=True)
    assert no_scores.redirect_chain[0][1] == 303 and "quality score" in no_scores.content.decode()
    missing = client.post(page_of(assignment), ranking_post(assignment, [ids[:3]]), follow=True)
    assert missing.redirect_chain[0][1] == 303 and "missing" in missing.content.decode()
    unusable = client.post(
        page_of(assignment), ranking_post(assignment, [ids], likert=None, all_unusable="on")
    )
    assert unusable.status_code == 302
    assert Ranking.objects.get().all_unusable


def test_output_text_is_escaped(client, labeler):
    batch = BatchFactory()
    batch.labelers.add(labeler)
    prompt = PromptFactory(text="<b>bold?</b>")
    nasty = [
        CompletionFactory(prompt=prompt, text=t)
        for t in ("<script>alert(1)</script>", '<img src=x onerror="alert(2)">', "plain", "**markdown**")
    ]
    ranking_task_create(batch=batch, prompt=prompt, completions=nasty)
    client.force_login(labeler)
    html = client.get(page_of(assignment_next(labeler=labeler, batch=batch))).content.decode()
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<img src=x" not in html and "&lt;img src=x onerror=" in html
    assert "<b>bold?</b>" not in html
    assert_no_inline_script(html)


def test_a_late_ranking_on_a_task_given_away_is_refused_with_a_message(client, labeler, other_labeler):
    batch = make_batch(Batch.Kind.RANKING, [labeler, other_labeler], tasks=1)
    mine = assignment_next(labeler=labeler, batch=batch)
    Assignment.objects.filter(pk=mine.pk).update(lease_expires_at=timezone.now() - timedelta(minutes=1))
    assignment_next(labeler=other_labeler, batch=batch)
    client.force_login(labeler)
    response = client.post(page_of(mine), ranking_post(mine, [mine.display_order]), follow=True)
    assert "given to another labeler" in response.content.decode()
    assert Ranking.objects.count() == 0
    page = client.get(page_of(mine), follow=True)
    assert page.redirect_chain[-1][0] == "/" and "given to another labeler" in page.content.decode()


def test_skip_needs_a_reason_then_opens_the_next_task(client, labeler):
    batch = make_batch(Batch.Kind.RANKING, [labeler], tasks=2)
    client.force_login(labeler)
    assignment = assignment_next(labeler=labeler, batch=batch)
    url = reverse("workspace-skip", args=[assignment.pk])
    assert client.post(url, {"reason": ""})["Location"] == page_of(assignment)
    response = client.post(url, {"reason": "Not in a language I read"})
    assignment.refresh_from_db()
    assert (assignment.status, assignment.skip_reason) == ("skipped", "Not in a language I read")
    nxt = Assignment.objects.get(labeler=labeler, status="active")
    assert response["Location"] == page_of(nxt) and nxt.task_id != assignment.task_id


def test_a_finished_assignment_page_sends_me_home(client, labeler):
    assignment = assignment_next(labeler=labeler, batch=make_batch(Batch.Kind.RANKING, [labeler]))
    client.force_login(labeler)
    client.post(reverse("workspace-skip", args=[assignment.pk]), {"reason": "unclear"})
    assert client.get(page_of(assignment))["Location"] == "/"


def test_the_draft_endpoint_keeps_work_until_submitted(client, labeler):
    batch = make_batch(Batch.Kind.DEMONSTRATION, [labeler], tasks=2)
    assignment = assignment_next(labeler=labeler, batch=batch)
    client.force_login(labeler)
    url = reverse("workspace-draft", args=[assignment.pk])
    response = client.post(
        url, {"draft": {"text": "half a thought", "seconds": 9}}, content_type="application/json"
    )
    assert response.status_code == 200 and "lease_expires_at" in response.json()
    html = client.get(page_of(assignment)).content.decode()
    assert '"half a thought"' in html  # handed to the page's script through json_script
    assert client.post(url, "nope", content_type="application/json").status_code == 400
    assert client.post(url, {"draft": [1]}, content_type="application/json").status_code == 400
    assert client.get(url).status_code == 405
    client.post(page_of(assignment), {"text": "final", "seconds_spent": "10"})
    assert Assignment.objects.get(pk=assignment.pk).draft == {}
    late = client.post(url, {"draft": {"text": "again"}}, content_type="application/json")
    assert late.status_code == 409


def test_a_paused_batch_lets_me_finish_my_task_but_gives_no_new_one(client, labeler):
    batch = make_batch(Batch.Kind.DEMONSTRATION, [labeler], tasks=2)
    assignment = assignment_next(labeler=labeler, batch=batch)
    Batch.objects.filter(pk=batch.pk).update(status=Batch.Status.PAUSED)
    client.force_login(labeler)
    assert "is paused" in client.get(page_of(assignment)).content.decode()
    response = client.post(
        page_of(assignment), {"text": "finished anyway", "seconds_spent": "3"}, follow=True
    )
    assert Demonstration.objects.count() == 1
    assert "hands out no new tasks" in response.content.decode()


def test_a_refused_submission_redirects_and_keeps_the_work_as_the_draft(client, labeler):
    """Post/Redirect/Get: a reload after a refusal never posts the old form again (it used to overwrite the
    draft typed since); the work sent becomes the server draft."""
    assignment = assignment_next(labeler=labeler, batch=make_batch(Batch.Kind.RANKING, [labeler]))
    client.force_login(labeler)
    data = ranking_post(assignment, [assignment.display_order[:2]], comment="kept, not lost")
    response = client.post(page_of(assignment), data)
    assert response.status_code == 303 and response["Location"] == page_of(assignment)
    assignment.refresh_from_db()
    assert assignment.draft["comment"] == "kept, not lost" and assignment.draft["seconds"] == 41
    first, again = client.get(page_of(assignment)), client.get(page_of(assignment))
    assert "missing" in first.content.decode() and "missing" not in again.content.decode()
    assert not Ranking.objects.exists()
