from __future__ import annotations

import json
import logging
import random
from pathlib import Path

import pytest

from medsyn.cli import main
from medsyn.errors import ReleaseError
from medsyn.release.notes import DatasetReleaseArgs, build_dataset_release, validate_dataset_release
from medsyn.writer import ShardWriter

FAKE = "hf_" + "ZyXwVuTsRqPoNmLkJiHgFeDc98"
SPEC = {
    "backend": "transformers",
    "model": "gemma-3-270m",
    "adapter": "gemma-3-270m-ru-notes",
    "adapter_sha256": "0123456789abcdef",
    "template": "example_guided",
    "generation": {"max_new_tokens": 32, "temperature": 0.7},
    "min_symptoms": 2,
    "max_symptoms": 3,
    "seed": 0,
    "graph_fingerprint": "feedfacecafebeef",
    "filter": {"on": True, "min_symptom_coverage": 0.5, "max_copy_score": 0.7},
    "max_attempts": 3,
    "medsyn_version": "0.1.0",
}
WORDS = "жалобы на головную боль слабость кашель насморк боли в пояснице тошноту головокружение усталость".split()


def _generated_folder(root: Path, real_notes: list[dict[str, str]], plant: str | None = None, n: int = 24) -> Path:
    """A folder as medsyn generate leaves it: shards, job file, saved config; the prompts hold real notes."""
    rng = random.Random(0)
    out = root / "gen"
    records = []
    for i in range(n):
        example = real_notes[i]
        note = " ".join(rng.choice(WORDS) for _ in range(14)).capitalize() + "."
        records.append(
            {
                "id": f"M54-{i:05d}-abc", "icd10_code": "M54.5", "icd10_name": "Боль внизу спины", "category": "M54",
                "symptoms": ["головная боль", "кашель"], "sex": "F" if i % 2 else "M", "age": 30 + i,
                "example_id": example["id"], "prompt": f"Пример записи: {example['text']}\nЗапись врача:",
                "note": plant if (plant and i == 5) else note, "template": "example_guided",
                "model": "/home/alice/models/gemma-3-270m", "adapter": "gemma-3-270m-ru-notes", "backend": "transformers",
                "endpoint": "http://gpu7.internal:8000", "symptom_coverage": 1.0, "kept": i % 4 != 0,
                "filter_reasons": [] if i % 4 else ["symptom_coverage 0.00 < 0.50"], "attempts": 1,
            }
        )  # fmt: skip
    with ShardWriter(out) as writer:
        writer.write(records)
    (out / "medsyn_job.json").write_text(json.dumps({"fingerprint": "x", "job": SPEC}), encoding="utf-8")
    (out / "medsyn_config.yaml").write_text(
        "n: 24\nseed: 0\nmodel: /home/alice/models/gemma-3-270m\n", encoding="utf-8"
    )
    return out


@pytest.fixture(scope="module")
def release(tmp_path_factory, real_notes):
    root = tmp_path_factory.mktemp("release")
    source = _generated_folder(root, real_notes)
    stats = build_dataset_release(DatasetReleaseArgs(source=str(source)), root / "rel")
    return root / "rel", stats


def test_a_release_folder_validates_and_loads(release):
    from datasets import load_dataset
    from huggingface_hub import DatasetCard

    folder, stats = release
    assert stats["counts"] == {"default": 18, "rejected": 6, "failed": 0}
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["README.md", "data", "rejected", "medsyn_config.yaml", "medsyn_job.json", "quality", "plots"]
    )
    report = validate_dataset_release(folder)
    assert report["default"]["rows"] == 18 and report["rejected"]["rows"] == 6
    kept = load_dataset(str(folder), split="train")
    assert len(kept) == 18 and "copy_score" in kept.column_names and all(kept["kept"])
    assert len(load_dataset(str(folder), "rejected", split="train")) == 6
    card = DatasetCard.load(folder / "README.md")
    assert card.data.license == "gemma" and card.data.language == ["ru"]
    assert "machine-generated" in card.data.annotations_creators and "icd-10" in card.data.tags
    assert "| `default` | 18 |" in card.text and "2-2 requested" in card.text
    assert "style example" in card.text and "Gemma Terms of Use" in card.text and "arXiv:2408.02056" in card.text
    assert (folder / "plots" / "codes.png").stat().st_size > 10_000
    quality = json.loads((folder / "quality" / "report.json").read_text())
    assert quality["n_notes"] == 18
    # what a reader sees: word salad is told from real notes, real dev notes are not; nothing here is contradictory
    reader = quality["reader"]
    assert set(reader) == {"these notes", "real dev notes", "GPT-4 notes (paper)"}
    assert reader["these notes"]["realism_auc"] > 0.9 > 0.6 > reader["real dev notes"]["realism_auc"]
    assert reader["these notes"]["contradiction_rate"] == 0.0 and reader["these notes"]["notes"] == 18
    assert "### What a reader sees" in card.text and "| these notes | 18 |" in card.text
    assert (folder / "quality" / "reader.png").stat().st_size > 10_000


def test_real_text_never_ships(release, real_notes):
    import pyarrow.parquet as pq

    folder, _ = release
    rows = [r for f in folder.glob("*/*.parquet") for r in pq.read_table(f).to_pylist()]
    assert rows and all("prompt" not in r and "endpoint" not in r for r in rows)
    real = {n["text"] for n in real_notes[:24]}  # the style examples the prompts carried
    for row in rows:
        for value in row.values():
            if isinstance(value, str):
                assert not any(text in value for text in real)
    text = "\n".join(p.read_text(encoding="utf-8") for p in folder.rglob("*") if p.suffix in (".md", ".json", ".yaml"))
    assert not any(t in text for t in real) and "gpu7.internal" not in text
    # a model loaded from a local folder is named by the folder, in rows and in the saved config
    assert "/home/alice" not in text and all(r["model"] == "gemma-3-270m" for r in rows)
    assert "model: gemma-3-270m" in (folder / "medsyn_config.yaml").read_text(encoding="utf-8")


def test_a_planted_real_note_stops_the_release_unless_dropped(tmp_path, real_notes):
    dev_note = next(n for n in __import__("medsyn.data").data.load_rumedtop3("dev") if len(n["text"]) > 150)
    source = _generated_folder(tmp_path, real_notes, plant=dev_note["text"])
    with pytest.raises(ReleaseError, match=r"1 note nearly copies a real note of RuMedTop3: M54-00005-abc\. "):
        build_dataset_release(DatasetReleaseArgs(source=str(source)), tmp_path / "rel")
    assert not (tmp_path / "rel").exists()  # nothing was written
    stats = build_dataset_release(DatasetReleaseArgs(source=str(source), drop_near_copies=True), tmp_path / "rel")
    assert stats["near_copies_dropped"] == ["M54-00005-abc"] and stats["counts"]["default"] == 17
    assert (
        "M54-00005-abc" in (tmp_path / "rel" / "README.md").read_text()
        and "--drop_near_copies" in (tmp_path / "rel" / "README.md").read_text()
    )


def test_release_pushes_exactly_the_folder_privately_and_never_shows_the_token(
    release, tmp_path, monkeypatch, caplog, capsys
):
    import shutil

    import huggingface_hub

    calls: dict = {}

    class FakeApi:
        def __init__(self, token=None):
            calls["token"] = token

        def create_repo(self, repo_id, **kwargs):
            calls["create"] = (repo_id, kwargs)
            return f"https://huggingface.co/datasets/{repo_id}"

        def upload_folder(self, folder_path, repo_id, **kwargs):
            root = Path(folder_path)
            calls["files"] = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
            calls["upload"] = (repo_id, kwargs)

    folder, _ = release
    built = tmp_path / "built"
    shutil.copytree(folder, built)
    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    monkeypatch.setenv("HF_TOKEN", FAKE)
    with caplog.at_level(logging.DEBUG):
        assert main(["release", "dataset", str(built), "--repo_id", "someone/ru-notes"]) == 0
    assert calls["token"] == FAKE
    assert calls["create"] == ("someone/ru-notes", {"private": True, "exist_ok": True, "repo_type": "dataset"})
    assert calls["upload"][1]["repo_type"] == "dataset"
    assert calls["files"] == sorted(str(p.relative_to(built)) for p in built.rglob("*") if p.is_file())
    assert not any(f.startswith("shards") for f in calls["files"])
    out = capsys.readouterr()
    assert FAKE not in caplog.text + out.out + out.err
    assert not any(FAKE in p.read_bytes().decode("utf-8", "replace") for p in built.rglob("*") if p.is_file())


def test_a_token_in_the_folder_stops_the_upload(release, tmp_path, monkeypatch, caplog):
    import shutil

    folder, _ = release
    built = tmp_path / "built"
    shutil.copytree(folder, built)
    (built / "medsyn_config.yaml").write_text(f"token: {FAKE}\n", encoding="utf-8")
    assert main(["release", "dataset", str(built), "--repo_id", "someone/ru-notes"]) == 2
    assert "looks like a Hub token" in caplog.text and FAKE not in caplog.text


def test_bad_sources_get_one_line(tmp_path, caplog):
    assert main(["release", "dataset", str(tmp_path / "nope"), "--dry_run"]) == 2
    assert "is not a folder" in caplog.text
    (tmp_path / "empty").mkdir()
    assert main(["release", "dataset", str(tmp_path / "empty"), "--dry_run"]) == 2
    assert "has no medsyn_job.json" in caplog.text


def test_the_card_says_how_tasks_were_aimed_and_filtered(real_notes):
    from medsyn.cards import notes_card

    rows = [
        {"id": f"N76-{i}", "icd10_code": "N76.0", "icd10_name": "Острый вагинит", "category": "N76",
         "symptoms": ["зуд", "жжение"], "sex": "F", "age": 30 + i, "note": "Жалобы на зуд, жжение.",
         "template": "instruction", "symptom_coverage": 1.0, "kept": True}
        for i in range(3)
    ]  # fmt: skip
    meta = {"configs": [], "dataset_info": []}
    targeted = {**SPEC, "template": "instruction", "fill_rare_to": 50, "consistency_top_k": 10}
    card = notes_card(targeted, {"default": rows, "rejected": [], "failed": []}, meta)
    text = " ".join(card.split())
    assert "fewer than 50 real notes got enough tasks to reach 50 (`--fill_rare_to`" in text
    assert "ranks the note's code among its top 10 (consistency filtering)" in text
    assert "style example" not in text and "Symptoms, and the notes the generator was fine-tuned on" in text
    post_hoc = notes_card(
        {**targeted, "consistency_post_hoc": True}, {"default": rows, "rejected": [], "failed": []}, meta
    )
    assert "applied after generation with `medsyn eval consistency`" in " ".join(post_hoc.split())
    guided = [{**r, "template": "example_guided"} for r in rows]
    plain = " ".join(notes_card(SPEC, {"default": guided, "rejected": [], "failed": []}, meta).split())
    assert "a category C drawn with weight" in plain and "fill_rare_to" not in plain
    assert "consistency filtering" not in plain and "Style examples and symptoms: RuMedTop3" in plain


def test_loading_a_release_warns_about_nothing_in_its_card(release, caplog):
    from datasets import load_dataset

    folder, _ = release
    with caplog.at_level(logging.WARNING):
        load_dataset(str(folder), "rejected", split="train")
    assert "malformed" not in caplog.text  # every split states num_bytes and num_examples


def test_the_card_recommends_the_way_of_use_chosen_on_the_other_half(tmp_path, real_notes):
    from medsyn.release.notes import _classify_tables

    run = Path(__file__).resolve().parents[2] / "results" / "selection-split" / "report"  # 1:0 and 1:1 on `report`
    source = _generated_folder(tmp_path, real_notes)
    args = DatasetReleaseArgs(source=str(source), classify_run=str(run), recommend="1:1", variants_compared=8)
    build_dataset_release(args, tmp_path / "rel")
    card = (tmp_path / "rel" / "README.md").read_text(encoding="utf-8")
    assert "## Recommended use" in card and "Add all of these notes to all of your real training notes" in card
    assert "chosen among 8 variants" in card and "`select` half of RuMedTop3 dev (452 notes)" in card
    assert "the `report` half of RuMedTop3 dev (396 notes;" in card
    assert card.index("## Recommended use") < card.index("## Does it help a classifier?")
    summary = json.loads((run / "metrics.json").read_text(encoding="utf-8"))
    tables = _classify_tables({"summary": summary, "run": "report"}, None)
    assert "recommend" not in tables and tables["half"]["name"] == "report"
    with pytest.raises(ReleaseError, match="did not measure"):
        _classify_tables({"summary": summary, "run": "report"}, "1:fill=30")
    with pytest.raises(ReleaseError, match="classify_run"):
        DatasetReleaseArgs(source=str(source), recommend="1:1")
    with pytest.raises(ReleaseError, match="all real notes"):
        DatasetReleaseArgs(source=str(source), classify_run=str(run), recommend="0.5:1")
