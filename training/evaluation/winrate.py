"""Evaluation results: how often each model's output is ranked above a baseline model's output (ties
count half), Likert means and flag rates, by model and by prompt category, each with a 95% interval
from the bootstrap over tasks (InstructGPT section 4: win rate against a baseline on held-out prompts).

Works on any batch whose tasks mix outputs of several models: in an evaluation batch each task holds
one output per model; in a ranking batch of a round, every (model A output, baseline output) pair of a
ranking counts once.
"""

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from core.errors import ServiceError
from labeling.models import Batch, Ranking, Rating, TaskCompletion
from labeling.quality.agreement import tier_map
from labeling.quality.intervals import Estimate, pooled_ratio
from labeling.vocab import FLAGS

from ..models import ModelKind, ModelVersion

# The flags InstructGPT reports for its models (figure 4).
EVALUATION_FLAGS = ("hallucination", "fails_instruction", "inappropriate")

TaskRanking = tuple[int, dict[int, int]]  # (task id, {completion id: tier index})
TaskRating = tuple[int, str | None, int | None, dict]  # (task id, source key, Likert score, flags)


@dataclass(frozen=True)
class Source:
    key: str  # a model version's name, or an external model's source name
    label: str
    model_version: ModelVersion | None


@dataclass
class SourceResult:
    source: Source
    win_rate: Estimate | None  # against the baseline; None for the baseline itself
    wins: int = 0
    ties: int = 0
    losses: int = 0
    likert: Estimate = field(default_factory=Estimate.empty)
    flags: dict[str, Estimate] = field(default_factory=dict)
    auto_eval: dict | None = None  # model_version.metrics["auto_eval"], when the loop stored one


@dataclass
class EvaluationResults:
    batch: Batch
    baseline: Source
    sources: list[Source]
    overall: list[SourceResult]
    by_category: dict[str, list[SourceResult]]
    tasks: int
    rankings: int


def outcome(tiers: dict[int, int], a: int, b: int) -> float:
    """1 when a is ranked above b, 0.5 for a tie, 0 below."""
    return 1.0 if tiers[a] < tiers[b] else 0.5 if tiers[a] == tiers[b] else 0.0


def win_rate(outcomes_by_task: Iterable[Iterable[float]], **kwargs: int) -> Estimate:
    """Pooled win rate of per-task outcomes (1 win, 0.5 tie, 0 loss), interval by tasks."""
    sums, counts = [], []
    for outcomes in outcomes_by_task:
        outcomes = list(outcomes)
        sums.append(sum(outcomes))
        counts.append(len(outcomes))
    return pooled_ratio(sums, counts, **kwargs)


def _sources(batch: Batch) -> tuple[list[Source], dict[int, str], dict[int, dict[str, list[int]]]]:
    """The batch's models, {completion: source key}, {task: {source key: [completion ids]}}."""
    rows = TaskCompletion.objects.filter(task__batch=batch).values_list(
        "task_id", "completion_id", "completion__model_version_id", "completion__source_name"
    )
    models = ModelVersion.objects.in_bulk({mv for _, _, mv, _ in rows if mv})
    names = {m.name for m in models.values()}
    source_of: dict[int, str] = {}
    per_task: dict[int, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    sources: dict[str, Source] = {}
    for task, completion, mv, external in rows:
        if mv:
            key = models[mv].name
            sources.setdefault(key, Source(key, key, models[mv]))
        else:
            key = external if external not in names else f"{external} (external)"
            sources.setdefault(key, Source(key, f"{external} (external)", None))
        source_of[completion] = key
        per_task[task][key].append(completion)
    order = sorted(
        sources.values(),
        key=lambda s: (s.model_version is None, s.model_version.created_at if s.model_version else 0, s.key),
    )
    return order, source_of, per_task


def default_baseline(sources: list[Source]) -> Source:
    """The SFT model if one is compared (InstructGPT's baseline), else the base model, else the oldest."""
    for kind in (ModelKind.SFT, ModelKind.BASE):
        for s in sources:
            if s.model_version is not None and s.model_version.kind == kind:
                return s
    return sources[0]


def _result(
    source: Source,
    baseline: Source,
    tasks: Iterable[int],
    per_task: Mapping[int, Mapping[str, list[int]]],
    rankings: Sequence[TaskRanking],
    ratings: Sequence[TaskRating],
) -> SourceResult:
    outcomes: dict[int, list[float]] = defaultdict(list)
    if source.key != baseline.key:
        for task, tiers in rankings:
            if task not in tasks:
                continue
            for a in per_task[task].get(source.key, ()):
                for b in per_task[task].get(baseline.key, ()):
                    if a in tiers and b in tiers:
                        outcomes[task].append(outcome(tiers, a, b))
    flat = [o for os in outcomes.values() for o in os]
    likert_sum: dict[int, float] = defaultdict(float)
    likert_n: dict[int, int] = defaultdict(int)
    flag_sum: dict[str, dict[int, int]] = {f: defaultdict(int) for f in FLAGS}
    rated: dict[int, int] = defaultdict(int)
    for task, key, likert, flags in ratings:
        if key != source.key or task not in tasks:
            continue
        rated[task] += 1
        if likert is not None:
            likert_sum[task] += likert
            likert_n[task] += 1
        for f in FLAGS:
            flag_sum[f][task] += bool(flags.get(f))
    ids = list(rated)
    return SourceResult(
        source=source,
        win_rate=None if source.key == baseline.key else win_rate(outcomes.values()),
        wins=sum(o == 1.0 for o in flat),
        ties=sum(o == 0.5 for o in flat),
        losses=sum(o == 0.0 for o in flat),
        likert=pooled_ratio([likert_sum[t] for t in likert_n], [likert_n[t] for t in likert_n]),
        flags={f: pooled_ratio([flag_sum[f][t] for t in ids], [rated[t] for t in ids]) for f in FLAGS},
        auto_eval=(source.model_version.metrics or {}).get("auto_eval") if source.model_version else None,
    )


def evaluation_results(*, batch: Batch, baseline: str | None = None) -> EvaluationResults:
    """Results of an evaluation (or mixed ranking) batch against `baseline` (a source key; default:
    default_baseline). Raises ServiceError for a batch without outputs or an unknown baseline."""
    sources, source_of, per_task = _sources(batch)
    if not sources:
        raise ServiceError(f"batch '{batch.name}' has no model outputs yet.", field="batch")
    by_key = {s.key: s for s in sources}
    if baseline is not None and baseline not in by_key:
        raise ServiceError(
            f"'{baseline}' is not one of the models of this batch: {', '.join(by_key)}.", field="baseline"
        )
    chosen = default_baseline(sources) if baseline is None else by_key[baseline]
    category = dict(batch.tasks.values_list("pk", "prompt__category"))
    rankings = [
        (task, tier_map(tiers))
        for task, tiers in Ranking.objects.filter(task__batch=batch).values_list("task_id", "tiers")
    ]
    ratings = [
        (task, source_of.get(c), likert, flags or {})
        for task, c, likert, flags in Rating.objects.filter(ranking__task__batch=batch).values_list(
            "ranking__task_id", "completion_id", "likert", "flags"
        )
    ]
    every = set(category)
    by_category = {}
    for cat in sorted(set(category.values()) - {None}):
        tasks = {t for t, c in category.items() if c == cat}
        by_category[cat] = [_result(s, chosen, tasks, per_task, rankings, ratings) for s in sources]
    return EvaluationResults(
        batch=batch,
        baseline=chosen,
        sources=sources,
        overall=[_result(s, chosen, every, per_task, rankings, ratings) for s in sources],
        by_category=by_category,
        tasks=len(every),
        rankings=len(rankings),
    )
