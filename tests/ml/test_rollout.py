"""Rollouts draw from softmax(logits / T) alone, stop at every stop token, and the EMA follows the policy."""

import torch

from tests.ml.conftest import CHECKPOINT_SAMPLING
from training.ml.ppo_models import WeightEMA
from training.ml.render import Renderer, stop_token_ids
from training.ml.rollout import Episodes, left_pad, plain_generation_config, response_mask, sample
from training.ml.runtime import load_causal_lm, load_tokenizer


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
