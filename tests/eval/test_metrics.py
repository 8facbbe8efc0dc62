import numpy as np
import pytest

from medsyn.eval.metrics import classification_metrics, hit_at_k, macro_f1, per_code_recall, top_k

LABELS = ["A", "B", "C", "D"]
# Hand-ranked rows: 1) B > C > A > D   2) A > D > C > B   3) D > C > B > A   4) C > A > B > D
SCORES = np.array(
    [
        [0.2, 0.5, 0.3, 0.0],
        [0.6, 0.0, 0.1, 0.3],
        [0.0, 0.1, 0.2, 0.7],
        [0.3, 0.2, 0.4, 0.1],
    ]
)


def test_top_k_orders_by_score():
    assert top_k(SCORES, LABELS, 3) == [["B", "C", "A"], ["A", "D", "C"], ["D", "C", "B"], ["C", "A", "B"]]


def test_hit_at_3_hand_checked():
    # true codes: B (rank 1), C (rank 3), A (rank 4: miss), B (rank 3)
    y = ["B", "C", "A", "B"]
    m = classification_metrics(y, SCORES, LABELS)
    assert m["acc@1"] == pytest.approx(1 / 4)
    assert m["hit@3"] == pytest.approx(3 / 4)
    assert m["n"] == 4


def test_unknown_true_code_is_a_miss_and_ties_break_by_label_order():
    scores = np.array([[0.5, 0.5, 0.5, 0.5]])
    assert top_k(scores, LABELS, 3) == [["A", "B", "C"]]
    assert hit_at_k(["Z"], top_k(scores, LABELS, 3), 3) == 0.0
    assert hit_at_k(["C"], top_k(scores, LABELS, 3), 3) == 1.0


def test_macro_f1_hand_checked():
    y_true = ["A", "A", "B", "C"]
    y_pred = ["A", "B", "B", "B"]
    # A: tp1 fp0 fn1 -> 2/3; B: tp1 fp2 fn0 -> 2/4; C: tp0 -> 0
    assert macro_f1(y_true, y_pred) == pytest.approx((2 / 3 + 0.5 + 0) / 3)
    assert macro_f1(y_true, y_pred, ["A"]) == pytest.approx(2 / 3)
    assert per_code_recall(y_true, y_pred) == {"A": 0.5, "B": 1.0, "C": 0.0}


def test_subset_metrics_use_only_the_subset_notes():
    y = ["B", "C", "A", "B"]
    m = classification_metrics(y, SCORES, LABELS, codes=["B"])
    assert m["n"] == 2
    assert m["acc@1"] == pytest.approx(0.5)  # note 1 right, note 4 predicted C
    assert m["hit@3"] == pytest.approx(1.0)


def test_shape_mismatch_is_reported():
    with pytest.raises(ValueError, match="shape"):
        top_k(SCORES[:, :3], LABELS)
