import pytest

from medsyn.errors import MedsynError, UnknownCodeError
from medsyn.icd10 import code_level, load_icd10, normalize_code


def test_hierarchy_of_m54():
    icd = load_icd10()
    assert icd.get("M54").name == "Дорсалгия"
    assert [a.code for a in icd.ancestors("M54.5")] == ["M54", "M50-M54", "M40-M54", "XIII"]
    assert "M54.5" in icd.codes_in("M54")
    assert icd.category_of("M54.5") == "M54"


def test_every_level_is_present():
    icd = load_icd10()
    levels = {e.level for e in icd.entries.values()}
    assert levels == {"chapter", "block", "category", "code"}
    assert len([e for e in icd.entries.values() if e.level == "chapter"]) == 22


def test_unknown_code_lists_closest():
    with pytest.raises(UnknownCodeError) as err:
        load_icd10().get("J45.99")
    assert err.value.closest[0] == "J45.9"
    assert "closest: J45.9" in str(err.value)
    assert isinstance(err.value, ValueError)


def test_normalize_and_level():
    assert normalize_code(" м54,5 ") == "M54.5"  # Cyrillic М and a comma
    assert code_level("M50-M54") == "block"
    with pytest.raises(MedsynError):
        code_level("hello")
