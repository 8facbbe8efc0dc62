from collections import Counter

import numpy as np
import pytest

from medsyn.errors import MedsynError
from medsyn.eval.classify import run_experiment, summarise
from medsyn.eval.upsample import (
    PAPER_GRID,
    Setting,
    build_training_set,
    fill_rare,
    lowest_recall_codes,
    parse_setting,
    rarest_codes,
)
from medsyn.filters.linear import stratified_indices


def test_stratified_subsampling_keeps_every_code(real_notes):
    labels = [n["code"] for n in real_notes]
    idx = stratified_indices(labels, 0.1, seed=3)
    kept = Counter(labels[i] for i in idx)
    assert set(kept) == set(labels)  # all 105 codes, even those with 11 notes
    full = Counter(labels)
    for code, n in kept.items():
        assert n == max(1, round(0.1 * full[code]))
    assert stratified_indices(labels, 0.1, seed=3) == idx  # seeded
    assert stratified_indices(labels, 0.1, seed=4) != idx
    assert stratified_indices(labels, 1.0) == list(range(len(labels)))


def test_fill_rare_tops_up_only_rare_codes():
    real = [{"id": str(i), "text": "x", "code": "A"} for i in range(5)] + [{"id": "b", "text": "y", "code": "B"}]
    syn = [{"id": f"s{i}", "text": "z", "code": c} for i, c in enumerate("AAABBBBBC")]
    added = fill_rare(real, syn, target=4, seed=0)
    assert Counter(n["code"] for n in added) == {"B": 3}  # A has 5 >= 4; C has no real note


def test_build_training_set_paper_setting():
    real = [{"id": f"r{i}", "text": "x", "code": "AB"[i % 2]} for i in range(20)]
    syn = [{"id": f"s{i}", "text": "y", "code": "AB"[i % 2]} for i in range(8)]
    notes, n_syn = build_training_set(real, syn, Setting(0.5, 0.5), seed=0)
    assert (len(notes) - n_syn, n_syn) == (10, 4)
    assert notes[-1]["id"].startswith("s")


def test_parse_setting():
    assert parse_setting("0.5:1") == Setting(0.5, 1.0)
    assert parse_setting("1:fill=30") == Setting(1.0, 0.0, 30)
    with pytest.raises(MedsynError, match="REAL:SYN"):
        parse_setting("half")


def test_hard_code_definitions():
    labels = ["A"] * 10 + ["B"] * 2 + ["C"] * 5 + ["D"] * 1
    assert rarest_codes(labels, 0.25) == ["D"]  # 25th percentile of (1, 2, 5, 10) is 1.75
    assert lowest_recall_codes({"A": 0.9, "B": 0.1, "C": 0.1, "D": 0.5}, 0.5) == ["B", "C"]


class _Nearest:
    """A stand-in classifier: scores each code by the share of its training notes' words in the note."""

    def fit(self, texts, labels):
        self.labels_ = sorted(set(labels))
        self.words = {c: set() for c in self.labels_}
        for t, c in zip(texts, labels):
            self.words[c].update(t.lower().split())
        return self

    def decision_function(self, texts):
        return np.array([[len(set(t.lower().split()) & self.words[c]) for c in self.labels_] for t in texts], float)


def test_grid_produces_eight_settings_times_seeds(small_split):
    train, dev = small_split
    synthetic = [{**n, "id": "syn-" + n["id"]} for n in train[::2]]
    settings = [Setting(r, s) for r, s in PAPER_GRID] + [Setting(1.0, 0.0, 45)]
    results = run_experiment(train, dev, settings, [0, 1, 2], lambda seed: _Nearest(), synthetic, deterministic=True)
    assert len(results) == 9 * 3
    summary = summarise(results, train, dev)
    assert [s["name"] for s in summary["settings"]][:8] == [Setting(r, s).name for r, s in PAPER_GRID]
    assert all(len(s["runs"]) == 3 for s in summary["settings"])
    half = summary["settings"][0]
    assert half["n_real"] == pytest.approx(len(train) / 2, abs=6)
    full_syn = next(s for s in summary["settings"] if s["name"] == "real 1 + syn 1")
    assert full_syn["n_synthetic"] == len(synthetic)
    # fraction 1 with no synthetic notes is the same set whatever the seed: same metrics, zero std
    base = next(s for s in summary["settings"] if s["name"] == "real 1 + syn 0")
    assert base["summary"]["overall"]["acc@1"]["std"] == 0.0
    assert set(summary["hard_codes"]) == {"rare_quartile", "low_recall"}
    assert "real 1 + syn 1" in next(iter(summary["per_code"].values()))


def test_synthetic_settings_need_synthetic_notes(small_split):
    train, dev = small_split
    with pytest.raises(MedsynError, match="--synthetic"):
        run_experiment(train, dev, [Setting(1.0, 1.0)], [0], lambda seed: _Nearest())


def test_paired_bootstrap_hand_checked():
    from medsyn.eval.classify import paired_bootstrap

    assert paired_bootstrap(np.full(50, 0.5)) == {"diff": 0.5, "lo": 0.5, "hi": 0.5}
    gain = np.array([1.0] * 30 + [0.0] * 70)
    ci = paired_bootstrap(gain, seed=1)
    assert ci["diff"] == pytest.approx(0.3) and ci["lo"] < 0.3 < ci["hi"]
    assert ci["lo"] > 0.15 and ci["hi"] < 0.45  # ±1.96 * sqrt(0.21 / 100) ≈ ±0.09
