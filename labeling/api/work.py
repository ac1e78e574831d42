"""Labeling work over the API: tasks (read), my next task, submit, and rankings (read).

Labelers see the tasks of the batches they may work on and only their own rankings; batch admins and
researchers see everything. Handing out and submitting go through the workspace's services, so the API
and the browser follow the same rules (leases, overlap, idempotent submits)."""

from typing import TYPE_CHECKING, cast

import django_filters
from django.db.models import Model, Q, QuerySet
from django.http import Http404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response

from core.api.base import ApiMixin, UtcDateTimeFilter
from core.permissions import admin_or_researcher, any_role
from core.roles import is_labeler

from ..handout.next import NotOnBatch, assignment_next, completions_shown
from ..handout.rules import user_may_work_on
from ..handout.statements import assignment_to_submit
from ..models import Assignment, Batch, Ranking, Rating, Task
from ..services.demonstrations import demonstration_submit
from ..services.prompt_writing import prompt_submit
from ..services.rankings import ranking_submit
from ..services.undo import UndoClosed, submission_undo
from ..vocab import SECONDS_MAX, Category, PromptSource

if TYPE_CHECKING:
    from django.contrib.auth.models import User


class CompletionItem(serializers.Serializer):
    id = serializers.IntegerField()
    text = serializers.CharField()


class TaskPrompt(serializers.Serializer):
    id = serializers.IntegerField()
    text = serializers.CharField()
    category = serializers.CharField()


class TaskOutput(serializers.ModelSerializer):
    prompt = TaskPrompt(read_only=True, allow_null=True)
    completions = serializers.SerializerMethodField()

    class Meta:
        model = Task
        fields = ["id", "batch", "prompt", "k", "completions", "created_at"]

    def get_completions(self, task: Task) -> list[dict]:
        return [{"id": tc.completion_id, "text": tc.completion.text} for tc in task.shown_completions]


class AssignmentOutput(serializers.ModelSerializer):
    kind = serializers.CharField(source="batch.kind")
    instructions = serializers.CharField(source="batch.instructions")
    prompt = TaskPrompt(source="task.prompt", read_only=True, allow_null=True)
    completions = serializers.SerializerMethodField()

    class Meta:
        model = Assignment
        fields = [
            "id",
            "batch",
            "task",
            "kind",
            "status",
            "lease_expires_at",
            "instructions",
            "prompt",
            "completions",
            "draft",
        ]

    def get_completions(self, assignment: Assignment) -> list[dict]:
        return completions_in_my_order(assignment)


def completions_in_my_order(assignment: Assignment) -> list[dict]:
    """The task's completions in this labeler's own (shuffled, remembered) order. Querysets feeding this
    prefetch them with their completions (completions_shown)."""
    texts = {tc.completion_id: tc.completion.text for tc in assignment.task.shown_completions}
    order = [cid for cid in assignment.display_order if cid in texts] or list(texts)
    return [{"id": cid, "text": texts[cid]} for cid in order]


_moment = serializers.DateTimeField()


def assignment_answer(assignment: Assignment) -> dict:
    """AssignmentOutput's data, built by hand for `next`, which answers every hand-out: the serializer
    cost 0.3 ms of CPU per call, this 0.01 ms (tests/api/test_work_api.py checks that they agree)."""
    batch, prompt = assignment.batch, assignment.task.prompt
    return {
        "id": assignment.pk,
        "batch": assignment.batch_id,
        "task": assignment.task_id,
        "kind": batch.kind,
        "status": str(assignment.status),
        "lease_expires_at": _moment.to_representation(assignment.lease_expires_at),
        "instructions": batch.instructions,
        "prompt": None
        if prompt is None
        else {"id": prompt.pk, "text": prompt.text, "category": prompt.category},
        "completions": completions_in_my_order(assignment),
        "draft": assignment.draft,
    }


class TaskFilter(django_filters.FilterSet):
    # Ids, not model choices: the browsable API would list every batch and prompt in the filter form.
    batch = django_filters.NumberFilter(field_name="batch")
    prompt = django_filters.NumberFilter(field_name="prompt")

    class Meta:
        model = Task
        fields = ["batch", "prompt"]


class TaskViewSet(ApiMixin, viewsets.ReadOnlyModelViewSet):
    serializer_class = TaskOutput
    filterset_class = TaskFilter
    roles = {"list": any_role, "retrieve": any_role, "next": is_labeler}

    def get_queryset(self) -> QuerySet[Task]:
        tasks = Task.objects.select_related("prompt").prefetch_related(completions_shown("task_completions"))
        user = self.request.user
        if self.for_schema or admin_or_researcher(user):
            return tasks
        if not is_labeler(user):
            return tasks.none()
        mine = Batch.objects.filter(Q(labelers=user) | Q(groups__in=user.groups.all()))
        return tasks.filter(batch__in=mine.values("pk"))

    @extend_schema(
        request=None, responses={200: AssignmentOutput, 204: OpenApiResponse(description="nothing left")}
    )
    @action(detail=False, methods=["post"], url_path=r"next/(?P<batch_id>\d+)")
    def next(self, request: Request, batch_id: str) -> Response:
        """My next task in a batch: my live assignment there, or a new one; 204 when nothing is left for me."""
        # assignment_next reads the batch itself, under the labeler's lock: no read of it here (0.4 ms of
        # CPU on every hand-out). Whether it exists is asked only when the answer is no: 404, not 403.
        missing = Http404("No Batch matches the given query.")
        if int(batch_id) >= 2**63:  # beyond the id column
            raise missing
        labeler = cast("User", request.user)  # ByRole: is_labeler, so signed in
        try:
            assignment = assignment_next(labeler=labeler, batch=Batch(pk=int(batch_id)))
        except Batch.DoesNotExist:
            raise missing from None
        except NotOnBatch as exc:
            if not Batch.objects.filter(pk=batch_id).exists():
                raise missing from None
            raise PermissionDenied(exc.message) from exc
        if assignment is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(assignment_answer(assignment))


class SubmitInput(serializers.Serializer):
    """Ranking and evaluation: tiers (best first, ties share a tier), ratings (a Likert score for every
    output unless all_unusable, as on the page: labeling.ranking_rules), comment, all_unusable.
    Demonstration: text. Prompt writing: text, category, source. All: seconds_spent."""

    tiers = serializers.ListField(
        child=serializers.ListField(child=serializers.IntegerField()), required=False
    )
    ratings = serializers.DictField(child=serializers.DictField(), required=False, default=dict)
    comment = serializers.CharField(required=False, default="", allow_blank=True)
    all_unusable = serializers.BooleanField(required=False, default=False)
    text = serializers.CharField(required=False, default="", allow_blank=True, trim_whitespace=False)
    category = serializers.ChoiceField(choices=Category.choices, required=False)
    # A declared field, not Field.source: the serializer metaclass pops it from the class (stubs can't tell).
    source = serializers.ChoiceField(  # type: ignore[assignment]
        choices=PromptSource.choices, required=False, default=PromptSource.PLAIN
    )
    seconds_spent = serializers.IntegerField(min_value=0, max_value=SECONDS_MAX, required=False, default=0)


class SubmitOutput(serializers.Serializer):
    """status 'pending': the undo window is open until undo_until (POST .../undo/ takes it back); the
    ranking, demonstration or prompt is written, and its id known, once the window closes. 'submitted':
    written now (no undo window: LABELING_UNDO_SECONDS is 0)."""

    assignment = serializers.IntegerField()
    status = serializers.CharField()
    undo_until = serializers.DateTimeField(allow_null=True)
    ranking = serializers.IntegerField(allow_null=True)
    demonstration = serializers.IntegerField(allow_null=True)
    prompt = serializers.IntegerField(allow_null=True)


class UndoOutput(serializers.Serializer):
    assignment = serializers.IntegerField()
    status = serializers.CharField()
    lease_expires_at = serializers.DateTimeField()
    draft = serializers.DictField()


class AssignmentViewSet(ApiMixin, viewsets.GenericViewSet):
    """A labeler's own assignments: read one, submit it."""

    serializer_class = AssignmentOutput
    roles = {"retrieve": is_labeler, "submit": is_labeler, "undo": is_labeler}

    def get_queryset(self) -> QuerySet[Assignment]:
        if self.for_schema:
            return Assignment.objects.none()
        assignments = Assignment.objects.select_related("batch")
        if self.action == "retrieve":  # what AssignmentOutput shows; a submit needs the batch only
            assignments = assignments.select_related("task__prompt").prefetch_related(
                completions_shown("task__task_completions")
            )
        return assignments.filter(labeler=cast("User", self.request.user))  # ByRole: is_labeler, so signed in

    def get_object(self) -> Assignment:
        labeler = cast("User", self.request.user)  # ByRole: is_labeler, so signed in
        if self.action == "submit":  # the batch's kind is all a submit reads before its service
            try:
                pk = int(self.kwargs["pk"])
            except ValueError:
                raise Http404 from None
            assignment, on_batch = assignment_to_submit(labeler=labeler, pk=pk)
            if assignment is None:
                raise Http404("No Assignment matches the given query.")
        else:
            assignment = super().get_object()
            on_batch = user_may_work_on(user=labeler, batch=assignment.batch)
        if not on_batch:
            raise PermissionDenied("You are no longer a labeler of this batch.")
        return assignment

    def retrieve(self, request, pk=None):
        return Response(AssignmentOutput(self.get_object()).data)

    @extend_schema(request=SubmitInput, responses={201: SubmitOutput})
    @action(detail=True, methods=["post"])
    def submit(self, request, pk=None):
        assignment = self.get_object()
        data = SubmitInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        out: dict = {"assignment": assignment.pk, "ranking": None, "demonstration": None, "prompt": None}
        kind = assignment.batch.kind
        stored: Model | None
        if kind in (Batch.Kind.RANKING, Batch.Kind.EVALUATION):
            if "tiers" not in values:
                raise serializers.ValidationError({"tiers": ["This field is required."]})
            stored = ranking_submit(
                assignment=assignment,
                tiers=values["tiers"],
                ratings=values["ratings"],
                seconds_spent=values["seconds_spent"],
                comment=values["comment"],
                all_unusable=values["all_unusable"],
            )
            out["ranking"] = stored and stored.pk
        elif kind == Batch.Kind.DEMONSTRATION:
            stored = demonstration_submit(
                assignment=assignment, text=values["text"], seconds_spent=values["seconds_spent"]
            )
            out["demonstration"] = stored and stored.pk
        else:
            stored = prompt_submit(
                assignment=assignment,
                text=values["text"],
                category=values.get("category", ""),
                source=values["source"],
                seconds_spent=values["seconds_spent"],
            )
            out["prompt"] = stored and stored.pk
        if stored is None:  # pending: the undo window is open
            held = Assignment.objects.only("status", "undo_until").get(pk=assignment.pk)
            undo_until = None if held.undo_until is None else _moment.to_representation(held.undo_until)
            out.update(status=str(held.status), undo_until=undo_until)
        else:
            out.update(status="submitted", undo_until=None)
        return Response(out, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=None,
        responses={
            200: UndoOutput,
            409: OpenApiResponse(description="the undo window has closed, or it was already undone"),
        },
    )
    @action(detail=True, methods=["post"])
    def undo(self, request, pk=None):
        """Take back my submission of this assignment while its undo window is open (LABELING_UNDO_SECONDS
        after the submit): the assignment is live again, its draft holding what was submitted."""
        try:
            reopened = submission_undo(assignment_id=self.get_object().pk, labeler=request.user)
        except UndoClosed as exc:
            return Response(exc.as_dict(), status=status.HTTP_409_CONFLICT)
        except Assignment.DoesNotExist:
            raise Http404("No Assignment matches the given query.") from None
        return Response(
            {
                "assignment": reopened.pk,
                "status": str(reopened.status),
                "lease_expires_at": _moment.to_representation(reopened.lease_expires_at),
                "draft": reopened.draft,
            }
        )


class RatingOutput(serializers.ModelSerializer):
    class Meta:
        model = Rating
        fields = ["completion", "tier", "likert", "flags"]


class RankingOutput(serializers.ModelSerializer):
    labeler: serializers.SlugRelatedField["User"] = serializers.SlugRelatedField(
        slug_field="username", read_only=True
    )
    batch = serializers.IntegerField(source="task.batch_id", read_only=True)
    ratings = RatingOutput(many=True, read_only=True)

    class Meta:
        model = Ranking
        fields = [
            "id",
            "task",
            "batch",
            "labeler",
            "tiers",
            "all_unusable",
            "comment",
            "seconds_spent",
            "created_at",
            "ratings",
        ]


class RankingFilter(django_filters.FilterSet):
    task = django_filters.NumberFilter(field_name="task")  # an id: a model choice lists every task
    batch = django_filters.NumberFilter(field_name="task__batch")
    labeler = django_filters.CharFilter(field_name="labeler__username")
    created_after = UtcDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = UtcDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = Ranking
        fields = ["task"]


class RankingViewSet(ApiMixin, viewsets.ReadOnlyModelViewSet):
    serializer_class = RankingOutput
    filterset_class = RankingFilter
    roles = {"list": any_role, "retrieve": any_role}

    def get_queryset(self) -> QuerySet[Ranking]:
        rankings = Ranking.objects.select_related("labeler", "task").prefetch_related("ratings")
        if self.for_schema or admin_or_researcher(self.request.user):
            return rankings
        return rankings.filter(labeler=cast("User", self.request.user))  # ByRole: any_role, so signed in
