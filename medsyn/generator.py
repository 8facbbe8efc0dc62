"""One note at a time: the :class:`NoteGenerator` that the job, the Space and scripts share.

A ``NoteGenerator`` holds a backend, a prompt builder, sampling parameters and the quality filter. It turns a
:class:`~medsyn.sampling.Task` into a finished record: it renders the prompt, asks the backend with a per-request
seed, checks the note, tries again with the next seed while the filter turns it down, and records everything a
dataset row needs. A request that fails for good (a 4xx answer, retries exhausted) becomes a ``failed`` record
that names the error; the job never counts it as done, so a re-run tries it again.

Example:
    >>> gen = NoteGenerator(GeneratorConfig(), GenerationParams())      # doctest: +SKIP
    >>> gen.load()                                                      # doctest: +SKIP
    >>> task = gen.task("M54.5", symptoms=["боль в пояснице"], age=52) # doctest: +SKIP
    >>> gen.generate([task])[0]["note"]                                 # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medsyn.backends import Backend, GenerationParams, backend_class, backend_from_config
from medsyn.backends.base import Generation, clean_generation, request_seed
from medsyn.errors import ConfigError, EndpointsUnavailableError, GenerationAborted, RequestFailed
from medsyn.models import DEFAULT_MODEL, adapter_label, default_adapter_path
from medsyn.prompts import get_prompt_builder
from medsyn.sampling import Task, TaskSampler
from medsyn.text import symptom_coverage

MAX_SHOT_CHARS = 600  # a few-shot example is cut here, so that k of them leave the model room to write

if TYPE_CHECKING:
    from medsyn.filters.note import FilterResult
    from medsyn.kg import MedicalKG

__all__ = [
    "GeneratorConfig",
    "NoteGenerator",
    "StreamUpdate",
    "adapter_hash",
    "resolve_adapter",
    "resolve_template",
]

logger = logging.getLogger(__name__)


def resolve_adapter(model: str, adapter: str | None, in_process: bool = True) -> str | None:
    """``auto`` → the packaged adapter when ``model`` is the embedded default run in-process; ``none`` → None.

    A served model has its adapter merged or loaded by the server, so ``auto`` means none for an endpoint.
    """
    if adapter in (None, "", "none"):
        return None
    if adapter != "auto":
        return adapter
    if not in_process or model not in (DEFAULT_MODEL, "", None):
        return None
    path = default_adapter_path()
    return str(path) if path and Path(path, "adapter_config.json").exists() else None


def resolve_template(template: str, adapter: str | None, backend: Backend | None = None) -> str:
    """``auto`` → ``instruction`` for a model trained on medsyn's instruction format, else ``example_guided``.

    Without an adapter, what the model is trained on shows only once the backend is loaded: a chat model gets the
    example-guided prompt, and a text one its backend's ``text_template``. Until then ``auto`` stays ``auto``.
    """
    if template != "auto":
        return template
    if adapter:
        return "instruction"
    if backend is None:
        return "auto"
    return "example_guided" if backend.chat else backend.text_template


def adapter_hash(adapter: str | None) -> str | None:
    """A content hash of a local adapter folder (its config and weights); the id itself for a Hub adapter."""
    if not adapter:
        return None
    path = Path(adapter)
    if not path.is_dir():
        return adapter
    digest = hashlib.sha256()
    for file in sorted(path.glob("adapter_*")):
        digest.update(file.name.encode())
        digest.update(file.read_bytes())
    return digest.hexdigest()[:16]


@dataclass
class GeneratorConfig:
    """How one note is made: the graph and task bounds, the model and its backend, the prompt, the filter."""

    seed: int = field(default=0, metadata={"help": "random seed for tasks and sampling"})
    # Knowledge graph and tasks
    graph: str | None = field(default=None, metadata={"help": "graph file (default location, built if missing)"})
    codes: list[str] = field(default_factory=list, metadata={"help": "only these ICD-10 categories or codes"})
    min_symptoms: int = field(default=2, metadata={"help": "fewest symptoms per task"})
    max_symptoms: int = field(default=5, metadata={"help": "most symptoms per task"})
    min_example_chars: int = field(default=80, metadata={"help": "shortest style example to use"})
    fill_rare_to: int | None = field(
        default=None,
        metadata={
            "help": "targeting: tasks go first to categories with fewer than N real notes, enough to bring each "
            "to N; the rest of --n is spread by the MedSyn weights"
        },
    )
    notes: str | None = field(
        default=None,
        metadata={
            "help": "real notes for the copy index and the consistency check (a notes source, see medsyn.corpus); "
            "the graph's own notes when unset"
        },
    )
    text_column: str | None = field(default=None, metadata={"help": "--notes' text column, when not a usual name"})
    code_column: str | None = field(default=None, metadata={"help": "--notes' ICD-10 column, when not a usual name"})
    notes_name: str | None = field(
        default=None, metadata={"help": "the name the card gives --notes (never a path); the graph's name when unset"}
    )
    # Model
    backend: str = field(default="transformers", metadata={"help": "transformers (in-process) or endpoint (served)"})
    model: str = field(
        default=DEFAULT_MODEL,
        metadata={
            "help": "model id or path; 'gemma-3-270m' is the embedded default; with an endpoint, the served name"
        },
    )
    adapter: str = field(
        default="auto",
        metadata={"help": "PEFT adapter path or id; 'auto' uses the packaged one for the default model; 'none'"},
    )
    template: str = field(
        default="auto",
        metadata={
            "help": "prompt: example_guided, instruction, few_shot (the instruction format after --few_shot_k real "
            "notes of the code as worked examples), or auto (instruction with an adapter, else example_guided)"
        },
    )
    few_shot_k: int = field(default=3, metadata={"help": "few_shot: real notes of the code shown before the task"})
    prompt_format: str = field(default="auto", metadata={"help": "auto, chat or text"})
    dtype: str = field(default="auto", metadata={"help": "auto, bfloat16, float16 or float32"})
    device: str | None = field(default=None, metadata={"help": "cpu, cuda, cuda:1… (CUDA if available)"})
    batch_size: int = field(default=8, metadata={"help": "most prompts per forward batch of the in-process model"})
    vocab: str = field(
        default="full",
        metadata={
            "help": "full, or notes: the in-process model writes only tokens the real notes, symptoms and code "
            "names use (a narrower LM head: 2.4x faster on CPU for Gemma's 262k vocabulary)"
        },
    )
    # Served endpoints
    endpoint: list[str] = field(
        default_factory=list,
        metadata={"help": "endpoint base URL (repeatable: --endpoint URL1 URL2), or a file with one URL per line"},
    )
    engine: str = field(
        default="auto", metadata={"help": "auto (asked at start), vllm, sglang, tgi, llama.cpp, transformers, openai"}
    )
    max_concurrency: int = field(default=16, metadata={"help": "requests in flight per endpoint, at most"})
    timeout: float = field(default=120.0, metadata={"help": "seconds per request before it is retried"})
    max_retries: int = field(default=5, metadata={"help": "retries per request (429, 5xx, timeouts, bad bodies)"})
    # Filtering
    filter: bool = field(default=True, metadata={"help": "keep only notes that use the symptoms and copy nothing"})
    min_symptom_coverage: float = field(
        default=0.5, metadata={"help": "least share of requested symptoms in a kept note"}
    )
    max_copy_score: float = field(
        default=0.7,
        metadata={"help": "a note whose word 3-grams lie in one real note at this share or more is dropped"},
    )
    max_attempts: int = field(
        default=3, metadata={"help": "tries per task while the filter rejects its note (1: no retry)"}
    )
    best_of: int = field(
        default=1,
        metadata={
            "help": "candidates per try: of those the filter keeps, the one with the highest symptom coverage x "
            "label fidelity x realism is written (1: the first note)"
        },
    )
    clinical_filter: bool = field(
        default=True,
        metadata={
            "help": "drop notes with a clinical contradiction (the other sex's organs, impossible vital signs, "
            "age-bound terms at the wrong age) and try again"
        },
    )
    consistency_top_k: int = field(
        default=0,
        metadata={
            "help": "keep a note only if a linear classifier trained on real notes ranks its code in the top K "
            "(0: off)"
        },
    )

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ConfigError(f"max_attempts must be >= 1, got {self.max_attempts}")
        if self.consistency_top_k < 0:
            raise ConfigError(f"consistency_top_k must be >= 0 (0: off), got {self.consistency_top_k}")
        if self.fill_rare_to is not None and self.fill_rare_to < 1:
            raise ConfigError(f"fill_rare_to must be >= 1 real notes per category, got {self.fill_rare_to}")
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.template not in ("auto", "example_guided", "instruction", "few_shot"):
            raise ConfigError(f"template must be auto, example_guided, instruction or few_shot, got {self.template!r}")
        if self.few_shot_k < 1 or self.best_of < 1:
            raise ConfigError(f"few_shot_k and best_of must be >= 1, got {self.few_shot_k} and {self.best_of}")
        if self.vocab not in ("full", "notes"):
            raise ConfigError(f"vocab must be full or notes, got {self.vocab!r}")
        if self.vocab == "notes" and self.backend != "transformers":
            raise ConfigError(
                "vocab 'notes' narrows an in-process model's LM head; use it with backend 'transformers', "
                "or drop it for a served engine"
            )
        if self.prompt_format not in ("auto", "chat", "text"):
            raise ConfigError(f"prompt_format must be auto, chat or text, got {self.prompt_format!r}")
        if not 0 <= self.min_symptom_coverage <= 1 or not 0 <= self.max_copy_score <= 1:
            raise ConfigError("min_symptom_coverage and max_copy_score are shares in [0, 1]")
        if self.max_concurrency < 1 or self.max_retries < 0 or self.timeout <= 0:
            raise ConfigError(
                f"need max_concurrency >= 1, max_retries >= 0 and timeout > 0; got {self.max_concurrency}, "
                f"{self.max_retries} and {self.timeout}"
            )
        if self.backend == "endpoint" and not self.endpoint:
            raise ConfigError(
                "backend 'endpoint' needs --endpoint URL (e.g. http://127.0.0.1:8000 from 'medsyn serve')"
            )
        if self.endpoint and self.backend == "transformers":
            self.backend = "endpoint"  # an endpoint given means served generation


# ---------------------------------------------------------------------------------------------- the job


@dataclass
class StreamUpdate:
    """One step of :meth:`NoteGenerator.stream`: the note so far, and on the last step its finished record."""

    text: str
    record: dict[str, Any] | None = None


class NoteGenerator:
    """Config + sampling parameters → finished note records.

    Args:
        config: the generation config (model, backend, template, filter and retry settings).
        params: sampling parameters.
        kg: the knowledge graph (loaded from ``config.graph`` when ``None``).
        note_filter: a :class:`~medsyn.filters.note.NoteFilter`; built from RuMedTop3 train when ``None`` and
            ``config.filter`` is on.
        consistency: a :class:`~medsyn.filters.consistency.ConsistencyCheck`; trained on RuMedTop3 train when ``None``
            and ``config.consistency_top_k`` is set.
        backend: a loaded backend to share (the Space's one engine for every request); built by :meth:`load` when
            ``None``.
    """

    def __init__(
        self,
        config: GeneratorConfig,
        params: GenerationParams | None = None,
        kg: MedicalKG | None = None,
        note_filter: Any = None,
        consistency: Any = None,
        backend: Backend | None = None,
    ) -> None:
        self.config = config
        self.params = params or GenerationParams()
        self._kg = kg
        self.note_filter = note_filter
        self.consistency = consistency
        self.adapter = resolve_adapter(config.model, config.adapter, backend_class(config.backend).in_process)
        self.template = resolve_template(config.template, self.adapter)  # settled at load when still auto
        self.backend = backend
        if backend is not None:
            self.template = resolve_template(self.template, self.adapter, backend)
        self._sampler: TaskSampler | None = None
        self._params_cache: tuple[GenerationParams | None, str] = (None, "")
        self._real: list[dict[str, Any]] | None = None
        self._clinical: Any = None
        self._shot_symptoms: dict[str, list[str]] = {}
        self._extractor: Any = None
        self.ranker: Any = None  # the best-of-N NoteRanker, trained on first use
        self.notes_fingerprint: str | None = None  # of --notes, once read
        self.stopping = False  # set when the job stops: a task the filter would try again is left for the resume

    # ------------------------------------------------------------------ parts

    @property
    def kg(self) -> MedicalKG:
        if self._kg is None:
            from medsyn.kg import load_graph

            self._kg = load_graph(self.config.graph)
        return self._kg

    @property
    def sampler(self) -> TaskSampler:
        if self._sampler is None:
            c = self.config
            self._sampler = TaskSampler(
                self.kg, c.seed, c.min_symptoms, c.max_symptoms, c.min_example_chars, c.codes or None, c.fill_rare_to
            )
        return self._sampler

    def load(self) -> NoteGenerator:
        """Create the backend and the filter. Returns ``self``."""
        if self.backend is None:
            self.backend = backend_from_config(self.config, adapter=self.adapter, template=self.template)
            self.backend.load()
            if self.config.vocab == "notes":
                self.backend.restrict_vocab(*self._vocab_texts())
        self.template = resolve_template(self.template, self.adapter, self.backend)
        if self.note_filter is None and self.config.filter:
            from medsyn.filters.note import NoteFilter

            self.note_filter = NoteFilter.from_real(
                [n["text"] for n in self.real_notes()],
                min_symptom_coverage=self.config.min_symptom_coverage,
                max_copy_score=self.config.max_copy_score,
            )
        if self.consistency is None and self.config.consistency_top_k:
            from medsyn.filters.consistency import ConsistencyCheck

            self.consistency = ConsistencyCheck.from_real(self.real_notes(), self.config.consistency_top_k)
        return self

    @property
    def clinical(self) -> Any:
        """The :class:`~medsyn.filters.clinical.ClinicalCheck` the filter applies with ``clinical_filter``."""
        if self._clinical is None:
            from medsyn.filters.clinical import ClinicalCheck

            self._clinical = ClinicalCheck()
        return self._clinical

    def _vocab_texts(self) -> tuple[list[str], list[str]]:
        """What ``vocab: notes`` lets the model write: the real notes, and the graph's symptoms, code names and
        examples with the stop strings."""
        kg = self.kg
        extra = [*self.params.stop]
        for category in kg.categories():
            extra += [e.symptom for e in kg.symptoms(category)] + [e["text"] for e in kg.examples(category)]
            extra += [kg.entry(code)["name"] for code in [category, *kg.leaf_codes(category)]]
        return [n["text"] for n in self.real_notes()], extra

    def real_notes(self) -> list[dict[str, Any]]:
        """The real notes the filter indexes and the consistency check learns from: ``--notes`` when given, else
        the graph's own (RuMedTop3 train for the packaged graph)."""
        if self._real is None:
            c = self.config
            if c.notes:
                from medsyn.corpus import load_corpus

                corpus = load_corpus(c.notes, c.text_column, c.code_column)
                self._real, self.notes_fingerprint = corpus.notes, corpus.fingerprint
            elif self.kg.corpus:
                from medsyn.corpus import notes_fingerprint

                self._real = self.kg.notes()
                self.notes_fingerprint = notes_fingerprint(self._real)
            else:
                from medsyn.data import load_rumedtop3

                self._real = load_rumedtop3("train")
        return self._real

    # ------------------------------------------------------------------ tasks

    def task(
        self,
        code: str,
        symptoms: list[str] | None = None,
        sex: str | None = None,
        age: int | None = None,
        seed: int = 0,
    ) -> Task:
        """One task for ``code``: the given fields, the rest drawn as the sampler draws them.

        Args:
            code: an ICD-10 category or code with symptoms in the graph (e.g. ``M54`` or ``M54.5``).
            symptoms: the symptoms to ask for (drawn from the graph when ``None``).
            sex: ``"M"`` or ``"F"`` (drawn, respecting sex-specific codes, when ``None``).
            age: the patient's age (drawn when ``None``).
            seed: the random seed of the draws.
        """
        return self.sampler.custom_task(code, symptoms=symptoms, sex=sex, age=age, seed=seed)

    def prompt(self, task: Task) -> Any:
        """The prompt for ``task`` in the backend's format (chat messages or text)."""
        chat = self.backend.chat if self.backend is not None else False
        builder = get_prompt_builder(resolve_template(self.template, self.adapter, self.backend))
        row = task.to_dict()
        if builder.name == "few_shot":
            row["examples"] = self.shots(task)
        return builder.messages(row) if chat else builder.text(row)

    def shots(self, task: Task) -> list[dict[str, Any]]:
        """The few-shot prompt's worked examples for ``task``: real notes of its code (its category's when the code
        has none of its own, then the category's to make up ``few_shot_k``), drawn by a hash of the task id, the
        task's style example among them and nearest the note to write; each with the complaints the graph's
        extractor reads in it."""
        own = [e for e in self.kg.examples(task.icd10_code) if e["id"] != task.example_id]
        seen = {task.example_id, *(e["id"] for e in own)}
        more = [e for e in self.kg.examples(task.category) if e["id"] not in seen]
        rng = random.Random(f"{self.config.seed}:{task.id}:shots")
        rng.shuffle(own)
        rng.shuffle(more)
        first = [{"id": task.example_id, "text": task.example_note}] if task.example_id else []
        if self._extractor is None:
            self._extractor = self.kg.extractor()
        out = []
        for example in (first + own + more)[: self.config.few_shot_k]:
            if example["id"] not in self._shot_symptoms:
                self._shot_symptoms[example["id"]] = self._extractor.extract(example["text"])
            text = " ".join(example["text"].split())[:MAX_SHOT_CHARS]
            out.append({"text": text, "symptoms": self._shot_symptoms[example["id"]] or [task.icd10_name]})
        return out[::-1]

    # ------------------------------------------------------------------ generation

    def generate(self, tasks: list[Task]) -> list[dict[str, Any]]:
        """Generate a record for each task (blocking; runs the tasks concurrently)."""
        if self.backend is None:
            self.load()

        async def run() -> list[dict[str, Any]]:
            try:
                return list(await asyncio.gather(*(self.agenerate(t) for t in tasks)))
            finally:
                await self.backend.aclose()

        return asyncio.run(run())

    async def agenerate(self, task: Task) -> dict[str, Any] | None:
        """One finished record for ``task``: kept, rejected after ``max_attempts`` tries, or failed.

        ``None`` when the job is stopping (:attr:`stopping`) before the filter's tries are over.
        """
        assert self.backend is not None, "call load() first"
        prompt = self.prompt(task)
        record: dict[str, Any] = {}
        n = self.config.best_of
        for attempt in range(1, self.config.max_attempts + 1):
            # candidate 0 has the seed a one-candidate job gives the try; the others a seed of their own
            seeds = [
                request_seed(self.config.seed, task.id if j == 0 else f"{task.id}#{j}", attempt) for j in range(n)
            ]
            try:
                generations = await asyncio.gather(*(self.backend.agenerate(prompt, self.params, s) for s in seeds))
            except (EndpointsUnavailableError, GenerationAborted):
                raise  # the run stops: no endpoint to send anything to
            except RequestFailed as err:
                if err.endpoint is None:
                    logger.warning("task %s failed: %s", task.id, err)
                return self.failed_record(task, prompt, seeds[0], attempt, err.kind, str(err), err.endpoint)
            records = [self.record(task, prompt, g, s, attempt) for g, s in zip(generations, seeds)]
            record = self.best(task, records)
            if record["kept"]:
                break
            if self.stopping and attempt < self.config.max_attempts:
                return None  # not written: the resume runs this task from its first try, as an unbroken run would
        return record

    def stream(self, task: Task, attempt: int = 1) -> Iterator[StreamUpdate]:
        """One note for ``task`` as it is written: the text so far after each piece, then the finished record.

        One try, no retry: a visitor sees the note the filter judged. The last update carries the record (as
        :meth:`record` makes it, with ``completion_tokens`` counting streamed pieces and no prompt token count).
        A backend error propagates (:class:`~medsyn.errors.RequestFailed`).
        """
        if self.backend is None:
            self.load()
        prompt = self.prompt(task)
        seed = request_seed(self.config.seed, task.id, attempt)
        raw, pieces, stopped = "", 0, False
        pieces_iter = self.backend.stream(prompt, self.params, seed)
        try:
            for piece in pieces_iter:
                raw, pieces = raw + piece, pieces + 1
                text, stopped = clean_generation(raw, self.params.stop)
                if stopped:
                    break
                yield StreamUpdate(text, None)
        finally:
            pieces_iter.close()
        text, stopped = clean_generation(raw, self.params.stop)
        generation = Generation(text, None, pieces, "stop" if stopped else None)
        yield StreamUpdate(text, self.record(task, prompt, generation, seed, attempt))

    def best(self, task: Task, records: list[dict[str, Any]]) -> dict[str, Any]:
        """Of one try's candidate records, the kept one that the ranker scores highest (the first when there is
        one candidate); the first candidate when the filter kept none."""
        kept = [r for r in records if r["kept"]]
        if len(records) == 1 or not kept:
            return records[0]
        if self.ranker is None:
            self.ranker = self._make_ranker()
        texts = [r["note"] for r in kept]
        scores = self.ranker.scores(texts, [task.category] * len(kept), [task.symptoms] * len(kept))
        return kept[max(range(len(kept)), key=lambda i: (scores[i], -i))]

    def _make_ranker(self) -> Any:
        from medsyn.data import load_reference
        from medsyn.filters.rank import NoteRanker

        return NoteRanker.from_notes(self.real_notes(), load_reference("gpt4"))

    def verdict(self, task: Task, text: str) -> tuple[bool, list[str]]:
        """Whether the filter keeps ``text`` for ``task``, and why not."""
        result = self.judge(task, text)
        return result.keep, result.reasons

    def judge(self, task: Task, text: str) -> FilterResult:
        """The filter's and the consistency check's verdict on ``text`` for ``task``, with the filter's metrics."""
        from medsyn.filters.note import FilterResult

        if not text.strip():
            return FilterResult(False, ["empty"])
        result = FilterResult(True)
        if self.note_filter is not None:
            result = self.note_filter.check(text, task.symptoms, task.example_note)
        if self.config.clinical_filter and self.note_filter is not None:
            result.reasons += self.clinical.findings(text, task.sex, task.age)
        if self.consistency is not None:
            (_, reason), *_ = self.consistency.verdicts([text], [task.category])
            if reason:
                result.reasons.append(reason)
        result.keep = not result.reasons
        return result

    def _params_json(self) -> str:
        """The sampling parameters as the rows carry them (made once per parameters object)."""
        if self._params_cache[0] is not self.params:
            self._params_cache = (self.params, json.dumps(self.params.to_dict(), ensure_ascii=False))
        return self._params_cache[1]

    def _base(self, task: Task, prompt: Any, seed: int, attempt: int) -> dict[str, Any]:
        return {
            "id": task.id,
            "icd10_code": task.icd10_code,
            "icd10_name": task.icd10_name,
            "category": task.category,
            "symptoms": task.symptoms,
            "sex": task.sex,
            "age": task.age,
            "example_id": task.example_id,
            "prompt": prompt if isinstance(prompt, str) else json.dumps(prompt, ensure_ascii=False),
            "template": self.template,
            "model": self.config.model,
            "adapter": adapter_label(self.adapter),
            "backend": self.backend.name if self.backend else self.config.backend,
            "generation_params": self._params_json(),
            "seed": self.config.seed,
            "request_seed": seed,
            "attempts": attempt,
            "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }

    def record(self, task: Task, prompt: Any, gen: Generation, seed: int, attempt: int) -> dict[str, Any]:
        """The dataset row of one generated note, with the filter's verdict."""
        kept, reasons = self.verdict(task, gen.text)
        meta = gen.meta
        return self._base(task, prompt, seed, attempt) | {
            "note": gen.text,
            "endpoint": meta.get("endpoint"),
            "served_model": meta.get("served_model"),
            "request_params": json.dumps(meta["request_params"], ensure_ascii=False)
            if "request_params" in meta
            else None,
            "prompt_tokens": gen.prompt_tokens,
            "completion_tokens": gen.completion_tokens,
            "finish_reason": gen.finish_reason,
            "symptom_coverage": round(symptom_coverage(task.symptoms, gen.text), 4),
            "kept": kept,
            "filter_reasons": reasons,
        }

    def failed_record(
        self, task: Task, prompt: Any, seed: int, attempt: int, kind: str, message: str, endpoint: str | None
    ) -> dict[str, Any]:
        """The row of a task whose request failed for good; ``error_type`` marks it failed."""
        return self._base(task, prompt, seed, attempt) | {
            "endpoint": endpoint,
            "error_type": kind,
            "error": message[:500],
        }
