import pytest

from medsyn.errors import MedsynError, UnknownCodeError
from medsyn.space.core import Demo, SpaceConfig, highlight


def test_config_from_env():
    config = SpaceConfig.from_env({"MEDSYN_ENDPOINT": "http://a:1, http://b:2", "MEDSYN_SPACE_CONCURRENCY": "2"})
    assert config.endpoint == ["http://a:1", "http://b:2"] and config.concurrency == 2
    with pytest.raises(MedsynError, match="whole number"):
        SpaceConfig.from_env({"MEDSYN_SPACE_CONCURRENCY": "many"})


def test_highlight_joins_the_words_of_one_symptom():
    note = "Жалобы на боли в пояснице, кашель."
    pieces = highlight(note, ["боль в пояснице", "кашель", "тошнота"])
    assert "".join(text for text, _ in pieces) == note
    assert [p for p in pieces if p[1]] == [("боли в пояснице", "боль в пояснице"), ("кашель", "кашель")]
    twice = highlight("слабость в слабость", ["слабость"])
    assert twice == [("слабость", "слабость"), (" в ", None), ("слабость", "слабость")]


def test_lookup_hierarchy_weight_and_uncovered_codes(space_demo):
    info = space_demo.lookup("м54,5")  # Cyrillic letter and a comma are read as M54.5
    assert info.code == "M54.5" and info.category == "M54" and info.covered
    assert [level for level, *_ in info.hierarchy] == ["chapter", "block", "block", "category", "code"]
    assert info.hierarchy[3][1:] == ("M54", "Дорсалгия")
    assert info.n_examples > 100 and info.symptoms[0].weight >= info.symptoms[-1].weight
    assert 0 < info.weight_share < 1 and 1 <= info.weight_rank <= info.n_categories
    uncovered = space_demo.lookup("A00")
    assert not uncovered.covered and "no real notes" in uncovered.reason and len(uncovered.nearest) == 5
    assert all(c in space_demo.weights for c, _ in uncovered.nearest)
    # nearest covered codes come from the same block, then chapter, when there are any
    block = space_demo.lookup("M53")
    assert block.covered or block.nearest[0][0].startswith("M")
    with pytest.raises(UnknownCodeError, match="closest"):
        space_demo.lookup("Z999")
    with pytest.raises(MedsynError, match="enter an ICD-10 code"):
        space_demo.lookup("  ")


def test_tasks_are_checked(space_demo):
    task = space_demo.sample("M54", 3)
    assert task.category == "M54" and 2 <= len(task.symptoms) <= 5 and task.example_note
    assert space_demo.sample("M54", 3) == task
    ok = space_demo.make_task("M54", ["боль в пояснице", " Боль в  пояснице "], "M", 40.0, 1)
    assert ok.symptoms == ["боль в пояснице"] and ok.age == 40
    cases = [
        (("A00", ["кашель"], "F", 40, 0), "no real notes.*try"),
        (("M54", [], "F", 40, 0), "symptom list is empty"),
        (("M54", [f"симптом {i}" for i in range(9)], "F", 40, 0), "too many"),
        (("M54", ["кашель" * 20], "F", 40, 0), "characters; keep each under 60"),
        (("M54", ["кашель"], "F", 250, 0), "between 0 and 120"),
        (("M54", ["кашель"], "F", None, 0), "whole number"),
        (("M54", ["кашель"], "X", 40, 0), "sex must be M or F"),
        (("M54", ["кашель"], "F", 40, -1), "seed must be between"),
    ]
    for args, message in cases:
        with pytest.raises(MedsynError, match=message):
            space_demo.make_task(*args)
    with pytest.raises(MedsynError, match="temperature"):
        space_demo.params(5.0, 100)
    with pytest.raises(MedsynError, match="note length"):
        space_demo.params(0.7, 100_000)


def test_prompt_length_limit(space_demo):
    task = space_demo.make_task("M54", ["боль в пояснице"], "F", 40, 0)
    generator = space_demo.generator("example_guided", space_demo.params(), 0)
    assert "боль в пояснице" in space_demo.prompt_text(generator, task)
    strict = Demo(SpaceConfig(max_prompt_chars=50), kg=space_demo.kg)
    strict.config.max_prompt_chars = 50
    with pytest.raises(MedsynError, match="over the limit of 50"):
        Demo.prompt_text(strict, generator, task)


def test_stream_and_judge_on_the_tiny_model(space_demo):
    task = space_demo.make_task("J06", ["кашель", "насморк"], "M", 30, 4)
    generator = space_demo.generator(None, space_demo.params(0.7, 16), 4)
    updates = list(space_demo.stream(generator, task))
    assert len(updates) > 1 and updates[-1].record is not None
    verdict = space_demo.judge(generator, task, updates[-1].text)
    assert verdict.kept == updates[-1].record["kept"] and verdict.reasons == updates[-1].record["filter_reasons"]
    real = "Жалобы на кашель и насморк, температура 37,5, слабость в течение трёх дней."
    judged = space_demo.judge(generator, task, real)
    assert judged.found == ["кашель", "насморк"] and judged.coverage == 1.0 and judged.copy_score is not None
    assert judged.closest_note
    denied = space_demo.judge(
        generator, task, "Кашля нет. Жалобы на насморк."
    )  # a denied symptom is neither found nor marked
    assert denied.found == ["насморк"] and denied.missing == ["кашель"] and denied.coverage == 0.5


def test_a_failing_endpoint_is_one_line(kg, note_filter):
    from tests.conftest import free_port

    config = SpaceConfig(endpoint=[f"http://127.0.0.1:{free_port()}"])
    demo = Demo(config, kg=kg, note_filter=note_filter).load()
    task = demo.make_task("M54", ["боль в пояснице"], "F", 40, 0)
    with pytest.raises(MedsynError, match=r"the endpoint http://127\.0\.0\.1:\d+ failed \(connection\)"):
        list(demo.stream(demo.generator(None, demo.params(), 0), task))


def test_the_verdict_says_when_no_filter_judged_the_note():
    from medsyn.space.core import Verdict
    from medsyn.space.ui import verdict_markdown

    unjudged = Verdict(kept=True, reasons=[], coverage=1.0, found=["кашель"], missing=[])
    assert "without the quality filter" in verdict_markdown(unjudged) and "kept" not in verdict_markdown(unjudged)
    judged = Verdict(kept=False, reasons=["symptom_coverage 0.00 < 0.50"], coverage=0.0, found=[], missing=["кашель"],
                     filtered=True)  # fmt: skip
    assert "rejected** by the quality filter: symptom_coverage 0.00 < 0.50" in verdict_markdown(judged)
