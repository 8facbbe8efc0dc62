"""The releases shipped in the repository (`releases/`) are what `load_dataset("medsyn/ru-notes")` will serve."""

from __future__ import annotations

from pathlib import Path

import pytest

RELEASES = Path(__file__).resolve().parents[2] / "releases"


@pytest.mark.skipif(not (RELEASES / "ru-notes").is_dir(), reason="no releases/ru-notes in this checkout")
def test_the_notes_release_validates_loads_and_covers_every_category(tmp_path):
    from datasets import load_dataset
    from huggingface_hub import DatasetCard

    from medsyn.data import load_rumedtop3
    from medsyn.release.notes import validate_dataset_release

    folder = RELEASES / "ru-notes"
    report = validate_dataset_release(folder)
    notes = load_dataset(str(folder), split="train", cache_dir=str(tmp_path))
    assert report["default"]["rows"] == len(notes) >= 2000 and all(notes["kept"])
    assert {r["code"][:3] for r in load_rumedtop3("train")} == set(notes["category"])  # all 105 categories
    assert "prompt" not in notes.column_names and "endpoint" not in notes.column_names
    assert max(notes["copy_score"]) < 0.7
    card = DatasetCard.load(folder / "README.md")
    assert card.data.license == "gemma" and f"| `default` | {len(notes)} |" in card.text
    real = {n["text"] for split in ("train", "dev") for n in load_rumedtop3(split) if len(n["text"]) > 40}
    assert not real & set(notes["note"])  # no real note ships as a synthetic one


@pytest.mark.skipif(not (RELEASES / "ru-icd10-kg").is_dir(), reason="no releases/ru-icd10-kg in this checkout")
def test_the_graph_release_validates_and_opens_as_a_graph(tmp_path, caplog):
    from datasets import load_dataset

    from medsyn.cli import main
    from medsyn.release.kg import validate_kg_release

    folder = RELEASES / "ru-icd10-kg"
    validate_kg_release(folder)
    edges = load_dataset(str(folder), "symptom_edges", split="train", cache_dir=str(tmp_path))
    assert {"category", "symptom", "count", "weight"} <= set(edges.column_names) and len(set(edges["category"])) == 105
    assert main(["kg", "show", "M54", "--graph", str(folder)]) == 0
