"""The clinical contradiction checks: each kind is found, and ordinary notes pass."""

from __future__ import annotations

import pytest

from medsyn.filters.clinical import ClinicalCheck

CHECK = ClinicalCheck()


@pytest.mark.parametrize(
    ("note", "sex", "age", "finding"),
    [
        ("Жалобы на боли в левом яичке.", "F", 40, "«яичко» in a note for a woman"),
        ("Утолщения влагалища, зуд.", "M", 30, "«влагалище» in a note for a man"),
        ("Боль в области полового члена.", "F", 30, "«половой член» in a note for a woman"),
        ("Задержка менструации на неделю.", "M", 30, "«менструация» in a note for a man"),
        ("Температура до +19,5 С.", "F", 30, "temperature 19.5 °C"),
        ("Повышение температуры тела до 98.0 градусов.", "F", 43, "temperature 98 °C"),
        ("Температура тела 37-60 °С, слабость.", "M", 40, "temperature 60 °C"),
        ("Пульс 18 в минуту.", "M", 40, "pulse 18/min"),
        ("Насморк, повышение темп тела до 190/125 мм.рт.ст.", "M", 37, "temperature in mm Hg"),
        ("Учащение сердцебиения до 40-50 мм.рт.ст., вялость.", "F", 38, "heart rate in mm Hg"),
        ("Повышение темп. тела до 43 С.", "F", 30, "temperature 43 °C"),
        ("АД до 270/250 мм рт. ст.", "F", 69, "blood pressure 270/250"),
        ("АД 90/150.", "M", 50, "lower figure not below the upper"),
        ("Приливы, климакс.", "F", 30, "menopause at age 30"),
        ("Беременность 12 недель.", "F", 60, "pregnancy at age 60"),
    ],
)
def test_a_contradiction_is_named(note, sex, age, finding):
    found = CHECK.findings(note, sex, age)
    assert any(finding in f and f.startswith("contradiction: ") for f in found), found


@pytest.mark.parametrize(
    ("note", "sex", "age"),
    [
        ("Жалобы на боли в левом яичке.", "M", 40),
        ("Нарушение менструального цикла, боли внизу живота.", "F", 30),
        ("Температура 38,5, пульс 150-200/мин, АД 150/90, t 36.6.", "M", 40),
        ("Температура 3 дня, пульс 72.", "M", 3),
        ("Температура 37,2-38,5 °С, пульс 72.", "F", 30),
        ("Температура 37,5 - 3 дня.", "F", 30),
        ("Температура 38 АД 120/80 мм рт. ст., пульс 88 уд/мин.", "F", 30),
        ("Снижение темпа речи, АД 130/80 мм рт. ст.", "M", 70),
        ("Климакс с 50 лет.", "F", 56),
    ],
)
def test_an_ordinary_note_passes(note, sex, age):
    assert CHECK.findings(note, sex, age) == []


def test_an_unknown_patient_skips_the_sex_and_age_checks_but_not_the_vitals():
    assert CHECK.findings("Боли в яичке, климакс.") == []
    assert CHECK.findings("Боли в яичке, температура 19,5 С.") == [
        "contradiction: temperature 19.5 °C outside 34-42.5"
    ]


def test_real_dev_notes_have_none():
    from medsyn.data import load_rumedtop3

    assert [n["id"] for n in load_rumedtop3("dev") if CHECK.findings(n["text"])] == []
