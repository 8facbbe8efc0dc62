"""The quality filter: symptom coverage, near copies of real notes and of the style example, length."""

import pytest

from medsyn.filters.note import CopyIndex, FilterResult, NoteFilter, copy_score_against, longest_common_words, ngrams

REAL = [
    "Жалобы на боли в поясничной области, усиливающиеся при наклонах, онемение левой ноги.",
    "Кашель с мокротой, насморк, температура 37,8 в течение трёх дней.",
    "Беспокоят изжога и тяжесть в эпигастрии после еды, отрыжка кислым.",
]


def test_lemma_matching_counts_paraphrased_symptoms():
    f = NoteFilter.from_real([], min_symptom_coverage=0.5)
    result = f.check("Пациентку третий день беспокоит головная боль и тошнота по утрам.", ["болит голова", "кашель"])
    assert result.metrics["symptom_coverage"] == pytest.approx(0.5)  # «болит голова» = «головная боль»; no cough
    assert result.keep
    worse = f.check("Пациентку беспокоит тошнота по утрам, слабость.", ["болит голова", "кашель", "насморк"])
    assert worse.metrics["symptom_coverage"] == 0.0
    assert not worse.keep and worse.reasons == ["symptom_coverage 0.00 < 0.50"]


def test_exact_copy_is_flagged_and_an_unrelated_note_is_not():
    f = NoteFilter.from_real(REAL)
    copy = f.check(REAL[1], [])
    assert isinstance(copy, FilterResult)
    assert not copy.keep
    assert copy.metrics["copy_score"] == 1.0
    assert any(r.startswith("copy_score 1.00 >= 0.70 (real note #1)") for r in copy.reasons)
    fresh = f.check("Высыпания на коже кистей рук, зуд усиливается ночью, шелушение.", [])
    assert fresh.keep and fresh.reasons == []
    assert fresh.metrics["copy_score"] == 0.0


def test_near_copy_with_a_changed_ending_is_flagged_by_copy_score():
    index = CopyIndex(REAL)
    note = "Жалобы на боли в поясничной области, усиливающиеся при наклонах, онемение правой ноги."
    match = index.query(note)
    assert match.real_index == 0
    # 12 words, 10 trigrams; the two that end in «правой ноги» are not in the real note
    assert match.copy_score == pytest.approx(8 / 10)
    assert match.lcs_words == 10


def test_long_copied_run_is_flagged_by_lcs_against_the_style_example():
    example = "больной отмечает слабость в течение месяца снижение аппетита похудание на пять килограммов за полгода"
    note = "Со слов пациента: " + example + ", других жалоб нет, лечился сам, без эффекта, к врачу не обращался."
    f = NoteFilter.from_real(REAL, max_example_lcs_words=14, max_example_copy_score=0.9)
    result = f.check(note, [], example=example)
    assert result.metrics["example_lcs_words"] == 14  # the whole 14-word example, in a 31-word note
    assert result.reasons == ["example_lcs_words 14 >= 14"]


def test_short_notes_are_dropped():
    result = NoteFilter.from_real(REAL).check("Кашель.", [])
    assert not result.keep and result.reasons == ["words 1 < 5"]


def test_ngram_and_lcs_helpers_hand_checked():
    assert ngrams(["a", "b", "c", "d"], 3) == [("a", "b", "c"), ("b", "c", "d")]
    assert longest_common_words(list("xabcdy"), list("zzabcdq")) == 4
    assert copy_score_against(["a", "b", "c", "d"], ["b", "c", "d", "e"], 2) == pytest.approx(2 / 3)


def test_a_long_note_that_carries_a_short_real_note_is_caught():
    from medsyn.filters.note import NoteFilter

    real = ["Жалобы на боли в пояснице после подъёма тяжести три дня назад", "Кашель и насморк"]
    filt = NoteFilter.from_real(real, min_symptom_coverage=0.0)
    padding = " ".join(f"слово{i}" for i in range(60))
    leaked = f"{padding} жалобы на боли в пояснице после подъёма тяжести три дня назад {padding}"
    verdict = filt.check(leaked, [])
    assert verdict.metrics["copy_score"] < 0.7 and verdict.metrics["lcs_words"] < 15  # the old checks miss it
    assert not verdict.keep and any(r.startswith("containment 1.00") for r in verdict.reasons)
    # a short stock phrase inside a note is not a leak
    assert filt.check(f"{padding} кашель и насморк", []).metrics["containment"] == 0.0
