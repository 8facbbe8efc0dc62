"""The reader's measures: realism AUC, label fidelity and the contradiction rate tell real notes from bad ones."""

from __future__ import annotations

from medsyn.eval.reader import (
    contradiction_rate,
    label_fidelity,
    plot_reader,
    reader_measures,
    reader_table,
    realism_auc,
)


def test_realism_auc_is_near_half_for_real_notes_and_near_one_for_foreign_text(real_notes):
    real = [n["text"] for n in real_notes]
    assert 0.35 < realism_auc(real[:300], real[300:900], folds=3) < 0.65
    foreign = [f"Lorem ipsum dolor sit amet {i} consectetur" for i in range(300)]
    assert realism_auc(foreign, real[300:900], folds=3) > 0.95


def test_label_fidelity_counts_codes_in_the_top_k():
    from tests.conftest import FixedScores

    clf = FixedScores({"a": [3.0, 2.0, 1.0], "b": [1.0, 2.0, 3.0]})
    notes = [{"text": "a", "code": "J06"}, {"text": "b", "code": "J06"}]
    assert label_fidelity(notes, clf) == {"top1": 50.0, "top3": 100.0, "top10": 100.0}


def test_contradiction_rate_uses_the_patient_when_known():
    notes = [{"text": "Боли в яичке.", "sex": "F"}, {"text": "Боли в яичке."}, {"text": "Кашель.", "sex": "M"}]
    assert abs(contradiction_rate(notes) - 100 / 3) < 1e-9


def test_reader_measures_compare_sets_and_plot(real_notes, tmp_path):
    real, held = real_notes[:600], real_notes[600:800]
    absurd = [{"text": "Боли в яичке, температура 19,5 С.", "code": n["code"], "sex": "F"} for n in held]
    measures = reader_measures({"held-out real": held, "absurd": absurd}, real)
    assert measures["absurd"]["contradiction_rate"] == 100.0 and measures["held-out real"]["contradiction_rate"] == 0.0
    assert measures["absurd"]["realism_auc"] > measures["held-out real"]["realism_auc"]
    assert measures["held-out real"]["label_fidelity_top10"] > measures["absurd"]["label_fidelity_top10"]
    assert plot_reader(measures, tmp_path / "r.png").stat().st_size > 1000
    assert reader_table(measures).count("\n") == 3
