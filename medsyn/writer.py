"""Crash-safe output for generation: append-only JSONL shards, then a Hub-layout dataset folder.

While generating, every finished record is appended to ``<out>/shards/part-NNNNN.jsonl`` as soon as it is done and
flushed, so a killed run loses only the requests in flight. Each run appends to a new shard file; a line cut short
by a kill is skipped when shards are read. On resume, the ids already in the shards are skipped, so the same command
finishes the job without duplicates or losses. A ``failed`` record (the request failed for good) is kept but never
counts as done: a re-run tries that task again, and a later success replaces it.

:meth:`ShardWriter.finalize` writes ``data/*.parquet`` (kept notes), ``rejected/*.parquet`` (notes the filter turned
down, kept for inspection) and ``failed/*.parquet`` (tasks whose requests failed, with the error) with a README whose
YAML ``configs`` let ``datasets.load_dataset(out)`` load them.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from medsyn.cards import CardStats
from medsyn.job import SPLITS, index_shards, is_failed

__all__ = ["ShardWriter", "FEATURES", "FAILED_FEATURES", "ROW_GROUP", "configs_meta", "feature"]

logger = logging.getLogger(__name__)

ROW_GROUP = 500
"""Rows per parquet row group of a release: small enough for the dataset viewer to page through."""

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
    "request_seed": "int64",
    "endpoint": "string",
    "served_model": "string",
    "request_params": "string",
    "prompt_tokens": "int32",
    "completion_tokens": "int32",
    "finish_reason": "string",
    "symptom_coverage": "float32",
    "kept": "bool",
    "filter_reasons": ["string"],
    "attempts": "int32",
    "created_at": "string",
}


# The columns of the ``failed`` config: the task, where it was sent, and what went wrong.
FAILED_FEATURES: dict[str, Any] = {
    k: FEATURES[k]
    for k in (
        "id",
        "icd10_code",
        "icd10_name",
        "category",
        "symptoms",
        "sex",
        "age",
        "example_id",
        "template",
        "model",
        "backend",
        "endpoint",
        "seed",
        "request_seed",
        "attempts",
        "created_at",
    )
} | {"error_type": "string", "error": "string"}


class ShardWriter:
    """Appends records to a new shard file and knows which ids are already done.

    Args:
        out_dir: the dataset folder.
        tag: the job shard's tag (``s2of4``, see :mod:`medsyn.sharding`): its files are ``part-NNNNN-s2of4.jsonl``,
            numbered on their own, so that shards running side by side never pick the same file.
    """

    def __init__(self, out_dir: str | Path, tag: str | None = None) -> None:
        self.out_dir = Path(out_dir)
        self.shard_dir = self.out_dir / "shards"  # created with the first record: a failed start leaves no folder
        where, _ = index_shards(self.shard_dir)  # the ids on disk, without holding their records
        self.records_on_disk = len(where)  # any record, failed ones included
        self.done: set[str] = {tid for tid, (_, _, config) in where.items() if config != "failed"}
        suffix = f"-{tag}" if tag else ""
        mine = [p for p in self.shard_dir.glob(f"part-*{suffix}.jsonl") if p.stem.count("-") == suffix.count("-") + 1]
        index = max((int(p.stem.split("-")[1]) for p in mine), default=-1) + 1
        self.path = self.shard_dir / f"part-{index:05d}{suffix}.jsonl"
        self._fh = None
        self._synced = 0.0

    def write(self, records: Iterable[dict[str, Any]], sync_every: float = 1.0) -> int:
        """Append records (skipping ids already done) and flush them. Returns how many were new.

        Each write reaches the operating system at once, so a killed process loses nothing written; an fsync at
        most every ``sync_every`` seconds (and on close) guards against a crash of the machine without making
        thousands of notes per second wait on the disk.
        """
        if self._fh is None:
            self.shard_dir.mkdir(parents=True, exist_ok=True)
            self._fh = self.path.open("a", encoding="utf-8")
        n = 0
        for record in records:
            if record["id"] in self.done:
                continue
            self._fh.write(json.dumps(record, ensure_ascii=False) + "\n")
            if not is_failed(record):
                self.done.add(record["id"])
            n += 1
        self._fh.flush()
        now = time.monotonic()
        if now - self._synced >= sync_every:
            os.fsync(self._fh.fileno())
            self._synced = now
        return n

    def close(self) -> None:
        """Flush and close the shard; a disk error is raised once, and the file is closed whatever happens."""
        if self._fh is not None:
            fh, self._fh = self._fh, None
            try:
                fh.flush()
                os.fsync(fh.fileno())
            finally:
                with contextlib.suppress(OSError):  # after a failed flush, closing tries the same write again
                    fh.close()

    def __enter__(self) -> ShardWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def finalize(
        self,
        order: list[str] | None = None,
        card: str | Callable[[CardStats, dict[str, Any]], str] | None = None,
        index: dict[str, tuple[Path, int, str]] | None = None,
    ) -> dict[str, int]:
        """Write the parquet files and README from all shards.

        The shards are read twice, not held: once for where each id's record is, then in order, a batch at a time,
        into the parquet files. The card's numbers are counted on the way (:class:`~medsyn.cards.CardStats`), so
        memory does not grow with the rows.

        Args:
            order: task ids in generation order; records are written in this order (others after, by id).
            card: the README body (markdown) under a YAML header that maps the configs to their files; or a function
                of the rows' :class:`~medsyn.cards.CardStats` and that mapping (``{"configs", "dataset_info"}``)
                that returns the whole README.
            index: the shards' :func:`~medsyn.job.index_shards`, when the caller has just made it.

        Returns:
            ``{"kept": n, "rejected": m, "failed": k}``.
        """
        import yaml

        self.close()
        where = index_shards(self.shard_dir)[0] if index is None else index
        rank = {tid: i for i, tid in enumerate(order or [])}
        ids = sorted(where, key=lambda tid: (rank.get(tid, len(rank)), tid))
        counts, files, sizes = {}, {}, {}
        card_stats = CardStats()
        with _LineReader() as reader:
            for split_dir, config_name in SPLITS:
                chosen = [tid for tid in ids if where[tid][2] == config_name]
                name = "kept" if config_name == "default" else config_name
                target = self.out_dir / split_dir
                for old in target.glob("*.parquet"):
                    old.unlink()
                counts[name] = len(chosen)
                if not chosen:
                    continue
                target.mkdir(parents=True, exist_ok=True)
                # The file name carries a fingerprint of its rows and the card names the file, not a glob: datasets
                # caches a local folder by the card's data_files, and a resumed run would otherwise be served the
                # old cached copy.
                digest = hashlib.sha1("\n".join(chosen).encode()).hexdigest()[:10]
                file_name = f"train-{len(chosen):06d}-{digest}.parquet"
                columns = FAILED_FEATURES if config_name == "failed" else FEATURES
                records = (reader.read(*where[tid][:2]) for tid in chosen)
                counted = (_counted(r, card_stats, config_name) for r in records) if callable(card) else records
                sizes[split_dir] = _write_parquet(target / file_name, columns, counted)
                files[split_dir] = f"{split_dir}/{file_name}"
        if not counts["kept"] and counts["rejected"]:
            logger.warning("no note passed the filter; load the 'rejected' config to see why")
        meta = configs_meta(files, counts, sizes=sizes)
        if callable(card):
            text = card(card_stats, meta)
        else:
            text = "---\n" + yaml.safe_dump(meta, allow_unicode=True, sort_keys=False) + "---\n\n" + (card or "")
        (self.out_dir / "README.md").write_text(text, encoding="utf-8")
        return counts


WRITE_BATCH = 2_000
"""Rows per batch (and parquet row group) when the dataset files are written."""


class _LineReader:
    """Reads one JSON line at a given offset of a shard file, keeping the files open."""

    def __init__(self) -> None:
        self.files: dict[Path, Any] = {}

    def read(self, path: Path, offset: int) -> dict[str, Any]:
        fh = self.files.get(path) or self.files.setdefault(path, path.open("rb"))
        fh.seek(offset)
        return json.loads(fh.readline().decode("utf-8", errors="replace"))

    def __enter__(self) -> _LineReader:
        return self

    def __exit__(self, *exc: object) -> None:
        for fh in self.files.values():
            fh.close()


def _counted(record: dict[str, Any], stats: CardStats, config_name: str) -> dict[str, Any]:
    stats.add(record, config_name)
    return record


def _write_parquet(path: Path, columns: dict[str, Any], records: Iterable[dict[str, Any]]) -> int:
    """Write ``records`` (a stream) to one parquet file in batches; returns the data's size in bytes."""
    import datasets
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = datasets.Features({k: feature(v) for k, v in columns.items()}).arrow_schema
    nbytes = 0
    with pq.ParquetWriter(str(path), schema) as out:

        def write(batch: list[dict[str, Any]]) -> int:
            table = pa.Table.from_pydict({k: [r.get(k) for r in batch] for k in columns}, schema=schema)
            out.write_table(table)
            return table.nbytes

        batch: list[dict[str, Any]] = []
        for record in records:
            batch.append(record)
            if len(batch) == WRITE_BATCH:
                nbytes, batch = nbytes + write(batch), []
        if batch:
            nbytes += write(batch)
    return nbytes


def feature(spec: Any) -> Any:
    """The ``datasets`` feature of a column spec in :data:`FEATURES` (``\"string\"`` or ``[\"string\"]``)."""
    import datasets

    if isinstance(spec, list):
        return (
            datasets.List(datasets.Value(spec[0]))
            if hasattr(datasets, "List")
            else datasets.Sequence(datasets.Value(spec[0]))
        )
    return datasets.Value(spec)


def _features_yaml(columns: dict[str, Any]) -> list[dict[str, str]]:
    return [
        {"name": name, "list": spec[0]} if isinstance(spec, list) else {"name": name, "dtype": spec}
        for name, spec in columns.items()
    ]


def configs_meta(
    files: dict[str, str],
    counts: dict[str, int],
    features: dict[str, dict[str, Any]] | None = None,
    sizes: dict[str, int] | None = None,
) -> dict[str, Any]:
    """The card's ``configs`` (which files each config reads) and ``dataset_info`` (features and row counts).

    Args:
        files: folder (``data``, ``rejected``, ``failed``) → the parquet path it holds, relative to the card.
        counts: rows per config name (``kept`` for ``default``).
        features: columns per config name, when they differ from the writer's (a release drops and adds some).
        sizes: folder → the split's size in bytes as Arrow holds it; ``datasets`` warns about a card whose splits
            lack ``num_bytes``.
    """
    configs, infos = [], []
    for split_dir, config_name in SPLITS:
        columns = FAILED_FEATURES if config_name == "failed" else FEATURES
        if split_dir not in files and config_name != "default":
            continue
        entry: dict[str, Any] = {"config_name": config_name} | ({"default": True} if config_name == "default" else {})
        entry["data_files"] = [{"split": "train", "path": files.get(split_dir, f"{split_dir}/*.parquet")}]
        configs.append(entry)
        rows = counts.get("kept" if config_name == "default" else config_name, 0)
        infos.append(
            {
                "config_name": config_name,
                "features": _features_yaml((features or {}).get(config_name, columns)),
                "splits": [{"name": "train", "num_bytes": (sizes or {}).get(split_dir, 0), "num_examples": rows}],
            }
        )
    if "data" not in files and len(configs) > 1:
        # datasets infers the file format from the first config, so a folder with no kept note lists another first
        configs.append(configs.pop(0))
    return {"configs": configs, "dataset_info": infos}
