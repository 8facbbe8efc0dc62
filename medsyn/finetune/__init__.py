"""LoRA fine-tuning of causal LMs on Russian clinical-note instructions.

Modules (each imports torch only when used):

* :mod:`medsyn.finetune.data`: the instruction dataset built from RuMedTop3 (``medsyn data instructions``).
* :mod:`medsyn.finetune.args`: dataclass arguments of the data builder and of ``scripts/finetune.py``.
* :mod:`medsyn.finetune.collate`: tokenisation with answer-only labels and padding-free packing.
* :mod:`medsyn.finetune.train`: the training loop (Accelerate), shared by ``scripts/finetune.py`` and the benchmark.
* :mod:`medsyn.finetune.checkpoint`: resumable checkpoints (adapter + optimizer, scheduler, RNG, data position) and
  the clean stop on SIGTERM.
* :mod:`medsyn.finetune.evaluate`: eval loss and prompt following (symptom coverage) before and after training.
* :mod:`medsyn.finetune.card`: the adapter's model card, with the base weights and licence read from the model.

Importing this package is cheap: it only knows where the packaged adapter lives.
"""

from __future__ import annotations

from pathlib import Path

from medsyn.paths import resource_path

__all__ = ["DEFAULT_ADAPTER_NAME", "default_adapter_path"]

DEFAULT_ADAPTER_NAME = "gemma-3-270m-ru-notes"
"""The LoRA adapter for the embedded Gemma 3 270M that ships inside the package."""


def default_adapter_path() -> Path | None:
    """The packaged adapter folder for the default model, or ``None`` if this install does not ship one.

    Returns:
        ``medsyn/resources/adapters/gemma-3-270m-ru-notes`` when it holds ``adapter_config.json``.
    """
    path = resource_path("adapters", DEFAULT_ADAPTER_NAME)
    return path if (path / "adapter_config.json").exists() else None
