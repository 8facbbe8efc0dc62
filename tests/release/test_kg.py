from __future__ import annotations

import re
import subprocess
import sys

import pytest

from medsyn.cli import main
from medsyn.release.kg import KGReleaseArgs, build_kg_release, validate_kg_release


@pytest.fixture(scope="module")
def kg_release(tmp_path_factory, kg_path):
    out = tmp_path_factory.mktemp("kg") / "rel"
    stats = build_kg_release(KGReleaseArgs(graph=str(kg_path)), out)
    return out, stats


def test_the_graph_release_validates_with_its_three_configs(kg_release, kg):
    from huggingface_hub import DatasetCard

    folder, stats = kg_release
    report = validate_kg_release(folder)
    assert report["graph_fingerprint"] == kg.fingerprint() == stats["fingerprint"]
    assert report["nodes"]["columns"] == ["code", "level", "name", "parent"]
    assert report["symptom_edges"]["columns"] == ["category", "symptom", "count", "weight"]
    assert report["nodes"]["rows"] > 14_000 and report["symptom_edges"]["rows"] > 1_000 and report["related"]["rows"]
    card = DatasetCard.load(folder / "README.md")
    assert card.data.license == "apache-2.0" and [c["config_name"] for c in card.data.configs] == [
        "nodes", "symptom_edges", "related"
    ]  # fmt: skip
    assert "Дорсалгия" in card.text and (folder / "plots" / "kg-stats.png").stat().st_size > 10_000


def test_the_cards_networkx_snippet_rebuilds_the_graph(kg_release):
    folder, _ = kg_release
    card = (folder / "README.md").read_text(encoding="utf-8")
    snippet = re.search(r"```python\n(.*?)```", card, re.S).group(1).replace("medsyn/ru-icd10-kg", str(folder))
    result = subprocess.run([sys.executable, "-c", snippet], capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "боли в поясничном отделе позвоночника" in result.stdout


def test_kg_commands_read_a_release_folder(kg_release, capsys):
    folder, _ = kg_release
    assert main(["kg", "show", "M54", "--graph", str(folder), "--top", "2"]) == 0
    assert "M54  Дорсалгия" in capsys.readouterr().out


def test_a_hub_graph_offline_says_what_to_pass(caplog, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert main(["kg", "show", "M54", "--graph", "medsyn/ru-icd10-kg"]) == 2
    assert "cannot download the graph 'medsyn/ru-icd10-kg'" in caplog.text


def test_release_kg_dry_run_builds_and_validates(tmp_path, kg_path, capsys):
    assert main(["release", "kg", "--graph", str(kg_path), "--out", str(tmp_path / "rel"), "--dry_run"]) == 0
    out = capsys.readouterr().out
    assert '"symptom_edges"' in out and "dry run" in out and (tmp_path / "rel" / "medsyn-kg.json").exists()
