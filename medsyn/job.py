"""A generation job's folder: its identity, its job file, its shards, the kept/rejected/failed split and its card.

A folder that ``medsyn generate`` writes holds ``shards/part-*.jsonl`` (one record per finished task, appended as it
finishes), ``medsyn_job.json`` (the resolved job and its fingerprint), ``medsyn_config.yaml`` and, once finalized, the
Hub dataset layout. Everything that reads or checks such a folder, from the job itself to ``eval`` and ``release``,
goes through this module, so the folder has one definition:

- :data:`JOB_FILE` and :func:`job_spec` / :func:`fingerprint` / :func:`check_job`: what decides the notes;
- :func:`read_shards` and :data:`SPLITS` / :func:`split_records`: records and their configs, ``default`` (kept
  notes), ``rejected`` (turned down by the filter) and ``failed`` (requests that failed for good);
- :func:`folder_lock`: one writer per folder;
- :func:`folder_card`: the card of a generated folder;
- :func:`load_notes`: the kept notes of a folder, or of a RuMedTop3-format file, as ``{"id", "text", "code"}``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import socket
import statistics
from collections.abc import Iterator
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medsyn.data import Note, read_rumedtop3_file
from medsyn.errors import ConfigError, FolderBusyError, MedsynError
from medsyn.generator import adapter_hash
from medsyn.models import adapter_label

if TYPE_CHECKING:
    from medsyn.cards import CardStats
    from medsyn.generator import NoteGenerator
    from medsyn.sharding import Shard

__all__ = [
    "JOB_FILE",
    "JOB_OUTPUTS",
    "SPLITS",
    "check_job",
    "check_out_dir",
    "clear_outputs",
    "folder_lock",
    "write_job_file",
    "LOCK_FILE",
    "fingerprint",
    "folder_card",
    "is_failed",
    "job_spec",
    "load_notes",
    "read_job",
    "read_shards",
    "index_shards",
    "shard_lines",
    "split_of",
    "split_records",
]

logger = logging.getLogger(__name__)

JOB_FILE = "medsyn_job.json"
"""The resolved job and its fingerprint, in every generated and released folder."""
JOB_OUTPUTS = ("shards", "data", "rejected", "failed", "README.md", JOB_FILE, "medsyn_config.yaml")
"""What ``--overwrite`` removes: the files a generation job writes, nothing else in the folder."""
SPLITS: tuple[tuple[str, str], ...] = (("data", "default"), ("rejected", "rejected"), ("failed", "failed"))
"""(folder, config name) of each config a notes folder holds; ``default`` holds the kept notes."""


# ---------------------------------------------------------------------------------------------- the split


def is_failed(record: dict[str, Any]) -> bool:
    """A record whose request failed for good (it carries ``error_type``)."""
    return bool(record.get("error_type"))


def shard_lines(shard_dir: Path) -> Iterator[tuple[Path, int, dict[str, Any]]]:
    """Every complete record of a shard folder in file order, as ``(shard file, byte offset, record)``.

    A line cut short by a kill, a line that is not JSON and a JSON value that is not a record are skipped, each
    with a warning.
    """
    for shard in sorted(shard_dir.glob("part-*.jsonl")):
        offset = 0
        with shard.open("rb") as fh:
            for lineno, line in enumerate(fh, 1):
                at, offset = offset, offset + len(line)
                if not line.endswith(b"\n"):
                    logger.warning("%s:%d was cut short (a killed run); skipping that record", shard.name, lineno)
                    continue
                try:
                    # errors="replace": a kill in the middle of a Cyrillic character leaves half a UTF-8 sequence
                    record = json.loads(line.decode("utf-8", errors="replace"))
                except json.JSONDecodeError:
                    logger.warning("%s:%d is not valid JSON; skipping it", shard.name, lineno)
                    continue
                if not isinstance(record, dict) or not isinstance(record.get("id"), str):
                    logger.warning("%s:%d is not a medsyn record (no 'id'); skipping it", shard.name, lineno)
                    continue
                yield shard, at, record


def read_shards(shard_dir: Path) -> list[dict[str, Any]]:
    """All complete records in a shard folder, one per id.

    The first finished record (kept or rejected) of an id wins; a failed record stands only until the task is done.
    """
    records: dict[str, dict[str, Any]] = {}
    for _, _, record in shard_lines(shard_dir):
        old = records.get(record["id"])
        if old is None or is_failed(old):  # a done record stays; a failed one gives way to a later try
            records[record["id"]] = record
    return list(records.values())


def index_shards(shard_dir: Path) -> tuple[dict[str, tuple[Path, int, str]], int]:
    """Where each id's record (the one :func:`read_shards` keeps) is, without holding the records.

    Returns ``{id: (shard file, byte offset, config)}`` and how many ids were finished twice: one writer never writes
    an id twice, but two runs that shared a task at once (shards with different counts) can.
    """
    where: dict[str, tuple[Path, int, str]] = {}
    twice: set[str] = set()
    for shard, at, record in shard_lines(shard_dir):
        old = where.get(record["id"])
        config = split_of(record)
        if old is None or old[2] == "failed":  # as read_shards: a done record stays, a failed one gives way
            where[record["id"]] = (shard, at, config)
        elif config != "failed":
            twice.add(record["id"])
    return where, len(twice)


def split_of(record: dict[str, Any]) -> str:
    """The config a record belongs to: ``default`` (kept), ``rejected`` or ``failed``."""
    if is_failed(record):
        return "failed"
    return "default" if record.get("kept", True) else "rejected"


def split_records(records: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Records per config name, in :data:`SPLITS` order, each keeping the order of ``records``."""
    groups: dict[str, list[dict[str, Any]]] = {name: [] for _, name in SPLITS}
    for record in records:
        groups[split_of(record)].append(record)
    return groups


# ---------------------------------------------------------------------------------------------- the job's identity


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def job_spec(generator: NoteGenerator, graph_fingerprint: str) -> dict[str, Any]:
    """Everything that decides which notes a job writes. Runtime knobs (URLs, concurrency, n) are left out."""
    c = generator.config
    backend = generator.backend
    spec: dict[str, Any] = {
        "backend": c.backend,
        "model": c.model,
        "adapter": adapter_label(generator.adapter),
        "adapter_sha256": adapter_hash(generator.adapter),
        "template": generator.template,
        "generation": generator.params.to_dict(),
        "min_symptoms": c.min_symptoms,
        "max_symptoms": c.max_symptoms,
        "min_example_chars": c.min_example_chars,
        "codes": sorted(c.codes),
        "fill_rare_to": c.fill_rare_to,
        "seed": c.seed,
        "graph_fingerprint": graph_fingerprint,
        "filter": {"on": c.filter, "min_symptom_coverage": c.min_symptom_coverage, "max_copy_score": c.max_copy_score},
        "consistency_top_k": c.consistency_top_k,
        "clinical_filter": c.clinical_filter and c.filter,
        "max_attempts": c.max_attempts,
        "medsyn_version": _version("medsyn"),
        "transformers_version": _version("transformers"),
    }
    if c.notes or generator.kg.corpus:  # a user's notes: the card names them, and they decide what the filter keeps
        real = generator.real_notes()
        spec["notes"] = {
            "name": c.notes_name or (generator.kg.corpus or {}).get("name") or "private notes",
            "fingerprint": generator.notes_fingerprint,
            "chars_median": int(statistics.median(len(n["text"]) for n in real)),
        }
    if generator.template == "few_shot":
        spec["few_shot_k"] = c.few_shot_k
    if c.best_of > 1:  # absent at 1, so that jobs written before best-of keep their fingerprint
        spec["best_of"] = c.best_of
    if c.vocab != "full":  # absent when full, as for jobs written before the option
        spec["vocab"] = c.vocab
    if generator.template == "auto":
        del spec["template"]  # settled once the backend is loaded and says what its model takes
    if backend is not None:
        spec |= backend.job_fields()
    return spec


def fingerprint(spec: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(spec, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:16]


def _differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    keys = [k for k in new if k in old and old[k] != new[k]]
    return [f"{k}: {json.dumps(old[k], ensure_ascii=False)} → {json.dumps(new[k], ensure_ascii=False)}" for k in keys]


def check_job(out: Path, spec: dict[str, Any], holds_notes: bool) -> None:
    """Refuse to resume a folder whose notes another job wrote; write the job file when the folder is new.

    Args:
        out: the dataset folder.
        spec: this job's :func:`job_spec`.
        holds_notes: whether the folder's shards hold any record (a folder without one takes any settings).
    """
    path = out / JOB_FILE
    if path.exists():
        try:
            old = json.loads(path.read_text(encoding="utf-8"))["job"]
        except (ValueError, KeyError, TypeError) as err:
            raise ConfigError(f"{path} is unreadable ({err}); pass --overwrite to start afresh") from err
        diff = _differences(old, spec)
        if diff and not holds_notes:
            logger.info("%s holds no note yet; its job settings are replaced (%s)", out, "; ".join(diff))
            old = {}
        if diff and holds_notes:
            raise ConfigError(
                f"{out} holds notes of a job with other settings ({'; '.join(diff)}); pass --overwrite to start "
                "afresh there, or another --out"
            )
        if old and all(k in old for k in spec):
            return
    elif holds_notes:
        raise ConfigError(
            f"{out} holds notes but no {JOB_FILE}, so its settings are unknown; pass --overwrite to start afresh "
            "there, or another --out"
        )
    out.mkdir(parents=True, exist_ok=True)
    payload = {
        "fingerprint": fingerprint(spec),
        "job": spec,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    write_job_file(out, payload)


def write_job_file(out: Path, payload: dict[str, Any]) -> None:
    """Write ``out``'s :data:`JOB_FILE` whole (shards that start at once each write theirs through its own file)."""
    path = out / JOB_FILE
    tmp = path.with_name(f".{JOB_FILE}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(payload, ensure_ascii=False, indent=2), encoding="utf-8")
    tmp.replace(path)


def check_out_dir(out: Path) -> None:
    """Fail before any work if ``out`` cannot hold a dataset folder: a file, a path under a file, or read-only."""
    for parent in [out, *out.parents]:
        if parent.exists():
            if not parent.is_dir():
                what = "is a file" if parent == out else f"lies under {parent}, which is a file"
                raise ConfigError(f"--out {out} {what}; give a folder path")
            break
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".medsyn-write-check.{os.getpid()}"  # shards that start at once each probe their own
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise ConfigError(
            f"--out {out} cannot be written ({err.strerror or err}); choose a folder you can write to"
        ) from err


LOCK_FILE = ".medsyn.lock"


@contextlib.contextmanager
def folder_lock(out: Path, shard: Shard | None = None) -> Iterator[None]:
    """Hold ``out``'s advisory lock while a job writes there; a second writer stops at once with who holds it.

    The lock is ``fcntl.flock`` on :data:`LOCK_FILE`: the system drops it when the process ends, however it ends,
    so a killed run leaves no stale lock. A run of one ``shard`` shares that lock with the other shards and holds
    its shard's own lock (``.medsyn.sIofN.lock``) alone: shards run side by side, one run per shard, and an
    unsharded run waits for none of them. Where ``fcntl`` does not exist (Windows) the folder is not locked.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not on POSIX
        yield
        return
    out.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        main = stack.enter_context((out / LOCK_FILE).open("a+", encoding="utf-8"))
        try:
            fcntl.flock(main.fileno(), (fcntl.LOCK_SH if shard else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except BlockingIOError:
            raise FolderBusyError(
                f"{out} is being written by {_lock_holders(out, main)}; wait for that run to end (or stop it), "
                "or pass another --out"
            ) from None
        own = main
        if shard is not None:
            own = stack.enter_context((out / f".medsyn.{shard.tag}.lock").open("a+", encoding="utf-8"))
            try:
                fcntl.flock(own.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                own.seek(0)
                raise FolderBusyError(
                    f"shard {shard} of {out} is being written by {own.read().strip() or 'another process'}; "
                    "wait for that run to end (or stop it); each shard runs once at a time"
                ) from None
        own.seek(0)
        own.truncate()
        started = datetime.now(timezone.utc).isoformat(timespec="seconds")
        own.write(f"process {os.getpid()} on {socket.gethostname()} since {started}\n")
        own.flush()
        yield  # leaving the stack closes the files, which releases the locks


def _lock_holders(out: Path, main: Any) -> str:
    """Who holds ``out``'s locks: the shards that run now, or the one unsharded run."""
    import fcntl

    running = []
    for path in sorted(out.glob(".medsyn.s*of*.lock")):
        name = re.fullmatch(r"\.medsyn\.s(\d+)of(\d+)\.lock", path.name)
        if name is None:
            continue
        with path.open("a+", encoding="utf-8") as fh:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                fh.seek(0)
                running.append(f"shard {name[1]}/{name[2]} ({fh.read().strip() or 'another process'})")
    if running:
        return "sharded runs: " + ", ".join(running)
    main.seek(0)
    return main.read().strip() or "another process"


def clear_outputs(out: Path) -> None:
    """Remove what a generation job wrote in ``out`` (for ``--overwrite``); other files stay."""
    for name in JOB_OUTPUTS:
        target = out / name
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()


def read_job(folder: Path) -> dict[str, Any]:
    """The job spec that ``folder``'s :data:`JOB_FILE` holds."""
    path = folder / JOB_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8"))["job"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ConfigError(f"{path} is unreadable ({err}); pass --overwrite to start afresh") from err


def folder_card(
    spec: dict[str, Any],
    records: list[dict[str, Any]] | CardStats,
    meta: dict[str, Any],
    cost: dict[str, Any] | None = None,
) -> str:
    """The card of a folder that ``medsyn generate`` wrote, from its records or the :class:`~medsyn.cards.CardStats`
    the dataset step counted; ``cost`` is its job file's ``throughput``."""
    from medsyn.cards import CardStats, notes_card

    stats = records if isinstance(records, CardStats) else split_records(records)
    return notes_card(spec, stats, meta, job_fingerprint=fingerprint(spec), cost=cost)


# ---------------------------------------------------------------------------------------------- reading notes


# Column names that hold a note's text and its code, in the formats medsyn reads.
_TEXT_COLUMNS = ("note", "text", "symptoms")
_CODE_COLUMNS = ("icd10_code", "code", "category")


def load_notes(source: str | Path) -> list[Note]:
    """Load notes from a RuMedTop3-format JSONL file or from a dataset folder.

    Args:
        source: a ``.jsonl`` (or ``.jsonl.gz``) file with ``symptoms`` and ``code`` per line; a folder that
            ``medsyn generate`` is still writing (its kept notes are read from ``shards/``); or any folder that
            ``datasets.load_dataset(folder)`` reads (a finished ``medsyn generate`` folder, a release folder), whose
            default config's rows have a text column (``note``/``text``/``symptoms``) and a code column
            (``icd10_code``/``code``/``category``).

    Returns:
        A list of ``{"id", "text", "code"}`` dicts; codes are cut to their 3-character category.
    """
    source = Path(source)
    if source.is_file() and (source.suffix in (".jsonl", ".json") or source.name.endswith(".jsonl.gz")):
        notes = read_rumedtop3_file(source)
    elif source.is_dir() and (source / "shards").is_dir():
        rows = split_records(read_shards(source / "shards"))["default"]
        notes = [{"id": r["id"], "text": r["note"], "code": r["icd10_code"]} for r in rows]
    elif source.is_dir():
        notes = _dataset_folder_notes(source)
    else:
        raise MedsynError(f"cannot read notes from {source}: expected a .jsonl file or a dataset folder")
    for note in notes:
        note["code"] = note["code"].split(".")[0][:3]
    logger.info("loaded %d notes from %s", len(notes), source)
    return notes


def _dataset_folder_notes(source: Path) -> list[Note]:
    """The default config's notes of a folder that ``datasets.load_dataset`` reads (all its splits)."""
    import datasets

    if not list(source.rglob("*.parquet")) and not list(source.glob("*.jsonl")) and not list(source.glob("*.csv")):
        raise MedsynError(
            f"{source} holds no data files; pass a folder written by 'medsyn generate', a release folder or a .jsonl"
        )
    try:
        loaded = datasets.load_dataset(str(source))
    except Exception as err:  # noqa: BLE001 - any reader error becomes one line that names the folder
        raise MedsynError(f"datasets cannot read {source} ({type(err).__name__}: {err})") from err
    notes: list[Note] = []
    for split in loaded.values():
        text_col = next((c for c in _TEXT_COLUMNS if c in split.column_names), None)
        code_col = next((c for c in _CODE_COLUMNS if c in split.column_names), None)
        if text_col is None or code_col is None:
            raise MedsynError(
                f"{source}: columns {split.column_names} hold no note text ({'/'.join(_TEXT_COLUMNS)}) or no "
                f"code ({'/'.join(_CODE_COLUMNS)})"
            )
        ids = split["id"] if "id" in split.column_names else [f"{source.name}-{i}" for i in range(len(split))]
        notes += [{"id": str(i), "text": t, "code": c} for i, t, c in zip(ids, split[text_col], split[code_col])]
    return notes
