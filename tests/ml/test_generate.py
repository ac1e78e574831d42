import json

from training.ml import run_stage


def test_it_writes_k_completions_per_prompt_and_resumes(sft_model, data_dir, tmp_path):
    config = {
        "model": str(sft_model),
        "dataset": str(data_dir / "prompts.jsonl"),
        "output_dir": str(tmp_path),
        "num_samples": 3,
        "max_new_tokens": 6,
        "batch_size": 3,
        "split": "train",
        "progress_bar": False,
    }
    events = []
    metrics = run_stage("generate", config, progress=events.append, echo=False)
    lines = [json.loads(line) for line in (tmp_path / "completions.jsonl").read_text().splitlines()]
    assert metrics["prompts"] == len(lines) == 7  # the test-split prompt is left out
    assert all(
        len(line["completions"]) == 3 and all(isinstance(c, str) for c in line["completions"])
        for line in lines
    )
    assert lines[0]["prompt"] == "What colour is the dog?" and lines[0]["prompt_id"] == 1
    assert lines[0]["model"] == sft_model.name
    assert [e["step"] for e in events] == [1, 2, 3] and events[-1]["total"] == 3

    again = run_stage("generate", {**config, "model_name": "policy-v2"}, echo=False)
    assert again["prompts"] == 7
    assert len((tmp_path / "completions.jsonl").read_text().splitlines()) == 7  # nothing sampled twice


def test_a_line_cut_short_by_a_kill_is_sampled_again(sft_model, data_dir, tmp_path):
    config = {
        "model": str(sft_model),
        "dataset": str(data_dir / "prompts.jsonl"),
        "output_dir": str(tmp_path),
        "num_samples": 2,
        "max_new_tokens": 4,
        "batch_size": 2,
        "progress_bar": False,
    }
    run_stage("generate", {**config, "dataset": str(data_dir / "prompts.jsonl")}, echo=False)
    path = tmp_path / "completions.jsonl"
    whole = path.read_text().splitlines(keepends=True)
    path.write_text("".join(whole[:3]) + whole[3][:20])  # killed while writing the fourth line
    metrics = run_stage("generate", config, echo=False)
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert metrics["prompts"] == len(lines) == len(whole)
    assert [line["prompt"] for line in lines] == [json.loads(line)["prompt"] for line in whole]
