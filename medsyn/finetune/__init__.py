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

from medsyn.models import DEFAULT_ADAPTER_NAME, default_adapter_path

__all__ = ["DEFAULT_ADAPTER_NAME", "default_adapter_path"]
