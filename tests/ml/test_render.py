"""Prompts and completions become the same ids on every path: templates, chat templates, BOS, truncation."""

import pytest

from training.ml import DatasetError
from training.ml.render import Renderer, stop_token_ids
from training.ml.runtime import load_generation_config, load_tokenizer

CHAT = [{"role": "user", "content": "What colour is the cat?"}]


@pytest.fixture(scope="module")
def chat_tokenizer(chat_model):
    return load_tokenizer(str(chat_model))


def test_a_chat_template_writes_one_bos(chat_tokenizer):
    """The template writes <|bos|> and the tokenizer adds one to plain text: tokenizing the rendered text
    with special tokens would start with two."""
    bos = chat_tokenizer.bos_token_id
    ids = Renderer.for_tokenizer(chat_tokenizer, "{prompt}\n", "auto").prompt_ids(CHAT)
    assert ids[0] == bos and ids[1] != bos
    assert (
        ids
        == chat_tokenizer.apply_chat_template(CHAT, add_generation_prompt=True, tokenize=True)["input_ids"]
    )
    plain = Renderer.for_tokenizer(chat_tokenizer, "{prompt}\n", "none").prompt_ids("What colour is the cat?")
    assert plain[0] == bos and plain[1] != bos


def test_auto_renders_a_plain_prompt_as_a_user_turn_when_the_tokenizer_has_a_template(chat_tokenizer):
    renderer = Renderer.for_tokenizer(chat_tokenizer, "{prompt}\n", "auto")
    assert renderer.chat and renderer.prompt_ids("What colour is the cat?") == renderer.prompt_ids(CHAT)
    assert renderer.prompt_text(CHAT).endswith("<|im_start|>assistant\n")


def test_a_conversation_without_a_chat_template_is_refused(sft_model):
    renderer = Renderer.for_tokenizer(load_tokenizer(str(sft_model)), "{prompt}\n", "auto")
    assert not renderer.chat
    with pytest.raises(DatasetError, match="no chat\\s+template"):
        renderer.prompt_ids(CHAT)


def test_the_reward_path_keeps_the_bos_and_the_end_of_the_completion(chat_tokenizer):
    renderer = Renderer.for_tokenizer(chat_tokenizer, "{prompt}\n", "none")
    prompt = "one two three four five six seven eight nine ten " * 3
    completion = "The cat is red and happy."
    full = renderer.scored_ids(prompt, completion, 1000)
    tail = renderer.completion_ids(completion)
    cut = renderer.scored_ids(prompt, completion, len(tail) + 6)
    assert len(cut) == len(tail) + 6 and cut[0] == chat_tokenizer.bos_token_id
    assert cut[-len(tail) :] == tail and cut[1 : -len(tail)] == full[len(full) - len(tail) - 5 : -len(tail)]
    only_tail = renderer.scored_ids(prompt, completion, 4)  # the completion alone is too long: keep its end
    assert only_tail == [chat_tokenizer.bos_token_id] + tail[-3:]


def test_a_cut_prompt_keeps_its_bos(chat_tokenizer):
    renderer = Renderer.for_tokenizer(chat_tokenizer, "{prompt}\n", "none")
    ids = renderer.prompt_ids("one two three four five six seven eight nine ten", max_length=4)
    assert len(ids) == 4 and ids[0] == chat_tokenizer.bos_token_id
    assert ids[1:] == renderer.prompt_ids("one two three four five six seven eight nine ten")[-3:]


def test_every_stop_token_of_the_generation_config_ends_a_response(chat_model, chat_tokenizer):
    stops = stop_token_ids(chat_tokenizer, load_generation_config(str(chat_model)))
    assert stops == [chat_tokenizer.convert_tokens_to_ids("<|im_end|>"), chat_tokenizer.pad_token_id]


def test_renderers_agree_only_when_they_make_the_same_ids(chat_tokenizer, sft_model):
    a = Renderer.for_tokenizer(chat_tokenizer, "{prompt}\n", "none")
    assert a.same_as(Renderer.for_tokenizer(chat_tokenizer, "{prompt}\n", "none"))
    assert not a.same_as(Renderer.for_tokenizer(chat_tokenizer, "Q: {prompt}\nA:", "none"))
    assert not a.same_as(Renderer.for_tokenizer(chat_tokenizer, "{prompt}\n", "auto"))
    assert not a.same_as(Renderer.for_tokenizer(load_tokenizer(str(sft_model)), "{prompt}\n", "none"))
