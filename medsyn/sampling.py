"""Task sampling: which code, symptoms, style example and patient each synthetic note is written for.

A category C is drawn with weight ``w(C) = J(J(J(N_symp))) * J(J(J(N_exmp)))``, ``J(x) = log(1 + x)``, where
``N_symp`` is the number of unique symptoms of C in the graph and ``N_exmp`` its number of real notes. Three nested
logarithms flatten the counts hard: M54 with 560 real notes gets about 1.3 times the weight of a code with 11,
not 50 times, which is the point: rare codes get a fair share of synthetic notes.

A task's symptoms are drawn one by one, each next preferring those that real notes of the category state together
with the ones already drawn (:func:`draw_symptoms`); its patient keeps ICD-10's sex limits and a plausible age
(:mod:`medsyn.demographics`).

N tasks are split across categories by these weights with the largest-remainder method, so the counts sum to N
and ties break by code. With ``fill_rare_to=M`` (targeting) the tasks go first to the categories with fewer than M
real notes, ``M - N_exmp`` each (in proportion to that gap when N is smaller than the gaps' sum); what is left of N
is split by the weights. Targeted tasks are ordered by the share of its category's count they complete, so a job cut
short holds about the same share of every category's tasks. Each task draws from its own random stream, seeded by ``(seed, category, k)``, so the
same seed gives the same tasks, and a larger N keeps every task of a smaller one.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from dataclasses import dataclass, fields, replace
from typing import Any

from medsyn.demographics import check_demographics, sample_demographics
from medsyn.errors import MedsynError
from medsyn.kg import MedicalKG, SymptomEdge

__all__ = [
    "J",
    "J3",
    "category_weight",
    "allocate",
    "Task",
    "TaskSampler",
    "sample_demographics",
    "weighted_sample_without_replacement",
    "draw_symptoms",
    "COOCCURRENCE_SMOOTHING",
]


def J(x: float) -> float:
    """``log(1 + x)``."""
    return math.log1p(x)


def J3(x: float) -> float:
    """``J(J(J(x)))``."""
    return J(J(J(x)))


def category_weight(n_symptoms: int, n_examples: int) -> float:
    """The MedSyn sampling weight ``J3(N_symp) * J3(N_exmp)``."""
    return J3(n_symptoms) * J3(n_examples)


def allocate(n: int, weights: dict[str, float]) -> dict[str, int]:
    """Split ``n`` items across keys in proportion to ``weights`` (largest remainder; ties by key).

    Example:
        >>> allocate(10, {"A": 1.0, "B": 1.0, "C": 1.0})
        {'A': 4, 'B': 3, 'C': 3}
    """
    if n < 0:
        raise MedsynError(f"the number of tasks must be >= 0, got {n}")
    total = sum(weights.values())
    if total <= 0:
        raise MedsynError("no category has a positive weight: every category needs >= 1 symptom and >= 1 example")
    quotas = {k: n * w / total for k, w in weights.items()}
    counts = {k: math.floor(q) for k, q in quotas.items()}
    rest = n - sum(counts.values())
    for key in sorted(quotas, key=lambda k: (-(quotas[k] - counts[k]), k))[:rest]:
        counts[key] += 1
    return counts


def weighted_sample_without_replacement(
    items: list[Any], weights: list[float], k: int, rng: random.Random
) -> list[Any]:
    """Draw ``k`` distinct items with probability proportional to weight (Efraimidis–Spirakis keys)."""
    keyed = [(rng.random() ** (1.0 / w) if w > 0 else 0.0, i) for i, w in enumerate(weights)]
    keyed.sort(reverse=True)
    return [items[i] for _, i in keyed[:k]]


# How much a symptom that never shares a real note with those already drawn keeps of its weight, against one that
# always does (weight x (smoothing + mean P(symptom | drawn))). Small enough that a category's incidental symptom
# («заложенность носа» in vaginitis) rarely joins its core ones, not zero, so unseen but sound pairs stay possible.
COOCCURRENCE_SMOOTHING = 0.02
# The first symptom of a task is one that at least this many real notes of the category state (when any does):
# a symptom of one note is incidental, and drawn first it would pull its note's company along.
MIN_SEED_NOTES = 2


def draw_symptoms(
    edges: list[SymptomEdge], cooccurrence: dict[frozenset[str], int], k: int, rng: random.Random
) -> list[str]:
    """Draw ``k`` distinct symptoms of a category, preferring ones that real notes state together.

    The first is drawn by edge weight among the symptoms of at least ``MIN_SEED_NOTES`` notes; each next one by
    ``weight * (COOCCURRENCE_SMOOTHING + mean affinity)`` to those drawn so far, where the affinity of ``s`` and
    ``d`` is ``notes(s and d) / max(notes(s), notes(d))``: high for symptoms that usually come together, low for a
    one-note symptom beside a core one, whichever is drawn first. Without co-occurrence counts (a graph built
    before they existed) draws are independent, by weight.

    Args:
        edges: the category's symptom edges (:meth:`medsyn.kg.MedicalKG.symptoms`).
        cooccurrence: ``{{a, b}: notes}`` for the category (:meth:`medsyn.kg.MedicalKG.cooccurrence`).
        k: how many to draw (at most ``len(edges)``).
        rng: the task's random stream.
    """
    if not cooccurrence:
        return weighted_sample_without_replacement([e.symptom for e in edges], [e.weight for e in edges], k, rng)
    notes = {e.symptom: e.count for e in edges}
    left = {e.symptom: e.weight for e in edges}
    has_seeds = any(n >= MIN_SEED_NOTES for n in notes.values())

    # together[s]: the sum of s's affinities to the symptoms drawn so far, added up in the order they were drawn
    together = dict.fromkeys(left, 0.0)
    drawn: list[str] = []
    while left and len(drawn) < k:
        names = list(left)
        if drawn:
            weights = [left[s] * (COOCCURRENCE_SMOOTHING + together[s] / len(drawn)) for s in names]
        else:
            weights = [left[s] * (notes[s] >= MIN_SEED_NOTES or not has_seeds) for s in names]
        pick = rng.choices(names, weights=weights)[0] if sum(weights) > 0 else rng.choice(names)
        drawn.append(pick)
        del left[pick]
        for s in left:
            together[s] += cooccurrence.get(frozenset((s, pick)), 0) / max(notes[s], notes[pick])
    return drawn


@dataclass(frozen=True)
class Task:
    """Everything a prompt needs to ask for one note."""

    id: str
    icd10_code: str
    icd10_name: str
    category: str
    symptoms: list[str]
    sex: str
    age: int
    example_id: str
    example_note: str

    def to_dict(self) -> dict[str, Any]:
        """The task's fields (a shallow copy, its symptom list copied): one per request, so no ``asdict``."""
        return {f.name: getattr(self, f.name) for f in fields(self)} | {"symptoms": list(self.symptoms)}


class TaskSampler:
    """Draws generation tasks from a knowledge graph.

    Args:
        kg: the graph.
        seed: the random seed; the same seed gives the same tasks.
        min_symptoms: the fewest symptoms per task (fewer only when the category has fewer).
        max_symptoms: the most symptoms per task.
        min_example_chars: style examples shorter than this are skipped when the category has longer ones.
        codes: restrict tasks to these categories or codes (their categories); all categories when ``None``.
        fill_rare_to: targeting: bring categories with fewer real notes than this up to it first (see the module).
    """

    def __init__(
        self,
        kg: MedicalKG,
        seed: int = 0,
        min_symptoms: int = 2,
        max_symptoms: int = 5,
        min_example_chars: int = 80,
        codes: list[str] | None = None,
        fill_rare_to: int | None = None,
    ) -> None:
        if not 1 <= min_symptoms <= max_symptoms:
            raise MedsynError(f"need 1 <= min_symptoms <= max_symptoms, got {min_symptoms} and {max_symptoms}")
        self.kg = kg
        self.seed = seed
        self.min_symptoms = min_symptoms
        self.max_symptoms = max_symptoms
        self.min_example_chars = min_example_chars
        self.fill_rare_to = fill_rare_to
        available = kg.categories()
        codes = [kg.entry(c)["code"] for c in codes] if codes else codes  # «i21,4» is I21.4 here as everywhere
        if codes:
            wanted = sorted({kg.category_of(c) for c in codes})
            missing = [c for c in wanted if c not in available]
            if missing:
                raise MedsynError(
                    f"categories {missing} have no symptoms or real examples in the graph, so no task can be drawn "
                    f"for them; rebuild the graph with notes for them, or choose from: {', '.join(available[:20])}…"
                )
            available = wanted
        self.categories = available
        self._codes = {c: codes_filter(kg.leaf_codes(c), codes) for c in self.categories}
        # codes that real notes give finer than their category: tasks pick among them by their own notes
        self._own_edges: dict[str, list[SymptomEdge] | None] = {}
        self._code_styles: dict[str, list[dict[str, str]]] = {}
        self._coded = {c: coded for c in self.categories if (coded := _coded_codes(kg.code_notes(c), codes))}
        self._parts_cache: dict[str, tuple[list[SymptomEdge], dict[frozenset[str], int], list[dict[str, str]]]] = {}

    def weights(self) -> dict[str, float]:
        """``w(C)`` for every category."""
        # a category whose symptoms a model named has no real example; it counts as one, or it could never be drawn
        weights = {}
        for c in self.categories:
            n_examples = len(self.kg.examples(c))
            weights[c] = category_weight(
                len(self.kg.symptoms(c)), max(n_examples, 1) if self._asked(c) else n_examples
            )
        return weights

    def _asked(self, category: str) -> bool:
        return any(e.source != "notes" for e in self.kg.symptoms(category))

    def gaps(self) -> dict[str, int]:
        """Targeting: how many notes each category lacks to reach ``fill_rare_to`` real ones (empty when off)."""
        if not self.fill_rare_to:
            return {}
        gaps = {c: self.fill_rare_to - len(self.kg.examples(c)) for c in self.categories}
        return {c: g for c, g in gaps.items() if g > 0}

    def allocate(self, n: int) -> dict[str, int]:
        """How many of ``n`` tasks each category gets (the rare categories' gaps first when targeting)."""
        gaps = self.gaps()
        if not gaps:
            return allocate(n, self.weights())
        if n <= sum(gaps.values()):
            return {c: k for c, k in allocate(n, {c: float(g) for c, g in gaps.items()}).items() if k}
        rest = allocate(n - sum(gaps.values()), self.weights())
        return {c: rest.get(c, 0) + gaps.get(c, 0) for c in self.categories if rest.get(c, 0) + gaps.get(c, 0)}

    def _parts(self, category: str) -> tuple[list[SymptomEdge], dict[frozenset[str], int], list[dict[str, str]]]:
        """A category's symptom edges, co-occurrence counts and style examples, read from the graph once."""
        cache = self._parts_cache
        if category not in cache:
            examples = self.kg.examples(category)
            long_enough = [e for e in examples if len(e["text"]) >= self.min_example_chars]
            styles = long_enough or sorted(examples, key=lambda e: -len(e["text"]))[:3]
            cache[category] = (self.kg.symptoms(category), self.kg.cooccurrence(category), styles)
        return cache[category]

    def task(self, category: str, k: int) -> Task:
        """The ``k``-th task of a category (deterministic for a given seed)."""
        rng = random.Random(f"{self.seed}:{category}:{k}")
        edges, cooccurrence, styles = self._parts(category)
        if category in self._coded:  # a code by its share of the category's coded notes, with its own symptoms
            codes, counts = zip(*self._coded[category].items())
            code = rng.choices(codes, weights=counts)[0]
            if code not in self._own_edges:
                self._own_edges[code] = self.kg.symptoms(code) if self.kg.has_own(code) else None
            edges = self._own_edges[code] or edges
            if code not in self._code_styles:
                self._code_styles[code] = [e for e in styles if e["code"] == code] or styles
            styles = self._code_styles[code]
        else:
            code = rng.choice(self._codes[category])
        n_symptoms = min(rng.randint(self.min_symptoms, self.max_symptoms), len(edges))
        symptoms = draw_symptoms(edges, cooccurrence, n_symptoms, rng)
        example = rng.choice(styles) if styles else {"id": "", "text": ""}  # a code known only from a model
        sex, age = sample_demographics(rng, code)
        digest = hashlib.sha1(f"{self.seed}:{category}:{k}".encode()).hexdigest()[:10]
        return Task(
            id=f"{category}-{k:05d}-{digest}",
            icd10_code=code,
            icd10_name=self.kg.entry(code)["name"],
            category=category,
            symptoms=symptoms,
            sex=sex,
            age=age,
            example_id=example["id"],
            example_note=example["text"],
        )

    def custom_task(
        self,
        code: str,
        symptoms: list[str] | None = None,
        sex: str | None = None,
        age: int | None = None,
        seed: int = 0,
    ) -> Task:
        """A task for one code with the given fields; the others are drawn as :meth:`task` draws them.

        A sex that ICD-10 rules out for the code (N76 for a man) or an age outside its range (N95 at 30) is refused
        (:func:`medsyn.demographics.check_demographics`).

        Its id (``<category>-custom-<hash>``) depends on every field, so two different requests never share one.
        """
        if sex not in (None, "M", "F"):
            raise MedsynError(f"sex must be 'M' or 'F', got {sex!r}")
        if age is not None and not 0 <= age <= 120:
            raise MedsynError(f"age must be between 0 and 120, got {age}")
        canonical = self.kg.entry(code)["code"]
        # its own check refuses a category without symptoms or examples, with the usable ones
        base = TaskSampler(self.kg, seed, self.min_symptoms, self.max_symptoms, self.min_example_chars, [canonical])
        category = self.kg.category_of(canonical)
        drawn = base.task(category, 0)  # a leaf code under the one asked for, symptoms, example, patient
        chosen = [s.strip() for s in symptoms if s.strip()] if symptoms is not None else drawn.symptoms
        if not chosen:
            raise MedsynError("a task needs at least one symptom; give some or leave symptoms unset to draw them")
        check_demographics(drawn.icd10_code, sex, age, drawn.icd10_name)
        sex = sex or drawn.sex
        age = age if age is not None else drawn.age
        key = json.dumps([seed, drawn.icd10_code, chosen, sex, age, drawn.example_id], ensure_ascii=False)
        digest = hashlib.sha1(key.encode()).hexdigest()[:10]
        return replace(drawn, id=f"{category}-custom-{digest}", symptoms=chosen, sex=sex, age=age)

    def sample(self, n: int) -> list[Task]:
        """``n`` tasks, split across categories by weight (and gap when targeting), in a stable order."""
        counts = self.allocate(n)
        if self.fill_rare_to:  # the k-th of a category's m tasks sits at (k + 0.5) / m of the run
            order = sorted(((k + 0.5) / m, c, k) for c, m in counts.items() for k in range(m))
            return [self.task(c, k) for _, c, k in order]
        return [self.task(c, k) for c in sorted(counts) for k in range(counts[c])]


def _coded_codes(coded: dict[str, int], codes: list[str] | None) -> dict[str, int]:
    """The coded notes' codes to draw from: those asked for (or under them); none when none is asked for."""
    if not codes:
        return coded
    return {c: n for c, n in coded.items() if any(c == q or c.startswith(q + ".") or q.startswith(c) for q in codes)}


def codes_filter(leaves: list[str], codes: list[str] | None) -> list[str]:
    """The leaf codes to draw from: those asked for (or under those asked for), else all."""
    if not codes:
        return leaves
    asked = [c for c in leaves if any(c == q or c.startswith(q + ".") or q.startswith(c) for q in codes)]
    return asked or leaves
