"""Evaluate synthetic notes: a thin script over ``medsyn.eval.commands`` (same options as ``medsyn eval``).

    python scripts/evaluate.py classify --config recipes/eval/upsampling-gpt4.yaml

Other uses:

    python scripts/evaluate.py classify                          # linear baseline, RuMedTop3 train → dev
    python scripts/evaluate.py classify --model DeepPavlov/rubert-base-cased --seeds 0
    python scripts/evaluate.py quality medsyn-reference:gpt4
    python scripts/evaluate.py consistency outputs/ru-notes --top_k 10 --out outputs/ru-notes-consistent

Any recipe field can be overridden by a flag. Results go to a run folder under runs/eval/.
"""

from __future__ import annotations

import logging
import sys

from medsyn.eval.commands import classify_main, consistency_main, quality_main

COMMANDS = {"classify": classify_main, "quality": quality_main, "consistency": consistency_main}


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in COMMANDS:
        sys.stderr.write(
            f"usage: python scripts/evaluate.py {{{','.join(COMMANDS)}}} [options]  (see --help of each)\n"
        )
        return 2
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S"
    )
    return COMMANDS[argv[0]](argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
