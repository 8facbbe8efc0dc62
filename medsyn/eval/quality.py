"""Quality and privacy of synthetic notes over a whole set (the per-note filter is :mod:`medsyn.filters.note`).

Metrics:

- **Prompt following**: the share of requested symptoms the note states, by concept key (lemma plus derivations,
  :func:`medsyn.text.symptom_coverage`) within one clause and not denied, so «болит голова» counts for «головная
  боль» while «головной боли нет» and «болит голова. Спина не беспокоит» do not count for it or «боль в спине».
- **Realism and diversity**: length, vocabulary, distinct-1/2 and self-BLEU-4, each computed on equal-size samples
  of real and synthetic notes (vocabulary grows with corpus size, so unequal sizes would mislead).
- **Copying**: the real notes' word n-grams (default: trigrams) go into an inverted index once
  (:class:`CopyIndex`). For a note, the postings of its n-grams are counted per real note with one ``bincount``;
  the real note sharing the most n-grams is its closest. Its **copy score** is the share of the note's distinct
  n-grams found in that closest note (1.0 = every trigram is there), and **LCS** is the longest run of words
  shared with it. No pair of notes is compared unless they share an n-gram, so 40k notes against 5k real ones
  take seconds.

Near-copy thresholds (defaults, tunable): copy score ≥ 0.7 or LCS ≥ 15 words. A note that reuses most of a real
one goes over 0.7, while two notes sharing stock phrases («на боли в поясничной области») do not reach it. Real
notes are short and formulaic: RuMedTop3 dev notes against train average 0.33, and 16% of them pass a threshold
(many real notes are near-duplicates of each other), which is why the report prints that real-vs-real figure
beside the synthetic one. The MedSyn GPT-4 notes average 0.025 (one note in 2,378 is flagged, by LCS).
"""

from __future__ import annotations

import logging
import random
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from medsyn.filters.note import (
    DEFAULT_MAX_CONTAINMENT,
    DEFAULT_MAX_COPY_SCORE,
    DEFAULT_MAX_LCS_WORDS,
    CopyIndex,
    copy_score_against,
    longest_common_words,
    ngrams,
)
from medsyn.text import symptom_coverage, tokenize

__all__ = [
    "distinct_n",
    "self_bleu",
    "corpus_stats",
    "load_synthetic",
    "evaluate_quality",
]

logger = logging.getLogger(__name__)


# -- diversity ----------------------------------------------------------------------------------------------------
def distinct_n(token_lists: Sequence[Sequence[str]], n: int) -> float:
    """Distinct n-grams over all n-grams of a corpus (Li et al., 2016); 0.0 for an empty corpus."""
    total, seen = 0, set()
    for tokens in token_lists:
        grams = ngrams(tokens, n)
        total += len(grams)
        seen.update(grams)
    return len(seen) / total if total else 0.0


def self_bleu(token_lists: Sequence[Sequence[str]], sample: int | None = None, seed: int = 0, max_n: int = 4) -> float:
    """Self-BLEU-``max_n``: mean BLEU of notes against all the *other* notes as references (lower = more diverse).

    Clipped counts use, per n-gram, the largest count in any other note; keeping the largest and second-largest
    count per n-gram makes that exact in one pass instead of one pass per note. The brevity penalty uses the
    closest length among the other notes (the shorter on a tie), as ``sacrebleu`` does; zero precisions are smoothed with 0.1 / hypothesis n-grams (Chen & Cherry method 1).

    Args:
        token_lists: the tokenised notes.
        sample: score only this many random notes as hypotheses (all notes are references); ``None``: all.
        seed: the sampling seed.
        max_n: the largest n-gram order.
    """
    counts = [[Counter(ngrams(t, k)) for k in range(1, max_n + 1)] for t in token_lists]
    best: list[dict[tuple[str, ...], tuple[int, int, int]]] = [{} for _ in range(max_n)]
    for doc, per_n in enumerate(counts):
        for k, counter in enumerate(per_n):
            table = best[k]
            for gram, c in counter.items():
                m1, owner, m2 = table.get(gram, (0, -1, 0))
                if c > m1:
                    table[gram] = (c, doc, m1)
                elif c > m2:
                    table[gram] = (m1, owner, c)
    lengths = sorted(len(t) for t in token_lists)
    idx = list(range(len(token_lists)))
    if sample and sample < len(idx):
        idx = random.Random(seed).sample(idx, sample)
    scores = []
    for doc in idx:
        hyp_len = len(token_lists[doc])
        if hyp_len == 0 or len(token_lists) < 2:
            continue
        log_p = 0.0
        for k in range(max_n):
            table, counter = best[k], counts[doc][k]
            total = sum(counter.values())
            if total == 0:
                log_p += np.log(1e-9)
                continue
            clipped = 0
            for gram, c in counter.items():
                m1, owner, m2 = table[gram]
                clipped += min(c, m2 if owner == doc else m1)
            log_p += np.log(clipped / total if clipped else 0.1 / total)
        # the closest length among the *other* notes: the hypothesis's own length is in ``lengths`` once, at pos
        pos = int(np.searchsorted(lengths, hyp_len))
        near = [lengths[j] for j in (pos - 1, pos + 1) if 0 <= j < len(lengths)]
        ref_len = min(near, key=lambda r: (abs(r - hyp_len), r))
        bp = 1.0 if hyp_len > ref_len else np.exp(1 - ref_len / hyp_len)
        scores.append(bp * np.exp(log_p / max_n))
    return float(np.mean(scores)) if scores else 0.0


def corpus_stats(texts: Sequence[str], self_bleu_sample: int | None = 1000, seed: int = 0) -> dict[str, float]:
    """Length, vocabulary and diversity statistics of a set of notes."""
    toks = [tokenize(t) for t in texts]
    chars = np.array([len(t) for t in texts], dtype=float)
    words = np.array([len(t) for t in toks], dtype=float)
    flat = [w for t in toks for w in t]
    return {
        "n": float(len(texts)),
        "chars_mean": float(chars.mean()) if len(chars) else 0.0,
        "chars_median": float(np.median(chars)) if len(chars) else 0.0,
        "chars_std": float(chars.std()) if len(chars) else 0.0,
        "words_mean": float(words.mean()) if len(words) else 0.0,
        "vocab_size": float(len(set(flat))),
        "type_token_ratio": len(set(flat)) / len(flat) if flat else 0.0,
        "distinct_1": distinct_n(toks, 1),
        "distinct_2": distinct_n(toks, 2),
        "self_bleu": self_bleu(toks, sample=self_bleu_sample, seed=seed),
    }


# -- loading and the whole report -----------------------------------------------------------------------------------
def load_synthetic(source: str | Path, real_notes: Sequence[dict] | None = None) -> list[dict]:
    """Synthetic notes with, when the source has them, their requested symptoms and style example.

    Args:
        source: a ``medsyn generate`` dataset folder (``symptoms`` and ``example_id`` are read) or a RuMedTop3-format
            JSONL (neither is known).
        real_notes: notes whose ``id`` the ``example_id`` column refers to (RuMedTop3 train).

    Returns:
        Dicts ``{"id", "text", "code", "symptoms": list | None, "example": str | None}``, with the patient's
        ``sex`` and ``age`` when the folder records them.
    """
    from medsyn.job import load_notes

    source = Path(source)
    notes = [{**n, "symptoms": None, "example": None} for n in load_notes(source)]
    if source.is_dir():
        import pyarrow.parquet as pq

        by_id = {n["id"]: n["text"] for n in (real_notes or [])}
        files = sorted((source / "data").glob("*.parquet")) or sorted(source.glob("*.parquet"))
        extra = {}
        for file in files:
            names = set(pq.read_schema(file).names)
            cols = [c for c in ("id", "symptoms", "example_id", "sex", "age") if c in names]
            for row in pq.read_table(file, columns=cols).to_pylist():
                extra[row["id"]] = row
        for note in notes:
            row = extra.get(note["id"], {})
            note["symptoms"] = list(row["symptoms"]) if row.get("symptoms") is not None else None
            note["example"] = by_id.get(row.get("example_id"))
            note.update({k: row[k] for k in ("sex", "age") if row.get(k) is not None})
    return notes


def _copy_stats(scores: list[float], lcs: list[int], max_copy_score: float, max_lcs_words: int) -> dict[str, float]:
    s, l_ = np.asarray(scores, dtype=float), np.asarray(lcs, dtype=float)
    flagged = (s >= max_copy_score) | (l_ >= max_lcs_words)
    return {
        "n": float(len(s)),
        "copy_score_mean": float(s.mean()) if len(s) else 0.0,
        "copy_score_p99": float(np.quantile(s, 0.99)) if len(s) else 0.0,
        "copy_score_max": float(s.max()) if len(s) else 0.0,
        "lcs_mean": float(l_.mean()) if len(l_) else 0.0,
        "lcs_max": float(l_.max()) if len(l_) else 0.0,
        "near_copies": int(flagged.sum()),
        "near_copy_share": float(flagged.mean()) if len(s) else 0.0,
    }


def evaluate_quality(
    synthetic: Sequence[dict],
    real: Sequence[dict],
    ngram: int = 3,
    max_copy_score: float = DEFAULT_MAX_COPY_SCORE,
    max_lcs_words: int = DEFAULT_MAX_LCS_WORDS,
    self_bleu_sample: int | None = 1000,
    seed: int = 0,
    holdout: Sequence[dict] | None = None,
    n_examples: int = 5,
) -> tuple[dict, dict[str, list]]:
    """All quality and privacy metrics of ``synthetic`` against ``real``.

    Args:
        synthetic: notes from :func:`load_synthetic`.
        real: the real notes (indexed for the copy search, and the realism reference).
        ngram: the word n-gram size of the copy index.
        max_copy_score / max_lcs_words: the near-copy thresholds.
        self_bleu_sample: hypotheses scored for self-BLEU per corpus (0 or ``None``: all).
        seed: the seed for samples.
        holdout: real notes *not* in ``real`` (e.g. RuMedTop3 dev) scored the same way, to show the overlap that
            real notes have among themselves.
        n_examples: how many of the closest near-copies to quote.

    Returns:
        ``(report, per_note)``: the JSON report and per-note lists (``id``, ``chars``, ``copy_score``,
        ``lcs_words``, ``closest_real``, ``coverage`` when symptoms are known).
    """
    start = time.perf_counter()
    index = CopyIndex([n["text"] for n in real], ngram)
    t_index = time.perf_counter() - start
    per_note, ex_scores, ex_lcs, coverage = _copy_search(synthetic, real, index, ngram)
    t_copy = time.perf_counter() - start - t_index
    thresholds = (max_copy_score, max_lcs_words)
    copying = {
        "ngram": ngram,
        "threshold_copy_score": max_copy_score,
        "threshold_lcs_words": max_lcs_words,
        "train": _copy_stats(per_note["copy_score"], per_note["lcs_words"], *thresholds),
        "example": _copy_stats(ex_scores, ex_lcs, *thresholds) if ex_scores else {},
        "real_notes_contained": int(sum(c >= DEFAULT_MAX_CONTAINMENT for c in per_note.get("containment", []))),
        "index_seconds": t_index,
        "search_seconds": t_copy,
    }
    if holdout:
        matches = [index.query(n["text"]) for n in holdout]
        copying["real_vs_real"] = _copy_stats(
            [m.copy_score if m else 0.0 for m in matches], [m.lcs_words if m else 0 for m in matches], *thresholds
        )
    copying["examples"] = _near_copy_examples(synthetic, real, per_note, thresholds, n_examples)
    prompt = _prompt_following(coverage)
    if coverage and len(coverage) == len(synthetic):
        per_note["coverage"] = coverage
    report = {
        "n_notes": len(synthetic),
        "n_real": len(real),
        "prompt_following": prompt,
        "realism": _realism(synthetic, real, self_bleu_sample or None, seed),
        "copying": copying,
        "seconds": time.perf_counter() - start,
    }
    logger.info(
        "quality of %d notes: index %.1fs, copy search %.1fs, total %.1fs; %d near-copies",
        len(synthetic), t_index, t_copy, report["seconds"], copying["train"]["near_copies"],
    )  # fmt: skip
    return report, per_note


def _copy_search(
    synthetic: Sequence[dict], real: Sequence[dict], index: CopyIndex, ngram: int
) -> tuple[dict[str, list], list[float], list[int], list[float]]:
    """Each note's closest real note, its copying of its own style example, and its symptom coverage."""
    from tqdm.auto import tqdm

    per_note: dict[str, list] = {"id": [], "chars": [], "copy_score": [], "lcs_words": [], "closest_real": []}
    ex_scores: list[float] = []
    ex_lcs: list[int] = []
    coverage: list[float] = []
    for note in tqdm(synthetic, desc="copy search", unit="note", leave=False):
        tokens = tokenize(note["text"])
        match = index.query(tokens)
        per_note["id"].append(note["id"])
        per_note["chars"].append(len(note["text"]))
        per_note["copy_score"].append(match.copy_score if match else 0.0)
        per_note["lcs_words"].append(match.lcs_words if match else 0)
        per_note["closest_real"].append(real[match.real_index]["id"] if match else None)
        per_note.setdefault("containment", []).append(match.containment if match else 0.0)
        if note.get("example"):
            ex_tokens = tokenize(note["example"])
            ex_scores.append(copy_score_against(tokens, ex_tokens, ngram))
            ex_lcs.append(longest_common_words(tokens, ex_tokens))
        if note.get("symptoms"):
            coverage.append(symptom_coverage(note["symptoms"], note["text"]))
    return per_note, ex_scores, ex_lcs, coverage


def _near_copy_examples(
    synthetic: Sequence[dict],
    real: Sequence[dict],
    per_note: dict[str, list],
    thresholds: tuple[float, int],
    n_examples: int,
) -> list[dict[str, Any]]:
    """The closest near-copies, each with the real note it nearly copies."""
    max_copy_score, max_lcs_words = thresholds
    flagged = [
        i for i in range(len(synthetic))
        if per_note["copy_score"][i] >= max_copy_score or per_note["lcs_words"][i] >= max_lcs_words
    ]  # fmt: skip
    flagged.sort(key=lambda i: (-per_note["copy_score"][i], -per_note["lcs_words"][i]))
    real_by_id = {n["id"]: n["text"] for n in real}
    return [
        {
            "id": per_note["id"][i],
            "copy_score": per_note["copy_score"][i],
            "lcs": per_note["lcs_words"][i],
            "note": synthetic[i]["text"],
            "real_id": per_note["closest_real"][i],
            "real": real_by_id.get(per_note["closest_real"][i], ""),
        }
        for i in flagged[:n_examples]
    ]


def _realism(synthetic: Sequence[dict], real: Sequence[dict], sample: int | None, seed: int) -> dict[str, Any]:
    """Length, vocabulary and diversity of equal-size random samples of both corpora."""
    rng = random.Random(seed)
    size = min(len(synthetic), len(real))
    syn_texts = [n["text"] for n in rng.sample(list(synthetic), size)]
    real_texts = [n["text"] for n in rng.sample(list(real), size)]
    syn_stats, real_stats = corpus_stats(syn_texts, sample, seed), corpus_stats(real_texts, sample, seed)
    syn_tokens = [w for t in syn_texts for w in tokenize(t)]
    real_vocab = {w for n in real for w in tokenize(n["text"])}
    syn_vocab = set(syn_tokens)
    return {
        "sample_size": size,
        "real": real_stats,
        "synthetic": syn_stats,
        "in_real_vocab": sum(w in real_vocab for w in syn_tokens) / len(syn_tokens) if syn_tokens else 0.0,
        "real_vocab_covered": len(real_vocab & syn_vocab) / len(real_vocab) if real_vocab else 0.0,
    }


def _prompt_following(coverage: list[float]) -> dict[str, Any]:
    """How much of the requested symptoms the notes state."""
    if not coverage:
        return {"available": False, "reason": "the source records no requested symptoms (a JSONL has none)"}
    cov = np.asarray(coverage)
    return {
        "available": True,
        "n": len(cov),
        "mean_coverage": float(cov.mean()),
        "median_coverage": float(np.median(cov)),
        "share_full": float((cov >= 1.0).mean()),
    }
