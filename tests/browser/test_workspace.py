"""A labeler in a real browser: writes a prompt, writes a demonstration, ranks K=4 outputs by drag and drop
and by keyboard alone, and what lands in Postgres is what was done. Output text never runs as HTML."""

import re

import pytest

from labeling.models import Assignment, Batch, Comparison, Demonstration, Prompt, Ranking
from labeling.services.tasks import prompt_task_create, ranking_task_create
from tests.factories import BatchFactory, CompletionFactory, PromptFactory, ranking_task

from .conftest import log_in, wait_for_home
from .png import distinct_colours

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


@pytest.fixture(autouse=True)
def stored_at_once(settings):
    """No undo window: what is submitted is written at once (tests/browser/test_undo.py has the window)."""
    settings.LABELING_UNDO_SECONDS = 0


def batch_for(labeler, kind, **kwargs):
    batch = BatchFactory(kind=kind, overlap=1, **kwargs)
    batch.labelers.add(labeler)
    return batch


def start(page, batch_name: str) -> None:
    page.goto("/")
    page.locator(".batch-card", has_text=batch_name).get_by_role("button", name="Start").click()
    page.wait_for_url(re.compile(r"/assignments/\d+/$"))


def letters_to_ids(page) -> dict[str, int]:
    chips = page.locator(".rk-chip")
    return {
        chips.nth(i).get_attribute("data-letter"): int(chips.nth(i).get_attribute("data-id"))
        for i in range(chips.count())
    }


def drag(page, source, target) -> None:
    """Mouse down on the card, move in small steps (as a touchpad does), release over the target."""
    source.scroll_into_view_if_needed()
    box, goal = source.bounding_box(), target.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] / 2 + 8, box["y"] + box["height"] / 2 + 8, steps=4)
    page.wait_for_selector("body.rk-dragging")  # the drag has started: the gaps open up, in 120 ms (app.css)
    page.wait_for_timeout(150)  # aim at the page the labeler sees once they have
    goal = target.bounding_box()
    x, y = goal["x"] + goal["width"] / 2, goal["y"] + goal["height"] / 2
    page.mouse.move(x, y, steps=12)
    page.mouse.move(x + 2, y + 1, steps=3)  # hover a moment over the target, as a hand does
    page.mouse.up()
    page.wait_for_selector("body:not(.rk-dragging)")


TIERS_JS = """() => [...document.querySelectorAll('.rk-tier')].map(
    row => [...row.querySelectorAll('.rk-chip')].map(chip => chip.dataset.letter).sort())"""


def assert_tiers(page, expected: list[list[str]]) -> None:
    """The page shows these tiers (letters sorted within a tier), waiting up to 5 s for it to redraw."""
    # Polled from Python: page.wait_for_function compiles its predicate with eval, which the page's CSP
    # (no 'unsafe-eval') refuses; page.evaluate goes through the debugger protocol, which the CSP allows.
    for _ in range(50):
        if page.evaluate(TIERS_JS) == expected:
            break
        page.wait_for_timeout(100)
    assert page.evaluate(TIERS_JS) == expected


def test_a_labeler_writes_a_prompt_then_a_demonstration(watched, labeler):
    page = watched.page
    existing = PromptFactory(text="Explain photosynthesis to a ten year old.")
    prompt_task_create(
        batch=batch_for(
            labeler, Batch.Kind.PROMPT_WRITING, name="Write prompts", instructions="Vary the use cases."
        )
    )
    demo_batch = batch_for(labeler, Batch.Kind.DEMONSTRATION, name="Write demos")
    prompt_task_create(batch=demo_batch, prompt=PromptFactory(text="Name three <b>primary</b> colours."))
    log_in(page, "ada")

    start(page, "Write prompts")
    assert "Vary the use cases." in page.locator(".ws-side").inner_text()
    page.fill("#id_text", "explain photosynthesis to a ten year old.")  # a duplicate
    page.select_option("#id_category", "open_qa")
    page.get_by_label("Few-shot").check()
    page.click("#ws-submit")
    errors = page.locator("#text-errors")
    assert "A similar prompt already exists" in errors.inner_text()  # that it exists, not which one
    assert page.locator(f'a[href="/prompts/{existing.pk}/"]').count() == 0
    page.fill("#id_text", "Write a limerick about a cat who learns to code.")
    page.select_option("#id_category", "generation")
    page.get_by_label("Few-shot").check()
    page.click("#ws-submit")
    wait_for_home(page)
    assert "You are done with “Write prompts”" in page.locator(".messages").inner_text()
    prompt = Prompt.objects.get(author=labeler)
    assert (prompt.text, prompt.category, prompt.source) == (
        "Write a limerick about a cat who learns to code.",
        "generation",
        "few_shot",
    )

    start(page, "Write demos")
    assert page.locator("#prompt-text").inner_text() == "Name three <b>primary</b> colours."
    page.fill("#id_text", "Red, yellow and blue.")
    page.wait_for_timeout(1300)  # the timer counts
    page.keyboard.press("Control+Enter")
    wait_for_home(page)
    demo = Demonstration.objects.get(author=labeler)
    assert demo.text == "Red, yellow and blue." and demo.seconds_spent >= 1
    assert page.locator("#count-today").inner_text() == "2"
    assert not watched.dialogs and not watched.errors


def test_ranking_by_drag_and_drop_with_a_tie_survives_a_reload(watched, labeler, tmp_path):
    page = watched.page
    batch = batch_for(labeler, Batch.Kind.RANKING, name="Rank round 1")
    task = ranking_task(batch=batch, k=4)
    log_in(page, "ada")
    start(page, "Rank round 1")
    ids = letters_to_ids(page)
    assert sorted(ids.values()) == sorted(task.task_completions.values_list("completion_id", flat=True))

    pool = page.locator("#rk-pool")
    new_tier = page.locator(".rk-new-tier")
    drag(page, pool.locator('[data-letter="C"]'), new_tier)
    drag(page, pool.locator('[data-letter="A"]'), new_tier)
    assert_tiers(page, [["C"], ["A"]])
    for letter, score in zip("ABCD", (5, 2, 7, 5), strict=True):
        page.locator(f'label[for="likert-{ids[letter]}-{score}"]').click()
    page.locator(f"#flags-{ids['B']} summary").click()
    with page.expect_response(lambda r: r.url.endswith("/draft/") and r.ok):
        page.locator(f'input[name="flag-{ids["B"]}"][value="hallucination"]').check()
    draft = Assignment.objects.get(labeler=labeler).draft  # kept server side
    assert draft["tiers"] == [[ids["C"]], [ids["A"]]] and draft["flags"] == {str(ids["B"]): ["hallucination"]}

    page.evaluate("localStorage.clear()")  # only the server's copy is left
    page.reload()  # the draft survives
    assert_tiers(page, [["C"], ["A"]])
    assert page.locator(f"#likert-{ids['C']}-7").is_checked()
    assert page.locator(f'input[name="flag-{ids["B"]}"][value="hallucination"]').is_checked()

    drag(page, page.locator('#rk-pool [data-letter="B"]'), page.locator(".rk-new-tier"))
    drag(
        page,
        page.locator('#rk-pool [data-letter="D"]'),
        page.locator('.rk-tier-cards [data-letter="A"]'),
    )  # dropped on A: a tie with A
    assert_tiers(page, [["C"], ["A", "D"], ["B"]])
    page.reload()  # at once, before the debounced save: the browser's copy outruns it
    assert_tiers(page, [["C"], ["A", "D"], ["B"]])
    shot = tmp_path / "ranking.png"
    page.screenshot(path=str(shot))
    assert distinct_colours(shot.read_bytes()) > 100  # a real page, not a blank one

    page.click("#ws-submit")
    wait_for_home(page)
    ranking = Ranking.objects.get(labeler=labeler)
    assert [sorted(tier) for tier in ranking.tiers] == [[ids["C"]], sorted([ids["A"], ids["D"]]), [ids["B"]]]
    likert = dict(ranking.ratings.values_list("completion_id", "likert"))
    assert likert == {ids["A"]: 5, ids["B"]: 2, ids["C"]: 7, ids["D"]: 5}
    assert ranking.ratings.get(completion_id=ids["B"]).flags["hallucination"] is True
    assert Comparison.objects.filter(ranking=ranking).count() == 5  # C>A, C>D, C>B, A>B, D>B
    assert ranking.seconds_spent >= 1
    assert not watched.dialogs and not watched.errors


def test_ranking_by_keyboard_alone(watched, labeler):
    page = watched.page
    batch = batch_for(labeler, Batch.Kind.RANKING, name="Rank by keys")
    ranking_task(batch=batch, k=4)
    second = ranking_task(batch=batch, k=4)
    log_in(page, "ada")
    page.locator(".batch-card", has_text="Rank by keys").get_by_role("button", name="Start").focus()
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/assignments/\d+/$"))
    first_url = page.url
    ids = letters_to_ids(page)
    assert "Enter" in page.locator(".rk-keys").inner_text()  # the shortcuts are listed

    for keys in (
        ["a", "1"],  # A to tier 1
        ["c", "2"],  # C to tier 2
        ["b", "ArrowDown"],  # B to a new last tier: A, C, B
        ["b", "ArrowUp"],  # B up one place: A, B, C
        ["d", "="],  # D tied with the tier above it: A, B, C=D
        ["Shift+A", "7"],
        ["Shift+B", "5"],
        ["Shift+C", "3"],
        ["Shift+D", "3"],
    ):
        for key in keys:
            page.keyboard.press(key)
    assert_tiers(page, [["A"], ["B"], ["C", "D"]])
    page.keyboard.press("Tab")  # from D's score to D's flags
    page.keyboard.press("Enter")  # open them
    page.keyboard.press("Tab")
    page.keyboard.press("Space")  # first flag: fails to follow the instruction
    page.keyboard.press("Enter")  # submit
    page.wait_for_url(lambda url: url != first_url)
    assert "Ranking saved." in page.locator(".messages").inner_text()

    ranking = Ranking.objects.get(labeler=labeler)
    assert [sorted(t) for t in ranking.tiers] == [[ids["A"]], [ids["B"]], sorted([ids["C"], ids["D"]])]
    assert ranking.ratings.get(completion_id=ids["D"]).flags["fails_instruction"] is True
    assert dict(ranking.ratings.values_list("completion_id", "likert"))[ids["A"]] == 7
    assert Comparison.objects.filter(ranking=ranking).count() == 5  # no pair for the tie C=D
    assert f"/assignments/{ranking.assignment_id}/" in first_url
    assert second.pk == labeler.assignments.get(status="active").task_id  # the next task opened at once

    page.keyboard.press("s")  # skip asks for a reason
    assert page.locator("#ws-skip-dialog").is_visible()
    page.keyboard.type("Not in a language I read")
    page.keyboard.press("Control+Enter")
    wait_for_home(page)
    assert labeler.assignments.get(task=second).skip_reason == "Not in a language I read"
    assert not watched.dialogs and not watched.errors


def test_output_text_is_shown_as_text_and_never_runs(watched, labeler):
    page = watched.page
    batch = batch_for(labeler, Batch.Kind.RANKING, name="Hostile outputs")
    prompt = PromptFactory(text="<script>alert('prompt')</script> say hi")
    texts = [
        "<script>alert(1)</script>",
        '<img src=x onerror="alert(2)">',
        '<a href="javascript:alert(3)">click</a>',
        "line\n" * 60 + "the end",
    ]
    ranking_task_create(
        batch=batch, prompt=prompt, completions=[CompletionFactory(prompt=prompt, text=t) for t in texts]
    )
    log_in(page, "ada")
    start(page, "Hostile outputs")
    page.wait_for_timeout(500)
    assert page.locator("#prompt-text").inner_text() == "<script>alert('prompt')</script> say hi"
    shown = page.locator(".rk-text").all_inner_texts()
    for text in texts[:3]:
        assert text in shown
    assert page.locator(".rk-output img, .rk-output a[href^=javascript], .rk-output script").count() == 0
    long_output = page.locator(".rk-output", has_text="the end")
    expand = long_output.locator(".rk-expand")
    assert expand.is_visible()
    expand.click()  # long outputs expand in place
    assert expand.get_attribute("aria-expanded") == "true"
    for chip in page.locator(".rk-chip").all():
        chip.hover()
    assert watched.dialogs == []
    assert not watched.errors
