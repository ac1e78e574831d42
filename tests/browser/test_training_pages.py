"""The round and run pages in a real browser: they follow the training as it goes, without a reload."""

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from core.roles import ROLE_RESEARCHER
from tests.factories import UserFactory
from tests.training.rounds_at import round_in_rm, run_row
from training.models import ModelVersion, RunStatus, TrainingRun
from training.round_state import RoundState

from .conftest import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


@pytest.fixture
def researcher(transactional_db):
    return UserFactory(username="rosalind", roles=[ROLE_RESEARCHER])


def test_the_round_page_updates_itself_as_the_round_goes(watched, researcher):
    page = watched.page
    rnd = round_in_rm()
    log_in(page, "rosalind")
    page.goto(f"/training/rounds/{rnd.pk}/")
    rm_row, ppo_row = page.locator('tr[data-step="rm"]'), page.locator('tr[data-step="ppo"]')
    expect(rm_row.locator(".step-state")).to_have_text("running")
    expect(rm_row.locator(".step-runs")).to_contain_text("(5 / 10)")
    page.evaluate("window.notReloaded = true")  # gone if the page were loaded again

    # The reward model finishes, PPO starts and reports its first steps; then its policy's reward falls.
    TrainingRun.objects.filter(round=rnd, kind="rm").update(
        status=RunStatus.SUCCEEDED, progress_step=10, finished_at=timezone.now()
    )
    ppo = run_row(rnd, "ppo", status=RunStatus.RUNNING, started_ago=20, step=2, total=100)
    state = RoundState.from_json(rnd.state)
    state.done.append("rm")
    state.runs["ppo"] = [ppo.pk]
    rnd.step, rnd.state = "ppo", state.to_json()
    rnd.save(update_fields=["step", "state"])

    expect(rm_row.locator(".step-state")).to_have_text("done")
    expect(ppo_row.locator(".step-state")).to_have_text("running")
    expect(ppo_row.locator(".step-runs")).to_contain_text("(2 / 100)")
    expect(ppo_row.locator(".step-left")).to_contain_text("left, from its progress")

    base = ModelVersion.objects.create(name="sft-x", kind="sft", parent=ppo.base_model, checkpoint="/x")
    policy = ModelVersion.objects.create(
        name="ppo-x",
        kind="ppo",
        parent=base,
        checkpoint="/y",
        metrics={"auto_eval": {"rm_score_policy": -1.0, "rm_score_parent": 0.5}},
    )
    state.models["policy"] = policy.pk
    rnd.state = state.to_json()
    rnd.save(update_fields=["state"])
    expect(page.locator("#round-reward")).to_contain_text("The reward fell")
    expect(page.locator("#round-reward")).to_have_class("verdict fell")

    rnd.status, rnd.error = "failed", "step 'ppo': run 3 failed: out of memory"
    rnd.save(update_fields=["status", "error"])
    expect(page.locator("#round-status")).to_have_text("failed")
    expect(page.locator("#round-error")).to_have_text("step 'ppo': run 3 failed: out of memory")
    expect(page.locator("#round-retry")).to_be_visible()
    assert page.evaluate("window.notReloaded") is True
    assert not watched.errors, watched.errors


def test_the_run_page_follows_the_progress_and_metrics(watched, researcher):
    page = watched.page
    rnd = round_in_rm()
    run = TrainingRun.objects.get(round=rnd, kind="rm")
    TrainingRun.objects.filter(pk=run.pk).update(progress_step=0, progress_total=0, metrics={})
    log_in(page, "rosalind")
    page.goto(f"/training/runs/{run.pk}/")
    expect(page.locator("#run-progress")).to_have_text("not started")
    expect(page.locator("#run-phase")).to_have_text("loading the model and the data")
    expect(page.locator("#metrics-empty")).to_be_visible()
    page.evaluate("window.notReloaded = true")

    TrainingRun.objects.filter(pk=run.pk).update(
        progress_step=1,
        progress_total=100,
        metrics={"loss": 0.7},
        metrics_history=[{"step": 1, "loss": 0.7}],
        log_tail="step 1/100 loss=0.7",
    )
    expect(page.locator("#run-progress")).to_have_text("1 / 100")
    expect(page.locator("#run-phase")).to_have_text("training")
    expect(page.locator("#latest-metrics")).to_contain_text("loss")
    expect(page.locator("#run-log")).to_have_text("step 1/100 loss=0.7")
    expect(page.locator("#metrics-empty")).to_be_hidden()
    assert page.evaluate("window.notReloaded") is True
    assert not watched.errors, watched.errors
