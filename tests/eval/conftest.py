"""Fixtures of the evaluation tests: small, stratified slices of real RuMedTop3 notes."""

from __future__ import annotations

import pytest

CODES = ("M54", "J06", "N92", "K29", "I10", "L30")


@pytest.fixture(scope="session")
def small_split():
    """(train, dev): the notes of six frequent codes, at most 40 train and 10 dev notes each."""
    from medsyn.data import load_rumedtop3

    def pick(notes, per_code):
        out, seen = [], {c: 0 for c in CODES}
        for n in notes:
            if n["code"] in seen and seen[n["code"]] < per_code:
                out.append(n)
                seen[n["code"]] += 1
        return out

    return pick(load_rumedtop3("train"), 40), pick(load_rumedtop3("dev"), 10)
