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


def test_llama_recipe_has_the_papers_lora():
    model, data, train = parse_args(FINETUNE_ARGS, ["--config", str(RECIPES / "llama-7b/finetune.yaml")])
    assert (model.lora_r, model.lora_alpha, model.lora_dropout) == (16, 16, 0.05)
    assert sorted(model.lora_target_modules) == ["k_proj", "o_proj", "q_proj", "v_proj"]
    assert train.learning_rate == 2e-5 and train.lr_scheduler_type == "cosine" and train.warmup_ratio > 0
    assert train.per_device_train_batch_size * train.gradient_accumulation_steps == 256
    assert train.mixed_precision == "bf16"


@pytest.mark.parametrize("name", ["cpu", "gpu", "ddp", "fsdp"])
def test_accelerate_configs_exist(name):
    import yaml

    config = yaml.safe_load((RECIPES / "accelerate" / f"{name}.yaml").read_text())
    assert config["distributed_type"] in ("NO", "MULTI_GPU", "FSDP")


def test_validation_says_what_was_wrong():
    with pytest.raises(ConfigError, match="lora_dropout"):
        ModelArguments(lora_dropout=1.5)
    with pytest.raises(ConfigError, match="mixed_precision"):
        TrainArguments(mixed_precision="fp8")
    with pytest.raises(ConfigError, match="splits"):
        InstructionDataArgs(splits=["test"])
    with pytest.raises(ConfigError, match="unknown config field"):
        parse_args(FINETUNE_ARGS, ["--config", str(RECIPES / "gemma-270m/generate.yaml")])
