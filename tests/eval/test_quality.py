import pytest

from medsyn.eval.quality import corpus_stats, distinct_n, evaluate_quality, self_bleu
from medsyn.filters.note import CopyIndex, FilterResult, NoteFilter, copy_score_against, longest_common_words, ngrams
from medsyn.text import tokenize

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


def test_diversity_hand_checked():
    toks = [["a", "b", "a"], ["a", "c"]]
    assert distinct_n(toks, 1) == pytest.approx(3 / 5)  # a, b, c over 5 tokens
    assert distinct_n(toks, 2) == pytest.approx(3 / 3)  # ab, ba, ac
    same = [tokenize("боли в пояснице при наклонах вперёд")] * 3
    assert self_bleu(same) == pytest.approx(1.0)
    different = [tokenize("кашель и насморк три дня подряд"), tokenize("изжога после еды и тяжесть в желудке")]
    assert self_bleu(different) < 0.2


def test_evaluate_quality_on_a_small_slice(real_notes):
    real = real_notes[:300]
    synthetic = [
        {"id": "copy", "text": real[5]["text"], "code": real[5]["code"], "symptoms": None, "example": None},
        {
            "id": "new",
            "text": "Беспокоит головная боль в затылке, тошнота, головокружение при подъёме с постели.",
            "code": "I10",
            "symptoms": ["головная боль", "тошнота", "кашель"],
            "example": real[7]["text"],
        },
    ]
    report, per_note = evaluate_quality(synthetic, real, self_bleu_sample=None)
    assert per_note["copy_score"][0] == 1.0 and per_note["closest_real"][0] == real[5]["id"]
    assert report["copying"]["train"]["near_copies"] == 1
    assert report["prompt_following"]["mean_coverage"] == pytest.approx(2 / 3)
    assert report["realism"]["sample_size"] == 2
    stats = corpus_stats([n["text"] for n in real[:50]])
    assert stats["n"] == 50 and 0 < stats["distinct_1"] < stats["distinct_2"] <= 1


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


def _sacrebleu_self_bleu(token_lists):
    sacrebleu = pytest.importorskip("sacrebleu")
    texts = [" ".join(t) for t in token_lists]
    scores = []
    for i, hyp in enumerate(texts):
        refs = texts[:i] + texts[i + 1 :]
        bleu = sacrebleu.sentence_bleu(
            hyp, refs, smooth_method="floor", smooth_value=0.1, tokenize="none", use_effective_order=False
        )
        scores.append(bleu.score / 100)
    return sum(scores) / len(scores)


def test_self_bleu_applies_the_brevity_penalty_against_the_other_notes():
    import math

    long = "жалобы на боль в пояснице слева при наклоне и ходьбе отдаёт в ногу".split()[:12]
    notes = [long[:4], long, list(long)]  # 4, 12 and 12 tokens; the short one is all in the long ones
    # the short note matches perfectly but is a third of the closest other length: BLEU = exp(1 - 12/4)
    expected = (math.exp(-2) + 1 + 1) / 3
    assert self_bleu(notes) == pytest.approx(expected, abs=1e-9)
    assert self_bleu(notes) == pytest.approx(_sacrebleu_self_bleu(notes), abs=1e-6)


def test_self_bleu_matches_sacrebleu_on_real_looking_notes():
    import random

    rng = random.Random(0)
    words = "жалобы на боль в груди кашель слабость одышка температура головная ночью днём при ходьбе".split()
    notes = [[rng.choice(words) for _ in range(rng.randint(5, 30))] for _ in range(25)]
    assert self_bleu(notes) == pytest.approx(_sacrebleu_self_bleu(notes), abs=1e-6)
