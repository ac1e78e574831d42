"""The explorer's filters: one GET form, so every filtered list is a URL to bookmark or share. A value
that does not fit gets an error naming the filter, and the list is not shown."""

from collections.abc import Mapping
from typing import Any, cast

from django import forms
from django.contrib.auth import get_user_model
from django.db.models import QuerySet

from ..models import Batch
from ..selectors.explorer import ALL_UNUSABLE, FILTERS, ExplorerFilters, scope_batches
from ..vocab import FLAGS, Category, Split

YES_NO = {"yes": True, "no": False}


class ExplorerForm(forms.Form):
    q = forms.CharField(
        label="Search",
        required=False,
        max_length=200,
        help_text='Words, "a phrase", -left out, or OR.',
    )
    batch: "forms.ModelChoiceField[Batch]" = forms.ModelChoiceField(
        queryset=None, required=False, empty_label="Any batch"
    )
    labeler = forms.ModelChoiceField(
        queryset=get_user_model().objects.order_by("username"),
        to_field_name="username",
        required=False,
        empty_label="Anyone",
    )
    category = forms.ChoiceField(choices=[("", "Any category"), *Category.choices], required=False)
    split = forms.ChoiceField(choices=[("", "Any split"), *Split.choices], required=False)
    agreement_min = forms.IntegerField(label="Agreement from (%)", min_value=0, max_value=100, required=False)
    agreement_max = forms.IntegerField(label="Agreement to (%)", min_value=0, max_value=100, required=False)
    flag = forms.ChoiceField(
        label="Flag",
        choices=[("", "Any or none"), *FLAGS.items(), (ALL_UNUSABLE, "All outputs unusable")],
        required=False,
    )
    too_fast = forms.ChoiceField(
        label="Speed",
        choices=[("", "Any speed"), ("yes", "Too fast"), ("no", "Not too fast")],
        required=False,
    )
    gold = forms.ChoiceField(
        label="Gold", choices=[("", "Gold or not"), ("yes", "Gold only"), ("no", "No gold")], required=False
    )
    # Where the page starts (keyset paging): set by the page links, not shown in the form.
    after = forms.IntegerField(min_value=0, required=False)
    before = forms.IntegerField(min_value=0, required=False)

    def __init__(
        self, data: Mapping[str, Any] | None, *, kind: str, scope: QuerySet[Batch] | None, **kwargs: Any
    ) -> None:
        super().__init__(data, **kwargs)
        self.kind = kind
        for name in list(self.fields):
            if name not in FILTERS[kind] and name not in ("after", "before"):
                del self.fields[name]
        if "batch" in self.fields:
            # self.fields holds a copy of the class's `batch` field above: a ModelChoiceField.
            cast(forms.ModelChoiceField, self.fields["batch"]).queryset = scope_batches(scope)
        if "labeler" in self.fields:
            self.fields["labeler"].label = "Labeler" if kind == "rankings" else "Author"

    @property
    def filter_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in self.fields if name not in ("after", "before")]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        assert data is not None  # Form.clean returns cleaned_data
        low, high = data.get("agreement_min"), data.get("agreement_max")
        if low is not None and high is not None and low > high:
            self.add_error("agreement_max", f"'Agreement to' ({high}%) is below 'Agreement from' ({low}%).")
        if data.get("after") is not None and data.get("before") is not None:
            self.add_error("before", "Give 'after' or 'before', not both.")
        return data

    def filters(self) -> ExplorerFilters:
        data = self.cleaned_data

        def share(name: str) -> float | None:
            value = data.get(name)
            return None if value is None else value / 100

        return ExplorerFilters(
            q=(data.get("q") or "").strip(),
            batch=data.get("batch"),
            labeler=data.get("labeler"),
            category=data.get("category") or "",
            split=data.get("split") or "",
            agreement_min=share("agreement_min"),
            agreement_max=share("agreement_max"),
            flag=data.get("flag") or "",
            too_fast=YES_NO.get(data.get("too_fast") or ""),
            gold=YES_NO.get(data.get("gold") or ""),
        )
