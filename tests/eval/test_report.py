"""Tests of medsyn.eval.report: run folders, the markdown tables and reports, and the PNG plots."""

from __future__ import annotations

import json
import re

from medsyn.eval.report import (
    classify_markdown,
    classify_table,
    consistency_card,
    consistency_markdown,
    gain_table,
    plot_code_gain,
    plot_consistency,
    plot_quality,
    plot_upsampling,
    quality_markdown,
    run_path,
    write_json,
)
from medsyn.plots import pyplot

SUBSETS = ("overall", "rare_quartile", "low_recall")


def _stat(mean: float, std: float = 0.0) -> dict:
    return {"mean": mean, "std": std}


def _setting(name, n_real, n_syn, acc, runs=1, gain=None):
    metrics = {"acc@1": _stat(acc, 0.01), "hit@3": _stat(acc + 0.2, 0.02), "macro_f1": _stat(acc - 0.1, 0.005)}
    g = gain or {"diff": 0.0, "lo": 0.0, "hi": 0.0}
    return {
        "name": name,
        "n_real": n_real,
        "n_synthetic": n_syn,
        "runs": [{"seed": s} for s in range(runs)],
        "summary": {subset: metrics for subset in SUBSETS},
        "vs_baseline": {subset: {"acc@1": g, "hit@3": g} for subset in SUBSETS},
    }


def _summary(runs: int = 1, with_other: bool = True) -> dict:
    settings = [_setting("real 1 + syn 0", 4690, 0, 0.5, runs)]
    if with_other:
        gain = {"diff": 0.0123, "lo": -0.004, "hi": 0.0301}
        settings.append(_setting("real 1 + syn 1", 4690, 2378.4, 0.55, runs, gain))
    per_code = {
        "J06": {"train_count": 300, "baseline_recall": 0.8},
        "M54": {"train_count": 500, "baseline_recall": 0.9},
        "N92": {"train_count": 12, "baseline_recall": 0.25},
    }
    if with_other:
        for code, rec in (("J06", 0.85), ("M54", 0.9), ("N92", 0.5)):
            per_code[code]["real 1 + syn 1"] = rec
    return {
        "baseline": "real 1 + syn 0",
        "settings": settings,
        "hard_codes": {"rare_quartile": ["N92"], "low_recall": ["J06", "N92"]},
        "low_recall_source": "train cross-validation",
        "warnings": [],
        "per_code": per_code,
    }


def _is_png(path) -> bool:
    return path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5_000


def test_run_path_names_a_timestamped_folder_without_making_it(tmp_path):
    path = run_path(tmp_path / "runs", "classify")
    assert path.parent == tmp_path / "runs"
    assert re.fullmatch(r"classify-\d{8}-\d{6}", path.name)
    assert not (tmp_path / "runs").exists()
    assert run_path(str(tmp_path), "quality").name.startswith("quality-")


def test_write_json_writes_readable_utf8(tmp_path):
    path = write_json(tmp_path / "metrics.json", {"код": "M54", "acc": 0.5})
    assert path == tmp_path / "metrics.json"
    assert json.loads(path.read_text(encoding="utf-8")) == {"код": "M54", "acc": 0.5}
    assert path.read_text(encoding="utf-8") == '{\n  "код": "M54",\n  "acc": 0.5\n}'


def test_classify_table_of_one_seed_shows_plain_percentages():
    assert classify_table(_summary(runs=1)).splitlines() == [
        "| setting | real | synthetic | acc@1 | hit@3 | macro-F1 |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
        "| real 1 + syn 0 | 4690 | 0 | 50.00 | 70.00 | 40.00 |",
        "| real 1 + syn 1 | 4690 | 2378 | 55.00 | 75.00 | 45.00 |",
    ]


def test_classify_table_of_several_seeds_shows_mean_and_std():
    lines = classify_table(_summary(runs=3), subset="rare_quartile").splitlines()
    assert lines[2] == "| real 1 + syn 0 | 4690 | 0 | 50.00 ± 1.00 | 70.00 ± 2.00 | 40.00 ± 0.50 |"
    assert len(lines) == 4


def test_gain_table_has_one_row_per_setting_and_subset():
    lines = gain_table(_summary()).splitlines()
    assert lines[:2] == [
        "| setting | subset | acc@1 gain [95% CI] | hit@3 gain [95% CI] |",
        "| --- | --- | ---: | ---: |",
    ]
    assert lines[2:] == [
        f"| real 1 + syn 1 | {subset} | +1.23 [-0.40, +3.01] | +1.23 [-0.40, +3.01] |" for subset in SUBSETS
    ]


def test_gain_table_of_the_baseline_alone_says_so():
    assert gain_table(_summary(with_other=False)) == (
        "Only `real 1 + syn 0` was run, so there is nothing to compare; add settings (--settings)."
    )


def test_classify_markdown_puts_the_pieces_together():
    summary = _summary(runs=2) | {"warnings": ["'real 1 + syn 1' added 0 synthetic notes in 1 of 2 runs"]}
    summary["settings"][0]["runs"] = [{"seed": 1}, {"seed": 0}]
    config = {"model": "linear", "train": "rumedtop3:train", "eval": "rumedtop3:dev", "synthetic": "out/notes"}
    text = classify_markdown(summary, config, ["upsampling.png", "code_gain.png"])
    assert text.startswith("# ICD-10 code prediction (RuMedTop3)\n")
    assert text.endswith("![upsampling.png](upsampling.png)\n![code_gain.png](code_gain.png)\n")
    assert "synthetic notes: `out/notes`; seeds [0, 1]." in text
    assert "## all codes\n" in text
    assert "## rarest quartile of codes (train) (1 codes)\n" in text
    assert "## lowest-recall quartile of codes (train cross-validation) (2 codes)\n" in text
    assert "## Warnings\n\n- 'real 1 + syn 1' added 0 synthetic notes in 1 of 2 runs\n" in text
    assert "## Gain over `real 1 + syn 0`" in text
    assert "chosen on train cross-validation, not on the dev notes they are scored on." in text
    assert "- rarest quartile in train: N92\n" in text
    assert "- lowest recall of the all-real classifier (train cross-validation): J06, N92\n" in text
    assert text.count("| real 1 + syn 1 | overall | +1.23 [-0.40, +3.01]") == 1


def test_classify_markdown_warns_of_dev_chosen_codes():
    summary = _summary() | {"low_recall_source": "dev (biased)"}
    text = classify_markdown(summary, {}, [])
    assert "The low-recall codes are chosen on dev (biased)." in text
    assert "## Warnings" not in text


def _copy_side(mean: float, near: int) -> dict:
    return {
        "copy_score_mean": mean,
        "copy_score_p99": 0.61,
        "copy_score_max": 0.88,
        "lcs_mean": 3.456,
        "lcs_max": 17.0,
        "near_copies": near,
        "near_copy_share": 0.0125,
    }


def _realism(chars: float) -> dict:
    return {
        "chars_mean": chars,
        "chars_median": 201.0,
        "words_mean": 30.25,
        "vocab_size": 5432.0,
        "type_token_ratio": 0.1234,
        "distinct_1": 0.2,
        "distinct_2": 0.6,
        "self_bleu": 0.15,
    }


def _quality_report(available: bool = True) -> dict:
    pf = (
        {"available": True, "mean_coverage": 0.8123, "median_coverage": 0.75, "share_full": 0.456}
        if available
        else {"available": False, "reason": "the notes carry no requested symptoms"}
    )
    return {
        "n_notes": 80,
        "n_real": 4690,
        "seconds": 12.345,
        "prompt_following": pf,
        "realism": {
            "real": _realism(220.04),
            "synthetic": _realism(180.0),
            "in_real_vocab": 0.934,
            "real_vocab_covered": 0.21,
        },
        "copying": {
            "ngram": 3,
            "threshold_copy_score": 0.7,
            "threshold_lcs_words": 15,
            "train": _copy_side(0.123, 1),
            "example": None,
            "real_notes_contained": 2,
            "real_vs_real": {"copy_score_mean": 0.05, "near_copies": 3, "n": 848.0, "near_copy_share": 0.0035},
            "examples": [
                {
                    "id": "M54-00001",
                    "copy_score": 0.91,
                    "lcs": 18,
                    "note": "Жалобы на боли в пояснице " * 20,
                    "real_id": "q1",
                    "real": "Боли в пояснице.",
                }
            ],
        },
    }


def test_quality_markdown_reports_every_section():
    text = quality_markdown(_quality_report(), {"source": "out/notes", "real": "rumedtop3:train"}, ["quality.png"])
    assert text.startswith("# Note quality and privacy\n")
    assert "Synthetic notes: `out/notes` (80); real reference: `rumedtop3:train` (4690). Computed in 12.3 s." in text
    assert "(lemma match): **0.812** (median 0.750; 45.6% of notes mention all of them)." in text
    assert "| characters per note, mean | 220.0 | 180.0 |" in text
    assert "| vocabulary (word types) | 5432 | 5432 |" in text
    assert "| type/token ratio | 0.123 | 0.123 |" in text
    assert "Synthetic words found in the real vocabulary: 93.4%; real words the synthetic notes use: 21.0%." in text
    assert "copy score ≥ 0.7 or LCS ≥ 15 words." in text
    assert "| copy score, mean | 0.123 | n/a |" in text
    assert "| LCS words, mean | 3.46 | n/a |" in text
    assert "| LCS words, max | 17 | n/a |" in text
    assert "| near-copies | 1 | n/a |" in text
    assert "| near-copy share | 1.25% | n/a |" in text
    assert "whatever their own length: 2 (the generation filter drops these too)." in text
    assert "copy score mean 0.050, near-copies 3 of 848 (0.35%)." in text
    (example,) = [line for line in text.splitlines() if line.startswith("- `M54-00001`")]
    assert example.startswith("- `M54-00001` (copy 0.91, LCS 18): «Жалобы на боли в пояснице")
    assert example.endswith("» ≈ real `q1` «Боли в пояснице.»")
    assert len(example) < 260  # the note is cut to 160 characters
    assert text.endswith("## Plots\n\n![quality.png](quality.png)\n")


def test_quality_markdown_without_prompt_following_or_copies():
    report = _quality_report(available=False)
    report["copying"] |= {"examples": [], "real_vs_real": None}
    del report["copying"]["real_notes_contained"]
    text = quality_markdown(report, {}, [])
    assert "Not available: the notes carry no requested symptoms." in text
    assert "Closest near-copies" not in text and "For scale" not in text and "whatever their own length" not in text
    assert "Synthetic notes: `None` (80)" in text


def _consistency_result() -> dict:
    return {
        "notes_checked": 40,
        "top_k": 3,
        "dropped": 6,
        "share_dropped": 0.15,
        "share_dropped_at_k": {"1": 0.4, "3": 0.15, "5": 0.05},
        "per_code": {
            "M54": {"real_notes": 500, "notes": 20, "dropped": 1, "share_dropped": 0.05},
            "N92": {"real_notes": 12, "notes": 10, "dropped": 4, "share_dropped": 0.4},
            "J06": {"real_notes": 12, "notes": 10, "dropped": 1, "share_dropped": 0.1},
        },
    }


def test_consistency_markdown_tables():
    lines = consistency_markdown(_consistency_result(), "out/notes", ["consistency.png"]).splitlines()
    assert lines[0] == "# Consistency filtering"
    assert "Notes of `out/notes` that passed the other checks: 40." in lines[2]
    assert lines[2].endswith("top **k = 3**. Dropped: **6** (15.0%).")
    assert lines[4:7] == [
        "| k | 1 | 3 | 5 |",
        "| --- | ---: | ---: | ---: |",
        "| share dropped | 40.0% | 15.0% | 5.0% |",
    ]
    table = lines[lines.index("| code | real notes | notes | dropped | share dropped |") + 2 :]
    assert table[:3] == [  # by real notes, then code
        "| J06 | 12 | 10 | 1 | 10% |",
        "| N92 | 12 | 10 | 4 | 40% |",
        "| M54 | 500 | 20 | 1 | 5% |",
    ]
    assert lines[-1] == "![consistency.png](consistency.png)"


def test_consistency_card():
    card = consistency_card("/data/runs/notes-a", _consistency_result())
    assert card.startswith(
        "# medsyn synthetic Russian clinical notes, consistency-filtered\n\nThe notes of `notes-a`,"
    )
    assert "in the classifier's top 3" in card and "6 of 40 notes (15.0%) were dropped" in card
    assert "/data/runs" not in card


def test_plots_write_pngs(tmp_path):
    summary = _summary(runs=2)
    assert plot_upsampling(summary, tmp_path / "upsampling.png") == tmp_path / "upsampling.png"
    assert plot_code_gain(summary, tmp_path / "gain.png") == tmp_path / "gain.png"
    assert plot_code_gain(_summary(with_other=False), str(tmp_path / "baseline.png")) == tmp_path / "baseline.png"
    per_note = {"chars": [150, 180, 220, 260], "copy_score": [0.1, 0.2, 0.05, 0.8], "coverage": [1.0, 0.5, 0.75, 1.0]}
    assert plot_quality(per_note, [200, 210, 230, 190, 400], tmp_path / "quality.png") == tmp_path / "quality.png"
    plot_quality({"chars": [1, 2], "copy_score": [0.1, 0.2]}, [3, 4], tmp_path / "quality2.png")
    assert plot_consistency(_consistency_result(), tmp_path / "consistency.png") == tmp_path / "consistency.png"
    for name in ("upsampling", "gain", "baseline", "quality", "quality2", "consistency"):
        assert _is_png(tmp_path / f"{name}.png"), name
    assert pyplot().get_fignums() == []
