"""What each step of a round does (training/services/rounds.py runs them in order, under the round's row
lock). Each step function gets the round, its state (to read what the steps before it produced and record
what it produces) and its own name, and returns True when the step is done, or False when it started
training runs and waits for them (a run's end advances the round again). A step that cannot go on raises
ServiceError: the round fails with its message.
"""

import json
from pathlib import Path
from typing import TYPE_CHECKING

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import transaction

from core.errors import ServiceError
from core.roles import ROLE_LABELER
from labeling.models import Batch, Completion, DatasetSnapshot, Prompt
from labeling.services.batches import batch_create_from_completions
from labeling.services.exports import snapshot_create
from labeling.vocab import K_MIN
from training.ml.launch import launch_config

from ..models import ModelKind, ModelVersion, Round, RunStatus, TrainingRun
from ..round_state import RoundState
from .registry import base_model_get_or_create
from .runs import run_start

if TYPE_CHECKING:
    from django.contrib.auth.models import User


def _export(rnd: Round, state: RoundState, step: str) -> bool:
    """Snapshot the labels the training steps read: demonstrations, rankings (or pairs), prompts."""
    filters = {"batches": rnd.config["batches"]} if rnd.config["batches"] else {}
    kinds = ["sft", "rm_rankings" if rnd.method == "ppo" else "rm_pairs", "prompts"]
    snaps = {}
    for kind in kinds:
        snap = snapshot_create(kind=kind, filters=filters, created_by=rnd.created_by)
        if snap.row_count == 0:
            raise ServiceError(f"the {kind} export is empty: there is nothing labeled to train on yet.")
        snaps[kind] = snap.pk
    state.snapshots = snaps
    return True


def _sft_inputs(rnd: Round, state: RoundState, snaps: dict[str, DatasetSnapshot]) -> dict:
    """SFT: the base model, fine-tuned on the demonstrations. From the second round on, the newest reward
    model an earlier round trained picks the final epoch (by its mean reward on samples of the valid
    prompts), as InstructGPT chose its SFT models; {"sft": {"selection_prompts": 0}} turns that off.
    Not under a launch config that shards the weights (FSDP, ZeRO-3): the selection samples with the bare
    model on every rank and loads a whole reward model on each, which has not been run on such engines."""
    sharded = launch_config(rnd.launch_config or settings.TRAINING_LAUNCH_CONFIG).shards_weights
    return {
        "base_model": base_model_get_or_create(),
        "snapshots": [snaps["sft"]],
        "reward_model": None if sharded else _earlier_reward_model(rnd),
    }


def _earlier_reward_model(rnd: Round) -> ModelVersion | None:
    for earlier in Round.objects.filter(number__lt=rnd.number).order_by("-number"):
        pk = RoundState.from_json(earlier.state).models.get("rm")
        if pk is not None:
            return ModelVersion.objects.filter(pk=pk, kind=ModelKind.RM).first()
    return None


def _rm_inputs(rnd: Round, state: RoundState, snaps: dict[str, DatasetSnapshot]) -> dict:
    """RM: from the SFT model, on the rankings (and the demonstrations, for its prompts)."""
    return {"base_model": _model(state, "sft"), "snapshots": [snaps["rm_rankings"], snaps["sft"]]}


def _ppo_inputs(rnd: Round, state: RoundState, snaps: dict[str, DatasetSnapshot]) -> dict:
    """PPO: the SFT model as the start and the reference, the reward model as the score, on the prompts
    (and the demonstrations, for the pretraining-mix term)."""
    return {
        "base_model": _model(state, "sft"),
        "reward_model": _model(state, "rm"),
        "snapshots": [snaps["prompts"], snaps["sft"]],
    }


def _dpo_inputs(rnd: Round, state: RoundState, snaps: dict[str, DatasetSnapshot]) -> dict:
    """DPO: the SFT model, on the preference pairs (no reward model)."""
    return {"base_model": _model(state, "sft"), "snapshots": [snaps["rm_pairs"]]}


TRAINING_INPUTS = {"sft": _sft_inputs, "rm": _rm_inputs, "ppo": _ppo_inputs, "dpo": _dpo_inputs}
MODEL_OF_STEP = {"sft": "sft", "rm": "rm", "ppo": "policy", "dpo": "policy"}


def _train(rnd: Round, state: RoundState, step: str) -> bool:
    """sft, rm, ppo or dpo: start the step's run, then (advanced again when it ends) keep its model."""
    if step not in state.runs:
        snaps = {k: DatasetSnapshot.objects.get(pk=v) for k, v in state.snapshots.items()}
        inputs = TRAINING_INPUTS[step](rnd, state, snaps)
        config = dict(rnd.config["stage_config"].get(step, {}))
        run = run_start(
            kind=step,
            created_by=rnd.created_by,
            round=rnd,
            config=config,
            launch_config=rnd.launch_config,
            **inputs,
        )
        state.runs[step] = [run.pk]
        return False
    if not _await_runs(rnd, state, step):
        return False
    run = TrainingRun.objects.get(pk=state.runs[step][0])
    assert run.output_model_id is not None  # registry.run_register sets it with the status
    state.models[MODEL_OF_STEP[step]] = run.output_model_id
    return True


def _generate(rnd: Round, state: RoundState, step: str) -> bool:
    """Sample the outputs to rank: K per prompt, split across the policy (and the SFT model)."""
    if step not in state.runs:
        sources = [_model(state, "policy")] + ([_model(state, "sft")] if rnd.config["mix_sft"] else [])
        per_source = -(-rnd.config["k"] // len(sources))  # ceil
        prompts = DatasetSnapshot.objects.get(pk=state.snapshots["prompts"])
        overrides = dict(rnd.config["stage_config"].get("generate", {}))
        state.runs[step] = [
            run_start(
                kind="generate",
                base_model=model,
                snapshots=[prompts],
                created_by=rnd.created_by,
                round=rnd,
                config={"num_samples": per_source, "max_prompts": rnd.config["prompt_limit"], **overrides},
                launch_config=rnd.launch_config,
            ).pk
            for model in sources
        ]
        return False
    return bool(_await_runs(rnd, state, step))


def _make_batch(rnd: Round, state: RoundState, step: str) -> bool:
    """The next ranking batch: K outputs per prompt, interleaved across the source models."""
    per_prompt: dict[int, list[list[tuple[ModelVersion, str]]]] = {}
    for run in TrainingRun.objects.filter(pk__in=state.runs["generate"]).select_related("base_model"):
        path = Path(run.config["output_dir"]) / "completions.jsonl"
        with path.open(encoding="utf-8") as lines:
            for line in lines:
                row = json.loads(line)
                per_prompt.setdefault(int(row["prompt_id"]), []).append(
                    [(run.base_model, text) for text in row["completions"]]
                )
    policy = _model(state, "policy")
    batch = batch_from_generations(
        name=f"Round {rnd.number}: rank outputs of {policy.name}",
        round_number=rnd.number,
        model_version=policy,
        generations=per_prompt,
        k=rnd.config["k"],
        status=rnd.config["batch_status"],
        overlap=rnd.config["overlap"],
        created_by=rnd.created_by,
    )
    rnd.batch = batch
    rnd.save(update_fields=["batch"])
    return True


STEP_ACTIONS = {
    "export": _export,
    "sft": _train,
    "rm": _train,
    "ppo": _train,
    "dpo": _train,
    "generate": _generate,
    "batch": _make_batch,
}


# What the steps share: the models the round made so far, and waiting for (or retrying) a step's runs.


def _model(state: RoundState, key: str) -> ModelVersion:
    return ModelVersion.objects.get(pk=state.models[key])


def _await_runs(rnd: Round, state: RoundState, step: str) -> bool:
    """True when every run of the step succeeded, False while some still go; fails the round on a failed
    run, unless the round is being retried from this step (then the failed runs start again)."""
    runs = list(TrainingRun.objects.filter(pk__in=state.runs[step]))
    bad = [r for r in runs if r.status in (RunStatus.FAILED, RunStatus.CANCELLED)]
    if bad:
        if state.retry == step:  # retry: resume the failed runs from their checkpoints
            state.retry = ""
            state.runs[step] = [_rerun(rnd, step, r).pk if r in bad else r.pk for r in runs]
            return False
        first = bad[0]
        reason = first.error.splitlines()[0] if first.error else first.status
        raise ServiceError(f"run {first.pk} {first.status}: {reason}")
    return all(r.status == RunStatus.SUCCEEDED for r in runs)


KEPT_ON_RETRY = ("num_samples", "max_prompts")


def _rerun(rnd: Round, step: str, failed: TrainingRun) -> TrainingRun:
    """A failed step's run again, with the round's current stage settings (an admin may have fixed
    them) in the failed run's output folder (retry_of), so training resumes from its last checkpoint."""
    config = {k: v for k, v in failed.config.items() if k in KEPT_ON_RETRY}
    config.update(rnd.config["stage_config"].get(step, {}))
    return run_start(
        kind=failed.kind,
        base_model=failed.base_model,
        snapshots=list(failed.snapshots.all()),
        reward_model=failed.reward_model,
        config=config,
        created_by=rnd.created_by,
        round=rnd,
        retry_of=failed,
        launch_config=failed.launch_config,
    )


@transaction.atomic
def batch_from_generations(
    *,
    name: str,
    round_number: int,
    model_version: ModelVersion,
    generations: dict,
    k: int,
    status: str,
    overlap: int,
    created_by: "User | None" = None,
) -> Batch:
    """A ranking batch from {prompt id: [[(model, text), ...] per source model]}: the first K outputs
    taken round-robin across the sources, so a mixed batch shows each model's samples side by side.
    The batch itself is made by labeling's batch_create_from_completions, the one place that creates a
    ranking batch, with the same checks as a batch made by hand."""
    prompts = Prompt.objects.in_bulk(list(generations))
    completions = []
    for prompt_id in sorted(generations):
        sources = generations[prompt_id]
        mixed = [pair for group in zip(*sources, strict=False) for pair in group][:k]
        if len(mixed) < K_MIN or prompt_id not in prompts:
            continue
        completions += [
            Completion.objects.create(prompt=prompts[prompt_id], text=_storable(text), model_version=model)
            for model, text in mixed
        ]
    if not completions:
        raise ServiceError("generation produced no prompt with at least two outputs; no batch was made.")
    return batch_create_from_completions(
        completions=completions,
        name=name,
        status=status,
        overlap=overlap,
        round_number=round_number,
        model_version=model_version,
        created_by=created_by,
        instructions="Rate each output, then rank them best to worst. Ties are fine for outputs of similar quality.",
        groups=[Group.objects.get_or_create(name=ROLE_LABELER)[0]],
    )


def _storable(text: str) -> str:
    """Model output as Postgres can store it: NUL characters (which byte-level models can emit) become
    U+FFFD, the replacement character, so the labeler still sees that something was there."""
    return text.replace("\x00", "\ufffd")
