"""Forms of the labeler workspace. They parse and check the shape of what the browser sends; the business
rules (overlap, leases, dedup, ranking completeness) stay in the services. The text caps are the services'
(the pages' text boxes read them from these forms: maxlength)."""

import json
from typing import Any

from django import forms

from .handout.work import SKIP_REASON_MAX_CHARS
from .ranking_rules import COMMENT_MAX_CHARS, likert_missing
from .services.demonstrations import DEMONSTRATION_MAX_CHARS
from .services.prompts import PROMPT_MAX_CHARS
from .vocab import FLAGS, LABELER_SOURCES, LIKERT_MAX, LIKERT_MIN, Category, PromptSource

# The kinds of labeler-written prompt (InstructGPT section 3.2): short label, explanation.
SOURCE_HELP = {
    PromptSource.PLAIN: ("Plain", "Any task you come up with; aim for variety."),
    PromptSource.FEW_SHOT: (
        "Few-shot",
        "An instruction followed by several query/response pairs for that instruction.",
    ),
    PromptSource.USER_BASED: ("User-based", "Inspired by a use case from the waitlist applications."),
}


class SecondsField(forms.IntegerField):
    def __init__(self, **kwargs):
        super().__init__(min_value=0, max_value=7 * 24 * 3600, required=False, **kwargs)

    def clean(self, value):
        return super().clean(value) or 0


class PromptForm(forms.Form):
    text = forms.CharField(widget=forms.Textarea(attrs={"rows": 10}), max_length=PROMPT_MAX_CHARS, strip=True)
    category = forms.ChoiceField(choices=[("", "Choose a use case…"), *Category.choices])
    source = forms.ChoiceField(
        label="Kind",
        choices=[(s.value, SOURCE_HELP[s][0]) for s in LABELER_SOURCES],
        widget=forms.RadioSelect,
        initial=PromptSource.PLAIN,
    )
    seconds_spent = SecondsField()


class DemonstrationForm(forms.Form):
    text = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 14}), max_length=DEMONSTRATION_MAX_CHARS, strip=True
    )
    seconds_spent = SecondsField()


class SkipForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}), max_length=SKIP_REASON_MAX_CHARS, strip=True
    )


class RankingForm(forms.Form):
    """Likert and flags per completion are plain form inputs (likert-<id>, flag-<id>); the tiers come as
    JSON filled in by the page's script: [[best ids], [next tier ids], ...]."""

    tiers = forms.CharField(widget=forms.HiddenInput, required=False)
    all_unusable = forms.BooleanField(required=False, label="All outputs are unusable")
    comment = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}), required=False, max_length=COMMENT_MAX_CHARS
    )
    seconds_spent = SecondsField()

    def __init__(self, *args: Any, completion_ids: list[int], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.completion_ids = completion_ids
        likert = [(str(n), str(n)) for n in range(LIKERT_MIN, LIKERT_MAX + 1)]
        for cid in completion_ids:
            self.fields[f"likert-{cid}"] = forms.TypedChoiceField(choices=likert, coerce=int, required=False)
            self.fields[f"flag-{cid}"] = forms.MultipleChoiceField(
                choices=list(FLAGS.items()), required=False
            )

    def clean_tiers(self) -> list:
        raw = self.cleaned_data.get("tiers") or ""
        if not raw:
            raise forms.ValidationError("Rank the outputs: place every output in a tier.")
        try:
            tiers = json.loads(raw)
        except ValueError:
            raise forms.ValidationError(
                "The ranking could not be read; reload the page and try again."
            ) from None
        return tiers

    def clean(self) -> dict[str, Any]:
        super().clean()  # Form.clean returns cleaned_data (typed as possibly None)
        data = self.cleaned_data
        scores = {cid: {"likert": data.get(f"likert-{cid}") or None} for cid in self.completion_ids}
        unusable = bool(data.get("all_unusable"))
        if likert_missing(ratings=scores, completion_ids=self.completion_ids, all_unusable=unusable):
            raise forms.ValidationError(
                "Give every output a quality score from 1 to 7 (or tick 'All outputs are unusable').",
                code="likert_missing",
            )
        return data

    def ratings(self) -> dict[int, dict]:
        data = self.cleaned_data
        return {
            cid: {
                "likert": data.get(f"likert-{cid}") or None,
                "flags": {key: key in (data.get(f"flag-{cid}") or []) for key in FLAGS},
            }
            for cid in self.completion_ids
        }


# Share of each use case in the API prompt set (InstructGPT table 1), shown as guidance.
CATEGORY_SHARE = {
    Category.GENERATION: "45.6%",
    Category.OPEN_QA: "12.4%",
    Category.BRAINSTORMING: "11.2%",
    Category.CHAT: "8.4%",
    Category.REWRITE: "6.6%",
    Category.SUMMARIZATION: "4.2%",
    Category.CLASSIFICATION: "3.5%",
    Category.OTHER: "3.5%",
    Category.CLOSED_QA: "2.6%",
    Category.EXTRACT: "1.9%",
}
