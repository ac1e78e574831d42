"""The hand-out rule's two forms agree: on random tasks and assignments (any overlap, assignments of the
labeler and of others in every state, leases live or lapsed, gold tasks, prompts of the labeler's own), the
ORM form (labeling.handout.rules.open_tasks) and the SQL form the hand-out walks
(labeling.handout.statements.open_task_ids, built from rules.open_task_where and its first filters on the
trigger-kept counts of migration 0010) pick exactly the same open tasks, and both the tasks the rule
states in plain words.

Both forms speak for a labeler who holds no live lease in the batch (one who does gets that task back and
never picks), so the labeler's own assignments here are finished, expired or lapsed. Each example runs in
a savepoint rolled back after it."""

from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone
from hypothesis import given, settings
from hypothesis import strategies as st

from core.roles import ROLE_LABELER
from labeling.handout.rules import open_tasks
from labeling.handout.statements import open_task_ids
from labeling.models import Assignment, Batch, Task
from tests.factories import BatchFactory, PromptFactory, UserFactory
from tests.fuzz.strategies import FUZZ

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the first filters' counts are a trigger's"),
]

Status = Assignment.Status
OTHERS = 3
# (status, lease lapsed?) an assignment can be in; the labeler's own is never live (see the docstring).
STATES = [(s, lapsed) for s in Status.values for lapsed in (False, True)]
OWN_STATES = [None, *((s, lapsed) for s, lapsed in STATES if not (s == Status.ACTIVE and not lapsed))]

task_data = st.fixed_dictionaries(
    {
        "gold": st.integers(0, 7).map(lambda n: n == 0),
        "own_prompt": st.booleans(),
        "mine": st.sampled_from(OWN_STATES),
        "others": st.lists(st.one_of(st.none(), st.sampled_from(STATES)), min_size=OTHERS, max_size=OTHERS),
    }
)


@pytest.fixture
def people(db):
    labeler = UserFactory(username="rule-me", roles=[ROLE_LABELER])
    others = [UserFactory(username=f"rule-other-{i}", roles=[ROLE_LABELER]) for i in range(OTHERS)]
    return labeler, others, PromptFactory(author=labeler), PromptFactory()


def _build(kind: str, overlap: int, tasks: list[dict], people, now) -> tuple[Batch, dict[int, dict]]:
    labeler, others, own_prompt, prompt = people
    batch = BatchFactory(kind=kind, overlap=overlap)
    made = {}
    for data in tasks:
        task = Task.objects.create(
            batch=batch,
            prompt=own_prompt if data["own_prompt"] else prompt,
            is_gold=data["gold"],
            gold_tiers=[[1], [2]] if data["gold"] else None,
        )
        for who, state in [(labeler, data["mine"]), *zip(others, data["others"], strict=True)]:
            if state is not None:
                status, lapsed = state
                lease = now + (timedelta(minutes=-5) if lapsed else timedelta(minutes=30))
                Assignment.objects.create(
                    task=task, batch=batch, labeler=who, status=status, lease_expires_at=lease
                )
        made[task.pk] = data
    return batch, made


def _open_in_plain_words(batch: Batch, made: dict[int, dict]) -> set[int]:
    """The rule as the docs state it: not gold; not finished by me; for demonstrations not my own prompt;
    fewer than `overlap` of the others submitted (undo window open or not) or hold a live lease."""
    open_ids = set()
    for pk, data in made.items():
        mine, own = data["mine"], data["own_prompt"] and batch.kind == Batch.Kind.DEMONSTRATION
        taken = sum(
            1
            for state in data["others"]
            if state is not None
            and (
                state[0] in (Status.SUBMITTED, Status.PENDING) or (state[0] == Status.ACTIVE and not state[1])
            )
        )
        finished = mine is not None and mine[0] in (Status.SUBMITTED, Status.PENDING, Status.SKIPPED)
        if not data["gold"] and not finished and not own and taken < batch.overlap:
            open_ids.add(pk)
    return open_ids


@settings(FUZZ, max_examples=100)  # a few seconds: each example writes up to 30 rows
@given(
    kind=st.sampled_from([Batch.Kind.RANKING, Batch.Kind.DEMONSTRATION]),
    overlap=st.integers(1, 4),
    tasks=st.lists(task_data, min_size=1, max_size=6),
)
def test_the_orm_and_sql_forms_pick_the_same_open_tasks(people, kind, overlap, tasks):
    with transaction.atomic():
        now = timezone.now()
        batch, made = _build(kind, overlap, tasks, people, now)
        labeler = people[0]
        by_orm = set(open_tasks(batch=batch, labeler=labeler, now=now).values_list("pk", flat=True))
        by_sql = open_task_ids(batch=batch, labeler=labeler, now=now)
        assert by_sql == sorted(by_sql)  # the order the hand-out walks
        assert set(by_sql) == by_orm == _open_in_plain_words(batch, made)
        transaction.set_rollback(True)
