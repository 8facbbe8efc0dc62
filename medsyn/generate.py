"""The generation job: sample tasks from the graph, render prompts, generate, filter, write, resume.

Example:
    >>> from medsyn.generate import GenerateConfig, run_generation          # doctest: +SKIP
    >>> run_generation(GenerateConfig(n=20, out="outputs/notes", seed=0))   # doctest: +SKIP

Re-running the same command on the same ``out`` folder resumes: tasks whose ids are already written are skipped.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from medsyn.backends import GenerationParams, get_backend
from medsyn.config import dump_config, save_config
from medsyn.errors import ConfigError
from medsyn.models import DEFAULT_MODEL
from medsyn.prompts import get_prompt_builder
from medsyn.sampling import Task, TaskSampler
from medsyn.text import symptom_coverage
from medsyn.writer import ShardWriter

__all__ = ["GenerateConfig", "run_generation", "resolve_adapter", "resolve_template"]

logger = logging.getLogger(__name__)


@dataclass
class GenerateConfig:
    """What to generate, with which model, and where to write it."""

    # Output
    n: int = field(default=20, metadata={"help": "number of tasks (notes) to generate"})
    out: str = field(default="outputs/ru-notes", metadata={"help": "dataset folder (resumed if it exists)"})
    seed: int = field(default=0, metadata={"help": "random seed for tasks and sampling"})
    # Knowledge graph and tasks
    graph: str | None = field(default=None, metadata={"help": "graph file (default location, built if missing)"})
    codes: list[str] = field(default_factory=list, metadata={"help": "only these ICD-10 categories or codes"})
    min_symptoms: int = field(default=2, metadata={"help": "fewest symptoms per task"})
    max_symptoms: int = field(default=5, metadata={"help": "most symptoms per task"})
    min_example_chars: int = field(default=80, metadata={"help": "shortest style example to use"})
    # Model
    backend: str = field(default="transformers", metadata={"help": "generation backend"})
    model: str = field(
        default=DEFAULT_MODEL, metadata={"help": "model id or path; 'gemma-3-270m' is the embedded default"}
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
    batch_size: int = field(default=8, metadata={"help": "prompts per generate() call"})
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

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ConfigError(f"max_attempts must be >= 1, got {self.max_attempts}")
        if self.n < 1:
            raise ConfigError(f"n must be >= 1, got {self.n}")
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.template not in ("auto", "example_guided", "instruction"):
            raise ConfigError(f"template must be auto, example_guided or instruction, got {self.template!r}")
        if not 0 <= self.min_symptom_coverage <= 1 or not 0 <= self.max_copy_score <= 1:
            raise ConfigError("min_symptom_coverage and max_copy_score are shares in [0, 1]")


def resolve_adapter(model: str, adapter: str | None) -> str | None:
    """``auto`` → the packaged adapter when ``model`` is the embedded default and the adapter ships; ``none`` → None."""
    if adapter in (None, "", "none"):
        return None
    if adapter != "auto":
        return adapter
    if model not in (DEFAULT_MODEL, "", None):
        return None
    try:
        from medsyn.finetune import default_adapter_path
    except ImportError:
        return None
    path = default_adapter_path()
    return str(path) if path and Path(path, "adapter_config.json").exists() else None


def resolve_template(template: str, adapter: str | None) -> str:
    """``auto`` → ``instruction`` for an adapter trained on medsyn's instruction format, else ``example_guided``."""
    if template != "auto":
        return template
    return "instruction" if adapter else "example_guided"


def _make_filter(config: GenerateConfig) -> Any:
    if not config.filter:
        return None
    from medsyn.data import load_rumedtop3
    from medsyn.eval.quality import NoteFilter

    real = [n["text"] for n in load_rumedtop3("train")]
    return NoteFilter.from_real(
        real, min_symptom_coverage=config.min_symptom_coverage, max_copy_score=config.max_copy_score
    )


def run_generation(config: GenerateConfig, params: GenerationParams | None = None) -> dict[str, Any]:
    """Generate ``config.n`` notes into ``config.out``, resuming what a previous run left.

    Args:
        config: the job.
        params: sampling parameters.

    Returns:
        A summary: counts of kept and rejected notes, notes/s, tokens/s, the output folder.
    """
    from tqdm.auto import tqdm

    from medsyn.kg import load_graph

    params = params or GenerationParams()
    kg = load_graph(config.graph)
    sampler = TaskSampler(
        kg, config.seed, config.min_symptoms, config.max_symptoms, config.min_example_chars, config.codes or None
    )
    tasks = sampler.sample(config.n)
    adapter = resolve_adapter(config.model, config.adapter)
    template = resolve_template(config.template, adapter)
    builder = get_prompt_builder(template)
    resolved = dump_config(config) | {"adapter": adapter, "template": template, "generation": params.to_dict()}
    logger.info("config: %s", json.dumps(resolved, ensure_ascii=False))

    out = Path(config.out)
    writer = ShardWriter(out)
    todo = [t for t in tasks if t.id not in writer.done]
    logger.info(
        "%d tasks, %d already written in %s, %d to generate", len(tasks), len(tasks) - len(todo), out, len(todo)
    )
    note_filter = _make_filter(config) if todo else None
    backend = None
    if todo:
        backend = get_backend(config.backend, **_backend_kwargs(config, adapter))
        backend.load()
    started, tokens = time.perf_counter(), 0
    with writer, tqdm(total=len(tasks), initial=len(tasks) - len(todo), desc="generating", unit="note") as bar:
        for i in range(0, len(todo), config.batch_size):
            batch = todo[i : i + config.batch_size]
            # One seed per batch, derived from the job seed and the batch's first task, so reruns are reproducible.
            batch_seed = (config.seed * 1_000_003 + sum(map(ord, batch[0].id))) % (2**31)
            records: dict[str, dict[str, Any]] = {}
            pending = batch
            for attempt in range(1, config.max_attempts + 1):
                # Notes the filter turned down are written again with a new seed; the last try is kept either way.
                prompts = [
                    builder.messages(t.to_dict()) if backend.chat else builder.text(t.to_dict()) for t in pending
                ]
                generations = backend.generate(prompts, params, seed=batch_seed + 7919 * (attempt - 1))
                for t, p, g in zip(pending, prompts, generations):
                    records[t.id] = _record(t, p, g, template, config, adapter, backend, params, note_filter, attempt)
                tokens += sum(g.completion_tokens for g in generations)
                pending = [t for t in pending if not records[t.id]["kept"]]
                if not pending:
                    break
            writer.write(records[t.id] for t in batch)
            bar.update(len(batch))
            bar.set_postfix(tok_s=f"{tokens / max(time.perf_counter() - started, 1e-9):.1f}")
    elapsed = time.perf_counter() - started
    card = _card_body(config, resolved, tasks, out)
    counts = writer.finalize(order=[t.id for t in tasks], card=card)
    save_config(out / "medsyn_config.yaml", config, params)
    summary = {
        "out": str(out),
        "tasks": len(tasks),
        "generated_now": len(todo),
        **counts,
        "seconds": round(elapsed, 1),
        "notes_per_s": round(len(todo) / elapsed, 3) if todo and elapsed else None,
        "tokens_per_s": round(tokens / elapsed, 1) if todo and elapsed else None,
    }
    logger.info("done: %s", summary)
    return summary


def _backend_kwargs(config: GenerateConfig, adapter: str | None) -> dict[str, Any]:
    if config.backend == "transformers":
        return {
            "model": config.model,
            "adapter": adapter,
            "dtype": config.dtype,
            "device": config.device,
            "prompt_format": config.prompt_format,
        }
    return {"model": config.model}


def _record(
    task: Task,
    prompt: Any,
    gen: Any,
    template: str,
    config: GenerateConfig,
    adapter: str | None,
    backend: Any,
    params: GenerationParams,
    note_filter: Any,
    attempt: int = 1,
) -> dict[str, Any]:
    coverage = symptom_coverage(task.symptoms, gen.text)
    kept, reasons = bool(gen.text.strip()), [] if gen.text.strip() else ["empty"]
    if note_filter is not None and kept:
        verdict = note_filter.check(gen.text, task.symptoms, task.example_note)
        kept, reasons = verdict.keep, list(verdict.reasons)
    return {
        "id": task.id,
        "icd10_code": task.icd10_code,
        "icd10_name": task.icd10_name,
        "category": task.category,
        "symptoms": task.symptoms,
        "sex": task.sex,
        "age": task.age,
        "example_id": task.example_id,
        "prompt": prompt if isinstance(prompt, str) else json.dumps(prompt, ensure_ascii=False),
        "note": gen.text,
        "template": template,
        "model": config.model,
        "adapter": adapter and (Path(adapter).name if Path(adapter).exists() else adapter),
        "backend": backend.name,
        "generation_params": json.dumps(params.to_dict(), ensure_ascii=False),
        "seed": config.seed,
        "prompt_tokens": gen.prompt_tokens,
        "completion_tokens": gen.completion_tokens,
        "finish_reason": gen.finish_reason,
        "symptom_coverage": round(coverage, 4),
        "kept": kept,
        "filter_reasons": reasons,
        "attempts": attempt,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def _card_body(config: GenerateConfig, resolved: dict[str, Any], tasks: list[Task], out: Path) -> str:
    import yaml

    codes = sorted({t.category for t in tasks})
    return f"""# medsyn synthetic Russian clinical notes

Synthetic outpatient notes (complaints and history) in Russian, one per ICD-10 code task, written by
[medsyn](https://github.com/medsyn/medsyn) following the MedSyn method (arXiv 2408.02056): each task draws a
category with weight `J3(N_symp) * J3(N_exmp)`, a code of it, 2-5 of its symptoms from the medical knowledge
graph, a real note of the same category as a style example, and a patient's sex and age.

- Tasks: {len(tasks)} over {len(codes)} categories; model `{config.model}`, adapter `{resolved["adapter"]}`,
  prompt template `{resolved["template"]}`.
- `default` config: notes that passed the filter (requested symptoms used, no near-copy of a real note).
  `rejected` config (if present): the others, with `filter_reasons`.

```python
from datasets import load_dataset
ds = load_dataset("{out}")  # or the Hub id this folder was pushed to
```

**These notes are synthetic and not medical advice.** They can contain clinical errors. Use them to train and
test models, not to inform care.

## Sources and licences
- Style examples and symptoms come from RuMedTop3 (RuMedBench, Apache-2.0), ICD-10 names from the МКБ-10
  reference directory of the Russian Ministry of Health (v2.27, published under MIT), seed symptom names from
  RuMedSymptomRec (RuMedBench, Apache-2.0).

## Configuration
`medsyn_config.yaml` in this folder holds the job's fields; `medsyn generate --config medsyn_config.yaml`
re-runs it (and resumes it, into the same `out`). Resolved values:

```yaml
{yaml.safe_dump(resolved, allow_unicode=True, sort_keys=False).strip()}
```
"""
