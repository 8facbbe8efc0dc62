"""Throughput of local generation on CPU: batched medsyn backend vs a one-by-one transformers pipeline loop.

    python benchmarks/generate_cpu.py [--tasks 16 --max_new_tokens 64 --batch_sizes 1 4 8 16]

Runs the transformers backend with the default model (Gemma 3 270M, bf16) on the same sampled tasks at each
batch size, then a plain ``transformers.pipeline("text-generation")`` loop over those tasks, one prompt at a time,
with the same sampling parameters. Reports notes/s and generated tokens/s, and writes the table to
benchmarks/RESULTS.md (section ``generate_cpu``).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.results import write_section  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=16)
    parser.add_argument("--max_new_tokens", type=int, default=64)
    parser.add_argument("--batch_sizes", type=int, nargs="+", default=[1, 4, 8, 16])
    parser.add_argument("--template", default="instruction", choices=["instruction", "example_guided"])
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    import torch
    from transformers import pipeline

    from medsyn.backends import GenerationParams, get_backend
    from medsyn.kg import load_graph
    from medsyn.prompts import get_prompt_builder
    from medsyn.sampling import TaskSampler

    torch.set_num_threads(args.threads)
    tasks = TaskSampler(load_graph(), seed=0).sample(args.tasks)
    builder = get_prompt_builder(args.template)
    prompts = [builder.text(t.to_dict()) for t in tasks]
    # No stop strings and no repetition penalty: every system runs the same decoding work per token.
    params = GenerationParams(max_new_tokens=args.max_new_tokens, temperature=0.8, repetition_penalty=1.0, stop=[])
    backend = get_backend("transformers", model=None, adapter=None, dtype="bfloat16", device="cpu")
    backend.load()
    backend.generate(prompts[:1], GenerationParams(max_new_tokens=4, stop=[]), seed=0)  # warm-up

    rows = []
    for bs in args.batch_sizes:
        start, tokens = time.perf_counter(), 0
        for i in range(0, len(prompts), bs):
            tokens += sum(g.completion_tokens for g in backend.generate(prompts[i : i + bs], params, seed=i))
        elapsed = time.perf_counter() - start
        rows.append((f"medsyn backend, batch {bs}", len(prompts) / elapsed, tokens / elapsed, elapsed))
        print(rows[-1], flush=True)

    pipe = pipeline("text-generation", model=backend.model, tokenizer=backend.tokenizer, device="cpu")
    start, tokens = time.perf_counter(), 0
    for i, prompt in enumerate(prompts):
        torch.manual_seed(i)
        out = pipe(
            prompt,
            max_new_tokens=args.max_new_tokens,
            do_sample=True,
            temperature=0.8,
            top_p=0.95,
            top_k=50,
            return_full_text=False,
        )
        tokens += len(backend.tokenizer(out[0]["generated_text"], add_special_tokens=False)["input_ids"])
    elapsed = time.perf_counter() - start
    rows.append(("transformers.pipeline, one by one", len(prompts) / elapsed, tokens / elapsed, elapsed))
    print(rows[-1], flush=True)

    base = rows[-1][1]
    lines = [
        "## Local generation on CPU (`benchmarks/generate_cpu.py`)",
        "",
        f"Gemma 3 270M (bf16), {len(prompts)} sampled tasks, `{args.template}` prompts, up to {args.max_new_tokens} "
        f"new tokens, sampling at T=0.8, {args.threads} threads.",
        "",
        "| system | notes/s | generated tokens/s | seconds | speed-up vs pipeline |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    lines += [f"| {name} | {nps:.3f} | {tps:.1f} | {sec:.1f} | {nps / base:.2f}x |" for name, nps, tps, sec in rows]
    print(write_section("generate_cpu", "\n".join(lines)))


if __name__ == "__main__":
    main()
