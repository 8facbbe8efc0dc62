"""The per-note filter of generation: symptom coverage, copying of real notes, copying of the style example.

The copy index puts the real notes' word n-grams (default: trigrams) into an inverted index once
(:class:`CopyIndex`). For a note, the postings of its n-grams are counted per real note with one ``bincount``; the
real note sharing the most n-grams is its closest. Its **copy score** is the share of the note's distinct n-grams
found in that closest note, and **LCS** is the longest run of words shared with it. :class:`NoteFilter` keeps a
note that states enough of its requested symptoms and copies no real note. The evaluation
(:mod:`medsyn.eval.quality`) reports the same measures over a whole set.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from difflib import SequenceMatcher

import numpy as np

from medsyn.errors import MedsynError
from medsyn.text import symptom_coverage, tokenize

__all__ = [
    "CopyIndex",
    "CopyMatch",
    "FilterResult",
    "NoteFilter",
    "copy_score_against",
    "ngrams",
    "longest_common_words",
    "DEFAULT_MAX_CONTAINMENT",
    "DEFAULT_MAX_COPY_SCORE",
    "DEFAULT_MAX_LCS_WORDS",
    "DEFAULT_MIN_SYMPTOM_COVERAGE",
    "MIN_CONTAINED_NGRAMS",
]

logger = logging.getLogger(__name__)

DEFAULT_MAX_COPY_SCORE = 0.7
DEFAULT_MAX_LCS_WORDS = 15
DEFAULT_MIN_SYMPTOM_COVERAGE = 0.5
# A synthetic note that holds most of one real note's n-grams carries that note inside it, however long the
# synthetic note is; real notes shorter than MIN_CONTAINED_NGRAMS n-grams are stock phrases and are not counted.
DEFAULT_MAX_CONTAINMENT = 0.8
MIN_CONTAINED_NGRAMS = 6


def ngrams(tokens: Sequence[str], n: int) -> list[tuple[str, ...]]:
    """The word n-grams of a token list, in order (empty when it has fewer than ``n`` tokens)."""
    return [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]


def longest_common_words(a: Sequence[str], b: Sequence[str]) -> int:
    """The length, in tokens, of the longest run of consecutive tokens shared by ``a`` and ``b``."""
    if not a or not b:
        return 0
    return SequenceMatcher(None, a, b, autojunk=False).find_longest_match(0, len(a), 0, len(b)).size


@dataclass
class CopyMatch:
    """The closest real note to a synthetic one."""

    real_index: int
    copy_score: float
    shared_ngrams: int
    lcs_words: int
    containment: float = 0.0  # the largest share of one real note's n-grams found in the note
    contained_index: int = -1  # that real note (-1: none of at least MIN_CONTAINED_NGRAMS n-grams)


class CopyIndex:
    """An inverted index of the real notes' word n-grams for fast near-copy search.

    Args:
        real_texts: the real notes.
        n: the n-gram size in words.

    Example:
        >>> index = CopyIndex(["жалобы на кашель и насморк три дня", "боли в пояснице после нагрузки"])
        >>> index.query("жалобы на кашель и насморк три дня").copy_score
        1.0
    """

    def __init__(self, real_texts: Sequence[str], n: int = 3) -> None:
        if n < 1:
            raise MedsynError(f"the n-gram size must be >= 1, got {n}")
        self.n = n
        self.real_texts = list(real_texts)
        self.real_tokens = [tokenize(t) for t in self.real_texts]
        self._ids: dict[tuple[str, ...], int] = {}
        postings: list[list[int]] = []
        for doc, tokens in enumerate(self.real_tokens):
            for gram in set(ngrams(tokens, n)):
                gid = self._ids.setdefault(gram, len(postings))
                if gid == len(postings):
                    postings.append([])
                postings[gid].append(doc)
        self._postings = [np.asarray(p, dtype=np.int32) for p in postings]
        self._sizes = np.asarray([len(set(ngrams(t, n))) for t in self.real_tokens], dtype=np.float64)
        logger.debug("copy index: %d real notes, %d distinct %d-grams", len(self.real_tokens), len(self._ids), n)

    def __len__(self) -> int:
        return len(self.real_tokens)

    def query(self, note: str | Sequence[str], lcs: bool = True) -> CopyMatch | None:
        """The real note sharing the most n-grams with ``note`` (text or tokens), or ``None`` if it shares none."""
        tokens = tokenize(note) if isinstance(note, str) else list(note)
        grams = set(ngrams(tokens, self.n))
        hits = [self._postings[g] for gram in grams if (g := self._ids.get(gram)) is not None]
        if not hits:
            return None
        counts = np.bincount(np.concatenate(hits), minlength=len(self.real_tokens))
        best = int(np.argmax(counts))
        shared = int(counts[best])
        lcs_words = longest_common_words(tokens, self.real_tokens[best]) if lcs else 0
        contained = np.where(self._sizes >= MIN_CONTAINED_NGRAMS, counts / np.maximum(self._sizes, 1), 0.0)
        top = int(np.argmax(contained))
        return CopyMatch(
            best, shared / len(grams), shared, lcs_words, float(contained[top]), top if contained[top] > 0 else -1
        )


def copy_score_against(note_tokens: Sequence[str], other_tokens: Sequence[str], n: int = 3) -> float:
    """The share of the note's distinct n-grams that also occur in one other note (0.0 when it has none)."""
    grams = set(ngrams(note_tokens, n))
    return len(grams & set(ngrams(other_tokens, n))) / len(grams) if grams else 0.0


@dataclass
class FilterResult:
    """The filter's verdict on one note.

    Attributes:
        keep: whether the note passes every check.
        reasons: one line per failed check, e.g. ``"copy_score 0.92 >= 0.70 (closest real note 1234)"``.
        metrics: the measured values (``symptom_coverage``, ``copy_score``, ``lcs_words``, ``example_copy_score``,
            ``example_lcs_words``, ``words``).
    """

    keep: bool
    reasons: list[str] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)


class NoteFilter:
    """Checks that generation applies to each note: prompt following, length, and no copying of real notes.

    Build it once with :meth:`from_real` (which indexes the real notes' n-grams), then call :meth:`check` per note.

    Thresholds:
        min_symptom_coverage: the least share of requested symptoms the note must mention (default 0.5).
        max_copy_score: a note whose distinct word n-grams lie in one real note at this share or more is a
            near-copy (default 0.7).
        max_lcs_words: a note sharing this many consecutive words with a real note is a near-copy (default 15).
        max_example_copy_score / max_example_lcs_words: the same against the note's style example.
        max_containment: a note holding this share or more of one real note's n-grams (real notes of at least
            ``MIN_CONTAINED_NGRAMS`` n-grams) carries that note inside it and is dropped (default 0.8).
        min_words: notes shorter than this many words are dropped (default 5).
    """

    def __init__(
        self,
        index: CopyIndex | None,
        min_symptom_coverage: float = DEFAULT_MIN_SYMPTOM_COVERAGE,
        max_copy_score: float = DEFAULT_MAX_COPY_SCORE,
        max_lcs_words: int = DEFAULT_MAX_LCS_WORDS,
        max_example_copy_score: float = DEFAULT_MAX_COPY_SCORE,
        max_example_lcs_words: int = DEFAULT_MAX_LCS_WORDS,
        min_words: int = 5,
        max_containment: float = DEFAULT_MAX_CONTAINMENT,
    ) -> None:
        self.index = index
        self.min_symptom_coverage = min_symptom_coverage
        self.max_copy_score = max_copy_score
        self.max_lcs_words = max_lcs_words
        self.max_example_copy_score = max_example_copy_score
        self.max_example_lcs_words = max_example_lcs_words
        self.min_words = min_words
        self.max_containment = max_containment

    @classmethod
    def from_real(cls, real_texts: list[str], ngram: int = 3, **thresholds: float) -> NoteFilter:
        """A filter whose copy check runs against ``real_texts`` (indexed once, here).

        Args:
            real_texts: the real notes to index; an empty list turns the copy check off.
            ngram: the word n-gram size of the index.
            thresholds: any of the thresholds of :class:`NoteFilter`.
        """
        return cls(CopyIndex(real_texts, ngram) if real_texts else None, **thresholds)

    def check(self, note: str, symptoms: list[str], example: str | None = None) -> FilterResult:
        """Check one generated note.

        Args:
            note: the generated note.
            symptoms: the symptoms it was asked to mention (an empty list skips the coverage check).
            example: the real style example it was shown, if any.

        Returns:
            A :class:`FilterResult`.
        """
        tokens = tokenize(note)
        reasons: list[str] = []
        metrics: dict[str, float] = {"words": float(len(tokens))}
        if len(tokens) < self.min_words:
            reasons.append(f"words {len(tokens)} < {self.min_words}")
        if symptoms:
            cov = symptom_coverage(symptoms, note)
            metrics["symptom_coverage"] = cov
            if cov < self.min_symptom_coverage:
                reasons.append(f"symptom_coverage {cov:.2f} < {self.min_symptom_coverage:.2f}")
        if self.index is not None:
            match = self.index.query(tokens)
            score, lcs = (match.copy_score, match.lcs_words) if match else (0.0, 0)
            metrics["copy_score"], metrics["lcs_words"] = score, float(lcs)
            if match and score >= self.max_copy_score:
                reasons.append(f"copy_score {score:.2f} >= {self.max_copy_score:.2f} (real note #{match.real_index})")
            if match and lcs >= self.max_lcs_words:
                reasons.append(f"lcs_words {lcs} >= {self.max_lcs_words} (real note #{match.real_index})")
            metrics["containment"] = match.containment if match else 0.0
            if match and match.containment >= self.max_containment:
                reasons.append(
                    f"containment {match.containment:.2f} >= {self.max_containment:.2f} "
                    f"(real note #{match.contained_index} is inside it)"
                )
        if example:
            ex_tokens = tokenize(example)
            ex_score = copy_score_against(tokens, ex_tokens, self.index.n if self.index else 3)
            ex_lcs = longest_common_words(tokens, ex_tokens)
            metrics["example_copy_score"], metrics["example_lcs_words"] = ex_score, float(ex_lcs)
            if ex_score >= self.max_example_copy_score:
                reasons.append(f"example_copy_score {ex_score:.2f} >= {self.max_example_copy_score:.2f}")
            if ex_lcs >= self.max_example_lcs_words:
                reasons.append(f"example_lcs_words {ex_lcs} >= {self.max_example_lcs_words}")
        return FilterResult(keep=not reasons, reasons=reasons, metrics=metrics)
