"""The generation job: sampler → :class:`~medsyn.generator.NoteGenerator` → writer, resumable and exact.

Example:
    >>> from medsyn.generate import GenerateConfig, run_generation          # doctest: +SKIP
    >>> run_generation(GenerateConfig(n=20, out="outputs/notes", seed=0))   # doctest: +SKIP

The job is one coroutine per task under a bound on requests in flight: a finished note is written at once, and a
note the filter turns down is tried again by itself, with its next seed. The same engine drives the in-process
model (whose backend gathers the requests in flight into batches) and any number of served endpoints.

The resolved job (model, served model, adapter and its content hash, template, sampling parameters, symptom
bounds, seed, graph fingerprint, versions) is fingerprinted and written to ``medsyn_job.json`` before the first
request. Re-running the same command resumes: finished tasks are skipped, failed ones are tried again, and a
larger ``n`` extends the folder. A run with other settings into the same folder stops and says what differs.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import shutil
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from medsyn.backends import GenerationParams
from medsyn.backends.routing import EndpointsUnavailableError
from medsyn.config import dump_config
from medsyn.errors import BackendError, ConfigError
from medsyn.generator import NoteGenerator, adapter_hash, adapter_label, resolve_adapter, resolve_template
from medsyn.models import DEFAULT_MODEL
from medsyn.sampling import Task
from medsyn.writer import ShardWriter, is_failed

__all__ = [
    "GenerateConfig",
    "GenerationAborted",
    "run_generation",
    "job_spec",
    "resolve_adapter",
    "resolve_template",
]

logger = logging.getLogger(__name__)

JOB_FILE = "medsyn_job.json"
# What --overwrite removes: the files a generation job writes, nothing else in the folder.
_JOB_OUTPUTS = ("shards", "data", "rejected", "failed", "README.md", JOB_FILE, "medsyn_config.yaml")


class GenerationAborted(BackendError):
    """The run stopped early (nearly every first task failed, or every endpoint kept failing); nothing is lost."""


@dataclass
class GenerateConfig:
    """What to generate, with which model, and where to write it."""

    # Output
    n: int = field(default=20, metadata={"help": "number of tasks (notes) to generate"})
    out: str = field(default="outputs/ru-notes", metadata={"help": "dataset folder (resumed if it exists)"})
    seed: int = field(default=0, metadata={"help": "random seed for tasks and sampling"})
    overwrite: bool = field(
        default=False, metadata={"help": "start afresh: remove what an earlier job wrote in --out first"}
    )
    finalize_only: bool = field(
        default=False,
        metadata={"help": "generate nothing: write the dataset folder from what the shards hold (a job cut short)"},
    )
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
            "help": "prompt: example_guided, instruction, or auto (instruction with an adapter, else example_guided)"
        },
    )
    prompt_format: str = field(default="auto", metadata={"help": "auto, chat or text"})
    dtype: str = field(default="auto", metadata={"help": "auto, bfloat16, float16 or float32"})
    device: str | None = field(default=None, metadata={"help": "cpu, cuda, cuda:1… (CUDA if available)"})
    batch_size: int = field(default=8, metadata={"help": "most prompts per forward batch of the in-process model"})
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
        if self.n < 1:
            raise ConfigError(f"n must be >= 1, got {self.n}")
        if self.consistency_top_k < 0:
            raise ConfigError(f"consistency_top_k must be >= 0 (0: off), got {self.consistency_top_k}")
        if self.fill_rare_to is not None and self.fill_rare_to < 1:
            raise ConfigError(f"fill_rare_to must be >= 1 real notes per category, got {self.fill_rare_to}")
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.template not in ("auto", "example_guided", "instruction"):
            raise ConfigError(f"template must be auto, example_guided or instruction, got {self.template!r}")
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
        "max_attempts": c.max_attempts,
        "medsyn_version": _version("medsyn"),
        "transformers_version": _version("transformers"),
    }
    if c.backend == "transformers":
        spec["dtype"] = c.dtype
    if backend is not None and c.backend == "endpoint":
        served = sorted({m for m in getattr(backend, "served", {}).values() if m})
        if served:  # unknown while no endpoint answers; then left out rather than compared
            spec["served_model"] = served[0] if len(served) == 1 else served
        spec["prompt_format"] = "chat" if backend.chat else "text"
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
    tmp = path.with_suffix(".tmp")
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
        probe = out / ".medsyn-write-check"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise ConfigError(
            f"--out {out} cannot be written ({err.strerror or err}); choose a folder you can write to"
        ) from err


def clear_outputs(out: Path) -> None:
    """Remove what a generation job wrote in ``out`` (for ``--overwrite``); other files stay."""
    for name in _JOB_OUTPUTS:
        target = out / name
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()


# ---------------------------------------------------------------------------------------------- the job


def run_generation(config: GenerateConfig, params: GenerationParams | None = None) -> dict[str, Any]:
    """Generate ``config.n`` notes into ``config.out``, resuming what a previous run left.

    Args:
        config: the job.
        params: sampling parameters.

    Returns:
        A summary: counts of kept, rejected and failed notes, notes/s, tokens/s, the output folder.

    Raises:
        ConfigError: the folder holds another job's notes.
        GenerationAborted: nearly all of the first tasks failed, or every endpoint kept failing. What was done is
            on disk, and the same command resumes.
    """
    from medsyn.models import check_model_path

    out = Path(config.out)
    if config.backend == "transformers" and not config.endpoint:
        check_model_path(config.model)  # before any folder is made or the graph is loaded
    created = not out.exists()
    try:
        return _run_generation(config, params or GenerationParams(), out)
    except BaseException:
        if created and out.is_dir() and not (out / "shards").exists():
            shutil.rmtree(out, ignore_errors=True)  # a start that failed before any note leaves nothing in the way
        raise


def _run_generation(config: GenerateConfig, params: GenerationParams, out: Path) -> dict[str, Any]:
    from medsyn.kg import load_graph
    from medsyn.release.card_notes import folder_card

    check_out_dir(out)
    if config.overwrite:
        clear_outputs(out)
    kg = load_graph(config.graph)
    generator = NoteGenerator(config, params, kg=kg)
    tasks = generator.sampler.sample(config.n)
    graph_fp = kg.fingerprint()
    writer = ShardWriter(out)
    holds_notes = writer.records_on_disk > 0
    # Settings are checked before anything is loaded or generated, and again once the backend says what it serves.
    check_job(out, job_spec(generator, graph_fp), holds_notes)
    # round-robin over categories, so that a job stopped at any point holds a spread of codes, not the first few
    todo = [] if config.finalize_only else interleave([t for t in tasks if t.id not in writer.done])
    logger.info(
        "%d tasks, %d already written in %s, %d to generate", len(tasks), len(tasks) - len(todo), out, len(todo)
    )
    stats: dict[str, Any] = {"tokens": 0, "counts": Counter(), "router": None}
    aborted: GenerationAborted | None = None
    started = time.perf_counter()
    if todo:
        generator.load()
        started = time.perf_counter()  # rates count generation, not the model's conversion or load
        spec = job_spec(generator, graph_fp)
        check_job(out, spec, holds_notes)
        logger.info("job %s: %s", fingerprint(spec), json.dumps(spec, ensure_ascii=False))
        try:
            asyncio.run(_run_tasks(generator, todo, writer, len(tasks), stats))
        except GenerationAborted as err:
            aborted = err
        finally:
            writer.close()
    elapsed = time.perf_counter() - started
    spec_now = json.loads((out / JOB_FILE).read_text(encoding="utf-8"))["job"]
    if writer.records_on_disk or sum(stats["counts"].values()):
        counts = writer.finalize(
            order=[t.id for t in tasks], card=lambda records, meta: folder_card(spec_now, records, meta)
        )
    else:  # nothing was ever written: no dataset card that would point at missing files
        counts = {"kept": 0, "rejected": 0, "failed": 0}
    # the saved config resumes this folder, from any directory (`out` is where it sits), and never wipes it
    import yaml

    saved = dump_config(replace(config, overwrite=False, finalize_only=False), params)
    del saved["out"]
    (out / "medsyn_config.yaml").write_text(yaml.safe_dump(saved, allow_unicode=True, sort_keys=False), "utf-8")
    done_now = sum(stats["counts"][k] for k in ("kept", "rejected"))
    summary = {
        "out": str(out),
        "tasks": len(tasks),
        "generated_now": done_now,
        **counts,
        "seconds": round(elapsed, 1),
        "notes_per_s": round(done_now / elapsed, 3) if done_now and elapsed else None,
        "tokens_per_s": round(stats["tokens"] / elapsed, 1) if done_now and elapsed else None,
    }
    if stats["router"]:
        summary["endpoints"] = stats["router"]
    if aborted is not None:
        raise GenerationAborted(f"{aborted} ({counts['kept'] + counts['rejected']} notes are safe in {out})")
    logger.info("done: %s", summary)
    return summary


def interleave(tasks: list[Task]) -> list[Task]:
    """``tasks`` reordered round-robin across their categories (each category's own order kept)."""
    by_category: dict[str, list[Task]] = {}
    for task in tasks:
        by_category.setdefault(task.category, []).append(task)
    rounds = max((len(v) for v in by_category.values()), default=0)
    return [queue[k] for k in range(rounds) for queue in by_category.values() if k < len(queue)]


async def _run_tasks(
    generator: NoteGenerator, todo: list[Task], writer: ShardWriter, total: int, stats: dict[str, Any]
) -> None:
    """Run ``todo`` with at most ``backend.max_in_flight`` tasks at a time, writing each record as it finishes."""
    from tqdm.auto import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm

    backend = generator.backend
    assert backend is not None
    queue: asyncio.Queue[Task] = asyncio.Queue()
    for task in todo:
        queue.put_nowait(task)
    counts: Counter[str] = stats["counts"]
    first_errors: Counter[str] = Counter()
    window = min(len(todo), 20)  # the first tasks: if nearly all fail, the setup is wrong, not the endpoint's day
    started = time.perf_counter()
    bar = tqdm(total=total, initial=total - len(todo), desc="generating", unit="note", dynamic_ncols=True)

    async def worker() -> None:
        while True:
            try:
                task = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            record = await generator.agenerate(task)
            writer.write([record])
            if is_failed(record):
                counts["failed"] += 1
                if sum(counts.values()) <= window:
                    first_errors[f"{record.get('endpoint') or backend.name}: {record['error']}"] += 1
            else:
                counts["kept" if record["kept"] else "rejected"] += 1
                stats["tokens"] += record.get("completion_tokens") or 0
            if sum(counts.values()) == window and counts["failed"] >= 0.9 * window:
                error, _ = first_errors.most_common(1)[0]
                raise GenerationAborted(
                    f"{counts['failed']} of the first {window} tasks failed; {error}. Check the URL, the served "
                    "model name (--model) and the key, then run the same command again"
                )
            bar.update(1)
            rate = stats["tokens"] / max(time.perf_counter() - started, 1e-9)
            bar.set_postfix(
                kept=counts["kept"], rejected=counts["rejected"], failed=counts["failed"], tok_s=f"{rate:.0f}"
            )

    workers = [asyncio.create_task(worker()) for _ in range(max(1, min(backend.max_in_flight, len(todo))))]
    try:
        with logging_redirect_tqdm():  # log lines print above the bar instead of through it
            done, pending = await asyncio.wait(workers, return_when=asyncio.FIRST_EXCEPTION)
            for w in pending:
                w.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        for w in done:
            err = w.exception()
            if isinstance(err, EndpointsUnavailableError):
                raise GenerationAborted(str(err)) from err
            if err is not None:
                raise err
    finally:
        for w in workers:
            w.cancel()  # an interrupt (Ctrl-C) lands here with the workers still running
        bar.close()
        router = getattr(backend, "router", None)
        stats["router"] = router.summary() if router is not None else None
        await backend.aclose()
