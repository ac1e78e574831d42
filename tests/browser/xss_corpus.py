"""Classic XSS payloads, and a world that stores them (through our services) wherever users write text:
prompts, outputs, demonstrations, ranking comments and drafts, written prompts, batch names and
instructions, model version names and metrics, training run logs, errors and metric names, round errors,
external model names, labeler usernames and display names.

Each payload, if it ever ran, would set `window.__xss` to its own number (or open a dialog), so a test
can say which one got through."""

import io
import json

from django.contrib.auth.models import Group

from core.roles import ROLE_BATCH_ADMIN, ROLE_LABELER, ROLE_RESEARCHER
from labeling.handout.next import assignment_next
from labeling.handout.work import assignment_save_draft
from labeling.models import Batch
from labeling.services.batches import batch_add_prompt_tasks, batch_add_writing_tasks, batch_create
from labeling.services.demonstrations import demonstration_submit
from labeling.services.gold import gold_mark
from labeling.services.imports import completions_import
from labeling.services.prompt_writing import prompt_submit
from labeling.services.prompts import prompt_create
from labeling.services.rankings import ranking_submit
from tests.factories import UserFactory, scored
from training.evaluation.batches import evaluation_batch_create
from training.models import ModelVersion, Round, TrainingRun

_TEMPLATES = [
    "<script>RUN</script>",
    "<img src=x onerror=RUN>",
    "<svg onload=RUN>",
    '"><script>RUN</script>',
    "'><img src=x onerror=alert(N)>",
    "javascript:RUN//",
    '<iframe srcdoc="<script>parent.__xss=N</script>"></iframe>',
    "</textarea><script>RUN</script>",
    "'-alert(N)-'",
    "{{7*7}} ${7*7} {% now 'Y' %} {{constructor.constructor('alert(N)')()}}",
    '<a href="javascript:RUN">click me</a>',
    "<body onload=RUN>",
    "<details open ontoggle=RUN>",
    "<math><mtext><table><mglyph><style><img src=x onerror=RUN>",
    "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
    '<object data="data:text/html,<script>parent.__xss=N</script>"></object>',
    "+ADw-script+AD4-RUN+ADw-/script+AD4-",
    "\\u003cscript\\u003eRUN\\u003c/script\\u003e",
    "\uff1cscript\uff1eRUN\uff1c/script\uff1e",
    "</script><script>RUN</script>",
    '<div style="width: expression(RUN); background: url(javascript:RUN)">css</div>',
    "<style>@import 'javascript:RUN';</style>",
    "<input autofocus onfocus=RUN>",
    "<video><source onerror=RUN></video>",
    '<!--<img src="--><img src=x onerror=RUN//">',
    '<noscript><p title="</noscript><img src=x onerror=RUN>">',
    '<meta http-equiv="refresh" content="0;url=javascript:RUN">',
    "<form><button formaction=javascript:RUN>go</button></form>",
    '\\"-alert(N)}//',
    "`${RUN}`",
]
PAYLOADS = [t.replace("RUN", f"window.__xss={n}").replace("N", str(n)) for n, t in enumerate(_TEMPLATES, 1)]
CORPUS = "\n".join(PAYLOADS)
# Payloads that are markup: their raw form must never reach an HTML page, only the escaped one.
MARKUP = [p for p in PAYLOADS if "<" in p]


def _text(prefix: str) -> str:
    """A long text: an opening of its own (prompts must not be duplicates), then every payload."""
    return f"{prefix}\n{CORPUS}"


def build_xss_world() -> dict:
    labeler = UserFactory(
        username=PAYLOADS[1], first_name=PAYLOADS[2], last_name=PAYLOADS[0], roles=[ROLE_LABELER]
    )
    other = UserFactory(username=PAYLOADS[3], first_name=PAYLOADS[22], roles=[ROLE_LABELER])
    admin = UserFactory(username="xss-admin", roles=[ROLE_BATCH_ADMIN])
    researcher = UserFactory(username="xss-sci", roles=[ROLE_RESEARCHER])
    team = [labeler, other]

    def prompt(prefix: str, split: str = "train"):
        return prompt_create(
            text=_text(prefix), category="generation", source="imported", origin_user=f"{split}-{PAYLOADS[4]}"
        )

    # A ranking batch of two tasks with imported outputs (the model's name is a payload too).
    ranked, drafted = prompt("Rank prompt one."), prompt("Rank prompt two.")
    lines = [
        {
            "prompt_id": p.pk,
            "completions": [_text(f"Output {k} of {p.pk}.") for k in "ABC"],
            "model": PAYLOADS[5],
        }
        for p in (ranked, drafted)
    ]
    completions_import(
        file=io.BytesIO("".join(json.dumps(line) + "\n" for line in lines).encode()),
        batch={"name": PAYLOADS[6], "instructions": CORPUS, "labelers": team, "overlap": 2},
        created_by=admin,
    )
    ranking_batch = Batch.objects.get(name=PAYLOADS[6])
    for user in team:
        assignment = assignment_next(labeler=user, batch=ranking_batch)
        ids = list(assignment.task.task_completions.values_list("completion_id", flat=True))
        ranking_submit(
            assignment=assignment,
            tiers=[[c] for c in (ids if user == labeler else ids[::-1])],
            ratings={c: {"likert": 4, "flags": {"hallucination": True}} for c in ids},
            comment=_text("My comment."),
            seconds_spent=20,
        )
    live_ranking = assignment_next(labeler=labeler, batch=ranking_batch)
    assignment_save_draft(
        assignment=live_ranking,
        draft={"tiers": [], "likert": {}, "flags": {}, "comment": _text("My draft."), "all_unusable": False},
    )

    demos = batch_create(name=PAYLOADS[7], kind="demonstration", instructions=CORPUS, labelers=[labeler])
    batch_add_prompt_tasks(
        batch=demos, prompt_ids=[prompt("Demo prompt one.").pk, prompt("Demo prompt two.").pk]
    )
    demonstration_submit(
        assignment=assignment_next(labeler=labeler, batch=demos),
        text=_text("My demonstration."),
        seconds_spent=9,
    )
    live_demo = assignment_next(labeler=labeler, batch=demos)

    writing = batch_create(name=PAYLOADS[8], kind="prompt_writing", instructions=CORPUS, labelers=[labeler])
    batch_add_writing_tasks(batch=writing, count=2)
    prompt_submit(
        assignment=assignment_next(labeler=labeler, batch=writing),
        text=_text("My written prompt."),
        category="brainstorming",
        source="plain",
    )
    live_writing = assignment_next(labeler=labeler, batch=writing)

    for n, name in enumerate(PAYLOADS):  # one open batch named after every payload
        if n not in (6, 7, 8):
            batch_create(
                name=name, kind="prompt_writing", instructions=name, labelers=[labeler], created_by=admin
            )

    base = ModelVersion.objects.create(
        name=PAYLOADS[9], kind="base", checkpoint=PAYLOADS[10], metrics={PAYLOADS[11]: PAYLOADS[12]}
    )
    sft = ModelVersion.objects.create(
        name=PAYLOADS[13], kind="sft", parent=base, checkpoint="/models/sft", config={"note": CORPUS}
    )
    run = TrainingRun.objects.create(
        kind="sft",
        base_model=base,
        output_model=sft,
        status="failed",
        config={PAYLOADS[14]: PAYLOADS[15]},
        metrics={PAYLOADS[16]: 0.5, "loss": 1.0},
        metrics_history=[
            {"step": 1, "loss": 1.2, PAYLOADS[16]: 0.4},
            {"step": 2, "loss": 1.0, PAYLOADS[16]: 0.5},
        ],
        log_tail=_text("Log tail."),
        error=_text("Error."),
    )
    rnd = Round.objects.create(
        number=1, status="failed", step="sft", error=_text("Round error."), config={"note": PAYLOADS[17]}
    )

    evaluated = prompt("Eval prompt.", split="test")
    evaluation = evaluation_batch_create(
        name=PAYLOADS[18],
        model_versions=[sft],
        external_sources=[PAYLOADS[19]],
        prompts=[evaluated],
        outputs={evaluated.pk: {sft.name: _text("Eval output A."), PAYLOADS[19]: _text("Eval output B.")}},
        created_by=admin,
        status="active",
        overlap=2,
    )
    evaluation.groups.add(Group.objects.get(name=ROLE_LABELER))
    for user in team:
        assignment = assignment_next(labeler=user, batch=evaluation)
        ids = list(assignment.task.task_completions.values_list("completion_id", flat=True))
        ranking_submit(
            assignment=assignment,
            tiers=[[c] for c in ids],
            comment=_text("Eval comment."),
            ratings=scored([[c] for c in ids]),
        )
    gold = ranking_batch.tasks.order_by("pk").first()
    gold_mark(task=gold, tiers=[[c] for c in gold.task_completions.values_list("completion_id", flat=True)])
    return {
        "users": {"labeler": labeler, "other": other, "admin": admin, "researcher": researcher},
        "ranking_batch": ranking_batch,
        "evaluation": evaluation,
        "live_ranking": live_ranking,
        "live_demo": live_demo,
        "live_writing": live_writing,
        "ranked_prompt": ranked,
        "base": base,
        "sft": sft,
        "run": run,
        "round": rnd,
    }


def pages(w: dict) -> dict[str, list[str]]:
    """What each role opens: every page that shows the stored payloads. (The labeler's prompt page is
    also submitted, refused as a duplicate, in the browser test.)"""
    lab, rb, ev = w["users"]["labeler"], w["ranking_batch"].pk, w["evaluation"].pk
    return {
        "labeler": [
            "/",
            f"/assignments/{w['live_ranking'].pk}/",
            f"/assignments/{w['live_demo'].pk}/",
            f"/assignments/{w['live_writing'].pk}/",
            f"/prompts/{w['ranked_prompt'].pk}/",
            "/quality/",
            *[
                f"/api/v1/{r}/?format=api"
                for r in ("prompts", "tasks", "rankings", "demonstrations", "batches")
            ],
            f"/api/v1/assignments/{w['live_ranking'].pk}/?format=api",
        ],
        "admin": [
            "/manage/batches/",
            f"/manage/batches/{rb}/",
            f"/manage/batches/{ev}/",
            "/manage/batches/new/",
            "/manage/datasets/",
            "/quality/",
            f"/quality/labelers/{lab.pk}/",
            "/quality/gold/",
            f"/quality/gold/{rb}/",
            "/training/evaluations/",
            f"/training/evaluations/{ev}/",
            *[f"/api/v1/{r}/?format=api" for r in ("prompts", "completions", "batches", "rankings", "tasks")],
            f"/api/v1/batches/{rb}/progress/?format=api",
            "/api/v1/quality/labelers/?format=api",
            f"/api/v1/evaluations/{ev}/?format=api",
            "/api/v1/docs/",
        ],
        "researcher": [
            "/training/",
            f"/training/runs/{w['run'].pk}/",
            "/training/runs/new/",
            f"/training/models/{w['sft'].pk}/",
            f"/training/models/{w['base'].pk}/",
            f"/training/rounds/{w['round'].pk}/",
            *[f"/api/v1/{r}/?format=api" for r in ("model-versions", "training-runs", "demonstrations")],
            f"/api/v1/training-runs/{w['run'].pk}/?format=api",
            f"/api/v1/rounds/{w['round'].pk}/?format=api",
        ],
    }


def reflected(w: dict) -> dict[str, list[str]]:
    """Pages that echo a query parameter, asked with a payload in it."""
    from urllib.parse import quote

    p = quote(PAYLOADS[0])
    return {
        "anonymous": [f"/accounts/login/?next={p}"],
        "admin": [
            f"/training/evaluations/{w['evaluation'].pk}/?baseline={p}",
            f"/manage/batches/?status={p}",
        ],
        "labeler": [f"/api/v1/rankings/?labeler={p}&format=api"],
    }


def shown(w: dict) -> dict[tuple[str, str], list[str]]:
    """(role, page) -> payloads its main content must show as text, so a pass is not an empty page."""
    return {
        ("labeler", "/"): [p for n, p in enumerate(PAYLOADS) if n not in (6, 7, 8)] + [PAYLOADS[2]],
        ("labeler", f"/assignments/{w['live_ranking'].pk}/"): PAYLOADS,
        ("labeler", f"/assignments/{w['live_demo'].pk}/"): PAYLOADS,
        ("admin", "/manage/batches/"): PAYLOADS,
        ("admin", f"/manage/batches/{w['ranking_batch'].pk}/"): [PAYLOADS[6], PAYLOADS[1], PAYLOADS[3]],
        ("admin", "/quality/"): [PAYLOADS[1], PAYLOADS[3]],
        ("admin", f"/training/evaluations/{w['evaluation'].pk}/"): [PAYLOADS[18], PAYLOADS[13], PAYLOADS[19]],
        ("researcher", f"/training/runs/{w['run'].pk}/"): PAYLOADS,
        ("researcher", f"/training/models/{w['sft'].pk}/"): [PAYLOADS[13], PAYLOADS[9]],
        ("researcher", f"/training/rounds/{w['round'].pk}/"): PAYLOADS,
    }
