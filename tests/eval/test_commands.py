"""End to end: both commands on small slices, written as a user would pass them (JSONL files, a dataset folder)."""

import json
import subprocess
import sys

import pytest

from medsyn.data import write_jsonl
from medsyn.eval.commands import classify_main, quality_main


def _rumed(notes):
    return [{"idx": n["id"], "symptoms": n["text"], "code": n["code"]} for n in notes]


def test_import_does_not_pull_torch():
    code = "import sys, medsyn, medsyn.eval, medsyn.eval.commands; print('torch' in sys.modules, 'transformers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False"]


def test_classify_grid_writes_a_run_folder(tmp_path, small_split, capsys):
    train, dev = small_split
    write_jsonl(tmp_path / "train.jsonl", _rumed(train))
    write_jsonl(tmp_path / "dev.jsonl", _rumed(dev))
    write_jsonl(tmp_path / "syn.jsonl", _rumed([{**n, "id": "s" + n["id"]} for n in train[1::3]]))
    rc = classify_main(
        [
            "--train", str(tmp_path / "train.jsonl"), "--eval", str(tmp_path / "dev.jsonl"),
            "--synthetic", str(tmp_path / "syn.jsonl"), "--settings", "paper", "--fill_rare_to", "45",
            "--seeds", "0", "1", "--out_dir", str(tmp_path / "runs"), "--name", "t", "--max_iter", "15",
        ]
    )  # fmt: skip
    assert rc == 0
    (run,) = (tmp_path / "runs").iterdir()
    metrics = json.loads((run / "metrics.json").read_text())
    assert len(metrics["settings"]) == 9 and all(len(s["runs"]) == 2 for s in metrics["settings"])
    for name in ("report.md", "config.yaml", "upsampling.png", "per_code_gain.png"):
        assert (run / name).stat().st_size > 0
    assert "| real 0.5 + syn 0 |" in capsys.readouterr().out
    assert "rarest quartile" in (run / "report.md").read_text()
    assert set(metrics["settings"][0]["vs_baseline"]) == {"overall", "rare_quartile", "low_recall"}
    assert (run / "scores.npz").stat().st_size > 0


def test_quality_on_a_generated_dataset_folder(tmp_path, real_notes, capsys):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    rows = [
        {"id": "n1", "icd10_code": "R51", "note": "Третий день болит голова, тошнота по утрам, слабость.",
         "symptoms": ["головная боль", "тошнота"], "example_id": real_notes[0]["id"]},
        {"id": "n2", "icd10_code": real_notes[3]["code"], "note": real_notes[3]["text"],
         "symptoms": ["кашель"], "example_id": real_notes[3]["id"]},
    ]  # fmt: skip
    (tmp_path / "ds" / "data").mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "ds" / "data" / "shard-00000.parquet")
    rc = quality_main([str(tmp_path / "ds"), "--out_dir", str(tmp_path / "runs"), "--self_bleu_sample", "0"])
    assert rc == 0
    (run,) = (tmp_path / "runs").iterdir()
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["copying"]["train"]["near_copies"] == 1  # n2 is a real note verbatim
    assert metrics["copying"]["example"]["near_copies"] == 1  # ... and its own style example
    assert metrics["prompt_following"]["available"]
    assert (run / "quality.png").stat().st_size > 0
    assert "Prompt following" in capsys.readouterr().out
