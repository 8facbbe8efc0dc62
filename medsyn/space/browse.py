"""Open a notes dataset that ``medsyn generate`` wrote (a local folder or a Hub id) and page through it.

The folder's card declares two configs: ``default`` (kept notes) and ``rejected`` (notes the filter turned down,
with reasons). Both load with :func:`datasets.load_dataset`.
"""

from __future__ import annotations

import logging
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

from medsyn.errors import MedsynError

__all__ = [
    "CONFIGS",
    "RELEASE_FOLDER",
    "RELEASE_HUB_ID",
    "start_source",
    "resolve_source",
    "open_notes",
    "list_notes",
    "find_note",
    "TABLE_COLUMNS",
]

logger = logging.getLogger(__name__)

CONFIGS = {"kept": "default", "rejected": "rejected"}
TABLE_COLUMNS = ["id", "icd10_code", "icd10_name", "symptoms", "symptom_coverage", "kept"]
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


RELEASE_FOLDER = "releases/ru-notes"
"""The project's release as it sits in the repository."""
RELEASE_HUB_ID = "medsyn/ru-notes"
"""The same release on the Hub."""


def start_source(source: str, roots: list[Path] | None = None) -> str:
    """The dataset the browser opens first: the release folder when it is here, else the same release on the Hub.

    A Space installs medsyn as a package and has no ``releases/`` folder; there the Hub copy is what a visitor can open.
    """
    if source == RELEASE_FOLDER and not any((root / source).is_dir() for root in [Path.cwd(), *(roots or [])]):
        return RELEASE_HUB_ID
    return source


def resolve_source(source: str | None, roots: list[Path] | None = None) -> str:
    """A folder (as given, or under one of ``roots``) or a Hub id; a clear error when it is neither."""
    source = (source or "").strip()
    if not source:
        raise MedsynError("enter a dataset: a folder written by 'medsyn generate' or a Hub id such as user/ru-notes")
    for root in [Path.cwd(), *(roots or [])]:
        path = root / source
        if path.is_dir():
            return str(path.resolve())
    if Path(source).is_absolute() or source.startswith((".", "~")) or not _HUB_ID.match(source):
        raise MedsynError(f"no dataset folder at {source}; write one with 'medsyn generate --out {source}'")
    return source


@lru_cache(maxsize=8)
def _load(source: str, config: str, stamp: float) -> Any:
    from datasets import load_dataset

    return load_dataset(source, config, split="train")


def open_notes(source: str, which: str = "kept", roots: list[Path] | None = None) -> Any:
    """The ``kept`` or ``rejected`` notes of a dataset as a :class:`datasets.Dataset` (cached until it changes)."""
    if which not in CONFIGS:
        raise MedsynError(f"choose kept or rejected notes, got {which!r}")
    resolved = resolve_source(source, roots)
    path = Path(resolved)
    stamp = max((p.stat().st_mtime for p in path.rglob("*.parquet")), default=0.0) if path.is_dir() else 0.0
    if path.is_dir() and not (path / "README.md").exists() and not any(path.rglob("*.parquet")):
        raise MedsynError(f"{source} holds no notes; write some with 'medsyn generate --out {source}'")
    folder = {"kept": "data", "rejected": "rejected"}[which]
    if path.is_dir() and (path / "README.md").exists() and not any((path / folder).glob("*.parquet")):
        other = "rejected" if which == "kept" else "kept"
        raise MedsynError(f"{source} has no {which} notes; choose {other} notes")
    try:
        return _load(resolved, CONFIGS[which], stamp)
    except Exception as err:  # noqa: BLE001 - datasets raises many kinds; the visitor gets one line
        message = " ".join(str(err).split())[:200]
        if which == "rejected" and ("rejected" in message or "config" in message.lower()):
            raise MedsynError(f"{source} has no rejected notes (no 'rejected' config)") from None
        if path.is_dir():
            raise MedsynError(f"could not open the folder {source}: {message}") from None
        raise MedsynError(
            f"{source} is no folder here, and the Hub could not open it as a dataset id: {message}"
        ) from None


def list_notes(source: str, which: str = "kept", code: str = "", limit: int = 200, roots=None) -> list[dict]:
    """Rows of the dataset for the table, optionally only those whose code starts with ``code``."""
    ds = open_notes(source, which, roots)
    code = code.strip().upper()
    rows = []
    for row in ds.select_columns([c for c in TABLE_COLUMNS if c in ds.column_names]):
        if code and not str(row.get("icd10_code", "")).upper().startswith(code):
            continue
        rows.append(row)
        if len(rows) >= limit:
            break
    return rows


def find_note(source: str, which: str, note_id: str, roots: list[Path] | None = None) -> dict[str, Any]:
    """One row of the dataset by its ``id``."""
    note_id = (note_id or "").strip()
    if not note_id:
        raise MedsynError("pick a note in the table (or give its id)")
    ds = open_notes(source, which, roots)
    try:
        return ds[list(ds["id"]).index(note_id)]
    except ValueError:
        raise MedsynError(f"no note with id {note_id!r} in the {which} notes of {source}") from None
