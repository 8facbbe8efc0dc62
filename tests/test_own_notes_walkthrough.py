"""The README's "Your own notes" walkthrough, run command by command on a CSV export the project ships as a fixture.

``tests/fixtures/own_notes.csv`` is what a hospital export looks like: Russian column names, ``;``-separated, a
UTF-8 byte-order mark, full codes (``I21.0``, and ``I21,0`` with a comma), codes RuMedTop3 lacks, a name and a
phone number inside real notes, and one row of each problem reading must catch. The commands are the README's, as
written, with what a test machine needs instead of what a user's has: the served model is a loopback simulated
engine that answers the complaint question with a scripted list; the model is a 2-layer random Llama (no download),
trained for 2 steps; its notes are noise, so the generation step keeps them all (``--filter false``) for the later
steps to have rows.
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "own_notes.csv"
SCRIPT = {
    "I26": "1. Одышка, внезапная\n2. Боль в груди при вдохе — колющая\n3) Кашель\n- сердцебиение.\n- Страх смерти"
}


def walkthrough() -> list[list[str]]:
    """The commands of the first bash block under the README's "Your own notes" heading."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Your own notes", 1)[1]
    block = section.split("```bash\n", 1)[1].split("```", 1)[0]
    return [shlex.split(line.split("  #")[0]) for line in block.splitlines() if line.strip()]


def _engine(tmp_path: Path) -> tuple[subprocess.Popen, str]:
    from tests.conftest import free_port

    (tmp_path / "script.json").write_text(json.dumps(SCRIPT, ensure_ascii=False), encoding="utf-8")
    port = free_port()
    cmd = [sys.executable, "-m", "medsyn.serving.sim", "--port", str(port), "--script", str(tmp_path / "script.json")]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    import urllib.request

    for _ in range(100):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=1).read()
            return proc, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("simulated engine did not start")


def _adapt(argv: list[str], url: str, model: Path) -> list[str]:
    """A README command as this machine runs it (see the module)."""
    argv = [url if a.startswith("http://127.0.0.1:8000") else a for a in argv]
    argv = [str(ROOT / a) if a.startswith("recipes/") else a for a in argv]  # run here, not from the repository
    if argv[:2] == ["accelerate", "launch"]:
        script = next(a for a in argv if a.endswith(".py"))
        rest = argv[argv.index(script) + 1 :]
        return [sys.executable, str(ROOT / script), *rest, "--model_name_or_path", str(model), "--max_steps", "2",
                "--mixed_precision", "no", "--eval_generate_tasks", "0", "--max_eval_samples", "4",
                "--per_device_train_batch_size", "2", "--time_limit_minutes", "5"]  # fmt: skip
    if argv[:2] == ["medsyn", "generate"]:
        return [*argv, "--model", str(model), "--n", "6", "--max_new_tokens", "24", "--filter", "false", "--device",
                "cpu"]  # fmt: skip
    if argv[:3] == ["medsyn", "release", "dataset"]:
        return [*argv, "--out", "my/release"]
    return argv


@pytest.mark.slow
def test_the_readme_walkthrough_takes_a_csv_export_to_a_release(tmp_path, tiny_model_dir, monkeypatch, capsys):
    from medsyn.cli import main

    commands = walkthrough()
    assert [c[:3] for c in commands][:3] == [["medsyn", "kg", "build"], ["medsyn", "kg", "show"],
                                             ["medsyn", "kg", "expand"]]  # fmt: skip
    shutil.copy(FIXTURE, tmp_path / "my_notes.csv")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ACCELERATE_USE_CPU", "1")
    engine, url = _engine(tmp_path)
    printed = {}
    try:
        for argv in commands:
            argv = _adapt(argv, url, tiny_model_dir)
            if argv[0] == "medsyn":
                code = main(argv[1:])
                printed[" ".join(argv[1:3])] = capsys.readouterr().out
            else:
                done = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False)
                code = done.returncode
                assert code == 0, done.stderr[-3000:]
            assert code == 0, f"{' '.join(argv)} exited {code}"
    finally:
        engine.kill()

    from medsyn.kg import MedicalKG

    kg = MedicalKG.load(tmp_path / "my" / "kg.json")
    assert kg.corpus["name"] == "clinic notes" and kg.corpus["notes"] == 52 and kg.corpus["unknown_codes"] == ["I21.7"]
    assert "codes of I21 with notes of their own: I21.0 (10), I21.4 (9)" in printed["kg show"]
    assert [(e.symptom, e.source) for e in kg.symptoms("I26")][:2] == [
        ("одышка", "llm:sim"),
        ("боль в груди при вдохе", "llm:sim"),
    ]
    assert (tmp_path / "my" / "instructions" / "data" / "train.parquet").exists()
    assert (tmp_path / "my" / "adapter" / "adapter_config.json").exists()
    rows = [json.loads(line) for f in (tmp_path / "my" / "notes" / "shards").glob("part-*.jsonl") for line in open(f)]
    assert {r["icd10_code"][:3] for r in rows} <= {"I21", "I50", "I26"} and rows
    card = (tmp_path / "my" / "release" / "README.md").read_text(encoding="utf-8")
    assert "«clinic notes»" in card and "RuMedTop3 train" not in card
    shipped = "".join(p.read_text(errors="ignore") for p in (tmp_path / "my" / "release").rglob("*") if p.is_file())
    assert "my_notes" not in shipped and str(tmp_path) not in shipped  # the notes are named, never located
