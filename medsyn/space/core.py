"""What each panel of the Space does, over the library, with the input checks. No gradio here.

:class:`Demo` loads the graph, the model (or endpoint) and the quality filter once; its methods are the panels:
:meth:`Demo.lookup` (a code's hierarchy, symptoms, sampling weight), :meth:`Demo.sample` (a task drawn as the
generator draws it), :meth:`Demo.make_task` and :meth:`Demo.stream` (one note, piece by piece) and
:meth:`Demo.judge` (the filter's verdict and the closest real note). Bad input raises
:class:`~medsyn.errors.MedsynError` with a one-line message that the UI shows as is.
"""

from __future__ import annotations

import logging
import math
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from medsyn.backends import GenerationParams
from medsyn.errors import ConfigError, MedsynError
from medsyn.kg import MedicalKG, SymptomEdge
from medsyn.models import DEFAULT_MODEL
from medsyn.sampling import Task

__all__ = ["SpaceConfig", "CodeInfo", "Verdict", "Demo", "highlight", "TEMPLATES"]

logger = logging.getLogger(__name__)

TEMPLATES = ("instruction", "example_guided")
HIDDEN = "(a real note of the private corpus: not shown)"
MAX_AGE = 120
MAX_SEED = 2**31 - 1
_PARAMS = GenerationParams()  # the generator's sampling defaults


@dataclass
class SpaceConfig:
    """How the Space runs. :meth:`from_env` reads the ``MEDSYN_*`` variables a Space sets as secrets or variables."""

    model: str = field(default=DEFAULT_MODEL, metadata={"help": "model id or path ('gemma-3-270m': the embedded one)"})
    adapter: str = field(default="auto", metadata={"help": "PEFT adapter; 'auto': the packaged one; 'none'"})
    endpoint: list[str] = field(
        default_factory=list, metadata={"help": "OpenAI-compatible endpoints to generate on instead (MEDSYN_ENDPOINT)"}
    )
    dtype: str = field(default="auto", metadata={"help": "auto, bfloat16, float16 or float32"})
    device: str | None = field(default=None, metadata={"help": "cpu, cuda… (CUDA if available)"})
    graph: str | None = field(
        default=None, metadata={"help": "graph file or release (MEDSYN_GRAPH; default location, built if missing)"}
    )
    notes: str | None = field(
        default=None,
        metadata={"help": "real notes the filter checks against (MEDSYN_NOTES; a notes source); the graph's own"},
    )
    show_real_text: bool | None = field(
        default=None,
        metadata={
            "help": "show real notes (style examples, the closest real note) to visitors (MEDSYN_SHOW_REAL_TEXT); "
            "by default only for RuMedTop3, never for a user's notes"
        },
    )
    dataset: str = field(
        default="releases/ru-notes", metadata={"help": "dataset the browser opens first: a folder or a Hub id"}
    )
    filter: bool = field(default=True, metadata={"help": "judge notes with the quality filter and copy index"})
    # Where the visitor's sliders start; the other sampling settings are GenerationParams' defaults
    temperature: float = field(default=_PARAMS.temperature, metadata={"help": "default sampling temperature"})
    max_new_tokens: int = field(
        default=_PARAMS.max_new_tokens, metadata={"help": "default length limit of a note, in tokens"}
    )
    # Limits that keep one visitor from taking the box
    max_tokens_limit: int = field(default=400, metadata={"help": "the most tokens a visitor may ask for"})
    max_symptoms: int = field(default=8, metadata={"help": "the most symptoms in one request"})
    max_symptom_chars: int = field(default=60, metadata={"help": "the longest typed symptom, in characters"})
    max_prompt_chars: int = field(default=6000, metadata={"help": "the longest prompt, in characters"})
    concurrency: int = field(default=1, metadata={"help": "notes generated at once; more visitors wait in the queue"})
    queue_size: int = field(default=32, metadata={"help": "visitors who may wait in the queue"})

    def __post_init__(self) -> None:
        if self.concurrency < 1 or self.queue_size < 1:
            raise ConfigError(f"concurrency and queue_size must be >= 1, got {self.concurrency}, {self.queue_size}")
        if not 1 <= self.max_new_tokens <= self.max_tokens_limit:
            raise ConfigError(f"max_new_tokens must be in [1, {self.max_tokens_limit}], got {self.max_new_tokens}")

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> SpaceConfig:
        """The config from ``MEDSYN_SPACE_MODEL``, ``MEDSYN_SPACE_ADAPTER``, ``MEDSYN_ENDPOINT`` (URLs separated
        by commas or spaces), ``MEDSYN_SPACE_DATASET``, ``MEDSYN_SPACE_CONCURRENCY``, ``MEDSYN_SPACE_DTYPE``,
        ``MEDSYN_GRAPH``, ``MEDSYN_NOTES`` and ``MEDSYN_SHOW_REAL_TEXT``."""
        env = dict(os.environ if env is None else env)
        kwargs: dict[str, Any] = {}
        for key, name in (("model", "MODEL"), ("adapter", "ADAPTER"), ("dataset", "DATASET"), ("dtype", "DTYPE")):
            if env.get(f"MEDSYN_SPACE_{name}"):
                kwargs[key] = env[f"MEDSYN_SPACE_{name}"]
        for key, name in (("graph", "MEDSYN_GRAPH"), ("notes", "MEDSYN_NOTES")):
            if env.get(name):
                kwargs[key] = env[name]
        if env.get("MEDSYN_SHOW_REAL_TEXT"):
            from medsyn.config import parse_bool

            kwargs["show_real_text"] = parse_bool(env["MEDSYN_SHOW_REAL_TEXT"])
        if env.get("MEDSYN_ENDPOINT"):
            kwargs["endpoint"] = [u for u in re.split(r"[,\s]+", env["MEDSYN_ENDPOINT"]) if u]
        if env.get("MEDSYN_SPACE_CONCURRENCY"):
            try:
                kwargs["concurrency"] = int(env["MEDSYN_SPACE_CONCURRENCY"])
            except ValueError:
                raise ConfigError(
                    f"MEDSYN_SPACE_CONCURRENCY must be a whole number, got {env['MEDSYN_SPACE_CONCURRENCY']!r}"
                ) from None
        return cls(**kwargs)


@dataclass
class CodeInfo:
    """What the Space shows about one ICD-10 code."""

    code: str
    name: str
    level: str
    hierarchy: list[tuple[str, str, str]]  # (level, code, name) from the chapter down to the code
    category: str | None
    covered: bool
    reason: str = ""  # why the graph has no symptoms for it ("" when it has)
    nearest: list[tuple[str, str]] = field(default_factory=list)  # covered categories nearby: (code, name)
    symptoms: list[SymptomEdge] = field(default_factory=list)
    related: list[tuple[str, str, float]] = field(default_factory=list)  # (code, name, cosine)
    n_examples: int = 0
    weight: float = 0.0  # w(C)
    weight_rank: int = 0  # 1 = the largest w(C)
    weight_share: float = 0.0  # the share of synthetic tasks the category gets
    n_categories: int = 0
    weight_median: float = 0.0


@dataclass
class Verdict:
    """The quality filter's judgement of one note, with what the Space shows beside it."""

    kept: bool
    reasons: list[str]
    coverage: float
    found: list[str]
    missing: list[str]
    copy_score: float | None = None
    lcs_words: int | None = None
    closest_note: str | None = None  # the real note that shares most word 3-grams with it
    filtered: bool = False  # whether the quality filter judged it (off: ``kept`` only says the note is not empty)


def _ordinal(code: str) -> int:
    """A category's place in the alphabet of codes (A00 → 0, A01 → 1 … Z99), for "nearest" lists."""
    digits = re.sub(r"\D", "", code[1:3]) or "0"
    return (ord(code[0]) - ord("A")) * 100 + int(digits)


def highlight(note: str, symptoms: list[str]) -> list[tuple[str, str | None]]:
    """``note`` cut into ``(text, symptom or None)`` pieces for a highlighted view of the requested symptoms.

    Words of one symptom separated only by spaces and short function words («боль в пояснице») form one piece; the
    same word twice («слабость в слабость») stays two.
    """
    from medsyn.text import symptom_spans

    spans: list[list[Any]] = []
    last_word = ""
    for start, end, symptom in symptom_spans(symptoms, note):
        gap = note[spans[-1][1] : start] if spans else ""
        word = note[start:end].lower()
        joins = spans and spans[-1][2] == symptom and word != last_word
        if joins and len(gap) <= 4 and not re.search(r"[.,;:!?\n]", gap):
            spans[-1][1] = end
        else:
            spans.append([start, end, symptom])
        last_word = word
    pieces: list[tuple[str, str | None]] = []
    at = 0
    for start, end, symptom in spans:
        if start > at:
            pieces.append((note[at:start], None))
        pieces.append((note[start:end], symptom))
        at = end
    if at < len(note):
        pieces.append((note[at:], None))
    return pieces


class Demo:
    """The Space's state and panels.

    Args:
        config: how to run.
        kg: a loaded graph (loaded from ``config.graph``, built if missing, when ``None``).
        note_filter: a :class:`~medsyn.filters.note.NoteFilter` (built by the generator, from RuMedTop3 train,
            when ``None``).
    """

    def __init__(self, config: SpaceConfig | None = None, kg: MedicalKG | None = None, note_filter: Any = None):
        self.config = config or SpaceConfig()
        self._kg = kg
        self.note_filter = note_filter
        self.backend: Any = None
        self.timings: dict[str, float] = {}

    # ------------------------------------------------------------------ start-up

    def load(self) -> Demo:
        """Load the graph, the engine and the filter once (building or converting what is missing). Returns self."""
        from medsyn.generator import GeneratorConfig, NoteGenerator
        from medsyn.icd10 import load_icd10
        from medsyn.kg import load_graph
        from medsyn.sampling import TaskSampler

        c = self.config
        started = time.perf_counter()
        logger.info("loading the knowledge graph (built on first use, about 2 s)")
        self.kg = self._kg or load_graph(c.graph)
        self.icd = load_icd10()
        self.sampler = TaskSampler(self.kg)
        self.weights = self.sampler.weights()
        self._ranked = sorted(self.weights, key=lambda k: (-self.weights[k], k))
        self._block_of = {cat: [e.code for e in self.icd.ancestors(cat)] for cat in self.weights}
        self.timings["graph_s"] = time.perf_counter() - started
        logger.info("graph ready: %d categories with symptoms and notes", len(self.weights))

        self.base = GeneratorConfig(
            model=c.model,
            adapter=c.adapter,
            endpoint=list(c.endpoint),
            dtype=c.dtype,
            device=c.device,
            graph=c.graph,
            notes=c.notes,
            filter=c.filter,
            max_attempts=1,
            batch_size=1,
            max_retries=1,
            timeout=60.0,
        )
        t = time.perf_counter()
        logger.info("loading the engine: %s (a first run converts the embedded model once, about a minute)", c.model)
        generator = NoteGenerator(self.base, self.params(), kg=self.kg, note_filter=self.note_filter).load()
        self.backend, self.default_template = generator.backend, generator.template
        self.adapter, self.note_filter = generator.adapter, generator.note_filter
        self.timings["engine_s"] = time.perf_counter() - t  # with the filter's index of the real notes
        self.timings["load_s"] = time.perf_counter() - started
        logger.info("ready in %.1f s (%s)", self.timings["load_s"], self.engine_label())
        return self

    def engine_label(self) -> str:
        """The engine in a few words, for the page."""
        return self.backend.label()

    # ------------------------------------------------------------------ codes

    def code_choices(self) -> list[tuple[str, str]]:
        """Every ICD-10 category and code as ``("M54.5 · Боль внизу спины", "M54.5")``; covered categories marked ●."""
        out = []
        for entry in self.icd.entries.values():
            if entry.level in ("category", "code"):
                mark = " ●" if entry.code[:3] in self.weights else ""
                out.append((f"{entry.code} · {entry.name}{mark}", entry.code))
        return sorted(out, key=lambda item: item[1])

    def lookup(self, code: str | None) -> CodeInfo:
        """The hierarchy, symptoms, related categories and sampling weight of ``code``.

        A code outside the graph's symptom coverage comes back with ``covered=False``, the reason, and the nearest
        covered categories. An unknown code raises :class:`~medsyn.errors.UnknownCodeError` with the closest ones.
        """
        code = (code or "").strip()
        if not code:
            raise MedsynError("enter an ICD-10 code such as M54 or J06.9, or pick one from the list")
        if len(code) > 16:
            raise MedsynError(f"an ICD-10 code has at most 7 characters (e.g. M54.5); got {len(code)} characters")
        entry = self.icd.get(code)
        chain = [*reversed(self.icd.ancestors(entry.code)), entry]
        info = CodeInfo(
            code=entry.code,
            name=entry.name,
            level=entry.level,
            hierarchy=[(e.level, e.code, e.name) for e in chain],
            category=None,
            covered=False,
            n_categories=len(self.weights),
        )
        if entry.level in ("chapter", "block"):
            inside = [c for c in self._ranked if entry.code in self._block_of[c]]
            info.reason = f"{entry.code} is a {entry.level}; pick one of its categories or codes"
            info.nearest = [(c, self.icd.get(c).name) for c in sorted(inside)[:8]]
            return info
        info.category = entry.code[:3]
        if info.category not in self.weights:
            info.reason = self._uncovered_reason(info.category)
            info.nearest = [(c, self.icd.get(c).name) for c in self.nearest_covered(info.category)]
            return info
        cat = info.category
        weights = sorted(self.weights.values())
        info.covered = True
        info.symptoms = self.kg.symptoms(cat)
        info.related = [(c, self.icd.get(c).name, s) for c, s in self.kg.related(cat)]
        info.n_examples = len(self.kg.examples(cat))
        info.weight = self.weights[cat]
        info.weight_rank = self._ranked.index(cat) + 1
        info.weight_share = self.weights[cat] / sum(weights)
        info.weight_median = weights[len(weights) // 2]
        return info

    def _uncovered_reason(self, category: str) -> str:
        try:
            n_examples = len(self.kg.examples(category))
        except MedsynError:
            n_examples = 0
        if n_examples == 0:
            return (
                f"{category} has no real notes in the graph's corpus, so it knows no symptoms or style examples for it"
            )
        return f"{category} has {n_examples} real notes, but none names a symptom from the graph's lexicon"

    def nearest_covered(self, category: str, n: int = 5) -> list[str]:
        """Covered categories nearest to ``category``: same block first, then same chapter, then by code order."""
        ancestors = [e.code for e in self.icd.ancestors(category)]

        def distance(other: str) -> tuple[int, int, str]:
            shared = next((i for i, a in enumerate(ancestors) if a in self._block_of[other]), len(ancestors))
            return shared, abs(_ordinal(other) - _ordinal(category)), other

        return sorted(self.weights, key=distance)[:n]

    def _covered(self, code: str | None) -> CodeInfo:
        info = self.lookup(code)
        if not info.covered:
            nearest = ", ".join(c for c, _ in info.nearest)
            raise MedsynError(f"{info.reason}; try {nearest}" if nearest else info.reason)
        return info

    # ------------------------------------------------------------------ tasks

    def sample(self, code: str | None, seed: int | float | None = 0) -> Task:
        """A task for ``code`` drawn as the generator draws one: weighted symptoms, a style example, sex and age."""
        info = self._covered(code)
        return self.sampler.custom_task(info.code, seed=self._seed(seed))

    def make_task(
        self,
        code: str | None,
        symptoms: list[str] | str | None,
        sex: str | None,
        age: int | float | None,
        seed: int | float | None,
    ) -> Task:
        """The task a visitor asked for, checked: known covered code, 1…``max_symptoms`` short symptoms, an age."""
        c = self.config
        info = self._covered(code)
        if isinstance(symptoms, str):
            symptoms = [symptoms]
        chosen: list[str] = []
        for raw in symptoms or []:
            text = " ".join(str(raw).split())
            if len(text) > c.max_symptom_chars:
                raise MedsynError(
                    f"the symptom «{text[:40]}…» has {len(text)} characters; keep each under {c.max_symptom_chars}"
                )
            if text and text.lower() not in {s.lower() for s in chosen}:
                chosen.append(text)
        if not chosen:
            raise MedsynError("the symptom list is empty: pick at least one symptom or type your own")
        if len(chosen) > c.max_symptoms:
            raise MedsynError(f"{len(chosen)} symptoms is too many for one note; keep at most {c.max_symptoms}")
        if sex not in ("M", "F"):
            raise MedsynError(f"sex must be M or F, got {sex!r}")
        if age is None or (isinstance(age, float) and (math.isnan(age) or age != int(age))):
            raise MedsynError(f"the age must be a whole number of years, got {age!r}")
        if not 0 <= int(age) <= MAX_AGE:
            raise MedsynError(f"the age must be between 0 and {MAX_AGE} years, got {int(age)}")
        return self.sampler.custom_task(info.code, symptoms=chosen, sex=sex, age=int(age), seed=self._seed(seed))

    @staticmethod
    def _seed(seed: int | float | None) -> int:
        if seed is None or (isinstance(seed, float) and (math.isnan(seed) or seed != int(seed))):
            raise MedsynError(f"the seed must be a whole number, got {seed!r}")
        if not 0 <= int(seed) <= MAX_SEED:
            raise MedsynError(f"the seed must be between 0 and {MAX_SEED}, got {int(seed)}")
        return int(seed)

    # ------------------------------------------------------------------ generation

    def params(self, temperature: float | None = None, max_new_tokens: int | None = None) -> GenerationParams:
        """Sampling parameters: the config's, with the visitor's temperature and length, checked."""
        c = self.config
        temperature = c.temperature if temperature is None else float(temperature)
        max_new_tokens = c.max_new_tokens if max_new_tokens is None else int(max_new_tokens)
        if not 0 <= temperature <= 2:
            raise MedsynError(f"the temperature must be between 0 (greedy) and 2, got {temperature:g}")
        if not 8 <= max_new_tokens <= c.max_tokens_limit:
            raise MedsynError(
                f"the note length must be between 8 and {c.max_tokens_limit} tokens, got {max_new_tokens}"
            )
        return replace(_PARAMS, max_new_tokens=max_new_tokens, temperature=temperature, stop=list(_PARAMS.stop))

    def generator(self, template: str | None, params: GenerationParams, seed: int | float | None = 0) -> Any:
        """A :class:`~medsyn.generator.NoteGenerator` for one request, on the shared engine and filter."""
        from medsyn.generator import NoteGenerator

        template = template or self.default_template
        if template not in TEMPLATES:
            raise MedsynError(f"the template must be one of {', '.join(TEMPLATES)}, got {template!r}")
        config = replace(self.base, template=template, seed=self._seed(seed))
        return NoteGenerator(config, params, kg=self.kg, note_filter=self.note_filter, backend=self.backend)

    def prompt_text(self, generator: Any, task: Task) -> str:
        """The exact prompt of ``task`` as text (chat messages one per block), checked against the length limit."""
        prompt = generator.prompt(task)
        if not isinstance(prompt, str):
            prompt = "\n\n".join(f"[{m['role']}]\n{m['content']}" for m in prompt)
        if len(prompt) > self.config.max_prompt_chars:
            raise MedsynError(
                f"the prompt has {len(prompt)} characters, over the limit of {self.config.max_prompt_chars}; "
                "use fewer or shorter symptoms"
            )
        return prompt

    def stream(self, generator: Any, task: Task) -> Iterator[Any]:
        """The note of ``task``, piece by piece (:class:`~medsyn.generator.StreamUpdate`); engine failures are one line."""
        from medsyn.errors import RequestFailed

        try:
            yield from generator.stream(task)
        except RequestFailed as err:
            where = f"the endpoint {err.endpoint}" if err.endpoint else "the model"
            raise MedsynError(f"{where} failed ({err.kind}): {str(err)[:160]}; try again in a moment") from None

    def judge(self, generator: Any, task: Task, note: str) -> Verdict:
        """``generator``'s verdict on ``note`` (:meth:`~medsyn.generator.NoteGenerator.judge`), with its coverage,
        the symptoms found and missing, the copy score and the closest real note."""
        from medsyn.text import symptom_coverage, symptom_spans

        # found as the coverage counts them: within one clause, not denied («Кашля нет.» finds no «кашель»)
        stated = {symptom for _, _, symptom in symptom_spans(task.symptoms, note)}
        found = [s for s in task.symptoms if s in stated]
        result = generator.judge(task, note)
        verdict = Verdict(
            kept=result.keep,
            reasons=list(result.reasons),
            coverage=symptom_coverage(task.symptoms, note),
            found=found,
            missing=[s for s in task.symptoms if s not in found],
            filtered=generator.note_filter is not None and bool(note.strip()),
        )
        if not verdict.filtered:
            return verdict
        verdict.copy_score = result.metrics.get("copy_score")
        lcs = result.metrics.get("lcs_words")
        verdict.lcs_words = None if lcs is None else int(lcs)
        index = generator.note_filter.index
        match = index.query(note, lcs=False) if index is not None else None
        if match is not None:
            verdict.closest_note = self.shown(index.real_texts[match.real_index])
        return verdict

    @property
    def shows_real_text(self) -> bool:
        """Whether visitors see real notes: RuMedTop3's by default, a user's notes only when the config says so."""
        if self.config.show_real_text is not None:
            return self.config.show_real_text
        kg = getattr(self, "kg", None) or self._kg  # the loaded graph, or the one given before load
        return not (self.config.notes or (kg is not None and kg.corpus))

    def shown(self, real_text: str) -> str:
        """A real note as visitors see it: itself, or a line saying it is not shown."""
        return real_text if self.shows_real_text else HIDDEN

    def shown_prompt(self, prompt: str, task: Task) -> str:
        """The prompt as visitors see it: the style example (a real note) hidden when real text is not shown."""
        if self.shows_real_text or not task.example_note:
            return prompt
        return prompt.replace(task.example_note, HIDDEN)
