"""The run page: live progress in words for every stage, a status every browser can parse, and the config
as a table of setting, value and what it does."""

import json
import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from training.models import TrainingRun
from training.selectors.runs import config_rows, run_status

from .rounds_at import base_model

pytestmark = pytest.mark.django_db


def make_run(**fields) -> TrainingRun:
    return TrainingRun.objects.create(kind=fields.pop("kind", "ppo"), base_model=base_model(), **fields)


def test_the_config_is_a_table_of_setting_value_and_help(client, researcher):
    client.force_login(researcher)
    run = make_run(kind="ppo", config={"steps": 20, "kl_coef": 0.05, "output_dir": "/media/runs/run-1"})
    page = client.get(reverse("training:run", args=[run.pk])).content.decode()

    assert '<th scope="row"><code>steps</code></th><td><code>20</code></td><td>PPO iterations' in page
    assert "<code>kl_coef</code></th><td><code>0.05</code></td><td>beta: per-token KL penalty" in page
    # The defaults follow, folded away, with the stage's own help.
    defaults = page.split('id="run-config-defaults"')[1]
    assert "<code>batch_size</code></th><td><code>64</code></td><td>Episodes (prompt, response)" in defaults
    assert "<code>steps</code>" not in defaults  # set for the run: listed once, above


def test_values_are_written_as_they_would_be_typed():
    rows = {
        r.field: r for r in config_rows(TrainingRun(kind="sft", config={"prompt_template": "Q: {prompt}\n"}))
    }
    assert rows["prompt_template"].value == '"Q: {prompt}\\n"' and rows["prompt_template"].set_for_run
    assert rows["learning_rate"].value == "1e-05" and not rows["learning_rate"].set_for_run
    assert rows["extra_args"].value == "{}"
    assert rows["recipe"].value == '""'


def test_round_settings_outside_the_stage_get_their_own_help():
    rows = {r.field: r for r in config_rows(TrainingRun(kind="generate", config={"max_prompts": 50}))}
    assert rows["max_prompts"].help.startswith("At most this many prompts")


def test_a_run_that_has_not_reported_a_step_says_what_it_is_doing_not_0_of_0(client, researcher):
    client.force_login(researcher)
    run = make_run(status="running", started_at=timezone.now())
    page = client.get(reverse("training:run", args=[run.pk])).content.decode()
    assert "0 / 0" not in page
    assert "not started" in page and "loading the model and the data" in page


def test_the_status_gives_step_phase_and_time_left(client, researcher):
    client.force_login(researcher)
    started = timezone.now() - timedelta(seconds=100)
    run = make_run(
        status="running", started_at=started, progress_step=1, progress_total=100, metrics={"kl": 0.1}
    )
    status = client.get(reverse("training:run_status", args=[run.pk])).json()
    assert (status["step"], status["total"], status["phase"]) == (1, 100, "training")
    assert status["metrics"] == {"kl": 0.1}
    # 1 step in 100 s (and the time this request took): 99 more at that pace, 2 h 45 min or a bit more.
    assert re.fullmatch(
        r"running for 1 min 4\d s, about 2 h [45]\d min left at its pace so far", status["timing"]
    )


def test_past_its_last_step_a_ppo_run_says_it_is_evaluating():
    run = TrainingRun(kind="ppo", status="running", progress_step=100, progress_total=100)
    assert run_status(run)["phase"] == "saving, then the automatic evaluation"


def test_non_finite_metrics_reach_the_browser_as_null():
    """SQLite keeps NaN in a JSON column (Postgres refuses it), and JSON.parse refuses NaN: one such
    metric used to stop the live page at whatever it showed when it loaded."""
    run = TrainingRun(
        pk=7,
        kind="ppo",
        status="running",
        progress_step=1,
        progress_total=100,
        metrics={"reward": float("nan"), "kl": float("inf"), "entropy": 1.5},
        metrics_history=[{"step": 1, "reward": float("nan")}],
    )
    text = json.dumps(run_status(run), allow_nan=False)  # raises on NaN or Infinity
    parsed = json.loads(text)
    assert parsed["metrics"] == {"reward": None, "kl": None, "entropy": 1.5}
    assert parsed["history"] == [{"step": 1, "reward": None}]


def test_a_labeler_cannot_read_a_runs_status(client, labeler):
    client.force_login(labeler)
    run = make_run()
    assert client.get(reverse("training:run_status", args=[run.pk])).status_code == 403
