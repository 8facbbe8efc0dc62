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
