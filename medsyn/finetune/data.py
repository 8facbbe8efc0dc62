"""The instruction dataset: real RuMedTop3 notes in the MedSyn paper's ``{instruction, input, output}`` form.

For each note the graph's extractor finds its symptoms (not the ones the note denies); the patient's sex and age,
which RuMedTop3 does not record, are sampled with a seeded RNG within the ICD-10 code's limits
(:mod:`medsyn.demographics`). Every kept note gives one «напиши анамнез» row whose output is the whole note; a share
of them also gives a «продолжи анамнез» row whose input holds the start of the note and whose output is the rest.

Run it with ``medsyn data instructions --out outputs/instructions`` (see :class:`InstructionDataArgs`).
"""

from __future__ import annotations

import json
import logging
import random
import shlex
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol

from medsyn.config import dump_config, parse_args
from medsyn.errors import MedsynError
from medsyn.finetune.args import InstructionDataArgs
from medsyn.prompts import INSTRUCTION_CONTINUE, INSTRUCTION_WRITE, format_patient_input

__all__ = [
    "build_instruction_rows",
    "continuation_cut",
    "write_instruction_dataset",
    "load_instruction_split",
    "main",
]

logger = logging.getLogger(__name__)

COLUMNS = ("id", "code", "kind", "instruction", "input", "output", "symptoms", "sex", "age")
CONTINUE_PREFIX = "начало анамнеза: "


class _Extractor(Protocol):
    def extract(self, text: str) -> list[str]: ...


def continuation_cut(text: str, rng: random.Random, low: float = 0.3, high: float = 0.6) -> int | None:
    """A cut point at a word boundary between ``low`` and ``high`` of the note, or ``None`` if there is none.

    Cutting after a space keeps the «начало» readable and lets the answer start with a whole word.
    """
    target = int(len(text) * rng.uniform(low, high))
    lo, hi = int(len(text) * low), int(len(text) * high)
    spaces = [i for i in range(lo, hi + 1) if i < len(text) and text[i] == " "]
    if not spaces:
        return None
    return min(spaces, key=lambda i: abs(i - target))


def build_instruction_rows(
    notes: Iterable[dict[str, str]],
    extractor: _Extractor,
    rng: random.Random,
    continue_fraction: float = 0.3,
    min_output_chars: int = 20,
) -> tuple[list[dict[str, Any]], Counter]:
    """Turn real notes into instruction rows.

    Args:
        notes: ``{"id", "text", "code"}`` dicts (see :func:`medsyn.data.load_rumedtop3`).
        extractor: an object with ``extract(text) -> list[str]``, e.g. ``load_graph().extractor()``.
        rng: the seeded RNG for demographics and continuation cuts.
        continue_fraction: share of kept notes that also give a «продолжи анамнез» row.
        min_output_chars: rows whose output is shorter than this are dropped.

    Returns:
        ``(rows, counts)``: rows with the columns in ``COLUMNS``; counts of what was kept and dropped, and why.
    """
    from medsyn.sampling import sample_demographics

    rows: list[dict[str, Any]] = []
    counts: Counter = Counter()
    for note in notes:
        counts["notes"] += 1
        text = " ".join(note["text"].split())
        # Draw demographics and the continuation coin for every note, kept or not, so that one note's fate does
        # not shift the random stream of all the notes after it.
        sex, age = sample_demographics(rng, note.get("code"))
        sex, age = note.get("sex") or sex, note.get("age", age)  # a corpus that records the patient says who it was
        wants_continue = rng.random() < continue_fraction
        if len(text) < min_output_chars:
            counts["dropped_short_output"] += 1
            continue
        symptoms = extractor.extract(text)
        if not symptoms:
            counts["dropped_no_symptoms"] += 1
            continue
        base = {"code": note.get("code", ""), "symptoms": list(symptoms), "sex": sex, "age": int(age)}
        patient = format_patient_input(sex, age, symptoms)
        rows.append(
            {"id": f"{note['id']}-write", "kind": "write", "instruction": INSTRUCTION_WRITE, "input": patient}
            | base
            | {"output": text}
        )
        counts["write"] += 1
        if not wants_continue:
            continue
        cut = continuation_cut(text, rng)
        rest = text[cut + 1 :].strip() if cut is not None else ""
        if cut is None or len(rest) < min_output_chars:
            counts["dropped_short_continuation"] += 1
            continue
        rows.append(
            {
                "id": f"{note['id']}-continue",
                "kind": "continue",
                "instruction": INSTRUCTION_CONTINUE,
                "input": f"{patient}, {CONTINUE_PREFIX}{text[:cut]}",
            }
            | base
            | {"output": rest}
        )
        counts["continue"] += 1
    return rows, counts


CARD = """---
language:
- ru
license: {license}
task_categories:
- text-generation
tags:
- medical
- synthetic-data
- medsyn
configs:
- config_name: default
  data_files:
{data_files}
---

# Russian clinical-note instructions (medsyn)

{source_line} in the MedSyn instruction form (arXiv 2408.02056):

* `instruction`: «{write}» or, for continuation rows, «{cont}»
* `input`: the patient line (sex and age as the notes record them, else sampled with a fixed seed; complaints found in the
  note by the medsyn knowledge graph's symptom extractor); continuation rows add the start of the note.
* `output`: the real note, or its rest.

## Splits

{table}

## Built with

```
{command}
```

```json
{config}
```
"""


def write_instruction_dataset(
    out: str | Path, splits: dict[str, list[dict[str, Any]]], counts: dict[str, Counter], config: dict[str, Any]
) -> Path:
    """Write ``data/<split>.parquet`` per split and a dataset card (``README.md``) with the counts and the config.

    Args:
        out: the dataset folder.
        splits: rows per split name.
        counts: kept/dropped counts per split, from :func:`build_instruction_rows`.
        config: the resolved builder config, saved in the card and as ``config.json``.

    Returns:
        The dataset folder.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = Path(out)
    (out / "data").mkdir(parents=True, exist_ok=True)
    for split, rows in splits.items():
        table = pa.Table.from_pylist([{c: r[c] for c in COLUMNS} for r in rows])
        pq.write_table(table, out / "data" / f"{split}.parquet")
    data_files = "\n".join(f"  - split: {s}\n    path: data/{s}.parquet" for s in splits)
    keys = ["notes", "write", "continue", "dropped_short_output", "dropped_no_symptoms", "dropped_short_continuation"]
    table = "| split | rows | " + " | ".join(keys) + " |\n|---|---|" + "---|" * len(keys) + "\n"
    for split, rows in splits.items():
        table += f"| {split} | {len(rows)} | " + " | ".join(str(counts[split][k]) for k in keys) + " |\n"
    argv = ["medsyn", "data", "instructions"]
    own = bool(config.get("notes"))
    for k, v in config.items():
        if v is not None:
            v = "NOTES" if k == "notes" else v  # a path names a machine and can name a hospital
            argv += [f"--{k}", *map(str, v if isinstance(v, list) else [v])]
    card = CARD.format(
        license="other" if own else "apache-2.0",
        source_line=(
            "Real notes of the corpus given with `--notes` (they are real text: keep this folder private)"
            if own
            else "Real outpatient notes from RuMedTop3"
        ),
        data_files=data_files,
        write=INSTRUCTION_WRITE,
        cont=INSTRUCTION_CONTINUE,
        table=table,
        command=shlex.join(argv),
        config=json.dumps({**config, "notes": "NOTES"} if own else config, ensure_ascii=False, indent=2),
    )
    (out / "README.md").write_text(card, encoding="utf-8")
    (out / "config.json").write_text(json.dumps(config, ensure_ascii=False, indent=2), encoding="utf-8")
    return out


def load_instruction_split(dataset: str | Path, split: str) -> list[dict[str, Any]]:
    """Read one split of a folder written by :func:`write_instruction_dataset` as a list of row dicts."""
    import pyarrow.parquet as pq

    path = Path(dataset) / "data" / f"{split}.parquet"
    if not path.exists():
        found = sorted(p.stem for p in (Path(dataset) / "data").glob("*.parquet"))
        raise MedsynError(
            f"no split {split!r} in {dataset} (found {found or 'nothing'}); "
            f"build it with: medsyn data instructions --out {dataset}"
        )
    return pq.read_table(path).to_pylist()


def split_notes(notes: list[dict[str, Any]], dev_fraction: float) -> dict[str, list[dict[str, Any]]]:
    """``{"train", "dev"}`` of a user's notes: a note is dev when the hash of its id falls below ``dev_fraction``,
    so the split does not move when notes are added."""
    import hashlib

    out: dict[str, list[dict[str, Any]]] = {"train": [], "dev": []}
    for note in notes:
        bucket = int(hashlib.sha256(str(note["id"]).encode("utf-8")).hexdigest()[:8], 16) / 0xFFFFFFFF
        out["dev" if bucket < dev_fraction else "train"].append(note)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """``medsyn data instructions``: build the instruction dataset from real notes (RuMedTop3 unless --notes)."""
    from medsyn.data import load_rumedtop3
    from medsyn.kg import load_graph
    from medsyn.paths import staged_dir

    (args,) = parse_args([InstructionDataArgs], argv, description=main.__doc__, prog="medsyn data instructions")
    config = dump_config(args)
    logger.info("seed %d; config %s", args.seed, json.dumps(config, ensure_ascii=False))
    extractor = load_graph(args.graph).extractor()
    rng = random.Random(args.seed)
    own = None
    if args.notes:
        from medsyn.corpus import load_corpus

        own = split_notes(load_corpus(args.notes, args.text_column, args.code_column).notes, args.dev_fraction)
    splits, counts = {}, {}
    for split in args.splits:
        notes = (own[split] if own is not None else load_rumedtop3(split))[: args.max_notes]
        splits[split], counts[split] = build_instruction_rows(
            notes, extractor, rng, args.continue_fraction, args.min_output_chars
        )
        logger.info("%s: %d rows from %d notes (%s)", split, len(splits[split]), len(notes), dict(counts[split]))
    with staged_dir(args.out) as tmp:  # whole or not at all: Ctrl-C or a full disk leaves the old folder as it was
        write_instruction_dataset(tmp, splits, counts, config)
    logger.info("wrote %s", args.out)
    return 0
