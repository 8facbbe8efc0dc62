"""A Space over a user's own notes: MEDSYN_GRAPH and MEDSYN_NOTES are read, and no real note reaches a visitor."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from medsyn.space.core import HIDDEN, Demo, SpaceConfig

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "own_notes.csv"


def test_the_env_names_the_graph_the_notes_and_whether_real_text_shows():
    config = SpaceConfig.from_env(
        {"MEDSYN_GRAPH": "my/kg.json", "MEDSYN_NOTES": "my_notes.csv", "MEDSYN_SHOW_REAL_TEXT": "false"}
    )
    assert (config.graph, config.notes, config.show_real_text) == ("my/kg.json", "my_notes.csv", False)
    assert SpaceConfig.from_env({}).show_real_text is None


def test_real_text_shows_for_rumedtop3_and_not_for_a_users_notes(kg, tmp_path):
    from medsyn.corpus import load_corpus
    from medsyn.kg import build_graph
    from medsyn.sampling import TaskSampler

    packaged = Demo(SpaceConfig(), kg=kg)
    assert packaged.shows_real_text and packaged.shown("a real note") == "a real note"

    own = build_graph(corpus=load_corpus(str(FIXTURE), log=False))
    private = Demo(SpaceConfig(), kg=own)
    task = TaskSampler(own, codes=["I21"]).task("I21", 0)
    prompt = f"Пример записи:\n{task.example_note}\n\nНапиши новую запись."
    assert not private.shows_real_text
    assert private.shown(task.example_note) == HIDDEN
    assert task.example_note not in private.shown_prompt(prompt, task) and HIDDEN in private.shown_prompt(prompt, task)
    assert Demo(SpaceConfig(notes=str(FIXTURE))).shows_real_text is False

    shown = Demo(replace(SpaceConfig(), show_real_text=True), kg=own)
    assert shown.shown(task.example_note) == task.example_note
