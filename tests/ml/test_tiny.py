import pytest
from transformers import AutoModelForCausalLM, AutoTokenizer


def test_it_builds_a_folder_that_auto_classes_load(tiny_model):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    assert tokenizer.pad_token == tokenizer.eos_token
    assert tokenizer.padding_side == "left"
    assert model.config.vocab_size == len(tokenizer)
    assert tokenizer.chat_template is None


def test_its_tokenizer_round_trips_text(tiny_model):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    text = "What colour is the cat?\nThe cat is red. ünïcode ✓"
    assert tokenizer.decode(tokenizer(text)["input_ids"]) == text


def test_the_cli_builds_one(tmp_path):
    from training.ml.cli import main

    assert main(["tiny", "--out", str(tmp_path / "tiny"), "--n_layer", "1"]) == 0
    assert AutoModelForCausalLM.from_pretrained(tmp_path / "tiny").config.n_layer == 1


def test_lengths_are_capped_to_the_models_positions(tiny_model):
    from training.ml.config import PPOConfig, RewardConfig
    from training.ml.runtime import fit_lengths, position_limit

    limit = position_limit(str(tiny_model))
    assert limit and limit < 512
    cfg = RewardConfig(model=str(tiny_model), max_length=512)
    assert fit_lengths(cfg) and cfg.max_length == limit
    ppo = PPOConfig(model=str(tiny_model), max_prompt_length=512, max_new_tokens=16)
    fit_lengths(ppo)
    assert ppo.max_prompt_length == limit - 16
    short = RewardConfig(model=str(tiny_model), max_length=64)
    assert fit_lengths(short) == [] and short.max_length == 64


# ---- the local demo's base model -----------------------------------------------------------------
DEMO_TEXTS = [
    "Why is the sky blue during the day?\nSunlight is scattered by the air, so blue light comes from everywhere.",
    "Rewrite this more politely: 'Send me the report now.'\nCould you please send me the report? Thank you!",
    "List three ideas for a rainy day.\n1. Build a blanket fort.\n2. Bake cookies.\n3. Paint.",
]


def test_the_demo_tokenizer_has_whole_words_only_and_round_trips_its_texts():
    from training.ml.tiny import train_word_tokenizer

    tokenizer = train_word_tokenizer(DEMO_TEXTS)
    for text in DEMO_TEXTS:
        assert tokenizer.decode(tokenizer(text)["input_ids"]) == text
    words = {w for text in DEMO_TEXTS for w in text.replace("\n", " ").split()}
    pieces = [
        tokenizer.decode([i]).strip() for i in range(len(tokenizer)) if i not in tokenizer.all_special_ids
    ]
    # Every token is a word of the texts, a run of punctuation or a line break: never a fragment of bytes.
    assert all(p == "" or any(p in w for w in words) for p in pieces)
    assert "Sunlight" in pieces and "Build" in pieces


def test_a_word_the_demo_tokenizer_never_saw_is_dropped_not_garbled():
    from training.ml.tiny import train_word_tokenizer

    tokenizer = train_word_tokenizer(DEMO_TEXTS)
    ids = tokenizer("Why is the zebra blue?")["input_ids"]
    assert tokenizer.unk_token_id in ids
    assert tokenizer.decode(ids, skip_special_tokens=True) == "Why is the blue?"


def test_the_demo_model_has_learned_its_texts_and_continues_a_prompt_with_them(tmp_path):
    import torch

    from training.ml.tiny import build_demo_model

    folder = build_demo_model(tmp_path / "demo", DEMO_TEXTS)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder)
    untrained = AutoModelForCausalLM.from_config(model.config)
    batch = tokenizer(DEMO_TEXTS[0], return_tensors="pt")
    with torch.no_grad():
        loss = model(**batch, labels=batch["input_ids"]).loss
        random_loss = untrained(**batch, labels=batch["input_ids"]).loss
    assert loss < random_loss / 2

    prompt = tokenizer("Why is the sky blue during the day?\n", return_tensors="pt")
    out = model.generate(**prompt, do_sample=False, max_new_tokens=4)
    assert tokenizer.decode(out[0, prompt["input_ids"].shape[1] :], skip_special_tokens=True).startswith(
        "Sunlight is"
    )


def test_the_demo_model_needs_some_text(tmp_path):
    from training.ml.tiny import build_demo_model

    with pytest.raises(ValueError, match="at least one non-empty text"):
        build_demo_model(tmp_path / "demo", ["", "  "])
