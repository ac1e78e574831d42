import pytest

from training.ml.data import as_pairs, load_rows, ranking_pairs, train_valid
from training.ml.errors import DatasetError


def write(tmp_path, text):
    path = tmp_path / "data.jsonl"
    path.write_text(text)
    return path


def test_a_bad_line_names_its_number_and_field(tmp_path):
    path = write(tmp_path, '{"prompt": "a", "completion": "b"}\n\n{"prompt": "c", "completion": 3}\n')
    with pytest.raises(DatasetError, match=r"line 3: field 'completion' must be a string, got int"):
        load_rows(path)


def test_a_line_that_is_not_json_names_its_number(tmp_path):
    path = write(tmp_path, '{"prompt": "a", "completion": "b"}\n{"prompt": \n')
    with pytest.raises(DatasetError, match=r"line 2: not valid JSON"):
        load_rows(path)


def test_ranks_must_match_completions(tmp_path):
    path = write(tmp_path, '{"prompt": "p", "completions": ["a", "b", "c"], "ranks": [0, 1]}\n')
    with pytest.raises(
        DatasetError, match=r"line 1: field 'ranks' must be a list as long as 'completions' \(3\)"
    ):
        load_rows(path)


def test_an_unknown_split_is_refused(tmp_path):
    path = write(tmp_path, '{"prompt": "p", "split": "dev"}\n')
    with pytest.raises(DatasetError, match=r"line 1: field 'split' must be one of train, valid, test"):
        load_rows(path)


def test_a_stage_refuses_the_wrong_format(tmp_path):
    path = write(tmp_path, '{"prompt": "p", "chosen": "a", "rejected": "b"}\n')
    with pytest.raises(DatasetError, match="holds rm_pairs rows; this stage needs sft"):
        load_rows(path, allowed=("sft",))


def test_valid_rows_come_from_the_valid_split():
    rows = [{"prompt": str(i), "split": s} for i, s in enumerate(["train", "valid", "test", "train"])]
    train, valid = train_valid(rows, 0.5)
    assert [r["prompt"] for r in train] == ["0", "3"] and [r["prompt"] for r in valid] == ["1"]


def test_without_valid_rows_a_deterministic_share_is_held_out():
    rows = [{"prompt": f"prompt {i}", "split": "train"} for i in range(200)]
    train, valid = train_valid(rows, 0.1)
    again = train_valid([dict(r) for r in rows], 0.1)[1]
    assert 5 < len(valid) < 40 and len(train) + len(valid) == 200
    assert [r["prompt"] for r in valid] == [r["prompt"] for r in again]


def test_tied_completions_make_no_pair():
    ranking = {"prompt": "p", "completions": ["a", "b", "c", "d"], "ranks": [1, 0, 1, 2]}
    assert sorted(ranking_pairs(ranking)) == [("a", "d"), ("b", "a"), ("b", "c"), ("b", "d"), ("c", "d")]
    assert len(as_pairs([ranking])) == 5


def test_pairs_of_one_ranking_become_one_element_again():
    """The rm_pairs export writes one line per comparison; the reward model must see a ranking's
    comparisons together, as InstructGPT does, not as C(K,2) separate elements."""
    from training.ml.data import preference_groups

    rows = [
        {"prompt": "p", "chosen": "a", "rejected": "b", "ranking_id": 7, "split": "train"},
        {"prompt": "p", "chosen": "a", "rejected": "c", "ranking_id": 7, "split": "train"},
        {"prompt": "p", "chosen": "b", "rejected": "c", "ranking_id": 7, "split": "train"},
        {"prompt": "p", "chosen": "c", "rejected": "a", "ranking_id": 8, "split": "train"},
        {"prompt": "q", "chosen": "x", "rejected": "y", "split": "train"},  # public data: no ranking known
    ]
    groups = preference_groups(rows)
    assert [g["completions"] for g in groups] == [["a", "b", "c"], ["c", "a"], ["x", "y"]]
    assert groups[0]["pairs"] == [(0, 1), (0, 2), (1, 2)] and groups[1]["pairs"] == [(0, 1)]
    assert ranking_pairs(groups[0]) == [("a", "b"), ("a", "c"), ("b", "c")]


def test_dpo_can_draw_one_pair_per_ranking():
    ranking = {"prompt": "p", "completions": ["a", "b", "c", "d"], "ranks": [0, 1, 2, 3], "split": "train"}
    assert len(as_pairs([ranking])) == 6
    drawn = [as_pairs([ranking], "one", seed=s) for s in range(20)]
    assert all(len(d) == 1 for d in drawn) and len({(d[0]["chosen"], d[0]["rejected"]) for d in drawn}) > 2
