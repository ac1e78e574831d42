"""A run or a round chooses a shipped launch config by name: checked by the server, never a file path."""

import io
import json
import re

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from core.errors import ServiceError
from labeling.services.exports import snapshot_create
from training.models import Round, RoundStatus, TrainingRun
from training.services.registry import base_model_get_or_create
from training.services.rounds import round_start

from .conftest import FAST_STAGES

pytestmark = pytest.mark.django_db


def run_input(**extra) -> dict:
    return {
        "kind": "sft",
        "base_model": base_model_get_or_create().pk,
        "snapshots": [snapshot_create(kind="sft", filters={}).pk],
        "config": FAST_STAGES["sft"],
        **extra,
    }


@pytest.mark.parametrize("name", ["/etc/passwd", "../launch/zero3.yaml", "zero4"])
def test_a_run_with_an_unknown_launch_config_is_refused_naming_the_field(
    api, media, demo_data, inline_tasks, name
):
    answer = api.post("/api/v1/training-runs/", run_input(launch_config=name), format="json")
    assert answer.status_code == 400
    assert "launch_config" in answer.content.decode() and "zero3" in answer.content.decode()  # the choices
    assert not TrainingRun.objects.exists()


def test_a_run_without_a_launch_config_gets_the_default_from_settings(
    api, media, demo_data, inline_tasks, settings
):
    settings.TRAINING_LAUNCH_CONFIG = "fsdp2"
    answer = api.post("/api/v1/training-runs/", run_input(), format="json")
    assert answer.status_code == 201 and answer.data["launch_config"] == "fsdp2"


def test_the_run_form_takes_a_launch_config_and_the_run_page_shows_it(
    client, researcher, media, demo_data, inline_tasks
):
    client.force_login(researcher)
    data = run_input(launch_config="zero3-offload")
    form = {**data, "config": "{}", "snapshots": data["snapshots"]}
    client.post(reverse("training:run_new"), form)
    run = TrainingRun.objects.get()
    assert run.launch_config == "zero3-offload"
    assert "zero3-offload" in client.get(reverse("training:run", args=[run.pk])).content.decode()


def test_a_round_passes_its_launch_config_to_its_runs(api, media, demo_data, inline_tasks):
    stages = {**FAST_STAGES, "sft": {**FAST_STAGES["sft"], "splits": "no_such_split"}}  # stops at sft
    answer = api.post(
        "/api/v1/rounds/", {"method": "dpo", "launch_config": "zero2", "stage_config": stages}, format="json"
    )
    assert answer.status_code == 201, answer.content
    rnd = Round.objects.get()
    assert rnd.launch_config == "zero2" and answer.data["launch_config"] == "zero2"
    assert rnd.status == RoundStatus.FAILED  # inline: the sft step ran and failed on its split
    assert TrainingRun.objects.get(round=rnd).launch_config == "zero2"


def test_a_round_with_an_unknown_launch_config_is_refused(media, demo_data, inline_tasks):
    with pytest.raises(ServiceError) as refused:
        round_start(method="dpo", config={"launch_config": "my-cluster.yaml"})
    assert refused.value.field == "launch_config"
    assert not Round.objects.exists()


def test_start_round_takes_a_launch_config_and_stage_settings(media, demo_data, inline_tasks, settings):
    settings.CELERY_BROKER_URL = ""  # no broker: the command runs the round itself
    stages = json.dumps({"sft": {**FAST_STAGES["sft"], "splits": "no_such_split"}})  # stops at sft
    with pytest.raises(CommandError, match="failed"):
        call_command(
            "start_round",
            "--method",
            "dpo",
            "--launch-config",
            "zero3",
            "--stage-config",
            stages,
            stdout=io.StringIO(),
        )
    rnd = Round.objects.get()
    assert rnd.launch_config == "zero3" and rnd.config["stage_config"]["sft"]["splits"] == "no_such_split"
    assert TrainingRun.objects.get(round=rnd).launch_config == "zero3"


@pytest.mark.parametrize(
    ("stages", "says"),
    [
        ("{ppo: 1}", "--stage-config: not JSON"),
        ("[1]", "--stage-config: write a JSON object"),
        ('{"ppo": {"stepz": 3}}', "stepz"),  # the server's own check names the setting
    ],
)
def test_start_round_refuses_bad_stage_settings_and_starts_nothing(
    media, demo_data, inline_tasks, stages, says
):
    with pytest.raises(CommandError, match=re.escape(says)):
        call_command("start_round", "--stage-config", stages, stdout=io.StringIO())
    assert not Round.objects.exists()


def test_start_round_offers_exactly_the_shipped_launch_configs(media, demo_data, inline_tasks):
    with pytest.raises(CommandError, match="invalid choice: 'my.yaml'"):
        call_command("start_round", "--launch-config", "my.yaml", stdout=io.StringIO())


@pytest.mark.parametrize(
    ("config", "picks"), [("single-gpu", True), ("ddp", True), ("zero3", False), ("fsdp2", False)]
)
def test_a_rounds_sft_takes_the_earlier_reward_model_unless_its_engine_shards_the_weights(
    media, demo_data, config, picks
):
    from training.models import ModelVersion
    from training.round_state import RoundState
    from training.services.round_steps import TRAINING_INPUTS

    base = base_model_get_or_create()
    rm = ModelVersion.objects.create(name="rm-1", kind="rm", checkpoint=str(media / "rm-1"), parent=base)
    state = RoundState()
    state.models["rm"] = rm.pk
    Round.objects.create(
        number=1, method="ppo", config={}, state=state.to_json(), status=RoundStatus.SUCCEEDED
    )
    second = Round.objects.create(
        number=2, method="ppo", config={}, state=RoundState().to_json(), launch_config=config
    )
    snaps = {"sft": snapshot_create(kind="sft", filters={})}
    inputs = TRAINING_INPUTS["sft"](second, RoundState(), snaps)
    assert inputs["reward_model"] == (rm if picks else None)
