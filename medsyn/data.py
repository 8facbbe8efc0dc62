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
    "read_rumedtop3_file",
    "write_jsonl",
    "load_rumedtop3",
    "load_reference",
    "load_symptom_names",
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


def read_rumedtop3_file(path: Path) -> list[Note]:
    """The notes of a file in RuMedTop3's JSON-lines format (``idx``, ``symptoms`` = the note, ``code``)."""
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
    return read_rumedtop3_file(rumedtop3_path(split))


# Synthetic notes of others that ship for comparison: name -> packaged file (see its README for provenance).
REFERENCE_SETS = {"gpt4": ("medsyn_reference", "gpt4_notes.jsonl.gz")}


def load_reference(name: str = "gpt4") -> list[Note]:
    """The MedSyn paper's released synthetic notes for RuMedTop3 codes (``gpt4``: 2,378 GPT-4 notes, MIT).

    They ship inside the package (``medsyn/resources/medsyn_reference``, with their licence and provenance); the
    authors publish them on the Hub as ``Glebkaa/MedSyn-synthetic``.
    """
    if name not in REFERENCE_SETS:
        raise MedsynError(f"unknown reference notes {name!r}; choose from {sorted(REFERENCE_SETS)}")
    return read_rumedtop3_file(resource_path(*REFERENCE_SETS[name]))


def load_symptom_names() -> list[str]:
    """The 141 symptom names of RuMedSymptomRec (its ``code`` field), in first-seen order."""
    names: dict[str, None] = {}
    for split in ("train", "dev"):
        for row in read_jsonl(resource_path("rumedsymptomrec", f"{split}_v1.jsonl")):
            names.setdefault(str(row["code"]).strip().lower(), None)
    return list(names)
