"""A run stopped by its time limit, SIGTERM and a crash, resumed each time, ends where an unbroken run ends."""

from __future__ import annotations

import json
import signal
from dataclasses import replace
from pathlib import Path

import pytest

from medsyn.errors import ConfigError
from medsyn.finetune.checkpoint import checkpoint_dirs, find_checkpoint

STEPS = 12


def _args(tiny_lm_dir, instruction_dir, out: Path):
    from medsyn.finetune.args import DataArguments, ModelArguments, TrainArguments

    # LoRA dropout on: the resumed run must also restore the torch RNG to draw the same masks.
    model_args = ModelArguments(model_name_or_path=str(tiny_lm_dir), lora_r=4, lora_alpha=8, lora_dropout=0.1)
    data_args = DataArguments(
        dataset=str(instruction_dir), max_seq_length=128, max_eval_samples=8, max_train_samples=20
    )
    train_args = TrainArguments(
        output_dir=str(out),
        learning_rate=5e-3,
        warmup_ratio=0.2,
        max_steps=STEPS,
        per_device_train_batch_size=3,
        gradient_accumulation_steps=2,
        mixed_precision="no",
        logging_steps=2,
        save_steps=4,
        save_total_limit=2,
        num_threads=1,
    )
    return model_args, data_args, train_args


def _rows(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]


def _adapter(out: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(out / "adapter_model.safetensors"))


def _interrupt_at(monkeypatch, call: int, action):
    """Make the ``call``-th optimizer step of the next run end with ``action()`` (a signal or an exception)."""
    import medsyn.finetune.train as train_module

    real, calls = train_module.train_step, {"n": 0}

    def step(*args, **kwargs):
        result = real(*args, **kwargs)
        calls["n"] += 1
        if calls["n"] == call:
            action()
        return result

    monkeypatch.setattr(train_module, "train_step", step)


class Killed(RuntimeError):
    pass


def _kill():
    raise Killed("the machine went away")


def test_interrupted_and_resumed_run_matches_an_unbroken_one(tmp_path, monkeypatch, tiny_lm_dir, instruction_dir):
    import torch

    from medsyn.finetune.train import train

    model_args, data_args, unbroken_args = _args(tiny_lm_dir, instruction_dir, tmp_path / "unbroken")
    unbroken = train(model_args, data_args, unbroken_args).metrics
    assert unbroken["steps"] == STEPS and unbroken["stopped_by"] is None

    out = tmp_path / "broken"
    args = replace(unbroken_args, output_dir=str(out))
    # 1. the time limit stops it after the first step, with a checkpoint
    first = train(model_args, data_args, replace(args, time_limit_minutes=1e-9)).metrics
    assert (first["steps"], first["stopped_by"]) == (1, "time_limit")
    assert [p.name for p in checkpoint_dirs(out)] == ["step-000001"]
    # 2. resumed, then SIGTERM during step 6: a checkpoint of step 6, and no final adapter work
    _interrupt_at(monkeypatch, 5, lambda: signal.raise_signal(signal.SIGTERM))
    second = train(model_args, data_args, replace(args, resume_from_checkpoint="auto")).metrics
    assert (second["steps"], second["stopped_by"]) == (6, "signal") and "eval_loss_after" not in second
    assert signal.getsignal(signal.SIGTERM) is not None  # the handler is put back
    assert [p.name for p in checkpoint_dirs(out)] == ["step-000004", "step-000006"]  # only the last 2 kept
    # 3. resumed, then killed during step 11 (after the row of step 10 was logged; last checkpoint: step 8)
    _interrupt_at(monkeypatch, 5, _kill)
    with pytest.raises(Killed):
        train(model_args, data_args, replace(args, resume_from_checkpoint="auto"))
    assert _rows(out)[-1]["step"] == 10
    # 4. resumed from the checkpoint of step 8, by its path: runs to the end
    monkeypatch.undo()
    last = train(model_args, data_args, replace(args, resume_from_checkpoint=str(out / "checkpoints" / "step-000008")))
    assert (last.metrics["steps"], last.metrics["stopped_by"]) == (STEPS, None)

    rows = _rows(out)
    assert [r["resumed_from"].rsplit("/", 1)[-1] for r in rows if "resumed_from" in r] == [
        "step-000001",
        "step-000006",
        "step-000008",
    ]
    assert [r["step"] for r in rows if "resumed_from" in r] == [1, 6, 8]
    curve = [(r["step"], r["loss"]) for r in rows if "loss" in r]
    expected = [(r["step"], r["loss"]) for r in _rows(tmp_path / "unbroken") if "loss" in r]
    assert [s for s, _ in curve] == list(range(2, STEPS + 1, 2))  # each logging step once: no duplicates
    assert [s for s, _ in curve] == [s for s, _ in expected]
    assert [loss for _, loss in curve] == pytest.approx([loss for _, loss in expected], rel=1e-6)
    assert all(loss > 0 for _, loss in curve)
    a, b = _adapter(tmp_path / "unbroken"), _adapter(out)
    assert a.keys() == b.keys() and a
    for name in a:
        torch.testing.assert_close(b[name], a[name], atol=1e-7, rtol=1e-6)
    assert last.metrics["eval_loss_before"] == unbroken["eval_loss_before"]
    assert last.metrics["eval_loss_after"] == pytest.approx(unbroken["eval_loss_after"], rel=1e-6)


def test_checkpoint_holds_adapter_and_training_state(tmp_path):
    folder = tmp_path / "checkpoints" / "step-000004"
    (tmp_path / "checkpoints" / "step-000008.tmp").mkdir(parents=True)  # a save cut short is never picked
    folder.mkdir()
    assert find_checkpoint(tmp_path, "auto") is None  # a folder without loop state is not resumable
    (folder / "loop_state_0.json").write_text("{}")
    assert find_checkpoint(tmp_path, "auto") == folder
    assert find_checkpoint(tmp_path, None) is None
    with pytest.raises(ConfigError, match="not a resumable checkpoint"):
        find_checkpoint(tmp_path, str(tmp_path / "nowhere"))


def test_real_checkpoint_files(tiny_run):
    _, (_, _, train_args) = tiny_run
    (folder,) = checkpoint_dirs(train_args.output_dir)
    names = {p.name for p in folder.iterdir()}
    assert {"adapter_model.safetensors", "optimizer.bin", "scheduler.bin", "random_states_0.pkl"} <= names
    assert "loop_state_0.json" in names and "model.safetensors" not in names  # frozen base weights not copied
    state = json.loads((folder / "loop_state_0.json").read_text())
    assert state["step"] == 10 and state["shuffle_state"] and [r["step"] for r in state["log_rows"]] == [5, 10]
