"""Rounds run inline: every step, lineage, the new batch, retry from the failed step, schedules."""

import pytest

from labeling.models import Batch, Comparison, Completion
from training.models import ModelVersion, Round, RoundStatus, RunStatus, TrainingRun
from training.services.rounds import RoundRefused, round_retry, round_start
from training.services.schedules import retrain_rm_if_due, scheduled_round

from .conftest import FAST_STAGES

pytestmark = pytest.mark.django_db


def fast(**config):
    return {"stage_config": FAST_STAGES, "prompt_limit": 4, **config}


def test_a_ppo_round_ends_in_a_ranking_batch_of_the_new_policy(media, demo_data, inline_tasks):
    rnd = round_start(method="ppo", config=fast(k=4))
    rnd.refresh_from_db()
    assert rnd.status == RoundStatus.SUCCEEDED, rnd.error
    assert rnd.state["done"] == ["export", "sft", "rm", "ppo", "generate", "batch"]
    models = {k: ModelVersion.objects.get(pk=v) for k, v in rnd.state["models"].items()}
    assert models["policy"].kind == "ppo" and models["policy"].parent == models["sft"]
    assert models["sft"].parent.kind == "base"
    rm_run = TrainingRun.objects.get(output_model=models["rm"])
    assert rm_run.base_model == models["sft"]
    ppo_run = TrainingRun.objects.get(output_model=models["policy"])
    assert ppo_run.reward_model == models["rm"]
    assert {s.kind for s in models["rm"].snapshots.all()} == {"rm_rankings", "sft"}
    auto = models["policy"].metrics["auto_eval"]  # RM win rate over the parent, KL to SFT
    assert "error" not in auto, auto
    assert (
        0.0 <= auto["rm_win_rate"] <= 1.0 and auto["kl_to_sft"] >= 0.0 and auto["split"] in ("valid", "train")
    )

    batch = rnd.batch
    assert batch.kind == Batch.Kind.RANKING and batch.round_number == rnd.number == 1
    assert batch.model_version == models["policy"] and batch.status == Batch.Status.ACTIVE
    assert batch.tasks.count() == 4  # prompt_limit
    for task in batch.tasks.all():
        assert task.k == 4
        assert set(task.completions.values_list("model_version", flat=True)) == {models["policy"].pk}


def test_a_dpo_round_with_sft_samples_mixed_in(media, demo_data, inline_tasks):
    rnd = round_start(method="dpo", config=fast(k=4, mix_sft=True, batch_status="draft"))
    rnd.refresh_from_db()
    assert rnd.status == RoundStatus.SUCCEEDED, rnd.error
    assert "rm" not in rnd.state["done"]
    policy = ModelVersion.objects.get(pk=rnd.state["models"]["policy"])
    sft = ModelVersion.objects.get(pk=rnd.state["models"]["sft"])
    assert policy.kind == "dpo"
    task = rnd.batch.tasks.first()
    sources = list(task.completions.values_list("model_version", flat=True))
    assert sources.count(policy.pk) == 2 and sources.count(sft.pk) == 2
    assert rnd.batch.status == Batch.Status.DRAFT


def test_a_second_round_is_refused_while_one_is_running(media, demo_data):
    Round.objects.create(number=1, status=RoundStatus.RUNNING, state={"done": []})
    with pytest.raises(RoundRefused, match="still running"):
        round_start(method="ppo")
    assert scheduled_round() is None
    assert Round.objects.count() == 1


def test_a_failed_step_stops_the_round_and_retry_goes_on_from_there(media, demo_data, inline_tasks):
    stages = {**FAST_STAGES, "rm": {**FAST_STAGES["rm"], "splits": "no_such_split"}}  # fails as it runs
    rnd = round_start(method="ppo", config=fast(stage_config=stages))
    rnd.refresh_from_db()
    assert rnd.status == RoundStatus.FAILED and rnd.step == "rm"
    assert "no_such_split" in rnd.error
    sft_run = TrainingRun.objects.get(round=rnd, kind="sft")

    # Fix the config and retry: the SFT step is not redone.
    rnd.config["stage_config"] = FAST_STAGES
    rnd.save(update_fields=["config"])
    round_retry(rnd=rnd)
    rnd.refresh_from_db()
    assert rnd.status == RoundStatus.SUCCEEDED, rnd.error
    assert TrainingRun.objects.filter(round=rnd, kind="sft").get() == sft_run
    assert TrainingRun.objects.filter(round=rnd, kind="rm", status=RunStatus.FAILED).count() == 1


def test_a_round_with_nothing_labeled_fails_clearly(media, db, inline_tasks):
    rnd = round_start(method="ppo", config=fast())
    rnd.refresh_from_db()
    assert rnd.status == RoundStatus.FAILED and "nothing labeled" in rnd.error
    assert Completion.objects.count() == 0


def test_rm_retraining_waits_for_enough_new_comparisons(media, demo_data, settings):
    settings.CELERY_BROKER_URL = ""
    settings.TASKS_INLINE = False
    have = Comparison.objects.count()
    assert retrain_rm_if_due(threshold=have + 1) is None
    run = retrain_rm_if_due(threshold=have)
    assert run is not None and run.kind == "rm"
    assert retrain_rm_if_due(threshold=1) is None  # one is already queued or running


def test_the_sites_stage_settings_lie_under_the_rounds_own(media, demo_data, settings):
    """TRAINING_ROUND_STAGE_CONFIG (the demo's small PPO) fills what the round leaves unset, and no more."""
    settings.TRAINING_ROUND_STAGE_CONFIG = {"ppo": {"steps": 20, "batch_size": 16}, "sft": {"max_steps": 2}}
    rnd = round_start(method="ppo", config={"stage_config": {"ppo": {"steps": 3}}})
    assert rnd.config["stage_config"]["ppo"] == {"steps": 3, "batch_size": 16}
    assert rnd.config["stage_config"]["sft"] == {"max_steps": 2}
