"""Keep only notes that carry their code: consistency filtering with the fast linear classifier.

A classifier trained on real notes only (:class:`~medsyn.eval.linear.LinearClassifier`, RuMedBench's recipe) ranks
the codes for each synthetic note. A note is kept when the code it was written for is among the classifier's first
``k``: a note that reads like another code, or like no code at all, would teach a classifier the wrong thing.

The check runs at generation time (``medsyn generate --consistency_top_k K``, a rejected note is tried again with its
next seed) and after it on a folder (``medsyn eval consistency DIR --top_k K``), which writes a new dataset folder with
each verdict in ``filter_reasons`` and a report of the share dropped per code.

Example:
    >>> check = ConsistencyCheck.from_real(real_notes, top_k=10)     # doctest: +SKIP
    >>> check.verdicts(["Беспокоит кашель, насморк."], ["J06"])     # doctest: +SKIP
    [(1, None)]
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from medsyn.errors import MedsynError

__all__ = ["ConsistencyCheck", "code_ranks", "read_rows", "apply_check", "drop_report", "REASON_PREFIX"]

logger = logging.getLogger(__name__)

REASON_PREFIX = "consistency"


def code_ranks(scores: np.ndarray, labels: Sequence[str], codes: Sequence[str]) -> list[int]:
    """The 1-based rank of each row's code among the classifier's scores (0 when the classifier lacks the code).

    Args:
        scores: ``(n_notes, n_labels)`` scores, higher is more likely.
        labels: the code of each score column.
        codes: the code each note was written for (3-character categories).

    Returns:
        One rank per note; 1 means the classifier's first choice.
    """
    column = {c: j for j, c in enumerate(labels)}
    ranks = []
    for row, code in zip(np.asarray(scores), codes):
        j = column.get(code[:3])
        # ties count against the note: a code scored like others is not clearly carried
        ranks.append(0 if j is None else int(np.sum(row >= row[j])))
    return ranks


class ConsistencyCheck:
    """Scores notes with a classifier trained on real notes and keeps those whose code is in its top ``k``.

    Args:
        classifier: a fitted classifier with ``decision_function(texts)`` and ``labels_``.
        top_k: how far down the ranking a note's code may sit and the note still be kept.
    """

    def __init__(self, classifier, top_k: int = 10) -> None:
        if top_k < 1:
            raise MedsynError(f"top_k must be >= 1, got {top_k}; 1 keeps only notes the classifier codes right")
        self.classifier = classifier
        self.top_k = top_k

    @classmethod
    def from_real(
        cls, notes: Sequence[dict], top_k: int = 10, balanced: bool = True, **linear_options
    ) -> ConsistencyCheck:
        """Train the linear classifier on real ``notes`` (``{"text", "code"}`` dicts) and wrap it.

        Args:
            notes: real notes only; synthetic notes here would let a note vouch for itself.
            top_k: see :class:`ConsistencyCheck`.
            balanced: weight each note by the inverse of its code's count, so that a rare code's note is not pushed
                down the ranking by the frequent codes' larger prior (the notes the check matters most for are
                written for rare codes).
            linear_options: fields of :class:`~medsyn.eval.linear.LinearConfig` (C, max_iter...).
        """
        from medsyn.eval.linear import LinearClassifier

        codes = [n["code"][:3] for n in notes]
        counts = Counter(codes)
        weights = [len(codes) / (len(counts) * counts[c]) for c in codes] if balanced else None
        clf = LinearClassifier(**linear_options).fit([n["text"] for n in notes], codes, sample_weight=weights)
        return cls(clf, top_k)

    @classmethod
    def from_rumedtop3(cls, top_k: int = 10) -> ConsistencyCheck:
        """The check that generation uses: the linear classifier trained on the packaged RuMedTop3 train split."""
        from medsyn.data import load_rumedtop3

        return cls.from_real(load_rumedtop3("train"), top_k)

    def ranks(self, texts: Sequence[str], codes: Sequence[str]) -> list[int]:
        """The rank of each note's code (1 = first; 0 = a code the classifier never saw)."""
        if len(texts) != len(codes):
            raise MedsynError(f"got {len(texts)} notes but {len(codes)} codes; give one code per note")
        if not texts:
            return []
        return code_ranks(self.classifier.decision_function(list(texts)), self.classifier.labels_, codes)

    def reason(self, rank: int, code: str) -> str | None:
        """``None`` when a note of ``code`` at ``rank`` is kept, else the line that goes into ``filter_reasons``."""
        if rank == 0:
            return f"{REASON_PREFIX}: the real-notes classifier has no code {code[:3]}"
        if rank > self.top_k:
            return f"{REASON_PREFIX}: {code[:3]} ranked {rank} > top {self.top_k} by the real-notes classifier"
        return None

    def verdicts(self, texts: Sequence[str], codes: Sequence[str]) -> list[tuple[int, str | None]]:
        """``(rank, reason or None)`` for each note."""
        return [(r, self.reason(r, c)) for r, c in zip(self.ranks(texts, codes), codes)]


def read_rows(source: str | Path) -> list[dict[str, Any]]:
    """Every finished row of a ``medsyn generate`` folder (kept and rejected; failed tasks left out).

    A folder still being written is read from its shards; a finished or released one from its parquet files.
    """
    from medsyn.job import is_failed, read_shards

    source = Path(source)
    if (source / "shards").is_dir():
        return [r for r in read_shards(source / "shards") if not is_failed(r)]
    import pyarrow.parquet as pq

    rows: list[dict[str, Any]] = []
    for sub in ("data", "rejected"):
        for file in sorted((source / sub).glob("*.parquet")):
            rows += pq.read_table(file).to_pylist()
    if not rows:
        raise MedsynError(f"{source} holds no generated rows (no shards/, data/ or rejected/ parquet files)")
    return rows


def apply_check(rows: list[dict[str, Any]], check: ConsistencyCheck) -> list[dict[str, Any]]:
    """Rows with the consistency verdict recorded: ``consistency_rank``, ``filter_reasons`` and ``kept`` updated.

    An earlier consistency verdict on a row is replaced, so a folder can be filtered again with another ``k``.
    """
    ranks = check.ranks([r["note"] or "" for r in rows], [r["category"] for r in rows])
    out = []
    for row, rank in zip(rows, ranks):
        others = [x for x in (row.get("filter_reasons") or []) if not x.startswith(REASON_PREFIX)]
        reason = check.reason(rank, row["category"])
        reasons = others + ([reason] if reason else [])
        out.append({**row, "consistency_rank": rank, "filter_reasons": reasons, "kept": not reasons})
    return out


def drop_report(rows: list[dict[str, Any]], top_k: int, real_counts: dict[str, int]) -> dict[str, Any]:
    """The share of notes the check drops, overall, per code, and at other ``k`` for comparison.

    Only notes that passed the other checks count: the share says what consistency filtering adds.
    """
    passed = [r for r in rows if not [x for x in r["filter_reasons"] if not x.startswith(REASON_PREFIX)]]
    ranks = np.array([r["consistency_rank"] for r in passed]) if passed else np.zeros(0, dtype=int)
    by_code: dict[str, list[int]] = {}
    for r in passed:
        by_code.setdefault(r["category"], []).append(r["consistency_rank"])
    per_code = {
        code: {
            "real_notes": real_counts.get(code, 0),
            "notes": len(v),
            "dropped": int(sum(not 1 <= x <= top_k for x in v)),
            "share_dropped": float(np.mean([not 1 <= x <= top_k for x in v])),
        }
        for code, v in sorted(by_code.items())
    }
    return {
        "top_k": top_k,
        "notes_checked": len(passed),
        "dropped": int(np.sum((ranks < 1) | (ranks > top_k))),
        "share_dropped": float(np.mean((ranks < 1) | (ranks > top_k))) if len(ranks) else 0.0,
        "share_dropped_at_k": {
            str(k): float(np.mean((ranks < 1) | (ranks > k))) if len(ranks) else 0.0 for k in (1, 3, 5, 10, 20)
        },
        "per_code": per_code,
    }
