"""An item's page: a ranking task with every labeler's ranking, scores, flags, comment, time, the gold
answer and the agreement between the labelers; a prompt with its demonstrations and tasks. Untrusted
texts are rendered through the Markdown sanitizer, never as HTML."""

import html as markup
import re

import pytest
from django.urls import reverse

from core.roles import ROLE_BATCH_ADMIN, ROLE_LABELER
from labeling.models import Batch, Demonstration, Task
from tests.factories import BatchFactory, PromptFactory, UserFactory, ranking_task
from tests.labeling.explorer_world import letters, rank

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin(client):
    client.force_login(UserFactory(username="boss", roles=[ROLE_BATCH_ADMIN]))
    return client


def text(response) -> str:
    return re.sub(r"\s+", " ", markup.unescape(re.sub(r"<[^>]+>", " ", response.content.decode())))


def test_a_ranking_task_shows_every_label_and_the_agreement(admin):
    task = ranking_task(k=4, prompt=PromptFactory(text="Name **four** rivers"))
    ids = letters(task)
    Task.objects.filter(pk=task.pk).update(
        is_gold=True, gold_tiers=[[ids["A"]], [ids["B"]], [ids["C"], ids["D"]]]
    )
    ada, bob = (UserFactory(username=n, roles=[ROLE_LABELER]) for n in ("ada", "bob"))
    rank(
        task, ada, "A>B>C>D", seconds=95, likert=6, flags={"C": ["hallucination"]}, comment="D is *off topic*"
    )
    rank(task, bob, "B>A>C=D", seconds=40, likert=3)

    page = text(admin.get(reverse("explore:task", kwargs={"task_id": task.pk})))

    assert "ada: A > B > C > D" in page and "bob: B > A > C = D" in page
    assert "Gold answer: C = D" not in page and "Gold answer: A > B > C = D" in page
    assert "95 s" in page and "40 s" in page
    assert "Hallucination (makes up information)" in page
    assert "off topic" in page
    # ada and bob both order 5 of the 6 pairs strictly (bob ties C and D), and agree on 4 (not A-B).
    assert "Pairwise agreement: 80%" in page and "4 of 5 output pairs" in page
    # Against the gold answer (A > B > C = D): ada orders 5 pairs strictly, gold 5, 5 compared, all agree.
    assert "gold accuracy 100% (5 of 5 pairs)" in page
    assert "gold accuracy 80% (4 of 5 pairs)" in page
    assert "0% the same" in page  # Likert: 6 against 3 on every output


def test_the_task_page_renders_texts_as_sanitized_markdown(admin):
    task = ranking_task(k=2, prompt=PromptFactory(text="Say **hi** <script>alert('x')</script>"))
    rank(
        task, UserFactory(username="ada", roles=[ROLE_LABELER]), "A>B", comment="<img src=x onerror=alert(1)>"
    )
    html = admin.get(reverse("explore:task", kwargs={"task_id": task.pk})).content.decode()
    assert "<strong>hi</strong>" in html
    assert "<script>alert" not in html and "<img" not in html
    assert "&lt;script&gt;alert" in html  # shown as text (the raw-text view), never run


def test_a_task_with_one_ranking_says_agreement_needs_two(admin):
    task = ranking_task(k=2)
    rank(task, UserFactory(username="ada", roles=[ROLE_LABELER]), "A>B")
    page = text(admin.get(reverse("explore:task", kwargs={"task_id": task.pk})))
    assert "Agreement needs two labelers' rankings of this task; it has 1." in page


def test_a_task_that_is_not_a_ranking_task_is_404(admin):
    batch = BatchFactory(kind=Batch.Kind.DEMONSTRATION)
    task = Task.objects.create(batch=batch, prompt=PromptFactory())
    assert admin.get(reverse("explore:task", kwargs={"task_id": task.pk})).status_code == 404
    assert admin.get(reverse("explore:task", kwargs={"task_id": 10**9})).status_code == 404


def test_a_prompt_shows_its_demonstrations_and_its_tasks_with_their_agreement(admin):
    prompt = PromptFactory(text="Describe a *cloud*")
    task = ranking_task(k=2, prompt=prompt)
    ada, bob = (UserFactory(username=n, roles=[ROLE_LABELER]) for n in ("ada", "bob"))
    rank(task, ada, "A>B")
    rank(task, bob, "B>A")
    Demonstration.objects.create(prompt=prompt, author=ada, text="A cloud is **water**.", seconds_spent=77)
    response = admin.get(reverse("explore:prompt", kwargs={"pk": prompt.pk}))
    html, page = response.content.decode(), text(response)
    assert "<em>cloud</em>" in html and "<strong>water</strong>" in html
    assert "77 s" in page
    assert reverse("explore:task", kwargs={"task_id": task.pk}) in html
    assert re.search(rf"Task {task.pk} .*? 2 0%", page)  # two rankings, agreeing on no pair
    assert admin.get(reverse("explore:prompt", kwargs={"pk": 10**9})).status_code == 404
