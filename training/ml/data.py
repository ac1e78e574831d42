"""Pick the train / valid rows of a dataset and shape preference data for the reward model and DPO.

Reading a dataset and its formats: sources.py (load_rows is re-exported here).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import random
from typing import Any

from training.ml.errors import DatasetError
from training.ml.render import format_prompt
from training.ml.sources import SPLITS, load_rows

__all__ = ["SPLITS", "format_prompt", "load_rows"]


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


def _key(value: Any) -> str:
    """A completion (text or messages) as a hashable key."""
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def _group_of(row: dict[str, Any], index: int) -> tuple[str, Any]:
    """Which ranking an rm_pairs row came from: its ranking, else its task (consensus exports), else
    none known (public pair data: each pair is its own prompt's comparison)."""
    if row.get("ranking_id") is not None:
        return ("ranking", row["ranking_id"])
    if row.get("task_id") is not None:
        return ("task", row["task_id"])
    return ("row", index)


def preference_groups(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One element per ranking: its prompt, its K distinct completions and the (better, worse) index
    pairs between them. rm_rankings rows give their non-tied pairs; rm_pairs rows that came from one
    ranking (same ranking_id, or task_id) are put back together, so the reward model sees all of a
    ranking's comparisons in one batch element, as InstructGPT does, instead of each pair apart (each
    completion then gets K-1 updates per epoch and overfits)."""
    groups: dict[tuple[str, Any], dict[str, Any]] = {}
    for index, row in enumerate(rows):
        if "completions" in row:
            ranks = row["ranks"]
            pairs = [
                (i, j) if ranks[i] < ranks[j] else (j, i)
                for i, j in _index_pairs(len(ranks))
                if ranks[i] != ranks[j]
            ]
            groups[("row", index)] = {**row, "pairs": pairs}
            continue
        group = groups.setdefault(_group_of(row, index), {**row, "completions": [], "pairs": []})
        seen = {_key(c): k for k, c in enumerate(group["completions"])}
        ends = []
        for text in (row["chosen"], row["rejected"]):
            if _key(text) not in seen:
                seen[_key(text)] = len(group["completions"])
                group["completions"].append(text)
            ends.append(seen[_key(text)])
        if tuple(ends) not in group["pairs"] and ends[0] != ends[1]:
            group["pairs"].append(tuple(ends))
    out = []
    for group in groups.values():
        group.pop("chosen", None)
        group.pop("rejected", None)
        out.append(group)
    return out


def _index_pairs(k: int) -> list[tuple[int, int]]:
    return list(itertools.combinations(range(k), 2))


def ranking_pairs(ranking: dict[str, Any]) -> list[tuple[Any, Any]]:
    """Every (better, worse) pair of completions of one group (preference_groups) or rm_rankings row."""
    pairs = ranking["pairs"] if "pairs" in ranking else preference_groups([ranking])[0]["pairs"]
    return [(ranking["completions"][w], ranking["completions"][lo]) for w, lo in pairs]


def as_pairs(rows: list[dict[str, Any]], per_ranking: str = "all", seed: int = 0) -> list[dict[str, Any]]:
    """Preference pairs for DPO: every pair of every ranking ('all'), or one pair drawn per ranking
    ('one', seeded), which gives each ranking the same weight whatever its K."""
    if per_ranking not in {"all", "one"}:
        raise DatasetError(f"pairs per ranking must be 'all' or 'one', got {per_ranking!r}")
    rng = random.Random(seed)
    out = []
    for group in preference_groups(rows):
        pairs = ranking_pairs(group)
        if per_ranking == "one" and pairs:
            pairs = [rng.choice(pairs)]
        out += [{"prompt": group["prompt"], "chosen": w, "rejected": lo} for w, lo in pairs]
    return out


def prompt_id(row: dict[str, Any]) -> Any:
    return row.get("prompt_id", row.get("id"))
