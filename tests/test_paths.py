"""Tests of medsyn.paths: packaged resources, the cache root's environment variables and staged folders."""

from __future__ import annotations

from pathlib import Path

import pytest

import medsyn
from medsyn.paths import cache_dir, default_graph_path, models_dir, resource_path, rumedtop3_path, staged_dir

PACKAGE = Path(medsyn.__file__).resolve().parent


def test_resource_path_points_into_the_package():
    path = resource_path("rumedtop3", "train_v1.jsonl")
    assert path.resolve() == PACKAGE / "resources" / "rumedtop3" / "train_v1.jsonl"
    assert path.is_file()
    assert resource_path().resolve() == PACKAGE / "resources"


def test_rumedtop3_path_knows_its_two_splits():
    assert rumedtop3_path("train").name == "train_v1.jsonl"
    assert rumedtop3_path("dev").resolve() == PACKAGE / "resources" / "rumedtop3" / "dev_v1.jsonl"
    with pytest.raises(ValueError) as err:
        rumedtop3_path("test")
    assert str(err.value) == "RuMedTop3 split must be 'train' or 'dev', got 'test'"


def test_cache_dir_honours_medsyn_home(tmp_path, monkeypatch):
    home = tmp_path / "medsyn" / "home"
    monkeypatch.setenv("MEDSYN_HOME", str(home))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == home
    assert home.is_dir()  # created on first use
    assert not (tmp_path / "xdg").exists()


def test_cache_dir_falls_back_to_xdg_cache_home(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDSYN_HOME", "")  # empty counts as unset
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "medsyn"
    assert (tmp_path / "xdg" / "medsyn").is_dir()


def test_cache_dir_falls_back_to_the_home_cache(tmp_path, monkeypatch):
    monkeypatch.delenv("MEDSYN_HOME", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert cache_dir() == tmp_path / ".cache" / "medsyn"
    assert (tmp_path / ".cache" / "medsyn").is_dir()


def test_graph_and_models_live_under_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDSYN_HOME", str(tmp_path))
    assert default_graph_path() == tmp_path / "kg" / "medsyn-kg.json"
    assert not (tmp_path / "kg").exists()  # only the location; the graph is built elsewhere
    assert models_dir() == tmp_path / "models"
    assert (tmp_path / "models").is_dir()


def test_staged_dir_appears_whole_and_replaces_an_older_folder(tmp_path):
    final = tmp_path / "runs" / "run-1"
    final.mkdir(parents=True)
    (final / "old.txt").write_text("old", encoding="utf-8")
    with staged_dir(final) as tmp:
        assert tmp.parent == final.parent and tmp != final and tmp.name.startswith(".run-1.")
        (tmp / "report.md").write_text("# отчёт", encoding="utf-8")
        assert (final / "old.txt").exists()  # the older folder stays until the body returns
    assert sorted(p.name for p in final.iterdir()) == ["report.md"]
    assert sorted(p.name for p in final.parent.iterdir()) == ["run-1"]


def test_staged_dir_leaves_nothing_when_the_body_raises(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        with staged_dir(tmp_path / "new") as tmp:
            (tmp / "half.json").write_text("{", encoding="utf-8")
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "kept").mkdir()
    (tmp_path / "kept" / "a.txt").write_text("a", encoding="utf-8")
    with pytest.raises(OSError, match="disk full"):
        with staged_dir(tmp_path / "kept"):
            raise OSError("disk full")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept"]
    assert (tmp_path / "kept" / "a.txt").read_text(encoding="utf-8") == "a"
