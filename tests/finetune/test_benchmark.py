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
