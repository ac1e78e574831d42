"""Choosing the SFT checkpoint by reward model score, as InstructGPT does (appendix C.1): validation loss
keeps rising after the first epoch while the model keeps getting better, so the paper keeps the epoch
whose samples on the valid prompts its reward model prefers.

At each evaluation (every epoch's end) one response per valid prompt is sampled from the model being
trained (seeded, so every epoch answers the same draws of the sampler) and scored; the Trainer keeps the
checkpoint with the best mean (metric_for_best_model) and loads it at the end.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import TrainerCallback

from training.ml.ppo_models import RewardScorer
from training.ml.progress import Reporter
from training.ml.render import Renderer, Text, stop_token_ids
from training.ml.rollout import left_pad, response_content, sample

SELECT_METRIC = "select_reward"


class RewardSelection(TrainerCallback):
    def __init__(
        self,
        reward_model: str,
        prompts: list[Text],
        renderer: Renderer,
        generation_config: Any,
        *,
        max_new_tokens: int,
        max_prompt_length: int,
        seed: int,
        precision: str,
        reporter: Reporter,
        batch_size: int = 16,
    ) -> None:
        self.prompts, self.renderer, self.reporter = prompts, renderer, reporter
        self.stop_ids = stop_token_ids(renderer.tokenizer, generation_config)
        self.max_new_tokens, self.max_prompt_length = max_new_tokens, max_prompt_length
        self.seed, self.batch_size = seed, batch_size
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.scorer = RewardScorer.from_folder(
            reward_model, renderer, precision=precision, device=device, reporter=reporter
        )
        self.history: list[tuple[float, float]] = []  # (epoch, mean reward)

    def on_evaluate(self, args, state, control, model=None, metrics=None, **kwargs):
        if model is None or metrics is None:
            return
        mean = self.mean_reward(getattr(model, "module", model))
        metrics[f"eval_{SELECT_METRIC}"] = mean  # the dict the Trainer compares checkpoints with
        epoch = float(state.epoch or 0.0)
        self.history.append((epoch, mean))
        state.log_history.append({f"eval_{SELECT_METRIC}": mean, "epoch": epoch, "step": state.global_step})
        self.reporter.log(f"sft: epoch {epoch:g}: mean reward of valid samples {mean:.4f}")

    @torch.no_grad()
    def mean_reward(self, model: Any) -> float:
        was_training = model.training
        model.eval()
        device = next(model.parameters()).device
        pad = self.renderer.tokenizer.pad_token_id
        rng = torch.random.get_rng_state()
        torch.manual_seed(self.seed)
        scores = []
        for start in range(0, len(self.prompts), self.batch_size):
            prompts = self.prompts[start : start + self.batch_size]
            ids = [self.renderer.prompt_ids(p, self.max_prompt_length) for p in prompts]
            query, query_mask = (t.to(device) for t in left_pad(ids, pad))  # (b, P)
            response, mask = sample(model, query, query_mask, self.max_new_tokens, 1.0, pad, self.stop_ids)
            content, texts = response_content(self.renderer.tokenizer, response, mask, self.stop_ids)
            full = torch.cat([query, response], 1)
            scores.append(
                self.scorer(full, torch.cat([query_mask, content], 1), prompts, texts).float().cpu()
            )
        torch.random.set_rng_state(rng)
        model.train(was_training)
        return torch.cat(scores).mean().item()

    def summary(self) -> dict[str, Any]:
        trained = [item for item in self.history if item[0] > 0]  # not the evaluation before training
        if not trained:
            return {}
        best_epoch, best = max(trained, key=lambda item: item[1])
        return {
            "selected_epoch": best_epoch,
            "selected_reward": best,
            "last_epoch_reward": self.history[-1][1],
        }
