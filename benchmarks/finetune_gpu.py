"""GPU benchmark of the LoRA training step of scripts/finetune.py on a LLaMA-7B-shaped model.

    python benchmarks/finetune_gpu.py                       # one GPU: writes the finetune_gpu section of RESULTS.md
    python benchmarks/finetune_gpu.py --smoke               # tiny model on CPU: checks the script end to end

The model has random weights (LlamaConfig hidden 4096, intermediate 11008, 32 layers, 32 heads, vocab 32000, bf16).
Example lengths are drawn from the instruction data (``outputs/instructions``, built by ``medsyn data
instructions``): with ``--tokenizer`` they are measured exactly, otherwise estimated from characters at
``--chars_per_token`` (about 2.3 for a LLaMA tokenizer on Russian). Prompt tokens carry no loss, as in training.

Two loops, the same LoRA (the paper's r=16 on q,k,v,o), the same examples:

* medsyn: :func:`medsyn.finetune.train.train_step` on padding-free packed micro-batches (position_ids restart per
  example), loss on answers only, LM head only at answer positions, bf16 autocast through Accelerate.
* baseline: a plain PEFT loop, ``model(input_ids, attention_mask, labels).loss.backward()`` on right-padded batches of
  fixed length ``--pad_to`` (512).

Reported per loop: real (non-padding) tokens/s, peak memory, and MFU = 4 x params x real tokens/s over the bf16 matmul
rate measured in the same run (4: forward 2 + backward to the activations 2; frozen weights get no gradient).

    python benchmarks/finetune_gpu.py --max_batch           # also: the largest packed batch that fits, no checkpointing
    python benchmarks/finetune_gpu.py --trl                 # also: medsyn's step against trl.SFTTrainer on this shape

``--trl`` runs :func:`benchmarks.finetune_trl.compare` (interleaved steps, same examples, same LoRA initialisation;
TRL with ``padding_free=True`` and ``completion_only_loss=True``) and writes its own section, ``finetune_gpu_trl``.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import math
import random
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.results import write_section  # noqa: E402

logger = logging.getLogger("finetune_gpu")


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--smoke", action="store_true", help="tiny model on CPU, nothing written")
    p.add_argument("--hidden", type=int, default=4096)
    p.add_argument("--intermediate", type=int, default=11008)
    p.add_argument("--layers", type=int, default=32)
    p.add_argument("--heads", type=int, default=32)
    p.add_argument("--vocab", type=int, default=32000)
    p.add_argument("--dataset", default="outputs/instructions", help="instruction data for the length distribution")
    p.add_argument("--tokenizer", default=None, help="tokenizer to measure lengths with (else estimated)")
    p.add_argument("--chars_per_token", type=float, default=2.3)
    p.add_argument("--max_seq_length", type=int, default=1024)
    p.add_argument("--examples_per_batch", type=int, default=16, help="examples per micro-batch (both loops)")
    p.add_argument("--pad_to", type=int, default=512, help="the baseline's fixed padded length")
    p.add_argument("--baseline_batch", type=int, default=4, help="examples per baseline batch (x pad_to tokens)")
    p.add_argument("--lora_r", type=int, default=16)
    p.add_argument("--lora_alpha", type=int, default=16)
    p.add_argument("--targets", default="q_proj,k_proj,v_proj,o_proj")
    p.add_argument("--baseline_targets", default=None, help="LoRA modules of the baseline (default: --targets)")
    p.add_argument("--baseline_r", type=int, default=None, help="LoRA rank of the baseline (default: --lora_r)")
    p.add_argument("--attn", default="sdpa", help="sdpa or flash_attention_2")
    p.add_argument("--gradient_checkpointing", action="store_true")
    p.add_argument("--steps", type=int, default=10, help="timed steps per loop")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no_write", action="store_true", help="print the table but leave RESULTS.md alone")
    p.add_argument("--max_batch", action="store_true", help="find the largest examples_per_batch that fits")
    p.add_argument("--max_batch_limit", type=int, default=1024, help="stop the --max_batch search here")
    p.add_argument("--trl", action="store_true", help="also compare with trl.SFTTrainer (needs pip install trl)")
    p.add_argument("--trl_steps", type=int, default=20, help="steps per trainer in the TRL comparison")
    p.add_argument(
        "--peak_tflops",
        type=float,
        default=None,
        help="the GPU's dense bf16 peak for a second MFU column (default: from its name, e.g. 989 for H100/H200 SXM)",
    )
    args = p.parse_args(argv)
    if args.smoke:
        args.hidden, args.intermediate, args.layers, args.heads, args.vocab = 64, 128, 2, 4, 1000
        args.steps, args.warmup, args.examples_per_batch, args.pad_to, args.max_seq_length = 2, 1, 4, 128, 128
        args.baseline_batch, args.trl_steps, args.max_batch_limit = 2, 3, 8
    return args


def example_shapes(args: argparse.Namespace, n: int, rng: random.Random) -> list[tuple[int, int]]:
    """``(prompt_tokens, answer_tokens)`` for ``n`` examples drawn from the instruction data."""
    from medsyn.finetune.data import load_instruction_split
    from medsyn.prompts import render_instruction

    try:
        rows = load_instruction_split(args.dataset, "train")
    except ValueError:
        logger.warning("no instruction data at %s; building it from RuMedTop3 train", args.dataset)
        from medsyn.finetune.data import main as build

        build(["--out", args.dataset, "--splits", "train"])
        rows = load_instruction_split(args.dataset, "train")
    if args.tokenizer:
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(args.tokenizer)

        def count(text: str) -> int:
            return len(tok(text)["input_ids"])
    else:

        def count(text: str) -> int:
            return max(1, round(len(text) / args.chars_per_token))

    shapes = []
    for row in rng.choices(rows, k=n):
        prompt = count(render_instruction(row["instruction"], row["input"]))
        answer = count(" " + row["output"]) + 1
        answer = max(1, min(answer, args.max_seq_length - prompt))
        shapes.append((prompt, answer))
    return shapes


def make_examples(shapes: list[tuple[int, int]], vocab: int, rng: random.Random) -> list[dict[str, list[int]]]:
    out = []
    for prompt, answer in shapes:
        ids = [rng.randrange(3, vocab) for _ in range(prompt + answer)]
        out.append({"input_ids": ids, "labels": [-100] * prompt + ids[prompt:]})
    return out


def matmul_tflops(device: Any, dtype: Any, n: int = 8192, iters: int = 20) -> float:
    """The bf16 matmul rate of this device, in TFLOP/s."""
    import torch

    if device.type != "cuda":
        n, iters = 512, 5
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    _sync(device)
    start = time.perf_counter()
    for _ in range(iters):
        a @ b
    _sync(device)
    return 2 * n**3 * iters / (time.perf_counter() - start) / 1e12


def _sync(device: Any) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize()


def build_model(args: argparse.Namespace, device: Any, dtype: Any, r: int, targets: list[str]) -> Any:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from medsyn.finetune.args import ModelArguments
    from medsyn.finetune.train import add_lora

    config = LlamaConfig(
        hidden_size=args.hidden,
        intermediate_size=args.intermediate,
        num_hidden_layers=args.layers,
        num_attention_heads=args.heads,
        num_key_value_heads=args.heads,
        vocab_size=args.vocab,
        max_position_embeddings=4096,
    )
    config._attn_implementation = args.attn
    torch.manual_seed(args.seed)
    default = torch.get_default_dtype()
    torch.set_default_dtype(dtype)  # initialise in bf16 directly: a 7B model in fp32 would take 27 GB first
    try:
        with torch.device(device):
            model = LlamaForCausalLM(config)
    finally:
        torch.set_default_dtype(default)
    if args.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    lora = ModelArguments(
        model_name_or_path="random",
        lora_r=r,
        lora_alpha=args.lora_alpha,
        lora_dropout=0.05,
        lora_target_modules=targets,
    )
    return add_lora(model, lora)


def run_medsyn(args: argparse.Namespace, examples: list[dict], device: Any, dtype: Any) -> dict[str, Any]:
    """The real training step of scripts/finetune.py: packed, answer-only, through Accelerate."""
    import torch
    from accelerate import Accelerator

    from medsyn.finetune.collate import PackedCollator
    from medsyn.finetune.train import train_step

    accelerator = Accelerator(mixed_precision="bf16", cpu=device.type != "cuda")
    model = build_model(args, device, dtype, args.lora_r, args.targets.split(","))
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=2e-5)
    model, optimizer = accelerator.prepare(model, optimizer)
    model.train()
    collate = PackedCollator()
    k = args.examples_per_batch
    batches = [collate(examples[i : i + k]) for i in range(0, len(examples) - k + 1, k)]
    return _timed(
        args,
        device,
        model,
        batches,
        lambda b: train_step(model, [b], optimizer, None, accelerator, 1.0)[3],
        lambda b: int(b["input_ids"].numel()),
    )


def run_baseline(args: argparse.Namespace, examples: list[dict], device: Any, dtype: Any) -> dict[str, Any]:
    """A plain PEFT loop: right-padded fixed-length batches, ``outputs.loss.backward()``."""
    import torch

    from medsyn.finetune.collate import PaddedCollator

    targets = (args.baseline_targets or args.targets).split(",")
    model = build_model(args, device, dtype, args.baseline_r or args.lora_r, targets)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=2e-5)
    model.train()
    collate = PaddedCollator(pad_token_id=0, pad_to=args.pad_to)
    k = args.baseline_batch
    batches = [collate(examples[i : i + k]) for i in range(0, len(examples) - k + 1, k)]
    batches = batches[: args.warmup + args.steps]

    def step(batch: dict[str, Any]) -> int:
        batch = {key: v.to(device) for key, v in batch.items() if key != "num_examples"}
        with torch.autocast(device.type, dtype=torch.bfloat16):
            loss = model(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return int(batch["input_ids"].numel())

    return _timed(args, device, model, batches, step, lambda b: int(b["attention_mask"].sum()))


def _timed(args, device, model, batches, step, real_tokens) -> dict[str, Any]:
    import torch

    for b in batches[: args.warmup]:
        step(b)
    _sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    timed = batches[args.warmup : args.warmup + args.steps]
    start = time.perf_counter()
    computed = sum(step(b) for b in timed)
    _sync(device)
    seconds = time.perf_counter() - start
    real = sum(real_tokens(b) for b in timed)
    n_params = sum(p.numel() for p in model.parameters())
    peak = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else float("nan")
    result = {
        "steps": len(timed),
        "seconds": seconds,
        "real_tokens": real,
        "computed_tokens": computed,
        "real_tokens_per_s": real / seconds,
        "padding_share": 1 - real / max(computed, 1),
        "peak_memory_gib": peak,
        "params": n_params,
    }
    return result


def main(argv: list[str] | None = None) -> int:
    import torch

    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S", level="INFO")
    args = parse(argv)
    rng = random.Random(args.seed)
    device = torch.device("cuda" if torch.cuda.is_available() and not args.smoke else "cpu")
    dtype = torch.bfloat16
    n = args.examples_per_batch * (args.steps + args.warmup)
    shapes = example_shapes(args, n, rng)
    examples = make_examples(shapes, args.vocab, rng)
    lengths = sorted(p + a for p, a in shapes)
    logger.info(
        "%d examples: median %d tokens, p90 %d, max %d; answers %.0f%% of tokens",
        n,
        lengths[n // 2],
        lengths[int(0.9 * n)],
        lengths[-1],
        100 * sum(a for _, a in shapes) / sum(lengths),
    )
    rate = matmul_tflops(device, dtype)
    logger.info("bf16 matmul rate: %.1f TFLOP/s", rate)
    results = {}
    for name, run in (
        ("medsyn (packed, answer-only)", run_medsyn),
        (f"plain PEFT ({args.baseline_batch} x {args.pad_to} padded)", run_baseline),
    ):
        try:
            results[name] = run(args, examples, device, dtype)
        except torch.OutOfMemoryError:
            logger.error("%s ran out of memory; try --gradient_checkpointing or smaller batches", name)
            results[name] = {"real_tokens_per_s": float("nan"), "padding_share": float("nan"), "params": 0}
            results[name]["peak_memory_gib"] = float("inf")
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()
    peak = args.peak_tflops or spec_peak_tflops(device)
    for r in results.values():
        r["mfu"] = 4 * r["params"] * r["real_tokens_per_s"] / (rate * 1e12)
        r["mfu_spec"] = 4 * r["params"] * r["real_tokens_per_s"] / (peak * 1e12) if peak else float("nan")
    shape = f"hidden {args.hidden}, intermediate {args.intermediate}, {args.layers} layers, {args.heads} heads, "
    shape += f"vocab {args.vocab}"
    md = [
        "## LoRA fine-tuning step on a LLaMA-7B-shaped model (`benchmarks/finetune_gpu.py`)",
        "",
        f"Random weights, bf16 ({shape}; {max(r['params'] for r in results.values()) / 1e9:.2f}B parameters). "
        f"LoRA r={args.lora_r}, alpha={args.lora_alpha} on {args.targets}. {args.examples_per_batch} examples per "
        f"packed step, {args.baseline_batch} per padded step, drawn from the instruction data (median {lengths[n // 2]} tokens, max {lengths[-1]}; "
        f"{'measured with ' + args.tokenizer if args.tokenizer else f'estimated at {args.chars_per_token} chars/token'}"
        f"). Attention: {args.attn}; gradient checkpointing: {args.gradient_checkpointing}. Measured bf16 matmul rate: "
        f"{rate:.0f} TFLOP/s. MFU = 4 x params x real tokens/s / that rate; spec MFU divides by the GPU's dense "
        f"bf16 peak ({f'{peak:.0f} TFLOP/s' if peak else 'unknown for this GPU; pass --peak_tflops'}), the usual "
        "definition, and reads lower.",
        "",
        "| loop | real tokens/s | padding share | peak memory (GiB) | MFU (measured rate) | MFU (spec peak) |",
        "|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        md.append(
            f"| {name} | {r['real_tokens_per_s']:,.0f} | {r['padding_share']:.0%} | {r['peak_memory_gib']:.1f} | "
            f"{r['mfu']:.1%} | {r['mfu_spec']:.1%} |"
        )
    md.append("")
    if args.max_batch:
        fits, tokens, why = largest_batch(args, rng, device, dtype)
        md.append(
            f"Largest packed batch without gradient checkpointing: {fits} examples (about {tokens:,.0f} tokens) per "
            f"micro-batch; {why}."
        )
        md.append("")
    md.append(
        "Target: 13,000 real tokens/s on one H100 (45% MFU) with r=16 on q,k,v,o, above the 10,700 tokens/s of a "
    )
    md.append("plain padded PEFT loop there.")
    table = "\n".join(md)
    print(table)
    print(json.dumps(results, indent=2, default=float))
    write = not args.smoke and not args.no_write and device.type == "cuda"
    if write:
        write_section("finetune_gpu", table)
    if args.trl:
        trl_table = compare_with_trl(args, rng, device, dtype)
        print(trl_table)
        if write:
            write_section("finetune_gpu_trl", trl_table)
    return 0 if all(math.isfinite(r["real_tokens_per_s"]) for r in results.values()) else 1


def largest_batch(args: argparse.Namespace, rng: random.Random, device: Any, dtype: Any) -> tuple[int, float, str]:
    """The largest ``examples_per_batch`` (doubling from the configured one) whose medsyn step fits in memory.

    Returns:
        ``(examples, tokens per micro-batch, why the search stopped)``.
    """
    import copy

    import torch

    fits, tokens, k = 0, 0.0, args.examples_per_batch
    why = f"the search stopped at --max_batch_limit {args.max_batch_limit} without running out of memory"
    while k <= args.max_batch_limit:
        trial = copy.copy(args)
        trial.examples_per_batch, trial.steps, trial.warmup = k, 1, 1
        examples = make_examples(example_shapes(trial, 2 * k, rng), args.vocab, rng)
        try:
            run_medsyn(trial, examples, device, dtype)
        except torch.OutOfMemoryError:
            why = f"{k} ran out of memory"
            break
        finally:
            gc.collect()
            if device.type == "cuda":
                torch.cuda.empty_cache()
        fits, tokens = k, sum(len(e["input_ids"]) for e in examples) / 2
        logger.info("%d examples per micro-batch fit (%.0f tokens)", k, tokens)
        k *= 2
    return fits, tokens, why


SPEC_BF16_TFLOPS = {
    "H200": 989.0,
    "H100 SXM": 989.0,
    "H100 PCIE": 756.0,
    "H100 NVL": 835.0,
    "A100": 312.0,
    "L40S": 362.0,
}
"""Dense bf16 tensor-core peaks from NVIDIA's data sheets (without sparsity), by a part of the device name."""


def spec_peak_tflops(device: Any) -> float | None:
    """The data-sheet dense bf16 peak of ``device``'s GPU, or ``None`` when it is not in the table (or no GPU)."""
    import torch

    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device).upper()
    if "H100" in name and not any(k in name for k in ("PCIE", "NVL")):
        return SPEC_BF16_TFLOPS["H100 SXM"]  # "NVIDIA H100 80GB HBM3" is the SXM part
    return next((v for k, v in SPEC_BF16_TFLOPS.items() if k in name), None)


def compare_with_trl(args: argparse.Namespace, rng: random.Random, device: Any, dtype: Any) -> str:
    """medsyn's step against trl.SFTTrainer on this shape, interleaved (see benchmarks/finetune_trl.py)."""
    from benchmarks.finetune_trl import compare, markdown, pad_only_tokenizer

    k, steps = args.examples_per_batch, args.trl_steps
    examples = make_examples(example_shapes(args, k * steps, rng), args.vocab, rng)
    results = compare(
        lambda: build_model(args, device, dtype, args.lora_r, args.targets.split(",")),
        examples,
        pad_only_tokenizer(),
        steps,
        k,
        learning_rate=2e-5,
        mixed_precision="bf16",
        warmup=min(3, steps - 1),
        seed=args.seed,
    )
    setup = (
        "## medsyn loop vs trl.SFTTrainer on the LLaMA-7B shape (`benchmarks/finetune_gpu.py --trl`)\n\n"
        f"Random bf16 weights (hidden {args.hidden}, {args.layers} layers, vocab {args.vocab}); LoRA r={args.lora_r} "
        f"on {args.targets}; {steps} steps of {k} examples drawn from the instruction data's lengths; interleaved "
        "step by step in one process; TRL with padding_free=True and completion_only_loss=True."
    )
    return markdown(results, setup)


if __name__ == "__main__":
    sys.exit(main())
