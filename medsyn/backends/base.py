"""The contract every generation backend implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from typing import Any

from medsyn.errors import ConfigError

__all__ = ["Backend", "Generation", "GenerationParams", "Prompt", "clean_generation"]

Prompt = str | list[dict[str, str]]
"""Plain text for base models, or chat messages (``[{"role", "content"}]``) for chat models."""


@dataclass
class GenerationParams:
    """Sampling parameters shared by all backends."""

    max_new_tokens: int = field(default=200, metadata={"help": "the most tokens to generate per note"})
    temperature: float = field(default=0.8, metadata={"help": "sampling temperature; 0 means greedy decoding"})
    top_p: float = field(default=0.95, metadata={"help": "nucleus sampling mass"})
    top_k: int = field(default=50, metadata={"help": "sample among the k most likely tokens (0: no limit)"})
    repetition_penalty: float = field(default=1.1, metadata={"help": "penalty for repeated tokens (1.0: none)"})
    stop: list[str] = field(default_factory=lambda: ["###", "\n\n\n"], metadata={"help": "cut the note here"})

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise ConfigError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if self.temperature < 0:
            raise ConfigError(f"temperature must be >= 0 (0 for greedy), got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ConfigError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.repetition_penalty <= 0:
            raise ConfigError(f"repetition_penalty must be > 0, got {self.repetition_penalty}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Generation:
    """One generated note and what it cost."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str  # "stop" (EOS or a stop string) or "length"


def clean_generation(text: str, stop: list[str]) -> tuple[str, bool]:
    """Cut ``text`` at the first stop string and strip it; returns the text and whether a stop string was hit."""
    cut = len(text)
    for s in stop:
        idx = text.find(s)
        if 0 <= idx < cut:
            cut = idx
    return text[:cut].strip(), cut < len(text)


class Backend(ABC):
    """A text generator.

    Subclasses set ``name`` and implement :meth:`load` and :meth:`generate`. ``chat`` says whether the backend
    wants chat messages (``True``) or plain text prompts (``False``).
    """

    name: str = "backend"
    chat: bool = False

    @abstractmethod
    def load(self) -> None:
        """Create the model or client. Called once before the first :meth:`generate`."""

    @abstractmethod
    def generate(self, prompts: list[Prompt], params: GenerationParams, seed: int | None = None) -> list[Generation]:
        """Generate one note per prompt, in order."""

    def describe(self) -> dict[str, Any]:
        """What to record with each note about the generator (no secrets)."""
        return {"backend": self.name}
