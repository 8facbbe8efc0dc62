"""The medsyn LoRA loop against TRL's SFTTrainer, on the same model, data, LoRA and optimizer, in one run.

    python benchmarks/finetune_trl.py                      # embedded Gemma 3 270M on the CPU, 30 steps each
    python benchmarks/finetune_trl.py --steps 4 --no_write # a quick look, RESULTS.md left alone

Needs ``pip install trl`` (pass ``torch==<installed version>`` alongside so pip keeps this torch). Both trainers get
the same LoRA initialisation (same seed), the same examples in the same order (``--batch`` per optimizer step), AdamW,
a cosine schedule and clipping at 1.0:

* medsyn: :func:`medsyn.finetune.train.train_step` on padding-free packed batches, loss on answer tokens only, the
  LM head only at answer positions (``logits_to_keep``).
* TRL: ``trl.SFTTrainer`` with the same PEFT model, ``padding_free=True`` (the batch flattened into one row with
  ``position_ids``, TRL's padding-free packing of whole examples) and ``completion_only_loss=True``; the examples are
  passed tokenised (``input_ids`` + ``completion_mask``), so both see identical tokens.

The two run interleaved: a TRL callback runs one medsyn step after each TRL step, so whatever else loads the machine
(other jobs on a shared CPU) slows both alike. Each step is timed on its own; the first ``--warmup`` steps of each are
left out. Memory is the peak resident memory sampled every 5 ms during a trainer's steps, above the resident memory
when that step began (both models stay loaded, so absolute RSS would not tell them apart); on CUDA it is
``torch.cuda.max_memory_allocated`` above the step start.

:func:`compare` is also what ``benchmarks/finetune_gpu.py --trl`` runs on the LLaMA-7B shape.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.results import write_section  # noqa: E402

logger = logging.getLogger("finetune_trl")


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="gemma-3-270m", help="model to fine-tune (default: the embedded Gemma 3 270M)")
    p.add_argument("--dataset", default="outputs/instructions", help="instruction data ('medsyn data instructions')")
    p.add_argument("--steps", type=int, default=30, help="optimizer steps per trainer")
    p.add_argument("--warmup", type=int, default=2, help="first steps of each trainer left out of the timing")
    p.add_argument("--batch", type=int, default=8, help="examples per optimizer step (one padding-free row)")
    p.add_argument("--max_seq_length", type=int, default=256)
    p.add_argument("--learning_rate", type=float, default=3e-4)
    p.add_argument("--lora_r", type=int, default=16)
    p.add_argument("--lora_alpha", type=int, default=32)
    p.add_argument("--lora_dropout", type=float, default=0.05)
    p.add_argument("--targets", default="q_proj,k_proj,v_proj,o_proj")
    p.add_argument(
        "--mixed_precision", default="bf16", help="bf16 or no (the recipe trains the 270M in bf16 autocast)"
    )
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (the recipe uses 1 on a shared machine)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no_write", action="store_true", help="print the table but leave RESULTS.md alone")
    return p.parse_args(argv)


class MemoryPeak:
    """Peak memory above a starting point, per named phase: sampled RSS on CPU, the allocator's peak on CUDA."""

    def __init__(self, device: Any) -> None:
        import psutil

        self.device = device
        self.process = psutil.Process()
        self.peaks: dict[str, int] = {}
        self._phase: str | None = None
        self._base = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        if device.type != "cuda":
            self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            phase = self._phase
            if phase is not None:
                above = self.process.memory_info().rss - self._base
                self.peaks[phase] = max(self.peaks.get(phase, 0), above)

    def begin(self, phase: str) -> None:
        import torch

        if self.device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self._base = torch.cuda.memory_allocated()
        else:
            self._base = self.process.memory_info().rss
        self._phase = phase

    def end(self) -> None:
        import torch

        phase, self._phase = self._phase, None
        if self.device.type == "cuda" and phase is not None:
            torch.cuda.synchronize()
            self.peaks[phase] = max(self.peaks.get(phase, 0), torch.cuda.max_memory_allocated() - self._base)

    def close(self) -> None:
        self._stop.set()


def compare(
    make_model: Callable[[], Any],
    examples: Sequence[dict[str, list[int]]],
    processing_class: Any,
    steps: int,
    batch: int,
    learning_rate: float,
    mixed_precision: str,
    warmup: int = 2,
    seed: int = 0,
) -> dict[str, dict[str, Any]]:
    """Train the same LoRA model with medsyn's step and with ``trl.SFTTrainer``, interleaved step by step.

    Args:
        make_model: builds a fresh PEFT model (base + LoRA); called once per trainer after seeding the same way.
        examples: tokenised examples (``input_ids``, ``labels`` with ``-100`` on the prompt); step ``i`` of both
            trainers uses ``examples[i * batch : (i + 1) * batch]``.
        processing_class: the tokenizer, or :func:`pad_only_tokenizer` for random token ids (TRL reads only the pad id from it
            when the data comes tokenised).
        steps: optimizer steps per trainer.
        batch: examples per step.
        learning_rate: AdamW learning rate (cosine schedule, no warmup, clipping at 1.0, no weight decay).
        mixed_precision: ``bf16`` or ``no``.
        warmup: first steps left out of the timing.
        seed: seeds both LoRA initialisations.

    Returns:
        Per trainer: ``losses`` (one per step), ``seconds`` (one per step), ``tokens`` (per step), ``tokens_per_s``,
        ``peak_memory_mib``.
    """
    import torch
    import transformers
    from accelerate import Accelerator
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    from medsyn.finetune.collate import IGNORE_INDEX, PackedCollator
    from medsyn.finetune.train import train_step

    examples = list(examples[: steps * batch])
    if len(examples) < steps * batch:
        raise ValueError(f"need {steps * batch} examples for {steps} steps of {batch}, got {len(examples)}")
    groups = [examples[i * batch : (i + 1) * batch] for i in range(steps)]
    bf16 = mixed_precision == "bf16"
    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")

    accelerator = Accelerator(mixed_precision=mixed_precision, cpu=not cuda)
    torch.manual_seed(seed)
    ours = make_model()
    optimizer = torch.optim.AdamW([p for p in ours.parameters() if p.requires_grad], lr=learning_rate)
    scheduler = transformers.get_scheduler("cosine", optimizer, num_warmup_steps=0, num_training_steps=steps)
    ours, optimizer, scheduler = accelerator.prepare(ours, optimizer, scheduler)
    ours.train()
    collate = PackedCollator()

    torch.manual_seed(seed)
    theirs = make_model()
    rows = [
        {"input_ids": ex["input_ids"], "completion_mask": [int(label != IGNORE_INDEX) for label in ex["labels"]]}
        for ex in examples
    ]
    config = SFTConfig(
        output_dir=tempfile.mkdtemp(prefix="medsyn-trl-"),  # nothing is saved there (save_strategy="no")
        max_steps=steps,
        per_device_train_batch_size=batch,
        gradient_accumulation_steps=1,
        learning_rate=learning_rate,
        lr_scheduler_type="cosine",
        warmup_steps=0,
        weight_decay=0.0,
        max_grad_norm=1.0,
        optim="adamw_torch",
        bf16=bf16,
        use_cpu=not cuda,
        gradient_checkpointing=False,
        padding_free=True,
        packing=False,
        completion_only_loss=True,
        max_length=None,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
        dataloader_num_workers=0,
        seed=seed,
    )
    memory = MemoryPeak(device)
    results: dict[str, dict[str, Any]] = {
        name: {"losses": [], "seconds": [], "tokens": []} for name in ("medsyn", "trl")
    }
    clock = {"t": 0.0}

    class Interleave(transformers.TrainerCallback):
        """After each TRL step: close its timing, then run and time the medsyn step on the same examples."""

        def on_step_begin(self, args, state, control, **kwargs):
            memory.begin("trl")

        def on_step_end(self, args, state, control, **kwargs):
            _sync(device)
            memory.end()
            i = state.global_step - 1
            results["trl"]["seconds"].append(time.perf_counter() - clock["t"])
            results["trl"]["tokens"].append(sum(len(ex["input_ids"]) for ex in groups[i]))
            memory.begin("medsyn")
            start = time.perf_counter()
            loss_sum, local, _, n_tokens = train_step(
                ours, [collate(groups[i])], optimizer, scheduler, accelerator, max_grad_norm=1.0
            )
            _sync(device)
            results["medsyn"]["seconds"].append(time.perf_counter() - start)
            memory.end()
            results["medsyn"]["losses"].append(loss_sum / max(local, 1))
            results["medsyn"].setdefault("answer_tokens", []).append(local)
            results["medsyn"]["tokens"].append(n_tokens)
            clock["t"] = time.perf_counter()  # TRL's next step (batch fetch included) starts now

        def on_train_begin(self, args, state, control, **kwargs):
            clock["t"] = time.perf_counter()

    class InOrder(SFTTrainer):
        """SFTTrainer reading the examples in the given order, as the medsyn side does."""

        def _get_train_sampler(self, *args: Any, **kwargs: Any) -> Any:
            return torch.utils.data.SequentialSampler(self.train_dataset)

    trainer = InOrder(
        model=theirs,
        args=config,
        train_dataset=Dataset.from_list(rows),
        processing_class=processing_class,
        callbacks=[Interleave()],
    )
    trainer.train()
    memory.close()
    results["trl"]["losses"] = [row["loss"] for row in trainer.state.log_history if "loss" in row][:steps]
    for name, r in results.items():
        timed = slice(warmup, None)
        r["tokens_per_s"] = sum(r["tokens"][timed]) / sum(r["seconds"][timed])
        r["median_step_s"] = statistics.median(r["seconds"][timed])
        r["peak_memory_mib"] = memory.peaks.get(name, 0) / 2**20
    return results


def pad_only_tokenizer() -> Any:
    """A two-token tokenizer (pad 0, EOS 1) for random token ids: with tokenised data, TRL reads only its pad id."""
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from transformers import PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "<eos>": 1}
    return PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer(WordLevel(vocab, unk_token="<pad>")), pad_token="<pad>", eos_token="<eos>"
    )


def _sync(device: Any) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize()


WHY = (
    "Why: medsyn's step applies the LM head only at the {share:.0%} of positions whose next token is an answer "
    "token (`logits_to_keep`), forward and backward. TRL's SFTTrainer runs its (chunked, fused) head at every "
    "position and also computes per-token entropy and top-1 accuracy for its logs. For Gemma 3 270M the head "
    "(640 x 262,144) costs about 1.7x the rest of the model per token, so where it runs decides the step time. "
    "TRL's chunked head never holds the whole logits tensor, which is why its step memory peak is the lower one."
)


def markdown(results: dict[str, dict[str, Any]], setup: str, every: int = 5) -> str:
    """The RESULTS.md section: speed and memory per trainer, then the loss of both at the same steps."""
    ours, theirs = results["medsyn"], results["trl"]
    margin = ours["tokens_per_s"] / theirs["tokens_per_s"] - 1
    lines = [
        setup,
        "",
        "| trainer | tokens/s | median step (s) | peak memory above step start (MiB) |",
        "|---|---|---|---|",
    ]
    for name, label in (("medsyn", "medsyn loop"), ("trl", "trl.SFTTrainer")):
        r = results[name]
        lines.append(
            f"| {label} | {r['tokens_per_s']:,.0f} | {r['median_step_s']:.2f} | {r['peak_memory_mib']:,.0f} |"
        )
    lines += [
        "",
        f"medsyn's loop is {margin:+.0%} faster than TRL in tokens/s (all tokens are real: both are padding-free).",
        "",
        WHY.format(share=sum(ours.get("answer_tokens", [0])) / max(sum(ours["tokens"]), 1)),
        "",
        "Loss at equal steps (same examples, same LoRA initialisation):",
        "",
        "| step | medsyn | TRL |",
        "|---|---|---|",
    ]
    n = min(len(ours["losses"]), len(theirs["losses"]))
    for i in sorted({*range(0, n, every), n - 1}):
        lines.append(f"| {i + 1} | {ours['losses'][i]:.4f} | {theirs['losses'][i]:.4f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    import torch

    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S", level="INFO")
    args = parse(argv)
    torch.set_num_threads(args.threads)
    import trl
    from transformers import AutoTokenizer

    from medsyn.finetune.args import ModelArguments
    from medsyn.finetune.collate import tokenize_rows
    from medsyn.finetune.train import load_model_for_training
    from medsyn.models import resolve_model

    model_args = ModelArguments(
        model_name_or_path=args.model,
        dtype="float32",
        lora_r=args.lora_r,
        lora_alpha=args.lora_alpha,
        lora_dropout=args.lora_dropout,
        lora_target_modules=args.targets.split(","),
    )
    tokenizer = AutoTokenizer.from_pretrained(resolve_model(args.model))

    def make_model() -> Any:
        return load_model_for_training(model_args, "cpu")[0]

    rows = _instruction_rows(args.dataset)
    random.Random(args.seed).shuffle(rows)
    examples = tokenize_rows(tokenizer, rows[: args.steps * args.batch * 2], args.max_seq_length)
    results = compare(
        make_model,
        examples,
        tokenizer,
        args.steps,
        args.batch,
        args.learning_rate,
        args.mixed_precision,
        args.warmup,
        args.seed,
    )
    tokens = sum(results["medsyn"]["tokens"]) / args.steps
    setup = (
        f"## LoRA fine-tuning: medsyn loop vs trl.SFTTrainer on the CPU (`benchmarks/finetune_trl.py`)\n\n"
        f"`{args.model}` (fp32 weights, {args.mixed_precision} autocast), LoRA r={args.lora_r}, alpha={args.lora_alpha}, "
        f"dropout {args.lora_dropout} on {args.targets}; {args.steps} steps of {args.batch} instruction examples "
        f"(about {tokens:.0f} tokens per step, up to {args.max_seq_length} per example), lr {args.learning_rate}, "
        f"cosine. TRL {trl.__version__}: padding_free=True, completion_only_loss=True, tokenised input. "
        f"{args.threads} torch thread(s). The two trainers ran interleaved step by step in one process, so the "
        f"load of other jobs on this shared machine fell on both alike; the first {args.warmup} steps of each are "
        "not timed."
    )
    table = markdown(results, setup)
    print(table)
    print(json.dumps(results, default=float))
    if not args.no_write:
        write_section("finetune_trl", table)
    return 0


def _instruction_rows(dataset: str) -> list[dict]:
    from medsyn.finetune.data import load_instruction_split

    try:
        return load_instruction_split(dataset, "train")
    except ValueError:
        logger.warning("no instruction data at %s; building it from RuMedTop3 train", dataset)
        from medsyn.finetune.data import main as build

        build(["--out", dataset, "--splits", "train"])
        return load_instruction_split(dataset, "train")


if __name__ == "__main__":
    sys.exit(main())
