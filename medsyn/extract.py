"""Symptom extraction from notes: a pluggable step of the knowledge-graph build.

The default :class:`LexiconExtractor` matches a symptom lexicon against each clause of a note by concept keys
(:mod:`medsyn.text`), so inflection and word order do not matter, and skips what the clause denies («кашля нет»,
«спина не беспокоит», «без температуры»). The lexicon is seeded with RuMedSymptomRec's 141
symptom names and extended by :func:`mine_complaint_phrases` with complaint phrases that recur across real notes.
Another extractor (an LLM, as in the MedSyn paper) only has to implement :class:`SymptomExtractor`.
"""

from __future__ import annotations

import logging
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Protocol, runtime_checkable

from medsyn.text import clause_keys, contains_phrase, is_known_word, phrase_keys, tokenize, word_key

__all__ = ["SymptomExtractor", "LexiconExtractor", "mine_complaint_phrases", "build_lexicon", "EXTRACTORS"]

logger = logging.getLogger(__name__)

# Words that frame or qualify a complaint but are not the complaint: triggers («жалобы на», «беспокоит»),
# time («в течение 3 дней»), frequency and intensity. Stripping them lets «выраженные боли в пояснице в течение
# недели» and «боли в пояснице» count as the same phrase.
_FRAME_KEYS = frozenset(
    """жалоба беспокоить отмечать предъявлять пациент пациентка больной течение неделя день месяц год час
    минута сутки время назад период последний около несколько раз года утро вечер ночь днём днем постоянный
    периодический периодически выраженный умеренный сильный небольшой незначительный частый часто редко
    иногда постоянно ранее давно один два три также так это весь всё все другой данный связь фон прием приём
    состояние появиться появление усиливаться усилиться усиление возникать возникнуть жалоб новый нет балл ваш
    шкала характер носить сохраняться сопровождаться эпизодически умеренно дата область отдел""".split()
)
# A mined phrase must name a complaint: it needs one of these head concepts. Without this rule, recurring
# fragments of lab results («лейкоциты», «узи дата») and anatomy alone («пояснице») enter the lexicon.
SYMPTOM_HEADS = frozenset(
    """боль слабость головокружение тошнота рвота кашель зуд онемение шум звон дискомфорт жжение сухость отёк
    скованность тяжесть утомляемость усталость сердцебиение перебой одышка нехватка удушье изжога отрыжка горечь
    вздутие метеоризм запор диарея стул жажда потливость озноб лихорадка температура повышение снижение колебание
    перепад нарушение ухудшение бессонница сон просыпание тревога тревожность страх раздражительность апатия
    вялость дрожь дрожание тремор судорога спазм ком першение заложенность насморк чихание осиплость высыпание
    сыпь покраснение шелушение выпадение кровотечение выделение бели рези резь позыв подтекание недержание
    ослабление задержка приливы прилив неустойчивость шаткость пошатывание хромота ограничение хруст припухлость
    давление мелькание двоение затруднение лабильность забывчивость""".split()
)
# Heads that describe a measurement or a change rather than a complaint unless something follows them
# («повышение ад» is a complaint, «повышение» alone is not).
_NEEDS_COMPLEMENT = frozenset(
    "стул температура ухудшение повышение снижение нарушение давление колебание перепад ограничение выделение сон "
    "позыв задержка ослабление затруднение боль дискомфорт".split()
)
_NEGATION = frozenset("нет не без отрицает отрицательный отсутствует отсутствие норма норме нормы".split())
_SEGMENT = re.compile(r"[.,;:!?()\n]+|\s+и\s+|\s+-\s+")


@runtime_checkable
class SymptomExtractor(Protocol):
    """Anything that finds symptom names in a note."""

    name: str

    def extract(self, text: str) -> list[str]:
        """The canonical symptom names present in ``text``."""
        ...


def _core(segment: str) -> frozenset[str]:
    """The concept keys of a segment without framing words; empty for a negated segment."""
    tokens = tokenize(segment)
    if _NEGATION & set(tokens):  # «болей нет», «стул в норме» deny a complaint rather than state one
        return frozenset()
    return frozenset(
        k for t in tokens if (k := word_key(t)) is not None and k not in _FRAME_KEYS and not k[0].isdigit()
    )


def _surface(segment: str, keys: frozenset[str]) -> str:
    """The words of ``segment`` from the first to the last that carries ``keys``, with a trailing «области»."""
    tokens = tokenize(segment)
    marks = [word_key(t) in keys for t in tokens]
    if not any(marks):
        return ""
    first, last = marks.index(True), len(marks) - 1 - marks[::-1].index(True)
    if last + 1 < len(tokens) and word_key(tokens[last + 1]) in ("область", "отдел"):
        last += 1  # «боли в височной области» reads right, «боли в височной» does not
    return " ".join(tokens[first : last + 1])


def mine_complaint_phrases(
    notes: Iterable[str], min_notes: int = 8, max_words: int = 3, known: Iterable[frozenset[str]] = ()
) -> dict[frozenset[str], str]:
    """Find complaint phrases that recur across notes.

    Each note is cut into segments (at punctuation, «и» and dashes); framing words (triggers, time, intensity) are
    removed; what is left is a candidate if it has 1 to ``max_words`` concept keys. Candidates seen in at least
    ``min_notes`` notes are kept, named by their most frequent surface form.

    Args:
        notes: real note texts.
        min_notes: the least number of notes a phrase must occur in.
        max_words: the most concept keys a phrase may have.
        known: key-sets already in the lexicon, skipped.

    Returns:
        ``{concept keys: display name}``.
    """
    df: Counter[frozenset[str]] = Counter()
    surfaces: dict[frozenset[str], Counter[str]] = defaultdict(Counter)
    for note in notes:
        seen = set()
        for segment in _SEGMENT.split(note.lower()):
            keys = _core(segment)
            if not 1 <= len(keys) <= max_words:
                continue
            surface = _surface(segment, keys)
            if surface:
                surfaces[keys][surface] += 1
            seen.add(keys)
        df.update(seen)
    known = set(known)
    out = {}
    for keys, count in df.items():
        if count < min_notes or keys in known or not surfaces[keys]:
            continue
        if not keys & SYMPTOM_HEADS or (len(keys) == 1 and keys <= _NEEDS_COMPLEMENT):
            continue
        if not all(is_known_word(k) or k in SYMPTOM_HEADS for k in keys):
            continue  # abbreviations and cut-off words («обл», «поясн») make poor symptom names
        out[keys] = surfaces[keys].most_common(1)[0][0]
    return out


def build_lexicon(seed: Iterable[str], notes: Iterable[str], min_notes: int = 8, max_words: int = 3) -> list[str]:
    """The seed symptom names plus mined complaint phrases, one name per concept-key set."""
    lexicon: dict[frozenset[str], str] = {}
    for name in seed:
        keys = phrase_keys(name)
        if keys:
            lexicon.setdefault(keys, name.strip().lower())
    mined = mine_complaint_phrases(notes, min_notes=min_notes, max_words=max_words, known=lexicon)
    logger.info("lexicon: %d seed names + %d mined complaint phrases", len(lexicon), len(mined))
    lexicon.update(mined)
    return sorted(lexicon.values())


class LexiconExtractor:
    """Finds lexicon symptoms whose concept keys all occur, not denied, within one clause of a note.

    When two matched symptoms nest (``боль`` inside ``боль в пояснице``), only the more specific one is kept.

    Example:
        >>> LexiconExtractor(["головная боль", "боль", "тошнота"]).extract("Болит голова, тошнит.")
        ['головная боль', 'тошнота']
    """

    name = "lexicon"

    def __init__(self, lexicon: Iterable[str]) -> None:
        self.entries: list[tuple[str, frozenset[str]]] = []
        seen: set[frozenset[str]] = set()
        for name in lexicon:
            keys = phrase_keys(name)
            if keys and keys not in seen:
                seen.add(keys)
                self.entries.append((name, keys))
        self._by_key: dict[str, list[int]] = defaultdict(list)
        for i, (_, keys) in enumerate(self.entries):
            for key in keys:
                self._by_key[key].append(i)

    @property
    def lexicon(self) -> list[str]:
        return [name for name, _ in self.entries]

    def extract(self, text: str) -> list[str]:
        clauses = clause_keys(text)
        present = set().union(*clauses) if clauses else set()
        candidates = {i for key in present for i in self._by_key.get(key, ())}
        hits = [i for i in sorted(candidates) if contains_phrase(self.entries[i][1], clauses)]
        keysets = [self.entries[i][1] for i in hits]
        return [self.entries[i][0] for i in hits if not any(self.entries[i][1] < other for other in keysets)]


EXTRACTORS: dict[str, type] = {"lexicon": LexiconExtractor}
