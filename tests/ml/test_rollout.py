"""Rollouts draw from softmax(logits / T) alone, stop at every stop token, and the EMA follows the policy.
The speed-ups (static KV cache, per-chunk prompt padding, responses cut to the longest) change no token
and no score."""

import pytest
import torch
import torch.nn.functional as F

from tests.ml.conftest import CHECKPOINT_SAMPLING
from training.ml.errors import ConfigError
from training.ml.ppo_models import WeightEMA
from training.ml.render import Renderer, stop_token_ids
from training.ml.rollout import (
    Episodes,
    left_pad,
    logprobs_of,
    plain_generation_config,
    prompt_chunks,
    response_logits,
    response_mask,
    rollout_backend,
    sample,
    trim_to_longest,
)
from training.ml.runtime import load_causal_lm, load_scalar_model, load_tokenizer


def repeats(response: torch.Tensor, mask: torch.Tensor) -> int:
    """Tokens that occur again later in their response."""
    count = 0
    for row, keep in zip(response.tolist(), mask.tolist(), strict=True):
        tokens = [t for t, k in zip(row, keep, strict=True) if k]
        count += len(tokens) - len(set(tokens))
    return count


def test_a_checkpoints_sampling_settings_do_not_reach_the_rollout(chat_model):
    """The checkpoint asks for no_repeat_ngram_size=1 (and top_k, top_p, a repetition penalty): sampling
    with it never repeats a token. A rollout must repeat as often as plain sampling does."""
    assert CHECKPOINT_SAMPLING["no_repeat_ngram_size"] == 1
    tokenizer = load_tokenizer(str(chat_model))
    model = load_causal_lm(str(chat_model), trainable=False)
    renderer = Renderer.for_tokenizer(tokenizer, "{prompt}\n", "auto")
    query, mask = left_pad([renderer.prompt_ids("What colour is the cat?")] * 16, tokenizer.pad_token_id)
    pad, stops = tokenizer.pad_token_id, [tokenizer.pad_token_id]  # stop only at pad: long responses
    torch.manual_seed(0)
    ours = sample(model, query, mask, 40, 1.0, pad, stops)
    with torch.no_grad():
        torch.manual_seed(0)
        theirs = model.generate(input_ids=query, attention_mask=mask, max_new_tokens=40, pad_token_id=pad)
    theirs = theirs[:, query.shape[1] :]
    assert repeats(theirs, response_mask(theirs, stops)) == 0  # what the checkpoint's settings do
    with plain_generation_config(model), torch.no_grad():
        torch.manual_seed(1)
        plain = model.generate(
            input_ids=query, attention_mask=mask, max_new_tokens=40, do_sample=True, top_k=0, pad_token_id=pad
        )[:, query.shape[1] :]
    expected = repeats(plain, response_mask(plain, stops))
    assert expected > 8
    assert repeats(*ours) > expected / 2
    assert model.generation_config.no_repeat_ngram_size == 1  # put back after the rollout


def test_a_response_ends_at_any_stop_token(chat_model):
    tokenizer = load_tokenizer(str(chat_model))
    model = load_causal_lm(str(chat_model), trainable=False)
    stops = stop_token_ids(tokenizer, model.generation_config)  # <|im_end|> and <|endoftext|>
    query, mask = left_pad([[tokenizer.bos_token_id, 5, 6]] * 32, tokenizer.pad_token_id)
    torch.manual_seed(0)
    response, response_mask = sample(model, query, mask, 60, 1.0, tokenizer.pad_token_id, stops)
    for row, keep in zip(response.tolist(), response_mask.tolist(), strict=True):
        kept = [t for t, k in zip(row, keep, strict=True) if k]
        assert all(t not in stops for t in kept[:-1])  # nothing after the first stop is kept
    ended = {
        row[sum(keep) - 1]
        for row, keep in zip(response.tolist(), response_mask.tolist(), strict=True)
        if sum(keep) < 60
    }
    assert ended and ended <= set(stops)


def test_the_ema_shadow_follows_the_policy_to_its_device():
    """The shadow was made on the CPU before the policy moved to the GPU: the first update crashed
    ("Expected all tensors to be on the same device"). The meta device stands in for the GPU here."""
    model = torch.nn.Linear(4, 4)
    ema = WeightEMA(model, 0.9)
    model.to("meta")
    ema.update(model)
    assert all(t.device.type == "meta" for t in ema.shadow.values())


def test_the_ema_shadow_is_fp32_for_half_weights():
    model = torch.nn.Linear(4, 4).to(torch.bfloat16)
    ema = WeightEMA(model, 0.999)
    before = ema.shadow["weight"].clone()
    with torch.no_grad():
        model.weight.add_(0.01)
    ema.update(model)
    assert ema.shadow["weight"].dtype == torch.float32 and not torch.equal(ema.shadow["weight"], before)


def test_chunks_of_different_widths_join_into_one_batch():
    def part(prompt_width, response_width, rows):
        ones = torch.ones(rows, response_width)
        return Episodes(
            torch.full((rows, prompt_width), 7),
            torch.ones(rows, prompt_width, dtype=torch.long),
            torch.full((rows, response_width), 8),
            ones.long(),
            ones,
            ones,
            ones,
            torch.ones(rows),
        )

    joined = Episodes.concat([part(3, 5, 2), part(6, 2, 1)], pad_id=0)
    assert joined.query.shape == (3, 6) and joined.response.shape == (3, 5)
    assert joined.query[0].tolist() == [0, 0, 0, 7, 7, 7] and joined.query_mask[0].tolist() == [
        0,
        0,
        0,
        1,
        1,
        1,
    ]
    assert joined.response[2].tolist() == [8, 8, 0, 0, 0] and joined.logprobs[2].tolist() == [1, 1, 0, 0, 0]


def prompts_of_many_lengths(tokenizer) -> list[list[int]]:
    """One long prompt among short ones, in both halves of the batch."""
    texts = ["What colour is the cat?", "Not red.", "the dog is blue and the cat is", "A bird."]
    long = " ".join(["What colour is the horse? Not green."] * 6)
    return [tokenizer(t)["input_ids"] for t in [long, *texts[:3], *texts[1:], long[:60]]]


def greedy(model, query, mask, tokenizer, new_tokens=16, **options):
    stops = [tokenizer.eos_token_id]
    return sample(model, query, mask, new_tokens, 1.0, tokenizer.pad_token_id, stops, greedy=True, **options)


@pytest.mark.parametrize("fixture", ["tiny_model", "llama_model"])
def test_a_static_cache_gives_the_dynamic_caches_greedy_tokens(fixture, request):
    """GPT-2 (learned positions) and Llama (rotary), left-padded prompts of different lengths."""
    folder = str(request.getfixturevalue(fixture))
    tokenizer = load_tokenizer(folder)
    model = load_causal_lm(folder, trainable=False)
    query, mask = left_pad(prompts_of_many_lengths(tokenizer), tokenizer.pad_token_id)
    dynamic = greedy(model, query, mask, tokenizer, 20)
    static = greedy(model, query, mask, tokenizer, 20, static_cache=True)
    assert torch.equal(static[0], dynamic[0]) and torch.equal(static[1], dynamic[1])
    assert static[1].sum() > len(query) * 5  # real responses, not all stopped at once
    assert model._previous_max_cache_length > query.shape[1]  # set only when generate used a static cache


def test_a_static_cache_gives_the_same_tokens_on_a_bf16_gpt2_shaped_model(tiny_model):
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    tokenizer = load_tokenizer(str(tiny_model))
    config = GPT2Config(n_embd=768, n_layer=12, n_head=12, vocab_size=len(tokenizer), n_positions=256)
    model = GPT2LMHeadModel(config).to(torch.bfloat16).eval()
    query, mask = left_pad(prompts_of_many_lengths(tokenizer)[:4], tokenizer.pad_token_id)
    dynamic = greedy(model, query, mask, tokenizer, 8)
    static = greedy(model, query, mask, tokenizer, 8, static_cache=True)
    assert model.dtype == torch.bfloat16
    assert torch.equal(static[0], dynamic[0]) and torch.equal(static[1], dynamic[1])


def test_each_chunk_padded_to_its_own_longest_prompt_samples_the_same_tokens(tiny_model):
    tokenizer = load_tokenizer(str(tiny_model))
    model = load_causal_lm(str(tiny_model), trainable=False)
    ids = prompts_of_many_lengths(tokenizer)
    query, mask = left_pad(ids, tokenizer.pad_token_id)
    for start, chunk_query, chunk_mask in prompt_chunks(ids, 4, tokenizer.pad_token_id):
        widest = max(len(p) for p in ids[start : start + 4])
        assert chunk_query.shape[1] == widest
        ours = greedy(model, chunk_query, chunk_mask, tokenizer)
        theirs = greedy(model, query[start : start + 4], mask[start : start + 4], tokenizer)
        assert torch.equal(ours[0], theirs[0]) and torch.equal(ours[1], theirs[1])
    assert chunk_query.shape[1] < query.shape[1]  # the second chunk really is narrower


def test_a_sampled_response_is_as_wide_as_its_longest_response(tiny_model):
    tokenizer = load_tokenizer(str(tiny_model))
    model = load_causal_lm(str(tiny_model), trainable=False)
    query, mask = left_pad(prompts_of_many_lengths(tokenizer), tokenizer.pad_token_id)
    torch.manual_seed(0)
    response, rmask = sample(model, query, mask, 40, 1.0, tokenizer.pad_token_id, [tokenizer.eos_token_id])
    assert response.shape[1] == rmask.sum(1).max() and response.shape == rmask.shape


def test_scores_are_the_same_cut_to_the_longest_response(tiny_model):
    """Policy (and reference) log-probs and the reward model's score, over a response batch padded far
    past its longest response and over the same batch cut to it."""
    tokenizer = load_tokenizer(str(tiny_model))
    pad = tokenizer.pad_token_id
    policy = load_causal_lm(str(tiny_model), trainable=False)
    reward = load_scalar_model(str(tiny_model), pad, trainable=False)
    query, qmask = left_pad(prompts_of_many_lengths(tokenizer)[:4], pad)
    lengths = [3, 7, 1, 5]
    body = torch.randint(5, 100, (4, 7))
    rmask = (torch.arange(7)[None] < torch.tensor(lengths)[:, None]).long()
    wide = Episodes(
        query,
        qmask,
        F.pad(body.masked_fill(rmask == 0, pad), (0, 9), value=pad),
        F.pad(rmask, (0, 9)),
        *([torch.zeros(4, 16)] * 3),
        torch.zeros(4),
    )
    cut_response, cut_mask = trim_to_longest(wide.response, wide.response_mask)
    assert cut_response.shape == (4, 7)
    cut = Episodes(query, qmask, cut_response, cut_mask, *([torch.zeros(4, 7)] * 3), torch.zeros(4))
    with torch.no_grad():
        logprobs = [logprobs_of(response_logits(policy, ep, 1.0), ep.response) for ep in (wide, cut)]
        scores = [reward(input_ids=ep.full[0], attention_mask=ep.full[1]).logits[:, 0] for ep in (wide, cut)]
    torch.testing.assert_close(logprobs[0][:, :7] * cut_mask, logprobs[1] * cut_mask)
    torch.testing.assert_close(scores[0], scores[1])


def test_the_rollout_backend_is_chosen_or_refused_by_name():
    cpu = torch.device("cpu")
    assert rollout_backend("auto", cpu) == "transformers"  # vLLM runs on GPUs only
    assert rollout_backend("transformers", cpu) == "transformers"
    with pytest.raises(ConfigError, match="rollout_backend=vllm"):
        rollout_backend("vllm", cpu)
    with pytest.raises(ConfigError, match="rollout_backend must be one of"):
        rollout_backend("fast", cpu)


def test_a_ppo_config_with_an_unknown_rollout_backend_is_refused(tmp_path):
    from training.ml.config import load_config

    base = {"model": "m", "dataset": "x.jsonl", "output_dir": str(tmp_path)}
    with pytest.raises(ConfigError, match="rollout_backend must be auto, vllm or transformers, got 'fast'"):
        load_config("ppo", overrides={**base, "rollout_backend": "fast"})
    with pytest.raises(ConfigError, match="vllm_gpu_memory_utilization"):
        load_config("ppo", overrides={**base, "vllm_gpu_memory_utilization": 1.5})


def test_the_sampler_yields_chunks_padded_to_their_own_prompts_with_the_same_episodes(tiny_model, tmp_path):
    """What the PPO loop scores: each chunk as wide as its longest prompt and longest response, and
    the same sampled episodes with a static cache as with a dynamic one (same seeds)."""
    from contextlib import nullcontext

    from training.ml.config import load_config
    from training.ml.rollout_sampler import RolloutSampler

    tokenizer = load_tokenizer(str(tiny_model))
    model = load_causal_lm(str(tiny_model), trainable=False)
    ids = prompts_of_many_lengths(tokenizer)
    base = {
        "model": str(tiny_model),
        "dataset": "x.jsonl",
        "output_dir": str(tmp_path),
        "generation_batch_size": 4,
    }
    runs = []
    for static in (False, True):
        cfg = load_config("ppo", overrides={**base, "static_cache": static, "max_new_tokens": 24})
        sampler = RolloutSampler(cfg, torch.device("cpu"), tokenizer.pad_token_id, [tokenizer.eos_token_id])
        assert sampler.backend == "transformers"
        runs.append(list(sampler.chunks(model, ids, first_episode=8, autocast=nullcontext)))
    for (start, query, _, response, rmask), again in zip(*runs, strict=True):
        assert query.shape[1] == max(len(p) for p in ids[start : start + 4])
        assert response.shape[1] == rmask.sum(1).max()
        assert torch.equal(response, again[3]) and torch.equal(rmask, again[4])
    assert [chunk[0] for chunk in runs[0]] == [0, 4] and runs[0][1][1].shape[1] < runs[0][0][1].shape[1]
