"""Every text a labeler writes has a cap, the one its text box on the page has (maxlength): the services
refuse one character more, naming the field, whatever the way in (page, API, a script). Before, only the
pages' forms had caps and the API stored a 2.4 MB comment."""

import re

import pytest

from core.errors import ServiceError
from labeling.handout.next import assignment_next
from labeling.handout.work import SKIP_REASON_MAX_CHARS, assignment_save_draft
from labeling.models import Assignment, Batch, Demonstration, Prompt, Ranking
from labeling.ranking_rules import COMMENT_MAX_CHARS
from labeling.services.demonstrations import DEMONSTRATION_MAX_CHARS, demonstration_submit
from labeling.services.prompt_writing import prompt_submit
from labeling.services.prompts import PROMPT_MAX_CHARS
from labeling.services.rankings import ranking_submit
from labeling.services.tasks import prompt_task_create
from tests.factories import BatchFactory, PromptFactory, ranking_task, scored

pytestmark = pytest.mark.django_db


def live(labeler, kind: str) -> Assignment:
    batch = BatchFactory(kind=kind)
    batch.labelers.add(labeler)
    if kind == Batch.Kind.RANKING:
        ranking_task(batch=batch, k=2)
    else:
        prompt_task_create(batch=batch, prompt=PromptFactory() if kind == Batch.Kind.DEMONSTRATION else None)
    return assignment_next(labeler=labeler, batch=batch)


def write(assignment: Assignment, text: str):
    """Submit `text` as what the assignment's kind of task asks the labeler to write."""
    if assignment.batch.kind == Batch.Kind.RANKING:
        ids = list(assignment.task.task_completions.values_list("completion_id", flat=True))
        return ranking_submit(assignment=assignment, tiers=[ids], comment=text, ratings=scored([ids]))
    if assignment.batch.kind == Batch.Kind.DEMONSTRATION:
        return demonstration_submit(assignment=assignment, text=text, seconds_spent=1)
    return prompt_submit(assignment=assignment, text=text, category="generation", source="plain")


CAPS = [  # (kind, cap, field, what is stored)
    (Batch.Kind.RANKING, COMMENT_MAX_CHARS, "comment", Ranking),
    (Batch.Kind.DEMONSTRATION, DEMONSTRATION_MAX_CHARS, "text", Demonstration),
    (Batch.Kind.PROMPT_WRITING, PROMPT_MAX_CHARS, "text", Prompt),
]


@pytest.mark.parametrize("kind, cap, field, stored", CAPS, ids=[c[0] for c in CAPS])
def test_a_text_one_character_past_its_cap_is_refused_naming_the_field(labeler, kind, cap, field, stored):
    assignment = live(labeler, kind)
    with pytest.raises(ServiceError) as refused:
        write(assignment, "é" + "x" * cap)
    assert refused.value.field == field and f"{cap:,} characters" in refused.value.message
    assert not stored.objects.exists()
    assert write(assignment, "é" + "x" * (cap - 1)).pk  # at the cap: stored


def test_the_pages_text_boxes_have_the_services_caps(client, labeler):
    client.force_login(labeler)
    for kind, cap, field, _ in CAPS:
        html = client.get(f"/assignments/{live(labeler, kind).pk}/").content.decode()
        assert re.search(rf'<textarea name="{field}"[^>]* maxlength="{cap}"', html), kind
        assert re.search(rf'<textarea name="reason"[^>]* maxlength="{SKIP_REASON_MAX_CHARS}"', html), kind


def test_a_draft_holds_the_longest_demonstration_in_any_script(labeler):
    """Drafts are measured in UTF-8 bytes, with room for a demonstration at its cap in characters of up to
    4 bytes (before, 100 kB of ASCII-escaped JSON: a draft of 17,000 non-Latin characters was refused)."""
    assignment = live(labeler, Batch.Kind.DEMONSTRATION)
    text = "語" * DEMONSTRATION_MAX_CHARS
    assignment_save_draft(assignment=assignment, draft={"text": text, "seconds": 3600})
    assert Assignment.objects.get(pk=assignment.pk).draft["text"] == text


def test_a_page_post_past_the_body_limit_is_a_plain_400_and_stores_nothing(client, labeler, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000  # Django's limit on a form body (2.5 MiB unless set)
    assignment = live(labeler, Batch.Kind.DEMONSTRATION)
    client.force_login(labeler)
    response = client.post(f"/assignments/{assignment.pk}/", {"text": "x" * 20_000})
    assert response.status_code == 400 and not Demonstration.objects.exists()


def test_a_draft_past_the_body_limit_is_a_json_413(client, labeler, settings):
    """The page's script reads every answer of the draft endpoint as JSON (before: Django's HTML 400)."""
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    assignment = live(labeler, Batch.Kind.DEMONSTRATION)
    client.force_login(labeler)
    response = client.post(
        f"/assignments/{assignment.pk}/draft/",
        {"draft": {"text": "x" * 20_000}},
        content_type="application/json",
    )
    assert response.status_code == 413 and response.json()["code"] == "too_large"
    assert Assignment.objects.get(pk=assignment.pk).draft == {}
