"""A client sets hyperparameters only: every path a run reads or writes, resuming, the hub and the engine
options are the server's (a run once wrote outside MEDIA_ROOT, replaced the base model and read /etc/passwd)."""

import dataclasses
from pathlib import Path

import pytest
from django.urls import reverse

from core.errors import ServiceError
from labeling.services.exports import snapshot_create
from training.ml.config import CONFIGS
from training.ml.recipes import recipes
from training.models import Round, TrainingRun
from training.services.registry import base_model_get_or_create
from training.services.rounds import round_start
from training.services.run_settings import HYPERPARAMETERS, SERVER_OWNED, allowed_keys
from training.services.runs import run_retry, run_start

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]
SERVER_KEYS = {
    "output_dir": "/tmp/elsewhere",
    "model": "/etc",
    "dataset": "/etc/passwd",
    "ptx_dataset": "/etc/passwd",
    "demonstrations": "/etc/passwd",
    "reward_model": "/srv/other",
    "resume": False,
    "hub_kernels": True,
    "extra_args": {"deepspeed": "/tmp/ds.json", "report_to": "wandb", "push_to_hub": True},
}


@pytest.fixture
def sft_inputs(media, demo_data, settings):
    settings.CELERY_BROKER_URL = ""  # queued, never run
    settings.TASKS_INLINE = False
    return {
        "kind": "sft",
        "base_model": base_model_get_or_create(),
        "snapshots": [snapshot_create(kind="sft", filters={})],
    }


@pytest.mark.parametrize("key", sorted(SERVER_KEYS))
def test_a_client_cannot_set_what_the_server_decides(sft_inputs, key):
    with pytest.raises(ServiceError, match="set by the server") as refused:
        run_start(**sft_inputs, config={key: SERVER_KEYS[key]})
    assert refused.value.field == f"config.{key}" and TrainingRun.objects.count() == 0
    assert "root:" not in str(refused.value)  # nothing of the file it named is read or quoted


def test_the_api_answers_400_naming_the_key_and_stores_nothing(client, researcher, sft_inputs):
    client.force_login(researcher)
    body = {
        "kind": "sft",
        "base_model": sft_inputs["base_model"].pk,
        "snapshots": [s.pk for s in sft_inputs["snapshots"]],
        "config": {"learning_rate": 1e-4, "dataset": "/etc/passwd"},
    }
    response = client.post(reverse("api:training-run-list"), body, content_type="application/json")
    assert response.status_code == 400 and "dataset" in response.content.decode()
    assert "root:" not in response.content.decode() and TrainingRun.objects.count() == 0


def test_unknown_keys_and_bad_values_are_refused_by_name(sft_inputs):
    with pytest.raises(ServiceError, match="unknown sft setting 'lerning_rate'; known: .*learning_rate"):
        run_start(**sft_inputs, config={"lerning_rate": 1e-4})
    with pytest.raises(ServiceError, match="learning_rate"):
        run_start(**sft_inputs, config={"learning_rate": "fast"})
    with pytest.raises(ServiceError, match="must contain \\{prompt\\}"):
        run_start(**sft_inputs, config={"prompt_template": "no placeholder"})
    assert TrainingRun.objects.count() == 0


def test_hyperparameters_are_stored_typed_and_the_folder_is_the_servers(sft_inputs, media):
    run = run_start(**sft_inputs, config={"learning_rate": "1e-4", "max_steps": "3", "chat_template": "none"})
    assert run.config == {
        "learning_rate": 1e-4,
        "max_steps": 3,
        "chat_template": "none",
        "output_dir": str(media / "runs" / f"run-{run.pk}"),
    }


def test_a_retry_keeps_its_runs_folder(sft_inputs):
    run = run_start(**sft_inputs, config={"max_steps": 3})
    TrainingRun.objects.filter(pk=run.pk).update(status="failed")
    again = run_retry(run=TrainingRun.objects.get(pk=run.pk))
    assert again.config == {"max_steps": 3, "output_dir": run.config["output_dir"]}


def test_a_rounds_step_settings_are_checked_before_anything_starts(media, settings):
    settings.CELERY_BROKER_URL = ""
    settings.TASKS_INLINE = False
    with pytest.raises(ServiceError, match="'output_dir' is set by the server") as refused:
        round_start(config={"stage_config": {"sft": {"max_steps": 2, "output_dir": "/srv/base-model"}}})
    assert refused.value.field == "stage_config.sft.output_dir"
    with pytest.raises(ServiceError, match="unknown step 'export'"):
        round_start(method="dpo", config={"stage_config": {"export": {"max_steps": 2}}})
    with pytest.raises(ServiceError, match="batch_size divisible"):
        round_start(config={"stage_config": {"ppo": {"batch_size": 5, "mini_batch_size": 2}}})
    assert Round.objects.count() == 0


def test_the_round_api_refuses_a_path_in_stage_config(client, researcher, media):
    client.force_login(researcher)
    body = {"method": "ppo", "stage_config": {"ppo": {"reward_model": "/srv/other"}}}
    response = client.post(reverse("api:round-list"), body, content_type="application/json")
    assert response.status_code == 400 and "reward_model" in response.content.decode()
    assert Round.objects.count() == 0


def test_every_stage_setting_is_either_a_hyperparameter_or_the_servers():
    """A field added to training.ml's configs stays closed to clients until it is put in one of them."""
    assert not HYPERPARAMETERS & SERVER_OWNED
    for kind, cls in CONFIGS.items():
        fields = {f.name for f in dataclasses.fields(cls)}
        assert fields <= HYPERPARAMETERS | SERVER_OWNED, (kind, fields - HYPERPARAMETERS - SERVER_OWNED)


def test_a_recipe_is_spelled_out_in_the_runs_config_under_the_clients_values(sft_inputs):
    run = run_start(**sft_inputs, config={"recipe": "instructgpt-sft", "num_train_epochs": 2})
    assert run.config["recipe"] == "instructgpt-sft"
    assert run.config["num_train_epochs"] == 2  # the client's value wins over the recipe's 16
    assert run.config["lr_scheduler"] == "cosine" and run.config["min_lr_ratio"] == 0.1


def test_a_rounds_step_takes_a_recipe_of_its_own_stage_only(media, settings):
    settings.CELERY_BROKER_URL = ""
    settings.TASKS_INLINE = False
    with pytest.raises(ServiceError, match="recipe 'dpo' is for the dpo stage, not ppo") as refused:
        round_start(config={"stage_config": {"ppo": {"recipe": "dpo"}}})
    assert refused.value.field == "stage_config.ppo"
    with pytest.raises(ServiceError, match="the rm recipes are: instructgpt-rm"):
        round_start(config={"stage_config": {"rm": {"recipe": "../../etc/passwd"}}})
    assert Round.objects.count() == 0


def test_every_recipe_holds_hyperparameters_of_its_stage_only():
    for name, shipped in recipes().items():
        assert set(shipped.settings) <= allowed_keys(shipped.stage), name


@pytest.mark.parametrize("dockerfile", ["Dockerfile", "Dockerfile.train"])
def test_the_shipped_images_run_as_a_user_that_is_not_root(dockerfile):
    lines = [line.split() for line in (ROOT / dockerfile).read_text().splitlines() if line.strip()]
    users = [words[1] for words in lines if words[0] == "USER"]
    assert users and users[-1] not in ("root", "0", "0:0")


def test_the_run_page_shows_the_refusal_under_the_config_box(client, researcher, sft_inputs):
    client.force_login(researcher)
    form = {
        "kind": "sft",
        "base_model": sft_inputs["base_model"].pk,
        "snapshots": [s.pk for s in sft_inputs["snapshots"]],
        "config": '{"output_dir": "/srv/base-model"}',
    }
    page = client.post(reverse("training:run_new"), form).content.decode()
    assert "&#x27;output_dir&#x27; is set by the server" in page and TrainingRun.objects.count() == 0
