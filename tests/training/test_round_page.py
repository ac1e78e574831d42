"""The round page and its status.json: each step with its state, the time it took and an estimate of what
is left, and a plain sentence when the new policy's reward fell."""

import json

import pytest
from django.urls import reverse

from training.models import ModelVersion, RunStatus, TrainingRun
from training.round_state import RoundState

from .rounds_at import base_model, finished_round, round_in_rm, run_row

pytestmark = pytest.mark.django_db


def status_of(client, rnd) -> dict:
    response = client.get(reverse("training:round_status", args=[rnd.pk]))
    assert response.status_code == 200
    return json.loads(response.content, parse_constant=_refuse)  # what JavaScript's JSON.parse accepts


def _refuse(name):
    raise AssertionError(f"{name} in the JSON: a browser cannot parse it")


def steps_of(status: dict) -> dict:
    return {step["name"]: step for step in status["steps"]}


def test_it_lists_every_step_with_its_state_and_time(client, researcher):
    client.force_login(researcher)
    steps = steps_of(status_of(client, round_in_rm()))

    assert list(steps) == ["export", "sft", "rm", "ppo", "generate", "batch"]
    assert [s["state"] for s in steps.values()] == [
        "done",
        "done",
        "running",
        "waiting",
        "waiting",
        "waiting",
    ]
    assert steps["sft"]["took"] == "1 min 00 s"
    assert steps["rm"]["took"].endswith("so far") and steps["rm"]["runs"][0]["step"] == 5
    assert steps["ppo"]["took"] == ""


def test_the_running_step_is_estimated_from_its_own_pace(client, researcher):
    client.force_login(researcher)
    rm = steps_of(status_of(client, round_in_rm(rm_step=5, rm_total=10)))["rm"]
    # 5 of 10 steps in 50 s: about 50 s to go.
    assert 45 <= rm["remaining"] <= 60
    assert rm["left"].startswith("about ") and rm["left"].endswith("left, from its progress")


def test_steps_not_started_are_estimated_from_earlier_rounds(client, researcher):
    client.force_login(researcher)
    finished_round(number=1, seconds={"sft": 60, "rm": 30, "ppo": 600, "generate": 40})
    finished_round(number=2, seconds={"sft": 80, "rm": 30, "ppo": 400, "generate": 40})
    status = status_of(client, round_in_rm(number=3))
    ppo = steps_of(status)["ppo"]

    assert ppo["remaining"] == pytest.approx(500)  # the median of 600 and 400
    assert ppo["left"] == "about 8 min 20 s left, from earlier rounds"
    assert status["remaining"] > 500 and status["remaining_words"].startswith("about ")


def test_without_progress_or_history_it_says_there_is_no_estimate(client, researcher):
    client.force_login(researcher)
    status = status_of(client, round_in_rm(rm_step=0, rm_total=0))
    assert steps_of(status)["rm"]["left"].startswith("no estimate yet")
    assert status["remaining"] is None and status["remaining_words"] == "no estimate yet of what is left"


def test_a_failed_step_shows_failed_and_the_page_offers_the_retry(client, researcher):
    client.force_login(researcher)
    rnd = round_in_rm()
    TrainingRun.objects.filter(round=rnd, kind="rm").update(status=RunStatus.FAILED)
    rnd.status, rnd.error = "failed", "step 'rm': run 2 failed: out of memory"
    rnd.save(update_fields=["status", "error"])

    steps = steps_of(status_of(client, rnd))
    assert steps["rm"]["state"] == "failed" and steps["ppo"]["state"] == "skipped"
    page = client.get(reverse("training:round", args=[rnd.pk])).content.decode()
    assert "out of memory" in page and 'id="round-retry" hidden' not in page


def policy_of(rnd, **auto_eval) -> ModelVersion:
    sft = ModelVersion.objects.create(name="sft-r1", kind="sft", parent=base_model(), checkpoint="/x")
    policy = ModelVersion.objects.create(
        name="ppo-r1", kind="ppo", parent=sft, checkpoint="/y", metrics={"auto_eval": auto_eval}
    )
    state = RoundState.from_json(rnd.state)
    state.models = {"sft": sft.pk, "policy": policy.pk}
    rnd.state = state.to_json()
    rnd.save(update_fields=["state"])
    return policy


def test_it_says_plainly_when_the_reward_fell(client, researcher):
    client.force_login(researcher)
    rnd = round_in_rm()
    policy_of(
        rnd,
        rm_score_policy=-0.42,
        rm_score_parent=0.13,
        rm_win_rate=0.25,
        rm_win_rate_low=0.1,
        rm_win_rate_high=0.4,
        prompts=12,
        split="valid",
    )
    reward = status_of(client, rnd)["reward"]
    assert reward["fell"] is True
    assert reward["sentences"][0].startswith("The reward fell: the reward model scores ppo-r1 -0.420")
    assert (
        "sft-r1 0.130" in reward["sentences"][0]
        and "25% [95%: 10% to 40%] of 12 valid prompts" in (reward["sentences"][0])
    )
    page = client.get(reverse("training:round", args=[rnd.pk])).content.decode()
    assert "The reward fell" in page and 'class="verdict fell"' in page


def test_a_reward_that_rose_is_said_too_and_the_training_trend_follows(client, researcher):
    client.force_login(researcher)
    rnd = round_in_rm()
    policy = policy_of(rnd, rm_score_policy=0.5, rm_score_parent=0.1, rm_win_rate=None)
    run_row(rnd, "ppo", status=RunStatus.SUCCEEDED, started_ago=10, took=5)
    TrainingRun.objects.filter(round=rnd, kind="ppo").update(
        output_model=policy, metrics={"reward_first": 0.3, "reward": 0.1}
    )
    reward = status_of(client, rnd)["reward"]
    assert reward["fell"] is False
    assert reward["sentences"][0].startswith("The reward rose")
    assert "prefers" not in reward["sentences"][0]  # no win rate, no figure for it
    assert reward["sentences"][1] == "During PPO the training reward fell from 0.300 to 0.100."


def test_a_failed_evaluation_is_said_instead_of_a_figure(client, researcher):
    client.force_login(researcher)
    rnd = round_in_rm()
    policy_of(rnd, error="RuntimeError: no reward model")
    reward = status_of(client, rnd)["reward"]
    assert reward["fell"] is None and "The automatic evaluation failed" in reward["sentences"][0]


def test_before_the_policy_exists_there_is_no_verdict(client, researcher):
    client.force_login(researcher)
    assert status_of(client, round_in_rm())["reward"] is None


@pytest.mark.parametrize("who, status", [("labeler", 403), ("batch_admin", 200), ("researcher", 200)])
def test_the_status_is_for_those_who_see_training(client, request, who, status):
    rnd = round_in_rm()
    client.force_login(request.getfixturevalue(who))
    assert client.get(reverse("training:round_status", args=[rnd.pk])).status_code == status


def test_the_page_loads_its_script_and_no_inline_one(client, researcher):
    client.force_login(researcher)
    page = client.get(reverse("training:round", args=[round_in_rm().pk])).content.decode()
    assert "js/training_round.js" in page
    assert 'id="round-status-data" type="application/json"' in page
    assert "<script>" not in page
