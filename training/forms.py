import json

from django import forms

from labeling.models import DatasetSnapshot
from training.ml.launch import LAUNCH_CONFIGS

from .models import ModelVersion, RunKind


class JSONObjectField(forms.CharField):
    def to_python(self, value):
        value = (value or "").strip()
        if not value:
            return {}
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError as exc:
            raise forms.ValidationError(
                f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})."
            ) from exc
        if not isinstance(parsed, dict):
            raise forms.ValidationError('give an object, e.g. {"num_train_epochs": 2}.')
        return parsed


def launch_config_field() -> forms.ChoiceField:
    """A shipped accelerate config by name; empty: the server's default (TRAINING_LAUNCH_CONFIG)."""
    return forms.ChoiceField(
        choices=[("", "default"), *((c.name, f"{c.name}: {c.summary}") for c in LAUNCH_CONFIGS.values())],
        required=False,
        help_text="How the GPU worker runs each stage when it launches them (one GPU, DDP, FSDP2, ZeRO).",
    )


class RunStartForm(forms.Form):
    kind = forms.ChoiceField(choices=RunKind.choices)
    base_model = forms.ModelChoiceField(
        queryset=ModelVersion.objects.order_by("-created_at"),
        help_text="The model to start from (for RM: the SFT policy).",
    )
    reward_model = forms.ModelChoiceField(
        queryset=ModelVersion.objects.filter(kind="rm").order_by("-created_at"),
        required=False,
        help_text="PPO: the reward to maximise (required). SFT: picks the final epoch by its mean reward on "
        "samples of the valid prompts, as InstructGPT did (optional). Other kinds: not used.",
    )
    snapshots = forms.ModelMultipleChoiceField(
        queryset=DatasetSnapshot.objects.order_by("-created_at"),
        help_text="The dataset snapshot(s) to train on.",
    )
    config = JSONObjectField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text='Config overrides as JSON, e.g. {"num_train_epochs": 2, "learning_rate": 1e-5}.',
    )
    launch_config = launch_config_field()


class RoundStartForm(forms.Form):
    method = forms.ChoiceField(choices=[("ppo", "PPO (SFT -> RM -> PPO)"), ("dpo", "DPO (SFT -> DPO)")])
    k = forms.IntegerField(
        min_value=2, max_value=9, initial=4, help_text="Outputs per prompt in the new batch."
    )
    prompt_limit = forms.IntegerField(
        min_value=1, initial=50, help_text="At most this many prompts to sample for."
    )
    mix_sft = forms.BooleanField(
        required=False, help_text="Mix the SFT model's samples in, as InstructGPT did."
    )
    batch_status = forms.ChoiceField(choices=[("active", "active"), ("draft", "draft")], initial="active")
    launch_config = launch_config_field()
