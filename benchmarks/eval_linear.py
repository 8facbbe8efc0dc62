"""RuMedBench's linear baseline, run as published, side by side with medsyn's fast linear evaluator on dev.

    nice python -m benchmarks.eval_linear [--plain_json runs/bench/eval_linear_plain.json] [--skip_plain]

The plain recipe is RuMedBench's ``code/linear_models/main.py`` for RuMedTop3: ``TfidfVectorizer(analyzer="char",
ngram_range=(3, 8))`` and ``LogisticRegression(penalty="l2", C=10, multi_class="ovr")`` with its default solver
(lbfgs, 100 iterations); scikit-learn >= 1.7 dropped ``multi_class``, so one-vs-rest is spelt
``OneVsRestClassifier``, which fits the same 105 binary problems. It takes about 16 minutes on 2 cores, so its
result is cached in ``--plain_json`` and reused by later runs that pass ``--skip_plain``.

The fast evaluator is :class:`medsyn.eval.linear.LinearClassifier` with its defaults. Both train on RuMedTop3
train and score dev; the table (acc@1, hit@3, macro-F1, train-and-score seconds) goes into benchmarks/RESULTS.md,
section ``eval_linear``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.results import write_section  # noqa: E402

logger = logging.getLogger("benchmarks.eval_linear")


def run_plain(train: list[dict], dev: list[dict], n_jobs: int = 2) -> dict:
    """Train and score RuMedBench's published linear recipe, unchanged."""
    import numpy as np
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier

    from medsyn.eval.metrics import classification_metrics

    labels = sorted({n["code"] for n in train})
    l2i = {c: i for i, c in enumerate(labels)}
    start = time.perf_counter()
    tfidf = TfidfVectorizer(analyzer="char", ngram_range=(3, 8))
    x = tfidf.fit_transform([n["text"] for n in train])
    y = np.array([l2i[n["code"]] for n in train])
    clf = OneVsRestClassifier(LogisticRegression(penalty="l2", C=10), n_jobs=n_jobs)
    clf.fit(x, y)
    proba = clf.predict_proba(tfidf.transform([n["text"] for n in dev]))
    seconds = time.perf_counter() - start
    metrics = classification_metrics([n["code"] for n in dev], proba, labels)
    return {
        "system": "RuMedBench recipe (scikit-learn, as published)",
        "seconds": seconds,
        **metrics,
        "n_features": int(x.shape[1]),
    }


def run_fast(train: list[dict], dev: list[dict]) -> dict:
    """Train and score medsyn's fast linear evaluator with its defaults."""
    from medsyn.eval.linear import LinearClassifier
    from medsyn.eval.metrics import classification_metrics

    start = time.perf_counter()
    clf = LinearClassifier().fit([n["text"] for n in train], [n["code"] for n in train])
    proba = clf.predict_proba([n["text"] for n in dev])
    seconds = time.perf_counter() - start
    metrics = classification_metrics([n["code"] for n in dev], proba, clf.labels_)
    return {
        "system": "medsyn fast linear (LinearClassifier defaults)",
        "seconds": seconds,
        **metrics,
        "n_features": int(clf.n_features_),
    }


def table(rows: list[dict]) -> str:
    lines = [
        "| system | acc@1 | hit@3 | macro-F1 | train+score (s) | features |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        lines.append(
            f"| {r['system']} | {100 * r['acc@1']:.2f} | {100 * r['hit@3']:.2f} | {100 * r['macro_f1']:.2f} "
            f"| {r['seconds']:.1f} | {r['n_features']:,} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plain_json", default="runs/bench/eval_linear_plain.json", help="cache of the plain run")
    parser.add_argument("--skip_plain", action="store_true", help="reuse --plain_json instead of re-running")
    parser.add_argument("--plain_only", action="store_true", help="run only the plain recipe and cache it")
    parser.add_argument("--no_write", action="store_true", help="do not write benchmarks/RESULTS.md")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    from medsyn.data import load_rumedtop3

    train, dev = load_rumedtop3("train"), load_rumedtop3("dev")
    plain_path = Path(args.plain_json)
    if args.skip_plain:
        plain = json.loads(plain_path.read_text(encoding="utf-8"))
    else:
        logger.info("running the plain RuMedBench recipe (about 16 minutes on 2 cores)")
        plain = run_plain(train, dev)
        plain_path.parent.mkdir(parents=True, exist_ok=True)
        plain_path.write_text(json.dumps(plain, indent=2), encoding="utf-8")
    logger.info("plain: %s", plain)
    if args.plain_only:
        return
    fast = run_fast(train, dev)
    logger.info("fast: %s", fast)
    rows = [plain, fast]
    md = (
        "## Linear ICD-10 classifier: RuMedBench recipe vs medsyn (`benchmarks/eval_linear.py`)\n\n"
        "RuMedTop3, train 4,690 → dev 848 notes, 105 codes. Times are one train-and-score (vectorise, fit, "
        f"predict dev) on {os.cpu_count()} cores.\n\n" + table(rows) + "\n\n"
        f"Gap (fast − plain): acc@1 {100 * (fast['acc@1'] - plain['acc@1']):+.2f}, "
        f"hit@3 {100 * (fast['hit@3'] - plain['hit@3']):+.2f} points; "
        f"speed-up ×{plain['seconds'] / fast['seconds']:.0f}."
    )
    print(md)
    if not args.no_write:
        write_section("eval_linear", md)


if __name__ == "__main__":
    main()
