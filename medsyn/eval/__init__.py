"""Evaluation of synthetic notes: ICD-10 code prediction with and without them, note quality and privacy.

Modules, each with one job:

- :mod:`medsyn.eval.metrics`: acc@1, hit@3 (as RuMedBench defines them) and macro-F1, overall and on a code subset.
- :mod:`medsyn.filters.linear` (shared with the consistency filter): the fast tf-idf + linear classifier that stands
  in for RuMedBench's baseline.
- :mod:`medsyn.eval.transformer`: an HF encoder classifier with the same interface (torch imported lazily).
- :mod:`medsyn.eval.upsample`: stratified subsampling, the paper's upsampling grid, "fill rare codes", hard codes.
- :mod:`medsyn.eval.quality`: prompt following, realism, diversity and copying/privacy of a set (the per-note
  filter is :mod:`medsyn.filters.note`).
- :mod:`medsyn.eval.report`: the run folder (JSON, markdown, PNG plots).
- :mod:`medsyn.eval.commands`: ``medsyn eval classify`` and ``medsyn eval quality``.

Importing this package imports neither torch nor transformers.
"""

from __future__ import annotations

__all__ = ["metrics", "linear", "transformer", "upsample", "quality", "report", "commands"]
