"""Measure prompt following on RuMedTop3 dev before and after a LoRA adapter.

    python scripts/evaluate_adapter.py --adapter runs/gemma-3-270m-ru-notes --tasks 96
    python scripts/evaluate_adapter.py --adapter runs/gemma-3-270m-ru-notes --rescore true   # same notes, current matcher

Generates one note per dev task (symptoms extracted from a real dev note, sampled sex and age) with the base model
and with the adapter, under the same seed and sampling settings, and scores the share of requested symptoms the
note states (lemma-matched within one clause, denied symptoms not counted). Writes ``<adapter>/eval.json`` and adds
the results and sample notes to the adapter's card.
"""

from __future__ import annotations

import logging
import sys

from medsyn.finetune.evaluate import main

if __name__ == "__main__":
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S", level="INFO")
    sys.exit(main(sys.argv[1:]))
