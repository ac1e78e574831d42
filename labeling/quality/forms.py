"""Forms of the quality pages: a batch's gold and screening settings, a task's reference ranking, and
a new evaluation batch. They parse input; the services in this package apply the rules."""

from django import forms
from django.utils.html import escape

from training.models import ModelVersion

from ..models import Batch, Completion, Task


class BatchQualityForm(forms.Form):
    gold_rate = forms.FloatField(min_value=0, max_value=1, help_text="0.1 = one task in ten is a gold task.")
    is_qualification = forms.BooleanField(required=False, label="Qualification batch (gold tasks only)")
    qualification_threshold = forms.FloatField(
        min_value=0, max_value=1, label="Pass mark (gold accuracy, 0 to 1)"
    )
    requires_qualification = forms.ModelChoiceField(
        Batch.objects.none(),
        required=False,
        label="Labelers must first pass",
        empty_label="no screening",
    )

    def __init__(self, *args, batch: Batch, **kwargs) -> None:
        kwargs.setdefault(
            "initial",
            {
                "gold_rate": batch.gold_rate,
                "is_qualification": batch.is_qualification,
                "qualification_threshold": batch.qualification_threshold,
                "requires_qualification": batch.requires_qualification_id,
            },
        )
        super().__init__(*args, **kwargs)
        self.fields["requires_qualification"].queryset = (
            Batch.objects.filter(is_qualification=True).exclude(pk=batch.pk).order_by("name")
        )


class ReferenceRankingForm(forms.Form):
    """One select per output: its place (1 = best); equal places are a tie."""

    def __init__(self, *args, task: Task, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.task = task
        places = [(i, str(i)) for i in range(1, (task.k or 0) + 1)]
        current = {cid: tier for tier, ids in enumerate(task.gold_tiers or []) for cid in ids}
        for tc in task.task_completions.all():
            self.fields[f"place_{tc.completion_id}"] = forms.TypedChoiceField(
                choices=places,
                coerce=int,
                initial=current.get(tc.completion_id, tc.position) + 1,
                label=f"Output {tc.position + 1}",
            )

    def rows(self) -> list[tuple]:
        """(task completion, its place field), in the task's order."""
        return [(tc, self[f"place_{tc.completion_id}"]) for tc in self.task.task_completions.all()]

    def tiers(self) -> list[list[int]]:
        """Tiers of completion ids, best first, from the places chosen."""
        by_place: dict[int, list[int]] = {}
        for name, place in self.cleaned_data.items():
            by_place.setdefault(place, []).append(int(name.removeprefix("place_")))
        return [sorted(by_place[p]) for p in sorted(by_place)]


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

    def __init__(self, *args, **kwargs) -> None:
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
