"""The consistency check: a real-trained classifier's rank of a note's own code, and its verdicts."""

import numpy as np
import pytest

from medsyn.errors import MedsynError
from medsyn.filters.consistency import ConsistencyCheck, code_ranks
from tests.conftest import FixedScores


def test_code_ranks_count_ties_against_the_note_and_flag_unknown_codes():
    scores = np.array([[0.9, 0.5, 0.1], [0.2, 0.2, 0.6], [0.3, 0.2, 0.1]])
    assert code_ranks(scores, ["A", "B", "C"], ["A", "A", "Z00"]) == [1, 3, 0]


def test_top_k_must_be_positive():
    with pytest.raises(MedsynError, match="top_k must be >= 1"):
        ConsistencyCheck(FixedScores({}), top_k=0)


def test_a_real_classifier_keeps_a_typical_note_of_its_code(small_split):
    train, dev = small_split
    check = ConsistencyCheck.from_real(train, top_k=1, max_iter=15)
    codes = [n["code"] for n in dev]
    ranks = check.ranks([n["text"] for n in dev], codes)
    assert np.mean([r == 1 for r in ranks]) > 0.5  # six codes: chance is 1/6
    assert check.ranks(["кашель"], ["Z99"]) == [0]
