"""split_notes: a user's notes split into train and dev by the hash of their id, so the split never moves."""

from __future__ import annotations

import random
from pathlib import Path

from medsyn.finetune.data import split_notes

FIXTURE = Path(__file__).parents[1] / "fixtures" / "own_notes.csv"


def _notes(n: int, start: int = 0) -> list[dict[str, str]]:
    return [{"id": f"N{i:05d}", "text": f"жалобы {i}", "code": "M54.5"} for i in range(start, start + n)]


def _ids(split: dict[str, list[dict[str, str]]]) -> dict[str, set[str]]:
    return {name: {n["id"] for n in notes} for name, notes in split.items()}


def test_every_note_lands_in_one_split():
    """train and dev partition the notes, each in the order given."""
    notes = _notes(500)
    split = split_notes(notes, 0.2)
    assert set(split) == {"train", "dev"}
    assert len(split["train"]) + len(split["dev"]) == 500
    assert not _ids(split)["train"] & _ids(split)["dev"]
    for part in split.values():
        assert part == [n for n in notes if n in part]


def test_dev_fraction_is_respected():
    """About dev_fraction of the notes go to dev; 0 puts none there."""
    notes = _notes(4000)
    share = len(split_notes(notes, 0.1)["dev"]) / len(notes)
    assert 0.08 <= share <= 0.12
    assert 0.27 <= len(split_notes(notes, 0.3)["dev"]) / len(notes) <= 0.33
    assert split_notes(notes, 0.0)["dev"] == []


def test_deterministic_by_id_not_order_or_text():
    """The same ids split the same way whatever their order or text."""
    notes = _notes(300)
    first = _ids(split_notes(notes, 0.25))
    shuffled = notes[:]
    random.Random(0).shuffle(shuffled)
    assert _ids(split_notes(shuffled, 0.25)) == first
    retexted = [dict(n, text="другой текст " + n["id"]) for n in notes]
    assert _ids(split_notes(retexted, 0.25)) == first


def test_adding_notes_moves_none():
    """Notes added to a corpus take their own place; every earlier note stays where it was."""
    old = _ids(split_notes(_notes(300), 0.2))
    new = _ids(split_notes(_notes(300) + _notes(700, start=300), 0.2))
    assert old["train"] <= new["train"] and old["dev"] <= new["dev"]
    assert new["dev"] - old["dev"]  # some of the new notes are dev


def test_a_larger_fraction_only_adds_to_dev():
    """Raising dev_fraction moves notes from train to dev, never back."""
    notes = _notes(1000)
    small, large = _ids(split_notes(notes, 0.1)), _ids(split_notes(notes, 0.3))
    assert small["dev"] < large["dev"]


def test_fixture_split_is_stable():
    """The fixture corpus splits the same way twice, and the same as its first half does for those notes."""
    from medsyn.corpus import load_corpus

    notes = load_corpus(FIXTURE, log=False).notes
    whole = _ids(split_notes(notes, 0.3))
    assert whole == _ids(split_notes(notes, 0.3)) and whole["dev"] and whole["train"]
    half = _ids(split_notes(notes[: len(notes) // 2], 0.3))
    assert half["dev"] <= whole["dev"] and half["train"] <= whole["train"]
