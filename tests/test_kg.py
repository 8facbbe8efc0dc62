import json

import pytest

from medsyn.errors import GraphFormatError, UnknownCodeError
from medsyn.kg import GRAPH_VERSION, MedicalKG, load_graph


def test_m54_in_the_graph(kg):
    assert kg.entry("M54")["name"] == "Дорсалгия"
    assert [p["code"] for p in kg.parents("M54")] == ["M50-M54", "M40-M54", "XIII"]
    assert len(kg.examples("M54")) == 560  # RuMedTop3 train has 560 M54 notes
    top = kg.symptoms("M54", top=5)
    assert len(top) == 5 and all(a.weight >= b.weight for a, b in zip(top, top[1:]))
    assert any("позвоночник" in e.symptom or "поясниц" in e.symptom for e in top)


def test_stats_cover_rumedtop3(kg):
    stats = kg.stats()
    assert stats["categories_with_examples"] == 105
    assert stats["categories_with_symptoms"] >= 100
    assert stats["median_symptoms_per_category"] >= 10
    assert stats["example_notes"] == 4690


def test_specificity_prefers_typical_symptoms(kg):
    # «повышение ад» is typical of hypertensive heart disease (I11) and should outrank it in back pain (M54)
    i11 = {e.symptom: e.weight for e in kg.symptoms("I11")}
    m54 = {e.symptom: e.weight for e in kg.symptoms("M54")}
    assert i11["повышение ад"] > m54.get("повышение ад", 0)


def test_round_trip(kg, tmp_path):
    path = kg.save(tmp_path / "g.json")
    again = MedicalKG.load(path)
    assert again.stats() == kg.stats()
    assert again.symptoms("J06") == kg.symptoms("J06")
    assert again.extractor().extract("Кашель и насморк") == kg.extractor().extract("Кашель и насморк")


def test_unknown_code_error_lists_closest(kg):
    with pytest.raises(UnknownCodeError, match="closest: J45.9"):
        kg.entry("J45.99")


def test_malformed_and_old_files(tmp_path, kg):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(GraphFormatError, match="not a valid graph file"):
        MedicalKG.load(bad)
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"nodes": []}), encoding="utf-8")
    with pytest.raises(GraphFormatError, match="not a medsyn knowledge graph"):
        MedicalKG.load(other)
    old = tmp_path / "old.json"
    payload = json.loads(kg.save(tmp_path / "g.json").read_text(encoding="utf-8"))
    payload["version"] = GRAPH_VERSION + 1
    old.write_text(json.dumps(payload), encoding="utf-8")
    with pytest.raises(GraphFormatError, match="rebuild it"):
        MedicalKG.load(old)


def test_load_graph_builds_when_missing(tmp_path):
    path = tmp_path / "sub" / "kg.json"
    kg = load_graph(path)
    assert path.exists() and kg.stats()["categories_with_examples"] == 105
    with pytest.raises(GraphFormatError, match="no graph at"):
        load_graph(tmp_path / "missing.json", build=False)


def test_related_codes_share_symptoms(kg):
    related = kg.related("M54")
    assert 1 <= len(related) <= 3 and all(0.2 <= w <= 1 for _, w in related)
    assert related[0][0][0] in "MG"  # back pain is closest to other musculoskeletal or nerve-root codes
    assert {c for c, _ in kg.related("J06")}.isdisjoint({"M54", "N92"})


def test_graph_records_what_built_it(kg):
    from medsyn.kg import build_fingerprint, stale_reasons

    build = kg.meta["build"]
    assert build["fingerprint"] == build_fingerprint()["fingerprint"]
    assert set(build["code"]) >= {"medsyn", "medsyn.text", "medsyn.extract", "medsyn.kg"}
    assert "rumedtop3/train_v1.jsonl" in build["sources"]
    assert stale_reasons(kg) == []


def _tamper(path, edit):
    payload = json.loads(path.read_text(encoding="utf-8"))
    edit(payload["meta"])
    path.write_text(json.dumps(payload, ensure_ascii=False), encoding="utf-8")


def test_stale_graph_is_rebuilt(kg, tmp_path, caplog):
    from medsyn.kg import stale_reasons

    path = kg.save(tmp_path / "kg.json")
    _tamper(path, lambda meta: meta["build"]["code"].update({"medsyn.text": "0" * 16}))
    assert stale_reasons(MedicalKG.load(path)) == ["code changed: medsyn.text"]
    with caplog.at_level("WARNING"):
        assert stale_reasons(load_graph(path, build=False)) == ["code changed: medsyn.text"]  # warned, kept
    assert "out of date" in caplog.text
    rebuilt = load_graph(path)
    assert stale_reasons(rebuilt) == [] and stale_reasons(MedicalKG.load(path)) == []
    assert rebuilt.fingerprint() == kg.fingerprint()
    _tamper(path, lambda meta: meta.pop("build"))  # a graph from before fingerprints
    assert "no build fingerprint" in stale_reasons(MedicalKG.load(path))[0]
    assert stale_reasons(load_graph(path)) == []


def test_graph_of_custom_notes_is_kept(tiny_kg, tmp_path, caplog):
    from medsyn.kg import stale_reasons

    assert tiny_kg.meta["build"]["sources"]["notes"].startswith("custom:")
    assert stale_reasons(tiny_kg) == []
    path = tiny_kg.save(tmp_path / "tiny.json")
    _tamper(path, lambda meta: meta["build"]["code"].update({"medsyn.extract": "0" * 16}))
    with caplog.at_level("WARNING"):
        kept = load_graph(path)
    assert kept.stats()["categories_with_examples"] == 3 and "out of date" in caplog.text


@pytest.mark.parametrize("category", ["N76", "J06"])
def test_cooccurrence_edges_count_real_notes(kg, real_notes, category):
    extractor = kg.extractor()
    found = [set(extractor.extract(n["text"])) for n in real_notes if n["code"] == category]
    cooc = kg.cooccurrence(category + ".0")  # a code reads its category's counts, not other categories'
    pair, count = max(cooc.items(), key=lambda item: item[1])
    assert count == sum(pair <= f for f in found) >= 5
    assert all(n == sum(p <= f for f in found) for p, n in cooc.items())
    assert sum(len(f) * (len(f) - 1) // 2 for f in found) == sum(cooc.values())


def test_denied_symptoms_make_no_edges(kg):
    # «утренней скованности нет» is common in arthrosis notes; one vaginitis note mentions a blocked nose only to deny it
    assert "заложенность носа" not in {e.symptom for e in kg.symptoms("N76")}
    assert {e.symptom: e.count for e in kg.symptoms("M19")}["утренняя скованность"] == 22
