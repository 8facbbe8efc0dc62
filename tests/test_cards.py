"""Tests of medsyn.cards: the licence of a model's outputs, the Hub size labels and rendering a card template."""

from __future__ import annotations

import pytest
import yaml

from medsyn.cards import CARD_DIR, model_license, render_card, size_category


def _model_folder(tmp_path, license_value: str | None):
    folder = tmp_path / "my-model"
    folder.mkdir()
    header = f"license: {license_value}\n" if license_value else "language: ru\n"
    (folder / "README.md").write_text(f"---\n{header}---\n\n# A model\n", encoding="utf-8")
    return folder


@pytest.mark.parametrize("model", [None, "", "gemma-3-270m"])
def test_the_embedded_model_is_under_the_gemma_terms(model):
    lic = model_license(model)
    assert lic["license"] == "gemma"
    assert lic["license_name"] == "Gemma Terms of Use"
    assert lic["license_link"] == "https://ai.google.dev/gemma/terms"
    assert lic["text"].startswith("The notes are outputs of Gemma 3 270M, so their use falls under")


def test_a_local_model_card_gives_its_license(tmp_path):
    folder = _model_folder(tmp_path, "apache-2.0")
    lic = model_license(str(folder))
    assert lic == {
        "license": "apache-2.0",
        "license_name": None,
        "license_link": None,
        "text": f"The notes are outputs of `{folder}`; its model card states the licence `apache-2.0`, whose terms "
        "for outputs apply.",
    }


def test_a_local_gemma_model_gets_the_gemma_terms_with_its_name(tmp_path):
    folder = _model_folder(tmp_path, "gemma")
    lic = model_license(str(folder))
    assert lic["license"] == "gemma" and lic["license_link"] == "https://ai.google.dev/gemma/terms"
    assert lic["text"].startswith(f"The notes are outputs of `{folder}`, so their use falls under")
    assert model_license(None)["text"].startswith("The notes are outputs of Gemma 3 270M")  # the default is untouched


def test_a_model_whose_license_cannot_be_read_gets_other(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for model in (str(_model_folder(tmp_path, None)), str(tmp_path / "no-card"), "no-such-org/no-such-model"):
        lic = model_license(model)
        assert lic == {
            "license": "other",
            "license_name": f"terms of {model}",
            "license_link": None,
            "text": f"The notes are outputs of `{model}`, whose licence could not be read here: check its terms for "
            "outputs before reuse.",
        }


@pytest.mark.parametrize(
    ("n", "label"),
    [
        (0, "n<1K"),
        (999, "n<1K"),
        (1_000, "1K<n<10K"),
        (9_999, "1K<n<10K"),
        (10_000, "10K<n<100K"),
        (99_999, "10K<n<100K"),
        (100_000, "100K<n<1M"),
        (5_000_000, "100K<n<1M"),
    ],
)
def test_size_category_boundaries(n, label):
    assert size_category(n) == label


def _kg_card_variables() -> dict:
    return dict(
        repo_id="someone/ru-icd10-kg",
        counts={"nodes": 12345, "symptom_edges": 678, "related": 90},
        levels={"chapter": 22, "block": 261},
        stats={
            "categories_with_symptoms": 104,
            "categories_with_examples": 105,
            "symptoms": 777,
            "median_symptoms_per_category": 31,
        },
        fingerprint="feedfacecafebeef",
        config={"max_phrase_words": 4, "min_phrase_notes": 3},
        lexicon_size=555,
        symptoms_per_category=[2, 30, 88],
        example_edges=[
            {"symptom": "боли в поясничном отделе позвоночника", "count": 156, "weight": 0.522556},
            {"symptom": "боль при движении", "count": 164, "weight": 0.388111},
        ],
    )


def test_render_card_fills_the_template_and_its_yaml_header():
    assert (CARD_DIR / "ru-icd10-kg.md").is_file()
    card_data = {"license": "apache-2.0", "language": ["ru"], "pretty_name": "Граф МКБ-10", "license_name": None}
    text = render_card("ru-icd10-kg.md", card_data, **_kg_card_variables())
    assert text.startswith("---\n")
    header, body = text[4:].split("\n---\n", 1)
    assert yaml.safe_load(header) == {"license": "apache-2.0", "language": ["ru"], "pretty_name": "Граф МКБ-10"}
    assert "| `nodes` | 12345 |" in body
    assert "| `symptom_edges` | 678 |" in body and "| `related` | 90 |" in body
    assert "Levels: 22 chapter, 261 block." in body
    assert "104 of the 105 categories" in body
    assert "(from 2 to 88). Graph fingerprint `feedfacecafebeef`." in body
    assert "| боли в поясничном отделе позвоночника | 156 | 0.523 |" in body
    assert "| боль при движении | 164 | 0.388 |" in body
    assert 'load_dataset("someone/ru-icd10-kg", "nodes", split="train")' in body
    assert "a lexicon of 555 symptom phrases" in body and "at most 4 content words" in body
    assert "{{" not in text and "{%" not in text
