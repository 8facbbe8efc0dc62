"""The contract every generation backend implements.

A backend has a ``name``, a :meth:`~Backend.load` that creates its model or client (never at import), a batched
:meth:`~Backend.generate`, a one-request coroutine :meth:`~Backend.agenerate` and :meth:`~Backend.stream`, which
yields one note's text as it is generated (the Space shows it token by token). The generation job only calls
``agenerate``, one coroutine per task, so the same engine drives a local model and a fleet of served ones:

- a served backend answers each request on its own, with retries and routing;
- a local backend gathers the requests in flight into batches for its model (:class:`MicroBatcher`), so no slow
  request holds a batch that a faster one could have left.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import logging
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from medsyn.errors import ConfigError

__all__ = [
    "Backend",
    "Generation",
    "GenerationParams",
    "MicroBatcher",
    "Prompt",
    "clean_generation",
    "request_seed",
]

logger = logging.getLogger(__name__)

Prompt = str | list[dict[str, str]]
"""Plain text for base models, or chat messages (``[{"role", "content"}]``) for chat models."""


@dataclass
class GenerationParams:
    """Sampling parameters shared by all backends, the job and the Space.

    The defaults are those of ``recipes/gemma-270m/generate.yaml``: one paragraph of about 100 words, as RuMedTop3
    notes are, cut at a blank line.
    """

    max_new_tokens: int = field(default=160, metadata={"help": "the most tokens to generate per note"})
    temperature: float = field(default=0.7, metadata={"help": "sampling temperature; 0 means greedy decoding"})
    top_p: float = field(default=0.95, metadata={"help": "nucleus sampling mass"})
    top_k: int = field(default=50, metadata={"help": "sample among the k most likely tokens (0: no limit)"})
    repetition_penalty: float = field(default=1.15, metadata={"help": "penalty for repeated tokens (1.0: none)"})
    stop: list[str] = field(
        default_factory=lambda: ["###", "\n\n"],
        metadata={"help": "cut the note here (a blank line starts something else)"},
    )

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise ConfigError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if self.temperature < 0:
            raise ConfigError(f"temperature must be >= 0 (0 for greedy), got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ConfigError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.top_k < 0:
            raise ConfigError(f"top_k must be >= 0 (0: no limit), got {self.top_k}")
        if self.repetition_penalty <= 0:
            raise ConfigError(f"repetition_penalty must be > 0, got {self.repetition_penalty}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Generation:
    """One generated note, what it cost, and where it came from.

    ``meta`` holds what the backend wants on the row: for a served backend the endpoint that answered, the served
    model id and the parameters actually sent (engines take different fields).
    """

    text: str
    prompt_tokens: int | None  # None where it was not counted (a streamed note)
    completion_tokens: int
    finish_reason: str | None  # "stop" (EOS or a stop string), "length", or None when a stream cannot tell
    meta: dict[str, Any] = field(default_factory=dict)


def clean_generation(text: str, stop: list[str]) -> tuple[str, bool]:
    """Cut ``text`` at the first stop string and strip it; returns the text and whether a stop string was hit.

    A note cut by the token limit can end inside a multi-byte character, which decodes to U+FFFD; that is dropped.
    """
    cut = len(text)
    for s in stop:
        idx = text.find(s)
        if 0 <= idx < cut:
            cut = idx
    return text[:cut].strip().rstrip("\ufffd").rstrip(), cut < len(text)


def request_seed(job_seed: int, task_id: str, attempt: int) -> int:
    """The sampling seed of one request: a stable hash of the job seed, the task id and the attempt.

    It depends on nothing else (not the batch, the concurrency or the resume point), so an engine that honours
    per-request seeds gives the same note for the same task whatever else is in flight.

    Example:
        >>> request_seed(0, "M54-00003-1a2b3c4d5e", 1) == request_seed(0, "M54-00003-1a2b3c4d5e", 1)
        True
    """
    digest = hashlib.sha256(f"{job_seed}:{task_id}:{attempt}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


class Backend(ABC):
    """A text generator.

    Subclasses set ``name`` and implement :meth:`load` and :meth:`generate`; served backends also override
    :meth:`agenerate`. ``chat`` says whether the backend wants chat messages (``True``) or plain text (``False``).
    ``max_in_flight`` is how many requests the job should keep in flight to saturate the backend.
    """

    name: str = "backend"
    chat: bool = False
    max_in_flight: int = 16
    in_process: bool = True  # runs the model here (and so loads an adapter itself), not on a server
    # The prompt template that ``auto`` means when this backend sends plain text and no adapter is named.
    text_template: str = "example_guided"

    _batcher: MicroBatcher | None = None

    @classmethod
    def from_config(cls, config: Any, adapter: str | None = None, template: str = "auto") -> Backend:
        """Build the backend from a generator config (any object with its fields), not yet loaded.

        Args:
            config: a :class:`~medsyn.generator.GeneratorConfig` or an object with the same fields.
            adapter: the resolved adapter (``auto`` already turned into a path or ``None``).
            template: the prompt template, or ``auto`` while it waits on what the backend finds at :meth:`load`.
        """
        raise NotImplementedError(f"backend {cls.name!r} cannot be built from a config")

    @classmethod
    def check(cls, config: Any) -> None:
        """Fail fast on settings this backend cannot run, before anything is loaded or written (none by default)."""
        return None

    def job_fields(self) -> dict[str, Any]:
        """What this backend adds to a job's spec: the settings that change which notes it writes."""
        return {}

    @abstractmethod
    def load(self) -> None:
        """Create the model or client. Called once before the first request."""

    @abstractmethod
    def generate(
        self,
        prompts: list[Prompt],
        params: GenerationParams,
        seed: int | None = None,
        seeds: list[int] | None = None,
    ) -> list[Generation]:
        """Generate one note per prompt, in order.

        Args:
            prompts: text or chat prompts.
            params: sampling parameters.
            seed: one seed for the whole call.
            seeds: one seed per prompt (wins over ``seed``); a backend that can, samples each row from its own.
        """

    async def agenerate(self, prompt: Prompt, params: GenerationParams, seed: int | None = None) -> Generation:
        """Generate one note. The default gathers concurrent calls into batches for :meth:`generate`."""
        if self._batcher is None or self._batcher.loop is not asyncio.get_running_loop():
            self._batcher = MicroBatcher(self, max_batch=getattr(self, "batch_size", 8))
        return await self._batcher.submit(prompt, params, seed)

    def stream(self, prompt: Prompt, params: GenerationParams, seed: int | None = None) -> Iterator[str]:
        """Generate one note and yield its text in pieces as it grows (about a token each where the backend can).

        The pieces joined are the raw text: cut it with :func:`clean_generation`. Closing the iterator early stops
        the generation. The default yields the whole note of :meth:`generate` as one piece.
        """
        yield self.generate([prompt], params, seeds=None if seed is None else [seed])[0].text

    async def aclose(self) -> None:
        """Release what :meth:`agenerate` opened (clients, worker threads)."""
        if self._batcher is not None:
            self._batcher.close()
            self._batcher = None

    def describe(self) -> dict[str, Any]:
        """What to record with each note about the generator (no secrets)."""
        return {"backend": self.name}

    def refresh(self, force: bool = False) -> bool:
        """Take a change in what the backend runs on while a job runs (a fleet file); ``True`` when it changed.

        The job calls it about once a second, and with ``force`` on SIGHUP. The default has nothing to re-read.
        """
        return False

    def label(self) -> str:
        """The engine in a few words, for pages and logs (no secrets)."""
        return self.name


class MicroBatcher:
    """Turns concurrent one-note requests into batched :meth:`Backend.generate` calls on one worker thread.

    Requests that arrive while a batch runs wait for the next one; each batch takes up to ``max_batch`` requests
    with the same parameters, in arrival order. The event loop stays free, so finished notes are written and
    the progress bar moves while the model works.
    """

    def __init__(self, backend: Backend, max_batch: int = 8) -> None:
        self.backend = backend
        self.max_batch = max(1, max_batch)
        self.loop = asyncio.get_running_loop()
        self._queue: list[tuple[Prompt, GenerationParams, int | None, asyncio.Future[Generation]]] = []
        self._wake = asyncio.Event()
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="medsyn-generate")
        self._worker = self.loop.create_task(self._run())

    async def submit(self, prompt: Prompt, params: GenerationParams, seed: int | None) -> Generation:
        future: asyncio.Future[Generation] = self.loop.create_future()
        self._queue.append((prompt, params, seed, future))
        self._wake.set()
        return await future

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            await asyncio.sleep(0)  # let every coroutine that is ready enqueue before the batch is cut
            if not self._queue:
                self._wake.clear()
                continue
            params = self._queue[0][1]
            batch = [item for item in self._queue if item[1] is params or item[1] == params][: self.max_batch]
            for item in batch:
                self._queue.remove(item)
            live = [item for item in batch if not item[3].cancelled()]
            if not live:
                continue
            prompts, seeds = [p for p, *_ in live], [s for _, _, s, _ in live]
            try:
                results = await self.loop.run_in_executor(
                    self._executor,
                    lambda: self.backend.generate(prompts, params, seeds=seeds),  # noqa: B023 (awaited at once)
                )
            except Exception as err:  # noqa: BLE001 - handed to every request of the batch
                for *_, future in live:
                    if not future.done():
                        future.set_exception(err)
                continue
            for (*_, future), result in zip(live, results):
                if not future.done():
                    future.set_result(result)

    def close(self) -> None:
        self._worker.cancel()
        self._executor.shutdown(wait=False, cancel_futures=True)
