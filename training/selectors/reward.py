"""Did the new policy's reward fall? Said in words for the round page, from figures already stored: the
automatic evaluation the worker runs after PPO or DPO (ModelVersion.metrics["auto_eval"]: the reward model
scores one sample per prompt of the new policy and of the model it started from) and, for PPO, the
reward at its first and last training step (the run's metrics "reward_first" and "reward")."""

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from ..models import ModelVersion, Round, TrainingRun


@dataclass
class RewardVerdict:
    fell: bool | None  # None: not known (no reward model, evaluation failed or not run yet)
    sentences: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def round_reward(rnd: Round) -> RewardVerdict | None:
    """None until the round's policy is trained."""
    policy_id = rnd.round_state.models.get("policy")
    policy = ModelVersion.objects.select_related("parent").filter(pk=policy_id).first() if policy_id else None
    if policy is None:
        return None
    run = TrainingRun.objects.filter(output_model=policy).first()
    return reward_verdict(policy, run)


def reward_verdict(policy: ModelVersion, run: TrainingRun | None) -> RewardVerdict:
    verdict = RewardVerdict(fell=None)
    evaluation = policy.metrics.get("auto_eval") or {}
    parent = policy.parent.name if policy.parent else "the model it started from"
    new_score, old_score = (
        _number(evaluation.get("rm_score_policy")),
        _number(evaluation.get("rm_score_parent")),
    )
    if evaluation.get("error"):
        verdict.sentences.append(
            f"The automatic evaluation failed ({evaluation['error']}): no reward figure."
        )
    elif new_score is not None and old_score is not None:
        verdict.fell = new_score < old_score
        verb = "fell" if verdict.fell else "rose" if new_score > old_score else "stayed the same"
        sentence = (
            f"The reward {verb}: the reward model scores {policy.name} {new_score:.3f} on average, "
            f"{parent} {old_score:.3f}"
        )
        win = _number(evaluation.get("rm_win_rate"))
        if win is not None:
            low, high = (
                _number(evaluation.get("rm_win_rate_low")),
                _number(evaluation.get("rm_win_rate_high")),
            )
            span = f" [95%: {low:.0%} to {high:.0%}]" if low is not None and high is not None else ""
            sentence += f"; it prefers {policy.name}'s output on {win:.0%}{span} of"
            sentence += f" {evaluation.get('prompts', '?')} {evaluation.get('split', '')} prompts".rstrip()
        verdict.sentences.append(sentence + ".")
    elif policy.kind == "dpo":
        verdict.sentences.append("A DPO round trains no reward model, so there is no reward to compare.")
    else:
        verdict.sentences.append("No reward figure yet: the automatic evaluation has not reported.")
    first, last = (_number((run.metrics if run else {}).get(k)) for k in ("reward_first", "reward"))
    if first is not None and last is not None:
        trend = "fell" if last < first else "rose" if last > first else "stayed"
        verdict.sentences.append(f"During PPO the training reward {trend} from {first:.3f} to {last:.3f}.")
        if verdict.fell is None:
            verdict.fell = last < first
    return verdict


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)
