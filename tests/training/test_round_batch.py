"""A round's ranking batch is made where every ranking batch is made (labeling's
batch_create_from_completions): the same checks, the same audit record, tasks of K outputs per prompt."""

import pytest

from audit.models import Action, AuditEvent
from core.errors import ServiceError
from labeling.models import Batch, Completion
from tests.factories import PromptFactory
from training.models import ModelVersion
from training.services.round_steps import batch_from_generations

pytestmark = pytest.mark.django_db


def make(prompts, **settings):
    model = ModelVersion.objects.get_or_create(name="base", kind="base", checkpoint="/models/base")[0]
    generations = {p.pk: [[(model, f"answer {i} to {p.pk}") for i in range(3)]] for p in prompts}
    args = dict(name="Round 1", round_number=1, model_version=model, k=2, status="active", overlap=2)
    return batch_from_generations(generations=generations, **{**args, **settings})


def test_a_rounds_batch_holds_k_outputs_per_prompt_and_is_audited():
    prompts = [PromptFactory(), PromptFactory()]
    batch = make(prompts)
    assert batch.kind == Batch.Kind.RANKING and batch.overlap == 2 and batch.round_number == 1
    assert sorted(batch.tasks.values_list("prompt_id", "k")) == sorted((p.pk, 2) for p in prompts)
    assert AuditEvent.objects.filter(action=Action.BATCH_CREATED, object_id=str(batch.pk)).exists()


def test_a_rounds_batch_meets_the_checks_of_a_batch_made_by_hand():
    with pytest.raises(ServiceError) as refused:
        make([PromptFactory()], overlap=0)
    assert refused.value.field == "overlap"
    assert not Batch.objects.exists() and not Completion.objects.exists()
