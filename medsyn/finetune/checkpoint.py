"""Resumable checkpoints of a fine-tuning run, and a clean stop on SIGTERM.

A checkpoint is a folder ``<output_dir>/checkpoints/step-NNNNNN`` holding:

* the LoRA adapter and tokenizer (a usable adapter folder on its own);
* Accelerate's state: optimizer, LR scheduler and the RNG of every process (``accelerator.save_state``, with the
  frozen base weights left out: only the adapter trains, so only the adapter is saved);
* ``loop_state_<rank>.json``: the loop's own position (optimizer step, the batch shuffler's RNG and the batches
  still queued, token counters, the log rows so far), one file per process.

A folder is written under a ``.tmp`` name and renamed when complete, so a run killed while saving never leaves a
half checkpoint that ``--resume_from_checkpoint auto`` would pick. Only the last ``save_total_limit`` are kept.
"""

from __future__ import annotations

import json
import logging
import random
import shutil
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from medsyn.errors import ConfigError

__all__ = [
    "LoopState",
    "checkpoint_dirs",
    "find_checkpoint",
    "save_checkpoint",
    "load_checkpoint",
    "adapter_only_hooks",
    "StopRequest",
    "stop_on_sigterm",
]

logger = logging.getLogger(__name__)

_PREFIX = "step-"


@dataclass
class LoopState:
    """Where the training loop stands: everything besides the weights, optimizer, scheduler and global RNG."""

    step: int = 0
    shuffle_state: Any = None
    queue: list[list[int]] = field(default_factory=list)
    tokens_seen: int = 0
    answer_seen: int = 0
    window_loss: float = 0.0
    window_tokens: int = 0
    train_seconds: float = 0.0
    eval_loss_before: float | None = None
    log_rows: list[dict[str, Any]] = field(default_factory=list)

    def capture(self, rng: random.Random) -> None:
        """Record the batch shuffler's state."""
        self.shuffle_state = _to_json(rng.getstate())

    def restore(self, rng: random.Random) -> None:
        """Put the batch shuffler back where it was when this state was saved."""
        if self.shuffle_state is not None:
            version, internal, gauss = self.shuffle_state
            rng.setstate((version, tuple(internal), gauss))


def _to_json(value: Any) -> Any:
    return [_to_json(v) for v in value] if isinstance(value, (tuple, list)) else value


def checkpoint_dirs(output_dir: str | Path) -> list[Path]:
    """The complete checkpoints under ``output_dir/checkpoints``, oldest first."""
    root = Path(output_dir) / "checkpoints"
    if not root.is_dir():
        return []
    found = [
        p for p in root.iterdir() if p.is_dir() and p.name.startswith(_PREFIX) and p.name[len(_PREFIX) :].isdigit()
    ]
    return sorted(found, key=lambda p: int(p.name[len(_PREFIX) :]))


def find_checkpoint(output_dir: str | Path, resume: str | None) -> Path | None:
    """The checkpoint to resume from, as ``--resume_from_checkpoint`` names it.

    Args:
        output_dir: the run's output folder.
        resume: ``None`` (start fresh), ``"auto"`` (the latest checkpoint of ``output_dir``, or a fresh start when
            there is none) or a checkpoint folder.

    Returns:
        The checkpoint folder, or ``None`` to start from scratch.
    """
    if not resume:
        return None
    if resume == "auto":
        resumable = [p for p in checkpoint_dirs(output_dir) if (p / "loop_state_0.json").exists()]
        if not resumable:
            logger.info("no checkpoint under %s/checkpoints; starting from step 0", output_dir)
            return None
        return resumable[-1]
    path = Path(resume).expanduser()
    if not (path / "loop_state_0.json").exists():
        raise ConfigError(
            f"--resume_from_checkpoint {resume}: not a resumable checkpoint (no loop_state_0.json there); pass a "
            f"folder such as {Path(output_dir) / 'checkpoints' / 'step-000050'}, or auto for the latest"
        )
    return path


def save_checkpoint(
    accelerator: Any,
    save_adapter: Any,
    output_dir: str | Path,
    state: LoopState,
    keep: int,
) -> Path:
    """Write a checkpoint of the current step on every process; the main process renames it into place.

    Args:
        accelerator: the run's ``accelerate.Accelerator`` (with the model, optimizer and scheduler prepared).
        save_adapter: ``save_adapter(folder)`` writes the adapter and tokenizer (collective under FSDP).
        output_dir: the run's output folder.
        state: the loop state of this process at this step.
        keep: how many checkpoints to keep (0: all).

    Returns:
        The checkpoint folder.
    """
    root = Path(output_dir) / "checkpoints"
    final = root / f"{_PREFIX}{state.step:06d}"
    tmp = root / f"{final.name}.tmp"
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    accelerator.wait_for_everyone()
    save_adapter(tmp)
    accelerator.save_state(str(tmp))
    (tmp / f"loop_state_{accelerator.process_index}.json").write_text(json.dumps(asdict(state)), encoding="utf-8")
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        if final.exists():
            shutil.rmtree(final)
        tmp.rename(final)
        if keep > 0:
            for old in checkpoint_dirs(output_dir)[:-keep]:
                shutil.rmtree(old, ignore_errors=True)
        logger.info("checkpoint of step %d saved to %s", state.step, final)
    accelerator.wait_for_everyone()
    return final


def load_checkpoint(accelerator: Any, model: Any, path: Path) -> LoopState:
    """Restore the adapter, optimizer, scheduler, RNG and loop state saved by :func:`save_checkpoint`.

    Args:
        accelerator: the run's accelerator, with the same model, optimizer and scheduler prepared as when saving.
        model: the prepared PEFT model.
        path: the checkpoint folder.

    Returns:
        This process's :class:`LoopState`.
    """
    from accelerate.utils import DistributedType

    state_file = path / f"loop_state_{accelerator.process_index}.json"
    if not state_file.exists():
        raise ConfigError(
            f"checkpoint {path} has no {state_file.name}: it was saved by a run with fewer processes; resume with the "
            "same number of processes"
        )
    accelerator.load_state(str(path))
    if accelerator.distributed_type != DistributedType.FSDP:  # FSDP's own model file already held the adapter
        from peft import set_peft_model_state_dict
        from safetensors.torch import load_file

        weights = load_file(str(path / "adapter_model.safetensors"))  # copied into the parameters where they live
        result = set_peft_model_state_dict(accelerator.unwrap_model(model), weights)
        if result.unexpected_keys:
            raise ConfigError(f"checkpoint {path} does not fit this model: unexpected {result.unexpected_keys[:3]}")
    return LoopState(**json.loads(state_file.read_text(encoding="utf-8")))


def adapter_only_hooks(accelerator: Any) -> None:
    """Make ``save_state``/``load_state`` skip the model weights: the adapter is saved and loaded beside them."""

    def drop_weights(_models: list, weights: list, _output_dir: str) -> None:
        weights.clear()

    def drop_models(models: list, _input_dir: str) -> None:
        models.clear()

    accelerator.register_save_state_pre_hook(drop_weights)
    accelerator.register_load_state_pre_hook(drop_models)


class StopRequest:
    """A flag that SIGTERM sets; the loop checks it after each step, saves a checkpoint and stops."""

    def __init__(self) -> None:
        self.signal: int | None = None

    def __call__(self, signum: int, _frame: Any) -> None:
        if self.signal is None:
            logger.warning("received signal %d: saving a checkpoint after this step, then stopping", signum)
        self.signal = signum

    def agreed(self, accelerator: Any) -> bool:
        """Whether any process was asked to stop (all processes stop at the same step)."""
        requested = self.signal is not None
        if accelerator.num_processes > 1:
            import torch

            flag = torch.tensor(int(requested), device=accelerator.device)
            requested = bool(accelerator.reduce(flag, reduction="max"))
        return requested


@contextmanager
def stop_on_sigterm() -> Iterator[StopRequest]:
    """Install a SIGTERM handler for the duration of training (the previous handler comes back after)."""
    request = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield request  # signal handlers can only be set from the main thread
        return
    previous = signal.signal(signal.SIGTERM, request)
    try:
        yield request
    finally:
        signal.signal(signal.SIGTERM, previous)
