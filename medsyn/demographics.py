"""Who a note can be about: ICD-10's sex limits and a plausible age range per code.

**Sex.** ICD-10 lists the categories limited to one sex for checking coded records: WHO, *ICD-10 Volume 2,
Instruction manual* (2010 and 2016 editions), section 3.1.5 "Categories with common characteristics", lists
"Categories limited to one sex". :data:`MALE_ONLY` and :data:`FEMALE_ONLY` reproduce those lists; a code in them
is drawn only with that sex, and a request for the other sex is refused. The Russian МКБ-10 directory shipped in
``medsyn/resources/icd10_ru`` (fields ``ID, REC_CODE, MKB_CODE, MKB_NAME, ID_PARENT, ADDL_CODE, ACTUAL, DATE``)
carries no sex or age field, so the table lives here.

**Age.** The classification itself ties an age to a few groups by their definition: conditions of the perinatal
period (chapter XVI, P00-P96), pregnancy and childbirth (chapter XV, O00-O99, with Z32-Z36 and Z39), senility
(R54). :data:`AGE_RANGES` holds those, and medsyn's own plausible ranges for conditions that have a typical age in
adult outpatient care (menopausal disorders, arthrosis, benign prostatic hyperplasia, Alzheimer's disease, acne…). They are a
judgement for drawing believable patients, not a rule of the classification; codes they do not name get an adult
outpatient age (18-89). Ages are drawn from the age structure of polyclinic visits (:data:`AGE_BANDS`) within the
code's range.
"""

from __future__ import annotations

import random
from collections.abc import Iterable

from medsyn.errors import MedsynError

__all__ = [
    "AGE_BANDS",
    "AGE_RANGES",
    "ADULT_AGES",
    "FEMALE_ONLY",
    "MALE_ONLY",
    "age_range",
    "check_demographics",
    "sample_demographics",
    "sex_limit",
]

# WHO ICD-10 Volume 2, 3.1.5, "Categories limited to one sex": a bound is a category (all its codes) or a code.
MALE_ONLY: tuple[str, ...] = (
    "B26.0", "C60-C63", "D07.4-D07.6", "D17.6", "D29", "D40", "E29", "E89.5", "F52.4", "I86.1", "L29.1",
    "N40-N51", "Q53-Q55", "R86", "S31.2-S31.3", "Z12.5",
)  # fmt: skip
FEMALE_ONLY: tuple[str, ...] = (
    "A34", "B37.3", "C51-C58", "C79.6", "D06", "D07.0-D07.3", "D25-D28", "D39", "E28", "E89.4", "F52.5", "F53",
    "I86.3", "L29.2", "L70.5", "M80.0-M80.1", "M81.0-M81.1", "M83.0", "N70-N98", "N99.2-N99.3", "O00-O99",
    "P54.6", "Q50-Q52", "R87", "S31.4", "S37.4-S37.6", "T19.2-T19.3", "T83.3", "Y76", "Z01.4", "Z12.4", "Z30.1",
    "Z30.3", "Z30.5", "Z31.1", "Z31.2", "Z32-Z36", "Z39", "Z43.7", "Z87.5", "Z97.5",
)  # fmt: skip

ADULT_AGES = (18, 89)
# (codes, lowest age, highest age); the first rule that holds a code decides, so codes come before categories
# and categories before blocks. The first five rules follow from ICD-10's definitions; the rest are plausible
# adult ranges.
AGE_RANGES: tuple[tuple[str, int, int], ...] = (
    ("P00-P96", 0, 0),  # conditions originating in the perinatal period: a newborn
    ("O00-O99", 18, 45),  # pregnancy, childbirth and the puerperium
    ("Z32-Z36", 18, 45),  # pregnancy tests, supervision, antenatal screening
    ("Z39", 18, 45),  # postpartum care
    ("R54", 65, 89),  # senility
    ("N95", 45, 75),  # menopausal and other perimenopausal disorders
    ("N92.4", 40, 55),  # excessive bleeding in the premenopausal period
    ("N91-N94", 18, 50),  # menstrual disorders, pain with the cycle
    ("N96-N97", 20, 45),  # habitual aborter, female infertility
    ("N46", 20, 55),  # male infertility
    ("E28", 18, 45),  # ovarian dysfunction
    ("N80", 20, 50),  # endometriosis
    ("D25", 25, 60),  # leiomyoma of uterus
    ("N81", 40, 89),  # female genital prolapse
    ("N40", 45, 89),  # hyperplasia of prostate
    ("G30", 60, 89),  # Alzheimer's disease
    ("G20", 50, 89),  # Parkinson's disease
    ("G35", 18, 60),  # multiple sclerosis
    ("I20-I25", 40, 89),  # ischaemic heart diseases
    ("I10-I15", 30, 89),  # hypertensive diseases
    ("I60-I69", 45, 89),  # cerebrovascular diseases
    ("E11", 30, 89),  # type 2 diabetes
    ("J44", 40, 89),  # chronic obstructive pulmonary disease
    ("M15-M19", 40, 89),  # arthrosis
    ("M80-M81", 50, 89),  # osteoporosis
    ("M10", 35, 89),  # gout
    ("L70", 18, 35),  # acne
)

# Adult outpatient ages by band, roughly the age structure of Russian polyclinic visits: (low, high, share).
AGE_BANDS = [(18, 29, 0.14), (30, 39, 0.17), (40, 49, 0.17), (50, 59, 0.18), (60, 69, 0.19), (70, 89, 0.15)]


def _holds(rule: str, code: str) -> bool:
    """Whether ``rule`` ("N40-N51", "D07.4-D07.6", "R54", "B26.0") holds ``code`` ("N41.0", "M80", …)."""
    lo, _, hi = rule.partition("-")
    hi = hi or lo
    if "." in lo:  # a range of codes: a category alone is not in it
        return "." in code and lo <= code <= hi
    return lo <= code[:3] <= hi


def _any_holds(rules: Iterable[str], code: str) -> bool:
    return any(_holds(rule, code) for rule in rules)


def _rule_range(code: str) -> tuple[int, int] | None:
    for rule, low, high in AGE_RANGES:
        if _holds(rule, code):
            return low, high
    return None


def sex_limit(code: str) -> str | None:
    """``"M"`` or ``"F"`` for a code ICD-10 limits to one sex, else ``None``.

    Example:
        >>> sex_limit("N76.0"), sex_limit("N41.1"), sex_limit("M54.5")
        ('F', 'M', None)
    """
    code = code.strip().upper()
    if _any_holds(FEMALE_ONLY, code):
        return "F"
    if _any_holds(MALE_ONLY, code):
        return "M"
    return None


def age_range(code: str) -> tuple[int, int]:
    """The plausible ages ``(lowest, highest)`` of a patient with ``code``.

    Example:
        >>> age_range("N95.1"), age_range("M54.5")
        ((45, 75), (18, 89))
    """
    return _rule_range(code.strip().upper()) or ADULT_AGES


def _draw_age(rng: random.Random, low: int, high: int) -> int:
    """An age in ``[low, high]``, each year weighted by its band's share per year (outside the bands: the nearest)."""
    if low == high:
        return low
    years = list(range(low, high + 1))
    per_year = []
    for year in years:
        band = next((b for b in AGE_BANDS if b[0] <= year <= b[1]), AGE_BANDS[0] if year < 18 else AGE_BANDS[-1])
        per_year.append(band[2] / (band[1] - band[0] + 1))
    return rng.choices(years, weights=per_year)[0]


def sample_demographics(rng: random.Random, code: str | None = None) -> tuple[str, int]:
    """Draw a plausible patient for ``code``: sex ``"M"``/``"F"`` and an age.

    A code ICD-10 limits to one sex gets that sex; otherwise sexes are drawn 55/45 female/male, as outpatient
    visits are. The age comes from :func:`age_range`, weighted by :data:`AGE_BANDS`.
    """
    limit = sex_limit(code) if code else None
    sex = limit or ("F" if rng.random() < 0.55 else "M")
    low, high = age_range(code) if code else ADULT_AGES
    return sex, _draw_age(rng, low, high)


def check_demographics(code: str, sex: str | None = None, age: int | None = None, name: str = "") -> None:
    """Refuse a patient a clinician would not accept for ``code``: the other sex, or an age out of its range.

    Only the ranges :data:`AGE_RANGES` names are enforced; the adult range for other codes is for drawing only.

    Raises:
        MedsynError: with the rule and the values that fit.
    """
    label = f"{code} ({name})" if name else code
    limit = sex_limit(code)
    if sex is not None and limit is not None and sex != limit:
        word = "female" if limit == "F" else "male"
        raise MedsynError(
            f"{label} is limited to {word} patients in ICD-10 (Volume 2, 3.1.5); give sex {limit!r} or leave it unset"
        )
    ages = _rule_range(code.strip().upper())
    if age is not None and ages is not None and not ages[0] <= age <= ages[1]:
        low, high = ages
        raise MedsynError(f"age {age} is not plausible for {label}: expected {low}-{high}; give one or leave it unset")
