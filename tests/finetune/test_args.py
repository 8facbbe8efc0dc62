from __future__ import annotations

from pathlib import Path

import pytest

from medsyn.config import parse_args
from medsyn.errors import ConfigError
from medsyn.finetune.args import FINETUNE_ARGS, InstructionDataArgs, ModelArguments, TrainArguments

RECIPES = Path(__file__).resolve().parents[2] / "recipes"


def test_gemma_recipe_parses_with_overrides():
    model, data, train = parse_args(
        FINETUNE_ARGS, ["--config", str(RECIPES / "gemma-270m/finetune.yaml"), "--max_steps", "3", "--lora_r", "4"]
    )
    assert model.model_name_or_path == "gemma-3-270m" and model.lora_r == 4
    assert model.lora_target_modules == ["q_proj", "k_proj", "v_proj", "o_proj"]
    assert data.max_seq_length <= 256 and train.max_steps == 3 and train.num_threads == 1
    _, _, resumed = parse_args(
        FINETUNE_ARGS, ["--config", str(RECIPES / "gemma-270m/finetune.yaml"), "--resume_from_checkpoint", "auto"]
    )
    assert resumed.resume_from_checkpoint == "auto" and resumed.save_total_limit > 0


def test_llama_recipe_has_the_papers_lora():
    model, data, train = parse_args(FINETUNE_ARGS, ["--config", str(RECIPES / "llama-7b/finetune.yaml")])
    assert (model.lora_r, model.lora_alpha, model.lora_dropout) == (16, 16, 0.05)
    assert sorted(model.lora_target_modules) == ["k_proj", "o_proj", "q_proj", "v_proj"]
    assert train.learning_rate == 2e-5 and train.lr_scheduler_type == "cosine" and train.warmup_ratio > 0
    assert train.per_device_train_batch_size * train.gradient_accumulation_steps == 256
    assert train.mixed_precision == "bf16"


def _launch_args(config_file: Path):
    """The arguments ``accelerate launch --config_file CONFIG scripts/finetune.py`` resolves, as accelerate does."""
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser

    parsed = launch_command_parser().parse_args(["--config_file", str(config_file), "scripts/finetune.py"])
    args, _, _ = _validate_launch_command(parsed)
    return args


@pytest.mark.parametrize(
    ("name", "distributed_type", "processes", "mixed_precision"),
    [("cpu", "NO", 1, "no"), ("gpu", "NO", 1, "bf16"), ("ddp", "MULTI_GPU", 8, "bf16"), ("fsdp", "FSDP", 8, "bf16")],
)
def test_accelerate_configs_load_as_accelerate_reads_them(name, distributed_type, processes, mixed_precision):
    from accelerate.commands.config.config_args import load_config_from_file

    path = RECIPES / "accelerate" / f"{name}.yaml"
    config = load_config_from_file(str(path))  # rejects unknown keys and bad values
    assert str(config.distributed_type).rsplit(".", 1)[-1] == distributed_type
    args = _launch_args(path)
    assert (args.num_processes, args.mixed_precision) == (processes, mixed_precision)
    assert args.multi_gpu == (name == "ddp") and args.use_fsdp == (name == "fsdp")
    if name == "cpu":
        assert config.use_cpu
    if name == "fsdp":
        # LoRA needs frozen and trainable weights in one wrapped block, and a full state dict for the adapter.
        assert str(args.fsdp_use_orig_params).lower() == "true"
        assert args.fsdp_auto_wrap_policy == "TRANSFORMER_BASED_WRAP"
        assert args.fsdp_state_dict_type == "FULL_STATE_DICT"


def test_a_misspelt_accelerate_key_is_refused(tmp_path):
    from accelerate.commands.config.config_args import load_config_from_file

    bad = tmp_path / "ddp.yaml"
    bad.write_text((RECIPES / "accelerate" / "ddp.yaml").read_text() + "num_proceses: 2\n")
    with pytest.raises(ValueError, match="num_proceses"):
        load_config_from_file(str(bad))


def test_validation_says_what_was_wrong():
    with pytest.raises(ConfigError, match="lora_dropout"):
        ModelArguments(lora_dropout=1.5)
    with pytest.raises(ConfigError, match="mixed_precision"):
        TrainArguments(mixed_precision="fp8")
    with pytest.raises(ConfigError, match="splits"):
        InstructionDataArgs(splits=["test"])
    with pytest.raises(ConfigError, match="save_total_limit"):
        TrainArguments(save_total_limit=-1)
    with pytest.raises(ConfigError, match="unknown config field"):
        parse_args(FINETUNE_ARGS, ["--config", str(RECIPES / "gemma-270m/generate.yaml")])
