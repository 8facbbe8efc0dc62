import pytest

from medsyn.eval.quality import corpus_stats, distinct_n, evaluate_quality, self_bleu
from medsyn.text import tokenize

REAL = [
    "Жалобы на боли в поясничной области, усиливающиеся при наклонах, онемение левой ноги.",
    "Кашель с мокротой, насморк, температура 37,8 в течение трёх дней.",
    "Беспокоят изжога и тяжесть в эпигастрии после еды, отрыжка кислым.",
]


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
