"""One job split into shards: which tasks a shard owns, scheduler variables, and shards that add up to one run."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from medsyn.backends import GenerationParams
from medsyn.errors import ConfigError, FolderBusyError
from medsyn.job import folder_lock, read_shards
from medsyn.pipeline import run_generation
from medsyn.sharding import Shard, add_run_stats, bucket, parse_shard, read_run_stats, shard_from_env, total_stats
from tests.conftest import job_config, kill_9_once_written

PARAMS = GenerationParams(max_new_tokens=8, temperature=0.7)


# ---------------------------------------------------------------------------------------------- which tasks


def test_every_task_has_exactly_one_shard_and_the_shares_are_even():
    ids = [f"t{i:06d}" for i in range(4000)]
    owners = [[s for s in range(4) if Shard(s, 4).owns(tid)] for tid in ids]
    assert all(len(o) == 1 for o in owners)
    shares = [sum(o == [s] for o in owners) for s in range(4)]
    assert min(shares) > 900 and max(shares) < 1100, shares
    assert bucket("t000001", 4) == bucket("t000001", 4)  # a hash of the id alone: the same on every machine


@pytest.mark.parametrize(
    "value, expected",
    [(None, None), ("none", None), ("0/1", None), ("0/4", Shard(0, 4)), (" 3/4 ", Shard(3, 4))],
)
def test_shard_values(value, expected):
    assert parse_shard(value, env={}) == expected


@pytest.mark.parametrize(
    "value, message",
    [
        ("4/4", "out of range: the index runs from 0 to count - 1"),
        ("-1/4", "out of range"),
        ("2", "is not I/N"),
        ("a/b", "whole numbers"),
        ("auto", "found no scheduler variables"),
    ],
)
def test_bad_shard_values_are_one_line(value, message):
    with pytest.raises(ConfigError, match=message):
        parse_shard(value, env={})


def test_auto_reads_slurm_kubernetes_and_torchrun():
    assert shard_from_env({"SLURM_ARRAY_TASK_ID": "2", "SLURM_ARRAY_TASK_COUNT": "4"}) == Shard(2, 4)
    # --array=1-4 numbers the tasks from 1
    slurm_1 = {"SLURM_ARRAY_TASK_ID": "4", "SLURM_ARRAY_TASK_COUNT": "4", "SLURM_ARRAY_TASK_MIN": "1"}
    assert shard_from_env(slurm_1) == Shard(3, 4)
    assert parse_shard("auto/8", env={"JOB_COMPLETION_INDEX": "5"}) == Shard(5, 8)
    assert parse_shard("auto", env={"RANK": "1", "WORLD_SIZE": "2"}) == Shard(1, 2)
    assert parse_shard("auto", env={"RANK": "0", "WORLD_SIZE": "1"}) is None
    with pytest.raises(ConfigError, match="pass --shard auto/N with N the Job's completions"):
        parse_shard("auto", env={"JOB_COMPLETION_INDEX": "0"})
    with pytest.raises(ConfigError, match="needs WORLD_SIZE"):
        parse_shard("auto", env={"RANK": "0"})
    with pytest.raises(ConfigError, match="SLURM_ARRAY_TASK_ID gives shard 4 of 4, outside 0 … 3"):
        shard_from_env({"SLURM_ARRAY_TASK_ID": "4", "SLURM_ARRAY_TASK_COUNT": "4"})


def test_stats_add_up_over_runs_and_shards(tmp_path):
    add_run_stats(tmp_path, Shard(0, 2), {"wall_s": 2.0, "requests": 10, "notes": 8, "tokens_out": 100})
    add_run_stats(tmp_path, Shard(0, 2), {"wall_s": 1.0, "requests": 5, "retries": 1, "notes": 4})
    add_run_stats(tmp_path, Shard(1, 2), {"wall_s": 3.0, "requests": 12, "notes": 12})
    per_shard = read_run_stats(tmp_path)
    assert set(per_shard) == {"0/2", "1/2"}
    assert per_shard["0/2"]["runs"] == 2 and per_shard["0/2"]["requests"] == 15 and per_shard["0/2"]["retries"] == 1
    total = total_stats(per_shard)
    assert total["notes"] == 24 and total["wall_s"] == 6.0 and total["notes_per_wall_s"] == 4.0
    assert total["tokens_out"] == 100 and total["runs"] == 3


# ---------------------------------------------------------------------------------------------- locks


def test_a_shard_runs_once_at_a_time_and_an_unsharded_run_waits_for_all(tmp_path):
    with folder_lock(tmp_path, Shard(0, 2)), folder_lock(tmp_path, Shard(1, 2)):  # shards side by side
        with pytest.raises(FolderBusyError, match=r"shard 0/2 of .* is being written by process \d+ on"):
            with folder_lock(tmp_path, Shard(0, 2)):
                pass
        with pytest.raises(
            FolderBusyError, match=r"being written by sharded runs: shard 0/2 \(process \d+.*shard 1/2"
        ):
            with folder_lock(tmp_path):
                pass
    with folder_lock(tmp_path):
        with pytest.raises(FolderBusyError, match=r"is being written by process \d+"):
            with folder_lock(tmp_path, Shard(1, 2)):
                pass


# ---------------------------------------------------------------------------------------------- whole jobs


@pytest.fixture(scope="module")
def engine():
    """A simulated engine in its own process: its notes depend only on the prompt and the request's seed."""
    from tests.conftest import sim_engine

    with sim_engine(tokens_per_s=2000.0) as url:
        yield url


def _notes(folder: Path) -> dict[str, dict]:
    return {r["id"]: {k: v for k, v in r.items() if k != "created_at"} for r in read_shards(folder / "shards")}


def _dataset_rows(folder: Path) -> list[dict]:
    import pyarrow.parquet as pq

    rows = []
    for split in ("data", "rejected"):
        for f in sorted((folder / split).glob("*.parquet")):
            rows += [{k: v for k, v in r.items() if k != "created_at"} for r in pq.read_table(f).to_pylist()]
    return rows


def test_four_shards_write_the_notes_of_one_run_and_the_last_writes_the_dataset(tmp_path, kg_path, engine, caplog):
    caplog.set_level("INFO", logger="medsyn")
    whole = job_config(tmp_path / "whole", kg_path, endpoint=[engine], n=24)
    run_generation(whole, PARAMS)
    split = tmp_path / "split"
    summaries = []
    for index in range(4):
        caplog.clear()
        summaries.append(
            run_generation(job_config(split, kg_path, endpoint=[engine], n=24, shard=f"{index}/4"), PARAMS)
        )
        assert (split / "README.md").exists() == (index == 3)  # the dataset files wait for the last shard
    assert "every task of the job is done; writing the dataset files" in caplog.text
    assert sum(s["tasks"] for s in summaries) == 24 and [s["shard"] for s in summaries] == ["0/4", "1/4", "2/4", "3/4"]
    assert _notes(split) == _notes(tmp_path / "whole")  # note for note
    assert _dataset_rows(split) == _dataset_rows(tmp_path / "whole")  # and in the same order
    job = json.loads((split / "medsyn_job.json").read_text())
    assert job["fingerprint"] == json.loads((tmp_path / "whole" / "medsyn_job.json").read_text())["fingerprint"]
    assert set(job["throughput"]["per_shard"]) == {"0/4", "1/4", "2/4", "3/4"}
    total = job["throughput"]["total"]
    assert total["notes"] == 24 and total["runs"] == 4 and total["requests"] >= 24 and total["tokens_out"] > 0
    card = (split / "README.md").read_text()
    assert "**What it cost**: 24 notes in 4 runs over 4 shards" in card and "24 requests" in card
    # the parts of each shard are its own files
    assert sorted(p.name for p in (split / "shards").glob("part-*.jsonl")) == [
        f"part-00000-s{i}of4.jsonl" for i in range(4)
    ]


def test_a_shard_with_other_settings_is_refused_and_finalize_names_the_missing_shards(
    tmp_path, kg_path, engine, caplog
):
    caplog.set_level("INFO", logger="medsyn")
    out = tmp_path / "out"
    run_generation(job_config(out, kg_path, endpoint=[engine], n=12, shard="0/3"), PARAMS)
    with pytest.raises(ConfigError, match=r"other settings \(seed: 3 → 4\)"):
        run_generation(job_config(out, kg_path, endpoint=[engine], n=12, shard="1/3", seed=4), PARAMS)
    with pytest.raises(ConfigError, match="run either without --shard"):
        run_generation(job_config(out, kg_path, endpoint=[engine], n=12, shard="1/3", finalize_only=True), PARAMS)
    caplog.clear()
    summary = run_generation(job_config(out, kg_path, endpoint=[engine], n=12, finalize_only=True), PARAMS)
    done = len(_notes(out))
    assert summary["kept"] + summary["rejected"] == done < 12
    assert f"{12 - done} of the job's 12 tasks are not done yet (shards 1/3, 2/3)" in caplog.text
    assert (out / "README.md").exists()  # what is done can be loaded meanwhile


@pytest.mark.slow
def test_four_shard_processes_at_once_and_a_killed_shard_rerun_alone_lose_nothing(tmp_path, kg_path, engine):
    whole = job_config(tmp_path / "whole", kg_path, endpoint=[engine], n=48)
    run_generation(whole, PARAMS)
    out = tmp_path / "split"

    def cmd(index):
        return [
            sys.executable, "-m", "medsyn.cli", "generate", "--endpoint", engine, "--n", "48", "--seed", "3",
            "--out", str(out), "--graph", str(kg_path), "--template", "instruction", "--filter", "false",
            "--max_concurrency", "2", "--max_new_tokens", "8", "--temperature", "0.7", "--shard", f"{index}/4",
        ]  # fmt: skip

    env = dict(os.environ, HF_HUB_OFFLINE="1")
    # shard 2 is killed with -9 once it has written a few notes, while the other three run at once
    others = [subprocess.Popen(cmd(i), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for i in (0, 1, 3)]
    kill_9_once_written(cmd(2), out / "shards", at_least=3)
    errors = [p.communicate(timeout=300)[1].decode() for p in others]
    assert [p.returncode for p in others] == [0, 0, 0], errors
    assert not (out / "README.md").exists()  # shard 2 is not done, so nobody wrote the dataset files
    rerun = subprocess.run(cmd(2), env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert "every task of the job is done; writing the dataset files" in rerun.stderr
    assert _notes(out) == _notes(tmp_path / "whole")
    assert _dataset_rows(out) == _dataset_rows(tmp_path / "whole")
