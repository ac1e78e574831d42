"""Small samples shaped like the public datasets people train on, written the way those are published."""

from __future__ import annotations

import json
from pathlib import Path


def user(text: str) -> dict:
    return {"role": "user", "content": text}


def assistant(text: str) -> dict:
    return {"role": "assistant", "content": text}


def hh_rlhf_rows() -> list[dict]:
    """Anthropic/hh-rlhf: only "chosen" and "rejected", each a whole transcript; the answers share "I "."""
    return [
        {
            "chosen": "\n\nHuman: Is the sky blue?\n\nAssistant: I think so, on a clear day.",
            "rejected": "\n\nHuman: Is the sky blue?\n\nAssistant: I don't know.",
        },
        {
            "chosen": "\n\nHuman: Name a colour.\n\nAssistant: Red.\n\nHuman: Another one?\n\nAssistant: Blue.",
            "rejected": "\n\nHuman: Name a colour.\n\nAssistant: Red.\n\nHuman: Another one?\n\nAssistant: No.",
        },
    ]


def ultrafeedback_prefs_row(i: int) -> dict:
    """HuggingFaceH4/ultrafeedback_binarized *_prefs: a string prompt that the conversations repeat."""
    question = f"What is {i} + {i}?"
    chosen = [user(question), assistant(f"It is {2 * i}.")]
    return {
        "prompt": question,
        "prompt_id": f"p{i}",
        "chosen": chosen,
        "rejected": [user(question), assistant("No idea.")],
        "messages": chosen,
        "score_chosen": 9.0,
        "score_rejected": 2.0,
    }


def ultrafeedback_sft_row(i: int) -> dict:
    """HuggingFaceH4/ultrafeedback_binarized *_sft: the chosen conversation as "messages"."""
    question = f"What is {i} + {i}?"
    return {
        "prompt": question,
        "prompt_id": f"p{i}",
        "messages": [user(question), assistant(f"It is {2 * i}.")],
    }


def ultrafeedback_splits() -> dict[str, list[dict]]:
    return {
        "train_prefs": [ultrafeedback_prefs_row(i) for i in range(3)],
        "test_prefs": [ultrafeedback_prefs_row(i) for i in range(3, 5)],
        "train_sft": [ultrafeedback_sft_row(i) for i in range(3)],
        "test_sft": [ultrafeedback_sft_row(i) for i in range(3, 5)],
    }


def ultrachat_rows() -> list[dict]:
    """HuggingFaceH4/ultrachat_200k: multi-turn "messages", the last answer is the one to learn."""
    return [
        {
            "prompt": "Name a colour.",
            "prompt_id": "u0",
            "messages": [user("Name a colour."), assistant("Red."), user("Another one?"), assistant("Blue.")],
        },
        {
            "prompt": "Say hi.",
            "prompt_id": "u1",
            "messages": [{"role": "system", "content": "Be brief."}, user("Say hi."), assistant("Hi.")],
        },
    ]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def write_parquet(path: Path, rows: list[dict]) -> Path:
    import pyarrow
    import pyarrow.parquet

    pyarrow.parquet.write_table(pyarrow.Table.from_pylist(rows), path)
    return path


def save_dataset(folder: Path, rows: list[dict]) -> Path:
    import datasets

    datasets.Dataset.from_list(rows).save_to_disk(str(folder))
    return folder


def save_dataset_dict(folder: Path, splits: dict[str, list[dict]]) -> Path:
    import datasets

    datasets.DatasetDict(
        {name: datasets.Dataset.from_list(rows) for name, rows in splits.items()}
    ).save_to_disk(str(folder))
    return folder
