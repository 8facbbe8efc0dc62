import numpy as np
import pytest

from medsyn.filters.consistency import ConsistencyCheck
from medsyn.filters.rank import NoteRanker
from tests.conftest import FixedScores


class TwoLabels:
    labels_ = ["machine", "real"]

    def __init__(self, p_real):
        self.p_real = p_real

    def predict_proba(self, texts):
        return np.array([[1 - self.p_real[t], self.p_real[t]] for t in texts])


def test_score_is_coverage_times_fidelity_times_realism():
    texts = ["боль в пояснице, слабость", "боль в пояснице", "кашель"]
    fidelity = ConsistencyCheck(FixedScores({texts[0]: [0, 2, 1], texts[1]: [0, 1, 2], texts[2]: [3, 1, 2]}))
    ranker = NoteRanker(fidelity, TwoLabels({texts[0]: 0.5, texts[1]: 0.8, texts[2]: 0.9}))
    symptoms = [["боль в пояснице", "слабость"]] * 3
    parts = ranker.parts(texts, ["M54"] * 3, symptoms)
    np.testing.assert_allclose(parts[:, 0], [1.0, 0.5, 0.0])  # coverage
    np.testing.assert_allclose(parts[:, 1], [1.0, 0.5, 1 / 3])  # 1 / rank of M54
    np.testing.assert_allclose(parts[:, 2], [0.5, 0.8, 0.9])  # realism
    assert ranker.scores(texts, ["M54"] * 3, symptoms) == pytest.approx([0.5, 0.2, 0.0])
    assert ranker.parts([], [], []).shape == (0, 3)


def test_unknown_code_scores_zero_and_the_realism_labels_are_checked():
    fidelity = ConsistencyCheck(FixedScores({"x": [1, 2, 3]}))
    ranker = NoteRanker(fidelity, TwoLabels({"x": 1.0}))
    assert ranker.scores(["x"], ["Z99"], [["x"]]) == [0.0]
    bad = TwoLabels({})
    bad.labels_ = ["a", "b"]
    with pytest.raises(ValueError, match="real"):
        NoteRanker(fidelity, bad)


def test_trained_ranker_prefers_a_real_note_to_a_machine_written_one(small_split):
    from medsyn.data import load_reference

    train, dev = small_split
    codes = {n["code"] for n in train}
    written = [n for n in load_reference("gpt4") if n["code"] in codes]
    machine, held_out_machine = written[::2], written[1::2]
    assert len(held_out_machine) >= 20
    ranker = NoteRanker.from_notes(train, machine)
    real_p = ranker.parts([n["text"] for n in dev], [n["code"] for n in dev], [["x"]] * len(dev))[:, 2]
    machine_p = ranker.parts(
        [n["text"] for n in held_out_machine], [n["code"] for n in held_out_machine], [["x"]] * len(held_out_machine)
    )[:, 2]
    assert real_p.mean() > 0.5 > machine_p.mean()  # unseen notes of both kinds told apart
    fid = ranker.parts([n["text"] for n in dev], [n["code"] for n in dev], [["x"]] * len(dev))[:, 1]
    assert fid.mean() > 0.5  # real dev notes are mostly coded right
