"""What a stage's launch starts, whichever launcher starts it (training.services.launch.launch_plan): the
accelerate config, the nodes, the processes and GPUs on each. Both launchers choose through it."""

import pytest
from django.core.exceptions import ImproperlyConfigured

from training.ml.launch import LAUNCH_CONFIGS
from training.models import TrainingRun
from training.services.launch import AccelerateLaunch, LaunchPlan, launch_plan
from training.services.slurm import SlurmLaunch


def never() -> tuple[int, int]:
    raise AssertionError("asked for every GPU where the config does not run on every GPU")


@pytest.mark.parametrize(
    ("config", "stage", "expected"),
    [
        ("zero3", "generate", ("single-gpu", 1, 1, 1)),  # not rank-aware: one process, on one GPU
        ("cpu-ddp-2", "tiny", ("cpu-ddp-2", 1, 1, 0)),  # ... on a CPU where the config runs on CPUs
        ("cpu-ddp-2", "sft", ("cpu-ddp-2", 1, 2, 0)),  # the process count its file names, no GPU
        ("single-gpu", "ppo", ("single-gpu", 1, 1, 1)),
    ],
)
def test_a_config_with_its_own_process_count_or_a_single_process_stage(config, stage, expected):
    plan = launch_plan(LAUNCH_CONFIGS[config], stage, never)
    assert (plan.config.name, plan.nodes, plan.processes_per_node, plan.gpus_per_node) == expected


@pytest.mark.parametrize("config", ["ddp", "fsdp2", "zero2", "zero3-offload"])
def test_a_config_on_every_gpu_starts_one_process_per_gpu_on_every_node(config):
    plan = launch_plan(LAUNCH_CONFIGS[config], "rm", lambda: (3, 4))
    assert plan == LaunchPlan(LAUNCH_CONFIGS[config], nodes=3, processes_per_node=4, gpus_per_node=4)
    assert plan.processes == 12


def run_on(config: str, tmp_path) -> TrainingRun:
    return TrainingRun(pk=7, kind="dpo", launch_config=config, config={"output_dir": str(tmp_path)})


def test_accelerate_on_a_worker_without_gpus_refuses_a_config_on_every_gpu(tmp_path):
    launch = AccelerateLaunch(
        run=run_on("zero2", tmp_path), stage_kind="dpo", stage_config={"output_dir": str(tmp_path)}
    )
    with pytest.raises(ImproperlyConfigured, match="'zero2' runs on every GPU, but this worker sees none"):
        launch.plan  # noqa: B018 (the plan is chosen when asked for)
    cpu = AccelerateLaunch(
        run=run_on("cpu-ddp-2", tmp_path), stage_kind="dpo", stage_config={"output_dir": str(tmp_path)}
    )
    assert cpu.plan.processes == 2


def test_slurm_takes_nodes_and_gpus_from_its_settings_and_refuses_none(tmp_path, settings):
    settings.TRAINING_SLURM_NODES, settings.TRAINING_SLURM_GPUS_PER_NODE = 2, 8
    launch = SlurmLaunch(
        run=run_on("fsdp2", tmp_path), stage_kind="sft", stage_config={"output_dir": str(tmp_path)}
    )
    assert (launch.plan.nodes, launch.plan.processes_per_node, launch.plan.processes) == (2, 8, 16)
    assert "2 node(s) x 8 process(es), 8 GPU(s) per node" in launch.describe()
    settings.TRAINING_SLURM_GPUS_PER_NODE = 0
    refused = SlurmLaunch(
        run=run_on("fsdp2", tmp_path), stage_kind="sft", stage_config={"output_dir": str(tmp_path)}
    )
    with pytest.raises(ImproperlyConfigured, match="TRAINING_SLURM_GPUS_PER_NODE must be at least 1"):
        refused.plan  # noqa: B018


def test_a_launch_left_running_by_a_failed_test_is_killed_at_its_teardown(tmp_path):
    """The `media` fixture's teardown: what a failed launch test leaves running does not train on."""
    import subprocess
    import sys
    import time

    import psutil

    from .conftest import kill_left_running

    stage = tmp_path / "media" / "runs" / "1" / "launch-run-1" / "stage.yaml"
    other = tmp_path / "elsewhere" / "stage.yaml"
    code = "import time; time.sleep(120)"
    left, unrelated = (
        subprocess.Popen([sys.executable, "-c", code, "--config", str(path)]) for path in (stage, other)
    )
    try:
        for _ in range(100):  # until both have started python (before, they are a fork of this one)
            if all(
                str(path) in psutil.Process(p.pid).cmdline()
                for p, path in ((left, stage), (unrelated, other))
            ):
                break
            time.sleep(0.05)
        assert kill_left_running(tmp_path / "media") == [left.pid]
        assert not psutil.pid_exists(left.pid)  # killed and reaped (by psutil.wait_procs)
        assert unrelated.poll() is None
    finally:
        left.kill()
        unrelated.kill()
        unrelated.wait()
