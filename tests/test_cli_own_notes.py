"""``medsyn kg build --notes FILE`` and ``medsyn kg show`` on a graph of a user's corpus."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from medsyn.cli import main
from medsyn.kg import MedicalKG

FIXTURE = Path(__file__).parent / "fixtures" / "own_notes.csv"


@pytest.fixture(scope="module")
def own_graph(tmp_path_factory) -> Path:
    """The fixture's graph, built by the command line."""
    out = tmp_path_factory.mktemp("own-kg") / "kg.json"
    assert main(["kg", "build", "--notes", str(FIXTURE), "--notes_name", "clinic", "--out", str(out)]) == 0
    return out


def test_kg_build_from_notes(own_graph, capsys):
    """The built graph is written where asked, records the corpus by the given name and has the codes' edges."""
    kg = MedicalKG.load(own_graph)
    assert kg.corpus["name"] == "clinic" and kg.corpus["notes"] == 52
    assert kg.code_notes("I21") == {"I21.0": 10, "I21.4": 9}
    assert main(["kg", "stats", "--graph", str(own_graph)]) == 0
    assert '"categories_with_examples": 5' in capsys.readouterr().out


def test_kg_show_a_code_with_notes_of_its_own(own_graph, capsys):
    """kg show I21.0 prints the code's own symptoms and examples and the codes of I21 with notes of their own."""
    assert main(["kg", "show", "I21.0", "--graph", str(own_graph)]) == 0
    out = capsys.readouterr().out
    kg = MedicalKG.load(own_graph)
    own = kg.symptoms("I21.0")
    assert out.startswith("I21.0  ")
    assert f"top symptoms ({len(own)} of {len(own)};" in out
    for e in own:
        assert f"{e.count:4d}  {e.symptom}\n" in out
    assert "потливость" not in out  # an I21.4 symptom only
    assert "codes of I21 with notes of their own: I21.0 (10), I21.4 (9)" in out
    assert "real example notes: 10" in out
    assert "symptoms and examples of its category" not in out


def test_kg_show_a_code_without_notes_shows_its_category(own_graph, capsys):
    """A code with no notes of its own (I21.9) says it shows its category's symptoms and examples."""
    assert main(["kg", "show", "I21.9", "--graph", str(own_graph)]) == 0
    out = capsys.readouterr().out
    assert "symptoms and examples of its category I21:" in out
    assert "real example notes: 19" in out
    assert "with notes of their own" not in out


@pytest.mark.parametrize("bad", ["missing.csv", "ab.csv", "cp1251.csv"])
def test_a_bad_notes_source_is_one_error_line(bad, tmp_path, caplog, capsys):
    """A source that does not exist, has no usable columns or is not UTF-8 returns 2 with one error line, no
    traceback and no graph."""
    (tmp_path / "ab.csv").write_text("a;b\n1;2\n", encoding="utf-8")
    (tmp_path / "cp1251.csv").write_bytes("текст;код\nболь в пояснице;M54.5\n".encode("cp1251"))
    out = tmp_path / "kg.json"
    with caplog.at_level(logging.ERROR):
        code = main(["kg", "build", "--notes", str(tmp_path / bad), "--out", str(out)])
    assert code == 2
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "\n" not in errors[0].getMessage()
    assert bad in errors[0].getMessage()
    assert "Traceback" not in capsys.readouterr().err
    assert not out.exists()
