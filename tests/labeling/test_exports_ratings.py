"""What a ranking says beyond its order (Likert scores, flags, comment, all unusable) in the exports: rm_rankings
lines and the ratings kind, the same bytes from both writers, and what a snapshot records it holds."""

import json

import pytest
from django.db import connection

from core.errors import ServiceError
from labeling.selectors.exports import labeler_pseudonym
from labeling.services.export_filters import filters_clean
from labeling.services.exports import dataset_lines, snapshot_create
from labeling.services.rankings import ranking_submit
from tests.factories import BatchFactory, PromptFactory, assignment_for, ranking_task

pytestmark = pytest.mark.django_db

NASTY = 'quote " backslash \\ newline\n tab\t bell\x07 é 漢字 😀 \u2028 {"json": [1]} %s \'single\''
# Keys jsonb would write shortest first (sexual, violent, opinion, ...): the export sorts them as json.dumps does.
FLAGS = {"sexual": True, "hallucination": False, "opinion": True, "fails_instruction": True}


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


@pytest.fixture
def rated(labeler, other_labeler):
    """Two rankings of one task (scores, flags, a nasty comment), one marked all unusable without scores,
    and a second batch with one ranking."""
    batch = BatchFactory(overlap=2)
    task = ranking_task(batch, k=3, prompt=PromptFactory(text="Prompt " + NASTY))
    a, b, c = task.task_completions.values_list("completion_id", flat=True)
    first = ranking_submit(
        assignment=assignment_for(task, labeler),
        tiers=[[a], [b, c]],
        ratings={
            a: {"likert": 7, "flags": FLAGS},
            b: {"likert": 3},
            c: {"likert": 1, "flags": {"violent": True}},
        },
        comment="Comment " + NASTY,
    )
    second = ranking_submit(
        assignment=assignment_for(task, other_labeler), tiers=[[c], [a], [b]], all_unusable=True
    )
    other = BatchFactory()
    ranking_task(other, k=2)
    other_task = other.tasks.get()
    x, y = other_task.task_completions.values_list("completion_id", flat=True)
    ranking_submit(
        assignment=assignment_for(other_task, labeler),
        tiers=[[y], [x]],
        ratings={x: {"likert": 2}, y: {"likert": 5}},
    )
    return {"batch": batch, "other": other, "task": task, "ids": [a, b, c], "first": first, "second": second}


def lines(kind, filters=None, writer="auto", format="standard"):
    clean = filters_clean(kind=kind, filters=filters or {})
    data = b"".join(dataset_lines(kind=kind, filters=clean, writer=writer, format=format))
    return data, [json.loads(line) for line in data.decode().split("\n") if line]


def test_rm_rankings_lines_carry_scores_flags_comment_and_all_unusable(rated):
    _, rows = lines("rm_rankings", {"batches": [rated["batch"].pk]})
    first, second = rows
    assert first["completion_ids"] == rated["ids"] and first["ranks"] == [0, 1, 1]
    assert first["likert"] == [7, 3, 1]
    assert first["flags"] == [FLAGS, {}, {"violent": True}]
    assert (first["comment"], first["all_unusable"]) == ("Comment " + NASTY, False)
    assert (second["likert"], second["flags"], second["comment"], second["all_unusable"]) == (
        [None, None, None],
        [{}, {}, {}],
        "",
        True,
    )


def test_the_ratings_export_has_one_line_per_rated_output(rated, labeler):
    _, rows = lines("ratings", {"batches": [rated["batch"].pk]})
    a, b, c = rated["ids"]
    assert [(r["ranking_id"], r["completion_id"], r["rank"], r["likert"]) for r in rows] == [
        (rated["first"].pk, a, 0, 7),
        (rated["first"].pk, b, 1, 3),
        (rated["first"].pk, c, 1, 1),
        (rated["second"].pk, a, 1, None),
        (rated["second"].pk, b, 2, None),
        (rated["second"].pk, c, 0, None),
    ]
    first = rows[0]
    assert set(first) == {
        "prompt", "completion", "likert", "flags", "rank", "comment", "all_unusable", "labeler", "split",
        "prompt_id", "task_id", "ranking_id", "completion_id",
    }  # fmt: skip
    assert (
        first["prompt"] == "Prompt " + NASTY
        and first["flags"] == FLAGS
        and first["comment"] == "Comment " + NASTY
    )
    assert first["labeler"] == labeler_pseudonym(labeler.pk)
    assert [r["all_unusable"] for r in rows] == [False] * 3 + [True] * 3


def test_the_ratings_export_takes_the_agreement_filters_but_not_consensus(rated):
    assert filters_clean(kind="ratings", filters={"min_agreement": 0.5})["min_agreement"] == 0.5
    with pytest.raises(ServiceError, match="rankings"):
        filters_clean(kind="ratings", filters={"rankings": "consensus"})


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the COPY writer is Postgres only")
@pytest.mark.parametrize("kind", ["rm_rankings", "ratings"])
@pytest.mark.parametrize("format", ["standard", "conversational"])
def test_copy_writer_gives_the_same_bytes_as_python(rated, kind, format):
    python, _ = lines(kind, writer="python", format=format)
    copy, _ = lines(kind, writer="copy", format=format)
    assert python and python == copy


def test_a_snapshot_records_the_lines_each_batch_gave(rated, researcher):
    batch, other = rated["batch"].pk, rated["other"].pk
    ratings = snapshot_create(kind="ratings", filters={}, created_by=researcher)
    assert ratings.contents == {"batches": {str(batch): 6, str(other): 2}, "outside_batches": 0}
    rankings = snapshot_create(kind="rm_rankings", filters={"batches": [other]}, created_by=researcher)
    assert rankings.contents == {"batches": {str(other): 1}, "outside_batches": 0}
    consensus = snapshot_create(kind="rm_rankings", filters={"rankings": "consensus"}, created_by=researcher)
    assert consensus.contents == {"batches": {str(batch): 1, str(other): 1}, "outside_batches": 0}
    prompts = snapshot_create(kind="prompts", filters={}, created_by=researcher)
    assert prompts.contents == {"batches": {}, "outside_batches": prompts.row_count}
