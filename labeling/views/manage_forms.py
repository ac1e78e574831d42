"""Forms of the management pages (batches, imports, datasets). They parse input; services decide."""

from typing import TYPE_CHECKING, Any, cast

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db.models import QuerySet

from core.errors import ServiceError
from core.roles import ROLE_LABELER

from ..models import Batch, Completion, SnapshotFormat, SnapshotKind
from ..services.imports import PII_MODES
from ..vocab import Category, PromptSource, Split

if TYPE_CHECKING:
    from django.contrib.auth.models import User

# The model versions completions come from live in the training side's registry; reached through the
# relation, so labeling does not import training (the layers run training -> labeling -> core -> audit).
ModelVersion = Completion.model_version.field.related_model


def labelers_field(required: bool = False, label: str = "Labelers") -> forms.ModelMultipleChoiceField:
    users = get_user_model().objects.filter(groups__name=ROLE_LABELER).order_by("username")
    return forms.ModelMultipleChoiceField(
        users, required=required, label=label, widget=forms.CheckboxSelectMultiple
    )


def groups_field() -> forms.ModelMultipleChoiceField:
    return forms.ModelMultipleChoiceField(
        Group.objects.order_by("name"),
        required=False,
        label="Groups",
        widget=forms.CheckboxSelectMultiple,
        help_text="Everyone in these groups (with the labeler role) may work on it.",
    )


def add_service_error(form: forms.Form, exc: ServiceError) -> None:
    """Put a service's error on the field it names, or on the form. Services name fields as the API spells
    them ('task_count'); a page names them in words, by the field's label."""
    if exc.field not in form.fields:
        form.add_error(None, exc.message)
        return
    label = form.fields[exc.field].label or exc.field.replace("_", " ").capitalize()
    form.add_error(exc.field, exc.message.replace(f"'{exc.field}'", f"“{label}”"))


class DateTimeLocal(forms.DateTimeInput):
    input_type = "datetime-local"

    def __init__(self) -> None:
        super().__init__(format="%Y-%m-%dT%H:%M")


class BatchSettingsForm(forms.Form):
    name = forms.CharField(max_length=200)
    overlap = forms.IntegerField(min_value=1, initial=1, label="Labels per task (overlap)")
    lease_minutes = forms.IntegerField(
        min_value=1,
        initial=30,
        label="Lease (minutes)",
        help_text="How long a labeler holds a task before it goes back to the pool.",
    )
    deadline = forms.DateTimeField(required=False, widget=DateTimeLocal(), help_text="UTC.")
    instructions = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="Shown to the labelers on every task.",
    )


class BatchCreateForm(BatchSettingsForm):
    kind = forms.ChoiceField(choices=Batch.Kind.choices)
    status = forms.ChoiceField(
        choices=[("active", "Open now"), ("draft", "Draft (open later)")], initial="active", label="Start"
    )
    labelers = labelers_field()
    groups = groups_field()
    # Prompt writing
    task_count = forms.IntegerField(required=False, min_value=1, label="Number of prompts to write")
    # Demonstration, ranking, evaluation: which prompts
    split = forms.MultipleChoiceField(
        choices=Split.choices, required=False, widget=forms.CheckboxSelectMultiple
    )
    category = forms.MultipleChoiceField(
        choices=Category.choices, required=False, widget=forms.CheckboxSelectMultiple
    )
    source = forms.MultipleChoiceField(
        choices=PromptSource.choices, required=False, widget=forms.CheckboxSelectMultiple
    )
    created_after = forms.DateTimeField(required=False, widget=DateTimeLocal(), label="Prompts created from")
    created_before = forms.DateTimeField(
        required=False, widget=DateTimeLocal(), label="Prompts created before"
    )
    limit = forms.IntegerField(required=False, min_value=1, label="At most this many prompts")
    # Ranking, evaluation: which completions
    # _default_manager: the model's `objects`, typed where the relation's model is not.
    model_version = forms.ModelChoiceField(
        ModelVersion._default_manager.order_by("-pk"),
        required=False,
        help_text="Rank the outputs this model version generated.",
    )
    source_name = forms.CharField(
        required=False, label="External source", help_text="Or the outputs imported under this model name."
    )

    field_order = ["name", "kind", "status", "overlap", "lease_minutes", "deadline", "instructions"]

    def service_arguments(self) -> dict:
        d = self.cleaned_data
        prompt_filters = {
            k: d[k]
            for k in ("split", "category", "source", "created_after", "created_before", "limit")
            if d.get(k)
        }
        completion_filters = {k: d[k] for k in ("model_version", "source_name") if d.get(k)}
        return {
            "name": d["name"],
            "kind": d["kind"],
            "status": d["status"],
            "overlap": d["overlap"],
            "lease_minutes": d["lease_minutes"],
            "deadline": d["deadline"],
            "instructions": d["instructions"],
            "labelers": list(d["labelers"]),
            "groups": list(d["groups"]),
            "task_count": d["task_count"],
            "prompt_filters": prompt_filters,
            "completion_filters": completion_filters,
        }


class LabelersForm(forms.Form):
    users = forms.ModelMultipleChoiceField(
        get_user_model().objects.all(), widget=forms.CheckboxSelectMultiple, label="Labelers"
    )

    def __init__(self, *args: Any, choices: "QuerySet[User] | None" = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if choices is not None:
            # self.fields holds a copy of the class's `users` field above: a ModelMultipleChoiceField.
            cast(forms.ModelMultipleChoiceField, self.fields["users"]).queryset = choices


class PromptImportForm(forms.Form):
    file = forms.FileField(
        help_text='JSONL: one {"text", "category", "origin_user", "metadata"} per line; '
        "or CSV with a header row naming those columns."
    )
    format = forms.ChoiceField(
        choices=[("", "From the file name"), ("jsonl", "JSONL"), ("csv", "CSV")], required=False
    )
    pii = forms.ChoiceField(
        choices=[(m, m.capitalize()) for m in PII_MODES],
        initial="flag",
        label="PII",
        help_text="Flag: keep the text, mark the prompt (left out of exports). "
        "Scrub: replace e-mails, phones, cards and IPs with placeholders.",
    )
    batch_name = forms.CharField(
        required=False,
        max_length=200,
        label="Demonstration batch (optional)",
        help_text="Name a batch to have the new prompts written up as demonstrations.",
    )
    overlap = forms.IntegerField(min_value=1, initial=1, label="Labels per task")
    labelers = labelers_field()


class CompletionImportForm(forms.Form):
    file = forms.FileField(
        help_text='JSONL: one {"prompt" or "prompt_id", "completions": [2 to 9 texts], "model"} per line.'
    )
    batch_name = forms.CharField(max_length=200)
    kind = forms.ChoiceField(choices=[("ranking", "Ranking"), ("evaluation", "Evaluation")])
    overlap = forms.IntegerField(min_value=1, initial=1, label="Labels per task")
    pii = forms.ChoiceField(
        choices=[(m, m.capitalize()) for m in PII_MODES], initial="flag", label="PII in new prompts"
    )
    labelers = labelers_field()


class SnapshotForm(forms.Form):
    kind = forms.ChoiceField(choices=SnapshotKind.choices)
    format = forms.ChoiceField(
        choices=SnapshotFormat.choices,
        initial=SnapshotFormat.STANDARD,
        required=False,
        help_text="Conversational: texts as chat messages, for chat models trained with their chat template.",
    )
    batches = forms.ModelMultipleChoiceField(
        Batch.objects.order_by("-pk"),
        required=False,
        widget=forms.SelectMultiple(attrs={"size": 6}),
        help_text="None chosen: every batch.",
    )
    split = forms.MultipleChoiceField(
        choices=Split.choices, required=False, widget=forms.CheckboxSelectMultiple
    )
    category = forms.MultipleChoiceField(
        choices=Category.choices, required=False, widget=forms.SelectMultiple(attrs={"size": 6})
    )
    created_after = forms.DateTimeField(required=False, widget=DateTimeLocal(), label="Labeled from (UTC)")
    created_before = forms.DateTimeField(required=False, widget=DateTimeLocal(), label="Labeled before (UTC)")
    labelers = forms.ModelMultipleChoiceField(
        get_user_model().objects.filter(groups__name=ROLE_LABELER).order_by("username"),
        required=False,
        widget=forms.SelectMultiple(attrs={"size": 6}),
    )
    rankings = forms.ChoiceField(
        choices=[("all", "Every ranking"), ("consensus", "One consensus ranking per task (ranked pairs)")],
        initial="all",
        label="Several labelers on a task",
        help_text="Reward-model kinds only.",
    )
    min_agreement = forms.FloatField(
        required=False, min_value=0, max_value=1, label="Minimum agreement (0 to 1)"
    )
    include_pii = forms.BooleanField(required=False, label="Include prompts flagged for PII")

    def clean_format(self) -> str:
        return self.cleaned_data["format"] or SnapshotFormat.STANDARD

    def filters(self) -> dict:
        d = self.cleaned_data
        filters = {
            "batches": [b.pk for b in d["batches"]],
            "split": d["split"],
            "category": d["category"],
            "created_after": d["created_after"].isoformat() if d["created_after"] else None,
            "created_before": d["created_before"].isoformat() if d["created_before"] else None,
            "labelers": [u.pk for u in d["labelers"]],
            "min_agreement": d["min_agreement"],
            "include_pii": d["include_pii"],
        }
        if d["kind"] in ("rm_pairs", "rm_rankings"):
            filters["rankings"] = d["rankings"]
        return {k: v for k, v in filters.items() if v not in (None, [], False)}
