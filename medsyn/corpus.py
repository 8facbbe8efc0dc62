"""Real notes from anywhere: one notion of a notes source, read the same way by every command.

A source is one of:

* ``rumedtop3:train`` / ``rumedtop3:dev``: the packaged RuMedTop3 splits, read as they ship (the default);
* ``medsyn-reference:gpt4``: the MedSyn paper's packaged GPT-4 notes (for comparisons);
* a ``.jsonl`` (``.jsonl.gz``), ``.csv``, ``.tsv`` or ``.parquet`` file, or a folder of them (a Hub dataset's
  files downloaded into a folder, a ``datasets`` ``save_to_disk`` folder);
* a Hub dataset id, ``user/name`` or ``user/name:split``, read through ``datasets`` (online, or from its cache).

Columns are found by their common names (:data:`TEXT_COLUMNS`, :data:`CODE_COLUMNS`, and optional id, sex and age
columns); ``text_column`` and ``code_column`` name them when a file uses others. CSV delimiters are sniffed and a
UTF-8 byte-order mark is accepted.

A user's corpus is validated as it is read (:class:`CorpusReport`): empty texts, missing codes and duplicate ids or
texts are counted, skipped and named; codes that ICD-10 does not know are listed with the closest valid ones; codes
with too few notes to mine symptoms from are named. Codes keep the precision the corpus gives them (``I21.0``
stays ``I21.0``). The packaged splits are read exactly as before, with no note dropped.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import re
import statistics
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medsyn.errors import MedsynError

__all__ = [
    "CODE_COLUMNS",
    "DEFAULT_NOTES",
    "FILE_SUFFIXES",
    "MIN_CODE_NOTES",
    "TEXT_COLUMNS",
    "Corpus",
    "CorpusReport",
    "NotesArgs",
    "load_corpus",
    "notes_fingerprint",
]

logger = logging.getLogger(__name__)

DEFAULT_NOTES = "rumedtop3:train"
"""The source every command reads when none is given."""

TEXT_COLUMNS = ("text", "note", "notes", "symptoms", "complaints", "жалобы", "текст", "симптомы", "anamnesis")
CODE_COLUMNS = ("code", "icd10", "icd10_code", "icd_code", "icd", "mkb", "mkb10", "мкб", "мкб10", "мкб-10", "код")
ID_COLUMNS = ("id", "idx", "note_id", "record_id", "номер", "№", "ид")
SEX_COLUMNS = ("sex", "gender", "пол", "patient_sex", "patient_gender", "пол пациента")
AGE_COLUMNS = ("age", "возраст", "patient_age", "возраст пациента")
FILE_SUFFIXES = (".jsonl", ".jsonl.gz", ".json", ".csv", ".tsv", ".parquet")

MIN_CODE_NOTES = 3
"""A code with fewer real notes than this gets symptom weights from too little evidence; the summary names it."""

_SHOWN = 5  # how many ids a validation line names
_SEX = {"m": "M", "м": "M", "male": "M", "муж": "M", "мужской": "M", "f": "F", "ж": "F", "female": "F"}
_SEX |= {"жен": "F", "женский": "F"}
_HUB_ID = re.compile(r"^[\w.-]+/[\w.-]+(:[\w.-]+)?$")


@dataclass
class NotesArgs:
    """Where a command's real notes come from (the same four options on every command that reads them)."""

    notes: str = field(
        default=DEFAULT_NOTES,
        metadata={
            "help": "real notes: rumedtop3:train|dev, a .jsonl/.csv/.tsv/.parquet file or a folder of them, or a "
            "Hub dataset id user/name[:split]"
        },
    )
    text_column: str | None = field(default=None, metadata={"help": "the notes' text column, when not a usual name"})
    code_column: str | None = field(default=None, metadata={"help": "the notes' ICD-10 column, when not a usual name"})
    notes_name: str | None = field(
        default=None, metadata={"help": "the name cards give the notes (never a path); the file's stem when unset"}
    )

    def load(self, **kwargs: Any) -> Corpus:
        return load_corpus(self.notes, self.text_column, self.code_column, name=self.notes_name, **kwargs)


@dataclass
class CorpusReport:
    """What reading a corpus found: what was kept, what was skipped and why."""

    rows: int = 0
    skipped: dict[str, list[str]] = field(default_factory=dict)
    """reason → ids (or row numbers) of the notes skipped for it."""
    unknown_codes: dict[str, list[str]] = field(default_factory=dict)
    """code not in ICD-10 → the closest valid codes."""
    per_code: Counter = field(default_factory=Counter)
    min_code_notes: int = MIN_CODE_NOTES
    columns: list[str] = field(default_factory=list)
    """Per file: which column was read as what, and which were not read."""

    def skip(self, reason: str, where: str) -> None:
        self.skipped.setdefault(reason, []).append(where)

    @property
    def kept(self) -> int:
        return sum(self.per_code.values())

    @property
    def rare_codes(self) -> list[str]:
        return sorted(c for c, n in self.per_code.items() if n < self.min_code_notes)

    def summary(self) -> str:
        """One line: notes, codes, categories, notes per code."""
        counts = sorted(self.per_code.values())
        spread = f"{counts[0]}/{statistics.median(counts):g}/{counts[-1]}" if counts else "0/0/0"
        categories = len({c[:3] for c in self.per_code})
        return (
            f"{self.kept:,} notes of {self.rows:,} rows kept, {len(self.per_code)} codes in {categories} categories, "
            f"notes per code min/median/max {spread}"
        )

    def lines(self) -> list[str]:
        """The summary, then one line per kind of problem found."""
        out = [self.summary(), *self.columns]
        for reason, where in self.skipped.items():
            out.append(f"skipped {_count(len(where), 'note')} with {reason}: {_first(where)}")
        if self.unknown_codes:
            named = "; ".join(
                f"{code} (closest: {', '.join(near) or 'none'})" for code, near in list(self.unknown_codes.items())[:5]
            )
            more = f" and {len(self.unknown_codes) - 5} more" if len(self.unknown_codes) > 5 else ""
            n = len(self.unknown_codes)
            out.append(
                f"{_count(n, 'code')} {'is' if n == 1 else 'are'} not in ICD-10, {'its' if n == 1 else 'their'} notes skipped: {named}{more}"
            )
        if rare := self.rare_codes:
            shown = ", ".join(f"{c} ({self.per_code[c]})" for c in rare[:8])
            more = f" and {len(rare) - 8} more" if len(rare) > 8 else ""
            out.append(
                f"{_count(len(rare), 'code')} {'has' if len(rare) == 1 else 'have'} fewer than {self.min_code_notes} "
                "notes, too few to mine symptoms from "
                f"reliably: {shown}{more}"
            )
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "notes": self.kept,
            "codes": len(self.per_code),
            "categories": len({c[:3] for c in self.per_code}),
            "skipped": {reason: len(where) for reason, where in self.skipped.items()},
            "unknown_codes": sorted(self.unknown_codes),
            "rare_codes": self.rare_codes,
        }


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


def _first(items: list[str]) -> str:
    shown = ", ".join(items[:_SHOWN])
    return shown + (f" and {len(items) - _SHOWN} more" if len(items) > _SHOWN else "")


@dataclass
class Corpus:
    """Real notes ``{"id", "text", "code"[, "sex", "age"]}`` with where they came from and what reading them found.

    Attributes:
        source: the source as given (a path, an id or ``rumedtop3:train``); never written to cards.
        name: the name cards and logs give the notes.
        notes: the kept notes.
        report: the validation report.
    """

    source: str
    name: str
    notes: list[dict[str, Any]]
    report: CorpusReport
    card_name: str = "private notes"
    """The name cards give the notes: the one the user gave, else ``private notes`` (a file name can say too much)."""

    @property
    def packaged(self) -> bool:
        """A packaged split (read as it ships) rather than a user's corpus."""
        return self.source.startswith(("rumedtop3:", "medsyn-reference:"))

    @property
    def fingerprint(self) -> str:
        return notes_fingerprint(self.notes)

    def texts(self) -> list[str]:
        return [n["text"] for n in self.notes]

    def describe(self) -> dict[str, Any]:
        """What a graph or a job records about its corpus: the name given, size and fingerprint (no path, no text)."""
        return {"name": self.card_name, "fingerprint": self.fingerprint, **self.report.to_dict()}


def notes_fingerprint(notes: Iterable[dict[str, Any]]) -> str:
    """A short digest of notes' ids, texts and codes, independent of anything else in them."""
    digest = hashlib.sha256()
    for n in notes:
        digest.update(json.dumps([n["id"], n["text"], n["code"]], ensure_ascii=False).encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()[:16]


def load_corpus(
    source: str = DEFAULT_NOTES,
    text_column: str | None = None,
    code_column: str | None = None,
    name: str | None = None,
    min_code_notes: int = MIN_CODE_NOTES,
    log: bool = True,
) -> Corpus:
    """Read and validate real notes from ``source`` (see the module).

    Args:
        source: ``rumedtop3:SPLIT``, ``medsyn-reference:gpt4``, a file, a folder or a Hub dataset id.
        text_column: the text column, when it has none of the usual names.
        code_column: the ICD-10 column, when it has none of the usual names.
        name: the name cards give the notes; the file's or dataset's own name when ``None``.
        min_code_notes: codes with fewer notes are named in the report.
        log: log the report's lines.

    Raises:
        MedsynError: a source that does not exist, cannot be decoded, has no recognisable columns or no usable note.
    """
    source = str(source)
    if source.startswith(("rumedtop3:", "medsyn-reference:")):
        corpus = _packaged(source, name)
    else:
        rows, default_name = _read_rows(source)
        corpus = _validate(source, name or default_name, rows, text_column, code_column, min_code_notes)
        corpus.card_name = name or "private notes"
    if log:
        for line in corpus.report.lines():
            logger.info("notes %s: %s", corpus.name, line)
    return corpus


def _packaged(source: str, name: str | None) -> Corpus:
    from medsyn.data import REFERENCE_SETS, load_reference, load_rumedtop3

    kind, _, split = source.partition(":")
    if kind == "rumedtop3":
        if split not in ("train", "dev"):
            raise MedsynError(
                f"unknown RuMedTop3 split {split!r} in {source!r}; give rumedtop3:train or rumedtop3:dev"
            )
        notes = load_rumedtop3(split)
    else:
        if split not in REFERENCE_SETS:
            raise MedsynError(f"unknown reference notes {source!r}; give medsyn-reference:gpt4")
        notes = load_reference(split)
    report = CorpusReport(rows=len(notes), per_code=Counter(n["code"] for n in notes))
    return Corpus(source, name or source, list(notes), report, card_name=name or source)


# ----------------------------------------------------------------------------------------------- reading


Row = tuple[str, dict[str, Any]]  # (where: "file:row", columns)


def _read_rows(source: str) -> tuple[list[tuple[str, list[Row]]], str]:
    """``([(file label, rows)], default name)`` for a path or a Hub id."""
    path = Path(source).expanduser()
    if path.is_file():
        return [(path.name, list(_read_file(path)))], _stem(path)
    if path.is_dir():
        if (path / "dataset_info.json").exists() or (path / "dataset_dict.json").exists():
            return [(path.name, _from_datasets(source, on_disk=True))], path.name
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.name.lower().endswith(FILE_SUFFIXES))
        files = [p for p in files if not p.name.startswith(".")]
        if not files:
            raise MedsynError(
                f"the folder {source} holds no notes files ({', '.join(FILE_SUFFIXES)}); give a file or another folder"
            )
        return [(str(p.relative_to(path)), list(_read_file(p))) for p in files], path.name
    if _HUB_ID.match(source) and not source.startswith((".", "/")) and not source.lower().endswith(FILE_SUFFIXES):
        return [(source, _from_datasets(source))], source.split(":")[0].split("/")[-1]
    raise MedsynError(
        f"notes source {source!r} does not exist; give rumedtop3:train|dev, a .jsonl/.csv/.tsv/.parquet file, a "
        "folder of them, or a Hub dataset id user/name[:split]"
    )


def _stem(path: Path) -> str:
    name = path.name
    for suffix in FILE_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def _read_file(path: Path) -> Iterator[Row]:
    lower = path.name.lower()
    if lower.endswith(".parquet"):
        yield from _read_parquet(path)
    elif lower.endswith((".jsonl", ".jsonl.gz", ".json")):
        yield from _read_json(path)
    elif lower.endswith((".csv", ".tsv")):
        yield from _read_csv(path)
    else:
        raise MedsynError(f"{path.name}: cannot read this kind of file; give {', '.join(FILE_SUFFIXES)}")


def _decode(path: Path, data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise MedsynError(
            f"{path.name} is not UTF-8 text (byte 0x{data[err.start]:02x} at offset {err.start}); re-save it as "
            f"UTF-8, e.g. iconv -f cp1251 -t utf-8 {path.name} > {_stem(path)}.utf8{path.suffix}"
        ) from None


def _read_csv(path: Path) -> Iterator[Row]:
    text = _decode(path, path.read_bytes())
    sample = text[:65536]
    if path.name.lower().endswith(".tsv"):
        delimiter = "\t"
    else:
        try:
            delimiter = csv.Sniffer().sniff(sample.split("\n", 1)[0], delimiters=",;\t|").delimiter
        except csv.Error:
            delimiter = ","
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
    for i, row in enumerate(reader, 2):  # row 1 is the header
        yield f"{path.name}:{i}", {str(k).strip(): v for k, v in row.items() if k is not None}


def _read_json(path: Path) -> Iterator[Row]:
    import gzip

    data = path.read_bytes()
    if path.name.lower().endswith(".gz"):
        data = gzip.decompress(data)
    text = _decode(path, data)
    stripped = text.lstrip()
    if path.name.lower().endswith(".json") and stripped.startswith("["):
        try:
            rows = json.loads(stripped)
        except json.JSONDecodeError as err:
            raise MedsynError(
                f"{path.name} is not valid JSON ({err.msg} at line {err.lineno}); fix the file"
            ) from None
        for i, row in enumerate(rows, 1):
            yield f"{path.name}:{i}", _object(path, i, row)
        return
    for i, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise MedsynError(f"{path.name}:{i} is not valid JSON ({err.msg}); fix or remove that line") from None
        yield f"{path.name}:{i}", _object(path, i, row)


def _object(path: Path, i: int, row: Any) -> dict[str, Any]:
    if not isinstance(row, dict):
        raise MedsynError(f"{path.name}:{i} is a JSON {type(row).__name__}, not an object with a text and a code")
    return row


def _read_parquet(path: Path) -> Iterator[Row]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as err:  # pyarrow's errors name the broken part
        raise MedsynError(f"{path.name} is not a readable parquet file ({err})") from None
    for i, row in enumerate(table.to_pylist(), 1):
        yield f"{path.name}:{i}", row


def _from_datasets(source: str, on_disk: bool = False) -> list[Row]:
    """Rows of a Hub dataset (``user/name[:split]``) or of a ``save_to_disk`` folder, through ``datasets``."""
    import datasets

    repo, _, split = source.partition(":") if not on_disk else (source, "", "")
    try:
        if on_disk:
            loaded = datasets.load_from_disk(repo)
            if isinstance(loaded, datasets.DatasetDict):
                split = "train" if "train" in loaded else next(iter(loaded))
                loaded = loaded[split]
        else:
            loaded = datasets.load_dataset(repo, split=split or "train")
    except Exception as err:  # offline, unknown, gated: datasets raises many kinds
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise MedsynError(
            f"cannot read the dataset {source!r} ({first}); check the id and split, log in with 'hf auth login' for "
            "a private one, or download it into a folder and pass the folder"
        ) from None
    label = Path(source).name if on_disk else source  # a folder is named, never located
    return [(f"{label}:{i}", row) for i, row in enumerate(loaded, 1)]


# ----------------------------------------------------------------------------------------------- validating


def _column(columns: list[str], given: str | None, names: tuple[str, ...], what: str, label: str) -> str | None:
    if given is not None:
        if given not in columns:
            raise MedsynError(f"{label} has no column {given!r} for the {what}; its columns: {', '.join(columns)}")
        return given
    lowered = {c.strip().lower(): c for c in columns}
    return next((lowered[n] for n in names if n in lowered), None)


def _validate(
    source: str,
    name: str,
    files: list[tuple[str, list[Row]]],
    text_column: str | None,
    code_column: str | None,
    min_code_notes: int,
) -> Corpus:
    from medsyn.icd10 import load_icd10, normalize_code

    icd = load_icd10()
    report = CorpusReport(min_code_notes=min_code_notes)
    notes: list[dict[str, Any]] = []
    seen_ids: set[str] = set()
    seen_texts: set[str] = set()
    unknown: Counter[str] = Counter()
    for label, rows in files:
        if not rows:
            continue
        columns = list(rows[0][1])
        text_col = _column(columns, text_column, TEXT_COLUMNS, "note text", label)
        code_col = _column(columns, code_column, CODE_COLUMNS, "ICD-10 code", label)
        if text_col is None or code_col is None:
            missing = " and ".join(w for w, c in (("a text", text_col), ("a code", code_col)) if c is None)
            raise MedsynError(
                f"{label} has no recognisable {missing} column (its columns: {', '.join(columns)}); name them with "
                "--text_column and --code_column"
            )
        id_col = _column(columns, None, ID_COLUMNS, "id", label)
        sex_col = _column(columns, None, SEX_COLUMNS, "sex", label)
        age_col = _column(columns, None, AGE_COLUMNS, "age", label)
        used = {"text": text_col, "code": code_col, "id": id_col, "sex": sex_col, "age": age_col}
        unused = [c for c in columns if c not in used.values()]
        report.columns.append(
            f"{label}: columns read as {', '.join(f'{k}={v}' for k, v in used.items() if v)}"
            + (f"; not read: {', '.join(unused)} (name a sex or age column sex/age to use it)" if unused else "")
        )
        for where, row in rows:
            report.rows += 1
            raw_id = row.get(id_col) if id_col else None
            note_id = "" if raw_id is None else str(raw_id).strip()
            note_id = note_id or f"row-{report.rows}"  # a running number: a file name in an id can say too much
            where = note_id if id_col and note_id else where
            text = " ".join(str(row.get(text_col) or "").split())
            raw_code = str(row.get(code_col) or "").strip()
            if not text:
                report.skip("an empty text", where)
                continue
            if not raw_code:
                report.skip("no code", where)
                continue
            code = normalize_code(raw_code)
            if code not in icd.entries or icd.entries[code].level not in ("category", "code"):
                unknown[code] += 1
                continue
            if note_id in seen_ids:
                report.skip("a duplicate id", where)
                continue
            if text in seen_texts:
                report.skip("a duplicate text", where)
                continue
            seen_ids.add(note_id)
            seen_texts.add(text)
            note: dict[str, Any] = {"id": note_id, "text": text, "code": code}
            if sex_col and (sex := _SEX.get(str(row.get(sex_col) or "").strip().lower())):
                note["sex"] = sex
            if age_col and (age := _age(row.get(age_col))) is not None:
                note["age"] = age
            notes.append(note)
            report.per_code[code] += 1
    report.unknown_codes = {code: icd.closest(code, 3) for code in sorted(unknown)}
    if not notes:
        problems = "; ".join(report.lines()[1:]) or "it has no rows"
        raise MedsynError(f"notes source {name!r} gave no usable note ({problems})")
    return Corpus(source, name, notes, report)


def _age(value: Any) -> int | None:
    try:
        age = int(float(str(value).strip().replace(",", ".")))
    except ValueError:
        return None
    return age if 0 <= age <= 120 else None
