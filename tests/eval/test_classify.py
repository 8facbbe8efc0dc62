"""Tests of medsyn.eval.classify: the paired bootstrap, classifier choice, cached fits, runs and their summary."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from medsyn.errors import MedsynError
from medsyn.eval.classify import (
    RunResult,
    fit_and_score,
    make_classifier,
    paired_bootstrap,
    run_experiment,
    summarise,
)
from medsyn.eval.report import classify_markdown
from medsyn.eval.upsample import Setting
from medsyn.filters.linear import LinearClassifier

BASE, SYN = Setting(1.0, 0.0), Setting(1.0, 1.0)
LABELS = ["A", "B", "C", "D"]
TRAIN = [{"id": f"t{i}", "text": f"note {c}", "code": c} for i, c in enumerate("AAAAABBBC")]
DEV = [{"id": f"d{i}", "text": f"dev {c}", "code": c} for i, c in enumerate("AABC")]


def test_paired_bootstrap_interval_holds_the_mean_and_is_ordered():
    gain = np.random.default_rng(1).normal(0.1, 1.0, size=300)
    out = paired_bootstrap(gain, n_boot=1000, seed=0)
    assert set(out) == {"diff", "lo", "hi"}
    assert out["diff"] == pytest.approx(float(gain.mean()))
    assert out["lo"] < out["diff"] < out["hi"]
    se = gain.std() / np.sqrt(len(gain))  # the 95% interval spans about four standard errors
    assert 3 * se < out["hi"] - out["lo"] < 5 * se
    assert paired_bootstrap(gain, n_boot=1000, seed=0) == out
    assert paired_bootstrap(gain, n_boot=1000, seed=1) != out


def test_paired_bootstrap_of_a_constant_and_of_nothing():
    assert paired_bootstrap(np.full(10, 0.25)) == {"diff": 0.25, "lo": 0.25, "hi": 0.25}
    assert paired_bootstrap(np.array([])) == {"diff": 0.0, "lo": 0.0, "hi": 0.0}


def test_a_wider_alpha_gives_a_narrower_interval():
    gain = np.random.default_rng(2).normal(0.0, 1.0, size=200)
    wide, narrow = paired_bootstrap(gain, alpha=0.05), paired_bootstrap(gain, alpha=0.5)
    assert wide["lo"] < narrow["lo"] < narrow["hi"] < wide["hi"]


def test_make_classifier_linear_takes_its_options():
    clf = make_classifier("linear", linear_options={"C": 2.5, "ngram_max": 5})
    assert isinstance(clf, LinearClassifier)
    assert (clf.config.C, clf.config.ngram_max, clf.config.ngram_min) == (2.5, 5, 3)


def test_make_classifier_rejects_an_unknown_model_when_it_loads(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    clf = make_classifier("no-such-org/no-such-encoder", transformer_options={"epochs": 1, "device": "cpu"})
    assert (clf.config.model, clf.config.epochs) == ("no-such-org/no-such-encoder", 1)
    with pytest.raises(MedsynError) as err:
        clf.fit(["боль в спине", "кашель"], ["M54", "J06"])
    assert str(err.value) == (
        "could not load classifier model 'no-such-org/no-such-encoder': HF_HUB_OFFLINE is set, so Hub models "
        "cannot be downloaded; download it where you are online (hf download ID --local-dir DIR) and pass --model DIR"
    )
    with pytest.raises(MedsynError, match="epochs and batch_size must be >= 1, got 0 and 16"):
        make_classifier("any", transformer_options={"epochs": 0})


@dataclass
class _Options:
    scale: float = 1.0
    seed: int = 0


class KeywordClassifier:
    """Scores a label 1 when the text names it, else 0; counts its fits."""

    fits = 0

    def __init__(self, seed: int = 0, scale: float = 1.0) -> None:
        self.config = _Options(scale=scale, seed=seed)
        self.labels_: list[str] = []

    def fit(self, texts, labels):
        type(self).fits += 1
        self.labels_ = sorted(set(labels))
        return self

    def decision_function(self, texts):
        return np.array([[self.config.scale * (label in t.split()) for label in self.labels_] for t in texts])


@pytest.fixture
def counting():
    KeywordClassifier.fits = 0
    return KeywordClassifier


def test_fit_and_score_reuses_a_cached_fit_of_the_same_data(tmp_path, counting):
    texts, codes, dev = ["note A", "note B"], ["A", "B"], ["dev B", "dev A", "dev"]
    labels, scores, seconds = fit_and_score(counting(seed=0), texts, codes, dev, tmp_path / "cache")
    assert labels == ["A", "B"] and scores.tolist() == [[0.0, 1.0], [1.0, 0.0], [0.0, 0.0]] and seconds >= 0
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 1
    again = fit_and_score(counting(seed=5), texts, codes, dev, tmp_path / "cache")  # the seed is not in the key
    assert counting.fits == 1
    assert again[0] == labels and again[1].tolist() == scores.tolist() and again[2] == pytest.approx(seconds)
    fit_and_score(counting(scale=2.0), texts, codes, dev, tmp_path / "cache")  # other options: fitted again
    fit_and_score(counting(), texts, ["B", "A"], dev, tmp_path / "cache")  # other codes: fitted again
    fit_and_score(counting(), texts, codes, dev)  # no cache
    assert counting.fits == 4
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 3


def test_run_experiment_trains_one_classifier_per_setting_and_seed(counting):
    synthetic = [{"id": f"s{i}", "text": f"syn {c}", "code": c} for i, c in enumerate("CCCZ")]  # Z has no real note
    results = run_experiment(TRAIN, DEV, [BASE, SYN], [0, 1], lambda seed: counting(seed), synthetic, True)
    assert [(r.setting, r.seed) for r in results] == [(BASE, 0), (BASE, 1), (SYN, 0), (SYN, 1)]
    assert [(r.n_real, r.n_synthetic) for r in results] == [(9, 0), (9, 0), (9, 3), (9, 3)]
    assert counting.fits == 2  # deterministic: each distinct training set is fitted once
    assert results[0].labels == ["A", "B", "C"] and results[0].scores.shape == (4, 3)
    assert results[0].scores[2].tolist() == [0.0, 1.0, 0.0]


def test_run_experiment_needs_synthetic_notes_for_a_synthetic_setting(counting):
    with pytest.raises(MedsynError) as err:
        run_experiment(TRAIN, DEV, [BASE, SYN], [0], counting, synthetic=[])
    assert str(err.value) == "'real 1 + syn 1' adds synthetic notes but none were given; pass --synthetic PATH"
    assert counting.fits == 0


def _run(setting, seed, rows, n_synthetic=0):
    """A run whose ranking of each dev note is given best first, as label indices into LABELS."""
    scores = np.zeros((len(rows), len(LABELS)))
    for i, order in enumerate(rows):
        for rank, j in enumerate(order):
            scores[i, j] = len(LABELS) - rank
    return RunResult(setting, seed, 9, n_synthetic, 0.5, LABELS, scores)


# Rankings (indices into LABELS, best first) of the dev notes A, A, B, C.
BASE_ROWS = [(0, 1, 2, 3), (1, 0, 2, 3), (1, 0, 2, 3), (3, 0, 1, 2)]  # acc@1 1/2 (notes 0, 2), hit@3 3/4
SYN_ROWS_0 = [(0, 1, 2, 3), (0, 1, 2, 3), (1, 0, 2, 3), (2, 0, 1, 3)]  # all right
SYN_ROWS_1 = [(0, 1, 2, 3), (0, 1, 2, 3), (1, 0, 2, 3), (3, 0, 1, 2)]  # the C note wrong


def _summary(**kw):
    results = [_run(BASE, 0, BASE_ROWS), _run(SYN, 0, SYN_ROWS_0, 3), _run(SYN, 1, SYN_ROWS_1, 0)]
    return summarise(results, TRAIN, DEV, **kw)


def test_summarise_hand_made_runs():
    out = _summary()
    assert out["baseline"] == "real 1 + syn 0"
    assert out["hard_codes"] == {"rare_quartile": ["C"], "low_recall": ["C"]}
    assert out["low_recall_source"] == "dev (biased)" and out["hard_codes_quantile"] == 0.25
    base, syn = out["settings"]
    assert (base["name"], syn["name"]) == ("real 1 + syn 0", "real 1 + syn 1")
    assert base["summary"]["overall"]["acc@1"] == {"mean": 0.5, "std": 0.0}
    assert base["summary"]["overall"]["hit@3"] == {"mean": 0.75, "std": 0.0}
    assert base["summary"]["overall"]["macro_f1"]["mean"] == pytest.approx(1 / 3)  # A 2/3, B 2/3, C 0, D 0
    assert syn["summary"]["overall"]["acc@1"]["mean"] == pytest.approx(0.875)
    assert syn["summary"]["overall"]["acc@1"]["std"] == pytest.approx(0.25 / np.sqrt(2))
    assert syn["summary"]["rare_quartile"]["acc@1"] == {"mean": 0.5, "std": pytest.approx(0.5 * np.sqrt(2))}
    assert (syn["n_real"], syn["n_synthetic"], syn["seconds"]) == (9.0, 1.5, 0.5)
    assert [r["seed"] for r in syn["runs"]] == [0, 1]
    assert syn["runs"][0]["overall"] == {"acc@1": 1.0, "hit@3": 1.0, "macro_f1": 1.0, "n": 4.0}
    assert syn["runs"][0]["rare_quartile"]["n"] == 1.0
    # per-note gains, seed-averaged: acc@1 [0, 1, 0, 0.5], hit@3 [0, 0, 0, 0.5]
    assert syn["vs_baseline"]["overall"]["acc@1"]["diff"] == pytest.approx(0.375)
    assert syn["vs_baseline"]["overall"]["hit@3"]["diff"] == pytest.approx(0.125)
    lo, hi = syn["vs_baseline"]["overall"]["acc@1"]["lo"], syn["vs_baseline"]["overall"]["acc@1"]["hi"]
    assert 0.0 <= lo < 0.375 < hi <= 0.75
    assert syn["vs_baseline"]["rare_quartile"]["acc@1"] == {"diff": 0.5, "lo": 0.5, "hi": 0.5}
    assert base["vs_baseline"]["overall"]["acc@1"] == {"diff": 0.0, "lo": 0.0, "hi": 0.0}
    assert out["per_code"] == {
        "A": {"train_count": 5, "baseline_recall": 0.5, "real 1 + syn 1": 1.0},
        "B": {"train_count": 3, "baseline_recall": 1.0, "real 1 + syn 1": 1.0},
        "C": {"train_count": 1, "baseline_recall": 0.0, "real 1 + syn 1": 0.5},
    }
    assert out["warnings"] == [
        "'real 1 + syn 1' added 0 synthetic notes in 1 of 2 runs: those runs are real-only "
        "(no synthetic note of a code that needs one?)"
    ]
    assert "| real 1 + syn 1 | 9 | 2 | 87.50 ± 17.68 |" in classify_markdown(out, {}, [])


def test_summarise_with_low_recall_codes_from_train():
    out = _summary(low_recall=["B", "A"])
    assert out["hard_codes"]["low_recall"] == ["A", "B"]
    assert out["low_recall_source"] == "train cross-validation"
    assert out["settings"][0]["summary"]["low_recall"]["acc@1"]["mean"] == pytest.approx(2 / 3)


def test_summarise_without_the_baseline_compares_with_the_first_setting():
    out = summarise([_run(SYN, 0, SYN_ROWS_0, 3), _run(SYN, 1, SYN_ROWS_1, 3)], TRAIN, DEV)
    assert out["baseline"] == "real 1 + syn 1" and out["warnings"] == []
    assert out["per_code"]["C"] == {"train_count": 1, "baseline_recall": 0.5}


def test_summarise_of_no_runs():
    with pytest.raises(MedsynError, match="no runs to summarise"):
        summarise([], TRAIN, DEV)


def test_eval_halves_split_every_code_the_same_way_every_time():
    """The select and report halves are disjoint, cover the set, hold every code with two notes, and never move."""
    from collections import Counter

    from medsyn.data import load_rumedtop3
    from medsyn.eval.classify import eval_halves

    dev = load_rumedtop3("dev")
    halves = eval_halves(dev)
    select, report = ({n["id"] for n in halves[h]} for h in ("select", "report"))
    assert not select & report and len(select) + len(report) == len(dev)
    assert abs(len(select) - len(report)) <= len({n["code"] for n in dev})
    counts = Counter(n["code"] for n in dev)
    assert {n["code"] for n in halves["report"]} == {c for c, k in counts.items() if k >= 2}
    again = eval_halves(list(reversed(dev)))
    assert {n["id"] for n in again["select"]} == select and {n["id"] for n in again["report"]} == report
