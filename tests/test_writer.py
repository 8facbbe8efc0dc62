import json

from medsyn.job import read_shards
from medsyn.writer import FEATURES, ShardWriter


def _rec(i: int, kept: bool = True) -> dict:
    rec = {k: None for k in FEATURES}
    rec.update(id=f"t{i}", note=f"note {i}", symptoms=["кашель"], age=40, seed=0, kept=kept, filter_reasons=[])
    return rec


def test_resume_skips_done_ids_and_survives_a_cut_line(tmp_path):
    with ShardWriter(tmp_path) as w:
        assert w.write([_rec(0), _rec(1)]) == 2
    # a kill in the middle of a line leaves a partial record behind
    with open(tmp_path / "shards" / "part-00000.jsonl", "a", encoding="utf-8") as fh:
        fh.write(json.dumps(_rec(2))[:20])
    w2 = ShardWriter(tmp_path)
    assert w2.done == {"t0", "t1"}
    assert w2.path.name == "part-00001.jsonl"  # a new run never appends after a cut line
    assert w2.write([_rec(1), _rec(2), _rec(3, kept=False)]) == 2
    w2.close()
    assert sorted(r["id"] for r in read_shards(tmp_path / "shards")) == ["t0", "t1", "t2", "t3"]


def test_finalize_writes_a_loadable_hub_folder(tmp_path):
    from datasets import load_dataset

    with ShardWriter(tmp_path) as w:
        w.write([_rec(i, kept=i != 2) for i in range(4)])
    counts = w.finalize(order=["t3", "t2", "t1", "t0"], card="# card\n")
    assert counts == {"kept": 3, "rejected": 1, "failed": 0}
    ds = load_dataset(str(tmp_path), split="train")
    assert ds["id"] == ["t3", "t1", "t0"]
    assert ds.features["symptoms"].feature.dtype == "string"
    rejected = load_dataset(str(tmp_path), "rejected", split="train")
    assert rejected["id"] == ["t2"]
    readme = (tmp_path / "README.md").read_text(encoding="utf-8")
    assert readme.startswith("---\n") and "config_name: rejected" in readme and readme.endswith("# card\n")


def test_a_resumed_folder_is_not_served_from_a_stale_cache(tmp_path):
    from datasets import load_dataset

    with ShardWriter(tmp_path) as w:
        w.write([_rec(i) for i in range(2)])
    w.finalize()
    assert len(load_dataset(str(tmp_path), split="train")) == 2
    with ShardWriter(tmp_path) as w:
        w.write([_rec(i) for i in range(5)])
    w.finalize()
    assert len(list((tmp_path / "data").glob("*.parquet"))) == 1
    assert len(load_dataset(str(tmp_path), split="train")) == 5


def test_failed_records_are_kept_apart_and_never_done(tmp_path):
    from datasets import load_dataset

    failed = _rec(1) | {"error_type": "http_400", "error": "HTTP 400: prompt too long", "endpoint": "http://a"}
    with ShardWriter(tmp_path) as w:
        w.write([_rec(0), failed])
        assert w.done == {"t0"}
    assert ShardWriter(tmp_path).done == {"t0"}  # a re-run tries t1 again
    counts = w.finalize()
    assert counts == {"kept": 1, "rejected": 0, "failed": 1}
    rows = load_dataset(str(tmp_path), "failed", split="train")
    assert rows["error_type"] == ["http_400"] and "note" not in rows.column_names
    with ShardWriter(tmp_path) as w:
        w.write([_rec(1)])  # the retry succeeds: it replaces the failed record
    assert w.finalize() == {"kept": 2, "rejected": 0, "failed": 0}
    assert not list((tmp_path / "failed").glob("*.parquet"))


def test_a_kill_inside_a_cyrillic_character_is_survived(tmp_path):
    with ShardWriter(tmp_path) as w:
        w.write([_rec(0)])
    line = (json.dumps(_rec(1) | {"note": "боль в спине"}, ensure_ascii=False) + "\n").encode("utf-8")
    cut = line.index("боль".encode()) + 1  # half of the two bytes of «б»
    with open(tmp_path / "shards" / "part-00000.jsonl", "ab") as fh:
        fh.write(line[:cut])
    assert ShardWriter(tmp_path).done == {"t0"}
    with open(tmp_path / "shards" / "part-00000.jsonl", "ab") as fh:
        fh.write(b'\n42\n{"no_id": 1}\n')
    assert [r["id"] for r in read_shards(tmp_path / "shards")] == ["t0"]
