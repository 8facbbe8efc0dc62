"""The release's in-process decoding on CPU: ``generate`` against medsyn's loop that drops each finished note.

    python benchmarks/generate_decode.py [--config recipes/gemma-270m/release-v2.yaml --tasks 32 --batch_size 16]

Both systems run the recipe's model, adapter, narrowed vocabulary and sampling parameters (stop strings and
repetition penalty included) on the recipe's first tasks, with each task's first-try request seed. ``generate``
samples with medsyn's per-row sampler and goes on computing a batch's finished notes until its longest one ends;
the loop drops a note from the batch when it ends. Reports notes/s, the share of identical notes and the token
counts, and writes the table to benchmarks/RESULTS.md (section ``generate_decode``).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.results import write_section  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="recipes/gemma-270m/release-v2.yaml")
    parser.add_argument("--tasks", type=int, default=32)
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    import torch

    from medsyn.backends import GenerationParams
    from medsyn.backends.base import clean_generation, request_seed
    from medsyn.backends.transformers import _decode_rows
    from medsyn.config import parse_args
    from medsyn.generator import NoteGenerator
    from medsyn.pipeline import GenerateConfig

    torch.set_num_threads(args.threads)
    config, params = parse_args([GenerateConfig, GenerationParams], ["--config", args.config])
    generator = NoteGenerator(config, params).load()
    backend = generator.backend
    tasks = generator.sampler.sample(args.tasks)
    prompts = [generator.prompt(t) for t in tasks]
    seeds = [request_seed(config.seed, t.id, 1) for t in tasks]
    backend.generate(prompts[:1], params, seeds=seeds[:1])  # warm-up (and the stop criteria, built once)

    def run_generate(batch: object, part: list[int]) -> list[list[int]]:
        out = backend._run(batch, backend._sampling(params, part), params)[:, batch["input_ids"].shape[1] :]
        return [[t for t in row if t != backend.tokenizer.pad_token_id] for row in out.tolist()]

    def run_loop(batch: object, part: list[int]) -> list[list[int]]:
        return _decode_rows(backend.model, backend.tokenizer, batch, params, part, backend._eos_ids())

    results = {}
    for name, run in (("transformers generate", run_generate), ("medsyn loop, finished notes dropped", run_loop)):
        start, rows = time.perf_counter(), []
        for i in range(0, len(prompts), args.batch_size):
            rows += run(backend._encode(prompts[i : i + args.batch_size]), seeds[i : i + args.batch_size])
        results[name] = (time.perf_counter() - start, rows)
        print(name, f"{results[name][0]:.1f} s", flush=True)

    def text(row: list[int]) -> str:
        return clean_generation(backend.tokenizer.decode(row, skip_special_tokens=True), params.stop)[0]

    (t_gen, ref), (t_loop, own) = results.values()
    same = sum(text(a) == text(b) for a, b in zip(ref, own))
    lengths = [len(r) for r in own]
    lines = [
        "## The release's decoding on CPU (`benchmarks/generate_decode.py`)",
        "",
        f"`{args.config}`: {backend.label()}, vocabulary `{config.vocab}`, batches of {args.batch_size}, up to "
        f"{params.max_new_tokens} new tokens at T={params.temperature}, top-k {params.top_k}, top-p {params.top_p}, "
        f"repetition penalty {params.repetition_penalty}, stop strings {params.stop}; the recipe's first "
        f"{len(prompts)} tasks with their first-try seeds, {args.threads} threads. The notes run to a median of "
        f"{statistics.median(lengths):.0f} tokens (longest {max(lengths)}). {same} of {len(prompts)} notes are the "
        "same text in both.",
        "",
        "| system | notes/s | seconds | speed-up |",
        "| --- | ---: | ---: | ---: |",
        f"| transformers generate, per-row sampler | {len(prompts) / t_gen:.3f} | {t_gen:.1f} | 1.00x |",
        f"| medsyn loop, finished notes dropped | {len(prompts) / t_loop:.3f} | {t_loop:.1f} | {t_gen / t_loop:.2f}x |",
    ]
    print(write_section("generate_decode", "\n".join(lines)))


if __name__ == "__main__":
    main()
