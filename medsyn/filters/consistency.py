"""Consistency filtering: keep a note only when a classifier trained on real notes ranks its code in the top ``k``.

A classifier trained on real notes only (:class:`~medsyn.filters.linear.LinearClassifier`, RuMedBench's recipe) ranks
the codes for each synthetic note. A note that reads like another code, or like no code at all, would teach a
classifier the wrong thing. Generation applies it per note (``--consistency_top_k``); ``medsyn eval consistency``
applies it to a folder (:mod:`medsyn.eval.consistency`).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence

import numpy as np

from medsyn.errors import MedsynError

__all__ = ["ConsistencyCheck", "code_ranks", "REASON_PREFIX"]

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
            linear_options: fields of :class:`~medsyn.filters.linear.LinearConfig` (C, max_iter...).
        """
        from medsyn.filters.linear import LinearClassifier

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
