from medsyn.backends import GenerationParams
from medsyn.backends.transformers import TransformersBackend
from medsyn.generator import resolve_template
from tests.conftest import job_config

PARAMS = GenerationParams(max_new_tokens=8, temperature=0.7)


def _config(tmp_path, kg_path, tiny_model_dir, **kw):
    return job_config(tmp_path / "out", kg_path, tiny_model_dir, **kw)


def test_one_note_api(kg_path, tiny_model_dir, tmp_path):
    from medsyn.generator import NoteGenerator

    gen = NoteGenerator(_config(tmp_path, kg_path, tiny_model_dir), PARAMS).load()
    task = gen.task("M54.5", symptoms=["боль в пояснице", "слабость"], sex="F", age=52, seed=1)
    assert task.icd10_code == "M54.5" and task.category == "M54" and task.symptoms == ["боль в пояснице", "слабость"]
    assert (task.sex, task.age) == ("F", 52) and task.example_note
    assert gen.task("M54.5", symptoms=["боль в пояснице", "слабость"], sex="F", age=52, seed=1) == task
    (record,) = gen.generate([task])
    assert record["id"] == task.id and record["request_seed"] > 0 and record["completion_tokens"] > 0
    assert record["kept"] in (True, False) and isinstance(record["filter_reasons"], list)
    drawn = gen.task("N76", seed=0)
    assert drawn.sex == "F" and 2 <= len(drawn.symptoms) <= 5


def test_template_resolution():
    from medsyn.backends.endpoint import EndpointBackend

    assert resolve_template("auto", None) == "auto"  # waits on the backend
    assert resolve_template("auto", "/some/adapter") == "instruction"
    assert resolve_template("example_guided", "/a") == "example_guided"
    local, served = TransformersBackend(), EndpointBackend(["http://127.0.0.1:9"])
    assert resolve_template("auto", None, local) == "example_guided"  # a base model without a chat template
    assert resolve_template("auto", None, served) == "instruction"  # a served model that takes no chat requests
    served.chat = True
    assert resolve_template("auto", None, served) == "example_guided"


def test_auto_adapter_is_the_packaged_one_only_for_the_embedded_model_in_process():
    from pathlib import Path

    from medsyn.generator import resolve_adapter
    from medsyn.models import DEFAULT_MODEL

    packaged = resolve_adapter(DEFAULT_MODEL, "auto")
    assert packaged and (Path(packaged) / "adapter_model.safetensors").exists()
    assert resolve_adapter(DEFAULT_MODEL, "auto", in_process=False) is None  # a server merges or loads its own
    assert resolve_adapter("someone/other-model", "auto") is None
    assert resolve_adapter(DEFAULT_MODEL, "none") is None
    assert resolve_adapter(DEFAULT_MODEL, "/my/adapter") == "/my/adapter"


def test_note_generator_streams_a_note_and_judges_it(kg_path, tiny_model_dir, tmp_path):
    from medsyn.generator import NoteGenerator

    config = _config(tmp_path, kg_path, tiny_model_dir, filter=True, max_attempts=1)
    generator = NoteGenerator(config, GenerationParams(max_new_tokens=12, temperature=0.7, stop=[])).load()
    task = generator.task("M54", symptoms=["боль в пояснице"], sex="F", age=40, seed=2)
    updates = list(generator.stream(task))
    assert len(updates) > 2 and all(u.record is None for u in updates[:-1])
    texts = [u.text for u in updates[:-1]]
    assert all(a.strip() in b for a, b in zip(texts, texts[1:]))  # the note only grows
    record = updates[-1].record
    assert record["note"] == updates[-1].text and record["id"] == task.id and record["completion_tokens"] > 1
    # the same request seed as the job's first try: the streamed note is the note the job writes
    assert record["note"] == generator.generate([task])[0]["note"]
    assert record["kept"] is False and record["filter_reasons"]  # a random model names no symptom


def test_few_shot_prompt_shows_real_notes_of_the_code_before_the_task(kg_path, tiny_model_dir, tmp_path):
    from medsyn.generator import NoteGenerator
    from medsyn.prompts import ANSWER_MARKER

    config = _config(tmp_path, kg_path, tiny_model_dir, template="few_shot", few_shot_k=3)
    gen = NoteGenerator(config, PARAMS)
    task = gen.task("M54", symptoms=["боль в пояснице"], sex="F", age=40, seed=2)
    shots = gen.shots(task)
    real = {" ".join(e["text"].split()) for e in gen.kg.examples("M54")}
    assert len(shots) == 3 and all(s["text"] in real and s["symptoms"] for s in shots)
    assert shots[-1]["text"] == " ".join(task.example_note.split())  # the task's own example nearest the task
    assert gen.shots(task) == shots  # drawn by the task id: the same prompt on a resume
    prompt = gen.prompt(task)
    assert prompt.count(ANSWER_MARKER) == 4 and prompt.endswith(ANSWER_MARKER)
    assert prompt.rindex(shots[-1]["text"]) < prompt.rindex("пол: женский, возраст: 40 лет, жалобы: боль в пояснице")
    (record,) = gen.generate([task])
    assert record["template"] == "few_shot" and record["prompt"] == prompt


def test_best_of_writes_the_kept_candidate_the_ranker_scores_highest(kg_path, tiny_model_dir, tmp_path):
    from medsyn.generator import NoteGenerator

    class Longest:  # a ranker stand-in that prefers the longest note
        def __init__(self):
            self.seen = []

        def scores(self, texts, codes, symptoms):
            self.seen.append(list(texts))
            return [float(len(t)) for t in texts]

    params = GenerationParams(max_new_tokens=12, temperature=1.0, stop=[])
    one = NoteGenerator(_config(tmp_path, kg_path, tiny_model_dir), params).load()
    task = one.task("M54", symptoms=["боль в пояснице"], sex="M", age=33, seed=4)
    (single,) = one.generate([task])
    best = NoteGenerator(_config(tmp_path, kg_path, tiny_model_dir, best_of=3), params).load()
    best.ranker = Longest()
    (record,) = best.generate([task])
    (candidates,) = best.ranker.seen
    assert len(candidates) == 3 and single["note"] == candidates[0]  # candidate 0 is the one-candidate note
    assert record["note"] == max(candidates, key=len)


def test_best_of_and_few_shot_are_part_of_the_job_only_when_used(kg_path, tiny_model_dir, tmp_path):
    import pytest

    from medsyn.errors import ConfigError
    from medsyn.generator import NoteGenerator
    from medsyn.job import job_spec

    plain = job_spec(NoteGenerator(_config(tmp_path, kg_path, tiny_model_dir)), "g")
    assert "best_of" not in plain and "few_shot_k" not in plain  # older jobs keep their fingerprint
    spec = job_spec(
        NoteGenerator(_config(tmp_path, kg_path, tiny_model_dir, best_of=2, template="few_shot", few_shot_k=2)), "g"
    )
    assert spec["best_of"] == 2 and spec["few_shot_k"] == 2 and spec["template"] == "few_shot"
    with pytest.raises(ConfigError, match="best_of"):
        _config(tmp_path, kg_path, tiny_model_dir, best_of=0)
    with pytest.raises(ConfigError, match="few_shot"):
        _config(tmp_path, kg_path, tiny_model_dir, template="few-shot")


def test_vocab_notes_narrows_the_model_to_the_real_notes_tokens_and_is_part_of_the_job(
    kg_path, tiny_model_dir, tmp_path
):
    import pytest

    from medsyn.errors import ConfigError
    from medsyn.generator import NoteGenerator
    from medsyn.job import job_spec

    assert "vocab" not in job_spec(NoteGenerator(_config(tmp_path, kg_path, tiny_model_dir)), "g")
    gen = NoteGenerator(_config(tmp_path, kg_path, tiny_model_dir, vocab="notes"), PARAMS).load()
    head = gen.backend.model.get_output_embeddings()
    tok = gen.backend.tokenizer
    used = set(tok.all_special_ids)
    for text in [n["text"] for n in gen.real_notes()] + gen._vocab_texts()[1]:
        used.update(tok(text, add_special_tokens=False)["input_ids"])
    assert sorted(used) == head.index.tolist()
    assert job_spec(gen, "g")["vocab"] == "notes"
    assert gen.generate([gen.task("M54.5", seed=1)])[0]["completion_tokens"] > 0
    with pytest.raises(ConfigError, match="transformers"):
        _config(tmp_path, kg_path, None, vocab="notes", endpoint=["http://127.0.0.1:9"])
    with pytest.raises(ConfigError, match="vocab"):
        _config(tmp_path, kg_path, tiny_model_dir, vocab="all")
