"""Consistency filtering of generated rows: verdicts on rows, the per-code report, the post hoc command on a folder."""

import json

import pytest

from medsyn.errors import MedsynError
from medsyn.eval.consistency import apply_check, drop_report, read_rows
from medsyn.filters.consistency import ConsistencyCheck
from tests.conftest import FixedScores


def _row(i, note, category, reasons=()):
    return {"id": f"r{i}", "note": note, "category": category, "icd10_code": category, "filter_reasons": list(reasons)}


def test_apply_check_records_the_verdict_and_replaces_an_earlier_one():
    check = ConsistencyCheck(FixedScores({"a": [3, 2, 1], "b": [1, 2, 3], "c": [1, 2, 3]}), top_k=1)
    rows = [
        _row(0, "a", "J06"),
        _row(1, "b", "J06", ["consistency: J06 ranked 9 > top 5 by the real-notes classifier"]),
        _row(2, "c", "N92", ["symptom_coverage 0.20 < 0.50"]),
    ]
    out = apply_check(rows, check)
    assert [r["consistency_rank"] for r in out] == [1, 3, 1]
    assert out[0]["kept"] and out[0]["filter_reasons"] == []
    assert not out[1]["kept"] and out[1]["filter_reasons"] == [
        "consistency: J06 ranked 3 > top 1 by the real-notes classifier"
    ]
    assert not out[2]["kept"] and out[2]["filter_reasons"] == ["symptom_coverage 0.20 < 0.50"]
    report = drop_report(out, 1, {"J06": 100, "N92": 12})
    # only notes that passed the other checks count: r0 kept, r1 dropped
    assert report["notes_checked"] == 2 and report["dropped"] == 1 and report["share_dropped"] == 0.5
    assert report["per_code"]["J06"] == {"real_notes": 100, "notes": 2, "dropped": 1, "share_dropped": 0.5}
    assert report["share_dropped_at_k"]["3"] == 0.0


def test_consistency_command_on_a_folder_in_progress(tmp_path, small_split, capsys):
    from medsyn.eval.commands import consistency_main
    from medsyn.writer import ShardWriter

    train, dev = small_split
    src = tmp_path / "gen"
    writer = ShardWriter(src)
    rows = [{**_row(i, n["text"], n["code"]), "kept": True} for i, n in enumerate(dev[:12])]
    rows[0]["note"] = "Беспокоит боль в пояснице, иррадиирует в ногу."
    rows[0]["category"] = rows[0]["icd10_code"] = "J06"  # a back-pain note written for a cold
    writer.write(rows)
    writer.close()
    (src / "medsyn_job.json").write_text(json.dumps({"fingerprint": "x", "job": {"seed": 0, "consistency_top_k": 0}}))
    (src / "medsyn_config.yaml").write_text("n: 12\nseed: 0\n")
    real = tmp_path / "real.jsonl"
    real.write_text(
        "".join(json.dumps({"idx": n["id"], "symptoms": n["text"], "code": n["code"]}) + "\n" for n in train)
    )
    assert consistency_main([str(src), "--out", str(tmp_path / "out"), "--top_k", "1", "--real", str(real)]) == 0
    result = json.loads((tmp_path / "out" / "consistency.json").read_text())
    assert result["top_k"] == 1 and result["notes_checked"] == 12
    filtered = {r["id"]: r for r in read_rows(tmp_path / "out")}
    assert not filtered["r0"]["kept"] and filtered["r0"]["filter_reasons"][0].startswith("consistency: J06 ranked")
    for name in ("README.md", "consistency.md", "consistency.png"):
        assert (tmp_path / "out" / name).stat().st_size > 0
    assert "k = 1" in capsys.readouterr().out
    # the filtered folder carries its source's job, with the post hoc check in it, so that it can be released
    job = json.loads((tmp_path / "out" / "medsyn_job.json").read_text())["job"]
    assert job == {"seed": 0, "consistency_top_k": 1, "consistency_post_hoc": True}
    assert (tmp_path / "out" / "medsyn_config.yaml").read_text() == "n: 12\nseed: 0\n"
    with pytest.raises(MedsynError, match="new folder"):
        consistency_main([str(src), "--out", str(src)])
