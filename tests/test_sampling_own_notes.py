"""Sampling from a graph of a user's corpus: codes drawn by their own notes, with their own symptoms and examples."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from medsyn.corpus import load_corpus
from medsyn.kg import build_graph
from medsyn.sampling import TaskSampler

FIXTURE = Path(__file__).parent / "fixtures" / "own_notes.csv"


@pytest.fixture(scope="module")
def own_kg():
    return build_graph(corpus=load_corpus(FIXTURE, log=False))


def _example_codes(kg, category):
    return {e["id"]: e["code"] for e in kg.examples(category)}


def test_category_draws_only_codes_with_notes(own_kg):
    """codes=['I21'] draws I21.0 and I21.4, the codes with notes, never I21.1-I21.9."""
    tasks = TaskSampler(own_kg, seed=1, codes=["I21"]).sample(200)
    drawn = Counter(t.icd10_code for t in tasks)
    assert set(drawn) == {"I21.0", "I21.4"}
    assert {t.category for t in tasks} == {"I21"}


def test_codes_are_drawn_by_their_note_counts(own_kg):
    """I50.0 has 9 notes and I50.1 6: they get about 60% and 40% of I50's tasks."""
    tasks = TaskSampler(own_kg, seed=3, codes=["I50"]).sample(1000)
    share = Counter(t.icd10_code for t in tasks)["I50.0"] / len(tasks)
    assert 0.55 <= share <= 0.65


def test_symptoms_come_from_the_chosen_codes_own_edges(own_kg):
    """Each task's symptoms are edges of its own code, not symptoms only the other code of the category has."""
    own = {c: {e.symptom for e in own_kg.symptoms(c)} for c in ("I21.0", "I21.4")}
    tasks = TaskSampler(own_kg, seed=2, codes=["I21"]).sample(200)
    for t in tasks:
        assert t.symptoms and set(t.symptoms) <= own[t.icd10_code], (t.icd10_code, t.symptoms)
    # «потливость» is an I21.4 symptom only: no I21.0 task ever gets it
    assert not any("потливость" in t.symptoms for t in tasks if t.icd10_code == "I21.0")
    assert any("потливость" in t.symptoms for t in tasks if t.icd10_code == "I21.4")


def test_style_examples_are_of_the_same_code(own_kg):
    """A task's style example is a real note of the code it was drawn for."""
    codes = _example_codes(own_kg, "I21")
    tasks = TaskSampler(own_kg, seed=4, codes=["I21"]).sample(100)
    assert all(codes[t.example_id] == t.icd10_code for t in tasks)
    assert {t.example_id for t in tasks if t.icd10_code == "I21.0"} <= {f"P{i:04d}" for i in range(1, 11)}


def test_one_code_asked_for_draws_only_it(own_kg):
    """codes=['I21.4'] draws I21.4 only, with its own notes as examples."""
    codes = _example_codes(own_kg, "I21")
    tasks = TaskSampler(own_kg, seed=5, codes=["I21.4"]).sample(60)
    assert {t.icd10_code for t in tasks} == {"I21.4"}
    assert {codes[t.example_id] for t in tasks} == {"I21.4"}


def test_all_categories_draw_their_coded_codes(own_kg):
    """Without codes, every category's tasks are for codes that real notes gave it."""
    tasks = TaskSampler(own_kg, seed=6).sample(300)
    assert {t.icd10_code for t in tasks} == {"I20.0", "I21.0", "I21.4", "I50.0", "I50.1", "J45.0", "M54.5"}


def test_same_seed_same_tasks(own_kg):
    """Draws from a corpus graph stay deterministic for a seed."""
    a = TaskSampler(own_kg, seed=7, codes=["I21"]).sample(30)
    b = TaskSampler(own_kg, seed=7, codes=["I21"]).sample(30)
    assert [t.to_dict() for t in a] == [t.to_dict() for t in b]


@pytest.mark.parametrize("asked", ["I21,4", "i21.4"])
def test_a_code_asked_for_as_written_is_normalised(own_kg, asked):
    """A code written with a comma or in lower case means the same code."""
    tasks = TaskSampler(own_kg, seed=5, codes=[asked]).sample(30)
    assert {t.icd10_code for t in tasks} == {"I21.4"}
