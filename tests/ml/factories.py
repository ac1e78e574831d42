"""Synthetic datasets in the exports' JSONL formats, with rules the tiny model can learn."""

from __future__ import annotations

import json
import random
from pathlib import Path

from training.ml.tiny import _ANIMALS, _COLOURS, _VERBS

MARKER = " It is happy."  # completions holding it more often rank higher


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def sft_rows() -> list[dict]:
    """48 demonstrations 'What colour is the X?' -> 'The X is C.'; every 8th is in the valid split."""
    rows = []
    for i, (animal, colour) in enumerate((a, c) for a in _ANIMALS for c in _COLOURS):
        split = "valid" if i % 8 == 3 else "train"
        rows.append(
            {
                "id": i,
                "prompt": f"What colour is the {animal}?",
                "completion": f"The {animal} is {colour}.",
                "split": split,
            }
        )
    return rows


def ranking_rows(count: int = 120, k: int = 4, seed: int = 0, valid_every: int = 5) -> list[dict]:
    """Rankings where more MARKERs rank higher (0 is the best) and equal counts tie."""
    rng = random.Random(seed)
    rows = []
    for i in range(count):
        animal = rng.choice(_ANIMALS)
        markers = [rng.randint(0, 2) for _ in range(k)]
        if len(set(markers)) == 1:
            markers[0] = (markers[0] + 1) % 3
        completions = [f"The {animal} {rng.choice(_VERBS)}." + MARKER * m for m in markers]
        ranks = [2 - m for m in markers]
        split = "valid" if i % valid_every == 0 else "train"
        rows.append(
            {
                "id": i,
                "prompt_id": 1000 + i,
                "prompt": f"What does the {animal} do?",
                "completions": completions,
                "ranks": ranks,
                "split": split,
            }
        )
    return rows


def pair_rows(rankings: list[dict]) -> list[dict]:
    """rm_pairs rows: the best and the worst completion of each ranking."""
    rows = []
    for r in rankings:
        best = r["completions"][r["ranks"].index(min(r["ranks"]))]
        worst = r["completions"][r["ranks"].index(max(r["ranks"]))]
        rows.append(
            {"id": r["id"], "prompt": r["prompt"], "chosen": best, "rejected": worst, "split": r["split"]}
        )
    return rows


def prompt_rows() -> list[dict]:
    return [
        {"id": i, "prompt": f"What colour is the {a}?", "split": "test" if i == 0 else "train"}
        for i, a in enumerate(_ANIMALS)
    ]


def conversational(rows: list[dict]) -> list[dict]:
    """The same rows in TRL's conversational format (as the conversational exports write them)."""

    def user(text):
        return [{"role": "user", "content": text}]

    def assistant(text):
        return [{"role": "assistant", "content": text}]

    out = []
    for row in rows:
        row = {**row, "prompt": user(row["prompt"])}
        for key in ("completion", "chosen", "rejected"):
            if key in row:
                row[key] = assistant(row[key])
        if "completions" in row:
            row["completions"] = [assistant(c) for c in row["completions"]]
        out.append(row)
    return out
