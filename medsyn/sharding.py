"""One job split across processes and nodes: which tasks a shard owns, and what each shard's runs cost.

``medsyn generate … --shard I/N`` runs the tasks whose id hashes to bucket ``I`` of ``N``. The task list, the
seeds and the job's fingerprint are those of the whole job, so the union of the ``N`` shards is the unsharded run
note for note. Each shard appends to its own ``shards/part-NNNNN-sIofN.jsonl`` files under its own lock, and resumes
on its own; the last shard to finish (or ``--finalize_only``) writes the dataset files for the whole folder.

``--shard auto`` reads the index and count from the scheduler (:func:`shard_from_env`).

Every run, sharded or not, adds what it did to ``shards/stats-TAG.json`` (:func:`add_run_stats`): wall time,
client CPU, requests, retries, tries, tokens in and out, notes. The finalize step sums them into ``medsyn_job.json`` and the card.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from medsyn.errors import ConfigError

__all__ = ["Shard", "parse_shard", "shard_from_env", "add_run_stats", "read_run_stats", "total_stats", "STAT_KEYS"]

STAT_KEYS = ("runs", "wall_s", "cpu_s", "requests", "retries", "tries", "notes", "failed", "tokens_in", "tokens_out")
"""What each shard's stats file adds up over its runs."""


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` of ``count`` (0-based)."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if self.count < 1 or not 0 <= self.index < self.count:
            raise ConfigError(
                f"--shard {self.index}/{self.count} is out of range: the index runs from 0 to count - 1 (e.g. 0/4 … 3/4)"
            )

    def owns(self, task_id: str) -> bool:
        """Whether the task ``task_id`` is this shard's: its id's hash, modulo the count, is the index."""
        return bucket(task_id, self.count) == self.index

    @property
    def tag(self) -> str:
        """The shard in file names: ``s2of4``."""
        return f"s{self.index}of{self.count}"

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def bucket(task_id: str, count: int) -> int:
    """The shard (of ``count``) that owns ``task_id``: a hash, so shards get equal shares of every category."""
    return int(hashlib.sha256(task_id.encode("utf-8")).hexdigest()[:16], 16) % count


def parse_shard(value: str | None, env: Mapping[str, str] | None = None) -> Shard | None:
    """``None`` (no sharding), ``"I/N"``, ``"auto"`` or ``"auto/N"`` → a :class:`Shard`, or one clear error."""
    if value is None or value.strip().lower() in ("", "none"):
        return None
    text = value.strip().lower()
    if text == "auto" or text.startswith("auto/"):
        count = text.split("/", 1)[1] if "/" in text else None
        return shard_from_env(os.environ if env is None else env, _whole(count, value) if count else None)
    index, sep, count = text.partition("/")
    if not sep:
        raise ConfigError(f"--shard {value!r} is not I/N: give the shard's index and the count, e.g. --shard 0/4")
    shard = Shard(_whole(index, value), _whole(count, value))
    return None if shard.count == 1 else shard


def _whole(text: str, value: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ConfigError(f"--shard {value!r} is not I/N with whole numbers, e.g. --shard 0/4") from None


def shard_from_env(env: Mapping[str, str], count: int | None = None) -> Shard | None:
    """The shard that the scheduler gave this process.

    - Slurm job arrays: ``SLURM_ARRAY_TASK_ID`` and ``SLURM_ARRAY_TASK_COUNT`` (an array that starts at 1, as
      ``--array=1-8`` does, counts from ``SLURM_ARRAY_TASK_MIN``);
    - Kubernetes Indexed Jobs: ``JOB_COMPLETION_INDEX``, with the count given as ``--shard auto/N`` (the Job's
      ``completions``);
    - torchrun and ``accelerate launch``: ``RANK`` and ``WORLD_SIZE``.

    ``count`` (from ``auto/N``) overrides the count the variables give.
    """
    if "SLURM_ARRAY_TASK_ID" in env:
        index = int(env["SLURM_ARRAY_TASK_ID"]) - int(env.get("SLURM_ARRAY_TASK_MIN", "0"))
        total = count or _int_env(env, "SLURM_ARRAY_TASK_COUNT", "Slurm sets it for job arrays (sbatch --array)")
        where = "SLURM_ARRAY_TASK_ID"
    elif "JOB_COMPLETION_INDEX" in env:
        if count is None:
            raise ConfigError(
                "JOB_COMPLETION_INDEX gives the index but not the count: pass --shard auto/N with N the Job's completions"
            )
        index, total, where = int(env["JOB_COMPLETION_INDEX"]), count, "JOB_COMPLETION_INDEX"
    elif "RANK" in env:
        index = int(env["RANK"])
        total = count or _int_env(env, "WORLD_SIZE", "torchrun and accelerate launch set it")
        where = "RANK"
    else:
        raise ConfigError(
            "--shard auto found no scheduler variables (SLURM_ARRAY_TASK_ID and SLURM_ARRAY_TASK_COUNT, "
            "JOB_COMPLETION_INDEX with --shard auto/N, or RANK and WORLD_SIZE); pass --shard I/N instead"
        )
    if not 0 <= index < total:
        raise ConfigError(f"{where} gives shard {index} of {total}, outside 0 … {total - 1}; check the array's range")
    return None if total == 1 else Shard(index, total)


def _int_env(env: Mapping[str, str], name: str, why: str) -> int:
    if name not in env:
        raise ConfigError(f"--shard auto needs {name} ({why}), or pass --shard auto/N with the count")
    return int(env[name])


# ---------------------------------------------------------------------------------------------- what runs cost


def stats_path(out: Path, shard: Shard | None) -> Path:
    return out / "shards" / f"stats-{shard.tag if shard else 'all'}.json"


def add_run_stats(out: Path, shard: Shard | None, run: Mapping[str, float]) -> dict[str, Any]:
    """Add one run's numbers (:data:`STAT_KEYS` but ``runs``) to its shard's stats file; returns the new totals."""
    path = stats_path(out, shard)
    totals = read_stats_file(path) or {k: 0 for k in STAT_KEYS}
    for key in STAT_KEYS:
        totals[key] = round(totals.get(key, 0) + (1 if key == "runs" else run.get(key, 0)), 3)
    totals["shard"] = str(shard) if shard else "all"
    totals["updated_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(totals, indent=2), encoding="utf-8")
    tmp.replace(path)
    return totals


def read_stats_file(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def read_run_stats(out: Path) -> dict[str, dict[str, Any]]:
    """Each shard's stats (``"all"`` for unsharded runs), by shard."""
    found = {}
    for path in sorted((out / "shards").glob("stats-*.json")):
        data = read_stats_file(path)
        if data is not None:
            found[str(data.get("shard", path.stem[6:]))] = data
    return found


def total_stats(per_shard: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The sums over shards, with notes per second of wall time summed over runs (what the machines spent)."""
    total: dict[str, Any] = {k: round(sum(s.get(k, 0) for s in per_shard.values()), 3) for k in STAT_KEYS}
    total["notes_per_wall_s"] = round(total["notes"] / total["wall_s"], 3) if total["wall_s"] else None
    return total
