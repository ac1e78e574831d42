"""factory_boy factories for the usual rows; tests build what they need from these."""

import itertools

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.utils import timezone

from labeling.models import Assignment, Batch, Completion, Prompt
from labeling.services.prompts import dedup_key, split_for
from labeling.services.tasks import ranking_task_create
from labeling.vocab import Category, PromptSource

_counter = itertools.count()


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.PostGenerationMethodCall("set_password", "correct-horse-battery")

    @factory.post_generation
    def roles(self, create, extracted, **kwargs):
        for role in extracted or ():
            self.groups.add(Group.objects.get_or_create(name=role)[0])
        if create:
            self.save()


class PromptFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Prompt

    text = factory.LazyFunction(lambda: f"Prompt number {next(_counter)}: explain something useful.")
    category = Category.GENERATION
    source = PromptSource.PLAIN
    origin_user = "origin-a"
    split = factory.LazyAttribute(lambda o: split_for(o.origin_user))
    dedup_key = factory.LazyAttribute(lambda o: dedup_key(o.text))


class CompletionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Completion

    prompt = factory.SubFactory(PromptFactory)
    text = factory.Sequence(lambda n: f"completion text {n}")
    source_name = "test-model"


class BatchFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Batch

    name = factory.Sequence(lambda n: f"batch {n}")
    kind = Batch.Kind.RANKING
    status = Batch.Status.ACTIVE
    overlap = 1


def ranking_task(batch: Batch | None = None, k: int = 4, prompt: Prompt | None = None):
    """A ranking task with K fresh completions of one prompt."""
    batch = batch or BatchFactory()
    prompt = prompt or PromptFactory()
    completions = [CompletionFactory(prompt=prompt) for _ in range(k)]
    return ranking_task_create(batch=batch, prompt=prompt, completions=completions)


def assignment_for(task, labeler, minutes: int = 30) -> Assignment:
    return Assignment.objects.create(
        task=task,
        batch=task.batch,
        labeler=labeler,
        lease_expires_at=timezone.now() + timezone.timedelta(minutes=minutes),
    )


def scored(tiers) -> dict[int, dict]:
    """A middling Likert score for every completion placed in `tiers`: a ranking needs one per output
    (labeling.ranking_rules.likert_missing)."""
    return {cid: {"likert": 4} for tier in tiers for cid in tier}
