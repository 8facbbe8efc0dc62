from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest


def test_gpu_benchmark_runs_on_cpu_with_a_tiny_model(instruction_dir, capsys):
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "finetune_gpu.py"
    spec = importlib.util.spec_from_file_location("finetune_gpu", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--smoke", "--no_write", "--dataset", str(instruction_dir)]) == 0
    out = capsys.readouterr().out
    assert "| medsyn (packed, answer-only) |" in out and "| plain PEFT (2 x 128 padded) |" in out


def test_gpu_benchmark_compares_with_trl_and_finds_the_largest_batch_on_cpu(instruction_dir, capsys):
    pytest.importorskip("trl")
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "finetune_gpu.py"
    spec = importlib.util.spec_from_file_location("finetune_gpu", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--smoke", "--no_write", "--dataset", str(instruction_dir), "--trl", "--max_batch"]) == 0
    out = capsys.readouterr().out
    assert "| trl.SFTTrainer |" in out and "| medsyn loop |" in out and "| 3 |" in out
    assert "Largest packed batch without gradient checkpointing: 8 examples" in out
    assert "the search stopped at --max_batch_limit 8 without running out of memory" in out
    assert "| MFU (measured rate) | MFU (spec peak) |" in out


def test_spec_peak_by_gpu_name(monkeypatch):
    import torch

    path = Path(__file__).resolve().parents[2] / "benchmarks" / "finetune_gpu.py"
    spec = importlib.util.spec_from_file_location("finetune_gpu", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.spec_peak_tflops(torch.device("cpu")) is None
    for name, peak in [("NVIDIA H100 80GB HBM3", 989.0), ("NVIDIA H100 PCIe", 756.0), ("NVIDIA H200", 989.0),
                       ("NVIDIA A100-SXM4-80GB", 312.0), ("Tesla T4", None)]:  # fmt: skip
        monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None, n=name: n)
        assert module.spec_peak_tflops(torch.device("cuda")) == peak
