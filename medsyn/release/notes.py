"""The release of generated notes as a Hub dataset: staging, the privacy gate, the card, validation.

``medsyn release dataset DIR --repo_id medsyn/ru-notes`` turns a folder that ``medsyn generate`` wrote (or a release
folder built before) into the exact folder that is uploaded:

- ``README.md``: the card (``dataset_cards/ru-notes.md``), every number computed from the rows;
- ``data/``, ``rejected/``, ``failed/``: one parquet file per config (``default`` = kept notes), small row groups;
- ``medsyn_config.yaml`` and ``medsyn_job.json``: the job's settings and fingerprint (graph fingerprint included);
- ``quality/``: the ``medsyn eval quality`` report of the kept notes and its plot; ``plots/``: codes and lengths.

Real text never ships: the ``prompt`` column (which holds the real style example) is dropped, ``template`` and
``example_id`` say how each note was prompted, and every note is checked against all real RuMedTop3 notes (train and
dev) with the project's copy index before anything is written (:func:`privacy_gate`).
"""

from __future__ import annotations

import json
import logging
import re
import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medsyn.corpus import DEFAULT_NOTES
from medsyn.errors import ReleaseError
from medsyn.job import JOB_FILE, SPLITS, fingerprint, read_shards, split_records
from medsyn.models import public_name
from medsyn.writer import FAILED_FEATURES, FEATURES, ROW_GROUP, configs_meta, feature

logger = logging.getLogger(__name__)

__all__ = [
    "DatasetReleaseArgs",
    "read_notes_source",
    "privacy_gate",
    "identity_gate",
    "real_notes",
    "build_dataset_release",
    "validate_dataset_release",
]

DROPPED = ("prompt", "endpoint")
"""Columns that never ship: the prompt holds a real note; an endpoint URL names a machine."""
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")


@dataclass
class DatasetReleaseArgs:
    """``medsyn release dataset DIR``: build, check and push a generated folder as a Hub dataset."""

    source: str = field(default="", metadata={"help": "a folder medsyn generate wrote, or a built release folder"})
    repo_id: str = field(default="medsyn/ru-notes", metadata={"help": "the Hub dataset repository"})
    out: str | None = field(default=None, metadata={"help": "where to build the release folder (default: a temp dir)"})
    dry_run: bool = field(default=False, metadata={"help": "build and validate only; upload nothing"})
    public: bool = field(default=False, metadata={"help": "create the repository as public (default: private)"})
    drop_near_copies: bool = field(
        default=False,
        metadata={"help": "drop notes that nearly copy a real note (recorded in the card) instead of stopping"},
    )
    max_copy_score: float = field(
        default=0.7,
        metadata={"help": "a note sharing this share of its word 3-grams with one real note is a near copy"},
    )
    max_lcs_words: int = field(default=15, metadata={"help": "or this many consecutive words with one real note"})
    drop_identifiers: bool = field(
        default=False,
        metadata={
            "help": "drop notes that hold a phone number, a document number, a date of birth or a name from the real "
            "notes (recorded in the card) instead of stopping"
        },
    )
    notes: str = field(
        default=DEFAULT_NOTES,
        metadata={"help": "the real notes the gate checks against (a notes source; rumedtop3:train checks train+dev)"},
    )
    text_column: str | None = field(default=None, metadata={"help": "--notes' text column, when not a usual name"})
    code_column: str | None = field(default=None, metadata={"help": "--notes' ICD-10 column, when not a usual name"})
    notes_name: str | None = field(
        default=None, metadata={"help": "the name the card gives --notes (never a path); the job's name when unset"}
    )
    classify_run: str | None = field(
        default=None, metadata={"help": "a medsyn eval classify run folder whose results go into the card"}
    )
    recommend: str | None = field(
        default=None,
        metadata={
            "help": "the way of use the card recommends, a setting of --classify_run chosen on the other half of "
            "dev: 1:1 (all notes with all real ones) or 1:fill=N (only codes with fewer than N real notes, up to N)"
        },
    )
    variants_compared: int | None = field(
        default=None, metadata={"help": "how many recipes and ways of use were compared to choose --recommend"}
    )
    title: str = field(default="medsyn synthetic Russian clinical notes", metadata={"help": "the card's title"})

    def __post_init__(self) -> None:
        if self.recommend is not None:
            from medsyn.eval.upsample import parse_setting

            setting = parse_setting(self.recommend)
            if not self.classify_run:
                raise ReleaseError("--recommend names a setting of --classify_run; pass the run that measured it")
            if setting.real != 1 or not setting.uses_synthetic:
                raise ReleaseError(
                    f"--recommend {self.recommend}: recommend all real notes plus these (1:1, 1:fill=N)"
                )


# -- reading ---------------------------------------------------------------------------------------------------------
def read_notes_source(source: str | Path) -> tuple[dict[str, list[dict[str, Any]]], dict[str, Any], str | None]:
    """The rows per config, the job spec and the saved config of a generated or release folder."""
    source = Path(source)
    if not source.is_dir():
        raise ReleaseError(f"{source} is not a folder; pass a folder that medsyn generate wrote (it has shards/)")
    job_path = source / JOB_FILE
    if not job_path.exists():
        raise ReleaseError(f"{source} has no {JOB_FILE}: it was not written by medsyn generate or medsyn release")
    spec = json.loads(job_path.read_text(encoding="utf-8"))["job"]
    config = (
        (source / "medsyn_config.yaml").read_text(encoding="utf-8")
        if (source / "medsyn_config.yaml").exists()
        else None
    )
    if (source / "shards").is_dir():
        groups = split_records(read_shards(source / "shards"))
    else:
        import pyarrow.parquet as pq

        groups = {name: [] for _, name in SPLITS}
        for folder, name in SPLITS:
            for file in sorted((source / folder).glob("*.parquet")):
                groups[name] += pq.read_table(file).to_pylist()
        if not any(groups.values()):
            raise ReleaseError(f"{source} holds neither shards/ nor parquet files under data/; nothing to release")
    return groups, spec, config


# -- the privacy gate --------------------------------------------------------------------------------------------------
def privacy_gate(
    rows: list[dict[str, Any]], real_texts: list[str], max_copy_score: float = 0.7, max_lcs_words: int = 15
) -> tuple[list[float], list[str]]:
    """Score every note against all real notes; returns (copy score per row, ids of near copies).

    A near copy shares ``max_copy_score`` of its word 3-grams with one real note, or ``max_lcs_words`` consecutive
    words, or holds most of one real note (containment ≥ 0.8).
    """
    from tqdm.auto import tqdm

    from medsyn.filters.note import DEFAULT_MAX_CONTAINMENT, CopyIndex

    index = CopyIndex(real_texts)
    scores, near = [], []
    for row in tqdm(rows, desc="privacy gate", unit="note", leave=False):
        match = index.query(row["note"])
        scores.append(round(match.copy_score, 4) if match else 0.0)
        if match and (
            match.copy_score >= max_copy_score
            or match.lcs_words >= max_lcs_words
            or match.containment >= DEFAULT_MAX_CONTAINMENT
        ):
            near.append(row["id"])
    return scores, near


def identity_gate(rows: list[dict[str, Any]], names: Any) -> dict[str, list[str]]:
    """The notes that hold what identifies a person: ``{row id: [what was found, masked]}``.

    Args:
        rows: the notes (``id``, ``note``).
        names: a :class:`~medsyn.filters.identity.PersonNames` of the real notes' people.
    """
    from medsyn.filters.identity import find_identifiers

    hits = {}
    for row in rows:
        found = find_identifiers(row["note"]) + names.find(row["note"])
        if found:
            hits[row["id"]] = [str(f) for f in found]
    return hits


def real_notes(args: DatasetReleaseArgs, spec: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """The real notes the gate checks against, and what the card says of them (``None`` for RuMedTop3).

    RuMedTop3 (the default) means both its splits. A folder generated from a user's notes needs those notes:
    releasing it with the default is refused, since the gate would not see them.
    """
    from medsyn.corpus import load_corpus

    job_notes = spec.get("notes")
    if args.notes == DEFAULT_NOTES:
        if job_notes:
            raise ReleaseError(
                f"{args.source} was generated from the notes {job_notes.get('name')!r}, not RuMedTop3; pass them "
                "with --notes FILE so that the privacy gate checks the release against them"
            )
        return [n for split in ("train", "dev") for n in load_corpus(f"rumedtop3:{split}", log=False).notes], None
    corpus = load_corpus(args.notes, args.text_column, args.code_column, name=args.notes_name)
    if job_notes and job_notes.get("fingerprint") != corpus.fingerprint:
        raise ReleaseError(
            f"--notes are not the notes {args.source} was generated from (fingerprint {corpus.fingerprint}, the job's "
            f"{job_notes.get('fingerprint')}): a note of theirs that these lack would pass the gate unchecked; pass "
            "the same notes (file, columns) the graph or --notes of the job was built from"
        )
    name = args.notes_name or (job_notes or {}).get("name") or corpus.card_name
    chars = sorted(len(n["text"]) for n in corpus.notes)
    described = {"name": name, "fingerprint": corpus.fingerprint, "chars_median": chars[len(chars) // 2]}
    return corpus.notes, described


# -- building --------------------------------------------------------------------------------------------------------
def _features(name: str) -> dict[str, Any]:
    base = FAILED_FEATURES if name == "failed" else FEATURES
    out = {k: v for k, v in base.items() if k not in DROPPED}
    if name != "failed":
        out["copy_score"] = "float32"
    return out


def _write_config(out: Path, folder: str, name: str, rows: list[dict[str, Any]]) -> tuple[str, int]:
    import datasets

    columns = _features(name)
    target = out / folder
    target.mkdir(parents=True, exist_ok=True)
    features = datasets.Features({k: feature(v) for k, v in columns.items()})
    table = {k: [r.get(k) for r in rows] for k in columns}
    path = target / "train-00000-of-00001.parquet"
    ds = datasets.Dataset.from_dict(table, features=features)
    ds.to_parquet(str(path), batch_size=ROW_GROUP)
    return f"{folder}/{path.name}", ds.data.nbytes


def _gate(
    args: DatasetReleaseArgs, spec: dict[str, Any], notes: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], dict[str, Any] | None, list[float], list[str], dict[str, list[str]]]:
    """Run the privacy gate over ``notes``: ``(real notes, their description, copy scores, near copies, notes that
    identify a person)``; raises unless the flags say to leave such notes out."""
    from medsyn.filters.identity import PersonNames

    real, described = real_notes(args, spec)
    real_name = f"«{described['name']}»" if described else "RuMedTop3"
    scores, near = privacy_gate(notes, [n["text"] for n in real], args.max_copy_score, args.max_lcs_words)
    if near and not args.drop_near_copies:
        raise ReleaseError(
            f"{len(near)} {'note nearly copies' if len(near) == 1 else 'notes nearly copy'} a real note of "
            f"{real_name}: {', '.join(near[:20])}{' …' if len(near) > 20 else ''}. "
            "Real text never ships: pass --drop_near_copies to leave them out (the card records it)"
        )
    identities = identity_gate(notes, PersonNames.from_texts(n["text"] for n in real))
    if identities and not args.drop_identifiers:
        shown = "; ".join(f"{i}: {', '.join(found)}" for i, found in list(identities.items())[:10])
        raise ReleaseError(
            f"{len(identities)} {'note holds' if len(identities) == 1 else 'notes hold'} what identifies a person: "
            f"{shown}{' …' if len(identities) > 10 else ''}. "
            "Pass --drop_identifiers to leave them out (the card records it)"
        )
    for what, ids in (
        ("nearly copy a real note (--drop_near_copies)", near),
        ("identify a person (--drop_identifiers)", identities),
    ):
        if ids:
            logger.warning("left out %d notes that %s: %s", len(ids), what, ", ".join(sorted(ids)[:20]))
    return real, described, scores, near, identities


def build_dataset_release(args: DatasetReleaseArgs, out: str | Path) -> dict[str, Any]:
    """Build the release folder ``out`` from ``args.source``; returns what the card and the log report.

    Raises:
        ReleaseError: near copies of real notes (unless ``drop_near_copies``), or a source that is not a dataset.
    """
    from medsyn.data import load_rumedtop3

    groups, spec, config = read_notes_source(args.source)
    out = Path(out)
    if out.resolve() == Path(args.source).resolve():
        raise ReleaseError(f"--out {out} is the source folder; build the release elsewhere")
    notes = groups["default"] + groups["rejected"]
    if not groups["default"]:
        raise ReleaseError(f"{args.source} holds no kept note; there is nothing to release")
    real, described, scores, near, identities = _gate(args, spec, notes)
    for row, score in zip(notes, scores):
        row["copy_score"] = score
    dropped = set(near) | set(identities)
    groups = {k: [r for r in v if r["id"] not in dropped] for k, v in groups.items()}
    if described:
        spec = {**spec, "notes": {**spec.get("notes", {}), **described}}
    # a model given as a local folder is named by the folder, never by a path on the machine that generated
    for rows in groups.values():
        for row in rows:
            row["model"] = public_name(row.get("model"))
    spec = {**spec, "model": public_name(spec.get("model"))}
    if config:
        import yaml

        saved = yaml.safe_load(config) or {}
        if isinstance(saved, dict) and public_name(saved.get("model")) != saved.get("model"):
            saved["model"] = public_name(saved["model"])
            config = yaml.safe_dump(saved, allow_unicode=True, sort_keys=False)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    written = {folder: _write_config(out, folder, name, groups[name]) for folder, name in SPLITS if groups[name]}
    files = {folder: path for folder, (path, _) in written.items()}
    sizes = {folder: size for folder, (_, size) in written.items()}
    (out / JOB_FILE).write_text(
        json.dumps({"job": spec, "fingerprint": fingerprint(spec)}, ensure_ascii=False, indent=2), encoding="utf-8"
    )
    if config:
        (out / "medsyn_config.yaml").write_text(config, encoding="utf-8")
    kept = groups["default"]
    if not kept:
        raise ReleaseError("every kept note was left out by the privacy gate; there is nothing to release")
    train = load_rumedtop3("train") if described is None else real
    quality = _quality(out, kept, train, holdout=described is None)
    plots = _plots(out, kept, train, f"«{described['name']}»" if described else "RuMedTop3 train")
    classify = _classify(args.classify_run)
    stats = {
        "counts": {name: len(rows) for name, rows in groups.items()},
        "near_copies_dropped": sorted(near),
        "identifiers_dropped": sorted(identities),
        "copy_score_max": max((r["copy_score"] for r in kept), default=0.0),
        "quality": quality,
        "classify": classify,
    }
    from medsyn.cards import notes_card
    from medsyn.eval.reader import reader_table

    counts = {"kept" if name == "default" else name: len(rows) for name, rows in groups.items()}
    meta = configs_meta(files, counts, features={name: _features(name) for _, name in SPLITS}, sizes=sizes)
    card = notes_card(
        spec,
        groups,
        meta,
        title=args.title,
        load_id=args.repo_id,
        reproduce=(
            "`medsyn generate --config medsyn_config.yaml --out ru-notes` with this folder's `medsyn_config.yaml` "
            "(the same seed gives the same tasks; a larger `--n` adds more)"
            + (
                f", then `medsyn eval consistency ru-notes --top_k {spec['consistency_top_k']} --out ru-notes-consistent`."
                if spec.get("consistency_post_hoc")
                else "."
            )
        ),
        job_fingerprint=fingerprint(spec),
        plots=plots,
        quality=quality,
        reader=reader_table(quality["reader"]) if quality.get("reader") else None,
        classify=_classify_tables(classify, args.recommend, args.variants_compared),
        near_copies_dropped=sorted(near),
        identifiers_dropped=sorted(identities),
    )
    (out / "README.md").write_text(card, encoding="utf-8")
    return stats


def _classify_tables(
    classify: dict[str, Any] | None, recommend: str | None = None, variants: int | None = None
) -> dict[str, Any] | None:
    """The card's downstream part: the run's tables, the dev half it scored, and the way of use it recommends."""
    if not classify:
        return None
    from medsyn.data import load_rumedtop3
    from medsyn.eval.classify import eval_halves
    from medsyn.eval.report import classify_table, gain_table
    from medsyn.eval.upsample import parse_setting

    summary = classify["summary"]
    tables: dict[str, Any] = {"run": classify["run"], "table": classify_table(summary), "gains": gain_table(summary)}
    half = summary.get("eval_half")
    if half:
        sizes = {name: len(notes) for name, notes in eval_halves(load_rumedtop3("dev")).items()}
        other = next(name for name in sizes if name != half)
        tables["half"] = {"name": half, "notes": sizes[half], "other": other, "other_notes": sizes[other]}
    if recommend:
        wanted = parse_setting(recommend)
        if not any(s["real"] == wanted.real and s["synthetic"] == wanted.synthetic and s["fill_to"] == wanted.fill_to
                   for s in summary["settings"]):  # fmt: skip
            raise ReleaseError(f"--recommend {recommend}: run {classify['run']} did not measure it")
        tables["recommend"] = {"fill_to": wanted.fill_to, "variants": variants}
    return tables


def _quality(
    out: Path, kept: list[dict[str, Any]], train: list[dict[str, str]], holdout: bool = True
) -> dict[str, Any]:
    """``medsyn eval quality`` on the kept notes, written to ``quality/``."""
    from medsyn.data import load_rumedtop3
    from medsyn.eval.quality import evaluate_quality
    from medsyn.eval.report import plot_quality

    by_id = {n["id"]: n["text"] for n in train}
    synthetic = [
        {"id": r["id"], "text": r["note"], "code": r["category"], "symptoms": list(r["symptoms"]),
         "example": by_id.get(r.get("example_id")), "sex": r.get("sex"), "age": r.get("age")}
        for r in kept
    ]  # fmt: skip
    dev = load_rumedtop3("dev") if holdout else None
    report, per_note = evaluate_quality(synthetic, train, holdout=dev, self_bleu_sample=500)
    (out / "quality").mkdir(exist_ok=True)
    # what a reader sees, beside real notes the classifiers never saw and the paper's GPT-4 notes (RuMedTop3 only)
    from medsyn.eval.reader import plot_reader, reader_measures, reader_sets

    report["reader"] = reader_measures(reader_sets(synthetic, dev), train)
    plot_reader(report["reader"], out / "quality" / "reader.png")
    report["copying"]["examples"] = [  # the quoted pairs would carry real text
        {k: v for k, v in e.items() if k in ("id", "copy_score", "lcs", "real_id")}
        for e in report["copying"]["examples"]
    ]
    (out / "quality" / "report.json").write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")
    plot_quality(per_note, [len(n["text"]) for n in train], out / "quality" / "quality.png")
    return report


def _plots(out: Path, kept: list[dict[str, Any]], train: list[dict[str, str]], real_name: str) -> list[str]:
    """Notes per category against real notes per category."""
    from medsyn.plots import pyplot

    plt = pyplot()
    syn, real = Counter(r["category"] for r in kept), Counter(n["code"][:3] for n in train)
    codes = sorted(set(syn) | set(real), key=lambda c: (-real[c], c))
    fig, ax = plt.subplots(figsize=(14, 4))
    xs = range(len(codes))
    ax.bar([x - 0.2 for x in xs], [real[c] for c in codes], width=0.4, label=f"real ({real_name})")
    ax.bar([x + 0.2 for x in xs], [syn[c] for c in codes], width=0.4, label="synthetic (this dataset)")
    ax.set_yscale("log")
    ax.set_xticks(list(xs), codes, rotation=90, fontsize=6)
    ax.set_ylabel("notes")
    ax.set_title("Notes per ICD-10 category, real codes from most to least frequent")
    ax.legend()
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    (out / "plots").mkdir(exist_ok=True)
    fig.savefig(out / "plots" / "codes.png", dpi=110)
    plt.close(fig)
    return ["plots/codes.png", "quality/quality.png", "quality/reader.png"]


def _classify(run: str | None) -> dict[str, Any] | None:
    """The summary of a ``medsyn eval classify`` run folder, if one is given."""
    if not run:
        return None
    path = Path(run) / "metrics.json"
    if not path.exists():
        raise ReleaseError(f"{run} holds no metrics.json; pass the run folder that medsyn eval classify wrote")
    return {"summary": json.loads(path.read_text(encoding="utf-8")), "run": Path(run).name}


# -- validation ------------------------------------------------------------------------------------------------------
def validate_dataset_release(folder: str | Path) -> dict[str, Any]:
    """Check a release folder as the Hub and ``datasets`` will read it; returns rows and features per config.

    Checks: the card parses (``DatasetCard.load``) and lists configs whose names the dataset viewer accepts; every
    config loads with ``load_dataset`` with the rows and features the card states; row groups are small; no
    ``prompt`` column, no ``shards/``, nothing that looks like a token.

    Raises:
        ReleaseError: listing every problem found.
    """
    import pyarrow.parquet as pq
    from datasets import load_dataset
    from huggingface_hub import DatasetCard

    from medsyn.hub import find_tokens

    folder = Path(folder)
    problems, report = [], {}
    if (folder / "shards").exists():
        problems.append("shards/ must not ship; build the release with medsyn release dataset")
    if not (folder / "README.md").exists():
        raise ReleaseError(f"{folder} has no README.md card")
    meta = DatasetCard.load(folder / "README.md").data.to_dict()
    for key in ("license", "language", "configs", "dataset_info", "pretty_name"):
        if not meta.get(key):
            problems.append(f"the card has no {key}")
    infos = {i["config_name"]: i for i in meta.get("dataset_info", [])}
    for entry in meta.get("configs", []):
        name = entry["config_name"]
        splits = [f["split"] for f in entry["data_files"]]
        if not _NAME.match(name) or not all(_NAME.match(s) for s in splits):
            problems.append(f"config {name!r} or its splits {splits} have names the dataset viewer rejects")
        for f in entry["data_files"]:
            for file in folder.glob(f["path"]):
                groups = pq.ParquetFile(file).metadata
                biggest = max(groups.row_group(i).num_rows for i in range(groups.num_row_groups))
                if biggest > ROW_GROUP:
                    problems.append(f"{file.name} has a row group of {biggest} rows (at most {ROW_GROUP})")
        ds = load_dataset(str(folder), name, split="train")
        expected = infos.get(name, {}).get("splits", [{}])[0].get("num_examples")
        if expected is not None and len(ds) != expected:
            problems.append(f"config {name} loads {len(ds)} rows, the card says {expected}")
        if "prompt" in ds.column_names:
            problems.append(f"config {name} has a prompt column (it would carry real notes)")
        declared = [f["name"] for f in infos.get(name, {}).get("features", [])]
        if declared and declared != ds.column_names:
            problems.append(f"config {name} columns {ds.column_names} differ from the card's {declared}")
        report[name] = {"rows": len(ds), "columns": ds.column_names}
    problems += [f"{name} contains something that looks like a Hub token" for name in find_tokens(folder)]
    if problems:
        raise ReleaseError(f"release folder {folder} is not valid: " + "; ".join(problems))
    return report
