"""Evaluate synthetic notes: a thin script over ``medsyn.eval.commands`` (same options as ``medsyn eval``).

    python scripts/evaluate.py classify --config recipes/eval/upsampling-gpt4.yaml

Other uses:

    python scripts/evaluate.py classify                          # linear baseline, RuMedTop3 train → dev
    python scripts/evaluate.py classify --model DeepPavlov/rubert-base-cased --seeds 0
    python scripts/evaluate.py quality ../shared/data/medsyn_reference/gpt4_notes.jsonl

Any recipe field can be overridden by a flag. Results go to a run folder under runs/eval/.
"""

from __future__ import annotations

import logging
import sys

from medsyn.eval.commands import classify_main, quality_main


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("classify", "quality"):
        sys.stderr.write("usage: python scripts/evaluate.py {classify,quality} [options]  (see --help of each)\n")
        return 2
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S"
    )
    return (classify_main if argv[0] == "classify" else quality_main)(argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
