from __future__ import annotations

import importlib.util
from pathlib import Path


def test_gpu_benchmark_runs_on_cpu_with_a_tiny_model(instruction_dir, capsys):
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "finetune_gpu.py"
    spec = importlib.util.spec_from_file_location("finetune_gpu", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--smoke", "--no_write", "--dataset", str(instruction_dir)]) == 0
    out = capsys.readouterr().out
    assert "| medsyn (packed, answer-only) |" in out and "| plain PEFT (2 x 128 padded) |" in out
