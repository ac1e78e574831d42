"""Dataset snapshots: formats, filters, same bytes from both writers, immutability, all-or-nothing files."""

import hashlib
import json

import pytest
from django.db import IntegrityError, connection, transaction

from core.errors import ServiceError
from labeling.models import DatasetSnapshot, Demonstration
from labeling.selectors.exports import labeler_pseudonym
from labeling.services import exports
from labeling.services.exports import (
    dataset_lines,
    filters_clean,
    snapshot_create,
    snapshot_delete,
    snapshot_path,
)
from labeling.services.rankings import ranking_submit
from tests.factories import BatchFactory, PromptFactory, assignment_for, ranking_task, scored

pytestmark = pytest.mark.django_db

NASTY = 'quote " backslash \\ newline\n tab\t bell\x07 esc\x1b del\x7f é 漢字 😀 \u2028 {"json": [1]} %s %% \'single\''


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


def ids(task):
    return list(task.task_completions.values_list("completion_id", flat=True))


def rank(task, labeler, tiers):
    return ranking_submit(
        assignment=assignment_for(task, labeler), tiers=tiers, seconds_spent=10, ratings=scored(tiers)
    )


@pytest.fixture
def labeled(labeler, other_labeler):
    """A ranking batch with two tasks ranked by two labelers, and a demonstration; nasty text included."""
    batch = BatchFactory(overlap=2)
    t1 = ranking_task(batch, k=3, prompt=PromptFactory(text="Nasty prompt: " + NASTY))
    t2 = ranking_task(batch, k=4)
    a, b, c = ids(t1)
    t1.completions.filter(pk=a).update(text="best " + NASTY)
    rank(t1, labeler, [[a], [b], [c]])
    rank(t1, other_labeler, [[a], [b, c]])
    w, x, y, z = ids(t2)
    rank(t2, labeler, [[w, x], [y], [z]])
    Demonstration.objects.create(prompt=t1.prompt, author=labeler, text="demo " + NASTY, seconds_spent=5)
    return {"batch": batch, "t1": t1, "t2": t2}


def lines(kind, filters=None, writer="auto"):
    data = b"".join(
        dataset_lines(kind=kind, filters=filters_clean(kind=kind, filters=filters or {}), writer=writer)
    )
    return data, [json.loads(line) for line in data.decode().split("\n") if line]


def test_rm_pairs_has_one_line_per_comparison_with_ids_and_pseudonyms(labeled, labeler):
    _, rows = lines("rm_pairs")
    assert len(rows) == 3 + 2 + 5  # strict 3-ranking, one tie, 2+1+1 tiers over 4
    first = rows[0]
    assert set(first) == {
        "prompt",
        "chosen",
        "rejected",
        "chosen_id",
        "rejected_id",
        "prompt_id",
        "task_id",
        "ranking_id",
        "labeler",
        "split",
    }
    assert first["prompt"] == "Nasty prompt: " + NASTY and first["chosen"] == "best " + NASTY
    assert first["labeler"] == labeler_pseudonym(labeler.pk) and len(first["labeler"]) == 16
    assert labeler.username not in json.dumps(rows)


def test_rm_rankings_gives_ranks_with_shared_ties(labeled):
    _, rows = lines("rm_rankings")
    assert [r["ranks"] for r in rows] == [[0, 1, 2], [0, 1, 1], [0, 0, 1, 2]]
    assert rows[0]["completions"][0] == "best " + NASTY and rows[0]["completion_ids"] == ids(labeled["t1"])


def test_consensus_gives_one_ranking_per_task(labeled):
    _, rows = lines("rm_rankings", {"rankings": "consensus"})
    assert [(r["task_id"], r["ranks"], r["ranking_id"]) for r in rows] == [
        (labeled["t1"].pk, [0, 1, 2], None),
        (labeled["t2"].pk, [0, 0, 1, 2], None),
    ]
    _, pairs = lines("rm_pairs", {"rankings": "consensus"})
    assert len(pairs) == 3 + 5


def test_sft_and_prompts_formats(labeled):
    _, sft = lines("sft")
    assert [(r["prompt"], r["completion"]) for r in sft] == [("Nasty prompt: " + NASTY, "demo " + NASTY)]
    _, prompts = lines("prompts")
    assert {"prompt", "prompt_id", "split", "category"} == set(prompts[0]) and len(prompts) == 2


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the COPY writer is Postgres only")
@pytest.mark.parametrize("kind", ["rm_pairs", "rm_rankings", "sft", "prompts"])
def test_copy_writer_gives_the_same_bytes_as_python(labeled, kind):
    python, _ = lines(kind, writer="python")
    copy, _ = lines(kind, writer="copy")
    assert python and python == copy


def test_filters_select_rows(labeled, labeler, other_labeler):
    assert len(lines("rm_pairs", {"labelers": [other_labeler.username]})[1]) == 2
    assert len(lines("rm_pairs", {"batches": [BatchFactory().pk]})[1]) == 0
    split = labeled["t1"].prompt.split
    assert (
        lines("rm_pairs", {"split": split})[1] and not lines("rm_pairs", {"created_before": "2000-01-01"})[1]
    )
    assert not lines("rm_pairs", {"category": "chat"})[1]


def test_pii_prompts_are_left_out_unless_asked(labeled):
    PromptFactory(text="mail me at someone@example.com", pii_flag=True)
    assert len(lines("prompts")[1]) == 2
    assert len(lines("prompts", {"include_pii": True})[1]) == 3


@pytest.mark.parametrize(
    "filters, field",
    [
        ({"split": "nope"}, "split"),
        ({"colour": 1}, "colour"),
        ({"batches": [999999]}, "batches"),
        ({"labelers": ["ghost"]}, "labelers"),
        ({"created_after": "yesterday"}, "created_after"),
        ({"rankings": "best"}, "rankings"),
        ({"min_agreement": 1.5}, "min_agreement"),
        ({"min_labeler_agreement": "high"}, "min_labeler_agreement"),
    ],
)
def test_bad_filters_name_the_field(db, filters, field):
    with pytest.raises(ServiceError) as err:
        filters_clean(kind="rm_pairs", filters=filters)
    assert err.value.field == field


def test_min_agreement_uses_the_quality_hook(labeled, monkeypatch):
    from labeling.quality import selectors

    monkeypatch.setattr(selectors, "task_ids_with_agreement", lambda min_agreement: [labeled["t2"].pk])
    _, rows = lines("rm_rankings", {"min_agreement": 0.5})
    assert {r["task_id"] for r in rows} == {labeled["t2"].pk}


def test_a_snapshot_records_its_file_rows_and_hash_and_repeats_byte_for_byte(labeled, researcher, media):
    one = snapshot_create(kind="rm_pairs", filters={"batches": [labeled["batch"].pk]}, created_by=researcher)
    two = snapshot_create(kind="rm_pairs", filters={"batches": [labeled["batch"].pk]})
    data = snapshot_path(one).read_bytes()
    assert one.row_count == 10 and one.sha256 == hashlib.sha256(data).hexdigest() == two.sha256
    assert snapshot_path(one) != snapshot_path(two) and snapshot_path(one).parent == media / "datasets"
    assert one.filters == {"batches": [labeled["batch"].pk], "rankings": "all"}
    assert [p.name for p in (media / "datasets").iterdir() if p.name.startswith(".")] == []


def test_a_failed_export_leaves_no_file_and_no_record(labeled, media, monkeypatch):
    def broken(**kwargs):
        yield b'{"half": "a line"}\n'
        raise RuntimeError("database went away")

    monkeypatch.setattr(exports, "dataset_lines", broken)
    with pytest.raises(RuntimeError):
        snapshot_create(kind="rm_pairs", filters={})
    assert DatasetSnapshot.objects.count() == 0 and list((media / "datasets").iterdir()) == []


def test_snapshots_are_immutable_in_the_model_and_the_database(labeled):
    snap = snapshot_create(kind="prompts", filters={})
    with pytest.raises(ValueError):
        snap.save()
    with pytest.raises(IntegrityError), transaction.atomic():
        DatasetSnapshot.objects.filter(pk=snap.pk).update(row_count=0)


def test_deleting_a_snapshot_a_model_trained_on_is_refused(labeled):
    from training.models import ModelVersion, ModelVersionSnapshot

    snap = snapshot_create(kind="sft", filters={})
    model = ModelVersion.objects.create(name="base-x", kind="base", checkpoint="/tmp/x")
    ModelVersionSnapshot.objects.create(model_version=model, snapshot=snap)
    with pytest.raises(ServiceError) as err:
        snapshot_delete(snapshot=snap)
    assert err.value.code == "protected" and "base-x" in err.value.message
    assert snapshot_path(snap).exists()
    free = snapshot_create(kind="sft", filters={})
    snapshot_delete(snapshot=free)
    assert not DatasetSnapshot.objects.filter(pk=free.pk).exists()
