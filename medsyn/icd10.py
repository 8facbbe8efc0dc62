"""The ICD-10 hierarchy (МКБ-10) from the Russian Ministry of Health reference directory.

The packaged file ``resources/icd10_ru/mkb10_nsi_v2.27.csv`` (MIT, see its LICENSE) lists every chapter, block,
category and subcategory with its Russian name and its parent. :class:`ICD10` indexes it by code and answers
hierarchy questions; unknown codes raise :class:`~medsyn.errors.UnknownCodeError` with the closest valid codes.
"""

from __future__ import annotations

import csv
import difflib
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from medsyn.errors import MedsynError, UnknownCodeError
from medsyn.paths import resource_path

__all__ = ["ICD10Entry", "ICD10", "load_icd10", "code_level", "normalize_code"]

_CHAPTER = re.compile(r"^[IVXL]+$")
_BLOCK = re.compile(r"^[A-Z]\d\d-[A-Z]\d\d$")
_CATEGORY = re.compile(r"^[A-Z]\d\d$")
_SUBCATEGORY = re.compile(r"^[A-Z]\d\d\.\d+$")


def code_level(code: str) -> str:
    """``chapter``, ``block``, ``category`` or ``code`` (a subcategory such as ``M54.5``)."""
    if _CHAPTER.match(code):
        return "chapter"
    if _BLOCK.match(code):
        return "block"
    if _CATEGORY.match(code):
        return "category"
    if _SUBCATEGORY.match(code):
        return "code"
    raise MedsynError(f"{code!r} is not an ICD-10 chapter (IX), block (M50-M54), category (M54) or code (M54.5)")


def normalize_code(code: str) -> str:
    """Upper-case, strip, map Cyrillic look-alike letters to Latin and a comma to a dot (``м54,5`` → ``M54.5``)."""
    table = str.maketrans("АВСЕНКМОРТХУ", "ABCEHKMOPTXY")
    return code.strip().upper().translate(table).replace(",", ".")


@dataclass(frozen=True)
class ICD10Entry:
    """One node of the hierarchy."""

    code: str
    name: str
    level: str
    parent: str | None


class ICD10:
    """An index of the ICD-10 hierarchy by code."""

    def __init__(self, entries: list[ICD10Entry]) -> None:
        self.entries: dict[str, ICD10Entry] = {e.code: e for e in entries}
        self.children: dict[str, list[str]] = {}
        for e in entries:
            if e.parent:
                self.children.setdefault(e.parent, []).append(e.code)

    def __contains__(self, code: str) -> bool:
        return normalize_code(code) in self.entries

    def __len__(self) -> int:
        return len(self.entries)

    def closest(self, code: str, n: int = 5) -> list[str]:
        """The valid codes nearest to ``code``: same prefix first, then by string similarity."""
        code = normalize_code(code)
        pool = list(self.entries)
        candidates = {c for c in pool if code[:3] and c.startswith(code[:3]) and c != code}
        candidates.update(difflib.get_close_matches(code, pool, n=n, cutoff=0.5))
        ratio = {c: difflib.SequenceMatcher(None, code, c).ratio() for c in candidates}
        return sorted(candidates, key=lambda c: (-ratio[c], c))[:n]

    def get(self, code: str) -> ICD10Entry:
        """The entry for ``code``; raises UnknownCodeError listing the closest codes."""
        norm = normalize_code(code)
        if norm not in self.entries:
            raise UnknownCodeError(code, self.closest(norm))
        return self.entries[norm]

    def ancestors(self, code: str) -> list[ICD10Entry]:
        """The chain of parents from the nearest up to the chapter."""
        out = []
        entry = self.get(code)
        while entry.parent:
            entry = self.entries[entry.parent]
            out.append(entry)
        return out

    def category_of(self, code: str) -> str:
        """The 3-character category that contains ``code`` (itself for a category)."""
        entry = self.get(code)
        if entry.level in ("chapter", "block"):
            raise MedsynError(f"{code} is a {entry.level}, not a category or code")
        return entry.code[:3]

    def codes_in(self, category: str) -> list[str]:
        """The leaf codes under a category (all descendants without children), or the category itself."""
        stack, leaves = [self.get(category).code], []
        while stack:
            node = stack.pop()
            kids = self.children.get(node, [])
            if kids:
                stack.extend(sorted(kids, reverse=True))
            else:
                leaves.append(node)
        return leaves


def _read(path: Path) -> list[ICD10Entry]:
    with path.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh, delimiter=";"))
    required = {"ID", "MKB_CODE", "MKB_NAME", "ID_PARENT", "ACTUAL"}
    if not rows or not required <= set(rows[0]):
        raise MedsynError(f"{path} is not the МКБ-10 directory: expected ';'-separated columns {sorted(required)}")
    by_id = {r["ID"]: r for r in rows}
    entries = []
    for r in rows:
        if r["ACTUAL"] != "1":
            continue  # withdrawn codes stay out of generation
        parent = by_id.get(r["ID_PARENT"]) if r["ID_PARENT"] else None
        code = r["MKB_CODE"].strip()
        entries.append(
            ICD10Entry(code, r["MKB_NAME"].strip(), code_level(code), parent["MKB_CODE"] if parent else None)
        )
    return entries


@lru_cache(maxsize=4)
def load_icd10(path: str | None = None) -> ICD10:
    """Load the packaged ICD-10 directory (or another file in the same format)."""
    return ICD10(_read(Path(path) if path else resource_path("icd10_ru", "mkb10_nsi_v2.27.csv")))
