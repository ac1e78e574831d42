"""Read a dataset source, check every row, and hand the stages rows in one shape.

Sources: our own JSONL exports; a .parquet file; a folder written by `datasets`' save_to_disk (a Dataset or
a DatasetDict); a Hugging Face hub dataset "owner/name" or "owner/name:config" when no such local path exists.

Formats (each row may carry ids and "split": "train" | "valid" | "test"):
    sft          {"prompt", "completion"}
    rm_pairs     {"prompt", "chosen", "rejected"}
    rm_rankings  {"prompt", "completions": [...], "ranks": [...]}   best rank 0, ties share a rank
    prompts      {"prompt"}
    text         {"text"}
Public shapes (messages, implicit prompts, UltraFeedback) become one of these formats: see rows.py.
Errors name the line of a JSONL file, or the split and row elsewhere (rows and messages count from 0).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from training.ml.errors import DatasetError
from training.ml.rows import ROLES, RowError, normalize_row

__all__ = ["FORMATS", "ROLES", "SPLITS", "detect_format", "load_rows", "read_jsonl"]

SPLITS = ("train", "valid", "test")
FORMATS = ("sft", "rm_pairs", "rm_rankings", "prompts", "text")
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+(:[\w.-]+)?")
_FILE_SUFFIXES = (".jsonl", ".json", ".parquet", ".arrow", ".csv", ".txt", ".gz")
_OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")


@dataclass
class _Part:
    """Rows from one place: a whole file, or one named split of a DatasetDict or hub dataset."""

    origin: str  # the path or hub id, as the user gave it
    unit: str  # "line" (JSONL) or "row"
    numbered: list[tuple[int, dict[str, Any]]]
    name: str = ""  # the container's split name; "" when the rows carry their own "split"
    split: str = ""  # train / valid / test that `name` maps to

    def where(self, number: int) -> str:
        split = f"split {self.name}: " if self.name else ""
        return f"{self.origin}: {split}{self.unit} {number}"


def load_rows(
    source: str | Path, fmt: str = "auto", allowed: tuple[str, ...] | None = None, splits: str = ""
) -> list[dict[str, Any]]:
    """Every row of `source` in one of our formats ('auto' detects it), each with a train/valid/test "split".

    `splits` picks and maps split names: "" takes them all; "train_prefs,test_prefs" only these, mapped by
    name (train* -> train; valid*, dev*, eval*, test* -> valid); "train_prefs=train,test_prefs=valid" says how.
    """
    parts = _read(source, splits)
    fmt = _format_of(source, parts, fmt, allowed)
    rows = [row for part in parts for row in _normalized(part, fmt)]
    if splits.strip() and not any(part.name for part in parts):
        rows = _pick_own_splits(str(source), rows, splits)
    return rows


def detect_format(row: dict[str, Any]) -> str:
    if "completions" in row:
        return "rm_rankings"
    if "chosen" in row:
        return "rm_pairs"
    if "completion" in row or "messages" in row:
        return "sft"
    if "prompt" in row:
        return "prompts"
    if "text" in row:
        return "text"
    raise DatasetError(
        "cannot tell the dataset format: the first row has none of prompt, completion, chosen, completions, "
        "messages, text"
    )


def _format_of(source: str | Path, parts: list[_Part], fmt: str, allowed: tuple[str, ...] | None) -> str:
    """The format to check every row against; named splits that hold different formats are refused."""
    firsts = [(part, part.numbered[0][1]) for part in parts if part.numbered]
    if not firsts:
        raise DatasetError(f"dataset {source} has no rows")
    if fmt == "auto":
        fmt = detect_format(firsts[0][1])
        for part, row in firsts[1:]:
            if detect_format(row) != fmt:
                same = ",".join(p.name for p, r in firsts if detect_format(r) == fmt)
                raise DatasetError(
                    f"{source}: split {firsts[0][0].name} holds {fmt} rows but split {part.name} holds "
                    f"{detect_format(row)} rows; choose splits of one format, e.g. splits='{same}'"
                )
    if fmt not in FORMATS:
        raise DatasetError(f"unknown dataset format {fmt!r}; use one of {', '.join(FORMATS)}")
    if allowed is not None and fmt not in allowed:
        raise DatasetError(f"{source} holds {fmt} rows; this stage needs {' or '.join(allowed)}")
    return fmt


def _normalized(part: _Part, fmt: str) -> list[dict[str, Any]]:
    rows = []
    for number, row in part.numbered:
        try:
            row = normalize_row(row, fmt)
            row["split"] = part.split or _own_split(row)
        except RowError as exc:
            raise DatasetError(f"{part.where(number)}: {exc}") from None
        rows.append(row)
    return rows


def _own_split(row: dict[str, Any]) -> str:
    """A row without a split is for training; Arrow fills a column's missing values with None."""
    split = row.get("split")
    if split is None:
        return "train"
    if split not in SPLITS:
        raise RowError(f"field 'split' must be one of {', '.join(SPLITS)}, got {split!r}")
    return split


# Reading sources ------------------------------------------------------------------------------------------


def _read(source: str | Path, splits: str) -> list[_Part]:
    """`datasets` and pyarrow take seconds to import, so they load only for a source that needs them."""
    path = Path(source)
    if path.is_dir():
        return _read_saved(path, splits)
    if path.is_file() and path.suffix == ".parquet":
        return [_Part(str(path), "row", list(enumerate(_read_parquet(path))))]
    if path.is_file() or not _looks_like_hub_id(str(source)):
        return [_Part(str(path), "line", read_jsonl(path))]
    return _read_hub(str(source), splits)


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


def _read_parquet(path: Path) -> list[dict[str, Any]]:
    import pyarrow
    import pyarrow.parquet

    try:
        return pyarrow.parquet.read_table(path).to_pylist()
    except pyarrow.ArrowException as exc:
        raise DatasetError(f"{path} is not a readable parquet file ({exc})") from exc


def _read_saved(folder: Path, splits: str) -> list[_Part]:
    if not (folder / "dataset_dict.json").is_file() and not (folder / "state.json").is_file():
        raise DatasetError(
            f"{folder} is a folder but not one written by datasets' save_to_disk "
            "(it has no dataset_dict.json or state.json)"
        )
    import datasets

    return _parts(str(folder), datasets.load_from_disk(str(folder)), splits)


def _looks_like_hub_id(source: str) -> bool:
    return bool(_HUB_ID.fullmatch(source)) and not source.lower().endswith(_FILE_SUFFIXES)


def _read_hub(source: str, splits: str) -> list[_Part]:
    import datasets

    repo, _, config = source.partition(":")
    try:
        with _offline_as_the_environment_says():
            loaded = datasets.load_dataset(repo, config or None)
    except Exception as exc:  # network, authentication, a missing config: the user must act on each alike
        raise DatasetError(
            f"{source} does not exist locally, and the hub dataset {repo} could not be fetched: {_why(exc)}"
        ) from exc
    return _parts(source, loaded, splits)


def _offline() -> bool:
    return any(os.environ.get(name, "").upper() in ("1", "ON", "YES", "TRUE") for name in _OFFLINE_VARIABLES)


@contextlib.contextmanager
def _offline_as_the_environment_says() -> Iterator[None]:
    """`datasets` and huggingface_hub read the offline variables once, when imported; a variable set since
    (by a researcher's shell hook or a test) would otherwise be ignored, and load_dataset would retry the
    network for half a minute. The cache still serves the datasets it holds."""
    if not _offline():
        yield
        return
    import datasets.config
    import huggingface_hub.constants as hub

    saved = datasets.config.HF_HUB_OFFLINE, hub.HF_HUB_OFFLINE
    datasets.config.HF_HUB_OFFLINE = hub.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        datasets.config.HF_HUB_OFFLINE, hub.HF_HUB_OFFLINE = saved


def _why(exc: Exception) -> str:
    if _offline() and isinstance(exc, ConnectionError):
        names = ", ".join(f"{name}={os.environ[name]}" for name in _OFFLINE_VARIABLES if name in os.environ)
        return f"offline mode is on ({names}) and the local Hugging Face cache does not hold it"
    if isinstance(exc, ConnectionError):
        return f"the hub cannot be reached ({exc})"
    return f"{type(exc).__name__}: {exc}"


def _parts(origin: str, loaded: Any, splits: str) -> list[_Part]:
    """One part for a Dataset; one per chosen split for a DatasetDict (a dict of split name -> Dataset)."""
    if not isinstance(loaded, dict):
        return [_Part(origin, "row", list(enumerate(loaded.to_list())))]
    chosen = _split_map(origin, list(loaded), splits, lambda name: _default_split(origin, name))
    return [
        _Part(origin, "row", list(enumerate(loaded[name].to_list())), name, split)
        for name, split in chosen.items()
    ]


# Splits ---------------------------------------------------------------------------------------------------


def _default_split(origin: str, name: str) -> str:
    """A hub "test" set is what TRL's scripts evaluate on, so it maps to valid; our own "test" split (held
    out from all training) only exists in our exports, which carry a split column."""
    if name.lower().startswith("train"):
        return "train"
    if name.lower().startswith(("valid", "dev", "eval", "test")):
        return "valid"
    raise DatasetError(
        f"{origin}: cannot tell whether split {name!r} is for training or evaluation; "
        f"say which with splits='{name}=train' (or valid, test)"
    )


def _split_map(origin: str, available: list[str], spec: str, default: Callable[[str], str]) -> dict[str, str]:
    """{split name: train/valid/test} for the splits `spec` picks out of `available` (all when it is empty)."""
    if not spec.strip():
        return {name: default(name) for name in available}
    chosen = {}
    for item in filter(str.strip, spec.split(",")):
        name, _, target = (text.strip() for text in item.partition("="))
        if name not in available:
            raise DatasetError(f"{origin} has no split {name!r}; its splits are {', '.join(available)}")
        chosen[name] = target or default(name)
        if chosen[name] not in SPLITS:
            raise DatasetError(f"splits={spec!r}: map {name!r} to train, valid or test, not {target!r}")
    return chosen


def _pick_own_splits(origin: str, rows: list[dict[str, Any]], spec: str) -> list[dict[str, Any]]:
    """For rows that carry their own split: keep those `spec` names, renamed as it says."""
    present = sorted({row["split"] for row in rows}, key=SPLITS.index)
    chosen = _split_map(origin, present, spec, lambda name: name)
    picked = [row for row in rows if row["split"] in chosen]
    for row in picked:
        row["split"] = chosen[row["split"]]
    return picked
