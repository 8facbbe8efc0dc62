"""Clinical contradictions a reader spots at once: the wrong sex's organs, impossible vital signs, age-bound terms.

:class:`ClinicalCheck` reads a note with its patient's sex and age and names what cannot be:

* **sex**: organs and conditions of one sex in a note for the other («боли в левом яичке» for a woman, «матка» for
  a man), by lemma, so every inflection counts;
* **vital signs**: a body temperature outside 34–42.5 °C («температура до +19,5 С»), a pulse outside 25–230 a minute,
  a blood pressure outside 50–280 / 20–180 mm Hg or with the lower figure not below the upper;
* **age**: menopause before 35, pregnancy before 12 or after 55, menarche before 8.

Each finding is one line for ``filter_reasons`` (``contradiction: …``). Generation drops such a note and tries
again; ``medsyn eval quality`` reports the share of notes with any finding. A patient's sex or age that is not
known (real notes rarely record them) skips the checks that need it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from medsyn.text import lemma, tokenize

__all__ = ["ClinicalCheck", "REASON_PREFIX", "FEMALE_TERMS", "MALE_TERMS"]

REASON_PREFIX = "contradiction"

FEMALE_TERMS = frozenset(
    """влагалище влагалищный матка маточный яичник вульва менструация менструальный месячные беременность беременный
    роды выкидыш климакс климактерический менопауза постменопауза эндометрий эндометриоз лактация овуляция
    предменструальный аменорея дисменорея альгоменорея менархе бели""".split()
)
"""Lemmas of organs and conditions only a woman has."""
MALE_TERMS = frozenset(
    """яичко мошонка простата предстательный эрекция эректильный эякуляция семяизвержение потенция пенис
    тестикулярный сперма""".split()
)
"""Lemmas of organs and conditions only a man has."""
_MALE_PHRASES = (("половой", "член"), ("крайний", "плоть"))

_NUMBER = r"(\d{1,3}(?:[.,]\d+)?)"
_NOT_A_READING = r"(?!\s*(?:д(?:ень|ня|ней)|недел|час|мин|сут|раз|год|лет|мес|%))"
_TEMPERATURE = re.compile(
    r"(?:температур\w*|\bt\b|\bт\b|\bтемп\b\.?(?=\s+тела))(?:\s+тела)?\s*(?:до|повышал\w*\s+до|повышение\s+до|в\s+пределах|[:=])?\s*\+?"
    + _NUMBER
    + r"(?:\s*[-–]\s*\+?"
    + _NUMBER
    + ")?"  # a range, «37-38,5»: both ends are readings
    + _NOT_A_READING
    + r"\s*(°|град\w*|[CС]\b)?",
    re.IGNORECASE,
)
_PULSE = re.compile(
    r"(?:пульс\w*|\bчсс\b|\bps\b)\s*(?:до|[:=])?\s*(\d{2,3})(?:\s*[-–]\s*(\d{2,3}))?" + _NOT_A_READING,
    re.IGNORECASE,
)
_WRONG_UNIT = re.compile(  # «температура до 190/125 мм рт. ст.», «сердцебиение до 40-50 мм рт. ст.»
    r"(температур\w*|\bтемп\b|пульс\w*|\bчсс\b|сердцебиени\w*)(?:(?!\bад\b|давлени)[^,.;:\n]){0,25}?"
    r"\d{2,3}(?:\s*[-–/]\s*\d{2,3})?\s*мм\.?\s*рт",
    re.IGNORECASE,
)
"""A temperature, pulse or heart rate stated in the unit of blood pressure."""
_PRESSURE = re.compile(r"(?:\bад\b|давлени\w*)\D{0,25}?(\d{2,3})\s*/\s*(\d{2,3})", re.IGNORECASE)
_AGE_BOUND = (  # (lemmas, youngest, oldest, what it is)
    (frozenset({"климакс", "климактерический", "менопауза", "постменопауза"}), 35, 120, "menopause"),
    (frozenset({"беременность", "беременный"}), 12, 55, "pregnancy"),
    (frozenset({"менархе"}), 8, 120, "menarche"),
)


def _number(text: str) -> float:
    return float(text.replace(",", "."))


@dataclass(frozen=True)
class ClinicalCheck:
    """The contradiction checks, with their physiological ranges."""

    temperature: tuple[float, float] = (34.0, 42.5)
    pulse: tuple[int, int] = (25, 230)
    systolic: tuple[int, int] = (50, 280)
    diastolic: tuple[int, int] = (20, 180)

    def findings(self, note: str, sex: str | None = None, age: int | None = None) -> list[str]:
        """One ``contradiction: …`` line per thing in ``note`` that cannot be for this patient."""
        lemmas = [lemma(t) for t in tokenize(note.lower())]
        found = set(lemmas)
        out = []
        if sex == "M":
            out += [f"{REASON_PREFIX}: «{t}» in a note for a man" for t in sorted(found & FEMALE_TERMS)]
        if sex == "F":
            out += [f"{REASON_PREFIX}: «{t}» in a note for a woman" for t in sorted(found & MALE_TERMS)]
            pairs = set(zip(lemmas, lemmas[1:]))
            out += [f"{REASON_PREFIX}: «{' '.join(p)}» in a note for a woman" for p in _MALE_PHRASES if p in pairs]
        if age is not None:
            for terms, youngest, oldest, what in _AGE_BOUND:
                if found & terms and not youngest <= age <= oldest:
                    out.append(f"{REASON_PREFIX}: {what} at age {age}")
        out += self.vitals(note)
        return out

    def vitals(self, note: str) -> list[str]:
        """Vital signs outside physiological ranges."""
        out = []
        low, high = self.temperature
        for m in _TEMPERATURE.finditer(note):
            unit = m.group(3)
            for value in (_number(v) for v in m.group(1, 2) if v):
                if not unit and not (10 <= value < 100):  # «t 3» or «t 120» without a unit is not a reading
                    continue
                if not low <= value <= high:
                    out.append(f"{REASON_PREFIX}: temperature {value:g} °C outside {low:g}-{high:g}")
        low, high = self.pulse
        for m in _PULSE.finditer(note):
            for value in (int(v) for v in m.groups() if v):
                if not low <= value <= high:
                    out.append(f"{REASON_PREFIX}: pulse {value}/min outside {low}-{high}")
        for m in _WRONG_UNIT.finditer(note):
            what = "temperature" if m.group(1).lower().startswith("темп") else "heart rate"
            out.append(f"{REASON_PREFIX}: {what} in mm Hg, the unit of blood pressure")
        for m in _PRESSURE.finditer(note):
            upper, lower = int(m.group(1)), int(m.group(2))
            if not (self.systolic[0] <= upper <= self.systolic[1] and self.diastolic[0] <= lower <= self.diastolic[1]):
                out.append(f"{REASON_PREFIX}: blood pressure {upper}/{lower} outside physiological ranges")
            elif lower >= upper:
                out.append(
                    f"{REASON_PREFIX}: blood pressure {upper}/{lower} with the lower figure not below the upper"
                )
        return out
