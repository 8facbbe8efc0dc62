"""The generation job: sampler → :class:`~medsyn.generator.NoteGenerator` → writer, resumable and exact.

Example:
    >>> from medsyn.pipeline import GenerateConfig, run_generation          # doctest: +SKIP
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
import contextlib
import errno
import json
import logging
import shutil
import signal
import sys
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from medsyn.backends import GenerationParams, backend_class
from medsyn.config import dump_config
from medsyn.errors import (
    ConfigError,
    DiskError,
    EndpointsUnavailableError,
    GenerationAborted,
    GenerationStopped,
)
from medsyn.generator import GeneratorConfig, NoteGenerator
from medsyn.job import (
    JOB_FILE,
    check_job,
    check_out_dir,
    clear_outputs,
    fingerprint,
    folder_card,
    folder_lock,
    index_shards,
    is_failed,
    job_spec,
    read_job,
    write_job_file,
)
from medsyn.kg import load_graph
from medsyn.sampling import Task
from medsyn.sharding import Shard, add_run_stats, bucket, parse_shard, read_run_stats, total_stats
from medsyn.writer import ShardWriter

__all__ = ["GenerateConfig", "run_generation", "interleave", "summary_line"]

logger = logging.getLogger(__name__)


@dataclass
class GenerateConfig(GeneratorConfig):
    """A generation job: a :class:`~medsyn.generator.GeneratorConfig`, how many notes, and where to write them."""

    # Output
    n: int = field(default=20, metadata={"help": "number of tasks (notes) to generate"})
    out: str = field(default="outputs/ru-notes", metadata={"help": "dataset folder (resumed if it exists)"})
    overwrite: bool = field(
        default=False, metadata={"help": "start afresh: remove what an earlier job wrote in --out first"}
    )
    finalize_only: bool = field(
        default=False,
        metadata={
            "help": "generate nothing: write the dataset folder from what the shards hold (a job cut short, or "
            "the merge step after sharded runs); says which tasks are missing"
        },
    )
    shard: str | None = field(
        default=None,
        metadata={
            "help": "I/N: run only shard I of N (0-based) of the job's tasks, into the same --out as the others; "
            "auto: from SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT, JOB_COMPLETION_INDEX (give auto/N) or "
            "RANK/WORLD_SIZE. The last shard to finish writes the dataset files"
        },
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.n < 1:
            raise ConfigError(f"n must be >= 1, got {self.n}")
        if self.shard is not None and not str(self.shard).strip().lower().startswith("auto"):
            parse_shard(self.shard)  # a malformed I/N fails here; auto is read from the scheduler at run time


def run_generation(config: GenerateConfig, params: GenerationParams | None = None) -> dict[str, Any]:
    """Generate ``config.n`` notes into ``config.out``, resuming what a previous run left.

    Args:
        config: the job.
        params: sampling parameters.

    Returns:
        A summary: counts of kept, rejected and failed notes, notes/s, tokens/s, the output folder.

    Raises:
        ConfigError: the folder holds another job's notes.
        FolderBusyError: another run is writing the folder.
        GenerationAborted: nearly all of the first tasks failed, or every endpoint kept failing.
        GenerationStopped: Ctrl-C or SIGTERM; the dataset files are written for what is done.
        DiskError: the disk refused a write (full, read-only, gone).

    In each of the last three cases what was done is on disk, and the same command resumes.
    """
    out = Path(config.out)
    shard = parse_shard(config.shard)
    if shard is not None and (config.finalize_only or config.overwrite):
        raise ConfigError(
            "--finalize_only writes the dataset from every shard, and --overwrite would remove the other shards' "
            "notes: run either without --shard"
        )
    backend_class(config.backend).check(config)  # before any folder is made or the graph is loaded
    created = not out.exists()
    try:
        check_out_dir(out)
        if config.finalize_only:  # writes nothing a running job could also write: no lock needed
            return _run_generation(config, params or GenerationParams(), out, None)
        with folder_lock(out, shard):
            return _run_generation(config, params or GenerationParams(), out, shard)
    except KeyboardInterrupt as err:  # outside the task loop (loading, finalizing): stop as the loop does
        raise GenerationStopped(_stopped_line(out), getattr(err, "exit_code", 130)) from None
    except OSError as err:
        if err.errno not in DISK_ERRNOS:
            raise
        raise DiskError(_disk_line(out, err)) from None
    except BaseException:
        if created and out.is_dir() and not (out / "shards").exists():
            shutil.rmtree(out, ignore_errors=True)  # a start that failed before any note leaves nothing in the way
        raise


DISK_ERRNOS = (errno.ENOSPC, errno.EROFS, errno.EIO, errno.EDQUOT)
"""Write errors that are the disk's, not the job's: full, read-only, gone, over quota."""


def _safe_counts(out: Path) -> Counter[str]:
    return Counter(config for _, _, config in index_shards(out / "shards")[0].values())


def _stopped_line(out: Path) -> str:
    c = _safe_counts(out)
    return (
        f"stopped: {sum(c.values())} notes (kept {c['default']}, rejected {c['rejected']}, failed {c['failed']}) "
        f"are safe in {out}; run the same command to resume"
    )


def _disk_line(out: Path, err: OSError) -> str:
    c = _safe_counts(out)
    return (
        f"could not write {err.filename or out}: {err.strerror}; {c['default'] + c['rejected']} notes are safe in "
        f"{out}; free space (or make the folder writable), then run the same command"
    )


def summary_line(summary: dict[str, Any]) -> str:
    """The run's last line: what it made, how fast, and where."""
    rate = f", {summary['notes_per_s']:g} notes/s" if summary.get("notes_per_s") else ""
    who = f"shard {summary['shard']} " if summary.get("shard") else ""
    return (
        f"{who}done: kept {summary['kept']}, rejected {summary['rejected']}, failed {summary['failed']} of "
        f"{summary['tasks']} tasks ({summary['generated_now']} generated now{rate}) in {summary['out']}"
    )


def _run_generation(
    config: GenerateConfig, params: GenerationParams, out: Path, shard: Shard | None
) -> dict[str, Any]:
    if config.overwrite:
        clear_outputs(out)
    kg = load_graph(config.graph)
    generator = NoteGenerator(config, params, kg=kg)
    tasks = generator.sampler.sample(config.n)
    mine = [t for t in tasks if shard.owns(t.id)] if shard else tasks  # the job's tasks and seeds, a share of them
    graph_fp = kg.fingerprint()
    writer = ShardWriter(out, shard.tag if shard else None)
    holds_notes = writer.records_on_disk > 0
    # Settings are checked before anything is loaded or generated, and again once the backend says what it serves.
    check_job(out, job_spec(generator, graph_fp), holds_notes)
    # round-robin over categories, so that a job stopped at any point holds a spread of codes, not the first few
    todo = [] if config.finalize_only else interleave([t for t in mine if t.id not in writer.done])
    logger.info(
        "%s%d tasks, %d already written in %s, %d to generate",
        f"shard {shard}: " if shard else "",
        len(mine),
        len(mine) - len(todo),
        out,
        len(todo),
    )
    stats: dict[str, Any] = dict(tokens=0, tokens_in=0, tries=0, counts=Counter(), router=None, signal=None)
    aborted: GenerationAborted | None = None
    started = time.perf_counter()
    if todo:
        generator.load()
        started = time.perf_counter()  # rates count generation, not the model's conversion or load
        stats["cpu0"] = time.process_time()
        spec = job_spec(generator, graph_fp)
        check_job(out, spec, holds_notes)
        logger.info("job %s: %s", fingerprint(spec), json.dumps(spec, ensure_ascii=False))
        try:
            asyncio.run(_run_tasks(generator, todo, writer, len(mine), stats))
        except GenerationAborted as err:
            aborted = err
        finally:
            writer.close()
            stats["cpu_s"] = time.process_time() - stats["cpu0"]
            stats["peak_rss_mb"] = _peak_rss_mb()
            with contextlib.suppress(OSError):  # a full disk is reported as itself, not as the stats file
                add_run_stats(out, shard, _run_numbers(stats, time.perf_counter() - started))
    elapsed = time.perf_counter() - started
    if shard is None:
        counts = _finalize(config, params, out, writer, [t.id for t in tasks], stats)
    else:
        counts = _finish_shard(config, params, out, writer, shard, tasks, mine, stats)
    done_now = sum(stats["counts"][k] for k in ("kept", "rejected"))
    summary = {
        "out": str(out),
        **({"shard": str(shard)} if shard else {}),
        "tasks": len(mine),
        "generated_now": done_now,
        **counts,
        "seconds": round(elapsed, 1),
        "notes_per_s": round(done_now / elapsed, 3) if done_now and elapsed else None,
        "tokens_per_s": round(stats["tokens"] / elapsed, 1) if done_now and elapsed else None,
    }
    if "cpu_s" in stats:  # what this process spent on the job's requests, loading and finalizing left out
        summary["cpu_s"] = round(stats["cpu_s"], 2)
        summary["peak_rss_mb"] = stats["peak_rss_mb"]  # the process's peak by the end of generation
    if stats["router"]:
        summary["endpoints"] = stats["router"]
    if aborted is not None:
        raise GenerationAborted(f"{aborted} ({counts['kept'] + counts['rejected']} notes are safe in {out})")
    if stats["signal"] is not None:
        raise GenerationStopped(_stopped_line(out), 128 + stats["signal"])
    logger.info("done: %s", summary)
    return summary


def _finalize(
    config: GenerateConfig,
    params: GenerationParams,
    out: Path,
    writer: ShardWriter,
    order: list[str],
    stats: dict[str, Any],
    index: tuple[dict[str, tuple[Path, int, str]], int] | None = None,
) -> dict[str, int]:
    """Write the dataset files and the folder's own config; returns the kept/rejected/failed counts.

    ``index`` is the shards' :func:`~medsyn.job.index_shards` when the caller has just made it.
    """
    import yaml

    if writer.records_on_disk or sum(stats["counts"].values()):
        where, twice = index or index_shards(out / "shards")
        _report_coverage(out, order, where, twice)
        cost = _record_throughput(out)
        spec = read_job(out)
        counts = writer.finalize(order, lambda records, meta: folder_card(spec, records, meta, cost), where)
    else:  # nothing was ever written: no dataset card that would point at missing files
        counts = {"kept": 0, "rejected": 0, "failed": 0}
    # the saved config resumes this folder, from any directory (`out` is where it sits), and never wipes it
    saved = dump_config(replace(config, overwrite=False, finalize_only=False), params)
    del saved["out"]
    (out / "medsyn_config.yaml").write_text(yaml.safe_dump(saved, allow_unicode=True, sort_keys=False), "utf-8")
    return counts


def _peak_rss_mb() -> float | None:
    """The process's peak resident memory so far, in MB (``None`` where the system does not say)."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not on POSIX
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)  # bytes on macOS, KB on Linux


def _run_numbers(stats: dict[str, Any], wall_s: float) -> dict[str, float]:
    """What one run did, for its shard's stats file (:func:`~medsyn.sharding.add_run_stats`)."""
    counts = stats["counts"]
    router = stats["router"] or []
    requests = sum(e["ok"] + e["failed"] + e["overloaded"] for e in router) if router else stats["tries"]
    return {
        "wall_s": wall_s,
        "cpu_s": stats["cpu_s"],
        "requests": requests,
        "retries": sum(e["failed"] + e["overloaded"] for e in router),
        "tries": stats["tries"],
        "notes": counts["kept"] + counts["rejected"],
        "failed": counts["failed"],
        "tokens_in": stats["tokens_in"],
        "tokens_out": stats["tokens"],
    }


def _record_throughput(out: Path) -> dict[str, Any] | None:
    """Sum the shards' stats files into the job file's ``throughput``; returns it (``None`` when none was kept)."""
    per_shard = read_run_stats(out)
    if not per_shard:
        return None
    payload = json.loads((out / JOB_FILE).read_text(encoding="utf-8"))
    payload["throughput"] = {"per_shard": per_shard, "total": total_stats(per_shard)}
    write_job_file(out, payload)
    return payload["throughput"]


def _not_done(ids: list[str], where: dict[str, tuple[Path, int, str]]) -> list[str]:
    """The ids of ``ids`` with no kept or rejected record in the shards' index (none, or only failed ones)."""
    return [tid for tid in ids if tid not in where or where[tid][2] == "failed"]


def _report_coverage(out: Path, order: list[str], where: dict[str, tuple[Path, int, str]], twice: int) -> None:
    """Warn about the job's tasks that no run has finished (naming the shards that own them) and tasks done twice."""
    missing = _not_done(order, where)
    if twice:
        logger.warning(
            "%d tasks were written by two runs at once (shards of different counts?); the first note of each is kept",
            twice,
        )
    if not missing:
        return
    counts = sorted({int(s.split("/")[1]) for s in read_run_stats(out) if "/" in s})
    owners = sorted({f"{bucket(tid, n)}/{n}" for tid in missing for n in counts[-1:]})
    logger.warning(
        "%d of the job's %d tasks are not done yet%s; the dataset files hold the %d that are: run %s again to add them",
        len(missing),
        len(order),
        f" (shards {', '.join(owners)})" if owners else "",
        len(order) - len(missing),
        "those shards" if owners else "the same command",
    )


def _finish_shard(
    config: GenerateConfig,
    params: GenerationParams,
    out: Path,
    writer: ShardWriter,
    shard: Shard,
    tasks: list[Task],
    mine: list[Task],
    stats: dict[str, Any],
) -> dict[str, int]:
    """A shard's end: the dataset files when every task of the job is done, by the one shard that gets there."""
    import fcntl

    index = index_shards(out / "shards")
    where = index[0]
    left = _not_done([t.id for t in tasks], where)
    if not left:
        with (out / ".medsyn.finalize.lock").open("a+") as fh:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                logger.info("shard %s: another shard is writing the dataset files", shard)
            else:
                logger.info("shard %s: every task of the job is done; writing the dataset files", shard)
                _finalize(config, params, out, writer, [t.id for t in tasks], stats, index)
    else:
        logger.info(
            "shard %s: %d tasks of other shards are not done yet; the last shard to finish writes the dataset files "
            "(or run the same command without --shard, with --finalize_only)",
            shard,
            len(left),
        )
    c = Counter(where[t.id][2] for t in mine if t.id in where)
    return {"kept": c["default"], "rejected": c["rejected"], "failed": c["failed"]}


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
    """Run ``todo`` with at most ``backend.max_in_flight`` tasks at a time, writing each record as it finishes.

    Ctrl-C or SIGTERM stops handing out tasks and lets the requests in flight finish and be written; a second one
    cancels them. ``stats["signal"]`` then names the signal.
    """
    from tqdm.auto import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm

    backend = generator.backend
    assert backend is not None
    queue: asyncio.Queue[Task] = asyncio.Queue()
    for task in todo:
        queue.put_nowait(task)
    progress = _Progress(stats, min(len(todo), 20), backend.name)
    bar = tqdm(total=total, initial=total - len(todo), desc="generating", unit="note", dynamic_ncols=True)

    async def worker() -> None:
        while stats["signal"] is None:
            try:
                task = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            record = await generator.agenerate(task)
            if record is None:  # stopped between two tries: left for the resume
                continue
            writer.write([record])
            progress.count(record)
            bar.update(1)
            bar.set_postfix(progress.postfix(), refresh=False)  # drawn at tqdm's own pace

    workers: list[asyncio.Task[None]] = []

    def staff() -> None:
        """As many workers as the backend takes requests in flight now (a fleet can grow while the job runs)."""
        busy = sum(not w.done() for w in workers)
        for _ in range(min(max(backend.max_in_flight, 1) - busy, queue.qsize())):
            workers.append(asyncio.create_task(worker()))

    staff()
    signals = _StopOnSignal(stats, workers, generator)
    watcher = asyncio.create_task(_watch_backend(backend, staff, signals))
    try:
        with logging_redirect_tqdm(), signals:  # log lines print above the bar instead of through it
            while True:
                current = list(workers)
                done, pending = await asyncio.wait(current, return_when=asyncio.FIRST_EXCEPTION)
                failed = any(not w.cancelled() and w.exception() is not None for w in done)
                if failed or (not pending and len(workers) == len(current)):
                    break
            for w in workers:
                w.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
        for w in workers:
            err = None if w.cancelled() else w.exception()
            if isinstance(err, EndpointsUnavailableError):
                raise GenerationAborted(str(err)) from err
            if err is not None:
                raise err
    finally:
        watcher.cancel()
        for w in workers:
            w.cancel()  # an interrupt (Ctrl-C) lands here with the workers still running
        bar.close()
        router = getattr(backend, "router", None)
        stats["router"] = router.summary() if router is not None else None
        await backend.aclose()


async def _watch_backend(backend: Any, staff: Any, signals: _StopOnSignal) -> None:
    """About once a second, and at once on SIGHUP: let the backend re-read its fleet, and staff what it takes now."""
    while True:
        try:
            await asyncio.wait_for(signals.hangup.wait(), timeout=1.0)
        except asyncio.TimeoutError:
            pass
        forced = signals.hangup.is_set()
        signals.hangup.clear()
        if backend.refresh(force=forced):
            staff()


class _Progress:
    """Counts finished records, and stops the run when nearly all of the first ``window`` tasks failed."""

    def __init__(self, stats: dict[str, Any], window: int, backend: str) -> None:
        self.stats, self.counts, self.window, self.backend = stats, stats["counts"], window, backend
        self.first_errors: Counter[str] = Counter()
        self.started = time.perf_counter()

    def count(self, record: dict[str, Any]) -> None:
        counts = self.counts
        if is_failed(record):
            counts["failed"] += 1
            if sum(counts.values()) <= self.window:
                self.first_errors[f"{record.get('endpoint') or self.backend}: {record['error']}"] += 1
        else:
            counts["kept" if record["kept"] else "rejected"] += 1
            self.stats["tokens"] += record.get("completion_tokens") or 0
            self.stats["tokens_in"] += record.get("prompt_tokens") or 0
        self.stats["tries"] += record.get("attempts") or 1
        if sum(counts.values()) == self.window and counts["failed"] >= 0.9 * self.window:
            error, _ = self.first_errors.most_common(1)[0]
            raise GenerationAborted(
                f"{counts['failed']} of the first {self.window} tasks failed; {error}. Check the URL, the served "
                "model name (--model) and the key, then run the same command again"
            )

    def postfix(self) -> dict[str, Any]:
        rate = self.stats["tokens"] / max(time.perf_counter() - self.started, 1e-9)
        c = self.counts
        return {"kept": c["kept"], "rejected": c["rejected"], "failed": c["failed"], "tok_s": f"{rate:.0f}"}


class _StopOnSignal:
    """While the tasks run: the first SIGINT/SIGTERM stops new tasks, a second cancels those in flight."""

    def __init__(self, stats: dict[str, Any], workers: list[asyncio.Task[None]], generator: NoteGenerator) -> None:
        self.stats, self.workers, self.generator = stats, workers, generator
        self.installed: dict[int, Any] = {}  # signal -> the handler to put back
        self.hangup = asyncio.Event()  # SIGHUP: re-read the fleet now

    def __enter__(self) -> _StopOnSignal:
        loop = asyncio.get_running_loop()
        handlers = {signal.SIGINT: self._on_signal, signal.SIGTERM: self._on_signal}
        if hasattr(signal, "SIGHUP"):
            handlers[signal.SIGHUP] = lambda _signum: self.hangup.set()
        for signum, handler in handlers.items():
            try:
                previous = signal.getsignal(signum)
                loop.add_signal_handler(signum, handler, signum)
                self.installed[signum] = previous
            except (NotImplementedError, RuntimeError, ValueError):  # not the main thread, or not POSIX
                pass
        return self

    def __exit__(self, *exc: object) -> None:
        loop = asyncio.get_running_loop()
        for signum, previous in self.installed.items():
            loop.remove_signal_handler(signum)
            if previous is not None:
                signal.signal(signum, previous)  # after the loop, a signal stops the run as before it

    def _on_signal(self, signum: int) -> None:
        if self.stats["signal"] is not None:
            logger.warning("stopping now: the requests in flight are dropped (their tasks run again on resume)")
            for w in self.workers:
                w.cancel()
            return
        self.stats["signal"] = signum
        self.generator.stopping = True  # a note the filter turns down is not tried again
        busy = sum(not w.done() for w in self.workers)
        logger.warning(
            "stopping (%s): no new tasks; waiting for up to %d in flight to be written (again to stop at once)",
            signal.Signals(signum).name,
            busy,
        )
