from __future__ import annotations

import random

import pytest

from medsyn.finetune.data import CONTINUE_PREFIX, build_instruction_rows, load_instruction_split, main
from medsyn.prompts import INSTRUCTION_CONTINUE, INSTRUCTION_WRITE


def test_rows_follow_the_papers_form(real_notes, fake_extractor):
    rows, counts = build_instruction_rows(real_notes[:200], fake_extractor, random.Random(0), continue_fraction=0.5)
    write = [r for r in rows if r["kind"] == "write"]
    cont = [r for r in rows if r["kind"] == "continue"]
    assert write and cont
    row = write[0]
    assert row["instruction"] == INSTRUCTION_WRITE
    assert row["input"].startswith("пациент, пол: ") and "возраст: " in row["input"]
    assert "жалобы: " + ", ".join(row["symptoms"]) in row["input"]
    assert row["sex"] in ("M", "F") and 18 <= row["age"] <= 100
    note = next(n for n in real_notes if n["id"] + "-write" == row["id"])
    assert row["output"] == " ".join(note["text"].split())
    c = cont[0]
    assert c["instruction"] == INSTRUCTION_CONTINUE
    start = c["input"].split(CONTINUE_PREFIX, 1)[1]
    full = next(r for r in write if r["id"] == c["id"].replace("-continue", "-write"))["output"]
    assert full.startswith(start) and full.endswith(c["output"]) and len(c["output"]) >= 20
    assert counts["write"] == len(write) and counts["continue"] == len(cont)
    assert counts["notes"] == 200
    assert counts["write"] + counts["dropped_short_output"] + counts["dropped_no_symptoms"] == 200


def test_short_and_symptomless_notes_are_dropped_and_counted(fake_extractor):
    notes = [
        {"id": "a", "text": "Кашель.", "code": "J06"},
        {"id": "b", "text": "Пришла на плановый осмотр, без особенностей.", "code": "Z00"},
        {"id": "c", "text": "Кашель и температура 38 третий день, слабость.", "code": "J06"},
    ]
    rows, counts = build_instruction_rows(notes, fake_extractor, random.Random(0), continue_fraction=0.0)
    assert [r["id"] for r in rows] == ["c-write"]
    assert counts["dropped_short_output"] == 1 and counts["dropped_no_symptoms"] == 1


def test_rows_are_reproducible(real_notes, fake_extractor):
    a, _ = build_instruction_rows(real_notes[:50], fake_extractor, random.Random(3))
    b, _ = build_instruction_rows(real_notes[:50], fake_extractor, random.Random(3))
    assert a == b


def test_dataset_folder_has_parquet_and_card(instruction_dir):
    from huggingface_hub import DatasetCard

    rows = load_instruction_split(instruction_dir, "train")
    assert rows and set(rows[0]) >= {"instruction", "input", "output"}
    card = DatasetCard.load(instruction_dir / "README.md")
    assert card.data.to_dict()["configs"][0]["data_files"][0]["path"] == "data/train.parquet"
    assert "dropped_no_symptoms" in card.text
    with pytest.raises(ValueError, match="medsyn data instructions"):
        load_instruction_split(instruction_dir, "test")


def test_main_builds_from_the_graph(tmp_path, kg_path):
    out = tmp_path / "ds"
    assert main(["--out", str(out), "--graph", str(kg_path), "--max_notes", "40", "--splits", "dev"]) == 0
    rows = load_instruction_split(out, "dev")
    assert 10 < len(rows) <= 80 and all(r["symptoms"] for r in rows)


def test_the_cards_command_rebuilds_the_same_rows(tmp_path, kg_path):
    import re
    import shlex

    out = tmp_path / "ds"
    assert main(["--out", str(out), "--graph", str(kg_path), "--max_notes", "12", "--splits", "train", "dev"]) == 0
    command = re.search(r"^medsyn data instructions .*$", (out / "README.md").read_text(), re.M).group(0)
    argv = shlex.split(command)[3:]
    assert argv[argv.index("--splits") + 1 : argv.index("--splits") + 3] == ["train", "dev"]
    again = tmp_path / "again"
    argv[argv.index("--out") + 1] = str(again)
    assert main(argv) == 0
    for split in ("train", "dev"):
        assert load_instruction_split(again, split) == load_instruction_split(out, split)
