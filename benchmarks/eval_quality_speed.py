"""Speed of the copy/privacy check at scale: 40k synthetic notes against the 4,690 real RuMedTop3 train notes.

    nice python -m benchmarks.eval_quality_speed [--n 40000]

The synthetic notes are the MedSyn paper's 2,378 GPT-4 notes resampled to ``--n``, plus, every 100th note, a
verbatim real note so that the near-copy path is exercised. Reports the index build, the copy search (n-gram
index + LCS with the closest real note) and the whole ``evaluate_quality`` report, and writes the table to
benchmarks/RESULTS.md, section ``eval_quality_speed``.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.results import write_section  # noqa: E402

GPT4 = Path(__file__).resolve().parents[2] / "shared" / "data" / "medsyn_reference" / "gpt4_notes.jsonl"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=40_000)
    parser.add_argument("--source", default=str(GPT4))
    parser.add_argument("--no_write", action="store_true")
    args = parser.parse_args()

    from medsyn.data import load_rumedtop3
    from medsyn.eval.quality import evaluate_quality
    from medsyn.filters.note import CopyIndex
    from medsyn.job import load_notes

    real = load_rumedtop3("train")
    pool = load_notes(args.source)
    rng = random.Random(0)
    synthetic = []
    for i in range(args.n):
        base = real[rng.randrange(len(real))] if i % 100 == 0 else pool[rng.randrange(len(pool))]
        synthetic.append({**base, "id": f"s{i}", "symptoms": None, "example": None})

    start = time.perf_counter()
    index = CopyIndex([n["text"] for n in real])
    t_index = time.perf_counter() - start
    start = time.perf_counter()
    matches = [index.query(n["text"]) for n in synthetic]
    t_search = time.perf_counter() - start
    flagged = sum(1 for m in matches if m and (m.copy_score >= 0.7 or m.lcs_words >= 15))
    start = time.perf_counter()
    report, _ = evaluate_quality(synthetic, real)
    t_full = time.perf_counter() - start

    md = (
        "## Copy and quality checks at scale (`benchmarks/eval_quality_speed.py`)\n\n"
        f"{args.n:,} synthetic notes (GPT-4 reference notes resampled, 1% verbatim real notes) against "
        f"{len(real):,} real train notes, word-trigram index.\n\n"
        "| step | seconds | notes/s |\n| --- | ---: | ---: |\n"
        f"| build the real n-gram index | {t_index:.2f} | |\n"
        f"| copy search + LCS with the closest real note | {t_search:.1f} | {args.n / t_search:,.0f} |\n"
        f"| whole `evaluate_quality` report (incl. realism, self-BLEU on 1,000) | {t_full:.1f} | {args.n / t_full:,.0f} |\n"
        f"\nNear-copies flagged: {flagged:,} (the planted real notes: {len(range(0, args.n, 100)):,}); "
        f"report says {report['copying']['train']['near_copies']:,}."
    )
    print(md)
    if not args.no_write:
        write_section("eval_quality_speed", md)


if __name__ == "__main__":
    main()
