"""Training sets with and without synthetic notes: stratified subsampling, the MedSyn grid, "fill rare codes".

The MedSyn paper trains on a fraction of the real train split plus a fraction of the synthetic notes, over the
grid :data:`PAPER_GRID`. Both fractions are taken per code (stratified), so every code keeps at least one note and
its share of the set. :func:`fill_rare` is the other strategy: synthetic notes only for codes with fewer than
``target`` real notes, up to ``target``.

Hard codes, on which synthetic notes should matter most, have two definitions here:

- :func:`rarest_codes`: the quarter of codes with the fewest real training notes;
- :func:`lowest_recall_codes`: the quarter of codes that the all-real baseline recalls worst (by cross-validation
  on train, see :func:`medsyn.eval.classify.cv_low_recall_codes`).

Example:
    >>> stratified_indices(["A", "A", "A", "A", "B"], 0.5, seed=0)  # "B" keeps its only note
    [1, 3, 4]
"""

from __future__ import annotations

import logging
import random
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from medsyn.errors import MedsynError
from medsyn.filters.linear import stratified_indices

__all__ = [
    "PAPER_GRID",
    "Setting",
    "parse_setting",
    "build_training_set",
    "fill_rare",
    "rarest_codes",
    "lowest_recall_codes",
]

logger = logging.getLogger(__name__)

Note = dict[str, str]

# (fraction of real train, fraction of synthetic notes), as in the MedSyn paper's upsampling table.
PAPER_GRID: list[tuple[float, float]] = [
    (0.5, 0.0),
    (0.75, 0.0),
    (1.0, 0.0),
    (0.5, 0.5),
    (0.5, 1.0),
    (1.0, 0.25),
    (1.0, 0.5),
    (1.0, 1.0),
]


@dataclass(frozen=True)
class Setting:
    """One training-set recipe.

    Args:
        real: fraction of the real train notes kept (per code).
        synthetic: fraction of the synthetic notes added (per code); ignored when ``fill_to`` is set.
        fill_to: when set, add synthetic notes only to codes with fewer real notes than this, up to it.
        source: which pool of synthetic notes, when a run compares several (``None``: the only one).
    """

    real: float
    synthetic: float = 0.0
    fill_to: int | None = None
    source: str | None = None

    @property
    def name(self) -> str:
        prefix = f"{self.source}: " if self.source and self.uses_synthetic else ""
        if self.fill_to is not None:
            return f"{prefix}real {self.real:g} + fill rare to {self.fill_to}"
        return f"{prefix}real {self.real:g} + syn {self.synthetic:g}"

    @property
    def uses_synthetic(self) -> bool:
        return self.fill_to is not None or self.synthetic > 0


def parse_setting(text: str) -> Setting:
    """Parse ``"REAL:SYN"`` (e.g. ``"0.5:1"``) or ``"REAL:fill=N"`` (e.g. ``"1:fill=30"``) into a :class:`Setting`."""
    try:
        real_s, syn_s = text.split(":")
        real = float(real_s)
        if syn_s.startswith("fill="):
            setting = Setting(real, 0.0, int(syn_s[5:]))
        else:
            setting = Setting(real, float(syn_s))
    except ValueError as err:
        raise MedsynError(f"cannot parse setting {text!r}; expected 'REAL:SYN' like '0.5:1' or '1:fill=30'") from err
    if not 0 < setting.real <= 1 or setting.synthetic < 0:
        raise MedsynError(f"setting {text!r}: the real fraction must be in (0, 1] and the synthetic one >= 0")
    return setting


def fill_rare(real: Sequence[Note], synthetic: Sequence[Note], target: int, seed: int = 0) -> list[Note]:
    """Synthetic notes for the codes with fewer than ``target`` real notes, enough to bring each up to ``target``.

    Args:
        real: the real training notes.
        synthetic: the pool of synthetic notes.
        target: the count each rare code is filled up to (as far as the pool allows).
        seed: the random seed for which synthetic notes are drawn.

    Returns:
        The synthetic notes to add.
    """
    counts = Counter(n["code"] for n in real)
    pool: dict[str, list[Note]] = defaultdict(list)
    for note in synthetic:
        pool[note["code"]].append(note)
    rng = random.Random(seed)
    added: list[Note] = []
    for code in sorted(counts):
        need = target - counts[code]
        if need > 0 and pool.get(code):
            added += rng.sample(pool[code], min(need, len(pool[code])))
    return added


def build_training_set(
    real: Sequence[Note], synthetic: Sequence[Note], setting: Setting, seed: int
) -> tuple[list[Note], int]:
    """The training notes of one setting and seed.

    Synthetic notes of codes that have no real training note are dropped beforehand by the caller's choice of
    pool; this function takes both pools as given.

    Returns:
        ``(notes, n_synthetic)``: real notes first, then synthetic ones.
    """
    real_part = [real[i] for i in stratified_indices([n["code"] for n in real], setting.real, seed)]
    if setting.fill_to is not None:
        syn_part = fill_rare(real_part, synthetic, setting.fill_to, seed)
    elif setting.synthetic > 0:
        idx = stratified_indices([n["code"] for n in synthetic], setting.synthetic, seed + 10_000)
        syn_part = [synthetic[i] for i in idx]
    else:
        syn_part = []
    return list(real_part) + syn_part, len(syn_part)


def rarest_codes(train_labels: Sequence[str], quantile: float = 0.25) -> list[str]:
    """The ``quantile`` share of codes with the fewest training notes (ties at the cut-off are all included)."""
    counts = Counter(train_labels)
    if not counts:
        return []
    cut = float(np.quantile(sorted(counts.values()), quantile))
    return sorted(c for c, n in counts.items() if n <= cut)


def lowest_recall_codes(recall: dict[str, float], quantile: float = 0.25) -> list[str]:
    """The ``quantile`` share of codes (at least one) with the lowest baseline recall, ties broken by code."""
    ordered = sorted(recall, key=lambda c: (recall[c], c))
    return sorted(ordered[: max(1, round(quantile * len(ordered)))])
