import json

from medsyn.writer import FEATURES, ShardWriter, read_shards


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
    assert counts == {"kept": 3, "rejected": 1}
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
