"""A tiny GPT-2 style model and a tokenizer trained here: nothing is downloaded.

The folder it writes is a normal Hugging Face model folder, so AutoModelForCausalLM.from_pretrained and
AutoTokenizer.from_pretrained load it like any hub model. `build_tiny_model` (random weights, byte-level
BPE) serves the tests, where speed matters; `build_demo_model` serves the local demo, where people read
what the model writes: a word-level tokenizer and a short pre-training on the demo's texts, so even the
first round's samples are words and phrases of the domain rather than byte noise.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerFast

    from training.ml.config import TinyConfig

EOS = "<|endoftext|>"
UNK = "<|unk|>"

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


def train_tokenizer(texts: Iterable[str], vocab_size: int = 512) -> PreTrainedTokenizerFast:
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
    tokenizer = train_tokenizer(default_corpus() if texts is None else texts, vocab_size)
    model = _tiny_gpt2(
        tokenizer, n_layer=n_layer, n_embd=n_embd, n_head=n_head, n_positions=n_positions, seed=seed
    )
    return _save(out_dir, model, tokenizer)


def _tiny_gpt2(
    tokenizer: PreTrainedTokenizerFast, *, n_layer: int, n_embd: int, n_head: int, n_positions: int, seed: int
) -> PreTrainedModel:
    """A GPT-2 shaped model over `tokenizer`'s vocabulary, random weights from `seed`; eos = bos = pad."""
    import torch
    from transformers import GenerationConfig, GPT2Config, GPT2LMHeadModel

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
    return model


def _save(out_dir: str | Path, model: PreTrainedModel, tokenizer: PreTrainedTokenizerFast) -> Path:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


# ---- the local demo's base model: whole words, briefly pre-trained on the demo's texts -------------
DEMO_PRETRAIN_STEPS = 50


def train_word_tokenizer(texts: Iterable[str]) -> PreTrainedTokenizerFast:
    """A word-level tokenizer over `texts`: each token is a whole word with its leading space, a run of
    punctuation or a line break (GPT-2's pre-tokenizer splits them), so anything a model samples from it
    reads as words. A word it never saw becomes <|unk|>, which decoding with skip_special_tokens drops;
    text made of known words round-trips exactly. pad = eos, as in train_tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    words = Tokenizer(models.WordLevel(unk_token=UNK))
    words.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    words.decoder = decoders.ByteLevel()
    words.train_from_iterator(
        list(texts), trainer=trainers.WordLevelTrainer(special_tokens=[EOS, UNK], show_progress=False)
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=words,
        bos_token=EOS,
        eos_token=EOS,
        unk_token=UNK,
        pad_token=EOS,
        padding_side="left",
        model_max_length=1_000_000,
    )


def pretrain(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerFast,
    texts: list[str],
    *,
    steps: int,
    learning_rate: float = 3e-3,
) -> float:
    """Next-token training on `texts` (each ended by eos), all of them in every step; returns the last
    loss. Enough steps to write the domain's words in its phrases, few enough that samples still vary
    (about 50 on the demo's texts: loss near 1). A plain loop, not a Trainer: a few dozen full-batch
    steps need neither its checkpoints nor its schedule."""
    import torch

    limit = model.config.n_positions
    rows = [tokenizer(text + EOS)["input_ids"][:limit] for text in texts]
    width = max(len(row) for row in rows)
    ids = torch.full((len(rows), width), tokenizer.pad_token_id)  # (B, T)
    mask = torch.zeros_like(ids)
    for i, row in enumerate(rows):
        ids[i, : len(row)], mask[i, : len(row)] = torch.tensor(row), 1
    labels = ids.masked_fill(mask == 0, -100)  # padding is not learned; the first eos of each row is
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate)
    threads = torch.get_num_threads()
    # One thread: on a model this small a second one mostly waits for the first, and on a busy machine
    # its spinning costs many times the work itself.
    torch.set_num_threads(1)
    model.train()
    loss = torch.tensor(float("nan"))
    try:
        for _ in range(steps):
            loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
    finally:
        torch.set_num_threads(threads)
    model.eval()
    return float(loss.detach())


def build_demo_model(
    out_dir: str | Path, texts: Iterable[str], *, steps: int = DEMO_PRETRAIN_STEPS, seed: int = 0
) -> Path:
    """The local demo's base model: the tiny GPT-2 shape over a word-level tokenizer of `texts`,
    pre-trained on them for `steps` full-batch steps (seconds on two CPU cores)."""
    corpus = [text for text in texts if text.strip()]
    if not corpus:
        raise ValueError("the demo model needs at least one non-empty text to learn its words from")
    tokenizer = train_word_tokenizer(corpus)
    model = _tiny_gpt2(tokenizer, n_layer=2, n_embd=64, n_head=4, n_positions=256, seed=seed)
    pretrain(model, tokenizer, corpus, steps=steps)
    return _save(out_dir, model, tokenizer)


def run_tiny(cfg: TinyConfig) -> dict:
    """The `tiny` stage: build the model described by a TinyConfig."""
    texts = None
    if cfg.corpus:
        texts = [line for line in Path(cfg.corpus).read_text(encoding="utf-8").splitlines() if line.strip()]
    out = build_tiny_model(
        cfg.output_dir, texts, cfg.vocab_size, cfg.n_layer, cfg.n_embd, cfg.n_head, cfg.n_positions, cfg.seed
    )
    return {"output_dir": str(out)}


# ---- a tiny model shaped like a real chat checkpoint ----------------------------------------------
BOS, PAD, TURN_START, TURN_END = "<|bos|>", "<|endoftext|>", "<|im_start|>", "<|im_end|>"
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def train_chat_tokenizer(texts: Iterable[str], vocab_size: int = 512) -> PreTrainedTokenizerFast:
    """Like a Llama 3 / Qwen tokenizer: it adds a BOS of its own to plain text, its chat template writes
    the BOS too, the end of a turn is the eos, and pad is yet another token."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    specials = [PAD, BOS, TURN_START, TURN_END]
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(list(texts), trainer=trainer)
    bos_id = bpe.token_to_id(BOS)
    bpe.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A {BOS} $B", special_tokens=[(BOS, bos_id)]
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        bos_token=BOS,
        eos_token=TURN_END,
        pad_token=PAD,
        unk_token=PAD,
        additional_special_tokens=[TURN_START],
        padding_side="left",
        model_max_length=1_000_000,
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def build_tiny_chat_model(
    out_dir: str | Path,
    arch: str = "gpt2",
    dtype: str = "bfloat16",
    generation: dict | None = None,
    attention_dropout: float = 0.0,
    vocab_size: int = 512,
    seed: int = 0,
) -> Path:
    """A tiny model with what real checkpoints bring: weights saved in bf16, a chat template, a BOS the
    tokenizer adds, eos != pad, several stop tokens, and a generation_config full of sampling settings
    (`generation`). arch 'gpt2' has absolute positions; 'llama' has rotary positions and an attention
    dropout rate read at call time."""
    import torch
    from transformers import GenerationConfig, GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    chats = [f"{TURN_START}user\n{q}{TURN_END}\n{TURN_START}assistant\n{a}{TURN_END}\n" for q, a in _pairs()]
    tokenizer = train_chat_tokenizer(default_corpus() + chats, vocab_size)
    ids = {name: tokenizer.convert_tokens_to_ids(name) for name in (BOS, PAD, TURN_END)}
    common: dict[str, Any] = {
        "vocab_size": len(tokenizer),
        "bos_token_id": ids[BOS],
        "eos_token_id": ids[TURN_END],
    }
    common["pad_token_id"] = ids[PAD]
    torch.manual_seed(seed)
    model: PreTrainedModel
    if arch == "gpt2":
        config = GPT2Config(
            n_positions=256, n_embd=64, n_layer=2, n_head=4, attn_pdrop=attention_dropout, **common
        )
        model = GPT2LMHeadModel(config)
    elif arch == "llama":
        llama = LlamaConfig(
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=256,
            attention_dropout=attention_dropout,
            tie_word_embeddings=True,
            **common,
        )
        model = LlamaForCausalLM(llama)
    else:
        raise ValueError(f"arch must be gpt2 or llama, got {arch!r}")
    model = model.to(getattr(torch, dtype))
    model.generation_config = GenerationConfig(
        bos_token_id=ids[BOS],
        eos_token_id=[ids[TURN_END], ids[PAD]],
        pad_token_id=ids[PAD],
        **(generation or {}),
    )
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def _pairs() -> list[tuple[str, str]]:
    """(question, answer) pairs of the built-in corpus."""
    return [tuple(text.split("\n", 1)) for text in default_corpus() if "\n" in text]  # type: ignore[misc]


def build_gpt2_small_shape(tokenizer_folder: str | Path, out: str | Path) -> Path:
    """GPT-2 small's shape (124M parameters) with random weights and the tokenizer of another folder
    (ids beyond it decode to nothing): the benchmarks' stand-in for a real model, nothing downloaded."""
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_folder)
    eos = tokenizer.eos_token_id
    config = GPT2Config(
        vocab_size=50257,
        n_positions=1024,
        n_embd=768,
        n_layer=12,
        n_head=12,
        bos_token_id=eos,
        eos_token_id=eos,
        pad_token_id=eos,
    )
    GPT2LMHeadModel(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return Path(out)
