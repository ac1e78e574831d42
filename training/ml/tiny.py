"""A tiny GPT-2 style model and a byte-level BPE tokenizer trained here: nothing is downloaded.

The folder it writes is a normal Hugging Face model folder, so AutoModelForCausalLM.from_pretrained and
AutoTokenizer.from_pretrained load it like any hub model. Used by the tests and the local demo.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from pathlib import Path

EOS = "<|endoftext|>"

_ANIMALS = ["cat", "dog", "bird", "fish", "horse", "mouse", "lion", "bear"]
_COLOURS = ["red", "blue", "green", "yellow", "black", "white"]
_VERBS = ["runs", "sleeps", "eats", "jumps", "sings", "swims"]
_NUMBERS = ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"]


def default_corpus() -> list[str]:
    """Short English prompts and answers, enough to train a 512-token BPE and a 2-layer model."""
    texts = []
    for animal, colour in itertools.product(_ANIMALS, _COLOURS):
        texts.append(f"What colour is the {animal}?\nThe {animal} is {colour}.")
        texts.append(f"Tell me about the {colour} {animal}.\nThe {colour} {animal} is good and happy.")
    for animal, verb in itertools.product(_ANIMALS, _VERBS):
        texts.append(f"What does the {animal} do?\nThe {animal} {verb} all day. It is very good.")
    for i, n in enumerate(_NUMBERS[:-1]):
        texts.append(f"Count from {n}.\n{' '.join(_NUMBERS[i:])}")
    texts += [
        "Say yes.\nyes yes yes",
        "Say no.\nno no no",
        "Write a poem.\nThe sun is warm, the sea is blue, the day is good and so are you.",
        "Question: is the sky blue?\nAnswer: yes, the sky is blue.",
    ]
    return texts


def train_tokenizer(texts: Iterable[str], vocab_size: int = 512):
    """A byte-level BPE tokenizer (GPT-2 style) wrapped as a transformers fast tokenizer, pad = eos."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(list(texts), trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        bos_token=EOS,
        eos_token=EOS,
        unk_token=EOS,
        pad_token=EOS,
        padding_side="left",  # generation appends to the right end of every prompt
        model_max_length=1_000_000,
    )
    return tokenizer


def build_tiny_model(
    out_dir: str | Path,
    texts: Iterable[str] | None = None,
    vocab_size: int = 512,
    n_layer: int = 2,
    n_embd: int = 64,
    n_head: int = 4,
    n_positions: int = 256,
    seed: int = 0,
) -> Path:
    """Write a randomly initialised GPT-2 style model and its tokenizer to out_dir; return the folder."""
    import torch
    from transformers import GenerationConfig, GPT2Config, GPT2LMHeadModel

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = train_tokenizer(default_corpus() if texts is None else texts, vocab_size)
    eos_id = tokenizer.eos_token_id
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=n_positions,
        n_embd=n_embd,
        n_layer=n_layer,
        n_head=n_head,
        bos_token_id=eos_id,
        eos_token_id=eos_id,
        pad_token_id=eos_id,
    )
    torch.manual_seed(seed)
    model = GPT2LMHeadModel(config)
    model.generation_config = GenerationConfig(bos_token_id=eos_id, eos_token_id=eos_id, pad_token_id=eos_id)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def run_tiny(cfg) -> dict:
    """The `tiny` stage: build the model described by a TinyConfig."""
    texts = None
    if cfg.corpus:
        texts = [line for line in Path(cfg.corpus).read_text(encoding="utf-8").splitlines() if line.strip()]
    out = build_tiny_model(
        cfg.output_dir, texts, cfg.vocab_size, cfg.n_layer, cfg.n_embd, cfg.n_head, cfg.n_positions, cfg.seed
    )
    return {"output_dir": str(out)}
