"""The form of a new evaluation batch: it parses input; training/evaluation/batches.py applies the rules."""

from typing import Any

from django import forms
from django.utils.html import escape

from labeling.models import Batch, Completion

from ..models import ModelVersion


class EvaluationCreateForm(forms.Form):
    name = forms.CharField(max_length=200)
    model_versions = forms.ModelMultipleChoiceField(
        ModelVersion.objects.order_by("-created_at"),
        required=False,
        help_text="Their outputs on the test-split prompts must exist (a generate run, or an import).",
    )
    external_sources = forms.CharField(
        required=False,
        help_text="Imported models, by source name, separated by commas.",
    )
    status = forms.ChoiceField(choices=[(Batch.Status.DRAFT, "Draft"), (Batch.Status.ACTIVE, "Active")])
    overlap = forms.IntegerField(min_value=1, max_value=50, initial=3, help_text="Labelers per task.")
    limit = forms.IntegerField(min_value=1, required=False, help_text="At most this many prompts.")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        known = (
            Completion.objects.filter(model_version__isnull=True)
            .exclude(source_name="")
            .values_list("source_name", flat=True)
            .distinct()
            .order_by("source_name")[:20]
        )
        if known:
            # help_text is not escaped when Django renders a form: source names come from imports.
            self.fields["external_sources"].help_text += " Known: " + escape(", ".join(known)) + "."

    def clean_external_sources(self) -> list[str]:
        return [s.strip() for s in self.cleaned_data["external_sources"].split(",") if s.strip()]
