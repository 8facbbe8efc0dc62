"""The LoRA training loop, run by ``scripts/finetune.py`` under ``accelerate launch`` and by the GPU benchmark.

One loop serves a CPU and a cluster: Accelerate places the model and shards the batches (one process, DDP or FSDP,
chosen by the ``recipes/accelerate/*.yaml`` config), and the loop only sees micro-batches.

* Batches are packed padding-free (:class:`medsyn.finetune.collate.PackedCollator`): every token computed is a
  real token.
* The loss is taken on answer tokens only, and the LM head is applied only at those positions (``logits_to_keep``),
  which matters for vocabularies of 262k (Gemma 3) where the head costs more than the rest of a small model.
* The loss is normalised by the number of answer tokens in the whole optimizer step (all micro-batches, all
  processes), so gradient accumulation and DDP give the same update as one big batch.
* Checkpoints hold the adapter and the whole training state (:mod:`medsyn.finetune.checkpoint`), so a run stopped by a
  kill, SIGTERM or its time limit goes on with ``--resume_from_checkpoint auto`` and ends where an unbroken run ends.
* Only the main process logs and writes files.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import random
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medsyn.config import dump_config, save_config
from medsyn.errors import ConfigError, require
from medsyn.finetune.args import DataArguments, ModelArguments, TrainArguments
from medsyn.finetune.card import BaseModel, describe_base_model
from medsyn.finetune.checkpoint import LoopState

__all__ = [
    "TrainResult",
    "load_model_for_training",
    "loss_and_tokens",
    "evaluate_loss",
    "train",
    "train_step",
    "add_lora",
    "save_adapter",
]

logger = logging.getLogger(__name__)


@dataclass
class TrainResult:
    """What :func:`train` gives back: the metrics written to ``metrics.json``, the trained PEFT model and tokenizer."""

    metrics: dict[str, Any]
    model: Any
    tokenizer: Any


def _train_dtype(model_args: ModelArguments, device_type: str) -> Any:
    import torch

    if model_args.dtype == "auto":
        # fp32 master weights on CPU (autocast gives bf16 matmuls); bf16 weights on GPU, where LoRA's own weights
        # stay fp32 (PEFT upcasts adapters) so the optimizer still updates in full precision.
        return torch.bfloat16 if device_type == "cuda" else torch.float32
    return getattr(torch, model_args.dtype)


def load_model_for_training(model_args: ModelArguments, device_type: str = "cpu") -> tuple[Any, Any]:
    """Load the base model and tokenizer and wrap the model with a fresh LoRA adapter.

    Args:
        model_args: the model and LoRA options.
        device_type: ``"cpu"`` or ``"cuda"``, to pick the weights' dtype under ``dtype: auto``.

    Returns:
        ``(peft_model, tokenizer)``; only the LoRA weights require gradients.
    """
    import transformers

    from medsyn.models import resolve_model

    path = resolve_model(model_args.model_name_or_path)
    tokenizer = transformers.AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    kwargs: dict[str, Any] = {"dtype": _train_dtype(model_args, device_type)}
    if model_args.attn_implementation:
        kwargs["attn_implementation"] = model_args.attn_implementation
    model = transformers.AutoModelForCausalLM.from_pretrained(path, **kwargs)
    return add_lora(model, model_args), tokenizer


def add_lora(model: Any, model_args: ModelArguments) -> Any:
    """Wrap a causal LM with a fresh LoRA adapter as ``model_args`` describes; only its weights train."""
    peft = require("peft", "train", "LoRA fine-tuning")

    model.config.use_cache = False
    config = peft.LoraConfig(
        r=model_args.lora_r,
        lora_alpha=model_args.lora_alpha,
        lora_dropout=model_args.lora_dropout,
        target_modules=list(model_args.lora_target_modules),
        task_type="CAUSAL_LM",
    )
    model = peft.get_peft_model(model, config)
    trainable, total = model.get_nb_trainable_parameters()
    logger.info("LoRA: %d trainable of %d parameters (%.3f%%)", trainable, total, 100 * trainable / total)
    return model


def loss_and_tokens(model: Any, batch: dict[str, Any]) -> tuple[Any, int]:
    """The summed next-token cross-entropy over answer tokens, and their number.

    For a packed single row, the LM head runs only at the positions that have a target (``logits_to_keep``); for
    padded batches it runs everywhere and the loss is masked.
    """
    import torch
    import torch.nn.functional as F

    from medsyn.finetune.collate import label_positions

    labels = batch["labels"]
    positions, targets = label_positions(labels)
    inputs = {k: batch[k] for k in ("input_ids", "position_ids", "attention_mask") if k in batch}
    if labels.shape[0] == 1:
        logits = model(**inputs, use_cache=False, logits_to_keep=positions).logits[0]
    else:
        logits = model(**inputs, use_cache=False).logits[positions]
    loss = F.cross_entropy(logits.float(), targets, reduction="sum")
    return loss, int(targets.numel()) if isinstance(targets, torch.Tensor) else len(targets)


def evaluate_loss(model: Any, examples: Sequence[dict], batch_size: int, accelerator: Any = None) -> float:
    """Token-weighted mean answer loss over ``examples`` (packed batches; summed over processes under DDP)."""
    import torch

    from medsyn.finetune.collate import PackedCollator

    collate = PackedCollator()
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    rank, world = (accelerator.process_index, accelerator.num_processes) if accelerator else (0, 1)
    device = accelerator.device if accelerator else next(model.parameters()).device
    autocast = accelerator.autocast() if accelerator else contextlib.nullcontext()
    starts = list(range(0, len(examples), batch_size))
    rounds = math.ceil(len(starts) / world)
    with torch.no_grad(), autocast:
        for i in range(rounds):
            # Every process runs the same number of forward passes (DDP and FSDP forwards are collective); one
            # left without a batch in the last round repeats the first and does not count it.
            index = i * world + rank
            batch = collate(examples[starts[index % len(starts)] :][:batch_size])
            batch = {k: v.to(device) if hasattr(v, "to") else v for k, v in batch.items()}
            loss, n = loss_and_tokens(model, batch)
            if index < len(starts):
                total, count = total + float(loss), count + n
    if accelerator is not None and world > 1:
        sums = accelerator.reduce(torch.tensor([total, count], device=device, dtype=torch.float64), reduction="sum")
        total, count = float(sums[0]), int(sums[1])
    model.train(was_training)
    return total / max(count, 1)


def save_adapter(model: Any, tokenizer: Any, out: str | Path, base_model: str, accelerator: Any = None) -> Path:
    """Save the LoRA adapter and the tokenizer to ``out``, recording ``base_model`` (a Hub id) in its config."""
    out = Path(out)
    unwrapped = accelerator.unwrap_model(model) if accelerator else model
    state = accelerator.get_state_dict(model) if accelerator else None
    if accelerator is None or accelerator.is_main_process:
        unwrapped.save_pretrained(out, state_dict=state)
        tokenizer.save_pretrained(out)
        # The base path may be a local cache folder; the card and adapter name the model it stands for.
        config_path = out / "adapter_config.json"
        config = json.loads(config_path.read_text(encoding="utf-8"))
        config["base_model_name_or_path"] = base_model
        config_path.write_text(json.dumps(config, indent=2, sort_keys=True), encoding="utf-8")
    return out


def train_step(
    model: Any,
    batches: Sequence[dict[str, Any]],
    optimizer: Any,
    scheduler: Any,
    accelerator: Any,
    max_grad_norm: float = 1.0,
) -> tuple[float, int, int, int]:
    """One optimizer step over this process's micro-batches (gradient accumulation), as ``train`` runs it.

    The loss is normalised by the answer tokens of the whole step, over all micro-batches and processes.

    Args:
        model: the prepared PEFT model.
        batches: this process's collated micro-batches (on CPU or the device).
        optimizer: the prepared optimizer.
        scheduler: the prepared LR scheduler, or ``None``.
        accelerator: the ``accelerate.Accelerator``.
        max_grad_norm: clipping norm; 0 disables clipping.

    Returns:
        ``(summed loss, local answer tokens, global answer tokens, local tokens computed)``.
    """
    import torch

    world = accelerator.num_processes
    local = sum(int((b["labels"][:, 1:] != -100).sum()) for b in batches)
    step_tokens = local
    if world > 1:
        step_tokens = int(accelerator.reduce(torch.tensor(local, device=accelerator.device), reduction="sum"))
    step_loss, n_tokens = 0.0, 0
    for i, batch in enumerate(batches):
        batch = {k: v.to(accelerator.device) if hasattr(v, "to") else v for k, v in batch.items()}
        sync = i == len(batches) - 1
        with contextlib.nullcontext() if sync else accelerator.no_sync(model), accelerator.autocast():
            loss_sum, _ = loss_and_tokens(model, batch)
            # DDP averages gradients over processes; multiplying by world turns that into a sum over all answer
            # tokens of the step, divided once by their total.
            accelerator.backward(loss_sum * world / max(step_tokens, 1))
        step_loss += float(loss_sum.detach())
        n_tokens += int(batch["input_ids"].numel())
    if max_grad_norm > 0:
        # All of the model's parameters (frozen ones have no gradient): under FSDP, Accelerate recognises the
        # wrapped model's own list and clips with the norm over all shards.
        accelerator.clip_grad_norm_(model.parameters(), max_grad_norm)
    optimizer.step()
    if scheduler is not None:
        scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    return step_loss, local, step_tokens, n_tokens


def _batches(n: int, batch_size: int, rng: random.Random) -> list[list[int]]:
    order = list(range(n))
    rng.shuffle(order)
    return [order[i : i + batch_size] for i in range(0, n, batch_size)]


@dataclass
class _Run:
    """Everything one training run holds between its setup, its loop and its finish."""

    model_args: ModelArguments
    data_args: DataArguments
    train_args: TrainArguments
    accelerator: Any
    model: Any
    tokenizer: Any
    optimizer: Any
    scheduler: Any
    train_examples: Sequence[dict]
    eval_examples: list[dict]
    state: LoopState
    total_steps: int
    per_step: int
    base: BaseModel
    metrics: dict[str, Any]

    @property
    def out(self) -> Path:
        return Path(self.train_args.output_dir)

    def eval_loss(self) -> float:
        return evaluate_loss(
            self.model, self.eval_examples, self.train_args.per_device_eval_batch_size, self.accelerator
        )


def train(
    model_args: ModelArguments,
    data_args: DataArguments,
    train_args: TrainArguments,
    command: str | None = None,
    train_examples: Sequence[dict] | None = None,
    eval_examples: Sequence[dict] | None = None,
) -> TrainResult:
    """Fine-tune a causal LM with LoRA and save the adapter, tokenizer, resolved recipe, metrics and model card.

    With ``train_args.resume_from_checkpoint`` set, the run goes on from a checkpoint (adapter, optimizer,
    scheduler, RNG and the loop's position) and ends where an unbroken run would. SIGTERM makes the run save a
    checkpoint after the current step and stop (``metrics["stopped_by"] == "signal"``).

    Args:
        model_args: the base model and LoRA options.
        data_args: the instruction dataset and sequence length.
        train_args: optimisation, logging, saving, resuming and publishing options.
        command: the command line that reproduces the run, written into the card.
        train_examples: tokenised examples to use instead of reading ``data_args.dataset`` (tests, benchmark).
        eval_examples: tokenised eval examples to use instead of the eval split.

    Returns:
        A :class:`TrainResult`; its metrics hold steps, tokens, time, train loss and eval loss before and after.
    """
    run = _setup(model_args, data_args, train_args, command, train_examples, eval_examples)
    stopped_by = _loop(run)
    return _finish(run, stopped_by, command)


def _accelerator(train_args: TrainArguments) -> tuple[Any, str]:
    """The accelerator for this machine, with the seed set; returns it and the mixed precision it uses."""
    torch = require("torch", "train", "Fine-tuning")
    accelerate = require("accelerate", "train", "Fine-tuning")

    if train_args.num_threads:
        torch.set_num_threads(train_args.num_threads)
    cuda = torch.cuda.is_available()
    mixed = train_args.mixed_precision
    if mixed == "auto":
        mixed = "bf16" if cuda and torch.cuda.is_bf16_supported() else "no"
    accelerator = accelerate.Accelerator(mixed_precision=mixed, cpu=not cuda)
    _quiet_unless_main(accelerator)
    accelerate.utils.set_seed(train_args.seed)
    return accelerator, mixed


def _examples(
    tokenizer: Any,
    data_args: DataArguments,
    train_examples: Sequence[dict] | None,
    eval_examples: Sequence[dict] | None,
) -> tuple[Sequence[dict], list[dict]]:
    """The tokenised train and eval examples: the ones given, else the dataset's splits."""
    from medsyn.finetune.collate import tokenize_rows
    from medsyn.finetune.data import load_instruction_split

    if train_examples is None:
        rows = load_instruction_split(data_args.dataset, data_args.train_split)[: data_args.max_train_samples]
        train_examples = tokenize_rows(tokenizer, rows, data_args.max_seq_length)
    if eval_examples is None and data_args.eval_split:
        rows = load_instruction_split(data_args.dataset, data_args.eval_split)[: data_args.max_eval_samples]
        eval_examples = tokenize_rows(tokenizer, rows, data_args.max_seq_length)
    if not train_examples:
        raise ConfigError(
            f"no train example fits in max_seq_length={data_args.max_seq_length} tokens; raise max_seq_length"
        )
    return train_examples, list(eval_examples or [])


def _setup(
    model_args: ModelArguments,
    data_args: DataArguments,
    train_args: TrainArguments,
    command: str | None,
    train_examples: Sequence[dict] | None,
    eval_examples: Sequence[dict] | None,
) -> _Run:
    """Accelerator, model, data, optimizer and the loop's state (fresh, or from the checkpoint to resume)."""
    import torch
    import transformers

    from medsyn.finetune.checkpoint import adapter_only_hooks, find_checkpoint

    accelerator, mixed = _accelerator(train_args)
    config = dump_config(model_args, data_args, train_args)
    logger.info("seed %d; mixed precision %s; %d process(es)", train_args.seed, mixed, accelerator.num_processes)
    logger.info("config %s", json.dumps(config, ensure_ascii=False))
    resume = find_checkpoint(Path(train_args.output_dir), train_args.resume_from_checkpoint)

    model, tokenizer = load_model_for_training(model_args, "cuda" if torch.cuda.is_available() else "cpu")
    if train_args.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    train_examples, eval_examples = _examples(tokenizer, data_args, train_examples, eval_examples)

    world, micro = accelerator.num_processes, train_args.per_device_train_batch_size
    per_step = micro * train_args.gradient_accumulation_steps * world
    steps_per_epoch = max(1, len(train_examples) // per_step)
    total_steps = (
        train_args.max_steps if train_args.max_steps > 0 else math.ceil(steps_per_epoch * train_args.num_train_epochs)
    )
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=train_args.learning_rate, weight_decay=train_args.weight_decay)
    scheduler = transformers.get_scheduler(
        train_args.lr_scheduler_type,
        optimizer,
        num_warmup_steps=int(train_args.warmup_ratio * total_steps),
        num_training_steps=total_steps,
    )
    model, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)
    adapter_only_hooks(accelerator)
    logger.info(
        "training on %d examples: %d steps of %d examples (%d per micro-batch x %d accumulation x %d processes)",
        len(train_examples), total_steps, per_step, micro, train_args.gradient_accumulation_steps, world,
    )  # fmt: skip
    metrics: dict[str, Any] = {
        "command": command,
        "train_examples": len(train_examples),
        "eval_examples": len(eval_examples),
    }
    run = _Run(
        model_args, data_args, train_args, accelerator, model, tokenizer, optimizer, scheduler,
        train_examples, eval_examples, LoopState(), total_steps, per_step,
        describe_base_model(model_args.model_name_or_path), metrics,
    )  # fmt: skip
    _start_state(run, resume)
    return run


def _start_state(run: _Run, resume: Path | None) -> None:
    """The loop's state from ``resume``, or a fresh one with the eval loss before training; starts ``log.jsonl``."""
    from medsyn.finetune.checkpoint import load_checkpoint

    if resume is not None:
        run.state = load_checkpoint(run.accelerator, run.model, resume)
        logger.info("resumed from %s at step %d of %d", resume, run.state.step, run.total_steps)
        run.state.log_rows.append({"step": run.state.step, "resumed_from": str(resume)})
        run.metrics["resumed_from"] = str(resume)
    elif run.eval_examples:
        run.state.eval_loss_before = run.eval_loss()
        logger.info("eval loss before training: %.4f", run.state.eval_loss_before)
    if run.state.eval_loss_before is not None:
        run.metrics["eval_loss_before"] = run.state.eval_loss_before
    if run.accelerator.is_main_process:
        run.out.mkdir(parents=True, exist_ok=True)
        # Rows logged after the checkpoint are run again, so the log holds exactly the rows up to it.
        text = "".join(json.dumps(row) + "\n" for row in run.state.log_rows)
        (run.out / "log.jsonl").write_text(text, encoding="utf-8")


def _finish(run: _Run, stopped_by: str | None, command: str | None) -> TrainResult:
    """Metrics, the eval loss after training, the adapter, the run's files and the Hub push."""
    state, world, accelerator = run.state, run.accelerator.num_processes, run.accelerator
    history = [row for row in state.log_rows if "loss" in row]
    run.metrics.update(
        steps=state.step,
        planned_steps=run.total_steps,
        stopped_early=stopped_by is not None,
        stopped_by=stopped_by,
        examples_per_step=run.per_step,
        train_seconds=round(state.train_seconds, 1),
        train_tokens=state.tokens_seen * world,
        train_answer_tokens=state.answer_seen,
        tokens_per_second=round(state.tokens_seen * world / max(state.train_seconds, 1e-9), 1),
        train_loss_first=history[0]["loss"] if history else None,
        train_loss_last=history[-1]["loss"] if history else None,
    )
    if stopped_by == "signal":  # a preempted machine has seconds left: the checkpoint is written, stop now
        return TrainResult(run.metrics, accelerator.unwrap_model(run.model), run.tokenizer)
    if run.eval_examples:
        run.metrics["eval_loss_after"] = run.eval_loss()
        logger.info("eval loss after training: %.4f", run.metrics["eval_loss_after"])
    save_adapter(run.model, run.tokenizer, run.out, run.base.adapter_base, accelerator)
    if accelerator.is_main_process:
        _write_run_files(run.out, run.model_args, run.data_args, run.train_args, run.metrics, command, run.base)
    accelerator.wait_for_everyone()
    if run.train_args.push_to_hub and accelerator.is_main_process:
        from medsyn.hub import push_adapter

        run.metrics["hub_url"] = push_adapter(run.out, run.train_args.push_to_hub, private=run.train_args.hub_private)
    return TrainResult(run.metrics, accelerator.unwrap_model(run.model), run.tokenizer)


def _loop(run: _Run) -> str | None:
    """Run optimizer steps from ``run.state.step`` to ``run.total_steps``, logging and checkpointing as it goes.

    Returns:
        Why it stopped before ``total_steps`` (``"signal"`` or ``"time_limit"``), or ``None``.
    """
    from medsyn.finetune.checkpoint import save_checkpoint, stop_on_sigterm
    from medsyn.finetune.collate import PackedCollator

    train_args, accelerator, state, total_steps = run.train_args, run.accelerator, run.state, run.total_steps
    world = accelerator.num_processes
    group_size = train_args.gradient_accumulation_steps * world
    rng = random.Random(train_args.seed)
    state.restore(rng)
    collate = PackedCollator()
    saved_step = state.step if train_args.resume_from_checkpoint else -1

    def checkpoint() -> None:
        nonlocal saved_step
        if saved_step != state.step:
            state.capture(rng)
            save_checkpoint(
                accelerator,
                lambda folder: save_adapter(run.model, run.tokenizer, folder, run.base.adapter_base, accelerator),
                run.out,
                state,
                train_args.save_total_limit,
            )
            saved_step = state.step

    run.model.train()
    progress = _progress(total_steps, state.step, accelerator.is_main_process)
    start = time.perf_counter()
    start_seconds = state.train_seconds
    stopped_by = None
    with stop_on_sigterm() as stop:
        while state.step < total_steps:
            if len(state.queue) < group_size:
                state.queue += _batches(len(run.train_examples), train_args.per_device_train_batch_size, rng)
            group = state.queue[:group_size]
            del state.queue[:group_size]
            batches = [
                collate([run.train_examples[i] for i in idx]) for idx in group[accelerator.process_index :: world]
            ]
            step_loss, local, step_tokens, n_tokens = train_step(
                run.model, batches, run.optimizer, run.scheduler, accelerator, train_args.max_grad_norm
            )
            state.step += 1
            state.tokens_seen += n_tokens
            state.answer_seen += step_tokens
            state.window_loss += step_loss
            state.window_tokens += local
            state.train_seconds = start_seconds + time.perf_counter() - start
            progress.update(1)
            if state.step % train_args.logging_steps == 0 or state.step == total_steps:
                _log_row(run)
            if train_args.save_steps and state.step % train_args.save_steps == 0 and state.step < total_steps:
                checkpoint()
            if stop.agreed(accelerator):
                stopped_by = "signal"
            elif train_args.time_limit_minutes and time.perf_counter() - start > 60 * train_args.time_limit_minutes:
                logger.warning("time limit of %.1f min reached at step %d", train_args.time_limit_minutes, state.step)
                stopped_by = "time_limit"
            if stopped_by and state.step < total_steps:
                checkpoint()
                logger.warning(
                    "stopped at step %d of %d; go on with --resume_from_checkpoint auto (checkpoints in %s)",
                    state.step, total_steps, run.out / "checkpoints",
                )  # fmt: skip
                break
            stopped_by = None
    progress.close()
    return stopped_by


def _log_row(run: _Run) -> None:
    import torch

    accelerator, state, train_args = run.accelerator, run.state, run.train_args
    world = accelerator.num_processes
    loss_sum, tokens = state.window_loss, state.window_tokens
    if world > 1:  # the loss of the whole step, over all processes
        sums = accelerator.reduce(torch.tensor([loss_sum, tokens], device=accelerator.device, dtype=torch.float64))
        loss_sum, tokens = float(sums[0]), float(sums[1])
    record = {
        "step": state.step,
        "loss": loss_sum / max(tokens, 1),
        "lr": run.scheduler.get_last_lr()[0],
        "tokens": state.tokens_seen * world,
        "tokens_per_s": state.tokens_seen * world / max(state.train_seconds, 1e-9),
        "elapsed_s": round(state.train_seconds, 1),
    }
    state.window_loss, state.window_tokens = 0.0, 0
    if train_args.eval_steps and state.step % train_args.eval_steps == 0 and run.eval_examples:
        record["eval_loss"] = run.eval_loss()
    state.log_rows.append(record)
    logger.info("step %d/%d %s", state.step, run.total_steps, json.dumps(record))
    if accelerator.is_main_process:
        with (run.out / "log.jsonl").open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")


def _quiet_unless_main(accelerator: Any) -> None:
    """Only the main process logs: the others keep errors only (their progress bars are off too)."""
    if not accelerator.is_main_process:
        import transformers

        logging.getLogger().setLevel(logging.ERROR)
        logging.getLogger("medsyn").setLevel(logging.ERROR)
        transformers.utils.logging.set_verbosity_error()


def _progress(total: int, done: int, enabled: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=done, desc="finetune", unit="step", disable=not enabled, file=sys.stderr)


def _write_run_files(
    out: Path,
    model_args: ModelArguments,
    data_args: DataArguments,
    train_args: TrainArguments,
    metrics: dict[str, Any],
    command: str | None,
    base: BaseModel,
) -> None:
    from medsyn.finetune.card import write_model_card

    save_config(out / "finetune.yaml", model_args, data_args, train_args)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2, ensure_ascii=False), encoding="utf-8")
    write_model_card(
        out,
        base=base,
        config=dump_config(model_args, data_args, train_args),
        metrics=metrics,
        command=command,
        dataset=data_args.dataset,
    )
