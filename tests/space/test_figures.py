"""Tests of medsyn.space.figures: the plotly figures of a code's neighbourhood, the weights and the shares."""

from __future__ import annotations

import pytest

from medsyn.kg import SymptomEdge
from medsyn.space.core import CodeInfo
from medsyn.space.figures import neighbourhood_figure, shares_figure, weights_figure

LONG = "боль в поясничном отделе позвоночника при длительной ходьбе"


def _info(n_symptoms: int = 3, n_related: int = 2) -> CodeInfo:
    symptoms = [
        SymptomEdge(LONG, 156, 0.5),
        SymptomEdge("боль в шейном отделе", 133, 0.25),
        SymptomEdge("онемение ног", 40, 0.125),
        SymptomEdge("слабость", 10, 0.05),
    ][:n_symptoms]
    related = [
        ("M53", "Другие дорсопатии, не классифицированные в других рубриках", 0.8),
        ("M51", "Поражения дисков", 0.4),
    ]
    return CodeInfo(
        code="M54.5",
        name="Боль внизу спины",
        level="code",
        hierarchy=[("chapter", "XIII", "Болезни костно-мышечной системы"), ("code", "M54.5", "Боль внизу спины")],
        category="M54",
        covered=True,
        symptoms=symptoms,
        related=related[:n_related],
        n_examples=560,
    )


def _named(fig) -> dict:
    return {t.name: t for t in fig.data if t.name}


def test_neighbourhood_figure_has_edges_symptoms_related_and_the_code():
    fig = neighbourhood_figure(_info())
    assert len(fig.data) == 3 + 2 + 3  # an edge per symptom and per related category, then three marker traces
    assert [t.mode for t in fig.data[:5]] == ["lines"] * 5
    assert [t.line.dash for t in fig.data[:5]] == [None, None, None, "dot", "dot"]
    assert [t.line.width for t in fig.data[:3]] == [8.0, 4.5, 2.75]  # 1 + 7 * weight / max weight
    assert [t.line.width for t in fig.data[3:5]] == pytest.approx([4.2, 2.6])  # 1 + 4 * similarity
    assert all(t.showlegend is False and t.hoverinfo == "skip" for t in fig.data[:5])
    named = _named(fig)
    assert list(named) == ["symptom (size = weight)", "related category (size = similarity)", "code"]
    symptoms = named["symptom (size = weight)"]
    assert symptoms.x == (1.0, 1.0, 1.0) and symptoms.y == (1.0, 0.0, -1.0)
    assert symptoms.text == (LONG[:35] + "…", "боль в шейном отделе", "онемение ног")
    assert list(symptoms.marker.size) == [36.0, 23.0, 16.5]
    assert [list(c) for c in symptoms.customdata] == [
        [LONG, 0.5, 156],
        ["боль в шейном отделе", 0.25, 133],
        ["онемение ног", 0.125, 40],
    ]
    assert "of 560 real notes" in symptoms.hovertemplate
    related = named["related category (size = similarity)"]
    assert related.x == (-1.0, -1.0) and related.y == (1.0, -1.0)
    assert related.text == ("M53 Другие дорсопатии, не к…", "M51 Поражения дисков")
    assert related.marker.symbol == "diamond"
    code = named["code"]
    assert (code.x, code.y, code.text) == ((0,), (0,), ("<b>M54</b>",))
    assert "<b>M54.5</b> Боль внизу спины<br>560 real notes" in code.hovertemplate
    assert fig.layout.title.text == "M54: top 3 of 3 symptoms, 2 related categories"
    assert fig.layout.height == 520
    assert fig.layout.xaxis.visible is False and fig.layout.yaxis.visible is False


def test_neighbourhood_figure_keeps_the_top_symptoms_and_related():
    fig = neighbourhood_figure(_info(n_symptoms=4), top=2, related=1)
    assert len(fig.data) == 2 + 1 + 3
    assert _named(fig)["symptom (size = weight)"].y == (1.0, -1.0)
    assert _named(fig)["related category (size = similarity)"].y == (0.0,)  # one item sits in the middle
    assert fig.layout.title.text == "M54: top 2 of 4 symptoms, 1 related categories"


def test_neighbourhood_figure_of_a_code_without_symptoms_shows_the_code_alone():
    info = _info(n_symptoms=0, n_related=0)
    info.category = None
    fig = neighbourhood_figure(info)
    assert len(fig.data) == 1
    assert fig.data[0].name == "code" and fig.data[0].text == ("<b>M54.5</b>",)
    assert fig.layout.title.text == "None: top 0 of 0 symptoms, 0 related categories"


class FakeKG:
    """What the figures read from a graph: the examples and symptoms of each category."""

    def __init__(self, examples: dict[str, int], symptoms: dict[str, int]) -> None:
        self._examples, self._symptoms = examples, symptoms

    def examples(self, code):
        return [{"id": f"{code}-{i}"} for i in range(self._examples[code])]

    def symptoms(self, code):
        return [SymptomEdge(f"s{i}", 1, 0.1) for i in range(self._symptoms[code])]


KG = FakeKG({"M54": 500, "J06": 300, "N92": 10}, {"M54": 60, "J06": 40, "N92": 5})
WEIGHTS = {"N92": 0.5, "M54": 0.3, "J06": 0.2}


def test_weights_figure_has_one_marker_per_category():
    fig = weights_figure(KG, WEIGHTS, {"M54": "Дорсалгия", "J06": "ОРВИ"})
    (trace,) = fig.data
    assert trace.mode == "markers"
    assert trace.x == (300, 500, 10) and trace.y == (40, 60, 5)  # categories in code order
    assert trace.marker.color == (0.2, 0.3, 0.5)
    assert [list(c) for c in trace.customdata] == [["J06", "ОРВИ", 0.2], ["M54", "Дорсалгия", 0.3], ["N92", "", 0.5]]
    assert fig.layout.xaxis.type == "log"
    assert fig.layout.title.text == "3 categories: w(C) = J3(N_symp)·J3(N_exmp)"


def test_shares_figure_compares_real_and_synthetic_shares():
    fig = shares_figure(KG, WEIGHTS)
    real, synthetic = fig.data
    assert (real.name, synthetic.name) == ("share of real notes", "share of synthetic tasks")
    assert real.text == synthetic.text == ("M54", "J06", "N92")  # by number of real notes
    assert real.y == pytest.approx((500 / 810, 300 / 810, 10 / 810))
    assert synthetic.y == pytest.approx((0.3, 0.2, 0.5))
    assert real.hovertemplate == synthetic.hovertemplate == "%{text}: %{y:.2%}<extra></extra>"
    assert fig.layout.yaxis.type == "log"
