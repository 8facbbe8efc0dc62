"""Russian text normalisation: tokens, lemmas and the concept keys that symptom matching uses.

Symptom matching works on *keys*: the pymorphy3 lemma of each content word, mapped through a small table of
derivations so that words of one root meet. That is what lets «болит голова» and «головная боль» match
(``болеть → боль``, ``головной → голова``). Function words (prepositions, conjunctions, particles, pronouns)
carry no symptom and are dropped.

Negation has clause scope: :func:`clause_keys` keeps only the keys a clause *affirms*, so «Кашля нет» covers no
«кашель» and «Болит голова. Спина не беспокоит.» covers no «боль в спине» (see :func:`affirmed_keys`).

Example:
    >>> phrase_keys("болит голова") == phrase_keys("головная боль")
    True
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from functools import lru_cache

__all__ = [
    "tokenize",
    "is_known_word",
    "lemma",
    "word_key",
    "phrase_keys",
    "text_keys",
    "clause_keys",
    "affirmed_keys",
    "negation_cues",
    "NEGATION_CUES",
    "contains_phrase",
    "symptom_coverage",
    "symptom_spans",
]

_WORD = re.compile(r"[а-яёa-z]+(?:-[а-яёa-z]+)*|\d+(?:[.,]\d+)?", re.IGNORECASE)
_CLAUSE = re.compile(r"[.;!?\n*•]+|,\s+(?:а|но|однако)\s+")
# Within a clause, negation reaches to the next comma, colon, bracket or dash («кашель сухой, мокрота не отходит»).
_SEGMENT = re.compile(r"([:()]|,(?!\d)|\s[-–—]+|[-–—]+\s|[–—])")

# Negation cues, by lemma: «нет», «не», «ни», «без», «отрицает», «отсутствует» («не беспокоит» is «не»). The noun
# «отсутствие» is no cue: «отсутствие аппетита» and «отсутствие менструаций» name complaints.
NEGATION_CUES = frozenset({"нет", "не", "ни", "без", "отрицать", "отсутствовать"})
# Words after «не» that make it deny a quality of the complaint, not the complaint: «боль не проходит», «не может
# уснуть», «не иррадиирует», «не связаны с едой», «не сильно» (pseudo-negations, as NegEx calls them).
_PSEUDO_AFTER_NE = frozenset(
    """проходить пройти купироваться купировать снижаться снизиться уменьшаться уменьшиться прекращаться
    прекратиться исчезать исчезнуть мочь помогать помочь удаваться удаться получаться давать иррадиировать
    связать связанный связывать зависеть зависимый независимо менее более больше меньше выше ниже только всегда
    очень сильно сильный резко долго часто совсем полностью до столь так такой особо особенно слишком постоянный
    постоянно регулярный регулярно""".split()
)
# «не» before a lack of relief denies the relief, not the complaint: «не отмечает уменьшения шума».
_RELIEF = frozenset("уменьшение улучшение облегчение эффект динамика".split())
# A goal is not a complaint: what follows «хочет», «с целью», «попытка» in its segment is not stated as present
# («хочет снизить вес», «трудности при попытке снижения веса» state no weight loss). Nor is the difficulty of
# reaching one: «проблемы со снижением веса» in obesity is the opposite of the symptom «снижение веса».
_INTENT = frozenset("хотеть желать планировать стремиться намереваться мечтать попытка цель намерение".split())
_DIFFICULTY = frozenset("трудность сложность проблема невозможность неспособность".split())
_GOALS = frozenset("снижение похудение похудеть сбросить удержать нормализовать нормализация".split())
# Words that start a new affirmed list after a clause-opening cue («отрицает травмы, беспокоит кашель»).
_AFFIRM = frozenset("беспокоить жалоба отмечать есть сохраняться появиться предъявлять".split())

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


@lru_cache(maxsize=50_000)
def name_tags(word: str) -> frozenset[str]:
    """Which of ``Name``, ``Surn``, ``Patr`` pymorphy3 gives any reading of ``word``; ``{"unknown"}`` for a word it
    does not know (most rare surnames), empty for an ordinary dictionary word."""
    word = word.lower()
    if not _morph().word_is_known(word):
        return frozenset({"unknown"})
    return frozenset(g for p in _morph().parse(word) for g in ("Name", "Surn", "Patr") if g in p.tag)


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


def _cue(tokens: list[str], i: int) -> bool:
    """Whether ``tokens[i]`` negates (a pseudo-negation such as «не проходит» does not)."""
    if lemma(tokens[i]) not in NEGATION_CUES:
        return False
    if tokens[i] != "не":
        return True
    after = [lemma(t) for t in tokens[i + 1 : i + 3]]
    return not (after[:1] and after[0] in _PSEUDO_AFTER_NE) and not _RELIEF & set(after)


def _segments(clause: str) -> list[tuple[list[str], bool]]:
    """The segments of a clause as tokens, each with whether a comma joins it to the one before (a list).

    Segments end at commas, colons, brackets and dashes, and before «жалобы», which opens a new statement even
    where a full stop is missing («Приливов нет Жалобы на боли в суставах»).
    """
    out: list[tuple[list[str], bool]] = []
    parts = _SEGMENT.split(clause)
    listed = False  # only commas since the last segment with words: «(не принимает), при мочеиспускании» is no list
    for j in range(0, len(parts), 2):
        listed = listed and (j == 0 or parts[j - 1].strip() == ",")
        tokens = tokenize(parts[j])
        if not tokens:
            continue
        starts = [i for i, t in enumerate(tokens) if i > 0 and lemma(t) == "жалоба"]
        for k, (lo, hi) in enumerate(zip([0, *starts], [*starts, len(tokens)])):
            out.append((tokens[lo:hi], listed and k == 0))
        listed = True
    return out


def _scoped(clause: str) -> list[tuple[str, bool]]:
    """The tokens of one clause, each with whether a negation covers it.

    A cue that opens its segment («нет кашля», «отрицает травмы») denies the segment and the comma-joined segments
    after it up to one that affirms again («беспокоит»); «без» denies what follows it in its segment («кашель без
    мокроты»), «нет» what precedes it («жалоб нет Периодически боли в пояснице»); any other cue denies its whole
    segment («спина не беспокоит», «травмы отрицает»). A segment of cues alone denies the one before it
    («скованность по утрам - нет»). A goal voids the rest of its segment («хочет снизить вес», «проблемы со
    снижением веса»).
    """
    out: list[tuple[str, bool]] = []
    carry = False
    previous = 0  # where the previous segment's tokens start in ``out``
    for tokens, listed in _segments(clause):
        cues = [_cue(tokens, i) for i in range(len(tokens))]
        if all(cues):
            out[previous:] = [(t, True) for t, _ in out[previous:]]
        previous = len(out)
        carry = carry and listed and not (_AFFIRM & {lemma(t) for t in tokens} and not any(cues))
        negated = [carry] * len(tokens)
        for i, cue in enumerate(cues):
            if not cue:
                continue
            if tokens[i] == "без" and i > 0:
                negated[i:] = [True] * (len(tokens) - i)
            elif tokens[i] == "нет" and i > 0:
                negated[: i + 1] = [True] * (i + 1)
            else:
                negated = [True] * len(tokens)
                carry = carry or (i == 0 and tokens[i] != "без")
        for i in range(len(tokens)):
            if _voids(tokens, i):
                negated[i:] = [True] * (len(tokens) - i)
                break
        out.extend(zip(tokens, negated))
    return out


def _voids(tokens: list[str], i: int) -> bool:
    """Whether ``tokens[i]`` turns what follows it into a goal rather than a complaint (see :data:`_INTENT`)."""
    word = lemma(tokens[i])
    if word in _INTENT:
        return True
    return word in _DIFFICULTY and any(word_key(t) in _GOALS or lemma(t) in _GOALS for t in tokens[i + 1 : i + 5])


def affirmed_keys(clause: str) -> frozenset[str]:
    """The concept keys a clause states and does not deny.

    Example:
        >>> sorted(affirmed_keys("кашель сухой, мокрота не отходит"))
        ['кашель', 'сухой']
    """
    return frozenset(k for t, negated in _scoped(clause) if not negated and (k := word_key(t)) is not None)


def negation_cues(text: str) -> list[str]:
    """The negation cues in ``text``, in order (pseudo-negations such as «не проходит» left out)."""
    out = []
    for clause in _CLAUSE.split(text):
        for tokens, _ in _segments(clause):
            out.extend(tokens[i] for i in range(len(tokens)) if _cue(tokens, i))
    return out


def clause_keys(text: str, negation: bool = True) -> list[frozenset[str]]:
    """Concept keys per clause (split at sentence ends, semicolons, line breaks and contrastive commas).

    Args:
        text: a note.
        negation: keep only the keys each clause affirms (:func:`affirmed_keys`); ``False`` keeps every key.
    """
    keys_of = affirmed_keys if negation else phrase_keys
    return [keys for part in _CLAUSE.split(text) if (keys := keys_of(part))]


def contains_phrase(keys: frozenset[str], clauses: Iterable[frozenset[str]]) -> bool:
    """Whether every key of a phrase occurs together in one clause."""
    return bool(keys) and any(keys <= clause for clause in clauses)


def symptom_coverage(symptoms: list[str], note: str, scope: str = "clause", negation: bool = True) -> float:
    """The share of ``symptoms`` that ``note`` states: every concept key within one clause, and not denied.

    Args:
        symptoms: symptom phrases, e.g. ``["головная боль", "тошнота"]``.
        note: the generated note.
        scope: ``"clause"`` (the default) needs a symptom's keys within one clause; ``"note"`` takes them from
            anywhere in the note.
        negation: leave out what the note denies («кашля нет», «спина не беспокоит»).

    Returns:
        A value in [0, 1]; 0.0 for an empty symptom list.

    Example:
        >>> symptom_coverage(["головная боль", "кашель"], "Болит голова третий день.")
        0.5
    """
    if not symptoms:
        return 0.0
    if scope == "note":
        units = [frozenset().union(*clause_keys(note, negation))]
    elif scope == "clause":
        units = clause_keys(note, negation)
    else:
        raise ValueError(f"scope must be 'note' or 'clause', got {scope!r}")
    hits = sum(contains_phrase(phrase_keys(s), units) for s in symptoms)
    return hits / len(symptoms)


def _clauses_at(text: str) -> Iterator[tuple[int, str]]:
    """The clauses of ``text`` as :func:`clause_keys` cuts them, each with its start offset."""
    start = 0
    for sep in _CLAUSE.finditer(text):
        yield start, text[start : sep.start()]
        start = sep.end()
    yield start, text[start:]


def symptom_spans(symptoms: list[str], note: str) -> list[tuple[int, int, str]]:
    """Where the requested symptoms are found in ``note``: ``(start, end, symptom)`` character spans, in order.

    A symptom counts as found as :func:`symptom_coverage` counts it: every concept key of it within one clause and
    not denied there. Its spans are the words of such clauses that carry those keys, so a denied mention
    («Кашля нет.») is never marked. A word whose key belongs to several found symptoms goes to the first of them.

    Example:
        >>> symptom_spans(["головная боль", "кашель"], "Болит голова. Кашля нет.")
        [(0, 5, 'головная боль'), (6, 12, 'головная боль')]
    """
    spans = []
    for offset, clause in _clauses_at(note):
        words = list(_WORD.finditer(clause))
        scoped = _scoped(clause)
        if [t for t, _ in scoped] != [w.group().lower() for w in words]:  # cannot happen while both use _WORD
            scoped = [(w.group().lower(), False) for w in words]
        affirmed = {k for t, negated in scoped if not negated and (k := word_key(t)) is not None}
        owner: dict[str, str] = {}
        for symptom in symptoms:
            keys = phrase_keys(symptom)
            if keys and keys <= affirmed:
                for key in keys:
                    owner.setdefault(key, symptom)
        for word, (token, negated) in zip(words, scoped):
            if not negated and (key := word_key(token)) in owner:
                spans.append((offset + word.start(), offset + word.end(), owner[key]))
    return spans
