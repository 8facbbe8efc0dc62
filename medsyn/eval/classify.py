"""Run the code-prediction experiment: train per setting and seed, score dev, summarise overall and on hard codes.

:func:`run_experiment` trains one classifier per (setting, seed) and keeps the dev scores; :func:`summarise` turns
them into metrics (mean ± std over seeds) overall, on the rarest quartile of codes and on the codes the all-real
baseline recalls worst, plus each code's recall gain over the all-real baseline.

The worst-recalled codes are found by cross-validation on train (:func:`cv_low_recall_codes`), never on the dev
notes they are scored on: picking them on dev selects codes whose dev notes happened to be hard for the baseline,
and any other model then gains there by regression to the mean.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from medsyn.errors import MedsynError
from medsyn.eval.metrics import classification_metrics, per_code_recall, top_k
from medsyn.eval.upsample import Setting, build_training_set, lowest_recall_codes, rarest_codes

__all__ = [
    "RunResult",
    "make_classifier",
    "run_experiment",
    "cv_low_recall_codes",
    "fit_and_score",
    "summarise",
    "paired_bootstrap",
    "METRICS",
    "SUBSETS",
]

logger = logging.getLogger(__name__)

Note = dict[str, str]
METRICS = ("acc@1", "hit@3", "macro_f1")
SUBSETS = ("overall", "rare_quartile", "low_recall")


@dataclass
class RunResult:
    """One trained classifier's dev scores."""

    setting: Setting
    seed: int
    n_real: int
    n_synthetic: int
    seconds: float
    labels: list[str]
    scores: np.ndarray = field(repr=False)


def make_classifier(model: str, linear_options: dict | None = None, transformer_options: dict | None = None):
    """A fresh classifier: ``"linear"`` for the fast tf-idf baseline, else an HF encoder id or path."""
    if model == "linear":
        from medsyn.filters.linear import LinearClassifier

        return LinearClassifier(**(linear_options or {}))
    from medsyn.eval.transformer import TransformerClassifier

    return TransformerClassifier(model=model, **(transformer_options or {}))


def run_experiment(
    train: Sequence[Note],
    dev: Sequence[Note],
    settings: Sequence[Setting],
    seeds: Sequence[int],
    new_classifier: Callable[[int], object],
    synthetic: Sequence[Note] | dict[str, Sequence[Note]] = (),
    deterministic: bool = False,
    cache_dir: str | Path | None = None,
) -> list[RunResult]:
    """Train and score one classifier per setting and seed.

    Args:
        train: the real training notes.
        dev: the notes to score.
        settings: the training-set recipes.
        seeds: the seeds; each drives the subsampling and the classifier's own seed.
        new_classifier: ``seed -> classifier`` with ``fit(texts, labels)``, ``decision_function(texts)`` and
            ``labels_``.
        synthetic: the pool of synthetic notes, or ``{name: pool}`` matched to each setting's ``source``; notes of
            codes absent from ``train`` are dropped.
        deterministic: the classifier gives the same model for the same data whatever its seed (the linear one),
            so identical training sets are fitted once.
        cache_dir: with ``deterministic``, a folder where each fit's dev scores are kept, keyed by the classifier's
            options and its exact training and scored notes: a later run (more sources, more seeds) reuses them.

    Returns:
        One :class:`RunResult` per (setting, seed), settings outer.
    """
    from tqdm.auto import tqdm

    known = {n["code"] for n in train}
    named = synthetic if isinstance(synthetic, dict) else {None: synthetic}
    pools: dict[str | None, list[Note]] = {}
    for name, notes in named.items():
        pools[name] = [n for n in notes if n["code"] in known]
        if len(pools[name]) < len(notes):
            logger.info(
                "%s: dropped %d synthetic notes whose code has no real training note",
                name or "synthetic", len(notes) - len(pools[name]),
            )  # fmt: skip
    for s in settings:
        if s.uses_synthetic and not pools.get(s.source if isinstance(synthetic, dict) else None):
            raise MedsynError(f"'{s.name}' adds synthetic notes but none were given; pass --synthetic PATH")
    cache: dict[tuple[str, ...], tuple[list[str], np.ndarray, float]] = {}
    results = []
    texts_dev = [n["text"] for n in dev]
    jobs = [(s, seed) for s in settings for seed in seeds]
    for setting, seed in tqdm(jobs, desc="train and score", unit="run"):
        pool = pools.get(setting.source if isinstance(synthetic, dict) else None, [])
        notes, n_syn = build_training_set(train, pool, setting, seed)
        key = tuple(n["id"] + "\x00" + n["text"] for n in notes)
        if deterministic and key in cache:
            labels, scores, seconds = cache[key]
        else:
            texts, codes = [n["text"] for n in notes], [n["code"] for n in notes]
            labels, scores, seconds = fit_and_score(
                new_classifier(seed), texts, codes, texts_dev, cache_dir if deterministic else None
            )
            cache[key] = (labels, scores, seconds)
        m = classification_metrics([n["code"] for n in dev], scores, labels)
        logger.info(
            "%s seed %d: %d real + %d synthetic, acc@1 %.2f hit@3 %.2f macro-F1 %.2f (%.1fs)",
            setting.name, seed, len(notes) - n_syn, n_syn, 100 * m["acc@1"], 100 * m["hit@3"],
            100 * m["macro_f1"], seconds,
        )  # fmt: skip
        if setting.uses_synthetic and n_syn == 0:
            logger.warning("%s seed %d: 0 synthetic notes were added; this run is real-only", setting.name, seed)
        results.append(RunResult(setting, seed, len(notes) - n_syn, n_syn, seconds, labels, scores))
    return results


def _options_key(clf: object) -> str:
    """The classifier's options without its seed (which a deterministic classifier does not depend on)."""
    config = getattr(clf, "config", None)
    if config is not None and dataclasses.is_dataclass(config):
        return json.dumps({k: v for k, v in dataclasses.asdict(config).items() if k != "seed"}, sort_keys=True)
    return type(clf).__name__


def fit_and_score(
    clf: object,
    texts: Sequence[str],
    codes: Sequence[str],
    eval_texts: Sequence[str],
    cache_dir: str | Path | None = None,
) -> tuple[list[str], np.ndarray, float]:
    """Fit ``clf`` and score ``eval_texts``; ``(labels, scores, seconds)``, read from ``cache_dir`` when it was done.

    The cache key is a hash of the classifier's options, the training notes with their codes and the scored notes,
    so a cached entry is only ever reused for the very same fit.
    """
    path = None
    if cache_dir is not None:
        digest = hashlib.sha256(_options_key(clf).encode())
        for part in (texts, codes, eval_texts):
            digest.update("\x1e".join(part).encode())
            digest.update(b"\x1d")
        path = Path(cache_dir) / f"{digest.hexdigest()[:24]}.npz"
        if path.exists():
            with np.load(path) as cached:
                return [str(x) for x in cached["labels"]], cached["scores"], float(cached["seconds"])
    start = time.perf_counter()
    clf.fit(list(texts), list(codes))
    scores = np.asarray(clf.decision_function(list(eval_texts)))
    labels, seconds = list(clf.labels_), time.perf_counter() - start
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npz")
        np.savez_compressed(tmp, labels=np.array(labels), scores=scores, seconds=seconds)
        tmp.replace(path)
    return labels, scores, seconds


def cv_low_recall_codes(
    train: Sequence[Note],
    new_classifier: Callable[[int], object],
    quantile: float = 0.25,
    folds: int = 5,
    seed: int = 0,
    cache_dir: str | Path | None = None,
) -> list[str]:
    """The ``quantile`` share of codes that the all-real classifier recalls worst, by cross-validation on train.

    Each note of ``train`` is scored by a classifier fitted on the other folds (stratified by code); per-code top-1
    recall over these out-of-fold predictions ranks the codes.

    Args:
        train: the real training notes.
        new_classifier: ``seed -> classifier``, as for :func:`run_experiment`.
        quantile: the share of codes to return.
        folds: the number of folds (a code with fewer notes than folds still gets one per fold it has).
        seed: the seed of the fold split and the classifiers.
        cache_dir: where fits are cached (see :func:`fit_and_score`); for deterministic classifiers only.
    """
    from sklearn.model_selection import StratifiedKFold

    codes = np.array([n["code"] for n in train])
    texts = [n["text"] for n in train]
    counts = Counter(codes.tolist())
    # StratifiedKFold needs every code in every fold; the rare remainder is split by hand below.
    n_splits = max(2, min(folds, min(counts.values())))
    pred = np.empty(len(train), dtype=object)
    split = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed).split(texts, codes)
    for k, (fit_idx, test_idx) in enumerate(split):
        labels, scores, _ = fit_and_score(
            new_classifier(seed), [texts[i] for i in fit_idx], codes[fit_idx].tolist(),
            [texts[i] for i in test_idx], cache_dir,
        )  # fmt: skip
        pred[test_idx] = [labels[j] for j in np.argmax(scores, axis=1)]
        logger.info("low-recall codes: fold %d/%d done", k + 1, n_splits)
    recall = per_code_recall(codes.tolist(), pred.tolist())
    return lowest_recall_codes(recall, quantile)


def _mean_std(values: list[float]) -> dict[str, float]:
    arr = np.asarray(values, dtype=float)
    return {"mean": float(arr.mean()), "std": float(arr.std(ddof=1)) if len(arr) > 1 else 0.0}


def _per_note_hits(r: RunResult, y_dev: list[str]) -> np.ndarray:
    """``(n_notes, 2)``: whether each note's true code is ranked first, and within the first three."""
    ranked = top_k(r.scores, r.labels, 3)
    return np.array([[t == rk[0], t in rk] for t, rk in zip(y_dev, ranked)], dtype=float)


def paired_bootstrap(gain: np.ndarray, n_boot: int = 2000, seed: int = 0, alpha: float = 0.05) -> dict[str, float]:
    """Mean of per-note gains with a percentile bootstrap interval over notes (notes resampled, pairs kept)."""
    if len(gain) == 0:
        return {"diff": 0.0, "lo": 0.0, "hi": 0.0}
    rng = np.random.default_rng(seed)
    means = gain[rng.integers(0, len(gain), size=(n_boot, len(gain)))].mean(axis=1)
    lo, hi = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    return {"diff": float(gain.mean()), "lo": float(lo), "hi": float(hi)}


def summarise(
    results: Sequence[RunResult],
    train: Sequence[Note],
    dev: Sequence[Note],
    baseline: Setting | None = None,
    quantile: float = 0.25,
    low_recall: Sequence[str] | None = None,
) -> dict:
    """Metrics per setting (mean ± std over seeds) overall and on both hard-code definitions, and per-code gains.

    Args:
        low_recall: the low-recall codes, chosen without dev (:func:`cv_low_recall_codes`). When ``None`` they
            come from the ``baseline`` runs' recall on dev itself, which biases gains there upward; the summary's
            ``low_recall_source`` says which.

    Returns:
        A JSON-serialisable dict: ``hard_codes``, ``settings`` (one entry per setting with ``runs`` and
        ``summary[subset][metric] = {mean, std}``) and ``per_code`` (real train count, baseline recall and the
        recall of each setting that adds synthetic notes).
    """
    baseline = baseline or Setting(1.0, 0.0)
    y_dev = [n["code"] for n in dev]
    train_counts = Counter(n["code"] for n in train)
    by_setting: dict[Setting, list[RunResult]] = {}
    for r in results:
        by_setting.setdefault(r.setting, []).append(r)
    if not by_setting:
        raise MedsynError("no runs to summarise")
    base = baseline if baseline in by_setting else next(iter(by_setting))

    def recalls(runs: list[RunResult]) -> dict[str, float]:
        per_run = [per_code_recall(y_dev, [t[0] for t in top_k(r.scores, r.labels, 1)]) for r in runs]
        return {c: float(np.mean([p[c] for p in per_run])) for c in per_run[0]}

    base_recall = recalls(by_setting[base])
    base_hits = np.mean([_per_note_hits(r, y_dev) for r in by_setting[base]], axis=0)
    hard = {
        "rare_quartile": rarest_codes([n["code"] for n in train], quantile),
        "low_recall": sorted(low_recall) if low_recall is not None else lowest_recall_codes(base_recall, quantile),
    }
    warnings = [
        f"'{s.name}' added 0 synthetic notes in {sum(r.n_synthetic == 0 for r in runs)} of {len(runs)} runs: "
        "those runs are real-only (no synthetic note of a code that needs one?)"
        for s, runs in by_setting.items()
        if s.uses_synthetic and any(r.n_synthetic == 0 for r in runs)
    ]
    out_settings = []
    per_code: dict[str, dict] = {
        c: {"train_count": train_counts.get(c, 0), "baseline_recall": base_recall[c]} for c in sorted(base_recall)
    }
    for setting, runs in by_setting.items():
        run_rows = []
        for r in runs:
            row = {"seed": r.seed, "n_real": r.n_real, "n_synthetic": r.n_synthetic, "seconds": r.seconds}
            row["overall"] = classification_metrics(y_dev, r.scores, r.labels)
            for name, codes in hard.items():
                row[name] = classification_metrics(y_dev, r.scores, r.labels, codes)
            run_rows.append(row)
        summary = {subset: {m: _mean_std([row[subset][m] for row in run_rows]) for m in METRICS} for subset in SUBSETS}
        # Gain over the baseline per dev note (seed-averaged), with a paired bootstrap 95% interval.
        gain = np.mean([_per_note_hits(r, y_dev) for r in runs], axis=0) - base_hits
        vs_base = {}
        for subset in SUBSETS:
            codes = None if subset == "overall" else set(hard[subset])
            mask = np.array([codes is None or t in codes for t in y_dev])
            vs_base[subset] = {m: paired_bootstrap(gain[mask, j]) for j, m in enumerate(("acc@1", "hit@3"))}
        out_settings.append(
            {
                "name": setting.name,
                "real": setting.real,
                "synthetic": setting.synthetic,
                "fill_to": setting.fill_to,
                "source": setting.source,
                "n_real": float(np.mean([r.n_real for r in runs])),
                "n_synthetic": float(np.mean([r.n_synthetic for r in runs])),
                "seconds": float(np.mean([r.seconds for r in runs])),
                "summary": summary,
                "vs_baseline": vs_base,
                "runs": run_rows,
            }
        )
        if setting != base:
            rec = recalls(runs)
            for c in per_code:
                per_code[c][setting.name] = rec[c]
    return {
        "baseline": base.name,
        "hard_codes": hard,
        "hard_codes_quantile": quantile,
        "low_recall_source": "train cross-validation" if low_recall is not None else "dev (biased)",
        "warnings": warnings,
        "settings": out_settings,
        "per_code": per_code,
    }


def eval_halves(notes: Sequence[dict]) -> dict[str, list[dict]]:
    """Two fixed halves of an evaluation set: ``select`` to choose recipes and thresholds on, ``report`` to report on.

    Within each code, notes are ordered by a hash of their id and dealt alternately, so both halves hold every code
    with two or more notes, and the split never depends on anything a recipe could change. A note in the
    ``report`` half is never seen while choosing.
    """
    by_code: dict[str, list[dict]] = {}
    for note in notes:
        by_code.setdefault(note["code"], []).append(note)
    halves: dict[str, list[dict]] = {"select": [], "report": []}
    for code in sorted(by_code):
        ordered = sorted(by_code[code], key=lambda n: hashlib.sha256(str(n["id"]).encode("utf-8")).hexdigest())
        for i, note in enumerate(ordered):
            halves["select" if i % 2 == 0 else "report"].append(note)
    return halves
