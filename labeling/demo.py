"""The local demo's data: one user per role, prompts of several categories, demonstrations, and
batches to work on (prompt writing, demonstrations, and ranking with K=4). Idempotent."""

from datetime import timedelta
from typing import TYPE_CHECKING

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from core.roles import ROLE_BATCH_ADMIN, ROLE_LABELER, ROLE_RESEARCHER

from .models import Assignment, Batch, Completion, Demonstration, Prompt, Task
from .roles import role_add
from .services.prompts import dedup_key, prompt_create
from .services.rankings import ranking_submit
from .services.tasks import prompt_task_create, ranking_task_create
from .vocab import Category, PromptSource

if TYPE_CHECKING:
    from django.contrib.auth.models import User

# Documented in README.md (demo users). Local demo only.
DEMO_USERS = [
    ("labeler", "labeler-demo-pass", ROLE_LABELER, False),
    ("labeler2", "labeler-demo-pass", ROLE_LABELER, False),
    ("admin", "admin-demo-pass", ROLE_BATCH_ADMIN, True),
    ("researcher", "researcher-demo-pass", ROLE_RESEARCHER, False),
]

DEMO_PROMPTS = [
    (
        Category.GENERATION,
        "Write a short poem about a lighthouse keeper who befriends a seagull.",
        "The keeper climbs at dusk to light the lamp,\nA gull lands softly on the railing damp.\n"
        "They share the bread, they share the salty air,\nTwo lonely watchers in a nightly pair.",
    ),
    (
        Category.OPEN_QA,
        "Why is the sky blue during the day?",
        "Sunlight is scattered by the molecules of the air, and short blue wavelengths scatter much more "
        "than long red ones (Rayleigh scattering), so blue light reaches our eyes from every direction.",
    ),
    (
        Category.BRAINSTORMING,
        "List five ideas for a rainy-day activity with young children.",
        "1. Build a blanket fort.\n2. Bake simple cookies.\n3. Make a treasure hunt indoors.\n"
        "4. Paint with watercolours.\n5. Put on a puppet show with socks.",
    ),
    (
        Category.SUMMARIZATION,
        "Summarize in one sentence: The town council met on Tuesday and voted to "
        "extend library opening hours on weekends, citing rising demand from students during exams.",
        "The council voted on Tuesday to open the library longer on weekends because students need it during exams.",
    ),
    (
        Category.REWRITE,
        "Rewrite this more politely: 'Send me the report now.'",
        "Could you please send me the report when you have a moment? Thank you!",
    ),
    (
        Category.CLASSIFICATION,
        "Classify the sentiment of this review as positive, negative or neutral: "
        "'The food was cold and the waiter ignored us.'",
        "Negative.",
    ),
]


# Four outputs of different quality per prompt, so the demo ranking has something to decide.
def _demo_completions(prompt_text: str, demonstration: str) -> list[str]:
    return [
        demonstration,
        demonstration.split(".")[0] + ".",
        "I am not sure what you mean. Could you rephrase the question?",
        f"{prompt_text} {prompt_text}",
    ]


def demo_texts() -> list[str]:
    """What the demo's base model is pre-trained on (training.ml.tiny.build_demo_model): each prompt, a
    line break (the prompt template's), then each of its first three fixture outputs. The echo output is
    left out: it would teach the model to repeat the prompt."""
    return [
        f"{text}\n{output}"
        for _, text, demonstration in DEMO_PROMPTS
        for output in _demo_completions(text, demonstration)[:3]
    ]


@transaction.atomic
def demo_load() -> dict[str, int]:
    """Create the demo data if it is missing; returns how many rows of each kind were created."""
    created = {"users": 0, "prompts": 0, "demonstrations": 0, "batches": 0, "tasks": 0, "rankings": 0}
    User = get_user_model()
    users = {}
    for username, password, role, staff in DEMO_USERS:
        user, new = User.objects.get_or_create(username=username, defaults={"is_staff": staff})
        if new:
            user.set_password(password)
            user.save(update_fields=["password"])
            created["users"] += 1
        role_add(user=user, role=role)
        users[username] = user

    prompt_batch, new_pw = Batch.objects.get_or_create(
        name="Demo: write prompts",
        defaults={
            "kind": Batch.Kind.PROMPT_WRITING,
            "status": Batch.Status.ACTIVE,
            "overlap": 100,
            "instructions": "Write a prompt a real user could send to an assistant. Pick its use case.",
        },
    )
    demo_batch, new_demo = Batch.objects.get_or_create(
        name="Demo: write demonstrations",
        defaults={
            "kind": Batch.Kind.DEMONSTRATION,
            "status": Batch.Status.ACTIVE,
            "overlap": 1,
            "instructions": "Write the response you would want an excellent assistant to give.",
        },
    )
    rank_batch, new_rank = Batch.objects.get_or_create(
        name="Demo: rank outputs (round 0)",
        defaults={
            "kind": Batch.Kind.RANKING,
            "status": Batch.Status.ACTIVE,
            "overlap": 2,
            "instructions": "Rate each output, then rank them best to worst. Ties are fine for outputs "
            "of similar quality.",
        },
    )
    batches = (prompt_batch, demo_batch, rank_batch)
    created["batches"] = sum((new_pw, new_demo, new_rank))
    for batch in batches:
        batch.labelers.add(users["labeler"], users["labeler2"])
    if new_pw:
        for _ in range(5):
            prompt_task_create(batch=prompt_batch)
            created["tasks"] += 1

    for index, (category, text, demonstration) in enumerate(DEMO_PROMPTS):
        prompt = Prompt.objects.filter(dedup_key=dedup_key(text)).first()
        if prompt is None:
            prompt = prompt_create(
                text=text,
                category=category,
                source=PromptSource.PLAIN,
                origin_user=f"demo-user-{index}",
                author=users["researcher"],
            )
            created["prompts"] += 1
        if not prompt.demonstrations.exists():
            Demonstration.objects.create(
                prompt=prompt, author=users["researcher"], text=demonstration, seconds_spent=120
            )
            created["demonstrations"] += 1
        if not Task.objects.filter(batch=demo_batch, prompt=prompt).exists():
            prompt_task_create(batch=demo_batch, prompt=prompt)
            created["tasks"] += 1
        if not Task.objects.filter(batch=rank_batch, prompt=prompt).exists():
            completions = [
                Completion.objects.create(prompt=prompt, text=t, source_name="demo-fixture")
                for t in _demo_completions(text, demonstration)
            ]
            task = ranking_task_create(batch=rank_batch, prompt=prompt, completions=completions)
            created["tasks"] += 1
            created["rankings"] += _demo_ranking(task, users["labeler2"])
    return created


def _demo_ranking(task: Task, labeler: "User") -> int:
    """labeler2 has already ranked the demo tasks (overlap is 2, so 'labeler' still gets them): a round
    can be trained straight after `make run`. Their order is the order of quality they were written in,
    with the two weak outputs tied."""
    assignment = Assignment.objects.create(
        task=task,
        batch=task.batch,
        labeler=labeler,
        lease_expires_at=timezone.now() + timedelta(minutes=30),
    )
    best, short, unsure, echo = task.task_completions.values_list("completion_id", flat=True)
    likert = {best: 6, short: 4, unsure: 2, echo: 1}
    ranking_submit(
        assignment=assignment,
        tiers=[[best], [short], [unsure, echo]],
        seconds_spent=60,
        undo_window=False,  # fixture labels count at once: a round can train on them straight away
        ratings={
            cid: {"likert": score, "flags": {"fails_instruction": score < 3}} for cid, score in likert.items()
        },
    )
    return 1
