"""A reward model's score is read at the last real token, at the right positions, however rows are padded."""

import pytest
import torch
from transformers import AutoModelForSequenceClassification

from training.ml.reward_model import sequence_scores
from training.ml.runtime import load_scalar_model, load_tokenizer


@pytest.fixture(scope="module")
def rm(rm_run):
    folder = rm_run[0]
    tokenizer = load_tokenizer(str(folder))
    return load_scalar_model(str(folder), tokenizer.pad_token_id, trainable=False), tokenizer


def test_left_padding_does_not_move_the_score(rm):
    """GPT-2 has absolute positions: without position ids, 4 left pads moved a score from -0.99 to +1.58."""
    model, tokenizer = rm
    ids = torch.tensor([tokenizer("What does the cat do?\nThe cat runs. It is happy.")["input_ids"]])
    mask = torch.ones_like(ids)
    padded = torch.cat([torch.full((1, 4), tokenizer.pad_token_id), ids], 1)
    padded_mask = torch.cat([torch.zeros(1, 4, dtype=torch.long), mask], 1)
    with torch.no_grad():
        alone, shifted = sequence_scores(model, ids, mask), sequence_scores(model, padded, padded_mask)
    assert shifted.item() == pytest.approx(alone.item(), abs=1e-4)


def test_a_pad_id_inside_the_text_does_not_end_it(rm):
    """pad == eos in GPT-2 style tokenizers: the library's pooling stops at the first pad id it meets."""
    model, tokenizer = rm
    text = (
        tokenizer("The cat runs.")["input_ids"]
        + [tokenizer.pad_token_id]
        + tokenizer(" It is happy.")["input_ids"]
    )
    ids = torch.tensor([text])
    with torch.no_grad():
        whole = sequence_scores(model, ids, torch.ones_like(ids))
        cut = sequence_scores(model, ids[:, : len(text) - 4], torch.ones_like(ids[:, : len(text) - 4]))
    assert whole.item() != pytest.approx(cut.item(), abs=1e-4)
    hidden = model(input_ids=ids, output_hidden_states=True).hidden_states[-1][0, -1]
    assert whole.item() == pytest.approx(model.score(hidden).item(), abs=1e-5)


@pytest.mark.parametrize("fixture", ["rm_run", "llama_model"])
def test_it_agrees_with_the_library_on_plain_right_padded_rows(fixture, request):
    folder = request.getfixturevalue(fixture)
    folder = folder[0] if isinstance(folder, tuple) else folder
    tokenizer = load_tokenizer(str(folder))
    model = AutoModelForSequenceClassification.from_pretrained(
        folder, num_labels=1, dtype=torch.float32
    ).eval()
    model.config.pad_token_id = tokenizer.pad_token_id
    rows = [tokenizer("The cat runs.")["input_ids"], tokenizer("The dog eats all day long.")["input_ids"]]
    width = max(map(len, rows))
    ids = torch.tensor([r + [tokenizer.pad_token_id] * (width - len(r)) for r in rows])
    mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows])
    with torch.no_grad():
        ours = sequence_scores(model, ids, mask)
        theirs = model(input_ids=ids, attention_mask=mask).logits[:, 0]
    assert torch.allclose(ours, theirs, atol=1e-5)
