"""Prompt following before and after fine-tuning: do generated notes mention the complaints they were asked for?

Dev tasks come from RuMedTop3 dev: the symptoms the graph's extractor finds in a real dev note, and sampled sex and
age. Each task is rendered as the instruction prompt (``### Задание … ### Вход … ### Ответ:``), notes are generated
by the base model and by the base model with the adapter, under the same seed and sampling settings, and scored
with :func:`medsyn.text.symptom_coverage`: the share of the requested symptoms the note states, lemma-matched within
one clause, a denied symptom («кашля нет») not counted.

Run it with ``python scripts/evaluate_adapter.py --adapter runs/gemma-3-270m-ru-notes --tasks 96``.
"""

from __future__ import annotations

import json
import logging
import random
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medsyn.config import dump_config, parse_args
from medsyn.errors import ConfigError

__all__ = ["EvalArgs", "build_dev_tasks", "generate_for_tasks", "prompt_following", "compare", "rescore", "main"]

# How prompt following is scored: symptom keys within one clause, denied symptoms not counted (medsyn.text).
SCORING = {"scope": "clause", "negation": True}

logger = logging.getLogger(__name__)


@dataclass
class EvalArgs:
    """Options of the before/after prompt-following evaluation."""

    adapter: str = field(default="runs/gemma-3-270m-ru-notes", metadata={"help": "the adapter folder to evaluate"})
    model: str = field(default="gemma-3-270m", metadata={"help": "the base model (alias, Hub id or folder)"})
    tasks: int = field(default=96, metadata={"help": "number of dev tasks"})
    max_symptoms: int = field(default=6, metadata={"help": "ask for at most this many of a note's symptoms"})
    seed: int = field(default=0, metadata={"help": "seed of the task demographics and of sampling"})
    batch_size: int = field(default=16, metadata={"help": "prompts per generation batch (left padded)"})
    max_new_tokens: int = field(default=128, metadata={"help": "the most tokens per note"})
    temperature: float = field(default=0.7, metadata={"help": "sampling temperature (0: greedy)"})
    top_p: float = field(default=0.95, metadata={"help": "nucleus sampling mass"})
    repetition_penalty: float = field(default=1.15, metadata={"help": "repetition penalty"})
    dtype: str = field(default="auto", metadata={"help": "auto, bfloat16, float16 or float32"})
    out: str | None = field(default=None, metadata={"help": "where to write eval.json (default: <adapter>/eval.json)"})
    samples: int = field(default=3, metadata={"help": "before/after note pairs quoted in eval.json and the card"})
    update_card: bool = field(default=True, metadata={"help": "re-render <adapter>/README.md with the results"})
    only_before: bool = field(default=False, metadata={"help": "generate with the base model only (and stop)"})
    reuse_before: str | None = field(
        default=None,
        metadata={"help": "an eval.json whose base-model notes are reused (same tasks and settings required)"},
    )
    rescore: bool = field(
        default=False,
        metadata={
            "help": "score the notes already in the eval.json (--out, default <adapter>/eval.json) again with this "
            "medsyn's matcher instead of generating: the same tasks and notes, no model needed"
        },
    )

    def __post_init__(self) -> None:
        if self.tasks < 1 or self.batch_size < 1:
            raise ConfigError(f"tasks and batch_size must be at least 1, got {self.tasks} and {self.batch_size}")


def build_dev_tasks(
    n: int, seed: int = 0, extractor: Any = None, max_symptoms: int = 6, split: str = "dev"
) -> list[dict[str, Any]]:
    """Instruction tasks from real notes: their extracted symptoms plus sampled demographics.

    Args:
        n: number of tasks (fewer if the split has fewer notes with symptoms).
        seed: seed of the note order and the demographics.
        extractor: an object with ``extract(text) -> list[str]``; the default graph's extractor when ``None``.
        max_symptoms: keep at most this many symptoms per task (the note's first ones).
        split: the RuMedTop3 split.

    Returns:
        Dicts with ``id``, ``code``, ``symptoms``, ``sex``, ``age`` and the real note as ``reference``.
    """
    from medsyn.data import load_rumedtop3
    from medsyn.sampling import sample_demographics

    if extractor is None:
        from medsyn.kg import load_graph

        extractor = load_graph().extractor()
    rng = random.Random(seed)
    notes = load_rumedtop3(split)
    rng.shuffle(notes)
    tasks = []
    for note in notes:
        symptoms = extractor.extract(note["text"])[:max_symptoms]
        if not symptoms:
            continue
        sex, age = sample_demographics(rng, note["code"])
        tasks.append(
            {
                "id": note["id"],
                "code": note["code"],
                "symptoms": symptoms,
                "sex": sex,
                "age": age,
                "reference": note["text"],
            }
        )
        if len(tasks) == n:
            break
    return tasks


def task_prompt(task: dict[str, Any]) -> str:
    """The instruction prompt of a task, ending at ``### Ответ:``."""
    from medsyn.prompts import INSTRUCTION_WRITE, format_patient_input, render_instruction

    return render_instruction(INSTRUCTION_WRITE, format_patient_input(task["sex"], task["age"], task["symptoms"]))


def generate_for_tasks(
    model: str, adapter: str | None, tasks: Sequence[dict[str, Any]], args: EvalArgs
) -> tuple[list[str], float]:
    """Generate one note per task with the transformers backend (text prompts, left padding, a fixed seed).

    Returns:
        The notes and the generation time in seconds.
    """
    from tqdm.auto import tqdm

    from medsyn.backends.base import GenerationParams
    from medsyn.backends.transformers import TransformersBackend

    backend = TransformersBackend(model, adapter=adapter, dtype=args.dtype, device="cpu", prompt_format="text")
    backend.load()
    params = GenerationParams(
        max_new_tokens=args.max_new_tokens,
        temperature=args.temperature,
        top_p=args.top_p,
        repetition_penalty=args.repetition_penalty,
    )
    prompts = [task_prompt(t) for t in tasks]
    notes: list[str] = []
    start = time.perf_counter()
    for i in tqdm(range(0, len(prompts), args.batch_size), desc="adapter" if adapter else "base", unit="batch"):
        batch = prompts[i : i + args.batch_size]
        notes += [g.text for g in backend.generate(batch, params, seed=args.seed + i)]
    return notes, time.perf_counter() - start


def prompt_following(tasks: Sequence[dict[str, Any]], notes: Sequence[str]) -> dict[str, Any]:
    """Mean symptom coverage of ``notes`` against their tasks, with the share of empty notes and mean length."""
    from medsyn.text import symptom_coverage

    scores = [symptom_coverage(list(t["symptoms"]), n) for t, n in zip(tasks, notes)]
    return {
        "coverage": statistics.fmean(scores) if scores else 0.0,
        "full_coverage_share": sum(s == 1.0 for s in scores) / max(len(scores), 1),
        "empty_share": sum(not n.strip() for n in notes) / max(len(notes), 1),
        "mean_chars": statistics.fmean(len(n) for n in notes) if notes else 0.0,
        "per_task": scores,
    }


def compare(args: EvalArgs) -> dict[str, Any]:
    """Generate for the same dev tasks without and with the adapter and score both.

    Returns:
        ``{"tasks", "settings", "before", "after", "samples", "notes"}``.
    """
    tasks = build_dev_tasks(args.tasks, args.seed, max_symptoms=args.max_symptoms)
    logger.info("%d dev tasks, e.g. %s", len(tasks), task_prompt(tasks[0]))
    if args.reuse_before:
        before_notes, before_s = _reuse_before(args, tasks)
    else:
        before_notes, before_s = generate_for_tasks(args.model, None, tasks, args)
    if args.only_before:
        after_notes, after_s = [""] * len(tasks), 0.0
    else:
        after_notes, after_s = generate_for_tasks(args.model, args.adapter, tasks, args)
    before, after = prompt_following(tasks, before_notes), prompt_following(tasks, after_notes)
    before["generation_seconds"], after["generation_seconds"] = round(before_s, 1), round(after_s, 1)
    logger.info("symptom coverage: base %.3f, with adapter %.3f", before["coverage"], after["coverage"])
    samples = [
        {"input": task_prompt(t).split("### Вход:")[1].split("\n")[0].strip(), "before": b, "after": a}
        for t, b, a in list(zip(tasks, before_notes, after_notes))[: args.samples]
    ]
    settings = (
        f"max_new_tokens={args.max_new_tokens}, temperature={args.temperature}, top_p={args.top_p}, "
        f"repetition_penalty={args.repetition_penalty}, seed={args.seed}"
    )
    return {
        "tasks": len(tasks),
        "settings": settings,
        "scoring": SCORING,
        "config": dump_config(args),
        "before": before,
        "after": after,
        "samples": samples,
        "notes": [
            {"id": t["id"], "symptoms": t["symptoms"], "sex": t["sex"], "age": t["age"], "before": b, "after": a}
            for t, b, a in zip(tasks, before_notes, after_notes)
        ],
    }


def rescore(evaluation: dict[str, Any]) -> dict[str, Any]:
    """An evaluation whose notes are scored again with this medsyn's matcher; the scores it was made with are kept.

    Args:
        evaluation: the content of an ``eval.json`` written by :func:`compare`.

    Returns:
        The same evaluation with new ``before``/``after`` scores, ``scoring``, and ``previous_scores``: the scores
        of the run that generated the notes (kept through later re-scorings).
    """
    try:
        notes = evaluation["notes"]
        tasks = [{"symptoms": n["symptoms"]} for n in notes]
        out = dict(evaluation)
        for side in ("before", "after"):
            seconds = evaluation[side].get("generation_seconds")
            out[side] = prompt_following(tasks, [n[side] for n in notes])
            if seconds is not None:
                out[side]["generation_seconds"] = seconds
    except (KeyError, TypeError) as err:
        raise ConfigError(f"the evaluation has no notes to score again ({err!r}); run it without --rescore") from err
    previous = {
        side: {k: evaluation[side][k] for k in ("coverage", "full_coverage_share")} for side in ("before", "after")
    }
    scoring = evaluation.get("scoring", {"scope": "note", "negation": False})
    out["previous_scores"] = evaluation.get("previous_scores") or {"scoring": scoring, **previous}
    out["scoring"] = SCORING
    return out


def _reuse_before(args: EvalArgs, tasks: Sequence[dict[str, Any]]) -> tuple[list[str], float]:
    """Base-model notes from an earlier run, after checking that its tasks and sampling settings are these."""
    previous = json.loads(Path(args.reuse_before).read_text(encoding="utf-8"))
    keys = ("model", "tasks", "max_symptoms", "seed", "max_new_tokens", "temperature", "top_p", "repetition_penalty")
    differs = [k for k in keys if previous["config"].get(k) != getattr(args, k)]
    ids = [n["id"] for n in previous["notes"]]
    if differs or ids != [t["id"] for t in tasks]:
        raise ConfigError(f"{args.reuse_before} was made with other tasks or settings ({differs or 'task ids'})")
    return [n["before"] for n in previous["notes"]], previous["before"].get("generation_seconds", 0.0)


def update_card_with_evaluation(adapter: str | Path, evaluation: dict[str, Any]) -> Path:
    """Re-render ``<adapter>/README.md`` from its saved recipe and metrics, adding the prompt-following results."""
    import yaml

    from medsyn.finetune.card import describe_base_model, write_model_card

    adapter = Path(adapter)
    config = yaml.safe_load((adapter / "finetune.yaml").read_text(encoding="utf-8"))
    metrics = json.loads((adapter / "metrics.json").read_text(encoding="utf-8"))
    command = metrics.get("command") or "accelerate launch scripts/finetune.py --config " + "finetune.yaml"
    return write_model_card(
        adapter,
        base=describe_base_model(config["model_name_or_path"]),
        config=config,
        metrics=metrics,
        command=command,
        dataset=config.get("dataset"),
        evaluation=evaluation,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Measure prompt following on dev before and after an adapter; write eval.json (and update the card)."""
    (args,) = parse_args([EvalArgs], argv, description=main.__doc__)
    logger.info("seed %d; config %s", args.seed, json.dumps(dump_config(args), ensure_ascii=False))
    out = Path(args.out) if args.out else Path(args.adapter) / "eval.json"
    if args.rescore:
        if not out.is_file():
            raise ConfigError(f"--rescore needs an eval.json to score again; {out} is not a file (give --out)")
        result = rescore(json.loads(out.read_text(encoding="utf-8")))
        first = result["previous_scores"]
        for side in ("before", "after"):
            old, new = first[side]["coverage"], result[side]["coverage"]
            logger.info("%s: symptom coverage %.3f (%s) → %.3f (%s)", side, old, first["scoring"], new, SCORING)
    else:
        result = compare(args)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False), encoding="utf-8")
    logger.info("wrote %s", out)
    if args.update_card and not args.only_before and (Path(args.adapter) / "metrics.json").exists():
        update_card_with_evaluation(args.adapter, result)
    return 0
