"""The cluster recipes: the Slurm array script run with its variables set by hand, and the Kubernetes Indexed Job."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from medsyn.backends import GenerationParams
from medsyn.job import read_shards
from medsyn.pipeline import run_generation
from tests.conftest import job_config, sim_engine

CLUSTER = Path(__file__).resolve().parents[2] / "recipes" / "cluster"


def _notes(folder: Path) -> dict[str, dict]:
    return {r["id"]: {k: v for k, v in r.items() if k != "created_at"} for r in read_shards(folder / "shards")}


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("curl") is None, reason="the script waits for the fleet with curl, not installed")
def test_the_slurm_array_script_writes_the_notes_of_one_run(tmp_path, kg_path):
    recipe = tmp_path / "generate.yaml"
    recipe.write_text(
        "backend: endpoint\ntemplate: instruction\nfilter: false\nseed: 3\nmax_new_tokens: 8\ntemperature: 0.7\n"
        "max_concurrency: 2\n"
    )
    medsyn = Path(sys.executable).with_name("medsyn")
    with sim_engine(tokens_per_s=400.0) as url:
        fleet = tmp_path / "fleet.txt"
        fleet.write_text(f"# the loopback fleet\n{url} 4\n")
        whole = tmp_path / "whole"
        run_generation(
            job_config(whole, kg_path, endpoint=[url], n=24, max_concurrency=2),
            GenerationParams(max_new_tokens=8, temperature=0.7),
        )
        out = tmp_path / "fleet-out"
        env = dict(
            os.environ,
            HF_HUB_OFFLINE="1",
            MEDSYN=str(medsyn),
            MEDSYN_FLEET=str(fleet),
            MEDSYN_CONFIG=str(recipe),
            MEDSYN_OUT=str(out),
            MEDSYN_N="24",
            MEDSYN_WAIT="60",
            MEDSYN_ARGS=f"--graph {kg_path}",
            SLURM_ARRAY_TASK_COUNT="4",
            SLURM_ARRAY_TASK_MIN="1",  # as `sbatch --array=1-4` numbers them
        )
        script = str(CLUSTER / "slurm-array.sh")
        tasks = [
            subprocess.Popen(["bash", script], env=env | {"SLURM_ARRAY_TASK_ID": str(i)}, stderr=subprocess.PIPE)
            for i in range(1, 5)
        ]
        logs = [t.communicate(timeout=300)[1].decode() for t in tasks]
        assert [t.returncode for t in tasks] == [0, 0, 0, 0], logs[0][-2000:]
        assert sum("every task of the job is done; writing the dataset files" in log for log in logs) == 1
        assert [f"shard {i}/4 done:" in log for i, log in enumerate(logs)] == [True] * 4
        assert _notes(out) == _notes(whole)
        assert (out / "README.md").exists()
        finalize = subprocess.run(["bash", script, "finalize"], env=env, capture_output=True, text=True, timeout=300)
        assert finalize.returncode == 0, finalize.stderr[-2000:]
        assert "not done yet" not in finalize.stderr
        # outside an array the script says how to run it
        alone = subprocess.run(["bash", script], env=env, capture_output=True, text=True, timeout=60)
        assert alone.returncode != 0 and "run this script as a job array: sbatch --array=0-7" in alone.stderr


def test_the_slurm_script_needs_a_fleet():
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDSYN")}
    result = subprocess.run(["bash", str(CLUSTER / "slurm-array.sh")], env=env, capture_output=True, text=True)
    assert result.returncode != 0 and "set MEDSYN_FLEET to a fleet file" in result.stderr


def test_the_indexed_job_runs_one_shard_per_completion_index():
    job = yaml.safe_load((CLUSTER / "k8s-indexed-job.yaml").read_text())
    spec = job["spec"]
    assert job["kind"] == "Job" and spec["completionMode"] == "Indexed"
    command = " ".join(spec["template"]["spec"]["containers"][0]["args"])
    shards = int(command.split("--shard auto/")[1].split()[0])
    assert spec["completions"] == spec["parallelism"] == shards
    assert "--endpoint /fleet/fleet.txt" in command and spec["template"]["spec"]["restartPolicy"] == "Never"
