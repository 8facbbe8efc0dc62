"""Keep only notes that carry their code: consistency filtering with the fast linear classifier.

A classifier trained on real notes only (:class:`~medsyn.filters.linear.LinearClassifier`, RuMedBench's recipe) ranks
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
from pathlib import Path
from typing import Any

import numpy as np

from medsyn.errors import MedsynError
from medsyn.filters.consistency import REASON_PREFIX, ConsistencyCheck

__all__ = ["read_rows", "apply_check", "drop_report"]

logger = logging.getLogger(__name__)


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
