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
