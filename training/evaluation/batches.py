"""Evaluation batches: two or more models (model versions, or external models known by a source name)
answer the same held-out prompts; each task shows one output per model, in random order, to be rated
(Likert 1-7, the InstructGPT flags) and ranked on the same page as any ranking task.
"""

import random
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from django.contrib.auth.models import Group
from django.db import transaction

from core.errors import ServiceError
from core.roles import ROLE_LABELER
from labeling.models import Batch, Completion, Prompt
from labeling.services.batches import batch_add_ranking_tasks, batch_create
from labeling.vocab import K_MAX, K_MIN, Split

from ..models import ModelVersion

if TYPE_CHECKING:
    from django.contrib.auth.models import User

INSTRUCTIONS = (
    "Each output comes from a different model, in random order. Rate each one (Likert 1-7 and the yes/no "
    "questions), then rank them best to worst. Ties are fine for outputs of similar quality."
)


def _model_versions(items: Iterable) -> list[ModelVersion]:
    wanted = [m if isinstance(m, ModelVersion) else int(m) for m in items]
    ids = [m for m in wanted if isinstance(m, int)]
    found = ModelVersion.objects.in_bulk(ids)
    missing = [str(i) for i in ids if i not in found]
    if missing:
        raise ServiceError(f"model version(s) {', '.join(missing)} do not exist.", field="model_versions")
    out: list[ModelVersion] = []
    for m in wanted:
        model = found[m] if isinstance(m, int) else m
        if model.pk not in {o.pk for o in out}:
            out.append(model)
    return out


def _prompts(prompts: Iterable[Prompt] | None, outputs: Mapping | None) -> list[Prompt]:
    if prompts is None and outputs:
        ids = sorted(int(p) for p in outputs)
        found = Prompt.objects.in_bulk(ids)
        missing = [str(i) for i in ids if i not in found]
        if missing:
            raise ServiceError(f"prompt(s) {', '.join(missing)} do not exist.", field="outputs")
        return [found[i] for i in ids]
    if prompts is None:
        prompts = Prompt.objects.filter(split=Split.TEST)
    return sorted(prompts, key=lambda p: p.pk)


def evaluation_batch_create(
    *,
    name: str,
    model_versions: Sequence = (),
    external_sources: Sequence[str] = (),
    prompts: Iterable[Prompt] | None = None,
    outputs: Mapping[int, Mapping[str, str]] | None = None,
    created_by: "User | None" = None,
    status: str = Batch.Status.DRAFT,
    overlap: int = 1,
    limit: int | None = None,
    seed: int = 0,
) -> Batch:
    """An evaluation batch over `prompts` (default: the test split), one task per prompt that has an
    output from every model. Outputs are `outputs[prompt_id][source]` (source: a model version's name or an
    external source name; new Completion rows are made) or else each model's existing completion of the
    prompt (the oldest). Prompts missing an output of some model are left out. Labelers: the labeler role."""
    name = (name or "").strip()
    if not name:
        raise ServiceError("give the evaluation batch a name.", field="name")
    models = _model_versions(model_versions)
    externals = list(dict.fromkeys(s.strip() for s in external_sources if s and s.strip()))
    clash = sorted({m.name for m in models} & set(externals))
    if clash:
        raise ServiceError(
            f"'{clash[0]}' names both a model version and an external source.", field="external_sources"
        )
    sources: list[tuple[str, ModelVersion | None]] = [(m.name, m) for m in models] + [
        (s, None) for s in externals
    ]
    if not K_MIN <= len(sources) <= K_MAX:
        raise ServiceError(
            f"an evaluation compares {K_MIN} to {K_MAX} models, got {len(sources)}.", field="model_versions"
        )
    if status not in (Batch.Status.DRAFT, Batch.Status.ACTIVE):
        raise ServiceError("a new evaluation batch is a draft or active.", field="status")
    if not isinstance(overlap, int) or overlap < 1:
        raise ServiceError("'overlap' must be a whole number, 1 or more.", field="overlap")
    outputs = {int(p): dict(o) for p, o in (outputs or {}).items()}
    for prompt_id, by_source in outputs.items():
        unknown = sorted(set(by_source) - {key for key, _ in sources})
        if unknown:
            raise ServiceError(
                f"outputs of prompt {prompt_id}: '{unknown[0]}' is not one of the models compared.",
                field="outputs",
            )
    chosen = _prompts(prompts, outputs)
    existing = _existing_completions(chosen, models, externals)
    rng = random.Random(seed)
    with transaction.atomic():
        # The one place that creates a batch (its checks and its audit record), as for every other batch.
        batch = batch_create(
            name=name,
            kind=Batch.Kind.EVALUATION,
            status=status,
            overlap=overlap,
            instructions=INSTRUCTIONS,
            round_number=max((round_of_model(m) for m in models), default=0),
            groups=[Group.objects.get(name=ROLE_LABELER)],
            created_by=created_by,
        )
        groups: list[list[Completion]] = []
        for prompt in chosen:
            if limit is not None and len(groups) >= limit:
                break
            completions = []
            for key, model in sources:
                text = outputs.get(prompt.pk, {}).get(key)
                if text is not None:
                    completions.append(
                        Completion.objects.create(
                            prompt=prompt, text=text, model_version=model, source_name="" if model else key
                        )
                    )
                elif (found := existing.get((prompt.pk, key))) is not None:
                    completions.append(found)
            if len(completions) < len(sources):
                continue
            rng.shuffle(completions)
            groups.append(completions)
        made = batch_add_ranking_tasks(batch=batch, groups=groups)
        if not made:
            names = ", ".join(key for key, _ in sources)
            raise ServiceError(
                f"no prompt has an output from every model ({names}); generate outputs on the "
                "test-split prompts first, or pass them in.",
                field="prompts",
            )
    return batch


def _existing_completions(
    prompts: list[Prompt], models: list[ModelVersion], externals: list[str]
) -> dict[tuple[int, str], Completion]:
    """{(prompt id, source key): the oldest completion of that prompt from that source}."""
    found: dict[tuple[int, str], Completion] = {}
    by_id = {m.pk: m.name for m in models}
    qs = Completion.objects.filter(prompt__in=[p.pk for p in prompts]).order_by("pk")
    for c in qs.filter(model_version__in=list(by_id)):
        assert c.model_version_id is not None  # the filter: a completion of one of `models`
        found.setdefault((c.prompt_id, by_id[c.model_version_id]), c)
    for c in qs.filter(model_version__isnull=True, source_name__in=externals):
        found.setdefault((c.prompt_id, c.source_name), c)
    return found


def round_of_model(model: ModelVersion) -> int:
    run = getattr(model, "training_run", None) if model.pk else None
    return run.round.number if run is not None and run.round_id else 0
