"""An HF encoder fine-tuned to predict the ICD-10 code, with the same interface as the linear classifier.

Any encoder id or local path works (``DeepPavlov/rubert-base-cased`` is what the MedSyn paper used); a
sequence-classification head with one output per code is put on top and the whole model is fine-tuned with
cross-entropy. torch and transformers are imported only when a model is built.

Example (online):
    >>> clf = TransformerClassifier(TransformerConfig(model="DeepPavlov/rubert-base-cased", epochs=5))
    >>> clf.fit(texts, codes).predict(["болит голова третий день"])  # doctest: +SKIP
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from medsyn.errors import MedsynError, require

__all__ = ["TransformerConfig", "TransformerClassifier"]

logger = logging.getLogger(__name__)


@dataclass
class TransformerConfig:
    """Options of :class:`TransformerClassifier`."""

    model: str = field(default="DeepPavlov/rubert-base-cased", metadata={"help": "HF encoder id or local path"})
    epochs: int = field(default=5, metadata={"help": "training epochs"})
    batch_size: int = field(default=16, metadata={"help": "training and scoring batch size"})
    learning_rate: float = field(default=3e-5, metadata={"help": "AdamW learning rate"})
    weight_decay: float = field(default=0.01, metadata={"help": "AdamW weight decay"})
    warmup_ratio: float = field(default=0.1, metadata={"help": "share of steps with a linear warm-up"})
    max_length: int = field(default=256, metadata={"help": "tokens per note at most"})
    seed: int = field(default=0, metadata={"help": "seed for the head's initialisation and the batch order"})
    device: str | None = field(default=None, metadata={"help": "torch device; cuda when available, else cpu"})

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1:
            raise MedsynError(f"epochs and batch_size must be >= 1, got {self.epochs} and {self.batch_size}")


class TransformerClassifier:
    """Fine-tune an HF encoder on (note, code) pairs; ``fit``/``decision_function``/``predict`` like the linear one.

    Attributes:
        labels_: the codes, in the order of the score columns.
    """

    def __init__(self, config: TransformerConfig | None = None, **overrides) -> None:
        base = config or TransformerConfig()
        self.config = TransformerConfig(**{**base.__dict__, **overrides})
        self.labels_: list[str] = []
        self.losses_: list[float] = []

    def _device(self):
        torch = require("torch", "torch", "the transformer classifier")
        return torch.device(self.config.device or ("cuda" if torch.cuda.is_available() else "cpu"))

    def fit(
        self, texts: Sequence[str], labels: Sequence[str], sample_weight: Sequence[float] | None = None
    ) -> TransformerClassifier:
        """Fine-tune on notes and their codes (``sample_weight`` scales each note's loss)."""
        torch = require("torch", "torch", "the transformer classifier")
        from transformers import AutoModelForSequenceClassification, AutoTokenizer, get_linear_schedule_with_warmup

        cfg = self.config
        if len(texts) != len(labels):
            raise MedsynError(f"got {len(texts)} notes but {len(labels)} labels; give one code per note")
        torch.manual_seed(cfg.seed)
        self.labels_ = sorted(set(labels))
        index = {c: i for i, c in enumerate(self.labels_)}
        device = self._device()
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(cfg.model)
            self.model = AutoModelForSequenceClassification.from_pretrained(
                cfg.model,
                num_labels=len(self.labels_),
                id2label=dict(enumerate(self.labels_)),
                label2id=index,
                ignore_mismatched_sizes=True,
            ).to(device)
        except OSError as err:
            import os

            offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")
            how = (
                "HF_HUB_OFFLINE is set, so Hub models cannot be downloaded; download it where you are online "
                "(hf download ID --local-dir DIR) and pass --model DIR"
                if offline and not Path(cfg.model).exists()
                else "pass a Hub id of an encoder or a local folder with config.json, weights and a tokenizer"
            )
            raise MedsynError(f"could not load classifier model {cfg.model!r}: {how}") from err
        y = torch.tensor([index[c] for c in labels])
        w = torch.ones(len(y)) if sample_weight is None else torch.tensor(list(sample_weight), dtype=torch.float)
        steps = cfg.epochs * ((len(y) + cfg.batch_size - 1) // cfg.batch_size)
        opt = torch.optim.AdamW(self.model.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
        sched = get_linear_schedule_with_warmup(opt, int(cfg.warmup_ratio * steps), steps)
        gen = torch.Generator().manual_seed(cfg.seed)
        from tqdm.auto import tqdm

        self.model.train()
        self.losses_ = []
        with tqdm(total=steps, desc=f"fine-tune {cfg.model}", unit="step", leave=False) as bar:
            for _ in range(cfg.epochs):
                order = torch.randperm(len(y), generator=gen).tolist()
                for start in range(0, len(order), cfg.batch_size):
                    idx = order[start : start + cfg.batch_size]
                    batch = self._encode([texts[i] for i in idx]).to(device)
                    logits = self.model(**batch).logits
                    loss_each = torch.nn.functional.cross_entropy(logits, y[idx].to(device), reduction="none")
                    loss = (loss_each * w[idx].to(device)).sum() / w[idx].sum().to(device)
                    loss.backward()
                    torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
                    opt.step()
                    sched.step()
                    opt.zero_grad()
                    self.losses_.append(float(loss.detach()))
                    bar.set_postfix(loss=f"{self.losses_[-1]:.3f}")
                    bar.update(1)
        return self

    def _encode(self, texts: list[str]):
        return self.tokenizer(
            texts, padding=True, truncation=True, max_length=self.config.max_length, return_tensors="pt"
        )

    def decision_function(self, texts: Sequence[str]) -> np.ndarray:
        """Logits, shape ``(len(texts), len(labels_))``."""
        torch = require("torch", "torch", "the transformer classifier")
        if not self.labels_:
            raise MedsynError("this TransformerClassifier is not fitted yet; call fit(texts, labels) first")
        self.model.eval()
        device = next(self.model.parameters()).device
        out = []
        with torch.no_grad():
            for start in range(0, len(texts), self.config.batch_size):
                batch = self._encode(list(texts[start : start + self.config.batch_size])).to(device)
                out.append(self.model(**batch).logits.float().cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, len(self.labels_)))

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Softmax probabilities over the codes."""
        z = self.decision_function(texts)
        z = np.exp(z - z.max(axis=1, keepdims=True))
        return z / z.sum(axis=1, keepdims=True)

    def predict(self, texts: Sequence[str]) -> list[str]:
        """The best-scored code of each note."""
        return [self.labels_[j] for j in np.argmax(self.decision_function(texts), axis=1)]
