from __future__ import annotations

import json
import logging

import pytest

from medsyn.errors import MedsynError
from medsyn.hub import build_upload_folder, push_adapter, redact, validate_upload_folder

FAKE = "hf_" + "AbCdEfGhIjKlMnOpQrStUvWx12"


def test_redact_hides_tokens(monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "secret-token-value")
    text = redact(f"push with {FAKE} and secret-token-value")
    assert FAKE not in text and "secret-token-value" not in text and "hf_***" in text


def test_publish_folder_validates(tiny_run, tiny_lm_dir, tmp_path):
    import torch
    from huggingface_hub import ModelCard
    from transformers import AutoModelForCausalLM

    _, (_, _, train_args) = tiny_run
    folder = build_upload_folder(train_args.output_dir, tmp_path / "upload")
    names = sorted(p.name for p in folder.iterdir())
    assert {"adapter_config.json", "adapter_model.safetensors", "README.md", "finetune.yaml"} <= set(names)
    assert "checkpoints" not in names and "log.jsonl" not in names
    meta = ModelCard.load(folder / "README.md").data.to_dict()
    assert meta["library_name"] == "peft" and meta["base_model"]
    base = AutoModelForCausalLM.from_pretrained(tiny_lm_dir, dtype=torch.float32)
    assert validate_upload_folder(folder, base_model=base)["library_name"] == "peft"


def test_tokens_never_reach_the_upload(tiny_run, tmp_path, monkeypatch):
    import shutil

    _, (_, _, train_args) = tiny_run
    run = tmp_path / "run"
    shutil.copytree(train_args.output_dir, run)
    card = run / "README.md"
    card.write_text(card.read_text() + f"\nexport HF_TOKEN={FAKE}\n")
    folder = build_upload_folder(run, tmp_path / "upload")
    assert FAKE not in (folder / "README.md").read_text()
    (folder / "metrics.json").write_text(json.dumps({"token": FAKE}))
    with pytest.raises(MedsynError, match="looks like a Hub token"):
        validate_upload_folder(folder)


def test_push_uses_the_env_token_and_never_logs_it(tiny_run, tmp_path, monkeypatch, caplog):
    import huggingface_hub

    calls = {}

    class FakeApi:
        def __init__(self, token=None):
            calls["token"] = token

        def create_repo(self, repo_id, **kwargs):
            calls["repo"], calls["create"] = repo_id, kwargs
            return f"https://huggingface.co/{repo_id}"

        def upload_folder(self, folder_path, repo_id, **kwargs):
            calls["files"] = sorted(p.name for p in __import__("pathlib").Path(folder_path).iterdir())
            calls["upload"] = kwargs

    _, (_, _, train_args) = tiny_run
    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    monkeypatch.setenv("HF_TOKEN", FAKE)
    with caplog.at_level(logging.DEBUG):
        url = push_adapter(train_args.output_dir, "someone/ru-notes-lora", staging=tmp_path / "upload")
    assert calls["token"] == FAKE and calls["repo"] == "someone/ru-notes-lora"
    assert calls["create"]["private"] is True and calls["create"]["repo_type"] == "model"  # private unless asked
    assert calls["upload"]["repo_type"] == "model"
    assert "adapter_model.safetensors" in calls["files"] and url.endswith("someone/ru-notes-lora")
    assert FAKE not in caplog.text


def test_push_without_a_token_says_how_to_log_in(tiny_run, tmp_path, monkeypatch):
    import huggingface_hub

    _, (_, _, train_args) = tiny_run
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: None)
    with pytest.raises(MedsynError, match="HF_TOKEN"):
        push_adapter(train_args.output_dir, "someone/repo", staging=tmp_path / "upload")
