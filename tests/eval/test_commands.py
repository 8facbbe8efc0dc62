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


def _run_folder(root):
    (run,) = root.iterdir()
    return run, json.loads((run / "metrics.json").read_text())


def test_synthetic_alone_compares_real_only_all_and_fill_rare(tmp_path, small_split, capsys):
    train, dev = small_split
    write_jsonl(tmp_path / "train.jsonl", _rumed(train))
    write_jsonl(tmp_path / "dev.jsonl", _rumed(dev))
    # synthetic notes of one code only, which already has 40 real ones: fill-rare to 30 adds none
    write_jsonl(tmp_path / "syn.jsonl", _rumed([{**n, "id": "s" + n["id"]} for n in train if n["code"] == "M54"]))
    args = ["--train", str(tmp_path / "train.jsonl"), "--eval", str(tmp_path / "dev.jsonl"), "--max_iter", "10"]
    rc = classify_main([*args, "--synthetic", str(tmp_path / "syn.jsonl"), "--out_dir", str(tmp_path / "r")])
    assert rc == 0
    run, metrics = _run_folder(tmp_path / "r")
    names = [s["name"] for s in metrics["settings"]]
    assert names == ["real 1 + syn 0", "real 1 + syn 1", "real 1 + fill rare to 30"]
    assert [s["n_synthetic"] for s in metrics["settings"]] == [0, 40, 0]
    assert (
        len(metrics["warnings"]) == 1
        and "'real 1 + fill rare to 30' added 0 synthetic notes" in metrics["warnings"][0]
    )
    assert "warning: 'real 1 + fill rare to 30' added 0 synthetic notes" in capsys.readouterr().out
    assert "## Warnings" in (run / "report.md").read_text()
    assert metrics["low_recall_source"] == "train cross-validation"


def test_the_default_run_reports_gains_and_plots_without_synthetic_notes(tmp_path, small_split):
    train, dev = small_split
    write_jsonl(tmp_path / "train.jsonl", _rumed(train))
    write_jsonl(tmp_path / "dev.jsonl", _rumed(dev))
    args = ["--train", str(tmp_path / "train.jsonl"), "--eval", str(tmp_path / "dev.jsonl"), "--max_iter", "10"]
    assert classify_main([*args, "--out_dir", str(tmp_path / "r")]) == 0
    run, metrics = _run_folder(tmp_path / "r")
    assert [s["name"] for s in metrics["settings"]] == ["real 0.5 + syn 0", "real 0.75 + syn 0", "real 1 + syn 0"]
    report = (run / "report.md").read_text()
    assert "| real 0.5 + syn 0 | overall |" in report  # the gain table has rows
    assert "![upsampling.png](upsampling.png)" in report and "![per_code_gain.png](per_code_gain.png)" in report
    assert (run / "per_code_gain.png").stat().st_size > 0
    # one setting alone still gets both plots, and a gain table that says why it is empty
    assert classify_main([*args, "--settings", "1:0", "--out_dir", str(tmp_path / "one")]) == 0
    run, _ = _run_folder(tmp_path / "one")
    assert "nothing to compare" in (run / "report.md").read_text()
    assert (run / "upsampling.png").stat().st_size > 0 and (run / "per_code_gain.png").stat().st_size > 0


def test_low_recall_codes_come_from_train_not_dev(small_split):
    from medsyn.eval.classify import cv_low_recall_codes
    from medsyn.filters.linear import LinearClassifier

    train, _ = small_split
    seen = []

    def new(seed):
        clf = LinearClassifier(max_iter=10, seed=seed)
        fit = clf.fit
        clf.fit = lambda texts, labels: (seen.append(len(texts)), fit(texts, labels))[1]
        return clf

    codes = cv_low_recall_codes(train, new, quantile=0.34, folds=4)
    assert len(codes) == 2 and set(codes) <= {n["code"] for n in train}
    assert len(seen) == 4 and sum(seen) == 3 * len(train)  # each fold fits on the other three quarters of train


def test_reference_notes_ship_with_the_package():
    from medsyn.data import load_reference
    from medsyn.eval.commands import load_source

    notes = load_source("medsyn-reference:gpt4")
    assert len(notes) == 2378 and len({n["code"] for n in notes}) > 90
    assert notes == load_reference("gpt4")
    with pytest.raises(ValueError, match="unknown reference notes 'gpt5'"):
        load_reference("gpt5")


def test_a_release_folder_is_read_with_load_dataset(tmp_path, small_split):
    pd = pytest.importorskip("pandas")
    from medsyn.eval.commands import load_source

    train, _ = small_split
    (tmp_path / "rel" / "data").mkdir(parents=True)
    rows = [{"id": f"x{i}", "note": n["text"], "icd10_code": n["code"] + ".0"} for i, n in enumerate(train[:7])]
    pd.DataFrame(rows).to_parquet(tmp_path / "rel" / "data" / "train-0.parquet")
    (tmp_path / "rel" / "README.md").write_text(
        "---\nconfigs:\n- config_name: default\n  data_files:\n  - split: train\n    path: data/*.parquet\n---\n# notes\n"
    )
    notes = load_source(str(tmp_path / "rel"))
    assert [n["code"] for n in notes] == [n["code"] for n in train[:7]] and notes[0]["id"] == "x0"
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="holds no notes files"):
        load_source(str(tmp_path / "empty"))


def test_several_named_sources_compare_in_one_run(tmp_path, small_split):
    train, dev = small_split
    write_jsonl(tmp_path / "train.jsonl", _rumed(train))
    write_jsonl(tmp_path / "dev.jsonl", _rumed(dev))
    write_jsonl(tmp_path / "a.jsonl", _rumed([{**n, "id": "a" + n["id"]} for n in train[::4]]))
    write_jsonl(tmp_path / "b.jsonl", _rumed([{**n, "id": "b" + n["id"]} for n in train[1::8]]))
    rc = classify_main(
        [
            "--train", str(tmp_path / "train.jsonl"), "--eval", str(tmp_path / "dev.jsonl"), "--max_iter", "10",
            "--synthetic", f"a={tmp_path / 'a.jsonl'}", f"b={tmp_path / 'b.jsonl'}", "--settings", "1:0", "1:1",
            "--out_dir", str(tmp_path / "r"),
        ]
    )  # fmt: skip
    assert rc == 0
    _, metrics = _run_folder(tmp_path / "r")
    rows = {s["name"]: s["n_synthetic"] for s in metrics["settings"]}
    assert rows == {"real 1 + syn 0": 0, "a: real 1 + syn 1": len(train[::4]), "b: real 1 + syn 1": len(train[1::8])}
    with pytest.raises(ValueError, match="given twice"):
        classify_main(["--synthetic", "a=x.jsonl", "a=y.jsonl", "--out_dir", str(tmp_path / "r2")])


def test_a_cache_dir_lets_a_later_run_reuse_its_fits(tmp_path, small_split, monkeypatch):
    from medsyn.filters.linear import LinearClassifier

    train, dev = small_split
    write_jsonl(tmp_path / "train.jsonl", _rumed(train))
    write_jsonl(tmp_path / "dev.jsonl", _rumed(dev))
    args = ["--train", str(tmp_path / "train.jsonl"), "--eval", str(tmp_path / "dev.jsonl"), "--max_iter", "10"]
    args += ["--settings", "0.5:0", "1:0", "--cv_folds", "2", "--cache_dir", str(tmp_path / "cache")]
    assert classify_main([*args, "--out_dir", str(tmp_path / "a")]) == 0
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 4  # two settings, two folds
    fits = []
    original = LinearClassifier.fit
    monkeypatch.setattr(LinearClassifier, "fit", lambda self, *a, **k: (fits.append(1), original(self, *a, **k))[1])
    assert classify_main([*args, "--settings", "0.75:0", "--out_dir", str(tmp_path / "b")]) == 0
    assert len(fits) == 1  # only the new setting is fitted
    _, first = _run_folder(tmp_path / "a")
    _, second = _run_folder(tmp_path / "b")
    assert first["settings"][1]["summary"] == second["settings"][1]["summary"]


def test_a_folder_still_being_generated_gives_its_kept_notes(tmp_path):
    from medsyn.eval.commands import load_source
    from medsyn.writer import ShardWriter

    with ShardWriter(tmp_path / "gen") as writer:
        writer.write(
            [
                {"id": "a", "note": "Болит горло.", "icd10_code": "J06.9", "kept": True},
                {"id": "b", "note": "Кашель.", "icd10_code": "J20.0", "kept": False},
                {"id": "c", "icd10_code": "J20.0", "error_type": "timeout", "error": "slow"},
            ]
        )
    assert load_source(str(tmp_path / "gen")) == [{"id": "a", "text": "Болит горло.", "code": "J06"}]
