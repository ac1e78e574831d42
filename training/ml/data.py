"""Read the exports' JSONL files, check every line, and pick the train / valid rows.

Formats (one object per line, each may carry ids and "split": "train" | "valid" | "test"):
    sft          {"prompt", "completion"}
    rm_pairs     {"prompt", "chosen", "rejected"}
    rm_rankings  {"prompt", "completions": [...], "ranks": [...]}   best rank 0, ties share a rank
    prompts      {"prompt"}
"""

from __future__ import annotations

import hashlib
import itertools
import json
from pathlib import Path
from typing import Any

from training.ml.errors import DatasetError

SPLITS = ("train", "valid", "test")
_STRING_FIELDS = {
    "sft": ("prompt", "completion"),
    "rm_pairs": ("prompt", "chosen", "rejected"),
    "rm_rankings": ("prompt",),
    "prompts": ("prompt",),
    "text": ("text",),
}


def read_jsonl(path: str | Path) -> list[tuple[int, dict[str, Any]]]:
    """(line number, object) for every non-blank line; a line that is not a JSON object raises DatasetError."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"dataset file {path} does not exist")
    rows = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DatasetError(f"{path}: line {number}: not valid JSON ({exc.msg})") from exc
            if not isinstance(row, dict):
                raise DatasetError(f"{path}: line {number}: must be a JSON object, got {type(row).__name__}")
            rows.append((number, row))
    if not rows:
        raise DatasetError(f"dataset file {path} has no rows")
    return rows


def detect_format(row: dict[str, Any]) -> str:
    if "completions" in row:
        return "rm_rankings"
    if "chosen" in row:
        return "rm_pairs"
    if "completion" in row:
        return "sft"
    if "prompt" in row:
        return "prompts"
    if "text" in row:
        return "text"
    raise DatasetError(
        "cannot tell the dataset format: the first row has none of prompt, completion, chosen, completions"
    )


def _check(path: Path, number: int, row: dict[str, Any], fmt: str) -> None:
    where = f"{path}: line {number}"
    for name in _STRING_FIELDS[fmt]:
        if not isinstance(row.get(name), str):
            got = "nothing" if name not in row else type(row[name]).__name__
            raise DatasetError(f"{where}: field {name!r} must be a string, got {got}")
    split = row.get("split", "train")
    if split not in SPLITS:
        raise DatasetError(f"{where}: field 'split' must be one of {', '.join(SPLITS)}, got {split!r}")
    if fmt == "rm_rankings":
        completions, ranks = row.get("completions"), row.get("ranks")
        if not isinstance(completions, list) or len(completions) < 2:
            raise DatasetError(f"{where}: field 'completions' must be a list of at least 2 strings")
        if not all(isinstance(c, str) for c in completions):
            raise DatasetError(f"{where}: field 'completions' must hold strings only")
        if not isinstance(ranks, list) or len(ranks) != len(completions):
            raise DatasetError(
                f"{where}: field 'ranks' must be a list as long as 'completions' ({len(completions)})"
            )
        if not all(isinstance(r, int) and not isinstance(r, bool) and r >= 0 for r in ranks):
            raise DatasetError(f"{where}: field 'ranks' must hold integers >= 0 (0 is the best), got {ranks}")


def load_rows(
    path: str | Path, fmt: str = "auto", allowed: tuple[str, ...] | None = None
) -> list[dict[str, Any]]:
    """All rows of a JSONL file, checked against `fmt` ('auto' detects it from the first row)."""
    numbered = read_jsonl(path)
    if fmt == "auto":
        fmt = detect_format(numbered[0][1])
    if fmt not in _STRING_FIELDS:
        raise DatasetError(f"unknown dataset format {fmt!r}; use one of {', '.join(_STRING_FIELDS)}")
    if allowed is not None and fmt not in allowed:
        raise DatasetError(f"{path} holds {fmt} rows; this stage needs {' or '.join(allowed)}")
    for number, row in numbered:
        _check(Path(path), number, row, fmt)
        row.setdefault("split", "train")
    return [row for _, row in numbered]


def _bucket(row: dict[str, Any]) -> float:
    """A stable number in [0, 1) from the prompt, so a prompt always lands on the same side."""
    key = str(row.get("prompt", row.get("text", "")))
    return int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) / 2**32


def train_valid(rows: list[dict[str, Any]], valid_fraction: float) -> tuple[list[dict], list[dict]]:
    """split=='train' rows and split=='valid' rows; without valid rows, hold out a deterministic fraction."""
    train = [r for r in rows if r["split"] == "train"]
    valid = [r for r in rows if r["split"] == "valid"]
    if not train:
        raise DatasetError("the dataset has no rows with split 'train'")
    if not valid and valid_fraction > 0 and len(train) > 1:
        held = [r for r in train if _bucket(r) < valid_fraction]
        if not held:  # tiny files: hold out the lowest-bucket row
            held = [min(train, key=_bucket)]
        if len(held) < len(train):
            ids = {id(r) for r in held}
            train, valid = [r for r in train if id(r) not in ids], held
    return train, valid


def as_rankings(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """rm_pairs rows become rankings of K=2; rm_rankings rows pass through."""
    out = []
    for row in rows:
        if "completions" in row:
            out.append(row)
        else:
            out.append({**row, "completions": [row["chosen"], row["rejected"]], "ranks": [0, 1]})
    return out


def ranking_pairs(ranking: dict[str, Any]) -> list[tuple[str, str]]:
    """Every (better, worse) pair of a ranking; tied completions make no pair."""
    items = list(zip(ranking["completions"], ranking["ranks"], strict=True))
    return [
        (a, b) if ra < rb else (b, a) for (a, ra), (b, rb) in itertools.combinations(items, 2) if ra != rb
    ]


def as_pairs(rows: list[dict[str, Any]]) -> list[dict[str, str]]:
    """rm_rankings rows become their C(K,2) non-tied pairs; rm_pairs rows pass through."""
    out = []
    for row in rows:
        if "chosen" in row:
            out.append({"prompt": row["prompt"], "chosen": row["chosen"], "rejected": row["rejected"]})
        else:
            out += [{"prompt": row["prompt"], "chosen": w, "rejected": lo} for w, lo in ranking_pairs(row)]
    return out


def format_prompt(template: str, prompt: str) -> str:
    return template.replace("{prompt}", prompt)


def prompt_id(row: dict[str, Any]) -> Any:
    return row.get("prompt_id", row.get("id"))
