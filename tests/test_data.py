"""Tests of medsyn.data: JSON-lines reading and writing, RuMedTop3 and the packaged reference notes."""

from __future__ import annotations

import gzip
import json
from collections import Counter

import pytest

from medsyn.data import (
    load_reference,
    load_rumedtop3,
    load_symptom_names,
    read_jsonl,
    read_rumedtop3_file,
    write_jsonl,
)
from medsyn.errors import MedsynError

ROWS = [
    {"idx": "a1", "symptoms": "Жалобы на боль в пояснице, «тянущую».", "code": "M54"},
    {"idx": "a2", "symptoms": "Кашель, насморк 3 дня.", "code": "J06", "extra": [1, None, {"k": "в"}]},
]


def test_write_then_read_jsonl_round_trips(tmp_path):
    path = tmp_path / "rows.jsonl"
    assert write_jsonl(path, iter(ROWS)) == 2
    assert list(read_jsonl(path)) == ROWS
    text = path.read_text(encoding="utf-8")
    assert "Жалобы" in text and "\\u" not in text  # UTF-8, not ASCII-escaped
    assert text.count("\n") == 2 and text.endswith("\n")
    assert write_jsonl(str(tmp_path / "empty.jsonl"), []) == 0
    assert list(read_jsonl(tmp_path / "empty.jsonl")) == []


def test_read_jsonl_reads_a_gzip_file(tmp_path):
    path = tmp_path / "rows.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        for row in ROWS:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    assert list(read_jsonl(path)) == ROWS
    assert read_rumedtop3_file(path)[0] == {"id": "a1", "text": "Жалобы на боль в пояснице, «тянущую».", "code": "M54"}


def test_read_jsonl_skips_blank_lines(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text('\n{"a": 1}\n   \n{"a": 2}\n\n', encoding="utf-8")
    assert list(read_jsonl(path)) == [{"a": 1}, {"a": 2}]


def test_a_malformed_line_names_its_file_and_line(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text('{"a": 1}\n\n{"a": 2,\n{"a": 3}\n', encoding="utf-8")
    rows = read_jsonl(path)
    assert next(rows) == {"a": 1}  # rows before the bad line are read
    with pytest.raises(MedsynError) as err:
        next(rows)
    assert str(err.value).startswith(f"{path}:3 is not valid JSON (")
    assert str(err.value).endswith("); fix or remove that line")
    assert isinstance(err.value.__cause__, json.JSONDecodeError)


def test_read_rumedtop3_file_renames_fields_and_needs_them(tmp_path):
    path = tmp_path / "notes.jsonl"
    write_jsonl(path, [{"symptoms": "  Слабость. ", "code": "E11"}, ROWS[0]])
    assert read_rumedtop3_file(path) == [
        {"id": "0", "text": "Слабость.", "code": "E11"},
        {"id": "a1", "text": ROWS[0]["symptoms"], "code": "M54"},
    ]
    write_jsonl(path, [ROWS[0], {"idx": "b", "note": "Кашель.", "code": "J06"}])
    with pytest.raises(MedsynError) as err:
        read_rumedtop3_file(path)
    assert str(err.value) == (
        f"{path}: row 1 has keys ['code', 'idx', 'note'], expected RuMedTop3's 'idx', 'symptoms' (the note) and 'code'"
    )


def test_load_rumedtop3_splits():
    train, dev = load_rumedtop3("train"), load_rumedtop3("dev")
    assert (len(train), len(dev)) == (4690, 848)
    assert load_rumedtop3() == train
    for notes in (train, dev):
        assert all(set(n) == {"id", "text", "code"} for n in notes)
        assert all(n["text"] and n["text"] == n["text"].strip() for n in notes)
        assert all(len(n["code"]) == 3 and n["code"][0].isalpha() for n in notes)
        assert len({n["id"] for n in notes}) == len(notes)
    assert not {n["id"] for n in train} & {n["id"] for n in dev}
    assert {n["code"] for n in dev} <= {n["code"] for n in train}
    assert len({n["code"] for n in train}) == 105
    assert Counter(n["code"] for n in train).most_common(1)[0][1] > 100


def test_load_rumedtop3_refuses_other_splits():
    with pytest.raises(ValueError, match="RuMedTop3 split must be 'train' or 'dev', got 'test'"):
        load_rumedtop3("test")


def test_load_reference_reads_the_packaged_gpt4_notes():
    notes = load_reference("gpt4")
    assert len(notes) == 2378
    assert notes == load_reference()
    assert all(set(n) == {"id", "text", "code"} and n["text"] for n in notes)
    train_codes = {n["code"] for n in load_rumedtop3("train")}
    assert {n["code"][:3] for n in notes} <= train_codes


def test_load_reference_names_the_sets_it_has():
    with pytest.raises(MedsynError) as err:
        load_reference("gpt5")
    assert str(err.value) == "unknown reference notes 'gpt5'; choose from ['gpt4']"


def test_load_symptom_names():
    names = load_symptom_names()
    assert len(names) == 141
    assert len(set(names)) == len(names)
    assert all(n == n.strip().lower() and n for n in names)
