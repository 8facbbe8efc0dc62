"""What identifies a person in a note: contact details, document numbers, dates of birth, and names from real notes.

:func:`find_identifiers` finds strings that identify people whoever wrote the note: phone numbers, e-mail
addresses, dates of birth, and Russian document numbers (СНИЛС, полис ОМС, паспорт). :class:`PersonNames` learns
the people named in a real corpus, by the shapes names take in Russian notes (a surname with initials, a name with
a patronymic, ФИО in full), and finds them again in other notes, inflected or not. Eponyms of diseases («болезнь
Паркинсона») are not names of people in a note: they stand without initials or patronymics, so they are not learnt.

What is found is reported masked (:func:`mask`), so a log or a card that says what was found never repeats it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from medsyn.text import name_tags

__all__ = ["IDENTIFIER_PATTERNS", "Finding", "PersonNames", "find_identifiers", "mask"]

IDENTIFIER_PATTERNS: dict[str, re.Pattern[str]] = {
    "phone number": re.compile(
        r"(?<![\d\w])(?:\+7|8)[\s\-(]{0,2}\d{3}[\s\-)]{0,2}\d{3}[\s\-]?\d{2}[\s\-]?\d{2}(?!\d)"
    ),
    "e-mail address": re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b"),
    "date of birth": re.compile(
        r"(?:дата\s+рождения|д\.\s?р\.|г\.\s?р\.|родил(?:ся|ась))\s*:?\s*\d{1,2}[./-]\d{1,2}[./-](?:19|20)?\d{2}"
        r"|(?<!\d)(?:19|20)\d{2}\s*г\.\s?р\.",
        re.IGNORECASE,
    ),
    "СНИЛС": re.compile(
        r"(?<!\d)\d{3}-\d{3}-\d{3}[\s-]\d{2}(?!\d)|снилс\D{0,10}\d{3}\D?\d{3}\D?\d{3}\D?\d{2}", re.IGNORECASE
    ),
    "полис ОМС": re.compile(r"(?:полис|омс)\D{0,15}\d{16}(?!\d)|(?<!\d)\d{16}(?!\d)", re.IGNORECASE),
    "паспорт": re.compile(r"паспорт\D{0,15}\d{2}\s?\d{2}\s?(?:№\s?)?\d{6}(?!\d)", re.IGNORECASE),
}
"""Kinds of identifier → the pattern that finds them."""

_UP = "А-ЯЁ"
_LOW = "а-яё"
_WORD = rf"[{_UP}][{_LOW}]+(?:-[{_UP}][{_LOW}]+)?"
_PATRONYMIC = rf"[{_UP}][{_LOW}]+(?:ович|евич|ьич|овн|евн|ичн|иничн)[{_LOW}]*"
_INITIALS = rf"\b[{_UP}]\.\s?[{_UP}]\."
# (pattern, the role of each group): s = surname, n = first name, p = patronymic
_NAME_SHAPES = (
    (re.compile(rf"\b({_WORD})\s+{_INITIALS}"), "s"),  # Кузнецов П.С.
    (re.compile(rf"{_INITIALS}\s?({_WORD})\b"), "s"),  # П.С. Кузнецов
    (re.compile(rf"\b({_WORD})\s+({_WORD})\s+({_PATRONYMIC})\b"), "snp"),  # Кузнецов Пётр Семёнович
    (re.compile(rf"\b({_WORD})\s+({_PATRONYMIC})(?:\s+({_WORD}))?\b"), "nps"),  # Пётр Семёнович [Кузнецов]
)
_ENDING = re.compile(r"(?:ыми|ими|ого|его|ому|ему|ой|ей|ою|ею|ым|им|ом|ем|ую|юю|ая|яя|ий|ый|ых|их|а|я|у|ю|е|ы|и|о)$")
_CAPITALIZED = re.compile(rf"\b[{_UP}][{_LOW}]{{2,}}(?:-[{_UP}][{_LOW}]+)?\b")
# first names are too common to identify anyone on their own; surnames and patronymics are not
_FIRST_NAMES = frozenset(
    """александр алексей анатолий андрей антон аркадий артем артём борис вадим валентин валерий василий виктор
    виталий владимир владислав вячеслав геннадий георгий григорий даниил денис дмитрий евгений егор иван игорь
    илья кирилл константин леонид максим михаил никита николай олег павел петр пётр роман руслан сергей
    станислав степан тимофей федор фёдор юрий ярослав александра алена алёна алина алла анастасия анна антонина
    валентина валерия вера виктория галина дарья диана евгения екатерина елена елизавета жанна зинаида зоя инна
    ирина кристина ксения лариса лидия любовь людмила маргарита марина мария надежда наталья нина оксана ольга
    полина раиса светлана софия софья тамара татьяна ульяна юлия яна""".split()
)


def _is_first_name(word: str) -> bool:
    return _stem(word) in _FIRST_STEMS or "Name" in name_tags(word)


def _stem(word: str) -> str:
    """A surname or patronymic without its case ending (Смирновой, Смирнова → смирнов)."""
    word = word.lower().replace("ё", "е")
    stem = _ENDING.sub("", word)
    return stem if len(stem) >= 4 else word


_FIRST_STEMS = frozenset(_stem(n) for n in _FIRST_NAMES)


def mask(text: str) -> str:
    """``text`` with all but its first character and its length hidden (``+7 (912) …`` → ``+·············``)."""
    return text[:1] + "·" * (len(text) - 1)


@dataclass(frozen=True)
class Finding:
    """One identifying string in a note: its kind and its masked form."""

    kind: str
    masked: str

    def __str__(self) -> str:
        return f"{self.kind} {self.masked}"


def find_identifiers(text: str) -> list[Finding]:
    """The phone numbers, e-mail addresses, dates of birth and document numbers in ``text``."""
    found = []
    for kind, pattern in IDENTIFIER_PATTERNS.items():
        found += [Finding(kind, mask(m.group(0).strip())) for m in pattern.finditer(text)]
    return found


class PersonNames:
    """The surnames and patronymics of the people a corpus names, found again in other text.

    Args:
        stems: surname and patronymic stems (:func:`_stem`), at least 4 letters each.
    """

    def __init__(self, stems: Iterable[str]) -> None:
        self.stems = frozenset(s for s in stems if len(s) >= 4 and s not in _FIRST_STEMS)

    def __len__(self) -> int:
        return len(self.stems)

    @classmethod
    def from_texts(cls, texts: Iterable[str]) -> PersonNames:
        """Learn the people named in ``texts`` from the shapes of Russian names (see the module)."""
        stems = set()
        for text in texts:
            for shape, roles in _NAME_SHAPES:
                for match in shape.finditer(text):
                    words = dict(zip(roles, match.groups()))
                    if "n" in words and not _is_first_name(words["n"]):
                        continue  # «Галлюцинации Частичная» has a patronymic's ending but no first name before it
                    if "p" in words and not name_tags(words["p"]) & {"Patr", "unknown"}:
                        continue
                    for role in "sp":
                        word = words.get(role)
                        if word and name_tags(word.split("-")[0]) & {"Surn", "Patr", "Name", "unknown"}:
                            stems.add(_stem(word))
        return cls(stems)

    def find(self, text: str) -> list[Finding]:
        """The capitalized words of ``text`` whose stem is a learnt surname or patronymic."""
        if not self.stems:
            return []
        return [
            Finding("name from the real notes", mask(m.group(0)))
            for m in _CAPITALIZED.finditer(text)
            if _stem(m.group(0)) in self.stems
        ]
