"""What a reader of the notes sees, measured side by side with real notes: realism, label fidelity, contradictions.

* **Realism**: a two-sample test. A char n-gram classifier (:class:`~medsyn.filters.linear.LinearClassifier`) learns
  to tell a set's notes from real notes, in ``folds``-fold cross-validation on equal-sized samples; its ROC AUC on
  the held-out folds is 0.5 when the set cannot be told from real notes and 1.0 when every note gives itself away.
* **Label fidelity**: a classifier trained on real notes alone scores each note; the share whose code is in its
  top 1 / 3 / 10 says how much of the code a note carries.
* **Contradiction rate**: the share of notes with any :class:`~medsyn.filters.clinical.ClinicalCheck` finding (the
  sex and age checks where a note's patient is known).

:func:`reader_measures` scores several sets against one real training set, so the rows compare; :func:`plot_reader`
draws them.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "contradiction_rate",
    "label_fidelity",
    "plot_reader",
    "reader_measures",
    "reader_sets",
    "realism_auc",
]

TOP_K = (1, 3, 10)


def realism_auc(texts: Sequence[str], real: Sequence[str], folds: int = 5, seed: int = 0, most: int = 2000) -> float:
    """The cross-validated ROC AUC of a classifier telling ``texts`` from ``real`` (0.5: indistinguishable)."""
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold

    from medsyn.filters.linear import LinearClassifier

    rng = random.Random(seed)
    m = min(len(texts), len(real), most)
    if m < folds:
        return float("nan")
    sample = rng.sample(list(real), m) + rng.sample(list(texts), m)
    labels = np.array([0] * m + [1] * m)
    scores = np.zeros(2 * m)
    for train, test in StratifiedKFold(folds, shuffle=True, random_state=seed).split(sample, labels):
        clf = LinearClassifier(max_iter=40).fit([sample[i] for i in train], [str(labels[i]) for i in train])
        column = clf.labels_.index("1")
        scores[test] = clf.decision_function([sample[i] for i in test])[:, column]
    return float(roc_auc_score(labels, scores))


def label_fidelity(notes: Sequence[dict], classifier: Any) -> dict[str, float]:
    """The share (%) of ``notes`` whose code a real-notes classifier ranks in its top 1, 3 and 10."""
    from medsyn.filters.consistency import code_ranks

    if not notes:
        return {f"top{k}": float("nan") for k in TOP_K}
    ranks = np.array(
        code_ranks(
            classifier.decision_function([n["text"] for n in notes]), classifier.labels_, [n["code"] for n in notes]
        )
    )
    return {f"top{k}": float(100 * np.mean((ranks >= 1) & (ranks <= k))) for k in TOP_K}


def contradiction_rate(notes: Sequence[dict]) -> float:
    """The share (%) of ``notes`` with a clinical contradiction."""
    from medsyn.filters.clinical import ClinicalCheck

    check = ClinicalCheck()
    if not notes:
        return float("nan")
    hits = sum(bool(check.findings(n["text"], n.get("sex"), n.get("age"))) for n in notes)
    return float(100 * hits / len(notes))


def reader_sets(notes: Sequence[dict], dev: Sequence[dict] | None = None) -> dict[str, Sequence[dict]]:
    """``notes`` as "these notes", beside real dev notes and the paper's GPT-4 notes when ``dev`` is given.

    The references only mean something against RuMedTop3 train, so a caller passes ``dev`` only then.
    """
    sets: dict[str, Sequence[dict]] = {"these notes": notes}
    if dev is not None:
        from medsyn.data import load_reference

        sets |= {"real dev notes": dev, "GPT-4 notes (paper)": load_reference("gpt4")}
    return sets


def reader_measures(sets: dict[str, Sequence[dict]], real: Sequence[dict], seed: int = 0) -> dict[str, dict]:
    """Realism AUC, label fidelity and contradiction rate of each set, against the real training notes ``real``.

    Args:
        sets: name → notes (``text``, ``code``, optional ``sex``/``age``); a set of real notes not in ``real``
            (e.g. RuMedTop3 dev) is the reference a synthetic set is read against.
        real: the real notes both classifiers learn from.
    """
    from medsyn.filters.linear import LinearClassifier

    real_texts = [n["text"] for n in real]
    coder = LinearClassifier().fit(real_texts, [n["code"][:3] for n in real])
    out = {}
    for name, notes in sets.items():
        out[name] = {
            "notes": len(notes),
            "realism_auc": realism_auc([n["text"] for n in notes], real_texts, seed=seed),
            **{f"label_fidelity_{k}": v for k, v in label_fidelity(notes, coder).items()},
            "contradiction_rate": contradiction_rate(notes),
        }
    return out


def plot_reader(measures: dict[str, dict], path: str | Path) -> Path:
    """Three panels, one bar per set: realism AUC, label fidelity top-3, contradiction rate."""
    from medsyn.plots import pyplot

    plt = pyplot()
    names = list(measures)
    panels = (
        ("realism_auc", "realism: real-vs-set AUC\n(0.5 = indistinguishable)", (0.4, 1.0)),
        ("label_fidelity_top3", "label fidelity: code in a real-notes\nclassifier's top 3 (%)", (0, 100)),
        ("contradiction_rate", "notes with a clinical\ncontradiction (%)", None),
    )
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.8))
    for ax, (key, title, limits) in zip(axes, panels):
        values = [measures[n][key] for n in names]
        bars = ax.bar(range(len(names)), values, color=[f"C{i}" for i in range(len(names))])
        ax.bar_label(bars, fmt="%.2f" if key == "realism_auc" else "%.1f", fontsize=8)
        ax.set_xticks(range(len(names)), names, rotation=20, ha="right", fontsize=8)
        ax.set_title(title, fontsize=9)
        if limits:
            ax.set_ylim(*limits)
        ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def reader_table(measures: dict[str, dict]) -> str:
    """The measures as a markdown table, one row per set."""
    lines = [
        "| set | notes | realism AUC (0.5 = like real) | label fidelity top-1 / 3 / 10 (%) | contradictions (%) |",
        "| --- | ---: | ---: | --- | ---: |",
    ]
    for name, m in measures.items():
        fidelity = " / ".join(f"{m[f'label_fidelity_top{k}']:.1f}" for k in TOP_K)
        lines.append(
            f"| {name} | {m['notes']:,} | {m['realism_auc']:.3f} | {fidelity} | {m['contradiction_rate']:.2f} |"
        )
    return "\n".join(lines)
