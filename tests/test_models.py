"""Tests of medsyn.models: model ids against paths, labels on pages and rows, and dtype choice."""

from __future__ import annotations

from pathlib import Path

import pytest

from medsyn.errors import BackendError
from medsyn.models import (
    DEFAULT_MODEL,
    adapter_label,
    check_model_path,
    looks_like_path,
    model_label,
    pick_dtype,
    public_name,
    resolve_model,
)


@pytest.mark.parametrize(
    "value",
    ["/models/gemma", "./gemma", "../gemma", "~/models/gemma", "~", "runs/out/checkpoint", r"C:\models\gemma"],
)
def test_paths_look_like_paths(value):
    assert looks_like_path(value) is True


@pytest.mark.parametrize("value", ["gpt2", "Qwen/Qwen2.5-1.5B-Instruct", "gemma-3-270m", "out/model"])
def test_hub_ids_do_not_look_like_paths(value):
    assert looks_like_path(value) is False


def test_resolve_model_passes_hub_ids_through():
    assert resolve_model("Qwen/Qwen2.5-1.5B-Instruct") == "Qwen/Qwen2.5-1.5B-Instruct"
    assert resolve_model("gpt2") == "gpt2"


def test_resolve_model_expands_an_existing_path(tmp_path, monkeypatch):
    assert resolve_model(str(tmp_path)) == str(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "models" / "tiny").mkdir(parents=True)
    assert resolve_model("~/models/tiny") == str(tmp_path / "models" / "tiny")


def test_a_missing_model_path_says_what_to_pass(tmp_path):
    missing = str(tmp_path / "no-such-model")
    with pytest.raises(BackendError) as err:
        resolve_model(missing)
    assert str(err.value) == (
        f"model path {missing} does not exist; pass a folder with config.json and weights, a Hub id such as "
        f"Qwen/Qwen2.5-1.5B-Instruct, or leave --model unset for the embedded {DEFAULT_MODEL}"
    )
    with pytest.raises(BackendError, match=r"model path \./nowhere/at/all does not exist"):
        check_model_path("./nowhere/at/all")


def test_check_model_path_tells_ids_from_paths(tmp_path):
    assert check_model_path(None) is False
    assert check_model_path("") is False
    assert check_model_path(DEFAULT_MODEL) is False
    assert check_model_path("org/name") is False
    assert check_model_path(str(tmp_path)) is True


def test_public_name_hides_machine_paths():
    assert public_name("/home/alice/models/gemma-3-270m") == "gemma-3-270m"
    assert public_name("./runs/adapter/") == "adapter"
    assert public_name("Qwen/Qwen2.5-1.5B-Instruct") == "Qwen/Qwen2.5-1.5B-Instruct"
    assert public_name(DEFAULT_MODEL) == DEFAULT_MODEL
    assert public_name(None) is None
    assert public_name(3) == 3


def test_adapter_label_names_a_folder_by_its_name(tmp_path):
    folder = tmp_path / "my-adapter"
    folder.mkdir()
    assert adapter_label(str(folder)) == "my-adapter"
    assert adapter_label("someone/ru-notes-lora") == "someone/ru-notes-lora"  # a Hub id stays as it is
    assert adapter_label(str(tmp_path / "gone")) == str(tmp_path / "gone")  # not a folder here: shown as given
    assert adapter_label(None) is None
    assert adapter_label("") is None


def test_model_label():
    assert model_label(None) == "Gemma 3 270M (embedded)"
    assert model_label("") == "Gemma 3 270M (embedded)"
    assert model_label(DEFAULT_MODEL) == "Gemma 3 270M (embedded)"
    assert model_label("Qwen/Qwen2.5-1.5B-Instruct") == "Qwen/Qwen2.5-1.5B-Instruct"
    assert model_label(Path("/m/x")) == "/m/x"


def test_pick_dtype_on_cpu(monkeypatch):
    import torch

    from medsyn import models

    native = models.cpu_has_bf16()
    assert pick_dtype("auto", "cpu") is (torch.bfloat16 if native else torch.float32)
    monkeypatch.setattr(models, "cpu_has_bf16", lambda: True)
    assert pick_dtype("auto", "cpu") is torch.bfloat16
    monkeypatch.setattr(models, "cpu_has_bf16", lambda: False)
    assert pick_dtype("auto", "cpu") is torch.float32  # emulated bf16 would be several times slower
    assert pick_dtype("auto", "cuda:1") is torch.bfloat16
    assert pick_dtype("auto", "mps") is torch.float32
    assert pick_dtype("float32", "cpu") is torch.float32
    assert pick_dtype("float16", "cpu") is torch.float16
    assert pick_dtype("bfloat16", "cpu") is torch.bfloat16
    with pytest.raises(BackendError) as err:
        pick_dtype("fp8", "cpu")
    assert str(err.value) == "dtype must be auto, bfloat16, float16 or float32, got 'fp8'"
