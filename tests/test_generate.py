import os
import subprocess
import sys

import pytest

from medsyn.backends import GenerationParams
from medsyn.backends.transformers import TransformersBackend
from medsyn.generator import resolve_template
from medsyn.job import read_shards
from medsyn.pipeline import GenerateConfig, run_generation
from tests.conftest import kill_9_once_written

PARAMS = GenerationParams(max_new_tokens=8, temperature=0.7)


def _config(tmp_path, kg_path, tiny_model_dir, **kw) -> GenerateConfig:
    base = dict(
        n=10,
        out=str(tmp_path / "out"),
        seed=3,
        graph=str(kg_path),
        model=str(tiny_model_dir),
        adapter="none",
        dtype="float32",
        device="cpu",
        batch_size=4,
        filter=False,
    )
    return GenerateConfig(**(base | kw))


def test_generation_writes_a_dataset(tmp_path, kg_path, tiny_model_dir):
    from datasets import load_dataset

    config = _config(tmp_path, kg_path, tiny_model_dir)
    summary = run_generation(config, PARAMS)
    assert summary["tasks"] == 10 and summary["kept"] + summary["rejected"] == 10
    ds = load_dataset(config.out, split="train")
    row = ds[0]
    assert row["model"] == str(tiny_model_dir) and row["template"] == "example_guided"
    assert 2 <= len(row["symptoms"]) <= 5 and row["sex"] in ("M", "F") and row["seed"] == 3
    assert row["example_id"] and "Запись врача:" in row["prompt"] and row["completion_tokens"] > 0
    assert row["request_seed"] > 0 and row["endpoint"] is None
    assert '"max_new_tokens": 8' in row["generation_params"]
    assert (tmp_path / "out" / "medsyn_config.yaml").exists()
    # the same command again generates nothing new
    assert run_generation(config, PARAMS)["generated_now"] == 0


def test_a_crashing_backend_fails_tasks_that_a_rerun_retries(tmp_path, kg_path, tiny_model_dir, monkeypatch):
    full = _config(tmp_path / "full", kg_path, tiny_model_dir)
    run_generation(full, PARAMS)
    expected = sorted(r["id"] for r in read_shards(tmp_path / "full" / "out" / "shards"))

    calls = {"n": 0}
    original = TransformersBackend.generate

    def dies_on_second_batch(self, prompts, params, seed=None, seeds=None):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("CUDA error: an illegal memory access was encountered")
        return original(self, prompts, params, seed, seeds)

    config = _config(tmp_path / "cut", kg_path, tiny_model_dir)
    monkeypatch.setattr(TransformersBackend, "generate", dies_on_second_batch)
    summary = run_generation(config, PARAMS)
    assert summary["failed"] == 4 and summary["kept"] + summary["rejected"] == 6  # one batch of 4 failed
    monkeypatch.setattr(TransformersBackend, "generate", original)
    summary = run_generation(config, PARAMS)
    assert summary["generated_now"] == 4 and summary["failed"] == 0
    ids = [r["id"] for r in read_shards(tmp_path / "cut" / "out" / "shards")]
    assert sorted(ids) == expected and len(ids) == len(set(ids)) == 10


def test_notes_do_not_depend_on_batching_or_the_resume_point(tmp_path, kg_path, tiny_model_dir):
    def notes(sub, **kw):
        run_generation(_config(tmp_path / sub, kg_path, tiny_model_dir, **kw), PARAMS)
        return {r["id"]: (r["note"], r["request_seed"]) for r in read_shards(tmp_path / sub / "out" / "shards")}

    one_by_one = notes("a", batch_size=1)
    batched = notes("b", batch_size=4)
    assert one_by_one == batched  # each row samples from its own seed, whatever shares its batch
    assert len({seed for _, seed in batched.values()}) == 10
    # a smaller job, then extended to the full size, ends with the same notes
    run_generation(_config(tmp_path / "c", kg_path, tiny_model_dir, n=4), PARAMS)
    assert notes("c") == batched


def test_a_changed_setting_is_refused_and_overwrite_starts_afresh(tmp_path, kg_path, tiny_model_dir):
    from medsyn.errors import ConfigError

    run_generation(_config(tmp_path, kg_path, tiny_model_dir, n=4), PARAMS)
    hotter = GenerationParams(max_new_tokens=8, temperature=0.9)
    with pytest.raises(ConfigError, match="temperature.*--overwrite"):
        run_generation(_config(tmp_path, kg_path, tiny_model_dir, n=4), hotter)
    with pytest.raises(ConfigError, match="seed: 3 → 4"):
        run_generation(_config(tmp_path, kg_path, tiny_model_dir, n=4, seed=4), PARAMS)
    summary = run_generation(_config(tmp_path, kg_path, tiny_model_dir, n=4, overwrite=True), hotter)
    assert summary["generated_now"] == 4 and summary["kept"] + summary["rejected"] == 4
    assert '"temperature": 0.9' in (tmp_path / "out" / "medsyn_job.json").read_text()


def test_a_failed_start_leaves_nothing_in_the_way(tmp_path, kg_path, tiny_model_dir):
    from medsyn.errors import BackendError

    with pytest.raises(BackendError, match="does not exist"):
        run_generation(_config(tmp_path, kg_path, tmp_path / "no-such-model", n=2), PARAMS)
    assert not (tmp_path / "out").exists()  # refused before any folder is made
    with pytest.raises(BackendError):  # a model that exists but does not load: the folder made for it goes again
        run_generation(_config(tmp_path, kg_path, tmp_path, n=2), PARAMS)
    assert not (tmp_path / "out").exists()
    # the folder holds no note, so the corrected command is not refused for its other settings
    assert run_generation(_config(tmp_path, kg_path, tiny_model_dir, n=2), PARAMS)["generated_now"] == 2


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


def test_sigkill_then_resume(tmp_path, kg_path, tiny_model_dir):
    out = tmp_path / "killed"
    cmd = [
        sys.executable,
        "-m",
        "medsyn.cli",
        "generate",
        "--n",
        "24",
        "--out",
        str(out),
        "--seed",
        "5",
        "--graph",
        str(kg_path),
        "--model",
        str(tiny_model_dir),
        "--adapter",
        "none",
        "--dtype",
        "float32",
        "--device",
        "cpu",
        "--batch_size",
        "2",
        "--max_new_tokens",
        "24",
        "--filter",
        "false",
    ]
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    assert 0 < kill_9_once_written(cmd, out / "shards", at_least=4) < 24
    assert subprocess.run(cmd, env=env, capture_output=True).returncode == 0
    ids = [r["id"] for r in read_shards(out / "shards")]
    assert len(ids) == len(set(ids)) == 24


def test_template_resolution():
    from medsyn.backends.endpoint import EndpointBackend
    from medsyn.backends.transformers import TransformersBackend

    assert resolve_template("auto", None) == "auto"  # waits on the backend
    assert resolve_template("auto", "/some/adapter") == "instruction"
    assert resolve_template("example_guided", "/a") == "example_guided"
    local, served = TransformersBackend(), EndpointBackend(["http://127.0.0.1:9"])
    assert resolve_template("auto", None, local) == "example_guided"  # a base model without a chat template
    assert resolve_template("auto", None, served) == "instruction"  # a served model that takes no chat requests
    served.chat = True
    assert resolve_template("auto", None, served) == "example_guided"


def test_filter_keeps_rejected_notes_in_their_own_config(tmp_path, kg_path, tiny_model_dir, monkeypatch):
    from datasets import load_dataset

    config = _config(tmp_path, kg_path, tiny_model_dir, n=6, filter=True, max_attempts=2)
    calls = []
    original = TransformersBackend.generate

    def counting(self, prompts, params, seed=None, seeds=None):
        calls.append(list(seeds))
        return original(self, prompts, params, seed, seeds)

    monkeypatch.setattr(TransformersBackend, "generate", counting)
    summary = run_generation(config, PARAMS)
    # every rejected note is tried once more, by itself, with its next seed: 12 requests, 12 different seeds
    seeds = [s for batch in calls for s in batch]
    assert len(seeds) == 12 and len(set(seeds)) == 12
    # a random-weight model writes no symptoms, so the filter turns every note down, and none is lost
    assert summary["kept"] == 0 and summary["rejected"] == 6
    assert not list((tmp_path / "out" / "data").glob("*.parquet"))
    shown = subprocess.run(
        [sys.executable, "scripts/show_notes.py", config.out], capture_output=True, text=True, check=True
    ).stdout
    assert "0 kept notes" in shown and "'rejected'" in shown
    card = (tmp_path / "out" / "README.md").read_text(encoding="utf-8")
    assert "No note passed the filter yet" in card and 'load_dataset("' not in card.split("rejected = ")[0]
    rejected = load_dataset(config.out, "rejected", split="train")
    assert len(rejected) == 6 and not any(rejected["kept"]) and set(rejected["attempts"]) == {2}
    assert all(
        any(r.startswith(("symptom_coverage", "words")) for r in reasons) for reasons in rejected["filter_reasons"]
    )


def test_output_folders_that_cannot_hold_a_dataset_are_refused_before_any_work(
    tmp_path, kg_path, tiny_model_dir, monkeypatch
):
    import errno
    from pathlib import Path

    from medsyn.errors import BackendError, ConfigError

    a_file = tmp_path / "notes.txt"
    a_file.write_text("x")
    with pytest.raises(ConfigError, match="is a file"):
        run_generation(_config(tmp_path, kg_path, tiny_model_dir, out=str(a_file)), PARAMS)
    with pytest.raises(ConfigError, match="lies under .*notes.txt, which is a file"):
        run_generation(_config(tmp_path, kg_path, tiny_model_dir, out=str(a_file / "out")), PARAMS)
    with pytest.raises(BackendError, match="model path /no/such/model does not exist"):
        run_generation(_config(tmp_path, kg_path, "/no/such/model", n=2), PARAMS)

    def read_only(self, data):  # a read-only mount, which root's permission bits cannot imitate
        raise OSError(errno.EROFS, "Read-only file system", str(self))

    monkeypatch.setattr(Path, "write_bytes", read_only)
    calls = []
    monkeypatch.setattr(TransformersBackend, "load", lambda self: calls.append("load"))
    with pytest.raises(ConfigError, match="cannot be written \\(Read-only file system\\)"):
        run_generation(_config(tmp_path, kg_path, tiny_model_dir, out=str(tmp_path / "ro")), PARAMS)
    assert calls == []  # refused before the model was loaded


def test_the_saved_config_resumes_its_folder_from_any_directory(tmp_path, kg_path, tiny_model_dir, monkeypatch):
    import yaml

    from medsyn.cli import main

    out = tmp_path / "out"
    run_generation(_config(tmp_path, kg_path, tiny_model_dir, n=3), PARAMS)
    saved = yaml.safe_load((out / "medsyn_config.yaml").read_text(encoding="utf-8"))
    assert "out" not in saved and saved["overwrite"] is False and saved["n"] == 3
    (out / "medsyn_config.yaml").write_text(yaml.safe_dump(saved | {"n": 5}), encoding="utf-8")
    monkeypatch.chdir(out)  # from inside the dataset: the two new notes land here, not in a nested folder
    assert main(["generate", "--config", "medsyn_config.yaml"]) == 0
    monkeypatch.chdir(tmp_path.parent)  # and from elsewhere, by the file's path
    (out / "medsyn_config.yaml").write_text(yaml.safe_dump(saved | {"n": 6}), encoding="utf-8")
    assert main(["generate", "--config", str(out / "medsyn_config.yaml")]) == 0
    ids = [r["id"] for r in read_shards(out / "shards")]
    assert len(ids) == len(set(ids)) == 6 and not (out / "out").exists()


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


@pytest.mark.slow
def test_the_default_path_converts_the_embedded_model_and_writes_russian_notes(tmp_path, kg_path):
    """What `make demo` runs: the GGUF converted in a fresh cache, the packaged adapter, two notes."""
    import re

    config = GenerateConfig(n=2, out=str(tmp_path / "out"), seed=0, graph=str(kg_path), max_attempts=1)
    params = GenerationParams(max_new_tokens=64, temperature=0.7, top_p=0.95, top_k=50, repetition_penalty=1.15)
    summary = run_generation(config, params)
    assert summary["kept"] + summary["rejected"] == 2 and summary["failed"] == 0
    rows = read_shards(tmp_path / "out" / "shards")
    for row in rows:
        assert row["model"] == "gemma-3-270m" and row["template"] == "instruction"
        assert row["adapter"] == "gemma-3-270m-ru-notes"  # the packaged adapter, named without a machine path
        assert row["completion_tokens"] > 5
        # a Russian note: mostly Cyrillic letters
        letters = re.findall(r"[A-Za-zА-Яа-яЁё]", row["note"])
        assert len(letters) > 20 and sum("А" <= c <= "я" or c in "Ёё" for c in letters) / len(letters) > 0.9


def test_a_job_works_through_categories_round_robin(kg):
    from medsyn.pipeline import interleave
    from medsyn.sampling import TaskSampler

    tasks = TaskSampler(kg, seed=0).sample(300)
    order = interleave(tasks)
    assert sorted(t.id for t in order) == sorted(t.id for t in tasks)
    categories = {t.category for t in tasks}
    # the first len(categories) tasks touch every category once: a job stopped early still spreads over codes
    assert {t.category for t in order[: len(categories)]} == categories
    first_m54 = [t.id for t in order if t.category == "M54"]
    assert first_m54 == [t.id for t in tasks if t.category == "M54"]


def test_consistency_and_targeting_at_generation_time(tmp_path, kg_path, tiny_model_dir):
    import numpy as np

    from medsyn.filters.consistency import ConsistencyCheck
    from medsyn.generator import NoteGenerator

    class Ranker:
        """Ranks M54 first and the other codes after it: notes written for another code do not carry it."""

        def __init__(self, codes):
            self.labels_ = ["M54", *sorted(set(codes) - {"M54"})]

        def decision_function(self, texts):
            return np.tile(-np.arange(len(self.labels_), dtype=float), (len(texts), 1))

    config = _config(tmp_path, kg_path, tiny_model_dir, n=6, fill_rare_to=20, consistency_top_k=1, max_attempts=1)
    gen = NoteGenerator(config, PARAMS)
    tasks = gen.sampler.sample(6)
    assert all(len(gen.kg.examples(t.category)) < 20 for t in tasks)  # targeting: categories below 20 real notes
    ranker = Ranker([t.category for t in tasks])
    gen.consistency = ConsistencyCheck(ranker, top_k=1)
    for record in gen.load().generate(tasks):
        rank = ranker.labels_.index(record["category"]) + 1
        assert (
            f"consistency: {record['category']} ranked {rank} > top 1 by the real-notes classifier"
            in (record["filter_reasons"])
        )
        assert not record["kept"]


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
