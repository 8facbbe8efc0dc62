from __future__ import annotations

import json
import subprocess
import sys

import pytest


def test_importing_finetune_stays_light():
    code = "import medsyn.finetune, medsyn.finetune.args, medsyn.finetune.data, medsyn.hub, sys; "
    code += "print(sorted(m for m in ('torch', 'transformers', 'peft', 'accelerate') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_packaged_adapter_is_small_and_documented():
    from huggingface_hub import ModelCard

    from medsyn.finetune import default_adapter_path

    path = default_adapter_path()
    if path is None:
        pytest.skip("this install ships no default adapter")
    config = json.loads((path / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == "google/gemma-3-270m" and config["peft_type"] == "LORA"
    assert sorted(config["target_modules"]) == ["k_proj", "o_proj", "q_proj", "v_proj"]
    assert (path / "adapter_model.safetensors").stat().st_size < 10 * 2**20
    card = ModelCard.load(path / "README.md")
    assert card.data.library_name == "peft" and card.data.base_model == "google/gemma-3-270m"
    evaluation = json.loads((path / "eval.json").read_text())
    assert evaluation["after"]["coverage"] > evaluation["before"]["coverage"]
    assert (path / "finetune.yaml").exists()
