"""Dataset snapshots in the conversational format (TRL's): texts as chat messages, everything else as in the
standard format, the same bytes every time, from both writers, on Postgres and SQLite."""

import json
from pathlib import Path

import pytest
from django.db import IntegrityError, connection, transaction

from audit.models import AuditEvent
from audit.services import Action
from core.errors import ServiceError
from labeling.models import DatasetSnapshot, Demonstration
from labeling.services.export_filters import filters_clean
from labeling.services.exports import dataset_lines, snapshot_create, snapshot_path
from labeling.services.rankings import ranking_submit
from tests.factories import BatchFactory, PromptFactory, assignment_for, ranking_task, scored
from tests.sqlite_demo import run_on_sqlite
from training.ml.data import load_rows

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
NASTY = 'quote " backslash \\ newline\n tab\t bell\x07 é 漢字 😀 \u2028 {"json": [1]} %s %% \'single\''
KINDS = ["sft", "rm_pairs", "rm_rankings", "prompts"]


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


@pytest.fixture
def labeled(labeler, other_labeler):
    """Two ranking tasks (one ranked by two labelers, with a tie) and a demonstration, in nasty text."""
    batch = BatchFactory(overlap=2)
    t1 = ranking_task(batch, k=3, prompt=PromptFactory(text="Nasty prompt: " + NASTY))
    t2 = ranking_task(batch, k=4)
    a, b, c = t1.task_completions.values_list("completion_id", flat=True)
    t1.completions.filter(pk=a).update(text="best " + NASTY)
    for task, labeler_, tiers in [(t1, labeler, [[a], [b], [c]]), (t1, other_labeler, [[a], [b, c]])]:
        ranking_submit(
            assignment=assignment_for(task, labeler_), tiers=tiers, seconds_spent=10, ratings=scored(tiers)
        )
    w, x, y, z = t2.task_completions.values_list("completion_id", flat=True)
    ranking_submit(
        assignment=assignment_for(t2, labeler),
        tiers=[[w, x], [y], [z]],
        seconds_spent=10,
        ratings=scored([[w, x], [y], [z]]),
    )
    Demonstration.objects.create(prompt=t1.prompt, author=labeler, text="demo " + NASTY, seconds_spent=5)
    return {"batch": batch, "t1": t1, "t2": t2}


def lines(kind, format, filters=None, writer="auto"):
    clean = filters_clean(kind=kind, filters=filters or {})
    data = b"".join(dataset_lines(kind=kind, filters=clean, format=format, writer=writer))
    return data, [json.loads(line) for line in data.decode().split("\n") if line]


def user(text):
    return [{"content": text, "role": "user"}]


def assistant(text):
    return [{"content": text, "role": "assistant"}]


def as_messages(row):
    """What the conversational line of a standard line must be, spelled out key by key."""
    out = dict(row, prompt=user(row["prompt"]))
    for key in ("completion", "chosen", "rejected"):
        if key in row:
            out[key] = assistant(row[key])
    if "completions" in row:
        out["completions"] = [assistant(text) for text in row["completions"]]
    return out


@pytest.mark.parametrize(
    "kind, filters",
    [(kind, {}) for kind in KINDS]
    + [(kind, {"rankings": "consensus"}) for kind in ("rm_pairs", "rm_rankings")],
)
def test_conversational_lines_hold_messages_and_the_standard_ids_and_splits(labeled, kind, filters):
    _, standard = lines(kind, "standard", filters)
    _, conversational = lines(kind, "conversational", filters)
    assert standard and conversational == [as_messages(row) for row in standard]


def test_each_kind_has_exactly_the_trl_conversational_shape(labeled):
    (sft,) = lines("sft", "conversational")[1]
    assert sft["prompt"] == user("Nasty prompt: " + NASTY) and sft["completion"] == assistant("demo " + NASTY)
    pair = lines("rm_pairs", "conversational")[1][0]
    assert pair["prompt"] == user("Nasty prompt: " + NASTY) and pair["chosen"] == assistant("best " + NASTY)
    assert pair["rejected"][0]["role"] == "assistant" and len(pair["rejected"]) == 1
    ranking = lines("rm_rankings", "conversational")[1][0]
    assert ranking["completions"][0] == assistant("best " + NASTY) and ranking["ranks"] == [0, 1, 2]
    assert all(len(c) == 1 and set(c[0]) == {"content", "role"} for c in ranking["completions"])
    prompts = lines("prompts", "conversational")[1]
    assert {"prompt", "prompt_id", "split", "category"} == set(prompts[0]) and len(prompts) == 2
    assert all(p["prompt"][0]["role"] == "user" and len(p["prompt"]) == 1 for p in prompts)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the COPY writer is Postgres only")
@pytest.mark.parametrize("kind", KINDS)
def test_copy_writer_gives_the_same_conversational_bytes_as_python(labeled, kind):
    python, _ = lines(kind, "conversational", writer="python")
    copy, _ = lines(kind, "conversational", writer="copy")
    assert python and python == copy


def test_a_conversational_snapshot_says_so_and_repeats_byte_for_byte(labeled, researcher, media):
    one = snapshot_create(kind="sft", filters={}, format="conversational", created_by=researcher)
    two = snapshot_create(kind="sft", filters={}, format="conversational")
    standard = snapshot_create(kind="sft", filters={})
    assert (one.format, two.format, standard.format) == ("conversational", "conversational", "standard")
    assert snapshot_path(one).read_bytes() == snapshot_path(two).read_bytes() and one.sha256 == two.sha256
    assert one.sha256 != standard.sha256 and one.row_count == standard.row_count == 1
    assert snapshot_path(one).name.startswith("sft-conversational-")
    assert snapshot_path(standard).name.startswith("sft-2")  # standard names are as before
    event = AuditEvent.objects.get(action=Action.SNAPSHOT_CREATED, object_id=str(one.pk))
    assert event.details["format"] == "conversational"


@pytest.mark.parametrize("format", ["chat", "", None, "Conversational"])
def test_an_unknown_format_is_refused_naming_the_field_and_nothing_is_written(labeled, media, format):
    with pytest.raises(ServiceError) as err:
        snapshot_create(kind="sft", filters={}, format=format)
    assert err.value.field == "format"
    assert "standard" in err.value.message and "conversational" in err.value.message
    assert DatasetSnapshot.objects.count() == 0 and not (media / "datasets").exists()


def test_the_database_refuses_an_unknown_format_and_any_change_of_format(labeled):
    with pytest.raises(IntegrityError), transaction.atomic():
        DatasetSnapshot.objects.create(kind="sft", format="xml", row_count=0, sha256="0" * 64, file="x")
    snapshot = snapshot_create(kind="sft", filters={}, format="conversational")
    with pytest.raises(IntegrityError), transaction.atomic():
        DatasetSnapshot.objects.filter(pk=snapshot.pk).update(format="standard")


@pytest.mark.parametrize("kind", ["sft", "rm_rankings"])
def test_the_training_side_reads_a_conversational_snapshot(labeled, kind):
    snapshot = snapshot_create(kind=kind, filters={}, format="conversational")
    rows = load_rows(snapshot_path(snapshot))
    assert len(rows) == snapshot.row_count
    assert all(row["prompt"] == user(row["prompt"][0]["content"]) for row in rows)
    assert rows[0]["prompt"] == user("Nasty prompt: " + NASTY)


SQLITE_SCRIPT = """
import json
import django
django.setup()
from django.core.management import call_command
from django.db import IntegrityError, transaction
from labeling.models import DatasetSnapshot
from labeling.services.exports import snapshot_create, snapshot_path

call_command("migrate", verbosity=0)
call_command("load_demo", verbosity=0)
out = {}
for format in ("standard", "conversational"):
    snapshot = snapshot_create(kind="rm_rankings", filters={}, format=format)
    out[format] = [json.loads(line) for line in snapshot_path(snapshot).read_text().splitlines()]
try:
    with transaction.atomic():
        DatasetSnapshot.objects.filter(pk=snapshot.pk).update(format="standard")
    out["changed"] = True
except IntegrityError:
    out["changed"] = False
call_command("migrate", "labeling", "0010", verbosity=0)  # and back: the migration reverses
call_command("migrate", verbosity=0)
print(json.dumps(out))
"""


def test_sqlite_writes_conversational_lines_and_keeps_snapshots_immutable(tmp_path):
    """The local demo's database: the Python writer, and migration 0011's SQLite trigger (format included)."""
    out = run_on_sqlite(SQLITE_SCRIPT, tmp_path)
    assert out["standard"] and out["conversational"] == [as_messages(row) for row in out["standard"]]
    assert out["changed"] is False
