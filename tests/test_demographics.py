import random
from collections import Counter

import pytest

from medsyn.demographics import age_range, check_demographics, sample_demographics, sex_limit
from medsyn.errors import MedsynError


def test_sex_limits_follow_icd10():
    assert [sex_limit(c) for c in ("N76.0", "N95.1", "O80", "O00.1", "D25.9", "E28.2")] == ["F"] * 6
    assert [sex_limit(c) for c in ("N40", "N41.1", "N51.0", "C61", "E29.1")] == ["M"] * 5
    assert [sex_limit(c) for c in ("N39.0", "N99.1", "M54.5", "J06.9", "E28")] == [None, None, None, None, "F"]
    # limits that ICD-10 sets on some codes of a category only
    assert (sex_limit("D07.3"), sex_limit("D07.4"), sex_limit("D07.7"), sex_limit("D07")) == ("F", "M", None, None)
    assert (sex_limit("M80.0"), sex_limit("M80.2"), sex_limit("L70.5"), sex_limit("L70.0")) == ("F", None, "F", None)


def test_drawn_patients_keep_the_rules():
    rng = random.Random(0)
    for code, sex, (low, high) in [
        ("N76.0", "F", (18, 89)),
        ("O80", "F", (18, 45)),
        ("N95.1", "F", (45, 75)),
        ("N40", "M", (45, 89)),
        ("P07.3", None, (0, 0)),
        ("R54", None, (65, 89)),
    ]:
        drawn = [sample_demographics(rng, code) for _ in range(300)]
        assert all(low <= age <= high for _, age in drawn), code
        if sex:
            assert {s for s, _ in drawn} == {sex}, code
    sexes = Counter(sample_demographics(rng, "M54.5")[0] for _ in range(2000))
    assert sexes["F"] / 2000 == pytest.approx(0.55, abs=0.04)


def test_ages_follow_the_bands_within_a_range():
    rng = random.Random(1)
    ages = [sample_demographics(rng, "N95.1")[1] for _ in range(3000)]
    assert min(ages) == 45 and max(ages) == 75
    assert age_range("N92.4") == (40, 55) and age_range("N92.0") == (18, 50) and age_range("J06") == (18, 89)


def test_check_refuses_what_a_clinician_would_not_accept():
    with pytest.raises(
        MedsynError, match=r"N76 \(Другие воспалительные болезни влагалища и вульвы\) is limited to female"
    ):
        check_demographics("N76", "M", name="Другие воспалительные болезни влагалища и вульвы")
    with pytest.raises(MedsynError, match="age 30 is not plausible for N95.1: expected 45-75"):
        check_demographics("N95.1", "F", 30)
    with pytest.raises(MedsynError, match="limited to male"):
        check_demographics("N41.0", "F")
    check_demographics("N95.1", "F", 52)
    check_demographics("J06.9", "M", 7)  # codes without an ICD-10 age limit take any age asked for
