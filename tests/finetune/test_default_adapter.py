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
    assert card.data.license == "gemma" and "Q4_K_M (4-bit) GGUF quantisation" in card.text
    evaluation = json.loads((path / "eval.json").read_text())
    assert evaluation["after"]["coverage"] > evaluation["before"]["coverage"]
    assert (path / "finetune.yaml").exists()


def test_packaged_adapter_loads_onto_a_gemma_3_270m_shaped_model(tmp_path, tiny_model_dir):
    """Every tensor of the packaged adapter lands on the attention of a model with Gemma 3 270M's shape, and
    medsyn's loader merges it into weights that change the logits."""
    import shutil

    import torch
    from peft import PeftModel
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM, Gemma3ForCausalLM, Gemma3TextConfig

    from medsyn.finetune import default_adapter_path
    from medsyn.models import load_model_and_tokenizer

    path = default_adapter_path()
    if path is None:
        pytest.skip("this install ships no default adapter")
    # Gemma 3 270M's attention (hidden 640, 4 heads of 256, 1 KV head, 18 layers); a narrow MLP and a small
    # vocabulary keep it light, and the adapter touches neither.
    pattern = ["sliding_attention"] * 5 + ["full_attention"]
    config = Gemma3TextConfig(
        hidden_size=640, intermediate_size=64, num_hidden_layers=18, num_attention_heads=4, num_key_value_heads=1,
        head_dim=256, vocab_size=600, layer_types=pattern * 3, sliding_window=512, max_position_embeddings=1024,
    )  # fmt: skip
    torch.manual_seed(0)
    base_dir = tmp_path / "gemma-shaped"
    Gemma3ForCausalLM(config).save_pretrained(base_dir)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        if (tiny_model_dir / name).exists():
            shutil.copy(tiny_model_dir / name, base_dir / name)

    peft_model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base_dir), path)
    loaded = {n: p for n, p in peft_model.named_parameters() if "lora_" in n}
    saved = load_file(str(path / "adapter_model.safetensors"))
    assert len(saved) == len(loaded) == 18 * 4 * 2
    for key, tensor in saved.items():
        name = key.replace(".weight", ".default.weight")
        torch.testing.assert_close(loaded[name].detach(), tensor.to(loaded[name].dtype))

    ids = torch.tensor([[2, 10, 20, 30, 40, 50]])
    base, _ = load_model_and_tokenizer(str(base_dir), dtype="float32", device="cpu")
    merged, _ = load_model_and_tokenizer(str(base_dir), adapter=str(path), dtype="float32", device="cpu")
    with torch.no_grad():
        assert not torch.allclose(base(input_ids=ids).logits, merged(input_ids=ids).logits, atol=1e-4)
