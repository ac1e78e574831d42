"""The ranking page: K outputs of one prompt, each rated (Likert 1-7 and flags), then ranked in tiers."""

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from core.errors import AssignmentUnavailable, ServiceError

from ..forms import RankingForm
from ..models import Assignment, Completion
from ..services.rankings import ranking_submit
from ..vocab import FLAGS, LIKERT_MAX, LIKERT_MIN
from .navigation import assignment_lost, go_next, posted_seconds, task_context
from .refusals import posted, refuse, refused_form

LETTERS = "ABCDEFGHI"


def completions_in_display_order(assignment: Assignment) -> list[Completion]:
    """The order this labeler sees (Assignment.display_order); the task's order if that is missing or stale."""
    task_completions = assignment.task.task_completions.select_related("completion")
    by_id = {tc.completion_id: tc.completion for tc in task_completions}
    order = [cid for cid in assignment.display_order or [] if cid in by_id]
    if sorted(order) != sorted(by_id):
        order = list(by_id)
    return [by_id[cid] for cid in order]


def typed_ranking_example(k: int) -> list[str]:
    """The keys of a whole ranking typed in one go (static/js/workspace/quick_entry.js) for K outputs, shown in
    the page's key guide: "/", the outputs best first with one tie, a score for each, Enter, Enter again."""
    letters = [LETTERS[i].lower() for i in range(k)]
    order = [letter for pair in zip(letters[1::2], letters[0::2], strict=False) for letter in pair]
    order += letters[len(order) :]
    if k >= 3:
        order.insert(2, "=")
    scores = [str(max(LIKERT_MIN, LIKERT_MAX - 2 * i)) for i in range(k)]
    return ["/", *order, *scores, "Enter", "Enter"]


def draft_from_post(form: RankingForm) -> dict:
    """What the labeler had on the page when a submission was refused, in the page's draft format."""
    data, ids = posted(form), form.completion_ids
    tiers = form.cleaned_data.get("tiers") if hasattr(form, "cleaned_data") else None
    return {
        "likert": {str(cid): data.get(f"likert-{cid}") for cid in ids if data.get(f"likert-{cid}")},
        "flags": {str(cid): data.getlist(f"flag-{cid}") for cid in ids if data.getlist(f"flag-{cid}")},
        "tiers": tiers if isinstance(tiers, list) else [],
        "comment": data.get("comment", ""),
        "all_unusable": bool(data.get("all_unusable")),
    }


def ranking_page(request: HttpRequest, assignment: Assignment) -> HttpResponse:
    completions = completions_in_display_order(assignment)
    ids = [c.pk for c in completions]
    form = refused_form(request, assignment, lambda data: RankingForm(data, completion_ids=ids))
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            ranking_submit(
                assignment=assignment,
                tiers=data["tiers"],
                ratings=form.ratings(),
                seconds_spent=data["seconds_spent"],
                comment=data["comment"],
                all_unusable=data["all_unusable"],
            )
        except AssignmentUnavailable as exc:
            return assignment_lost(request, exc)
        except ServiceError as exc:
            form.add_error(None, exc.message[:1].upper() + exc.message[1:])
        else:
            messages.success(request, "Ranking saved.")
            return go_next(request, assignment.batch)
    if request.method == "POST":
        return refuse(request, assignment, form, draft=draft_from_post(form))
    cards = [{"id": c.pk, "letter": LETTERS[i], "text": c.text} for i, c in enumerate(completions)]
    config = {
        "page": "ranking",
        "bound": form.is_bound,
        "completions": [{"id": c["id"], "letter": c["letter"]} for c in cards],
        "seconds": posted_seconds(form),
    }
    context = task_context(assignment, title="Rank the outputs", config=config)
    if form.is_bound:
        context["ws_config"]["draft"] = draft_from_post(form)
    context.update(
        form=form,
        prompt=assignment.task.prompt,
        cards=cards,
        flags=list(FLAGS.items()),
        likert_range=range(LIKERT_MIN, LIKERT_MAX + 1),
        k=len(cards),
        last_letter=LETTERS[len(cards) - 1],
        typed_example=typed_ranking_example(len(cards)),
        compare_items=[
            {"key": c["letter"], "label": f"Output {c['letter']}", "text": c["text"]} for c in cards
        ],
    )
    return render(request, "labeling/workspace/ranking.html", context)
