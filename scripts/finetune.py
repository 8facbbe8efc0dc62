"""Fine-tune a causal LM with LoRA on the Russian clinical-note instructions.

    accelerate launch --config_file recipes/accelerate/cpu.yaml scripts/finetune.py --config recipes/gemma-270m/finetune.yaml

Build the data first with ``medsyn data instructions --out outputs/instructions``. On GPUs use
``recipes/accelerate/gpu.yaml`` (one GPU), ``ddp.yaml`` (several) or ``fsdp.yaml`` (a model too big for one GPU),
e.g. ``accelerate launch --config_file recipes/accelerate/ddp.yaml scripts/finetune.py --config
recipes/llama-7b/finetune.yaml``. Any recipe field can be overridden by a flag (``--max_steps 20``); add
``--push_to_hub USER/REPO`` to publish the adapter (token from ``HF_TOKEN`` or ``hf auth login``).

The output folder holds the adapter, the tokenizer, the resolved recipe (``finetune.yaml``), ``metrics.json``,
``log.jsonl`` (one row per logging step, and one per resume) and the model card (``README.md``).

Preemption: every ``save_steps`` steps, on SIGTERM and at ``time_limit_minutes``, the run writes a checkpoint
(adapter, optimizer, scheduler, RNG, data position) to ``<output_dir>/checkpoints/step-NNNNNN``, keeping the last
``save_total_limit``. Run the same command with ``--resume_from_checkpoint auto`` to go on from the latest one; the
run ends where an unbroken one would. A run stopped by SIGTERM exits with code 143.
"""

from __future__ import annotations

import logging
import shlex
import sys

from medsyn.config import parse_args
from medsyn.errors import MedsynError, MissingExtraError
from medsyn.finetune.args import FINETUNE_ARGS
from medsyn.finetune.train import train


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S", level="INFO")
    log = logging.getLogger("finetune")
    try:
        model_args, data_args, train_args = parse_args(FINETUNE_ARGS, argv, description=__doc__)
        command = "accelerate launch scripts/finetune.py " + shlex.join(argv)
        result = train(model_args, data_args, train_args, command=command)
    except (MedsynError, MissingExtraError) as err:
        log.error("%s", err)
        return 2
    log.info("done: %s", result.metrics)
    return 143 if result.metrics.get("stopped_by") == "signal" else 0


if __name__ == "__main__":
    sys.exit(main())
