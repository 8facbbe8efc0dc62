"""The graph of a user's corpus: codes finer than their category get their own symptom and example edges."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from medsyn.corpus import load_corpus
from medsyn.kg import MedicalKG, build_graph

FIXTURE = Path(__file__).parent / "fixtures" / "own_notes.csv"


@pytest.fixture(scope="module")
def own_corpus():
    return load_corpus(FIXTURE, name="clinic", log=False)


@pytest.fixture(scope="module")
def own_kg(own_corpus):
    return build_graph(corpus=own_corpus)


def _counts(kg, code):
    return {e.symptom: e.count for e in kg.symptoms(code)}


def test_codes_get_their_own_edges(own_kg):
    """I21.0 and I21.4 have their own has_symptom and has_example edges; the category and unseen codes do not."""
    for code in ("I21.0", "I21.4", "I50.0", "I50.1", "M54.5", "J45.0", "I20.0"):
        assert own_kg.has_own(code) and own_kg.has_own(code, "has_example"), code
    assert not own_kg.has_own("I21")  # a category's edges are the roll-up, not «its own»
    assert not own_kg.has_own("I21.9") and not own_kg.has_own("I21.9", "has_example")
    assert own_kg.categories() == ["I20", "I21", "I50", "J45", "M54"]


def test_own_symptoms_differ_from_the_category(own_kg):
    """symptoms('I21.0') are I21.0's own edges, unlike I21's and I21.4's."""
    own0, own4, category = own_kg.symptoms("I21.0"), own_kg.symptoms("I21.4"), own_kg.symptoms("I21")
    assert own0 and own4 and own0 != category and own4 != category and own0 != own4
    assert "тошнота" in {e.symptom for e in own0} and "тошнота" not in {e.symptom for e in own4}
    assert "потливость" in {e.symptom for e in own4} and "потливость" not in {e.symptom for e in own0}
    assert [e.weight for e in own0] == sorted((e.weight for e in own0), reverse=True)


def test_category_rolls_up_its_codes(own_kg):
    """Every I21 note is coded I21.0 or I21.4, so the category's count of a symptom is the sum of the codes' counts."""
    category, own0, own4 = _counts(own_kg, "I21"), _counts(own_kg, "I21.0"), _counts(own_kg, "I21.4")
    assert set(category) == set(own0) | set(own4)
    for symptom, count in category.items():
        assert count == own0.get(symptom, 0) + own4.get(symptom, 0), symptom


def test_a_code_without_notes_falls_back_to_its_category(own_kg):
    """I21.9 has no notes of its own: its symptoms and examples are the category's."""
    assert own_kg.symptoms("I21.9") == own_kg.symptoms("I21")
    assert own_kg.examples("I21.9") == own_kg.examples("I21")


def test_code_notes_counts_each_codes_own_notes(own_kg):
    """code_notes counts the notes each finer code has, from the category or from any code under it."""
    assert own_kg.code_notes("I21") == {"I21.0": 10, "I21.4": 9}
    assert own_kg.code_notes("I21.0") == own_kg.code_notes("I21")
    assert own_kg.code_notes("I50") == {"I50.0": 9, "I50.1": 6}
    assert own_kg.code_notes("I20") == {"I20.0": 1}


def test_code_notes_is_empty_for_category_coded_notes(kg):
    """RuMedTop3 codes notes by category only, so its graph has no code with notes of its own."""
    assert kg.code_notes("M54") == {}
    assert not kg.has_own("M54.5")


def test_examples_of_a_code_are_its_notes_only(own_kg):
    """examples('I21.0') are the ten I21.0 notes; the category's are the notes of both codes."""
    own = own_kg.examples("I21.0")
    assert {e["code"] for e in own} == {"I21.0"}
    assert sorted(e["id"] for e in own) == [f"P{i:04d}" for i in range(1, 11)]
    category = own_kg.examples("I21")
    assert len(category) == 19 and {e["code"] for e in category} == {"I21.0", "I21.4"}
    assert {e["id"] for e in own_kg.examples("I21.4")} == {f"P{i:04d}" for i in range(11, 20)}


def test_notes_keep_their_full_code(own_kg, own_corpus):
    """Every kept note is in the graph with the code the corpus gave it."""
    held = {n["id"]: n["code"] for n in own_kg.notes()}
    assert held == {n["id"]: n["code"] for n in own_corpus.notes}


def test_graph_records_the_corpus_without_a_path(own_kg, own_corpus):
    """kg.corpus holds the given name, the fingerprint and the size; nothing in the meta names the file."""
    recorded = own_kg.corpus
    assert recorded["name"] == "clinic"
    assert recorded["fingerprint"] == own_corpus.fingerprint
    assert recorded["notes"] == 52 and recorded["rows"] == 57 and recorded["codes"] == 7
    assert own_kg.meta["sources"]["notes"] == "clinic: 52 notes, 7 codes"
    meta = json.dumps(own_kg.meta, ensure_ascii=False)
    assert str(FIXTURE.parent) not in meta and "own_notes" not in meta


def test_own_edges_survive_save_and_load(own_kg, tmp_path):
    """A saved and reloaded graph answers the same for codes and keeps the corpus record."""
    loaded = MedicalKG.load(own_kg.save(tmp_path / "kg.json"))
    assert loaded.fingerprint() == own_kg.fingerprint()
    assert loaded.symptoms("I21.0") == own_kg.symptoms("I21.0")
    assert loaded.code_notes("I21") == {"I21.0": 10, "I21.4": 9}
    assert loaded.corpus == own_kg.corpus


def test_default_corpus_builds_the_default_graph(kg):
    """build_graph(corpus=rumedtop3:train) is the same graph as build_graph(), with no user corpus recorded."""
    built = build_graph(corpus=load_corpus("rumedtop3:train", log=False))
    assert built.fingerprint() == kg.fingerprint()
    assert built.corpus is None and kg.corpus is None
