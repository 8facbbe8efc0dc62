import numpy as np
import pytest

from medsyn.errors import MedsynError
from medsyn.eval.metrics import classification_metrics
from medsyn.filters.linear import LinearClassifier


def test_fits_and_scores(small_split):
    train, dev = small_split
    clf = LinearClassifier().fit([n["text"] for n in train], [n["code"] for n in train])
    assert clf.labels_ == sorted({n["code"] for n in train})
    proba = clf.predict_proba([n["text"] for n in dev])
    assert proba.shape == (len(dev), 6)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    # Training notes are (almost) memorised with C=10, and dev is far above chance (1/6).
    assert np.mean(np.array(clf.predict([n["text"] for n in train])) == [n["code"] for n in train]) > 0.95
    m = classification_metrics([n["code"] for n in dev], proba, clf.labels_)
    assert m["acc@1"] > 0.5
    assert m["hit@3"] >= m["acc@1"]


def test_matches_scikit_learn_on_the_full_feature_space(small_split):
    """The Gram-matrix fit solves the same one-vs-rest problem as scikit-learn on the explicit tf-idf columns."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier

    train, dev = small_split
    texts, y = [n["text"] for n in train], [n["code"] for n in train]
    ours = LinearClassifier(max_iter=300, tol=1e-5).fit(texts, y)
    vec = TfidfVectorizer(analyzer="char", ngram_range=(3, 8))
    ref = OneVsRestClassifier(LogisticRegression(C=10, solver="newton-cg", tol=1e-6)).fit(vec.fit_transform(texts), y)
    dev_texts = [n["text"] for n in dev]
    a = ours.decision_function(dev_texts)
    b = ref.decision_function(vec.transform(dev_texts))
    assert np.mean(a.argmax(1) == b.argmax(1)) >= 0.95
    assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.98


def test_basis_subset_above_max_basis(small_split):
    train, _ = small_split
    clf = LinearClassifier(max_basis=60).fit([n["text"] for n in train], [n["code"] for n in train])
    assert clf._chol.shape[0] <= 66  # stratified, at least one note per code
    acc = np.mean(np.array(clf.predict([n["text"] for n in train])) == [n["code"] for n in train])
    assert acc > 0.6


def test_errors_say_what_is_wrong():
    with pytest.raises(MedsynError, match="at least 2 codes"):
        LinearClassifier().fit(["a b c", "d e f"], ["A", "A"])
    with pytest.raises(MedsynError, match="not fitted"):
        LinearClassifier().decision_function(["x"])
    with pytest.raises(MedsynError, match="ngram_min"):
        LinearClassifier(ngram_min=5, ngram_max=3)
