"""Classification metrics for ICD-10 code prediction, as RuMedBench defines them.

RuMedBench ranks the codes by predicted score for each note; **acc@1** is the share of notes whose true code is
ranked first and **hit@3** the share whose true code is among the first three. Ties are broken by label order
(a stable sort), as ``np.argsort`` on RuMedBench's scores does for distinct values. A true code the classifier has
no column for (a code absent from its training data) is always a miss. **macro-F1** is the unweighted mean of the
per-code F1 of the top-1 prediction.

Example:
    >>> import numpy as np
    >>> scores = np.array([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2]])
    >>> classification_metrics(["B", "C"], scores, ["A", "B", "C"])["hit@3"]
    1.0
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["top_k", "hit_at_k", "per_code_recall", "macro_f1", "classification_metrics"]


def top_k(scores: np.ndarray, labels: Sequence[str], k: int = 3) -> list[list[str]]:
    """The ``k`` best-scored labels of each row, best first.

    Args:
        scores: an ``(n_notes, n_labels)`` array of scores or probabilities.
        labels: the label of each column.
        k: how many labels to return per row.

    Returns:
        One list of ``min(k, n_labels)`` labels per row.
    """
    scores = np.asarray(scores)
    if scores.ndim != 2 or scores.shape[1] != len(labels):
        raise ValueError(f"scores must have shape (n, {len(labels)}) to match the labels, got {scores.shape}")
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return [[labels[j] for j in row] for row in order]


def hit_at_k(y_true: Sequence[str], ranked: Sequence[Sequence[str]], k: int) -> float:
    """The share of notes whose true code is among the first ``k`` of ``ranked`` (0.0 for no notes)."""
    if len(y_true) != len(ranked):
        raise ValueError(f"got {len(y_true)} true codes but {len(ranked)} rankings; they must match one to one")
    if not y_true:
        return 0.0
    return sum(t in r[:k] for t, r in zip(y_true, ranked)) / len(y_true)


def per_code_recall(y_true: Sequence[str], y_pred: Sequence[str]) -> dict[str, float]:
    """Top-1 recall of each code that occurs in ``y_true``."""
    hits: dict[str, list[int]] = {}
    for t, p in zip(y_true, y_pred):
        hits.setdefault(t, []).append(int(t == p))
    return {code: float(np.mean(v)) for code, v in sorted(hits.items())}


def macro_f1(y_true: Sequence[str], y_pred: Sequence[str], codes: Sequence[str] | None = None) -> float:
    """Unweighted mean F1 over ``codes`` (default: every code that is true or predicted).

    Precision counts every prediction of a code, so on a subset of codes the F1 still pays for false positives
    coming from notes of other codes.
    """
    if codes is None:
        codes = sorted(set(y_true) | set(y_pred))
    if not codes:
        return 0.0
    t, p = np.asarray(y_true, dtype=object), np.asarray(y_pred, dtype=object)
    f1s = []
    for c in codes:
        tp = float(np.sum((t == c) & (p == c)))
        fp = float(np.sum((t != c) & (p == c)))
        fn = float(np.sum((t == c) & (p != c)))
        f1s.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    return float(np.mean(f1s))


def classification_metrics(
    y_true: Sequence[str],
    scores: np.ndarray,
    labels: Sequence[str],
    codes: Sequence[str] | None = None,
) -> dict[str, float]:
    """acc@1, hit@3 and macro-F1 of ranked predictions, overall or on the notes of a subset of codes.

    Args:
        y_true: the true code of each note.
        scores: ``(n_notes, n_labels)`` scores; higher ranks first.
        labels: the code of each score column.
        codes: when given, acc@1 and hit@3 are computed on the notes whose true code is in ``codes``, and
            macro-F1 is averaged over ``codes`` (with predictions for all notes).

    Returns:
        ``{"acc@1", "hit@3", "macro_f1", "n"}`` with values in [0, 1] and ``n`` the number of notes scored.
    """
    ranked = top_k(scores, labels, k=3)
    y_pred = [r[0] for r in ranked]
    y_true = list(y_true)
    if codes is None:
        idx = list(range(len(y_true)))
        f1 = macro_f1(y_true, y_pred)
    else:
        subset = set(codes)
        idx = [i for i, t in enumerate(y_true) if t in subset]
        f1 = macro_f1(y_true, y_pred, sorted(subset & set(y_true)))
    sub_true, sub_ranked = [y_true[i] for i in idx], [ranked[i] for i in idx]
    return {
        "acc@1": hit_at_k(sub_true, sub_ranked, 1),
        "hit@3": hit_at_k(sub_true, sub_ranked, 3),
        "macro_f1": f1,
        "n": float(len(idx)),
    }
