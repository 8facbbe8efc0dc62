"""The medical knowledge graph (MKG): ICD-10 hierarchy, symptoms mined from real notes, and example notes.

Nodes are keyed ``icd:<code>``, ``symptom:<name>``, ``note:<id>`` (and ``drug:<name>`` for graphs that add drugs).
Edges carry a ``relation``:

* ``parent_of``: chapter → block → category → code, from the МКБ-10 directory;
* ``has_symptom``: category → symptom, with ``count`` (real notes of the category that mention it) and
  ``weight``, a specificity score: the share of the category's notes that mention the symptom, times its inverse
  category frequency ``log(1 + N_categories / df)``. Sampling draws by ``weight``, so symptoms typical of a code
  win over ones that go with everything;
* ``has_example``: category → real note, which gives ``N_exmp`` and the style examples;
* ``related_to``: category → the (up to 3) categories whose symptom profiles are most alike, with the cosine
  similarity of their weight vectors as ``weight``;
* ``co_occurs``: symptom → symptom, one edge per category (its edge key and ``category``) with ``count``, the real
  notes of that category that state both. Sampling uses them to draw symptoms that go together;
* ``treated_with``: reserved for drugs, for graphs that add them.

The graph is one JSON file (``format: medsyn-kg``, ``version``) at :func:`medsyn.paths.default_graph_path` unless
another path is given. Its ``meta.build`` records a fingerprint of what made it: the packaged source files, the
code of the modules that build it, and the build options. :func:`load_graph` builds the graph when it is missing
and rebuilds it when that fingerprint no longer matches, so a cached graph never outlives a fix to the extractor.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import math
import os
import statistics
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medsyn.corpus import DEFAULT_NOTES
from medsyn.errors import GraphFormatError, UnknownCodeError
from medsyn.icd10 import load_icd10, normalize_code

if TYPE_CHECKING:
    from medsyn.corpus import Corpus

__all__ = [
    "GRAPH_FORMAT",
    "GRAPH_VERSION",
    "KGBuildConfig",
    "MedicalKG",
    "build_fingerprint",
    "build_graph",
    "load_graph",
    "stale_reasons",
]

logger = logging.getLogger(__name__)

GRAPH_FORMAT = "medsyn-kg"
GRAPH_VERSION = 1
# The modules whose code decides what a build produces: a change to any of them makes a cached graph stale.
_BUILD_MODULES = ("medsyn.kg", "medsyn.extract", "medsyn.text", "medsyn.icd10", "medsyn.data")
# The packaged files a default build reads.
_BUILD_SOURCES = (
    ("icd10_ru", "mkb10_nsi_v2.27.csv"),
    ("rumedtop3", "train_v1.jsonl"),
    ("rumedsymptomrec", "train_v1.jsonl"),
    ("rumedsymptomrec", "dev_v1.jsonl"),
)


@dataclass
class KGBuildConfig:
    """How the graph is built from the packaged data."""

    extractor: str = field(default="lexicon", metadata={"help": "symptom extractor (see medsyn.extract.EXTRACTORS)"})
    min_phrase_notes: int = field(
        default=8, metadata={"help": "a mined complaint phrase must occur in at least this many real notes"}
    )
    max_phrase_words: int = field(default=3, metadata={"help": "the most content words in a mined phrase"})
    seed_lexicon: bool = field(default=True, metadata={"help": "seed the lexicon with RuMedSymptomRec's names"})


@dataclass(frozen=True)
class SymptomEdge:
    """A category → symptom edge."""

    symptom: str
    count: int
    weight: float
    source: str = "notes"
    """``notes`` for edges mined from real notes; ``llm:<model>`` for edges a served model gave (``kg expand``)."""


class MedicalKG:
    """A medical knowledge graph over a ``networkx.MultiDiGraph``.

    Args:
        graph: the graph, with node attribute ``kind`` and edge attribute ``relation``.
        meta: build metadata (sources, config, time, lexicon).
    """

    def __init__(self, graph: Any, meta: dict[str, Any] | None = None) -> None:
        self.graph = graph
        self.meta = meta or {}
        self._cooccurrence: dict[str, dict[frozenset[str], int]] | None = None

    # -- lookups ---------------------------------------------------------------------------------------------
    def _node(self, code: str) -> str:
        norm = normalize_code(code)
        node = f"icd:{norm}"
        if node not in self.graph:
            raise UnknownCodeError(code, load_icd10().closest(norm), where="the knowledge graph")
        return node

    def entry(self, code: str) -> dict[str, Any]:
        """The node attributes of an ICD-10 code: ``code``, ``name``, ``level``."""
        return dict(self.graph.nodes[self._node(code)])

    def category_of(self, code: str) -> str:
        """The category (3-character code) of a code."""
        node = self._node(code)
        while self.graph.nodes[node]["level"] == "code":
            node = next(u for u, _, d in self.graph.in_edges(node, data=True) if d["relation"] == "parent_of")
        if self.graph.nodes[node]["level"] != "category":
            raise UnknownCodeError(code, [], where="the graph's categories (give a category or a code, not a block)")
        return self.graph.nodes[node]["code"]

    def parents(self, code: str) -> list[dict[str, Any]]:
        """The ancestors of a code from the nearest up to its chapter."""
        out, node = [], self._node(code)
        while True:
            ups = [u for u, _, d in self.graph.in_edges(node, data=True) if d["relation"] == "parent_of"]
            if not ups:
                return out
            node = ups[0]
            out.append(dict(self.graph.nodes[node]))

    def children(self, code: str) -> list[str]:
        """The direct children codes of a code."""
        node = self._node(code)
        return sorted(
            self.graph.nodes[v]["code"]
            for _, v, d in self.graph.out_edges(node, data=True)
            if d["relation"] == "parent_of"
        )

    def leaf_codes(self, category: str) -> list[str]:
        """The most specific codes under a category (the category itself when it has no subcategories)."""
        stack, leaves = [self.category_of(category)], []
        while stack:
            code = stack.pop()
            kids = self.children(code)
            stack.extend(reversed(kids))
            if not kids:
                leaves.append(code)
        return leaves

    def _own_or_category(self, code: str, relation: str) -> str:
        """The node whose ``relation`` edges describe ``code``: its own when real notes gave it some, else its
        category's (corpora coded at the category level, such as RuMedTop3, give categories only)."""
        node = self._node(code)
        if self.graph.nodes[node]["level"] == "code" and any(
            d["relation"] == relation for _, _, d in self.graph.out_edges(node, data=True)
        ):
            return node
        return f"icd:{self.category_of(code)}"

    def symptoms(self, code: str, top: int | None = None) -> list[SymptomEdge]:
        """The symptoms of a code (its own when notes coded with it gave some, else its category's), by weight."""
        node = self._own_or_category(code, "has_symptom")
        edges = [
            SymptomEdge(self.graph.nodes[v]["name"], d["count"], d["weight"], d.get("origin", "notes"))
            for _, v, d in self.graph.out_edges(node, data=True)
            if d["relation"] == "has_symptom"
        ]
        edges.sort(key=lambda e: (-e.weight, e.symptom))
        return edges[:top] if top else edges

    def has_own(self, code: str, relation: str = "has_symptom") -> bool:
        """Whether a code below category level has its own ``relation`` edges (from notes coded with it)."""
        node = self._node(code)
        return self.graph.nodes[node]["level"] == "code" and self._own_or_category(code, relation) == node

    def mined_symptoms(self, code: str) -> list[SymptomEdge]:
        """The symptoms of a code that real notes gave (its own or its category's), not those a model was asked."""
        return [e for e in self.symptoms(code) if e.source == "notes"]

    def add_model_symptoms(self, code: str, symptoms: list[str], source: str) -> list[str]:
        """Link a code to symptoms a served model named (``medsyn kg expand``), in rank order; returns their names.

        A symptom with the concept keys of a known one (the lexicon, the graph's symptom nodes) takes that name,
        else it becomes a new symptom node. Edges carry ``source`` (``llm:<model>``), ``count`` 0 (no real note) and
        the rank weight ``1 / (1 + rank)``. A code below category level lends them to its category too when the
        category has no symptoms of its own, so that tasks can be drawn for it. Asking again replaces what the same
        source gave before.
        """
        from medsyn.text import phrase_keys

        node = self._node(code)
        targets = [node]
        category = f"icd:{self.category_of(code)}"
        if category != node and not any(
            d["relation"] == "has_symptom" and d.get("origin", "notes") == "notes"
            for _, _, d in self.graph.out_edges(category, data=True)
        ):
            targets.append(category)
        known = {phrase_keys(n): n for n in self.meta.get("lexicon", [])}
        known |= {
            phrase_keys(d["name"]): d["name"] for _, d in self.graph.nodes(data=True) if d.get("kind") == "symptom"
        }
        for target in targets:
            stale = [
                (u, v, k)
                for u, v, k, d in self.graph.out_edges(target, keys=True, data=True)
                if d["relation"] == "has_symptom" and d.get("origin") == source
            ]
            self.graph.remove_edges_from(stale)
        names: list[str] = []
        for rank, symptom in enumerate(symptoms):
            name = known.get(phrase_keys(symptom), symptom)
            if name in names:
                continue
            self.graph.add_node(f"symptom:{name}", kind="symptom", name=name)
            for target in targets:
                linked = any(
                    v == f"symptom:{name}" and d["relation"] == "has_symptom"
                    for _, v, d in self.graph.out_edges(target, data=True)
                )
                if not linked:
                    self.graph.add_edge(
                        target,
                        f"symptom:{name}",
                        relation="has_symptom",
                        count=0,
                        weight=round(1.0 / (1 + rank), 6),
                        origin=source,
                    )
            names.append(name)
        self.meta.setdefault("expanded", {})[self.entry(code)["code"]] = {"source": source, "symptoms": names}
        return names

    def code_notes(self, category: str) -> dict[str, int]:
        """How many real notes each code finer than ``category`` has of its own: ``{code: notes}``."""
        out: Counter[str] = Counter()
        for _, v, d in self.graph.out_edges(f"icd:{self.category_of(category)}", data=True):
            if d["relation"] == "has_example":
                code = self.graph.nodes[v].get("code", "")
                if len(code) > 3 and f"icd:{code}" in self.graph:
                    out[code] += 1
        return dict(sorted(out.items()))

    def related(self, code: str) -> list[tuple[str, float]]:
        """Categories with the most similar symptom profiles: ``(code, cosine similarity)``, most similar first."""
        node = f"icd:{self.category_of(code)}"
        edges = [
            (self.graph.nodes[v]["code"], d["weight"])
            for _, v, d in self.graph.out_edges(node, data=True)
            if d["relation"] == "related_to"
        ]
        return sorted(edges, key=lambda e: -e[1])

    def cooccurrence(self, code: str) -> dict[frozenset[str], int]:
        """How many real notes of a code's category state each pair of its symptoms: ``{{a, b}: count}``.

        Empty for a graph built before co-occurrence edges existed.
        """
        if self._cooccurrence is None:
            index: dict[str, dict[frozenset[str], int]] = defaultdict(dict)
            for u, v, d in self.graph.edges(data=True):
                if d["relation"] == "co_occurs":
                    pair = frozenset((self.graph.nodes[u]["name"], self.graph.nodes[v]["name"]))
                    index[d["category"]][pair] = d["count"]
            self._cooccurrence = dict(index)
        return self._cooccurrence.get(self.category_of(code), {})

    def examples(self, code: str) -> list[dict[str, str]]:
        """The real notes of a code (its own when notes are coded with it, else its category's):
        ``{"id", "text", "code"}``."""
        node = self._own_or_category(code, "has_example")
        return [
            {"id": n["note_id"], "text": n["text"], "code": n.get("code", "")}
            for _, v, d in self.graph.out_edges(node, data=True)
            if d["relation"] == "has_example"
            for n in (self.graph.nodes[v],)
        ]

    def notes(self) -> list[dict[str, str]]:
        """Every real note the graph holds: ``{"id", "text", "code"}`` (the code as the corpus gave it)."""
        return [
            {"id": d["note_id"], "text": d["text"], "code": d.get("code", "")}
            for _, d in self.graph.nodes(data=True)
            if d.get("kind") == "note"
        ]

    @property
    def corpus(self) -> dict[str, Any] | None:
        """What the graph records of a user's corpus (name, size, fingerprint); ``None`` for RuMedTop3's."""
        return self.meta.get("corpus")

    def categories(self) -> list[str]:
        """Categories tasks can be drawn from: those with a symptom and a real example, and those whose symptoms a
        served model named (``medsyn kg expand``; they have no example)."""
        out = []
        for node, data in self.graph.nodes(data=True):
            if data.get("level") != "category":
                continue
            edges = [d for _, _, d in self.graph.out_edges(node, data=True)]
            relations = Counter(d["relation"] for d in edges)
            asked = any(d["relation"] == "has_symptom" and d.get("origin", "notes") != "notes" for d in edges)
            if relations["has_symptom"] and (relations["has_example"] or asked):
                out.append(data["code"])
        return sorted(out)

    def extractor(self):
        """The symptom extractor over this graph's lexicon."""
        from medsyn.extract import EXTRACTORS

        name = self.meta.get("config", {}).get("extractor", "lexicon")
        return EXTRACTORS[name](self.meta.get("lexicon", []))

    # -- summaries -------------------------------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        """Counts that describe the graph."""
        kinds = Counter(d.get("kind") for _, d in self.graph.nodes(data=True))
        per_cat = {c: len(self.symptoms(c)) for c in self._example_categories()}
        with_symptoms = [n for n in per_cat.values() if n]
        return {
            "nodes": self.graph.number_of_nodes(),
            "edges": self.graph.number_of_edges(),
            "icd_nodes": kinds["icd"],
            "symptoms": kinds["symptom"],
            "example_notes": kinds["note"],
            "categories_with_examples": len(per_cat),
            "categories_with_symptoms": len(with_symptoms),
            "median_symptoms_per_category": statistics.median(with_symptoms) if with_symptoms else 0,
            "build_seconds": self.meta.get("build_seconds"),
        }

    def _example_categories(self) -> list[str]:
        return sorted(
            {
                self.graph.nodes[u]["code"]
                for u, _, d in self.graph.edges(data=True)
                if d["relation"] == "has_example" and self.graph.nodes[u]["level"] == "category"
            }
        )

    def fingerprint(self) -> str:
        """A short hash of the graph's content (nodes, edges and their data; not the build metadata).

        It does not depend on the order in which nodes and edges were added, which varies between builds.
        """
        nodes = sorted(json.dumps([n, d], sort_keys=True, ensure_ascii=False) for n, d in self.graph.nodes(data=True))
        edges = sorted(
            json.dumps([u, v, d], sort_keys=True, ensure_ascii=False) for u, v, d in self.graph.edges(data=True)
        )
        return hashlib.sha256("\n".join(nodes + ["--"] + edges).encode("utf-8")).hexdigest()[:16]

    # -- persistence -----------------------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the graph as one JSON file (written to a temporary name first, so a crash leaves no half file)."""
        import networkx as nx

        path = Path(path)
        if path.is_dir():
            raise GraphFormatError(f"{path} is a folder; give the graph a file name, e.g. {path / 'medsyn-kg.json'}")
        for parent in path.parents:
            if parent.exists():
                if not parent.is_dir():
                    raise GraphFormatError(f"{path} lies under {parent}, which is a file; choose another path")
                break
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "format": GRAPH_FORMAT,
            "version": GRAPH_VERSION,
            "meta": self.meta,
            "graph": nx.node_link_data(self.graph, edges="edges"),
        }
        tmp = path.with_suffix(f"{path.suffix}.{os.getpid()}.tmp")  # two processes may rebuild one cached graph
        tmp.write_text(json.dumps(payload, ensure_ascii=False), encoding="utf-8")
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> MedicalKG:
        """Read a graph file; raises GraphFormatError for a malformed or incompatible file."""
        import networkx as nx

        path = Path(path)
        if path.is_dir():
            raise GraphFormatError(f"{path} is a folder; pass the graph file, e.g. {path / 'medsyn-kg.json'}")
        try:
            payload = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise GraphFormatError(
                f"{path} is not a valid graph file ({err}); rebuild it with 'medsyn kg build'"
            ) from err
        if not isinstance(payload, dict) or payload.get("format") != GRAPH_FORMAT:
            raise GraphFormatError(
                f"{path} is not a medsyn knowledge graph (no 'format: {GRAPH_FORMAT}'); rebuild it with 'medsyn kg build'"
            )
        if payload.get("version") != GRAPH_VERSION:
            raise GraphFormatError(
                f"{path} has graph version {payload.get('version')!r}, this medsyn reads version {GRAPH_VERSION}; "
                f"rebuild it with 'medsyn kg build --out {path}'"
            )
        try:
            graph = nx.node_link_graph(payload["graph"], edges="edges", directed=True, multigraph=True)
            # every node and edge holds what the methods read; an edge to a node that is missing from the node list
            # makes networkx add that node bare, so it fails here too
            for node, data in graph.nodes(data=True):
                need = _NODE_FIELDS.get(str(node).split(":", 1)[0], ())
                if missing := sorted(set(need) - set(data)):
                    raise KeyError(f"node {node!r} lacks {missing}")
            for u, v, data in graph.edges(data=True):
                if "relation" not in data:
                    raise KeyError(f"edge {u!r} -> {v!r} lacks 'relation'")
                if missing := sorted(set(_EDGE_FIELDS.get(data["relation"], ())) - set(data)):
                    raise KeyError(f"{data['relation']} edge {u!r} -> {v!r} lacks {missing}")
        except (KeyError, TypeError, nx.NetworkXError) as err:
            raise GraphFormatError(
                f"{path} has a malformed graph section ({err!r}); rebuild it with 'medsyn kg build'"
            ) from err
        return cls(graph, payload.get("meta", {}))


_NODE_FIELDS = {"icd": ("code", "name", "level"), "note": ("note_id", "text"), "symptom": ("name",)}
"""Attributes each kind of node must hold, by the prefix of its id."""
_EDGE_FIELDS = {
    "has_symptom": ("count", "weight"),
    "related_to": ("weight",),
    "co_occurs": ("category", "count"),
}
"""Attributes each relation must hold besides ``relation``."""


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def build_fingerprint(
    config: KGBuildConfig | None = None, notes: list[dict[str, str]] | None = None
) -> dict[str, Any]:
    """What a build depends on: its source files, the code that builds, the options; with one digest of all three.

    Args:
        config: build options.
        notes: the real notes given to :func:`build_graph`; ``None`` for the packaged RuMedTop3 train split.

    Returns:
        ``{"sources": {file: sha256}, "code": {module: sha256}, "config": {...}, "fingerprint": digest}``.
    """
    import importlib.util

    import medsyn
    from medsyn.paths import resource_path

    config = config or KGBuildConfig()
    sources = {"/".join(parts): _sha256(resource_path(*parts).read_bytes()) for parts in _BUILD_SOURCES}
    if notes is not None:  # a graph of other notes: the notes themselves are the source
        sources["notes"] = "custom:" + _sha256(json.dumps(notes, sort_keys=True, ensure_ascii=False).encode("utf-8"))
        del sources["rumedtop3/train_v1.jsonl"]
    code = {"medsyn": medsyn.__version__}
    for module in _BUILD_MODULES:
        code[module] = _sha256(Path(importlib.util.find_spec(module).origin).read_bytes())
    options = {k: getattr(config, k) for k in config.__dataclass_fields__}
    key = {"sources": sources, "code": code, "config": options}
    return {**key, "fingerprint": _sha256(json.dumps(key, sort_keys=True, ensure_ascii=False).encode("utf-8"))}


def build_graph(
    config: KGBuildConfig | None = None, notes: list[dict[str, str]] | None = None, corpus: Corpus | None = None
) -> MedicalKG:
    """Build the graph from the packaged МКБ-10 directory and real notes (RuMedTop3 train unless others are given).

    A note coded finer than its category (``I21.0``) keeps its code: it is an example of its code and of its
    category, and its symptoms count for both, so codes get their own symptom edges and categories the roll-up.

    Args:
        config: build options.
        notes: real notes ``{"id", "text", "code"}``; the packaged RuMedTop3 train split when ``None``.
        corpus: a loaded :class:`~medsyn.corpus.Corpus` (its notes, name and size go into the graph's meta);
            ``rumedtop3:train`` builds the default graph.

    Returns:
        The built graph (not yet saved).
    """
    import networkx as nx
    from tqdm.auto import tqdm

    from medsyn.data import load_rumedtop3, load_symptom_names
    from medsyn.extract import EXTRACTORS, build_lexicon

    config = config or KGBuildConfig()
    if config.extractor not in EXTRACTORS:
        raise GraphFormatError(f"unknown extractor {config.extractor!r}; available: {sorted(EXTRACTORS)}")
    if corpus is not None and corpus.source != DEFAULT_NOTES:
        notes = corpus.notes
    elif corpus is not None:
        corpus = None  # the packaged default: the same graph as a build with no notes given
    start = time.perf_counter()
    icd = load_icd10()
    fingerprint = build_fingerprint(config, notes)
    notes_default = notes is None
    notes = notes if notes is not None else load_rumedtop3("train")
    graph = nx.MultiDiGraph()
    for entry in icd.entries.values():
        graph.add_node(f"icd:{entry.code}", kind="icd", code=entry.code, name=entry.name, level=entry.level)
    for entry in icd.entries.values():
        if entry.parent:
            graph.add_edge(f"icd:{entry.parent}", f"icd:{entry.code}", relation="parent_of")

    seed = load_symptom_names() if config.seed_lexicon else []
    lexicon = build_lexicon(seed, (n["text"] for n in notes), config.min_phrase_notes, config.max_phrase_words)
    extractor = EXTRACTORS[config.extractor](lexicon)

    counts: dict[str, Counter[str]] = defaultdict(Counter)
    code_counts: dict[str, Counter[str]] = defaultdict(Counter)  # per code finer than its category
    pairs: dict[str, Counter[tuple[str, str]]] = defaultdict(Counter)
    n_notes: Counter[str] = Counter()
    skipped = 0
    for note in tqdm(notes, desc="extracting symptoms", unit="note", mininterval=1.0):
        full = normalize_code(note["code"])
        code = full[:3]
        if f"icd:{code}" not in graph:
            skipped += 1
            continue
        n_notes[code] += 1
        note_node = f"note:{note['id']}"
        fine = len(full) > 3 and f"icd:{full}" in graph
        graph.add_node(note_node, kind="note", note_id=note["id"], text=note["text"], code=full if fine else code)
        graph.add_edge(f"icd:{code}", note_node, relation="has_example")
        found = sorted(set(extractor.extract(note["text"])))
        counts[code].update(found)
        pairs[code].update(itertools.combinations(found, 2))
        if fine:
            graph.add_edge(f"icd:{full}", note_node, relation="has_example")
            n_notes[full] += 1
            code_counts[full].update(found)
    if skipped:
        logger.warning("%d notes had codes that are not in the ICD-10 directory and were skipped", skipped)

    # Inverse category frequency: a symptom in every category tells nothing about any one of them.
    df = Counter(s for per in counts.values() for s in per)
    n_cat = max(len(counts), 1)
    # categories first, then the codes' own symptoms, weighted against the categories' spread
    for code, per in itertools.chain(counts.items(), code_counts.items()):
        for symptom, count in per.items():
            graph.add_node(f"symptom:{symptom}", kind="symptom", name=symptom)
            weight = (count / n_notes[code]) * math.log(1 + n_cat / df[symptom])
            graph.add_edge(
                f"icd:{code}", f"symptom:{symptom}", relation="has_symptom", count=count, weight=round(weight, 6)
            )

    for code, per in pairs.items():
        for (a, b), count in per.items():
            graph.add_edge(f"symptom:{a}", f"symptom:{b}", key=code, relation="co_occurs", category=code, count=count)
    _link_related(graph, counts, n_notes, df, n_cat)

    meta = _build_meta(config, fingerprint, lexicon, corpus, None if notes_default else len(notes), start)
    kg = MedicalKG(graph, meta)
    logger.info("built graph: %s", kg.stats())
    return kg


def _build_meta(
    config: KGBuildConfig,
    fingerprint: dict[str, Any],
    lexicon: list[str],
    corpus: Corpus | None,
    n_given: int | None,
    started: float,
) -> dict[str, Any]:
    """The graph's ``meta``: sources, options, the build fingerprint, the lexicon, and a user's corpus if any."""
    meta = {
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "sources": {
            "icd10": "МКБ-10, Russian Ministry of Health reference directory 1.2.643.5.1.13.13.11.1005 v2.27 (MIT)",
            "notes": "RuMedTop3 train, RuMedBench (Apache-2.0)" if n_given is None else f"{n_given} notes given",
            "seed_lexicon": "RuMedSymptomRec symptom names, RuMedBench (Apache-2.0)",
        },
        "config": {k: getattr(config, k) for k in config.__dataclass_fields__},
        "build": fingerprint,
        "lexicon": lexicon,
        "build_seconds": round(time.perf_counter() - started, 2),
    }
    if corpus is not None:
        meta["sources"]["notes"] = (
            f"{corpus.card_name}: {corpus.report.kept:,} notes, {len(corpus.report.per_code)} codes"
        )
        meta["corpus"] = corpus.describe()
    return meta


def _link_related(
    graph: Any, counts: dict[str, Counter[str]], n_notes: Counter[str], df: Counter[str], n_cat: int, top: int = 3
) -> None:
    """Link each category to the categories whose symptom profiles are most alike (cosine of weight vectors)."""
    vectors = {
        code: {s: (c / n_notes[code]) * math.log(1 + n_cat / df[s]) for s, c in per.items()}
        for code, per in counts.items()
    }
    norms = {code: math.sqrt(sum(w * w for w in vec.values())) or 1.0 for code, vec in vectors.items()}
    for code, vec in vectors.items():
        sims = []
        for other, ovec in vectors.items():
            if other == code:
                continue
            dot = sum(w * ovec[s] for s, w in vec.items() if s in ovec)
            sims.append((dot / (norms[code] * norms[other]), other))
        for sim, other in sorted(sims, reverse=True)[:top]:
            if sim >= 0.2:  # below this, two categories share little more than generic complaints
                graph.add_edge(f"icd:{code}", f"icd:{other}", relation="related_to", weight=round(sim, 4))


def _recorded_config(kg: MedicalKG) -> KGBuildConfig | None:
    """The build options a graph records, or ``None`` when they are not this medsyn's."""
    options = kg.meta.get("build", {}).get("config") or kg.meta.get("config") or {}
    try:
        return KGBuildConfig(**options)
    except TypeError:
        return None


def _custom_notes(kg: MedicalKG) -> bool:
    return str(kg.meta.get("build", {}).get("sources", {}).get("notes", "")).startswith("custom:")


def stale_reasons(kg: MedicalKG) -> list[str]:
    """Why a graph no longer matches what this medsyn builds with its options; empty when it matches.

    The notes of a graph built from custom notes are not compared (this medsyn cannot know them); its other
    sources and its code are.
    """
    recorded = kg.meta.get("build")
    if not isinstance(recorded, dict) or "fingerprint" not in recorded:
        return ["it records no build fingerprint (built by an older medsyn)"]
    config = _recorded_config(kg)
    if config is None:
        return ["its build options are not this medsyn's"]
    current = build_fingerprint(config)
    old_sources, old_code = recorded.get("sources", {}), recorded.get("code", {})
    sources = sorted(
        k for k in current["sources"].keys() & old_sources.keys() if old_sources[k] != current["sources"][k]
    )
    code = sorted(k for k, v in current["code"].items() if old_code.get(k) != v)
    return [f"{what} changed: {', '.join(keys)}" for what, keys in (("sources", sources), ("code", code)) if keys]


def load_graph(path: str | Path | None = None, build: bool = True) -> MedicalKG:
    """Load the graph at ``path`` (default location when ``None``), building and saving it first if missing or stale.

    A graph is stale when the packaged sources or the code that builds graphs changed since it was built
    (:func:`stale_reasons`); it is then rebuilt with the options it records. A graph of custom notes cannot be
    rebuilt from here, so it is loaded with a warning.

    Args:
        path: a graph file, a folder that ``medsyn release kg`` built, or such a release's Hub id;
            :func:`medsyn.paths.default_graph_path` when ``None``. A released graph is read as it is, never rebuilt.
        build: build the graph when the file does not exist or is stale (otherwise raise, or warn when stale).
    """
    from medsyn.paths import default_graph_path

    given = Path(path) if path else None
    path = resolve_graph_source(str(path)) if path else default_graph_path()
    released = given is not None and path != given
    if not path.exists():
        if not build:
            raise GraphFormatError(f"no graph at {path}; build it with 'medsyn kg build --out {path}'")
        logger.info("no graph at %s yet; building it", path)
        build_graph().save(path)
        return MedicalKG.load(path)
    kg = MedicalKG.load(path)
    reasons = stale_reasons(kg)
    if not reasons:
        return kg
    if not build or released or _custom_notes(kg):
        logger.warning("the graph at %s is out of date (%s); rebuild it to use it with this medsyn", path, reasons)
        return kg
    logger.info("the graph at %s is out of date (%s); rebuilding it", path, "; ".join(reasons))
    build_graph(_recorded_config(kg)).save(path)
    return MedicalKG.load(path)


GRAPH_FILE = "medsyn-kg.json"
"""The graph's file name inside a release folder (``medsyn release kg``)."""


def resolve_graph_source(source: str) -> Path:
    """A graph file from a release folder or a Hub dataset id (downloaded when online); else the path itself."""
    path = Path(source)
    if path.is_dir() and (path / GRAPH_FILE).exists():
        return path / GRAPH_FILE
    if not path.exists() and source.count("/") == 1 and not source.endswith(".json"):
        from huggingface_hub import hf_hub_download
        from huggingface_hub.errors import LocalEntryNotFoundError

        try:
            return Path(hf_hub_download(source, GRAPH_FILE, repo_type="dataset"))
        except LocalEntryNotFoundError as err:
            raise GraphFormatError(
                f"cannot download the graph {source!r} from the Hub (offline, or no such dataset); "
                "pass a local graph file or release folder"
            ) from err
        except Exception as err:  # an unknown repo, no access
            raise GraphFormatError(f"cannot read the graph {source!r} from the Hub: {err}") from err
    return path
