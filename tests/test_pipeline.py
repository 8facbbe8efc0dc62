import os
import subprocess
import sys

import pytest

from medsyn.backends import GenerationParams
from medsyn.backends.transformers import TransformersBackend
from medsyn.job import read_shards
from medsyn.pipeline import GenerateConfig, run_generation
from tests.conftest import job_config, kill_9_once_written

PARAMS = GenerationParams(max_new_tokens=8, temperature=0.7)


def _config(tmp_path, kg_path, tiny_model_dir, **kw) -> GenerateConfig:
    return job_config(kw.pop("out", tmp_path / "out"), kg_path, tiny_model_dir, **kw)


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


# -- faults a user meets: two writers, Ctrl-C and SIGTERM, a full disk ----------------------------------------------


@pytest.fixture
def slow_engine():
    """A simulated engine in its own process, slow enough (about 0.8 s a note) to be stopped mid-run."""
    from tests.conftest import sim_engine

    with sim_engine(tokens_per_s=10.0) as url:
        yield url


def _generate_cmd(out, kg_path, url, n=40):
    return [
        sys.executable, "-m", "medsyn.cli", "generate", "--endpoint", url, "--n", str(n), "--seed", "5",
        "--out", str(out), "--graph", str(kg_path), "--template", "instruction", "--filter", "false",
        "--max_concurrency", "4", "--max_new_tokens", "8",
    ]  # fmt: skip


def _start_and_wait(cmd, shard_dir, at_least):
    import time

    env = dict(os.environ, HF_HUB_OFFLINE="1")
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if shard_dir.exists() and len(read_shards(shard_dir)) >= at_least:
            return proc
        time.sleep(0.05)
    proc.kill()
    raise AssertionError(f"the run wrote fewer than {at_least} notes: {proc.communicate()[1][-2000:]}")


@pytest.mark.slow
def test_a_second_run_into_a_busy_folder_stops_at_once_and_no_task_is_done_twice(tmp_path, kg_path, slow_engine):
    import re

    out = tmp_path / "out"
    first = _start_and_wait(_generate_cmd(out, kg_path, slow_engine), out / "shards", at_least=2)
    second = subprocess.run(
        _generate_cmd(out, kg_path, slow_engine), env=dict(os.environ), capture_output=True, text=True, timeout=120
    )
    assert second.returncode == 2 and "Traceback" not in second.stderr
    (line,) = [ln for ln in second.stderr.splitlines() if "being written by" in ln]
    assert re.search(rf"{out} is being written by process {first.pid} on \S+ since 20\d\d-", line), line
    assert "pass another --out" in line
    assert first.wait(timeout=180) == 0
    ids = [r["id"] for r in read_shards(out / "shards")]
    assert len(ids) == len(set(ids)) == 40
    # the lock went with the process: the next run goes ahead (nothing left to do)
    assert subprocess.run(_generate_cmd(out, kg_path, slow_engine), capture_output=True).returncode == 0


@pytest.mark.slow
@pytest.mark.parametrize("signum, code", [(2, 130), (15, 143)])
def test_ctrl_c_and_sigterm_save_the_work_and_say_how_to_resume(tmp_path, kg_path, slow_engine, signum, code):
    from datasets import load_dataset

    out = tmp_path / "out"
    proc = _start_and_wait(_generate_cmd(out, kg_path, slow_engine), out / "shards", at_least=4)
    proc.send_signal(signum)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == code and "Traceback" not in stderr, stderr[-3000:]
    last = stderr.strip().splitlines()[-1]
    safe = len(read_shards(out / "shards"))
    assert f"stopped: {safe} notes (kept {safe}, rejected 0, failed 0) are safe in {out}" in last, last
    assert last.endswith("run the same command to resume")
    assert len(load_dataset(str(out), split="train")) == safe  # the dataset files are written for what is done
    # the same command finishes the job, with no task done twice
    assert subprocess.run(_generate_cmd(out, kg_path, slow_engine), capture_output=True).returncode == 0
    ids = [r["id"] for r in read_shards(out / "shards")]
    assert len(ids) == len(set(ids)) == 40


@pytest.mark.slow
def test_a_second_ctrl_c_stops_at_once(tmp_path, kg_path, slow_engine):
    import time

    out = tmp_path / "out"
    proc = _start_and_wait(_generate_cmd(out, kg_path, slow_engine), out / "shards", at_least=2)
    proc.send_signal(2)
    time.sleep(0.1)
    proc.send_signal(2)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in stderr, stderr[-3000:]
    assert "stopping now" in stderr and "run the same command to resume" in stderr.strip().splitlines()[-1]


def test_the_runs_last_line_says_what_happened(tmp_path, kg_path, tiny_model_dir):
    from medsyn.pipeline import summary_line

    summary = run_generation(_config(tmp_path, kg_path, tiny_model_dir, n=4), PARAMS)
    line = summary_line(summary)
    assert line.startswith(f"done: kept {summary['kept']}, rejected {summary['rejected']}, failed 0 of 4 tasks")
    assert "notes/s" in line and line.endswith(f"in {tmp_path / 'out'}")


@pytest.fixture
def small_disk(tmp_path):
    """A 160 KiB tmpfs, for a disk that fills during a run (skipped where mounting is not allowed)."""
    mount = tmp_path / "small-disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=160k", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.decode().strip() or 'not root'}); no full disk to test")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_is_one_line_and_the_folder_resumes_elsewhere(tmp_path, kg_path, small_disk):
    import shutil

    from medsyn.errors import DiskError
    from medsyn.serving.sim import SimulatedEngine
    from tests.backends.test_endpoint import _Loop

    loop = _Loop()
    try:
        engine = loop.run(SimulatedEngine(ttft=0.0, tokens_per_s=5000.0).start())
        config = job_config(small_disk / "out", kg_path, endpoint=[engine.url], n=300, max_concurrency=8)
        with pytest.raises(DiskError) as err:
            run_generation(config, PARAMS)
        message = str(err.value)
        assert "\n" not in message and "No space left on device" in message
        assert message.endswith("free space (or make the folder writable), then run the same command")
        safe = len(read_shards(small_disk / "out" / "shards"))
        assert 0 < safe < 300 and f"{safe} notes are safe in {small_disk / 'out'}" in message
        # moved to a disk with room, the same command goes on from there and ends with every task once
        shutil.copytree(small_disk / "out", tmp_path / "moved")
        summary = run_generation(job_config(tmp_path / "moved", kg_path, endpoint=[engine.url], n=300), PARAMS)
        assert summary["generated_now"] == 300 - safe and summary["kept"] + summary["rejected"] == 300
        ids = [r["id"] for r in read_shards(tmp_path / "moved" / "shards")]
        assert len(ids) == len(set(ids)) == 300
        loop.run(engine.stop())
    finally:
        loop.close()


def test_engines_join_and_leave_a_running_job_through_its_fleet_file(tmp_path, kg_path):
    import threading
    import time

    from tests.conftest import sim_engine

    with sim_engine(tokens_per_s=40.0) as first, sim_engine(tokens_per_s=40.0) as second:
        fleet = tmp_path / "fleet.txt"
        fleet.write_text(f"{first} 2\n")
        out = tmp_path / "out"

        def change_the_fleet():
            deadline = time.time() + 60
            while time.time() < deadline and len(read_shards(out / "shards")) < 4:
                time.sleep(0.05)
            fleet.write_text(f"{first} 2\n{second} 4\n")  # a second engine joins
            while time.time() < deadline and len(read_shards(out / "shards")) < 20:
                time.sleep(0.05)
            fleet.write_text(f"{second} 4\n")  # and the first leaves, with requests in flight

        changer = threading.Thread(target=change_the_fleet)
        changer.start()
        config = job_config(out, kg_path, endpoint=[str(fleet)], n=40, max_concurrency=1)
        summary = run_generation(config, PARAMS)
        changer.join()
    assert summary["kept"] + summary["rejected"] == 40 and summary["failed"] == 0
    served = {e["url"]: e["ok"] for e in summary["endpoints"]}
    assert served[first] >= 4 and served[second] >= 10, served
    late = [r for r in read_shards(out / "shards")][-8:]  # the last notes all came from the engine that stayed
    assert {r["endpoint"] for r in late} == {second}
