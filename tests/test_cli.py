import pytest

from medsyn.cli import main


def test_kg_show_m54(kg_path, capsys, tmp_path):
    assert main(["kg", "show", "M54", "--graph", str(kg_path), "--top", "3", "--plot", str(tmp_path / "m54.png")]) == 0
    out = capsys.readouterr().out
    assert "M54  Дорсалгия" in out and "M50-M54" in out and "XIII" in out
    assert "real example notes: 560" in out and "top symptoms (3 of" in out
    assert (tmp_path / "m54.png").stat().st_size > 10_000


def test_kg_show_unknown_code(kg_path, caplog):
    assert main(["kg", "show", "J45.99", "--graph", str(kg_path)]) == 2
    assert "closest: J45.9" in caplog.text


def test_kg_stats_and_build(tmp_path, capsys):
    path = tmp_path / "g.json"
    assert main(["kg", "build", "--out", str(path)]) == 0
    assert main(["kg", "stats", "--graph", str(path), "--plot", str(tmp_path / "s.png")]) == 0
    out = capsys.readouterr().out
    assert '"categories_with_examples": 105' in out and (tmp_path / "s.png").exists()


def test_bad_config_is_reported(tmp_path, caplog):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("n: 3\nbogus: 1\n", encoding="utf-8")
    assert main(["generate", "--config", str(recipe)]) == 2
    assert "unknown config field(s) ['bogus']" in caplog.text


def test_unknown_subcommand(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["eval", "nope"])
    assert exit_.value.code == 2
    assert "unknown eval command 'nope'; choose from ['classify', 'consistency', 'quality']" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["kg", "build", "--help"],
        ["kg", "show", "--help"],
        ["kg", "stats", "--help"],
        ["generate", "--help"],
    ]
    + [["serve", "--help"], ["eval", "classify", "--help"], ["eval", "quality", "--help"]]
    + [["data", "instructions", "--help"]],
)
def test_every_flag_has_plain_help(argv, capsys):
    import re

    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    assert "``" not in text and ":func:" not in text and ":class:" not in text
    # argparse puts a long flag's help on the next, deeper-indented line; a flag with no help has none
    lines = text.splitlines() + [""]
    bare = [
        line
        for line, after in zip(lines, lines[1:])
        if re.fullmatch(r"  --\w+( \S+)?", line) and not re.match(r" {8,}\S", after)
    ]
    assert not bare, f"flags without help: {bare}"


def test_eval_help_lists_its_commands(capsys):
    assert main(["eval", "--help"]) == 0
    assert "classify" in capsys.readouterr().out


def test_kg_paths_and_flags_that_make_no_sense_get_one_line(kg_path, tmp_path, caplog, capsys):
    assert main(["kg", "show", "M54", "--graph", str(tmp_path)]) == 2
    assert "is a folder; pass the graph file" in caplog.text
    a_file = tmp_path / "f.txt"
    a_file.write_text("x")
    assert main(["kg", "build", "--out", str(a_file / "kg.json")]) == 2
    assert "which is a file" in caplog.text
    with pytest.raises(SystemExit):
        main(["kg", "show", "M54", "--graph", str(kg_path), "--top", "-2"])
    assert "expected a whole number >= 1, got -2" in capsys.readouterr().err


def test_a_graph_with_a_partial_node_is_refused(kg_path, tmp_path, caplog):
    import json

    payload = json.loads(kg_path.read_text(encoding="utf-8"))
    node = next(n for n in payload["graph"]["nodes"] if n["id"].startswith("icd:"))
    del node["code"]
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(payload, ensure_ascii=False), encoding="utf-8")
    assert main(["kg", "show", "M54", "--graph", str(broken)]) == 2
    assert "malformed graph section" in caplog.text and "lacks ['code']" in caplog.text


@pytest.mark.parametrize(
    ("drop", "says"),
    [
        ("symptom:", "lacks ['name']"),  # the symptom nodes left out: their edges point at bare nodes
        ("note:", "lacks ['note_id', 'text']"),
    ],
)
def test_a_graph_missing_a_kind_of_node_is_refused(kg_path, tmp_path, caplog, drop, says):
    import json

    payload = json.loads(kg_path.read_text(encoding="utf-8"))
    payload["graph"]["nodes"] = [n for n in payload["graph"]["nodes"] if not n["id"].startswith(drop)]
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(payload, ensure_ascii=False), encoding="utf-8")
    assert main(["kg", "show", "M54", "--graph", str(broken)]) == 2
    assert "malformed graph section" in caplog.text and says in caplog.text and "medsyn kg build" in caplog.text


def test_an_edge_without_its_weight_is_refused(kg_path, tmp_path, caplog):
    import json

    payload = json.loads(kg_path.read_text(encoding="utf-8"))
    edge = next(e for e in payload["graph"]["edges"] if e["relation"] == "has_symptom")
    del edge["weight"]
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(payload, ensure_ascii=False), encoding="utf-8")
    assert main(["kg", "show", "M54", "--graph", str(broken)]) == 2
    assert "has_symptom edge" in caplog.text and "lacks ['weight']" in caplog.text


def test_a_path_the_system_refuses_is_one_line(kg_path, tmp_path, caplog):
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    assert main(["kg", "show", "M54", "--graph", str(kg_path), "--plot", str(blocker / "kg.png")]) == 1
    assert f"{blocker}" in caplog.text and "check the path" in caplog.text
    assert "Traceback" not in caplog.text
