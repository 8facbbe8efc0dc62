"""Readers for the real notes that medsyn ships and for synthetic notes in RuMedTop3's format.

A note is a plain dict ``{"id": str, "text": str, "code": str}``: RuMedTop3 stores the note text in its
``symptoms`` field and the 3-character ICD-10 code in ``code``; readers rename them so that the rest of the
package never has to remember that.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator
from pathlib import Path

from medsyn.errors import MedsynError
from medsyn.paths import resource_path, rumedtop3_path

__all__ = [
    "Note",
    "read_jsonl",
    "write_jsonl",
    "load_rumedtop3",
    "load_reference",
    "load_symptom_names",
    "load_notes",
    "REFERENCE_SETS",
]

logger = logging.getLogger(__name__)

Note = dict[str, str]


def read_jsonl(path: str | Path) -> Iterator[dict]:
    """Yield the JSON objects of a JSON-lines file (gzip-compressed when it ends in ``.gz``), with the line number in
    any parse error."""
    import gzip

    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            line = line.strip()
            if not line:
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError as err:
                raise MedsynError(f"{path}:{lineno} is not valid JSON ({err.msg}); fix or remove that line") from err


def write_jsonl(path: str | Path, rows: Iterable[dict]) -> int:
    """Write rows as JSON lines (UTF-8, not ASCII-escaped). Returns the number of rows."""
    n = 0
    with Path(path).open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
            n += 1
    return n


def _rumed_rows(path: Path) -> list[Note]:
    notes = []
    for i, row in enumerate(read_jsonl(path)):
        if "symptoms" not in row or "code" not in row:
            raise MedsynError(
                f"{path}: row {i} has keys {sorted(row)}, expected RuMedTop3's 'idx', 'symptoms' (the note) and 'code'"
            )
        notes.append({"id": str(row.get("idx", i)), "text": str(row["symptoms"]).strip(), "code": str(row["code"])})
    return notes


def load_rumedtop3(split: str = "train") -> list[Note]:
    """Load a packaged RuMedTop3 split as notes.

    Args:
        split: ``"train"`` (4,690 notes) or ``"dev"`` (848 notes).

    Returns:
        A list of ``{"id", "text", "code"}`` dicts.
    """
    return _rumed_rows(rumedtop3_path(split))


# Synthetic notes of others that ship for comparison: name -> packaged file (see its README for provenance).
REFERENCE_SETS = {"gpt4": ("medsyn_reference", "gpt4_notes.jsonl.gz")}


def load_reference(name: str = "gpt4") -> list[Note]:
    """The MedSyn paper's released synthetic notes for RuMedTop3 codes (``gpt4``: 2,378 GPT-4 notes, MIT).

    They ship inside the package (``medsyn/resources/medsyn_reference``, with their licence and provenance); the
    authors publish them on the Hub as ``Glebkaa/MedSyn-synthetic``.
    """
    if name not in REFERENCE_SETS:
        raise MedsynError(f"unknown reference notes {name!r}; choose from {sorted(REFERENCE_SETS)}")
    return _rumed_rows(resource_path(*REFERENCE_SETS[name]))


def load_symptom_names() -> list[str]:
    """The 141 symptom names of RuMedSymptomRec (its ``code`` field), in first-seen order."""
    names: dict[str, None] = {}
    for split in ("train", "dev"):
        for row in read_jsonl(resource_path("rumedsymptomrec", f"{split}_v1.jsonl")):
            names.setdefault(str(row["code"]).strip().lower(), None)
    return list(names)


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
        notes = _rumed_rows(source)
    elif source.is_dir() and (source / "shards").is_dir():
        from medsyn.writer import is_failed, read_shards

        rows = [r for r in read_shards(source / "shards") if not is_failed(r) and r.get("kept", True)]
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
