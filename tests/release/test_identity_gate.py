"""The release's identity gate and the real notes it checks against (RuMedTop3 or the user's corpus)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from medsyn.corpus import load_corpus
from medsyn.errors import ReleaseError
from medsyn.filters.identity import PersonNames, mask
from medsyn.release.notes import DatasetReleaseArgs, identity_gate, real_notes

FIXTURE = Path(__file__).parents[1] / "fixtures" / "own_notes.csv"
CLEAN = "Жалобы на давящую боль за грудиной и одышку при ходьбе. Симптомы в течение недели. Аллергии нет."
PHONE = "+7 (912) 345-67-89"


@pytest.fixture(scope="module")
def own():
    return load_corpus(FIXTURE, log=False)


@pytest.fixture(scope="module")
def names(own) -> PersonNames:
    return PersonNames.from_texts(own.texts())


def test_planted_phone_and_name_are_caught_clean_note_is_not(names):
    """A phone number and a name from the real notes are caught, each by its row id; a clean note passes."""
    rows = [
        {"id": "phone", "note": f"{CLEAN} Телефон {PHONE}."},
        {"id": "name", "note": f"{CLEAN} Осмотрен терапевтом Смирновой."},
        {"id": "clean", "note": CLEAN},
    ]
    hits = identity_gate(rows, names)
    assert set(hits) == {"phone", "name"}
    assert hits["phone"] == [f"phone number {mask(PHONE)}"]
    assert hits["name"] == ["name from the real notes С········"]


def test_the_gate_repeats_nothing_it_found(names):
    """What the gate reports is masked: neither the number nor the surname appears in it."""
    rows = [{"id": "both", "note": f"Пациент Кузнецову П.С. звонить {PHONE}, ivanov@mail.ru"}]
    hits = identity_gate(rows, names)
    text = json.dumps(hits, ensure_ascii=False)
    assert len(hits["both"]) == 3
    assert PHONE not in text and "345-67-89" not in text and "Кузнецов" not in text and "ivanov@mail.ru" not in text


def test_names_not_in_the_real_notes_pass(names):
    """A surname nobody in the real notes has is not a hit; the gate knows the people of the notes it was given."""
    rows = [{"id": "other", "note": f"{CLEAN} Осмотрен терапевтом Ивановым И.И."}]
    assert identity_gate(rows, names) == {}
    learnt = PersonNames.from_texts(["Осмотрен Ивановым И.И."])
    assert identity_gate(rows, learnt) == {"other": ["name from the real notes И·······"]}


def test_every_fixture_note_but_two_passes(own, names):
    """Run over the real fixture notes themselves, the gate stops rows P0004 and P0021 only."""
    rows = [{"id": n["id"], "note": n["text"]} for n in own.notes]
    assert set(identity_gate(rows, names)) == {"P0004", "P0021"}


def test_real_notes_default_is_both_rumedtop3_splits():
    """With the default --notes, the gate checks train and dev, and the card says nothing of a user corpus."""
    from medsyn.data import load_rumedtop3

    notes, described = real_notes(DatasetReleaseArgs(source="gen"), {"seed": 0})
    assert described is None
    assert len(notes) == len(load_rumedtop3("train")) + len(load_rumedtop3("dev"))


def test_real_notes_refuses_the_default_for_a_corpus_job():
    """A folder generated from a user's notes cannot be released against RuMedTop3: the gate would not see them."""
    with pytest.raises(ReleaseError, match="generated from the notes 'clinic', not RuMedTop3.*--notes FILE"):
        real_notes(DatasetReleaseArgs(source="gen"), {"notes": {"name": "clinic", "fingerprint": "x"}})


def test_real_notes_of_a_user_corpus(own, caplog):
    """--notes FILE gives the corpus' notes and a description by name and fingerprint, never by path."""
    spec = {"notes": {"name": "clinic", "fingerprint": own.fingerprint}}
    with caplog.at_level(logging.WARNING, logger="medsyn.release.notes"):
        notes, described = real_notes(DatasetReleaseArgs(source="gen", notes=str(FIXTURE)), spec)
    assert notes == own.notes
    chars = sorted(len(n["text"]) for n in own.notes)
    assert described == {"name": "clinic", "fingerprint": own.fingerprint, "chars_median": chars[len(chars) // 2]}
    assert "own_notes" not in json.dumps(described, ensure_ascii=False)


def test_real_notes_name_and_fingerprint_mismatch(own):
    """--notes_name wins over the job's name; notes other than the job's are refused, since the gate would miss
    the job's notes that they lack."""
    from medsyn.errors import ReleaseError

    named = {"notes": {"name": "clinic", "fingerprint": own.fingerprint}}
    args = DatasetReleaseArgs(source="gen", notes=str(FIXTURE), notes_name="ward 3")
    assert real_notes(args, named)[1]["name"] == "ward 3"
    other = {"notes": {"name": "clinic", "fingerprint": "0000000000000000"}}
    with pytest.raises(ReleaseError, match="are not the notes gen was generated from"):
        real_notes(args, other)
    _, unnamed = real_notes(DatasetReleaseArgs(source="gen", notes=str(FIXTURE)), {})
    assert unnamed["name"] == "private notes"
