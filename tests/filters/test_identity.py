"""medsyn.filters.identity: contact details, document numbers, dates of birth and real people's names, found masked."""

from __future__ import annotations

from pathlib import Path

import pytest

from medsyn.corpus import load_corpus
from medsyn.filters.identity import Finding, PersonNames, find_identifiers, mask

FIXTURE = Path(__file__).parents[1] / "fixtures" / "own_notes.csv"


@pytest.fixture(scope="module")
def own_texts() -> dict[str, str]:
    return {n["id"]: n["text"] for n in load_corpus(FIXTURE, log=False).notes}


@pytest.fixture(scope="module")
def names(own_texts) -> PersonNames:
    return PersonNames.from_texts(own_texts.values())


@pytest.mark.parametrize(
    ("planted", "kind"),
    [
        ("+7 (912) 345-67-89", "phone number"),
        ("8-912-345-67-89", "phone number"),
        ("89123456789", "phone number"),
        ("+79123456789", "phone number"),
        ("ivanov.petr@mail.ru", "e-mail address"),
        ("дата рождения: 12.03.1965", "date of birth"),
        ("д.р. 12.03.65", "date of birth"),
        ("родилась 1.2.1970", "date of birth"),
        ("СНИЛС 123-456-789 01", "СНИЛС"),
        ("123-456-789 01", "СНИЛС"),
        ("полис ОМС 1234567890123456", "полис ОМС"),
        ("паспорт 45 10 123456", "паспорт"),
        ("паспорт серия 4510 № 123456", "паспорт"),
    ],
)
def test_identifiers_are_found_and_masked(planted, kind):
    """Each kind of identifier is found in a note, and what is reported never repeats it."""
    text = f"Жалобы на головную боль. {planted}. Аллергии нет."
    found = find_identifiers(text)
    assert kind in {f.kind for f in found}
    for f in found:
        assert isinstance(f, Finding)
        assert planted not in str(f) and planted not in f.masked
        assert set(f.masked[1:]) == {"·"}
    (hit,) = [f for f in found if f.kind == kind]
    assert hit.masked == mask(planted)


@pytest.mark.parametrize(
    "clean",
    [
        "АД 150/90, ЧСС 88, температура 36,6, SpO2 98%.",
        "Осмотр 12.03.2024, рост 175 см, вес 80 кг, глюкоза 5.6 ммоль/л.",
        "Симптомы в течение 3 дней, 8 раз в сутки по 100 мг.",
        "Жалобы: холодный пот, одышка, слабость и давящая боль за грудиной. Симптомы в течение месяца.",
    ],
)
def test_clinical_numbers_are_not_identifiers(clean):
    """Pressures, temperatures, visit dates and doses are not taken for identifiers."""
    assert find_identifiers(clean) == []


def test_fixture_phone_number_is_found(own_texts):
    """The phone number in the fixture's row P0021 is found; no other fixture note holds an identifier."""
    found = {i: find_identifiers(t) for i, t in own_texts.items()}
    assert [f.kind for f in found["P0021"]] == ["phone number"]
    assert "345-67-89" not in str(found["P0021"][0])
    assert {i for i, f in found.items() if f} == {"P0021"}


def test_mask_keeps_first_character_and_length():
    """mask() shows only the first character and how long the string was."""
    assert mask("Кузнецов") == "К·······"
    assert len(mask("+7 (912) 345-67-89")) == len("+7 (912) 345-67-89")
    assert str(Finding("phone number", mask("89123456789"))) == "phone number 8··········"


def test_names_are_learnt_from_name_shapes(names):
    """From the fixture the surnames and patronymics of «Смирновой Ольгой Викторовной» and «Кузнецов Пётр Семёнович»
    are learnt, not the first names."""
    assert names.stems == {"смирнов", "викторовн", "кузнецов", "семенович"}
    assert len(names) == 4


@pytest.mark.parametrize(
    "form", ["Смирнова", "Смирновой", "Смирновым", "Кузнецов", "Кузнецову", "Кузнецовым", "Семёновичем", "Викторовна"]
)
def test_inflected_forms_are_found(names, form):
    """A learnt surname or patronymic is found again in another case, masked."""
    found = names.find(f"Консультация врача: {form}, повторный прием.")
    assert [f.kind for f in found] == ["name from the real notes"]
    assert form not in str(found[0]) and found[0].masked == mask(form)


def test_names_are_found_in_the_fixture_rows_that_hold_them(names, own_texts):
    """Only rows P0004 (the doctor) and P0021 (the patient) name people."""
    hits = {i: names.find(t) for i, t in own_texts.items()}
    assert {i for i, f in hits.items() if f} == {"P0004", "P0021"}
    assert len(hits["P0004"]) == 2 and len(hits["P0021"]) == 2  # surname and patronymic each


@pytest.mark.parametrize(
    ("text", "stems"),
    [
        ("Осмотрен Петровым А.В. в приемном отделении.", {"петров"}),
        ("Заключение: А.В. Сидоренко.", {"сидоренк"}),
        ("Направлена Ириной Павловной Зайцевой.", {"павловн", "зайцев"}),
        ("Пациент Кузнецов Пётр Семёнович, 60 лет.", {"кузнецов", "семенович"}),
    ],
)
def test_each_name_shape(text, stems):
    """Surname with initials, initials then surname, name + patronymic + surname, and ФИО in full."""
    assert PersonNames.from_texts([text]).stems == stems


def test_eponyms_are_not_learnt(names):
    """Diseases named after people are not names of people in a note."""
    eponyms = [
        "Подозрение на болезнь Паркинсона.",
        "Исключить синдром Иценко-Кушинга.",
        "Анализ мочи по Нечипоренко, с болезнью Альцгеймера в анамнезе.",
    ]
    assert len(PersonNames.from_texts(eponyms)) == 0
    assert names.find(" ".join(eponyms)) == []


def test_first_names_alone_are_not_names(names):
    """First names alone are neither learnt nor found: they are too common to identify anyone."""
    assert len(PersonNames.from_texts(["Ольга и Пётр пришли на прием вместе."])) == 0
    assert names.find("Ольга Петровна и Пётр жалуются на кашель.") == []
    assert len(PersonNames(["ольг", "петр", "кузнецов"])) == 1


def test_clean_text_has_no_name(names):
    """Ordinary capitalized words of a note (sentence starts, headings) are not names."""
    assert names.find("Жалобы: давящая боль за грудиной. Симптомы в течение месяца. Аллергии нет.") == []
    assert PersonNames([]).find("Смирнова") == []


def test_hyphenated_surnames_are_found_again():
    """A double-barrelled surname learnt from a note is found in another note."""
    names = PersonNames.from_texts(["Пациентка Римская-Корсакова А.А. осмотрена."])
    assert len(names) == 1
    assert names.find("Повторный прием: Римская-Корсакова А.А.")
