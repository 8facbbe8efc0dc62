"""The knowledge graph released as a Hub dataset (``medsyn release kg``).

The folder holds three configs that the dataset viewer shows and ``load_dataset`` reads:

- ``nodes``: every ICD-10 node (``code``, ``level``, Russian ``name``, ``parent``);
- ``symptom_edges``: category → symptom (``count`` of real notes that mention it, ``weight``);
- ``related``: category pairs with similar symptom profiles (``similarity``, cosine).

Beside them, ``medsyn-kg.json`` is the graph file itself, so ``medsyn kg show M54 --graph FOLDER_OR_HUB_ID`` and
``medsyn generate --graph …`` read the release directly.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medsyn.errors import ReleaseError
from medsyn.kg import GRAPH_FILE
from medsyn.writer import ROW_GROUP

logger = logging.getLogger(__name__)

__all__ = ["KGReleaseArgs", "kg_tables", "build_kg_release", "validate_kg_release"]

TABLES: dict[str, dict[str, str]] = {
    "nodes": {"code": "string", "level": "string", "name": "string", "parent": "string"},
    "symptom_edges": {"category": "string", "symptom": "string", "count": "int32", "weight": "float32"},
    "related": {"category": "string", "related": "string", "similarity": "float32"},
}


@dataclass
class KGReleaseArgs:
    """``medsyn release kg``: build, check and push the knowledge graph as a Hub dataset."""

    repo_id: str = field(default="medsyn/ru-icd10-kg", metadata={"help": "the Hub dataset repository"})
    graph: str | None = field(default=None, metadata={"help": "graph file (default location, built if missing)"})
    out: str | None = field(default=None, metadata={"help": "where to build the release folder (default: a temp dir)"})
    dry_run: bool = field(default=False, metadata={"help": "build and validate only; upload nothing"})
    public: bool = field(default=False, metadata={"help": "create the repository as public (default: private)"})


def kg_tables(kg: Any) -> dict[str, list[dict[str, Any]]]:
    """The graph's rows per config: ICD-10 nodes, symptom edges, related categories."""
    graph = kg.graph
    parent = {v: graph.nodes[u]["code"] for u, v, d in graph.edges(data=True) if d["relation"] == "parent_of"}
    nodes = [
        {"code": d["code"], "level": d["level"], "name": d["name"], "parent": parent.get(n)}
        for n, d in graph.nodes(data=True)
        if d.get("kind") == "icd"
    ]
    edges, related = [], []
    for u, v, d in graph.edges(data=True):
        if d["relation"] == "has_symptom":
            edges.append(
                {"category": graph.nodes[u]["code"], "symptom": graph.nodes[v]["name"], "count": d["count"],
                 "weight": d["weight"]}
            )  # fmt: skip
        elif d["relation"] == "related_to":
            related.append(
                {"category": graph.nodes[u]["code"], "related": graph.nodes[v]["code"], "similarity": d["weight"]}
            )
    nodes.sort(key=lambda r: r["code"])
    edges.sort(key=lambda r: (r["category"], -r["weight"], r["symptom"]))
    related.sort(key=lambda r: (r["category"], -r["similarity"]))
    return {"nodes": nodes, "symptom_edges": edges, "related": related}


def build_kg_release(args: KGReleaseArgs, out: str | Path) -> dict[str, Any]:
    """Build the graph's release folder ``out``; returns its counts."""
    import datasets

    from medsyn.cards import render_card, size_category
    from medsyn.kg import load_graph
    from medsyn.plots import plot_graph_stats
    from medsyn.writer import feature

    kg = load_graph(args.graph)
    if kg.corpus:
        from medsyn.errors import ReleaseError

        raise ReleaseError(
            f"the graph {args.graph} was built from the notes {kg.corpus.get('name')!r} and holds their text; a graph "
            "release ships its example notes, so it is refused: release the synthetic notes (medsyn release dataset)"
        )
    out = Path(out)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    tables = kg_tables(kg)
    configs, infos = [], []
    for name, rows in tables.items():
        features = datasets.Features({k: feature(v) for k, v in TABLES[name].items()})
        (out / name).mkdir()
        path = f"{name}/train-00000-of-00001.parquet"
        columns = {k: [r[k] for r in rows] for k in TABLES[name]}
        ds = datasets.Dataset.from_dict(columns, features=features)
        ds.to_parquet(str(out / path), batch_size=ROW_GROUP)
        configs.append({"config_name": name, "data_files": [{"split": "train", "path": path}]})
        infos.append(
            {
                "config_name": name,
                "features": [{"name": k, "dtype": v} for k, v in TABLES[name].items()],
                "splits": [{"name": "train", "num_bytes": ds.data.nbytes, "num_examples": len(rows)}],
            }
        )
    configs[0]["default"] = True
    kg.save(out / GRAPH_FILE)
    (out / "plots").mkdir()
    plot_graph_stats(kg, out / "plots" / "kg-stats.png")
    stats = kg.stats()
    per_category = {}
    for edge in tables["symptom_edges"]:
        per_category[edge["category"]] = per_category.get(edge["category"], 0) + 1
    levels = {
        level: sum(n["level"] == level for n in tables["nodes"]) for level in ("chapter", "block", "category", "code")
    }
    card_data = {
        "license": "apache-2.0",
        "language": ["ru"],
        "pretty_name": "Russian ICD-10 symptom knowledge graph (medsyn)",
        "task_categories": ["text-classification"],
        "size_categories": [size_category(len(tables["nodes"]))],
        "tags": ["medical", "icd-10", "knowledge-graph", "russian", "symptoms", "medsyn"],
        "source_datasets": ["extended|rumedtop3"],
        "annotations_creators": ["machine-generated"],
        "language_creators": ["found"],
        "configs": configs,
        "dataset_info": infos,
    }
    top = sorted(tables["symptom_edges"], key=lambda e: -e["count"])
    card = render_card(
        "ru-icd10-kg.md",
        card_data,
        repo_id=args.repo_id,
        counts={name: len(rows) for name, rows in tables.items()},
        levels=levels,
        stats=stats,
        fingerprint=kg.fingerprint(),
        config=kg.meta.get("config", {}),
        lexicon_size=len(kg.meta.get("lexicon", [])),
        symptoms_per_category=sorted(per_category.values()),
        example_edges=[e for e in top if e["category"] == "M54"][:5],
    )
    (out / "README.md").write_text(card, encoding="utf-8")
    return {"counts": {name: len(rows) for name, rows in tables.items()}, "fingerprint": kg.fingerprint()}


def validate_kg_release(folder: str | Path) -> dict[str, Any]:
    """Check a graph release: the card parses, each config loads with the card's rows, the graph file loads."""
    from datasets import load_dataset
    from huggingface_hub import DatasetCard

    from medsyn.kg import MedicalKG

    folder = Path(folder)
    problems, report = [], {}
    meta = DatasetCard.load(folder / "README.md").data.to_dict()
    infos = {i["config_name"]: i for i in meta.get("dataset_info", [])}
    for name in TABLES:
        ds = load_dataset(str(folder), name, split="train")
        expected = infos.get(name, {}).get("splits", [{}])[0].get("num_examples")
        if len(ds) != expected:
            problems.append(f"config {name} loads {len(ds)} rows, the card says {expected}")
        report[name] = {"rows": len(ds), "columns": ds.column_names}
    kg = MedicalKG.load(folder / GRAPH_FILE)
    report["graph_fingerprint"] = kg.fingerprint()
    if problems:
        raise ReleaseError(f"release folder {folder} is not valid: " + "; ".join(problems))
    return report
