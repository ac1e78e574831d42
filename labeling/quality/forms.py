"""Forms of the quality pages: a batch's gold and screening settings, and a task's reference ranking.
They parse input; the services in this package apply the rules."""

from typing import Any, cast

from django import forms

from ..models import Batch, Task


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

    def __init__(self, *args: Any, batch: Batch, **kwargs: Any) -> None:
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
        screening = cast(forms.ModelChoiceField, self.fields["requires_qualification"])  # declared above
        screening.queryset = Batch.objects.filter(is_qualification=True).exclude(pk=batch.pk).order_by("name")


class ReferenceRankingForm(forms.Form):
    """One select per output: its place (1 = best); equal places are a tie."""

    def __init__(self, *args: Any, task: Task, **kwargs: Any) -> None:
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
