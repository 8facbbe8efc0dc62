import math
import random
from collections import Counter

import pytest

from medsyn.errors import MedsynError
from medsyn.sampling import (
    J3,
    TaskSampler,
    allocate,
    category_weight,
    sample_demographics,
    weighted_sample_without_replacement,
)


def test_weight_formula_by_hand():
    # J(x) = ln(1+x): J(10) = ln 11 = 2.397895, J(2.397895) = 1.223156, J(1.223156) = ln 2.223156 = 0.798928
    assert J3(10) == pytest.approx(0.798928, abs=1e-6)
    # J3(1) = ln(1 + ln(1 + ln 2)) = ln(1 + ln 1.693147) = ln(1.526589) = 0.423036
    assert J3(1) == pytest.approx(0.423036, abs=1e-6)
    assert category_weight(10, 1) == pytest.approx(0.798928 * 0.423036, abs=1e-6)
    assert category_weight(0, 5) == 0.0


def test_allocation_sums_to_n_and_is_proportional():
    weights = {"A": 3.0, "B": 2.0, "C": 1.0, "D": 0.5}
    for n in (0, 1, 7, 100, 1001):
        counts = allocate(n, weights)
        assert sum(counts.values()) == n
        for k, w in weights.items():
            assert abs(counts[k] - n * w / 6.5) < 1
    assert allocate(10, {"A": 1.0, "B": 1.0, "C": 1.0}) == {"A": 4, "B": 3, "C": 3}
    with pytest.raises(MedsynError):
        allocate(5, {"A": 0.0})


def test_category_frequencies_follow_weights(kg):
    sampler = TaskSampler(kg, seed=3)
    weights = sampler.weights()
    tasks = sampler.sample(2000)
    freq = Counter(t.category for t in tasks)
    total = sum(weights.values())
    for cat, w in weights.items():
        assert abs(freq[cat] - 2000 * w / total) < 1


def test_tasks_are_well_formed_and_reproducible(kg):
    a = TaskSampler(kg, seed=7).sample(300)
    b = TaskSampler(kg, seed=7).sample(300)
    assert a == b
    assert len({t.id for t in a}) == 300
    assert a != TaskSampler(kg, seed=8).sample(300)
    for t in a:
        assert t.icd10_code.startswith(t.category)
        assert 2 <= len(t.symptoms) <= 5 and len(set(t.symptoms)) == len(t.symptoms)
        assert set(t.symptoms) <= {e.symptom for e in kg.symptoms(t.category)}
        assert t.example_id in {e["id"] for e in kg.examples(t.category)}
        assert t.sex in ("M", "F") and 18 <= t.age <= 89
    assert sum(len(t.example_note) >= 80 for t in a) / len(a) > 0.9


def test_a_larger_n_keeps_the_smaller_tasks(kg):
    small = {t.id: t for t in TaskSampler(kg, seed=1).sample(50)}
    large = {t.id: t for t in TaskSampler(kg, seed=1).sample(200)}
    assert set(small) <= set(large)
    assert all(small[i] == large[i] for i in small)


def test_symptoms_drawn_by_weight():
    rng = random.Random(0)
    counts = Counter()
    for _ in range(4000):
        counts.update(weighted_sample_without_replacement(["a", "b", "c"], [8.0, 1.0, 1.0], 1, rng))
    assert counts["a"] / 4000 == pytest.approx(0.8, abs=0.03)


def test_sex_specific_codes_and_restriction(kg):
    rng = random.Random(0)
    assert {sample_demographics(rng, "N92.0")[0] for _ in range(50)} == {"F"}
    tasks = TaskSampler(kg, seed=0, codes=["N92"]).sample(20)
    assert {t.category for t in tasks} == {"N92"} and {t.sex for t in tasks} == {"F"}
    with pytest.raises(MedsynError, match="no symptoms or real examples"):
        TaskSampler(kg, codes=["A00"])
    assert math.isclose(sum(TaskSampler(kg).allocate(37).values()), 37)


def test_targeting_fills_rare_categories_first_then_spreads_the_rest(kg):
    sampler = TaskSampler(kg, seed=0, fill_rare_to=30)
    real = {c: len(kg.examples(c)) for c in sampler.categories}
    gaps = sampler.gaps()
    assert (
        gaps and all(real[c] + g == 30 for c, g in gaps.items()) and all(real[c] >= 30 for c in set(real) - set(gaps))
    )
    counts = sampler.allocate(sum(gaps.values()) + 105)
    assert sum(counts.values()) == sum(gaps.values()) + 105
    assert all(counts[c] >= g for c, g in gaps.items())
    assert set(counts) == set(sampler.categories)  # the rest reaches every category
    fewer = sampler.allocate(100)  # fewer tasks than the gaps: split in proportion to them
    assert sum(fewer.values()) == 100 and set(fewer) <= set(gaps)
    rarest = min(gaps, key=lambda c: (real[c], c))
    assert fewer[rarest] >= max(fewer.values()) - 1


def test_targeted_tasks_come_in_proportion_so_a_cut_job_covers_every_category(kg):
    sampler = TaskSampler(kg, seed=0, fill_rare_to=40)
    tasks = sampler.sample(2000)
    counts = sampler.allocate(2000)
    first_half = Counter(t.category for t in tasks[:1000])
    for c, m in counts.items():
        assert abs(first_half[c] - m / 2) <= 1
    assert len({t.id for t in tasks}) == 2000
    plain = [t.category for t in TaskSampler(kg, seed=0).sample(300)]
    assert plain == sorted(plain)  # untargeted jobs keep their category-by-category order


def test_tasks_a_clinician_would_accept(kg):
    from medsyn.demographics import check_demographics

    for t in TaskSampler(kg, seed=5).sample(1000):
        check_demographics(t.icd10_code, t.sex, t.age)
    n76 = TaskSampler(kg, seed=0, codes=["N76"]).sample(200)
    assert {t.sex for t in n76} == {"F"}
    n95 = TaskSampler(kg, seed=0, codes=["N95"]).sample(200)
    assert 30 not in {t.age for t in n95} and min(t.age for t in n95) >= 45
    n40 = TaskSampler(kg, seed=0, codes=["N40", "N41"]).sample(100)
    assert {t.sex for t in n40} == {"M"} and min(t.age for t in n40 if t.category == "N40") >= 45
    rng = random.Random(0)
    assert {sample_demographics(rng, "O80.0")[0] for _ in range(100)} == {"F"}


def test_custom_task_refuses_the_wrong_patient(kg):
    sampler = TaskSampler(kg)
    with pytest.raises(MedsynError, match="limited to female patients"):
        sampler.custom_task("N76", sex="M")
    with pytest.raises(MedsynError, match="age 30 is not plausible for N95"):
        sampler.custom_task("N95", age=30)
    task = sampler.custom_task("N95", sex="F", age=55)
    assert (task.sex, task.age) == ("F", 55)


def test_symptoms_that_go_together_are_drawn_together():
    from medsyn.kg import SymptomEdge
    from medsyn.sampling import draw_symptoms

    # «a» and «b» are core and come together; «x» is one note's incidental symptom with a high specificity weight
    edges = [SymptomEdge("a", 20, 1.0), SymptomEdge("b", 20, 1.0), SymptomEdge("x", 1, 1.0)]
    cooc = {frozenset(("a", "b")): 15, frozenset(("b", "x")): 1}
    rng = random.Random(0)
    with_x = sum("x" in draw_symptoms(edges, cooc, 2, rng) for _ in range(2000)) / 2000
    alone = sum("x" in draw_symptoms(edges, {}, 2, rng) for _ in range(2000)) / 2000
    # «x» joins «b» (once together) in about 8% of draws, «a» (never) in 2.5%; independent draws take it in 2 of 3
    assert with_x < 0.08 and alone > 0.6
    assert draw_symptoms(edges, {}, 2, random.Random(3)) == weighted_sample_without_replacement(
        ["a", "b", "x"], [1.0, 1.0, 1.0], 2, random.Random(3)
    )


def test_task_symptoms_are_pairs_real_notes_state(kg):
    import itertools

    from medsyn.sampling import draw_symptoms

    def unattested(use_counts: bool) -> float:
        rng, pairs, never = random.Random(0), 0, 0
        for category in kg.categories():
            edges, cooc = kg.symptoms(category), kg.cooccurrence(category)
            for _ in range(20):
                drawn = draw_symptoms(edges, cooc if use_counts else {}, 4, rng)
                for a, b in itertools.combinations(drawn, 2):
                    pairs, never = pairs + 1, never + (frozenset((a, b)) not in cooc)
        return never / pairs

    assert unattested(True) < 0.45 < 0.55 < unattested(False)
