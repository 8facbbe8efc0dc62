"""Crash-safe output for generation: append-only JSONL shards, then a Hub-layout dataset folder.

While generating, every finished record is appended to ``<out>/shards/part-NNNNN.jsonl`` and flushed to disk, so a
killed run loses at most the batch in flight. Each run appends to a new shard file; a line cut short by a kill is
skipped when shards are read. On resume, the ids already in the shards are skipped, so the same command finishes
the job without duplicates or losses. :meth:`ShardWriter.finalize` writes ``data/*.parquet`` (kept notes) and
``rejected/*.parquet`` (notes the filter turned down, kept for inspection) with a README whose YAML ``configs`` let
``datasets.load_dataset(out)`` load them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = ["ShardWriter", "FEATURES", "read_shards"]

logger = logging.getLogger(__name__)

# Column -> datasets feature type; the order is the column order of the parquet files.
FEATURES: dict[str, Any] = {
    "id": "string",
    "icd10_code": "string",
    "icd10_name": "string",
    "category": "string",
    "symptoms": ["string"],
    "sex": "string",
    "age": "int32",
    "example_id": "string",
    "prompt": "string",
    "note": "string",
    "template": "string",
    "model": "string",
    "adapter": "string",
    "backend": "string",
    "generation_params": "string",
    "seed": "int64",
    "prompt_tokens": "int32",
    "completion_tokens": "int32",
    "finish_reason": "string",
    "symptom_coverage": "float32",
    "kept": "bool",
    "filter_reasons": ["string"],
    "attempts": "int32",
    "created_at": "string",
}


def read_shards(shard_dir: Path) -> list[dict[str, Any]]:
    """All complete records in a shard folder, first occurrence of each id wins."""
    records: dict[str, dict[str, Any]] = {}
    for shard in sorted(shard_dir.glob("part-*.jsonl")):
        with shard.open(encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.endswith("\n"):
                    logger.warning("%s:%d was cut short (a killed run); skipping that record", shard.name, lineno)
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    logger.warning("%s:%d is not valid JSON; skipping it", shard.name, lineno)
                    continue
                records.setdefault(record["id"], record)
    return list(records.values())


class ShardWriter:
    """Appends records to a new shard file and knows which ids are already done.

    Args:
        out_dir: the dataset folder.
    """

    def __init__(self, out_dir: str | Path) -> None:
        self.out_dir = Path(out_dir)
        self.shard_dir = self.out_dir / "shards"
        self.shard_dir.mkdir(parents=True, exist_ok=True)
        self.done: set[str] = {r["id"] for r in read_shards(self.shard_dir)}
        existing = sorted(self.shard_dir.glob("part-*.jsonl"))
        index = int(existing[-1].stem.split("-")[1]) + 1 if existing else 0
        self.path = self.shard_dir / f"part-{index:05d}.jsonl"
        self._fh = None

    def write(self, records: Iterable[dict[str, Any]]) -> int:
        """Append records (skipping ids already written) and force them to disk. Returns how many were new."""
        if self._fh is None:
            self._fh = self.path.open("a", encoding="utf-8")
        n = 0
        for record in records:
            if record["id"] in self.done:
                continue
            self._fh.write(json.dumps(record, ensure_ascii=False) + "\n")
            self.done.add(record["id"])
            n += 1
        self._fh.flush()
        os.fsync(self._fh.fileno())
        return n

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def __enter__(self) -> ShardWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def finalize(self, order: list[str] | None = None, card: str | None = None) -> dict[str, int]:
        """Write the parquet files and README from all shards.

        Args:
            order: task ids in generation order; records are written in this order (others after, by id).
            card: the README body (markdown) under the YAML header.

        Returns:
            ``{"kept": n, "rejected": m}``.
        """
        import datasets

        self.close()
        records = read_shards(self.shard_dir)
        rank = {tid: i for i, tid in enumerate(order or [])}
        records.sort(key=lambda r: (rank.get(r["id"], len(rank)), r["id"]))
        features = datasets.Features({k: _feature(v) for k, v in FEATURES.items()})
        counts, files = {}, {}
        for split_dir, keep in (("data", True), ("rejected", False)):
            rows = [{k: r.get(k) for k in FEATURES} for r in records if bool(r.get("kept", True)) is keep]
            target = self.out_dir / split_dir
            for old in target.glob("*.parquet"):
                old.unlink()
            counts["kept" if keep else "rejected"] = len(rows)
            if not rows and keep:
                logger.warning("no note passed the filter; load the 'rejected' config to see why")
            if rows:
                target.mkdir(parents=True, exist_ok=True)
                # The file name carries a fingerprint of its rows and the card names the file, not a glob: datasets
                # caches a local folder by the card's data_files, and a resumed run would otherwise be served the
                # old cached copy.
                digest = hashlib.sha1("\n".join(r["id"] for r in rows).encode()).hexdigest()[:10]
                name = f"train-{len(rows):06d}-{digest}.parquet"
                columns = {k: [r[k] for r in rows] for k in FEATURES}
                datasets.Dataset.from_dict(columns, features=features).to_parquet(str(target / name))
                files[split_dir] = f"{split_dir}/{name}"
        (self.out_dir / "README.md").write_text(_card_header(counts, files) + (card or ""), encoding="utf-8")
        return counts


def _feature(spec: Any) -> Any:
    import datasets

    if isinstance(spec, list):
        return (
            datasets.List(datasets.Value(spec[0]))
            if hasattr(datasets, "List")
            else datasets.Sequence(datasets.Value(spec[0]))
        )
    return datasets.Value(spec)


def _card_header(counts: dict[str, int], files: dict[str, str]) -> str:
    """YAML front matter: Hub metadata and the configs that map folders to splits."""
    import yaml

    features = []
    for name, spec in FEATURES.items():
        features.append({"name": name, "list": spec[0]} if isinstance(spec, list) else {"name": name, "dtype": spec})
    default_files = [{"split": "train", "path": files.get("data", "data/*.parquet")}]
    configs = [{"config_name": "default", "default": True, "data_files": default_files}]
    if "rejected" in files:
        rejected = {"config_name": "rejected", "data_files": [{"split": "train", "path": files["rejected"]}]}
        # datasets infers the file format from the first config, so a folder with no kept note lists rejected first
        configs = configs + [rejected] if "data" in files else [rejected, *configs]
    meta = {
        "language": ["ru"],
        "license": "apache-2.0",
        "task_categories": ["text-generation", "text-classification"],
        "tags": ["medical", "synthetic", "icd-10", "clinical-notes", "medsyn"],
        "pretty_name": "medsyn synthetic Russian clinical notes",
        "size_categories": [_size_category(counts.get("kept", 0))],
        "configs": configs,
        "dataset_info": {"features": features},
    }
    return "---\n" + yaml.safe_dump(meta, allow_unicode=True, sort_keys=False) + "---\n\n"


def _size_category(n: int) -> str:
    for limit, label in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K")):
        if n < limit:
            return label
    return "100K<n<1M"
