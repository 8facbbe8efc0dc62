"""The DDP recipe launched for real: ``accelerate launch`` with 2 CPU processes trains, saves and resumes."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(recipe: Path, *flags: str) -> subprocess.CompletedProcess:
    accelerate = Path(sys.executable).with_name("accelerate")
    command = [
        str(accelerate),
        "launch",
        "--config_file",
        str(ROOT / "recipes" / "accelerate" / "ddp.yaml"),
        "--num_processes",
        "2",
        "--main_process_ip",
        "127.0.0.1",
        "--main_process_port",
        str(_free_port()),
        str(ROOT / "scripts" / "finetune.py"),
        "--config",
        str(recipe),
        *flags,
    ]
    # The multi-GPU config, launched by torchrun as on GPUs; with no GPU visible, each process's Accelerator joins a
    # gloo process group on the CPU (MULTI_CPU) and the same DDP code path runs.
    env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1", CUDA_VISIBLE_DEVICES="")
    return subprocess.run(command, capture_output=True, text=True, timeout=300, env=env, cwd=ROOT)


@pytest.mark.slow
def test_ddp_on_two_cpu_processes_trains_saves_and_resumes(tmp_path, tiny_lm_dir, instruction_dir):
    out = tmp_path / "out"
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        f"# Model\nmodel_name_or_path: {tiny_lm_dir}\nlora_r: 4\nlora_dropout: 0.0\n"
        f"# Data\ndataset: {instruction_dir}\nmax_seq_length: 128\nmax_eval_samples: 8\n"
        f"# Training\noutput_dir: {out}\nmax_steps: 6\nper_device_train_batch_size: 2\nlearning_rate: 5.0e-3\n"
        "mixed_precision: 'no'\nlogging_steps: 1\nsave_steps: 2\nnum_threads: 1\n"
    )
    first = _launch(recipe, "--max_steps", "6", "--time_limit_minutes", "1e-9")
    assert first.returncode == 0, first.stderr[-3000:]
    # only the main process logs: one "stopped at step" line, not two
    assert first.stderr.count("stopped at step 1 of 6") == 1, first.stderr[-3000:]
    checkpoint = out / "checkpoints" / "step-000001"
    assert {"loop_state_0.json", "loop_state_1.json", "random_states_0.pkl", "random_states_1.pkl"} <= {
        p.name for p in checkpoint.iterdir()
    }
    second = _launch(recipe, "--resume_from_checkpoint", "auto")
    assert second.returncode == 0, second.stderr[-3000:]
    assert second.stderr.count("resumed from") == 1
    rows = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "loss" in r] == [1, 2, 3, 4, 5, 6]
    assert [r["step"] for r in rows if "resumed_from" in r] == [1]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["steps"] == 6 and metrics["examples_per_step"] == 4  # 2 per process x 2 processes
    assert metrics["eval_loss_after"] == metrics["eval_loss_after"]  # evaluated after training, a number, not NaN
    from safetensors.torch import load_file

    weights = load_file(out / "adapter_model.safetensors")
    lora_b = [t for name, t in weights.items() if "lora_B" in name]
    assert lora_b and all(t.abs().sum() > 0 for t in lora_b)  # LoRA B starts at zero: it trained
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step-000001", "step-000002", "step-000004"]
