import subprocess
import sys
from pathlib import Path

import pytest

from tests.ml.public_formats import (
    assistant,
    hh_rlhf_rows,
    save_dataset,
    save_dataset_dict,
    ultrachat_rows,
    ultrafeedback_splits,
    user,
    write_jsonl,
    write_parquet,
)
from training.ml.errors import DatasetError
from training.ml.sources import detect_format, load_rows

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def ultrafeedback(tmp_path_factory) -> Path:
    return save_dataset_dict(tmp_path_factory.mktemp("ultrafeedback"), ultrafeedback_splits())


# Our own exports


def test_our_jsonl_rows_keep_their_ids_and_split(tmp_path):
    path = write_jsonl(
        tmp_path / "sft.jsonl",
        [
            {"id": 7, "prompt": "p", "completion": "c", "split": "test"},
            {"id": 8, "prompt": "q", "completion": "d"},
        ],
    )
    assert load_rows(path) == [
        {"id": 7, "prompt": "p", "completion": "c", "split": "test"},
        {"id": 8, "prompt": "q", "completion": "d", "split": "train"},
    ]


def test_rows_that_carry_their_own_split_can_be_picked_and_renamed(tmp_path):
    rows = [{"prompt": s, "split": s} for s in ("train", "valid", "test")]
    path = write_jsonl(tmp_path / "prompts.jsonl", rows)
    picked = load_rows(path, splits="train,test=valid")
    assert [(r["prompt"], r["split"]) for r in picked] == [("train", "train"), ("test", "valid")]


def test_reading_a_jsonl_export_imports_neither_datasets_nor_pyarrow(tmp_path):
    path = write_jsonl(tmp_path / "pairs.jsonl", [{"prompt": "p", "chosen": "a", "rejected": "b"}])
    script = (
        "import sys; from training.ml.sources import load_rows; load_rows(sys.argv[1]); "
        "print(sorted(m for m in ('datasets', 'pyarrow') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", script, str(path)], cwd=REPO, capture_output=True, text=True)
    assert out.stdout.strip() == "[]", out.stderr[-2000:]


# Public shapes


def test_hh_rlhf_answers_start_after_the_last_assistant_tag(tmp_path):
    """TRL's character prefix would end the first prompt in "Assistant: I", cutting the answers' shared word."""
    first, multi_turn = load_rows(write_jsonl(tmp_path / "hh.jsonl", hh_rlhf_rows()), allowed=("rm_pairs",))
    assert first["prompt"] == "\n\nHuman: Is the sky blue?\n\nAssistant:"
    assert (first["chosen"], first["rejected"]) == (" I think so, on a clear day.", " I don't know.")
    assert multi_turn["prompt"].endswith("Red.\n\nHuman: Another one?\n\nAssistant:")
    assert (multi_turn["chosen"], multi_turn["rejected"], multi_turn["split"]) == (" Blue.", " No.", "train")


def test_untagged_texts_share_a_prompt_as_in_trl(tmp_path):
    path = write_jsonl(
        tmp_path / "pairs.jsonl", [{"chosen": "The sky is blue.", "rejected": "The sky is green."}]
    )
    [row] = load_rows(path)
    assert (row["prompt"], row["chosen"], row["rejected"]) == ("The sky is", " blue.", " green.")


def test_conversations_without_a_prompt_share_whole_messages(tmp_path):
    """The answers share "It is "; only whole messages go to the prompt."""
    chosen = [user("Colour?"), assistant("Red."), user("Sky?"), assistant("It is blue.")]
    rejected = [user("Colour?"), assistant("Red."), user("Sky?"), assistant("It is green.")]
    [row] = load_rows(write_jsonl(tmp_path / "pairs.jsonl", [{"chosen": chosen, "rejected": rejected}]))
    assert row["prompt"] == chosen[:3]
    assert (row["chosen"], row["rejected"]) == ([chosen[3]], [rejected[3]])


def test_ultrafeedback_prefs_take_the_prompt_from_the_conversations(ultrafeedback):
    rows = load_rows(ultrafeedback, allowed=("rm_pairs",), splits="train_prefs,test_prefs")
    assert [r["split"] for r in rows] == ["train", "train", "train", "valid", "valid"]
    row = rows[1]
    assert row["prompt"] == [user("What is 1 + 1?")]
    assert (row["chosen"], row["rejected"]) == ([assistant("It is 2.")], [assistant("No idea.")])
    assert (row["prompt_id"], row["score_chosen"], row["score_rejected"]) == ("p1", 9.0, 2.0)


def test_ultrafeedback_sft_splits_become_conversational_demonstrations(ultrafeedback):
    rows = load_rows(ultrafeedback, allowed=("sft",), splits="train_sft,test_sft")
    assert len(rows) == 5 and [r["split"] for r in rows].count("valid") == 2
    assert rows[0]["prompt"] == [user("What is 0 + 0?")] and rows[0]["completion"] == [assistant("It is 0.")]
    assert rows[0]["prompt_id"] == "p0" and "messages" not in rows[0]


def test_ultrachat_messages_learn_the_last_assistant_turn(tmp_path):
    rows = load_rows(write_parquet(tmp_path / "ultrachat.parquet", ultrachat_rows()))
    assert rows[0]["prompt"] == [user("Name a colour."), assistant("Red."), user("Another one?")]
    assert rows[0]["completion"] == [assistant("Blue.")] and rows[0]["prompt_id"] == "u0"
    assert rows[1]["prompt"] == [{"role": "system", "content": "Be brief."}, user("Say hi.")]
    assert {r["split"] for r in rows} == {"train"}


def test_formats_are_detected_from_the_first_row():
    assert detect_format({"prompt": "p", "messages": [], "chosen": [], "rejected": []}) == "rm_pairs"
    assert detect_format({"prompt": "p", "messages": []}) == "sft"
    assert detect_format({"messages": []}) == "sft"
    assert detect_format({"prompt": "p", "completions": [], "ranks": []}) == "rm_rankings"
    assert detect_format({"text": "t"}) == "text"


def test_a_stage_refuses_a_public_dataset_of_another_format(tmp_path):
    with pytest.raises(DatasetError, match="hh.jsonl holds rm_pairs rows; this stage needs sft"):
        load_rows(write_jsonl(tmp_path / "hh.jsonl", hh_rlhf_rows()), allowed=("sft",))


# Strings next to conversations


def test_a_string_completion_beside_a_conversational_prompt_becomes_an_assistant_turn(tmp_path):
    path = write_jsonl(tmp_path / "sft.jsonl", [{"prompt": [user("Hi?")], "completion": "Hello."}])
    [row] = load_rows(path)
    assert row["prompt"] == [user("Hi?")] and row["completion"] == [assistant("Hello.")]


def test_a_string_prompt_beside_conversational_completions_becomes_a_user_turn(tmp_path):
    ranking = {"prompt": "Hi?", "completions": ["Hello.", [assistant("Hey.")]], "ranks": [1, 0]}
    [row] = load_rows(write_jsonl(tmp_path / "rankings.jsonl", [ranking]))
    assert row["prompt"] == [user("Hi?")]
    assert row["completions"] == [[assistant("Hello.")], [assistant("Hey.")]]


def test_a_string_prompt_beside_assistant_only_answers_is_the_user_turn(tmp_path):
    pair = {"prompt": "Hi?", "chosen": [assistant("Hello.")], "rejected": "Go away."}
    [row] = load_rows(write_jsonl(tmp_path / "pairs.jsonl", [pair]))
    assert row["prompt"] == [user("Hi?")]
    assert (row["chosen"], row["rejected"]) == ([assistant("Hello.")], [assistant("Go away.")])


# Splits of containers


def test_splits_can_be_mapped_explicitly(ultrafeedback):
    rows = load_rows(ultrafeedback, splits="train_prefs=train, test_prefs=test")
    assert [r["split"] for r in rows] == ["train"] * 3 + ["test"] * 2


def test_an_unknown_split_name_lists_the_available_ones(ultrafeedback):
    with pytest.raises(
        DatasetError, match="has no split 'train'; its splits are train_prefs, test_prefs, train_sft"
    ):
        load_rows(ultrafeedback, splits="train")


def test_a_split_must_map_to_train_valid_or_test(ultrafeedback):
    with pytest.raises(DatasetError, match="map 'test_prefs' to train, valid or test, not 'dev'"):
        load_rows(ultrafeedback, splits="test_prefs=dev")


def test_splits_of_different_formats_must_be_chosen(ultrafeedback):
    with pytest.raises(DatasetError, match="split train_sft holds sft rows; choose splits of one format"):
        load_rows(ultrafeedback)


def test_a_split_named_neither_train_nor_test_needs_a_mapping(tmp_path):
    folder = save_dataset_dict(tmp_path / "imdb", {"train": [{"text": "a"}], "unsupervised": [{"text": "b"}]})
    with pytest.raises(DatasetError, match="split 'unsupervised' is for training or evaluation"):
        load_rows(folder)
    assert [r["split"] for r in load_rows(folder, splits="train,unsupervised=train")] == ["train", "train"]


def test_a_dataset_without_splits_is_train_unless_rows_say_otherwise(tmp_path):
    plain = save_dataset(tmp_path / "saved", [{"prompt": "a"}, {"prompt": "b"}])
    labelled = write_parquet(tmp_path / "data.parquet", [{"prompt": "a", "split": "valid"}, {"prompt": "b"}])
    assert [r["split"] for r in load_rows(plain)] == ["train", "train"]
    assert [r["split"] for r in load_rows(labelled)] == ["valid", "train"]


# Errors


def test_a_parquet_error_names_the_row_and_field(tmp_path):
    rows = [
        ultrafeedback_splits()["train_prefs"][0],
        {"prompt": "p", "chosen": [user("q"), {"role": "assistant"}]},
    ]
    path = write_parquet(tmp_path / "data.parquet", rows)
    with pytest.raises(
        DatasetError, match=r"data.parquet: row 1: field 'chosen': message 1 has no 'content' string"
    ):
        load_rows(path)


def test_a_split_error_names_the_split_and_row(tmp_path):
    splits = {"train": [ultrachat_rows()[0], {"messages": [user("Hello?")]}]}
    folder = save_dataset_dict(tmp_path / "chat", splits)
    with pytest.raises(
        DatasetError, match=r"chat: split train: row 1: field 'messages' has no assistant message"
    ):
        load_rows(folder)


def test_a_message_with_an_unknown_role_is_refused(tmp_path):
    path = write_jsonl(
        tmp_path / "sft.jsonl", [{"prompt": [{"role": "human", "content": "Hi"}], "completion": "x"}]
    )
    with pytest.raises(
        DatasetError, match=r"line 1: field 'prompt': message 0 has role 'human'; use system, user"
    ):
        load_rows(path)


def test_a_field_that_is_neither_text_nor_messages_is_refused(tmp_path):
    path = write_jsonl(
        tmp_path / "rankings.jsonl", [{"prompt": "p", "completions": ["a", 3], "ranks": [0, 1]}]
    )
    with pytest.raises(DatasetError, match=r"line 1: field 'completions\[1\]' must be a string, got int"):
        load_rows(path)


def test_answers_that_start_differently_hold_no_prompt(tmp_path):
    path = write_jsonl(tmp_path / "pairs.jsonl", [{"chosen": [user("a")], "rejected": [user("b")]}])
    with pytest.raises(DatasetError, match="line 1: fields 'chosen' and 'rejected' start differently"):
        load_rows(path)


def test_a_file_that_is_not_parquet_is_refused(tmp_path):
    path = tmp_path / "data.parquet"
    path.write_text('{"prompt": "p"}\n')
    with pytest.raises(DatasetError, match="data.parquet is not a readable parquet file"):
        load_rows(path)


def test_a_folder_not_saved_by_datasets_is_refused(tmp_path):
    with pytest.raises(DatasetError, match="not one written by datasets' save_to_disk"):
        load_rows(tmp_path)


def test_a_missing_local_file_never_reaches_the_hub(tmp_path, monkeypatch):
    import datasets

    monkeypatch.setattr(datasets, "load_dataset", lambda *a, **k: pytest.fail("load_dataset was called"))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DatasetError, match="dataset file exports/sft.jsonl does not exist"):
        load_rows("exports/sft.jsonl")


def test_a_hub_dataset_is_read_with_its_config_and_splits(monkeypatch):
    import datasets

    asked = []

    def load_dataset(repo, config):
        asked.append((repo, config))
        return datasets.DatasetDict(
            {"train": datasets.Dataset.from_list([{"prompt": "p", "completion": "c"}])}
        )

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    assert load_rows("someone/chat:default")[0]["split"] == "train"
    assert asked == [("someone/chat", "default")]


def test_a_hub_id_offline_says_why_it_cannot_be_fetched(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DatasetError) as caught:
        load_rows("loopwork-tests/no-such-dataset")
    message = str(caught.value)
    assert message.startswith("loopwork-tests/no-such-dataset does not exist locally")
    assert "could not be fetched: offline mode is on (HF_HUB_OFFLINE=1, HF_DATASETS_OFFLINE=1)" in message
