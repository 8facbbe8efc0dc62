from __future__ import annotations

from medsyn.finetune.evaluate import build_dev_tasks, prompt_following, task_prompt


def test_dev_tasks_come_from_dev_notes(fake_extractor):
    tasks = build_dev_tasks(10, seed=1, extractor=fake_extractor, max_symptoms=2)
    assert len(tasks) == 10
    assert all(1 <= len(t["symptoms"]) <= 2 and t["sex"] in ("M", "F") for t in tasks)
    assert build_dev_tasks(10, seed=1, extractor=fake_extractor, max_symptoms=2) == tasks
    prompt = task_prompt(tasks[0])
    assert prompt.startswith("### Задание: Напиши текст анамнеза") and prompt.endswith("### Ответ:")


def test_prompt_following_is_lemma_matched():
    tasks = [{"symptoms": ["головная боль", "кашель"]}, {"symptoms": ["тошнота"]}]
    result = prompt_following(tasks, ["Болит голова третий день, кашляет.", ""])
    assert result["per_task"] == [1.0, 0.0]
    assert result["coverage"] == 0.5 and result["empty_share"] == 0.5


def test_prompt_following_counts_only_what_the_note_states():
    tasks = [{"symptoms": ["кашель", "головная боль"]}, {"symptoms": ["боль в спине"]}]
    result = prompt_following(tasks, ["Кашля нет. Головной боли нет, отрицает.", "Болит голова. Спина не беспокоит."])
    assert result["per_task"] == [0.0, 0.0]


def test_rescore_scores_the_same_notes_again(tmp_path):
    import json

    import pytest

    from medsyn.errors import ConfigError
    from medsyn.finetune.evaluate import main, rescore

    notes = [
        {
            "id": "a",
            "symptoms": ["кашель", "тошнота"],
            "sex": "F",
            "age": 40,
            "before": "",
            "after": "Кашель. Тошноты нет.",
        },
        {"id": "b", "symptoms": ["боль в спине"], "sex": "M", "age": 50, "before": "", "after": "Болит спина."},
    ]
    old = {"tasks": 2, "notes": notes, "before": {"coverage": 0.0, "full_coverage_share": 0.0}}
    old["after"] = {"coverage": 1.0, "full_coverage_share": 1.0, "generation_seconds": 12.0}
    new = rescore(old)
    assert new["after"]["per_task"] == [0.5, 1.0] and new["after"]["coverage"] == 0.75
    assert new["after"]["generation_seconds"] == 12.0 and new["notes"] == notes
    assert new["previous_scores"]["after"] == {"coverage": 1.0, "full_coverage_share": 1.0}
    assert new["previous_scores"]["scoring"] == {"scope": "note", "negation": False}
    assert new["scoring"] == {"scope": "clause", "negation": True}
    assert rescore(new)["previous_scores"] == new["previous_scores"]  # the generating run's scores stay
    path = tmp_path / "eval.json"
    path.write_text(json.dumps(old, ensure_ascii=False), encoding="utf-8")
    assert main(["--adapter", str(tmp_path), "--rescore", "true"]) == 0
    assert json.loads(path.read_text(encoding="utf-8"))["after"]["coverage"] == 0.75
    with pytest.raises(ConfigError, match="is not a file"):
        main(["--adapter", str(tmp_path / "none"), "--rescore", "true"])
    with pytest.raises(ConfigError, match="no notes to score again"):
        rescore({"tasks": 0})
