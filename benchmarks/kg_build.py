"""Time and peak memory of ``medsyn kg build --notes`` on a user-sized corpus, made by resampling RuMedTop3 train.

A hospital export is larger than RuMedTop3's 4,690 train notes. This benchmark writes a CSV of ``--notes`` notes
(default 40,000) the way such an export looks (``;``-separated, a BOM, Russian column names, full codes), each
note a new one made from real notes of one category: the sentences of one real note, shuffled, and one sentence of
another note of the same category, with a full code drawn among the category's ICD-10 codes. Then it runs the
command a user runs, ``medsyn kg build --notes FILE``, in a child process and reports its wall time, CPU time and
peak RSS, next to the packaged 4,690-note build.

    python benchmarks/kg_build.py [--notes 40000]

Results go to benchmarks/RESULTS.md (section `kg_build`).
"""

from __future__ import annotations

import argparse
import csv
import random
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.results import write_section  # noqa: E402

_CLI = "import sys; from medsyn.cli import main; sys.exit(main(sys.argv[1:]))"
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def make_corpus(path: Path, n: int, seed: int = 0) -> int:
    """Write ``n`` distinct resampled notes to ``path`` (see the module); returns the number of categories."""
    from medsyn.data import load_rumedtop3
    from medsyn.icd10 import load_icd10

    icd = load_icd10()
    rng = random.Random(seed)
    train = load_rumedtop3("train")
    by_code: dict[str, list[list[str]]] = {}
    for note in train:
        by_code.setdefault(note["code"], []).append(_SENTENCE.split(note["text"]))
    codes = sorted(by_code)
    seen: set[str] = set()
    with path.open("w", encoding="utf-8-sig", newline="") as fh:
        out = csv.writer(fh, delimiter=";")
        out.writerow(["ИД", "Пол", "Возраст", "Жалобы", "МКБ"])
        while len(seen) < n:
            code = rng.choice(codes)  # uniform over categories: rare codes get more notes than in RuMedTop3
            base, other = rng.choice(by_code[code]), rng.choice(by_code[code])
            sentences = list(base)
            rng.shuffle(sentences)
            text = " ".join([*sentences, rng.choice(other)])
            if text in seen:
                continue
            seen.add(text)
            full = rng.choice(icd.codes_in(code))
            out.writerow([f"N{len(seen):06d}", rng.choice("мж"), rng.randint(18, 90), text, full])
    return len(codes)


def run_build(args: list[str]) -> dict[str, float]:
    """Run ``medsyn kg build ARGS`` in a child; its wall and CPU seconds and peak RSS."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", _CLI, "--log-level", "WARNING", "kg", "build", *args],
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(done.stderr[-2000:])
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return {"wall_s": wall, "cpu_s": cpu, "peak_rss_mb": after.ru_maxrss / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notes", type=int, default=40_000, help="notes in the resampled corpus")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        corpus = tmp / "export.csv"
        t = time.perf_counter()
        n_cat = make_corpus(corpus, args.notes)
        made = time.perf_counter() - t
        size_mb = corpus.stat().st_size / 1e6
        default = run_build(["--out", str(tmp / "default.json")])
        own = run_build(["--notes", str(corpus), "--notes_name", "export", "--out", str(tmp / "own.json")])
        graph_mb = (tmp / "own.json").stat().st_size / 1e6

        from medsyn.kg import MedicalKG

        kg = MedicalKG.load(tmp / "own.json")
        stats = kg.stats()
        codes = len(kg.corpus["rare_codes"]), kg.corpus["codes"]
    rows = [
        ("packaged RuMedTop3 train", "4,690", default),
        (f"resampled export, {size_mb:.1f} MB CSV", f"{args.notes:,}", own),
    ]
    table = "\n".join(
        f"| {name} | {n} | {r['wall_s']:.1f} | {r['cpu_s']:.1f} | {r['peak_rss_mb']:,.0f} |" for name, n, r in rows
    )
    markdown = f"""## Building the graph of a user's notes (`benchmarks/kg_build.py`)

`medsyn kg build --notes FILE` in a child process, on a CSV made by resampling RuMedTop3 train ({args.notes:,} distinct
notes over its {n_cat} categories, each the shuffled sentences of one real note plus one sentence of another note of
the same category, with a full code drawn among the category's codes; written in {made:.0f} s). The run reads and
validates the file, mines the lexicon, extracts symptoms note by note, links per-code and per-category edges, and
writes the graph file.

| corpus | notes | wall s | CPU s | peak RSS MB |
| --- | ---: | ---: | ---: | ---: |
{table}

The {args.notes:,}-note graph: {stats["symptoms"]:,} symptoms, {stats["example_notes"]:,} example notes,
{codes[1]:,} codes ({codes[0]:,} with fewer than 3 notes), a {graph_mb:.0f} MB file. The graph keeps every note's
text (the style examples), so its file and the build's memory grow with the corpus.
"""
    print(markdown)
    write_section("kg_build", markdown)


if __name__ == "__main__":
    main()
