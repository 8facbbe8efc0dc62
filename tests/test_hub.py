"""Tests of medsyn.hub without a network: token redaction and search, and building and checking an upload folder."""

from __future__ import annotations

import json

import pytest

from medsyn.errors import MedsynError
from medsyn.hub import build_upload_folder, find_tokens, redact, upload, validate_upload_folder

FAKE = "hf_" + "AbCdEfGhIjKlMnOpQrSt1234"
CARD = """---
base_model: google/gemma-3-270m
library_name: peft
license: gemma
---

# A LoRA adapter
"""


@pytest.fixture(autouse=True)
def _offline_and_tokenless(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)


def _adapter_dir(root, card: str = CARD, base: str = "google/gemma-3-270m"):
    """A training run's output folder: adapter, card, recipe and metrics, with checkpoints and logs beside them."""
    run = root / "run"
    run.mkdir()
    (run / "adapter_config.json").write_text(
        json.dumps({"base_model_name_or_path": base, "peft_type": "LORA", "r": 8}), encoding="utf-8"
    )
    (run / "adapter_model.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")
    (run / "README.md").write_text(card, encoding="utf-8")
    (run / "finetune.yaml").write_text(f"model: google/gemma-3-270m\nhub_token: {FAKE}\n", encoding="utf-8")
    (run / "metrics.json").write_text('{"eval_loss": 1.5}', encoding="utf-8")
    (run / "checkpoint-10").mkdir()
    (run / "checkpoint-10" / "optimizer.pt").write_bytes(b"\x00" * 16)
    (run / "train.log").write_text(f"logged in with {FAKE}\n", encoding="utf-8")
    return run


def test_redact_hides_hub_tokens():
    assert redact(f"token {FAKE} leaked") == "token hf_*** leaked"
    assert redact(f"{FAKE}\n{FAKE[:-1]}x") == "hf_***\nhf_***"
    assert redact("hf_short and hf_ alone stay") == "hf_short and hf_ alone stay"
    assert redact("no secrets here: Жалобы на кашель") == "no secrets here: Жалобы на кашель"


def test_redact_hides_the_environment_token_and_given_secrets(monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "plain-secret-value")
    assert redact("pushed with plain-secret-value today") == "pushed with *** today"
    assert redact("key sk-abcdefgh1234 and short", secrets=("sk-abcdefgh1234", "short")) == "key *** and short"


def test_find_tokens_finds_a_planted_token(tmp_path):
    (tmp_path / "README.md").write_text("# clean card\n", encoding="utf-8")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "config.yaml").write_text(f"token: {FAKE}\n", encoding="utf-8")
    (tmp_path / "sub" / "notes.txt").write_text(f"Жалобы {FAKE}", encoding="utf-8")
    (tmp_path / "weights.bin").write_bytes(FAKE.encode())  # binary files are not scanned
    (tmp_path / "data.parquet").write_bytes(b"PAR1\x00" + FAKE.encode() + b"\x00PAR1")
    assert find_tokens(tmp_path) == ["data.parquet", "sub/config.yaml", "sub/notes.txt"]
    assert find_tokens(tmp_path / "sub" / "..") == ["data.parquet", "sub/config.yaml", "sub/notes.txt"]


def test_find_tokens_of_a_clean_folder_is_empty(tmp_path):
    (tmp_path / "README.md").write_text("# card\nhf_ is a prefix\n", encoding="utf-8")
    assert find_tokens(tmp_path) == []


def test_build_upload_folder_copies_what_is_published_and_redacts_it(tmp_path):
    run = _adapter_dir(tmp_path)
    out = tmp_path / "upload"
    out.mkdir()
    (out / "stale.txt").write_text("from an earlier build", encoding="utf-8")
    assert build_upload_folder(run, out) == out
    assert sorted(p.name for p in out.iterdir()) == [
        "README.md",
        "adapter_config.json",
        "adapter_model.safetensors",
        "finetune.yaml",
        "metrics.json",
    ]
    assert (out / "finetune.yaml").read_text(encoding="utf-8") == "model: google/gemma-3-270m\nhub_token: hf_***\n"
    assert (out / "adapter_model.safetensors").read_bytes() == (run / "adapter_model.safetensors").read_bytes()
    assert FAKE in (run / "finetune.yaml").read_text(encoding="utf-8")  # the run itself is left alone
    assert find_tokens(out) == []
    meta = validate_upload_folder(out)
    assert meta["library_name"] == "peft" and meta["base_model"] == "google/gemma-3-270m"


def test_build_upload_folder_needs_a_finished_run(tmp_path):
    run = _adapter_dir(tmp_path)
    (run / "adapter_model.safetensors").unlink()
    (run / "README.md").unlink()
    with pytest.raises(MedsynError) as err:
        build_upload_folder(run, tmp_path / "upload")
    assert str(err.value) == (
        f"{run} lacks ['adapter_model.safetensors', 'README.md']; pass the output_dir of a finished "
        "scripts/finetune.py run"
    )
    assert not (tmp_path / "upload").exists()


def test_validate_upload_folder_lists_every_problem(tmp_path):
    card = "---\nlibrary_name: transformers\n---\n\n# card\n"
    folder = build_upload_folder(_adapter_dir(tmp_path, card=card), tmp_path / "upload")
    (folder / "adapter_model.safetensors").unlink()
    (folder / "metrics.json").write_text(json.dumps({"token": FAKE}), encoding="utf-8")
    with pytest.raises(MedsynError) as err:
        validate_upload_folder(folder)
    assert str(err.value) == (
        f"upload folder {folder} is not valid: missing adapter_model.safetensors; card library_name is "
        "'transformers', expected 'peft'; card has no base_model; metrics.json contains something that looks like "
        "a Hub token"
    )


def test_validate_upload_folder_checks_the_base_model_matches(tmp_path):
    folder = build_upload_folder(_adapter_dir(tmp_path, base="Qwen/Qwen2.5-0.5B"), tmp_path / "upload")
    with pytest.raises(
        MedsynError, match="adapter base_model_name_or_path 'Qwen/Qwen2.5-0.5B' differs from the card's "
    ):
        validate_upload_folder(folder)


def test_upload_refuses_a_folder_with_a_token_before_anything_else(tmp_path):
    (tmp_path / "README.md").write_text(f"# card {FAKE}\n", encoding="utf-8")
    with pytest.raises(MedsynError) as err:
        upload(tmp_path, "someone/adapter")
    assert str(err.value) == (
        f"refusing to upload {tmp_path}: ['README.md'] contain something that looks like a Hub token"
    )
    assert FAKE not in str(err.value)


def test_upload_without_a_token_says_how_to_log_in(tmp_path, monkeypatch):
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "get_token", lambda: None)
    (tmp_path / "README.md").write_text("# card\n", encoding="utf-8")
    with pytest.raises(MedsynError) as err:
        upload(tmp_path, "someone/adapter")
    assert str(err.value) == (
        "no Hugging Face token to push to someone/adapter: set HF_TOKEN in the environment or run 'hf auth login'"
    )
