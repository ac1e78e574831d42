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
