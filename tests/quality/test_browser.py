"""In a real browser: a labeler works an evaluation batch on the workspace's ranking page (one output
per model, no model named), then a researcher reads the results page with its chart.

Debian's chromium (CHROMIUM, default /usr/bin/chromium) through Playwright; never downloads a browser.
Screenshots go to $QUALITY_SCREENSHOTS when set (to look at them), else to the test's tmp folder."""

import os
import re
from pathlib import Path

import pytest
from django.db import connections

from core.roles import ROLE_LABELER, ROLE_RESEARCHER
from labeling.models import Batch, Ranking
from labeling.vocab import Split
from tests.factories import PromptFactory, UserFactory
from training.evaluation.batches import evaluation_batch_create
from training.models import ModelVersion

# The sync API runs an event loop in this thread; the live server's ORM calls happen here too.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
PASSWORD = "correct-horse-battery"  # tests.factories.UserFactory's

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.urls("tests.quality.urls"),
]


@pytest.fixture
def browser(transactional_db, live_server):
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no chromium at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield browser
        browser.close()
        # ORM calls made while Playwright's event loop ran used connections of their own: close them, or
        # the test database cannot be dropped at the end of the session.
        connections.close_all()


@pytest.fixture
def shots(tmp_path) -> Path:
    folder = Path(os.environ.get("QUALITY_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def open_page(browser, live_server, username: str):
    """A fresh context logged in as `username`, and the list its page's script errors land in."""
    context = browser.new_context(viewport={"width": 1360, "height": 900}, base_url=live_server.url)
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.route("**/favicon.ico", lambda route: route.fulfill(status=204, body=""))
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("dialog", lambda d: (errors.append(f"dialog: {d.message}"), d.dismiss()))
    page.goto("/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r"^https?://[^/]+/$"))
    return page, errors


@pytest.fixture
def evaluation():
    UserFactory(username="ada", roles=[ROLE_LABELER])
    UserFactory(username="rex", roles=[ROLE_RESEARCHER])
    base = ModelVersion.objects.create(name="base", kind="base", checkpoint="/m/base")
    sft = ModelVersion.objects.create(name="sft-1", kind="sft", parent=base, checkpoint="/m/sft")
    ppo = ModelVersion.objects.create(
        name="ppo-1",
        kind="ppo",
        parent=sft,
        checkpoint="/m/ppo",
        metrics={
            "auto_eval": {"rm_win_rate": 0.61, "rm_heldout_accuracy": 0.68, "kl_to_sft": 4.2, "prompts": 64}
        },
    )
    prompts = [PromptFactory(split=Split.TEST, text=f"Tell me about the ocean, part {i}.") for i in (1, 2)]
    outputs = {
        p.pk: {
            "sft-1": f"SFT: the ocean is big ({p.pk}).",
            "ppo-1": f"PPO: the ocean covers 71% ({p.pk}).",
            "vendor-x": f"VENDOR: <img src=x onerror=alert(1)> ocean ({p.pk}).",
        }
        for p in prompts
    }
    return evaluation_batch_create(
        name="Ocean eval",
        model_versions=[sft, ppo],
        external_sources=["vendor-x"],
        outputs=outputs,
        status=Batch.Status.ACTIVE,
    )


def rank_by_keys(page) -> None:
    """PPO first, SFT second, the vendor last; Likert 7 / 5 / 2; the vendor flagged as hallucinating."""
    chips = page.locator(".rk-chip")
    letters = {}
    for i in range(chips.count()):
        chip = chips.nth(i)
        text = page.locator(f"#text-{chip.get_attribute('data-id')}").inner_text()
        letters[text.split(":")[0]] = (
            chip.get_attribute("data-letter").lower(),
            chip.get_attribute("data-id"),
        )
    assert set(letters) == {"PPO", "SFT", "VENDOR"}
    for model, place, score in (("PPO", "1", "7"), ("SFT", "2", "5"), ("VENDOR", "3", "2")):
        letter, _ = letters[model]
        for key in (letter, place, f"Shift+{letter.upper()}", score):
            page.keyboard.press(key)
    vendor_id = letters["VENDOR"][1]
    page.locator(f"#flags-{vendor_id} summary").click()
    page.locator(f'input[name="flag-{vendor_id}"][value="hallucination"]').check()


def test_a_labeler_ranks_an_evaluation_and_a_researcher_reads_the_results(
    browser, live_server, evaluation, shots
):
    page, errors = open_page(browser, live_server, "ada")
    page.locator(".batch-card", has_text="Ocean eval").get_by_role("button", name="Start").click()
    for n in (1, 2):
        page.wait_for_url(re.compile(r"/assignments/\d+/$"))
        body = page.locator("main").inner_text()
        assert "ppo-1" not in body and "sft-1" not in body and "vendor-x" not in body  # models are not named
        assert page.locator(".rk-output img").count() == 0  # output text is text
        rank_by_keys(page)
        if n == 1:
            page.screenshot(path=str(shots / "evaluation_task.png"), full_page=True)
        page.click("#ws-submit")
    page.wait_for_url(re.compile(r"^https?://[^/]+/$"))
    assert Ranking.objects.filter(task__batch=evaluation).count() == 2
    page.goto("/quality/")  # a labeler's own numbers
    assert (
        page.locator("h1").inner_text() == "Your numbers" and page.locator("#my-volume").inner_text() == "2"
    )
    page.screenshot(path=str(shots / "labeler_own.png"), full_page=True)
    assert not errors, errors

    page, errors = open_page(browser, live_server, "rex")
    page.goto(f"/training/evaluations/{evaluation.pk}/")
    overall = page.locator("#results-overall")
    assert overall.locator('tr[data-model="ppo-1"] .q-winrate').inner_text().startswith("100.0%")
    assert overall.locator('tr[data-model="vendor-x"] .q-winrate').inner_text().startswith("0.0%")
    assert "baseline" in overall.locator('tr[data-model="sft-1"]').inner_text()
    assert page.locator('#auto-eval tr[data-model="ppo-1"]').inner_text().count("61.0%") == 1
    page.wait_for_selector('#chart-win-rates[data-drawn="true"]')
    page.screenshot(path=str(shots / "evaluation_results.png"), full_page=True)

    page.select_option("#q-baseline", "ppo-1")
    page.get_by_role("button", name="Compare").click()
    page.wait_for_url(re.compile(r"baseline=ppo-1"))
    assert page.locator('#results-overall tr[data-model="sft-1"] .q-winrate').inner_text().startswith("0.0%")

    page.goto("/training/evaluations/")
    page.wait_for_selector('#chart-per-round[data-drawn="true"]')
    page.screenshot(path=str(shots / "evaluations.png"), full_page=True)
    page.goto("/quality/")
    page.screenshot(path=str(shots / "dashboard.png"), full_page=True)
    page.goto(f"/quality/gold/{evaluation.pk}/")
    assert page.locator(".q-output-text img").count() == 0
    page.screenshot(path=str(shots / "gold_batch.png"), full_page=True)
    assert not errors, errors
