"""The shipped accelerate configs (training/ml/launch/) load with accelerate's own loader, and accelerate's
launcher accepts them: the launch checks pass and the DeepSpeed and FSDP plugins build from what the
launcher hands its processes. DeepSpeed cannot run on this CPU (and is not installed), so this is as far
as its configs are checked here; bench/gpu.sh runs them on a GPU.
"""

from __future__ import annotations

import os
from unittest import mock

import pytest
from accelerate.commands.config.config_args import ClusterConfig, load_config_from_file
from accelerate.commands.launch import _validate_launch_command, launch_command_parser
from accelerate.utils import DeepSpeedPlugin, DistributedType, FullyShardedDataParallelPlugin
from accelerate.utils.launch import prepare_deepspeed_cmd_env, prepare_multi_gpu_env

from training.ml.errors import ConfigError
from training.ml.launch import FOLDER, LAUNCH_CONFIGS, describe_launch_configs, launch_config

ZERO = {"zero2": (2, "none", "none"), "zero2-offload": (2, "cpu", "none"), "zero3": (3, "none", "none")}
ZERO["zero3-offload"] = (3, "cpu", "cpu")


def launch_args(name: str, processes: int = 2):
    """What `accelerate launch --config_file <name> --num_processes N -m training.ml sft` decides."""
    parser = launch_command_parser()
    argv = ["--config_file", str(launch_config(name).path), "--num_processes", str(processes)]
    args, defaults, _ = _validate_launch_command(parser.parse_args([*argv, "-m", "training.ml", "sft"]))
    return args, defaults


def test_every_file_is_in_the_registry_and_every_name_has_its_file():
    assert sorted(p.stem for p in FOLDER.glob("*.yaml")) == sorted(LAUNCH_CONFIGS)
    assert {
        "single-gpu",
        "ddp",
        "fsdp2",
        "zero2",
        "zero2-offload",
        "zero3",
        "zero3-offload",
        "cpu-ddp-2",
    } == set(LAUNCH_CONFIGS)
    assert all(name in describe_launch_configs() for name in LAUNCH_CONFIGS)


@pytest.mark.parametrize("name", sorted(LAUNCH_CONFIGS))
def test_accelerate_loads_each_config(name):
    config = load_config_from_file(str(launch_config(name).path))
    assert isinstance(config, ClusterConfig)  # unknown keys would have raised
    assert config.num_machines == 1 and not config.use_cpu


def test_an_unknown_name_is_refused_with_the_choices():
    with pytest.raises(ConfigError, match="zero3-offload"):
        launch_config("../configs/instructgpt-rm")


@pytest.mark.parametrize("name", sorted(ZERO))
def test_deepspeed_configs_are_accepted_by_the_launcher_and_build_the_plugin(name):
    stage, offload_optimizer, offload_params = ZERO[name]
    args, defaults = launch_args(name, processes=8)
    assert args.use_deepspeed and defaults.distributed_type == DistributedType.DEEPSPEED
    args.deepspeed_fields_from_accelerate_config = ",".join(
        defaults.deepspeed_config
    )  # as launch_command does
    _, env = prepare_deepspeed_cmd_env(args)
    with mock.patch.dict(os.environ, env):
        plugin = DeepSpeedPlugin()  # what each process builds from the launcher's environment
    zero = plugin.deepspeed_config["zero_optimization"]
    assert zero["stage"] == stage
    assert zero["offload_optimizer"]["device"] == offload_optimizer
    assert zero["offload_param"]["device"] == offload_params
    if stage == 3:
        assert plugin.zero3_init_flag and zero["stage3_gather_16bit_weights_on_model_save"]
    assert env["ACCELERATE_MIXED_PRECISION"] == "bf16"


def test_the_fsdp2_config_is_accepted_by_the_launcher_and_builds_an_fsdp2_plugin():
    args, defaults = launch_args("fsdp2", processes=8)
    assert args.use_fsdp and defaults.distributed_type == DistributedType.FSDP
    env = prepare_multi_gpu_env(args)
    with mock.patch.dict(os.environ, env):
        plugin = FullyShardedDataParallelPlugin()
    assert plugin.fsdp_version == 2
    assert plugin.reshard_after_forward is True  # weights sharded between uses (ZeRO-3's layout)
    assert plugin.cpu_ram_efficient_loading  # rank 0 reads the checkpoint, the others get shards
    assert plugin.auto_wrap_policy is not None  # one shard unit per transformer block


@pytest.mark.parametrize("name", ["ddp", "cpu-ddp-2"])
def test_ddp_configs_start_one_process_each(name):
    args, _ = launch_args(name)
    assert args.multi_gpu and args.num_processes == 2 and not args.use_fsdp and not args.use_deepspeed


def test_the_cpu_config_is_marked_for_cpus_and_the_gpu_ones_for_every_gpu():
    assert [c.name for c in LAUNCH_CONFIGS.values() if c.cpu] == ["cpu-ddp-2"]
    assert {c.name for c in LAUNCH_CONFIGS.values() if not c.every_gpu} == {"single-gpu", "cpu-ddp-2"}
    args, _ = launch_args("single-gpu", processes=1)
    assert not (args.multi_gpu or args.use_fsdp or args.use_deepspeed)
