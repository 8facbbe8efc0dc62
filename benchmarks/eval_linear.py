"""Linear ICD-10 classifiers side by side, in one run: accuracy, time and peak memory at 5k and 40k training notes.

    nice python -m benchmarks.eval_linear [--sizes 5000 40000] [--timeout 900] [--no_write] [--fresh]

Systems, all on the same features where they share them:

- **RuMedBench recipe**, as its ``code/linear_models/main.py`` runs RuMedTop3: ``TfidfVectorizer(analyzer="char",
  ngram_range=(3, 8))`` and a one-vs-rest ``LogisticRegression(C=10)`` (lbfgs; scikit-learn >= 1.7 spells
  one-vs-rest ``OneVsRestClassifier``, which fits the same 105 binary problems);
- scikit-learn's ``SGDClassifier(loss="log_loss")`` and ``LinearSVC`` on the same tf-idf features;
- medsyn's :class:`medsyn.filters.linear.LinearClassifier` with its defaults (hashed tf-idf, Gram-matrix L-BFGS).

Training sets: RuMedTop3 train (4,690 notes) plus the MedSyn paper's GPT-4 notes (packaged), drawn with
replacement to the requested size per code share; every system scores RuMedTop3 dev (848 notes). Each (system,
size) runs in its own process, so its peak resident memory is its own; a run past ``--timeout`` seconds is stopped
and reported as such. A system whose estimated memory exceeds what the machine has free is skipped and says why.
Each finished row is saved to ``--json`` at once; running the command again reuses the rows there and runs only
what is missing or was stopped (``--fresh`` runs everything again).
The table goes into benchmarks/RESULTS.md, section ``eval_linear``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.results import write_section  # noqa: E402

logger = logging.getLogger("benchmarks.eval_linear")

SYSTEMS = {
    "rumedbench": "RuMedBench recipe: tf-idf char 3-8 + OvR logistic regression, C=10",
    "sgd": "same tf-idf + SGDClassifier(log_loss)",
    "linearsvc": "same tf-idf + LinearSVC",
    "medsyn": "medsyn LinearClassifier (defaults)",
}


def training_notes(size: int, seed: int = 0) -> list[dict]:
    """RuMedTop3 train, then GPT-4 reference notes and repeats drawn at random until ``size`` notes."""
    import random

    from medsyn.data import load_reference, load_rumedtop3

    train = load_rumedtop3("train")
    if size <= len(train):
        return random.Random(seed).sample(train, size)
    pool = train + load_reference("gpt4")
    return train + random.Random(seed).choices(pool, k=size - len(train))


def _tfidf_fit(notes: list[dict], dev: list[dict], clf, proba: bool):
    import numpy as np
    from sklearn.feature_extraction.text import TfidfVectorizer

    labels = sorted({n["code"] for n in notes})
    index = {c: i for i, c in enumerate(labels)}
    tfidf = TfidfVectorizer(analyzer="char", ngram_range=(3, 8))
    x = tfidf.fit_transform([n["text"] for n in notes])
    clf.fit(x, np.array([index[n["code"]] for n in notes]))
    xd = tfidf.transform([n["text"] for n in dev])
    return (clf.predict_proba(xd) if proba else clf.decision_function(xd)), labels, int(x.shape[1])


def run_one(system: str, size: int) -> dict:
    """Train one system on ``size`` notes and score dev; returns metrics, seconds and this process's peak RSS."""
    from medsyn.data import load_rumedtop3
    from medsyn.eval.metrics import classification_metrics

    notes, dev = training_notes(size), load_rumedtop3("dev")
    start = time.perf_counter()
    if system == "rumedbench":
        from sklearn.linear_model import LogisticRegression
        from sklearn.multiclass import OneVsRestClassifier

        clf = OneVsRestClassifier(LogisticRegression(C=10), n_jobs=2)
        scores, labels, n_features = _tfidf_fit(notes, dev, clf, proba=True)
    elif system == "sgd":
        from sklearn.linear_model import SGDClassifier

        clf = SGDClassifier(loss="log_loss", alpha=1e-5, max_iter=30, tol=1e-4, random_state=0, n_jobs=2)
        scores, labels, n_features = _tfidf_fit(notes, dev, clf, proba=False)
    elif system == "linearsvc":
        from sklearn.svm import LinearSVC

        scores, labels, n_features = _tfidf_fit(notes, dev, LinearSVC(C=1.0), proba=False)
    elif system == "medsyn":
        from medsyn.filters.linear import LinearClassifier

        model = LinearClassifier().fit([n["text"] for n in notes], [n["code"] for n in notes])
        scores, labels, n_features = (
            model.decision_function([n["text"] for n in dev]),
            model.labels_,
            model.n_features_,
        )
    else:
        raise ValueError(f"unknown system {system!r}; choose from {sorted(SYSTEMS)}")
    seconds = time.perf_counter() - start
    metrics = classification_metrics([n["code"] for n in dev], scores, labels)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "system": system,
        "size": size,
        "seconds": seconds,
        "peak_mb": peak_mb,
        "n_features": n_features,
        **metrics,
    }


def _available_mb() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / 1024
    return float("inf")


def _estimated_mb(system: str, size: int) -> float:
    """A rough peak for the dense parts: medsyn holds about 3 copies of an n × basis matrix."""
    if system == "medsyn":
        return 3 * size * min(size, 12000) * 8 / 2**20 + 1500
    return 1500 + size * 0.05  # sparse tf-idf and its vocabulary: about 50 kB per note, plus the models


def run_isolated(system: str, size: int, timeout: float) -> dict:
    """:func:`run_one` in a child process (its own peak memory), stopped after ``timeout`` seconds."""
    need, free = _estimated_mb(system, size), _available_mb()
    if need > 0.7 * free:
        return {"system": system, "size": size, "skipped": f"needs about {need:,.0f} MB, {free:,.0f} MB free"}
    cmd = [sys.executable, "-m", "benchmarks.eval_linear", "--one", system, "--size", str(size)]
    start = time.perf_counter()
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=True)
    except subprocess.TimeoutExpired:
        return {"system": system, "size": size, "skipped": f"stopped after {timeout:.0f} s"}
    except subprocess.CalledProcessError as err:
        return {"system": system, "size": size, "skipped": f"failed: {err.stderr.strip().splitlines()[-1]}"}
    row = json.loads(out.stdout.strip().splitlines()[-1])
    logger.info("%s at %d notes: %s (%.0f s with start-up)", system, size, row, time.perf_counter() - start)
    return row


def table(rows: list[dict]) -> str:
    lines = [
        "| system | training notes | acc@1 | hit@3 | macro-F1 | train+score (s) | peak memory (MB) | features |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        name = SYSTEMS[r["system"]]
        if "skipped" in r:
            lines.append(f"| {name} | {r['size']:,} | | | | {r['skipped']} | | |")
            continue
        lines.append(
            f"| {name} | {r['size']:,} | {100 * r['acc@1']:.2f} | {100 * r['hit@3']:.2f} | {100 * r['macro_f1']:.2f} "
            f"| {r['seconds']:.1f} | {r['peak_mb']:,.0f} | {r['n_features']:,} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[5000, 40000], help="training-set sizes")
    parser.add_argument("--systems", nargs="+", default=list(SYSTEMS), choices=list(SYSTEMS), help="what to run")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per (system, size) at most")
    parser.add_argument("--json", default="runs/bench/eval_linear.json", help="where the rows are saved")
    parser.add_argument("--no_write", action="store_true", help="do not write benchmarks/RESULTS.md")
    parser.add_argument("--fresh", action="store_true", help="ignore the rows saved in --json")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:  # the child process of run_isolated
        print(json.dumps(run_one(args.one, args.size)))
        return
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    saved_path = Path(args.json)
    saved = {} if args.fresh or not saved_path.exists() else json.loads(saved_path.read_text(encoding="utf-8"))
    saved_path.parent.mkdir(parents=True, exist_ok=True)
    rows = []
    for size in args.sizes:
        for system in args.systems:
            key = f"{system}@{size}"
            if key not in saved or "skipped" in saved[key]:
                saved[key] = run_isolated(system, size, args.timeout)
                saved_path.write_text(json.dumps(saved, indent=2), encoding="utf-8")
            rows.append(saved[key])
    md = (
        "## Linear ICD-10 classifiers side by side (`benchmarks/eval_linear.py`)\n\n"
        "Scored on RuMedTop3 dev (848 notes, 105 codes). Training sets: RuMedTop3 train (a random 5,000 is all "
        "4,690 of it plus GPT-4 reference notes; 40,000 adds GPT-4 notes and repeats drawn at random). Each run is "
        f"one train-and-score (vectorise, fit, predict dev) in its own process on {os.cpu_count()} cores shared "
        f"with other work, stopped after {args.timeout:.0f} s; peak memory is that process's maximum resident set.\n\n"
        + table(rows)
    )
    print(md)
    if not args.no_write:
        write_section("eval_linear", md)


if __name__ == "__main__":
    main()
