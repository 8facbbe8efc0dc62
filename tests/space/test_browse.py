import shutil

import pytest

from medsyn.errors import MedsynError
from medsyn.space import browse


def test_a_generated_folder_loads_with_both_configs(notes_folder):
    from datasets import load_dataset

    kept = load_dataset(str(notes_folder), split="train")
    rejected = load_dataset(str(notes_folder), "rejected", split="train")
    assert len(kept) == 3 and len(rejected) == 3 and all(kept["kept"]) and not any(rejected["kept"])


def test_list_filter_and_find(notes_folder):
    rows = browse.list_notes(str(notes_folder), "kept")
    assert len(rows) == 3 and set(browse.TABLE_COLUMNS) <= set(rows[0])
    only = browse.list_notes(str(notes_folder), "rejected", code="j06")
    assert only and all(r["icd10_code"].startswith("J06") for r in only)
    note = browse.find_note(str(notes_folder), "kept", rows[0]["id"])
    assert note["note"] is not None and note["symptoms"]
    with pytest.raises(MedsynError, match="no note with id"):
        browse.find_note(str(notes_folder), "kept", "nope")


def test_missing_sources_say_what_to_do(tmp_path, notes_folder):
    with pytest.raises(MedsynError, match="no dataset folder at ./nothing-here"):
        browse.open_notes("./nothing-here")
    with pytest.raises(MedsynError, match="releases/nothing-here is no folder here, and the Hub could not open it"):
        browse.open_notes("releases/nothing-here")
    with pytest.raises(MedsynError, match="enter a dataset"):
        browse.open_notes("")
    only_rejected = tmp_path / "only-rejected"
    shutil.copytree(notes_folder, only_rejected)
    shutil.rmtree(only_rejected / "data")
    with pytest.raises(MedsynError, match="has no kept notes; choose rejected notes"):
        browse.open_notes(str(only_rejected))
    (tmp_path / "empty").mkdir()
    with pytest.raises(MedsynError, match="holds no notes"):
        browse.open_notes(str(tmp_path / "empty"))


def test_the_release_opens_from_the_repository_or_else_from_the_hub(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert browse.start_source("releases/ru-notes") == "medsyn/ru-notes"  # an installed Space has no releases/
    (tmp_path / "releases" / "ru-notes").mkdir(parents=True)
    assert browse.start_source("releases/ru-notes") == "releases/ru-notes"
    assert browse.start_source("outputs/mine") == "outputs/mine"  # anything else is opened as given
