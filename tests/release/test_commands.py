"""Tests of medsyn.release.commands: dataset_main and kg_main, their dry runs, pushes and one-line errors."""

from __future__ import annotations

import contextlib
import io
import json
import random

import pytest

import medsyn.hub
from medsyn.errors import ConfigError, GraphFormatError, ReleaseError
from medsyn.release.commands import dataset_main, kg_main
from medsyn.writer import ShardWriter

WORDS = "жалобы на головную боль слабость кашель насморк боли в пояснице тошноту головокружение усталость".split()
SPEC = {
    "backend": "transformers",
    "model": "gemma-3-270m",
    "template": "instruction",
    "generation": {"max_new_tokens": 32},
    "filter": {"on": True, "min_symptom_coverage": 0.5, "max_copy_score": 0.7},
    "seed": 0,
}


def _generated_folder(root, n: int = 8, kept=lambda i: i % 4 != 0):
    """A folder as medsyn generate leaves it: shards of kept and rejected notes, and the job file."""
    rng = random.Random(0)
    out = root / "gen"
    records = [
        {
            "id": f"M54-{i:05d}-abc",
            "icd10_code": "M54.5",
            "icd10_name": "Боль внизу спины",
            "category": "M54",
            "symptoms": ["кашель", "слабость"],
            "sex": "F" if i % 2 else "M",
            "age": 30 + i,
            "prompt": "Пациент: женщина, 35 лет. Жалобы:",
            "note": " ".join(rng.choice(WORDS) for _ in range(14)).capitalize() + ".",
            "template": "instruction",
            "model": "gemma-3-270m",
            "backend": "transformers",
            "symptom_coverage": 1.0,
            "kept": kept(i),
            "filter_reasons": [] if kept(i) else ["symptom_coverage 0.00 < 0.50"],
            "attempts": 1,
        }
        for i in range(n)
    ]
    with ShardWriter(out) as writer:
        writer.write(records)
    (out / "medsyn_job.json").write_text(json.dumps({"fingerprint": "x", "job": SPEC}), encoding="utf-8")
    return out


@pytest.fixture
def no_upload(monkeypatch):
    """Record every call of medsyn.hub.upload instead of talking to the Hub."""
    calls = []

    def fake_upload(folder, repo_id, repo_type="model", private=True, commit_message=""):
        calls.append({"folder": folder, "repo_id": repo_id, "repo_type": repo_type, "private": private,
                      "commit_message": commit_message})  # fmt: skip
        return f"https://huggingface.co/datasets/{repo_id}"

    monkeypatch.setattr(medsyn.hub, "upload", fake_upload)
    return calls


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A release folder built by a dry run of ``dataset_main``, with what it printed."""
    root = tmp_path_factory.mktemp("release-commands")
    source = _generated_folder(root)
    out = root / "rel"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(medsyn.hub, "upload", lambda *a, **k: pytest.fail("a dry run uploaded"))
        buffer = io.StringIO()
        with contextlib.redirect_stdout(buffer):
            code = dataset_main([str(source), "--out", str(out), "--dry_run", "--repo_id", "someone/ru-notes"])
    return out, code, buffer.getvalue()


def _report(printed: str) -> dict:
    return json.loads(printed[: printed.rindex("}") + 1])


def test_a_dataset_dry_run_builds_validates_and_uploads_nothing(built):
    out, code, printed = built
    assert code == 0
    report = _report(printed)
    assert report["folder"] == str(out)
    assert set(report["configs"]) >= {"default", "rejected"}
    assert printed.rstrip().endswith(f"dry run: {out} is what would be pushed to someone/ru-notes")
    assert (out / "README.md").exists() and (out / "medsyn_job.json").exists() and not (out / "shards").exists()


def test_a_built_release_folder_is_checked_again_and_pushed_as_it_is(built, no_upload, capsys):
    out, _, _ = built
    assert dataset_main([str(out), "--repo_id", "someone/ru-notes"]) == 0
    assert no_upload == [
        {
            "folder": out,
            "repo_id": "someone/ru-notes",
            "repo_type": "dataset",
            "private": True,
            "commit_message": "Release synthetic notes with medsyn",
        }
    ]
    printed = capsys.readouterr().out
    assert _report(printed)["folder"] == str(out)
    assert printed.rstrip().endswith("https://huggingface.co/datasets/someone/ru-notes")


def test_public_makes_a_public_repository(built, no_upload, capsys):
    out, _, _ = built
    assert dataset_main(["--source", str(out), "--public"]) == 0
    assert [(c["repo_id"], c["private"]) for c in no_upload] == [("medsyn/ru-notes", False)]


def test_dataset_main_needs_a_folder():
    with pytest.raises(ConfigError) as err:
        dataset_main([])
    assert str(err.value) == "give the folder to release: medsyn release dataset DIR --repo_id USER/NAME"
    with pytest.raises(ConfigError, match="give the folder to release"):
        dataset_main(["--dry_run"])


def test_dataset_main_names_a_source_that_is_not_a_generated_folder(tmp_path, no_upload):
    nope = tmp_path / "nope"
    with pytest.raises(ReleaseError) as err:
        dataset_main([str(nope), "--out", str(tmp_path / "rel"), "--dry_run"])
    assert str(err.value) == f"{nope} is not a folder; pass a folder that medsyn generate wrote (it has shards/)"
    (tmp_path / "empty").mkdir()
    with pytest.raises(ReleaseError) as err:
        dataset_main([str(tmp_path / "empty"), "--out", str(tmp_path / "rel"), "--dry_run"])
    assert str(err.value) == (
        f"{tmp_path / 'empty'} has no medsyn_job.json: it was not written by medsyn generate or medsyn release"
    )
    assert not (tmp_path / "rel").exists() and no_upload == []


def test_dataset_main_refuses_a_folder_without_kept_notes(tmp_path, no_upload):
    source = _generated_folder(tmp_path, n=3, kept=lambda i: False)
    with pytest.raises(ReleaseError) as err:
        dataset_main([str(source), "--out", str(tmp_path / "rel"), "--dry_run"])
    assert str(err.value) == f"{source} holds no kept note; there is nothing to release"
    assert not (tmp_path / "rel").exists() and no_upload == []


def test_dataset_main_will_not_build_over_its_source(tmp_path, no_upload):
    source = _generated_folder(tmp_path, n=2, kept=lambda i: True)
    with pytest.raises(ReleaseError) as err:
        dataset_main([str(source), "--out", str(source), "--dry_run"])
    assert str(err.value) == f"--out {source} is the source folder; build the release elsewhere"
    assert (source / "shards").is_dir()


def test_dataset_main_rejects_an_unknown_flag(capsys):
    with pytest.raises(SystemExit) as exit_info:
        dataset_main(["somewhere", "--no_such_flag"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: medsyn release dataset") and "unrecognized arguments: --no_such_flag" in err


def test_kg_main_rejects_a_positional_argument(capsys):
    with pytest.raises(SystemExit) as exit_info:
        kg_main(["medsyn-kg.json"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: medsyn release kg") and "unrecognized arguments: medsyn-kg.json" in err


def test_kg_main_names_a_bad_graph_file_and_builds_nothing(tmp_path, no_upload):
    bad = tmp_path / "graph.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(GraphFormatError, match=r"graph\.json is not a valid graph file \(.*\); rebuild it with"):
        kg_main(["--graph", str(bad), "--out", str(tmp_path / "rel"), "--dry_run"])
    bad.write_text('{"format": "something else"}', encoding="utf-8")
    with pytest.raises(GraphFormatError, match="is not a medsyn knowledge graph"):
        kg_main(["--graph", str(bad), "--out", str(tmp_path / "rel")])
    assert not (tmp_path / "rel").exists() and no_upload == []
