"""Generate synthetic notes: a thin script over ``medsyn.pipeline``.

    python scripts/generate.py --config recipes/gemma-270m/generate.yaml --n 100 --out outputs/ru-notes

Same options as ``medsyn generate``; any recipe field can be overridden by a flag.
"""

from __future__ import annotations

import sys

from medsyn.cli import main

if __name__ == "__main__":
    sys.exit(main(["generate", *sys.argv[1:]]))
