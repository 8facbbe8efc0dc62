"""Best-of-N: which of a task's candidate notes to write.

A candidate's score is the product of three shares, each in [0, 1]:

* **symptom coverage**: the share of the requested symptoms the note uses (:func:`medsyn.text.symptom_coverage`);
* **label fidelity**: ``1 / rank`` of the task's category under a classifier trained on real notes (the one the
  consistency check uses), so a note the classifier codes right scores 1 and one it ranks third scores 1/3;
* **realism**: the probability that a discriminator trained on real notes against machine-written ones (the
  paper's GPT-4 notes, shipped with medsyn) takes the note for a real one.

Only notes the filter keeps compete; the score never keeps a note the filter rejects.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from medsyn.filters.consistency import ConsistencyCheck
from medsyn.text import symptom_coverage

__all__ = ["NoteRanker"]

logger = logging.getLogger(__name__)

REAL, MACHINE = "real", "machine"


class NoteRanker:
    """Scores candidate notes by symptom coverage × label fidelity × realism.

    Args:
        fidelity: a fitted :class:`~medsyn.filters.consistency.ConsistencyCheck` (its classifier ranks the codes).
        realism: a fitted two-label classifier (labels ``"real"`` and ``"machine"``) with ``predict_proba``.
    """

    def __init__(self, fidelity: ConsistencyCheck, realism: Any) -> None:
        if sorted(realism.labels_) != sorted((REAL, MACHINE)):
            raise ValueError(f"the realism classifier must know the labels {REAL!r} and {MACHINE!r}")
        self.fidelity = fidelity
        self.realism = realism
        self._real_column = list(realism.labels_).index(REAL)

    @classmethod
    def from_notes(cls, real: Sequence[dict], machine: Sequence[dict]) -> NoteRanker:
        """Train both classifiers: fidelity on ``real`` notes (``{"text", "code"}``), realism on ``real`` against
        ``machine``-written ones (``{"text"}``)."""
        from medsyn.filters.linear import LinearClassifier

        fidelity = ConsistencyCheck.from_real(real, top_k=10)
        texts = [n["text"] for n in real] + [n["text"] for n in machine]
        labels = [REAL] * len(real) + [MACHINE] * len(machine)
        realism = LinearClassifier().fit(texts, labels)
        logger.info("best-of ranker: fidelity on %d real notes, realism on %d real / %d machine", len(real),
                    len(real), len(machine))  # fmt: skip
        return cls(fidelity, realism)

    def parts(self, texts: Sequence[str], codes: Sequence[str], symptoms: Sequence[list[str]]) -> np.ndarray:
        """``(n, 3)``: each note's coverage, label fidelity and realism."""
        if not texts:
            return np.zeros((0, 3))
        ranks = np.array(self.fidelity.ranks(texts, codes), dtype=float)
        fidelity = np.where(ranks > 0, 1.0 / np.maximum(ranks, 1.0), 0.0)
        realism = self.realism.predict_proba(list(texts))[:, self._real_column]
        coverage = np.array([symptom_coverage(list(s), t) for s, t in zip(symptoms, texts)])
        return np.stack([coverage, fidelity, realism], axis=1)

    def scores(self, texts: Sequence[str], codes: Sequence[str], symptoms: Sequence[list[str]]) -> list[float]:
        """Each note's score: the product of its three parts."""
        return [float(x) for x in self.parts(texts, codes, symptoms).prod(axis=1)]
