"""``medsyn eval classify`` and ``medsyn eval quality``: argument dataclasses and the two entry points.

    medsyn eval classify                                    # the linear baseline, train → dev
    medsyn eval classify --config recipes/eval/upsampling-gpt4.yaml
    medsyn eval quality outputs/ru-notes [--real rumedtop3:train]
    medsyn eval consistency outputs/ru-notes --top_k 10 --out outputs/ru-notes-consistent

Each writes a run folder (``runs/eval/<name>-<timestamp>/`` by default) with ``metrics.json``, ``report.md``,
``config.yaml`` and PNG plots, and prints the main table.
"""

from __future__ import annotations

import logging
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from medsyn.config import dump_config, parse_args, save_config
from medsyn.errors import ConfigError, MedsynError
from medsyn.paths import staged_dir

__all__ = [
    "ClassifyArgs",
    "QualityArgs",
    "ConsistencyArgs",
    "classify_main",
    "quality_main",
    "consistency_main",
    "load_source",
]

logger = logging.getLogger(__name__)

# "Fill rare codes" target of a default run with synthetic notes, as in the MedSyn reproduction recipe.
DEFAULT_FILL_RARE_TO = 30


def load_source(source: str) -> list[dict]:
    """Notes from a notes source (:mod:`medsyn.corpus`: ``rumedtop3:train|dev``, ``medsyn-reference:gpt4``, a
    ``.jsonl``/``.csv``/``.tsv``/``.parquet`` file or folder of them, a Hub dataset id) or from a dataset folder that
    medsyn wrote (generated, in progress or released). Codes are cut to their category, the level the evaluations
    score at.
    """
    from medsyn.corpus import load_corpus
    from medsyn.job import JOB_FILE, load_notes

    path = Path(source)
    if path.is_dir() and any((path / name).exists() for name in (JOB_FILE, "shards", "README.md")):
        return load_notes(source)
    return [{**n, "code": n["code"][:3]} for n in load_corpus(source).notes]


@dataclass
class ClassifyArgs:
    """Options of ``medsyn eval classify``."""

    # Data
    train: str = field(default="rumedtop3:train", metadata={"help": "real training notes: rumedtop3:SPLIT or a path"})
    eval: str = field(default="rumedtop3:dev", metadata={"help": "notes to score: rumedtop3:SPLIT or a path"})
    synthetic: list[str] = field(
        default_factory=list,
        metadata={
            "help": "synthetic notes: a `medsyn generate` or release folder, a RuMedTop3-format JSONL or "
            "medsyn-reference:gpt4; several as NAME=SOURCE compare them in one run"
        },
    )
    # Experiment
    settings: list[str] = field(
        default_factory=list,
        metadata={
            "help": "training sets as REAL:SYN fractions ('0.5:1') or REAL:fill=N; 'paper' = the MedSyn grid. Default: "
            "with --synthetic, real-only, real + all synthetic and fill rare to 30; without, real 0.5/0.75/1"
        },
    )
    fill_rare_to: int | None = field(
        default=None,
        metadata={"help": "also run 'fill rare codes': synthetic notes for codes below N real, up to N (default 30)"},
    )
    seeds: list[int] = field(default_factory=lambda: [0], metadata={"help": "seeds (subsampling and model)"})
    hard_quantile: float = field(default=0.25, metadata={"help": "share of codes counted as hard (both definitions)"})
    cache_dir: str | None = field(
        default=None,
        metadata={"help": "linear: keep each fit's dev scores here, so a later run reuses the fits it shares"},
    )
    cv_folds: int = field(
        default=5, metadata={"help": "folds of the cross-validation on train that picks the low-recall codes"}
    )
    eval_half: str = field(
        default="all",
        metadata={
            "help": "score on all of --eval, or on one of its two fixed halves (split per code by a hash of the id): "
            "'select' to choose recipes and thresholds on, 'report' to report the chosen one on, untouched"
        },
    )
    # Model
    model: str = field(default="linear", metadata={"help": "'linear' (tf-idf baseline) or an HF encoder id/path"})
    C: float = field(default=10.0, metadata={"help": "linear: inverse regularisation (RuMedBench: 10)"})
    max_iter: int = field(default=40, metadata={"help": "linear: L-BFGS iterations"})
    epochs: int = field(default=5, metadata={"help": "transformer: training epochs"})
    batch_size: int = field(default=16, metadata={"help": "transformer: batch size"})
    learning_rate: float = field(default=3e-5, metadata={"help": "transformer: learning rate"})
    max_length: int = field(default=256, metadata={"help": "transformer: tokens per note at most"})
    # Output
    out_dir: str = field(default="runs/eval", metadata={"help": "parent folder of the run folder"})
    name: str = field(default="classify", metadata={"help": "run name (the folder is NAME-TIMESTAMP)"})

    def __post_init__(self) -> None:
        if not self.seeds:
            raise ConfigError("seeds is empty; give at least one, e.g. --seeds 0 1 2")
        if not 0 < self.hard_quantile < 1:
            raise ConfigError(f"hard_quantile must be in (0, 1), got {self.hard_quantile}")
        if self.cv_folds < 2:
            raise ConfigError(f"cv_folds must be >= 2, got {self.cv_folds}")
        if self.eval_half not in ("all", "select", "report"):
            raise ConfigError(f"eval_half must be all, select or report, got {self.eval_half!r}")

    def resolved_settings(self):
        """The settings to run; with none given, a comparison that uses what was given (see ``--settings``)."""
        from medsyn.eval.upsample import PAPER_GRID, Setting, parse_setting

        base: list[Setting] = []
        for s in self.settings:
            base += [Setting(r, f) for r, f in PAPER_GRID] if s == "paper" else [parse_setting(s)]
        fill = self.fill_rare_to
        if not self.settings and self.synthetic:
            base += [Setting(1.0, 0.0), Setting(1.0, 1.0)]
            fill = fill or DEFAULT_FILL_RARE_TO
        elif not self.settings:
            base += [Setting(0.5, 0.0), Setting(0.75, 0.0), Setting(1.0, 0.0)]
        if fill:
            base.append(Setting(1.0, 0.0, fill))
        names = list(self.sources()) if len(self.synthetic) > 1 else [None]
        out = [s for s in base if not s.uses_synthetic]  # real-only settings once, then each source's
        out += [replace(s, source=name) for name in names for s in base if s.uses_synthetic]
        return list(dict.fromkeys(out))

    def sources(self) -> dict[str, str]:
        """``{name: source}`` of the synthetic notes; ``NAME=SOURCE`` names one, else the source is its own name."""
        out: dict[str, str] = {}
        for item in self.synthetic:
            name, sep, source = item.partition("=")
            name, source = (name, source) if sep and not Path(item).exists() else (item, item)
            if name in out:
                raise ConfigError(f"synthetic source name {name!r} is given twice; name each NAME=SOURCE once")
            out[name] = source
        return out


def classify_main(argv: list[str] | None = None) -> int:
    """Train and score code classifiers per setting and seed; write the run folder and print the main table."""
    (args,) = parse_args(
        [ClassifyArgs],
        argv,
        description="ICD-10 code prediction with and without synthetic notes",
        prog="medsyn eval classify",
    )
    from medsyn.eval import report
    from medsyn.eval.classify import cv_low_recall_codes, make_classifier, run_experiment, summarise

    logger.info("config: %s", dump_config(args))
    settings = args.resolved_settings()
    train, dev = load_source(args.train), load_source(args.eval)
    if args.eval_half != "all":
        from medsyn.eval.classify import eval_halves

        dev = eval_halves(dev)[args.eval_half]
        logger.info("scoring on the %s half of %s: %d notes", args.eval_half, args.eval, len(dev))
    pools = {name: load_source(source) for name, source in args.sources().items()}
    synthetic = pools if len(pools) > 1 else next(iter(pools.values()), [])
    if any(s.uses_synthetic for s in settings) and not synthetic:
        raise ConfigError(f"settings {[s.name for s in settings if s.uses_synthetic]} need --synthetic PATH")

    def new_classifier(seed: int):
        return make_classifier(
            args.model,
            linear_options={"C": args.C, "max_iter": args.max_iter, "seed": seed},
            transformer_options={
                "epochs": args.epochs,
                "batch_size": args.batch_size,
                "learning_rate": args.learning_rate,
                "max_length": args.max_length,
                "seed": seed,
            },
        )

    start = time.perf_counter()
    linear = args.model == "linear"
    results = run_experiment(
        train, dev, settings, args.seeds, new_classifier, synthetic, deterministic=linear, cache_dir=args.cache_dir
    )
    low_recall = cv_low_recall_codes(
        train, new_classifier, args.hard_quantile, args.cv_folds, args.seeds[0], args.cache_dir if linear else None
    )
    summary = summarise(results, train, dev, quantile=args.hard_quantile, low_recall=low_recall)
    summary["seconds_total"] = time.perf_counter() - start
    summary["eval_half"] = args.eval_half

    run_dir = report.run_path(args.out_dir, args.name)
    with staged_dir(run_dir) as tmp:  # whole or not at all: Ctrl-C or a full disk leaves no half-written folder
        save_config(tmp / "config.yaml", args)
        report.write_json(tmp / "metrics.json", summary)
        _save_scores(tmp / "scores.npz", results)
        plots = [report.plot_upsampling(summary, tmp / "upsampling.png").name]
        plots.append(report.plot_code_gain(summary, tmp / "per_code_gain.png").name)
        (tmp / "report.md").write_text(report.classify_markdown(summary, dump_config(args), plots), encoding="utf-8")
    warnings = "".join(f"\nwarning: {w}" for w in summary["warnings"])
    sys.stdout.write(report.classify_table(summary, "overall") + f"\n{warnings}\n\nrun folder: {run_dir}\n")
    logger.info("run folder %s (%.1fs)", run_dir, summary["seconds_total"])
    return 0


def _save_scores(path: Path, results) -> None:
    """Every run's dev scores, so that further statistics need no retraining."""
    import numpy as np

    arrays = {f"{r.setting.name} | seed {r.seed}": r.scores.astype(np.float32) for r in results}
    np.savez_compressed(path, labels=np.array(results[0].labels), **arrays)


@dataclass
class QualityArgs:
    """Options of ``medsyn eval quality``."""

    source: str = field(default="", metadata={"help": "synthetic notes: a `medsyn generate` folder or a JSONL"})
    real: str = field(default="rumedtop3:train", metadata={"help": "real notes to compare with and to index"})
    ngram: int = field(default=3, metadata={"help": "word n-gram size of the copy index"})
    max_copy_score: float = field(
        default=0.7, metadata={"help": "near-copy when this share of a note's n-grams is in one real note"}
    )
    max_lcs_words: int = field(
        default=15, metadata={"help": "near-copy when this many words in a row match a real note"}
    )
    min_symptom_coverage: float = field(default=0.5, metadata={"help": "filter: least share of requested symptoms"})
    self_bleu_sample: int = field(default=1000, metadata={"help": "notes scored for self-BLEU (0: all)"})
    seed: int = field(default=0, metadata={"help": "seed for the self-BLEU sample"})
    out_dir: str = field(default="runs/eval", metadata={"help": "parent folder of the run folder"})
    name: str = field(default="quality", metadata={"help": "run name (the folder is NAME-TIMESTAMP)"})
    reader: bool = field(
        default=True,
        metadata={
            "help": "also measure realism (real-vs-set AUC), label fidelity and the contradiction rate, beside real "
            "dev notes and the paper's GPT-4 notes when --real is RuMedTop3"
        },
    )


def quality_main(argv: list[str] | None = None) -> int:
    """Score synthetic notes for prompt following, realism, diversity and copying; write the run folder."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and not argv[0].startswith("-"):  # the positional DIR of `medsyn eval quality DIR`
        argv = ["--source", argv[0], *argv[1:]]
    (args,) = parse_args(
        [QualityArgs], argv, description="Quality and privacy of synthetic notes", prog="medsyn eval quality"
    )
    if not args.source:
        raise ConfigError("give the synthetic notes: medsyn eval quality DIR_OR_JSONL")
    from medsyn.eval import report
    from medsyn.eval.quality import evaluate_quality, load_synthetic

    logger.info("config: %s", dump_config(args))
    real = load_source(args.real)
    if args.source.startswith("medsyn-reference:"):  # packaged reference notes: no requested symptoms known
        synthetic = [{**n, "symptoms": None, "example": None} for n in load_source(args.source)]
    else:
        synthetic = load_synthetic(args.source, real_notes=real)
    if not synthetic:
        raise MedsynError(f"{args.source} holds no notes")
    dev = load_source("rumedtop3:dev") if args.real == "rumedtop3:train" else None
    result, per_note = evaluate_quality(
        synthetic,
        real,
        ngram=args.ngram,
        max_copy_score=args.max_copy_score,
        max_lcs_words=args.max_lcs_words,
        self_bleu_sample=args.self_bleu_sample,
        seed=args.seed,
        # Real notes outside the index show how much real notes overlap among themselves.
        holdout=dev,
    )
    reader_md = ""
    if args.reader:
        from medsyn.eval.reader import reader_measures, reader_sets, reader_table

        result["reader"] = reader_measures(reader_sets(synthetic, dev), real, seed=args.seed)
        reader_md = "## What a reader sees\n\n" + reader_table(result["reader"]) + "\n\n"
    run_dir = report.run_path(args.out_dir, args.name)
    with staged_dir(run_dir) as tmp:
        save_config(tmp / "config.yaml", args)
        report.write_json(tmp / "metrics.json", result)
        report.write_json(tmp / "per_note.json", per_note)
        plots = [report.plot_quality(per_note, [len(n["text"]) for n in real], tmp / "quality.png").name]
        if args.reader:
            from medsyn.eval.reader import plot_reader

            plots.append(plot_reader(result["reader"], tmp / "reader.png").name)
        md = report.quality_markdown(result, dump_config(args), plots)
        md = md.replace("## Plots", reader_md + "## Plots", 1) if reader_md else md
        (tmp / "report.md").write_text(md, encoding="utf-8")
    sys.stdout.write(md.split("## Plots")[0] + "run folder: " + str(run_dir) + "\n")
    return 0


@dataclass
class ConsistencyArgs:
    """Options of ``medsyn eval consistency``."""

    source: str = field(
        default="", metadata={"help": "a `medsyn generate` folder (finished, released or in progress)"}
    )
    out: str = field(default="", metadata={"help": "the new dataset folder with the verdicts (must not hold notes)"})
    top_k: int = field(default=10, metadata={"help": "keep a note when its code is in the classifier's top K"})
    real: str = field(default="rumedtop3:train", metadata={"help": "real notes the classifier is trained on"})

    def __post_init__(self) -> None:
        if self.top_k < 1:
            raise ConfigError(f"top_k must be >= 1, got {self.top_k}")


def consistency_main(argv: list[str] | None = None) -> int:
    """Filter a generated folder post hoc: keep notes whose code a real-notes classifier ranks in its top k."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and not argv[0].startswith("-"):  # the positional DIR of `medsyn eval consistency DIR`
        argv = ["--source", argv[0], *argv[1:]]
    (args,) = parse_args(
        [ConsistencyArgs], argv, description="Consistency filtering of synthetic notes", prog="medsyn eval consistency"
    )
    if not args.source or not args.out:
        raise ConfigError("give the notes and a new folder: medsyn eval consistency DIR --out NEW_DIR")
    if Path(args.out).resolve() == Path(args.source).resolve():
        raise ConfigError("--out must be a new folder; the source folder is left as it is")
    from collections import Counter

    from medsyn.eval import report
    from medsyn.eval.consistency import apply_check, drop_report, read_rows
    from medsyn.filters.consistency import ConsistencyCheck
    from medsyn.writer import ShardWriter

    logger.info("config: %s", dump_config(args))
    rows = read_rows(args.source)
    real = load_source(args.real)
    rows = apply_check(rows, ConsistencyCheck.from_real(real, args.top_k))
    result = drop_report(rows, args.top_k, Counter(n["code"] for n in real))
    out = Path(args.out)
    if out.is_dir() and any(out.iterdir()):
        raise ConfigError(f"{args.out} is not empty; give a new folder")
    with staged_dir(out) as tmp:  # whole or not at all
        writer = ShardWriter(tmp)
        writer.write(rows)
        counts = writer.finalize(card=report.consistency_card(args.source, result))
        _carry_job(Path(args.source), tmp, args.top_k)
        report.write_json(tmp / "consistency.json", result)
        plot = report.plot_consistency(result, tmp / "consistency.png")
        md = report.consistency_markdown(result, args.source, [plot.name])
        (tmp / "consistency.md").write_text(md, encoding="utf-8")
    sys.stdout.write(md.split("## Per code")[0] + f"kept {counts['kept']}, rejected {counts['rejected']}: {out}\n")
    return 0


def _carry_job(source: Path, out: Path, top_k: int) -> None:
    """Give the filtered folder its source's job settings, with the post hoc check in them, so it can be released."""
    import json

    from medsyn.job import JOB_FILE, fingerprint

    job_path = source / JOB_FILE
    if not job_path.exists():
        return

    spec = json.loads(job_path.read_text(encoding="utf-8"))["job"]
    spec = {**spec, "consistency_top_k": top_k, "consistency_post_hoc": True}
    payload = {"fingerprint": fingerprint(spec), "job": spec}
    (out / JOB_FILE).write_text(json.dumps(payload, ensure_ascii=False, indent=2), encoding="utf-8")
    if (source / "medsyn_config.yaml").exists():  # it makes the unfiltered notes; the card says to filter after
        (out / "medsyn_config.yaml").write_text((source / "medsyn_config.yaml").read_text(encoding="utf-8"), "utf-8")
