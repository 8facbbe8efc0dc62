"""Russian text normalisation: tokens, lemmas and the concept keys that symptom matching uses.

Symptom matching works on *keys*: the pymorphy3 lemma of each content word, mapped through a small table of
derivations so that words of one root meet. That is what lets «болит голова» and «головная боль» match
(``болеть → боль``, ``головной → голова``). Function words (prepositions, conjunctions, particles, pronouns)
carry no symptom and are dropped.

Example:
    >>> phrase_keys("болит голова") == phrase_keys("головная боль")
    True
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

__all__ = [
    "tokenize",
    "is_known_word",
    "lemma",
    "word_key",
    "phrase_keys",
    "text_keys",
    "clause_keys",
    "contains_phrase",
    "symptom_coverage",
    "symptom_spans",
]

_WORD = re.compile(r"[а-яёa-z]+(?:-[а-яёa-z]+)*|\d+(?:[.,]\d+)?", re.IGNORECASE)
_CLAUSE = re.compile(r"[.;!?\n]+|,\s+(?:а|но|однако)\s+")

# Grammatical classes that never name a symptom.
_FUNCTION_POS = {"PREP", "CONJ", "PRCL", "INTJ", "NPRO", "PRED"}

# Derivations that pymorphy3 lemmas keep apart but a clinician reads as one concept. Verbs and adjectives map
# onto the noun that symptom names use. Kept explicit (not a stemmer) because prefix stemming merges
# «голова» with «головокружение», which are different complaints.
DERIVATIONS: dict[str, str] = {
    "болеть": "боль",
    "болевой": "боль",
    "болезненный": "боль",
    "болезненность": "боль",
    "побаливать": "боль",
    "головной": "голова",
    "кашлять": "кашель",
    "кашлевой": "кашель",
    "тошнить": "тошнота",
    "подташнивать": "тошнота",
    "рвать": "рвота",
    "слабый": "слабость",
    "температурный": "температура",
    "грудной": "грудь",
    "шейный": "шея",
    "поясничный": "поясница",
    "суставной": "сустав",
    "желудочный": "желудок",
    "сердечный": "сердце",
    "кружиться": "головокружение",
    "чихать": "чихание",
    "зудеть": "зуд",
    "зудящий": "зуд",
    "чесаться": "зуд",
    "отекать": "отёк",
    "отечный": "отёк",
    "отёчный": "отёк",
    "отек": "отёк",
    "отечь": "отёк",
    "отечность": "отёк",
    "отёчность": "отёк",
    "онеметь": "онемение",
    "неметь": "онемение",
    "немеющий": "онемение",
    "давящий": "давить",
    "давящая": "давить",
    "ноющий": "ныть",
    "колющий": "колоть",
    "жгучий": "жжение",
    "жечь": "жжение",
    "горечь": "горький",
    "потеть": "потливость",
    "бессонный": "бессонница",
    "спинной": "спина",
    "ножной": "нога",
    "ручной": "рука",
    "глазной": "глаз",
    "ушной": "ухо",
    "носовой": "нос",
    "горловой": "горло",
    "артериальный": "артериальный",
    "повышенный": "повышение",
    "повысить": "повышение",
    "повышаться": "повышение",
    "подъём": "повышение",
    "подъем": "повышение",
    "понижаться": "снижение",
    "пониженный": "снижение",
    "сниженный": "снижение",
    "снизить": "снижение",
    "снижаться": "снижение",
    "учащенный": "учащение",
    "учащённый": "учащение",
    "затруднить": "затруднение",
    "затрудненный": "затруднение",
    "затруднённый": "затруднение",
    "нарушить": "нарушение",
    "нарушенный": "нарушение",
    "ухудшиться": "ухудшение",
    "ухудшить": "ухудшение",
}


@lru_cache(maxsize=1)
def _morph():
    import pymorphy3

    return pymorphy3.MorphAnalyzer(lang="ru")


def tokenize(text: str) -> list[str]:
    """Lower-cased word and number tokens of ``text`` (hyphenated words stay whole)."""
    return [t.lower() for t in _WORD.findall(text)]


@lru_cache(maxsize=200_000)
def _analyse(token: str) -> tuple[str, bool]:
    if not re.search("[а-яё]", token):
        return token, False
    parse = _morph().parse(token)[0]
    return parse.normal_form, parse.tag.POS in _FUNCTION_POS


def is_known_word(word: str) -> bool:
    """Whether ``word`` is a dictionary word: known to pymorphy3 and neither an abbreviation nor a name.

    Cut-off words («поясн», «отд») and abbreviations («обл») are not, which keeps them out of symptom names.
    """
    if len(word) < 3 or not _morph().word_is_known(word):
        return False
    tag = _morph().parse(word)[0].tag
    return "Abbr" not in tag and "Name" not in tag


def lemma(token: str) -> str:
    """The pymorphy3 normal form of one token (the token itself for Latin words and numbers)."""
    return _analyse(token.lower())[0]


@lru_cache(maxsize=200_000)
def word_key(token: str) -> str | None:
    """The concept key of one token, or ``None`` for a function word."""
    lem, is_function = _analyse(token.lower())
    if is_function:
        return None
    return DERIVATIONS.get(lem, lem)


def phrase_keys(phrase: str) -> frozenset[str]:
    """The set of concept keys of a short phrase such as a symptom name."""
    return frozenset(k for t in tokenize(phrase) if (k := word_key(t)) is not None)


def text_keys(text: str) -> frozenset[str]:
    """The set of concept keys of a whole text."""
    return phrase_keys(text)


def clause_keys(text: str) -> list[frozenset[str]]:
    """Concept keys per clause (split at sentence ends, semicolons, line breaks and contrastive commas)."""
    return [keys for part in _CLAUSE.split(text) if (keys := phrase_keys(part))]


def contains_phrase(keys: frozenset[str], clauses: Iterable[frozenset[str]]) -> bool:
    """Whether every key of a phrase occurs together in one clause."""
    return bool(keys) and any(keys <= clause for clause in clauses)


def symptom_coverage(symptoms: list[str], note: str, scope: str = "note") -> float:
    """The share of ``symptoms`` whose every concept key appears in ``note``.

    Args:
        symptoms: symptom phrases, e.g. ``["головная боль", "тошнота"]``.
        note: the generated note.
        scope: ``"note"`` matches keys anywhere in the note; ``"clause"`` needs them within one clause.

    Returns:
        A value in [0, 1]; 0.0 for an empty symptom list.

    Example:
        >>> symptom_coverage(["головная боль", "кашель"], "Болит голова третий день.")
        0.5
    """
    if not symptoms:
        return 0.0
    if scope == "note":
        units = [text_keys(note)]
    elif scope == "clause":
        units = clause_keys(note)
    else:
        raise ValueError(f"scope must be 'note' or 'clause', got {scope!r}")
    hits = sum(contains_phrase(phrase_keys(s), units) for s in symptoms)
    return hits / len(symptoms)


def symptom_spans(symptoms: list[str], note: str) -> list[tuple[int, int, str]]:
    """Where the requested symptoms are found in ``note``: ``(start, end, symptom)`` character spans, in order.

    A symptom counts as found as :func:`symptom_coverage` counts it (every concept key of it somewhere in the
    note); its spans are the words that carry those keys. A word whose key belongs to several found symptoms
    goes to the first of them.

    Example:
        >>> symptom_spans(["головная боль", "кашель"], "Болит голова.")
        [(0, 5, 'головная боль'), (6, 12, 'головная боль')]
    """
    found = text_keys(note)
    owner: dict[str, str] = {}
    for symptom in symptoms:
        keys = phrase_keys(symptom)
        if keys and keys <= found:
            for key in keys:
                owner.setdefault(key, symptom)
    spans = []
    for match in _WORD.finditer(note):
        key = word_key(match.group())
        if key in owner:
            spans.append((match.start(), match.end(), owner[key]))
    return spans
