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

__all__ = ["Note", "read_jsonl", "write_jsonl", "load_rumedtop3", "load_symptom_names", "load_notes"]

logger = logging.getLogger(__name__)

Note = dict[str, str]


def read_jsonl(path: str | Path) -> Iterator[dict]:
    """Yield the JSON objects of a JSON-lines file, with the line number in any parse error."""
    path = Path(path)
    with path.open(encoding="utf-8") as fh:
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


def load_symptom_names() -> list[str]:
    """The 141 symptom names of RuMedSymptomRec (its ``code`` field), in first-seen order."""
    names: dict[str, None] = {}
    for split in ("train", "dev"):
        for row in read_jsonl(resource_path("rumedsymptomrec", f"{split}_v1.jsonl")):
            names.setdefault(str(row["code"]).strip().lower(), None)
    return list(names)


def load_notes(source: str | Path) -> list[Note]:
    """Load notes from a RuMedTop3-format JSONL file or from a dataset folder written by ``medsyn generate``.

    Args:
        source: a ``.jsonl`` file with ``symptoms`` and ``code`` per line, or a folder with ``data/*.parquet``
            whose rows have ``note`` and ``icd10_code``.

    Returns:
        A list of ``{"id", "text", "code"}`` dicts; codes are cut to their 3-character category.
    """
    source = Path(source)
    if source.is_file() and source.suffix in (".jsonl", ".json"):
        notes = _rumed_rows(source)
    elif source.is_dir():
        import pyarrow.parquet as pq

        files = sorted((source / "data").glob("*.parquet")) or sorted(source.glob("*.parquet"))
        if not files:
            raise MedsynError(
                f"{source} has no data/*.parquet; pass a folder written by 'medsyn generate' or a .jsonl"
            )
        notes = []
        for file in files:
            table = pq.read_table(file, columns=["id", "note", "icd10_code"]).to_pylist()
            notes += [{"id": r["id"], "text": r["note"], "code": r["icd10_code"]} for r in table]
    else:
        raise MedsynError(f"cannot read notes from {source}: expected a .jsonl file or a dataset folder")
    for note in notes:
        note["code"] = note["code"].split(".")[0][:3]
    logger.info("loaded %d notes from %s", len(notes), source)
    return notes
